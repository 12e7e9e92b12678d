/* SPDX-License-Identifier: MIT */
/*
 * The worked examples of the Modbus Application Protocol Specification V1.1b3 (one per function
 * code, section 6) and of the Modbus Messaging on TCP/IP Implementation Guide V1.0b, written
 * from the specifications and the public headers alone. Each example is decoded (once from the
 * end of a readable page, so an over-read faults), its fields are checked against the spec's
 * tables, it is encoded again and must give the same bytes, and the response must match its
 * request. The validator is held to the spec's order of checks.
 */
#include <string.h>

#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/mbap.h"
#include "mbsec/pdu.h"
#include "mbsec/validate.h"
#include "mbsec/value.h"

/* ---- helpers: decode (guarded and in place), re-encode, compare ---- */

static void fail_error(const char *file, int line, const char *what, int rc) {
    harness_fail(file, line, "%s returned %d (%s)", what, rc, mb_error_name(rc));
}

/* Decodes pdu[0..length) into *request (views into `pdu`, which must outlive it), checks that
 * the decoder reads nothing past the end, and that encoding the result gives the same bytes
 * and needs all of them. Returns 1 when the request decoded. */
static int request_round_trip(const char *file, int line, const uint8_t *pdu, size_t length,
                              struct mb_request *request) {
    struct mb_request guarded;
    uint8_t encoded[MB_PDU_MAX];
    harness_checks++;
    int rc = mb_request_decode(guard_copy(pdu, length), length, &guarded);
    if (rc != 0) {
        fail_error(file, line, "mb_request_decode (at the end of a page)", rc);
        harness_hexdump("pdu", pdu, length);
        return 0;
    }
    memset(request, 0, sizeof *request);
    rc = mb_request_decode(pdu, length, request);
    if (rc != 0) {
        fail_error(file, line, "mb_request_decode", rc);
        return 0;
    }
    harness_checks++;
    rc = mb_request_encode(request, encoded, sizeof encoded);
    if (rc != (int)length) {
        fail_error(file, line, "mb_request_encode of the decoded request", rc);
        if (rc > 0)
            harness_hexdump("encoded", encoded, (size_t)rc);
        harness_hexdump("spec   ", pdu, length);
    } else {
        harness_bytes_equal(file, line, encoded, (size_t)rc, pdu, length);
    }
    harness_checks++;
    rc = mb_request_encode(request, encoded, length - 1);
    if (rc != MB_ENOSPC)
        fail_error(file, line, "mb_request_encode one byte short (want MB_ENOSPC)", rc);
    return 1;
}

static int response_round_trip(const char *file, int line, const uint8_t *pdu, size_t length,
                               struct mb_response *response) {
    struct mb_response guarded;
    uint8_t encoded[MB_PDU_MAX];
    harness_checks++;
    int rc = mb_response_decode(guard_copy(pdu, length), length, &guarded);
    if (rc != 0) {
        fail_error(file, line, "mb_response_decode (at the end of a page)", rc);
        harness_hexdump("pdu", pdu, length);
        return 0;
    }
    memset(response, 0, sizeof *response);
    rc = mb_response_decode(pdu, length, response);
    if (rc != 0) {
        fail_error(file, line, "mb_response_decode", rc);
        return 0;
    }
    harness_checks++;
    rc = mb_response_encode(response, encoded, sizeof encoded);
    if (rc != (int)length) {
        fail_error(file, line, "mb_response_encode of the decoded response", rc);
        if (rc > 0)
            harness_hexdump("encoded", encoded, (size_t)rc);
        harness_hexdump("spec   ", pdu, length);
    } else {
        harness_bytes_equal(file, line, encoded, (size_t)rc, pdu, length);
    }
    harness_checks++;
    rc = mb_response_encode(response, encoded, length - 1);
    if (rc != MB_ENOSPC)
        fail_error(file, line, "mb_response_encode one byte short (want MB_ENOSPC)", rc);
    return 1;
}

#define REQUEST(vector, request) \
    request_round_trip(__FILE__, __LINE__, vector, sizeof vector, request)
#define RESPONSE(vector, response) \
    response_round_trip(__FILE__, __LINE__, vector, sizeof vector, response)

/* Encodes a hand-built request or response and compares with the spec's bytes. */
#define CHECK_ENCODES_REQUEST(request, vector)                                                 \
    do {                                                                                       \
        uint8_t out_[MB_PDU_MAX];                                                              \
        int rc_ = mb_request_encode(request, out_, sizeof out_);                               \
        CHECK_EQ(rc_, (int)sizeof vector);                                                     \
        if (rc_ > 0)                                                                           \
            harness_bytes_equal(__FILE__, __LINE__, out_, (size_t)rc_, vector, sizeof vector); \
    } while (0)
#define CHECK_ENCODES_RESPONSE(response, vector)                                               \
    do {                                                                                       \
        uint8_t out_[MB_PDU_MAX];                                                              \
        int rc_ = mb_response_encode(response, out_, sizeof out_);                             \
        CHECK_EQ(rc_, (int)sizeof vector);                                                     \
        if (rc_ > 0)                                                                           \
            harness_bytes_equal(__FILE__, __LINE__, out_, (size_t)rc_, vector, sizeof vector); \
    } while (0)

#define CHECK_MATCHES(request, response) CHECK_EQ(mb_response_matches(request, response), 0)

/* ---- the examples of section 6, byte for byte ---- */

/* 6.1: read coils 20-38. */
static const uint8_t fc1_request[] = {0x01, 0x00, 0x13, 0x00, 0x13};
static const uint8_t fc1_response[] = {0x01, 0x03, 0xCD, 0x6B, 0x05};
/* 6.2: read discrete inputs 197-218. */
static const uint8_t fc2_request[] = {0x02, 0x00, 0xC4, 0x00, 0x16};
static const uint8_t fc2_response[] = {0x02, 0x03, 0xAC, 0xDB, 0x35};
/* 6.3: read holding registers 108-110. */
static const uint8_t fc3_request[] = {0x03, 0x00, 0x6B, 0x00, 0x03};
static const uint8_t fc3_response[] = {0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64};
/* 6.4: read input register 9. */
static const uint8_t fc4_request[] = {0x04, 0x00, 0x08, 0x00, 0x01};
static const uint8_t fc4_response[] = {0x04, 0x02, 0x00, 0x0A};
/* 6.5: write coil 173 ON; the response is an echo. */
static const uint8_t fc5_request[] = {0x05, 0x00, 0xAC, 0xFF, 0x00};
/* 6.6: write register 2 to 0x0003; echo. */
static const uint8_t fc6_request[] = {0x06, 0x00, 0x01, 0x00, 0x03};
/* 6.7: read exception status. */
static const uint8_t fc7_request[] = {0x07};
static const uint8_t fc7_response[] = {0x07, 0x6D};
/* 6.8: diagnostics, return query data; echo. */
static const uint8_t fc8_request[] = {0x08, 0x00, 0x00, 0xA5, 0x37};
/* 6.9: get comm event counter: busy, 264 events. */
static const uint8_t fc11_request[] = {0x0B};
static const uint8_t fc11_response[] = {0x0B, 0xFF, 0xFF, 0x01, 0x08};
/* 6.10: get comm event log. */
static const uint8_t fc12_request[] = {0x0C};
static const uint8_t fc12_response[] = {0x0C, 0x08, 0x00, 0x00, 0x01, 0x08, 0x01, 0x21, 0x20, 0x00};
/* 6.11: write coils 20-29. */
static const uint8_t fc15_request[] = {0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01};
static const uint8_t fc15_response[] = {0x0F, 0x00, 0x13, 0x00, 0x0A};
/* 6.12: write registers 2-3 with 0x000A and 0x0102. */
static const uint8_t fc16_request[] = {0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02};
static const uint8_t fc16_response[] = {0x10, 0x00, 0x01, 0x00, 0x02};
/* 6.14: read file 4 records 1-2 and file 3 records 9-10. */
static const uint8_t fc20_request[] = {0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00,
                                       0x02, 0x06, 0x00, 0x03, 0x00, 0x09, 0x00, 0x02};
static const uint8_t fc20_response[] = {0x14, 0x0C, 0x05, 0x06, 0x0D, 0xFE, 0x00,
                                        0x20, 0x05, 0x06, 0x33, 0xCD, 0x00, 0x40};
/* 6.15: write file 4 records 7-9; echo. */
static const uint8_t fc21_request[] = {0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00,
                                       0x03, 0x06, 0xAF, 0x04, 0xBE, 0x10, 0x0D};
/* 6.16: mask write register 5 with AND 0xF2, OR 0x25; echo. */
static const uint8_t fc22_request[] = {0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25};
/* 6.17: read 6 registers from 4, write 3 registers at 15. */
static const uint8_t fc23_request[] = {0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00,
                                       0x03, 0x06, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF};
static const uint8_t fc23_response[] = {0x17, 0x0C, 0x00, 0xFE, 0x0A, 0xCD, 0x00,
                                        0x01, 0x00, 0x03, 0x00, 0x0D, 0x00, 0xFF};
/* 6.18: read the FIFO queue at 1246 (0x04DE). */
static const uint8_t fc24_request[] = {0x18, 0x04, 0xDE};
static const uint8_t fc24_response[] = {0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84};
/*
 * 6.21: read basic device identification from object 0: "Company identification",
 * "Product code XX" and "V2.11". Each object length here is the real length of its value
 * (22, 15, 5), so that the PDU is self-consistent; a printed table that disagrees with the
 * value's length is a typo in the table.
 */
static const uint8_t fc43_request[] = {0x2B, 0x0E, 0x01, 0x00};
static const uint8_t fc43_response[] = {
    0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x03, 0x00, 0x16, 'C', 'o', 'm', 'p', 'a',
    'n',  'y',  ' ',  'i',  'd',  'e',  'n',  't',  'i',  'f', 'i', 'c', 'a', 't',
    'i',  'o',  'n',  0x01, 0x0F, 'P',  'r',  'o',  'd',  'u', 'c', 't', ' ', 'c',
    'o',  'd',  'e',  ' ',  'X',  'X',  0x02, 0x05, 'V',  '2', '.', '1', '1'};
/* 7: read coil 1186 (0x04A1), which the server lacks: illegal data address. */
static const uint8_t exception_request[] = {0x01, 0x04, 0xA1, 0x00, 0x01};
static const uint8_t exception_response[] = {0x81, 0x02};

TEST(fc1_read_coils_example_decodes_reencodes_and_matches) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc1_request, &request)) {
        CHECK_EQ(request.function, MB_FC_READ_COILS);
        CHECK_EQ(request.read.address, 0x0013);
        CHECK_EQ(request.read.quantity, 19);
    }
    if (RESPONSE(fc1_response, &response)) {
        CHECK_EQ(response.function, MB_FC_READ_COILS);
        CHECK_EQ(response.exception, 0);
        CHECK_EQ(response.read.byte_count, 3);
        CHECK_BYTES(response.read.data, response.read.byte_count, 0xCD, 0x6B, 0x05);
        /* Coils 27-20 read CD: coil 20 is the least significant bit; 38 is bit 2 of 05. */
        CHECK_EQ(mb_bits_get(response.read.data, 0), 1);
        CHECK_EQ(mb_bits_get(response.read.data, 1), 0);
        CHECK_EQ(mb_bits_get(response.read.data, 7), 1);
        CHECK_EQ(mb_bits_get(response.read.data, 18), 1);
        CHECK_EQ(mb_bits_get(response.read.data, 19), 0);
    }
    CHECK_MATCHES(&request, &response);
    struct mb_request built = {.function = MB_FC_READ_COILS};
    built.read.address = 0x0013;
    built.read.quantity = 0x0013;
    CHECK_ENCODES_REQUEST(&built, fc1_request);
    struct mb_response built_response = {.function = MB_FC_READ_COILS};
    built_response.read.byte_count = 3;
    built_response.read.data = (const uint8_t[]){0xCD, 0x6B, 0x05};
    CHECK_ENCODES_RESPONSE(&built_response, fc1_response);
}

TEST(fc2_read_discrete_inputs_example_decodes_reencodes_and_matches) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc2_request, &request)) {
        CHECK_EQ(request.function, MB_FC_READ_DISCRETE_INPUTS);
        CHECK_EQ(request.read.address, 0x00C4);
        CHECK_EQ(request.read.quantity, 22);
    }
    if (RESPONSE(fc2_response, &response)) {
        CHECK_EQ(response.function, MB_FC_READ_DISCRETE_INPUTS);
        CHECK_EQ(response.exception, 0);
        CHECK_EQ(response.read.byte_count, 3);
        CHECK_BYTES(response.read.data, response.read.byte_count, 0xAC, 0xDB, 0x35);
        /* Inputs 218-213 read 35: the two top bits of the last byte are padding. */
        CHECK_EQ(mb_bits_get(response.read.data, 21), 1);
        CHECK_EQ(mb_bits_get(response.read.data, 22), 0);
    }
    CHECK_MATCHES(&request, &response);
}

TEST(fc3_read_holding_registers_example_decodes_reencodes_and_matches) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc3_request, &request)) {
        CHECK_EQ(request.function, MB_FC_READ_HOLDING_REGISTERS);
        CHECK_EQ(request.read.address, 0x006B);
        CHECK_EQ(request.read.quantity, 3);
    }
    if (RESPONSE(fc3_response, &response)) {
        CHECK_EQ(response.function, MB_FC_READ_HOLDING_REGISTERS);
        CHECK_EQ(response.exception, 0);
        CHECK_EQ(response.read.byte_count, 6);
        CHECK_EQ(mb_get_u16(response.read.data), 555); /* register 108: 0x022B */
        CHECK_EQ(mb_get_u16(response.read.data + 2), 0);
        CHECK_EQ(mb_get_u16(response.read.data + 4), 100);
    }
    CHECK_MATCHES(&request, &response);
    struct mb_request built = {.function = MB_FC_READ_HOLDING_REGISTERS};
    built.read.address = 107;
    built.read.quantity = 3;
    CHECK_ENCODES_REQUEST(&built, fc3_request);
}

TEST(fc4_read_input_registers_example_decodes_reencodes_and_matches) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc4_request, &request)) {
        CHECK_EQ(request.function, MB_FC_READ_INPUT_REGISTERS);
        CHECK_EQ(request.read.address, 0x0008);
        CHECK_EQ(request.read.quantity, 1);
    }
    if (RESPONSE(fc4_response, &response)) {
        CHECK_EQ(response.function, MB_FC_READ_INPUT_REGISTERS);
        CHECK_EQ(response.read.byte_count, 2);
        CHECK_EQ(mb_get_u16(response.read.data), 10);
    }
    CHECK_MATCHES(&request, &response);
}

TEST(fc5_write_single_coil_example_is_echoed) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc5_request, &request)) {
        CHECK_EQ(request.function, MB_FC_WRITE_SINGLE_COIL);
        CHECK_EQ(request.write_single.address, 0x00AC);
        CHECK_EQ(request.write_single.value, MB_COIL_ON);
    }
    if (RESPONSE(fc5_request, &response)) {
        CHECK_EQ(response.function, MB_FC_WRITE_SINGLE_COIL);
        CHECK_EQ(response.write_single.address, 0x00AC);
        CHECK_EQ(response.write_single.value, 0xFF00);
    }
    CHECK_MATCHES(&request, &response);
}

TEST(fc6_write_single_register_example_is_echoed) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc6_request, &request)) {
        CHECK_EQ(request.function, MB_FC_WRITE_SINGLE_REGISTER);
        CHECK_EQ(request.write_single.address, 0x0001);
        CHECK_EQ(request.write_single.value, 0x0003);
    }
    if (RESPONSE(fc6_request, &response)) {
        CHECK_EQ(response.function, MB_FC_WRITE_SINGLE_REGISTER);
        CHECK_EQ(response.write_single.address, 1);
        CHECK_EQ(response.write_single.value, 3);
    }
    CHECK_MATCHES(&request, &response);
}

TEST(fc7_read_exception_status_example_gives_0x6d) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc7_request, &request))
        CHECK_EQ(request.function, MB_FC_READ_EXCEPTION_STATUS);
    if (RESPONSE(fc7_response, &response)) {
        CHECK_EQ(response.function, MB_FC_READ_EXCEPTION_STATUS);
        CHECK_EQ(response.exception_status, 0x6D);
    }
    CHECK_MATCHES(&request, &response);
}

TEST(fc8_return_query_data_example_is_echoed) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc8_request, &request)) {
        CHECK_EQ(request.function, MB_FC_DIAGNOSTICS);
        CHECK_EQ(request.diagnostics.sub_function, MB_DIAG_RETURN_QUERY_DATA);
        CHECK_EQ(request.diagnostics.data_length, 2);
        CHECK_BYTES(request.diagnostics.data, request.diagnostics.data_length, 0xA5, 0x37);
    }
    if (RESPONSE(fc8_request, &response)) {
        CHECK_EQ(response.function, MB_FC_DIAGNOSTICS);
        CHECK_EQ(response.diagnostics.sub_function, 0x0000);
        CHECK_BYTES(response.diagnostics.data, response.diagnostics.data_length, 0xA5, 0x37);
    }
    CHECK_MATCHES(&request, &response);
}

TEST(fc11_get_comm_event_counter_example_gives_busy_and_264) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc11_request, &request))
        CHECK_EQ(request.function, MB_FC_GET_COMM_EVENT_COUNTER);
    if (RESPONSE(fc11_response, &response)) {
        CHECK_EQ(response.function, MB_FC_GET_COMM_EVENT_COUNTER);
        CHECK_EQ(response.event_counter.status, 0xFFFF);
        CHECK_EQ(response.event_counter.event_count, 0x0108);
    }
    CHECK_MATCHES(&request, &response);
}

TEST(fc12_get_comm_event_log_example_decodes_reencodes_and_matches) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc12_request, &request))
        CHECK_EQ(request.function, MB_FC_GET_COMM_EVENT_LOG);
    if (RESPONSE(fc12_response, &response)) {
        CHECK_EQ(response.function, MB_FC_GET_COMM_EVENT_LOG);
        CHECK_EQ(response.event_log.status, 0x0000);
        CHECK_EQ(response.event_log.event_count, 0x0108);
        CHECK_EQ(response.event_log.message_count, 0x0121);
        CHECK_EQ(response.event_log.event_length, 2);
        CHECK_BYTES(response.event_log.events, response.event_log.event_length, 0x20, 0x00);
    }
    CHECK_MATCHES(&request, &response);
}

TEST(fc15_write_multiple_coils_example_decodes_reencodes_and_matches) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc15_request, &request)) {
        CHECK_EQ(request.function, MB_FC_WRITE_MULTIPLE_COILS);
        CHECK_EQ(request.write_multiple.address, 0x0013);
        CHECK_EQ(request.write_multiple.quantity, 10);
        CHECK_BYTES(request.write_multiple.values, 2, 0xCD, 0x01);
        /* Coils 20-29: 1 0 1 1 0 0 1 1 1 0. */
        static const uint8_t coils[10] = {1, 0, 1, 1, 0, 0, 1, 1, 1, 0};
        uint8_t unpacked[10];
        mb_bits_unpack(request.write_multiple.values, 10, unpacked);
        CHECK(memcmp(unpacked, coils, sizeof coils) == 0);
    }
    if (RESPONSE(fc15_response, &response)) {
        CHECK_EQ(response.function, MB_FC_WRITE_MULTIPLE_COILS);
        CHECK_EQ(response.write_multiple.address, 0x0013);
        CHECK_EQ(response.write_multiple.quantity, 10);
    }
    CHECK_MATCHES(&request, &response);
    struct mb_request built = {.function = MB_FC_WRITE_MULTIPLE_COILS};
    built.write_multiple.address = 0x13;
    built.write_multiple.quantity = 10;
    built.write_multiple.values = (const uint8_t[]){0xCD, 0x01};
    CHECK_ENCODES_REQUEST(&built, fc15_request);
}

TEST(fc16_write_multiple_registers_example_decodes_reencodes_and_matches) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc16_request, &request)) {
        CHECK_EQ(request.function, MB_FC_WRITE_MULTIPLE_REGISTERS);
        CHECK_EQ(request.write_multiple.address, 0x0001);
        CHECK_EQ(request.write_multiple.quantity, 2);
        CHECK_EQ(mb_get_u16(request.write_multiple.values), 0x000A);
        CHECK_EQ(mb_get_u16(request.write_multiple.values + 2), 0x0102);
    }
    if (RESPONSE(fc16_response, &response)) {
        CHECK_EQ(response.function, MB_FC_WRITE_MULTIPLE_REGISTERS);
        CHECK_EQ(response.write_multiple.address, 1);
        CHECK_EQ(response.write_multiple.quantity, 2);
    }
    CHECK_MATCHES(&request, &response);
    struct mb_request built = {.function = MB_FC_WRITE_MULTIPLE_REGISTERS};
    built.write_multiple.address = 1;
    built.write_multiple.quantity = 2;
    built.write_multiple.values = (const uint8_t[]){0x00, 0x0A, 0x01, 0x02};
    CHECK_ENCODES_REQUEST(&built, fc16_request);
}

TEST(fc20_read_file_record_example_decodes_reencodes_and_matches) {
    struct mb_request request;
    struct mb_response response;
    struct mb_file_record record;
    size_t offset = 0;
    if (REQUEST(fc20_request, &request)) {
        CHECK_EQ(request.function, MB_FC_READ_FILE_RECORD);
        CHECK_EQ(request.file.length, 0x0E);
        CHECK_EQ(request.file.count, 2);
        CHECK_EQ(request.file.layout, MB_FILE_READ_REQUEST);
        CHECK_EQ(mb_file_records_next(&request.file, &offset, &record), 1);
        CHECK_EQ(record.reference_type, 6);
        CHECK_EQ(record.file_number, 4);
        CHECK_EQ(record.record_number, 1);
        CHECK_EQ(record.record_length, 2);
        CHECK(record.data == NULL);
        CHECK_EQ(mb_file_records_next(&request.file, &offset, &record), 1);
        CHECK_EQ(record.reference_type, 6);
        CHECK_EQ(record.file_number, 3);
        CHECK_EQ(record.record_number, 9);
        CHECK_EQ(record.record_length, 2);
        CHECK_EQ(mb_file_records_next(&request.file, &offset, &record), 0);
    }
    if (RESPONSE(fc20_response, &response)) {
        CHECK_EQ(response.function, MB_FC_READ_FILE_RECORD);
        CHECK_EQ(response.file.length, 0x0C);
        CHECK_EQ(response.file.count, 2);
        CHECK_EQ(response.file.layout, MB_FILE_READ_RESPONSE);
        offset = 0;
        CHECK_EQ(mb_file_records_next(&response.file, &offset, &record), 1);
        CHECK_EQ(record.reference_type, 6);
        CHECK_EQ(record.record_length, 2);
        CHECK_BYTES(record.data, 4, 0x0D, 0xFE, 0x00, 0x20);
        CHECK_EQ(mb_file_records_next(&response.file, &offset, &record), 1);
        CHECK_EQ(record.reference_type, 6);
        CHECK_EQ(record.record_length, 2);
        CHECK_BYTES(record.data, 4, 0x33, 0xCD, 0x00, 0x40);
        CHECK_EQ(mb_file_records_next(&response.file, &offset, &record), 0);
    }
    CHECK_MATCHES(&request, &response);
}

TEST(fc20_request_built_with_file_records_append_gives_the_spec_bytes) {
    uint8_t records[32];
    size_t used = 0;
    struct mb_file_record first = {
        .reference_type = 6, .file_number = 4, .record_number = 1, .record_length = 2};
    struct mb_file_record second = {
        .reference_type = 6, .file_number = 3, .record_number = 9, .record_length = 2};
    CHECK_EQ(mb_file_records_append(MB_FILE_READ_REQUEST, &first, records, sizeof records, &used),
             0);
    CHECK_EQ(mb_file_records_append(MB_FILE_READ_REQUEST, &second, records, sizeof records, &used),
             0);
    CHECK_BYTES(records, used, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, 0x06, 0x00, 0x03, 0x00,
                0x09, 0x00, 0x02);
    struct mb_request built = {.function = MB_FC_READ_FILE_RECORD};
    built.file.data = records;
    built.file.length = (uint8_t)used;
    built.file.count = 2;
    built.file.layout = MB_FILE_READ_REQUEST;
    CHECK_ENCODES_REQUEST(&built, fc20_request);

    uint8_t data[32];
    used = 0;
    struct mb_file_record answer = {
        .reference_type = 6, .record_length = 2, .data = (const uint8_t[]){0x0D, 0xFE, 0x00, 0x20}};
    CHECK_EQ(mb_file_records_append(MB_FILE_READ_RESPONSE, &answer, data, sizeof data, &used), 0);
    answer.data = (const uint8_t[]){0x33, 0xCD, 0x00, 0x40};
    CHECK_EQ(mb_file_records_append(MB_FILE_READ_RESPONSE, &answer, data, sizeof data, &used), 0);
    struct mb_response built_response = {.function = MB_FC_READ_FILE_RECORD};
    built_response.file.data = data;
    built_response.file.length = (uint8_t)used;
    built_response.file.count = 2;
    built_response.file.layout = MB_FILE_READ_RESPONSE;
    CHECK_ENCODES_RESPONSE(&built_response, fc20_response);
}

TEST(fc21_write_file_record_example_is_echoed) {
    struct mb_request request;
    struct mb_response response;
    struct mb_file_record record;
    size_t offset = 0;
    if (REQUEST(fc21_request, &request)) {
        CHECK_EQ(request.function, MB_FC_WRITE_FILE_RECORD);
        CHECK_EQ(request.file.length, 0x0D);
        CHECK_EQ(request.file.count, 1);
        CHECK_EQ(request.file.layout, MB_FILE_WRITE);
        CHECK_EQ(mb_file_records_next(&request.file, &offset, &record), 1);
        CHECK_EQ(record.reference_type, 6);
        CHECK_EQ(record.file_number, 4);
        CHECK_EQ(record.record_number, 7);
        CHECK_EQ(record.record_length, 3);
        CHECK_BYTES(record.data, 6, 0x06, 0xAF, 0x04, 0xBE, 0x10, 0x0D);
        CHECK_EQ(mb_file_records_next(&request.file, &offset, &record), 0);
    }
    if (RESPONSE(fc21_request, &response)) {
        CHECK_EQ(response.function, MB_FC_WRITE_FILE_RECORD);
        CHECK_EQ(response.file.length, 0x0D);
        CHECK_EQ(response.file.layout, MB_FILE_WRITE);
    }
    CHECK_MATCHES(&request, &response);
}

TEST(fc22_mask_write_register_example_is_echoed) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc22_request, &request)) {
        CHECK_EQ(request.function, MB_FC_MASK_WRITE_REGISTER);
        CHECK_EQ(request.mask_write.address, 0x0004);
        CHECK_EQ(request.mask_write.and_mask, 0x00F2);
        CHECK_EQ(request.mask_write.or_mask, 0x0025);
    }
    if (RESPONSE(fc22_request, &response)) {
        CHECK_EQ(response.function, MB_FC_MASK_WRITE_REGISTER);
        CHECK_EQ(response.mask_write.address, 4);
        CHECK_EQ(response.mask_write.and_mask, 0xF2);
        CHECK_EQ(response.mask_write.or_mask, 0x25);
    }
    CHECK_MATCHES(&request, &response);
}

TEST(fc23_read_write_multiple_registers_example_decodes_reencodes_and_matches) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc23_request, &request)) {
        CHECK_EQ(request.function, MB_FC_READ_WRITE_MULTIPLE_REGISTERS);
        CHECK_EQ(request.read_write.read_address, 0x0003);
        CHECK_EQ(request.read_write.read_quantity, 6);
        CHECK_EQ(request.read_write.write_address, 0x000E);
        CHECK_EQ(request.read_write.write_quantity, 3);
        CHECK_BYTES(request.read_write.values, 6, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF);
    }
    if (RESPONSE(fc23_response, &response)) {
        CHECK_EQ(response.function, MB_FC_READ_WRITE_MULTIPLE_REGISTERS);
        CHECK_EQ(response.read.byte_count, 12);
        CHECK_EQ(mb_get_u16(response.read.data), 0x00FE);
        CHECK_EQ(mb_get_u16(response.read.data + 2), 0x0ACD);
        CHECK_EQ(mb_get_u16(response.read.data + 10), 0x00FF);
    }
    CHECK_MATCHES(&request, &response);
    struct mb_request built = {.function = MB_FC_READ_WRITE_MULTIPLE_REGISTERS};
    built.read_write.read_address = 3;
    built.read_write.read_quantity = 6;
    built.read_write.write_address = 14;
    built.read_write.write_quantity = 3;
    built.read_write.values = (const uint8_t[]){0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF};
    CHECK_ENCODES_REQUEST(&built, fc23_request);
}

TEST(fc24_read_fifo_queue_example_has_a_two_byte_byte_count) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc24_request, &request)) {
        CHECK_EQ(request.function, MB_FC_READ_FIFO_QUEUE);
        CHECK_EQ(request.fifo.address, 0x04DE);
    }
    if (RESPONSE(fc24_response, &response)) {
        CHECK_EQ(response.function, MB_FC_READ_FIFO_QUEUE);
        CHECK_EQ(response.fifo.count, 2);
        CHECK_EQ(mb_get_u16(response.fifo.values), 0x01B8);
        CHECK_EQ(mb_get_u16(response.fifo.values + 2), 0x1284);
    }
    CHECK_MATCHES(&request, &response);
    struct mb_response built = {.function = MB_FC_READ_FIFO_QUEUE};
    built.fifo.count = 2;
    built.fifo.values = (const uint8_t[]){0x01, 0xB8, 0x12, 0x84};
    CHECK_ENCODES_RESPONSE(&built, fc24_response);
}

TEST(fc43_14_read_device_identification_example_decodes_reencodes_and_matches) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(fc43_request, &request)) {
        CHECK_EQ(request.function, MB_FC_ENCAPSULATED_INTERFACE);
        CHECK_EQ(request.device_id.mei_type, MB_MEI_DEVICE_ID);
        CHECK_EQ(request.device_id.read_code, MB_DEVICE_ID_BASIC);
        CHECK_EQ(request.device_id.object_id, MB_OBJECT_VENDOR_NAME);
    }
    if (RESPONSE(fc43_response, &response)) {
        CHECK_EQ(response.function, MB_FC_ENCAPSULATED_INTERFACE);
        CHECK_EQ(response.device_id.mei_type, MB_MEI_DEVICE_ID);
        CHECK_EQ(response.device_id.read_code, 1);
        CHECK_EQ(response.device_id.conformity_level, 0x01);
        CHECK_EQ(response.device_id.more_follows, 0x00);
        CHECK_EQ(response.device_id.next_object_id, 0x00);
        CHECK_EQ(response.device_id.object_count, 3);
        CHECK_EQ(response.device_id.objects_length, sizeof fc43_response - 7);
        struct mb_device_object object;
        size_t offset = 0;
        CHECK_EQ(mb_device_objects_next(&response, &offset, &object), 1);
        CHECK_EQ(object.id, 0x00);
        CHECK_EQ(object.length, 22);
        CHECK(object.length == 22 && memcmp(object.value, "Company identification", 22) == 0);
        CHECK_EQ(mb_device_objects_next(&response, &offset, &object), 1);
        CHECK_EQ(object.id, 0x01);
        CHECK(object.length == 15 && memcmp(object.value, "Product code XX", 15) == 0);
        CHECK_EQ(mb_device_objects_next(&response, &offset, &object), 1);
        CHECK_EQ(object.id, 0x02);
        CHECK(object.length == 5 && memcmp(object.value, "V2.11", 5) == 0);
        CHECK_EQ(mb_device_objects_next(&response, &offset, &object), 0);
    }
    CHECK_MATCHES(&request, &response);
    struct mb_request built = {.function = MB_FC_ENCAPSULATED_INTERFACE};
    built.device_id.mei_type = MB_MEI_DEVICE_ID;
    built.device_id.read_code = MB_DEVICE_ID_BASIC;
    built.device_id.object_id = 0;
    CHECK_ENCODES_REQUEST(&built, fc43_request);
}

TEST(fc43_14_server_builds_the_spec_response_from_its_objects) {
    static const struct mb_device_object objects[] = {
        {.id = 0x00, .length = 22, .value = (const uint8_t *)"Company identification"},
        {.id = 0x01, .length = 15, .value = (const uint8_t *)"Product code XX"},
        {.id = 0x02, .length = 5, .value = (const uint8_t *)"V2.11"},
    };
    struct mb_request request;
    uint8_t pdu[MB_PDU_MAX];
    CHECK_EQ(mb_request_decode(fc43_request, sizeof fc43_request, &request), 0);
    int length = mb_device_id_respond(&request, 0x01, objects, 3, pdu, sizeof pdu);
    CHECK_EQ(length, (int)sizeof fc43_response);
    if (length > 0)
        harness_bytes_equal(__FILE__, __LINE__, pdu, (size_t)length, fc43_response,
                            sizeof fc43_response);
}

TEST(exception_example_81_02_is_illegal_data_address_and_matches_its_request) {
    struct mb_request request;
    struct mb_response response;
    if (REQUEST(exception_request, &request)) {
        CHECK_EQ(request.function, MB_FC_READ_COILS);
        CHECK_EQ(request.read.address, 0x04A1);
        CHECK_EQ(request.read.quantity, 1);
    }
    if (RESPONSE(exception_response, &response)) {
        CHECK_EQ(response.function, MB_FC_READ_COILS);
        CHECK_EQ(response.exception, MB_EX_ILLEGAL_DATA_ADDRESS);
    }
    CHECK_MATCHES(&request, &response);
    CHECK_STR(mb_exception_name(0x02), "illegal data address");
    uint8_t pdu[2];
    CHECK_EQ(mb_exception_encode(MB_FC_READ_COILS, MB_EX_ILLEGAL_DATA_ADDRESS, pdu, sizeof pdu), 2);
    CHECK_BYTES(pdu, 2, 0x81, 0x02);
    struct mb_response built = {.function = MB_FC_READ_COILS, .exception = 0x02};
    CHECK_ENCODES_RESPONSE(&built, exception_response);
}

TEST(responses_do_not_match_the_request_of_another_example) {
    struct mb_request fc3;
    struct mb_response fc4;
    struct mb_request fc1;
    struct mb_response fc1_answer;
    CHECK_EQ(mb_request_decode(fc3_request, sizeof fc3_request, &fc3), 0);
    CHECK_EQ(mb_response_decode(fc4_response, sizeof fc4_response, &fc4), 0);
    CHECK_EQ(mb_response_matches(&fc3, &fc4), MB_EMISMATCH);
    /* Three bytes of coils answer 19 coils, not the 1 coil of the exception example. */
    CHECK_EQ(mb_request_decode(exception_request, sizeof exception_request, &fc1), 0);
    CHECK_EQ(mb_response_decode(fc1_response, sizeof fc1_response, &fc1_answer), 0);
    CHECK_EQ(mb_response_matches(&fc1, &fc1_answer), MB_EMISMATCH);
}

/* ---- the validator: the per-function diagrams of section 6 ---- */

static const uint8_t supported_functions[] = {1, 2, 3, 4, 5, 6, 15, 16, 20, 21, 22, 23, 24, 43};

/* A server with `size` entries in each table, starting at address 0. */
static struct mb_extents extents_of(uint32_t size) {
    struct mb_extents extents;
    memset(&extents, 0, sizeof extents);
    extents.coils.size = size;
    extents.discrete_inputs.size = size;
    extents.holding_registers.size = size;
    extents.input_registers.size = size;
    extents.files = 10;
    extents.records_per_file = 10000;
    for (size_t i = 0; i < sizeof supported_functions; i++)
        mb_extents_set_function(&extents, supported_functions[i], 1);
    return extents;
}

static int check_pdu(const uint8_t *pdu, size_t length, const struct mb_extents *extents) {
    struct mb_request request;
    return mb_request_check(guard_copy(pdu, length), length, extents, &request);
}

#define CHECK_PDU(extents, ...) check_pdu(BYTES(__VA_ARGS__), extents)

TEST(every_spec_request_example_passes_the_validator) {
    struct mb_extents extents = extents_of(2000);
    CHECK_EQ(check_pdu(fc1_request, sizeof fc1_request, &extents), 0);
    CHECK_EQ(check_pdu(fc2_request, sizeof fc2_request, &extents), 0);
    CHECK_EQ(check_pdu(fc3_request, sizeof fc3_request, &extents), 0);
    CHECK_EQ(check_pdu(fc4_request, sizeof fc4_request, &extents), 0);
    CHECK_EQ(check_pdu(fc5_request, sizeof fc5_request, &extents), 0);
    CHECK_EQ(check_pdu(fc6_request, sizeof fc6_request, &extents), 0);
    CHECK_EQ(check_pdu(fc15_request, sizeof fc15_request, &extents), 0);
    CHECK_EQ(check_pdu(fc16_request, sizeof fc16_request, &extents), 0);
    CHECK_EQ(check_pdu(fc20_request, sizeof fc20_request, &extents), 0);
    CHECK_EQ(check_pdu(fc21_request, sizeof fc21_request, &extents), 0);
    CHECK_EQ(check_pdu(fc22_request, sizeof fc22_request, &extents), 0);
    CHECK_EQ(check_pdu(fc23_request, sizeof fc23_request, &extents), 0);
    CHECK_EQ(check_pdu(fc24_request, sizeof fc24_request, &extents), 0);
    CHECK_EQ(check_pdu(fc43_request, sizeof fc43_request, &extents), 0);
}

TEST(mb_request_check_fills_the_request_it_accepts) {
    struct mb_extents extents = extents_of(2000);
    struct mb_request request;
    memset(&request, 0, sizeof request);
    CHECK_EQ(mb_request_check(fc3_request, sizeof fc3_request, &extents, &request), 0);
    CHECK_EQ(request.function, 3);
    CHECK_EQ(request.read.address, 0x6B);
    CHECK_EQ(request.read.quantity, 3);
}

TEST(fc3_read_of_4_at_96_of_100_registers_succeeds) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0x00, 0x60, 0x00, 0x04), 0);
}

TEST(fc3_returns_02_when_read_runs_past_table_end) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0x00, 0x60, 0x00, 0x05), 2);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0x00, 0x64, 0x00, 0x01), 2);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0xFF, 0xFF, 0x00, 0x7D), 2);
}

TEST(fc3_returns_03_when_quantity_is_0) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0x00, 0x00, 0x00, 0x00), 3);
}

TEST(fc3_returns_03_when_quantity_is_126) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0x00, 0x00, 0x00, 0x7E), 3);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0x00, 0x00, 0x00, 0x7D), 2); /* 125 is legal, too long */
}

TEST(fc3_checks_quantity_03_before_address_02) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0x00, 0x60, 0x00, 0x7E), 3);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0xFF, 0xFF, 0x00, 0x00), 3);
}

TEST(fc1_returns_03_when_quantity_is_2001) {
    struct mb_extents extents = extents_of(65535);
    CHECK_EQ(CHECK_PDU(&extents, 0x01, 0x00, 0x00, 0x07, 0xD0), 0);
    CHECK_EQ(CHECK_PDU(&extents, 0x01, 0x00, 0x00, 0x07, 0xD1), 3);
}

TEST(fc1_returns_02_for_the_spec_exception_example) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(check_pdu(exception_request, sizeof exception_request, &extents), 2);
}

TEST(fc5_returns_03_for_value_0x1234_before_checking_the_address) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x05, 0xFF, 0xFF, 0x12, 0x34), 3);
    CHECK_EQ(CHECK_PDU(&extents, 0x05, 0x00, 0x00, 0x12, 0x34), 3);
}

TEST(fc5_returns_02_for_a_legal_value_at_an_out_of_range_address) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x05, 0xFF, 0xFF, 0xFF, 0x00), 2);
    CHECK_EQ(CHECK_PDU(&extents, 0x05, 0x00, 0x64, 0x00, 0x00), 2);
    CHECK_EQ(CHECK_PDU(&extents, 0x05, 0x00, 0x63, 0x00, 0x00), 0);
}

TEST(fc16_returns_03_when_byte_count_is_not_twice_the_quantity) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x10, 0x00, 0x01, 0x00, 0x02, 0x03, 0x00, 0x0A, 0x01), 3);
}

TEST(fc24_returns_02_when_fifo_pointer_is_outside_the_table) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x18, 0x00, 0x64), 2);
    CHECK_EQ(CHECK_PDU(&extents, 0x18, 0x04, 0xDE), 2);
    CHECK_EQ(CHECK_PDU(&extents, 0x18, 0x00, 0x63), 0);
}

TEST(fc43_14_returns_03_for_read_code_5) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x2B, 0x0E, 0x05, 0x00), 3);
    CHECK_EQ(CHECK_PDU(&extents, 0x2B, 0x0E, 0x00, 0x00), 3);
    CHECK_EQ(CHECK_PDU(&extents, 0x2B, 0x0E, 0x01, 0x00), 0);
    CHECK_EQ(CHECK_PDU(&extents, 0x2B, 0x0E, 0x04, 0x02), 0);
}

TEST(unsupported_function_returns_01_even_when_its_quantity_is_also_bad) {
    struct mb_extents extents = extents_of(100);
    mb_extents_set_function(&extents, MB_FC_READ_HOLDING_REGISTERS, 0);
    CHECK_EQ(mb_extents_has_function(&extents, MB_FC_READ_HOLDING_REGISTERS), 0);
    CHECK_EQ(mb_extents_has_function(&extents, MB_FC_READ_INPUT_REGISTERS), 1);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0x00, 0x00, 0x00, 0x00), 1);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0x00, 0x60, 0x00, 0x05), 1);
    CHECK_EQ(CHECK_PDU(&extents, 0x03, 0x00, 0x00, 0x00, 0x01), 1);
    CHECK_EQ(CHECK_PDU(&extents, 0x04, 0x00, 0x00, 0x00, 0x01), 0);
}

TEST(reserved_function_9_returns_01) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x09, 0x00, 0x00, 0x00, 0x01), 1);
    CHECK_EQ(CHECK_PDU(&extents, 0x09), 1);
}

TEST(function_0_returns_01) {
    struct mb_extents extents = extents_of(100);
    CHECK_EQ(CHECK_PDU(&extents, 0x00, 0x00, 0x00, 0x00, 0x01), 1);
}

TEST(absent_table_returns_01) {
    struct mb_extents extents = extents_of(100);
    extents.input_registers.size = 0;
    CHECK_EQ(CHECK_PDU(&extents, 0x04, 0x00, 0x00, 0x00, 0x01), 1);
}

/* ---- MBAP: the implementation guide's example request ---- */

static const uint8_t guide_request[] = {0x15, 0x01, 0x00, 0x00, 0x00, 0x06,
                                        0xFF, 0x03, 0x00, 0x04, 0x00, 0x01};

static void check_guide_adu(const char *file, int line, const struct mb_adu *adu) {
    harness_checks++;
    if (adu->header.transaction_id != 0x1501 || adu->header.protocol_id != 0 ||
        adu->header.length != 6 || adu->header.unit_id != 0xFF || adu->pdu_length != 5) {
        harness_fail(file, line,
                     "adu: transaction %04X protocol %u length %u unit %02X pdu_length %zu",
                     adu->header.transaction_id, adu->header.protocol_id, adu->header.length,
                     adu->header.unit_id, adu->pdu_length);
        return;
    }
    static const uint8_t pdu[] = {0x03, 0x00, 0x04, 0x00, 0x01};
    harness_bytes_equal(file, line, adu->pdu, adu->pdu_length, pdu, sizeof pdu);
}
#define CHECK_GUIDE_ADU(adu) check_guide_adu(__FILE__, __LINE__, adu)

TEST(mbap_guide_example_decodes_whole) {
    struct mb_mbap_decoder decoder;
    struct mb_adu adu;
    size_t consumed = 0;
    mb_mbap_decoder_init(&decoder);
    const uint8_t *data = guard_copy(guide_request, sizeof guide_request);
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, data, sizeof guide_request, &consumed, &adu), 1);
    CHECK_EQ(consumed, sizeof guide_request);
    CHECK_GUIDE_ADU(&adu);
    CHECK_EQ(mb_mbap_decoder_pending(&decoder), 0);
    CHECK_EQ(decoder.frames, 1);
    CHECK_EQ(decoder.discarded, 0);
    struct mb_request request;
    CHECK_EQ(mb_request_decode(adu.pdu, adu.pdu_length, &request), 0);
    CHECK_EQ(request.function, MB_FC_READ_HOLDING_REGISTERS);
    CHECK_EQ(request.read.address, 4);
    CHECK_EQ(request.read.quantity, 1);
}

TEST(mbap_guide_example_decodes_byte_by_byte) {
    struct mb_mbap_decoder decoder;
    struct mb_adu adu;
    mb_mbap_decoder_init(&decoder);
    for (size_t i = 0; i < sizeof guide_request; i++) {
        size_t consumed = 99;
        int rc = mb_mbap_decoder_feed(&decoder, &guide_request[i], 1, &consumed, &adu);
        CHECK_EQ(consumed, 1);
        if (i + 1 < sizeof guide_request) {
            CHECK_EQ(rc, 0);
            CHECK_EQ(mb_mbap_decoder_pending(&decoder), 1);
        } else {
            CHECK_EQ(rc, 1);
            CHECK_GUIDE_ADU(&adu);
            CHECK_EQ(mb_mbap_decoder_pending(&decoder), 0);
        }
    }
    CHECK_EQ(decoder.frames, 1);
}

TEST(mbap_guide_example_decodes_in_every_split_of_two_reads) {
    for (size_t split = 1; split < sizeof guide_request; split++) {
        struct mb_mbap_decoder decoder;
        struct mb_adu adu;
        size_t consumed = 0;
        mb_mbap_decoder_init(&decoder);
        CHECK_EQ(mb_mbap_decoder_feed(&decoder, guide_request, split, &consumed, &adu), 0);
        CHECK_EQ(consumed, split);
        CHECK_EQ(mb_mbap_decoder_feed(&decoder, guide_request + split, sizeof guide_request - split,
                                      &consumed, &adu),
                 1);
        CHECK_EQ(consumed, sizeof guide_request - split);
        CHECK_GUIDE_ADU(&adu);
    }
}

TEST(mbap_guide_example_twice_in_one_buffer_gives_two_frames) {
    uint8_t stream[2 * sizeof guide_request];
    memcpy(stream, guide_request, sizeof guide_request);
    memcpy(stream + sizeof guide_request, guide_request, sizeof guide_request);
    const uint8_t *data = guard_copy(stream, sizeof stream);
    struct mb_mbap_decoder decoder;
    struct mb_adu adu;
    size_t consumed = 0;
    mb_mbap_decoder_init(&decoder);
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, data, sizeof stream, &consumed, &adu), 1);
    CHECK_EQ(consumed, sizeof guide_request);
    CHECK_GUIDE_ADU(&adu);
    size_t offset = consumed;
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, data + offset, sizeof stream - offset, &consumed, &adu),
             1);
    CHECK_EQ(consumed, sizeof guide_request);
    CHECK_GUIDE_ADU(&adu);
    CHECK_EQ(mb_mbap_decoder_pending(&decoder), 0);
    CHECK_EQ(decoder.frames, 2);
}

TEST(mbap_guide_example_header_peeks_and_encodes) {
    struct mb_mbap_header header;
    uint8_t buffer[MB_MBAP_HEADER_SIZE];
    CHECK_EQ(mb_mbap_peek(guide_request, 6, &header), 0);
    CHECK_EQ(mb_mbap_peek(guide_request, sizeof guide_request, &header), 12);
    CHECK_EQ(header.transaction_id, 0x1501);
    CHECK_EQ(header.protocol_id, 0);
    CHECK_EQ(header.length, 6);
    CHECK_EQ(header.unit_id, 0xFF);
    CHECK_EQ(mb_mbap_encode(0x1501, 0xFF, 5, buffer, sizeof buffer), 7);
    CHECK_BYTES(buffer, sizeof buffer, 0x15, 0x01, 0x00, 0x00, 0x00, 0x06, 0xFF);
}

int main(void) {
    RUN(fc1_read_coils_example_decodes_reencodes_and_matches);
    RUN(fc2_read_discrete_inputs_example_decodes_reencodes_and_matches);
    RUN(fc3_read_holding_registers_example_decodes_reencodes_and_matches);
    RUN(fc4_read_input_registers_example_decodes_reencodes_and_matches);
    RUN(fc5_write_single_coil_example_is_echoed);
    RUN(fc6_write_single_register_example_is_echoed);
    RUN(fc7_read_exception_status_example_gives_0x6d);
    RUN(fc8_return_query_data_example_is_echoed);
    RUN(fc11_get_comm_event_counter_example_gives_busy_and_264);
    RUN(fc12_get_comm_event_log_example_decodes_reencodes_and_matches);
    RUN(fc15_write_multiple_coils_example_decodes_reencodes_and_matches);
    RUN(fc16_write_multiple_registers_example_decodes_reencodes_and_matches);
    RUN(fc20_read_file_record_example_decodes_reencodes_and_matches);
    RUN(fc20_request_built_with_file_records_append_gives_the_spec_bytes);
    RUN(fc21_write_file_record_example_is_echoed);
    RUN(fc22_mask_write_register_example_is_echoed);
    RUN(fc23_read_write_multiple_registers_example_decodes_reencodes_and_matches);
    RUN(fc24_read_fifo_queue_example_has_a_two_byte_byte_count);
    RUN(fc43_14_read_device_identification_example_decodes_reencodes_and_matches);
    RUN(fc43_14_server_builds_the_spec_response_from_its_objects);
    RUN(exception_example_81_02_is_illegal_data_address_and_matches_its_request);
    RUN(responses_do_not_match_the_request_of_another_example);
    RUN(every_spec_request_example_passes_the_validator);
    RUN(mb_request_check_fills_the_request_it_accepts);
    RUN(fc3_read_of_4_at_96_of_100_registers_succeeds);
    RUN(fc3_returns_02_when_read_runs_past_table_end);
    RUN(fc3_returns_03_when_quantity_is_0);
    RUN(fc3_returns_03_when_quantity_is_126);
    RUN(fc3_checks_quantity_03_before_address_02);
    RUN(fc1_returns_03_when_quantity_is_2001);
    RUN(fc1_returns_02_for_the_spec_exception_example);
    RUN(fc5_returns_03_for_value_0x1234_before_checking_the_address);
    RUN(fc5_returns_02_for_a_legal_value_at_an_out_of_range_address);
    RUN(fc16_returns_03_when_byte_count_is_not_twice_the_quantity);
    RUN(fc24_returns_02_when_fifo_pointer_is_outside_the_table);
    RUN(fc43_14_returns_03_for_read_code_5);
    RUN(unsupported_function_returns_01_even_when_its_quantity_is_also_bad);
    RUN(reserved_function_9_returns_01);
    RUN(function_0_returns_01);
    RUN(absent_table_returns_01);
    RUN(mbap_guide_example_decodes_whole);
    RUN(mbap_guide_example_decodes_byte_by_byte);
    RUN(mbap_guide_example_decodes_in_every_split_of_two_reads);
    RUN(mbap_guide_example_twice_in_one_buffer_gives_two_frames);
    RUN(mbap_guide_example_header_peeks_and_encodes);
    return harness_result();
}
