/* SPDX-License-Identifier: MIT */
/* The plain TCP transport: a non-blocking socket behind the transport table. */
#include <errno.h>
#include <stdlib.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mbsec/error.h"
#include "mbsec/transport.h"
#include "transport/fd_transport.h"

long mb__fd_fail(struct mb_transport *transport, int error) {
    transport->last_error = error;
    transport->system_errno = errno;
    return error;
}

static long tcp_read(struct mb_transport *transport, void *buffer, size_t capacity) {
    for (;;) {
        ssize_t count = recv(transport->fd, buffer, capacity, 0);
        if (count > 0) {
            transport->blocked_on = 0;
            return (long)count;
        }
        if (count == 0)
            return mb__fd_fail(transport, MB_ECLOSED);
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            transport->blocked_on = MB_IO_READ;
            return MB_EAGAIN;
        }
        /* A reset is not an orderly end: nothing more can be sent, so it is an error. */
        return mb__fd_fail(transport, MB_EIO);
    }
}

static long tcp_write(struct mb_transport *transport, const void *data, size_t length) {
    for (;;) {
        /* MSG_NOSIGNAL: a peer that went away is an error to handle, not a SIGPIPE. */
        ssize_t count = send(transport->fd, data, length, MSG_NOSIGNAL);
        if (count >= 0) {
            transport->blocked_on = 0;
            return (long)count;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            transport->blocked_on = MB_IO_WRITE;
            return MB_EAGAIN;
        }
        return mb__fd_fail(transport, errno == EPIPE || errno == ECONNRESET ? MB_ECLOSED : MB_EIO);
    }
}

size_t mb__fd_pending(const struct mb_transport *transport) {
    (void)transport;
    return 0;
}

unsigned mb__fd_want(const struct mb_transport *transport) {
    return transport->blocked_on;
}

void mb__fd_close(struct mb_transport *transport) {
    if (transport->fd >= 0)
        close(transport->fd);
    free(transport);
}

static const struct mb_transport_ops tcp_ops = {
    .name = "tcp",
    .read = tcp_read,
    .write = tcp_write,
    .pending = mb__fd_pending,
    .want = mb__fd_want,
    .close = mb__fd_close,
};

int mb__fd_transport_create(int fd, const struct mb_transport_ops *ops,
                            struct mb_transport **transport_out) {
    if (fd < 0 || transport_out == NULL)
        return MB_EINVAL;
    struct mb_transport *transport = calloc(1, sizeof *transport);
    if (transport == NULL)
        return MB_ENOMEM;
    transport->ops = ops;
    transport->fd = fd;
    transport->detail = "";
    *transport_out = transport;
    return 0;
}

int mb_tcp_transport_create(int fd, struct mb_transport **transport_out) {
    return mb__fd_transport_create(fd, &tcp_ops, transport_out);
}
