/* SPDX-License-Identifier: MIT */
/*
 * The gateway core: requests deferred by the server handler, held at the gateway in one queue
 * per client identity, sent to a backend's pool of non-blocking clients as their connections
 * have room, one identity after the other, and answered through mb_server_reply() when the
 * device answers. Every request holds one slot of its backend's pool, allocated when the backend
 * starts, so the gateway's memory is bounded by its configuration, not by its clients; and a
 * backend removed by a reload lives on, unrouted, until its last slot comes back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mbsec/error.h"
#include "mbsec/gateway.h"
#include "mbsec/serial.h"
#include "mbsec/validate.h"

#define DEFAULT_CONNECTIONS 1
#define DEFAULT_TIMEOUT_MS 1000
#define DEFAULT_QUEUED 256
#define DEFAULT_IN_FLIGHT 16
#define UNSOLICITED_LOGGED 10 /* per backend; after that only every 1000th */
#define IDENTITY_BUCKETS 256  /* hash chains of a backend's active identities */

struct backend;

/* Who a request belongs to, for the fair share: its source and, over TLS, its role. Kept while
 * the identity holds requests at the backend, then put on the backend's free list. */
struct identity {
    uint8_t source_key[17];
    uint8_t has_role;
    char role[128];
    uint32_t hash;
    uint32_t held;                  /* waiting at the gateway or sent to the device */
    uint32_t wait_head, wait_tail;  /* its waiting requests, oldest first: slot index + 1 */
    struct identity *ring_previous; /* the identities with waiting requests, in turn; */
    struct identity *ring_next;     /* NULL when it has none */
    struct identity *next;          /* in its hash chain, or in the free list */
};

struct forwarded {
    struct backend *backend;
    struct identity *identity;
    uint64_t token;
    uint64_t connection_id;
    uint64_t started_us;
    uint64_t deadline_ms; /* on the loop's clock: arrival + the backend's timeout */
    uint16_t transaction_id;
    uint8_t front_unit;
    uint8_t device_unit;
    uint8_t function;
    uint8_t waiting; /* 1 while held at the gateway, not yet given to a connection */
    uint8_t length;
    uint32_t next_free;                      /* index + 1 */
    uint32_t wait_next;                      /* its identity's queue: index + 1 */
    uint32_t arrival_previous, arrival_next; /* the backend's waiting requests by arrival */
    uint8_t pdu[MB_PDU_MAX];
};

/* One connection of a backend's pool, and whether it is up (for logging transitions once). */
struct member {
    struct backend *backend;
    int up;
    int failed; /* it has been down at least once */
};

struct backend {
    struct mb_gateway_backend config;
    char name[64];
    struct mb_async **pool; /* Modbus/TCP: the pool's connections */
    struct mb_rtu_bus *bus; /* a serial line or RTU over TCP: the bus, in place of a pool */
    int is_bus;             /* 1 for those kinds; bus NULL then: closed (line handed over) */
    char serial_path[256];  /* the bus's line, owned here */
    struct member *members;
    uint32_t count;
    uint32_t next; /* where the next search for a connection starts */
    uint32_t in_flight_each;
    struct forwarded *slots;
    uint32_t slot_count;
    uint32_t free_list;
    uint32_t busy; /* slots taken */
    /* Requests waiting at the gateway: by arrival (all share one timeout, so this is also
     * deadline order, and the oldest is always at the head of its identity's queue), and the
     * identities that have some, served in turn from ring. */
    uint32_t arrival_head, arrival_tail;
    struct identity *ring;
    struct identity *identities[IDENTITY_BUCKETS];
    struct identity *spare_identities;
    struct identity *last_identity; /* the identity of connection last_connection_id, or NULL */
    uint64_t last_connection_id;
    uint32_t identity_count;
    uint64_t bus_noise; /* bus events logged or not, to thin them out */
    struct mb_timer wait_timer;
    int pumping;
    int pump_again;
    int retired;               /* removed by a reload: no new requests, closed when idle */
    struct backend *next_gone; /* in the gateway's list of retired backends */
    struct mb_gateway *gateway;
    struct mb_gateway_backend_info info; /* the counters */
};

struct mb_gateway {
    struct mb_loop *loop;
    struct mb_server *server;
    struct backend **backends;
    size_t backend_count;
    struct backend *retired;
    struct mb_task reap_task;
    uint8_t route_unit[256];
    struct backend *route_backend[256]; /* NULL: no route */
    mb_log_fn log;
    void *log_data;
    mb_gateway_completion_fn on_complete;
    void *complete_data;
    enum mb_gateway_over_share over_share;
    struct mb_gateway_stats stats;
    struct mb_extents everything; /* the whole Modbus address space, for exception 02 */
    int destroying;
};

/* ---- a backend's links: the pool's connections, or its one bus ---- */

static enum mb_async_state link_state(const struct backend *backend, uint32_t index) {
    if (backend->is_bus)
        return backend->bus != NULL ? mb_rtu_bus_state(backend->bus) : MB_ASYNC_CLOSED;
    return mb_async_state(backend->pool[index]);
}

static size_t link_outstanding(const struct backend *backend, uint32_t index) {
    if (backend->is_bus)
        return backend->bus != NULL ? mb_rtu_bus_outstanding(backend->bus) : 0;
    return mb_async_outstanding(backend->pool[index]);
}

static int link_present(const struct backend *backend, uint32_t index) {
    if (backend->is_bus)
        return backend->bus != NULL;
    return backend->pool != NULL && backend->pool[index] != NULL;
}

static uint64_t monotonic_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

/* Tells the application how a request ended. */
static void completed(struct mb_gateway *gateway, const struct forwarded *request,
                      enum mb_gateway_outcome outcome, uint8_t exception) {
    if (gateway->on_complete == NULL)
        return;
    uint64_t elapsed = monotonic_us() - request->started_us;
    struct mb_gateway_completion done = {
        .connection_id = request->connection_id,
        .transaction_id = request->transaction_id,
        .front_unit = request->front_unit,
        .device_unit = request->device_unit,
        .function = request->function,
        .exception = exception,
        .from_device = outcome == MB_GATEWAY_ANSWERED,
        .backend = request->backend != NULL ? request->backend->name : NULL,
        .latency_us = elapsed > UINT32_MAX ? UINT32_MAX : (uint32_t)elapsed,
        .outcome = outcome,
    };
    gateway->on_complete(gateway->complete_data, &done);
}

static void note(struct mb_gateway *gateway, enum mb_log_level level, const char *event,
                 const char *reason) {
    if (gateway->log == NULL)
        return;
    struct mb_log_event record = {.level = level, .event = event, .reason = reason};
    gateway->log(gateway->log_data, &record);
}

/* Answers a front request with an exception, through its token. */
static void answer_exception(struct mb_gateway *gateway, uint64_t token, uint8_t function,
                             uint8_t code) {
    uint8_t pdu[2];
    if (mb_exception_answer(function, code, pdu, sizeof pdu) == 2)
        mb_server_reply(gateway->server, token, pdu, 2);
}

/* ---- identities ---- */

static uint32_t identity_hash(const uint8_t *source_key, const char *role) {
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 17; i++)
        hash = (hash ^ source_key[i]) * 16777619u;
    for (const char *at = role; at != NULL && *at; at++)
        hash = (hash ^ (uint8_t)*at) * 16777619u;
    return hash;
}

/* The identity of a request at `backend`, made when it holds nothing there yet; NULL when out
 * of memory. */
static struct identity *identity_of(struct backend *backend, const struct mb_peer *peer,
                                    uint64_t connection_id) {
    /* Pipelined requests come in runs from one connection: its identity is kept at hand, so
     * that a run hashes the source and role once. Connection ids are never reused, and the
     * identity is forgotten here when it goes back to the spare list. */
    if (backend->last_identity != NULL && backend->last_connection_id == connection_id)
        return backend->last_identity;
    const char *role = peer->secure ? peer->role : NULL;
    uint32_t hash = identity_hash(peer->source_key, role);
    struct identity **bucket = &backend->identities[hash % IDENTITY_BUCKETS];
    for (struct identity *identity = *bucket; identity != NULL; identity = identity->next)
        if (identity->hash == hash && memcmp(identity->source_key, peer->source_key, 17) == 0 &&
            identity->has_role == (role != NULL) &&
            (role == NULL || strncmp(identity->role, role, sizeof identity->role) == 0)) {
            backend->last_identity = identity;
            backend->last_connection_id = connection_id;
            return identity;
        }
    struct identity *identity = backend->spare_identities;
    if (identity != NULL)
        backend->spare_identities = identity->next;
    else if ((identity = malloc(sizeof *identity)) == NULL)
        return NULL;
    memset(identity, 0, sizeof *identity);
    memcpy(identity->source_key, peer->source_key, 17);
    identity->has_role = role != NULL;
    if (role != NULL)
        snprintf(identity->role, sizeof identity->role, "%s", role);
    identity->hash = hash;
    identity->next = *bucket;
    *bucket = identity;
    backend->identity_count++;
    backend->last_identity = identity;
    backend->last_connection_id = connection_id;
    return identity;
}

/* An identity that holds nothing any more goes back to the spare list. */
static void identity_release(struct backend *backend, struct identity *identity) {
    if (identity->held > 0 || identity->ring_next != NULL)
        return;
    struct identity **link = &backend->identities[identity->hash % IDENTITY_BUCKETS];
    while (*link != identity)
        link = &(*link)->next;
    *link = identity->next;
    identity->next = backend->spare_identities;
    backend->spare_identities = identity;
    backend->identity_count--;
    if (backend->last_identity == identity)
        backend->last_identity = NULL;
}

static void ring_add(struct backend *backend, struct identity *identity) {
    if (backend->ring == NULL) {
        identity->ring_previous = identity->ring_next = identity;
        backend->ring = identity;
        return;
    }
    /* Last in turn: just before the one whose turn it is. */
    struct identity *first = backend->ring;
    identity->ring_next = first;
    identity->ring_previous = first->ring_previous;
    first->ring_previous->ring_next = identity;
    first->ring_previous = identity;
}

static void ring_remove(struct backend *backend, struct identity *identity) {
    if (identity->ring_next == identity) {
        backend->ring = NULL;
    } else {
        identity->ring_previous->ring_next = identity->ring_next;
        identity->ring_next->ring_previous = identity->ring_previous;
        if (backend->ring == identity)
            backend->ring = identity->ring_next;
    }
    identity->ring_next = identity->ring_previous = NULL;
}

/* ---- slots ---- */

static uint32_t slot_entry(const struct backend *backend, const struct forwarded *slot) {
    return (uint32_t)(slot - backend->slots) + 1;
}

static void reap(struct mb_loop *loop, struct mb_task *task);

static void slot_free(struct backend *backend, struct forwarded *slot) {
    struct identity *identity = slot->identity;
    slot->identity = NULL;
    if (identity != NULL) {
        identity->held--;
        identity_release(backend, identity);
    }
    slot->next_free = backend->free_list;
    backend->free_list = slot_entry(backend, slot);
    backend->busy--;
    if (backend->retired && backend->busy == 0 && !backend->gateway->destroying)
        mb_loop_post(backend->gateway->loop, &backend->gateway->reap_task, reap, backend->gateway);
}

/* Gives the slot back and answers its request with 0x0A (unavailable) or 0x0B (timeout). */
static void give_up(struct backend *backend, struct forwarded *slot, int timed_out) {
    struct mb_gateway *gateway = backend->gateway;
    struct forwarded request = *slot;
    uint8_t code = timed_out ? MB_EX_GATEWAY_TARGET_FAILED : MB_EX_GATEWAY_PATH_UNAVAILABLE;
    slot_free(backend, slot);
    if (timed_out) {
        gateway->stats.timeouts++;
        backend->info.timeouts++;
    } else {
        gateway->stats.unavailable++;
        backend->info.unavailable++;
    }
    completed(gateway, &request, timed_out ? MB_GATEWAY_TIMEOUT : MB_GATEWAY_UNAVAILABLE, code);
    answer_exception(gateway, request.token, request.function, code);
}

/* Takes the oldest waiting request of the identity whose turn it is, and passes the turn on. */
static struct forwarded *take_next_waiting(struct backend *backend) {
    struct identity *identity = backend->ring;
    if (identity == NULL)
        return NULL;
    struct forwarded *slot = &backend->slots[identity->wait_head - 1];
    identity->wait_head = slot->wait_next;
    if (identity->wait_head == 0) {
        identity->wait_tail = 0;
        ring_remove(backend, identity);
    } else {
        backend->ring = identity->ring_next;
    }
    /* Out of the arrival list. */
    if (slot->arrival_previous != 0)
        backend->slots[slot->arrival_previous - 1].arrival_next = slot->arrival_next;
    else
        backend->arrival_head = slot->arrival_next;
    if (slot->arrival_next != 0)
        backend->slots[slot->arrival_next - 1].arrival_previous = slot->arrival_previous;
    else
        backend->arrival_tail = slot->arrival_previous;
    slot->waiting = 0;
    return slot;
}

/* Takes the oldest waiting request of all: the head of its identity's queue. */
static struct forwarded *take_oldest_waiting(struct backend *backend) {
    if (backend->arrival_head == 0)
        return NULL;
    struct forwarded *oldest = &backend->slots[backend->arrival_head - 1];
    /* Make it the identity's turn, so take_next_waiting() takes exactly it. */
    backend->ring = oldest->identity;
    return take_next_waiting(backend);
}

/* ---- backends ---- */

/* 1 when another backend, running or retired, uses the same wrap_data (a reload that changed
 * a backend's timeout but not its TLS context): it is released only with the last one. */
static int wrap_shared(const struct mb_gateway *gateway, const struct backend *backend) {
    for (size_t i = 0; i < gateway->backend_count; i++)
        if (gateway->backends[i] != NULL && gateway->backends[i] != backend &&
            gateway->backends[i]->config.wrap_data == backend->config.wrap_data)
            return 1;
    for (const struct backend *gone = gateway->retired; gone != NULL; gone = gone->next_gone)
        if (gone != backend && gone->config.wrap_data == backend->config.wrap_data)
            return 1;
    return 0;
}

/* Closes a backend that is in no list of the gateway any more. */
static void backend_free(struct backend *backend) {
    struct mb_gateway *gateway = backend->gateway;
    if (gateway != NULL && backend->slots != NULL) {
        mb_timer_stop(gateway->loop, &backend->wait_timer);
        /* Requests still waiting at the gateway get what those sent to the device get. */
        struct forwarded *slot;
        while ((slot = take_oldest_waiting(backend)) != NULL)
            give_up(backend, slot, 1);
    }
    for (uint32_t c = 0; backend->pool != NULL && c < backend->count; c++)
        mb_async_destroy(backend->pool[c]); /* outstanding requests: 0x0B to their clients */
    mb_rtu_bus_destroy(backend->bus);
    if (backend->config.wrap_release != NULL && backend->config.wrap_data != NULL &&
        !wrap_shared(backend->gateway, backend))
        backend->config.wrap_release(backend->config.wrap_data);
    for (size_t i = 0; i < IDENTITY_BUCKETS; i++)
        while (backend->identities[i] != NULL) {
            struct identity *identity = backend->identities[i];
            backend->identities[i] = identity->next;
            free(identity);
        }
    while (backend->spare_identities != NULL) {
        struct identity *identity = backend->spare_identities;
        backend->spare_identities = identity->next;
        free(identity);
    }
    free(backend->pool);
    free(backend->members);
    free(backend->slots);
    free(backend);
}

/* Closes the retired backends that have nothing outstanding any more. Runs as a loop task:
 * never inside a client's own callback. */
static void reap(struct mb_loop *loop, struct mb_task *task) {
    (void)loop;
    struct mb_gateway *gateway = task->data;
    struct backend **link = &gateway->retired;
    while (*link != NULL) {
        struct backend *backend = *link;
        if (backend->busy > 0) {
            link = &backend->next_gone;
            continue;
        }
        *link = backend->next_gone;
        char reason[160];
        snprintf(reason, sizeof reason, "backend %s: removed by the reload; closed", backend->name);
        note(gateway, MB_LOG_INFO, "backend_removed", reason);
        backend_free(backend);
    }
}

static void pump(struct backend *backend);

static void on_answer(void *data, const struct mb_async_result *result) {
    struct forwarded *slot = data;
    struct backend *backend = slot->backend;
    struct mb_gateway *gateway = backend->gateway;
    struct forwarded request = *slot;
    slot_free(backend, slot);

    if (result->status == 0 && result->response == NULL) {
        /* A broadcast: written to the bus, answered by nobody; the front client gets nothing
         * either, as on a serial line. */
        gateway->stats.answered++;
        backend->info.answered++;
        completed(gateway, &request, MB_GATEWAY_BROADCAST, 0);
        mb_server_reply(gateway->server, request.token, NULL, 0);
    } else if (result->status == 0) {
        gateway->stats.answered++;
        backend->info.answered++;
        /* The front client may have gone meanwhile: its answer is then dropped (MB_ECLOSED). */
        completed(gateway, &request, MB_GATEWAY_ANSWERED, result->response->exception);
        mb_server_reply(gateway->server, request.token, result->response_pdu,
                        result->response_length);
    } else if (result->status == MB_EBACKOFF) {
        gateway->stats.timeouts++;
        backend->info.timeouts++;
        completed(gateway, &request, MB_GATEWAY_SKIPPED, MB_EX_GATEWAY_TARGET_FAILED);
        answer_exception(gateway, request.token, request.function, MB_EX_GATEWAY_TARGET_FAILED);
    } else if (result->status == MB_ECONNECT) {
        gateway->stats.unavailable++;
        backend->info.unavailable++;
        completed(gateway, &request, MB_GATEWAY_UNAVAILABLE, MB_EX_GATEWAY_PATH_UNAVAILABLE);
        answer_exception(gateway, request.token, request.function, MB_EX_GATEWAY_PATH_UNAVAILABLE);
    } else {
        enum mb_gateway_outcome outcome = MB_GATEWAY_TIMEOUT;
        if (result->status != MB_ETIMEDOUT && result->status != MB_ECLOSED &&
            result->status != MB_ECANCELED) {
            /* The device answered, but not this request: never passed on. */
            outcome = MB_GATEWAY_MISMATCH;
            gateway->stats.mismatched++;
            backend->info.mismatched++;
            char reason[320];
            snprintf(reason, sizeof reason, "backend %s: %s (dropped; the client gets 0x0B)",
                     backend->name, result->detail);
            note(gateway, MB_LOG_WARNING, "backend_mismatch", reason);
        } else {
            gateway->stats.timeouts++;
            backend->info.timeouts++;
        }
        completed(gateway, &request, outcome, MB_EX_GATEWAY_TARGET_FAILED);
        answer_exception(gateway, request.token, request.function, MB_EX_GATEWAY_TARGET_FAILED);
    }
    /* Its place on the connection is free: the next identity's request may go. */
    pump(backend);
}

static uint32_t connections_up(const struct backend *backend) {
    uint32_t up = 0;
    for (uint32_t i = 0; i < backend->count; i++)
        if (link_present(backend, i) && link_state(backend, i) == MB_ASYNC_CONNECTED)
            up++;
    return up;
}

static void on_backend_state(void *data, enum mb_async_state state, int error, const char *detail) {
    struct member *member = data;
    struct backend *backend = member->backend;
    char reason[320];
    if (state == MB_ASYNC_CONNECTED) {
        member->up = 1;
        snprintf(reason, sizeof reason, "backend %s: connected (%u of %u up)", backend->name,
                 connections_up(backend), backend->count);
        note(backend->gateway, MB_LOG_INFO, "backend_up", reason);
        pump(backend);
    } else if (state == MB_ASYNC_DOWN || state == MB_ASYNC_CLOSED) {
        if (state == MB_ASYNC_DOWN)
            backend->info.reconnects++;
        member->failed = 1;
        snprintf(reason, sizeof reason, "backend %s: %s (%s; %u of %u up)", backend->name,
                 detail != NULL && detail[0] ? detail : mb_strerror(error),
                 state == MB_ASYNC_DOWN ? "reconnecting with backoff" : "closed",
                 connections_up(backend), backend->count);
        /* Losing a connection is news once; each failed retry after it is only detail. */
        note(backend->gateway, member->up ? MB_LOG_WARNING : MB_LOG_DEBUG, "backend_down", reason);
        member->up = 0;
        /* With no usable connection left, what waits at the gateway is answered 0A now. */
        pump(backend);
    }
}

/* A frame from the device that answers nothing outstanding: a late answer after its timeout,
 * a duplicate, or something the device sent unasked. It was discarded; say so, but do not let
 * a chattering device flood the log. */
static void on_unmatched(void *data, uint16_t transaction_id, uint8_t unit_id) {
    struct member *member = data;
    struct backend *backend = member->backend;
    backend->gateway->stats.unsolicited++;
    uint64_t count = ++backend->info.unsolicited;
    if (count > UNSOLICITED_LOGGED && count % 1000 != 0)
        return;
    char reason[240];
    snprintf(reason, sizeof reason,
             "backend %s: a frame (transaction %u, unit %u) that answers nothing outstanding "
             "(late, duplicate or unsolicited): discarded (%llu so far)",
             backend->name, transaction_id, unit_id, (unsigned long long)count);
    note(backend->gateway, MB_LOG_WARNING, "backend_unsolicited", reason);
}

/* Whether a connection of the pool can take requests at all: one that is up, or one making its
 * first connection (a backend that just started: requests wait for it within their deadline).
 * A connection that is down, or retrying after a failure, takes nothing. */
static int usable(const struct backend *backend, uint32_t index) {
    enum mb_async_state state = link_state(backend, index);
    return state == MB_ASYNC_CONNECTED ||
           (state == MB_ASYNC_CONNECTING && !backend->members[index].failed);
}

/* The connection the next request goes to: a usable one with room below max_in_flight, the
 * one with the fewest outstanding among those that are up (a connecting one only when none is
 * up); -1 when none has room. *any_usable says whether a usable one exists at all. */
static int pick(struct backend *backend, int *any_usable) {
    int best = -1, connecting = -1;
    size_t best_outstanding = 0;
    *any_usable = 0;
    for (uint32_t i = 0; i < backend->count; i++) {
        uint32_t index = (backend->next + i) % backend->count;
        if (!usable(backend, index))
            continue;
        *any_usable = 1;
        size_t outstanding = link_outstanding(backend, index);
        if (outstanding >= backend->in_flight_each)
            continue;
        if (link_state(backend, index) != MB_ASYNC_CONNECTED) {
            if (connecting < 0)
                connecting = (int)index;
            continue;
        }
        if (best < 0 || outstanding < best_outstanding) {
            best = (int)index;
            best_outstanding = outstanding;
        }
    }
    backend->next = (backend->next + 1) % backend->count;
    return best >= 0 ? best : connecting;
}

/* Sends one request (no longer waiting) to `client`; answers it at once when that fails. */
static void send_to(struct backend *backend, int link, struct forwarded *slot) {
    struct mb_gateway *gateway = backend->gateway;
    uint64_t now = mb_loop_now(gateway->loop);
    if (slot->deadline_ms <= now) {
        give_up(backend, slot, 1);
        return;
    }
    uint64_t left = slot->deadline_ms - now;
    uint32_t timeout = left > UINT32_MAX ? UINT32_MAX : (uint32_t)left;
    int rc = backend->is_bus && backend->bus == NULL ? MB_ECLOSED
             : backend->is_bus ? mb_rtu_bus_submit(backend->bus, slot->device_unit, slot->pdu,
                                                   slot->length, timeout, on_answer, slot)
                               : mb_async_submit(backend->pool[link], slot->device_unit, slot->pdu,
                                                 slot->length, timeout, on_answer, slot);
    if (rc != 0) {
        give_up(backend, slot, 0);
        return;
    }
    gateway->stats.forwarded++;
    backend->info.forwarded++;
}

/*
 * Moves waiting requests to connections with room, one identity after the other. With no usable
 * connection left (the device is down), everything waiting is answered 0x0A at once. Answers
 * and state changes call it from inside the clients' callbacks, which may end up here again:
 * the inner call only asks the outer one to go round once more.
 */
static void pump(struct backend *backend) {
    struct mb_gateway *gateway = backend->gateway;
    if (gateway->destroying)
        return;
    if (backend->pumping) {
        backend->pump_again = 1;
        return;
    }
    backend->pumping = 1;
    do {
        backend->pump_again = 0;
        while (backend->ring != NULL) {
            int any_usable;
            int link = pick(backend, &any_usable);
            if (link >= 0) {
                send_to(backend, link, take_next_waiting(backend));
                continue;
            }
            if (any_usable)
                break;
            give_up(backend, take_oldest_waiting(backend), 0);
        }
    } while (backend->pump_again);
    backend->pumping = 0;
    if (backend->arrival_head == 0)
        mb_timer_stop(gateway->loop, &backend->wait_timer);
}

/* Requests that waited at the gateway past their deadline: 0x0B, oldest first. */
static void on_wait_timer(struct mb_loop *loop, struct mb_timer *timer) {
    struct backend *backend = timer->data;
    uint64_t now = mb_loop_now(loop);
    while (backend->arrival_head != 0 &&
           backend->slots[backend->arrival_head - 1].deadline_ms <= now)
        give_up(backend, take_oldest_waiting(backend), 1);
    if (backend->arrival_head != 0 && !mb_timer_active(timer))
        mb_timer_start(loop, timer, backend->slots[backend->arrival_head - 1].deadline_ms - now,
                       on_wait_timer, backend);
}

/* Queues a request (in `slot`) behind its identity's others. */
static void enqueue(struct backend *backend, struct forwarded *slot) {
    struct identity *identity = slot->identity;
    uint32_t entry = slot_entry(backend, slot);
    slot->waiting = 1;
    slot->wait_next = 0;
    if (identity->wait_tail != 0)
        backend->slots[identity->wait_tail - 1].wait_next = entry;
    else
        identity->wait_head = entry;
    identity->wait_tail = entry;
    if (identity->ring_next == NULL)
        ring_add(backend, identity);
    slot->arrival_next = 0;
    slot->arrival_previous = backend->arrival_tail;
    if (backend->arrival_tail != 0)
        backend->slots[backend->arrival_tail - 1].arrival_next = entry;
    else
        backend->arrival_head = entry;
    backend->arrival_tail = entry;
    if (!mb_timer_active(&backend->wait_timer))
        mb_timer_start(backend->gateway->loop, &backend->wait_timer,
                       slot->deadline_ms - mb_loop_now(backend->gateway->loop), on_wait_timer,
                       backend);
}

/* Whether the request reaches past the end of the Modbus address space (address + quantity
 * over 65536, FC 20/21 records past 9999), which a device might wrap around to address 0. */
static int past_the_address_space(const struct mb_gateway *gateway,
                                  const struct mb_request *request) {
    switch (request->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD:
        return mb_request_validate(request, &gateway->everything) == MB_EX_ILLEGAL_DATA_ADDRESS;
    default:
        return 0;
    }
}

/* A request the gateway answers itself; returns what the handler returns. */
static int refuse(struct mb_gateway *gateway, const struct forwarded *request,
                  enum mb_gateway_outcome outcome, uint8_t exception, uint8_t *response) {
    completed(gateway, request, outcome, exception);
    if (exception == 0)
        return gateway->over_share == MB_GATEWAY_SHARE_CLOSE ? MB_SERVER_CLOSE : 0;
    return mb_exception_answer(request->function, exception, response, MB_PDU_MAX);
}

int mb_gateway_handle(void *data, const struct mb_server_request *call, uint8_t *response) {
    struct mb_gateway *gateway = data;
    uint8_t function = call->pdu[0];
    if (call->request == NULL) {
        /* Nothing malformed goes on to a device. The answer is for whatever function code
         * came, 0 and codes with 0x80 set included (mb_exception_answer). */
        uint8_t code = mb_error_exception(call->decode_error);
        return mb_exception_answer(function, code ? code : MB_EX_ILLEGAL_DATA_VALUE, response,
                                   MB_PDU_MAX);
    }
    struct backend *backend = gateway->route_backend[call->unit_id];
    struct forwarded request = {
        .backend = backend,
        .token = call->token,
        .connection_id = call->connection_id,
        .started_us = gateway->on_complete != NULL ? monotonic_us() : 0,
        .transaction_id = call->transaction_id,
        .front_unit = call->unit_id,
        .device_unit = gateway->route_unit[call->unit_id],
        .function = function,
        .length = (uint8_t)call->pdu_length,
    };
    if (past_the_address_space(gateway, call->request)) {
        gateway->stats.rejected++;
        return refuse(gateway, &request, MB_GATEWAY_REJECTED, MB_EX_ILLEGAL_DATA_ADDRESS, response);
    }
    if (backend != NULL && backend->is_bus && request.device_unit == 0 &&
        !mb_function_is_broadcastable(function)) {
        /* The broadcast address of a bus takes writes only: nobody would answer a read. */
        gateway->stats.rejected++;
        return refuse(gateway, &request, MB_GATEWAY_REJECTED, MB_EX_ILLEGAL_FUNCTION, response);
    }
    int any_usable = 0;
    for (uint32_t i = 0; backend != NULL && i < backend->count && !any_usable; i++)
        any_usable = usable(backend, i);
    struct identity *identity =
        any_usable ? identity_of(backend, call->peer, call->connection_id) : NULL;
    if (identity != NULL && identity->held >= backend->config.share) {
        /* Its excess is refused before it can take the slots everybody else needs. */
        gateway->stats.over_share++;
        backend->info.over_share++;
        uint8_t code = gateway->over_share == MB_GATEWAY_SHARE_BUSY ? MB_EX_SERVER_DEVICE_BUSY : 0;
        return refuse(gateway, &request, MB_GATEWAY_OVER_SHARE, code, response);
    }
    if (identity == NULL || backend->free_list == 0) {
        if (identity != NULL)
            identity_release(backend, identity);
        gateway->stats.unavailable++;
        if (backend != NULL)
            backend->info.unavailable++;
        return refuse(gateway, &request, MB_GATEWAY_UNAVAILABLE, MB_EX_GATEWAY_PATH_UNAVAILABLE,
                      response);
    }
    struct forwarded *slot = &backend->slots[backend->free_list - 1];
    backend->free_list = slot->next_free;
    backend->busy++;
    identity->held++;
    *slot = request;
    slot->identity = identity;
    slot->deadline_ms = mb_loop_now(gateway->loop) + backend->config.timeout_ms;
    memcpy(slot->pdu, call->pdu, call->pdu_length);
    if (backend->ring == NULL) {
        /* Nobody waits: straight to a connection with room, if there is one. */
        int link = pick(backend, &any_usable);
        if (link >= 0) {
            send_to(backend, link, slot);
            return MB_SERVER_DEFER;
        }
    }
    enqueue(backend, slot);
    pump(backend);
    return MB_SERVER_DEFER;
}

static uint32_t pool_size(const struct mb_gateway_backend *given) {
    if (given->link != MB_GATEWAY_LINK_TCP)
        return 1;
    return given->connections ? given->connections : DEFAULT_CONNECTIONS;
}

static uint32_t in_flight_of(const struct mb_gateway_backend *given) {
    if (given->link != MB_GATEWAY_LINK_TCP)
        return 1; /* RTU: one transaction on the wire */
    return given->max_in_flight ? given->max_in_flight : DEFAULT_IN_FLIGHT;
}

/* Requests a backend can hold at once: its slots. */
static uint64_t capacity_of(const struct mb_gateway_backend *given) {
    return (uint64_t)pool_size(given) *
           (in_flight_of(given) + (given->max_queued ? given->max_queued : DEFAULT_QUEUED));
}

/* What one identity may hold: as given, else a quarter of the backend, at least 1. */
static uint32_t share_of(const struct mb_gateway_backend *given) {
    uint64_t capacity = capacity_of(given);
    if (given->share != 0)
        return given->share < capacity ? given->share : (uint32_t)capacity;
    return capacity / 4 > 0 ? (uint32_t)(capacity / 4) : 1;
}

/* What an RTU bus reports, for the log: skipped and recovered units always; damaged, late,
 * stray frames and wrong units as warnings, but not so many that a noisy line floods it. */
static void on_bus_event(void *data, enum mb_rtu_bus_event what, uint8_t unit, const char *detail) {
    (void)unit;
    struct member *member = data;
    struct backend *backend = member->backend;
    static const char *const names[] = {
        [MB_RTU_UNIT_SKIPPED] = "bus_unit_skipped", [MB_RTU_UNIT_RECOVERED] = "bus_unit_recovered",
        [MB_RTU_LATE_ANSWER] = "bus_late_answer",   [MB_RTU_DAMAGED] = "bus_damaged_frame",
        [MB_RTU_WRONG_UNIT] = "bus_wrong_unit",     [MB_RTU_UNSOLICITED] = "bus_unsolicited",
    };
    if ((unsigned)what >= sizeof names / sizeof names[0] || names[what] == NULL)
        return;
    if (what != MB_RTU_UNIT_SKIPPED && what != MB_RTU_UNIT_RECOVERED) {
        uint64_t count = ++backend->bus_noise;
        if (count > UNSOLICITED_LOGGED && count % 1000 != 0)
            return;
    }
    char reason[400];
    snprintf(reason, sizeof reason, "backend %s: %s", backend->name, detail);
    note(backend->gateway, what == MB_RTU_UNIT_RECOVERED ? MB_LOG_INFO : MB_LOG_WARNING,
         names[what], reason);
}

/* Starts the RTU bus of a serial or RTU-over-TCP backend. */
static int bus_start(struct mb_gateway *gateway, struct backend *backend,
                     const struct mb_gateway_backend *given) {
    if (given->link == MB_GATEWAY_LINK_RTU_OVER_TCP && given->wrap != NULL)
        return MB_EINVAL;
    struct mb_rtu_bus_config config = given->rtu;
    if (given->link == MB_GATEWAY_LINK_SERIAL) {
        if (given->rtu.path == NULL || given->rtu.path[0] == '\0' ||
            strlen(given->rtu.path) >= sizeof backend->serial_path)
            return MB_EINVAL;
        snprintf(backend->serial_path, sizeof backend->serial_path, "%s", given->rtu.path);
        config.path = backend->serial_path;
        config.address = NULL;
        config.address_length = 0;
    } else {
        config.path = NULL;
        config.address = (const struct sockaddr *)&backend->config.address;
        config.address_length = given->address_length;
    }
    /* The gateway holds the waiting requests; the bus only the one it works on. */
    config.timeout_ms = backend->config.timeout_ms;
    config.max_queued = 1;
    config.reopen_min_ms = given->reconnect_min_ms;
    config.reopen_max_ms = given->reconnect_max_ms;
    backend->members[0].backend = backend;
    backend->members[0].up = 1;
    config.on_state = on_backend_state;
    config.state_data = &backend->members[0];
    config.on_event = on_bus_event;
    backend->config.rtu.path = given->link == MB_GATEWAY_LINK_SERIAL ? backend->serial_path : NULL;
    backend->is_bus = 1;
    return mb_rtu_bus_create(gateway->loop, &config, &backend->bus);
}

/* Creates a backend and starts connecting its pool. On failure nothing is left, and
 * wrap_data is not released (it is still the caller's). */
static int backend_start(struct mb_gateway *gateway, const struct mb_gateway_backend *given,
                         struct backend **started) {
    if (pool_size(given) > MB_GATEWAY_MAX_CONNECTIONS || capacity_of(given) > MB_GATEWAY_MAX_SLOTS)
        return MB_EINVAL;
    struct backend *backend = calloc(1, sizeof *backend);
    if (backend == NULL)
        return MB_ENOMEM;
    backend->config = *given;
    backend->gateway = gateway;
    snprintf(backend->name, sizeof backend->name, "%s", given->name ? given->name : "backend");
    backend->config.name = backend->name;
    backend->count = pool_size(given);
    backend->in_flight_each = in_flight_of(given);
    if (backend->config.timeout_ms == 0)
        backend->config.timeout_ms = DEFAULT_TIMEOUT_MS;
    backend->config.share = share_of(given);
    backend->slot_count = (uint32_t)capacity_of(given);
    backend->pool = calloc(backend->count, sizeof *backend->pool);
    backend->members = calloc(backend->count, sizeof *backend->members);
    backend->slots = calloc(backend->slot_count, sizeof *backend->slots);
    int rc = backend->pool && backend->members && backend->slots ? 0 : MB_ENOMEM;
    for (uint32_t i = backend->slot_count; rc == 0 && i > 0; i--) {
        backend->slots[i - 1].next_free = backend->free_list;
        backend->free_list = i;
    }
    /* The gateway gives each connection at most max_in_flight requests (the rest wait at the
     * gateway, by identity), so its own queue only holds them while it connects. */
    struct mb_async_config config = {
        .max_in_flight = backend->in_flight_each,
        .max_queued = backend->in_flight_each,
        .timeout_ms = backend->config.timeout_ms,
        .reconnect = 1,
        .reconnect_min_ms = given->reconnect_min_ms,
        .reconnect_max_ms = given->reconnect_max_ms,
        .wrap = given->wrap,
        .wrap_data = given->wrap_data,
        .on_state = on_backend_state,
        .on_unmatched = on_unmatched,
    };
    for (uint32_t i = 0; rc == 0 && given->link == MB_GATEWAY_LINK_TCP && i < backend->count; i++) {
        backend->members[i].backend = backend;
        /* A backend that was never reached is worth one warning too. */
        backend->members[i].up = 1;
        config.state_data = &backend->members[i];
        rc = mb_async_create(gateway->loop, &config, (const struct sockaddr *)&given->address,
                             given->address_length, &backend->pool[i]);
    }
    if (rc == 0 && given->link != MB_GATEWAY_LINK_TCP)
        rc = bus_start(gateway, backend, given);
    if (rc != 0) {
        backend->config.wrap_release = NULL;
        backend_free(backend);
        return rc;
    }
    backend->info.name = backend->name;
    backend->info.connections = backend->count;
    backend->info.capacity = backend->slot_count;
    backend->info.share = backend->config.share;
    *started = backend;
    return 0;
}

/* 1 when two RTU buses are set up alike. */
static int rtu_same(const struct mb_rtu_bus_config *a, const struct mb_rtu_bus_config *b) {
    const char *path_a = a->path ? a->path : "", *path_b = b->path ? b->path : "";
    return strcmp(path_a, path_b) == 0 && memcmp(&a->line, &b->line, sizeof a->line) == 0 &&
           a->answer_timeout_ms == b->answer_timeout_ms && a->open_pause_ms == b->open_pause_ms &&
           a->pause_ms == b->pause_ms && a->broadcast_pause_ms == b->broadcast_pause_ms &&
           a->silence_us == b->silence_us && a->echo == b->echo && a->retries == b->retries &&
           a->unit_failures == b->unit_failures && a->unit_backoff_ms == b->unit_backoff_ms;
}

/* 1 when a running backend is what `given` describes, so that a reload keeps it. */
static int backend_is(const struct backend *backend, const struct mb_gateway_backend *given) {
    const struct mb_gateway_backend *running = &backend->config;
    uint32_t timeout = given->timeout_ms ? given->timeout_ms : DEFAULT_TIMEOUT_MS;
    return strcmp(backend->name, given->name ? given->name : "backend") == 0 &&
           running->address_length == given->address_length &&
           memcmp(&running->address, &given->address, given->address_length) == 0 &&
           running->connections == given->connections && running->timeout_ms == timeout &&
           running->max_queued == given->max_queued &&
           running->max_in_flight == given->max_in_flight && running->share == share_of(given) &&
           running->reconnect_min_ms == given->reconnect_min_ms &&
           running->reconnect_max_ms == given->reconnect_max_ms && running->wrap == given->wrap &&
           running->wrap_data == given->wrap_data && running->link == given->link &&
           (given->link == MB_GATEWAY_LINK_TCP || rtu_same(&running->rtu, &given->rtu));
}

static int check_config(const struct mb_gateway_config *config) {
    if (config == NULL || (config->backend_count > 0 && config->backends == NULL) ||
        (config->route_count > 0 && config->routes == NULL) || config->backend_count > 65535 ||
        (unsigned)config->over_share > MB_GATEWAY_SHARE_CLOSE)
        return MB_EINVAL;
    int seen[256] = {0};
    for (size_t i = 0; i < config->route_count; i++) {
        const struct mb_gateway_route *route = &config->routes[i];
        if (route->backend >= config->backend_count || seen[route->front_unit]++)
            return MB_EINVAL;
    }
    for (size_t i = 0; i < config->backend_count; i++)
        if (pool_size(&config->backends[i]) > MB_GATEWAY_MAX_CONNECTIONS ||
            capacity_of(&config->backends[i]) > MB_GATEWAY_MAX_SLOTS)
            return MB_EINVAL;
    return 0;
}

/* Puts a backend out of service: routed no more, closed once its last request is answered. */
static void retire(struct mb_gateway *gateway, struct backend *backend) {
    backend->retired = 1;
    backend->next_gone = gateway->retired;
    gateway->retired = backend;
    char reason[200];
    snprintf(reason, sizeof reason,
             "backend %s: not in the new configuration; takes no more requests, closes when "
             "its %u outstanding are answered",
             backend->name, backend->busy);
    note(gateway, MB_LOG_INFO, "backend_retired", reason);
    if (backend->busy == 0)
        mb_loop_post(gateway->loop, &gateway->reap_task, reap, gateway);
}

/* 1 when `given` is an RTU bus on the line `backend`'s bus uses (the same tty path, or the
 * same converter address). */
static int same_line(const struct backend *backend, const struct mb_gateway_backend *given) {
    if (!backend->is_bus || given->link != backend->config.link)
        return 0;
    if (given->link == MB_GATEWAY_LINK_SERIAL)
        return given->rtu.path != NULL && strcmp(backend->serial_path, given->rtu.path) == 0;
    return given->address_length == backend->config.address_length &&
           memcmp(&given->address, &backend->config.address, given->address_length) == 0;
}

/* Closes the bus of a backend the new configuration replaces on the same line, before the new
 * bus opens it: a tty is locked for one opener, and many converters take one connection.
 * What it had in flight is answered 0B, what waited for it 0A. */
static void hand_over_line(struct mb_gateway *gateway, struct backend *backend) {
    struct mb_rtu_bus *bus = backend->bus;
    backend->bus = NULL;
    mb_rtu_bus_destroy(bus);
    pump(backend);
    char reason[200];
    snprintf(reason, sizeof reason, "backend %s: its line goes to the new configuration",
             backend->name);
    note(gateway, MB_LOG_INFO, "backend_line_handed_over", reason);
}

static void hand_over_lines(struct mb_gateway *gateway, const struct mb_gateway_config *config) {
    for (size_t k = 0; k < gateway->backend_count; k++) {
        struct backend *old = gateway->backends[k];
        if (old == NULL || old->bus == NULL)
            continue;
        int stays = 0, wanted = 0;
        for (size_t i = 0; i < config->backend_count; i++) {
            if (backend_is(old, &config->backends[i]))
                stays = 1;
            else if (same_line(old, &config->backends[i]))
                wanted = 1;
        }
        if (wanted && !stays)
            hand_over_line(gateway, old);
    }
    for (struct backend *gone = gateway->retired; gone != NULL; gone = gone->next_gone)
        for (size_t i = 0; gone->bus != NULL && i < config->backend_count; i++)
            if (same_line(gone, &config->backends[i]))
                hand_over_line(gateway, gone);
}

static int apply(struct mb_gateway *gateway, const struct mb_gateway_config *config) {
    int rc = check_config(config);
    if (rc != 0)
        return rc;
    hand_over_lines(gateway, config);
    size_t count = config->backend_count;
    struct backend **next = calloc(count ? count : 1, sizeof *next);
    int *kept = calloc(gateway->backend_count ? gateway->backend_count : 1, sizeof *kept);
    int *fresh = calloc(count ? count : 1, sizeof *fresh);
    if (next == NULL || kept == NULL || fresh == NULL)
        rc = MB_ENOMEM;
    for (size_t i = 0; rc == 0 && i < count; i++) {
        for (size_t k = 0; k < gateway->backend_count && next[i] == NULL; k++)
            if (!kept[k] && backend_is(gateway->backends[k], &config->backends[i])) {
                kept[k] = 1;
                next[i] = gateway->backends[k];
            }
        if (next[i] == NULL) {
            rc = backend_start(gateway, &config->backends[i], &next[i]);
            fresh[i] = rc == 0;
        }
    }
    if (rc != 0) {
        for (size_t i = 0; i < count; i++)
            if (fresh[i]) {
                next[i]->config.wrap_release = NULL; /* still the caller's */
                backend_free(next[i]);
            }
        free(next);
        free(kept);
        free(fresh);
        return rc;
    }
    for (size_t k = 0; k < gateway->backend_count; k++)
        if (!kept[k])
            retire(gateway, gateway->backends[k]);
    /* A kept backend takes the new release function (the caller's code may have changed it). */
    for (size_t i = 0; i < count; i++)
        next[i]->config.wrap_release = config->backends[i].wrap_release;
    free(gateway->backends);
    gateway->backends = next;
    gateway->backend_count = count;
    gateway->over_share = config->over_share;
    for (int unit = 0; unit < 256; unit++)
        gateway->route_backend[unit] = NULL;
    for (size_t i = 0; i < config->route_count; i++) {
        const struct mb_gateway_route *route = &config->routes[i];
        gateway->route_backend[route->front_unit] = next[route->backend];
        gateway->route_unit[route->front_unit] = route->device_unit;
    }
    free(kept);
    free(fresh);
    return 0;
}

int mb_gateway_reconfigure(struct mb_gateway *gateway, const struct mb_gateway_config *config) {
    if (gateway == NULL)
        return MB_EINVAL;
    int rc = apply(gateway, config);
    if (rc == 0)
        gateway->stats.reloads++;
    return rc;
}

int mb_gateway_create(struct mb_loop *loop, struct mb_server *server,
                      const struct mb_gateway_config *config, struct mb_gateway **gateway_out) {
    if (loop == NULL || server == NULL || gateway_out == NULL)
        return MB_EINVAL;
    struct mb_gateway *gateway = calloc(1, sizeof *gateway);
    if (gateway == NULL)
        return MB_ENOMEM;
    gateway->loop = loop;
    gateway->server = server;
    /* Every table over every address, every file and record the spec allows, every function:
     * mb_request_validate() then only says 02 for what is past the end. */
    const struct mb_table_extent whole = {.start = 0, .size = 65536};
    gateway->everything.coils = whole;
    gateway->everything.discrete_inputs = whole;
    gateway->everything.holding_registers = whole;
    gateway->everything.input_registers = whole;
    gateway->everything.files = 0xFFFF;
    gateway->everything.records_per_file = 10000;
    memset(gateway->everything.functions, 0xFF, sizeof gateway->everything.functions);
    int rc = config != NULL ? 0 : MB_EINVAL;
    if (rc == 0) {
        gateway->log = config->log;
        gateway->log_data = config->log_data;
        gateway->on_complete = config->on_complete;
        gateway->complete_data = config->complete_data;
        rc = apply(gateway, config);
    }
    if (rc != 0) {
        free(gateway->backends);
        free(gateway);
        return rc;
    }
    *gateway_out = gateway;
    return 0;
}

void mb_gateway_destroy(struct mb_gateway *gateway) {
    if (gateway == NULL)
        return;
    gateway->destroying = 1;
    mb_loop_cancel(gateway->loop, &gateway->reap_task);
    for (size_t i = 0; i < gateway->backend_count; i++) {
        struct backend *backend = gateway->backends[i];
        gateway->backends[i] = NULL;
        backend_free(backend);
    }
    while (gateway->retired != NULL) {
        struct backend *backend = gateway->retired;
        gateway->retired = backend->next_gone;
        backend_free(backend);
    }
    free(gateway->backends);
    free(gateway);
}

void mb_gateway_stats(const struct mb_gateway *gateway, struct mb_gateway_stats *stats) {
    *stats = gateway->stats;
}

size_t mb_gateway_backend_count(const struct mb_gateway *gateway) {
    return gateway != NULL ? gateway->backend_count : 0;
}

int mb_gateway_backend_info(const struct mb_gateway *gateway, size_t index,
                            struct mb_gateway_backend_info *info) {
    if (gateway == NULL || info == NULL || index >= gateway->backend_count)
        return MB_EINVAL;
    const struct backend *backend = gateway->backends[index];
    *info = backend->info;
    info->connections_up = connections_up(backend);
    info->outstanding = backend->busy;
    info->identities = backend->identity_count;
    info->writes = 0;
    info->is_bus = backend->is_bus;
    if (backend->bus != NULL) {
        mb_rtu_bus_stats(backend->bus, &info->bus);
        info->writes = info->bus.writes;
    }
    for (uint32_t c = 0; backend->pool != NULL && c < backend->count; c++) {
        struct mb_client_stats stats;
        if (backend->pool[c] == NULL)
            continue;
        mb_async_stats(backend->pool[c], &stats);
        info->writes += stats.writes;
    }
    return 0;
}
