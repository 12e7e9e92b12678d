/* SPDX-License-Identifier: MIT */
/*
 * Writes the test suite's byte vectors (tests/vectors.c) as the fuzz targets' seed corpora:
 * OUTDIR/<target>/<vector name>, one file per vector, the target chosen by the vector's kind.
 * The targets whose inputs are more than one frame get seeds built from the same vectors in
 * their own input format (see derived seeds below).
 *
 *   mbsec_make_corpus OUTDIR
 *
 * Exits 0 when every vector was written, else 1. A target left without seeds is reported; its
 * replay test then fails, since it has nothing to replay.
 */
#define _POSIX_C_SOURCE 200809L

#include <errno.h>
#include <stdio.h>
#include <string.h>
#include <sys/stat.h>

#include "vectors.h"

static const char *const targets[] = {
    [VECTOR_REQUEST_PDU] = "fuzz_request",     [VECTOR_RESPONSE_PDU] = "fuzz_response",
    [VECTOR_MBAP_STREAM] = "fuzz_mbap_stream", [VECTOR_RTU_FRAME] = "fuzz_rtu",
    [VECTOR_ASCII_FRAME] = "fuzz_ascii",
};
#define TARGET_COUNT (sizeof targets / sizeof targets[0])

/* Targets seeded only from derived seeds. */
static const char *const derived_targets[] = {"fuzz_policy", "fuzz_server", "fuzz_client",
                                              "fuzz_gateway"};
#define DERIVED_COUNT (sizeof derived_targets / sizeof derived_targets[0])

static int make_directory(const char *path) {
    if (mkdir(path, 0755) == 0 || errno == EEXIST)
        return 0;
    fprintf(stderr, "make_corpus: mkdir %s: %s\n", path, strerror(errno));
    return -1;
}

/* A vector name must be one plain file name. */
static int name_is_usable(const char *name) {
    return name != NULL && name[0] != '\0' && name[0] != '.' && strchr(name, '/') == NULL &&
           strlen(name) < 200;
}

/* Writes the vector's bytes to DIRECTORY/<vector name>. */
static int write_file(const char *directory, const struct vector *vector) {
    char path[4096];
    int length = snprintf(path, sizeof path, "%s/%s", directory, vector->name);
    if (length < 0 || (size_t)length >= sizeof path) {
        fprintf(stderr, "make_corpus: path too long for %s\n", vector->name);
        return -1;
    }
    FILE *file = fopen(path, "wb");
    if (file == NULL) {
        fprintf(stderr, "make_corpus: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t written = vector->length > 0 ? fwrite(vector->bytes, 1, vector->length, file) : 0;
    if (fclose(file) != 0 || written != vector->length) {
        fprintf(stderr, "make_corpus: %s: write failed\n", path);
        return -1;
    }
    return 0;
}

/* ---- derived seeds ---- */

struct seed {
    uint8_t bytes[4096];
    size_t length;
};

static void put(struct seed *seed, const void *bytes, size_t length) {
    if (seed->length + length > sizeof seed->bytes)
        length = sizeof seed->bytes - seed->length;
    memcpy(seed->bytes + seed->length, bytes, length);
    seed->length += length;
}

static void put_byte(struct seed *seed, uint8_t byte) {
    put(seed, &byte, 1);
}

static int write_seed(const char *outdir, const char *target, const char *name,
                      const struct seed *seed) {
    struct vector vector = {.name = name, .bytes = seed->bytes, .length = seed->length};
    char path[4096];
    snprintf(path, sizeof path, "%s/%s", outdir, target);
    return write_file(path, &vector);
}

/*
 * fuzz_policy: a policy, then one request vector. The policies, in the target's input format
 * (fuzz_policy.c, build_rule()), one byte per field unless said otherwise:
 *   - three rules: allow role operator holding registers 0..99 with values 0..500; deny writes
 *     of coils to everyone with exception 02; allow the read-only preset from 10.0.0.0/8;
 *   - no rule at all (deny everything);
 *   - two rules: drop FC 8/01 on unit 1 for everyone; allow the read-write preset to role
 *     viewer over TLS on the device and FIFOs 0..255.
 * The request goes to unit 1, from role operator over TLS from 10.1.2.3 (the first two
 * policies) or from role viewer over TLS from no known address (the third).
 */
static int policy_seeds(const char *outdir) {
    static const uint8_t operator_holding[] = {
        3,                                  /* rules */
        0x00, 0x08, 0,                      /* allow; one role: operator */
        0x00, 0x00,                         /* every unit; every function, both accesses */
        0x04, 1,    0x00, 0x00, 0x00, 0x63, /* holding registers, one range: 0..99 */
        0x01, 0x00, 0x00, 0x01, 0xF4,       /* values 0..500 */
        0x01, 0x03, 0x00, 0x80,             /* deny; any role or none; every unit; writes */
        0x01, 0,                            /* coils, every address */
        0x00, 0x02,                         /* no value limit; exception 02 */
        0x00, 0x30, 0,                      /* allow; one source: 10.0.0.0/8 */
        0x00, 0x01, 0x00, 0x00,             /* every unit; read-only preset; no tables */
    };
    static const uint8_t deny_all[] = {0};
    static const uint8_t restart_and_viewer[] = {
        2,    0x02, 0x03, 0x01, 1,    1,    /* drop; anyone; unit 1..1 */
        0x15, 7,                            /* one function, with diagnostics: FC 8 */
        0x00, 0x00, 0x02,                   /* sub-function 01 */
        0x00, 0x00,                         /* no tables, no value limit */
        0x00, 0x50, 1,                      /* allow; role viewer; TLS only */
        0x00, 0x02,                         /* every unit; read-write preset */
        0x60, 1,    0x00, 0x00, 0x00, 0xFF, /* FIFOs 0..255, and the device */
        0x00,
    };
    static const struct {
        const uint8_t *bytes;
        size_t length;
        uint8_t identity; /* role, TLS, address, explain: see identity_of() */
    } policies[] = {
        {operator_holding, sizeof operator_holding, 0x19},
        {deny_all, sizeof deny_all, 0x19},
        {restart_and_viewer, sizeof restart_and_viewer, 0x0A},
    };
    size_t written = 0;
    for (size_t i = 0; i < vector_count; i++) {
        const struct vector *vector = &vectors[i];
        if (vector->kind != VECTOR_REQUEST_PDU)
            continue;
        size_t which = written++ % (sizeof policies / sizeof policies[0]);
        struct seed seed = {.length = 0};
        put(&seed, policies[which].bytes, policies[which].length);
        put_byte(&seed, 1);
        put_byte(&seed, policies[which].identity);
        put_byte(&seed, (uint8_t)vector->length);
        put(&seed, vector->bytes, vector->length);
        if (write_seed(outdir, "fuzz_policy", vector->name, &seed) != 0)
            return -1;
    }
    return 0;
}

/* One MBAP frame: transaction id, protocol 0, length, unit, PDU. */
static void put_frame(struct seed *seed, uint16_t transaction_id, uint8_t unit_id,
                      const uint8_t *pdu, size_t length) {
    uint8_t header[7] = {(uint8_t)(transaction_id >> 8), (uint8_t)transaction_id, 0,      0,
                         (uint8_t)((length + 1) >> 8),   (uint8_t)(length + 1),   unit_id};
    put(seed, header, sizeof header);
    put(seed, pdu, length);
}

/*
 * fuzz_server: each MBAP stream vector as it is; each request vector for unit 1 followed by
 * reads of what writes change (holding registers 0..124, coils 0..255); and every request
 * vector in one stream, to units 1, 7, 255 and 9 (which does not exist) in turn.
 */
static int server_seeds(const char *outdir) {
    static const uint8_t read_back[][5] = {{0x03, 0x00, 0x00, 0x00, 0x7D},
                                           {0x01, 0x00, 0x00, 0x01, 0x00}};
    static const uint8_t unit_ids[] = {1, 7, 255, 9};
    struct seed all = {.length = 0};
    size_t requests = 0;
    for (size_t i = 0; i < vector_count; i++) {
        const struct vector *vector = &vectors[i];
        struct seed seed = {.length = 0};
        if (vector->kind == VECTOR_MBAP_STREAM) {
            put(&seed, vector->bytes, vector->length);
            if (write_seed(outdir, "fuzz_server", vector->name, &seed) != 0)
                return -1;
            continue;
        }
        if (vector->kind != VECTOR_REQUEST_PDU)
            continue;
        put_frame(&seed, 1, 1, vector->bytes, vector->length);
        for (size_t k = 0; k < sizeof read_back / sizeof read_back[0]; k++)
            put_frame(&seed, (uint16_t)(2 + k), 1, read_back[k], sizeof read_back[k]);
        if (write_seed(outdir, "fuzz_server", vector->name, &seed) != 0)
            return -1;
        put_frame(&all, (uint16_t)requests, unit_ids[requests % sizeof unit_ids], vector->bytes,
                  vector->length);
        requests++;
    }
    return write_seed(outdir, "fuzz_server", "every-request-to-four-units", &all);
}

/* The response vector answering a request vector: "response-X" for "request-X", or NULL. */
static const struct vector *answer_of(const struct vector *request) {
    const char *suffix = request->name + strlen("request-");
    for (size_t i = 0; i < vector_count; i++)
        if (vectors[i].kind == VECTOR_RESPONSE_PDU &&
            strncmp(vectors[i].name, "response-", 9) == 0 &&
            strcmp(vectors[i].name + 9, suffix) == 0)
            return &vectors[i];
    return NULL;
}

static void put_pdu(struct seed *seed, const struct vector *vector) {
    put_byte(seed, (uint8_t)vector->length);
    put(seed, vector->bytes, vector->length);
}

/*
 * fuzz_client and fuzz_gateway: each request vector that has a response vector, in their input
 * formats (see the top of fuzz_client.c and fuzz_gateway.c), one action byte each:
 *   - client: two such requests for unit 1, two in flight; the device answers the second, then
 *     the first, then the first again (a duplicate), and the client settles;
 *   - gateway: clients 0 and 1 send the request to front units 1 and 2 (the device's units 1
 *     and 9); the device answers the second, then the first; client 2 asks front unit 3 (its
 *     backend refuses connections) and client 0 unit 4 (no route).
 */
static int exchange_seeds(const char *outdir) {
    for (size_t i = 0; i < vector_count; i++) {
        const struct vector *request = &vectors[i];
        const struct vector *response =
            request->kind == VECTOR_REQUEST_PDU ? answer_of(request) : NULL;
        if (response == NULL)
            continue;
        struct seed client = {.length = 0};
        put_byte(&client, 0x05); /* two requests, two in flight */
        for (int k = 0; k < 2; k++) {
            put_byte(&client, 1); /* unit */
            put_byte(&client, 0); /* the long deadline */
            put_pdu(&client, request);
        }
        static const uint8_t references[] = {0x00, 0x01, 0x01};
        for (size_t k = 0; k < sizeof references; k++) {
            put_byte(&client, 0); /* frame */
            put_byte(&client, references[k]);
            put_byte(&client, 0); /* the request's unit */
            put_pdu(&client, response);
        }
        put_byte(&client, 2); /* settle */
        if (write_seed(outdir, "fuzz_client", request->name, &client) != 0)
            return -1;

        struct seed gateway = {.length = 0};
        put_byte(&gateway, 0x01); /* two in flight, the long deadline */
        for (int k = 0; k < 2; k++) {
            put_byte(&gateway, 0); /* front */
            put_byte(&gateway, (uint8_t)k);
            put_byte(&gateway, (uint8_t)k); /* front units 1, 2 */
            put_pdu(&gateway, request);
        }
        put_byte(&gateway, 3); /* settle */
        for (int k = 0; k < 2; k++) {
            put_byte(&gateway, 1); /* frame */
            put_byte(&gateway, (uint8_t)k);
            put_byte(&gateway, 0); /* the request's device unit */
            put_pdu(&gateway, response);
        }
        static const uint8_t others[][2] = {{2, 2}, {0, 3}}; /* client, unit selector */
        for (size_t k = 0; k < sizeof others / sizeof others[0]; k++) {
            put_byte(&gateway, 0);
            put_byte(&gateway, others[k][0]);
            put_byte(&gateway, others[k][1]);
            put_pdu(&gateway, request);
        }
        put_byte(&gateway, 3);
        if (write_seed(outdir, "fuzz_gateway", request->name, &gateway) != 0)
            return -1;
    }
    return 0;
}

int main(int argc, char **argv) {
    if (argc != 2) {
        fprintf(stderr, "usage: %s OUTDIR\n", argv[0]);
        return 2;
    }
    const char *outdir = argv[1];
    size_t seeds[TARGET_COUNT] = {0};
    char path[4096];

    if (make_directory(outdir) != 0)
        return 1;
    for (size_t target = 0; target < TARGET_COUNT; target++) {
        snprintf(path, sizeof path, "%s/%s", outdir, targets[target]);
        if (make_directory(path) != 0)
            return 1;
    }
    for (size_t target = 0; target < DERIVED_COUNT; target++) {
        snprintf(path, sizeof path, "%s/%s", outdir, derived_targets[target]);
        if (make_directory(path) != 0)
            return 1;
    }
    for (size_t i = 0; i < vector_count; i++) {
        const struct vector *vector = &vectors[i];
        if ((size_t)vector->kind >= TARGET_COUNT || targets[vector->kind] == NULL) {
            fprintf(stderr, "make_corpus: vector %zu has an unknown kind %d\n", i,
                    (int)vector->kind);
            return 1;
        }
        if (!name_is_usable(vector->name)) {
            fprintf(stderr, "make_corpus: vector %zu has no usable file name\n", i);
            return 1;
        }
        for (size_t j = 0; j < i; j++) {
            if (vectors[j].kind == vector->kind && strcmp(vectors[j].name, vector->name) == 0) {
                fprintf(stderr, "make_corpus: two %s vectors are named %s\n", targets[vector->kind],
                        vector->name);
                return 1;
            }
        }
        snprintf(path, sizeof path, "%s/%s", outdir, targets[vector->kind]);
        if (write_file(path, vector) != 0)
            return 1;
        seeds[vector->kind]++;
    }
    if (policy_seeds(outdir) != 0 || server_seeds(outdir) != 0 || exchange_seeds(outdir) != 0)
        return 1;
    for (size_t target = 0; target < TARGET_COUNT; target++)
        if (seeds[target] == 0)
            fprintf(stderr, "make_corpus: warning: no seed for %s\n", targets[target]);
    printf("make_corpus: %zu seeds written to %s\n", vector_count, outdir);
    return 0;
}
