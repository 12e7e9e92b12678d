/* SPDX-License-Identifier: MIT */
#include "app/daemon/reload.h"

#include <stdio.h>
#include <string.h>

#include "app/daemon/front.h"

/* What only a restart changes in `fresh`, as one string: listen and tls.listen addresses,
 * workers, user, and the program's own. */
static void summarize(const void *fresh, const struct front_config *config,
                      void (*restart_summary)(const void *, char *, size_t), char *summary,
                      size_t capacity) {
    size_t used = (size_t)snprintf(summary, capacity, "workers %d|user %s|listen", config->workers,
                                   config->user != NULL ? config->user : "");
    for (size_t i = 0; i < config->listen_count && used < capacity; i++)
        used += (size_t)snprintf(summary + used, capacity - used, " %s", config->listen[i]);
    if (used < capacity)
        used += (size_t)snprintf(summary + used, capacity - used, "|tls.listen");
    for (size_t i = 0; i < config->tls_listen_count && used < capacity; i++)
        used += (size_t)snprintf(summary + used, capacity - used, " %s", config->tls_listen[i]);
    if (restart_summary != NULL && used < capacity)
        restart_summary(fresh, summary + used, capacity - used);
}

void reload_front_init(struct reload_front *front, const void *running, struct mb_tls_context *tls,
                       const struct front_config *(*config_of)(const void *),
                       void (*restart_summary)(const void *, char *, size_t)) {
    const struct front_config *config = config_of(running);
    memset(front, 0, sizeof *front);
    front->tls = tls;
    if (tls != NULL)
        front_tls_stamp(config, front->stamp, sizeof front->stamp);
    summarize(running, config, restart_summary, front->summary, sizeof front->summary);
}

void reload_front_release(struct reload_front *front) {
    mb_tls_context_destroy(front->tls);
    front->tls = NULL;
}

static void refused(const struct reload_program *program, const char *what, const char *error) {
    logger_message(program->logger, MB_LOG_ERROR, "reload_refused",
                   "%s%s; the running configuration stays in force", what, error);
    if (program->counted != NULL)
        program->counted(program->data, 1);
}

void reload_run(struct reload_front *front, const struct reload_program *program) {
    char error[600];
    void *fresh = program->load(program->data, error, sizeof error);
    if (fresh == NULL) {
        refused(program, "", error);
        return;
    }
    const struct front_config *config = program->config_of(fresh);

    /* TLS listeners come and go with a restart only: without them there is nothing to renew. */
    struct mb_tls_context *next_tls = NULL;
    char stamp[sizeof front->stamp];
    if (front->tls != NULL && config->tls_listen_count > 0) {
        front_tls_stamp(config, stamp, sizeof stamp);
        if (strcmp(stamp, front->stamp) != 0 &&
            front_tls_create(config, &next_tls, error, sizeof error) != 0) {
            refused(program, "TLS: ", error);
            program->discard(program->data, fresh);
            return;
        }
    }
    char applied[600] = "";
    if ((program->prepare != NULL &&
         program->prepare(program->data, fresh, error, sizeof error) != 0) ||
        program->commit(program->data, fresh, applied, sizeof applied, error, sizeof error) != 0) {
        refused(program, "", error);
        mb_tls_context_destroy(next_tls);
        program->discard(program->data, fresh);
        return;
    }
    /* `fresh` is the program's now, and `config` with it. */
    const char *tls_note = "";
    if (next_tls != NULL) {
        program->replace_tls(program->data, front->tls, next_tls);
        mb_tls_context_destroy(front->tls); /* listeners and connections hold their own */
        front->tls = next_tls;
        snprintf(front->stamp, sizeof front->stamp, "%s", stamp);
        tls_note = ", front TLS (certificate, key, CA, CRL)";
    }
    program->logger->format = config->log_format;
    program->logger->level = config->log_level;
    char summary[sizeof front->summary];
    summarize(fresh, config, program->restart_summary, summary, sizeof summary);
    int restart_needed = strcmp(summary, front->summary) != 0;
    if (program->counted != NULL)
        program->counted(program->data, 0);
    logger_message(program->logger, MB_LOG_INFO, "reloaded", "%s%s applied%s%s%s%s", applied,
                   tls_note, restart_needed ? "; the " : "",
                   restart_needed ? program->restart_keys : "",
                   restart_needed ? " changes in the file need a restart" : "",
                   program->note != NULL ? program->note : "");
}
