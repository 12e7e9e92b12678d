/* SPDX-License-Identifier: MIT */
#include "app/config/units.h"

#include <stdio.h>
#include <string.h>

#include "mbsec/error.h"

#define ADDRESS_SPACE 65536u
#define MAX_RECORDS_PER_FILE 10000u
#define MAX_FIFO_CAPACITY 31u

static const char *const unit_keys[] = {
    "id",    "coils", "discrete_inputs", "holding_registers", "input_registers", "files",
    "fifos", NULL};
static const char *const extent_keys[] = {"start", "size", NULL};
static const char *const file_keys[] = {"count", "records", NULL};
static const char *const fifo_keys[] = {"address", "capacity", NULL};

static const yaml_node_t *find_value(const struct yaml_reader *reader, const yaml_node_t *mapping,
                                     const char *wanted) {
    for (size_t i = 0; i < yaml_mapping_size(mapping); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, mapping, i, &key, &value);
        if (strcmp(key, wanted) == 0)
            return value;
    }
    return NULL;
}

/* "100-199": the first and last address, both included. */
static int parse_range_text(const yaml_node_t *node, uint64_t *first, uint64_t *last) {
    const char *text = (const char *)node->data.scalar.value;
    size_t length = node->data.scalar.length;
    /* The dash after the first character: a leading one would be a sign. */
    const char *dash = length > 1 ? memchr(text + 1, '-', length - 1) : NULL;
    if (dash == NULL)
        return -1;
    if (integer_parse(text, (size_t)(dash - text), first) != 0 ||
        integer_parse(dash + 1, length - (size_t)(dash - text) - 1, last) != 0)
        return -1;
    return 0;
}

/* A table: { start: S, size: N } or the range "FIRST-LAST"; size 0 means the unit has none. */
static int parse_extent(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                        struct mb_table_extent *extent) {
    char item_path[96];
    uint64_t start = 0, size = 0;
    if (node->type == YAML_SCALAR_NODE && !yaml_is_null(node)) {
        uint64_t first, last;
        if (parse_range_text(node, &first, &last) != 0)
            return yaml_error(reader, node,
                              "%s: expected { start: S, size: N } or a range of addresses "
                              "such as \"0-99\"",
                              path);
        if (last > ADDRESS_SPACE - 1)
            return yaml_error(reader, node, "%s: %s goes past address 65535", path,
                              (const char *)node->data.scalar.value);
        if (first > last)
            return yaml_error(reader, node, "%s: %s ends before it starts", path,
                              (const char *)node->data.scalar.value);
        extent->start = (uint16_t)first;
        extent->size = (uint32_t)(last - first + 1);
        return 0;
    }
    if (node->type != YAML_MAPPING_NODE)
        return yaml_error(reader, node,
                          "%s: expected { start: S, size: N } or a range of addresses such "
                          "as \"0-99\"",
                          path);
    int status = yaml_check_mapping(reader, node, path, extent_keys);
    if (status != 0)
        return status;
    const yaml_node_t *start_node = find_value(reader, node, "start");
    const yaml_node_t *size_node = find_value(reader, node, "size");
    if (size_node == NULL)
        return yaml_error(reader, node, "%s: size is missing (0 for no such table)", path);
    if (start_node != NULL) {
        snprintf(item_path, sizeof item_path, "%s.start", path);
        status = yaml_integer(reader, start_node, item_path, 0, ADDRESS_SPACE - 1, NULL, &start);
        if (status != 0)
            return status;
    }
    snprintf(item_path, sizeof item_path, "%s.size", path);
    status = yaml_integer(reader, size_node, item_path, 0, ADDRESS_SPACE, NULL, &size);
    if (status != 0)
        return status;
    if (start + size > ADDRESS_SPACE)
        return yaml_error(reader, size_node, "%s: start %llu + size %llu goes past address 65535",
                          path, (unsigned long long)start, (unsigned long long)size);
    extent->start = (uint16_t)start;
    extent->size = (uint32_t)size;
    return 0;
}

static int parse_files(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                       struct mb_unit_config *unit) {
    char item_path[96];
    uint64_t count = 0, records = MAX_RECORDS_PER_FILE;
    if (node->type != YAML_MAPPING_NODE)
        return yaml_error(reader, node, "%s: expected { count: N, records: R }", path);
    int status = yaml_check_mapping(reader, node, path, file_keys);
    if (status != 0)
        return status;
    const yaml_node_t *count_node = find_value(reader, node, "count");
    const yaml_node_t *records_node = find_value(reader, node, "records");
    if (count_node == NULL)
        return yaml_error(reader, node, "%s: count is missing (0 for no files)", path);
    snprintf(item_path, sizeof item_path, "%s.count", path);
    status = yaml_integer(reader, count_node, item_path, 0, 65535, NULL, &count);
    if (status == 0 && records_node != NULL) {
        snprintf(item_path, sizeof item_path, "%s.records", path);
        status =
            yaml_integer(reader, records_node, item_path, 1, MAX_RECORDS_PER_FILE, NULL, &records);
    }
    if (status != 0)
        return status;
    unit->files = (uint16_t)count;
    unit->records_per_file = (uint16_t)records;
    return 0;
}

/* Where each FIFO of the unit being parsed was written, for messages about it. */
struct fifo_nodes {
    const yaml_node_t *item[CONFIG_MAX_FIFOS];
};

static int parse_fifos(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                       struct serve_config *config, struct mb_unit_config *unit,
                       struct fifo_nodes *nodes) {
    char item_path[96], key_path[128];
    int status = yaml_check_sequence(reader, node, path, 0, CONFIG_MAX_FIFOS);
    if (status != 0)
        return status;
    size_t count = yaml_sequence_size(node);
    if (config->fifo_count + count > CONFIG_MAX_FIFOS)
        return yaml_error(reader, node, "%s: more than %d FIFOs in all units together", path,
                          CONFIG_MAX_FIFOS);
    struct mb_fifo_config *fifos = config->fifos + config->fifo_count;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = yaml_sequence_item(reader, node, i);
        uint64_t address = 0, capacity = MAX_FIFO_CAPACITY;
        snprintf(item_path, sizeof item_path, "%s[%zu]", path, i);
        if (item->type != YAML_MAPPING_NODE)
            return yaml_error(reader, item, "%s: expected { address: A, capacity: N }", item_path);
        status = yaml_check_mapping(reader, item, item_path, fifo_keys);
        if (status != 0)
            return status;
        const yaml_node_t *address_node = find_value(reader, item, "address");
        const yaml_node_t *capacity_node = find_value(reader, item, "capacity");
        if (address_node == NULL)
            return yaml_error(reader, item,
                              "%s: address is missing (where its count register is, a "
                              "holding register)",
                              item_path);
        snprintf(key_path, sizeof key_path, "%s.address", item_path);
        status = yaml_integer(reader, address_node, key_path, 0, ADDRESS_SPACE - 1, NULL, &address);
        if (status != 0)
            return status;
        if (capacity_node != NULL) {
            snprintf(key_path, sizeof key_path, "%s.capacity", item_path);
            status = yaml_integer(reader, capacity_node, key_path, 1, MAX_FIFO_CAPACITY, NULL,
                                  &capacity);
            if (status != 0)
                return status;
        }
        /* A FIFO takes its count register and `capacity` registers after it (model.h). */
        uint64_t last = address + capacity;
        for (size_t j = 0; j < i; j++) {
            uint32_t other_last = (uint32_t)fifos[j].address + fifos[j].capacity;
            if (address <= other_last && fifos[j].address <= last)
                return yaml_error(reader, item,
                                  "%s: the FIFO at %llu (registers %llu-%llu) overlaps the "
                                  "one at %u (registers %u-%u) on line %zu",
                                  item_path, (unsigned long long)address,
                                  (unsigned long long)address, (unsigned long long)last,
                                  (unsigned)fifos[j].address, (unsigned)fifos[j].address,
                                  (unsigned)other_last, nodes->item[j]->start_mark.line + 1);
        }
        fifos[i].address = (uint16_t)address;
        fifos[i].capacity = (uint16_t)capacity;
        nodes->item[i] = item;
    }
    unit->fifos = count > 0 ? fifos : NULL;
    unit->fifo_count = count;
    config->fifo_count += count;
    return 0;
}

/* A FIFO lives in the holding registers: its count register at its address, its values in the
 * `capacity` registers after it (model.h). */
static int check_fifos_in_holding_registers(const struct yaml_reader *reader, const char *path,
                                            const struct mb_unit_config *unit,
                                            const struct fifo_nodes *nodes) {
    const struct mb_table_extent *holding = &unit->holding_registers;
    for (size_t i = 0; i < unit->fifo_count; i++) {
        uint32_t first = unit->fifos[i].address;
        uint32_t last = first + unit->fifos[i].capacity;
        if (holding->size == 0)
            return yaml_error(reader, nodes->item[i],
                              "%s.fifos[%zu]: the unit has no holding registers to hold the "
                              "FIFO",
                              path, i);
        if (first < holding->start || last >= holding->start + holding->size)
            return yaml_error(reader, nodes->item[i],
                              "%s.fifos[%zu]: the FIFO at %u (its count register and %u "
                              "values, registers %u-%u) does not fit in the holding "
                              "registers (%u-%u)",
                              path, i, (unsigned)first, (unsigned)unit->fifos[i].capacity,
                              (unsigned)first, (unsigned)last, (unsigned)holding->start,
                              (unsigned)(holding->start + holding->size - 1));
    }
    return 0;
}

static int parse_unit(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                      struct serve_config *config, struct mb_unit_config *unit) {
    char key_path[64];
    struct fifo_nodes nodes;
    int status = 0;
    for (size_t i = 0; i < yaml_mapping_size(node) && status == 0; i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, node, i, &key, &value);
        snprintf(key_path, sizeof key_path, "%s.%s", path, key);
        if (strcmp(key, "coils") == 0)
            status = parse_extent(reader, value, key_path, &unit->coils);
        else if (strcmp(key, "discrete_inputs") == 0)
            status = parse_extent(reader, value, key_path, &unit->discrete_inputs);
        else if (strcmp(key, "holding_registers") == 0)
            status = parse_extent(reader, value, key_path, &unit->holding_registers);
        else if (strcmp(key, "input_registers") == 0)
            status = parse_extent(reader, value, key_path, &unit->input_registers);
        else if (strcmp(key, "files") == 0)
            status = parse_files(reader, value, key_path, unit);
        else if (strcmp(key, "fifos") == 0)
            status = parse_fifos(reader, value, key_path, config, unit, &nodes);
    }
    if (status != 0)
        return status;
    return check_fifos_in_holding_registers(reader, path, unit, &nodes);
}

int config_units(const struct yaml_reader *reader, const yaml_node_t *node,
                 struct serve_config *config) {
    char path[32];
    const yaml_node_t *defined[256] = {NULL};
    int status = yaml_check_sequence(reader, node, "units", 1, CONFIG_MAX_UNITS);
    if (status != 0)
        return status;
    size_t count = yaml_sequence_size(node);
    memset(config->units, 0, sizeof config->units);
    memset(config->fifos, 0, sizeof config->fifos);
    config->fifo_count = 0;
    config->model.any_unit = 0;
    for (size_t i = 0; i < count; i++) {
        const yaml_node_t *item = yaml_sequence_item(reader, node, i);
        struct mb_unit_config *unit = &config->units[i];
        uint64_t unit_id = 0;
        snprintf(path, sizeof path, "units[%zu]", i);
        if (item->type != YAML_MAPPING_NODE)
            return yaml_error(reader, item,
                              "%s: expected a mapping with an id and the unit's tables", path);
        status = yaml_check_mapping(reader, item, path, unit_keys);
        if (status != 0)
            return status;
        const yaml_node_t *id_node = find_value(reader, item, "id");
        if (id_node == NULL)
            return yaml_error(reader, item, "%s: id is missing (a unit id 0..255, or any)", path);
        if (yaml_is_word(id_node, "any")) {
            if (count > 1)
                return yaml_error(reader, id_node,
                                  "%s.id: any answers every unit id, so it must be the only "
                                  "unit",
                                  path);
            config->model.any_unit = 1;
        } else {
            char id_path[80];
            snprintf(id_path, sizeof id_path, "%s.id", path);
            status =
                yaml_integer(reader, id_node, id_path, 0, 255, "a unit id 0..255 or any", &unit_id);
            if (status != 0)
                return status;
            if (defined[unit_id] != NULL)
                return yaml_error(
                    reader, id_node, "%s.id: unit %llu is already defined on line %zu", path,
                    (unsigned long long)unit_id, defined[unit_id]->start_mark.line + 1);
            defined[unit_id] = id_node;
        }
        unit->unit_id = (uint8_t)unit_id;
        unit->records_per_file = MAX_RECORDS_PER_FILE;
        status = parse_unit(reader, item, path, config, unit);
        if (status != 0)
            return status;
    }
    config->model.units = config->units;
    config->model.unit_count = count;
    return 0;
}
