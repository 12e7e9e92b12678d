/* SPDX-License-Identifier: MIT */
#include "app/policy/json_reader.h"

#include <string.h>

#include "app/common/json.h"

static int fail(struct json_reader *reader, const char *error) {
    if (reader->error == NULL)
        reader->error = error;
    /* Nothing is read after the first problem: every later call sees an empty text. */
    reader->at = reader->end;
    return -1;
}

void json_reader_init(struct json_reader *reader, const void *text, size_t length) {
    reader->at = text;
    reader->end = reader->at + length;
    reader->error = NULL;
}

const char *json_reader_error(const struct json_reader *reader) {
    return reader->error;
}

static void skip_space(struct json_reader *reader) {
    while (reader->at < reader->end && (*reader->at == ' ' || *reader->at == '\t' ||
                                        *reader->at == '\n' || *reader->at == '\r'))
        reader->at++;
}

enum json_type json_reader_peek(struct json_reader *reader) {
    skip_space(reader);
    if (reader->error != NULL || reader->at == reader->end)
        return JSON_NONE;
    switch (*reader->at) {
    case '{':
        return JSON_OBJECT;
    case '[':
        return JSON_ARRAY;
    case '"':
        return JSON_STRING;
    case 't':
        return JSON_TRUE;
    case 'f':
        return JSON_FALSE;
    case 'n':
        return JSON_NULL;
    case '-':
        return JSON_NUMBER;
    default:
        return *reader->at >= '0' && *reader->at <= '9' ? JSON_NUMBER : JSON_NONE;
    }
}

int json_reader_accept(struct json_reader *reader, char byte) {
    skip_space(reader);
    if (reader->error != NULL || reader->at == reader->end || *reader->at != (unsigned char)byte)
        return 0;
    reader->at++;
    return 1;
}

int json_reader_expect(struct json_reader *reader, char byte) {
    if (json_reader_accept(reader, byte))
        return 0;
    if (reader->error != NULL)
        return -1;
    if (reader->at == reader->end)
        return fail(reader, "the line ends in the middle of a value");
    switch (byte) {
    case '{':
        return fail(reader, "not a JSON object");
    case ':':
        return fail(reader, "a colon expected after a key");
    case '"':
        return fail(reader, "a key expected");
    default:
        return fail(reader, "a comma or a closing bracket expected");
    }
}

/* ---- strings ---- */

/* Reads the four hex digits of a \u escape (the reader is past the "\u"). Returns the code unit
 * or -1. */
static long read_code_unit(struct json_reader *reader) {
    if (reader->end - reader->at < 4)
        return fail(reader, "a \\u escape cut short");
    long unit = 0;
    for (int i = 0; i < 4; i++) {
        int digit = json_hex_digit(reader->at[i]);
        if (digit < 0)
            return fail(reader, "a \\u escape with a byte that is not a hex digit");
        unit = unit << 4 | digit;
    }
    reader->at += 4;
    return unit;
}

/* Appends bytes to the caller's buffer as far as they fit (keeping room for the NUL), counting
 * them all. */
static void put_bytes(char *out, size_t capacity, size_t *length, const unsigned char *bytes,
                      size_t count) {
    if (*length + 1 < capacity) {
        size_t room = capacity - 1 - *length;
        memcpy(out + *length, bytes, count < room ? count : room);
    }
    *length += count;
}

static void put_code_point(char *out, size_t capacity, size_t *length, unsigned long point) {
    unsigned char bytes[4];
    size_t count;
    if (point < 0x80) {
        bytes[0] = (unsigned char)point;
        count = 1;
    } else if (point < 0x800) {
        bytes[0] = (unsigned char)(0xC0 | point >> 6);
        bytes[1] = (unsigned char)(0x80 | (point & 0x3F));
        count = 2;
    } else if (point < 0x10000) {
        bytes[0] = (unsigned char)(0xE0 | point >> 12);
        bytes[1] = (unsigned char)(0x80 | (point >> 6 & 0x3F));
        bytes[2] = (unsigned char)(0x80 | (point & 0x3F));
        count = 3;
    } else {
        bytes[0] = (unsigned char)(0xF0 | point >> 18);
        bytes[1] = (unsigned char)(0x80 | (point >> 12 & 0x3F));
        bytes[2] = (unsigned char)(0x80 | (point >> 6 & 0x3F));
        bytes[3] = (unsigned char)(0x80 | (point & 0x3F));
        count = 4;
    }
    put_bytes(out, capacity, length, bytes, count);
}

/* The escape after a backslash (the reader is past it). Returns 0 or -1. */
static int read_escape(struct json_reader *reader, char *out, size_t capacity, size_t *length) {
    if (reader->at == reader->end)
        return fail(reader, "the line ends inside a string");
    unsigned char escaped = *reader->at++, byte;
    switch (escaped) {
    case '"':
    case '\\':
    case '/':
        byte = escaped;
        break;
    case 'b':
        byte = '\b';
        break;
    case 'f':
        byte = '\f';
        break;
    case 'n':
        byte = '\n';
        break;
    case 'r':
        byte = '\r';
        break;
    case 't':
        byte = '\t';
        break;
    case 'u': {
        long unit = read_code_unit(reader);
        if (unit < 0)
            return -1;
        if (unit >= 0xDC00 && unit <= 0xDFFF)
            return fail(reader, "a low surrogate without a high one before it");
        unsigned long point = (unsigned long)unit;
        if (unit >= 0xD800 && unit <= 0xDBFF) {
            /* UTF-16 in the escapes: a high surrogate counts only with its low half. */
            if (reader->end - reader->at < 2 || reader->at[0] != '\\' || reader->at[1] != 'u')
                return fail(reader, "a high surrogate without a low one after it");
            reader->at += 2;
            long low = read_code_unit(reader);
            if (low < 0)
                return -1;
            if (low < 0xDC00 || low > 0xDFFF)
                return fail(reader, "a high surrogate without a low one after it");
            point =
                0x10000 + ((unsigned long)(unit - 0xD800) << 10) + (unsigned long)(low - 0xDC00);
        }
        put_code_point(out, capacity, length, point);
        return 0;
    }
    default:
        return fail(reader, "an unknown escape in a string");
    }
    put_bytes(out, capacity, length, &byte, 1);
    return 0;
}

int json_reader_string(struct json_reader *reader, char *out, size_t capacity, size_t *length) {
    *length = 0;
    if (capacity > 0)
        out[0] = '\0';
    if (json_reader_peek(reader) != JSON_STRING)
        return reader->error != NULL ? -1 : fail(reader, "a string expected");
    reader->at++;
    for (;;) {
        /* The plain bytes up to the next quote, backslash or non-ASCII byte go in one run. */
        const unsigned char *run = reader->at;
        while (reader->at < reader->end && *reader->at >= 0x20 && *reader->at < 0x80 &&
               *reader->at != '"' && *reader->at != '\\')
            reader->at++;
        put_bytes(out, capacity, length, run, (size_t)(reader->at - run));
        if (reader->at == reader->end)
            return fail(reader, "the line ends inside a string");
        unsigned char byte = *reader->at;
        if (byte == '"') {
            reader->at++;
            break;
        }
        if (byte == '\\') {
            reader->at++;
            if (read_escape(reader, out, capacity, length) != 0)
                return -1;
        } else if (byte < 0x20) {
            return fail(reader, "a control character or NUL byte in a string");
        } else {
            size_t consumed;
            size_t sequence =
                json_utf8_sequence(reader->at, (size_t)(reader->end - reader->at), &consumed);
            if (sequence == 0)
                return fail(reader, "bytes that are not UTF-8 in a string");
            put_bytes(out, capacity, length, reader->at, sequence);
            reader->at += sequence;
        }
    }
    if (capacity > 0)
        out[*length < capacity ? *length : capacity - 1] = '\0';
    return 0;
}

/* ---- numbers and literals ---- */

int json_reader_number(struct json_reader *reader, struct json_number *number) {
    number->value = 0;
    number->whole = 1;
    number->overflow = 0;
    if (json_reader_peek(reader) != JSON_NUMBER)
        return reader->error != NULL ? -1 : fail(reader, "a number expected");
    if (*reader->at == '-') {
        number->whole = 0;
        reader->at++;
    }
    if (reader->at == reader->end || *reader->at < '0' || *reader->at > '9')
        return fail(reader, "a minus sign without digits");
    if (*reader->at == '0' && reader->end - reader->at > 1 && reader->at[1] >= '0' &&
        reader->at[1] <= '9')
        return fail(reader, "a number with a leading zero");
    while (reader->at < reader->end && *reader->at >= '0' && *reader->at <= '9') {
        unsigned digit = (unsigned)(*reader->at++ - '0');
        if (number->value > (UINT64_MAX - digit) / 10)
            number->overflow = 1;
        else
            number->value = number->value * 10 + digit;
    }
    if (reader->at < reader->end && *reader->at == '.') {
        number->whole = 0;
        reader->at++;
        if (reader->at == reader->end || *reader->at < '0' || *reader->at > '9')
            return fail(reader, "a decimal point without digits after it");
        while (reader->at < reader->end && *reader->at >= '0' && *reader->at <= '9')
            reader->at++;
    }
    if (reader->at < reader->end && (*reader->at == 'e' || *reader->at == 'E')) {
        number->whole = 0;
        reader->at++;
        if (reader->at < reader->end && (*reader->at == '+' || *reader->at == '-'))
            reader->at++;
        if (reader->at == reader->end || *reader->at < '0' || *reader->at > '9')
            return fail(reader, "an exponent without digits");
        while (reader->at < reader->end && *reader->at >= '0' && *reader->at <= '9')
            reader->at++;
    }
    return 0;
}

static int take_word(struct json_reader *reader, const char *word, size_t length) {
    if ((size_t)(reader->end - reader->at) < length)
        return fail(reader, "the line ends in the middle of a value");
    for (size_t i = 0; i < length; i++)
        if (reader->at[i] != (unsigned char)word[i])
            return fail(reader, "not a JSON value");
    reader->at += length;
    return 0;
}

int json_reader_literal(struct json_reader *reader, enum json_type *type) {
    *type = json_reader_peek(reader);
    switch (*type) {
    case JSON_TRUE:
        return take_word(reader, "true", 4);
    case JSON_FALSE:
        return take_word(reader, "false", 5);
    case JSON_NULL:
        return take_word(reader, "null", 4);
    default:
        return reader->error != NULL ? -1 : fail(reader, "true, false or null expected");
    }
}

/* ---- skipping ---- */

static int skip_value(struct json_reader *reader, int depth);

/* The members of an object or the elements of an array, past its opening bracket. */
static int skip_container(struct json_reader *reader, int object, int depth) {
    char close = object ? '}' : ']';
    if (depth > JSON_READER_MAX_DEPTH)
        return fail(reader, "objects or arrays nested too deep");
    if (json_reader_accept(reader, close))
        return 0;
    do {
        if (object) {
            size_t length;
            if (json_reader_string(reader, NULL, 0, &length) != 0 ||
                json_reader_expect(reader, ':') != 0)
                return -1;
        }
        if (skip_value(reader, depth) != 0)
            return -1;
    } while (json_reader_accept(reader, ','));
    return json_reader_expect(reader, close);
}

static int skip_value(struct json_reader *reader, int depth) {
    struct json_number number;
    enum json_type type;
    size_t length;
    switch (json_reader_peek(reader)) {
    case JSON_OBJECT:
    case JSON_ARRAY: {
        int object = *reader->at == '{';
        reader->at++;
        return skip_container(reader, object, depth + 1);
    }
    case JSON_STRING:
        return json_reader_string(reader, NULL, 0, &length);
    case JSON_NUMBER:
        return json_reader_number(reader, &number);
    case JSON_TRUE:
    case JSON_FALSE:
    case JSON_NULL:
        return json_reader_literal(reader, &type);
    default:
        if (reader->error != NULL)
            return -1;
        return fail(reader, reader->at == reader->end ? "the line ends where a value should be"
                                                      : "not a JSON value");
    }
}

int json_reader_skip(struct json_reader *reader) {
    return skip_value(reader, 0);
}

int json_reader_finish(struct json_reader *reader) {
    skip_space(reader);
    if (reader->error != NULL)
        return -1;
    if (reader->at != reader->end)
        return fail(reader, "bytes after the end of the object");
    return 0;
}
