/* SPDX-License-Identifier: MIT */
#include "app/common/duration.h"

#include <stdio.h>
#include <string.h>

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* The unit that `length` bytes of `text` name, in milliseconds, or 0. */
static uint64_t unit_milliseconds(const char *text, size_t length, enum duration_bare bare) {
    static const struct {
        const char *name;
        uint64_t milliseconds;
    } units[] = {{"ms", 1}, {"s", 1000}, {"m", 60000}, {"h", 3600000}};
    if (length == 0)
        return (uint64_t)bare;
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++)
        if (strlen(units[i].name) == length && memcmp(text, units[i].name, length) == 0)
            return units[i].milliseconds;
    return 0;
}

enum duration_status duration_parse(const char *text, size_t length, enum duration_bare bare,
                                    uint32_t *milliseconds) {
    uint64_t whole = 0;
    size_t at = 0, digits = 0, fraction = 0, fraction_length = 0;
    int nonzero = 0;
    for (; at < length && is_digit(text[at]); at++, digits++) {
        /* Past the limit in milliseconds the value is too long whatever the unit; stopping
         * here keeps the arithmetic far from overflow however many digits follow. */
        if (whole <= DURATION_MAX_MS)
            whole = whole * 10 + (uint64_t)(text[at] - '0');
        nonzero |= text[at] != '0';
    }
    if (at < length && text[at] == '.') {
        fraction = ++at;
        for (; at < length && is_digit(text[at]); at++, fraction_length++)
            nonzero |= text[at] != '0';
        if (fraction_length == 0)
            return DURATION_SYNTAX;
    }
    uint64_t unit = unit_milliseconds(text + at, length - at, bare);
    if (digits + fraction_length == 0 || unit == 0)
        return DURATION_SYNTAX;
    if (!nonzero)
        return DURATION_ZERO;
    /* The fraction times the unit, exactly: long multiplication from the last digit keeps the
     * whole milliseconds in `carry` and the first digit below a millisecond, which rounds. */
    uint64_t carry = 0, tenths = 0;
    for (size_t i = fraction_length; i-- > 0;) {
        uint64_t product = (uint64_t)(text[fraction + i] - '0') * unit + carry;
        carry = product / 10;
        if (i == 0)
            tenths = product % 10;
    }
    uint64_t total = whole * unit + carry + (tenths >= 5);
    if (total == 0)
        return DURATION_TOO_SHORT;
    if (total > DURATION_MAX_MS)
        return DURATION_TOO_LONG;
    *milliseconds = (uint32_t)total;
    return DURATION_OK;
}

void duration_message(char *message, size_t capacity, const char *name, const char *got,
                      enum duration_bare bare, enum duration_status status) {
    if (status == DURATION_ZERO || status == DURATION_TOO_SHORT)
        snprintf(message, capacity, "%s: the duration must be at least 1ms, got %s", name, got);
    else if (status == DURATION_TOO_LONG)
        snprintf(message, capacity, "%s: the duration must be at most 24h, got %s", name, got);
    else
        snprintf(message, capacity,
                 "%s: expected a duration such as 250ms, 1.5s, 2m or 1h (a bare number is %s), "
                 "got %s",
                 name, bare == DURATION_BARE_MILLISECONDS ? "milliseconds" : "seconds", got);
}

int duration_option(const char *name, const char *text, enum duration_bare bare,
                    uint32_t *milliseconds, char *message, size_t capacity) {
    enum duration_status status = duration_parse(text, strlen(text), bare, milliseconds);
    if (status == DURATION_OK)
        return 0;
    char got[80];
    snprintf(got, sizeof got, "'%.*s%s'", 64, text, strlen(text) > 64 ? "..." : "");
    duration_message(message, capacity, name, got, bare, status);
    return -1;
}
