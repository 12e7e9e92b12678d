/* SPDX-License-Identifier: MIT */
/*
 * The gateway core: requests deferred by the server handler, forwarded through a backend's
 * pool of non-blocking clients, answered through mb_server_reply() when the device answers.
 * Every forwarded request holds one slot of its backend's pool, allocated when the backend
 * starts, so the gateway's memory is bounded by its configuration, not by its clients; and a
 * backend removed by a reload lives on, unrouted, until its last slot comes back.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mbsec/error.h"
#include "mbsec/gateway.h"

#define DEFAULT_CONNECTIONS 1
#define MAX_CONNECTIONS 64
#define DEFAULT_TIMEOUT_MS 1000
#define DEFAULT_QUEUED 256
#define DEFAULT_IN_FLIGHT 16
#define MAX_SLOTS 1000000
#define UNSOLICITED_LOGGED 10 /* per backend; after that only every 1000th */

struct backend;

struct forwarded {
    struct backend *backend;
    uint64_t token;
    uint64_t connection_id;
    uint64_t started_us;
    uint16_t transaction_id;
    uint8_t front_unit;
    uint8_t device_unit;
    uint8_t function;
    uint32_t next_free; /* index + 1 */
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
    struct mb_async **pool;
    struct member *members;
    uint32_t count;
    uint32_t next; /* where the next search for a connection starts */
    struct forwarded *slots;
    uint32_t slot_count;
    uint32_t free_list;
    uint32_t busy;             /* slots taken */
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
    struct mb_gateway_stats stats;
    int destroying;
};

static uint64_t monotonic_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

/* Tells the application how a request ended. */
static void completed(struct mb_gateway *gateway, const struct forwarded *request,
                      uint8_t exception, int from_device) {
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
        .from_device = from_device,
        .backend = request->backend != NULL ? request->backend->name : NULL,
        .latency_us = elapsed > UINT32_MAX ? UINT32_MAX : (uint32_t)elapsed,
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
    if (mb_exception_encode(function & (uint8_t)~MB_EXCEPTION_BIT, code, pdu, sizeof pdu) == 2)
        mb_server_reply(gateway->server, token, pdu, 2);
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
    for (uint32_t c = 0; backend->pool != NULL && c < backend->count; c++)
        mb_async_destroy(backend->pool[c]); /* outstanding requests: 0x0B to their clients */
    if (backend->config.wrap_release != NULL && backend->config.wrap_data != NULL &&
        !wrap_shared(backend->gateway, backend))
        backend->config.wrap_release(backend->config.wrap_data);
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

static void slot_free(struct backend *backend, struct forwarded *slot) {
    slot->next_free = backend->free_list;
    backend->free_list = (uint32_t)(slot - backend->slots) + 1;
    backend->busy--;
    if (backend->retired && backend->busy == 0 && !backend->gateway->destroying)
        mb_loop_post(backend->gateway->loop, &backend->gateway->reap_task, reap, backend->gateway);
}

static void on_answer(void *data, const struct mb_async_result *result) {
    struct forwarded *slot = data;
    struct backend *backend = slot->backend;
    struct mb_gateway *gateway = backend->gateway;
    struct forwarded request = *slot;
    slot_free(backend, slot);

    if (result->status == 0) {
        gateway->stats.answered++;
        backend->info.answered++;
        /* The front client may have gone meanwhile: its answer is then dropped (MB_ECLOSED). */
        completed(gateway, &request, result->response->exception, 1);
        mb_server_reply(gateway->server, request.token, result->response_pdu,
                        result->response_length);
        return;
    }
    if (result->status == MB_ECONNECT) {
        gateway->stats.unavailable++;
        backend->info.unavailable++;
        completed(gateway, &request, MB_EX_GATEWAY_PATH_UNAVAILABLE, 0);
        answer_exception(gateway, request.token, request.function, MB_EX_GATEWAY_PATH_UNAVAILABLE);
        return;
    }
    if (result->status != MB_ETIMEDOUT && result->status != MB_ECLOSED &&
        result->status != MB_ECANCELED) {
        /* The device answered, but not this request: never passed on. */
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
    completed(gateway, &request, MB_EX_GATEWAY_TARGET_FAILED, 0);
    answer_exception(gateway, request.token, request.function, MB_EX_GATEWAY_TARGET_FAILED);
}

static uint32_t connections_up(const struct backend *backend) {
    uint32_t up = 0;
    for (uint32_t i = 0; i < backend->count; i++)
        if (backend->pool[i] != NULL && mb_async_state(backend->pool[i]) == MB_ASYNC_CONNECTED)
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

/* The connection of the pool to use: one that is up, with the fewest requests outstanding; or,
 * when none is up yet, one making its first connection (a backend that just started: the
 * request waits for it within its deadline). A connection that is down, or retrying after a
 * failure, gets nothing: its clients are answered 0x0A at once. */
static struct mb_async *pick(struct backend *backend) {
    struct mb_async *best = NULL, *connecting = NULL;
    size_t best_outstanding = 0;
    for (uint32_t i = 0; i < backend->count; i++) {
        struct mb_async *client = backend->pool[(backend->next + i) % backend->count];
        enum mb_async_state state = mb_async_state(client);
        uint32_t index = (backend->next + i) % backend->count;
        if (state == MB_ASYNC_CONNECTING && connecting == NULL && !backend->members[index].failed)
            connecting = client;
        if (state != MB_ASYNC_CONNECTED)
            continue;
        size_t outstanding = mb_async_outstanding(client);
        if (best == NULL || outstanding < best_outstanding) {
            best = client;
            best_outstanding = outstanding;
        }
    }
    backend->next = (backend->next + 1) % backend->count;
    return best != NULL ? best : connecting;
}

int mb_gateway_handle(void *data, const struct mb_server_request *call, uint8_t *response) {
    struct mb_gateway *gateway = data;
    uint8_t function = call->pdu[0];
    if (call->request == NULL) {
        /* Nothing malformed goes on to a device. The answer is written here, not encoded: it
         * answers whatever function code came, 0 and codes with 0x80 set included, which
         * mb_exception_encode() refuses (the server answers those the same way). */
        uint8_t code = mb_error_exception(call->decode_error);
        response[0] = function | MB_EXCEPTION_BIT;
        response[1] = code ? code : MB_EX_ILLEGAL_DATA_VALUE;
        return 2;
    }
    struct backend *backend = gateway->route_backend[call->unit_id];
    struct mb_async *client = backend != NULL ? pick(backend) : NULL;
    struct forwarded request = {
        .backend = backend,
        .token = call->token,
        .connection_id = call->connection_id,
        .started_us = gateway->on_complete != NULL ? monotonic_us() : 0,
        .transaction_id = call->transaction_id,
        .front_unit = call->unit_id,
        .device_unit = gateway->route_unit[call->unit_id],
        .function = function,
    };
    if (client == NULL || backend->free_list == 0) {
        gateway->stats.unavailable++;
        if (backend != NULL)
            backend->info.unavailable++;
        completed(gateway, &request, MB_EX_GATEWAY_PATH_UNAVAILABLE, 0);
        return mb_exception_encode(function, MB_EX_GATEWAY_PATH_UNAVAILABLE, response, MB_PDU_MAX);
    }
    struct forwarded *slot = &backend->slots[backend->free_list - 1];
    backend->free_list = slot->next_free;
    backend->busy++;
    *slot = request;
    int rc = mb_async_submit(client, request.device_unit, call->pdu, call->pdu_length,
                             backend->config.timeout_ms, on_answer, slot);
    if (rc != 0) {
        slot_free(backend, slot);
        gateway->stats.unavailable++;
        backend->info.unavailable++;
        completed(gateway, &request, MB_EX_GATEWAY_PATH_UNAVAILABLE, 0);
        return mb_exception_encode(function, MB_EX_GATEWAY_PATH_UNAVAILABLE, response, MB_PDU_MAX);
    }
    gateway->stats.forwarded++;
    backend->info.forwarded++;
    return MB_SERVER_DEFER;
}

static uint32_t pool_size(const struct mb_gateway_backend *given) {
    return given->connections ? given->connections : DEFAULT_CONNECTIONS;
}

/* Requests a backend can hold at once: its slots. */
static uint64_t capacity_of(const struct mb_gateway_backend *given) {
    return (uint64_t)pool_size(given) *
           ((given->max_in_flight ? given->max_in_flight : DEFAULT_IN_FLIGHT) +
            (given->max_queued ? given->max_queued : DEFAULT_QUEUED));
}

/* Creates a backend and starts connecting its pool. On failure nothing is left, and
 * wrap_data is not released (it is still the caller's). */
static int backend_start(struct mb_gateway *gateway, const struct mb_gateway_backend *given,
                         struct backend **started) {
    if (pool_size(given) > MAX_CONNECTIONS || capacity_of(given) > MAX_SLOTS)
        return MB_EINVAL;
    struct backend *backend = calloc(1, sizeof *backend);
    if (backend == NULL)
        return MB_ENOMEM;
    backend->config = *given;
    backend->gateway = gateway;
    snprintf(backend->name, sizeof backend->name, "%s", given->name ? given->name : "backend");
    backend->config.name = backend->name;
    backend->count = pool_size(given);
    if (backend->config.timeout_ms == 0)
        backend->config.timeout_ms = DEFAULT_TIMEOUT_MS;
    backend->slot_count = (uint32_t)capacity_of(given);
    backend->pool = calloc(backend->count, sizeof *backend->pool);
    backend->members = calloc(backend->count, sizeof *backend->members);
    backend->slots = calloc(backend->slot_count, sizeof *backend->slots);
    int rc = backend->pool && backend->members && backend->slots ? 0 : MB_ENOMEM;
    for (uint32_t i = backend->slot_count; rc == 0 && i > 0; i--) {
        backend->slots[i - 1].next_free = backend->free_list;
        backend->free_list = i;
    }
    struct mb_async_config config = {
        .max_in_flight = given->max_in_flight ? given->max_in_flight : DEFAULT_IN_FLIGHT,
        .max_queued = given->max_queued ? given->max_queued : DEFAULT_QUEUED,
        .timeout_ms = backend->config.timeout_ms,
        .reconnect = 1,
        .reconnect_min_ms = given->reconnect_min_ms,
        .reconnect_max_ms = given->reconnect_max_ms,
        .wrap = given->wrap,
        .wrap_data = given->wrap_data,
        .on_state = on_backend_state,
        .on_unmatched = on_unmatched,
    };
    for (uint32_t i = 0; rc == 0 && i < backend->count; i++) {
        backend->members[i].backend = backend;
        /* A backend that was never reached is worth one warning too. */
        backend->members[i].up = 1;
        config.state_data = &backend->members[i];
        rc = mb_async_create(gateway->loop, &config, (const struct sockaddr *)&given->address,
                             given->address_length, &backend->pool[i]);
    }
    if (rc != 0) {
        backend->config.wrap_release = NULL;
        backend_free(backend);
        return rc;
    }
    backend->info.name = backend->name;
    backend->info.connections = backend->count;
    backend->info.capacity = backend->slot_count;
    *started = backend;
    return 0;
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
           running->max_in_flight == given->max_in_flight &&
           running->reconnect_min_ms == given->reconnect_min_ms &&
           running->reconnect_max_ms == given->reconnect_max_ms && running->wrap == given->wrap &&
           running->wrap_data == given->wrap_data;
}

static int check_config(const struct mb_gateway_config *config) {
    if (config == NULL || (config->backend_count > 0 && config->backends == NULL) ||
        (config->route_count > 0 && config->routes == NULL) || config->backend_count > 65535)
        return MB_EINVAL;
    int seen[256] = {0};
    for (size_t i = 0; i < config->route_count; i++) {
        const struct mb_gateway_route *route = &config->routes[i];
        if (route->backend >= config->backend_count || seen[route->front_unit]++)
            return MB_EINVAL;
    }
    for (size_t i = 0; i < config->backend_count; i++)
        if (pool_size(&config->backends[i]) > MAX_CONNECTIONS ||
            capacity_of(&config->backends[i]) > MAX_SLOTS)
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

static int apply(struct mb_gateway *gateway, const struct mb_gateway_config *config) {
    int rc = check_config(config);
    if (rc != 0)
        return rc;
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
    return 0;
}
