/* SPDX-License-Identifier: MIT */
/*
 * The data model's lifecycle and the application's access to its tables: configuration
 * checks, where each table lives, the lock, mb_model_get/set and FIFO pushes. Executing
 * Modbus requests is in execute.c, the persistence file in persist.c.
 *
 * Where the tables live. Everything a worker may change lives in shared mappings, so that the
 * model behaves the same whether the server's workers are threads or processes forked after
 * mb_model_create(): the lock (a process-shared mutex), each unit's communication
 * state and the volatile tables (discrete inputs, input registers, and without persistence
 * the coils, holding registers and file records) in one anonymous MAP_SHARED mapping; the
 * persistent tables in the persistence file's MAP_SHARED mapping. Anonymous shared pages are
 * zero until touched and cost memory only once written, so the default simulator (four full
 * tables, 272 KiB of address space) costs little more than the pages a client writes. Bits are
 * stored packed, eight to a byte as on the wire, and registers big-endian (store.h).
 *
 * FIFO queues (FC 24) live in the holding registers, as the spec describes them: the register
 * at the FIFO's address holds the count, the `capacity` registers after it the queued values,
 * oldest first. A client can therefore read them with FC 3 too, they persist with the holding
 * registers, and a client or the application empties a queue by writing 0 to its count
 * register (FC 6, or mb_model_set()); reading with FC 24 leaves the queue as it is (the spec:
 * "the function reads the queue contents, but does not clear them").
 */
#include <errno.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>

#include "mbsec/error.h"
#include "mbsec/pdu.h"
#include "mbsec/value.h"
#include "mbsec/version.h"
#include "store/store.h"

#define MAX_OBJECT_LENGTH (MB_PDU_MAX - 7 - 2) /* one object alone in an FC 43/14 answer */
#define MAX_SERVER_ID (MB_PDU_MAX - 3)         /* FC 17: function, byte count, run indicator */
#define DEFAULT_CONFORMITY 0x83
#define DEFAULT_SYNC_INTERVAL_MS 1000

void mb__store_error(char *error, size_t capacity, const char *format, ...) {
    if (error == NULL || capacity == 0)
        return;
    va_list args;
    va_start(args, format);
    vsnprintf(error, capacity, format, args);
    va_end(args);
}

/* ---- defaults ---- */

static const struct mb_unit_config default_unit = {
    .unit_id = 0,
    .coils = {0, 65536},
    .discrete_inputs = {0, 65536},
    .holding_registers = {0, 65536},
    .input_registers = {0, 65536},
    .files = 2, /* so that FC 20/21 work out of the box */
    .records_per_file = 10000,
};

void mb_model_default_config(struct mb_model_config *config) {
    if (config == NULL)
        return;
    memset(config, 0, sizeof *config);
    config->any_unit = 1;
    config->units = &default_unit;
    config->unit_count = 1;
    config->identity.conformity_level = DEFAULT_CONFORMITY;
    config->identity.running = 1;
    config->sync_interval_ms = DEFAULT_SYNC_INTERVAL_MS;
}

/* ---- configuration checks ---- */

/* "unit 7" or "the any-unit tables", for messages. */
static const char *unit_name(const struct mb_model_config *config,
                             const struct mb_unit_config *unit, char *text, size_t capacity) {
    if (config->any_unit)
        snprintf(text, capacity, "the any-unit tables");
    else
        snprintf(text, capacity, "unit %u", (unsigned)unit->unit_id);
    return text;
}

static int check_extent(const char *unit, const char *table, const struct mb_table_extent *extent,
                        char *error, size_t capacity) {
    if ((uint32_t)extent->start + extent->size > 65536) {
        mb__store_error(error, capacity,
                        "%s: %s start at %u with size %lu, past the last address 65535", unit,
                        table, (unsigned)extent->start, (unsigned long)extent->size);
        return MB_ECONFIG;
    }
    return 0;
}

static int check_fifos(const char *unit, const struct mb_unit_config *config, char *error,
                       size_t capacity) {
    if (config->fifo_count > 0 && config->fifos == NULL) {
        mb__store_error(error, capacity, "%s: %zu FIFOs but no FIFO list", unit,
                        config->fifo_count);
        return MB_ECONFIG;
    }
    const struct mb_table_extent *holding = &config->holding_registers;
    for (size_t i = 0; i < config->fifo_count; i++) {
        const struct mb_fifo_config *fifo = &config->fifos[i];
        if (fifo->capacity < 1 || fifo->capacity > MB_MAX_FIFO_COUNT) {
            mb__store_error(error, capacity, "%s: the FIFO at %u has capacity %u, not 1..%d", unit,
                            (unsigned)fifo->address, (unsigned)fifo->capacity, MB_MAX_FIFO_COUNT);
            return MB_ECONFIG;
        }
        /* The count register and the queue after it. */
        uint32_t last = (uint32_t)fifo->address + fifo->capacity;
        if (fifo->address < holding->start || last >= (uint32_t)holding->start + holding->size) {
            mb__store_error(error, capacity,
                            "%s: the FIFO at %u (count register and %u values, %u..%lu) lies "
                            "outside the holding registers",
                            unit, (unsigned)fifo->address, (unsigned)fifo->capacity,
                            (unsigned)fifo->address, (unsigned long)last);
            return MB_ECONFIG;
        }
        for (size_t j = 0; j < i; j++) {
            const struct mb_fifo_config *other = &config->fifos[j];
            uint32_t other_last = (uint32_t)other->address + other->capacity;
            if (fifo->address <= other_last && other->address <= last) {
                mb__store_error(
                    error, capacity, "%s: the FIFOs at %u (%u..%lu) and %u (%u..%lu) overlap", unit,
                    (unsigned)other->address, (unsigned)other->address, (unsigned long)other_last,
                    (unsigned)fifo->address, (unsigned)fifo->address, (unsigned long)last);
                return MB_ECONFIG;
            }
        }
    }
    return 0;
}

static int check_unit(const struct mb_model_config *config, const struct mb_unit_config *unit,
                      char *error, size_t capacity) {
    char name[32];
    unit_name(config, unit, name, sizeof name);
    const struct {
        const char *name;
        const struct mb_table_extent *extent;
    } tables[] = {
        {"coils", &unit->coils},
        {"discrete inputs", &unit->discrete_inputs},
        {"holding registers", &unit->holding_registers},
        {"input registers", &unit->input_registers},
    };
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++) {
        int rc = check_extent(name, tables[i].name, tables[i].extent, error, capacity);
        if (rc != 0)
            return rc;
    }
    if (unit->records_per_file > MB_FILE_MAX_RECORD + 1) {
        mb__store_error(error, capacity, "%s: %u records per file, more than the %d FC 20 reaches",
                        name, (unsigned)unit->records_per_file, MB_FILE_MAX_RECORD + 1);
        return MB_ECONFIG;
    }
    if (unit->files > 0 && unit->records_per_file == 0) {
        mb__store_error(error, capacity, "%s: %u files of 0 records", name, (unsigned)unit->files);
        return MB_ECONFIG;
    }
    return check_fifos(name, unit, error, capacity);
}

static int check_text(const char *field, const char *text, char *error, size_t capacity) {
    if (text != NULL && strlen(text) > MAX_OBJECT_LENGTH) {
        mb__store_error(error, capacity,
                        "identity %s is %zu bytes; a device identification object holds at "
                        "most %d",
                        field, strlen(text), MAX_OBJECT_LENGTH);
        return MB_ECONFIG;
    }
    return 0;
}

static int check_identity(const struct mb_identity_config *identity, char *error, size_t capacity) {
    int rc;
    if ((rc = check_text("vendor_name", identity->vendor_name, error, capacity)) != 0 ||
        (rc = check_text("product_code", identity->product_code, error, capacity)) != 0 ||
        (rc = check_text("revision", identity->revision, error, capacity)) != 0 ||
        (rc = check_text("vendor_url", identity->vendor_url, error, capacity)) != 0 ||
        (rc = check_text("product_name", identity->product_name, error, capacity)) != 0 ||
        (rc = check_text("model_name", identity->model_name, error, capacity)) != 0 ||
        (rc = check_text("application_name", identity->application_name, error, capacity)) != 0)
        return rc;
    uint8_t level = identity->conformity_level;
    uint8_t category = level & 0x7F;
    if (level != 0 && (category < 1 || category > 3)) {
        mb__store_error(error, capacity,
                        "identity conformity level 0x%02X is not 0x01..0x03 or 0x81..0x83",
                        (unsigned)level);
        return MB_ECONFIG;
    }
    if (identity->server_id_length > MAX_SERVER_ID ||
        (identity->server_id_length > 0 && identity->server_id == NULL)) {
        mb__store_error(error, capacity, "identity server id is %zu bytes; FC 17 carries 1..%d",
                        identity->server_id_length, MAX_SERVER_ID);
        return MB_ECONFIG;
    }
    return 0;
}

static int check_config(const struct mb_model_config *config, char *error, size_t capacity) {
    if (config->unit_count == 0 || config->units == NULL) {
        mb__store_error(error, capacity, "the data model has no units");
        return MB_ECONFIG;
    }
    if (config->any_unit && config->unit_count != 1) {
        mb__store_error(error, capacity,
                        "any_unit answers every unit id with one set of tables, but %zu units "
                        "are configured",
                        config->unit_count);
        return MB_ECONFIG;
    }
    if (config->unit_count > 256) {
        mb__store_error(error, capacity, "%zu units configured; unit ids are 0..255",
                        config->unit_count);
        return MB_ECONFIG;
    }
    uint8_t seen[256] = {0};
    for (size_t i = 0; i < config->unit_count; i++) {
        const struct mb_unit_config *unit = &config->units[i];
        if (!config->any_unit && seen[unit->unit_id]++) {
            mb__store_error(error, capacity, "unit %u is configured twice",
                            (unsigned)unit->unit_id);
            return MB_ECONFIG;
        }
        int rc = check_unit(config, unit, error, capacity);
        if (rc != 0)
            return rc;
    }
    if (config->persist_path != NULL && config->persist_path[0] == '\0') {
        mb__store_error(error, capacity, "the persistence path is empty");
        return MB_ECONFIG;
    }
    return check_identity(&config->identity, error, capacity);
}

/* ---- building the model ---- */

static void set_functions(struct mb_extents *extents) {
    static const uint8_t served[] = {
        MB_FC_READ_COILS,
        MB_FC_READ_DISCRETE_INPUTS,
        MB_FC_READ_HOLDING_REGISTERS,
        MB_FC_READ_INPUT_REGISTERS,
        MB_FC_WRITE_SINGLE_COIL,
        MB_FC_WRITE_SINGLE_REGISTER,
        MB_FC_READ_EXCEPTION_STATUS,
        MB_FC_DIAGNOSTICS,
        MB_FC_GET_COMM_EVENT_COUNTER,
        MB_FC_GET_COMM_EVENT_LOG,
        MB_FC_WRITE_MULTIPLE_COILS,
        MB_FC_WRITE_MULTIPLE_REGISTERS,
        MB_FC_REPORT_SERVER_ID,
        MB_FC_READ_FILE_RECORD,
        MB_FC_WRITE_FILE_RECORD,
        MB_FC_MASK_WRITE_REGISTER,
        MB_FC_READ_WRITE_MULTIPLE_REGISTERS,
        MB_FC_READ_FIFO_QUEUE,
        MB_FC_ENCAPSULATED_INTERFACE,
    };
    for (size_t i = 0; i < sizeof served; i++)
        mb_extents_set_function(extents, served[i], 1);
}

static void layout_of(const struct mb_model_config *config, const struct mb_unit_config *unit,
                      struct mb__unit_layout *layout) {
    memset(layout, 0, sizeof *layout);
    layout->unit_id = config->any_unit ? 0 : unit->unit_id;
    layout->any_unit = config->any_unit ? 1 : 0;
    layout->coils_start = unit->coils.start;
    layout->coils_size = unit->coils.size;
    layout->holding_start = unit->holding_registers.start;
    layout->holding_size = unit->holding_registers.size;
    layout->files = unit->files;
    layout->records_per_file = unit->files > 0 ? unit->records_per_file : 0;
}

/* Bytes a unit needs in the shared mapping: its volatile tables, and without persistence
 * its persistent ones too. */
static uint64_t volatile_bytes(const struct mb__unit_layout *layout,
                               const struct mb_unit_config *unit, int persistent) {
    uint64_t bytes =
        mb__coil_bytes(unit->discrete_inputs.size) + mb__register_bytes(unit->input_registers.size);
    if (!persistent)
        bytes += mb__unit_persistent_bytes(layout);
    return bytes;
}

static uint64_t align8(uint64_t offset) {
    return (offset + 7) & ~(uint64_t)7;
}

static int init_lock(struct mb__shared *shared) {
    pthread_mutexattr_t attributes;
    if (pthread_mutexattr_init(&attributes) != 0)
        return MB_ESYSTEM;
    /* Not robust: glibc takes its slow path on every lock of a robust mutex, which measured
     * ~120 instructions per request, an eighth of the server's whole user-space cost. Robustness
     * only matters for worker processes (a thread cannot die alone holding the lock), and a
     * process killed while it holds this lock would block the others: forked workers must be
     * stopped, not killed, as mbsec serve's threads are. */
    int rc = pthread_mutexattr_setpshared(&attributes, PTHREAD_PROCESS_SHARED);
    if (rc == 0)
        rc = pthread_mutex_init(&shared->lock, &attributes);
    pthread_mutexattr_destroy(&attributes);
    return rc == 0 ? 0 : MB_ESYSTEM;
}

void mb__model_lock(struct mb_model *model) {
    pthread_mutex_lock(&model->shared->lock);
}

void mb__model_unlock(struct mb_model *model) {
    pthread_mutex_unlock(&model->shared->lock);
}

struct mb__unit *mb__model_unit(struct mb_model *model, uint8_t unit_id) {
    int16_t index = model->unit_of_id[unit_id];
    return index < 0 ? NULL : &model->units[index];
}

/* Copies the identification strings into owned storage and builds the FC 43/14 objects. */
static int build_identity(struct mb_model *model, const struct mb_identity_config *identity) {
    const char *texts[MB__IDENTITY_OBJECTS] = {
        identity->vendor_name != NULL ? identity->vendor_name : "mbsec",
        identity->product_code != NULL ? identity->product_code : "mbsec-sim",
        identity->revision != NULL ? identity->revision : mb_version(),
        identity->vendor_url,
        identity->product_name,
        identity->model_name,
        identity->application_name,
    };
    size_t total = 0;
    for (size_t i = 0; i < MB__IDENTITY_OBJECTS; i++)
        if (texts[i] != NULL)
            total += strlen(texts[i]);
    model->identity_text = malloc(total + 1);
    if (model->identity_text == NULL)
        return MB_ENOMEM;
    size_t used = 0;
    for (size_t i = 0; i < MB__IDENTITY_OBJECTS; i++) {
        if (texts[i] == NULL)
            continue;
        size_t length = strlen(texts[i]);
        memcpy(model->identity_text + used, texts[i], length);
        struct mb_device_object *object = &model->objects[model->object_count++];
        object->id = (uint8_t)i;
        object->length = (uint8_t)length;
        object->value = model->identity_text + used;
        used += length;
    }
    model->conformity_level =
        identity->conformity_level != 0 ? identity->conformity_level : DEFAULT_CONFORMITY;
    if (identity->server_id_length > 0) {
        memcpy(model->server_id, identity->server_id, identity->server_id_length);
        model->server_id_length = identity->server_id_length;
    } else {
        memcpy(model->server_id, "mbsec", 5);
        model->server_id_length = 5;
    }
    model->running = identity->running ? 1 : 0;
    return 0;
}

/* Points each unit's tables into the shared mapping and the persistence file. */
static void place_tables(struct mb_model *model, const struct mb_model_config *config,
                         const struct mb__unit_layout *layouts, uint64_t offset) {
    int persistent = model->persist.map != NULL;
    uint8_t *persistent_data = persistent ? model->persist.data : NULL;
    uint64_t persistent_offset = 0;
    for (size_t i = 0; i < model->unit_count; i++) {
        const struct mb_unit_config *unit_config = &config->units[i];
        struct mb__unit *unit = &model->units[i];
        unit->discrete_inputs = model->shared_map + offset;
        offset += mb__coil_bytes(unit_config->discrete_inputs.size);
        unit->input_registers = model->shared_map + offset;
        offset += mb__register_bytes(unit_config->input_registers.size);
        /* The persistent tables, in the order persist.c's format gives. */
        uint8_t *base = persistent ? persistent_data : model->shared_map;
        uint64_t *at = persistent ? &persistent_offset : &offset;
        unit->coils = base + *at;
        *at += mb__coil_bytes(layouts[i].coils_size);
        unit->holding_registers = base + *at;
        *at += mb__register_bytes(layouts[i].holding_size);
        unit->file_records = base + *at;
        *at += mb__file_bytes(layouts[i].files, layouts[i].records_per_file);
    }
}

static int build_units(struct mb_model *model, const struct mb_model_config *config, char *error,
                       size_t capacity) {
    size_t count = config->unit_count;
    struct mb__unit_layout *layouts = calloc(count, sizeof *layouts);
    model->units = calloc(count, sizeof *model->units);
    if (layouts == NULL || model->units == NULL) {
        free(layouts);
        mb__store_error(error, capacity, "out of memory building the data model");
        return MB_ENOMEM;
    }
    model->unit_count = count;
    int persistent = config->persist_path != NULL;

    uint64_t shared_size = align8(sizeof(struct mb__shared));
    uint64_t states_offset = shared_size;
    shared_size = align8(shared_size + count * sizeof(struct mb__unit_state));
    uint64_t tables_offset = shared_size;
    for (size_t i = 0; i < count; i++) {
        const struct mb_unit_config *unit_config = &config->units[i];
        struct mb__unit *unit = &model->units[i];
        layout_of(config, unit_config, &layouts[i]);
        shared_size += volatile_bytes(&layouts[i], unit_config, persistent);
        unit->unit_id = unit_config->unit_id;
        unit->extents.coils = unit_config->coils;
        unit->extents.discrete_inputs = unit_config->discrete_inputs;
        unit->extents.holding_registers = unit_config->holding_registers;
        unit->extents.input_registers = unit_config->input_registers;
        unit->extents.files = unit_config->files;
        unit->extents.records_per_file = unit_config->files > 0 ? unit_config->records_per_file : 0;
        set_functions(&unit->extents);
        if (unit_config->fifo_count > 0) {
            unit->fifos = malloc(unit_config->fifo_count * sizeof *unit->fifos);
            if (unit->fifos == NULL) {
                free(layouts);
                mb__store_error(error, capacity, "out of memory building the data model");
                return MB_ENOMEM;
            }
            memcpy(unit->fifos, unit_config->fifos, unit_config->fifo_count * sizeof *unit->fifos);
            unit->fifo_count = unit_config->fifo_count;
        }
    }
    if (shared_size > (uint64_t)SIZE_MAX) {
        free(layouts);
        mb__store_error(error, capacity, "the data model needs %llu bytes, more than can be mapped",
                        (unsigned long long)shared_size);
        return MB_ENOMEM;
    }

    void *map =
        mmap(NULL, (size_t)shared_size, PROT_READ | PROT_WRITE, MAP_SHARED | MAP_ANONYMOUS, -1, 0);
    if (map == MAP_FAILED) {
        free(layouts);
        mb__store_error(error, capacity, "cannot map %llu bytes for the data model: %s",
                        (unsigned long long)shared_size, strerror(errno));
        return MB_ENOMEM;
    }
    model->shared_map = map;
    model->shared_size = (size_t)shared_size;
    model->shared = (struct mb__shared *)map;
    if (init_lock(model->shared) != 0) {
        free(layouts);
        mb__store_error(error, capacity, "cannot initialise the data model's lock");
        return MB_ESYSTEM;
    }
    struct mb__unit_state *states = (struct mb__unit_state *)(model->shared_map + states_offset);
    for (size_t i = 0; i < count; i++) {
        model->units[i].state = &states[i];
        states[i].ascii_delimiter = '\n';
    }

    if (persistent) {
        int rc = mb__persist_open(config->persist_path, layouts, count, &model->persist, error,
                                  capacity);
        if (rc != 0) {
            free(layouts);
            return rc;
        }
    }
    place_tables(model, config, layouts, tables_offset);
    free(layouts);
    return 0;
}

int mb_model_create(const struct mb_model_config *config, struct mb_model **model_out, char *error,
                    size_t error_capacity) {
    if (model_out != NULL)
        *model_out = NULL;
    if (config == NULL || model_out == NULL) {
        mb__store_error(error, error_capacity, "no configuration or no place for the model");
        return MB_EINVAL;
    }
    int rc = check_config(config, error, error_capacity);
    if (rc != 0)
        return rc;
    struct mb_model *model = calloc(1, sizeof *model);
    if (model == NULL) {
        mb__store_error(error, error_capacity, "out of memory building the data model");
        return MB_ENOMEM;
    }
    model->any_unit = config->any_unit ? 1 : 0;
    if ((rc = build_identity(model, &config->identity)) != 0) {
        mb__store_error(error, error_capacity, "out of memory building the data model");
        mb_model_destroy(model);
        return rc;
    }
    if ((rc = build_units(model, config, error, error_capacity)) != 0) {
        mb_model_destroy(model);
        return rc;
    }
    for (size_t id = 0; id < 256; id++)
        model->unit_of_id[id] = model->any_unit ? 0 : -1;
    if (!model->any_unit)
        for (size_t i = 0; i < model->unit_count; i++)
            model->unit_of_id[model->units[i].unit_id] = (int16_t)i;
    *model_out = model;
    return 0;
}

void mb_model_destroy(struct mb_model *model) {
    if (model == NULL)
        return;
    mb__persist_sync(&model->persist);
    mb__persist_close(&model->persist);
    /* The lock is not destroyed: worker processes forked from this one may still hold the
     * mapping; unmapping is all this process has to do. */
    if (model->shared_map != NULL)
        munmap(model->shared_map, model->shared_size);
    if (model->units != NULL)
        for (size_t i = 0; i < model->unit_count; i++)
            free(model->units[i].fifos);
    free(model->units);
    free(model->identity_text);
    free(model);
}

int mb_model_sync(struct mb_model *model) {
    if (model == NULL)
        return MB_EINVAL;
    return mb__persist_sync(&model->persist);
}

/* ---- the application's access ---- */

/* The table's extent and storage, or NULL for an unknown or absent table. */
static uint8_t *table_of(struct mb__unit *unit, enum mb_table table,
                         const struct mb_table_extent **extent, int *registers) {
    switch (table) {
    case MB_TABLE_COILS:
        *extent = &unit->extents.coils;
        *registers = 0;
        return unit->coils;
    case MB_TABLE_DISCRETE_INPUTS:
        *extent = &unit->extents.discrete_inputs;
        *registers = 0;
        return unit->discrete_inputs;
    case MB_TABLE_HOLDING_REGISTERS:
        *extent = &unit->extents.holding_registers;
        *registers = 1;
        return unit->holding_registers;
    case MB_TABLE_INPUT_REGISTERS:
        *extent = &unit->extents.input_registers;
        *registers = 1;
        return unit->input_registers;
    }
    return NULL;
}

/* Finds the unit and the table and checks the range; returns the storage or NULL. */
static uint8_t *locate(struct mb_model *model, uint8_t unit_id, enum mb_table table,
                       uint16_t address, uint16_t count, int *registers, size_t *offset) {
    struct mb__unit *unit = mb__model_unit(model, unit_id);
    if (unit == NULL)
        return NULL;
    const struct mb_table_extent *extent = NULL;
    uint8_t *storage = table_of(unit, table, &extent, registers);
    if (storage == NULL || extent->size == 0 || address < extent->start ||
        (uint32_t)address + count > (uint32_t)extent->start + extent->size)
        return NULL;
    *offset = (size_t)(address - extent->start);
    return storage;
}

int mb_model_get(struct mb_model *model, uint8_t unit_id, enum mb_table table, uint16_t address,
                 uint16_t count, uint16_t *values) {
    if (model == NULL || (values == NULL && count > 0))
        return MB_EINVAL;
    int registers = 0;
    size_t offset = 0;
    mb__model_lock(model);
    uint8_t *storage = locate(model, unit_id, table, address, count, &registers, &offset);
    if (storage != NULL) {
        for (size_t i = 0; i < count; i++)
            values[i] = registers ? mb_get_u16(storage + 2 * (offset + i))
                                  : (uint16_t)mb_bits_get(storage, offset + i);
    }
    mb__model_unlock(model);
    return storage != NULL ? 0 : MB_EINVAL;
}

int mb_model_set(struct mb_model *model, uint8_t unit_id, enum mb_table table, uint16_t address,
                 uint16_t count, const uint16_t *values) {
    if (model == NULL || (values == NULL && count > 0))
        return MB_EINVAL;
    int registers = 0;
    size_t offset = 0;
    mb__model_lock(model);
    uint8_t *storage = locate(model, unit_id, table, address, count, &registers, &offset);
    if (storage != NULL) {
        for (size_t i = 0; i < count; i++) {
            if (registers)
                mb_put_u16(storage + 2 * (offset + i), values[i]);
            else
                mb_bits_set(storage, offset + i, values[i] != 0);
        }
    }
    mb__model_unlock(model);
    return storage != NULL ? 0 : MB_EINVAL;
}

int mb_model_fifo_push(struct mb_model *model, uint8_t unit_id, uint16_t address, uint16_t value) {
    if (model == NULL)
        return MB_EINVAL;
    int rc = MB_EINVAL;
    mb__model_lock(model);
    struct mb__unit *unit = mb__model_unit(model, unit_id);
    for (size_t i = 0; unit != NULL && i < unit->fifo_count; i++) {
        const struct mb_fifo_config *fifo = &unit->fifos[i];
        if (fifo->address != address)
            continue;
        uint8_t *count_register =
            unit->holding_registers + 2 * (size_t)(address - unit->extents.holding_registers.start);
        uint16_t count = mb_get_u16(count_register);
        /* A count register a client set beyond the capacity also reads as full. */
        if (count >= fifo->capacity) {
            rc = MB_ELIMIT;
            break;
        }
        mb_put_u16(count_register + 2 * (1 + (size_t)count), value);
        mb_put_u16(count_register, (uint16_t)(count + 1));
        rc = 0;
        break;
    }
    mb__model_unlock(model);
    return rc;
}
