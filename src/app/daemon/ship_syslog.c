/* SPDX-License-Identifier: MIT */
/*
 * The syslog link of the shipper: RFC 5424 messages over TCP with octet counting (RFC 6587),
 * or over TLS (RFC 5425), to a collector such as rsyslog, syslog-ng, Vector or Fluent Bit.
 *
 * RFC 5425 has no acknowledgement of its own. A record counts as delivered once the
 * collector's TCP has acknowledged its last byte (TCP_INFO's bytes_acked) and HOLD_MS have
 * passed without the connection being reset: a collector that goes away with records unread in
 * its socket buffer resets the connection (RST), and the records it may not have read are sent
 * again. An orderly goodbye (FIN) means it read everything its TCP acknowledged. What sat
 * unread longer than HOLD_MS before a crash is beyond what TCP can tell (docs/fleet.md).
 */
#include "app/daemon/ship_syslog.h"

#include <linux/sockios.h>
#include <linux/tcp.h>
#include <netinet/in.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/ioctl.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app/common/log.h"
#include "app/daemon/ship_stream.h"

#define ACK_POLL_MS 10       /* how often to look for acknowledgements while some wait */
#define OUT_MAX (256 * 1024) /* bytes formatted and not yet written */
#define FLIGHT_MAX 65536     /* records written and not yet delivered: at HOLD_MS, 65536 a second */
#define HOLD_MS 1000         /* acknowledged by TCP this long without a reset: delivered */

struct flight {
    uint64_t end;     /* where the record ends in the bytes handed to the stream */
    uint64_t mark;    /* where it ends in what was handed to TCP, once written whole */
    int64_t acked_at; /* when TCP acknowledged it (monotonic ms); 0: not yet */
    uint64_t ticket;
};

struct syslog_link {
    struct ship_link base;
    struct ship_stream stream;
    char hostname[256];
    char app_name[49];
    int facility;
    long pid;           /* PROCID: the process that connected */
    uint64_t formatted; /* bytes formatted since connecting */
    struct flight *flight;
    size_t flight_head, flight_count, flight_written, flight_acked;
};

static void forget_flight(struct syslog_link *link) {
    link->formatted = 0;
    link->flight_head = link->flight_count = link->flight_written = link->flight_acked = 0;
}

static int syslog_connect(struct ship_link *base, char *error, size_t capacity) {
    struct syslog_link *link = (struct syslog_link *)base;
    forget_flight(link);
    link->pid = (long)getpid();
    return ship_stream_connect(&link->stream, error, capacity);
}

static struct flight *flight_at(struct syslog_link *link, size_t index) {
    return &link->flight[(link->flight_head + index) % FLIGHT_MAX];
}

static int syslog_wait_for(struct ship_link *base, short *events, int *timeout_ms) {
    struct syslog_link *link = (struct syslog_link *)base;
    int fd = ship_stream_wait_for(&link->stream, events, timeout_ms);
    if (link->flight_written > link->flight_acked && *timeout_ms > ACK_POLL_MS)
        *timeout_ms = ACK_POLL_MS;
    else if (link->flight_acked > 0) {
        int64_t due = flight_at(link, 0)->acked_at + HOLD_MS - ship_monotonic_ms();
        if (due < *timeout_ms)
            *timeout_ms = due > 0 ? (int)due : 0;
    }
    return fd;
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

/* The records now written whole get their mark in TCP's count. */
static void mark_written(struct syslog_link *link) {
    if (link->flight_written >= link->flight_count ||
        flight_at(link, link->flight_written)->end > link->stream.written)
        return;
    uint64_t handed = 0, acked = 0;
    if (tcp_counts(link->stream.fd, &handed, &acked) != 0)
        handed = UINT64_MAX;
    while (link->flight_written < link->flight_count &&
           flight_at(link, link->flight_written)->end <= link->stream.written)
        flight_at(link, link->flight_written++)->mark = handed;
}

/* Notes which written records TCP has acknowledged now. */
static void note_tcp_acks(struct syslog_link *link) {
    if (link->flight_acked >= link->flight_written || link->stream.fd < 0)
        return;
    uint64_t handed, acked;
    if (tcp_counts(link->stream.fd, &handed, &acked) != 0)
        return;
    int64_t now = ship_monotonic_ms();
    while (link->flight_acked < link->flight_written &&
           flight_at(link, link->flight_acked)->mark <= acked)
        flight_at(link, link->flight_acked++)->acked_at = now;
}

/* Reports as delivered the records TCP acknowledged HOLD_MS ago (`all`: every one it has). */
static void take_acks(struct syslog_link *link, struct ship_progress *progress, int all) {
    int64_t now = ship_monotonic_ms();
    while (link->flight_acked > 0 && (all || now - flight_at(link, 0)->acked_at >= HOLD_MS)) {
        progress->acked = flight_at(link, 0)->ticket;
        progress->has_ack = 1;
        link->flight_head = (link->flight_head + 1) % FLIGHT_MAX;
        link->flight_count--;
        link->flight_written--;
        link->flight_acked--;
    }
}

static int syslog_step(struct ship_link *base, short revents, struct ship_progress *progress,
                       char *error, size_t capacity) {
    struct syslog_link *link = (struct syslog_link *)base;
    int state = ship_stream_advance(&link->stream, error, capacity);
    if (state <= 0)
        return state;
    note_tcp_acks(link);
    if (revents & (POLLIN | POLLHUP | POLLERR)) {
        /* A collector sends nothing: what comes is its goodbye (or a TLS alert). */
        uint8_t junk[512];
        long got;
        while ((got = ship_stream_read(&link->stream, junk, sizeof junk, error, capacity)) > 0) {
        }
        if (got < 0) {
            /* An orderly goodbye: it read what its TCP acknowledged. A reset: maybe not. */
            if (link->stream.ended)
                take_acks(link, progress, 1);
            return -1;
        }
    }
    if (ship_stream_flush(&link->stream, error, capacity) != 0)
        return -1;
    mark_written(link);
    take_acks(link, progress, 0);
    return 1;
}

static int syslog_room(struct ship_link *base) {
    struct syslog_link *link = (struct syslog_link *)base;
    return link->stream.state == STREAM_UP && ship_stream_pending(&link->stream) < OUT_MAX &&
           link->flight_count < FLIGHT_MAX;
}

int ship_syslog_header(char *out, size_t capacity, int facility, int severity, uint64_t time_ms,
                       const char *hostname, const char *app_name, long pid, const char *msgid) {
    char time[40];
    log_time_of(time_ms, time, sizeof time);
    int length = snprintf(out, capacity, "<%d>1 %s %s %s %ld %s - ", facility * 8 + (severity & 7),
                          time, hostname, app_name, pid, msgid[0] != '\0' ? msgid : "-");
    return length >= 0 && (size_t)length < capacity ? length : -1;
}

static int syslog_send(struct ship_link *base, const struct ship_record *record, uint64_t ticket,
                       char *error, size_t capacity) {
    struct syslog_link *link = (struct syslog_link *)base;
    /* "LEN <PRI>1 TIME HOST APP PID MSGID - JSON": the header once, then the whole frame. */
    char header[512], prefix[24];
    int header_length = ship_syslog_header(header, sizeof header, link->facility, record->severity,
                                           (uint64_t)record->time_ms, link->hostname,
                                           link->app_name, link->pid, record->msgid);
    size_t message = (size_t)(header_length > 0 ? header_length : 0) + record->json_length;
    int prefix_length = snprintf(prefix, sizeof prefix, "%zu ", message);
    size_t need = (size_t)prefix_length + message;
    uint8_t *at = header_length > 0 ? ship_stream_reserve(&link->stream, need) : NULL;
    if (at == NULL) {
        snprintf(error, capacity, "%s", header_length > 0 ? "out of memory" : "header too long");
        ship_stream_close(&link->stream);
        return -1;
    }
    memcpy(at, prefix, (size_t)prefix_length);
    memcpy(at + prefix_length, header, (size_t)header_length);
    memcpy(at + prefix_length + header_length, record->json, record->json_length);
    ship_stream_commit(&link->stream, need);
    link->formatted += need;
    *flight_at(link, link->flight_count++) =
        (struct flight){.end = link->formatted, .ticket = ticket};
    return 0;
}

static void syslog_disconnect(struct ship_link *base, int clean) {
    struct syslog_link *link = (struct syslog_link *)base;
    (void)clean; /* closing the TCP connection is the goodbye */
    ship_stream_close(&link->stream);
    forget_flight(link);
}

static void syslog_destroy(struct ship_link *base) {
    struct syslog_link *link = (struct syslog_link *)base;
    ship_stream_free(&link->stream);
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
    snprintf(link->hostname, sizeof link->hostname, "%s", config->hostname);
    snprintf(link->app_name, sizeof link->app_name, "%s", config->app_name);
    link->facility = config->facility;
    if (ship_stream_init(&link->stream, config->host, config->port, config->tls, error, capacity) !=
        0) {
        syslog_destroy(&link->base);
        return -1;
    }
    *out = &link->base;
    return 0;
}
