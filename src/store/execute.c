/* SPDX-License-Identifier: MIT */
/*
 * mb_model_handle(): executes a decoded request against a unit's tables, under the model's
 * lock. Order: unknown unit (0B), listen-only mode, then mb_request_validate() (01, 02) with
 * the limits a hand-built request might break (03) in the spec's place, then execution.
 *
 * Decisions the spec leaves to the device (our rules):
 *   - FC 24 reads the FIFO without draining it (the spec: "reads the queue contents, but does
 *     not clear them"); see model.c for where the queue lives and how it is emptied. A count
 *     register over 31, or over the FIFO's capacity (a client wrote it), is answered with 03.
 *   - FC 8/04 (force listen-only) is not answered; from then on the unit executes and answers
 *     nothing, and counts what it ignores, until FC 8/01 (restart communications), which the
 *     spec also leaves unanswered when it ends listen-only mode. A restart outside listen-only
 *     is answered (an echo) before it takes effect.
 *   - Restart (8/01) clears the counters, the FC 11 event counter and the diagnostic register,
 *     leaves listen-only mode, clears the event log when its data is FF00, then logs the
 *     restart event (0x00). Clear counters (8/0A) clears the same but the log. Both take
 *     effect after the request itself is counted, so counters read 0 just after.
 *   - Counters, per unit (one set with any_unit): bus messages = every request that reached
 *     the unit, listen-only or not; server messages = requests processed (not ignored in
 *     listen-only); exceptions = exception responses returned; no response = requests
 *     answered with nothing (listen-only, 8/04, 8/01 in listen-only). A counter query counts
 *     itself. CRC errors, overruns, NAKs and busy are 0: framing is checked before the model,
 *     and the model never sends 06 or 07.
 *   - FC 11 counts successful completions except FC 11 itself (the spec's "fetch event
 *     counter"). FC 12 logs, as the spec lays out, a receive event (0x80, +0x20 in listen-only)
 *     before execution and a send event (0x40 + exception bits) after it, 0x04 on entering
 *     listen-only and 0x00 on restart; it returns the most recent event first.
 *   - FC 7 returns exception status 0; FC 8/02 the diagnostic register, 0.
 */
#include <string.h>

#include "mbsec/model.h"
#include "mbsec/pdu.h"
#include "mbsec/validate.h"
#include "mbsec/value.h"
#include "store/store.h"

/* FC 12 event bytes. */
#define EVENT_RECEIVE 0x80
#define EVENT_SEND 0x40
#define EVENT_IN_LISTEN_ONLY 0x20
#define EVENT_SEND_READ_EXCEPTION 0x01  /* exceptions 01..03 */
#define EVENT_SEND_ABORT_EXCEPTION 0x02 /* exception 04 */
#define EVENT_SEND_BUSY_EXCEPTION 0x04  /* exceptions 05, 06 */
#define EVENT_SEND_NAK_EXCEPTION 0x08   /* exception 07 */
#define EVENT_ENTERED_LISTEN_ONLY 0x04
#define EVENT_COMMUNICATION_RESTART 0x00

/* What a request leaves to do once it has been counted. */
enum afterwards {
    AFTERWARDS_NOTHING = 0,
    AFTERWARDS_CLEAR_COUNTERS,
    AFTERWARDS_RESTART,
    AFTERWARDS_RESTART_CLEAR_LOG,
};

/* ---- communication state ---- */

static void log_event(struct mb__unit_state *state, uint8_t event) {
    state->event_log[state->event_log_next] = event;
    state->event_log_next = (uint8_t)((state->event_log_next + 1) % MB__EVENT_LOG_SIZE);
    if (state->event_log_count < MB__EVENT_LOG_SIZE)
        state->event_log_count++;
}

static void clear_counters(struct mb__unit_state *state) {
    memset(&state->counters, 0, sizeof state->counters);
    state->event_count = 0;
    state->diagnostic_register = 0;
}

/* ---- listen-only mode, per connection ---- */

static int in_listen_only(const struct mb__unit_state *state, uint64_t connection) {
    if (state->listen_only_count == 0)
        return 0;
    for (int i = 0; i < MB__LISTEN_ONLY_SLOTS; i++)
        if (state->listen_only[i] == connection + 1)
            return 1;
    return 0;
}

static void enter_listen_only(struct mb__unit_state *state, uint64_t connection) {
    if (in_listen_only(state, connection))
        return;
    for (int i = 0; i < MB__LISTEN_ONLY_SLOTS; i++)
        if (state->listen_only[i] == 0) {
            state->listen_only[i] = connection + 1;
            state->listen_only_count++;
            return;
        }
    state->listen_only[state->listen_only_next] = connection + 1;
    state->listen_only_next = (uint8_t)((state->listen_only_next + 1) % MB__LISTEN_ONLY_SLOTS);
}

static void leave_listen_only(struct mb__unit_state *state, uint64_t connection) {
    for (int i = 0; i < MB__LISTEN_ONLY_SLOTS; i++)
        if (state->listen_only[i] == connection + 1) {
            state->listen_only[i] = 0;
            state->listen_only_count--;
        }
}

static void restart(struct mb__unit_state *state, uint64_t connection, int clear_log) {
    clear_counters(state);
    leave_listen_only(state, connection);
    if (clear_log) {
        state->event_log_count = 0;
        state->event_log_next = 0;
    }
    log_event(state, EVENT_COMMUNICATION_RESTART);
}

static uint8_t send_event(int listen_only, const uint8_t *response, int length) {
    uint8_t event = EVENT_SEND;
    if (listen_only)
        event |= EVENT_IN_LISTEN_ONLY;
    if (length >= 2 && (response[0] & MB_EXCEPTION_BIT)) {
        uint8_t code = response[1];
        if (code <= MB_EX_ILLEGAL_DATA_VALUE)
            event |= EVENT_SEND_READ_EXCEPTION;
        else if (code == MB_EX_SERVER_DEVICE_FAILURE)
            event |= EVENT_SEND_ABORT_EXCEPTION;
        else if (code == MB_EX_ACKNOWLEDGE || code == MB_EX_SERVER_DEVICE_BUSY)
            event |= EVENT_SEND_BUSY_EXCEPTION;
        else if (code == 0x07)
            event |= EVENT_SEND_NAK_EXCEPTION;
    }
    return event;
}

/* A well-formed FC 8/01; *clear_log says whether its data asks to clear the event log. */
static int is_restart(const struct mb_request *request, int *clear_log) {
    if (request->function != MB_FC_DIAGNOSTICS ||
        request->diagnostics.sub_function != MB_DIAG_RESTART_COMMUNICATIONS ||
        request->diagnostics.data == NULL || request->diagnostics.data_length != 2)
        return 0;
    uint16_t value = mb_get_u16(request->diagnostics.data);
    *clear_log = value == 0xFF00;
    return value == 0xFF00 || value == 0x0000;
}

/* ---- execution, one function code at a time ---- */

static int exception(uint8_t function, uint8_t code, uint8_t *response) {
    return mb_exception_encode(function, code, response, MB_PDU_MAX);
}

static uint8_t *register_at(uint8_t *table, const struct mb_table_extent *extent,
                            uint16_t address) {
    return table + 2 * (size_t)(address - extent->start);
}

static uint8_t *record_at(const struct mb__unit *unit, uint16_t file, uint16_t record) {
    size_t index = (size_t)(file - 1) * unit->extents.records_per_file + record;
    return unit->file_records + 2 * index;
}

static int read_bits(const struct mb__unit *unit, const struct mb_request *request,
                     uint8_t *response) {
    int coils = request->function == MB_FC_READ_COILS;
    const struct mb_table_extent *extent =
        coils ? &unit->extents.coils : &unit->extents.discrete_inputs;
    uint8_t packed[MB_PDU_MAX];
    size_t bytes = (request->read.quantity + 7u) / 8u;
    memset(packed, 0, bytes);
    mb_bits_copy(packed, 0, coils ? unit->coils : unit->discrete_inputs,
                 (size_t)(request->read.address - extent->start), request->read.quantity);
    struct mb_response answer = {.function = request->function};
    answer.read.byte_count = (uint8_t)bytes;
    answer.read.data = packed;
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int read_registers(const struct mb__unit *unit, const struct mb_request *request,
                          uint8_t *response) {
    int holding = request->function == MB_FC_READ_HOLDING_REGISTERS;
    struct mb_response answer = {.function = request->function};
    answer.read.byte_count = (uint8_t)(2 * request->read.quantity);
    answer.read.data = holding
                           ? register_at(unit->holding_registers, &unit->extents.holding_registers,
                                         request->read.address)
                           : register_at(unit->input_registers, &unit->extents.input_registers,
                                         request->read.address);
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int write_single(const struct mb__unit *unit, const struct mb_request *request,
                        uint8_t *response) {
    const struct mb_write_single *write = &request->write_single;
    if (request->function == MB_FC_WRITE_SINGLE_COIL)
        mb_bits_set(unit->coils, (size_t)(write->address - unit->extents.coils.start),
                    write->value == MB_COIL_ON);
    else
        mb_put_u16(
            register_at(unit->holding_registers, &unit->extents.holding_registers, write->address),
            write->value);
    struct mb_response answer = {.function = request->function};
    answer.write_single = *write;
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int write_multiple(const struct mb__unit *unit, const struct mb_request *request,
                          uint8_t *response) {
    uint16_t address = request->write_multiple.address;
    uint16_t quantity = request->write_multiple.quantity;
    if (request->function == MB_FC_WRITE_MULTIPLE_COILS)
        mb_bits_copy(unit->coils, (size_t)(address - unit->extents.coils.start),
                     request->write_multiple.values, 0, quantity);
    else
        memcpy(register_at(unit->holding_registers, &unit->extents.holding_registers, address),
               request->write_multiple.values, 2 * (size_t)quantity);
    struct mb_response answer = {.function = request->function};
    answer.write_multiple.address = address;
    answer.write_multiple.quantity = quantity;
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int mask_write(const struct mb__unit *unit, const struct mb_request *request,
                      uint8_t *response) {
    const struct mb_mask_write *mask = &request->mask_write;
    uint8_t *at =
        register_at(unit->holding_registers, &unit->extents.holding_registers, mask->address);
    uint16_t current = mb_get_u16(at);
    mb_put_u16(at, (uint16_t)((current & mask->and_mask) | (mask->or_mask & ~mask->and_mask)));
    struct mb_response answer = {.function = request->function};
    answer.mask_write = *mask;
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int read_write(const struct mb__unit *unit, const struct mb_request *request,
                      uint8_t *response) {
    /* The spec: the write is performed before the read. */
    const struct mb_table_extent *extent = &unit->extents.holding_registers;
    memcpy(register_at(unit->holding_registers, extent, request->read_write.write_address),
           request->read_write.values, 2 * (size_t)request->read_write.write_quantity);
    struct mb_response answer = {.function = request->function};
    answer.read.byte_count = (uint8_t)(2 * request->read_write.read_quantity);
    answer.read.data =
        register_at(unit->holding_registers, extent, request->read_write.read_address);
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int read_fifo(const struct mb__unit *unit, const struct mb_request *request,
                     uint8_t *response) {
    const struct mb_fifo_config *fifo = NULL;
    for (size_t i = 0; i < unit->fifo_count; i++)
        if (unit->fifos[i].address == request->fifo.address)
            fifo = &unit->fifos[i];
    if (fifo == NULL)
        return exception(request->function, MB_EX_ILLEGAL_DATA_ADDRESS, response);
    const uint8_t *count_register =
        register_at(unit->holding_registers, &unit->extents.holding_registers, fifo->address);
    uint16_t count = mb_get_u16(count_register);
    if (count > MB_MAX_FIFO_COUNT || count > fifo->capacity)
        return exception(request->function, MB_EX_ILLEGAL_DATA_VALUE, response);
    struct mb_response answer = {.function = request->function};
    answer.fifo.count = count;
    answer.fifo.values = count_register + 2;
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int read_file(const struct mb__unit *unit, const struct mb_request *request,
                     uint8_t *response) {
    /* The groups of an FC 20 answer fill at most 0xF5 bytes (the response's byte count). */
    uint8_t groups[0xF5];
    size_t used = 0, offset = 0;
    struct mb_file_record record;
    int rc;
    while ((rc = mb_file_records_next(&request->file, &offset, &record)) == 1) {
        record.data = record_at(unit, record.file_number, record.record_number);
        rc = mb_file_records_append(MB_FILE_READ_RESPONSE, &record, groups, sizeof groups, &used);
        if (rc == MB_ENOSPC || rc == MB_EINVAL)
            return exception(request->function, MB_EX_ILLEGAL_DATA_VALUE, response);
        if (rc < 0)
            return rc;
    }
    if (rc < 0)
        return exception(request->function, MB_EX_ILLEGAL_DATA_VALUE, response);
    struct mb_response answer = {.function = request->function};
    answer.file.data = groups;
    answer.file.length = (uint8_t)used;
    answer.file.layout = MB_FILE_READ_RESPONSE;
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int write_file(const struct mb__unit *unit, const struct mb_request *request,
                      uint8_t *response) {
    /* mb_request_validate() has walked every record already: all of them are in range, so
     * the write is all or nothing. */
    size_t offset = 0;
    struct mb_file_record record;
    int rc;
    while ((rc = mb_file_records_next(&request->file, &offset, &record)) == 1)
        memcpy(record_at(unit, record.file_number, record.record_number), record.data,
               2 * (size_t)record.record_length);
    if (rc < 0)
        return exception(request->function, MB_EX_ILLEGAL_DATA_VALUE, response);
    struct mb_response answer = {.function = request->function};
    answer.file = request->file;
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int report_server_id(const struct mb_model *model, uint8_t *response) {
    uint8_t data[MB_PDU_MAX];
    memcpy(data, model->server_id, model->server_id_length);
    data[model->server_id_length] = model->running ? 0xFF : 0x00;
    struct mb_response answer = {.function = MB_FC_REPORT_SERVER_ID};
    answer.server_id.data = data;
    answer.server_id.byte_count = (uint8_t)(model->server_id_length + 1);
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int event_counter(const struct mb__unit_state *state, uint8_t *response) {
    struct mb_response answer = {.function = MB_FC_GET_COMM_EVENT_COUNTER};
    answer.event_counter.status = 0x0000;
    answer.event_counter.event_count = state->event_count;
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int event_log(const struct mb__unit_state *state, uint8_t *response) {
    uint8_t events[MB__EVENT_LOG_SIZE];
    for (size_t i = 0; i < state->event_log_count; i++) {
        size_t newest_first =
            (state->event_log_next + 2 * MB__EVENT_LOG_SIZE - 1 - i) % MB__EVENT_LOG_SIZE;
        events[i] = state->event_log[newest_first];
    }
    struct mb_response answer = {.function = MB_FC_GET_COMM_EVENT_LOG};
    answer.event_log.status = 0x0000;
    answer.event_log.event_count = state->event_count;
    answer.event_log.message_count = state->counters.bus_messages;
    answer.event_log.events = events;
    answer.event_log.event_length = state->event_log_count;
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int diagnostics(struct mb__unit_state *state, uint64_t connection,
                       const struct mb_request *request, uint8_t *response,
                       enum afterwards *afterwards) {
    const struct mb_diagnostics *asked = &request->diagnostics;
    const struct mb__counters *counters = &state->counters;
    uint8_t value[2];
    struct mb_response answer = {.function = MB_FC_DIAGNOSTICS};
    /* Most sub-functions echo the request; those that return a value replace the data. */
    answer.diagnostics = *asked;
    switch (asked->sub_function) {
    case MB_DIAG_RETURN_QUERY_DATA:
        break;
    case MB_DIAG_RESTART_COMMUNICATIONS:
        *afterwards =
            mb_get_u16(asked->data) == 0xFF00 ? AFTERWARDS_RESTART_CLEAR_LOG : AFTERWARDS_RESTART;
        break;
    case MB_DIAG_RETURN_DIAGNOSTIC_REGISTER:
        mb_put_u16(value, state->diagnostic_register);
        answer.diagnostics.data = value;
        break;
    case MB_DIAG_CHANGE_ASCII_DELIMITER:
        state->ascii_delimiter = asked->data[0];
        break;
    case MB_DIAG_FORCE_LISTEN_ONLY:
        enter_listen_only(state, connection);
        log_event(state, EVENT_ENTERED_LISTEN_ONLY);
        return 0;
    case MB_DIAG_CLEAR_COUNTERS:
        *afterwards = AFTERWARDS_CLEAR_COUNTERS;
        break;
    case MB_DIAG_BUS_MESSAGE_COUNT:
    case MB_DIAG_BUS_CRC_ERROR_COUNT:
    case MB_DIAG_BUS_EXCEPTION_COUNT:
    case MB_DIAG_SERVER_MESSAGE_COUNT:
    case MB_DIAG_SERVER_NO_RESPONSE_COUNT:
    case MB_DIAG_SERVER_NAK_COUNT:
    case MB_DIAG_SERVER_BUSY_COUNT:
    case MB_DIAG_BUS_CHARACTER_OVERRUN_COUNT: {
        const uint16_t by_sub_function[] = {
            counters->bus_messages,    counters->bus_crc_errors,     counters->bus_exceptions,
            counters->server_messages, counters->server_no_response, counters->server_naks,
            counters->server_busy,     counters->bus_overruns,
        };
        mb_put_u16(value, by_sub_function[asked->sub_function - MB_DIAG_BUS_MESSAGE_COUNT]);
        answer.diagnostics.data = value;
        break;
    }
    case MB_DIAG_CLEAR_OVERRUN_COUNTER:
        state->counters.bus_overruns = 0;
        break;
    default:
        return exception(request->function, MB_EX_ILLEGAL_FUNCTION, response);
    }
    return mb_response_encode(&answer, response, MB_PDU_MAX);
}

static int execute(const struct mb_model *model, const struct mb__unit *unit, uint64_t connection,
                   const struct mb_request *request, uint8_t *response,
                   enum afterwards *afterwards) {
    switch (request->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
        return read_bits(unit, request, response);
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        return read_registers(unit, request, response);
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        return write_single(unit, request, response);
    case MB_FC_READ_EXCEPTION_STATUS: {
        struct mb_response answer = {.function = request->function};
        answer.exception_status = 0;
        return mb_response_encode(&answer, response, MB_PDU_MAX);
    }
    case MB_FC_DIAGNOSTICS:
        return diagnostics(unit->state, connection, request, response, afterwards);
    case MB_FC_GET_COMM_EVENT_COUNTER:
        return event_counter(unit->state, response);
    case MB_FC_GET_COMM_EVENT_LOG:
        return event_log(unit->state, response);
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        return write_multiple(unit, request, response);
    case MB_FC_REPORT_SERVER_ID:
        return report_server_id(model, response);
    case MB_FC_READ_FILE_RECORD:
        return read_file(unit, request, response);
    case MB_FC_WRITE_FILE_RECORD:
        return write_file(unit, request, response);
    case MB_FC_MASK_WRITE_REGISTER:
        return mask_write(unit, request, response);
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        return read_write(unit, request, response);
    case MB_FC_READ_FIFO_QUEUE:
        return read_fifo(unit, request, response);
    case MB_FC_ENCAPSULATED_INTERFACE:
        return mb_device_id_respond(request, model->conformity_level, model->objects,
                                    model->object_count, response, MB_PDU_MAX);
    default:
        return exception(request->function, MB_EX_ILLEGAL_FUNCTION, response);
    }
}

/* Counts a request reaching the unit. Returns 1 when the connection is in listen-only mode,
 * where nothing is executed or answered. Under the lock. */
static int receive(struct mb__unit_state *state, uint64_t connection) {
    int listen_only = in_listen_only(state, connection);
    state->counters.bus_messages++;
    log_event(state, (uint8_t)(EVENT_RECEIVE | (listen_only ? EVENT_IN_LISTEN_ONLY : 0)));
    if (!listen_only)
        state->counters.server_messages++;
    return listen_only;
}

/* Counts what a request got: nothing, an exception (a local error goes out as 04) or data.
 * Under the lock. */
static void account(struct mb__unit_state *state, uint8_t function, const uint8_t *response,
                    int length) {
    if (length == 0) {
        state->counters.server_no_response++;
        state->event_count++;
    } else if (length < 0 || (response[0] & MB_EXCEPTION_BIT)) {
        static const uint8_t device_failure[2] = {MB_EXCEPTION_BIT, MB_EX_SERVER_DEVICE_FAILURE};
        state->counters.bus_exceptions++;
        log_event(state,
                  send_event(0, length < 0 ? device_failure : response, length < 0 ? 2 : length));
    } else {
        if (function != MB_FC_GET_COMM_EVENT_COUNTER)
            state->event_count++;
        log_event(state, send_event(0, response, length));
    }
}

/* Executes one request for `unit` and keeps its counters and event log; under the lock. */
static int serve(const struct mb_model *model, struct mb__unit *unit, uint64_t connection,
                 const struct mb_request *request, uint8_t *response) {
    struct mb__unit_state *state = unit->state;
    if (receive(state, connection)) {
        int clear_log = 0;
        if (is_restart(request, &clear_log))
            restart(state, connection, clear_log);
        else
            state->counters.server_no_response++;
        return 0;
    }

    enum afterwards afterwards = AFTERWARDS_NOTHING;
    int length;
    /* 01 first, then the limits (03), then the address (02): the spec's order of checks. */
    int code = mb_request_validate(request, &unit->extents);
    if (code == 0 || code == MB_EX_ILLEGAL_DATA_ADDRESS) {
        int values = mb_request_validate_values(request);
        if (values != 0)
            code = values;
    }
    if (code < 0)
        length = code;
    else if (code > 0)
        length = exception(request->function, (uint8_t)code, response);
    else
        length = execute(model, unit, connection, request, response, &afterwards);

    account(state, request->function, response, length);
    if (afterwards == AFTERWARDS_CLEAR_COUNTERS)
        clear_counters(state);
    else if (afterwards != AFTERWARDS_NOTHING)
        restart(state, connection, afterwards == AFTERWARDS_RESTART_CLEAR_LOG);
    return length;
}

/*
 * A PDU that did not decode (the server passes them when asked to): the unit's own rules come
 * first (unknown unit 0B, listen-only silence), then the spec's order of checks through
 * mb_request_check(): 01 for a function this unit lacks, before the 03 of the bad data.
 */
static int undecodable(struct mb_model *model, const struct mb_server_request *server_request,
                       uint8_t *response) {
    if (server_request->pdu == NULL || server_request->pdu_length == 0)
        return MB_EINVAL;
    uint8_t function = server_request->pdu[0];
    response[0] = function | MB_EXCEPTION_BIT;
    struct mb__unit *unit = mb__model_unit(model, server_request->unit_id);
    if (unit == NULL) {
        response[1] = MB_EX_GATEWAY_TARGET_FAILED;
        return 2;
    }
    struct mb__unit_state *state = unit->state;
    int length = 0;
    mb__model_lock(model);
    if (receive(state, server_request->connection_id)) {
        state->counters.server_no_response++;
    } else {
        struct mb_request ignored;
        int code = mb_request_check(server_request->pdu, server_request->pdu_length, &unit->extents,
                                    &ignored);
        response[1] = code > 0 ? (uint8_t)code : MB_EX_ILLEGAL_DATA_VALUE;
        length = 2;
        account(state, function, response, length);
    }
    mb__model_unlock(model);
    return length;
}

int mb_model_handle(void *data, const struct mb_server_request *server_request, uint8_t *response) {
    struct mb_model *model = data;
    if (model == NULL || server_request == NULL || response == NULL)
        return MB_EINVAL;
    if (server_request->request == NULL)
        return undecodable(model, server_request, response);
    const struct mb_request *request = server_request->request;
    if (request->function == 0 || (request->function & MB_EXCEPTION_BIT))
        return MB_EINVAL;
    struct mb__unit *unit = mb__model_unit(model, server_request->unit_id);
    if (unit == NULL)
        return exception(request->function, MB_EX_GATEWAY_TARGET_FAILED, response);
    mb__model_lock(model);
    int length = serve(model, unit, server_request->connection_id, request, response);
    mb__model_unlock(model);
    return length;
}
