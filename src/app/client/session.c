/* SPDX-License-Identifier: MIT */
/*
 * Talking to the device on behalf of the client commands: connecting with the options, reading
 * a table in as many requests as its limits need, and turning a failure into one line, an
 * optional JSON object and an exit status.
 */
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "app/client/client.h"
#include "app/commands.h"
#include "app/config/config.h"
#include "mbsec/serial.h"
#include "mbsec/tls.h"

/* Connecting may take longer than one answer (name resolution, a slow path): the library's
 * 3 s default, or --timeout when that is longer. */
#define MINIMUM_CONNECT_TIMEOUT_MS 3000

int cli_exit_status(int result) {
    if (result == 0)
        return EXIT_STATUS_OK;
    if (result > 0)
        return EXIT_STATUS_EXCEPTION;
    switch (result) {
    case MB_ECONNECT:
    case MB_EADDRESS:
    case MB_ETLS:
    /* a serial line that could not be opened as asked */
    case MB_EBUSY:
    case MB_EUNSUPPORTED:
    case MB_EACCES:
        return EXIT_STATUS_CONNECT;
    case MB_ETIMEDOUT:
        return EXIT_STATUS_TIMEOUT;
    /* The device did answer, but not with a valid answer to the request: a malformed or
     * mismatched response, or a connection that it closed or reset instead of answering. */
    case MB_EMISMATCH:
    case MB_ECRC:
    case MB_EFRAME:
    case MB_ECLOSED:
    case MB_EIO:
    case MB_EMBAP_LENGTH:
    case MB_ETRUNCATED:
    case MB_ELENGTH:
    case MB_EQUANTITY:
    case MB_EBYTECOUNT:
    case MB_EVALUE:
    case MB_EFUNCTION:
    case MB_ESUBFUNCTION:
    case MB_EMEI:
    case MB_EEXCEPTION_CODE:
        return EXIT_STATUS_PROTOCOL;
    case MB_EINVAL:
        return EXIT_STATUS_USAGE;
    default:
        return EXIT_STATUS_FAILURE;
    }
}

/* The TLS context of this process's connections: the command makes one, and it lives until the
 * process exits. */
static struct mb_tls_context *tls_context;

static void free_tls_context(void) {
    mb_tls_context_destroy(tls_context);
    tls_context = NULL;
}

/* "host" of "host[:port]" or "[v6][:port]", for checking the server certificate's name. */
static void target_host(const char *target, char *host, size_t size) {
    const char *start = target, *end;
    if (target[0] == '[') {
        start = target + 1;
        end = strchr(start, ']');
    } else {
        end = strchr(target, ':');
    }
    size_t length = end != NULL ? (size_t)(end - start) : strlen(start);
    if (length >= size)
        length = size - 1;
    memcpy(host, start, length);
    host[length] = '\0';
}

static int prepare_tls(const struct cli_options *options, struct mb_client_options *client) {
    if (options->certificate == NULL || options->key == NULL)
        return cli_usage_error(options,
                               "TLS needs --cert and --key: Modbus/TCP Security always "
                               "authenticates the client (make them with mbsec cert client)");
    if (options->ca == NULL && options->pin == NULL)
        return cli_usage_error(options, "TLS needs --ca (or --pin) to trust the server");
    char host[256];
    target_host(options->target, host, sizeof host);
    struct stat status;
    int ca_is_directory =
        options->ca != NULL && stat(options->ca, &status) == 0 && S_ISDIR(status.st_mode);
    struct mb_tls_config config = {
        .certificate_file = options->certificate,
        .key_file = options->key,
        .ca_file = ca_is_directory ? NULL : options->ca,
        .ca_directory = ca_is_directory ? options->ca : NULL,
        .crl_file = options->crl,
        .pin = options->pin,
        .server_name = options->server_name != NULL ? options->server_name : host,
    };
    char error[320];
    if (mb_tls_context_create(0, &config, &tls_context, error, sizeof error) != 0)
        return cli_usage_error(options, "TLS: %s", error);
    atexit(free_tls_context);
    client->wrap = mb_tls_wrap;
    client->wrap_data = tls_context;
    return 0;
}

int cli_connect(const struct cli_options *options, int reconnect, struct mb_client **client) {
    struct mb_client_options client_options = {
        .connect_timeout_ms = options->timeout_ms > MINIMUM_CONNECT_TIMEOUT_MS
                                  ? options->timeout_ms
                                  : MINIMUM_CONNECT_TIMEOUT_MS,
        .timeout_ms = options->timeout_ms,
        .retries = options->retries,
        .reconnect = reconnect,
    };
    const char *target = options->target;
    char with_port[300];
    if (options->serial) {
        client_options.rtu_echo = options->echo;
        if (options->ascii)
            client_options.framing = MB_FRAMING_ASCII;
        struct mb_serial_config line = {.baud = options->baud,
                                        .parity = options->parity,
                                        .stop_bits = options->stop_bits,
                                        .data_bits = options->data_bits,
                                        .rs485 = (enum mb_serial_rs485)options->rs485};
        char detail[320] = "";
        int result =
            mb_client_open_serial(target, &line, &client_options, client, detail, sizeof detail);
        if (result == 0)
            return EXIT_STATUS_OK;
        *client = NULL;
        return cli_report_message(options, cli_exit_status(result), 0, detail);
    }
    if (options->rtu_over_tcp)
        client_options.framing = MB_FRAMING_RTU;
    if (options->tls) {
        if (tls_context == NULL) {
            int status = prepare_tls(options, &client_options);
            if (status != 0) {
                *client = NULL;
                return status;
            }
        } else {
            client_options.wrap = mb_tls_wrap;
            client_options.wrap_data = tls_context;
        }
        /* TLS to a target without a port: Modbus/TCP Security's 802. */
        config_with_port(target, CONFIG_TLS_PORT, with_port, sizeof with_port);
        target = with_port;
    }
    char detail[320] = "";
    int result = mb_client_connect(target, &client_options, client, detail, sizeof detail);
    if (result == 0)
        return EXIT_STATUS_OK;
    *client = NULL;
    if (detail[0] == '\0')
        snprintf(detail, sizeof detail, "connect to %s: %s", options->target, mb_strerror(result));
    return cli_report_message(options, cli_exit_status(result), 0, detail);
}

int cli_report_message(const struct cli_options *options, int exit_status, int exception,
                       const char *message) {
    fprintf(stderr, "mbsec %s: %s\n", options->command, message);
    if (options->format == CLI_JSON) {
        cli_json_open(stdout, options);
        printf(",\"command\":\"%s\",\"error\":", options->command);
        json_write_string(stdout, message, strlen(message));
        if (exception > 0)
            printf(",\"exception\":%d", exception);
        printf(",\"exit_code\":%d}\n", exit_status);
        fflush(stdout);
    }
    return exit_status;
}

/* A Modbus/TCP Security server closes a plain client at its first request, without a word: when
 * that is what happened, say what it likely means. */
static const char *plain_to_tls_hint(const struct cli_options *options,
                                     const struct mb_client *client, int result) {
    struct mb_client_stats stats;
    if (options->tls || client == NULL || result != MB_ECLOSED)
        return "";
    mb_client_stats(client, &stats);
    if (stats.responses > 0)
        return "";
    const char *colon = strrchr(options->target, ':');
    if (colon != NULL && strcmp(colon, ":802") == 0)
        return "; port 802 is Modbus/TCP Security's: connect with --tls, --cert, --key and --ca";
    return "; a Modbus/TCP Security (TLS) port closes a plain client this way: if it is one, "
           "connect with --tls, --cert, --key and --ca";
}

int cli_report_failure(const struct cli_options *options, const struct mb_client *client,
                       int result, const struct cli_request *request) {
    char message[512], context[160] = "";
    if (request != NULL && request->has_range)
        snprintf(context, sizeof context, " (FC %u %s at %u, quantity %u, unit %u)",
                 request->function, mb_function_name(request->function), request->address,
                 request->quantity, options->unit);
    else if (request != NULL)
        snprintf(context, sizeof context, " (FC %u %s, unit %u)", request->function,
                 mb_function_name(request->function), options->unit);
    const char *note = request != NULL && request->note != NULL ? request->note : "";
    if (result > 0) {
        snprintf(message, sizeof message, "exception %02X %s%s%s", (unsigned)result,
                 mb_exception_name((uint8_t)result), context, note);
    } else {
        const char *detail = client != NULL ? mb_client_error_detail(client) : "";
        if (detail == NULL || detail[0] == '\0')
            detail = mb_strerror(result);
        snprintf(message, sizeof message, "%s%s%s%s", detail, context, note,
                 plain_to_tls_hint(options, client, result));
    }
    return cli_report_message(options, cli_exit_status(result), result > 0 ? result : 0, message);
}

/* One request of a table read. */
static int read_once(struct mb_client *client, uint8_t unit, enum cli_table table, uint16_t address,
                     uint16_t quantity, uint8_t *bits, uint16_t *registers) {
    switch (table) {
    case CLI_COILS:
        return mb_read_coils(client, unit, address, quantity, bits);
    case CLI_DISCRETE_INPUTS:
        return mb_read_discrete_inputs(client, unit, address, quantity, bits);
    case CLI_HOLDING_REGISTERS:
        return mb_read_holding_registers(client, unit, address, quantity, registers);
    default:
        return mb_read_input_registers(client, unit, address, quantity, registers);
    }
}

int cli_read_table(struct mb_client *client, uint8_t unit, enum cli_table table, uint16_t address,
                   size_t count, size_t group, uint8_t *bits, uint16_t *registers,
                   struct cli_request *failed) {
    int holds_bits = cli_table_holds_bits(table);
    size_t limit = holds_bits ? MB_MAX_READ_BITS : MB_MAX_READ_REGISTERS;
    size_t per_request = limit / group * group;
    for (size_t done = 0; done < count;) {
        size_t quantity = count - done < per_request ? count - done : per_request;
        uint16_t at = (uint16_t)(address + done);
        int result =
            read_once(client, unit, table, at, (uint16_t)quantity, holds_bits ? bits + done : NULL,
                      holds_bits ? NULL : registers + done);
        if (result != 0) {
            failed->function = cli_table_read_function(table);
            failed->address = at;
            failed->quantity = (uint16_t)quantity;
            failed->has_range = 1;
            return result;
        }
        done += quantity;
    }
    return 0;
}
