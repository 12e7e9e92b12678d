/* SPDX-License-Identifier: MIT */
/*
 * The front of the server programs, `mbsec serve` and `mbsec gateway`: what faces the clients
 * is the same in both, so it is written once. Listeners (plain and Modbus/TCP Security, systemd
 * socket activation, the port-502 explanation), the TLS context, dropping privileges, the
 * descriptor limit, and authorization of each request against the policy.
 *
 * `program` arguments start messages: "mbsec serve".
 */
#ifndef MBSEC_TOOLS_FRONT_H
#define MBSEC_TOOLS_FRONT_H

#include <signal.h>
#include <stdint.h>

#include "app/common/log.h"
#include "app/config/config.h"
#include "mbsec/policy.h"
#include "mbsec/server.h"
#include "mbsec/tls.h"

/*
 * Opens the listeners of `config` (listen, then tls.listen) on servers[0], and the same
 * addresses on the other servers (workers sharing the ports through SO_REUSEPORT); with systemd
 * socket activation, the sockets systemd passed instead, on every server. TLS listeners get
 * `tls`: those of tls.listen, or the passed sockets named "tls" (FileDescriptorName=tls), which
 * without `tls` are refused (EXIT_STATUS_USAGE) rather than served in plain. Without any address,
 * 0.0.0.0:502 and [::]:502. The servers log a "listening" line for each. Returns 0 or an exit
 * status (EXIT_STATUS_USAGE, EXIT_STATUS_FAILURE), the cause said on stderr.
 */
int front_open_listeners(const char *program, const struct front_config *config,
                         struct mb_server *const *servers, int count, struct mb_tls_context *tls,
                         struct logger *logger);

/* The server TLS context of the configuration's tls section, into *tls (NULL without TLS
 * listeners). Returns 0, or -1 with one line in `error` (a file missing or wrong). */
int front_tls_create(const struct front_config *config, struct mb_tls_context **tls, char *error,
                     size_t capacity);

/* What the TLS context of `config` is made from, as one line: each file's name, inode, size and
 * modification time (a CA directory's changes when an entry is added, removed or renamed, as
 * `openssl rehash` does), and the ticket setting. A reload makes a new context when it differs
 * from the running one's. */
void front_tls_stamp(const struct front_config *config, char *stamp, size_t capacity);

/* Appends "|NAME:INODE:SIZE:MTIME" for each of `count` files (zeros for one that is NULL or
 * missing) to the string already in `stamp`: what front_tls_stamp() and the gateway's
 * backend stamps are made of. */
void front_stamp_files(char *stamp, size_t capacity, const char *const *files, size_t count);

/* The uid and gid of user `name`. Returns 0, or -1 when there is no such user. */
int front_user_ids(const char *name, unsigned *uid, unsigned *gid);

/* Drops root for the user `name` and proves it cannot be regained. Returns 0 or -1 (the cause
 * said on stderr). */
int front_drop_privileges(const char *program, const char *name);

/* Raises the soft descriptor limit to fit `max_connections` (and a few per worker), and says
 * so when even the hard limit is too low. */
void front_raise_descriptor_limit(struct logger *logger, uint32_t max_connections, int workers);

/* SIGTERM, SIGINT and SIGHUP blocked in the calling thread (and the threads it starts later),
 * for a signalfd to take them; SIGPIPE ignored (a peer that goes is an error on its socket).
 * `signals` gets the three. */
void front_block_signals(sigset_t *signals);

/* For --check: the policy's rules as written, one line each, marking those in monitor mode,
 * then the default and the policy's hash. */
void front_print_rules(const struct front_config *config);

/* At start and reload: a warning naming the rules (and the default) in monitor mode, when any
 * are; nothing otherwise. */
void front_log_monitor(struct logger *logger, const struct mb_policy *policy);

/*
 * Decides a request on the server's decoding of it (call->request): over TLS always, over plain
 * TCP when `authorize_plain`. Returns 1 when the request may go on, with *decision filled when
 * it was checked (action MB_POLICY_ALLOW; its reason is set for writes; or, in monitor mode,
 * the refusal enforcement would have made, with decision->monitor 1 and the request logged as
 * "would_deny" at info) and decision->action 0 when it was not; decision->access says what the
 * request does either way. Or 0 when refused,
 * with the refusal logged as "denied" (warning) and *answer what the handler returns: the
 * exception's length (written into `response`), 0 for drop, MB_SERVER_CLOSE for close. A NULL
 * policy refuses everything it would check, with exception 01. Returns MB_EINVAL when the
 * policy cannot decide (bad arguments).
 */
int front_authorize(const struct mb_policy *policy, int authorize_plain, struct logger *logger,
                    const struct mb_server_request *call, uint8_t *response,
                    struct mb_policy_decision *decision, int *answer);

/*
 * `--check FILE --explain WHO UNIT FUNCTION [ADDRESS [QUANTITY | VALUE...]]` (serve and gateway):
 * builds the request and prints what `policy` decides for it, and why, on stdout. WHO is a role
 * (over TLS), a source address (plain TCP, checked only with `authorize_plain`) or
 * ROLE@ADDRESS; FUNCTION a code or a policy function name. args[0] is WHO. Returns EXIT_STATUS_OK
 * when allowed, EXIT_STATUS_FAILURE when refused, EXIT_STATUS_USAGE (said on stderr) for arguments
 * that make no request.
 */
int front_explain(const char *program, const struct mb_policy *policy, int authorize_plain,
                  const char *const *args, int count);

#endif
