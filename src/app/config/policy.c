/* SPDX-License-Identifier: MIT */
#include "app/config/policy.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbsec/error.h"
#include "mbsec/pdu.h"

static const char *const rule_keys[] = {"name",   "action", "exception", "roles",  "sources",
                                        "tls",    "units",  "devices",   "preset", "functions",
                                        "access", "tables", "values",    "mode",   NULL};
/* In the order of enum mb_policy_table. */
static const char *const table_names[] = {
    "coils", "discrete_inputs", "holding_registers", "input_registers", "files", "fifos", "device",
    NULL};
static const char *const file_keys[] = {"numbers", "records", NULL};
/* In the order of enum mb_policy_action, from MB_POLICY_ALLOW. */
static const char *const actions[] = {"allow", "deny", "drop", "close", NULL};
/* In the order of enum mb_policy_preset, from MB_POLICY_READ_ONLY. */
static const char *const presets[] = {"read-only", "read-write", NULL};
static const char *const accesses[] = {"read", "write", NULL};

static const char addresses_expected[] = "an address 0..65535, a range such as 100-199, or any";
static const char units_expected[] = "a unit id 0..255, a range such as 1-10, or any";

/* The rules being read, and everything allocated for them: their lists live until the policy
 * is compiled, their strings in the YAML document. */
struct builder {
    const struct yaml_reader *reader;
    const struct policy_devices *devices; /* NULL: mbsec serve */
    int monitor;                          /* policy_mode: monitor */
    void **blocks;
    size_t block_count;
    size_t block_capacity;
};

static int out_of_memory(const struct builder *builder) {
    const struct yaml_reader *reader = builder->reader;
    if (reader->error != NULL && reader->error_capacity > 0)
        snprintf(reader->error, reader->error_capacity, "%s: out of memory", reader->file);
    return MB_ENOMEM;
}

/* Zeroed room for `count` items of `size` bytes, freed with the builder; NULL when out of
 * memory. */
static void *allocate(struct builder *builder, size_t count, size_t size) {
    if (builder->block_count == builder->block_capacity) {
        size_t capacity = builder->block_capacity ? builder->block_capacity * 2 : 64;
        void **blocks = realloc(builder->blocks, capacity * sizeof *blocks);
        if (blocks == NULL)
            return NULL;
        builder->blocks = blocks;
        builder->block_capacity = capacity;
    }
    void *block = calloc(count > 0 ? count : 1, size);
    if (block != NULL)
        builder->blocks[builder->block_count++] = block;
    return block;
}

static void builder_free(struct builder *builder) {
    for (size_t i = 0; i < builder->block_count; i++)
        free(builder->blocks[i]);
    free(builder->blocks);
}

static const char *scalar_text(const yaml_node_t *node) {
    return (const char *)node->data.scalar.value;
}

static int is_plain_word(const yaml_node_t *node, const char *word) {
    return yaml_is_word(node, word) && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

/* A rule key must say something: `roles:` with nothing after it is a mistake, not "everyone". */
static int refuse_null(const struct yaml_reader *reader, const yaml_node_t *node,
                       const char *path) {
    if (yaml_is_null(node))
        return yaml_error(reader, node, "%s: no value; give one or leave the key out", path);
    return 0;
}

/* The items of a list, or the one scalar given instead of a list: *count of them. */
static int items_of(const struct builder *builder, const yaml_node_t *node, const char *path,
                    size_t *count) {
    int status = refuse_null(builder->reader, node, path);
    if (status != 0)
        return status;
    if (node->type == YAML_SEQUENCE_NODE) {
        status = yaml_check_sequence(builder->reader, node, path, 1, MB_POLICY_MAX_LIST);
        *count = yaml_sequence_size(node);
        return status;
    }
    *count = 1;
    return 0;
}

static const yaml_node_t *item_at(const struct builder *builder, const yaml_node_t *node,
                                  size_t index, const char *path, char *item_path,
                                  size_t capacity) {
    if (node->type != YAML_SEQUENCE_NODE) {
        snprintf(item_path, capacity, "%.96s", path);
        return node;
    }
    snprintf(item_path, capacity, "%.96s[%zu]", path, index);
    return yaml_sequence_item(builder->reader, node, index);
}

/* ---- ranges ---- */

/* "N" or "FIRST-LAST", each number decimal or 0x hex, within 0..maximum. */
static int parse_range(const struct builder *builder, const yaml_node_t *node, const char *path,
                       unsigned maximum, const char *expected, struct mb_policy_range *range) {
    const struct yaml_reader *reader = builder->reader;
    if (node->type != YAML_SCALAR_NODE || yaml_is_null(node))
        return yaml_error(reader, node, "%s: expected %s", path, expected);
    const char *text = scalar_text(node);
    size_t length = node->data.scalar.length;
    uint64_t first, last;
    if (integer_parse(text, length, &first) == 0) {
        last = first;
    } else {
        /* The dash after the first character: a leading one would be a sign. */
        const char *dash = length > 1 ? memchr(text + 1, '-', length - 1) : NULL;
        if (dash == NULL || integer_parse(text, (size_t)(dash - text), &first) != 0 ||
            integer_parse(dash + 1, length - (size_t)(dash - text) - 1, &last) != 0)
            return yaml_error(reader, node, "%s: expected %s, got \"%.40s\"", path, expected, text);
    }
    if (first > maximum || last > maximum)
        return yaml_error(reader, node, "%s: %s is out of range; expected %s", path, text,
                          expected);
    if (first > last)
        return yaml_error(reader, node, "%s: %s ends before it starts", path, text);
    range->first = (uint16_t)first;
    range->last = (uint16_t)last;
    return 0;
}

/* `any`, one range, or a list of ranges; `any` gives no ranges (every number). */
static int parse_ranges(struct builder *builder, const yaml_node_t *node, const char *path,
                        unsigned maximum, const char *expected,
                        const struct mb_policy_range **ranges, size_t *count) {
    char item_path[128];
    size_t items;
    *ranges = NULL;
    *count = 0;
    if (is_plain_word(node, "any"))
        return 0;
    int status = items_of(builder, node, path, &items);
    if (status != 0)
        return status;
    struct mb_policy_range *list = allocate(builder, items, sizeof *list);
    if (list == NULL)
        return out_of_memory(builder);
    for (size_t i = 0; i < items; i++) {
        const yaml_node_t *item = item_at(builder, node, i, path, item_path, sizeof item_path);
        status = parse_range(builder, item, item_path, maximum, expected, &list[i]);
        if (status != 0)
            return status;
    }
    *ranges = list;
    *count = items;
    return 0;
}

/* ---- who ---- */

static int parse_roles(struct builder *builder, const yaml_node_t *node, const char *path,
                       struct mb_policy_rule *rule) {
    char item_path[128];
    size_t items;
    int status = items_of(builder, node, path, &items);
    if (status != 0)
        return status;
    const char **roles = allocate(builder, items, sizeof *roles);
    if (roles == NULL)
        return out_of_memory(builder);
    rule->roles = roles;
    for (size_t i = 0; i < items; i++) {
        const yaml_node_t *item = item_at(builder, node, i, path, item_path, sizeof item_path);
        const char *text;
        size_t length;
        /* Unquoted, these two words are the special roles; quoted, they are role names. */
        if (is_plain_word(item, "any")) {
            rule->role_flags |= MB_POLICY_ROLE_ANY;
            continue;
        }
        if (is_plain_word(item, "none")) {
            rule->role_flags |= MB_POLICY_ROLE_NONE;
            continue;
        }
        status = yaml_string(builder->reader, item, item_path, MB_POLICY_MAX_ROLE, &text, &length);
        if (status != 0)
            return status;
        if (length == 0)
            return yaml_error(builder->reader, item, "%s: the role is empty", item_path);
        roles[rule->role_count++] = text;
    }
    return 0;
}

static int parse_sources(struct builder *builder, const yaml_node_t *node, const char *path,
                         struct mb_policy_rule *rule) {
    char item_path[128], problem[160];
    size_t items;
    int status = items_of(builder, node, path, &items);
    if (status != 0)
        return status;
    struct mb_policy_source *sources = allocate(builder, items, sizeof *sources);
    if (sources == NULL)
        return out_of_memory(builder);
    for (size_t i = 0; i < items; i++) {
        const yaml_node_t *item = item_at(builder, node, i, path, item_path, sizeof item_path);
        const char *text;
        size_t length;
        status = yaml_string(builder->reader, item, item_path, 64, &text, &length);
        if (status != 0)
            return status;
        if (mb_policy_source_parse(text, &sources[i], problem, sizeof problem) != 0)
            return yaml_error(builder->reader, item, "%s: %s", item_path, problem);
    }
    rule->sources = sources;
    rule->source_count = items;
    return 0;
}

/* ---- what ---- */

static int parse_functions(struct builder *builder, const yaml_node_t *node, const char *path,
                           struct mb_policy_rule *rule) {
    static const char expected[] = "a function code 1..127 or a function name such as "
                                   "read_holding_registers (docs/configuration.md lists them)";
    char item_path[128];
    size_t items;
    int whole_diagnostics = 0, whole_encapsulated = 0;
    int status = items_of(builder, node, path, &items);
    if (status != 0)
        return status;
    /* One more for FC 8 or 43 when only their sub-functions are named. */
    uint8_t *functions = allocate(builder, items + 2, 1);
    if (functions == NULL)
        return out_of_memory(builder);
    for (size_t i = 0; i < items; i++) {
        const yaml_node_t *item = item_at(builder, node, i, path, item_path, sizeof item_path);
        uint8_t function;
        int sub = -1;
        if (item->type == YAML_SCALAR_NODE && item->data.scalar.length > 0 &&
            scalar_text(item)[0] >= '0' && scalar_text(item)[0] <= '9') {
            uint64_t code;
            status = yaml_integer(builder->reader, item, item_path, 1, 127, expected, &code);
            if (status != 0)
                return status;
            function = (uint8_t)code;
        } else {
            if (item->type != YAML_SCALAR_NODE || yaml_is_null(item))
                return yaml_error(builder->reader, item, "%s: expected %s", item_path, expected);
            if (mb_policy_function_lookup(scalar_text(item), &function, &sub) != 0)
                return yaml_error(builder->reader, item,
                                  "%s: unknown function \"%.60s\"; expected %s", item_path,
                                  scalar_text(item), expected);
        }
        if (function == MB_FC_DIAGNOSTICS && sub < 0)
            whole_diagnostics = 1;
        else if (function == MB_FC_DIAGNOSTICS)
            rule->diagnostics |= 1u << sub;
        else if (function == MB_FC_ENCAPSULATED_INTERFACE && sub < 0)
            whole_encapsulated = 1;
        else if (function == MB_FC_ENCAPSULATED_INTERFACE)
            rule->encapsulated |=
                sub == MB_MEI_DEVICE_ID ? MB_POLICY_MEI_DEVICE_ID : MB_POLICY_MEI_CANOPEN;
        if (memchr(functions, function, rule->function_count) == NULL)
            functions[rule->function_count++] = function;
    }
    /* Naming the whole function code wins over naming some of its sub-functions. */
    if (whole_diagnostics)
        rule->diagnostics = 0;
    if (whole_encapsulated)
        rule->encapsulated = 0;
    rule->functions = functions;
    return 0;
}

static int parse_access(struct builder *builder, const yaml_node_t *node, const char *path,
                        struct mb_policy_rule *rule) {
    char item_path[128];
    size_t items;
    int status = items_of(builder, node, path, &items);
    for (size_t i = 0; status == 0 && i < items; i++) {
        const yaml_node_t *item = item_at(builder, node, i, path, item_path, sizeof item_path);
        size_t choice;
        status = yaml_choice(builder->reader, item, item_path, accesses, &choice);
        if (status == 0)
            rule->access |= choice == 0 ? MB_POLICY_READ : MB_POLICY_WRITE;
    }
    return status;
}

/* files: file numbers (every record), or { numbers: ..., records: ... }. */
static int parse_files(struct builder *builder, const yaml_node_t *node, const char *path,
                       struct mb_policy_rule *rule) {
    char key_path[128];
    struct mb_policy_grant *grant = &rule->tables[MB_POLICY_FILES];
    if (node->type != YAML_MAPPING_NODE)
        return parse_ranges(builder, node, path, 65535,
                            "file numbers: a number, a range such as 1-4, or any, or "
                            "{ numbers: ..., records: ... }",
                            &grant->ranges, &grant->range_count);
    int status = yaml_check_mapping(builder->reader, node, path, file_keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(builder->reader, node, i, &key, &value);
        snprintf(key_path, sizeof key_path, "%.96s.%.24s", path, key);
        if (strcmp(key, "numbers") == 0)
            status = parse_ranges(builder, value, key_path, 65535,
                                  "a file number, a range such as 1-4, or any", &grant->ranges,
                                  &grant->range_count);
        else
            status = parse_ranges(builder, value, key_path, 9999,
                                  "a record number 0..9999, a range such as 0-999, or any",
                                  &rule->records, &rule->record_count);
    }
    return status;
}

static int parse_table(struct builder *builder, const yaml_node_t *node, const char *path,
                       size_t table, struct mb_policy_rule *rule) {
    struct mb_policy_grant *grant = &rule->tables[table];
    grant->granted = 1;
    if (table == MB_POLICY_FILES)
        return parse_files(builder, node, path, rule);
    if (table == MB_POLICY_DEVICE) {
        if (!is_plain_word(node, "any"))
            return yaml_error(builder->reader, node,
                              "%s: the device has no addresses; write device: any, or list "
                              "it in tables: [..., device]",
                              path);
        return 0;
    }
    return parse_ranges(builder, node, path, 65535, addresses_expected, &grant->ranges,
                        &grant->range_count);
}

/* tables: { table: ranges, ... } or [table, ...] (every address of each). */
static int parse_tables(struct builder *builder, const yaml_node_t *node, const char *path,
                        struct mb_policy_rule *rule) {
    char item_path[128];
    int status = refuse_null(builder->reader, node, path);
    if (status != 0)
        return status;
    if (node->type == YAML_SEQUENCE_NODE) {
        status = yaml_check_sequence(builder->reader, node, path, 1, MB_POLICY_TABLES);
        for (size_t i = 0; status == 0 && i < yaml_sequence_size(node); i++) {
            const yaml_node_t *item = yaml_sequence_item(builder->reader, node, i);
            size_t table;
            snprintf(item_path, sizeof item_path, "%.96s[%zu]", path, i);
            status = yaml_choice(builder->reader, item, item_path, table_names, &table);
            if (status == 0)
                rule->tables[table].granted = 1;
        }
        return status;
    }
    if (node->type != YAML_MAPPING_NODE)
        return yaml_error(builder->reader, node,
                          "%s: expected a mapping of tables to addresses, such as "
                          "{ holding_registers: 0-99 }, or a list of tables",
                          path);
    status = yaml_check_mapping(builder->reader, node, path, table_names);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        size_t table = 0;
        yaml_mapping_pair(builder->reader, node, i, &key, &value);
        while (strcmp(table_names[table], key) != 0)
            table++;
        snprintf(item_path, sizeof item_path, "%.96s.%.24s", path, key);
        status = refuse_null(builder->reader, value, item_path);
        if (status == 0)
            status = parse_table(builder, value, item_path, table, rule);
    }
    return status;
}

static int parse_values(struct builder *builder, const yaml_node_t *node, const char *path,
                        struct mb_policy_rule *rule) {
    struct mb_policy_range range = {0, 0};
    int status = refuse_null(builder->reader, node, path);
    if (status == 0)
        status =
            parse_range(builder, node, path, 65535,
                        "a value 0..65535 or a range such as 0-500 (coils: 0 off, 1 on)", &range);
    if (status != 0)
        return status;
    rule->value_limit = 1;
    rule->value_min = range.first;
    rule->value_max = range.last;
    return 0;
}

/* ---- a rule ---- */

/* Where the keys of one rule were, for messages about how they fit together. */
struct rule_nodes {
    const yaml_node_t *name;
    const yaml_node_t *exception;
    const yaml_node_t *preset;
    const yaml_node_t *values;
    const yaml_node_t *units;
    const yaml_node_t *devices;
    const yaml_node_t *mode;
};

static int name_character(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

static int parse_name(struct builder *builder, const yaml_node_t *node, const char *path,
                      struct mb_policy_rule *rule) {
    const char *text;
    size_t length;
    int status = yaml_string(builder->reader, node, path, MB_POLICY_MAX_NAME, &text, &length);
    if (status != 0)
        return status;
    for (size_t i = 0; i < length; i++)
        if (!name_character(text[i]))
            return yaml_error(builder->reader, node,
                              "%s: \"%s\" is not a rule name: use letters, digits, '-', '_' "
                              "and '.'",
                              path, text);
    if (length == 0)
        return yaml_error(builder->reader, node, "%s: the name is empty", path);
    if (strcmp(text, "default") == 0)
        return yaml_error(builder->reader, node,
                          "%s: the name default is reserved for requests no rule matches", path);
    rule->name = text;
    return 0;
}

/* ---- devices and unit aliases (the gateway) ---- */

/* The ranges of the unit ids set in `bitmap` (bit u of byte u / 8), allocated in the builder. */
static int ranges_of_bitmap(struct builder *builder, const uint8_t *bitmap,
                            const struct mb_policy_range **ranges, size_t *count) {
    struct mb_policy_range *list = allocate(builder, 128, sizeof *list);
    if (list == NULL)
        return out_of_memory(builder);
    size_t used = 0;
    for (unsigned unit = 0; unit < 256; unit++) {
        if (!(bitmap[unit / 8] >> (unit % 8) & 1u))
            continue;
        if (used > 0 && list[used - 1].last + 1u == unit)
            list[used - 1].last = (uint16_t)unit;
        else
            list[used++] = (struct mb_policy_range){(uint16_t)unit, (uint16_t)unit};
    }
    *ranges = list;
    *count = used;
    return 0;
}

static void set_bit(uint8_t *bitmap, unsigned unit) {
    bitmap[unit / 8] |= (uint8_t)(1u << (unit % 8));
}

static int has_bit(const uint8_t *bitmap, unsigned unit) {
    return bitmap[unit / 8] >> (unit % 8) & 1u;
}

/*
 * devices: a backend name ("plc1": every device unit behind it) or a name and a device unit
 * ("plc1:3"), or a list of them. The rule then covers the front units routed there: its units
 * are those (a rule gives units or devices, not both).
 */
static int parse_devices(struct builder *builder, const yaml_node_t *node, const char *path,
                         struct mb_policy_rule *rule) {
    const struct yaml_reader *reader = builder->reader;
    const struct policy_devices *devices = builder->devices;
    char item_path[128];
    size_t items;
    if (devices == NULL)
        return yaml_error(reader, node,
                          "%s: devices name the backends of mbsec gateway; mbsec serve has "
                          "none (use units)",
                          path);
    int status = items_of(builder, node, path, &items);
    if (status != 0)
        return status;
    uint8_t bitmap[32] = {0};
    for (size_t i = 0; i < items; i++) {
        const yaml_node_t *item = item_at(builder, node, i, path, item_path, sizeof item_path);
        if (item->type != YAML_SCALAR_NODE || yaml_is_null(item))
            return yaml_error(reader, item,
                              "%s: expected a backend name, or name:unit for one device unit",
                              item_path);
        const char *text = scalar_text(item);
        const char *colon = strrchr(text, ':');
        size_t name_length = colon != NULL ? (size_t)(colon - text) : strlen(text);
        uint64_t unit = 0;
        if (colon != NULL &&
            (integer_parse(colon + 1, strlen(colon + 1), &unit) != 0 || unit > 255))
            return yaml_error(reader, item, "%s: %s: the device unit after ':' is 0..255",
                              item_path, text);
        size_t backend = 0;
        while (backend < devices->backend_count &&
               (strlen(devices->backends[backend].name) != name_length ||
                strncmp(devices->backends[backend].name, text, name_length) != 0))
            backend++;
        if (backend == devices->backend_count)
            return yaml_error(reader, item, "%s: %.*s is not the name of a backend", item_path,
                              (int)name_length, text);
        int found = 0;
        for (size_t r = 0; r < devices->route_count; r++) {
            const struct mb_gateway_route *route = &devices->routes[r];
            if (route->backend == backend && (colon == NULL || route->device_unit == unit)) {
                set_bit(bitmap, route->front_unit);
                found = 1;
            }
        }
        if (!found)
            return yaml_error(reader, item,
                              "%s: no front unit is routed to %s (see backends[%zu].units)",
                              item_path, text, backend);
    }
    return ranges_of_bitmap(builder, bitmap, &rule->units, &rule->unit_count);
}

/* The backend and device unit a front unit reaches, as one number; -1 without a route. */
static long device_of(const struct policy_devices *devices, unsigned front) {
    for (size_t r = 0; r < devices->route_count; r++)
        if (devices->routes[r].front_unit == front)
            return (long)devices->routes[r].backend * 256 + devices->routes[r].device_unit;
    return -1;
}

/* Appends a line to the notes (owned, grown as needed). */
static int add_note(struct builder *builder, char **notes, const char *line) {
    size_t used = *notes != NULL ? strlen(*notes) : 0;
    char *grown = realloc(*notes, used + strlen(line) + 2);
    if (grown == NULL)
        return out_of_memory(builder);
    snprintf(grown + used, strlen(line) + 2, "%s\n", line);
    *notes = grown;
    return 0;
}

/*
 * A rule on some front units of a device that others also reach: with policy_units: device the
 * rule covers them all (so a guard on unit 1 cannot be walked around through unit 2); with
 * front it does not, and the note says which are left out.
 */
static int alias_units(struct builder *builder, size_t index, struct mb_policy_rule *rule,
                       char **notes) {
    const struct policy_devices *devices = builder->devices;
    if (devices == NULL || rule->unit_count == 0)
        return 0;
    uint8_t named[32] = {0}, covered[32] = {0};
    for (size_t i = 0; i < rule->unit_count; i++)
        for (unsigned unit = rule->units[i].first; unit <= rule->units[i].last && unit < 256;
             unit++)
            set_bit(named, unit);
    memcpy(covered, named, sizeof covered);
    char added[600] = "";
    size_t added_used = 0;
    for (unsigned front = 0; front < 256; front++) {
        long device = has_bit(named, front) ? device_of(devices, front) : -1;
        if (device < 0)
            continue;
        for (unsigned other = 0; other < 256; other++) {
            if (has_bit(covered, other) || device_of(devices, other) != device)
                continue;
            set_bit(covered, other);
            if (added_used < sizeof added - 64)
                added_used += (size_t)snprintf(
                    added + added_used, sizeof added - added_used,
                    "%s%u (as %u: backend %s unit %u)", added_used ? ", " : "", other, front,
                    devices->backends[device / 256].name, (unsigned)(device % 256));
        }
    }
    if (added_used == 0)
        return 0;
    char line[800];
    if (devices->front_units)
        snprintf(line, sizeof line,
                 "policy[%zu] (%s): does not name front unit%s %s, which reach%s the same device: "
                 "requests through %s get around this rule (policy_units: front)",
                 index, rule->name, strchr(added, ',') ? "s" : "", added,
                 strchr(added, ',') ? "" : "es", strchr(added, ',') ? "them" : "it");
    else
        snprintf(line, sizeof line,
                 "policy[%zu] (%s): also covers front unit%s %s, routed to the same device "
                 "(policy_units: device)",
                 index, rule->name, strchr(added, ',') ? "s" : "", added);
    int status = add_note(builder, notes, line);
    if (status == 0 && !devices->front_units)
        status = ranges_of_bitmap(builder, covered, &rule->units, &rule->unit_count);
    return status;
}

static int parse_rule_key(struct builder *builder, const char *key, const yaml_node_t *value,
                          const char *path, struct mb_policy_rule *rule, struct rule_nodes *nodes) {
    const struct yaml_reader *reader = builder->reader;
    size_t choice;
    int status;
    if (strcmp(key, "name") == 0) {
        nodes->name = value;
        return parse_name(builder, value, path, rule);
    }
    if (strcmp(key, "action") == 0) {
        status = yaml_choice(reader, value, path, actions, &choice);
        if (status == 0)
            rule->action = (enum mb_policy_action)(MB_POLICY_ALLOW + (int)choice);
        return status;
    }
    if (strcmp(key, "exception") == 0) {
        uint64_t code;
        nodes->exception = value;
        status = yaml_integer(reader, value, path, 1, 255, "an exception code 1..255 (0x01..0xFF)",
                              &code);
        if (status == 0)
            rule->exception = (uint8_t)code;
        return status;
    }
    if (strcmp(key, "roles") == 0)
        return parse_roles(builder, value, path, rule);
    if (strcmp(key, "sources") == 0)
        return parse_sources(builder, value, path, rule);
    if (strcmp(key, "tls") == 0) {
        int tls;
        status = yaml_bool(reader, value, path, &tls);
        if (status == 0)
            rule->transport = tls ? MB_POLICY_TLS_ONLY : MB_POLICY_PLAIN_ONLY;
        return status;
    }
    if (strcmp(key, "units") == 0) {
        nodes->units = value;
        return parse_ranges(builder, value, path, 255, units_expected, &rule->units,
                            &rule->unit_count);
    }
    if (strcmp(key, "devices") == 0) {
        nodes->devices = value;
        return parse_devices(builder, value, path, rule);
    }
    if (strcmp(key, "preset") == 0) {
        nodes->preset = value;
        status = yaml_choice(reader, value, path, presets, &choice);
        if (status == 0)
            rule->preset = (enum mb_policy_preset)(MB_POLICY_READ_ONLY + (int)choice);
        return status;
    }
    if (strcmp(key, "functions") == 0)
        return parse_functions(builder, value, path, rule);
    if (strcmp(key, "access") == 0)
        return parse_access(builder, value, path, rule);
    if (strcmp(key, "tables") == 0)
        return parse_tables(builder, value, path, rule);
    if (strcmp(key, "mode") == 0) {
        nodes->mode = value;
        return config_policy_mode(reader, value, path, &rule->monitor);
    }
    nodes->values = value;
    return parse_values(builder, value, path, rule);
}

/* How the keys of a rule fit together, said at the key that does not fit. */
static int check_rule(const struct builder *builder, const yaml_node_t *node, const char *path,
                      const struct mb_policy_rule *rule, const struct rule_nodes *nodes) {
    const struct yaml_reader *reader = builder->reader;
    if (rule->name == NULL)
        return yaml_error(reader, node,
                          "%s: name is missing (every rule has one, for the audit trail)", path);
    if (rule->action == 0)
        return yaml_error(reader, node, "%s: action is missing (allow, deny, drop or close)", path);
    if (rule->role_count == 0 && rule->role_flags == 0 && rule->source_count == 0)
        return yaml_error(reader, node,
                          "%s: the rule names no one: give roles (role names, any, none) or "
                          "sources (addresses or networks)",
                          path);
    if (nodes->preset != NULL && (rule->function_count > 0 || rule->access != 0))
        return yaml_error(reader, nodes->preset,
                          "%s.preset: a preset sets functions and access itself; give "
                          "either the preset or functions and access",
                          path);
    if (nodes->exception != NULL && rule->action != MB_POLICY_DENY)
        return yaml_error(reader, nodes->exception,
                          "%s.exception: an exception code goes only with action: deny", path);
    if (nodes->values != NULL && rule->action != MB_POLICY_ALLOW)
        return yaml_error(reader, nodes->values,
                          "%s.values: values limit what a rule allows; they go only with "
                          "action: allow",
                          path);
    if (nodes->mode != NULL && rule->action == MB_POLICY_ALLOW)
        return yaml_error(reader, nodes->mode,
                          "%s.mode: monitor and enforce are for rules that refuse (deny, drop, "
                          "close); a rule that allows allows in both",
                          path);
    if (nodes->units != NULL && nodes->devices != NULL)
        return yaml_error(reader, nodes->devices,
                          "%s.devices: give units (front unit ids) or devices (backends), "
                          "not both",
                          path);
    if (nodes->values != NULL &&
        (rule->preset == MB_POLICY_READ_ONLY || rule->access == MB_POLICY_READ))
        return yaml_error(reader, nodes->values,
                          "%s.values: values limit writes, but the rule grants only reads", path);
    return 0;
}

static int parse_rule(struct builder *builder, const yaml_node_t *node, const char *path,
                      struct mb_policy_rule *rule, struct rule_nodes *nodes) {
    const struct yaml_reader *reader = builder->reader;
    char key_path[128];
    if (node->type != YAML_MAPPING_NODE)
        return yaml_error(reader, node,
                          "%s: expected a rule: a mapping with name, action, who (roles, "
                          "sources) and what (preset, functions, tables...)",
                          path);
    int status = yaml_check_mapping(reader, node, path, rule_keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, node, i, &key, &value);
        snprintf(key_path, sizeof key_path, "%.96s.%.24s", path, key);
        status = parse_rule_key(builder, key, value, key_path, rule, nodes);
    }
    if (status == 0)
        status = check_rule(builder, node, path, rule, nodes);
    if (status != 0)
        return status;
    /* policy_mode: monitor is every refusing rule's mode unless the rule gives its own. */
    if (nodes->mode == NULL && rule->action != MB_POLICY_ALLOW)
        rule->monitor = builder->monitor;
    /* Whatever else the library refuses, said at the rule. */
    struct mb_policy *probe = NULL;
    char problem[256];
    status = mb_policy_create(rule, 1, &probe, problem, sizeof problem);
    mb_policy_destroy(probe);
    if (status == MB_ENOMEM)
        return out_of_memory(builder);
    if (status != 0) {
        const char *colon = strstr(problem, ": ");
        return yaml_error(reader, node, "%s: %s", path, colon != NULL ? colon + 2 : problem);
    }
    return 0;
}

int config_policy_mode(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                       int *monitor) {
    static const char *const modes[] = {"enforce", "monitor", NULL};
    size_t choice;
    int status = yaml_choice(reader, node, path, modes, &choice);
    if (status == 0)
        *monitor = choice == 1;
    return status;
}

int config_policy(const struct yaml_reader *reader, const yaml_node_t *node,
                  const struct policy_devices *devices, int monitor, struct mb_policy **policy,
                  char **notes) {
    struct builder builder = {.reader = reader, .devices = devices, .monitor = monitor};
    *notes = NULL;
    char path[32], problem[256];
    int status = yaml_check_sequence(reader, node, "policy", 0, MB_POLICY_MAX_RULES);
    if (status != 0)
        return status;
    size_t count = yaml_sequence_size(node);
    struct mb_policy_rule *rules = allocate(&builder, count, sizeof *rules);
    struct rule_nodes *nodes = allocate(&builder, count, sizeof *nodes);
    if (rules == NULL || nodes == NULL) {
        builder_free(&builder);
        return out_of_memory(&builder);
    }
    for (size_t i = 0; status == 0 && i < count; i++) {
        snprintf(path, sizeof path, "policy[%zu]", i);
        status =
            parse_rule(&builder, yaml_sequence_item(reader, node, i), path, &rules[i], &nodes[i]);
        for (size_t j = 0; status == 0 && j < i; j++)
            if (strcmp(rules[j].name, rules[i].name) == 0)
                status = yaml_error(reader, nodes[i].name,
                                    "%s.name: %s is already the name of policy[%zu] on line "
                                    "%zu",
                                    path, rules[i].name, j, nodes[j].name->start_mark.line + 1);
        if (status == 0)
            status = alias_units(&builder, i, &rules[i], notes);
    }
    if (status == 0) {
        struct mb_policy_settings settings = {.monitor_default = monitor};
        status = mb_policy_create_with(rules, count, &settings, policy, problem, sizeof problem);
        if (status == MB_ENOMEM)
            status = out_of_memory(&builder);
        else if (status != 0)
            status = yaml_error(reader, node, "policy: %s", problem);
    }
    builder_free(&builder);
    if (status != 0) {
        free(*notes);
        *notes = NULL;
    }
    return status;
}
