/* SPDX-License-Identifier: MIT */
/* What the blocking and the non-blocking client share: checking an answer against its request,
 * and opening a socket. Internal to the library (mb__ names). */
#ifndef MBSEC_CLIENT_INTERNAL_H
#define MBSEC_CLIENT_INTERNAL_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mbsec/client.h"
#include "mbsec/mbap.h"

/*
 * Checks a frame that carries the transaction id of a request against that request: unit id,
 * function code, the PDU decoding, and (when the request PDU decodes) mb_response_matches().
 * Fills *response and returns 0 (a normal or an exception response), or MB_EMISMATCH or the
 * decoding error, with one line about it in `detail`.
 */
int mb__client_check(const uint8_t *request_pdu, size_t request_length, uint8_t request_unit,
                     const struct mb_adu *adu, struct mb_response *response, char *detail,
                     size_t detail_size);

/*
 * Starts a non-blocking TCP connection to `address` (TCP_NODELAY and keep-alive set). Returns 0
 * with *fd connected, MB_EAGAIN with *fd connecting (wait for it to be writable, then call
 * mb__client_connect_result()), or MB_ECONNECT / MB_ESYSTEM with *system_errno set.
 */
int mb__client_socket(const struct sockaddr *address, socklen_t length, int *fd, int *system_errno);

/* CLOCK_MONOTONIC in microseconds. */
uint64_t mb__client_now_us(void);

/* The delay before the next attempt after `failures` failures in a row: min_ms doubling up to
 * max_ms, plus up to 25 % jitter from the xorshift state *random (spreading clients apart, not
 * unpredictable). */
uint32_t mb__client_backoff(uint32_t min_ms, uint32_t max_ms, uint32_t failures, uint64_t *random);

/* After a connecting socket became writable: 0, or MB_ECONNECT with *system_errno set. */
int mb__client_connect_result(int fd, int *system_errno);

/* Wraps a connected socket in the configured transport (plain TCP without one); closes `fd` when
 * that fails. */
int mb__client_wrap(mb_transport_wrap wrap, void *wrap_data, int fd,
                    struct mb_transport **transport);

#endif
