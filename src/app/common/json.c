/* SPDX-License-Identifier: MIT */
#include "app/common/json.h"

#include <inttypes.h>
#include <stdio.h>
#include <string.h>

/* What json_end() may still have to add after the last field. Every field must leave this
 * much room, so closing the object can never fail. */
static const char truncated_tail[] = ",\"truncated\":true}";

/* The last byte a field may use: the tail and the terminating NUL stay free. */
#define FIELD_LIMIT(json) (sizeof(json)->text - sizeof truncated_tail)

/* A field is written past json->length and only kept (by moving length) when all of it fitted;
 * `*at` is where it has reached, and stays past the limit once anything did not fit. */
static void put(struct json *json, size_t *at, const char *bytes, size_t count) {
    if (*at > FIELD_LIMIT(json) || count > FIELD_LIMIT(json) - *at) {
        *at = FIELD_LIMIT(json) + 1;
        return;
    }
    memcpy(json->text + *at, bytes, count);
    *at += count;
}

int json_hex_digit(int c) {
    if (c >= '0' && c <= '9')
        return c - '0';
    if (c >= 'a' && c <= 'f')
        return c - 'a' + 10;
    if (c >= 'A' && c <= 'F')
        return c - 'A' + 10;
    return -1;
}

size_t json_utf8_sequence(const unsigned char *text, size_t length, size_t *consumed) {
    unsigned char lead = text[0], low = 0x80, high = 0xBF;
    size_t continuation;
    if (lead < 0x80) {
        *consumed = 1;
        return 1;
    }
    if (lead >= 0xC2 && lead <= 0xDF) {
        continuation = 1;
    } else if (lead >= 0xE0 && lead <= 0xEF) {
        continuation = 2;
        if (lead == 0xE0)
            low = 0xA0;
        else if (lead == 0xED)
            high = 0x9F;
    } else if (lead >= 0xF0 && lead <= 0xF4) {
        continuation = 3;
        if (lead == 0xF0)
            low = 0x90;
        else if (lead == 0xF4)
            high = 0x8F;
    } else {
        *consumed = 1;
        return 0;
    }
    for (size_t i = 1; i <= continuation; i++) {
        if (i >= length || text[i] < low || text[i] > high) {
            *consumed = i;
            return 0;
        }
        low = 0x80;
        high = 0xBF;
    }
    *consumed = continuation + 1;
    return continuation + 1;
}

/* What the character at the start of some text is, for escaping it. */
enum text_kind {
    TEXT_AS_IS,      /* printable ASCII or well-formed UTF-8 */
    TEXT_QUOTE,      /* '"' or '\\', which end or start an escape */
    TEXT_CONTROL,    /* C0 controls, DEL and the C1 controls U+0080..U+009F */
    TEXT_ILL_FORMED, /* a maximal ill-formed UTF-8 subpart */
};

/* Sorts the character at `text` (`length` bytes left, at least 1) and sets *consumed to its
 * bytes. */
static enum text_kind text_next(const char *text, size_t length, size_t *consumed) {
    const unsigned char *at = (const unsigned char *)text;
    size_t valid = json_utf8_sequence(at, length, consumed);
    if (valid == 0)
        return TEXT_ILL_FORMED;
    if (*at == '"' || *at == '\\')
        return TEXT_QUOTE;
    /* DEL and the C1 controls are valid JSON and UTF-8, but escaped they cannot reach a
     * terminal that shows the text (0x9B, U+009B, is CSI to some). */
    if (*at < 0x20 || *at == 0x7F || (*at == 0xC2 && at[1] < 0xA0))
        return TEXT_CONTROL;
    return TEXT_AS_IS;
}

/*
 * Escapes the character at `text` (`length` bytes left, at least 1) for a JSON string. Writes
 * at most 6 bytes to `out`, their count to *out_length, and returns the bytes of `text` consumed.
 */
static size_t json_escape_next(const char *text, size_t length, char out[6], size_t *out_length) {
    static const char hex[] = "0123456789abcdef";
    static const char short_escapes[] = "\bb\ff\nn\rr\tt";
    const unsigned char *at = (const unsigned char *)text;
    size_t consumed;
    switch (text_next(text, length, &consumed)) {
    case TEXT_ILL_FORMED:
        memcpy(out, "\\ufffd", 6);
        *out_length = 6;
        break;
    case TEXT_QUOTE:
        out[0] = '\\';
        out[1] = (char)*at;
        *out_length = 2;
        break;
    case TEXT_CONTROL: {
        /* A C1 control is two bytes, C2 80..9F, and its code point is the second. */
        unsigned char code = consumed == 2 ? at[1] : *at;
        const char *letter = code != 0 ? strchr(short_escapes, (char)code) : NULL;
        if (letter != NULL) {
            out[0] = '\\';
            out[1] = letter[1];
            *out_length = 2;
        } else {
            const char escaped[6] = {'\\', 'u', '0', '0', hex[code >> 4], hex[code & 0x0F]};
            memcpy(out, escaped, 6);
            *out_length = 6;
        }
        break;
    }
    default:
        memcpy(out, at, consumed);
        *out_length = consumed;
    }
    return consumed;
}

void json_write_string(FILE *out, const char *text, size_t length) {
    fputc('"', out);
    size_t at = 0;
    while (at < length) {
        char piece[6];
        size_t piece_length;
        at += json_escape_next(text + at, length - at, piece, &piece_length);
        fwrite(piece, 1, piece_length, out);
    }
    fputc('"', out);
}

/* Quoted: the quote and the backslash get a backslash. Unquoted: a backslash is \x5c, so that
 * every backslash in the output starts an escape. */
static void write_text(FILE *out, const char *text, size_t length, int quoted) {
    size_t at = 0;
    while (at < length) {
        size_t consumed;
        enum text_kind kind = text_next(text + at, length - at, &consumed);
        if (kind == TEXT_CONTROL || kind == TEXT_ILL_FORMED || (!quoted && text[at] == '\\')) {
            for (size_t i = 0; i < consumed; i++)
                fprintf(out, "\\x%02x", (unsigned char)text[at + i]);
        } else {
            if (kind == TEXT_QUOTE && quoted)
                fputc('\\', out);
            fwrite(text + at, 1, consumed, out);
        }
        at += consumed;
    }
}

void text_write_quoted(FILE *out, const char *text, size_t length) {
    fputc('"', out);
    write_text(out, text, length, 1);
    fputc('"', out);
}

void text_write_escaped(FILE *out, const char *text, size_t length) {
    write_text(out, text, length, 0);
}

/* Printable ASCII that goes into a JSON string as it is: neither a quote nor a backslash. */
static int plain_ascii(unsigned char c) {
    return c >= 0x20 && c < 0x7F && c != '"' && c != '\\';
}

static void put_string(struct json *json, size_t *at, const char *value) {
    size_t length = strlen(value), done = 0;
    put(json, at, "\"", 1);
    while (done < length && *at <= FIELD_LIMIT(json)) {
        /* A run of plain ASCII in one copy (an audit record is mostly that), then one
         * character that needs a look. */
        size_t run = done;
        while (run < length && plain_ascii((unsigned char)value[run]))
            run++;
        if (run > done) {
            put(json, at, value + done, run - done);
            done = run;
            continue;
        }
        char piece[6];
        size_t piece_length;
        done += json_escape_next(value + done, length - done, piece, &piece_length);
        put(json, at, piece, piece_length);
    }
    put(json, at, "\"", 1);
}

/* Starts a field at json->length: the separator, the key and its colon. Keys are the
 * program's own words; one that would need escaping still gets it. */
static size_t field_start(struct json *json, const char *key) {
    size_t at = json->length;
    if (json->fields > 0)
        put(json, &at, ",", 1);
    size_t length = strlen(key), plain = 0;
    while (plain < length && plain_ascii((unsigned char)key[plain]))
        plain++;
    if (plain == length) {
        put(json, &at, "\"", 1);
        put(json, &at, key, length);
        put(json, &at, "\":", 2);
        return at;
    }
    put_string(json, &at, key);
    put(json, &at, ":", 1);
    return at;
}

/* Keeps the field that reaches `at`, or drops it when it did not fit. */
static void field_finish(struct json *json, size_t at) {
    if (at > FIELD_LIMIT(json)) {
        json->truncated = 1;
    } else {
        json->length = at;
        json->fields++;
    }
    json->text[json->length] = '\0';
}

static void field_literal(struct json *json, const char *key, const char *value) {
    if (key == NULL)
        return;
    size_t at = field_start(json, key);
    put(json, &at, value, strlen(value));
    field_finish(json, at);
}

void json_begin(struct json *json) {
    json->text[0] = '{';
    json->text[1] = '\0';
    json->length = 1;
    json->truncated = 0;
    json->fields = 0;
}

void json_string(struct json *json, const char *key, const char *value) {
    if (key == NULL)
        return;
    if (value == NULL) {
        field_literal(json, key, "null");
        return;
    }
    size_t at = field_start(json, key);
    put_string(json, &at, value);
    field_finish(json, at);
}

void json_uint(struct json *json, const char *key, uint64_t value) {
    char digits[24], *at = digits + sizeof digits - 1;
    *at = '\0';
    do {
        *--at = (char)('0' + value % 10);
        value /= 10;
    } while (value > 0);
    field_literal(json, key, at);
}

void json_int(struct json *json, const char *key, int64_t value) {
    char digits[24];
    snprintf(digits, sizeof digits, "%" PRId64, value);
    field_literal(json, key, digits);
}

void json_bool(struct json *json, const char *key, int value) {
    field_literal(json, key, value ? "true" : "false");
}

void json_raw(struct json *json, const char *key, const char *json_value) {
    field_literal(json, key, json_value == NULL || json_value[0] == '\0' ? "null" : json_value);
}

const char *json_end(struct json *json) {
    /* The fields left room for the whole tail, so it always fits; the check only keeps a second
     * call (a caller's mistake) inside the buffer. */
    const char *tail = "}";
    if (json->truncated)
        tail = json->fields > 0 ? truncated_tail : truncated_tail + 1;
    size_t count = strlen(tail);
    if (json->length + count < sizeof json->text) {
        memcpy(json->text + json->length, tail, count);
        json->length += count;
    }
    json->text[json->length] = '\0';
    return json->text;
}
