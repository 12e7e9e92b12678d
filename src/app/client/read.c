/* SPDX-License-Identifier: MIT */
/* mbsec read: reads coils, discrete inputs, holding or input registers (FC 1, 2, 3, 4). */
#include <stdlib.h>

#include "app/client/client.h"
#include "app/commands.h"

static const char help[] =
    "usage: mbsec read [options] TARGET [TABLE] ADDRESS [COUNT]\n"
    "\n"
    "Reads COUNT values (default 1) from a table with FC 1, 2, 3 or 4. COUNT counts values of\n"
    "--type (a u32 is two registers; for ascii and hex it counts registers); reads beyond\n"
    "one request's limit (2000 bits, 125 registers) are split into several requests, each\n"
    "holding whole values.\n"
    "\n" CLI_HELP_TARGET CLI_HELP_ADDRESS "\n"
    "Options:\n" CLI_HELP_CONNECTION CLI_HELP_DATA
    "  --csv              CSV: a header line, then one timestamp,address,value row per value\n"
    "  -h, --help         this text\n"
    "\n" CLI_HELP_MBPOLL "\n"
    "Examples:\n"
    "  mbsec read 192.0.2.10 holding 100 10\n"
    "  mbsec read 192.0.2.10:5020 40001 2 --type f32 --order CDAB\n"
    "  mbsec read plc.local coils 0 16 --json\n"
    "\n" CLI_HELP_EXIT;

/* Reads once, prints the reading or the failure, returns the exit status. */
static int read_and_print(const struct cli_options *options, const struct cli_span *span) {
    uint8_t *bits = NULL;
    uint16_t *registers = NULL;
    if (cli_table_holds_bits(span->location.table))
        bits = malloc(span->items);
    else
        registers = malloc(span->items * sizeof *registers);
    if (bits == NULL && registers == NULL)
        return cli_report_message(options, EXIT_STATUS_FAILURE, 0, "out of memory");

    struct mb_client *client;
    int status = cli_connect(options, 0, &client);
    if (status == EXIT_STATUS_OK) {
        struct cli_request failed = {0};
        int result = cli_read_table(client, options->unit, span->location.table,
                                    span->location.address, span->items,
                                    cli_type_registers(options->type), bits, registers, &failed);
        if (result != 0) {
            status = cli_report_failure(options, client, result, &failed);
        } else {
            struct cli_reading reading = {
                .location = &span->location,
                .count = span->values,
                .bits = bits,
                .registers = registers,
            };
            log_timestamp(reading.timestamp, sizeof reading.timestamp);
            cli_print_reading(options, &reading, 1);
        }
        mb_client_close(client);
    }
    free(bits);
    free(registers);
    return status;
}

int cmd_read(int argc, char **argv) {
    static const struct cli_flag no_flags[] = {{NULL, 0, 0}};
    const struct cli_command command = {
        .name = "read",
        .help = help,
        .accepts = CLI_ACCEPTS_DATA | CLI_ACCEPTS_CSV,
        .flags = no_flags,
    };
    struct cli_options options;
    char **positional;
    int count, next = 1, status;
    if (!cli_begin(&command, argc, argv, &options, &positional, &count, &status))
        return status;
    struct cli_span span;
    status = cli_parse_span(&options, positional, count, &next, &span);
    if (status == 0 && next < count)
        status = cli_usage_error(&options, "unexpected argument '%s'", positional[next]);
    if (status == 0)
        status = read_and_print(&options, &span);
    free(positional);
    return status;
}
