/* SPDX-License-Identifier: MIT */
/*
 * What the client commands (read, write, poll, info, scan, diag, raw) share: their command line
 * (options, tables, addresses, Modicon references), value types over registers, the three output
 * formats, and turning library results into messages and exit statuses.
 *
 * Everything protocol-related comes from the library (client.h, pdu.h, value.h); this layer only
 * parses what a person typed and prints what came back.
 */
#ifndef MBSEC_TOOLS_CLIENT_COMMON_H
#define MBSEC_TOOLS_CLIENT_COMMON_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

#include "app/common/duration.h"
#include "app/common/json.h"
#include "app/common/log.h"
#include "mbsec/client.h"
#include "mbsec/value.h"

/* ---- the four tables ---- */

enum cli_table {
    CLI_COILS = 0,
    CLI_DISCRETE_INPUTS = 1,
    CLI_HOLDING_REGISTERS = 2,
    CLI_INPUT_REGISTERS = 3,
};

/* "coils", "discrete", "holding", "input": the names the command line takes and JSON shows. */
const char *cli_table_name(enum cli_table table);
/* "coil", "discrete input", "holding register", "input register": for sentences. */
const char *cli_table_noun(enum cli_table table);
/* 1 for coils and discrete inputs (bits), 0 for registers. */
int cli_table_holds_bits(enum cli_table table);
/* The function code that reads the table (1..4). */
uint8_t cli_table_read_function(enum cli_table table);
/* Parses a table name or its alias (co, di, hr, ir). Returns 0 or -1. */
int cli_table_parse(const char *text, enum cli_table *table);

/* ---- value types ---- */

enum cli_type {
    CLI_TYPE_BIT = 0,
    CLI_TYPE_U16,
    CLI_TYPE_I16,
    CLI_TYPE_U32,
    CLI_TYPE_I32,
    CLI_TYPE_U64,
    CLI_TYPE_I64,
    CLI_TYPE_F32,
    CLI_TYPE_F64,
    CLI_TYPE_ASCII,
    CLI_TYPE_HEX,
};

const char *cli_type_name(enum cli_type type);
int cli_type_parse(const char *text, enum cli_type *type);
/* Registers one value occupies: 1, 2 or 4 (1 for bit, hex and ascii, whose COUNT counts
 * registers). */
size_t cli_type_registers(enum cli_type type);
/* 1 for the types --scale applies to (integers and floats). */
int cli_type_is_numeric(enum cli_type type);

/* ---- the command line ---- */

enum cli_format {
    CLI_HUMAN = 0,
    CLI_JSON,
    CLI_CSV,
};

/* How the user counted the address, so that the human table counts the same way. */
enum cli_numbering {
    CLI_ZERO_BASED = 0,
    CLI_ONE_BASED,
    CLI_MODICON,
};

/* Options every client command takes, after parsing. */
struct cli_options {
    const char *command; /* "read": the prefix of every message */
    const char *target;  /* host[:port] as typed */
    uint8_t unit;
    int unit_given;
    uint32_t timeout_ms;
    int timeout_given;
    uint32_t retries;
    /* Data options (read, write, poll). */
    int one_based;
    enum cli_type type;
    int type_given;
    enum mb_order order;
    int order_given;
    double scale;
    int scale_given;
    enum cli_format format;
    /* Modbus/TCP Security (--tls and the options that imply it). */
    int tls;
    const char *certificate;
    const char *key;
    const char *ca;
    const char *crl;
    const char *pin;
    const char *server_name;
    /* Serial lines (a TARGET that is a path) and RTU over TCP. */
    int serial;       /* the target is a path: a serial line, RTU */
    int rtu_over_tcp; /* --rtu-over-tcp: RTU framing to host:port */
    uint32_t baud;    /* --baud; 0: 19200 */
    char parity;      /* --parity: 'N', 'E', 'O'; 0: 'E' */
    uint8_t stop_bits, data_bits;
    int line_given; /* one of --baud, --parity, --stop, --data, --echo was given */
    int echo;       /* --echo: the adapter echoes what is sent */
    int ascii;      /* --ascii: Modbus ASCII on the serial line instead of RTU */
    int rs485;      /* --rs485: enum mb_serial_rs485 */
};

/* Which option groups a command accepts besides --unit, --timeout, --retries and --json. */
enum {
    CLI_ACCEPTS_DATA = 1, /* --one-based, --type, --order, --scale */
    CLI_ACCEPTS_CSV = 2,
    CLI_NO_UNIT = 4, /* scan: the units come from --units */
};

/* One option of a command's own. */
struct cli_flag {
    const char *name; /* without the leading "--" */
    int takes_argument;
    int id;
};

/* A client command as the option parser sees it. */
struct cli_command {
    const char *name;
    const char *help; /* the whole --help text */
    unsigned accepts;
    const struct cli_flag *flags; /* the command's own options; NULL-named entry last */
    /* Takes one of `flags`: returns 0, or -1 after printing what is wrong. */
    int (*take_flag)(void *state, int id, const char *argument);
    void *state;
    uint32_t default_timeout_ms; /* 0: 1000 */
};

/*
 * Parses argv[1..argc) (argv[0] is the command name) into *options and the positional
 * arguments (*positional, *positional_count, which point into argv and hold at most argc
 * entries). Arguments that look like negative numbers are positional, so that `write ... -5`
 * works; "--" ends the options. Returns 0, 1 when --help was printed (exit 0), or -1 after a
 * usage error was printed (exit 2).
 */
int cli_parse(const struct cli_command *command, int argc, char **argv, struct cli_options *options,
              char **positional, int *positional_count);

/*
 * cli_parse() into a positional array it allocates (the caller frees *positional), then takes
 * TARGET, which every client command needs, into options->target. Returns 1 when the command
 * should run with positional[1..count), *exit_status EXIT_STATUS_OK; else 0 with *exit_status set
 * (EXIT_STATUS_OK after --help, EXIT_STATUS_USAGE, EXIT_STATUS_FAILURE), *positional freed and
 * NULL.
 */
int cli_begin(const struct cli_command *command, int argc, char **argv, struct cli_options *options,
              char ***positional, int *count, int *exit_status);

/* Prints "mbsec COMMAND: MESSAGE" on stderr. */
void cli_error(const struct cli_options *options, const char *format, ...)
    __attribute__((format(printf, 2, 3)));
/* The same, then a hint to see --help; returns EXIT_STATUS_USAGE. */
int cli_usage_error(const struct cli_options *options, const char *format, ...)
    __attribute__((format(printf, 2, 3)));

/* Parses an unsigned integer, decimal or 0x-hex (never octal), in minimum..maximum. */
int cli_parse_unsigned(const char *text, uint64_t minimum, uint64_t maximum, uint64_t *value);

/* Where a read or write starts. */
struct cli_location {
    enum cli_table table;
    uint16_t address; /* the protocol address, counted from 0 */
    enum cli_numbering numbering;
    int modicon_digits; /* 5 or 6 for a Modicon reference */
};

/*
 * Takes "[TABLE] ADDRESS" from positional[*next...]: a table name, then an address (decimal or
 * 0x-hex, counted from 1 with --one-based), or a Modicon reference alone (5 or 6 digits led by
 * 0, 1, 3 or 4: 40001 is holding register 0), which names its table and may follow a table
 * name that agrees. Prints the Modicon note on stderr. Advances *next. Returns 0 or
 * EXIT_STATUS_USAGE after printing why.
 */
int cli_parse_location(const struct cli_options *options, char **positional, int count, int *next,
                       struct cli_location *location);

/* A run of values: where it starts and how many, for read and poll. */
struct cli_span {
    struct cli_location location;
    size_t values; /* COUNT: values of the type (registers for hex and ascii, bits for bit) */
    size_t items;  /* bits or registers that holds */
};

/*
 * Takes "[TABLE] ADDRESS [COUNT]" (see cli_parse_location()), settles the type for the table
 * and checks that COUNT values fit below address 65536. Returns 0 or EXIT_STATUS_USAGE.
 */
int cli_parse_span(struct cli_options *options, char **positional, int count, int *next,
                   struct cli_span *span);

/* Checks the type options against the table (bits take only "bit"; --order and --scale only
 * registers) and fills in the defaults. Returns 0 or EXIT_STATUS_USAGE after printing why. */
int cli_settle_type(struct cli_options *options, enum cli_table table);

/* Writes the address as the user counts it (one-based, Modicon) into text. */
void cli_format_address(const struct cli_location *location, uint32_t address, char *text,
                        size_t capacity);

/* Help text shared by the client commands. */
#define CLI_HELP_TARGET                                                                   \
    "TARGET is host[:port] (port 502 when left out; IPv6 as [2001:db8::1]:502), or the\n" \
    "path of a serial line (/dev/ttyUSB0), spoken to in Modbus RTU; --unit is then\n"     \
    "required (0: a broadcast, writes only).\n"
#define CLI_HELP_ADDRESS                                                                    \
    "TABLE is coils, discrete, holding or input (co, di, hr, ir). ADDRESS counts from 0\n"  \
    "(0x hex accepted), or from 1 with --one-based. Without TABLE, ADDRESS is a Modicon\n"  \
    "reference (5 or 6 digits led by 0, 1, 3 or 4: 00001 coil 0, 10001 discrete input 0,\n" \
    "30001 input register 0, 40001 holding register 0); with TABLE it is the address\n"     \
    "itself (holding 40001 is holding register 40001).\n"
#define CLI_HELP_CONNECTION                                                                 \
    "  --unit N           unit id 0..255 (default 1)\n"                                     \
    "  --timeout T        per request, a duration: 500 (bare numbers are milliseconds),\n"  \
    "                     1.5s, 2m; default 1000 ms\n"                                      \
    "                     (connecting, TLS handshake included, may take 3 s or --timeout\n" \
    "                     when that is longer)\n"                                           \
    "  --retries N        repeat a read that got no answer up to N more times (default "    \
    "0)\n" CLI_HELP_JSON CLI_HELP_TLS CLI_HELP_SERIAL
#define CLI_HELP_SERIAL                                                                    \
    "  --baud N           serial line: the baud rate (default 19200)\n"                    \
    "  --parity P         serial line: none, even (default) or odd\n"                      \
    "  --stop N           serial line: 1 (default) or 2 stop bits\n"                       \
    "  --data N           serial line: 8 (default) or 7 data bits\n"                       \
    "  --echo             serial line: the adapter echoes what is sent (2-wire RS-485):\n" \
    "                     drop the echo of each request before reading the answer\n"       \
    "  --ascii            serial line: Modbus ASCII instead of RTU\n"                      \
    "  --rs485 MODE       serial line: how the RS-485 transmitter is switched: none\n"     \
    "                     (default: RS-232, or an adapter that does it), kernel (the\n"    \
    "                     driver's RS-485 mode), rts (RTS raised around each frame)\n"     \
    "  --rtu-over-tcp     host:port speaks RTU, not Modbus/TCP (a serial-to-Ethernet\n"    \
    "                     converter in transparent mode)\n"
#define CLI_HELP_JSON "  --json             JSON output, one object per line, errors included\n"
#define CLI_HELP_TLS                                                                        \
    "  --tls              Modbus/TCP Security (TLS, default port 802); implied by --cert\n" \
    "  --cert FILE        client certificate (PEM, with its chain), carrying the role\n"    \
    "  --key FILE         its private key\n"                                                \
    "  --ca FILE|DIR      CA(s) that must have signed the server certificate\n"             \
    "  --pin SHA256:HEX   accept the server certificate with this fingerprint instead\n"    \
    "  --server-name NAME the name or IP the server certificate must carry (default: the\n" \
    "                     host of TARGET; not checked with --pin)\n"                        \
    "  --crl FILE         CRL(s) to check the server's chain against\n"
#define CLI_HELP_DATA                                                                        \
    "  --type TYPE        bit, u16, i16, u32, i32, u64, i64, f32, f64, ascii, hex\n"         \
    "                     (default: bit for coils and discrete inputs, u16 for registers)\n" \
    "  --order ORDER      byte order of values over registers: ABCD (default), CDAB (word\n" \
    "                     swap), BADC (byte swap), DCBA (little-endian)\n"                   \
    "  --scale FACTOR     multiply numbers by FACTOR when reading, divide when writing\n"    \
    "  --one-based        ADDRESS counts from 1 (address 0 is then an error)\n"
#define CLI_HELP_MBPOLL                                                                      \
    "mbpoll's short options work too, for TABLE ADDRESS COUNT and more: -a unit,\n"          \
    "-t 0|1|3|4[:hex|:int|:float] (table and type; 32-bit values low word first, as\n"       \
    "mbpoll reads them, unless -B), -r reference (from 1; from 0 with -0), -c count,\n"      \
    "-p port, -o timeout in seconds; poll also takes -1 (once) and -l interval in ms:\n"     \
    "mbsec read -t 4:float -r 21 -c 2 192.0.2.10 is mbpoll's reading of holding registers\n" \
    "20..23 as two floats.\n"
#define CLI_HELP_EXIT                                                                \
    "Exit status: 0 ok, 1 failure, 2 usage, 3 cannot connect, 4 timeout, 5 Modbus\n" \
    "exception, 6 bad response (docs/exit-codes.md).\n"

/* ---- talking to the device ---- */

/* Maps a library result (a negative MB_E* error or a positive exception code) to the exit
 * status: see docs/exit-codes.md. */
int cli_exit_status(int result);

/* Connects with the options' timeouts and retries (and reconnection on when `reconnect`).
 * On failure prints the library's detail and returns the exit status; else 0. */
int cli_connect(const struct cli_options *options, int reconnect, struct mb_client **client);

/* Describes a request for error messages: "FC 3 read holding registers at 100, quantity 10". */
struct cli_request {
    uint8_t function;
    uint16_t address;
    uint16_t quantity;
    int has_range;    /* address and quantity mean something */
    const char *note; /* appended to the message when not NULL */
};

/*
 * Reports a failed call: one line on stderr ("mbsec read: exception 02 illegal data address
 * (FC 3 ...)" or the library's detail), and with --json an object on stdout. `client` may be
 * NULL (a failed connect), `request` too. Returns the exit status.
 */
int cli_report_failure(const struct cli_options *options, const struct mb_client *client,
                       int result, const struct cli_request *request);

/* Same as cli_report_failure() but with the message already made. */
int cli_report_message(const struct cli_options *options, int exit_status, int exception,
                       const char *message);

/*
 * Reads `count` bits (coils, discrete: one byte each in `bits`) or registers (`registers`) from
 * a table, in as many requests as the per-request limits need, each request a whole number of
 * `group` items so that a multi-register value is never split across two requests. Returns 0,
 * or the library's result with *failed describing the request that failed.
 */
int cli_read_table(struct mb_client *client, uint8_t unit, enum cli_table table, uint16_t address,
                   size_t count, size_t group, uint8_t *bits, uint16_t *registers,
                   struct cli_request *failed);

/* ---- values ---- */

/* One value decoded from registers (or a bit), ready to print. */
struct cli_value {
    enum {
        CLI_VALUE_UNSIGNED,
        CLI_VALUE_SIGNED,
        CLI_VALUE_REAL,
        CLI_VALUE_HEX, /* the hex type: `unsigned_value`, four digits */
    } kind;
    uint64_t unsigned_value;
    int64_t signed_value;
    double real;
    enum {
        CLI_REAL_DOUBLE, /* f64: the shortest text that reads back as the same double */
        CLI_REAL_FLOAT,  /* f32: the same for a float */
        CLI_REAL_SCALED, /* a product with --scale: 15 significant digits */
    } real_style;
    uint64_t bits;  /* the value's bits, most significant first, for the hex column */
    int hex_digits; /* 0: no hex column */
};

/* Decodes the value at `registers` (cli_type_registers() of them) with the options' type,
 * order and scale. Not for ascii (see mb_get_reg_string()). */
void cli_decode(const struct cli_options *options, const uint16_t *registers,
                struct cli_value *value);

/* Formats a decoded value as a number: decimal, or 0x-hex for the hex type. NaN and infinities
 * come out as "nan", "inf", "-inf". */
void cli_format_value(const struct cli_value *value, char *text, size_t capacity);

/* Formats a finite double as the shortest decimal that reads back as the same number. */
void cli_format_real(double number, char *text, size_t capacity);

/*
 * Parses one VALUE of the write command into registers (at most 4 for numbers; as many as the
 * text needs for ascii, up to `capacity`). Returns the number of registers, or -1 with
 * *complaint set to why.
 */
int cli_encode(const struct cli_options *options, const char *text, uint16_t *registers,
               size_t capacity, const char **complaint);

/*
 * Parses bytes written in hex across one or more arguments: "03 00 00 00 0a", "030000000a",
 * "03:00:00:00:0a", "0x03,0x00"; separators are spaces, ':', ',' and '-'; a lone digit is one
 * byte. Returns the number of bytes (1..capacity), or -1 with *complaint set to why.
 */
int cli_parse_hex(const char *const *texts, int count, uint8_t *bytes, size_t capacity,
                  const char **complaint);

/* Parses a coil value: 0/1/on/off/true/false (any case). Returns 0 or 1, or -1. */
int cli_parse_bit(const char *text);

/* ---- output (timestamps: log_timestamp() in app/common/log.h; JSON strings:
 * json_write_string() in app/common/json.h) ---- */

/* Writes bytes as lowercase hex pairs separated by `separator` (none when '\0'). */
void cli_hex_bytes(FILE *out, const uint8_t *bytes, size_t length, char separator);

/* Writes bytes as text with non-printable bytes as '.'. */
void cli_printable(FILE *out, const uint8_t *bytes, size_t length);

/* Writes the "{"timestamp":..., "target":..., "unit":N" opening every JSON object shares. */
void cli_json_open(FILE *out, const struct cli_options *options);

/* A completed read, as read and poll print it. */
struct cli_reading {
    const struct cli_location *location;
    size_t count; /* values (bits, or registers for hex and ascii) */
    const uint8_t *bits;
    const uint16_t *registers;
    char timestamp[32];
};

/* Prints a reading in the options' format. `csv_header`: print the CSV header line first. */
void cli_print_reading(const struct cli_options *options, const struct cli_reading *reading,
                       int csv_header);

#endif
