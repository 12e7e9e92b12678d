/* SPDX-License-Identifier: MIT */
/* `mbsec serve --rtu-over-tcp ADDRESS`: a TCP listener whose connections speak Modbus RTU (as a
 * master speaks to a serial-to-Ethernet converter), each served as a line would be
 * (mb_serial_server_adopt()). */
#ifndef MBSEC_SERVE_RTU_TCP_H
#define MBSEC_SERVE_RTU_TCP_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/loop.h"
#include "mbsec/server.h"

struct rtu_tcp;

/* The connections one listener serves at once; more are closed at accept, with a warning. */
#define RTU_TCP_MAX_CONNECTIONS 32

/*
 * Listens on `address` ("host:port", port 0 for any free one) on `loop` and serves each
 * connection with `config` (its handler, units and log; on_closed is the listener's own). A
 * connection that sends no frame for `idle_ms` (0: 60 s) is closed, so that silent ones cannot
 * hold every place.
 * Logs "listening on ADDRESS" through config->log. Returns 0, or a negative MB_E* error with
 * one line in `error`.
 */
int rtu_tcp_open(struct mb_loop *loop, const char *address,
                 const struct mb_serial_server_config *config, uint32_t idle_ms,
                 struct rtu_tcp **listener, char *error, size_t error_size);

/* Closes the listener and every connection. NULL is ignored. */
void rtu_tcp_close(struct rtu_tcp *listener);

#endif
