/* SPDX-License-Identifier: MIT */
/*
 * The syslog link of the shipper: RFC 5424 messages over TCP with octet counting (RFC 6587),
 * or over TLS (RFC 5425), to a collector such as rsyslog, syslog-ng, Vector or Fluent Bit.
 *
 * RFC 5425 has no acknowledgement of its own. A record counts as delivered once the
 * collector's TCP has acknowledged its last byte (TCP_INFO's bytes_acked), not merely once it
 * was written: a connection that breaks loses what sat in our send queue, and the shipper
 * sends that again. What the collector's kernel took but the collector never read is beyond
 * what TCP can tell (docs/fleet.md).
 */
#include "app/daemon/ship_syslog.h"

#include <errno.h>
#include <fcntl.h>
#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "mbsec/error.h"
#include "mbsec/tls.h"
#include "mbsec/transport.h"

#define CONNECT_TIMEOUT_MS 10000
#define USER_TIMEOUT_MS 30000 /* unacknowledged data this long: the connection is dead */
#define ACK_POLL_MS 10        /* how often to look for acknowledgements while some wait */
#define OUT_MAX (256 * 1024)  /* bytes formatted and not yet written */
#define FLIGHT_MAX 8192       /* records written and not yet acknowledged */

enum state { DOWN, CONNECTING, HANDSHAKE, UP };

struct flight {
    uint64_t end;  /* where the record ends in the stream of plain bytes */
    uint64_t mark; /* where it ends in what was handed to TCP; 0: not written yet */
    uint64_t ticket;
};

struct syslog_link {
    struct ship_link base;
    char host[256];
    char port[8];
    int tls;
    struct mb_tls_context *context;
    char hostname[256];
    char app_name[49];
    int facility;

    enum state state;
    int fd;
    struct mb_transport *transport;
    int64_t deadline;

    uint8_t *out;
    size_t out_length, out_sent, out_capacity;
    uint64_t plain_total;   /* plain bytes formatted since connecting */
    uint64_t plain_written; /* of them, handed to the transport */
    struct flight *flight;
    size_t flight_head, flight_count, flight_written;
};

static int64_t monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

static void drop_connection(struct syslog_link *link) {
    if (link->transport != NULL)
        link->transport->ops->close(link->transport);
    else if (link->fd >= 0)
        close(link->fd);
    link->transport = NULL;
    link->fd = -1;
    link->state = DOWN;
    link->out_length = link->out_sent = 0;
    link->plain_total = link->plain_written = 0;
    link->flight_head = link->flight_count = link->flight_written = 0;
}

static int syslog_connect(struct ship_link *base, char *error, size_t capacity) {
    struct syslog_link *link = (struct syslog_link *)base;
    drop_connection(link);
    struct addrinfo hints = {.ai_socktype = SOCK_STREAM, .ai_flags = AI_ADDRCONFIG};
    struct addrinfo *found = NULL;
    int rc = getaddrinfo(link->host, link->port, &hints, &found);
    if (rc != 0) {
        snprintf(error, capacity, "cannot resolve %s: %s", link->host, gai_strerror(rc));
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
    link->fd = fd;
    link->state = CONNECTING;
    link->deadline = monotonic_ms() + CONNECT_TIMEOUT_MS;
    return 0;
}

static int syslog_wait_for(struct ship_link *base, short *events, int *timeout_ms) {
    struct syslog_link *link = (struct syslog_link *)base;
    *events = 0;
    if (link->state == DOWN)
        return -1;
    if (link->state != UP) {
        int64_t left = link->deadline - monotonic_ms();
        if (left < *timeout_ms)
            *timeout_ms = left > 0 ? (int)left : 0;
    }
    if (link->state == CONNECTING) {
        *events = POLLOUT;
    } else if (link->state == HANDSHAKE) {
        unsigned want = link->transport->ops->want(link->transport);
        *events = (short)((want & MB_IO_WRITE ? POLLOUT : 0) | (want & MB_IO_READ ? POLLIN : 0));
        if (*events == 0)
            *events = POLLIN;
    } else {
        *events = POLLIN;
        if (link->out_sent < link->out_length)
            *events |= POLLOUT;
        if (link->flight_written > 0 && *timeout_ms > ACK_POLL_MS)
            *timeout_ms = ACK_POLL_MS;
    }
    return link->fd;
}

static int transport_failed(struct syslog_link *link, const char *what, long rc, char *error,
                            size_t capacity) {
    const char *detail = link->transport->detail != NULL ? link->transport->detail : "";
    if (rc == MB_ESYSTEM || rc == MB_EIO)
        snprintf(error, capacity, "%s: %s", what, strerror(link->transport->system_errno));
    else
        snprintf(error, capacity, "%s: %s%s%s", what, mb_strerror((int)rc), detail[0] ? ": " : "",
                 detail);
    drop_connection(link);
    return -1;
}

/* What TCP has been handed so far and what the peer acknowledged of it, in bytes. */
static int tcp_counts(int fd, uint64_t *handed, uint64_t *acked) {
    int queued = 0;
    if (ioctl(fd, SIOCOUTQ, &queued) != 0)
        return -1;
    struct tcp_info info;
    socklen_t length = sizeof info;
    memset(&info, 0, sizeof info);
    if (getsockopt(fd, IPPROTO_TCP, TCP_INFO, &info, &length) != 0)
        return -1;
    /* Read after the queue: an acknowledgement in between makes `handed` too big, so a record
     * is acknowledged later, never earlier. */
    *acked = info.tcpi_bytes_acked;
    *handed = info.tcpi_bytes_acked + (uint64_t)queued;
    return 0;
}

static struct flight *flight_at(struct syslog_link *link, size_t index) {
    return &link->flight[(link->flight_head + index) % FLIGHT_MAX];
}

static int write_out(struct syslog_link *link, char *error, size_t capacity) {
    while (link->out_sent < link->out_length) {
        long rc = link->transport->ops->write(link->transport, link->out + link->out_sent,
                                              link->out_length - link->out_sent);
        if (rc == MB_EAGAIN)
            break;
        if (rc < 0)
            return transport_failed(link, "sending", rc, error, capacity);
        link->out_sent += (size_t)rc;
        link->plain_written += (uint64_t)rc;
    }
    if (link->out_sent == link->out_length)
        link->out_sent = link->out_length = 0;
    /* The records now written whole get their mark in TCP's count. */
    uint64_t handed = 0, acked = 0;
    if (link->flight_written < link->flight_count &&
        flight_at(link, link->flight_written)->end <= link->plain_written) {
        if (tcp_counts(link->fd, &handed, &acked) != 0)
            handed = UINT64_MAX;
        while (link->flight_written < link->flight_count &&
               flight_at(link, link->flight_written)->end <= link->plain_written)
            flight_at(link, link->flight_written++)->mark = handed;
    }
    return 0;
}

static void take_acks(struct syslog_link *link, uint64_t *ticket, int *has_ack) {
    if (link->flight_written == 0)
        return;
    uint64_t handed, acked;
    if (tcp_counts(link->fd, &handed, &acked) != 0)
        return;
    while (link->flight_written > 0 && flight_at(link, 0)->mark <= acked) {
        *ticket = flight_at(link, 0)->ticket;
        *has_ack = 1;
        link->flight_head = (link->flight_head + 1) % FLIGHT_MAX;
        link->flight_count--;
        link->flight_written--;
    }
}

static int syslog_step(struct ship_link *base, short revents, uint64_t *ticket, int *has_ack,
                       char *error, size_t capacity) {
    struct syslog_link *link = (struct syslog_link *)base;
    if (link->state == DOWN) {
        snprintf(error, capacity, "not connected");
        return -1;
    }
    if (link->state != UP && monotonic_ms() >= link->deadline) {
        snprintf(error, capacity, "%s",
                 link->state == CONNECTING ? "connecting timed out" : "TLS handshake timed out");
        drop_connection(link);
        return -1;
    }
    if (link->state == CONNECTING) {
        if (revents == 0)
            return 0;
        int code = 0;
        socklen_t length = sizeof code;
        if (getsockopt(link->fd, SOL_SOCKET, SO_ERROR, &code, &length) != 0)
            code = errno;
        if (code != 0) {
            snprintf(error, capacity, "cannot connect: %s", strerror(code));
            drop_connection(link);
            return -1;
        }
        int rc = link->tls ? mb_tls_transport_create(link->context, link->fd, &link->transport)
                           : mb_tcp_transport_create(link->fd, &link->transport);
        if (rc != 0) {
            snprintf(error, capacity, "%s", mb_strerror(rc));
            drop_connection(link);
            return -1;
        }
        link->state = link->tls ? HANDSHAKE : UP;
        if (link->state == UP)
            return 1;
        revents = POLLOUT;
    }
    if (link->state == HANDSHAKE) {
        int rc = link->transport->ops->handshake(link->transport);
        if (rc == MB_EAGAIN)
            return 0;
        if (rc != 0)
            return transport_failed(link, "TLS handshake", rc, error, capacity);
        link->state = UP;
        return 1;
    }
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        /* A collector sends nothing: what comes is its goodbye (or a TLS alert). */
        uint8_t junk[512];
        long rc;
        while ((rc = link->transport->ops->read(link->transport, junk, sizeof junk)) > 0) {
        }
        if (rc == MB_ECLOSED) {
            snprintf(error, capacity, "the collector closed the connection");
            drop_connection(link);
            return -1;
        }
        if (rc != MB_EAGAIN)
            return transport_failed(link, "receiving", rc, error, capacity);
    }
    if (link->out_sent < link->out_length && write_out(link, error, capacity) != 0)
        return -1;
    take_acks(link, ticket, has_ack);
    return 1;
}

static int syslog_room(struct ship_link *base) {
    struct syslog_link *link = (struct syslog_link *)base;
    return link->state == UP && link->out_length < OUT_MAX && link->flight_count < FLIGHT_MAX;
}

static int out_reserve(struct syslog_link *link, size_t more) {
    if (link->out_sent > 0 && link->out_length + more > link->out_capacity) {
        memmove(link->out, link->out + link->out_sent, link->out_length - link->out_sent);
        link->out_length -= link->out_sent;
        link->out_sent = 0;
    }
    if (link->out_length + more <= link->out_capacity)
        return 0;
    size_t capacity = link->out_capacity ? link->out_capacity : 64 * 1024;
    while (capacity < link->out_length + more)
        capacity *= 2;
    uint8_t *bigger = realloc(link->out, capacity);
    if (bigger == NULL)
        return -1;
    link->out = bigger;
    link->out_capacity = capacity;
    return 0;
}

size_t ship_syslog_format(char *out, size_t capacity, int facility, const char *hostname,
                          const char *app_name, long pid, const struct ship_record *record) {
    char time[40], header[512];
    ship_format_time(record->time_ms, time, sizeof time);
    const char *msgid = record->msgid[0] != '\0' ? record->msgid : "-";
    int header_length =
        snprintf(header, sizeof header, "<%d>1 %s %s %s %ld %s - ",
                 facility * 8 + (record->severity & 7), time, hostname, app_name, pid, msgid);
    if (header_length < 0 || (size_t)header_length >= sizeof header)
        return 0;
    size_t message = (size_t)header_length + record->json_length;
    char prefix[24];
    int prefix_length = snprintf(prefix, sizeof prefix, "%zu ", message);
    size_t total = (size_t)prefix_length + message;
    if (total > capacity)
        return total;
    memcpy(out, prefix, (size_t)prefix_length);
    memcpy(out + prefix_length, header, (size_t)header_length);
    memcpy(out + prefix_length + header_length, record->json, record->json_length);
    return total;
}

static int syslog_send(struct ship_link *base, const struct ship_record *record, uint64_t ticket,
                       char *error, size_t capacity) {
    struct syslog_link *link = (struct syslog_link *)base;
    size_t need = ship_syslog_format(NULL, 0, link->facility, link->hostname, link->app_name,
                                     (long)getpid(), record);
    if (need == 0 || out_reserve(link, need) != 0) {
        snprintf(error, capacity, "out of memory");
        drop_connection(link);
        return -1;
    }
    ship_syslog_format((char *)link->out + link->out_length, need, link->facility, link->hostname,
                       link->app_name, (long)getpid(), record);
    link->out_length += need;
    link->plain_total += need;
    *flight_at(link, link->flight_count++) = (struct flight){link->plain_total, 0, ticket};
    return 0;
}

static void syslog_disconnect(struct ship_link *base, int clean) {
    struct syslog_link *link = (struct syslog_link *)base;
    (void)clean; /* closing the TCP connection is the goodbye */
    drop_connection(link);
}

static void syslog_destroy(struct ship_link *base) {
    struct syslog_link *link = (struct syslog_link *)base;
    drop_connection(link);
    if (link->context != NULL)
        mb_tls_context_destroy(link->context);
    free(link->out);
    free(link->flight);
    free(link);
}

static const struct ship_link_ops syslog_ops = {
    .connect = syslog_connect,
    .wait_for = syslog_wait_for,
    .step = syslog_step,
    .room = syslog_room,
    .send = syslog_send,
    .notice = NULL,
    .disconnect = syslog_disconnect,
    .destroy = syslog_destroy,
};

int ship_syslog_create(const struct ship_syslog_config *config, struct ship_link **out, char *error,
                       size_t capacity) {
    *out = NULL;
    struct syslog_link *link = calloc(1, sizeof *link);
    if (link != NULL)
        link->flight = calloc(FLIGHT_MAX, sizeof *link->flight);
    if (link == NULL || link->flight == NULL) {
        free(link);
        snprintf(error, capacity, "out of memory");
        return -1;
    }
    link->base.ops = &syslog_ops;
    link->fd = -1;
    link->tls = config->tls != NULL;
    snprintf(link->host, sizeof link->host, "%s", config->host);
    snprintf(link->port, sizeof link->port, "%u", (unsigned)config->port);
    snprintf(link->hostname, sizeof link->hostname, "%s", config->hostname);
    snprintf(link->app_name, sizeof link->app_name, "%s", config->app_name);
    link->facility = config->facility;
    if (link->tls) {
        struct mb_tls_config tls = *config->tls;
        if (tls.server_name == NULL && tls.pin == NULL)
            tls.server_name = config->host;
        char reason[256];
        if (mb_tls_context_create(0, &tls, &link->context, reason, sizeof reason) != 0) {
            snprintf(error, capacity, "%s", reason);
            syslog_destroy(&link->base);
            return -1;
        }
    }
    *out = &link->base;
    return 0;
}
