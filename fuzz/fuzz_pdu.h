/* SPDX-License-Identifier: MIT */
/* Checks shared by the PDU fuzz targets (requests, responses, and the PDUs inside serial frames).
 */
#ifndef MBSEC_FUZZ_FUZZ_PDU_H
#define MBSEC_FUZZ_FUZZ_PDU_H

#include <stddef.h>
#include <stdint.h>
#include <string.h>

#include "fuzz.h"
#include "mbsec/pdu.h"

/* 1 if `error` is one the PDU decoders document. */
static inline int fuzz_is_pdu_decode_error(int error) {
    switch (error) {
    case MB_EINVAL:
    case MB_ETRUNCATED:
    case MB_ELENGTH:
    case MB_EQUANTITY:
    case MB_EBYTECOUNT:
    case MB_EVALUE:
    case MB_EFUNCTION:
    case MB_ESUBFUNCTION:
    case MB_EMEI:
        return 1;
    default:
        return 0;
    }
}

/*
 * Walks decoded file sub-requests or sub-responses to the end: each record lies inside the PDU,
 * the walk yields exactly `count` records and ends cleanly, and appending the records again
 * rebuilds the same bytes. Responses must carry reference type 6; in requests another type is
 * the server's to answer (exception 02, mb_request_validate()), so the decoder lets it through.
 */
static inline void fuzz_walk_file_records(const struct mb_file_records *records, const uint8_t *pdu,
                                          size_t pdu_length, int is_response) {
    struct mb_file_record record;
    uint8_t rebuilt[MB_PDU_MAX];
    size_t offset = 0, used = 0, walked = 0;
    int rc, rebuildable = 1;

    FUZZ_CHECK(records->length == 0 ||
               fuzz_within(records->data, records->length, pdu, pdu_length));
    while ((rc = mb_file_records_next(records, &offset, &record)) == 1) {
        walked++;
        FUZZ_CHECK(walked <= records->count);
        FUZZ_CHECK(offset <= records->length);
        if (is_response)
            FUZZ_CHECK(record.reference_type == MB_FILE_REFERENCE_TYPE);
        if (records->layout == MB_FILE_READ_REQUEST) {
            FUZZ_CHECK(record.data == NULL);
        } else {
            FUZZ_CHECK(record.data != NULL);
            FUZZ_CHECK(fuzz_within(record.data, (size_t)record.record_length * 2, records->data,
                                   records->length));
        }
        if (records->layout == MB_FILE_READ_RESPONSE)
            FUZZ_CHECK(record.file_number == 0 && record.record_number == 0);
        if (record.record_length == 0) {
            /* The decoders let a record of 0 registers through (a server answers such a
             * request with 02); mb_file_records_append() refuses to build one. */
            FUZZ_CHECK(mb_file_records_append(records->layout, &record, rebuilt, sizeof rebuilt,
                                              &used) == MB_EINVAL);
            rebuildable = 0;
        } else {
            FUZZ_CHECK(mb_file_records_append(records->layout, &record, rebuilt, sizeof rebuilt,
                                              &used) == 0);
        }
    }
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(walked == records->count);
    FUZZ_CHECK(offset == records->length);
    if (rebuildable) {
        FUZZ_CHECK(used == records->length);
        FUZZ_CHECK(used == 0 || memcmp(rebuilt, records->data, used) == 0);
    }
}

#endif
