/* SPDX-License-Identifier: MIT */
#include "mbsec/serial.h"

#include <string.h>

#include "mbsec/error.h"

/* The shortest body is address, function code and LRC: three bytes, six hex digits. */
#define ASCII_DIGITS_MIN 6
#define ASCII_DIGITS_MAX (MB_ASCII_FRAME_MAX - 3)

/* ---- LRC ---- */

uint8_t mb_lrc(const uint8_t *data, size_t length) {
    uint8_t sum = 0;
    if (data == NULL)
        return 0;
    for (size_t i = 0; i < length; i++)
        sum = (uint8_t)(sum + data[i]);
    return (uint8_t)-sum;
}

/* ---- hex ---- */

static const char hex_digits[] = "0123456789ABCDEF";

/* The value of a hex digit of either case, or -1. Written out rather than taken from the C
 * library's character classes, whose answers depend on the locale. */
static int hex_value(char c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    return -1;
}

static void put_hex_byte(uint8_t value, char *out) {
    out[0] = hex_digits[value >> 4];
    out[1] = hex_digits[value & 0x0F];
}

static int get_hex_byte(const char *digits, uint8_t *value) {
    int high = hex_value(digits[0]);
    int low = hex_value(digits[1]);
    if (high < 0 || low < 0)
        return MB_ECHARACTER;
    *value = (uint8_t)((high << 4) | low);
    return 0;
}

/* ---- encoding ---- */

int mb_ascii_encode(uint8_t address, const uint8_t *pdu, size_t pdu_length, char *frame,
                    size_t capacity) {
    if (pdu == NULL || frame == NULL || pdu_length == 0 || pdu_length > MB_PDU_MAX)
        return MB_EINVAL;
    /* ':', two digits for each of address, PDU and LRC, CR, LF */
    size_t frame_length = 1 + 2 * (pdu_length + 2) + 2;
    if (capacity < frame_length)
        return MB_ENOSPC;
    uint8_t lrc = (uint8_t)(mb_lrc(pdu, pdu_length) - address);
    char *out = frame;
    *out++ = ':';
    put_hex_byte(address, out);
    out += 2;
    for (size_t i = 0; i < pdu_length; i++, out += 2)
        put_hex_byte(pdu[i], out);
    put_hex_byte(lrc, out);
    out += 2;
    *out++ = '\r';
    *out = '\n';
    return (int)frame_length;
}

/* ---- decoding ---- */

/*
 * Decodes the hex digits between ':' and CR: address, PDU and LRC. The LRC is checked but not
 * stored, so `binary` needs one byte less than the digits encode. Shared by the one-shot and
 * the stream decoder, which delimit frames differently.
 */
static int decode_digits(const char *digits, size_t digit_count, uint8_t *binary, size_t capacity,
                         uint8_t *address, const uint8_t **pdu, size_t *pdu_length) {
    if (digit_count % 2 != 0 || digit_count < ASCII_DIGITS_MIN || digit_count > ASCII_DIGITS_MAX)
        return MB_EFRAME;
    size_t byte_count = digit_count / 2 - 1;
    if (capacity < byte_count)
        return MB_ENOSPC;
    uint8_t sum = 0;
    for (size_t i = 0; i < byte_count; i++) {
        int rc = get_hex_byte(digits + 2 * i, &binary[i]);
        if (rc < 0)
            return rc;
        sum = (uint8_t)(sum + binary[i]);
    }
    uint8_t lrc;
    int rc = get_hex_byte(digits + 2 * byte_count, &lrc);
    if (rc < 0)
        return rc;
    if ((uint8_t)(sum + lrc) != 0)
        return MB_ELRC;
    *address = binary[0];
    *pdu = binary + 1;
    *pdu_length = byte_count - 1;
    return 0;
}

int mb_ascii_decode(const char *frame, size_t length, uint8_t *binary, size_t capacity,
                    uint8_t *address, const uint8_t **pdu, size_t *pdu_length) {
    if (frame == NULL || binary == NULL || address == NULL || pdu == NULL || pdu_length == NULL)
        return MB_EINVAL;
    if (length < MB_ASCII_FRAME_MIN || length > MB_ASCII_FRAME_MAX)
        return MB_EFRAME;
    if (frame[0] != ':' || frame[length - 2] != '\r' || frame[length - 1] != '\n')
        return MB_EFRAME;
    return decode_digits(frame + 1, length - 3, binary, capacity, address, pdu, pdu_length);
}

/* ---- stream decoder ---- */

/*
 * The decoder keeps ':' and everything after it up to the CR that may end the frame, but not
 * the delimiter, which completes the frame as it arrives. A complete frame holds at most
 * MB_ASCII_FRAME_MAX - 1 characters before its delimiter; a line that grows past that without
 * ending cannot be a frame.
 */
#define ASCII_HELD_MAX (MB_ASCII_FRAME_MAX - 1)

void mb_ascii_decoder_init(struct mb_ascii_decoder *decoder) {
    if (decoder == NULL)
        return;
    memset(decoder, 0, sizeof *decoder);
    decoder->delimiter = '\n';
}

void mb_ascii_decoder_set_delimiter(struct mb_ascii_decoder *decoder, uint8_t delimiter) {
    if (decoder != NULL)
        decoder->delimiter = delimiter;
}

static int frame_dropped(struct mb_ascii_decoder *decoder, int error) {
    decoder->errors++;
    return error;
}

/* Decodes the held line, whose delimiter has just arrived, and empties the decoder. */
static int complete_frame(struct mb_ascii_decoder *decoder, uint8_t *address, const uint8_t **pdu,
                          size_t *pdu_length) {
    size_t digit_count = (size_t)decoder->held - 2; /* without ':' and CR */
    decoder->held = 0;
    int rc = decode_digits(decoder->line + 1, digit_count, decoder->binary, sizeof decoder->binary,
                           address, pdu, pdu_length);
    if (rc < 0)
        return frame_dropped(decoder, rc);
    decoder->frames++;
    return 1;
}

int mb_ascii_decoder_feed(struct mb_ascii_decoder *decoder, const char *data, size_t length,
                          size_t *consumed, uint8_t *address, const uint8_t **pdu,
                          size_t *pdu_length) {
    if (decoder == NULL || consumed == NULL || address == NULL || pdu == NULL ||
        pdu_length == NULL || (data == NULL && length > 0))
        return MB_EINVAL;
    /* A decoder the caller filled with garbage must not index past its line. */
    if (decoder->held > ASCII_HELD_MAX)
        decoder->held = 0;
    for (size_t i = 0; i < length; i++) {
        char c = data[i];
        *consumed = i + 1;
        if (decoder->held == 0) {
            /* Between frames everything but the start of a frame is noise. */
            if (c == ':') {
                decoder->line[0] = c;
                decoder->held = 1;
            }
            continue;
        }
        /* The end comes first, so that even a delimiter set to ':' can end a frame. */
        if (decoder->line[decoder->held - 1] == '\r' && (uint8_t)c == decoder->delimiter)
            return complete_frame(decoder, address, pdu, pdu_length);
        if (c == ':') {
            /* The partial frame is lost, but this ':' begins the next one. */
            decoder->line[0] = c;
            decoder->held = 1;
            return frame_dropped(decoder, MB_EFRAME);
        }
        if (decoder->held == ASCII_HELD_MAX) {
            /* The rest of this line is noise until the next ':'. */
            decoder->held = 0;
            return frame_dropped(decoder, MB_EFRAME);
        }
        decoder->line[decoder->held++] = c;
    }
    *consumed = length;
    return 0;
}
