/* SPDX-License-Identifier: MIT */
/*
 * A set of numbers kept as sorted, merged ranges (addresses of a table, unit ids, file records),
 * for what `mbsec policy learn` saw and what `mbsec policy test` reports. Ranges that overlap
 * or touch become one, as the policy's own ranges do.
 */
#ifndef MBSEC_APP_POLICY_RANGES_H
#define MBSEC_APP_POLICY_RANGES_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/policy.h"

struct ranges {
    struct mb_policy_range *items; /* sorted, disjoint, none touching the next */
    size_t count;
    size_t capacity;
};

/* The last number of `quantity` numbers from `first` (first itself for 0), cut at 65535: the
 * span a request of that address and quantity touches. */
uint16_t ranges_last(uint16_t first, uint32_t quantity);

/* Adds first..last (first <= last). Returns 0, or -1 when out of memory (the set unchanged). */
int ranges_add(struct ranges *set, uint16_t first, uint16_t last);

/* Adds every range of `other`. Returns 0 or -1 (out of memory). */
int ranges_merge(struct ranges *set, const struct ranges *other);

/* 1 when first..last lies inside one range of the set. */
int ranges_cover(const struct ranges *set, uint16_t first, uint16_t last);

/* Widens every range to whole blocks of `step` numbers (100..104 with step 10 is 100..109),
 * merging what then touches. A step of 0 or 1 changes nothing. */
void ranges_round(struct ranges *set, uint32_t step);

/* Joins the two ranges with the smallest gap between them until at most `most` are left (the
 * policy takes 256 ranges per list). Returns the numbers added that were not in the set. */
uint64_t ranges_fit(struct ranges *set, size_t most);

/* 1 when both sets hold the same numbers. */
int ranges_equal(const struct ranges *a, const struct ranges *b);

/* Writes the set as a policy list: "100", "100-199" or "[0-9, 100-199]". Like snprintf(). */
int ranges_format(const struct ranges *set, char *out, size_t capacity);

/* Makes `copy` hold what `set` holds. Returns 0 or -1. */
int ranges_copy(struct ranges *copy, const struct ranges *set);

void ranges_free(struct ranges *set);

#endif
