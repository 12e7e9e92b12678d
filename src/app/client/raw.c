/* SPDX-License-Identifier: MIT */
/*
 * mbsec raw: sends a PDU typed in hex, as it is (any bytes: it is a test tool), and shows the
 * answer in hex and decoded. The library frames and matches it: a PDU that decodes as a request
 * is matched in full against the answer, any other on its function code.
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/client/client.h"
#include "app/commands.h"

static const char help[] =
    "usage: mbsec raw [options] TARGET HEX...\n"
    "\n"
    "Sends a PDU (function code and data, 1..253 bytes) written in hex and prints the answer\n"
    "in hex and decoded: the function, its fields, or the exception code and its name. The\n"
    "bytes go out as given, so malformed and user-defined requests can be tried; a request\n"
    "the library can decode is checked against its answer in full, another only on its\n"
    "function code. HEX may be split over several arguments: 03 00 00 00 0a, 030000000a,\n"
    "03:00:00:00:0a and 0x03,0x00,0x00,0x00,0x0a are the same PDU.\n"
    "\n" CLI_HELP_TARGET "\n"
    "Options:\n" CLI_HELP_CONNECTION "  -h, --help         this text\n"
    "\n"
    "Examples:\n"
    "  mbsec raw 192.0.2.10 03 00 00 00 0a              # read 10 holding registers\n"
    "  mbsec raw 192.0.2.10 2b 0e 01 00                 # read device identification\n"
    "  mbsec raw 192.0.2.10 41 01 02 --unit 3 --json    # a user-defined function code\n"
    "\n" CLI_HELP_EXIT;

/* ---- decoding the answer into lines ---- */

static void print_registers(FILE *out, const uint8_t *wire, size_t count) {
    for (size_t i = 0; i < count; i++)
        fprintf(out, "%s%u", i > 0 ? " " : "", mb_get_u16(wire + 2 * i));
}

/* The bits a read asked for, or every bit the byte count carries when the request is unknown. */
static void describe_bits(FILE *out, const struct mb_response *response,
                          const struct mb_request *request, int request_known) {
    size_t count = (size_t)response->read.byte_count * 8;
    if (request_known && request->function == response->function && request->read.quantity <= count)
        count = request->read.quantity;
    fprintf(out, "byte count: %u\nbits (%zu): ", response->read.byte_count, count);
    for (size_t i = 0; i < count; i++)
        fprintf(out, "%s%d", i > 0 ? " " : "", mb_bits_get(response->read.data, i));
    fputc('\n', out);
}

static void describe_device_id(FILE *out, const struct mb_response *response) {
    static const char *const names[] = {"VendorName",         "ProductCode", "MajorMinorRevision",
                                        "VendorUrl",          "ProductName", "ModelName",
                                        "UserApplicationName"};
    fprintf(out,
            "read device id code: %u\nconformity level: 0x%02X\nmore follows: 0x%02X\n"
            "next object id: 0x%02X\nobjects: %u\n",
            response->device_id.read_code, response->device_id.conformity_level,
            response->device_id.more_follows, response->device_id.next_object_id,
            response->device_id.object_count);
    size_t offset = 0;
    struct mb_device_object object;
    while (mb_device_objects_next(response, &offset, &object) == 1) {
        if (object.id < sizeof names / sizeof names[0])
            fprintf(out, "object 0x%02X %s: ", object.id, names[object.id]);
        else
            fprintf(out, "object 0x%02X: ", object.id);
        cli_printable(out, object.value, object.length);
        fputc('\n', out);
    }
}

static void describe_files(FILE *out, const struct mb_response *response) {
    size_t offset = 0;
    struct mb_file_record record;
    while (mb_file_records_next(&response->file, &offset, &record) == 1) {
        if (response->function == MB_FC_READ_FILE_RECORD)
            fprintf(out, "record: %u registers: ", record.record_length);
        else
            fprintf(out, "record: file %u, record %u, %u registers: ", record.file_number,
                    record.record_number, record.record_length);
        print_registers(out, record.data, record.record_length);
        fputc('\n', out);
    }
}

/* One "field: value" line per field of a normal response. */
static void describe_fields(FILE *out, const struct mb_response *response,
                            const struct mb_request *request, int request_known) {
    switch (response->function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
        describe_bits(out, response, request, request_known);
        return;
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        fprintf(out, "byte count: %u\nregisters (%u): ", response->read.byte_count,
                response->read.byte_count / 2);
        print_registers(out, response->read.data, response->read.byte_count / 2u);
        fputc('\n', out);
        return;
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        fprintf(out, "address: %u\nvalue: 0x%04X\n", response->write_single.address,
                response->write_single.value);
        return;
    case MB_FC_READ_EXCEPTION_STATUS:
        fprintf(out, "exception status: 0x%02X\n", response->exception_status);
        return;
    case MB_FC_DIAGNOSTICS:
        fprintf(out, "sub-function: 0x%04X\ndata: ", response->diagnostics.sub_function);
        cli_hex_bytes(out, response->diagnostics.data, response->diagnostics.data_length, ' ');
        fputc('\n', out);
        return;
    case MB_FC_GET_COMM_EVENT_COUNTER:
        fprintf(out, "status: 0x%04X\nevent count: %u\n", response->event_counter.status,
                response->event_counter.event_count);
        return;
    case MB_FC_GET_COMM_EVENT_LOG:
        fprintf(out, "status: 0x%04X\nevent count: %u\nmessage count: %u\nevents: ",
                response->event_log.status, response->event_log.event_count,
                response->event_log.message_count);
        cli_hex_bytes(out, response->event_log.events, response->event_log.event_length, ' ');
        fputc('\n', out);
        return;
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        fprintf(out, "address: %u\nquantity: %u\n", response->write_multiple.address,
                response->write_multiple.quantity);
        return;
    case MB_FC_REPORT_SERVER_ID:
        fprintf(out, "byte count: %u\nserver id: ", response->server_id.byte_count);
        cli_hex_bytes(out, response->server_id.data, response->server_id.byte_count, ' ');
        fputs(" \"", out);
        cli_printable(out, response->server_id.data, response->server_id.byte_count);
        fputs("\"\n", out);
        return;
    case MB_FC_READ_FILE_RECORD:
    case MB_FC_WRITE_FILE_RECORD:
        describe_files(out, response);
        return;
    case MB_FC_MASK_WRITE_REGISTER:
        fprintf(out, "address: %u\nand mask: 0x%04X\nor mask: 0x%04X\n",
                response->mask_write.address, response->mask_write.and_mask,
                response->mask_write.or_mask);
        return;
    case MB_FC_READ_FIFO_QUEUE:
        fprintf(out, "FIFO count: %u\nvalues: ", response->fifo.count);
        print_registers(out, response->fifo.values, response->fifo.count);
        fputc('\n', out);
        return;
    case MB_FC_ENCAPSULATED_INTERFACE:
        if (response->mei.mei_type == MB_MEI_DEVICE_ID) {
            describe_device_id(out, response);
            return;
        }
        fprintf(out, "MEI type: 0x%02X\ndata: ", response->mei.mei_type);
        cli_hex_bytes(out, response->mei.data, response->mei.length, ' ');
        fputc('\n', out);
        return;
    default:
        fputs("data: ", out);
        cli_hex_bytes(out, response->raw.data, response->raw.length, ' ');
        fputc('\n', out);
        return;
    }
}

/* The whole description, one fact per line. */
static void describe(FILE *out, const uint8_t *request_pdu, size_t request_length,
                     const struct mb_reply *reply, int result) {
    struct mb_request request;
    int request_known = mb_request_decode(request_pdu, request_length, &request) == 0;
    uint8_t function = reply->pdu[0] & (uint8_t)~MB_EXCEPTION_BIT;
    fprintf(out, "function: %u %s%s\n", function, mb_function_name(function),
            reply->pdu[0] & MB_EXCEPTION_BIT ? " (exception response)" : "");
    if (result < 0) {
        fprintf(out, "not a valid answer: %s\n", mb_strerror(result));
        return;
    }
    if (reply->response.exception != 0) {
        fprintf(out, "exception: %02X %s\n", reply->response.exception,
                mb_exception_name(reply->response.exception));
        return;
    }
    describe_fields(out, &reply->response, &request, request_known);
}

/* ---- output ---- */

static void print_human(const uint8_t *pdu, size_t length, const struct mb_reply *reply,
                        int result) {
    printf("request:  ");
    cli_hex_bytes(stdout, pdu, length, ' ');
    printf("\nresponse: ");
    cli_hex_bytes(stdout, reply->pdu, reply->length, ' ');
    printf("\n");
    describe(stdout, pdu, length, reply, result);
}

static void print_json(const struct cli_options *options, const uint8_t *pdu, size_t length,
                       const struct mb_reply *reply, int result, int exit_status) {
    char *text = NULL;
    size_t text_length = 0;
    FILE *lines = open_memstream(&text, &text_length);
    if (lines != NULL) {
        describe(lines, pdu, length, reply, result);
        fclose(lines);
    }
    cli_json_open(stdout, options);
    fputs(",\"request\":\"", stdout);
    cli_hex_bytes(stdout, pdu, length, '\0');
    fputs("\",\"response\":\"", stdout);
    cli_hex_bytes(stdout, reply->pdu, reply->length, '\0');
    printf("\",\"function\":%u,\"function_name\":\"%s\"", reply->pdu[0] & 0x7Fu,
           mb_function_name(reply->pdu[0] & 0x7F));
    if (result > 0)
        printf(",\"exception\":%d,\"exception_name\":\"%s\"", result,
               mb_exception_name((uint8_t)result));
    printf(",\"elapsed_us\":%u,\"description\":[", reply->elapsed_us);
    /* The human lines, one string each. */
    int first = 1;
    for (const char *line = text; line != NULL && *line != '\0';) {
        const char *end = strchr(line, '\n');
        size_t line_length = end != NULL ? (size_t)(end - line) : strlen(line);
        if (!first)
            fputc(',', stdout);
        first = 0;
        json_write_string(stdout, line, line_length);
        line += line_length + (end != NULL);
    }
    fputc(']', stdout);
    if (exit_status != EXIT_STATUS_OK)
        printf(",\"exit_code\":%d", exit_status);
    fputs("}\n", stdout);
    free(text);
}

static int send_raw(const struct cli_options *options, const uint8_t *pdu, size_t length) {
    struct mb_client *client;
    int status = cli_connect(options, 0, &client);
    if (status != EXIT_STATUS_OK)
        return status;
    struct mb_reply reply;
    memset(&reply, 0, sizeof reply);
    int result = mb_client_call(client, options->unit, pdu, length, &reply);
    status = cli_exit_status(result);
    if (reply.length > 0) {
        /* An answer arrived (normal, exception, or one that does not fit the request). */
        if (options->format == CLI_JSON)
            print_json(options, pdu, length, &reply, result, status);
        else
            print_human(pdu, length, &reply, result);
        if (result < 0)
            cli_error(options, "%s", mb_client_error_detail(client));
    } else {
        struct cli_request described = {.function = pdu[0]};
        status = cli_report_failure(options, client, result, &described);
    }
    mb_client_close(client);
    return status;
}

int cmd_raw(int argc, char **argv) {
    static const struct cli_flag no_flags[] = {{NULL, 0, 0}};
    const struct cli_command command = {
        .name = "raw",
        .help = help,
        .flags = no_flags,
    };
    struct cli_options options;
    char **positional;
    int count, status;
    if (!cli_begin(&command, argc, argv, &options, &positional, &count, &status))
        return status;
    uint8_t pdu[MB_PDU_MAX];
    const char *complaint = "";
    int length = count < 2 ? -1
                           : cli_parse_hex((const char *const *)positional + 1, count - 1, pdu,
                                           sizeof pdu, &complaint);
    if (count < 2)
        status = cli_usage_error(&options, "missing HEX, the PDU to send (see mbsec raw --help)");
    else if (length < 0)
        status = cli_usage_error(&options, "bad HEX: %s (1..253 bytes)", complaint);
    else
        status = send_raw(&options, pdu, (size_t)length);
    free(positional);
    return status;
}
