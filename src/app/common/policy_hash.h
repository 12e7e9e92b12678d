/* SPDX-License-Identifier: MIT */
/* The name of a policy across a fleet: the SHA-256 of its canonical form (mb_policy_canonical(),
 * policy.h), in hex. */
#ifndef MBSEC_APP_POLICY_HASH_H
#define MBSEC_APP_POLICY_HASH_H

#include "mbsec/policy.h"

#define POLICY_HASH_TEXT 65 /* 64 hex digits and a NUL */

/* Writes the hash of `policy` as 64 lowercase hex digits into `hex`; "none" for no policy, and
 * "unknown" when it could not be computed (out of memory). */
void policy_hash(const struct mb_policy *policy, char hex[POLICY_HASH_TEXT]);

#endif
