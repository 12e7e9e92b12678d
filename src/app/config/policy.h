/* SPDX-License-Identifier: MIT */
/* The `policy:` key of the configuration: authorization rules, compiled with mb_policy_create(). */
#ifndef MBSEC_CONFIG_POLICY_H
#define MBSEC_CONFIG_POLICY_H

#include <yaml.h>

#include "app/config/config.h"
#include "app/config/node.h"
#include "mbsec/policy.h"

/* The gateway's devices, for rules that name them (`devices:`) and for unit ids that reach the
 * same device through several front units (aliases). */
struct policy_devices {
    const struct config_backend *backends;
    size_t backend_count;
    const struct mb_gateway_route *routes;
    size_t route_count;
    int front_units; /* policy_units: front (units are front unit ids only); 0: device */
};

/*
 * Compiles the list of rules in `node` into a new policy in *policy (the caller frees the one
 * it replaces). With `devices` (the gateway), a rule may name devices, and unit ids are read as
 * policy_units says: with `device` (the default) a rule on a front unit covers every front unit
 * routed to the same backend and device unit; *notes then gets (owned, or NULL when there is
 * nothing to say) one line per rule whose units reach a device through front units they do not
 * name. `monitor` is policy_mode: monitor (every refusing rule without a mode of its own, and
 * the default deny, in monitor mode). Returns 0, or MB_ECONFIG / MB_ENOMEM with the message,
 * "FILE:LINE:COLUMN: policy[N]...: what is wrong", in the reader's error buffer.
 */
int config_policy(const struct yaml_reader *reader, const yaml_node_t *node,
                  const struct policy_devices *devices, int monitor, struct mb_policy **policy,
                  char **notes);

/* `enforce` or `monitor` (policy_mode, a rule's mode) into *monitor (1 for monitor). Returns 0,
 * or MB_ECONFIG with the message in the reader's error buffer (*monitor unchanged). */
int config_policy_mode(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                       int *monitor);

#endif
