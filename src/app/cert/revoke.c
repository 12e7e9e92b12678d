/* SPDX-License-Identifier: MIT */
/*
 * mbsec cert revoke and crl. Revoking records a serial in DIR/revoked; `crl` signs a CRL of
 * everything recorded. They are separate steps on purpose: the CA directory is kept away from
 * the servers, which read the CRL from wherever it is published, and `crl` is also what renews
 * a CRL before its next update passes, with or without new revocations.
 *
 * Both hold an exclusive lock (flock) on DIR/revoked while they read and write the CA's state,
 * so that two runs at once neither lose a revocation nor issue two CRLs with one number.
 */
#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <getopt.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/file.h>
#include <sys/stat.h>
#include <time.h>
#include <unistd.h>

#include <openssl/bn.h>
#include <openssl/err.h>
#include <openssl/x509v3.h>

#include "app/cert/cert.h"
#include "app/commands.h"

#define MAX_REVOKED_BYTES (16 * 1024 * 1024)
#define DAY_SECONDS (24L * 3600)

static const char revoke_help[] =
    "usage: mbsec cert revoke --ca-dir DIR (CERTFILE | --serial HEX) [--reason REASON]\n"
    "\n"
    "Records a certificate issued by the CA in DIR as revoked, in DIR/revoked. Nothing is\n"
    "published yet: run mbsec cert crl to write the CRL that servers and clients check.\n"
    "CERTFILE must be a certificate this CA signed (its first certificate is the one\n"
    "revoked); --serial names one by its serial number instead (as mbsec cert show prints\n"
    "it), for when the file is gone. Revoking a certificate twice changes nothing.\n"
    "\n"
    "Options:\n"
    "  --ca-dir DIR       the CA made by mbsec cert ca (required)\n"
    "  --serial HEX       the serial number to revoke, instead of CERTFILE\n"
    "  --reason REASON    keyCompromise, cACompromise, affiliationChanged, superseded,\n"
    "                     cessationOfOperation, privilegeWithdrawn or aACompromise; without\n"
    "                     it (or with unspecified) the CRL entry carries no reason code\n"
    "  -h, --help         this text\n"
    "\n"
    "Example:\n"
    "  mbsec cert revoke --ca-dir ca hmi1.crt --reason keyCompromise\n"
    "  mbsec cert crl --ca-dir ca --out /srv/mbsec/ca.crl --force\n";

static const char crl_help[] =
    "usage: mbsec cert crl --ca-dir DIR --out FILE [--days N] [--force]\n"
    "\n"
    "Writes a CRL (version 2, PEM) signed by the CA in DIR, listing every certificate\n"
    "recorded by mbsec cert revoke with its revocation time and reason. It carries a CRL\n"
    "number one above the last one written (kept in DIR/crlnumber), the authority key\n"
    "identifier, a last update of now and a next update N days later: verifiers reject a CRL\n"
    "whose next update has passed, so write a new one before then, revocations or not.\n"
    "\n"
    "Options:\n"
    "  --ca-dir DIR   the CA made by mbsec cert ca (required)\n"
    "  --out FILE     where to write the CRL (required)\n"
    "  --days N       next update N days from now (default 30)\n"
    "  --force        replace FILE if it exists (atomically: readers see the old CRL or the\n"
    "                 new one)\n"
    "  -h, --help     this text\n"
    "\n"
    "Example:\n"
    "  mbsec cert crl --ca-dir ca --out /srv/mbsec/ca.crl --force\n";

/* The reasons of RFC 5280 (CRLReason) that can be given; certificateHold and removeFromCRL
 * are left out, since a revocation here cannot be undone. */
static const struct {
    const char *name;
    int code;
} reasons[] = {
    {"unspecified", 0},        {"keyCompromise", 1}, {"cACompromise", 2},
    {"affiliationChanged", 3}, {"superseded", 4},    {"cessationOfOperation", 5},
    {"privilegeWithdrawn", 9}, {"aACompromise", 10},
};

/* The code of a reason name (any case), 0 for "unspecified" or "none", -1 if unknown. */
static int reason_code(const char *name) {
    if (strcasecmp(name, "none") == 0)
        return 0;
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (strcasecmp(name, reasons[i].name) == 0)
            return reasons[i].code;
    return -1;
}

static const char *reason_text(int code) {
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++)
        if (reasons[i].code == code && code != 0)
            return reasons[i].name;
    return "none";
}

/* ---- DIR/revoked ---- */

/* One line of DIR/revoked: "SERIAL TIME REASON  # subject", e.g.
 * "4A1F...  2026-05-01T12:00:00Z  keyCompromise  # CN=hmi1". */
struct revocation {
    BIGNUM *serial;
    time_t when;
    int reason; /* 0: none */
};

struct revoked_list {
    int fd; /* DIR/revoked, locked */
    char path[4096];
    struct revocation *entries;
    size_t count;
};

static void revoked_list_free(struct revoked_list *list) {
    for (size_t i = 0; i < list->count; i++)
        BN_free(list->entries[i].serial);
    free(list->entries);
    list->entries = NULL;
    list->count = 0;
    if (list->fd >= 0)
        close(list->fd); /* releases the lock */
    list->fd = -1;
}

/* Parses a serial in hex, with or without colons. Returns a new BIGNUM or NULL. */
static BIGNUM *parse_serial(const char *text) {
    char digits[129];
    size_t count = 0;
    if (strncasecmp(text, "0x", 2) == 0)
        text += 2;
    for (; *text != '\0'; text++) {
        if (*text == ':')
            continue;
        if (!isxdigit((unsigned char)*text) || count == sizeof digits - 1)
            return NULL;
        digits[count++] = *text;
    }
    digits[count] = '\0';
    BIGNUM *serial = NULL;
    if (count == 0 || BN_hex2bn(&serial, digits) != (int)count) {
        BN_free(serial);
        return NULL;
    }
    return serial;
}

static int parse_line(char *line, struct revocation *entry) {
    char *comment = strchr(line, '#');
    if (comment != NULL)
        *comment = '\0';
    char *rest;
    char *serial = strtok_r(line, " \t\r", &rest);
    char *when = serial != NULL ? strtok_r(NULL, " \t\r", &rest) : NULL;
    char *reason = when != NULL ? strtok_r(NULL, " \t\r", &rest) : NULL;
    if (reason == NULL || strtok_r(NULL, " \t\r", &rest) != NULL)
        return -1;
    entry->reason = reason_code(reason);
    if (entry->reason < 0 || cert_parse_time(when, &entry->when) != 0)
        return -1;
    entry->serial = parse_serial(serial);
    return entry->serial != NULL ? 0 : -1;
}

/* Opens (creating if needed), locks and reads DIR/revoked. Returns EXIT_STATUS_OK or
 * EXIT_STATUS_FAILURE after printing why. */
static int revoked_list_load(const char *subcommand, const char *directory,
                             struct revoked_list *list) {
    memset(list, 0, sizeof *list);
    list->fd = -1;
    if (cert_join(subcommand, list->path, sizeof list->path, directory, "revoked") != 0)
        return EXIT_STATUS_FAILURE;
    list->fd = open(list->path, O_RDWR | O_CREAT | O_APPEND | O_CLOEXEC | O_NOFOLLOW, 0644);
    if (list->fd < 0) {
        cert_error(subcommand, "cannot open %s: %s", list->path, strerror(errno));
        return EXIT_STATUS_FAILURE;
    }
    struct stat status;
    if (flock(list->fd, LOCK_EX) != 0 || fstat(list->fd, &status) != 0) {
        cert_error(subcommand, "cannot lock %s: %s", list->path, strerror(errno));
        revoked_list_free(list);
        return EXIT_STATUS_FAILURE;
    }
    if (status.st_size > MAX_REVOKED_BYTES) {
        cert_error(subcommand, "%s is larger than %d bytes", list->path, MAX_REVOKED_BYTES);
        revoked_list_free(list);
        return EXIT_STATUS_FAILURE;
    }
    size_t size = (size_t)status.st_size;
    char *text = malloc(size + 1);
    size_t got = 0;
    while (text != NULL && got < size) {
        ssize_t count = pread(list->fd, text + got, size - got, (off_t)got);
        if (count <= 0) {
            if (count < 0 && errno == EINTR)
                continue;
            break;
        }
        got += (size_t)count;
    }
    if (text == NULL || got != size) {
        cert_error(subcommand, "cannot read %s: %s", list->path,
                   text == NULL ? "out of memory" : "short read");
        free(text);
        revoked_list_free(list);
        return EXIT_STATUS_FAILURE;
    }
    text[size] = '\0';
    int status_code = EXIT_STATUS_OK;
    size_t line_number = 0;
    for (char *line = text, *next; line != NULL && *line != '\0'; line = next) {
        next = strchr(line, '\n');
        if (next != NULL)
            *next++ = '\0';
        line_number++;
        size_t blank = strspn(line, " \t\r");
        if (line[blank] == '\0' || line[blank] == '#')
            continue;
        struct revocation entry;
        if (parse_line(line, &entry) != 0) {
            cert_error(subcommand, "%s line %zu: not \"SERIAL YYYY-MM-DDTHH:MM:SSZ REASON\"",
                       list->path, line_number);
            status_code = EXIT_STATUS_FAILURE;
            break;
        }
        struct revocation *grown = realloc(list->entries, (list->count + 1) * sizeof *grown);
        if (grown == NULL) {
            BN_free(entry.serial);
            cert_error(subcommand, "out of memory");
            status_code = EXIT_STATUS_FAILURE;
            break;
        }
        list->entries = grown;
        list->entries[list->count++] = entry;
    }
    free(text);
    if (status_code != EXIT_STATUS_OK)
        revoked_list_free(list);
    return status_code;
}

static const struct revocation *revoked_list_find(const struct revoked_list *list,
                                                  const BIGNUM *serial) {
    for (size_t i = 0; i < list->count; i++)
        if (BN_cmp(list->entries[i].serial, serial) == 0)
            return &list->entries[i];
    return NULL;
}

/* ---- revoke ---- */

struct revoke_options {
    const char *directory;
    const char *certificate_path;
    const char *serial_text;
    int reason;
};

static int parse_revoke(struct revoke_options *options, int argc, char **argv) {
    static const struct option table[] = {
        {"ca-dir", required_argument, NULL, 'd'},
        {"serial", required_argument, NULL, 's'},
        {"reason", required_argument, NULL, 'r'},
        {"help", no_argument, NULL, 'h'},
        {NULL, 0, NULL, 0},
    };
    optind = 1;
    opterr = 0;
    for (;;) {
        int option = getopt_long(argc, argv, ":h", table, NULL);
        if (option == -1)
            break;
        switch (option) {
        case 'd':
            options->directory = optarg;
            break;
        case 's':
            options->serial_text = optarg;
            break;
        case 'r':
            options->reason = reason_code(optarg);
            if (options->reason < 0 || strcasecmp(optarg, "none") == 0)
                return cert_usage("revoke",
                                  "--reason: '%s' is not one of keyCompromise, cACompromise, "
                                  "affiliationChanged, superseded, cessationOfOperation, "
                                  "privilegeWithdrawn, aACompromise, unspecified",
                                  optarg);
            break;
        case 'h':
            fputs(revoke_help, stdout);
            return EXIT_STATUS_OK;
        default:
            return cert_bad_option("revoke", option, argv);
        }
    }
    if (options->directory == NULL)
        return cert_usage("revoke", "missing --ca-dir DIR");
    if (optind < argc)
        options->certificate_path = argv[optind++];
    if (optind < argc)
        return cert_usage("revoke", "unexpected argument '%s': one certificate at a time",
                          argv[optind]);
    if ((options->certificate_path == NULL) == (options->serial_text == NULL))
        return cert_usage("revoke", "give either CERTFILE or --serial HEX");
    return -1;
}

/* The serial of CERTFILE, after checking that this CA signed it. */
static BIGNUM *serial_of_certificate(const char *path, const struct cert_ca *ca, char *subject,
                                     size_t subject_size) {
    X509 *certificate = cert_read_certificate("revoke", path);
    if (certificate == NULL)
        return NULL;
    cert_name(X509_get_subject_name(certificate), subject, subject_size);
    BIGNUM *serial = NULL;
    if (X509_cmp(certificate, ca->certificate) == 0) {
        cert_error("revoke",
                   "%s is the CA certificate itself; to retire a CA, stop "
                   "trusting it",
                   path);
    } else if (X509_NAME_cmp(X509_get_issuer_name(certificate),
                             X509_get_subject_name(ca->certificate)) != 0 ||
               X509_verify(certificate, X509_get0_pubkey(ca->certificate)) != 1) {
        char issuer[512];
        cert_error("revoke", "%s was not issued by the CA in %s (its issuer is \"%s\")", path,
                   ca->directory,
                   cert_name(X509_get_issuer_name(certificate), issuer, sizeof issuer));
    } else {
        serial = ASN1_INTEGER_to_BN(X509_get0_serialNumber(certificate), NULL);
        if (serial == NULL)
            cert_openssl_failure("revoke", "cannot read the serial number");
    }
    ERR_clear_error();
    X509_free(certificate);
    return serial;
}

static int revoke_certificate(const struct revoke_options *options) {
    struct cert_ca ca;
    if (cert_ca_load("revoke", options->directory, &ca) != EXIT_STATUS_OK)
        return EXIT_STATUS_FAILURE;
    char subject[512] = "";
    BIGNUM *serial =
        options->certificate_path != NULL
            ? serial_of_certificate(options->certificate_path, &ca, subject, sizeof subject)
            : parse_serial(options->serial_text);
    cert_ca_free(&ca);
    if (serial == NULL) {
        if (options->certificate_path != NULL)
            return EXIT_STATUS_FAILURE;
        return cert_usage("revoke", "--serial: '%s' is not a serial number in hex",
                          options->serial_text);
    }
    char *hex = BN_bn2hex(serial);
    struct revoked_list list;
    int status =
        hex != NULL ? revoked_list_load("revoke", options->directory, &list) : EXIT_STATUS_FAILURE;
    if (status != EXIT_STATUS_OK) {
        OPENSSL_free(hex);
        BN_free(serial);
        return EXIT_STATUS_FAILURE;
    }
    const struct revocation *earlier = revoked_list_find(&list, serial);
    time_t now = time(NULL);
    if (earlier != NULL) {
        char when[64];
        cert_format_time(earlier->when, when, sizeof when);
        printf("serial %s was already revoked on %s; nothing changed\n", hex, when);
    } else {
        char line[1024], stamp[32];
        struct tm fields;
        gmtime_r(&now, &fields);
        strftime(stamp, sizeof stamp, "%Y-%m-%dT%H:%M:%SZ", &fields);
        int length =
            snprintf(line, sizeof line, "%s %s %s%s%s\n", hex, stamp, reason_text(options->reason),
                     subject[0] != '\0' ? "  # " : "", subject);
        if (length < 0 || (size_t)length >= sizeof line) {
            /* A very long subject only shortens the comment. */
            line[sizeof line - 2] = '\n';
            length = (int)sizeof line - 1;
        }
        ssize_t written;
        do
            written = write(list.fd, line, (size_t)length);
        while (written < 0 && errno == EINTR);
        if (written != length || fsync(list.fd) != 0) {
            cert_error("revoke", "cannot write %s: %s", list.path,
                       written < 0 || written == length ? strerror(errno) : "short write");
            status = EXIT_STATUS_FAILURE;
        } else {
            printf("revoked serial %s%s%s%s, %s%s; publish it with: mbsec cert crl "
                   "--ca-dir %s --out FILE\n",
                   hex, subject[0] != '\0' ? " (" : "", subject, subject[0] != '\0' ? ")" : "",
                   options->reason != 0 ? "reason " : "no reason code",
                   options->reason != 0 ? reason_text(options->reason) : "", options->directory);
        }
    }
    revoked_list_free(&list);
    OPENSSL_free(hex);
    BN_free(serial);
    return status;
}

int cert_revoke(int argc, char **argv) {
    struct revoke_options options = {0};
    int status = parse_revoke(&options, argc, argv);
    return status >= 0 ? status : revoke_certificate(&options);
}

/* ---- crl ---- */

/* DIR/crlnumber: the last number written, 0 before the first CRL; missing counts as 0. */
static int read_crl_number(const char *path, unsigned long long *number) {
    FILE *file = fopen(path, "r");
    if (file == NULL) {
        if (errno != ENOENT) {
            cert_error("crl", "cannot read %s: %s", path, strerror(errno));
            return -1;
        }
        *number = 0;
        return 0;
    }
    char text[32] = "";
    char *got = fgets(text, sizeof text, file);
    fclose(file);
    char *end = NULL;
    errno = 0;
    *number = got != NULL && isdigit((unsigned char)text[0]) ? strtoull(text, &end, 10) : 0;
    if (end == NULL || end == text || errno != 0 || (*end != '\n' && *end != '\0') ||
        *number >= (1ULL << 62)) {
        cert_error("crl", "%s holds no CRL number", path);
        return -1;
    }
    return 0;
}

static int set_time(ASN1_TIME **slot, time_t value) {
    *slot = ASN1_TIME_set(NULL, value);
    return *slot != NULL;
}

/* Builds and signs the CRL. Returns it or NULL (OpenSSL's queue says why). */
static X509_CRL *build_crl(const struct cert_ca *ca, const struct revoked_list *list,
                           unsigned long long number, time_t now, long days) {
    X509_CRL *crl = X509_CRL_new();
    ASN1_TIME *last = NULL, *next = NULL;
    ASN1_INTEGER *crl_number = ASN1_INTEGER_new();
    int ok = crl != NULL && crl_number != NULL && X509_CRL_set_version(crl, 1) /* v2 */ &&
             X509_CRL_set_issuer_name(crl, X509_get_subject_name(ca->certificate)) &&
             set_time(&last, now) && X509_CRL_set1_lastUpdate(crl, last) &&
             set_time(&next, now + days * DAY_SECONDS) && X509_CRL_set1_nextUpdate(crl, next);
    for (size_t i = 0; ok && i < list->count; i++) {
        const struct revocation *entry = &list->entries[i];
        X509_REVOKED *revoked = X509_REVOKED_new();
        ASN1_INTEGER *serial = BN_to_ASN1_INTEGER(entry->serial, NULL);
        ASN1_TIME *when = ASN1_TIME_set(NULL, entry->when);
        ASN1_ENUMERATED *reason = entry->reason != 0 ? ASN1_ENUMERATED_new() : NULL;
        ok = revoked != NULL && serial != NULL && when != NULL &&
             X509_REVOKED_set_serialNumber(revoked, serial) &&
             X509_REVOKED_set_revocationDate(revoked, when) &&
             (entry->reason == 0 ||
              (reason != NULL && ASN1_ENUMERATED_set(reason, entry->reason) &&
               X509_REVOKED_add1_ext_i2d(revoked, NID_crl_reason, reason, 0, 0) == 1));
        if (ok && X509_CRL_add0_revoked(crl, revoked))
            revoked = NULL;
        else
            ok = 0;
        X509_REVOKED_free(revoked);
        ASN1_ENUMERATED_free(reason);
        ASN1_TIME_free(when);
        ASN1_INTEGER_free(serial);
    }
    X509V3_CTX context;
    X509V3_set_ctx(&context, ca->certificate, NULL, NULL, crl, 0);
    X509_EXTENSION *authority_key =
        ok ? X509V3_EXT_nconf_nid(NULL, &context, NID_authority_key_identifier, "keyid:always")
           : NULL;
    ok = ok && X509_CRL_sort(crl) && ASN1_INTEGER_set_uint64(crl_number, number) &&
         X509_CRL_add1_ext_i2d(crl, NID_crl_number, crl_number, 0, 0) == 1 &&
         authority_key != NULL && X509_CRL_add_ext(crl, authority_key, -1) &&
         X509_CRL_sign(crl, ca->key, EVP_sha256()) > 0;
    X509_EXTENSION_free(authority_key);
    ASN1_INTEGER_free(crl_number);
    ASN1_TIME_free(last);
    ASN1_TIME_free(next);
    if (!ok) {
        X509_CRL_free(crl);
        return NULL;
    }
    return crl;
}

int cert_crl(int argc, char **argv) {
    static const struct option table[] = {
        {"ca-dir", required_argument, NULL, 'd'}, {"out", required_argument, NULL, 'o'},
        {"days", required_argument, NULL, 'n'},   {"force", no_argument, NULL, 'f'},
        {"help", no_argument, NULL, 'h'},         {NULL, 0, NULL, 0},
    };
    const char *directory = NULL, *out = NULL;
    long days = 30;
    int force = 0;
    optind = 1;
    opterr = 0;
    for (;;) {
        int option = getopt_long(argc, argv, ":h", table, NULL);
        if (option == -1)
            break;
        switch (option) {
        case 'd':
            directory = optarg;
            break;
        case 'o':
            out = optarg;
            break;
        case 'n':
            if (cert_parse_number(optarg, 1, 3650, &days) != 0)
                return cert_usage("crl", "--days: a number of days from 1 to 3650, not '%s'",
                                  optarg);
            break;
        case 'f':
            force = 1;
            break;
        case 'h':
            fputs(crl_help, stdout);
            return EXIT_STATUS_OK;
        default:
            return cert_bad_option("crl", option, argv);
        }
    }
    if (optind < argc)
        return cert_usage("crl", "unexpected argument '%s'", argv[optind]);
    if (directory == NULL)
        return cert_usage("crl", "missing --ca-dir DIR");
    if (out == NULL)
        return cert_usage("crl", "missing --out FILE");

    char number_path[4096];
    struct cert_ca ca;
    if (cert_join("crl", number_path, sizeof number_path, directory, "crlnumber") != 0 ||
        cert_ca_load("crl", directory, &ca) != EXIT_STATUS_OK)
        return EXIT_STATUS_FAILURE;
    struct revoked_list list;
    if (revoked_list_load("crl", directory, &list) != EXIT_STATUS_OK) {
        cert_ca_free(&ca);
        return EXIT_STATUS_FAILURE;
    }
    unsigned long long number;
    int status = EXIT_STATUS_FAILURE;
    X509_CRL *crl = NULL;
    struct cert_buffer pem = {0};
    time_t now = time(NULL);
    if (read_crl_number(number_path, &number) == 0) {
        number++;
        crl = build_crl(&ca, &list, number, now, days);
        if (crl == NULL || cert_pem_crl(crl, &pem) != 0) {
            cert_openssl_failure("crl", "cannot make the CRL");
        } else {
            const struct cert_output output = {out, 0644, pem.data, pem.length};
            status = cert_write_outputs("crl", &output, 1, force);
        }
    }
    if (status == EXIT_STATUS_OK) {
        /* The number is recorded once the CRL is out: a failed write reuses it. */
        char text[32];
        int length = snprintf(text, sizeof text, "%llu\n", number);
        const struct cert_output record = {number_path, 0644, text, (size_t)length};
        status = cert_write_outputs("crl", &record, 1, 1);
    }
    if (status == EXIT_STATUS_OK) {
        char until[64];
        cert_format_time(now + days * DAY_SECONDS, until, sizeof until);
        printf("%s: CRL number %llu, %zu revoked certificate%s, next update %s\n", out, number,
               list.count, list.count == 1 ? "" : "s", until);
    }
    cert_buffer_free(&pem);
    X509_CRL_free(crl);
    revoked_list_free(&list);
    cert_ca_free(&ca);
    return status;
}
