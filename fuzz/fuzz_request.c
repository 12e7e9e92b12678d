/* SPDX-License-Identifier: MIT */
/*
 * Request PDUs: mb_request_decode() against any bytes. Properties:
 *   - it returns 0 or a documented decoding error;
 *   - on success mb_request_encode() gives back exactly the input, into a buffer of exactly
 *     that size, and refuses a buffer one byte smaller with MB_ENOSPC;
 *   - FC 20/21 sub-requests walk to the end and rebuild the same bytes;
 *   - mb_request_check() with extents that hold everything returns an exception code 0..3
 *     (MB_EINVAL only for an empty PDU): for a decoding error the exception
 *     mb_error_exception() names, for a decoded request what mb_request_validate() says,
 *     never 01 (but for FC 43 interfaces other than device identification, which no server
 *     can serve); and a request it accepts encodes back to the input.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_pdu.h"
#include "mbsec/pdu.h"
#include "mbsec/validate.h"

/* A server that supports every function code and whose tables cover every address. */
static const struct mb_extents *full_extents(void) {
    static struct mb_extents extents;
    static int ready;
    if (!ready) {
        memset(&extents, 0, sizeof extents);
        extents.coils = (struct mb_table_extent){.start = 0, .size = 65536};
        extents.discrete_inputs = (struct mb_table_extent){.start = 0, .size = 65536};
        extents.holding_registers = (struct mb_table_extent){.start = 0, .size = 65536};
        extents.input_registers = (struct mb_table_extent){.start = 0, .size = 65536};
        extents.files = 0xFFFF;
        extents.records_per_file = MB_FILE_MAX_RECORD + 1;
        for (unsigned function = 0; function <= 0xFF; function++)
            mb_extents_set_function(&extents, (uint8_t)function, 1);
        ready = 1;
    }
    return &extents;
}

/* Encoding `request` gives exactly pdu[0..length). */
static void check_round_trip(const struct mb_request *request, const uint8_t *pdu, size_t length) {
    uint8_t *encoded = fuzz_buffer(length);
    FUZZ_CHECK(mb_request_encode(request, encoded, length) == (int)length);
    FUZZ_CHECK(memcmp(encoded, pdu, length) == 0);
    free(encoded);

    uint8_t *short_buffer = fuzz_buffer(length - 1);
    FUZZ_CHECK(mb_request_encode(request, short_buffer, length - 1) == MB_ENOSPC);
    free(short_buffer);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *pdu = fuzz_copy(data, size);
    struct mb_request request;
    memset(&request, 0, sizeof request);

    int decoded = mb_request_decode(pdu, size, &request);
    FUZZ_CHECK(decoded == 0 || fuzz_is_pdu_decode_error(decoded));
    if (size == 0 || size > MB_PDU_MAX)
        FUZZ_CHECK(decoded == MB_EINVAL);
    if (decoded == 0) {
        FUZZ_CHECK(request.function == pdu[0]);
        check_round_trip(&request, pdu, size);
        if (request.function == MB_FC_READ_FILE_RECORD) {
            FUZZ_CHECK(request.file.layout == MB_FILE_READ_REQUEST);
            fuzz_walk_file_records(&request.file, pdu, size, 0);
        } else if (request.function == MB_FC_WRITE_FILE_RECORD) {
            FUZZ_CHECK(request.file.layout == MB_FILE_WRITE);
            fuzz_walk_file_records(&request.file, pdu, size, 0);
        }
    }

    struct mb_request checked;
    memset(&checked, 0, sizeof checked);
    int exception = mb_request_check(pdu, size, full_extents(), &checked);
    if (size == 0) {
        FUZZ_CHECK(exception == MB_EINVAL);
    } else {
        FUZZ_CHECK(exception >= 0 && exception <= 3);
        if (decoded < 0 && size <= MB_PDU_MAX)
            FUZZ_CHECK(exception == mb_error_exception(decoded));
        if (decoded < 0)
            FUZZ_CHECK(exception != 0);
        if (decoded == 0) {
            /* Of the encapsulated interfaces only device identification can be served. */
            if (request.function != MB_FC_ENCAPSULATED_INTERFACE ||
                request.mei.mei_type == MB_MEI_DEVICE_ID)
                FUZZ_CHECK(exception != MB_EX_ILLEGAL_FUNCTION);
            FUZZ_CHECK(exception == mb_request_validate(&request, full_extents()));
        }
        if (exception == 0)
            check_round_trip(&checked, pdu, size);
    }

    free(pdu);
    return 0;
}
