/* SPDX-License-Identifier: MIT */
/* Deciding a request: split it into the parts it touches, and run each down the rules. */
#include <netinet/in.h>
#include <string.h>
#include <strings.h>

#include "mbsec/pdu.h"
#include "mbsec/policy.h"
#include "mbsec/value.h"
#include "policy/compiled.h"

/* The table of a request that did not decode. */
#define UNKNOWN_TABLE (-1)

/* Who sent the request, with the address in the form rules compare against. */
struct client {
    const char *role;
    int tls;
    int family; /* AF_INET, AF_INET6, or 0 when unknown */
    uint8_t address[16];
};

/* One thing a request touches, decided on its own (policy.h lists them per function code). */
struct part {
    uint8_t function;
    uint8_t access;     /* MB_POLICY_READ and/or MB_POLICY_WRITE */
    int8_t table;       /* enum mb_policy_table, or UNKNOWN_TABLE */
    uint8_t decoded;    /* 0: the request did not decode */
    uint8_t sub_known;  /* `sub` holds the FC 8 sub-function or the FC 43 MEI type */
    uint8_t has_values; /* a table write whose written values are known */
    uint16_t sub;
    uint16_t file;
    uint32_t first; /* addresses, or records for files; last may pass 65535 */
    uint32_t last;
    uint16_t value_low; /* the smallest and largest value written */
    uint16_t value_high;
};

/* Walks the parts of one request. */
struct parts {
    const uint8_t *pdu;
    size_t length;
    struct mb_request request;
    int decoded;
    unsigned yielded;
    size_t offset; /* FC 20/21: where the next sub-request starts */
};

/* ---- the parts of a request ---- */

static void register_values(struct part *part, const uint8_t *values, size_t count) {
    uint16_t low = 0xFFFF, high = 0;
    for (size_t i = 0; i < count; i++) {
        uint16_t value = mb_get_u16(values + 2 * i);
        if (value < low)
            low = value;
        if (value > high)
            high = value;
    }
    part->has_values = 1;
    part->value_low = count > 0 ? low : 0;
    part->value_high = high;
}

static void bit_values(struct part *part, const uint8_t *packed, size_t count) {
    int any_on = 0, any_off = 0;
    for (size_t i = 0; i < count && !(any_on && any_off); i++) {
        if (mb_bits_get(packed, i))
            any_on = 1;
        else
            any_off = 1;
    }
    part->has_values = 1;
    part->value_low = any_off ? 0 : 1;
    part->value_high = any_on ? 1 : 0;
}

static void table_part(struct part *part, uint8_t access, int table, uint32_t address,
                       uint32_t quantity) {
    part->access = access;
    part->table = (int8_t)table;
    part->first = address;
    part->last = address + (quantity > 0 ? quantity : 1) - 1;
}

/* The access an FC 8 sub-function needs. */
static uint8_t diagnostics_access(uint16_t sub_function) {
    return sub_function < 32 && (MB__DIAGNOSTICS_WRITES >> sub_function & 1u) ? MB_POLICY_WRITE
                                                                              : MB_POLICY_READ;
}

static int diagnostics_defined(unsigned sub_function) {
    return sub_function < 32 && (MB__DIAGNOSTICS_DEFINED >> sub_function & 1u);
}

/* A request that did not decode: one part of no known table, with what its function code
 * says. */
static void undecodable_part(const uint8_t *pdu, size_t length, struct part *part) {
    static const uint8_t reads[] = {1, 2, 3, 4, 7, 11, 12, 17, 20, 24};
    static const uint8_t writes[] = {5, 6, 15, 16, 21, 22};
    part->function = length > 0 ? pdu[0] : 0;
    part->table = UNKNOWN_TABLE;
    part->access = MB_POLICY_READ | MB_POLICY_WRITE;
    if (memchr(reads, part->function, sizeof reads) != NULL)
        part->access = MB_POLICY_READ;
    if (memchr(writes, part->function, sizeof writes) != NULL)
        part->access = MB_POLICY_WRITE;
    if (part->function == MB_FC_DIAGNOSTICS && length >= 3 &&
        diagnostics_defined(mb_get_u16(pdu + 1))) {
        part->sub_known = 1;
        part->sub = mb_get_u16(pdu + 1);
        part->access = diagnostics_access(part->sub);
    }
    if (part->function == MB_FC_ENCAPSULATED_INTERFACE && length >= 2 &&
        (pdu[1] == MB_MEI_DEVICE_ID || pdu[1] == MB_MEI_CANOPEN)) {
        part->sub_known = 1;
        part->sub = pdu[1];
        part->access =
            pdu[1] == MB_MEI_DEVICE_ID ? MB_POLICY_READ : MB_POLICY_READ | MB_POLICY_WRITE;
    }
}

/* `request`: the decoding of `pdu`, or NULL when it did not decode. */
static void parts_start(struct parts *parts, const uint8_t *pdu, size_t length,
                        const struct mb_request *request) {
    memset(parts, 0, sizeof *parts);
    parts->pdu = pdu;
    parts->length = length;
    if (request != NULL) {
        parts->request = *request;
        parts->decoded = 1;
    }
}

/* FC 20/21: the next sub-request as a part. Returns 1, or 0 after the last one. */
static int file_part(struct parts *parts, struct part *part) {
    struct mb_file_record record;
    if (mb_file_records_next(&parts->request.file, &parts->offset, &record) != 1)
        return 0;
    table_part(part, part->function == MB_FC_READ_FILE_RECORD ? MB_POLICY_READ : MB_POLICY_WRITE,
               MB_POLICY_FILES, record.record_number, record.record_length);
    part->file = record.file_number;
    if (part->function == MB_FC_WRITE_FILE_RECORD)
        register_values(part, record.data, record.record_length);
    return 1;
}

/* The decoded request's part number parts->yielded. Returns 1, or 0 when there are no more. */
static int decoded_part(struct parts *parts, struct part *part) {
    const struct mb_request *request = &parts->request;
    unsigned index = parts->yielded;
    if (request->function == MB_FC_READ_FILE_RECORD || request->function == MB_FC_WRITE_FILE_RECORD)
        return file_part(parts, part);
    if (request->function == MB_FC_READ_WRITE_MULTIPLE_REGISTERS) {
        /* The write happens first on the device, so it is decided first. */
        if (index == 0) {
            table_part(part, MB_POLICY_WRITE, MB_POLICY_HOLDING_REGISTERS,
                       request->read_write.write_address, request->read_write.write_quantity);
            register_values(part, request->read_write.values, request->read_write.write_quantity);
            return 1;
        }
        if (index == 1) {
            table_part(part, MB_POLICY_READ, MB_POLICY_HOLDING_REGISTERS,
                       request->read_write.read_address, request->read_write.read_quantity);
            return 1;
        }
        return 0;
    }
    if (index > 0)
        return 0;
    switch (request->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        /* The four read codes are the four tables, in order. */
        table_part(part, MB_POLICY_READ, request->function - MB_FC_READ_COILS,
                   request->read.address, request->read.quantity);
        break;
    case MB_FC_WRITE_SINGLE_COIL:
        table_part(part, MB_POLICY_WRITE, MB_POLICY_COILS, request->write_single.address, 1);
        part->has_values = 1;
        part->value_low = part->value_high = request->write_single.value == MB_COIL_ON;
        break;
    case MB_FC_WRITE_SINGLE_REGISTER:
        table_part(part, MB_POLICY_WRITE, MB_POLICY_HOLDING_REGISTERS,
                   request->write_single.address, 1);
        part->has_values = 1;
        part->value_low = part->value_high = request->write_single.value;
        break;
    case MB_FC_WRITE_MULTIPLE_COILS:
        table_part(part, MB_POLICY_WRITE, MB_POLICY_COILS, request->write_multiple.address,
                   request->write_multiple.quantity);
        bit_values(part, request->write_multiple.values, request->write_multiple.quantity);
        break;
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        table_part(part, MB_POLICY_WRITE, MB_POLICY_HOLDING_REGISTERS,
                   request->write_multiple.address, request->write_multiple.quantity);
        register_values(part, request->write_multiple.values, request->write_multiple.quantity);
        break;
    case MB_FC_MASK_WRITE_REGISTER: {
        /* The result is (current AND and) OR (or AND NOT and): whatever the current value, it
         * lies between the bits `or` sets alone and those plus every bit `and` keeps. */
        uint16_t and_mask = request->mask_write.and_mask;
        table_part(part, MB_POLICY_WRITE, MB_POLICY_HOLDING_REGISTERS, request->mask_write.address,
                   1);
        part->has_values = 1;
        part->value_low = (uint16_t)(request->mask_write.or_mask & ~and_mask);
        part->value_high = (uint16_t)(part->value_low | and_mask);
        break;
    }
    case MB_FC_READ_FIFO_QUEUE:
        table_part(part, MB_POLICY_READ, MB_POLICY_FIFOS, request->fifo.address, 1);
        break;
    case MB_FC_DIAGNOSTICS:
        part->table = MB_POLICY_DEVICE;
        part->sub_known = 1;
        part->sub = request->diagnostics.sub_function;
        part->access = diagnostics_access(part->sub);
        break;
    case MB_FC_ENCAPSULATED_INTERFACE:
        part->table = MB_POLICY_DEVICE;
        part->sub_known = 1;
        part->sub = request->device_id.mei_type;
        part->access =
            part->sub == MB_MEI_DEVICE_ID ? MB_POLICY_READ : MB_POLICY_READ | MB_POLICY_WRITE;
        break;
    case MB_FC_READ_EXCEPTION_STATUS:
    case MB_FC_GET_COMM_EVENT_COUNTER:
    case MB_FC_GET_COMM_EVENT_LOG:
    case MB_FC_REPORT_SERVER_ID:
        part->table = MB_POLICY_DEVICE;
        part->access = MB_POLICY_READ;
        break;
    default:
        /* User-defined codes: nothing says what they do, so they need both. */
        part->table = MB_POLICY_DEVICE;
        part->access = MB_POLICY_READ | MB_POLICY_WRITE;
        break;
    }
    return 1;
}

/* Fills the next part. Returns 1, or 0 when the request has no more. */
static int parts_next(struct parts *parts, struct part *part) {
    memset(part, 0, sizeof *part);
    part->function = parts->length > 0 ? parts->pdu[0] : 0;
    if (parts->decoded) {
        part->decoded = 1;
        if (decoded_part(parts, part)) {
            parts->yielded++;
            return 1;
        }
        if (parts->yielded > 0)
            return 0;
        /* A decoded request always has a part; should one ever not, it is judged as a request
         * that did not decode rather than slipping through with none. */
        memset(part, 0, sizeof *part);
    } else if (parts->yielded > 0) {
        return 0;
    }
    undecodable_part(parts->pdu, parts->length, part);
    parts->yielded++;
    return 1;
}

/* ---- matching ---- */

static void client_of(const struct mb_policy_identity *who, struct client *client) {
    memset(client, 0, sizeof *client);
    client->role = who->role;
    client->tls = who->tls != 0;
    if (who->address == NULL)
        return;
    if (who->address->sa_family == AF_INET &&
        who->address_length >= (socklen_t)sizeof(struct sockaddr_in)) {
        struct sockaddr_in in;
        memcpy(&in, who->address, sizeof in);
        client->family = AF_INET;
        memcpy(client->address, &in.sin_addr, 4);
    } else if (who->address->sa_family == AF_INET6 &&
               who->address_length >= (socklen_t)sizeof(struct sockaddr_in6)) {
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
        struct sockaddr_in6 in6;
        memcpy(&in6, who->address, sizeof in6);
        client->family = AF_INET6;
        memcpy(client->address, &in6.sin6_addr, 16);
        /* An IPv4 client on a dual-stack socket is an IPv4 client. */
        if (memcmp(client->address, mapped, sizeof mapped) == 0) {
            client->family = AF_INET;
            memmove(client->address, client->address + 12, 4);
            memset(client->address + 4, 0, 12);
        }
    }
}

static int source_matches(const struct mb_policy_source *source, const struct client *client) {
    if (source->family != client->family)
        return 0;
    unsigned whole = source->prefix / 8u, rest = source->prefix % 8u;
    if (memcmp(source->address, client->address, whole) != 0)
        return 0;
    if (rest == 0)
        return 1;
    uint8_t mask = (uint8_t)(0xFFu << (8 - rest));
    return (source->address[whole] & mask) == (client->address[whole] & mask);
}

static int who_matches(const struct mb_policy *policy, const struct mb__policy_rule *rule,
                       const struct client *client) {
    if (rule->transport == MB_POLICY_TLS_ONLY && !client->tls)
        return 0;
    if (rule->transport == MB_POLICY_PLAIN_ONLY && client->tls)
        return 0;
    if (rule->role_flags != 0 || rule->role_count > 0) {
        if (client->role == NULL) {
            if (!(rule->role_flags & MB_POLICY_ROLE_NONE))
                return 0;
        } else if (!(rule->role_flags & MB_POLICY_ROLE_ANY)) {
            const uint32_t *roles = mb__policy_roles(policy) + rule->roles;
            uint32_t i = 0;
            while (i < rule->role_count && strcmp(mb__policy_text(policy, roles[i]), client->role))
                i++;
            if (i == rule->role_count)
                return 0;
        }
    }
    if (rule->source_count > 0) {
        const struct mb_policy_source *sources = mb__policy_sources(policy) + rule->sources;
        uint32_t i = 0;
        while (i < rule->source_count && !source_matches(&sources[i], client))
            i++;
        if (i == rule->source_count)
            return 0;
    }
    return 1;
}

/*
 * Whether first..last is inside one of the ranges (for a rule that allows), or touches one of
 * them (for a rule that refuses: a guard on some addresses must not be slipped past by a
 * request that also covers the addresses next to them).
 */
static int covered(const struct mb_policy_range *ranges, uint32_t count, uint32_t first,
                   uint32_t last, int touching) {
    /* Merged and sorted at creation, so the scan stops at the first range past the request. */
    for (uint32_t i = 0; i < count; i++) {
        if (ranges[i].first > (touching ? last : first))
            return 0;
        if (ranges[i].last >= (touching ? first : last))
            return 1;
    }
    return 0;
}

/*
 * FC 24 returns the FIFO count register at its pointer and up to 31 queued values after it, all
 * holding registers: a rule on holding registers judges it as a read of pointer .. pointer + 31
 * (cut at 65535), so a guard on those registers cannot be read around through the queue.
 */
static int holding_covered(const struct mb_policy *policy, const struct mb__policy_rule *rule,
                           const struct part *part, int touching) {
    uint32_t last = part->first + MB_MAX_FIFO_COUNT;
    if (last > 0xFFFF)
        last = 0xFFFF;
    return covered(mb__policy_ranges(policy) + rule->ranges[MB_POLICY_HOLDING_REGISTERS],
                   rule->range_count[MB_POLICY_HOLDING_REGISTERS], part->first, last, touching);
}

/* Whether the part's table is one the rule grants, and its addresses are covered. */
static int table_matches(const struct mb_policy *policy, const struct mb__policy_rule *rule,
                         const struct part *part) {
    const struct mb_policy_range *ranges = mb__policy_ranges(policy);
    int touching = rule->action != MB_POLICY_ALLOW;
    if (part->table == UNKNOWN_TABLE)
        return 0;
    /* FC 24 reads holding registers: a rule on them matches it too. */
    if (part->table == MB_POLICY_FIFOS && (rule->tables >> MB_POLICY_HOLDING_REGISTERS & 1u) &&
        holding_covered(policy, rule, part, touching))
        return 1;
    if (!(rule->tables >> part->table & 1u))
        return 0;
    if (part->table == MB_POLICY_DEVICE)
        return 1;
    if (part->table == MB_POLICY_FILES)
        return covered(ranges + rule->ranges[MB_POLICY_FILES], rule->range_count[MB_POLICY_FILES],
                       part->file, part->file, touching) &&
               covered(ranges + rule->records, rule->record_count, part->first, part->last,
                       touching);
    return covered(ranges + rule->ranges[part->table], rule->range_count[part->table], part->first,
                   part->last, touching);
}

static int what_matches(const struct mb_policy *policy, const struct mb__policy_rule *rule,
                        uint8_t unit_id, const struct part *part) {
    if (!mb__bit(rule->units, unit_id) || !mb__bit(rule->functions, part->function))
        return 0;
    if ((part->access & rule->access) != part->access)
        return 0;
    /* A restriction to some sub-functions or MEI types cannot hold for a request whose own is
     * unknown. */
    if (part->function == MB_FC_DIAGNOSTICS &&
        (part->sub_known ? !(rule->diagnostics >> part->sub & 1u)
                         : rule->diagnostics != MB__DIAGNOSTICS_DEFINED))
        return 0;
    if (part->function == MB_FC_ENCAPSULATED_INTERFACE) {
        unsigned mei = !part->sub_known                ? MB__MEI_ALL
                       : part->sub == MB_MEI_DEVICE_ID ? MB_POLICY_MEI_DEVICE_ID
                                                       : MB_POLICY_MEI_CANOPEN;
        if ((rule->encapsulated & mei) != mei)
            return 0;
    }
    if (rule->tables != 0 && !table_matches(policy, rule, part))
        return 0;
    if (rule->value_limit && (part->access & MB_POLICY_WRITE) &&
        (!part->has_values || part->value_low < rule->value_min ||
         part->value_high > rule->value_max))
        return 0;
    return 1;
}

/* Whether each rule's "who" holds, worked out once per request however many parts it has. */
struct who_cache {
    uint8_t known[MB_POLICY_MAX_RULES / 8];
    uint8_t matches[MB_POLICY_MAX_RULES / 8];
};

/* The index of the first rule that matches the part, or -1. */
/* The first rule from `start` on that matches the part (-1: none), passing over the rules in
 * monitor mode when `enforced_only`. */
static int first_match(const struct mb_policy *policy, const struct client *client, uint8_t unit_id,
                       const struct part *part, struct who_cache *cache, uint32_t start,
                       int enforced_only) {
    const struct mb__policy_rule *rules = mb__policy_rules(policy);
    for (uint32_t i = start; i < policy->rule_count; i++) {
        if ((enforced_only && rules[i].monitor) || !what_matches(policy, &rules[i], unit_id, part))
            continue;
        uint8_t bit = (uint8_t)(1u << (i % 8));
        if (!(cache->known[i / 8] & bit)) {
            cache->known[i / 8] |= bit;
            if (who_matches(policy, &rules[i], client))
                cache->matches[i / 8] |= bit;
        }
        if (cache->matches[i / 8] & bit)
            return (int)i;
    }
    return -1;
}

/* ---- the reason ---- */

/* The reason being written: appends cut at the end of the buffer, which stays terminated. No
 * printf: formatting is most of what deciding costs, so it is kept to copying bytes. */
struct text {
    char *buffer;
    size_t capacity; /* at least 1 */
    size_t used;
};

static void append(struct text *text, const char *piece) {
    size_t room = text->capacity - 1 - text->used;
    size_t length = strlen(piece);
    if (length > room)
        length = room;
    memcpy(text->buffer + text->used, piece, length);
    text->used += length;
    text->buffer[text->used] = '\0';
}

static void append_number(struct text *text, unsigned long number) {
    char digits[24];
    size_t at = sizeof digits - 1;
    digits[at] = '\0';
    do {
        digits[--at] = (char)('0' + number % 10);
        number /= 10;
    } while (number != 0);
    append(text, digits + at);
}

/* Two uppercase hex digits, as exception codes and FC 8 sub-functions are written. */
static void append_hex_byte(struct text *text, unsigned byte) {
    static const char hex[] = "0123456789ABCDEF";
    char digits[3] = {hex[byte >> 4 & 0xF], hex[byte & 0xF], '\0'};
    append(text, digits);
}

/* An address as inet_ntop() writes it for IPv4, and as RFC 5952 says for IPv6 (lowercase, no
 * leading zeros, the longest run of two or more zero groups, the first on a tie, as "::"). */
static void append_address(struct text *text, const struct client *client) {
    static const char hex[] = "0123456789abcdef";
    if (client->family == AF_INET) {
        for (int i = 0; i < 4; i++) {
            if (i > 0)
                append(text, ".");
            append_number(text, client->address[i]);
        }
        return;
    }
    unsigned groups[8];
    int run_start = -1, run_length = 0;
    for (int i = 0; i < 8; i++)
        groups[i] = (unsigned)client->address[2 * i] << 8 | client->address[2 * i + 1];
    for (int i = 0; i < 8;) {
        int j = i;
        while (j < 8 && groups[j] == 0)
            j++;
        if (j - i > run_length && j - i >= 2) {
            run_start = i;
            run_length = j - i;
        }
        i = j > i ? j : i + 1;
    }
    for (int i = 0; i < 8; i++) {
        if (i == run_start) {
            append(text, "::");
            i += run_length - 1;
            continue;
        }
        if (i > 0 && i != run_start + run_length)
            append(text, ":");
        char digits[5];
        size_t used = 0;
        for (int shift = 12; shift >= 0; shift -= 4)
            if ((groups[i] >> shift) != 0 || shift == 0)
                digits[used++] = hex[groups[i] >> shift & 0xF];
        digits[used] = '\0';
        append(text, digits);
    }
}

/* A role as it goes into the reason: at most 32 bytes, anything that is not printable ASCII or
 * that would end the quotes shown as '?', so the reason stays one plain line. */
static void append_role(struct text *text, const char *role) {
    char shown[40];
    size_t length = 0;
    for (; role[length] != '\0' && length < 32; length++) {
        unsigned char c = (unsigned char)role[length];
        shown[length] = c < 0x20 || c >= 0x7F || c == '\'' || c == '"' || c == '\\' ? '?' : (char)c;
    }
    shown[length] = '\0';
    append(text, "role '");
    append(text, shown);
    append(text, role[length] != '\0' ? "...'" : "'");
}

static void append_client(struct text *text, const struct client *client) {
    if (client->role != NULL)
        append_role(text, client->role);
    else
        append(text, client->tls ? "no role" : "plain TCP");
    if (client->family == 0) {
        append(text, " from an unknown address");
    } else {
        append(text, " from ");
        append_address(text, client);
    }
    if (client->role != NULL && !client->tls)
        append(text, " over plain TCP");
}

static const char *diagnostics_name(uint16_t sub_function) {
    static const char *const names[] = {
        [0x00] = "return query data",
        [0x01] = "restart communications",
        [0x02] = "return diagnostic register",
        [0x03] = "change ASCII delimiter",
        [0x04] = "force listen-only mode",
        [0x0A] = "clear counters",
        [0x0B] = "return bus message count",
        [0x0C] = "return bus communication error count",
        [0x0D] = "return bus exception error count",
        [0x0E] = "return server message count",
        [0x0F] = "return server no response count",
        [0x10] = "return server NAK count",
        [0x11] = "return server busy count",
        [0x12] = "return bus character overrun count",
        [0x14] = "clear overrun counter",
    };
    if (sub_function < sizeof names / sizeof names[0] && names[sub_function] != NULL)
        return names[sub_function];
    return "reserved sub-function";
}

static const char *device_part_name(const struct part *part) {
    switch (part->function) {
    case MB_FC_READ_EXCEPTION_STATUS:
        return "read exception status";
    case MB_FC_DIAGNOSTICS:
        return diagnostics_name(part->sub);
    case MB_FC_GET_COMM_EVENT_COUNTER:
        return "get comm event counter";
    case MB_FC_GET_COMM_EVENT_LOG:
        return "get comm event log";
    case MB_FC_REPORT_SERVER_ID:
        return "report server id";
    case MB_FC_ENCAPSULATED_INTERFACE:
        return part->sub == MB_MEI_DEVICE_ID ? "read device identification"
                                             : "CANopen general reference";
    default:
        return mb_function_is_user_defined(part->function) ? "user-defined function"
                                                           : "reserved function";
    }
}

/* "first" or "first..last". */
static void append_span(struct text *text, uint32_t first, uint32_t last) {
    append_number(text, first);
    if (last != first) {
        append(text, "..");
        append_number(text, last);
    }
}

static void append_part(struct text *text, const struct part *part) {
    static const char *const nouns[][2] = {
        {" coil ", " coils "},
        {" discrete input ", " discrete inputs "},
        {" holding register ", " holding registers "},
        {" input register ", " input registers "},
    };
    int single = part->first == part->last;
    if (!part->decoded) {
        append(text, "undecodable request");
        return;
    }
    if (part->table == MB_POLICY_DEVICE) {
        append(text, device_part_name(part));
        return;
    }
    if (part->table == MB_POLICY_FIFOS) {
        append(text, "read FIFO queue at ");
        append_number(text, part->first);
        return;
    }
    append(text, part->access == MB_POLICY_WRITE ? "write" : "read");
    if (part->table == MB_POLICY_FILES) {
        append(text, " file ");
        append_number(text, part->file);
        append(text, single ? " record " : " records ");
    } else {
        append(text, nouns[part->table][!single]);
    }
    append_span(text, part->first, part->last);
}

static void append_function(struct text *text, uint8_t unit_id, const struct part *part) {
    append(text, " on unit ");
    append_number(text, unit_id);
    append(text, " (FC ");
    append_number(text, part->function);
    if (part->function == MB_FC_DIAGNOSTICS && part->sub_known) {
        append(text, "/");
        append_hex_byte(text, part->sub);
    } else if (part->function == MB_FC_ENCAPSULATED_INTERFACE && part->sub_known) {
        append(text, "/");
        append_number(text, part->sub);
    }
    append(text, ")");
}

/* " by rule 'name'" */
static void append_rule(struct text *text, const char *name) {
    append(text, " by rule '");
    append(text, name);
    append(text, "'");
}

/* A default deny for a role that a rule names in another case ("Operator" against
 * "operator"): the likeliest mistake of a new site, said where it will be read. */
static void append_case_hint(struct text *text, const struct mb_policy *policy, const char *role) {
    const struct mb__policy_rule *rules = mb__policy_rules(policy);
    for (uint32_t r = 0; r < policy->rule_count; r++) {
        const uint32_t *roles = mb__policy_roles(policy) + rules[r].roles;
        for (uint32_t i = 0; i < rules[r].role_count; i++) {
            const char *named = mb__policy_text(policy, roles[i]);
            if (strcmp(named, role) == 0 || strcasecmp(named, role) != 0)
                continue;
            append(text, "; ");
            append_role(text, role);
            append(text, " differs only in case from ");
            append_role(text, named);
            append(text, " of rule '");
            append(text, mb__policy_text(policy, rules[r].name));
            append(text, "' (roles are case-sensitive)");
            return;
        }
    }
}

/* ---- deciding ---- */

static int severity(enum mb_policy_action action) {
    return action == MB_POLICY_ALLOW  ? 0
           : action == MB_POLICY_DENY ? 1
           : action == MB_POLICY_DROP ? 2
                                      : 3;
}

/* How much a part's decision weighs: allowed 0; refusals in monitor mode 1..3 (deny, drop,
 * close); enforced refusals 4..6, above every monitored one, so that a request with any part an
 * enforced rule refuses is refused whatever a monitor rule said of its other parts. */
static int weight(const struct mb_policy *policy, const struct mb__policy_rule *rules, int rule) {
    if (rule < 0)
        return policy->monitor_default ? 1 : 4;
    int level = severity((enum mb_policy_action)rules[rule].action);
    return level == 0 || rules[rule].monitor ? level : level + 3;
}

static void default_deny(struct mb_policy_decision *decision) {
    decision->monitor = 0;
    decision->action = MB_POLICY_DENY;
    decision->exception = MB_EX_ILLEGAL_FUNCTION;
    decision->rule = -1;
    decision->rule_name = "default";
    decision->access = 0;
    decision->reason[0] = '\0';
}

/* What the allowing rules of a request were: the first, a second different one, and whether
 * there were more. */
struct allowers {
    int first;
    int second;
    int more;
};

static void note_allower(struct allowers *allowers, int rule) {
    if (allowers->first < 0)
        allowers->first = rule;
    else if (rule != allowers->first && allowers->second < 0)
        allowers->second = rule;
    else if (rule != allowers->first && rule != allowers->second)
        allowers->more = 1;
}

static const char missing_argument[] =
    "no policy decision possible: an argument is missing (default deny)";

int mb_policy_decide_decoded(const struct mb_policy *policy, const struct mb_policy_identity *who,
                             uint8_t unit_id, const uint8_t *pdu, size_t pdu_length,
                             const struct mb_request *request,
                             struct mb_policy_decision *decision) {
    if (decision != NULL)
        default_deny(decision);
    if (policy == NULL || who == NULL || pdu == NULL || decision == NULL) {
        if (decision != NULL) {
            decision->access = MB_POLICY_READ | MB_POLICY_WRITE;
            memcpy(decision->reason, missing_argument, sizeof missing_argument);
        }
        return MB_EINVAL;
    }
    const struct mb__policy_rule *rules = mb__policy_rules(policy);
    struct client client;
    struct parts parts;
    struct part part, first = {0}, second = {0}, decisive = {0};
    struct who_cache cache;
    struct allowers allowers = {-1, -1, 0};
    int decisive_rule = -1, decisive_severity = -1, writes = 0;
    size_t count = 0;
    memset(&cache, 0, sizeof cache);
    client_of(who, &client);
    parts_start(&parts, pdu, pdu_length, request);
    while (parts_next(&parts, &part)) {
        int rule = first_match(policy, &client, unit_id, &part, &cache, 0, 0);
        int level = weight(policy, rules, rule);
        if (rule >= 0 && rules[rule].monitor) {
            /* A rule in monitor mode reports the part; what is enforced is what the policy
             * without its monitored rules decides: the enforced rules after it, or an enforced
             * default deny, still refuse what they refuse. Monitor mode never weakens. */
            int enforced =
                first_match(policy, &client, unit_id, &part, &cache, (uint32_t)rule + 1, 1);
            int enforced_level = enforced >= 0             ? weight(policy, rules, enforced)
                                 : policy->monitor_default ? 0
                                                           : weight(policy, rules, -1);
            if (enforced_level > 3) {
                rule = enforced;
                level = enforced_level;
            }
        }
        if (count == 0)
            first = part;
        else if (count == 1)
            second = part;
        count++;
        if (level > decisive_severity) {
            decisive = part;
            decisive_rule = rule;
            decisive_severity = level;
        }
        if (level == 0)
            note_allower(&allowers, rule);
        writes |= part.access & MB_POLICY_WRITE;
        decision->access |= part.access;
    }

    /* An allowed read is the common case and nobody audits it: the decision is made, and the
     * reason (most of the cost of deciding) is left empty. */
    if (decisive_severity == 0 && !writes && decisive_rule >= 0 && !who->explain) {
        const struct mb__policy_rule *rule = &rules[decisive_rule];
        decision->action = MB_POLICY_ALLOW;
        decision->exception = rule->exception;
        decision->rule = decisive_rule;
        decision->rule_name = mb__policy_text(policy, rule->name);
        return 0;
    }

    struct text text = {decision->reason, sizeof decision->reason, 0};
    append_client(&text, &client);
    append(&text, ": ");
    if (decisive_severity == 0) {
        /* Allowed: every part was, so the reason shows them all (or the first two). */
        append_part(&text, &first);
        if (count == 2) {
            append(&text, " and ");
            append_part(&text, &second);
        } else if (count > 2) {
            append(&text, " and ");
            append_number(&text, count - 1);
            append(&text, " more sub-requests");
        }
        append_function(&text, unit_id, &first);
    } else {
        append_part(&text, &decisive);
        append_function(&text, unit_id, &decisive);
    }
    decision->monitor = decisive_severity >= 1 && decisive_severity <= 3;
    if (decisive_rule < 0) {
        append(&text, " matched no rule (default deny)");
        if (client.role != NULL)
            append_case_hint(&text, policy, client.role);
        if (decision->monitor)
            append(&text, " [monitor mode: not enforced]");
        return 0;
    }
    const struct mb__policy_rule *rule = &rules[decisive_rule];
    decision->action = (enum mb_policy_action)rule->action;
    decision->exception = rule->exception;
    decision->rule = decisive_rule;
    decision->rule_name = mb__policy_text(policy, rule->name);
    switch (decision->action) {
    case MB_POLICY_ALLOW:
        if (allowers.second < 0) {
            append(&text, " allowed");
            append_rule(&text, decision->rule_name);
            break;
        }
        append(&text, " allowed by rules '");
        append(&text, decision->rule_name);
        append(&text, allowers.more ? "', '" : "' and '");
        append(&text, mb__policy_text(policy, rules[allowers.second].name));
        append(&text, allowers.more ? "' and others" : "'");
        break;
    case MB_POLICY_DENY:
        append(&text, " denied");
        append_rule(&text, decision->rule_name);
        if (rule->exception != MB_EX_ILLEGAL_FUNCTION) {
            append(&text, " with exception ");
            append_hex_byte(&text, rule->exception);
        }
        break;
    case MB_POLICY_DROP:
        append(&text, " dropped");
        append_rule(&text, decision->rule_name);
        break;
    case MB_POLICY_CLOSE:
        append(&text, " connection closed");
        append_rule(&text, decision->rule_name);
        break;
    }
    if (decision->monitor)
        append(&text, " [monitor mode: not enforced]");
    return 0;
}

/* The decoding of `pdu` into *request: `request`, or NULL when it does not decode. */
static const struct mb_request *decoded(const uint8_t *pdu, size_t pdu_length,
                                        struct mb_request *request) {
    return pdu != NULL && mb_request_decode(pdu, pdu_length, request) == 0 ? request : NULL;
}

int mb_policy_decide(const struct mb_policy *policy, const struct mb_policy_identity *who,
                     uint8_t unit_id, const uint8_t *pdu, size_t pdu_length,
                     struct mb_policy_decision *decision) {
    struct mb_request request;
    return mb_policy_decide_decoded(policy, who, unit_id, pdu, pdu_length,
                                    decoded(pdu, pdu_length, &request), decision);
}

unsigned mb_policy_decoded_access(const uint8_t *pdu, size_t pdu_length,
                                  const struct mb_request *request) {
    if (pdu == NULL)
        return MB_POLICY_READ | MB_POLICY_WRITE;
    struct parts parts;
    struct part part;
    unsigned access = 0;
    parts_start(&parts, pdu, pdu_length, request);
    while (parts_next(&parts, &part))
        access |= part.access;
    return access;
}

unsigned mb_policy_request_access(const uint8_t *pdu, size_t pdu_length) {
    struct mb_request request;
    return mb_policy_decoded_access(pdu, pdu_length, decoded(pdu, pdu_length, &request));
}
