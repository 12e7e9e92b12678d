/* SPDX-License-Identifier: MIT */
/*
 * Well-formed byte vectors, written out in full, shared by the test suite (round trips, guard
 * page runs) and by fuzz/make_corpus (the seed corpora of the fuzz targets).
 */
#ifndef MBSEC_TESTS_VECTORS_H
#define MBSEC_TESTS_VECTORS_H

#include <stddef.h>
#include <stdint.h>

enum vector_kind {
    VECTOR_REQUEST_PDU,  /* decodes with mb_request_decode() */
    VECTOR_RESPONSE_PDU, /* decodes with mb_response_decode() */
    VECTOR_MBAP_STREAM,  /* one or more MBAP frames back to back */
    VECTOR_RTU_FRAME,    /* a complete RTU frame with a correct CRC */
    VECTOR_ASCII_FRAME,  /* a complete ASCII frame, ':' to LF */
};

struct vector {
    const char *name; /* unique, usable as a file name */
    enum vector_kind kind;
    const uint8_t *bytes;
    size_t length;
};

extern const struct vector vectors[];
extern const size_t vector_count;

#endif
