/* SPDX-License-Identifier: MIT */
/* Request PDUs: decode and encode for every public function code. */
#include <string.h>

#include "core/codec.h"
#include "mbsec/pdu.h"

/* Quantity limits per function code, shared by the decoder and the encoder. */
static int read_quantity_valid(uint8_t function, uint16_t quantity) {
    uint16_t max =
        function <= MB_FC_READ_DISCRETE_INPUTS ? MB_MAX_READ_BITS : MB_MAX_READ_REGISTERS;
    return quantity >= 1 && quantity <= max;
}

static size_t write_byte_count(uint8_t function, uint16_t quantity) {
    return function == MB_FC_WRITE_MULTIPLE_COILS ? mb__bit_bytes(quantity) : 2 * (size_t)quantity;
}

static int read_write_quantities_valid(uint16_t read_quantity, uint16_t write_quantity) {
    return read_quantity >= 1 && read_quantity <= MB_MAX_READ_REGISTERS && write_quantity >= 1 &&
           write_quantity <= MB_MAX_RW_WRITE_REGISTERS;
}

static int device_id_read_code_valid(uint8_t read_code) {
    return read_code >= MB_DEVICE_ID_BASIC && read_code <= MB_DEVICE_ID_SPECIFIC;
}

int mb_request_decode(const uint8_t *pdu, size_t length, struct mb_request *request) {
    if (pdu == NULL || request == NULL || length == 0 || length > MB_PDU_MAX)
        return MB_EINVAL;
    memset(request, 0, sizeof *request);
    request->function = pdu[0];
    const uint8_t *data = pdu + 1;
    size_t size = length - 1;
    int rc;

    switch (request->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        if ((rc = mb__expect_length(size, 4)) != 0)
            return rc;
        request->read.address = mb_get_u16(data);
        request->read.quantity = mb_get_u16(data + 2);
        return read_quantity_valid(request->function, request->read.quantity) ? 0 : MB_EQUANTITY;

    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        if ((rc = mb__expect_length(size, 4)) != 0)
            return rc;
        request->write_single.address = mb_get_u16(data);
        request->write_single.value = mb_get_u16(data + 2);
        if (request->function == MB_FC_WRITE_SINGLE_COIL &&
            request->write_single.value != MB_COIL_ON && request->write_single.value != MB_COIL_OFF)
            return MB_EVALUE;
        return 0;

    case MB_FC_READ_EXCEPTION_STATUS:
    case MB_FC_GET_COMM_EVENT_COUNTER:
    case MB_FC_GET_COMM_EVENT_LOG:
    case MB_FC_REPORT_SERVER_ID:
        return mb__expect_length(size, 0);

    case MB_FC_DIAGNOSTICS:
        if (size < 2)
            return MB_ETRUNCATED;
        request->diagnostics.sub_function = mb_get_u16(data);
        request->diagnostics.data = data + 2;
        request->diagnostics.data_length = (uint8_t)(size - 2);
        if ((rc = mb__diagnostics_check(&request->diagnostics)) != 0)
            return rc;
        return mb__diagnostics_request_values(&request->diagnostics);

    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS: {
        if (size < 5)
            return MB_ETRUNCATED;
        request->write_multiple.address = mb_get_u16(data);
        request->write_multiple.quantity = mb_get_u16(data + 2);
        request->write_multiple.values = data + 5;
        if (!mb__write_quantity_valid(request->function, request->write_multiple.quantity))
            return MB_EQUANTITY;
        if (data[4] != write_byte_count(request->function, request->write_multiple.quantity))
            return MB_EBYTECOUNT;
        return mb__expect_length(size, 5 + (size_t)data[4]);
    }

    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD: {
        if (size < 1)
            return MB_ETRUNCATED;
        uint8_t layout =
            request->function == MB_FC_READ_FILE_RECORD ? MB_FILE_READ_REQUEST : MB_FILE_WRITE;
        request->file.layout = layout;
        request->file.data = data + 1;
        request->file.length = data[0];
        if (!mb__file_byte_count_valid(layout, data[0]))
            return MB_EBYTECOUNT;
        if ((rc = mb__expect_length(size, 1 + (size_t)data[0])) != 0)
            return rc;
        return mb__file_records_scan(layout, data + 1, data[0], 0, &request->file.count);
    }

    case MB_FC_MASK_WRITE_REGISTER:
        if ((rc = mb__expect_length(size, 6)) != 0)
            return rc;
        request->mask_write.address = mb_get_u16(data);
        request->mask_write.and_mask = mb_get_u16(data + 2);
        request->mask_write.or_mask = mb_get_u16(data + 4);
        return 0;

    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        if (size < 9)
            return MB_ETRUNCATED;
        request->read_write.read_address = mb_get_u16(data);
        request->read_write.read_quantity = mb_get_u16(data + 2);
        request->read_write.write_address = mb_get_u16(data + 4);
        request->read_write.write_quantity = mb_get_u16(data + 6);
        request->read_write.values = data + 9;
        if (!read_write_quantities_valid(request->read_write.read_quantity,
                                         request->read_write.write_quantity))
            return MB_EQUANTITY;
        if (data[8] != 2 * (size_t)request->read_write.write_quantity)
            return MB_EBYTECOUNT;
        return mb__expect_length(size, 9 + (size_t)data[8]);

    case MB_FC_READ_FIFO_QUEUE:
        if ((rc = mb__expect_length(size, 2)) != 0)
            return rc;
        request->fifo.address = mb_get_u16(data);
        return 0;

    case MB_FC_ENCAPSULATED_INTERFACE:
        if (size < 1)
            return MB_ETRUNCATED;
        if (data[0] == MB_MEI_DEVICE_ID) {
            if ((rc = mb__expect_length(size, 3)) != 0)
                return rc;
            request->device_id.mei_type = MB_MEI_DEVICE_ID;
            request->device_id.read_code = data[1];
            request->device_id.object_id = data[2];
            return device_id_read_code_valid(data[1]) ? 0 : MB_EVALUE;
        }
        if (data[0] != MB_MEI_CANOPEN)
            return MB_EMEI;
        request->mei.mei_type = data[0];
        request->mei.data = data + 1;
        request->mei.length = (uint8_t)(size - 1);
        return 0;

    default:
        if (!mb_function_is_user_defined(request->function))
            return MB_EFUNCTION;
        request->raw.data = data;
        request->raw.length = (uint8_t)size;
        return 0;
    }
}

int mb_request_encode(const struct mb_request *request, uint8_t *pdu, size_t capacity) {
    if (request == NULL || pdu == NULL)
        return MB_EINVAL;
    /* Everything is built in a full-size scratch PDU and copied out once its length is known,
     * so that a short buffer gets MB_ENOSPC and never a partial write. */
    uint8_t out[MB_PDU_MAX];
    uint8_t *data = out + 1;
    size_t size;
    int rc;
    out[0] = request->function;

    switch (request->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        if (!read_quantity_valid(request->function, request->read.quantity))
            return MB_EQUANTITY;
        mb_put_u16(data, request->read.address);
        mb_put_u16(data + 2, request->read.quantity);
        size = 4;
        break;

    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        if (request->function == MB_FC_WRITE_SINGLE_COIL &&
            request->write_single.value != MB_COIL_ON && request->write_single.value != MB_COIL_OFF)
            return MB_EVALUE;
        mb_put_u16(data, request->write_single.address);
        mb_put_u16(data + 2, request->write_single.value);
        size = 4;
        break;

    case MB_FC_READ_EXCEPTION_STATUS:
    case MB_FC_GET_COMM_EVENT_COUNTER:
    case MB_FC_GET_COMM_EVENT_LOG:
    case MB_FC_REPORT_SERVER_ID:
        size = 0;
        break;

    case MB_FC_DIAGNOSTICS:
        if ((rc = mb__diagnostics_check(&request->diagnostics)) != 0)
            return rc;
        if (request->diagnostics.data == NULL)
            return MB_EINVAL;
        if ((rc = mb__diagnostics_request_values(&request->diagnostics)) != 0)
            return rc;
        mb_put_u16(data, request->diagnostics.sub_function);
        memcpy(data + 2, request->diagnostics.data, request->diagnostics.data_length);
        size = 2 + (size_t)request->diagnostics.data_length;
        break;

    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS: {
        uint16_t quantity = request->write_multiple.quantity;
        if (!mb__write_quantity_valid(request->function, quantity))
            return MB_EQUANTITY;
        size_t byte_count = write_byte_count(request->function, quantity);
        mb_put_u16(data, request->write_multiple.address);
        mb_put_u16(data + 2, quantity);
        data[4] = (uint8_t)byte_count;
        if ((rc = mb__put_bytes(data + 5, request->write_multiple.values, byte_count)) != 0)
            return rc;
        size = 5 + byte_count;
        break;
    }

    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD: {
        uint8_t layout =
            request->function == MB_FC_READ_FILE_RECORD ? MB_FILE_READ_REQUEST : MB_FILE_WRITE;
        uint8_t count;
        if (request->file.layout != layout || request->file.data == NULL)
            return MB_EINVAL;
        if ((rc = mb__file_records_scan(layout, request->file.data, request->file.length, 0,
                                        &count)) != 0)
            return rc;
        data[0] = request->file.length;
        memcpy(data + 1, request->file.data, request->file.length);
        size = 1 + (size_t)request->file.length;
        break;
    }

    case MB_FC_MASK_WRITE_REGISTER:
        mb_put_u16(data, request->mask_write.address);
        mb_put_u16(data + 2, request->mask_write.and_mask);
        mb_put_u16(data + 4, request->mask_write.or_mask);
        size = 6;
        break;

    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS: {
        uint16_t write_quantity = request->read_write.write_quantity;
        if (!read_write_quantities_valid(request->read_write.read_quantity, write_quantity))
            return MB_EQUANTITY;
        mb_put_u16(data, request->read_write.read_address);
        mb_put_u16(data + 2, request->read_write.read_quantity);
        mb_put_u16(data + 4, request->read_write.write_address);
        mb_put_u16(data + 6, write_quantity);
        data[8] = (uint8_t)(2 * write_quantity);
        if ((rc = mb__put_bytes(data + 9, request->read_write.values,
                                2 * (size_t)write_quantity)) != 0)
            return rc;
        size = 9 + 2 * (size_t)write_quantity;
        break;
    }

    case MB_FC_READ_FIFO_QUEUE:
        mb_put_u16(data, request->fifo.address);
        size = 2;
        break;

    case MB_FC_ENCAPSULATED_INTERFACE:
        if (request->mei.mei_type == MB_MEI_DEVICE_ID) {
            if (!device_id_read_code_valid(request->device_id.read_code))
                return MB_EVALUE;
            data[0] = MB_MEI_DEVICE_ID;
            data[1] = request->device_id.read_code;
            data[2] = request->device_id.object_id;
            size = 3;
            break;
        }
        if ((rc = mb__encode_mei(&request->mei, data, &size)) != 0)
            return rc;
        break;

    default:
        if ((rc = mb__encode_raw(request->function, &request->raw, data, &size)) != 0)
            return rc;
        break;
    }
    return mb__encode_finish(out, size, pdu, capacity);
}
