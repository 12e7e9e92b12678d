/* SPDX-License-Identifier: MIT */
#include "app/common/policy_hash.h"

#include <openssl/evp.h>
#include <stdio.h>
#include <stdlib.h>

void policy_hash(const struct mb_policy *policy, char hex[POLICY_HASH_TEXT]) {
    if (policy == NULL) {
        snprintf(hex, POLICY_HASH_TEXT, "none");
        return;
    }
    snprintf(hex, POLICY_HASH_TEXT, "unknown");
    long length = mb_policy_canonical(policy, NULL, 0);
    if (length < 0)
        return;
    char *text = malloc((size_t)length + 1);
    if (text == NULL)
        return;
    mb_policy_canonical(policy, text, (size_t)length + 1);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int digest_length = 0;
    if (EVP_Digest(text, (size_t)length, digest, &digest_length, EVP_sha256(), NULL) == 1 &&
        digest_length == 32) {
        for (unsigned i = 0; i < 32; i++)
            snprintf(hex + 2 * i, 3, "%02x", digest[i]);
    }
    free(text);
}
