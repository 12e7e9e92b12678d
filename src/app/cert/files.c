/* SPDX-License-Identifier: MIT */
/*
 * Files of `mbsec cert`: writing outputs without ever exposing a key or replacing a file
 * unasked, PEM in memory, reading certificates, and the CA directory.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#include <openssl/bio.h>
#include <openssl/crypto.h>
#include <openssl/err.h>
#include <openssl/pem.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "app/cert/cert.h"
#include "app/commands.h"

/* Certificates, keys and CRLs are small; anything bigger is not one. */
#define MAX_INPUT_BYTES (1024 * 1024)

/* ---- writing ---- */

static int write_all(int fd, const void *data, size_t length) {
    const char *bytes = data;
    while (length > 0) {
        ssize_t written = write(fd, bytes, length);
        if (written < 0) {
            if (errno == EINTR)
                continue;
            return -1;
        }
        bytes += written;
        length -= (size_t)written;
    }
    return 0;
}

/* Writes, flushes to disk and closes; on failure removes `path` and prints why. */
static int fill_and_close(const char *subcommand, int fd, const char *path,
                          const struct cert_output *output) {
    if (write_all(fd, output->data, output->length) != 0 || fsync(fd) != 0) {
        int saved = errno;
        close(fd);
        unlink(path);
        cert_error(subcommand, "cannot write %s: %s", path, strerror(saved));
        return -1;
    }
    if (close(fd) != 0) {
        int saved = errno;
        unlink(path);
        cert_error(subcommand, "cannot write %s: %s", path, strerror(saved));
        return -1;
    }
    return 0;
}

static int create_new(const char *subcommand, const struct cert_output *output) {
    int fd = open(output->path, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, output->mode);
    if (fd < 0) {
        if (errno == EEXIST)
            cert_error(subcommand, "%s already exists; use --force to replace it", output->path);
        else
            cert_error(subcommand, "cannot create %s: %s", output->path, strerror(errno));
        return -1;
    }
    return fill_and_close(subcommand, fd, output->path, output);
}

/* A new file beside the old one, renamed over it: readers never see half a file, and the
 * new file has its own mode from the start, whatever the old one had. */
static int replace(const char *subcommand, const struct cert_output *output) {
    char temporary[4096];
    unsigned char noise[6];
    if (RAND_bytes(noise, sizeof noise) != 1) {
        cert_openssl_failure(subcommand, "no random bytes");
        return -1;
    }
    int length = snprintf(temporary, sizeof temporary, "%s.new-%02x%02x%02x%02x%02x%02x",
                          output->path, noise[0], noise[1], noise[2], noise[3], noise[4], noise[5]);
    if (length < 0 || (size_t)length >= sizeof temporary) {
        cert_error(subcommand, "path too long: %s", output->path);
        return -1;
    }
    int fd = open(temporary, O_WRONLY | O_CREAT | O_EXCL | O_CLOEXEC | O_NOFOLLOW, output->mode);
    if (fd < 0) {
        cert_error(subcommand, "cannot create %s: %s", temporary, strerror(errno));
        return -1;
    }
    if (fill_and_close(subcommand, fd, temporary, output) != 0)
        return -1;
    if (rename(temporary, output->path) != 0) {
        int saved = errno;
        unlink(temporary);
        cert_error(subcommand, "cannot replace %s: %s", output->path, strerror(saved));
        return -1;
    }
    return 0;
}

int cert_write_outputs(const char *subcommand, const struct cert_output *outputs, size_t count,
                       int force) {
    if (!force)
        for (size_t i = 0; i < count; i++) {
            struct stat status;
            if (lstat(outputs[i].path, &status) == 0) {
                cert_error(subcommand, "%s already exists; use --force to replace it",
                           outputs[i].path);
                return EXIT_STATUS_FAILURE;
            }
            if (errno != ENOENT) {
                cert_error(subcommand, "cannot write %s: %s", outputs[i].path, strerror(errno));
                return EXIT_STATUS_FAILURE;
            }
        }
    for (size_t i = 0; i < count; i++) {
        if ((force ? replace(subcommand, &outputs[i]) : create_new(subcommand, &outputs[i])) == 0)
            continue;
        /* All or nothing, for the files this run created. */
        if (!force)
            for (size_t j = 0; j < i; j++)
                unlink(outputs[j].path);
        return EXIT_STATUS_FAILURE;
    }
    return EXIT_STATUS_OK;
}

/* ---- PEM in memory ---- */

static int take_buffer(BIO *bio, int written, struct cert_buffer *pem) {
    pem->bio = bio;
    pem->data = NULL;
    pem->length = 0;
    if (!written)
        return -1;
    char *data;
    long length = BIO_get_mem_data(bio, &data);
    if (length < 0)
        return -1;
    pem->data = data;
    pem->length = (size_t)length;
    return 0;
}

int cert_pem_certificates(X509 *const *certificates, size_t count, struct cert_buffer *pem) {
    BIO *bio = BIO_new(BIO_s_mem());
    int written = bio != NULL;
    for (size_t i = 0; written && i < count; i++)
        written = PEM_write_bio_X509(bio, certificates[i]) == 1;
    return take_buffer(bio, written, pem);
}

int cert_pem_key(EVP_PKEY *key, struct cert_buffer *pem) {
    BIO *bio = BIO_new(BIO_s_mem());
    int written = bio != NULL && PEM_write_bio_PrivateKey(bio, key, NULL, NULL, 0, NULL, NULL);
    return take_buffer(bio, written, pem);
}

int cert_pem_crl(X509_CRL *crl, struct cert_buffer *pem) {
    BIO *bio = BIO_new(BIO_s_mem());
    int written = bio != NULL && PEM_write_bio_X509_CRL(bio, crl);
    return take_buffer(bio, written, pem);
}

void cert_buffer_free(struct cert_buffer *buffer) {
    /* BIO_free clears a memory BIO's buffer before releasing it: it may hold a key. */
    BIO_free(buffer->bio);
    buffer->bio = NULL;
    buffer->data = NULL;
    buffer->length = 0;
}

/* ---- reading ---- */

BIO *cert_read_file(const char *subcommand, const char *path) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        cert_error(subcommand, "cannot read %s: %s", path, strerror(errno));
        return NULL;
    }
    BIO *bio = BIO_new(BIO_s_mem());
    char chunk[4096];
    size_t total = 0, got;
    while (bio != NULL && (got = fread(chunk, 1, sizeof chunk, file)) > 0) {
        total += got;
        if (total > MAX_INPUT_BYTES) {
            cert_error(subcommand, "%s: larger than %d bytes, not a certificate", path,
                       MAX_INPUT_BYTES);
            BIO_free(bio);
            fclose(file);
            return NULL;
        }
        if (BIO_write(bio, chunk, (int)got) != (int)got) {
            BIO_free(bio);
            bio = NULL;
        }
    }
    OPENSSL_cleanse(chunk, sizeof chunk); /* it may have held a key */
    int failed = ferror(file);
    int saved = errno;
    fclose(file);
    if (bio == NULL) {
        cert_error(subcommand, "%s: out of memory", path);
        return NULL;
    }
    if (failed) {
        cert_error(subcommand, "cannot read %s: %s", path, strerror(saved));
        BIO_free(bio);
        return NULL;
    }
    return bio;
}

STACK_OF(X509) * cert_parse_certificates(const char *subcommand, const char *path, BIO *contents) {
    /* Read through a second BIO over the same bytes: reading consumes what it reads, and the
     * bytes are needed again for DER. */
    char *data;
    long length = BIO_get_mem_data(contents, &data);
    BIO *reader = length >= 0 ? BIO_new_mem_buf(data, (int)length) : NULL;
    STACK_OF(X509) *certificates = reader != NULL ? sk_X509_new_null() : NULL;
    X509 *certificate;
    ERR_clear_error();
    while (certificates != NULL &&
           (certificate = PEM_read_bio_X509(reader, NULL, NULL, NULL)) != NULL) {
        if (!sk_X509_push(certificates, certificate)) {
            X509_free(certificate);
            break;
        }
    }
    BIO_free(reader);
    /* The loop ends at the end of the file ("no start line") or at a broken block. */
    unsigned long error = ERR_peek_last_error();
    int clean_end =
        ERR_GET_LIB(error) == ERR_LIB_PEM && ERR_GET_REASON(error) == PEM_R_NO_START_LINE;
    if (certificates != NULL && sk_X509_num(certificates) > 0 && !clean_end) {
        char reason[512];
        cert_error(subcommand, "%s: certificate %d is broken: %s", path,
                   sk_X509_num(certificates) + 1, cert_openssl_reason(reason, sizeof reason));
        sk_X509_pop_free(certificates, X509_free);
        return NULL;
    }
    if (certificates != NULL && sk_X509_num(certificates) == 0 && clean_end && length > 0) {
        /* No PEM certificate: perhaps DER, which must fill the file exactly. */
        ERR_clear_error();
        const unsigned char *cursor = (const unsigned char *)data;
        certificate = d2i_X509(NULL, &cursor, length);
        if (certificate != NULL && cursor == (const unsigned char *)data + length &&
            sk_X509_push(certificates, certificate))
            certificate = NULL;
        X509_free(certificate);
        ERR_clear_error();
    }
    if (certificates == NULL || sk_X509_num(certificates) == 0) {
        char reason[512];
        if (certificates == NULL)
            cert_error(subcommand, "%s: out of memory", path);
        else if (clean_end && length > 0 && memmem(data, (size_t)length, "PRIVATE KEY", 11))
            cert_error(subcommand, "%s holds a private key, not a certificate", path);
        else if (clean_end)
            cert_error(subcommand,
                       "%s: no certificate in it (neither PEM \"BEGIN CERTIFICATE\" nor DER)",
                       path);
        else
            cert_error(subcommand, "%s: not a certificate: %s", path,
                       cert_openssl_reason(reason, sizeof reason));
        sk_X509_pop_free(certificates, X509_free);
        return NULL;
    }
    ERR_clear_error();
    return certificates;
}

STACK_OF(X509) * cert_read_certificates(const char *subcommand, const char *path) {
    BIO *bio = cert_read_file(subcommand, path);
    if (bio == NULL)
        return NULL;
    STACK_OF(X509) *certificates = cert_parse_certificates(subcommand, path, bio);
    BIO_free(bio);
    return certificates;
}

X509 *cert_read_certificate(const char *subcommand, const char *path) {
    STACK_OF(X509) *certificates = cert_read_certificates(subcommand, path);
    if (certificates == NULL)
        return NULL;
    X509 *first = sk_X509_shift(certificates);
    sk_X509_pop_free(certificates, X509_free);
    return first;
}

/* A password callback that refuses: the CA key is stored unencrypted, protected by its mode. */
static int no_password(char *buffer, int size, int writing, void *context) {
    (void)buffer;
    (void)size;
    (void)writing;
    (void)context;
    return -1;
}

static EVP_PKEY *read_key(const char *subcommand, const char *path) {
    struct stat status;
    if (stat(path, &status) == 0 && (status.st_mode & 077) != 0)
        cert_warning(subcommand, "%s can be read by others (mode %04o); chmod 600 it", path,
                     (unsigned)(status.st_mode & 07777));
    BIO *bio = cert_read_file(subcommand, path);
    if (bio == NULL)
        return NULL;
    char *data;
    long length = BIO_get_mem_data(bio, &data);
    BIO *reader = length >= 0 ? BIO_new_mem_buf(data, (int)length) : NULL;
    ERR_clear_error();
    EVP_PKEY *key =
        reader != NULL ? PEM_read_bio_PrivateKey(reader, NULL, no_password, NULL) : NULL;
    BIO_free(reader);
    if (key == NULL) {
        if (length > 0 && memmem(data, (size_t)length, "ENCRYPTED", 9) != NULL) {
            ERR_clear_error();
            cert_error(subcommand, "%s is encrypted; mbsec cert needs the key unencrypted", path);
        } else {
            char what[4200];
            snprintf(what, sizeof what, "%s: not a private key", path);
            cert_openssl_failure(subcommand, what);
        }
    }
    BIO_free(bio);
    return key;
}

int cert_join(const char *subcommand, char *path, size_t size, const char *directory,
              const char *name) {
    int length = snprintf(path, size, "%s/%s", directory, name);
    if (length < 0 || (size_t)length >= size) {
        cert_error(subcommand, "path too long: %s/%s", directory, name);
        return -1;
    }
    return 0;
}

/* ---- the CA directory ---- */

int cert_ca_load(const char *subcommand, const char *directory, struct cert_ca *ca) {
    char certificate_path[4096], key_path[4096];
    ca->directory = directory;
    ca->certificate = NULL;
    ca->key = NULL;
    if (cert_join(subcommand, certificate_path, sizeof certificate_path, directory, "ca.crt") !=
            0 ||
        cert_join(subcommand, key_path, sizeof key_path, directory, "ca.key") != 0)
        return EXIT_STATUS_FAILURE;
    ca->certificate = cert_read_certificate(subcommand, certificate_path);
    if (ca->certificate == NULL)
        return EXIT_STATUS_FAILURE;
    ca->key = read_key(subcommand, key_path);
    if (ca->key == NULL) {
        cert_ca_free(ca);
        return EXIT_STATUS_FAILURE;
    }
    if (X509_check_private_key(ca->certificate, ca->key) != 1) {
        ERR_clear_error();
        cert_error(subcommand, "%s is not the key of %s", key_path, certificate_path);
        cert_ca_free(ca);
        return EXIT_STATUS_FAILURE;
    }
    if (X509_check_ca(ca->certificate) < 1) {
        cert_error(subcommand, "%s is not a CA certificate (no basicConstraints CA:TRUE)",
                   certificate_path);
        cert_ca_free(ca);
        return EXIT_STATUS_FAILURE;
    }
    return EXIT_STATUS_OK;
}

void cert_ca_free(struct cert_ca *ca) {
    X509_free(ca->certificate);
    EVP_PKEY_free(ca->key);
    ca->certificate = NULL;
    ca->key = NULL;
}

/* ---- certificates ---- */

const char *cert_name(const X509_NAME *name, char *buffer, size_t size) {
    /* UTF-8 as it is, control characters and RFC 2253 specials escaped; a name whose strings do
     * not decode is printed again with every byte above 0x7F escaped. */
    unsigned long flags =
        ((unsigned long)ASN1_STRFLGS_RFC2253 & ~(unsigned long)ASN1_STRFLGS_ESC_MSB) |
        XN_FLAG_SEP_CPLUS_SPC | XN_FLAG_FN_SN;
    for (int attempt = 0; attempt < 2; attempt++) {
        BIO *bio = BIO_new(BIO_s_mem());
        if (bio == NULL)
            break;
        int printed = X509_NAME_print_ex(bio, name, 0, flags);
        char *data;
        long length = BIO_get_mem_data(bio, &data);
        if (printed >= 0 && length >= 0) {
            snprintf(buffer, size, "%.*s", (int)length, data);
            BIO_free(bio);
            return buffer;
        }
        BIO_free(bio);
        ERR_clear_error();
        flags |= ASN1_STRFLGS_ESC_MSB;
    }
    snprintf(buffer, size, "(unprintable name)");
    return buffer;
}

const char *cert_serial_hex(const ASN1_INTEGER *serial, char *buffer, size_t size) {
    BIGNUM *number = ASN1_INTEGER_to_BN(serial, NULL);
    char *hex = number != NULL ? BN_bn2hex(number) : NULL;
    snprintf(buffer, size, "%s", hex != NULL ? hex : "(unreadable)");
    OPENSSL_free(hex);
    BN_free(number);
    return buffer;
}
