/* SPDX-License-Identifier: MIT */
/*
 * The policy engine (policy.h) against rules and requests built from the input, judged by a
 * reference written from the header's description alone: its own split of a request into parts,
 * its own first-match scan over the rules as given (not as compiled), its own range arithmetic
 * (an address range is inside a list when every address is in some range of it, so merging is
 * never assumed), and its own reading of which rules are valid.
 *
 * Input: a rule count, then per rule a few bytes giving its action, who, units, functions,
 * tables and ranges, value limit and exception (one rule in eight is built "raw", free to break
 * the rules of mb_policy_create()); then requests until the input ends: unit id, identity
 * (role, TLS, source address, explain) and PDU bytes.
 *
 * Properties:
 *   - mb_policy_create() accepts the rules exactly when the reference finds every rule valid,
 *     and a refusal comes with a printable one-line message;
 *   - each decision equals the reference's: per part the first rule that matches it (or
 *     default deny), the request allowed when every part is, else the most severe decision of
 *     its parts, the first part on a tie; same action, exception, rule index and rule name. So a
 *     request whose every part an allow rule matches first is allowed, nothing that no rule
 *     matches is allowed, a write outside an allowed range or value set is refused, and FC 23
 *     is judged on its write and its read;
 *   - decision->reason is printable ASCII, NUL-terminated, empty exactly for an allowed request
 *     that only reads when the identity does not ask to explain;
 *   - a copy made by mb_policy_copy() decides every request identically, reason included;
 *   - rule count and names are those given.
 *
 *   - monitor mode never weakens enforcement: with some refusing rules (and perhaps the default
 *     deny) in monitor mode, a request is refused exactly when the policy without its monitored
 *     rules (and, for a monitored default, with an allow-everything rule last) refuses it, with
 *     the same action, exception and rule name; it is served (allowed, or a monitored refusal)
 *     exactly when that policy allows it; a monitored decision names a monitored rule or the
 *     monitored default.
 *
 * FC 24: a rule granting holding_registers also matches an FC 24 request at pointer P as a read
 * of holding registers P..min(P + 31, 65535), as policy.h says.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <string.h>
#include <sys/socket.h>

#include "fuzz.h"
#include "mbsec/pdu.h"
#include "mbsec/policy.h"
#include "mbsec/value.h"

#define MAX_RULES 8
#define MAX_ITEMS 3 /* roles, sources, units, functions, ranges per rule */
#define MAX_PARTS 64

/* ---- what rules and requests are made of ---- */

static const char *const role_pool[] = {"operator",
                                        "viewer",
                                        "admin",
                                        "Operator",
                                        "a-role-name-well-past-the-thirty-two-bytes-shown",
                                        "odd'role\"\\\x01\x7F\xC3\xA9",
                                        ""};
#define ROLES_VALID 6 /* the last one, empty, only raw rules use */

static const char *const source_pool[] = {
    "10.0.0.0/8",           "192.0.2.0/24", "192.0.2.7",     "::1",         "::/0",
    "::ffff:192.0.2.0/120", "0.0.0.0/0",    "2001:db8::/32", "10.1.2.3/32", "2001:db8::1"};
#define SOURCES (sizeof source_pool / sizeof source_pool[0])
static struct mb_policy_source sources_parsed[SOURCES];

static const uint8_t public_functions[] = {1,  2,  3,  4,  5,  6,  7,  8,  11, 12,
                                           15, 16, 17, 20, 21, 22, 23, 24, 43};
/* Functions a rule lists: mostly public ones, some user-defined and reserved. */
static const uint8_t function_pool[] = {1,  2,  3,  4,  5,  6,  7,  8,  11,  12,  15, 16,
                                        17, 20, 21, 22, 23, 24, 43, 65, 100, 110, 9,  127};

/* The FC 8 sub-functions the spec defines, and those policy.h counts as writes. */
static const uint8_t defined_subs[] = {0x00, 0x01, 0x02, 0x03, 0x04, 0x0A, 0x0B, 0x0C,
                                       0x0D, 0x0E, 0x0F, 0x10, 0x11, 0x12, 0x14};
static const uint8_t writing_subs[] = {0x01, 0x03, 0x04, 0x0A, 0x14};

static uint32_t all_defined_subs;

static int listed(const uint8_t *list, size_t count, unsigned value) {
    for (size_t i = 0; i < count; i++)
        if (list[i] == value)
            return 1;
    return 0;
}

static void setup(void) {
    static int done;
    if (done)
        return;
    done = 1;
    for (size_t i = 0; i < SOURCES; i++)
        FUZZ_CHECK(mb_policy_source_parse(source_pool[i], &sources_parsed[i], NULL, 0) == 0);
    for (size_t i = 0; i < sizeof defined_subs; i++)
        all_defined_subs |= 1u << defined_subs[i];
}

/* ---- building rules from the input ---- */

struct built_rule {
    struct mb_policy_rule rule;
    int raw; /* built without keeping to the rules of mb_policy_create() */
    char name[24];
    const char *roles[MAX_ITEMS];
    struct mb_policy_source sources[MAX_ITEMS];
    struct mb_policy_range units[MAX_ITEMS];
    uint8_t functions[MAX_ITEMS];
    struct mb_policy_range ranges[MB_POLICY_TABLES][MAX_ITEMS];
    struct mb_policy_range records[MAX_ITEMS];
};

static struct mb_policy_range take_range(struct fuzz_input *input, int wide, int ordered) {
    struct mb_policy_range range;
    range.first = wide ? fuzz_u16(input) : fuzz_u8(input);
    range.last = wide ? fuzz_u16(input) : fuzz_u8(input);
    if (ordered && range.first > range.last) {
        uint16_t first = range.last;
        range.last = range.first;
        range.first = first;
    }
    return range;
}

/* The access a rule grants, as policy.h defines it for presets and a 0 access. */
static unsigned granted_access(const struct mb_policy_rule *rule) {
    if (rule->preset == MB_POLICY_READ_ONLY)
        return MB_POLICY_READ;
    if (rule->preset == MB_POLICY_READ_WRITE || rule->access == 0)
        return MB_POLICY_READ | MB_POLICY_WRITE;
    return rule->access;
}

static void build_rule(struct fuzz_input *input, size_t index, struct built_rule *built) {
    struct mb_policy_rule *rule = &built->rule;
    memset(built, 0, sizeof *built);
    uint8_t shape = fuzz_u8(input);
    int raw = built->raw = (shape & 0xE0) == 0xE0;

    /* The name: "rN", or, for raw rules, a duplicate, the reserved one or a malformed one. */
    snprintf(built->name, sizeof built->name, "r%zu", index);
    if (raw && (shape & 0x18) == 0x08)
        snprintf(built->name, sizeof built->name, "%s", index > 0 ? "r0" : "default");
    else if (raw && (shape & 0x18) == 0x10)
        snprintf(built->name, sizeof built->name, "bad name");
    rule->name = built->name;
    rule->action =
        raw ? (enum mb_policy_action)(shape % 5) : (enum mb_policy_action)(shape % 4 + 1);

    uint8_t who = fuzz_u8(input);
    rule->role_flags = who & (raw ? 7u : 3u);
    rule->role_count = (who >> 3) % 3;
    for (size_t i = 0; i < rule->role_count; i++)
        built->roles[i] = role_pool[fuzz_u8(input) % (raw ? ROLES_VALID + 1 : ROLES_VALID)];
    rule->roles = built->roles;
    rule->source_count = (who >> 5) & 1;
    for (size_t i = 0; i < rule->source_count; i++)
        built->sources[i] = sources_parsed[fuzz_u8(input) % SOURCES];
    rule->sources = built->sources;
    rule->transport = (enum mb_policy_transport)(raw ? who >> 6 : (who >> 6) % 3);
    if (!raw && rule->role_flags == 0 && rule->role_count == 0 && rule->source_count == 0)
        rule->role_flags = MB_POLICY_ROLE_ANY | MB_POLICY_ROLE_NONE;

    uint8_t units = fuzz_u8(input);
    rule->unit_count = units % 3;
    for (size_t i = 0; i < rule->unit_count; i++)
        built->units[i] = take_range(input, raw && (units & 0x80), !raw);
    rule->units = built->units;

    uint8_t what = fuzz_u8(input);
    rule->preset = (enum mb_policy_preset)(what % 3);
    rule->function_count = (what >> 2) % 4;
    int diagnostics = (what >> 4) & 1, encapsulated = (what >> 5) & 1;
    rule->access = what >> 6;
    if (!raw && rule->preset != MB_POLICY_PRESET_NONE) {
        rule->function_count = 0;
        diagnostics = encapsulated = 0;
        rule->access = 0;
    }
    for (size_t i = 0; i < rule->function_count; i++) {
        uint8_t pick = fuzz_u8(input);
        built->functions[i] = raw           ? pick
                              : pick < 0xC0 ? function_pool[pick % sizeof function_pool]
                                            : (uint8_t)(pick % 127 + 1);
    }
    rule->functions = built->functions;
    if (diagnostics) {
        uint32_t mask = (uint32_t)fuzz_u8(input) << 16 | fuzz_u16(input);
        rule->diagnostics = raw ? mask : mask & all_defined_subs;
        if (!raw && rule->function_count > 0 && !listed(built->functions, rule->function_count, 8))
            rule->diagnostics = 0;
    }
    if (encapsulated) {
        rule->encapsulated = fuzz_u8(input) & (raw ? 7u : 3u);
        if (!raw && rule->function_count > 0 && !listed(built->functions, rule->function_count, 43))
            rule->encapsulated = 0;
    }
    if (raw && rule->access == 0 && (what & 0x08))
        rule->access = 4;

    uint8_t tables = fuzz_u8(input);
    for (int table = 0; table < MB_POLICY_TABLES; table++) {
        struct mb_policy_grant *grant = &rule->tables[table];
        if (!(tables >> table & 1))
            continue;
        grant->granted = 1;
        grant->range_count = table == MB_POLICY_DEVICE && !raw ? 0 : fuzz_u8(input) % 3;
        for (size_t i = 0; i < grant->range_count; i++)
            built->ranges[table][i] = take_range(input, 1, !raw);
        grant->ranges = built->ranges[table];
    }
    if (rule->tables[MB_POLICY_FILES].granted || (raw && (tables & 0x80))) {
        rule->record_count = fuzz_u8(input) % 3;
        for (size_t i = 0; i < rule->record_count; i++)
            built->records[i] = take_range(input, 1, !raw);
        rule->records = built->records;
    }

    uint8_t values = fuzz_u8(input);
    if ((values & 1) &&
        (raw || (rule->action == MB_POLICY_ALLOW && (granted_access(rule) & MB_POLICY_WRITE)))) {
        rule->value_limit = 1;
        struct mb_policy_range limit = take_range(input, 1, !raw);
        rule->value_min = limit.first;
        rule->value_max = limit.last;
    }
    if (rule->action == MB_POLICY_DENY || (raw && (values & 2)))
        rule->exception = fuzz_u8(input);
}

/* ---- the reference: which rules mb_policy_create() must take ---- */

static int ranges_valid(const struct mb_policy_range *ranges, size_t count, unsigned maximum) {
    for (size_t i = 0; i < count; i++)
        if (ranges[i].first > ranges[i].last || ranges[i].last > maximum)
            return 0;
    return 1;
}

static int name_valid(const char *name) {
    size_t length = strlen(name);
    if (length == 0 || length > MB_POLICY_MAX_NAME || strcmp(name, "default") == 0)
        return 0;
    for (size_t i = 0; i < length; i++) {
        char c = name[i];
        if (!((c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '-' || c == '_' || c == '.'))
            return 0;
    }
    return 1;
}

static int rule_valid(const struct built_rule *rules, size_t index) {
    const struct mb_policy_rule *rule = &rules[index].rule;
    if (!name_valid(rule->name))
        return 0;
    for (size_t j = 0; j < index; j++)
        if (strcmp(rules[j].rule.name, rule->name) == 0)
            return 0;
    if (rule->action < MB_POLICY_ALLOW || rule->action > MB_POLICY_CLOSE)
        return 0;
    if (rule->exception != 0 && rule->action != MB_POLICY_DENY)
        return 0;
    if (rule->role_flags == 0 && rule->role_count == 0 && rule->source_count == 0)
        return 0;
    if (rule->role_flags & ~(MB_POLICY_ROLE_NONE | MB_POLICY_ROLE_ANY))
        return 0;
    for (size_t i = 0; i < rule->role_count; i++)
        if (rule->roles[i][0] == '\0')
            return 0;
    if ((unsigned)rule->transport > MB_POLICY_PLAIN_ONLY)
        return 0;
    if (!ranges_valid(rule->units, rule->unit_count, 255))
        return 0;
    if (rule->preset != MB_POLICY_PRESET_NONE &&
        (rule->function_count > 0 || rule->access != 0 || rule->diagnostics != 0 ||
         rule->encapsulated != 0))
        return 0;
    for (size_t i = 0; i < rule->function_count; i++)
        if (rule->functions[i] == 0 || rule->functions[i] > 127)
            return 0;
    if (rule->diagnostics & ~all_defined_subs)
        return 0;
    if (rule->diagnostics != 0 && rule->function_count > 0 &&
        !listed(rule->functions, rule->function_count, 8))
        return 0;
    if (rule->encapsulated & ~(MB_POLICY_MEI_DEVICE_ID | MB_POLICY_MEI_CANOPEN))
        return 0;
    if (rule->encapsulated != 0 && rule->function_count > 0 &&
        !listed(rule->functions, rule->function_count, 43))
        return 0;
    if (rule->access & ~(MB_POLICY_READ | MB_POLICY_WRITE))
        return 0;
    for (int table = 0; table < MB_POLICY_TABLES; table++) {
        const struct mb_policy_grant *grant = &rule->tables[table];
        if (!grant->granted)
            continue;
        if (table == MB_POLICY_DEVICE && grant->range_count > 0)
            return 0;
        if (!ranges_valid(grant->ranges, grant->range_count, 65535))
            return 0;
    }
    if (rule->record_count > 0 && !rule->tables[MB_POLICY_FILES].granted)
        return 0;
    if (!ranges_valid(rule->records, rule->record_count, 65535))
        return 0;
    if (rule->value_limit &&
        (rule->action != MB_POLICY_ALLOW || rule->value_min > rule->value_max ||
         !(granted_access(rule) & MB_POLICY_WRITE)))
        return 0;
    return 1;
}

/* ---- the reference: the parts of a request ---- */

#define TABLE_UNKNOWN (-1)

struct part {
    uint8_t function;
    unsigned access;
    int table; /* enum mb_policy_table or TABLE_UNKNOWN */
    int sub_known;
    unsigned sub; /* FC 8 sub-function or FC 43 MEI type */
    uint16_t file;
    uint32_t first, last; /* addresses, or records; last may pass 65535 */
    int values_known;     /* a table write: it writes values low..high and nothing else */
    uint16_t low, high;
};

static void span(struct part *part, unsigned access, int table, uint32_t first, uint32_t count) {
    part->access = access;
    part->table = table;
    part->first = first;
    /* A group of 0 registers still names its record (policy.h leaves it open; the engine's
     * choice, taken here too). */
    part->last = first + (count > 0 ? count : 1) - 1;
}

static void register_values(struct part *part, const uint8_t *values, size_t count) {
    part->values_known = 1;
    part->low = 0xFFFF;
    part->high = 0;
    for (size_t i = 0; i < count; i++) {
        uint16_t value = mb_get_u16(values + 2 * i);
        part->low = value < part->low ? value : part->low;
        part->high = value > part->high ? value : part->high;
    }
    /* A group of 0 registers writes nothing; the engine judges it as writing 0. */
    if (count == 0)
        part->low = part->high = 0;
}

static void bit_values(struct part *part, const uint8_t *packed, size_t count) {
    part->values_known = 1;
    part->low = 1;
    part->high = 0;
    for (size_t i = 0; i < count; i++) {
        uint16_t bit = (uint16_t)mb_bits_get(packed, i);
        part->low = bit < part->low ? bit : part->low;
        part->high = bit > part->high ? bit : part->high;
    }
}

static unsigned sub_access(unsigned sub) {
    return listed(writing_subs, sizeof writing_subs, sub) ? MB_POLICY_WRITE : MB_POLICY_READ;
}

/* Splits the request into parts; returns how many. */
static size_t split(const uint8_t *pdu, size_t length, struct part *parts) {
    struct mb_request request;
    memset(parts, 0, sizeof *parts);
    parts[0].function = length > 0 ? pdu[0] : 0;
    if (length == 0 || mb_request_decode(pdu, length, &request) != 0) {
        static const uint8_t reads[] = {1, 2, 3, 4, 7, 11, 12, 17, 20, 24};
        static const uint8_t writes[] = {5, 6, 15, 16, 21, 22};
        struct part *part = &parts[0];
        part->table = TABLE_UNKNOWN;
        part->access = listed(reads, sizeof reads, part->function) ? MB_POLICY_READ
                       : listed(writes, sizeof writes, part->function)
                           ? MB_POLICY_WRITE
                           : MB_POLICY_READ | MB_POLICY_WRITE;
        if (part->function == 8 && length >= 3 && mb_get_u16(pdu + 1) < 32 &&
            (all_defined_subs >> mb_get_u16(pdu + 1) & 1)) {
            part->sub_known = 1;
            part->sub = mb_get_u16(pdu + 1);
            part->access = sub_access(part->sub);
        }
        if (part->function == 43 && length >= 2 && (pdu[1] == 13 || pdu[1] == 14)) {
            part->sub_known = 1;
            part->sub = pdu[1];
            part->access = pdu[1] == 14 ? MB_POLICY_READ : MB_POLICY_READ | MB_POLICY_WRITE;
        }
        return 1;
    }
    struct part *part = &parts[0];
    switch (request.function) {
    case 1:
    case 2:
    case 3:
    case 4: {
        static const int tables[] = {MB_POLICY_COILS, MB_POLICY_DISCRETE_INPUTS,
                                     MB_POLICY_HOLDING_REGISTERS, MB_POLICY_INPUT_REGISTERS};
        span(part, MB_POLICY_READ, tables[request.function - 1], request.read.address,
             request.read.quantity);
        return 1;
    }
    case 5:
        span(part, MB_POLICY_WRITE, MB_POLICY_COILS, request.write_single.address, 1);
        part->values_known = 1;
        part->low = part->high = request.write_single.value == MB_COIL_ON;
        return 1;
    case 6:
        span(part, MB_POLICY_WRITE, MB_POLICY_HOLDING_REGISTERS, request.write_single.address, 1);
        part->values_known = 1;
        part->low = part->high = request.write_single.value;
        return 1;
    case 15:
        span(part, MB_POLICY_WRITE, MB_POLICY_COILS, request.write_multiple.address,
             request.write_multiple.quantity);
        bit_values(part, request.write_multiple.values, request.write_multiple.quantity);
        return 1;
    case 16:
        span(part, MB_POLICY_WRITE, MB_POLICY_HOLDING_REGISTERS, request.write_multiple.address,
             request.write_multiple.quantity);
        register_values(part, request.write_multiple.values, request.write_multiple.quantity);
        return 1;
    case 22: {
        /* Whatever the register holds, the result lies in (OR & ~AND) .. that | AND. */
        uint16_t keep = request.mask_write.and_mask;
        span(part, MB_POLICY_WRITE, MB_POLICY_HOLDING_REGISTERS, request.mask_write.address, 1);
        part->values_known = 1;
        part->low = (uint16_t)(request.mask_write.or_mask & ~keep);
        part->high = (uint16_t)(part->low | keep);
        return 1;
    }
    case 23:
        span(part, MB_POLICY_WRITE, MB_POLICY_HOLDING_REGISTERS, request.read_write.write_address,
             request.read_write.write_quantity);
        register_values(part, request.read_write.values, request.read_write.write_quantity);
        memset(&parts[1], 0, sizeof parts[1]);
        parts[1].function = 23;
        span(&parts[1], MB_POLICY_READ, MB_POLICY_HOLDING_REGISTERS,
             request.read_write.read_address, request.read_write.read_quantity);
        return 2;
    case 24:
        span(part, MB_POLICY_READ, MB_POLICY_FIFOS, request.fifo.address, 1);
        return 1;
    case 20:
    case 21: {
        size_t count = 0, offset = 0;
        struct mb_file_record record;
        while (count < MAX_PARTS && mb_file_records_next(&request.file, &offset, &record) == 1) {
            struct part *sub = &parts[count++];
            memset(sub, 0, sizeof *sub);
            sub->function = request.function;
            span(sub, request.function == 20 ? MB_POLICY_READ : MB_POLICY_WRITE, MB_POLICY_FILES,
                 record.record_number, record.record_length);
            sub->file = record.file_number;
            if (request.function == 21)
                register_values(sub, record.data, record.record_length);
        }
        FUZZ_CHECK(count > 0);
        return count;
    }
    case 7:
    case 11:
    case 12:
    case 17:
        part->table = MB_POLICY_DEVICE;
        part->access = MB_POLICY_READ;
        return 1;
    case 8:
        part->table = MB_POLICY_DEVICE;
        part->sub_known = 1;
        part->sub = request.diagnostics.sub_function;
        part->access = sub_access(part->sub);
        return 1;
    case 43:
        part->table = MB_POLICY_DEVICE;
        part->sub_known = 1;
        part->sub = request.device_id.mei_type;
        part->access = part->sub == 14 ? MB_POLICY_READ : MB_POLICY_READ | MB_POLICY_WRITE;
        return 1;
    default:
        part->table = MB_POLICY_DEVICE;
        part->access = MB_POLICY_READ | MB_POLICY_WRITE;
        return 1;
    }
}

/* ---- the reference: matching ---- */

struct client {
    const char *role;
    int tls;
    int family; /* AF_INET, AF_INET6, 0 unknown */
    uint8_t address[16];
};

/* Every address of first..last lies in some range of the list (an empty list is 0..65535). */
static int inside(const struct mb_policy_range *ranges, size_t count, uint32_t first,
                  uint32_t last) {
    if (count == 0)
        return last <= 65535;
    uint32_t next = first;
    for (;;) {
        size_t i = 0;
        while (i < count && !(ranges[i].first <= next && next <= ranges[i].last))
            i++;
        if (i == count)
            return 0;
        if (ranges[i].last >= last)
            return 1;
        next = (uint32_t)ranges[i].last + 1;
    }
}

/* Some address of first..last lies in some range of the list. */
static int touching(const struct mb_policy_range *ranges, size_t count, uint32_t first,
                    uint32_t last) {
    if (count == 0)
        return first <= 65535;
    for (size_t i = 0; i < count; i++)
        if (ranges[i].first <= last && first <= ranges[i].last)
            return 1;
    return 0;
}

static int covered(const struct mb_policy_rule *rule, const struct mb_policy_range *ranges,
                   size_t count, uint32_t first, uint32_t last) {
    return rule->action == MB_POLICY_ALLOW ? inside(ranges, count, first, last)
                                           : touching(ranges, count, first, last);
}

static int source_holds(const struct mb_policy_source *source, const struct client *client) {
    if (source->family != client->family)
        return 0;
    for (unsigned bit = 0; bit < source->prefix; bit++) {
        unsigned mask = 0x80u >> (bit % 8);
        if ((source->address[bit / 8] & mask) != (client->address[bit / 8] & mask))
            return 0;
    }
    return 1;
}

static int who_matches(const struct mb_policy_rule *rule, const struct client *client) {
    if (rule->transport == MB_POLICY_TLS_ONLY && !client->tls)
        return 0;
    if (rule->transport == MB_POLICY_PLAIN_ONLY && client->tls)
        return 0;
    if (rule->role_flags != 0 || rule->role_count > 0) {
        int role_ok = 0;
        if (client->role == NULL) {
            role_ok = (rule->role_flags & MB_POLICY_ROLE_NONE) != 0;
        } else {
            role_ok = (rule->role_flags & MB_POLICY_ROLE_ANY) != 0;
            for (size_t i = 0; i < rule->role_count; i++)
                role_ok |= strcmp(rule->roles[i], client->role) == 0;
        }
        if (!role_ok)
            return 0;
    }
    if (rule->source_count > 0) {
        int source_ok = 0;
        for (size_t i = 0; i < rule->source_count; i++)
            source_ok |= source_holds(&rule->sources[i], client);
        if (!source_ok)
            return 0;
    }
    return 1;
}

static int function_matches(const struct mb_policy_rule *rule, uint8_t function) {
    if (rule->preset != MB_POLICY_PRESET_NONE)
        return listed(public_functions, sizeof public_functions, function);
    return rule->function_count == 0 || listed(rule->functions, rule->function_count, function);
}

static uint32_t allowed_subs(const struct mb_policy_rule *rule) {
    if (rule->preset == MB_POLICY_READ_WRITE)
        return all_defined_subs & ~(1u << 0x01 | 1u << 0x04);
    if (rule->preset == MB_POLICY_READ_ONLY || rule->diagnostics == 0)
        return all_defined_subs;
    return rule->diagnostics;
}

static unsigned allowed_meis(const struct mb_policy_rule *rule) {
    if (rule->preset != MB_POLICY_PRESET_NONE)
        return MB_POLICY_MEI_DEVICE_ID;
    return rule->encapsulated != 0 ? rule->encapsulated
                                   : MB_POLICY_MEI_DEVICE_ID | MB_POLICY_MEI_CANOPEN;
}

static int table_matches(const struct mb_policy_rule *rule, const struct part *part) {
    const struct mb_policy_grant *grants = rule->tables;
    if (part->table == TABLE_UNKNOWN)
        return 0;
    /* FC 24 returns holding registers P..P+31: a rule on them matches it too. */
    if (part->function == MB_FC_READ_FIFO_QUEUE && part->table == MB_POLICY_FIFOS &&
        grants[MB_POLICY_HOLDING_REGISTERS].granted) {
        uint32_t last = part->first + 31 <= 65535 ? part->first + 31 : 65535;
        if (covered(rule, grants[MB_POLICY_HOLDING_REGISTERS].ranges,
                    grants[MB_POLICY_HOLDING_REGISTERS].range_count, part->first, last))
            return 1;
    }
    const struct mb_policy_grant *grant = &grants[part->table];
    if (!grant->granted)
        return 0;
    if (part->table == MB_POLICY_DEVICE)
        return 1;
    if (part->table == MB_POLICY_FILES)
        return covered(rule, grant->ranges, grant->range_count, part->file, part->file) &&
               covered(rule, rule->records, rule->record_count, part->first, part->last);
    return covered(rule, grant->ranges, grant->range_count, part->first, part->last);
}

static int rule_matches(const struct mb_policy_rule *rule, const struct client *client,
                        uint8_t unit, const struct part *part) {
    if (!who_matches(rule, client))
        return 0;
    if (rule->unit_count > 0) {
        int unit_ok = 0;
        for (size_t i = 0; i < rule->unit_count; i++)
            unit_ok |= rule->units[i].first <= unit && unit <= rule->units[i].last;
        if (!unit_ok)
            return 0;
    }
    if (!function_matches(rule, part->function))
        return 0;
    if (part->function == 8) {
        uint32_t subs = allowed_subs(rule);
        if (part->sub_known ? !(subs >> part->sub & 1) : subs != all_defined_subs)
            return 0;
    }
    if (part->function == 43) {
        unsigned needed = !part->sub_known  ? MB_POLICY_MEI_DEVICE_ID | MB_POLICY_MEI_CANOPEN
                          : part->sub == 14 ? MB_POLICY_MEI_DEVICE_ID
                                            : MB_POLICY_MEI_CANOPEN;
        if ((allowed_meis(rule) & needed) != needed)
            return 0;
    }
    if ((part->access & granted_access(rule)) != part->access)
        return 0;
    int grants_tables = 0;
    for (int table = 0; table < MB_POLICY_TABLES; table++)
        grants_tables |= rule->tables[table].granted;
    if (grants_tables && !table_matches(rule, part))
        return 0;
    if (rule->value_limit && (part->access & MB_POLICY_WRITE) &&
        (!part->values_known || part->low < rule->value_min || part->high > rule->value_max))
        return 0;
    return 1;
}

static int severity(int action) {
    return action == MB_POLICY_ALLOW  ? 0
           : action == MB_POLICY_DENY ? 1
           : action == MB_POLICY_DROP ? 2
                                      : 3;
}

struct expected {
    int action;
    uint8_t exception;
    int rule;
    int writes;
};

static void reference_decide(const struct built_rule *rules, size_t count,
                             const struct client *client, uint8_t unit, const uint8_t *pdu,
                             size_t length, struct expected *expected) {
    struct part parts[MAX_PARTS];
    size_t part_count = split(pdu, length, parts);
    int decisive_rule = -1, decisive_severity = -1;
    expected->writes = 0;
    for (size_t p = 0; p < part_count; p++) {
        int rule = -1;
        for (size_t r = 0; r < count && rule < 0; r++)
            if (rule_matches(&rules[r].rule, client, unit, &parts[p]))
                rule = (int)r;
        int level = rule < 0 ? severity(MB_POLICY_DENY) : severity(rules[rule].rule.action);
        if (level > decisive_severity) {
            decisive_severity = level;
            decisive_rule = rule;
        }
        expected->writes |= (parts[p].access & MB_POLICY_WRITE) != 0;
    }
    expected->rule = decisive_rule;
    if (decisive_rule < 0) {
        expected->action = MB_POLICY_DENY;
        expected->exception = MB_EX_ILLEGAL_FUNCTION;
        return;
    }
    const struct mb_policy_rule *rule = &rules[decisive_rule].rule;
    expected->action = rule->action;
    expected->exception = rule->action != MB_POLICY_DENY ? 0
                          : rule->exception != 0         ? rule->exception
                                                         : MB_EX_ILLEGAL_FUNCTION;
}

/* ---- identities ---- */

static void identity_of(uint8_t selector, struct mb_policy_identity *who,
                        struct sockaddr_storage *storage, struct client *client) {
    static const char *const roles[] = {NULL,
                                        "operator",
                                        "viewer",
                                        "admin",
                                        "Operator",
                                        "odd'role\"\\\x01\x7F\xC3\xA9",
                                        "a-role-name-well-past-the-thirty-two-bytes-shown",
                                        "operator "};
    static const char *const addresses[] = {NULL,          "10.1.2.3",         "192.0.2.7",
                                            "::1",         "::ffff:192.0.2.7", "2001:db8::1",
                                            "203.0.113.9", "::ffff:10.1.2.3"};
    memset(who, 0, sizeof *who);
    memset(storage, 0, sizeof *storage);
    memset(client, 0, sizeof *client);
    who->role = client->role = roles[selector & 7];
    who->tls = client->tls = (selector >> 3) & 1;
    who->explain = selector >> 7;
    const char *address = addresses[(selector >> 4) & 7];
    if (address == NULL)
        return;
    if (strchr(address, ':') == NULL) {
        struct sockaddr_in *in = (struct sockaddr_in *)storage;
        in->sin_family = AF_INET;
        in->sin_port = htons(50123);
        FUZZ_CHECK(inet_pton(AF_INET, address, &in->sin_addr) == 1);
        who->address_length = sizeof *in;
        client->family = AF_INET;
        memcpy(client->address, &in->sin_addr, 4);
    } else {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)storage;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(50123);
        FUZZ_CHECK(inet_pton(AF_INET6, address, &in6->sin6_addr) == 1);
        who->address_length = sizeof *in6;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
        if (memcmp(&in6->sin6_addr, mapped, sizeof mapped) == 0) {
            client->family = AF_INET;
            memcpy(client->address, (const uint8_t *)&in6->sin6_addr + 12, 4);
        } else {
            client->family = AF_INET6;
            memcpy(client->address, &in6->sin6_addr, 16);
        }
    }
    who->address = (const struct sockaddr *)storage;
}

/* ---- the target ---- */

static void check_decision(const struct mb_policy_decision *decision,
                           const struct expected *expected, const struct built_rule *rules,
                           int explain) {
    FUZZ_CHECK((int)decision->action == expected->action);
    FUZZ_CHECK(decision->exception == expected->exception);
    FUZZ_CHECK(decision->rule == expected->rule);
    FUZZ_CHECK(decision->rule_name != NULL);
    FUZZ_CHECK(strcmp(decision->rule_name,
                      expected->rule < 0 ? "default" : rules[expected->rule].rule.name) == 0);
    FUZZ_CHECK(fuzz_printable(decision->reason, sizeof decision->reason));
    int quiet = expected->action == MB_POLICY_ALLOW && !expected->writes && !explain;
    FUZZ_CHECK((decision->reason[0] == '\0') == quiet);
}

/* Monitor mode (the mask and the default from the input): `monitored` is the policy with those
 * rules in monitor mode, `enforced` the policy that must decide alike without them. */
struct monitor_pair {
    struct mb_policy *monitored, *enforced;
    int monitor[MAX_RULES];
    int monitor_default;
};

static void monitor_pair_build(const struct built_rule *rules, size_t count, uint8_t mask,
                               int monitor_default, struct monitor_pair *pair) {
    struct mb_policy_rule monitored[MAX_RULES], enforced[MAX_RULES + 1];
    size_t kept = 0;
    memset(pair, 0, sizeof *pair);
    pair->monitor_default = monitor_default;
    for (size_t i = 0; i < count; i++) {
        monitored[i] = rules[i].rule;
        pair->monitor[i] = (mask >> i & 1) && rules[i].rule.action != MB_POLICY_ALLOW;
        monitored[i].monitor = pair->monitor[i];
        if (!pair->monitor[i])
            enforced[kept++] = rules[i].rule;
    }
    if (monitor_default) {
        memset(&enforced[kept], 0, sizeof enforced[kept]);
        enforced[kept].name = "monitor-fallback";
        enforced[kept].action = MB_POLICY_ALLOW;
        enforced[kept].role_flags = MB_POLICY_ROLE_ANY | MB_POLICY_ROLE_NONE;
        kept++;
    }
    struct mb_policy_settings settings = {.monitor_default = monitor_default};
    FUZZ_CHECK(mb_policy_create_with(count > 0 ? monitored : NULL, count, &settings,
                                     &pair->monitored, NULL, 0) == 0);
    FUZZ_CHECK(mb_policy_create(kept > 0 ? enforced : NULL, kept, &pair->enforced, NULL, 0) == 0);
    for (size_t i = 0; i < count; i++)
        FUZZ_CHECK(mb_policy_rule_monitor(pair->monitored, i) == pair->monitor[i]);
    FUZZ_CHECK(mb_policy_rule_monitor(pair->monitored, count) == monitor_default);
}

static void monitor_pair_check(const struct monitor_pair *pair, const struct built_rule *rules,
                               size_t count, const struct mb_policy_identity *who, uint8_t unit,
                               const uint8_t *pdu, size_t length) {
    struct mb_policy_decision watched, enforced;
    FUZZ_CHECK(mb_policy_decide(pair->monitored, who, unit, pdu, length, &watched) == 0);
    FUZZ_CHECK(mb_policy_decide(pair->enforced, who, unit, pdu, length, &enforced) == 0);
    int served = watched.action == MB_POLICY_ALLOW || watched.monitor;
    FUZZ_CHECK(served == (enforced.action == MB_POLICY_ALLOW));
    if (!served) {
        FUZZ_CHECK(watched.action == enforced.action);
        FUZZ_CHECK(watched.exception == enforced.exception);
        FUZZ_CHECK(strcmp(watched.rule_name, enforced.rule_name) == 0);
    }
    if (watched.monitor) {
        FUZZ_CHECK(watched.action != MB_POLICY_ALLOW);
        if (watched.rule < 0)
            FUZZ_CHECK(pair->monitor_default);
        else
            FUZZ_CHECK((size_t)watched.rule < count && pair->monitor[watched.rule] &&
                       strcmp(watched.rule_name, rules[watched.rule].rule.name) == 0);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct fuzz_input input;
    struct built_rule rules[MAX_RULES];
    setup();
    fuzz_input_init(&input, data, size);
    size_t count = fuzz_u8(&input) % (MAX_RULES + 1);
    int all_valid = 1;
    for (size_t i = 0; i < count; i++)
        build_rule(&input, i, &rules[i]);
    for (size_t i = 0; i < count; i++)
        all_valid &= rule_valid(rules, i);

    struct mb_policy_rule given[MAX_RULES];
    for (size_t i = 0; i < count; i++)
        given[i] = rules[i].rule;
    struct mb_policy *policy = NULL, *copy = NULL;
    char error[256];
    memset(error, 'x', sizeof error);
    int rc = mb_policy_create(count > 0 ? given : NULL, count, &policy, error, sizeof error);
    if (!all_valid) {
        FUZZ_CHECK(rc == MB_EINVAL && policy == NULL);
        FUZZ_CHECK(error[0] != '\0' && fuzz_printable(error, sizeof error));
        return 0;
    }
    FUZZ_CHECK(rc == 0 && policy != NULL);
    FUZZ_CHECK(mb_policy_rule_count(policy) == count);
    for (size_t i = 0; i < count; i++)
        FUZZ_CHECK(strcmp(mb_policy_rule_name(policy, i), rules[i].rule.name) == 0);
    FUZZ_CHECK(mb_policy_rule_name(policy, count) == NULL);
    FUZZ_CHECK(mb_policy_copy(policy, &copy) == 0);
    uint8_t monitor_mask = fuzz_u8(&input);
    struct monitor_pair pair;
    monitor_pair_build(rules, count, monitor_mask, (monitor_mask & 0x80) != 0, &pair);

    /* The rules given must not be needed any more: scribble over the caller's copy. */
    memset(given, 0xA5, sizeof given);

    while (fuzz_input_left(&input) > 0) {
        uint8_t unit = fuzz_u8(&input);
        struct mb_policy_identity who;
        struct sockaddr_storage address;
        struct client client;
        identity_of(fuzz_u8(&input), &who, &address, &client);
        const uint8_t *bytes;
        size_t length = fuzz_take(&input, fuzz_u8(&input) % (MB_PDU_MAX + 1), &bytes);
        uint8_t *pdu = fuzz_copy(bytes, length);

        struct expected expected;
        reference_decide(rules, count, &client, unit, pdu, length, &expected);
        struct mb_policy_decision decision, again;
        FUZZ_CHECK(mb_policy_decide(policy, &who, unit, pdu, length, &decision) == 0);
        check_decision(&decision, &expected, rules, who.explain);
        FUZZ_CHECK(mb_policy_decide(copy, &who, unit, pdu, length, &again) == 0);
        FUZZ_CHECK(again.action == decision.action && again.exception == decision.exception &&
                   again.rule == decision.rule &&
                   strcmp(again.rule_name, decision.rule_name) == 0 &&
                   strcmp(again.reason, decision.reason) == 0);
        /* On the decoding a server hands its handler: the same decision, without decoding. */
        struct mb_request request;
        int decoded = mb_request_decode(pdu, length, &request) == 0;
        FUZZ_CHECK(mb_policy_decide_decoded(policy, &who, unit, pdu, length,
                                            decoded ? &request : NULL, &again) == 0);
        FUZZ_CHECK(again.action == decision.action && again.exception == decision.exception &&
                   again.rule == decision.rule && again.access == decision.access &&
                   strcmp(again.reason, decision.reason) == 0);
        FUZZ_CHECK(decision.access == mb_policy_request_access(pdu, length));
        /* The policy without monitor mode never says monitor. */
        FUZZ_CHECK(decision.monitor == 0);
        monitor_pair_check(&pair, rules, count, &who, unit, pdu, length);
        free(pdu);
    }
    mb_policy_destroy(pair.monitored);
    mb_policy_destroy(pair.enforced);
    mb_policy_destroy(copy);
    mb_policy_destroy(policy);
    return 0;
}
