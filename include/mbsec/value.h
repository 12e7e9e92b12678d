/* SPDX-License-Identifier: MIT */
/*
 * Values in Modbus tables: bits packed as on the wire, and integers, floats and strings spread
 * over 16-bit registers in any of the four orders devices use.
 *
 * Registers here are host-order uint16_t values (convert from the wire with
 * mb_registers_from_wire()). A value of 2N bytes A B C D ... (most significant first) is laid out
 * as: MB_ORDER_ABCD  big-endian: first register holds A B (the usual Modbus order) MB_ORDER_CDAB
 * registers in reverse order, bytes big-endian inside each ("word swap") MB_ORDER_BADC  registers
 * in order, bytes swapped inside each ("byte swap") MB_ORDER_DCBA  little-endian: registers
 * reversed and bytes swapped For 64-bit values the same rule holds over four registers: CDAB is GH
 * EF CD AB. For a single register only the byte swap matters: ABCD = CDAB, BADC = DCBA.
 */
#ifndef MBSEC_VALUE_H
#define MBSEC_VALUE_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

enum mb_order {
    MB_ORDER_ABCD = 0,
    MB_ORDER_CDAB = 1,
    MB_ORDER_BADC = 2,
    MB_ORDER_DCBA = 3,
};

/* Parses "ABCD", "CDAB", "BADC" or "DCBA" (any case) into *order. Returns 0 or MB_EINVAL. */
MB_API int mb_order_parse(const char *text, enum mb_order *order);

/* "ABCD" and so on; "?" for a value outside the enum. */
MB_API const char *mb_order_name(enum mb_order order);

/* ---- bits, packed least significant bit first as in FC 1, 2 and 15 ---- */

/* The bit at `index` (0 or 1). */
MB_API int mb_bits_get(const uint8_t *packed, size_t index);

/* Sets the bit at `index` to 1 if `value` is non-zero, else 0. */
MB_API void mb_bits_set(uint8_t *packed, size_t index, int value);

/* Packs `count` values (non-zero = 1) into ceil(count/8) bytes, the padding bits zero. */
MB_API void mb_bits_pack(const uint8_t *values, size_t count, uint8_t *packed);

/* Unpacks `count` bits into one byte (0 or 1) each. */
MB_API void mb_bits_unpack(const uint8_t *packed, size_t count, uint8_t *values);

/* Copies `count` bits from src (starting at bit src_index) to dst (starting at dst_index);
 * dst and src must not overlap. */
MB_API void mb_bits_copy(uint8_t *dst, size_t dst_index, const uint8_t *src, size_t src_index,
                         size_t count);

/* ---- registers to and from the wire ---- */

/* Converts `count` big-endian wire registers to host values. */
MB_API void mb_registers_from_wire(const uint8_t *wire, size_t count, uint16_t *registers);

/* Converts `count` host registers to big-endian wire bytes (2 * count). */
MB_API void mb_registers_to_wire(const uint16_t *registers, size_t count, uint8_t *wire);

/* ---- numbers across registers ---- */

/* 16 bits: one register. */
MB_API uint16_t mb_get_reg_u16(const uint16_t *registers, enum mb_order order);
MB_API void mb_set_reg_u16(uint16_t *registers, uint16_t value, enum mb_order order);
MB_API int16_t mb_get_reg_i16(const uint16_t *registers, enum mb_order order);
MB_API void mb_set_reg_i16(uint16_t *registers, int16_t value, enum mb_order order);

/* 32 bits: two registers. */
MB_API uint32_t mb_get_reg_u32(const uint16_t *registers, enum mb_order order);
MB_API void mb_set_reg_u32(uint16_t *registers, uint32_t value, enum mb_order order);
MB_API int32_t mb_get_reg_i32(const uint16_t *registers, enum mb_order order);
MB_API void mb_set_reg_i32(uint16_t *registers, int32_t value, enum mb_order order);
MB_API float mb_get_reg_f32(const uint16_t *registers, enum mb_order order);
MB_API void mb_set_reg_f32(uint16_t *registers, float value, enum mb_order order);

/* 64 bits: four registers. */
MB_API uint64_t mb_get_reg_u64(const uint16_t *registers, enum mb_order order);
MB_API void mb_set_reg_u64(uint16_t *registers, uint64_t value, enum mb_order order);
MB_API int64_t mb_get_reg_i64(const uint16_t *registers, enum mb_order order);
MB_API void mb_set_reg_i64(uint16_t *registers, int64_t value, enum mb_order order);
MB_API double mb_get_reg_f64(const uint16_t *registers, enum mb_order order);
MB_API void mb_set_reg_f64(uint16_t *registers, double value, enum mb_order order);

/* ---- ASCII strings, two characters per register ---- */

/*
 * Reads up to 2 * count characters from registers into text (capacity bytes, always
 * NUL-terminated when capacity > 0), stopping at the first NUL byte. The first character is the
 * high byte of each register (MB_ORDER_ABCD/CDAB) or the low byte (MB_ORDER_BADC/DCBA).
 * Returns the string length, or MB_ENOSPC if it was cut to fit.
 */
MB_API int mb_get_reg_string(const uint16_t *registers, size_t count, enum mb_order order,
                             char *text, size_t capacity);

/*
 * Writes `text` into `count` registers, padding with NUL bytes. Returns the number of
 * registers that hold text, or MB_ENOSPC if the text needs more than `count` registers
 * (nothing is written then).
 */
MB_API int mb_set_reg_string(uint16_t *registers, size_t count, enum mb_order order,
                             const char *text);

#ifdef __cplusplus
}
#endif

#endif
