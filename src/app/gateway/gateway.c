/* SPDX-License-Identifier: MIT */
/*
 * mbsec gateway: the security gateway in front of Modbus/TCP devices. The front is mbsec
 * serve's (plain and Modbus/TCP Security listeners, src/app/daemon/front.c); every request goes
 * through the policy (plain ones too, unless authorize_plain is false), and what it allows is
 * forwarded by unit id to the backends through the gateway core (mbsec/gateway.h). One event
 * loop carries the listeners, the front connections and the backend pools; signals arrive on it
 * through a signalfd.
 */
#include <errno.h>
#include <getopt.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/commands.h"
#include "app/common/log.h"
#include "app/common/policy_hash.h"
#include "app/config/config.h"
#include "app/daemon/arguments.h"
#include "app/daemon/front.h"
#include "app/daemon/http.h"
#include "app/daemon/ratelimit.h"
#include "app/daemon/reload.h"
#include "app/gateway/watch.h"
#include "mbsec/client.h"
#include "mbsec/error.h"
#include "mbsec/gateway.h"
#include "mbsec/loop.h"
#include "mbsec/policy.h"
#include "mbsec/server.h"
#include "mbsec/tls.h"

#define PROGRAM "mbsec gateway"
#define NO_ROUTE 0xFFFF

/* The gateway has only the daemons' options (app/daemon/arguments.h), and --workers 1. */
struct options {
    struct daemon_arguments common;
};

/* What the gateway runs with: the configuration, and what was made from it at the start. */
struct setup {
    struct gateway_config config;
    /* The backends' TLS contexts: made by prepare(), then the gateway core's once it runs them
     * (it releases each when its backend goes); stamps say which files they were made from. */
    struct mb_tls_context *backend_tls[CONFIG_MAX_BACKENDS];
    char backend_stamp[CONFIG_MAX_BACKENDS][512];
    int backend_tls_given; /* 1 once the gateway core owns backend_tls */
    struct mb_gateway_backend backends[CONFIG_MAX_BACKENDS];
    uint16_t route_backend[256]; /* front unit -> backend index, or NO_ROUTE */
    uint8_t route_unit[256];     /* front unit -> device unit */
};

struct gateway_tool {
    struct options options;
    struct setup *setup;       /* in force; a reload replaces it */
    struct reload_front front; /* the listeners' TLS context, and what needs a restart */
    struct logger logger;
    /* The policy in force: setup->config.front.policy (one thread decides and reloads). */
    struct mb_policy *policy;
    int authorize_plain;
    struct mb_loop *loop;
    struct mb_server *server;
    struct mb_gateway *gateway;
    struct watch *watch;
    struct http_server *metrics;
    int signal_fd;
    int shut_down;
};

static void usage(FILE *out) {
    fputs("usage: mbsec gateway --config FILE [options]\n"
          "       mbsec gateway --check FILE [--explain WHO UNIT FUNCTION [ADDRESS ...]]\n"
          "\n"
          "Puts Modbus/TCP devices behind a security gateway: clients connect to its plain\n"
          "(listen) and Modbus/TCP Security (tls) listeners, every request is checked against\n"
          "the policy (plain ones too, unless authorize_plain: false), and what the policy\n"
          "allows is forwarded by unit id to the devices under backends. Denials are answered\n"
          "as the rule says and logged as 'denied'; allowed writes are logged as 'audited'.\n"
          "With policy_mode: monitor, what the policy would refuse is forwarded and reported as\n"
          "'would_deny' instead (docs/learning.md: from no policy to an enforced one).\n"
          "\n"
          "  --config FILE            the YAML configuration (docs/configuration.md: listen,\n"
          "                           tls, limits, log, user, authorize_plain, policy, backends)\n"
          "  --check FILE             validate FILE (certificates and device addresses too),\n"
          "                           print the listeners, backends, routes and rules, and\n"
          "                           exit: 0 when it is valid, 2 with the error when not\n"
          "  --explain WHO UNIT FUNCTION [ADDRESS [QUANTITY | VALUE...]]\n"
          "                           with --check: what the policy decides for that request\n"
          "                           and why (exit 0 allowed, 1 refused); WHO is a role\n"
          "                           (TLS), a source address (plain TCP) or ROLE@ADDRESS\n"
          "  --workers N              event loops; the gateway runs one for now (N must be 1)\n"
          "  --log-format plain|json  log lines on stderr (default plain)\n"
          "  --log-level LEVEL        error, warning, info (default), debug\n"
          "  -h, --help               this text\n"
          "\n"
          "Unit ids with no route, and devices that are down, are answered with exception 0A\n"
          "(gateway path unavailable); a device that does not answer in time with 0B.\n"
          "With audit, alerts and metrics sections it writes JSON audit records (a file,\n"
          "syslog; over TCP or TLS through a spool that loses nothing), raises alerts, and\n"
          "serves Prometheus metrics; with mqtt it publishes the records, its status and\n"
          "metrics to a broker (docs/fleet.md); limits.rate limits each connection.\n"
          "Signals: SIGTERM/SIGINT finish requests in flight and stop; SIGHUP reloads the\n"
          "file: policy, limits, logging, audit, mqtt, alerts, backends, routes and the TLS\n"
          "certificate, key, CA and CRL (without dropping clients, but closing those whose\n"
          "certificate the new CA or CRL refuses); listen, tls.listen, user and\n"
          "metrics.listen need a restart. A bad file is refused and the running\n"
          "configuration kept.\n",
          out);
}

static int parse_arguments(int argc, char **argv, struct options *options) {
    enum { OPT_WORKERS = DAEMON_OPT_NEXT };
    static const struct option table[] = {
        DAEMON_LONG_OPTIONS,
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    char workers_refused[200];
    daemon_arguments_init(&options->common);
    optind = 1;
    for (;;) {
        int option = getopt_long(argc, argv, "h", table, NULL);
        if (option == -1)
            break;
        const char *bad = NULL;
        if (option == OPT_WORKERS) {
            char *end;
            unsigned long long workers = strtoull(optarg, &end, 10);
            /* Anything but a number is refused as a number of event loops other than 1. */
            const char *refused =
                config_gateway_workers_refused(*optarg != '\0' && *end == '\0' ? workers : 0);
            if (refused != NULL) {
                snprintf(workers_refused, sizeof workers_refused, "--workers: %s", refused);
                bad = workers_refused;
            }
        } else if (option == 'h') {
            usage(stdout);
            return 1;
        } else if (option >= DAEMON_OPT_CONFIG && option < DAEMON_OPT_NEXT) {
            bad = daemon_argument(&options->common, option, optarg);
        } else {
            usage(stderr);
            return -1;
        }
        if (bad != NULL) {
            fprintf(stderr, PROGRAM ": %s\n", bad);
            return -1;
        }
    }
    int finished = daemon_arguments_finish(&options->common, PROGRAM, argc, argv, optind);
    if (finished == -2)
        usage(stderr);
    if (finished != 0)
        return -1;
    if (options->common.config_path == NULL) {
        fprintf(stderr, PROGRAM ": --config FILE is needed: the backends and the policy are "
                                "only given in a file (docs/configuration.md)\n");
        return -1;
    }
    return 0;
}

/* ---- configuration ---- */

/*
 * Loads the file over the gateway's defaults, applies the flags, and checks what a gateway
 * needs beyond a well-formed file: devices to forward to, and a policy whenever requests are
 * checked. On error writes one line to `error`.
 */
static int load_config(const struct options *options, struct gateway_config *config, char *error,
                       size_t capacity) {
    config_gateway_defaults(config);
    if (config_gateway_load(options->common.config_path, config, error, capacity) != 0)
        return -1;
    if (options->common.log_format >= 0)
        config->front.log_format = (enum log_format)options->common.log_format;
    if (options->common.log_level >= 0)
        config->front.log_level = (enum mb_log_level)options->common.log_level;
    if (config->front.tls_handshake_timeout_ms)
        config->front.limits.handshake_timeout_ms = config->front.tls_handshake_timeout_ms;
    if (config->backend_count == 0) {
        snprintf(error, capacity,
                 "%s: no backends: a gateway forwards to the devices listed under backends "
                 "(docs/configuration.md#backends)",
                 options->common.config_path);
        return -1;
    }
    if (config->front.policy == NULL &&
        (config->front.authorize_plain || config->front.tls_listen_count > 0)) {
        snprintf(error, capacity,
                 "%s: no policy: the gateway checks every request %sagainst its policy, and "
                 "without one it would deny them all; add a policy section "
                 "(docs/configuration.md#policy)%s",
                 options->common.config_path,
                 config->front.authorize_plain ? "(authorize_plain defaults to true) "
                                               : "over TLS ",
                 config->front.authorize_plain
                     ? ", or authorize_plain: false to forward plain requests unchecked"
                     : "");
        return -1;
    }
    return 0;
}

/*
 * What the configuration names outside itself: the front TLS context, each backend's address
 * (resolved now, once) and TLS context, and the route table. Returns 0 or -1 with one line in
 * `error`, "FILE:LINE:COLUMN: backends[N]...: what is wrong" for a backend.
 */
static void release_tls(void *context) {
    mb_tls_context_destroy(context);
}

/* What a backend's TLS context was made from: the settings and each file's identity and
 * modification time, so that a reload makes a new context when a file was replaced (a rotated
 * certificate) and keeps the running one, and its connections, otherwise. */
static void tls_stamp(const struct config_backend *given, char *stamp, size_t capacity) {
    const char *const files[] = {given->tls_certificate, given->tls_key, given->tls_ca};
    snprintf(stamp, capacity, "%s|%s|%s", given->address, given->tls_pin ? given->tls_pin : "",
             given->tls_server_name ? given->tls_server_name : "");
    front_stamp_files(stamp, capacity, files, sizeof files / sizeof files[0]);
}

/* A running TLS context for the same files, or NULL. */
static struct mb_tls_context *running_tls(const struct setup *running, const char *stamp) {
    for (size_t i = 0; running != NULL && i < running->config.backend_count; i++)
        if (running->backend_tls[i] != NULL && strcmp(running->backend_stamp[i], stamp) == 0)
            return running->backend_tls[i];
    return NULL;
}

static int prepare(struct setup *setup, const struct setup *running, const char *path, char *error,
                   size_t capacity) {
    struct gateway_config *config = &setup->config;
    setup->backend_tls_given = 0;
    for (size_t unit = 0; unit < 256; unit++)
        setup->route_backend[unit] = NO_ROUTE;
    for (size_t i = 0; i < config->route_count; i++) {
        setup->route_backend[config->routes[i].front_unit] = config->routes[i].backend;
        setup->route_unit[config->routes[i].front_unit] = config->routes[i].device_unit;
    }
    for (size_t i = 0; i < config->backend_count; i++) {
        const struct config_backend *given = &config->backends[i];
        struct mb_gateway_backend *backend = &setup->backends[i];
        const char *problem = NULL;
        memset(backend, 0, sizeof *backend);
        backend->name = given->name;
        backend->link = given->link;
        if (given->link != MB_GATEWAY_LINK_TCP) {
            backend->rtu.path = given->serial;
            backend->rtu.line = given->serial_line;
            backend->rtu.echo = given->echo;
            backend->rtu.answer_timeout_ms = given->answer_timeout_ms;
            backend->rtu.pause_ms = given->pause_ms;
            backend->rtu.open_pause_ms = given->open_pause_ms;
            backend->rtu.retries = given->retries;
            backend->rtu.unit_failures = given->unit_failures;
            backend->rtu.unit_backoff_ms = given->unit_backoff_ms;
        }
        setup->backend_tls[i] = NULL;
        setup->backend_stamp[i][0] = '\0';
        if (given->link == MB_GATEWAY_LINK_SERIAL) {
            backend->connections = 1;
            backend->max_in_flight = 1;
            backend->timeout_ms = given->timeout_ms;
            backend->max_queued = given->queue;
            backend->share = given->share;
            continue;
        }
        if (mb_address_parse(given->address, MB_DEFAULT_PORT, &backend->address,
                             &backend->address_length, &problem) != 0) {
            snprintf(error, capacity, "%s:%zu:%zu: backends[%zu].address: %s: %s", path,
                     given->line, given->column, i, given->address,
                     problem != NULL ? problem : "not an address");
            return -1;
        }
        backend->connections = given->connections;
        backend->timeout_ms = given->timeout_ms;
        backend->max_in_flight = given->in_flight;
        backend->max_queued = given->queue;
        backend->share = given->share;
        setup->backend_tls[i] = NULL;
        setup->backend_stamp[i][0] = '\0';
        if (given->tls_certificate == NULL)
            continue;
        tls_stamp(given, setup->backend_stamp[i], sizeof setup->backend_stamp[i]);
        backend->wrap = mb_tls_wrap;
        backend->wrap_release = release_tls;
        backend->wrap_data = running_tls(running, setup->backend_stamp[i]);
        if (backend->wrap_data != NULL) {
            setup->backend_tls[i] = backend->wrap_data; /* the running one: not this setup's */
            continue;
        }
        char host[256], detail[400];
        /* The name the device's certificate must carry, unless server_name says otherwise. */
        ratelimit_source_of(given->address, host, sizeof host);
        struct stat status;
        int directory =
            given->tls_ca != NULL && stat(given->tls_ca, &status) == 0 && S_ISDIR(status.st_mode);
        struct mb_tls_config tls = {
            .certificate_file = given->tls_certificate,
            .key_file = given->tls_key,
            .ca_file = directory ? NULL : given->tls_ca,
            .ca_directory = directory ? given->tls_ca : NULL,
            .pin = given->tls_pin,
            .server_name = given->tls_server_name != NULL ? given->tls_server_name : host,
            .resume = 1,
        };
        if (mb_tls_context_create(0, &tls, &setup->backend_tls[i], detail, sizeof detail) != 0) {
            snprintf(error, capacity, "%s:%zu:%zu: backends[%zu].tls: %s", path, given->line,
                     given->column, i, detail);
            return -1;
        }
        backend->wrap_data = setup->backend_tls[i];
    }
    return 0;
}

/* Frees what `setup` made and still owns; `running` (or NULL) holds contexts it shares. */
static void release_unshared(struct setup *setup, const struct setup *running) {
    for (size_t i = 0; i < CONFIG_MAX_BACKENDS; i++) {
        int shared = 0;
        for (size_t k = 0; running != NULL && k < CONFIG_MAX_BACKENDS && !shared; k++)
            shared = running->backend_tls[k] == setup->backend_tls[i];
        if (!setup->backend_tls_given && !shared)
            mb_tls_context_destroy(setup->backend_tls[i]);
        setup->backend_tls[i] = NULL;
    }
}

/* Frees what `setup` owns: its configuration, and the backend contexts it made that neither
 * the gateway core nor `running` (or NULL) holds. */
static void release(struct setup *setup, const struct setup *running) {
    release_unshared(setup, running);
    config_gateway_free(&setup->config);
}

/* ---- --check ---- */

static void format_duration(uint32_t milliseconds, char *text, size_t capacity) {
    if (milliseconds % 3600000 == 0)
        snprintf(text, capacity, "%uh", milliseconds / 3600000);
    else if (milliseconds % 60000 == 0)
        snprintf(text, capacity, "%um", milliseconds / 60000);
    else if (milliseconds % 1000 == 0)
        snprintf(text, capacity, "%us", milliseconds / 1000);
    else
        snprintf(text, capacity, "%ums", milliseconds);
}

/* The routes of one backend in front-unit order, runs of consecutive ids on one line:
 * "1 -> 1", "2-3 -> 5-6". */
static void print_routes(const struct setup *setup, size_t backend) {
    unsigned unit = 0;
    while (unit < 256) {
        if (setup->route_backend[unit] != backend) {
            unit++;
            continue;
        }
        unsigned first = unit;
        while (unit + 1 < 256 && setup->route_backend[unit + 1] == backend &&
               setup->route_unit[unit + 1] == setup->route_unit[unit] + 1)
            unit++;
        if (unit == first)
            printf("    front unit %u -> device unit %u\n", first, setup->route_unit[first]);
        else
            printf("    front units %u-%u -> device units %u-%u\n", first, unit,
                   setup->route_unit[first], setup->route_unit[unit]);
        unit++;
    }
}

/* --check: an RTU bus (a serial line, or RTU over TCP). */
static void print_bus(const struct setup *setup, const struct config_backend *backend, size_t i,
                      const char *timeout) {
    char answer[32], pause[32], open_pause[32], backoff[32];
    format_duration(backend->answer_timeout_ms, answer, sizeof answer);
    format_duration(backend->pause_ms, pause, sizeof pause);
    format_duration(backend->open_pause_ms, open_pause, sizeof open_pause);
    if (backend->pause_ms == 0)
        snprintf(pause, sizeof pause, "none");
    if (backend->open_pause_ms == 0)
        snprintf(open_pause, sizeof open_pause, "none");
    format_duration(backend->unit_backoff_ms ? backend->unit_backoff_ms : 10000, backoff,
                    sizeof backoff);
    if (backend->link == MB_GATEWAY_LINK_SERIAL) {
        const struct mb_serial_config *line = &backend->serial_line;
        printf("  %s  serial line %s, RTU, %u %u%c%u%s%s\n", backend->name, backend->serial,
               line->baud ? line->baud : 19200, line->data_bits ? line->data_bits : 8,
               line->parity ? line->parity : 'E', line->stop_bits ? line->stop_bits : 1,
               line->rs485 == MB_RS485_KERNEL ? ", RS-485 by the driver"
               : line->rs485 == MB_RS485_RTS  ? ", RS-485 by RTS toggled around each frame"
                                              : "",
               backend->echo ? ", echo dropped" : "");
    } else {
        char resolved[80] = "";
        mb_address_format((const struct sockaddr *)&setup->backends[i].address,
                          setup->backends[i].address_length, resolved, sizeof resolved);
        printf("  %s  %s (%s)  RTU over TCP\n", backend->name, backend->address, resolved);
    }
    printf("    one transaction at a time; timeout %s per request, %s per attempt, %u retr%s "
           "for reads; pause %s, after opening %s; %u queued\n",
           timeout, answer, backend->retries, backend->retries == 1 ? "y" : "ies", pause,
           open_pause, backend->queue);
    printf("    a unit that misses %u answers in a row is skipped for %s (answered 0B at once)\n",
           backend->unit_failures ? backend->unit_failures : 3, backoff);
    print_routes(setup, i);
}

/* The policy's notes (unit ids that reach one device through several front units), as
 * warnings after the rules. */
static void print_notes(const struct gateway_config *config) {
    const char *line = config->policy_notes;
    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        int length = end != NULL ? (int)(end - line) : (int)strlen(line);
        printf("warning: %.*s\n", length, line);
        line = end != NULL ? end + 1 : line + length;
    }
}

/* The same notes as log lines, at start and after a reload. */
static void log_notes(struct logger *logger, const struct gateway_config *config) {
    const char *line = config->policy_notes;
    while (line != NULL && *line != '\0') {
        const char *end = strchr(line, '\n');
        int length = end != NULL ? (int)(end - line) : (int)strlen(line);
        logger_message(logger, MB_LOG_WARNING, "policy_units", "%.*s", length, line);
        line = end != NULL ? end + 1 : line + length;
    }
}

static void print_setup(const struct setup *setup, const char *path) {
    const struct gateway_config *config = &setup->config;
    char timeout[32], idle[32];
    printf("%s: valid\n\n", path);
    printf("listen (plain Modbus/TCP; %s):\n",
           config->front.authorize_plain
               ? "every request checked against the policy"
               : "requests forwarded unchecked, authorize_plain is false");
    for (size_t i = 0; i < config->front.listen_count; i++)
        printf("  %s\n", config->front.listen[i]);
    if (config->front.listen_count == 0 && config->front.tls_listen_count == 0)
        printf("  0.0.0.0:502\n  [::]:502\n");
    if (config->front.listen_count == 0 && config->front.tls_listen_count > 0)
        printf("  (none)\n");
    if (config->front.tls_listen_count > 0) {
        printf("tls (Modbus/TCP Security; every request checked against the policy):\n");
        for (size_t i = 0; i < config->front.tls_listen_count; i++)
            printf("  %s\n", config->front.tls_listen[i]);
        printf("  certificate %s, key %s\n  client certificates from %s%s%s\n",
               config->front.tls_certificate, config->front.tls_key, config->front.tls_ca,
               config->front.tls_crl ? ", revocations in " : "",
               config->front.tls_crl ? config->front.tls_crl : "");
    }
    format_duration(config->front.limits.idle_timeout_ms, idle, sizeof idle);
    struct mb_server_limits limits = config->front.limits;
    struct mb_server_limits defaults = mb_server_default_limits();
    unsigned prefix4 =
        limits.source_prefix_ipv4 ? limits.source_prefix_ipv4 : defaults.source_prefix_ipv4;
    unsigned prefix6 =
        limits.source_prefix_ipv6 ? limits.source_prefix_ipv6 : defaults.source_prefix_ipv6;
    printf("limits: %u connections, %u per source, %u in flight per connection, "
           "idle timeout %s\n",
           limits.max_connections, limits.max_per_source, limits.max_in_flight, idle);
    printf("sources: an IPv4 /%u, an IPv6 /%u (per-source limits, fair shares, alerts)\n", prefix4,
           prefix6);
    const struct config_guard *guard = &config->guard;
    static const char *const over_rate[] = {"exception 06", "dropped", "the connection closed"};
    if (guard->rate == 0)
        printf("rate: no limit per connection\n");
    else
        printf("rate: %u requests/s per connection, bursts of %u; over it: %s\n", guard->rate,
               guard->burst ? guard->burst : guard->rate, over_rate[guard->over_rate]);
    char window[32];
    format_duration(guard->alert_window_ms, window, sizeof window);
    static const char *const over_share[] = {"exception 06", "dropped", "the connection closed"};
    printf("fair share: each client identity (source and role) holds at most its share of a "
           "backend; over it: %s\n",
           over_share[config->guard.over_share]);
    printf("alerts (per source, each once per %s window): %u distinct unit ids, %u denials, %u "
           "malformed frames, %u over the rate or refused; FC 8 restart and listen-only always\n",
           window, guard->alert_scan_units, guard->alert_denials, guard->alert_malformed,
           guard->alert_rate_limited);
    printf("audit: %s%s%s%s%s\n", guard->audit_file ? "file " : "",
           guard->audit_file ? guard->audit_file : "",
           guard->audit_file && guard->audit_syslog ? ", " : "",
           guard->audit_syslog ? "syslog " : "", guard->audit_syslog ? guard->audit_syslog : "");
    if (guard->audit_file == NULL && guard->audit_syslog == NULL)
        printf("  (no sink: records are only counted)\n");
    else if (guard->audit_reads)
        printf("  (allowed reads recorded too)\n");
    if (guard->audit_spool != NULL)
        printf("  spool: %s (at most %llu MiB per network sink; what is not yet delivered waits "
               "there)\n",
               guard->audit_spool,
               (unsigned long long)((guard->audit_spool_bytes ? guard->audit_spool_bytes
                                                              : 64ull << 20) >>
                                    20));
    if (guard->mqtt.broker != NULL) {
        char name[80], prefix[300];
        watch_mqtt_name(&guard->mqtt, name, sizeof name);
        if (guard->mqtt.prefix != NULL)
            snprintf(prefix, sizeof prefix, "%s", guard->mqtt.prefix);
        else
            snprintf(prefix, sizeof prefix, "mbsec/%s", name);
        printf("mqtt: %s (MQTT %s, QoS 1), as %s%s\n", guard->mqtt.broker,
               guard->mqtt.protocol == 5 ? "5" : "3.1.1", name,
               guard->mqtt.name == NULL ? " (the host name)" : "");
        printf("  %s/audit/TYPE%s, %s/status (retained; Last Will: down)", prefix,
               guard->mqtt.audit ? "" : " (off: mqtt.audit is false)", prefix);
        if (guard->mqtt.metrics_interval_ms > 0)
            printf(", %s/metrics every %.1f s\n", prefix, guard->mqtt.metrics_interval_ms / 1000.0);
        else
            printf("; no metrics snapshots\n");
    }
    printf("metrics: %s%s%s\n", guard->metrics_listen ? "http://" : "none",
           guard->metrics_listen ? guard->metrics_listen : "",
           guard->metrics_listen ? "/metrics" : "");

    printf("\nbackends (%zu; front unit ids without a route are answered 0A):\n",
           config->backend_count);
    for (size_t i = 0; i < config->backend_count; i++) {
        const struct config_backend *backend = &config->backends[i];
        format_duration(backend->timeout_ms, timeout, sizeof timeout);
        if (backend->link != MB_GATEWAY_LINK_TCP) {
            print_bus(setup, backend, i, timeout);
            continue;
        }
        char resolved[80] = "";
        mb_address_format((const struct sockaddr *)&setup->backends[i].address,
                          setup->backends[i].address_length, resolved, sizeof resolved);
        printf("  %s  %s%s%s%s  ", backend->name, backend->address,
               strcmp(resolved, backend->address) != 0 ? " (" : "",
               strcmp(resolved, backend->address) != 0 ? resolved : "",
               strcmp(resolved, backend->address) != 0 ? ")" : "");
        if (backend->tls_certificate == NULL)
            printf("plain Modbus/TCP\n");
        else
            printf("Modbus/TCP Security as %s, trusting %s%s\n", backend->tls_certificate,
                   backend->tls_pin != NULL ? "the pin " : backend->tls_ca,
                   backend->tls_pin != NULL ? backend->tls_pin : "");
        uint64_t capacity = (uint64_t)backend->connections * (backend->in_flight + backend->queue);
        uint64_t share = backend->share ? backend->share : capacity / 4 ? capacity / 4 : 1;
        printf("    %u connection%s, timeout %s, %u in flight and %u queued per connection; "
               "%llu requests per identity%s\n",
               backend->connections, backend->connections == 1 ? "" : "s", timeout,
               backend->in_flight, backend->queue, (unsigned long long)share,
               backend->share ? "" : " (a quarter, the default)");
        print_routes(setup, i);
    }

    size_t rules = mb_policy_rule_count(config->front.policy);
    if (config->front.policy == NULL) {
        printf("\npolicy: none (plain requests are forwarded unchecked)\n");
        return;
    }
    printf("\npolicy (%zu rule%s; each part of a request goes down the list, the first rule "
           "that matches decides; units name %s):\n",
           rules, rules == 1 ? "" : "s",
           config->policy_front_units ? "front unit ids only (policy_units: front)"
                                      : "devices: a rule covers every front unit routed to the "
                                        "same device (policy_units: device)");
    front_print_rules(&config->front);
    print_notes(config);
}

/* The front's TLS context, when there are TLS listeners (else *tls is NULL). Returns 0, or -1
 * with one line in `error`. */
static int front_tls(const struct front_config *config, struct mb_tls_context **tls, char *error,
                     size_t capacity) {
    *tls = NULL;
    char detail[400];
    if (config->tls_listen_count == 0 || front_tls_create(config, tls, detail, sizeof detail) == 0)
        return 0;
    snprintf(error, capacity, "TLS: %s", detail);
    return -1;
}

static int check(const struct options *options) {
    static struct setup setup; /* large: not on the stack */
    char error[600];
    int status = EXIT_STATUS_OK;
    struct mb_tls_context *tls = NULL;
    if (load_config(options, &setup.config, error, sizeof error) != 0 ||
        prepare(&setup, NULL, options->common.config_path, error, sizeof error) != 0 ||
        front_tls(&setup.config.front, &tls, error, sizeof error) != 0 ||
        watch_check_sinks(&setup.config.guard, error, sizeof error) != 0) {
        fprintf(stderr, PROGRAM ": %s\n", error);
        status = EXIT_STATUS_USAGE;
    } else if (options->common.explain_count > 0) {
        status =
            front_explain(PROGRAM, setup.config.front.policy, setup.config.front.authorize_plain,
                          options->common.explain, options->common.explain_count);
    } else {
        print_setup(&setup, options->common.config_path);
    }
    mb_tls_context_destroy(tls);
    release(&setup, NULL);
    return status;
}

/* ---- requests ---- */

/* The "audited" log line of a forwarded write: the policy writes a reason for the writes it
 * allows; writes nobody checked (plain, with authorize_plain false) are logged too. */
static void log_audited(struct gateway_tool *tool, const struct mb_server_request *call,
                        const struct mb_policy_decision *decision) {
    /* Monitor mode's forwarded refusals are checked writes too: their reason says so. */
    int checked_write =
        (decision->action == MB_POLICY_ALLOW || decision->monitor) && decision->reason[0] != '\0';
    int unchecked_write = decision->action == 0 && (decision->access & MB_POLICY_WRITE);
    if (!checked_write && !unchecked_write)
        return;
    uint16_t backend = tool->setup->route_backend[call->unit_id];
    char route[160];
    if (backend == NO_ROUTE)
        snprintf(route, sizeof route, "no route for unit %u (answered 0A)", call->unit_id);
    else
        snprintf(route, sizeof route, "to backend %s unit %u",
                 tool->setup->config.backends[backend].name,
                 tool->setup->route_unit[call->unit_id]);
    if (checked_write)
        logger_message(&tool->logger, MB_LOG_INFO, "audited", "%s; forwarded %s", decision->reason,
                       route);
    else
        logger_message(&tool->logger, MB_LOG_INFO, "audited",
                       "plain from %s: FC %u on unit %u, not checked (authorize_plain: "
                       "false); forwarded %s",
                       call->peer->text, call->pdu[0], call->unit_id, route);
}

/*
 * Every request, one stage after the other, each given what the ones before it worked out: the
 * server's decoding (call->request) and the connection's context (seen.client), never looked up
 * or decoded again.
 *   1. the watch: counts, unit-id scans, FC 8 restart / listen-only, malformed PDUs;
 *   2. the rate of the connection: a flood is cut before the policy spends time on it;
 *   3. the policy: over TLS always, plain requests unless authorize_plain is false;
 *   4. the watch again: a "denied" record, or the allowed request kept for its record;
 *   5. the "audited" log line for writes;
 *   6. the gateway core, which forwards by unit id or answers 0A at once; its completion hook
 *      (watch_completed) writes the record with the outcome.
 */
static int gateway_request(void *data, const struct mb_server_request *call, uint8_t *response) {
    struct gateway_tool *tool = data;
    int answer = 0;
    struct watch_request seen;
    watch_begin(tool->watch, call, &seen);
    if (!watch_admit(tool->watch, &seen, response, &answer))
        return answer;
    /* Zeroed: without a policy nothing fills it, and the watch reads the rule and reason. */
    struct mb_policy_decision decision = {0};
    int allowed = front_authorize(tool->policy, tool->authorize_plain, &tool->logger, call,
                                  response, &decision, &answer);
    if (allowed < 0)
        return allowed;
    int checked = call->peer->secure || tool->authorize_plain;
    watch_decided(tool->watch, &seen, &decision, checked);
    if (allowed == 0)
        return answer;
    log_audited(tool, call, &decision);
    return mb_gateway_handle(tool->gateway, call, response);
}

/* ---- signals and reload ---- */

/* The gateway core's view of a setup's backends and routes. */
static struct mb_gateway_config gateway_config_of(struct gateway_tool *tool, struct setup *setup) {
    struct mb_gateway_config config = {
        .backends = setup->backends,
        .backend_count = setup->config.backend_count,
        .routes = setup->config.routes,
        .route_count = setup->config.route_count,
        .log = watch_log,
        .log_data = tool->watch,
        .on_complete = watch_completed,
        .complete_data = tool->watch,
        .over_share = (enum mb_gateway_over_share)setup->config.guard.over_share,
    };
    return config;
}

static void setup_free(struct setup *setup, const struct setup *running) {
    if (setup == NULL)
        return;
    release(setup, running);
    free(setup);
}

/*
 * SIGHUP, through the reload engine (app/daemon/reload.h): the whole file again. Policy,
 * authorize_plain, limits, logging, audit, alerts and the rate apply at once; backends and
 * routes go to the gateway core, which keeps what did not change and lets removed backends
 * finish what they hold; changed front TLS files make a new context, which the listeners take.
 * Listen addresses, user and metrics.listen need a restart. A file that does not load, or a
 * backend that cannot be prepared or started, is refused whole.
 */
static void *reload_load(void *data, char *error, size_t capacity) {
    struct gateway_tool *tool = data;
    struct setup *fresh = calloc(1, sizeof *fresh);
    if (fresh == NULL) {
        snprintf(error, capacity, "out of memory");
        return NULL;
    }
    if (load_config(&tool->options, &fresh->config, error, capacity) != 0) {
        setup_free(fresh, tool->setup);
        return NULL;
    }
    return fresh;
}

static const struct front_config *reload_config_of(const void *fresh) {
    return &((const struct setup *)fresh)->config.front;
}

static int reload_prepare(void *data, void *fresh, char *error, size_t capacity) {
    struct gateway_tool *tool = data;
    return prepare(fresh, tool->setup, tool->options.common.config_path, error, capacity);
}

static int reload_commit(void *data, void *given, char *applied, size_t applied_capacity,
                         char *error, size_t error_capacity) {
    struct gateway_tool *tool = data;
    struct setup *fresh = given;
    struct mb_gateway_config gateway_config = gateway_config_of(tool, fresh);
    int rc = mb_gateway_reconfigure(tool->gateway, &gateway_config);
    if (rc != 0) {
        snprintf(error, error_capacity, "the backends could not be started (%s)", mb_strerror(rc));
        return -1;
    }
    /* Every backend context is the gateway core's now, the running ones it kept included. */
    fresh->backend_tls_given = 1;
    tool->setup->backend_tls_given = 1;
    struct gateway_config *config = &fresh->config;
    /* Thresholds, rate and sinks. Sinks that do not open keep the old ones and say so loudly,
     * but hold back nothing else: a new CRL or policy must take effect all the same. */
    char sinks_error[600];
    const char *audit_note = "audit";
    if (watch_reload(tool->watch, config, sinks_error, sizeof sinks_error) != 0)
        audit_note = "audit (the old sinks kept: see audit_reopen_failed)";
    mb_server_set_limits(tool->server, &config->front.limits);
    setup_free(tool->setup, NULL);
    tool->setup = fresh;
    tool->policy = config->front.policy;
    tool->authorize_plain = config->front.authorize_plain;
    log_notes(&tool->logger, config);
    front_log_monitor(&tool->logger, config->front.policy);
    char hash[POLICY_HASH_TEXT];
    policy_hash(config->front.policy, hash);
    snprintf(applied, applied_capacity,
             "policy (%zu rules, sha256 %s), authorize_plain, limits, logging, %s, alerts, "
             "backends (%zu) and routes (%zu)",
             mb_policy_rule_count(config->front.policy), hash, audit_note, config->backend_count,
             config->route_count);
    return 0;
}

static void reload_discard(void *data, void *fresh) {
    struct gateway_tool *tool = data;
    setup_free(fresh, tool->setup);
}

static void reload_replace_tls(void *data, struct mb_tls_context *previous,
                               struct mb_tls_context *next) {
    struct gateway_tool *tool = data;
    /* The listeners take the new context and close the connections whose client certificate
     * it refuses ("tls_revoked"); the old one lives on in the others. */
    mb_server_replace_tls(tool->server, previous, next);
}

static void reload_restart_summary(const void *fresh, char *summary, size_t capacity) {
    const struct gateway_config *config = &((const struct setup *)fresh)->config;
    snprintf(summary, capacity, "|metrics.listen %s",
             config->guard.metrics_listen != NULL ? config->guard.metrics_listen : "");
}

static void reload_counted(void *data, int refused) {
    struct gateway_tool *tool = data;
    watch_count_reload(tool->watch, refused);
}

static void reload(struct gateway_tool *tool) {
    const struct reload_program program = {
        .data = tool,
        .logger = &tool->logger,
        .load = reload_load,
        .config_of = reload_config_of,
        .prepare = reload_prepare,
        .commit = reload_commit,
        .discard = reload_discard,
        .replace_tls = reload_replace_tls,
        .restart_summary = reload_restart_summary,
        .restart_keys = "listen, tls.listen, user or metrics.listen",
        .counted = reload_counted,
    };
    reload_run(&tool->front, &program);
}

static void on_signal(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)events;
    (void)loop;
    struct gateway_tool *tool = data;
    struct signalfd_siginfo info;
    while (read(fd, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo == SIGHUP) {
            reload(tool);
        } else if (!tool->shut_down) {
            tool->shut_down = 1;
            logger_message(&tool->logger, MB_LOG_INFO, "stopping", "signal %s received",
                           info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            mb_server_shutdown(tool->server, tool->setup->config.front.shutdown_grace_ms);
        }
    }
}

/* ---- running ---- */

static int start(struct gateway_tool *tool, sigset_t *signals) {
    struct setup *setup = tool->setup;
    struct gateway_config *config = &setup->config;
    struct mb_server_config server_config = {
        .limits = config->front.limits,
        .handler = gateway_request,
        .handler_data = tool,
        /* The policy decides malformed requests too (by function code), before the gateway
         * core answers them: nothing malformed goes on to a device. */
        .pass_undecodable = 1,
        .log = watch_log,
        .log_data = tool->watch,
        .on_refused = watch_refused,
        .refused_data = tool->watch,
    };
    if (mb_loop_create(&tool->loop) != 0 ||
        mb_server_create(tool->loop, &server_config, &tool->server) != 0) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return EXIT_STATUS_FAILURE;
    }
    struct mb_server *servers[1] = {tool->server};
    int status =
        front_open_listeners(PROGRAM, &config->front, servers, 1, tool->front.tls, &tool->logger);
    if (status != 0)
        return status;
    struct mb_gateway_config gateway_config = gateway_config_of(tool, setup);
    int rc = mb_gateway_create(tool->loop, tool->server, &gateway_config, &tool->gateway);
    if (rc != 0) {
        fprintf(stderr, PROGRAM ": cannot start the backends: %s\n", mb_strerror(rc));
        return EXIT_STATUS_FAILURE;
    }
    setup->backend_tls_given = 1;
    watch_attach(tool->watch, tool->loop, tool->server, tool->gateway);
    if (config->guard.metrics_listen != NULL) {
        char error[400], bound[80] = "";
        if (http_listen(tool->loop, config->guard.metrics_listen, watch_render, tool->watch,
                        &tool->metrics, error, sizeof error) != 0) {
            fprintf(stderr, PROGRAM ": metrics.listen: %s\n", error);
            return EXIT_STATUS_FAILURE;
        }
        http_address(tool->metrics, bound, sizeof bound);
        logger_message(&tool->logger, MB_LOG_INFO, "metrics",
                       "Prometheus metrics on http://%s/metrics", bound);
    }
    if (config->front.user != NULL) {
        /* The audit file opened as root becomes the user's, so that SIGHUP after a rotation
         * can open the next one, and nothing of a reload depends on root. */
        unsigned uid, gid;
        char error[600];
        if (front_user_ids(config->front.user, &uid, &gid) == 0 && geteuid() == 0 &&
            watch_hand_over(tool->watch, uid, gid, error, sizeof error) != 0)
            logger_message(&tool->logger, MB_LOG_WARNING, "audit_owner", "%s", error);
        if (front_drop_privileges(PROGRAM, config->front.user) != 0)
            return EXIT_STATUS_FAILURE;
    }
    tool->signal_fd = signalfd(-1, signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (tool->signal_fd < 0 ||
        mb_loop_add(tool->loop, tool->signal_fd, MB_IO_READ, on_signal, tool) != 0) {
        fprintf(stderr, PROGRAM ": cannot watch signals: %s\n", strerror(errno));
        return EXIT_STATUS_FAILURE;
    }
    log_notes(&tool->logger, config);
    size_t rules = mb_policy_rule_count(tool->policy);
    char hash[POLICY_HASH_TEXT];
    policy_hash(tool->policy, hash);
    logger_message(&tool->logger, MB_LOG_INFO, "started",
                   "%zu backend(s), %zu routed unit id(s), %zu policy rule(s) (sha256 %s); "
                   "plain requests %s",
                   config->backend_count, config->route_count, rules, hash,
                   tool->authorize_plain ? "checked against the policy"
                                         : "forwarded unchecked (authorize_plain: false)");
    front_log_monitor(&tool->logger, tool->policy);
    return 0;
}

/* The configuration and what is made from it before anything listens: the backends' and the
 * front's TLS contexts, the log, the audit sinks. Returns 0 or an exit status. */
static int load(struct gateway_tool *tool) {
    char error[600];
    tool->setup = calloc(1, sizeof *tool->setup);
    if (tool->setup == NULL) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return EXIT_STATUS_FAILURE;
    }
    struct mb_tls_context *tls = NULL;
    if (load_config(&tool->options, &tool->setup->config, error, sizeof error) != 0 ||
        prepare(tool->setup, NULL, tool->options.common.config_path, error, sizeof error) != 0 ||
        front_tls(&tool->setup->config.front, &tls, error, sizeof error) != 0) {
        fprintf(stderr, PROGRAM ": %s\n", error);
        return EXIT_STATUS_USAGE;
    }
    reload_front_init(&tool->front, tool->setup, tls, reload_config_of, reload_restart_summary);
    tool->logger.stream = stderr;
    tool->logger.format = tool->setup->config.front.log_format;
    tool->logger.level = tool->setup->config.front.log_level;
    if (watch_create(&tool->setup->config, &tool->logger, &tool->watch, error, sizeof error) != 0) {
        fprintf(stderr, PROGRAM ": audit: %s\n", error);
        return EXIT_STATUS_USAGE;
    }
    tool->policy = tool->setup->config.front.policy;
    tool->authorize_plain = tool->setup->config.front.authorize_plain;
    /* A front connection per client, and each backend's pool. */
    uint32_t backend_connections = 0;
    for (size_t i = 0; i < tool->setup->config.backend_count; i++)
        backend_connections += tool->setup->config.backends[i].connections;
    front_raise_descriptor_limit(
        &tool->logger, tool->setup->config.front.limits.max_connections + backend_connections, 1);
    return 0;
}

/* Undoes load() and start(), however far they came. */
static void finish(struct gateway_tool *tool, int status) {
    /* The gateway answers what is still outstanding through the server: it goes first, and
     * the watch writes the records of those answers. */
    http_close(tool->metrics);
    mb_gateway_destroy(tool->gateway);
    if (tool->signal_fd >= 0) {
        mb_loop_remove(tool->loop, tool->signal_fd);
        close(tool->signal_fd);
    }
    mb_server_destroy(tool->server);
    watch_detach(tool->watch);
    mb_loop_destroy(tool->loop);
    if (status == EXIT_STATUS_OK)
        logger_message(&tool->logger, MB_LOG_INFO, "stopped", "all connections closed");
    watch_destroy(tool->watch);
    reload_front_release(&tool->front);
    setup_free(tool->setup, NULL);
}

int cmd_gateway(int argc, char **argv) {
    static struct gateway_tool tool; /* large (the configuration): not on the stack */
    memset(&tool, 0, sizeof tool);
    tool.signal_fd = -1;
    int parsed = parse_arguments(argc, argv, &tool.options);
    if (parsed != 0)
        return parsed > 0 ? EXIT_STATUS_OK : EXIT_STATUS_USAGE;
    if (tool.options.common.check)
        return check(&tool.options);
    int status = load(&tool);
    if (status == 0) {
        sigset_t signals;
        front_block_signals(&signals);
        status = start(&tool, &signals);
    }
    if (status == 0) {
        while (!(tool.shut_down && mb_server_idle(tool.server)))
            if (mb_loop_run_once(tool.loop, 200) != 0)
                break;
        status = EXIT_STATUS_OK;
    }
    finish(&tool, status);
    return status;
}
