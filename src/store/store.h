/* SPDX-License-Identifier: MIT */
/*
 * Internal to the data model (src/store/): what model.c, execute.c and persist.c share.
 *
 * Storage formats, the same in memory and in the persistence file:
 *   - bit tables (coils, discrete inputs) are packed as on the wire, least significant bit
 *     first: bit n of the table (counted from its start address) is bit n % 8 of byte n / 8;
 *   - register tables and file records are big-endian byte pairs, as on the wire, so that
 *     reads are a copy and the persistence file reads the same on every host.
 */
#ifndef MBSEC_STORE_STORE_H
#define MBSEC_STORE_STORE_H

#include <pthread.h>
#include <stddef.h>
#include <stdint.h>

#include "mbsec/model.h"
#include "mbsec/validate.h"

/* ---- the persistent part of one unit, as the persistence file describes it ---- */

struct mb__unit_layout {
    uint8_t unit_id;  /* 0 when any_unit */
    uint8_t any_unit; /* 1: the unit answers every unit id */
    uint16_t coils_start;
    uint32_t coils_size;
    uint16_t holding_start;
    uint32_t holding_size;
    uint16_t files;
    uint16_t records_per_file;
};

/* Bytes of each persistent section of a unit; in the file, each unit's sections follow one
 * another in this order (coils, holding registers, file records), units in config order. */
static inline uint64_t mb__coil_bytes(uint32_t coils) {
    return ((uint64_t)coils + 7) / 8;
}
static inline uint64_t mb__register_bytes(uint32_t registers) {
    return 2 * (uint64_t)registers;
}
static inline uint64_t mb__file_bytes(uint16_t files, uint16_t records_per_file) {
    return 2 * (uint64_t)files * records_per_file;
}
static inline uint64_t mb__unit_persistent_bytes(const struct mb__unit_layout *layout) {
    return mb__coil_bytes(layout->coils_size) + mb__register_bytes(layout->holding_size) +
           mb__file_bytes(layout->files, layout->records_per_file);
}

/* ---- the persistence file (persist.c) ---- */

struct mb__persist {
    uint8_t *map; /* the whole file, mapped MAP_SHARED; NULL when not open */
    size_t map_size;
    uint8_t *data; /* the data area: map + the header's page-aligned data offset */
    uint64_t data_size;
    int fd; /* kept open: it holds the exclusive lock (flock) that makes the file this
               process's alone; -1 when not open */
};

/*
 * Opens the persistence file at `path` for these units, or creates it (atomically, zeroed) when
 * it does not exist. An existing file is used only if its header matches the layout and its
 * size; otherwise MB_EPERSIST with a sentence in `error`, and the file is left untouched.
 * I/O failures are MB_ESYSTEM, a mapping that cannot be made MB_ENOMEM.
 */
int mb__persist_open(const char *path, const struct mb__unit_layout *layouts, size_t count,
                     struct mb__persist *persist, char *error, size_t error_capacity);

/* msync(MS_SYNC) of the whole mapping. Returns 0 or MB_ESYSTEM. */
int mb__persist_sync(struct mb__persist *persist);

/* Unmaps (without syncing). */
void mb__persist_close(struct mb__persist *persist);

/* Writes a formatted sentence into error[0..capacity) when there is room for one. */
void mb__store_error(char *error, size_t capacity, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* ---- the model (model.c) and its execution (execute.c) ---- */

#define MB__EVENT_LOG_SIZE 64 /* FC 12 returns at most 64 event bytes */

/* The FC 8 counters, 16 bits each as on the wire, wrapping like a device's. */
struct mb__counters {
    uint16_t bus_messages;       /* 0x0B: requests that reached the unit */
    uint16_t bus_crc_errors;     /* 0x0C: none on TCP (framing is checked before the model) */
    uint16_t bus_exceptions;     /* 0x0D: exception responses returned */
    uint16_t server_messages;    /* 0x0E: requests processed (not ignored in listen-only) */
    uint16_t server_no_response; /* 0x0F: requests answered with nothing */
    uint16_t server_naks;        /* 0x10: exception 07, never sent */
    uint16_t server_busy;        /* 0x11: exception 06, never sent */
    uint16_t bus_overruns;       /* 0x12: character overruns, none on TCP */
};

#define MB__LISTEN_ONLY_SLOTS 16

/* A unit's communication state: lives in the model's shared mapping, under its lock. */
struct mb__unit_state {
    struct mb__counters counters;
    uint16_t event_count;         /* FC 11: successful completions */
    uint16_t diagnostic_register; /* FC 8/02 */
    /* Connections (their id + 1; 0 is a free slot) that sent FC 8/04 and not yet FC 8/01. On a
     * serial line listen-only silences the device; on TCP it is scoped to the connection that
     * asked, or one packet from anyone would silence the server for everyone. Ids are never
     * reused, so an entry of a closed connection is harmless until it is evicted. */
    uint64_t listen_only[MB__LISTEN_ONLY_SLOTS];
    uint8_t listen_only_next;  /* the slot evicted next when all are taken */
    uint8_t listen_only_count; /* slots in use: 0 spares every request the scan */
    uint8_t ascii_delimiter;   /* FC 8/03; '\n' at start */
    uint8_t event_log_count;   /* valid bytes in event_log, at most 64 */
    uint8_t event_log_next;    /* where the next event goes (a ring) */
    uint8_t event_log[MB__EVENT_LOG_SIZE];
};

struct mb__unit {
    uint8_t unit_id;
    struct mb_extents extents; /* tables, files and the functions served */
    uint8_t *coils;            /* packed bits */
    uint8_t *discrete_inputs;  /* packed bits */
    uint8_t *holding_registers;
    uint8_t *input_registers;
    uint8_t *file_records; /* files * records_per_file registers, file 1 first */
    struct mb_fifo_config *fifos;
    size_t fifo_count;
    struct mb__unit_state *state;
};

/* The state all workers share, at the start of the shared mapping. */
struct mb__shared {
    pthread_mutex_t lock;
};

#define MB__IDENTITY_OBJECTS 7 /* 0x00..0x06 */

struct mb_model {
    int any_unit;
    struct mb__unit *units;
    size_t unit_count;
    int16_t unit_of_id[256]; /* index into units, or -1 */

    uint8_t *shared_map; /* MAP_SHARED | MAP_ANONYMOUS: lock, unit states, volatile tables */
    size_t shared_size;
    struct mb__shared *shared;
    struct mb__persist persist;

    struct mb_device_object objects[MB__IDENTITY_OBJECTS];
    size_t object_count;
    uint8_t conformity_level;
    uint8_t *identity_text; /* owned storage behind objects[].value */
    uint8_t server_id[MB_PDU_MAX];
    size_t server_id_length;
    uint8_t running;
};

/* Takes and releases the model's lock (a robust, process-shared mutex). */
void mb__model_lock(struct mb_model *model);
void mb__model_unlock(struct mb_model *model);

/* The unit that answers `unit_id`, or NULL. */
struct mb__unit *mb__model_unit(struct mb_model *model, uint8_t unit_id);

#endif
