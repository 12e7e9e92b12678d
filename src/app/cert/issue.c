/* SPDX-License-Identifier: MIT */
/*
 * mbsec cert ca, server, client: keys and certificates. Every extension whose value comes from
 * the command line (names, addresses, the role) is built as a structure, never through
 * OpenSSL's configuration-string syntax, so that a comma or "IP:" inside a name cannot add an
 * entry nobody asked for.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <time.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/evp.h>
#include <openssl/objects.h>
#include <openssl/rand.h>
#include <openssl/x509v3.h>

#include "app/cert/cert.h"
#include "app/commands.h"
#include "mbsec/tls.h"

#define MAX_NAMES 64
#define DNS_NAME_MAX 253
#define COMMON_NAME_MAX 64 /* ub-common-name, RFC 5280 */
#define DAY_SECONDS (24L * 3600)
#define MAX_DAYS 36500L

enum kind {
    KIND_CA,
    KIND_SERVER,
    KIND_CLIENT,
};

static const char ca_help[] =
    "usage: mbsec cert ca --out-dir DIR [options]\n"
    "\n"
    "Creates a certificate authority: DIR/ca.crt (the certificate servers and clients trust),\n"
    "DIR/ca.key (its private key, mode 0600), and DIR/revoked and DIR/crlnumber (the state\n"
    "of revocation). DIR is created (mode 0700) if it does not exist. The CA certificate has\n"
    "basicConstraints critical CA:TRUE with path length 0 (it issues only end-entity\n"
    "certificates), keyUsage keyCertSign and cRLSign, and a subject key identifier.\n"
    "\n"
    "Options:\n"
    "  --out-dir DIR        where the CA lives (required)\n"
    "  --name CN            the CA's common name (default \"mbsec CA\")\n"
    "  --days N             valid for N days from now (default 3650)\n"
    "  --not-before TIME    valid from TIME: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)\n"
    "  --not-after TIME     valid until TIME, instead of --days\n"
    "  --rsa BITS           an RSA key of 2048, 3072 or 4096 bits instead of ECDSA P-256\n"
    "  --force              replace an existing CA in DIR (its revocations are forgotten)\n"
    "  -h, --help           this text\n"
    "\n"
    "Example:\n"
    "  mbsec cert ca --out-dir /etc/mbsec/ca --name \"Plant 4 CA\"\n";

static const char server_help[] =
    "usage: mbsec cert server --ca-dir DIR --out PREFIX (--dns NAME | --ip ADDRESS)... [options]\n"
    "\n"
    "Issues a server certificate signed by the CA in DIR: PREFIX.crt holds the certificate\n"
    "followed by the CA certificate (the whole chain, which a Modbus/TCP Security peer sends),\n"
    "PREFIX.key its private key (mode 0600). The certificate names the server in\n"
    "subjectAltName (DNS and IP entries, which clients check), has extendedKeyUsage\n"
    "serverAuth, keyUsage digitalSignature (and keyEncipherment for RSA keys), and subject\n"
    "and authority key identifiers.\n"
    "\n"
    "Options:\n"
    "  --ca-dir DIR         the CA made by mbsec cert ca (required)\n"
    "  --out PREFIX         write PREFIX.crt and PREFIX.key (required)\n"
    "  --dns NAME           a DNS name of the server; repeat or separate with commas\n"
    "  --ip ADDRESS         an IPv4 or IPv6 address of the server; repeat or use commas\n"
    "  --name CN            the common name (default: the first DNS name, else the first IP)\n"
    "  --days N             valid for N days from now (default 365)\n"
    "  --not-before TIME    valid from TIME: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)\n"
    "  --not-after TIME     valid until TIME, instead of --days\n"
    "  --rsa BITS           an RSA key of 2048, 3072 or 4096 bits instead of ECDSA P-256\n"
    "  --force              replace PREFIX.crt and PREFIX.key if they exist\n"
    "  -h, --help           this text\n"
    "\n"
    "Example:\n"
    "  mbsec cert server --ca-dir ca --out plc1 --dns plc1.example --ip 192.0.2.10\n";

static const char client_help[] =
    "usage: mbsec cert client --ca-dir DIR --out PREFIX (--role ROLE | --no-role) [options]\n"
    "\n"
    "Issues a client certificate signed by the CA in DIR: PREFIX.crt holds the certificate\n"
    "followed by the CA certificate, PREFIX.key its private key (mode 0600). It has\n"
    "extendedKeyUsage clientAuth, keyUsage digitalSignature, key identifiers, and the\n"
    "Modbus/TCP Security role extension (OID 1.3.6.1.4.1.50316.802.1, not critical): one\n"
    "UTF8String that a server's authorization policy looks up.\n"
    "\n"
    "Options:\n"
    "  --ca-dir DIR         the CA made by mbsec cert ca (required)\n"
    "  --out PREFIX         write PREFIX.crt and PREFIX.key (required)\n"
    "  --role ROLE          the role, e.g. operator: 1 to 127 bytes of UTF-8, no control\n"
    "                       characters\n"
    "  --no-role            no role extension (servers then authorize a NULL role)\n"
    "  --name CN            the common name (default: the last part of PREFIX)\n"
    "  --days N             valid for N days from now (default 365)\n"
    "  --not-before TIME    valid from TIME: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ (UTC)\n"
    "  --not-after TIME     valid until TIME, instead of --days; with --not-before in the\n"
    "                       past this makes an expired certificate, for tests\n"
    "  --rsa BITS           an RSA key of 2048, 3072 or 4096 bits instead of ECDSA P-256\n"
    "  --force              replace PREFIX.crt and PREFIX.key if they exist\n"
    "  -h, --help           this text\n"
    "\n"
    "Examples:\n"
    "  mbsec cert client --ca-dir ca --out hmi1 --role operator\n"
    "  mbsec cert client --ca-dir ca --out old --role operator \\\n"
    "      --not-before 2020-01-01 --not-after 2020-01-02          # already expired\n";

/* One subjectAltName entry. */
struct alt_name {
    int is_address;
    char text[DNS_NAME_MAX + 1];
    unsigned char address[16];
    int address_length;
};

struct issue {
    enum kind kind;
    const char *subcommand;
    const char *directory; /* ca: --out-dir; others: --ca-dir */
    const char *prefix;
    const char *name;
    long days;
    int days_given;
    time_t not_before, not_after;
    int not_before_given, not_after_given;
    long rsa_bits; /* 0: ECDSA P-256 */
    int force;
    struct alt_name names[MAX_NAMES];
    size_t name_count;
    const char *role;
    int no_role;
};

/* ---- checking what was typed ---- */

/* A host name as RFC 1123 has them: letters, digits and hyphens in labels of 1..63 that do not
 * start or end with a hyphen; a leftmost "*" label (a wildcard) is allowed before two or more
 * others. Returns NULL or what is wrong. */
static const char *dns_name_problem(const char *name) {
    size_t length = strlen(name);
    if (length == 0)
        return "is empty";
    if (length > DNS_NAME_MAX)
        return "is longer than 253 characters";
    unsigned char address[16];
    if (inet_pton(AF_INET, name, address) == 1 || inet_pton(AF_INET6, name, address) == 1)
        return "is an IP address: give it with --ip";
    const char *label = name;
    int labels = 0;
    if (strncmp(name, "*.", 2) == 0)
        label = name + 2;
    for (;;) {
        const char *end = strchr(label, '.');
        size_t label_length = end != NULL ? (size_t)(end - label) : strlen(label);
        if (label_length == 0)
            return "has an empty label (two dots, or a dot at an end)";
        if (label_length > 63)
            return "has a label longer than 63 characters";
        if (label[0] == '-' || label[label_length - 1] == '-')
            return "has a label that starts or ends with a hyphen";
        for (size_t i = 0; i < label_length; i++)
            if (!isalnum((unsigned char)label[i]) && label[i] != '-')
                return "may hold only letters, digits, hyphens and dots (and a leading \"*.\")";
        labels++;
        if (end == NULL)
            break;
        label = end + 1;
    }
    if (label != name && name[0] == '*' && labels < 2)
        return "is a wildcard over a single label";
    return NULL;
}

/* Adds each comma-separated entry of `list`. Returns 0 or EXIT_STATUS_USAGE after saying why. */
static int add_names(struct issue *issue, const char *list, int addresses) {
    const char *option = addresses ? "--ip" : "--dns";
    const char *entry = list;
    for (;;) {
        const char *comma = strchr(entry, ',');
        size_t length = comma != NULL ? (size_t)(comma - entry) : strlen(entry);
        struct alt_name name = {.is_address = addresses};
        if (length > DNS_NAME_MAX)
            return cert_usage(issue->subcommand, "%s: '%.40s...' is too long", option, entry);
        memcpy(name.text, entry, length);
        name.text[length] = '\0';
        if (addresses) {
            if (inet_pton(AF_INET, name.text, name.address) == 1)
                name.address_length = 4;
            else if (inet_pton(AF_INET6, name.text, name.address) == 1)
                name.address_length = 16;
            else
                return cert_usage(issue->subcommand, "--ip: '%s' is not an IPv4 or IPv6 address",
                                  name.text);
        } else {
            const char *problem = dns_name_problem(name.text);
            if (problem != NULL)
                return cert_usage(issue->subcommand, "--dns: '%s' %s", name.text, problem);
        }
        int duplicate = 0;
        for (size_t i = 0; i < issue->name_count; i++)
            if (issue->names[i].is_address == addresses &&
                (addresses ? issue->names[i].address_length == name.address_length &&
                                 memcmp(issue->names[i].address, name.address,
                                        (size_t)name.address_length) == 0
                           : strcasecmp(issue->names[i].text, name.text) == 0))
                duplicate = 1;
        if (!duplicate) {
            if (issue->name_count == MAX_NAMES)
                return cert_usage(issue->subcommand, "more than %d --dns and --ip entries",
                                  MAX_NAMES);
            issue->names[issue->name_count++] = name;
        }
        if (comma == NULL)
            return 0;
        entry = comma + 1;
    }
}

/* A common name: 1..64 characters of UTF-8, none of them control characters. */
static int check_common_name(const struct issue *issue, const char *name) {
    size_t characters = 0;
    for (const unsigned char *c = (const unsigned char *)name; *c != '\0'; c++) {
        if (*c < 0x20 || *c == 0x7F)
            return cert_usage(issue->subcommand, "--name: control characters not allowed");
        if ((*c & 0xC0) != 0x80)
            characters++;
    }
    if (characters == 0 || characters > COMMON_NAME_MAX)
        return cert_usage(issue->subcommand, "--name: 1 to %d characters, not %zu", COMMON_NAME_MAX,
                          characters);
    /* The role check is a strict UTF-8 check (and more); a name longer than any role is left to
     * the same check in OpenSSL when it is added to the certificate. */
    char reason[160];
    size_t bytes = strlen(name);
    if (bytes <= MB_ROLE_MAX && mb_role_check(name, bytes, reason, sizeof reason) != 1)
        return cert_usage(issue->subcommand, "--name: not valid UTF-8");
    return 0;
}

enum option_id {
    OPT_OUT_DIR = 256,
    OPT_CA_DIR,
    OPT_OUT,
    OPT_NAME,
    OPT_DAYS,
    OPT_NOT_BEFORE,
    OPT_NOT_AFTER,
    OPT_RSA,
    OPT_FORCE,
    OPT_DNS,
    OPT_IP,
    OPT_ROLE,
    OPT_NO_ROLE,
};

/* Parses the command line into `issue`. Returns -1 to go on, or the exit status. */
static int parse(struct issue *issue, int argc, char **argv) {
    static const struct option ca_options[] = {
        {"out-dir", required_argument, NULL, OPT_OUT_DIR},
        {"name", required_argument, NULL, OPT_NAME},
        {"days", required_argument, NULL, OPT_DAYS},
        {"not-before", required_argument, NULL, OPT_NOT_BEFORE},
        {"not-after", required_argument, NULL, OPT_NOT_AFTER},
        {"rsa", required_argument, NULL, OPT_RSA},
        {"force", no_argument, NULL, OPT_FORCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const struct option server_options[] = {
        {"ca-dir", required_argument, NULL, OPT_CA_DIR},
        {"out", required_argument, NULL, OPT_OUT},
        {"dns", required_argument, NULL, OPT_DNS},
        {"ip", required_argument, NULL, OPT_IP},
        {"name", required_argument, NULL, OPT_NAME},
        {"days", required_argument, NULL, OPT_DAYS},
        {"not-before", required_argument, NULL, OPT_NOT_BEFORE},
        {"not-after", required_argument, NULL, OPT_NOT_AFTER},
        {"rsa", required_argument, NULL, OPT_RSA},
        {"force", no_argument, NULL, OPT_FORCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    static const struct option client_options[] = {
        {"ca-dir", required_argument, NULL, OPT_CA_DIR},
        {"out", required_argument, NULL, OPT_OUT},
        {"role", required_argument, NULL, OPT_ROLE},
        {"no-role", no_argument, NULL, OPT_NO_ROLE},
        {"name", required_argument, NULL, OPT_NAME},
        {"days", required_argument, NULL, OPT_DAYS},
        {"not-before", required_argument, NULL, OPT_NOT_BEFORE},
        {"not-after", required_argument, NULL, OPT_NOT_AFTER},
        {"rsa", required_argument, NULL, OPT_RSA},
        {"force", no_argument, NULL, OPT_FORCE},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    const struct option *options = issue->kind == KIND_CA       ? ca_options
                                   : issue->kind == KIND_SERVER ? server_options
                                                                : client_options;
    const char *help = issue->kind == KIND_CA       ? ca_help
                       : issue->kind == KIND_SERVER ? server_help
                                                    : client_help;
    const char *sub = issue->subcommand;
    int status;
    optind = 1;
    opterr = 0;
    for (;;) {
        int option = getopt_long(argc, argv, ":h", options, NULL);
        if (option == -1)
            break;
        switch (option) {
        case OPT_OUT_DIR:
        case OPT_CA_DIR:
            issue->directory = optarg;
            break;
        case OPT_OUT:
            issue->prefix = optarg;
            break;
        case OPT_NAME:
            issue->name = optarg;
            break;
        case OPT_DAYS:
            if (cert_parse_number(optarg, 1, MAX_DAYS, &issue->days) != 0)
                return cert_usage(sub, "--days: a number of days from 1 to %ld, not '%s'", MAX_DAYS,
                                  optarg);
            issue->days_given = 1;
            break;
        case OPT_NOT_BEFORE:
            if (cert_parse_time(optarg, &issue->not_before) != 0)
                return cert_usage(sub, "--not-before: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, not '%s'",
                                  optarg);
            issue->not_before_given = 1;
            break;
        case OPT_NOT_AFTER:
            if (cert_parse_time(optarg, &issue->not_after) != 0)
                return cert_usage(sub, "--not-after: YYYY-MM-DD or YYYY-MM-DDTHH:MM:SSZ, not '%s'",
                                  optarg);
            issue->not_after_given = 1;
            break;
        case OPT_RSA:
            if (cert_parse_number(optarg, 2048, 4096, &issue->rsa_bits) != 0 ||
                (issue->rsa_bits != 2048 && issue->rsa_bits != 3072 && issue->rsa_bits != 4096))
                return cert_usage(sub, "--rsa: 2048, 3072 or 4096 bits, not '%s'", optarg);
            break;
        case OPT_FORCE:
            issue->force = 1;
            break;
        case OPT_DNS:
        case OPT_IP:
            if ((status = add_names(issue, optarg, option == OPT_IP)) != 0)
                return status;
            break;
        case OPT_ROLE:
            issue->role = optarg;
            break;
        case OPT_NO_ROLE:
            issue->no_role = 1;
            break;
        case 'h':
            fputs(help, stdout);
            return EXIT_STATUS_OK;
        default:
            return cert_bad_option(sub, option, argv);
        }
    }
    if (optind < argc)
        return cert_usage(sub, "unexpected argument '%s'", argv[optind]);
    if (issue->directory == NULL)
        return cert_usage(sub, "missing %s DIR", issue->kind == KIND_CA ? "--out-dir" : "--ca-dir");
    if (issue->kind != KIND_CA && issue->prefix == NULL)
        return cert_usage(sub, "missing --out PREFIX");
    if (issue->kind == KIND_SERVER && issue->name_count == 0)
        return cert_usage(sub, "missing --dns NAME or --ip ADDRESS: clients check the "
                               "server's name against them");
    if (issue->kind == KIND_CLIENT) {
        if (issue->role != NULL && issue->no_role)
            return cert_usage(sub, "--role and --no-role together");
        if (issue->role == NULL && !issue->no_role)
            return cert_usage(sub, "missing --role ROLE (or --no-role for a certificate "
                                   "without one)");
        char reason[160];
        if (issue->role != NULL &&
            mb_role_check(issue->role, strlen(issue->role), reason, sizeof reason) != 1)
            return cert_usage(sub, "--role: %s", reason);
    }
    if (issue->name != NULL && (status = check_common_name(issue, issue->name)) != 0)
        return status;
    if (issue->days_given && issue->not_after_given)
        return cert_usage(sub, "--days and --not-after together: give one");
    time_t now = time(NULL);
    if (!issue->not_before_given)
        issue->not_before = now;
    if (!issue->not_after_given)
        issue->not_after = issue->not_before + issue->days * DAY_SECONDS;
    if (issue->not_after <= issue->not_before) {
        char before[64], after[64];
        cert_format_time(issue->not_before, before, sizeof before);
        cert_format_time(issue->not_after, after, sizeof after);
        return cert_usage(sub, "the certificate would end (%s) before it begins (%s)%s", after,
                          before, issue->not_before_given ? "" : "; give --not-before too");
    }
    return -1;
}

/* ---- building ---- */

static EVP_PKEY *generate_key(long rsa_bits) {
    if (rsa_bits > 0)
        return EVP_PKEY_Q_keygen(NULL, NULL, "RSA", (size_t)rsa_bits);
    return EVP_PKEY_Q_keygen(NULL, NULL, "EC", "P-256");
}

/* 126 random bits, positive and never zero: unique without a counter (RFC 5280 allows 20 bytes;
 * the CA/Browser Forum asks for 64 random bits at least). */
static int set_random_serial(X509 *certificate) {
    unsigned char bytes[16];
    if (RAND_bytes(bytes, sizeof bytes) != 1)
        return -1;
    bytes[0] = (unsigned char)((bytes[0] & 0x3F) | 0x40);
    BIGNUM *number = BN_bin2bn(bytes, sizeof bytes, NULL);
    int ok = number != NULL && BN_to_ASN1_INTEGER(number, X509_get_serialNumber(certificate));
    BN_free(number);
    return ok ? 0 : -1;
}

static int set_time(X509 *certificate, time_t value, int after) {
    ASN1_TIME *time_value = ASN1_TIME_set(NULL, value);
    int ok = time_value != NULL && (after ? X509_set1_notAfter(certificate, time_value)
                                          : X509_set1_notBefore(certificate, time_value));
    ASN1_TIME_free(time_value);
    return ok ? 0 : -1;
}

/* An extension whose value is a constant of ours, in OpenSSL's configuration syntax. */
static int add_extension(X509 *certificate, X509V3_CTX *context, int nid, const char *value) {
    X509_EXTENSION *extension = X509V3_EXT_nconf_nid(NULL, context, nid, value);
    int ok = extension != NULL && X509_add_ext(certificate, extension, -1);
    X509_EXTENSION_free(extension);
    return ok ? 0 : -1;
}

static int add_alt_names(X509 *certificate, const struct issue *issue) {
    GENERAL_NAMES *names = sk_GENERAL_NAME_new_null();
    int ok = names != NULL;
    for (size_t i = 0; ok && i < issue->name_count; i++) {
        const struct alt_name *entry = &issue->names[i];
        GENERAL_NAME *name = GENERAL_NAME_new();
        ASN1_STRING *value = entry->is_address ? ASN1_OCTET_STRING_new() : ASN1_IA5STRING_new();
        ok = name != NULL && value != NULL &&
             (entry->is_address ? ASN1_STRING_set(value, entry->address, entry->address_length)
                                : ASN1_STRING_set(value, entry->text, (int)strlen(entry->text)));
        if (!ok) {
            GENERAL_NAME_free(name);
            ASN1_STRING_free(value);
            break;
        }
        GENERAL_NAME_set0_value(name, entry->is_address ? GEN_IPADD : GEN_DNS, value);
        if (!sk_GENERAL_NAME_push(names, name)) {
            GENERAL_NAME_free(name);
            ok = 0;
        }
    }
    ok = ok &&
         X509_add1_ext_i2d(certificate, NID_subject_alt_name, names, 0, X509V3_ADD_DEFAULT) == 1;
    GENERAL_NAMES_free(names);
    return ok ? 0 : -1;
}

/* The role extension: OID 1.3.6.1.4.1.50316.802.1, not critical, one DER UTF8String. */
static int add_role(X509 *certificate, const char *role) {
    ASN1_UTF8STRING *text = ASN1_UTF8STRING_new();
    ASN1_OCTET_STRING *value = ASN1_OCTET_STRING_new();
    ASN1_OBJECT *oid = OBJ_txt2obj(MB_ROLE_OID, 1);
    unsigned char *der = NULL;
    int der_length = -1;
    if (text != NULL && ASN1_STRING_set(text, role, (int)strlen(role)))
        der_length = i2d_ASN1_UTF8STRING(text, &der);
    X509_EXTENSION *extension = NULL;
    if (der_length > 0 && value != NULL && oid != NULL &&
        ASN1_OCTET_STRING_set(value, der, der_length))
        extension = X509_EXTENSION_create_by_OBJ(NULL, oid, 0, value);
    int ok = extension != NULL && X509_add_ext(certificate, extension, -1);
    X509_EXTENSION_free(extension);
    OPENSSL_free(der);
    ASN1_OBJECT_free(oid);
    ASN1_OCTET_STRING_free(value);
    ASN1_UTF8STRING_free(text);
    return ok ? 0 : -1;
}

/* The common name when --name was not given. */
static void default_common_name(const struct issue *issue, char *buffer, size_t size) {
    if (issue->kind == KIND_CA) {
        snprintf(buffer, size, "mbsec CA");
    } else if (issue->kind == KIND_SERVER) {
        /* A DNS name if there is one: it is what people call the server. */
        const struct alt_name *chosen = &issue->names[0];
        for (size_t i = 0; i < issue->name_count; i++)
            if (!issue->names[i].is_address) {
                chosen = &issue->names[i];
                break;
            }
        snprintf(buffer, size, "%.*s", COMMON_NAME_MAX, chosen->text);
    } else {
        const char *slash = strrchr(issue->prefix, '/');
        const char *base = slash != NULL ? slash + 1 : issue->prefix;
        snprintf(buffer, size, "%.*s", COMMON_NAME_MAX, base[0] != '\0' ? base : "mbsec client");
    }
}

/* Builds and signs the certificate for `key`; the issuer is the CA, or the certificate itself
 * for a CA. Returns it or NULL (OpenSSL's queue says why). */
static X509 *build(const struct issue *issue, EVP_PKEY *key, const struct cert_ca *ca) {
    X509 *certificate = X509_new();
    if (certificate == NULL)
        return NULL;
    char common_name[4 * COMMON_NAME_MAX + 1];
    if (issue->name != NULL)
        snprintf(common_name, sizeof common_name, "%s", issue->name);
    else
        default_common_name(issue, common_name, sizeof common_name);
    X509_NAME *subject = X509_get_subject_name(certificate);
    int rsa = EVP_PKEY_get_base_id(key) == EVP_PKEY_RSA;
    int ok = X509_set_version(certificate, X509_VERSION_3) && set_random_serial(certificate) == 0 &&
             X509_NAME_add_entry_by_txt(subject, "CN", MBSTRING_UTF8,
                                        (const unsigned char *)common_name, -1, -1, 0) &&
             X509_set_issuer_name(certificate,
                                  ca != NULL ? X509_get_subject_name(ca->certificate) : subject) &&
             set_time(certificate, issue->not_before, 0) == 0 &&
             set_time(certificate, issue->not_after, 1) == 0 && X509_set_pubkey(certificate, key);
    X509V3_CTX context;
    X509V3_set_ctx(&context, ca != NULL ? ca->certificate : certificate, certificate, NULL, NULL,
                   0);
    if (ok && issue->kind == KIND_CA) {
        ok = add_extension(certificate, &context, NID_basic_constraints,
                           "critical,CA:TRUE,pathlen:0") == 0 &&
             add_extension(certificate, &context, NID_key_usage, "critical,keyCertSign,cRLSign") ==
                 0 &&
             add_extension(certificate, &context, NID_subject_key_identifier, "hash") == 0;
    } else if (ok) {
        const char *usage = rsa && issue->kind == KIND_SERVER
                                ? "critical,digitalSignature,keyEncipherment"
                                : "critical,digitalSignature";
        ok =
            add_extension(certificate, &context, NID_basic_constraints, "critical,CA:FALSE") == 0 &&
            add_extension(certificate, &context, NID_key_usage, usage) == 0 &&
            add_extension(certificate, &context, NID_ext_key_usage,
                          issue->kind == KIND_SERVER ? "serverAuth" : "clientAuth") == 0 &&
            add_extension(certificate, &context, NID_subject_key_identifier, "hash") == 0 &&
            add_extension(certificate, &context, NID_authority_key_identifier, "keyid:always") ==
                0 &&
            (issue->name_count == 0 || add_alt_names(certificate, issue) == 0) &&
            (issue->role == NULL || add_role(certificate, issue->role) == 0);
    }
    ok = ok && X509_sign(certificate, ca != NULL ? ca->key : key, EVP_sha256()) > 0;
    if (!ok) {
        X509_free(certificate);
        return NULL;
    }
    return certificate;
}

/* "EC P-256" or "RSA 3072" */
static const char *key_description(long rsa_bits, char *buffer, size_t size) {
    if (rsa_bits > 0)
        snprintf(buffer, size, "RSA %ld", rsa_bits);
    else
        snprintf(buffer, size, "EC P-256");
    return buffer;
}

/* Says so when the CA has expired or ends before the new certificate: verification of the new
 * one would fail then, which is easier to understand now than in a TLS handshake later. */
static void warn_about_ca_dates(const struct issue *issue, const struct cert_ca *ca) {
    const ASN1_TIME *ca_end = X509_get0_notAfter(ca->certificate);
    struct tm fields;
    if (ASN1_TIME_to_tm(ca_end, &fields) != 1)
        return;
    time_t end = timegm(&fields);
    char text[64];
    cert_format_time(end, text, sizeof text);
    if (end < time(NULL))
        cert_warning(issue->subcommand, "the CA expired on %s; what it signs will not verify",
                     text);
    else if (end < issue->not_after)
        cert_warning(issue->subcommand, "the certificate outlives its CA, which expires on %s",
                     text);
}

/* ---- the subcommands ---- */

static int make_directory(const char *subcommand, const char *directory) {
    /* Parents first, as mkdir -p does (with the usual 0755); the CA's own directory 0700. */
    char parent[4096];
    snprintf(parent, sizeof parent, "%s", directory);
    for (char *slash = strchr(parent + 1, '/'); slash != NULL; slash = strchr(slash + 1, '/')) {
        *slash = '\0';
        if (mkdir(parent, 0755) != 0 && errno != EEXIST) {
            cert_error(subcommand, "cannot create %s: %s", parent, strerror(errno));
            return -1;
        }
        *slash = '/';
    }
    if (mkdir(directory, 0700) == 0 || errno == EEXIST) {
        struct stat status;
        if (stat(directory, &status) == 0 && S_ISDIR(status.st_mode))
            return 0;
        cert_error(subcommand, "%s exists and is not a directory", directory);
        return -1;
    }
    cert_error(subcommand, "cannot create %s: %s", directory, strerror(errno));
    return -1;
}

static int create_ca(struct issue *issue) {
    const char *sub = issue->subcommand;
    char certificate_path[4096], key_path[4096], revoked_path[4096], number_path[4096];
    if (cert_join(sub, certificate_path, sizeof certificate_path, issue->directory, "ca.crt") !=
            0 ||
        cert_join(sub, key_path, sizeof key_path, issue->directory, "ca.key") != 0 ||
        cert_join(sub, revoked_path, sizeof revoked_path, issue->directory, "revoked") != 0 ||
        cert_join(sub, number_path, sizeof number_path, issue->directory, "crlnumber") != 0)
        return EXIT_STATUS_FAILURE;
    if (make_directory(sub, issue->directory) != 0)
        return EXIT_STATUS_FAILURE;
    EVP_PKEY *key = generate_key(issue->rsa_bits);
    if (key == NULL)
        return cert_openssl_failure(sub, "cannot generate a key");
    X509 *certificate = build(issue, key, NULL);
    if (certificate == NULL) {
        EVP_PKEY_free(key);
        return cert_openssl_failure(sub, "cannot make the CA certificate");
    }
    struct cert_buffer key_pem, certificate_pem;
    int status = EXIT_STATUS_FAILURE;
    int key_ok = cert_pem_key(key, &key_pem) == 0;
    int certificate_ok = cert_pem_certificates(&certificate, 1, &certificate_pem) == 0;
    if (!key_ok || !certificate_ok) {
        cert_openssl_failure(sub, "cannot encode the CA");
    } else {
        static const char no_crl_yet[] = "0\n";
        const struct cert_output outputs[] = {
            {key_path, 0600, key_pem.data, key_pem.length},
            {certificate_path, 0644, certificate_pem.data, certificate_pem.length},
            {revoked_path, 0644, "", 0},
            {number_path, 0644, no_crl_yet, sizeof no_crl_yet - 1},
        };
        status = cert_write_outputs(sub, outputs, sizeof outputs / sizeof outputs[0], issue->force);
    }
    if (status == EXIT_STATUS_OK) {
        char name[512], until[64], kind[32];
        cert_format_time(issue->not_after, until, sizeof until);
        printf("%s: CA certificate \"%s\", %s, valid until %s; servers and clients trust it\n"
               "%s: its private key (mode 0600); keep it here, and nowhere else\n",
               certificate_path, cert_name(X509_get_subject_name(certificate), name, sizeof name),
               key_description(issue->rsa_bits, kind, sizeof kind), until, key_path);
    }
    cert_buffer_free(&key_pem);
    cert_buffer_free(&certificate_pem);
    X509_free(certificate);
    EVP_PKEY_free(key);
    return status;
}

static int issue_certificate(struct issue *issue) {
    const char *sub = issue->subcommand;
    char certificate_path[4096], key_path[4096];
    int length = snprintf(certificate_path, sizeof certificate_path, "%s.crt", issue->prefix);
    int key_length = snprintf(key_path, sizeof key_path, "%s.key", issue->prefix);
    if (length < 0 || (size_t)length >= sizeof certificate_path || key_length < 0 ||
        (size_t)key_length >= sizeof key_path) {
        cert_error(sub, "path too long: %s", issue->prefix);
        return EXIT_STATUS_FAILURE;
    }
    struct cert_ca ca;
    if (cert_ca_load(sub, issue->directory, &ca) != EXIT_STATUS_OK)
        return EXIT_STATUS_FAILURE;
    /* Refuse before the (slow, for RSA) key generation rather than after it. */
    if (!issue->force) {
        struct stat status;
        const char *existing = lstat(certificate_path, &status) == 0 ? certificate_path
                               : lstat(key_path, &status) == 0       ? key_path
                                                                     : NULL;
        if (existing != NULL) {
            cert_error(sub, "%s already exists; use --force to replace it", existing);
            cert_ca_free(&ca);
            return EXIT_STATUS_FAILURE;
        }
    }
    warn_about_ca_dates(issue, &ca);
    EVP_PKEY *key = generate_key(issue->rsa_bits);
    if (key == NULL) {
        cert_ca_free(&ca);
        return cert_openssl_failure(sub, "cannot generate a key");
    }
    X509 *certificate = build(issue, key, &ca);
    if (certificate == NULL) {
        EVP_PKEY_free(key);
        cert_ca_free(&ca);
        return cert_openssl_failure(sub, "cannot make the certificate");
    }
    /* The certificate, then the CA: the chain a peer sends in its handshake. */
    X509 *chain[] = {certificate, ca.certificate};
    struct cert_buffer key_pem, chain_pem;
    int status = EXIT_STATUS_FAILURE;
    int key_ok = cert_pem_key(key, &key_pem) == 0;
    int chain_ok = cert_pem_certificates(chain, 2, &chain_pem) == 0;
    if (!key_ok || !chain_ok) {
        cert_openssl_failure(sub, "cannot encode the certificate");
    } else {
        const struct cert_output outputs[] = {
            {key_path, 0600, key_pem.data, key_pem.length},
            {certificate_path, 0644, chain_pem.data, chain_pem.length},
        };
        status = cert_write_outputs(sub, outputs, 2, issue->force);
    }
    if (status == EXIT_STATUS_OK) {
        char name[512], until[64], kind[32], serial[80];
        cert_format_time(issue->not_after, until, sizeof until);
        printf("%s: %s certificate \"%s\" (then the CA's), %s, serial %s, valid until %s\n",
               certificate_path, issue->kind == KIND_SERVER ? "server" : "client",
               cert_name(X509_get_subject_name(certificate), name, sizeof name),
               key_description(issue->rsa_bits, kind, sizeof kind),
               cert_serial_hex(X509_get0_serialNumber(certificate), serial, sizeof serial), until);
        if (issue->kind == KIND_CLIENT)
            printf("%s: role %s%s%s\n", certificate_path, issue->role != NULL ? "\"" : "",
                   issue->role != NULL ? issue->role : "none (no role extension)",
                   issue->role != NULL ? "\"" : "");
        printf("%s: its private key (mode 0600)\n", key_path);
    }
    cert_buffer_free(&key_pem);
    cert_buffer_free(&chain_pem);
    X509_free(certificate);
    EVP_PKEY_free(key);
    cert_ca_free(&ca);
    return status;
}

static int run(enum kind kind, const char *subcommand, long default_days, int argc, char **argv) {
    static struct issue issue; /* large (the names); one per process */
    memset(&issue, 0, sizeof issue);
    issue.kind = kind;
    issue.subcommand = subcommand;
    issue.days = default_days;
    int status = parse(&issue, argc, argv);
    if (status >= 0)
        return status;
    return kind == KIND_CA ? create_ca(&issue) : issue_certificate(&issue);
}

int cert_ca(int argc, char **argv) {
    return run(KIND_CA, "ca", 3650, argc, argv);
}

int cert_server(int argc, char **argv) {
    return run(KIND_SERVER, "server", 365, argc, argv);
}

int cert_client(int argc, char **argv) {
    return run(KIND_CLIENT, "client", 365, argc, argv);
}
