/* SPDX-License-Identifier: MIT */
/* Request PDUs: every function code decoded, encoded, and refused at each of its limits. */
#include <string.h>

#include "harness.h"
#include "mbsec/pdu.h"

/* Decodes `pdu`, expecting `want` (0 or an error), with the input at the end of a page. */
static int decode(const uint8_t *pdu, size_t length, struct mb_request *request) {
    return mb_request_decode(guard_copy(pdu, length), length, request);
}

/* Encodes *request and checks the bytes equal `want`, then decodes them back. */
static void check_round_trip(const struct mb_request *request, const uint8_t *want,
                             size_t want_length, int line) {
    uint8_t pdu[MB_PDU_MAX];
    int length = mb_request_encode(request, pdu, sizeof pdu);
    if (length < 0) {
        harness_fail(__FILE__, line, "encode failed: %s", mb_error_name(length));
        return;
    }
    harness_bytes_equal(__FILE__, line, pdu, (size_t)length, want, want_length);
    /* One byte less room than needed must fail whole. */
    uint8_t small[MB_PDU_MAX];
    memset(small, 0xEE, sizeof small);
    if (mb_request_encode(request, small, (size_t)length - 1) != MB_ENOSPC)
        harness_fail(__FILE__, line, "encode into %d bytes did not give MB_ENOSPC", length - 1);
    for (int i = 0; i < length - 1; i++)
        if (small[i] != 0xEE) {
            harness_fail(__FILE__, line, "encode wrote into a buffer that was too small");
            break;
        }
}
#define ROUND_TRIP(request, ...) check_round_trip(request, BYTES(__VA_ARGS__), __LINE__)

TEST(fc01_read_coils_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x01, 0x00, 0x13, 0x00, 0x13), &r), 0);
    CHECK_EQ(r.function, MB_FC_READ_COILS);
    CHECK_EQ(r.read.address, 0x13);
    CHECK_EQ(r.read.quantity, 19);
    ROUND_TRIP(&r, 0x01, 0x00, 0x13, 0x00, 0x13);
}

TEST(fc01_quantity_limits_are_1_and_2000) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x01, 0x00, 0x00, 0x00, 0x00), &r), MB_EQUANTITY);
    CHECK_EQ(decode(BYTES(0x01, 0x00, 0x00, 0x00, 0x01), &r), 0);
    CHECK_EQ(decode(BYTES(0x01, 0x00, 0x00, 0x07, 0xD0), &r), 0);
    CHECK_EQ(decode(BYTES(0x01, 0x00, 0x00, 0x07, 0xD1), &r), MB_EQUANTITY);
    CHECK_EQ(decode(BYTES(0x02, 0x00, 0x00, 0x07, 0xD1), &r), MB_EQUANTITY);
    struct mb_request too_many = {.function = 1, .read = {.address = 0, .quantity = 2001}};
    uint8_t pdu[MB_PDU_MAX];
    CHECK_EQ(mb_request_encode(&too_many, pdu, sizeof pdu), MB_EQUANTITY);
}

TEST(fc02_read_discrete_inputs_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x02, 0x00, 0xC4, 0x00, 0x16), &r), 0);
    CHECK_EQ(r.read.address, 196);
    CHECK_EQ(r.read.quantity, 22);
    ROUND_TRIP(&r, 0x02, 0x00, 0xC4, 0x00, 0x16);
}

TEST(fc03_read_holding_registers_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x03, 0x00, 0x6B, 0x00, 0x03), &r), 0);
    CHECK_EQ(r.function, MB_FC_READ_HOLDING_REGISTERS);
    CHECK_EQ(r.read.address, 107);
    CHECK_EQ(r.read.quantity, 3);
    ROUND_TRIP(&r, 0x03, 0x00, 0x6B, 0x00, 0x03);
}

TEST(fc03_and_fc04_quantity_limits_are_1_and_125) {
    struct mb_request r;
    for (uint8_t fc = 3; fc <= 4; fc++) {
        CHECK_EQ(decode(BYTES(fc, 0x00, 0x00, 0x00, 0x00), &r), MB_EQUANTITY);
        CHECK_EQ(decode(BYTES(fc, 0x00, 0x00, 0x00, 0x01), &r), 0);
        CHECK_EQ(decode(BYTES(fc, 0x00, 0x00, 0x00, 0x7D), &r), 0);
        CHECK_EQ(decode(BYTES(fc, 0x00, 0x00, 0x00, 0x7E), &r), MB_EQUANTITY);
        CHECK_EQ(decode(BYTES(fc, 0xFF, 0xFF, 0xFF, 0xFF), &r), MB_EQUANTITY);
    }
}

TEST(fixed_size_requests_are_refused_one_byte_short_or_long) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x03, 0x00, 0x6B, 0x00), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x03, 0x00, 0x6B, 0x00, 0x03, 0x00), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x03), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x05, 0x00, 0xAC, 0xFF), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x06, 0x00, 0x01, 0x00, 0x03, 0x00), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x16, 0x00, 0x04, 0x00, 0xF2, 0x00), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x18, 0x04), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x18, 0x04, 0xDE, 0x00), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x07, 0x00), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x0B, 0x00), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x0C, 0x00), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x11, 0x00), &r), MB_ELENGTH);
}

TEST(fc04_read_input_registers_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x04, 0x00, 0x08, 0x00, 0x01), &r), 0);
    CHECK_EQ(r.read.address, 8);
    CHECK_EQ(r.read.quantity, 1);
    ROUND_TRIP(&r, 0x04, 0x00, 0x08, 0x00, 0x01);
}

TEST(fc05_accepts_only_ff00_and_0000) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x05, 0x00, 0xAC, 0xFF, 0x00), &r), 0);
    CHECK_EQ(r.write_single.address, 172);
    CHECK_EQ(r.write_single.value, MB_COIL_ON);
    ROUND_TRIP(&r, 0x05, 0x00, 0xAC, 0xFF, 0x00);
    CHECK_EQ(decode(BYTES(0x05, 0x00, 0xAC, 0x00, 0x00), &r), 0);
    CHECK_EQ(r.write_single.value, MB_COIL_OFF);
    CHECK_EQ(decode(BYTES(0x05, 0x00, 0xAC, 0x00, 0x01), &r), MB_EVALUE);
    CHECK_EQ(decode(BYTES(0x05, 0x00, 0xAC, 0xFF, 0xFF), &r), MB_EVALUE);
    CHECK_EQ(decode(BYTES(0x05, 0x00, 0xAC, 0x12, 0x34), &r), MB_EVALUE);
    struct mb_request bad = {.function = 5, .write_single = {.address = 1, .value = 1}};
    uint8_t pdu[8];
    CHECK_EQ(mb_request_encode(&bad, pdu, sizeof pdu), MB_EVALUE);
}

TEST(fc06_write_single_register_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x06, 0x00, 0x01, 0x00, 0x03), &r), 0);
    CHECK_EQ(r.write_single.address, 1);
    CHECK_EQ(r.write_single.value, 3);
    ROUND_TRIP(&r, 0x06, 0x00, 0x01, 0x00, 0x03);
}

TEST(fc07_fc11_fc12_fc17_carry_no_data) {
    struct mb_request r;
    const uint8_t codes[] = {0x07, 0x0B, 0x0C, 0x11};
    for (size_t i = 0; i < sizeof codes; i++) {
        CHECK_EQ(decode(&codes[i], 1, &r), 0);
        CHECK_EQ(r.function, codes[i]);
        uint8_t pdu[4];
        CHECK_EQ(mb_request_encode(&r, pdu, sizeof pdu), 1);
        CHECK_EQ(pdu[0], codes[i]);
    }
}

TEST(fc08_return_query_data_echoes_any_even_length) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x00, 0xA5, 0x37), &r), 0);
    CHECK_EQ(r.diagnostics.sub_function, MB_DIAG_RETURN_QUERY_DATA);
    CHECK_EQ(r.diagnostics.data_length, 2);
    CHECK_BYTES(r.diagnostics.data, r.diagnostics.data_length, 0xA5, 0x37);
    ROUND_TRIP(&r, 0x08, 0x00, 0x00, 0xA5, 0x37);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04), &r), 0);
    CHECK_EQ(r.diagnostics.data_length, 4);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x00), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x00, 0x01, 0x02, 0x03), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x08, 0x00), &r), MB_ETRUNCATED);
    /* The longest echo fills the PDU: 1 + 2 + 250. */
    uint8_t longest[MB_PDU_MAX] = {0x08, 0x00, 0x00};
    CHECK_EQ(decode(longest, sizeof longest, &r), 0);
    CHECK_EQ(r.diagnostics.data_length, 250);
}

TEST(fc08_every_defined_sub_function_decodes_and_reserved_ones_are_refused) {
    struct mb_request r;
    for (unsigned sub = 0; sub <= 0x20; sub++) {
        int defined = sub <= 4 || (sub >= 0x0A && sub <= 0x12) || sub == 0x14;
        uint8_t pdu[] = {0x08, 0x00, (uint8_t)sub, 0x00, 0x00};
        if (sub == 0) /* echo data is free-form */
            pdu[3] = 0x12;
        int rc = decode(pdu, sizeof pdu, &r);
        CHECK_EQ(rc, defined ? 0 : MB_ESUBFUNCTION);
        if (rc == 0) {
            CHECK_EQ(r.diagnostics.sub_function, sub);
            uint8_t out[8];
            CHECK_EQ(mb_request_encode(&r, out, sizeof out), 5);
            CHECK(memcmp(out, pdu, 5) == 0);
        }
    }
    CHECK_EQ(decode(BYTES(0x08, 0xFF, 0xFF, 0x00, 0x00), &r), MB_ESUBFUNCTION);
    CHECK_EQ(mb_error_exception(MB_ESUBFUNCTION), MB_EX_ILLEGAL_FUNCTION);
}

TEST(fc08_sub_function_data_must_be_what_the_spec_allows) {
    struct mb_request r;
    /* restart communications: 0000 keeps the event log, FF00 clears it; nothing else */
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x01, 0x00, 0x00), &r), 0);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x01, 0xFF, 0x00), &r), 0);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x01, 0x12, 0x34), &r), MB_EVALUE);
    /* change ASCII delimiter: the character, then 00 */
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x03, 0x3B, 0x00), &r), 0);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x03, 0x3B, 0x01), &r), MB_EVALUE);
    /* counters and the rest: 0000 only, exactly two bytes */
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x04, 0x00, 0x01), &r), MB_EVALUE);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x0B, 0xFF, 0x00), &r), MB_EVALUE);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x0B, 0x00), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x0B, 0x00, 0x00, 0x00), &r), MB_ELENGTH);
}

TEST(fc15_write_multiple_coils_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01), &r), 0);
    CHECK_EQ(r.write_multiple.address, 19);
    CHECK_EQ(r.write_multiple.quantity, 10);
    CHECK_BYTES(r.write_multiple.values, 2, 0xCD, 0x01);
    ROUND_TRIP(&r, 0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01);
}

TEST(fc15_quantity_1_to_1968_and_byte_count_ceil_quantity_over_8) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x0F, 0x00, 0x00, 0x00, 0x00, 0x00), &r), MB_EQUANTITY);
    CHECK_EQ(decode(BYTES(0x0F, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01), &r), 0);
    CHECK_EQ(decode(BYTES(0x0F, 0x00, 0x00, 0x00, 0x08, 0x01, 0xFF), &r), 0);
    CHECK_EQ(decode(BYTES(0x0F, 0x00, 0x00, 0x00, 0x09, 0x01, 0xFF), &r), MB_EBYTECOUNT);
    CHECK_EQ(decode(BYTES(0x0F, 0x00, 0x00, 0x00, 0x09, 0x02, 0xFF), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x0F, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01, 0x00), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x0F, 0x00, 0x00, 0x00, 0x01), &r), MB_ETRUNCATED);
    uint8_t pdu[MB_PDU_MAX] = {0x0F, 0x00, 0x00, 0x07, 0xB0, 0xF6}; /* 1968 coils, 246 bytes */
    CHECK_EQ(decode(pdu, 6 + 246, &r), 0);
    pdu[4] = 0xB1; /* 1969 coils */
    pdu[5] = 0xF7;
    CHECK_EQ(decode(pdu, 6 + 247, &r), MB_EQUANTITY);
}

TEST(fc16_write_multiple_registers_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02), &r), 0);
    CHECK_EQ(r.write_multiple.address, 1);
    CHECK_EQ(r.write_multiple.quantity, 2);
    CHECK_EQ(mb_get_u16(r.write_multiple.values), 0x000A);
    CHECK_EQ(mb_get_u16(r.write_multiple.values + 2), 0x0102);
    ROUND_TRIP(&r, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02);
}

TEST(fc16_quantity_1_to_123_and_byte_count_twice_quantity) {
    struct mb_request r;
    uint8_t pdu[MB_PDU_MAX] = {0x10, 0x00, 0x00, 0x00, 0x7B, 0xF6}; /* 123 registers */
    CHECK_EQ(decode(pdu, 6 + 246, &r), 0);
    CHECK_EQ(r.write_multiple.quantity, 123);
    CHECK_EQ(decode(BYTES(0x10, 0x00, 0x00, 0x00, 0x00, 0x00), &r), MB_EQUANTITY);
    CHECK_EQ(decode(BYTES(0x10, 0x00, 0x00, 0x00, 0x7C, 0xF8), &r), MB_EQUANTITY);
    CHECK_EQ(decode(BYTES(0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x01), &r), 0);
    CHECK_EQ(decode(BYTES(0x10, 0x00, 0x00, 0x00, 0x01, 0x03, 0x00, 0x01, 0x00), &r),
             MB_EBYTECOUNT);
    CHECK_EQ(decode(BYTES(0x10, 0x00, 0x00, 0x00, 0x02, 0x04, 0x00, 0x01), &r), MB_ETRUNCATED);
    struct mb_request no_values = {.function = 16, .write_multiple = {.address = 0, .quantity = 1}};
    CHECK_EQ(mb_request_encode(&no_values, pdu, sizeof pdu), MB_EINVAL);
}

TEST(fc20_read_file_record_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, 0x06, 0x00, 0x03,
                          0x00, 0x09, 0x00, 0x02),
                    &r),
             0);
    CHECK_EQ(r.file.count, 2);
    CHECK_EQ(r.file.layout, MB_FILE_READ_REQUEST);
    size_t offset = 0;
    struct mb_file_record record;
    CHECK_EQ(mb_file_records_next(&r.file, &offset, &record), 1);
    CHECK_EQ(record.reference_type, 6);
    CHECK_EQ(record.file_number, 4);
    CHECK_EQ(record.record_number, 1);
    CHECK_EQ(record.record_length, 2);
    CHECK_EQ(mb_file_records_next(&r.file, &offset, &record), 1);
    CHECK_EQ(record.file_number, 3);
    CHECK_EQ(record.record_number, 9);
    CHECK_EQ(mb_file_records_next(&r.file, &offset, &record), 0);
    ROUND_TRIP(&r, 0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, 0x06, 0x00, 0x03, 0x00,
               0x09, 0x00, 0x02);
}

TEST(fc20_byte_count_must_be_0x07_to_0xf5_in_whole_sub_requests) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x14, 0x06, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00), &r), MB_EBYTECOUNT);
    CHECK_EQ(decode(BYTES(0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01), &r), 0);
    CHECK_EQ(decode(BYTES(0x14, 0x08, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06), &r),
             MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x14), &r), MB_ETRUNCATED);
    /* 35 sub-requests of one register each: 245 bytes, and a response of 35 * 4 = 140. */
    uint8_t pdu[MB_PDU_MAX + 8] = {0x14, 0xF5};
    for (int i = 0; i < 35; i++) {
        uint8_t sub[] = {0x06, 0x00, 0x01, 0x00, (uint8_t)i, 0x00, 0x01};
        memcpy(pdu + 2 + 7 * i, sub, 7);
    }
    CHECK_EQ(decode(pdu, 2 + 245, &r), 0);
    CHECK_EQ(r.file.count, 35);
    pdu[1] = 0xFC; /* 36 sub-requests would be 252 bytes */
    memcpy(pdu + 2 + 245, pdu + 2, 7);
    CHECK_EQ(decode(pdu, 2 + 252, &r), MB_EINVAL); /* over the PDU limit */
    CHECK_EQ(decode(pdu, MB_PDU_MAX, &r), MB_EBYTECOUNT);
}

TEST(fc20_a_response_that_would_not_fit_a_pdu_is_refused) {
    struct mb_request r;
    /* One group of 122 registers would need a response data length of 2 + 244 > 0xF5. */
    CHECK_EQ(decode(BYTES(0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x7A), &r), MB_EQUANTITY);
    /* 121 registers: 2 + 242 = 244 <= 0xF5. */
    CHECK_EQ(decode(BYTES(0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x79), &r), 0);
    /* Two groups: 2 + 2 * 60 + 2 + 2 * 61 = 246 is one too many. */
    CHECK_EQ(decode(BYTES(0x14, 0x0E, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x06, 0x00, 0x01,
                          0x00, 0x00, 0x00, 0x3D),
                    &r),
             MB_EQUANTITY);
    CHECK_EQ(decode(BYTES(0x14, 0x0E, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x3C, 0x06, 0x00, 0x01,
                          0x00, 0x00, 0x00, 0x3C),
                    &r),
             0);
    CHECK_EQ(mb_error_exception(MB_EQUANTITY), MB_EX_ILLEGAL_DATA_VALUE);
}

TEST(fc21_write_file_record_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF, 0x04,
                          0xBE, 0x10, 0x0D),
                    &r),
             0);
    CHECK_EQ(r.file.count, 1);
    size_t offset = 0;
    struct mb_file_record record;
    CHECK_EQ(mb_file_records_next(&r.file, &offset, &record), 1);
    CHECK_EQ(record.file_number, 4);
    CHECK_EQ(record.record_number, 7);
    CHECK_EQ(record.record_length, 3);
    CHECK_BYTES(record.data, 6, 0x06, 0xAF, 0x04, 0xBE, 0x10, 0x0D);
    CHECK_EQ(mb_file_records_next(&r.file, &offset, &record), 0);
    ROUND_TRIP(&r, 0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF, 0x04, 0xBE,
               0x10, 0x0D);
}

TEST(fc21_sub_requests_must_fill_the_byte_count_exactly) {
    struct mb_request r;
    /* Record length says 3 registers but only 2 follow. */
    CHECK_EQ(
        decode(BYTES(0x15, 0x0B, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF, 0x04, 0xBE),
               &r),
        MB_ELENGTH);
    /* Byte count below 9. */
    CHECK_EQ(decode(BYTES(0x15, 0x08, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x00, 0x00), &r),
             MB_EBYTECOUNT);
    /* Byte count longer than the PDU. */
    CHECK_EQ(decode(BYTES(0x15, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF, 0x04,
                          0xBE, 0x10, 0x0D),
                    &r),
             MB_ETRUNCATED);
}

TEST(file_records_are_built_with_append) {
    uint8_t area[64];
    size_t used = 0;
    struct mb_file_record first = {
        .reference_type = 6, .file_number = 4, .record_number = 1, .record_length = 2};
    struct mb_file_record second = {
        .reference_type = 6, .file_number = 3, .record_number = 9, .record_length = 2};
    CHECK_EQ(mb_file_records_append(MB_FILE_READ_REQUEST, &first, area, sizeof area, &used), 0);
    CHECK_EQ(mb_file_records_append(MB_FILE_READ_REQUEST, &second, area, sizeof area, &used), 0);
    CHECK_EQ(used, 14);
    struct mb_request r = {
        .function = MB_FC_READ_FILE_RECORD,
        .file = {.data = area, .length = (uint8_t)used, .layout = MB_FILE_READ_REQUEST}};
    ROUND_TRIP(&r, 0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, 0x06, 0x00, 0x03, 0x00,
               0x09, 0x00, 0x02);
    size_t tight = 0;
    CHECK_EQ(mb_file_records_append(MB_FILE_READ_REQUEST, &first, area, 6, &tight), MB_ENOSPC);
    CHECK_EQ(tight, 0);
    struct mb_file_record empty = {.reference_type = 6, .file_number = 1, .record_length = 0};
    CHECK_EQ(mb_file_records_append(MB_FILE_WRITE, &empty, area, sizeof area, &tight), MB_EINVAL);
    /* A write group over 0xFF bytes cannot be carried by the byte count. */
    static uint8_t registers[2 * 200];
    uint8_t big[512];
    struct mb_file_record huge = {
        .reference_type = 6, .file_number = 1, .record_length = 125, .data = registers};
    tight = 0;
    CHECK_EQ(mb_file_records_append(MB_FILE_WRITE, &huge, big, sizeof big, &tight), MB_EINVAL);
    huge.record_length = 124; /* 7 + 248 = 255 */
    CHECK_EQ(mb_file_records_append(MB_FILE_WRITE, &huge, big, sizeof big, &tight), 0);
    CHECK_EQ(tight, 255);
    /* The layout must match the function code. */
    r.file.layout = MB_FILE_WRITE;
    uint8_t pdu[MB_PDU_MAX];
    CHECK_EQ(mb_request_encode(&r, pdu, sizeof pdu), MB_EINVAL);
}

TEST(fc22_mask_write_register_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25), &r), 0);
    CHECK_EQ(r.mask_write.address, 4);
    CHECK_EQ(r.mask_write.and_mask, 0x00F2);
    CHECK_EQ(r.mask_write.or_mask, 0x0025);
    ROUND_TRIP(&r, 0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25);
}

TEST(fc23_read_write_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00, 0xFF,
                          0x00, 0xFF, 0x00, 0xFF),
                    &r),
             0);
    CHECK_EQ(r.read_write.read_address, 3);
    CHECK_EQ(r.read_write.read_quantity, 6);
    CHECK_EQ(r.read_write.write_address, 14);
    CHECK_EQ(r.read_write.write_quantity, 3);
    CHECK_EQ(mb_get_u16(r.read_write.values + 4), 0x00FF);
    ROUND_TRIP(&r, 0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00, 0xFF, 0x00,
               0xFF, 0x00, 0xFF);
}

TEST(fc23_read_1_to_125_write_1_to_121_byte_count_twice_write) {
    struct mb_request r;
    CHECK_EQ(
        decode(BYTES(0x17, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x01), &r),
        MB_EQUANTITY);
    CHECK_EQ(
        decode(BYTES(0x17, 0x00, 0x00, 0x00, 0x7E, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x01), &r),
        MB_EQUANTITY);
    CHECK_EQ(
        decode(BYTES(0x17, 0x00, 0x00, 0x00, 0x7D, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x01), &r),
        0);
    CHECK_EQ(decode(BYTES(0x17, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00, 0x00), &r),
             MB_EQUANTITY);
    CHECK_EQ(
        decode(BYTES(0x17, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x03, 0x00, 0x01, 0x00),
               &r),
        MB_EBYTECOUNT);
    uint8_t pdu[MB_PDU_MAX] = {0x17, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x79, 0xF2};
    CHECK_EQ(decode(pdu, 10 + 242, &r), 0); /* 121 registers */
    pdu[8] = 0x7A;
    pdu[9] = 0xF4;
    CHECK_EQ(decode(pdu, MB_PDU_MAX, &r), MB_EQUANTITY); /* 122 */
}

TEST(fc24_read_fifo_queue_decodes_the_spec_example) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x18, 0x04, 0xDE), &r), 0);
    CHECK_EQ(r.fifo.address, 0x04DE);
    ROUND_TRIP(&r, 0x18, 0x04, 0xDE);
}

TEST(fc43_14_read_code_must_be_1_to_4) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x01, 0x00), &r), 0);
    CHECK_EQ(r.device_id.mei_type, MB_MEI_DEVICE_ID);
    CHECK_EQ(r.device_id.read_code, 1);
    CHECK_EQ(r.device_id.object_id, 0);
    ROUND_TRIP(&r, 0x2B, 0x0E, 0x01, 0x00);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x04, 0x81), &r), 0);
    CHECK_EQ(r.device_id.object_id, 0x81);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x00, 0x00), &r), MB_EVALUE);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x05, 0x00), &r), MB_EVALUE);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x01), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x01, 0x00, 0x00), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x2B), &r), MB_ETRUNCATED);
}

TEST(fc43_other_interfaces_pass_through_or_are_refused) {
    struct mb_request r;
    CHECK_EQ(decode(BYTES(0x2B, 0x0D, 0x00, 0x01, 0x02), &r), 0);
    CHECK_EQ(r.mei.mei_type, MB_MEI_CANOPEN);
    CHECK_EQ(r.mei.length, 3);
    ROUND_TRIP(&r, 0x2B, 0x0D, 0x00, 0x01, 0x02);
    CHECK_EQ(decode(BYTES(0x2B, 0x0F, 0x00), &r), MB_EMEI);
    CHECK_EQ(mb_error_exception(MB_EMEI), MB_EX_ILLEGAL_FUNCTION);
}

TEST(user_defined_codes_pass_through_as_raw_pdus) {
    struct mb_request r;
    for (unsigned fc = 0; fc <= 255; fc++) {
        uint8_t pdu[] = {(uint8_t)fc, 0xDE, 0xAD};
        if (!mb_function_is_user_defined((uint8_t)fc))
            continue;
        CHECK_EQ(decode(pdu, sizeof pdu, &r), 0);
        CHECK_EQ(r.raw.length, 2);
        CHECK_BYTES(r.raw.data, r.raw.length, 0xDE, 0xAD);
    }
    CHECK_EQ(mb_function_is_user_defined(64), 0);
    CHECK_EQ(mb_function_is_user_defined(65), 1);
    CHECK_EQ(mb_function_is_user_defined(72), 1);
    CHECK_EQ(mb_function_is_user_defined(73), 0);
    CHECK_EQ(mb_function_is_user_defined(99), 0);
    CHECK_EQ(mb_function_is_user_defined(100), 1);
    CHECK_EQ(mb_function_is_user_defined(110), 1);
    CHECK_EQ(mb_function_is_user_defined(111), 0);
    CHECK_EQ(decode(BYTES(0x64), &r), 0);
    CHECK_EQ(r.raw.length, 0);
    ROUND_TRIP(&r, 0x64);
}

TEST(reserved_and_invalid_function_codes_are_refused_with_efunction) {
    struct mb_request r;
    const uint8_t reserved[] = {0x00, 0x09, 0x0A, 0x0D, 0x0E, 0x12, 0x13, 0x19, 0x2A,
                                0x2C, 0x40, 0x49, 0x63, 0x6F, 0x7F, 0x80, 0x83, 0xFF};
    for (size_t i = 0; i < sizeof reserved; i++) {
        uint8_t pdu[] = {reserved[i], 0x00, 0x00, 0x00, 0x01};
        CHECK_EQ(decode(pdu, sizeof pdu, &r), MB_EFUNCTION);
        struct mb_request encode = {.function = reserved[i]};
        uint8_t out[8];
        CHECK_EQ(mb_request_encode(&encode, out, sizeof out), MB_EFUNCTION);
    }
    CHECK_EQ(mb_error_exception(MB_EFUNCTION), MB_EX_ILLEGAL_FUNCTION);
}

TEST(decode_refuses_null_empty_and_oversized_input) {
    struct mb_request r;
    uint8_t big[MB_PDU_MAX + 1] = {0x41};
    CHECK_EQ(mb_request_decode(NULL, 5, &r), MB_EINVAL);
    CHECK_EQ(mb_request_decode(big, 5, NULL), MB_EINVAL);
    CHECK_EQ(mb_request_decode(big, 0, &r), MB_EINVAL);
    CHECK_EQ(mb_request_decode(big, MB_PDU_MAX, &r), 0);
    CHECK_EQ(mb_request_decode(big, MB_PDU_MAX + 1, &r), MB_EINVAL);
    CHECK_EQ(mb_request_encode(NULL, big, sizeof big), MB_EINVAL);
    CHECK_EQ(mb_request_encode(&r, NULL, 8), MB_EINVAL);
}

TEST(every_prefix_of_every_request_is_handled_without_over_read) {
    /* guard_copy() puts each prefix against an inaccessible page: an over-read crashes. */
    static const uint8_t requests[][16] = {
        {0x01, 0x00, 0x13, 0x00, 0x13},
        {0x08, 0x00, 0x00, 0xA5, 0x37},
        {0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01},
        {0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02},
        {0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, 0x06, 0x00, 0x03, 0x00, 0x09, 0x00,
         0x02},
        {0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF, 0x04, 0xBE, 0x10, 0x0D},
        {0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00, 0xFF, 0x00, 0xFF, 0x00,
         0xFF},
        {0x2B, 0x0E, 0x01, 0x00},
    };
    static const size_t lengths[] = {5, 5, 8, 10, 16, 15, 16, 4};
    for (size_t v = 0; v < sizeof lengths / sizeof lengths[0]; v++) {
        struct mb_request r;
        for (size_t length = 1; length < lengths[v]; length++)
            CHECK(decode(requests[v], length, &r) < 0);
        CHECK_EQ(decode(requests[v], lengths[v], &r), 0);
    }
}

int main(void) {
    RUN(fc01_read_coils_decodes_the_spec_example);
    RUN(fc01_quantity_limits_are_1_and_2000);
    RUN(fc02_read_discrete_inputs_decodes_the_spec_example);
    RUN(fc03_read_holding_registers_decodes_the_spec_example);
    RUN(fc03_and_fc04_quantity_limits_are_1_and_125);
    RUN(fixed_size_requests_are_refused_one_byte_short_or_long);
    RUN(fc04_read_input_registers_decodes_the_spec_example);
    RUN(fc05_accepts_only_ff00_and_0000);
    RUN(fc06_write_single_register_decodes_the_spec_example);
    RUN(fc07_fc11_fc12_fc17_carry_no_data);
    RUN(fc08_return_query_data_echoes_any_even_length);
    RUN(fc08_every_defined_sub_function_decodes_and_reserved_ones_are_refused);
    RUN(fc08_sub_function_data_must_be_what_the_spec_allows);
    RUN(fc15_write_multiple_coils_decodes_the_spec_example);
    RUN(fc15_quantity_1_to_1968_and_byte_count_ceil_quantity_over_8);
    RUN(fc16_write_multiple_registers_decodes_the_spec_example);
    RUN(fc16_quantity_1_to_123_and_byte_count_twice_quantity);
    RUN(fc20_read_file_record_decodes_the_spec_example);
    RUN(fc20_byte_count_must_be_0x07_to_0xf5_in_whole_sub_requests);
    RUN(fc20_a_response_that_would_not_fit_a_pdu_is_refused);
    RUN(fc21_write_file_record_decodes_the_spec_example);
    RUN(fc21_sub_requests_must_fill_the_byte_count_exactly);
    RUN(file_records_are_built_with_append);
    RUN(fc22_mask_write_register_decodes_the_spec_example);
    RUN(fc23_read_write_decodes_the_spec_example);
    RUN(fc23_read_1_to_125_write_1_to_121_byte_count_twice_write);
    RUN(fc24_read_fifo_queue_decodes_the_spec_example);
    RUN(fc43_14_read_code_must_be_1_to_4);
    RUN(fc43_other_interfaces_pass_through_or_are_refused);
    RUN(user_defined_codes_pass_through_as_raw_pdus);
    RUN(reserved_and_invalid_function_codes_are_refused_with_efunction);
    RUN(decode_refuses_null_empty_and_oversized_input);
    RUN(every_prefix_of_every_request_is_handled_without_over_read);
    return harness_result();
}
