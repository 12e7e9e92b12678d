/* SPDX-License-Identifier: MIT */
/*
 * The Modbus/TCP Security role (internal): an X.509 extension, OID 1.3.6.1.4.1.50316.802.1
 * (DER 06 0B 2B 06 01 04 01 83 89 0C 86 22 01), non-critical, whose value is exactly one ASN.1
 * UTF8String. The TLS transport reads it from a client's certificate, `mbsec cert show`
 * prints it, and `mbsec cert client` writes it after checking it with mb__role_check(), so
 * that mbsec never makes a role it would refuse to read.
 */
#ifndef MBSEC_TRANSPORT_ROLE_H
#define MBSEC_TRANSPORT_ROLE_H

#include <stddef.h>

#include <openssl/x509.h>

/* The role extension's OID in dotted form, for OBJ_txt2obj(). */
#define MB__ROLE_OID "1.3.6.1.4.1.50316.802.1"

/* The longest role mbsec makes or accepts, in bytes of UTF-8 without the terminating NUL: a
 * buffer of MB__ROLE_MAX + 1 bytes holds any role. */
#define MB__ROLE_MAX 127

/*
 * Reads the role from `certificate` into `role` (NUL-terminated, at most role_size - 1 bytes
 * and never more than MB__ROLE_MAX). Returns:
 *   1  a well-formed role was found and copied; `diagnostic` is set to "";
 *   0  no role: `diagnostic` says why, in one line without a trailing period, either
 *      "no role extension" or what a malformed extension holds ("role extension holds an OCTET
 *      STRING, not a UTF8String", "role extension holds 2 values in a SEQUENCE", "role is
 *      empty", "role is not valid UTF-8", ...); `role` is set to "";
 *  MB_EINVAL  certificate or role is NULL, or role_size is 0.
 * A malformed extension is never an error: the specification treats it as no role. The
 * certificate is only read; nothing is allocated. `diagnostic` may be NULL (with size 0); it is
 * truncated to fit, and 160 bytes hold every message.
 */
int mb__role_from_certificate(X509 *certificate, char *role, size_t role_size, char *diagnostic,
                              size_t diagnostic_size);

/*
 * Checks the bytes of a role as mb__role_from_certificate() checks a UTF8String's content: 1 to
 * MB__ROLE_MAX bytes of valid UTF-8 (RFC 3629: no overlong forms, no surrogates, nothing above
 * U+10FFFF) without NUL or other control characters (C0, DEL, C1), which could cut the role
 * short in C strings or forge lines in logs. Returns 1 if the role is acceptable, otherwise 0
 * with `diagnostic` saying why ("role is empty", "role is not valid UTF-8", ...).
 */
int mb__role_check(const unsigned char *role, size_t length, char *diagnostic,
                   size_t diagnostic_size);

#endif
