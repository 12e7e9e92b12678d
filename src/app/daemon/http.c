/* SPDX-License-Identifier: MIT */
/*
 * The metrics endpoint's HTTP side: a listener and at most HTTP_MAX_CONNECTIONS connections
 * on an mb_loop. A connection goes through three states: it reads the request head, writes the
 * response, then shuts down its sending side and discards whatever the client still sends
 * until the client closes (a "lingering close": closing a socket with unread bytes makes the
 * kernel send a reset, which can destroy the response before the client has read it, as it
 * would for a 405 to a POST with a body or a 431 to a client still sending).
 */
#include <errno.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <sys/uio.h>
#include <unistd.h>

#include "app/daemon/http.h"
#include "mbsec/error.h"
#include "mbsec/loop.h"
#include "mbsec/transport.h"

#define LISTEN_BACKLOG 128
#define ACCEPT_PAUSE_MS 100 /* after EMFILE and the like: let descriptors free up */
#define LINGER_MS 2000      /* at most, for the client to close after the response */
#define LINGER_LIMIT 65536  /* bytes discarded after the response before closing anyway */
#define DISCARD_CHUNK 4096
#define HEAD_CAPACITY 320 /* status line, headers and an error's body */

enum connection_state {
    READING_REQUEST,
    WRITING_RESPONSE,
    LINGERING, /* response sent and our side shut down; waiting for the client to close */
};

struct connection {
    struct http_server *server;
    int fd;
    int slot;
    enum connection_state state;
    struct mb_timer timer;
    size_t request_length;
    size_t scanned;   /* request bytes already searched for the end of the head */
    int head_started; /* the scan is past the empty lines before the request line */
    int line_checked; /* the parser has seen the request line */
    unsigned watched; /* MB_IO_* asked of the loop */
    size_t discarded;
    char head[HEAD_CAPACITY]; /* status line, headers, and an error's body */
    size_t head_length;
    char *body; /* the rendered body (from open_memstream), NULL when none is sent */
    size_t body_length;
    size_t sent; /* of head and body together */
    char request[HTTP_REQUEST_LIMIT];
};

struct http_server {
    struct mb_loop *loop;
    int fd;
    char text[64];
    http_render_fn render;
    void *data;
    uint32_t timeout_ms;
    unsigned listener_events; /* what the listener is watched for: MB_IO_READ or 0 */
    struct mb_timer pause_timer;
    int count;
    struct connection *connections[HTTP_MAX_CONNECTIONS];
};

/* ---- the request parser: no allocation, no I/O ---- */

static int is_token_char(unsigned char c) {
    if ((c >= '0' && c <= '9') || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'))
        return 1;
    return c != '\0' && strchr("!#$%&'*+-.^_`|~", c) != NULL;
}

static int is_field_value_char(unsigned char c) {
    return c == '\t' || (c >= ' ' && c != 0x7f);
}

/* Parses a line ending at `*at`: CRLF or LF. Returns 1 and moves past it, 0 when more bytes are
 * needed, -400 when something else stands there. */
static int line_end(const char *buffer, size_t length, size_t *at) {
    size_t i = *at;
    if (i >= length)
        return 0;
    if (buffer[i] == '\r') {
        if (++i >= length)
            return 0;
        if (buffer[i] != '\n')
            return -400;
    } else if (buffer[i] != '\n') {
        return -400;
    }
    *at = i + 1;
    return 1;
}

/* The path of a target: origin-form "/p?q" gives "/p"; absolute-form "http://h/p?q" gives "/p"
 * and "http://h" gives "/"; anything else ("*", "host:port") gives NULL. */
static void target_path(const char *target, size_t length, struct http_request *request) {
    size_t start = 0;
    request->path = NULL;
    request->path_length = 0;
    if (length > 0 && target[0] != '/') {
        size_t scheme = 0;
        if (length >= 7 && strncasecmp(target, "http://", 7) == 0)
            scheme = 7;
        else if (length >= 8 && strncasecmp(target, "https://", 8) == 0)
            scheme = 8;
        else
            return;
        start = scheme;
        while (start < length && target[start] != '/' && target[start] != '?' &&
               target[start] != '#')
            start++;
        if (start == length || target[start] != '/') {
            request->path = "/";
            request->path_length = 1;
            return;
        }
    }
    size_t end = start;
    while (end < length && target[end] != '?' && target[end] != '#')
        end++;
    request->path = target + start;
    request->path_length = end - start;
}

/* Matches `literal` at `*at`, as far as the buffer goes. Returns 1 and moves past it, 0 when the
 * buffer ends inside it, -400 when a byte differs. */
static int expect(const char *buffer, size_t length, size_t *at, const char *literal) {
    for (size_t i = 0; literal[i] != '\0'; i++) {
        if (*at + i >= length)
            return 0;
        if (buffer[*at + i] != literal[i])
            return -400;
    }
    *at += strlen(literal);
    return 1;
}

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* The request line, from `*at`. Checked as far as the bytes go, so that garbage is refused
 * before its line is complete. Returns 1 (moved past it), 0, -400 or -505. */
static int parse_request_line(const char *buffer, size_t length, size_t *at,
                              struct http_request *request) {
    size_t i = *at;
    size_t method = i;
    while (i < length && is_token_char((unsigned char)buffer[i]))
        i++;
    if (i >= length)
        return 0;
    if (i == method || buffer[i] != ' ')
        return -400;
    request->method = buffer + method;
    request->method_length = i - method;

    size_t target = ++i;
    while (i < length && (unsigned char)buffer[i] > ' ' && (unsigned char)buffer[i] < 0x7f)
        i++;
    if (i >= length)
        return 0;
    if (i == target || buffer[i] != ' ')
        return -400;
    target_path(buffer + target, i - target, request);

    i++;
    int rc = expect(buffer, length, &i, "HTTP/");
    if (rc <= 0)
        return rc;
    if (i + 3 > length) {
        /* Check the digits and the dot that are already there. */
        if ((i < length && !is_digit(buffer[i])) || (i + 1 < length && buffer[i + 1] != '.'))
            return -400;
        return 0;
    }
    if (!is_digit(buffer[i]) || buffer[i + 1] != '.' || !is_digit(buffer[i + 2]))
        return -400;
    char major = buffer[i];
    request->minor_version = buffer[i + 2] - '0';
    i += 3;
    rc = line_end(buffer, length, &i);
    if (rc <= 0)
        return rc;
    *at = i;
    return major == '1' ? 1 : -505;
}

/* One header line from `*at`, or the empty line that ends the head. Returns 1 for a header
 * line, 2 for the empty line (moved past either), 0 or -400. */
static int parse_header_line(const char *buffer, size_t length, size_t *at) {
    size_t i = *at;
    if (i >= length)
        return 0;
    if (buffer[i] == '\r' || buffer[i] == '\n') {
        int rc = line_end(buffer, length, &i);
        if (rc <= 0)
            return rc;
        *at = i;
        return 2;
    }
    /* A line starting with whitespace would continue the previous one (obs-fold), which a
     * server must refuse or unfold; refusing is simpler and safer. */
    size_t name = i;
    while (i < length && is_token_char((unsigned char)buffer[i]))
        i++;
    if (i >= length)
        return 0;
    if (i == name || buffer[i] != ':')
        return -400;
    i++;
    while (i < length && is_field_value_char((unsigned char)buffer[i]))
        i++;
    int rc = line_end(buffer, length, &i);
    if (rc <= 0)
        return rc;
    *at = i;
    return 1;
}

int http_parse_request(const char *buffer, size_t length, struct http_request *request) {
    if (buffer == NULL || request == NULL)
        return -400;
    memset(request, 0, sizeof *request);
    /* Heads are bounded far below this by the caller; the return value must stay an int. */
    if (length > HTTP_REQUEST_LIMIT * 16)
        length = HTTP_REQUEST_LIMIT * 16;
    size_t at = 0;
    while (at < length && (buffer[at] == '\r' || buffer[at] == '\n'))
        at++;
    if (at >= length)
        return 0;
    int rc = parse_request_line(buffer, length, &at, request);
    if (rc <= 0)
        return rc;
    for (;;) {
        rc = parse_header_line(buffer, length, &at);
        if (rc <= 0)
            return rc;
        if (rc == 2)
            return (int)at;
    }
}

/* ---- connections ---- */

static void connection_io(struct mb_loop *loop, int fd, unsigned events, void *data);
static void listener_update(struct http_server *server);

static void connection_close(struct connection *connection) {
    struct http_server *server = connection->server;
    mb_timer_stop(server->loop, &connection->timer);
    mb_loop_remove(server->loop, connection->fd);
    close(connection->fd);
    free(connection->body);
    server->connections[connection->slot] = NULL;
    server->count--;
    free(connection);
    listener_update(server);
}

static void connection_expired(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    connection_close(timer->data);
}

static void connection_watch(struct connection *connection, unsigned events) {
    if (connection->watched != events &&
        mb_loop_modify(connection->server->loop, connection->fd, events) == 0)
        connection->watched = events;
}

static void connection_timer_start(struct connection *connection) {
    mb_timer_start(connection->server->loop, &connection->timer, connection->server->timeout_ms,
                   connection_expired, connection);
}

/* The statuses this server sends; each error's body is its reason phrase on a line. */
static const struct {
    int status;
    const char *reason;
} statuses[] = {
    {200, "OK"},
    {400, "Bad Request"},
    {404, "Not Found"},
    {405, "Method Not Allowed"},
    {431, "Request Header Fields Too Large"},
    {500, "Internal Server Error"},
    {505, "HTTP Version Not Supported"},
};

/* Prepares the response. For 200 the body is the rendered one (owned from here on); any other
 * status gets its fixed body, written after the headers in the head buffer. With `head_only`
 * (HEAD) the headers are the same, Content-Length included, and no body follows. */
static void response_prepare(struct connection *connection, int status, char *body,
                             size_t body_length, int head_only) {
    const char *reason = NULL;
    for (size_t i = 0; i < sizeof statuses / sizeof statuses[0]; i++)
        if (statuses[i].status == status)
            reason = statuses[i].reason;
    if (reason == NULL) {
        status = 500;
        reason = "Internal Server Error";
    }
    if (status != 200) {
        free(body);
        body = NULL;
        body_length = strlen(reason) + 1;
    }
    int written = snprintf(
        connection->head, sizeof connection->head,
        "HTTP/1.1 %d %s\r\n"
        "Content-Type: %s\r\n"
        "Content-Length: %zu\r\n"
        "%s"
        "Connection: close\r\n"
        "\r\n"
        "%s%s",
        status, reason,
        status == 200 ? "text/plain; version=0.0.4; charset=utf-8" : "text/plain; charset=utf-8",
        body_length, status == 405 ? "Allow: GET, HEAD\r\n" : "",
        status != 200 && !head_only ? reason : "", status != 200 && !head_only ? "\n" : "");
    /* Constants and one number: HEAD_CAPACITY holds the longest. */
    connection->head_length = written > 0 && (size_t)written < sizeof connection->head
                                  ? (size_t)written
                                  : sizeof connection->head - 1;
    if (head_only || status != 200) {
        free(body);
        body = NULL;
        body_length = 0;
    }
    connection->body = body;
    connection->body_length = body_length;
    connection->sent = 0;
}

/* Runs the render function for `path`. Returns the status, with *body and *length set (owned by
 * the caller, even when the status is not 200). */
static int render_body(struct http_server *server, const char *path, size_t path_length,
                       char **body, size_t *length) {
    *body = NULL;
    *length = 0;
    char *path_text = strndup(path, path_length);
    if (path_text == NULL)
        return 500;
    FILE *out = open_memstream(body, length);
    if (out == NULL) {
        free(path_text);
        return 500;
    }
    int status = server->render(server->data, path_text, out);
    int failed = ferror(out);
    if (fclose(out) != 0)
        failed = 1;
    free(path_text);
    if (failed)
        return 500;
    /* Any other status is a broken render function: what it wrote is not trusted. */
    return status == 200 || status == 404 ? status : 500;
}

/* The status for a parsed head (`parsed` > 0) or the refusal (`parsed` < 0), and the response
 * prepared. */
static void request_answer(struct connection *connection, int parsed,
                           const struct http_request *request) {
    char *body = NULL;
    size_t body_length = 0;
    int head_only = 0;
    int status;
    if (parsed < 0) {
        status = -parsed;
    } else if (request->method_length == 3 && memcmp(request->method, "GET", 3) == 0) {
        status = request->path == NULL ? 400 : 200;
    } else if (request->method_length == 4 && memcmp(request->method, "HEAD", 4) == 0) {
        status = request->path == NULL ? 400 : 200;
        head_only = 1;
    } else {
        status = 405;
    }
    if (status == 200)
        status = render_body(connection->server, request->path, request->path_length, &body,
                             &body_length);
    response_prepare(connection, status, body, body_length, head_only);
    connection->state = WRITING_RESPONSE;
    connection_timer_start(connection);
}

/* The end of the head among the bytes read so far, searching only what is new: the offset past
 * the empty line, or 0. Empty lines before the request line are not an end (the parser skips
 * them). */
static size_t head_end(struct connection *connection) {
    const char *request = connection->request;
    size_t length = connection->request_length;
    size_t i = connection->scanned;
    if (!connection->head_started) {
        while (i < length && (request[i] == '\r' || request[i] == '\n'))
            i++;
        connection->head_started = i < length;
    }
    for (; i < length; i++) {
        if (request[i] != '\n')
            continue;
        if (i + 1 < length && request[i + 1] == '\n')
            return i + 2;
        if (i + 2 < length && request[i + 1] == '\r' && request[i + 2] == '\n')
            return i + 3;
        if (i + 2 >= length)
            break; /* what follows this line feed has not all arrived: look again next time */
    }
    connection->scanned = i;
    return 0;
}

/* Writes what the socket takes. Returns 1 when the connection was closed. */
static int connection_write(struct connection *connection) {
    size_t total = connection->head_length + connection->body_length;
    while (connection->sent < total) {
        struct iovec parts[2];
        int count = 0;
        size_t body_sent = 0;
        if (connection->sent < connection->head_length) {
            parts[count].iov_base = connection->head + connection->sent;
            parts[count].iov_len = connection->head_length - connection->sent;
            count++;
        } else {
            body_sent = connection->sent - connection->head_length;
        }
        if (connection->body_length > body_sent) {
            parts[count].iov_base = connection->body + body_sent;
            parts[count].iov_len = connection->body_length - body_sent;
            count++;
        }
        struct msghdr message = {.msg_iov = parts, .msg_iovlen = (size_t)count};
        ssize_t written = sendmsg(connection->fd, &message, MSG_NOSIGNAL);
        if (written < 0 && errno == EINTR)
            continue;
        if (written < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            connection_watch(connection, MB_IO_WRITE);
            return 0;
        }
        if (written <= 0) {
            connection_close(connection); /* EPIPE, ECONNRESET: the client went away */
            return 1;
        }
        connection->sent += (size_t)written;
        connection_timer_start(connection);
    }
    free(connection->body);
    connection->body = NULL;
    if (shutdown(connection->fd, SHUT_WR) != 0) {
        connection_close(connection);
        return 1;
    }
    connection->state = LINGERING;
    connection_watch(connection, MB_IO_READ);
    /* The client has the whole response: waiting longer than it takes to read it only keeps a
     * slot from others. */
    uint32_t timeout_ms = connection->server->timeout_ms;
    mb_timer_start(connection->server->loop, &connection->timer,
                   timeout_ms < LINGER_MS ? timeout_ms : LINGER_MS, connection_expired, connection);
    return 0;
}

/* Reads until the head is complete. The parser runs on the first bytes and when the request
 * line has arrived, so that garbage (a TLS handshake, a binary protocol) is refused at once,
 * then on the complete head; not on every read, which would make a client sending a byte at a
 * time cost quadratic time. Returns 1 when the connection was closed. */
static int connection_read(struct connection *connection) {
    while (connection->request_length < sizeof connection->request) {
        size_t before = connection->request_length;
        ssize_t got = recv(connection->fd, connection->request + before,
                           sizeof connection->request - before, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (got <= 0) {
            /* End of stream or an error before a whole head: nobody to answer. */
            connection_close(connection);
            return 1;
        }
        connection->request_length += (size_t)got;
        int complete = head_end(connection) != 0;
        int line_arrived = !connection->line_checked &&
                           memchr(connection->request + before, '\n', (size_t)got) != NULL;
        if (!complete && before > 0 && !line_arrived)
            continue;
        connection->line_checked |= line_arrived;
        struct http_request request;
        int parsed = http_parse_request(connection->request, connection->request_length, &request);
        if (parsed == 0 && !complete)
            continue;
        if (parsed == 0)
            parsed = -400; /* the scan saw an end the parser did not reach: cannot happen */
        request_answer(connection, parsed, &request);
        return connection_write(connection);
    }
    struct http_request none = {0};
    request_answer(connection, -431, &none);
    return connection_write(connection);
}

/* Discards what the client still sends until it closes. Returns 1 when the connection was
 * closed. */
static int connection_drain(struct connection *connection) {
    char scratch[DISCARD_CHUNK];
    for (;;) {
        ssize_t got = recv(connection->fd, scratch, sizeof scratch, 0);
        if (got < 0 && errno == EINTR)
            continue;
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            return 0;
        if (got <= 0 || (connection->discarded += (size_t)got) > LINGER_LIMIT) {
            connection_close(connection);
            return 1;
        }
    }
}

static void connection_io(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)loop;
    (void)fd;
    (void)events;
    struct connection *connection = data;
    switch (connection->state) {
    case READING_REQUEST:
        connection_read(connection);
        break;
    case WRITING_RESPONSE:
        connection_write(connection);
        break;
    case LINGERING:
        connection_drain(connection);
        break;
    }
}

/* ---- the listener ---- */

static void connection_open(struct http_server *server, int fd) {
    int slot = 0;
    while (slot < HTTP_MAX_CONNECTIONS && server->connections[slot] != NULL)
        slot++;
    struct connection *connection = slot < HTTP_MAX_CONNECTIONS ? malloc(sizeof *connection) : NULL;
    if (connection == NULL) {
        close(fd);
        return;
    }
    /* Only the bookkeeping needs zeroing, not the 8 KiB request buffer. */
    memset(connection, 0, offsetof(struct connection, request));
    connection->server = server;
    connection->fd = fd;
    connection->slot = slot;
    connection->state = READING_REQUEST;
    connection->watched = MB_IO_READ;
    if (mb_loop_add(server->loop, fd, MB_IO_READ, connection_io, connection) != 0) {
        close(fd);
        free(connection);
        return;
    }
    server->connections[slot] = connection;
    server->count++;
    connection_timer_start(connection);
}

/* Watches the listener while there is room for a connection and accepting is not paused. */
static void listener_update(struct http_server *server) {
    unsigned wanted = server->count < HTTP_MAX_CONNECTIONS && !mb_timer_active(&server->pause_timer)
                          ? MB_IO_READ
                          : 0;
    if (wanted != server->listener_events && mb_loop_modify(server->loop, server->fd, wanted) == 0)
        server->listener_events = wanted;
}

static void accept_resume(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    listener_update(timer->data);
}

static void listener_io(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)events;
    struct http_server *server = data;
    while (server->count < HTTP_MAX_CONNECTIONS) {
        int client = accept4(fd, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client >= 0) {
            connection_open(server, client);
            continue;
        }
        if (errno == EINTR || errno == ECONNABORTED || errno == EPROTO)
            continue;
        if (errno != EAGAIN && errno != EWOULDBLOCK) {
            /* Out of descriptors or memory: the pending connection stays pending, so stop
             * watching for a moment instead of spinning on it. */
            mb_timer_start(loop, &server->pause_timer, ACCEPT_PAUSE_MS, accept_resume, server);
        }
        break;
    }
    listener_update(server);
}

static int listen_fail(char *error, size_t capacity, const char *address, const char *reason) {
    if (error != NULL && capacity > 0)
        snprintf(error, capacity, "cannot listen on %s: %s", address, reason);
    return -1;
}

/* 1 when `text` names a port: "host:port", "[v6]:port", ":port" or a bare port number. */
static int has_port(const char *text) {
    const char *bracket = strrchr(text, ']');
    if (strchr(bracket != NULL ? bracket : text, ':') != NULL)
        return 1;
    return text[0] != '\0' && strspn(text, "0123456789") == strlen(text);
}

int http_listen(struct mb_loop *loop, const char *address, http_render_fn render, void *data,
                struct http_server **server_out, char *error, size_t capacity) {
    if (server_out != NULL)
        *server_out = NULL;
    if (loop == NULL || render == NULL || server_out == NULL)
        return listen_fail(error, capacity, address ? address : "(null)", "invalid argument");
    if (address == NULL || !has_port(address))
        return listen_fail(error, capacity, address ? address : "(null)",
                           "a port is required: host:port, [v6]:port or :port");

    struct sockaddr_storage bound;
    socklen_t length;
    const char *reason = NULL;
    if (mb_address_parse(address, 0, &bound, &length, &reason) != 0)
        return listen_fail(error, capacity, address, reason ? reason : "invalid address");

    int fd = socket(bound.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return listen_fail(error, capacity, address, strerror(errno));
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    /* "[::]:port" means IPv6 only, as it does for the Modbus listeners: IPv4 is its own
     * address, so that both can be given. */
    if (bound.ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (const struct sockaddr *)&bound, length) != 0 || listen(fd, LISTEN_BACKLOG) != 0) {
        int cause = errno;
        close(fd);
        return listen_fail(error, capacity, address, strerror(cause));
    }

    struct http_server *server = calloc(1, sizeof *server);
    if (server == NULL) {
        close(fd);
        return listen_fail(error, capacity, address, "out of memory");
    }
    server->loop = loop;
    server->fd = fd;
    server->render = render;
    server->data = data;
    server->timeout_ms = HTTP_DEFAULT_TIMEOUT_MS;
    length = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &length) != 0 ||
        mb_address_format((const struct sockaddr *)&bound, length, server->text,
                          sizeof server->text) < 0) {
        int cause = errno;
        close(fd);
        free(server);
        return listen_fail(error, capacity, address, strerror(cause));
    }
    if (mb_loop_add(loop, fd, MB_IO_READ, listener_io, server) != 0) {
        close(fd);
        free(server);
        return listen_fail(error, capacity, address, "cannot watch the socket");
    }
    server->listener_events = MB_IO_READ;
    *server_out = server;
    return 0;
}

int http_address(const struct http_server *server, char *text, size_t capacity) {
    if (server == NULL || text == NULL || capacity == 0)
        return MB_EINVAL;
    int written = snprintf(text, capacity, "%s", server->text);
    return written < 0 || (size_t)written >= capacity ? MB_ENOSPC : written;
}

void http_set_timeout_ms(struct http_server *server, uint32_t timeout_ms) {
    if (server != NULL)
        server->timeout_ms = timeout_ms > 0 ? timeout_ms : HTTP_DEFAULT_TIMEOUT_MS;
}

void http_close(struct http_server *server) {
    if (server == NULL)
        return;
    for (int slot = 0; slot < HTTP_MAX_CONNECTIONS; slot++)
        if (server->connections[slot] != NULL)
            connection_close(server->connections[slot]);
    mb_timer_stop(server->loop, &server->pause_timer);
    mb_loop_remove(server->loop, server->fd);
    close(server->fd);
    free(server);
}
