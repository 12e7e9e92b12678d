/* SPDX-License-Identifier: MIT */
#include "app/policy/index_table.h"

#include <stdlib.h>

long index_table_find(const struct index_table *table, uint64_t hash, index_table_match match,
                      const void *items, const void *wanted) {
    if (table->size == 0)
        return -1;
    for (size_t at = hash & (table->size - 1); table->slots[at] != 0;
         at = (at + 1) & (table->size - 1))
        if (match(items, table->slots[at] - 1, wanted))
            return (long)table->slots[at] - 1;
    return -1;
}

static void place(uint32_t *slots, size_t size, uint64_t hash, uint32_t index) {
    size_t at = hash & (size - 1);
    while (slots[at] != 0)
        at = (at + 1) & (size - 1);
    slots[at] = index + 1;
}

int index_table_add(struct index_table *table, uint64_t hash, uint32_t index, size_t used,
                    index_table_hash hash_of, const void *items) {
    if ((used + 1) * 2 > table->size) {
        size_t size = table->size != 0 ? table->size * 2 : 256;
        uint32_t *slots = calloc(size, sizeof *slots);
        if (slots == NULL)
            return -1;
        for (size_t i = 0; i < used; i++)
            place(slots, size, hash_of(items, (uint32_t)i), (uint32_t)i);
        free(table->slots);
        table->slots = slots;
        table->size = size;
    }
    place(table->slots, table->size, hash, index);
    return 0;
}

uint64_t index_table_mix(uint64_t hash, const void *bytes, size_t length) {
    const unsigned char *at = bytes;
    for (size_t i = 0; i < length; i++) {
        hash ^= at[i];
        hash *= 0x100000001B3ull;
    }
    return hash;
}

uint64_t index_table_finish(uint64_t hash) {
    hash ^= hash >> 33;
    hash *= 0xFF51AFD7ED558CCDull;
    hash ^= hash >> 33;
    return hash;
}

void *index_table_reserve(void *items, size_t *capacity, size_t count, size_t size, size_t first) {
    if (count < *capacity)
        return items;
    size_t grown_capacity = *capacity != 0 ? *capacity * 2 : first;
    void *grown = realloc(items, grown_capacity * size);
    if (grown != NULL)
        *capacity = grown_capacity;
    return grown;
}

void index_table_free(struct index_table *table) {
    free(table->slots);
    table->slots = NULL;
    table->size = 0;
}
