/* SPDX-License-Identifier: MIT */
/*
 * The canonical form of a compiled policy (policy.h, mb_policy_canonical()): text written from
 * what the policy decides with, not from the file it came from, so that two files that differ
 * only in layout, comments, key order, the order of a rule's roles or sources, or how a list of
 * units is spelt ([1, 2, 3] or [1-3]) give the same text, and any change in what is decided
 * gives another.
 */
#include <arpa/inet.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbsec/error.h"
#include "policy/compiled.h"

struct writer {
    char *out;
    size_t capacity;
    size_t length; /* what the whole text takes, written or not */
};

static void put(struct writer *writer, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

static void put(struct writer *writer, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    size_t room = writer->length < writer->capacity ? writer->capacity - writer->length : 0;
    int count = vsnprintf(room > 0 ? writer->out + writer->length : NULL, room, format, arguments);
    va_end(arguments);
    if (count > 0)
        writer->length += (size_t)count;
}

static void put_bitmap(struct writer *writer, const char *label, const uint8_t bitmap[32]) {
    put(writer, " %s=", label);
    for (int i = 0; i < 32; i++)
        put(writer, "%02x", bitmap[i]);
}

static void put_ranges(struct writer *writer, const struct mb_policy_range *ranges, uint32_t first,
                       uint32_t count) {
    for (uint32_t i = 0; i < count; i++)
        put(writer, "%s%u-%u", i ? "," : "", ranges[first + i].first, ranges[first + i].last);
}

static int compare_text(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int compare_source(const void *a, const void *b) {
    const struct mb_policy_source *x = *(const struct mb_policy_source *const *)a;
    const struct mb_policy_source *y = *(const struct mb_policy_source *const *)b;
    if (x->family != y->family)
        return x->family < y->family ? -1 : 1;
    int order = memcmp(x->address, y->address, sizeof x->address);
    if (order != 0)
        return order;
    return (int)x->prefix - (int)y->prefix;
}

static const char *const table_names[MB_POLICY_TABLES] = {
    "coils", "discrete_inputs", "holding_registers", "input_registers", "files", "fifos", "device"};

static void put_rule(struct writer *writer, const struct mb_policy *policy,
                     const struct mb__policy_rule *rule) {
    put(writer, "rule %s\n", mb__policy_text(policy, rule->name));
    put(writer, " action=%s exception=%u transport=%u role_flags=%u\n",
        mb_policy_action_name((enum mb_policy_action)rule->action), rule->exception,
        rule->transport, rule->role_flags);
    /* Only when set: a policy without monitor mode keeps the text (and hash) it always had. */
    if (rule->monitor)
        put(writer, " monitor\n");

    /* Roles and sources in sorted order: their order in the file decides nothing. */
    const char *roles[MB_POLICY_MAX_LIST];
    uint32_t role_count =
        rule->role_count < MB_POLICY_MAX_LIST ? rule->role_count : MB_POLICY_MAX_LIST;
    for (uint32_t i = 0; i < role_count; i++)
        roles[i] = mb__policy_text(policy, mb__policy_roles(policy)[rule->roles + i]);
    qsort(roles, role_count, sizeof roles[0], compare_text);
    put(writer, " roles=%u", role_count);
    for (uint32_t i = 0; i < role_count; i++)
        put(writer, " %zu:%s", strlen(roles[i]), roles[i]); /* length-prefixed: any bytes */
    put(writer, "\n");

    const struct mb_policy_source *sources[MB_POLICY_MAX_LIST];
    uint32_t source_count =
        rule->source_count < MB_POLICY_MAX_LIST ? rule->source_count : MB_POLICY_MAX_LIST;
    for (uint32_t i = 0; i < source_count; i++)
        sources[i] = &mb__policy_sources(policy)[rule->sources + i];
    qsort(sources, source_count, sizeof sources[0], compare_source);
    put(writer, " sources=%u", source_count);
    for (uint32_t i = 0; i < source_count; i++) {
        size_t bytes = sources[i]->family == AF_INET ? 4 : 16;
        put(writer, " %s:", sources[i]->family == AF_INET ? "4" : "6");
        for (size_t b = 0; b < bytes; b++)
            put(writer, "%02x", sources[i]->address[b]);
        put(writer, "/%u", sources[i]->prefix);
    }
    put(writer, "\n");

    put_bitmap(writer, "units", rule->units);
    put(writer, "\n");
    put_bitmap(writer, "functions", rule->functions);
    put(writer, "\n diagnostics=%08x encapsulated=%u access=%u\n", (unsigned)rule->diagnostics,
        rule->encapsulated, rule->access);
    for (int table = 0; table < MB_POLICY_TABLES; table++) {
        if (!(rule->tables & (1u << table)))
            continue;
        put(writer, " table %s=", table_names[table]);
        put_ranges(writer, mb__policy_ranges(policy), rule->ranges[table],
                   rule->range_count[table]);
        put(writer, "\n");
    }
    if (rule->record_count > 0) {
        put(writer, " records=");
        put_ranges(writer, mb__policy_ranges(policy), rule->records, rule->record_count);
        put(writer, "\n");
    }
    if (rule->value_limit)
        put(writer, " values=%u-%u\n", rule->value_min, rule->value_max);
}

long mb_policy_canonical(const struct mb_policy *policy, char *out, size_t capacity) {
    if (policy == NULL || (out == NULL && capacity > 0))
        return MB_EINVAL;
    struct writer writer = {.out = out, .capacity = capacity};
    if (capacity > 0)
        out[0] = '\0';
    put(&writer, "mbsec policy 1\nrules %u\n", policy->rule_count);
    const struct mb__policy_rule *rules = mb__policy_rules(policy);
    for (uint32_t i = 0; i < policy->rule_count; i++)
        put_rule(&writer, policy, &rules[i]);
    put(&writer, policy->monitor_default ? "default deny monitor\n" : "default deny\n");
    return (long)writer.length;
}
