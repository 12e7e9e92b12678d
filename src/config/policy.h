/* SPDX-License-Identifier: MIT */
/* The `policy:` key of the configuration: authorization rules, compiled with mb_policy_create(). */
#ifndef MBSEC_CONFIG_POLICY_H
#define MBSEC_CONFIG_POLICY_H

#include <yaml.h>

#include "config/node.h"
#include "mbsec/policy.h"

/*
 * Compiles the list of rules in `node` into a new policy in *policy (the caller frees the one
 * it replaces). Returns 0, or MB_ECONFIG / MB_ENOMEM with the message, "FILE:LINE:COLUMN:
 * policy[N]...: what is wrong", in the reader's error buffer.
 */
int mb__config_policy(const struct mb__yaml_reader *reader, const yaml_node_t *node,
                      struct mb_policy **policy);

#endif
