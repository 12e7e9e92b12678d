/* SPDX-License-Identifier: MIT */
/*
 * What `mbsec gateway` remembers about its clients beyond the policy: who each connection is
 * (source, TLS subject, role, cipher, for audit records), a token bucket per connection (the
 * rate limit), and per source the counts behind alerts (unit ids touched, denials, malformed
 * frames, requests over the rate, connections refused) within a window: a fixed window per
 * source, which its first event starts and the first event after it ends starts again. A source
 * is what the server put in struct mb_peer's `source`: the address cut to the source prefix
 * ("192.0.2.7", "2001:db8:1:2::/64"), so one host's many IPv6 addresses count as one. One
 * thread uses it.
 *
 * Refused connections are also summed up for the audit trail: the first refusal of a source in
 * its window is recorded at once, the others are counted and handed out as one summary when
 * the window ends (ratelimit_refusal_summaries), so that a flood from one source neither floods
 * the audit trail nor hides the refusals of another.
 *
 * Memory is bounded: a connection entry per open connection, and at most RATELIMIT_MAX_SOURCES
 * source entries; when that many sources are active at once, new ones are not tracked for
 * alerts until old windows expire (and ratelimit_untracked() counts them).
 */
#ifndef MBSEC_TOOLS_GUARD_H
#define MBSEC_TOOLS_GUARD_H

#include <stddef.h>
#include <stdint.h>

#define RATELIMIT_MAX_SOURCES 4096

struct ratelimit_settings {
    uint32_t rate;         /* requests per second per connection; 0: no limit */
    uint32_t burst;        /* bucket size; 0: max(rate, 1) */
    uint32_t window_ms;    /* the alert window */
    uint32_t scan_units;   /* distinct unit ids from one source in a window: alert */
    uint32_t denials;      /* denials for one source in a window: alert */
    uint32_t malformed;    /* malformed frames from one source in a window: alert */
    uint32_t rate_limited; /* requests refused for the rate, one source, in a window: alert */
    uint32_t refused;      /* connections refused over a limit, one source, in a window */
    uint32_t over_share;   /* requests over a backend share, one source, in a window */
};

/* One open connection. Strings are always NUL-terminated ("" when unknown). */
struct ratelimit_client {
    uint64_t id;
    char peer[64];   /* "192.0.2.1:50123" */
    char source[64]; /* "192.0.2.1", "2001:db8:1:2::/64" */
    char listener[64];
    int tls;        /* 1 once its TLS handshake is done */
    char role[129]; /* "" with has_role 0 */
    int has_role;
    char subject[256];
    char version[16];
    char cipher[64];
    uint64_t tokens_milli; /* the bucket, in thousandths of a request */
    uint64_t refilled_ms;
    uint64_t requests, denied, rate_limited;
    /* Its source's counts, found when it opened (NULL when too many sources were tracked):
     * ratelimit_note_client() goes straight to them. */
    struct ratelimit_source *source_entry;
    struct ratelimit_client *next; /* in its hash chain */
};

enum ratelimit_event {
    RATELIMIT_UNIT = 0,         /* a request for a unit id (with `unit`) */
    RATELIMIT_DENIAL = 1,       /* the policy refused a request */
    RATELIMIT_MALFORMED = 2,    /* a frame that is not valid Modbus */
    RATELIMIT_RATE_LIMITED = 3, /* a request over the connection's rate */
    RATELIMIT_REFUSED = 4,      /* a connection refused over a limit */
    RATELIMIT_OVER_SHARE = 5,   /* a request over its identity's share of a backend */
    RATELIMIT_EVENTS = 6
};

struct ratelimit;
struct ratelimit_source;

/* Returns 0 or -1 (out of memory). */
int ratelimit_create(const struct ratelimit_settings *settings, struct ratelimit **guard);
/* New settings (a reload): buckets keep their tokens, cut to the new burst. */
void ratelimit_configure(struct ratelimit *guard, const struct ratelimit_settings *settings);
void ratelimit_destroy(struct ratelimit *guard);

/* A connection opened (peer "host:port", source as above), closed, and found by id (NULL when
 * unknown). */
struct ratelimit_client *ratelimit_open(struct ratelimit *guard, uint64_t id, const char *peer,
                                        const char *source, const char *listener, uint64_t now_ms);
void ratelimit_close(struct ratelimit *guard, uint64_t id);
struct ratelimit_client *ratelimit_find(struct ratelimit *guard, uint64_t id);

/* Takes a token from the client's bucket: 1 when the request may go on, 0 when it is over the
 * rate. Always 1 without a rate. */
int ratelimit_admit(struct ratelimit *guard, struct ratelimit_client *client, uint64_t now_ms);

/*
 * Counts an event for `source`. Returns 1 exactly when the count reaches its threshold within
 * the current window (so an alert is raised once per window and kind), 0 otherwise; *count
 * gets the count so far in the window (for RATELIMIT_UNIT: the distinct unit ids).
 */
int ratelimit_note(struct ratelimit *guard, const char *source, enum ratelimit_event event,
                   uint8_t unit, uint64_t now_ms, uint32_t *count);

/* The same for the source of an open connection, without looking the source up: what a
 * request's stages count (its context was made at accept). A NULL client counts for "". */
int ratelimit_note_client(struct ratelimit *guard, struct ratelimit_client *client,
                          enum ratelimit_event event, uint8_t unit, uint64_t now_ms,
                          uint32_t *count);

/* The refusals of one source in one window that were not recorded one by one. */
struct ratelimit_refusals {
    char source[64];
    uint32_t count;             /* refusals summed up here */
    uint64_t first_ms, last_ms; /* wall clock, ms since the epoch, of the first and last */
    char reason[96];            /* the last one's reason */
};

/*
 * A connection of `source` refused (now_ms on the loop's clock, wall_ms since the epoch):
 * counted as RATELIMIT_REFUSED (*alert 1 when that reaches its threshold, as ratelimit_note()
 * returns). Returns 1 when it is the source's first refusal in its window, which the caller
 * records at once; 0 when it was added to the source's summary.
 */
int ratelimit_refused(struct ratelimit *guard, const char *source, const char *reason,
                      uint64_t now_ms, uint64_t wall_ms, int *alert, uint32_t *count);

/* Hands `emit` every summary of refusals whose window has ended by now_ms (every one, ended or
 * not, with `all`: at shutdown), and forgets them. */
void ratelimit_refusal_summaries(struct ratelimit *guard, uint64_t now_ms, int all,
                                 void (*emit)(void *data, const struct ratelimit_refusals *summary),
                                 void *data);

/* Events not counted because RATELIMIT_MAX_SOURCES sources were being tracked. */
uint64_t ratelimit_untracked(const struct ratelimit *guard);

/* The host part of "host:port" ("[v6]:port" gives "v6"), into `host`. */
void ratelimit_source_of(const char *peer, char *host, size_t capacity);

#endif
