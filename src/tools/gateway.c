/* SPDX-License-Identifier: MIT */
/*
 * mbsec gateway: the security gateway in front of Modbus/TCP devices. The front is mbsec
 * serve's (plain and Modbus/TCP Security listeners, src/tools/front.c); every request goes
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

#include "config/config.h"
#include "mbsec/client.h"
#include "mbsec/error.h"
#include "mbsec/gateway.h"
#include "mbsec/loop.h"
#include "mbsec/policy.h"
#include "mbsec/server.h"
#include "mbsec/tls.h"
#include "tools/commands.h"
#include "tools/front.h"
#include "tools/log.h"

#define PROGRAM "mbsec gateway"
#define NO_ROUTE 0xFFFF

struct options {
    const char *config_path;
    int check;      /* --check: validate and print, do not run */
    int log_format; /* -1: not given */
    int log_level;  /* -1: not given */
};

/* What the gateway runs with: the configuration, and what was made from it at the start. */
struct setup {
    struct mb_serve_config config;
    struct mb_tls_context *front_tls;
    struct mb_tls_context *backend_tls[MB_CONFIG_MAX_BACKENDS];
    struct mb_gateway_backend backends[MB_CONFIG_MAX_BACKENDS];
    uint16_t route_backend[256]; /* front unit -> backend index, or NO_ROUTE */
    uint8_t route_unit[256];     /* front unit -> device unit */
};

struct gateway_tool {
    struct options options;
    struct setup setup;
    struct mb_logger logger;
    /* The policy in force: the configuration's at first, then each reload's (one thread
     * decides and reloads, so a swap needs no care beyond freeing the one replaced). */
    struct mb_policy *policy;
    int authorize_plain;
    struct mb_loop *loop;
    struct mb_server *server;
    struct mb_gateway *gateway;
    int signal_fd;
    int shut_down;
};

static void usage(FILE *out) {
    fputs("usage: mbsec gateway --config FILE [options]\n"
          "       mbsec gateway --check FILE\n"
          "\n"
          "Puts Modbus/TCP devices behind a security gateway: clients connect to its plain\n"
          "(listen) and Modbus/TCP Security (tls) listeners, every request is checked against\n"
          "the policy (plain ones too, unless authorize_plain: false), and what the policy\n"
          "allows is forwarded by unit id to the devices under backends. Denials are answered\n"
          "as the rule says and logged as 'denied'; allowed writes are logged as 'audited'.\n"
          "\n"
          "  --config FILE            the YAML configuration (docs/configuration.md: listen,\n"
          "                           tls, limits, log, user, authorize_plain, policy, backends)\n"
          "  --check FILE             validate FILE (certificates and device addresses too),\n"
          "                           print the listeners, backends, routes and rules, and\n"
          "                           exit: 0 when it is valid, 2 with the error when not\n"
          "  --workers N              event loops; the gateway runs one for now (N must be 1)\n"
          "  --log-format plain|json  log lines on stderr (default plain)\n"
          "  --log-level LEVEL        error, warning, info (default), debug\n"
          "  -h, --help               this text\n"
          "\n"
          "Unit ids with no route, and devices that are down, are answered with exception 0A\n"
          "(gateway path unavailable); a device that does not answer in time with 0B.\n"
          "Signals: SIGTERM/SIGINT finish requests in flight and stop; SIGHUP reloads the\n"
          "policy, authorize_plain, limits and logging from the file (a bad file is refused and\n"
          "the running configuration kept); backends and routes need a restart.\n",
          out);
}

static int parse_arguments(int argc, char **argv, struct options *options) {
    enum { OPT_CONFIG = 256, OPT_CHECK, OPT_WORKERS, OPT_LOGFORMAT, OPT_LOGLEVEL };
    static const struct option table[] = {
        {"config", required_argument, NULL, OPT_CONFIG},
        {"check", required_argument, NULL, OPT_CHECK},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"log-format", required_argument, NULL, OPT_LOGFORMAT},
        {"log-level", required_argument, NULL, OPT_LOGLEVEL},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(options, 0, sizeof *options);
    options->log_format = -1;
    options->log_level = -1;
    optind = 1;
    for (;;) {
        int option = getopt_long(argc, argv, "h", table, NULL);
        if (option == -1)
            break;
        const char *bad = NULL;
        switch (option) {
        case OPT_CONFIG:
        case OPT_CHECK:
            if (options->config_path != NULL)
                bad = "give one configuration file (--config FILE or --check FILE)";
            options->config_path = optarg;
            options->check = option == OPT_CHECK;
            break;
        case OPT_WORKERS:
            if (strcmp(optarg, "1") != 0)
                bad = "--workers: the gateway runs one event loop for now; 1 is the only value "
                      "(the backends' connections are shared by every client through it)";
            break;
        case OPT_LOGFORMAT: {
            enum mb_log_format format;
            if (mb_log_format_parse(optarg, &format) != 0)
                bad = "--log-format: plain or json";
            else
                options->log_format = (int)format;
            break;
        }
        case OPT_LOGLEVEL: {
            enum mb_log_level level;
            if (mb_log_level_parse(optarg, &level) != 0)
                bad = "--log-level: error, warning, info or debug";
            else
                options->log_level = (int)level;
            break;
        }
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
        if (bad != NULL) {
            fprintf(stderr, PROGRAM ": %s\n", bad);
            return -1;
        }
    }
    if (optind < argc) {
        fprintf(stderr, PROGRAM ": unexpected argument '%s'\n", argv[optind]);
        usage(stderr);
        return -1;
    }
    if (options->config_path == NULL) {
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
static int load_config(const struct options *options, struct mb_serve_config *config, char *error,
                       size_t capacity) {
    mb_config_gateway_defaults(config);
    if (mb_config_load(options->config_path, config, error, capacity) != 0)
        return -1;
    if (options->log_format >= 0)
        config->log_format = (enum mb_log_format)options->log_format;
    if (options->log_level >= 0)
        config->log_level = (enum mb_log_level)options->log_level;
    if (config->tls_handshake_timeout_ms)
        config->limits.handshake_timeout_ms = config->tls_handshake_timeout_ms;
    if (config->backend_count == 0) {
        snprintf(error, capacity,
                 "%s: no backends: a gateway forwards to the devices listed under backends "
                 "(docs/configuration.md#backends)",
                 options->config_path);
        return -1;
    }
    if (config->policy == NULL && (config->authorize_plain || config->tls_listen_count > 0)) {
        snprintf(error, capacity,
                 "%s: no policy: the gateway checks every request %sagainst its policy, and "
                 "without one it would deny them all; add a policy section "
                 "(docs/configuration.md#policy)%s",
                 options->config_path,
                 config->authorize_plain ? "(authorize_plain defaults to true) " : "over TLS ",
                 config->authorize_plain
                     ? ", or authorize_plain: false to forward plain requests unchecked"
                     : "");
        return -1;
    }
    return 0;
}

/* The host part of "host:port" ("[v6]:port" gives v6), for the name a device's certificate
 * must carry. */
static void host_of(const char *address, char *host, size_t capacity) {
    const char *colon = strrchr(address, ':');
    size_t length = colon != NULL ? (size_t)(colon - address) : strlen(address);
    if (address[0] == '[' && length >= 2) {
        address++;
        length -= 2;
    }
    snprintf(host, capacity, "%.*s", (int)length, address);
}

/*
 * What the configuration names outside itself: the front TLS context, each backend's address
 * (resolved now, once) and TLS context, and the route table. Returns 0 or -1 with one line in
 * `error`, "FILE:LINE:COLUMN: backends[N]...: what is wrong" for a backend.
 */
static int prepare(struct setup *setup, const char *path, char *error, size_t capacity) {
    struct mb_serve_config *config = &setup->config;
    for (size_t unit = 0; unit < 256; unit++)
        setup->route_backend[unit] = NO_ROUTE;
    for (size_t i = 0; i < config->route_count; i++) {
        setup->route_backend[config->routes[i].front_unit] = config->routes[i].backend;
        setup->route_unit[config->routes[i].front_unit] = config->routes[i].device_unit;
    }
    for (size_t i = 0; i < config->backend_count; i++) {
        const struct mb_config_backend *given = &config->backends[i];
        struct mb_gateway_backend *backend = &setup->backends[i];
        const char *problem = NULL;
        memset(backend, 0, sizeof *backend);
        backend->name = given->name;
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
        if (given->tls_certificate == NULL)
            continue;
        char host[256], detail[400];
        host_of(given->address, host, sizeof host);
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
        backend->wrap = mb_tls_wrap;
        backend->wrap_data = setup->backend_tls[i];
    }
    char detail[400];
    if (mb_front_tls_create(config, &setup->front_tls, detail, sizeof detail) != 0) {
        snprintf(error, capacity, "TLS: %s", detail);
        return -1;
    }
    return 0;
}

static void release(struct setup *setup) {
    for (size_t i = 0; i < MB_CONFIG_MAX_BACKENDS; i++) {
        mb_tls_context_destroy(setup->backend_tls[i]);
        setup->backend_tls[i] = NULL;
    }
    mb_tls_context_destroy(setup->front_tls);
    setup->front_tls = NULL;
    mb_config_free(&setup->config);
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

static void print_setup(const struct setup *setup, const char *path) {
    const struct mb_serve_config *config = &setup->config;
    char timeout[32], idle[32];
    printf("%s: valid\n\n", path);
    printf("listen (plain Modbus/TCP; %s):\n",
           config->authorize_plain ? "every request checked against the policy"
                                   : "requests forwarded unchecked, authorize_plain is false");
    for (size_t i = 0; i < config->listen_count; i++)
        printf("  %s\n", config->listen[i]);
    if (config->listen_count == 0 && config->tls_listen_count == 0)
        printf("  0.0.0.0:502\n  [::]:502\n");
    if (config->listen_count == 0 && config->tls_listen_count > 0)
        printf("  (none)\n");
    if (config->tls_listen_count > 0) {
        printf("tls (Modbus/TCP Security; every request checked against the policy):\n");
        for (size_t i = 0; i < config->tls_listen_count; i++)
            printf("  %s\n", config->tls_listen[i]);
        printf("  certificate %s, key %s\n  client certificates from %s%s%s\n",
               config->tls_certificate, config->tls_key, config->tls_ca,
               config->tls_crl ? ", revocations in " : "", config->tls_crl ? config->tls_crl : "");
    }
    format_duration(config->limits.idle_timeout_ms, idle, sizeof idle);
    printf("limits: %u connections, %u per source address, %u in flight per connection, "
           "idle timeout %s\n",
           config->limits.max_connections, config->limits.max_per_source,
           config->limits.max_in_flight, idle);

    printf("\nbackends (%zu; front unit ids without a route are answered 0A):\n",
           config->backend_count);
    for (size_t i = 0; i < config->backend_count; i++) {
        const struct mb_config_backend *backend = &config->backends[i];
        format_duration(backend->timeout_ms, timeout, sizeof timeout);
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
        printf("    %u connection%s, timeout %s, %u in flight and %u queued per connection\n",
               backend->connections, backend->connections == 1 ? "" : "s", timeout,
               backend->in_flight, backend->queue);
        print_routes(setup, i);
    }

    size_t rules = mb_policy_rule_count(config->policy);
    if (config->policy == NULL) {
        printf("\npolicy: none (plain requests are forwarded unchecked)\n");
        return;
    }
    printf("\npolicy (%zu rule%s; each part of a request goes down the list, the first rule "
           "that matches decides):\n",
           rules, rules == 1 ? "" : "s");
    const char *line = config->policy_text != NULL ? config->policy_text : "";
    for (size_t i = 0; i < rules; i++) {
        const char *end = strchr(line, '\n');
        int length = end != NULL ? (int)(end - line) : (int)strlen(line);
        printf("  %zu. %s: %.*s\n", i + 1, mb_policy_rule_name(config->policy, i), length, line);
        line = end != NULL ? end + 1 : line + length;
    }
    printf("  -. default: what no rule matches is denied with exception 01\n");
}

static int check(const struct options *options) {
    static struct setup setup; /* large: not on the stack */
    char error[600];
    int status = MB_EXIT_OK;
    if (load_config(options, &setup.config, error, sizeof error) != 0 ||
        prepare(&setup, options->config_path, error, sizeof error) != 0) {
        fprintf(stderr, PROGRAM ": %s\n", error);
        status = MB_EXIT_USAGE;
    } else {
        print_setup(&setup, options->config_path);
    }
    release(&setup);
    return status;
}

/* ---- requests ---- */

/* Every request: the policy first (over TLS always, plain ones unless authorize_plain is
 * false), then the gateway core, which forwards it or answers 0A at once. */
static int gateway_request(void *data, const struct mb_server_request *call, uint8_t *response) {
    struct gateway_tool *tool = data;
    struct mb_policy_decision decision;
    int answer = 0;
    int allowed = mb_front_authorize(tool->policy, tool->authorize_plain, &tool->logger, call,
                                     response, &decision, &answer);
    if (allowed <= 0)
        return allowed < 0 ? allowed : answer;
    /* The policy writes a reason for the writes it allows: those make the audit trail. Writes
     * nobody checked (plain, with authorize_plain false) are recorded too. */
    int checked_write = decision.action == MB_POLICY_ALLOW && decision.reason[0] != '\0';
    int unchecked_write = decision.action == 0 && !mb_function_is_idempotent(call->pdu[0]);
    if (checked_write || unchecked_write) {
        uint16_t backend = tool->setup.route_backend[call->unit_id];
        char route[160];
        if (backend == NO_ROUTE)
            snprintf(route, sizeof route, "no route for unit %u (answered 0A)", call->unit_id);
        else
            snprintf(route, sizeof route, "to backend %s unit %u",
                     tool->setup.config.backends[backend].name,
                     tool->setup.route_unit[call->unit_id]);
        if (checked_write)
            mb_logger_message(&tool->logger, MB_LOG_INFO, "audited", "%s; forwarded %s",
                              decision.reason, route);
        else
            mb_logger_message(&tool->logger, MB_LOG_INFO, "audited",
                              "plain from %s: FC %u on unit %u, not checked (authorize_plain: "
                              "false); forwarded %s",
                              call->peer->text, call->pdu[0], call->unit_id, route);
    }
    return mb_gateway_handle(tool->gateway, call, response);
}

/* ---- signals and reload ---- */

static int same_text(const char *a, const char *b) {
    return (a == NULL && b == NULL) || (a != NULL && b != NULL && strcmp(a, b) == 0);
}

/* 1 when two configurations give the same backends and routes. */
static int same_backends(const struct mb_serve_config *a, const struct mb_serve_config *b) {
    if (a->backend_count != b->backend_count || a->route_count != b->route_count ||
        memcmp(a->routes, b->routes, a->route_count * sizeof a->routes[0]) != 0)
        return 0;
    for (size_t i = 0; i < a->backend_count; i++) {
        const struct mb_config_backend *x = &a->backends[i], *y = &b->backends[i];
        if (!same_text(x->name, y->name) || !same_text(x->address, y->address) ||
            x->connections != y->connections || x->timeout_ms != y->timeout_ms ||
            x->in_flight != y->in_flight || x->queue != y->queue ||
            !same_text(x->tls_certificate, y->tls_certificate) ||
            !same_text(x->tls_key, y->tls_key) || !same_text(x->tls_ca, y->tls_ca) ||
            !same_text(x->tls_pin, y->tls_pin) ||
            !same_text(x->tls_server_name, y->tls_server_name))
            return 0;
    }
    return 1;
}

static void reload(struct gateway_tool *tool) {
    static struct mb_serve_config fresh; /* large: not on the stack */
    char error[600];
    if (load_config(&tool->options, &fresh, error, sizeof error) != 0) {
        mb_logger_message(&tool->logger, MB_LOG_ERROR, "reload_refused",
                          "%s; the running configuration stays in force", error);
        mb_config_free(&fresh);
        return;
    }
    struct mb_serve_config *config = &tool->setup.config;
    config->limits = fresh.limits;
    config->log_format = fresh.log_format;
    config->log_level = fresh.log_level;
    config->shutdown_grace_ms = fresh.shutdown_grace_ms;
    mb_server_set_limits(tool->server, &config->limits);
    tool->logger.format = config->log_format;
    tool->logger.level = config->log_level;
    /* The new policy is taken out of `fresh`; the one it replaces goes, unless the
     * configuration owns it (the first one). */
    if (tool->policy != config->policy)
        mb_policy_destroy(tool->policy);
    tool->policy = fresh.policy;
    tool->authorize_plain = fresh.authorize_plain;
    fresh.policy = NULL;
    int backends_changed = !same_backends(config, &fresh);
    mb_config_free(&fresh);
    mb_logger_message(&tool->logger, MB_LOG_INFO, "reloaded",
                      "policy, authorize_plain, limits and logging applied; backends and routes "
                      "need a restart (%s), as do listen addresses, TLS and user",
                      backends_changed ? "the file changes them: the running ones stay until then"
                                       : "unchanged in the file");
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
            mb_logger_message(&tool->logger, MB_LOG_INFO, "stopping", "signal %s received",
                              info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            mb_server_shutdown(tool->server, tool->setup.config.shutdown_grace_ms);
        }
    }
}

/* ---- running ---- */

static int start(struct gateway_tool *tool, sigset_t *signals) {
    struct setup *setup = &tool->setup;
    struct mb_serve_config *config = &setup->config;
    struct mb_server_config server_config = {
        .limits = config->limits,
        .handler = gateway_request,
        .handler_data = tool,
        /* The policy decides malformed requests too (by function code), before the gateway
         * core answers them: nothing malformed goes on to a device. */
        .pass_undecodable = 1,
        .log = mb_logger_write,
        .log_data = &tool->logger,
    };
    if (mb_loop_create(&tool->loop) != 0 ||
        mb_server_create(tool->loop, &server_config, &tool->server) != 0) {
        fprintf(stderr, PROGRAM ": out of memory\n");
        return MB_EXIT_FAILURE;
    }
    struct mb_server *servers[1] = {tool->server};
    int status =
        mb_front_open_listeners(PROGRAM, config, servers, 1, setup->front_tls, &tool->logger);
    if (status != 0)
        return status;
    struct mb_gateway_config gateway_config = {
        .backends = setup->backends,
        .backend_count = config->backend_count,
        .routes = config->routes,
        .route_count = config->route_count,
        .log = mb_logger_write,
        .log_data = &tool->logger,
    };
    int rc = mb_gateway_create(tool->loop, tool->server, &gateway_config, &tool->gateway);
    if (rc != 0) {
        fprintf(stderr, PROGRAM ": cannot start the backends: %s\n", mb_strerror(rc));
        return MB_EXIT_FAILURE;
    }
    if (config->user != NULL && mb_front_drop_privileges(PROGRAM, config->user) != 0)
        return MB_EXIT_FAILURE;
    tool->signal_fd = signalfd(-1, signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (tool->signal_fd < 0 ||
        mb_loop_add(tool->loop, tool->signal_fd, MB_IO_READ, on_signal, tool) != 0) {
        fprintf(stderr, PROGRAM ": cannot watch signals: %s\n", strerror(errno));
        return MB_EXIT_FAILURE;
    }
    size_t rules = mb_policy_rule_count(tool->policy);
    mb_logger_message(&tool->logger, MB_LOG_INFO, "started",
                      "%zu backend(s), %zu routed unit id(s), %zu policy rule(s); plain requests "
                      "%s",
                      config->backend_count, config->route_count, rules,
                      tool->authorize_plain ? "checked against the policy"
                                            : "forwarded unchecked (authorize_plain: false)");
    return 0;
}

int mb_cmd_gateway(int argc, char **argv) {
    static struct gateway_tool tool; /* large (the configuration): not on the stack */
    char error[600];
    memset(&tool, 0, sizeof tool);
    tool.signal_fd = -1;
    int parsed = parse_arguments(argc, argv, &tool.options);
    if (parsed != 0)
        return parsed > 0 ? MB_EXIT_OK : MB_EXIT_USAGE;
    if (tool.options.check)
        return check(&tool.options);

    int status = MB_EXIT_USAGE;
    if (load_config(&tool.options, &tool.setup.config, error, sizeof error) != 0 ||
        prepare(&tool.setup, tool.options.config_path, error, sizeof error) != 0) {
        fprintf(stderr, PROGRAM ": %s\n", error);
        goto out;
    }
    tool.logger.stream = stderr;
    tool.logger.format = tool.setup.config.log_format;
    tool.logger.level = tool.setup.config.log_level;
    tool.policy = tool.setup.config.policy;
    tool.authorize_plain = tool.setup.config.authorize_plain;

    /* Signals are taken through a signalfd: block them first. */
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGHUP);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    signal(SIGPIPE, SIG_IGN);
    /* A front connection per client, and each backend's pool. */
    uint32_t backend_connections = 0;
    for (size_t i = 0; i < tool.setup.config.backend_count; i++)
        backend_connections += tool.setup.config.backends[i].connections;
    mb_front_raise_descriptor_limit(
        &tool.logger, tool.setup.config.limits.max_connections + backend_connections, 1);

    status = start(&tool, &signals);
    if (status == 0) {
        while (!(tool.shut_down && mb_server_idle(tool.server)))
            if (mb_loop_run_once(tool.loop, 200) != 0)
                break;
        status = MB_EXIT_OK;
    }

out:
    /* The gateway answers what is still outstanding through the server: it goes first. */
    mb_gateway_destroy(tool.gateway);
    if (tool.signal_fd >= 0) {
        mb_loop_remove(tool.loop, tool.signal_fd);
        close(tool.signal_fd);
    }
    mb_server_destroy(tool.server);
    mb_loop_destroy(tool.loop);
    if (status == MB_EXIT_OK)
        mb_logger_message(&tool.logger, MB_LOG_INFO, "stopped", "all connections closed");
    if (tool.policy != tool.setup.config.policy)
        mb_policy_destroy(tool.policy);
    release(&tool.setup);
    return status;
}
