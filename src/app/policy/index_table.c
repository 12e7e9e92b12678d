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

void index_table_free(struct index_table *table) {
    free(table->slots);
    table->slots = NULL;
    table->size = 0;
}
