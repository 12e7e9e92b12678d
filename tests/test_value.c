/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/value.h"

static const enum mb_order all_orders[] = {MB_ORDER_ABCD, MB_ORDER_CDAB, MB_ORDER_BADC,
                                           MB_ORDER_DCBA};
#define ORDER_COUNT (sizeof all_orders / sizeof all_orders[0])

/* Registers compare equal to the listed values exactly. */
#define CHECK_REGISTERS(got, ...)                             \
    do {                                                      \
        static const uint16_t want_regs_[] = {__VA_ARGS__};   \
        size_t n_ = sizeof want_regs_ / sizeof want_regs_[0]; \
        for (size_t i_ = 0; i_ < n_; i_++)                    \
            CHECK_EQ((got)[i_], want_regs_[i_]);              \
    } while (0)

static uint32_t float_bits(float value) {
    uint32_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static float bits_float(uint32_t bits) {
    float value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

static uint64_t double_bits(double value) {
    uint64_t bits;
    memcpy(&bits, &value, sizeof bits);
    return bits;
}

static double bits_double(uint64_t bits) {
    double value;
    memcpy(&value, &bits, sizeof value);
    return value;
}

/* ---- orders by name ---- */

TEST(order_parse_accepts_the_four_names_in_any_case) {
    enum mb_order order = MB_ORDER_DCBA;
    CHECK_EQ(mb_order_parse("ABCD", &order), 0);
    CHECK_EQ(order, MB_ORDER_ABCD);
    CHECK_EQ(mb_order_parse("cdab", &order), 0);
    CHECK_EQ(order, MB_ORDER_CDAB);
    CHECK_EQ(mb_order_parse("BaDc", &order), 0);
    CHECK_EQ(order, MB_ORDER_BADC);
    CHECK_EQ(mb_order_parse("dcba", &order), 0);
    CHECK_EQ(order, MB_ORDER_DCBA);
    CHECK_EQ(mb_order_parse("abcd", &order), 0);
    CHECK_EQ(order, MB_ORDER_ABCD);
}

TEST(order_parse_refuses_anything_else_and_leaves_the_order_alone) {
    enum mb_order order = MB_ORDER_BADC;
    CHECK_EQ(mb_order_parse("", &order), MB_EINVAL);
    CHECK_EQ(mb_order_parse("AB", &order), MB_EINVAL);
    CHECK_EQ(mb_order_parse("ABC", &order), MB_EINVAL);
    CHECK_EQ(mb_order_parse("ABCDE", &order), MB_EINVAL);
    CHECK_EQ(mb_order_parse("abcx", &order), MB_EINVAL);
    CHECK_EQ(mb_order_parse(" ABCD", &order), MB_EINVAL);
    CHECK_EQ(mb_order_parse("ABCD ", &order), MB_EINVAL);
    CHECK_EQ(mb_order_parse("DCAB", &order), MB_EINVAL);
    CHECK_EQ(mb_order_parse(NULL, &order), MB_EINVAL);
    CHECK_EQ(mb_order_parse("ABCD", NULL), MB_EINVAL);
    CHECK_EQ(order, MB_ORDER_BADC);
}

TEST(order_name_gives_each_name_and_question_mark_outside_the_enum) {
    CHECK_STR(mb_order_name(MB_ORDER_ABCD), "ABCD");
    CHECK_STR(mb_order_name(MB_ORDER_CDAB), "CDAB");
    CHECK_STR(mb_order_name(MB_ORDER_BADC), "BADC");
    CHECK_STR(mb_order_name(MB_ORDER_DCBA), "DCBA");
    CHECK_STR(mb_order_name((enum mb_order)4), "?");
    CHECK_STR(mb_order_name((enum mb_order) - 1), "?");
    for (size_t i = 0; i < ORDER_COUNT; i++) {
        enum mb_order parsed = (enum mb_order)99;
        CHECK_EQ(mb_order_parse(mb_order_name(all_orders[i]), &parsed), 0);
        CHECK_EQ(parsed, all_orders[i]);
    }
}

/* ---- bits ---- */

TEST(bits_are_least_significant_first_as_in_the_fc1_example) {
    /* The spec's FC 1 response: coils 20..27 are CD, 28..35 are 6B, 36..38 are 05. */
    static const uint8_t packed[] = {0xCD, 0x6B, 0x05};
    static const uint8_t coils[19] = {1, 0, 1, 1, 0, 0, 1, 1, 1, 1, 0, 1, 0, 1, 1, 0, 1, 0, 1};
    uint8_t values[19];
    mb_bits_unpack(packed, 19, values);
    CHECK(memcmp(values, coils, sizeof coils) == 0);
    for (size_t i = 0; i < 19; i++)
        CHECK_EQ(mb_bits_get(packed, i), coils[i]);
    CHECK_EQ(mb_bits_get(packed, 19), 0);
}

TEST(bits_pack_zero_pads_and_treats_non_zero_as_one) {
    static const uint8_t values[10] = {1, 0, 7, 0xFF, 0, 0, 0, 0x80, 0, 2};
    uint8_t packed[3] = {0xEE, 0xEE, 0xEE};
    mb_bits_pack(values, 10, packed);
    CHECK_BYTES(packed, 3, 0x8D, 0x02, 0xEE);
    mb_bits_pack(values, 0, packed);
    CHECK_BYTES(packed, 3, 0x8D, 0x02, 0xEE);
}

TEST(bits_pack_of_the_fc15_example_gives_cd_01) {
    /* Coils 20..29 of the spec's FC 15 example: 1 0 1 1 0 0 1 1 1 0. */
    static const uint8_t values[10] = {1, 0, 1, 1, 0, 0, 1, 1, 1, 0};
    uint8_t packed[2];
    mb_bits_pack(values, 10, packed);
    CHECK_BYTES(packed, 2, 0xCD, 0x01);
}

TEST(bits_set_touches_only_its_bit) {
    uint8_t packed[2] = {0x00, 0xFF};
    mb_bits_set(packed, 3, 1);
    CHECK_BYTES(packed, 2, 0x08, 0xFF);
    mb_bits_set(packed, 3, 42);
    CHECK_BYTES(packed, 2, 0x08, 0xFF);
    mb_bits_set(packed, 15, 0);
    CHECK_BYTES(packed, 2, 0x08, 0x7F);
    mb_bits_set(packed, 8, 0);
    CHECK_BYTES(packed, 2, 0x08, 0x7E);
    mb_bits_set(packed, 3, 0);
    CHECK_BYTES(packed, 2, 0x00, 0x7E);
    mb_bits_set(packed, 0, -1);
    CHECK_BYTES(packed, 2, 0x01, 0x7E);
}

TEST(bits_pack_and_unpack_round_trip) {
    uint8_t values[37], again[37], packed[5];
    for (size_t i = 0; i < sizeof values; i++)
        values[i] = (uint8_t)((i * 7 + i / 3) % 2);
    mb_bits_pack(values, sizeof values, packed);
    mb_bits_unpack(packed, sizeof values, again);
    CHECK(memcmp(values, again, sizeof values) == 0);
    CHECK_EQ(packed[4] >> 5, 0); /* padding bits 37..39 */
}

static void naive_copy(uint8_t *dst, size_t dst_index, const uint8_t *src, size_t src_index,
                       size_t count) {
    for (size_t i = 0; i < count; i++) {
        uint8_t mask = (uint8_t)(1u << ((dst_index + i) % 8));
        if ((src[(src_index + i) / 8] >> ((src_index + i) % 8)) & 1)
            dst[(dst_index + i) / 8] |= mask;
        else
            dst[(dst_index + i) / 8] &= (uint8_t)~mask;
    }
}

TEST(bits_copy_matches_a_naive_copy_for_every_offset_and_count) {
    uint8_t src[8];
    for (size_t i = 0; i < sizeof src; i++)
        src[i] = (uint8_t)(0x5A ^ (i * 0x3D) ^ (i << 5));
    for (size_t src_index = 0; src_index < 16; src_index++) {
        for (size_t dst_index = 0; dst_index < 16; dst_index++) {
            for (size_t count = 0; count + src_index <= 64 && count + dst_index <= 64; count++) {
                for (int fill = 0; fill < 2; fill++) {
                    uint8_t got[8], want[8];
                    memset(got, fill ? 0xFF : 0x00, sizeof got);
                    memset(want, fill ? 0xFF : 0x00, sizeof want);
                    mb_bits_copy(got, dst_index, src, src_index, count);
                    naive_copy(want, dst_index, src, src_index, count);
                    if (memcmp(got, want, sizeof got) != 0) {
                        harness_fail(__FILE__, __LINE__,
                                     "copy of %zu bits from %zu to %zu over 0x%02X differs", count,
                                     src_index, dst_index, fill ? 0xFF : 0x00);
                        harness_hexdump("got ", got, sizeof got);
                        harness_hexdump("want", want, sizeof want);
                        return;
                    }
                    harness_checks++;
                }
            }
        }
    }
}

TEST(bits_copy_reads_nothing_past_the_last_source_bit) {
    /* The source ends at the very end of a readable page. */
    static const uint8_t bytes[3] = {0xA5, 0x3C, 0x96};
    for (size_t src_index = 0; src_index < 16; src_index++) {
        for (size_t dst_index = 0; dst_index < 16; dst_index++) {
            size_t count = 24 - src_index;
            uint8_t got[6] = {0}, want[6] = {0};
            const uint8_t *src = guard_copy(bytes, sizeof bytes);
            mb_bits_copy(got, dst_index, src, src_index, count);
            naive_copy(want, dst_index, bytes, src_index, count);
            CHECK(memcmp(got, want, sizeof got) == 0);
        }
    }
}

TEST(bits_copy_of_nothing_changes_nothing) {
    uint8_t dst[2] = {0x12, 0x34};
    static const uint8_t src[2] = {0xFF, 0xFF};
    mb_bits_copy(dst, 3, src, 5, 0);
    CHECK_BYTES(dst, 2, 0x12, 0x34);
}

/* ---- registers to and from the wire ---- */

TEST(registers_from_wire_are_big_endian) {
    uint16_t registers[3];
    mb_registers_from_wire((const uint8_t[]){0x02, 0x2B, 0x00, 0x00, 0x00, 0x64}, 3, registers);
    CHECK_REGISTERS(registers, 0x022B, 0x0000, 0x0064);
}

TEST(registers_to_wire_are_big_endian) {
    static const uint16_t registers[3] = {0x022B, 0x0000, 0x0064};
    uint8_t wire[7] = {0, 0, 0, 0, 0, 0, 0xEE};
    mb_registers_to_wire(registers, 3, wire);
    CHECK_BYTES(wire, 7, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64, 0xEE);
}

/* ---- numbers across registers: the layouts the header defines ---- */

TEST(u16_is_swapped_only_by_the_byte_swapping_orders) {
    uint16_t r[2] = {0, 0xEEEE};
    mb_set_reg_u16(r, 0x1122, MB_ORDER_ABCD);
    CHECK_REGISTERS(r, 0x1122, 0xEEEE);
    mb_set_reg_u16(r, 0x1122, MB_ORDER_CDAB);
    CHECK_REGISTERS(r, 0x1122, 0xEEEE);
    mb_set_reg_u16(r, 0x1122, MB_ORDER_BADC);
    CHECK_REGISTERS(r, 0x2211, 0xEEEE);
    mb_set_reg_u16(r, 0x1122, MB_ORDER_DCBA);
    CHECK_REGISTERS(r, 0x2211, 0xEEEE);
    static const uint16_t reg[1] = {0x1122};
    CHECK_EQ(mb_get_reg_u16(reg, MB_ORDER_ABCD), 0x1122);
    CHECK_EQ(mb_get_reg_u16(reg, MB_ORDER_CDAB), 0x1122);
    CHECK_EQ(mb_get_reg_u16(reg, MB_ORDER_BADC), 0x2211);
    CHECK_EQ(mb_get_reg_u16(reg, MB_ORDER_DCBA), 0x2211);
}

TEST(i16_keeps_the_sign) {
    uint16_t r[1];
    mb_set_reg_i16(r, -2, MB_ORDER_ABCD);
    CHECK_REGISTERS(r, 0xFFFE);
    CHECK_EQ(mb_get_reg_i16(r, MB_ORDER_ABCD), -2);
    mb_set_reg_i16(r, -32768, MB_ORDER_BADC);
    CHECK_REGISTERS(r, 0x0080);
    CHECK_EQ(mb_get_reg_i16(r, MB_ORDER_BADC), -32768);
    CHECK_EQ(mb_get_reg_i16(r, MB_ORDER_ABCD), 128);
    mb_set_reg_i16(r, 32767, MB_ORDER_DCBA);
    CHECK_REGISTERS(r, 0xFF7F);
    CHECK_EQ(mb_get_reg_i16(r, MB_ORDER_CDAB), -129);
}

TEST(u32_0x11223344_in_each_order) {
    uint16_t r[3] = {0, 0, 0xEEEE};
    mb_set_reg_u32(r, 0x11223344u, MB_ORDER_ABCD);
    CHECK_REGISTERS(r, 0x1122, 0x3344, 0xEEEE);
    mb_set_reg_u32(r, 0x11223344u, MB_ORDER_CDAB);
    CHECK_REGISTERS(r, 0x3344, 0x1122, 0xEEEE);
    mb_set_reg_u32(r, 0x11223344u, MB_ORDER_BADC);
    CHECK_REGISTERS(r, 0x2211, 0x4433, 0xEEEE);
    mb_set_reg_u32(r, 0x11223344u, MB_ORDER_DCBA);
    CHECK_REGISTERS(r, 0x4433, 0x2211, 0xEEEE);

    CHECK_EQ(mb_get_reg_u32((const uint16_t[]){0x1122, 0x3344}, MB_ORDER_ABCD), 0x11223344u);
    CHECK_EQ(mb_get_reg_u32((const uint16_t[]){0x3344, 0x1122}, MB_ORDER_CDAB), 0x11223344u);
    CHECK_EQ(mb_get_reg_u32((const uint16_t[]){0x2211, 0x4433}, MB_ORDER_BADC), 0x11223344u);
    CHECK_EQ(mb_get_reg_u32((const uint16_t[]){0x4433, 0x2211}, MB_ORDER_DCBA), 0x11223344u);
}

TEST(i32_minus_2_in_each_order) {
    uint16_t r[2];
    mb_set_reg_i32(r, -2, MB_ORDER_ABCD);
    CHECK_REGISTERS(r, 0xFFFF, 0xFFFE);
    mb_set_reg_i32(r, -2, MB_ORDER_CDAB);
    CHECK_REGISTERS(r, 0xFFFE, 0xFFFF);
    mb_set_reg_i32(r, -2, MB_ORDER_BADC);
    CHECK_REGISTERS(r, 0xFFFF, 0xFEFF);
    mb_set_reg_i32(r, -2, MB_ORDER_DCBA);
    CHECK_REGISTERS(r, 0xFEFF, 0xFFFF);
    CHECK_EQ(mb_get_reg_i32(r, MB_ORDER_DCBA), -2);
    CHECK_EQ(mb_get_reg_i32((const uint16_t[]){0x8000, 0x0000}, MB_ORDER_ABCD), INT32_MIN);
    CHECK_EQ(mb_get_reg_i32((const uint16_t[]){0xFFFF, 0x7FFF}, MB_ORDER_CDAB), INT32_MAX);
}

TEST(u64_0x1122334455667788_in_each_order) {
    const uint64_t value = 0x1122334455667788u;
    uint16_t r[5] = {0, 0, 0, 0, 0xEEEE};
    mb_set_reg_u64(r, value, MB_ORDER_ABCD);
    CHECK_REGISTERS(r, 0x1122, 0x3344, 0x5566, 0x7788, 0xEEEE);
    mb_set_reg_u64(r, value, MB_ORDER_CDAB);
    CHECK_REGISTERS(r, 0x7788, 0x5566, 0x3344, 0x1122, 0xEEEE);
    mb_set_reg_u64(r, value, MB_ORDER_BADC);
    CHECK_REGISTERS(r, 0x2211, 0x4433, 0x6655, 0x8877, 0xEEEE);
    mb_set_reg_u64(r, value, MB_ORDER_DCBA);
    CHECK_REGISTERS(r, 0x8877, 0x6655, 0x4433, 0x2211, 0xEEEE);

    CHECK(mb_get_reg_u64((const uint16_t[]){0x1122, 0x3344, 0x5566, 0x7788}, MB_ORDER_ABCD) ==
          value);
    CHECK(mb_get_reg_u64((const uint16_t[]){0x7788, 0x5566, 0x3344, 0x1122}, MB_ORDER_CDAB) ==
          value);
    CHECK(mb_get_reg_u64((const uint16_t[]){0x2211, 0x4433, 0x6655, 0x8877}, MB_ORDER_BADC) ==
          value);
    CHECK(mb_get_reg_u64((const uint16_t[]){0x8877, 0x6655, 0x4433, 0x2211}, MB_ORDER_DCBA) ==
          value);
}

TEST(u64_keeps_the_top_bit) {
    uint16_t r[4];
    mb_set_reg_u64(r, 0xFEDCBA9876543210u, MB_ORDER_ABCD);
    CHECK_REGISTERS(r, 0xFEDC, 0xBA98, 0x7654, 0x3210);
    CHECK(mb_get_reg_u64(r, MB_ORDER_ABCD) == 0xFEDCBA9876543210u);
}

TEST(i64_extremes_in_each_order) {
    uint16_t r[4];
    mb_set_reg_i64(r, -2, MB_ORDER_ABCD);
    CHECK_REGISTERS(r, 0xFFFF, 0xFFFF, 0xFFFF, 0xFFFE);
    mb_set_reg_i64(r, -2, MB_ORDER_DCBA);
    CHECK_REGISTERS(r, 0xFEFF, 0xFFFF, 0xFFFF, 0xFFFF);
    mb_set_reg_i64(r, INT64_MIN, MB_ORDER_CDAB);
    CHECK_REGISTERS(r, 0x0000, 0x0000, 0x0000, 0x8000);
    CHECK(mb_get_reg_i64(r, MB_ORDER_CDAB) == INT64_MIN);
    mb_set_reg_i64(r, INT64_MAX, MB_ORDER_BADC);
    CHECK_REGISTERS(r, 0xFF7F, 0xFFFF, 0xFFFF, 0xFFFF);
    CHECK(mb_get_reg_i64(r, MB_ORDER_BADC) == INT64_MAX);
}

/* ---- floats: bits compared through memcpy, never with == ---- */

TEST(f32_123_456_is_42f6e979_in_each_order) {
    uint16_t r[2];
    CHECK_EQ(float_bits(123.456f), 0x42F6E979u);
    mb_set_reg_f32(r, 123.456f, MB_ORDER_ABCD);
    CHECK_REGISTERS(r, 0x42F6, 0xE979);
    mb_set_reg_f32(r, 123.456f, MB_ORDER_CDAB);
    CHECK_REGISTERS(r, 0xE979, 0x42F6);
    mb_set_reg_f32(r, 123.456f, MB_ORDER_BADC);
    CHECK_REGISTERS(r, 0xF642, 0x79E9);
    mb_set_reg_f32(r, 123.456f, MB_ORDER_DCBA);
    CHECK_REGISTERS(r, 0x79E9, 0xF642);
    CHECK_EQ(float_bits(mb_get_reg_f32((const uint16_t[]){0x42F6, 0xE979}, MB_ORDER_ABCD)),
             0x42F6E979u);
    CHECK_EQ(float_bits(mb_get_reg_f32((const uint16_t[]){0xE979, 0x42F6}, MB_ORDER_CDAB)),
             0x42F6E979u);
    CHECK_EQ(float_bits(mb_get_reg_f32((const uint16_t[]){0xF642, 0x79E9}, MB_ORDER_BADC)),
             0x42F6E979u);
    CHECK_EQ(float_bits(mb_get_reg_f32((const uint16_t[]){0x79E9, 0xF642}, MB_ORDER_DCBA)),
             0x42F6E979u);
}

TEST(f32_special_values_keep_every_bit) {
    /* -0.0, +inf, -inf, smallest subnormal, quiet NaNs with payloads and either sign. */
    static const uint32_t specials[] = {0x80000000u, 0x7F800000u, 0xFF800000u, 0x00000001u,
                                        0x7FC12345u, 0xFFC00001u, 0x7FFFFFFFu};
    for (size_t s = 0; s < sizeof specials / sizeof specials[0]; s++) {
        for (size_t o = 0; o < ORDER_COUNT; o++) {
            uint16_t r[2];
            mb_set_reg_f32(r, bits_float(specials[s]), all_orders[o]);
            CHECK_EQ(mb_get_reg_u32(r, all_orders[o]), specials[s]);
            CHECK_EQ(float_bits(mb_get_reg_f32(r, all_orders[o])), specials[s]);
        }
    }
    uint16_t r[2];
    mb_set_reg_f32(r, -0.0f, MB_ORDER_ABCD);
    CHECK_REGISTERS(r, 0x8000, 0x0000);
    mb_set_reg_f32(r, bits_float(0x7FC12345u), MB_ORDER_DCBA);
    CHECK_REGISTERS(r, 0x4523, 0xC17F);
}

TEST(f64_special_values_keep_every_bit) {
    static const uint64_t specials[] = {
        0x8000000000000000u, 0x7FF0000000000000u, 0xFFF0000000000000u, 0x0000000000000001u,
        0x7FF8000000000123u, 0xFFF8DEADBEEF0001u, 0x405EDD2F1A9FBE77u /* 123.456 */};
    for (size_t s = 0; s < sizeof specials / sizeof specials[0]; s++) {
        for (size_t o = 0; o < ORDER_COUNT; o++) {
            uint16_t r[4];
            mb_set_reg_f64(r, bits_double(specials[s]), all_orders[o]);
            CHECK(mb_get_reg_u64(r, all_orders[o]) == specials[s]);
            CHECK(double_bits(mb_get_reg_f64(r, all_orders[o])) == specials[s]);
        }
    }
}

TEST(f64_123_456_in_each_order) {
    uint16_t r[4];
    CHECK(double_bits(123.456) == 0x405EDD2F1A9FBE77u);
    mb_set_reg_f64(r, 123.456, MB_ORDER_ABCD);
    CHECK_REGISTERS(r, 0x405E, 0xDD2F, 0x1A9F, 0xBE77);
    mb_set_reg_f64(r, 123.456, MB_ORDER_CDAB);
    CHECK_REGISTERS(r, 0xBE77, 0x1A9F, 0xDD2F, 0x405E);
    mb_set_reg_f64(r, 123.456, MB_ORDER_BADC);
    CHECK_REGISTERS(r, 0x5E40, 0x2FDD, 0x9F1A, 0x77BE);
    mb_set_reg_f64(r, 123.456, MB_ORDER_DCBA);
    CHECK_REGISTERS(r, 0x77BE, 0x9F1A, 0x2FDD, 0x5E40);
    CHECK(double_bits(mb_get_reg_f64(r, MB_ORDER_DCBA)) == 0x405EDD2F1A9FBE77u);
}

TEST(every_type_round_trips_set_then_get_in_every_order) {
    static const uint64_t patterns[] = {0,
                                        1,
                                        0x8000000000000000u,
                                        0xFFFFFFFFFFFFFFFFu,
                                        0x0123456789ABCDEFu,
                                        0xFEDCBA9876543210u,
                                        0x7FF8000000000001u,
                                        0x00000000FFC00001u};
    for (size_t p = 0; p < sizeof patterns / sizeof patterns[0]; p++) {
        uint64_t bits = patterns[p];
        uint16_t u16 = (uint16_t)bits;
        uint32_t u32 = (uint32_t)bits;
        int16_t i16;
        int32_t i32;
        int64_t i64;
        memcpy(&i16, &u16, sizeof i16);
        memcpy(&i32, &u32, sizeof i32);
        memcpy(&i64, &bits, sizeof i64);
        for (size_t o = 0; o < ORDER_COUNT; o++) {
            enum mb_order order = all_orders[o];
            uint16_t r[4];
            mb_set_reg_u16(r, u16, order);
            CHECK_EQ(mb_get_reg_u16(r, order), u16);
            mb_set_reg_i16(r, i16, order);
            CHECK_EQ(mb_get_reg_i16(r, order), i16);
            mb_set_reg_u32(r, u32, order);
            CHECK_EQ(mb_get_reg_u32(r, order), u32);
            mb_set_reg_i32(r, i32, order);
            CHECK_EQ(mb_get_reg_i32(r, order), i32);
            mb_set_reg_f32(r, bits_float(u32), order);
            CHECK_EQ(float_bits(mb_get_reg_f32(r, order)), u32);
            mb_set_reg_u64(r, bits, order);
            CHECK(mb_get_reg_u64(r, order) == bits);
            mb_set_reg_i64(r, i64, order);
            CHECK(mb_get_reg_i64(r, order) == i64);
            mb_set_reg_f64(r, bits_double(bits), order);
            CHECK(double_bits(mb_get_reg_f64(r, order)) == bits);
        }
    }
}

TEST(setters_write_only_their_own_registers) {
    for (size_t o = 0; o < ORDER_COUNT; o++) {
        uint16_t r[6] = {0xAAAA, 0, 0, 0, 0, 0xBBBB};
        mb_set_reg_u16(r + 1, 0x0102, all_orders[o]);
        CHECK_EQ(r[0], 0xAAAA);
        CHECK_EQ(r[2], 0);
        mb_set_reg_f32(r + 1, 1.0f, all_orders[o]);
        CHECK_EQ(r[0], 0xAAAA);
        CHECK_EQ(r[3], 0);
        mb_set_reg_f64(r + 1, -1.0, all_orders[o]);
        CHECK_EQ(r[0], 0xAAAA);
        CHECK_EQ(r[5], 0xBBBB);
    }
}

/* ---- strings ---- */

TEST(string_set_puts_the_first_character_high_unless_bytes_swap) {
    uint16_t r[3];
    CHECK_EQ(mb_set_reg_string(r, 3, MB_ORDER_ABCD, "ABCD"), 2);
    CHECK_REGISTERS(r, 0x4142, 0x4344, 0x0000);
    CHECK_EQ(mb_set_reg_string(r, 3, MB_ORDER_CDAB, "ABCD"), 2);
    CHECK_REGISTERS(r, 0x4142, 0x4344, 0x0000);
    CHECK_EQ(mb_set_reg_string(r, 3, MB_ORDER_BADC, "ABCD"), 2);
    CHECK_REGISTERS(r, 0x4241, 0x4443, 0x0000);
    CHECK_EQ(mb_set_reg_string(r, 3, MB_ORDER_DCBA, "ABCD"), 2);
    CHECK_REGISTERS(r, 0x4241, 0x4443, 0x0000);
}

TEST(string_set_of_odd_length_pads_the_last_register_with_nul) {
    uint16_t r[4] = {0xEEEE, 0xEEEE, 0xEEEE, 0xEEEE};
    CHECK_EQ(mb_set_reg_string(r, 3, MB_ORDER_ABCD, "ABC"), 2);
    CHECK_REGISTERS(r, 0x4142, 0x4300, 0x0000, 0xEEEE);
    CHECK_EQ(mb_set_reg_string(r, 3, MB_ORDER_BADC, "ABC"), 2);
    CHECK_REGISTERS(r, 0x4241, 0x0043, 0x0000, 0xEEEE);
}

TEST(string_set_of_exact_fit_has_no_terminator) {
    uint16_t r[3] = {0xEEEE, 0xEEEE, 0xEEEE};
    CHECK_EQ(mb_set_reg_string(r, 2, MB_ORDER_ABCD, "WXYZ"), 2);
    CHECK_REGISTERS(r, 0x5758, 0x595A, 0xEEEE);
}

TEST(string_set_too_long_returns_enospc_and_writes_nothing) {
    uint16_t r[3] = {0xEEEE, 0xEEEE, 0xEEEE};
    CHECK_EQ(mb_set_reg_string(r, 2, MB_ORDER_ABCD, "WXYZ!"), MB_ENOSPC);
    CHECK_REGISTERS(r, 0xEEEE, 0xEEEE, 0xEEEE);
    CHECK_EQ(mb_set_reg_string(r, 0, MB_ORDER_ABCD, "W"), MB_ENOSPC);
    CHECK_REGISTERS(r, 0xEEEE, 0xEEEE, 0xEEEE);
}

TEST(string_set_of_empty_text_clears_the_registers) {
    uint16_t r[2] = {0xEEEE, 0xEEEE};
    CHECK_EQ(mb_set_reg_string(r, 2, MB_ORDER_DCBA, ""), 0);
    CHECK_REGISTERS(r, 0x0000, 0x0000);
    CHECK_EQ(mb_set_reg_string(r, 0, MB_ORDER_ABCD, ""), 0);
    CHECK_EQ(mb_set_reg_string(r, 2, MB_ORDER_ABCD, NULL), MB_EINVAL);
}

TEST(string_get_reads_in_each_order) {
    static const uint16_t high_first[2] = {0x4142, 0x4344};
    char text[8];
    CHECK_EQ(mb_get_reg_string(high_first, 2, MB_ORDER_ABCD, text, sizeof text), 4);
    CHECK_STR(text, "ABCD");
    CHECK_EQ(mb_get_reg_string(high_first, 2, MB_ORDER_CDAB, text, sizeof text), 4);
    CHECK_STR(text, "ABCD");
    CHECK_EQ(mb_get_reg_string(high_first, 2, MB_ORDER_BADC, text, sizeof text), 4);
    CHECK_STR(text, "BADC");
    CHECK_EQ(mb_get_reg_string(high_first, 2, MB_ORDER_DCBA, text, sizeof text), 4);
    CHECK_STR(text, "BADC");
}

TEST(string_get_stops_at_the_first_nul) {
    static const uint16_t r[3] = {0x4142, 0x4300, 0x4445};
    char text[8];
    memset(text, 'x', sizeof text);
    CHECK_EQ(mb_get_reg_string(r, 3, MB_ORDER_ABCD, text, sizeof text), 3);
    CHECK_STR(text, "ABC");
    static const uint16_t swapped[2] = {0x0041, 0x4243};
    CHECK_EQ(mb_get_reg_string(swapped, 2, MB_ORDER_BADC, text, sizeof text), 1);
    CHECK_STR(text, "A");
    CHECK_EQ(mb_get_reg_string(swapped, 2, MB_ORDER_ABCD, text, sizeof text), 0);
    CHECK_STR(text, "");
}

TEST(string_get_of_full_registers_reads_them_all) {
    static const uint16_t r[2] = {0x5758, 0x595A};
    char text[5];
    CHECK_EQ(mb_get_reg_string(r, 2, MB_ORDER_ABCD, text, sizeof text), 4);
    CHECK_STR(text, "WXYZ");
}

TEST(string_get_with_too_small_a_buffer_cuts_and_terminates) {
    static const uint16_t r[3] = {0x4142, 0x4344, 0x4500};
    char text[8];
    memset(text, 'x', sizeof text);
    CHECK_EQ(mb_get_reg_string(r, 3, MB_ORDER_ABCD, text, 4), MB_ENOSPC);
    CHECK_STR(text, "ABC");
    CHECK_EQ(text[4], 'x');
    CHECK_EQ(mb_get_reg_string(r, 3, MB_ORDER_ABCD, text, 1), MB_ENOSPC);
    CHECK_STR(text, "");
    /* Exactly enough room for the five characters and the NUL is no cut. */
    CHECK_EQ(mb_get_reg_string(r, 3, MB_ORDER_ABCD, text, 6), 5);
    CHECK_STR(text, "ABCDE");
    CHECK_EQ(mb_get_reg_string(r, 3, MB_ORDER_ABCD, text, 5), MB_ENOSPC);
    CHECK_STR(text, "ABCD");
}

TEST(string_get_with_capacity_0_writes_nothing) {
    static const uint16_t r[1] = {0x4142};
    char text[2] = {'x', 'y'};
    CHECK_EQ(mb_get_reg_string(r, 1, MB_ORDER_ABCD, text, 0), MB_ENOSPC);
    CHECK_EQ(text[0], 'x');
    CHECK_EQ(text[1], 'y');
    CHECK_EQ(mb_get_reg_string(r, 1, MB_ORDER_ABCD, NULL, 0), MB_ENOSPC);
}

TEST(string_get_of_0_registers_is_empty) {
    char text[2] = {'x', 'y'};
    CHECK_EQ(mb_get_reg_string(NULL, 0, MB_ORDER_ABCD, text, sizeof text), 0);
    CHECK_STR(text, "");
}

TEST(strings_round_trip_in_every_order) {
    static const char *const texts[] = {"", "A", "AB", "Modbus", "odd len", "0123456789"};
    for (size_t t = 0; t < sizeof texts / sizeof texts[0]; t++) {
        for (size_t o = 0; o < ORDER_COUNT; o++) {
            uint16_t r[5];
            char text[16];
            size_t length = strlen(texts[t]);
            CHECK_EQ(mb_set_reg_string(r, 5, all_orders[o], texts[t]), (length + 1) / 2);
            CHECK_EQ(mb_get_reg_string(r, 5, all_orders[o], text, sizeof text), length);
            CHECK_STR(text, texts[t]);
        }
    }
}

int main(void) {
    RUN(order_parse_accepts_the_four_names_in_any_case);
    RUN(order_parse_refuses_anything_else_and_leaves_the_order_alone);
    RUN(order_name_gives_each_name_and_question_mark_outside_the_enum);
    RUN(bits_are_least_significant_first_as_in_the_fc1_example);
    RUN(bits_pack_zero_pads_and_treats_non_zero_as_one);
    RUN(bits_pack_of_the_fc15_example_gives_cd_01);
    RUN(bits_set_touches_only_its_bit);
    RUN(bits_pack_and_unpack_round_trip);
    RUN(bits_copy_matches_a_naive_copy_for_every_offset_and_count);
    RUN(bits_copy_reads_nothing_past_the_last_source_bit);
    RUN(bits_copy_of_nothing_changes_nothing);
    RUN(registers_from_wire_are_big_endian);
    RUN(registers_to_wire_are_big_endian);
    RUN(u16_is_swapped_only_by_the_byte_swapping_orders);
    RUN(i16_keeps_the_sign);
    RUN(u32_0x11223344_in_each_order);
    RUN(i32_minus_2_in_each_order);
    RUN(u64_0x1122334455667788_in_each_order);
    RUN(u64_keeps_the_top_bit);
    RUN(i64_extremes_in_each_order);
    RUN(f32_123_456_is_42f6e979_in_each_order);
    RUN(f32_special_values_keep_every_bit);
    RUN(f64_special_values_keep_every_bit);
    RUN(f64_123_456_in_each_order);
    RUN(every_type_round_trips_set_then_get_in_every_order);
    RUN(setters_write_only_their_own_registers);
    RUN(string_set_puts_the_first_character_high_unless_bytes_swap);
    RUN(string_set_of_odd_length_pads_the_last_register_with_nul);
    RUN(string_set_of_exact_fit_has_no_terminator);
    RUN(string_set_too_long_returns_enospc_and_writes_nothing);
    RUN(string_set_of_empty_text_clears_the_registers);
    RUN(string_get_reads_in_each_order);
    RUN(string_get_stops_at_the_first_nul);
    RUN(string_get_of_full_registers_reads_them_all);
    RUN(string_get_with_too_small_a_buffer_cuts_and_terminates);
    RUN(string_get_with_capacity_0_writes_nothing);
    RUN(string_get_of_0_registers_is_empty);
    RUN(strings_round_trip_in_every_order);
    return harness_result();
}
