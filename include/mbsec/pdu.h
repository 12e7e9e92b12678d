/* SPDX-License-Identifier: MIT */
/*
 * Modbus PDUs: encode and decode requests and responses for every public function code.
 *
 * A PDU is the function code and its data, at most 253 bytes, the same on TCP and on serial
 * lines. Nothing here allocates or does I/O.
 *
 * Decoded messages are views: every pointer in struct mb_request and struct mb_response points
 * into the buffer that was decoded, which the caller owns and must keep alive while it uses the
 * view. Register values stay in wire order (big-endian, two bytes each: read them with
 * mb_get_u16()); bits stay packed as on the wire (least significant bit first: read them with
 * mb_bits_get() from value.h).
 *
 * Encoders take the same structs and apply the same limits as the decoders, so that whatever
 * encodes successfully also decodes to an equal struct, and the library never sends a PDU its
 * own decoder would refuse. To send a deliberately malformed PDU, write the bytes yourself.
 */
#ifndef MBSEC_PDU_H
#define MBSEC_PDU_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/error.h"
#include "mbsec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

#define MB_PDU_MAX 253 /* function code + data */

/* Public function codes. */
enum mb_function {
    MB_FC_READ_COILS = 1,
    MB_FC_READ_DISCRETE_INPUTS = 2,
    MB_FC_READ_HOLDING_REGISTERS = 3,
    MB_FC_READ_INPUT_REGISTERS = 4,
    MB_FC_WRITE_SINGLE_COIL = 5,
    MB_FC_WRITE_SINGLE_REGISTER = 6,
    MB_FC_READ_EXCEPTION_STATUS = 7,
    MB_FC_DIAGNOSTICS = 8,
    MB_FC_GET_COMM_EVENT_COUNTER = 11,
    MB_FC_GET_COMM_EVENT_LOG = 12,
    MB_FC_WRITE_MULTIPLE_COILS = 15,
    MB_FC_WRITE_MULTIPLE_REGISTERS = 16,
    MB_FC_REPORT_SERVER_ID = 17,
    MB_FC_READ_FILE_RECORD = 20,
    MB_FC_WRITE_FILE_RECORD = 21,
    MB_FC_MASK_WRITE_REGISTER = 22,
    MB_FC_READ_WRITE_MULTIPLE_REGISTERS = 23,
    MB_FC_READ_FIFO_QUEUE = 24,
    MB_FC_ENCAPSULATED_INTERFACE = 43,
};

/* The bit that turns a function code into an exception response. */
#define MB_EXCEPTION_BIT 0x80

/* Exception codes (the byte after function | 0x80). */
enum mb_exception {
    MB_EX_ILLEGAL_FUNCTION = 0x01,
    MB_EX_ILLEGAL_DATA_ADDRESS = 0x02,
    MB_EX_ILLEGAL_DATA_VALUE = 0x03,
    MB_EX_SERVER_DEVICE_FAILURE = 0x04,
    MB_EX_ACKNOWLEDGE = 0x05,
    MB_EX_SERVER_DEVICE_BUSY = 0x06,
    MB_EX_MEMORY_PARITY_ERROR = 0x08,
    MB_EX_GATEWAY_PATH_UNAVAILABLE = 0x0A,
    MB_EX_GATEWAY_TARGET_FAILED = 0x0B,
};

/* Limits of the function codes (Modbus Application Protocol V1.1b3). */
#define MB_MAX_READ_BITS 2000         /* FC 1, 2 */
#define MB_MAX_READ_REGISTERS 125     /* FC 3, 4, and the read part of FC 23 */
#define MB_MAX_WRITE_BITS 1968        /* FC 15 */
#define MB_MAX_WRITE_REGISTERS 123    /* FC 16 */
#define MB_MAX_RW_WRITE_REGISTERS 121 /* the write part of FC 23 */
#define MB_MAX_FIFO_COUNT 31          /* FC 24 */
#define MB_MAX_EVENT_LOG 64           /* FC 12: event bytes in a response */
#define MB_COIL_ON 0xFF00             /* FC 5 */
#define MB_COIL_OFF 0x0000
#define MB_FILE_REFERENCE_TYPE 6  /* FC 20, 21 */
#define MB_FILE_MAX_RECORD 0x270F /* record numbers 0..9999 */

/* FC 8 sub-functions. Codes not listed are reserved and decode as MB_ESUBFUNCTION. */
enum mb_diagnostics_sub {
    MB_DIAG_RETURN_QUERY_DATA = 0x00,
    MB_DIAG_RESTART_COMMUNICATIONS = 0x01,
    MB_DIAG_RETURN_DIAGNOSTIC_REGISTER = 0x02,
    MB_DIAG_CHANGE_ASCII_DELIMITER = 0x03,
    MB_DIAG_FORCE_LISTEN_ONLY = 0x04,
    MB_DIAG_CLEAR_COUNTERS = 0x0A,
    MB_DIAG_BUS_MESSAGE_COUNT = 0x0B,
    MB_DIAG_BUS_CRC_ERROR_COUNT = 0x0C,
    MB_DIAG_BUS_EXCEPTION_COUNT = 0x0D,
    MB_DIAG_SERVER_MESSAGE_COUNT = 0x0E,
    MB_DIAG_SERVER_NO_RESPONSE_COUNT = 0x0F,
    MB_DIAG_SERVER_NAK_COUNT = 0x10,
    MB_DIAG_SERVER_BUSY_COUNT = 0x11,
    MB_DIAG_BUS_CHARACTER_OVERRUN_COUNT = 0x12,
    MB_DIAG_CLEAR_OVERRUN_COUNTER = 0x14,
};

/* FC 43 encapsulated interface types. */
#define MB_MEI_CANOPEN 0x0D
#define MB_MEI_DEVICE_ID 0x0E

/* FC 43/14 read device id codes and object ids. */
enum mb_device_id_code {
    MB_DEVICE_ID_BASIC = 1,
    MB_DEVICE_ID_REGULAR = 2,
    MB_DEVICE_ID_EXTENDED = 3,
    MB_DEVICE_ID_SPECIFIC = 4,
};
enum mb_device_object_id {
    MB_OBJECT_VENDOR_NAME = 0x00,
    MB_OBJECT_PRODUCT_CODE = 0x01,
    MB_OBJECT_MAJOR_MINOR_REVISION = 0x02,
    MB_OBJECT_VENDOR_URL = 0x03,
    MB_OBJECT_PRODUCT_NAME = 0x04,
    MB_OBJECT_MODEL_NAME = 0x05,
    MB_OBJECT_USER_APPLICATION_NAME = 0x06,
    MB_OBJECT_PRIVATE_FIRST = 0x80,
};

/* ---- views shared by requests and responses ---- */

/* FC 8, request and response: a sub-function and its data. */
struct mb_diagnostics {
    uint16_t sub_function;
    const uint8_t *data; /* data_length bytes */
    uint8_t data_length; /* 2 for every sub-function but 0x00 (even, 2..250) */
};

/* FC 22, request and response (an echo). */
struct mb_mask_write {
    uint16_t address;
    uint16_t and_mask;
    uint16_t or_mask;
};

/* FC 5 and 6, request and response (an echo). */
struct mb_write_single {
    uint16_t address;
    uint16_t value; /* FC 5: MB_COIL_ON or MB_COIL_OFF */
};

/*
 * FC 20 and 21: the raw sub-requests or sub-responses, walked with mb_file_records_next().
 * `layout` says which of the three wire layouts `data` holds; decoders set it from the
 * function code and direction, encoders check it.
 */
enum mb_file_layout {
    MB_FILE_READ_REQUEST = 1,  /* FC 20 request: 7-byte sub-requests */
    MB_FILE_READ_RESPONSE = 2, /* FC 20 response: length, type 6, data */
    MB_FILE_WRITE = 3,         /* FC 21 request and response: 7-byte header and data */
};
struct mb_file_records {
    const uint8_t *data; /* the bytes after the PDU's byte count */
    uint8_t length;      /* = the byte count on the wire */
    uint8_t count;       /* number of sub-requests/sub-responses, set by the decoder */
    uint8_t layout;      /* enum mb_file_layout */
};

/* One file sub-request or sub-response, as mb_file_records_next() yields it. */
struct mb_file_record {
    uint8_t reference_type; /* 6 */
    uint16_t file_number;   /* 0 in FC 20 responses, which do not carry it */
    uint16_t record_number; /* 0 in FC 20 responses */
    uint16_t record_length; /* registers */
    const uint8_t *data;    /* record_length big-endian registers; NULL in FC 20 requests */
};

/* FC 43 with an encapsulated interface type other than 14: passed through as bytes. */
struct mb_mei {
    uint8_t mei_type;
    const uint8_t *data; /* the bytes after the MEI type */
    uint8_t length;
};

/* User-defined function codes (65..72, 100..110): the data after the function code. */
struct mb_raw {
    const uint8_t *data;
    uint8_t length;
};

/* ---- requests ---- */

struct mb_request {
    uint8_t function; /* enum mb_function or a user-defined code */
    union {
        /* FC 1, 2, 3, 4 */
        struct {
            uint16_t address;
            uint16_t quantity;
        } read;
        /* FC 5, 6 */
        struct mb_write_single write_single;
        /* FC 8 */
        struct mb_diagnostics diagnostics;
        /* FC 15 (values: packed bits) and 16 (values: big-endian registers). The byte count on
         * the wire is derived from the quantity. */
        struct {
            uint16_t address;
            uint16_t quantity;
            const uint8_t *values;
        } write_multiple;
        /* FC 20, 21 */
        struct mb_file_records file;
        /* FC 22 */
        struct mb_mask_write mask_write;
        /* FC 23: the write happens before the read. */
        struct {
            uint16_t read_address;
            uint16_t read_quantity;
            uint16_t write_address;
            uint16_t write_quantity;
            const uint8_t *values; /* write_quantity big-endian registers */
        } read_write;
        /* FC 24 */
        struct {
            uint16_t address;
        } fifo;
        /* FC 43/14. mei_type (MB_MEI_DEVICE_ID) is the first member here and in struct
         * mb_mei, so either view tells which one the PDU holds. */
        struct {
            uint8_t mei_type;
            uint8_t read_code; /* enum mb_device_id_code */
            uint8_t object_id;
        } device_id;
        /* FC 43 with another MEI type (only MB_MEI_CANOPEN is defined) */
        struct mb_mei mei;
        /* user-defined function codes */
        struct mb_raw raw;
    };
    /* FC 7, 11, 12, 17 carry no data. */
};

/*
 * Decodes a request PDU of `length` bytes. On success fills *request (views into `pdu`) and
 * returns 0. Errors: MB_ETRUNCATED / MB_ELENGTH (PDU shorter or longer than the function code
 * and its byte count say), MB_EQUANTITY, MB_EBYTECOUNT, MB_EVALUE, MB_EFUNCTION (reserved or
 * invalid function code), MB_ESUBFUNCTION (reserved FC 8 sub-function), MB_EINVAL (NULL
 * argument, or length 0 or over MB_PDU_MAX). mb_error_exception() maps each to the exception
 * a server sends. Checks that need the server's tables (addresses) are in validate.h.
 */
MB_API int mb_request_decode(const uint8_t *pdu, size_t length, struct mb_request *request);

/*
 * Encodes *request into pdu[0..capacity). Returns the PDU length (> 0), MB_ENOSPC when it does
 * not fit, or the decoder's error for a request that breaks a limit.
 */
MB_API int mb_request_encode(const struct mb_request *request, uint8_t *pdu, size_t capacity);

/* ---- responses ---- */

/* One FC 43/14 object, as mb_device_objects_next() yields it and the encoders take it. */
struct mb_device_object {
    uint8_t id;
    uint8_t length;
    const uint8_t *value;
};

struct mb_response {
    uint8_t function;  /* without MB_EXCEPTION_BIT */
    uint8_t exception; /* 0 for a normal response, else the exception code (1..255) */
    union {
        /* FC 1, 2 (packed bits, zero padded), FC 3, 4, 23 (big-endian registers) */
        struct {
            uint8_t byte_count;
            const uint8_t *data;
        } read;
        /* FC 5, 6 */
        struct mb_write_single write_single;
        /* FC 7 */
        uint8_t exception_status;
        /* FC 8 */
        struct mb_diagnostics diagnostics;
        /* FC 11 */
        struct {
            uint16_t status; /* 0x0000 or 0xFFFF (busy) */
            uint16_t event_count;
        } event_counter;
        /* FC 12 */
        struct {
            uint16_t status;
            uint16_t event_count;
            uint16_t message_count;
            const uint8_t *events;
            uint8_t event_length; /* 0..64 */
        } event_log;
        /* FC 15, 16 */
        struct {
            uint16_t address;
            uint16_t quantity;
        } write_multiple;
        /* FC 17: server id, run indicator (0x00 off, 0xFF on) and additional data, whose split is
         * device specific; data holds byte_count bytes (1..251). */
        struct {
            const uint8_t *data;
            uint8_t byte_count;
        } server_id;
        /* FC 20, 21 */
        struct mb_file_records file;
        /* FC 22 */
        struct mb_mask_write mask_write;
        /* FC 24 */
        struct {
            uint16_t count;        /* 0..31 */
            const uint8_t *values; /* count big-endian registers */
        } fifo;
        /* FC 43/14; mei_type (MB_MEI_DEVICE_ID) first, as in struct mb_mei */
        struct {
            uint8_t mei_type;
            uint8_t read_code;
            uint8_t conformity_level;
            uint8_t more_follows; /* 0x00 or 0xFF */
            uint8_t next_object_id;
            uint8_t object_count;
            const uint8_t *objects; /* object_count times: id, length, value */
            uint8_t objects_length;
        } device_id;
        /* FC 43 with another MEI type */
        struct mb_mei mei;
        /* user-defined function codes */
        struct mb_raw raw;
    };
};

/*
 * Decodes a response PDU: a normal response, or an exception response (function | 0x80 and a
 * code, which sets response->exception and is not an error). Returns 0 or the same errors as
 * mb_request_decode(); an exception response with code 0 gives MB_EEXCEPTION_CODE. Checks that
 * need the request (byte count against quantity, echoes) are in mb_response_matches().
 */
MB_API int mb_response_decode(const uint8_t *pdu, size_t length, struct mb_response *response);

/*
 * Encodes *response (an exception response when response->exception != 0). Returns the PDU
 * length, MB_ENOSPC, or the decoder's error for a response that breaks a limit.
 */
MB_API int mb_response_encode(const struct mb_response *response, uint8_t *pdu, size_t capacity);

/* Encodes the exception response `function | 0x80, code`. Returns 2, MB_ENOSPC or MB_EINVAL
 * (code 0, or a function code with the exception bit already set). */
MB_API int mb_exception_encode(uint8_t function, uint8_t code, uint8_t *pdu, size_t capacity);

/* The exception answer a server sends to a request whose function code byte was `received`,
 * whatever it was (0, or a code with the exception bit set, included): `received | 0x80, code`.
 * Returns 2, MB_ENOSPC or MB_EINVAL (code 0, or pdu NULL). */
MB_API int mb_exception_answer(uint8_t received, uint8_t code, uint8_t *pdu, size_t capacity);

/*
 * Checks that a decoded response answers a request: same function; for normal responses the
 * byte count the request implies (FC 1-4, 23), the echo (FC 5, 6, 8, 21, 22), address and
 * quantity (FC 15, 16), the sub-responses (FC 20), the read code (FC 43/14). An exception
 * response matches any request with its function code. Returns 0 or MB_EMISMATCH.
 */
MB_API int mb_response_matches(const struct mb_request *request,
                               const struct mb_response *response);

/* ---- walking variable-length parts ---- */

/*
 * Request groups of 0 registers decode (the validator answers them with 02, as the spec's FC 20
 * diagram says); response groups must hold at least one register.
 *
 * Iterates the sub-requests/sub-responses of a decoded (or built) struct mb_file_records.
 * Start with *offset = 0; each call fills *record and returns 1, then 0 at the end, or MB_ELENGTH
 * if the bytes are malformed (never after a successful decode).
 */
MB_API int mb_file_records_next(const struct mb_file_records *records, size_t *offset,
                                struct mb_file_record *record);

/*
 * Appends one sub-request/sub-response of the given layout to buffer[*used..capacity) and
 * advances *used; with the resulting buffer, set mb_file_records.data/length/layout to encode.
 * Returns 0, MB_ENOSPC, or MB_EINVAL (a record of 0 registers or over 0xFF bytes).
 */
MB_API int mb_file_records_append(uint8_t layout, const struct mb_file_record *record,
                                  uint8_t *buffer, size_t capacity, size_t *used);

/* Iterates the objects of an FC 43/14 response, like mb_file_records_next(). */
MB_API int mb_device_objects_next(const struct mb_response *response, size_t *offset,
                                  struct mb_device_object *object);

/*
 * For servers: builds the FC 43/14 response to `request` from the device's objects (sorted by
 * id, `count` of them), following the spec's rules: read codes 1..3 stream the objects of that
 * category starting at request->device_id.object_id (restarting at 0 when the server has no
 * such object), as many whole objects as fit in one PDU, with more_follows and next_object_id
 * set when they do not (where the stream splits depends on the PDU limit, never on `capacity`);
 * read code 4 returns the one object. `conformity_level` is the device's (0x01..0x03 or
 * 0x81..0x83). Writes the response PDU to send and returns its length: the answer (7 bytes or
 * more) or an exception response (2 bytes: 0xAB and 0x01 for individual access to a device
 * whose conformity level lacks it, 0x02 for an unknown object in individual access or no object
 * in the category, 0x03 for a bad read code). Errors: MB_ENOSPC when the answer does not fit
 * `capacity`, MB_EINVAL (objects unsorted, or one too long to ever fit a PDU).
 */
MB_API int mb_device_id_respond(const struct mb_request *request, uint8_t conformity_level,
                                const struct mb_device_object *objects, size_t count, uint8_t *pdu,
                                size_t capacity);

/* ---- names ---- */

/* "illegal data address" and so on; "unknown exception" for codes the spec does not define. */
MB_API const char *mb_exception_name(uint8_t code);

/* "read holding registers" and so on; "user-defined" or "reserved" for other codes. */
MB_API const char *mb_function_name(uint8_t function);

/* 1 if `function` is in a user-defined range (65..72, 100..110), else 0. */
MB_API int mb_function_is_user_defined(uint8_t function);

/*
 * The exception a server sends for a request decoding error: MB_EX_ILLEGAL_FUNCTION for
 * MB_EFUNCTION, MB_ESUBFUNCTION and MB_EMEI; MB_EX_ILLEGAL_DATA_VALUE for the other decoding
 * errors; 0 for errors that have no exception (MB_EINVAL and non-decoding errors).
 */
MB_API uint8_t mb_error_exception(int error);

/* ---- byte order on the wire ---- */

static inline uint16_t mb_get_u16(const uint8_t *p) {
    return (uint16_t)((uint16_t)p[0] << 8 | p[1]);
}

static inline void mb_put_u16(uint8_t *p, uint16_t value) {
    p[0] = (uint8_t)(value >> 8);
    p[1] = (uint8_t)value;
}

#ifdef __cplusplus
}
#endif

#endif
