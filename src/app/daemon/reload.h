/* SPDX-License-Identifier: MIT */
/*
 * The one reload of `mbsec serve` and `mbsec gateway` (SIGHUP): the whole configuration file
 * again, applied whole or not at all. The engine runs the same steps in the same order for both
 * daemons, keeps what they share between reloads (the front's TLS context, what it was made
 * from, and what only a restart changes), and says the same things: one "reload_refused" error
 * line with the reason when a step fails (the running configuration stays in force), one
 * "reloaded" line with what was applied when none does.
 *
 *   1. load      the program reads the file into a new configuration of its own (`fresh`);
 *   2. front TLS a new context when the certificate, key, CA or CRL changed (file stamps: each
 *                file's identity and modification time), else the running one stays;
 *   3. prepare   what the new configuration names outside itself (the gateway's backends and
 *                their TLS contexts), made without touching anything that runs;
 *   4. commit    the program switches to `fresh` (policy, limits, backends, sinks); it may still
 *                refuse, but only before it changed anything;
 *   5. the engine hands a new front context to the listeners (replace_tls: each closes the
 *                connections whose client certificate it refuses) and drops its reference to
 *                the old one, sets the log format and level, and compares what only a restart
 *                changes.
 *
 * TLS contexts and policies are reference counted: a listener, a connection and a worker each
 * hold their own reference, so the old context or policy lives exactly as long as something
 * still uses it. One thread runs reloads.
 */
#ifndef MBSEC_APP_DAEMON_RELOAD_H
#define MBSEC_APP_DAEMON_RELOAD_H

#include <stddef.h>

#include "app/common/log.h"
#include "app/config/config.h"
#include "mbsec/tls.h"

/* What the engine keeps between reloads. */
struct reload_front {
    struct mb_tls_context *tls; /* the listeners' context, one reference; NULL without TLS */
    char stamp[2048];           /* what `tls` was made from (front_tls_stamp) */
    char summary[4096];         /* the keys only a restart changes, as they were at the start */
};

/* A daemon's part of a reload. */
struct reload_program {
    void *data;
    struct logger *logger;
    /* Step 1: a new configuration of the program's own, or NULL with one line in `error`. */
    void *(*load)(void *data, char *error, size_t capacity);
    /* The front part of `fresh`. */
    const struct front_config *(*config_of)(const void *fresh);
    /* Step 3 (NULL: nothing to prepare): 0, or -1 with one line in `error`. */
    int (*prepare)(void *data, void *fresh, char *error, size_t capacity);
    /* Step 4: 0 once the program runs with `fresh` (which it then owns), with its part of the
     * "reloaded" line in `applied` ("policy (3 rules), limits, backends (2)"); or -1 with one
     * line in `error`, having changed nothing. */
    int (*commit)(void *data, void *fresh, char *applied, size_t applied_capacity, char *error,
                  size_t error_capacity);
    /* Frees a `fresh` that was not committed. */
    void (*discard)(void *data, void *fresh);
    /* Step 5, with a new front context: every listener and connection of the program takes
     * `next` in place of `previous` (each holds its own reference). */
    void (*replace_tls)(void *data, struct mb_tls_context *previous, struct mb_tls_context *next);
    /* Appends what else only a restart changes in `fresh` (serve's persist.path, the gateway's
     * metrics.listen) to `summary` (NULL: nothing else), and names those keys in
     * `restart_keys`. */
    void (*restart_summary)(const void *fresh, char *summary, size_t capacity);
    const char *restart_keys; /* "listen, tls.listen, user or metrics.listen" */
    const char *note;         /* said at the end of every "reloaded" line, or NULL */
    /* Told of each reload, 1 when it was refused (NULL: nobody counts). */
    void (*counted)(void *data, int refused);
};

/*
 * At the start: `running` is the program's configuration, of the type its load gives, `tls` the
 * listeners' context made from its front part (the reference passes to the engine; NULL without
 * TLS listeners), and `config_of` and `restart_summary` as in struct reload_program.
 */
void reload_front_init(struct reload_front *front, const void *running, struct mb_tls_context *tls,
                       const struct front_config *(*config_of)(const void *fresh),
                       void (*restart_summary)(const void *fresh, char *summary, size_t capacity));

/* One reload, by the steps above. */
void reload_run(struct reload_front *front, const struct reload_program *program);

/* Drops the engine's reference to the front context. */
void reload_front_release(struct reload_front *front);

#endif
