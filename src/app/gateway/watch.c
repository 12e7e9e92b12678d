/* SPDX-License-Identifier: MIT */
#include "app/gateway/watch.h"

#include <ctype.h>
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/common/json.h"
#include "app/common/policy_hash.h"
#include "app/config/watch.h"
#include "app/daemon/audit.h"
#include "app/daemon/ratelimit.h"
#include "mbsec/error.h"
#include "mbsec/pdu.h"
#include "mbsec/tls.h"
#include "mbsec/version.h"

#define PENDING_BUCKETS 1024
#define MAX_HISTOGRAMS (CONFIG_MAX_BACKENDS * 2) /* backends, and those a reload replaced */
#define VALUES_SHOWN 64 /* values of a write put in its record; the rest is counted */

/* Backend latency buckets, in microseconds (the metric is in seconds). */
static const uint32_t latency_bounds_us[] = {250,    500,     1000,    2500,   5000,
                                             10000,  25000,   50000,   100000, 250000,
                                             500000, 1000000, 2500000, 5000000};
#define LATENCY_BUCKETS (sizeof latency_bounds_us / sizeof latency_bounds_us[0])

/* A forwarded request whose record waits for its outcome: its decoding, views into `pdu`. */
struct pending {
    uint64_t connection_id;
    uint16_t transaction_id;
    uint8_t unit;
    uint8_t pdu[MB_PDU_MAX];
    uint8_t pdu_length;
    struct mb_request request;
    int checked;
    int write;      /* as the policy tells reads from writes (FC 8/00 reads) */
    int would_deny; /* forwarded only because the refusing rule is in monitor mode */
    char rule[MB_POLICY_MAX_NAME + 1];
    struct pending *next;
};

struct histogram {
    char backend[64];
    uint64_t counts[LATENCY_BUCKETS + 1]; /* the last: above every bound */
    uint64_t sum_us;
    uint64_t total;
};

enum outcome {
    ANSWERED,
    DEVICE_EXCEPTION,
    UNAVAILABLE,
    TIMEOUT,
    MISMATCH,
    OVER_SHARE,
    REJECTED,
    SKIPPED,
    BROADCAST,
    OUTCOMES
};
static const char *const outcome_names[OUTCOMES] = {"answered", "device_exception", "unavailable",
                                                    "timeout",  "mismatch",         "over_share",
                                                    "rejected", "skipped",          "broadcast"};

enum alert {
    ALERT_SCAN,
    ALERT_DENIALS,
    ALERT_MALFORMED,
    ALERT_FLOOD,
    ALERT_CONNECTION_FLOOD,
    ALERT_RESTART,
    ALERT_LISTEN_ONLY,
    ALERT_SHARE,
    ALERTS
};
static const char *const alert_names[ALERTS] = {
    "unit_scan",        "denial_burst", "malformed_frames", "request_flood",
    "connection_flood", "fc8_restart",  "fc8_listen_only",  "backend_share"};

/* Requests a rule in monitor mode refused and the gateway forwarded, by rule name and action:
 * kept by name across reloads, so that a rule's count goes on while it stays. */
struct would_deny_count {
    char rule[MB_POLICY_MAX_NAME + 1];
    uint64_t counts[MB_POLICY_CLOSE + 1]; /* by enum mb_policy_action */
};
#define MAX_WOULD_DENY_RULES 4096 /* names kept; beyond, counted in the total only */

struct watch {
    struct logger *logger;
    struct audit *audit;
    char policy_sha256[POLICY_HASH_TEXT]; /* of the policy in force: in denied records, metrics */
    size_t policy_rules;
    size_t policy_monitored; /* rules in monitor mode, the default deny counted as one */
    struct would_deny_count *would_deny;
    size_t would_deny_count;
    /* For the policy in force: rule index (the rule count for the default) to its entry in
     * would_deny; SIZE_MAX for a rule that is enforced (or had no room). */
    size_t *would_deny_slot;
    uint64_t would_deny_total;
    struct config_guard sinks;         /* the sink settings in force (a copy; its strings owned) */
    char started[40];                  /* when the gateway started, for its status on the broker */
    char status_sent[1100];            /* what the last status said (state, backends) */
    size_t status_backends, status_up; /* the backends as the last live status had them */
    char status_down[1024];
    char mqtt_password[512]; /* what mqtt.password_file held when last read */
    struct mb_timer metrics_timer;
    int audit_reads;
    struct ratelimit *guard;
    struct ratelimit_settings settings;
    enum config_over_rate over_rate;
    struct mb_loop *loop;
    struct mb_server *server;
    struct mb_gateway *gateway;
    struct pending *pending[PENDING_BUCKETS];
    uint64_t pending_count;
    struct histogram histograms[MAX_HISTOGRAMS];
    size_t histogram_count;
    /* counters */
    uint64_t requests[256];
    uint64_t outcomes[OUTCOMES];
    uint64_t exceptions[3][256];           /* by source: 0 policy, 1 device, 2 gateway */
    uint64_t denials[MB_POLICY_CLOSE + 1]; /* by enum mb_policy_action */
    uint64_t rate_limited;
    uint64_t malformed_front;
    uint64_t sanity_backend;
    uint64_t alerts[ALERTS];
    uint64_t reloads, reloads_refused;
    uint64_t sink_failures; /* reloads that kept the old audit sinks */
    uint64_t refused;       /* connections refused at accept (every one, logged or not) */
    uint64_t refusal_summaries;
    struct mb_timer summary_timer;
};

static uint64_t now_ms(const struct watch *watch) {
    return watch->loop != NULL ? mb_loop_now(watch->loop) : 0;
}

/* ---- sinks ---- */

/* The audit settings of a configuration as audit.h takes them, with the storage they point
 * into. */
struct sinks {
    struct audit_config config;
    struct mb_tls_config syslog_tls, mqtt_tls;
    struct audit_mqtt mqtt;
    char name[80], prefix[300], client_id[160], password[512], will[600];
};

/* The gateway's name for the broker: mqtt.name, or the host name (its characters outside
 * letters, digits, '-', '_' and '.' made '-'). */
void watch_mqtt_name(const struct config_mqtt *mqtt, char *name, size_t capacity) {
    char host[256] = "";
    if (mqtt->name != NULL) {
        snprintf(name, capacity, "%s", mqtt->name);
        return;
    }
    if (gethostname(host, sizeof host) != 0 || host[0] == '\0')
        snprintf(host, sizeof host, "gateway");
    host[sizeof host - 1] = '\0';
    for (char *c = host; *c; c++)
        if (!isalnum((unsigned char)*c) && *c != '-' && *c != '_' && *c != '.')
            *c = '-';
    snprintf(name, capacity, "%.64s", host);
}

/* The first line of a password file. Returns 0, or -1 with `error`. */
static int read_password(const char *path, char *password, size_t capacity, char *error,
                         size_t error_capacity) {
    FILE *file = fopen(path, "re");
    if (file == NULL) {
        snprintf(error, error_capacity, "mqtt.password_file %s: %s", path, strerror(errno));
        return -1;
    }
    if (fgets(password, (int)capacity, file) == NULL)
        password[0] = '\0';
    fclose(file);
    password[strcspn(password, "\r\n")] = '\0';
    return 0;
}

static int sink_config(const struct config_guard *guard, const char *started, struct sinks *sinks,
                       char *error, size_t capacity) {
    memset(sinks, 0, sizeof *sinks);
    const struct config_sink_tls *given = &guard->audit_syslog_tls;
    sinks->syslog_tls = (struct mb_tls_config){
        .certificate_file = given->certificate,
        .key_file = given->key,
        .ca_file = given->ca,
        .pin = given->pin,
        .server_name = given->server_name,
    };
    sinks->config = (struct audit_config){
        .file = guard->audit_file,
        .syslog = guard->audit_syslog,
        .syslog_tls = &sinks->syslog_tls,
        .spool = guard->audit_spool,
        .spool_bytes = guard->audit_spool_bytes,
        .app_name = "mbsec-gateway",
    };
    const struct config_mqtt *mqtt = &guard->mqtt;
    if (mqtt->broker == NULL)
        return 0;
    sinks->mqtt_tls = (struct mb_tls_config){
        .certificate_file = mqtt->tls.certificate,
        .key_file = mqtt->tls.key,
        .ca_file = mqtt->tls.ca,
        .pin = mqtt->tls.pin,
        .server_name = mqtt->tls.server_name,
    };
    watch_mqtt_name(mqtt, sinks->name, sizeof sinks->name);
    if (mqtt->prefix != NULL)
        snprintf(sinks->prefix, sizeof sinks->prefix, "%s", mqtt->prefix);
    else
        snprintf(sinks->prefix, sizeof sinks->prefix, "mbsec/%s", sinks->name);
    if (mqtt->client_id != NULL)
        snprintf(sinks->client_id, sizeof sinks->client_id, "%s", mqtt->client_id);
    else
        snprintf(sinks->client_id, sizeof sinks->client_id, "mbsec-%s", sinks->name);
    if (mqtt->password_file != NULL && read_password(mqtt->password_file, sinks->password,
                                                     sizeof sinks->password, error, capacity) != 0)
        return -1;
    struct json will;
    json_begin(&will);
    json_string(&will, "state", "down");
    json_string(&will, "name", sinks->name);
    json_string(&will, "started", started);
    json_string(&will, "reason", "the connection to the broker ended without a goodbye");
    snprintf(sinks->will, sizeof sinks->will, "%s", json_end(&will));
    sinks->mqtt = (struct audit_mqtt){
        .broker = mqtt->broker,
        .tls = &sinks->mqtt_tls,
        .protocol = mqtt->protocol,
        .client_id = sinks->client_id,
        .username = mqtt->username,
        .password = mqtt->password_file != NULL ? sinks->password : NULL,
        .keepalive_s = mqtt->keepalive_ms / 1000,
        .prefix = sinks->prefix,
        .will = sinks->will,
        .records = mqtt->audit,
    };
    sinks->config.mqtt = &sinks->mqtt;
    return 0;
}

static int open_sinks(const struct config_guard *guard, const char *started, struct audit **audit,
                      char *error, size_t capacity) {
    static struct sinks sinks; /* one thread: the gateway's */
    if (sink_config(guard, started, &sinks, error, capacity) != 0)
        return -1;
    int rc = audit_open(&sinks.config, audit, error, capacity);
    memset(sinks.password, 0, sizeof sinks.password);
    return rc == 0 ? 0 : -1;
}

int watch_check_sinks(const struct config_guard *guard, char *error, size_t capacity) {
    static struct sinks sinks;
    if (sink_config(guard, "", &sinks, error, capacity) != 0)
        return -1;
    memset(sinks.password, 0, sizeof sinks.password);
    return audit_check(&sinks.config, error, capacity) == 0 ? 0 : -1;
}

static int same_text(const char *a, const char *b) {
    return strcmp(a != NULL ? a : "", b != NULL ? b : "") == 0;
}

static int same_tls(const struct config_sink_tls *x, const struct config_sink_tls *y) {
    return same_text(x->certificate, y->certificate) && same_text(x->key, y->key) &&
           same_text(x->ca, y->ca) && same_text(x->pin, y->pin) &&
           same_text(x->server_name, y->server_name);
}

static int same_mqtt(const struct config_mqtt *a, const struct config_mqtt *b) {
    return same_text(a->broker, b->broker) && same_tls(&a->tls, &b->tls) &&
           same_text(a->name, b->name) && same_text(a->prefix, b->prefix) &&
           same_text(a->client_id, b->client_id) && same_text(a->username, b->username) &&
           same_text(a->password_file, b->password_file) && a->protocol == b->protocol &&
           a->keepalive_ms == b->keepalive_ms && a->audit == b->audit;
}

/* Whether two configurations name the same sinks, with the same settings. */
static int same_sinks(const struct config_guard *a, const struct config_guard *b) {
    const struct config_sink_tls *x = &a->audit_syslog_tls, *y = &b->audit_syslog_tls;
    return same_text(a->audit_file, b->audit_file) && same_text(a->audit_syslog, b->audit_syslog) &&
           same_text(a->audit_spool, b->audit_spool) &&
           a->audit_spool_bytes == b->audit_spool_bytes &&
           same_text(x->certificate, y->certificate) && same_text(x->key, y->key) &&
           same_text(x->ca, y->ca) && same_text(x->pin, y->pin) &&
           same_text(x->server_name, y->server_name) && same_mqtt(&a->mqtt, &b->mqtt);
}

/* Whether the sinks ship through a spool (one shipper per spool at a time). */
static int ships(const struct config_guard *guard) {
    return guard->mqtt.broker != NULL ||
           (guard->audit_syslog != NULL && (strncmp(guard->audit_syslog, "tcp:", 4) == 0 ||
                                            strncmp(guard->audit_syslog, "tls:", 4) == 0));
}

static void remember_sinks(struct watch *watch, const struct config_guard *guard) {
    struct config_guard copy;
    if (config_guard_copy(&copy, guard) != 0)
        return; /* out of memory: the next reload compares against the older settings */
    config_guard_free(&watch->sinks);
    watch->sinks = copy;
}

/* The entry of a rule name in the would_deny counts, added when new (SIZE_MAX: no room). */
static size_t would_deny_entry(struct watch *watch, const char *rule) {
    for (size_t i = 0; i < watch->would_deny_count; i++)
        if (strcmp(watch->would_deny[i].rule, rule) == 0)
            return i;
    if (watch->would_deny_count == MAX_WOULD_DENY_RULES)
        return SIZE_MAX;
    if (watch->would_deny == NULL) {
        watch->would_deny = calloc(MAX_WOULD_DENY_RULES, sizeof *watch->would_deny);
        if (watch->would_deny == NULL)
            return SIZE_MAX;
    }
    struct would_deny_count *entry = &watch->would_deny[watch->would_deny_count];
    snprintf(entry->rule, sizeof entry->rule, "%s", rule);
    return watch->would_deny_count++;
}

/* Which rules of a new policy are in monitor mode, and where each one's counts are: done once
 * per reload, so that a would-deny costs an index, not a search. */
static void index_monitored_rules(struct watch *watch, const struct mb_policy *policy) {
    size_t rules = mb_policy_rule_count(policy);
    free(watch->would_deny_slot);
    watch->would_deny_slot = NULL;
    watch->policy_monitored = 0;
    if (policy == NULL)
        return;
    size_t *slots = malloc((rules + 1) * sizeof *slots);
    for (size_t i = 0; i <= rules; i++) {
        int monitored = mb_policy_rule_monitor(policy, i);
        watch->policy_monitored += (size_t)monitored;
        if (slots != NULL)
            slots[i] = monitored
                           ? would_deny_entry(watch, i < rules ? mb_policy_rule_name(policy, i)
                                                               : "default")
                           : SIZE_MAX;
    }
    watch->would_deny_slot = slots;
}

static void take_settings(struct watch *watch, const struct gateway_config *config) {
    const struct config_guard *guard = &config->guard;
    struct ratelimit_settings settings = {
        .rate = guard->rate,
        .burst = guard->burst,
        .window_ms = guard->alert_window_ms,
        .scan_units = guard->alert_scan_units,
        .denials = guard->alert_denials,
        .malformed = guard->alert_malformed,
        .rate_limited = guard->alert_rate_limited,
        .refused = guard->alert_rate_limited,
        .over_share = guard->alert_rate_limited,
    };
    watch->settings = settings;
    watch->over_rate = guard->over_rate;
    watch->audit_reads = guard->audit_reads;
    policy_hash(config->front.policy, watch->policy_sha256);
    watch->policy_rules = mb_policy_rule_count(config->front.policy);
}

int watch_create(const struct gateway_config *config, struct logger *logger,
                 struct watch **watch_out, char *error, size_t capacity) {
    struct watch *watch = calloc(1, sizeof *watch);
    if (watch == NULL) {
        snprintf(error, capacity, "out of memory");
        return -1;
    }
    watch->logger = logger;
    log_timestamp(watch->started, sizeof watch->started);
    take_settings(watch, config);
    if (ratelimit_create(&watch->settings, &watch->guard) != 0) {
        snprintf(error, capacity, "out of memory");
        free(watch);
        return -1;
    }
    if (open_sinks(&config->guard, watch->started, &watch->audit, error, capacity) != 0) {
        ratelimit_destroy(watch->guard);
        free(watch);
        return -1;
    }
    remember_sinks(watch, &config->guard);
    index_monitored_rules(watch, config->front.policy);
    if (config->guard.mqtt.password_file != NULL) {
        char ignored[256];
        (void)read_password(config->guard.mqtt.password_file, watch->mqtt_password,
                            sizeof watch->mqtt_password, ignored, sizeof ignored);
    }
    *watch_out = watch;
    return 0;
}

static void summary_tick(struct mb_loop *loop, struct mb_timer *timer);
static void write_summary(void *data, const struct ratelimit_refusals *summary);

/*
 * The gateway's status on the broker, retained on PREFIX/status: up (or stopped), its version,
 * since when, the policy in force (its hash), the backends and which are down. Sent again when
 * something in it changes; the Last Will replaces it with "down" when the gateway vanishes.
 */
static void publish_status(struct watch *watch, const char *state, int force) {
    if (!audit_has_broker(watch->audit))
        return;
    char now[40], name[80], down[1024] = "[";
    log_timestamp(now, sizeof now);
    watch_mqtt_name(&watch->sinks.mqtt, name, sizeof name);
    /* Stopping, the gateway may be gone already: the backends as the last status had them. */
    int live = watch->gateway != NULL && strcmp(state, "stopped") != 0;
    size_t count = live ? mb_gateway_backend_count(watch->gateway) : watch->status_backends;
    size_t up = live ? 0 : watch->status_up;
    if (!live)
        snprintf(down, sizeof down, "%s", watch->status_down[0] ? watch->status_down : "[]");
    for (size_t i = 0; live && i < count; i++) {
        struct mb_gateway_backend_info info;
        if (mb_gateway_backend_info(watch->gateway, i, &info) != 0)
            continue;
        if (info.connections_up > 0) {
            up++;
            continue;
        }
        struct json quoted;
        json_begin(&quoted);
        json_string(&quoted, "n", info.name);
        const char *text = json_end(&quoted); /* {"n":"NAME"}: the name quoted at 5.. */
        size_t used = strlen(down), length = strlen(text);
        if (length > 6 && used + length < sizeof down - 2)
            snprintf(down + used, sizeof down - used, "%s%.*s", used > 1 ? "," : "",
                     (int)(length - 6), text + 5);
    }
    if (live) {
        strcat(down, "]");
        watch->status_backends = count;
        watch->status_up = up;
        snprintf(watch->status_down, sizeof watch->status_down, "%s", down);
    }
    /* A backend that keeps failing reports each attempt: only a change goes to the broker. */
    char key[sizeof down + 64];
    snprintf(key, sizeof key, "%s %zu %zu %s", state, count, up, down);
    if (!force && strcmp(key, watch->status_sent) == 0)
        return;
    snprintf(watch->status_sent, sizeof watch->status_sent, "%s", key);
    struct json json;
    json_begin(&json);
    json_string(&json, "state", state);
    json_string(&json, "name", name);
    json_string(&json, "version", MB_VERSION_STRING);
    json_string(&json, "started", watch->started);
    json_string(&json, "time", now);
    json_uint(&json, "pid", (uint64_t)getpid());
    json_string(&json, "policy_sha256", watch->policy_sha256);
    json_uint(&json, "policy_rules", watch->policy_rules);
    json_uint(&json, "backends", count);
    json_uint(&json, "backends_up", up);
    json_raw(&json, "backends_down", down);
    audit_notice(watch->audit, "status", json_end(&json));
}

/*
 * A metrics snapshot on PREFIX/metrics, retained: the Prometheus endpoint's samples as one JSON
 * object, {"name{labels}": value, ...}, with the time.
 */
static void publish_metrics(struct watch *watch) {
    char *text = NULL, *snapshot = NULL;
    size_t length = 0, size = 0;
    FILE *out = open_memstream(&text, &length);
    if (out == NULL)
        return;
    watch_render(watch, "/metrics", out);
    fclose(out);
    FILE *json = open_memstream(&snapshot, &size);
    if (json == NULL) {
        free(text);
        return;
    }
    char now[40];
    log_timestamp(now, sizeof now);
    fprintf(json, "{\"time\":\"%s\"", now);
    for (char *line = strtok(text, "\n"); line != NULL; line = strtok(NULL, "\n")) {
        char *space = strrchr(line, ' ');
        if (line[0] == '#' || space == NULL)
            continue;
        *space = '\0';
        fputs(",\"", json);
        for (const char *c = line; *c; c++) {
            if (*c == '"' || *c == '\\')
                fputc('\\', json);
            fputc(*c, json);
        }
        /* Prometheus values are numbers, +Inf, -Inf or NaN; JSON has only numbers. */
        const char *value = space + 1;
        int number = strspn(value, "0123456789.eE+-") == strlen(value) && strcmp(value, "+Inf") &&
                     strcmp(value, "-Inf");
        fprintf(json, "\":%s%s%s", number ? "" : "\"", value, number ? "" : "\"");
    }
    fputc('}', json);
    fclose(json);
    free(text);
    if (snapshot != NULL)
        audit_notice(watch->audit, "metrics", snapshot);
    free(snapshot);
}

static void metrics_tick(struct mb_loop *loop, struct mb_timer *timer) {
    struct watch *watch = timer->data;
    publish_metrics(watch);
    if (watch->sinks.mqtt.metrics_interval_ms > 0)
        mb_timer_start(loop, timer, watch->sinks.mqtt.metrics_interval_ms, metrics_tick, watch);
}

/* After the sinks or the settings changed: the status again, the snapshots at the interval. */
static void broker_settings(struct watch *watch) {
    if (watch->loop == NULL)
        return;
    mb_timer_stop(watch->loop, &watch->metrics_timer);
    if (!audit_has_broker(watch->audit))
        return;
    publish_status(watch, "up", 1);
    if (watch->sinks.mqtt.metrics_interval_ms > 0)
        mb_timer_start(watch->loop, &watch->metrics_timer, watch->sinks.mqtt.metrics_interval_ms,
                       metrics_tick, watch);
}

void watch_attach(struct watch *watch, struct mb_loop *loop, struct mb_server *server,
                  struct mb_gateway *gateway) {
    watch->loop = loop;
    watch->server = server;
    watch->gateway = gateway;
    mb_timer_start(loop, &watch->summary_timer, 1000, summary_tick, watch);
    broker_settings(watch);
}

static void begin(struct json *json, const char *type);
static void emit(struct watch *watch, enum audit_severity severity, const char *type,
                 struct json *json);

/*
 * A reload that could not open (or reopen) the audit sinks it names: everything else of the
 * reload is applied by the caller, the sinks in use stay, and this is said where it will be
 * seen: an error line, a record in the sinks that still work, a metric.
 */
static void sinks_kept(struct watch *watch, const char *error) {
    watch->sink_failures++;
    logger_message(watch->logger, MB_LOG_ERROR, "audit_reopen_failed",
                   "%s; the audit records keep going where they went before (the rest of the "
                   "reload is applied)",
                   error);
    struct json json;
    begin(&json, "audit");
    json_string(&json, "event", "reopen_failed");
    json_string(&json, "detail", error);
    json_string(&json, "file", watch->sinks.audit_file);
    json_string(&json, "syslog", watch->sinks.audit_syslog);
    emit(watch, AUDIT_ERROR, "audit", &json);
}

int watch_reload(struct watch *watch, const struct gateway_config *config, char *error,
                 size_t capacity) {
    const struct config_guard *guard = &config->guard;
    /* A password file read again: a new password (the file's content) is a new sink. */
    char password[512] = "", ignored[256];
    if (guard->mqtt.password_file != NULL)
        (void)read_password(guard->mqtt.password_file, password, sizeof password, ignored,
                            sizeof ignored);
    int same = same_sinks(&watch->sinks, guard) && strcmp(password, watch->mqtt_password) == 0;
    snprintf(watch->mqtt_password, sizeof watch->mqtt_password, "%s", password);
    memset(password, 0, sizeof password);
    int kept = 0;
    take_settings(watch, config);
    index_monitored_rules(watch, config->front.policy);
    ratelimit_configure(watch->guard, &watch->settings);
    if (same) {
        kept = audit_reopen(watch->audit, error, capacity) != 0;
    } else if (ships(&watch->sinks) && ships(guard) &&
               same_text(watch->sinks.audit_spool, guard->audit_spool)) {
        /* One shipper per spool: the old one stops (its records stay spooled) before the new
         * one opens the spool. Nothing is written in between: records come from this thread. */
        audit_close(watch->audit);
        watch->audit = NULL;
        kept = open_sinks(guard, watch->started, &watch->audit, error, capacity) != 0;
        if (!kept) {
            remember_sinks(watch, guard);
        } else {
            char again[512];
            if (open_sinks(&watch->sinks, watch->started, &watch->audit, again, sizeof again) != 0)
                logger_message(watch->logger, MB_LOG_ERROR, "audit_failed",
                               "the audit sinks in force could not be opened again either: %s",
                               again);
        }
    } else {
        struct audit *fresh = NULL;
        kept = open_sinks(guard, watch->started, &fresh, error, capacity) != 0;
        if (!kept) {
            audit_close(watch->audit);
            watch->audit = fresh;
            remember_sinks(watch, guard);
        }
    }
    if (kept)
        sinks_kept(watch, error);
    else
        watch->sinks.mqtt.metrics_interval_ms = guard->mqtt.metrics_interval_ms;
    broker_settings(watch);
    return kept;
}

int watch_hand_over(struct watch *watch, unsigned uid, unsigned gid, char *error, size_t capacity) {
    return audit_hand_over(watch->audit, uid, gid, error, capacity) == 0 ? 0 : -1;
}

void watch_count_reload(struct watch *watch, int refused) {
    if (refused)
        watch->reloads_refused++;
    else
        watch->reloads++;
}

void watch_detach(struct watch *watch) {
    if (watch == NULL || watch->loop == NULL)
        return;
    mb_timer_stop(watch->loop, &watch->summary_timer);
    mb_timer_stop(watch->loop, &watch->metrics_timer);
    publish_status(watch, "stopped", 1);
    /* The refusals of windows still open: their summaries are written now. */
    ratelimit_refusal_summaries(watch->guard, now_ms(watch), 1, write_summary, watch);
    watch->loop = NULL;
    watch->server = NULL;
    watch->gateway = NULL;
}

void watch_destroy(struct watch *watch) {
    if (watch == NULL)
        return;
    for (size_t i = 0; i < PENDING_BUCKETS; i++)
        while (watch->pending[i] != NULL) {
            struct pending *pending = watch->pending[i];
            watch->pending[i] = pending->next;
            free(pending);
        }
    ratelimit_destroy(watch->guard);
    audit_close(watch->audit);
    config_guard_free(&watch->sinks);
    memset(watch->mqtt_password, 0, sizeof watch->mqtt_password);
    free(watch->would_deny_slot);
    free(watch->would_deny);
    free(watch);
}

/* Writes a record; a sink that just failed is said once on stderr. */
static void emit(struct watch *watch, enum audit_severity severity, const char *type,
                 struct json *json) {
    audit_write(watch->audit, severity, type, json_end(json));
    char failure[512];
    int failed = audit_take_error(watch->audit, failure, sizeof failure);
    if (failed == 1)
        logger_message(watch->logger, MB_LOG_ERROR, "audit_failed",
                       "%s; records are counted as lost until it works again", failure);
    else if (failed == 2)
        logger_message(watch->logger, MB_LOG_ERROR, "audit_failed", "%s", failure);
}

static void begin(struct json *json, const char *type) {
    char time[32];
    log_timestamp(time, sizeof time);
    json_begin(json);
    json_string(json, "time", time);
    json_string(json, "type", type);
}

/* Who: the connection's identity as the guard knows it. */
static void put_client(struct json *json, const struct ratelimit_client *client, uint64_t id,
                       const char *peer) {
    json_uint(json, "connection", id);
    json_string(json, "peer", client != NULL ? client->peer : peer);
    if (client == NULL)
        return;
    json_string(json, "transport", client->tls ? "tls" : "tcp");
    json_string(json, "role", client->has_role ? client->role : NULL);
    json_string(json, "subject", client->tls ? client->subject : NULL);
}

/* The decoded request, as fields: addresses, quantities and the values written. */
static void put_values(struct json *json, const char *key, const uint8_t *values, uint16_t count,
                       int bits) {
    char text[VALUES_SHOWN * 7 + 4];
    size_t used = 0;
    text[used++] = '[';
    uint16_t shown = count < VALUES_SHOWN ? count : VALUES_SHOWN;
    for (uint16_t i = 0; i < shown; i++) {
        unsigned value = bits ? (values[i / 8] >> (i % 8)) & 1u
                              : (unsigned)(values[2 * i] << 8 | values[2 * i + 1]);
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%u", i ? "," : "", value);
    }
    snprintf(text + used, sizeof text - used, "]");
    json_raw(json, key, text);
    if (count > shown)
        json_uint(json, "values_not_shown", (uint64_t)(count - shown));
}

/* "pdu":"0310..." the request as received, in hex: for the requests the fields below do not
 * describe whole, so that `mbsec policy learn` and `policy test` can read every request back. */
static void put_pdu(struct json *json, const uint8_t *pdu, size_t length) {
    static const char digits[] = "0123456789abcdef";
    char text[2 * MB_PDU_MAX + 1];
    if (pdu == NULL)
        return;
    if (length > MB_PDU_MAX)
        length = MB_PDU_MAX;
    for (size_t i = 0; i < length; i++) {
        text[2 * i] = digits[pdu[i] >> 4];
        text[2 * i + 1] = digits[pdu[i] & 15];
    }
    text[2 * length] = '\0';
    json_string(json, "pdu", text);
}

/* `decoded`: the request as the server decoded it, NULL when it did not decode; `pdu` the bytes
 * it was decoded from. */
static void put_request(struct json *json, uint8_t unit, uint8_t function,
                        const struct mb_request *decoded, const uint8_t *pdu, size_t pdu_length) {
    json_uint(json, "unit", unit);
    json_uint(json, "function", function);
    json_string(json, "function_name", mb_function_name(function));
    if (decoded == NULL) {
        json_bool(json, "malformed", 1);
        put_pdu(json, pdu, pdu_length);
        return;
    }
    const struct mb_request request = *decoded;
    switch (request.function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        json_uint(json, "address", request.read.address);
        json_uint(json, "quantity", request.read.quantity);
        break;
    case MB_FC_WRITE_SINGLE_COIL:
        json_uint(json, "address", request.write_single.address);
        json_raw(json, "values", request.write_single.value == MB_COIL_ON ? "[1]" : "[0]");
        break;
    case MB_FC_WRITE_SINGLE_REGISTER: {
        char text[16];
        snprintf(text, sizeof text, "[%u]", request.write_single.value);
        json_uint(json, "address", request.write_single.address);
        json_raw(json, "values", text);
        break;
    }
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        json_uint(json, "address", request.write_multiple.address);
        json_uint(json, "quantity", request.write_multiple.quantity);
        put_values(json, "values", request.write_multiple.values, request.write_multiple.quantity,
                   request.function == MB_FC_WRITE_MULTIPLE_COILS);
        if (request.write_multiple.quantity > VALUES_SHOWN)
            put_pdu(json, pdu, pdu_length);
        break;
    case MB_FC_MASK_WRITE_REGISTER:
        json_uint(json, "address", request.mask_write.address);
        json_uint(json, "and_mask", request.mask_write.and_mask);
        json_uint(json, "or_mask", request.mask_write.or_mask);
        break;
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        json_uint(json, "address", request.read_write.write_address);
        json_uint(json, "quantity", request.read_write.write_quantity);
        put_values(json, "values", request.read_write.values, request.read_write.write_quantity, 0);
        json_uint(json, "read_address", request.read_write.read_address);
        json_uint(json, "read_quantity", request.read_write.read_quantity);
        if (request.read_write.write_quantity > VALUES_SHOWN)
            put_pdu(json, pdu, pdu_length);
        break;
    case MB_FC_DIAGNOSTICS:
        json_uint(json, "sub_function", request.diagnostics.sub_function);
        break;
    case MB_FC_READ_FIFO_QUEUE:
        json_uint(json, "address", request.fifo.address);
        break;
    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD:
        json_uint(json, "records", request.file.count);
        put_pdu(json, pdu, pdu_length);
        break;
    case MB_FC_READ_EXCEPTION_STATUS:
    case MB_FC_GET_COMM_EVENT_COUNTER:
    case MB_FC_GET_COMM_EVENT_LOG:
    case MB_FC_REPORT_SERVER_ID:
        break; /* the function code is the whole request */
    default:
        put_pdu(json, pdu, pdu_length); /* FC 43, user-defined codes */
        break;
    }
}

/* ---- alerts ---- */

static void raise_alert(struct watch *watch, enum alert kind, const char *source, const char *peer,
                        uint64_t connection_id, uint32_t count, const char *detail) {
    watch->alerts[kind]++;
    if (source == NULL)
        source = "";
    logger_message(watch->logger, MB_LOG_WARNING, "alert", "%s from %s: %s", alert_names[kind],
                   source, detail);
    struct json json;
    begin(&json, "alert");
    json_string(&json, "alert", alert_names[kind]);
    json_string(&json, "source", source);
    if (connection_id != 0) {
        const struct ratelimit_client *client = ratelimit_find(watch->guard, connection_id);
        put_client(&json, client, connection_id, peer);
    }
    if (count != 0) {
        json_uint(&json, "count", count);
        json_uint(&json, "window_ms", watch->settings.window_ms);
    }
    json_string(&json, "detail", detail);
    emit(watch, AUDIT_CRITICAL, "alert", &json);
}

/* Counts an event for a source and raises its alert when the count reaches the threshold. */
static void count_event(struct watch *watch, enum ratelimit_event event, enum alert kind,
                        const char *source, const char *peer, uint64_t connection_id, uint8_t unit,
                        const char *what) {
    uint32_t count;
    if (!ratelimit_note(watch->guard, source, event, unit, now_ms(watch), &count))
        return;
    char detail[200];
    snprintf(detail, sizeof detail, "%u %s within %u ms", count, what, watch->settings.window_ms);
    raise_alert(watch, kind, source, peer, connection_id, count, detail);
}

/* The same for a request: counted for its connection's source through the context made at
 * accept, without looking the source up again (by the peer's source text when the watch has no
 * context for the connection). */
static void count_request_event(struct watch *watch, const struct watch_request *seen,
                                enum ratelimit_event event, enum alert kind, uint8_t unit,
                                const char *what) {
    const struct mb_server_request *call = seen->call;
    uint32_t count;
    int reached =
        seen->client != NULL
            ? ratelimit_note_client(watch->guard, seen->client, event, unit, now_ms(watch), &count)
            : ratelimit_note(watch->guard, call->peer->source, event, unit, now_ms(watch), &count);
    if (!reached)
        return;
    char detail[200];
    snprintf(detail, sizeof detail, "%u %s within %u ms", count, what, watch->settings.window_ms);
    raise_alert(watch, kind, call->peer->source, call->peer->text, call->connection_id, count,
                detail);
}

/* ---- connection and backend events ---- */

static void sanity(struct watch *watch, const char *side, const struct mb_log_event *event) {
    struct json json;
    begin(&json, "sanity");
    json_string(&json, "side", side);
    if (event->connection_id != 0)
        put_client(&json, ratelimit_find(watch->guard, event->connection_id), event->connection_id,
                   event->peer);
    json_string(&json, "event", event->event);
    json_string(&json, "detail", event->reason);
    emit(watch, AUDIT_WARNING, "sanity", &json);
}

static void connection_record(struct watch *watch, const struct mb_log_event *event,
                              const char *what, const struct ratelimit_client *client) {
    struct json json;
    begin(&json, "connection");
    json_string(&json, "event", what);
    put_client(&json, client, event->connection_id, event->peer);
    if (event->listener != NULL)
        json_string(&json, "listener", event->listener);
    else if (client != NULL && client->listener[0])
        json_string(&json, "listener", client->listener);
    if (event->tls != NULL) {
        json_string(&json, "version", event->tls->version);
        json_string(&json, "cipher", event->tls->cipher);
        json_bool(&json, "resumed", event->tls->resumed);
        if (!event->tls->has_role)
            json_string(&json, "role_problem", event->tls->role_diagnostic);
    }
    if (strcmp(what, "closed") == 0) {
        json_uint(&json, "requests", event->requests);
        json_uint(&json, "duration_ms", event->duration_ms);
    }
    if (event->reason != NULL && strcmp(what, "opened") != 0)
        json_string(&json, "reason", event->reason);
    emit(watch,
         strcmp(what, "closed") == 0 || strcmp(what, "opened") == 0 || strcmp(what, "tls") == 0
             ? AUDIT_INFO
             : AUDIT_WARNING,
         "connection", &json);
}

void watch_log(void *data, const struct mb_log_event *event) {
    struct watch *watch = data;
    logger_write(watch->logger, event);
    const char *name = event->event;
    if (strcmp(name, "connection_opened") == 0) {
        struct ratelimit_client *client =
            ratelimit_open(watch->guard, event->connection_id, event->peer, event->source,
                           event->listener, now_ms(watch));
        connection_record(watch, event, "opened", client);
    } else if (strcmp(name, "tls_established") == 0) {
        struct ratelimit_client *client = ratelimit_find(watch->guard, event->connection_id);
        if (client != NULL && event->tls != NULL) {
            client->tls = 1;
            client->has_role = event->tls->has_role;
            snprintf(client->role, sizeof client->role, "%s", event->tls->role);
            snprintf(client->subject, sizeof client->subject, "%s", event->tls->subject);
            snprintf(client->version, sizeof client->version, "%s", event->tls->version);
            snprintf(client->cipher, sizeof client->cipher, "%s", event->tls->cipher);
        }
        connection_record(watch, event, "tls", client);
    } else if (strcmp(name, "tls_failed") == 0 || strcmp(name, "tls_revoked") == 0) {
        /* "tls_revoked": a reload's new CA or CRL refused the certificate of an established
         * connection, which is closed next. */
        connection_record(watch, event, name, ratelimit_find(watch->guard, event->connection_id));
    } else if (strcmp(name, "connection_closed") == 0) {
        connection_record(watch, event, "closed",
                          ratelimit_find(watch->guard, event->connection_id));
        ratelimit_close(watch->guard, event->connection_id);
    } else if (strcmp(name, "connection_refused") == 0) {
        /* Logged at most 10 a second; every refusal reaches watch_refused() instead. */
    } else if (strcmp(name, "protocol_error") == 0 && event->reason != NULL &&
               strcmp(event->reason, "undecodable PDU handed to the handler") == 0) {
        /* The request itself comes to watch_admit(), which records it with its fields. */
    } else if (strcmp(name, "protocol_error") == 0) {
        watch->malformed_front++;
        sanity(watch, "front", event);
        count_event(watch, RATELIMIT_MALFORMED, ALERT_MALFORMED, event->source, event->peer,
                    event->connection_id, 0, "malformed frames");
    } else if (strcmp(name, "backend_up") == 0 || strcmp(name, "backend_down") == 0) {
        publish_status(watch, "up", 0);
    } else if (strcmp(name, "backend_mismatch") == 0 || strcmp(name, "backend_unsolicited") == 0) {
        watch->sanity_backend++;
        sanity(watch, "backend", event);
    }
}

/* ---- refused connections ---- */

void watch_refused(void *data, const struct mb_peer *peer, const char *listener,
                   const char *reason) {
    struct watch *watch = data;
    int alert;
    uint32_t count;
    watch->refused++;
    if (ratelimit_refused(watch->guard, peer->source, reason, now_ms(watch), log_wall_ms(), &alert,
                          &count)) {
        /* The first of the source's window: a record of its own. The rest are summed up. */
        struct json json;
        begin(&json, "connection");
        json_string(&json, "event", "refused");
        json_uint(&json, "connection", 0);
        json_string(&json, "peer", peer->text);
        json_string(&json, "source", peer->source);
        json_string(&json, "listener", listener);
        json_string(&json, "reason", reason);
        emit(watch, AUDIT_WARNING, "connection", &json);
    }
    if (alert) {
        char detail[200];
        snprintf(detail, sizeof detail, "%u connections refused over the limits within %u ms",
                 count, watch->settings.window_ms);
        raise_alert(watch, ALERT_CONNECTION_FLOOD, peer->source, peer->text, 0, count, detail);
    }
}

static void write_summary(void *data, const struct ratelimit_refusals *summary) {
    struct watch *watch = data;
    char first[40], last[40];
    log_time_of(summary->first_ms, first, sizeof first);
    log_time_of(summary->last_ms, last, sizeof last);
    watch->refusal_summaries++;
    struct json json;
    begin(&json, "connection");
    json_string(&json, "event", "refused_summary");
    json_string(&json, "source", summary->source);
    json_uint(&json, "count", summary->count);
    json_string(&json, "first", first);
    json_string(&json, "last", last);
    json_uint(&json, "window_ms", watch->settings.window_ms);
    json_string(&json, "reason", summary->reason);
    emit(watch, AUDIT_WARNING, "connection", &json);
}

/* Once a second: the summaries of refusal windows that have ended. */
static void summary_tick(struct mb_loop *loop, struct mb_timer *timer) {
    struct watch *watch = timer->data;
    ratelimit_refusal_summaries(watch->guard, now_ms(watch), 0, write_summary, watch);
    mb_timer_start(loop, timer, 1000, summary_tick, watch);
}

/* ---- requests ---- */

void watch_begin(struct watch *watch, const struct mb_server_request *call,
                 struct watch_request *seen) {
    seen->call = call;
    seen->client = ratelimit_find(watch->guard, call->connection_id);
    seen->function = call->pdu_length > 0 ? call->pdu[0] : 0;
    watch->requests[seen->function]++;
    const char *peer = call->peer->text, *source = call->peer->source;
    count_request_event(watch, seen, RATELIMIT_UNIT, ALERT_SCAN, call->unit_id,
                        "distinct unit ids requested");
    if (call->request == NULL) {
        watch->malformed_front++;
        struct json json;
        begin(&json, "sanity");
        json_string(&json, "side", "front");
        put_client(&json, seen->client, call->connection_id, peer);
        put_request(&json, call->unit_id, seen->function, NULL, call->pdu, call->pdu_length);
        json_string(&json, "detail", mb_strerror(call->decode_error));
        emit(watch, AUDIT_WARNING, "sanity", &json);
        count_request_event(watch, seen, RATELIMIT_MALFORMED, ALERT_MALFORMED, 0,
                            "malformed requests");
    } else if (call->request->function == MB_FC_DIAGNOSTICS &&
               (call->request->diagnostics.sub_function == 1 ||
                call->request->diagnostics.sub_function == 4)) {
        int restart = call->request->diagnostics.sub_function == 1;
        char detail[160];
        snprintf(detail, sizeof detail, "FC 8 sub-function %u (%s) for unit %u",
                 call->request->diagnostics.sub_function,
                 restart ? "restart communications" : "force listen only mode", call->unit_id);
        raise_alert(watch, restart ? ALERT_RESTART : ALERT_LISTEN_ONLY, source, peer,
                    call->connection_id, 0, detail);
    }
}

int watch_admit(struct watch *watch, const struct watch_request *seen, uint8_t *response,
                int *answer) {
    if (ratelimit_admit(watch->guard, seen->client, now_ms(watch)))
        return 1;
    watch->rate_limited++;
    if (seen->client != NULL)
        seen->client->rate_limited++;
    count_request_event(watch, seen, RATELIMIT_RATE_LIMITED, ALERT_FLOOD, 0,
                        "requests over the rate limit");
    if (watch->over_rate == OVER_RATE_CLOSE) {
        *answer = MB_SERVER_CLOSE;
    } else if (watch->over_rate == OVER_RATE_DROP) {
        *answer = 0;
    } else {
        watch->exceptions[2][MB_EX_SERVER_DEVICE_BUSY]++;
        *answer =
            mb_exception_answer(seen->function, MB_EX_SERVER_DEVICE_BUSY, response, MB_PDU_MAX);
    }
    return 0;
}

static size_t pending_bucket(uint64_t connection_id, uint16_t transaction_id) {
    return (size_t)((connection_id * 31 + transaction_id) & (PENDING_BUCKETS - 1));
}

/* The decoding of `pdu` for a copy of it at `copy`: what put_request() reads through a pointer
 * (the values of FC 15, 16 and 23) pointed at the copy. */
static void rebase(struct mb_request *request, const uint8_t *pdu, const uint8_t *copy) {
    if (request->function == MB_FC_WRITE_MULTIPLE_COILS ||
        request->function == MB_FC_WRITE_MULTIPLE_REGISTERS)
        request->write_multiple.values = copy + (request->write_multiple.values - pdu);
    else if (request->function == MB_FC_READ_WRITE_MULTIPLE_REGISTERS)
        request->read_write.values = copy + (request->read_write.values - pdu);
}

/* The record of a refusal, carried out ("denied") or not ("would_deny"): who, the request,
 * the rule, what it does (the exception with deny), the reason and the policy. */
static void put_refusal(struct watch *watch, const struct watch_request *seen,
                        const struct mb_policy_decision *decision, enum mb_policy_action action,
                        uint8_t exception, const char *type, enum audit_severity severity) {
    const struct mb_server_request *call = seen->call;
    struct json json;
    begin(&json, type);
    put_client(&json, seen->client, call->connection_id, call->peer->text);
    put_request(&json, call->unit_id, seen->function, call->request, call->pdu, call->pdu_length);
    json_string(&json, "rule", decision->rule_name);
    json_string(&json, "action", mb_policy_action_name(action));
    if (action == MB_POLICY_DENY)
        json_uint(&json, "exception", exception);
    json_string(&json, "reason", decision->reason);
    json_string(&json, "policy", watch->policy_sha256);
    emit(watch, severity, type, &json);
}

/*
 * Monitor mode: a request the policy refuses with a rule (or default) that is not enforced. It
 * is forwarded all the same; its record says what enforcement would have done, and it counts
 * per rule, not as a denial (nothing was refused: no denial metrics or exceptions), but toward
 * the denial_burst alert of its source.
 */
static void record_would_deny(struct watch *watch, const struct watch_request *seen,
                              const struct mb_policy_decision *decision) {
    enum mb_policy_action action = decision->action;
    watch->would_deny_total++;
    size_t rule = decision->rule >= 0 ? (size_t)decision->rule : watch->policy_rules;
    if (watch->would_deny_slot != NULL && rule <= watch->policy_rules &&
        watch->would_deny_slot[rule] != SIZE_MAX && action >= MB_POLICY_DENY &&
        action <= MB_POLICY_CLOSE)
        watch->would_deny[watch->would_deny_slot[rule]].counts[action]++;
    put_refusal(watch, seen, decision, action, decision->exception, "would_deny", AUDIT_NOTICE);
    /* A source probing what it may not do is worth an alert in monitor mode too. */
    count_request_event(watch, seen, RATELIMIT_DENIAL, ALERT_DENIALS, 0,
                        "requests the policy would deny (monitor mode)");
}

void watch_decided(struct watch *watch, const struct watch_request *seen,
                   const struct mb_policy_decision *decision, int checked) {
    const struct mb_server_request *call = seen->call;
    struct ratelimit_client *client = seen->client;
    int would_deny = checked && decision->monitor;
    if (would_deny)
        record_would_deny(watch, seen, decision);
    else if (checked && decision->action != MB_POLICY_ALLOW) {
        /* Action 0: nothing decided (no policy), which is answered as a deny. */
        enum mb_policy_action action = decision->action != 0 ? decision->action : MB_POLICY_DENY;
        watch->denials[action]++;
        if (client != NULL)
            client->denied++;
        uint8_t code = decision->exception ? decision->exception : MB_EX_ILLEGAL_FUNCTION;
        if (action == MB_POLICY_DENY)
            watch->exceptions[0][code]++;
        put_refusal(watch, seen, decision, action, code, "denied", AUDIT_WARNING);
        count_request_event(watch, seen, RATELIMIT_DENIAL, ALERT_DENIALS, 0, "requests denied");
        return;
    }
    if (call->request == NULL) {
        /* Allowed by the policy (which decides by function code), but the gateway core answers
         * it itself and forwards nothing: its sanity record is written already. */
        uint8_t code = mb_error_exception(call->decode_error);
        watch->exceptions[2][code ? code : MB_EX_ILLEGAL_DATA_VALUE]++;
        return;
    }
    int write = (decision->access & MB_POLICY_WRITE) != 0;
    if (!write && !watch->audit_reads)
        return;
    struct pending *pending = malloc(sizeof *pending);
    if (pending == NULL)
        return;
    pending->connection_id = call->connection_id;
    pending->transaction_id = call->transaction_id;
    pending->unit = call->unit_id;
    pending->pdu_length = (uint8_t)(call->pdu_length < MB_PDU_MAX ? call->pdu_length : MB_PDU_MAX);
    memcpy(pending->pdu, call->pdu, pending->pdu_length);
    pending->request = *call->request;
    rebase(&pending->request, call->pdu, pending->pdu);
    pending->checked = checked;
    pending->write = write;
    pending->would_deny = would_deny;
    snprintf(pending->rule, sizeof pending->rule, "%s", checked ? decision->rule_name : "");
    /* Appended at the end of its chain: a client that reuses a transaction id while the first
     * is outstanding gets its records in order. */
    struct pending **link =
        &watch->pending[pending_bucket(call->connection_id, call->transaction_id)];
    while (*link != NULL)
        link = &(*link)->next;
    pending->next = NULL;
    *link = pending;
    watch->pending_count++;
}

static struct histogram *histogram_of(struct watch *watch, const char *backend) {
    for (size_t i = 0; i < watch->histogram_count; i++)
        if (strcmp(watch->histograms[i].backend, backend) == 0)
            return &watch->histograms[i];
    if (watch->histogram_count == MAX_HISTOGRAMS)
        return NULL;
    struct histogram *histogram = &watch->histograms[watch->histogram_count++];
    snprintf(histogram->backend, sizeof histogram->backend, "%s", backend);
    return histogram;
}

static void record_outcome(struct watch *watch, struct pending *pending,
                           const struct mb_gateway_completion *done, const char *outcome) {
    struct json json;
    int write = pending->write;
    begin(&json, write ? "write" : "read");
    put_client(&json, ratelimit_find(watch->guard, done->connection_id), done->connection_id, "");
    put_request(&json, pending->unit, pending->request.function, &pending->request, pending->pdu,
                pending->pdu_length);
    if (pending->checked)
        json_string(&json, "rule", pending->rule);
    else
        json_string(&json, "rule", NULL); /* authorize_plain: false: nobody checked it */
    json_string(&json, "backend", done->backend);
    if (done->backend != NULL)
        json_uint(&json, "device_unit", done->device_unit);
    if (pending->would_deny)
        json_bool(&json, "would_deny", 1);
    json_string(&json, "outcome", outcome);
    if (done->exception != 0)
        json_uint(&json, "exception", done->exception);
    json_uint(&json, "latency_us", done->latency_us);
    emit(watch, write ? AUDIT_NOTICE : AUDIT_INFO, write ? "write" : "read", &json);
}

void watch_completed(void *data, const struct mb_gateway_completion *done) {
    struct watch *watch = data;
    static const enum outcome of_gateway[] = {
        [MB_GATEWAY_ANSWERED] = ANSWERED,     [MB_GATEWAY_UNAVAILABLE] = UNAVAILABLE,
        [MB_GATEWAY_TIMEOUT] = TIMEOUT,       [MB_GATEWAY_MISMATCH] = MISMATCH,
        [MB_GATEWAY_OVER_SHARE] = OVER_SHARE, [MB_GATEWAY_REJECTED] = REJECTED,
        [MB_GATEWAY_SKIPPED] = SKIPPED,       [MB_GATEWAY_BROADCAST] = BROADCAST,
    };
    enum outcome outcome = (unsigned)done->outcome < sizeof of_gateway / sizeof of_gateway[0]
                               ? of_gateway[done->outcome]
                               : TIMEOUT;
    if (outcome == ANSWERED && done->exception != 0)
        outcome = DEVICE_EXCEPTION;
    watch->outcomes[outcome]++;
    if (done->exception != 0)
        watch->exceptions[done->from_device ? 1 : 2][done->exception]++;
    if (outcome == OVER_SHARE) {
        const struct ratelimit_client *client = ratelimit_find(watch->guard, done->connection_id);
        if (client != NULL)
            count_event(watch, RATELIMIT_OVER_SHARE, ALERT_SHARE, client->source, client->peer,
                        done->connection_id, 0, "requests over the share of a backend");
    }
    int timed = outcome == ANSWERED || outcome == DEVICE_EXCEPTION || outcome == TIMEOUT ||
                outcome == MISMATCH;
    if (done->backend != NULL && timed) {
        struct histogram *histogram = histogram_of(watch, done->backend);
        if (histogram != NULL) {
            size_t bucket = 0;
            while (bucket < LATENCY_BUCKETS && done->latency_us > latency_bounds_us[bucket])
                bucket++;
            histogram->counts[bucket]++;
            histogram->sum_us += done->latency_us;
            histogram->total++;
        }
    }
    if (watch->pending_count == 0)
        return;
    struct pending **link =
        &watch->pending[pending_bucket(done->connection_id, done->transaction_id)];
    while (*link != NULL && ((*link)->connection_id != done->connection_id ||
                             (*link)->transaction_id != done->transaction_id))
        link = &(*link)->next;
    if (*link == NULL)
        return;
    struct pending *pending = *link;
    *link = pending->next;
    watch->pending_count--;
    record_outcome(watch, pending, done, outcome_names[outcome]);
    free(pending);
}

/* ---- metrics ---- */

static void family(FILE *out, const char *name, const char *type, const char *help) {
    fprintf(out, "# HELP %s %s\n# TYPE %s %s\n", name, help, name, type);
}

/* The network sinks' shippers: what they delivered, hold, dropped; whether connected. */
static void render_shipped(const struct audit_stats *audit, FILE *out) {
    struct {
        const char *sink;
        const struct ship_stats *stats;
    } sinks[] = {{"syslog", &audit->syslog_shipped}, {"mqtt", &audit->mqtt_shipped}};
    size_t count = 0;
    for (size_t i = 0; i < sizeof sinks / sizeof sinks[0]; i++)
        count += sinks[i].stats->taken > 0 || sinks[i].stats->connects > 0 ||
                 sinks[i].stats->failures > 0 || sinks[i].stats->queued > 0;
    if (count == 0)
        return;
    family(out, "mbsec_gateway_sink_records_total", "counter",
           "Audit records of a network sink: taken, delivered (acknowledged by the receiver), "
           "dropped (spool or queue full), lost (the spool could not write them), refused (the "
           "receiver acknowledged and refused them: MQTT 5 PUBACK reasons).");
    for (size_t i = 0; i < sizeof sinks / sizeof sinks[0]; i++) {
        const struct ship_stats *stats = sinks[i].stats;
        const char *results[] = {"taken", "delivered", "dropped", "lost", "refused"};
        uint64_t values[] = {stats->taken, stats->delivered, stats->dropped, stats->lost,
                             stats->refused};
        for (size_t r = 0; r < 5; r++)
            fprintf(out, "mbsec_gateway_sink_records_total{sink=\"%s\",result=\"%s\"} %llu\n",
                    sinks[i].sink, results[r], (unsigned long long)values[r]);
    }
    struct {
        const char *name, *type, *help;
    } families[] = {
        {"mbsec_gateway_sink_queued", "gauge",
         "Records waiting to be delivered (spool and queue)."},
        {"mbsec_gateway_sink_spool_bytes", "gauge", "Bytes of the sink's spool on disk."},
        {"mbsec_gateway_sink_connected", "gauge", "1 while the sink is connected."},
        {"mbsec_gateway_sink_connects_total", "counter", "Connections made to the receiver."},
        {"mbsec_gateway_sink_failures_total", "counter",
         "Connections to the receiver that failed or were lost."},
    };
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        family(out, families[f].name, families[f].type, families[f].help);
        for (size_t i = 0; i < sizeof sinks / sizeof sinks[0]; i++) {
            const struct ship_stats *stats = sinks[i].stats;
            uint64_t values[] = {stats->queued, stats->spool_bytes, (uint64_t)stats->connected,
                                 stats->connects, stats->failures};
            fprintf(out, "%s{sink=\"%s\"} %llu\n", families[f].name, sinks[i].sink,
                    (unsigned long long)values[f]);
        }
    }
}

static void render_backends(struct watch *watch, FILE *out) {
    size_t count = watch->gateway != NULL ? mb_gateway_backend_count(watch->gateway) : 0;
    struct mb_gateway_backend_info info;
    /* The families with one value per backend, in the order of `values` below. */
    struct {
        const char *name, *type, *help;
    } const families[] = {
        {"mbsec_gateway_backend_up", "gauge", "Connections of the backend's pool that are up."},
        {"mbsec_gateway_backend_connections", "gauge", "Size of the backend's pool."},
        {"mbsec_gateway_backend_queue_depth", "gauge",
         "Requests queued or in flight to the backend now."},
        {"mbsec_gateway_backend_capacity", "gauge",
         "Requests the backend can hold at once (in flight and queued)."},
        {"mbsec_gateway_backend_reconnects_total", "counter",
         "Connection losses and failed connection attempts, each followed by a retry."},
        {"mbsec_gateway_backend_unsolicited_total", "counter",
         "Frames from the device that answered nothing outstanding (discarded)."},
        {"mbsec_gateway_backend_share", "gauge",
         "Requests one client identity may hold at the backend, queued or in flight."},
        {"mbsec_gateway_backend_identities", "gauge",
         "Client identities holding requests at the backend now."},
        {"mbsec_gateway_backend_writes_total", "counter",
         "Write calls (sends; TLS records) to the backend's connections: requests per write "
         "is how well forwarding batches."},
    };
    for (size_t f = 0; f < sizeof families / sizeof families[0]; f++) {
        family(out, families[f].name, families[f].type, families[f].help);
        for (size_t i = 0; i < count; i++) {
            if (mb_gateway_backend_info(watch->gateway, i, &info) != 0)
                continue;
            const uint64_t values[] = {info.connections_up, info.connections, info.outstanding,
                                       info.capacity,       info.reconnects,  info.unsolicited,
                                       info.share,          info.identities,  info.writes};
            fprintf(out, "%s{backend=\"%s\"} %llu\n", families[f].name, info.name,
                    (unsigned long long)values[f]);
        }
    }
    family(out, "mbsec_gateway_backend_requests_total", "counter",
           "Requests forwarded to the backend, by outcome.");
    for (size_t i = 0; i < count; i++) {
        if (mb_gateway_backend_info(watch->gateway, i, &info) != 0)
            continue;
        const uint64_t values[] = {info.answered, info.unavailable, info.timeouts, info.mismatched,
                                   info.over_share};
        const char *const names[] = {"answered", "unavailable", "timeout", "mismatched",
                                     "over_share"};
        for (size_t k = 0; k < 5; k++)
            fprintf(out,
                    "mbsec_gateway_backend_requests_total{backend=\"%s\",outcome=\"%s\"} %llu\n",
                    info.name, names[k], (unsigned long long)values[k]);
    }
    /* RTU buses (serial lines, RTU over TCP): what happens on the wire. */
    struct {
        const char *name, *type, *help;
    } const bus_families[] = {
        {"mbsec_gateway_bus_transactions_total", "counter",
         "Requests written to the RTU bus (every attempt, broadcasts too)."},
        {"mbsec_gateway_bus_timeouts_total", "counter", "Attempts the unit did not answer at all."},
        {"mbsec_gateway_bus_damaged_total", "counter",
         "Frames dropped for a bad CRC or length, and noise."},
        {"mbsec_gateway_bus_wrong_unit_total", "counter",
         "Frames from another unit than the one asked."},
        {"mbsec_gateway_bus_mismatched_total", "counter",
         "Frames from the unit asked that did not answer the request."},
        {"mbsec_gateway_bus_late_total", "counter",
         "Answers that came after their timeout, recognised and dropped."},
        {"mbsec_gateway_bus_unsolicited_total", "counter",
         "Frames while nothing was asked, dropped."},
        {"mbsec_gateway_bus_retries_total", "counter", "Read attempts after the first."},
        {"mbsec_gateway_bus_skipped_total", "counter",
         "Requests answered 0B at once because their unit stopped answering."},
        {"mbsec_gateway_bus_broadcasts_total", "counter", "Broadcasts (unit 0) written."},
        {"mbsec_gateway_bus_units_skipped", "gauge", "Units being skipped now (backing off)."},
    };
    for (size_t f = 0; f < sizeof bus_families / sizeof bus_families[0]; f++) {
        int header = 0;
        for (size_t i = 0; i < count; i++) {
            if (mb_gateway_backend_info(watch->gateway, i, &info) != 0 || !info.is_bus)
                continue;
            if (!header++)
                family(out, bus_families[f].name, bus_families[f].type, bus_families[f].help);
            const struct mb_rtu_bus_stats *bus = &info.bus;
            const uint64_t values[] = {bus->transactions, bus->timeouts,     bus->damaged,
                                       bus->wrong_unit,   bus->mismatched,   bus->late,
                                       bus->unsolicited,  bus->retries,      bus->skipped,
                                       bus->broadcasts,   bus->units_skipped};
            fprintf(out, "%s{backend=\"%s\"} %llu\n", bus_families[f].name, info.name,
                    (unsigned long long)values[f]);
        }
    }
    family(out, "mbsec_gateway_backend_latency_seconds", "histogram",
           "Time from a request's arrival at the gateway to the device's answer (or the "
           "timeout).");
    for (size_t i = 0; i < watch->histogram_count; i++) {
        const struct histogram *histogram = &watch->histograms[i];
        uint64_t cumulative = 0;
        for (size_t b = 0; b < LATENCY_BUCKETS; b++) {
            cumulative += histogram->counts[b];
            fprintf(out,
                    "mbsec_gateway_backend_latency_seconds_bucket{backend=\"%s\",le=\"%g\"} "
                    "%llu\n",
                    histogram->backend, latency_bounds_us[b] / 1e6, (unsigned long long)cumulative);
        }
        fprintf(out,
                "mbsec_gateway_backend_latency_seconds_bucket{backend=\"%s\",le=\"+Inf\"} %llu\n",
                histogram->backend, (unsigned long long)histogram->total);
        fprintf(out, "mbsec_gateway_backend_latency_seconds_sum{backend=\"%s\"} %.6f\n",
                histogram->backend, histogram->sum_us / 1e6);
        fprintf(out, "mbsec_gateway_backend_latency_seconds_count{backend=\"%s\"} %llu\n",
                histogram->backend, (unsigned long long)histogram->total);
    }
}

int watch_render(void *data, const char *path, FILE *out) {
    struct watch *watch = data;
    if (strcmp(path, "/metrics") != 0)
        return 404;
    family(out, "mbsec_gateway_policy_info", "gauge",
           "The policy in force: the SHA-256 of its canonical form, and its rules.");
    fprintf(out, "mbsec_gateway_policy_info{sha256=\"%s\",rules=\"%zu\"} 1\n", watch->policy_sha256,
            watch->policy_rules);
    family(out, "mbsec_gateway_requests_total", "counter",
           "Requests received from clients, by function code.");
    for (int function = 0; function < 256; function++)
        if (watch->requests[function] != 0)
            fprintf(out, "mbsec_gateway_requests_total{function=\"%d\"} %llu\n", function,
                    (unsigned long long)watch->requests[function]);
    family(out, "mbsec_gateway_responses_total", "counter",
           "Forwarded requests (and requests with no path), by outcome.");
    for (int i = 0; i < OUTCOMES; i++)
        fprintf(out, "mbsec_gateway_responses_total{outcome=\"%s\"} %llu\n", outcome_names[i],
                (unsigned long long)watch->outcomes[i]);
    family(out, "mbsec_gateway_denials_total", "counter",
           "Requests the policy refused, by action.");
    for (int action = MB_POLICY_DENY; action <= MB_POLICY_CLOSE; action++)
        fprintf(out, "mbsec_gateway_denials_total{action=\"%s\"} %llu\n",
                mb_policy_action_name((enum mb_policy_action)action),
                (unsigned long long)watch->denials[action]);
    family(out, "mbsec_gateway_policy_monitor_rules", "gauge",
           "Rules of the policy in force in monitor mode (the default deny counted as one).");
    fprintf(out, "mbsec_gateway_policy_monitor_rules %zu\n", watch->policy_monitored);
    family(out, "mbsec_gateway_would_deny_total", "counter",
           "Requests a rule in monitor mode refused and the gateway forwarded, by rule and by "
           "the action enforcement would take.");
    for (size_t i = 0; i < watch->would_deny_count; i++)
        for (int action = MB_POLICY_DENY; action <= MB_POLICY_CLOSE; action++)
            if (watch->would_deny[i].counts[action] != 0)
                fprintf(out, "mbsec_gateway_would_deny_total{rule=\"%s\",action=\"%s\"} %llu\n",
                        watch->would_deny[i].rule,
                        mb_policy_action_name((enum mb_policy_action)action),
                        (unsigned long long)watch->would_deny[i].counts[action]);
    family(out, "mbsec_gateway_would_deny_requests_total", "counter",
           "Requests a rule in monitor mode refused, every rule together.");
    fprintf(out, "mbsec_gateway_would_deny_requests_total %llu\n",
            (unsigned long long)watch->would_deny_total);
    family(out, "mbsec_gateway_exceptions_total", "counter",
           "Exception responses sent to clients, by code and by who decided it (policy, device "
           "or gateway).");
    static const char *const sources[] = {"policy", "device", "gateway"};
    for (int source = 0; source < 3; source++)
        for (int code = 0; code < 256; code++)
            if (watch->exceptions[source][code] != 0)
                fprintf(out, "mbsec_gateway_exceptions_total{source=\"%s\",code=\"%02X\"} %llu\n",
                        sources[source], code, (unsigned long long)watch->exceptions[source][code]);
    family(out, "mbsec_gateway_rate_limited_total", "counter",
           "Requests refused for going over the connection's rate.");
    fprintf(out, "mbsec_gateway_rate_limited_total %llu\n",
            (unsigned long long)watch->rate_limited);
    family(out, "mbsec_gateway_malformed_total", "counter",
           "Sanity violations: malformed frames from clients, wrong or unsolicited answers "
           "from devices.");
    fprintf(out, "mbsec_gateway_malformed_total{side=\"front\"} %llu\n",
            (unsigned long long)watch->malformed_front);
    fprintf(out, "mbsec_gateway_malformed_total{side=\"backend\"} %llu\n",
            (unsigned long long)watch->sanity_backend);
    family(out, "mbsec_gateway_alerts_total", "counter", "Alerts raised, by kind.");
    for (int i = 0; i < ALERTS; i++)
        fprintf(out, "mbsec_gateway_alerts_total{alert=\"%s\"} %llu\n", alert_names[i],
                (unsigned long long)watch->alerts[i]);
    if (watch->server != NULL) {
        struct mb_server_stats stats;
        mb_server_get_stats(watch->server, &stats);
        family(out, "mbsec_gateway_connections", "gauge", "Client connections open now.");
        fprintf(out, "mbsec_gateway_connections %llu\n", (unsigned long long)stats.connections);
        family(out, "mbsec_gateway_connections_total", "counter",
               "Client connections accepted, and refused over a limit.");
        fprintf(out, "mbsec_gateway_connections_total{result=\"accepted\"} %llu\n",
                (unsigned long long)stats.accepted);
        fprintf(out, "mbsec_gateway_connections_total{result=\"refused\"} %llu\n",
                (unsigned long long)stats.refused);
        family(out, "mbsec_gateway_tls_handshakes_total", "counter",
               "TLS handshakes with clients, by result.");
        fprintf(out, "mbsec_gateway_tls_handshakes_total{result=\"ok\"} %llu\n",
                (unsigned long long)stats.tls_handshakes);
        fprintf(out, "mbsec_gateway_tls_handshakes_total{result=\"failed\"} %llu\n",
                (unsigned long long)stats.tls_failures);
        family(out, "mbsec_gateway_writes_total", "counter",
               "Write calls (sends; TLS records) to client connections: answers per write is "
               "how well answers batch.");
        fprintf(out, "mbsec_gateway_writes_total %llu\n", (unsigned long long)stats.writes);
    }
    render_backends(watch, out);
    struct audit_stats audit;
    audit_stats(watch->audit, &audit);
    family(out, "mbsec_gateway_audit_records_total", "counter",
           "Audit records written, and lost by a sink.");
    fprintf(out, "mbsec_gateway_audit_records_total{result=\"written\"} %llu\n",
            (unsigned long long)audit.written);
    fprintf(out, "mbsec_gateway_audit_records_total{result=\"lost\"} %llu\n",
            (unsigned long long)(audit.file_errors + audit.syslog_errors + audit.syslog_dropped +
                                 audit.syslog_shipped.dropped + audit.syslog_shipped.lost +
                                 audit.mqtt_shipped.dropped + audit.mqtt_shipped.lost));
    fprintf(out, "mbsec_gateway_audit_records_total{result=\"summed_up\"} %llu\n",
            (unsigned long long)watch->refusal_summaries);
    render_shipped(&audit, out);
    family(out, "mbsec_gateway_audit_reopen_failures_total", "counter",
           "Reloads that could not open the audit sinks they name and kept the old ones.");
    fprintf(out, "mbsec_gateway_audit_reopen_failures_total %llu\n",
            (unsigned long long)watch->sink_failures);
    family(out, "mbsec_gateway_refused_total", "counter",
           "Connections refused at accept over max_connections or max_per_source, every one "
           "(the log shows at most 10 a second).");
    fprintf(out, "mbsec_gateway_refused_total %llu\n", (unsigned long long)watch->refused);
    family(out, "mbsec_gateway_reloads_total", "counter", "Configuration reloads, by result.");
    fprintf(out, "mbsec_gateway_reloads_total{result=\"applied\"} %llu\n",
            (unsigned long long)watch->reloads);
    fprintf(out, "mbsec_gateway_reloads_total{result=\"refused\"} %llu\n",
            (unsigned long long)watch->reloads_refused);
    return 200;
}
