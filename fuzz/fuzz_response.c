/* SPDX-License-Identifier: MIT */
/*
 * Response PDUs: mb_response_decode() against any bytes. Properties:
 *   - it returns 0 or a documented decoding error;
 *   - on success mb_response_encode() gives back exactly the input, into a buffer of exactly
 *     that size, and refuses a buffer one byte smaller with MB_ENOSPC;
 *   - FC 43/14 objects and FC 20/21 sub-responses walk to the end inside the PDU;
 *   - with the first half of the input decoded as a request, mb_response_matches() (against the
 *     whole input and against the second half as responses) returns 0 or MB_EMISMATCH: always
 *     MB_EMISMATCH for another function code, always 0 for an exception response to the same.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_pdu.h"
#include "mbsec/pdu.h"

static void check_round_trip(const struct mb_response *response, const uint8_t *pdu,
                             size_t length) {
    uint8_t *encoded = fuzz_buffer(length);
    FUZZ_CHECK(mb_response_encode(response, encoded, length) == (int)length);
    FUZZ_CHECK(memcmp(encoded, pdu, length) == 0);
    free(encoded);

    uint8_t *short_buffer = fuzz_buffer(length - 1);
    FUZZ_CHECK(mb_response_encode(response, short_buffer, length - 1) == MB_ENOSPC);
    free(short_buffer);
}

static void walk_device_objects(const struct mb_response *response, const uint8_t *pdu,
                                size_t length) {
    struct mb_device_object object;
    size_t offset = 0, walked = 0;
    int rc;
    FUZZ_CHECK(
        response->device_id.objects_length == 0 ||
        fuzz_within(response->device_id.objects, response->device_id.objects_length, pdu, length));
    while ((rc = mb_device_objects_next(response, &offset, &object)) == 1) {
        walked++;
        FUZZ_CHECK(walked <= response->device_id.object_count);
        FUZZ_CHECK(offset <= response->device_id.objects_length);
        FUZZ_CHECK(object.length == 0 ||
                   fuzz_within(object.value, object.length, response->device_id.objects,
                               response->device_id.objects_length));
    }
    FUZZ_CHECK(rc == 0);
    FUZZ_CHECK(walked == response->device_id.object_count);
    FUZZ_CHECK(offset == response->device_id.objects_length);
}

static void check_decoded(const struct mb_response *response, const uint8_t *pdu, size_t length) {
    if (response->exception != 0) {
        FUZZ_CHECK(length == 2);
        FUZZ_CHECK(pdu[0] == (response->function | MB_EXCEPTION_BIT));
        FUZZ_CHECK(pdu[1] == response->exception);
    } else {
        FUZZ_CHECK(pdu[0] == response->function);
    }
    check_round_trip(response, pdu, length);
    if (response->exception != 0)
        return;
    if (response->function == MB_FC_READ_FILE_RECORD) {
        FUZZ_CHECK(response->file.layout == MB_FILE_READ_RESPONSE);
        fuzz_walk_file_records(&response->file, pdu, length, 1);
    } else if (response->function == MB_FC_WRITE_FILE_RECORD) {
        FUZZ_CHECK(response->file.layout == MB_FILE_WRITE);
        fuzz_walk_file_records(&response->file, pdu, length, 1);
    } else if (response->function == MB_FC_ENCAPSULATED_INTERFACE && pdu[1] == MB_MEI_DEVICE_ID) {
        walk_device_objects(response, pdu, length);
    }
}

static void check_matches(const struct mb_request *request, const struct mb_response *response) {
    int matches = mb_response_matches(request, response);
    FUZZ_CHECK(matches == 0 || matches == MB_EMISMATCH);
    if (response->function != request->function)
        FUZZ_CHECK(matches == MB_EMISMATCH);
    else if (response->exception != 0)
        FUZZ_CHECK(matches == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *pdu = fuzz_copy(data, size);
    struct mb_response response;
    memset(&response, 0, sizeof response);

    int decoded = mb_response_decode(pdu, size, &response);
    FUZZ_CHECK(decoded == 0 || decoded == MB_EEXCEPTION_CODE || fuzz_is_pdu_decode_error(decoded));
    if (size == 0 || size > MB_PDU_MAX)
        FUZZ_CHECK(decoded == MB_EINVAL);
    if (decoded == 0)
        check_decoded(&response, pdu, size);

    size_t half = size / 2;
    uint8_t *request_pdu = fuzz_copy(data, half);
    uint8_t *response_pdu = fuzz_copy(data + half, size - half);
    struct mb_request request;
    struct mb_response second_half;
    memset(&request, 0, sizeof request);
    memset(&second_half, 0, sizeof second_half);
    if (mb_request_decode(request_pdu, half, &request) == 0) {
        if (decoded == 0)
            check_matches(&request, &response);
        if (mb_response_decode(response_pdu, size - half, &second_half) == 0) {
            check_decoded(&second_half, response_pdu, size - half);
            check_matches(&request, &second_half);
        }
    }

    free(response_pdu);
    free(request_pdu);
    free(pdu);
    return 0;
}
