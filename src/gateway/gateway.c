/* SPDX-License-Identifier: MIT */
/*
 * The gateway core: requests deferred by the server handler, forwarded through a backend's
 * pool of non-blocking clients, answered through mb_server_reply() when the device answers.
 * Every forwarded request holds one slot of a pool allocated at creation, so the gateway's
 * memory is bounded by its configuration, not by its clients.
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
#define NO_ROUTE 0xFFFF

struct forwarded {
    struct mb_gateway *gateway;
    uint64_t token;
    uint64_t connection_id;
    uint64_t started_us;
    uint16_t transaction_id;
    uint8_t front_unit;
    uint8_t function;
    uint16_t backend;
    uint32_t next_free; /* index + 1 */
};

struct backend;

/* One connection of a backend's pool, and whether it is up (for logging transitions once). */
struct member {
    struct backend *backend;
    int up;
};

struct backend {
    struct mb_gateway_backend config;
    char name[64];
    struct mb_async **pool;
    struct member *members;
    uint32_t count;
    uint32_t next; /* where the next search for a connection starts */
    struct mb_gateway *gateway;
};

struct mb_gateway {
    struct mb_loop *loop;
    struct mb_server *server;
    struct backend *backends;
    size_t backend_count;
    uint16_t route_backend[256]; /* NO_ROUTE, or the backend's index */
    uint8_t route_unit[256];
    struct forwarded *slots;
    uint32_t slot_count;
    uint32_t free_list;
    mb_log_fn log;
    void *log_data;
    mb_gateway_completion_fn on_complete;
    void *complete_data;
    struct mb_gateway_stats stats;
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
    const struct backend *backend =
        request->backend != NO_ROUTE ? &gateway->backends[request->backend] : NULL;
    uint64_t elapsed = monotonic_us() - request->started_us;
    struct mb_gateway_completion done = {
        .connection_id = request->connection_id,
        .transaction_id = request->transaction_id,
        .front_unit = request->front_unit,
        .device_unit = gateway->route_unit[request->front_unit],
        .function = request->function,
        .exception = exception,
        .from_device = from_device,
        .backend = backend != NULL ? backend->name : NULL,
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

static void slot_free(struct mb_gateway *gateway, struct forwarded *slot) {
    slot->next_free = gateway->free_list;
    gateway->free_list = (uint32_t)(slot - gateway->slots) + 1;
}

static void on_answer(void *data, const struct mb_async_result *result) {
    struct forwarded *slot = data;
    struct mb_gateway *gateway = slot->gateway;
    struct forwarded request = *slot;
    uint64_t token = slot->token;
    uint8_t function = slot->function;
    uint16_t backend = slot->backend;
    slot_free(gateway, slot);

    if (result->status == 0) {
        gateway->stats.answered++;
        /* The front client may have gone meanwhile: its answer is then dropped (MB_ECLOSED). */
        completed(gateway, &request, result->response->exception, 1);
        mb_server_reply(gateway->server, token, result->response_pdu, result->response_length);
        return;
    }
    if (result->status == MB_ECONNECT) {
        gateway->stats.unavailable++;
        completed(gateway, &request, MB_EX_GATEWAY_PATH_UNAVAILABLE, 0);
        answer_exception(gateway, token, function, MB_EX_GATEWAY_PATH_UNAVAILABLE);
        return;
    }
    if (result->status != MB_ETIMEDOUT && result->status != MB_ECLOSED &&
        result->status != MB_ECANCELED) {
        /* The device answered, but not this request: never passed on. */
        gateway->stats.mismatched++;
        char reason[320];
        snprintf(reason, sizeof reason, "backend %s: %s (dropped; the client gets 0x0B)",
                 gateway->backends[backend].name, result->detail);
        note(gateway, MB_LOG_WARNING, "backend_mismatch", reason);
    } else {
        gateway->stats.timeouts++;
    }
    completed(gateway, &request, MB_EX_GATEWAY_TARGET_FAILED, 0);
    answer_exception(gateway, token, function, MB_EX_GATEWAY_TARGET_FAILED);
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
        snprintf(reason, sizeof reason, "backend %s: %s (%s; %u of %u up)", backend->name,
                 detail != NULL && detail[0] ? detail : mb_strerror(error),
                 state == MB_ASYNC_DOWN ? "reconnecting with backoff" : "closed",
                 connections_up(backend), backend->count);
        /* Losing a connection is news once; each failed retry after it is only detail. */
        note(backend->gateway, member->up ? MB_LOG_WARNING : MB_LOG_DEBUG, "backend_down", reason);
        member->up = 0;
    }
}

/* The connection of the pool to use: one that is up, with the fewest requests outstanding. */
static struct mb_async *pick(struct backend *backend) {
    struct mb_async *best = NULL;
    size_t best_outstanding = 0;
    for (uint32_t i = 0; i < backend->count; i++) {
        struct mb_async *client = backend->pool[(backend->next + i) % backend->count];
        if (mb_async_state(client) != MB_ASYNC_CONNECTED)
            continue;
        size_t outstanding = mb_async_outstanding(client);
        if (best == NULL || outstanding < best_outstanding) {
            best = client;
            best_outstanding = outstanding;
        }
    }
    backend->next = (backend->next + 1) % backend->count;
    return best;
}

int mb_gateway_handle(void *data, const struct mb_server_request *call, uint8_t *response) {
    struct mb_gateway *gateway = data;
    uint8_t function = call->pdu[0];
    if (call->request == NULL) {
        /* Nothing malformed goes on to a device. */
        uint8_t code = mb_error_exception(call->decode_error);
        return mb_exception_encode(function & (uint8_t)~MB_EXCEPTION_BIT,
                                   code ? code : MB_EX_ILLEGAL_DATA_VALUE, response, MB_PDU_MAX);
    }
    uint16_t index = gateway->route_backend[call->unit_id];
    struct mb_async *client = index != NO_ROUTE ? pick(&gateway->backends[index]) : NULL;
    struct forwarded request = {
        .token = call->token,
        .connection_id = call->connection_id,
        .started_us = gateway->on_complete != NULL ? monotonic_us() : 0,
        .transaction_id = call->transaction_id,
        .front_unit = call->unit_id,
        .function = function,
        .backend = index,
    };
    if (client == NULL || gateway->free_list == 0) {
        gateway->stats.unavailable++;
        completed(gateway, &request, MB_EX_GATEWAY_PATH_UNAVAILABLE, 0);
        return mb_exception_encode(function, MB_EX_GATEWAY_PATH_UNAVAILABLE, response, MB_PDU_MAX);
    }
    struct forwarded *slot = &gateway->slots[gateway->free_list - 1];
    gateway->free_list = slot->next_free;
    *slot = request;
    slot->gateway = gateway;
    const struct backend *backend = &gateway->backends[index];
    int rc = mb_async_submit(client, gateway->route_unit[call->unit_id], call->pdu,
                             call->pdu_length, backend->config.timeout_ms, on_answer, slot);
    if (rc != 0) {
        slot_free(gateway, slot);
        gateway->stats.unavailable++;
        completed(gateway, &request, MB_EX_GATEWAY_PATH_UNAVAILABLE, 0);
        return mb_exception_encode(function, MB_EX_GATEWAY_PATH_UNAVAILABLE, response, MB_PDU_MAX);
    }
    gateway->stats.forwarded++;
    return MB_SERVER_DEFER;
}

static int start_backend(struct mb_gateway *gateway, struct backend *backend,
                         const struct mb_gateway_backend *given) {
    backend->config = *given;
    backend->gateway = gateway;
    snprintf(backend->name, sizeof backend->name, "%s", given->name ? given->name : "backend");
    backend->config.name = backend->name;
    backend->count = given->connections ? given->connections : DEFAULT_CONNECTIONS;
    if (backend->count > MAX_CONNECTIONS)
        return MB_EINVAL;
    if (backend->config.timeout_ms == 0)
        backend->config.timeout_ms = DEFAULT_TIMEOUT_MS;
    backend->pool = calloc(backend->count, sizeof *backend->pool);
    backend->members = calloc(backend->count, sizeof *backend->members);
    if (backend->pool == NULL || backend->members == NULL)
        return MB_ENOMEM;
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
    };
    for (uint32_t i = 0; i < backend->count; i++) {
        backend->members[i].backend = backend;
        /* A backend that was never reached is worth one warning too. */
        backend->members[i].up = 1;
        config.state_data = &backend->members[i];
        int rc = mb_async_create(gateway->loop, &config, (const struct sockaddr *)&given->address,
                                 given->address_length, &backend->pool[i]);
        if (rc != 0)
            return rc;
    }
    return 0;
}

int mb_gateway_create(struct mb_loop *loop, struct mb_server *server,
                      const struct mb_gateway_config *config, struct mb_gateway **gateway_out) {
    if (loop == NULL || server == NULL || config == NULL || gateway_out == NULL ||
        (config->backend_count > 0 && config->backends == NULL) ||
        (config->route_count > 0 && config->routes == NULL) || config->backend_count >= NO_ROUTE)
        return MB_EINVAL;
    struct mb_gateway *gateway = calloc(1, sizeof *gateway);
    if (gateway == NULL)
        return MB_ENOMEM;
    gateway->loop = loop;
    gateway->server = server;
    gateway->log = config->log;
    gateway->log_data = config->log_data;
    gateway->on_complete = config->on_complete;
    gateway->complete_data = config->complete_data;
    for (int unit = 0; unit < 256; unit++)
        gateway->route_backend[unit] = NO_ROUTE;
    int rc = 0;
    for (size_t i = 0; i < config->route_count && rc == 0; i++) {
        const struct mb_gateway_route *route = &config->routes[i];
        if (route->backend >= config->backend_count ||
            gateway->route_backend[route->front_unit] != NO_ROUTE)
            rc = MB_EINVAL;
        gateway->route_backend[route->front_unit] = route->backend;
        gateway->route_unit[route->front_unit] = route->device_unit;
    }
    /* One slot for every request the backends can hold at once. */
    uint64_t slots = 0;
    for (size_t i = 0; i < config->backend_count; i++) {
        const struct mb_gateway_backend *given = &config->backends[i];
        uint64_t connections = given->connections ? given->connections : DEFAULT_CONNECTIONS;
        slots += connections * ((given->max_in_flight ? given->max_in_flight : DEFAULT_IN_FLIGHT) +
                                (given->max_queued ? given->max_queued : DEFAULT_QUEUED));
    }
    if (rc == 0 && slots > 1000000)
        rc = MB_EINVAL;
    if (rc == 0) {
        gateway->slot_count = (uint32_t)slots;
        gateway->slots = calloc(slots ? slots : 1, sizeof *gateway->slots);
        gateway->backends =
            calloc(config->backend_count ? config->backend_count : 1, sizeof *gateway->backends);
        if (gateway->slots == NULL || gateway->backends == NULL)
            rc = MB_ENOMEM;
    }
    for (uint32_t i = gateway->slot_count; rc == 0 && i > 0; i--)
        slot_free(gateway, &gateway->slots[i - 1]);
    for (size_t i = 0; i < config->backend_count && rc == 0; i++) {
        gateway->backend_count = i + 1;
        rc = start_backend(gateway, &gateway->backends[i], &config->backends[i]);
    }
    if (rc != 0) {
        mb_gateway_destroy(gateway);
        return rc;
    }
    *gateway_out = gateway;
    return 0;
}

void mb_gateway_destroy(struct mb_gateway *gateway) {
    if (gateway == NULL)
        return;
    for (size_t i = 0; i < gateway->backend_count; i++) {
        struct backend *backend = &gateway->backends[i];
        for (uint32_t c = 0; backend->pool != NULL && c < backend->count; c++)
            mb_async_destroy(backend->pool[c]); /* outstanding requests: 0x0B to their clients */
        free(backend->pool);
        free(backend->members);
    }
    free(gateway->backends);
    free(gateway->slots);
    free(gateway);
}

void mb_gateway_stats(const struct mb_gateway *gateway, struct mb_gateway_stats *stats) {
    *stats = gateway->stats;
}
