/* SPDX-License-Identifier: MIT */
/*
 * mbsec bench, a load generator for any Modbus/TCP server, in three parts: the command line
 * (bench.c) turns what was typed into struct bench_settings; the engine (bench_run.c) drives
 * non-blocking clients (mb_async) on one event loop and fills struct bench_results; the report
 * (bench_report.c) keeps the latency histograms and prints the results as text or JSON.
 */
#ifndef MBSEC_TOOLS_BENCH_H
#define MBSEC_TOOLS_BENCH_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>
#include <sys/socket.h>

#include "mbsec/pdu.h"
#include "mbsec/tls.h"

/* ---- latency histogram ---- */

/*
 * Latencies in microseconds: one bucket per microsecond below BENCH_LINEAR_US (16.4 ms), then
 * BENCH_SUB_BUCKETS buckets per power of two (a bucket is at most 0.2 % wide) up to 2^36 us
 * (19 hours); longer latencies count in the last bucket. 27648 counters, whatever the run.
 */
#define BENCH_LINEAR_BITS 14
#define BENCH_LINEAR_US (1u << BENCH_LINEAR_BITS)
#define BENCH_SUB_BITS 9
#define BENCH_SUB_BUCKETS (1u << BENCH_SUB_BITS)
#define BENCH_TOP_BITS 36
#define BENCH_BUCKETS (BENCH_LINEAR_US + (BENCH_TOP_BITS - BENCH_LINEAR_BITS) * BENCH_SUB_BUCKETS)

struct bench_histogram {
    uint64_t counts[BENCH_BUCKETS];
    uint64_t count;
    uint64_t sum_ns; /* for the mean */
    uint64_t max_us;
};

/* Counts one latency, in nanoseconds. */
void bench_histogram_record(struct bench_histogram *histogram, uint64_t latency_ns);

/* The latency (us) that `fraction` (0.5, 0.999) of the recorded ones did not exceed: the upper
 * end of the bucket that holds that rank, at most the maximum. 0 when nothing was recorded. */
uint64_t bench_histogram_percentile(const struct bench_histogram *histogram, double fraction);

/* The mean latency in microseconds; 0 when nothing was recorded. */
double bench_histogram_mean_us(const struct bench_histogram *histogram);

/* ---- what to run ---- */

enum bench_mode {
    BENCH_LOAD = 0,  /* connections stay open, each with `depth` requests in flight */
    BENCH_CHURN = 1, /* each connection: connect, one request, its answer, close; again */
};

/* The function codes bench sends: FC 1, 2, 3, 4, 5, 6, 15, 16, 23. */
#define BENCH_MAX_FUNCTIONS 9

/* One function code of the mix, with its request encoded once for the whole run. */
struct bench_function {
    uint8_t function;
    uint32_t weight; /* share of the requests: weight / total_weight */
    uint8_t pdu[MB_PDU_MAX];
    size_t length;
    /* FC 23 reads back the registers it has just written: the bytes the answer must hold. */
    uint8_t expected[2 * MB_MAX_READ_REGISTERS];
    size_t expected_length;
};

struct bench_settings {
    const char *target; /* as typed, for the report */
    struct sockaddr_storage address;
    socklen_t address_length;
    enum bench_mode mode;
    uint32_t connections;
    uint32_t depth;
    uint64_t duration_ms; /* 0 with a request count */
    uint64_t requests;    /* 0: run for duration_ms */
    uint64_t warmup_ms;
    uint8_t unit;
    uint32_t timeout_ms;
    uint32_t connect_timeout_ms;
    struct bench_function functions[BENCH_MAX_FUNCTIONS];
    size_t function_count;
    uint64_t total_weight;
    uint64_t seed;
    uint16_t address_start; /* of every request, for the report */
    uint16_t quantity;
    struct mb_tls_context *tls; /* NULL: plain Modbus/TCP */
    int progress;               /* print a progress line on stderr every second */
};

/* ---- what came of it ---- */

struct bench_results {
    double duration_s;   /* of the measured part */
    uint64_t requests;   /* measured requests that came to an end (answered or failed) */
    uint64_t unfinished; /* measured requests still in flight when the run stopped */
    uint64_t per_function[BENCH_MAX_FUNCTIONS]; /* requests, by settings->functions index */
    /* Errors by kind; `requests` includes all but connect_failures. */
    uint64_t timeouts;
    uint64_t exceptions[256]; /* by exception code */
    uint64_t exception_total;
    uint64_t mismatches;       /* an answer that does not fit its request, or does not decode */
    uint64_t quantities;       /* a normal answer with the wrong count of values */
    uint64_t closed;           /* requests lost when the connection closed */
    uint64_t connect_failures; /* connection attempts refused, timed out or failed in TLS */
    uint64_t unmatched;        /* frames that answered no outstanding request: discarded */
    uint64_t connects;         /* connections established (measured part) */
    uint64_t disconnects;      /* established connections lost (load mode) */
    uint64_t resumed;          /* TLS handshakes that resumed a session */
    struct bench_histogram latency;         /* answered requests, submission to answer */
    struct bench_histogram connect_latency; /* churn: TCP connect and TLS handshake */
    char tls_version[32]; /* what the first TLS connection negotiated; "" without TLS */
    char tls_cipher[64];
    int interrupted;    /* stopped by SIGINT or SIGTERM */
    int cannot_connect; /* no connection was ever established */
    char connect_detail[320];
};

/* Errors of every kind together: the run failed when this is not 0. */
uint64_t bench_error_total(const struct bench_results *results);

/*
 * Runs the benchmark until the duration or the request count is reached, SIGINT or SIGTERM
 * arrives, or no connection can be made at all (results->cannot_connect). Returns 0, or -1
 * after printing why the run could not start (out of memory, no event loop).
 */
int bench_run(const struct bench_settings *settings, struct bench_results *results);

/* The final report, as lines of text or as one JSON object (docs/bench.md). */
void bench_report_text(FILE *out, const struct bench_settings *settings,
                       const struct bench_results *results);
void bench_report_json(FILE *out, const struct bench_settings *settings,
                       const struct bench_results *results);

#endif
