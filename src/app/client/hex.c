/* SPDX-License-Identifier: MIT */
/* Bytes typed in hex, for mbsec raw (a whole PDU) and mbsec diag (the data). */
#include <ctype.h>
#include <string.h>

#include "app/client/client.h"

static int is_separator(char c) {
    return c == ' ' || c == '\t' || c == ':' || c == ',' || c == '-';
}

static uint8_t nibble(char c) {
    return (uint8_t)(isdigit((unsigned char)c) ? c - '0' : tolower((unsigned char)c) - 'a' + 10);
}

/* One token: "0a", "0x0a", "a", "030000000a". Appends its bytes. */
static int parse_token(const char *token, size_t length, uint8_t *bytes, size_t capacity,
                       size_t *used, const char **complaint) {
    if (length >= 2 && token[0] == '0' && (token[1] == 'x' || token[1] == 'X')) {
        token += 2;
        length -= 2;
    }
    if (length == 0) {
        *complaint = "'0x' without digits";
        return -1;
    }
    for (size_t i = 0; i < length; i++)
        if (!isxdigit((unsigned char)token[i])) {
            *complaint = "not a hex digit (bytes as 03 00 0a, 03000a or 03:00:0a)";
            return -1;
        }
    if (length > 1 && length % 2 != 0) {
        *complaint = "an odd number of hex digits in a group (write each byte as two digits)";
        return -1;
    }
    size_t count = length == 1 ? 1 : length / 2;
    if (*used + count > capacity) {
        *complaint = "too many bytes";
        return -1;
    }
    if (length == 1)
        bytes[(*used)++] = nibble(token[0]);
    else
        for (size_t i = 0; i < length; i += 2)
            bytes[(*used)++] = (uint8_t)(nibble(token[i]) << 4 | nibble(token[i + 1]));
    return 0;
}

int cli_parse_hex(const char *const *texts, int count, uint8_t *bytes, size_t capacity,
                  const char **complaint) {
    size_t used = 0;
    for (int argument = 0; argument < count; argument++) {
        const char *text = texts[argument];
        while (*text != '\0') {
            while (is_separator(*text))
                text++;
            size_t length = 0;
            while (text[length] != '\0' && !is_separator(text[length]))
                length++;
            if (length > 0 && parse_token(text, length, bytes, capacity, &used, complaint) != 0)
                return -1;
            text += length;
        }
    }
    if (used == 0) {
        *complaint = "no bytes";
        return -1;
    }
    return (int)used;
}
