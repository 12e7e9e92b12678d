/* SPDX-License-Identifier: MIT */
#include "app/config/watch.h"

#include <stdlib.h>
#include <string.h>

#include "app/config/backends.h"

#include "mbsec/error.h"

void config_guard_defaults(struct config_guard *guard) {
    memset(guard, 0, sizeof *guard);
    guard->over_rate = OVER_RATE_BUSY;
    guard->alert_window_ms = 10000;
    guard->alert_scan_units = 8;
    guard->alert_denials = 10;
    guard->alert_malformed = 5;
    guard->alert_rate_limited = 50;
    guard->mqtt.protocol = 4;
    guard->mqtt.keepalive_ms = 30000;
    guard->mqtt.metrics_interval_ms = 60000;
    guard->mqtt.audit = 1;
}

#define SINK_TLS_FIELDS(tls) \
    { &(tls)->certificate, &(tls)->key, &(tls)->ca, &(tls)->pin, &(tls)->server_name }

#define MQTT_TEXTS(mqtt)                                                                        \
    {                                                                                           \
        &(mqtt)->broker, &(mqtt)->name, &(mqtt)->prefix, &(mqtt)->client_id, &(mqtt)->username, \
            &(mqtt)->password_file                                                              \
    }

void config_sink_tls_free(struct config_sink_tls *tls) {
    char **fields[] = SINK_TLS_FIELDS(tls);
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        free(*fields[i]);
        *fields[i] = NULL;
    }
}

void config_guard_free(struct config_guard *guard) {
    free(guard->audit_file);
    free(guard->audit_syslog);
    free(guard->audit_spool);
    config_sink_tls_free(&guard->audit_syslog_tls);
    char **mqtt_texts[] = MQTT_TEXTS(&guard->mqtt);
    for (size_t i = 0; i < sizeof mqtt_texts / sizeof mqtt_texts[0]; i++)
        free(*mqtt_texts[i]);
    config_sink_tls_free(&guard->mqtt.tls);
    free(guard->metrics_listen);
    config_guard_defaults(guard);
}

static int copy_text(char **target, const char *source) {
    *target = NULL;
    if (source == NULL)
        return 0;
    *target = strdup(source);
    return *target != NULL ? 0 : MB_ENOMEM;
}

int config_sink_tls_copy(struct config_sink_tls *target, const struct config_sink_tls *source) {
    struct config_sink_tls copy = *source;
    char **to[] = SINK_TLS_FIELDS(target);
    char **from[] = SINK_TLS_FIELDS(&copy);
    int status = 0;
    for (size_t i = 0; i < sizeof to / sizeof to[0]; i++)
        if (copy_text(to[i], *from[i]) != 0)
            status = MB_ENOMEM;
    if (status != 0)
        config_sink_tls_free(target);
    return status;
}

int config_guard_copy(struct config_guard *target, const struct config_guard *source) {
    *target = *source;
    target->audit_file = target->audit_syslog = target->metrics_listen = NULL;
    target->audit_spool = NULL;
    memset(&target->audit_syslog_tls, 0, sizeof target->audit_syslog_tls);
    memset(&target->mqtt.tls, 0, sizeof target->mqtt.tls);
    struct config_mqtt source_mqtt = source->mqtt;
    char **to[] = MQTT_TEXTS(&target->mqtt);
    char **from[] = MQTT_TEXTS(&source_mqtt);
    int failed = 0;
    for (size_t i = 0; i < sizeof to / sizeof to[0]; i++)
        *to[i] = NULL;
    for (size_t i = 0; i < sizeof to / sizeof to[0]; i++)
        failed |= copy_text(to[i], *from[i]) != 0;
    if (copy_text(&target->audit_file, source->audit_file) != 0 ||
        copy_text(&target->audit_syslog, source->audit_syslog) != 0 ||
        copy_text(&target->audit_spool, source->audit_spool) != 0 ||
        config_sink_tls_copy(&target->audit_syslog_tls, &source->audit_syslog_tls) != 0 || failed ||
        config_sink_tls_copy(&target->mqtt.tls, &source->mqtt.tls) != 0 ||
        copy_text(&target->metrics_listen, source->metrics_listen) != 0) {
        config_guard_free(target);
        return MB_ENOMEM;
    }
    return 0;
}

static int out_of_memory(const struct yaml_reader *reader, const yaml_node_t *node) {
    yaml_error(reader, node, "out of memory");
    return MB_ENOMEM;
}

/* A non-empty string of at most `maximum` bytes, copied into *field (replacing it). */
static int take_string(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                       size_t maximum, char **field) {
    const char *text;
    size_t length;
    int status = yaml_string(reader, node, path, maximum, &text, &length);
    if (status != 0)
        return status;
    if (length == 0)
        return yaml_error(reader, node, "%s: empty", path);
    char *copy = strndup(text, length);
    if (copy == NULL)
        return out_of_memory(reader, node);
    free(*field);
    *field = copy;
    return 0;
}

/* A path, resolved against the configuration file's directory, into *field (replacing it). */
static int take_path(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                     char **field) {
    const char *text;
    size_t length;
    int status = yaml_string(reader, node, path, 4095, &text, &length);
    if (status == 0 && length == 0)
        status = yaml_error(reader, node, "%s: the path is empty", path);
    if (status != 0)
        return status;
    char *joined = yaml_path_from_file(reader, text, length);
    if (joined == NULL)
        return out_of_memory(reader, node);
    free(*field);
    *field = joined;
    return 0;
}

/* audit.syslog: "unix" (/dev/log), "unix:/path", "udp:host:port". */
static int parse_syslog(const struct yaml_reader *reader, const yaml_node_t *node,
                        struct config_guard *guard) {
    char *value = NULL;
    int status = take_string(reader, node, "audit.syslog", 4095, &value);
    if (status != 0)
        return status;
    const char *problem = NULL;
    if (strcmp(value, "unix") == 0 || (strncmp(value, "unix:", 5) == 0 && value[5] == '/'))
        problem = NULL;
    else if (strncmp(value, "udp:", 4) == 0 || strncmp(value, "tcp:", 4) == 0 ||
             strncmp(value, "tls:", 4) == 0)
        problem = address_problem(value + 4);
    else
        problem = "give unix (the local syslog daemon, /dev/log), unix:/path/of/socket, "
                  "udp:host:port, tcp:host:port or tls:host:port";
    if (problem != NULL) {
        free(value);
        return yaml_error(reader, node, "audit.syslog: %s", problem);
    }
    free(guard->audit_syslog);
    guard->audit_syslog = value;
    return 0;
}

/* A size in bytes: a whole number with an optional binary suffix (K, KiB, M, MiB, G, GiB). */
static int parse_size(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                      uint64_t minimum, uint64_t maximum, uint64_t *bytes) {
    static const struct {
        const char *suffix;
        uint64_t factor;
    } units[] = {{"", 1},
                 {"B", 1},
                 {"K", 1ull << 10},
                 {"KB", 1ull << 10},
                 {"KiB", 1ull << 10},
                 {"M", 1ull << 20},
                 {"MB", 1ull << 20},
                 {"MiB", 1ull << 20},
                 {"G", 1ull << 30},
                 {"GB", 1ull << 30},
                 {"GiB", 1ull << 30}};
    const char *text;
    size_t length;
    int status = yaml_string(reader, node, path, 64, &text, &length);
    if (status != 0)
        return status;
    size_t digits = 0;
    while (digits < length && text[digits] >= '0' && text[digits] <= '9')
        digits++;
    uint64_t number = 0;
    for (size_t u = 0; digits > 0 && u < sizeof units / sizeof units[0]; u++) {
        if (strcmp(text + digits, units[u].suffix) != 0 ||
            integer_parse(text, digits, &number) != 0)
            continue;
        if (number > maximum / units[u].factor || number * units[u].factor < minimum)
            break;
        *bytes = number * units[u].factor;
        return 0;
    }
    return yaml_error(
        reader, node, "%s: expected a size from %llu KiB to %llu GiB, such as 64MiB, got \"%.40s\"",
        path, (unsigned long long)(minimum >> 10), (unsigned long long)(maximum >> 30), text);
}

int config_sink_tls(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                    struct config_sink_tls *tls) {
    static const char *const keys[] = {"certificate", "key", "ca", "pin", "server_name", NULL};
    char key_path[128];
    int status = yaml_check_mapping(reader, node, path, keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, node, i, &key, &value);
        snprintf(key_path, sizeof key_path, "%s.%s", path, key);
        char **field = strcmp(key, "certificate") == 0 ? &tls->certificate
                       : strcmp(key, "key") == 0       ? &tls->key
                       : strcmp(key, "ca") == 0        ? &tls->ca
                       : strcmp(key, "pin") == 0       ? &tls->pin
                                                       : &tls->server_name;
        status = config_tls_text(reader, value, key_path, key, field);
    }
    if (status != 0)
        return status;
    if ((tls->certificate == NULL) != (tls->key == NULL))
        return yaml_error(reader, node, "%s: certificate and key go together", path);
    if (tls->ca == NULL && tls->pin == NULL)
        return yaml_error(reader, node,
                          "%s: nothing to trust the peer's certificate by: give ca (the CA that "
                          "signed it) or pin (its fingerprint)",
                          path);
    return 0;
}

int config_audit(const struct yaml_reader *reader, const yaml_node_t *node,
                 struct config_guard *guard) {
    static const char *const keys[] = {"file",  "syslog",     "reads", "syslog_tls",
                                       "spool", "spool_size", NULL};
    const yaml_node_t *syslog = NULL, *syslog_tls = NULL;
    int status = yaml_check_mapping(reader, node, "audit", keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, node, i, &key, &value);
        if (strcmp(key, "file") == 0 || strcmp(key, "spool") == 0) {
            char path[16];
            snprintf(path, sizeof path, "audit.%s", key);
            status = take_path(reader, value, path,
                               key[0] == 'f' ? &guard->audit_file : &guard->audit_spool);
        } else if (strcmp(key, "syslog") == 0) {
            syslog = value;
            status = parse_syslog(reader, value, guard);
        } else if (strcmp(key, "syslog_tls") == 0) {
            syslog_tls = value;
            status = config_sink_tls(reader, value, "audit.syslog_tls", &guard->audit_syslog_tls);
        } else if (strcmp(key, "spool_size") == 0) {
            status = parse_size(reader, value, "audit.spool_size", 64 * 1024, 1ull << 40,
                                &guard->audit_spool_bytes);
        } else {
            status = yaml_bool(reader, value, "audit.reads", &guard->audit_reads);
        }
    }
    if (status != 0)
        return status;
    int stream = syslog != NULL && (strncmp(guard->audit_syslog, "tcp:", 4) == 0 ||
                                    strncmp(guard->audit_syslog, "tls:", 4) == 0);
    int tls = syslog != NULL && strncmp(guard->audit_syslog, "tls:", 4) == 0;
    if (tls && syslog_tls == NULL)
        return yaml_error(reader, syslog,
                          "audit.syslog: tls: needs audit.syslog_tls (ca or pin, and the "
                          "gateway's certificate and key when the collector asks for one)");
    if (syslog_tls != NULL && !tls)
        return yaml_error(reader, syslog_tls,
                          "audit.syslog_tls: only for audit.syslog: tls:host:port");
    if (stream && guard->audit_spool == NULL)
        return yaml_error(reader, syslog,
                          "audit.syslog: syslog over tcp and tls keeps what is not yet delivered "
                          "in a spool: give audit.spool, a directory (e.g. /var/lib/mbsec/spool)");
    return 0;
}

/* A name of the gateway: 1 to 64 letters, digits, '-', '_' or '.'. */
static int name_is_valid(const char *text) {
    size_t length = strlen(text);
    if (length == 0 || length > 64)
        return 0;
    for (size_t i = 0; i < length; i++)
        if (strchr("abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789-_.", text[i]) ==
            NULL)
            return 0;
    return 1;
}

/* A topic prefix: up to 200 bytes, no wildcard, not a $ topic, no '/' at either end. */
static const char *prefix_problem(const char *text) {
    size_t length = strlen(text);
    if (length > 200)
        return "at most 200 bytes";
    if (strpbrk(text, "+#") != NULL)
        return "no wildcards (+ or #) in a topic one publishes to";
    if (text[0] == '$')
        return "topics that begin with $ are the broker's own";
    if (text[0] == '/' || text[length - 1] == '/')
        return "no '/' at the start or the end (topics are PREFIX/audit/TYPE, PREFIX/status)";
    for (size_t i = 0; i < length; i++)
        if ((unsigned char)text[i] < 32 || text[i] == 127)
            return "no control characters";
    return NULL;
}

int config_mqtt(const struct yaml_reader *reader, const yaml_node_t *node,
                struct config_guard *guard) {
    static const char *const keys[] = {
        "broker",        "tls",      "name",      "prefix",           "client_id", "username",
        "password_file", "protocol", "keepalive", "metrics_interval", "audit",     NULL};
    struct config_mqtt *mqtt = &guard->mqtt;
    const yaml_node_t *broker = NULL, *tls = NULL;
    int status = yaml_check_mapping(reader, node, "mqtt", keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, node, i, &key, &value);
        char path[40];
        snprintf(path, sizeof path, "mqtt.%s", key);
        if (strcmp(key, "broker") == 0) {
            broker = value;
            status = take_string(reader, value, path, 300, &mqtt->broker);
            if (status == 0 && strncmp(mqtt->broker, "tcp:", 4) != 0 &&
                strncmp(mqtt->broker, "tls:", 4) != 0)
                status = yaml_error(reader, value,
                                    "mqtt.broker: give tcp:host:port or tls:host:port "
                                    "(1883 and 8883 are the usual ports)");
            const char *problem = status == 0 ? address_problem(mqtt->broker + 4) : NULL;
            if (problem != NULL)
                status = yaml_error(reader, value, "mqtt.broker: %s", problem);
        } else if (strcmp(key, "tls") == 0) {
            tls = value;
            status = config_sink_tls(reader, value, "mqtt.tls", &mqtt->tls);
        } else if (strcmp(key, "name") == 0) {
            status = take_string(reader, value, path, 64, &mqtt->name);
            if (status == 0 && !name_is_valid(mqtt->name))
                status = yaml_error(reader, value,
                                    "mqtt.name: 1 to 64 letters, digits, '-', '_' or '.'");
        } else if (strcmp(key, "prefix") == 0) {
            status = take_string(reader, value, path, 200, &mqtt->prefix);
            const char *problem = status == 0 ? prefix_problem(mqtt->prefix) : NULL;
            if (problem != NULL)
                status = yaml_error(reader, value, "mqtt.prefix: %s", problem);
        } else if (strcmp(key, "client_id") == 0) {
            status = take_string(reader, value, path, 128, &mqtt->client_id);
        } else if (strcmp(key, "username") == 0) {
            status = take_string(reader, value, path, 256, &mqtt->username);
        } else if (strcmp(key, "password_file") == 0) {
            status = take_path(reader, value, path, &mqtt->password_file);
        } else if (strcmp(key, "protocol") == 0) {
            static const char *const versions[] = {"3.1.1", "5", NULL};
            size_t choice = 0;
            status = yaml_choice(reader, value, path, versions, &choice);
            mqtt->protocol = choice == 1 ? 5 : 4;
        } else if (strcmp(key, "keepalive") == 0) {
            status = yaml_duration(reader, value, path, &mqtt->keepalive_ms);
            if (status == 0 && (mqtt->keepalive_ms < 5000 || mqtt->keepalive_ms > 65535000))
                status = yaml_error(reader, value, "mqtt.keepalive: from 5s to 65535s");
        } else if (strcmp(key, "metrics_interval") == 0) {
            if (yaml_is_word(value, "0"))
                mqtt->metrics_interval_ms = 0;
            else
                status = yaml_duration(reader, value, path, &mqtt->metrics_interval_ms);
            if (status == 0 && mqtt->metrics_interval_ms != 0 && mqtt->metrics_interval_ms < 1000)
                status = yaml_error(reader, value,
                                    "mqtt.metrics_interval: at least 1s (0 for no snapshots)");
        } else {
            status = yaml_bool(reader, value, path, &mqtt->audit);
        }
    }
    if (status != 0)
        return status;
    if (broker == NULL)
        return yaml_error(reader, node, "mqtt: broker is missing (tcp:host:port or tls:host:port)");
    int secure = strncmp(mqtt->broker, "tls:", 4) == 0;
    if (secure && tls == NULL)
        return yaml_error(reader, broker,
                          "mqtt.broker: tls: needs mqtt.tls (ca or pin, and the gateway's "
                          "certificate and key when the broker asks for one)");
    if (!secure && tls != NULL)
        return yaml_error(reader, tls, "mqtt.tls: only for mqtt.broker: tls:host:port");
    if (mqtt->password_file != NULL && mqtt->username == NULL)
        return yaml_error(reader, node, "mqtt: password_file needs a username");
    return 0;
}

int config_metrics(const struct yaml_reader *reader, const yaml_node_t *node,
                   struct config_guard *guard) {
    static const char *const keys[] = {"listen", NULL};
    int status = yaml_check_mapping(reader, node, "metrics", keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, node, i, &key, &value);
        char *address = NULL;
        status = take_string(reader, value, "metrics.listen", 255, &address);
        if (status != 0)
            return status;
        const char *problem = address_problem(address);
        if (problem != NULL) {
            free(address);
            return yaml_error(reader, value, "metrics.listen: %s", problem);
        }
        free(guard->metrics_listen);
        guard->metrics_listen = address;
    }
    return status;
}

static int parse_count(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                       uint32_t minimum, uint32_t maximum, uint32_t *field) {
    uint64_t number;
    int status = yaml_integer(reader, node, path, minimum, maximum, NULL, &number);
    if (status == 0)
        *field = (uint32_t)number;
    return status;
}

int config_alerts(const struct yaml_reader *reader, const yaml_node_t *node,
                  struct config_guard *guard) {
    static const char *const keys[] = {"window",    "scan_units", "denials",
                                       "malformed", "flood",      NULL};
    int status = yaml_check_mapping(reader, node, "alerts", keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        char path[32];
        yaml_mapping_pair(reader, node, i, &key, &value);
        snprintf(path, sizeof path, "alerts.%s", key);
        if (strcmp(key, "window") == 0) {
            status = yaml_duration(reader, value, path, &guard->alert_window_ms);
            if (status == 0 && guard->alert_window_ms < 100)
                status = yaml_error(reader, value, "alerts.window: at least 100ms");
        } else if (strcmp(key, "scan_units") == 0) {
            status = parse_count(reader, value, path, 2, 256, &guard->alert_scan_units);
        } else if (strcmp(key, "denials") == 0) {
            status = parse_count(reader, value, path, 1, 1000000, &guard->alert_denials);
        } else if (strcmp(key, "malformed") == 0) {
            status = parse_count(reader, value, path, 1, 1000000, &guard->alert_malformed);
        } else {
            status = parse_count(reader, value, path, 1, 1000000, &guard->alert_rate_limited);
        }
    }
    return status;
}

int config_rate(const struct yaml_reader *reader, const char *key, const yaml_node_t *node,
                struct config_guard *guard) {
    static const char *const actions[] = {"busy", "drop", "close", NULL};
    if (strcmp(key, "rate") == 0)
        return parse_count(reader, node, "limits.rate", 0, 1000000, &guard->rate);
    if (strcmp(key, "burst") == 0)
        return parse_count(reader, node, "limits.burst", 1, 1000000, &guard->burst);
    size_t choice = 0;
    int share = strcmp(key, "over_share") == 0;
    int status = yaml_choice(reader, node, share ? "limits.over_share" : "limits.over_rate",
                             actions, &choice);
    if (status == 0 && share)
        guard->over_share = (enum config_over_rate)choice;
    else if (status == 0)
        guard->over_rate = (enum config_over_rate)choice;
    return status;
}
