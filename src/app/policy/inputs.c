/* SPDX-License-Identifier: MIT */
#include "app/policy/inputs.h"

#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

/* A visitor between the reader and the caller's: gives capture requests the --role identity. */
struct relay {
    observed_visit visit;
    void *data;
    const struct inputs_options *options;
    int capture;
    uint64_t requests;
};

static int relay_visit(void *data, const struct observed *request) {
    struct relay *relay = data;
    relay->requests++;
    /* --role stands for the role a capture cannot show; audit records name their own. */
    if (relay->options->role == NULL || !relay->capture)
        return relay->visit(relay->data, request);
    struct observed as_role = *request;
    as_role.role = relay->options->role;
    as_role.tls = 1;
    return relay->visit(relay->data, &as_role);
}

/* 1 for a pcap or pcapng file (by its magic number), 0 for anything else, -1 when it cannot be
 * opened (errno set), -2 when it is not a regular file. Standard input ("-") is taken as audit
 * records: it cannot be looked into and put back, and neither can a pipe given by name. */
static int is_capture(const char *path) {
    if (strcmp(path, "-") == 0)
        return 0;
    FILE *file = fopen(path, "rb");
    if (file == NULL)
        return -1;
    struct stat status;
    if (fstat(fileno(file), &status) == 0 && !S_ISREG(status.st_mode)) {
        fclose(file);
        return -2;
    }
    unsigned char magic[4] = {0};
    size_t got = fread(magic, 1, sizeof magic, file);
    fclose(file);
    if (got < 4)
        return 0;
    static const unsigned char magics[][4] = {
        {0xD4, 0xC3, 0xB2, 0xA1}, {0xA1, 0xB2, 0xC3, 0xD4}, /* pcap, microseconds */
        {0x4D, 0x3C, 0xB2, 0xA1}, {0xA1, 0xB2, 0x3C, 0x4D}, /* pcap, nanoseconds */
        {0x0A, 0x0D, 0x0D, 0x0A},                           /* pcapng section header */
    };
    for (size_t i = 0; i < sizeof magics / sizeof magics[0]; i++)
        if (memcmp(magic, magics[i], 4) == 0)
            return 1;
    return 0;
}

int inputs_read(char *const *paths, size_t count, const struct inputs_options *options,
                observed_visit visit, void *data, struct input_summary *summaries) {
    int failed = 0;
    for (size_t i = 0; i < count; i++) {
        struct input_summary *summary = &summaries[i];
        memset(summary, 0, sizeof *summary);
        summary->path = paths[i];
        struct relay relay = {.visit = visit, .data = data, .options = options};
        int kind = is_capture(paths[i]);
        int status;
        if (kind == -2) {
            snprintf(summary->error, sizeof summary->error,
                     "%s: not a regular file: give captures and audit files as files, or audit "
                     "records on standard input (-)",
                     paths[i]);
            status = -1;
        } else if (kind < 0) {
            snprintf(summary->error, sizeof summary->error, "%s: %s", paths[i], strerror(errno));
            status = -1;
        } else if (kind == 1) {
            summary->capture = 1;
            relay.capture = 1;
            struct capture_options capture = {
                .ports = options->ports,
                .port_count = options->port_count,
                .tls_ports = options->tls_ports,
                .tls_port_count = options->tls_port_count,
            };
            status = capture_read(paths[i], &capture, relay_visit, &relay, &summary->capture_stats,
                                  summary->error, sizeof summary->error);
        } else {
            status = records_read(paths[i], relay_visit, &relay, &summary->records_stats,
                                  summary->error, sizeof summary->error);
        }
        summary->requests = relay.requests;
        if (status == -1) {
            summary->failed = 1;
            failed = 1;
        } else if (status != 0) {
            return status;
        }
    }
    return failed;
}

int inputs_parse_ports(const char *text, uint16_t *ports, size_t *count, char *error,
                       size_t capacity) {
    *count = 0;
    const char *at = text;
    while (*at != '\0') {
        char *end;
        errno = 0;
        unsigned long port = strtoul(at, &end, 10);
        if (end == at || errno != 0 || port == 0 || port > 65535 || (*end != ',' && *end != '\0') ||
            *at == '-' || *at == '+' || *at == ' ') {
            snprintf(error, capacity,
                     "'%s': expected a port 1..65535, or ports separated by commas", text);
            return -1;
        }
        if (*count == INPUTS_MAX_PORTS) {
            snprintf(error, capacity, "'%s': at most %d ports", text, INPUTS_MAX_PORTS);
            return -1;
        }
        ports[(*count)++] = (uint16_t)port;
        at = *end == ',' ? end + 1 : end;
        if (*end == ',' && *at == '\0') {
            snprintf(error, capacity, "'%s': a comma with no port after it", text);
            return -1;
        }
    }
    if (*count == 0) {
        snprintf(error, capacity, "no port given");
        return -1;
    }
    return 0;
}

static void describe_capture(FILE *out, const char *prefix, const struct input_summary *summary) {
    const struct capture_stats *stats = &summary->capture_stats;
    fprintf(out, "%s%s: capture, %llu packets, %llu Modbus/TCP requests in %llu connection%s\n",
            prefix, summary->path, (unsigned long long)stats->packets,
            (unsigned long long)stats->requests, (unsigned long long)stats->streams,
            stats->streams == 1 ? "" : "s");
    if (stats->tls_streams > 0)
        fprintf(out,
                "%s  %llu connection%s of Modbus/TCP Security (TLS): encrypted, not read; learn "
                "those clients from the gateway's audit records\n",
                prefix, (unsigned long long)stats->tls_streams, stats->tls_streams == 1 ? "" : "s");
    if (stats->gaps > 0)
        fprintf(out,
                "%s  %llu gap%s in TCP streams (segments the capture lost): the requests in them "
                "are missing\n",
                prefix, (unsigned long long)stats->gaps, stats->gaps == 1 ? "" : "s");
    if (stats->not_modbus > 0)
        fprintf(out, "%s  %llu bytes on a Modbus port did not frame as Modbus/TCP (skipped)\n",
                prefix, (unsigned long long)stats->not_modbus);
    if (stats->truncated_packets > 0)
        fprintf(out,
                "%s  %llu packet%s captured shorter than sent (snap length): capture with -s 0\n",
                prefix, (unsigned long long)stats->truncated_packets,
                stats->truncated_packets == 1 ? "" : "s");
    if (stats->requests == 0 && stats->tls_streams == 0)
        fprintf(out,
                "%s  no Modbus/TCP request on ports given (--port): another protocol, or "
                "another port?\n",
                prefix);
}

static void describe_records(FILE *out, const char *prefix, const struct input_summary *summary) {
    const struct records_stats *stats = &summary->records_stats;
    fprintf(out, "%s%s: audit records, %llu lines, %llu requests\n", prefix, summary->path,
            (unsigned long long)stats->lines, (unsigned long long)stats->requests);
    if (stats->malformed > 0)
        fprintf(out, "%s  %llu line%s not an audit record (the first: line %llu), skipped\n",
                prefix, (unsigned long long)stats->malformed, stats->malformed == 1 ? "" : "s",
                (unsigned long long)stats->first_bad_line);
    if (stats->too_long > 0)
        fprintf(out, "%s  %llu line%s too long, skipped\n", prefix,
                (unsigned long long)stats->too_long, stats->too_long == 1 ? "" : "s");
    if (stats->not_rebuildable > 0)
        fprintf(out, "%s  %llu request record%s without the whole request, skipped\n", prefix,
                (unsigned long long)stats->not_rebuildable, stats->not_rebuildable == 1 ? "" : "s");
    if (stats->values_partial > 0)
        fprintf(out,
                "%s  %llu write%s with values not all recorded (value ranges may be too narrow)\n",
                prefix, (unsigned long long)stats->values_partial,
                stats->values_partial == 1 ? "" : "s");
    if (stats->requests == 0)
        fprintf(out,
                "%s  no read or write records: reads are recorded only with audit.reads: true\n",
                prefix);
}

void inputs_describe(FILE *out, const char *prefix, const struct input_summary *summaries,
                     size_t count) {
    for (size_t i = 0; i < count; i++) {
        const struct input_summary *summary = &summaries[i];
        /* An input that gave nothing before it failed: the error alone says it all. */
        if (summary->failed && summary->requests == 0) {
            fprintf(out, "%serror: %s\n", prefix, summary->error);
            continue;
        }
        if (summary->capture)
            describe_capture(out, prefix, summary);
        else
            describe_records(out, prefix, summary);
        if (summary->failed)
            fprintf(out, "%s  error: %s\n", prefix, summary->error);
    }
}
