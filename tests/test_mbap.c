/* SPDX-License-Identifier: MIT */
/* MBAP framing: the header, and the stream decoder fed split, merged and hostile input. */
#include <string.h>

#include "harness.h"
#include "mbsec/mbap.h"

/* The guide's example request: transaction 0x1501, unit 0xFF, read 1 register at 4. */
static const uint8_t guide_request[] = {0x15, 0x01, 0x00, 0x00, 0x00, 0x06,
                                        0xFF, 0x03, 0x00, 0x04, 0x00, 0x01};

/* What a decoder yields for a whole input: frames copied out, and the final status. */
struct frames {
    int count;
    uint8_t adu[16][MB_ADU_MAX];
    size_t adu_length[16];
    int status; /* 0, or the fatal error */
};

/* Re-encodes a yielded ADU (header + PDU) so that frames can be compared as bytes. */
static void keep(struct frames *out, const struct mb_adu *adu) {
    if (out->count >= 16)
        return;
    uint8_t *at = out->adu[out->count];
    mb_mbap_encode(adu->header.transaction_id, adu->header.unit_id, adu->pdu_length, at,
                   MB_ADU_MAX);
    memcpy(at + MB_MBAP_HEADER_SIZE, adu->pdu, adu->pdu_length);
    out->adu_length[out->count] = MB_MBAP_HEADER_SIZE + adu->pdu_length;
    out->count++;
}

/* Feeds `data` in chunks of `chunk` bytes (each chunk placed at the end of a guarded page). */
static void feed_in_chunks(struct mb_mbap_decoder *decoder, const uint8_t *data, size_t length,
                           size_t chunk, struct frames *out) {
    memset(out, 0, sizeof *out);
    for (size_t start = 0; start < length; start += chunk) {
        size_t size = length - start < chunk ? length - start : chunk;
        const uint8_t *piece = guard_copy(data + start, size);
        size_t offset = 0;
        while (offset < size) {
            size_t consumed = 0;
            struct mb_adu adu;
            int rc = mb_mbap_decoder_feed(decoder, piece + offset, size - offset, &consumed, &adu);
            if (consumed > size - offset) {
                harness_fail(__FILE__, __LINE__, "consumed %zu of %zu", consumed, size - offset);
                return;
            }
            offset += consumed;
            if (rc < 0) {
                out->status = rc;
                return;
            }
            if (rc == 1)
                keep(out, &adu);
            else if (offset != size)
                harness_fail(__FILE__, __LINE__, "returned 0 with input left over");
        }
    }
}

TEST(peek_reads_the_guide_example) {
    struct mb_mbap_header header;
    CHECK_EQ(mb_mbap_peek(guide_request, sizeof guide_request, &header), 12);
    CHECK_EQ(header.transaction_id, 0x1501);
    CHECK_EQ(header.protocol_id, 0);
    CHECK_EQ(header.length, 6);
    CHECK_EQ(header.unit_id, 0xFF);
    CHECK_EQ(mb_mbap_peek(guide_request, 7, &header), 12);
    CHECK_EQ(mb_mbap_peek(guide_request, 6, &header), 0);
    CHECK_EQ(mb_mbap_peek(guide_request, 0, &header), 0);
}

TEST(length_2_and_254_are_the_limits) {
    struct mb_mbap_header header;
    CHECK_EQ(mb_mbap_peek(BYTES(0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x01), &header),
             MB_EMBAP_LENGTH);
    CHECK_EQ(mb_mbap_peek(BYTES(0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x01), &header), 8);
    CHECK_EQ(mb_mbap_peek(BYTES(0x00, 0x01, 0x00, 0x00, 0x00, 0xFE, 0x01), &header), 260);
    CHECK_EQ(mb_mbap_peek(BYTES(0x00, 0x01, 0x00, 0x00, 0x00, 0xFF, 0x01), &header),
             MB_EMBAP_LENGTH);
    CHECK_EQ(mb_mbap_peek(BYTES(0x00, 0x01, 0x00, 0x00, 0x00, 0x00), &header), MB_EMBAP_LENGTH);
    CHECK_EQ(mb_mbap_peek(BYTES(0x00, 0x01, 0x00, 0x00, 0xFF, 0xFF), &header), MB_EMBAP_LENGTH);
}

TEST(encode_writes_protocol_0_and_length_pdu_plus_1) {
    uint8_t header[MB_MBAP_HEADER_SIZE];
    CHECK_EQ(mb_mbap_encode(0x1501, 0xFF, 5, header, sizeof header), 7);
    CHECK_BYTES(header, 7, 0x15, 0x01, 0x00, 0x00, 0x00, 0x06, 0xFF);
    CHECK_EQ(mb_mbap_encode(1, 1, 253, header, sizeof header), 7);
    CHECK_BYTES(header, 7, 0x00, 0x01, 0x00, 0x00, 0x00, 0xFE, 0x01);
    CHECK_EQ(mb_mbap_encode(1, 1, 0, header, sizeof header), MB_EINVAL);
    CHECK_EQ(mb_mbap_encode(1, 1, 254, header, sizeof header), MB_EINVAL);
    CHECK_EQ(mb_mbap_encode(1, 1, 5, header, 6), MB_ENOSPC);
}

TEST(a_whole_frame_is_handed_back_in_place) {
    struct mb_mbap_decoder decoder;
    mb_mbap_decoder_init(&decoder);
    struct mb_adu adu;
    size_t consumed;
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, guide_request, sizeof guide_request, &consumed, &adu),
             1);
    CHECK_EQ(consumed, 12);
    CHECK(adu.pdu == guide_request + 7);
    CHECK_EQ(adu.pdu_length, 5);
    CHECK_EQ(adu.header.transaction_id, 0x1501);
    CHECK_EQ(adu.header.unit_id, 0xFF);
    CHECK_BYTES(adu.pdu, adu.pdu_length, 0x03, 0x00, 0x04, 0x00, 0x01);
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, guide_request + 12, 0, &consumed, &adu), 0);
    CHECK_EQ(decoder.frames, 1);
    CHECK_EQ(mb_mbap_decoder_pending(&decoder), 0);
}

TEST(a_frame_split_at_every_byte_gives_the_same_adu) {
    for (size_t chunk = 1; chunk <= sizeof guide_request; chunk++) {
        struct mb_mbap_decoder decoder;
        struct frames out;
        mb_mbap_decoder_init(&decoder);
        feed_in_chunks(&decoder, guide_request, sizeof guide_request, chunk, &out);
        CHECK_EQ(out.status, 0);
        CHECK_EQ(out.count, 1);
        harness_bytes_equal(__FILE__, __LINE__, out.adu[0], out.adu_length[0], guide_request,
                            sizeof guide_request);
    }
    /* And split into two reads at every position. */
    for (size_t cut = 0; cut <= sizeof guide_request; cut++) {
        struct mb_mbap_decoder decoder;
        mb_mbap_decoder_init(&decoder);
        struct mb_adu adu;
        size_t consumed;
        int rc = mb_mbap_decoder_feed(&decoder, guide_request, cut, &consumed, &adu);
        CHECK_EQ(rc, cut == sizeof guide_request ? 1 : 0);
        CHECK_EQ(consumed, cut);
        CHECK_EQ(mb_mbap_decoder_pending(&decoder), cut > 0 && cut < sizeof guide_request);
        if (rc == 0) {
            rc = mb_mbap_decoder_feed(&decoder, guide_request + cut, sizeof guide_request - cut,
                                      &consumed, &adu);
            CHECK_EQ(rc, 1);
            CHECK_EQ(consumed, sizeof guide_request - cut);
        }
        CHECK_EQ(adu.header.transaction_id, 0x1501);
        CHECK_BYTES(adu.pdu, adu.pdu_length, 0x03, 0x00, 0x04, 0x00, 0x01);
    }
}

TEST(several_frames_in_one_read_come_out_one_by_one_in_order) {
    uint8_t stream[3 * sizeof guide_request];
    for (int i = 0; i < 3; i++) {
        memcpy(stream + i * sizeof guide_request, guide_request, sizeof guide_request);
        stream[i * sizeof guide_request + 1] = (uint8_t)i; /* transaction ids 0x1500..0x1502 */
    }
    for (size_t chunk = 1; chunk <= sizeof stream; chunk++) {
        struct mb_mbap_decoder decoder;
        struct frames out;
        mb_mbap_decoder_init(&decoder);
        feed_in_chunks(&decoder, stream, sizeof stream, chunk, &out);
        CHECK_EQ(out.count, 3);
        for (int i = 0; i < out.count; i++)
            harness_bytes_equal(__FILE__, __LINE__, out.adu[i], out.adu_length[i],
                                stream + i * sizeof guide_request, sizeof guide_request);
        CHECK_EQ(decoder.frames, 3);
    }
}

TEST(a_frame_with_protocol_id_not_0_is_discarded_and_the_stream_goes_on) {
    const uint8_t stream[] = {
        0x00, 0x01, 0x00, 0x01, 0x00, 0x03, 0x01, 0x03, 0x00,                   /* protocol 1 */
        0x00, 0x02, 0x00, 0x00, 0x00, 0x06, 0x01, 0x03, 0x00, 0x00, 0x00, 0x01, /* Modbus */
    };
    for (size_t chunk = 1; chunk <= sizeof stream; chunk++) {
        struct mb_mbap_decoder decoder;
        struct frames out;
        mb_mbap_decoder_init(&decoder);
        feed_in_chunks(&decoder, stream, sizeof stream, chunk, &out);
        CHECK_EQ(out.status, 0);
        CHECK_EQ(out.count, 1);
        CHECK_EQ(decoder.discarded, 1);
        CHECK_EQ(decoder.frames, 1);
        harness_bytes_equal(__FILE__, __LINE__, out.adu[0], out.adu_length[0], stream + 9, 12);
    }
}

TEST(length_outside_2_to_254_is_fatal_and_sticky) {
    const uint8_t lengths[][2] = {{0x00, 0x00}, {0x00, 0x01}, {0x00, 0xFF}, {0xFF, 0xFF}};
    for (size_t i = 0; i < 4; i++) {
        uint8_t stream[] = {0x00, 0x01, 0x00, 0x00, lengths[i][0], lengths[i][1], 0x01, 0x03};
        for (size_t chunk = 1; chunk <= sizeof stream; chunk++) {
            struct mb_mbap_decoder decoder;
            struct frames out;
            mb_mbap_decoder_init(&decoder);
            feed_in_chunks(&decoder, stream, sizeof stream, chunk, &out);
            CHECK_EQ(out.status, MB_EMBAP_LENGTH);
            CHECK_EQ(out.count, 0);
            /* Sticky: a good frame afterwards is refused too. */
            struct mb_adu adu;
            size_t consumed = 99;
            CHECK_EQ(mb_mbap_decoder_feed(&decoder, guide_request, sizeof guide_request, &consumed,
                                          &adu),
                     MB_EMBAP_LENGTH);
            CHECK_EQ(consumed, 0);
        }
    }
}

TEST(the_bad_length_is_caught_as_soon_as_its_six_bytes_arrive) {
    struct mb_mbap_decoder decoder;
    mb_mbap_decoder_init(&decoder);
    struct mb_adu adu;
    size_t consumed;
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, BYTES(0x00, 0x01, 0x00, 0x00, 0x00), &consumed, &adu),
             0);
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, BYTES(0x00), &consumed, &adu), MB_EMBAP_LENGTH);
}

TEST(a_good_frame_before_a_broken_one_is_still_delivered) {
    uint8_t stream[sizeof guide_request + 6];
    memcpy(stream, guide_request, sizeof guide_request);
    memcpy(stream + sizeof guide_request, (uint8_t[]){0x00, 0x02, 0x00, 0x00, 0x01, 0x00}, 6);
    struct mb_mbap_decoder decoder;
    struct frames out;
    mb_mbap_decoder_init(&decoder);
    feed_in_chunks(&decoder, stream, sizeof stream, sizeof stream, &out);
    CHECK_EQ(out.count, 1);
    CHECK_EQ(out.status, MB_EMBAP_LENGTH);
}

TEST(the_largest_frame_260_bytes_decodes_split_anywhere) {
    uint8_t stream[MB_ADU_MAX];
    mb_mbap_encode(7, 1, MB_PDU_MAX, stream, sizeof stream);
    stream[7] = 0x41;
    for (size_t i = 8; i < sizeof stream; i++)
        stream[i] = (uint8_t)i;
    for (size_t chunk = 1; chunk <= sizeof stream; chunk += 37) {
        struct mb_mbap_decoder decoder;
        struct frames out;
        mb_mbap_decoder_init(&decoder);
        feed_in_chunks(&decoder, stream, sizeof stream, chunk, &out);
        CHECK_EQ(out.count, 1);
        harness_bytes_equal(__FILE__, __LINE__, out.adu[0], out.adu_length[0], stream,
                            sizeof stream);
    }
}

TEST(the_smallest_frame_pdu_of_one_byte_decodes) {
    struct mb_mbap_decoder decoder;
    mb_mbap_decoder_init(&decoder);
    struct mb_adu adu;
    size_t consumed;
    /* Static: the ADU points into the input, which must outlive the checks below. */
    static const uint8_t frame[] = {0x00, 0x09, 0x00, 0x00, 0x00, 0x02, 0x11, 0x07};
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, frame, sizeof frame, &consumed, &adu), 1);
    CHECK_EQ(adu.pdu_length, 1);
    CHECK_EQ(adu.pdu[0], 0x07);
}

TEST(feed_refuses_null_arguments) {
    struct mb_mbap_decoder decoder;
    mb_mbap_decoder_init(&decoder);
    struct mb_adu adu;
    size_t consumed;
    CHECK_EQ(mb_mbap_decoder_feed(NULL, guide_request, 1, &consumed, &adu), MB_EINVAL);
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, NULL, 1, &consumed, &adu), MB_EINVAL);
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, NULL, 0, &consumed, &adu), 0);
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, guide_request, 1, NULL, &adu), MB_EINVAL);
    CHECK_EQ(mb_mbap_decoder_feed(&decoder, guide_request, 1, &consumed, NULL), MB_EINVAL);
}

TEST(a_flood_of_small_frames_is_decoded_without_loss) {
    /* 2000 frames of 8 bytes fed in 97-byte reads: the count and every id must come out. */
    static uint8_t stream[2000 * 8];
    for (int i = 0; i < 2000; i++) {
        uint8_t frame[] = {(uint8_t)(i >> 8), (uint8_t)i, 0, 0, 0, 2, 1, 7};
        memcpy(stream + 8 * i, frame, 8);
    }
    struct mb_mbap_decoder decoder;
    mb_mbap_decoder_init(&decoder);
    int next = 0, wrong = 0;
    for (size_t start = 0; start < sizeof stream; start += 97) {
        size_t size = sizeof stream - start < 97 ? sizeof stream - start : 97;
        size_t offset = 0;
        while (offset < size) {
            size_t consumed;
            struct mb_adu adu;
            int rc = mb_mbap_decoder_feed(&decoder, stream + start + offset, size - offset,
                                          &consumed, &adu);
            offset += consumed;
            if (rc == 1 && adu.header.transaction_id != next++)
                wrong++;
        }
    }
    CHECK_EQ(next, 2000);
    CHECK_EQ(wrong, 0);
}

int main(void) {
    RUN(peek_reads_the_guide_example);
    RUN(length_2_and_254_are_the_limits);
    RUN(encode_writes_protocol_0_and_length_pdu_plus_1);
    RUN(a_whole_frame_is_handed_back_in_place);
    RUN(a_frame_split_at_every_byte_gives_the_same_adu);
    RUN(several_frames_in_one_read_come_out_one_by_one_in_order);
    RUN(a_frame_with_protocol_id_not_0_is_discarded_and_the_stream_goes_on);
    RUN(length_outside_2_to_254_is_fatal_and_sticky);
    RUN(the_bad_length_is_caught_as_soon_as_its_six_bytes_arrive);
    RUN(a_good_frame_before_a_broken_one_is_still_delivered);
    RUN(the_largest_frame_260_bytes_decodes_split_anywhere);
    RUN(the_smallest_frame_pdu_of_one_byte_decodes);
    RUN(feed_refuses_null_arguments);
    RUN(a_flood_of_small_frames_is_decoded_without_loss);
    return harness_result();
}
