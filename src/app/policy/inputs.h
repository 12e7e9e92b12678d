/* SPDX-License-Identifier: MIT */
/*
 * The inputs of `mbsec policy learn` and `policy test`: packet captures (pcap, pcapng) and
 * gateway audit files (JSON lines), told apart by their first bytes, read one after the other
 * into one stream of requests.
 */
#ifndef MBSEC_APP_POLICY_INPUTS_H
#define MBSEC_APP_POLICY_INPUTS_H

#include <stdint.h>
#include <stdio.h>

#include "app/policy/capture.h"
#include "app/policy/observed.h"
#include "app/policy/records.h"

#define INPUTS_MAX_PORTS 16

struct inputs_options {
    uint16_t ports[INPUTS_MAX_PORTS]; /* Modbus/TCP ports in captures (--port) */
    size_t port_count;
    uint16_t tls_ports[INPUTS_MAX_PORTS]; /* Modbus/TCP Security ports (--tls-port) */
    size_t tls_port_count;
    const char *role; /* --role: requests of captures count as this role over TLS */
};

/* What one input gave. */
struct input_summary {
    const char *path;
    int capture;       /* 1: a capture, 0: an audit file */
    uint64_t requests; /* handed on */
    int failed;        /* 1: not read wholly (error says why) */
    char error[300];
    struct capture_stats capture_stats;
    struct records_stats records_stats;
};

/*
 * Reads every path in turn, each as what its first bytes say it is, and calls visit() for
 * every request. summaries[i] gets path i's result. Returns 0 when every input was read wholly,
 * 1 when some could not be (their summaries say why; the others were read), or the visitor's
 * nonzero value.
 */
int inputs_read(char *const *paths, size_t count, const struct inputs_options *options,
                observed_visit visit, void *data, struct input_summary *summaries);

/* Parses "502" or "502,1502" into ports[]. Returns 0, or -1 with a message in `error`. */
int inputs_parse_ports(const char *text, uint16_t *ports, size_t *count, char *error,
                       size_t capacity);

/* Writes what each input gave, and what in it could not be read (TLS streams, lost segments,
 * skipped records), one line each, `prefix` first ("# " for a policy file). */
void inputs_describe(FILE *out, const char *prefix, const struct input_summary *summaries,
                     size_t count);

#endif
