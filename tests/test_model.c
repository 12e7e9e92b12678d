/* SPDX-License-Identifier: MIT */
/*
 * The data model as a server handler: every function code executed through mb_model_handle()
 * with requests decoded from byte vectors written out in full, the response checked byte for
 * byte; the serial-line diagnostics a simulator answers; configuration checks; the
 * application's access; and sharing between threads and forked processes.
 */
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/model.h"
#include "mbsec/pdu.h"
#include "mbsec/version.h"

/* ---- helpers ---- */

static const struct mb_fifo_config test_fifos[] = {{50, 5}, {60, 31}};

/*
 * Unit 1: 100 of every table at 0, two files of 100 records, FIFOs at 50 (capacity 5) and 60
 * (capacity 31). Unit 2: tables at 1000..1009, no discrete inputs, no files.
 */
static const struct mb_unit_config test_units[] = {
    {
        .unit_id = 1,
        .coils = {0, 100},
        .discrete_inputs = {0, 100},
        .holding_registers = {0, 100},
        .input_registers = {0, 100},
        .files = 2,
        .records_per_file = 100,
        .fifos = test_fifos,
        .fifo_count = 2,
    },
    {
        .unit_id = 2,
        .coils = {1000, 10},
        .discrete_inputs = {0, 0},
        .holding_registers = {1000, 10},
        .input_registers = {1000, 10},
    },
};

static struct mb_model_config test_config(void) {
    struct mb_model_config config;
    mb_model_default_config(&config);
    config.any_unit = 0;
    config.units = test_units;
    config.unit_count = 2;
    return config;
}

static struct mb_model *create(const struct mb_model_config *config) {
    struct mb_model *model = NULL;
    char error[256] = "";
    int rc = mb_model_create(config, &model, error, sizeof error);
    if (rc != 0)
        harness_fail(__FILE__, __LINE__, "mb_model_create: %s (%s)", mb_error_name(rc), error);
    return model;
}

static struct mb_model *test_model(void) {
    struct mb_model_config config = test_config();
    return create(&config);
}

/* The last response, for CHECK_BYTES. */
static uint8_t answer[MB_PDU_MAX];

/* Decodes a request (from the end of a readable page) and hands it to the model as the server
 * would. Returns the handler's result: the response length, 0 for no response, or an error. */
static int ask(struct mb_model *model, uint8_t unit_id, const uint8_t *pdu, size_t length) {
    const uint8_t *guarded = guard_copy(pdu, length);
    struct mb_request request;
    int rc = mb_request_decode(guarded, length, &request);
    if (rc != 0) {
        harness_fail(__FILE__, __LINE__, "request does not decode: %s", mb_error_name(rc));
        return rc;
    }
    struct mb_server_request server_request = {
        .unit_id = unit_id,
        .request = &request,
        .pdu = guarded,
        .pdu_length = length,
    };
    memset(answer, 0xEE, sizeof answer);
    return mb_model_handle(model, &server_request, answer);
}

#define ASK(model, unit_id, ...) ask((model), (unit_id), BYTES(__VA_ARGS__))

/* Hands over a request built by hand, not decoded. */
static int ask_struct(struct mb_model *model, uint8_t unit_id, const struct mb_request *request) {
    struct mb_server_request server_request = {.unit_id = unit_id, .request = request};
    memset(answer, 0xEE, sizeof answer);
    return mb_model_handle(model, &server_request, answer);
}

static uint16_t get_one(struct mb_model *model, uint8_t unit_id, enum mb_table table,
                        uint16_t address) {
    uint16_t value = 0xDEAD;
    CHECK_EQ(mb_model_get(model, unit_id, table, address, 1, &value), 0);
    return value;
}

/* ---- reads and writes of the four tables ---- */

TEST(fc01_reads_coils_packed_lsb_first_with_zero_padding) {
    struct mb_model *model = test_model();
    const uint16_t on[] = {1, 0, 1, 1, 0, 0, 0, 0, 1, 0, 1};
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_COILS, 0, 11, on), 0);
    int n = ASK(model, 1, 0x01, 0x00, 0x00, 0x00, 0x0B);
    CHECK_BYTES(answer, n, 0x01, 0x02, 0x0D, 0x05);
    /* From an address that is not a multiple of 8: coils 2..11 are 1 1 0 0 0 0 1 0 1 0. */
    n = ASK(model, 1, 0x01, 0x00, 0x02, 0x00, 0x0A);
    CHECK_BYTES(answer, n, 0x01, 0x02, 0x43, 0x01);
    /* The last coil of the table. */
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_COILS, 99, 1, on), 0);
    n = ASK(model, 1, 0x01, 0x00, 0x63, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x01, 0x01, 0x01);
    mb_model_destroy(model);
}

TEST(fc02_reads_discrete_inputs) {
    struct mb_model *model = test_model();
    const uint16_t inputs[] = {0, 1, 0, 1, 1, 0, 1, 1, 0, 1};
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_DISCRETE_INPUTS, 90, 10, inputs), 0);
    int n = ASK(model, 1, 0x02, 0x00, 0x5A, 0x00, 0x0A);
    CHECK_BYTES(answer, n, 0x02, 0x02, 0xDA, 0x02);
    mb_model_destroy(model);
}

TEST(fc03_and_fc04_read_registers_big_endian) {
    struct mb_model *model = test_model();
    const uint16_t holding[] = {0x1234, 0xABCD, 0x0001};
    const uint16_t input[] = {0x00FF, 0xFF00};
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_HOLDING_REGISTERS, 97, 3, holding), 0);
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_INPUT_REGISTERS, 0, 2, input), 0);
    int n = ASK(model, 1, 0x03, 0x00, 0x61, 0x00, 0x03);
    CHECK_BYTES(answer, n, 0x03, 0x06, 0x12, 0x34, 0xAB, 0xCD, 0x00, 0x01);
    n = ASK(model, 1, 0x04, 0x00, 0x00, 0x00, 0x02);
    CHECK_BYTES(answer, n, 0x04, 0x04, 0x00, 0xFF, 0xFF, 0x00);
    mb_model_destroy(model);
}

TEST(with_100_registers_a_read_of_4_at_96_succeeds_and_5_at_96_gets_02) {
    struct mb_model *model = test_model();
    int n = ASK(model, 1, 0x03, 0x00, 0x60, 0x00, 0x04);
    CHECK_BYTES(answer, n, 0x03, 0x08, 0, 0, 0, 0, 0, 0, 0, 0);
    n = ASK(model, 1, 0x03, 0x00, 0x60, 0x00, 0x05);
    CHECK_BYTES(answer, n, 0x83, 0x02);
    mb_model_destroy(model);
}

TEST(tables_starting_above_0_answer_only_their_own_addresses) {
    struct mb_model *model = test_model();
    const uint16_t value = 0x0A0B;
    CHECK_EQ(mb_model_set(model, 2, MB_TABLE_HOLDING_REGISTERS, 1009, 1, &value), 0);
    int n = ASK(model, 2, 0x03, 0x03, 0xF1, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x03, 0x02, 0x0A, 0x0B);
    n = ASK(model, 2, 0x03, 0x03, 0xE7, 0x00, 0x01); /* 999 */
    CHECK_BYTES(answer, n, 0x83, 0x02);
    n = ASK(model, 2, 0x03, 0x03, 0xF1, 0x00, 0x02); /* 1009..1010 */
    CHECK_BYTES(answer, n, 0x83, 0x02);
    n = ASK(model, 2, 0x05, 0x03, 0xE8, 0xFF, 0x00); /* coil 1000 */
    CHECK_BYTES(answer, n, 0x05, 0x03, 0xE8, 0xFF, 0x00);
    CHECK_EQ(get_one(model, 2, MB_TABLE_COILS, 1000), 1);
    mb_model_destroy(model);
}

TEST(a_table_of_size_0_gets_01) {
    struct mb_model *model = test_model();
    int n = ASK(model, 2, 0x02, 0x00, 0x00, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x82, 0x01);
    /* Unit 2 has no files either. */
    n = ASK(model, 2, 0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x94, 0x01);
    mb_model_destroy(model);
}

TEST(fc05_writes_a_coil_and_echoes) {
    struct mb_model *model = test_model();
    /* The spec's example: coil 173 (0x00AC) on. */
    int n = ASK(model, 1, 0x05, 0x00, 0x0A, 0xFF, 0x00);
    CHECK_BYTES(answer, n, 0x05, 0x00, 0x0A, 0xFF, 0x00);
    CHECK_EQ(get_one(model, 1, MB_TABLE_COILS, 10), 1);
    CHECK_EQ(get_one(model, 1, MB_TABLE_COILS, 9), 0);
    CHECK_EQ(get_one(model, 1, MB_TABLE_COILS, 11), 0);
    n = ASK(model, 1, 0x05, 0x00, 0x0A, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x05, 0x00, 0x0A, 0x00, 0x00);
    CHECK_EQ(get_one(model, 1, MB_TABLE_COILS, 10), 0);
    n = ASK(model, 1, 0x05, 0x00, 0x64, 0xFF, 0x00);
    CHECK_BYTES(answer, n, 0x85, 0x02);
    mb_model_destroy(model);
}

TEST(fc06_writes_a_register_and_echoes) {
    struct mb_model *model = test_model();
    int n = ASK(model, 1, 0x06, 0x00, 0x01, 0x00, 0x03);
    CHECK_BYTES(answer, n, 0x06, 0x00, 0x01, 0x00, 0x03);
    CHECK_EQ(get_one(model, 1, MB_TABLE_HOLDING_REGISTERS, 1), 3);
    n = ASK(model, 1, 0x06, 0x00, 0x64, 0x00, 0x03);
    CHECK_BYTES(answer, n, 0x86, 0x02);
    mb_model_destroy(model);
}

TEST(fc15_writes_coils_from_packed_bits) {
    struct mb_model *model = test_model();
    /* The spec's example: 10 coils from 19 (0x13), bits CD 01. */
    int n = ASK(model, 1, 0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01);
    CHECK_BYTES(answer, n, 0x0F, 0x00, 0x13, 0x00, 0x0A);
    n = ASK(model, 1, 0x01, 0x00, 0x13, 0x00, 0x0A);
    CHECK_BYTES(answer, n, 0x01, 0x02, 0xCD, 0x01);
    /* Neighbours are untouched. */
    CHECK_EQ(get_one(model, 1, MB_TABLE_COILS, 18), 0);
    CHECK_EQ(get_one(model, 1, MB_TABLE_COILS, 29), 0);
    uint16_t bits[10];
    CHECK_EQ(mb_model_get(model, 1, MB_TABLE_COILS, 19, 10, bits), 0);
    const uint16_t want[] = {1, 0, 1, 1, 0, 0, 1, 1, 1, 0};
    CHECK(memcmp(bits, want, sizeof want) == 0);
    mb_model_destroy(model);
}

TEST(fc16_writes_registers) {
    struct mb_model *model = test_model();
    /* The spec's example: 00 0A and 01 02 at 1. */
    int n = ASK(model, 1, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02);
    CHECK_BYTES(answer, n, 0x10, 0x00, 0x01, 0x00, 0x02);
    n = ASK(model, 1, 0x03, 0x00, 0x00, 0x00, 0x04);
    CHECK_BYTES(answer, n, 0x03, 0x08, 0x00, 0x00, 0x00, 0x0A, 0x01, 0x02, 0x00, 0x00);
    n = ASK(model, 1, 0x10, 0x00, 0x63, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02);
    CHECK_BYTES(answer, n, 0x90, 0x02);
    CHECK_EQ(get_one(model, 1, MB_TABLE_HOLDING_REGISTERS, 99), 0);
    mb_model_destroy(model);
}

TEST(fc22_mask_write_of_0x12_with_and_f2_or_25_gives_0x17) {
    struct mb_model *model = test_model();
    const uint16_t value = 0x0012;
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_HOLDING_REGISTERS, 4, 1, &value), 0);
    int n = ASK(model, 1, 0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25);
    CHECK_BYTES(answer, n, 0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25);
    CHECK_EQ(get_one(model, 1, MB_TABLE_HOLDING_REGISTERS, 4), 0x0017);
    n = ASK(model, 1, 0x03, 0x00, 0x04, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x03, 0x02, 0x00, 0x17);
    n = ASK(model, 1, 0x16, 0x00, 0x64, 0x00, 0xF2, 0x00, 0x25);
    CHECK_BYTES(answer, n, 0x96, 0x02);
    mb_model_destroy(model);
}

TEST(fc23_writes_before_it_reads) {
    struct mb_model *model = test_model();
    const uint16_t old[] = {0x1111, 0x2222, 0x3333, 0x4444};
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_HOLDING_REGISTERS, 3, 4, old), 0);
    /* Read 3..6 while writing 00 FF 00 FF 00 FF at 4..6: the read sees the new values. */
    int n = ASK(model, 1, 0x17, 0x00, 0x03, 0x00, 0x04, 0x00, 0x04, 0x00, 0x03, 0x06, 0x00, 0xFF,
                0x00, 0xFF, 0x00, 0xFF);
    CHECK_BYTES(answer, n, 0x17, 0x08, 0x11, 0x11, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF);
    /* A write range outside the table is 02 and nothing is written. */
    n = ASK(model, 1, 0x17, 0x00, 0x03, 0x00, 0x01, 0x00, 0x63, 0x00, 0x02, 0x04, 0x12, 0x34, 0x56,
            0x78);
    CHECK_BYTES(answer, n, 0x97, 0x02);
    CHECK_EQ(get_one(model, 1, MB_TABLE_HOLDING_REGISTERS, 99), 0);
    mb_model_destroy(model);
}

/* ---- FIFO queues ---- */

TEST(fc24_returns_the_count_then_the_queue_and_does_not_drain_it) {
    struct mb_model *model = test_model();
    int n = ASK(model, 1, 0x18, 0x00, 0x32);
    CHECK_BYTES(answer, n, 0x18, 0x00, 0x02, 0x00, 0x00);
    CHECK_EQ(mb_model_fifo_push(model, 1, 50, 0x01B8), 0);
    CHECK_EQ(mb_model_fifo_push(model, 1, 50, 0x1284), 0);
    n = ASK(model, 1, 0x18, 0x00, 0x32);
    CHECK_BYTES(answer, n, 0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84);
    n = ASK(model, 1, 0x18, 0x00, 0x32);
    CHECK_BYTES(answer, n, 0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84);
    /* The queue lives in the holding registers: count at 50, values from 51. */
    n = ASK(model, 1, 0x03, 0x00, 0x32, 0x00, 0x03);
    CHECK_BYTES(answer, n, 0x03, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84);
    /* Writing 0 to the count register empties it. */
    n = ASK(model, 1, 0x06, 0x00, 0x32, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x06, 0x00, 0x32, 0x00, 0x00);
    n = ASK(model, 1, 0x18, 0x00, 0x32);
    CHECK_BYTES(answer, n, 0x18, 0x00, 0x02, 0x00, 0x00);
    mb_model_destroy(model);
}

TEST(fc24_full_fifo_refuses_pushes_and_31_values_fit_one_response) {
    struct mb_model *model = test_model();
    for (uint16_t i = 0; i < 5; i++)
        CHECK_EQ(mb_model_fifo_push(model, 1, 50, i), 0);
    CHECK_EQ(mb_model_fifo_push(model, 1, 50, 5), MB_ELIMIT);
    for (uint16_t i = 0; i < 31; i++)
        CHECK_EQ(mb_model_fifo_push(model, 1, 60, (uint16_t)(0x0100 + i)), 0);
    CHECK_EQ(mb_model_fifo_push(model, 1, 60, 0), MB_ELIMIT);
    int n = ASK(model, 1, 0x18, 0x00, 0x3C);
    CHECK_EQ(n, 1 + 2 + 2 + 62);
    CHECK_BYTES(answer, 5, 0x18, 0x00, 0x40, 0x00, 0x1F);
    CHECK_BYTES(answer + 5, 4, 0x01, 0x00, 0x01, 0x01);
    CHECK_BYTES(answer + n - 2, 2, 0x01, 0x1E);
    CHECK_EQ(mb_model_fifo_push(model, 1, 51, 0), MB_EINVAL);
    CHECK_EQ(mb_model_fifo_push(model, 9, 50, 0), MB_EINVAL);
    mb_model_destroy(model);
}

TEST(fc24_address_that_is_no_fifo_gets_02_and_a_count_over_its_capacity_03) {
    struct mb_model *model = test_model();
    int n = ASK(model, 1, 0x18, 0x00, 0x33);
    CHECK_BYTES(answer, n, 0x98, 0x02);
    n = ASK(model, 1, 0x18, 0x00, 0x64);
    CHECK_BYTES(answer, n, 0x98, 0x02);
    /* A client wrote a count the queue cannot hold: over its capacity, and over 31. */
    n = ASK(model, 1, 0x06, 0x00, 0x32, 0x00, 0x06);
    CHECK_EQ(n, 5);
    n = ASK(model, 1, 0x18, 0x00, 0x32);
    CHECK_BYTES(answer, n, 0x98, 0x03);
    CHECK_EQ(mb_model_fifo_push(model, 1, 50, 1), MB_ELIMIT);
    n = ASK(model, 1, 0x06, 0x00, 0x3C, 0x00, 0x20);
    CHECK_EQ(n, 5);
    n = ASK(model, 1, 0x18, 0x00, 0x3C);
    CHECK_BYTES(answer, n, 0x98, 0x03);
    mb_model_destroy(model);
}

/* ---- file records ---- */

TEST(fc21_then_fc20_round_trip_file_records) {
    struct mb_model *model = test_model();
    /* File 1 records 7..8, file 2 record 99 (the last), in one request. */
    int n = ASK(model, 1, 0x15, 0x14, 0x06, 0x00, 0x01, 0x00, 0x07, 0x00, 0x02, 0x06, 0xAF, 0x04,
                0xBE, 0x06, 0x00, 0x02, 0x00, 0x63, 0x00, 0x01, 0x10, 0x0D);
    CHECK_BYTES(answer, n, 0x15, 0x14, 0x06, 0x00, 0x01, 0x00, 0x07, 0x00, 0x02, 0x06, 0xAF, 0x04,
                0xBE, 0x06, 0x00, 0x02, 0x00, 0x63, 0x00, 0x01, 0x10, 0x0D);
    n = ASK(model, 1, 0x14, 0x15, 0x06, 0x00, 0x01, 0x00, 0x06, 0x00, 0x04, 0x06, 0x00, 0x02, 0x00,
            0x63, 0x00, 0x01, 0x06, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x14, 0x12, 0x09, 0x06, 0x00, 0x00, 0x06, 0xAF, 0x04, 0xBE, 0x00, 0x00,
                0x03, 0x06, 0x10, 0x0D, 0x03, 0x06, 0x00, 0x00);
    mb_model_destroy(model);
}

TEST(fc20_fc21_out_of_range_files_and_records_get_02) {
    struct mb_model *model = test_model();
    /* Record 99 + 2 registers runs past the file's 100 records. */
    int n = ASK(model, 1, 0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x63, 0x00, 0x02);
    CHECK_BYTES(answer, n, 0x94, 0x02);
    n = ASK(model, 1, 0x14, 0x07, 0x06, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x94, 0x02);
    n = ASK(model, 1, 0x14, 0x07, 0x06, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x94, 0x02);
    /* A write whose second record is out of range writes nothing. */
    n = ASK(model, 1, 0x15, 0x14, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x12, 0x34, 0x06, 0x00,
            0x01, 0x00, 0x64, 0x00, 0x02, 0x56, 0x78, 0x9A, 0xBC);
    CHECK_BYTES(answer, n, 0x95, 0x02);
    n = ASK(model, 1, 0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x14, 0x04, 0x03, 0x06, 0x00, 0x00);
    mb_model_destroy(model);
}

/* ---- identification ---- */

TEST(fc43_14_default_identity_streams_vendor_product_code_and_library_version) {
    struct mb_model *model = test_model();
    int n = ASK(model, 1, 0x2B, 0x0E, 0x01, 0x00);
    const char *version = mb_version();
    size_t version_length = strlen(version);
    CHECK_EQ(n, 7 + 2 + 5 + 2 + 9 + 2 + (int)version_length);
    CHECK_BYTES(answer, 7 + 2 + 5 + 2 + 9 + 1, 0x2B, 0x0E, 0x01, 0x83, 0x00, 0x00, 0x03, 0x00, 0x05,
                'm', 'b', 's', 'e', 'c', 0x01, 0x09, 'm', 'b', 's', 'e', 'c', '-', 's', 'i', 'm',
                0x02);
    CHECK_EQ(answer[26], version_length);
    CHECK(n > 27 && memcmp(answer + 27, version, version_length) == 0);
    /* Regular and extended streams hold the same three objects; individual access works. */
    n = ASK(model, 1, 0x2B, 0x0E, 0x04, 0x01);
    CHECK_BYTES(answer, n, 0x2B, 0x0E, 0x04, 0x83, 0x00, 0x00, 0x01, 0x01, 0x09, 'm', 'b', 's', 'e',
                'c', '-', 's', 'i', 'm');
    n = ASK(model, 1, 0x2B, 0x0E, 0x04, 0x04);
    CHECK_BYTES(answer, n, 0xAB, 0x02);
    /* Read code 5 does not decode; built by hand it gets 03. Another MEI type gets 01. */
    struct mb_request request = {.function = MB_FC_ENCAPSULATED_INTERFACE};
    request.device_id.mei_type = MB_MEI_DEVICE_ID;
    request.device_id.read_code = 5;
    n = ask_struct(model, 1, &request);
    CHECK_BYTES(answer, n, 0xAB, 0x03);
    n = ASK(model, 1, 0x2B, 0x0D, 0x00);
    CHECK_BYTES(answer, n, 0xAB, 0x01);
    mb_model_destroy(model);
}

TEST(fc43_14_configured_identity_streams_every_object_in_order) {
    struct mb_model_config config = test_config();
    config.identity.vendor_name = "ACME";
    config.identity.product_code = "P1";
    config.identity.revision = "2.3";
    config.identity.vendor_url = "u";
    config.identity.product_name = "Pump";
    config.identity.application_name = "app";
    config.identity.conformity_level = 0x82;
    struct mb_model *model = create(&config);
    int n = ASK(model, 1, 0x2B, 0x0E, 0x02, 0x00);
    CHECK_BYTES(answer, n, 0x2B, 0x0E, 0x02, 0x82, 0x00, 0x00, 0x06, 0x00, 0x04, 'A', 'C', 'M', 'E',
                0x01, 0x02, 'P', '1', 0x02, 0x03, '2', '.', '3', 0x03, 0x01, 'u', 0x04, 0x04, 'P',
                'u', 'm', 'p', 0x06, 0x03, 'a', 'p', 'p');
    /* Starting at an object that exists; at one that does not (0x05) restarts at 0. */
    n = ASK(model, 1, 0x2B, 0x0E, 0x02, 0x04);
    CHECK_BYTES(answer, n, 0x2B, 0x0E, 0x02, 0x82, 0x00, 0x00, 0x02, 0x04, 0x04, 'P', 'u', 'm', 'p',
                0x06, 0x03, 'a', 'p', 'p');
    n = ASK(model, 1, 0x2B, 0x0E, 0x01, 0x05);
    CHECK_BYTES(answer, n, 0x2B, 0x0E, 0x01, 0x82, 0x00, 0x00, 0x03, 0x00, 0x04, 'A', 'C', 'M', 'E',
                0x01, 0x02, 'P', '1', 0x02, 0x03, '2', '.', '3');
    n = ASK(model, 1, 0x2B, 0x0E, 0x04, 0x05);
    CHECK_BYTES(answer, n, 0xAB, 0x02);
    mb_model_destroy(model);
}

TEST(fc17_reports_the_server_id_and_run_indicator) {
    struct mb_model *model = test_model();
    int n = ASK(model, 1, 0x11);
    CHECK_BYTES(answer, n, 0x11, 0x06, 'm', 'b', 's', 'e', 'c', 0xFF);
    mb_model_destroy(model);

    struct mb_model_config config = test_config();
    const uint8_t id[] = {0x42, 0x07};
    config.identity.server_id = id;
    config.identity.server_id_length = sizeof id;
    config.identity.running = 0;
    model = create(&config);
    n = ASK(model, 2, 0x11);
    CHECK_BYTES(answer, n, 0x11, 0x03, 0x42, 0x07, 0x00);
    mb_model_destroy(model);
}

TEST(fc07_returns_exception_status_0) {
    struct mb_model *model = test_model();
    int n = ASK(model, 1, 0x07);
    CHECK_BYTES(answer, n, 0x07, 0x00);
    mb_model_destroy(model);
}

/* ---- diagnostics, event counter, event log ---- */

TEST(fc08_00_echoes_the_query_data_and_03_changes_the_ascii_delimiter) {
    struct mb_model *model = test_model();
    int n = ASK(model, 1, 0x08, 0x00, 0x00, 0xA5, 0x37);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x00, 0xA5, 0x37);
    n = ASK(model, 1, 0x08, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x00, 0x01, 0x02, 0x03, 0x04);
    n = ASK(model, 1, 0x08, 0x00, 0x03, 0x3B, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x03, 0x3B, 0x00);
    n = ASK(model, 1, 0x08, 0x00, 0x02, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x02, 0x00, 0x00);
    mb_model_destroy(model);
}

TEST(fc08_counters_count_messages_exceptions_and_silence_honestly) {
    struct mb_model *model = test_model();
    ASK(model, 1, 0x03, 0x00, 0x00, 0x00, 0x01);         /* answered */
    ASK(model, 1, 0x03, 0x00, 0x64, 0x00, 0x01);         /* exception 02 */
    ASK(model, 1, 0x2B, 0x0E, 0x04, 0x06);               /* exception 02 */
    ASK(model, 2, 0x03, 0x03, 0xE8, 0x00, 0x01);         /* another unit */
    int n = ASK(model, 1, 0x08, 0x00, 0x0B, 0x00, 0x00); /* bus messages: 4 with itself */
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x0B, 0x00, 0x04);
    n = ASK(model, 1, 0x08, 0x00, 0x0C, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x0C, 0x00, 0x00);
    n = ASK(model, 1, 0x08, 0x00, 0x0D, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x0D, 0x00, 0x02);
    n = ASK(model, 1, 0x08, 0x00, 0x0E, 0x00, 0x00); /* server messages: 7 */
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x0E, 0x00, 0x07);
    n = ASK(model, 1, 0x08, 0x00, 0x0F, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x0F, 0x00, 0x00);
    n = ASK(model, 1, 0x08, 0x00, 0x10, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x10, 0x00, 0x00);
    n = ASK(model, 1, 0x08, 0x00, 0x11, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x11, 0x00, 0x00);
    n = ASK(model, 1, 0x08, 0x00, 0x12, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x12, 0x00, 0x00);
    n = ASK(model, 1, 0x08, 0x00, 0x14, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x14, 0x00, 0x00);
    /* Unit 2 counts only its own request and this query. */
    n = ASK(model, 2, 0x08, 0x00, 0x0B, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x0B, 0x00, 0x02);
    /* Clear counters: echoed, and every counter reads 0 after it, the query counting itself. */
    n = ASK(model, 1, 0x08, 0x00, 0x0A, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x0A, 0x00, 0x00);
    n = ASK(model, 1, 0x08, 0x00, 0x0D, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x0D, 0x00, 0x00);
    n = ASK(model, 1, 0x08, 0x00, 0x0B, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x0B, 0x00, 0x02);
    mb_model_destroy(model);
}

TEST(fc11_counts_successful_completions_but_not_itself_nor_exceptions) {
    struct mb_model *model = test_model();
    int n = ASK(model, 1, 0x0B);
    CHECK_BYTES(answer, n, 0x0B, 0x00, 0x00, 0x00, 0x00);
    ASK(model, 1, 0x03, 0x00, 0x00, 0x00, 0x01);
    ASK(model, 1, 0x06, 0x00, 0x00, 0x00, 0x01);
    ASK(model, 1, 0x03, 0x00, 0x64, 0x00, 0x01);
    n = ASK(model, 1, 0x0B);
    CHECK_BYTES(answer, n, 0x0B, 0x00, 0x00, 0x00, 0x02);
    n = ASK(model, 1, 0x0B);
    CHECK_BYTES(answer, n, 0x0B, 0x00, 0x00, 0x00, 0x02);
    ASK(model, 1, 0x08, 0x00, 0x0A, 0x00, 0x00);
    n = ASK(model, 1, 0x0B);
    CHECK_BYTES(answer, n, 0x0B, 0x00, 0x00, 0x00, 0x00);
    mb_model_destroy(model);
}

TEST(fc12_returns_status_counts_and_events_most_recent_first) {
    struct mb_model *model = test_model();
    /* Its own receive event is logged before it executes. */
    int n = ASK(model, 1, 0x0C);
    CHECK_BYTES(answer, n, 0x0C, 0x07, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80);
    ASK(model, 1, 0x03, 0x00, 0x00, 0x00, 0x01); /* receive 80, send 40 */
    ASK(model, 1, 0x03, 0x00, 0x64, 0x00, 0x01); /* receive 80, send 41 (exception 02) */
    n = ASK(model, 1, 0x0C);
    /* Events so far, oldest first: 80 40 (FC 12) 80 40 (FC 3) 80 41 (FC 3, 02) 80 (FC 12). */
    CHECK_BYTES(answer, n, 0x0C, 0x0D, 0x00, 0x00, 0x00, 0x02, 0x00, 0x04, 0x80, 0x41, 0x80, 0x40,
                0x80, 0x40, 0x80);
    /* The log keeps the last 64 events. */
    for (int i = 0; i < 40; i++)
        ASK(model, 1, 0x03, 0x00, 0x00, 0x00, 0x01);
    n = ASK(model, 1, 0x0C);
    CHECK_EQ(n, 1 + 1 + 6 + 64);
    CHECK_BYTES(answer, 8, 0x0C, 0x46, 0x00, 0x00, 0x00, 0x2B, 0x00, 0x2D);
    CHECK_BYTES(answer + 8, 4, 0x80, 0x40, 0x80, 0x40);
    mb_model_destroy(model);
}

TEST(listen_only_answers_nothing_until_restart_communications) {
    struct mb_model *model = test_model();
    ASK(model, 1, 0x03, 0x00, 0x00, 0x00, 0x01);
    int n = ASK(model, 1, 0x08, 0x00, 0x04, 0x00, 0x00);
    CHECK_EQ(n, 0);
    /* Nothing is answered or executed, not even an exception or another diagnostic. */
    CHECK_EQ(ASK(model, 1, 0x03, 0x00, 0x00, 0x00, 0x01), 0);
    CHECK_EQ(ASK(model, 1, 0x06, 0x00, 0x05, 0x12, 0x34), 0);
    CHECK_EQ(get_one(model, 1, MB_TABLE_HOLDING_REGISTERS, 5), 0);
    CHECK_EQ(ASK(model, 1, 0x03, 0x00, 0x64, 0x00, 0x01), 0);
    CHECK_EQ(ASK(model, 1, 0x08, 0x00, 0x0B, 0x00, 0x00), 0);
    /* Other units answer. */
    n = ASK(model, 2, 0x03, 0x03, 0xE8, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x03, 0x02, 0x00, 0x00);
    /* Restart ends listen-only mode; the spec has it unanswered when it does. */
    CHECK_EQ(ASK(model, 1, 0x08, 0x00, 0x01, 0x00, 0x00), 0);
    n = ASK(model, 1, 0x06, 0x00, 0x05, 0x12, 0x34);
    CHECK_BYTES(answer, n, 0x06, 0x00, 0x05, 0x12, 0x34);
    /* The restart cleared the counters; the log (kept: data 0000) shows the whole story. */
    n = ASK(model, 1, 0x08, 0x00, 0x0B, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x0B, 0x00, 0x02);
    /* Events, newest first: this FC 12 (80); the 0B query and the FC 6 (80 received, 40
     * sent, each); the restart (00) and its receipt in listen-only (A0); four requests ignored
     * in listen-only (A0); entering listen-only (04) after its receipt (80); the first FC 3. */
    n = ASK(model, 1, 0x0C);
    CHECK_BYTES(answer, n, 0x0C, 0x15, 0x00, 0x00, 0x00, 0x02, 0x00, 0x03, 0x80, 0x40, 0x80, 0x40,
                0x80, 0x00, 0xA0, 0xA0, 0xA0, 0xA0, 0xA0, 0x04, 0x80, 0x40, 0x80);
    mb_model_destroy(model);
}

/* Sends a request on behalf of connection `connection`. */
static int ask_on(struct mb_model *model, uint64_t connection, const uint8_t *pdu, size_t length) {
    static uint8_t copy[MB_PDU_MAX];
    struct mb_request request;
    memcpy(copy, pdu, length);
    CHECK_EQ(mb_request_decode(copy, length, &request), 0);
    struct mb_server_request server_request = {.connection_id = connection,
                                               .unit_id = 1,
                                               .request = &request,
                                               .pdu = copy,
                                               .pdu_length = length};
    memset(answer, 0xEE, sizeof answer);
    return mb_model_handle(model, &server_request, answer);
}

TEST(listen_only_silences_only_the_connection_that_asked_for_it) {
    /* On TCP one client's FC 8/04 must not silence the server for everyone. */
    struct mb_model *model = test_model();
    CHECK_EQ(ask_on(model, 41, BYTES(0x08, 0x00, 0x04, 0x00, 0x00)), 0);
    CHECK_EQ(ask_on(model, 41, BYTES(0x03, 0x00, 0x00, 0x00, 0x01)), 0);
    CHECK_EQ(ask_on(model, 42, BYTES(0x03, 0x00, 0x00, 0x00, 0x01)), 4);
    CHECK_EQ(ask_on(model, 43, BYTES(0x03, 0x00, 0x00, 0x00, 0x01)), 4);
    /* Restart from connection 41 brings it back (unanswered, as the spec has it). */
    CHECK_EQ(ask_on(model, 41, BYTES(0x08, 0x00, 0x01, 0x00, 0x00)), 0);
    CHECK_EQ(ask_on(model, 41, BYTES(0x03, 0x00, 0x00, 0x00, 0x01)), 4);
    /* More listen-only connections than slots: the newest are always honoured. */
    for (uint64_t connection = 100; connection < 140; connection++)
        CHECK_EQ(ask_on(model, connection, BYTES(0x08, 0x00, 0x04, 0x00, 0x00)), 0);
    CHECK_EQ(ask_on(model, 139, BYTES(0x03, 0x00, 0x00, 0x00, 0x01)), 0);
    CHECK_EQ(ask_on(model, 200, BYTES(0x03, 0x00, 0x00, 0x00, 0x01)), 4);
    mb_model_destroy(model);
}

/* Hands over a PDU that did not decode, as the server does with pass_undecodable. */
static int ask_undecodable(struct mb_model *model, uint8_t unit_id, uint64_t connection,
                           const uint8_t *pdu, size_t length) {
    struct mb_request ignored;
    int rc = mb_request_decode(pdu, length, &ignored);
    CHECK(rc < 0);
    struct mb_server_request server_request = {.connection_id = connection,
                                               .unit_id = unit_id,
                                               .request = NULL,
                                               .decode_error = rc,
                                               .pdu = pdu,
                                               .pdu_length = length};
    memset(answer, 0xEE, sizeof answer);
    return mb_model_handle(model, &server_request, answer);
}

TEST(undecodable_requests_follow_the_units_rules_01_before_03_0b_and_listen_only) {
    struct mb_unit_config units[2] = {
        {.unit_id = 1, .coils = {0, 100}, .holding_registers = {0, 100}},
        {.unit_id = 2, .input_registers = {0, 100}},
    };
    struct mb_model_config config;
    mb_model_default_config(&config);
    config.any_unit = 0;
    config.units = units;
    config.unit_count = 2;
    struct mb_model *model = NULL;
    char error_text[256] = "";
    CHECK_EQ(mb_model_create(&config, &model, error_text, sizeof error_text), 0);
    /* unit 2 has no coils: 01, even though quantity 0 alone would be 03 */
    CHECK_EQ(ask_undecodable(model, 2, 1, BYTES(0x01, 0x00, 0x00, 0x00, 0x00)), 2);
    CHECK_BYTES(answer, 2, 0x81, 0x01);
    CHECK_EQ(ask_undecodable(model, 2, 1, BYTES(0x03, 0x00, 0x00, 0x00, 0xC8)), 2);
    CHECK_BYTES(answer, 2, 0x83, 0x01);
    /* unit 1 has holding registers: 03 */
    CHECK_EQ(ask_undecodable(model, 1, 1, BYTES(0x03, 0x00, 0x00, 0x00, 0xC8)), 2);
    CHECK_BYTES(answer, 2, 0x83, 0x03);
    /* a reserved function code: 01 */
    CHECK_EQ(ask_undecodable(model, 1, 1, BYTES(0x09, 0x00)), 2);
    CHECK_BYTES(answer, 2, 0x89, 0x01);
    /* a unit the model does not have: 0B */
    CHECK_EQ(ask_undecodable(model, 9, 1, BYTES(0x03, 0x00, 0x00, 0x00, 0x00)), 2);
    CHECK_BYTES(answer, 2, 0x83, 0x0B);
    /* listen-only: nothing at all */
    CHECK_EQ(ask_on(model, 7, BYTES(0x08, 0x00, 0x04, 0x00, 0x00)), 0);
    CHECK_EQ(ask_undecodable(model, 1, 7, BYTES(0x03, 0x00, 0x00, 0x00, 0x00)), 0);
    CHECK_EQ(ask_undecodable(model, 1, 7, BYTES(0x08, 0x00, 0x99, 0x00, 0x00)), 0);
    mb_model_destroy(model);
}

TEST(restart_communications_outside_listen_only_is_echoed_and_ff00_clears_the_log) {
    struct mb_model *model = test_model();
    ASK(model, 1, 0x03, 0x00, 0x00, 0x00, 0x01);
    int n = ASK(model, 1, 0x08, 0x00, 0x01, 0xFF, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x01, 0xFF, 0x00);
    n = ASK(model, 1, 0x0C);
    CHECK_BYTES(answer, n, 0x0C, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x01, 0x80, 0x00);
    /* The counters restart too. */
    n = ASK(model, 1, 0x08, 0x00, 0x0E, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x08, 0x00, 0x0E, 0x00, 0x02);
    mb_model_destroy(model);
}

/* ---- units ---- */

TEST(an_unknown_unit_gets_0b) {
    struct mb_model *model = test_model();
    int n = ASK(model, 9, 0x03, 0x00, 0x00, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x83, 0x0B);
    n = ASK(model, 0, 0x2B, 0x0E, 0x01, 0x00);
    CHECK_BYTES(answer, n, 0xAB, 0x0B);
    n = ASK(model, 255, 0x08, 0x00, 0x00, 0x12, 0x34);
    CHECK_BYTES(answer, n, 0x88, 0x0B);
    mb_model_destroy(model);
}

TEST(any_unit_answers_every_unit_id_from_one_set_of_tables) {
    struct mb_model_config config;
    mb_model_default_config(&config);
    struct mb_model *model = create(&config);
    int n = ASK(model, 0, 0x06, 0xFF, 0xFF, 0xBE, 0xEF);
    CHECK_BYTES(answer, n, 0x06, 0xFF, 0xFF, 0xBE, 0xEF);
    n = ASK(model, 255, 0x03, 0xFF, 0xFF, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x03, 0x02, 0xBE, 0xEF);
    n = ASK(model, 17, 0x03, 0xFF, 0xFF, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x03, 0x02, 0xBE, 0xEF);
    CHECK_EQ(get_one(model, 42, MB_TABLE_HOLDING_REGISTERS, 65535), 0xBEEF);
    /* The default simulator has two files of 10000 records (all zero) and no FIFOs. */
    n = ASK(model, 1, 0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x14, 0x04, 0x03, 0x06, 0x00, 0x00);
    n = ASK(model, 1, 0x14, 0x07, 0x06, 0x00, 0x02, 0x27, 0x0F, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x14, 0x04, 0x03, 0x06, 0x00, 0x00);
    n = ASK(model, 1, 0x14, 0x07, 0x06, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x94, 0x02);
    n = ASK(model, 1, 0x18, 0x00, 0x00);
    CHECK_BYTES(answer, n, 0x98, 0x02);
    mb_model_destroy(model);
}

TEST(default_simulator_reads_2000_coils_and_125_registers_at_the_top) {
    struct mb_model_config config;
    mb_model_default_config(&config);
    struct mb_model *model = create(&config);
    const uint16_t on = 1;
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_COILS, 65535, 1, &on), 0);
    int n = ASK(model, 1, 0x01, 0xF8, 0x30, 0x07, 0xD0); /* 63536..65535 */
    CHECK_EQ(n, 2 + 250);
    CHECK_BYTES(answer + 250, 2, 0x00, 0x80);
    n = ASK(model, 1, 0x04, 0xFF, 0x83, 0x00, 0x7D); /* 65411..65535 */
    CHECK_EQ(n, 2 + 250);
    mb_model_destroy(model);
}

/* ThreadSanitizer's shadow memory counts as the program's own: skip the bound under it. */
#if defined(__SANITIZE_THREAD__)
#define UNDER_THREAD_SANITIZER 1
#elif defined(__has_feature)
#if __has_feature(thread_sanitizer)
#define UNDER_THREAD_SANITIZER 1
#endif
#endif
#ifndef UNDER_THREAD_SANITIZER
#define UNDER_THREAD_SANITIZER 0
#endif

/* Anonymous and shared-memory resident pages in KiB, from /proc/self/status (code pages,
 * which the first calls fault in, are left out). */
static long resident_kib(void) {
    FILE *status = fopen("/proc/self/status", "r");
    char line[256];
    long kib = 0, value;
    int found = 0;
    while (status != NULL && fgets(line, sizeof line, status) != NULL) {
        if (sscanf(line, "RssAnon: %ld kB", &value) == 1 ||
            sscanf(line, "RssShmem: %ld kB", &value) == 1) {
            kib += value;
            found++;
        }
    }
    if (status != NULL)
        fclose(status);
    return found == 2 ? kib : -1;
}

TEST(default_simulator_costs_a_few_hundred_kib_at_most) {
    struct mb_model_config config;
    mb_model_default_config(&config);
    static uint16_t values[65535];
    for (size_t i = 0; i < 65535; i++)
        values[i] = (uint16_t)(i | 1);
    long before = resident_kib();
    struct mb_model *model = create(&config);
    long created = resident_kib();
    /* Write the whole of every table, the worst case. */
    for (int table = 0; table < 4; table++)
        CHECK_EQ(mb_model_set(model, 0, (enum mb_table)table, 0, 65535, values), 0);
    long written = resident_kib();
    CHECK(before > 0 && created > 0 && written > 0);
    /* Untouched tables cost nothing; written, 2 x 128 KiB of registers + 2 x 8 KiB of bits. */
    if (!UNDER_THREAD_SANITIZER) {
        CHECK(created - before < 64);
        CHECK(written - before < 400);
    }
    mb_model_destroy(model);
}

/* ---- requests built by hand, and the handler's arguments ---- */

TEST(hand_built_requests_over_the_limits_get_03_never_an_overflow) {
    struct mb_model *model = test_model();
    struct mb_request request;
    memset(&request, 0, sizeof request);
    request.function = MB_FC_READ_HOLDING_REGISTERS;
    request.read.address = 0;
    request.read.quantity = 126; /* inside the table, over the limit of one response */
    int n = ask_struct(model, 1, &request);
    CHECK_BYTES(answer, n, 0x83, 0x03);
    request.function = MB_FC_READ_COILS;
    request.read.quantity = 0;
    n = ask_struct(model, 1, &request);
    CHECK_BYTES(answer, n, 0x81, 0x03);
    memset(&request, 0, sizeof request);
    request.function = MB_FC_WRITE_MULTIPLE_REGISTERS;
    request.write_multiple.quantity = 2;
    n = ask_struct(model, 1, &request); /* values NULL */
    CHECK_BYTES(answer, n, 0x90, 0x03);
    memset(&request, 0, sizeof request);
    request.function = MB_FC_DIAGNOSTICS;
    request.diagnostics.sub_function = 0x13;
    request.diagnostics.data = (const uint8_t *)"\0";
    request.diagnostics.data_length = 2;
    n = ask_struct(model, 1, &request);
    CHECK_BYTES(answer, n, 0x88, 0x01);
    /* 03 comes before 02 for a hand-built request too. */
    memset(&request, 0, sizeof request);
    request.function = MB_FC_READ_WRITE_MULTIPLE_REGISTERS;
    request.read_write.read_address = 500;
    request.read_write.read_quantity = 0;
    request.read_write.write_address = 0;
    request.read_write.write_quantity = 1;
    request.read_write.values = (const uint8_t *)"\0";
    n = ask_struct(model, 1, &request);
    CHECK_BYTES(answer, n, 0x97, 0x03);
    request.function = 0x41; /* user-defined: not served */
    n = ask_struct(model, 1, &request);
    CHECK_BYTES(answer, n, 0xC1, 0x01);
    mb_model_destroy(model);
}

TEST(handler_refuses_null_arguments) {
    struct mb_model *model = test_model();
    struct mb_request request = {.function = MB_FC_READ_EXCEPTION_STATUS};
    struct mb_server_request server_request = {.unit_id = 1, .request = &request};
    CHECK_EQ(mb_model_handle(NULL, &server_request, answer), MB_EINVAL);
    CHECK_EQ(mb_model_handle(model, NULL, answer), MB_EINVAL);
    CHECK_EQ(mb_model_handle(model, &server_request, NULL), MB_EINVAL);
    server_request.request = NULL;
    CHECK_EQ(mb_model_handle(model, &server_request, answer), MB_EINVAL);
    mb_model_destroy(model);
    mb_model_destroy(NULL);
    CHECK_EQ(mb_model_sync(NULL), MB_EINVAL);
}

/* ---- the application's access ---- */

TEST(get_and_set_refuse_unknown_units_tables_and_ranges) {
    struct mb_model *model = test_model();
    uint16_t values[4] = {0};
    CHECK_EQ(mb_model_get(model, 3, MB_TABLE_COILS, 0, 1, values), MB_EINVAL);
    CHECK_EQ(mb_model_get(model, 1, (enum mb_table)4, 0, 1, values), MB_EINVAL);
    CHECK_EQ(mb_model_get(model, 1, MB_TABLE_HOLDING_REGISTERS, 98, 3, values), MB_EINVAL);
    CHECK_EQ(mb_model_set(model, 2, MB_TABLE_HOLDING_REGISTERS, 999, 1, values), MB_EINVAL);
    CHECK_EQ(mb_model_set(model, 2, MB_TABLE_DISCRETE_INPUTS, 0, 1, values), MB_EINVAL);
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_HOLDING_REGISTERS, 0, 1, NULL), MB_EINVAL);
    CHECK_EQ(mb_model_get(model, 1, MB_TABLE_HOLDING_REGISTERS, 96, 4, values), 0);
    /* Bits: any non-zero value sets the bit; reads give 0 or 1. */
    const uint16_t bits[] = {0, 7, 0xFFFF};
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_COILS, 0, 3, bits), 0);
    CHECK_EQ(mb_model_get(model, 1, MB_TABLE_COILS, 0, 3, values), 0);
    CHECK(values[0] == 0 && values[1] == 1 && values[2] == 1);
    mb_model_destroy(model);
}

/* ---- configuration checks ---- */

static void expect_config_error(struct mb_model_config *config, const char *words) {
    struct mb_model *model = (struct mb_model *)&model; /* must be reset to NULL */
    char error[256] = "";
    CHECK_EQ(mb_model_create(config, &model, error, sizeof error), MB_ECONFIG);
    CHECK(model == NULL);
    if (strstr(error, words) == NULL)
        harness_fail(__FILE__, __LINE__, "error \"%s\" does not say \"%s\"", error, words);
}

TEST(configuration_errors_are_refused_with_a_sentence) {
    struct mb_model_config config = test_config();
    struct mb_unit_config units[2];
    memcpy(units, test_units, sizeof units);
    config.units = units;

    units[1].unit_id = 1;
    expect_config_error(&config, "unit 1 is configured twice");
    units[1].unit_id = 2;

    struct mb_fifo_config fifos[2] = {{98, 2}, {10, 3}};
    units[0].fifos = fifos;
    units[0].fifo_count = 1;
    expect_config_error(&config, "outside the holding registers");
    fifos[0] = (struct mb_fifo_config){10, 32};
    expect_config_error(&config, "capacity 32");
    fifos[0] = (struct mb_fifo_config){10, 0};
    expect_config_error(&config, "capacity 0");
    fifos[0] = (struct mb_fifo_config){7, 3}; /* 7..10 and 10..13 share 10 */
    units[0].fifo_count = 2;
    expect_config_error(&config, "overlap");
    fifos[0] = (struct mb_fifo_config){6, 3}; /* 6..9 and 10..13 do not */
    struct mb_model *model = create(&config);
    mb_model_destroy(model);
    units[0].fifos = test_fifos;

    units[0].records_per_file = 10001;
    expect_config_error(&config, "10001 records per file");
    units[0].records_per_file = 0;
    expect_config_error(&config, "2 files of 0 records");
    units[0].records_per_file = 100;

    units[1].holding_registers = (struct mb_table_extent){65530, 7};
    expect_config_error(&config, "unit 2: holding registers start at 65530 with size 7");
    units[1].holding_registers = (struct mb_table_extent){65530, 6};
    model = create(&config);
    mb_model_destroy(model);

    config.any_unit = 1;
    expect_config_error(&config, "any_unit");
    config.any_unit = 0;

    config.unit_count = 0;
    expect_config_error(&config, "no units");
    config.unit_count = 2;

    char long_name[300];
    memset(long_name, 'x', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    config.identity.product_name = long_name;
    expect_config_error(&config, "identity product_name is 299 bytes");
    config.identity.product_name = NULL;
    config.identity.conformity_level = 0x04;
    expect_config_error(&config, "conformity level 0x04");
    config.identity.conformity_level = 0x83;
    config.identity.server_id = (const uint8_t *)long_name;
    config.identity.server_id_length = 251;
    expect_config_error(&config, "server id is 251 bytes");
    config.identity.server_id_length = 250;
    model = create(&config);
    CHECK_EQ(ASK(model, 1, 0x11), 253);
    mb_model_destroy(model);
    config.identity.server_id = NULL;
    config.identity.server_id_length = 0;

    config.persist_path = "";
    expect_config_error(&config, "persistence path is empty");

    char error[8];
    CHECK_EQ(mb_model_create(NULL, &model, error, sizeof error), MB_EINVAL);
    CHECK_EQ(mb_model_create(&config, NULL, NULL, 0), MB_EINVAL);
}

/* ---- sharing ---- */

struct worker_args {
    struct mb_model *model;
    int writer;
    int torn; /* reads that saw two different halves */
};

static void *worker(void *data) {
    struct worker_args *args = data;
    for (int i = 0; i < 3000; i++) {
        if (args->writer) {
            uint8_t value = (uint8_t)i;
            uint8_t pdu[] = {0x10, 0x00, 0x0A, 0x00, 0x02, 0x04, value, value, value, value};
            struct mb_request request;
            mb_request_decode(pdu, sizeof pdu, &request);
            struct mb_server_request server_request = {.unit_id = 1, .request = &request};
            uint8_t response[MB_PDU_MAX];
            mb_model_handle(args->model, &server_request, response);
        } else {
            uint16_t values[2];
            mb_model_get(args->model, 1, MB_TABLE_HOLDING_REGISTERS, 10, 2, values);
            if (values[0] != values[1])
                args->torn++;
        }
    }
    return NULL;
}

TEST(threads_sharing_a_model_never_see_half_a_write) {
    struct mb_model *model = test_model();
    pthread_t threads[4];
    struct worker_args args[4];
    for (int i = 0; i < 4; i++) {
        args[i] = (struct worker_args){model, i % 2, 0};
        CHECK_EQ(pthread_create(&threads[i], NULL, worker, &args[i]), 0);
    }
    for (int i = 0; i < 4; i++) {
        pthread_join(threads[i], NULL);
        CHECK_EQ(args[i].torn, 0);
    }
    mb_model_destroy(model);
}

TEST(worker_processes_forked_after_create_share_the_tables) {
    struct mb_model *model = test_model();
    pid_t child = fork();
    if (child == 0) {
        int n = ASK(model, 1, 0x06, 0x00, 0x07, 0xCA, 0xFE);
        ASK(model, 1, 0x08, 0x00, 0x04, 0x00, 0x00); /* listen-only, seen by the parent too */
        _exit(n == 5 ? 0 : 1);
    }
    int status = 0;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(get_one(model, 1, MB_TABLE_HOLDING_REGISTERS, 7), 0xCAFE);
    CHECK_EQ(ASK(model, 1, 0x03, 0x00, 0x07, 0x00, 0x01), 0);
    mb_model_destroy(model);
}

int main(void) {
    RUN(fc01_reads_coils_packed_lsb_first_with_zero_padding);
    RUN(fc02_reads_discrete_inputs);
    RUN(fc03_and_fc04_read_registers_big_endian);
    RUN(with_100_registers_a_read_of_4_at_96_succeeds_and_5_at_96_gets_02);
    RUN(tables_starting_above_0_answer_only_their_own_addresses);
    RUN(a_table_of_size_0_gets_01);
    RUN(fc05_writes_a_coil_and_echoes);
    RUN(fc06_writes_a_register_and_echoes);
    RUN(fc15_writes_coils_from_packed_bits);
    RUN(fc16_writes_registers);
    RUN(fc22_mask_write_of_0x12_with_and_f2_or_25_gives_0x17);
    RUN(fc23_writes_before_it_reads);
    RUN(fc24_returns_the_count_then_the_queue_and_does_not_drain_it);
    RUN(fc24_full_fifo_refuses_pushes_and_31_values_fit_one_response);
    RUN(fc24_address_that_is_no_fifo_gets_02_and_a_count_over_its_capacity_03);
    RUN(fc21_then_fc20_round_trip_file_records);
    RUN(fc20_fc21_out_of_range_files_and_records_get_02);
    RUN(fc43_14_default_identity_streams_vendor_product_code_and_library_version);
    RUN(fc43_14_configured_identity_streams_every_object_in_order);
    RUN(fc17_reports_the_server_id_and_run_indicator);
    RUN(fc07_returns_exception_status_0);
    RUN(fc08_00_echoes_the_query_data_and_03_changes_the_ascii_delimiter);
    RUN(fc08_counters_count_messages_exceptions_and_silence_honestly);
    RUN(fc11_counts_successful_completions_but_not_itself_nor_exceptions);
    RUN(fc12_returns_status_counts_and_events_most_recent_first);
    RUN(listen_only_answers_nothing_until_restart_communications);
    RUN(listen_only_silences_only_the_connection_that_asked_for_it);
    RUN(undecodable_requests_follow_the_units_rules_01_before_03_0b_and_listen_only);
    RUN(restart_communications_outside_listen_only_is_echoed_and_ff00_clears_the_log);
    RUN(an_unknown_unit_gets_0b);
    RUN(any_unit_answers_every_unit_id_from_one_set_of_tables);
    RUN(default_simulator_reads_2000_coils_and_125_registers_at_the_top);
    RUN(default_simulator_costs_a_few_hundred_kib_at_most);
    RUN(hand_built_requests_over_the_limits_get_03_never_an_overflow);
    RUN(handler_refuses_null_arguments);
    RUN(get_and_set_refuse_unknown_units_tables_and_ranges);
    RUN(configuration_errors_are_refused_with_a_sentence);
    RUN(threads_sharing_a_model_never_see_half_a_write);
    RUN(worker_processes_forked_after_create_share_the_tables);
    return harness_result();
}
