/* SPDX-License-Identifier: MIT */
/*
 * The Modbus/TCP server runtime: listeners and connections on an event loop (loop.h), MBAP
 * framing, pipelining, limits and timeouts. For every well-formed request it calls the
 * application's handler with the unit id, the decoded request and the peer, and sends back
 * what the handler returns. The data model in model.h is one such handler.
 *
 * What the server answers by itself, without the handler:
 *   - a PDU that does not decode: the exception mb_error_exception() names (01 or 03);
 *   - an MBAP frame with a protocol id other than 0: nothing (dropped and counted);
 *   - an MBAP length outside 2..254: the connection is closed (the stream cannot be resynced);
 *   - a handler error (negative return): exception 04, and a log line.
 *
 * Pipelining: every complete frame in a read is served, and the responses of one read are
 * written together, in order. Responses a handler defers may complete in any order; Modbus/TCP
 * clients match them by transaction id.
 *
 * The library never prints: log lines go to the config's log callback as structured events.
 */
#ifndef MBSEC_SERVER_H
#define MBSEC_SERVER_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/export.h"
#include "mbsec/loop.h"
#include "mbsec/pdu.h"
#include "mbsec/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mb_server;

/* ---- requests and handlers ---- */

struct mb_server_request {
    const struct mb_peer *peer; /* valid during the call only */
    uint64_t connection_id;     /* unique in the process, never reused */
    uint64_t token;             /* names this request for mb_server_reply() */
    uint16_t transaction_id;
    uint8_t unit_id;
    const struct mb_request *request; /* decoded (views into `pdu`); NULL if it did not decode */
    int decode_error;                 /* with request NULL: why (MB_E*); see pass_undecodable */
    const uint8_t *pdu;
    size_t pdu_length;
};

/* Returned by a handler that will answer later with mb_server_reply(). */
#define MB_SERVER_DEFER 0x7FFF
/* Returned by a handler to send nothing and close the connection once the answers already owed
 * on it are written (an authorization policy's "close" action). */
#define MB_SERVER_CLOSE 0x7FFE

/*
 * Writes the response PDU (function code first, at most MB_PDU_MAX bytes, an exception response
 * if need be) into `response` and returns its length; or returns 0 to send nothing (FC 8
 * listen-only mode); or MB_SERVER_DEFER to answer later; or MB_SERVER_CLOSE to close the
 * connection without an answer; or a negative MB_E* error, which the
 * server answers with exception 04 and logs.
 */
typedef int (*mb_server_handler)(void *data, const struct mb_server_request *request,
                                 uint8_t *response);

/*
 * Answers a deferred request (length 0: send nothing, but release its in-flight slot). Returns
 * 0, MB_ECLOSED when the connection has gone (the answer is dropped), MB_EINVAL for an unknown
 * token or a bad PDU length. Call it from the loop's thread.
 */
MB_API int mb_server_reply(struct mb_server *server, uint64_t token, const uint8_t *response,
                           size_t length);

/* ---- logging ---- */

enum mb_log_level {
    MB_LOG_ERROR = 0,
    MB_LOG_WARNING = 1,
    MB_LOG_INFO = 2,
    MB_LOG_DEBUG = 3,
};

/*
 * One log event. `event` is a fixed word: "listening", "connection_opened",
 * "connection_closed", "connection_refused", "protocol_error", "handler_error",
 * "listener_error", "shutdown", "tls_established", "tls_failed", "tls_revoked". Fields that do
 * not apply are NULL or 0.
 */
struct mb_tls_session_info;

struct mb_log_event {
    enum mb_log_level level;
    const char *event;
    const char *listener; /* the listening address, "0.0.0.0:502" */
    const char *peer;     /* "192.0.2.1:50123" */
    const char *source;   /* the peer's source (struct mb_peer): "192.0.2.1", "2001:db8::/64" */
    uint64_t connection_id;
    const char *reason;   /* why: "idle timeout", "max_connections (1024) reached", ... */
    uint64_t requests;    /* connection_closed: requests served on the connection */
    uint64_t duration_ms; /* connection_closed: how long it was open */
    const char *role;     /* the peer's TLS role, once known; NULL otherwise */
    /* tls_established: the session (version, cipher, subject, role; tls.h); NULL otherwise */
    const struct mb_tls_session_info *tls;
};

typedef void (*mb_log_fn)(void *data, const struct mb_log_event *event);

/* ---- configuration ---- */

struct mb_server_limits {
    uint32_t max_connections;      /* whole server; default 1024 */
    uint32_t max_per_source;       /* per source IP address; default 64 */
    uint32_t idle_timeout_ms;      /* no complete request for this long closes; default 60000 */
    uint32_t max_in_flight;        /* requests read but not yet answered; default 16 */
    uint32_t handshake_timeout_ms; /* TLS: a handshake not finished by then closes; 10000 */
    /* What one source is (struct mb_peer, source): addresses that share their first N bits.
     * IPv4 1..32, default 32 (one address); IPv6 1..128, default 64 (one host's /64, which a
     * single machine can fill with addresses of its own). 0: the default. */
    uint8_t source_prefix_ipv4;
    uint8_t source_prefix_ipv6;
};

/*
 * Servers that count their limits together: the workers of one process, each with its own
 * loop, share one group so that max_connections and max_per_source hold for all of them.
 * Thread-safe; destroy it after every server that uses it.
 */
struct mb_server_group;
MB_API int mb_server_group_create(struct mb_server_group **group);
MB_API void mb_server_group_destroy(struct mb_server_group *group);

struct mb_server_config {
    struct mb_server_limits limits; /* fields left 0 take the defaults */
    mb_server_handler handler;
    void *handler_data;
    /* 0: the server answers PDUs that do not decode itself (mb_error_exception(): 01 or 03).
     * 1: the handler gets them too, with request NULL and decode_error set, so that it can
     * apply its own rules first (an unknown unit, listen-only, 01 before 03). */
    int pass_undecodable;
    struct mb_server_group *group; /* NULL: this server counts its limits alone */
    mb_log_fn log;                 /* NULL: silent */
    void *log_data;
    /* Called for every connection refused at accept (over max_connections or max_per_source,
     * shutting down, out of memory), before it is closed, with the reason; NULL: not called.
     * The "connection_refused" log line is limited to 10 a second so that a flood cannot become
     * a log flood; this hook is not, so that an application can count refusals per source. */
    void (*on_refused)(void *data, const struct mb_peer *peer, const char *listener,
                       const char *reason);
    void *refused_data;
};

/* The defaults of struct mb_server_limits. */
MB_API struct mb_server_limits mb_server_default_limits(void);

/* ---- lifecycle ---- */

/* Creates a server on `loop`. Returns 0, MB_EINVAL (no handler) or MB_ENOMEM. */
MB_API int mb_server_create(struct mb_loop *loop, const struct mb_server_config *config,
                            struct mb_server **server);

/*
 * Binds and listens on "host:port" ("[::]:502", "0.0.0.0:5020", "127.0.0.1:0" for an ephemeral
 * port), with SO_REUSEADDR and IPV6_V6ONLY for IPv6 addresses. The port is this server's alone:
 * while anyone else listens there the call fails with MB_EADDRINUSE, even though the socket
 * carries SO_REUSEPORT so that this server's own workers can join it with
 * mb_server_listen_shared(). Returns the listener's index (>= 0), or MB_EADDRESS, MB_EACCES (a
 * privileged port: see docs/port-502.md), MB_EADDRINUSE, MB_ESYSTEM.
 */
MB_API int mb_server_listen(struct mb_server *server, const char *address, int backlog);

/* Listens on an address another server of this process already listens on with
 * mb_server_listen() (a worker joining the first one); the kernel spreads new connections
 * over them (SO_REUSEPORT). */
MB_API int mb_server_listen_shared(struct mb_server *server, const char *address, int backlog);

/* Serves an already listening socket (systemd socket activation, or one shared by workers);
 * the server makes it non-blocking and closes it when destroyed only if `owned`. */
MB_API int mb_server_adopt(struct mb_server *server, int fd, int owned);

/* The bound address of listener `index` as "host:port" (the real port after binding port 0).
 * Returns the length, or MB_EINVAL. */
MB_API int mb_server_listener_address(const struct mb_server *server, int index, char *text,
                                      size_t capacity);

/* The listening descriptor of listener `index`, or MB_EINVAL. */
MB_API int mb_server_listener_fd(const struct mb_server *server, int index);

/*
 * Makes listener `index` a Modbus/TCP Security listener: every connection it accepts is a TLS
 * server transport of `tls` (tls.h), counted against the limits before its handshake starts,
 * and given limits.handshake_timeout_ms to finish it. The handshake's outcome is logged
 * ("tls_established" with version, cipher and role, or "tls_failed" with the cause), and the
 * handler sees the role in request->peer. The listener holds a reference to `tls` (the caller
 * may destroy its own).
 *
 * Called again while serving, with a new context (a rotated certificate or key, a new CA or
 * CRL), it rotates: new connections get the new context, established ones keep their session,
 * but each whose client certificate the new context no longer accepts (revoked by the new CRL,
 * or from a CA no longer trusted) is closed, after a "tls_revoked" line naming the reason; a
 * connection still in its handshake is checked the same way when that is done. Not from inside
 * a handler. Returns the number of connections closed (0 or more), or MB_EINVAL.
 */
struct mb_tls_context;
MB_API int mb_server_listener_set_tls(struct mb_server *server, int index,
                                      struct mb_tls_context *tls);

/* mb_server_listener_set_tls(..., tls) for every listener that has `previous`. Returns the
 * number of connections closed, or MB_EINVAL. */
MB_API int mb_server_replace_tls(struct mb_server *server, struct mb_tls_context *previous,
                                 struct mb_tls_context *tls);

/* Replaces limits and handler while serving (configuration reload); connections stay open. */
MB_API void mb_server_set_limits(struct mb_server *server, const struct mb_server_limits *limits);
MB_API void mb_server_set_handler(struct mb_server *server, mb_server_handler handler, void *data);

/*
 * Graceful shutdown: stops accepting, stops reading new requests, and closes each connection
 * once its answered responses are written (at most `grace_ms` later). Returns at once;
 * mb_server_idle() says when everything is closed.
 */
MB_API void mb_server_shutdown(struct mb_server *server, uint32_t grace_ms);

/* 1 when, after mb_server_shutdown(), no connection is left. */
MB_API int mb_server_idle(const struct mb_server *server);

/* Closes listeners and connections and frees the server. */
MB_API void mb_server_destroy(struct mb_server *server);

struct mb_server_stats {
    uint64_t connections;     /* open now */
    uint64_t accepted;        /* since start */
    uint64_t refused;         /* over a limit */
    uint64_t requests;        /* frames handed to the handler or answered by the server */
    uint64_t responses;       /* response frames written */
    uint64_t exceptions;      /* of them, exception responses */
    uint64_t discarded;       /* frames dropped for a protocol id other than 0 */
    uint64_t protocol_errors; /* connections closed for a broken stream */
    uint64_t timeouts;        /* connections closed by the idle (or handshake) timeout */
    uint64_t tls_handshakes;  /* TLS handshakes completed */
    uint64_t tls_failures;    /* TLS handshakes that failed */
    uint64_t tls_revoked;     /* connections closed: a new context refused their certificate */
    uint64_t writes;          /* write calls to connections (sends; TLS: records written) */
};

MB_API void mb_server_get_stats(const struct mb_server *server, struct mb_server_stats *stats);

/* ==================== serial lines: an RTU slave with the same handler ==================== */

struct mb_serial_server;
struct mb_serial_config;

struct mb_serial_server_config {
    mb_server_handler handler; /* as for the TCP server; MB_SERVER_DEFER is not supported */
    void *handler_data;
    mb_log_fn log; /* NULL: no log */
    void *log_data;
    /* Which unit ids (1..247) this slave answers: 1 to answer, 0 to stay silent, as a device on
     * a shared bus must for the others' addresses. NULL: every unit. A broadcast write (unit 0)
     * is handed to the handler once for each unit this accepts, with that unit's id (once with
     * unit id 0 when it is NULL), and never answered. */
    int (*answers_unit)(void *data, uint8_t unit);
    void *unit_data;
    uint32_t silence_us; /* t3.5; 0: from the line's baud rate (mb_rtu_timing()) */
    uint32_t reopen_ms;  /* a line that went away is opened again this often; 0: 1000 */
    int ascii; /* 1: Modbus ASCII (':', hex, LRC, CR LF) instead of RTU; frames end at CR LF */
    /* mb_serial_server_adopt() only: called (with closed_data) once the stream ended (the peer
     * closed it, or it failed), from the loop; destroy the server then or later, but not from
     * inside this call. */
    void (*on_closed)(void *closed_data, struct mb_serial_server *server);
    void *closed_data;
};

struct mb_serial_server_stats {
    uint64_t frames;     /* good frames seen, for any unit */
    uint64_t requests;   /* of them, handed to the handler */
    uint64_t responses;  /* answers written */
    uint64_t broadcasts; /* broadcast writes executed */
    uint64_t ignored;    /* frames for other units, broadcasts of reads */
    uint64_t errors;     /* frames dropped: bad CRC, too long, cut short */
    uint64_t reopened;   /* times the line was opened again after it went away */
};

/*
 * Serves the serial line at `path` (opened with mb_serial_open(), transport.h, and `line`) as a
 * Modbus RTU slave on `loop`: frames are cut by length and by silence (mb_rtu_decoder), each
 * request for a unit it answers goes to the handler exactly as a TCP request would (peer text
 * "serial:PATH", not secure; transaction id 0), and the answer is written after the line has
 * been quiet for t3.5. A request that does not decode is answered with the exception the spec
 * names. A line that goes away is closed and opened again every reopen_ms. Returns 0, or the
 * errors of mb_serial_open() with `error` saying why, MB_EINVAL, MB_ENOMEM.
 */
MB_API int mb_serial_server_create(struct mb_loop *loop, const char *path,
                                   const struct mb_serial_config *line,
                                   const struct mb_serial_server_config *config,
                                   struct mb_serial_server **server, char *error,
                                   size_t error_size);

/*
 * Serves a stream that is already open, `fd` (a TCP connection from a master that speaks RTU
 * over TCP, as to a serial-to-Ethernet converter), the same way as a line: RTU frames (or ASCII),
 * the units, the handler, broadcasts. The server takes `fd` (it closes it). A stream does not
 * come back: when it ends, config->on_closed is called instead of opening it again. `name` is
 * the peer in log lines ("127.0.0.1:40312"). The silence that ends a frame whose length cannot
 * be told is config->silence_us, 20 ms when 0 (TCP segments may be delayed). Returns 0,
 * MB_EINVAL, MB_ENOMEM, MB_ESYSTEM.
 */
MB_API int mb_serial_server_adopt(struct mb_loop *loop, int fd, const char *name,
                                  const struct mb_serial_server_config *config,
                                  struct mb_serial_server **server);

MB_API void mb_serial_server_get_stats(const struct mb_serial_server *server,
                                       struct mb_serial_server_stats *stats);

/* Closes the line and frees the server. NULL is ignored. */
MB_API void mb_serial_server_destroy(struct mb_serial_server *server);

#ifdef __cplusplus
}
#endif

#endif
