/* SPDX-License-Identifier: MIT */
/*
 * The non-blocking client (mb_async, client.h) against a hostile device: the gateway's backends
 * are such clients, so whatever a compromised device sends must neither crash them nor reach
 * the wrong request. One loop, one thread: the harness is the device, on the other end of the
 * client's connection, and sends what the input says.
 *
 * Input: a header byte (how many requests, 1..4; the in-flight limit, 1, 2, 4 or 16), then per
 * request its unit id, a flag byte (bit 0: a deadline of 3 ms instead of 1 s) and its PDU (a
 * length byte and the bytes, sent as given, decodable or not); then the device's script, one
 * action after another until the input ends:
 *   0 frame   a reference byte naming a request the device has received (its transaction id,
 *             or a neighbour of it) or, with 0x80 set, a raw transaction id in the next two
 *             bytes; a unit byte (0: the request's unit); a PDU (length byte and bytes)
 *   1 raw     a length byte and that many bytes, sent as they are (split frames, garbage)
 *   2 settle  let the client read what was sent
 *   3 close   the device hangs up
 *   4 wait    until every request with a 3 ms deadline is past it (once per input)
 *   5 submit  one more request: the next one of the list again
 * At the end the device hangs up, and the client is destroyed.
 *
 * Properties:
 *   - every request accepted by mb_async_submit() completes exactly once, with status 0 or a
 *     documented error (MB_ETIMEDOUT, MB_ECLOSED, MB_EMISMATCH, a PDU decoding error,
 *     MB_ECANCELED), and its result carries the PDU and unit id submitted;
 *   - the device receives the requests as submitted, in order, each at most once, each with a
 *     transaction id of its own, the one its result carries;
 *   - status 0: the device sent a frame with exactly this request's transaction id and unit id
 *     whose PDU is the response handed over, and the response answers the request
 *     (mb_response_matches(), or an exception to its function code): never an answer to
 *     another request; MB_EMISMATCH or a decoding error: a frame with this request's
 *     transaction id came, and the offending PDU is its PDU;
 *   - a frame reported as unmatched carries a transaction id the device did send;
 *   - once the device has hung up, everything completes at once; nothing leaks, nothing hangs.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_net.h"
#include "mbsec/client.h"
#include "mbsec/loop.h"
#include "mbsec/mbap.h"
#include "mbsec/pdu.h"

#define MAX_REQUESTS 4
#define MAX_SUBMITTED 32
#define SHORT_DEADLINE_MS 3
#define LONG_DEADLINE_MS 1000
#define DEADLINE_MS 2000 /* the whole run */

struct request {
    uint8_t unit_id;
    int short_deadline;
    uint8_t pdu[256]; /* up to 255 bytes: longer than a PDU is refused with MB_EINVAL */
    size_t length;
};

struct run;

/* A request as submitted, and how it ended. */
struct submitted {
    struct run *run;
    struct request request;
    int accepted;    /* mb_async_submit() returned 0 */
    int completions; /* callbacks: must end at 1 */
    int status;
    uint16_t transaction_id;
    uint64_t submitted_ms;
};

/* A request frame the device received. */
struct wire_frame {
    uint16_t transaction_id;
    uint8_t unit_id;
    uint8_t pdu[MB_PDU_MAX];
    size_t length;
};

struct device_frame {
    uint16_t transaction_id;
    uint8_t unit_id;
    const uint8_t *pdu; /* into the device's stream log */
    size_t length;
};

struct run {
    struct mb_loop *loop;
    struct mb_async *client;
    int device; /* the device's end, -1 once it hung up */
    struct submitted submitted[MAX_SUBMITTED];
    size_t submitted_count;
    struct fuzz_log received;              /* bytes the device received */
    size_t received_framed;                /* of them, framed already */
    struct fuzz_log sent;                  /* bytes the device sent */
    struct wire_frame wire[MAX_SUBMITTED]; /* the request frames the device received */
    size_t wire_count;
    size_t progress; /* callbacks and bytes, to tell when the loop has settled */
};

/* ---- what the device sent, framed as the client must frame it ---- */

/* The frames of the device's stream so far (up to a broken length, which ends it). */
static size_t device_frames(const struct run *run, struct device_frame *frames, size_t capacity) {
    const uint8_t *data = run->sent.bytes;
    size_t size = run->sent.length, offset = 0, count = 0;
    while (size - offset >= 6 && count < capacity) {
        uint16_t length = mb_get_u16(data + offset + 4);
        if (length < 2 || length > 254 || size - offset < 6u + length)
            break;
        if (mb_get_u16(data + offset + 2) == 0) {
            frames[count].transaction_id = mb_get_u16(data + offset);
            frames[count].unit_id = data[offset + 6];
            frames[count].pdu = data + offset + 7;
            frames[count].length = (size_t)length - 1;
            count++;
        }
        offset += 6u + length;
    }
    return count;
}

/* 1 if the device sent a frame with this transaction id (and unit id and PDU, when given). */
static int device_sent(const struct run *run, uint16_t transaction_id, const uint8_t *unit_id,
                       const uint8_t *pdu, size_t length) {
    struct device_frame *frames = calloc(run->sent.length / 8 + 1, sizeof *frames);
    FUZZ_CHECK(frames != NULL);
    size_t count = device_frames(run, frames, run->sent.length / 8 + 1);
    int found = 0;
    for (size_t i = 0; i < count && !found; i++)
        found = frames[i].transaction_id == transaction_id &&
                (unit_id == NULL || frames[i].unit_id == *unit_id) &&
                (pdu == NULL ||
                 (frames[i].length == length && memcmp(frames[i].pdu, pdu, length) == 0));
    free(frames);
    return found;
}

/* ---- the client's callbacks ---- */

static int documented(int status) {
    return status == 0 || status == MB_ETIMEDOUT || status == MB_ECLOSED ||
           status == MB_EMISMATCH || status == MB_ECANCELED ||
           (status <= MB_ETRUNCATED && status >= MB_EEXCEPTION_CODE);
}

static void on_done(void *data, const struct mb_async_result *result) {
    struct submitted *submitted = data;
    struct run *run = submitted->run;
    const struct request *request = &submitted->request;
    run->progress++;
    submitted->completions++;
    submitted->status = result->status;
    submitted->transaction_id = result->transaction_id;
    FUZZ_CHECK(submitted->completions == 1);
    FUZZ_CHECK(documented(result->status));
    FUZZ_CHECK(result->unit_id == request->unit_id);
    FUZZ_CHECK(result->request_length == request->length &&
               memcmp(result->request_pdu, request->pdu, request->length) == 0);
    FUZZ_CHECK(result->detail != NULL && fuzz_one_line(result->detail, 4096));
    if (result->status == 0) {
        FUZZ_CHECK(result->response != NULL && result->response_pdu != NULL);
        FUZZ_CHECK(device_sent(run, result->transaction_id, &request->unit_id, result->response_pdu,
                               result->response_length));
        FUZZ_CHECK((result->response_pdu[0] & ~MB_EXCEPTION_BIT) == request->pdu[0]);
        struct mb_response response;
        FUZZ_CHECK(mb_response_decode(result->response_pdu, result->response_length, &response) ==
                   0);
        FUZZ_CHECK(response.exception == result->response->exception);
        struct mb_request decoded;
        if (response.exception == 0 &&
            mb_request_decode(request->pdu, request->length, &decoded) == 0)
            FUZZ_CHECK(mb_response_matches(&decoded, &response) == 0);
    } else if (result->status == MB_EMISMATCH ||
               (result->status <= MB_ETRUNCATED && result->status >= MB_EEXCEPTION_CODE)) {
        FUZZ_CHECK(result->response_pdu != NULL);
        FUZZ_CHECK(device_sent(run, result->transaction_id, NULL, result->response_pdu,
                               result->response_length));
    }
}

static void on_unmatched(void *data, uint16_t transaction_id, uint8_t unit_id) {
    struct run *run = data;
    run->progress++;
    FUZZ_CHECK(device_sent(run, transaction_id, &unit_id, NULL, 0));
}

/* ---- the device's side ---- */

/* Takes the request frames that have arrived. Which request each is, is settled at the end,
 * by the transaction id its result carries (check_wire): the device's side may read a request
 * after its answer was taken, or after it timed out. */
static void device_receive(struct run *run) {
    if (run->device < 0)
        return;
    int ended = 0;
    run->progress += fuzz_receive(run->device, &run->received, &ended);
    const uint8_t *data = run->received.bytes;
    size_t size = run->received.length;
    while (size - run->received_framed >= 7) {
        const uint8_t *frame = data + run->received_framed;
        uint16_t length = mb_get_u16(frame + 4);
        FUZZ_CHECK(mb_get_u16(frame + 2) == 0 && length >= 2 && length <= 254);
        if (size - run->received_framed < 6u + length)
            break;
        /* Never more frames than requests accepted, each with a transaction id of its own
         * (ids advance with every request: a run is far too short for them to wrap). */
        FUZZ_CHECK(run->wire_count < run->submitted_count);
        struct wire_frame *wire = &run->wire[run->wire_count++];
        wire->transaction_id = mb_get_u16(frame);
        wire->unit_id = frame[6];
        wire->length = (size_t)length - 1;
        memcpy(wire->pdu, frame + 7, wire->length);
        for (size_t i = 0; i + 1 < run->wire_count; i++)
            FUZZ_CHECK(run->wire[i].transaction_id != wire->transaction_id);
        run->received_framed += 6u + length;
    }
}

/* Once every request has completed: each frame the device received is one accepted request,
 * one whose result carries its transaction id, unit id and PDU, each at most once, in the
 * order they were submitted. (A request that failed while still queued carries transaction id
 * 0 and never went out; taking the first fitting request after the previous frame's keeps that
 * from mattering when a real one has id 0 too.) */
static void check_wire(struct run *run) {
    size_t next = 0;
    for (size_t f = 0; f < run->wire_count; f++) {
        const struct wire_frame *wire = &run->wire[f];
        struct submitted *request = NULL;
        for (; next < run->submitted_count && request == NULL; next++) {
            struct submitted *candidate = &run->submitted[next];
            if (candidate->accepted && candidate->transaction_id == wire->transaction_id &&
                candidate->request.unit_id == wire->unit_id &&
                candidate->request.length == wire->length &&
                memcmp(candidate->request.pdu, wire->pdu, wire->length) == 0)
                request = candidate;
        }
        FUZZ_CHECK(request != NULL);
    }
}

static void device_send(struct run *run, const void *bytes, size_t length) {
    if (run->device < 0 || length == 0)
        return;
    fuzz_log_append(&run->sent, bytes, length);
    if (fuzz_send_all(run->device, bytes, length) != 0) {
        close(run->device);
        run->device = -1;
    }
}

static void device_hang_up(struct run *run) {
    if (run->device >= 0) {
        device_receive(run);
        close(run->device);
        run->device = -1;
    }
}

/* Runs the loop until nothing moves any more for a few turns. */
static void settle(struct run *run, uint64_t deadline) {
    int idle = 0;
    while (idle < 3) {
        FUZZ_CHECK(fuzz_now_ms() < deadline);
        size_t before = run->progress;
        mb_loop_run_once(run->loop, 0);
        device_receive(run);
        idle = run->progress == before ? idle + 1 : 0;
    }
}

static int submit(struct run *run, const struct request *request) {
    if (run->submitted_count == MAX_SUBMITTED)
        return -1;
    struct submitted *submitted = &run->submitted[run->submitted_count++];
    submitted->run = run;
    submitted->request = *request;
    submitted->submitted_ms = fuzz_now_ms();
    int rc = mb_async_submit(run->client, request->unit_id, request->pdu, request->length,
                             request->short_deadline ? SHORT_DEADLINE_MS : LONG_DEADLINE_MS,
                             on_done, submitted);
    FUZZ_CHECK(rc == 0 || rc == MB_ELIMIT || rc == MB_ECLOSED ||
               (rc == MB_EINVAL && request->length > MB_PDU_MAX));
    FUZZ_CHECK(request->length <= MB_PDU_MAX || rc == MB_EINVAL);
    submitted->accepted = rc == 0;
    /* The callback never runs inside mb_async_submit(). */
    FUZZ_CHECK(submitted->completions == 0);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int listener = -1;
    static struct fuzz_address address;
    if (listener < 0)
        listener = fuzz_listen("client", &address);

    struct fuzz_input input;
    fuzz_input_init(&input, data, size);
    uint8_t header = fuzz_u8(&input);
    static const uint32_t in_flight[] = {1, 2, 4, 16};
    struct request requests[MAX_REQUESTS];
    size_t request_count = (size_t)(header & 3) + 1;
    for (size_t i = 0; i < request_count; i++) {
        struct request *request = &requests[i];
        request->unit_id = fuzz_u8(&input);
        request->short_deadline = fuzz_u8(&input) & 1;
        const uint8_t *bytes;
        size_t wanted = fuzz_u8(&input);
        request->length = fuzz_take(&input, wanted > 0 ? wanted : 1, &bytes);
        memcpy(request->pdu, bytes, request->length);
        if (request->length == 0) {
            request->pdu[0] = MB_FC_READ_EXCEPTION_STATUS;
            request->length = 1;
        }
    }

    struct run *run = calloc(1, sizeof *run);
    FUZZ_CHECK(run != NULL);
    run->device = -1;
    uint64_t deadline = fuzz_now_ms() + DEADLINE_MS;
    FUZZ_CHECK(mb_loop_create(&run->loop) == 0);
    struct mb_async_config config = {
        .max_in_flight = in_flight[(header >> 2) & 3],
        .max_queued = 8,
        .on_unmatched = on_unmatched,
        .state_data = run,
    };
    FUZZ_CHECK(mb_async_create(run->loop, &config, (const struct sockaddr *)&address.un,
                               address.length, &run->client) == 0);
    for (size_t i = 0; i < request_count; i++)
        submit(run, &requests[i]);
    /* The client connects from the loop; the device takes the connection. */
    while (run->device < 0) {
        FUZZ_CHECK(fuzz_now_ms() < deadline);
        mb_loop_run_once(run->loop, 0);
        run->device = fuzz_accept(listener);
    }
    settle(run, deadline);

    int waited = 0;
    size_t resubmit = 0;
    while (fuzz_input_left(&input) > 0) {
        uint8_t action = fuzz_u8(&input) % 6;
        if (action == 0) {
            uint8_t reference = fuzz_u8(&input);
            uint16_t transaction_id;
            uint8_t unit_id = 0;
            if ((reference & 0x80) || run->wire_count == 0) {
                transaction_id = fuzz_u16(&input);
            } else {
                static const int deltas[] = {0, 1, -1, 256};
                const struct wire_frame *wire =
                    &run->wire[run->wire_count - 1 - (reference & 7) % run->wire_count];
                transaction_id = (uint16_t)(wire->transaction_id + deltas[(reference >> 3) & 3]);
                unit_id = wire->unit_id;
            }
            uint8_t unit = fuzz_u8(&input);
            if (unit != 0)
                unit_id = unit;
            const uint8_t *pdu;
            size_t length = fuzz_take(&input, fuzz_u8(&input), &pdu);
            uint8_t frame[MB_MBAP_HEADER_SIZE + 255];
            mb_put_u16(frame, transaction_id);
            mb_put_u16(frame + 2, 0);
            mb_put_u16(frame + 4, (uint16_t)(length + 1));
            frame[6] = unit_id;
            memcpy(frame + 7, pdu, length);
            device_send(run, frame, 7 + length);
        } else if (action == 1) {
            const uint8_t *bytes;
            size_t length = fuzz_take(&input, fuzz_u8(&input), &bytes);
            device_send(run, bytes, length);
        } else if (action == 2) {
            settle(run, deadline);
        } else if (action == 3) {
            device_hang_up(run);
            settle(run, deadline);
        } else if (action == 4 && !waited) {
            waited = 1;
            uint64_t until = 0;
            for (size_t i = 0; i < run->submitted_count; i++)
                if (run->submitted[i].request.short_deadline &&
                    run->submitted[i].submitted_ms + SHORT_DEADLINE_MS + 1 > until)
                    until = run->submitted[i].submitted_ms + SHORT_DEADLINE_MS + 1;
            while (fuzz_now_ms() < until) {
                mb_loop_run_once(run->loop, 1);
                device_receive(run);
            }
            settle(run, deadline);
        } else if (action == 5) {
            submit(run, &requests[resubmit++ % request_count]);
        }
    }
    settle(run, deadline);
    device_hang_up(run);
    settle(run, deadline);
    /* With the device gone, nothing is left outstanding. */
    FUZZ_CHECK(mb_async_outstanding(run->client) == 0);
    FUZZ_CHECK(mb_async_state(run->client) == MB_ASYNC_CLOSED);
    for (size_t i = 0; i < run->submitted_count; i++)
        FUZZ_CHECK(run->submitted[i].completions == (run->submitted[i].accepted ? 1 : 0));
    check_wire(run);
    mb_async_destroy(run->client);
    mb_loop_destroy(run->loop);
    fuzz_log_free(&run->received);
    fuzz_log_free(&run->sent);
    free(run);
    return 0;
}
