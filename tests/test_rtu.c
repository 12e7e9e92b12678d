/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/pdu.h"
#include "mbsec/serial.h"
#include "vectors.h"

/* Like CHECK_EQ, but names the case and the prefix length, for table-driven tests. */
#define CHECK_CASE(got, want, name, n)                                                       \
    do {                                                                                     \
        long long got_ = (long long)(got), want_ = (long long)(want);                        \
        harness_checks++;                                                                    \
        if (got_ != want_)                                                                   \
            harness_fail(__FILE__, __LINE__, "%s, %zu bytes: %s == %lld, want %lld", (name), \
                         (size_t)(n), #got, got_, want_);                                    \
    } while (0)

/* A CRC written the slow way, bit by bit from the spec's description, to hold the library's
 * table-driven one against. */
static uint16_t reference_crc16(const uint8_t *data, size_t length) {
    uint16_t crc = 0xFFFF;
    for (size_t i = 0; i < length; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc & 1) ? (uint16_t)((crc >> 1) ^ 0xA001) : (uint16_t)(crc >> 1);
    }
    return crc;
}

/* A fixed pseudo-random sequence, so that failures reproduce. */
static uint32_t random_state = 0x2545F491u;
static uint8_t random_byte(void) {
    random_state ^= random_state << 13;
    random_state ^= random_state >> 17;
    random_state ^= random_state << 5;
    return (uint8_t)(random_state >> 24);
}

/* ---- CRC ---- */

TEST(crc16_of_123456789_is_4b37) {
    CHECK_EQ(mb_crc16((const uint8_t *)"123456789", 9), 0x4B37);
}

TEST(crc16_of_the_spec_requests_gives_84_0a_and_76_87) {
    /* The CRC goes low byte first, so the bytes 84 0A are the value 0x0A84. */
    CHECK_EQ(mb_crc16(BYTES(0x01, 0x03, 0x00, 0x00, 0x00, 0x01)), 0x0A84);
    CHECK_EQ(mb_crc16(BYTES(0x11, 0x03, 0x00, 0x6B, 0x00, 0x03)), 0x8776);
}

TEST(crc16_of_nothing_is_the_initial_value_ffff) {
    uint8_t unused = 0;
    CHECK_EQ(mb_crc16(&unused, 0), 0xFFFF);
}

TEST(crc16_agrees_with_the_bitwise_definition) {
    uint8_t data[300];
    for (int value = 0; value < 256; value++) {
        data[0] = (uint8_t)value;
        CHECK_EQ(mb_crc16(data, 1), reference_crc16(data, 1));
    }
    for (size_t length = 0; length <= sizeof data; length++) {
        for (size_t i = 0; i < length; i++)
            data[i] = random_byte();
        CHECK_EQ(mb_crc16(data, length), reference_crc16(data, length));
    }
}

TEST(crc16_over_a_frame_and_its_crc_is_0) {
    /* The residue property: a receiver may check a frame by running the CRC over all of it. */
    CHECK_EQ(mb_crc16(BYTES(0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A)), 0);
    CHECK_EQ(mb_crc16(BYTES(0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87)), 0);
}

/* ---- encoding ---- */

TEST(encode_appends_the_crc_low_byte_first) {
    uint8_t frame[MB_RTU_FRAME_MAX];
    CHECK_EQ(mb_rtu_encode(0x01, BYTES(0x03, 0x00, 0x00, 0x00, 0x01), frame, sizeof frame), 8);
    CHECK_BYTES(frame, 8, 0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A);
    CHECK_EQ(mb_rtu_encode(0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03), frame, sizeof frame), 8);
    CHECK_BYTES(frame, 8, 0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87);
}

TEST(encode_rejects_pdu_length_0_and_254_and_accepts_1_and_253) {
    uint8_t pdu[MB_PDU_MAX + 1];
    uint8_t frame[MB_RTU_FRAME_MAX + 8];
    memset(pdu, 0x5A, sizeof pdu);
    pdu[0] = MB_FC_READ_EXCEPTION_STATUS;
    CHECK_EQ(mb_rtu_encode(1, pdu, 0, frame, sizeof frame), MB_EINVAL);
    CHECK_EQ(mb_rtu_encode(1, pdu, 1, frame, sizeof frame), 4);
    CHECK_BYTES(frame, 2, 0x01, 0x07);
    CHECK_EQ(mb_crc16(frame, 4), 0);
    CHECK_EQ(mb_rtu_encode(1, pdu, 253, frame, sizeof frame), 256);
    CHECK_EQ(mb_crc16(frame, 256), 0);
    CHECK_EQ(mb_rtu_encode(1, pdu, 254, frame, sizeof frame), MB_EINVAL);
}

TEST(encode_rejects_null_buffers) {
    uint8_t frame[16];
    CHECK_EQ(mb_rtu_encode(1, NULL, 1, frame, sizeof frame), MB_EINVAL);
    CHECK_EQ(mb_rtu_encode(1, BYTES(0x07), NULL, 16), MB_EINVAL);
}

TEST(encode_needs_room_for_the_whole_frame_and_writes_nothing_without_it) {
    static const uint8_t pdu[] = {0x03, 0x00, 0x6B, 0x00, 0x03};
    uint8_t frame[MB_RTU_FRAME_MAX];
    memset(frame, 0xEE, sizeof frame);
    CHECK_EQ(mb_rtu_encode(0x11, pdu, sizeof pdu, frame, 7), MB_ENOSPC);
    CHECK_EQ(mb_rtu_encode(0x11, pdu, sizeof pdu, frame, 0), MB_ENOSPC);
    for (size_t i = 0; i < sizeof frame; i++)
        CHECK_EQ(frame[i], 0xEE);
    CHECK_EQ(mb_rtu_encode(0x11, pdu, sizeof pdu, frame, 8), 8);
    CHECK_BYTES(frame, 9, 0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87, 0xEE);

    uint8_t pdu_max[MB_PDU_MAX];
    memset(pdu_max, 0x10, sizeof pdu_max);
    CHECK_EQ(mb_rtu_encode(0x11, pdu_max, sizeof pdu_max, frame, 255), MB_ENOSPC);
    CHECK_EQ(mb_rtu_encode(0x11, pdu_max, sizeof pdu_max, frame, 256), 256);
}

TEST(encode_accepts_a_pdu_built_in_place_after_the_address) {
    uint8_t frame[16] = {0x00, 0x03, 0x00, 0x6B, 0x00, 0x03};
    CHECK_EQ(mb_rtu_encode(0x11, frame + 1, 5, frame, sizeof frame), 8);
    CHECK_BYTES(frame, 8, 0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87);
}

TEST(encode_writes_any_address_as_given) {
    static const uint8_t addresses[] = {0, 1, 247, 248, 255};
    uint8_t frame[8];
    for (size_t i = 0; i < sizeof addresses; i++) {
        CHECK_EQ(
            mb_rtu_encode(addresses[i], BYTES(0x06, 0x00, 0x01, 0x00, 0x03), frame, sizeof frame),
            8);
        CHECK_EQ(frame[0], addresses[i]);
        CHECK_EQ(mb_crc16(frame, 8), 0);
    }
}

/* ---- decoding ---- */

TEST(decode_gives_the_address_and_a_view_of_the_pdu) {
    static const uint8_t frame[] = {0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87};
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    CHECK_EQ(mb_rtu_decode(frame, sizeof frame, &address, &pdu, &pdu_length), 0);
    CHECK_EQ(address, 0x11);
    CHECK(pdu == frame + 1);
    CHECK_BYTES(pdu, pdu_length, 0x03, 0x00, 0x6B, 0x00, 0x03);

    static const uint8_t other[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A};
    CHECK_EQ(mb_rtu_decode(other, sizeof other, &address, &pdu, &pdu_length), 0);
    CHECK_EQ(address, 0x01);
    CHECK_BYTES(pdu, pdu_length, 0x03, 0x00, 0x00, 0x00, 0x01);
}

TEST(decode_rejects_3_and_257_bytes_and_accepts_4_and_256) {
    uint8_t frame[MB_RTU_FRAME_MAX + 1];
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    uint16_t crc;

    /* Three bytes whose last two are the CRC of the first: too short all the same. */
    frame[0] = 0x11;
    crc = mb_crc16(frame, 1);
    frame[1] = (uint8_t)crc;
    frame[2] = (uint8_t)(crc >> 8);
    CHECK_EQ(mb_rtu_decode(frame, 3, &address, &pdu, &pdu_length), MB_EFRAME);

    static const uint8_t shortest[] = {0x11, 0x07, 0x4C, 0x22};
    CHECK_EQ(mb_rtu_decode(shortest, sizeof shortest, &address, &pdu, &pdu_length), 0);
    CHECK_EQ(address, 0x11);
    CHECK_BYTES(pdu, pdu_length, 0x07);

    for (size_t i = 0; i < sizeof frame; i++)
        frame[i] = (uint8_t)i;
    crc = mb_crc16(frame, 254);
    frame[254] = (uint8_t)crc;
    frame[255] = (uint8_t)(crc >> 8);
    CHECK_EQ(mb_rtu_decode(frame, 256, &address, &pdu, &pdu_length), 0);
    CHECK_EQ(pdu_length, 253);
    CHECK(pdu == frame + 1);

    /* 257 bytes with a correct CRC: refused for the length, not the CRC. */
    crc = mb_crc16(frame, 255);
    frame[255] = (uint8_t)crc;
    frame[256] = (uint8_t)(crc >> 8);
    CHECK_EQ(mb_crc16(frame, 257), 0);
    CHECK_EQ(mb_rtu_decode(frame, 257, &address, &pdu, &pdu_length), MB_EFRAME);

    CHECK_EQ(mb_rtu_decode(frame, 0, &address, &pdu, &pdu_length), MB_EFRAME);
}

TEST(decode_rejects_every_single_bit_and_whole_byte_error) {
    static const uint8_t frames[][8] = {
        {0x01, 0x03, 0x00, 0x00, 0x00, 0x01, 0x84, 0x0A},
        {0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87},
    };
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    for (size_t f = 0; f < sizeof frames / sizeof frames[0]; f++) {
        uint8_t frame[8];
        for (size_t i = 0; i < sizeof frame; i++) {
            for (int bit = 0; bit < 8; bit++) {
                memcpy(frame, frames[f], sizeof frame);
                frame[i] ^= (uint8_t)(1u << bit);
                CHECK_CASE(mb_rtu_decode(frame, sizeof frame, &address, &pdu, &pdu_length), MB_ECRC,
                           "bit flip", i * 8 + (size_t)bit);
            }
            memcpy(frame, frames[f], sizeof frame);
            frame[i] ^= 0xFF;
            CHECK_CASE(mb_rtu_decode(frame, sizeof frame, &address, &pdu, &pdu_length), MB_ECRC,
                       "byte flip", i);
        }
    }
    /* The CRC in the wrong byte order. */
    CHECK_EQ(mb_rtu_decode(BYTES(0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x87, 0x76), &address, &pdu,
                           &pdu_length),
             MB_ECRC);
}

TEST(decode_reports_every_address_including_broadcast_and_reserved) {
    static const uint8_t addresses[] = {0, 1, 247, 248, 255};
    for (size_t i = 0; i < sizeof addresses; i++) {
        uint8_t frame[8];
        uint8_t address = 0x42;
        const uint8_t *pdu = NULL;
        size_t pdu_length = 0;
        CHECK_EQ(
            mb_rtu_encode(addresses[i], BYTES(0x06, 0x00, 0x01, 0x00, 0x03), frame, sizeof frame),
            8);
        CHECK_EQ(mb_rtu_decode(frame, 8, &address, &pdu, &pdu_length), 0);
        CHECK_EQ(address, addresses[i]);
    }
}

TEST(decode_rejects_null_arguments) {
    static const uint8_t frame[] = {0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0x76, 0x87};
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    CHECK_EQ(mb_rtu_decode(NULL, 8, &address, &pdu, &pdu_length), MB_EINVAL);
    CHECK_EQ(mb_rtu_decode(frame, 8, NULL, &pdu, &pdu_length), MB_EINVAL);
    CHECK_EQ(mb_rtu_decode(frame, 8, &address, NULL, &pdu_length), MB_EINVAL);
    CHECK_EQ(mb_rtu_decode(frame, 8, &address, &pdu, NULL), MB_EINVAL);
}

TEST(encode_then_decode_gives_back_address_and_pdu_for_every_length) {
    static const uint8_t addresses[] = {0, 1, 0x11, 247, 255};
    for (size_t a = 0; a < sizeof addresses; a++) {
        for (size_t length = 1; length <= MB_PDU_MAX; length++) {
            uint8_t pdu[MB_PDU_MAX];
            uint8_t frame[MB_RTU_FRAME_MAX];
            for (size_t i = 0; i < length; i++)
                pdu[i] = random_byte();
            int frame_length = mb_rtu_encode(addresses[a], pdu, length, frame, sizeof frame);
            CHECK_CASE(frame_length, (int)length + 3, "encode", length);
            if (frame_length < 0)
                continue;
            uint8_t address = 0;
            const uint8_t *decoded = NULL;
            size_t decoded_length = 0;
            CHECK_CASE(
                mb_rtu_decode(frame, (size_t)frame_length, &address, &decoded, &decoded_length), 0,
                "decode", length);
            CHECK_EQ(address, addresses[a]);
            CHECK_CASE(decoded_length, length, "decoded length", length);
            CHECK(decoded != NULL && memcmp(decoded, pdu, length) == 0);
        }
    }
}

/* ---- addressing ---- */

static int listed(const uint8_t *list, size_t count, uint8_t value) {
    for (size_t i = 0; i < count; i++)
        if (list[i] == value)
            return 1;
    return 0;
}

static const uint8_t broadcast_writes[] = {5, 6, 15, 16, 21, 22};

TEST(only_fc_5_6_15_16_21_22_are_broadcastable) {
    for (int function = 0; function < 256; function++)
        CHECK_CASE(mb_function_is_broadcastable((uint8_t)function),
                   listed(broadcast_writes, sizeof broadcast_writes, (uint8_t)function), "FC",
                   function);
    CHECK_EQ(mb_function_is_broadcastable(MB_FC_DIAGNOSTICS), 0);
    CHECK_EQ(mb_function_is_broadcastable(MB_FC_READ_WRITE_MULTIPLE_REGISTERS), 0);
}

TEST(accept_replies_to_a_request_for_its_own_address) {
    CHECK_EQ(mb_rtu_accept(1, 1, MB_FC_READ_HOLDING_REGISTERS), MB_RTU_PROCESS_REPLY);
    CHECK_EQ(mb_rtu_accept(247, 247, MB_FC_WRITE_SINGLE_REGISTER), MB_RTU_PROCESS_REPLY);
    CHECK_EQ(mb_rtu_accept(0x11, 0x11, MB_FC_DIAGNOSTICS), MB_RTU_PROCESS_REPLY);
    /* Even a function it does not know: answering it with exception 01 is the server's job. */
    CHECK_EQ(mb_rtu_accept(0x11, 0x11, 65), MB_RTU_PROCESS_REPLY);
}

TEST(accept_ignores_other_devices_and_reserved_addresses) {
    CHECK_EQ(mb_rtu_accept(1, 2, MB_FC_READ_HOLDING_REGISTERS), MB_RTU_IGNORE);
    CHECK_EQ(mb_rtu_accept(1, 247, MB_FC_WRITE_SINGLE_REGISTER), MB_RTU_IGNORE);
    CHECK_EQ(mb_rtu_accept(247, 1, MB_FC_WRITE_SINGLE_REGISTER), MB_RTU_IGNORE);
    CHECK_EQ(mb_rtu_accept(1, 248, MB_FC_WRITE_SINGLE_REGISTER), MB_RTU_IGNORE);
    CHECK_EQ(mb_rtu_accept(247, 255, MB_FC_READ_COILS), MB_RTU_IGNORE);
}

TEST(accept_processes_a_broadcast_write_silently) {
    for (size_t i = 0; i < sizeof broadcast_writes; i++)
        CHECK_CASE(mb_rtu_accept(0x11, 0, broadcast_writes[i]), MB_RTU_PROCESS_SILENT, "FC",
                   broadcast_writes[i]);
}

TEST(accept_ignores_a_broadcast_of_a_read_and_of_fc_8) {
    static const uint8_t not_broadcastable[] = {1, 2, 3, 4, 7, 8, 11, 12, 17, 20, 23, 24, 43, 65};
    for (size_t i = 0; i < sizeof not_broadcastable; i++)
        CHECK_CASE(mb_rtu_accept(0x11, 0, not_broadcastable[i]), MB_RTU_IGNORE, "FC",
                   not_broadcastable[i]);
}

TEST(accept_follows_the_rules_for_every_address_and_function_code) {
    static const uint8_t own_addresses[] = {1, 17, 247};
    static const uint8_t addresses[] = {0, 1, 17, 246, 247, 248, 255};
    for (size_t o = 0; o < sizeof own_addresses; o++) {
        for (size_t a = 0; a < sizeof addresses; a++) {
            for (int function = 0; function < 256; function++) {
                int want = MB_RTU_IGNORE;
                if (addresses[a] == own_addresses[o])
                    want = MB_RTU_PROCESS_REPLY;
                else if (addresses[a] == 0 &&
                         listed(broadcast_writes, sizeof broadcast_writes, (uint8_t)function))
                    want = MB_RTU_PROCESS_SILENT;
                CHECK_CASE(mb_rtu_accept(own_addresses[o], addresses[a], (uint8_t)function), want,
                           "own/address/FC",
                           (size_t)own_addresses[o] * 65536 + (size_t)addresses[a] * 256 +
                               (size_t)function);
            }
        }
    }
}

TEST(accept_refuses_an_own_address_of_0_or_248_to_255) {
    CHECK_EQ(mb_rtu_accept(0, 0, MB_FC_WRITE_SINGLE_REGISTER), MB_EINVAL);
    CHECK_EQ(mb_rtu_accept(248, 248, MB_FC_READ_COILS), MB_EINVAL);
    CHECK_EQ(mb_rtu_accept(255, 1, MB_FC_READ_COILS), MB_EINVAL);
}

/* ---- timing ---- */

TEST(timing_at_9600_baud_is_computed_from_11_bits_per_character) {
    /* A character is 11 / 9600 s = 1145.83 us: t1.5 = 1718.75 us, t3.5 = 4010.42 us, rounded
     * up so that neither falls short of the spec. */
    uint32_t t15 = 0, t35 = 0;
    CHECK_EQ(mb_rtu_timing(9600, &t15, &t35), 0);
    CHECK_EQ(t15, 1719);
    CHECK_EQ(t35, 4011);
}

TEST(timing_at_19200_baud_is_computed_from_11_bits_per_character) {
    /* 572.92 us a character: t1.5 = 859.375 us, t3.5 = 2005.21 us. */
    uint32_t t15 = 0, t35 = 0;
    CHECK_EQ(mb_rtu_timing(19200, &t15, &t35), 0);
    CHECK_EQ(t15, 860);
    CHECK_EQ(t35, 2006);
}

TEST(timing_at_slow_rates_is_computed_too) {
    uint32_t t15 = 0, t35 = 0;
    CHECK_EQ(mb_rtu_timing(1200, &t15, &t35), 0);
    CHECK_EQ(t15, 13750);
    CHECK_EQ(t35, 32084);
    CHECK_EQ(mb_rtu_timing(300, &t15, &t35), 0);
    CHECK_EQ(t15, 55000);
    CHECK_EQ(t35, 128334);
    CHECK_EQ(mb_rtu_timing(1, &t15, &t35), 0);
    CHECK_EQ(t15, 16500000);
    CHECK_EQ(t35, 38500000);
}

TEST(timing_rounds_up_to_the_nearest_microsecond_at_every_computed_rate) {
    for (uint32_t baud = 1; baud <= 19200; baud++) {
        uint32_t t15 = 0, t35 = 0;
        CHECK_EQ(mb_rtu_timing(baud, &t15, &t35), 0);
        /* t * baud >= 1.5 (3.5) characters of 11 bits in microseconds, and one less is not. */
        int t15_rounded_up =
            (uint64_t)t15 * baud >= 16500000u && (uint64_t)(t15 - 1) * baud < 16500000u;
        int t35_rounded_up =
            (uint64_t)t35 * baud >= 38500000u && (uint64_t)(t35 - 1) * baud < 38500000u;
        CHECK_CASE(t15_rounded_up, 1, "t1.5 at baud", baud);
        CHECK_CASE(t35_rounded_up, 1, "t3.5 at baud", baud);
    }
}

TEST(timing_above_19200_baud_is_fixed_at_750_and_1750_us) {
    static const uint32_t rates[] = {19201, 38400, 57600, 115200, 921600, 0xFFFFFFFFu};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        uint32_t t15 = 0, t35 = 0;
        CHECK_CASE(mb_rtu_timing(rates[i], &t15, &t35), 0, "baud", rates[i]);
        CHECK_CASE(t15, 750, "t1.5 at baud", rates[i]);
        CHECK_CASE(t35, 1750, "t3.5 at baud", rates[i]);
    }
}

TEST(timing_at_0_baud_is_invalid) {
    uint32_t t15 = 7, t35 = 7;
    CHECK_EQ(mb_rtu_timing(0, &t15, &t35), MB_EINVAL);
    CHECK_EQ(mb_rtu_timing(9600, NULL, &t35), MB_EINVAL);
    CHECK_EQ(mb_rtu_timing(9600, &t15, NULL), MB_EINVAL);
}

/* ---- frame length without silent intervals ---- */

/* A PDU whose frame length must be known once `known_at` bytes of the frame have arrived. */
struct length_case {
    const char *name;
    int is_request;
    const uint8_t *pdu;
    size_t pdu_length;
    size_t known_at;
};

#define LENGTH_CASE(name, is_request, known_at, ...) \
    { name, is_request, BYTES(__VA_ARGS__), known_at }

/*
 * Builds the frame at address 0x11 and feeds it byte by byte, each prefix at the end of a
 * readable page: 0 until known_at bytes, then the whole frame length. Every prefix must also
 * be refused by mb_rtu_decode() without a read past its end, and the whole frame accepted.
 */
static void check_length_case(const struct length_case *c) {
    uint8_t frame[MB_RTU_FRAME_MAX];
    int frame_length = mb_rtu_encode(0x11, c->pdu, c->pdu_length, frame, sizeof frame);
    CHECK_CASE(frame_length, (int)c->pdu_length + 3, c->name, 0);
    if (frame_length < 0)
        return;
    for (size_t n = 0; n <= (size_t)frame_length; n++) {
        const uint8_t *copy = guard_copy(frame, n);
        int want = n < c->known_at ? 0 : frame_length;
        CHECK_CASE(mb_rtu_frame_length(copy, n, c->is_request), want, c->name, n);

        uint8_t address = 0;
        const uint8_t *pdu = NULL;
        size_t pdu_length = 0;
        int decoded = mb_rtu_decode(copy, n, &address, &pdu, &pdu_length);
        want = n < MB_RTU_FRAME_MIN ? MB_EFRAME : n < (size_t)frame_length ? MB_ECRC : 0;
        CHECK_CASE(decoded, want, c->name, n);
    }
    /* The next frame's bytes behind it change nothing. */
    uint8_t two_frames[2 * MB_RTU_FRAME_MAX];
    memcpy(two_frames, frame, (size_t)frame_length);
    memcpy(two_frames + frame_length, frame, (size_t)frame_length);
    CHECK_CASE(mb_rtu_frame_length(two_frames, 2 * (size_t)frame_length, c->is_request),
               frame_length, c->name, 2 * (size_t)frame_length);
}

TEST(frame_length_of_every_public_request) {
    const struct length_case cases[] = {
        LENGTH_CASE("FC1", 1, 2, 0x01, 0x00, 0x13, 0x00, 0x13),
        LENGTH_CASE("FC2", 1, 2, 0x02, 0x00, 0xC4, 0x00, 0x16),
        LENGTH_CASE("FC3", 1, 2, 0x03, 0x00, 0x6B, 0x00, 0x03),
        LENGTH_CASE("FC4", 1, 2, 0x04, 0x00, 0x08, 0x00, 0x01),
        LENGTH_CASE("FC5", 1, 2, 0x05, 0x00, 0xAC, 0xFF, 0x00),
        LENGTH_CASE("FC6", 1, 2, 0x06, 0x00, 0x01, 0x00, 0x03),
        LENGTH_CASE("FC7", 1, 2, 0x07),
        LENGTH_CASE("FC8/01", 1, 4, 0x08, 0x00, 0x01, 0x00, 0x00),
        LENGTH_CASE("FC8/03", 1, 4, 0x08, 0x00, 0x03, 0x21, 0x00),
        LENGTH_CASE("FC8/0A", 1, 4, 0x08, 0x00, 0x0A, 0x00, 0x00),
        LENGTH_CASE("FC8/0B", 1, 4, 0x08, 0x00, 0x0B, 0x00, 0x00),
        LENGTH_CASE("FC8/0100", 1, 4, 0x08, 0x01, 0x00, 0x00, 0x00),
        LENGTH_CASE("FC11", 1, 2, 0x0B),
        LENGTH_CASE("FC12", 1, 2, 0x0C),
        LENGTH_CASE("FC15", 1, 7, 0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01),
        LENGTH_CASE("FC16", 1, 7, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01, 0x02),
        LENGTH_CASE("FC17", 1, 2, 0x11),
        LENGTH_CASE("FC20", 1, 3, 0x14, 0x0E, 0x06, 0x00, 0x04, 0x00, 0x01, 0x00, 0x02, 0x06, 0x00,
                    0x03, 0x00, 0x09, 0x00, 0x02),
        LENGTH_CASE("FC21", 1, 3, 0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF,
                    0x04, 0xBE, 0x10, 0x0D),
        LENGTH_CASE("FC22", 1, 2, 0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25),
        LENGTH_CASE("FC23", 1, 11, 0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03, 0x06, 0x00,
                    0xFF, 0x00, 0xFF, 0x00, 0xFF),
        LENGTH_CASE("FC24", 1, 2, 0x18, 0x04, 0xDE),
        LENGTH_CASE("FC43/14", 1, 3, 0x2B, 0x0E, 0x01, 0x00),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_length_case(&cases[i]);
}

TEST(frame_length_of_every_public_response) {
    const struct length_case cases[] = {
        LENGTH_CASE("FC1", 0, 3, 0x01, 0x03, 0xCD, 0x6B, 0x05),
        LENGTH_CASE("FC2", 0, 3, 0x02, 0x03, 0xAC, 0xDB, 0x35),
        LENGTH_CASE("FC3", 0, 3, 0x03, 0x06, 0x02, 0x2B, 0x00, 0x00, 0x00, 0x64),
        LENGTH_CASE("FC4", 0, 3, 0x04, 0x02, 0x00, 0x0A),
        LENGTH_CASE("FC5", 0, 2, 0x05, 0x00, 0xAC, 0xFF, 0x00),
        LENGTH_CASE("FC6", 0, 2, 0x06, 0x00, 0x01, 0x00, 0x03),
        LENGTH_CASE("FC7", 0, 2, 0x07, 0x6D),
        LENGTH_CASE("FC8/01", 0, 4, 0x08, 0x00, 0x01, 0x00, 0x00),
        LENGTH_CASE("FC8/02", 0, 4, 0x08, 0x00, 0x02, 0x00, 0x00),
        LENGTH_CASE("FC8/0B", 0, 4, 0x08, 0x00, 0x0B, 0x00, 0x05),
        LENGTH_CASE("FC11", 0, 2, 0x0B, 0x00, 0x00, 0x01, 0x08),
        LENGTH_CASE("FC12", 0, 3, 0x0C, 0x08, 0x00, 0x00, 0x01, 0x08, 0x01, 0x21, 0x20, 0x00),
        LENGTH_CASE("FC15", 0, 2, 0x0F, 0x00, 0x13, 0x00, 0x0A),
        LENGTH_CASE("FC16", 0, 2, 0x10, 0x00, 0x01, 0x00, 0x02),
        LENGTH_CASE("FC17", 0, 3, 0x11, 0x03, 0x01, 0xFF, 0x42),
        LENGTH_CASE("FC20", 0, 3, 0x14, 0x0C, 0x05, 0x06, 0x0D, 0xFE, 0x00, 0x20, 0x05, 0x06, 0x33,
                    0xCD, 0x00, 0x40),
        LENGTH_CASE("FC21", 0, 3, 0x15, 0x0D, 0x06, 0x00, 0x04, 0x00, 0x07, 0x00, 0x03, 0x06, 0xAF,
                    0x04, 0xBE, 0x10, 0x0D),
        LENGTH_CASE("FC22", 0, 2, 0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25),
        LENGTH_CASE("FC23", 0, 3, 0x17, 0x0C, 0x00, 0xFE, 0x0A, 0xCD, 0x00, 0x01, 0x00, 0x03, 0x00,
                    0x0D, 0x00, 0xFF),
        /* FC 24 has the one two-byte byte count. */
        LENGTH_CASE("FC24", 0, 4, 0x18, 0x00, 0x06, 0x00, 0x02, 0x01, 0xB8, 0x12, 0x84),
        LENGTH_CASE("FC24 empty", 0, 4, 0x18, 0x00, 0x02, 0x00, 0x00),
        /* FC 43/14: known once the last object's length byte has arrived. */
        LENGTH_CASE("FC43/14 three objects", 0, 19, 0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x03, 0x00,
                    0x03, 0x41, 0x42, 0x43, 0x01, 0x02, 0x50, 0x31, 0x02, 0x04, 0x56, 0x31, 0x2E,
                    0x30),
        LENGTH_CASE("FC43/14 no object", 0, 8, 0x2B, 0x0E, 0x01, 0x01, 0x00, 0x00, 0x00),
        LENGTH_CASE("FC43/14 empty object", 0, 10, 0x2B, 0x0E, 0x04, 0x81, 0x00, 0x00, 0x01, 0x05,
                    0x00),
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++)
        check_length_case(&cases[i]);
}

TEST(frame_length_of_an_exception_response_is_5_for_every_function_code) {
    static const uint8_t functions[] = {1,  2,  3,  4,  5,  6,  7,  8,  11,  12,  15, 16,
                                        17, 20, 21, 22, 23, 24, 43, 65, 100, 110, 0,  0x7F};
    for (size_t i = 0; i < sizeof functions; i++) {
        const struct length_case c = {
            "exception", 0, (const uint8_t[]){functions[i] | 0x80, MB_EX_ILLEGAL_DATA_ADDRESS}, 2,
            2};
        check_length_case(&c);
    }
}

/* Bytes of a frame's start (with the address) that give `want` from `known_at` bytes on. */
static void check_length_error(const char *name, int is_request, const uint8_t *frame,
                               size_t length, size_t known_at, int want) {
    for (size_t n = 0; n <= length; n++) {
        const uint8_t *copy = guard_copy(frame, n);
        CHECK_CASE(mb_rtu_frame_length(copy, n, is_request), n < known_at ? 0 : want, name, n);
    }
}

TEST(frame_length_of_a_user_defined_or_reserved_function_code_cannot_be_judged) {
    static const uint8_t functions[] = {0,  9,  10, 13, 14,  18,  19, 25,
                                        42, 44, 65, 72, 100, 110, 127};
    for (size_t i = 0; i < sizeof functions; i++) {
        const uint8_t frame[] = {0x11, functions[i], 0x00, 0x00, 0x00, 0x00};
        check_length_error("request", 1, frame, sizeof frame, 2, MB_EFUNCTION);
        check_length_error("response", 0, frame, sizeof frame, 2, MB_EFUNCTION);
    }
}

TEST(frame_length_of_a_request_with_the_exception_bit_cannot_be_judged) {
    for (int function = 0x80; function < 0x100; function++) {
        const uint8_t frame[] = {0x11, (uint8_t)function, 0x01, 0x00, 0x00};
        check_length_error("request", 1, frame, sizeof frame, 2, MB_EFUNCTION);
    }
}

TEST(frame_length_of_fc8_return_query_data_cannot_be_judged) {
    /* Sub-function 0x00 echoes data of any length and carries no count. */
    check_length_error("FC8/00 request", 1, BYTES(0x11, 0x08, 0x00, 0x00, 0xA5, 0x37), 4,
                       MB_EFUNCTION);
    check_length_error("FC8/00 response", 0, BYTES(0x11, 0x08, 0x00, 0x00, 0xA5, 0x37), 4,
                       MB_EFUNCTION);
}

TEST(frame_length_of_fc43_with_another_mei_type_cannot_be_judged) {
    check_length_error("FC43/13 request", 1, BYTES(0x11, 0x2B, 0x0D, 0x00, 0x00), 3, MB_EFUNCTION);
    check_length_error("FC43/13 response", 0, BYTES(0x11, 0x2B, 0x0D, 0x00, 0x00), 3, MB_EFUNCTION);
}

TEST(frame_length_up_to_256_is_accepted_and_over_it_refused) {
    /* FC 15/16 requests: 9 bytes besides the counted ones. */
    check_length_error("FC16 bc 247", 1, BYTES(0x11, 0x10, 0x00, 0x01, 0x00, 0x7B, 0xF7), 7, 256);
    check_length_error("FC16 bc 248", 1, BYTES(0x11, 0x10, 0x00, 0x01, 0x00, 0x7C, 0xF8), 7,
                       MB_EFRAME);
    check_length_error("FC15 bc 255", 1, BYTES(0x11, 0x0F, 0x00, 0x01, 0x07, 0xF8, 0xFF), 7,
                       MB_EFRAME);
    /* FC 23 requests: 13. */
    check_length_error("FC23 bc 243", 1,
                       BYTES(0x11, 0x17, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x79, 0xF3), 11,
                       256);
    check_length_error("FC23 bc 244", 1,
                       BYTES(0x11, 0x17, 0x00, 0x00, 0x00, 0x01, 0x00, 0x00, 0x00, 0x7A, 0xF4), 11,
                       MB_EFRAME);
    /* FC 20/21 requests and byte-count responses: 5. */
    check_length_error("FC20 bc 251", 1, BYTES(0x11, 0x14, 0xFB), 3, 256);
    check_length_error("FC21 bc 252", 1, BYTES(0x11, 0x15, 0xFC), 3, MB_EFRAME);
    check_length_error("FC3 bc 251", 0, BYTES(0x11, 0x03, 0xFB), 3, 256);
    check_length_error("FC3 bc 252", 0, BYTES(0x11, 0x03, 0xFC), 3, MB_EFRAME);
    check_length_error("FC17 bc 255", 0, BYTES(0x11, 0x11, 0xFF), 3, MB_EFRAME);
    /* FC 24 responses: 6, with a two-byte count. */
    check_length_error("FC24 bc 250", 0, BYTES(0x11, 0x18, 0x00, 0xFA), 4, 256);
    check_length_error("FC24 bc 251", 0, BYTES(0x11, 0x18, 0x00, 0xFB), 4, MB_EFRAME);
    check_length_error("FC24 bc 0x0100", 0, BYTES(0x11, 0x18, 0x01, 0x00), 4, MB_EFRAME);
    check_length_error("FC24 bc 0xFFFF", 0, BYTES(0x11, 0x18, 0xFF, 0xFF), 4, MB_EFRAME);
}

TEST(frame_length_of_fc43_objects_past_256_bytes_is_refused_as_soon_as_known) {
    uint8_t frame[MB_RTU_FRAME_MAX];
    memset(frame, 0x41, sizeof frame);
    static const uint8_t header[] = {0x11, 0x2B, 0x0E, 0x03, 0x83, 0x00, 0x00, 0x02};
    memcpy(frame, header, sizeof header);
    /* A first object of 240 bytes ends at 250; a second of 2 makes exactly 256 with the CRC. */
    frame[8] = 0x80;
    frame[9] = 0xF0;
    frame[250] = 0x81;
    frame[251] = 0x02;
    check_length_error("FC43/14 256 bytes", 0, frame, sizeof frame, 252, 256);
    /* One of 3 would make 257: refused the moment its length byte arrives. */
    frame[251] = 0x03;
    check_length_error("FC43/14 257 bytes", 0, frame, sizeof frame, 252, MB_EFRAME);
    /* A single object that cannot fit is refused without waiting for more objects. */
    frame[7] = 0x05;
    frame[9] = 0xF7;
    check_length_error("FC43/14 first object too long", 0, frame, 12, 10, MB_EFRAME);

    /* 255 empty objects: 2 bytes each, past 256 at the 124th, whose length byte is frame[255]. */
    memset(frame, 0, sizeof frame);
    memcpy(frame, header, sizeof header);
    frame[7] = 0xFF;
    check_length_error("FC43/14 255 empty objects", 0, frame, sizeof frame, 256, MB_EFRAME);
    /* 123 of them fit exactly: 8 + 246 + 2. */
    frame[7] = 123;
    check_length_error("FC43/14 123 empty objects", 0, frame, sizeof frame, 254, 256);
}

TEST(frame_length_needs_the_function_code_first) {
    uint8_t one = 0x11;
    CHECK_EQ(mb_rtu_frame_length(&one, 0, 1), 0);
    CHECK_EQ(mb_rtu_frame_length(&one, 1, 1), 0);
    CHECK_EQ(mb_rtu_frame_length(&one, 1, 0), 0);
    CHECK_EQ(mb_rtu_frame_length(NULL, 4, 1), MB_EINVAL);
}

/* ---- the shared vectors ---- */

TEST(every_shared_rtu_vector_decodes_and_no_prefix_does) {
    size_t seen = 0;
    for (size_t v = 0; v < vector_count; v++) {
        if (vectors[v].kind != VECTOR_RTU_FRAME)
            continue;
        seen++;
        size_t length = vectors[v].length;
        for (size_t n = 0; n <= length; n++) {
            uint8_t address = 0;
            const uint8_t *pdu = NULL;
            size_t pdu_length = 0;
            const uint8_t *copy = guard_copy(vectors[v].bytes, n);
            int want = n == length ? 0 : n < MB_RTU_FRAME_MIN ? MB_EFRAME : MB_ECRC;
            CHECK_CASE(mb_rtu_decode(copy, n, &address, &pdu, &pdu_length), want, vectors[v].name,
                       n);
        }
    }
    CHECK(seen > 0);
}

/* ---- stream decoder ---- */

#define T35 1750 /* 19200 baud and above */

/* A FC 3 request for 10 registers at 0x6B to unit 17, and the answer to one register. */
static int fc3_request(uint8_t frame[8]) {
    static const uint8_t pdu[] = {0x03, 0x00, 0x6B, 0x00, 0x0A};
    return mb_rtu_encode(17, pdu, sizeof pdu, frame, 8);
}
static int fc3_answer(uint8_t unit, uint16_t value, uint8_t frame[7]) {
    const uint8_t pdu[] = {0x03, 0x02, (uint8_t)(value >> 8), (uint8_t)value};
    return mb_rtu_encode(unit, pdu, sizeof pdu, frame, 7);
}

TEST(rtu_decoder_ends_a_request_at_its_length_fed_byte_by_byte) {
    struct mb_rtu_decoder decoder;
    mb_rtu_decoder_init(&decoder, 1, T35);
    uint8_t frame[8];
    CHECK_EQ(fc3_request(frame), 8);
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0, consumed = 0;
    for (int i = 0; i < 7; i++) {
        CHECK_EQ(mb_rtu_decoder_feed(&decoder, frame + i, 1, 1000 + 500 * (uint64_t)i, &consumed,
                                     &address, &pdu, &pdu_length),
                 0);
        CHECK_EQ(consumed, 1);
        /* A silence from here would drop the partial frame. */
        CHECK_EQ(mb_rtu_decoder_deadline(&decoder), 1000 + 500 * (uint64_t)i + T35);
    }
    CHECK_EQ(
        mb_rtu_decoder_feed(&decoder, frame + 7, 1, 4500, &consumed, &address, &pdu, &pdu_length),
        1);
    CHECK_EQ(address, 17);
    CHECK_EQ(pdu_length, 5);
    CHECK_BYTES(pdu, pdu_length, 0x03, 0x00, 0x6B, 0x00, 0x0A);
    CHECK_EQ(decoder.frames, 1);
    CHECK_EQ(decoder.errors, 0);
}

TEST(rtu_decoder_splits_an_echo_and_an_answer_that_come_in_one_read) {
    struct mb_rtu_decoder decoder;
    mb_rtu_decoder_init(&decoder, 0, T35);
    uint8_t both[14];
    CHECK_EQ(fc3_answer(1, 0x1234, both), 7);
    CHECK_EQ(fc3_answer(2, 0xBEEF, both + 7), 7);
    uint8_t address;
    const uint8_t *pdu;
    size_t pdu_length, consumed;
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, both, 14, 100, &consumed, &address, &pdu, &pdu_length),
             1);
    CHECK_EQ(consumed, 7);
    CHECK_EQ(address, 1);
    CHECK_BYTES(pdu, pdu_length, 0x03, 0x02, 0x12, 0x34);
    CHECK_EQ(
        mb_rtu_decoder_feed(&decoder, both + 7, 7, 100, &consumed, &address, &pdu, &pdu_length), 1);
    CHECK_EQ(address, 2);
    CHECK_BYTES(pdu, pdu_length, 0x03, 0x02, 0xBE, 0xEF);
}

TEST(rtu_decoder_drops_a_bad_crc_skips_to_the_silence_and_takes_the_next_frame) {
    struct mb_rtu_decoder decoder;
    mb_rtu_decoder_init(&decoder, 0, T35);
    uint8_t bad[7], good[7];
    fc3_answer(1, 7, bad);
    bad[6] ^= 0x40;
    fc3_answer(1, 8, good);
    uint8_t address;
    const uint8_t *pdu;
    size_t pdu_length, consumed;
    uint8_t burst[14];
    memcpy(burst, bad, 7);
    memcpy(burst + 7, good, 7); /* no silence between: the second cannot be trusted */
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, burst, 14, 100, &consumed, &address, &pdu, &pdu_length),
             MB_ECRC);
    CHECK_EQ(consumed, 7);
    CHECK_EQ(
        mb_rtu_decoder_feed(&decoder, burst + 7, 7, 200, &consumed, &address, &pdu, &pdu_length),
        0);
    CHECK_EQ(consumed, 7); /* skipped */
    CHECK(mb_rtu_decoder_deadline(&decoder) == 200 + T35);
    /* After a silence, the next frame is taken. */
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, good, 7, 200 + T35 + 10, &consumed, &address, &pdu,
                                 &pdu_length),
             1);
    CHECK_BYTES(pdu, pdu_length, 0x03, 0x02, 0x00, 0x08);
    CHECK_EQ(decoder.errors, 1);
    CHECK_EQ(decoder.frames, 1);
}

TEST(rtu_decoder_on_a_stream_waits_for_the_rest_of_a_frame_of_known_length) {
    struct mb_rtu_decoder decoder;
    mb_rtu_decoder_init(&decoder, 0, T35);
    mb_rtu_decoder_set_stream(&decoder, 1);
    uint8_t frame[7];
    CHECK_EQ(fc3_answer(3, 0x4242, frame), 7);
    uint8_t address;
    const uint8_t *pdu;
    size_t pdu_length, consumed;
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, frame, 4, 100, &consumed, &address, &pdu, &pdu_length),
             0);
    /* No silence ends it: no deadline, and a late silence ends nothing. */
    CHECK_EQ(mb_rtu_decoder_deadline(&decoder), 0);
    CHECK_EQ(mb_rtu_decoder_silence(&decoder, 100 + 100 * T35, &address, &pdu, &pdu_length), 0);
    /* The rest, 40 ms later (a segment held back), completes it. */
    CHECK_EQ(
        mb_rtu_decoder_feed(&decoder, frame + 4, 3, 40100, &consumed, &address, &pdu, &pdu_length),
        1);
    CHECK_EQ(address, 3);
    CHECK_BYTES(pdu, pdu_length, 0x03, 0x02, 0x42, 0x42);
    CHECK_EQ(decoder.errors, 0);
    /* A frame whose length cannot be judged still ends at a silence. */
    static const uint8_t user_pdu[] = {0x41, 0x01, 0x02};
    uint8_t user[8];
    int size = mb_rtu_encode(3, user_pdu, sizeof user_pdu, user, sizeof user);
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, user, (size_t)size, 50000, &consumed, &address, &pdu,
                                 &pdu_length),
             0);
    CHECK_EQ(mb_rtu_decoder_deadline(&decoder), 50000 + T35);
    CHECK_EQ(mb_rtu_decoder_silence(&decoder, 50000 + T35, &address, &pdu, &pdu_length), 1);
    CHECK_BYTES(pdu, pdu_length, 0x41, 0x01, 0x02);
    /* Without stream, the same gap voids the frame (a line's rule). */
    mb_rtu_decoder_init(&decoder, 0, T35);
    CHECK_EQ(decoder.stream, 0);
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, frame, 4, 100, &consumed, &address, &pdu, &pdu_length),
             0);
    CHECK_EQ(mb_rtu_decoder_silence(&decoder, 100 + T35, &address, &pdu, &pdu_length), MB_ECRC);
    mb_rtu_decoder_set_stream(NULL, 1); /* ignored */
}

TEST(rtu_decoder_noise_between_frames_is_one_error_and_no_frame_is_lost) {
    struct mb_rtu_decoder decoder;
    mb_rtu_decoder_init(&decoder, 0, T35);
    uint8_t good[7];
    fc3_answer(3, 0x0102, good);
    static const uint8_t noise[] = {0xFF, 0x00, 0x55};
    uint8_t address;
    const uint8_t *pdu;
    size_t pdu_length, consumed;
    uint64_t now = 1000;
    int frames = 0, errors = 0;
    for (int round = 0; round < 5; round++) {
        /* noise, silence, a frame, silence */
        const uint8_t *inputs[] = {noise, good};
        const size_t lengths[] = {sizeof noise, sizeof good};
        for (int k = 0; k < 2; k++) {
            size_t offset = 0;
            while (offset < lengths[k]) {
                int rc = mb_rtu_decoder_feed(&decoder, inputs[k] + offset, lengths[k] - offset, now,
                                             &consumed, &address, &pdu, &pdu_length);
                offset += consumed;
                frames += rc == 1;
                errors += rc < 0;
            }
            now += 10 * T35;
            int rc = mb_rtu_decoder_silence(&decoder, now, &address, &pdu, &pdu_length);
            frames += rc == 1;
            errors += rc < 0;
        }
    }
    CHECK_EQ(frames, 5);
    CHECK_EQ(errors, 5);
    CHECK_EQ(decoder.frames, 5);
    CHECK_EQ(decoder.errors, 5);
}

TEST(rtu_decoder_ends_a_frame_of_unknown_length_at_the_silence) {
    struct mb_rtu_decoder decoder;
    mb_rtu_decoder_init(&decoder, 1, T35);
    static const uint8_t pdu_in[] = {0x41, 0x01, 0x02, 0x03}; /* user-defined function */
    uint8_t frame[16];
    int length = mb_rtu_encode(9, pdu_in, sizeof pdu_in, frame, sizeof frame);
    CHECK_EQ(length, 7);
    uint8_t address;
    const uint8_t *pdu;
    size_t pdu_length, consumed;
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, frame, (size_t)length, 5000, &consumed, &address, &pdu,
                                 &pdu_length),
             0);
    CHECK_EQ(mb_rtu_decoder_deadline(&decoder), 5000 + T35);
    CHECK_EQ(mb_rtu_decoder_silence(&decoder, 5000 + T35 - 1, &address, &pdu, &pdu_length), 0);
    CHECK_EQ(mb_rtu_decoder_silence(&decoder, 5000 + T35, &address, &pdu, &pdu_length), 1);
    CHECK_EQ(address, 9);
    CHECK_BYTES(pdu, pdu_length, 0x41, 0x01, 0x02, 0x03);
    CHECK_EQ(mb_rtu_decoder_deadline(&decoder), 0);
    /* The same frame with bytes arriving after the silence: they start a new frame and the
     * held one is handed out first, with nothing consumed. */
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, frame, (size_t)length, 10000, &consumed, &address, &pdu,
                                 &pdu_length),
             0);
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, frame, 2, 10000 + T35, &consumed, &address, &pdu,
                                 &pdu_length),
             1);
    CHECK_EQ(consumed, 0);
    CHECK_EQ(address, 9);
}

TEST(rtu_decoder_a_sender_that_stops_mid_frame_is_dropped_at_the_silence) {
    struct mb_rtu_decoder decoder;
    mb_rtu_decoder_init(&decoder, 0, T35);
    uint8_t good[7];
    fc3_answer(1, 1, good);
    uint8_t address;
    const uint8_t *pdu;
    size_t pdu_length, consumed;
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, good, 4, 100, &consumed, &address, &pdu, &pdu_length),
             0);
    /* Its length is known, but a silence still ends it: a truncated frame, dropped. */
    CHECK_EQ(mb_rtu_decoder_deadline(&decoder), 100 + T35);
    int rc = mb_rtu_decoder_silence(&decoder, 100 + T35, &address, &pdu, &pdu_length);
    CHECK(rc == MB_ECRC || rc == MB_EFRAME);
    CHECK_EQ(decoder.errors, 1);
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, good, 7, 100 + 3 * T35, &consumed, &address, &pdu,
                                 &pdu_length),
             1);
}

TEST(rtu_decoder_a_run_of_bytes_longer_than_any_frame_is_dropped) {
    struct mb_rtu_decoder decoder;
    mb_rtu_decoder_init(&decoder, 1, T35);
    uint8_t run[400];
    for (size_t i = 0; i < sizeof run; i++)
        run[i] = i == 1 ? 0x41 : (uint8_t)(i * 7); /* an unjudgeable function, then garbage */
    uint8_t address;
    const uint8_t *pdu;
    size_t pdu_length, consumed;
    CHECK_EQ(
        mb_rtu_decoder_feed(&decoder, run, sizeof run, 100, &consumed, &address, &pdu, &pdu_length),
        MB_EFRAME);
    CHECK_EQ(consumed, sizeof run);
    CHECK_EQ(decoder.errors, 1);
    CHECK(decoder.held == 0);
}

TEST(rtu_decoder_any_chunking_of_a_stream_gives_back_exactly_its_frames) {
    uint8_t stream[64 * 7];
    for (int i = 0; i < 64; i++)
        fc3_answer((uint8_t)(1 + i % 247), (uint16_t)(i * 1000), stream + 7 * i);
    uint32_t seed = 12345;
    for (int trial = 0; trial < 200; trial++) {
        struct mb_rtu_decoder decoder;
        mb_rtu_decoder_init(&decoder, 0, T35);
        size_t offset = 0;
        int seen = 0, wrong = 0;
        uint64_t now = 1;
        while (offset < sizeof stream) {
            seed = seed * 1103515245u + 12345u;
            size_t chunk = 1 + (seed >> 16) % 23;
            if (chunk > sizeof stream - offset)
                chunk = sizeof stream - offset;
            size_t done = 0;
            while (done < chunk) {
                uint8_t address;
                const uint8_t *pdu;
                size_t pdu_length, consumed;
                int rc = mb_rtu_decoder_feed(&decoder, stream + offset + done, chunk - done, now,
                                             &consumed, &address, &pdu, &pdu_length);
                done += consumed;
                if (rc == 1) {
                    wrong += address != 1 + seen % 247 || pdu_length != 4 ||
                             ((pdu[2] << 8) | pdu[3]) != (uint16_t)(seen * 1000);
                    seen++;
                }
                wrong += rc < 0;
            }
            offset += chunk;
            now += 100; /* faster than t3.5: one burst */
        }
        CHECK_EQ(seen, 64);
        CHECK_EQ(wrong, 0);
    }
}

TEST(rtu_decoder_rejects_null_arguments) {
    struct mb_rtu_decoder decoder;
    mb_rtu_decoder_init(&decoder, 0, T35);
    uint8_t address, byte = 1;
    const uint8_t *pdu;
    size_t pdu_length, consumed;
    CHECK_EQ(mb_rtu_decoder_feed(NULL, &byte, 1, 1, &consumed, &address, &pdu, &pdu_length),
             MB_EINVAL);
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, NULL, 1, 1, &consumed, &address, &pdu, &pdu_length),
             MB_EINVAL);
    CHECK_EQ(mb_rtu_decoder_feed(&decoder, &byte, 1, 1, NULL, &address, &pdu, &pdu_length),
             MB_EINVAL);
    CHECK_EQ(mb_rtu_decoder_silence(&decoder, 1, NULL, &pdu, &pdu_length), MB_EINVAL);
    CHECK_EQ(mb_rtu_decoder_deadline(NULL), 0);
}

int main(void) {
    RUN(crc16_of_123456789_is_4b37);
    RUN(crc16_of_the_spec_requests_gives_84_0a_and_76_87);
    RUN(crc16_of_nothing_is_the_initial_value_ffff);
    RUN(crc16_agrees_with_the_bitwise_definition);
    RUN(crc16_over_a_frame_and_its_crc_is_0);
    RUN(encode_appends_the_crc_low_byte_first);
    RUN(encode_rejects_pdu_length_0_and_254_and_accepts_1_and_253);
    RUN(encode_rejects_null_buffers);
    RUN(encode_needs_room_for_the_whole_frame_and_writes_nothing_without_it);
    RUN(encode_accepts_a_pdu_built_in_place_after_the_address);
    RUN(encode_writes_any_address_as_given);
    RUN(decode_gives_the_address_and_a_view_of_the_pdu);
    RUN(decode_rejects_3_and_257_bytes_and_accepts_4_and_256);
    RUN(decode_rejects_every_single_bit_and_whole_byte_error);
    RUN(decode_reports_every_address_including_broadcast_and_reserved);
    RUN(decode_rejects_null_arguments);
    RUN(encode_then_decode_gives_back_address_and_pdu_for_every_length);
    RUN(only_fc_5_6_15_16_21_22_are_broadcastable);
    RUN(accept_replies_to_a_request_for_its_own_address);
    RUN(accept_ignores_other_devices_and_reserved_addresses);
    RUN(accept_processes_a_broadcast_write_silently);
    RUN(accept_ignores_a_broadcast_of_a_read_and_of_fc_8);
    RUN(accept_follows_the_rules_for_every_address_and_function_code);
    RUN(accept_refuses_an_own_address_of_0_or_248_to_255);
    RUN(timing_at_9600_baud_is_computed_from_11_bits_per_character);
    RUN(timing_at_19200_baud_is_computed_from_11_bits_per_character);
    RUN(timing_at_slow_rates_is_computed_too);
    RUN(timing_rounds_up_to_the_nearest_microsecond_at_every_computed_rate);
    RUN(timing_above_19200_baud_is_fixed_at_750_and_1750_us);
    RUN(timing_at_0_baud_is_invalid);
    RUN(frame_length_of_every_public_request);
    RUN(frame_length_of_every_public_response);
    RUN(frame_length_of_an_exception_response_is_5_for_every_function_code);
    RUN(frame_length_of_a_user_defined_or_reserved_function_code_cannot_be_judged);
    RUN(frame_length_of_a_request_with_the_exception_bit_cannot_be_judged);
    RUN(frame_length_of_fc8_return_query_data_cannot_be_judged);
    RUN(frame_length_of_fc43_with_another_mei_type_cannot_be_judged);
    RUN(frame_length_up_to_256_is_accepted_and_over_it_refused);
    RUN(frame_length_of_fc43_objects_past_256_bytes_is_refused_as_soon_as_known);
    RUN(frame_length_needs_the_function_code_first);
    RUN(rtu_decoder_ends_a_request_at_its_length_fed_byte_by_byte);
    RUN(rtu_decoder_splits_an_echo_and_an_answer_that_come_in_one_read);
    RUN(rtu_decoder_drops_a_bad_crc_skips_to_the_silence_and_takes_the_next_frame);
    RUN(rtu_decoder_on_a_stream_waits_for_the_rest_of_a_frame_of_known_length);
    RUN(rtu_decoder_noise_between_frames_is_one_error_and_no_frame_is_lost);
    RUN(rtu_decoder_ends_a_frame_of_unknown_length_at_the_silence);
    RUN(rtu_decoder_a_sender_that_stops_mid_frame_is_dropped_at_the_silence);
    RUN(rtu_decoder_a_run_of_bytes_longer_than_any_frame_is_dropped);
    RUN(rtu_decoder_any_chunking_of_a_stream_gives_back_exactly_its_frames);
    RUN(rtu_decoder_rejects_null_arguments);
    RUN(every_shared_rtu_vector_decodes_and_no_prefix_does);
    return harness_result();
}
