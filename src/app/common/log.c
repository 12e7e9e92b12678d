/* SPDX-License-Identifier: MIT */
#include "app/common/log.h"

#include <inttypes.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/common/json.h"

/* Workers log from several threads: one lock keeps each line whole. */
static pthread_mutex_t log_lock = PTHREAD_MUTEX_INITIALIZER;

/* In the order of enum mb_log_level. */
static const char *const level_names[] = {"error", "warning", "info", "debug"};

static const char *level_name(enum mb_log_level level) {
    return (unsigned)level < sizeof level_names / sizeof level_names[0] ? level_names[level]
                                                                        : "debug";
}

const char *log_level_flag(const char *text, int *value) {
    for (size_t i = 0; i < sizeof level_names / sizeof level_names[0]; i++)
        if (strcmp(text, level_names[i]) == 0) {
            *value = (int)i; /* level_names[] is in the order of enum mb_log_level */
            return NULL;
        }
    return "--log-level: error, warning, info or debug";
}

const char *log_format_flag(const char *text, int *value) {
    if (strcmp(text, "plain") == 0)
        *value = LOG_PLAIN;
    else if (strcmp(text, "json") == 0)
        *value = LOG_JSON;
    else
        return "--log-format: plain or json";
    return NULL;
}

void log_time_of(uint64_t wall_ms, char *text, size_t capacity) {
    /* The date and time of the second, formatted once a second per thread: an audit record
     * for every request asks for it up to hundreds of thousands of times a second. */
    static _Thread_local time_t cached_second = (time_t)-1;
    static _Thread_local char cached[32];
    static _Thread_local size_t cached_length;
    time_t seconds = (time_t)(wall_ms / 1000);
    if (seconds != cached_second) {
        struct tm utc;
        gmtime_r(&seconds, &utc);
        cached_length = strftime(cached, sizeof cached, "%Y-%m-%dT%H:%M:%S", &utc);
        cached_second = seconds;
    }
    unsigned ms = (unsigned)(wall_ms % 1000);
    if (capacity < cached_length + 6) {
        if (capacity > 0)
            text[0] = '\0';
        return;
    }
    memcpy(text, cached, cached_length);
    char *at = text + cached_length;
    at[0] = '.';
    at[1] = (char)('0' + ms / 100);
    at[2] = (char)('0' + ms / 10 % 10);
    at[3] = (char)('0' + ms % 10);
    at[4] = 'Z';
    at[5] = '\0';
}

uint64_t log_wall_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_REALTIME, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

void log_timestamp(char *text, size_t capacity) {
    log_time_of(log_wall_ms(), text, capacity);
}

static void put_json_string(FILE *stream, const char *text) {
    json_write_string(stream, text, strlen(text));
}

static void json_field(FILE *stream, const char *key, const char *value) {
    if (value == NULL)
        return;
    fprintf(stream, ",\"%s\":", key);
    put_json_string(stream, value);
}

void logger_write(void *data, const struct mb_log_event *event) {
    struct logger *logger = data;
    if (event->level > logger->level)
        return;
    char when[40];
    log_timestamp(when, sizeof when);
    /* The line is formatted in memory and written with one call: an unbuffered stream (stderr)
     * would otherwise take a system call per character, and a line written in pieces can be
     * torn by another process writing to the same file. */
    char *line = NULL;
    size_t line_length = 0;
    FILE *out = open_memstream(&line, &line_length);
    if (out == NULL) {
        pthread_mutex_lock(&log_lock);
        out = logger->stream;
    }
    if (logger->format == LOG_JSON) {
        fprintf(out, "{\"time\":\"%s\",\"level\":\"%s\",\"event\":", when,
                level_name(event->level));
        put_json_string(out, event->event);
        json_field(out, "listener", event->listener);
        json_field(out, "peer", event->peer);
        if (event->connection_id)
            fprintf(out, ",\"connection\":%" PRIu64, event->connection_id);
        json_field(out, "reason", event->reason);
        if (strcmp(event->event, "connection_closed") == 0)
            fprintf(out, ",\"requests\":%" PRIu64 ",\"duration_ms\":%" PRIu64, event->requests,
                    event->duration_ms);
        fputs("}\n", out);
    } else {
        fprintf(out, "%s %-7s ", when, level_name(event->level));
        if (strcmp(event->event, "listening") == 0)
            fprintf(out, "listening on %s", event->listener ? event->listener : "?");
        else
            fputs(event->event, out);
        if (event->peer)
            fprintf(out, " peer=%s", event->peer);
        if (event->connection_id)
            fprintf(out, " connection=%" PRIu64, event->connection_id);
        if (event->listener && strcmp(event->event, "listening") != 0)
            fprintf(out, " listener=%s", event->listener);
        if (strcmp(event->event, "connection_closed") == 0)
            fprintf(out, " requests=%" PRIu64 " duration_ms=%" PRIu64, event->requests,
                    event->duration_ms);
        if (event->reason) {
            /* What a peer controls reaches the reason (the role and subject of a client
             * certificate, in a TLS line): quoted, it cannot end the field or the line. */
            fputs(" reason=", out);
            text_write_quoted(out, event->reason, strlen(event->reason));
        }
        fputc('\n', out);
    }
    if (out == logger->stream) {
        fflush(out);
        pthread_mutex_unlock(&log_lock);
        return;
    }
    if (fclose(out) == 0 && line != NULL) {
        pthread_mutex_lock(&log_lock);
        fwrite(line, 1, line_length, logger->stream);
        fflush(logger->stream);
        pthread_mutex_unlock(&log_lock);
    }
    free(line);
}

void logger_message(struct logger *logger, enum mb_log_level level, const char *event,
                    const char *fmt, ...) {
    char message[1024];
    va_list args;
    va_start(args, fmt);
    vsnprintf(message, sizeof message, fmt, args);
    va_end(args);
    struct mb_log_event record = {.level = level, .event = event, .reason = message};
    logger_write(logger, &record);
}
