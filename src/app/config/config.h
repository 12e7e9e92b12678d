/* SPDX-License-Identifier: MIT */
/*
 * The configuration of `mbsec serve` and `mbsec gateway`: defaults, then a YAML file (--config),
 * then command-line flags on top. One format for both programs, one structure for each: the
 * front part both read (struct front_config), then serve's data model (struct serve_config) or
 * the gateway's devices and guard (struct gateway_config). The keys of one program that mean
 * nothing to the other (units for serve, backends for gateway) are refused by the other.
 * docs/configuration.md documents every key with an example.
 */
#ifndef MBSEC_CONFIG_CONFIG_H
#define MBSEC_CONFIG_CONFIG_H

#include <stddef.h>
#include <stdint.h>

#include "app/common/log.h"
#include "mbsec/client.h"
#include "mbsec/gateway.h"
#include "mbsec/model.h"
#include "mbsec/policy.h"
#include "mbsec/server.h"

#define CONFIG_MAX_LISTEN 16
#define CONFIG_MAX_UNITS 256
#define CONFIG_MAX_FIFOS 64
#define CONFIG_TLS_PORT "802" /* Modbus/TCP Security's port, for tls.listen without one */
#define CONFIG_MAX_BACKENDS 256
/* A backend's limits are the library's: MB_GATEWAY_MAX_CONNECTIONS and MB_GATEWAY_MAX_SLOTS
 * (mbsec/gateway.h), MB_ASYNC_MAX_IN_FLIGHT and MB_ASYNC_MAX_QUEUED (mbsec/client.h). */

/* backends[N]: a device behind the gateway. Strings are owned; TLS paths are resolved against
 * the configuration file's directory. */
struct config_backend {
    char *name;            /* name: unique, letters, digits, '-', '_', '.' */
    char *address;         /* address: "host:port" (":502" added when no port was given) */
    uint32_t connections;  /* connections: 1..64, default 1 */
    uint32_t timeout_ms;   /* timeout: default 1000 */
    uint32_t in_flight;    /* in_flight: per connection, 1..4096, default 16 */
    uint32_t queue;        /* queue: per connection, 1..60000, default 256 */
    uint32_t share;        /* share: requests one client identity may hold queued or in flight;
                              0: the default, a quarter of connections x (in_flight + queue) */
    char *tls_certificate; /* tls.certificate: the gateway's client certificate; NULL: plain
                              Modbus/TCP to the device */
    char *tls_key;         /* tls.key */
    char *tls_ca;          /* tls.ca: PEM file or hashed directory; NULL with a pin */
    char *tls_pin;         /* tls.pin: "SHA256:..." of the device's certificate, or NULL */
    char *tls_server_name; /* tls.server_name: NULL means the host of `address` */
    /* The RTU kinds (docs/serial.md): serial (a line at `serial`) or framing: rtu (RTU over
     * TCP to `address`); MB_GATEWAY_LINK_TCP otherwise. */
    enum mb_gateway_link link;
    char *serial;                        /* serial: the line's path */
    struct mb_serial_config serial_line; /* baud, parity, data_bits, stop_bits, rs485 */
    int echo;                            /* echo: the adapter echoes what it sends */
    uint32_t answer_timeout_ms;          /* answer_timeout: per attempt; default 500 */
    uint32_t pause_ms;                   /* pause: between transactions; default 0 */
    uint32_t open_pause_ms;              /* open_pause: after the line opens; default 0 */
    uint32_t retries;                    /* retries: extra attempts for reads; default 0 */
    uint32_t unit_failures;              /* unit_failures: default 3 */
    uint32_t unit_backoff_ms;            /* unit_backoff: default 10 s */
    size_t line, column; /* where the backend starts in the file, from 1 (for messages) */
};

/* What protects and watches the gateway beyond the policy (gateway only; src/app/config/watch.c).
 * Strings are owned; paths are resolved against the configuration file's directory. */
enum config_over_rate {
    OVER_RATE_BUSY = 0, /* answer exception 06 (server device busy): the client retries later */
    OVER_RATE_DROP = 1, /* send nothing */
    OVER_RATE_CLOSE = 2 /* close the connection */
};

/* The client side of TLS to a collector or a broker (audit.syslog_tls, mqtt.tls); paths
 * resolved against the configuration file's directory; NULL: not given. */
struct config_sink_tls {
    char *certificate;
    char *key;
    char *ca;
    char *pin;
    char *server_name;
};

/* mqtt: the broker the gateway publishes its audit records, status and metrics to. */
struct config_mqtt {
    char *broker;                 /* mqtt.broker: "tcp:HOST:PORT" or "tls:HOST:PORT"; NULL: none */
    struct config_sink_tls tls;   /* mqtt.tls, for tls: */
    char *name;                   /* mqtt.name: the gateway's name; NULL: the host name */
    char *prefix;                 /* mqtt.prefix: topic prefix; NULL: "mbsec/NAME" */
    char *client_id;              /* mqtt.client_id; NULL: "mbsec-NAME" */
    char *username;               /* mqtt.username; NULL: none */
    char *password_file;          /* mqtt.password_file: its first line; NULL: none */
    int protocol;                 /* mqtt.protocol: 4 ("3.1.1", the default) or 5 */
    uint32_t keepalive_ms;        /* mqtt.keepalive: default 30s */
    uint32_t metrics_interval_ms; /* mqtt.metrics_interval: default 60s; 0: no snapshots */
    int audit;                    /* mqtt.audit: publish the audit records; default 1 */
};

struct config_guard {
    char *audit_file; /* audit.file: JSON lines appended here; NULL: none */
    /* audit.syslog: "unix", "unix:PATH", "udp:HOST:PORT", "tcp:HOST:PORT" or "tls:HOST:PORT";
     * NULL: none */
    char *audit_syslog;
    struct config_sink_tls audit_syslog_tls; /* audit.syslog_tls, for tls: */
    char *audit_spool;                       /* audit.spool: the network sinks' spool directory */
    uint64_t audit_spool_bytes;              /* audit.spool_size: per sink; 0: 64 MiB */
    struct config_mqtt mqtt;                 /* mqtt: */
    int audit_reads;      /* audit.reads: a record for every allowed read too; default 0 */
    char *metrics_listen; /* metrics.listen: "host:port" of the Prometheus endpoint; NULL: none */
    uint32_t rate;        /* limits.rate: requests per second per connection; 0: no limit */
    uint32_t burst;       /* limits.burst: requests at once above the rate; 0: the rate (min 1) */
    enum config_over_rate over_rate; /* limits.over_rate: busy | drop | close */
    /* limits.over_share: what a request gets when its identity holds its share of a backend
     * (busy: exception 06 | drop | close) */
    enum config_over_rate over_share;
    uint32_t alert_window_ms;    /* alerts.window: 10s */
    uint32_t alert_scan_units;   /* alerts.scan_units: distinct unit ids from one source; 8 */
    uint32_t alert_denials;      /* alerts.denials: denials for one source; 10 */
    uint32_t alert_malformed;    /* alerts.malformed: malformed frames from one source; 5 */
    uint32_t alert_rate_limited; /* alerts.flood: requests over the rate from one source; 50 */
};

/* What both daemons read: the front that faces the clients (listeners, TLS, limits), the
 * process (workers, user, logging) and the policy that decides each request. */
struct front_config {
    /* listen: addresses "host:port"; none given means the default "0.0.0.0:502" and
     * "[::]:502" (the tool decides). */
    char *listen[CONFIG_MAX_LISTEN];
    size_t listen_count;
    int workers;                    /* workers: 1..64, default 1 */
    char *user;                     /* user: drop privileges to this user after binding */
    enum log_format log_format;     /* log.format: plain | json */
    enum mb_log_level log_level;    /* log.level: error | warning | info | debug */
    struct mb_server_limits limits; /* limits.* (0 = default) */
    uint32_t shutdown_grace_ms;     /* limits.shutdown_grace, default 5000 */

    /* policy: the compiled authorization rules, owned (the program's free destroys it, its copy
     * copies it). NULL when no file gave a policy: the server then denies every
     * request it would have checked. */
    struct mb_policy *policy;
    /* authorize_plain: plain-TCP requests are checked against the policy too (serve's default
     * 0: only requests over TLS are, and plain ones are served as before; the gateway's 1). */
    int authorize_plain;
    /* policy_mode: monitor: the rules that refuse (unless a rule says mode: enforce) and the
     * default deny are in monitor mode: what they refuse is served and reported (would_deny) */
    int policy_monitor;
    /* The rules of `policy` as written, one line per rule in order ("roles: [operator],
     * preset: read-only, action: allow"; the name left out), for --check; owned, NULL without
     * a policy. */
    char *policy_text;

    /* tls: Modbus/TCP Security. Listening addresses "host:port" (a host given without a port
     * gets 802); none means no TLS listener. When there are some, certificate, key and ca are
     * set. Paths are owned and already resolved against the configuration file's directory. */
    char *tls_listen[CONFIG_MAX_LISTEN];
    size_t tls_listen_count;
    char *tls_certificate;             /* tls.certificate: PEM, the server's chain */
    char *tls_key;                     /* tls.key: PEM private key */
    char *tls_ca;                      /* tls.ca: PEM file or hashed directory of client CAs */
    char *tls_crl;                     /* tls.crl: PEM CRL file, or NULL */
    int tls_session_tickets;           /* tls.session_tickets: default 0 (session ids only) */
    uint32_t tls_handshake_timeout_ms; /* tls.handshake_timeout: default 10000 */
};

/* mbsec serve: the front, and the data model it answers from (units, persist, identity). */
struct serve_config {
    struct front_config front;
    /* model.units points into `units`, fifos into `fifos`, strings are owned by this struct. */
    struct mb_model_config model;
    struct mb_unit_config units[CONFIG_MAX_UNITS];
    struct mb_fifo_config fifos[CONFIG_MAX_FIFOS];
    size_t fifo_count;
    char *strings[16]; /* owned copies behind identity and persist_path */
    size_t string_count;
    uint8_t server_id[251];
};

/* mbsec gateway: the front, the devices it forwards to, how its policy reads unit ids, and
 * what guards and watches it (audit, alerts, rate, metrics). */
struct gateway_config {
    struct front_config front;
    /* policy_units: 0 `device` (the default: a rule on a front unit covers every front
     * unit routed to the same device), 1 `front` (front unit ids only). */
    int policy_front_units;
    /* What --check says about the policy beyond the rules (owned, one line each, or NULL): rules
     * whose units reach a device that other front units reach too. */
    char *policy_notes;

    /* backends: the devices, and the routes from front unit ids to them (each
     * front unit at most once; routes[].backend indexes `backends`). */
    struct config_backend backends[CONFIG_MAX_BACKENDS];
    size_t backend_count;
    struct mb_gateway_route routes[256];
    size_t route_count;

    /* audit, metrics, alerts and the rate limit. */
    struct config_guard guard;
};

/* The built-in defaults of mbsec serve: the default simulator of model.h, no listen addresses,
 * plain info logging, default limits. */
void config_serve_defaults(struct serve_config *config);

/* The defaults of mbsec gateway: the same front, with authorize_plain on (a gateway exists to
 * filter: plain requests go through the policy too), no backends, the guard's defaults. */
void config_gateway_defaults(struct gateway_config *config);

/*
 * Loads a YAML file over `config` (which holds defaults or an earlier load). On error returns
 * MB_ECONFIG (or MB_ESYSTEM when the file cannot be read) and writes one line to `error`:
 * "FILE:LINE:COLUMN: what is wrong" — unknown keys, wrong types, values out of range,
 * inconsistent tables and keys of the other program are all errors; nothing is silently
 * ignored. On error `config` is left as it was (so a reload can keep the old one).
 */
int config_serve_load(const char *path, struct serve_config *config, char *error,
                      size_t error_capacity);
int config_gateway_load(const char *path, struct gateway_config *config, char *error,
                        size_t error_capacity);

/* Frees what a config owns (listen strings, user, TLS strings, the policy; the model's strings,
 * or the backends and the guard's strings) and resets it to its program's defaults. */
void config_serve_free(struct serve_config *config);
void config_gateway_free(struct gateway_config *config);

/* Copies `source` into `target` deeply (target must be freed or fresh), fixing serve's internal
 * pointers; the policy is copied too (mb_policy_copy()). Returns 0 or MB_ENOMEM. */
int config_serve_copy(struct serve_config *target, const struct serve_config *source);
int config_gateway_copy(struct gateway_config *target, const struct gateway_config *source);

/* mbsec gateway runs one event loop for now: it carries the front connections and every
 * backend's pool. The one rule for the file's `workers` and for --workers: NULL when the
 * gateway may run `workers` event loops, else why not (to follow "workers: " or "--workers: "). */
const char *config_gateway_workers_refused(uint64_t workers);

/* Copies `address` ("host:port", "host", "[v6]:port" or "[v6]") to `out`, with
 * ":default_port" added when it names no port. */
void config_with_port(const char *address, const char *default_port, char *out, size_t size);

#endif
