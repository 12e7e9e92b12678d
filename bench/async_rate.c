/* SPDX-License-Identifier: MIT */
/*
 * The non-blocking client (mb_async) as a load generator, to compare with bench/loadgen (raw
 * epoll and the codec, no client library) against the same server in the same run:
 *
 *     async_rate [--connections N] [--depth D] [--seconds S] [--warmup S]
 *                [--tls CERT,KEY,CA] [--tls12] HOST PORT
 *
 * N clients on one loop, each keeping D FC 3 requests (10 registers) in flight: every answer
 * submits the next request. Every answer is checked by the client library (transaction, unit,
 * function, byte count) and its value by this program (it must be a normal FC 3 answer with
 * 10 registers). Stops by itself after warm-up + S seconds and prints one line:
 *
 *     result connections=8 depth=16 seconds=3.00 requests=N rps=R errors=0
 *
 * With --tls, every connection is Modbus/TCP Security with that client certificate (TLS 1.3,
 * or 1.2 with --tls12).
 *
 * Exit status 0 only when no request failed.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbsec/client.h>
#include <mbsec/loop.h>
#include <mbsec/tls.h>

#define MAX_CONNECTIONS 1024
#define QUANTITY 10

struct run {
    struct mb_loop *loop;
    uint64_t answered; /* in the measured window */
    uint64_t errors;
    int measuring;
    int stopping;
    struct mb_timer phase;
};

struct connection {
    struct run *run;
    struct mb_async *client;
};

static const uint8_t request_pdu[] = {MB_FC_READ_HOLDING_REGISTERS, 0, 0, 0, QUANTITY};

static void on_answer(void *data, const struct mb_async_result *result);

static void submit(struct connection *connection) {
    if (connection->run->stopping)
        return;
    if (mb_async_submit(connection->client, 1, request_pdu, sizeof request_pdu, 5000, on_answer,
                        connection) != 0)
        connection->run->errors++;
}

static void on_answer(void *data, const struct mb_async_result *result) {
    struct connection *connection = data;
    struct run *run = connection->run;
    if (result->status != 0 || result->response->exception != 0 ||
        result->response->read.byte_count != 2 * QUANTITY) {
        if (run->errors++ < 5)
            fprintf(stderr, "async_rate: request failed: %s\n",
                    result->status != 0 ? result->detail : "exception");
        return;
    }
    if (run->measuring)
        run->answered++;
    submit(connection);
}

static double now_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    int connections = 8, depth = 16, tls12 = 0;
    double seconds = 3, warmup = 0.5;
    char *tls_files = NULL;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--tls12") == 0) {
            tls12 = 1;
            i--;
        } else if (strcmp(argv[i], "--tls") == 0)
            tls_files = argv[i + 1];
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
        depth > 4096 || seconds <= 0 || seconds > 600) {
        fprintf(stderr, "usage: async_rate [--connections N] [--depth D] [--seconds S] "
                        "[--warmup S] HOST PORT\n");
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
    if (mb_loop_create(&run.loop) != 0)
        return 1;
    static struct connection pool[MAX_CONNECTIONS];
    struct mb_async_config config = {.max_in_flight = (uint32_t)depth,
                                     .max_queued = (uint32_t)depth};
    struct mb_tls_context *tls = NULL;
    if (tls_files != NULL) {
        char *certificate = strtok(tls_files, ","), *key = strtok(NULL, ","),
             *ca = strtok(NULL, ",");
        struct mb_tls_config tls_config = {
            .certificate_file = certificate, .key_file = key, .ca_file = ca, .tls12_only = tls12};
        char error[300];
        if (certificate == NULL || key == NULL || ca == NULL ||
            mb_tls_context_create(0, &tls_config, &tls, error, sizeof error) != 0) {
            fprintf(stderr, "async_rate: --tls CERT,KEY,CA: %s\n",
                    certificate && key && ca ? error : "three files");
            return 2;
        }
        config.wrap = mb_tls_wrap;
        config.wrap_data = tls;
    }
    for (int c = 0; c < connections; c++) {
        pool[c].run = &run;
        if (mb_async_create(run.loop, &config, (struct sockaddr *)&address, length,
                            &pool[c].client) != 0) {
            fprintf(stderr, "async_rate: cannot create client %d\n", c);
            return 1;
        }
        for (int d = 0; d < depth; d++)
            submit(&pool[c]);
    }

    double start = now_seconds(), measure_start = start + warmup, stop = measure_start + seconds;
    while (!run.stopping) {
        mb_loop_run_once(run.loop, 50);
        double now = now_seconds();
        if (!run.measuring && now >= measure_start) {
            run.measuring = 1;
            measure_start = now;
        }
        if (now >= stop)
            run.stopping = 1;
    }
    double measured = now_seconds() - measure_start;
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
    mb_tls_context_destroy(tls);
    printf("result connections=%d depth=%d seconds=%.2f requests=%llu rps=%.0f errors=%llu\n",
           connections, depth, measured, (unsigned long long)run.answered,
           (double)run.answered / measured, (unsigned long long)run.errors);
    return run.errors == 0 && run.answered > 0 ? 0 : 1;
}
