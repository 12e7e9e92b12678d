/* SPDX-License-Identifier: MIT */
/*
 * The metrics endpoint's HTTP side (src/app/daemon/http.c): its request parser, and the server
 * itself over a loopback connection driven on one loop. The input is what a client sends.
 *
 * Properties of http_parse_request():
 *   - it returns 0, -400, -505 or a head length in 1..length; a parsed head's method is a
 *     non-empty token, its path (when there is one) starts with '/' and lies in the buffer or is
 *     "/", its minor version is a digit;
 *   - cut anywhere, it agrees with the whole: every prefix shorter than a parsed head gives 0,
 *     every longer one gives the same head (bytes past the head are never looked at); for input
 *     it refuses, a prefix gives 0 or the same refusal, and once refused stays refused.
 * Properties of the server, with the input sent whole and again in pseudo-random pieces:
 *   - a request head it can parse gets the status the head calls for: GET or HEAD /metrics 200
 *     with the rendered body (HEAD: no body), another path 404, no path 400, another method
 *     405; every response is complete, its status line and Content-Length are right, and the
 *     connection ends after it;
 *   - anything else gets the parser's 4xx/5xx, 431 for a head over the limit, or no response
 *     (a head that never ended, or a refused header line the server had no reason to parse
 *     yet); never a 200.
 * Everything is bounded: a run that does not end within two seconds is a failure (a hang).
 */
#include <errno.h>
#include <linux/sockios.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app/daemon/http.h"
#include "fuzz.h"
#include "mbsec/error.h"
#include "mbsec/loop.h"
#include "mbsec/transport.h"

#define BODY "# TYPE up gauge\nup 1\n"
#define CUT_POINTS_ALL 512  /* every prefix up to this length is tried */
#define CUT_POINTS_MORE 256 /* and this many more, spread over longer inputs */
#define DEADLINE_MS 2000
#define SILENT_TURNS 4 /* loop turns of silence, once the server has every byte, that mean none */

/* ---- the parser ---- */

/* A parse, with its views as offsets into the input so that parses of copies compare. */
struct parsed {
    int rc;
    size_t method_offset, method_length;
    int has_path, path_is_root; /* path_is_root: the parser's own "/" (absolute-form target) */
    size_t path_offset, path_length;
    int minor_version;
};

/* Parses an exact-size copy of data[0..length), so that a read past it is caught. */
static void parse(const uint8_t *data, size_t length, struct parsed *out) {
    char *copy = (char *)fuzz_copy(data, length);
    struct http_request request;
    memset(out, 0, sizeof *out);
    out->rc = http_parse_request(copy, length, &request);
    FUZZ_CHECK(out->rc == 0 || out->rc == -400 || out->rc == -505 ||
               (out->rc > 0 && (size_t)out->rc <= length));
    if (out->rc > 0) {
        FUZZ_CHECK(request.method >= copy && request.method_length > 0 &&
                   request.method_length <= length - (size_t)(request.method - copy));
        for (size_t i = 0; i < request.method_length; i++)
            FUZZ_CHECK(request.method[i] > ' ' && request.method[i] < 0x7F);
        out->method_offset = (size_t)(request.method - copy);
        out->method_length = request.method_length;
        if (request.path != NULL) {
            out->has_path = 1;
            out->path_length = request.path_length;
            FUZZ_CHECK(request.path_length > 0 && request.path[0] == '/');
            if (request.path >= copy && request.path < copy + length) {
                FUZZ_CHECK(request.path_length <= length - (size_t)(request.path - copy));
                out->path_offset = (size_t)(request.path - copy);
            } else {
                FUZZ_CHECK(request.path_length == 1);
                out->path_is_root = 1;
            }
            for (size_t i = 0; i < request.path_length; i++)
                FUZZ_CHECK(request.path[i] > ' ' && request.path[i] < 0x7F &&
                           request.path[i] != '?' && request.path[i] != '#');
        }
        FUZZ_CHECK(request.minor_version >= 0 && request.minor_version <= 9);
        out->minor_version = request.minor_version;
    }
    free(copy);
}

static int same_parse(const struct parsed *a, const struct parsed *b) {
    return memcmp(a, b, sizeof *a) == 0;
}

/* Cut anywhere, the parser agrees with the whole input. */
static void check_cuts(const uint8_t *data, size_t size, const struct parsed *whole) {
    int refused = 0;
    size_t step = size > CUT_POINTS_ALL ? (size - CUT_POINTS_ALL) / CUT_POINTS_MORE + 1 : 1;
    for (size_t cut = 0; cut < size; cut = cut < CUT_POINTS_ALL ? cut + 1 : cut + step) {
        struct parsed prefix;
        parse(data, cut, &prefix);
        if (whole->rc > 0 && cut >= (size_t)whole->rc) {
            FUZZ_CHECK(same_parse(&prefix, whole));
        } else if (whole->rc >= 0) {
            FUZZ_CHECK(prefix.rc == 0);
        } else {
            FUZZ_CHECK(prefix.rc == 0 || prefix.rc == whole->rc);
            FUZZ_CHECK(!refused || prefix.rc == whole->rc);
            refused |= prefix.rc != 0;
        }
    }
    if (whole->rc > 0) {
        struct parsed head;
        parse(data, (size_t)whole->rc, &head);
        FUZZ_CHECK(same_parse(&head, whole));
    }
}

/* ---- the server ---- */

struct endpoint {
    struct mb_loop *loop;
    struct http_server *server;
    struct sockaddr_storage address;
    socklen_t address_length;
};

static int render(void *data, const char *path, FILE *out) {
    (void)data;
    FUZZ_CHECK(path[0] == '/');
    if (strcmp(path, "/metrics") != 0)
        return 404;
    fputs(BODY, out);
    return 200;
}

/* One server for the whole run: a listener per input would only cost time. */
static struct endpoint *endpoint(void) {
    static struct endpoint shared;
    if (shared.loop != NULL)
        return &shared;
    char error[200], text[80];
    FUZZ_CHECK(mb_loop_create(&shared.loop) == 0);
    if (http_listen(shared.loop, "127.0.0.1:0", render, NULL, &shared.server, error,
                    sizeof error) != 0) {
        fprintf(stderr, "fuzz_http: %s\n", error);
        FUZZ_CHECK(0);
    }
    FUZZ_CHECK(http_address(shared.server, text, sizeof text) > 0);
    FUZZ_CHECK(mb_address_parse(text, 0, &shared.address, &shared.address_length, NULL) == 0);
    return &shared;
}

static uint64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

struct exchange {
    struct fuzz_log response;
    int ended; /* the server closed its side (end of stream, or a reset) */
};

/* Reads what has arrived. */
static void receive(int fd, struct exchange *exchange) {
    for (;;) {
        uint8_t chunk[4096];
        ssize_t got = recv(fd, chunk, sizeof chunk, 0);
        if (got > 0) {
            fuzz_log_append(&exchange->response, chunk, (size_t)got);
            continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        exchange->ended = 1;
        return;
    }
}

/* Bytes sent on `fd` that the peer's kernel has not taken yet. */
static int unacknowledged(int fd) {
    int count = 0;
    FUZZ_CHECK(ioctl(fd, SIOCOUTQ, &count) == 0);
    return count;
}

/*
 * Sends the input cut as `chunking` says and runs the loop until the server has answered and
 * closed its side, or has taken every byte and stays silent. The client never sends a FIN and
 * closes with a reset: the side that closes first keeps its port in TIME_WAIT for a minute, and
 * thousands of runs a second would fill the machine's port range. (So a head that never ends
 * is judged by the server's silence, not by its close at the end of the stream.)
 */
static void converse(struct endpoint *at, const uint8_t *data, size_t size,
                     enum fuzz_chunking chunking, struct exchange *exchange) {
    memset(exchange, 0, sizeof *exchange);
    int fd = socket(at->address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    /* Non-blocking, so that libFuzzer's watchdog signal cannot cut the connect short. */
    if (connect(fd, (struct sockaddr *)&at->address, at->address_length) != 0) {
        FUZZ_CHECK(errno == EINPROGRESS || errno == EINTR);
        struct pollfd writable = {.fd = fd, .events = POLLOUT};
        while (poll(&writable, 1, DEADLINE_MS) < 0)
            FUZZ_CHECK(errno == EINTR);
        int error = -1;
        socklen_t length = sizeof error;
        FUZZ_CHECK(getsockopt(fd, SOL_SOCKET, SO_ERROR, &error, &length) == 0 && error == 0);
    }
    struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};
    FUZZ_CHECK(setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close) == 0);

    uint64_t deadline = now_ms() + DEADLINE_MS;
    struct fuzz_chunker chunker;
    fuzz_chunker_init(&chunker, chunking, data, size);
    size_t sent = 0;
    int silent = 0; /* loop turns with everything taken and nothing answered */
    while (!exchange->ended && silent < SILENT_TURNS) {
        FUZZ_CHECK(now_ms() < deadline);
        if (sent < size) {
            size_t chunk = fuzz_chunk_next(&chunker, size - sent);
            ssize_t written = chunk > 0 ? send(fd, data + sent, chunk, MSG_NOSIGNAL) : 0;
            if (written > 0)
                sent += (size_t)written;
            else if (written < 0 && errno != EAGAIN && errno != EWOULDBLOCK)
                sent = size; /* the server has gone: what it answered is still to be read */
        }
        mb_loop_run_once(at->loop, 0);
        receive(fd, exchange);
        if (sent == size && exchange->response.length == 0 && unacknowledged(fd) == 0)
            silent++;
    }
    close(fd);
    /* Let the server see the reset and free the connection. */
    for (int i = 0; i < 4; i++)
        mb_loop_run_once(at->loop, 0);
}

/* What the server must answer for the input: a status, 0 for no response at all, or
 * -1 when the parser refuses the head (*refusal): that status, no response (the head never ended,
 * so the bytes after the request line may never have been parsed) or 431 will do. */
static int expected_status(const uint8_t *data, size_t size, int *head_only, int *refusal) {
    size_t seen = size < HTTP_REQUEST_LIMIT ? size : HTTP_REQUEST_LIMIT;
    struct parsed head;
    parse(data, seen, &head);
    *head_only = 0;
    *refusal = -head.rc;
    if (head.rc == 0)
        return size >= HTTP_REQUEST_LIMIT ? 431 : 0;
    if (head.rc < 0)
        return -1;
    const char *method = (const char *)data + head.method_offset;
    int get = head.method_length == 3 && memcmp(method, "GET", 3) == 0;
    int head_method = head.method_length == 4 && memcmp(method, "HEAD", 4) == 0;
    if (!get && !head_method)
        return 405;
    *head_only = head_method;
    if (!head.has_path)
        return 400;
    const char *path = head.path_is_root ? "/" : (const char *)data + head.path_offset;
    return head.path_length == 8 && memcmp(path, "/metrics", 8) == 0 ? 200 : 404;
}

/* The response's status, after checking its form; 0 when there was none. */
static int check_response(const struct exchange *exchange, int head_only) {
    const char *text = (const char *)exchange->response.bytes;
    size_t length = exchange->response.length;
    if (length == 0)
        return 0;
    FUZZ_CHECK(length > 12 && memcmp(text, "HTTP/1.1 ", 9) == 0);
    int status = (text[9] - '0') * 100 + (text[10] - '0') * 10 + (text[11] - '0');
    size_t head_end = 0;
    for (size_t i = 0; i + 3 < length && head_end == 0; i++)
        if (memcmp(text + i, "\r\n\r\n", 4) == 0)
            head_end = i + 4;
    FUZZ_CHECK(head_end > 0);
    char head[512];
    FUZZ_CHECK(head_end < sizeof head);
    memcpy(head, text, head_end);
    head[head_end] = '\0';
    const char *field = strstr(head, "\r\nContent-Length: ");
    FUZZ_CHECK(field != NULL);
    size_t content_length = strtoul(field + 18, NULL, 10);
    FUZZ_CHECK(strstr(head, "\r\nConnection: close\r\n") != NULL);
    size_t body_length = length - head_end;
    if (status == 200 && !head_only) {
        FUZZ_CHECK(content_length == sizeof BODY - 1 && body_length == content_length);
        FUZZ_CHECK(memcmp(text + head_end, BODY, body_length) == 0);
    } else if (status == 200) {
        FUZZ_CHECK(content_length == sizeof BODY - 1 && body_length == 0);
    } else {
        FUZZ_CHECK(body_length == (head_only ? 0 : content_length));
    }
    if (status == 405)
        FUZZ_CHECK(strstr(head, "\r\nAllow: GET, HEAD\r\n") != NULL);
    return status;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct parsed whole;
    parse(data, size, &whole);
    check_cuts(data, size, &whole);

    int head_only, refusal;
    int expected = expected_status(data, size, &head_only, &refusal);
    struct endpoint *at = endpoint();
    static const enum fuzz_chunking cuttings[] = {FUZZ_CHUNK_WHOLE, FUZZ_CHUNK_PSEUDORANDOM};
    for (size_t i = 0; i < sizeof cuttings / sizeof cuttings[0]; i++) {
        struct exchange exchange;
        converse(at, data, size, cuttings[i], &exchange);
        int status = check_response(&exchange, head_only);
        if (expected >= 0)
            FUZZ_CHECK(status == expected);
        else
            FUZZ_CHECK(status == 0 || status == refusal ||
                       (status == 431 && size >= HTTP_REQUEST_LIMIT));
        fuzz_log_free(&exchange.response);
    }
    return 0;
}
