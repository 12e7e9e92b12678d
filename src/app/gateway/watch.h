/* SPDX-License-Identifier: MIT */
/*
 * What `mbsec gateway` sees and says about its traffic, beyond forwarding it: the audit trail
 * (JSON records to a file and/or syslog: connections, allowed writes, denials, sanity
 * violations, alerts), the alerts (unit-id scans, bursts of denials, FC 8 restart and
 * listen-only, floods, malformed frames), the rate limit per connection, and the Prometheus
 * metrics. docs/gateway.md lists every record type and field, and every metric.
 *
 * It sits in three places: as the log callback of the server and the gateway core (connection
 * and backend events become records), in the request handler (before and after the policy),
 * and as the gateway core's completion hook (outcomes and latencies). One thread uses it.
 */
#ifndef MBSEC_TOOLS_WATCH_H
#define MBSEC_TOOLS_WATCH_H

#include <stdint.h>
#include <stdio.h>

#include "app/common/log.h"
#include "app/config/config.h"
#include "mbsec/gateway.h"
#include "mbsec/policy.h"
#include "mbsec/server.h"

struct watch;

/* Opens the audit sinks of `config` (config->guard). Returns 0, or -1 with one line in
 * `error`. `logger` (stderr lines) must outlive the watch. */
int watch_create(const struct gateway_config *config, struct logger *logger, struct watch **watch,
                 char *error, size_t capacity);

/* The server and gateway whose counters the metrics show; either may be NULL. */
void watch_attach(struct watch *watch, struct mb_loop *loop, struct mb_server *server,
                  struct mb_gateway *gateway);

/*
 * A reload: new thresholds and rate, always; new sinks when the file names others (else the
 * file is opened again when logrotate moved it). Returns 0, or 1 when the sinks could not be
 * opened: the old ones stay in use, and that is said at error level, in an "audit" record and
 * in mbsec_gateway_audit_reopen_failures_total, with the reason in `error`. A failing sink
 * never holds back the rest of a reload (a new CRL, a new policy).
 */
/* For --check: the network sinks' addresses and TLS files (what can be known without
 * connecting). Returns 0, or -1 with one line in `error`. */
/* The gateway's name on the broker: mqtt.name, or the host name made safe for topics. */
void watch_mqtt_name(const struct config_mqtt *mqtt, char *name, size_t capacity);

int watch_check_sinks(const struct config_guard *guard, char *error, size_t capacity);

int watch_reload(struct watch *watch, const struct gateway_config *config, char *error,
                 size_t capacity);

/* Gives the audit file to uid:gid (audit_hand_over) before the process becomes them.
 * Returns 0, or -1 with one line in `error`. */
int watch_hand_over(struct watch *watch, unsigned uid, unsigned gid, char *error, size_t capacity);

/* Stops the watch's timer and writes the refusal summaries still open; call it before the loop
 * goes. */
void watch_detach(struct watch *watch);

/* The server's on_refused hook: every connection refused at accept is counted for its source
 * (alert connection_flood), the first of a source's window recorded, the rest summed up in one
 * "refused_summary" record when the window ends. */
void watch_refused(void *watch, const struct mb_peer *peer, const char *listener,
                   const char *reason);
void watch_count_reload(struct watch *watch, int refused);

void watch_destroy(struct watch *watch);

/* An mb_log_fn for the server and the gateway core: the line on stderr, and the record. */
void watch_log(void *watch, const struct mb_log_event *event);

/*
 * One request on its way through the gateway (gateway_request in gateway.c), stage by stage:
 * watch_begin() (counts and alerts), watch_admit() (the rate), the policy,
 * watch_decided() (records), the gateway core. What the stages share is worked out once, in
 * watch_begin(): the connection as the watch has known it since accept, and what the
 * request does. The request is the server's decoding (call->request), never decoded again.
 */
struct watch_request {
    const struct mb_server_request *call;
    struct ratelimit_client *client; /* the connection: peer, source, role; NULL if unknown */
    uint8_t function;                /* call->pdu[0], 0 for an empty PDU */
};

/* Counts the request, watches for unit-id scans and FC 8 restart / listen-only, and records a
 * malformed PDU. */
void watch_begin(struct watch *watch, const struct mb_server_request *call,
                 struct watch_request *seen);

/* The connection's rate. Returns 1 when the request goes on; 0 when it is over the rate, with
 * *answer what the handler returns (an exception 06 written to `response`, 0 to drop, or
 * MB_SERVER_CLOSE). */
int watch_admit(struct watch *watch, const struct watch_request *seen, uint8_t *response,
                int *answer);

/* After the policy: a refusal becomes a "denied" record (and maybe an alert); an allowed write
 * (or read, with audit.reads) is kept until its completion writes its record. `checked` is 0
 * for a plain request the policy did not look at (authorize_plain: false); decision->access
 * says what the request does either way. */
void watch_decided(struct watch *watch, const struct watch_request *seen,
                   const struct mb_policy_decision *decision, int checked);

/* The gateway core's completion hook (mb_gateway_completion_fn). */
void watch_completed(void *watch, const struct mb_gateway_completion *done);

/* Renders the metrics for GET /metrics (an http_render_fn). */
int watch_render(void *watch, const char *path, FILE *out);

#endif
