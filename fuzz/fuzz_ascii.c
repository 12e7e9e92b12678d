/* SPDX-License-Identifier: MIT */
/*
 * ASCII frames: mb_ascii_decode() and the mb_ascii_decoder stream against any characters.
 * Properties:
 *   - decoding returns 0 or a documented error (never MB_ENOSPC with the documented
 *     (length - 5) / 2 bytes of room); on success the frame re-encodes to the input, ignoring
 *     the case of hex digits, and an encoder short of one byte refuses with MB_ENOSPC;
 *   - the input as address and PDU, encoded, decodes to itself;
 *   - the stream decoder, fed whole, one character at a time, in sizes taken from the input and
 *     in pseudo-random sizes, hands out the same frames and the same per-frame errors; a 0
 *     return consumed everything; each frame it hands out re-encodes and decodes to itself,
 *     and (fed whole, with the LF delimiter) equals what mb_ascii_decode() makes of its line.
 * An input starting with '!' sets the stream's delimiter to its second character.
 */
#include <ctype.h>
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mbsec/serial.h"

static int equal_ignoring_case(const char *a, const char *b, size_t length) {
    for (size_t i = 0; i < length; i++)
        if (tolower((unsigned char)a[i]) != tolower((unsigned char)b[i]))
            return 0;
    return 1;
}

/* Encodes address and PDU, checks the encoder's edges, and returns the frame (caller frees). */
static char *encode_frame(uint8_t address, const uint8_t *pdu, size_t pdu_length,
                          size_t *frame_length) {
    size_t length = 5 + 2 * (1 + pdu_length);
    char *frame = (char *)fuzz_buffer(length);
    FUZZ_CHECK(mb_ascii_encode(address, pdu, pdu_length, frame, length) == (int)length);
    FUZZ_CHECK(frame[0] == ':' && frame[length - 2] == '\r' && frame[length - 1] == '\n');
    char *short_buffer = (char *)fuzz_buffer(length - 1);
    FUZZ_CHECK(mb_ascii_encode(address, pdu, pdu_length, short_buffer, length - 1) == MB_ENOSPC);
    free(short_buffer);
    *frame_length = length;
    return frame;
}

/* Decodes a frame that must be good, into exactly the documented room, and checks the views. */
static void decode_good_frame(const char *frame, size_t length, uint8_t want_address,
                              const uint8_t *want_pdu, size_t want_pdu_length) {
    size_t capacity = (length - 5) / 2;
    uint8_t *binary = fuzz_buffer(capacity);
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;
    FUZZ_CHECK(mb_ascii_decode(frame, length, binary, capacity, &address, &pdu, &pdu_length) == 0);
    FUZZ_CHECK(address == want_address);
    FUZZ_CHECK(pdu_length == want_pdu_length);
    FUZZ_CHECK(memcmp(pdu, want_pdu, pdu_length) == 0);
    free(binary);
}

static void check_whole_frame(const uint8_t *data, size_t size) {
    const char *frame = (const char *)data;
    size_t capacity = size >= 5 ? (size - 5) / 2 : 0;
    uint8_t *binary = fuzz_buffer(capacity);
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;

    int decoded = mb_ascii_decode(frame, size, binary, capacity, &address, &pdu, &pdu_length);
    FUZZ_CHECK(decoded == 0 || decoded == MB_EFRAME || decoded == MB_ECHARACTER ||
               decoded == MB_ELRC);
    if (decoded == 0) {
        FUZZ_CHECK(size >= MB_ASCII_FRAME_MIN && size <= MB_ASCII_FRAME_MAX);
        FUZZ_CHECK(binary[0] == address);
        FUZZ_CHECK(pdu == binary + 1);
        FUZZ_CHECK(pdu_length == (size - 7) / 2);
        FUZZ_CHECK(pdu_length >= 1 && pdu_length <= MB_PDU_MAX);
        size_t encoded_length;
        char *encoded = encode_frame(address, pdu, pdu_length, &encoded_length);
        FUZZ_CHECK(encoded_length == size);
        FUZZ_CHECK(equal_ignoring_case(encoded, frame, size));
        free(encoded);
    }
    free(binary);
}

static void check_encoded_input(const uint8_t *data, size_t size) {
    if (size < 2 || size - 1 > MB_PDU_MAX)
        return;
    size_t length;
    char *frame = encode_frame(data[0], data + 1, size - 1, &length);
    decode_good_frame(frame, length, data[0], data + 1, size - 1);
    free(frame);
}

/* ---- the stream decoder ---- */

static void log_event(struct fuzz_log *log, int rc, uint8_t address, const uint8_t *pdu,
                      size_t pdu_length) {
    fuzz_log_u32(log, (uint32_t)rc);
    if (rc == 1) {
        fuzz_log_u32(log, address);
        fuzz_log_u32(log, (uint32_t)pdu_length);
        fuzz_log_append(log, pdu, pdu_length);
    }
}

/* Fed whole, the frame's line is the input from its last ':' to where the decoder stopped. */
static void check_line(const uint8_t *input, size_t frame_end, uint8_t address, const uint8_t *pdu,
                       size_t pdu_length) {
    size_t start = frame_end;
    while (start > 0 && input[start - 1] != ':')
        start--;
    FUZZ_CHECK(start > 0);
    start--;
    decode_good_frame((const char *)input + start, frame_end - start, address, pdu, pdu_length);
}

static void decode_stream(const uint8_t *data, size_t size, enum fuzz_chunking chunking,
                          struct fuzz_log *events) {
    struct mb_ascii_decoder decoder;
    struct fuzz_chunker chunker;
    size_t offset = 0;
    uint32_t frames = 0;
    int started = 0;
    int delimiter = size >= 2 && data[0] == '!' ? data[1] : '\n';

    mb_ascii_decoder_init(&decoder);
    if (delimiter != '\n')
        mb_ascii_decoder_set_delimiter(&decoder, (uint8_t)delimiter);
    fuzz_chunker_init(&chunker, chunking, data, size);
    while (offset < size || !started) {
        size_t chunk = fuzz_chunk_next(&chunker, size - offset);
        char *copy = (char *)fuzz_copy(data + offset, chunk);
        size_t used = 0;
        int idle_events = 0;
        started = 1;
        for (;;) {
            uint8_t address = 0;
            const uint8_t *pdu = NULL;
            size_t pdu_length = 0;
            size_t consumed = (size_t)-1;
            int rc = mb_ascii_decoder_feed(&decoder, copy + used, chunk - used, &consumed, &address,
                                           &pdu, &pdu_length);
            FUZZ_CHECK(consumed <= chunk - used);
            used += consumed;
            if (rc == 0) {
                FUZZ_CHECK(used == chunk);
                break;
            }
            /* An event that consumed nothing may happen once, not twice in a row. */
            idle_events = consumed == 0 ? idle_events + 1 : 0;
            FUZZ_CHECK(idle_events <= 1);
            log_event(events, rc, address, pdu, pdu_length);
            if (rc < 0) {
                FUZZ_CHECK(rc == MB_EFRAME || rc == MB_ECHARACTER || rc == MB_ELRC);
                continue;
            }
            FUZZ_CHECK(rc == 1);
            FUZZ_CHECK(pdu_length >= 1 && pdu_length <= MB_PDU_MAX);
            frames++;
            size_t length;
            char *frame = encode_frame(address, pdu, pdu_length, &length);
            decode_good_frame(frame, length, address, pdu, pdu_length);
            free(frame);
            if (chunking == FUZZ_CHUNK_WHOLE && delimiter == '\n')
                check_line((const uint8_t *)copy, used, address, pdu, pdu_length);
        }
        free(copy);
        offset += chunk;
    }
    FUZZ_CHECK(decoder.frames == frames);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *input = fuzz_copy(data, size);
    check_whole_frame(input, size);
    check_encoded_input(input, size);

    struct fuzz_log reference = {0};
    decode_stream(input, size, FUZZ_CHUNK_WHOLE, &reference);
    for (int chunking = FUZZ_CHUNK_WHOLE + 1; chunking < FUZZ_CHUNKINGS; chunking++) {
        struct fuzz_log events = {0};
        decode_stream(input, size, (enum fuzz_chunking)chunking, &events);
        FUZZ_CHECK(fuzz_log_equal(&events, &reference));
        fuzz_log_free(&events);
    }
    fuzz_log_free(&reference);
    free(input);
    return 0;
}
