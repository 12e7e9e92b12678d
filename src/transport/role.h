/* SPDX-License-Identifier: MIT */
/*
 * The Modbus/TCP Security role (internal): the TLS transport reads it from a client's
 * certificate as an OpenSSL X509. The extension, its limits and the public readers are in
 * tls.h (MB_ROLE_OID, mb_role_check(), mb_role_from_certificate()).
 */
#ifndef MBSEC_TRANSPORT_ROLE_H
#define MBSEC_TRANSPORT_ROLE_H

#include <stddef.h>

#include <openssl/x509.h>

#include "mbsec/tls.h"

/*
 * mb_role_from_certificate() for a parsed certificate: the same results, except that MB_EINVAL
 * means only that certificate or role is NULL, or role_size is 0. The certificate is only read;
 * nothing is allocated.
 */
int mb__role_from_certificate(X509 *certificate, char *role, size_t role_size, char *diagnostic,
                              size_t diagnostic_size);

#endif
