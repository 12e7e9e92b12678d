/* SPDX-License-Identifier: MIT */
/*
 * mbsec cert: the certificates of Modbus/TCP Security. This file dispatches to the
 * subcommands and holds what their command lines share: messages, numbers and times.
 */
#include <ctype.h>
#include <errno.h>
#include <getopt.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <openssl/err.h>

#include "app/cert/cert.h"
#include "app/commands.h"

static const char help[] =
    "usage: mbsec cert SUBCOMMAND [options]\n"
    "\n"
    "Makes the certificates Modbus/TCP Security (TLS on port 802) needs, and shows what a\n"
    "certificate holds. Keys are ECDSA P-256 unless --rsa is given; private keys are written\n"
    "with mode 0600, and no existing file is replaced without --force.\n"
    "\n"
    "Subcommands:\n"
    "  ca       create a certificate authority in a directory\n"
    "  server   issue a server certificate for DNS names and IP addresses\n"
    "  client   issue a client certificate carrying a role\n"
    "  show     print what a certificate (or CRL) holds: names, dates, fingerprint, role\n"
    "  revoke   record a certificate as revoked\n"
    "  crl      write a signed CRL listing every revoked certificate\n"
    "\n"
    "mbsec cert SUBCOMMAND --help describes each; so does mbsec-cert(1).\n"
    "\n"
    "Examples:\n"
    "  mbsec cert ca --out-dir ca --name \"Plant 4 CA\"\n"
    "  mbsec cert server --ca-dir ca --out plc1 --dns plc1.example --ip 192.0.2.10\n"
    "  mbsec cert client --ca-dir ca --out hmi1 --role operator\n"
    "  mbsec cert show hmi1.crt\n"
    "  mbsec cert revoke --ca-dir ca hmi1.crt --reason keyCompromise\n"
    "  mbsec cert crl --ca-dir ca --out ca.crl --force\n"
    "\n"
    "Exit status: 0 done, 1 failed (a file that cannot be read or written, a key that does\n"
    "not match), 2 usage.\n";

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} subcommands[] = {
    {"ca", cert_ca},     {"server", cert_server}, {"client", cert_client},
    {"show", cert_show}, {"revoke", cert_revoke}, {"crl", cert_crl},
};

int cmd_cert(int argc, char **argv) {
    if (argc < 2) {
        fputs(help, stderr);
        return EXIT_STATUS_USAGE;
    }
    const char *name = argv[1];
    if (strcmp(name, "--help") == 0 || strcmp(name, "-h") == 0 || strcmp(name, "help") == 0) {
        fputs(help, stdout);
        return EXIT_STATUS_OK;
    }
    for (size_t i = 0; i < sizeof subcommands / sizeof subcommands[0]; i++)
        if (strcmp(name, subcommands[i].name) == 0) {
            int status = subcommands[i].run(argc - 1, argv + 1);
            ERR_clear_error();
            return status;
        }
    fprintf(stderr, "mbsec cert: unknown subcommand '%s' (ca, server, client, show, revoke, crl)\n",
            name);
    return EXIT_STATUS_USAGE;
}

/* ---- messages ---- */

static void vmessage(const char *subcommand, const char *kind, const char *format,
                     va_list arguments) __attribute__((format(printf, 3, 0)));

static void vmessage(const char *subcommand, const char *kind, const char *format,
                     va_list arguments) {
    fprintf(stderr, "mbsec cert %s: %s", subcommand, kind);
    vfprintf(stderr, format, arguments);
    fputc('\n', stderr);
}

void cert_error(const char *subcommand, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vmessage(subcommand, "", format, arguments);
    va_end(arguments);
}

void cert_warning(const char *subcommand, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    vmessage(subcommand, "warning: ", format, arguments);
    va_end(arguments);
}

int cert_usage(const char *subcommand, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "mbsec cert %s: ", subcommand);
    vfprintf(stderr, format, arguments);
    fprintf(stderr, " (see mbsec cert %s --help)\n", subcommand);
    va_end(arguments);
    return EXIT_STATUS_USAGE;
}

const char *cert_openssl_reason(char *buffer, size_t size) {
    size_t used = 0;
    buffer[0] = '\0';
    const char *data;
    int flags;
    unsigned long error;
    char fallback[256] = "";
    /* The queue runs from the innermost cause outwards; each distinct reason is kept, since the
     * outer ones ("PEM lib") say little alone and the inner ones little about the context. */
    while ((error = ERR_get_error_all(NULL, NULL, NULL, &data, &flags)) != 0) {
        const char *reason = ERR_reason_error_string(error);
        char text[256];
        if (reason == NULL)
            snprintf(text, sizeof text, "error %lX", error);
        else if ((flags & ERR_TXT_STRING) && data != NULL && data[0] != '\0')
            snprintf(text, sizeof text, "%s (%s)", reason, data);
        else
            snprintf(text, sizeof text, "%s", reason);
        /* "ASN1 lib", "PEM lib" and "nested asn1 error" only say that something below failed. */
        int generic = reason != NULL &&
                      (strstr(reason, " lib") != NULL || strcmp(reason, "nested asn1 error") == 0);
        if (generic) {
            if (fallback[0] == '\0')
                snprintf(fallback, sizeof fallback, "%s", text);
            continue;
        }
        if (strstr(buffer, text) != NULL || used >= size - 1)
            continue;
        int written = snprintf(buffer + used, size - used, "%s%s", used > 0 ? "; " : "", text);
        if (written > 0)
            used += (size_t)written < size - used ? (size_t)written : size - used - 1;
    }
    if (used == 0)
        snprintf(buffer, size, "%s", fallback[0] != '\0' ? fallback : "unknown OpenSSL error");
    return buffer;
}

int cert_openssl_failure(const char *subcommand, const char *what) {
    char reason[512];
    cert_error(subcommand, "%s: %s", what, cert_openssl_reason(reason, sizeof reason));
    return EXIT_STATUS_FAILURE;
}

/* ---- the command line ---- */

int cert_bad_option(const char *subcommand, int option, char **argv) {
    const char *text = optind > 0 ? argv[optind - 1] : "?";
    if (option == ':')
        return cert_usage(subcommand, "option '%s' needs a value", text);
    if (optopt != 0 && optopt < 256 && isprint(optopt) && text[0] == '-' && text[1] != '-')
        return cert_usage(subcommand, "unknown option '-%c'", optopt);
    return cert_usage(subcommand, "unknown option '%s'", text);
}

int cert_parse_number(const char *text, long minimum, long maximum, long *value) {
    if (text[0] == '\0' || (!isdigit((unsigned char)text[0]) && text[0] != '-'))
        return -1;
    errno = 0;
    char *end;
    long parsed = strtol(text, &end, 10);
    if (errno != 0 || *end != '\0' || parsed < minimum || parsed > maximum)
        return -1;
    *value = parsed;
    return 0;
}

/* Reads `count` digits at text[0..count). Returns the number or -1. */
static int digits(const char *text, int count) {
    int value = 0;
    for (int i = 0; i < count; i++) {
        if (!isdigit((unsigned char)text[i]))
            return -1;
        value = value * 10 + (text[i] - '0');
    }
    return value;
}

int cert_parse_time(const char *text, time_t *value) {
    size_t length = strlen(text);
    if ((length != 10 && length != 20) || text[4] != '-' || text[7] != '-')
        return -1;
    struct tm fields = {0};
    fields.tm_year = digits(text, 4) - 1900;
    fields.tm_mon = digits(text + 5, 2) - 1;
    fields.tm_mday = digits(text + 8, 2);
    if (length == 20) {
        if ((text[10] != 'T' && text[10] != 't') || text[13] != ':' || text[16] != ':' ||
            (text[19] != 'Z' && text[19] != 'z'))
            return -1;
        fields.tm_hour = digits(text + 11, 2);
        fields.tm_min = digits(text + 14, 2);
        fields.tm_sec = digits(text + 17, 2);
    }
    if (fields.tm_year < 50 || fields.tm_year > 9999 - 1900 || fields.tm_mon < 0 ||
        fields.tm_mday < 1 || fields.tm_hour < 0 || fields.tm_min < 0 || fields.tm_sec < 0)
        return -1;
    struct tm wanted = fields;
    time_t parsed = timegm(&fields);
    /* timegm() normalises 2026-02-30 into March; a date that moved did not exist. */
    if (fields.tm_year != wanted.tm_year || fields.tm_mon != wanted.tm_mon ||
        fields.tm_mday != wanted.tm_mday || fields.tm_hour != wanted.tm_hour ||
        fields.tm_min != wanted.tm_min || fields.tm_sec != wanted.tm_sec)
        return -1;
    *value = parsed;
    return 0;
}

void cert_format_time(time_t value, char *buffer, size_t size) {
    struct tm fields;
    if (gmtime_r(&value, &fields) == NULL ||
        strftime(buffer, size, "%Y-%m-%d %H:%M:%S UTC", &fields) == 0)
        snprintf(buffer, size, "(time out of range)");
}
