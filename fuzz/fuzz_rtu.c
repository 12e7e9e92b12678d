/* SPDX-License-Identifier: MIT */
/*
 * RTU frames: mb_rtu_decode() and mb_rtu_frame_length() against any bytes. Properties:
 *   - decoding fails with MB_EFRAME outside 4..256 bytes, else succeeds exactly when the CRC
 *     matches, and then re-encodes to the input (and refuses a buffer one byte smaller);
 *   - mb_rtu_frame_length() in both directions returns 0, 4..256, MB_EFUNCTION or MB_EFRAME,
 *     knows the answer once 256 bytes are there, and never changes its mind as bytes arrive:
 *     every prefix says "need more" (0) or the same answer, and a length it gives for a frame
 *     that is all there is given again for exactly that many bytes;
 *   - a frame whose PDU decodes as a request (response) is judged to be exactly its length
 *     in that direction, unless its length cannot be judged from the function code.
 * The input is also framed as address and PDU with a correct CRC, so that the properties of
 * decodable frames are exercised without the fuzzer having to guess CRCs; and it is fed to the
 * stream decoder (mb_rtu_decoder) in reads and gaps the input chooses (check_stream()).
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mbsec/pdu.h"
#include "mbsec/serial.h"

/* Prefixes scanned for mb_rtu_frame_length(): a little past the largest frame. */
#define PREFIX_SCAN_MAX (MB_RTU_FRAME_MAX + 8)

static int frame_length_of_prefix(uint8_t *scratch, const uint8_t *data, size_t prefix,
                                  int is_request) {
    /* The prefix ends where the allocation ends, so reading past it is caught. */
    uint8_t *start = scratch + PREFIX_SCAN_MAX - prefix;
    memcpy(start, data, prefix);
    return mb_rtu_frame_length(start, prefix, is_request);
}

static void check_frame_length(const uint8_t *data, size_t size, int is_request) {
    int length = mb_rtu_frame_length(data, size, is_request);
    FUZZ_CHECK(length == 0 || length == MB_EFUNCTION || length == MB_EFRAME ||
               (length >= MB_RTU_FRAME_MIN && length <= MB_RTU_FRAME_MAX));
    if (size >= MB_RTU_FRAME_MAX)
        FUZZ_CHECK(length != 0);

    uint8_t *scratch = fuzz_buffer(PREFIX_SCAN_MAX);
    size_t scan = size < PREFIX_SCAN_MAX ? size : PREFIX_SCAN_MAX;
    for (size_t prefix = 0; prefix <= scan; prefix++) {
        int judged = frame_length_of_prefix(scratch, data, prefix, is_request);
        FUZZ_CHECK(judged == 0 || judged == length);
    }
    if (length > 0 && (size_t)length <= size)
        FUZZ_CHECK(frame_length_of_prefix(scratch, data, (size_t)length, is_request) == length);
    free(scratch);
}

/* Function codes whose frame length the function code and byte count cannot tell. */
static int length_may_be_unknown(const uint8_t *pdu, size_t pdu_length) {
    uint8_t function = pdu[0];
    if (mb_function_is_user_defined(function))
        return 1;
    if (function == MB_FC_ENCAPSULATED_INTERFACE && pdu_length >= 2 && pdu[1] != MB_MEI_DEVICE_ID)
        return 1;
    /* FC 8 sub-function 00 echoes any amount of data. */
    if (function == MB_FC_DIAGNOSTICS && pdu_length >= 3 &&
        mb_get_u16(pdu + 1) == MB_DIAG_RETURN_QUERY_DATA)
        return 1;
    return 0;
}

static void check_decoded(const uint8_t *frame, size_t size, uint8_t address, const uint8_t *pdu,
                          size_t pdu_length) {
    FUZZ_CHECK(address == frame[0]);
    FUZZ_CHECK(pdu == frame + 1);
    FUZZ_CHECK(pdu_length == size - 3);
    FUZZ_CHECK(pdu_length >= 1 && pdu_length <= MB_PDU_MAX);

    uint8_t *encoded = fuzz_buffer(size);
    FUZZ_CHECK(mb_rtu_encode(address, pdu, pdu_length, encoded, size) == (int)size);
    FUZZ_CHECK(memcmp(encoded, frame, size) == 0);
    free(encoded);
    uint8_t *short_buffer = fuzz_buffer(size - 1);
    FUZZ_CHECK(mb_rtu_encode(address, pdu, pdu_length, short_buffer, size - 1) == MB_ENOSPC);
    free(short_buffer);

    struct mb_request request;
    struct mb_response response;
    if (mb_request_decode(pdu, pdu_length, &request) == 0) {
        int length = mb_rtu_frame_length(frame, size, 1);
        FUZZ_CHECK(length == (int)size ||
                   (length == MB_EFUNCTION && length_may_be_unknown(pdu, pdu_length)));
    }
    if (mb_response_decode(pdu, pdu_length, &response) == 0) {
        int length = mb_rtu_frame_length(frame, size, 0);
        FUZZ_CHECK(length == (int)size ||
                   (length == MB_EFUNCTION && length_may_be_unknown(pdu, pdu_length)));
    }
}

/*
 * The stream decoder over the input cut into reads: each read's length and the gap before it
 * come from the input itself. Properties: every call returns 1, 0, MB_ECRC or MB_EFRAME; a read
 * is always consumed in a bounded number of calls; every frame handed out has a correct CRC
 * (re-encoded, it decodes to itself) and a PDU of 1..253 bytes; nothing held ever passes 256
 * bytes; the counters add up to what was returned. On a stream (mb_rtu_decoder_set_stream()) a
 * silence leaves held only the start of a frame whose length is known and not reached.
 */
static void check_stream(const uint8_t *data, size_t size, int is_request, int stream) {
    struct mb_rtu_decoder decoder;
    mb_rtu_decoder_init(&decoder, is_request, 1750);
    mb_rtu_decoder_set_stream(&decoder, stream);
    uint64_t now = 1;
    uint8_t address;
    const uint8_t *pdu;
    size_t pdu_length;
    size_t offset = 0, step = 0;
    uint32_t frames = 0, errors = 0;
    while (offset < size) {
        uint8_t control = data[step++ % size];
        size_t chunk = 1 + control % 37;
        if (chunk > size - offset)
            chunk = size - offset;
        now += (control & 0x80) ? 5000 : 100; /* a silence, or the same burst */
        size_t consumed, done = 0;
        int calls = 0;
        while (done < chunk) {
            int rc = mb_rtu_decoder_feed(&decoder, data + offset + done, chunk - done, now,
                                         &consumed, &address, &pdu, &pdu_length);
            FUZZ_CHECK(rc == 1 || rc == 0 || rc == MB_ECRC || rc == MB_EFRAME);
            FUZZ_CHECK(consumed <= chunk - done);
            FUZZ_CHECK(decoder.held <= MB_RTU_FRAME_MAX);
            FUZZ_CHECK(++calls <= 2 * (int)chunk + 2);
            done += consumed;
            if (rc == 1) {
                frames++;
                FUZZ_CHECK(pdu_length >= 1 && pdu_length <= MB_PDU_MAX);
                uint8_t again[MB_RTU_FRAME_MAX];
                int length = mb_rtu_encode(address, pdu, pdu_length, again, sizeof again);
                FUZZ_CHECK(length == (int)pdu_length + 3);
            } else if (rc < 0) {
                errors++;
            }
        }
        offset += chunk;
        if (control & 0x40) {
            uint64_t deadline = mb_rtu_decoder_deadline(&decoder);
            FUZZ_CHECK(deadline == 0 || deadline > now);
            now += 5000;
            int rc = mb_rtu_decoder_silence(&decoder, now, &address, &pdu, &pdu_length);
            FUZZ_CHECK(rc == 1 || rc == 0 || rc == MB_ECRC || rc == MB_EFRAME);
            frames += rc == 1;
            errors += rc < 0;
            if (decoder.held > 0 && stream) {
                int whole = mb_rtu_frame_length(decoder.frame, decoder.held, is_request);
                FUZZ_CHECK(!decoder.skipping && (whole == 0 || whole > (int)decoder.held));
            } else {
                FUZZ_CHECK(decoder.held == 0 && !decoder.skipping);
            }
        }
    }
    FUZZ_CHECK(decoder.frames == frames && decoder.errors == errors);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *frame = fuzz_copy(data, size);
    uint8_t address = 0;
    const uint8_t *pdu = NULL;
    size_t pdu_length = 0;

    int decoded = mb_rtu_decode(frame, size, &address, &pdu, &pdu_length);
    if (size < MB_RTU_FRAME_MIN || size > MB_RTU_FRAME_MAX) {
        FUZZ_CHECK(decoded == MB_EFRAME);
    } else {
        uint16_t crc = (uint16_t)(frame[size - 2] | frame[size - 1] << 8);
        FUZZ_CHECK(decoded == (mb_crc16(frame, size - 2) == crc ? 0 : MB_ECRC));
    }
    if (decoded == 0)
        check_decoded(frame, size, address, pdu, pdu_length);

    check_frame_length(frame, size, 1);
    check_frame_length(frame, size, 0);
    check_stream(frame, size, 1, 0);
    check_stream(frame, size, 0, 0);
    check_stream(frame, size, 1, 1);
    check_stream(frame, size, 0, 1);

    /* The input as address and PDU: framed with a correct CRC, it must decode to itself. */
    if (size >= 2 && size - 1 <= MB_PDU_MAX) {
        size_t framed_size = size + 2;
        uint8_t *framed = fuzz_buffer(framed_size);
        FUZZ_CHECK(mb_rtu_encode(frame[0], frame + 1, size - 1, framed, framed_size) ==
                   (int)framed_size);
        FUZZ_CHECK(mb_rtu_decode(framed, framed_size, &address, &pdu, &pdu_length) == 0);
        FUZZ_CHECK(pdu_length == size - 1 && memcmp(pdu, frame + 1, pdu_length) == 0);
        check_decoded(framed, framed_size, address, pdu, pdu_length);
        check_frame_length(framed, framed_size, 1);
        check_frame_length(framed, framed_size, 0);
        free(framed);
    }

    free(frame);
    return 0;
}
