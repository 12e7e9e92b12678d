/* SPDX-License-Identifier: MIT */
/*
 * The non-blocking client (mb_async) as a load generator, to compare with bench/loadgen (raw
 * epoll and the codec, no client library) against the same server in the same run:
 *
 *     async_rate [--connections N] [--depth D] [--seconds S] [--warmup S]
 *                [--tls CERT,KEY,CA] [--tls12] [--server-name NAME] HOST PORT
 *
 * N clients on one loop, each keeping D FC 3 requests (10 registers) in flight: every answer
 * submits the next request. Every answer is checked by the client library (transaction, unit,
 * function, byte count) and its value by this program (it must be a normal FC 3 answer with
 * 10 registers). Stops by itself after warm-up + S seconds and prints one line:
 *
 *     result connections=8 depth=16 seconds=3.00 requests=N rps=R errors=0 p50_us=A p99_us=B
 *     max_us=C cpu_us=D
 *
 * (one line), where the latencies are those of the requests answered in the measured window:
 * from mb_async_submit() to the answer's callback (the request goes out in the same loop
 * iteration), in 1 us buckets; cpu_us is this program's own CPU time (user + system) per
 * answered request in the measured window, to tell when the load generator is the limit.
 *
 * With --tls, every connection is Modbus/TCP Security with that client certificate, key and the
 * CA that must have signed the server's certificate (TLS 1.3, or 1.2 with --tls12); the line
 * then ends with tls=VERSION/CIPHER, what the first connection negotiated. --server-name makes
 * the client check that the server's certificate carries that name or address (default: the
 * CA check alone).
 *
 * Exit status 0 only when no request failed.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <time.h>

#include <mbsec/client.h>
#include <mbsec/loop.h>
#include <mbsec/tls.h>

#define MAX_CONNECTIONS 1024
#define MAX_DEPTH 4096
#define QUANTITY 10
#define LATENCY_BUCKETS 200000 /* 1 us each: 0..200 ms; slower answers count in the last */

struct run {
    struct mb_loop *loop;
    uint64_t answered; /* in the measured window */
    uint64_t errors;
    int measuring;
    int stopping;
    struct mb_timer phase;
    uint32_t *latency; /* LATENCY_BUCKETS counters */
    uint64_t latency_max_us;
    struct mb_tls_context *tls;
    char tls_session[160]; /* what the first TLS connection negotiated */
};

struct connection {
    struct run *run;
    struct mb_async *client;
    struct mb_transport *transport; /* TLS: the connection's transport, for what it negotiated */
};

/* One request kept in flight: resubmitted when its answer comes. */
struct request {
    struct connection *connection;
    uint64_t submitted_ns;
};

static const uint8_t request_pdu[] = {MB_FC_READ_HOLDING_REGISTERS, 0, 0, 0, QUANTITY};

static void on_answer(void *data, const struct mb_async_result *result);

static uint64_t now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

static void submit(struct request *request) {
    struct connection *connection = request->connection;
    if (connection->run->stopping)
        return;
    request->submitted_ns = now_ns();
    if (mb_async_submit(connection->client, 1, request_pdu, sizeof request_pdu, 5000, on_answer,
                        request) != 0)
        connection->run->errors++;
}

/* Notes what the first TLS connection negotiated (its handshake is done once it answered). */
static void note_session(struct connection *connection) {
    struct run *run = connection->run;
    struct mb_tls_session_info info;
    if (run->tls_session[0] != '\0' || connection->transport == NULL ||
        mb_tls_transport_info(connection->transport, &info) != 0)
        return;
    snprintf(run->tls_session, sizeof run->tls_session, "%s/%s", info.version, info.cipher);
}

static void on_answer(void *data, const struct mb_async_result *result) {
    struct request *request = data;
    struct connection *connection = request->connection;
    struct run *run = connection->run;
    if (result->status != 0 || result->response->exception != 0 ||
        result->response->read.byte_count != 2 * QUANTITY) {
        if (run->errors++ < 5)
            fprintf(stderr, "async_rate: request failed: %s\n",
                    result->status != 0 ? result->detail : "exception");
        return;
    }
    if (run->measuring) {
        run->answered++;
        uint64_t latency_us = (now_ns() - request->submitted_ns) / 1000u;
        if (latency_us > run->latency_max_us)
            run->latency_max_us = latency_us;
        run->latency[latency_us < LATENCY_BUCKETS ? latency_us : LATENCY_BUCKETS - 1]++;
    }
    if (run->tls != NULL && run->tls_session[0] == '\0')
        note_session(connection);
    submit(request);
}

/* The transport wrapper for TLS: mb_tls_wrap(), keeping the transport for note_session(). */
static int wrap_tls(void *data, int fd, struct mb_transport **transport) {
    struct connection *connection = data;
    int rc = mb_tls_wrap(connection->run->tls, fd, transport);
    connection->transport = rc == 0 ? *transport : NULL;
    return rc;
}

/* The latency (us) below which `fraction` of the measured answers came. */
static uint64_t percentile(const struct run *run, double fraction) {
    if (run->answered == 0)
        return 0;
    uint64_t rank = (uint64_t)(fraction * (double)run->answered + 0.5), seen = 0;
    if (rank == 0)
        rank = 1;
    for (uint64_t us = 0; us < LATENCY_BUCKETS; us++) {
        seen += run->latency[us];
        if (seen >= rank)
            return us == LATENCY_BUCKETS - 1 ? run->latency_max_us : us;
    }
    return run->latency_max_us;
}

static double now_seconds(void) {
    return (double)now_ns() / 1e9;
}

/* This process's CPU time so far (user + system), in seconds. */
static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)(usage.ru_utime.tv_sec + usage.ru_stime.tv_sec) +
           (double)(usage.ru_utime.tv_usec + usage.ru_stime.tv_usec) / 1e6;
}

int main(int argc, char **argv) {
    int connections = 8, depth = 16, tls12 = 0;
    double seconds = 3, warmup = 0.5;
    char *tls_files = NULL;
    const char *server_name = NULL;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--tls12") == 0) {
            tls12 = 1;
            i--;
        } else if (strcmp(argv[i], "--tls") == 0)
            tls_files = argv[i + 1];
        else if (strcmp(argv[i], "--server-name") == 0)
            server_name = argv[i + 1];
        else if (strcmp(argv[i], "--connections") == 0)
            connections = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--depth") == 0)
            depth = atoi(argv[i + 1]);
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--warmup") == 0)
            warmup = atof(argv[i + 1]);
        else
            break;
    }
    if (argc - i != 2 || connections < 1 || connections > MAX_CONNECTIONS || depth < 1 ||
        depth > MAX_DEPTH || seconds <= 0 || seconds > 600) {
        fprintf(stderr, "usage: async_rate [--connections N] [--depth D] [--seconds S] "
                        "[--warmup S] [--tls CERT,KEY,CA] [--tls12] [--server-name NAME] "
                        "HOST PORT\n");
        return 2;
    }
    char target[300];
    snprintf(target, sizeof target, "%s:%s", argv[i], argv[i + 1]);
    struct sockaddr_storage address;
    socklen_t length;
    const char *reason = NULL;
    if (mb_address_parse(target, 502, &address, &length, &reason) != 0) {
        fprintf(stderr, "async_rate: %s: %s\n", target, reason);
        return 2;
    }

    struct run run = {0};
    run.latency = calloc(LATENCY_BUCKETS, sizeof *run.latency);
    struct request *requests = calloc((size_t)connections * (size_t)depth, sizeof *requests);
    if (run.latency == NULL || requests == NULL || mb_loop_create(&run.loop) != 0)
        return 1;
    static struct connection pool[MAX_CONNECTIONS];
    struct mb_async_config config = {.max_in_flight = (uint32_t)depth,
                                     .max_queued = (uint32_t)depth};
    if (tls_files != NULL) {
        char *certificate = strtok(tls_files, ","), *key = strtok(NULL, ","),
             *ca = strtok(NULL, ",");
        struct mb_tls_config tls_config = {.certificate_file = certificate,
                                           .key_file = key,
                                           .ca_file = ca,
                                           .server_name = server_name,
                                           .tls12_only = tls12};
        char error[300];
        if (certificate == NULL || key == NULL || ca == NULL ||
            mb_tls_context_create(0, &tls_config, &run.tls, error, sizeof error) != 0) {
            fprintf(stderr, "async_rate: --tls CERT,KEY,CA: %s\n",
                    certificate && key && ca ? error : "three files");
            return 2;
        }
        config.wrap = wrap_tls;
    }
    for (int c = 0; c < connections; c++) {
        pool[c].run = &run;
        config.wrap_data = &pool[c];
        if (mb_async_create(run.loop, &config, (struct sockaddr *)&address, length,
                            &pool[c].client) != 0) {
            fprintf(stderr, "async_rate: cannot create client %d\n", c);
            return 1;
        }
        for (int d = 0; d < depth; d++) {
            struct request *request = &requests[(size_t)c * (size_t)depth + (size_t)d];
            request->connection = &pool[c];
            submit(request);
        }
    }

    double start = now_seconds(), measure_start = start + warmup, stop = measure_start + seconds;
    double cpu_start = 0;
    while (!run.stopping) {
        mb_loop_run_once(run.loop, 50);
        double now = now_seconds();
        if (!run.measuring && now >= measure_start) {
            run.measuring = 1;
            measure_start = now;
            cpu_start = cpu_seconds();
        }
        if (now >= stop)
            run.stopping = 1;
    }
    double measured = now_seconds() - measure_start;
    double cpu_used = run.measuring ? cpu_seconds() - cpu_start : 0;
    run.measuring = 0;
    /* Let what is in flight finish (bounded), so that the clients close cleanly. */
    for (int round = 0; round < 200; round++) {
        size_t outstanding = 0;
        for (int c = 0; c < connections; c++)
            outstanding += mb_async_outstanding(pool[c].client);
        if (outstanding == 0)
            break;
        mb_loop_run_once(run.loop, 10);
    }
    for (int c = 0; c < connections; c++)
        mb_async_destroy(pool[c].client);
    mb_loop_destroy(run.loop);
    mb_tls_context_destroy(run.tls);
    printf("result connections=%d depth=%d seconds=%.2f requests=%llu rps=%.0f errors=%llu "
           "p50_us=%llu p99_us=%llu max_us=%llu cpu_us=%.2f",
           connections, depth, measured, (unsigned long long)run.answered,
           (double)run.answered / measured, (unsigned long long)run.errors,
           (unsigned long long)percentile(&run, 0.50), (unsigned long long)percentile(&run, 0.99),
           (unsigned long long)run.latency_max_us,
           run.answered > 0 ? cpu_used * 1e6 / (double)run.answered : 0.0);
    if (run.tls != NULL)
        printf(" tls=%s", run.tls_session[0] ? run.tls_session : "?");
    printf("\n");
    free(requests);
    free(run.latency);
    return run.errors == 0 && run.answered > 0 ? 0 : 1;
}
