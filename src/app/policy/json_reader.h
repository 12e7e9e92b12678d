/* SPDX-License-Identifier: MIT */
/*
 * A small pull reader of JSON text held in memory (RFC 8259), for one audit record at a time:
 * the caller walks an object key by key and takes each value as the type it expects. Nothing
 * allocates, nothing reads outside [text, text + length) (NUL bytes are ordinary bytes there,
 * and refused like any other control character), and every call consumes input or fails, so no
 * input makes a walk loop. The first problem sticks: after it every call fails and
 * json_reader_error() names it (a static string).
 *
 *   struct json_reader reader;
 *   json_reader_init(&reader, line, length);
 *   json_reader_expect(&reader, '{');
 *   ... json_reader_string(), json_reader_number(), json_reader_skip() ...
 *   json_reader_finish(&reader);   (nothing but whitespace may follow)
 */
#ifndef MBSEC_APP_POLICY_JSON_READER_H
#define MBSEC_APP_POLICY_JSON_READER_H

#include <stddef.h>
#include <stdint.h>

/* Containers nested deeper than this inside a skipped value are refused. */
#define JSON_READER_MAX_DEPTH 32

struct json_reader {
    const unsigned char *at;
    const unsigned char *end;
    const char *error; /* NULL while all is well */
};

/* A number as read: `whole` when it is a plain non-negative integer (digits only: no sign,
 * fraction or exponent), then `value` holds it unless `overflow` says it passed UINT64_MAX. */
struct json_number {
    uint64_t value;
    int whole;
    int overflow;
};

/* JSON value types, as json_reader_peek() tells them from the first byte. */
enum json_type {
    JSON_NONE, /* the end of the text, or a byte no value starts with */
    JSON_OBJECT,
    JSON_ARRAY,
    JSON_STRING,
    JSON_NUMBER,
    JSON_TRUE,
    JSON_FALSE,
    JSON_NULL,
};

void json_reader_init(struct json_reader *reader, const void *text, size_t length);

/* The first problem met, or NULL. */
const char *json_reader_error(const struct json_reader *reader);

/* Skips whitespace and returns the type of the value that starts there (JSON_NONE after an
 * error). */
enum json_type json_reader_peek(struct json_reader *reader);

/* Skips whitespace and takes `byte` (one of { } [ ] : ,) if it is next: returns 1, else 0 and
 * the reader is unchanged. */
int json_reader_accept(struct json_reader *reader, char byte);

/* The same, but a missing byte is an error. Returns 0 or -1. */
int json_reader_expect(struct json_reader *reader, char byte);

/*
 * Reads a string value, decoding every escape (\u followed by four hex digits, with surrogate
 * pairs, into UTF-8) and
 * checking the raw bytes are well-formed UTF-8 without control characters. Writes at most
 * capacity - 1 bytes of the decoded text to `out` (when capacity > 0), NUL-terminated, and sets
 * *length to the whole decoded length, which may be more: the caller tells a cut string by
 * *length >= capacity. Decoded text may contain NUL (from \u0000). `out` may be NULL with
 * capacity 0 to check a string without keeping it. Returns 0 or -1.
 */
int json_reader_string(struct json_reader *reader, char *out, size_t capacity, size_t *length);

/* Reads a number (the whole JSON grammar: sign, fraction, exponent). Returns 0 or -1. */
int json_reader_number(struct json_reader *reader, struct json_number *number);

/* Reads true, false or null into *type. Returns 0 or -1. */
int json_reader_literal(struct json_reader *reader, enum json_type *type);

/* Skips one value of any type, checking its syntax, with containers nested at most
 * JSON_READER_MAX_DEPTH deep. Returns 0 or -1. */
int json_reader_skip(struct json_reader *reader);

/* Checks that only whitespace is left. Returns 0, or -1 (trailing bytes, or an earlier error). */
int json_reader_finish(struct json_reader *reader);

#endif
