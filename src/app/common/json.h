/* SPDX-License-Identifier: MIT */
/*
 * A bounded builder of one-line JSON objects, for audit records: no allocation, no I/O, the text
 * lives in the caller's struct. The result is always one valid JSON object in valid UTF-8:
 * strings are escaped (quote, backslash and control characters; json_write_string) and bytes
 * that are not well-formed UTF-8 become \ufffd (one per maximal ill-formed subsequence, as Unicode
 * recommends). A field that does not fit is dropped whole, never cut; json_end() then adds
 * "truncated":true as the last field. Fields after a dropped one are still added when they fit.
 *
 *   struct json json;
 *   json_begin(&json);
 *   json_string(&json, "peer", peer_text);
 *   json_uint(&json, "unit", 7);
 *   const char *line = json_end(&json);
 *
 * Keys are escaped like values and must not be NULL (a field with a NULL key is left out).
 * Nothing checks that keys are unique.
 */
#ifndef MBSEC_TOOLS_JSON_H
#define MBSEC_TOOLS_JSON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

struct json {
    char text[4096]; /* the object so far; NUL-terminated once json_end() returns */
    size_t length;   /* bytes of text in use, without the NUL */
    int truncated;   /* 1 once a field was dropped for lack of room */
    int fields;      /* fields written so far */
};

/* Starts an empty object, forgetting anything `json` held before. */
void json_begin(struct json *json);

/* "key":"value", escaped; a NULL value gives "key":null. */
void json_string(struct json *json, const char *key, const char *value);

/* "key":123 and "key":-123, in decimal. */
void json_uint(struct json *json, const char *key, uint64_t value);
void json_int(struct json *json, const char *key, int64_t value);

/* "key":true for any nonzero value, "key":false for 0. */
void json_bool(struct json *json, const char *key, int value);

/* "key":json_value, copied as it is: the caller vouches that it is one valid JSON value (an
 * array of numbers it built, say); NULL or "" gives null. */
void json_raw(struct json *json, const char *key, const char *json_value);

/* Closes the object (adding "truncated":true when a field was dropped) and returns json->text,
 * which json->length then measures. Call it once; json_begin() starts the next record. */
const char *json_end(struct json *json);

/*
 * The length of the well-formed UTF-8 sequence at `text` (at most `length` bytes, at least 1
 * given; Unicode table 3-7: no overlong forms, no surrogates, nothing above U+10FFFF), or 0 when
 * it is ill-formed, with *consumed the bytes of its maximal ill-formed subpart (which then stand
 * for one U+FFFD). The one UTF-8 check, for the escaper below and the JSON reader of mbsec policy.
 */
size_t json_utf8_sequence(const unsigned char *text, size_t length, size_t *consumed);

/* The value of one hex digit (0-9, a-f, A-F), or -1: for \u escapes, and every other hex text
 * the program reads (YAML numbers, the PDUs of audit records). */
int json_hex_digit(int c);

/* ---- the one escaper: JSON strings (audit records, log lines, the client's JSON output) and
 * quoted plain text (plain log lines, the client's human output) ---- */

/*
 * Both sort the bytes of `text` the same way: well-formed UTF-8 (Unicode table 3-7: no overlong
 * forms, no surrogates, nothing above U+10FFFF) other than controls is written as it is; quote
 * and backslash get a backslash; control characters (C0, DEL and the C1 controls U+0080..U+009F)
 * and each maximal ill-formed subpart (Unicode's recommended practice for U+FFFD) are escaped.
 */

/* Writes `length` bytes of `text` (NULs included) as one quoted JSON string: controls as \b \f
 * \n \r \t or \u00XX, each ill-formed subpart as one \ufffd. */
void json_write_string(FILE *out, const char *text, size_t length);

/*
 * Writes `length` bytes of `text` inside double quotes for people and line-based tools: every
 * byte of a control character or of an ill-formed subpart as \xNN. Nothing in `text` can end
 * the quotes or the line, or reach a terminal as a control.
 */
void text_write_quoted(FILE *out, const char *text, size_t length);

/* The same without the quotes, for a value that stands alone on its line or after a label (a
 * device's identification object, a certificate's name): the quote as it is, the backslash as
 * \x5c, so that every backslash starts an escape. */
void text_write_escaped(FILE *out, const char *text, size_t length);

#endif
