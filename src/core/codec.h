/* SPDX-License-Identifier: MIT */
/* Internal to the protocol core: checks shared by the request and response codecs. */
#ifndef MBSEC_CORE_CODEC_H
#define MBSEC_CORE_CODEC_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/pdu.h"

/*
 * Walks the sub-requests/sub-responses of an FC 20/21 byte-count area laid out as `layout`,
 * checking that they fill it exactly. `strict_reference` also requires reference type 6 (a
 * response; in a request the type is the validator's business, exception 02). On success sets
 * *count and returns 0; else MB_ETRUNCATED / MB_ELENGTH / MB_EBYTECOUNT / MB_EQUANTITY /
 * MB_EVALUE. Used by decoders and encoders alike, so that the two accept the same bytes.
 */
int mb__file_records_scan(uint8_t layout, const uint8_t *data, size_t length, int strict_reference,
                          uint8_t *count);

/* 1 when an FC 20/21 byte count is inside the range its layout allows, checked before the
 * PDU's length so that an out-of-range byte count is reported as such. */
int mb__file_byte_count_valid(uint8_t layout, size_t length);

/* Checks that an FC 43/14 object list of `length` bytes holds exactly `count` whole objects. */
int mb__device_objects_scan(const uint8_t *objects, size_t length, uint8_t count);

/* 1 if `sub_function` is an FC 8 sub-function the spec defines, else 0. */
int mb__diagnostics_known(uint16_t sub_function);

/* 1 if an FC 8 sub-function answers with a value (the diagnostic register, the counters)
 * rather than an echo of the request's data. */
int mb__diagnostics_returns_value(uint16_t sub_function);

/* The structural checks on FC 8 data that requests and responses share: a known sub-function
 * (else MB_ESUBFUNCTION) and the data length it requires (else MB_ELENGTH). */
int mb__diagnostics_check(const struct mb_diagnostics *diagnostics);

/* Checks on FC 8 data that only requests have: the values each sub-function allows. */
int mb__diagnostics_request_values(const struct mb_diagnostics *diagnostics);

/* Checks an FC 43/14 conformity level: 0x01..0x03 or 0x81..0x83. */
int mb__conformity_valid(uint8_t level);

/* FC 15 and 16 quantity limits, for requests and responses alike. */
static inline int mb__write_quantity_valid(uint8_t function, uint16_t quantity) {
    uint16_t max =
        function == MB_FC_WRITE_MULTIPLE_COILS ? MB_MAX_WRITE_BITS : MB_MAX_WRITE_REGISTERS;
    return quantity >= 1 && quantity <= max;
}

/* Copies `size` bytes from `source` into an encoder's scratch PDU, failing cleanly on a NULL
 * source that should have held them. */
int mb__put_bytes(uint8_t *at, const uint8_t *source, size_t size);

/* Encoders' tails shared by requests and responses, writing after the function code into
 * `data` and setting *size: FC 43 with an MEI type other than 14 (only CANopen, 13, is
 * defined), and user-defined function codes. Return 0 or the decoder's error. */
int mb__encode_mei(const struct mb_mei *mei, uint8_t *data, size_t *size);
int mb__encode_raw(uint8_t function, const struct mb_raw *raw, uint8_t *data, size_t *size);

/* Copies a scratch PDU of 1 + size bytes out to the caller's buffer, all or nothing. */
int mb__encode_finish(const uint8_t *scratch, size_t size, uint8_t *pdu, size_t capacity);

/* Ceil(bits / 8). */
static inline size_t mb__bit_bytes(size_t bits) {
    return (bits + 7) / 8;
}

/* The decoders' length rule: `have` data bytes where the message needs exactly `need`. */
static inline int mb__expect_length(size_t have, size_t need) {
    if (have < need)
        return MB_ETRUNCATED;
    if (have > need)
        return MB_ELENGTH;
    return 0;
}

#endif
