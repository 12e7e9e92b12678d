/* SPDX-License-Identifier: MIT */
/*
 * Shipping audit records to a network sink (syslog over TCP or TLS, an MQTT broker) without
 * losing them and without ever making the gateway wait (issue 18).
 *
 * The gateway's thread hands a record to ship_push(), which copies it into a bounded queue in
 * memory and returns. A thread of the shipper's own moves the queue into a spool on disk
 * (spool.h), syncing it once per batch, and sends from the spool over a link (the protocol:
 * ship_syslog.c, ship_mqtt.c); a record leaves the spool when the link says the receiver has
 * it. A receiver that is down, slow or refusing costs spool space, never the gateway's time.
 * The link connects again with backoff (0.5 s doubling to 30 s), sending again what was in
 * flight, so a record may arrive twice but is not lost once spooled.
 *
 * Records are lost only where they are counted: the memory queue full (the disk cannot keep
 * up), the spool full (its oldest records go), a record the spool cannot write (a full disk).
 * After a loss, the next record sent is one of the shipper's own, type "audit_dropped", that
 * says how many and why, so the receiver sees the gap.
 *
 * Besides records, a link may carry notices: the latest value of a named thing (the gateway's
 * status, a metrics snapshot), sent when connected and whenever it changes, never spooled.
 */
#ifndef MBSEC_DAEMON_SHIP_H
#define MBSEC_DAEMON_SHIP_H

#include <stddef.h>
#include <stdint.h>

/* A record as the link gets it. */
struct ship_record {
    int severity;      /* RFC 5424, 0..7 */
    int64_t time_ms;   /* when the record was made: ms since 1970, UTC */
    const char *msgid; /* the record's type: "write", "denied", "alert"... */
    const char *json;  /* one JSON object, not NUL-terminated */
    size_t json_length;
};

struct ship_link;

/* What step() learnt from the receiver. */
struct ship_progress {
    uint64_t acked; /* the newest ticket the receiver has, with has_ack */
    int has_ack;
    uint64_t refused; /* records the receiver acknowledged but refused (MQTT 5 PUBACK reasons) */
    char why[160];    /* why, for the log, with refused */
};

/* What a protocol does; every call comes from the shipper's thread. */
struct ship_link_ops {
    /* Begins to connect: 0 under way (step() goes on with it), -1 failed (`error` says why). */
    int (*connect)(struct ship_link *link, char *error, size_t capacity);
    /* What to wait for: returns the descriptor (-1: none) with POLLIN/POLLOUT in *events, and
     * may lower *timeout_ms when the link needs a timer (acknowledgements to look for). */
    int (*wait_for)(struct ship_link *link, short *events, int *timeout_ms);
    /* Goes on after the wait (revents may be 0: the timer). Returns 1 when connected, 0 while
     * still connecting, -1 when the connection failed (`error` says why). Fills `progress`
     * (zeroed by the caller) with what the receiver acknowledged. */
    int (*step)(struct ship_link *link, short revents, struct ship_progress *progress, char *error,
                size_t capacity);
    /* 1 when another record may be handed over now. */
    int (*room)(struct ship_link *link);
    /* Hands over a record. 0, or -1 when the connection failed (`error` says why). */
    int (*send)(struct ship_link *link, const struct ship_record *record, uint64_t ticket,
                char *error, size_t capacity);
    /* Sends a notice (NULL: the link has none). 0, 1 when there is no room now (it is tried
     * again later), or -1 as for send(). */
    int (*notice)(struct ship_link *link, const char *name, const char *json, int retain,
                  char *error, size_t capacity);
    /* Ends the connection, at once; what was in flight is sent again after the next connect.
     * `clean` asks for an orderly goodbye first, when it can be had without waiting. */
    void (*disconnect)(struct ship_link *link, int clean);
    void (*destroy)(struct ship_link *link);
};

struct ship_link {
    const struct ship_link_ops *ops;
};

struct ship_config {
    const char *name;     /* for messages: "audit syslog tls:collector:6514" */
    const char *spool;    /* the spool's directory, made when missing */
    uint64_t spool_bytes; /* at most this much on disk; 0: 64 MiB */
    size_t queue_bytes;   /* the memory queue's bound; 0: 8 MiB */
    const char *app_name; /* the "app" field of the shipper's own records */
};

struct ship_stats {
    uint64_t taken;     /* records handed to ship_push() */
    uint64_t delivered; /* records the receiver acknowledged */
    uint64_t queued;    /* records waiting in the spool and the memory queue now */
    uint64_t dropped;   /* records dropped, counted: spool or memory queue full */
    uint64_t lost;      /* records the spool could not write (a full disk) */
    uint64_t refused;   /* records the receiver acknowledged and refused (counted delivered) */
    uint64_t connects;  /* connections made */
    uint64_t failures;  /* connections that failed or were lost */
    uint64_t spool_bytes;
    int connected;
};

struct ship;

/*
 * Opens the spool and starts the thread; the link is the shipper's from then on (destroyed
 * by ship_close(), or here on failure). Returns 0, or -1 with one line in `error`.
 */
int ship_open(const struct ship_config *config, struct ship_link *link, struct ship **ship,
              char *error, size_t capacity);

/* Queues a record; never waits for the disk or the network. NULL ship: nothing. */
void ship_push(struct ship *ship, int severity, const char *msgid, const char *json);

/* Sets the latest value of a notice ("status", "metrics"): sent when connected, once per
 * change, the last one only. */
void ship_notice(struct ship *ship, const char *name, const char *json, int retain);

void ship_stats(struct ship *ship, struct ship_stats *stats);

/* A failure since the last call, once per outage (as audit_take_error()): 1 with a line in
 * `text`, 0 when there is none. */
int ship_take_error(struct ship *ship, char *text, size_t capacity);

/* Waits at most `timeout_ms` for everything queued to be delivered: 1 when it was, 0 when not
 * (for an orderly stop and for tests). */
int ship_drain(struct ship *ship, int timeout_ms);

/* Stops the thread (at once: what is not delivered stays in the spool for the next run),
 * closes the spool and the link. NULL is fine. */
void ship_close(struct ship *ship);

/* CLOCK_MONOTONIC in ms: the shipper's and its links' clock. */
int64_t ship_monotonic_ms(void);

/* Encodes a record for the spool, and decodes one: for the links' tests. */
size_t ship_encode(uint8_t *out, size_t capacity, int severity, int64_t time_ms, const char *msgid,
                   const char *json, size_t json_length);
int ship_decode(const void *data, size_t length, struct ship_record *record);

#endif
