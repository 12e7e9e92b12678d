/* SPDX-License-Identifier: MIT */
/*
 * Every vector of tests/vectors.c (also the fuzz seed corpora) round-trips, survives every
 * truncation at the end of a guarded page, and every error code has a name and a message.
 */
#include <string.h>

#include "harness.h"
#include "mbsec/mbsec.h"
#include "vectors.h"

static void pdu_round_trip(const struct vector *v) {
    uint8_t out[MB_PDU_MAX];
    int length;
    if (v->kind == VECTOR_REQUEST_PDU) {
        struct mb_request request;
        int rc = mb_request_decode(guard_copy(v->bytes, v->length), v->length, &request);
        if (rc != 0) {
            harness_fail(__FILE__, __LINE__, "%s: decode gave %s", v->name, mb_error_name(rc));
            return;
        }
        length = mb_request_encode(&request, out, sizeof out);
    } else {
        struct mb_response response;
        int rc = mb_response_decode(guard_copy(v->bytes, v->length), v->length, &response);
        if (rc != 0) {
            harness_fail(__FILE__, __LINE__, "%s: decode gave %s", v->name, mb_error_name(rc));
            return;
        }
        length = mb_response_encode(&response, out, sizeof out);
    }
    if (length < 0) {
        harness_fail(__FILE__, __LINE__, "%s: encode gave %s", v->name, mb_error_name(length));
        return;
    }
    harness_bytes_equal(__FILE__, __LINE__, out, (size_t)length, v->bytes, v->length);
}

static void truncations_never_over_read(const struct vector *v) {
    for (size_t length = 0; length < v->length; length++) {
        const uint8_t *at = guard_copy(v->bytes, length);
        struct mb_request request;
        struct mb_response response;
        struct mb_mbap_decoder decoder;
        struct mb_adu adu;
        size_t consumed;
        uint8_t address;
        const uint8_t *pdu;
        size_t pdu_length;
        uint8_t binary[MB_ASCII_FRAME_MAX];
        switch (v->kind) {
        case VECTOR_REQUEST_PDU:
            (void)mb_request_decode(at, length, &request);
            break;
        case VECTOR_RESPONSE_PDU:
            (void)mb_response_decode(at, length, &response);
            break;
        case VECTOR_MBAP_STREAM:
            mb_mbap_decoder_init(&decoder);
            for (size_t offset = 0; offset < length; offset += consumed)
                if (mb_mbap_decoder_feed(&decoder, at + offset, length - offset, &consumed, &adu) <
                    0)
                    break;
            break;
        case VECTOR_RTU_FRAME:
            CHECK(mb_rtu_decode(at, length, &address, &pdu, &pdu_length) < 0);
            break;
        case VECTOR_ASCII_FRAME:
            CHECK(mb_ascii_decode((const char *)at, length, binary, sizeof binary, &address, &pdu,
                                  &pdu_length) < 0);
            break;
        }
    }
}

TEST(every_pdu_vector_round_trips_exactly) {
    int seen = 0;
    for (size_t i = 0; i < vector_count; i++)
        if (vectors[i].kind == VECTOR_REQUEST_PDU || vectors[i].kind == VECTOR_RESPONSE_PDU) {
            pdu_round_trip(&vectors[i]);
            seen++;
        }
    CHECK(seen > 40);
}

TEST(every_public_function_code_has_a_request_and_a_response_vector) {
    const uint8_t functions[] = {1,  2,  3,  4,  5,  6,  7,  8,  11, 12,
                                 15, 16, 17, 20, 21, 22, 23, 24, 43};
    int missing = 0;
    for (size_t f = 0; f < sizeof functions; f++) {
        int requests = 0, responses = 0;
        for (size_t i = 0; i < vector_count; i++) {
            if (vectors[i].bytes[0] != functions[f])
                continue;
            requests += vectors[i].kind == VECTOR_REQUEST_PDU;
            responses += vectors[i].kind == VECTOR_RESPONSE_PDU;
        }
        if (requests == 0 || responses == 0) {
            fprintf(stderr, "  FC %u: %d request and %d response vectors\n", functions[f], requests,
                    responses);
            missing++;
        }
    }
    CHECK_EQ(missing, 0);
}

TEST(every_mbap_vector_yields_frames_that_decode) {
    for (size_t i = 0; i < vector_count; i++) {
        const struct vector *v = &vectors[i];
        if (v->kind != VECTOR_MBAP_STREAM)
            continue;
        struct mb_mbap_decoder decoder;
        mb_mbap_decoder_init(&decoder);
        size_t offset = 0, consumed;
        struct mb_adu adu;
        int frames = 0;
        while (offset < v->length) {
            int rc = mb_mbap_decoder_feed(&decoder, v->bytes + offset, v->length - offset,
                                          &consumed, &adu);
            offset += consumed;
            CHECK(rc >= 0);
            if (rc <= 0)
                break;
            frames++;
            struct mb_request request;
            struct mb_response response;
            CHECK(mb_request_decode(adu.pdu, adu.pdu_length, &request) == 0 ||
                  mb_response_decode(adu.pdu, adu.pdu_length, &response) == 0);
        }
        CHECK(frames >= 1);
        CHECK_EQ(mb_mbap_decoder_pending(&decoder), 0);
    }
}

TEST(every_serial_vector_decodes_and_re_encodes) {
    for (size_t i = 0; i < vector_count; i++) {
        const struct vector *v = &vectors[i];
        uint8_t address;
        const uint8_t *pdu;
        size_t pdu_length;
        if (v->kind == VECTOR_RTU_FRAME) {
            CHECK_EQ(mb_rtu_decode(v->bytes, v->length, &address, &pdu, &pdu_length), 0);
            uint8_t frame[MB_RTU_FRAME_MAX];
            int length = mb_rtu_encode(address, pdu, pdu_length, frame, sizeof frame);
            CHECK(length > 0);
            harness_bytes_equal(__FILE__, __LINE__, frame, (size_t)length, v->bytes, v->length);
        } else if (v->kind == VECTOR_ASCII_FRAME) {
            uint8_t binary[MB_ASCII_FRAME_MAX];
            CHECK_EQ(mb_ascii_decode((const char *)v->bytes, v->length, binary, sizeof binary,
                                     &address, &pdu, &pdu_length),
                     0);
            char frame[MB_ASCII_FRAME_MAX];
            int length = mb_ascii_encode(address, pdu, pdu_length, frame, sizeof frame);
            CHECK(length > 0);
            harness_bytes_equal(__FILE__, __LINE__, (const uint8_t *)frame, (size_t)length,
                                v->bytes, v->length);
        }
    }
}

TEST(truncated_vectors_are_handled_at_the_end_of_a_page) {
    for (size_t i = 0; i < vector_count; i++)
        truncations_never_over_read(&vectors[i]);
}

TEST(vector_names_are_unique) {
    int duplicates = 0;
    for (size_t i = 0; i < vector_count; i++)
        for (size_t j = i + 1; j < vector_count; j++)
            if (strcmp(vectors[i].name, vectors[j].name) == 0) {
                fprintf(stderr, "  duplicate vector name %s\n", vectors[i].name);
                duplicates++;
            }
    CHECK_EQ(duplicates, 0);
}

TEST(every_error_code_has_a_name_and_a_message) {
#define CHECK_ERROR_(name, value, message)            \
    CHECK_STR(mb_error_name(MB_##name), "MB_" #name); \
    CHECK_STR(mb_strerror(MB_##name), message);       \
    CHECK(MB_##name < 0);
    MB_ERROR_MAP(CHECK_ERROR_)
#undef CHECK_ERROR_
    CHECK_STR(mb_error_name(-9999), "MB_E?");
    CHECK_STR(mb_strerror(-9999), "unknown error");
    CHECK_STR(mb_strerror(0), "success");
    CHECK_STR(mb_version(), MB_VERSION_STRING);
}

TEST(error_codes_are_distinct) {
    static const int codes[] = {
#define LIST_ERROR_(name, value, message) MB_##name,
        MB_ERROR_MAP(LIST_ERROR_)
#undef LIST_ERROR_
    };
    for (size_t i = 0; i < sizeof codes / sizeof codes[0]; i++)
        for (size_t j = i + 1; j < sizeof codes / sizeof codes[0]; j++)
            CHECK(codes[i] != codes[j]);
}

TEST(decoding_errors_map_to_the_exception_a_server_sends) {
    CHECK_EQ(mb_error_exception(MB_EFUNCTION), 1);
    CHECK_EQ(mb_error_exception(MB_ESUBFUNCTION), 1);
    CHECK_EQ(mb_error_exception(MB_EMEI), 1);
    CHECK_EQ(mb_error_exception(MB_ETRUNCATED), 3);
    CHECK_EQ(mb_error_exception(MB_ELENGTH), 3);
    CHECK_EQ(mb_error_exception(MB_EQUANTITY), 3);
    CHECK_EQ(mb_error_exception(MB_EBYTECOUNT), 3);
    CHECK_EQ(mb_error_exception(MB_EVALUE), 3);
    CHECK_EQ(mb_error_exception(MB_EINVAL), 0);
    CHECK_EQ(mb_error_exception(MB_ECRC), 0);
    CHECK_EQ(mb_error_exception(0), 0);
}

int main(void) {
    RUN(every_pdu_vector_round_trips_exactly);
    RUN(every_public_function_code_has_a_request_and_a_response_vector);
    RUN(every_mbap_vector_yields_frames_that_decode);
    RUN(every_serial_vector_decodes_and_re_encodes);
    RUN(truncated_vectors_are_handled_at_the_end_of_a_page);
    RUN(vector_names_are_unique);
    RUN(every_error_code_has_a_name_and_a_message);
    RUN(error_codes_are_distinct);
    RUN(decoding_errors_map_to_the_exception_a_server_sends);
    return harness_result();
}
