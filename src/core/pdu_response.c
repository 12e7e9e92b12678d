/* SPDX-License-Identifier: MIT */
/* Response PDUs: decode and encode for every public function code, and exception responses. */
#include <string.h>

#include "core/codec.h"
#include "mbsec/pdu.h"

/* FC 1/2 carry up to 2000 bits (250 bytes); FC 3/4/23 up to 125 registers (250 bytes). */
static int read_byte_count_valid(uint8_t function, uint8_t byte_count) {
    if (function == MB_FC_READ_COILS || function == MB_FC_READ_DISCRETE_INPUTS)
        return byte_count >= 1 && byte_count <= mb__bit_bytes(MB_MAX_READ_BITS);
    return byte_count >= 2 && byte_count <= 2 * MB_MAX_READ_REGISTERS && byte_count % 2 == 0;
}

/* FC 11 and 12 report 0xFFFF while a previous command is still being processed, else 0. */
static int comm_status_valid(uint16_t status) {
    return status == 0x0000 || status == 0xFFFF;
}

static int device_id_header_valid(uint8_t read_code, uint8_t conformity, uint8_t more_follows) {
    if (read_code < MB_DEVICE_ID_BASIC || read_code > MB_DEVICE_ID_SPECIFIC)
        return 0;
    return mb__conformity_valid(conformity) && (more_follows == 0x00 || more_follows == 0xFF);
}

int mb_response_decode(const uint8_t *pdu, size_t length, struct mb_response *response) {
    if (pdu == NULL || response == NULL || length == 0 || length > MB_PDU_MAX)
        return MB_EINVAL;
    memset(response, 0, sizeof *response);
    response->function = pdu[0] & (uint8_t)~MB_EXCEPTION_BIT;
    const uint8_t *data = pdu + 1;
    size_t size = length - 1;
    int rc;

    if (pdu[0] & MB_EXCEPTION_BIT) {
        if (response->function == 0)
            return MB_EFUNCTION;
        if ((rc = mb__expect_length(size, 1)) != 0)
            return rc;
        if (data[0] == 0)
            return MB_EEXCEPTION_CODE;
        response->exception = data[0];
        return 0;
    }

    switch (response->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        if (size < 1)
            return MB_ETRUNCATED;
        response->read.byte_count = data[0];
        response->read.data = data + 1;
        if (!read_byte_count_valid(response->function, data[0]))
            return MB_EBYTECOUNT;
        return mb__expect_length(size, 1 + (size_t)data[0]);

    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        if ((rc = mb__expect_length(size, 4)) != 0)
            return rc;
        response->write_single.address = mb_get_u16(data);
        response->write_single.value = mb_get_u16(data + 2);
        if (response->function == MB_FC_WRITE_SINGLE_COIL &&
            response->write_single.value != MB_COIL_ON &&
            response->write_single.value != MB_COIL_OFF)
            return MB_EVALUE;
        return 0;

    case MB_FC_READ_EXCEPTION_STATUS:
        if ((rc = mb__expect_length(size, 1)) != 0)
            return rc;
        response->exception_status = data[0];
        return 0;

    case MB_FC_DIAGNOSTICS:
        if (size < 2)
            return MB_ETRUNCATED;
        response->diagnostics.sub_function = mb_get_u16(data);
        response->diagnostics.data = data + 2;
        response->diagnostics.data_length = (uint8_t)(size - 2);
        return mb__diagnostics_check(&response->diagnostics);

    case MB_FC_GET_COMM_EVENT_COUNTER:
        if ((rc = mb__expect_length(size, 4)) != 0)
            return rc;
        response->event_counter.status = mb_get_u16(data);
        response->event_counter.event_count = mb_get_u16(data + 2);
        return comm_status_valid(response->event_counter.status) ? 0 : MB_EVALUE;

    case MB_FC_GET_COMM_EVENT_LOG:
        if (size < 1)
            return MB_ETRUNCATED;
        /* Byte count = status, event count, message count (6) + 0..64 event bytes. */
        if (data[0] < 6 || data[0] > 6 + MB_MAX_EVENT_LOG)
            return MB_EBYTECOUNT;
        if ((rc = mb__expect_length(size, 1 + (size_t)data[0])) != 0)
            return rc;
        response->event_log.status = mb_get_u16(data + 1);
        response->event_log.event_count = mb_get_u16(data + 3);
        response->event_log.message_count = mb_get_u16(data + 5);
        response->event_log.events = data + 7;
        response->event_log.event_length = (uint8_t)(data[0] - 6);
        return comm_status_valid(response->event_log.status) ? 0 : MB_EVALUE;

    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        if ((rc = mb__expect_length(size, 4)) != 0)
            return rc;
        response->write_multiple.address = mb_get_u16(data);
        response->write_multiple.quantity = mb_get_u16(data + 2);
        return mb__write_quantity_valid(response->function, response->write_multiple.quantity)
                   ? 0
                   : MB_EQUANTITY;

    case MB_FC_REPORT_SERVER_ID:
        if (size < 1)
            return MB_ETRUNCATED;
        /* At least the run indicator; the server id before it is device specific. */
        if (data[0] < 1)
            return MB_EBYTECOUNT;
        response->server_id.byte_count = data[0];
        response->server_id.data = data + 1;
        return mb__expect_length(size, 1 + (size_t)data[0]);

    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD: {
        if (size < 1)
            return MB_ETRUNCATED;
        uint8_t layout =
            response->function == MB_FC_READ_FILE_RECORD ? MB_FILE_READ_RESPONSE : MB_FILE_WRITE;
        response->file.layout = layout;
        response->file.data = data + 1;
        response->file.length = data[0];
        if (!mb__file_byte_count_valid(layout, data[0]))
            return MB_EBYTECOUNT;
        if ((rc = mb__expect_length(size, 1 + (size_t)data[0])) != 0)
            return rc;
        return mb__file_records_scan(layout, data + 1, data[0], 1, &response->file.count);
    }

    case MB_FC_MASK_WRITE_REGISTER:
        if ((rc = mb__expect_length(size, 6)) != 0)
            return rc;
        response->mask_write.address = mb_get_u16(data);
        response->mask_write.and_mask = mb_get_u16(data + 2);
        response->mask_write.or_mask = mb_get_u16(data + 4);
        return 0;

    case MB_FC_READ_FIFO_QUEUE: {
        /* Byte count (2 bytes) covers the FIFO count and the registers: 2 + 2N. */
        if (size < 4)
            return MB_ETRUNCATED;
        uint16_t byte_count = mb_get_u16(data);
        response->fifo.count = mb_get_u16(data + 2);
        response->fifo.values = data + 4;
        if (response->fifo.count > MB_MAX_FIFO_COUNT)
            return MB_EQUANTITY;
        if (byte_count != 2 + 2 * (size_t)response->fifo.count)
            return MB_EBYTECOUNT;
        return mb__expect_length(size, 2 + (size_t)byte_count);
    }

    case MB_FC_ENCAPSULATED_INTERFACE:
        if (size < 1)
            return MB_ETRUNCATED;
        if (data[0] == MB_MEI_DEVICE_ID) {
            /* MEI type, read code, conformity, more follows, next object id, object count. */
            if (size < 6)
                return MB_ETRUNCATED;
            response->device_id.mei_type = MB_MEI_DEVICE_ID;
            response->device_id.read_code = data[1];
            response->device_id.conformity_level = data[2];
            response->device_id.more_follows = data[3];
            response->device_id.next_object_id = data[4];
            response->device_id.object_count = data[5];
            response->device_id.objects = data + 6;
            response->device_id.objects_length = (uint8_t)(size - 6);
            if (!device_id_header_valid(data[1], data[2], data[3]))
                return MB_EVALUE;
            /* Individual access returns one object and never has more to follow. */
            if (data[1] == MB_DEVICE_ID_SPECIFIC && data[3] != 0x00)
                return MB_EVALUE;
            return mb__device_objects_scan(data + 6, size - 6, data[5]);
        }
        if (data[0] != MB_MEI_CANOPEN)
            return MB_EMEI;
        response->mei.mei_type = data[0];
        response->mei.data = data + 1;
        response->mei.length = (uint8_t)(size - 1);
        return 0;

    default:
        if (!mb_function_is_user_defined(response->function))
            return MB_EFUNCTION;
        response->raw.data = data;
        response->raw.length = (uint8_t)size;
        return 0;
    }
}

int mb_exception_encode(uint8_t function, uint8_t code, uint8_t *pdu, size_t capacity) {
    if (pdu == NULL || code == 0 || function == 0 || (function & MB_EXCEPTION_BIT))
        return MB_EINVAL;
    if (capacity < 2)
        return MB_ENOSPC;
    pdu[0] = function | MB_EXCEPTION_BIT;
    pdu[1] = code;
    return 2;
}

int mb_exception_answer(uint8_t received, uint8_t code, uint8_t *pdu, size_t capacity) {
    if (pdu == NULL || code == 0)
        return MB_EINVAL;
    if (capacity < 2)
        return MB_ENOSPC;
    pdu[0] = received | MB_EXCEPTION_BIT;
    pdu[1] = code;
    return 2;
}

int mb_response_encode(const struct mb_response *response, uint8_t *pdu, size_t capacity) {
    if (response == NULL || pdu == NULL)
        return MB_EINVAL;
    if (response->exception != 0)
        return mb_exception_encode(response->function, response->exception, pdu, capacity);

    /* Built in a full-size scratch PDU and copied out whole, as in mb_request_encode(). */
    uint8_t out[MB_PDU_MAX];
    uint8_t *data = out + 1;
    size_t size;
    int rc;
    out[0] = response->function;

    switch (response->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        if (!read_byte_count_valid(response->function, response->read.byte_count))
            return MB_EBYTECOUNT;
        data[0] = response->read.byte_count;
        if ((rc = mb__put_bytes(data + 1, response->read.data, response->read.byte_count)) != 0)
            return rc;
        size = 1 + (size_t)response->read.byte_count;
        break;

    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        if (response->function == MB_FC_WRITE_SINGLE_COIL &&
            response->write_single.value != MB_COIL_ON &&
            response->write_single.value != MB_COIL_OFF)
            return MB_EVALUE;
        mb_put_u16(data, response->write_single.address);
        mb_put_u16(data + 2, response->write_single.value);
        size = 4;
        break;

    case MB_FC_READ_EXCEPTION_STATUS:
        data[0] = response->exception_status;
        size = 1;
        break;

    case MB_FC_DIAGNOSTICS:
        if ((rc = mb__diagnostics_check(&response->diagnostics)) != 0)
            return rc;
        if (response->diagnostics.data == NULL)
            return MB_EINVAL;
        mb_put_u16(data, response->diagnostics.sub_function);
        memcpy(data + 2, response->diagnostics.data, response->diagnostics.data_length);
        size = 2 + (size_t)response->diagnostics.data_length;
        break;

    case MB_FC_GET_COMM_EVENT_COUNTER:
        if (!comm_status_valid(response->event_counter.status))
            return MB_EVALUE;
        mb_put_u16(data, response->event_counter.status);
        mb_put_u16(data + 2, response->event_counter.event_count);
        size = 4;
        break;

    case MB_FC_GET_COMM_EVENT_LOG:
        if (!comm_status_valid(response->event_log.status))
            return MB_EVALUE;
        if (response->event_log.event_length > MB_MAX_EVENT_LOG)
            return MB_EBYTECOUNT;
        data[0] = (uint8_t)(6 + response->event_log.event_length);
        mb_put_u16(data + 1, response->event_log.status);
        mb_put_u16(data + 3, response->event_log.event_count);
        mb_put_u16(data + 5, response->event_log.message_count);
        if ((rc = mb__put_bytes(data + 7, response->event_log.events,
                                response->event_log.event_length)) != 0)
            return rc;
        size = 7 + (size_t)response->event_log.event_length;
        break;

    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        if (!mb__write_quantity_valid(response->function, response->write_multiple.quantity))
            return MB_EQUANTITY;
        mb_put_u16(data, response->write_multiple.address);
        mb_put_u16(data + 2, response->write_multiple.quantity);
        size = 4;
        break;

    case MB_FC_REPORT_SERVER_ID:
        if (response->server_id.byte_count < 1 || response->server_id.byte_count > MB_PDU_MAX - 2)
            return MB_EBYTECOUNT;
        data[0] = response->server_id.byte_count;
        if ((rc = mb__put_bytes(data + 1, response->server_id.data,
                                response->server_id.byte_count)) != 0)
            return rc;
        size = 1 + (size_t)response->server_id.byte_count;
        break;

    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD: {
        uint8_t layout =
            response->function == MB_FC_READ_FILE_RECORD ? MB_FILE_READ_RESPONSE : MB_FILE_WRITE;
        uint8_t count;
        if (response->file.layout != layout || response->file.data == NULL)
            return MB_EINVAL;
        if ((rc = mb__file_records_scan(layout, response->file.data, response->file.length, 1,
                                        &count)) != 0)
            return rc;
        data[0] = response->file.length;
        memcpy(data + 1, response->file.data, response->file.length);
        size = 1 + (size_t)response->file.length;
        break;
    }

    case MB_FC_MASK_WRITE_REGISTER:
        mb_put_u16(data, response->mask_write.address);
        mb_put_u16(data + 2, response->mask_write.and_mask);
        mb_put_u16(data + 4, response->mask_write.or_mask);
        size = 6;
        break;

    case MB_FC_READ_FIFO_QUEUE:
        if (response->fifo.count > MB_MAX_FIFO_COUNT)
            return MB_EQUANTITY;
        mb_put_u16(data, (uint16_t)(2 + 2 * response->fifo.count));
        mb_put_u16(data + 2, response->fifo.count);
        if ((rc = mb__put_bytes(data + 4, response->fifo.values,
                                2 * (size_t)response->fifo.count)) != 0)
            return rc;
        size = 4 + 2 * (size_t)response->fifo.count;
        break;

    case MB_FC_ENCAPSULATED_INTERFACE:
        if (response->mei.mei_type == MB_MEI_DEVICE_ID) {
            if (!device_id_header_valid(response->device_id.read_code,
                                        response->device_id.conformity_level,
                                        response->device_id.more_follows))
                return MB_EVALUE;
            if (response->device_id.objects_length > MB_PDU_MAX - 7)
                return MB_ELENGTH;
            if (response->device_id.objects_length > 0 && response->device_id.objects == NULL)
                return MB_EINVAL;
            if ((rc = mb__device_objects_scan(response->device_id.objects,
                                              response->device_id.objects_length,
                                              response->device_id.object_count)) != 0)
                return rc;
            data[0] = MB_MEI_DEVICE_ID;
            data[1] = response->device_id.read_code;
            data[2] = response->device_id.conformity_level;
            data[3] = response->device_id.more_follows;
            data[4] = response->device_id.next_object_id;
            data[5] = response->device_id.object_count;
            if (response->device_id.objects_length > 0)
                memcpy(data + 6, response->device_id.objects, response->device_id.objects_length);
            size = 6 + (size_t)response->device_id.objects_length;
            break;
        }
        if ((rc = mb__encode_mei(&response->mei, data, &size)) != 0)
            return rc;
        break;

    default:
        if ((rc = mb__encode_raw(response->function, &response->raw, data, &size)) != 0)
            return rc;
        break;
    }
    return mb__encode_finish(out, size, pdu, capacity);
}

/* ---- matching a response to its request ---- */

static int file_read_matches(const struct mb_file_records *request,
                             const struct mb_file_records *response) {
    /* Walked to the end on both sides: `count` may not be set on a request built by hand. */
    size_t request_offset = 0, response_offset = 0;
    struct mb_file_record asked, answered;
    int more;
    while ((more = mb_file_records_next(request, &request_offset, &asked)) == 1) {
        if (mb_file_records_next(response, &response_offset, &answered) != 1 ||
            answered.record_length != asked.record_length)
            return 0;
    }
    return more == 0 && mb_file_records_next(response, &response_offset, &answered) == 0;
}

int mb_response_matches(const struct mb_request *request, const struct mb_response *response) {
    if (request == NULL || response == NULL)
        return MB_EINVAL;
    if (request->function != response->function)
        return MB_EMISMATCH;
    if (response->exception != 0)
        return 0;

    int same;
    switch (request->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
        same = response->read.byte_count == mb__bit_bytes(request->read.quantity);
        break;
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        same = response->read.byte_count == 2 * (size_t)request->read.quantity;
        break;
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        same = response->read.byte_count == 2 * (size_t)request->read_write.read_quantity;
        break;
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        same = response->write_single.address == request->write_single.address &&
               response->write_single.value == request->write_single.value;
        break;
    case MB_FC_DIAGNOSTICS:
        /* Every sub-function echoes its sub-function code, and its data too, except the
         * diagnostic register and the counters, which answer with a value of their own. */
        same = response->diagnostics.sub_function == request->diagnostics.sub_function;
        if (same && !mb__diagnostics_returns_value(request->diagnostics.sub_function))
            same = response->diagnostics.data_length == request->diagnostics.data_length &&
                   memcmp(response->diagnostics.data, request->diagnostics.data,
                          request->diagnostics.data_length) == 0;
        break;
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        same = response->write_multiple.address == request->write_multiple.address &&
               response->write_multiple.quantity == request->write_multiple.quantity;
        break;
    case MB_FC_READ_FILE_RECORD:
        same = file_read_matches(&request->file, &response->file);
        break;
    case MB_FC_WRITE_FILE_RECORD:
        same = response->file.length == request->file.length &&
               memcmp(response->file.data, request->file.data, request->file.length) == 0;
        break;
    case MB_FC_MASK_WRITE_REGISTER:
        same = response->mask_write.address == request->mask_write.address &&
               response->mask_write.and_mask == request->mask_write.and_mask &&
               response->mask_write.or_mask == request->mask_write.or_mask;
        break;
    case MB_FC_ENCAPSULATED_INTERFACE:
        same = response->mei.mei_type == request->mei.mei_type;
        if (same && request->mei.mei_type == MB_MEI_DEVICE_ID) {
            same = response->device_id.read_code == request->device_id.read_code;
            uint8_t first =
                response->device_id.objects_length >= 1 ? response->device_id.objects[0] : 0;
            /* Individual access answers with exactly the object asked for; a stream starts at
             * the object asked for, or at 0 when the device restarted it. */
            if (same && request->device_id.read_code == MB_DEVICE_ID_SPECIFIC)
                same =
                    response->device_id.object_count == 1 && first == request->device_id.object_id;
            else if (same && response->device_id.object_count > 0)
                same = first == request->device_id.object_id || first == 0;
        }
        break;
    default:
        /* FC 7, 11, 12, 17, 24 and user-defined codes carry nothing to compare. */
        same = 1;
        break;
    }
    return same ? 0 : MB_EMISMATCH;
}
