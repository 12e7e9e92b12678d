/* SPDX-License-Identifier: MIT */
/*
 * What the fuzz targets share: the libFuzzer entry point, a property check that crashes the
 * fuzzer on purpose, exact-size heap copies (so AddressSanitizer catches a read one byte past
 * what a decoder was given), chunking patterns for the stream decoders, and a byte log to
 * compare what two runs produced.
 *
 * Fuzz code may allocate and print; the library may not.
 */
#ifndef MBSEC_FUZZ_FUZZ_H
#define MBSEC_FUZZ_FUZZ_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Each target defines this; libFuzzer or replay_main.c calls it once per input. */
int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* Reports a broken property and aborts, which libFuzzer records as a crash with its input. */
#define FUZZ_CHECK(cond)                          \
    do {                                          \
        if (!(cond))                              \
            fuzz_fail(__FILE__, __LINE__, #cond); \
    } while (0)

__attribute__((noreturn)) static inline void fuzz_fail(const char *file, int line,
                                                       const char *condition) {
    fprintf(stderr, "%s:%d: property broken: %s\n", file, line, condition);
    fflush(stderr);
    abort();
}

/* A heap copy of exactly `length` bytes (one byte is allocated for length 0, but never read). */
static inline uint8_t *fuzz_copy(const void *data, size_t length) {
    uint8_t *copy = calloc(length > 0 ? length : 1, 1);
    FUZZ_CHECK(copy != NULL);
    if (length > 0)
        memcpy(copy, data, length);
    return copy;
}

/* A heap buffer of exactly `length` bytes, filled with a marker so stale bytes show. */
static inline uint8_t *fuzz_buffer(size_t length) {
    uint8_t *buffer = malloc(length > 0 ? length : 1);
    FUZZ_CHECK(buffer != NULL);
    memset(buffer, 0xA5, length > 0 ? length : 1);
    return buffer;
}

/* ---- chunking patterns for stream decoders ---- */

enum fuzz_chunking {
    FUZZ_CHUNK_WHOLE,       /* the whole input in one call */
    FUZZ_CHUNK_BYTES,       /* one byte per call */
    FUZZ_CHUNK_FROM_INPUT,  /* sizes 0..16 read from the input's own bytes, cyclically */
    FUZZ_CHUNK_PSEUDORANDOM /* sizes 0..300 from a generator seeded by the input */
};
#define FUZZ_CHUNKINGS 4

struct fuzz_chunker {
    enum fuzz_chunking chunking;
    const uint8_t *data;
    size_t size;
    size_t index;
    uint32_t state;
    int last_was_empty;
};

static inline void fuzz_chunker_init(struct fuzz_chunker *chunker, enum fuzz_chunking chunking,
                                     const uint8_t *data, size_t size) {
    memset(chunker, 0, sizeof *chunker);
    chunker->chunking = chunking;
    chunker->data = data;
    chunker->size = size;
    /* The first and last bytes pick the pattern, so the fuzzer can steer it. */
    chunker->state = 0x9E3779B9u ^ (uint32_t)size;
    if (size > 0)
        chunker->state ^= (uint32_t)data[0] << 8 | (uint32_t)data[size - 1] << 16;
    if (chunker->state == 0)
        chunker->state = 1;
}

static inline uint32_t fuzz_xorshift(uint32_t *state) {
    uint32_t x = *state;
    x ^= x << 13;
    x ^= x >> 17;
    x ^= x << 5;
    *state = x;
    return x;
}

/*
 * The size of the next chunk, at most `remaining`. Empty chunks are allowed (a read that
 * returned nothing new) but never twice in a row, so every pattern makes progress.
 */
static inline size_t fuzz_chunk_next(struct fuzz_chunker *chunker, size_t remaining) {
    size_t chunk = remaining;
    switch (chunker->chunking) {
    case FUZZ_CHUNK_WHOLE:
        chunk = remaining;
        break;
    case FUZZ_CHUNK_BYTES:
        chunk = 1;
        break;
    case FUZZ_CHUNK_FROM_INPUT:
        chunk = chunker->size > 0 ? chunker->data[chunker->index++ % chunker->size] % 17u : 1;
        break;
    case FUZZ_CHUNK_PSEUDORANDOM:
        chunk = fuzz_xorshift(&chunker->state) % 301u;
        break;
    }
    if (chunk == 0 && chunker->last_was_empty)
        chunk = 1;
    chunker->last_was_empty = chunk == 0;
    return chunk < remaining ? chunk : remaining;
}

/* ---- a growable byte log: what a run produced, to compare with another run ---- */

struct fuzz_log {
    uint8_t *bytes;
    size_t length;
    size_t capacity;
};

static inline void fuzz_log_append(struct fuzz_log *log, const void *data, size_t length) {
    if (log->length + length > log->capacity) {
        size_t capacity = log->capacity > 0 ? log->capacity : 256;
        while (capacity < log->length + length)
            capacity *= 2;
        uint8_t *bytes = realloc(log->bytes, capacity);
        FUZZ_CHECK(bytes != NULL);
        log->bytes = bytes;
        log->capacity = capacity;
    }
    if (length > 0)
        memcpy(log->bytes + log->length, data, length);
    log->length += length;
}

static inline void fuzz_log_u32(struct fuzz_log *log, uint32_t value) {
    uint8_t bytes[4] = {(uint8_t)(value >> 24), (uint8_t)(value >> 16), (uint8_t)(value >> 8),
                        (uint8_t)value};
    fuzz_log_append(log, bytes, sizeof bytes);
}

static inline int fuzz_log_equal(const struct fuzz_log *a, const struct fuzz_log *b) {
    return a->length == b->length && (a->length == 0 || memcmp(a->bytes, b->bytes, a->length) == 0);
}

static inline void fuzz_log_free(struct fuzz_log *log) {
    free(log->bytes);
    memset(log, 0, sizeof *log);
}

/* ---- reading a structured input: bytes taken in order, zeros once it runs out ---- */

struct fuzz_input {
    const uint8_t *data;
    size_t size;
    size_t at;
};

static inline void fuzz_input_init(struct fuzz_input *input, const uint8_t *data, size_t size) {
    input->data = data;
    input->size = size;
    input->at = 0;
}

static inline size_t fuzz_input_left(const struct fuzz_input *input) {
    return input->size - input->at;
}

static inline uint8_t fuzz_u8(struct fuzz_input *input) {
    return input->at < input->size ? input->data[input->at++] : 0;
}

static inline uint16_t fuzz_u16(struct fuzz_input *input) {
    uint16_t high = fuzz_u8(input);
    return (uint16_t)(high << 8 | fuzz_u8(input));
}

/* Up to `wanted` bytes from the input, as a view: returns how many there were. */
static inline size_t fuzz_take(struct fuzz_input *input, size_t wanted, const uint8_t **bytes) {
    size_t count = wanted < fuzz_input_left(input) ? wanted : fuzz_input_left(input);
    *bytes = input->data + input->at;
    input->at += count;
    return count;
}

/* 1 if the NUL-terminated text is printable ASCII (spaces included) and ends within `capacity`. */
static inline int fuzz_printable(const char *text, size_t capacity) {
    for (size_t i = 0; i < capacity; i++) {
        if (text[i] == '\0')
            return 1;
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] > 0x7E)
            return 0;
    }
    return 0;
}

/* 1 if the NUL-terminated text is one line, ending within `capacity`: no control characters
 * (bytes of UTF-8 and other bytes from 0x80 up are allowed). */
static inline int fuzz_one_line(const char *text, size_t capacity) {
    for (size_t i = 0; i < capacity; i++) {
        if (text[i] == '\0')
            return 1;
        if ((unsigned char)text[i] < 0x20 || (unsigned char)text[i] == 0x7F)
            return 0;
    }
    return 0;
}

/* 1 if [inner, inner + inner_length) lies inside [outer, outer + outer_length). */
static inline int fuzz_within(const uint8_t *inner, size_t inner_length, const uint8_t *outer,
                              size_t outer_length) {
    uintptr_t start = (uintptr_t)inner, base = (uintptr_t)outer;
    return start >= base && start - base <= outer_length &&
           inner_length <= outer_length - (start - base);
}

#endif
