/* SPDX-License-Identifier: MIT */
/*
 * The server's request path as a remote peer reaches it: the input is the byte stream of one
 * client connection to an mb_server whose handler is the data model (mb_model_handle, with
 * pass_undecodable set, as `mbsec serve` runs it). One loop, one thread: the harness writes the
 * stream into its end of the connection and runs the loop until the server has answered
 * everything and closed (the harness shuts its sending side down at the end). The stream is
 * sent whole and again cut another way (byte by byte for short inputs, else sizes from the
 * input or pseudo-random ones, chosen by its first byte), each time to a fresh server and model.
 *
 * Properties:
 *   - the handler sees exactly the frames a reference framing of the stream finds (protocol id
 *     0; up to an MBAP length outside 2..254, which ends the stream), once each, in order, with
 *     their transaction id, unit id and PDU;
 *   - what comes back is exactly one frame per answer the handler gave, in the same order, with
 *     the request's transaction id and unit id: no frame answers a request twice, none answers
 *     one that was not sent, none is missing; then the connection closes;
 *   - the answer's function code is the request's, or it with 0x80; a normal answer comes only
 *     for a request that decodes, and matches it (mb_response_matches()); an unknown unit gets
 *     0B; a unit in listen-only mode (FC 8/04, per connection) answers nothing until FC 8/01,
 *     and every other request is answered;
 *   - the model changes only as the requests say: a reference copy of the holding registers,
 *     coils and file records, changed by each write (FC 5, 6, 15, 16, 21, 22, 23) that got a
 *     normal answer, is what reads (FC 1, 2, 3, 4, 20, 23, 24) return and what the model
 *     holds at the end; a normal answer never touches an address the unit does not have;
 *   - both cuttings give the same bytes back.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_net.h"
#include "mbsec/loop.h"
#include "mbsec/mbap.h"
#include "mbsec/model.h"
#include "mbsec/pdu.h"
#include "mbsec/server.h"
#include "mbsec/value.h"

#define DEADLINE_MS 2000
#define MAX_TABLE 1280 /* the largest coil or holding register table of the units below */
#define MAX_RECORDS 64 /* the most file records of a unit */

/* ---- the device: three units with tables of different places and sizes ---- */

/* Unit 1 covers the addresses of the specification's examples (the seeds), FIFO included. */
static const struct mb_fifo_config unit1_fifos[] = {{.address = 80, .capacity = 8},
                                                    {.address = 1246, .capacity = 31}};

static const struct mb_unit_config units[] = {
    {.unit_id = 1,
     .coils = {0, 256},
     .discrete_inputs = {0, 256},
     .holding_registers = {0, 1280},
     .input_registers = {0, 64},
     .files = 4,
     .records_per_file = 16,
     .fifos = unit1_fifos,
     .fifo_count = 2},
    {.unit_id = 7, .coils = {1000, 40}, .holding_registers = {100, 50}, .records_per_file = 1},
    {.unit_id = 255,
     .coils = {65530, 6},
     .discrete_inputs = {65535, 1},
     .holding_registers = {65500, 36},
     .input_registers = {65520, 16},
     .files = 1,
     .records_per_file = 4},
};
#define UNITS (sizeof units / sizeof units[0])

static int unit_index(uint8_t unit_id) {
    for (size_t i = 0; i < UNITS; i++)
        if (units[i].unit_id == unit_id)
            return (int)i;
    return -1;
}

/* The values the tables start with; discrete inputs and input registers never change. */
static uint16_t initial_register(size_t unit, size_t index) {
    return (uint16_t)(0x1111u * (unsigned)(unit + 1) + 7u * (unsigned)index);
}
static int initial_coil(size_t unit, size_t index) {
    return (index * 5 + unit) % 3 == 0;
}
static int discrete_input(size_t unit, size_t index) {
    return (index + unit) % 2;
}
static uint16_t input_register(size_t unit, size_t index) {
    return (uint16_t)(0x4000u + 0x100u * (unsigned)unit + (unsigned)index);
}

/* What the model should hold: changed by the writes it acknowledged. */
struct reference {
    uint16_t holding[UNITS][MAX_TABLE];
    uint8_t coils[UNITS][MAX_TABLE];
    uint16_t records[UNITS][MAX_RECORDS];
    int listen_only[UNITS];
};

static void reference_init(struct reference *reference) {
    memset(reference, 0, sizeof *reference);
    for (size_t u = 0; u < UNITS; u++) {
        for (size_t i = 0; i < units[u].holding_registers.size; i++)
            reference->holding[u][i] = initial_register(u, i);
        for (size_t i = 0; i < units[u].coils.size; i++)
            reference->coils[u][i] = (uint8_t)initial_coil(u, i);
    }
    /* Unit 1's FIFOs hold three values and none. */
    reference->holding[0][80] = 3;
    reference->holding[0][1246] = 0;
}

static struct mb_model *model_create(const struct reference *reference) {
    struct mb_model_config config;
    mb_model_default_config(&config);
    config.any_unit = 0;
    config.units = units;
    config.unit_count = UNITS;
    struct mb_model *model = NULL;
    char error[200];
    if (mb_model_create(&config, &model, error, sizeof error) != 0) {
        fprintf(stderr, "fuzz_server: %s\n", error);
        FUZZ_CHECK(0);
    }
    uint16_t values[MAX_TABLE];
    for (size_t u = 0; u < UNITS; u++) {
        const struct mb_unit_config *unit = &units[u];
        if (unit->holding_registers.size > 0)
            FUZZ_CHECK(mb_model_set(model, unit->unit_id, MB_TABLE_HOLDING_REGISTERS,
                                    unit->holding_registers.start,
                                    (uint16_t)unit->holding_registers.size,
                                    reference->holding[u]) == 0);
        for (size_t i = 0; i < unit->coils.size; i++)
            values[i] = reference->coils[u][i];
        if (unit->coils.size > 0)
            FUZZ_CHECK(mb_model_set(model, unit->unit_id, MB_TABLE_COILS, unit->coils.start,
                                    (uint16_t)unit->coils.size, values) == 0);
        for (size_t i = 0; i < unit->discrete_inputs.size; i++)
            values[i] = (uint16_t)discrete_input(u, i);
        if (unit->discrete_inputs.size > 0)
            FUZZ_CHECK(mb_model_set(model, unit->unit_id, MB_TABLE_DISCRETE_INPUTS,
                                    unit->discrete_inputs.start,
                                    (uint16_t)unit->discrete_inputs.size, values) == 0);
        for (size_t i = 0; i < unit->input_registers.size; i++)
            values[i] = input_register(u, i);
        if (unit->input_registers.size > 0)
            FUZZ_CHECK(mb_model_set(model, unit->unit_id, MB_TABLE_INPUT_REGISTERS,
                                    unit->input_registers.start,
                                    (uint16_t)unit->input_registers.size, values) == 0);
    }
    return model;
}

/* ---- the stream as a reference framing sees it ---- */

struct frame {
    uint16_t transaction_id;
    uint8_t unit_id;
    const uint8_t *pdu;
    size_t pdu_length;
};

/* The frames the server must hand to its handler: protocol id 0, up to a broken length. */
static size_t reference_frames(const uint8_t *data, size_t size, struct frame *frames,
                               size_t *discarded) {
    size_t offset = 0, count = 0;
    *discarded = 0;
    while (size - offset >= 7) {
        uint16_t length = mb_get_u16(data + offset + 4);
        if (length < 2 || length > 254 || size - offset < 6u + length)
            break;
        if (mb_get_u16(data + offset + 2) == 0) {
            frames[count].transaction_id = mb_get_u16(data + offset);
            frames[count].unit_id = data[offset + 6];
            frames[count].pdu = data + offset + 7;
            frames[count].pdu_length = (size_t)length - 1;
            count++;
        } else {
            (*discarded)++;
        }
        offset += 6u + length;
    }
    return count;
}

/* ---- the handler, recorded ---- */

struct call {
    uint16_t transaction_id;
    uint8_t unit_id;
    int decoded;
    uint8_t pdu[MB_PDU_MAX];
    size_t pdu_length;
    int length; /* what the model returned */
    uint8_t response[MB_PDU_MAX];
};

struct recorder {
    struct mb_model *model;
    struct call *calls;
    size_t count;
    size_t capacity;
};

static int recording_handler(void *data, const struct mb_server_request *request,
                             uint8_t *response) {
    struct recorder *recorder = data;
    int length = mb_model_handle(recorder->model, request, response);
    FUZZ_CHECK(recorder->count < recorder->capacity);
    struct call *call = &recorder->calls[recorder->count++];
    call->transaction_id = request->transaction_id;
    call->unit_id = request->unit_id;
    call->decoded = request->request != NULL;
    FUZZ_CHECK(request->pdu_length >= 1 && request->pdu_length <= MB_PDU_MAX);
    FUZZ_CHECK(call->decoded || request->decode_error < 0);
    memcpy(call->pdu, request->pdu, request->pdu_length);
    call->pdu_length = request->pdu_length;
    call->length = length;
    FUZZ_CHECK(length != MB_SERVER_DEFER && length != MB_SERVER_CLOSE);
    FUZZ_CHECK(length <= MB_PDU_MAX);
    if (length > 0)
        memcpy(call->response, response, (size_t)length);
    return length;
}

/* ---- one connection ---- */

struct outcome {
    struct fuzz_log wire; /* every byte the server sent */
    struct call *calls;
    size_t call_count;
    struct mb_server_stats stats;
    struct reference reference; /* the tables as they started */
    uint16_t holding[UNITS][MAX_TABLE];
    uint16_t coils[UNITS][MAX_TABLE];
};

static int listener(struct fuzz_address *address) {
    static int fd = -1;
    static struct fuzz_address bound;
    if (fd < 0)
        fd = fuzz_listen("server", &bound);
    *address = bound;
    return fd;
}

static void serve(const uint8_t *data, size_t size, enum fuzz_chunking chunking, size_t max_calls,
                  struct outcome *outcome) {
    struct fuzz_address address;
    int listening = listener(&address);
    memset(outcome, 0, sizeof *outcome);
    reference_init(&outcome->reference);
    struct recorder recorder = {
        .model = model_create(&outcome->reference),
        .calls = calloc(max_calls > 0 ? max_calls : 1, sizeof(struct call)),
        .capacity = max_calls,
    };
    FUZZ_CHECK(recorder.calls != NULL);
    struct mb_loop *loop;
    struct mb_server *server;
    FUZZ_CHECK(mb_loop_create(&loop) == 0);
    struct mb_server_config config = {
        .handler = recording_handler,
        .handler_data = &recorder,
        .pass_undecodable = 1,
    };
    FUZZ_CHECK(mb_server_create(loop, &config, &server) == 0);
    FUZZ_CHECK(mb_server_adopt(server, listening, 0) == 0);

    int fd = fuzz_connect(&address);
    struct fuzz_chunker chunker;
    fuzz_chunker_init(&chunker, chunking, data, size);
    size_t sent = 0;
    int ended = 0;
    while (sent < size && !ended) {
        size_t chunk = fuzz_chunk_next(&chunker, size - sent);
        if (chunk > 0 && fuzz_send_all(fd, data + sent, chunk) != 0)
            break;
        sent += chunk;
        mb_loop_run_once(loop, 0);
        fuzz_receive(fd, &outcome->wire, &ended);
    }
    /* The end of the stream: the server answers what it owes, then closes. */
    shutdown(fd, SHUT_WR);
    uint64_t deadline = fuzz_now_ms() + DEADLINE_MS;
    int idle = 0;
    while (!ended) {
        FUZZ_CHECK(fuzz_now_ms() < deadline);
        mb_loop_run_once(loop, idle > 4 ? 1 : 0);
        idle = fuzz_receive(fd, &outcome->wire, &ended) > 0 ? 0 : idle + 1;
    }
    close(fd);
    mb_server_get_stats(server, &outcome->stats);
    for (size_t u = 0; u < UNITS; u++) {
        const struct mb_unit_config *unit = &units[u];
        if (unit->holding_registers.size > 0)
            FUZZ_CHECK(mb_model_get(recorder.model, unit->unit_id, MB_TABLE_HOLDING_REGISTERS,
                                    unit->holding_registers.start,
                                    (uint16_t)unit->holding_registers.size,
                                    outcome->holding[u]) == 0);
        if (unit->coils.size > 0)
            FUZZ_CHECK(mb_model_get(recorder.model, unit->unit_id, MB_TABLE_COILS,
                                    unit->coils.start, (uint16_t)unit->coils.size,
                                    outcome->coils[u]) == 0);
    }
    mb_server_destroy(server);
    mb_loop_destroy(loop);
    mb_model_destroy(recorder.model);
    outcome->calls = recorder.calls;
    outcome->call_count = recorder.count;
}

/* ---- judging ---- */

/* Checks an answered request against the reference, and applies what it wrote. */
static void judge(struct reference *reference, const struct call *call) {
    const uint8_t *pdu = call->pdu, *answer = call->response;
    int u = unit_index(call->unit_id);
    struct mb_request request;
    int decoded = mb_request_decode(pdu, call->pdu_length, &request) == 0;
    FUZZ_CHECK(decoded == call->decoded);
    if (u < 0) {
        FUZZ_CHECK(call->length == 2 && answer[0] == (pdu[0] | MB_EXCEPTION_BIT) &&
                   answer[1] == MB_EX_GATEWAY_TARGET_FAILED);
        return;
    }
    int restart = decoded && request.function == MB_FC_DIAGNOSTICS &&
                  request.diagnostics.sub_function == MB_DIAG_RESTART_COMMUNICATIONS;
    if (reference->listen_only[u]) {
        FUZZ_CHECK(call->length == 0);
        if (restart)
            reference->listen_only[u] = 0;
        return;
    }
    if (decoded && request.function == MB_FC_DIAGNOSTICS &&
        request.diagnostics.sub_function == MB_DIAG_FORCE_LISTEN_ONLY) {
        FUZZ_CHECK(call->length == 0);
        reference->listen_only[u] = 1;
        return;
    }
    FUZZ_CHECK(call->length >= 2);
    /* An exception answers any function code, 0 and those with 0x80 set included. */
    if (answer[0] == (pdu[0] | MB_EXCEPTION_BIT)) {
        FUZZ_CHECK(call->length == 2 && answer[1] != 0);
        return;
    }
    FUZZ_CHECK(decoded && answer[0] == pdu[0]);
    struct mb_response response;
    FUZZ_CHECK(mb_response_decode(answer, (size_t)call->length, &response) == 0);
    FUZZ_CHECK(response.exception == 0);
    FUZZ_CHECK(mb_response_matches(&request, &response) == 0);

    const struct mb_unit_config *unit = &units[u];
    uint16_t *holding = reference->holding[u];
    uint8_t *coils = reference->coils[u];
    uint16_t holding_start = unit->holding_registers.start;
    uint16_t coil_start = unit->coils.start;
/* A normal answer never reaches past the unit's tables. */
#define INSIDE(extent, address, count)                    \
    FUZZ_CHECK((uint32_t)(address) >= (extent).start &&   \
               (uint32_t)(address) + (uint32_t)(count) <= \
                   (uint32_t)(extent).start + (extent).size)
    switch (request.function) {
    case MB_FC_READ_COILS:
        INSIDE(unit->coils, request.read.address, request.read.quantity);
        for (size_t i = 0; i < request.read.quantity; i++)
            FUZZ_CHECK(mb_bits_get(response.read.data, i) ==
                       coils[request.read.address - coil_start + i]);
        break;
    case MB_FC_READ_DISCRETE_INPUTS:
        INSIDE(unit->discrete_inputs, request.read.address, request.read.quantity);
        for (size_t i = 0; i < request.read.quantity; i++)
            FUZZ_CHECK(
                mb_bits_get(response.read.data, i) ==
                discrete_input((size_t)u, request.read.address - unit->discrete_inputs.start + i));
        break;
    case MB_FC_READ_HOLDING_REGISTERS:
        INSIDE(unit->holding_registers, request.read.address, request.read.quantity);
        for (size_t i = 0; i < request.read.quantity; i++)
            FUZZ_CHECK(mb_get_u16(response.read.data + 2 * i) ==
                       holding[request.read.address - holding_start + i]);
        break;
    case MB_FC_READ_INPUT_REGISTERS:
        INSIDE(unit->input_registers, request.read.address, request.read.quantity);
        for (size_t i = 0; i < request.read.quantity; i++)
            FUZZ_CHECK(
                mb_get_u16(response.read.data + 2 * i) ==
                input_register((size_t)u, request.read.address - unit->input_registers.start + i));
        break;
    case MB_FC_WRITE_SINGLE_COIL:
        INSIDE(unit->coils, request.write_single.address, 1);
        coils[request.write_single.address - coil_start] = request.write_single.value == MB_COIL_ON;
        break;
    case MB_FC_WRITE_SINGLE_REGISTER:
        INSIDE(unit->holding_registers, request.write_single.address, 1);
        holding[request.write_single.address - holding_start] = request.write_single.value;
        break;
    case MB_FC_WRITE_MULTIPLE_COILS:
        INSIDE(unit->coils, request.write_multiple.address, request.write_multiple.quantity);
        for (size_t i = 0; i < request.write_multiple.quantity; i++)
            coils[request.write_multiple.address - coil_start + i] =
                (uint8_t)mb_bits_get(request.write_multiple.values, i);
        break;
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        INSIDE(unit->holding_registers, request.write_multiple.address,
               request.write_multiple.quantity);
        for (size_t i = 0; i < request.write_multiple.quantity; i++)
            holding[request.write_multiple.address - holding_start + i] =
                mb_get_u16(request.write_multiple.values + 2 * i);
        break;
    case MB_FC_MASK_WRITE_REGISTER: {
        INSIDE(unit->holding_registers, request.mask_write.address, 1);
        uint16_t *at = &holding[request.mask_write.address - holding_start];
        *at = (uint16_t)((*at & request.mask_write.and_mask) |
                         (request.mask_write.or_mask & ~request.mask_write.and_mask));
        break;
    }
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        INSIDE(unit->holding_registers, request.read_write.write_address,
               request.read_write.write_quantity);
        INSIDE(unit->holding_registers, request.read_write.read_address,
               request.read_write.read_quantity);
        for (size_t i = 0; i < request.read_write.write_quantity; i++)
            holding[request.read_write.write_address - holding_start + i] =
                mb_get_u16(request.read_write.values + 2 * i);
        for (size_t i = 0; i < request.read_write.read_quantity; i++)
            FUZZ_CHECK(mb_get_u16(response.read.data + 2 * i) ==
                       holding[request.read_write.read_address - holding_start + i]);
        break;
    case MB_FC_READ_FIFO_QUEUE: {
        const struct mb_fifo_config *fifo = NULL;
        for (size_t i = 0; i < unit->fifo_count; i++)
            if (unit->fifos[i].address == request.fifo.address)
                fifo = &unit->fifos[i];
        FUZZ_CHECK(fifo != NULL);
        uint16_t count = holding[fifo->address - holding_start];
        FUZZ_CHECK(response.fifo.count == count && count <= fifo->capacity);
        for (size_t i = 0; i < count; i++)
            FUZZ_CHECK(mb_get_u16(response.fifo.values + 2 * i) ==
                       holding[fifo->address + 1 - holding_start + i]);
        break;
    }
    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD: {
        size_t asked_at = 0, answered_at = 0;
        struct mb_file_record asked, answered;
        while (mb_file_records_next(&request.file, &asked_at, &asked) == 1) {
            FUZZ_CHECK(asked.file_number >= 1 && asked.file_number <= unit->files);
            FUZZ_CHECK((uint32_t)asked.record_number + asked.record_length <=
                       unit->records_per_file);
            uint16_t *records =
                &reference->records[u][(size_t)(asked.file_number - 1) * unit->records_per_file +
                                       asked.record_number];
            if (request.function == MB_FC_WRITE_FILE_RECORD) {
                for (size_t i = 0; i < asked.record_length; i++)
                    records[i] = mb_get_u16(asked.data + 2 * i);
                continue;
            }
            FUZZ_CHECK(mb_file_records_next(&response.file, &answered_at, &answered) == 1);
            FUZZ_CHECK(answered.record_length == asked.record_length);
            for (size_t i = 0; i < asked.record_length; i++)
                FUZZ_CHECK(mb_get_u16(answered.data + 2 * i) == records[i]);
        }
        break;
    }
    default:
        break;
    }
#undef INSIDE
}

/* The frames the server wrote, each checked against the answer the handler gave. */
static void check_wire(const struct outcome *outcome) {
    const uint8_t *wire = outcome->wire.bytes;
    size_t length = outcome->wire.length, offset = 0;
    for (size_t i = 0; i < outcome->call_count; i++) {
        const struct call *call = &outcome->calls[i];
        if (call->length == 0)
            continue;
        uint8_t failure[2] = {(uint8_t)(call->pdu[0] | MB_EXCEPTION_BIT),
                              MB_EX_SERVER_DEVICE_FAILURE};
        const uint8_t *answer = call->length > 0 ? call->response : failure;
        size_t answer_length = call->length > 0 ? (size_t)call->length : 2;
        FUZZ_CHECK(length - offset >= MB_MBAP_HEADER_SIZE + answer_length);
        const uint8_t *frame = wire + offset;
        FUZZ_CHECK(mb_get_u16(frame) == call->transaction_id);
        FUZZ_CHECK(mb_get_u16(frame + 2) == 0);
        FUZZ_CHECK(mb_get_u16(frame + 4) == answer_length + 1);
        FUZZ_CHECK(frame[6] == call->unit_id);
        FUZZ_CHECK(memcmp(frame + 7, answer, answer_length) == 0);
        offset += MB_MBAP_HEADER_SIZE + answer_length;
    }
    FUZZ_CHECK(offset == length);
}

static void check_outcome(const struct frame *frames, size_t frame_count, size_t discarded,
                          struct outcome *outcome) {
    FUZZ_CHECK(outcome->call_count == frame_count);
    FUZZ_CHECK(outcome->stats.requests == frame_count);
    FUZZ_CHECK(outcome->stats.discarded == discarded);
    FUZZ_CHECK(outcome->stats.accepted == 1 && outcome->stats.connections == 0);
    for (size_t i = 0; i < frame_count; i++) {
        const struct call *call = &outcome->calls[i];
        FUZZ_CHECK(call->transaction_id == frames[i].transaction_id);
        FUZZ_CHECK(call->unit_id == frames[i].unit_id);
        FUZZ_CHECK(call->pdu_length == frames[i].pdu_length);
        FUZZ_CHECK(memcmp(call->pdu, frames[i].pdu, call->pdu_length) == 0);
    }
    check_wire(outcome);
    struct reference *reference = &outcome->reference;
    for (size_t i = 0; i < frame_count; i++)
        judge(reference, &outcome->calls[i]);
    for (size_t u = 0; u < UNITS; u++) {
        for (size_t i = 0; i < units[u].holding_registers.size; i++)
            FUZZ_CHECK(outcome->holding[u][i] == reference->holding[u][i]);
        for (size_t i = 0; i < units[u].coils.size; i++)
            FUZZ_CHECK(outcome->coils[u][i] == reference->coils[u][i]);
    }
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    uint8_t *stream = fuzz_copy(data, size);
    struct frame *frames = calloc(size / 8 + 1, sizeof *frames);
    FUZZ_CHECK(frames != NULL);
    size_t discarded;
    size_t frame_count = reference_frames(stream, size, frames, &discarded);

    enum fuzz_chunking second = FUZZ_CHUNK_PSEUDORANDOM;
    if (size > 0 && data[0] % 3 == 0)
        second = size <= 512 ? FUZZ_CHUNK_BYTES : FUZZ_CHUNK_FROM_INPUT;
    else if (size > 0 && data[0] % 3 == 1)
        second = FUZZ_CHUNK_FROM_INPUT;
    struct outcome *whole = malloc(sizeof *whole), *cut = malloc(sizeof *cut);
    FUZZ_CHECK(whole != NULL && cut != NULL);
    serve(stream, size, FUZZ_CHUNK_WHOLE, frame_count, whole);
    check_outcome(frames, frame_count, discarded, whole);
    serve(stream, size, second, frame_count, cut);
    check_outcome(frames, frame_count, discarded, cut);
    FUZZ_CHECK(fuzz_log_equal(&whole->wire, &cut->wire));
    struct outcome *outcomes[] = {whole, cut};
    for (size_t i = 0; i < 2; i++) {
        fuzz_log_free(&outcomes[i]->wire);
        free(outcomes[i]->calls);
        free(outcomes[i]);
    }
    free(frames);
    free(stream);
    return 0;
}
