/* SPDX-License-Identifier: MIT */
/*
 * The data model: what a Modbus device holds, and the server handler that executes requests
 * against it. Per unit id: four tables (coils, discrete inputs, holding registers, input
 * registers) each with its own start and size; FIFO queues for FC 24; files of records for
 * FC 20/21; plus device identification objects (FC 43/14), the server id (FC 17) and the
 * serial-line diagnostics a simulator answers (FC 7, 8, 11, 12).
 *
 * Persistence: with a persist_path, the writable tables (coils, holding registers) and the
 * files live in a file mapped MAP_SHARED, so that a write acknowledged to a client survives
 * kill -9 (the kernel keeps the pages); msync() every sync_interval_ms, and on mb_model_sync()
 * and mb_model_destroy(), puts them on disk against power loss. The file starts with a header
 * (magic, version, layout, checksum): a truncated, foreign or resized file is refused with
 * MB_EPERSIST and a message, never silently zeroed. A new file is created atomically (written
 * under a temporary name, then renamed).
 *
 * Thread safety: mb_model_handle() may be called from several server threads (workers) at
 * once; the model serialises access to its tables.
 */
#ifndef MBSEC_MODEL_H
#define MBSEC_MODEL_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/export.h"
#include "mbsec/server.h"
#include "mbsec/validate.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mb_model;

/*
 * A FIFO queue read by FC 24 at `address`. It lives in the holding registers: the register at
 * `address` holds the count, the `capacity` registers after it the values, oldest first. So FC 3
 * reads it too, it persists with the registers, and writing 0 to the count empties it. FC 24
 * does not drain the queue (the spec's read leaves it as it is); a count over 31 or over the
 * capacity, written by a client, is answered with 03.
 */
struct mb_fifo_config {
    uint16_t address;
    uint16_t capacity; /* at most MB_MAX_FIFO_COUNT (31) */
};

struct mb_unit_config {
    uint8_t unit_id;              /* ignored when mb_model_config.any_unit is set */
    struct mb_table_extent coils; /* size 0: the unit has no such table (FC answers 01) */
    struct mb_table_extent discrete_inputs;
    struct mb_table_extent holding_registers;
    struct mb_table_extent input_registers;
    uint16_t files;            /* FC 20/21: files 1..files; 0 for none */
    uint16_t records_per_file; /* 1..10000 */
    const struct mb_fifo_config *fifos;
    size_t fifo_count;
};

/* FC 43/14 objects; NULL strings are left out (0x00..0x02 are mandatory and default to
 * "mbsec", "mbsec-sim" and the library version). */
struct mb_identity_config {
    const char *vendor_name;
    const char *product_code;
    const char *revision;
    const char *vendor_url;
    const char *product_name;
    const char *model_name;
    const char *application_name;
    uint8_t conformity_level; /* default 0x83: extended, individual access */
    const uint8_t *server_id; /* FC 17; default "mbsec" */
    size_t server_id_length;
    /* FC 17 run indicator (0x00 off, 0xFF on): on in mb_model_default_config(), off in a
     * zeroed struct. */
    int running;
};

struct mb_model_config {
    /* 1: one set of tables answers every unit id 0..255 (units[0]); 0: only the unit ids in
     * `units` answer, others get exception 0x0B (gateway target device failed to respond). */
    int any_unit;
    const struct mb_unit_config *units;
    size_t unit_count;
    struct mb_identity_config identity;
    const char *persist_path;  /* NULL: in memory only */
    uint32_t sync_interval_ms; /* msync period; default 1000; flushing is the caller's
                                  job: call mb_model_sync() from a timer */
};

/* The built-in simulator: any unit id, all four tables covering 0..65535, all zero, two files
 * of 10000 records for FC 20/21, identification naming mbsec, the run indicator on. */
MB_API void mb_model_default_config(struct mb_model_config *config);

/*
 * Creates the model (and maps or creates its persistence file). On failure returns MB_EINVAL
 * (NULL arguments), MB_ENOMEM,
 * MB_ECONFIG (overlapping FIFOs, a FIFO outside the holding registers, duplicate unit ids,
 * ...), MB_EPERSIST or MB_ESYSTEM, with one clear sentence in `error` (capacity bytes).
 */
MB_API int mb_model_create(const struct mb_model_config *config, struct mb_model **model,
                           char *error, size_t error_capacity);

/* Flushes persistence (msync) and frees the model. */
MB_API void mb_model_destroy(struct mb_model *model);

/*
 * The server handler (mb_server_handler) that executes requests against the model; pass the
 * model as its data. Always answers at once (never defers). A unit id the model does not have
 * gets exception 0x0B. After FC 8/04 (force listen-only) the unit executes and answers nothing
 * (returns 0), FC 8/01 restart included, as the spec says; restart leaves listen-only mode.
 */
MB_API int mb_model_handle(void *model, const struct mb_server_request *request, uint8_t *response);

/* Writes dirty persistent pages to disk (msync). Returns 0 or MB_ESYSTEM. */
MB_API int mb_model_sync(struct mb_model *model);

/* The tables, for applications that drive a simulated device. */
enum mb_table {
    MB_TABLE_COILS = 0,
    MB_TABLE_DISCRETE_INPUTS = 1,
    MB_TABLE_HOLDING_REGISTERS = 2,
    MB_TABLE_INPUT_REGISTERS = 3,
};

/* Reads/writes `count` registers of a register table, or bits of a bit table (one per uint16_t
 * element: 0 or 1 when read, non-zero sets when written), at `address` of `unit_id`. Returns 0, or
 * MB_EINVAL (unknown unit or table, range outside the table). */
MB_API int mb_model_get(struct mb_model *model, uint8_t unit_id, enum mb_table table,
                        uint16_t address, uint16_t count, uint16_t *values);
MB_API int mb_model_set(struct mb_model *model, uint8_t unit_id, enum mb_table table,
                        uint16_t address, uint16_t count, const uint16_t *values);

/* Appends a value to the FIFO at `address`; MB_ELIMIT when it is full. */
MB_API int mb_model_fifo_push(struct mb_model *model, uint8_t unit_id, uint16_t address,
                              uint16_t value);

#ifdef __cplusplus
}
#endif

#endif
