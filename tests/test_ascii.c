/* SPDX-License-Identifier: MIT */
#include <string.h>

#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/pdu.h"
#include "mbsec/serial.h"
#include "vectors.h"

/* Like CHECK_EQ, but names the case and a position, for table-driven tests. */
#define CHECK_CASE(got, want, name, n)                                                    \
    do {                                                                                  \
        long long got_ = (long long)(got), want_ = (long long)(want);                     \
        harness_checks++;                                                                 \
        if (got_ != want_)                                                                \
            harness_fail(__FILE__, __LINE__, "%s, at %zu: %s == %lld, want %lld", (name), \
                         (size_t)(n), #got, got_, want_);                                 \
    } while (0)

#define SPEC_FRAME ":1103006B00037E\r\n"
#define SPEC_FRAME_LENGTH (sizeof SPEC_FRAME - 1)

/* A fixed pseudo-random sequence, so that failures reproduce. */
static uint32_t random_state = 0x9E3779B9u;
static uint8_t random_byte(void) {
    random_state ^= random_state << 13;
    random_state ^= random_state >> 17;
    random_state ^= random_state << 5;
    return (uint8_t)(random_state >> 24);
}

/* The bytes of a string, at the end of a readable page. */
static const char *guard_text(const char *text, size_t length) {
    return (const char *)guard_copy(text, length);
}

/* Writes ':' hex(bytes) CR LF by hand, uppercase, with no LRC added: the caller includes it.
 * Builds frames the encoder refuses to make. Returns the length. */
static size_t hand_frame(const uint8_t *bytes, size_t count, char *out) {
    static const char digits[] = "0123456789ABCDEF";
    size_t n = 0;
    out[n++] = ':';
    for (size_t i = 0; i < count; i++) {
        out[n++] = digits[bytes[i] >> 4];
        out[n++] = digits[bytes[i] & 0x0F];
    }
    out[n++] = '\r';
    out[n++] = '\n';
    return n;
}

/* ---- LRC ---- */

TEST(lrc_of_the_spec_request_is_7e) {
    CHECK_EQ(mb_lrc(BYTES(0x11, 0x03, 0x00, 0x6B, 0x00, 0x03)), 0x7E);
}

TEST(lrc_of_nothing_is_0_and_of_one_byte_its_negation) {
    uint8_t byte = 0;
    CHECK_EQ(mb_lrc(&byte, 0), 0x00);
    CHECK_EQ(mb_lrc(BYTES(0x00)), 0x00);
    CHECK_EQ(mb_lrc(BYTES(0x01)), 0xFF);
    CHECK_EQ(mb_lrc(BYTES(0x80)), 0x80);
    CHECK_EQ(mb_lrc(BYTES(0xFF, 0xFF)), 0x02);
}

TEST(lrc_makes_the_sum_of_the_bytes_and_itself_0) {
    uint8_t data[300];
    for (size_t length = 0; length <= sizeof data; length++) {
        uint8_t sum = 0;
        for (size_t i = 0; i < length; i++) {
            data[i] = random_byte();
            sum = (uint8_t)(sum + data[i]);
        }
        CHECK_EQ((uint8_t)(sum + mb_lrc(data, length)), 0);
    }
}

/* ---- encoding ---- */

TEST(encode_gives_the_spec_frame) {
    char frame[64];
    memset(frame, '#', sizeof frame);
    CHECK_EQ(mb_ascii_encode(0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03), frame, sizeof frame), 17);
    CHECK(memcmp(frame, SPEC_FRAME, 17) == 0);
    CHECK_EQ(frame[17], '#');
}

TEST(encode_writes_uppercase_hex) {
    char frame[64];
    int length = mb_ascii_encode(0xAB, BYTES(0x10, 0xCD, 0xEF, 0x9A), frame, sizeof frame);
    CHECK_EQ(length, 15);
    /* LRC: 0xAB + 0x10 + 0xCD + 0xEF + 0x9A = 0x311, so 0x100 - 0x11 = 0xEF. */
    CHECK(length == 15 && memcmp(frame, ":AB10CDEF9AEF\r\n", 15) == 0);
}

TEST(encode_rejects_pdu_length_0_and_254_and_accepts_1_and_253) {
    uint8_t pdu[MB_PDU_MAX + 1];
    char frame[MB_ASCII_FRAME_MAX + 8];
    memset(pdu, 0xA5, sizeof pdu);
    pdu[0] = MB_FC_READ_EXCEPTION_STATUS;
    CHECK_EQ(mb_ascii_encode(1, pdu, 0, frame, sizeof frame), MB_EINVAL);
    CHECK_EQ(mb_ascii_encode(1, pdu, 1, frame, sizeof frame), 9);
    CHECK(memcmp(frame, ":0107F8\r\n", 9) == 0);
    CHECK_EQ(mb_ascii_encode(1, pdu, 253, frame, sizeof frame), 513);
    CHECK_EQ(frame[0], ':');
    CHECK_EQ(frame[511], '\r');
    CHECK_EQ(frame[512], '\n');
    CHECK_EQ(mb_ascii_encode(1, pdu, 254, frame, sizeof frame), MB_EINVAL);
}

TEST(encode_needs_room_for_the_whole_frame_and_writes_nothing_without_it) {
    char frame[MB_ASCII_FRAME_MAX + 1];
    memset(frame, '#', sizeof frame);
    CHECK_EQ(mb_ascii_encode(0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03), frame, 16), MB_ENOSPC);
    CHECK_EQ(mb_ascii_encode(0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03), frame, 0), MB_ENOSPC);
    for (size_t i = 0; i < sizeof frame; i++)
        CHECK_EQ(frame[i], '#');
    CHECK_EQ(mb_ascii_encode(0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03), frame, 17), 17);
    CHECK(memcmp(frame, SPEC_FRAME, 17) == 0);
    CHECK_EQ(frame[17], '#');

    uint8_t pdu_max[MB_PDU_MAX];
    memset(pdu_max, 0x3C, sizeof pdu_max);
    CHECK_EQ(mb_ascii_encode(0x11, pdu_max, sizeof pdu_max, frame, 512), MB_ENOSPC);
    CHECK_EQ(mb_ascii_encode(0x11, pdu_max, sizeof pdu_max, frame, 513), 513);
}

TEST(encode_rejects_null_buffers) {
    char frame[32];
    CHECK_EQ(mb_ascii_encode(1, NULL, 1, frame, sizeof frame), MB_EINVAL);
    CHECK_EQ(mb_ascii_encode(1, BYTES(0x07), NULL, 32), MB_EINVAL);
}

/* ---- decoding ---- */

/* Decodes `text` with room for the largest frame and returns the result. */
static int decode_text(const char *text, size_t length, uint8_t *address, const uint8_t **pdu,
                       size_t *pdu_length) {
    static uint8_t binary[(MB_ASCII_FRAME_MAX - 5) / 2];
    return mb_ascii_decode(text, length, binary, sizeof binary, address, pdu, pdu_length);
}

TEST(decode_gives_the_address_and_the_pdu_without_the_lrc) {
    uint8_t binary[6];
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    CHECK_EQ(mb_ascii_decode(SPEC_FRAME, SPEC_FRAME_LENGTH, binary, sizeof binary, &address, &pdu,
                             &pdu_length),
             0);
    CHECK_EQ(address, 0x11);
    CHECK(pdu == binary + 1);
    CHECK_BYTES(pdu, pdu_length, 0x03, 0x00, 0x6B, 0x00, 0x03);
    CHECK_EQ(binary[0], 0x11);
}

TEST(decode_accepts_lowercase_and_mixed_case_hex) {
    static const char *const frames[] = {":1103006b00037e\r\n", ":1103006B00037e\r\n",
                                         ":1103006b00037E\r\n"};
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        uint8_t address = 0;
        const uint8_t *pdu = NULL;
        size_t pdu_length = 0;
        CHECK_CASE(decode_text(frames[i], 17, &address, &pdu, &pdu_length), 0, frames[i], i);
        CHECK_EQ(address, 0x11);
        CHECK_BYTES(pdu, pdu_length, 0x03, 0x00, 0x6B, 0x00, 0x03);
    }
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    CHECK_EQ(decode_text(":ab10cdef9aef\r\n", 15, &address, &pdu, &pdu_length), 0);
    CHECK_EQ(address, 0xAB);
    CHECK_BYTES(pdu, pdu_length, 0x10, 0xCD, 0xEF, 0x9A);
}

TEST(decode_rejects_a_character_that_is_not_a_hex_digit_in_every_position) {
    /* The neighbours of each digit range, controls, and digits with the high bit set. */
    static const char not_hex[] = {
        '/',  ':',  '@',  'G', '`', 'g',        ' ',        'x',        'X',        '\r',
        '\n', '\0', '\t', '+', '-', (char)0x80, (char)0xB0, (char)0xC1, (char)0xE1, (char)0xFF};
    char frame[SPEC_FRAME_LENGTH];
    for (size_t position = 1; position < SPEC_FRAME_LENGTH - 2; position++) {
        for (size_t i = 0; i < sizeof not_hex; i++) {
            uint8_t address = 0;
            const uint8_t *pdu = NULL;
            size_t pdu_length = 0;
            memcpy(frame, SPEC_FRAME, sizeof frame);
            frame[position] = not_hex[i];
            CHECK_CASE(decode_text(frame, sizeof frame, &address, &pdu, &pdu_length), MB_ECHARACTER,
                       "non-hex character at position", position);
        }
    }
}

TEST(decode_rejects_an_odd_number_of_digits) {
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    CHECK_EQ(decode_text(":1103006B00037\r\n", 16, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(":1103006B00037E0\r\n", 18, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(":0103FCA\r\n", 10, &address, &pdu, &pdu_length), MB_EFRAME);
}

TEST(decode_rejects_a_frame_without_colon_first) {
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    CHECK_EQ(decode_text("1103006B00037E\r\n", 16, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(";1103006B00037E\r\n", 17, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(" :1103006B00037E\r\n", 18, &address, &pdu, &pdu_length), MB_EFRAME);
}

TEST(decode_rejects_a_frame_without_cr_lf_last) {
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    CHECK_EQ(decode_text(":1103006B00037E\r", 16, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(":1103006B00037E\n", 16, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(":1103006B00037E\n\r", 17, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(":1103006B00037E\r\r", 17, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(":1103006B00037E\r!", 17, &address, &pdu, &pdu_length), MB_EFRAME);
    /* The CR replaced, the digits still even: the second-to-last character is checked too. */
    CHECK_EQ(decode_text(":1103006B00037E\n\n", 17, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(":1103006B00037E0\n", 17, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(":1103006B00037E \n", 17, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(":1103006B00037E", 15, &address, &pdu, &pdu_length), MB_EFRAME);
}

TEST(decode_rejects_frames_shorter_than_9_and_longer_than_513) {
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    CHECK_EQ(decode_text(":\r\n", 3, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(":00\r\n", 5, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text(":0000\r\n", 7, &address, &pdu, &pdu_length), MB_EFRAME);
    CHECK_EQ(decode_text("", 0, &address, &pdu, &pdu_length), MB_EFRAME);
    /* The shortest frame: address, function code, LRC. */
    CHECK_EQ(decode_text(":0103FC\r\n", 9, &address, &pdu, &pdu_length), 0);
    CHECK_EQ(address, 0x01);
    CHECK_BYTES(pdu, pdu_length, 0x03);

    /* The longest: a 253-byte PDU in 513 characters; one byte more makes 515. */
    uint8_t bytes[256];
    char frame[520];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)i;
    bytes[254] = mb_lrc(bytes, 254);
    CHECK_EQ(hand_frame(bytes, 255, frame), 513);
    CHECK_EQ(decode_text(frame, 513, &address, &pdu, &pdu_length), 0);
    CHECK_EQ(pdu_length, 253);
    bytes[255] = mb_lrc(bytes, 255);
    CHECK_EQ(hand_frame(bytes, 256, frame), 515);
    CHECK_EQ(decode_text(frame, 515, &address, &pdu, &pdu_length), MB_EFRAME);
}

TEST(decode_rejects_a_wrong_lrc_and_every_changed_digit) {
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    CHECK_EQ(decode_text(":1103006B00037F\r\n", 17, &address, &pdu, &pdu_length), MB_ELRC);
    CHECK_EQ(decode_text(":1103006B000300\r\n", 17, &address, &pdu, &pdu_length), MB_ELRC);
    /* Any one digit changed shifts the sum by a nonzero amount modulo 256. */
    static const char digits[] = "0123456789ABCDEF";
    char frame[SPEC_FRAME_LENGTH];
    for (size_t position = 1; position < SPEC_FRAME_LENGTH - 2; position++) {
        for (size_t d = 0; d < 16; d++) {
            memcpy(frame, SPEC_FRAME, sizeof frame);
            if (frame[position] == digits[d])
                continue;
            frame[position] = digits[d];
            CHECK_CASE(decode_text(frame, sizeof frame, &address, &pdu, &pdu_length), MB_ELRC,
                       "changed digit at position", position);
        }
    }
}

TEST(decode_needs_room_for_address_and_pdu_only) {
    uint8_t binary[8];
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    /* (17 - 5) / 2 = 6 bytes: address and a PDU of 5. */
    CHECK_EQ(mb_ascii_decode(SPEC_FRAME, SPEC_FRAME_LENGTH, binary, 5, &address, &pdu, &pdu_length),
             MB_ENOSPC);
    CHECK_EQ(mb_ascii_decode(SPEC_FRAME, SPEC_FRAME_LENGTH, binary, 0, &address, &pdu, &pdu_length),
             MB_ENOSPC);
    memset(binary, 0xEE, sizeof binary);
    CHECK_EQ(mb_ascii_decode(SPEC_FRAME, SPEC_FRAME_LENGTH, binary, 6, &address, &pdu, &pdu_length),
             0);
    CHECK_BYTES(binary, 7, 0x11, 0x03, 0x00, 0x6B, 0x00, 0x03, 0xEE);
}

TEST(decode_rejects_null_arguments) {
    uint8_t binary[8];
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    CHECK_EQ(mb_ascii_decode(NULL, 17, binary, 8, &address, &pdu, &pdu_length), MB_EINVAL);
    CHECK_EQ(mb_ascii_decode(SPEC_FRAME, 17, NULL, 8, &address, &pdu, &pdu_length), MB_EINVAL);
    CHECK_EQ(mb_ascii_decode(SPEC_FRAME, 17, binary, 8, NULL, &pdu, &pdu_length), MB_EINVAL);
    CHECK_EQ(mb_ascii_decode(SPEC_FRAME, 17, binary, 8, &address, NULL, &pdu_length), MB_EINVAL);
    CHECK_EQ(mb_ascii_decode(SPEC_FRAME, 17, binary, 8, &address, &pdu, NULL), MB_EINVAL);
}

TEST(decode_reads_no_character_past_the_frame) {
    static const char *const frames[] = {SPEC_FRAME, ":0103FC\r\n", ":1103006b00037e\r\n",
                                         ":1103006B00037F\r\n", ":11G3006B00037E\r\n"};
    static const int results[] = {0, 0, 0, MB_ELRC, MB_ECHARACTER};
    for (size_t f = 0; f < sizeof frames / sizeof frames[0]; f++) {
        size_t length = strlen(frames[f]);
        for (size_t n = 0; n <= length; n++) {
            uint8_t address = 0;
            const uint8_t *pdu = NULL;
            size_t pdu_length = 0;
            const char *copy = guard_text(frames[f], n);
            CHECK_CASE(decode_text(copy, n, &address, &pdu, &pdu_length),
                       n < length ? MB_EFRAME : results[f], frames[f], n);
        }
    }
}

TEST(encode_then_decode_gives_back_address_and_pdu_for_every_length) {
    static const uint8_t addresses[] = {0, 1, 0x11, 247, 255};
    for (size_t a = 0; a < sizeof addresses; a++) {
        for (size_t length = 1; length <= MB_PDU_MAX; length++) {
            uint8_t pdu[MB_PDU_MAX];
            char frame[MB_ASCII_FRAME_MAX];
            for (size_t i = 0; i < length; i++)
                pdu[i] = random_byte();
            int frame_length = mb_ascii_encode(addresses[a], pdu, length, frame, sizeof frame);
            CHECK_CASE(frame_length, 2 * (int)length + 7, "encode", length);
            if (frame_length < 0)
                continue;
            uint8_t binary[MB_PDU_MAX + 1];
            uint8_t address = 0;
            const uint8_t *decoded = NULL;
            size_t decoded_length = 0;
            /* Exactly the room the header promises is enough. */
            CHECK_CASE(mb_ascii_decode(frame, (size_t)frame_length, binary,
                                       ((size_t)frame_length - 5) / 2, &address, &decoded,
                                       &decoded_length),
                       0, "decode", length);
            CHECK_EQ(address, addresses[a]);
            CHECK_CASE(decoded_length, length, "decoded length", length);
            CHECK(decoded != NULL && memcmp(decoded, pdu, length) == 0);
        }
    }
}

/* ---- stream decoder ---- */

#define MAX_EVENTS 16

/* What the decoder handed out: a frame (rc 1) or a dropped frame (rc < 0). */
struct event {
    int rc;
    uint8_t address;
    uint8_t pdu[MB_PDU_MAX];
    size_t pdu_length;
};

struct events {
    struct event list[MAX_EVENTS];
    size_t count;
};

static void add_frame(struct events *events, uint8_t address, const uint8_t *pdu,
                      size_t pdu_length) {
    struct event *event = &events->list[events->count++];
    event->rc = 1;
    event->address = address;
    memcpy(event->pdu, pdu, pdu_length);
    event->pdu_length = pdu_length;
}

static void add_error(struct events *events, int rc) {
    struct event *event = &events->list[events->count++];
    memset(event, 0, sizeof *event);
    event->rc = rc;
}

/* Feeds a whole chunk, calling again after each frame or error, as a caller would. */
static void feed_chunk(struct mb_ascii_decoder *decoder, const char *data, size_t length,
                       struct events *events) {
    size_t offset = 0;
    for (;;) {
        size_t consumed = (size_t)-1;
        uint8_t address = 0;
        const uint8_t *pdu = NULL;
        size_t pdu_length = 0;
        int rc = mb_ascii_decoder_feed(decoder, data + offset, length - offset, &consumed, &address,
                                       &pdu, &pdu_length);
        if (consumed > length - offset) {
            harness_fail(__FILE__, __LINE__, "consumed %zu of %zu", consumed, length - offset);
            return;
        }
        offset += consumed;
        if (rc == 0) {
            CHECK_EQ(offset, length);
            return;
        }
        CHECK(consumed > 0);
        if (events->count == MAX_EVENTS || consumed == 0) {
            harness_fail(__FILE__, __LINE__, "too many events");
            return;
        }
        if (rc == 1) {
            CHECK(pdu >= decoder->binary && pdu < decoder->binary + sizeof decoder->binary);
            add_frame(events, address, pdu, pdu_length);
        } else {
            add_error(events, rc);
        }
        if (offset == length)
            return;
    }
}

static int events_equal(const struct events *got, const struct events *want) {
    if (got->count != want->count)
        return 0;
    for (size_t i = 0; i < got->count; i++) {
        const struct event *g = &got->list[i], *w = &want->list[i];
        if (g->rc != w->rc || g->address != w->address || g->pdu_length != w->pdu_length ||
            memcmp(g->pdu, w->pdu, w->pdu_length) != 0)
            return 0;
    }
    return 1;
}

static void report_events(const char *label, const struct events *events) {
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < events->count; i++) {
        if (events->list[i].rc == 1)
            fprintf(stderr, " frame(%02X, %zu bytes)", events->list[i].address,
                    events->list[i].pdu_length);
        else
            fprintf(stderr, " %s", mb_error_name(events->list[i].rc));
    }
    fputc('\n', stderr);
}

#define CHECK_EVENTS(got, want, what, n)                                                        \
    do {                                                                                        \
        harness_checks++;                                                                       \
        if (!events_equal((got), (want))) {                                                     \
            harness_fail(__FILE__, __LINE__, "%s, at %zu: events differ", (what), (size_t)(n)); \
            report_events("got ", (got));                                                       \
            report_events("want", (want));                                                      \
        }                                                                                       \
    } while (0)

/* Feeds `stream` in one read, then split in two at every position, then a character at a
 * time, each piece at the end of a readable page: the events must always be `want`, and the
 * counters must agree with them. */
static void check_stream(const char *name, const char *stream, size_t length,
                         const struct events *want, uint8_t delimiter) {
    size_t want_frames = 0, want_errors = 0;
    for (size_t i = 0; i < want->count; i++) {
        if (want->list[i].rc == 1)
            want_frames++;
        else
            want_errors++;
    }
    struct mb_ascii_decoder decoder;
    static struct events got;
    for (size_t split = 0; split <= length; split++) {
        mb_ascii_decoder_init(&decoder);
        mb_ascii_decoder_set_delimiter(&decoder, delimiter);
        got.count = 0;
        feed_chunk(&decoder, guard_text(stream, split), split, &got);
        feed_chunk(&decoder, guard_text(stream + split, length - split), length - split, &got);
        CHECK_EVENTS(&got, want, name, split);
        CHECK_CASE(decoder.frames, want_frames, name, split);
        CHECK_CASE(decoder.errors, want_errors, name, split);
    }
    mb_ascii_decoder_init(&decoder);
    mb_ascii_decoder_set_delimiter(&decoder, delimiter);
    got.count = 0;
    for (size_t i = 0; i < length; i++)
        feed_chunk(&decoder, guard_text(stream + i, 1), 1, &got);
    CHECK_EVENTS(&got, want, name, length);
    CHECK_CASE(decoder.frames, want_frames, name, length);
    CHECK_CASE(decoder.errors, want_errors, name, length);
}

#define STREAM(text) text, sizeof text - 1

TEST(decoder_init_sets_lf_and_zeroes_the_counters) {
    struct mb_ascii_decoder decoder;
    memset(&decoder, 0x5A, sizeof decoder);
    mb_ascii_decoder_init(&decoder);
    CHECK_EQ(decoder.delimiter, '\n');
    CHECK_EQ(decoder.frames, 0);
    CHECK_EQ(decoder.errors, 0);
    CHECK_EQ(decoder.held, 0);
}

TEST(decoder_gives_the_spec_frame_split_at_every_position) {
    static struct events want;
    want.count = 0;
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    check_stream("spec frame", STREAM(SPEC_FRAME), &want, '\n');
}

TEST(decoder_gives_the_frame_and_says_how_much_it_consumed) {
    struct mb_ascii_decoder decoder;
    mb_ascii_decoder_init(&decoder);
    static const char input[] = "xx" SPEC_FRAME ":0103FC\r\n";
    size_t consumed = 0;
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, input, sizeof input - 1, &consumed, &address, &pdu,
                                   &pdu_length),
             1);
    CHECK_EQ(consumed, 2 + SPEC_FRAME_LENGTH);
    CHECK_EQ(address, 0x11);
    CHECK_BYTES(pdu, pdu_length, 0x03, 0x00, 0x6B, 0x00, 0x03);
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, input + consumed, sizeof input - 1 - consumed,
                                   &consumed, &address, &pdu, &pdu_length),
             1);
    CHECK_EQ(consumed, 9);
    CHECK_EQ(address, 0x01);
    CHECK_BYTES(pdu, pdu_length, 0x03);
    CHECK_EQ(decoder.frames, 2);
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, "abc", 3, &consumed, &address, &pdu, &pdu_length), 0);
    CHECK_EQ(consumed, 3);
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, "", 0, &consumed, &address, &pdu, &pdu_length), 0);
    CHECK_EQ(consumed, 0);
}

TEST(decoder_gives_several_frames_from_one_buffer) {
    static struct events want;
    want.count = 0;
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    add_frame(&want, 0x01, BYTES(0x03));
    add_frame(&want, 0xF7, BYTES(0x10, 0x00, 0x01, 0x00, 0x01, 0x02, 0xAB, 0xCD));
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    /* The third LRC: 0xF7 + 0x10 + 0x01 + 0x01 + 0x02 + 0xAB + 0xCD = 0x283, so 0x7D. */
    check_stream("four frames",
                 STREAM(SPEC_FRAME ":0103FC\r\n:F7100001000102ABCD7D\r\n" SPEC_FRAME), &want, '\n');
}

TEST(decoder_skips_garbage_between_frames) {
    static struct events want;
    want.count = 0;
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    add_frame(&want, 0x01, BYTES(0x03));
    check_stream("garbage",
                 STREAM("noise 1103006B00037E\r\n\r\n" SPEC_FRAME "\r\n\n\r\x01\x7f\xff zz 12 "
                        ":0103FC\r\nAB\r\n"),
                 &want, '\n');
}

TEST(decoder_restarts_at_a_colon_inside_a_frame) {
    static struct events want;
    want.count = 0;
    add_error(&want, MB_EFRAME);
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    add_error(&want, MB_EFRAME);
    add_frame(&want, 0x01, BYTES(0x03));
    /* The second partial frame has its CR already: a ':' instead of LF still restarts. */
    check_stream("restart", STREAM(":1103" SPEC_FRAME ":1103006B00037E\r:0103FC\r\n"), &want, '\n');
    want.count = 0;
    add_error(&want, MB_EFRAME);
    add_error(&want, MB_EFRAME);
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    check_stream("colons", STREAM("::" SPEC_FRAME), &want, '\n');
}

TEST(decoder_drops_a_line_over_513_characters_and_decodes_the_next_frame) {
    static char stream[2048];
    static struct events want;
    size_t length = 0;
    /* ':' and 600 digits: dropped once, and the rest of the line is skipped. */
    stream[length++] = ':';
    for (size_t i = 0; i < 600; i++)
        stream[length++] = '0';
    memcpy(stream + length, "\r\n" SPEC_FRAME, 2 + SPEC_FRAME_LENGTH);
    length += 2 + SPEC_FRAME_LENGTH;
    want.count = 0;
    add_error(&want, MB_EFRAME);
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    check_stream("600 digits", stream, length, &want, '\n');

    /* The line is dropped at its 513th character, the first that cannot end a frame. */
    struct mb_ascii_decoder decoder;
    size_t consumed = 0;
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    mb_ascii_decoder_init(&decoder);
    CHECK_EQ(
        mb_ascii_decoder_feed(&decoder, stream, length, &consumed, &address, &pdu, &pdu_length),
        MB_EFRAME);
    CHECK_EQ(consumed, 513);
    CHECK_EQ(decoder.errors, 1);

    /* 513 characters is a frame; 514 and 515 are not, even with a correct LRC. */
    uint8_t bytes[256];
    for (size_t i = 0; i < sizeof bytes; i++)
        bytes[i] = (uint8_t)(0xFF - i);
    bytes[254] = mb_lrc(bytes, 254);
    length = hand_frame(bytes, 255, stream);
    CHECK_EQ(length, 513);
    memcpy(stream + length, SPEC_FRAME, SPEC_FRAME_LENGTH);
    length += SPEC_FRAME_LENGTH;
    want.count = 0;
    add_frame(&want, 0xFF, bytes + 1, 253);
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    check_stream("513 characters", stream, length, &want, '\n');

    length = hand_frame(bytes, 255, stream);
    memmove(stream + 2, stream + 1, length - 1); /* one digit more: 514 characters */
    length++;
    memcpy(stream + length, SPEC_FRAME, SPEC_FRAME_LENGTH);
    length += SPEC_FRAME_LENGTH;
    want.count = 0;
    add_error(&want, MB_EFRAME);
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    check_stream("514 characters", stream, length, &want, '\n');

    bytes[255] = mb_lrc(bytes, 255);
    length = hand_frame(bytes, 256, stream);
    CHECK_EQ(length, 515);
    memcpy(stream + length, SPEC_FRAME, SPEC_FRAME_LENGTH);
    length += SPEC_FRAME_LENGTH;
    check_stream("515 characters", stream, length, &want, '\n');

    /* A CR in place of the last character of the longest frame's LF is no end either. */
    length = hand_frame(bytes, 255, stream);
    stream[length - 1] = '\r';
    memcpy(stream + length, "\n" SPEC_FRAME, 1 + SPEC_FRAME_LENGTH);
    length += 1 + SPEC_FRAME_LENGTH;
    check_stream("CR CR LF at 513", stream, length, &want, '\n');
}

TEST(decoder_ends_frames_with_cr_and_a_changed_delimiter) {
    static struct events want;
    want.count = 0;
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    add_frame(&want, 0x01, BYTES(0x03));
    check_stream("delimiter !", STREAM(":1103006B00037E\r!xyz\r\n:0103FC\r!"), &want, '!');

    /* With the delimiter changed, CR LF ends nothing: the LF joins the frame, which the next
     * ':' drops. */
    want.count = 0;
    add_error(&want, MB_EFRAME);
    add_frame(&want, 0x01, BYTES(0x03));
    check_stream("LF after change", STREAM(SPEC_FRAME ":0103FC\r!"), &want, '!');

    /* A delimiter of CR: CR CR ends the frame. */
    want.count = 0;
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    check_stream("delimiter CR", STREAM(":1103006B00037E\r\r"), &want, '\r');
}

TEST(decoder_set_delimiter_takes_effect_and_init_restores_lf) {
    struct mb_ascii_decoder decoder;
    size_t consumed = 0;
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    mb_ascii_decoder_init(&decoder);
    mb_ascii_decoder_set_delimiter(&decoder, '!');
    CHECK_EQ(decoder.delimiter, '!');
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, STREAM(":0103FC\r!"), &consumed, &address, &pdu,
                                   &pdu_length),
             1);
    /* Init drops a partial frame too. */
    CHECK_EQ(
        mb_ascii_decoder_feed(&decoder, STREAM(":0103"), &consumed, &address, &pdu, &pdu_length),
        0);
    mb_ascii_decoder_init(&decoder);
    CHECK_EQ(decoder.delimiter, '\n');
    CHECK_EQ(decoder.frames, 0);
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, STREAM("FC\r\n:0103FC\r\n"), &consumed, &address, &pdu,
                                   &pdu_length),
             1);
    CHECK_EQ(consumed, 13);
    CHECK_EQ(decoder.errors, 0);
}

TEST(decoder_drops_bad_frames_and_goes_on) {
    static struct events want;
    want.count = 0;
    add_error(&want, MB_ELRC);
    add_frame(&want, 0x01, BYTES(0x03));
    add_error(&want, MB_ECHARACTER);
    add_error(&want, MB_EFRAME);
    add_error(&want, MB_EFRAME);
    add_error(&want, MB_EFRAME);
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6B, 0x00, 0x03));
    add_error(&want, MB_ECHARACTER);
    add_frame(&want, 0x11, BYTES(0x03, 0x00, 0x6b, 0x00, 0x03));
    check_stream("bad frames",
                 STREAM(":1103006B00037F\r\n"    /* wrong LRC */
                        ":0103FC\r\n"            /* good */
                        ":11G3006B00037E\r\n"    /* not hex */
                        ":1103006B00037\r\n"     /* odd digits */
                        ":\r\n"                  /* empty */
                        ":0000\r\n"              /* too short */
                        SPEC_FRAME               /* good */
                        ":1103006B00037E\rX\r\n" /* a CR that ends nothing */
                        ":1103006b00037e\r\n"),  /* good, lowercase */
                 &want, '\n');
}

TEST(decoder_reads_no_character_past_any_prefix) {
    static const char *const frames[] = {SPEC_FRAME, ":0103FC\r\n", ":1103006B00037F\r\n",
                                         ("junk" SPEC_FRAME), ":12:0103FC\r\n"};
    static const int results[] = {1, 1, MB_ELRC, 1, 1};
    for (size_t f = 0; f < sizeof frames / sizeof frames[0]; f++) {
        size_t length = strlen(frames[f]);
        for (size_t n = 0; n <= length; n++) {
            struct mb_ascii_decoder decoder;
            size_t consumed = 0, offset = 0;
            uint8_t address = 0;
            const uint8_t *pdu = NULL;
            size_t pdu_length = 0;
            int rc, calls = 0;
            mb_ascii_decoder_init(&decoder);
            const char *copy = guard_text(frames[f], n);
            /* On past a dropped partial frame, to the result the prefix ends with. */
            do {
                rc = mb_ascii_decoder_feed(&decoder, copy + offset, n - offset, &consumed, &address,
                                           &pdu, &pdu_length);
                offset += consumed;
            } while (rc < 0 && rc != results[f] && ++calls < 8);
            CHECK_CASE(rc, n < length ? 0 : results[f], frames[f], n);
            CHECK_CASE(offset, n, frames[f], n);
        }
    }
}

TEST(decoder_refuses_null_arguments) {
    struct mb_ascii_decoder decoder;
    size_t consumed = 0;
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    mb_ascii_decoder_init(&decoder);
    CHECK_EQ(mb_ascii_decoder_feed(NULL, "x", 1, &consumed, &address, &pdu, &pdu_length),
             MB_EINVAL);
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, NULL, 1, &consumed, &address, &pdu, &pdu_length),
             MB_EINVAL);
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, "x", 1, NULL, &address, &pdu, &pdu_length), MB_EINVAL);
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, "x", 1, &consumed, NULL, &pdu, &pdu_length),
             MB_EINVAL);
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, "x", 1, &consumed, &address, NULL, &pdu_length),
             MB_EINVAL);
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, "x", 1, &consumed, &address, &pdu, NULL), MB_EINVAL);
    CHECK_EQ(mb_ascii_decoder_feed(&decoder, NULL, 0, &consumed, &address, &pdu, &pdu_length), 0);
    CHECK_EQ(consumed, 0);
}

/* ---- the shared vectors ---- */

TEST(every_shared_ascii_vector_decodes_alone_and_from_a_stream) {
    size_t seen = 0;
    for (size_t v = 0; v < vector_count; v++) {
        if (vectors[v].kind != VECTOR_ASCII_FRAME)
            continue;
        seen++;
        const char *text = (const char *)vectors[v].bytes;
        size_t length = vectors[v].length;
        uint8_t address = 0;
        const uint8_t *pdu = NULL;
        size_t pdu_length = 0;
        CHECK_CASE(decode_text(guard_text(text, length), length, &address, &pdu, &pdu_length), 0,
                   vectors[v].name, length);
        static struct events want;
        want.count = 0;
        add_frame(&want, address, pdu, pdu_length);
        check_stream(vectors[v].name, text, length, &want, '\n');
        for (size_t n = 0; n < length; n++)
            CHECK_CASE(decode_text(guard_text(text, n), n, &address, &pdu, &pdu_length), MB_EFRAME,
                       vectors[v].name, n);
    }
    CHECK(seen > 0);
}

int main(void) {
    RUN(lrc_of_the_spec_request_is_7e);
    RUN(lrc_of_nothing_is_0_and_of_one_byte_its_negation);
    RUN(lrc_makes_the_sum_of_the_bytes_and_itself_0);
    RUN(encode_gives_the_spec_frame);
    RUN(encode_writes_uppercase_hex);
    RUN(encode_rejects_pdu_length_0_and_254_and_accepts_1_and_253);
    RUN(encode_needs_room_for_the_whole_frame_and_writes_nothing_without_it);
    RUN(encode_rejects_null_buffers);
    RUN(decode_gives_the_address_and_the_pdu_without_the_lrc);
    RUN(decode_accepts_lowercase_and_mixed_case_hex);
    RUN(decode_rejects_a_character_that_is_not_a_hex_digit_in_every_position);
    RUN(decode_rejects_an_odd_number_of_digits);
    RUN(decode_rejects_a_frame_without_colon_first);
    RUN(decode_rejects_a_frame_without_cr_lf_last);
    RUN(decode_rejects_frames_shorter_than_9_and_longer_than_513);
    RUN(decode_rejects_a_wrong_lrc_and_every_changed_digit);
    RUN(decode_needs_room_for_address_and_pdu_only);
    RUN(decode_rejects_null_arguments);
    RUN(decode_reads_no_character_past_the_frame);
    RUN(encode_then_decode_gives_back_address_and_pdu_for_every_length);
    RUN(decoder_init_sets_lf_and_zeroes_the_counters);
    RUN(decoder_gives_the_spec_frame_split_at_every_position);
    RUN(decoder_gives_the_frame_and_says_how_much_it_consumed);
    RUN(decoder_gives_several_frames_from_one_buffer);
    RUN(decoder_skips_garbage_between_frames);
    RUN(decoder_restarts_at_a_colon_inside_a_frame);
    RUN(decoder_drops_a_line_over_513_characters_and_decodes_the_next_frame);
    RUN(decoder_ends_frames_with_cr_and_a_changed_delimiter);
    RUN(decoder_set_delimiter_takes_effect_and_init_restores_lf);
    RUN(decoder_drops_bad_frames_and_goes_on);
    RUN(decoder_reads_no_character_past_any_prefix);
    RUN(decoder_refuses_null_arguments);
    RUN(every_shared_ascii_vector_decodes_alone_and_from_a_stream);
    return harness_result();
}
