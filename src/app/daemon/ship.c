/* SPDX-License-Identifier: MIT */
#include "app/daemon/ship.h"

#include <errno.h>
#include <poll.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "app/common/json.h"
#include "app/common/log.h"
#include "app/daemon/spool.h"

#define DEFAULT_SPOOL_BYTES (64ull * 1024 * 1024)
#define DEFAULT_QUEUE_BYTES ((size_t)8 * 1024 * 1024)
#define BACKOFF_FIRST_MS 500
#define BACKOFF_MAX_MS 30000
#define CURSOR_SYNC_MS 200 /* acknowledgements alone are made durable at most this often */
#define BATCH_MS 10        /* records are taken into the spool (and synced) this often, at most */
#define BATCH_BYTES (1024 * 1024) /* ...or as soon as this much waits */
#define IDLE_MS 200               /* no record for this long: the thread sleeps until woken */
#define RECORD_HEAD 10            /* version, severity, time */
#define NOTICES 4
#define LOSS_REPORT_MS 10000

struct notice {
    char name[32];
    char *json; /* the latest value; NULL: none */
    int retain;
    int pending; /* changed since it was last sent */
};

/* Encoded records, each a 4-byte length and the bytes. */
struct batch {
    uint8_t *bytes;
    size_t length, capacity;
};

struct ship {
    pthread_t thread;
    int started;
    int wake_fd;
    struct ship_link *link;
    struct spool *spool;
    char name[256];
    char app_name[64];

    /* Shared with the gateway's thread, under `lock`. */
    pthread_mutex_t lock;
    pthread_cond_t drained;
    struct batch queue;
    size_t queue_bytes;
    uint64_t queue_dropped; /* since the shipper last took them */
    uint64_t queue_records;
    struct notice notices[NOTICES];
    int stopping;
    int sleeping; /* the thread waits for a wake-up: the next record sends one */
    struct ship_stats stats;
    int failing, unreported;
    char message[512];

    /* The thread's own. */
    struct batch taken;
    int64_t loss_reported_at;
    uint64_t total_spool_full, total_queue_full, total_disk_errors;
    int connected;    /* 1 up, 0 connecting, -1 down */
    int64_t retry_at; /* when down: the next attempt (monotonic ms) */
    int backoff_ms;
    int64_t synced_at; /* the last spool sync */
    int dirty;         /* appends or acknowledgements not yet synced */
    uint8_t scratch[4096];
};

int64_t ship_monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

size_t ship_encode(uint8_t *out, size_t capacity, int severity, int64_t time_ms, const char *msgid,
                   const char *json, size_t json_length) {
    size_t id_length = msgid != NULL ? strnlen(msgid, 32) : 0;
    size_t need = RECORD_HEAD + id_length + 1 + json_length;
    if (need > capacity)
        return 0;
    out[0] = 1;
    out[1] = (uint8_t)(severity & 7);
    for (int i = 0; i < 8; i++)
        out[2 + i] = (uint8_t)((uint64_t)time_ms >> (8 * i));
    memcpy(out + RECORD_HEAD, msgid != NULL ? msgid : "", id_length);
    out[RECORD_HEAD + id_length] = '\0';
    memcpy(out + RECORD_HEAD + id_length + 1, json, json_length);
    return need;
}

int ship_decode(const void *data, size_t length, struct ship_record *record) {
    const uint8_t *in = data;
    if (length < RECORD_HEAD + 1 || in[0] != 1)
        return -1;
    const uint8_t *end = memchr(in + RECORD_HEAD, '\0', length - RECORD_HEAD);
    if (end == NULL)
        return -1;
    uint64_t time = 0;
    for (int i = 0; i < 8; i++)
        time |= (uint64_t)in[2 + i] << (8 * i);
    record->severity = in[1];
    record->time_ms = (int64_t)time;
    record->msgid = (const char *)in + RECORD_HEAD;
    record->json = (const char *)end + 1;
    record->json_length = length - (size_t)(end + 1 - in);
    return 0;
}

static void wake(struct ship *ship) {
    uint64_t one = 1;
    ssize_t written = write(ship->wake_fd, &one, sizeof one);
    (void)written; /* a full counter wakes the thread as well */
}

/* Appends one record, given in two parts, to a batch. */
static int batch_add(struct batch *batch, const uint8_t *head, size_t head_length, const char *rest,
                     size_t rest_length) {
    size_t need = batch->length + 4 + head_length + rest_length;
    if (need > batch->capacity) {
        size_t capacity = batch->capacity ? batch->capacity : 64 * 1024;
        while (capacity < need)
            capacity *= 2;
        uint8_t *bigger = realloc(batch->bytes, capacity);
        if (bigger == NULL)
            return -1;
        batch->bytes = bigger;
        batch->capacity = capacity;
    }
    uint32_t n = (uint32_t)(head_length + rest_length);
    memcpy(batch->bytes + batch->length, &n, 4);
    memcpy(batch->bytes + batch->length + 4, head, head_length);
    memcpy(batch->bytes + batch->length + 4 + head_length, rest, rest_length);
    batch->length = need;
    return 0;
}

/* ---- the gateway's side ---- */

void ship_push(struct ship *ship, int severity, const char *msgid, const char *json) {
    if (ship == NULL || json == NULL)
        return;
    size_t json_length = strlen(json);
    uint8_t head[RECORD_HEAD + 33];
    size_t head_length =
        ship_encode(head, sizeof head, severity, (int64_t)log_wall_ms(), msgid, "", 0);
    pthread_mutex_lock(&ship->lock);
    ship->stats.taken++;
    size_t length = head_length + json_length;
    if (ship->queue.length + 4 + length > ship->queue_bytes || length > SPOOL_RECORD_MAX / 2 ||
        batch_add(&ship->queue, head, head_length, json, json_length) != 0) {
        ship->queue_dropped++;
        pthread_mutex_unlock(&ship->lock);
        wake(ship);
        return;
    }
    ship->queue_records++;
    /* A busy thread comes for the records within BATCH_MS by itself: one wake-up per idle
     * spell, and one when the queue first reaches BATCH_BYTES, not one per record. */
    size_t added = 4 + head_length + json_length;
    int wake_now = ship->sleeping ||
                   (ship->queue.length >= BATCH_BYTES && ship->queue.length - added < BATCH_BYTES);
    ship->sleeping = 0;
    pthread_mutex_unlock(&ship->lock);
    if (wake_now)
        wake(ship);
}

void ship_notice(struct ship *ship, const char *name, const char *json, int retain) {
    if (ship == NULL || name == NULL || json == NULL)
        return;
    pthread_mutex_lock(&ship->lock);
    struct notice *slot = NULL;
    for (int i = 0; i < NOTICES && slot == NULL; i++)
        if (ship->notices[i].json != NULL && strcmp(ship->notices[i].name, name) == 0)
            slot = &ship->notices[i];
    for (int i = 0; i < NOTICES && slot == NULL; i++)
        if (ship->notices[i].json == NULL)
            slot = &ship->notices[i];
    char *copy = slot != NULL ? strdup(json) : NULL;
    if (copy != NULL) {
        free(slot->json);
        snprintf(slot->name, sizeof slot->name, "%s", name);
        slot->json = copy;
        slot->retain = retain;
        slot->pending = 1;
    }
    pthread_mutex_unlock(&ship->lock);
    wake(ship);
}

void ship_stats(struct ship *ship, struct ship_stats *stats) {
    memset(stats, 0, sizeof *stats);
    if (ship == NULL)
        return;
    pthread_mutex_lock(&ship->lock);
    *stats = ship->stats;
    stats->queued += ship->queue_records;
    pthread_mutex_unlock(&ship->lock);
}

int ship_take_error(struct ship *ship, char *text, size_t capacity) {
    if (ship == NULL)
        return 0;
    pthread_mutex_lock(&ship->lock);
    int found = ship->unreported;
    if (found)
        snprintf(text, capacity, "%s", ship->message);
    ship->unreported = 0;
    pthread_mutex_unlock(&ship->lock);
    return found;
}

int ship_drain(struct ship *ship, int timeout_ms) {
    if (ship == NULL)
        return 1;
    struct timespec until;
    clock_gettime(CLOCK_REALTIME, &until);
    until.tv_sec += timeout_ms / 1000;
    until.tv_nsec += (long)(timeout_ms % 1000) * 1000000;
    if (until.tv_nsec >= 1000000000) {
        until.tv_sec++;
        until.tv_nsec -= 1000000000;
    }
    pthread_mutex_lock(&ship->lock);
    int rc = 0;
    while (rc == 0 && (ship->stats.queued > 0 || ship->queue_records > 0))
        rc = pthread_cond_timedwait(&ship->drained, &ship->lock, &until);
    int done = ship->stats.queued == 0 && ship->queue_records == 0;
    pthread_mutex_unlock(&ship->lock);
    return done;
}

/* ---- the shipper's thread ---- */

static void report(struct ship *ship, const char *fmt, ...) __attribute__((format(printf, 2, 3)));

static void report(struct ship *ship, const char *fmt, ...) {
    pthread_mutex_lock(&ship->lock);
    /* A line not yet taken (a loss, say) is not written over by a connection's failure. */
    if (!ship->unreported) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(ship->message, sizeof ship->message, fmt, args);
        va_end(args);
    }
    if (!ship->failing) {
        ship->failing = 1;
        ship->unreported = 1;
    }
    pthread_mutex_unlock(&ship->lock);
}

/* A loss (records dropped or not written): said whatever the connection does, at most once in
 * LOSS_REPORT_MS. */
static void report_loss(struct ship *ship, const char *fmt, ...)
    __attribute__((format(printf, 2, 3)));

static void report_loss(struct ship *ship, const char *fmt, ...) {
    int64_t now = ship_monotonic_ms();
    if (ship->loss_reported_at != 0 && now - ship->loss_reported_at < LOSS_REPORT_MS)
        return;
    ship->loss_reported_at = now;
    pthread_mutex_lock(&ship->lock);
    va_list args;
    va_start(args, fmt);
    vsnprintf(ship->message, sizeof ship->message, fmt, args);
    va_end(args);
    ship->unreported = 1;
    pthread_mutex_unlock(&ship->lock);
}

/*
 * The shipper's own record about records that were dropped or lost: how many since the last
 * such record, and in total since the shipper started. Such a record may itself be dropped in a
 * long outage; the totals of the next one still count everything.
 */
static void append_loss(struct ship *ship, uint64_t dropped, uint64_t queue_dropped,
                        uint64_t lost) {
    ship->total_spool_full += dropped;
    ship->total_queue_full += queue_dropped;
    ship->total_disk_errors += lost;
    char time[40];
    int64_t now = (int64_t)log_wall_ms();
    log_time_of((uint64_t)now, time, sizeof time);
    struct json json;
    json_begin(&json);
    json_string(&json, "time", time);
    json_string(&json, "type", "audit_dropped");
    json_string(&json, "app", ship->app_name);
    json_string(&json, "sink", ship->name);
    json_uint(&json, "records", dropped + queue_dropped + lost);
    json_uint(&json, "spool_full", dropped);
    json_uint(&json, "queue_full", queue_dropped);
    json_uint(&json, "disk_errors", lost);
    json_uint(&json, "records_total",
              ship->total_spool_full + ship->total_queue_full + ship->total_disk_errors);
    json_uint(&json, "spool_full_total", ship->total_spool_full);
    json_uint(&json, "queue_full_total", ship->total_queue_full);
    json_uint(&json, "disk_errors_total", ship->total_disk_errors);
    const char *text = json_end(&json);
    size_t length = ship_encode(ship->scratch, sizeof ship->scratch, 4, now, "audit_dropped", text,
                                strlen(text));
    if (length > 0 && spool_append(ship->spool, ship->scratch, length) == 0)
        ship->dirty = 1;
}

/* Moves what the gateway queued into the spool. */
static void take_queue(struct ship *ship) {
    pthread_mutex_lock(&ship->lock);
    struct batch swap = ship->queue;
    ship->queue = ship->taken;
    ship->queue.length = 0;
    ship->taken = swap;
    uint64_t queue_dropped = ship->queue_dropped;
    ship->queue_dropped = 0;
    ship->queue_records = 0;
    pthread_mutex_unlock(&ship->lock);

    for (size_t at = 0; at + 4 <= ship->taken.length;) {
        uint32_t length;
        memcpy(&length, ship->taken.bytes + at, 4);
        if (spool_append(ship->spool, ship->taken.bytes + at + 4, length) == 0)
            ship->dirty = 1;
        at += 4 + length;
    }
    ship->taken.length = 0;
    struct spool_stats spooled;
    spool_stats(ship->spool, &spooled);
    uint64_t dropped = spool_take_dropped(ship->spool);
    uint64_t lost = spooled.lost - ship->total_disk_errors;
    if (lost > 0)
        report_loss(ship, "%s: the spool lost records: %s", ship->name, spool_error(ship->spool));
    else if (dropped > 0)
        report_loss(ship, "%s: the spool is full; its oldest records are dropped", ship->name);
    else if (queue_dropped > 0)
        report_loss(ship, "%s: the spool cannot keep up; records are dropped", ship->name);
    if (dropped + queue_dropped + lost > 0)
        append_loss(ship, dropped, queue_dropped, lost);
}

static void sync_spool(struct ship *ship, int appended) {
    int64_t now = ship_monotonic_ms();
    if (!ship->dirty || (!appended && now - ship->synced_at < CURSOR_SYNC_MS))
        return;
    if (spool_sync(ship->spool) != 0)
        report(ship, "%s: %s", ship->name, spool_error(ship->spool));
    ship->synced_at = now;
    ship->dirty = 0;
}

static void link_failed(struct ship *ship, const char *error) {
    ship->link->ops->disconnect(ship->link, 0);
    spool_rewind(ship->spool);
    report(ship, "%s: %s (records are spooled; trying again)", ship->name, error);
    pthread_mutex_lock(&ship->lock);
    ship->stats.failures++;
    ship->stats.connected = 0;
    pthread_mutex_unlock(&ship->lock);
    ship->connected = -1;
    ship->retry_at = ship_monotonic_ms() + ship->backoff_ms;
    ship->backoff_ms =
        ship->backoff_ms * 2 < BACKOFF_MAX_MS ? ship->backoff_ms * 2 : BACKOFF_MAX_MS;
    /* Notices go again on the next connection. */
    pthread_mutex_lock(&ship->lock);
    for (int i = 0; i < NOTICES; i++)
        if (ship->notices[i].json != NULL)
            ship->notices[i].pending = 1;
    pthread_mutex_unlock(&ship->lock);
}

static void link_up(struct ship *ship) {
    ship->connected = 1;
    ship->backoff_ms = BACKOFF_FIRST_MS;
    pthread_mutex_lock(&ship->lock);
    ship->stats.connects++;
    ship->stats.connected = 1;
    ship->failing = 0;
    pthread_mutex_unlock(&ship->lock);
}

/* Sends the notices that changed. Returns -1 when the link failed. */
static int send_notices(struct ship *ship, char *error, size_t capacity) {
    if (ship->link->ops->notice == NULL)
        return 0;
    for (int i = 0; i < NOTICES; i++) {
        pthread_mutex_lock(&ship->lock);
        struct notice *slot = &ship->notices[i];
        char *json = slot->pending && slot->json != NULL ? strdup(slot->json) : NULL;
        char name[32];
        snprintf(name, sizeof name, "%s", slot->name);
        int retain = slot->retain;
        slot->pending = 0;
        pthread_mutex_unlock(&ship->lock);
        if (json == NULL)
            continue;
        int rc = ship->link->ops->notice(ship->link, name, json, retain, error, capacity);
        free(json);
        if (rc > 0) {
            /* No room now: again later, unless a newer value came meanwhile. */
            pthread_mutex_lock(&ship->lock);
            slot->pending = 1;
            pthread_mutex_unlock(&ship->lock);
            return 0;
        }
        if (rc != 0)
            return -1;
    }
    return 0;
}

/* Hands the link what it has room for. Returns -1 when the link failed. */
static int send_records(struct ship *ship, char *error, size_t capacity) {
    const void *data;
    size_t length;
    uint64_t ticket;
    while (ship->link->ops->room(ship->link) &&
           spool_next(ship->spool, &data, &length, &ticket) == 1) {
        struct ship_record record;
        if (ship_decode(data, length, &record) != 0) {
            /* Not one of ours (cannot happen with an intact CRC): skipped. Acknowledging it
             * acknowledges everything before it, so only when it is the first not yet
             * acknowledged; otherwise the next record's acknowledgement takes it along. */
            if (ticket == spool_head(ship->spool))
                spool_ack_through(ship->spool, ticket);
            continue;
        }
        if (ship->link->ops->send(ship->link, &record, ticket, error, capacity) != 0)
            return -1;
    }
    return 0;
}

static void publish_stats(struct ship *ship) {
    struct spool_stats spooled;
    spool_stats(ship->spool, &spooled);
    pthread_mutex_lock(&ship->lock);
    ship->stats.delivered = spooled.acked;
    ship->stats.dropped = spooled.dropped + ship->total_queue_full;
    ship->stats.queued = spooled.queued;
    ship->stats.lost = spooled.lost;
    ship->stats.spool_bytes = spooled.bytes;
    if (spooled.queued == 0 && ship->queue_records == 0)
        pthread_cond_broadcast(&ship->drained);
    pthread_mutex_unlock(&ship->lock);
}

static void *run(void *argument) {
    struct ship *ship = argument;
    char error[512];
    int64_t taken_at = 0, record_at = 0;
    for (;;) {
        int64_t now = ship_monotonic_ms();
        pthread_mutex_lock(&ship->lock);
        int stopping = ship->stopping;
        int queued = ship->queue_records > 0 || ship->queue_dropped > 0;
        size_t waiting = ship->queue.length;
        pthread_mutex_unlock(&ship->lock);
        if (stopping)
            break;
        /* Records are taken in batches: one append run and one fsync for each. */
        int take = queued && (now - taken_at >= BATCH_MS || waiting >= BATCH_BYTES);
        if (take) {
            take_queue(ship);
            taken_at = record_at = now;
        }
        sync_spool(ship, take);

        if (ship->connected < 0 && now >= ship->retry_at) {
            if (ship->link->ops->connect(ship->link, error, sizeof error) == 0)
                ship->connected = 0;
            else
                link_failed(ship, error);
        }
        if (ship->connected == 1 && (send_notices(ship, error, sizeof error) != 0 ||
                                     send_records(ship, error, sizeof error) != 0))
            link_failed(ship, error);

        publish_stats(ship);

        int timeout = ship->dirty ? CURSOR_SYNC_MS : 1000;
        /* Busy lately: back for the next batch by itself. Idle: asleep until a record comes. */
        pthread_mutex_lock(&ship->lock);
        if (ship->queue_records > 0 || ship->queue_dropped > 0) {
            int64_t next = taken_at + BATCH_MS - ship_monotonic_ms();
            timeout = next > 0 ? (int)next : 0;
        } else if (ship_monotonic_ms() - record_at < IDLE_MS) {
            timeout = timeout < BATCH_MS ? timeout : BATCH_MS;
        } else {
            ship->sleeping = 1;
        }
        pthread_mutex_unlock(&ship->lock);
        if (ship->connected < 0) {
            int64_t wait = ship->retry_at - ship_monotonic_ms();
            if (wait < timeout)
                timeout = wait > 0 ? (int)wait : 0;
        }
        struct pollfd fds[2] = {{ship->wake_fd, POLLIN, 0}, {-1, 0, 0}};
        if (ship->connected >= 0)
            fds[1].fd = ship->link->ops->wait_for(ship->link, &fds[1].events, &timeout);
        if (poll(fds, fds[1].fd >= 0 ? 2 : 1, timeout) < 0 && errno != EINTR)
            break;
        if (fds[0].revents & POLLIN) {
            uint64_t count;
            ssize_t got = read(ship->wake_fd, &count, sizeof count);
            (void)got;
        }
        if (ship->connected >= 0) {
            struct ship_progress progress;
            memset(&progress, 0, sizeof progress);
            int state = ship->link->ops->step(ship->link, fds[1].fd >= 0 ? fds[1].revents : 0,
                                              &progress, error, sizeof error);
            if (progress.has_ack) {
                spool_ack_through(ship->spool, progress.acked);
                ship->dirty = 1;
            }
            if (progress.refused > 0) {
                pthread_mutex_lock(&ship->lock);
                ship->stats.refused += progress.refused;
                pthread_mutex_unlock(&ship->lock);
                report_loss(ship, "%s: the receiver refused records: %s", ship->name, progress.why);
            }
            if (state < 0)
                link_failed(ship, error);
            else if (state == 1 && ship->connected == 0)
                link_up(ship);
        }
    }
    /* Stopping: nothing waits. What is not delivered stays spooled for the next run. */
    take_queue(ship);
    if (ship->connected == 1)
        (void)send_notices(ship, error, sizeof error); /* the last status, say "stopped" */
    if (ship->connected >= 0)
        ship->link->ops->disconnect(ship->link, 1);
    ship->dirty = 1;
    sync_spool(ship, 1);
    publish_stats(ship);
    return NULL;
}

int ship_open(const struct ship_config *config, struct ship_link *link, struct ship **out,
              char *error, size_t capacity) {
    *out = NULL;
    struct ship *ship = calloc(1, sizeof *ship);
    if (ship == NULL) {
        link->ops->destroy(link);
        snprintf(error, capacity, "%s: out of memory", config->name);
        return -1;
    }
    ship->link = link;
    ship->wake_fd = -1;
    snprintf(ship->name, sizeof ship->name, "%s", config->name);
    snprintf(ship->app_name, sizeof ship->app_name, "%s",
             config->app_name != NULL ? config->app_name : "mbsec-gateway");
    ship->queue_bytes = config->queue_bytes ? config->queue_bytes : DEFAULT_QUEUE_BYTES;
    ship->connected = -1;
    ship->backoff_ms = BACKOFF_FIRST_MS;
    char reason[400];
    if (spool_open(config->spool, config->spool_bytes ? config->spool_bytes : DEFAULT_SPOOL_BYTES,
                   &ship->spool, reason, sizeof reason) != 0) {
        snprintf(error, capacity, "%s: %s", config->name, reason);
        ship_close(ship);
        return -1;
    }
    ship->wake_fd = eventfd(0, EFD_CLOEXEC | EFD_NONBLOCK);
    if (ship->wake_fd < 0 || pthread_mutex_init(&ship->lock, NULL) != 0 ||
        pthread_cond_init(&ship->drained, NULL) != 0) {
        snprintf(error, capacity, "%s: %s", config->name, strerror(errno));
        spool_close(ship->spool);
        if (ship->wake_fd >= 0)
            close(ship->wake_fd);
        link->ops->destroy(link);
        free(ship);
        return -1;
    }
    struct spool_stats spooled;
    spool_stats(ship->spool, &spooled);
    ship->stats.queued = spooled.queued;
    /* The thread takes no signals: the gateway's own thread handles them. */
    sigset_t all, previous;
    sigfillset(&all);
    pthread_sigmask(SIG_SETMASK, &all, &previous);
    int created = pthread_create(&ship->thread, NULL, run, ship);
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    if (created != 0) {
        snprintf(error, capacity, "%s: cannot start its thread", config->name);
        spool_close(ship->spool);
        close(ship->wake_fd);
        pthread_mutex_destroy(&ship->lock);
        pthread_cond_destroy(&ship->drained);
        link->ops->destroy(link);
        free(ship);
        return -1;
    }
    ship->started = 1;
    *out = ship;
    return 0;
}

void ship_close(struct ship *ship) {
    if (ship == NULL)
        return;
    if (ship->started) {
        pthread_mutex_lock(&ship->lock);
        ship->stopping = 1;
        pthread_mutex_unlock(&ship->lock);
        wake(ship);
        pthread_join(ship->thread, NULL);
        close(ship->wake_fd);
        pthread_mutex_destroy(&ship->lock);
        pthread_cond_destroy(&ship->drained);
    }
    spool_close(ship->spool);
    ship->link->ops->destroy(ship->link);
    for (int i = 0; i < NOTICES; i++)
        free(ship->notices[i].json);
    free(ship->queue.bytes);
    free(ship->taken.bytes);
    free(ship);
}
