/* SPDX-License-Identifier: MIT */
/*
 * What the server runtime needs of the TLS transport beyond tls.h (internal): contexts are
 * reference counted, so that a listener can be given a new one (a rotated certificate, a new
 * CRL) while connections made from the old one live on, and an established connection's client
 * certificate can be checked again against the new one.
 */
#ifndef MBSEC_TRANSPORT_TLS_INTERNAL_H
#define MBSEC_TRANSPORT_TLS_INTERNAL_H

#include <stddef.h>

#include "mbsec/tls.h"

/* The context a TLS transport was made from, or NULL for another kind of transport. */
struct mb_tls_context *mb__tls_transport_context(const struct mb_transport *transport);

/*
 * Verifies the client certificate of an established server transport again, with the trust
 * anchors, CRLs and flags of `context` (the chain the handshake verified supplies the
 * intermediates the client sent). Returns 0 when it is still accepted, 1 when it is not (`why`
 * holds OpenSSL's reason, "certificate revoked"), MB_EINVAL when `transport` is not an
 * established TLS server transport with a peer certificate, MB_ENOMEM.
 */
int mb__tls_transport_recheck(const struct mb_transport *transport, struct mb_tls_context *context,
                              char *why, size_t why_size);

#endif
