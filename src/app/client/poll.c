/* SPDX-License-Identifier: MIT */
/*
 * mbsec poll: reads the same values at a fixed rate, for watching a device. A failed poll is
 * reported and the next one tried (the connection comes back by itself); the exit status is
 * that of the last failure, if any. SIGINT and SIGTERM are blocked and taken between polls with
 * sigtimedwait(), so that a stop never cuts a request or a line of output in half.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/client/client.h"
#include "app/commands.h"

static const char help[] =
    "usage: mbsec poll [options] TARGET [TABLE] ADDRESS [COUNT]\n"
    "\n"
    "Reads COUNT values (default 1) every --interval and prints each reading, as\n"
    "mbsec read does, until --count polls were made or SIGINT/SIGTERM (Ctrl-C) arrives. A\n"
    "poll that fails prints its error and polling goes on (reconnecting when the connection\n"
    "was lost); the exit status is then that of the last failure.\n"
    "\n" CLI_HELP_TARGET CLI_HELP_ADDRESS "\n"
    "Options:\n"
    "  --interval T       time from the start of one poll to the next, a duration: 1\n"
    "                     (bare numbers are seconds; the default), 0.25, 250ms, 2m; a poll\n"
    "                     that overruns it is followed at once\n"
    "  --count N          stop after N polls (default: until interrupted)\n"
    "  --changes          print a reading only when a value changed (the first "
    "always)\n" CLI_HELP_CONNECTION CLI_HELP_DATA
    "  --csv              CSV: a header line, then one timestamp,address,value row per value\n"
    "  -h, --help         this text\n"
    "\n" CLI_HELP_MBPOLL "\n"
    "Examples:\n"
    "  mbsec poll 192.0.2.10 input 0 4 --interval 0.5\n"
    "  mbsec poll 192.0.2.10 30001 2 --type f32 --changes --json\n"
    "\n" CLI_HELP_EXIT;

enum { FLAG_INTERVAL = 1, FLAG_COUNT, FLAG_CHANGES };

struct poll_state {
    uint32_t interval_ms;
    uint64_t polls; /* 0: until interrupted */
    int changes_only;
};

static int take_flag(void *data, int id, const char *argument) {
    struct poll_state *state = data;
    switch (id) {
    case FLAG_INTERVAL: {
        char problem[256];
        if (duration_option("--interval", argument, DURATION_BARE_SECONDS, &state->interval_ms,
                            problem, sizeof problem) != 0) {
            fprintf(stderr, "mbsec poll: %s\n", problem);
            return -1;
        }
        return 0;
    }
    case FLAG_COUNT:
        if (cli_parse_unsigned(argument, 1, UINT64_MAX, &state->polls) != 0) {
            fprintf(stderr, "mbsec poll: --count: a number of polls from 1, got '%s'\n", argument);
            return -1;
        }
        return 0;
    default:
        state->changes_only = 1;
        return 0;
    }
}

/* Buffers for one reading and the one printed before it. */
struct readings {
    uint8_t *bits, *previous_bits;
    uint16_t *registers, *previous_registers;
    size_t bytes; /* of each buffer */
    int have_previous;
};

static int readings_create(struct readings *readings, const struct cli_span *span) {
    memset(readings, 0, sizeof *readings);
    if (cli_table_holds_bits(span->location.table)) {
        readings->bytes = span->items;
        readings->bits = malloc(readings->bytes);
        readings->previous_bits = malloc(readings->bytes);
        return readings->bits != NULL && readings->previous_bits != NULL ? 0 : -1;
    }
    readings->bytes = span->items * sizeof(uint16_t);
    readings->registers = malloc(readings->bytes);
    readings->previous_registers = malloc(readings->bytes);
    return readings->registers != NULL && readings->previous_registers != NULL ? 0 : -1;
}

static void readings_destroy(struct readings *readings) {
    free(readings->bits);
    free(readings->previous_bits);
    free(readings->registers);
    free(readings->previous_registers);
}

/* Whether the reading just made differs from the last one printed; remembers it if so. */
static int reading_changed(struct readings *readings) {
    const void *now =
        readings->bits != NULL ? (const void *)readings->bits : (const void *)readings->registers;
    void *before = readings->bits != NULL ? (void *)readings->previous_bits
                                          : (void *)readings->previous_registers;
    if (readings->have_previous && memcmp(now, before, readings->bytes) == 0)
        return 0;
    memcpy(before, now, readings->bytes);
    readings->have_previous = 1;
    return 1;
}

static uint64_t monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

/* Waits until `deadline_ms` (monotonic). Returns 1 if a stop signal arrived first, else 0. */
static int wait_or_stop(const sigset_t *stop_signals, uint64_t deadline_ms) {
    for (;;) {
        uint64_t now = monotonic_ms();
        uint64_t left = deadline_ms > now ? deadline_ms - now : 0;
        struct timespec timeout = {.tv_sec = (time_t)(left / 1000),
                                   .tv_nsec = (long)(left % 1000) * 1000000};
        int signal_number = sigtimedwait(stop_signals, NULL, &timeout);
        if (signal_number > 0)
            return 1;
        if (errno == EAGAIN || left == 0)
            return 0;
        /* EINTR: another signal; wait for what is left. */
    }
}

/* One poll: connects if need be, reads, prints. Returns 0 or the failure's exit status. */
static int poll_once(const struct cli_options *options, const struct cli_span *span,
                     const struct poll_state *state, struct mb_client **client,
                     struct readings *readings, int *header_printed) {
    if (*client == NULL) {
        int status = cli_connect(options, 1, client);
        if (status != EXIT_STATUS_OK)
            return status;
    }
    struct cli_request failed = {0};
    int result = cli_read_table(
        *client, options->unit, span->location.table, span->location.address, span->items,
        cli_type_registers(options->type), readings->bits, readings->registers, &failed);
    if (result != 0)
        return cli_report_failure(options, *client, result, &failed);
    if (state->changes_only && !reading_changed(readings))
        return EXIT_STATUS_OK;
    struct cli_reading reading = {
        .location = &span->location,
        .count = span->values,
        .bits = readings->bits,
        .registers = readings->registers,
    };
    log_timestamp(reading.timestamp, sizeof reading.timestamp);
    if (options->format == CLI_HUMAN)
        printf("-- %s\n", reading.timestamp);
    cli_print_reading(options, &reading, !*header_printed);
    *header_printed = 1;
    return EXIT_STATUS_OK;
}

static int poll_loop(const struct cli_options *options, const struct cli_span *span,
                     const struct poll_state *state) {
    struct readings readings;
    if (readings_create(&readings, span) != 0) {
        readings_destroy(&readings);
        return cli_report_message(options, EXIT_STATUS_FAILURE, 0, "out of memory");
    }
    sigset_t stop_signals, previous_mask;
    sigemptyset(&stop_signals);
    sigaddset(&stop_signals, SIGINT);
    sigaddset(&stop_signals, SIGTERM);
    sigprocmask(SIG_BLOCK, &stop_signals, &previous_mask);

    struct mb_client *client = NULL;
    int last_failure = EXIT_STATUS_OK, header_printed = 0;
    uint64_t next_poll = monotonic_ms();
    for (uint64_t done = 0; state->polls == 0 || done < state->polls; done++) {
        if (done > 0 && wait_or_stop(&stop_signals, next_poll))
            break;
        next_poll += state->interval_ms;
        int status = poll_once(options, span, state, &client, &readings, &header_printed);
        if (status != EXIT_STATUS_OK)
            last_failure = status;
        uint64_t now = monotonic_ms();
        if (next_poll < now)
            next_poll = now; /* overran: the next poll at once, not a burst to catch up */
    }
    mb_client_close(client);
    readings_destroy(&readings);
    /* A stop that arrived during the last poll is still pending: take it here, or restoring
     * the mask would deliver it and kill the process instead of exiting with our status. */
    const struct timespec no_wait = {0, 0};
    while (sigtimedwait(&stop_signals, NULL, &no_wait) > 0)
        ;
    sigprocmask(SIG_SETMASK, &previous_mask, NULL);
    return last_failure;
}

int cmd_poll(int argc, char **argv) {
    static const struct cli_flag flags[] = {
        {"interval", 1, FLAG_INTERVAL},
        {"count", 1, FLAG_COUNT},
        {"changes", 0, FLAG_CHANGES},
        {NULL, 0, 0},
    };
    struct poll_state state = {.interval_ms = 1000};
    const struct cli_command command = {
        .name = "poll",
        .help = help,
        .accepts = CLI_ACCEPTS_DATA | CLI_ACCEPTS_CSV,
        .flags = flags,
        .take_flag = take_flag,
        .state = &state,
    };
    struct cli_options options;
    char **positional;
    int count, next = 1, status;
    if (!cli_begin(&command, argc, argv, &options, &positional, &count, &status))
        return status;
    struct cli_span span;
    status = cli_parse_span(&options, positional, count, &next, &span);
    if (status == 0 && next < count)
        status = cli_usage_error(&options, "unexpected argument '%s'", positional[next]);
    if (status == 0)
        status = poll_loop(&options, &span, &state);
    free(positional);
    return status;
}
