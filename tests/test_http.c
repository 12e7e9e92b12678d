/* SPDX-License-Identifier: MIT */
/*
 * The metrics endpoint's HTTP side (src/app/daemon/http.c) over real loopback sockets. The test
 * steps the server's loop itself (mb_loop_run_once) between non-blocking client operations, so
 * there is one thread and every wait has a deadline.
 *
 * The render function serves:
 *   /metrics  "# TYPE up gauge\nup 1\n" (21 bytes)
 *   /big      4 MiB of '#', more than the socket buffers hold
 *   /broken   writes a body and returns 503, which it must not (the server answers 500)
 *   other     404
 */
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "app/daemon/http.h"
#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/loop.h"
#include "mbsec/transport.h"

#define BIG_BODY (4u << 20)
#define RESPONSE_KEPT 16384 /* bytes of each response the test keeps; the rest is counted */
#define DEADLINE_MS 5000

struct fixture {
    struct mb_loop *loop;
    struct http_server *server;
    char address[64];
    int renders;
    char last_path[256];
};

struct client {
    int fd;
    const char *request;
    size_t request_length;
    size_t sent;
    char response[RESPONSE_KEPT + 1];
    size_t received; /* in all, kept or not */
    int ended;       /* end of stream or an error: the server closed (or reset); the client
                        then closes its socket, as a client of `Connection: close` does */
    int reset;       /* it was ECONNRESET */
};

static int render(void *data, const char *path, FILE *out) {
    struct fixture *fx = data;
    fx->renders++;
    snprintf(fx->last_path, sizeof fx->last_path, "%s", path);
    if (strcmp(path, "/metrics") == 0) {
        fputs("# TYPE up gauge\nup 1\n", out);
        return 200;
    }
    if (strcmp(path, "/big") == 0) {
        for (size_t i = 0; i < BIG_BODY; i++)
            fputc('#', out);
        return 200;
    }
    if (strcmp(path, "/broken") == 0) {
        fputs("half a page", out);
        return 503;
    }
    fputs("this body is not sent", out);
    return 404;
}

static uint64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

/* CPU time this process has used. */
static uint64_t cpu_ms(void) {
    struct timespec used;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &used);
    return (uint64_t)used.tv_sec * 1000u + (uint64_t)used.tv_nsec / 1000000u;
}

/* Descriptors open in this process: the server's and the clients' sockets show up here. */
static int open_descriptors(void) {
    DIR *directory = opendir("/proc/self/fd");
    int count = 0;
    if (directory == NULL)
        return -1;
    while (readdir(directory) != NULL)
        count++;
    closedir(directory);
    return count;
}

static int fixture_open(struct fixture *fx, const char *address) {
    memset(fx, 0, sizeof *fx);
    char error[160] = "";
    if (mb_loop_create(&fx->loop) != 0)
        return -1;
    if (http_listen(fx->loop, address, render, fx, &fx->server, error, sizeof error) != 0) {
        fprintf(stderr, "  listen: %s\n", error);
        mb_loop_destroy(fx->loop);
        return -1;
    }
    CHECK(http_address(fx->server, fx->address, sizeof fx->address) > 0);
    return 0;
}

static void fixture_close(struct fixture *fx) {
    http_close(fx->server);
    mb_loop_destroy(fx->loop);
}

/* A connected, non-blocking client (the kernel completes the handshake from the listen queue,
 * before the server accepts). */
/* `receive_buffer`: SO_RCVBUF set before connecting (0: the kernel's default), which bounds
 * what one client_step() can read. */
static void client_connect_buffer(struct client *client, const struct fixture *fx,
                                  const char *request, size_t request_length, int receive_buffer) {
    memset(client, 0, sizeof *client);
    client->request = request;
    client->request_length = request_length;
    struct sockaddr_storage address;
    socklen_t length;
    client->fd = -1;
    if (mb_address_parse(fx->address, 0, &address, &length, NULL) != 0)
        return;
    int fd = socket(address.ss_family, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd >= 0 && receive_buffer > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    if (fd < 0 || connect(fd, (struct sockaddr *)&address, length) != 0) {
        if (fd >= 0)
            close(fd);
        return;
    }
    fcntl(fd, F_SETFL, fcntl(fd, F_GETFL) | O_NONBLOCK);
    client->fd = fd;
}

static void client_connect(struct client *client, const struct fixture *fx, const char *request,
                           size_t request_length) {
    client_connect_buffer(client, fx, request, request_length, 0);
}

static void client_close(struct client *client) {
    if (client->fd >= 0)
        close(client->fd);
    client->fd = -1;
}

/* Sends what is left of the request and reads what has arrived, without blocking. */
static void client_step(struct client *client) {
    if (client->fd < 0 || client->ended)
        return;
    while (client->sent < client->request_length) {
        ssize_t sent = send(client->fd, client->request + client->sent,
                            client->request_length - client->sent, MSG_NOSIGNAL);
        if (sent <= 0)
            break; /* full, or the server closed: the read below tells */
        client->sent += (size_t)sent;
    }
    for (;;) {
        char chunk[65536];
        ssize_t got = recv(client->fd, chunk, sizeof chunk, 0);
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return;
        if (got <= 0) {
            client->ended = 1;
            client->reset = got < 0 && errno == ECONNRESET;
            client->response[client->received < RESPONSE_KEPT ? client->received : RESPONSE_KEPT] =
                '\0';
            client_close(client);
            return;
        }
        if (client->received < RESPONSE_KEPT) {
            size_t kept = (size_t)got < RESPONSE_KEPT - client->received
                              ? (size_t)got
                              : RESPONSE_KEPT - client->received;
            memcpy(client->response + client->received, chunk, kept);
        }
        client->received += (size_t)got;
    }
}

/* Runs the server's loop and the clients until every client has seen the end of its response,
 * or `deadline_ms` has passed. Returns 1 when they all have. */
static int drive(struct fixture *fx, struct client *clients, int count, uint64_t deadline_ms) {
    uint64_t deadline = now_ms() + deadline_ms;
    for (;;) {
        int ended = 0;
        for (int i = 0; i < count; i++) {
            client_step(&clients[i]);
            ended += clients[i].ended || clients[i].fd < 0;
        }
        if (ended == count)
            return 1;
        if (now_ms() >= deadline)
            return 0;
        mb_loop_run_once(fx->loop, 5);
    }
}

/* Runs the loop until the process has `wanted` descriptors open or `deadline_ms` passes. */
static int drive_until_descriptors(struct fixture *fx, int wanted, uint64_t deadline_ms) {
    uint64_t deadline = now_ms() + deadline_ms;
    while (open_descriptors() != wanted) {
        if (now_ms() >= deadline)
            return 0;
        mb_loop_run_once(fx->loop, 5);
    }
    return 1;
}

/* One request, one response: the response text (NUL-terminated), or "" when none came. */
static const char *fetch(struct fixture *fx, struct client *client, const char *request) {
    client_connect(client, fx, request, strlen(request));
    CHECK(client->fd >= 0);
    CHECK(drive(fx, client, 1, DEADLINE_MS));
    client_close(client);
    return client->response;
}

static const char *const METRICS_RESPONSE = "HTTP/1.1 200 OK\r\n"
                                            "Content-Type: text/plain; version=0.0.4; "
                                            "charset=utf-8\r\n"
                                            "Content-Length: 21\r\n"
                                            "Connection: close\r\n"
                                            "\r\n"
                                            "# TYPE up gauge\n"
                                            "up 1\n";

/* The status line of a response, as "HTTP/1.1 200 OK". */
static const char *status_line(const char *response) {
    static char line[128];
    size_t length = strcspn(response, "\r");
    if (length >= sizeof line)
        length = sizeof line - 1;
    memcpy(line, response, length);
    line[length] = '\0';
    return line;
}

/* ---- serving ---- */

TEST(get_metrics_returns_200_with_the_rendered_body_and_its_length) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    CHECK(strncmp(fx.address, "127.0.0.1:", 10) == 0);
    CHECK(strcmp(fx.address, "127.0.0.1:0") != 0);
    struct client client;
    CHECK_STR(
        fetch(&fx, &client, "GET /metrics HTTP/1.1\r\nHost: 127.0.0.1\r\nUser-Agent: test\r\n\r\n"),
        METRICS_RESPONSE);
    CHECK_EQ(client.reset, 0);
    CHECK_EQ(fx.renders, 1);
    CHECK_STR(fx.last_path, "/metrics");
    fixture_close(&fx);
}

TEST(head_returns_the_same_headers_and_no_body) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    struct client client;
    CHECK_STR(fetch(&fx, &client, "HEAD /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
              "HTTP/1.1 200 OK\r\n"
              "Content-Type: text/plain; version=0.0.4; charset=utf-8\r\n"
              "Content-Length: 21\r\n"
              "Connection: close\r\n"
              "\r\n");
    CHECK_STR(fetch(&fx, &client, "HEAD /nothing HTTP/1.1\r\nHost: x\r\n\r\n"),
              "HTTP/1.1 404 Not Found\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 10\r\n"
              "Connection: close\r\n"
              "\r\n");
    fixture_close(&fx);
}

TEST(http_1_0_without_headers_and_bare_line_feeds_are_served) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    struct client client;
    CHECK_STR(fetch(&fx, &client, "GET /metrics HTTP/1.0\r\n\r\n"), METRICS_RESPONSE);
    CHECK_STR(fetch(&fx, &client, "GET /metrics HTTP/1.0\n\n"), METRICS_RESPONSE);
    CHECK_STR(fetch(&fx, &client, "\r\nGET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"),
              METRICS_RESPONSE);
    fixture_close(&fx);
}

TEST(the_query_string_is_ignored_for_routing) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    struct client client;
    CHECK_STR(fetch(&fx, &client, "GET /metrics?name[]=up&x=%20 HTTP/1.1\r\nHost: x\r\n\r\n"),
              METRICS_RESPONSE);
    CHECK_STR(fx.last_path, "/metrics");
    CHECK_STR(fetch(&fx, &client, "GET http://gw.example:9502/metrics?x HTTP/1.1\r\n\r\n"),
              METRICS_RESPONSE);
    CHECK_STR(fx.last_path, "/metrics");
    fixture_close(&fx);
}

TEST(an_unknown_path_is_404_with_a_short_body) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    struct client client;
    CHECK_STR(fetch(&fx, &client, "GET /secret HTTP/1.1\r\nHost: x\r\n\r\n"),
              "HTTP/1.1 404 Not Found\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 10\r\n"
              "Connection: close\r\n"
              "\r\n"
              "Not Found\n");
    CHECK_STR(fx.last_path, "/secret");
    fixture_close(&fx);
}

TEST(a_render_status_other_than_200_or_404_is_500_without_the_body) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    struct client client;
    CHECK_STR(fetch(&fx, &client, "GET /broken HTTP/1.1\r\nHost: x\r\n\r\n"),
              "HTTP/1.1 500 Internal Server Error\r\n"
              "Content-Type: text/plain; charset=utf-8\r\n"
              "Content-Length: 22\r\n"
              "Connection: close\r\n"
              "\r\n"
              "Internal Server Error\n");
    fixture_close(&fx);
}

TEST(other_methods_are_405_with_allow_and_are_not_rendered) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    static const char *const method_not_allowed = "HTTP/1.1 405 Method Not Allowed\r\n"
                                                  "Content-Type: text/plain; charset=utf-8\r\n"
                                                  "Content-Length: 19\r\n"
                                                  "Allow: GET, HEAD\r\n"
                                                  "Connection: close\r\n"
                                                  "\r\n"
                                                  "Method Not Allowed\n";
    struct client client;
    /* The body is never read; the response still arrives whole, not cut off by a reset. */
    CHECK_STR(
        fetch(&fx, &client, "POST /metrics HTTP/1.1\r\nHost: x\r\nContent-Length: 5\r\n\r\nhello"),
        method_not_allowed);
    CHECK_EQ(client.reset, 0);
    CHECK_STR(fetch(&fx, &client, "OPTIONS * HTTP/1.1\r\nHost: x\r\n\r\n"), method_not_allowed);
    CHECK_STR(fetch(&fx, &client, "get /metrics HTTP/1.1\r\n\r\n"), method_not_allowed);
    CHECK_EQ(fx.renders, 0);
    fixture_close(&fx);
}

TEST(a_malformed_request_is_400) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    static const char *const bad_request = "HTTP/1.1 400 Bad Request\r\n"
                                           "Content-Type: text/plain; charset=utf-8\r\n"
                                           "Content-Length: 12\r\n"
                                           "Connection: close\r\n"
                                           "\r\n"
                                           "Bad Request\n";
    static const char *const requests[] = {
        "hello\r\n\r\n",
        "GET /metrics\r\n\r\n",                        /* HTTP/0.9: no version */
        "GET  /metrics HTTP/1.1\r\n\r\n",              /* two spaces */
        "GET /metrics HTTP/1.1 \r\n\r\n",              /* trailing space */
        "GET /metrics HTTP/1.x\r\n\r\n",               /* version not digits */
        "GET /met\x01rics HTTP/1.1\r\n\r\n",           /* control byte in the target */
        "GET /metrics HTTP/1.1\r\nNo colon\r\n\r\n",   /* header without a name */
        "GET /metrics HTTP/1.1\r\nA: b\r\n c\r\n\r\n", /* obs-fold */
        "GET /metrics HTTP/1.1\rX: y\r\n\r\n",         /* a lone CR */
        "GET metrics HTTP/1.1\r\n\r\n",                /* neither origin- nor absolute-form */
    };
    for (size_t i = 0; i < sizeof requests / sizeof requests[0]; i++) {
        struct client client;
        const char *response = fetch(&fx, &client, requests[i]);
        if (strcmp(response, bad_request) != 0)
            harness_fail(__FILE__, __LINE__, "request %zu: got \"%s\"", i, status_line(response));
    }
    CHECK_EQ(fx.renders, 0);
    fixture_close(&fx);
}

TEST(garbage_without_a_line_end_is_refused_at_once_not_after_the_timeout) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    http_set_timeout_ms(fx.server, 60000);
    /* The start of a TLS ClientHello. */
    static const char hello[] = {0x16, 0x03, 0x01, 0x02, 0x00, 0x01};
    struct client client;
    client_connect(&client, &fx, hello, sizeof hello);
    CHECK(drive(&fx, &client, 1, DEADLINE_MS));
    CHECK_STR(status_line(client.response), "HTTP/1.1 400 Bad Request");
    client_close(&client);
    fixture_close(&fx);
}

TEST(an_http_version_other_than_1_x_is_505) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    struct client client;
    CHECK_STR(status_line(fetch(&fx, &client, "GET /metrics HTTP/2.0\r\n\r\n")),
              "HTTP/1.1 505 HTTP Version Not Supported");
    fixture_close(&fx);
}

TEST(a_request_sent_one_byte_at_a_time_is_served) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    static const char request[] = "GET /metrics?a=b HTTP/1.1\r\nHost: 127.0.0.1\r\nAccept: "
                                  "text/plain\r\n\r\n";
    struct client client;
    client_connect(&client, &fx, request, 0);
    for (size_t i = 0; i < sizeof request - 1; i++) {
        client.request_length = i + 1;
        client_step(&client);
        /* Let the server see each byte on its own. */
        for (int step = 0; step < 3; step++)
            mb_loop_run_once(fx.loop, 1);
        CHECK_EQ(client.received, 0);
    }
    CHECK(drive(&fx, &client, 1, DEADLINE_MS));
    CHECK_STR(client.response, METRICS_RESPONSE);
    client_close(&client);
    fixture_close(&fx);
}

/* A request of exactly `length` bytes: a request line, filler headers, the empty line. */
static char *request_of_length(size_t length) {
    static const char line[] = "GET /metrics HTTP/1.1\r\n";
    char *request = malloc(length + 1);
    size_t at = strlen(line);
    memcpy(request, line, at);
    while (length - at > 2) {
        size_t room = length - at - 2; /* what is left before the final CRLF */
        size_t header = room > 200 ? 200 : room;
        if (room - header > 0 && room - header < 5)
            header = room - 5; /* leave enough for one more "X:\r\n" line */
        if (header < 4)
            header = room;
        memcpy(request + at, "X:", 2);
        memset(request + at + 2, 'a', header - 4);
        memcpy(request + at + header - 2, "\r\n", 2);
        at += header;
    }
    memcpy(request + at, "\r\n", 2);
    request[length] = '\0';
    return request;
}

TEST(a_head_of_8_kib_is_served_and_one_byte_more_is_431) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    struct client client;
    char *request = request_of_length(HTTP_REQUEST_LIMIT);
    CHECK_EQ(strlen(request), 8192);
    CHECK_STR(fetch(&fx, &client, request), METRICS_RESPONSE);
    free(request);

    request = request_of_length(HTTP_REQUEST_LIMIT + 1);
    CHECK_STR(fetch(&fx, &client, request), "HTTP/1.1 431 Request Header Fields Too Large\r\n"
                                            "Content-Type: text/plain; charset=utf-8\r\n"
                                            "Content-Length: 32\r\n"
                                            "Connection: close\r\n"
                                            "\r\n"
                                            "Request Header Fields Too Large\n");
    free(request);

    /* A client that keeps sending far past the limit still gets the whole answer. */
    request = request_of_length(40000);
    CHECK_STR(status_line(fetch(&fx, &client, request)),
              "HTTP/1.1 431 Request Header Fields Too Large");
    CHECK_EQ(client.reset, 0);
    free(request);
    CHECK_EQ(fx.renders, 1);
    fixture_close(&fx);
}

/* ---- timeouts, limits, clients that go away ---- */

TEST(a_silent_client_and_a_half_request_are_closed_after_the_timeout) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    http_set_timeout_ms(fx.server, 200);
    static const char half[] = "GET /metrics HTTP/1.1\r\nHost: 127.";
    struct client clients[2];
    uint64_t started = now_ms();
    client_connect(&clients[0], &fx, "", 0);
    client_connect(&clients[1], &fx, half, sizeof half - 1);
    CHECK(drive(&fx, clients, 2, DEADLINE_MS));
    uint64_t elapsed = now_ms() - started;
    CHECK(elapsed >= 190);
    CHECK(elapsed < 2000);
    CHECK_EQ(clients[0].received, 0);
    CHECK_EQ(clients[1].received, 0);
    client_close(&clients[0]);
    client_close(&clients[1]);
    fixture_close(&fx);
}

TEST(a_client_trickling_bytes_is_closed_at_the_deadline_all_the_same) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    http_set_timeout_ms(fx.server, 300);
    static const char endless[] = "GET /metrics HTTP/1.1\r\nX-Slow: "
                                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa"
                                  "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa";
    struct client client;
    client_connect(&client, &fx, endless, 0);
    uint64_t started = now_ms();
    /* A byte every 10 ms: the head is never complete, yet bytes keep arriving. */
    uint64_t next_byte = started;
    while (!client.ended && client.request_length < sizeof endless - 1 &&
           now_ms() - started < DEADLINE_MS) {
        if (now_ms() >= next_byte) {
            client.request_length++;
            next_byte += 10;
        }
        client_step(&client);
        mb_loop_run_once(fx.loop, 2);
    }
    CHECK(client.request_length > 20);
    CHECK(drive(&fx, &client, 1, DEADLINE_MS));
    uint64_t elapsed = now_ms() - started;
    CHECK(elapsed >= 290);
    CHECK(elapsed < 1500);
    CHECK_EQ(client.received, 0);
    client_close(&client);
    fixture_close(&fx);
}

TEST(connections_past_32_wait_and_a_later_well_behaved_client_is_served) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    http_set_timeout_ms(fx.server, 1000);
    enum { SILENT = 40 };
    static struct client silent[SILENT];
    int before = open_descriptors();
    for (int i = 0; i < SILENT; i++) {
        client_connect(&silent[i], &fx, "", 0);
        CHECK(silent[i].fd >= 0);
    }
    /* 40 client sockets, and 32 accepted ones on the server's side; no more. */
    CHECK(drive_until_descriptors(&fx, before + SILENT + HTTP_MAX_CONNECTIONS, 900));
    for (int i = 0; i < 20; i++)
        mb_loop_run_once(fx.loop, 1);
    CHECK_EQ(open_descriptors(), before + SILENT + HTTP_MAX_CONNECTIONS);

    struct client client;
    uint64_t started = now_ms();
    uint64_t cpu_started = cpu_ms();
    client_connect(&client, &fx, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n",
                   strlen("GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"));
    CHECK(drive(&fx, &client, 1, DEADLINE_MS));
    CHECK_STR(client.response, METRICS_RESPONSE);
    /* It waited in the listen queue for the silent ones to time out; it was not refused. */
    uint64_t waited = now_ms() - started;
    CHECK(waited >= 500);
    CHECK(waited < 3000);
    /* While full, the listener is not watched: a server polling it would burn the CPU. */
    CHECK(cpu_ms() - cpu_started < waited / 2);
    client_close(&client);
    for (int i = 0; i < SILENT; i++)
        client_close(&silent[i]);
    CHECK(drive_until_descriptors(&fx, before, DEADLINE_MS));
    fixture_close(&fx);
}

TEST(forty_simultaneous_requests_are_all_served) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    enum { CLIENTS = 40 };
    static struct client clients[CLIENTS];
    static const char request[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    int before = open_descriptors();
    for (int i = 0; i < CLIENTS; i++)
        client_connect(&clients[i], &fx, request, sizeof request - 1);
    CHECK(drive(&fx, clients, CLIENTS, DEADLINE_MS));
    int served = 0;
    for (int i = 0; i < CLIENTS; i++) {
        served += strcmp(clients[i].response, METRICS_RESPONSE) == 0;
        client_close(&clients[i]);
    }
    CHECK_EQ(served, CLIENTS);
    CHECK_EQ(fx.renders, CLIENTS);
    CHECK(drive_until_descriptors(&fx, before, DEADLINE_MS));
    fixture_close(&fx);
}

static void reset_on_close(int fd) {
    struct linger abort_on_close = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &abort_on_close, sizeof abort_on_close);
}

TEST(clients_that_close_or_reset_before_reading_do_not_crash_or_leak) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    static const char request[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    int before = open_descriptors();

    /* Reads the start of a 4 MiB response, then resets: the server is mid-write. The small
     * receive buffer keeps one step from reading the whole response when the machine is so
     * busy that the server wrote all of it into the socket before the client read. */
    struct client reader;
    client_connect_buffer(&reader, &fx, request, sizeof request - 1, 16384);
    uint64_t deadline = now_ms() + DEADLINE_MS;
    while (reader.received < 100000 && now_ms() < deadline) {
        client_step(&reader);
        mb_loop_run_once(fx.loop, 5);
    }
    CHECK(reader.received >= 100000);
    CHECK(reader.received < BIG_BODY);
    reset_on_close(reader.fd);
    client_close(&reader);
    CHECK(drive_until_descriptors(&fx, before, DEADLINE_MS));

    /* Sends the request and closes at once, with and without a reset. */
    for (int abort = 0; abort < 2; abort++) {
        struct client gone;
        client_connect(&gone, &fx, request, sizeof request - 1);
        client_step(&gone);
        if (abort)
            reset_on_close(gone.fd);
        client_close(&gone);
        CHECK(drive_until_descriptors(&fx, before, DEADLINE_MS));
    }

    /* Connects and goes away without a word. */
    struct client quiet;
    client_connect(&quiet, &fx, "", 0);
    client_close(&quiet);
    CHECK(drive_until_descriptors(&fx, before, DEADLINE_MS));

    struct client client;
    CHECK_STR(fetch(&fx, &client, "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n"), METRICS_RESPONSE);
    CHECK(drive_until_descriptors(&fx, before, DEADLINE_MS));
    fixture_close(&fx);
}

TEST(a_big_response_is_written_whole_to_a_client_that_reads) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    struct client client;
    const char *response = fetch(&fx, &client, "GET /big HTTP/1.0\r\n\r\n");
    const char *body = strstr(response, "\r\n\r\n");
    CHECK(strstr(response, "\r\nContent-Length: 4194304\r\n") != NULL);
    CHECK(body != NULL);
    if (body != NULL)
        CHECK_EQ(client.received, (size_t)(body + 4 - response) + BIG_BODY);
    fixture_close(&fx);
}

TEST(closing_the_server_closes_its_connections) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    int before = open_descriptors();
    struct client clients[3];
    static const char request[] = "GET /big HTTP/1.1\r\nHost: x\r\n\r\n";
    client_connect(&clients[0], &fx, "", 0);
    client_connect(&clients[1], &fx, "GET /metr", 9);
    client_connect(&clients[2], &fx, request, sizeof request - 1);
    CHECK(drive_until_descriptors(&fx, before + 6, DEADLINE_MS));
    for (int i = 0; i < 3; i++)
        client_step(&clients[i]);
    for (int i = 0; i < 5; i++)
        mb_loop_run_once(fx.loop, 1);
    http_close(fx.server);
    /* Only the clients' sockets and nothing of the server's (its listener included) remain. */
    CHECK_EQ(open_descriptors(), before + 3 - 1);
    for (int i = 0; i < 3; i++)
        client_close(&clients[i]);
    mb_loop_destroy(fx.loop);
}

TEST(running_out_of_descriptors_pauses_accepting_instead_of_spinning) {
    struct fixture fx;
    if (fixture_open(&fx, "127.0.0.1:0") != 0) {
        CHECK(0);
        return;
    }
    static const char request[] = "GET /metrics HTTP/1.1\r\nHost: x\r\n\r\n";
    struct client client;
    client_connect(&client, &fx, request, sizeof request - 1);
    struct rlimit saved, tight;
    CHECK_EQ(getrlimit(RLIMIT_NOFILE, &saved), 0);
    tight = saved;
    tight.rlim_cur = (rlim_t)client.fd + 1; /* no descriptor left for the server's accept */
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &tight), 0);
    int probe = dup(client.fd);
    if (probe >= 0) {
        /* A free descriptor below the client's: the limit cannot bite here. */
        close(probe);
        setrlimit(RLIMIT_NOFILE, &saved);
        printf("skip: descriptors are not contiguous\n");
        client_close(&client);
        fixture_close(&fx);
        return;
    }
    uint64_t started = now_ms();
    uint64_t cpu_started = cpu_ms();
    while (now_ms() - started < 300) {
        client_step(&client);
        mb_loop_run_once(fx.loop, 10);
    }
    CHECK_EQ(client.received, 0);
    CHECK(cpu_ms() - cpu_started < 150);
    CHECK_EQ(setrlimit(RLIMIT_NOFILE, &saved), 0);
    CHECK(drive(&fx, &client, 1, DEADLINE_MS));
    CHECK_STR(client.response, METRICS_RESPONSE);
    fixture_close(&fx);
}

/* ---- addresses ---- */

TEST(listens_on_ipv6_loopback_when_the_machine_has_it) {
    int probe = socket(AF_INET6, SOCK_STREAM, 0);
    struct sockaddr_in6 loopback = {.sin6_family = AF_INET6, .sin6_addr = IN6ADDR_LOOPBACK_INIT};
    int available = probe >= 0 && bind(probe, (struct sockaddr *)&loopback, sizeof loopback) == 0;
    if (probe >= 0)
        close(probe);
    if (!available) {
        printf("skip: no ::1 on this machine\n");
        return;
    }
    struct fixture fx;
    if (fixture_open(&fx, "[::1]:0") != 0) {
        CHECK(0);
        return;
    }
    CHECK(strncmp(fx.address, "[::1]:", 6) == 0);
    struct client client;
    CHECK_STR(fetch(&fx, &client, "GET /metrics HTTP/1.1\r\nHost: [::1]\r\n\r\n"),
              METRICS_RESPONSE);
    fixture_close(&fx);
}

static int listen_error(struct mb_loop *loop, const char *address, char *error, size_t capacity) {
    struct http_server *server = (struct http_server *)(uintptr_t)1; /* must become NULL */
    int rc = http_listen(loop, address, render, NULL, &server, error, capacity);
    CHECK(server == NULL);
    return rc;
}

TEST(a_bad_address_gives_one_error_line) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    static const char *const addresses[] = {
        "",
        "127.0.0.1",
        "localhost",
        "127.0.0.1:99999",
        "127.0.0.1:port",
        "[::1",
        "[::1]x",
        "::1:9502",
        "[zz::1]:9502",
        "256.1.1.1:9502",
        "[::1]",
        "203.0.113.1:0" /* not an address of this machine */,
    };
    for (size_t i = 0; i < sizeof addresses / sizeof addresses[0]; i++) {
        char error[160] = "";
        int rc = listen_error(loop, addresses[i], error, sizeof error);
        if (rc != -1 || error[0] == '\0' || strchr(error, '\n') != NULL)
            harness_fail(__FILE__, __LINE__, "\"%s\": rc %d, error \"%s\"", addresses[i], rc,
                         error);
    }
    char error[160] = "";
    CHECK_EQ(listen_error(loop, "127.0.0.1:port", error, sizeof error), -1);
    CHECK_STR(error, "cannot listen on 127.0.0.1:port: port is not a number 0..65535");
    CHECK_EQ(listen_error(loop, "127.0.0.1", error, sizeof error), -1);
    CHECK_STR(error, "cannot listen on 127.0.0.1: a port is required: host:port, [v6]:port or "
                     ":port");

    /* A port someone listens on already. */
    struct http_server *first;
    CHECK_EQ(http_listen(loop, "127.0.0.1:0", render, NULL, &first, error, sizeof error), 0);
    char taken[64];
    CHECK(http_address(first, taken, sizeof taken) > 0);
    CHECK_EQ(listen_error(loop, taken, error, sizeof error), -1);
    CHECK(strstr(error, "Address already in use") != NULL);
    char tiny[4];
    CHECK_EQ(http_address(first, tiny, sizeof tiny), MB_ENOSPC);
    http_close(first);

    /* A small error buffer gets a truncated, terminated line. */
    char small[12];
    memset(small, 'x', sizeof small);
    CHECK_EQ(listen_error(loop, "nonsense", small, sizeof small), -1);
    CHECK_EQ(strlen(small), sizeof small - 1);
    mb_loop_destroy(loop);
}

/* ---- the parser, on input that ends where a readable page does ---- */

TEST(the_parser_needs_more_for_every_prefix_and_never_reads_past_the_end) {
    static const char head[] = "\r\nGET /metrics?x=1 HTTP/1.1\r\nHost: a\r\nAccept: */*\r\n\r\n";
    size_t length = sizeof head - 1;
    struct http_request request;
    for (size_t i = 0; i < length; i++)
        CHECK_EQ(http_parse_request((const char *)guard_copy(head, i), i, &request), 0);
    const char *copy = (const char *)guard_copy(head, length);
    CHECK_EQ(http_parse_request(copy, length, &request), (int)length);
    CHECK_EQ(request.method_length, 3);
    CHECK(memcmp(request.method, "GET", 3) == 0);
    CHECK_EQ(request.path_length, 8);
    CHECK(memcmp(request.path, "/metrics", 8) == 0);
    CHECK_EQ(request.minor_version, 1);
    /* What follows the head is not the parser's business. */
    static const char with_body[] = "POST / HTTP/1.0\n\nbody";
    CHECK_EQ(http_parse_request(with_body, sizeof with_body - 1, &request), 17);
}

TEST(the_parser_refuses_garbage_before_its_line_ends) {
    struct http_request request;
    static const char *const prefixes[] = {
        "\x16\x03",
        "GET\t",
        " GET",
        "GET /a\x7f",
        "GET / HTTQ",
        "GET / HTTP/a",
        "GET / HTTP/1,",
        "GET / HTTP/1.1x",
        "GET / HTTP/1.1\r\nX :",
        "GET / HTTP/1.1\r\n\tx",
    };
    for (size_t i = 0; i < sizeof prefixes / sizeof prefixes[0]; i++) {
        size_t length = strlen(prefixes[i]);
        int rc =
            http_parse_request((const char *)guard_copy(prefixes[i], length), length, &request);
        if (rc != -400)
            harness_fail(__FILE__, __LINE__, "prefix %zu: %d, want -400", i, rc);
    }
    static const char http2[] = "PRI * HTTP/2.0\r\n\r\nSM\r\n\r\n";
    CHECK_EQ(http_parse_request(http2, sizeof http2 - 1, &request), -505);
}

TEST(the_parser_finds_the_path_of_each_target_form) {
    static const struct {
        const char *head;
        const char *path; /* NULL: no path (not origin- or absolute-form) */
    } cases[] = {
        {"GET / HTTP/1.1\r\n\r\n", "/"},
        {"GET /metrics HTTP/1.1\r\n\r\n", "/metrics"},
        {"GET /metrics?a=/b HTTP/1.1\r\n\r\n", "/metrics"},
        {"GET /metrics#frag HTTP/1.1\r\n\r\n", "/metrics"},
        {"GET /a%2Fb HTTP/1.1\r\n\r\n", "/a%2Fb"},
        {"GET http://host:9502/metrics HTTP/1.1\r\n\r\n", "/metrics"},
        {"GET HTTPS://host/metrics?x HTTP/1.1\r\n\r\n", "/metrics"},
        {"GET http://host HTTP/1.1\r\n\r\n", "/"},
        {"GET http://host?x=/y HTTP/1.1\r\n\r\n", "/"},
        {"OPTIONS * HTTP/1.1\r\n\r\n", NULL},
        {"CONNECT host:443 HTTP/1.1\r\n\r\n", NULL},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct http_request request;
        size_t length = strlen(cases[i].head);
        int rc = http_parse_request(cases[i].head, length, &request);
        CHECK_EQ(rc, (int)length);
        if (cases[i].path == NULL) {
            CHECK(request.path == NULL);
        } else if (request.path == NULL || request.path_length != strlen(cases[i].path) ||
                   memcmp(request.path, cases[i].path, request.path_length) != 0) {
            harness_fail(__FILE__, __LINE__, "case %zu: path \"%.*s\", want \"%s\"", i,
                         request.path ? (int)request.path_length : 6,
                         request.path ? request.path : "(null)", cases[i].path);
        }
    }
}

int main(void) {
    RUN(get_metrics_returns_200_with_the_rendered_body_and_its_length);
    RUN(head_returns_the_same_headers_and_no_body);
    RUN(http_1_0_without_headers_and_bare_line_feeds_are_served);
    RUN(the_query_string_is_ignored_for_routing);
    RUN(an_unknown_path_is_404_with_a_short_body);
    RUN(a_render_status_other_than_200_or_404_is_500_without_the_body);
    RUN(other_methods_are_405_with_allow_and_are_not_rendered);
    RUN(a_malformed_request_is_400);
    RUN(garbage_without_a_line_end_is_refused_at_once_not_after_the_timeout);
    RUN(an_http_version_other_than_1_x_is_505);
    RUN(a_request_sent_one_byte_at_a_time_is_served);
    RUN(a_head_of_8_kib_is_served_and_one_byte_more_is_431);
    RUN(a_silent_client_and_a_half_request_are_closed_after_the_timeout);
    RUN(a_client_trickling_bytes_is_closed_at_the_deadline_all_the_same);
    RUN(connections_past_32_wait_and_a_later_well_behaved_client_is_served);
    RUN(forty_simultaneous_requests_are_all_served);
    RUN(clients_that_close_or_reset_before_reading_do_not_crash_or_leak);
    RUN(a_big_response_is_written_whole_to_a_client_that_reads);
    RUN(closing_the_server_closes_its_connections);
    RUN(running_out_of_descriptors_pauses_accepting_instead_of_spinning);
    RUN(listens_on_ipv6_loopback_when_the_machine_has_it);
    RUN(a_bad_address_gives_one_error_line);
    RUN(the_parser_needs_more_for_every_prefix_and_never_reads_past_the_end);
    RUN(the_parser_refuses_garbage_before_its_line_ends);
    RUN(the_parser_finds_the_path_of_each_target_form);
    return harness_result();
}
