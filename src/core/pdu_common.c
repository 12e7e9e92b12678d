/* SPDX-License-Identifier: MIT */
/* What requests and responses share: FC 8 rules, file records, device objects, names. */
#include <string.h>

#include "core/codec.h"
#include "mbsec/pdu.h"

int mb__diagnostics_known(uint16_t sub_function) {
    return sub_function <= MB_DIAG_FORCE_LISTEN_ONLY ||
           (sub_function >= MB_DIAG_CLEAR_COUNTERS &&
            sub_function <= MB_DIAG_BUS_CHARACTER_OVERRUN_COUNT) ||
           sub_function == MB_DIAG_CLEAR_OVERRUN_COUNTER;
}

int mb__diagnostics_returns_value(uint16_t sub_function) {
    return sub_function == MB_DIAG_RETURN_DIAGNOSTIC_REGISTER ||
           (sub_function >= MB_DIAG_BUS_MESSAGE_COUNT &&
            sub_function <= MB_DIAG_BUS_CHARACTER_OVERRUN_COUNT);
}

int mb__diagnostics_check(const struct mb_diagnostics *diagnostics) {
    if (!mb__diagnostics_known(diagnostics->sub_function))
        return MB_ESUBFUNCTION;
    if (diagnostics->sub_function == MB_DIAG_RETURN_QUERY_DATA) {
        /* The spec gives the echoed data as N x 2 bytes; an empty echo tests nothing. */
        if (diagnostics->data_length < 2)
            return MB_ETRUNCATED;
        if (diagnostics->data_length % 2 != 0 || diagnostics->data_length > MB_PDU_MAX - 3)
            return MB_ELENGTH;
        return 0;
    }
    return mb__expect_length(diagnostics->data_length, 2);
}

int mb__diagnostics_request_values(const struct mb_diagnostics *diagnostics) {
    uint16_t value = mb_get_u16(diagnostics->data);
    switch (diagnostics->sub_function) {
    case MB_DIAG_RETURN_QUERY_DATA:
        return 0;
    case MB_DIAG_RESTART_COMMUNICATIONS:
        /* 0xFF00 also clears the communications event log. */
        return value == 0x0000 || value == 0xFF00 ? 0 : MB_EVALUE;
    case MB_DIAG_CHANGE_ASCII_DELIMITER:
        /* The new delimiter character, then a zero byte. */
        return diagnostics->data[1] == 0 ? 0 : MB_EVALUE;
    default:
        return value == 0x0000 ? 0 : MB_EVALUE;
    }
}

int mb__conformity_valid(uint8_t level) {
    uint8_t category = level & 0x7F;
    return category >= 1 && category <= 3;
}

/* ---- encoders' shared parts ---- */

int mb__put_bytes(uint8_t *at, const uint8_t *source, size_t size) {
    if (size == 0)
        return 0;
    if (source == NULL)
        return MB_EINVAL;
    memcpy(at, source, size);
    return 0;
}

int mb__encode_mei(const struct mb_mei *mei, uint8_t *data, size_t *size) {
    if (mei->mei_type != MB_MEI_CANOPEN)
        return MB_EMEI;
    if (mei->length > MB_PDU_MAX - 2)
        return MB_ELENGTH;
    data[0] = mei->mei_type;
    *size = 1 + (size_t)mei->length;
    return mb__put_bytes(data + 1, mei->data, mei->length);
}

int mb__encode_raw(uint8_t function, const struct mb_raw *raw, uint8_t *data, size_t *size) {
    if (!mb_function_is_user_defined(function))
        return MB_EFUNCTION;
    if (raw->length > MB_PDU_MAX - 1)
        return MB_ELENGTH;
    *size = raw->length;
    return mb__put_bytes(data, raw->data, raw->length);
}

int mb__encode_finish(const uint8_t *scratch, size_t size, uint8_t *pdu, size_t capacity) {
    if (1 + size > capacity)
        return MB_ENOSPC;
    memcpy(pdu, scratch, 1 + size);
    return (int)(1 + size);
}

/* ---- FC 20 / 21 records ---- */

/* The size of the sub-request or sub-response at data[0..length), or a negative error. */
static int file_record_size(uint8_t layout, const uint8_t *data, size_t length,
                            int strict_reference) {
    switch (layout) {
    case MB_FILE_READ_REQUEST:
        if (length < 7)
            return MB_ETRUNCATED;
        if (strict_reference && data[0] != MB_FILE_REFERENCE_TYPE)
            return MB_EVALUE;
        return 7;
    case MB_FILE_READ_RESPONSE: {
        /* File response length counts the reference type and the registers: 1 + 2N, N >= 1
         * (a server answers a group of 0 registers with exception 02, never with data). */
        if (length < 2)
            return MB_ETRUNCATED;
        size_t response_length = data[0];
        if (response_length < 3 || response_length % 2 == 0)
            return MB_ELENGTH;
        if (length < 1 + response_length)
            return MB_ETRUNCATED;
        if (strict_reference && data[1] != MB_FILE_REFERENCE_TYPE)
            return MB_EVALUE;
        return (int)(1 + response_length);
    }
    case MB_FILE_WRITE: {
        if (length < 7)
            return MB_ETRUNCATED;
        if (strict_reference && data[0] != MB_FILE_REFERENCE_TYPE)
            return MB_EVALUE;
        size_t size = 7 + 2 * (size_t)mb_get_u16(data + 5);
        if (length < size)
            return MB_ETRUNCATED;
        return (int)size;
    }
    default:
        return MB_EINVAL;
    }
}

int mb__file_byte_count_valid(uint8_t layout, size_t length) {
    switch (layout) {
    case MB_FILE_READ_REQUEST:
        return length >= 0x07 && length <= 0xF5;
    case MB_FILE_READ_RESPONSE:
        return length >= 0x04 && length <= 0xF5;
    case MB_FILE_WRITE:
        return length >= 0x09 && length <= 0xFB;
    default:
        return 0;
    }
}

int mb__file_records_scan(uint8_t layout, const uint8_t *data, size_t length, int strict_reference,
                          uint8_t *count) {
    size_t offset = 0;
    size_t response_bytes = 0;
    unsigned records = 0;

    if (layout < MB_FILE_READ_REQUEST || layout > MB_FILE_WRITE)
        return MB_EINVAL;
    if (!mb__file_byte_count_valid(layout, length))
        return MB_EBYTECOUNT;
    if (layout == MB_FILE_READ_REQUEST && length % 7 != 0)
        return MB_ELENGTH;
    while (offset < length) {
        int size = file_record_size(layout, data + offset, length - offset, strict_reference);
        if (size < 0)
            return size == MB_ETRUNCATED ? MB_ELENGTH : size;
        if (layout == MB_FILE_READ_REQUEST)
            response_bytes += 2 + 2 * (size_t)mb_get_u16(data + offset + 5);
        offset += (size_t)size;
        records++;
    }
    /* The response to a read must fit one PDU: its data length byte is at most 0xF5. */
    if (layout == MB_FILE_READ_REQUEST && response_bytes > 0xF5)
        return MB_EQUANTITY;
    *count = (uint8_t)records;
    return 0;
}

int mb_file_records_next(const struct mb_file_records *records, size_t *offset,
                         struct mb_file_record *record) {
    if (records == NULL || offset == NULL || record == NULL)
        return MB_EINVAL;
    if (*offset >= records->length)
        return 0;
    const uint8_t *at = records->data + *offset;
    int size = file_record_size(records->layout, at, records->length - *offset, 0);
    if (size < 0)
        return size == MB_EINVAL ? size : MB_ELENGTH;

    memset(record, 0, sizeof *record);
    if (records->layout == MB_FILE_READ_RESPONSE) {
        record->reference_type = at[1];
        record->record_length = (uint16_t)((at[0] - 1) / 2);
        record->data = at + 2;
    } else {
        record->reference_type = at[0];
        record->file_number = mb_get_u16(at + 1);
        record->record_number = mb_get_u16(at + 3);
        record->record_length = mb_get_u16(at + 5);
        record->data = records->layout == MB_FILE_WRITE ? at + 7 : NULL;
    }
    *offset += (size_t)size;
    return 1;
}

int mb_file_records_append(uint8_t layout, const struct mb_file_record *record, uint8_t *buffer,
                           size_t capacity, size_t *used) {
    if (record == NULL || buffer == NULL || used == NULL || *used > capacity ||
        record->record_length == 0)
        return MB_EINVAL;
    size_t data_bytes = 2 * (size_t)record->record_length;
    size_t size;
    switch (layout) {
    case MB_FILE_READ_REQUEST:
        size = 7;
        break;
    case MB_FILE_READ_RESPONSE:
        if (1 + data_bytes > 0xFF)
            return MB_EINVAL;
        size = 2 + data_bytes;
        break;
    case MB_FILE_WRITE:
        size = 7 + data_bytes;
        if (size > 0xFF)
            return MB_EINVAL;
        break;
    default:
        return MB_EINVAL;
    }
    if (layout != MB_FILE_READ_REQUEST && record->data == NULL)
        return MB_EINVAL;
    if (capacity - *used < size)
        return MB_ENOSPC;

    uint8_t *at = buffer + *used;
    if (layout == MB_FILE_READ_RESPONSE) {
        at[0] = (uint8_t)(1 + data_bytes);
        at[1] = record->reference_type;
        memcpy(at + 2, record->data, data_bytes);
    } else {
        at[0] = record->reference_type;
        mb_put_u16(at + 1, record->file_number);
        mb_put_u16(at + 3, record->record_number);
        mb_put_u16(at + 5, record->record_length);
        if (layout == MB_FILE_WRITE)
            memcpy(at + 7, record->data, data_bytes);
    }
    *used += size;
    return 0;
}

/* ---- FC 43/14 objects ---- */

int mb__device_objects_scan(const uint8_t *objects, size_t length, uint8_t count) {
    size_t offset = 0;
    for (unsigned i = 0; i < count; i++) {
        if (length - offset < 2)
            return MB_ETRUNCATED;
        size_t size = 2 + (size_t)objects[offset + 1];
        if (length - offset < size)
            return MB_ETRUNCATED;
        offset += size;
    }
    return offset == length ? 0 : MB_ELENGTH;
}

int mb_device_objects_next(const struct mb_response *response, size_t *offset,
                           struct mb_device_object *object) {
    if (response == NULL || offset == NULL || object == NULL)
        return MB_EINVAL;
    size_t length = response->device_id.objects_length;
    if (*offset >= length)
        return 0;
    const uint8_t *at = response->device_id.objects + *offset;
    if (length - *offset < 2 || length - *offset < 2 + (size_t)at[1])
        return MB_ELENGTH;
    object->id = at[0];
    object->length = at[1];
    object->value = at + 2;
    *offset += 2 + (size_t)at[1];
    return 1;
}

/* ---- names ---- */

const char *mb_exception_name(uint8_t code) {
    switch (code) {
    case MB_EX_ILLEGAL_FUNCTION:
        return "illegal function";
    case MB_EX_ILLEGAL_DATA_ADDRESS:
        return "illegal data address";
    case MB_EX_ILLEGAL_DATA_VALUE:
        return "illegal data value";
    case MB_EX_SERVER_DEVICE_FAILURE:
        return "server device failure";
    case MB_EX_ACKNOWLEDGE:
        return "acknowledge";
    case MB_EX_SERVER_DEVICE_BUSY:
        return "server device busy";
    case MB_EX_MEMORY_PARITY_ERROR:
        return "memory parity error";
    case MB_EX_GATEWAY_PATH_UNAVAILABLE:
        return "gateway path unavailable";
    case MB_EX_GATEWAY_TARGET_FAILED:
        return "gateway target device failed to respond";
    default:
        return "unknown exception";
    }
}

int mb_function_is_user_defined(uint8_t function) {
    return (function >= 65 && function <= 72) || (function >= 100 && function <= 110);
}

const char *mb_function_name(uint8_t function) {
    switch (function) {
    case MB_FC_READ_COILS:
        return "read coils";
    case MB_FC_READ_DISCRETE_INPUTS:
        return "read discrete inputs";
    case MB_FC_READ_HOLDING_REGISTERS:
        return "read holding registers";
    case MB_FC_READ_INPUT_REGISTERS:
        return "read input registers";
    case MB_FC_WRITE_SINGLE_COIL:
        return "write single coil";
    case MB_FC_WRITE_SINGLE_REGISTER:
        return "write single register";
    case MB_FC_READ_EXCEPTION_STATUS:
        return "read exception status";
    case MB_FC_DIAGNOSTICS:
        return "diagnostics";
    case MB_FC_GET_COMM_EVENT_COUNTER:
        return "get comm event counter";
    case MB_FC_GET_COMM_EVENT_LOG:
        return "get comm event log";
    case MB_FC_WRITE_MULTIPLE_COILS:
        return "write multiple coils";
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        return "write multiple registers";
    case MB_FC_REPORT_SERVER_ID:
        return "report server id";
    case MB_FC_READ_FILE_RECORD:
        return "read file record";
    case MB_FC_WRITE_FILE_RECORD:
        return "write file record";
    case MB_FC_MASK_WRITE_REGISTER:
        return "mask write register";
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        return "read/write multiple registers";
    case MB_FC_READ_FIFO_QUEUE:
        return "read FIFO queue";
    case MB_FC_ENCAPSULATED_INTERFACE:
        return "encapsulated interface transport";
    default:
        return mb_function_is_user_defined(function) ? "user-defined" : "reserved";
    }
}

uint8_t mb_error_exception(int error) {
    switch (error) {
    case MB_EFUNCTION:
    case MB_ESUBFUNCTION:
    case MB_EMEI:
        return MB_EX_ILLEGAL_FUNCTION;
    case MB_ETRUNCATED:
    case MB_ELENGTH:
    case MB_EQUANTITY:
    case MB_EBYTECOUNT:
    case MB_EVALUE:
        return MB_EX_ILLEGAL_DATA_VALUE;
    default:
        return 0;
    }
}
