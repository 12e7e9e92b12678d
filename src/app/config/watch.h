/* SPDX-License-Identifier: MIT */
/* The gateway's `audit:`, `metrics:` and `alerts:` sections and the rate keys of `limits:`. */
#ifndef MBSEC_CONFIG_GUARD_H
#define MBSEC_CONFIG_GUARD_H

#include <yaml.h>

#include "app/config/config.h"
#include "app/config/node.h"

/* The defaults: no audit sink, no metrics, no rate limit, the alert thresholds. */
void mb__config_guard_defaults(struct mb_config_guard *guard);

/* Each parses its section into `guard`. Return 0, or MB_ECONFIG / MB_ENOMEM with
 * "FILE:LINE:COLUMN: what is wrong" in the reader's error buffer. */
int mb__config_audit(const struct mb__yaml_reader *reader, const yaml_node_t *node,
                     struct mb_config_guard *guard);
int mb__config_metrics(const struct mb__yaml_reader *reader, const yaml_node_t *node,
                       struct mb_config_guard *guard);
int mb__config_alerts(const struct mb__yaml_reader *reader, const yaml_node_t *node,
                      struct mb_config_guard *guard);
/* One of limits.rate, limits.burst, limits.over_rate (`key`). */
int mb__config_rate(const struct mb__yaml_reader *reader, const char *key, const yaml_node_t *node,
                    struct mb_config_guard *guard);

/* Frees the strings and resets to the defaults. */
void mb__config_guard_free(struct mb_config_guard *guard);

/* Copies the strings of `source` into `target` (a byte copy of source). Returns 0 or MB_ENOMEM,
 * and then `target` owns nothing. */
int mb__config_guard_copy(struct mb_config_guard *target, const struct mb_config_guard *source);

#endif
