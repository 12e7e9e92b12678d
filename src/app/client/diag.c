/* SPDX-License-Identifier: MIT */
/*
 * mbsec diag: FC 8 diagnostics. The request is encoded by the library before anything is sent,
 * so that data the sub-function does not allow is a usage error here rather than something
 * that looks like a bad answer. Restart communications and force listen-only change how the
 * device talks to everyone, so they need --yes.
 */
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/client/client.h"
#include "app/commands.h"

static const char help[] =
    "usage: mbsec diag [options] TARGET SUBFUNCTION [DATA]\n"
    "\n"
    "Sends FC 8 (diagnostics) and prints the answer decoded. SUBFUNCTION is a number (decimal\n"
    "or 0x hex) or a name:\n"
    "  echo, return-query-data       0x00  the device echoes DATA (default 00 00)\n"
    "  restart                       0x01  restart communications (needs --yes; DATA ff 00\n"
    "                                      also clears the event log)\n"
    "  diagnostic-register           0x02  the device's diagnostic register\n"
    "  ascii-delimiter               0x03  change the ASCII delimiter (DATA: char 00)\n"
    "  listen-only                   0x04  force listen-only mode (needs --yes): the device\n"
    "                                      stops answering until restart; no answer expected\n"
    "  clear-counters                0x0A  clear the counters and the diagnostic register\n"
    "  bus-messages                  0x0B  counters: messages seen on the bus,\n"
    "  bus-crc-errors                0x0C    CRC errors,\n"
    "  bus-exceptions                0x0D    exceptions returned,\n"
    "  server-messages               0x0E    messages addressed to the device,\n"
    "  no-response                   0x0F    messages not answered,\n"
    "  nak                           0x10    NAKs (exception 07),\n"
    "  busy                          0x11    busy answers (exception 06),\n"
    "  overruns                      0x12    character overruns\n"
    "  clear-overruns                0x14  clear the overrun counter\n"
    "DATA is hex bytes (\"12 34\", 1234, 12:34; default 00 00): any even number of bytes,\n"
    "2..250, for echo, two bytes for the others.\n"
    "\n"
    "Restart and listen-only disturb a running device (a device in listen-only mode answers\n"
    "nothing until it is restarted): they are refused without --yes.\n"
    "\n" CLI_HELP_TARGET "\n"
    "Options:\n"
    "  --yes              allow restart and listen-only\n" CLI_HELP_CONNECTION
    "  -h, --help         this text\n"
    "\n"
    "Examples:\n"
    "  mbsec diag 192.0.2.10 echo 12 34\n"
    "  mbsec diag 192.0.2.10 bus-messages\n"
    "  mbsec diag 192.0.2.10 restart --yes\n"
    "\n" CLI_HELP_EXIT;

enum { FLAG_YES = 1 };

struct diag_state {
    int confirmed;
};

static int take_flag(void *data, int id, const char *argument) {
    struct diag_state *state = data;
    (void)id;
    (void)argument;
    state->confirmed = 1;
    return 0;
}

struct sub_function {
    const char *name;
    const char *alias;
    uint16_t code;
    const char *meaning; /* of the answer's two data bytes, for counters */
};

static const struct sub_function sub_functions[] = {
    {"echo", "return-query-data", MB_DIAG_RETURN_QUERY_DATA, NULL},
    {"restart", "restart-communications", MB_DIAG_RESTART_COMMUNICATIONS, NULL},
    {"diagnostic-register", NULL, MB_DIAG_RETURN_DIAGNOSTIC_REGISTER, "diagnostic register"},
    {"ascii-delimiter", "change-ascii-delimiter", MB_DIAG_CHANGE_ASCII_DELIMITER, NULL},
    {"listen-only", "force-listen-only", MB_DIAG_FORCE_LISTEN_ONLY, NULL},
    {"clear-counters", NULL, MB_DIAG_CLEAR_COUNTERS, NULL},
    {"bus-messages", "bus-message-count", MB_DIAG_BUS_MESSAGE_COUNT, "bus message count"},
    {"bus-crc-errors", "bus-crc-error-count", MB_DIAG_BUS_CRC_ERROR_COUNT, "bus CRC error count"},
    {"bus-exceptions", "bus-exception-count", MB_DIAG_BUS_EXCEPTION_COUNT, "bus exception count"},
    {"server-messages", "server-message-count", MB_DIAG_SERVER_MESSAGE_COUNT,
     "server message count"},
    {"no-response", "server-no-response-count", MB_DIAG_SERVER_NO_RESPONSE_COUNT,
     "server no response count"},
    {"nak", "server-nak-count", MB_DIAG_SERVER_NAK_COUNT, "server NAK count"},
    {"busy", "server-busy-count", MB_DIAG_SERVER_BUSY_COUNT, "server busy count"},
    {"overruns", "bus-character-overrun-count", MB_DIAG_BUS_CHARACTER_OVERRUN_COUNT,
     "bus character overrun count"},
    {"clear-overruns", "clear-overrun-counter", MB_DIAG_CLEAR_OVERRUN_COUNTER, NULL},
};

static const struct sub_function *find_sub_function(const char *text) {
    uint64_t code = UINT64_MAX;
    cli_parse_unsigned(text, 0, 0xFFFF, &code);
    for (size_t i = 0; i < sizeof sub_functions / sizeof sub_functions[0]; i++) {
        const struct sub_function *candidate = &sub_functions[i];
        if (candidate->code == code || strcasecmp(text, candidate->name) == 0 ||
            (candidate->alias != NULL && strcasecmp(text, candidate->alias) == 0))
            return candidate;
    }
    return NULL;
}

static int needs_confirmation(uint16_t code) {
    return code == MB_DIAG_RESTART_COMMUNICATIONS || code == MB_DIAG_FORCE_LISTEN_ONLY;
}

/* Prints the answer decoded: what it means for this sub-function. */
static void print_answer(const struct cli_options *options, const struct sub_function *sub,
                         const struct mb_diagnostics *answer, int unanswered) {
    int has_value = sub->meaning != NULL && answer != NULL && answer->data_length == 2;
    unsigned value = has_value ? mb_get_u16(answer->data) : 0;
    if (options->format == CLI_JSON) {
        cli_json_open(stdout, options);
        printf(",\"sub_function\":%u,\"name\":\"%s\"", sub->code, sub->name);
        if (unanswered) {
            fputs(",\"answered\":false}\n", stdout);
            return;
        }
        fputs(",\"data\":\"", stdout);
        cli_hex_bytes(stdout, answer->data, answer->data_length, '\0');
        fputc('"', stdout);
        if (has_value)
            printf(",\"value\":%u", value);
        fputs("}\n", stdout);
        return;
    }
    if (unanswered) {
        printf("listen-only: sent, and not answered, as the spec says; the device now ignores "
               "requests until 'mbsec diag %s restart --yes'\n",
               options->target);
        return;
    }
    switch (sub->code) {
    case MB_DIAG_RETURN_QUERY_DATA:
        printf("echo: ");
        cli_hex_bytes(stdout, answer->data, answer->data_length, ' ');
        printf(" (the same as sent)\n");
        return;
    case MB_DIAG_RETURN_DIAGNOSTIC_REGISTER:
        printf("diagnostic register: 0x%04X\n", value);
        return;
    case MB_DIAG_RESTART_COMMUNICATIONS:
        printf("restart communications: done\n");
        return;
    case MB_DIAG_CHANGE_ASCII_DELIMITER:
        printf("ASCII delimiter: 0x%02X\n", answer->data_length > 0 ? answer->data[0] : 0);
        return;
    case MB_DIAG_CLEAR_COUNTERS:
        printf("counters cleared\n");
        return;
    case MB_DIAG_CLEAR_OVERRUN_COUNTER:
        printf("overrun counter cleared\n");
        return;
    default:
        printf("%s: %u\n", sub->meaning, value);
        return;
    }
}

static int run(const struct cli_options *options, const struct sub_function *sub,
               const uint8_t *data, size_t length) {
    /* Encode first: the library's limits for this sub-function, as a usage error. */
    struct mb_request request = {.function = MB_FC_DIAGNOSTICS,
                                 .diagnostics = {sub->code, data, (uint8_t)length}};
    uint8_t encoded[MB_PDU_MAX];
    int encoded_length = mb_request_encode(&request, encoded, sizeof encoded);
    if (encoded_length < 0)
        return cli_usage_error(options, "%s does not take %zu data byte%s: %s", sub->name, length,
                               length == 1 ? "" : "s", mb_strerror(encoded_length));

    struct mb_client *client;
    int status = cli_connect(options, 0, &client);
    if (status != EXIT_STATUS_OK)
        return status;
    struct mb_reply reply;
    int result = mb_diagnostics(client, options->unit, sub->code, data, length, &reply);
    struct cli_request described = {.function = MB_FC_DIAGNOSTICS};
    if (result == MB_ETIMEDOUT && sub->code == MB_DIAG_FORCE_LISTEN_ONLY)
        print_answer(options, sub, NULL, 1); /* the spec: no answer to this one */
    else if (result != 0)
        status = cli_report_failure(options, client, result, &described);
    else
        print_answer(options, sub, &reply.response.diagnostics, 0);
    mb_client_close(client);
    return status;
}

int cmd_diag(int argc, char **argv) {
    static const struct cli_flag flags[] = {{"yes", 0, FLAG_YES}, {NULL, 0, 0}};
    struct diag_state state = {0};
    const struct cli_command command = {
        .name = "diag",
        .help = help,
        .flags = flags,
        .take_flag = take_flag,
        .state = &state,
    };
    struct cli_options options;
    char **positional;
    int count, status = EXIT_STATUS_OK;
    if (!cli_begin(&command, argc, argv, &options, &positional, &count, &status))
        return status;
    const struct sub_function *sub = NULL;
    uint8_t data[MB_PDU_MAX] = {0, 0};
    size_t length = 2;
    if (count < 2) {
        status = cli_usage_error(&options, "missing SUBFUNCTION (see mbsec diag --help)");
    } else if ((sub = find_sub_function(positional[1])) == NULL) {
        status = cli_usage_error(&options,
                                 "unknown sub-function '%s' (a name or number from mbsec diag "
                                 "--help; mbsec raw sends reserved ones)",
                                 positional[1]);
    } else if (needs_confirmation(sub->code) && !state.confirmed) {
        status = cli_usage_error(&options,
                                 "%s disturbs the device for every client; add --yes to send "
                                 "it",
                                 sub->name);
    } else if (count > 2) {
        const char *complaint = "";
        int parsed = cli_parse_hex((const char *const *)positional + 2, count - 2, data,
                                   sizeof data, &complaint);
        if (parsed < 0)
            status = cli_usage_error(&options, "bad DATA: %s", complaint);
        else
            length = (size_t)parsed;
    }
    if (status == 0)
        status = run(&options, sub, data, length);
    free(positional);
    return status;
}
