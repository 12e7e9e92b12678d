/* SPDX-License-Identifier: MIT */
/*
 * Serial-line framing (Modbus over Serial Line V1.02) as codecs: RTU (binary, CRC-16) and ASCII
 * (hex, LRC, CR LF), which neither allocate nor do I/O. Opening a line is the transport's
 * (mb_serial_open(), transport.h).
 *
 * RTU frame:   address | PDU (1..253) | CRC low | CRC high            -> 4..256 bytes
 * ASCII frame: ':' | hex(address | PDU | LRC) | CR LF                 -> 9..513 characters
 * Addresses: 0 broadcast (writes only, no reply), 1..247 devices, 248..255 reserved.
 */
#ifndef MBSEC_SERIAL_H
#define MBSEC_SERIAL_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/export.h"
#include "mbsec/pdu.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MB_SERIAL_BROADCAST 0
#define MB_SERIAL_ADDRESS_MAX 247
#define MB_RTU_FRAME_MIN 4
#define MB_RTU_FRAME_MAX 256
#define MB_ASCII_FRAME_MIN 9
#define MB_ASCII_FRAME_MAX 513

/* ---- RTU ---- */

/* CRC-16/MODBUS of data[0..length): init 0xFFFF, reflected polynomial 0xA001, no final XOR.
 * On the wire the low byte goes first. */
MB_API uint16_t mb_crc16(const uint8_t *data, size_t length);

/* Writes address | pdu | CRC into frame[0..capacity). Returns the frame length, MB_ENOSPC or
 * MB_EINVAL (pdu_length 0 or over MB_PDU_MAX). */
MB_API int mb_rtu_encode(uint8_t address, const uint8_t *pdu, size_t pdu_length, uint8_t *frame,
                         size_t capacity);

/* Checks a complete RTU frame (as delimited by the line's silent intervals). On success sets
 * *address and *pdu / *pdu_length (a view into frame) and returns 0. Errors: MB_EFRAME (shorter
 * than 4 or longer than 256 bytes), MB_ECRC. Every address is reported; see mb_rtu_accept(). */
MB_API int mb_rtu_decode(const uint8_t *frame, size_t length, uint8_t *address, const uint8_t **pdu,
                         size_t *pdu_length);

/*
 * For a server at `own_address` (1..247) that received a request to `address` with function
 * code `function`: returns MB_RTU_PROCESS_REPLY (addressed to it), MB_RTU_PROCESS_SILENT (a
 * broadcast write: execute, do not reply) or MB_RTU_IGNORE (another device, a reserved address,
 * or a broadcast of a function that reads and so cannot be broadcast); MB_EINVAL when
 * own_address is not 1..247.
 */
enum mb_rtu_disposition {
    MB_RTU_IGNORE = 0,
    MB_RTU_PROCESS_REPLY = 1,
    MB_RTU_PROCESS_SILENT = 2,
};
MB_API int mb_rtu_accept(uint8_t own_address, uint8_t address, uint8_t function);

/* 1 if `function` may be broadcast (it only writes: FC 5, 6, 15, 16, 21, 22, and FC 8 is not
 * among them), else 0. */
MB_API int mb_function_is_broadcastable(uint8_t function);

/*
 * Silent intervals for a baud rate: t1.5 (gap inside a frame that voids it) and t3.5 (gap that
 * ends a frame), in microseconds, rounded up so that a gap is never shorter than the spec's.
 * Up to 19200 baud from 11 bits per character (9600 baud: 1719 and 4011 us); above it the
 * fixed 750 us and 1750 us. Returns 0 or MB_EINVAL (baud 0).
 */
MB_API int mb_rtu_timing(uint32_t baud, uint32_t *t15_us, uint32_t *t35_us);

/*
 * For links where silent intervals cannot be seen (USB adapters, RTU over TCP): the length of
 * the RTU frame that begins at frame[0..length), judged from its function code and byte count.
 * `is_request` says which direction. Returns the whole frame length (4..256) when it can be
 * known, 0 when more bytes are needed to know it, or MB_EFUNCTION for a function code whose
 * length cannot be judged (user-defined and reserved codes, FC 43 other than MEI 14, and FC 8
 * sub-function 0x00, whose echo may be of any length: guessing would let the tail of a long
 * echo pass as a frame of its own), MB_EFRAME for a length over 256.
 */
MB_API int mb_rtu_frame_length(const uint8_t *frame, size_t length, int is_request);

/*
 * RTU stream decoder: bytes from any number of reads in, each with the time it was read, frames
 * out. A frame ends at the length its function code and byte count give
 * (mb_rtu_frame_length()), or, when that cannot be judged, at a silence of t3.5: the caller
 * asks mb_rtu_decoder_deadline() when that would be and calls mb_rtu_decoder_silence() then.
 * Bytes that arrive after a silence of t3.5 start a new frame whatever was held. A frame with a
 * bad CRC, one too long, or bytes that make no frame (noise) are dropped with an error and the
 * decoder skips everything up to the next silence, as the spec resynchronises; errors are per
 * frame and never fatal. No allocation, no I/O: times are the caller's (microseconds, any
 * monotonic origin).
 */
struct mb_rtu_decoder {
    uint8_t frame[MB_RTU_FRAME_MAX];
    uint16_t held;
    uint8_t is_request; /* 1: frames are requests (a server); 0: answers (a client) */
    uint8_t skipping;   /* dropping bytes until the line falls silent */
    uint8_t stream;     /* a stream without timing (RTU over TCP): mb_rtu_decoder_set_stream() */
    uint32_t t35_us;
    uint64_t last_us; /* when the last byte was fed */
    uint32_t frames;  /* good frames handed out */
    uint32_t errors;  /* frames dropped (bad CRC, too long, noise) */
};

/* Resets the decoder for requests (is_request 1) or answers (0), with the end-of-frame silence
 * t3.5 (mb_rtu_timing()). */
MB_API void mb_rtu_decoder_init(struct mb_rtu_decoder *decoder, int is_request, uint32_t t35_us);

/*
 * Consumes bytes read at `now_us` from data[0..length), setting *consumed. Returns 1 with
 * *address and *pdu / *pdu_length set (a view into the decoder, valid until the next call) when
 * a frame is complete (call again with the rest of the input: an echo and an answer can come in
 * one read); 0 when all input was consumed without completing one; MB_ECRC or MB_EFRAME when a
 * frame was dropped (call again with the rest).
 */
MB_API int mb_rtu_decoder_feed(struct mb_rtu_decoder *decoder, const uint8_t *data, size_t length,
                               uint64_t now_us, size_t *consumed, uint8_t *address,
                               const uint8_t **pdu, size_t *pdu_length);

/*
 * For a stream without the line's timing (RTU over TCP, where a converter may hold a segment
 * back: Nagle's algorithm against a delayed acknowledgement is 40 ms and more): a gap does not
 * end or void a frame whose length its function code gives and that is not whole yet; it waits
 * for the rest. A frame whose length cannot be judged still ends at a silence of t3.5, and
 * what follows noise is still skipped up to a silence. mb_rtu_decoder_init() clears it.
 */
MB_API void mb_rtu_decoder_set_stream(struct mb_rtu_decoder *decoder, int stream);

/* When the line, silent from now on, would end what is held (a frame of unknown length is
 * handed out then, a partial one dropped): the last byte's time + t3.5; 0 when nothing is held
 * and nothing is being skipped. */
MB_API uint64_t mb_rtu_decoder_deadline(const struct mb_rtu_decoder *decoder);

/*
 * Tells the decoder that nothing arrived up to `now_us`. At or past the deadline it ends what is
 * held: returns 1 with a frame (one whose length could not be judged and whose CRC is good), 0
 * when there was nothing to end (or the deadline is not reached), MB_ECRC / MB_EFRAME when what
 * was held is dropped (a partial frame: the sender stopped in its middle).
 */
MB_API int mb_rtu_decoder_silence(struct mb_rtu_decoder *decoder, uint64_t now_us, uint8_t *address,
                                  const uint8_t **pdu, size_t *pdu_length);

/* ---- ASCII ---- */

/* LRC: the two's complement of the 8-bit sum of data[0..length). */
MB_API uint8_t mb_lrc(const uint8_t *data, size_t length);

/* Writes ':' hex(address | pdu | LRC) CR LF (uppercase hex, no NUL terminator) into
 * frame[0..capacity). Returns the frame length, MB_ENOSPC or MB_EINVAL. */
MB_API int mb_ascii_encode(uint8_t address, const uint8_t *pdu, size_t pdu_length, char *frame,
                           size_t capacity);

/*
 * Decodes a complete ASCII frame, from ':' through the line feed, into binary: binary[0] is the
 * address, then the PDU, without the LRC. `binary` needs (length - 5) / 2 bytes (at most 254).
 * On success sets *address, *pdu / *pdu_length (a view into binary) and returns 0. Errors:
 * MB_EFRAME (no ':' first, no CR LF last, an odd number of hex digits, too short or long),
 * MB_ECHARACTER (not a hex digit; upper and lower case are both accepted), MB_ELRC, MB_ENOSPC.
 */
MB_API int mb_ascii_decode(const char *frame, size_t length, uint8_t *binary, size_t capacity,
                           uint8_t *address, const uint8_t **pdu, size_t *pdu_length);

/*
 * ASCII stream decoder: characters from any number of reads in, frames out. A ':' always starts
 * a new frame (a partial one before it is dropped with MB_EFRAME and counted as an error); the
 * frame ends at CR followed by the delimiter (LF, or what FC 8/03 set). A line that reaches 513
 * characters without ending is dropped and the rest of it skipped up to the next ':'. Errors
 * are per frame and never fatal.
 */
struct mb_ascii_decoder {
    char line[MB_ASCII_FRAME_MAX];
    uint16_t held;
    uint8_t delimiter; /* '\n' by default */
    uint8_t binary[(MB_ASCII_FRAME_MAX - 5) / 2];
    uint32_t frames; /* good frames handed out */
    uint32_t errors; /* frames dropped for an error */
};

/* Resets the decoder, with the end-of-frame delimiter '\n'. */
MB_API void mb_ascii_decoder_init(struct mb_ascii_decoder *decoder);

/* Sets the character that follows CR at the end of a frame (FC 8 sub-function 03). */
MB_API void mb_ascii_decoder_set_delimiter(struct mb_ascii_decoder *decoder, uint8_t delimiter);

/*
 * Consumes characters from data[0..length), setting *consumed. Returns 1 with *address,
 * *pdu / *pdu_length set (a view into the decoder, valid until the next call) when a frame is
 * complete; 0 when all input was consumed without completing one; a negative error (as
 * mb_ascii_decode(), or MB_EFRAME for a line over 513 characters) when a frame was dropped:
 * call again with the rest of the input. Characters outside a frame are skipped.
 */
MB_API int mb_ascii_decoder_feed(struct mb_ascii_decoder *decoder, const char *data, size_t length,
                                 size_t *consumed, uint8_t *address, const uint8_t **pdu,
                                 size_t *pdu_length);

#ifdef __cplusplus
}
#endif

#endif
