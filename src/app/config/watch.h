/* SPDX-License-Identifier: MIT */
/* The gateway's `audit:`, `metrics:` and `alerts:` sections and the rate keys of `limits:`. */
#ifndef MBSEC_CONFIG_GUARD_H
#define MBSEC_CONFIG_GUARD_H

#include <yaml.h>

#include "app/config/config.h"
#include "app/config/node.h"

/* The defaults: no audit sink, no metrics, no rate limit, the alert thresholds. */
void config_guard_defaults(struct config_guard *guard);

/* Each parses its section into `guard`. Return 0, or MB_ECONFIG / MB_ENOMEM with
 * "FILE:LINE:COLUMN: what is wrong" in the reader's error buffer. */
int config_audit(const struct yaml_reader *reader, const yaml_node_t *node,
                 struct config_guard *guard);
int config_mqtt(const struct yaml_reader *reader, const yaml_node_t *node,
                struct config_guard *guard);
int config_metrics(const struct yaml_reader *reader, const yaml_node_t *node,
                   struct config_guard *guard);
int config_alerts(const struct yaml_reader *reader, const yaml_node_t *node,
                  struct config_guard *guard);
/* One of limits.rate, limits.burst, limits.over_rate (`key`). */
int config_rate(const struct yaml_reader *reader, const char *key, const yaml_node_t *node,
                struct config_guard *guard);

/* A client-side tls mapping of a sink (certificate, key, ca, pin, server_name) at `path`. */
int config_sink_tls(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                    struct config_sink_tls *tls);
void config_sink_tls_free(struct config_sink_tls *tls);
int config_sink_tls_copy(struct config_sink_tls *target, const struct config_sink_tls *source);

/* Frees the strings and resets to the defaults. */
void config_guard_free(struct config_guard *guard);

/* Copies the strings of `source` into `target` (a byte copy of source). Returns 0 or MB_ENOMEM,
 * and then `target` owns nothing. */
int config_guard_copy(struct config_guard *target, const struct config_guard *source);

#endif
