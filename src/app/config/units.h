/* SPDX-License-Identifier: MIT */
/* The `units:` key of the configuration: the simulated device's tables, files and FIFOs. */
#ifndef MBSEC_CONFIG_UNITS_H
#define MBSEC_CONFIG_UNITS_H

#include <yaml.h>

#include "app/config/config.h"
#include "app/config/node.h"

/*
 * Replaces the units, their FIFOs and any_unit of `config` with the list in `node`. Returns 0 or
 * MB_ECONFIG with the message in the reader's error buffer; on error the units of `config` are
 * left half-written (the caller parses into a scratch copy).
 */
int config_units(const struct yaml_reader *reader, const yaml_node_t *node,
                 struct serve_config *config);

#endif
