/* SPDX-License-Identifier: MIT */
/*
 * The command-line options both daemons take, parsed once, with the same messages: --config
 * FILE, --check FILE, --explain WHO [UNIT FUNCTION ...] (with --check), --log-format and
 * --log-level. A daemon puts DAEMON_LONG_OPTIONS in its getopt_long() table, numbers its own
 * options from DAEMON_OPT_NEXT, hands the daemon's options to daemon_argument(), and calls
 * daemon_arguments_finish() after the loop.
 */
#ifndef MBSEC_APP_DAEMON_ARGUMENTS_H
#define MBSEC_APP_DAEMON_ARGUMENTS_H

#include <getopt.h>

enum {
    DAEMON_OPT_CONFIG = 0x100,
    DAEMON_OPT_CHECK,
    DAEMON_OPT_EXPLAIN,
    DAEMON_OPT_LOG_FORMAT,
    DAEMON_OPT_LOG_LEVEL,
    DAEMON_OPT_NEXT /* the first value a daemon gives its own options */
};

#define DAEMON_LONG_OPTIONS                                               \
    {"config", required_argument, NULL, DAEMON_OPT_CONFIG},               \
        {"check", required_argument, NULL, DAEMON_OPT_CHECK},             \
        {"explain", required_argument, NULL, DAEMON_OPT_EXPLAIN},         \
        {"log-format", required_argument, NULL, DAEMON_OPT_LOG_FORMAT}, { \
        "log-level", required_argument, NULL, DAEMON_OPT_LOG_LEVEL        \
    }

#define DAEMON_EXPLAIN_WORDS 64

struct daemon_arguments {
    const char *config_path;                   /* --config or --check; NULL: neither */
    int check;                                 /* --check: validate and print, do not run */
    const char *explain[DAEMON_EXPLAIN_WORDS]; /* --explain WHO and the words after it */
    int explain_count;                         /* 0 without --explain */
    int log_format;                            /* enum log_format; -1: not given */
    int log_level;                             /* enum mb_log_level; -1: not given */
};

void daemon_arguments_init(struct daemon_arguments *arguments);

/* Takes one of the DAEMON_OPT_* options with its value. Returns NULL, or the problem as one
 * line (a static string) for "PROGRAM: problem". */
const char *daemon_argument(struct daemon_arguments *arguments, int option, const char *value);

/*
 * After getopt_long() is done (`next` is its optind): --explain takes the words left at the
 * end, and without it a word left is an error. Returns 0; -1 when --explain came without
 * --check (said on stderr); -2 for an unexpected word (said on stderr; the caller adds its
 * usage).
 */
int daemon_arguments_finish(struct daemon_arguments *arguments, const char *program, int argc,
                            char **argv, int next);

#endif
