/* SPDX-License-Identifier: MIT */
/*
 * TLS measurements for bench/tls-vs-plain, against any Modbus/TCP Security server:
 *
 *     tls_bench handshakes [--seconds S] [--resume] [--tls12] --tls CERT,KEY,CA HOST PORT
 *     tls_bench hold N [--seconds S] [--resume] [--tls12] --tls CERT,KEY,CA HOST PORT
 *
 * handshakes: connect, finish the handshake, close, again, for S seconds (default 3), one at a
 * time; with --resume each connection offers the previous session. Prints
 *     result handshakes=N per_second=R resumed=K
 * and fails if a handshake fails (or, with --resume, if almost none was resumed).
 *
 * hold: opens N TLS connections, each served one FC 3 request (checked), prints "holding N" and
 * keeps them open and idle until SIGTERM/SIGINT or S seconds (default 120). With --resume each
 * connection offers the previous one's session (idle resumed connections), with --tls12 TLS 1.2
 * is used.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include <mbsec/loop.h>
#include <mbsec/mbap.h>
#include <mbsec/tls.h>

#define MAX_HOLD 20000

static volatile sig_atomic_t stop_requested;

static void on_stop(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

static double now_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static int connect_to(const struct sockaddr_in *address) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -1;
    int one = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    if (connect(fd, (const struct sockaddr *)address, sizeof *address) != 0) {
        close(fd);
        return -1;
    }
    int flags = fcntl(fd, F_GETFL);
    if (flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Waits for what the transport's last MB_EAGAIN asked for (5 s at most). */
static int wait_for(struct mb_transport *transport) {
    unsigned want = transport->ops->want(transport);
    struct pollfd poller = {.fd = transport->fd,
                            .events = (short)((want & MB_IO_WRITE) ? POLLOUT : POLLIN)};
    return poll(&poller, 1, 5000) == 1 ? 0 : -1;
}

static int handshake(struct mb_transport *transport) {
    for (;;) {
        int rc = transport->ops->handshake(transport);
        if (rc == 0)
            return 0;
        if (rc != MB_EAGAIN || wait_for(transport) != 0) {
            fprintf(stderr, "tls_bench: handshake failed: %s\n",
                    transport->detail && transport->detail[0] ? transport->detail
                                                              : mb_strerror(rc));
            return -1;
        }
    }
}

/* One FC 3 request for 1 register at 0 and its answer, checked. */
static int one_request(struct mb_transport *transport, uint16_t transaction) {
    uint8_t request[12];
    const uint8_t pdu[] = {3, 0, 0, 0, 1};
    mb_mbap_encode(transaction, 1, sizeof pdu, request, sizeof request);
    memcpy(request + MB_MBAP_HEADER_SIZE, pdu, sizeof pdu);
    size_t sent = 0;
    while (sent < sizeof request) {
        long count = transport->ops->write(transport, request + sent, sizeof request - sent);
        if (count > 0)
            sent += (size_t)count;
        else if (count != MB_EAGAIN || wait_for(transport) != 0)
            return -1;
    }
    uint8_t answer[64];
    size_t received = 0;
    while (received < 11) {
        long count = transport->ops->read(transport, answer + received, sizeof answer - received);
        if (count > 0)
            received += (size_t)count;
        else if (count != MB_EAGAIN || wait_for(transport) != 0)
            return -1;
    }
    return received == 11 && mb_get_u16(answer) == transaction && answer[7] == 3 ? 0 : -1;
}

static int parse_tls(char *files, int tls12, int resume, struct mb_tls_context **context) {
    char *certificate = strtok(files, ","), *key = strtok(NULL, ","), *ca = strtok(NULL, ",");
    if (certificate == NULL || key == NULL || ca == NULL) {
        fprintf(stderr, "tls_bench: --tls CERT,KEY,CA\n");
        return -1;
    }
    struct mb_tls_config config = {.certificate_file = certificate,
                                   .key_file = key,
                                   .ca_file = ca,
                                   .tls12_only = tls12,
                                   .resume = resume};
    char error[300];
    if (mb_tls_context_create(0, &config, context, error, sizeof error) != 0) {
        fprintf(stderr, "tls_bench: %s\n", error);
        return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: tls_bench handshakes|hold ...\n");
        return 2;
    }
    const char *mode = argv[1];
    int hold = 0, resume = 0, tls12 = 0, i = 2;
    double seconds = -1;
    char *files = NULL;
    if (strcmp(mode, "hold") == 0 && argc > 2)
        hold = atoi(argv[i++]);
    for (; i < argc && strncmp(argv[i], "--", 2) == 0; i++) {
        if (strcmp(argv[i], "--resume") == 0)
            resume = 1;
        else if (strcmp(argv[i], "--tls12") == 0)
            tls12 = 1;
        else if (strcmp(argv[i], "--seconds") == 0 && i + 1 < argc)
            seconds = atof(argv[++i]);
        else if (strcmp(argv[i], "--tls") == 0 && i + 1 < argc)
            files = argv[++i];
        else
            break;
    }
    if (argc - i != 2 || files == NULL ||
        (strcmp(mode, "handshakes") != 0 &&
         !(strcmp(mode, "hold") == 0 && hold > 0 && hold <= MAX_HOLD))) {
        fprintf(stderr, "usage: tls_bench handshakes [--seconds S] [--resume] [--tls12] --tls "
                        "CERT,KEY,CA HOST PORT\n"
                        "       tls_bench hold N [--seconds S] [--resume] [--tls12] --tls "
                        "CERT,KEY,CA HOST PORT\n");
        return 2;
    }
    struct sockaddr_in address = {.sin_family = AF_INET,
                                  .sin_port = htons((uint16_t)atoi(argv[i + 1]))};
    if (inet_pton(AF_INET, argv[i], &address.sin_addr) != 1) {
        fprintf(stderr, "tls_bench: %s is not an IPv4 address\n", argv[i]);
        return 2;
    }
    struct mb_tls_context *context;
    if (parse_tls(files, tls12, resume, &context) != 0)
        return 2;
    signal(SIGTERM, on_stop);
    signal(SIGINT, on_stop);
    signal(SIGPIPE, SIG_IGN);

    if (hold == 0) {
        if (seconds < 0)
            seconds = 3;
        uint64_t count = 0, resumed = 0;
        double start = now_seconds(), stop = start + seconds;
        while (now_seconds() < stop && !stop_requested) {
            int fd = connect_to(&address);
            struct mb_transport *transport;
            if (fd < 0 || mb_tls_transport_create(context, fd, &transport) != 0) {
                fprintf(stderr, "tls_bench: connect: %s\n", strerror(errno));
                return 1;
            }
            if (handshake(transport) != 0)
                return 1;
            struct mb_tls_session_info info;
            /* TLS 1.3 hands the session over after the handshake: read until it came. */
            if (resume && one_request(transport, (uint16_t)count) != 0) {
                fprintf(stderr, "tls_bench: request failed\n");
                return 1;
            }
            if (mb_tls_transport_info(transport, &info) == 0 && info.resumed)
                resumed++;
            transport->ops->close(transport);
            count++;
        }
        double elapsed = now_seconds() - start;
        printf("result handshakes=%llu per_second=%.0f resumed=%llu\n", (unsigned long long)count,
               (double)count / elapsed, (unsigned long long)resumed);
        mb_tls_context_destroy(context);
        return resume && resumed * 2 < count ? 1 : 0;
    }

    if (seconds < 0)
        seconds = 120;
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0 && limit.rlim_cur < (rlim_t)hold + 64) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
    }
    static struct mb_transport *held[MAX_HOLD];
    for (int c = 0; c < hold; c++) {
        int fd = connect_to(&address);
        if (fd < 0 || mb_tls_transport_create(context, fd, &held[c]) != 0 ||
            handshake(held[c]) != 0 || one_request(held[c], (uint16_t)c) != 0) {
            fprintf(stderr, "tls_bench: connection %d failed\n", c);
            return 1;
        }
    }
    printf("holding %d\n", hold);
    fflush(stdout);
    double stop = now_seconds() + seconds;
    while (!stop_requested && now_seconds() < stop)
        usleep(20000);
    for (int c = 0; c < hold; c++)
        held[c]->ops->close(held[c]);
    mb_tls_context_destroy(context);
    return 0;
}
