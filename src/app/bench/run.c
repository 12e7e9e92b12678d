/* SPDX-License-Identifier: MIT */
/*
 * The engine of mbsec bench: non-blocking clients (mb_async) on one event loop.
 *
 * Load mode keeps `depth` requests in flight on every connection: each answer submits the next
 * request. A lost connection comes back by the client's own reconnection (with backoff); the
 * requests it held fail and are counted, and the connection's requests go out again once it is
 * up. Churn mode gives each connection a client of its own for one request: connect, send,
 * wait for the answer, close, and again.
 *
 * Requests are tagged when submitted: only those submitted after the warm-up count, so that a
 * count of requests (--requests) is met exactly. Everything ends by itself: at the end of the
 * duration, when the count is reached, on SIGINT or SIGTERM (taken through a signalfd, so that
 * the report of what was measured still comes), when no connection can be made at all, or
 * when every connection gave up after failing to connect CONNECT_ATTEMPTS times in a row.
 */
#include <errno.h>
#include <signal.h>
#include <stdlib.h>
#include <string.h>
#include <sys/signalfd.h>
#include <time.h>
#include <unistd.h>

#include "app/bench/bench.h"
#include "mbsec/client.h"
#include "mbsec/error.h"
#include "mbsec/loop.h"

#define PROGRESS_INTERVAL_MS 1000
/* Failed connection attempts in a row after which a connection gives up: a server that is gone
 * must not keep a run with a request count going for ever. */
#define CONNECT_ATTEMPTS 5
#define RECONNECT_MIN_MS 100
#define RECONNECT_MAX_MS 1000
/* Churn mode: the pause after a failed connection attempt, so that a refusing server is not
 * hammered in a tight loop. */
#define CHURN_RETRY_MS 100

enum phase {
    PHASE_WARMUP = 0,
    PHASE_MEASURING,
    PHASE_STOPPED,
};

struct run;
struct connection;

/* One request kept in flight (load), or the one request of a churn cycle. */
struct request {
    struct connection *connection;
    uint64_t submitted_ns;
    uint8_t function_index;
    uint8_t measured;    /* submitted after the warm-up */
    uint8_t outstanding; /* submitted and not yet completed */
};

struct connection {
    struct run *run;
    struct mb_async *client;
    struct mb_transport *transport; /* TLS: the current connection's, for what it negotiated */
    struct request *requests;       /* settings->depth of them; one in churn mode */
    int up;                         /* established and not lost since */
    int first_attempt_over;         /* its first connection attempt succeeded or failed */
    uint32_t failures;              /* connection attempts that failed in a row */
    int gave_up;
    struct mb_task task; /* load: give up; churn: end the cycle */
    /* Churn mode: the cycle under way. */
    uint64_t connect_started_ns;
    int cycle_measured;
    int cycle_connected;
    struct mb_timer retry_timer;
};

struct run {
    const struct bench_settings *settings;
    struct bench_results *results;
    struct mb_loop *loop;
    struct connection *connections;
    struct request *requests;
    enum phase phase;
    uint64_t started_ns;
    uint64_t measure_start_ns;
    uint64_t stop_ns;
    uint64_t issued;    /* measured requests (churn: cycles) started */
    uint64_t finished;  /* measured requests (churn: cycles) that came to an end */
    uint64_t completed; /* every request completed, warm-up included: for the progress rate */
    uint64_t random;    /* splitmix64 state: which function code each request uses */
    uint32_t first_failures;
    uint32_t gave_up;
    int ever_connected;
    struct mb_timer phase_timer;
    struct mb_timer progress_timer;
    uint64_t progress_completed;
    uint64_t progress_ns;
    int signal_fd;
};

static void load_submit(struct request *request);
static void churn_start(struct connection *connection);

static uint64_t now_ns(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000000u + (uint64_t)now.tv_nsec;
}

uint64_t bench_error_total(const struct bench_results *results) {
    return results->timeouts + results->exception_total + results->mismatches +
           results->quantities + results->closed + results->connect_failures;
}

/* ---- phases ---- */

/* Ends the run: nothing is counted after this, and the loop returns once the current
 * iteration is over. */
static void stop(struct run *run) {
    if (run->phase == PHASE_STOPPED)
        return;
    run->stop_ns = now_ns();
    if (run->phase == PHASE_WARMUP)
        run->measure_start_ns = run->stop_ns; /* nothing was measured */
    run->phase = PHASE_STOPPED;
    mb_loop_stop(run->loop);
    const struct bench_settings *settings = run->settings;
    size_t total =
        (size_t)settings->connections * (settings->mode == BENCH_LOAD ? settings->depth : 1);
    for (size_t i = 0; i < total; i++)
        if (run->requests[i].outstanding && run->requests[i].measured)
            run->results->unfinished++;
}

static void on_duration_over(struct mb_loop *loop, struct mb_timer *timer) {
    struct run *run = timer->data;
    /* The loop's clock is that of the iteration's start, a little behind: never stop short. */
    uint64_t elapsed_ms = (now_ns() - run->measure_start_ns) / 1000000;
    if (elapsed_ms < run->settings->duration_ms) {
        mb_timer_start(loop, timer, run->settings->duration_ms - elapsed_ms, on_duration_over, run);
        return;
    }
    stop(run);
}

static void begin_measuring(struct run *run) {
    run->phase = PHASE_MEASURING;
    run->measure_start_ns = now_ns();
    if (run->settings->requests == 0)
        mb_timer_start(run->loop, &run->phase_timer, run->settings->duration_ms, on_duration_over,
                       run);
}

static void on_warmup_over(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    /* Requests (churn: cycles) under way finish uncounted; those that follow are measured. */
    begin_measuring(timer->data);
}

/* A measured request (churn: cycle) came to an end; the run may be complete. */
static void count_finished(struct run *run) {
    run->finished++;
    if (run->settings->requests != 0 && run->finished >= run->settings->requests)
        stop(run);
}

/* ---- progress ---- */

static void on_progress(struct mb_loop *loop, struct mb_timer *timer) {
    struct run *run = timer->data;
    const struct bench_results *results = run->results;
    uint64_t now = now_ns();
    double interval = (double)(now - run->progress_ns) / 1e9;
    double rate = interval > 0 ? (double)(run->completed - run->progress_completed) / interval : 0;
    run->progress_ns = now;
    run->progress_completed = run->completed;
    if (run->phase == PHASE_WARMUP)
        fprintf(stderr, "mbsec bench: warm-up %.0f s: %.0f req/s\n",
                (double)(now - run->started_ns) / 1e9, rate);
    else if (run->settings->mode == BENCH_CHURN)
        fprintf(stderr,
                "mbsec bench: %.0f s: %llu requests, %.0f req/s, %llu connects, %llu errors\n",
                (double)(now - run->measure_start_ns) / 1e9, (unsigned long long)results->requests,
                rate, (unsigned long long)results->connects,
                (unsigned long long)bench_error_total(results));
    else
        fprintf(stderr, "mbsec bench: %.0f s: %llu requests, %.0f req/s, %llu errors\n",
                (double)(now - run->measure_start_ns) / 1e9, (unsigned long long)results->requests,
                rate, (unsigned long long)bench_error_total(results));
    mb_timer_start(loop, timer, PROGRESS_INTERVAL_MS, on_progress, run);
}

/* ---- signals ---- */

static void on_signal(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)loop;
    (void)events;
    struct run *run = data;
    struct signalfd_siginfo info;
    while (read(fd, &info, sizeof info) == (ssize_t)sizeof info) {
        run->results->interrupted = 1;
        stop(run);
    }
}

/* ---- answers ---- */

/* Whether an answer that did not match its request was a normal answer to the right function
 * with the wrong count of values (bits, registers), as opposed to anything else. */
static int wrong_quantity(const struct mb_async_result *result) {
    struct mb_request request;
    struct mb_response response;
    if (result->response_pdu == NULL ||
        mb_request_decode(result->request_pdu, result->request_length, &request) != 0 ||
        mb_response_decode(result->response_pdu, result->response_length, &response) != 0 ||
        response.exception != 0 || response.function != request.function)
        return 0;
    switch (request.function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
        return response.read.byte_count != (request.read.quantity + 7) / 8;
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        return response.read.byte_count != 2 * request.read.quantity;
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        return response.read.byte_count != 2 * request.read_write.read_quantity;
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        return response.write_multiple.address == request.write_multiple.address &&
               response.write_multiple.quantity != request.write_multiple.quantity;
    default:
        return 0;
    }
}

/* Counts what a measured request came to. */
static void count_outcome(struct run *run, const struct request *request,
                          const struct mb_async_result *result) {
    struct bench_results *results = run->results;
    const struct bench_function *function = &run->settings->functions[request->function_index];
    results->requests++;
    results->per_function[request->function_index]++;
    switch (result->status) {
    case 0:
        bench_histogram_record(&results->latency, now_ns() - request->submitted_ns);
        if (result->response->exception != 0) {
            results->exceptions[result->response->exception]++;
            results->exception_total++;
        } else if (function->expected_length != 0 &&
                   (result->response->read.byte_count != function->expected_length ||
                    memcmp(result->response->read.data, function->expected,
                           function->expected_length) != 0)) {
            /* FC 23 read back something else than it had just written. */
            results->mismatches++;
        }
        return;
    case MB_ETIMEDOUT:
        results->timeouts++;
        return;
    case MB_ECLOSED:
    case MB_ECONNECT:
    case MB_EIO:
        results->closed++;
        return;
    case MB_EMISMATCH:
        if (wrong_quantity(result))
            results->quantities++;
        else
            results->mismatches++;
        return;
    default:
        /* An answer whose PDU does not decode. */
        results->mismatches++;
        return;
    }
}

/* Completes a request; returns 1 when it is to be counted and followed by another. */
static int complete(struct request *request, const struct mb_async_result *result) {
    struct run *run = request->connection->run;
    request->outstanding = 0;
    if (result->status == MB_ECANCELED || run->phase == PHASE_STOPPED)
        return 0;
    run->completed++;
    if (request->measured) {
        count_outcome(run, request, result);
        if (run->settings->mode == BENCH_LOAD)
            count_finished(run);
    }
    return run->phase != PHASE_STOPPED;
}

static size_t pick_function(struct run *run) {
    const struct bench_settings *settings = run->settings;
    if (settings->function_count == 1)
        return 0;
    /* splitmix64: a good spread from any seed, and the same sequence for the same seed. */
    uint64_t z = (run->random += 0x9E3779B97F4A7C15u);
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9u;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBu;
    z ^= z >> 31;
    uint64_t ticket = z % settings->total_weight;
    for (size_t i = 0; i < settings->function_count; i++) {
        if (ticket < settings->functions[i].weight)
            return i;
        ticket -= settings->functions[i].weight;
    }
    return settings->function_count - 1;
}

static int submit(struct request *request, int measured, mb_async_done done) {
    struct connection *connection = request->connection;
    const struct bench_settings *settings = connection->run->settings;
    size_t index = pick_function(connection->run);
    const struct bench_function *function = &settings->functions[index];
    request->submitted_ns = now_ns();
    int rc = mb_async_submit(connection->client, settings->unit, function->pdu, function->length,
                             settings->timeout_ms, done, request);
    if (rc != 0)
        return rc;
    request->function_index = (uint8_t)index;
    request->measured = (uint8_t)measured;
    request->outstanding = 1;
    return 0;
}

static void on_unmatched(void *data, uint16_t transaction_id, uint8_t unit_id) {
    (void)transaction_id;
    (void)unit_id;
    struct connection *connection = data;
    if (connection->run->phase == PHASE_MEASURING)
        connection->run->results->unmatched++;
}

/* ---- connections, both modes ---- */

/* The transport wrapper for TLS: mb_tls_wrap(), keeping the transport to ask what it
 * negotiated once it is established. */
static int wrap_tls(void *data, int fd, struct mb_transport **transport) {
    struct connection *connection = data;
    int rc = mb_tls_wrap(connection->run->settings->tls, fd, transport);
    connection->transport = rc == 0 ? *transport : NULL;
    return rc;
}

static void note_tls(struct connection *connection, int measured) {
    struct bench_results *results = connection->run->results;
    struct mb_tls_session_info info;
    if (connection->transport == NULL || mb_tls_transport_info(connection->transport, &info) != 0)
        return;
    if (results->tls_version[0] == '\0') {
        snprintf(results->tls_version, sizeof results->tls_version, "%s", info.version);
        snprintf(results->tls_cipher, sizeof results->tls_cipher, "%s", info.cipher);
    }
    if (measured && info.resumed)
        results->resumed++;
}

static void note_connected(struct connection *connection, int measured) {
    struct run *run = connection->run;
    connection->up = 1;
    connection->failures = 0;
    connection->first_attempt_over = 1;
    run->ever_connected = 1;
    if (measured)
        run->results->connects++;
    note_tls(connection, measured);
}

/* A connection attempt failed (refused, timed out, TLS handshake). After CONNECT_ATTEMPTS in a
 * row the connection gives up; the run stops at once when no connection could be made at all,
 * or when every connection gave up. */
static void note_connect_failure(struct connection *connection, int measured, const char *detail) {
    struct run *run = connection->run;
    struct bench_results *results = run->results;
    if (measured)
        results->connect_failures++;
    if (detail != NULL && detail[0] != '\0')
        snprintf(results->connect_detail, sizeof results->connect_detail, "%s", detail);
    if (!connection->first_attempt_over) {
        connection->first_attempt_over = 1;
        run->first_failures++;
        if (!run->ever_connected && run->first_failures == run->settings->connections) {
            results->cannot_connect = 1;
            stop(run);
            return;
        }
    }
    if (++connection->failures < CONNECT_ATTEMPTS)
        return;
    connection->gave_up = 1;
    if (++run->gave_up == run->settings->connections)
        stop(run);
}

/* ---- load mode ---- */

static void load_on_answer(void *data, const struct mb_async_result *result) {
    struct request *request = data;
    if (complete(request, result))
        load_submit(request);
}

static void load_submit(struct request *request) {
    struct run *run = request->connection->run;
    int measured = run->phase == PHASE_MEASURING;
    if (run->phase == PHASE_STOPPED ||
        (measured && run->settings->requests != 0 && run->issued >= run->settings->requests))
        return;
    /* Refused while the connection is down: it goes out again once the connection is back. */
    if (submit(request, measured, load_on_answer) == 0 && measured)
        run->issued++;
}

static void load_give_up(struct mb_loop *loop, struct mb_task *task) {
    (void)loop;
    struct connection *connection = task->data;
    mb_async_destroy(connection->client);
    connection->client = NULL;
}

static void load_on_state(void *data, enum mb_async_state state, int error, const char *detail) {
    struct connection *connection = data;
    struct run *run = connection->run;
    int measured = run->phase == PHASE_MEASURING;
    if (state == MB_ASYNC_CONNECTED) {
        note_connected(connection, measured);
        for (uint32_t i = 0; i < run->settings->depth; i++)
            if (!connection->requests[i].outstanding)
                load_submit(&connection->requests[i]);
        return;
    }
    if (state != MB_ASYNC_DOWN && state != MB_ASYNC_CLOSED)
        return;
    if (connection->up) {
        connection->up = 0;
        if (measured)
            run->results->disconnects++;
        return;
    }
    if (error != MB_ECONNECT)
        return;
    note_connect_failure(connection, measured, detail);
    if (connection->gave_up) /* not from inside the client's own callback: in a task */
        mb_loop_post(run->loop, &connection->task, load_give_up, connection);
}

static int load_start(struct run *run, struct connection *connection) {
    const struct bench_settings *settings = run->settings;
    struct mb_async_config config = {
        .max_in_flight = settings->depth,
        .max_queued = settings->depth,
        .timeout_ms = settings->timeout_ms,
        .connect_timeout_ms = settings->connect_timeout_ms,
        .reconnect = 1,
        .reconnect_min_ms = RECONNECT_MIN_MS,
        .reconnect_max_ms = RECONNECT_MAX_MS,
        .wrap = settings->tls != NULL ? wrap_tls : NULL,
        .wrap_data = connection,
        .on_state = load_on_state,
        .state_data = connection,
        .on_unmatched = on_unmatched,
    };
    /* Requests go out once the connection is up (load_on_state). */
    return mb_async_create(run->loop, &config, (const struct sockaddr *)&settings->address,
                           settings->address_length, &connection->client);
}

/* ---- churn mode ---- */

static void churn_next(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    churn_start(timer->data);
}

/* Ends a cycle: closes its client (never from inside the client's callbacks: this runs as a
 * task) and starts the next cycle. */
static void churn_end_cycle(struct mb_loop *loop, struct mb_task *task) {
    struct connection *connection = task->data;
    struct run *run = connection->run;
    mb_async_destroy(connection->client);
    connection->client = NULL;
    connection->transport = NULL;
    if (run->phase == PHASE_STOPPED)
        return;
    if (connection->cycle_measured)
        count_finished(run);
    if (connection->gave_up || run->phase == PHASE_STOPPED)
        return;
    if (connection->cycle_connected)
        churn_start(connection);
    else
        mb_timer_start(loop, &connection->retry_timer, CHURN_RETRY_MS, churn_next, connection);
}

static void churn_on_answer(void *data, const struct mb_async_result *result) {
    struct request *request = data;
    struct connection *connection = request->connection;
    complete(request, result);
    if (result->status == MB_ECANCELED) /* the client is being destroyed */
        return;
    mb_loop_post(connection->run->loop, &connection->task, churn_end_cycle, connection);
}

static void churn_on_state(void *data, enum mb_async_state state, int error, const char *detail) {
    struct connection *connection = data;
    struct run *run = connection->run;
    if (run->phase == PHASE_STOPPED)
        return;
    if (state == MB_ASYNC_CONNECTED) {
        connection->cycle_connected = 1;
        if (connection->cycle_measured)
            bench_histogram_record(&run->results->connect_latency,
                                   now_ns() - connection->connect_started_ns);
        note_connected(connection, connection->cycle_measured);
        if (submit(&connection->requests[0], connection->cycle_measured, churn_on_answer) != 0)
            mb_loop_post(run->loop, &connection->task, churn_end_cycle, connection);
        return;
    }
    if (state != MB_ASYNC_CLOSED)
        return;
    connection->up = 0;
    if (!connection->cycle_connected && error == MB_ECONNECT)
        note_connect_failure(connection, connection->cycle_measured, detail);
    /* A request in flight completes next, with MB_ECLOSED; the task runs after that. */
    mb_loop_post(run->loop, &connection->task, churn_end_cycle, connection);
}

static void churn_start(struct connection *connection) {
    struct run *run = connection->run;
    const struct bench_settings *settings = run->settings;
    int measured = run->phase == PHASE_MEASURING;
    if (run->phase == PHASE_STOPPED || connection->gave_up ||
        (measured && settings->requests != 0 && run->issued >= settings->requests))
        return;
    struct mb_async_config config = {
        .max_in_flight = 1,
        .max_queued = 1,
        .timeout_ms = settings->timeout_ms,
        .connect_timeout_ms = settings->connect_timeout_ms,
        .wrap = settings->tls != NULL ? wrap_tls : NULL,
        .wrap_data = connection,
        .on_state = churn_on_state,
        .state_data = connection,
        .on_unmatched = on_unmatched,
    };
    connection->cycle_measured = measured;
    connection->cycle_connected = 0;
    connection->connect_started_ns = now_ns();
    if (mb_async_create(run->loop, &config, (const struct sockaddr *)&settings->address,
                        settings->address_length, &connection->client) != 0) {
        /* Out of memory: this connection stops; the others go on. */
        connection->client = NULL;
        connection->gave_up = 1;
        if (++run->gave_up == settings->connections)
            stop(run);
        return;
    }
    if (measured)
        run->issued++;
}

/* ---- the run ---- */

static int watch_signals(struct run *run) {
    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGINT);
    sigaddset(&signals, SIGTERM);
    /* Left blocked when the run is over: a second Ctrl-C while the report is being printed
     * must not cut it off. */
    if (sigprocmask(SIG_BLOCK, &signals, NULL) != 0)
        return -1;
    run->signal_fd = signalfd(-1, &signals, SFD_NONBLOCK | SFD_CLOEXEC);
    if (run->signal_fd < 0)
        return -1;
    return mb_loop_add(run->loop, run->signal_fd, MB_IO_READ, on_signal, run) == 0 ? 0 : -1;
}

static void finish(struct run *run) {
    const struct bench_settings *settings = run->settings;
    for (uint32_t c = 0; c < settings->connections; c++) {
        mb_timer_stop(run->loop, &run->connections[c].retry_timer);
        mb_loop_cancel(run->loop, &run->connections[c].task);
        mb_async_destroy(run->connections[c].client);
        run->connections[c].client = NULL;
    }
    mb_timer_stop(run->loop, &run->phase_timer);
    mb_timer_stop(run->loop, &run->progress_timer);
}

int bench_run(const struct bench_settings *settings, struct bench_results *results) {
    struct run run = {
        .settings = settings,
        .results = results,
        .random = settings->seed,
        .signal_fd = -1,
    };
    size_t per_connection = settings->mode == BENCH_LOAD ? settings->depth : 1;
    run.connections = calloc(settings->connections, sizeof *run.connections);
    run.requests = calloc((size_t)settings->connections * per_connection, sizeof *run.requests);
    int status = -1;
    if (run.connections == NULL || run.requests == NULL || mb_loop_create(&run.loop) != 0) {
        fprintf(stderr, "mbsec bench: out of memory\n");
        goto done;
    }
    if (watch_signals(&run) != 0) {
        fprintf(stderr, "mbsec bench: cannot watch signals: %s\n", strerror(errno));
        goto done;
    }
    for (uint32_t c = 0; c < settings->connections; c++) {
        struct connection *connection = &run.connections[c];
        connection->run = &run;
        connection->requests = &run.requests[(size_t)c * per_connection];
        for (size_t r = 0; r < per_connection; r++)
            connection->requests[r].connection = connection;
    }

    run.started_ns = run.progress_ns = now_ns();
    if (settings->warmup_ms > 0)
        mb_timer_start(run.loop, &run.phase_timer, settings->warmup_ms, on_warmup_over, &run);
    else
        begin_measuring(&run);
    for (uint32_t c = 0; c < settings->connections; c++) {
        struct connection *connection = &run.connections[c];
        if (settings->mode == BENCH_CHURN) {
            churn_start(connection);
        } else if (load_start(&run, connection) != 0) {
            fprintf(stderr, "mbsec bench: out of memory\n");
            finish(&run);
            goto done;
        }
    }
    if (settings->progress)
        mb_timer_start(run.loop, &run.progress_timer, PROGRESS_INTERVAL_MS, on_progress, &run);
    if (mb_loop_run(run.loop) != 0)
        fprintf(stderr, "mbsec bench: the event loop failed: %s\n", strerror(errno));
    stop(&run);
    results->duration_s = (double)(run.stop_ns - run.measure_start_ns) / 1e9;
    if (!run.ever_connected && !results->cannot_connect) {
        /* The run ended before any connection attempt came to an end (a target that drops
         * connection requests, with a run shorter than the connect timeout). */
        results->cannot_connect = 1;
        if (results->connect_detail[0] == '\0')
            snprintf(results->connect_detail, sizeof results->connect_detail,
                     "connect to %s: no connection established in %.1f s", settings->target,
                     (double)(run.stop_ns - run.started_ns) / 1e9);
    }
    finish(&run);
    status = 0;

done:
    if (run.signal_fd >= 0) {
        if (run.loop != NULL)
            mb_loop_remove(run.loop, run.signal_fd);
        close(run.signal_fd);
    }
    mb_loop_destroy(run.loop);
    free(run.requests);
    free(run.connections);
    return status;
}
