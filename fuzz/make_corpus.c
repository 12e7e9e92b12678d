/* SPDX-License-Identifier: MIT */
/*
 * Writes the test suite's byte vectors (tests/vectors.c) as the fuzz targets' seed corpora:
 * OUTDIR/<target>/<vector name>, one file per vector, the target chosen by the vector's kind.
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

static int write_vector(const char *outdir, const struct vector *vector) {
    char path[4096];
    int length =
        snprintf(path, sizeof path, "%s/%s/%s", outdir, targets[vector->kind], vector->name);
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
        if (write_vector(outdir, vector) != 0)
            return 1;
        seeds[vector->kind]++;
    }
    for (size_t target = 0; target < TARGET_COUNT; target++)
        if (seeds[target] == 0)
            fprintf(stderr, "make_corpus: warning: no seed for %s\n", targets[target]);
    printf("make_corpus: %zu seeds written to %s\n", vector_count, outdir);
    return 0;
}
