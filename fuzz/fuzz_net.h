/* SPDX-License-Identifier: MIT */
/*
 * Sockets for the targets that drive the runtime (server, client, gateway) on one loop in one
 * thread: Unix stream sockets in the abstract namespace, so that thousands of connections a
 * second leave nothing behind (no TIME_WAIT, no port range to exhaust, no file to remove), and
 * the library sees a stream socket like any other. Its TCP-only socket options simply fail on
 * them, as they are allowed to.
 */
#ifndef MBSEC_FUZZ_FUZZ_NET_H
#define MBSEC_FUZZ_FUZZ_NET_H

#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "fuzz.h"

struct fuzz_address {
    struct sockaddr_un un;
    socklen_t length;
};

/* A listening socket at a name of its own ("\0mbsec-fuzz-<what>-<pid>"), non-blocking. */
static inline int fuzz_listen(const char *what, struct fuzz_address *address) {
    memset(address, 0, sizeof *address);
    address->un.sun_family = AF_UNIX;
    int length = snprintf(address->un.sun_path + 1, sizeof address->un.sun_path - 1,
                          "mbsec-fuzz-%s-%ld", what, (long)getpid());
    FUZZ_CHECK(length > 0 && (size_t)length < sizeof address->un.sun_path - 1);
    address->length = (socklen_t)(offsetof(struct sockaddr_un, sun_path) + 1 + (size_t)length);
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(bind(fd, (const struct sockaddr *)&address->un, address->length) == 0);
    FUZZ_CHECK(listen(fd, 64) == 0);
    return fd;
}

/* A connected, non-blocking client socket. */
static inline int fuzz_connect(const struct fuzz_address *address) {
    int fd = socket(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    FUZZ_CHECK(fd >= 0);
    FUZZ_CHECK(connect(fd, (const struct sockaddr *)&address->un, address->length) == 0);
    return fd;
}

/* The connection waiting on a listener, non-blocking, or -1 when there is none. */
static inline int fuzz_accept(int listener) {
    return accept4(listener, NULL, NULL, SOCK_NONBLOCK | SOCK_CLOEXEC);
}

/* Appends what has arrived on `fd` to `log`. Returns the number of bytes read; sets *ended at
 * the end of the stream (or a reset). */
static inline size_t fuzz_receive(int fd, struct fuzz_log *log, int *ended) {
    size_t total = 0;
    for (;;) {
        uint8_t chunk[4096];
        ssize_t got = recv(fd, chunk, sizeof chunk, 0);
        if (got > 0) {
            fuzz_log_append(log, chunk, (size_t)got);
            total += (size_t)got;
            continue;
        }
        if (got < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
            return total;
        *ended = 1;
        return total;
    }
}

/* Sends all of data[0..length) on a socket whose peer is served in this thread, so it must
 * never have to wait: the buffers of a Unix socket take far more than a fuzz input. Returns 0,
 * or -1 when the peer has gone (what it did before is what is judged). */
static inline int fuzz_send_all(int fd, const void *data, size_t length) {
    const uint8_t *bytes = data;
    while (length > 0) {
        ssize_t sent = send(fd, bytes, length, MSG_NOSIGNAL);
        if (sent < 0 && errno == EINTR)
            continue;
        FUZZ_CHECK(!(sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)));
        if (sent < 0)
            return -1;
        bytes += sent;
        length -= (size_t)sent;
    }
    return 0;
}

static inline uint64_t fuzz_now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

#endif
