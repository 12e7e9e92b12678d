/* SPDX-License-Identifier: MIT */
/*
 * The command line of the client commands: the options they share, numbers and durations.
 *
 * The parser is hand-written rather than getopt_long() because the write command takes
 * negative numbers as values: getopt would read `-5` as an option, while here an argument that
 * looks like a negative number is positional.
 */
#include <ctype.h>
#include <errno.h>
#include <inttypes.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/client/client.h"
#include "app/commands.h"
#include "mbsec/serial.h"

#define DEFAULT_TIMEOUT_MS 1000
#define MAX_RETRIES 100

enum common_flag {
    FLAG_UNIT = -100,
    FLAG_TIMEOUT,
    FLAG_RETRIES,
    FLAG_JSON,
    FLAG_CSV,
    FLAG_ONE_BASED,
    FLAG_TYPE,
    FLAG_ORDER,
    FLAG_SCALE,
    FLAG_HELP,
    FLAG_TLS,
    FLAG_CERT,
    FLAG_KEY,
    FLAG_CA,
    FLAG_CRL,
    FLAG_PIN,
    FLAG_SERVER_NAME,
    FLAG_BAUD,
    FLAG_PARITY,
    FLAG_STOP,
    FLAG_DATA,
    FLAG_RTU_OVER_TCP,
    FLAG_ECHO,
    FLAG_ASCII,
    FLAG_RS485,
};

static const struct cli_flag common_flags[] = {
    {"unit", 1, FLAG_UNIT},
    {"timeout", 1, FLAG_TIMEOUT},
    {"retries", 1, FLAG_RETRIES},
    {"json", 0, FLAG_JSON},
    {"csv", 0, FLAG_CSV},
    {"one-based", 0, FLAG_ONE_BASED},
    {"type", 1, FLAG_TYPE},
    {"order", 1, FLAG_ORDER},
    {"scale", 1, FLAG_SCALE},
    {"help", 0, FLAG_HELP},
    {"tls", 0, FLAG_TLS},
    {"cert", 1, FLAG_CERT},
    {"key", 1, FLAG_KEY},
    {"ca", 1, FLAG_CA},
    {"crl", 1, FLAG_CRL},
    {"pin", 1, FLAG_PIN},
    {"server-name", 1, FLAG_SERVER_NAME},
    {"baud", 1, FLAG_BAUD},
    {"parity", 1, FLAG_PARITY},
    {"stop", 1, FLAG_STOP},
    {"data", 1, FLAG_DATA},
    {"rtu-over-tcp", 0, FLAG_RTU_OVER_TCP},
    {"echo", 0, FLAG_ECHO},
    {"ascii", 0, FLAG_ASCII},
    {"rs485", 1, FLAG_RS485},
    {NULL, 0, 0},
};

void cli_error(const struct cli_options *options, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "mbsec %s: ", options->command);
    vfprintf(stderr, format, arguments);
    fputc('\n', stderr);
    va_end(arguments);
}

int cli_usage_error(const struct cli_options *options, const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    fprintf(stderr, "mbsec %s: ", options->command);
    vfprintf(stderr, format, arguments);
    fputc('\n', stderr);
    va_end(arguments);
    return EXIT_STATUS_USAGE;
}

int cli_parse_unsigned(const char *text, uint64_t minimum, uint64_t maximum, uint64_t *value) {
    int base = 10;
    const char *digits = text;
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        base = 16;
        digits = text + 2;
    }
    if (digits[0] == '\0')
        return -1;
    for (const char *c = digits; *c != '\0'; c++)
        if (base == 16 ? !isxdigit((unsigned char)*c) : !isdigit((unsigned char)*c))
            return -1;
    errno = 0;
    char *end;
    unsigned long long parsed = strtoull(digits, &end, base);
    if (errno != 0 || *end != '\0' || parsed < minimum || parsed > maximum)
        return -1;
    *value = parsed;
    return 0;
}

/* "-5", "-0.25", "-.5", "-inf", "-nan": values for the write command, not options. */
static int looks_negative(const char *argument) {
    if (argument[0] != '-')
        return 0;
    const char *rest = argument + 1;
    if (isdigit((unsigned char)rest[0]) || (rest[0] == '.' && isdigit((unsigned char)rest[1])))
        return 1;
    return strcasecmp(rest, "inf") == 0 || strcasecmp(rest, "infinity") == 0 ||
           strcasecmp(rest, "nan") == 0;
}

static const struct cli_flag *find_flag(const struct cli_flag *flags, const char *name,
                                        size_t length) {
    for (; flags != NULL && flags->name != NULL; flags++)
        if (strlen(flags->name) == length && strncmp(flags->name, name, length) == 0)
            return flags;
    return NULL;
}

/* --timeout, and mbpoll's -o whose bare numbers are seconds. Returns 0 or EXIT_STATUS_USAGE after
 * printing why. */
static int take_timeout(struct cli_options *options, const char *name, const char *argument,
                        enum duration_bare bare) {
    char problem[256];
    if (duration_option(name, argument, bare, &options->timeout_ms, problem, sizeof problem))
        return cli_usage_error(options, "%s", problem);
    options->timeout_given = 1;
    return 0;
}

/* Applies one shared option. Returns 0, 1 for --help, or EXIT_STATUS_USAGE after printing why. */
static int take_common_flag(const struct cli_command *command, struct cli_options *options, int id,
                            const char *argument) {
    uint64_t number;
    switch (id) {
    case FLAG_UNIT:
        if (cli_parse_unsigned(argument, 0, 255, &number) != 0)
            return cli_usage_error(options, "--unit: a unit id from 0 to 255, got '%s'", argument);
        options->unit = (uint8_t)number;
        options->unit_given = 1;
        return 0;
    case FLAG_TIMEOUT:
        return take_timeout(options, "--timeout", argument, DURATION_BARE_MILLISECONDS);
    case FLAG_RETRIES:
        if (cli_parse_unsigned(argument, 0, MAX_RETRIES, &number) != 0)
            return cli_usage_error(options, "--retries: a number from 0 to %d, got '%s'",
                                   MAX_RETRIES, argument);
        options->retries = (uint32_t)number;
        return 0;
    case FLAG_JSON:
        options->format = CLI_JSON;
        return 0;
    case FLAG_CSV:
        options->format = CLI_CSV;
        return 0;
    case FLAG_ONE_BASED:
        options->one_based = 1;
        return 0;
    case FLAG_TYPE:
        if (cli_type_parse(argument, &options->type) != 0)
            return cli_usage_error(options,
                                   "--type: bit, u16, i16, u32, i32, u64, i64, f32, f64, "
                                   "ascii or hex, got '%s'",
                                   argument);
        options->type_given = 1;
        return 0;
    case FLAG_ORDER:
        if (mb_order_parse(argument, &options->order) != 0)
            return cli_usage_error(options, "--order: ABCD, CDAB, BADC or DCBA, got '%s'",
                                   argument);
        options->order_given = 1;
        return 0;
    case FLAG_SCALE: {
        char *end;
        errno = 0;
        options->scale = strtod(argument, &end);
        if (errno != 0 || end == argument || *end != '\0' || options->scale == 0 ||
            !isfinite(options->scale))
            return cli_usage_error(options, "--scale: a non-zero number (0.1, 10), got '%s'",
                                   argument);
        options->scale_given = 1;
        return 0;
    }
    case FLAG_HELP:
        fputs(command->help, stdout);
        return 1;
    case FLAG_TLS:
        options->tls = 1;
        return 0;
    case FLAG_CERT:
        options->certificate = argument;
        options->tls = 1;
        return 0;
    case FLAG_KEY:
        options->key = argument;
        options->tls = 1;
        return 0;
    case FLAG_CA:
        options->ca = argument;
        options->tls = 1;
        return 0;
    case FLAG_CRL:
        options->crl = argument;
        options->tls = 1;
        return 0;
    case FLAG_PIN:
        options->pin = argument;
        options->tls = 1;
        return 0;
    case FLAG_SERVER_NAME:
        options->server_name = argument;
        options->tls = 1;
        return 0;
    case FLAG_BAUD:
        if (cli_parse_unsigned(argument, 50, 4000000, &number) != 0)
            return cli_usage_error(options, "--baud: a rate from 50 to 4000000, got '%s'",
                                   argument);
        options->baud = (uint32_t)number;
        options->line_given = 1;
        return 0;
    case FLAG_PARITY:
        if (strcmp(argument, "none") == 0 || strcasecmp(argument, "N") == 0)
            options->parity = 'N';
        else if (strcmp(argument, "even") == 0 || strcasecmp(argument, "E") == 0)
            options->parity = 'E';
        else if (strcmp(argument, "odd") == 0 || strcasecmp(argument, "O") == 0)
            options->parity = 'O';
        else
            return cli_usage_error(options, "--parity: none, even or odd, got '%s'", argument);
        options->line_given = 1;
        return 0;
    case FLAG_STOP:
        if (strcmp(argument, "1") != 0 && strcmp(argument, "2") != 0)
            return cli_usage_error(options, "--stop: 1 or 2 stop bits, got '%s'", argument);
        options->stop_bits = (uint8_t)(argument[0] - '0');
        options->line_given = 1;
        return 0;
    case FLAG_DATA:
        if (strcmp(argument, "7") != 0 && strcmp(argument, "8") != 0)
            return cli_usage_error(options, "--data: 7 or 8 data bits, got '%s'", argument);
        options->data_bits = (uint8_t)(argument[0] - '0');
        options->line_given = 1;
        return 0;
    case FLAG_RTU_OVER_TCP:
        options->rtu_over_tcp = 1;
        return 0;
    case FLAG_ECHO:
        options->echo = 1;
        options->line_given = 1;
        return 0;
    case FLAG_ASCII:
        options->ascii = 1;
        options->line_given = 1;
        return 0;
    case FLAG_RS485:
        if (strcmp(argument, "none") == 0)
            options->rs485 = MB_RS485_NONE;
        else if (strcmp(argument, "kernel") == 0)
            options->rs485 = MB_RS485_KERNEL;
        else if (strcmp(argument, "rts") == 0)
            options->rs485 = MB_RS485_RTS;
        else
            return cli_usage_error(options, "--rs485: none, kernel or rts, got '%s'", argument);
        options->line_given = 1;
        return 0;
    default:
        return EXIT_STATUS_USAGE;
    }
}

/* Refuses options the command has no use for, instead of silently ignoring them. */
static int check_accepted(const struct cli_command *command, const struct cli_options *options,
                          int json_and_csv) {
    int data = (command->accepts & CLI_ACCEPTS_DATA) != 0;
    if ((command->accepts & CLI_NO_UNIT) && options->unit_given)
        return cli_usage_error(options, "%s takes --units, not --unit", command->name);
    if (!data && options->one_based)
        return cli_usage_error(options, "--one-based does not apply to %s", command->name);
    if (!data && (options->type_given || options->order_given || options->scale_given))
        return cli_usage_error(options, "--type, --order and --scale do not apply to %s",
                               command->name);
    if (!(command->accepts & CLI_ACCEPTS_CSV) && options->format == CLI_CSV)
        return cli_usage_error(options, "--csv does not apply to %s (--json does)", command->name);
    if (json_and_csv)
        return cli_usage_error(options, "--json and --csv exclude each other");
    return 0;
}

/* ---- mbpoll's short options, for the hands that type them ---- */

/*
 * What mbpoll users type: -a unit, -t table[:type], -r reference (from 1 unless -0), -c count,
 * -0, -B (big-endian words for 32-bit values, which mbpoll otherwise reads little-endian), -p
 * port, -o timeout in seconds; and for poll -1 (once) and -l interval in ms. -t, -r and -c stand
 * for TABLE ADDRESS [COUNT] and are turned into them once every option is read.
 */
struct mbpoll_form {
    int table_given;
    enum cli_table table;
    int type_given;
    enum cli_type type;
    int reference_given;
    unsigned long reference;
    int count_given;
    unsigned long count;
    int zero_based;
    int big_endian;
    const char *port;
};

static int takes_values(const struct cli_command *command) {
    return strcmp(command->name, "write") == 0;
}

/* -0 and -1 look like negative numbers: they are mbpoll's options where the command takes no
 * values (write takes -1 as a value; -0 is an option everywhere, as in mbpoll). */
static int mbpoll_flag_here(const struct cli_command *command, const char *argument) {
    if (!(command->accepts & CLI_ACCEPTS_DATA))
        return 0;
    return strcmp(argument, "-0") == 0 || (strcmp(argument, "-1") == 0 && !takes_values(command));
}

/* mbpoll's -t: 0 coils, 1 discrete inputs, 3 input and 4 holding registers, with :hex, :int
 * (i32) or :float (f32) for registers. */
static int parse_mbpoll_type(const char *text, struct mbpoll_form *form) {
    static const struct {
        const char *name;
        enum cli_table table;
    } tables[] = {{"0", CLI_COILS},
                  {"1", CLI_DISCRETE_INPUTS},
                  {"3", CLI_INPUT_REGISTERS},
                  {"4", CLI_HOLDING_REGISTERS}};
    const char *colon = strchr(text, ':');
    size_t length = colon != NULL ? (size_t)(colon - text) : strlen(text);
    size_t i = 0;
    while (i < 4 && (strlen(tables[i].name) != length || strncmp(tables[i].name, text, length)))
        i++;
    if (i == 4)
        return -1;
    form->table_given = 1;
    form->table = tables[i].table;
    if (colon == NULL)
        return 0;
    if (cli_table_holds_bits(form->table))
        return -1;
    form->type_given = 1;
    if (strcmp(colon + 1, "hex") == 0)
        form->type = CLI_TYPE_HEX;
    else if (strcmp(colon + 1, "int") == 0)
        form->type = CLI_TYPE_I32;
    else if (strcmp(colon + 1, "float") == 0)
        form->type = CLI_TYPE_F32;
    else
        return -1;
    return 0;
}

/* Takes one short option at argv[*index]. Returns 1 when it was one, 0 when it is unknown, -1
 * after a usage error. */
static int take_mbpoll_flag(const struct cli_command *command, struct cli_options *options,
                            struct mbpoll_form *form, int argc, char **argv, int *index) {
    const char *argument = argv[*index];
    if (argument[2] != '\0')
        return 0;
    char letter = argument[1];
    int data = (command->accepts & CLI_ACCEPTS_DATA) != 0;
    int poll = strcmp(command->name, "poll") == 0;
    if (letter == '0' && data) {
        form->zero_based = 1;
        return 1;
    }
    if (letter == 'B' && data) {
        form->big_endian = 1;
        return 1;
    }
    if (letter == '1' && data && !takes_values(command)) {
        /* Once: read is once anyway; poll takes it as --count 1. */
        if (!poll)
            return 1;
        const struct cli_flag *count = find_flag(command->flags, "count", 5);
        return count != NULL && command->take_flag(command->state, count->id, "1") == 0 ? 1 : -1;
    }
    const char *wanted = data ? "artcpo" : "apo";
    if (strchr(wanted, letter) == NULL && !(letter == 'l' && poll))
        return 0;
    if (*index + 1 >= argc) {
        cli_usage_error(options, "-%c needs a value", letter);
        return -1;
    }
    const char *value = argv[++*index];
    uint64_t number;
    switch (letter) {
    case 'a':
        return take_common_flag(command, options, FLAG_UNIT, value) == 0 ? 1 : -1;
    case 't':
        if (parse_mbpoll_type(value, form) != 0) {
            cli_usage_error(options,
                            "-t: 0 (coils), 1 (discrete inputs), 3 or 4 (input or holding "
                            "registers, with :hex, :int or :float), got '%s'",
                            value);
            return -1;
        }
        return 1;
    case 'r':
        if (cli_parse_unsigned(value, 0, 65536, &number) != 0) {
            cli_usage_error(options, "-r: a reference 1..65536 (0..65535 with -0), got '%s'",
                            value);
            return -1;
        }
        form->reference_given = 1;
        form->reference = (unsigned long)number;
        return 1;
    case 'c':
        if (cli_parse_unsigned(value, 1, 65536, &number) != 0) {
            cli_usage_error(options, "-c: a count from 1, got '%s'", value);
            return -1;
        }
        form->count_given = 1;
        form->count = (unsigned long)number;
        return 1;
    case 'p':
        if (cli_parse_unsigned(value, 1, 65535, &number) != 0) {
            cli_usage_error(options, "-p: a port 1..65535, got '%s'", value);
            return -1;
        }
        form->port = value;
        return 1;
    case 'o':
        return take_timeout(options, "-o", value, DURATION_BARE_SECONDS) == 0 ? 1 : -1;
    default: { /* 'l': poll's interval, bare numbers in milliseconds, handed on as --interval */
        const struct cli_flag *interval = find_flag(command->flags, "interval", 8);
        uint32_t interval_ms;
        char problem[256], milliseconds[32];
        if (duration_option("-l", value, DURATION_BARE_MILLISECONDS, &interval_ms, problem,
                            sizeof problem) != 0) {
            cli_usage_error(options, "%s", problem);
            return -1;
        }
        snprintf(milliseconds, sizeof milliseconds, "%" PRIu32 "ms", interval_ms);
        return interval != NULL &&
                       command->take_flag(command->state, interval->id, milliseconds) == 0
                   ? 1
                   : -1;
    }
    }
}

/* Turns -t, -r and -c into TABLE ADDRESS [COUNT] after the target, and -p into its port. */
static int apply_mbpoll_form(const struct cli_command *command, struct cli_options *options,
                             const struct mbpoll_form *form, char **positional, int *count) {
    static char target[300], table[16], address[16], values[16];
    if (form->port != NULL && *count > 0) {
        const char *given = positional[0];
        const char *colon = strrchr(given, ':');
        if (colon != NULL && (given[0] != '[' || strchr(given, ']') < colon)) {
            cli_usage_error(options, "-p %s: the target %s has a port already", form->port, given);
            return -1;
        }
        snprintf(target, sizeof target, "%s:%s", given, form->port);
        positional[0] = target;
    }
    if (form->big_endian)
        options->order = MB_ORDER_ABCD;
    else if (form->type_given && !options->order_given)
        options->order = MB_ORDER_CDAB; /* mbpoll's 32-bit values: the low word first */
    if (form->type_given && !options->type_given) {
        options->type = form->type;
        options->type_given = 1;
    }
    if (!form->table_given && !form->reference_given && !form->count_given)
        return 0;
    int reads = !takes_values(command);
    if (*count > 1 && reads) {
        cli_usage_error(options, "give -t, -r and -c, or TABLE ADDRESS COUNT, not both");
        return -1;
    }
    unsigned long reference = form->reference_given ? form->reference : form->zero_based ? 0 : 1;
    if (!form->zero_based && reference == 0) {
        cli_usage_error(options, "-r 0: references count from 1 (or give -0 to count from 0)");
        return -1;
    }
    if (form->zero_based && reference > 65535) {
        cli_usage_error(options, "-r %lu: past the last address (0..65535 with -0)", reference);
        return -1;
    }
    /* From 1, as mbpoll counts: --one-based, so the table shows what was typed. */
    if (!form->zero_based)
        options->one_based = 1;
    snprintf(address, sizeof address, "%lu", reference);
    snprintf(values, sizeof values, "%lu", form->count_given ? form->count : 1);
    /* TARGET TABLE ADDRESS [COUNT] then what followed the target (a write's values). */
    int extra = reads ? 3 : 2;
    for (int i = *count - 1; i >= 1; i--)
        positional[i + extra] = positional[i];
    snprintf(table, sizeof table, "%s",
             cli_table_name(form->table_given ? form->table : CLI_HOLDING_REGISTERS));
    positional[1] = table;
    positional[2] = address;
    if (reads)
        positional[3] = values;
    *count += extra;
    return 0;
}

int cli_parse(const struct cli_command *command, int argc, char **argv, struct cli_options *options,
              char **positional, int *positional_count) {
    memset(options, 0, sizeof *options);
    options->command = command->name;
    options->unit = 1;
    options->timeout_ms =
        command->default_timeout_ms != 0 ? command->default_timeout_ms : DEFAULT_TIMEOUT_MS;
    options->order = MB_ORDER_ABCD;
    options->scale = 1;
    *positional_count = 0;

    int options_ended = 0;
    int seen_json = 0, seen_csv = 0;
    struct mbpoll_form mbpoll;
    memset(&mbpoll, 0, sizeof mbpoll);
    for (int i = 1; i < argc; i++) {
        const char *argument = argv[i];
        if (options_ended || argument[0] != '-' || argument[1] == '\0' ||
            (looks_negative(argument) && !mbpoll_flag_here(command, argument))) {
            positional[(*positional_count)++] = argv[i];
            continue;
        }
        if (strcmp(argument, "--") == 0) {
            options_ended = 1;
            continue;
        }
        if (strcmp(argument, "-h") == 0) {
            fputs(command->help, stdout);
            return 1;
        }
        if (argument[1] != '-') {
            int taken = take_mbpoll_flag(command, options, &mbpoll, argc, argv, &i);
            if (taken < 0)
                return -1;
            if (taken > 0)
                continue;
            cli_usage_error(options, "unknown option '%s' (see mbsec %s --help)", argument,
                            command->name);
            return -1;
        }

        const char *name = argument + 2;
        const char *equals = strchr(name, '=');
        size_t name_length = equals != NULL ? (size_t)(equals - name) : strlen(name);
        const struct cli_flag *flag = find_flag(command->flags, name, name_length);
        int own = flag != NULL;
        if (flag == NULL)
            flag = find_flag(common_flags, name, name_length);
        if (flag == NULL) {
            cli_usage_error(options, "unknown option '--%.*s' (see mbsec %s --help)",
                            (int)name_length, name, command->name);
            return -1;
        }
        const char *value = NULL;
        if (flag->takes_argument) {
            if (equals != NULL)
                value = equals + 1;
            else if (i + 1 < argc)
                value = argv[++i];
            else {
                cli_usage_error(options, "--%s needs a value", flag->name);
                return -1;
            }
        } else if (equals != NULL) {
            cli_usage_error(options, "--%s takes no value", flag->name);
            return -1;
        }
        if (flag->id == FLAG_JSON)
            seen_json = 1;
        if (flag->id == FLAG_CSV)
            seen_csv = 1;
        int status = own ? command->take_flag(command->state, flag->id, value)
                         : take_common_flag(command, options, flag->id, value);
        if (status == 1 && !own)
            return 1;
        if (status != 0)
            return -1;
    }
    if (check_accepted(command, options, seen_json && seen_csv) != 0)
        return -1;
    return apply_mbpoll_form(command, options, &mbpoll, positional, positional_count);
}

/* What the target and the transport options say together: a path is a serial line (RTU), which
 * needs its unit named and takes no TLS; the line's settings apply to a serial line only. */
static int check_transport(const struct cli_command *command, struct cli_options *options) {
    options->serial = options->target[0] == '/' || strncmp(options->target, "./", 2) == 0;
    if (options->serial) {
        if (options->tls)
            return cli_usage_error(options, "%s is a serial line: TLS does not apply",
                                   options->target);
        if (options->rtu_over_tcp)
            return cli_usage_error(options,
                                   "--rtu-over-tcp is for host:port targets; %s is a serial line",
                                   options->target);
        if (!options->unit_given && !(command->accepts & CLI_NO_UNIT))
            return cli_usage_error(options,
                                   "on a serial line --unit is required: the device's address "
                                   "1..247 (0: a broadcast, for writes only)");
        if (options->unit > MB_SERIAL_ADDRESS_MAX)
            return cli_usage_error(options,
                                   "--unit %u: unit ids 248..255 are reserved on a serial line",
                                   options->unit);
        return 0;
    }
    if (options->line_given)
        return cli_usage_error(
            options,
            "--baud, --parity, --stop, --data, --echo, --ascii and --rs485 apply to a serial "
            "line (a "
            "path such as /dev/ttyUSB0), not to %s",
            options->target);
    if (options->rtu_over_tcp && options->tls)
        return cli_usage_error(options, "--rtu-over-tcp and TLS exclude each other");
    return 0;
}

int cli_begin(const struct cli_command *command, int argc, char **argv, struct cli_options *options,
              char ***positional, int *count, int *exit_status) {
    *positional = malloc(sizeof **positional * (size_t)(argc > 0 ? argc : 1));
    if (*positional == NULL) {
        fprintf(stderr, "mbsec %s: out of memory\n", command->name);
        *exit_status = EXIT_STATUS_FAILURE;
        return 0;
    }
    int parsed = cli_parse(command, argc, argv, options, *positional, count);
    if (parsed == 0 && *count < 1) {
        cli_usage_error(options, "missing TARGET (see mbsec %s --help)", command->name);
        parsed = -1;
    }
    if (parsed != 0) {
        free(*positional);
        *positional = NULL;
        *exit_status = parsed > 0 ? EXIT_STATUS_OK : EXIT_STATUS_USAGE;
        return 0;
    }
    options->target = (*positional)[0];
    if (check_transport(command, options) != 0) {
        free(*positional);
        *positional = NULL;
        *exit_status = EXIT_STATUS_USAGE;
        return 0;
    }
    *exit_status = EXIT_STATUS_OK;
    return 1;
}
