/* SPDX-License-Identifier: MIT */
/* The `backends:` key of the configuration: the devices behind `mbsec gateway` and the routes
 * from front unit ids to them. */
#ifndef MBSEC_CONFIG_BACKENDS_H
#define MBSEC_CONFIG_BACKENDS_H

#include <yaml.h>

#include "app/config/config.h"
#include "app/config/node.h"

/*
 * Replaces the backends and routes of `config` with the list in `node` (null: the section left
 * out, nothing changes). Returns 0, or MB_ECONFIG / MB_ENOMEM with the message,
 * "FILE:LINE:COLUMN: backends[N]...: what is wrong", in the reader's error buffer; on error
 * `config` is left as it was.
 */
int config_backends(const struct yaml_reader *reader, const yaml_node_t *node,
                    struct gateway_config *config);

/* Frees the strings of a backend and zeroes it. */
void config_backend_free(struct config_backend *backend);

/* One value of a client-side tls mapping (`key`: certificate, key, ca, pin or server_name):
 * paths are resolved against the configuration file's directory, a pin and a server name are
 * checked. Replaces *field. Returns 0, MB_ECONFIG or MB_ENOMEM. */
int config_tls_text(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                    const char *key, char **field);

/* Copies the strings of `source` into `target` (a byte copy of source). Returns 0 or MB_ENOMEM,
 * and then `target` owns nothing. */
int config_backend_copy(struct config_backend *target, const struct config_backend *source);

#endif
