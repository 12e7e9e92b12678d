/* SPDX-License-Identifier: MIT */
/*
 * What the `mbsec cert` subcommands share (src/app/cert/): messages, OpenSSL's error queue
 * as a reason, writing output files safely, reading certificates and keys, the CA directory.
 *
 * A CA directory (`mbsec cert ca --out-dir DIR`) holds:
 *   ca.crt     the CA certificate (PEM)
 *   ca.key     its private key (PKCS#8 PEM, mode 0600)
 *   revoked    one line per revoked certificate: serial (hex), time, reason, "# subject"
 *   crlnumber  the number of the last CRL written (decimal; 0 before the first)
 * Serial numbers are 126 random bits, so no serial counter is kept.
 */
#ifndef MBSEC_TOOLS_CERT_COMMON_H
#define MBSEC_TOOLS_CERT_COMMON_H

#include <stddef.h>
#include <stdio.h>
#include <sys/types.h>
#include <time.h>

#include <openssl/evp.h>
#include <openssl/x509.h>

/* The subcommands, each taking the arguments after its name (argv[0] is the name). */
int cert_ca(int argc, char **argv);
int cert_server(int argc, char **argv);
int cert_client(int argc, char **argv);
int cert_show(int argc, char **argv);
int cert_revoke(int argc, char **argv);
int cert_crl(int argc, char **argv);

/* ---- messages: one line on stderr, "mbsec cert SUBCOMMAND: ..." ---- */

void cert_error(const char *subcommand, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
void cert_warning(const char *subcommand, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* Prints the message with a hint to --help and returns EXIT_STATUS_USAGE. */
int cert_usage(const char *subcommand, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* OpenSSL's error queue as one readable line ("no start line"), written into `buffer` and
 * returned; the queue is emptied. */
const char *cert_openssl_reason(char *buffer, size_t size);
/* Prints "what: <OpenSSL's reason>" and returns EXIT_STATUS_FAILURE. */
int cert_openssl_failure(const char *subcommand, const char *what);

/* ---- the command line ---- */

/* Unknown option, missing value or stray argument reported by getopt_long() (opterr is off),
 * as a usage error naming it. `option` is getopt_long's return value ('?' or ':'). */
int cert_bad_option(const char *subcommand, int option, char **argv);
/* Parses a decimal integer in [minimum, maximum]. Returns 0 or -1. */
int cert_parse_number(const char *text, long minimum, long maximum, long *value);
/* Parses YYYY-MM-DD (midnight UTC) or YYYY-MM-DDTHH:MM:SSZ. Returns 0 or -1. */
int cert_parse_time(const char *text, time_t *value);
/* "2026-05-01 12:00:00 UTC" */
void cert_format_time(time_t value, char *buffer, size_t size);

/* ---- output files ---- */

struct cert_output {
    const char *path;
    mode_t mode; /* 0600 for private keys, 0644 otherwise (less the umask) */
    const void *data;
    size_t length;
};

/*
 * Writes every output or none that did not exist before. Without `force`, an output that
 * already exists (a file, a symbolic link, anything) stops the whole set before anything is
 * written, with an error naming it; files are created with open(O_CREAT | O_EXCL) in their
 * final mode, so a key is never readable by others, not even for an instant. With `force`,
 * each is written to a new file beside it and renamed over the old one, so that a reader sees
 * the old file or the new one, never half of one. Returns EXIT_STATUS_OK or EXIT_STATUS_FAILURE
 * after printing the error.
 */
int cert_write_outputs(const char *subcommand, const struct cert_output *outputs, size_t count,
                       int force);

/* A memory BIO's contents. */
struct cert_buffer {
    BIO *bio;
    const char *data;
    size_t length;
};
/* The certificates (in order) as PEM. Returns 0 or -1 (OpenSSL's queue says why). */
int cert_pem_certificates(X509 *const *certificates, size_t count, struct cert_buffer *pem);
/* The key as unencrypted PKCS#8 PEM. */
int cert_pem_key(EVP_PKEY *key, struct cert_buffer *pem);
/* A CRL as PEM. */
int cert_pem_crl(X509_CRL *crl, struct cert_buffer *pem);
void cert_buffer_free(struct cert_buffer *buffer);

/* ---- reading ---- */

/* The whole file (at most 1 MiB) in a memory BIO, or NULL after printing why. */
BIO *cert_read_file(const char *subcommand, const char *path);
/* Every certificate in `contents` (a PEM file's or a DER file's), read from `path`; as below. */
STACK_OF(X509) * cert_parse_certificates(const char *subcommand, const char *path, BIO *contents);
/* Every certificate in a PEM file, or the one in a DER file, in order. Returns the stack (never
 * empty) or NULL after printing why ("FILE: no certificate in it", the OpenSSL reason). */
STACK_OF(X509) * cert_read_certificates(const char *subcommand, const char *path);
/* The first certificate of a file, as above. */
X509 *cert_read_certificate(const char *subcommand, const char *path);

/* "DIR/name" into `path`; -1 (after printing) when it does not fit. */
int cert_join(const char *subcommand, char *path, size_t size, const char *directory,
              const char *name);

/* ---- the CA directory ---- */

struct cert_ca {
    const char *directory;
    X509 *certificate;
    EVP_PKEY *key;
};

/* Reads DIR/ca.crt and DIR/ca.key and checks that they belong together and that the
 * certificate is a CA. Returns EXIT_STATUS_OK, or EXIT_STATUS_FAILURE after printing why. */
int cert_ca_load(const char *subcommand, const char *directory, struct cert_ca *ca);
void cert_ca_free(struct cert_ca *ca);

/* ---- certificates ---- */

/* The certificate's subject or issuer on one line, "CN=mbsec CA, O=Example"; control
 * characters escaped. Writes into `buffer`. */
const char *cert_name(const X509_NAME *name, char *buffer, size_t size);
/* The serial number in upper-case hex without separators, as `openssl x509 -serial` and
 * `openssl crl -text` print it. */
const char *cert_serial_hex(const ASN1_INTEGER *serial, char *buffer, size_t size);

#endif
