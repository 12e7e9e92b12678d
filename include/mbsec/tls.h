/* SPDX-License-Identifier: MIT */
/*
 * Modbus/TCP Security ("mbaps", TCP port 802): the MBAP stream inside TLS, with OpenSSL 3,
 * behind the transport table (transport.h), so that the server and both clients work over it
 * unchanged.
 *
 * What a context enforces, whatever the caller asks (../docs/security.md explains why):
 *   - TLS 1.2 and 1.3 only; in TLS 1.2 only ECDHE with AES-GCM (or ChaCha20-Poly1305), which
 *     includes the spec's TLS_ECDHE_{ECDSA,RSA}_WITH_AES_128_GCM_SHA256; groups P-256 first;
 *   - mutual authentication: a server always asks for a client certificate and ends the
 *     handshake with a fatal alert when none comes; a client always presents its own;
 *   - the peer's chain verified to the configured CA file or directory (the peer may send its
 *     whole chain), against CRLs when they are configured (every certificate of the chain);
 *   - no compression, no renegotiation;
 *   - session resumption by session id (in TLS 1.3: a ticket that only names the server's
 *     cached session), the role kept with the session; stateless tickets only when asked for;
 *   - buffers released while a connection is idle, so that an idle TLS connection stays small.
 *
 * The role: the client certificate's extension 1.3.6.1.4.1.50316.802.1, one UTF8String. A
 * certificate without it, or with a malformed one, gives a NULL role (and a diagnostic naming
 * what was found); authorization (policy.h) then decides what the NULL role may do.
 */
#ifndef MBSEC_TLS_H
#define MBSEC_TLS_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/export.h"
#include "mbsec/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MB_TLS_DEFAULT_PORT 802

struct mb_tls_context;

struct mb_tls_config {
    const char *certificate_file; /* PEM: this side's certificate, then its chain */
    const char *key_file;         /* PEM private key (ECDSA P-256, or RSA) */
    const char *ca_file;          /* PEM bundle of trust anchors for the peer's chain, or... */
    const char *ca_directory;     /* ...a hashed directory of them (openssl rehash) */
    const char *crl_file;         /* PEM CRLs; when given, revocation is checked for the chain */
    /* Client only: accept the server certificate whose SHA-256 fingerprint this is (a device
     * with a self-signed certificate), "SHA256:" and 64 hex digits, colons allowed. With a pin
     * the CA check is not required: the pin is the trust. */
    const char *pin;
    /* Client only: the DNS name or IP address the server certificate must carry in its
     * subjectAltName; NULL: not checked (the CA or the pin still is). */
    const char *server_name;
    int tls12_only;      /* 1: at most TLS 1.2 (old peers, measurements); default 1.2 and 1.3 */
    int session_tickets; /* server: 1 to issue stateless tickets as well; default 0 */
    /* Client: ask for records of at most this many bytes (512, 1024, 2048 or 4096) for small
     * devices (RFC 6066 max_fragment_length); 0: not asked. A server honours it by itself. */
    unsigned max_fragment_length;
    /* Client: offer the previous connection's session when connecting again (resumption). */
    int resume;
};

/*
 * Loads certificates, key, trust anchors and CRLs. `server` is 1 for a server context, 0 for a
 * client. Returns 0, or MB_ECONFIG with one line in `error` naming the file and what is wrong
 * with it ("key.pem does not match certificate.pem"), MB_ENOMEM.
 */
MB_API int mb_tls_context_create(int server, const struct mb_tls_config *config,
                                 struct mb_tls_context **context, char *error, size_t error_size);

/* Gives the caller's context back. Transports and server listeners (server.h) made from it hold
 * references of their own: it is freed when the last of them is closed, so a server listener
 * can be handed a new context (a rotated certificate, a new CRL) while connections made from
 * this one live on. A context may be used by several threads at once (each with its own
 * transports). */
MB_API void mb_tls_context_destroy(struct mb_tls_context *context);

/* Takes another reference to `context` (one more mb_tls_context_destroy() to call); for a
 * program that hands a context to another thread. Returns `context`. */
MB_API struct mb_tls_context *mb_tls_context_ref(struct mb_tls_context *context);

/*
 * Wraps a connected, non-blocking socket. The handshake runs from the transport's handshake()
 * (or from the first read or write) without blocking. Returns 0, MB_ENOMEM, MB_EINVAL. On
 * failure `fd` is not closed.
 */
MB_API int mb_tls_transport_create(struct mb_tls_context *context, int fd,
                                   struct mb_transport **transport);

/* mb_tls_transport_create() as an mb_transport_wrap for the clients (client.h): pass the client
 * context as wrap_data. */
MB_API int mb_tls_wrap(void *context, int fd, struct mb_transport **transport);

/* What a finished handshake established. */
struct mb_tls_session_info {
    const char *version; /* "TLSv1.3" */
    const char *cipher;  /* "TLS_AES_128_GCM_SHA256" */
    int resumed;         /* 1 when the session was resumed */
    char subject[256];   /* the peer certificate's subject, one line */
    char role[128];      /* the role; "" with has_role 0 */
    int has_role;
    char role_diagnostic[160]; /* without a role: why ("no role extension", "... OCTET STRING") */
};

/* Fills *info for a TLS transport whose handshake is done. Returns 0, MB_EAGAIN (handshake not
 * finished) or MB_EINVAL (not a TLS transport). */
MB_API int mb_tls_transport_info(const struct mb_transport *transport,
                                 struct mb_tls_session_info *info);

/* The role extension's OID in dotted form (DER 06 0B 2B 06 01 04 01 83 89 0C 86 22 01). Its
 * value is exactly one UTF8String; the extension is not critical. */
#define MB_ROLE_OID "1.3.6.1.4.1.50316.802.1"

/* The longest role mbsec makes or accepts, in bytes of UTF-8 without the terminating NUL: a
 * buffer of MB_ROLE_MAX + 1 bytes holds any role. */
#define MB_ROLE_MAX 127

/*
 * Checks the `length` bytes of a role (no NUL needed) as the TLS transport checks a role it
 * reads: 1 to MB_ROLE_MAX bytes of valid UTF-8 (RFC 3629: no overlong forms, no surrogates,
 * nothing above U+10FFFF) without NUL or other control characters (C0, DEL, C1), which could cut
 * the role short in C strings or forge lines in logs. Returns 1 if the role is acceptable,
 * otherwise 0 with `diagnostic` saying why in one line ("role is empty", "role is not valid
 * UTF-8", ...). `diagnostic` may be NULL (with size 0); it is truncated to fit, and 160 bytes
 * hold every message. Write a role only after this check, so that no peer refuses it.
 */
MB_API int mb_role_check(const char *role, size_t length, char *diagnostic, size_t diagnostic_size);

/*
 * Reads the role of the DER certificate in der[0..der_length) into `role` (NUL-terminated, at
 * most role_size - 1 bytes and never more than MB_ROLE_MAX), as the TLS transport reads a
 * client's. Returns:
 *   1  a well-formed role was found and copied; `diagnostic` is set to "";
 *   0  no role: `diagnostic` says why, in one line without a trailing period, either "no role
 *      extension" or what a malformed extension holds ("role extension holds an OCTET STRING,
 *      not a UTF8String", "role extension holds 2 values in a SEQUENCE", "role is empty", ...);
 *      `role` is set to "";
 *  MB_EINVAL  der or role is NULL, role_size is 0, or the bytes are not one DER certificate
 *             (nothing before or after it).
 * A malformed extension is never an error: the specification treats it as no role.
 * `diagnostic` may be NULL (with size 0); it is truncated to fit, and 160 bytes hold every
 * message.
 */
MB_API int mb_role_from_certificate(const uint8_t *der, size_t der_length, char *role,
                                    size_t role_size, char *diagnostic, size_t diagnostic_size);

#ifdef __cplusplus
}
#endif

#endif
