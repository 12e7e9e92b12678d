/* SPDX-License-Identifier: MIT */
/*
 * Modbus/TCP framing: the 7-byte MBAP header and a stream decoder that turns the bytes of any
 * number of reads into complete ADUs.
 *
 * ADU = transaction id (2) | protocol id (2, always 0) | length (2: unit id + PDU, 2..254) |
 * unit id (1) | PDU (1..253). Frames are delimited by the MBAP length, never by the function
 * code. Nothing here allocates or does I/O.
 */
#ifndef MBSEC_MBAP_H
#define MBSEC_MBAP_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/export.h"
#include "mbsec/pdu.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MB_MBAP_HEADER_SIZE 7
#define MB_ADU_MAX (MB_MBAP_HEADER_SIZE + MB_PDU_MAX) /* 260 */
#define MB_MBAP_LENGTH_MIN 2
#define MB_MBAP_LENGTH_MAX 254

struct mb_mbap_header {
    uint16_t transaction_id;
    uint16_t protocol_id;
    uint16_t length; /* unit id + PDU */
    uint8_t unit_id;
};

/* A complete frame: its header and a view of its PDU. */
struct mb_adu {
    struct mb_mbap_header header;
    const uint8_t *pdu;
    size_t pdu_length; /* header.length - 1 */
};

/*
 * Reads the header at the start of buffer[0..length). Returns the size of the whole frame
 * (7 + PDU, 8..260) once the header is there (the frame itself may not be complete yet),
 * 0 when fewer than 7 bytes are there, or MB_EMBAP_LENGTH when the length field is outside
 * 2..254 (checked as soon as its 6 bytes are there). The protocol id is reported, not judged.
 */
MB_API int mb_mbap_peek(const uint8_t *buffer, size_t length, struct mb_mbap_header *header);

/* Writes a 7-byte header for a PDU of pdu_length bytes, protocol id 0. Returns 7, MB_ENOSPC,
 * or MB_EINVAL (pdu_length 0 or over MB_PDU_MAX). */
MB_API int mb_mbap_encode(uint16_t transaction_id, uint8_t unit_id, size_t pdu_length,
                          uint8_t *buffer, size_t capacity);

/*
 * Stream decoder. Zero it with mb_mbap_decoder_init(), then feed it whatever each read
 * returned. It copies only the frames that arrive split; a frame that is whole in the input
 * is handed back in place.
 */
struct mb_mbap_decoder {
    uint8_t frame[MB_ADU_MAX]; /* the part of a split frame seen so far */
    uint16_t held;             /* bytes in frame[] */
    int error;                 /* sticky: once fatal, every feed returns it */
    uint32_t frames;           /* complete frames handed out */
    uint32_t discarded;        /* frames dropped for a protocol id other than 0 */
};

MB_API void mb_mbap_decoder_init(struct mb_mbap_decoder *decoder);

/*
 * Consumes bytes from data[0..length) and sets *consumed to how many. Returns:
 *   1 - a frame is complete: *adu describes it, pointing into `data` or into the decoder; it
 *       stays valid until the next call. Call again with the rest of the input.
 *   0 - every byte was consumed and no frame is complete yet.
 *   MB_EMBAP_LENGTH - the stream is broken (fatal and sticky): close the connection.
 * Frames whose protocol id is not 0 are consumed, counted in `discarded` and skipped.
 */
MB_API int mb_mbap_decoder_feed(struct mb_mbap_decoder *decoder, const uint8_t *data, size_t length,
                                size_t *consumed, struct mb_adu *adu);

/* 1 when a frame is partly held (bytes are waiting for the rest), else 0. */
MB_API int mb_mbap_decoder_pending(const struct mb_mbap_decoder *decoder);

#ifdef __cplusplus
}
#endif

#endif
