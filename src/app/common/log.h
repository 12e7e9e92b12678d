/* SPDX-License-Identifier: MIT */
/* Log lines of the mbsec program: plain text or JSON lines, on stderr, one line per event. */
#ifndef MBSEC_TOOLS_LOG_H
#define MBSEC_TOOLS_LOG_H

#include <stdint.h>
#include <stdio.h>

#include "mbsec/server.h"

/* The log.format of the configuration and --log-format: plain text or JSON lines. */
enum log_format {
    LOG_PLAIN = 0,
    LOG_JSON = 1,
};

struct logger {
    FILE *stream;
    enum log_format format;
    enum mb_log_level level; /* events above this level are not written */
};

/* Now, in UTC with milliseconds: "2026-05-01T12:00:00.123Z" (capacity 25 or more), as every
 * log line and every JSON or CSV reading of the client commands carries it. */
void log_timestamp(char *text, size_t capacity);

/* Milliseconds since the epoch now, and such a time in the form above. */
uint64_t log_wall_ms(void);
void log_time_of(uint64_t wall_ms, char *text, size_t capacity);

/* The --log-format (plain, json) and --log-level (error, warning, info, debug) flags of serve
 * and gateway: store the enum log_format / mb_log_level into *value and return NULL, or
 * return the line that says what the flag takes. */
const char *log_format_flag(const char *text, int *value);
const char *log_level_flag(const char *text, int *value);

/* An mb_log_fn: pass a struct logger as its data. Thread-safe (one line per write). */
void logger_write(void *logger, const struct mb_log_event *event);

/* A message of the program itself ("starting", "reload refused", ...), in the same format. */
void logger_message(struct logger *logger, enum mb_log_level level, const char *event,
                    const char *fmt, ...) __attribute__((format(printf, 4, 5)));

#endif
