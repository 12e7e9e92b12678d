/* SPDX-License-Identifier: MIT */
#include "app/daemon/ship_stream.h"

#include "app/daemon/ship.h"

#include <errno.h>
#include <linux/tcp.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mbsec/error.h"
#include "mbsec/tls.h"
#include "mbsec/transport.h"

#define CONNECT_TIMEOUT_MS 10000
#define USER_TIMEOUT_MS 30000 /* unacknowledged data this long: the connection is dead */

int ship_split_address(const char *rest, uint16_t fallback, char *host, size_t capacity,
                       uint16_t *port) {
    const char *colon;
    if (rest[0] == '[') {
        const char *close = strchr(rest, ']');
        if (close == NULL || (size_t)(close - rest - 1) >= capacity)
            return -1;
        memcpy(host, rest + 1, (size_t)(close - rest - 1));
        host[close - rest - 1] = '\0';
        colon = close[1] == ':' ? close + 1 : NULL;
        if (close[1] != '\0' && colon == NULL)
            return -1;
    } else {
        colon = strrchr(rest, ':');
        size_t length = colon != NULL ? (size_t)(colon - rest) : strlen(rest);
        if (length == 0 || length >= capacity)
            return -1;
        memcpy(host, rest, length);
        host[length] = '\0';
    }
    *port = fallback;
    if (colon != NULL) {
        char *end;
        unsigned long value = strtoul(colon + 1, &end, 10);
        if (colon[1] == '\0' || *end != '\0' || value == 0 || value > 65535)
            return -1;
        *port = (uint16_t)value;
    }
    return 0;
}

int ship_stream_init(struct ship_stream *stream, const char *host, uint16_t port,
                     const struct mb_tls_config *tls, char *error, size_t capacity) {
    memset(stream, 0, sizeof *stream);
    stream->fd = -1;
    snprintf(stream->host, sizeof stream->host, "%s", host);
    snprintf(stream->port, sizeof stream->port, "%u", (unsigned)port);
    if (tls == NULL)
        return 0;
    struct mb_tls_config settings = *tls;
    if (settings.server_name == NULL && settings.pin == NULL)
        settings.server_name = stream->host;
    char reason[256];
    if (mb_tls_context_create(0, &settings, &stream->context, reason, sizeof reason) != 0) {
        snprintf(error, capacity, "%s", reason);
        return -1;
    }
    return 0;
}

void ship_stream_close(struct ship_stream *stream) {
    if (stream->transport != NULL)
        stream->transport->ops->close(stream->transport);
    else if (stream->fd >= 0)
        close(stream->fd);
    stream->transport = NULL;
    stream->fd = -1;
    stream->state = STREAM_DOWN;
    stream->out_length = stream->out_sent = 0;
    stream->written = 0;
}

void ship_stream_free(struct ship_stream *stream) {
    ship_stream_close(stream);
    if (stream->context != NULL)
        mb_tls_context_destroy(stream->context);
    stream->context = NULL;
    free(stream->out);
    stream->out = NULL;
    stream->out_capacity = 0;
}

static int failed(struct ship_stream *stream, char *error, size_t capacity, const char *what,
                  long rc) {
    const struct mb_transport *transport = stream->transport;
    const char *detail = transport != NULL && transport->detail != NULL ? transport->detail : "";
    if ((rc == MB_ESYSTEM || rc == MB_EIO) && transport != NULL)
        snprintf(error, capacity, "%s: %s", what, strerror(transport->system_errno));
    else
        snprintf(error, capacity, "%s: %s%s%s", what, mb_strerror((int)rc), detail[0] ? ": " : "",
                 detail);
    ship_stream_close(stream);
    return -1;
}

int ship_stream_connect(struct ship_stream *stream, char *error, size_t capacity) {
    ship_stream_close(stream);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(stream->host, stream->port, &hints, &found);
    if (rc != 0) {
        snprintf(error, capacity, "cannot resolve %s: %s", stream->host, gai_strerror(rc));
        return -1;
    }
    int fd = -1, code = 0;
    for (struct addrinfo *at = found; at != NULL && fd < 0; at = at->ai_next) {
        fd = socket(at->ai_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
        if (fd < 0) {
            code = errno;
            continue;
        }
        unsigned timeout = USER_TIMEOUT_MS;
        int on = 1;
        setsockopt(fd, IPPROTO_TCP, TCP_USER_TIMEOUT, &timeout, sizeof timeout);
        setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
        if (connect(fd, at->ai_addr, at->ai_addrlen) != 0 && errno != EINPROGRESS) {
            code = errno;
            close(fd);
            fd = -1;
        }
    }
    freeaddrinfo(found);
    if (fd < 0) {
        snprintf(error, capacity, "cannot connect: %s", strerror(code));
        return -1;
    }
    stream->fd = fd;
    stream->state = STREAM_CONNECTING;
    stream->ended = 0;
    stream->deadline = ship_monotonic_ms() + CONNECT_TIMEOUT_MS;
    return 0;
}

int ship_stream_wait_for(struct ship_stream *stream, short *events, int *timeout_ms) {
    *events = 0;
    if (stream->state == STREAM_DOWN)
        return -1;
    if (stream->state != STREAM_UP) {
        int64_t left = stream->deadline - ship_monotonic_ms();
        if (left < *timeout_ms)
            *timeout_ms = left > 0 ? (int)left : 0;
    }
    if (stream->state == STREAM_CONNECTING) {
        *events = POLLOUT;
    } else if (stream->state == STREAM_HANDSHAKE) {
        unsigned want = stream->transport->ops->want(stream->transport);
        *events = (short)((want & MB_IO_WRITE ? POLLOUT : 0) | (want & MB_IO_READ ? POLLIN : 0));
        if (*events == 0)
            *events = POLLIN;
    } else {
        *events = POLLIN;
        if (stream->out_sent < stream->out_length)
            *events |= POLLOUT;
    }
    return stream->fd;
}

int ship_stream_advance(struct ship_stream *stream, char *error, size_t capacity) {
    if (stream->state == STREAM_UP)
        return 1;
    if (stream->state == STREAM_DOWN) {
        snprintf(error, capacity, "not connected");
        return -1;
    }
    if (ship_monotonic_ms() >= stream->deadline) {
        snprintf(error, capacity, "%s",
                 stream->state == STREAM_CONNECTING ? "connecting timed out"
                                                    : "TLS handshake timed out");
        ship_stream_close(stream);
        return -1;
    }
    if (stream->state == STREAM_CONNECTING) {
        struct pollfd check = {stream->fd, POLLOUT, 0};
        if (poll(&check, 1, 0) <= 0)
            return 0;
        int code = 0;
        socklen_t length = sizeof code;
        if (getsockopt(stream->fd, SOL_SOCKET, SO_ERROR, &code, &length) != 0)
            code = errno;
        if (code != 0) {
            snprintf(error, capacity, "cannot connect: %s", strerror(code));
            ship_stream_close(stream);
            return -1;
        }
        int rc = stream->context != NULL
                     ? mb_tls_transport_create(stream->context, stream->fd, &stream->transport)
                     : mb_tcp_transport_create(stream->fd, &stream->transport);
        if (rc != 0) {
            snprintf(error, capacity, "%s", mb_strerror(rc));
            ship_stream_close(stream);
            return -1;
        }
        stream->state = stream->context != NULL ? STREAM_HANDSHAKE : STREAM_UP;
    }
    if (stream->state == STREAM_HANDSHAKE) {
        int rc = stream->transport->ops->handshake(stream->transport);
        if (rc == MB_EAGAIN)
            return 0;
        if (rc != 0)
            return failed(stream, error, capacity, "TLS handshake", rc);
        stream->state = STREAM_UP;
    }
    return 1;
}

uint8_t *ship_stream_reserve(struct ship_stream *stream, size_t more) {
    if (stream->out_sent > 0 && stream->out_length + more > stream->out_capacity) {
        memmove(stream->out, stream->out + stream->out_sent, stream->out_length - stream->out_sent);
        stream->out_length -= stream->out_sent;
        stream->out_sent = 0;
    }
    if (stream->out_length + more > stream->out_capacity) {
        size_t capacity = stream->out_capacity ? stream->out_capacity : 64 * 1024;
        while (capacity < stream->out_length + more)
            capacity *= 2;
        uint8_t *bigger = realloc(stream->out, capacity);
        if (bigger == NULL)
            return NULL;
        stream->out = bigger;
        stream->out_capacity = capacity;
    }
    return stream->out + stream->out_length;
}

void ship_stream_commit(struct ship_stream *stream, size_t length) {
    stream->out_length += length;
}

size_t ship_stream_pending(const struct ship_stream *stream) {
    return stream->out_length - stream->out_sent;
}

int ship_stream_flush(struct ship_stream *stream, char *error, size_t capacity) {
    while (stream->state == STREAM_UP && stream->out_sent < stream->out_length) {
        long rc = stream->transport->ops->write(stream->transport, stream->out + stream->out_sent,
                                                stream->out_length - stream->out_sent);
        if (rc == MB_EAGAIN)
            break;
        if (rc < 0)
            return failed(stream, error, capacity, "sending", rc);
        stream->out_sent += (size_t)rc;
        stream->written += (uint64_t)rc;
    }
    if (stream->out_sent == stream->out_length)
        stream->out_sent = stream->out_length = 0;
    return 0;
}

long ship_stream_read(struct ship_stream *stream, void *buffer, size_t capacity, char *error,
                      size_t error_capacity) {
    if (stream->state != STREAM_UP)
        return 0;
    long rc = stream->transport->ops->read(stream->transport, buffer, capacity);
    if (rc > 0)
        return rc;
    if (rc == MB_EAGAIN)
        return 0;
    if (rc == MB_ECLOSED) {
        snprintf(error, error_capacity, "the peer closed the connection");
        ship_stream_close(stream);
        stream->ended = 1;
        return -1;
    }
    return failed(stream, error, error_capacity, "receiving", rc);
}
