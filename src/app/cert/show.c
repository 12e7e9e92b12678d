/* SPDX-License-Identifier: MIT */
/*
 * mbsec cert show: what a certificate holds, one fact per line, with what the Modbus/TCP
 * Security world asks about first: the role (or exactly why there is none), the dates, and the
 * fingerprint a client pins. A CRL is shown too: issuer, number, dates and revoked serials.
 */
#include <arpa/inet.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/bio.h>
#include <openssl/bn.h>
#include <openssl/core_names.h>
#include <openssl/ec.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/pem.h>
#include <openssl/x509v3.h>

#include "app/cert/cert.h"
#include "app/commands.h"
#include "app/common/json.h"
#include "mbsec/error.h"
#include "mbsec/tls.h"

static const char help[] =
    "usage: mbsec cert show FILE...\n"
    "\n"
    "Prints what each certificate in FILE holds (PEM, several certificates one after the\n"
    "other, or DER): subject, issuer, serial, validity (marked \"expired\" or \"not yet\n"
    "valid\"), subject alternative names, key type and size, CA or not, key usages, the\n"
    "Modbus/TCP Security role or why there is none, the SHA-256 fingerprint, and the same\n"
    "fingerprint in the form mbsec's --pin takes (SHA256: and 64 hex digits; colons and\n"
    "lower case are accepted too). A CRL (PEM or DER) is shown with its number, dates and\n"
    "revoked serials.\n"
    "\n"
    "A role extension that is not exactly one UTF8String is reported as what it holds\n"
    "(\"role extension holds an OCTET STRING, not a UTF8String\", \"role extension holds 2\n"
    "values in a SEQUENCE\", \"role is empty\", \"role is not valid UTF-8\"); servers treat\n"
    "such a certificate as having no role.\n"
    "\n"
    "Options:\n"
    "  -h, --help   this text\n"
    "\n"
    "Example:\n"
    "  mbsec cert show hmi1.crt\n";

#define LABEL "%-20s"

static time_t asn1_time(const ASN1_TIME *value) {
    struct tm fields;
    if (value == NULL || ASN1_TIME_to_tm(value, &fields) != 1)
        return (time_t)-1;
    return timegm(&fields);
}

static void print_time(const char *label, const ASN1_TIME *value, const char *late_note,
                       const char *early_note) {
    time_t when = asn1_time(value), now = time(NULL);
    char text[64];
    cert_format_time(when, text, sizeof text);
    const char *note = "";
    if (late_note != NULL && when < now)
        note = late_note;
    if (early_note != NULL && when > now)
        note = early_note;
    printf(LABEL "%s%s\n", label, text, note);
}

/* Bytes from a certificate, printed with anything outside printable ASCII as \xHH. */
static void print_alt_names(X509 *certificate) {
    int critical;
    GENERAL_NAMES *names = X509_get_ext_d2i(certificate, NID_subject_alt_name, &critical, NULL);
    printf(LABEL, "subject alt names:");
    if (names == NULL) {
        puts(critical == -2 ? "(more than one extension: invalid)" : "(none)");
        return;
    }
    for (int i = 0; i < sk_GENERAL_NAME_num(names); i++) {
        const GENERAL_NAME *name = sk_GENERAL_NAME_value(names, i);
        int type;
        const ASN1_STRING *value = GENERAL_NAME_get0_value(name, &type);
        fputs(i > 0 ? ", " : "", stdout);
        if (type == GEN_DNS || type == GEN_EMAIL || type == GEN_URI) {
            fputs(type == GEN_DNS ? "DNS:" : type == GEN_EMAIL ? "email:" : "URI:", stdout);
            text_write_escaped(stdout, (const char *)ASN1_STRING_get0_data(value),
                               (size_t)ASN1_STRING_length(value));
        } else if (type == GEN_IPADD) {
            char text[INET6_ADDRSTRLEN];
            int length = ASN1_STRING_length(value);
            if ((length == 4 || length == 16) &&
                inet_ntop(length == 4 ? AF_INET : AF_INET6, ASN1_STRING_get0_data(value), text,
                          sizeof text) != NULL)
                printf("IP:%s", text);
            else
                printf("IP:(%d bytes, not an address)", length);
        } else if (type == GEN_DIRNAME) {
            char text[512];
            printf("DirName:%s", cert_name(name->d.directoryName, text, sizeof text));
        } else {
            printf("(a name of type %d)", type);
        }
    }
    putchar('\n');
    GENERAL_NAMES_free(names);
}

static void print_key(X509 *certificate) {
    EVP_PKEY *key = X509_get0_pubkey(certificate);
    printf(LABEL, "key:");
    if (key == NULL) {
        ERR_clear_error();
        puts("(unreadable)");
        return;
    }
    int bits = EVP_PKEY_get_bits(key);
    if (EVP_PKEY_get_base_id(key) == EVP_PKEY_EC) {
        char group[64] = "";
        const char *curve = NULL;
        if (EVP_PKEY_get_utf8_string_param(key, OSSL_PKEY_PARAM_GROUP_NAME, group, sizeof group,
                                           NULL) == 1)
            curve = EC_curve_nid2nist(OBJ_txt2nid(group));
        printf("EC %s (%d bits)\n", curve != NULL ? curve : group[0] ? group : "?", bits);
    } else if (EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA) {
        printf("RSA %d bits\n", bits);
    } else {
        const char *type = EVP_PKEY_get0_type_name(key);
        printf("%s (%d bits)\n", type != NULL ? type : "unknown type", bits);
    }
    ERR_clear_error();
}

static void print_constraints(X509 *certificate) {
    int critical;
    BASIC_CONSTRAINTS *constraints =
        X509_get_ext_d2i(certificate, NID_basic_constraints, &critical, NULL);
    printf(LABEL, "CA:");
    if (constraints == NULL || !constraints->ca) {
        puts(constraints == NULL ? "no (no basicConstraints)" : "no");
    } else if (constraints->pathlen != NULL) {
        printf("yes, path length %ld\n", ASN1_INTEGER_get(constraints->pathlen));
    } else {
        puts("yes");
    }
    BASIC_CONSTRAINTS_free(constraints);
}

static void print_key_usage(X509 *certificate) {
    static const struct {
        uint32_t bit;
        const char *name;
    } usages[] = {
        {KU_DIGITAL_SIGNATURE, "digitalSignature"},
        {KU_NON_REPUDIATION, "nonRepudiation"},
        {KU_KEY_ENCIPHERMENT, "keyEncipherment"},
        {KU_DATA_ENCIPHERMENT, "dataEncipherment"},
        {KU_KEY_AGREEMENT, "keyAgreement"},
        {KU_KEY_CERT_SIGN, "keyCertSign"},
        {KU_CRL_SIGN, "cRLSign"},
        {KU_ENCIPHER_ONLY, "encipherOnly"},
        {KU_DECIPHER_ONLY, "decipherOnly"},
    };
    printf(LABEL, "key usage:");
    if (X509_get_extension_flags(certificate) & EXFLAG_KUSAGE) {
        uint32_t bits = X509_get_key_usage(certificate);
        int first = 1;
        for (size_t i = 0; i < sizeof usages / sizeof usages[0]; i++)
            if (bits & usages[i].bit) {
                printf("%s%s", first ? "" : ", ", usages[i].name);
                first = 0;
            }
        puts(first ? "(empty)" : "");
    } else {
        puts("(any: no keyUsage)");
    }

    EXTENDED_KEY_USAGE *extended = X509_get_ext_d2i(certificate, NID_ext_key_usage, NULL, NULL);
    printf(LABEL, "extended key usage:");
    if (extended == NULL) {
        puts("(any: no extendedKeyUsage)");
        return;
    }
    for (int i = 0; i < sk_ASN1_OBJECT_num(extended); i++) {
        const ASN1_OBJECT *purpose = sk_ASN1_OBJECT_value(extended, i);
        int nid = OBJ_obj2nid(purpose);
        char text[128];
        if (nid != NID_undef)
            snprintf(text, sizeof text, "%s", OBJ_nid2sn(nid));
        else
            OBJ_obj2txt(text, sizeof text, purpose, 1);
        printf("%s%s", i > 0 ? ", " : "", text);
    }
    putchar('\n');
    sk_ASN1_OBJECT_pop_free(extended, ASN1_OBJECT_free);
}

static void print_role(X509 *certificate) {
    char role[MB_ROLE_MAX + 1], diagnostic[160];
    printf(LABEL, "role:");
    unsigned char *der = NULL;
    int der_length = i2d_X509(certificate, &der);
    int found = der_length > 0
                    ? mb_role_from_certificate(der, (size_t)der_length, role, sizeof role,
                                               diagnostic, sizeof diagnostic)
                    : MB_ENOMEM;
    OPENSSL_free(der);
    if (found == 1)
        printf("%s\n", role);
    else
        printf("none (%s)\n", found == 0 ? diagnostic : "cannot be read");
}

static void print_fingerprint(X509 *certificate) {
    unsigned char digest[EVP_MAX_MD_SIZE];
    unsigned int length = 0;
    if (X509_digest(certificate, EVP_sha256(), digest, &length) != 1 || length != 32) {
        ERR_clear_error();
        printf(LABEL "(cannot be computed)\n", "fingerprint:");
        return;
    }
    printf(LABEL "SHA256:", "fingerprint:");
    for (unsigned i = 0; i < length; i++)
        printf("%s%02X", i > 0 ? ":" : "", digest[i]);
    printf("\n" LABEL "SHA256:", "pin:");
    for (unsigned i = 0; i < length; i++)
        printf("%02X", digest[i]);
    putchar('\n');
}

static void show_certificate(X509 *certificate) {
    char text[1024];
    printf(LABEL "%s\n",
           "subject:", cert_name(X509_get_subject_name(certificate), text, sizeof text));
    printf(LABEL "%s\n",
           "issuer:", cert_name(X509_get_issuer_name(certificate), text, sizeof text));
    printf(LABEL "%s\n",
           "serial:", cert_serial_hex(X509_get0_serialNumber(certificate), text, sizeof text));
    print_time("not before:", X509_get0_notBefore(certificate), NULL, " (not yet valid)");
    print_time("not after:", X509_get0_notAfter(certificate), " (expired)", NULL);
    print_alt_names(certificate);
    print_key(certificate);
    int signature = X509_get_signature_nid(certificate);
    printf(LABEL "%s\n",
           "signature:", signature != NID_undef ? OBJ_nid2ln(signature) : "(unknown algorithm)");
    print_constraints(certificate);
    print_key_usage(certificate);
    print_role(certificate);
    print_fingerprint(certificate);
    ERR_clear_error();
}

static const char *reason_name(int code) {
    static const char *const names[] = {
        "unspecified",   "keyCompromise",        "cACompromise",    "affiliationChanged",
        "superseded",    "cessationOfOperation", "certificateHold", "(7: not used)",
        "removeFromCRL", "privilegeWithdrawn",   "aACompromise",
    };
    return code >= 0 && (size_t)code < sizeof names / sizeof names[0] ? names[code] : "(unknown)";
}

static void show_crl(X509_CRL *crl) {
    char text[1024];
    printf(LABEL "%s\n", "CRL issuer:", cert_name(X509_CRL_get_issuer(crl), text, sizeof text));
    ASN1_INTEGER *number = X509_CRL_get_ext_d2i(crl, NID_crl_number, NULL, NULL);
    BIGNUM *decimal = number != NULL ? ASN1_INTEGER_to_BN(number, NULL) : NULL;
    char *digits = decimal != NULL ? BN_bn2dec(decimal) : NULL;
    printf(LABEL "%s\n", "CRL number:", digits != NULL ? digits : "(none)");
    OPENSSL_free(digits);
    BN_free(decimal);
    ASN1_INTEGER_free(number);
    print_time("last update:", X509_CRL_get0_lastUpdate(crl), NULL, " (in the future)");
    if (X509_CRL_get0_nextUpdate(crl) != NULL)
        print_time("next update:", X509_CRL_get0_nextUpdate(crl),
                   " (passed: the CRL is out of date)", NULL);
    else
        printf(LABEL "(none)\n", "next update:");
    STACK_OF(X509_REVOKED) *revoked = X509_CRL_get_REVOKED(crl);
    int count = revoked != NULL ? sk_X509_REVOKED_num(revoked) : 0;
    printf(LABEL "%d certificate%s\n", "revoked:", count, count == 1 ? "" : "s");
    for (int i = 0; i < count; i++) {
        X509_REVOKED *entry = sk_X509_REVOKED_value(revoked, i);
        char serial[128], when[64];
        cert_format_time(asn1_time(X509_REVOKED_get0_revocationDate(entry)), when, sizeof when);
        ASN1_ENUMERATED *reason = X509_REVOKED_get_ext_d2i(entry, NID_crl_reason, NULL, NULL);
        printf("  %s revoked %s%s%s\n",
               cert_serial_hex(X509_REVOKED_get0_serialNumber(entry), serial, sizeof serial), when,
               reason != NULL ? ", " : "",
               reason != NULL ? reason_name((int)ASN1_ENUMERATED_get(reason)) : "");
        ASN1_ENUMERATED_free(reason);
    }
    ERR_clear_error();
}

/* A CRL in `contents`, PEM or DER, or NULL if it holds none. */
static X509_CRL *crl_in(BIO *contents) {
    char *data;
    long length = BIO_get_mem_data(contents, &data);
    if (length <= 0)
        return NULL;
    X509_CRL *crl = NULL;
    if (memmem(data, (size_t)length, "-----BEGIN X509 CRL-----", 24) != NULL) {
        BIO *reader = BIO_new_mem_buf(data, (int)length);
        crl = reader != NULL ? PEM_read_bio_X509_CRL(reader, NULL, NULL, NULL) : NULL;
        BIO_free(reader);
    } else if (memmem(data, (size_t)length, "-----BEGIN", 10) == NULL) {
        const unsigned char *cursor = (const unsigned char *)data;
        crl = d2i_X509_CRL(NULL, &cursor, length);
        if (crl != NULL && cursor != (const unsigned char *)data + length) {
            X509_CRL_free(crl);
            crl = NULL;
        }
    }
    ERR_clear_error();
    return crl;
}

/* Shows one file; a blank line goes before it when something was shown before. */
static int show_file(const char *path, int several_files, int *shown_before) {
    BIO *contents = cert_read_file("show", path);
    if (contents == NULL)
        return EXIT_STATUS_FAILURE;
    X509_CRL *crl = crl_in(contents);
    if (crl != NULL) {
        if (*shown_before)
            putchar('\n');
        *shown_before = 1;
        if (several_files)
            printf("%s:\n", path);
        show_crl(crl);
        X509_CRL_free(crl);
        BIO_free(contents);
        return EXIT_STATUS_OK;
    }
    STACK_OF(X509) *certificates = cert_parse_certificates("show", path, contents);
    BIO_free(contents);
    if (certificates == NULL)
        return EXIT_STATUS_FAILURE;
    int count = sk_X509_num(certificates);
    for (int i = 0; i < count; i++) {
        if (*shown_before)
            putchar('\n');
        *shown_before = 1;
        if (count > 1)
            printf("%s: certificate %d of %d%s\n", path, i + 1, count, i == 0 ? "" : " (chain)");
        else if (several_files)
            printf("%s:\n", path);
        show_certificate(sk_X509_value(certificates, i));
    }
    sk_X509_pop_free(certificates, X509_free);
    return EXIT_STATUS_OK;
}

int cert_show(int argc, char **argv) {
    static const struct option options[] = {
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    for (;;) {
        int option = getopt_long(argc, argv, ":h", options, NULL);
        if (option == -1)
            break;
        if (option == 'h') {
            fputs(help, stdout);
            return EXIT_STATUS_OK;
        }
        return cert_bad_option("show", option, argv);
    }
    if (optind >= argc)
        return cert_usage("show", "missing FILE");
    int status = EXIT_STATUS_OK, shown_before = 0;
    for (int i = optind; i < argc; i++) {
        fflush(stdout); /* so that an error about this file comes after what came before */
        if (show_file(argv[i], argc - optind > 1, &shown_before) != EXIT_STATUS_OK)
            status = EXIT_STATUS_FAILURE;
    }
    return status;
}
