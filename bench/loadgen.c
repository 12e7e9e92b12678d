/* SPDX-License-Identifier: MIT */
/*
 * A Modbus/TCP load generator for the side-by-side server benchmark (bench/server-vs-libmodbus).
 *
 *     loadgen [--connections N] [--depth D] [--seconds S] [--warmup S] [--requests MAX]
 *             [--quantity Q] HOST PORT
 *     loadgen --hold N [--sources K] [--seconds S] HOST PORT
 *
 * Load mode: N connections, each with D requests in flight (pipelined: D FC 3 requests for Q
 * registers written at once, then a new one for every answer). Every answer is checked: a
 * transaction id that is outstanding on that connection, protocol id 0, the unit id echoed, and
 * a normal FC 3 response that mb_response_matches() the request (byte count 2Q). It stops by
 * itself after the warm-up plus S seconds (or MAX answers), waits at most 5 s for the answers
 * still owed, and prints one line:
 *
 *     result connections=8 depth=16 seconds=5.00 requests=N rps=R p50_us=A p99_us=B max_us=C
 * errors=0
 *
 * (latency: from the write of a request to the read that completed its answer). Exit status 0
 * only when every answer was right and none was missing.
 *
 * Hold mode: opens N connections (from source addresses 127.0.0.1 .. 127.0.0.K, so a
 * per-source limit does not get in the way), checks that each is served with one request,
 * prints "holding N connections" and keeps them open, idle, until SIGTERM/SIGINT or S seconds.
 *
 * Requests are encoded and answers decoded with mbsec's own codec. Single-threaded, epoll.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbsec/mbsec.h>

#define MAX_CONNECTIONS 20000     /* hold mode */
#define MAX_LOAD_CONNECTIONS 1024 /* load mode: each keeps 512 KiB of send times */
#define MAX_DEPTH 256
#define REQUEST_SIZE (MB_MBAP_HEADER_SIZE + 5)
#define HISTOGRAM_US 1000000 /* 1 µs buckets up to 1 s; slower answers go in the last one */
#define DRAIN_SECONDS 5
#define UNIT_ID 1

struct options {
    const char *host;
    int port;
    int connections;
    int depth;
    double seconds;
    double warmup;
    uint64_t max_requests;
    int quantity;
    int hold;
    int sources;
};

struct connection {
    int fd;
    int open;
    struct mb_mbap_decoder decoder;
    uint16_t next_transaction;
    int outstanding;
    uint64_t sent_ns[65536]; /* by transaction id; 0 = not outstanding */
    uint8_t out[MAX_DEPTH * REQUEST_SIZE];
    size_t out_length;
    size_t out_offset;
};

struct run {
    const struct options *options;
    struct connection *connections;
    struct mb_request request;
    uint8_t request_pdu[MB_PDU_MAX];
    size_t request_pdu_length;
    uint32_t *histogram;
    uint64_t measured; /* answers received inside the measured window */
    uint64_t answered; /* all answers */
    uint64_t errors;
    uint64_t max_latency_ns;
    uint64_t measure_start_ns;
    uint64_t stop_ns;
    int stopping;
};

static volatile sig_atomic_t stop_signal;

static void on_signal(int signal_number) {
    (void)signal_number;
    stop_signal = 1;
}

static uint64_t now_ns(void) {
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void usage(void) {
    fprintf(stderr, "usage: loadgen [--connections N] [--depth D] [--seconds S] [--warmup S]\n"
                    "               [--requests MAX] [--quantity Q] HOST PORT\n"
                    "       loadgen --hold N [--sources K] [--seconds S] HOST PORT\n");
}

static int parse_long(const char *text, long minimum, long maximum, long *value) {
    char *end = NULL;

    errno = 0;
    *value = strtol(text, &end, 10);
    return errno == 0 && end != text && *end == '\0' && *value >= minimum && *value <= maximum ? 0
                                                                                               : -1;
}

static int parse_options(int argc, char **argv, struct options *options) {
    int positional = 0;

    *options = (struct options){
        .connections = 8, .depth = 1, .seconds = 5.0, .warmup = 0.5, .quantity = 10, .sources = 32};
    for (int i = 1; i < argc; i++) {
        const char *name = argv[i];
        long value = 0;
        if (name[0] == '-' && name[1] == '-') {
            if (i + 1 >= argc) {
                return -1;
            }
            const char *text = argv[++i];
            if (strcmp(name, "--seconds") == 0 || strcmp(name, "--warmup") == 0) {
                char *end = NULL;
                double seconds = strtod(text, &end);
                if (end == text || *end != '\0' || seconds < 0 || seconds > 3600) {
                    return -1;
                }
                *(strcmp(name, "--seconds") == 0 ? &options->seconds : &options->warmup) = seconds;
                continue;
            }
            if (strcmp(name, "--connections") == 0 &&
                parse_long(text, 1, MAX_LOAD_CONNECTIONS, &value) == 0) {
                options->connections = (int)value;
            } else if (strcmp(name, "--depth") == 0 &&
                       parse_long(text, 1, MAX_DEPTH, &value) == 0) {
                options->depth = (int)value;
            } else if (strcmp(name, "--requests") == 0 &&
                       parse_long(text, 1, 1000000000L, &value) == 0) {
                options->max_requests = (uint64_t)value;
            } else if (strcmp(name, "--quantity") == 0 &&
                       parse_long(text, 1, MB_MAX_READ_REGISTERS, &value) == 0) {
                options->quantity = (int)value;
            } else if (strcmp(name, "--hold") == 0 &&
                       parse_long(text, 1, MAX_CONNECTIONS, &value) == 0) {
                options->hold = (int)value;
            } else if (strcmp(name, "--sources") == 0 && parse_long(text, 1, 254, &value) == 0) {
                options->sources = (int)value;
            } else {
                return -1;
            }
        } else if (positional == 0) {
            options->host = name;
            positional++;
        } else if (positional == 1 && parse_long(name, 1, 65535, &value) == 0) {
            options->port = (int)value;
            positional++;
        } else {
            return -1;
        }
    }
    return positional == 2 ? 0 : -1;
}

/* Raises the descriptor limit to the hard limit: hold mode opens thousands of sockets. */
static void raise_descriptor_limit(void) {
    struct rlimit limit;

    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < limit.rlim_max) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
}

/* A blocking TCP connection to host:port from `source` (NULL: any). Returns the fd or -1. */
static int connect_to(const char *host, int port, const char *source) {
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    int one = 1;

    if (inet_pton(AF_INET, host, &address.sin_addr) != 1) {
        fprintf(stderr, "loadgen: %s is not an IPv4 address\n", host);
        return -1;
    }
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0) {
        perror("loadgen: socket");
        return -1;
    }
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (source != NULL) {
        struct sockaddr_in local = {.sin_family = AF_INET};
        inet_pton(AF_INET, source, &local.sin_addr);
        if (bind(fd, (struct sockaddr *)&local, sizeof local) != 0) {
            fprintf(stderr, "loadgen: bind %s: %s\n", source, strerror(errno));
            close(fd);
            return -1;
        }
    }
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        fprintf(stderr, "loadgen: connect %s:%d: %s\n", host, port, strerror(errno));
        close(fd);
        return -1;
    }
    return fd;
}

/* Appends one request to the connection's output and marks it outstanding. */
static int queue_request(struct run *run, struct connection *connection, uint64_t now) {
    uint16_t transaction = connection->next_transaction;

    if (connection->sent_ns[transaction] != 0) {
        fprintf(stderr, "loadgen: transaction id %u still outstanding after 65536 more\n",
                transaction);
        return -1;
    }
    uint8_t *frame = connection->out + connection->out_length;
    int header = mb_mbap_encode(transaction, UNIT_ID, run->request_pdu_length, frame,
                                sizeof connection->out - connection->out_length);
    if (header != MB_MBAP_HEADER_SIZE ||
        connection->out_length + REQUEST_SIZE > sizeof connection->out) {
        return -1;
    }
    memcpy(frame + header, run->request_pdu, run->request_pdu_length);
    connection->out_length += (size_t)header + run->request_pdu_length;
    connection->sent_ns[transaction] = now | 1; /* never 0 */
    connection->next_transaction = (uint16_t)(transaction + 1);
    connection->outstanding++;
    return 0;
}

/* Writes what is queued; returns 0 (all written, or the rest waits for EPOLLOUT) or -1. */
static int flush_output(int epoll_fd, struct connection *connection, int index) {
    while (connection->out_offset < connection->out_length) {
        ssize_t written = send(connection->fd, connection->out + connection->out_offset,
                               connection->out_length - connection->out_offset, MSG_NOSIGNAL);
        if (written < 0 && errno == EINTR) {
            continue;
        }
        if (written < 0 && errno == EAGAIN) {
            struct epoll_event event = {.events = EPOLLIN | EPOLLOUT, .data.u32 = (uint32_t)index};
            return epoll_ctl(epoll_fd, EPOLL_CTL_MOD, connection->fd, &event);
        }
        if (written <= 0) {
            fprintf(stderr, "loadgen: connection %d: send: %s\n", index, strerror(errno));
            return -1;
        }
        connection->out_offset += (size_t)written;
    }
    connection->out_offset = 0;
    connection->out_length = 0;
    return 0;
}

static int may_send_more(const struct run *run, uint64_t now) {
    if (run->stopping || stop_signal || now >= run->stop_ns) {
        return 0;
    }
    return run->options->max_requests == 0 || run->answered < run->options->max_requests;
}

/* Checks one answer; returns 0 or counts an error and returns -1. */
static int check_answer(struct run *run, struct connection *connection, int index,
                        const struct mb_adu *adu, uint64_t now) {
    struct mb_response response;
    uint16_t transaction = adu->header.transaction_id;
    uint64_t sent = connection->sent_ns[transaction];

    if (sent == 0) {
        fprintf(stderr, "loadgen: connection %d: answer with transaction id %u, not outstanding\n",
                index, transaction);
        run->errors++;
        return -1;
    }
    connection->sent_ns[transaction] = 0;
    connection->outstanding--;
    run->answered++;
    int decoded = mb_response_decode(adu->pdu, adu->pdu_length, &response);
    if (adu->header.unit_id != UNIT_ID || decoded != 0 || response.exception != 0 ||
        mb_response_matches(&run->request, &response) != 0) {
        fprintf(stderr,
                "loadgen: connection %d: wrong answer to transaction %u (unit %u, %s, "
                "exception %u)\n",
                index, transaction, adu->header.unit_id,
                decoded != 0 ? mb_strerror(decoded) : "decoded",
                decoded == 0 ? response.exception : 0);
        run->errors++;
        return -1;
    }
    uint64_t latency = now - (sent & ~(uint64_t)1);
    if (sent >= run->measure_start_ns && now <= run->stop_ns) {
        uint64_t micros = latency / 1000;
        run->histogram[micros < HISTOGRAM_US ? micros : HISTOGRAM_US - 1]++;
        run->measured++;
        if (latency > run->max_latency_ns) {
            run->max_latency_ns = latency;
        }
    }
    return 0;
}

/* Reads what the server sent on one connection and answers each answer with a new request. */
static int on_readable(struct run *run, int epoll_fd, int index) {
    struct connection *connection = &run->connections[index];
    uint8_t buffer[65536];

    for (;;) {
        ssize_t got = recv(connection->fd, buffer, sizeof buffer, 0);
        if (got < 0 && errno == EINTR) {
            continue;
        }
        if (got < 0 && errno == EAGAIN) {
            break;
        }
        if (got <= 0) {
            fprintf(stderr,
                    "loadgen: connection %d closed by the server (%s) with %d outstanding\n", index,
                    got == 0 ? "end of stream" : strerror(errno), connection->outstanding);
            run->errors++;
            return -1;
        }
        uint64_t now = now_ns();
        size_t offset = 0;
        while (offset < (size_t)got) {
            size_t consumed = 0;
            struct mb_adu adu;
            int rc = mb_mbap_decoder_feed(&connection->decoder, buffer + offset,
                                          (size_t)got - offset, &consumed, &adu);
            offset += consumed;
            if (rc < 0) {
                fprintf(stderr, "loadgen: connection %d: broken stream: %s\n", index,
                        mb_strerror(rc));
                run->errors++;
                return -1;
            }
            if (rc == 0) {
                break;
            }
            if (check_answer(run, connection, index, &adu, now) != 0) {
                return -1;
            }
            if (may_send_more(run, now) && queue_request(run, connection, now) != 0) {
                run->errors++;
                return -1;
            }
        }
        if ((size_t)got < sizeof buffer) {
            break;
        }
    }
    return flush_output(epoll_fd, connection, index);
}

static uint64_t percentile_us(const struct run *run, double fraction) {
    uint64_t rank = (uint64_t)((double)run->measured * fraction);
    uint64_t seen = 0;

    if (run->measured == 0) {
        return 0;
    }

    for (uint64_t micros = 0; micros < HISTOGRAM_US; micros++) {
        seen += run->histogram[micros];
        if (seen > rank) {
            return micros;
        }
    }
    return HISTOGRAM_US;
}

static int outstanding_total(const struct run *run) {
    int total = 0;

    for (int i = 0; i < run->options->connections; i++) {
        total += run->connections[i].open ? run->connections[i].outstanding : 0;
    }
    return total;
}

static int run_load(const struct options *options) {
    struct run run = {.options = options};
    int status = 1;

    run.request.function = MB_FC_READ_HOLDING_REGISTERS;
    run.request.read.address = 0;
    run.request.read.quantity = (uint16_t)options->quantity;
    int length = mb_request_encode(&run.request, run.request_pdu, sizeof run.request_pdu);
    if (length <= 0) {
        fprintf(stderr, "loadgen: cannot encode the request: %s\n", mb_strerror(length));
        return 1;
    }
    run.request_pdu_length = (size_t)length;
    run.histogram = calloc(HISTOGRAM_US, sizeof run.histogram[0]);
    run.connections = calloc((size_t)options->connections, sizeof run.connections[0]);
    int epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    if (run.histogram == NULL || run.connections == NULL || epoll_fd < 0) {
        fprintf(stderr, "loadgen: out of memory or descriptors\n");
        goto done;
    }

    for (int i = 0; i < options->connections; i++) {
        struct connection *connection = &run.connections[i];
        connection->fd = connect_to(options->host, options->port, NULL);
        if (connection->fd < 0) {
            goto done;
        }
        connection->open = 1;
        connection->next_transaction = (uint16_t)(i * 7919);
        mb_mbap_decoder_init(&connection->decoder);
        fcntl(connection->fd, F_SETFL, fcntl(connection->fd, F_GETFL) | O_NONBLOCK);
        struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t)i};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, connection->fd, &event) != 0) {
            perror("loadgen: epoll_ctl");
            goto done;
        }
    }

    uint64_t start = now_ns();
    run.measure_start_ns = start + (uint64_t)(options->warmup * 1e9);
    run.stop_ns = run.measure_start_ns + (uint64_t)(options->seconds * 1e9);
    for (int i = 0; i < options->connections; i++) {
        for (int d = 0; d < options->depth; d++) {
            if (queue_request(&run, &run.connections[i], now_ns()) != 0) {
                goto done;
            }
        }
        if (flush_output(epoll_fd, &run.connections[i], i) != 0) {
            goto done;
        }
    }

    uint64_t drain_deadline = 0;
    while (run.errors == 0) {
        uint64_t now = now_ns();
        if (!run.stopping && !may_send_more(&run, now)) {
            run.stopping = 1;
            if (now < run.stop_ns) {
                run.stop_ns = now; /* stopped early: by --requests or a signal */
            }
            drain_deadline = now + (uint64_t)DRAIN_SECONDS * 1000000000u;
        }
        if (run.stopping && outstanding_total(&run) == 0) {
            break;
        }
        if (run.stopping && now >= drain_deadline) {
            fprintf(stderr, "loadgen: %d requests still unanswered %d s after the end\n",
                    outstanding_total(&run), DRAIN_SECONDS);
            run.errors++;
            break;
        }
        struct epoll_event events[256];
        int ready = epoll_wait(epoll_fd, events, 256, 100);
        if (ready < 0 && errno != EINTR) {
            perror("loadgen: epoll_wait");
            goto done;
        }
        for (int e = 0; e < ready; e++) {
            int index = (int)events[e].data.u32;
            struct connection *connection = &run.connections[index];
            if ((events[e].events & EPOLLOUT) != 0) {
                struct epoll_event event = {.events = EPOLLIN, .data.u32 = (uint32_t)index};
                epoll_ctl(epoll_fd, EPOLL_CTL_MOD, connection->fd, &event);
                if (flush_output(epoll_fd, connection, index) != 0) {
                    run.errors++;
                }
            }
            if ((events[e].events & (EPOLLIN | EPOLLERR | EPOLLHUP)) != 0) {
                on_readable(&run, epoll_fd, index);
            }
        }
    }

    double measured_seconds = (double)(run.stop_ns - run.measure_start_ns) / 1e9;
    if (run.stop_ns <= run.measure_start_ns || run.measured == 0) {
        if (run.errors == 0) {
            fprintf(stderr, "loadgen: nothing measured (stopped during the warm-up?)\n");
            run.errors++;
        }
        measured_seconds = 0;
    }
    printf("result connections=%d depth=%d seconds=%.2f requests=%llu rps=%.0f p50_us=%llu "
           "p99_us=%llu max_us=%llu errors=%llu\n",
           options->connections, options->depth, measured_seconds, (unsigned long long)run.measured,
           measured_seconds > 0 ? (double)run.measured / measured_seconds : 0.0,
           (unsigned long long)percentile_us(&run, 0.50),
           (unsigned long long)percentile_us(&run, 0.99),
           (unsigned long long)(run.max_latency_ns / 1000), (unsigned long long)run.errors);
    status = run.errors == 0 ? 0 : 1;

done:
    if (run.connections != NULL) {
        for (int i = 0; i < options->connections; i++) {
            if (run.connections[i].open) {
                close(run.connections[i].fd);
            }
        }
    }
    if (epoll_fd >= 0) {
        close(epoll_fd);
    }
    free(run.connections);
    free(run.histogram);
    return status;
}

/* One blocking request on `fd`, answer checked, within 5 s. Returns 0 or -1. */
static int one_request(int fd, uint16_t transaction) {
    struct mb_request request = {.function = MB_FC_READ_HOLDING_REGISTERS};
    struct mb_mbap_decoder decoder;
    uint8_t frame[MB_ADU_MAX];
    uint8_t buffer[MB_ADU_MAX];
    uint64_t deadline = now_ns() + 5000000000u;

    request.read.quantity = 1;
    int length = mb_request_encode(&request, frame + MB_MBAP_HEADER_SIZE,
                                   sizeof frame - MB_MBAP_HEADER_SIZE);
    if (length <= 0 ||
        mb_mbap_encode(transaction, UNIT_ID, (size_t)length, frame, sizeof frame) < 0 ||
        send(fd, frame, MB_MBAP_HEADER_SIZE + (size_t)length, MSG_NOSIGNAL) !=
            (ssize_t)(MB_MBAP_HEADER_SIZE + (size_t)length)) {
        return -1;
    }
    mb_mbap_decoder_init(&decoder);
    for (;;) {
        uint64_t now = now_ns();
        if (now >= deadline) {
            return -1;
        }
        struct pollfd waiting = {.fd = fd, .events = POLLIN};
        if (poll(&waiting, 1, (int)((deadline - now) / 1000000) + 1) <= 0) {
            continue;
        }
        ssize_t got = recv(fd, buffer, sizeof buffer, 0);
        if (got <= 0) {
            return -1;
        }
        size_t consumed = 0;
        struct mb_adu adu;
        struct mb_response response;
        if (mb_mbap_decoder_feed(&decoder, buffer, (size_t)got, &consumed, &adu) == 1) {
            return adu.header.transaction_id == transaction &&
                           mb_response_decode(adu.pdu, adu.pdu_length, &response) == 0 &&
                           response.exception == 0 && mb_response_matches(&request, &response) == 0
                       ? 0
                       : -1;
        }
    }
}

static int run_hold(const struct options *options) {
    int *fds = calloc((size_t)options->hold, sizeof fds[0]);
    int opened = 0;
    int status = 1;
    sigset_t signals;

    if (fds == NULL) {
        return 1;
    }
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    for (; opened < options->hold; opened++) {
        char source[32];
        snprintf(source, sizeof source, "127.0.0.%d", 1 + opened % options->sources);
        fds[opened] = connect_to(options->host, options->port, source);
        if (fds[opened] < 0) {
            fprintf(stderr, "loadgen: connection %d of %d failed\n", opened + 1, options->hold);
            goto done;
        }
        if (one_request(fds[opened], (uint16_t)opened) != 0) {
            fprintf(stderr, "loadgen: connection %d of %d was not served\n", opened + 1,
                    options->hold);
            opened++;
            goto done;
        }
    }
    printf("holding %d connections\n", opened);
    fflush(stdout);
    struct timespec timeout = {.tv_sec = (time_t)options->seconds};
    sigtimedwait(&signals, NULL, &timeout);
    status = 0;

done:
    for (int i = 0; i < opened; i++) {
        if (fds[i] >= 0) {
            close(fds[i]);
        }
    }
    free(fds);
    return status;
}

int main(int argc, char **argv) {
    struct options options;
    struct sigaction action;

    if (parse_options(argc, argv, &options) != 0) {
        usage();
        return 2;
    }
    raise_descriptor_limit();
    memset(&action, 0, sizeof action);
    action.sa_handler = on_signal;
    sigaction(SIGTERM, &action, NULL);
    sigaction(SIGINT, &action, NULL);
    signal(SIGPIPE, SIG_IGN);
    return options.hold > 0 ? run_hold(&options) : run_load(&options);
}
