/* SPDX-License-Identifier: MIT */
#include "app/daemon/arguments.h"

#include <stdio.h>
#include <string.h>

#include "app/common/log.h"

void daemon_arguments_init(struct daemon_arguments *arguments) {
    memset(arguments, 0, sizeof *arguments);
    arguments->log_format = -1;
    arguments->log_level = -1;
}

const char *daemon_argument(struct daemon_arguments *arguments, int option, const char *value) {
    switch (option) {
    case DAEMON_OPT_CONFIG:
    case DAEMON_OPT_CHECK: {
        const char *bad = arguments->config_path != NULL
                              ? "give one configuration file (--config FILE or --check FILE)"
                              : NULL;
        arguments->config_path = value;
        arguments->check = option == DAEMON_OPT_CHECK;
        return bad;
    }
    case DAEMON_OPT_EXPLAIN:
        arguments->explain[0] = value;
        arguments->explain_count = 1;
        return NULL;
    case DAEMON_OPT_LOG_FORMAT:
        return log_format_flag(value, &arguments->log_format);
    case DAEMON_OPT_LOG_LEVEL:
        return log_level_flag(value, &arguments->log_level);
    default:
        return "not an option of the daemons";
    }
}

int daemon_arguments_finish(struct daemon_arguments *arguments, const char *program, int argc,
                            char **argv, int next) {
    if (arguments->explain_count > 0) {
        if (!arguments->check) {
            fprintf(stderr, "%s: --explain goes with --check FILE\n", program);
            return -1;
        }
        /* WHO, then the words getopt left at the end: UNIT FUNCTION ADDRESS ... */
        for (int i = next; i < argc && arguments->explain_count < DAEMON_EXPLAIN_WORDS; i++)
            arguments->explain[arguments->explain_count++] = argv[i];
        return 0;
    }
    if (next < argc) {
        fprintf(stderr, "%s: unexpected argument '%s'\n", program, argv[next]);
        return -2;
    }
    return 0;
}
