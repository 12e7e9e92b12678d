/* SPDX-License-Identifier: MIT */
/*
 * The gateway core: a server handler (server.h) that forwards each request, by unit id, to a
 * backend device through a pool of non-blocking client connections (client.h), and answers
 * the front client when the device does. Many front clients share a backend's few connections
 * (often one: many devices accept no more): each forwarded request gets the pool connection's
 * own transaction id, and the answer goes back under the front client's.
 *
 * What a front client gets:
 *   - the device's answer, after the client library checked that it answers the request
 *     (transaction, unit, function, byte count, echo); a frame that does not is never passed on;
 *   - exception 0x0A (gateway path unavailable) when no route exists for the unit id, when the
 *     backend is down (no connection up, or reconnecting), or when its queue is full;
 *   - exception 0x0B (gateway target device failed to respond) when the device did not answer
 *     in time, the connection was lost with the request outstanding, or the answer was wrong.
 *   - exception 0x02 (illegal data address) when its addresses run past 65535 (address +
 *     quantity over 65536, or an FC 20/21 record past 9999): a device that wraps around would
 *     touch register 0, so such a request never goes to one;
 *   - what `over_share` says (exception 0x06 by default) when the client's identity already
 *     holds its share of the backend (below).
 * A slow or dead backend never delays another: each has its own connections, queue and
 * deadlines. Authorization is the caller's: wrap mb_gateway_handle() in a handler that asks the
 * policy first (policy.h), as `mbsec gateway` does.
 *
 * Fairness. Many clients share a backend's few connections, so one client must not be able to
 * take them all. Every request belongs to an identity: its source (struct mb_peer, source: the
 * address cut to the server's source prefix) together with the role of its certificate, when
 * it came over TLS with one. At each backend
 *   - an identity holds at most `share` requests queued or in flight; the next ones get the
 *     over_share answer at once;
 *   - requests wait at the gateway, one queue per identity, and go out to the device's
 *     connections (max_in_flight each) from those queues in turn, one request per identity per
 *     round: a client that sends one request waits behind at most one request of each other
 *     identity, however many a greedy one has queued.
 */
#ifndef MBSEC_GATEWAY_H
#define MBSEC_GATEWAY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mbsec/client.h"
#include "mbsec/export.h"
#include "mbsec/loop.h"
#include "mbsec/server.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mb_gateway;

/* The most mb_gateway_create() and mb_gateway_reconfigure() accept: connections per backend,
 * and requests one backend may hold at once, connections x (max_in_flight + max_queued). */
#define MB_GATEWAY_MAX_CONNECTIONS 64
#define MB_GATEWAY_MAX_SLOTS 1000000

struct mb_gateway_backend {
    const char *name; /* for logs: "plc1" */
    struct sockaddr_storage address;
    socklen_t address_length;
    uint32_t connections;   /* pool size; default 1 */
    uint32_t timeout_ms;    /* per request, from arrival at the gateway; default 1000 */
    uint32_t max_queued;    /* requests waiting per connection; default 256 */
    uint32_t max_in_flight; /* per connection; default 16 (1 for devices that need it) */
    /* Requests one identity may hold at this backend, queued or in flight; 0: the default, a
     * quarter of what the backend holds (connections x (max_in_flight + max_queued)), at
     * least 1: 68 with the other defaults. */
    uint32_t share;
    uint32_t reconnect_min_ms; /* backoff after a failure, doubling up to reconnect_max_ms, */
    uint32_t reconnect_max_ms; /* with jitter; defaults 100 and 30000 */
    mb_transport_wrap wrap;    /* NULL: plain Modbus/TCP to the device */
    void *wrap_data;
    /* Called with wrap_data when the gateway no longer needs it (the backend was removed by
     * mb_gateway_reconfigure() and its last request answered, or the gateway destroyed); NULL:
     * the caller keeps wrap_data alive for as long as the gateway runs. */
    void (*wrap_release)(void *wrap_data);
    /* How the device is reached. MB_GATEWAY_LINK_TCP (the default): Modbus/TCP to `address`,
     * through the pool above. The two RTU kinds put an RTU bus master (client.h, struct
     * mb_rtu_bus) in place of the pool: exactly one transaction on the wire at a time, so
     * `connections` and `max_in_flight` are 1 whatever they say, and requests wait at the
     * gateway, by identity, for their turn on the bus (max_queued of them):
     *   MB_GATEWAY_LINK_SERIAL        the serial line at rtu.path, with rtu.line's settings;
     *   MB_GATEWAY_LINK_RTU_OVER_TCP  RTU frames over TCP to `address` (a serial-to-Ethernet
     *                                 converter in transparent mode); `wrap` must be NULL.
     * `rtu` gives the bus's settings: answer_timeout_ms, open_pause_ms, pause_ms,
     * broadcast_pause_ms, silence_us, echo, retries (reads only), unit_failures,
     * unit_backoff_ms, and (serial) path and line; its timeout_ms, max_queued, address,
     * reconnect and callback fields are the gateway's own. A unit that stopped answering is
     * skipped for unit_backoff_ms (its requests answered 0x0B at once); a broadcast (a route to
     * device unit 0) is written and answered to nobody, and a read routed there is answered
     * 0x01. A reload that puts another bus on the same line closes the old bus first (what it
     * had in flight answered 0x0B). */
    enum mb_gateway_link {
        MB_GATEWAY_LINK_TCP = 0,
        MB_GATEWAY_LINK_SERIAL = 1,
        MB_GATEWAY_LINK_RTU_OVER_TCP = 2,
    } link;
    struct mb_rtu_bus_config rtu;
};

/* Front unit id -> backend and the device's unit id. */
struct mb_gateway_route {
    uint8_t front_unit;
    uint8_t device_unit;
    uint16_t backend; /* index into the backends array */
};

/* How a request the gateway answered ended. */
enum mb_gateway_outcome {
    MB_GATEWAY_ANSWERED = 0,    /* the device answered (normally or with an exception) */
    MB_GATEWAY_UNAVAILABLE = 1, /* 0x0A: no route, the backend down, or its queue full */
    MB_GATEWAY_TIMEOUT = 2,     /* 0x0B: no answer in time, or the connection lost */
    MB_GATEWAY_MISMATCH = 3,    /* 0x0B: the device's frame did not answer the request */
    MB_GATEWAY_OVER_SHARE = 4,  /* the identity held its share of the backend (over_share) */
    MB_GATEWAY_REJECTED = 5,    /* 0x02: addresses past 65535, never forwarded */
    MB_GATEWAY_SKIPPED = 6,     /* 0x0B at once: the unit on an RTU bus stopped answering */
    MB_GATEWAY_BROADCAST = 7,   /* a broadcast written to an RTU bus: no answer to anybody */
};

/* What a request over its identity's share gets. */
enum mb_gateway_over_share {
    MB_GATEWAY_SHARE_BUSY = 0,  /* exception 0x06 (server device busy): retry later */
    MB_GATEWAY_SHARE_DROP = 1,  /* no answer */
    MB_GATEWAY_SHARE_CLOSE = 2, /* the connection closed (MB_SERVER_CLOSE) */
};

/* How one forwarded request ended, for audit records and metrics. */
struct mb_gateway_completion {
    uint64_t connection_id; /* the front connection, as in the server's log lines */
    uint16_t transaction_id;
    uint8_t front_unit;
    uint8_t device_unit;
    uint8_t function;
    uint8_t exception;   /* 0: the device's normal answer; else the exception the client got
                            (the device's own, or 0x0A / 0x0B from the gateway) */
    int from_device;     /* 1: the answer (normal or exception) came from the device */
    const char *backend; /* the backend's name; NULL when there was no route */
    uint32_t latency_us; /* from the request's arrival at the gateway to its answer */
    enum mb_gateway_outcome outcome;
};

typedef void (*mb_gateway_completion_fn)(void *data, const struct mb_gateway_completion *done);

struct mb_gateway_config {
    const struct mb_gateway_backend *backends;
    size_t backend_count;
    const struct mb_gateway_route *routes;
    size_t route_count;
    mb_log_fn log; /* backend events: "backend_up", "backend_down", "backend_mismatch", ... */
    void *log_data;
    /* Called once per request that decodes, forwarded or not (no route, over the share, past
     * 65535 ...), when its answer is decided, just before it is sent; not for a PDU that does
     * not decode, which mb_gateway_handle() answers itself. NULL: not called. Runs on the
     * gateway's loop. */
    mb_gateway_completion_fn on_complete;
    void *complete_data;
    enum mb_gateway_over_share over_share; /* default: exception 0x06 */
};

struct mb_gateway_stats {
    uint64_t forwarded;   /* requests sent to a backend */
    uint64_t answered;    /* device answers passed on */
    uint64_t unavailable; /* answered 0x0A */
    uint64_t timeouts;    /* answered 0x0B: no answer in time, or lost */
    uint64_t mismatched;  /* device answers that did not match (answered 0x0B) */
    uint64_t unsolicited; /* device frames that answered nothing outstanding: discarded */
    uint64_t reloads;     /* successful mb_gateway_reconfigure() calls */
    uint64_t over_share;  /* requests over their identity's share of a backend */
    uint64_t rejected;    /* answered 0x02: addresses past 65535 */
};

/* One backend as it is now, for metrics. Counters start when the backend starts (and carry
 * over a reconfiguration that keeps it). */
struct mb_gateway_backend_info {
    const char *name;        /* valid until the next mb_gateway_reconfigure() */
    uint32_t connections;    /* pool size */
    uint32_t connections_up; /* connected now */
    uint32_t outstanding;    /* requests queued or in flight now */
    uint32_t capacity;       /* how many it can hold (connections x (in flight + queue)) */
    uint32_t share;          /* what one identity may hold of it */
    uint32_t identities;     /* identities holding requests now */
    uint64_t forwarded, answered, unavailable, timeouts, mismatched, unsolicited;
    uint64_t over_share; /* requests refused: their identity held its share */
    uint64_t reconnects; /* connection losses and failed attempts, each followed by a retry */
    uint64_t writes;     /* write calls to the device connections now in the pool */
    int is_bus;          /* 1: an RTU bus (serial, RTU over TCP); `bus` holds its counters */
    struct mb_rtu_bus_stats bus;
};

/*
 * Creates the gateway on `loop` for `server` (whose handler it will be: mb_gateway_handle with
 * the gateway as data) and starts connecting every backend. Routes name backends by index; a
 * unit id without a route is answered 0x0A. The config's arrays are copied; on success the
 * gateway owns the backends' wrap_data (see wrap_release). Returns 0, MB_EINVAL (a route to a
 * missing backend, two routes for one unit, limits out of range), MB_ENOMEM.
 */
MB_API int mb_gateway_create(struct mb_loop *loop, struct mb_server *server,
                             const struct mb_gateway_config *config, struct mb_gateway **gateway);

/*
 * Replaces backends and routes while requests flow (a configuration reload). A backend of the
 * new list equal to a running one (name, address, pool size, limits, timeouts, and the same
 * wrap and wrap_data pointers) keeps running untouched, connections and queue included; new
 * ones start connecting; running ones not in the new list stop taking requests at once, and
 * are closed when their last outstanding request is answered (or times out). Requests already
 * forwarded are always answered by the backend they went to. Returns 0; or MB_EINVAL (as for
 * create), MB_ENOMEM, and then nothing changed and the wrap_data of the new list that the
 * gateway did not already hold remain the caller's.
 */
MB_API int mb_gateway_reconfigure(struct mb_gateway *gateway,
                                  const struct mb_gateway_config *config);

/* Answers what is still outstanding with 0x0B, closes the backends and frees the gateway. Call
 * it before destroying the server. */
MB_API void mb_gateway_destroy(struct mb_gateway *gateway);

/* The server handler: forwards the request (returns MB_SERVER_DEFER), or writes the exception
 * answer at once (0x0A, 0x02, the over_share answer; 01 or 03 for a request that did not
 * decode), or returns what over_share says. */
MB_API int mb_gateway_handle(void *gateway, const struct mb_server_request *request,
                             uint8_t *response);

MB_API void mb_gateway_stats(const struct mb_gateway *gateway, struct mb_gateway_stats *stats);

/* The number of backends in force, and backend `index` (in the order of the configuration).
 * mb_gateway_backend_info returns 0, or MB_EINVAL for an index out of range. */
MB_API size_t mb_gateway_backend_count(const struct mb_gateway *gateway);
MB_API int mb_gateway_backend_info(const struct mb_gateway *gateway, size_t index,
                                   struct mb_gateway_backend_info *info);

#ifdef __cplusplus
}
#endif

#endif
