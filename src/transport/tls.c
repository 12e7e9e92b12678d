/* SPDX-License-Identifier: MIT */
/*
 * The TLS transport (OpenSSL 3): the rules of Modbus/TCP Security set once in the context,
 * a non-blocking SSL per connection behind the transport table.
 */
#include <ctype.h>
#include <errno.h>
#include <pthread.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/err.h>
#include <openssl/ssl.h>
#include <openssl/x509v3.h>

#include "mbsec/error.h"
#include "mbsec/tls.h"
#include "transport/role.h"

/* TLS 1.2: forward secrecy and AEAD only. The spec's two required suites come first. */
#define TLS12_CIPHERS                                                                          \
    "ECDHE-ECDSA-AES128-GCM-SHA256:ECDHE-RSA-AES128-GCM-SHA256:ECDHE-ECDSA-AES256-GCM-SHA384:" \
    "ECDHE-RSA-AES256-GCM-SHA384:ECDHE-ECDSA-CHACHA20-POLY1305:ECDHE-RSA-CHACHA20-POLY1305"
/* TLS 1.3: AES-128-GCM first, as in the spec's TLS 1.2 suites (and the cheapest with AES-NI). */
#define TLS13_CIPHERS "TLS_AES_128_GCM_SHA256:TLS_AES_256_GCM_SHA384:TLS_CHACHA20_POLY1305_SHA256"
/* Key exchange: X25519 first, as OpenSSL's own default and most TLS clients offer it: a TLS 1.3
 * client sends its key share for the first group only, and X25519 makes a resumed TLS 1.3
 * handshake (which still exchanges keys, for forward secrecy) about 40% faster than P-256 here.
 * P-256, which Modbus/TCP Security requires, is always offered and accepted. */
#define GROUPS "X25519:P-256:P-384"
#define SESSION_CACHE_SIZE 20480
#define SESSION_TIMEOUT_S 7200

struct mb_tls_context {
    SSL_CTX *ssl;
    int server;
    int resume;
    unsigned char pin[32];
    int has_pin;
    char *server_name;
    SSL_SESSION *last_session;    /* client with resume: offered on the next connection */
    pthread_mutex_t session_lock; /* last_session, for contexts shared by threads */
    /* The creator's, one per transport, one per server listener: a listener may be given a
     * new context while connections made from this one live on. */
    int references;
};

struct tls_transport {
    struct mb_transport base;
    struct mb_tls_context *context;
    SSL *ssl;
    int established;
    int received; /* application data has arrived */
    int ticket;   /* client: the server sent a session (it accepted us) */
    /* Allocated when needed, so that an idle connection carries neither: the line about a
     * failure (base.detail points to it, or to "") and the peer's role (base.role). What a
     * missing role lacks is worked out again when asked (mb_tls_transport_info). */
    char *detail;
    char *role;
};

static const struct mb_transport_ops tls_ops;

#define DETAIL_SIZE 256

/* Sets the line about the last failure. Without memory for it, the line stays empty and callers
 * fall back to the error code's message. */
__attribute__((format(printf, 2, 3))) static void set_detail(struct tls_transport *tls,
                                                             const char *format, ...) {
    if (tls->detail == NULL) {
        int saved = errno;
        tls->detail = malloc(DETAIL_SIZE);
        errno = saved;
        if (tls->detail == NULL)
            return;
        tls->base.detail = tls->detail;
    }
    va_list arguments;
    va_start(arguments, format);
    vsnprintf(tls->detail, DETAIL_SIZE, format, arguments);
    va_end(arguments);
}

/* ---- errors ---- */

/* The first reason on OpenSSL's error queue, then the queue emptied. */
static const char *queue_reason(char *buffer, size_t size) {
    unsigned long code = ERR_get_error();
    if (code == 0) {
        snprintf(buffer, size, "no further detail");
    } else if (ERR_SYSTEM_ERROR(code)) {
        /* A file that is missing or unreadable: the system's words for it. */
        snprintf(buffer, size, "%s", strerror(ERR_GET_REASON(code)));
    } else {
        const char *reason = ERR_reason_error_string(code);
        if (reason != NULL)
            snprintf(buffer, size, "%s", reason);
        else
            ERR_error_string_n(code, buffer, size);
    }
    ERR_clear_error();
    return buffer;
}

/* Names the cause of a failed handshake in the words of a person deploying certificates. */
static void describe_failure(struct tls_transport *tls, unsigned long code) {
    int reason = ERR_GET_REASON(code);
    const char *cause = NULL;
    long verify = SSL_get_verify_result(tls->ssl);
    if (verify != X509_V_OK && reason == SSL_R_CERTIFICATE_VERIFY_FAILED) {
        switch (verify) {
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT:
        case X509_V_ERR_UNABLE_TO_GET_ISSUER_CERT_LOCALLY:
        case X509_V_ERR_DEPTH_ZERO_SELF_SIGNED_CERT:
        case X509_V_ERR_SELF_SIGNED_CERT_IN_CHAIN:
            cause = "unknown CA";
            break;
        case X509_V_ERR_CERT_HAS_EXPIRED:
            cause = "certificate expired";
            break;
        case X509_V_ERR_CERT_NOT_YET_VALID:
            cause = "certificate not yet valid";
            break;
        case X509_V_ERR_CERT_REVOKED:
            cause = "certificate revoked";
            break;
        case X509_V_ERR_HOSTNAME_MISMATCH:
        case X509_V_ERR_IP_ADDRESS_MISMATCH:
            cause = "name mismatch";
            break;
        case X509_V_ERR_UNABLE_TO_GET_CRL:
            cause = "no CRL for the issuer";
            break;
        case X509_V_ERR_CERT_REJECTED:
            cause = tls->context->has_pin
                        ? "the server certificate's fingerprint is not the pinned one"
                        : "certificate rejected";
            break;
        default:
            cause = "certificate did not verify";
            break;
        }
        set_detail(tls, "%s (%s)", cause, X509_verify_cert_error_string(verify));
        return;
    }
    switch (reason) {
    case SSL_R_PEER_DID_NOT_RETURN_A_CERTIFICATE:
    case SSL_R_TLSV13_ALERT_CERTIFICATE_REQUIRED:
        cause = "no client certificate";
        break;
    case SSL_R_TLSV1_ALERT_UNKNOWN_CA:
        cause = "unknown CA (the peer does not trust our certificate)";
        break;
    case SSL_R_SSLV3_ALERT_CERTIFICATE_EXPIRED:
        cause = "certificate expired (the peer says ours is)";
        break;
    case SSL_R_SSLV3_ALERT_CERTIFICATE_REVOKED:
        cause = "certificate revoked (the peer says ours is)";
        break;
    case SSL_R_UNSUPPORTED_PROTOCOL:
    case SSL_R_TLSV1_ALERT_PROTOCOL_VERSION:
    case SSL_R_WRONG_VERSION_NUMBER:
    case SSL_R_NO_PROTOCOLS_AVAILABLE:
        cause = "protocol version (TLS 1.2 or 1.3 required)";
        break;
    case SSL_R_NO_SHARED_CIPHER:
    case SSL_R_SSLV3_ALERT_HANDSHAKE_FAILURE:
        cause = "no common cipher suite or group";
        break;
    case SSL_R_HTTP_REQUEST:
        cause = "not TLS (plain Modbus or HTTP sent to a TLS port)";
        break;
    default:
        break;
    }
    const char *text = ERR_reason_error_string(code);
    if (cause != NULL)
        set_detail(tls, "%s (%s)", cause, text ? text : "?");
    else
        set_detail(tls, "%s", text ? text : "TLS error");
}

/* Turns the result of an SSL call into the transport's return value. */
static long ssl_result(struct tls_transport *tls, int ok, size_t done) {
    if (ok > 0) {
        tls->base.blocked_on = 0;
        return (long)done;
    }
    int error = SSL_get_error(tls->ssl, ok);
    switch (error) {
    case SSL_ERROR_WANT_READ:
        tls->base.blocked_on = MB_IO_READ;
        return MB_EAGAIN;
    case SSL_ERROR_WANT_WRITE:
        tls->base.blocked_on = MB_IO_WRITE;
        return MB_EAGAIN;
    case SSL_ERROR_ZERO_RETURN:
        if (!tls->established) {
            /* The end of the stream before the handshake finished: a port that does not speak
             * TLS, or a peer that refused us without an alert. */
            set_detail(tls, "connection closed during the TLS handshake (not a TLS port, or our "
                            "certificate was refused)");
            tls->base.last_error = MB_ETLS;
            return MB_ETLS;
        }
        if (!tls->context->server && !tls->received && !tls->ticket) {
            /* TLS 1.3: a client's handshake ends before the server has checked its
             * certificate; a server that refuses it may just close (without an alert). */
            set_detail(tls,
                       "the server closed the connection right after the TLS handshake, before "
                       "any answer (it probably refused our certificate)");
            tls->base.last_error = MB_ETLS;
            return MB_ETLS;
        }
        tls->base.last_error = MB_ECLOSED;
        return MB_ECLOSED;
    case SSL_ERROR_SYSCALL:
        tls->base.system_errno = errno;
        ERR_clear_error();
        if (errno == 0 || errno == EPIPE || errno == ECONNRESET) {
            int refused =
                !tls->established || (!tls->context->server && !tls->received && !tls->ticket);
            set_detail(tls, "%s",
                       !tls->established ? "connection closed during the TLS handshake"
                       : refused         ? "the server reset the connection right after the TLS "
                                           "handshake, before any answer (it probably refused our "
                                           "certificate)"
                                         : "connection closed");
            tls->base.last_error = refused ? MB_ETLS : MB_ECLOSED;
            return refused ? MB_ETLS : MB_ECLOSED;
        }
        set_detail(tls, "%s", strerror(errno));
        tls->base.last_error = MB_EIO;
        return MB_EIO;
    default: {
        unsigned long code = ERR_peek_error();
        describe_failure(tls, code);
        ERR_clear_error();
        tls->base.last_error = MB_ETLS;
        return MB_ETLS;
    }
    }
}

/* ---- the handshake ---- */

/* Reads the role of the peer's certificate: 1 when there is one (in `role`), 0 when there is
 * none (`diagnostic` says why). */
static int read_role(const struct tls_transport *tls, char *role, size_t role_size,
                     char *diagnostic, size_t diagnostic_size) {
    X509 *certificate = SSL_get0_peer_certificate(tls->ssl);
    if (certificate == NULL) {
        role[0] = '\0';
        snprintf(diagnostic, diagnostic_size, "no peer certificate");
        return 0;
    }
    return mb__role_from_certificate(certificate, role, role_size, diagnostic, diagnostic_size) ==
           1;
}

static int note_role(struct tls_transport *tls) {
    char role[MB_ROLE_MAX + 1], diagnostic[160];
    if (!read_role(tls, role, sizeof role, diagnostic, sizeof diagnostic))
        return 0;
    if ((tls->role = strdup(role)) == NULL)
        return MB_ENOMEM;
    tls->base.role = tls->role;
    return 0;
}

/* The handshake's ephemeral (EC)DHE keys, ours and the peer's, are of no use once it is done.
 * OpenSSL 3.0 frees a TLS 1.2 server's own at once, but keeps both of a TLS 1.3 handshake for
 * as long as the connection lives: with P-256, 3.4 KiB of an idle server connection, and a
 * private key that forward secrecy would rather see gone. Nothing reads them again (only the
 * SSL_get_tmp_key() getters would, to describe the key): each is emptied in place, which frees
 * (and clears) the key it holds and leaves a blank EVP_PKEY of the same type for SSL_free(). */
static void forget_key_shares(SSL *ssl) {
    EVP_PKEY *keys[2] = {NULL, NULL};
    if (SSL_get_tmp_key(ssl, &keys[0]) != 1)
        keys[0] = NULL;
    if (SSL_get_peer_tmp_key(ssl, &keys[1]) != 1)
        keys[1] = NULL;
    for (int i = 0; i < 2; i++) {
        if (keys[i] == NULL)
            continue;
        EVP_PKEY_set_type(keys[i], EVP_PKEY_get_base_id(keys[i]));
        EVP_PKEY_free(keys[i]); /* the reference the getter took */
    }
    ERR_clear_error();
}

static int tls_handshake(struct mb_transport *transport) {
    struct tls_transport *tls = (struct tls_transport *)transport;
    if (tls->established)
        return 0;
    ERR_clear_error();
    long rc = ssl_result(tls, SSL_do_handshake(tls->ssl), 0);
    if (rc != 0)
        return (int)rc;
    /* A role that cannot be kept fails the connection rather than demoting it to none. */
    if (tls->context->server && tls->role == NULL && note_role(tls) != 0) {
        tls->base.last_error = MB_ENOMEM;
        return MB_ENOMEM;
    }
    forget_key_shares(tls->ssl);
    tls->established = 1;
    return 0;
}

/* ---- a socket BIO that never raises SIGPIPE ---- */

/* OpenSSL's socket BIO writes with write(2): a peer that has gone makes that raise SIGPIPE,
 * which kills a program that did not ignore it. The library must not decide that for the
 * program, so its TLS writes go through send(MSG_NOSIGNAL), as the TCP transport's do. Reads,
 * control and the rest are the socket BIO's own. */
static BIO_METHOD *nosignal_method;
static pthread_once_t nosignal_once = PTHREAD_ONCE_INIT;

static int nosignal_write(BIO *bio, const char *data, int length) {
    int fd = -1;
    BIO_get_fd(bio, &fd);
    BIO_clear_retry_flags(bio);
    ssize_t sent = send(fd, data, (size_t)length, MSG_NOSIGNAL);
    if (sent < 0 && (errno == EAGAIN || errno == EWOULDBLOCK || errno == EINTR))
        BIO_set_retry_write(bio);
    return (int)sent;
}

static void make_nosignal_method(void) {
    const BIO_METHOD *socket = BIO_s_socket();
    BIO_METHOD *method = BIO_meth_new(BIO_TYPE_SOCKET, "socket without SIGPIPE");
    if (method == NULL)
        return;
    BIO_meth_set_write(method, nosignal_write);
    BIO_meth_set_read(method, BIO_meth_get_read(socket));
    BIO_meth_set_puts(method, BIO_meth_get_puts(socket));
    BIO_meth_set_ctrl(method, BIO_meth_get_ctrl(socket));
    BIO_meth_set_create(method, BIO_meth_get_create(socket));
    BIO_meth_set_destroy(method, BIO_meth_get_destroy(socket));
    nosignal_method = method;
}

static BIO *nosignal_bio(int fd) {
    pthread_once(&nosignal_once, make_nosignal_method);
    if (nosignal_method == NULL)
        return NULL;
    BIO *bio = BIO_new(nosignal_method);
    if (bio != NULL)
        BIO_set_fd(bio, fd, BIO_NOCLOSE);
    return bio;
}

/* ---- the transport table ---- */

static void clear_errors(void) {
    if (ERR_peek_error() != 0)
        ERR_clear_error();
}

static long tls_read(struct mb_transport *transport, void *buffer, size_t capacity) {
    struct tls_transport *tls = (struct tls_transport *)transport;
    int rc = tls_handshake(transport); /* at once when it is done */
    if (rc != 0)
        return rc;
    /* SSL_get_error() needs an empty queue, and the application may have left something on
     * it (a failed PEM read, say), which would turn a WANT_READ into a fatal error. Emptying
     * an empty queue walks all its slots: look first (this runs twice per request). */
    clear_errors();
    size_t done = 0;
    int ok = SSL_read_ex(tls->ssl, buffer, capacity, &done);
    if (ok > 0)
        tls->received = 1;
    /* In TLS 1.3 a client learns that the server refused its certificate only now, from the
     * alert that follows the handshake: say so as a handshake failure. */
    return ssl_result(tls, ok, done);
}

static long tls_write(struct mb_transport *transport, const void *data, size_t length) {
    struct tls_transport *tls = (struct tls_transport *)transport;
    int rc = tls_handshake(transport); /* at once when it is done */
    if (rc != 0)
        return rc;
    clear_errors();
    size_t done = 0;
    int ok = SSL_write_ex(tls->ssl, data, length, &done);
    return ssl_result(tls, ok, done);
}

static size_t tls_pending(const struct mb_transport *transport) {
    const struct tls_transport *tls = (const struct tls_transport *)transport;
    /* SSL_pending() counts the decrypted bytes of the current record only; with read-ahead,
     * whole records may wait in OpenSSL's buffer too, and no socket event will announce them. */
    int decrypted = SSL_pending(tls->ssl);
    if (decrypted > 0)
        return (size_t)decrypted;
    return SSL_has_pending(tls->ssl) ? 1 : 0;
}

static unsigned tls_want(const struct mb_transport *transport) {
    return transport->blocked_on;
}

static void tls_close(struct mb_transport *transport) {
    struct tls_transport *tls = (struct tls_transport *)transport;
    if (tls->established) {
        /* One close_notify if the socket takes it; never waiting for the peer's. */
        ERR_clear_error();
        SSL_shutdown(tls->ssl);
        ERR_clear_error();
    }
    SSL_free(tls->ssl);
    if (transport->fd >= 0)
        close(transport->fd);
    mb_tls_context_destroy(tls->context); /* this transport's reference */
    free(tls->detail);
    free(tls->role);
    free(tls);
}

/* The recheck operation of the transport table (transport.h). */
static int tls_recheck(const struct mb_transport *transport, struct mb_tls_context *context,
                       char *why, size_t why_size) {
    if (why != NULL && why_size > 0)
        why[0] = '\0';
    if (transport == NULL || context == NULL)
        return MB_EINVAL;
    const struct tls_transport *tls = (const struct tls_transport *)transport;
    X509 *peer = tls->established ? SSL_get0_peer_certificate(tls->ssl) : NULL;
    if (peer == NULL || !tls->context->server)
        return MB_EINVAL;
    if (tls->context == context)
        return 0;
    /* The chain the handshake verified holds the intermediates the client sent (its copies
     * were trimmed): as untrusted certificates they help build the chain again, but only the new
     * context's trust anchors can anchor it (the old anchor, last in that chain, is left out:
     * a CA no longer trusted is then "unable to get local issuer certificate"). A resumed
     * session has no such chain, and relies on the anchors and intermediates the server has. */
    STACK_OF(X509) *verified = SSL_get0_verified_chain(tls->ssl);
    STACK_OF(X509) *intermediates = sk_X509_new_null();
    X509_STORE_CTX *check = X509_STORE_CTX_new();
    int rc = MB_ENOMEM;
    int count = verified != NULL ? sk_X509_num(verified) : 0;
    for (int i = 1; intermediates != NULL && i < count - 1; i++)
        if (sk_X509_push(intermediates, sk_X509_value(verified, i)) <= 0)
            goto done;
    if (intermediates != NULL && check != NULL &&
        X509_STORE_CTX_init(check, SSL_CTX_get_cert_store(context->ssl), peer, intermediates) ==
            1) {
        /* As a TLS server checks a client: the purpose, and the context's flags (CRLs). */
        X509_STORE_CTX_set_default(check, "ssl_client");
        X509_VERIFY_PARAM_set1(X509_STORE_CTX_get0_param(check), SSL_CTX_get0_param(context->ssl));
        if (X509_verify_cert(check) == 1) {
            rc = 0;
        } else {
            rc = 1;
            if (why != NULL && why_size > 0)
                snprintf(why, why_size, "%s",
                         X509_verify_cert_error_string(X509_STORE_CTX_get_error(check)));
        }
    }
done:
    X509_STORE_CTX_free(check);
    sk_X509_free(intermediates); /* the certificates are the verified chain's */
    ERR_clear_error();
    return rc;
}

static const struct mb_transport_ops tls_ops = {
    .name = "tls",
    .read = tls_read,
    .write = tls_write,
    .pending = tls_pending,
    .want = tls_want,
    .handshake = tls_handshake,
    .close = tls_close,
    .recheck = tls_recheck,
};

int mb_tls_transport_create(struct mb_tls_context *context, int fd,
                            struct mb_transport **transport_out) {
    if (context == NULL || fd < 0 || transport_out == NULL)
        return MB_EINVAL;
    struct tls_transport *tls = calloc(1, sizeof *tls);
    if (tls == NULL)
        return MB_ENOMEM;
    tls->ssl = SSL_new(context->ssl);
    BIO *bio = tls->ssl != NULL ? nosignal_bio(fd) : NULL;
    if (bio == NULL) {
        SSL_free(tls->ssl);
        free(tls);
        ERR_clear_error();
        return MB_ENOMEM;
    }
    SSL_set_bio(tls->ssl, bio, bio);
    if (context->server) {
        SSL_set_accept_state(tls->ssl);
    } else {
        /* For keep_session() (a server has no use for it, and saves the ex_data it costs). */
        SSL_set_app_data(tls->ssl, tls);
        SSL_set_connect_state(tls->ssl);
        if (context->server_name != NULL) {
            X509_VERIFY_PARAM *param = SSL_get0_param(tls->ssl);
            /* An address is checked against the IP entries, a name against the DNS ones
             * (and sent as SNI). */
            if (X509_VERIFY_PARAM_set1_ip_asc(param, context->server_name) != 1) {
                X509_VERIFY_PARAM_set1_host(param, context->server_name, 0);
                SSL_set_tlsext_host_name(tls->ssl, context->server_name);
            }
            ERR_clear_error();
        }
        if (context->resume) {
            pthread_mutex_lock(&context->session_lock);
            if (context->last_session != NULL)
                SSL_set_session(tls->ssl, context->last_session); /* takes its own reference */
            pthread_mutex_unlock(&context->session_lock);
        }
    }
    tls->context = mb_tls_context_ref(context);
    tls->base.ops = &tls_ops;
    tls->base.fd = fd;
    tls->base.detail = "";
    tls->base.secure = 1;
    *transport_out = &tls->base;
    return 0;
}

int mb_tls_wrap(void *context, int fd, struct mb_transport **transport) {
    return mb_tls_transport_create(context, fd, transport);
}

int mb_tls_transport_info(const struct mb_transport *transport, struct mb_tls_session_info *info) {
    if (transport == NULL || info == NULL || transport->ops != &tls_ops)
        return MB_EINVAL;
    const struct tls_transport *tls = (const struct tls_transport *)transport;
    if (!tls->established)
        return MB_EAGAIN;
    memset(info, 0, sizeof *info);
    info->version = SSL_get_version(tls->ssl);
    info->cipher = SSL_CIPHER_get_name(SSL_get_current_cipher(tls->ssl));
    info->resumed = SSL_session_reused(tls->ssl);
    X509 *peer = SSL_get0_peer_certificate(tls->ssl);
    if (peer != NULL)
        X509_NAME_oneline(X509_get_subject_name(peer), info->subject, sizeof info->subject);
    if (tls->context->server) {
        info->has_role = tls->base.role != NULL;
        if (info->has_role)
            snprintf(info->role, sizeof info->role, "%s", tls->role);
        else
            read_role(tls, info->role, sizeof info->role, info->role_diagnostic,
                      sizeof info->role_diagnostic);
    }
    return 0;
}

/* ---- the context ---- */

/* A client with a pin trusts the server certificate with that fingerprint, and nothing else
 * about it matters: devices with self-signed certificates are the reason pins exist. */
static int verify_pin(int preverified, X509_STORE_CTX *store) {
    SSL *ssl = X509_STORE_CTX_get_ex_data(store, SSL_get_ex_data_X509_STORE_CTX_idx());
    struct mb_tls_context *context = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    if (!context->has_pin)
        return preverified;
    X509 *leaf = X509_STORE_CTX_get0_cert(store);
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (leaf == NULL || X509_digest(leaf, EVP_sha256(), digest, &length) != 1 || length != 32)
        return 0;
    if (memcmp(digest, context->pin, 32) == 0) {
        X509_STORE_CTX_set_error(store, X509_V_OK);
        return 1;
    }
    X509_STORE_CTX_set_error(store, X509_V_ERR_CERT_REJECTED);
    return 0;
}

/* A server verifies the client's chain as OpenSSL would, then drops the certificates the client
 * sent besides its own: OpenSSL would keep them with the session for as long as the connection
 * and the cached session live, a whole parsed X509 each (about 4 KiB with its decoded key), while
 * nothing reads them again. The untrusted stack is the one that becomes the session's peer chain
 * (its first certificate, the client's own, becomes the session's peer, which the role is read
 * from, now and when the session is resumed). The chain that was verified keeps its own
 * references: a certificate that is part of it stays, only the copies that verification did not
 * use (the client's copy of our trust anchor, typically) go. */
static int verify_and_trim(X509_STORE_CTX *store, void *unused) {
    (void)unused;
    int ok = X509_verify_cert(store);
    STACK_OF(X509) *sent = X509_STORE_CTX_get0_untrusted(store);
    if (ok > 0 && sent != NULL) {
        while (sk_X509_num(sent) > 1)
            X509_free(sk_X509_pop(sent));
    }
    return ok;
}

/* A client keeps the newest session the server gave it. In TLS 1.3 that comes after the
 * handshake (NewSessionTicket), so it is taken from this callback rather than at the end of
 * the handshake. */
static int keep_session(SSL *ssl, SSL_SESSION *session) {
    struct mb_tls_context *context = SSL_CTX_get_app_data(SSL_get_SSL_CTX(ssl));
    struct tls_transport *tls = SSL_get_app_data(ssl);
    /* A session from the server means it accepted our certificate (TLS 1.3 tells a client
     * nothing else about that). */
    if (tls != NULL)
        tls->ticket = 1;
    if (!context->resume)
        return 0;
    pthread_mutex_lock(&context->session_lock);
    SSL_SESSION *previous = context->last_session;
    context->last_session = session;
    pthread_mutex_unlock(&context->session_lock);
    SSL_SESSION_free(previous);
    return 1; /* the reference is ours now */
}

static int parse_pin(const char *text, unsigned char pin[32]) {
    if (strncasecmp(text, "SHA256:", 7) == 0)
        text += 7;
    size_t count = 0;
    for (const char *p = text; *p != '\0'; p++) {
        if (*p == ':')
            continue;
        if (!isxdigit((unsigned char)*p) || count >= 64)
            return -1;
        int value = isdigit((unsigned char)*p) ? *p - '0' : (tolower((unsigned char)*p) - 'a' + 10);
        if (count % 2 == 0)
            pin[count / 2] = (unsigned char)(value << 4);
        else
            pin[count / 2] |= (unsigned char)value;
        count++;
    }
    return count == 64 ? 0 : -1;
}

static int fail(char *error, size_t size, const char *what, const char *file) {
    char reason[160];
    if (error != NULL && size > 0)
        snprintf(error, size, "%s%s%s: %s", what, file ? " " : "", file ? file : "",
                 queue_reason(reason, sizeof reason));
    return MB_ECONFIG;
}

static int load_crls(X509_STORE *store, const char *path, char *error, size_t size) {
    BIO *input = BIO_new_file(path, "r");
    if (input == NULL)
        return fail(error, size, "cannot read the CRL file", path);
    int count = 0;
    X509_CRL *crl;
    while ((crl = PEM_read_bio_X509_CRL(input, NULL, NULL, NULL)) != NULL) {
        X509_STORE_add_crl(store, crl);
        X509_CRL_free(crl);
        count++;
    }
    BIO_free(input);
    ERR_clear_error();
    if (count == 0) {
        snprintf(error, size, "no CRL in %s", path);
        return MB_ECONFIG;
    }
    X509_STORE_set_flags(store, X509_V_FLAG_CRL_CHECK | X509_V_FLAG_CRL_CHECK_ALL);
    return 0;
}

int mb_tls_context_create(int server, const struct mb_tls_config *config,
                          struct mb_tls_context **context_out, char *error, size_t error_size) {
    if (config == NULL || context_out == NULL)
        return MB_EINVAL;
    if (error != NULL && error_size > 0)
        error[0] = '\0';
    if (config->certificate_file == NULL || config->key_file == NULL) {
        snprintf(error, error_size, "a certificate and its key are required%s",
                 server ? "" : " (Modbus/TCP Security always authenticates the client)");
        return MB_ECONFIG;
    }
    if (config->ca_file == NULL && config->ca_directory == NULL &&
        (server || config->pin == NULL)) {
        snprintf(error, error_size, "a CA file or directory is required%s",
                 server ? " to verify client certificates" : " (or a --pin)");
        return MB_ECONFIG;
    }
    struct mb_tls_context *context = calloc(1, sizeof *context);
    if (context == NULL)
        return MB_ENOMEM;
    context->server = server;
    context->resume = config->resume;
    pthread_mutex_init(&context->session_lock, NULL);
    context->references = 1;
    int rc = MB_ECONFIG;
    ERR_clear_error();
    SSL_CTX *ssl = SSL_CTX_new(server ? TLS_server_method() : TLS_client_method());
    context->ssl = ssl;
    if (ssl == NULL) {
        rc = MB_ENOMEM;
        goto failed;
    }
    SSL_CTX_set_app_data(ssl, context);
    SSL_CTX_set_min_proto_version(ssl, TLS1_2_VERSION);
    SSL_CTX_set_max_proto_version(ssl, config->tls12_only ? TLS1_2_VERSION : TLS1_3_VERSION);
    /* Renegotiation is never needed; compression leaks (CRIME); a peer that drops the
     * connection without close_notify is a closed connection, not an error to report. */
    SSL_CTX_set_options(ssl, SSL_OP_NO_COMPRESSION | SSL_OP_NO_RENEGOTIATION |
                                 SSL_OP_CIPHER_SERVER_PREFERENCE | SSL_OP_IGNORE_UNEXPECTED_EOF);
    if (!config->session_tickets)
        SSL_CTX_set_options(ssl, SSL_OP_NO_TICKET);
    /* A server's idle connections give their record buffers back (about 34 KiB each
     * otherwise); a client keeps them, having few connections and many requests on each. */
    SSL_CTX_set_mode(ssl, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER |
                              (server ? SSL_MODE_RELEASE_BUFFERS : 0));
    /* One read takes every record there is, instead of a record header, then its body. */
    SSL_CTX_set_read_ahead(ssl, 1);
    if (SSL_CTX_set_cipher_list(ssl, TLS12_CIPHERS) != 1 ||
        SSL_CTX_set_ciphersuites(ssl, TLS13_CIPHERS) != 1 ||
        SSL_CTX_set1_groups_list(ssl, GROUPS) != 1) {
        fail(error, error_size, "cannot set the cipher suites", NULL);
        goto failed;
    }
    if (SSL_CTX_use_certificate_chain_file(ssl, config->certificate_file) != 1) {
        fail(error, error_size, "cannot load the certificate", config->certificate_file);
        goto failed;
    }
    if (SSL_CTX_use_PrivateKey_file(ssl, config->key_file, SSL_FILETYPE_PEM) != 1) {
        fail(error, error_size, "cannot load the key", config->key_file);
        goto failed;
    }
    if (SSL_CTX_check_private_key(ssl) != 1) {
        snprintf(error, error_size, "%s does not match %s", config->key_file,
                 config->certificate_file);
        ERR_clear_error();
        goto failed;
    }
    if ((config->ca_file != NULL || config->ca_directory != NULL) &&
        SSL_CTX_load_verify_locations(ssl, config->ca_file, config->ca_directory) != 1) {
        fail(error, error_size, "cannot load the CA",
             config->ca_file ? config->ca_file : config->ca_directory);
        goto failed;
    }
    if (config->crl_file != NULL &&
        (rc = load_crls(SSL_CTX_get_cert_store(ssl), config->crl_file, error, error_size)) != 0)
        goto failed;
    rc = MB_ECONFIG;
    if (server) {
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
        SSL_CTX_set_cert_verify_callback(ssl, verify_and_trim, NULL);
        /* The CA names the server asks for: clients with several certificates pick the right
         * one. */
        if (config->ca_file != NULL) {
            STACK_OF(X509_NAME) *names = SSL_load_client_CA_file(config->ca_file);
            if (names != NULL)
                SSL_CTX_set_client_CA_list(ssl, names);
        }
        static const unsigned char session_context[] = "mbsec";
        SSL_CTX_set_session_id_context(ssl, session_context, sizeof session_context - 1);
        SSL_CTX_set_session_cache_mode(ssl, SSL_SESS_CACHE_SERVER);
        /* TLS 1.3 sends two tickets by default, each a cached session; one resumes. */
        SSL_CTX_set_num_tickets(ssl, 1);
        SSL_CTX_sess_set_cache_size(ssl, SESSION_CACHE_SIZE);
        SSL_CTX_set_timeout(ssl, SESSION_TIMEOUT_S);
    } else {
        if (config->pin != NULL) {
            if (parse_pin(config->pin, context->pin) != 0) {
                snprintf(error, error_size,
                         "pin '%s' is not SHA256: and 64 hex digits (mbsec cert show prints it)",
                         config->pin);
                goto failed;
            }
            context->has_pin = 1;
        }
        SSL_CTX_set_verify(ssl, SSL_VERIFY_PEER, context->has_pin ? verify_pin : NULL);
        if (config->server_name != NULL && !context->has_pin &&
            (context->server_name = strdup(config->server_name)) == NULL) {
            rc = MB_ENOMEM;
            goto failed;
        }
        if (config->max_fragment_length != 0) {
            uint8_t mode = config->max_fragment_length == 512    ? TLSEXT_max_fragment_length_512
                           : config->max_fragment_length == 1024 ? TLSEXT_max_fragment_length_1024
                           : config->max_fragment_length == 2048 ? TLSEXT_max_fragment_length_2048
                           : config->max_fragment_length == 4096 ? TLSEXT_max_fragment_length_4096
                                                                 : 0;
            if (mode == 0) {
                snprintf(error, error_size, "max_fragment_length must be 512, 1024, 2048 or 4096");
                goto failed;
            }
            SSL_CTX_set_tlsext_max_fragment_length(ssl, mode);
        }
        /* Sessions are noted always (they tell that the server accepted us), kept only to
         * resume. */
        SSL_CTX_set_session_cache_mode(ssl,
                                       SSL_SESS_CACHE_CLIENT | SSL_SESS_CACHE_NO_INTERNAL_STORE);
        SSL_CTX_sess_set_new_cb(ssl, keep_session);
    }
    *context_out = context;
    return 0;

failed:
    ERR_clear_error();
    SSL_CTX_free(context->ssl);
    free(context->server_name);
    pthread_mutex_destroy(&context->session_lock);
    free(context);
    return rc;
}

struct mb_tls_context *mb_tls_context_ref(struct mb_tls_context *context) {
    if (context != NULL)
        __atomic_add_fetch(&context->references, 1, __ATOMIC_RELAXED);
    return context;
}

void mb_tls_context_destroy(struct mb_tls_context *context) {
    if (context == NULL || __atomic_sub_fetch(&context->references, 1, __ATOMIC_ACQ_REL) != 0)
        return;
    SSL_SESSION_free(context->last_session);
    SSL_CTX_free(context->ssl);
    free(context->server_name);
    pthread_mutex_destroy(&context->session_lock);
    free(context);
}
