/* SPDX-License-Identifier: MIT */
/* The server's request validator: the exception to send, in the spec's order of checks. */
#include <string.h>

#include "harness.h"
#include "mbsec/validate.h"

/* A server with 100 of everything at 0, two files of 10000 records, every public function. */
static struct mb_extents server(void) {
    struct mb_extents extents;
    memset(&extents, 0, sizeof extents);
    extents.coils = (struct mb_table_extent){0, 100};
    extents.discrete_inputs = (struct mb_table_extent){0, 100};
    extents.holding_registers = (struct mb_table_extent){0, 100};
    extents.input_registers = (struct mb_table_extent){0, 100};
    extents.files = 2;
    extents.records_per_file = 10000;
    const uint8_t functions[] = {1,  2,  3,  4,  5,  6,  7,  8,  11, 12,
                                 15, 16, 17, 20, 21, 22, 23, 24, 43};
    for (size_t i = 0; i < sizeof functions; i++)
        mb_extents_set_function(&extents, functions[i], 1);
    return extents;
}

static int check(const struct mb_extents *extents, const uint8_t *pdu, size_t length) {
    struct mb_request request;
    return mb_request_check(guard_copy(pdu, length), length, extents, &request);
}

TEST(with_100_registers_a_read_of_4_at_96_succeeds_and_5_at_96_gets_02) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x03, 0x00, 0x60, 0x00, 0x04)), 0);
    CHECK_EQ(check(&e, BYTES(0x03, 0x00, 0x60, 0x00, 0x05)), MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x03, 0x00, 0x63, 0x00, 0x01)), 0);
    CHECK_EQ(check(&e, BYTES(0x03, 0x00, 0x64, 0x00, 0x01)), MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x03, 0xFF, 0xFF, 0x00, 0x7D)), MB_EX_ILLEGAL_DATA_ADDRESS);
}

TEST(quantity_is_checked_before_address) {
    struct mb_extents e = server();
    /* Quantity 0 and 126 at an address far outside the table: 03, not 02. */
    CHECK_EQ(check(&e, BYTES(0x03, 0x10, 0x00, 0x00, 0x00)), MB_EX_ILLEGAL_DATA_VALUE);
    CHECK_EQ(check(&e, BYTES(0x03, 0x10, 0x00, 0x00, 0x7E)), MB_EX_ILLEGAL_DATA_VALUE);
    CHECK_EQ(check(&e, BYTES(0x01, 0x10, 0x00, 0x07, 0xD1)), MB_EX_ILLEGAL_DATA_VALUE);
    CHECK_EQ(check(&e, BYTES(0x10, 0x10, 0x00, 0x00, 0x01, 0x04, 0x00, 0x01, 0x00, 0x02)),
             MB_EX_ILLEGAL_DATA_VALUE);
}

TEST(an_unsupported_function_gets_01_even_when_its_data_is_also_bad) {
    struct mb_extents e = server();
    mb_extents_set_function(&e, 3, 0);
    CHECK_EQ(check(&e, BYTES(0x03, 0x00, 0x00, 0x00, 0x00)), MB_EX_ILLEGAL_FUNCTION);
    CHECK_EQ(check(&e, BYTES(0x03, 0x00, 0x00, 0x00, 0x01)), MB_EX_ILLEGAL_FUNCTION);
    CHECK_EQ(check(&e, BYTES(0x04, 0x00, 0x00, 0x00, 0x01)), 0);
}

TEST(reserved_function_codes_get_01) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x09, 0x00, 0x00)), MB_EX_ILLEGAL_FUNCTION);
    CHECK_EQ(check(&e, BYTES(0x00)), MB_EX_ILLEGAL_FUNCTION);
    CHECK_EQ(check(&e, BYTES(0x83, 0x02)), MB_EX_ILLEGAL_FUNCTION);
    /* Even when marked supported, a code Modbus does not define cannot be decoded: 01. */
    mb_extents_set_function(&e, 9, 1);
    CHECK_EQ(check(&e, BYTES(0x09, 0x00, 0x00)), MB_EX_ILLEGAL_FUNCTION);
}

TEST(a_missing_table_makes_its_functions_unsupported) {
    struct mb_extents e = server();
    e.coils.size = 0;
    CHECK_EQ(check(&e, BYTES(0x01, 0x00, 0x00, 0x00, 0x01)), MB_EX_ILLEGAL_FUNCTION);
    CHECK_EQ(check(&e, BYTES(0x05, 0x00, 0x00, 0xFF, 0x00)), MB_EX_ILLEGAL_FUNCTION);
    CHECK_EQ(check(&e, BYTES(0x0F, 0x00, 0x00, 0x00, 0x01, 0x01, 0x01)), MB_EX_ILLEGAL_FUNCTION);
    CHECK_EQ(check(&e, BYTES(0x02, 0x00, 0x00, 0x00, 0x01)), 0);
    e.files = 0;
    CHECK_EQ(check(&e, BYTES(0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01)),
             MB_EX_ILLEGAL_FUNCTION);
}

TEST(tables_that_start_above_0_refuse_addresses_below_their_start) {
    struct mb_extents e = server();
    e.input_registers = (struct mb_table_extent){1000, 10};
    CHECK_EQ(check(&e, BYTES(0x04, 0x03, 0xE7, 0x00, 0x01)), MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x04, 0x03, 0xE8, 0x00, 0x0A)), 0);
    CHECK_EQ(check(&e, BYTES(0x04, 0x03, 0xE8, 0x00, 0x0B)), MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x04, 0x03, 0xF1, 0x00, 0x01)), 0);
}

TEST(a_table_covering_all_65536_addresses_accepts_the_last_one) {
    struct mb_extents e = server();
    e.holding_registers = (struct mb_table_extent){0, 65536};
    CHECK_EQ(check(&e, BYTES(0x03, 0xFF, 0xFF, 0x00, 0x01)), 0);
    CHECK_EQ(check(&e, BYTES(0x03, 0xFF, 0xFF, 0x00, 0x02)), MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x03, 0xFF, 0x83, 0x00, 0x7D)), 0);
    CHECK_EQ(check(&e, BYTES(0x06, 0xFF, 0xFF, 0x12, 0x34)), 0);
}

TEST(fc05_checks_the_value_before_the_address) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x05, 0x10, 0x00, 0x12, 0x34)), MB_EX_ILLEGAL_DATA_VALUE);
    CHECK_EQ(check(&e, BYTES(0x05, 0x10, 0x00, 0xFF, 0x00)), MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x05, 0x00, 0x63, 0xFF, 0x00)), 0);
}

TEST(fc06_fc15_fc16_fc22_check_their_addresses) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x06, 0x00, 0x64, 0x00, 0x01)), MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x0F, 0x00, 0x60, 0x00, 0x05, 0x01, 0x1F)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x0F, 0x00, 0x60, 0x00, 0x04, 0x01, 0x0F)), 0);
    CHECK_EQ(check(&e, BYTES(0x10, 0x00, 0x63, 0x00, 0x02, 0x04, 0x00, 0x01, 0x00, 0x02)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x16, 0x00, 0x64, 0x00, 0xF2, 0x00, 0x25)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25)), 0);
}

TEST(fc23_checks_both_the_write_and_the_read_range) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00, 0xFF,
                             0x00, 0xFF, 0x00, 0xFF)),
             0);
    /* write range runs past the end */
    CHECK_EQ(check(&e, BYTES(0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x62, 0x00, 0x03, 0x06, 0x00, 0xFF,
                             0x00, 0xFF, 0x00, 0xFF)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    /* read range runs past the end */
    CHECK_EQ(check(&e, BYTES(0x17, 0x00, 0x5F, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00, 0xFF,
                             0x00, 0xFF, 0x00, 0xFF)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    /* a bad write quantity is 03 even with both ranges outside */
    CHECK_EQ(
        check(&e, BYTES(0x17, 0x10, 0x00, 0x00, 0x01, 0x10, 0x00, 0x00, 0x7A, 0x02, 0x00, 0x01)),
        MB_EX_ILLEGAL_DATA_VALUE);
}

TEST(fc24_checks_the_fifo_address_and_leaves_the_count_to_execution) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x18, 0x00, 0x10)), 0);
    CHECK_EQ(check(&e, BYTES(0x18, 0x04, 0xDE)), MB_EX_ILLEGAL_DATA_ADDRESS);
}

TEST(fc43_14_checks_the_read_code_and_leaves_the_object_id_to_the_responder) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x2B, 0x0E, 0x05, 0x00)), MB_EX_ILLEGAL_DATA_VALUE);
    CHECK_EQ(check(&e, BYTES(0x2B, 0x0E, 0x04, 0x99)), 0);
    CHECK_EQ(check(&e, BYTES(0x2B, 0x0E, 0x01, 0x00)), 0);
    /* The CANopen interface decodes, but this server does not serve it. */
    CHECK_EQ(check(&e, BYTES(0x2B, 0x0D, 0x00)), MB_EX_ILLEGAL_FUNCTION);
    CHECK_EQ(check(&e, BYTES(0x2B, 0x0F, 0x00)), MB_EX_ILLEGAL_FUNCTION);
}

TEST(fc08_reserved_sub_function_gets_01_and_bad_data_03) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x08, 0x00, 0x05, 0x00, 0x00)), MB_EX_ILLEGAL_FUNCTION);
    CHECK_EQ(check(&e, BYTES(0x08, 0x00, 0x0A, 0x00, 0x01)), MB_EX_ILLEGAL_DATA_VALUE);
    CHECK_EQ(check(&e, BYTES(0x08, 0x00, 0x0A, 0x00, 0x00)), 0);
}

TEST(fc20_fc21_check_reference_type_file_and_record_with_02) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x14, 0x07, 0x06, 0x00, 0x02, 0x27, 0x0F, 0x00, 0x01)), 0);
    /* reference type 7 */
    CHECK_EQ(check(&e, BYTES(0x14, 0x07, 0x07, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    /* file 0 and file 3 do not exist */
    CHECK_EQ(check(&e, BYTES(0x14, 0x07, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x14, 0x07, 0x06, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    /* record 0x2710 (10000) and a run past record 9999 */
    CHECK_EQ(check(&e, BYTES(0x14, 0x07, 0x06, 0x00, 0x01, 0x27, 0x10, 0x00, 0x01)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(check(&e, BYTES(0x14, 0x07, 0x06, 0x00, 0x01, 0x27, 0x0F, 0x00, 0x02)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    /* record length 0 */
    CHECK_EQ(check(&e, BYTES(0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x00)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    /* a byte count outside 0x07..0xF5 is 03 before any of that */
    CHECK_EQ(check(&e, BYTES(0x14, 0x06, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00)),
             MB_EX_ILLEGAL_DATA_VALUE);
    /* smaller files */
    e.records_per_file = 100;
    CHECK_EQ(check(&e, BYTES(0x15, 0x09, 0x06, 0x00, 0x01, 0x00, 0x63, 0x00, 0x01, 0x12, 0x34)), 0);
    CHECK_EQ(check(&e, BYTES(0x15, 0x09, 0x06, 0x00, 0x01, 0x00, 0x64, 0x00, 0x01, 0x12, 0x34)),
             MB_EX_ILLEGAL_DATA_ADDRESS);
}

TEST(fc20_built_by_hand_is_held_to_the_decoders_rules_03_before_02) {
    struct mb_extents e = server();
    /* Two groups of 120 registers: the answer could never fit a PDU. */
    uint8_t area[16];
    size_t used = 0;
    struct mb_file_record group = {
        .reference_type = 6, .file_number = 1, .record_number = 0, .record_length = 120};
    CHECK_EQ(mb_file_records_append(MB_FILE_READ_REQUEST, &group, area, sizeof area, &used), 0);
    group.record_number = 200;
    CHECK_EQ(mb_file_records_append(MB_FILE_READ_REQUEST, &group, area, sizeof area, &used), 0);
    struct mb_request request = {
        .function = MB_FC_READ_FILE_RECORD,
        .file = {.data = area, .length = (uint8_t)used, .layout = MB_FILE_READ_REQUEST}};
    CHECK_EQ(mb_request_validate(&request, &e), MB_EX_ILLEGAL_DATA_VALUE);
    /* Even with a reference type that alone would be 02. */
    area[0] = 7;
    CHECK_EQ(mb_request_validate(&request, &e), MB_EX_ILLEGAL_DATA_VALUE);
    request.file.length = 7;
    CHECK_EQ(mb_request_validate(&request, &e), MB_EX_ILLEGAL_DATA_ADDRESS);
    area[0] = 6;
    CHECK_EQ(mb_request_validate(&request, &e), 0);
    request.file.layout = MB_FILE_WRITE;
    CHECK_EQ(mb_request_validate(&request, &e), MB_EX_ILLEGAL_DATA_VALUE);
    request.file.layout = MB_FILE_READ_REQUEST;
    request.file.data = NULL;
    CHECK_EQ(mb_request_validate(&request, &e), MB_EX_ILLEGAL_DATA_VALUE);
}

TEST(serial_line_functions_are_answered_only_when_the_server_offers_them) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x07)), 0);
    CHECK_EQ(check(&e, BYTES(0x11)), 0);
    mb_extents_set_function(&e, 7, 0);
    CHECK_EQ(check(&e, BYTES(0x07)), MB_EX_ILLEGAL_FUNCTION);
    CHECK_EQ(mb_extents_has_function(&e, 7), 0);
    CHECK_EQ(mb_extents_has_function(&e, 17), 1);
}

TEST(user_defined_codes_are_01_unless_offered) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x41, 0x01)), MB_EX_ILLEGAL_FUNCTION);
    mb_extents_set_function(&e, 0x41, 1);
    CHECK_EQ(check(&e, BYTES(0x41, 0x01)), 0);
}

TEST(truncated_and_overlong_pdus_get_03) {
    struct mb_extents e = server();
    CHECK_EQ(check(&e, BYTES(0x03, 0x00, 0x00, 0x00)), MB_EX_ILLEGAL_DATA_VALUE);
    CHECK_EQ(check(&e, BYTES(0x03, 0x00, 0x00, 0x00, 0x01, 0x00)), MB_EX_ILLEGAL_DATA_VALUE);
    CHECK_EQ(check(&e, BYTES(0x07, 0x00)), MB_EX_ILLEGAL_DATA_VALUE);
}

TEST(check_refuses_empty_pdus_and_null_arguments) {
    struct mb_extents e = server();
    struct mb_request request;
    uint8_t pdu[1] = {3};
    CHECK_EQ(mb_request_check(pdu, 0, &e, &request), MB_EINVAL);
    CHECK_EQ(mb_request_check(NULL, 1, &e, &request), MB_EINVAL);
    CHECK_EQ(mb_request_check(pdu, 1, NULL, &request), MB_EINVAL);
    CHECK_EQ(mb_request_check(pdu, 1, &e, NULL), MB_EINVAL);
    CHECK_EQ(mb_request_validate(NULL, &e), MB_EINVAL);
}

/* Requests built by hand, not decoded: the limits the decoder would have enforced. */
TEST(a_request_built_by_hand_gets_the_exception_the_wire_would_have_given) {
    static const uint8_t two_registers[4] = {0x00, 0x01, 0x00, 0x02};
    static const uint8_t zero[2] = {0x00, 0x00}, ff00[2] = {0xFF, 0x00}, odd[2] = {0x12, 0x34};
    struct mb_request request;
    memset(&request, 0, sizeof request);
    request.function = MB_FC_READ_HOLDING_REGISTERS;
    request.read.quantity = 125;
    CHECK_EQ(mb_request_validate_values(&request), 0);
    request.read.quantity = 126;
    CHECK_EQ(mb_request_validate_values(&request), MB_EX_ILLEGAL_DATA_VALUE);
    request.read.quantity = 0;
    CHECK_EQ(mb_request_validate_values(&request), MB_EX_ILLEGAL_DATA_VALUE);
    request.function = MB_FC_READ_COILS;
    request.read.quantity = 2000;
    CHECK_EQ(mb_request_validate_values(&request), 0);
    request.read.quantity = 2001;
    CHECK_EQ(mb_request_validate_values(&request), MB_EX_ILLEGAL_DATA_VALUE);

    memset(&request, 0, sizeof request);
    request.function = MB_FC_WRITE_SINGLE_COIL;
    request.write_single.value = MB_COIL_ON;
    CHECK_EQ(mb_request_validate_values(&request), 0);
    request.write_single.value = 0x1234;
    CHECK_EQ(mb_request_validate_values(&request), MB_EX_ILLEGAL_DATA_VALUE);

    memset(&request, 0, sizeof request);
    request.function = MB_FC_WRITE_MULTIPLE_REGISTERS;
    request.write_multiple.quantity = 2;
    CHECK_EQ(mb_request_validate_values(&request), MB_EX_ILLEGAL_DATA_VALUE); /* no values */
    request.write_multiple.values = two_registers;
    CHECK_EQ(mb_request_validate_values(&request), 0);
    request.write_multiple.quantity = 124;
    CHECK_EQ(mb_request_validate_values(&request), MB_EX_ILLEGAL_DATA_VALUE);

    memset(&request, 0, sizeof request);
    request.function = MB_FC_DIAGNOSTICS;
    request.diagnostics.sub_function = MB_DIAG_RESTART_COMMUNICATIONS;
    request.diagnostics.data = ff00;
    request.diagnostics.data_length = 2;
    CHECK_EQ(mb_request_validate_values(&request), 0);
    request.diagnostics.data = odd;
    CHECK_EQ(mb_request_validate_values(&request), MB_EX_ILLEGAL_DATA_VALUE);
    request.diagnostics.data = zero;
    request.diagnostics.sub_function = 0x0099; /* no such sub-function */
    CHECK_EQ(mb_request_validate_values(&request), MB_EX_ILLEGAL_FUNCTION);

    CHECK_EQ(mb_request_validate_values(NULL), MB_EINVAL);
}

int main(void) {
    RUN(a_request_built_by_hand_gets_the_exception_the_wire_would_have_given);
    RUN(with_100_registers_a_read_of_4_at_96_succeeds_and_5_at_96_gets_02);
    RUN(quantity_is_checked_before_address);
    RUN(an_unsupported_function_gets_01_even_when_its_data_is_also_bad);
    RUN(reserved_function_codes_get_01);
    RUN(a_missing_table_makes_its_functions_unsupported);
    RUN(tables_that_start_above_0_refuse_addresses_below_their_start);
    RUN(a_table_covering_all_65536_addresses_accepts_the_last_one);
    RUN(fc05_checks_the_value_before_the_address);
    RUN(fc06_fc15_fc16_fc22_check_their_addresses);
    RUN(fc23_checks_both_the_write_and_the_read_range);
    RUN(fc24_checks_the_fifo_address_and_leaves_the_count_to_execution);
    RUN(fc43_14_checks_the_read_code_and_leaves_the_object_id_to_the_responder);
    RUN(fc08_reserved_sub_function_gets_01_and_bad_data_03);
    RUN(fc20_fc21_check_reference_type_file_and_record_with_02);
    RUN(fc20_built_by_hand_is_held_to_the_decoders_rules_03_before_02);
    RUN(serial_line_functions_are_answered_only_when_the_server_offers_them);
    RUN(user_defined_codes_are_01_unless_offered);
    RUN(truncated_and_overlong_pdus_get_03);
    RUN(check_refuses_empty_pdus_and_null_arguments);
    return harness_result();
}
