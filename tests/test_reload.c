/* SPDX-License-Identifier: MIT */
/*
 * The reload engine of the two daemons (src/app/daemon/reload.c), driven as `mbsec serve`
 * drives it: the configuration loaded from a real file with config_serve_load() on every reload,
 * the log lines written by the real logger to a real file. A program here records which of its
 * steps ran, and can be told to fail one. (The TLS step is exercised end to end by
 * tests/tls/test_serve_tls.sh and tests/gateway/test_gateway_process.sh, which rotate real
 * certificates and CRLs.)
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/config/config.h"
#include "app/daemon/reload.h"
#include "harness.h"

struct program {
    char path[128];
    struct logger logger;
    struct serve_config running; /* what "runs": the last committed configuration */
    struct serve_config fresh;
    int fail_prepare, fail_commit;
    int loads, prepares, commits, discards, tls_replaced;
    int counted_ok, counted_refused;
};

static void *load(void *data, char *error, size_t capacity) {
    struct program *program = data;
    program->loads++;
    config_serve_free(&program->fresh); /* the last reload's, which the engine has read by now */
    if (config_serve_load(program->path, &program->fresh, error, capacity) != 0)
        return NULL;
    return &program->fresh;
}

static const struct front_config *config_of(const void *fresh) {
    return &((const struct serve_config *)fresh)->front;
}

static int prepare(void *data, void *fresh, char *error, size_t capacity) {
    (void)fresh;
    struct program *program = data;
    program->prepares++;
    if (!program->fail_prepare)
        return 0;
    snprintf(error, capacity, "backends[0].address: nowhere: not an address");
    return -1;
}

static int commit(void *data, void *fresh, char *applied, size_t applied_capacity, char *error,
                  size_t error_capacity) {
    struct program *program = data;
    if (program->fail_commit) {
        snprintf(error, error_capacity, "the backends could not be started (out of memory)");
        return -1;
    }
    program->commits++;
    config_serve_free(&program->running);
    if (config_serve_copy(&program->running, fresh) != 0) {
        snprintf(error, error_capacity, "out of memory");
        return -1;
    }
    snprintf(applied, applied_capacity, "limits, logging, policy");
    return 0;
}

static void discard(void *data, void *fresh) {
    struct program *program = data;
    program->discards++;
    config_serve_free(fresh);
}

static void replace_tls(void *data, struct mb_tls_context *previous, struct mb_tls_context *next) {
    (void)previous;
    (void)next;
    struct program *program = data;
    program->tls_replaced++;
}

static void counted(void *data, int refused) {
    struct program *program = data;
    if (refused)
        program->counted_refused++;
    else
        program->counted_ok++;
}

static struct reload_program steps_of(struct program *program) {
    const struct reload_program steps = {
        .data = program,
        .logger = &program->logger,
        .load = load,
        .config_of = config_of,
        .prepare = prepare,
        .commit = commit,
        .discard = discard,
        .replace_tls = replace_tls,
        .restart_keys = "listen, tls.listen, workers or user",
        .note = "; units take effect at the next start",
        .counted = counted,
    };
    return steps;
}

static void write_file(const char *path, const char *text) {
    FILE *file = fopen(path, "w");
    if (file == NULL || fputs(text, file) < 0 || fclose(file) != 0) {
        perror(path);
        exit(2);
    }
}

/* The log so far, as one string (static: one at a time). */
static const char *log_text(struct program *program) {
    static char text[8192];
    fflush(program->logger.stream);
    long end = ftell(program->logger.stream);
    rewind(program->logger.stream);
    size_t got = fread(text, 1, sizeof text - 1, program->logger.stream);
    text[got] = '\0';
    fseek(program->logger.stream, end, SEEK_SET);
    return text;
}

/* A program running with `yaml`, its front recorded as the engine records it at the start. */
static void start(struct program *program, struct reload_front *front, const char *yaml) {
    memset(program, 0, sizeof *program);
    snprintf(program->path, sizeof program->path, "/tmp/mbsec-test-reload-%ld.yaml",
             (long)getpid());
    write_file(program->path, yaml);
    program->logger.stream = tmpfile();
    program->logger.format = LOG_PLAIN;
    program->logger.level = MB_LOG_INFO;
    char error[600];
    config_serve_defaults(&program->running);
    config_serve_defaults(&program->fresh);
    CHECK_EQ(config_serve_load(program->path, &program->running, error, sizeof error), 0);
    reload_front_init(front, &program->running, NULL, config_of, NULL);
}

static void stop(struct program *program, struct reload_front *front) {
    reload_front_release(front);
    config_serve_free(&program->running);
    config_serve_free(&program->fresh);
    fclose(program->logger.stream);
    unlink(program->path);
}

static const char *const first = "listen: [\"127.0.0.1:1502\"]\nlog:\n  level: info\n";

TEST(a_good_file_is_committed_and_the_line_says_what_was_applied) {
    struct program program;
    struct reload_front front;
    start(&program, &front, first);
    write_file(program.path, "listen: [\"127.0.0.1:1502\"]\nlimits:\n  max_connections: 7\n");
    const struct reload_program steps = steps_of(&program);
    reload_run(&front, &steps);
    CHECK_EQ(program.loads, 1);
    CHECK_EQ(program.prepares, 1);
    CHECK_EQ(program.commits, 1);
    CHECK_EQ(program.discards, 0);
    CHECK_EQ(program.tls_replaced, 0); /* no TLS listeners: nothing to renew */
    CHECK_EQ(program.counted_ok, 1);
    CHECK_EQ(program.running.front.limits.max_connections, 7);
    CHECK(strstr(log_text(&program), "reloaded reason=\"limits, logging, policy applied; units "
                                     "take effect at the next start\"") != NULL);
    CHECK(strstr(log_text(&program), "restart") == NULL);
    stop(&program, &front);
}

TEST(a_file_that_does_not_load_is_refused_with_its_reason_and_nothing_changes) {
    struct program program;
    struct reload_front front;
    start(&program, &front, first);
    write_file(program.path, "listen: [\"127.0.0.1:1502\"]\nlimits:\n  max_connectionz: 7\n");
    const struct reload_program steps = steps_of(&program);
    reload_run(&front, &steps);
    CHECK_EQ(program.commits, 0);
    CHECK_EQ(program.prepares, 0);
    CHECK_EQ(program.counted_refused, 1);
    CHECK_EQ(program.counted_ok, 0);
    const char *text = log_text(&program);
    CHECK(strstr(text, "error   reload_refused reason=") != NULL);
    CHECK(strstr(text, "max_connectionz") != NULL);
    CHECK(strstr(text, "the running configuration stays in force") != NULL);
    CHECK(strstr(text, "reloaded") == NULL);
    stop(&program, &front);
}

TEST(a_prepare_or_commit_that_fails_discards_the_new_configuration) {
    struct program program;
    struct reload_front front;
    start(&program, &front, first);
    write_file(program.path, "listen: [\"127.0.0.1:1502\"]\nlimits:\n  max_connections: 9\n");
    program.fail_prepare = 1;
    const struct reload_program steps = steps_of(&program);
    reload_run(&front, &steps);
    CHECK_EQ(program.commits, 0);
    CHECK_EQ(program.discards, 1);
    CHECK_EQ(program.counted_refused, 1);
    CHECK(strstr(log_text(&program),
                 "reload_refused reason=\"backends[0].address: nowhere: not "
                 "an address; the running configuration stays in force\"") != NULL);
    CHECK(program.running.front.limits.max_connections != 9);

    program.fail_prepare = 0;
    program.fail_commit = 1;
    reload_run(&front, &steps);
    CHECK_EQ(program.commits, 0);
    CHECK_EQ(program.discards, 2);
    CHECK_EQ(program.counted_refused, 2);
    CHECK(strstr(log_text(&program), "the backends could not be started (out of memory); the "
                                     "running configuration stays in force") != NULL);
    CHECK(program.running.front.limits.max_connections != 9);

    /* The same file once nothing fails: applied. */
    program.fail_commit = 0;
    reload_run(&front, &steps);
    CHECK_EQ(program.commits, 1);
    CHECK_EQ(program.running.front.limits.max_connections, 9);
    stop(&program, &front);
}

TEST(what_only_a_restart_changes_is_named_when_the_file_changes_it_and_only_then) {
    struct program program;
    struct reload_front front;
    start(&program, &front, first);
    const struct reload_program steps = steps_of(&program);
    write_file(program.path, "listen: [\"127.0.0.1:1503\"]\n");
    reload_run(&front, &steps);
    CHECK(strstr(log_text(&program), "applied; the listen, tls.listen, workers or user changes in "
                                     "the file need a restart; units") != NULL);
    /* Compared with what runs, not with the last file: still needed after another reload. */
    long before = (long)strlen(log_text(&program));
    reload_run(&front, &steps);
    CHECK(strstr(log_text(&program) + before, "need a restart") != NULL);
    /* Back to the addresses the listeners were opened with: nothing to say. */
    write_file(program.path, first);
    before = (long)strlen(log_text(&program));
    reload_run(&front, &steps);
    CHECK(strstr(log_text(&program) + before, "reloaded") != NULL);
    CHECK(strstr(log_text(&program) + before, "need a restart") == NULL);
    CHECK_EQ(program.commits, 3);
    stop(&program, &front);
}

TEST(the_new_log_format_and_level_are_in_force_for_the_reloaded_line) {
    struct program program;
    struct reload_front front;
    start(&program, &front, first);
    write_file(program.path, "listen: [\"127.0.0.1:1502\"]\nlog:\n  format: json\n");
    const struct reload_program steps = steps_of(&program);
    reload_run(&front, &steps);
    CHECK_EQ(program.logger.format, LOG_JSON);
    CHECK(strstr(log_text(&program), "\"event\":\"reloaded\"") != NULL);
    write_file(program.path, "listen: [\"127.0.0.1:1502\"]\nlog:\n  level: error\n");
    long before = (long)strlen(log_text(&program));
    reload_run(&front, &steps);
    /* Plain again, and at level error the info line is not written. */
    CHECK_EQ(program.logger.format, LOG_PLAIN);
    CHECK_EQ(program.logger.level, MB_LOG_ERROR);
    CHECK_EQ((long)strlen(log_text(&program)), before);
    CHECK_EQ(program.counted_ok, 2);
    stop(&program, &front);
}

int main(void) {
    RUN(a_good_file_is_committed_and_the_line_says_what_was_applied);
    RUN(a_file_that_does_not_load_is_refused_with_its_reason_and_nothing_changes);
    RUN(a_prepare_or_commit_that_fails_discards_the_new_configuration);
    RUN(what_only_a_restart_changes_is_named_when_the_file_changes_it_and_only_then);
    RUN(the_new_log_format_and_level_are_in_force_for_the_reloaded_line);
    return harness_result();
}
