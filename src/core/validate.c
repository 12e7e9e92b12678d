/* SPDX-License-Identifier: MIT */
/* Request validation for servers, in the spec's order of checks. */
#include "mbsec/validate.h"
#include "core/codec.h"

void mb_extents_set_function(struct mb_extents *extents, uint8_t function, int supported) {
    uint8_t bit = (uint8_t)(1u << (function % 8));
    if (supported)
        extents->functions[function / 8] |= bit;
    else
        extents->functions[function / 8] &= (uint8_t)~bit;
}

int mb_extents_has_function(const struct mb_extents *extents, uint8_t function) {
    return (extents->functions[function / 8] >> (function % 8)) & 1;
}

/* The table a function code reads or writes, or NULL for codes without one. */
static const struct mb_table_extent *table_of(const struct mb_extents *extents, uint8_t function) {
    switch (function) {
    case MB_FC_READ_COILS:
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_MULTIPLE_COILS:
        return &extents->coils;
    case MB_FC_READ_DISCRETE_INPUTS:
        return &extents->discrete_inputs;
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_WRITE_SINGLE_REGISTER:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
    case MB_FC_MASK_WRITE_REGISTER:
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
    case MB_FC_READ_FIFO_QUEUE:
        return &extents->holding_registers;
    case MB_FC_READ_INPUT_REGISTERS:
        return &extents->input_registers;
    default:
        return NULL;
    }
}

/* A function is supported when it is marked so and the server has the table it works on
 * (`table`, from table_of(), which the callers need too). */
static int function_supported(const struct mb_extents *extents, uint8_t function,
                              const struct mb_table_extent *table) {
    if (!mb_extents_has_function(extents, function))
        return 0;
    if (table != NULL && table->size == 0)
        return 0;
    if ((function == MB_FC_READ_FILE_RECORD || function == MB_FC_WRITE_FILE_RECORD) &&
        (extents->files == 0 || extents->records_per_file == 0))
        return 0;
    return 1;
}

/* 1 when [address, address + quantity) lies inside the table. */
static int in_table(const struct mb_table_extent *table, uint16_t address, uint32_t quantity) {
    uint32_t end = (uint32_t)table->start + table->size;
    return address >= table->start && (uint32_t)address + quantity <= end;
}

static int file_records_valid(const struct mb_extents *extents,
                              const struct mb_file_records *records) {
    size_t offset = 0;
    struct mb_file_record record;
    uint32_t records_per_file = extents->records_per_file;
    if (records_per_file > MB_FILE_MAX_RECORD + 1)
        records_per_file = MB_FILE_MAX_RECORD + 1;
    int rc;
    while ((rc = mb_file_records_next(records, &offset, &record)) == 1) {
        if (record.reference_type != MB_FILE_REFERENCE_TYPE || record.file_number == 0 ||
            record.file_number > extents->files || record.record_length == 0 ||
            (uint32_t)record.record_number + record.record_length > records_per_file)
            return 0;
    }
    return rc == 0;
}

int mb_request_validate(const struct mb_request *request, const struct mb_extents *extents) {
    if (request == NULL || extents == NULL)
        return MB_EINVAL;
    uint8_t function = request->function;
    const struct mb_table_extent *table = table_of(extents, function);
    if (!function_supported(extents, function, table))
        return MB_EX_ILLEGAL_FUNCTION;
    int inside = 1;

    switch (function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        inside = in_table(table, request->read.address, request->read.quantity);
        break;
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        inside = in_table(table, request->write_single.address, 1);
        break;
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        inside = in_table(table, request->write_multiple.address, request->write_multiple.quantity);
        break;
    case MB_FC_MASK_WRITE_REGISTER:
        inside = in_table(table, request->mask_write.address, 1);
        break;
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        inside =
            in_table(table, request->read_write.write_address,
                     request->read_write.write_quantity) &&
            in_table(table, request->read_write.read_address, request->read_write.read_quantity);
        break;
    case MB_FC_READ_FIFO_QUEUE:
        inside = in_table(table, request->fifo.address, 1);
        break;
    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD: {
        /* A request built by hand has not met the decoder: its structure and the size of the
         * response it asks for are 03, checked before its records (02). */
        uint8_t count;
        uint8_t layout = function == MB_FC_READ_FILE_RECORD ? MB_FILE_READ_REQUEST : MB_FILE_WRITE;
        if (request->file.layout != layout || request->file.data == NULL ||
            mb__file_records_scan(layout, request->file.data, request->file.length, 0, &count) != 0)
            return MB_EX_ILLEGAL_DATA_VALUE;
        inside = file_records_valid(extents, &request->file);
        break;
    }
    case MB_FC_ENCAPSULATED_INTERFACE:
        /* Of the encapsulated interfaces only device identification is served. */
        if (request->mei.mei_type != MB_MEI_DEVICE_ID)
            return MB_EX_ILLEGAL_FUNCTION;
        break;
    default:
        break;
    }
    return inside ? 0 : MB_EX_ILLEGAL_DATA_ADDRESS;
}

int mb_request_check(const uint8_t *pdu, size_t length, const struct mb_extents *extents,
                     struct mb_request *request) {
    if (pdu == NULL || extents == NULL || request == NULL || length == 0)
        return MB_EINVAL;
    /* 01 comes first: a function the server lacks is refused before its data is judged. */
    if (!function_supported(extents, pdu[0], table_of(extents, pdu[0])))
        return MB_EX_ILLEGAL_FUNCTION;
    int rc = mb_request_decode(pdu, length, request);
    if (rc < 0) {
        uint8_t exception = mb_error_exception(rc);
        return exception != 0 ? exception : MB_EX_ILLEGAL_DATA_VALUE;
    }
    return mb_request_validate(request, extents);
}

/* ---- limits a request built by hand might break (the decoder enforces them on the wire) ---- */

static int quantity_in(uint16_t quantity, uint16_t max) {
    return quantity >= 1 && quantity <= max;
}

int mb_request_validate_values(const struct mb_request *request) {
    if (request == NULL)
        return MB_EINVAL;
    switch (request->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
        return quantity_in(request->read.quantity, MB_MAX_READ_BITS) ? 0 : MB_EX_ILLEGAL_DATA_VALUE;
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        return quantity_in(request->read.quantity, MB_MAX_READ_REGISTERS)
                   ? 0
                   : MB_EX_ILLEGAL_DATA_VALUE;
    case MB_FC_WRITE_SINGLE_COIL:
        return request->write_single.value == MB_COIL_ON ||
                       request->write_single.value == MB_COIL_OFF
                   ? 0
                   : MB_EX_ILLEGAL_DATA_VALUE;
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        return mb__write_quantity_valid(request->function, request->write_multiple.quantity) &&
                       request->write_multiple.values != NULL
                   ? 0
                   : MB_EX_ILLEGAL_DATA_VALUE;
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        return quantity_in(request->read_write.read_quantity, MB_MAX_READ_REGISTERS) &&
                       quantity_in(request->read_write.write_quantity, MB_MAX_RW_WRITE_REGISTERS) &&
                       request->read_write.values != NULL
                   ? 0
                   : MB_EX_ILLEGAL_DATA_VALUE;
    case MB_FC_DIAGNOSTICS: {
        int rc = mb__diagnostics_check(&request->diagnostics);
        if (rc == MB_ESUBFUNCTION)
            return MB_EX_ILLEGAL_FUNCTION;
        if (rc != 0 || request->diagnostics.data == NULL ||
            mb__diagnostics_request_values(&request->diagnostics) != 0)
            return MB_EX_ILLEGAL_DATA_VALUE;
        return 0;
    }
    default:
        return 0;
    }
}
