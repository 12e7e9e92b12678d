/* SPDX-License-Identifier: MIT */
/*
 * The options both daemons take (src/app/daemon/arguments.c), parsed with getopt_long() as
 * mbsec serve and mbsec gateway parse them: each case is a command line.
 */
#include <getopt.h>
#include <stdio.h>
#include <string.h>

#include "app/common/log.h"
#include "app/daemon/arguments.h"
#include "harness.h"

/* Parses `words` (the program name first) and returns what daemon_arguments_finish() returns,
 * or -3 with the first problem daemon_argument() gave in *problem. */
static int parse(const char *const *words, int count, struct daemon_arguments *arguments,
                 const char **problem) {
    static const struct option table[] = {DAEMON_LONG_OPTIONS, {NULL, 0, NULL, 0}};
    static char copies[16][64]; /* getopt_long() takes char *, and may permute them */
    char *argv[16];
    for (int i = 0; i < count; i++) {
        snprintf(copies[i], sizeof copies[i], "%s", words[i]);
        argv[i] = copies[i];
    }
    argv[count] = NULL;
    daemon_arguments_init(arguments);
    *problem = NULL;
    optind = 1;
    opterr = 0;
    int option;
    while ((option = getopt_long(count, argv, "", table, NULL)) != -1) {
        const char *bad = daemon_argument(arguments, option, optarg);
        if (bad != NULL) {
            *problem = bad;
            return -3;
        }
    }
    return daemon_arguments_finish(arguments, "mbsec test", count, argv, optind);
}

TEST(check_with_explain_takes_the_words_after_who) {
    const char *words[] = {"mbsec", "--check", "gw.yaml", "--explain", "operator", "1", "3", "100"};
    struct daemon_arguments arguments;
    const char *problem;
    CHECK_EQ(parse(words, 8, &arguments, &problem), 0);
    CHECK_STR(arguments.config_path, "gw.yaml");
    CHECK_EQ(arguments.check, 1);
    CHECK_EQ(arguments.explain_count, 4);
    CHECK_STR(arguments.explain[0], "operator");
    CHECK_STR(arguments.explain[3], "100");
    CHECK_EQ(arguments.log_format, -1);
    CHECK_EQ(arguments.log_level, -1);
}

TEST(log_flags_are_read_and_a_bad_one_says_what_is_allowed) {
    const char *words[] = {"mbsec", "--config",    "a.yaml", "--log-format",
                           "json",  "--log-level", "debug"};
    struct daemon_arguments arguments;
    const char *problem;
    CHECK_EQ(parse(words, 7, &arguments, &problem), 0);
    CHECK_EQ(arguments.check, 0);
    CHECK_EQ(arguments.log_format, LOG_JSON);
    CHECK_EQ(arguments.log_level, MB_LOG_DEBUG);
    const char *bad[] = {"mbsec", "--log-format", "xml"};
    CHECK_EQ(parse(bad, 3, &arguments, &problem), -3);
    CHECK_STR(problem, "--log-format: plain or json");
}

TEST(two_files_explain_without_check_and_stray_words_are_refused) {
    struct daemon_arguments arguments;
    const char *problem;
    const char *two[] = {"mbsec", "--config", "a.yaml", "--check", "b.yaml"};
    CHECK_EQ(parse(two, 5, &arguments, &problem), -3);
    CHECK_STR(problem, "give one configuration file (--config FILE or --check FILE)");
    const char *explain[] = {"mbsec", "--config", "a.yaml", "--explain", "operator", "1", "3"};
    CHECK_EQ(parse(explain, 7, &arguments, &problem), -1);
    const char *stray[] = {"mbsec", "--config", "a.yaml", "extra"};
    CHECK_EQ(parse(stray, 4, &arguments, &problem), -2);
}

int main(void) {
    RUN(check_with_explain_takes_the_words_after_who);
    RUN(log_flags_are_read_and_a_bad_one_says_what_is_allowed);
    RUN(two_files_explain_without_check_and_stray_words_are_refused);
    return harness_result();
}
