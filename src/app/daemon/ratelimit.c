/* SPDX-License-Identifier: MIT */
#include "app/daemon/ratelimit.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define CLIENT_BUCKETS 4096 /* hash chains for connections (a power of two) */
#define SOURCE_BUCKETS 1024

/* Per source: what happened in the current window. */
struct ratelimit_source {
    char host[64];
    uint32_t holders; /* open connections of this source that point at it: never swept */
    uint64_t window_start_ms;
    uint32_t counts[RATELIMIT_EVENTS];
    uint8_t units[32];                 /* bitmap of the unit ids seen in the window */
    uint8_t alerted;                   /* bit per event: the threshold was reached in this window */
    struct ratelimit_refusals refused; /* refusals of the window not recorded one by one */
    struct ratelimit_source *next;
};

/* A summary whose window ended before anybody asked for it. */
struct finished {
    struct ratelimit_refusals summary;
    struct finished *next;
};

struct ratelimit {
    struct ratelimit_settings settings;
    struct ratelimit_client *clients[CLIENT_BUCKETS];
    struct ratelimit_source *sources[SOURCE_BUCKETS];
    size_t source_count;
    uint64_t untracked;
    struct finished *finished, **finished_tail;
    size_t finished_count;
    /* Refusals of sources that could not be tracked, or whose summaries did not fit: one
     * summary for all of them, source "(other sources)". */
    struct ratelimit_refusals overflow;
};

static uint64_t hash_text(const char *text) {
    uint64_t hash = 1469598103934665603u; /* FNV-1a */
    for (; *text; text++)
        hash = (hash ^ (uint8_t)*text) * 1099511628211u;
    return hash;
}

void ratelimit_source_of(const char *peer, char *host, size_t capacity) {
    const char *colon = strrchr(peer, ':');
    size_t length = strlen(peer);
    if (peer[0] == '[') {
        const char *close = strchr(peer, ']');
        peer++;
        length = close != NULL ? (size_t)(close - peer) : length - 1;
    } else if (colon != NULL && strchr(peer, ':') == colon) {
        length = (size_t)(colon - peer); /* one colon: IPv4 or name with a port */
    }
    snprintf(host, capacity, "%.*s", (int)length, peer);
}

int ratelimit_create(const struct ratelimit_settings *settings, struct ratelimit **guard) {
    *guard = calloc(1, sizeof **guard);
    if (*guard == NULL)
        return -1;
    (*guard)->finished_tail = &(*guard)->finished;
    snprintf((*guard)->overflow.source, sizeof(*guard)->overflow.source, "(other sources)");
    ratelimit_configure(*guard, settings);
    return 0;
}

static uint64_t burst_milli(const struct ratelimit_settings *settings) {
    uint32_t burst = settings->burst ? settings->burst : settings->rate;
    return (uint64_t)(burst ? burst : 1) * 1000;
}

void ratelimit_configure(struct ratelimit *guard, const struct ratelimit_settings *settings) {
    guard->settings = *settings;
    uint64_t cap = burst_milli(settings);
    for (size_t i = 0; i < CLIENT_BUCKETS; i++)
        for (struct ratelimit_client *client = guard->clients[i]; client; client = client->next)
            if (client->tokens_milli > cap)
                client->tokens_milli = cap;
}

void ratelimit_destroy(struct ratelimit *guard) {
    if (guard == NULL)
        return;
    for (size_t i = 0; i < CLIENT_BUCKETS; i++)
        while (guard->clients[i] != NULL) {
            struct ratelimit_client *client = guard->clients[i];
            guard->clients[i] = client->next;
            free(client);
        }
    for (size_t i = 0; i < SOURCE_BUCKETS; i++)
        while (guard->sources[i] != NULL) {
            struct ratelimit_source *source = guard->sources[i];
            guard->sources[i] = source->next;
            free(source);
        }
    while (guard->finished != NULL) {
        struct finished *finished = guard->finished;
        guard->finished = finished->next;
        free(finished);
    }
    free(guard);
}

struct ratelimit_client *ratelimit_find(struct ratelimit *guard, uint64_t id) {
    for (struct ratelimit_client *client = guard->clients[id & (CLIENT_BUCKETS - 1)]; client;
         client = client->next)
        if (client->id == id)
            return client;
    return NULL;
}

static struct ratelimit_source *source_for(struct ratelimit *guard, const char *host,
                                           uint64_t now_ms);

struct ratelimit_client *ratelimit_open(struct ratelimit *guard, uint64_t id, const char *peer,
                                        const char *source, const char *listener, uint64_t now_ms) {
    struct ratelimit_client *client = ratelimit_find(guard, id);
    if (client == NULL) {
        client = calloc(1, sizeof *client);
        if (client == NULL)
            return NULL;
        client->id = id;
        client->next = guard->clients[id & (CLIENT_BUCKETS - 1)];
        guard->clients[id & (CLIENT_BUCKETS - 1)] = client;
    }
    snprintf(client->peer, sizeof client->peer, "%s", peer ? peer : "");
    snprintf(client->source, sizeof client->source, "%s", source ? source : "");
    snprintf(client->listener, sizeof client->listener, "%s", listener ? listener : "");
    /* The source's entry, found once: every request's counts go straight to it, and it stays
     * while the connection holds it (NULL when the table was full: counted by text then). */
    if (client->source_entry != NULL)
        client->source_entry->holders--;
    client->source_entry = source_for(guard, client->source, now_ms);
    if (client->source_entry != NULL)
        client->source_entry->holders++;
    /* A new client starts with a full bucket: a burst is allowed at once. */
    client->tokens_milli = burst_milli(&guard->settings);
    client->refilled_ms = now_ms;
    return client;
}

void ratelimit_close(struct ratelimit *guard, uint64_t id) {
    struct ratelimit_client **link = &guard->clients[id & (CLIENT_BUCKETS - 1)];
    while (*link != NULL && (*link)->id != id)
        link = &(*link)->next;
    if (*link == NULL)
        return;
    struct ratelimit_client *client = *link;
    *link = client->next;
    if (client->source_entry != NULL)
        client->source_entry->holders--;
    free(client);
}

int ratelimit_admit(struct ratelimit *guard, struct ratelimit_client *client, uint64_t now_ms) {
    uint32_t rate = guard->settings.rate;
    if (rate == 0 || client == NULL)
        return 1;
    uint64_t cap = burst_milli(&guard->settings);
    if (now_ms > client->refilled_ms) {
        /* rate per second = rate thousandths per millisecond */
        uint64_t gained = (now_ms - client->refilled_ms) * rate;
        client->tokens_milli =
            client->tokens_milli + gained > cap ? cap : client->tokens_milli + gained;
        client->refilled_ms = now_ms;
    }
    if (client->tokens_milli < 1000)
        return 0;
    client->tokens_milli -= 1000;
    return 1;
}

static int expired(const struct ratelimit *guard, const struct ratelimit_source *source,
                   uint64_t now_ms) {
    return now_ms - source->window_start_ms >= guard->settings.window_ms;
}

/* Adds refusals to a summary (the overflow one, or a source's). */
static void add_refusals(struct ratelimit_refusals *into, const struct ratelimit_refusals *from) {
    if (into->count == 0 || from->first_ms < into->first_ms)
        into->first_ms = from->first_ms;
    if (from->last_ms > into->last_ms)
        into->last_ms = from->last_ms;
    into->count += from->count;
    snprintf(into->reason, sizeof into->reason, "%s", from->reason);
}

/* A window ends: its refusal summary, if it has one, waits in the finished list until it is
 * handed out (or, when that list is full, joins the overflow summary). */
static void retire_refusals(struct ratelimit *guard, struct ratelimit_source *source) {
    if (source->refused.count == 0)
        return;
    struct finished *finished =
        guard->finished_count < RATELIMIT_MAX_SOURCES ? malloc(sizeof *finished) : NULL;
    if (finished == NULL) {
        add_refusals(&guard->overflow, &source->refused);
    } else {
        finished->summary = source->refused;
        finished->next = NULL;
        *guard->finished_tail = finished;
        guard->finished_tail = &finished->next;
        guard->finished_count++;
    }
    memset(&source->refused, 0, sizeof source->refused);
}

/* Drops the sources whose window has passed: their counts no longer matter. */
static void sweep(struct ratelimit *guard, uint64_t now_ms) {
    for (size_t i = 0; i < SOURCE_BUCKETS; i++) {
        struct ratelimit_source **link = &guard->sources[i];
        while (*link != NULL) {
            struct ratelimit_source *source = *link;
            if (source->holders == 0 && expired(guard, source, now_ms)) {
                *link = source->next;
                retire_refusals(guard, source);
                free(source);
                guard->source_count--;
            } else {
                link = &source->next;
            }
        }
    }
}

static struct ratelimit_source *source_for(struct ratelimit *guard, const char *host,
                                           uint64_t now_ms) {
    size_t bucket = hash_text(host) & (SOURCE_BUCKETS - 1);
    for (struct ratelimit_source *source = guard->sources[bucket]; source; source = source->next)
        if (strcmp(source->host, host) == 0)
            return source;
    if (guard->source_count >= RATELIMIT_MAX_SOURCES)
        sweep(guard, now_ms);
    if (guard->source_count >= RATELIMIT_MAX_SOURCES)
        return NULL;
    struct ratelimit_source *source = calloc(1, sizeof *source);
    if (source == NULL)
        return NULL;
    snprintf(source->host, sizeof source->host, "%s", host);
    source->window_start_ms = now_ms;
    source->next = guard->sources[bucket];
    guard->sources[bucket] = source;
    guard->source_count++;
    return source;
}

static uint32_t threshold(const struct ratelimit_settings *settings, enum ratelimit_event event) {
    switch (event) {
    case RATELIMIT_UNIT:
        return settings->scan_units;
    case RATELIMIT_DENIAL:
        return settings->denials;
    case RATELIMIT_MALFORMED:
        return settings->malformed;
    case RATELIMIT_RATE_LIMITED:
        return settings->rate_limited;
    case RATELIMIT_OVER_SHARE:
        return settings->over_share;
    default:
        return settings->refused;
    }
}

/* The source's entry, its window started again when the last one has passed; NULL when it
 * cannot be tracked. */
static struct ratelimit_source *window_restarted(struct ratelimit *guard,
                                                 struct ratelimit_source *source, uint64_t now_ms);

static struct ratelimit_source *window_of(struct ratelimit *guard, const char *host,
                                          uint64_t now_ms) {
    struct ratelimit_source *source = source_for(guard, host != NULL ? host : "", now_ms);
    if (source == NULL) {
        guard->untracked++;
        return NULL;
    }
    return window_restarted(guard, source, now_ms);
}

/* `source`, its window started again when the last one has passed. */
static struct ratelimit_source *window_restarted(struct ratelimit *guard,
                                                 struct ratelimit_source *source, uint64_t now_ms) {
    if (expired(guard, source, now_ms)) {
        retire_refusals(guard, source);
        memset(source->counts, 0, sizeof source->counts);
        memset(source->units, 0, sizeof source->units);
        source->alerted = 0;
        source->window_start_ms = now_ms;
    }
    return source;
}

/* Counts one event of the window: 1 when the count reaches its threshold (once a window). */
static int count_in_window(struct ratelimit *guard, struct ratelimit_source *source,
                           enum ratelimit_event event, uint32_t *count) {
    uint32_t value = ++source->counts[event];
    if (count != NULL)
        *count = value;
    uint32_t limit = threshold(&guard->settings, event);
    if (limit == 0 || value < limit || (source->alerted & (1u << event)))
        return 0;
    source->alerted |= (uint8_t)(1u << event);
    return 1;
}

int ratelimit_refused(struct ratelimit *guard, const char *host, const char *reason,
                      uint64_t now_ms, uint64_t wall_ms, int *alert, uint32_t *count) {
    struct ratelimit_refusals one = {.count = 1, .first_ms = wall_ms, .last_ms = wall_ms};
    snprintf(one.reason, sizeof one.reason, "%s", reason != NULL ? reason : "");
    *alert = 0;
    if (count != NULL)
        *count = 0;
    struct ratelimit_source *source = window_of(guard, host, now_ms);
    if (source == NULL) {
        add_refusals(&guard->overflow, &one);
        return 0;
    }
    *alert = count_in_window(guard, source, RATELIMIT_REFUSED, count);
    if (source->counts[RATELIMIT_REFUSED] == 1)
        return 1;
    if (source->refused.count == 0)
        snprintf(source->refused.source, sizeof source->refused.source, "%s", source->host);
    add_refusals(&source->refused, &one);
    return 0;
}

void ratelimit_refusal_summaries(struct ratelimit *guard, uint64_t now_ms, int all,
                                 void (*emit)(void *data, const struct ratelimit_refusals *summary),
                                 void *data) {
    while (guard->finished != NULL) {
        struct finished *finished = guard->finished;
        guard->finished = finished->next;
        emit(data, &finished->summary);
        free(finished);
    }
    guard->finished_tail = &guard->finished;
    guard->finished_count = 0;
    for (size_t i = 0; i < SOURCE_BUCKETS; i++)
        for (struct ratelimit_source *source = guard->sources[i]; source != NULL;
             source = source->next)
            if (source->refused.count > 0 && (all || expired(guard, source, now_ms))) {
                emit(data, &source->refused);
                memset(&source->refused, 0, sizeof source->refused);
            }
    if (guard->overflow.count > 0) {
        emit(data, &guard->overflow);
        guard->overflow.count = 0;
    }
}

static int note_in(struct ratelimit *guard, struct ratelimit_source *source,
                   enum ratelimit_event event, uint8_t unit, uint32_t *count);

int ratelimit_note(struct ratelimit *guard, const char *host, enum ratelimit_event event,
                   uint8_t unit, uint64_t now_ms, uint32_t *count) {
    if (count != NULL)
        *count = 0;
    if ((unsigned)event >= RATELIMIT_EVENTS)
        return 0;
    struct ratelimit_source *source = window_of(guard, host, now_ms);
    if (source == NULL)
        return 0;
    return note_in(guard, source, event, unit, count);
}

/* Counts `event` for `source` (a unit id once per window). */
static int note_in(struct ratelimit *guard, struct ratelimit_source *source,
                   enum ratelimit_event event, uint8_t unit, uint32_t *count) {
    if (event == RATELIMIT_UNIT) {
        uint8_t bit = (uint8_t)(1u << (unit & 7));
        if (source->units[unit >> 3] & bit) {
            if (count != NULL)
                *count = source->counts[event];
            return 0;
        }
        source->units[unit >> 3] |= bit;
    }
    return count_in_window(guard, source, event, count);
}

int ratelimit_note_client(struct ratelimit *guard, struct ratelimit_client *client,
                          enum ratelimit_event event, uint8_t unit, uint64_t now_ms,
                          uint32_t *count) {
    if (client == NULL || client->source_entry == NULL)
        return ratelimit_note(guard, client != NULL ? client->source : "", event, unit, now_ms,
                              count);
    if (count != NULL)
        *count = 0;
    if ((unsigned)event >= RATELIMIT_EVENTS)
        return 0;
    return note_in(guard, window_restarted(guard, client->source_entry, now_ms), event, unit,
                   count);
}

uint64_t ratelimit_untracked(const struct ratelimit *guard) {
    return guard->untracked;
}
