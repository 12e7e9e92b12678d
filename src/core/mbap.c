/* SPDX-License-Identifier: MIT */
/* Modbus/TCP framing: the MBAP header and the stream decoder. */
#include <string.h>

#include "mbsec/mbap.h"

int mb_mbap_peek(const uint8_t *buffer, size_t length, struct mb_mbap_header *header) {
    if (buffer == NULL || header == NULL)
        return MB_EINVAL;
    if (length < 6)
        return 0;
    /* The length field alone decides whether the stream can go on, so judge it as soon as it
     * arrives rather than waiting for the unit id. */
    uint16_t mbap_length = mb_get_u16(buffer + 4);
    if (mbap_length < MB_MBAP_LENGTH_MIN || mbap_length > MB_MBAP_LENGTH_MAX)
        return MB_EMBAP_LENGTH;
    if (length < MB_MBAP_HEADER_SIZE)
        return 0;
    header->transaction_id = mb_get_u16(buffer);
    header->protocol_id = mb_get_u16(buffer + 2);
    header->length = mbap_length;
    header->unit_id = buffer[6];
    return 6 + mbap_length;
}

int mb_mbap_encode(uint16_t transaction_id, uint8_t unit_id, size_t pdu_length, uint8_t *buffer,
                   size_t capacity) {
    if (buffer == NULL || pdu_length == 0 || pdu_length > MB_PDU_MAX)
        return MB_EINVAL;
    if (capacity < MB_MBAP_HEADER_SIZE)
        return MB_ENOSPC;
    mb_put_u16(buffer, transaction_id);
    mb_put_u16(buffer + 2, 0);
    mb_put_u16(buffer + 4, (uint16_t)(pdu_length + 1));
    buffer[6] = unit_id;
    return MB_MBAP_HEADER_SIZE;
}

void mb_mbap_decoder_init(struct mb_mbap_decoder *decoder) {
    memset(decoder, 0, sizeof *decoder);
}

int mb_mbap_decoder_pending(const struct mb_mbap_decoder *decoder) {
    return decoder->held > 0;
}

static void fill_adu(const uint8_t *frame, const struct mb_mbap_header *header,
                     struct mb_adu *adu) {
    adu->header = *header;
    adu->pdu = frame + MB_MBAP_HEADER_SIZE;
    adu->pdu_length = (size_t)header->length - 1;
}

int mb_mbap_decoder_feed(struct mb_mbap_decoder *decoder, const uint8_t *data, size_t length,
                         size_t *consumed, struct mb_adu *adu) {
    if (decoder == NULL || consumed == NULL || adu == NULL || (data == NULL && length > 0))
        return MB_EINVAL;
    size_t used = 0;
    struct mb_mbap_header header;
    *consumed = 0;
    if (decoder->error != 0)
        return decoder->error;
    /* Nothing held is ever complete, so no input means nothing to do (and data may be NULL). */
    if (length == 0)
        return 0;

    for (;;) {
        int frame_size;
        if (decoder->held == 0) {
            /* Nothing held: a frame that is whole in the input is handed back in place. */
            size_t rest = length - used;
            if (rest == 0)
                break;
            const uint8_t *at = data + used;
            frame_size = mb_mbap_peek(at, rest, &header);
            if (frame_size < 0) {
                decoder->error = frame_size;
                *consumed = used;
                return frame_size;
            }
            if (frame_size > 0 && rest >= (size_t)frame_size) {
                used += (size_t)frame_size;
                if (header.protocol_id != 0) {
                    decoder->discarded++;
                    continue;
                }
                fill_adu(at, &header, adu);
                decoder->frames++;
                *consumed = used;
                return 1;
            }
            /* A partial frame: hold it (rest < 260 here) and wait for more. */
            memcpy(decoder->frame, at, rest);
            decoder->held = (uint16_t)rest;
            used += rest;
            if (rest >= 6 && (frame_size = mb_mbap_peek(decoder->frame, rest, &header)) < 0) {
                decoder->error = frame_size;
                *consumed = used;
                return frame_size;
            }
            break;
        }

        /* Part of a frame is held: first complete its header, then its body. */
        size_t rest = length - used;
        if (decoder->held < MB_MBAP_HEADER_SIZE) {
            size_t take = MB_MBAP_HEADER_SIZE - decoder->held;
            if (take > rest)
                take = rest;
            memcpy(decoder->frame + decoder->held, data + used, take);
            decoder->held = (uint16_t)(decoder->held + take);
            used += take;
            rest -= take;
        }
        frame_size = mb_mbap_peek(decoder->frame, decoder->held, &header);
        if (frame_size < 0) {
            decoder->error = frame_size;
            *consumed = used;
            return frame_size;
        }
        if (frame_size == 0)
            break;
        size_t take = (size_t)frame_size - decoder->held;
        if (take > rest)
            take = rest;
        memcpy(decoder->frame + decoder->held, data + used, take);
        decoder->held = (uint16_t)(decoder->held + take);
        used += take;
        if (decoder->held < (size_t)frame_size)
            break;
        decoder->held = 0;
        if (header.protocol_id != 0) {
            decoder->discarded++;
            continue;
        }
        fill_adu(decoder->frame, &header, adu);
        decoder->frames++;
        *consumed = used;
        return 1;
    }
    *consumed = used;
    return 0;
}
