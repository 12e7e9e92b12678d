/* SPDX-License-Identifier: MIT */
/*
 * mbsec write: writes coils or holding registers, choosing FC 5/6 for one item and FC 15/16 for
 * several unless --fc says otherwise. Writes beyond one request's limit (1968 coils, 123
 * registers) go out as several requests, each holding whole values; they are not atomic
 * together, and a failure part-way says how much was written.
 */
#include <stdlib.h>
#include <string.h>

#include "app/client/client.h"
#include "app/commands.h"

static const char help[] =
    "usage: mbsec write [options] TARGET [TABLE] ADDRESS VALUE...\n"
    "\n"
    "Writes VALUEs to coils or holding registers, from ADDRESS on. One coil goes out as FC 5,\n"
    "one register as FC 6, more as FC 15 or FC 16.\n"
    "Coil values: 0, 1, on, off, true, false.\n"
    "Register values are read as --type: integers in decimal or 0x hex (hex gives the bit\n"
    "pattern: 0xFFFF is -1 as i16), floats as decimals; a u32, i32 or f32 takes two\n"
    "registers, a 64-bit type four; an ascii VALUE is one text, two characters per register\n"
    "(an odd length is padded with a NUL byte); hex values are registers in hex.\n"
    "Negative numbers are values, not options: mbsec write HOST holding 5 -12 --type i16.\n"
    "\n" CLI_HELP_TARGET "TABLE is coils or holding (co, hr); ADDRESS as for mbsec read.\n"
    "\n"
    "Options:\n" CLI_HELP_CONNECTION CLI_HELP_DATA
    "  --fc 5|6|15|16     use this function code (6 needs exactly one register, 5 one coil)\n"
    "  -h, --help         this text\n"
    "\n" CLI_HELP_MBPOLL "\n"
    "Examples:\n"
    "  mbsec write 192.0.2.10 holding 100 1234\n"
    "  mbsec write 192.0.2.10 40101 21.5 --type f32 --order CDAB\n"
    "  mbsec write 192.0.2.10 holding 200 23.5 --scale 0.1        # writes 235\n"
    "  mbsec write 192.0.2.10 coils 0 on off on --fc 15\n"
    "\n" CLI_HELP_EXIT;

enum { FLAG_FC = 1 };

struct write_state {
    uint8_t forced_function; /* 0: choose */
};

static int take_flag(void *data, int id, const char *argument) {
    struct write_state *state = data;
    (void)id;
    uint64_t function;
    if (cli_parse_unsigned(argument, 0, 255, &function) != 0 ||
        (function != MB_FC_WRITE_SINGLE_COIL && function != MB_FC_WRITE_SINGLE_REGISTER &&
         function != MB_FC_WRITE_MULTIPLE_COILS && function != MB_FC_WRITE_MULTIPLE_REGISTERS)) {
        fprintf(stderr, "mbsec write: --fc: 5, 6, 15 or 16, got '%s'\n", argument);
        return -1;
    }
    state->forced_function = (uint8_t)function;
    return 0;
}

/* What will be written: bits or registers, from the VALUE arguments. */
struct payload {
    uint8_t *bits;
    uint16_t *registers;
    size_t items;  /* bits or registers */
    size_t values; /* VALUE arguments */
};

static int parse_values(const struct cli_options *options, const struct cli_location *location,
                        char **texts, int count, struct payload *payload) {
    size_t room = 65536 - (size_t)location->address;
    int bits = location->table == CLI_COILS;
    payload->values = (size_t)count;
    if (bits)
        payload->bits = malloc(room);
    else
        payload->registers = malloc(room * sizeof *payload->registers);
    if (payload->bits == NULL && payload->registers == NULL)
        return cli_report_message(options, EXIT_STATUS_FAILURE, 0, "out of memory");
    for (int i = 0; i < count; i++) {
        if (bits) {
            int bit = cli_parse_bit(texts[i]);
            if (bit < 0)
                return cli_usage_error(options, "bad coil value '%s': 0, 1, on, off, true or false",
                                       texts[i]);
            if (payload->items >= room)
                return cli_usage_error(options, "%d values run past coil 65535", count);
            payload->bits[payload->items++] = (uint8_t)bit;
            continue;
        }
        const char *complaint = "";
        int used = cli_encode(options, texts[i], payload->registers + payload->items,
                              room - payload->items, &complaint);
        if (used < 0)
            return cli_usage_error(options, "bad %s value '%s': %s", cli_type_name(options->type),
                                   texts[i], complaint);
        payload->items += (size_t)used;
    }
    return 0;
}

/* The function code: the one forced, checked against the table and the count, or the one the
 * count calls for. Returns it, or 0 after a usage message. */
static uint8_t choose_function(const struct cli_options *options, enum cli_table table,
                               size_t items, uint8_t forced) {
    int coils = table == CLI_COILS;
    uint8_t single = coils ? MB_FC_WRITE_SINGLE_COIL : MB_FC_WRITE_SINGLE_REGISTER;
    uint8_t multiple = coils ? MB_FC_WRITE_MULTIPLE_COILS : MB_FC_WRITE_MULTIPLE_REGISTERS;
    if (forced == 0)
        return items == 1 ? single : multiple;
    if (forced != single && forced != multiple) {
        cli_usage_error(options, "--fc %u does not write %s (use %u or %u)", forced,
                        cli_table_name(table), single, multiple);
        return 0;
    }
    if (forced == single && items != 1) {
        cli_usage_error(options, "--fc %u writes one %s; these values take %zu (use --fc %u)",
                        forced, cli_table_noun(table), items, multiple);
        return 0;
    }
    return forced;
}

static int write_once(struct mb_client *client, uint8_t unit, uint8_t function, uint16_t address,
                      size_t quantity, const struct payload *payload, size_t offset) {
    switch (function) {
    case MB_FC_WRITE_SINGLE_COIL:
        return mb_write_coil(client, unit, address, payload->bits[offset]);
    case MB_FC_WRITE_SINGLE_REGISTER:
        return mb_write_register(client, unit, address, payload->registers[offset]);
    case MB_FC_WRITE_MULTIPLE_COILS:
        return mb_write_coils(client, unit, address, (uint16_t)quantity, payload->bits + offset);
    default:
        return mb_write_registers(client, unit, address, (uint16_t)quantity,
                                  payload->registers + offset);
    }
}

static void print_result(const struct cli_options *options, const struct cli_location *location,
                         uint8_t function, const struct payload *payload, size_t requests) {
    if (options->format == CLI_JSON) {
        cli_json_open(stdout, options);
        printf(",\"table\":\"%s\",\"address\":%u,\"type\":\"%s\",\"function\":%u,"
               "\"written\":%zu,\"requests\":%zu}\n",
               cli_table_name(location->table), location->address, cli_type_name(options->type),
               function, payload->items, requests);
        return;
    }
    char address[16];
    cli_format_address(location, location->address, address, sizeof address);
    printf("wrote %zu %s%s at %s (FC %u %s", payload->items, cli_table_noun(location->table),
           payload->items == 1 ? "" : "s", address, function, mb_function_name(function));
    if (requests > 1)
        printf(", %zu requests", requests);
    printf(")\n");
}

static int write_payload(const struct cli_options *options, const struct cli_location *location,
                         uint8_t function, const struct payload *payload) {
    struct mb_client *client;
    int status = cli_connect(options, 0, &client);
    if (status != EXIT_STATUS_OK)
        return status;
    size_t limit = function == MB_FC_WRITE_SINGLE_COIL || function == MB_FC_WRITE_SINGLE_REGISTER
                       ? 1
                   : function == MB_FC_WRITE_MULTIPLE_COILS ? MB_MAX_WRITE_BITS
                                                            : MB_MAX_WRITE_REGISTERS;
    size_t group = cli_type_registers(options->type);
    size_t per_request = limit < group ? limit : limit / group * group;
    size_t requests = 0;
    for (size_t done = 0; done < payload->items; requests++) {
        size_t quantity = payload->items - done < per_request ? payload->items - done : per_request;
        uint16_t at = (uint16_t)(location->address + done);
        int result = write_once(client, options->unit, function, at, quantity, payload, done);
        if (result != 0) {
            char note[96] = "";
            if (done > 0)
                snprintf(note, sizeof note, "; %zu of %zu %ss were written before", done,
                         payload->items, cli_table_noun(location->table));
            struct cli_request failed = {.function = function,
                                         .address = at,
                                         .quantity = (uint16_t)quantity,
                                         .has_range = 1,
                                         .note = note};
            status = cli_report_failure(options, client, result, &failed);
            mb_client_close(client);
            return status;
        }
        done += quantity;
    }
    mb_client_close(client);
    print_result(options, location, function, payload, requests);
    return EXIT_STATUS_OK;
}

int cmd_write(int argc, char **argv) {
    static const struct cli_flag flags[] = {{"fc", 1, FLAG_FC}, {NULL, 0, 0}};
    struct write_state state = {0};
    const struct cli_command command = {
        .name = "write",
        .help = help,
        .accepts = CLI_ACCEPTS_DATA,
        .flags = flags,
        .take_flag = take_flag,
        .state = &state,
    };
    struct cli_options options;
    char **positional;
    int count, next = 1, status;
    if (!cli_begin(&command, argc, argv, &options, &positional, &count, &status))
        return status;
    struct cli_location location;
    struct payload payload = {0};
    status = cli_parse_location(&options, positional, count, &next, &location);
    if (status == 0 &&
        (location.table == CLI_DISCRETE_INPUTS || location.table == CLI_INPUT_REGISTERS))
        status = cli_usage_error(&options, "%ss are read-only; write takes coils or holding",
                                 cli_table_noun(location.table));
    if (status == 0)
        status = cli_settle_type(&options, location.table);
    if (status == 0 && next >= count)
        status = cli_usage_error(&options, "missing VALUE (see mbsec write --help)");
    if (status == 0)
        status = parse_values(&options, &location, positional + next, count - next, &payload);
    if (status == 0) {
        uint8_t function =
            choose_function(&options, location.table, payload.items, state.forced_function);
        status = function == 0 ? EXIT_STATUS_USAGE
                               : write_payload(&options, &location, function, &payload);
    }
    free(payload.bits);
    free(payload.registers);
    free(positional);
    return status;
}
