/* SPDX-License-Identifier: MIT */
#include "app/config/config.h"

#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <yaml.h>

#include "app/config/backends.h"
#include "app/config/node.h"
#include "app/config/policy.h"
#include "app/config/units.h"
#include "app/config/watch.h"
#include "mbsec/error.h"

/* A configuration file larger than this is a mistake (a log file passed by accident). */
#define MAX_FILE_SIZE (4u << 20)
#define MAX_IDENTITY_OBJECT 244u
#define MAX_SERVER_ID 250u

/* ---- defaults, free, copy ---- */

static void front_defaults(struct front_config *front) {
    front->workers = 1;
    front->log_format = LOG_PLAIN;
    front->log_level = MB_LOG_INFO;
    /* The values server.h documents for struct mb_server_limits, written out so that the tool
     * can show them; the config layer uses the runtime's types, not its functions. */
    front->limits.max_connections = 1024;
    front->limits.max_per_source = 64;
    front->limits.idle_timeout_ms = 60000;
    front->limits.max_in_flight = 16;
    front->shutdown_grace_ms = 5000;
    front->tls_handshake_timeout_ms = 10000;
}

void config_serve_defaults(struct serve_config *config) {
    memset(config, 0, sizeof *config);
    front_defaults(&config->front);
    /* The built-in simulator of model.h: any unit id, all four tables over 0..65535. */
    struct mb_unit_config *unit = &config->units[0];
    unit->coils.size = 65536;
    unit->discrete_inputs.size = 65536;
    unit->holding_registers.size = 65536;
    unit->input_registers.size = 65536;
    unit->files = 2;
    unit->records_per_file = 10000;
    config->model.any_unit = 1;
    config->model.units = config->units;
    config->model.unit_count = 1;
    config->model.identity.conformity_level = 0x83;
    config->model.identity.running = 1;
    config->model.sync_interval_ms = 1000;
}

void config_gateway_defaults(struct gateway_config *config) {
    memset(config, 0, sizeof *config);
    front_defaults(&config->front);
    config->front.authorize_plain = 1;
    config_guard_defaults(&config->guard);
}

/* Each frees what the config owns, leaving its pointers dangling: the caller resets or
 * overwrites. */
static void release_front(struct front_config *front) {
    for (size_t i = 0; i < front->listen_count; i++)
        free(front->listen[i]);
    free(front->user);
    for (size_t i = 0; i < front->tls_listen_count; i++)
        free(front->tls_listen[i]);
    free(front->tls_certificate);
    free(front->tls_key);
    free(front->tls_ca);
    free(front->tls_crl);
    mb_policy_destroy(front->policy);
    free(front->policy_text);
}

static void release_serve(struct serve_config *config) {
    release_front(&config->front);
    for (size_t i = 0; i < config->string_count; i++)
        free(config->strings[i]);
}

static void release_gateway(struct gateway_config *config) {
    release_front(&config->front);
    free(config->policy_notes);
    for (size_t i = 0; i < config->backend_count; i++)
        config_backend_free(&config->backends[i]);
    config_guard_free(&config->guard);
}

void config_serve_free(struct serve_config *config) {
    release_serve(config);
    config_serve_defaults(config);
}

void config_gateway_free(struct gateway_config *config) {
    release_gateway(config);
    config_gateway_defaults(config);
}

static const char **identity_strings(struct serve_config *config, size_t index) {
    struct mb_identity_config *identity = &config->model.identity;
    const char **fields[] = {&identity->vendor_name,      &identity->product_code,
                             &identity->revision,         &identity->vendor_url,
                             &identity->product_name,     &identity->model_name,
                             &identity->application_name, &config->model.persist_path};
    return index < sizeof fields / sizeof fields[0] ? fields[index] : NULL;
}

/*
 * After `to` was filled from `from` byte for byte, makes the pointers that pointed into `from`
 * (its units, FIFOs, server id and owned strings) point to the same places in `to`. to->strings
 * must already hold to's own strings, in the order of from->strings.
 */
static void relocate(struct serve_config *to, const struct serve_config *from) {
    const char **field;
    for (size_t i = 0; (field = identity_strings(to, i)) != NULL; i++)
        for (size_t k = 0; k < from->string_count; k++)
            if (*field != NULL && *field == from->strings[k])
                *field = to->strings[k];
    if (to->model.identity.server_id == from->server_id)
        to->model.identity.server_id = to->server_id;
    if (to->model.units == from->units)
        to->model.units = to->units;
    for (size_t i = 0; i < CONFIG_MAX_UNITS; i++) {
        if (to->units[i].fifos == NULL)
            continue;
        for (size_t k = 0; k < CONFIG_MAX_FIFOS; k++)
            if (to->units[i].fifos == &from->fifos[k])
                to->units[i].fifos = &to->fifos[k];
    }
}

static char *duplicate(const char *text) {
    size_t length = strlen(text) + 1;
    char *copy = malloc(length);
    if (copy != NULL)
        memcpy(copy, text, length);
    return copy;
}

/* Copies what `source` owns into `target`, a byte copy of it. Returns 0, or MB_ENOMEM with
 * `target` owning what was copied so far (release_front() frees it). */
static int copy_front(struct front_config *target, const struct front_config *source) {
    /* Until each is copied, the target owns nothing, so a failure can free it safely. */
    target->listen_count = 0;
    target->user = NULL;
    target->tls_listen_count = 0;
    target->tls_certificate = target->tls_key = target->tls_ca = target->tls_crl = NULL;
    target->policy = NULL;
    target->policy_text = NULL;
    for (size_t i = 0; i < source->listen_count; i++) {
        target->listen[i] = NULL;
        if (source->listen[i] != NULL && (target->listen[i] = duplicate(source->listen[i])) == NULL)
            return MB_ENOMEM;
        target->listen_count++;
    }
    if (source->user != NULL && (target->user = duplicate(source->user)) == NULL)
        return MB_ENOMEM;
    for (size_t i = 0; i < source->tls_listen_count; i++) {
        if ((target->tls_listen[i] = duplicate(source->tls_listen[i])) == NULL)
            return MB_ENOMEM;
        target->tls_listen_count++;
    }
    char **paths[] = {&target->tls_certificate, &target->tls_key, &target->tls_ca,
                      &target->tls_crl};
    const char *source_paths[] = {source->tls_certificate, source->tls_key, source->tls_ca,
                                  source->tls_crl};
    for (size_t i = 0; i < sizeof paths / sizeof paths[0]; i++)
        if (source_paths[i] != NULL && (*paths[i] = duplicate(source_paths[i])) == NULL)
            return MB_ENOMEM;
    if (source->policy != NULL && mb_policy_copy(source->policy, &target->policy) != 0)
        return MB_ENOMEM;
    if (source->policy_text != NULL &&
        (target->policy_text = duplicate(source->policy_text)) == NULL)
        return MB_ENOMEM;
    return 0;
}

int config_serve_copy(struct serve_config *target, const struct serve_config *source) {
    memcpy(target, source, sizeof *target);
    target->string_count = 0;
    if (copy_front(&target->front, &source->front) != 0)
        goto out_of_memory;
    for (size_t i = 0; i < source->string_count; i++) {
        target->strings[i] = NULL;
        if (source->strings[i] != NULL &&
            (target->strings[i] = duplicate(source->strings[i])) == NULL)
            goto out_of_memory;
        target->string_count++;
    }
    relocate(target, source);
    return 0;

out_of_memory:
    config_serve_free(target);
    return MB_ENOMEM;
}

int config_gateway_copy(struct gateway_config *target, const struct gateway_config *source) {
    memcpy(target, source, sizeof *target);
    /* Until each is copied, the target owns nothing, so a failure can free it safely. */
    target->policy_notes = NULL;
    target->backend_count = 0;
    config_guard_defaults(&target->guard);
    if (copy_front(&target->front, &source->front) != 0)
        goto out_of_memory;
    if (source->policy_notes != NULL &&
        (target->policy_notes = duplicate(source->policy_notes)) == NULL)
        goto out_of_memory;
    for (size_t i = 0; i < source->backend_count; i++) {
        if (config_backend_copy(&target->backends[i], &source->backends[i]) != 0)
            goto out_of_memory;
        target->backend_count++;
    }
    if (config_guard_copy(&target->guard, &source->guard) != 0)
        goto out_of_memory;
    return 0;

out_of_memory:
    config_gateway_free(target);
    return MB_ENOMEM;
}

/* ---- loading ---- */

/* The scratch copy being filled is serve's or the gateway's: the other pointer is NULL. */
struct loader {
    struct yaml_reader reader;
    const char *path;                   /* of the file, to resolve relative paths against */
    struct front_config *front;         /* the scratch copy's front part */
    struct serve_config *serve;         /* the scratch copy, loading for mbsec serve */
    struct gateway_config *gateway;     /* the scratch copy, loading for mbsec gateway */
    const yaml_node_t *authorize_plain; /* where authorize_plain was given, if it was */
    const yaml_node_t *policy_mode;     /* where policy_mode was given, if it was */
    const yaml_node_t *policy;          /* compiled last: its rules may name backends */
};

static int out_of_memory(struct loader *loader) {
    if (loader->reader.error != NULL && loader->reader.error_capacity > 0)
        snprintf(loader->reader.error, loader->reader.error_capacity, "%s: out of memory",
                 loader->path);
    return MB_ENOMEM;
}

/* Stores an owned copy of `text` behind one of the config's string fields, replacing the copy
 * an earlier load put there so that reloads never run out of slots. */
static int set_string(struct loader *loader, const char **field, const char *text, size_t length) {
    struct serve_config *config = loader->serve;
    char *copy = malloc(length + 1);
    if (copy == NULL)
        return out_of_memory(loader);
    memcpy(copy, text, length);
    copy[length] = '\0';
    for (size_t k = 0; k < config->string_count; k++) {
        if (*field != NULL && *field == config->strings[k]) {
            free(config->strings[k]);
            config->strings[k] = copy;
            *field = copy;
            return 0;
        }
    }
    if (config->string_count == sizeof config->strings / sizeof config->strings[0]) {
        free(copy);
        return out_of_memory(loader);
    }
    config->strings[config->string_count++] = copy;
    *field = copy;
    return 0;
}

/*
 * Addresses to listen on, one or a list, into list[0..*count) (owned copies, replacing what was
 * there). `key` names them in messages; with a `default_port`, a host given without a port
 * ("0.0.0.0", "[::]") gets that one.
 */
void config_with_port(const char *address, const char *default_port, char *out, size_t size) {
    size_t length = strlen(address);
    int bracketed = length > 2 && address[0] == '[' && address[length - 1] == ']';
    if (strchr(address, ':') == NULL || bracketed)
        snprintf(out, size, "%s:%s", address, default_port);
    else
        snprintf(out, size, "%s", address);
}

static int parse_addresses(struct loader *loader, const yaml_node_t *node, const char *key,
                           const char *default_port, char **list, size_t *count) {
    const struct yaml_reader *reader = &loader->reader;
    const yaml_node_t *items[CONFIG_MAX_LISTEN];
    char addresses[CONFIG_MAX_LISTEN][272];
    size_t item_count = 1;
    char path[48];
    int status;
    if (node->type == YAML_SEQUENCE_NODE) {
        status = yaml_check_sequence(reader, node, key, 1, CONFIG_MAX_LISTEN);
        if (status != 0)
            return status;
        item_count = yaml_sequence_size(node);
        for (size_t i = 0; i < item_count; i++)
            items[i] = yaml_sequence_item(reader, node, i);
    } else {
        items[0] = node;
    }
    for (size_t i = 0; i < item_count; i++) {
        const char *text, *problem;
        size_t length;
        if (node->type == YAML_SEQUENCE_NODE)
            snprintf(path, sizeof path, "%s[%zu]", key, i);
        else
            snprintf(path, sizeof path, "%s", key);
        status = yaml_string(reader, items[i], path, 255, &text, &length);
        if (status != 0)
            return status;
        if (default_port != NULL)
            config_with_port(text, default_port, addresses[i], sizeof addresses[i]);
        else
            snprintf(addresses[i], sizeof addresses[i], "%s", text);
        if ((problem = address_problem(addresses[i])) != NULL)
            return yaml_error(reader, items[i], "%s: %s is not an address to listen on: %s", path,
                              text, problem);
        for (size_t j = 0; j < i; j++)
            if (strcmp(addresses[j], addresses[i]) == 0)
                return yaml_error(reader, items[i], "%s: %s is already listed on line %zu", path,
                                  text, items[j]->start_mark.line + 1);
    }
    for (size_t i = 0; i < *count; i++)
        free(list[i]);
    *count = 0;
    for (size_t i = 0; i < item_count; i++) {
        if ((list[i] = duplicate(addresses[i])) == NULL)
            return out_of_memory(loader);
        (*count)++;
    }
    return 0;
}

static int parse_listen(struct loader *loader, const yaml_node_t *node) {
    return parse_addresses(loader, node, "listen", NULL, loader->front->listen,
                           &loader->front->listen_count);
}

static int parse_uint32(struct loader *loader, const yaml_node_t *node, const char *path,
                        uint32_t minimum, uint32_t maximum, uint32_t *value) {
    uint64_t number;
    int status = yaml_integer(&loader->reader, node, path, minimum, maximum, NULL, &number);
    if (status == 0)
        *value = (uint32_t)number;
    return status;
}

static int parse_user(struct loader *loader, const yaml_node_t *node) {
    const char *text;
    size_t length;
    int status = yaml_string(&loader->reader, node, "user", 255, &text, &length);
    if (status != 0)
        return status;
    if (length == 0)
        return yaml_error(&loader->reader, node, "user: the user name is empty");
    char *copy = duplicate(text);
    if (copy == NULL)
        return out_of_memory(loader);
    free(loader->front->user);
    loader->front->user = copy;
    return 0;
}

static int parse_log(struct loader *loader, const yaml_node_t *node) {
    static const char *const keys[] = {"format", "level", NULL};
    static const char *const formats[] = {"plain", "json", NULL};
    static const char *const levels[] = {"error", "warning", "info", "debug", NULL};
    int status = yaml_check_mapping(&loader->reader, node, "log", keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        size_t choice = 0;
        yaml_mapping_pair(&loader->reader, node, i, &key, &value);
        if (strcmp(key, "format") == 0) {
            status = yaml_choice(&loader->reader, value, "log.format", formats, &choice);
            if (status == 0)
                loader->front->log_format = choice == 1 ? LOG_JSON : LOG_PLAIN;
        } else {
            status = yaml_choice(&loader->reader, value, "log.level", levels, &choice);
            /* levels[] is in the order of enum mb_log_level. */
            if (status == 0)
                loader->front->log_level = (enum mb_log_level)choice;
        }
    }
    return status;
}

/* limits.source_prefix_ipv4 (1..32) and _ipv6 (1..128): how many leading bits of a client's
 * address make its source, for every per-source limit and count. */
static int parse_prefix(struct loader *loader, const char *key, const yaml_node_t *node,
                        struct mb_server_limits *limits) {
    int ipv6 = strcmp(key, "source_prefix_ipv6") == 0;
    char path[48];
    uint32_t prefix;
    snprintf(path, sizeof path, "limits.%s", key);
    int status = parse_uint32(loader, node, path, 1, ipv6 ? 128 : 32, &prefix);
    if (status == 0 && ipv6)
        limits->source_prefix_ipv6 = (uint8_t)prefix;
    else if (status == 0)
        limits->source_prefix_ipv4 = (uint8_t)prefix;
    return status;
}

static int parse_limits(struct loader *loader, const yaml_node_t *node) {
    static const char *const keys[] = {
        "max_connections", "max_per_source",     "idle_timeout",       "in_flight",
        "shutdown_grace",  "source_prefix_ipv4", "source_prefix_ipv6", NULL};
    static const char *const gateway_keys[] = {
        "max_connections", "max_per_source",     "idle_timeout",       "in_flight",
        "shutdown_grace",  "source_prefix_ipv4", "source_prefix_ipv6", "rate",
        "burst",           "over_rate",          "over_share",         NULL};
    const struct yaml_reader *reader = &loader->reader;
    struct front_config *front = loader->front;
    int status = yaml_check_mapping(reader, node, "limits", loader->gateway ? gateway_keys : keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, node, i, &key, &value);
        if (strcmp(key, "max_connections") == 0)
            status = parse_uint32(loader, value, "limits.max_connections", 1, 1000000,
                                  &front->limits.max_connections);
        else if (strcmp(key, "max_per_source") == 0)
            status = parse_uint32(loader, value, "limits.max_per_source", 1, 1000000,
                                  &front->limits.max_per_source);
        else if (strcmp(key, "idle_timeout") == 0)
            status =
                yaml_duration(reader, value, "limits.idle_timeout", &front->limits.idle_timeout_ms);
        else if (strcmp(key, "in_flight") == 0)
            status = parse_uint32(loader, value, "limits.in_flight", 1, 1024,
                                  &front->limits.max_in_flight);
        else if (strcmp(key, "source_prefix_ipv4") == 0 || strcmp(key, "source_prefix_ipv6") == 0)
            status = parse_prefix(loader, key, value, &front->limits);
        else if (strcmp(key, "rate") == 0 || strcmp(key, "burst") == 0 ||
                 strcmp(key, "over_rate") == 0 || strcmp(key, "over_share") == 0)
            status = config_rate(reader, key, value, &loader->gateway->guard);
        else
            status =
                yaml_duration(reader, value, "limits.shutdown_grace", &front->shutdown_grace_ms);
    }
    return status;
}

/* A path key: a non-empty string, resolved with yaml_path_from_file() into *field (owned,
 * replacing what was there). */
static int parse_path(struct loader *loader, const yaml_node_t *node, const char *key,
                      char **field) {
    const char *text;
    size_t length;
    int status = yaml_string(&loader->reader, node, key, 4095, &text, &length);
    if (status != 0)
        return status;
    if (length == 0)
        return yaml_error(&loader->reader, node, "%s: the path is empty", key);
    char *joined = yaml_path_from_file(&loader->reader, text, length);
    if (joined == NULL)
        return out_of_memory(loader);
    free(*field);
    *field = joined;
    return 0;
}

static int parse_persist_path(struct loader *loader, const yaml_node_t *node) {
    char *joined = NULL;
    int status = parse_path(loader, node, "persist.path", &joined);
    if (status != 0)
        return status;
    status = set_string(loader, &loader->serve->model.persist_path, joined, strlen(joined));
    free(joined);
    return status;
}

static int parse_persist(struct loader *loader, const yaml_node_t *node) {
    static const char *const keys[] = {"path", "sync_interval", NULL};
    int status = yaml_check_mapping(&loader->reader, node, "persist", keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(&loader->reader, node, i, &key, &value);
        if (strcmp(key, "path") == 0)
            status = parse_persist_path(loader, value);
        else
            status = yaml_duration(&loader->reader, value, "persist.sync_interval",
                                   &loader->serve->model.sync_interval_ms);
    }
    return status;
}

/* FC 17's server id: text, or a list of byte values for a binary one. */
static int parse_server_id(struct loader *loader, const yaml_node_t *node) {
    const struct yaml_reader *reader = &loader->reader;
    struct serve_config *config = loader->serve;
    uint8_t bytes[MAX_SERVER_ID];
    size_t length;
    if (node->type == YAML_SEQUENCE_NODE) {
        char path[48];
        int status = yaml_check_sequence(reader, node, "identity.server_id", 1, MAX_SERVER_ID);
        if (status != 0)
            return status;
        length = yaml_sequence_size(node);
        for (size_t i = 0; i < length; i++) {
            uint64_t byte;
            snprintf(path, sizeof path, "identity.server_id[%zu]", i);
            status = yaml_integer(reader, yaml_sequence_item(reader, node, i), path, 0, 255,
                                  "a byte 0..255 (or 0x00..0xFF)", &byte);
            if (status != 0)
                return status;
            bytes[i] = (uint8_t)byte;
        }
    } else {
        const char *text;
        int status = yaml_string(reader, node, "identity.server_id", MAX_SERVER_ID, &text, &length);
        if (status != 0)
            return status;
        if (length == 0)
            return yaml_error(reader, node, "identity.server_id: the server id is empty");
        memcpy(bytes, text, length);
    }
    memcpy(config->server_id, bytes, length);
    config->model.identity.server_id = config->server_id;
    config->model.identity.server_id_length = length;
    return 0;
}

static int parse_conformity(struct loader *loader, const yaml_node_t *node) {
    static const char expected[] = "a conformity level 0x01..0x03 or 0x81..0x83";
    uint64_t level;
    int status =
        yaml_integer(&loader->reader, node, "identity.conformity", 0x01, 0x83, expected, &level);
    if (status != 0)
        return status;
    if (level > 0x03 && level < 0x81)
        return yaml_error(&loader->reader, node,
                          "identity.conformity: %s is out of range; expected %s",
                          (const char *)node->data.scalar.value, expected);
    loader->serve->model.identity.conformity_level = (uint8_t)level;
    return 0;
}

static const char *const identity_keys[] = {
    "vendor_name", "product_code",     "revision",   "vendor_url", "product_name",
    "model_name",  "application_name", "conformity", "server_id",  "running",
    NULL};

static int parse_identity(struct loader *loader, const yaml_node_t *node) {
    const struct yaml_reader *reader = &loader->reader;
    int status = yaml_check_mapping(reader, node, "identity", identity_keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key, *text;
        yaml_node_t *value;
        char path[48];
        size_t length;
        yaml_mapping_pair(reader, node, i, &key, &value);
        snprintf(path, sizeof path, "identity.%s", key);
        if (strcmp(key, "conformity") == 0) {
            status = parse_conformity(loader, value);
        } else if (strcmp(key, "server_id") == 0) {
            status = parse_server_id(loader, value);
        } else if (strcmp(key, "running") == 0) {
            status = yaml_bool(reader, value, path, &loader->serve->model.identity.running);
        } else {
            /* The first seven keys are the seven strings, in identity_strings() order. */
            size_t index = 0;
            while (strcmp(identity_keys[index], key) != 0)
                index++;
            status = yaml_string(reader, value, path, MAX_IDENTITY_OBJECT, &text, &length);
            if (status == 0)
                status = set_string(loader, identity_strings(loader->serve, index), text, length);
        }
    }
    return status;
}

static const char *const tls_keys[] = {"listen",          "certificate",       "key", "ca", "crl",
                                       "session_tickets", "handshake_timeout", NULL};

static int parse_tls(struct loader *loader, const yaml_node_t *node) {
    const struct yaml_reader *reader = &loader->reader;
    struct front_config *front = loader->front;
    int status = yaml_check_mapping(reader, node, "tls", tls_keys);
    if (status != 0 || yaml_is_null(node))
        return status;
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        char path[32];
        yaml_mapping_pair(reader, node, i, &key, &value);
        snprintf(path, sizeof path, "tls.%s", key);
        if (strcmp(key, "listen") == 0)
            status = parse_addresses(loader, value, path, CONFIG_TLS_PORT, front->tls_listen,
                                     &front->tls_listen_count);
        else if (strcmp(key, "certificate") == 0)
            status = parse_path(loader, value, path, &front->tls_certificate);
        else if (strcmp(key, "key") == 0)
            status = parse_path(loader, value, path, &front->tls_key);
        else if (strcmp(key, "ca") == 0)
            status = parse_path(loader, value, path, &front->tls_ca);
        else if (strcmp(key, "crl") == 0)
            status = parse_path(loader, value, path, &front->tls_crl);
        else if (strcmp(key, "session_tickets") == 0)
            status = yaml_bool(reader, value, path, &front->tls_session_tickets);
        else
            status = yaml_duration(reader, value, path, &front->tls_handshake_timeout_ms);
    }
    if (status != 0)
        return status;
    /* A tls section means Modbus/TCP Security is served: on its own port unless told where. */
    if (front->tls_listen_count == 0) {
        static const char *const defaults[] = {"0.0.0.0:" CONFIG_TLS_PORT, "[::]:" CONFIG_TLS_PORT};
        for (size_t i = 0; i < 2; i++) {
            if ((front->tls_listen[i] = duplicate(defaults[i])) == NULL)
                return out_of_memory(loader);
            front->tls_listen_count++;
        }
    }
    const char *missing[3];
    size_t missing_count = 0;
    if (front->tls_certificate == NULL)
        missing[missing_count++] = "certificate";
    if (front->tls_key == NULL)
        missing[missing_count++] = "key";
    if (front->tls_ca == NULL)
        missing[missing_count++] = "ca";
    if (missing_count > 0)
        return yaml_error(reader, node,
                          "tls: certificate, key and ca are all needed to serve Modbus/TCP "
                          "Security; missing: %s%s%s%s%s",
                          missing[0], missing_count > 1 ? ", " : "",
                          missing_count > 1 ? missing[1] : "", missing_count > 2 ? ", " : "",
                          missing_count > 2 ? missing[2] : "");
    return 0;
}

/* The rules as written, one line each without their name (which --check takes from the
 * compiled policy), into an owned string. */
static int describe_rules(struct loader *loader, const yaml_node_t *node, char **text) {
    const struct yaml_reader *reader = &loader->reader;
    size_t count = yaml_sequence_size(node);
    size_t capacity = count * 512 + 1;
    char *lines = malloc(capacity);
    if (lines == NULL)
        return out_of_memory(loader);
    size_t used = 0;
    lines[0] = '\0';
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *rule = yaml_sequence_item(reader, node, i);
        char line[512], value[400];
        size_t line_used = 0;
        line[0] = '\0';
        for (size_t k = 0; k < yaml_mapping_size(rule); k++) {
            const char *key;
            yaml_node_t *item;
            yaml_mapping_pair(reader, rule, k, &key, &item);
            if (strcmp(key, "name") == 0)
                continue;
            yaml_flow(reader, item, value, sizeof value);
            int written = snprintf(line + line_used, sizeof line - line_used, "%s%s: %s",
                                   line_used ? ", " : "", key, value);
            if (written < 0 || (size_t)written >= sizeof line - line_used) {
                line_used = sizeof line - 1;
                break;
            }
            line_used += (size_t)written;
        }
        used += (size_t)snprintf(lines + used, capacity - used, "%s\n", line);
    }
    free(*text);
    *text = lines;
    return 0;
}

/* After the rest of the file: a gateway's rules may name its backends, and read its routes. */
static int parse_policy(struct loader *loader, const yaml_node_t *node) {
    struct front_config *front = loader->front;
    struct gateway_config *gateway = loader->gateway;
    struct mb_policy *policy = NULL;
    char *notes = NULL;
    /* "policy:" with nothing after it is the section left out; "policy: []" denies all. */
    if (yaml_is_null(node))
        return 0;
    struct policy_devices devices = {0};
    if (gateway != NULL) {
        devices.backends = gateway->backends;
        devices.backend_count = gateway->backend_count;
        devices.routes = gateway->routes;
        devices.route_count = gateway->route_count;
        devices.front_units = gateway->policy_front_units;
    }
    int status = config_policy(&loader->reader, node, gateway != NULL ? &devices : NULL,
                               front->policy_monitor, &policy, &notes);
    if (status == 0)
        status = describe_rules(loader, node, &front->policy_text);
    if (status != 0) {
        mb_policy_destroy(policy);
        free(notes);
        return status;
    }
    mb_policy_destroy(front->policy);
    front->policy = policy;
    /* Notes are said of devices: only the gateway's policy has any. */
    if (gateway != NULL) {
        free(gateway->policy_notes);
        gateway->policy_notes = notes;
    }
    return 0;
}

static const char *const serve_keys[] = {
    "listen", "workers",         "user",   "log",         "limits", "persist", "identity", "units",
    "tls",    "authorize_plain", "policy", "policy_mode", NULL};
static const char *const gateway_keys[] = {
    "listen",   "workers", "user",   "log",     "limits",       "tls",  "authorize_plain", "policy",
    "backends", "audit",   "alerts", "metrics", "policy_units", "mqtt", "policy_mode",     NULL};

/* A key of the other program is named as such, rather than as an unknown key. */
static int check_program(struct loader *loader, const yaml_node_t *root) {
    static const char *const data_model[] = {"units", "persist", "identity", NULL};
    const struct yaml_reader *reader = &loader->reader;
    if (root->type != YAML_MAPPING_NODE)
        return 0;
    for (size_t i = 0; i < yaml_mapping_size(root); i++) {
        const yaml_node_t *key = yaml_mapping_key(reader, root, i);
        if (loader->serve != NULL && yaml_is_word(key, "backends"))
            return yaml_error(reader, key,
                              "backends is a key of mbsec gateway: mbsec serve answers "
                              "from its own data model (units) and forwards nothing");
        static const char *const gateway_only[] = {"audit", "alerts", "metrics", "mqtt", NULL};
        for (size_t k = 0; loader->serve != NULL && gateway_only[k]; k++)
            if (yaml_is_word(key, gateway_only[k]))
                return yaml_error(reader, key,
                                  "%s is a key of mbsec gateway; mbsec serve logs denials "
                                  "on stderr (log) and has no %s section",
                                  gateway_only[k], gateway_only[k]);
        for (size_t k = 0; loader->gateway != NULL && data_model[k]; k++)
            if (yaml_is_word(key, data_model[k]))
                return yaml_error(reader, key,
                                  "%s is a key of mbsec serve: the gateway has no data "
                                  "model; the devices behind it (backends) answer",
                                  data_model[k]);
    }
    return 0;
}

static int parse_top(struct loader *loader, const yaml_node_t *root) {
    const struct yaml_reader *reader = &loader->reader;
    int gateway = loader->gateway != NULL;
    const yaml_node_t *mqtt = NULL;
    int status = check_program(loader, root);
    if (status == 0)
        status = yaml_check_mapping(reader, root, "", gateway ? gateway_keys : serve_keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(root); i++) {
        const char *key;
        yaml_node_t *value;
        uint32_t workers = 0;
        yaml_mapping_pair(reader, root, i, &key, &value);
        if (strcmp(key, "listen") == 0) {
            status = parse_listen(loader, value);
        } else if (strcmp(key, "workers") == 0) {
            status = parse_uint32(loader, value, "workers", 1, 64, &workers);
            const char *refused =
                status == 0 && gateway ? config_gateway_workers_refused(workers) : NULL;
            if (refused != NULL)
                status = yaml_error(reader, value, "workers: %s", refused);
            if (status == 0)
                loader->front->workers = (int)workers;
        } else if (strcmp(key, "user") == 0) {
            status = parse_user(loader, value);
        } else if (strcmp(key, "log") == 0) {
            status = parse_log(loader, value);
        } else if (strcmp(key, "limits") == 0) {
            status = parse_limits(loader, value);
        } else if (strcmp(key, "persist") == 0) {
            status = parse_persist(loader, value);
        } else if (strcmp(key, "identity") == 0) {
            status = parse_identity(loader, value);
        } else if (strcmp(key, "units") == 0) {
            status = config_units(reader, value, loader->serve);
        } else if (strcmp(key, "tls") == 0) {
            status = parse_tls(loader, value);
        } else if (strcmp(key, "backends") == 0) {
            status = config_backends(reader, value, loader->gateway);
        } else if (strcmp(key, "audit") == 0) {
            status = config_audit(reader, value, &loader->gateway->guard);
        } else if (strcmp(key, "mqtt") == 0) {
            mqtt = value;
            status = config_mqtt(reader, value, &loader->gateway->guard);
        } else if (strcmp(key, "alerts") == 0) {
            status = config_alerts(reader, value, &loader->gateway->guard);
        } else if (strcmp(key, "metrics") == 0) {
            status = config_metrics(reader, value, &loader->gateway->guard);
        } else if (strcmp(key, "authorize_plain") == 0) {
            loader->authorize_plain = value;
            status = yaml_bool(reader, value, "authorize_plain", &loader->front->authorize_plain);
        } else if (strcmp(key, "policy_mode") == 0) {
            loader->policy_mode = value;
            status =
                config_policy_mode(reader, value, "policy_mode", &loader->front->policy_monitor);
        } else if (strcmp(key, "policy_units") == 0) {
            static const char *const modes[] = {"device", "front", NULL};
            size_t choice = 0;
            status = yaml_choice(reader, value, "policy_units", modes, &choice);
            loader->gateway->policy_front_units = choice == 1;
        } else {
            loader->policy = value;
        }
    }
    if (status == 0 && mqtt != NULL && loader->gateway->guard.audit_spool == NULL)
        status = yaml_error(reader, mqtt,
                            "mqtt: what the broker has not acknowledged waits in a spool: give "
                            "audit.spool, a directory (e.g. /var/lib/mbsec/spool)");
    if (status == 0 && loader->policy != NULL)
        status = parse_policy(loader, loader->policy);
    if (status == 0 && loader->policy_mode != NULL && loader->front->policy_monitor &&
        loader->front->policy == NULL)
        status = yaml_error(reader, loader->policy_mode,
                            "policy_mode: monitor needs a policy section: without one there are "
                            "no rules to watch, and every request checked is denied");
    if (status == 0 && loader->authorize_plain != NULL && loader->front->authorize_plain &&
        loader->front->policy == NULL)
        status = yaml_error(reader, loader->authorize_plain,
                            "authorize_plain: true needs a policy section; without one every "
                            "plain-TCP request would be denied");
    return status;
}

const char *config_gateway_workers_refused(uint64_t workers) {
    return workers == 1 ? NULL
                        : "the gateway runs one event loop for now; 1 is the only value (the "
                          "backends' connections are shared by every client through it)";
}

/* Line and column (from 1) of a byte offset, for reader errors, which carry no mark. */
static void position_of(const unsigned char *text, size_t offset, size_t *line, size_t *column) {
    *line = 1;
    *column = 1;
    for (size_t i = 0; i < offset; i++) {
        if (text[i] == '\n') {
            (*line)++;
            *column = 1;
        } else if ((text[i] & 0xC0) != 0x80) {
            (*column)++;
        }
    }
}

static int syntax_error(struct loader *loader, const yaml_parser_t *parser,
                        const unsigned char *text, size_t size) {
    char *error = loader->reader.error;
    size_t capacity = loader->reader.error_capacity;
    if (parser->error == YAML_MEMORY_ERROR)
        return out_of_memory(loader);
    if (error == NULL || capacity == 0)
        return MB_ECONFIG;
    const char *problem = parser->problem != NULL ? parser->problem : "cannot parse";
    if (parser->error == YAML_READER_ERROR) {
        size_t line, column;
        position_of(text, parser->problem_offset < size ? parser->problem_offset : size, &line,
                    &column);
        if (parser->problem_value != -1)
            snprintf(error, capacity, "%s:%zu:%zu: %s (byte 0x%02X)", loader->path, line, column,
                     problem, (unsigned)parser->problem_value & 0xFFu);
        else
            snprintf(error, capacity, "%s:%zu:%zu: %s", loader->path, line, column, problem);
    } else if (parser->context != NULL) {
        snprintf(error, capacity, "%s:%zu:%zu: %s (%s at line %zu, column %zu)", loader->path,
                 parser->problem_mark.line + 1, parser->problem_mark.column + 1, problem,
                 parser->context, parser->context_mark.line + 1, parser->context_mark.column + 1);
    } else {
        snprintf(error, capacity, "%s:%zu:%zu: %s", loader->path, parser->problem_mark.line + 1,
                 parser->problem_mark.column + 1, problem);
    }
    return MB_ECONFIG;
}

/* Parses the text into the loader's scratch copy. */
static int parse_text(struct loader *loader, const unsigned char *text, size_t size) {
    yaml_parser_t parser;
    yaml_document_t document, next;
    int status = 0;
    if (!yaml_parser_initialize(&parser))
        return out_of_memory(loader);
    yaml_parser_set_input_string(&parser, text, size);
    if (!yaml_parser_load(&parser, &document)) {
        status = syntax_error(loader, &parser, text, size);
        yaml_parser_delete(&parser);
        return status;
    }
    loader->reader.document = &document;
    yaml_node_t *root = yaml_document_get_root_node(&document);
    if (root != NULL) {
        /* A second document is refused: which one would the server take? */
        if (!yaml_parser_load(&parser, &next)) {
            status = syntax_error(loader, &parser, text, size);
        } else {
            yaml_node_t *next_root = yaml_document_get_root_node(&next);
            if (next_root != NULL) {
                struct yaml_reader next_reader = loader->reader;
                next_reader.document = &next;
                status = yaml_error(&next_reader, next_root,
                                    "a second YAML document; the configuration is one "
                                    "document");
            }
            yaml_document_delete(&next);
        }
        if (status == 0)
            status = yaml_check_tags(&loader->reader);
        /* An empty document ("---" alone) is a null root: the defaults, like an empty file. */
        if (status == 0 && !yaml_is_null(root))
            status = parse_top(loader, root);
    }
    yaml_document_delete(&document);
    yaml_parser_delete(&parser);
    return status;
}

static int read_file(const char *path, unsigned char **text, size_t *size, char *error,
                     size_t error_capacity) {
    FILE *file = fopen(path, "rb");
    unsigned char *buffer = NULL;
    size_t used = 0;
    if (file == NULL)
        goto system_error;
    buffer = malloc(MAX_FILE_SIZE + 1);
    if (buffer == NULL) {
        fclose(file);
        if (error != NULL && error_capacity > 0)
            snprintf(error, error_capacity, "%s: out of memory", path);
        return MB_ENOMEM;
    }
    used = fread(buffer, 1, MAX_FILE_SIZE + 1, file);
    if (ferror(file)) {
        int saved = errno;
        fclose(file);
        free(buffer);
        errno = saved;
        goto system_error;
    }
    fclose(file);
    if (used > MAX_FILE_SIZE) {
        free(buffer);
        if (error != NULL && error_capacity > 0)
            snprintf(error, error_capacity, "%s: larger than %u bytes; not a configuration file",
                     path, MAX_FILE_SIZE);
        return MB_ECONFIG;
    }
    *text = buffer;
    *size = used;
    return 0;

system_error:
    if (error != NULL && error_capacity > 0)
        snprintf(error, error_capacity, "%s: cannot read: %s", path, strerror(errno));
    return MB_ESYSTEM;
}

/* Before loading: clears `error`; MB_EINVAL without a path or a configuration. */
static int begin_load(const char *path, const void *config, char *error, size_t error_capacity) {
    if (error != NULL && error_capacity > 0)
        error[0] = '\0';
    return path == NULL || config == NULL ? MB_EINVAL : 0;
}

/* Reads the file and parses it into the loader's scratch copy. */
static int load_file(struct loader *loader) {
    unsigned char *text = NULL;
    size_t size = 0;
    int status =
        read_file(loader->path, &text, &size, loader->reader.error, loader->reader.error_capacity);
    if (status != 0)
        return status;
    status = parse_text(loader, text, size);
    free(text);
    return status;
}

/* Everything goes into a scratch copy, swapped in only when the whole file is good: a reload
 * that fails keeps the configuration being served. */

int config_serve_load(const char *path, struct serve_config *config, char *error,
                      size_t error_capacity) {
    struct loader loader = {
        .reader = {.file = path, .error = error, .error_capacity = error_capacity},
        .path = path,
    };
    int status = begin_load(path, config, error, error_capacity);
    if (status != 0)
        return status;
    struct serve_config *scratch = malloc(sizeof *scratch);
    if (scratch == NULL || config_serve_copy(scratch, config) != 0) {
        free(scratch);
        return out_of_memory(&loader);
    }
    loader.front = &scratch->front;
    loader.serve = scratch;
    status = load_file(&loader);
    if (status != 0) {
        config_serve_free(scratch);
    } else {
        release_serve(config);
        memcpy(config, scratch, sizeof *config);
        relocate(config, scratch);
    }
    free(scratch);
    return status;
}

int config_gateway_load(const char *path, struct gateway_config *config, char *error,
                        size_t error_capacity) {
    struct loader loader = {
        .reader = {.file = path, .error = error, .error_capacity = error_capacity},
        .path = path,
    };
    int status = begin_load(path, config, error, error_capacity);
    if (status != 0)
        return status;
    struct gateway_config *scratch = malloc(sizeof *scratch);
    if (scratch == NULL || config_gateway_copy(scratch, config) != 0) {
        free(scratch);
        return out_of_memory(&loader);
    }
    loader.front = &scratch->front;
    loader.gateway = scratch;
    status = load_file(&loader);
    if (status != 0) {
        config_gateway_free(scratch);
    } else {
        /* A gateway configuration points nowhere into itself: the byte copy is whole. */
        release_gateway(config);
        memcpy(config, scratch, sizeof *config);
    }
    free(scratch);
    return status;
}
