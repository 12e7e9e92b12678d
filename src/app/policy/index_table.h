/* SPDX-License-Identifier: MIT */
/*
 * An open-addressing table of indices into an array the caller keeps (identities and groups of
 * policy learn, report groups of policy test): the caller hashes and compares its own items;
 * the table only finds where an item is. Lookups allocate nothing; the table doubles when half
 * full, rehashing through the caller's hash.
 */
#ifndef MBSEC_APP_POLICY_INDEX_TABLE_H
#define MBSEC_APP_POLICY_INDEX_TABLE_H

#include <stddef.h>
#include <stdint.h>

struct index_table {
    uint32_t *slots; /* index + 1 of an item, 0 for an empty slot */
    size_t size;     /* slots, a power of two; 0 before the first add */
};

/* 1 when item `index` is the one looked for (`wanted`). */
typedef int (*index_table_match)(const void *items, uint32_t index, const void *wanted);
/* The hash of item `index`, as it was given to index_table_add(). */
typedef uint64_t (*index_table_hash)(const void *items, uint32_t index);

/* The index of the item `match` accepts among those of `hash`, or -1. */
long index_table_find(const struct index_table *table, uint64_t hash, index_table_match match,
                      const void *items, const void *wanted);

/* Adds item `index` (the caller's `used`-th, its array holding `used` items before it) under
 * `hash`, doubling the table first when half full. Returns 0, or -1 when out of memory (the
 * table unchanged). */
int index_table_add(struct index_table *table, uint64_t hash, uint32_t index, size_t used,
                    index_table_hash hash_of, const void *items);

void index_table_free(struct index_table *table);

/* ---- for the callers: hashing their items, growing the array the table indexes ---- */

#define INDEX_TABLE_HASH_START 0xCBF29CE484222325ull

/* Folds `length` bytes into a hash begun with INDEX_TABLE_HASH_START (FNV-1a), so that an item
 * of several fields is hashed field by field. */
uint64_t index_table_mix(uint64_t hash, const void *bytes, size_t length);

/* The hash to give the table: the bits of `hash` spread over all 64 (the table keeps the low
 * ones). */
uint64_t index_table_finish(uint64_t hash);

/* Room for one more item in the caller's array `items` of *capacity items of `size` bytes,
 * `count` in use: the array, doubled when full (from `first` items) and *capacity updated; NULL
 * when out of memory, `items` then unchanged and still the caller's. */
void *index_table_reserve(void *items, size_t *capacity, size_t count, size_t size, size_t first);

#endif
