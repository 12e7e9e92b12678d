/* SPDX-License-Identifier: MIT */
/*
 * The MBAP stream decoder against any byte stream, cut into reads four ways (whole, one byte at
 * a time, sizes taken from the input, pseudo-random sizes). Properties:
 *   - every cutting yields the same ADUs (header and PDU bytes), the same discarded count and
 *     the same final error, and all of them equal what a few lines of reference framing say;
 *   - every ADU has pdu_length == header.length - 1, in 1..253, and protocol id 0;
 *   - *consumed never exceeds what was offered, and a return of 0 consumed everything;
 *   - the error is sticky;
 *   - fed whole, each frame is handed back in place and its header re-encodes to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "mbsec/mbap.h"

struct stream_outcome {
    struct fuzz_log adus; /* per ADU: header fields, pdu_length, PDU bytes */
    int error;
    uint32_t frames;
    uint32_t discarded;
    int pending;
};

static void log_adu(struct fuzz_log *log, const struct mb_mbap_header *header, const uint8_t *pdu,
                    size_t pdu_length) {
    uint8_t fields[9];
    mb_put_u16(fields, header->transaction_id);
    mb_put_u16(fields + 2, header->protocol_id);
    mb_put_u16(fields + 4, header->length);
    fields[6] = header->unit_id;
    mb_put_u16(fields + 7, (uint16_t)pdu_length);
    fuzz_log_append(log, fields, sizeof fields);
    fuzz_log_append(log, pdu, pdu_length);
}

/* What the stream means, framed by its MBAP length fields and nothing else. */
static void reference_framing(const uint8_t *data, size_t size, struct stream_outcome *outcome) {
    size_t offset = 0;
    memset(outcome, 0, sizeof *outcome);
    while (size - offset >= 6) {
        const uint8_t *frame = data + offset;
        uint16_t length = mb_get_u16(frame + 4);
        if (length < MB_MBAP_LENGTH_MIN || length > MB_MBAP_LENGTH_MAX) {
            outcome->error = MB_EMBAP_LENGTH;
            return;
        }
        if (size - offset < (size_t)6 + length)
            break;
        struct mb_mbap_header header = {
            .transaction_id = mb_get_u16(frame),
            .protocol_id = mb_get_u16(frame + 2),
            .length = length,
            .unit_id = frame[6],
        };
        if (header.protocol_id == 0) {
            log_adu(&outcome->adus, &header, frame + 7, (size_t)length - 1);
            outcome->frames++;
        } else {
            outcome->discarded++;
        }
        offset += (size_t)6 + length;
    }
    outcome->pending = offset < size;
}

static void check_adu(const struct mb_adu *adu) {
    FUZZ_CHECK(adu->pdu != NULL);
    FUZZ_CHECK(adu->header.protocol_id == 0);
    FUZZ_CHECK(adu->header.length >= MB_MBAP_LENGTH_MIN);
    FUZZ_CHECK(adu->header.length <= MB_MBAP_LENGTH_MAX);
    FUZZ_CHECK(adu->pdu_length == (size_t)adu->header.length - 1);
    FUZZ_CHECK(adu->pdu_length >= 1 && adu->pdu_length <= MB_PDU_MAX);
}

/* Fed whole, the frame ends where the decoder stopped consuming: it must be the input's bytes. */
static void check_in_place(const uint8_t *input, size_t frame_end, const struct mb_adu *adu) {
    size_t frame_length = MB_MBAP_HEADER_SIZE + adu->pdu_length;
    FUZZ_CHECK(frame_end >= frame_length);
    const uint8_t *frame = input + frame_end - frame_length;
    FUZZ_CHECK(adu->pdu == frame + MB_MBAP_HEADER_SIZE);

    struct mb_mbap_header peeked;
    FUZZ_CHECK(mb_mbap_peek(frame, frame_length, &peeked) == (int)frame_length);
    FUZZ_CHECK(peeked.transaction_id == adu->header.transaction_id);
    FUZZ_CHECK(peeked.protocol_id == adu->header.protocol_id);
    FUZZ_CHECK(peeked.length == adu->header.length);
    FUZZ_CHECK(peeked.unit_id == adu->header.unit_id);

    uint8_t header[MB_MBAP_HEADER_SIZE];
    FUZZ_CHECK(mb_mbap_encode(adu->header.transaction_id, adu->header.unit_id, adu->pdu_length,
                              header, sizeof header) == MB_MBAP_HEADER_SIZE);
    FUZZ_CHECK(memcmp(header, frame, sizeof header) == 0);
}

static void decode_stream(const uint8_t *data, size_t size, enum fuzz_chunking chunking,
                          struct stream_outcome *outcome) {
    struct mb_mbap_decoder decoder;
    struct fuzz_chunker chunker;
    size_t offset = 0;
    int started = 0;

    memset(outcome, 0, sizeof *outcome);
    mb_mbap_decoder_init(&decoder);
    fuzz_chunker_init(&chunker, chunking, data, size);
    while ((offset < size || !started) && outcome->error == 0) {
        size_t chunk = fuzz_chunk_next(&chunker, size - offset);
        uint8_t *copy = fuzz_copy(data + offset, chunk);
        size_t used = 0;
        started = 1;
        for (;;) {
            struct mb_adu adu;
            size_t consumed = (size_t)-1;
            int rc = mb_mbap_decoder_feed(&decoder, copy + used, chunk - used, &consumed, &adu);
            if (rc < 0) {
                FUZZ_CHECK(rc == MB_EMBAP_LENGTH);
                outcome->error = rc;
                size_t again_consumed;
                FUZZ_CHECK(mb_mbap_decoder_feed(&decoder, copy, chunk, &again_consumed, &adu) ==
                           rc);
                break;
            }
            FUZZ_CHECK(consumed <= chunk - used);
            used += consumed;
            if (rc == 0) {
                FUZZ_CHECK(used == chunk);
                break;
            }
            FUZZ_CHECK(rc == 1);
            check_adu(&adu);
            if (chunking == FUZZ_CHUNK_WHOLE)
                check_in_place(copy, used, &adu);
            log_adu(&outcome->adus, &adu.header, adu.pdu, adu.pdu_length);
            outcome->frames++;
            /* Every frame takes at least 8 bytes: more frames than that means no progress. */
            FUZZ_CHECK((size_t)outcome->frames * 8 <= offset + used);
        }
        free(copy);
        offset += chunk;
    }
    FUZZ_CHECK(decoder.frames == outcome->frames);
    outcome->discarded = decoder.discarded;
    outcome->pending = mb_mbap_decoder_pending(&decoder);
}

static void check_same(const struct stream_outcome *got, const struct stream_outcome *want) {
    FUZZ_CHECK(got->error == want->error);
    FUZZ_CHECK(got->frames == want->frames);
    FUZZ_CHECK(fuzz_log_equal(&got->adus, &want->adus));
    FUZZ_CHECK(got->discarded == want->discarded);
    if (want->error == 0)
        FUZZ_CHECK(got->pending == want->pending);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    struct stream_outcome reference;
    reference_framing(data, size, &reference);
    for (int chunking = 0; chunking < FUZZ_CHUNKINGS; chunking++) {
        struct stream_outcome outcome;
        decode_stream(data, size, (enum fuzz_chunking)chunking, &outcome);
        check_same(&outcome, &reference);
        fuzz_log_free(&outcome.adus);
    }
    fuzz_log_free(&reference.adus);
    return 0;
}
