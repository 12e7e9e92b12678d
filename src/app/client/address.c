/* SPDX-License-Identifier: MIT */
/*
 * Tables, addresses and counts as people write them: table names and their two-letter aliases,
 * addresses counted from 0 or (--one-based) from 1, and Modicon references.
 *
 * A Modicon reference is a 5- or 6-digit number whose first digit names the table (0 coils,
 * 1 discrete inputs, 3 input registers, 4 holding registers) and whose other digits count from
 * 1: 40001 is holding register 0, 300010 input register 9. Device manuals use them everywhere,
 * so a number of that shape given where the table is expected (`mbsec read HOST 40001`) is read
 * as one, and a note on stderr says so. With the table given, the number is an address, as
 * mbpoll and pymodbus read it and as manuals that list raw register addresses mean it
 * (`mbsec read HOST input 30775` reads input register 30775); when it is shaped like a
 * reference, a note says how it was read and how to ask for the other.
 */
#include <ctype.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/client/client.h"
#include "app/commands.h"

struct table_names {
    const char *name;
    const char *alias;
    const char *noun;
    uint8_t read_function;
    int modicon_digit;
};

static const struct table_names tables[] = {
    [CLI_COILS] = {"coils", "co", "coil", MB_FC_READ_COILS, 0},
    [CLI_DISCRETE_INPUTS] = {"discrete", "di", "discrete input", MB_FC_READ_DISCRETE_INPUTS, 1},
    [CLI_HOLDING_REGISTERS] = {"holding", "hr", "holding register", MB_FC_READ_HOLDING_REGISTERS,
                               4},
    [CLI_INPUT_REGISTERS] = {"input", "ir", "input register", MB_FC_READ_INPUT_REGISTERS, 3},
};

const char *cli_table_name(enum cli_table table) {
    return tables[table].name;
}

const char *cli_table_noun(enum cli_table table) {
    return tables[table].noun;
}

int cli_table_holds_bits(enum cli_table table) {
    return table == CLI_COILS || table == CLI_DISCRETE_INPUTS;
}

uint8_t cli_table_read_function(enum cli_table table) {
    return tables[table].read_function;
}

int cli_table_parse(const char *text, enum cli_table *table) {
    for (size_t i = 0; i < sizeof tables / sizeof tables[0]; i++)
        if (strcasecmp(text, tables[i].name) == 0 || strcasecmp(text, tables[i].alias) == 0) {
            *table = (enum cli_table)i;
            return 0;
        }
    return -1;
}

enum modicon_shape {
    NOT_MODICON = 0,
    MODICON = 1,
    MODICON_INVALID = -1, /* shaped like one, but offset 0 or past 65536 */
};

/* Recognises a Modicon reference: all digits, 5 or 6 of them, led by 0, 1, 3 or 4. */
static enum modicon_shape parse_modicon(const char *text, struct cli_location *location) {
    size_t length = strlen(text);
    if (length != 5 && length != 6)
        return NOT_MODICON;
    for (size_t i = 0; i < length; i++)
        if (!isdigit((unsigned char)text[i]))
            return NOT_MODICON;
    int digit = text[0] - '0';
    size_t table;
    for (table = 0; table < sizeof tables / sizeof tables[0]; table++)
        if (tables[table].modicon_digit == digit)
            break;
    if (table == sizeof tables / sizeof tables[0])
        return NOT_MODICON;
    unsigned long offset = 0;
    for (size_t i = 1; i < length; i++)
        offset = offset * 10 + (unsigned long)(text[i] - '0');
    if (offset == 0 || offset > 65536)
        return MODICON_INVALID;
    location->table = (enum cli_table)table;
    location->address = (uint16_t)(offset - 1);
    location->numbering = CLI_MODICON;
    location->modicon_digits = (int)length;
    return MODICON;
}

static int literal_hint(const struct cli_options *options, const char *text, const char *why) {
    unsigned long literal = strtoul(text, NULL, 10);
    if (literal <= 65535)
        return cli_usage_error(options, "%s %s; to mean address %lu itself, write 0x%lX", text, why,
                               literal, literal);
    return cli_usage_error(options, "%s %s", text, why);
}

static int parse_address(const struct cli_options *options, const char *text, enum cli_table table,
                         struct cli_location *location);

int cli_parse_location(const struct cli_options *options, char **positional, int count, int *next,
                       struct cli_location *location) {
    if (*next >= count)
        return cli_usage_error(options, "missing TABLE and ADDRESS (see mbsec %s --help)",
                               options->command);
    enum cli_table named_table = CLI_COILS;
    int table_given = cli_table_parse(positional[*next], &named_table) == 0;
    if (table_given)
        (*next)++;
    if (*next >= count)
        return cli_usage_error(options, "missing ADDRESS after %s", positional[*next - 1]);
    const char *text = positional[*next];

    memset(location, 0, sizeof *location);
    if (table_given) {
        (*next)++;
        return parse_address(options, text, named_table, location);
    }
    enum modicon_shape shape = parse_modicon(text, location);
    if (shape == MODICON_INVALID)
        return literal_hint(options, text,
                            "is not a Modicon reference (their offsets count from 1 and end at "
                            "65536)");
    if (shape == NOT_MODICON) {
        uint64_t ignored;
        if (cli_parse_unsigned(text, 0, UINT64_MAX, &ignored) == 0)
            return cli_usage_error(options,
                                   "missing TABLE before address %s (coils, discrete, holding "
                                   "or input; a Modicon reference such as 40001 names its own)",
                                   text);
        return cli_usage_error(options,
                               "unknown table '%s' (coils, discrete, holding, input, or co, di, "
                               "hr, ir)",
                               text);
    }
    (*next)++;
    fprintf(stderr,
            "mbsec %s: note: %s read as %s %u (Modicon reference: no table was given; with one, "
            "as in '%s %s', the number is the address itself)\n",
            options->command, text, cli_table_noun(location->table), location->address,
            cli_table_name(location->table), text);
    return 0;
}

/* The address after a table: a number, counted from 0 (or from 1 with --one-based). */
static int parse_address(const struct cli_options *options, const char *text, enum cli_table table,
                         struct cli_location *location) {
    struct cli_location reference;
    memset(&reference, 0, sizeof reference);
    int modicon = parse_modicon(text, &reference) == MODICON;
    uint64_t address;
    if (modicon && cli_parse_unsigned(text, 0, options->one_based ? 65536 : 65535, &address) != 0)
        return cli_usage_error(options,
                               "bad address '%s': past the last address, and with a table "
                               "given a number is an address; leave out '%s' to read the "
                               "Modicon reference %s (%s %u)",
                               text, cli_table_name(table), text, cli_table_noun(reference.table),
                               reference.address);
    if (modicon)
        fprintf(stderr,
                "mbsec %s: note: %s read as %s address %s, as given (leave out '%s' to read it "
                "as the Modicon reference to %s %u)\n",
                options->command, text, cli_table_noun(table), text, cli_table_name(table),
                cli_table_noun(reference.table), reference.address);
    location->table = table;
    if (options->one_based) {
        if (cli_parse_unsigned(text, 0, 65536, &address) != 0)
            return cli_usage_error(options, "bad address '%s': 1..65536 with --one-based", text);
        if (address == 0)
            return cli_usage_error(options, "address 0 does not exist with --one-based (addresses "
                                            "count from 1)");
        location->address = (uint16_t)(address - 1);
        location->numbering = CLI_ONE_BASED;
    } else {
        if (cli_parse_unsigned(text, 0, 65535, &address) != 0)
            return cli_usage_error(options, "bad address '%s': 0..65535 (or 0x0000..0xFFFF)", text);
        location->address = (uint16_t)address;
        location->numbering = CLI_ZERO_BASED;
    }
    return 0;
}

int cli_settle_type(struct cli_options *options, enum cli_table table) {
    if (cli_table_holds_bits(table)) {
        if (options->type_given && options->type != CLI_TYPE_BIT)
            return cli_usage_error(options, "--type %s does not apply to %s, which are bits",
                                   cli_type_name(options->type), cli_table_name(table));
        if (options->order_given || options->scale_given)
            return cli_usage_error(options, "--order and --scale apply to registers, not %s",
                                   cli_table_name(table));
        options->type = CLI_TYPE_BIT;
        return 0;
    }
    if (!options->type_given)
        options->type = CLI_TYPE_U16;
    if (options->type == CLI_TYPE_BIT)
        return cli_usage_error(options,
                               "--type bit applies to coils and discrete inputs; registers "
                               "take u16, i16, u32, i32, u64, i64, f32, f64, ascii or hex");
    if (options->scale_given && !cli_type_is_numeric(options->type))
        return cli_usage_error(options, "--scale applies to numbers, not to --type %s",
                               cli_type_name(options->type));
    return 0;
}

int cli_parse_span(struct cli_options *options, char **positional, int count, int *next,
                   struct cli_span *span) {
    int status = cli_parse_location(options, positional, count, next, &span->location);
    if (status != 0)
        return status;
    status = cli_settle_type(options, span->location.table);
    if (status != 0)
        return status;
    size_t per_value = cli_type_registers(options->type);
    size_t room = (65536 - (size_t)span->location.address) / per_value;
    uint64_t values = 1;
    if (*next < count) {
        const char *text = positional[(*next)++];
        if (cli_parse_unsigned(text, 1, UINT64_MAX, &values) != 0)
            return cli_usage_error(options, "bad COUNT '%s': a number from 1", text);
    }
    if (values > room) {
        char first[16];
        cli_format_address(&span->location, span->location.address, first, sizeof first);
        return cli_usage_error(options,
                               "COUNT %llu from address %s runs past address 65535 (%zu %s "
                               "%s)",
                               (unsigned long long)values, first, room,
                               cli_type_name(options->type),
                               room == 1 ? "value fits" : "values fit");
    }
    span->values = (size_t)values;
    span->items = span->values * per_value;
    return 0;
}

void cli_format_address(const struct cli_location *location, uint32_t address, char *text,
                        size_t capacity) {
    switch (location->numbering) {
    case CLI_ONE_BASED:
        snprintf(text, capacity, "%lu", (unsigned long)address + 1);
        break;
    case CLI_MODICON: {
        unsigned long reference = (unsigned long)address + 1;
        int digit = tables[location->table].modicon_digit;
        if (location->modicon_digits == 5 && reference <= 9999)
            snprintf(text, capacity, "%d%04lu", digit, reference);
        else
            snprintf(text, capacity, "%d%05lu", digit, reference);
        break;
    }
    default:
        snprintf(text, capacity, "%lu", (unsigned long)address);
        break;
    }
}
