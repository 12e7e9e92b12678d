/* SPDX-License-Identifier: MIT */
/*
 * Request validation for servers: given a request and what the server holds, the exception to
 * send, in the order of checks the Modbus specification's per-function diagrams give:
 *   function supported? (01) -> quantity, byte count, values (03) -> address range (02).
 * Exceptions to that order: FC 5 checks its value (03) before the address; FC 24 checks the
 * address (02) and leaves the FIFO count (03) to execution; FC 43/14 checks the read code (03)
 * before the object id (02, see mb_device_id_respond()).
 */
#ifndef MBSEC_VALIDATE_H
#define MBSEC_VALIDATE_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/export.h"
#include "mbsec/pdu.h"

#ifdef __cplusplus
extern "C" {
#endif

/* A table's addresses: [start, start + size). size 0 means the server has no such table. */
struct mb_table_extent {
    uint16_t start;
    uint32_t size; /* up to 65536 - start */
};

/* What a server holds, for one unit id. */
struct mb_extents {
    struct mb_table_extent coils;             /* FC 1, 5, 15 */
    struct mb_table_extent discrete_inputs;   /* FC 2 */
    struct mb_table_extent holding_registers; /* FC 3, 6, 16, 22, 23, 24 (FIFO pointer) */
    struct mb_table_extent input_registers;   /* FC 4 */
    uint16_t files;                           /* FC 20, 21: files 1..files exist */
    uint16_t records_per_file;                /* records 0..records_per_file-1 (at most 10000) */
    uint8_t functions[32]; /* bitmap of supported function codes, bit fc % 8 of byte fc / 8 */
};

/* Marks function code `function` supported (1) or not (0) in extents->functions. */
MB_API void mb_extents_set_function(struct mb_extents *extents, uint8_t function, int supported);

/* 1 if function code `function` is marked supported, else 0. */
MB_API int mb_extents_has_function(const struct mb_extents *extents, uint8_t function);

/*
 * Validates a decoded request against a server's extents. Returns 0 when the request may
 * execute, else the exception code to send: 01 (function not supported, or the table it needs
 * is absent), 02 (an address outside the table; FC 20/21: reference type, file or record out of
 * range), 03 (a response that would not fit a PDU, FC 20).
 */
MB_API int mb_request_validate(const struct mb_request *request, const struct mb_extents *extents);

/*
 * The checks mb_request_decode() makes on the wire, for a request built by hand (or decoded
 * elsewhere): quantities within their limits (03), FC 5's value 0xFF00 or 0x0000 (03), values
 * present for FC 15, 16 and 23 (03), FC 8's sub-function known (else 01) and its data what the
 * sub-function allows (03). Returns 0, the exception code (> 0), or MB_EINVAL for a NULL
 * request. A server that takes requests from its own code runs this and mb_request_validate(),
 * in the spec's order: 01 first, then 03, then 02 (the data model does).
 */
MB_API int mb_request_validate_values(const struct mb_request *request);

/*
 * Decodes and validates a request PDU in the spec's order. Returns 0 with *request filled when
 * the request may execute, or the exception code (> 0) to send. Returns MB_EINVAL only when
 * there is no function code to answer (length 0) or an argument is NULL.
 */
MB_API int mb_request_check(const uint8_t *pdu, size_t length, const struct mb_extents *extents,
                            struct mb_request *request);

#ifdef __cplusplus
}
#endif

#endif
