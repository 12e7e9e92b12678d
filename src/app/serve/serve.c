/* SPDX-License-Identifier: MIT */
/*
 * mbsec serve: the Modbus/TCP device simulator. Defaults, then --config FILE, then flags.
 * Workers are threads, each with its own event loop and server on the same listening
 * addresses (SO_REUSEPORT), all sharing one data model. Signals arrive on the first worker's
 * loop through a signalfd and reach the others through a command pipe each.
 *
 * Each worker decides its requests with a policy of its own: a reference that only its thread
 * reads and replaces. A reload hands the new policy to every worker (the first directly, the
 * others through their pipes); each swaps it in its own thread and lets go of the old one, which
 * is freed when the last worker has. So nothing is read while it is freed, no request pays for
 * a shared counter, and there is no limit to the number of reloads.
 */
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <limits.h>
#include <pthread.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app/commands.h"
#include "app/common/duration.h"
#include "app/common/log.h"
#include "app/config/config.h"
#include "app/daemon/arguments.h"
#include "app/daemon/front.h"
#include "app/daemon/reload.h"
#include "app/serve/rtu_tcp.h"
#include "mbsec/loop.h"
#include "mbsec/model.h"
#include "mbsec/policy.h"
#include "mbsec/server.h"
#include "mbsec/tls.h"
#include "mbsec/transport.h"

#define MAX_WORKERS 64
#define MAX_SERIAL_LINES 8
#define MAX_RTU_LISTENERS 4

/* Flags that override the configuration file, kept so that a reload applies them again. */
struct overrides {
    struct daemon_arguments common; /* --config, --check, --explain, --log-format, --log-level */
    const char *listen[CONFIG_MAX_LISTEN];
    size_t listen_count;
    int workers;
    const char *user;
    struct mb_server_limits limits;
    uint32_t shutdown_grace_ms;
    const char *persist_path;
    uint32_t sync_interval_ms;
    /* Modbus/TCP Security */
    const char *tls_listen[CONFIG_MAX_LISTEN];
    size_t tls_listen_count;
    const char *certificate;
    const char *key;
    const char *ca;
    const char *crl;
    /* Serial lines (RTU slaves) and their settings, one set for all of them. */
    const char *serial[MAX_SERIAL_LINES];
    size_t serial_count;
    struct mb_serial_config line;
    int ascii; /* --ascii: Modbus ASCII on the lines instead of RTU */
    /* --rtu-over-tcp: listeners whose connections speak RTU */
    const char *rtu_listen[MAX_RTU_LISTENERS];
    size_t rtu_listen_count;
};

struct worker {
    struct serve *serve;
    int index;
    struct mb_loop *loop;
    struct mb_server *server;
    int command_pipe[2]; /* the first worker writes commands, this worker reads them */
    pthread_t thread;
    int running;
    int shut_down; /* this worker's server was told to shut down (its listeners are closed) */
    /* What this worker's requests are decided with: read and replaced in its own thread only
     * (worker_use_policy). The worker holds a reference to the policy (NULL: none). */
    struct mb_policy *policy;
    int authorize_plain; /* plain-TCP requests go through the policy too */
};

struct serve {
    struct overrides overrides;
    struct reload_front front; /* the listeners' TLS context, and what needs a restart */
    /* What is in force; its policy is the one the workers were last given (each holds its own
     * reference too). */
    struct serve_config config;
    struct logger logger;
    struct mb_model *model;
    struct mb_server_group *group; /* the workers count connection limits together */
    struct worker workers[MAX_WORKERS];
    int worker_count;
    int signal_fd;
    struct mb_timer sync_timer;
    volatile int stopping;                             /* set by the first worker, read by all */
    struct mb_serial_server *serial[MAX_SERIAL_LINES]; /* on the first worker's loop */
    struct rtu_tcp *rtu_listeners[MAX_RTU_LISTENERS];  /* there too */
};

enum command {
    COMMAND_SHUTDOWN = 'S',
    COMMAND_LIMITS = 'L',
    COMMAND_TLS = 'T',    /* rotate: previous -> next, a reference to each comes with it */
    COMMAND_POLICY = 'P', /* decide with `policy` (a reference comes with it) from now on */
};

/* What the first worker tells the others, one whole message per write (atomic on a pipe). The
 * references a message carries are dropped by whoever ends up with it: the worker that read it,
 * the sender when the write fails, worker_destroy() for messages never read. */
struct command_message {
    char command;
    struct mb_tls_context *previous;
    struct mb_tls_context *next;
    struct mb_policy *policy;
    int authorize_plain;
};
_Static_assert(sizeof(struct command_message) <= PIPE_BUF,
               "a command must be one atomic write on a pipe");

static void usage(FILE *out) {
    fputs("usage: mbsec serve [options]\n"
          "\n"
          "Serves a Modbus/TCP device simulator. With no options: any unit id, all four tables\n"
          "covering addresses 0..65535, all zero, on port 502 of every address.\n"
          "\n"
          "  --listen HOST:PORT       listen here instead (repeatable; IPv6 as [::1]:502)\n"
          "  --tls-listen HOST[:PORT] Modbus/TCP Security listener (port 802 by default;\n"
          "                           repeatable); needs --cert, --key and --ca\n"
          "  --cert FILE              the server certificate (PEM, then its chain)\n"
          "  --key FILE               its private key\n"
          "  --ca FILE|DIR            the CA(s) client certificates must come from\n"
          "  --crl FILE               CRLs: revoked client certificates are refused\n"
          "  --serial PATH            also serve Modbus RTU on this serial line, as a slave\n"
          "                           answering the configured units (repeatable; without\n"
          "                           --listen or --tls-listen, no TCP listener at all)\n"
          "  --baud N, --parity none|even|odd, --stop 1|2, --data 8|7\n"
          "                           the serial lines' settings (default 19200 8E1)\n"
          "  --ascii                  Modbus ASCII on the serial lines instead of RTU\n"
          "  --rs485 none|kernel|rts  how the lines' RS-485 transmitters are switched (default\n"
          "                           none: RS-232, or adapters that do it themselves)\n"
          "  --rtu-over-tcp ADDRESS   also listen on ADDRESS for masters that speak Modbus RTU\n"
          "                           over TCP (as to a serial-to-Ethernet converter);\n"
          "                           repeatable\n"
          "  --config FILE            YAML configuration (docs/configuration.md)\n"
          "  --check FILE             validate FILE as serve would load it (TLS files, units,\n"
          "                           FIFOs too), print what it sets up, and exit: 0 when it\n"
          "                           is valid, 2 with the error when not\n"
          "  --explain WHO UNIT FUNCTION [ADDRESS [QUANTITY | VALUE...]]\n"
          "                           with --check: what the policy decides for that request\n"
          "                           and why (exit 0 allowed, 1 refused); WHO is a role\n"
          "                           (TLS), a source address (plain TCP) or ROLE@ADDRESS\n"
          "  --persist FILE           keep coils, holding registers and files in FILE\n"
          "  --sync-interval DURATION flush the persistence file this often (default 1s)\n"
          "  --workers N              event loops sharing the port (default 1)\n"
          "  --user NAME              bind as root, then run as NAME\n"
          "  --max-connections N      whole server (default 1024)\n"
          "  --max-per-source N       per client address (default 64)\n"
          "  --idle-timeout DURATION  close connections idle this long (default 60s)\n"
          "  --in-flight N            requests in flight per connection (default 16)\n"
          "  --shutdown-grace DURATION  on SIGTERM, wait this long for answers (default 5s)\n"
          "  --log-format plain|json  log lines on stderr (default plain)\n"
          "  --log-level LEVEL        error, warning, info (default), debug\n"
          "  -h, --help               this text\n"
          "\n"
          "Signals: SIGTERM/SIGINT finish requests in flight and flush persistence; SIGHUP\n"
          "reloads the configuration file and changed TLS files, closing the clients whose\n"
          "certificate a new CA or CRL refuses (a bad file is refused and the old one kept).\n"
          "Port 502 needs privileges: see docs/port-502.md.\n",
          out);
}

static int parse_count(const char *text, uint32_t minimum, uint32_t maximum, uint32_t *value) {
    char *end;
    errno = 0;
    unsigned long parsed = strtoul(text, &end, 10);
    if (errno != 0 || *end != '\0' || text[0] == '-' || text[0] == '\0' || parsed < minimum ||
        parsed > maximum)
        return -1;
    *value = (uint32_t)parsed;
    return 0;
}

static int parse_arguments(int argc, char **argv, struct overrides *overrides) {
    enum {
        OPT_LISTEN = DAEMON_OPT_NEXT,
        OPT_PERSIST,
        OPT_SYNC,
        OPT_WORKERS,
        OPT_USER,
        OPT_MAXCONN,
        OPT_PERSOURCE,
        OPT_IDLE,
        OPT_INFLIGHT,
        OPT_GRACE,
        OPT_TLS_LISTEN,
        OPT_CERT,
        OPT_KEY,
        OPT_CA,
        OPT_CRL,
        OPT_SERIAL,
        OPT_BAUD,
        OPT_PARITY,
        OPT_STOP,
        OPT_DATA,
        OPT_ASCII,
        OPT_RTU_OVER_TCP,
        OPT_RS485,
    };
    static const struct option options[] = {
        DAEMON_LONG_OPTIONS,
        {"listen", required_argument, NULL, OPT_LISTEN},
        {"persist", required_argument, NULL, OPT_PERSIST},
        {"sync-interval", required_argument, NULL, OPT_SYNC},
        {"workers", required_argument, NULL, OPT_WORKERS},
        {"user", required_argument, NULL, OPT_USER},
        {"max-connections", required_argument, NULL, OPT_MAXCONN},
        {"max-per-source", required_argument, NULL, OPT_PERSOURCE},
        {"idle-timeout", required_argument, NULL, OPT_IDLE},
        {"in-flight", required_argument, NULL, OPT_INFLIGHT},
        {"shutdown-grace", required_argument, NULL, OPT_GRACE},
        {"tls-listen", required_argument, NULL, OPT_TLS_LISTEN},
        {"cert", required_argument, NULL, OPT_CERT},
        {"key", required_argument, NULL, OPT_KEY},
        {"ca", required_argument, NULL, OPT_CA},
        {"crl", required_argument, NULL, OPT_CRL},
        {"serial", required_argument, NULL, OPT_SERIAL},
        {"baud", required_argument, NULL, OPT_BAUD},
        {"parity", required_argument, NULL, OPT_PARITY},
        {"stop", required_argument, NULL, OPT_STOP},
        {"data", required_argument, NULL, OPT_DATA},
        {"ascii", no_argument, NULL, OPT_ASCII},
        {"rtu-over-tcp", required_argument, NULL, OPT_RTU_OVER_TCP},
        {"rs485", required_argument, NULL, OPT_RS485},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    memset(overrides, 0, sizeof *overrides);
    daemon_arguments_init(&overrides->common);
    optind = 1;
    for (;;) {
        int option = getopt_long(argc, argv, "h", options, NULL);
        if (option == -1)
            break;
        uint32_t value = 0;
        const char *bad = NULL;
        char duration_problem[256];
        switch (option) {
        case OPT_TLS_LISTEN:
            if (overrides->tls_listen_count >= CONFIG_MAX_LISTEN)
                bad = "too many --tls-listen addresses (16 at most)";
            else
                overrides->tls_listen[overrides->tls_listen_count++] = optarg;
            break;
        case OPT_CERT:
            overrides->certificate = optarg;
            break;
        case OPT_KEY:
            overrides->key = optarg;
            break;
        case OPT_CA:
            overrides->ca = optarg;
            break;
        case OPT_CRL:
            overrides->crl = optarg;
            break;
        case OPT_SERIAL:
            if (overrides->serial_count >= MAX_SERIAL_LINES)
                bad = "too many --serial lines (8 at most)";
            else
                overrides->serial[overrides->serial_count++] = optarg;
            break;
        case OPT_BAUD:
            if (parse_count(optarg, 50, 4000000, &overrides->line.baud) != 0)
                bad = "--baud: a rate from 50 to 4000000";
            break;
        case OPT_PARITY:
            if (strcmp(optarg, "none") == 0)
                overrides->line.parity = 'N';
            else if (strcmp(optarg, "even") == 0)
                overrides->line.parity = 'E';
            else if (strcmp(optarg, "odd") == 0)
                overrides->line.parity = 'O';
            else
                bad = "--parity: none, even or odd";
            break;
        case OPT_STOP:
            if (parse_count(optarg, 1, 2, &value) != 0)
                bad = "--stop: 1 or 2 stop bits";
            overrides->line.stop_bits = (uint8_t)value;
            break;
        case OPT_DATA:
            if (parse_count(optarg, 7, 8, &value) != 0)
                bad = "--data: 7 or 8 data bits";
            overrides->line.data_bits = (uint8_t)value;
            break;
        case OPT_ASCII:
            overrides->ascii = 1;
            break;
        case OPT_RS485:
            if (strcmp(optarg, "none") == 0)
                overrides->line.rs485 = MB_RS485_NONE;
            else if (strcmp(optarg, "kernel") == 0)
                overrides->line.rs485 = MB_RS485_KERNEL;
            else if (strcmp(optarg, "rts") == 0)
                overrides->line.rs485 = MB_RS485_RTS;
            else
                bad = "--rs485: none, kernel or rts";
            break;
        case OPT_RTU_OVER_TCP:
            if (overrides->rtu_listen_count >= MAX_RTU_LISTENERS)
                bad = "too many --rtu-over-tcp listeners (4 at most)";
            else
                overrides->rtu_listen[overrides->rtu_listen_count++] = optarg;
            break;
        case OPT_LISTEN:
            if (overrides->listen_count >= CONFIG_MAX_LISTEN)
                bad = "too many --listen addresses (16 at most)";
            else
                overrides->listen[overrides->listen_count++] = optarg;
            break;
        case DAEMON_OPT_CONFIG:
        case DAEMON_OPT_CHECK:
        case DAEMON_OPT_EXPLAIN:
        case DAEMON_OPT_LOG_FORMAT:
        case DAEMON_OPT_LOG_LEVEL:
            bad = daemon_argument(&overrides->common, option, optarg);
            break;
        case OPT_PERSIST:
            overrides->persist_path = optarg;
            break;
        case OPT_SYNC:
            if (duration_option("--sync-interval", optarg, DURATION_BARE_SECONDS,
                                &overrides->sync_interval_ms, duration_problem,
                                sizeof duration_problem) != 0)
                bad = duration_problem;
            break;
        case OPT_WORKERS:
            if (parse_count(optarg, 1, MAX_WORKERS, &value) != 0)
                bad = "--workers: a number from 1 to 64";
            overrides->workers = (int)value;
            break;
        case OPT_USER:
            overrides->user = optarg;
            break;
        case OPT_MAXCONN:
            if (parse_count(optarg, 1, 1000000, &overrides->limits.max_connections) != 0)
                bad = "--max-connections: a number from 1 to 1000000";
            break;
        case OPT_PERSOURCE:
            if (parse_count(optarg, 1, 1000000, &overrides->limits.max_per_source) != 0)
                bad = "--max-per-source: a number from 1 to 1000000";
            break;
        case OPT_IDLE:
            if (duration_option("--idle-timeout", optarg, DURATION_BARE_SECONDS,
                                &overrides->limits.idle_timeout_ms, duration_problem,
                                sizeof duration_problem) != 0)
                bad = duration_problem;
            break;
        case OPT_INFLIGHT:
            if (parse_count(optarg, 1, 1024, &overrides->limits.max_in_flight) != 0)
                bad = "--in-flight: a number from 1 to 1024";
            break;
        case OPT_GRACE:
            if (duration_option("--shutdown-grace", optarg, DURATION_BARE_SECONDS,
                                &overrides->shutdown_grace_ms, duration_problem,
                                sizeof duration_problem) != 0)
                bad = duration_problem;
            break;
        case 'h':
            usage(stdout);
            return 1;
        default:
            usage(stderr);
            return -1;
        }
        if (bad != NULL) {
            fprintf(stderr, "mbsec serve: %s\n", bad);
            return -1;
        }
    }
    int finished = daemon_arguments_finish(&overrides->common, "mbsec serve", argc, argv, optind);
    if (finished == -2)
        usage(stderr);
    return finished != 0 ? -1 : 0;
}

/* Replaces a string the config owns with a copy of `text`. Returns 0 or -1 (out of memory). */
static int replace_string(char **slot, const char *text) {
    char *copy = strdup(text);
    if (copy == NULL)
        return -1;
    free(*slot);
    *slot = copy;
    return 0;
}

/* Defaults, then the file, then the flags, into `config`. On error writes one line to `error`
 * and leaves `config` as it was. */
static int build_config(const struct overrides *overrides, struct serve_config *config, char *error,
                        size_t capacity) {
    static struct serve_config fresh; /* large; only the first worker's thread builds one */
    config_serve_defaults(&fresh);
    if (overrides->common.config_path != NULL &&
        config_serve_load(overrides->common.config_path, &fresh, error, capacity) != 0) {
        config_serve_free(&fresh);
        return -1;
    }
    if (overrides->listen_count > 0) {
        for (size_t i = 0; i < fresh.front.listen_count; i++)
            free(fresh.front.listen[i]);
        fresh.front.listen_count = 0;
        for (size_t i = 0; i < overrides->listen_count; i++) {
            fresh.front.listen[i] = NULL;
            if (replace_string(&fresh.front.listen[i], overrides->listen[i]) != 0)
                goto out_of_memory;
            fresh.front.listen_count++;
        }
    }
    if (overrides->workers)
        fresh.front.workers = overrides->workers;
    if (overrides->user && replace_string(&fresh.front.user, overrides->user) != 0)
        goto out_of_memory;
    if (overrides->common.log_format >= 0)
        fresh.front.log_format = (enum log_format)overrides->common.log_format;
    if (overrides->common.log_level >= 0)
        fresh.front.log_level = (enum mb_log_level)overrides->common.log_level;
    if (overrides->limits.max_connections)
        fresh.front.limits.max_connections = overrides->limits.max_connections;
    if (overrides->limits.max_per_source)
        fresh.front.limits.max_per_source = overrides->limits.max_per_source;
    if (overrides->limits.idle_timeout_ms)
        fresh.front.limits.idle_timeout_ms = overrides->limits.idle_timeout_ms;
    if (overrides->limits.max_in_flight)
        fresh.front.limits.max_in_flight = overrides->limits.max_in_flight;
    if (overrides->shutdown_grace_ms)
        fresh.front.shutdown_grace_ms = overrides->shutdown_grace_ms;
    if (overrides->persist_path) {
        if (fresh.string_count >= sizeof fresh.strings / sizeof fresh.strings[0]) {
            snprintf(error, capacity, "too many strings in the configuration");
            config_serve_free(&fresh);
            return -1;
        }
        fresh.strings[fresh.string_count] = NULL;
        if (replace_string(&fresh.strings[fresh.string_count], overrides->persist_path) != 0)
            goto out_of_memory;
        fresh.model.persist_path = fresh.strings[fresh.string_count++];
    }
    if (overrides->sync_interval_ms)
        fresh.model.sync_interval_ms = overrides->sync_interval_ms;
    if (overrides->tls_listen_count > 0) {
        for (size_t i = 0; i < fresh.front.tls_listen_count; i++)
            free(fresh.front.tls_listen[i]);
        fresh.front.tls_listen_count = 0;
        for (size_t i = 0; i < overrides->tls_listen_count; i++) {
            /* A host alone listens on Modbus/TCP Security's port, 802. */
            char address[300];
            config_with_port(overrides->tls_listen[i], CONFIG_TLS_PORT, address, sizeof address);
            fresh.front.tls_listen[i] = NULL;
            if (replace_string(&fresh.front.tls_listen[i], address) != 0)
                goto out_of_memory;
            fresh.front.tls_listen_count++;
        }
    }
    if ((overrides->certificate &&
         replace_string(&fresh.front.tls_certificate, overrides->certificate)) ||
        (overrides->key && replace_string(&fresh.front.tls_key, overrides->key)) ||
        (overrides->ca && replace_string(&fresh.front.tls_ca, overrides->ca)) ||
        (overrides->crl && replace_string(&fresh.front.tls_crl, overrides->crl)))
        goto out_of_memory;
    if (fresh.front.tls_handshake_timeout_ms)
        fresh.front.limits.handshake_timeout_ms = fresh.front.tls_handshake_timeout_ms;
    if (fresh.front.tls_listen_count > 0 &&
        (fresh.front.tls_certificate == NULL || fresh.front.tls_key == NULL ||
         fresh.front.tls_ca == NULL)) {
        snprintf(error, capacity,
                 "a TLS listener needs a certificate, its key and the CA of the clients "
                 "(--cert, --key, --ca, or tls.certificate, tls.key, tls.ca; see "
                 "docs/security.md)");
        config_serve_free(&fresh);
        return -1;
    }
    if (fresh.front.workers < 1)
        fresh.front.workers = 1;
    /* The config points into itself (units, FIFOs, strings): copy it with the function that
     * knows, never with an assignment. */
    config_serve_free(config);
    if (config_serve_copy(config, &fresh) != 0)
        goto out_of_memory;
    config_serve_free(&fresh);
    return 0;

out_of_memory:
    snprintf(error, capacity, "out of memory");
    config_serve_free(&fresh);
    return -1;
}

/* ---- authorization ---- */

/* Every request: TLS ones (and plain ones when the configuration says so) go through the
 * worker's policy first; what it denies is answered as the rule says and recorded; the rest
 * reaches the model. Runs in the worker's own thread. */
static int serve_request(void *data, const struct mb_server_request *call, uint8_t *response) {
    struct worker *worker = data;
    /* Plain requests the policy does not look at go straight to the model: what they would do
     * (read or write) is worked out only where something records it (the gateway's audit). */
    if (!call->peer->secure && !worker->authorize_plain)
        return mb_model_handle(worker->serve->model, call, response);
    struct mb_policy_decision decision;
    int answer = 0;
    int allowed = front_authorize(worker->policy, worker->authorize_plain, &worker->serve->logger,
                                  call, response, &decision, &answer);
    if (allowed <= 0)
        return allowed < 0 ? allowed : answer;
    return mb_model_handle(worker->serve->model, call, response);
}

/* The TLS context of the --tls-listen listeners, handed to the reload engine with what only a
 * restart changes. Returns 0 or an exit status. */
static const struct front_config *reload_config_of(const void *fresh);
static void reload_restart_summary(const void *fresh, char *summary, size_t capacity);

static int prepare_tls(struct serve *serve) {
    const struct serve_config *config = &serve->config;
    struct mb_tls_context *tls = NULL;
    char error[400];
    if (config->front.tls_listen_count > 0 &&
        front_tls_create(&config->front, &tls, error, sizeof error) != 0) {
        fprintf(stderr, "mbsec serve: TLS: %s\n", error);
        return EXIT_STATUS_USAGE;
    }
    reload_front_init(&serve->front, config, tls, reload_config_of, reload_restart_summary);
    if (tls != NULL && config->front.policy == NULL)
        logger_message(&serve->logger, MB_LOG_WARNING, "no_policy",
                       "no policy configured: every request over TLS is denied with "
                       "exception 01 until one is (see docs/security.md)");
    return 0;
}

/* ---- workers ---- */

/* Drops the references a message carries. */
static void release_message(const struct command_message *message) {
    mb_tls_context_destroy(message->previous);
    mb_tls_context_destroy(message->next);
    mb_policy_destroy(message->policy);
}

static const char *command_name(char command) {
    switch (command) {
    case COMMAND_SHUTDOWN:
        return "shutdown";
    case COMMAND_LIMITS:
        return "limits";
    case COMMAND_TLS:
        return "TLS context";
    case COMMAND_POLICY:
        return "policy";
    }
    return "unknown";
}

static void send_message(struct serve *serve, const struct command_message *message) {
    for (int i = 1; i < serve->worker_count; i++) {
        struct command_message copy = *message;
        /* Each worker gives back the references its message carries. */
        mb_tls_context_ref(copy.previous);
        mb_tls_context_ref(copy.next);
        mb_policy_ref(copy.policy);
        if (write(serve->workers[i].command_pipe[1], &copy, sizeof copy) != (ssize_t)sizeof copy) {
            /* Only a pipe full of commands the worker has not read yet refuses one (EAGAIN). */
            logger_message(&serve->logger, MB_LOG_ERROR, "command_lost",
                           "worker %d missed a %s command: %s", i, command_name(copy.command),
                           strerror(errno));
            release_message(&copy);
        }
    }
}

static void send_command(struct serve *serve, char command) {
    struct command_message message = {.command = command};
    send_message(serve, &message);
}

/* Makes `policy` (NULL: none) what the worker decides with, taking a reference, and lets go of
 * the one it replaces, which is freed here if no other worker still holds it. Only in the
 * worker's own thread, the one its requests are decided in. */
static void worker_use_policy(struct worker *worker, struct mb_policy *policy,
                              int authorize_plain) {
    struct mb_policy *previous = worker->policy;
    worker->policy = mb_policy_ref(policy);
    worker->authorize_plain = authorize_plain;
    mb_policy_destroy(previous);
}

static void worker_command(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)events;
    (void)loop;
    struct worker *worker = data;
    struct command_message messages[8];
    ssize_t count;
    /* Until the pipe is empty, so that no command waits a turn behind events that came after
     * it (a client that connects once the reload is logged must meet the new policy). Every
     * write is one whole message, so every read is whole messages. */
    while ((count = read(fd, messages, sizeof messages)) > 0) {
        for (ssize_t i = 0; i < count / (ssize_t)sizeof messages[0]; i++) {
            const struct command_message *message = &messages[i];
            if (message->command == COMMAND_SHUTDOWN) {
                mb_server_shutdown(worker->server, worker->serve->config.front.shutdown_grace_ms);
                worker->shut_down = 1;
            } else if (message->command == COMMAND_LIMITS) {
                mb_server_set_limits(worker->server, &worker->serve->config.front.limits);
            } else if (message->command == COMMAND_TLS) {
                mb_server_replace_tls(worker->server, message->previous, message->next);
            } else if (message->command == COMMAND_POLICY) {
                worker_use_policy(worker, message->policy, message->authorize_plain);
            }
            release_message(message);
        }
    }
}

static void *worker_main(void *data) {
    struct worker *worker = data;
    /* A worker leaves only once its own server has shut down (listeners closed) and drained;
     * seeing `stopping` alone could leave its listener open with nobody accepting. */
    while (!(worker->shut_down && mb_server_idle(worker->server)))
        if (mb_loop_run_once(worker->loop, 200) != 0)
            break;
    return NULL;
}

static int worker_create(struct serve *serve, int index) {
    struct worker *worker = &serve->workers[index];
    worker->serve = serve;
    worker->index = index;
    worker->command_pipe[0] = worker->command_pipe[1] = -1;
    struct mb_server_config config = {
        .limits = serve->config.front.limits,
        .handler = serve_request,
        .handler_data = worker, /* the worker's own policy decides */
        .group = serve->group,
        .pass_undecodable = 1, /* the model applies unit, listen-only and 01-before-03 rules */
        .log = logger_write,
        .log_data = &serve->logger,
    };
    if (mb_loop_create(&worker->loop) != 0 ||
        mb_server_create(worker->loop, &config, &worker->server) != 0)
        return -1;
    if (index > 0) {
        if (pipe2(worker->command_pipe, O_CLOEXEC | O_NONBLOCK) != 0 ||
            mb_loop_add(worker->loop, worker->command_pipe[0], MB_IO_READ, worker_command,
                        worker) != 0)
            return -1;
    }
    worker_use_policy(worker, serve->config.front.policy, serve->config.front.authorize_plain);
    return 0;
}

static void worker_destroy(struct worker *worker) {
    mb_server_destroy(worker->server);
    if (worker->command_pipe[0] >= 0) {
        /* Commands sent after the worker stopped reading (a reload during shutdown) still hold
         * references. */
        struct command_message message;
        while (read(worker->command_pipe[0], &message, sizeof message) == (ssize_t)sizeof message)
            release_message(&message);
        mb_loop_remove(worker->loop, worker->command_pipe[0]);
        close(worker->command_pipe[0]);
        close(worker->command_pipe[1]);
    }
    mb_policy_destroy(worker->policy);
    worker->policy = NULL;
    mb_loop_destroy(worker->loop);
}

/* Whether the serial lines answer `unit`: it is one of the configured units. */
static int serial_answers_unit(void *data, uint8_t unit) {
    const struct serve *serve = data;
    for (size_t i = 0; i < serve->config.model.unit_count; i++)
        if (serve->config.model.units[i].unit_id == unit)
            return 1;
    return 0;
}

/* Opens the --serial lines on the first worker's loop, as RTU slaves with its handler (its
 * policy applies to them as to plain TCP: a line has no TLS). Returns 0 or an exit status. */
static int open_serial_lines(struct serve *serve) {
    struct mb_serial_server_config config = {
        .handler = serve_request,
        .handler_data = &serve->workers[0],
        .log = logger_write,
        .log_data = &serve->logger,
        /* One set of tables for every unit id: every address is answered, and a broadcast
         * is applied once (as unit 0, which those tables answer too). */
        .answers_unit = serve->config.model.any_unit ? NULL : serial_answers_unit,
        .unit_data = serve,
        .ascii = serve->overrides.ascii,
    };
    for (size_t i = 0; i < serve->overrides.serial_count; i++) {
        char error[320];
        int rc = mb_serial_server_create(serve->workers[0].loop, serve->overrides.serial[i],
                                         &serve->overrides.line, &config, &serve->serial[i], error,
                                         sizeof error);
        if (rc != 0) {
            fprintf(stderr, "mbsec serve: %s\n", error);
            return rc == MB_EINVAL || rc == MB_ENOMEM ? EXIT_STATUS_FAILURE : EXIT_STATUS_USAGE;
        }
    }
    /* RTU over TCP: the same slave, on connections (ASCII is for lines only). */
    config.ascii = 0;
    for (size_t i = 0; i < serve->overrides.rtu_listen_count; i++) {
        char error[320] = "";
        int rc = rtu_tcp_open(serve->workers[0].loop, serve->overrides.rtu_listen[i], &config,
                              serve->config.front.limits.idle_timeout_ms, &serve->rtu_listeners[i],
                              error, sizeof error);
        if (rc != 0) {
            fprintf(stderr, "mbsec serve: %s\n", error[0] ? error : mb_strerror(rc));
            return rc == MB_ENOMEM ? EXIT_STATUS_FAILURE : EXIT_STATUS_USAGE;
        }
    }
    return 0;
}

/* Opens every listener on every worker. Returns 0 or an exit status. */
static int open_listeners(struct serve *serve) {
    /* Serial lines alone: no TCP listener (not even the default port 502), unless systemd
     * hands sockets over. */
    if (serve->overrides.serial_count + serve->overrides.rtu_listen_count > 0 &&
        serve->config.front.listen_count == 0 && serve->config.front.tls_listen_count == 0 &&
        getenv("LISTEN_FDS") == NULL)
        return 0;
    struct mb_server *servers[MAX_WORKERS];
    for (int w = 0; w < serve->worker_count; w++)
        servers[w] = serve->workers[w].server;
    return front_open_listeners("mbsec serve", &serve->config.front, servers, serve->worker_count,
                                serve->front.tls, &serve->logger);
}

/* ---- signals, reload, persistence ---- */

/*
 * SIGHUP, through the reload engine (app/daemon/reload.h): limits, logging, the policy and the
 * TLS files apply at once; listen addresses, workers, user and persistence need a restart, and
 * units and identity take effect at the next start. The running model keeps pointing into
 * serve->config (identity strings, FIFOs): only the parts a reload may change are taken from the
 * new configuration.
 */
static struct serve_config reload_fresh; /* large: not on the stack; one reload at a time */

static void *reload_load(void *data, char *error, size_t capacity) {
    struct serve *serve = data;
    config_serve_defaults(&reload_fresh);
    if (build_config(&serve->overrides, &reload_fresh, error, capacity) != 0) {
        config_serve_free(&reload_fresh);
        return NULL;
    }
    return &reload_fresh;
}

static const struct front_config *reload_config_of(const void *fresh) {
    return &((const struct serve_config *)fresh)->front;
}

static int reload_commit(void *data, void *given, char *applied, size_t applied_capacity,
                         char *error, size_t error_capacity) {
    (void)error;
    (void)error_capacity;
    struct serve *serve = data;
    struct serve_config *fresh = given;
    serve->config.front.limits = fresh->front.limits;
    serve->config.front.log_format = fresh->front.log_format;
    serve->config.front.log_level = fresh->front.log_level;
    serve->config.front.shutdown_grace_ms = fresh->front.shutdown_grace_ms;
    /* The configuration takes the new policy (and gives `fresh` the old one to free); each
     * worker takes its own reference, in its own thread. */
    struct mb_policy *policy = fresh->front.policy;
    char *policy_text = fresh->front.policy_text;
    fresh->front.policy = serve->config.front.policy;
    fresh->front.policy_text = serve->config.front.policy_text;
    serve->config.front.policy = policy;
    serve->config.front.policy_text = policy_text;
    serve->config.front.authorize_plain = fresh->front.authorize_plain;
    worker_use_policy(&serve->workers[0], policy, serve->config.front.authorize_plain);
    struct command_message message = {.command = COMMAND_POLICY,
                                      .policy = policy,
                                      .authorize_plain = fresh->front.authorize_plain};
    send_message(serve, &message);
    mb_server_set_limits(serve->workers[0].server, &serve->config.front.limits);
    send_command(serve, COMMAND_LIMITS);
    front_log_monitor(&serve->logger, policy);
    snprintf(applied, applied_capacity, "limits, logging, %s",
             policy != NULL ? "policy" : "no policy (everything checked is denied)");
    return 0; /* `fresh` (with the old policy) is freed once the engine has read it: reload() */
}

static void reload_discard(void *data, void *fresh) {
    (void)data;
    config_serve_free(fresh);
}

static void reload_replace_tls(void *data, struct mb_tls_context *previous,
                               struct mb_tls_context *next) {
    struct serve *serve = data;
    /* Workers switch in their own threads; each closes the connections whose client
     * certificate the new context refuses ("tls_revoked"). */
    mb_server_replace_tls(serve->workers[0].server, previous, next);
    struct command_message message = {.command = COMMAND_TLS, .previous = previous, .next = next};
    send_message(serve, &message);
}

static void reload_restart_summary(const void *fresh, char *summary, size_t capacity) {
    const struct serve_config *config = fresh;
    snprintf(summary, capacity, "|persist %s",
             config->model.persist_path != NULL ? config->model.persist_path : "");
}

static void reload(struct serve *serve) {
    const struct reload_program program = {
        .data = serve,
        .logger = &serve->logger,
        .load = reload_load,
        .config_of = reload_config_of,
        .commit = reload_commit,
        .discard = reload_discard,
        .replace_tls = reload_replace_tls,
        .restart_summary = reload_restart_summary,
        .restart_keys = "listen, tls.listen, workers, user or persist",
        .note = "; units and identity take effect at the next start",
    };
    reload_run(&serve->front, &program);
    config_serve_free(&reload_fresh);
}

static void sync_tick(struct mb_loop *loop, struct mb_timer *timer) {
    struct serve *serve = timer->data;
    if (mb_model_sync(serve->model) != 0)
        logger_message(&serve->logger, MB_LOG_ERROR, "persist_error",
                       "flushing the persistence file failed: %s", strerror(errno));
    mb_timer_start(loop, timer, serve->config.model.sync_interval_ms, sync_tick, serve);
}

static void on_signal(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)events;
    (void)loop;
    struct serve *serve = data;
    struct signalfd_siginfo info;
    while (read(fd, &info, sizeof info) == (ssize_t)sizeof info) {
        if (info.ssi_signo == SIGHUP) {
            reload(serve);
        } else if (!serve->stopping) {
            serve->stopping = 1;
            logger_message(&serve->logger, MB_LOG_INFO, "stopping", "signal %s received",
                           info.ssi_signo == SIGTERM ? "SIGTERM" : "SIGINT");
            mb_server_shutdown(serve->workers[0].server, serve->config.front.shutdown_grace_ms);
            serve->workers[0].shut_down = 1;
            send_command(serve, COMMAND_SHUTDOWN);
        }
    }
}

/* A table's extent as "0-999", or "none". */
static void format_extent(const struct mb_table_extent *extent, char *text, size_t capacity) {
    if (extent->size == 0)
        snprintf(text, capacity, "none");
    else
        snprintf(text, capacity, "%u-%lu", extent->start,
                 (unsigned long)extent->start + extent->size - 1);
}

/* --check: the file as serve would load it (TLS files read, the model built without touching
 * the persistence file), what it sets up printed, or --explain's answer. */
static int check(struct serve *serve) {
    const struct serve_config *config = &serve->config;
    char error[512];
    struct mb_tls_context *tls = NULL;
    if (config->front.tls_listen_count > 0 &&
        front_tls_create(&config->front, &tls, error, sizeof error)) {
        fprintf(stderr, "mbsec serve: TLS: %s\n", error);
        return EXIT_STATUS_USAGE;
    }
    mb_tls_context_destroy(tls);
    struct mb_model_config model = config->model;
    model.persist_path = NULL; /* checked, not opened: a running server may hold it */
    struct mb_model *probe = NULL;
    if (mb_model_create(&model, &probe, error, sizeof error) != 0) {
        fprintf(stderr, "mbsec serve: %s\n", error);
        return EXIT_STATUS_USAGE;
    }
    mb_model_destroy(probe);
    if (serve->overrides.common.explain_count > 0)
        return front_explain("mbsec serve", config->front.policy, config->front.authorize_plain,
                             serve->overrides.common.explain,
                             serve->overrides.common.explain_count);
    printf("%s: valid\n\nlisten (plain Modbus/TCP):\n", serve->overrides.common.config_path);
    for (size_t i = 0; i < config->front.listen_count; i++)
        printf("  %s\n", config->front.listen[i]);
    if (config->front.listen_count == 0 && config->front.tls_listen_count == 0)
        printf("  0.0.0.0:502\n  [::]:502\n");
    for (size_t i = 0; i < config->front.tls_listen_count; i++)
        printf("%s  %s\n", i == 0 ? "tls (Modbus/TCP Security):\n" : "",
               config->front.tls_listen[i]);
    printf("workers: %d%s%s\n", config->front.workers ? config->front.workers : 1,
           config->front.user ? ", then as user " : "",
           config->front.user ? config->front.user : "");
    printf("limits: %u connections, %u per source, %u in flight per connection\n",
           config->front.limits.max_connections, config->front.limits.max_per_source,
           config->front.limits.max_in_flight);
    printf("persistence: %s\n",
           config->model.persist_path ? config->model.persist_path : "none (in memory)");
    if (config->model.any_unit)
        printf("units: every unit id answers with the same tables\n");
    else
        printf("units (%zu; other unit ids get 0B):\n", config->model.unit_count);
    for (size_t i = 0; i < config->model.unit_count; i++) {
        const struct mb_unit_config *unit = &config->model.units[i];
        char coils[24], inputs[24], holding[24], input_registers[24];
        format_extent(&unit->coils, coils, sizeof coils);
        format_extent(&unit->discrete_inputs, inputs, sizeof inputs);
        format_extent(&unit->holding_registers, holding, sizeof holding);
        format_extent(&unit->input_registers, input_registers, sizeof input_registers);
        char name[24];
        if (config->model.any_unit)
            snprintf(name, sizeof name, "every unit id");
        else
            snprintf(name, sizeof name, "unit %u", unit->unit_id);
        printf("  %s: coils %s, discrete inputs %s, holding registers %s, input registers %s, "
               "%u files, %zu FIFOs\n",
               name, coils, inputs, holding, input_registers, unit->files, unit->fifo_count);
    }
    size_t rules = mb_policy_rule_count(config->front.policy);
    if (config->front.policy == NULL) {
        printf("\npolicy: none (%s)\n",
               config->front.tls_listen_count > 0 || config->front.authorize_plain
                   ? "every request checked is denied with 01"
                   : "plain requests are not checked");
        return EXIT_STATUS_OK;
    }
    printf("\npolicy (%zu rule%s, checking %s; the first rule that matches decides):\n", rules,
           rules == 1 ? "" : "s",
           config->front.authorize_plain ? "every request" : "requests over TLS only");
    front_print_rules(&config->front);
    return EXIT_STATUS_OK;
}

/* Everything a running simulator needs, in order: the model, the workers, TLS, the listeners,
 * the user, signals and the persistence timer. Returns 0 or an exit status. */
static int start(struct serve *serve, sigset_t *signals) {
    char error[512];
    front_raise_descriptor_limit(&serve->logger, serve->config.front.limits.max_connections,
                                 serve->config.front.workers);
    if (mb_model_create(&serve->config.model, &serve->model, error, sizeof error) != 0) {
        fprintf(stderr, "mbsec serve: %s\n", error);
        return EXIT_STATUS_FAILURE;
    }
    if (mb_server_group_create(&serve->group) != 0) {
        fprintf(stderr, "mbsec serve: out of memory\n");
        return EXIT_STATUS_FAILURE;
    }
    serve->worker_count = serve->config.front.workers;
    for (int i = 0; i < serve->worker_count; i++)
        if (worker_create(serve, i) != 0) {
            fprintf(stderr, "mbsec serve: cannot start worker %d: out of resources\n", i);
            return EXIT_STATUS_FAILURE;
        }
    int status = prepare_tls(serve);
    if (status == 0)
        status = open_listeners(serve);
    if (status == 0)
        status = open_serial_lines(serve);
    if (status != 0)
        return status;
    if (serve->config.front.user != NULL &&
        front_drop_privileges("mbsec serve", serve->config.front.user) != 0)
        return EXIT_STATUS_FAILURE;
    serve->signal_fd = signalfd(-1, signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (serve->signal_fd < 0 ||
        mb_loop_add(serve->workers[0].loop, serve->signal_fd, MB_IO_READ, on_signal, serve) != 0) {
        fprintf(stderr, "mbsec serve: cannot watch signals: %s\n", strerror(errno));
        return EXIT_STATUS_FAILURE;
    }
    if (serve->config.model.persist_path != NULL)
        mb_timer_start(serve->workers[0].loop, &serve->sync_timer,
                       serve->config.model.sync_interval_ms, sync_tick, serve);
    logger_message(&serve->logger, MB_LOG_INFO, "started", "%d worker(s), %s%s",
                   serve->worker_count,
                   serve->config.model.persist_path ? "persisting to " : "in memory",
                   serve->config.model.persist_path ? serve->config.model.persist_path : "");
    front_log_monitor(&serve->logger, serve->config.front.policy);
    return 0;
}

/* The workers' threads, the first worker in this one, until they have all stopped. */
static void run(struct serve *serve) {
    for (int i = 1; i < serve->worker_count; i++) {
        if (pthread_create(&serve->workers[i].thread, NULL, worker_main, &serve->workers[i]) != 0) {
            fprintf(stderr, "mbsec serve: cannot start worker thread %d\n", i);
            serve->stopping = 1;
            mb_server_shutdown(serve->workers[0].server, 0);
            serve->workers[0].shut_down = 1;
            send_command(serve, COMMAND_SHUTDOWN);
            break;
        }
        serve->workers[i].running = 1;
    }
    worker_main(&serve->workers[0]);
    for (int i = 1; i < serve->worker_count; i++)
        if (serve->workers[i].running)
            pthread_join(serve->workers[i].thread, NULL);
}

/* Undoes start(), however far it came; the model is flushed as it goes. */
static void finish(struct serve *serve, int status) {
    for (size_t i = 0; i < MAX_SERIAL_LINES; i++) {
        mb_serial_server_destroy(serve->serial[i]);
        serve->serial[i] = NULL;
    }
    for (size_t i = 0; i < MAX_RTU_LISTENERS; i++) {
        rtu_tcp_close(serve->rtu_listeners[i]);
        serve->rtu_listeners[i] = NULL;
    }
    if (serve->worker_count > 0)
        mb_timer_stop(serve->workers[0].loop, &serve->sync_timer);
    if (serve->signal_fd >= 0) {
        if (serve->workers[0].loop != NULL)
            mb_loop_remove(serve->workers[0].loop, serve->signal_fd);
        close(serve->signal_fd);
    }
    for (int i = 0; i < serve->worker_count; i++)
        if (serve->workers[i].loop != NULL)
            worker_destroy(&serve->workers[i]);
    mb_server_group_destroy(serve->group);
    if (serve->model != NULL) {
        mb_model_destroy(serve->model);
        if (status == EXIT_STATUS_OK)
            logger_message(&serve->logger, MB_LOG_INFO, "stopped", "%s",
                           serve->config.model.persist_path ? "persistence flushed"
                                                            : "all connections closed");
    }
    reload_front_release(&serve->front);
    config_serve_free(&serve->config);
}

int cmd_serve(int argc, char **argv) {
    static struct serve serve; /* large (the config holds 256 unit slots): not on the stack */
    char error[512];
    memset(&serve, 0, sizeof serve);
    serve.signal_fd = -1;
    int parsed = parse_arguments(argc, argv, &serve.overrides);
    if (parsed != 0)
        return parsed > 0 ? EXIT_STATUS_OK : EXIT_STATUS_USAGE;
    config_serve_defaults(&serve.config);
    if (build_config(&serve.overrides, &serve.config, error, sizeof error) != 0) {
        fprintf(stderr, "mbsec serve: %s\n", error);
        config_serve_free(&serve.config);
        return EXIT_STATUS_USAGE;
    }
    if (serve.overrides.common.check) {
        int status = check(&serve);
        config_serve_free(&serve.config);
        return status;
    }
    serve.logger.stream = stderr;
    serve.logger.format = serve.config.front.log_format;
    serve.logger.level = serve.config.front.log_level;

    /* Before any thread starts, so that every thread has them blocked. */
    sigset_t signals;
    front_block_signals(&signals);
    int status = start(&serve, &signals);
    if (status == 0) {
        run(&serve);
        status = EXIT_STATUS_OK;
    }
    finish(&serve, status);
    return status;
}
