/* SPDX-License-Identifier: MIT */
/*
 * The Modbus/TCP client, in two forms over the same transports (transport.h):
 *
 *   - struct mb_client, blocking: connect with a timeout, one call per function code, a
 *     per-call timeout, optional automatic reconnect, and retries for idempotent reads only.
 *     For applications and command-line tools that do one thing at a time.
 *
 *   - struct mb_async, non-blocking on an event loop (loop.h): many requests in flight on one
 *     connection, a completion callback per request, transaction-id matching, per-request
 *     deadlines, a bounded queue, and reconnection with exponential backoff. For gateways, load
 *     generators and anything that talks to many devices from one thread.
 *
 * Both check every response against its request before handing it over: the transaction id
 * picks the request, then the unit id, the function code and everything mb_response_matches()
 * checks (byte counts, echoes, quantities) must agree. A response whose transaction id matches
 * nothing outstanding (a late answer to a request that timed out, a duplicate, garbage) is
 * discarded and counted; it is never delivered to another request. A response that matches its
 * transaction but not its request completes that request with MB_EMISMATCH, never with values.
 *
 * Return values of the blocking calls: 0 on success; a positive Modbus exception code (1..255,
 * enum mb_exception) when the device answered with an exception; a negative MB_E* error when no
 * valid answer arrived (MB_ECONNECT, MB_ETIMEDOUT, MB_ECLOSED, MB_EIO, MB_EMISMATCH, a PDU
 * decoding error), or MB_EINVAL when nothing was sent: missing arguments, or a count or value
 * outside the function code's limits (the detail line names the encoder's complaint).
 * mb_client_error_detail() then says what happened in one line.
 *
 * A request that timed out may still have reached the device and been executed (the answer was
 * lost or late): that holds for every Modbus client, and is why writes are never repeated.
 */
#ifndef MBSEC_CLIENT_H
#define MBSEC_CLIENT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mbsec/export.h"
#include "mbsec/loop.h"
#include "mbsec/pdu.h"
#include "mbsec/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MB_DEFAULT_PORT 502

/*
 * Turns a connected, non-blocking socket into a transport (TLS wraps it here). Returns 0 or a
 * negative MB_E* error; on error the callee has not closed `fd`. NULL in the options below means
 * plain TCP (mb_tcp_transport_create()).
 */
typedef int (*mb_transport_wrap)(void *data, int fd, struct mb_transport **transport);

/* Counters, for both clients. */
struct mb_client_stats {
    uint64_t requests;   /* requests sent (handed to the connection for writing) */
    uint64_t responses;  /* responses delivered (normal or exception) */
    uint64_t exceptions; /* of those, exception responses */
    uint64_t timeouts;   /* requests that got no answer in time */
    uint64_t unmatched;  /* frames whose transaction id matched nothing outstanding: discarded */
    uint64_t mismatched; /* frames that matched a transaction but not its request */
    uint64_t malformed;  /* frames whose PDU did not decode */
    uint64_t discarded;  /* frames with a protocol id other than 0: discarded */
    uint64_t connects;   /* connections established */
    uint64_t disconnects;
    uint64_t writes; /* write calls to the connection (sends; TLS: records written) */
};

/* ============================== blocking client ============================== */

struct mb_client;

struct mb_client_options {
    uint32_t connect_timeout_ms; /* default 3000 */
    uint32_t timeout_ms;         /* per attempt, from sending to the answer; default 1000 */
    /* Extra attempts for idempotent reads (FC 1-4, 7, 11, 12, 17, 20, 24, and 43 with MEI type
     * 14) after a timeout or a lost connection; writes and FC 8 are never repeated. A call may
     * then take (retries + 1) x timeout_ms, plus reconnecting. Default 0. */
    uint32_t retries;
    /* 1: when the connection was lost, the next call connects again first (writes too: a write
     * is only ever sent once, but it may be sent on a new connection). Default 0. */
    int reconnect;
    mb_transport_wrap wrap; /* NULL: plain TCP */
    void *wrap_data;
    /* How frames are cut on the stream: MBAP (Modbus/TCP, the default) or RTU (address, PDU,
     * CRC), for serial lines (mb_client_open_serial() sets it) and for serial-to-Ethernet
     * converters in transparent mode ("RTU over TCP"). With RTU there is no transaction id:
     * one request at a time, input left over from an earlier exchange is dropped before each
     * request, and an answer must come from the unit asked and match the request. */
    enum mb_client_framing {
        MB_FRAMING_MBAP = 0,
        MB_FRAMING_RTU = 1,
        /* ASCII (':', hex, LRC, CR LF) on a serial line: frames end at their CR LF, so no
         * silence is needed; otherwise as RTU. mb_client_open_serial() keeps it when asked. */
        MB_FRAMING_ASCII = 2,
    } framing;
    /* RTU: the silence that ends a frame whose length its function code cannot tell, and that
     * is kept between frames, in microseconds. 0: from the baud rate on a serial line (t3.5,
     * mb_rtu_timing()); 20 ms over TCP, where segments may be delayed. */
    uint32_t rtu_silence_us;
    /* RTU: the adapter echoes what is sent (a 2-wire RS-485 adapter that hears itself): the
     * bytes of each request are expected back first and dropped, so that an echo is never
     * taken for an answer (an FC 6 echo looks exactly like one). */
    int rtu_echo;
};

/*
 * Connects to `target`, "host[:port]" ("[v6]:port" for IPv6; port 502 when left out), resolving
 * a name if need be; a name with several addresses has each tried in turn. `options` may be
 * NULL for the defaults. Returns 0 with *client set, or MB_EADDRESS (unparsable or
 * unresolvable target), MB_ECONNECT (refused, unreachable, no answer within
 * connect_timeout_ms), MB_ENOMEM, MB_EINVAL, MB_ESYSTEM (no socket), or the error of the
 * options' `wrap` (a TLS handshake that failed, later). With `detail` (capacity `detail_size`),
 * a failure is described in one line ("connect to 127.0.0.1:502: Connection refused").
 */
MB_API int mb_client_connect(const char *target, const struct mb_client_options *options,
                             struct mb_client **client, char *detail, size_t detail_size);

/* The same with an address already parsed (mb_address_parse()). */
MB_API int mb_client_connect_address(const struct sockaddr *address, socklen_t length,
                                     const struct mb_client_options *options,
                                     struct mb_client **client, char *detail, size_t detail_size);

struct mb_serial_config;

/*
 * Opens the serial line at `path` (mb_serial_open(), transport.h; `line` NULL: 19200 8E1) for a
 * client speaking RTU, or ASCII when options->framing is MB_FRAMING_ASCII (anything else is
 * taken as RTU). A unit id of 0 is a
 * broadcast: allowed for writes only, sent, and answered by nobody (the call returns 0 with an
 * empty reply as soon as it is written; the next request waits a turnaround of 100 ms, so that
 * the devices have executed it). Unit ids 248..255 are refused. With options->reconnect, a line
 * that went away (an adapter unplugged) is opened again by the next call. Returns 0 with
 * *client set, or the errors of mb_serial_open() (transport.h) with `detail` saying why.
 */
MB_API int mb_client_open_serial(const char *path, const struct mb_serial_config *line,
                                 const struct mb_client_options *options, struct mb_client **client,
                                 char *detail, size_t detail_size);

/* Closes the connection and frees the client. NULL is ignored. */
MB_API void mb_client_close(struct mb_client *client);

/* Changes the per-call timeout for the calls that follow. */
MB_API void mb_client_set_timeout(struct mb_client *client, uint32_t timeout_ms);

/* One line describing the last failure (a negative return or an exception); "" after success.
 * Valid until the next call on `client`. */
MB_API const char *mb_client_error_detail(const struct mb_client *client);

/* 1 while the client holds an open connection. */
MB_API int mb_client_connected(const struct mb_client *client);

/* The peer's address as text, "192.0.2.1:502". */
MB_API const char *mb_client_peer(const struct mb_client *client);

MB_API void mb_client_stats(const struct mb_client *client, struct mb_client_stats *stats);

/* An answer: the response PDU, its decoded view (pointing into `pdu`), and its MBAP fields. After
 * MB_EMISMATCH or a decoding error, `pdu` and `length` hold the offending PDU (for display) and
 * `response` is not valid. */
struct mb_reply {
    uint8_t pdu[MB_PDU_MAX];
    size_t length;
    struct mb_response response;
    uint16_t transaction_id;
    uint8_t unit_id;
    uint32_t elapsed_us; /* from writing the request to receiving the answer */
};

/*
 * Sends a request PDU (function code first, 1..253 bytes, sent as given, so it may be one the
 * core does not know) and waits for its answer. Returns 0, the exception code, or an error. A
 * PDU that decodes as a request is matched in full against the answer; one that does not is
 * matched on its function code only. `reply` may be NULL.
 */
MB_API int mb_client_call(struct mb_client *client, uint8_t unit_id, const uint8_t *pdu,
                          size_t length, struct mb_reply *reply);

/* Encodes *request and calls mb_client_call(); MB_EINVAL if it does not encode. */
MB_API int mb_client_request(struct mb_client *client, uint8_t unit_id,
                             const struct mb_request *request, struct mb_reply *reply);

/* ---- one call per function code ---- */
/* Bits are one byte each, 0 or 1 (not packed); registers are host-order uint16_t. */

/* FC 1, 2: quantity 1..2000. */
MB_API int mb_read_coils(struct mb_client *client, uint8_t unit_id, uint16_t address,
                         uint16_t quantity, uint8_t *bits);
MB_API int mb_read_discrete_inputs(struct mb_client *client, uint8_t unit_id, uint16_t address,
                                   uint16_t quantity, uint8_t *bits);
/* FC 3, 4: quantity 1..125. */
MB_API int mb_read_holding_registers(struct mb_client *client, uint8_t unit_id, uint16_t address,
                                     uint16_t quantity, uint16_t *values);
MB_API int mb_read_input_registers(struct mb_client *client, uint8_t unit_id, uint16_t address,
                                   uint16_t quantity, uint16_t *values);
/* FC 5: `on` non-zero writes 0xFF00. */
MB_API int mb_write_coil(struct mb_client *client, uint8_t unit_id, uint16_t address, int on);
/* FC 6 */
MB_API int mb_write_register(struct mb_client *client, uint8_t unit_id, uint16_t address,
                             uint16_t value);
/* FC 7 */
MB_API int mb_read_exception_status(struct mb_client *client, uint8_t unit_id, uint8_t *status);
/* FC 8: the answer's data is in reply->response.diagnostics. */
MB_API int mb_diagnostics(struct mb_client *client, uint8_t unit_id, uint16_t sub_function,
                          const uint8_t *data, size_t length, struct mb_reply *reply);
/* FC 11 */
MB_API int mb_get_comm_event_counter(struct mb_client *client, uint8_t unit_id, uint16_t *status,
                                     uint16_t *event_count);
/* FC 12: reply->response.event_log. */
MB_API int mb_get_comm_event_log(struct mb_client *client, uint8_t unit_id, struct mb_reply *reply);
/* FC 15: quantity 1..1968. */
MB_API int mb_write_coils(struct mb_client *client, uint8_t unit_id, uint16_t address,
                          uint16_t quantity, const uint8_t *bits);
/* FC 16: quantity 1..123. */
MB_API int mb_write_registers(struct mb_client *client, uint8_t unit_id, uint16_t address,
                              uint16_t quantity, const uint16_t *values);
/* FC 17: reply->response.server_id. */
MB_API int mb_report_server_id(struct mb_client *client, uint8_t unit_id, struct mb_reply *reply);
/* FC 20: `count` sub-requests (reference type 6, file, record, length); the answer's records
 * are walked with mb_file_records_next(&reply->response.file, ...). */
MB_API int mb_read_file_record(struct mb_client *client, uint8_t unit_id,
                               const struct mb_file_record *records, size_t count,
                               struct mb_reply *reply);
/* FC 21: records with their data (record_length big-endian registers each). */
MB_API int mb_write_file_record(struct mb_client *client, uint8_t unit_id,
                                const struct mb_file_record *records, size_t count);
/* FC 22: the register becomes (value AND and_mask) OR (or_mask AND NOT and_mask). */
MB_API int mb_mask_write_register(struct mb_client *client, uint8_t unit_id, uint16_t address,
                                  uint16_t and_mask, uint16_t or_mask);
/* FC 23: writes write_quantity (1..121) registers, then reads read_quantity (1..125). */
MB_API int mb_read_write_registers(struct mb_client *client, uint8_t unit_id,
                                   uint16_t write_address, uint16_t write_quantity,
                                   const uint16_t *write_values, uint16_t read_address,
                                   uint16_t read_quantity, uint16_t *read_values);
/* FC 24: up to 31 values; *count gets how many. */
MB_API int mb_read_fifo_queue(struct mb_client *client, uint8_t unit_id, uint16_t address,
                              uint16_t values[MB_MAX_FIFO_COUNT], uint16_t *count);
/* FC 43/14, one transaction: reply->response.device_id, objects walked with
 * mb_device_objects_next(). */
MB_API int mb_read_device_id(struct mb_client *client, uint8_t unit_id, uint8_t read_code,
                             uint8_t object_id, struct mb_reply *reply);

/*
 * FC 43/14, the whole category: follows more_follows/next_object_id over as many transactions
 * as the device needs (at most 256), calling `fn` once per object. Stops with MB_EMISMATCH if
 * the device's next_object_id does not move forward. Returns like the other calls; when it
 * fails part-way the objects already passed to `fn` stay valid answers.
 */
typedef void (*mb_device_object_fn)(void *data, const struct mb_device_object *object,
                                    uint8_t conformity_level);
MB_API int mb_read_device_identification(struct mb_client *client, uint8_t unit_id,
                                         uint8_t read_code, mb_device_object_fn fn, void *data);

/* ============================== non-blocking client ============================== */

struct mb_async;

enum mb_async_state {
    MB_ASYNC_CONNECTING = 1,
    MB_ASYNC_CONNECTED = 2,
    MB_ASYNC_DOWN = 3,   /* waiting to reconnect (with reconnect on) */
    MB_ASYNC_CLOSED = 4, /* the connection is gone and will not come back */
};

/* What a request came to, for its completion callback. Everything is valid during the call
 * only. */
struct mb_async_result {
    /* 0: an answer arrived (normal or exception: response->exception). Otherwise why not:
     * MB_ETIMEDOUT, MB_ECLOSED (the connection was lost first), MB_ECONNECT (never connected),
     * MB_EMISMATCH, a PDU decoding error, MB_ECANCELED (mb_async_destroy()). */
    int status;
    uint8_t unit_id;
    uint16_t transaction_id;    /* the one used on the wire, if the request went out */
    const uint8_t *request_pdu; /* as submitted */
    size_t request_length;
    const struct mb_response *response; /* status 0 only */
    const uint8_t *response_pdu;        /* status 0, or the offending PDU for a mismatch */
    size_t response_length;
    const char *detail; /* a line about a failure; "" on success */
};

typedef void (*mb_async_done)(void *data, const struct mb_async_result *result);

/* Called when the connection state changes; `error` says why for DOWN and CLOSED. */
typedef void (*mb_async_state_fn)(void *data, enum mb_async_state state, int error,
                                  const char *detail);

/* The most mb_async_create() accepts for max_in_flight and max_queued. */
#define MB_ASYNC_MAX_IN_FLIGHT 4096
#define MB_ASYNC_MAX_QUEUED 60000

struct mb_async_config {
    uint32_t max_in_flight; /* requests on the wire at once; default 16, at most 4096 */
    /* Requests outstanding beyond max_in_flight (waiting for their turn, or for the connection);
     * submissions past max_in_flight + max_queued get MB_ELIMIT. Default 1024, at most 60000. */
    uint32_t max_queued;
    uint32_t timeout_ms;         /* default deadline per request, from submission; 1000 */
    uint32_t connect_timeout_ms; /* default 3000 */
    /* 1: a lost or failed connection is retried, after reconnect_min_ms doubling up to
     * reconnect_max_ms, each delay with up to 25% random jitter; requests submitted while it is
     * down fail at once with MB_ECLOSED. 0 (default): the client closes for good. */
    int reconnect;
    uint32_t reconnect_min_ms; /* default 100 */
    uint32_t reconnect_max_ms; /* default 30000 */
    mb_transport_wrap wrap;    /* NULL: plain TCP */
    void *wrap_data;
    mb_async_state_fn on_state;
    void *state_data;
    /* Called (with state_data) for each frame from the server that answers nothing outstanding
     * (a late answer after its timeout, a duplicate, an unsolicited frame), which is discarded
     * and counted as unmatched; or NULL. */
    void (*on_unmatched)(void *state_data, uint16_t transaction_id, uint8_t unit_id);
};

/*
 * Creates a client on `loop`; it starts connecting to `address` when the loop next runs (no
 * callback runs inside this call). Requests may be submitted at once; they go out when the
 * connection is up. Returns 0, MB_ENOMEM, MB_EINVAL (also for limits out of range).
 */
MB_API int mb_async_create(struct mb_loop *loop, const struct mb_async_config *config,
                           const struct sockaddr *address, socklen_t length,
                           struct mb_async **client);

/*
 * Completes every outstanding request with MB_ECANCELED (callbacks run inside this call), closes
 * the connection and frees the client. Do not call it from one of its own callbacks.
 */
MB_API void mb_async_destroy(struct mb_async *client);

/*
 * Queues a request PDU for `unit_id` with a deadline of `timeout_ms` from now (0: the config's).
 * `done` is called exactly once, from the loop (never from inside this call). The PDU is copied.
 * Requests are written in submission order; several written together go out in one write.
 * Returns 0, MB_ELIMIT (queue full), MB_ECLOSED (connection down or closed), MB_EINVAL.
 */
MB_API int mb_async_submit(struct mb_async *client, uint8_t unit_id, const uint8_t *pdu,
                           size_t length, uint32_t timeout_ms, mb_async_done done, void *data);

/* Encodes *request and submits it. */
MB_API int mb_async_send(struct mb_async *client, uint8_t unit_id, const struct mb_request *request,
                         uint32_t timeout_ms, mb_async_done done, void *data);

MB_API enum mb_async_state mb_async_state(const struct mb_async *client);
/* Requests submitted and not yet completed (queued and in flight). */
MB_API size_t mb_async_outstanding(const struct mb_async *client);
MB_API void mb_async_stats(const struct mb_async *client, struct mb_client_stats *stats);

/* ============================== RTU bus master (non-blocking) ============================== */

/*
 * A Modbus RTU master on the event loop, for one bus: a serial line (mb_serial_open()) or a TCP
 * connection to a serial-to-Ethernet converter in transparent mode ("RTU over TCP"). RTU has no
 * transaction id, so exactly one transaction is on the wire at a time, in submission order:
 *   - the line is kept quiet for t3.5 (and pause_ms) between transactions, and for open_pause_ms
 *     after it opens; input that arrives between transactions is dropped and counted;
 *   - an answer ends at the length its function code gives, or at a silence of t3.5; it must
 *     come from the unit asked and match the request (mb_response_matches()); frames with a bad
 *     CRC, from another unit, or that do not match are counted and waited past: a good answer
 *     may still follow. If none does within answer_timeout_ms, the attempt failed with what was
 *     seen (MB_ECRC, MB_EMISMATCH), or MB_ETIMEDOUT when nothing came;
 *   - a late answer (to an attempt that timed out) is recognised by its unit and function and
 *     dropped, never taken for the next request's answer;
 *   - idempotent reads are attempted up to 1 + retries times within their deadline; writes once;
 *   - a unit that fails to answer unit_failures times in a row is skipped for unit_backoff_ms:
 *     its requests fail at once with MB_EBACKOFF, so that one dead slave does not stall the bus.
 *     The first request after the back-off is sent as a probe: an answer makes the unit healthy
 *     again, silence starts another back-off;
 *   - unit 0 is a broadcast: writes only (FC 5, 6, 15, 16, 21, 22), completed with status 0 and
 *     no response (response NULL, response_length 0) once written; the bus then waits
 *     broadcast_pause_ms for the devices to execute it. Units 248..255 are refused (MB_EINVAL);
 *   - a line that fails (an adapter unplugged, the converter's connection lost) fails what is
 *     outstanding with MB_ECLOSED and is opened again after reopen_min_ms, doubling up to
 *     reopen_max_ms; submissions while it is down fail with MB_ECLOSED.
 * The state callback reports MB_ASYNC_CONNECTING (opening), CONNECTED (open) and DOWN.
 */
struct mb_rtu_bus;

/* What the bus reports besides its state, for logs. */
enum mb_rtu_bus_event {
    MB_RTU_UNIT_SKIPPED = 1,   /* a unit stopped answering: skipped for unit_backoff_ms */
    MB_RTU_UNIT_RECOVERED = 2, /* a skipped unit answered its probe */
    MB_RTU_LATE_ANSWER = 3,    /* an answer after its attempt's timeout: dropped */
    MB_RTU_DAMAGED = 4,        /* a frame with a bad CRC or length, or noise: dropped */
    MB_RTU_WRONG_UNIT = 5,     /* a frame from another unit than the one asked: dropped */
    MB_RTU_UNSOLICITED = 6,    /* input while no transaction was on the wire: dropped */
};

struct mb_rtu_bus_config {
    /* The bus: a serial line at `path` with `line`'s settings; or, with path NULL, RTU frames
     * over a TCP connection to `address`. */
    const char *path;
    struct mb_serial_config line;
    const struct sockaddr *address;
    socklen_t address_length;
    uint32_t timeout_ms;         /* default deadline per request, from submission; 1000 */
    uint32_t answer_timeout_ms;  /* per attempt, from the request's last byte; default 500 */
    uint32_t max_queued;         /* requests waiting for the bus; default 64, at most 60000 */
    uint32_t open_pause_ms;      /* quiet after the line opens, for devices that need it; 0 */
    uint32_t pause_ms;           /* extra quiet between transactions, beyond t3.5; 0 */
    uint32_t broadcast_pause_ms; /* after a broadcast; 0: 100 */
    /* The silence that ends a frame and separates frames, in microseconds; 0: t3.5 from the
     * baud rate (mb_rtu_timing()) on a line, 20 ms over TCP (segments may be delayed). */
    uint32_t silence_us;
    int echo;                    /* the adapter echoes what is sent: expected back and dropped */
    uint32_t retries;            /* extra attempts for idempotent reads; default 0 */
    uint32_t unit_failures;      /* failed attempts in a row that skip a unit; 0: 3 */
    uint32_t unit_backoff_ms;    /* how long a unit is skipped; 0: 10000 */
    uint32_t reopen_min_ms;      /* default 100 */
    uint32_t reopen_max_ms;      /* default 30000 */
    uint32_t connect_timeout_ms; /* RTU over TCP; default 3000 */
    mb_async_state_fn on_state;
    void *state_data;
    /* Called with state_data for each event; `detail` is one line. NULL: not called. */
    void (*on_event)(void *state_data, enum mb_rtu_bus_event event, uint8_t unit,
                     const char *detail);
};

struct mb_rtu_bus_stats {
    uint64_t transactions; /* requests written to the bus (every attempt, broadcasts too) */
    uint64_t answers;      /* answers delivered (normal or exception) */
    uint64_t timeouts;     /* attempts that got no answer at all */
    uint64_t damaged;      /* frames dropped for a bad CRC or length, and noise */
    uint64_t wrong_unit;   /* frames from another unit than the one asked */
    uint64_t mismatched;   /* frames from the unit asked that did not answer the request */
    uint64_t late;         /* late answers recognised and dropped */
    uint64_t unsolicited;  /* input between transactions, dropped */
    uint64_t retries;      /* attempts after the first */
    uint64_t skipped;      /* requests failed at once with MB_EBACKOFF */
    uint64_t broadcasts;
    uint64_t reopens;       /* the line lost, or failed to open, and opened again later */
    uint64_t writes;        /* write calls to the line */
    uint32_t queued;        /* requests outstanding now (waiting and on the wire) */
    uint32_t units_skipped; /* units backing off now */
};

/* Creates the bus master on `loop`; it opens the line when the loop next runs. Returns 0,
 * MB_EINVAL (no path and no address, a setting out of range), MB_ENOMEM. */
MB_API int mb_rtu_bus_create(struct mb_loop *loop, const struct mb_rtu_bus_config *config,
                             struct mb_rtu_bus **bus);

/* Completes what is outstanding with MB_ECANCELED, closes the line and frees the bus. Not from
 * one of its own callbacks. NULL is ignored. */
MB_API void mb_rtu_bus_destroy(struct mb_rtu_bus *bus);

/*
 * Queues a request PDU for `unit_id` (0..247) with a deadline of `timeout_ms` from now (0: the
 * config's). `done` is called exactly once, from the loop (never inside this call); the PDU is
 * copied. Returns 0, MB_ELIMIT (queue full), MB_ECLOSED (the line is down), MB_EINVAL (a
 * reserved unit, a broadcast of a function that is not a write, a PDU that does not fit).
 */
MB_API int mb_rtu_bus_submit(struct mb_rtu_bus *bus, uint8_t unit_id, const uint8_t *pdu,
                             size_t length, uint32_t timeout_ms, mb_async_done done, void *data);

MB_API enum mb_async_state mb_rtu_bus_state(const struct mb_rtu_bus *bus);
/* Requests submitted and not yet completed. */
MB_API size_t mb_rtu_bus_outstanding(const struct mb_rtu_bus *bus);
MB_API void mb_rtu_bus_stats(const struct mb_rtu_bus *bus, struct mb_rtu_bus_stats *stats);

/* Whether a function code is safe to repeat (reads that change nothing): 1 or 0. */
MB_API int mb_function_is_idempotent(uint8_t function);

#ifdef __cplusplus
}
#endif

#endif
