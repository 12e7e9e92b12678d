/* SPDX-License-Identifier: MIT */
/*
 * mbsec policy learn: a least-privilege policy from what clients were seen doing.
 *
 * Every request of the inputs is split into parts as the policy splits it (include/mbsec/policy.h)
 * and counted in a group: who (a role, or a source address or network), unit, function code (FC
 * 8 sub-function, FC 43 MEI type) and, for FC 23, its write or read part. A group gathers the
 * addresses touched (merged ranges), the values written, how many requests and when. Groups
 * become rules that allow exactly that; rules that differ only in their functions, then only in
 * their units, then only in who, are joined, so that the policy stays short without allowing
 * more. The result is YAML, loaded back through the configuration parser before it is written.
 */
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include <arpa/inet.h>
#include <netinet/in.h>

#include "app/commands.h"
#include "app/common/json.h"
#include "app/common/log.h"
#include "app/config/config.h"
#include "app/policy/index_table.h"
#include "app/policy/inputs.h"
#include "app/policy/policy_command.h"
#include "app/policy/ranges.h"
#include "mbsec/pdu.h"
#include "mbsec/policy.h"
#include "mbsec/version.h"

#define MAX_GROUPS (1u << 22) /* distinct (who, unit, function) seen: a bound on memory */
#define MAX_LEFT_OUT 32

enum part_kind { PART_WHOLE = 0, PART_WRITE = 1, PART_READ = 2 }; /* the last two: FC 23 */
enum { NO_TABLE = 255 };

/* ---- who ---- */

struct identity {
    int by_role; /* 1: `role`; 0: `source` */
    struct mb_policy_source source;
    char role[MB_POLICY_MAX_ROLE + 1];
};

/* ---- what one client did with one function on one unit ---- */

struct group {
    uint64_t key;
    uint32_t identity;
    uint8_t unit;
    uint8_t function;
    int16_t sub; /* FC 8 sub-function, FC 43 MEI type; -1 */
    uint8_t part;
    uint8_t table; /* enum mb_policy_table, NO_TABLE for the device */
    uint8_t write;
    uint8_t coils;
    struct ranges addresses; /* table addresses, FIFO pointers, file numbers */
    struct ranges records;   /* files: record numbers */
    int has_values;
    uint16_t value_min, value_max;
    uint64_t count, partial;
    int64_t first_us, last_us;
};

/* A rule in the making: what groups become, then joined. */
struct draft {
    int alive;
    uint32_t *identities; /* sorted indices into the identity list */
    size_t identity_count;
    int by_role;
    struct ranges units;
    uint8_t functions[16]; /* bitmap of function codes */
    uint32_t diagnostics;  /* FC 8 sub-function bits */
    uint8_t encapsulated;  /* FC 43 MEI bits */
    uint8_t access;        /* FC 23 parts: MB_POLICY_READ or MB_POLICY_WRITE; else 0 */
    uint8_t table;
    uint8_t coils;
    struct ranges addresses;
    struct ranges records;
    int has_values;
    uint16_t value_min, value_max;
    uint64_t count, partial, widened;
    int64_t first_us, last_us;
    char name[MB_POLICY_MAX_NAME + 1];
};

struct left_out {
    uint8_t function;
    int sub;
};

struct learn {
    /* options */
    int by_source;
    int subnet4, subnet6;
    uint32_t round;
    uint32_t value_margin;
    int value_margin_percent;
    int no_values;
    int monitor;
    struct left_out leave_out[MAX_LEFT_OUT];
    size_t leave_out_count;
    /* what was seen */
    struct identity *identities;
    size_t identity_count, identity_capacity;
    struct index_table identity_index;
    struct group *groups;
    size_t group_count, group_capacity;
    struct index_table group_index;
    int out_of_memory;
    uint64_t requests, learned;
    uint64_t undecodable, anonymous, unnamed, left_out;
    uint64_t left_out_by[MAX_LEFT_OUT];
    int64_t first_us, last_us;
};

/* ---- identities ---- */

static uint64_t identity_hash(const struct identity *identity) {
    uint64_t hash = INDEX_TABLE_HASH_START;
    hash = index_table_mix(hash, &identity->by_role, sizeof identity->by_role);
    if (identity->by_role)
        hash = index_table_mix(hash, identity->role, strlen(identity->role));
    else
        hash = index_table_mix(hash, &identity->source, sizeof identity->source);
    return index_table_finish(hash);
}

static int identity_equal(const struct identity *a, const struct identity *b) {
    if (a->by_role != b->by_role)
        return 0;
    return a->by_role ? strcmp(a->role, b->role) == 0
                      : memcmp(&a->source, &b->source, sizeof a->source) == 0;
}

static uint64_t identity_hash_at(const void *items, uint32_t index) {
    return identity_hash(&((const struct identity *)items)[index]);
}

static int identity_is(const void *items, uint32_t index, const void *wanted) {
    return identity_equal(&((const struct identity *)items)[index], wanted);
}

/* The index of `identity` in the list, added when new; -1 when out of memory. */
static long identity_index(struct learn *learn, const struct identity *identity) {
    uint64_t hash = identity_hash(identity);
    long found =
        index_table_find(&learn->identity_index, hash, identity_is, learn->identities, identity);
    if (found >= 0)
        return found;
    struct identity *identities =
        index_table_reserve(learn->identities, &learn->identity_capacity, learn->identity_count,
                            sizeof *identities, 64);
    if (identities == NULL)
        return -1;
    learn->identities = identities;
    size_t index = learn->identity_count;
    learn->identities[index] = *identity;
    if (index_table_add(&learn->identity_index, hash, (uint32_t)index, index, identity_hash_at,
                        learn->identities) != 0)
        return -1;
    learn->identity_count++;
    return (long)index;
}

/* Who sent `request`, as the options say: its role, or its address (as a network of
 * --subnet). 0, or -1 when it carries neither. */
static int identify(const struct learn *learn, const struct observed *request,
                    struct identity *identity) {
    memset(identity, 0, sizeof *identity);
    if (request->role != NULL && !learn->by_source) {
        identity->by_role = 1;
        snprintf(identity->role, sizeof identity->role, "%s", request->role);
        return 0;
    }
    struct mb_policy_source *source = &identity->source;
    if (request->address_length == 0)
        return -1;
    if (request->address.ss_family == AF_INET) {
        const struct sockaddr_in *in = (const struct sockaddr_in *)&request->address;
        source->family = AF_INET;
        source->prefix = (uint8_t)learn->subnet4;
        memcpy(source->address, &in->sin_addr, 4);
    } else if (request->address.ss_family == AF_INET6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&request->address;
        static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
        if (memcmp(in6->sin6_addr.s6_addr, mapped, 12) == 0) {
            /* An IPv4 client however the socket saw it, as the policy takes it. */
            source->family = AF_INET;
            source->prefix = (uint8_t)learn->subnet4;
            memcpy(source->address, in6->sin6_addr.s6_addr + 12, 4);
        } else {
            source->family = AF_INET6;
            source->prefix = (uint8_t)learn->subnet6;
            memcpy(source->address, in6->sin6_addr.s6_addr, 16);
        }
    } else {
        return -1;
    }
    /* Bits past the prefix cleared: the network the address is in. */
    size_t bytes = source->family == AF_INET ? 4 : 16;
    for (size_t i = 0; i < bytes; i++) {
        int keep = (int)source->prefix - (int)(8 * i);
        if (keep <= 0)
            source->address[i] = 0;
        else if (keep < 8)
            source->address[i] &= (uint8_t)(0xFF << (8 - keep));
    }
    return 0;
}

/* ---- groups ---- */

static uint64_t group_key(uint32_t identity, uint8_t unit, uint8_t function, int sub,
                          enum part_kind part) {
    return (uint64_t)identity << 32 | (uint64_t)unit << 24 | (uint64_t)function << 16 |
           (uint64_t)(sub + 1) << 4 | (uint64_t)part;
}

static uint64_t key_hash(uint64_t key) {
    return index_table_finish(key * 0x9E3779B97F4A7C15ull);
}

static uint64_t group_hash_at(const void *items, uint32_t index) {
    return key_hash(((const struct group *)items)[index].key);
}

static int group_is(const void *items, uint32_t index, const void *wanted) {
    return ((const struct group *)items)[index].key == *(const uint64_t *)wanted;
}

/* The group of a part, made when new with the table and access its function and part imply
 * (the key fixes them). */
static struct group *group_of(struct learn *learn, uint32_t identity, uint8_t unit,
                              uint8_t function, int sub, enum part_kind part, uint8_t table,
                              int write) {
    uint64_t key = group_key(identity, unit, function, sub, part);
    uint64_t hash = key_hash(key);
    long found = index_table_find(&learn->group_index, hash, group_is, learn->groups, &key);
    if (found >= 0)
        return &learn->groups[found];
    if (learn->group_count == MAX_GROUPS)
        return NULL;
    struct group *groups = index_table_reserve(learn->groups, &learn->group_capacity,
                                               learn->group_count, sizeof *groups, 256);
    if (groups == NULL)
        return NULL;
    learn->groups = groups;
    size_t index = learn->group_count;
    struct group *group = &learn->groups[index];
    memset(group, 0, sizeof *group);
    group->key = key;
    group->identity = identity;
    group->unit = unit;
    group->function = function;
    group->sub = (int16_t)sub;
    group->part = (uint8_t)part;
    group->table = table;
    group->write = (uint8_t)(write != 0);
    group->coils = table == MB_POLICY_COILS;
    if (index_table_add(&learn->group_index, hash, (uint32_t)index, index, group_hash_at,
                        learn->groups) != 0)
        return NULL;
    learn->group_count++;
    return group;
}

static void take_value(struct group *group, uint16_t value) {
    if (!group->has_values) {
        group->has_values = 1;
        group->value_min = group->value_max = value;
        return;
    }
    if (value < group->value_min)
        group->value_min = value;
    if (value > group->value_max)
        group->value_max = value;
}

/* The register values of `count` big-endian registers. */
static void take_registers(struct group *group, const uint8_t *values, uint32_t count) {
    for (uint32_t i = 0; i < count; i++)
        take_value(group, (uint16_t)(values[2 * i] << 8 | values[2 * i + 1]));
}

/* One part seen: its group counted, its addresses and values taken. */
static int count_part(struct learn *learn, uint32_t identity, const struct observed *request,
                      uint8_t function, int sub, enum part_kind part, uint8_t table, int write,
                      struct group **out) {
    struct group *group =
        group_of(learn, identity, request->unit, function, sub, part, table, write);
    if (group == NULL) {
        learn->out_of_memory = 1;
        return -1;
    }
    /* 0 is an unknown time (an audit record's that did not parse): never the first. */
    if (request->time_us != 0 && (group->first_us == 0 || request->time_us < group->first_us))
        group->first_us = request->time_us;
    if (request->time_us > group->last_us)
        group->last_us = request->time_us;
    group->count++;
    group->partial += (uint64_t)(write && request->values_partial);
    *out = group;
    return 0;
}

static int left_out(struct learn *learn, uint8_t function, int sub) {
    for (size_t i = 0; i < learn->leave_out_count; i++)
        if (learn->leave_out[i].function == function &&
            (learn->leave_out[i].sub < 0 || learn->leave_out[i].sub == sub)) {
            learn->left_out_by[i]++;
            learn->left_out++;
            return 1;
        }
    return 0;
}

#define ADD(set, first, last)                    \
    do {                                         \
        if (ranges_add(set, first, last) != 0) { \
            learn->out_of_memory = 1;            \
            return -1;                           \
        }                                        \
    } while (0)

/* 1 when a request's addresses run past 65535, or its file records past 9999: a device refuses
 * it (02), and no policy range can allow it. */
static int past_the_end(const struct mb_request *decoded) {
    switch (decoded->function) {
    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD: {
        size_t offset = 0;
        struct mb_file_record record;
        while (mb_file_records_next(&decoded->file, &offset, &record) == 1) {
            uint32_t length = record.record_length ? record.record_length : 1;
            if ((uint32_t)record.record_number + length > 10000)
                return 1;
        }
        return 0;
    }
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        return (uint32_t)decoded->read.address + decoded->read.quantity > 65536;
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        return (uint32_t)decoded->write_multiple.address + decoded->write_multiple.quantity > 65536;
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        return (uint32_t)decoded->read_write.read_address + decoded->read_write.read_quantity >
                   65536 ||
               (uint32_t)decoded->read_write.write_address + decoded->read_write.write_quantity >
                   65536;
    default:
        return 0;
    }
}

/* Takes one request into its groups: 0, 1 when it is left out, -1 when out of memory. */
static int learn_request(struct learn *learn, uint32_t identity, const struct observed *request,
                         const struct mb_request *decoded) {
    struct group *group;
    uint8_t function = decoded->function;
    switch (function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS: {
        static const uint8_t tables[] = {0, MB_POLICY_COILS, MB_POLICY_DISCRETE_INPUTS,
                                         MB_POLICY_HOLDING_REGISTERS, MB_POLICY_INPUT_REGISTERS};
        if (count_part(learn, identity, request, function, -1, PART_WHOLE, tables[function], 0,
                       &group) != 0)
            return -1;
        ADD(&group->addresses, decoded->read.address,
            ranges_last(decoded->read.address, decoded->read.quantity));
        return 0;
    }
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER: {
        int coil = function == MB_FC_WRITE_SINGLE_COIL;
        if (count_part(learn, identity, request, function, -1, PART_WHOLE,
                       coil ? MB_POLICY_COILS : MB_POLICY_HOLDING_REGISTERS, 1, &group) != 0)
            return -1;
        ADD(&group->addresses, decoded->write_single.address, decoded->write_single.address);
        take_value(group, coil ? (uint16_t)(decoded->write_single.value == MB_COIL_ON)
                               : decoded->write_single.value);
        return 0;
    }
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS: {
        int coils = function == MB_FC_WRITE_MULTIPLE_COILS;
        uint16_t address = decoded->write_multiple.address;
        uint16_t quantity = decoded->write_multiple.quantity;
        if (count_part(learn, identity, request, function, -1, PART_WHOLE,
                       coils ? MB_POLICY_COILS : MB_POLICY_HOLDING_REGISTERS, 1, &group) != 0)
            return -1;
        ADD(&group->addresses, address, ranges_last(address, quantity));
        if (coils)
            for (uint32_t i = 0; i < quantity; i++)
                take_value(group, (decoded->write_multiple.values[i / 8] >> (i % 8)) & 1u);
        else
            take_registers(group, decoded->write_multiple.values, quantity);
        return 0;
    }
    case MB_FC_MASK_WRITE_REGISTER: {
        if (count_part(learn, identity, request, function, -1, PART_WHOLE,
                       MB_POLICY_HOLDING_REGISTERS, 1, &group) != 0)
            return -1;
        ADD(&group->addresses, decoded->mask_write.address, decoded->mask_write.address);
        /* Every result the mask can give, whatever the register held (as the policy checks). */
        uint16_t low = decoded->mask_write.or_mask & (uint16_t)~decoded->mask_write.and_mask;
        take_value(group, low);
        take_value(group, (uint16_t)(low | decoded->mask_write.and_mask));
        return 0;
    }
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS: {
        if (count_part(learn, identity, request, function, -1, PART_WRITE,
                       MB_POLICY_HOLDING_REGISTERS, 1, &group) != 0)
            return -1;
        ADD(&group->addresses, decoded->read_write.write_address,
            ranges_last(decoded->read_write.write_address, decoded->read_write.write_quantity));
        take_registers(group, decoded->read_write.values, decoded->read_write.write_quantity);
        if (count_part(learn, identity, request, function, -1, PART_READ,
                       MB_POLICY_HOLDING_REGISTERS, 0, &group) != 0)
            return -1;
        ADD(&group->addresses, decoded->read_write.read_address,
            ranges_last(decoded->read_write.read_address, decoded->read_write.read_quantity));
        return 0;
    }
    case MB_FC_READ_FIFO_QUEUE:
        if (count_part(learn, identity, request, function, -1, PART_WHOLE, MB_POLICY_FIFOS, 0,
                       &group) != 0)
            return -1;
        ADD(&group->addresses, decoded->fifo.address, decoded->fifo.address);
        return 0;
    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD: {
        int write = function == MB_FC_WRITE_FILE_RECORD;
        if (count_part(learn, identity, request, function, -1, PART_WHOLE, MB_POLICY_FILES, write,
                       &group) != 0)
            return -1;
        size_t offset = 0;
        struct mb_file_record record;
        while (mb_file_records_next(&decoded->file, &offset, &record) == 1) {
            ADD(&group->addresses, record.file_number, record.file_number);
            /* Records past 9999 were left out before (past_the_end). */
            ADD(&group->records, record.record_number,
                ranges_last(record.record_number, record.record_length));
            /* A record of length 0 is judged as writing the value 0 (policy.h). */
            if (write && record.record_length == 0)
                take_value(group, 0);
            else if (write)
                take_registers(group, record.data, record.record_length);
        }
        return 0;
    }
    case MB_FC_DIAGNOSTICS: {
        uint16_t sub = decoded->diagnostics.sub_function;
        if (sub > 31 || mb_policy_function_name(function, sub) == NULL) {
            learn->unnamed++; /* a sub-function a policy cannot name: never allowed */
            return 1;
        }
        if (left_out(learn, function, sub))
            return 1;
        return count_part(learn, identity, request, function, sub, PART_WHOLE, NO_TABLE, 0, &group);
    }
    case MB_FC_ENCAPSULATED_INTERFACE: {
        int mei = decoded->mei.mei_type;
        if (mei != MB_MEI_DEVICE_ID && mei != MB_MEI_CANOPEN) {
            learn->unnamed++;
            return 1;
        }
        if (left_out(learn, function, mei))
            return 1;
        return count_part(learn, identity, request, function, mei, PART_WHOLE, NO_TABLE, 0, &group);
    }
    default:
        /* FC 7, 11, 12, 17 and user-defined codes: the device. */
        if (left_out(learn, function, -1))
            return 1;
        return count_part(learn, identity, request, function, -1, PART_WHOLE, NO_TABLE, 0, &group);
    }
}

static int learn_visit(void *data, const struct observed *request) {
    struct learn *learn = data;
    learn->requests++;
    struct mb_request decoded;
    if (request->pdu_length == 0 ||
        mb_request_decode(request->pdu, request->pdu_length, &decoded) != 0 ||
        past_the_end(&decoded)) {
        learn->undecodable++; /* a device answers these with an exception: never allowed */
        return 0;
    }
    if (left_out(learn, decoded.function, -1))
        return 0;
    struct identity identity;
    if (identify(learn, request, &identity) != 0) {
        learn->anonymous++;
        return 0;
    }
    long index = identity_index(learn, &identity);
    if (index < 0) {
        learn->out_of_memory = 1;
        return 2;
    }
    int learned = learn_request(learn, (uint32_t)index, request, &decoded);
    if (learned < 0)
        return 2;
    if (learned > 0)
        return 0; /* left out */
    learn->learned++;
    if (request->time_us != 0 && (learn->first_us == 0 || request->time_us < learn->first_us))
        learn->first_us = request->time_us;
    if (request->time_us > learn->last_us)
        learn->last_us = request->time_us;
    return 0;
}

/* ---- drafts: groups made rules, then joined ---- */

static void set_bit(uint8_t *bitmap, unsigned bit) {
    bitmap[bit / 8] = (uint8_t)(bitmap[bit / 8] | 1u << (bit % 8));
}

static int has_bit(const uint8_t *bitmap, unsigned bit) {
    return (bitmap[bit / 8] >> (bit % 8)) & 1u;
}

static int draft_of(const struct learn *learn, const struct group *group, struct draft *draft) {
    memset(draft, 0, sizeof *draft);
    draft->alive = 1;
    draft->identities = malloc(sizeof *draft->identities);
    if (draft->identities == NULL)
        return -1;
    draft->identities[0] = group->identity;
    draft->identity_count = 1;
    draft->by_role = learn->identities[group->identity].by_role;
    if (ranges_add(&draft->units, group->unit, group->unit) != 0)
        return -1;
    set_bit(draft->functions, group->function);
    if (group->function == MB_FC_DIAGNOSTICS)
        draft->diagnostics = 1u << group->sub;
    if (group->function == MB_FC_ENCAPSULATED_INTERFACE)
        draft->encapsulated =
            group->sub == MB_MEI_DEVICE_ID ? MB_POLICY_MEI_DEVICE_ID : MB_POLICY_MEI_CANOPEN;
    draft->access = group->part == PART_WRITE  ? MB_POLICY_WRITE
                    : group->part == PART_READ ? MB_POLICY_READ
                                               : 0;
    draft->table = group->table;
    draft->coils = group->coils;
    if (ranges_copy(&draft->addresses, &group->addresses) != 0 ||
        ranges_copy(&draft->records, &group->records) != 0)
        return -1;
    if (draft->table != NO_TABLE && draft->table != MB_POLICY_FILES)
        ranges_round(&draft->addresses, learn->round);
    /* The policy takes 256 ranges a list: beyond, the nearest are joined. */
    draft->widened += ranges_fit(&draft->addresses, MB_POLICY_MAX_LIST);
    draft->widened += ranges_fit(&draft->records, MB_POLICY_MAX_LIST);
    if (group->write && group->has_values && !learn->no_values) {
        uint32_t low = group->value_min, high = group->value_max;
        uint32_t margin = learn->value_margin;
        if (learn->value_margin_percent)
            margin =
                (uint32_t)(((uint64_t)(high - low > 0 ? high - low : high) * learn->value_margin +
                            99) /
                           100);
        if (group->coils)
            margin = 0;
        low = low > margin ? low - margin : 0;
        high = high + margin > 65535 ? 65535 : high + margin;
        uint32_t top = group->coils ? 1 : 65535;
        /* A limit that lets every value through is no limit. */
        if (low > 0 || high < top) {
            draft->has_values = 1;
            draft->value_min = (uint16_t)low;
            draft->value_max = (uint16_t)high;
        }
    }
    draft->count = group->count;
    draft->partial = group->partial;
    draft->first_us = group->first_us;
    draft->last_us = group->last_us;
    return 0;
}

static void draft_free(struct draft *draft) {
    free(draft->identities);
    ranges_free(&draft->units);
    ranges_free(&draft->addresses);
    ranges_free(&draft->records);
}

enum join { JOIN_FUNCTIONS, JOIN_UNITS, JOIN_IDENTITIES };

static int same_identities(const struct draft *a, const struct draft *b) {
    return a->identity_count == b->identity_count &&
           memcmp(a->identities, b->identities, a->identity_count * sizeof *a->identities) == 0;
}

/* Whether two drafts differ only in what `join` joins. */
static int joinable(const struct draft *a, const struct draft *b, enum join join) {
    if (a->access != b->access || a->table != b->table || a->has_values != b->has_values ||
        (a->has_values && (a->value_min != b->value_min || a->value_max != b->value_max)) ||
        !ranges_equal(&a->addresses, &b->addresses) || !ranges_equal(&a->records, &b->records) ||
        a->by_role != b->by_role)
        return 0;
    int same_functions = memcmp(a->functions, b->functions, sizeof a->functions) == 0 &&
                         a->diagnostics == b->diagnostics && a->encapsulated == b->encapsulated;
    int same_units = ranges_equal(&a->units, &b->units);
    switch (join) {
    case JOIN_FUNCTIONS:
        return same_identities(a, b) && same_units;
    case JOIN_UNITS:
        return same_identities(a, b) && same_functions;
    case JOIN_IDENTITIES:
        return same_units && same_functions &&
               a->identity_count + b->identity_count <= MB_POLICY_MAX_LIST;
    }
    return 0;
}

static uint64_t join_hash(const struct draft *draft, enum join join) {
    uint64_t hash = INDEX_TABLE_HASH_START;
    hash = index_table_mix(hash, &draft->access, 1);
    hash = index_table_mix(hash, &draft->table, 1);
    hash = index_table_mix(hash, &draft->by_role, sizeof draft->by_role);
    if (draft->has_values) {
        hash = index_table_mix(hash, &draft->value_min, 2);
        hash = index_table_mix(hash, &draft->value_max, 2);
    }
    hash = index_table_mix(hash, draft->addresses.items,
                           draft->addresses.count * sizeof(*draft->addresses.items));
    hash = index_table_mix(hash, draft->records.items,
                           draft->records.count * sizeof(*draft->records.items));
    if (join != JOIN_IDENTITIES)
        hash = index_table_mix(hash, draft->identities,
                               draft->identity_count * sizeof *draft->identities);
    if (join != JOIN_UNITS)
        hash = index_table_mix(hash, draft->units.items,
                               draft->units.count * sizeof(*draft->units.items));
    if (join != JOIN_FUNCTIONS) {
        hash = index_table_mix(hash, draft->functions, sizeof draft->functions);
        hash = index_table_mix(hash, &draft->diagnostics, sizeof draft->diagnostics);
        hash = index_table_mix(hash, &draft->encapsulated, 1);
    }
    return index_table_finish(hash);
}

/* Takes b into a (b dies). */
static int join_into(struct draft *a, struct draft *b, enum join join) {
    if (join == JOIN_FUNCTIONS) {
        for (size_t i = 0; i < sizeof a->functions; i++)
            a->functions[i] |= b->functions[i];
        a->diagnostics |= b->diagnostics;
        a->encapsulated |= b->encapsulated;
    } else if (join == JOIN_UNITS) {
        if (ranges_merge(&a->units, &b->units) != 0)
            return -1;
    } else {
        uint32_t *merged = malloc((a->identity_count + b->identity_count) * sizeof *merged);
        if (merged == NULL)
            return -1;
        size_t i = 0, j = 0, n = 0;
        while (i < a->identity_count || j < b->identity_count) {
            if (j == b->identity_count ||
                (i < a->identity_count && a->identities[i] < b->identities[j]))
                merged[n++] = a->identities[i++];
            else if (i == a->identity_count || b->identities[j] < a->identities[i])
                merged[n++] = b->identities[j++];
            else {
                merged[n++] = a->identities[i++];
                j++;
            }
        }
        free(a->identities);
        a->identities = merged;
        a->identity_count = n;
    }
    a->count += b->count;
    a->partial += b->partial;
    a->widened += b->widened;
    if (b->first_us != 0 && (a->first_us == 0 || b->first_us < a->first_us))
        a->first_us = b->first_us;
    if (b->last_us > a->last_us)
        a->last_us = b->last_us;
    b->alive = 0;
    return 0;
}

struct keyed {
    uint64_t hash;
    size_t index;
};

static int compare_keyed(const void *x, const void *y) {
    const struct keyed *a = x, *b = y;
    if (a->hash != b->hash)
        return a->hash < b->hash ? -1 : 1;
    return a->index < b->index ? -1 : a->index > b->index;
}

/* Joins every pair of live drafts that differ only in `join`'s field. Sorting by a hash of
 * the other fields brings candidates together; equal hashes are checked field by field. */
static int join_drafts(struct draft *drafts, size_t count, enum join join) {
    struct keyed *keys = malloc((count ? count : 1) * sizeof *keys);
    if (keys == NULL)
        return -1;
    size_t live = 0;
    for (size_t i = 0; i < count; i++)
        if (drafts[i].alive)
            keys[live++] = (struct keyed){join_hash(&drafts[i], join), i};
    qsort(keys, live, sizeof *keys, compare_keyed);
    for (size_t start = 0; start < live;) {
        size_t end = start + 1;
        while (end < live && keys[end].hash == keys[start].hash)
            end++;
        for (size_t i = start; i < end; i++) {
            struct draft *into = &drafts[keys[i].index];
            if (!into->alive)
                continue;
            for (size_t k = i + 1; k < end; k++) {
                struct draft *other = &drafts[keys[k].index];
                if (other->alive && joinable(into, other, join) &&
                    join_into(into, other, join) != 0) {
                    free(keys);
                    return -1;
                }
            }
        }
        start = end;
    }
    free(keys);
    return 0;
}

/* ---- writing the policy ---- */

static const char *const table_names[] = {
    "coils", "discrete_inputs", "holding_registers", "input_registers", "files", "fifos", "device"};

static void format_source(const struct mb_policy_source *source, char *text, size_t capacity) {
    char address[INET6_ADDRSTRLEN];
    inet_ntop(source->family, source->address, address, sizeof address);
    int full = source->prefix == (source->family == AF_INET ? 32 : 128);
    if (full)
        snprintf(text, capacity, "%s", address);
    else
        snprintf(text, capacity, "%s/%u", address, source->prefix);
}

/* A role as a YAML double-quoted scalar, in ASCII: any bytes a certificate may carry stay what
 * they are (characters past ASCII as \u or \U escapes, which YAML reads back as the same
 * UTF-8, where raw U+0085 would be a line break and U+FEFF or U+FFFE refused), and "any" or
 * "none" stay role names, not the keywords. */
static void put_quoted(FILE *out, const char *text) {
    const unsigned char *at = (const unsigned char *)text;
    size_t left = strlen(text);
    fputc('"', out);
    while (left > 0) {
        size_t consumed;
        size_t length = json_utf8_sequence(at, left, &consumed);
        if (length == 1 && (*at == '"' || *at == '\\')) {
            fprintf(out, "\\%c", *at);
        } else if (length == 1 && *at >= 0x20 && *at < 0x7F) {
            fputc(*at, out);
        } else if (length == 0) {
            /* Not UTF-8 (no reader hands such a role on): a visible stand-in, never raw. */
            fputs("\\ufffd", out);
            length = consumed;
        } else {
            uint32_t point = length == 1   ? at[0]
                             : length == 2 ? (uint32_t)(at[0] & 0x1F) << 6 | (at[1] & 0x3F)
                             : length == 3
                                 ? (uint32_t)(at[0] & 0x0F) << 12 | (uint32_t)(at[1] & 0x3F) << 6 |
                                       (at[2] & 0x3F)
                                 : (uint32_t)(at[0] & 0x07) << 18 | (uint32_t)(at[1] & 0x3F) << 12 |
                                       (uint32_t)(at[2] & 0x3F) << 6 | (at[3] & 0x3F);
            if (point > 0xFFFF)
                fprintf(out, "\\U%08X", (unsigned)point);
            else
                fprintf(out, "\\u%04X", (unsigned)point);
        }
        at += length;
        left -= length;
    }
    fputc('"', out);
}

static void format_time(int64_t time_us, char *text, size_t capacity) {
    if (time_us <= 0) {
        snprintf(text, capacity, "unknown");
        return;
    }
    log_time_of((uint64_t)time_us / 1000, text, capacity);
}

/* The names a function list writes: the code's name, each FC 8 sub-function's, each FC 43
 * type's, or the number for codes a policy knows by number only. */
static void put_functions(FILE *out, const struct draft *draft) {
    int first = 1;
    fputs("    functions: [", out);
    for (unsigned function = 1; function < 128; function++) {
        if (!has_bit(draft->functions, function))
            continue;
        if (function == MB_FC_DIAGNOSTICS) {
            for (int sub = 0; sub < 32; sub++)
                if (draft->diagnostics >> sub & 1u) {
                    fprintf(out, "%s%s", first ? "" : ", ",
                            mb_policy_function_name((uint8_t)function, sub));
                    first = 0;
                }
            continue;
        }
        if (function == MB_FC_ENCAPSULATED_INTERFACE) {
            if (draft->encapsulated & MB_POLICY_MEI_DEVICE_ID) {
                fprintf(out, "%s%s", first ? "" : ", ",
                        mb_policy_function_name(43, MB_MEI_DEVICE_ID));
                first = 0;
            }
            if (draft->encapsulated & MB_POLICY_MEI_CANOPEN) {
                fprintf(out, "%s%s", first ? "" : ", ",
                        mb_policy_function_name(43, MB_MEI_CANOPEN));
                first = 0;
            }
            continue;
        }
        const char *name = mb_policy_function_name((uint8_t)function, -1);
        if (name != NULL)
            fprintf(out, "%s%s", first ? "" : ", ", name);
        else
            fprintf(out, "%s%u", first ? "" : ", ", function);
        first = 0;
    }
    fputs("]\n", out);
}

/* A name that says what the rule is for: who, units, function; unique in the policy. */
static void name_draft(const struct learn *learn, struct draft *draft, const struct draft *drafts,
                       size_t count) {
    char who[80], function[48], text[256];
    const struct identity *identity = &learn->identities[draft->identities[0]];
    if (identity->by_role)
        snprintf(who, sizeof who, "%.40s", identity->role);
    else
        format_source(&identity->source, who, sizeof who);
    unsigned first_function = 0;
    for (unsigned f = 1; f < 128 && first_function == 0; f++)
        if (has_bit(draft->functions, f))
            first_function = f;
    int sub = -1;
    if (first_function == MB_FC_DIAGNOSTICS)
        for (int s = 0; s < 32 && sub < 0; s++)
            if (draft->diagnostics >> s & 1u)
                sub = s;
    if (first_function == MB_FC_ENCAPSULATED_INTERFACE)
        sub = draft->encapsulated & MB_POLICY_MEI_DEVICE_ID ? MB_MEI_DEVICE_ID : MB_MEI_CANOPEN;
    const char *function_name = mb_policy_function_name((uint8_t)first_function, sub);
    if (function_name != NULL)
        snprintf(function, sizeof function, "%s", function_name);
    else
        snprintf(function, sizeof function, "fc%u", first_function);
    int functions = 0;
    for (unsigned f = 1; f < 128; f++)
        functions += has_bit(draft->functions, f);
    snprintf(text, sizeof text, "%.60s%s-u%u%s-%.47s%s%s", who,
             draft->identity_count > 1 ? "-etc" : "", draft->units.items[0].first,
             draft->units.count > 1 || draft->units.items[0].last != draft->units.items[0].first
                 ? "-etc"
                 : "",
             function, functions > 1 || draft->diagnostics & (draft->diagnostics - 1) ? "-etc" : "",
             draft->access == MB_POLICY_WRITE  ? "-write"
             : draft->access == MB_POLICY_READ ? "-read"
                                               : "");
    /* Only the characters a rule name takes. */
    for (char *at = text; *at != '\0'; at++)
        if (!((*at >= 'a' && *at <= 'z') || (*at >= 'A' && *at <= 'Z') ||
              (*at >= '0' && *at <= '9') || *at == '-' || *at == '_' || *at == '.'))
            *at = '_';
    text[56] = '\0';
    for (unsigned suffix = 1;; suffix++) {
        if (suffix == 1)
            snprintf(draft->name, sizeof draft->name, "%.56s", text);
        else
            snprintf(draft->name, sizeof draft->name, "%.56s-%u", text, suffix);
        int taken = strcmp(draft->name, "default") == 0;
        for (size_t i = 0; i < count && !taken; i++)
            taken = &drafts[i] != draft && drafts[i].alive && drafts[i].name[0] != '\0' &&
                    strcmp(drafts[i].name, draft->name) == 0;
        if (!taken)
            return;
    }
}

static int compare_drafts(const void *x, const void *y) {
    const struct draft *a = x, *b = y;
    if (a->alive != b->alive)
        return b->alive - a->alive;
    if (!a->alive)
        return 0;
    if (a->identities[0] != b->identities[0])
        return a->identities[0] < b->identities[0] ? -1 : 1;
    if (a->units.items[0].first != b->units.items[0].first)
        return a->units.items[0].first < b->units.items[0].first ? -1 : 1;
    int c = memcmp(a->functions, b->functions, sizeof a->functions);
    if (c != 0)
        return c;
    return (int)a->access - (int)b->access;
}

static void put_draft(FILE *out, const struct learn *learn, const struct draft *draft) {
    char first[40], last[40], text[8192];
    format_time(draft->first_us, first, sizeof first);
    format_time(draft->last_us, last, sizeof last);
    fprintf(out, "  # %llu request%s, first %s, last %s", (unsigned long long)draft->count,
            draft->count == 1 ? "" : "s", first, last);
    if (draft->widened > 0)
        fprintf(out, "; %llu address%s added to fit 256 ranges", (unsigned long long)draft->widened,
                draft->widened == 1 ? "" : "es");
    if (draft->partial > 0)
        fprintf(out, "; %llu write%s with values not all recorded",
                (unsigned long long)draft->partial, draft->partial == 1 ? "" : "s");
    fputc('\n', out);
    fprintf(out, "  - name: %s\n", draft->name);
    if (draft->by_role) {
        fputs("    roles: [", out);
        for (size_t i = 0; i < draft->identity_count; i++) {
            if (i > 0)
                fputs(", ", out);
            put_quoted(out, learn->identities[draft->identities[i]].role);
        }
        fputs("]\n", out);
    } else {
        fputs("    sources: [", out);
        for (size_t i = 0; i < draft->identity_count; i++) {
            format_source(&learn->identities[draft->identities[i]].source, text, sizeof text);
            /* Quoted: an IPv6 address holds colons, which YAML reads otherwise. */
            fprintf(out, "%s\"%s\"", i ? ", " : "", text);
        }
        fputs("]\n", out);
    }
    ranges_format(&draft->units, text, sizeof text);
    fprintf(out, "    units: %s\n", text);
    put_functions(out, draft);
    if (draft->access != 0)
        fprintf(out, "    access: %s\n", draft->access == MB_POLICY_WRITE ? "write" : "read");
    if (draft->table == MB_POLICY_FILES) {
        char records[8192];
        ranges_format(&draft->addresses, text, sizeof text);
        ranges_format(&draft->records, records, sizeof records);
        fprintf(out, "    tables: { files: { numbers: %s, records: %s } }\n", text, records);
    } else if (draft->table != NO_TABLE) {
        ranges_format(&draft->addresses, text, sizeof text);
        fprintf(out, "    tables: { %s: %s }\n", table_names[draft->table], text);
    }
    if (draft->has_values) {
        if (draft->value_min == draft->value_max)
            fprintf(out, "    values: %u\n", draft->value_min);
        else
            fprintf(out, "    values: %u-%u\n", draft->value_min, draft->value_max);
    }
    fputs("    action: allow\n", out);
}

static void put_header(FILE *out, const struct learn *learn, const struct input_summary *summaries,
                       size_t input_count, size_t rules) {
    char first[40], last[40], now[40];
    format_time(learn->first_us, first, sizeof first);
    format_time(learn->last_us, last, sizeof last);
    log_timestamp(now, sizeof now);
    fprintf(out, "# Learned by mbsec policy learn (mbsec %s), %s\n", mb_version(), now);
    fprintf(out, "# %llu requests seen, %llu learned, from %s to %s; %zu rule%s\n",
            (unsigned long long)learn->requests, (unsigned long long)learn->learned, first, last,
            rules, rules == 1 ? "" : "s");
    inputs_describe(out, "#   ", summaries, input_count);
    for (size_t i = 0; i < learn->leave_out_count; i++)
        if (learn->left_out_by[i] > 0) {
            const struct left_out *item = &learn->leave_out[i];
            const char *name = mb_policy_function_name(item->function, item->sub);
            fprintf(out, "# left out: %llu request%s of %s (--leave-out)\n",
                    (unsigned long long)learn->left_out_by[i],
                    learn->left_out_by[i] == 1 ? "" : "s", name != NULL ? name : "a function");
        }
    if (learn->undecodable > 0)
        fprintf(out,
                "# left out: %llu request%s a device refuses anyway (not decodable, or past "
                "address 65535 or record 9999): the policy answers 01\n",
                (unsigned long long)learn->undecodable, learn->undecodable == 1 ? "" : "s");
    if (learn->unnamed > 0)
        fprintf(out,
                "# left out: %llu request%s of FC 8 sub-functions or FC 43 types a policy "
                "cannot allow\n",
                (unsigned long long)learn->unnamed, learn->unnamed == 1 ? "" : "s");
    if (learn->anonymous > 0)
        fprintf(out, "# left out: %llu request%s with neither a role nor a client address\n",
                (unsigned long long)learn->anonymous, learn->anonymous == 1 ? "" : "s");
    fprintf(out,
            "# Each rule allows what was seen%s%s%s. Review it, run it in monitor mode, then\n"
            "# enforce it: docs/learning.md.\n",
            learn->round > 1 ? ", addresses in whole blocks" : "",
            learn->value_margin > 0 ? ", values with a margin" : "",
            learn->subnet4 < 32 || learn->subnet6 < 128 ? ", sources as networks" : "");
    if (learn->monitor)
        fputs("policy_mode: monitor\n", out);
    /* No rules is `policy: []`: a bare `policy:` would be the section left out. */
    fputs(rules == 0 ? "policy: []\n" : "policy:\n", out);
}

/* ---- the command ---- */

static void usage(FILE *out) {
    fputs("usage: mbsec policy learn [options] INPUT...\n"
          "\n"
          "Writes a policy that allows what the inputs show clients doing, and nothing else:\n"
          "one rule per client (role, or source address), units, functions and addresses,\n"
          "with the values written, and a comment with request counts and when they were\n"
          "first and last seen. INPUT is a packet capture (pcap or pcapng, as tcpdump,\n"
          "tshark or Wireshark write them; Modbus/TCP on --port) or a gateway audit file\n"
          "(JSON lines; with audit.reads: true it holds every request), told apart by their\n"
          "first bytes; - reads audit records from standard input.\n"
          "\n"
          "Options:\n"
          "  -o, --output FILE      write the policy to FILE (default: standard output)\n"
          "  --port PORTS           Modbus/TCP ports in captures, comma-separated (502)\n"
          "  --tls-port PORTS       Modbus/TCP Security ports, reported but not readable (802)\n"
          "  --by-source            one rule per source address even for requests with a role\n"
          "  --subnet BITS          sources as IPv4 networks of BITS (default 32: each address)\n"
          "  --subnet6 BITS         sources as IPv6 networks of BITS (default 128)\n"
          "  --round N              widen address ranges to whole blocks of N (e.g. 10, 100)\n"
          "  --value-margin N[%]    widen the value range of writes by N, or N percent of it\n"
          "  --no-values            no value limits on writes\n"
          "  --leave-out NAMES      functions never to allow even if seen, comma-separated\n"
          "                         policy names (default: restart_communications,\n"
          "                         force_listen_only); none: leave nothing out\n"
          "  --monitor              start the file with policy_mode: monitor\n"
          "  -h, --help             this text\n"
          "\n"
          "Examples:\n"
          "  tcpdump -i eth1 -w plant.pcap port 502\n"
          "  mbsec policy learn plant.pcap --round 10 -o learned.yaml\n"
          "  mbsec policy learn /var/log/mbsec/audit.jsonl --monitor -o learned.yaml\n"
          "\n"
          "Exit status: 0 written, 1 an input could not be read wholly (the policy written\n"
          "covers what was read) or nothing to learn, 2 usage.\n",
          out);
}

static int parse_number(const char *text, unsigned long most, unsigned long *value) {
    char *end;
    errno = 0;
    if (text[0] < '0' || text[0] > '9')
        return -1;
    *value = strtoul(text, &end, 10);
    return errno == 0 && *end == '\0' && *value <= most ? 0 : -1;
}

static int parse_leave_out(struct learn *learn, const char *text) {
    learn->leave_out_count = 0;
    if (strcmp(text, "none") == 0)
        return 0;
    char copy[1024];
    snprintf(copy, sizeof copy, "%s", text);
    for (char *save = NULL, *name = strtok_r(copy, ",", &save); name != NULL;
         name = strtok_r(NULL, ",", &save)) {
        uint8_t function;
        int sub;
        if (mb_policy_function_lookup(name, &function, &sub) != 0) {
            fprintf(stderr,
                    "mbsec policy learn: --leave-out: unknown function '%s' (policy names such "
                    "as restart_communications, write_single_coil)\n",
                    name);
            return -1;
        }
        if (learn->leave_out_count == MAX_LEFT_OUT) {
            fprintf(stderr, "mbsec policy learn: --leave-out: at most %d functions\n",
                    MAX_LEFT_OUT);
            return -1;
        }
        learn->leave_out[learn->leave_out_count++] = (struct left_out){function, sub};
    }
    return 0;
}

static void learn_free(struct learn *learn) {
    for (size_t i = 0; i < learn->group_count; i++) {
        ranges_free(&learn->groups[i].addresses);
        ranges_free(&learn->groups[i].records);
    }
    free(learn->groups);
    index_table_free(&learn->group_index);
    free(learn->identities);
    index_table_free(&learn->identity_index);
}

/* The policy as text, checked by loading it back through the configuration parser: what learn
 * writes must be what mbsec serve and mbsec gateway load. */
static int check_written(const char *text, size_t length, char *error, size_t capacity) {
    char path[] = "/tmp/mbsec-learned-XXXXXX";
    int fd = mkstemp(path);
    if (fd < 0) {
        snprintf(error, capacity, "cannot make a temporary file: %s", strerror(errno));
        return -1;
    }
    FILE *file = fdopen(fd, "w");
    int written = file != NULL && fwrite(text, 1, length, file) == length;
    if (file != NULL)
        written = fclose(file) == 0 && written;
    else
        close(fd);
    int status = -1;
    if (written) {
        struct serve_config config;
        config_serve_defaults(&config);
        status = config_serve_load(path, &config, error, capacity) == 0 ? 0 : -1;
        config_serve_free(&config);
    } else {
        snprintf(error, capacity, "cannot write a temporary file");
    }
    unlink(path);
    return status;
}

/* Writes `text` to `path` whole or not at all: a temporary file beside it, then a rename. */
static int write_file(const char *path, const char *text, size_t length) {
    char temporary[4096];
    snprintf(temporary, sizeof temporary, "%s.XXXXXX", path);
    int fd = mkstemp(temporary);
    if (fd < 0) {
        fprintf(stderr, "mbsec policy learn: cannot write %s: %s\n", path, strerror(errno));
        return -1;
    }
    FILE *file = fdopen(fd, "w");
    int ok = file != NULL && fwrite(text, 1, length, file) == length;
    if (file != NULL)
        ok = fclose(file) == 0 && ok;
    else
        close(fd);
    if (ok && rename(temporary, path) == 0)
        return 0;
    fprintf(stderr, "mbsec policy learn: cannot write %s: %s\n", path, strerror(errno));
    unlink(temporary);
    return -1;
}

int policy_learn(int argc, char **argv) {
    static const struct option long_options[] = {
        {"output", required_argument, NULL, 'o'},
        {"port", required_argument, NULL, 'p'},
        {"tls-port", required_argument, NULL, 't'},
        {"by-source", no_argument, NULL, 'S'},
        {"subnet", required_argument, NULL, '4'},
        {"subnet6", required_argument, NULL, '6'},
        {"round", required_argument, NULL, 'r'},
        {"value-margin", required_argument, NULL, 'm'},
        {"no-values", no_argument, NULL, 'V'},
        {"leave-out", required_argument, NULL, 'L'},
        {"monitor", no_argument, NULL, 'M'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    struct learn learn = {.subnet4 = 32, .subnet6 = 128};
    struct inputs_options inputs = {0};
    const char *output = NULL;
    char error[300];
    unsigned long number;
    parse_leave_out(&learn, "restart_communications,force_listen_only");
    optind = 1;
    opterr = 0;
    int option;
    while ((option = getopt_long(argc, argv, "o:h", long_options, NULL)) != -1) {
        switch (option) {
        case 'o':
            output = optarg;
            break;
        case 'p':
        case 't':
            if (inputs_parse_ports(optarg, option == 'p' ? inputs.ports : inputs.tls_ports,
                                   option == 'p' ? &inputs.port_count : &inputs.tls_port_count,
                                   error, sizeof error) != 0) {
                fprintf(stderr, "mbsec policy learn: --%s: %s\n",
                        option == 'p' ? "port" : "tls-port", error);
                return EXIT_STATUS_USAGE;
            }
            break;
        case 'S':
            learn.by_source = 1;
            break;
        case '4':
        case '6':
            if (parse_number(optarg, option == '4' ? 32 : 128, &number) != 0) {
                fprintf(stderr, "mbsec policy learn: --subnet%s: '%s': expected 0..%d bits\n",
                        option == '4' ? "" : "6", optarg, option == '4' ? 32 : 128);
                return EXIT_STATUS_USAGE;
            }
            if (option == '4')
                learn.subnet4 = (int)number;
            else
                learn.subnet6 = (int)number;
            break;
        case 'r':
            if (parse_number(optarg, 65536, &number) != 0 || number == 0) {
                fprintf(stderr, "mbsec policy learn: --round: '%s': expected 1..65536\n", optarg);
                return EXIT_STATUS_USAGE;
            }
            learn.round = (uint32_t)number;
            break;
        case 'm': {
            char copy[32];
            snprintf(copy, sizeof copy, "%s", optarg);
            size_t length = strlen(copy);
            if (length > 0 && copy[length - 1] == '%') {
                copy[length - 1] = '\0';
                learn.value_margin_percent = 1;
            }
            if (parse_number(copy, learn.value_margin_percent ? 1000 : 65535, &number) != 0) {
                fprintf(stderr,
                        "mbsec policy learn: --value-margin: '%s': expected a number 0..65535 "
                        "or a percentage 0%%..1000%%\n",
                        optarg);
                return EXIT_STATUS_USAGE;
            }
            learn.value_margin = (uint32_t)number;
            break;
        }
        case 'V':
            learn.no_values = 1;
            break;
        case 'L':
            if (parse_leave_out(&learn, optarg) != 0)
                return EXIT_STATUS_USAGE;
            break;
        case 'M':
            learn.monitor = 1;
            break;
        case 'h':
            usage(stdout);
            return EXIT_STATUS_OK;
        default:
            fprintf(stderr, "mbsec policy learn: unknown or incomplete option '%s'\n\n",
                    argv[optind - 1]);
            usage(stderr);
            return EXIT_STATUS_USAGE;
        }
    }
    if (optind >= argc) {
        fprintf(stderr, "mbsec policy learn: no input: give captures or audit files\n\n");
        usage(stderr);
        return EXIT_STATUS_USAGE;
    }
    size_t input_count = (size_t)(argc - optind);
    struct input_summary *summaries = calloc(input_count, sizeof *summaries);
    if (summaries == NULL) {
        fprintf(stderr, "mbsec policy learn: out of memory\n");
        return EXIT_STATUS_FAILURE;
    }
    int status = inputs_read(argv + optind, input_count, &inputs, learn_visit, &learn, summaries);
    inputs_describe(stderr, "mbsec policy learn: ", summaries, input_count);
    if (status > 1 || learn.out_of_memory) {
        fprintf(stderr,
                "mbsec policy learn: out of memory, or more than %u distinct clients, "
                "units and functions: try --subnet\n",
                MAX_GROUPS);
        learn_free(&learn);
        free(summaries);
        return EXIT_STATUS_FAILURE;
    }
    int exit_status = status == 1 ? EXIT_STATUS_FAILURE : EXIT_STATUS_OK;

    /* Groups to drafts, joined. */
    struct draft *drafts = calloc(learn.group_count ? learn.group_count : 1, sizeof *drafts);
    int failed = drafts == NULL;
    for (size_t i = 0; !failed && i < learn.group_count; i++)
        failed = draft_of(&learn, &learn.groups[i], &drafts[i]) != 0;
    if (!failed)
        failed = join_drafts(drafts, learn.group_count, JOIN_FUNCTIONS) != 0 ||
                 join_drafts(drafts, learn.group_count, JOIN_UNITS) != 0 ||
                 join_drafts(drafts, learn.group_count, JOIN_IDENTITIES) != 0;
    size_t rules = 0;
    if (!failed) {
        qsort(drafts, learn.group_count, sizeof *drafts, compare_drafts);
        for (size_t i = 0; i < learn.group_count; i++)
            rules += (size_t)drafts[i].alive;
        for (size_t i = 0; i < rules; i++)
            name_draft(&learn, &drafts[i], drafts, rules);
    }
    char *text = NULL;
    size_t length = 0;
    if (!failed && learn.learned == 0) {
        /* A policy of no rules denies everything: not something to write by mistake. */
        fprintf(stderr, "mbsec policy learn: nothing learned (no request the inputs show can be "
                        "allowed): no policy written\n");
        exit_status = EXIT_STATUS_FAILURE;
    } else if (!failed && rules > MB_POLICY_MAX_RULES) {
        fprintf(stderr,
                "mbsec policy learn: %zu rules, more than a policy takes (%d): join sources "
                "into networks (--subnet), widen addresses (--round), or learn from fewer "
                "clients\n",
                rules, MB_POLICY_MAX_RULES);
        exit_status = EXIT_STATUS_FAILURE;
    } else if (!failed) {
        FILE *out = open_memstream(&text, &length);
        failed = out == NULL;
        if (!failed) {
            put_header(out, &learn, summaries, input_count, rules);
            for (size_t i = 0; i < rules; i++)
                put_draft(out, &learn, &drafts[i]);
            failed = fclose(out) != 0;
        }
    }
    if (failed) {
        fprintf(stderr, "mbsec policy learn: out of memory\n");
        exit_status = EXIT_STATUS_FAILURE;
    } else if (text != NULL) {
        if (check_written(text, length, error, sizeof error) != 0) {
            fprintf(stderr, "mbsec policy learn: the policy written does not load (a bug): %s\n",
                    error);
            exit_status = EXIT_STATUS_FAILURE;
        } else if (output != NULL ? write_file(output, text, length) != 0
                                  : fwrite(text, 1, length, stdout) != length) {
            exit_status = EXIT_STATUS_FAILURE;
        } else {
            fprintf(stderr, "mbsec policy learn: %zu rule%s from %llu request%s%s%s\n", rules,
                    rules == 1 ? "" : "s", (unsigned long long)learn.learned,
                    learn.learned == 1 ? "" : "s", output != NULL ? " written to " : "",
                    output != NULL ? output : "");
        }
    }
    free(text);
    for (size_t i = 0; drafts != NULL && i < learn.group_count; i++)
        draft_free(&drafts[i]);
    free(drafts);
    learn_free(&learn);
    free(summaries);
    return exit_status;
}
