/* SPDX-License-Identifier: MIT */
#include "mbsec/value.h"

#include <limits.h>
#include <string.h>

#include "mbsec/error.h"

/* ---- byte orders ---- */

static const char order_names[4][5] = {"ABCD", "CDAB", "BADC", "DCBA"};

static char ascii_upper(char c) {
    return (c >= 'a' && c <= 'z') ? (char)(c - 'a' + 'A') : c;
}

int mb_order_parse(const char *text, enum mb_order *order) {
    if (text == NULL || order == NULL)
        return MB_EINVAL;
    for (size_t i = 0; i < sizeof order_names / sizeof order_names[0]; i++) {
        const char *name = order_names[i];
        size_t n = 0;
        while (name[n] != '\0' && ascii_upper(text[n]) == name[n])
            n++;
        if (name[n] == '\0' && text[n] == '\0') {
            *order = (enum mb_order)i;
            return 0;
        }
    }
    return MB_EINVAL;
}

const char *mb_order_name(enum mb_order order) {
    switch (order) {
    case MB_ORDER_ABCD:
    case MB_ORDER_CDAB:
    case MB_ORDER_BADC:
    case MB_ORDER_DCBA:
        return order_names[order];
    }
    return "?";
}

/* The four orders are two independent choices: whether the registers run from the least
 * significant end, and whether the two bytes inside each register are swapped. A value outside
 * the enum is read as ABCD rather than as whatever its bits happen to say. */
static int order_reverses_registers(enum mb_order order) {
    return order == MB_ORDER_CDAB || order == MB_ORDER_DCBA;
}

static int order_swaps_bytes(enum mb_order order) {
    return order == MB_ORDER_BADC || order == MB_ORDER_DCBA;
}

static uint16_t swap_bytes(uint16_t word) {
    return (uint16_t)((uint16_t)(word << 8) | (word >> 8));
}

/* ---- bits ---- */

int mb_bits_get(const uint8_t *packed, size_t index) {
    return (packed[index / 8] >> (index % 8)) & 1;
}

void mb_bits_set(uint8_t *packed, size_t index, int value) {
    uint8_t mask = (uint8_t)(1u << (index % 8));
    if (value)
        packed[index / 8] |= mask;
    else
        packed[index / 8] &= (uint8_t)~mask;
}

void mb_bits_pack(const uint8_t *values, size_t count, uint8_t *packed) {
    size_t bytes = (count + 7) / 8;
    if (bytes > 0)
        memset(packed, 0, bytes);
    for (size_t i = 0; i < count; i++)
        if (values[i])
            packed[i / 8] |= (uint8_t)(1u << (i % 8));
}

void mb_bits_unpack(const uint8_t *packed, size_t count, uint8_t *values) {
    for (size_t i = 0; i < count; i++)
        values[i] = (uint8_t)mb_bits_get(packed, i);
}

/* The eight bits of src starting at bit `index`. When the index is not byte-aligned they
 * straddle two bytes, both of which the copy covers. */
static uint8_t bits_read_byte(const uint8_t *src, size_t index) {
    size_t shift = index % 8;
    unsigned value = src[index / 8] >> shift;
    if (shift != 0)
        value |= (unsigned)src[index / 8 + 1] << (8 - shift);
    return (uint8_t)value;
}

void mb_bits_copy(uint8_t *dst, size_t dst_index, const uint8_t *src, size_t src_index,
                  size_t count) {
    /* Bit by bit until dst is byte-aligned, then whole destination bytes, then the tail. */
    while (count > 0 && dst_index % 8 != 0) {
        mb_bits_set(dst, dst_index++, mb_bits_get(src, src_index++));
        count--;
    }
    while (count >= 8) {
        dst[dst_index / 8] = bits_read_byte(src, src_index);
        dst_index += 8;
        src_index += 8;
        count -= 8;
    }
    while (count > 0) {
        mb_bits_set(dst, dst_index++, mb_bits_get(src, src_index++));
        count--;
    }
}

/* ---- registers to and from the wire ---- */

void mb_registers_from_wire(const uint8_t *wire, size_t count, uint16_t *registers) {
    for (size_t i = 0; i < count; i++)
        registers[i] = (uint16_t)((uint16_t)wire[2 * i] << 8 | wire[2 * i + 1]);
}

void mb_registers_to_wire(const uint16_t *registers, size_t count, uint8_t *wire) {
    for (size_t i = 0; i < count; i++) {
        wire[2 * i] = (uint8_t)(registers[i] >> 8);
        wire[2 * i + 1] = (uint8_t)registers[i];
    }
}

/* ---- numbers across registers ---- */

/* Every width goes through these two: `count` registers (1, 2 or 4) hold the low 16 * count
 * bits of a uint64_t, most significant register first in ABCD. */
static uint64_t registers_get(const uint16_t *registers, size_t count, enum mb_order order) {
    uint64_t value = 0;
    for (size_t i = 0; i < count; i++) {
        uint16_t word = registers[order_reverses_registers(order) ? count - 1 - i : i];
        if (order_swaps_bytes(order))
            word = swap_bytes(word);
        value = value << 16 | word;
    }
    return value;
}

static void registers_set(uint16_t *registers, size_t count, uint64_t value, enum mb_order order) {
    for (size_t i = 0; i < count; i++) {
        uint16_t word = (uint16_t)(value >> (16 * (count - 1 - i)));
        if (order_swaps_bytes(order))
            word = swap_bytes(word);
        registers[order_reverses_registers(order) ? count - 1 - i : i] = word;
    }
}

/* Signed values are converted through their unsigned bit patterns with memcpy, which keeps the
 * two's complement bits without relying on implementation-defined narrowing conversions. */

uint16_t mb_get_reg_u16(const uint16_t *registers, enum mb_order order) {
    return (uint16_t)registers_get(registers, 1, order);
}

void mb_set_reg_u16(uint16_t *registers, uint16_t value, enum mb_order order) {
    registers_set(registers, 1, value, order);
}

int16_t mb_get_reg_i16(const uint16_t *registers, enum mb_order order) {
    uint16_t bits = mb_get_reg_u16(registers, order);
    int16_t value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

void mb_set_reg_i16(uint16_t *registers, int16_t value, enum mb_order order) {
    uint16_t bits;
    memcpy(&bits, &value, sizeof bits);
    mb_set_reg_u16(registers, bits, order);
}

uint32_t mb_get_reg_u32(const uint16_t *registers, enum mb_order order) {
    return (uint32_t)registers_get(registers, 2, order);
}

void mb_set_reg_u32(uint16_t *registers, uint32_t value, enum mb_order order) {
    registers_set(registers, 2, value, order);
}

int32_t mb_get_reg_i32(const uint16_t *registers, enum mb_order order) {
    uint32_t bits = mb_get_reg_u32(registers, order);
    int32_t value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

void mb_set_reg_i32(uint16_t *registers, int32_t value, enum mb_order order) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    mb_set_reg_u32(registers, bits, order);
}

float mb_get_reg_f32(const uint16_t *registers, enum mb_order order) {
    _Static_assert(sizeof(float) == sizeof(uint32_t), "float must be 32-bit IEEE 754");
    uint32_t bits = mb_get_reg_u32(registers, order);
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

void mb_set_reg_f32(uint16_t *registers, float value, enum mb_order order) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    mb_set_reg_u32(registers, bits, order);
}

uint64_t mb_get_reg_u64(const uint16_t *registers, enum mb_order order) {
    return registers_get(registers, 4, order);
}

void mb_set_reg_u64(uint16_t *registers, uint64_t value, enum mb_order order) {
    registers_set(registers, 4, value, order);
}

int64_t mb_get_reg_i64(const uint16_t *registers, enum mb_order order) {
    uint64_t bits = mb_get_reg_u64(registers, order);
    int64_t value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

void mb_set_reg_i64(uint16_t *registers, int64_t value, enum mb_order order) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    mb_set_reg_u64(registers, bits, order);
}

double mb_get_reg_f64(const uint16_t *registers, enum mb_order order) {
    _Static_assert(sizeof(double) == sizeof(uint64_t), "double must be 64-bit IEEE 754");
    uint64_t bits = mb_get_reg_u64(registers, order);
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

void mb_set_reg_f64(uint16_t *registers, double value, enum mb_order order) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    mb_set_reg_u64(registers, bits, order);
}

/* ---- ASCII strings ---- */

/* Strings keep the registers in order whatever the order says: only the byte swap applies, so
 * character 2i is the high byte of register i unless the order swaps bytes. */
static uint8_t string_char_get(const uint16_t *registers, size_t index, enum mb_order order) {
    uint16_t word = registers[index / 2];
    int high = (index % 2 == 0) != order_swaps_bytes(order);
    return (uint8_t)(high ? word >> 8 : word);
}

int mb_get_reg_string(const uint16_t *registers, size_t count, enum mb_order order, char *text,
                      size_t capacity) {
    if (capacity == 0)
        return MB_ENOSPC;
    /* The length is returned as an int, so a buffer beyond INT_MAX counts as INT_MAX long. */
    size_t room = capacity - 1 < (size_t)INT_MAX ? capacity - 1 : (size_t)INT_MAX;
    size_t available = count < SIZE_MAX / 2 ? 2 * count : SIZE_MAX;
    size_t length = 0;
    while (length < available && length < room) {
        uint8_t c = string_char_get(registers, length, order);
        if (c == 0)
            break;
        text[length++] = (char)c;
    }
    text[length] = '\0';
    if (length == room && length < available && string_char_get(registers, length, order) != 0)
        return MB_ENOSPC;
    return (int)length;
}

int mb_set_reg_string(uint16_t *registers, size_t count, enum mb_order order, const char *text) {
    if (text == NULL)
        return MB_EINVAL;
    size_t length = strlen(text);
    size_t used = length / 2 + length % 2;
    if (used > count)
        return MB_ENOSPC;
    if (used > (size_t)INT_MAX)
        return MB_EINVAL;
    for (size_t i = 0; i < count; i++) {
        uint8_t first = 2 * i < length ? (uint8_t)text[2 * i] : 0;
        uint8_t second = 2 * i + 1 < length ? (uint8_t)text[2 * i + 1] : 0;
        uint16_t word = (uint16_t)(first << 8 | second);
        registers[i] = order_swaps_bytes(order) ? swap_bytes(word) : word;
    }
    return (int)used;
}
