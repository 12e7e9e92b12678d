/* SPDX-License-Identifier: MIT */
/* Response PDUs: every function code decoded and encoded, exceptions as values, and the check
 * that a response answers its request. */
#include <string.h>

#include "harness.h"
#include "mbsec/pdu.h"

static int decode(const uint8_t *pdu, size_t length, struct mb_response *response) {
    return mb_response_decode(guard_copy(pdu, length), length, response);
}

static int request_of(const uint8_t *pdu, size_t length, struct mb_request *request) {
    static uint8_t copy[MB_PDU_MAX]; /* the request's views must outlive guard_copy() */
    memcpy(copy, pdu, length);
    return mb_request_decode(copy, length, request);
}

static void check_round_trip(const struct mb_response *response, const uint8_t *want,
                             size_t want_length, int line) {
    uint8_t pdu[MB_PDU_MAX];
    int length = mb_response_encode(response, pdu, sizeof pdu);
    if (length < 0) {
        harness_fail(__FILE__, line, "encode failed: %s", mb_error_name(length));
        return;
    }
    harness_bytes_equal(__FILE__, line, pdu, (size_t)length, want, want_length);
    if (mb_response_encode(response, pdu, (size_t)length - 1) != MB_ENOSPC)
        harness_fail(__FILE__, line, "encode into %d bytes did not give MB_ENOSPC", length - 1);
}
#define ROUND_TRIP(response, ...) check_round_trip(response, BYTES(__VA_ARGS__), __LINE__)

TEST(fc01_response_decodes_the_spec_example) {
    struct mb_response r;
    CHECK_EQ(decode(BYTES(0x01, 0x03, 0xCD, 0x6B, 0x05), &r), 0);
    CHECK_EQ(r.function, MB_FC_READ_COILS);
    CHECK_EQ(r.exception, 0);
    CHECK_EQ(r.read.byte_count, 3);
    CHECK_BYTES(r.read.data, 3, 0xCD, 0x6B, 0x05);
    ROUND_TRIP(&r, 0x01, 0x03, 0xCD, 0x6B, 0x05);
    struct mb_request q;
    CHECK_EQ(request_of(BYTES(0x01, 0x00, 0x13, 0x00, 0x13), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    /* 19 coils need 3 bytes: a request for 25 coils (4 bytes) does not match. */
    CHECK_EQ(request_of(BYTES(0x01, 0x00, 0x13, 0x00, 0x19), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
}

TEST(bit_read_byte_count_is_1_to_250) {
    struct mb_response r;
    CHECK_EQ(decode(BYTES(0x02, 0x00), &r), MB_EBYTECOUNT);
    CHECK_EQ(decode(BYTES(0x02, 0x01, 0xFF), &r), 0);
    uint8_t pdu[MB_PDU_MAX] = {0x02, 0xFA};
    CHECK_EQ(decode(pdu, 2 + 250, &r), 0);
    pdu[1] = 0xFB;
    CHECK_EQ(decode(pdu, 2 + 251, &r), MB_EBYTECOUNT);
    CHECK_EQ(decode(BYTES(0x02, 0x03, 0xAC, 0xDB), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x02, 0x03, 0xAC, 0xDB, 0x35, 0x00), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x02), &r), MB_ETRUNCATED);
}

TEST(fc03_response_decodes_the_spec_example) {
    struct mb_response r;
    CHECK_EQ(decode(BYTES(0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64), &r), 0);
    CHECK_EQ(r.read.byte_count, 6);
    CHECK_EQ(mb_get_u16(r.read.data), 555);
    CHECK_EQ(mb_get_u16(r.read.data + 2), 0);
    CHECK_EQ(mb_get_u16(r.read.data + 4), 100);
    ROUND_TRIP(&r, 0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64);
    struct mb_request q;
    CHECK_EQ(request_of(BYTES(0x03, 0x00, 0x6B, 0x00, 0x03), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(request_of(BYTES(0x03, 0x00, 0x6B, 0x00, 0x02), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    CHECK_EQ(request_of(BYTES(0x04, 0x00, 0x6B, 0x00, 0x03), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
}

TEST(register_read_byte_count_is_even_2_to_250) {
    struct mb_response r;
    CHECK_EQ(decode(BYTES(0x04, 0x02, 0x00, 0x0A), &r), 0);
    CHECK_EQ(decode(BYTES(0x04, 0x00), &r), MB_EBYTECOUNT);
    CHECK_EQ(decode(BYTES(0x04, 0x01, 0x00), &r), MB_EBYTECOUNT);
    CHECK_EQ(decode(BYTES(0x03, 0x03, 0x00, 0x00, 0x00), &r), MB_EBYTECOUNT);
    uint8_t pdu[MB_PDU_MAX] = {0x03, 0xFA};
    CHECK_EQ(decode(pdu, 2 + 250, &r), 0);
    pdu[1] = 0xFC;
    CHECK_EQ(decode(pdu, 2 + 251, &r), MB_EBYTECOUNT);
    struct mb_response odd = {.function = 3, .read = {.byte_count = 3, .data = pdu}};
    CHECK_EQ(mb_response_encode(&odd, pdu, sizeof pdu), MB_EBYTECOUNT);
}

TEST(fc05_and_fc06_responses_echo_the_request) {
    struct mb_response r;
    struct mb_request q;
    CHECK_EQ(decode(BYTES(0x05, 0x00, 0xAC, 0xFF, 0x00), &r), 0);
    CHECK_EQ(r.write_single.address, 0xAC);
    CHECK_EQ(r.write_single.value, 0xFF00);
    ROUND_TRIP(&r, 0x05, 0x00, 0xAC, 0xFF, 0x00);
    CHECK_EQ(request_of(BYTES(0x05, 0x00, 0xAC, 0xFF, 0x00), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(request_of(BYTES(0x05, 0x00, 0xAC, 0x00, 0x00), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    CHECK_EQ(decode(BYTES(0x05, 0x00, 0xAC, 0x12, 0x34), &r), MB_EVALUE);
    CHECK_EQ(decode(BYTES(0x06, 0x00, 0x01, 0x00, 0x03), &r), 0);
    CHECK_EQ(request_of(BYTES(0x06, 0x00, 0x02, 0x00, 0x03), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
}

TEST(fc07_response_carries_one_status_byte) {
    struct mb_response r;
    CHECK_EQ(decode(BYTES(0x07, 0x6D), &r), 0);
    CHECK_EQ(r.exception_status, 0x6D);
    ROUND_TRIP(&r, 0x07, 0x6D);
    CHECK_EQ(decode(BYTES(0x07), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x07, 0x6D, 0x00), &r), MB_ELENGTH);
}

TEST(fc08_response_echoes_sub_function_and_query_data) {
    struct mb_response r;
    struct mb_request q;
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x00, 0xA5, 0x37), &r), 0);
    CHECK_EQ(r.diagnostics.sub_function, 0);
    ROUND_TRIP(&r, 0x08, 0x00, 0x00, 0xA5, 0x37);
    CHECK_EQ(request_of(BYTES(0x08, 0x00, 0x00, 0xA5, 0x37), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(request_of(BYTES(0x08, 0x00, 0x00, 0xA5, 0x38), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    /* A counter answers with its value, not an echo. */
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x0B, 0x01, 0x2C), &r), 0);
    CHECK_EQ(mb_get_u16(r.diagnostics.data), 300);
    CHECK_EQ(request_of(BYTES(0x08, 0x00, 0x0B, 0x00, 0x00), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(request_of(BYTES(0x08, 0x00, 0x0C, 0x00, 0x00), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x15, 0x00, 0x00), &r), MB_ESUBFUNCTION);
}

TEST(fc08_sub_functions_that_echo_must_echo_their_data) {
    struct mb_response r;
    struct mb_request q;
    /* change ASCII delimiter to ';': an answer naming LF does not match */
    CHECK_EQ(request_of(BYTES(0x08, 0x00, 0x03, 0x3B, 0x00), &q), 0);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x03, 0x0A, 0x00), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x03, 0x3B, 0x00), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    /* force listen-only has no reply at all; one that is not even an echo is refused */
    CHECK_EQ(request_of(BYTES(0x08, 0x00, 0x04, 0x00, 0x00), &q), 0);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x04, 0x12, 0x34), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    /* restart, clear counters, clear overrun: echoes */
    CHECK_EQ(request_of(BYTES(0x08, 0x00, 0x01, 0xFF, 0x00), &q), 0);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x01, 0x00, 0x00), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    CHECK_EQ(request_of(BYTES(0x08, 0x00, 0x14, 0x00, 0x00), &q), 0);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x14, 0x00, 0x01), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    /* the diagnostic register answers with its value */
    CHECK_EQ(request_of(BYTES(0x08, 0x00, 0x02, 0x00, 0x00), &q), 0);
    CHECK_EQ(decode(BYTES(0x08, 0x00, 0x02, 0xBE, 0xEF), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
}

TEST(fc11_response_decodes_the_spec_example) {
    struct mb_response r;
    CHECK_EQ(decode(BYTES(0x0B, 0xFF, 0xFF, 0x01, 0x08), &r), 0);
    CHECK_EQ(r.event_counter.status, 0xFFFF);
    CHECK_EQ(r.event_counter.event_count, 264);
    ROUND_TRIP(&r, 0x0B, 0xFF, 0xFF, 0x01, 0x08);
    CHECK_EQ(decode(BYTES(0x0B, 0x12, 0x34, 0x01, 0x08), &r), MB_EVALUE);
    CHECK_EQ(decode(BYTES(0x0B, 0xFF, 0xFF, 0x01), &r), MB_ETRUNCATED);
}

TEST(fc12_response_decodes_the_spec_example) {
    struct mb_response r;
    CHECK_EQ(decode(BYTES(0x0C, 0x08, 0x00, 0x00, 0x01, 0x08, 0x01, 0x21, 0x20, 0x00), &r), 0);
    CHECK_EQ(r.event_log.status, 0);
    CHECK_EQ(r.event_log.event_count, 264);
    CHECK_EQ(r.event_log.message_count, 289);
    CHECK_EQ(r.event_log.event_length, 2);
    CHECK_BYTES(r.event_log.events, 2, 0x20, 0x00);
    ROUND_TRIP(&r, 0x0C, 0x08, 0x00, 0x00, 0x01, 0x08, 0x01, 0x21, 0x20, 0x00);
}

TEST(fc12_byte_count_is_6_to_70) {
    struct mb_response r;
    CHECK_EQ(decode(BYTES(0x0C, 0x05, 0x00, 0x00, 0x01, 0x08, 0x01), &r), MB_EBYTECOUNT);
    CHECK_EQ(decode(BYTES(0x0C, 0x06, 0x00, 0x00, 0x01, 0x08, 0x01, 0x21), &r), 0);
    CHECK_EQ(r.event_log.event_length, 0);
    uint8_t pdu[MB_PDU_MAX] = {0x0C, 70};
    CHECK_EQ(decode(pdu, 2 + 70, &r), 0);
    CHECK_EQ(r.event_log.event_length, 64);
    pdu[1] = 71;
    CHECK_EQ(decode(pdu, 2 + 71, &r), MB_EBYTECOUNT);
    struct mb_response too_long = {.function = 12,
                                   .event_log = {.event_length = 65, .events = pdu}};
    CHECK_EQ(mb_response_encode(&too_long, pdu, sizeof pdu), MB_EBYTECOUNT);
}

TEST(fc15_and_fc16_responses_echo_address_and_quantity) {
    struct mb_response r;
    struct mb_request q;
    CHECK_EQ(decode(BYTES(0x0F, 0x00, 0x13, 0x00, 0x0A), &r), 0);
    CHECK_EQ(r.write_multiple.address, 19);
    CHECK_EQ(r.write_multiple.quantity, 10);
    ROUND_TRIP(&r, 0x0F, 0x00, 0x13, 0x00, 0x0A);
    CHECK_EQ(request_of(BYTES(0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(decode(BYTES(0x10, 0x00, 0x01, 0x00, 0x02), &r), 0);
    CHECK_EQ(request_of(BYTES(0x10, 0x00, 0x01, 0x00, 0x01, 0x02, 0x00, 0x0A), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    CHECK_EQ(decode(BYTES(0x10, 0x00, 0x01, 0x00, 0x7C), &r), MB_EQUANTITY);
    CHECK_EQ(decode(BYTES(0x0F, 0x00, 0x01, 0x07, 0xB1), &r), MB_EQUANTITY);
    CHECK_EQ(decode(BYTES(0x0F, 0x00, 0x01, 0x00, 0x00), &r), MB_EQUANTITY);
}

TEST(fc17_response_needs_at_least_the_run_indicator) {
    struct mb_response r;
    CHECK_EQ(decode(BYTES(0x11, 0x02, 0x42, 0xFF), &r), 0);
    CHECK_EQ(r.server_id.byte_count, 2);
    CHECK_BYTES(r.server_id.data, 2, 0x42, 0xFF);
    ROUND_TRIP(&r, 0x11, 0x02, 0x42, 0xFF);
    CHECK_EQ(decode(BYTES(0x11, 0x00), &r), MB_EBYTECOUNT);
    CHECK_EQ(decode(BYTES(0x11, 0x03, 0x42, 0xFF), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x11), &r), MB_ETRUNCATED);
}

TEST(fc20_response_decodes_the_spec_example) {
    struct mb_response r;
    struct mb_request q;
    CHECK_EQ(decode(BYTES(0x14, 0x0C, 0x05, 0x06, 0x0D, 0xFE, 0x00, 0x20, 0x05, 0x06, 0x33, 0xCD,
                          0x00, 0x40),
                    &r),
             0);
    CHECK_EQ(r.file.count, 2);
    CHECK_EQ(r.file.layout, MB_FILE_READ_RESPONSE);
    size_t offset = 0;
    struct mb_file_record record;
    CHECK_EQ(mb_file_records_next(&r.file, &offset, &record), 1);
    CHECK_EQ(record.reference_type, 6);
    CHECK_EQ(record.record_length, 2);
    CHECK_BYTES(record.data, 4, 0x0D, 0xFE, 0x00, 0x20);
    CHECK_EQ(mb_file_records_next(&r.file, &offset, &record), 1);
    CHECK_BYTES(record.data, 4, 0x33, 0xCD, 0x00, 0x40);
    CHECK_EQ(mb_file_records_next(&r.file, &offset, &record), 0);
    ROUND_TRIP(&r, 0x14, 0x0C, 0x05, 0x06, 0x0D, 0xFE, 0x00, 0x20, 0x05, 0x06, 0x33, 0xCD, 0x00,
               0x40);
    CHECK_EQ(request_of(BYTES(0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, 0x06, 0x00,
                              0x03, 0x00, 0x09, 0x00, 0x02),
                        &q),
             0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    /* One group asked for three registers: the response's two do not answer it. */
    CHECK_EQ(request_of(BYTES(0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x03, 0x06, 0x00,
                              0x03, 0x00, 0x09, 0x00, 0x02),
                        &q),
             0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
}

TEST(fc20_matching_walks_every_group_and_does_not_trust_count) {
    struct mb_response r;
    /* A request built with mb_file_records_append() has no count set. */
    uint8_t area[16];
    size_t used = 0;
    struct mb_file_record asked = {
        .reference_type = 6, .file_number = 4, .record_number = 1, .record_length = 2};
    CHECK_EQ(mb_file_records_append(MB_FILE_READ_REQUEST, &asked, area, sizeof area, &used), 0);
    struct mb_request q = {
        .function = MB_FC_READ_FILE_RECORD,
        .file = {.data = area, .length = (uint8_t)used, .layout = MB_FILE_READ_REQUEST}};
    CHECK_EQ(decode(BYTES(0x14, 0x06, 0x05, 0x06, 0x0D, 0xFE, 0x00, 0x20), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    /* A stale count does not let an extra group through. */
    q.file.count = 2;
    CHECK_EQ(decode(BYTES(0x14, 0x08, 0x03, 0x06, 0x12, 0x34, 0x03, 0x06, 0x56, 0x78), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    /* Nor a missing one. */
    CHECK_EQ(request_of(BYTES(0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x01, 0x06, 0x00,
                              0x03, 0x00, 0x09, 0x00, 0x01),
                        &q),
             0);
    CHECK_EQ(decode(BYTES(0x14, 0x04, 0x03, 0x06, 0x12, 0x34), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
}

TEST(fc20_response_groups_must_be_well_formed) {
    struct mb_response r;
    /* file response length even */
    CHECK_EQ(decode(BYTES(0x14, 0x05, 0x04, 0x06, 0x0D, 0xFE, 0x00), &r), MB_ELENGTH);
    /* reference type not 6 */
    CHECK_EQ(decode(BYTES(0x14, 0x06, 0x05, 0x07, 0x0D, 0xFE, 0x00, 0x20), &r), MB_EVALUE);
    /* group runs past the byte count */
    CHECK_EQ(decode(BYTES(0x14, 0x05, 0x05, 0x06, 0x0D, 0xFE, 0x00), &r), MB_ELENGTH);
    /* byte count past the PDU */
    CHECK_EQ(decode(BYTES(0x14, 0x07, 0x05, 0x06, 0x0D, 0xFE, 0x00, 0x20), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x14, 0x01, 0x01), &r), MB_EBYTECOUNT);
    /* a group of 0 registers: file response length 1 */
    CHECK_EQ(decode(BYTES(0x14, 0x06, 0x01, 0x06, 0x03, 0x06, 0x12, 0x34), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x14, 0x04, 0x03, 0x06, 0x12, 0x34), &r), 0);
}

TEST(fc21_response_is_an_echo_of_the_request) {
    struct mb_response r;
    struct mb_request q;
    CHECK_EQ(decode(BYTES(0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF, 0x04,
                          0xBE, 0x10, 0x0D),
                    &r),
             0);
    CHECK_EQ(r.file.layout, MB_FILE_WRITE);
    CHECK_EQ(request_of(BYTES(0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF,
                              0x04, 0xBE, 0x10, 0x0D),
                        &q),
             0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(request_of(BYTES(0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF,
                              0x04, 0xBE, 0x10, 0x0E),
                        &q),
             0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
}

TEST(fc22_response_echoes_address_and_masks) {
    struct mb_response r;
    struct mb_request q;
    CHECK_EQ(decode(BYTES(0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25), &r), 0);
    ROUND_TRIP(&r, 0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25);
    CHECK_EQ(request_of(BYTES(0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(request_of(BYTES(0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x26), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
}

TEST(fc23_response_byte_count_answers_the_read_quantity) {
    struct mb_response r;
    struct mb_request q;
    CHECK_EQ(decode(BYTES(0x17, 0x0C, 0x00, 0xFE, 0x0A, 0xCD, 0x00, 0x01, 0x00, 0x03, 0x00, 0x0D,
                          0x00, 0xFF),
                    &r),
             0);
    CHECK_EQ(r.read.byte_count, 12);
    CHECK_EQ(mb_get_u16(r.read.data), 0x00FE);
    ROUND_TRIP(&r, 0x17, 0x0C, 0x00, 0xFE, 0x0A, 0xCD, 0x00, 0x01, 0x00, 0x03, 0x00, 0x0D, 0x00,
               0xFF);
    CHECK_EQ(request_of(BYTES(0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00,
                              0xFF, 0x00, 0xFF, 0x00, 0xFF),
                        &q),
             0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(request_of(BYTES(0x17, 0x00, 0x03, 0x00, 0x05, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00,
                              0xFF, 0x00, 0xFF, 0x00, 0xFF),
                        &q),
             0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
}

TEST(fc24_response_has_a_two_byte_byte_count_and_at_most_31_registers) {
    struct mb_response r;
    CHECK_EQ(decode(BYTES(0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84), &r), 0);
    CHECK_EQ(r.fifo.count, 2);
    CHECK_EQ(mb_get_u16(r.fifo.values), 0x01B8);
    CHECK_EQ(mb_get_u16(r.fifo.values + 2), 0x1284);
    ROUND_TRIP(&r, 0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84);
    CHECK_EQ(decode(BYTES(0x18, 0x00, 0x02, 0x00, 0x00), &r), 0);
    CHECK_EQ(r.fifo.count, 0);
    CHECK_EQ(decode(BYTES(0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x18, 0x00, 0x04, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84), &r),
             MB_EBYTECOUNT);
    uint8_t pdu[MB_PDU_MAX] = {0x18, 0x00, 0x40, 0x00, 0x1F}; /* 31 registers */
    CHECK_EQ(decode(pdu, 5 + 62, &r), 0);
    CHECK_EQ(r.fifo.count, 31);
    pdu[2] = 0x42;
    pdu[4] = 0x20; /* 32 */
    CHECK_EQ(decode(pdu, 5 + 64, &r), MB_EQUANTITY);
    struct mb_response too_many = {.function = 24, .fifo = {.count = 32, .values = pdu}};
    CHECK_EQ(mb_response_encode(&too_many, pdu, sizeof pdu), MB_EQUANTITY);
}

TEST(fc43_14_response_objects_are_walked_one_by_one) {
    struct mb_response r;
    struct mb_request q;
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x02, 0x00, 0x03, 'A', 'B', 'C', 0x01,
                          0x01, 'X'),
                    &r),
             0);
    CHECK_EQ(r.device_id.read_code, 1);
    CHECK_EQ(r.device_id.conformity_level, 1);
    CHECK_EQ(r.device_id.more_follows, 0);
    CHECK_EQ(r.device_id.object_count, 2);
    size_t offset = 0;
    struct mb_device_object object;
    CHECK_EQ(mb_device_objects_next(&r, &offset, &object), 1);
    CHECK_EQ(object.id, 0);
    CHECK_EQ(object.length, 3);
    CHECK_BYTES(object.value, 3, 'A', 'B', 'C');
    CHECK_EQ(mb_device_objects_next(&r, &offset, &object), 1);
    CHECK_EQ(object.id, 1);
    CHECK_EQ(mb_device_objects_next(&r, &offset, &object), 0);
    ROUND_TRIP(&r, 0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x02, 0x00, 0x03, 'A', 'B', 'C', 0x01, 0x01,
               'X');
    CHECK_EQ(request_of(BYTES(0x2B, 0x0E, 0x01, 0x00), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(request_of(BYTES(0x2B, 0x0E, 0x02, 0x00), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
}

TEST(fc43_14_response_header_and_objects_must_agree) {
    struct mb_response r;
    /* object count says 3, two objects present */
    CHECK_EQ(
        decode(BYTES(0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x03, 0x00, 0x01, 'A', 0x01, 0x01, 'X'),
               &r),
        MB_ETRUNCATED);
    /* trailing byte after the last object */
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x01, 'A', 0x00), &r),
             MB_ELENGTH);
    /* object length past the end */
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x01, 0x00, 0x05, 'A'), &r),
             MB_ETRUNCATED);
    /* conformity level 0x04, more-follows 0x01, read code 0 */
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x01, 0x04, 0x00, 0x00, 0x00), &r), MB_EVALUE);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x01, 0x01, 0x01, 0x00, 0x00), &r), MB_EVALUE);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x00, 0x01, 0x00, 0x00, 0x00), &r), MB_EVALUE);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x01, 0x83, 0x00, 0x00, 0x00), &r), 0);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x01, 0x83, 0x00, 0x00), &r), MB_ETRUNCATED);
}

TEST(fc43_14_individual_access_must_return_the_object_asked_for) {
    struct mb_response r;
    struct mb_request q;
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x04, 0x83, 0x00, 0x00, 0x01, 0x81, 0x03, 'a', 'b', 'c'), &r),
             0);
    CHECK_EQ(request_of(BYTES(0x2B, 0x0E, 0x04, 0x81), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(request_of(BYTES(0x2B, 0x0E, 0x04, 0x82), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    /* Individual access never has more to follow. */
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x04, 0x83, 0xFF, 0x82, 0x01, 0x81, 0x01, 'a'), &r),
             MB_EVALUE);
}

TEST(fc43_14_a_stream_must_start_where_asked_or_restart_at_0) {
    struct mb_response r;
    struct mb_request q;
    CHECK_EQ(request_of(BYTES(0x2B, 0x0E, 0x02, 0x04), &q), 0);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x02, 0x02, 0x00, 0x00, 0x01, 0x04, 0x01, 'p'), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x02, 0x02, 0x00, 0x00, 0x01, 0x00, 0x01, 'v'), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(decode(BYTES(0x2B, 0x0E, 0x02, 0x02, 0x00, 0x00, 0x01, 0x05, 0x01, 'm'), &r), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
}

TEST(exception_responses_are_values_not_errors) {
    struct mb_response r;
    struct mb_request q;
    CHECK_EQ(decode(BYTES(0x83, 0x02), &r), 0);
    CHECK_EQ(r.function, 3);
    CHECK_EQ(r.exception, MB_EX_ILLEGAL_DATA_ADDRESS);
    ROUND_TRIP(&r, 0x83, 0x02);
    CHECK_EQ(request_of(BYTES(0x03, 0x00, 0x6B, 0x00, 0x03), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), 0);
    CHECK_EQ(request_of(BYTES(0x04, 0x00, 0x6B, 0x00, 0x03), &q), 0);
    CHECK_EQ(mb_response_matches(&q, &r), MB_EMISMATCH);
    /* Every exception code is carried, known or not. */
    CHECK_EQ(decode(BYTES(0xC1, 0x7F), &r), 0);
    CHECK_EQ(r.function, 0x41);
    CHECK_EQ(r.exception, 0x7F);
    CHECK_EQ(decode(BYTES(0x83, 0x00), &r), MB_EEXCEPTION_CODE);
    CHECK_EQ(decode(BYTES(0x83), &r), MB_ETRUNCATED);
    CHECK_EQ(decode(BYTES(0x83, 0x02, 0x00), &r), MB_ELENGTH);
    CHECK_EQ(decode(BYTES(0x80, 0x01), &r), MB_EFUNCTION);
}

TEST(exception_encode_refuses_code_0_and_a_set_exception_bit) {
    uint8_t pdu[2];
    CHECK_EQ(mb_exception_encode(3, 2, pdu, sizeof pdu), 2);
    CHECK_BYTES(pdu, 2, 0x83, 0x02);
    CHECK_EQ(mb_exception_encode(3, 0, pdu, sizeof pdu), MB_EINVAL);
    CHECK_EQ(mb_exception_encode(0x83, 2, pdu, sizeof pdu), MB_EINVAL);
    CHECK_EQ(mb_exception_encode(0, 1, pdu, sizeof pdu), MB_EINVAL);
    CHECK_EQ(mb_exception_encode(3, 2, pdu, 1), MB_ENOSPC);
}

TEST(exception_answer_answers_any_function_code_byte_that_arrived) {
    uint8_t pdu[2];
    CHECK_EQ(mb_exception_answer(0, 1, pdu, sizeof pdu), 2);
    CHECK_BYTES(pdu, 2, 0x80, 0x01);
    CHECK_EQ(mb_exception_answer(3, 2, pdu, sizeof pdu), 2);
    CHECK_BYTES(pdu, 2, 0x83, 0x02);
    CHECK_EQ(mb_exception_answer(0x83, 1, pdu, sizeof pdu), 2);
    CHECK_BYTES(pdu, 2, 0x83, 0x01);
    CHECK_EQ(mb_exception_answer(3, 0, pdu, sizeof pdu), MB_EINVAL);
    CHECK_EQ(mb_exception_answer(3, 2, NULL, 2), MB_EINVAL);
    CHECK_EQ(mb_exception_answer(3, 2, pdu, 1), MB_ENOSPC);
}

TEST(exception_and_function_names_read_like_the_spec) {
    CHECK_STR(mb_exception_name(1), "illegal function");
    CHECK_STR(mb_exception_name(2), "illegal data address");
    CHECK_STR(mb_exception_name(3), "illegal data value");
    CHECK_STR(mb_exception_name(4), "server device failure");
    CHECK_STR(mb_exception_name(0x0A), "gateway path unavailable");
    CHECK_STR(mb_exception_name(0x0B), "gateway target device failed to respond");
    CHECK_STR(mb_exception_name(0x07), "unknown exception");
    CHECK_STR(mb_function_name(3), "read holding registers");
    CHECK_STR(mb_function_name(23), "read/write multiple registers");
    CHECK_STR(mb_function_name(66), "user-defined");
    CHECK_STR(mb_function_name(9), "reserved");
}

TEST(reserved_function_codes_in_responses_are_refused) {
    struct mb_response r;
    CHECK_EQ(decode(BYTES(0x09, 0x00), &r), MB_EFUNCTION);
    CHECK_EQ(decode(BYTES(0x00), &r), MB_EFUNCTION);
    CHECK_EQ(decode(BYTES(0x2B, 0x0F), &r), MB_EMEI);
    CHECK_EQ(decode(BYTES(0x41, 0x01), &r), 0);
    CHECK_EQ(r.raw.length, 1);
    CHECK_EQ(mb_response_decode(NULL, 1, &r), MB_EINVAL);
}

int main(void) {
    RUN(fc01_response_decodes_the_spec_example);
    RUN(bit_read_byte_count_is_1_to_250);
    RUN(fc03_response_decodes_the_spec_example);
    RUN(register_read_byte_count_is_even_2_to_250);
    RUN(fc05_and_fc06_responses_echo_the_request);
    RUN(fc07_response_carries_one_status_byte);
    RUN(fc08_response_echoes_sub_function_and_query_data);
    RUN(fc08_sub_functions_that_echo_must_echo_their_data);
    RUN(fc11_response_decodes_the_spec_example);
    RUN(fc12_response_decodes_the_spec_example);
    RUN(fc12_byte_count_is_6_to_70);
    RUN(fc15_and_fc16_responses_echo_address_and_quantity);
    RUN(fc17_response_needs_at_least_the_run_indicator);
    RUN(fc20_response_decodes_the_spec_example);
    RUN(fc20_matching_walks_every_group_and_does_not_trust_count);
    RUN(fc20_response_groups_must_be_well_formed);
    RUN(fc21_response_is_an_echo_of_the_request);
    RUN(fc22_response_echoes_address_and_masks);
    RUN(fc23_response_byte_count_answers_the_read_quantity);
    RUN(fc24_response_has_a_two_byte_byte_count_and_at_most_31_registers);
    RUN(fc43_14_response_objects_are_walked_one_by_one);
    RUN(fc43_14_response_header_and_objects_must_agree);
    RUN(fc43_14_individual_access_must_return_the_object_asked_for);
    RUN(fc43_14_a_stream_must_start_where_asked_or_restart_at_0);
    RUN(exception_responses_are_values_not_errors);
    RUN(exception_encode_refuses_code_0_and_a_set_exception_bit);
    RUN(exception_answer_answers_any_function_code_byte_that_arrived);
    RUN(exception_and_function_names_read_like_the_spec);
    RUN(reserved_function_codes_in_responses_are_refused);
    return harness_result();
}
