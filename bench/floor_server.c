/* SPDX-License-Identifier: MIT */
/*
 * The floor for the server benchmark (bench/run): the least a Modbus/TCP server on this machine
 * can do per request. Syscalls only: one epoll loop, read(), the MBAP length field to find the
 * frames, and write() of a canned FC 3 answer for every frame: all-zero registers, carrying the
 * request's transaction id and unit id, and as many registers as an FC 3 request asks for (1 to
 * 125; 10 for anything else), so that a load generator that checks its answers accepts them.
 * No decoding beyond that, no validation beyond protocol id 0 and a length of 2..254, no data
 * model: whatever the function, the answer is an FC 3 answer.
 *
 *     floor_server [PORT]
 *
 * Binds 127.0.0.1:PORT (default 0: an ephemeral port), prints "listening on 127.0.0.1:PORT" on
 * stderr once it accepts connections, and exits 0 on SIGTERM or SIGINT. Loopback only, by
 * construction.
 *
 * Pipelining-safe: every complete frame in a read is answered, in order, and the answers are
 * written together; a partial frame waits for the rest. When the peer does not take the answers
 * (a partial write), the rest is kept and the connection is not read again until it is written.
 * An idle connection costs one small struct (a partial frame's bytes), nothing else.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MBAP 7         /* transaction id, protocol id, length, unit id */
#define MAX_FRAME 260  /* MBAP + 253-byte PDU */
#define ANSWER_MAX 259 /* MBAP + 03 + byte count + 125 registers */
#define DEFAULT_QUANTITY 10
#define READ_SIZE 65536
#define MAX_EVENTS 256

struct connection {
    int fd;
    uint16_t partial_length; /* bytes of an incomplete frame kept from the last read */
    uint8_t partial[MAX_FRAME];
    uint8_t *pending; /* answers the socket did not take yet (NULL when none) */
    size_t pending_length;
    size_t pending_offset;
};

static struct connection **connections; /* by descriptor */
static size_t connection_slots;
static int epoll_fd;

static uint8_t in_buffer[MAX_FRAME + READ_SIZE];
/* An FC 3 request is 12 bytes and gets at most ANSWER_MAX; any other frame (8 bytes at least)
 * gets the default answer (29 bytes). */
static uint8_t out_buffer[(MAX_FRAME + READ_SIZE) / 12 * ANSWER_MAX + ANSWER_MAX];

/* Appends the answer to `frame` at `out`: MBAP (the request's transaction and unit id), FC 3,
 * the byte count, zero registers. Returns its length. */
static size_t answer(const uint8_t *frame, unsigned length, uint8_t *out) {
    unsigned quantity = DEFAULT_QUANTITY;
    if (length == 6 && frame[7] == 0x03) {
        quantity = (unsigned)frame[10] << 8 | frame[11];
        if (quantity < 1 || quantity > 125)
            quantity = DEFAULT_QUANTITY;
    }
    size_t size = MBAP + 2 + 2 * (size_t)quantity;
    memset(out, 0, size);
    out[0] = frame[0];
    out[1] = frame[1];
    out[5] = (uint8_t)(3 + 2 * quantity);
    out[6] = frame[6];
    out[7] = 0x03;
    out[8] = (uint8_t)(2 * quantity);
    return size;
}

static void drop(struct connection *connection) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, connection->fd, NULL);
    close(connection->fd);
    connections[connection->fd] = NULL;
    free(connection->pending);
    free(connection);
}

/* Writes what is pending; returns 0 when all of it went, 1 when some is left, -1 on error. */
static int flush_pending(struct connection *connection) {
    while (connection->pending_offset < connection->pending_length) {
        ssize_t written = write(connection->fd, connection->pending + connection->pending_offset,
                                connection->pending_length - connection->pending_offset);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return (errno == EAGAIN || errno == EWOULDBLOCK) ? 1 : -1;
        }
        connection->pending_offset += (size_t)written;
    }
    free(connection->pending);
    connection->pending = NULL;
    connection->pending_length = connection->pending_offset = 0;
    return 0;
}

/* Answers every complete frame of one read. Returns -1 when the connection must go. */
static int serve(struct connection *connection) {
    size_t have = connection->partial_length;
    memcpy(in_buffer, connection->partial, have);
    ssize_t got = read(connection->fd, in_buffer + have, READ_SIZE);
    if (got == 0)
        return -1;
    if (got < 0)
        return (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR) ? 0 : -1;
    have += (size_t)got;

    size_t at = 0, out = 0;
    while (have - at >= MBAP) {
        const uint8_t *frame = in_buffer + at;
        unsigned length = (unsigned)frame[4] << 8 | frame[5];
        if (frame[2] != 0 || frame[3] != 0 || length < 2 || length > MAX_FRAME - 6)
            return -1; /* not Modbus/TCP: close, as a server would */
        if (have - at < 6 + (size_t)length)
            break;
        out += answer(frame, length, out_buffer + out);
        at += 6 + (size_t)length;
    }
    connection->partial_length = (uint16_t)(have - at);
    memcpy(connection->partial, in_buffer + at, have - at);

    size_t sent = 0;
    while (sent < out) {
        ssize_t written = write(connection->fd, out_buffer + sent, out - sent);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            if (errno != EAGAIN && errno != EWOULDBLOCK)
                return -1;
            /* The peer is not reading: keep the rest, wait for EPOLLOUT, stop reading. */
            connection->pending = malloc(out - sent);
            if (connection->pending == NULL)
                return -1;
            memcpy(connection->pending, out_buffer + sent, out - sent);
            connection->pending_length = out - sent;
            connection->pending_offset = 0;
            struct epoll_event event = {.events = EPOLLOUT, .data.fd = connection->fd};
            return epoll_ctl(epoll_fd, EPOLL_CTL_MOD, connection->fd, &event);
        }
        sent += (size_t)written;
    }
    return 0;
}

static void accept_all(int listener) {
    for (;;) {
        int fd = accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (fd < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            return; /* EAGAIN, or out of descriptors: the backlog waits */
        }
        if ((size_t)fd >= connection_slots) {
            close(fd);
            continue;
        }
        int one = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        struct connection *connection = calloc(1, sizeof *connection);
        if (connection == NULL) {
            close(fd);
            continue;
        }
        connection->fd = fd;
        struct epoll_event event = {.events = EPOLLIN, .data.fd = fd};
        if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0) {
            close(fd);
            free(connection);
            continue;
        }
        connections[fd] = connection;
    }
}

int main(int argc, char **argv) {
    long port = 0;
    if (argc > 2 || (argc == 2 && (port = strtol(argv[1], NULL, 10)) < 0) || port > 65535) {
        fprintf(stderr, "usage: floor_server [PORT]   (binds 127.0.0.1:PORT; 0 = ephemeral)\n");
        return 2;
    }

    /* As many connections as the descriptor limit allows (raised to the hard limit). */
    struct rlimit limit;
    if (getrlimit(RLIMIT_NOFILE, &limit) == 0) {
        limit.rlim_cur = limit.rlim_max;
        setrlimit(RLIMIT_NOFILE, &limit);
        getrlimit(RLIMIT_NOFILE, &limit);
    }
    connection_slots = (limit.rlim_cur == RLIM_INFINITY || limit.rlim_cur > 1048576)
                           ? 1048576
                           : (size_t)limit.rlim_cur;
    connections = calloc(connection_slots, sizeof *connections);
    if (connections == NULL) {
        perror("floor_server: calloc");
        return 1;
    }

    sigset_t stop_signals;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGTERM);
    sigaddset(&stop_signals, SIGINT);
    sigprocmask(SIG_BLOCK, &stop_signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    int signal_fd = signalfd(-1, &stop_signals, SFD_CLOEXEC);

    int listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    int one = 1;
    setsockopt(listener, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_port = htons((uint16_t)port)};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t address_length = sizeof address;
    if (signal_fd < 0 || listener < 0 ||
        bind(listener, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(listener, 4096) != 0 ||
        getsockname(listener, (struct sockaddr *)&address, &address_length) != 0) {
        perror("floor_server: cannot listen");
        return 1;
    }

    epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    struct epoll_event event = {.events = EPOLLIN, .data.fd = listener};
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, listener, &event);
    event.data.fd = signal_fd;
    epoll_ctl(epoll_fd, EPOLL_CTL_ADD, signal_fd, &event);
    fprintf(stderr, "listening on 127.0.0.1:%u\n", (unsigned)ntohs(address.sin_port));
    fflush(stderr);

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        int count = epoll_wait(epoll_fd, events, MAX_EVENTS, -1);
        if (count < 0) {
            if (errno == EINTR)
                continue;
            perror("floor_server: epoll_wait");
            return 1;
        }
        for (int i = 0; i < count; i++) {
            int fd = events[i].data.fd;
            if (fd == signal_fd) {
                for (size_t slot = 0; slot < connection_slots; slot++)
                    if (connections[slot] != NULL)
                        drop(connections[slot]);
                fprintf(stderr, "stopped\n");
                return 0;
            }
            if (fd == listener) {
                accept_all(listener);
                continue;
            }
            struct connection *connection = connections[fd];
            if (connection == NULL)
                continue;
            if (connection->pending != NULL) {
                int left = flush_pending(connection);
                if (left < 0) {
                    drop(connection);
                } else if (left == 0) {
                    struct epoll_event again = {.events = EPOLLIN, .data.fd = fd};
                    if (epoll_ctl(epoll_fd, EPOLL_CTL_MOD, fd, &again) != 0)
                        drop(connection);
                }
                continue;
            }
            if (serve(connection) != 0)
                drop(connection);
        }
    }
}
