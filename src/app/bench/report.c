/* SPDX-License-Identifier: MIT */
/*
 * What mbsec bench measured: the latency histograms, and the final report as text or as one
 * JSON object (its fields are documented in docs/bench.md; bench/run reads them).
 */
#include <string.h>

#include "app/bench/bench.h"
#include "app/client/client.h"

/* ---- histogram ---- */

static size_t bucket_of(uint64_t us) {
    if (us < BENCH_LINEAR_US)
        return (size_t)us;
    unsigned exponent = 63u - (unsigned)__builtin_clzll(us);
    if (exponent >= BENCH_TOP_BITS)
        return BENCH_BUCKETS - 1;
    unsigned shift = exponent - BENCH_SUB_BITS;
    size_t sub = (size_t)(us >> shift) - BENCH_SUB_BUCKETS;
    return BENCH_LINEAR_US + (size_t)(exponent - BENCH_LINEAR_BITS) * BENCH_SUB_BUCKETS + sub;
}

/* The largest latency a bucket holds. */
static uint64_t bucket_top(size_t index) {
    if (index < BENCH_LINEAR_US)
        return index;
    size_t above = index - BENCH_LINEAR_US;
    unsigned exponent = BENCH_LINEAR_BITS + (unsigned)(above / BENCH_SUB_BUCKETS);
    uint64_t sub = above % BENCH_SUB_BUCKETS;
    unsigned shift = exponent - BENCH_SUB_BITS;
    return ((BENCH_SUB_BUCKETS + sub + 1) << shift) - 1;
}

void bench_histogram_record(struct bench_histogram *histogram, uint64_t latency_ns) {
    uint64_t us = latency_ns / 1000;
    histogram->counts[bucket_of(us)]++;
    histogram->count++;
    histogram->sum_ns += latency_ns;
    if (us > histogram->max_us)
        histogram->max_us = us;
}

uint64_t bench_histogram_percentile(const struct bench_histogram *histogram, double fraction) {
    if (histogram->count == 0)
        return 0;
    /* The rank of the answer, counted from 1: p99 of 1000 latencies is the 990th smallest. The
     * small subtraction keeps 0.999 x 1000 from rounding up to 1000 (0.999 is not exact). */
    double wanted = fraction * (double)histogram->count - 1e-9;
    uint64_t rank = wanted <= 1 ? 1 : (uint64_t)wanted + (wanted > (double)(uint64_t)wanted);
    uint64_t seen = 0;
    for (size_t i = 0; i < BENCH_BUCKETS; i++) {
        seen += histogram->counts[i];
        if (seen >= rank) {
            uint64_t top = bucket_top(i);
            return top < histogram->max_us ? top : histogram->max_us;
        }
    }
    return histogram->max_us;
}

double bench_histogram_mean_us(const struct bench_histogram *histogram) {
    if (histogram->count == 0)
        return 0;
    return (double)histogram->sum_ns / (double)histogram->count / 1000.0;
}

/* ---- text ---- */

#define LABEL "%-12s "

static void text_latency(FILE *out, const char *label, const struct bench_histogram *histogram) {
    if (histogram->count == 0) {
        fprintf(out, LABEL "none measured\n", label);
        return;
    }
    fprintf(out,
            LABEL "p50 %llu us, p90 %llu us, p99 %llu us, p99.9 %llu us, max %llu us, "
                  "mean %.1f us\n",
            label, (unsigned long long)bench_histogram_percentile(histogram, 0.50),
            (unsigned long long)bench_histogram_percentile(histogram, 0.90),
            (unsigned long long)bench_histogram_percentile(histogram, 0.99),
            (unsigned long long)bench_histogram_percentile(histogram, 0.999),
            (unsigned long long)histogram->max_us, bench_histogram_mean_us(histogram));
}

static double per_second(uint64_t count, double seconds) {
    return seconds > 0 ? (double)count / seconds : 0;
}

static void text_functions(FILE *out, const struct bench_settings *settings,
                           const struct bench_results *results) {
    const struct bench_function *first = &settings->functions[0];
    if (settings->function_count == 1) {
        fprintf(out, LABEL "FC %u %s, address %u, quantity %u\n", "function", first->function,
                mb_function_name(first->function), settings->address_start, settings->quantity);
        return;
    }
    fprintf(out, LABEL "address %u, quantity %u, drawn at random (seed %llu)\n", "functions",
            settings->address_start, settings->quantity, (unsigned long long)settings->seed);
    for (size_t i = 0; i < settings->function_count; i++) {
        const struct bench_function *function = &settings->functions[i];
        char name[16];
        snprintf(name, sizeof name, "FC %u", function->function);
        fprintf(out, "  " LABEL "%s, %.1f%% of the draws: %llu requests\n", name,
                mb_function_name(function->function),
                100.0 * (double)function->weight / (double)settings->total_weight,
                (unsigned long long)results->per_function[i]);
    }
}

static void text_errors(FILE *out, const struct bench_results *results) {
    uint64_t total = bench_error_total(results);
    if (total == 0) {
        fprintf(out, LABEL "0\n", "errors");
        return;
    }
    fprintf(out, LABEL "%llu\n", "errors", (unsigned long long)total);
    if (results->timeouts != 0)
        fprintf(out, "  " LABEL "%llu (no answer within --timeout)\n", "timeout",
                (unsigned long long)results->timeouts);
    for (unsigned code = 1; code < 256; code++)
        if (results->exceptions[code] != 0)
            fprintf(out, "  " LABEL "%02X %s: %llu\n", "exception", code,
                    mb_exception_name((uint8_t)code),
                    (unsigned long long)results->exceptions[code]);
    if (results->mismatches != 0)
        fprintf(out, "  " LABEL "%llu (an answer that does not fit its request)\n", "mismatch",
                (unsigned long long)results->mismatches);
    if (results->quantities != 0)
        fprintf(out, "  " LABEL "%llu (an answer with the wrong count of values)\n", "quantity",
                (unsigned long long)results->quantities);
    if (results->closed != 0)
        fprintf(out, "  " LABEL "%llu (the connection closed with the request in flight)\n",
                "closed", (unsigned long long)results->closed);
    if (results->connect_failures != 0)
        fprintf(out, "  " LABEL "%llu (connection attempts that failed)\n", "connect",
                (unsigned long long)results->connect_failures);
}

void bench_report_text(FILE *out, const struct bench_settings *settings,
                       const struct bench_results *results) {
    fprintf(out, LABEL "%s, unit %u\n", "target", settings->target, settings->unit);
    if (settings->mode == BENCH_CHURN)
        fprintf(out, LABEL "%u connection%s, each: connect, one request, close; again\n", "churn",
                settings->connections, settings->connections == 1 ? "" : "s");
    else
        fprintf(out, LABEL "%u connection%s x %u in flight\n", "load", settings->connections,
                settings->connections == 1 ? "" : "s", settings->depth);
    text_functions(out, settings, results);
    fprintf(out, LABEL "%.3f s", "duration", results->duration_s);
    if (settings->warmup_ms > 0)
        fprintf(out, " after %.3f s of warm-up", (double)settings->warmup_ms / 1000.0);
    if (results->interrupted)
        fprintf(out, " (interrupted)");
    fprintf(out, "\n");
    fprintf(out, LABEL "%llu, %.1f per second", "requests", (unsigned long long)results->requests,
            per_second(results->requests, results->duration_s));
    if (results->requests == 0 && results->unfinished != 0)
        fprintf(out, " (%llu still in flight when the run ended)",
                (unsigned long long)results->unfinished);
    fprintf(out, "\n");
    text_latency(out, "latency", &results->latency);
    if (settings->mode == BENCH_CHURN) {
        fprintf(out, LABEL "%llu, %.1f per second", "connects",
                (unsigned long long)results->connects,
                per_second(results->connects, results->duration_s));
        if (settings->tls != NULL)
            fprintf(out, ", %llu TLS sessions resumed", (unsigned long long)results->resumed);
        fprintf(out, "\n");
        text_latency(out, settings->tls != NULL ? "handshake" : "connect",
                     &results->connect_latency);
    } else if (results->disconnects != 0) {
        fprintf(out, LABEL "%llu established connections lost (each then made again if it could)\n",
                "disconnects", (unsigned long long)results->disconnects);
    }
    text_errors(out, results);
    if (results->unmatched != 0)
        fprintf(out, LABEL "%llu frames answered no request in flight (late or stray)\n",
                "discarded", (unsigned long long)results->unmatched);
    if (settings->tls != NULL)
        fprintf(out, LABEL "%s, %s\n", "tls",
                results->tls_version[0] != '\0' ? results->tls_version : "(no handshake)",
                results->tls_cipher[0] != '\0' ? results->tls_cipher : "-");
}

/* ---- JSON ---- */

static void json_latency(FILE *out, const char *key, const struct bench_histogram *histogram) {
    fprintf(out,
            ",\"%s\":{\"p50\":%llu,\"p90\":%llu,\"p99\":%llu,\"p99_9\":%llu,\"max\":%llu,"
            "\"mean\":%.1f}",
            key, (unsigned long long)bench_histogram_percentile(histogram, 0.50),
            (unsigned long long)bench_histogram_percentile(histogram, 0.90),
            (unsigned long long)bench_histogram_percentile(histogram, 0.99),
            (unsigned long long)bench_histogram_percentile(histogram, 0.999),
            (unsigned long long)histogram->max_us, bench_histogram_mean_us(histogram));
}

static void json_errors(FILE *out, const struct bench_results *results) {
    fprintf(out, ",\"errors\":{\"total\":%llu,\"timeout\":%llu,\"exception\":{",
            (unsigned long long)bench_error_total(results), (unsigned long long)results->timeouts);
    int first = 1;
    for (unsigned code = 1; code < 256; code++)
        if (results->exceptions[code] != 0) {
            fprintf(out, "%s\"%02X\":%llu", first ? "" : ",", code,
                    (unsigned long long)results->exceptions[code]);
            first = 0;
        }
    fprintf(out, "},\"mismatch\":%llu,\"quantity\":%llu,\"closed\":%llu,\"connect\":%llu}",
            (unsigned long long)results->mismatches, (unsigned long long)results->quantities,
            (unsigned long long)results->closed, (unsigned long long)results->connect_failures);
}

static void json_text(FILE *out, const char *key, const char *text) {
    fprintf(out, ",\"%s\":", key);
    json_write_string(out, text, strlen(text));
}

void bench_report_json(FILE *out, const struct bench_settings *settings,
                       const struct bench_results *results) {
    fprintf(out, "{\"target\":");
    json_write_string(out, settings->target, strlen(settings->target));
    fprintf(out, ",\"mode\":\"%s\",\"unit\":%u,\"connections\":%u,\"depth\":%u",
            settings->mode == BENCH_CHURN ? "churn" : "load", settings->unit, settings->connections,
            settings->mode == BENCH_CHURN ? 1 : settings->depth);
    fprintf(out, ",\"duration_s\":%.6f,\"warmup_s\":%.3f,\"requests\":%llu,\"requests_per_s\":%.1f",
            results->duration_s, (double)settings->warmup_ms / 1000.0,
            (unsigned long long)results->requests,
            per_second(results->requests, results->duration_s));
    json_latency(out, "latency_us", &results->latency);
    json_errors(out, results);
    if (settings->tls != NULL) {
        fprintf(out, ",\"tls\":{\"version\":");
        json_write_string(out, results->tls_version, strlen(results->tls_version));
        json_text(out, "cipher", results->tls_cipher);
        fprintf(out, ",\"resumed\":%llu}", (unsigned long long)results->resumed);
    } else {
        fprintf(out, ",\"tls\":null");
    }
    if (settings->mode == BENCH_CHURN) {
        fprintf(out, ",\"connects_per_s\":%.1f",
                per_second(results->connects, results->duration_s));
        json_latency(out, "connect_latency_us", &results->connect_latency);
    }
    fprintf(out, ",\"functions\":{");
    for (size_t i = 0; i < settings->function_count; i++)
        fprintf(out, "%s\"%u\":%llu", i > 0 ? "," : "", settings->functions[i].function,
                (unsigned long long)results->per_function[i]);
    fprintf(out,
            "},\"connects\":%llu,\"disconnects\":%llu,\"unmatched\":%llu,\"unfinished\":%llu,"
            "\"interrupted\":%s}\n",
            (unsigned long long)results->connects, (unsigned long long)results->disconnects,
            (unsigned long long)results->unmatched, (unsigned long long)results->unfinished,
            results->interrupted ? "true" : "false");
}
