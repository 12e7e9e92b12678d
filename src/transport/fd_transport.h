/* SPDX-License-Identifier: MIT */
/* What the transports over a plain descriptor (TCP, serial lines) share: everything but their
 * read and write. Defined in tcp.c. */
#ifndef MBSEC_FD_TRANSPORT_H
#define MBSEC_FD_TRANSPORT_H

#include <stddef.h>

#include "mbsec/transport.h"

/* Records `error` (and errno) as the transport's last failure and returns it. */
long mb__fd_fail(struct mb_transport *transport, int error);
/* Nothing is ever buffered inside: 0. */
size_t mb__fd_pending(const struct mb_transport *transport);
/* The direction the last MB_EAGAIN waits for. */
unsigned mb__fd_want(const struct mb_transport *transport);
/* Closes the descriptor and frees the transport. */
void mb__fd_close(struct mb_transport *transport);
/* A transport with `ops` around `fd`: 0, MB_EINVAL or MB_ENOMEM. */
int mb__fd_transport_create(int fd, const struct mb_transport_ops *ops,
                            struct mb_transport **transport);

#endif
