/* SPDX-License-Identifier: MIT */
#include "mbsec/serial.h"

#include <string.h>

#include "mbsec/error.h"

/* Address, function code and the two CRC bytes: what every RTU frame holds besides its data. */
#define RTU_OVERHEAD 4

/* ---- CRC-16/MODBUS ---- */

/* A nibble table keeps the CRC at two lookups per byte for 32 bytes of read-only data; the
 * entries are the bitwise CRC of each 4-bit value under the reflected polynomial 0xA001. */
static const uint16_t crc16_nibble_table[16] = {
    0x0000, 0xCC01, 0xD801, 0x1400, 0xF001, 0x3C00, 0x2800, 0xE401,
    0xA001, 0x6C00, 0x7800, 0xB401, 0x5000, 0x9C01, 0x8801, 0x4400,
};

uint16_t mb_crc16(const uint8_t *data, size_t length) {
    uint16_t crc = 0xFFFF;
    if (data == NULL)
        return crc;
    for (size_t i = 0; i < length; i++) {
        crc ^= data[i];
        crc = (uint16_t)((crc >> 4) ^ crc16_nibble_table[crc & 0x0F]);
        crc = (uint16_t)((crc >> 4) ^ crc16_nibble_table[crc & 0x0F]);
    }
    return crc;
}

/* ---- encoding and decoding ---- */

int mb_rtu_encode(uint8_t address, const uint8_t *pdu, size_t pdu_length, uint8_t *frame,
                  size_t capacity) {
    if (pdu == NULL || frame == NULL || pdu_length == 0 || pdu_length > MB_PDU_MAX)
        return MB_EINVAL;
    size_t frame_length = pdu_length + 3;
    if (capacity < frame_length)
        return MB_ENOSPC;
    frame[0] = address;
    /* memmove, not memcpy: a caller may build the PDU in place at frame + 1. */
    memmove(frame + 1, pdu, pdu_length);
    uint16_t crc = mb_crc16(frame, pdu_length + 1);
    frame[pdu_length + 1] = (uint8_t)(crc & 0xFF);
    frame[pdu_length + 2] = (uint8_t)(crc >> 8);
    return (int)frame_length;
}

int mb_rtu_decode(const uint8_t *frame, size_t length, uint8_t *address, const uint8_t **pdu,
                  size_t *pdu_length) {
    if (frame == NULL || address == NULL || pdu == NULL || pdu_length == NULL)
        return MB_EINVAL;
    if (length < MB_RTU_FRAME_MIN || length > MB_RTU_FRAME_MAX)
        return MB_EFRAME;
    uint16_t received = (uint16_t)(frame[length - 2] | (frame[length - 1] << 8));
    if (mb_crc16(frame, length - 2) != received)
        return MB_ECRC;
    *address = frame[0];
    *pdu = frame + 1;
    *pdu_length = length - 3;
    return 0;
}

/* ---- addressing ---- */

int mb_function_is_broadcastable(uint8_t function) {
    switch (function) {
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
    case MB_FC_WRITE_FILE_RECORD:
    case MB_FC_MASK_WRITE_REGISTER:
        return 1;
    }
    return 0;
}

int mb_rtu_accept(uint8_t own_address, uint8_t address, uint8_t function) {
    if (own_address == MB_SERIAL_BROADCAST || own_address > MB_SERIAL_ADDRESS_MAX)
        return MB_EINVAL;
    if (address == own_address)
        return MB_RTU_PROCESS_REPLY;
    if (address == MB_SERIAL_BROADCAST && mb_function_is_broadcastable(function))
        return MB_RTU_PROCESS_SILENT;
    return MB_RTU_IGNORE;
}

/* ---- timing ---- */

/* Up to this rate the intervals follow the character time; above it the spec fixes them,
 * because shorter gaps would be lost in the interrupt latency of ordinary UARTs. */
#define RTU_TIMING_COMPUTED_MAX_BAUD 19200
#define RTU_BITS_PER_CHARACTER 11
#define RTU_FIXED_T15_US 750
#define RTU_FIXED_T35_US 1750

int mb_rtu_timing(uint32_t baud, uint32_t *t15_us, uint32_t *t35_us) {
    if (baud == 0 || t15_us == NULL || t35_us == NULL)
        return MB_EINVAL;
    if (baud > RTU_TIMING_COMPUTED_MAX_BAUD) {
        *t15_us = RTU_FIXED_T15_US;
        *t35_us = RTU_FIXED_T35_US;
        return 0;
    }
    /* 1.5 and 3.5 characters are 3 and 7 half characters. The division rounds up, so that an
     * interval is never shorter than the spec's: a receiver then never cuts a frame early. */
    uint64_t half_character_bits_us = (uint64_t)RTU_BITS_PER_CHARACTER * 1000000u / 2;
    *t15_us = (uint32_t)((3 * half_character_bits_us + baud - 1) / baud);
    *t35_us = (uint32_t)((7 * half_character_bits_us + baud - 1) / baud);
    return 0;
}

/* ---- framing without silent intervals ---- */

/*
 * The frame length when the data starts with a one-byte count at `count_offset` (an offset in
 * the frame) and `fixed` more bytes of the frame lie outside the counted ones. Returns 0 while
 * the count has not arrived.
 */
static int length_from_byte_count(const uint8_t *frame, size_t length, size_t count_offset,
                                  size_t fixed) {
    if (length <= count_offset)
        return 0;
    size_t frame_length = fixed + frame[count_offset];
    return frame_length > MB_RTU_FRAME_MAX ? MB_EFRAME : (int)frame_length;
}

/*
 * FC 8 carries a sub-function and, for all but 0x00, exactly one 16-bit word of data.
 * Sub-function 0x00 echoes data of any length and says nothing of it, so its frame cannot be
 * measured: guessing would let the rest of a long echo pass for a frame of its own.
 */
static int diagnostics_length(const uint8_t *frame, size_t length) {
    if (length < 4)
        return 0;
    if (frame[2] == 0 && frame[3] == MB_DIAG_RETURN_QUERY_DATA)
        return MB_EFUNCTION;
    return RTU_OVERHEAD + 4;
}

/* An FC 43/14 response: six header bytes after the function code, then `count` objects of
 * id, length and value, walked as far as the bytes at hand allow. */
static int device_id_response_length(const uint8_t *frame, size_t length) {
    const size_t count_offset = 7;
    if (length <= count_offset)
        return 0;
    size_t object_count = frame[count_offset];
    size_t end = count_offset + 1; /* where the next object, or the CRC, starts */
    for (size_t i = 0; i < object_count; i++) {
        if (length <= end + 1)
            return 0;
        end += 2 + (size_t)frame[end + 1];
        /* Objects only add bytes, so once the frame is too long no later byte can save it. */
        if (end + 2 > MB_RTU_FRAME_MAX)
            return MB_EFRAME;
    }
    return (int)(end + 2);
}

/* The encapsulated interface: only MEI type 14 (device identification) has a known layout. */
static int encapsulated_length(const uint8_t *frame, size_t length, int is_request) {
    if (length < 3)
        return 0;
    if (frame[2] != MB_MEI_DEVICE_ID)
        return MB_EFUNCTION;
    if (is_request)
        return RTU_OVERHEAD + 3;
    return device_id_response_length(frame, length);
}

static int request_length(const uint8_t *frame, size_t length) {
    switch (frame[1]) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        return RTU_OVERHEAD + 4;
    case MB_FC_READ_EXCEPTION_STATUS:
    case MB_FC_GET_COMM_EVENT_COUNTER:
    case MB_FC_GET_COMM_EVENT_LOG:
    case MB_FC_REPORT_SERVER_ID:
        return RTU_OVERHEAD;
    case MB_FC_DIAGNOSTICS:
        return diagnostics_length(frame, length);
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        /* address, quantity, byte count */
        return length_from_byte_count(frame, length, 6, RTU_OVERHEAD + 5);
    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD:
        return length_from_byte_count(frame, length, 2, RTU_OVERHEAD + 1);
    case MB_FC_MASK_WRITE_REGISTER:
        return RTU_OVERHEAD + 6;
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        /* read address, read quantity, write address, write quantity, byte count */
        return length_from_byte_count(frame, length, 10, RTU_OVERHEAD + 9);
    case MB_FC_READ_FIFO_QUEUE:
        return RTU_OVERHEAD + 2;
    case MB_FC_ENCAPSULATED_INTERFACE:
        return encapsulated_length(frame, length, 1);
    }
    /* User-defined and reserved codes, and codes with the exception bit, which no request has. */
    return MB_EFUNCTION;
}

static int response_length(const uint8_t *frame, size_t length) {
    if (frame[1] & MB_EXCEPTION_BIT)
        return RTU_OVERHEAD + 1;
    switch (frame[1]) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
    case MB_FC_GET_COMM_EVENT_LOG:
    case MB_FC_REPORT_SERVER_ID:
    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD:
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        return length_from_byte_count(frame, length, 2, RTU_OVERHEAD + 1);
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
    case MB_FC_GET_COMM_EVENT_COUNTER:
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        return RTU_OVERHEAD + 4;
    case MB_FC_READ_EXCEPTION_STATUS:
        return RTU_OVERHEAD + 1;
    case MB_FC_DIAGNOSTICS:
        return diagnostics_length(frame, length);
    case MB_FC_MASK_WRITE_REGISTER:
        return RTU_OVERHEAD + 6;
    case MB_FC_READ_FIFO_QUEUE: {
        /* The only byte count that takes two bytes. */
        if (length < 4)
            return 0;
        size_t frame_length = RTU_OVERHEAD + 2 + (size_t)((frame[2] << 8) | frame[3]);
        return frame_length > MB_RTU_FRAME_MAX ? MB_EFRAME : (int)frame_length;
    }
    case MB_FC_ENCAPSULATED_INTERFACE:
        return encapsulated_length(frame, length, 0);
    }
    return MB_EFUNCTION;
}

int mb_rtu_frame_length(const uint8_t *frame, size_t length, int is_request) {
    if (frame == NULL)
        return MB_EINVAL;
    if (length < 2)
        return 0;
    return is_request ? request_length(frame, length) : response_length(frame, length);
}

/* ---- stream decoder ---- */

void mb_rtu_decoder_init(struct mb_rtu_decoder *decoder, int is_request, uint32_t t35_us) {
    memset(decoder, 0, sizeof *decoder);
    decoder->is_request = is_request ? 1 : 0;
    decoder->t35_us = t35_us;
}

/* Checks and hands out the `length` bytes held first; keeps what follows them. */
static int take_frame(struct mb_rtu_decoder *decoder, size_t length, uint8_t *address,
                      const uint8_t **pdu, size_t *pdu_length) {
    int rc = mb_rtu_decode(decoder->frame, length, address, pdu, pdu_length);
    if (rc != 0) {
        /* What comes after a bad frame cannot be trusted to start a frame: wait for silence. */
        decoder->errors++;
        decoder->held = 0;
        decoder->skipping = 1;
        return rc;
    }
    decoder->frames++;
    /* The PDU stays a view into frame[]: nothing may be moved over it before the next call, so
     * a frame is always handed out with nothing held behind it (see the feed loop). */
    decoder->held = 0;
    return 1;
}

void mb_rtu_decoder_set_stream(struct mb_rtu_decoder *decoder, int stream) {
    if (decoder != NULL)
        decoder->stream = stream ? 1 : 0;
}

/* On a stream: what is held is the start of a frame of known length, waiting for the rest. */
static int waiting_for_the_rest(const struct mb_rtu_decoder *decoder) {
    if (!decoder->stream || decoder->held == 0 || decoder->skipping)
        return 0;
    int whole = mb_rtu_frame_length(decoder->frame, decoder->held, decoder->is_request);
    return whole == 0 || (whole > 0 && (size_t)whole > decoder->held);
}

int mb_rtu_decoder_feed(struct mb_rtu_decoder *decoder, const uint8_t *data, size_t length,
                        uint64_t now_us, size_t *consumed, uint8_t *address, const uint8_t **pdu,
                        size_t *pdu_length) {
    if (decoder == NULL || consumed == NULL || address == NULL || pdu == NULL ||
        pdu_length == NULL || (data == NULL && length > 0))
        return MB_EINVAL;
    *consumed = 0;
    if (length == 0)
        return 0;
    /* A silence of t3.5 since the last byte ends whatever was held, and any skipping. */
    int silent = decoder->last_us != 0 && now_us >= decoder->last_us + decoder->t35_us &&
                 !waiting_for_the_rest(decoder);
    decoder->last_us = now_us != 0 ? now_us : 1;
    if (silent) {
        decoder->skipping = 0;
        if (decoder->held > 0) {
            int rc = take_frame(decoder, decoder->held, address, pdu, pdu_length);
            decoder->skipping = 0; /* the new bytes start afresh either way */
            return rc;             /* nothing consumed: the caller feeds the bytes again */
        }
    }
    if (decoder->skipping) {
        *consumed = length;
        return 0;
    }
    size_t used = 0;
    while (used < length) {
        decoder->frame[decoder->held++] = data[used++];
        int judged = mb_rtu_frame_length(decoder->frame, decoder->held, decoder->is_request);
        if (judged > 0 && decoder->held >= (size_t)judged) {
            *consumed = used;
            return take_frame(decoder, (size_t)judged, address, pdu, pdu_length);
        }
        if (judged == MB_EFRAME || (judged <= 0 && decoder->held >= MB_RTU_FRAME_MAX)) {
            /* Longer than any frame: noise, or frames run together with no silence between. */
            decoder->errors++;
            decoder->held = 0;
            decoder->skipping = 1;
            *consumed = length; /* the rest of this read belongs to the same run */
            return MB_EFRAME;
        }
    }
    *consumed = used;
    return 0;
}

uint64_t mb_rtu_decoder_deadline(const struct mb_rtu_decoder *decoder) {
    if (decoder == NULL || (decoder->held == 0 && !decoder->skipping) ||
        waiting_for_the_rest(decoder))
        return 0;
    return decoder->last_us + decoder->t35_us;
}

int mb_rtu_decoder_silence(struct mb_rtu_decoder *decoder, uint64_t now_us, uint8_t *address,
                           const uint8_t **pdu, size_t *pdu_length) {
    if (decoder == NULL || address == NULL || pdu == NULL || pdu_length == NULL)
        return MB_EINVAL;
    if ((decoder->held == 0 && !decoder->skipping) || waiting_for_the_rest(decoder))
        return 0;
    if (now_us < decoder->last_us + decoder->t35_us)
        return 0;
    decoder->skipping = 0;
    if (decoder->held == 0)
        return 0;
    int rc = take_frame(decoder, decoder->held, address, pdu, pdu_length);
    decoder->skipping = 0;
    return rc;
}
