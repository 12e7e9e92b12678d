/* SPDX-License-Identifier: MIT */
#include "app/config/watch.h"

#include <stdlib.h>
#include <string.h>

#include "mbsec/error.h"

void config_guard_defaults(struct config_guard *guard) {
    memset(guard, 0, sizeof *guard);
    guard->over_rate = OVER_RATE_BUSY;
    guard->alert_window_ms = 10000;
    guard->alert_scan_units = 8;
    guard->alert_denials = 10;
    guard->alert_malformed = 5;
    guard->alert_rate_limited = 50;
}

void config_guard_free(struct config_guard *guard) {
    free(guard->audit_file);
    free(guard->audit_syslog);
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

int config_guard_copy(struct config_guard *target, const struct config_guard *source) {
    *target = *source;
    target->audit_file = target->audit_syslog = target->metrics_listen = NULL;
    if (copy_text(&target->audit_file, source->audit_file) != 0 ||
        copy_text(&target->audit_syslog, source->audit_syslog) != 0 ||
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
    else if (strncmp(value, "udp:", 4) == 0)
        problem = address_problem(value + 4);
    else
        problem = "give unix (the local syslog daemon, /dev/log), unix:/path/of/socket, or "
                  "udp:host:port";
    if (problem != NULL) {
        free(value);
        return yaml_error(reader, node, "audit.syslog: %s", problem);
    }
    free(guard->audit_syslog);
    guard->audit_syslog = value;
    return 0;
}

int config_audit(const struct yaml_reader *reader, const yaml_node_t *node,
                 struct config_guard *guard) {
    static const char *const keys[] = {"file", "syslog", "reads", NULL};
    int status = yaml_check_mapping(reader, node, "audit", keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, node, i, &key, &value);
        if (strcmp(key, "file") == 0) {
            const char *text;
            size_t length;
            status = yaml_string(reader, value, "audit.file", 4095, &text, &length);
            if (status == 0 && length == 0)
                status = yaml_error(reader, value, "audit.file: the path is empty");
            if (status == 0) {
                char *joined = yaml_path_from_file(reader, text, length);
                if (joined == NULL)
                    return out_of_memory(reader, value);
                free(guard->audit_file);
                guard->audit_file = joined;
            }
        } else if (strcmp(key, "syslog") == 0) {
            status = parse_syslog(reader, value, guard);
        } else {
            status = yaml_bool(reader, value, "audit.reads", &guard->audit_reads);
        }
    }
    return status;
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
