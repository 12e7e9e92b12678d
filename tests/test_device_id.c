/* SPDX-License-Identifier: MIT */
/* FC 43/14: which objects a server sends for each read code, and how a long list is split. */
#include <string.h>

#include "harness.h"
#include "mbsec/pdu.h"

#define OBJECT(id_, text) \
    { (id_), (uint8_t)(sizeof text - 1), (const uint8_t *)text }

static const struct mb_device_object device[] = {
    OBJECT(0x00, "mbsec"),
    OBJECT(0x01, "MBS-1"),
    OBJECT(0x02, "0.1.0"),
    OBJECT(0x03, "https://example.invalid/mbsec"),
    OBJECT(0x04, "mbsec simulator"),
    OBJECT(0x05, "sim"),
    OBJECT(0x06, "serve"),
    OBJECT(0x80, "private-a"),
    OBJECT(0x81, "abc"),
};
#define DEVICE_COUNT (sizeof device / sizeof device[0])

static struct mb_request ask(uint8_t read_code, uint8_t object_id) {
    struct mb_request request = {.function = MB_FC_ENCAPSULATED_INTERFACE};
    request.device_id.mei_type = MB_MEI_DEVICE_ID;
    request.device_id.read_code = read_code;
    request.device_id.object_id = object_id;
    return request;
}

/* Builds the response, decodes it, and checks that it matches the request. */
static int respond(uint8_t read_code, uint8_t object_id, uint8_t conformity,
                   struct mb_response *response, uint8_t *pdu) {
    struct mb_request request = ask(read_code, object_id);
    int length = mb_device_id_respond(&request, conformity, device, DEVICE_COUNT, pdu, MB_PDU_MAX);
    if (length == 2) { /* an exception response: hand back its code */
        CHECK_EQ(pdu[0], 0xAB);
        return pdu[1];
    }
    if (length < 7)
        return length;
    CHECK_EQ(mb_response_decode(pdu, (size_t)length, response), 0);
    CHECK_EQ(mb_response_matches(&request, response), 0);
    return length;
}

/* The ids of the objects in a response, as a string of hex pairs for easy comparison. */
static const char *ids_of(const struct mb_response *response) {
    static char text[3 * 256];
    size_t offset = 0, used = 0;
    struct mb_device_object object;
    text[0] = '\0';
    while (mb_device_objects_next(response, &offset, &object) == 1) {
        static const char hex[] = "0123456789ABCDEF";
        text[used++] = hex[object.id >> 4];
        text[used++] = hex[object.id & 15];
        text[used++] = ' ';
    }
    text[used ? used - 1 : 0] = '\0';
    return text;
}

TEST(read_code_1_streams_the_three_basic_objects) {
    struct mb_response r;
    uint8_t pdu[MB_PDU_MAX];
    CHECK(respond(MB_DEVICE_ID_BASIC, 0, 0x83, &r, pdu) > 0);
    CHECK_EQ(r.device_id.read_code, 1);
    CHECK_EQ(r.device_id.conformity_level, 0x83);
    CHECK_EQ(r.device_id.more_follows, 0);
    CHECK_EQ(r.device_id.next_object_id, 0);
    CHECK_EQ(r.device_id.object_count, 3);
    CHECK_STR(ids_of(&r), "00 01 02");
    CHECK_BYTES(pdu, 14, 0x2B, 0x0E, 0x01, 0x83, 0x00, 0x00, 0x03, 0x00, 0x05, 'm', 'b', 's', 'e',
                'c');
}

TEST(read_code_2_streams_basic_and_regular_objects) {
    struct mb_response r;
    uint8_t pdu[MB_PDU_MAX];
    CHECK(respond(MB_DEVICE_ID_REGULAR, 0, 0x83, &r, pdu) > 0);
    CHECK_STR(ids_of(&r), "00 01 02 03 04 05 06");
}

TEST(read_code_3_streams_everything_including_private_objects) {
    struct mb_response r;
    uint8_t pdu[MB_PDU_MAX];
    CHECK(respond(MB_DEVICE_ID_EXTENDED, 0, 0x83, &r, pdu) > 0);
    CHECK_STR(ids_of(&r), "00 01 02 03 04 05 06 80 81");
}

TEST(a_stream_starts_at_the_object_asked_for) {
    struct mb_response r;
    uint8_t pdu[MB_PDU_MAX];
    CHECK(respond(MB_DEVICE_ID_REGULAR, 0x04, 0x83, &r, pdu) > 0);
    CHECK_STR(ids_of(&r), "04 05 06");
}

TEST(an_unknown_start_object_restarts_the_stream_at_0) {
    struct mb_response r;
    uint8_t pdu[MB_PDU_MAX];
    CHECK(respond(MB_DEVICE_ID_BASIC, 0x50, 0x83, &r, pdu) > 0);
    CHECK_STR(ids_of(&r), "00 01 02");
    /* A regular object asked for in a basic stream is outside it: restart too. */
    CHECK(respond(MB_DEVICE_ID_BASIC, 0x04, 0x83, &r, pdu) > 0);
    CHECK_STR(ids_of(&r), "00 01 02");
}

TEST(a_device_answers_above_its_conformity_level_at_its_own_level) {
    struct mb_response r;
    uint8_t pdu[MB_PDU_MAX];
    CHECK(respond(MB_DEVICE_ID_EXTENDED, 0, 0x02, &r, pdu) > 0);
    CHECK_EQ(r.device_id.read_code, 3);
    CHECK_STR(ids_of(&r), "00 01 02 03 04 05 06");
    CHECK(respond(MB_DEVICE_ID_REGULAR, 0, 0x01, &r, pdu) > 0);
    CHECK_STR(ids_of(&r), "00 01 02");
}

TEST(read_code_4_returns_the_one_object) {
    struct mb_response r;
    uint8_t pdu[MB_PDU_MAX];
    CHECK(respond(MB_DEVICE_ID_SPECIFIC, 0x81, 0x83, &r, pdu) > 0);
    CHECK_EQ(r.device_id.object_count, 1);
    CHECK_STR(ids_of(&r), "81");
    CHECK_BYTES(pdu, 12, 0x2B, 0x0E, 0x04, 0x83, 0x00, 0x00, 0x01, 0x81, 0x03, 'a', 'b', 'c');
}

TEST(read_code_4_of_an_unknown_object_gets_02) {
    struct mb_response r;
    uint8_t pdu[MB_PDU_MAX];
    CHECK_EQ(respond(MB_DEVICE_ID_SPECIFIC, 0x07, 0x83, &r, pdu), MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(respond(MB_DEVICE_ID_SPECIFIC, 0xFF, 0x83, &r, pdu), MB_EX_ILLEGAL_DATA_ADDRESS);
    /* A private object beyond a regular-level device's reach */
    CHECK_EQ(respond(MB_DEVICE_ID_SPECIFIC, 0x81, 0x82, &r, pdu), MB_EX_ILLEGAL_DATA_ADDRESS);
}

TEST(read_code_4_needs_a_conformity_level_with_individual_access) {
    struct mb_response r;
    uint8_t pdu[MB_PDU_MAX];
    CHECK_EQ(respond(MB_DEVICE_ID_SPECIFIC, 0x00, 0x03, &r, pdu), MB_EX_ILLEGAL_FUNCTION);
    CHECK(respond(MB_DEVICE_ID_SPECIFIC, 0x00, 0x81, &r, pdu) > 0);
}

TEST(a_bad_read_code_gets_03) {
    struct mb_response r;
    uint8_t pdu[MB_PDU_MAX];
    CHECK_EQ(respond(0, 0, 0x83, &r, pdu), MB_EX_ILLEGAL_DATA_VALUE);
    CHECK_EQ(respond(5, 0, 0x83, &r, pdu), MB_EX_ILLEGAL_DATA_VALUE);
}

TEST(objects_that_do_not_fit_follow_in_the_next_response_never_split) {
    /* Five objects of 100 bytes: two fit a PDU (7 + 2 * 102 = 211; a third would be 313). */
    static uint8_t text[100];
    memset(text, 'x', sizeof text);
    struct mb_device_object many[5];
    for (uint8_t i = 0; i < 5; i++)
        many[i] = (struct mb_device_object){(uint8_t)(i == 4 ? 0x80 : i), 100, text};
    struct mb_request request = ask(MB_DEVICE_ID_EXTENDED, 0);
    uint8_t pdu[MB_PDU_MAX];
    struct mb_response r;
    int sent_total = 0;
    uint8_t next = 0;
    for (int round = 0; round < 5; round++) {
        request.device_id.object_id = next;
        int length = mb_device_id_respond(&request, 0x03, many, 5, pdu, sizeof pdu);
        CHECK(length > 0 && length <= MB_PDU_MAX);
        CHECK_EQ(mb_response_decode(pdu, (size_t)length, &r), 0);
        sent_total += r.device_id.object_count;
        if (r.device_id.more_follows == 0)
            break;
        CHECK_EQ(r.device_id.more_follows, 0xFF);
        next = r.device_id.next_object_id;
    }
    CHECK_EQ(sent_total, 5);
    /* The first response: objects 0 and 1, next object 2. */
    request.device_id.object_id = 0;
    CHECK_EQ(mb_device_id_respond(&request, 0x03, many, 5, pdu, sizeof pdu), 7 + 2 * 102);
    CHECK_BYTES(pdu, 7, 0x2B, 0x0E, 0x03, 0x03, 0xFF, 0x02, 0x02);
}

TEST(a_buffer_too_small_for_the_answer_gets_enospc_not_a_shorter_answer) {
    /* Where a stream splits depends on the PDU limit only: the basic objects take 7 + 3 * 7
     * bytes, and one byte less room fails whole instead of setting more-follows. */
    struct mb_request request = ask(MB_DEVICE_ID_BASIC, 0);
    uint8_t pdu[MB_PDU_MAX];
    memset(pdu, 0xEE, sizeof pdu);
    CHECK_EQ(mb_device_id_respond(&request, 0x81, device, DEVICE_COUNT, pdu, 28), 28);
    CHECK_BYTES(pdu, 7, 0x2B, 0x0E, 0x01, 0x81, 0x00, 0x00, 0x03);
    memset(pdu, 0xEE, sizeof pdu);
    CHECK_EQ(mb_device_id_respond(&request, 0x81, device, DEVICE_COUNT, pdu, 27), MB_ENOSPC);
    CHECK_EQ(pdu[0], 0xEE);
    CHECK_EQ(mb_device_id_respond(&request, 0x81, device, DEVICE_COUNT, pdu, 6), MB_ENOSPC);
    /* An exception response needs two bytes. */
    struct mb_request unknown = ask(MB_DEVICE_ID_SPECIFIC, 0x07);
    CHECK_EQ(mb_device_id_respond(&unknown, 0x81, device, DEVICE_COUNT, pdu, 2), 2);
    CHECK_BYTES(pdu, 2, 0xAB, 0x02);
    CHECK_EQ(mb_device_id_respond(&unknown, 0x81, device, DEVICE_COUNT, pdu, 1), MB_ENOSPC);
}

TEST(bad_object_lists_are_refused) {
    struct mb_request request = ask(MB_DEVICE_ID_BASIC, 0);
    uint8_t pdu[MB_PDU_MAX];
    struct mb_device_object unsorted[] = {OBJECT(1, "b"), OBJECT(0, "a")};
    CHECK_EQ(mb_device_id_respond(&request, 0x01, unsorted, 2, pdu, sizeof pdu), MB_EINVAL);
    static uint8_t big[245];
    struct mb_device_object too_long[] = {{0, 245, big}};
    CHECK_EQ(mb_device_id_respond(&request, 0x01, too_long, 1, pdu, sizeof pdu), MB_EINVAL);
    too_long[0].length = 244;
    CHECK_EQ(mb_device_id_respond(&request, 0x01, too_long, 1, pdu, sizeof pdu), MB_PDU_MAX);
    CHECK_EQ(mb_device_id_respond(&request, 0x04, device, DEVICE_COUNT, pdu, sizeof pdu),
             MB_EINVAL);
    /* A device with no objects in the category asked for */
    CHECK_EQ(mb_device_id_respond(&request, 0x01, device + 7, 2, pdu, sizeof pdu), 2);
    CHECK_BYTES(pdu, 2, 0xAB, 0x02);
    struct mb_request not_fc43 = {.function = 3};
    CHECK_EQ(mb_device_id_respond(&not_fc43, 0x01, device, DEVICE_COUNT, pdu, sizeof pdu),
             MB_EINVAL);
}

int main(void) {
    RUN(read_code_1_streams_the_three_basic_objects);
    RUN(read_code_2_streams_basic_and_regular_objects);
    RUN(read_code_3_streams_everything_including_private_objects);
    RUN(a_stream_starts_at_the_object_asked_for);
    RUN(an_unknown_start_object_restarts_the_stream_at_0);
    RUN(a_device_answers_above_its_conformity_level_at_its_own_level);
    RUN(read_code_4_returns_the_one_object);
    RUN(read_code_4_of_an_unknown_object_gets_02);
    RUN(read_code_4_needs_a_conformity_level_with_individual_access);
    RUN(a_bad_read_code_gets_03);
    RUN(objects_that_do_not_fit_follow_in_the_next_response_never_split);
    RUN(a_buffer_too_small_for_the_answer_gets_enospc_not_a_shorter_answer);
    RUN(bad_object_lists_are_refused);
    return harness_result();
}
