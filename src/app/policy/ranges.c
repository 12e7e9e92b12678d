/* SPDX-License-Identifier: MIT */
#include "app/policy/ranges.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

static int reserve(struct ranges *set, size_t wanted) {
    if (wanted <= set->capacity)
        return 0;
    size_t capacity = set->capacity != 0 ? set->capacity * 2 : 4;
    while (capacity < wanted)
        capacity *= 2;
    struct mb_policy_range *items = realloc(set->items, capacity * sizeof *items);
    if (items == NULL)
        return -1;
    set->items = items;
    set->capacity = capacity;
    return 0;
}

uint16_t ranges_last(uint16_t first, uint32_t quantity) {
    uint32_t last = (uint32_t)first + (quantity ? quantity - 1 : 0);
    return (uint16_t)(last > 65535 ? 65535 : last);
}

int ranges_add(struct ranges *set, uint16_t first, uint16_t last) {
    /* The first range that ends at or after first - 1 (it may touch or overlap the new one). */
    size_t low = 0, high = set->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if ((uint32_t)set->items[middle].last + 1 < first)
            low = middle + 1;
        else
            high = middle;
    }
    size_t end = low;
    uint16_t merged_first = first, merged_last = last;
    while (end < set->count && set->items[end].first <= (uint32_t)last + 1) {
        if (set->items[end].first < merged_first)
            merged_first = set->items[end].first;
        if (set->items[end].last > merged_last)
            merged_last = set->items[end].last;
        end++;
    }
    if (end == low) {
        /* Nothing to merge with: a new range at `low`. */
        if (reserve(set, set->count + 1) != 0)
            return -1;
        memmove(set->items + low + 1, set->items + low, (set->count - low) * sizeof *set->items);
        set->count++;
    } else if (end > low + 1) {
        memmove(set->items + low + 1, set->items + end, (set->count - end) * sizeof *set->items);
        set->count -= end - low - 1;
    }
    set->items[low].first = merged_first;
    set->items[low].last = merged_last;
    return 0;
}

int ranges_merge(struct ranges *set, const struct ranges *other) {
    for (size_t i = 0; i < other->count; i++)
        if (ranges_add(set, other->items[i].first, other->items[i].last) != 0)
            return -1;
    return 0;
}

int ranges_cover(const struct ranges *set, uint16_t first, uint16_t last) {
    size_t low = 0, high = set->count;
    while (low < high) {
        size_t middle = low + (high - low) / 2;
        if (set->items[middle].last < first)
            low = middle + 1;
        else
            high = middle;
    }
    return low < set->count && set->items[low].first <= first && set->items[low].last >= last;
}

void ranges_round(struct ranges *set, uint32_t step) {
    if (step <= 1 || set->count == 0)
        return;
    size_t kept = 0;
    for (size_t i = 0; i < set->count; i++) {
        uint32_t first = set->items[i].first / step * step;
        uint32_t last = ((uint32_t)set->items[i].last / step + 1) * step - 1;
        if (last > 65535)
            last = 65535;
        /* Sorted before, sorted after: only the previous one can now touch this one. */
        if (kept > 0 && set->items[kept - 1].last + 1u >= first) {
            if (last > set->items[kept - 1].last)
                set->items[kept - 1].last = (uint16_t)last;
            continue;
        }
        set->items[kept].first = (uint16_t)first;
        set->items[kept].last = (uint16_t)last;
        kept++;
    }
    set->count = kept;
}

uint64_t ranges_fit(struct ranges *set, size_t most) {
    uint64_t added = 0;
    if (most == 0)
        most = 1;
    while (set->count > most) {
        /* Join the pair with the smallest gap; on a tie the first. A set over the bound is rare
         * (a client walking every other register), so the quadratic worst case is tolerable. */
        size_t best = 0;
        uint32_t best_gap = UINT32_MAX;
        for (size_t i = 0; i + 1 < set->count; i++) {
            uint32_t gap = (uint32_t)set->items[i + 1].first - set->items[i].last - 1;
            if (gap < best_gap) {
                best_gap = gap;
                best = i;
            }
        }
        added += best_gap;
        set->items[best].last = set->items[best + 1].last;
        memmove(set->items + best + 1, set->items + best + 2,
                (set->count - best - 2) * sizeof *set->items);
        set->count--;
    }
    return added;
}

int ranges_equal(const struct ranges *a, const struct ranges *b) {
    return a->count == b->count &&
           (a->count == 0 || memcmp(a->items, b->items, a->count * sizeof *a->items) == 0);
}

int ranges_format(const struct ranges *set, char *out, size_t capacity) {
    size_t used = 0;
    int written;
#define PUT(...)                                                                \
    do {                                                                        \
        written = snprintf(out + (used < capacity ? used : capacity),           \
                           used < capacity ? capacity - used : 0, __VA_ARGS__); \
        if (written < 0)                                                        \
            return written;                                                     \
        used += (size_t)written;                                                \
    } while (0)
    if (capacity > 0)
        out[0] = '\0';
    if (set->count > 1)
        PUT("[");
    for (size_t i = 0; i < set->count; i++) {
        PUT("%s%u", i ? ", " : "", set->items[i].first);
        if (set->items[i].last != set->items[i].first)
            PUT("-%u", set->items[i].last);
    }
    if (set->count > 1)
        PUT("]");
#undef PUT
    return (int)used;
}

int ranges_copy(struct ranges *copy, const struct ranges *set) {
    copy->count = 0;
    if (reserve(copy, set->count) != 0)
        return -1;
    if (set->count > 0)
        memcpy(copy->items, set->items, set->count * sizeof *set->items);
    copy->count = set->count;
    return 0;
}

void ranges_free(struct ranges *set) {
    free(set->items);
    memset(set, 0, sizeof *set);
}
