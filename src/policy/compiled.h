/* SPDX-License-Identifier: MIT */
/*
 * Internal to the policy layer: the compiled form of a policy, shared by building (policy.c)
 * and deciding (decide.c).
 *
 * A policy is one allocation: this header, then the rules, then pools the rules index into
 * (role name offsets, sources, ranges, and the text of names and roles). Everything refers by
 * index or offset, never by pointer, so a copy is a memcpy (of all but the reference count).
 */
#ifndef MBSEC_POLICY_COMPILED_H
#define MBSEC_POLICY_COMPILED_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/policy.h"

/* FC 8 sub-functions the spec defines: 00-04, 0A-12, 14 (bit n for sub-function n). */
#define MB__DIAGNOSTICS_DEFINED 0x17FC1Fu
/* The ones that change the device's state: restart communications (01), change ASCII delimiter
 * (03), force listen-only (04), clear counters (0A), clear overrun counter (14). */
#define MB__DIAGNOSTICS_WRITES 0x10041Au
/* Both FC 43 MEI types. */
#define MB__MEI_ALL (MB_POLICY_MEI_DEVICE_ID | MB_POLICY_MEI_CANOPEN)

struct mb__policy_rule {
    uint32_t name; /* offset of the name in the text pool */
    uint8_t action;
    uint8_t exception;
    uint8_t transport;
    uint8_t role_flags;
    uint8_t access;       /* never 0: "both" is stored as both bits */
    uint8_t tables;       /* bit t: table t granted; 0: no table condition */
    uint8_t encapsulated; /* never 0 */
    uint8_t value_limit;
    uint8_t monitor; /* 1: refusals by this rule are reported, not carried out */
    uint16_t value_min;
    uint16_t value_max;
    uint32_t diagnostics; /* never 0: "all" is stored as MB__DIAGNOSTICS_DEFINED */
    uint32_t roles;       /* first index into the role pool */
    uint32_t role_count;
    uint32_t sources; /* first index into the source pool */
    uint32_t source_count;
    /* First index into the range pool and count, per table; a granted table without ranges
     * holds one range 0..65535, so matching has no special case. */
    uint32_t ranges[MB_POLICY_TABLES];
    uint32_t range_count[MB_POLICY_TABLES];
    uint32_t records; /* with files: record ranges, likewise never empty */
    uint32_t record_count;
    uint8_t units[32];     /* bitmap of unit ids */
    uint8_t functions[32]; /* bitmap of function codes */
};

struct mb_policy {
    /* The one field that changes after creation (mb_policy_ref, mb_policy_destroy), atomically;
     * first, so that a copy can take everything after it. Deciding never touches it. */
    int references;
    size_t size; /* bytes of the whole allocation */
    uint32_t rule_count;
    uint32_t monitor_default; /* 1: the default deny is in monitor mode */
    uint32_t rules_offset;    /* struct mb__policy_rule[rule_count] */
    uint32_t roles_offset;    /* uint32_t text offsets */
    uint32_t sources_offset;  /* struct mb_policy_source[] */
    uint32_t ranges_offset;   /* struct mb_policy_range[] */
    uint32_t text_offset;     /* NUL-terminated names and roles */
};

static inline const struct mb__policy_rule *mb__policy_rules(const struct mb_policy *policy) {
    return (const struct mb__policy_rule *)(const void *)((const char *)policy +
                                                          policy->rules_offset);
}

static inline const uint32_t *mb__policy_roles(const struct mb_policy *policy) {
    return (const uint32_t *)(const void *)((const char *)policy + policy->roles_offset);
}

static inline const struct mb_policy_source *mb__policy_sources(const struct mb_policy *policy) {
    return (const struct mb_policy_source *)(const void *)((const char *)policy +
                                                           policy->sources_offset);
}

static inline const struct mb_policy_range *mb__policy_ranges(const struct mb_policy *policy) {
    return (const struct mb_policy_range *)(const void *)((const char *)policy +
                                                          policy->ranges_offset);
}

static inline const char *mb__policy_text(const struct mb_policy *policy, uint32_t offset) {
    return (const char *)policy + policy->text_offset + offset;
}

static inline int mb__bit(const uint8_t *bitmap, unsigned index) {
    return (bitmap[index / 8] >> (index % 8)) & 1;
}

#endif
