/* SPDX-License-Identifier: MIT */
/*
 * Micro-benchmark of the codec on a server's hot path: decode a request PDU and encode its
 * response PDU.
 *   fc3:  read 10 holding registers; the response is built from a 10-register table.
 *   fc16: write 10 holding registers into a table; the response is the echo.
 *
 *   codec_bench [--case fc3|fc16|all] [--iterations N] [--rounds R] [--callgrind]
 *
 * Timing mode (the default) runs each case N times per round, R rounds, and prints the best
 * round as nanoseconds per operation. --callgrind runs each chosen case exactly N times and
 * nothing else, so that
 *   valgrind --tool=callgrind --toggle-collect=bench_fc3_once codec_bench --callgrind --case fc3
 * counts the instructions of N operations (see codec-instructions). Every mode checks the
 * response bytes and the table against the expected ones and exits 1 if they differ.
 */
#define _POSIX_C_SOURCE 200809L

#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "mbsec/pdu.h"
#include "mbsec/value.h"

/* A case's function must stay one real, uncloned function, so callgrind can toggle on it. */
#if defined(__clang__)
#define BENCH_CASE __attribute__((noinline, used))
#else
#define BENCH_CASE __attribute__((noipa, used))
#endif

#define TABLE_SIZE 10

/* ---- the cases ---- */

static const uint16_t readable_registers[TABLE_SIZE] = {
    0x0000, 0x1111, 0x2222, 0x3333, 0x4444, 0x5555, 0x6666, 0x7777, 0x8888, 0x9999,
};
static uint16_t written_registers[TABLE_SIZE];

static const uint8_t fc3_request[] = {0x03, 0x00, 0x00, 0x00, 0x0A};
static const uint8_t fc3_response[] = {
    0x03, 0x14, 0x00, 0x00, 0x11, 0x11, 0x22, 0x22, 0x33, 0x33, 0x44,
    0x44, 0x55, 0x55, 0x66, 0x66, 0x77, 0x77, 0x88, 0x88, 0x99, 0x99,
};

static const uint8_t fc16_request[] = {
    0x10, 0x00, 0x00, 0x00, 0x0A, 0x14, 0x00, 0x01, 0x00, 0x02, 0x00, 0x03, 0x00,
    0x04, 0x00, 0x05, 0x00, 0x06, 0x00, 0x07, 0x00, 0x08, 0x00, 0x09, 0x00, 0x0A,
};
static const uint8_t fc16_response[] = {0x10, 0x00, 0x00, 0x00, 0x0A};
static const uint16_t fc16_written[TABLE_SIZE] = {1, 2, 3, 4, 5, 6, 7, 8, 9, 10};

int bench_fc3_once(const uint8_t *request_pdu, size_t request_length, uint8_t *response_pdu,
                   size_t capacity);
int bench_fc16_once(const uint8_t *request_pdu, size_t request_length, uint8_t *response_pdu,
                    size_t capacity);

/* One FC 3 operation: decode the request, read the table, encode the response. */
BENCH_CASE int bench_fc3_once(const uint8_t *request_pdu, size_t request_length,
                              uint8_t *response_pdu, size_t capacity) {
    struct mb_request request;
    int rc = mb_request_decode(request_pdu, request_length, &request);
    if (rc != 0)
        return rc;
    if (request.function != MB_FC_READ_HOLDING_REGISTERS || request.read.quantity > TABLE_SIZE ||
        request.read.address > TABLE_SIZE - request.read.quantity)
        return MB_EINVAL;
    uint8_t wire[2 * MB_MAX_READ_REGISTERS];
    mb_registers_to_wire(readable_registers + request.read.address, request.read.quantity, wire);
    struct mb_response response;
    memset(&response, 0, sizeof response);
    response.function = request.function;
    response.read.byte_count = (uint8_t)(2 * request.read.quantity);
    response.read.data = wire;
    return mb_response_encode(&response, response_pdu, capacity);
}

/* One FC 16 operation: decode the request, write the table, encode the echo. */
BENCH_CASE int bench_fc16_once(const uint8_t *request_pdu, size_t request_length,
                               uint8_t *response_pdu, size_t capacity) {
    struct mb_request request;
    int rc = mb_request_decode(request_pdu, request_length, &request);
    if (rc != 0)
        return rc;
    if (request.function != MB_FC_WRITE_MULTIPLE_REGISTERS ||
        request.write_multiple.quantity > TABLE_SIZE ||
        request.write_multiple.address > TABLE_SIZE - request.write_multiple.quantity)
        return MB_EINVAL;
    mb_registers_from_wire(request.write_multiple.values, request.write_multiple.quantity,
                           written_registers + request.write_multiple.address);
    struct mb_response response;
    memset(&response, 0, sizeof response);
    response.function = request.function;
    response.write_multiple.address = request.write_multiple.address;
    response.write_multiple.quantity = request.write_multiple.quantity;
    return mb_response_encode(&response, response_pdu, capacity);
}

struct bench_case {
    const char *name;
    const char *description;
    int (*once)(const uint8_t *, size_t, uint8_t *, size_t);
    const uint8_t *request;
    size_t request_length;
    const uint8_t *response;
    size_t response_length;
};

static const struct bench_case cases[] = {
    {"fc3", "FC 3 read 10 registers", bench_fc3_once, fc3_request, sizeof fc3_request, fc3_response,
     sizeof fc3_response},
    {"fc16", "FC 16 write 10 registers", bench_fc16_once, fc16_request, sizeof fc16_request,
     fc16_response, sizeof fc16_response},
};
#define CASE_COUNT (sizeof cases / sizeof cases[0])

/* ---- checking and timing ---- */

static void hexdump(const char *label, const uint8_t *data, size_t length) {
    fprintf(stderr, "  %s:", label);
    for (size_t i = 0; i < length; i++)
        fprintf(stderr, " %02X", data[i]);
    fputc('\n', stderr);
}

/* 1 if the last operation's result, response bytes and table are the expected ones. */
static int result_is_correct(const struct bench_case *bench, int result, const uint8_t *response) {
    if (result != (int)bench->response_length ||
        memcmp(response, bench->response, bench->response_length) != 0) {
        fprintf(stderr, "codec_bench: %s: wrong response (result %d)\n", bench->name, result);
        if (result > 0 && result <= MB_PDU_MAX)
            hexdump("got ", response, (size_t)result);
        hexdump("want", bench->response, bench->response_length);
        return 0;
    }
    if (bench->once == bench_fc16_once &&
        memcmp(written_registers, fc16_written, sizeof written_registers) != 0) {
        fprintf(stderr, "codec_bench: %s: the registers written differ\n", bench->name);
        return 0;
    }
    return 1;
}

static double now_ns(void) {
    struct timespec ts;
    clock_gettime(CLOCK_MONOTONIC, &ts);
    return (double)ts.tv_sec * 1e9 + (double)ts.tv_nsec;
}

/* Runs the case `iterations` times; returns the last result and leaves the last response. */
static int run_case(const struct bench_case *bench, unsigned long iterations, uint8_t *response) {
    int result = 0;
    memset(written_registers, 0, sizeof written_registers);
    memset(response, 0, MB_PDU_MAX);
    for (unsigned long i = 0; i < iterations; i++)
        result = bench->once(bench->request, bench->request_length, response, MB_PDU_MAX);
    return result;
}

static int time_case(const struct bench_case *bench, unsigned long iterations,
                     unsigned long rounds) {
    uint8_t response[MB_PDU_MAX];
    double best = 0;
    for (unsigned long round = 0; round < rounds; round++) {
        double start = now_ns();
        int result = run_case(bench, iterations, response);
        double elapsed = now_ns() - start;
        if (!result_is_correct(bench, result, response))
            return 1;
        if (round == 0 || elapsed < best)
            best = elapsed;
    }
    printf("%-5s %-26s %8.1f ns/op   (best of %lu rounds of %lu)\n", bench->name,
           bench->description, best / (double)iterations, rounds, iterations);
    return 0;
}

static int count_case(const struct bench_case *bench, unsigned long iterations) {
    uint8_t response[MB_PDU_MAX];
    int result = run_case(bench, iterations, response);
    if (!result_is_correct(bench, result, response))
        return 1;
    printf("%-5s %-26s calls %lu\n", bench->name, bench->description, iterations);
    return 0;
}

static int parse_count(const char *text, unsigned long *count) {
    char *end;
    unsigned long value = strtoul(text, &end, 10);
    if (text[0] < '0' || text[0] > '9' || *end != '\0' || value == 0)
        return -1;
    *count = value;
    return 0;
}

static void usage(const char *program) {
    fprintf(stderr, "usage: %s [--case fc3|fc16|all] [--iterations N] [--rounds R] [--callgrind]\n",
            program);
}

int main(int argc, char **argv) {
    const char *chosen = "all";
    unsigned long iterations = 1000000, rounds = 5;
    int callgrind = 0;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--case") == 0 && i + 1 < argc) {
            chosen = argv[++i];
        } else if (strcmp(argv[i], "--iterations") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], &iterations) != 0) {
                usage(argv[0]);
                return 2;
            }
        } else if (strcmp(argv[i], "--rounds") == 0 && i + 1 < argc) {
            if (parse_count(argv[++i], &rounds) != 0) {
                usage(argv[0]);
                return 2;
            }
        } else if (strcmp(argv[i], "--callgrind") == 0) {
            callgrind = 1;
        } else {
            usage(argv[0]);
            return 2;
        }
    }

    int found = 0, failed = 0;
    for (size_t i = 0; i < CASE_COUNT; i++) {
        if (strcmp(chosen, "all") != 0 && strcmp(chosen, cases[i].name) != 0)
            continue;
        found = 1;
        failed |= callgrind ? count_case(&cases[i], iterations)
                            : time_case(&cases[i], iterations, rounds);
    }
    if (!found) {
        usage(argv[0]);
        return 2;
    }
    return failed ? 1 : 0;
}
