/* SPDX-License-Identifier: MIT */
/*
 * The one duration grammar, for the configuration file and every command line: a decimal number
 * with an optional fraction, then a unit written straight after it.
 *
 *   duration = number [unit]
 *   number   = digits ["." digits] | "." digits
 *   unit     = "ms" | "s" | "m" | "h"
 *
 * Examples: 250ms, 1.5s, 2m, 0.5h, .25s. No sign, no exponent, no spaces, lowercase units. A
 * bare number is in the unit each option names (enum duration_bare). The value is rounded to
 * the nearest millisecond (halves up) and must be 1 ms to 24 h.
 */
#ifndef MBSEC_APP_DURATION_H
#define MBSEC_APP_DURATION_H

#include <stddef.h>
#include <stdint.h>

/* The longest duration accepted: 24 hours. */
#define DURATION_MAX_MS 86400000u

/* What a number without a unit means; the value is that unit in milliseconds. */
enum duration_bare {
    DURATION_BARE_MILLISECONDS = 1,
    DURATION_BARE_SECONDS = 1000,
};

enum duration_status {
    DURATION_OK = 0,
    DURATION_SYNTAX,    /* empty, a sign, garbage, a space or an unknown unit */
    DURATION_ZERO,      /* a number that is 0 ("0", "0.0s"); a caller may take it as 0 */
    DURATION_TOO_SHORT, /* more than 0 but under half a millisecond */
    DURATION_TOO_LONG,  /* over DURATION_MAX_MS, however many digits */
};

/*
 * Parses `length` bytes of `text` (no NUL needed) into *milliseconds, which is written only on
 * DURATION_OK.
 */
enum duration_status duration_parse(const char *text, size_t length, enum duration_bare bare,
                                    uint32_t *milliseconds);

/*
 * The message for a status other than DURATION_OK, the same for every option and key:
 * "NAME: expected a duration such as 250ms, 1.5s, 2m or 1h (a bare number is seconds), got
 * GOT", "NAME: the duration must be at least 1ms, got GOT" or "NAME: the duration must be at
 * most 24h, got GOT". `name` is the option or key ("--interval", "limits.idle_timeout"), `got`
 * the value as the caller shows it (quoted).
 */
void duration_message(char *message, size_t capacity, const char *name, const char *got,
                      enum duration_bare bare, enum duration_status status);

/*
 * A command-line option's value: 0 with *milliseconds set, or -1 with the message written to
 * `message`, showing the value in single quotes.
 */
int duration_option(const char *name, const char *text, enum duration_bare bare,
                    uint32_t *milliseconds, char *message, size_t capacity);

#endif
