/* SPDX-License-Identifier: MIT */
/* Building a policy: checking rules, compiling them into one allocation, copying, references,
 * names. */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbsec/pdu.h"
#include "mbsec/policy.h"
#include "policy/compiled.h"

/* The public function codes the presets cover. */
static const uint8_t public_functions[] = {1,  2,  3,  4,  5,  6,  7,  8,  11, 12,
                                           15, 16, 17, 20, 21, 22, 23, 24, 43};

static const struct {
    const char *name;
    uint8_t function;
    int sub_function;
} function_names[] = {
    {"read_coils", 1, -1},
    {"read_discrete_inputs", 2, -1},
    {"read_holding_registers", 3, -1},
    {"read_input_registers", 4, -1},
    {"write_single_coil", 5, -1},
    {"write_single_register", 6, -1},
    {"read_exception_status", 7, -1},
    {"diagnostics", 8, -1},
    {"return_query_data", 8, 0x00},
    {"restart_communications", 8, 0x01},
    {"return_diagnostic_register", 8, 0x02},
    {"change_ascii_delimiter", 8, 0x03},
    {"force_listen_only", 8, 0x04},
    {"clear_counters", 8, 0x0A},
    {"return_bus_message_count", 8, 0x0B},
    {"return_bus_communication_error_count", 8, 0x0C},
    {"return_bus_exception_error_count", 8, 0x0D},
    {"return_server_message_count", 8, 0x0E},
    {"return_server_no_response_count", 8, 0x0F},
    {"return_server_nak_count", 8, 0x10},
    {"return_server_busy_count", 8, 0x11},
    {"return_bus_character_overrun_count", 8, 0x12},
    {"clear_overrun_counter", 8, 0x14},
    {"get_comm_event_counter", 11, -1},
    {"get_comm_event_log", 12, -1},
    {"write_multiple_coils", 15, -1},
    {"write_multiple_registers", 16, -1},
    {"report_server_id", 17, -1},
    {"read_file_record", 20, -1},
    {"write_file_record", 21, -1},
    {"mask_write_register", 22, -1},
    {"read_write_multiple_registers", 23, -1},
    {"read_fifo_queue", 24, -1},
    {"encapsulated_interface", 43, -1},
    {"read_device_identification", 43, MB_MEI_DEVICE_ID},
    {"canopen_general_reference", 43, MB_MEI_CANOPEN},
};

int mb_policy_function_lookup(const char *name, uint8_t *function, int *sub_function) {
    if (name == NULL || function == NULL || sub_function == NULL)
        return MB_EINVAL;
    for (size_t i = 0; i < sizeof function_names / sizeof function_names[0]; i++) {
        if (strcmp(name, function_names[i].name) == 0) {
            *function = function_names[i].function;
            *sub_function = function_names[i].sub_function;
            return 0;
        }
    }
    return MB_EINVAL;
}

const char *mb_policy_function_name(uint8_t function, int sub_function) {
    for (size_t i = 0; i < sizeof function_names / sizeof function_names[0]; i++)
        if (function_names[i].function == function &&
            function_names[i].sub_function == sub_function)
            return function_names[i].name;
    return NULL;
}

const char *mb_policy_action_name(enum mb_policy_action action) {
    switch (action) {
    case MB_POLICY_ALLOW:
        return "allow";
    case MB_POLICY_DENY:
        return "deny";
    case MB_POLICY_DROP:
        return "drop";
    case MB_POLICY_CLOSE:
        return "close";
    }
    return "unknown";
}

/* ---- sources ---- */

static int address_error(char *error, size_t capacity, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

static int address_error(char *error, size_t capacity, const char *format, ...) {
    if (error != NULL && capacity > 0) {
        va_list arguments;
        va_start(arguments, format);
        vsnprintf(error, capacity, format, arguments);
        va_end(arguments);
    }
    return MB_EADDRESS;
}

static const uint8_t ipv4_mapped_prefix[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};

int mb_policy_source_parse(const char *text, struct mb_policy_source *source, char *error,
                           size_t error_capacity) {
    char host[64];
    struct mb_policy_source parsed;
    if (error != NULL && error_capacity > 0)
        error[0] = '\0';
    if (text == NULL || source == NULL)
        return MB_EINVAL;
    const char *slash = strchr(text, '/');
    size_t host_length = slash != NULL ? (size_t)(slash - text) : strlen(text);
    memset(&parsed, 0, sizeof parsed);
    if (host_length == 0 || host_length >= sizeof host)
        goto not_an_address;
    memcpy(host, text, host_length);
    host[host_length] = '\0';
    if (inet_pton(AF_INET, host, parsed.address) == 1) {
        parsed.family = AF_INET;
        parsed.prefix = 32;
    } else if (inet_pton(AF_INET6, host, parsed.address) == 1) {
        parsed.family = AF_INET6;
        parsed.prefix = 128;
    } else {
        goto not_an_address;
    }
    if (slash != NULL) {
        const char *digits = slash + 1;
        size_t length = strlen(digits);
        unsigned value = 0;
        int valid = length >= 1 && length <= 3 && !(length > 1 && digits[0] == '0');
        for (size_t i = 0; valid && i < length; i++) {
            if (digits[i] < '0' || digits[i] > '9')
                valid = 0;
            else
                value = value * 10 + (unsigned)(digits[i] - '0');
        }
        if (!valid || value > parsed.prefix)
            return address_error(error, error_capacity,
                                 "\"%s\": the prefix after / must be a number 0..%u", text,
                                 (unsigned)parsed.prefix);
        parsed.prefix = (uint8_t)value;
    }
    /* An IPv4 client on a dual-stack socket shows as ::ffff:a.b.c.d; deciding compares it as
     * IPv4, so a mapped network must become the IPv4 network it names. */
    if (parsed.family == AF_INET6 && parsed.prefix >= 96 &&
        memcmp(parsed.address, ipv4_mapped_prefix, sizeof ipv4_mapped_prefix) == 0) {
        memmove(parsed.address, parsed.address + 12, 4);
        memset(parsed.address + 4, 0, 12);
        parsed.family = AF_INET;
        parsed.prefix = (uint8_t)(parsed.prefix - 96);
    }
    /* Host bits past the prefix are almost always a typo for another network: refuse them
     * rather than guess which network was meant. */
    struct mb_policy_source network = parsed;
    size_t bytes = parsed.family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < bytes; i++) {
        unsigned bit_start = (unsigned)i * 8;
        if (bit_start >= parsed.prefix)
            network.address[i] = 0;
        else if (bit_start + 8 > parsed.prefix)
            network.address[i] &= (uint8_t)(0xFFu << (8 - (parsed.prefix - bit_start)));
    }
    if (memcmp(network.address, parsed.address, sizeof parsed.address) != 0) {
        char shown[64] = "?";
        inet_ntop(network.family, network.address, shown, sizeof shown);
        return address_error(error, error_capacity,
                             "\"%s\" has bits set past the /%u prefix; did you mean %s/%u?", text,
                             (unsigned)parsed.prefix, shown, (unsigned)parsed.prefix);
    }
    *source = parsed;
    return 0;

not_an_address:
    return address_error(error, error_capacity,
                         "\"%s\" is not an IP address or network such as 192.0.2.0/24, "
                         "2001:db8::/32 or ::1",
                         text);
}

/* ---- checking rules ---- */

static int rule_error(char *error, size_t capacity, size_t index, const struct mb_policy_rule *rule,
                      int name_valid, const char *format, ...)
    __attribute__((format(printf, 6, 7)));

static int rule_error(char *error, size_t capacity, size_t index, const struct mb_policy_rule *rule,
                      int name_valid, const char *format, ...) {
    if (error == NULL || capacity == 0)
        return MB_EINVAL;
    int used = name_valid ? snprintf(error, capacity, "rule %zu (%s): ", index, rule->name)
                          : snprintf(error, capacity, "rule %zu: ", index);
    if (used >= 0 && (size_t)used < capacity) {
        va_list arguments;
        va_start(arguments, format);
        vsnprintf(error + used, capacity - (size_t)used, format, arguments);
        va_end(arguments);
    }
    return MB_EINVAL;
}

static int name_character(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

static int name_is_valid(const char *name) {
    if (name == NULL || name[0] == '\0')
        return 0;
    size_t length = 0;
    for (; name[length] != '\0'; length++)
        if (length >= MB_POLICY_MAX_NAME || !name_character(name[length]))
            return 0;
    return 1;
}

static int list_ok(const void *items, size_t count) {
    return count <= MB_POLICY_MAX_LIST && (count == 0 || items != NULL);
}

static int ranges_problem(const struct mb_policy_range *ranges, size_t count, unsigned maximum,
                          char *problem, size_t capacity) {
    for (size_t i = 0; i < count; i++) {
        if (ranges[i].first > ranges[i].last) {
            snprintf(problem, capacity, "%u-%u ends before it starts", (unsigned)ranges[i].first,
                     (unsigned)ranges[i].last);
            return 1;
        }
        if (ranges[i].last > maximum) {
            snprintf(problem, capacity, "%u is over %u", (unsigned)ranges[i].last, maximum);
            return 1;
        }
    }
    return 0;
}

static const char *const table_keys[MB_POLICY_TABLES] = {
    "coils", "discrete_inputs", "holding_registers", "input_registers", "files", "fifos", "device"};

static int function_listed(const struct mb_policy_rule *rule, uint8_t function) {
    for (size_t i = 0; i < rule->function_count; i++)
        if (rule->functions[i] == function)
            return 1;
    return 0;
}

/* The access the rule grants once its preset is applied. */
static unsigned granted_access(const struct mb_policy_rule *rule) {
    if (rule->preset == MB_POLICY_READ_ONLY)
        return MB_POLICY_READ;
    if (rule->preset == MB_POLICY_READ_WRITE || rule->access == 0)
        return MB_POLICY_READ | MB_POLICY_WRITE;
    return rule->access;
}

static int check_rule(const struct mb_policy_rule *rules, size_t index, char *error,
                      size_t capacity) {
    const struct mb_policy_rule *rule = &rules[index];
    char problem[96];
    if (!name_is_valid(rule->name))
        return rule_error(error, capacity, index, rule, 0,
                          rule->name == NULL || rule->name[0] == '\0'
                              ? "the rule has no name"
                              : "the name must be 1..64 letters, digits, '-', '_' or '.'");
    if (strcmp(rule->name, "default") == 0)
        return rule_error(error, capacity, index, rule, 1,
                          "the name \"default\" is reserved for requests no rule matches");
    for (size_t j = 0; j < index; j++)
        if (strcmp(rules[j].name, rule->name) == 0)
            return rule_error(error, capacity, index, rule, 1, "rule %zu has the same name", j);
    if ((unsigned)rule->action < MB_POLICY_ALLOW || (unsigned)rule->action > MB_POLICY_CLOSE)
        return rule_error(error, capacity, index, rule, 1,
                          "the action must be allow, deny, drop or close");
    if (rule->exception != 0 && rule->action != MB_POLICY_DENY)
        return rule_error(error, capacity, index, rule, 1,
                          "an exception code goes only with the action deny");
    if (rule->monitor != 0 && rule->action == MB_POLICY_ALLOW)
        return rule_error(error, capacity, index, rule, 1,
                          "monitor mode goes only with a rule that refuses (deny, drop or "
                          "close): a rule that allows allows in both modes");
    if (rule->role_count == 0 && rule->role_flags == 0 && rule->source_count == 0)
        return rule_error(error, capacity, index, rule, 1,
                          "the rule names no one: give roles or sources");
    if ((rule->role_flags & ~(MB_POLICY_ROLE_NONE | MB_POLICY_ROLE_ANY)) != 0)
        return rule_error(error, capacity, index, rule, 1, "unknown role flags");
    if (!list_ok(rule->roles, rule->role_count) || !list_ok(rule->sources, rule->source_count) ||
        !list_ok(rule->units, rule->unit_count) ||
        !list_ok(rule->functions, rule->function_count) ||
        !list_ok(rule->records, rule->record_count))
        return rule_error(error, capacity, index, rule, 1,
                          "a list is missing or holds more than %d items", MB_POLICY_MAX_LIST);
    for (size_t i = 0; i < rule->role_count; i++) {
        size_t length = rule->roles[i] != NULL ? strlen(rule->roles[i]) : 0;
        if (length == 0 || length > MB_POLICY_MAX_ROLE)
            return rule_error(error, capacity, index, rule, 1, "role %zu must be 1..%d bytes", i,
                              MB_POLICY_MAX_ROLE);
    }
    for (size_t i = 0; i < rule->source_count; i++) {
        const struct mb_policy_source *source = &rule->sources[i];
        if ((source->family != AF_INET || source->prefix > 32) &&
            (source->family != AF_INET6 || source->prefix > 128))
            return rule_error(error, capacity, index, rule, 1,
                              "source %zu is neither an IPv4 network (prefix 0..32) nor an IPv6 "
                              "one (0..128)",
                              i);
    }
    if ((unsigned)rule->transport > MB_POLICY_PLAIN_ONLY)
        return rule_error(error, capacity, index, rule, 1, "unknown transport condition");
    if (ranges_problem(rule->units, rule->unit_count, 255, problem, sizeof problem))
        return rule_error(error, capacity, index, rule, 1, "units: %s", problem);
    if ((unsigned)rule->preset > MB_POLICY_READ_WRITE)
        return rule_error(error, capacity, index, rule, 1, "unknown preset");
    if (rule->preset != MB_POLICY_PRESET_NONE &&
        (rule->function_count > 0 || rule->access != 0 || rule->diagnostics != 0 ||
         rule->encapsulated != 0))
        return rule_error(error, capacity, index, rule, 1,
                          "a preset sets functions and access itself; it cannot be combined with "
                          "them");
    for (size_t i = 0; i < rule->function_count; i++)
        if (rule->functions[i] == 0 || rule->functions[i] >= MB_EXCEPTION_BIT)
            return rule_error(error, capacity, index, rule, 1, "function code %u is outside 1..127",
                              (unsigned)rule->functions[i]);
    if ((rule->diagnostics & ~MB__DIAGNOSTICS_DEFINED) != 0)
        return rule_error(error, capacity, index, rule, 1,
                          "diagnostics names a sub-function the specification does not define");
    if (rule->diagnostics != 0 && rule->function_count > 0 && !function_listed(rule, 8))
        return rule_error(error, capacity, index, rule, 1,
                          "diagnostics sub-functions are given but FC 8 is not among the "
                          "functions");
    if ((rule->encapsulated & ~MB__MEI_ALL) != 0)
        return rule_error(error, capacity, index, rule, 1, "unknown encapsulated interface bits");
    if (rule->encapsulated != 0 && rule->function_count > 0 && !function_listed(rule, 43))
        return rule_error(error, capacity, index, rule, 1,
                          "encapsulated interface types are given but FC 43 is not among the "
                          "functions");
    if ((rule->access & ~(MB_POLICY_READ | MB_POLICY_WRITE)) != 0)
        return rule_error(error, capacity, index, rule, 1, "unknown access bits");
    for (int table = 0; table < MB_POLICY_TABLES; table++) {
        const struct mb_policy_grant *grant = &rule->tables[table];
        if (!grant->granted)
            continue;
        if (!list_ok(grant->ranges, grant->range_count))
            return rule_error(error, capacity, index, rule, 1,
                              "%s: the list is missing or holds more than %d ranges",
                              table_keys[table], MB_POLICY_MAX_LIST);
        if (table == MB_POLICY_DEVICE && grant->range_count > 0)
            return rule_error(error, capacity, index, rule, 1,
                              "device: the device has no addresses to give ranges of");
        if (ranges_problem(grant->ranges, grant->range_count, 65535, problem, sizeof problem))
            return rule_error(error, capacity, index, rule, 1, "%s: %s", table_keys[table],
                              problem);
    }
    if (rule->record_count > 0 && !rule->tables[MB_POLICY_FILES].granted)
        return rule_error(error, capacity, index, rule, 1,
                          "records are given but the rule does not grant files");
    if (ranges_problem(rule->records, rule->record_count, 65535, problem, sizeof problem))
        return rule_error(error, capacity, index, rule, 1, "records: %s", problem);
    if (rule->value_limit) {
        if (rule->action != MB_POLICY_ALLOW)
            return rule_error(error, capacity, index, rule, 1,
                              "values limit what a rule allows; they go only with the action "
                              "allow");
        if (rule->value_min > rule->value_max)
            return rule_error(error, capacity, index, rule, 1,
                              "values: %u-%u ends before it starts", (unsigned)rule->value_min,
                              (unsigned)rule->value_max);
        if (!(granted_access(rule) & MB_POLICY_WRITE))
            return rule_error(error, capacity, index, rule, 1,
                              "values limit writes, but the rule grants only reads");
    }
    return 0;
}

/* ---- compiling ---- */

static void set_bit(uint8_t *bitmap, unsigned index) {
    bitmap[index / 8] = (uint8_t)(bitmap[index / 8] | (1u << (index % 8)));
}

static size_t align_up(size_t value) {
    size_t alignment = sizeof(max_align_t) < 16 ? sizeof(max_align_t) : 16;
    return (value + alignment - 1) / alignment * alignment;
}

/* Copies ranges into the pool at *used, sorted and with overlapping or touching ranges merged
 * (a request spanning 0-99 and 100-199 is inside when both are listed); an empty list becomes
 * 0..65535. Returns the number of ranges written. */
static uint32_t put_ranges(struct mb_policy_range *pool, uint32_t *used,
                           const struct mb_policy_range *ranges, size_t count) {
    struct mb_policy_range *out = pool + *used;
    if (count == 0) {
        out[0].first = 0;
        out[0].last = 65535;
        (*used)++;
        return 1;
    }
    memcpy(out, ranges, count * sizeof *out);
    for (size_t i = 1; i < count; i++) {
        struct mb_policy_range item = out[i];
        size_t j = i;
        for (; j > 0 && out[j - 1].first > item.first; j--)
            out[j] = out[j - 1];
        out[j] = item;
    }
    size_t merged = 0;
    for (size_t i = 0; i < count; i++) {
        if (merged > 0 && (uint32_t)out[i].first <= (uint32_t)out[merged - 1].last + 1) {
            if (out[i].last > out[merged - 1].last)
                out[merged - 1].last = out[i].last;
        } else {
            out[merged++] = out[i];
        }
    }
    *used += (uint32_t)merged;
    return (uint32_t)merged;
}

struct pools {
    struct mb__policy_rule *rules;
    uint32_t *roles;
    struct mb_policy_source *sources;
    struct mb_policy_range *ranges;
    char *text;
    uint32_t role_used, source_used, range_used, text_used;
};

static uint32_t put_text(struct pools *pools, const char *text) {
    uint32_t offset = pools->text_used;
    size_t length = strlen(text) + 1;
    memcpy(pools->text + offset, text, length);
    pools->text_used += (uint32_t)length;
    return offset;
}

static void compile_functions(const struct mb_policy_rule *rule, struct mb__policy_rule *out) {
    if (rule->preset != MB_POLICY_PRESET_NONE) {
        for (size_t i = 0; i < sizeof public_functions; i++)
            set_bit(out->functions, public_functions[i]);
        out->encapsulated = MB_POLICY_MEI_DEVICE_ID;
        if (rule->preset == MB_POLICY_READ_ONLY) {
            out->access = MB_POLICY_READ;
            out->diagnostics = MB__DIAGNOSTICS_DEFINED;
        } else {
            out->access = MB_POLICY_READ | MB_POLICY_WRITE;
            out->diagnostics = MB__DIAGNOSTICS_DEFINED & ~((1u << MB_DIAG_RESTART_COMMUNICATIONS) |
                                                           (1u << MB_DIAG_FORCE_LISTEN_ONLY));
        }
        return;
    }
    if (rule->function_count == 0)
        memset(out->functions, 0xFF, sizeof out->functions);
    for (size_t i = 0; i < rule->function_count; i++)
        set_bit(out->functions, rule->functions[i]);
    out->access = (uint8_t)(rule->access != 0 ? rule->access : MB_POLICY_READ | MB_POLICY_WRITE);
    out->diagnostics = rule->diagnostics != 0 ? rule->diagnostics : MB__DIAGNOSTICS_DEFINED;
    out->encapsulated = (uint8_t)(rule->encapsulated != 0 ? rule->encapsulated : MB__MEI_ALL);
}

static void compile_rule(const struct mb_policy_rule *rule, struct mb__policy_rule *out,
                         struct pools *pools) {
    out->name = put_text(pools, rule->name);
    out->action = (uint8_t)rule->action;
    out->exception = rule->action == MB_POLICY_DENY
                         ? (rule->exception != 0 ? rule->exception : MB_EX_ILLEGAL_FUNCTION)
                         : 0;
    out->transport = (uint8_t)rule->transport;
    out->role_flags = (uint8_t)rule->role_flags;
    out->roles = pools->role_used;
    out->role_count = (uint32_t)rule->role_count;
    for (size_t i = 0; i < rule->role_count; i++)
        pools->roles[pools->role_used++] = put_text(pools, rule->roles[i]);
    out->sources = pools->source_used;
    out->source_count = (uint32_t)rule->source_count;
    for (size_t i = 0; i < rule->source_count; i++)
        pools->sources[pools->source_used++] = rule->sources[i];

    if (rule->unit_count == 0)
        memset(out->units, 0xFF, sizeof out->units);
    for (size_t i = 0; i < rule->unit_count; i++)
        for (unsigned unit = rule->units[i].first; unit <= rule->units[i].last; unit++)
            set_bit(out->units, unit);
    compile_functions(rule, out);

    for (int table = 0; table < MB_POLICY_TABLES; table++) {
        const struct mb_policy_grant *grant = &rule->tables[table];
        if (!grant->granted)
            continue;
        out->tables = (uint8_t)(out->tables | (1u << table));
        if (table == MB_POLICY_DEVICE)
            continue;
        out->ranges[table] = pools->range_used;
        out->range_count[table] =
            put_ranges(pools->ranges, &pools->range_used, grant->ranges, grant->range_count);
    }
    if (rule->tables[MB_POLICY_FILES].granted) {
        out->records = pools->range_used;
        out->record_count =
            put_ranges(pools->ranges, &pools->range_used, rule->records, rule->record_count);
    }
    out->monitor = (uint8_t)(rule->monitor != 0);
    out->value_limit = (uint8_t)(rule->value_limit != 0);
    out->value_min = rule->value_limit ? rule->value_min : 0;
    out->value_max = rule->value_limit ? rule->value_max : 65535;
}

int mb_policy_create(const struct mb_policy_rule *rules, size_t count, struct mb_policy **policy,
                     char *error, size_t error_capacity) {
    return mb_policy_create_with(rules, count, NULL, policy, error, error_capacity);
}

int mb_policy_create_with(const struct mb_policy_rule *rules, size_t count,
                          const struct mb_policy_settings *settings, struct mb_policy **policy,
                          char *error, size_t error_capacity) {
    if (error != NULL && error_capacity > 0)
        error[0] = '\0';
    if (policy == NULL || (rules == NULL && count > 0))
        return MB_EINVAL;
    *policy = NULL;
    if (count > MB_POLICY_MAX_RULES) {
        if (error != NULL && error_capacity > 0)
            snprintf(error, error_capacity, "%zu rules is more than the %d allowed", count,
                     MB_POLICY_MAX_RULES);
        return MB_EINVAL;
    }
    size_t roles = 0, sources = 0, ranges = 0, text = 0;
    for (size_t i = 0; i < count; i++) {
        const struct mb_policy_rule *rule = &rules[i];
        int status = check_rule(rules, i, error, error_capacity);
        if (status != 0)
            return status;
        roles += rule->role_count;
        sources += rule->source_count;
        text += strlen(rule->name) + 1;
        for (size_t k = 0; k < rule->role_count; k++)
            text += strlen(rule->roles[k]) + 1;
        for (int table = 0; table < MB_POLICY_TABLES; table++)
            if (rule->tables[table].granted && table != MB_POLICY_DEVICE)
                ranges += rule->tables[table].range_count + 1;
        ranges += rule->record_count + 1;
    }
    /* Bounded by the limits above: 1024 rules of 256-item lists stay far below 4 GiB. */
    size_t rules_offset = align_up(sizeof(struct mb_policy));
    size_t roles_offset = align_up(rules_offset + count * sizeof(struct mb__policy_rule));
    size_t sources_offset = align_up(roles_offset + roles * sizeof(uint32_t));
    size_t ranges_offset = align_up(sources_offset + sources * sizeof(struct mb_policy_source));
    size_t text_offset = align_up(ranges_offset + ranges * sizeof(struct mb_policy_range));
    size_t size = text_offset + text;
    struct mb_policy *compiled = calloc(1, size);
    if (compiled == NULL)
        return MB_ENOMEM;
    compiled->references = 1;
    compiled->size = size;
    compiled->rule_count = (uint32_t)count;
    compiled->monitor_default = settings != NULL && settings->monitor_default != 0;
    compiled->rules_offset = (uint32_t)rules_offset;
    compiled->roles_offset = (uint32_t)roles_offset;
    compiled->sources_offset = (uint32_t)sources_offset;
    compiled->ranges_offset = (uint32_t)ranges_offset;
    compiled->text_offset = (uint32_t)text_offset;
    char *base = (char *)compiled;
    struct pools pools = {
        .rules = (struct mb__policy_rule *)(void *)(base + rules_offset),
        .roles = (uint32_t *)(void *)(base + roles_offset),
        .sources = (struct mb_policy_source *)(void *)(base + sources_offset),
        .ranges = (struct mb_policy_range *)(void *)(base + ranges_offset),
        .text = base + text_offset,
    };
    for (size_t i = 0; i < count; i++)
        compile_rule(&rules[i], &pools.rules[i], &pools);
    *policy = compiled;
    return 0;
}

int mb_policy_copy(const struct mb_policy *policy, struct mb_policy **copy) {
    if (policy == NULL || copy == NULL)
        return MB_EINVAL;
    *copy = malloc(policy->size);
    if (*copy == NULL)
        return MB_ENOMEM;
    /* Other threads may be taking or dropping references to the original while it is copied:
     * its count is left alone, and the copy starts with a count of its own. */
    size_t skipped = offsetof(struct mb_policy, size);
    memcpy((char *)*copy + skipped, (const char *)policy + skipped, policy->size - skipped);
    (*copy)->references = 1;
    return 0;
}

struct mb_policy *mb_policy_ref(struct mb_policy *policy) {
    if (policy != NULL)
        __atomic_add_fetch(&policy->references, 1, __ATOMIC_RELAXED);
    return policy;
}

void mb_policy_destroy(struct mb_policy *policy) {
    /* Release and acquire: whatever a thread did with its reference happens before the free
     * by whichever thread lets go last. */
    if (policy == NULL || __atomic_sub_fetch(&policy->references, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    free(policy);
}

size_t mb_policy_rule_count(const struct mb_policy *policy) {
    return policy != NULL ? policy->rule_count : 0;
}

int mb_policy_rule_monitor(const struct mb_policy *policy, size_t index) {
    if (policy == NULL || index > policy->rule_count)
        return 0;
    if (index == policy->rule_count)
        return policy->monitor_default != 0;
    return mb__policy_rules(policy)[index].monitor;
}

const char *mb_policy_rule_name(const struct mb_policy *policy, size_t index) {
    if (policy == NULL || index >= policy->rule_count)
        return NULL;
    return mb__policy_text(policy, mb__policy_rules(policy)[index].name);
}
