/* SPDX-License-Identifier: MIT */
/*
 * mbsec bench: the command line. Parses the options (with the client commands' parser, for
 * --unit, --timeout, --json and the TLS options they share), encodes the request of each
 * function code once, makes the TLS context, runs the engine (bench_run.c) and prints the
 * report (bench_report.c).
 */
#include <errno.h>
#include <math.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <unistd.h>

#include "app/bench/bench.h"
#include "app/client/client.h"
#include "app/commands.h"
#include "mbsec/tls.h"
#include "mbsec/transport.h"

#define MAX_CONNECTIONS 10000
#define MAX_DEPTH 4096 /* mb_async's limit of requests in flight */
/* Requests in flight over all connections: each takes a slot of about 300 bytes in its client. */
#define MAX_IN_FLIGHT 100000
#define MAX_REQUESTS 1000000000000u
#define MAX_WEIGHT 1000000
#define DEFAULT_DURATION_MS 10000
#define DEFAULT_QUANTITY 10
#define MINIMUM_CONNECT_TIMEOUT_MS 3000
/* Descriptors besides the connections: standard streams, the loop's, the signalfd, TLS files. */
#define SPARE_DESCRIPTORS 32

static const char help[] =
    "usage: mbsec bench [options] TARGET\n"
    "\n"
    "Loads a Modbus/TCP server and measures it: requests per second, latency percentiles,\n"
    "and failed requests by kind. Non-blocking clients on one event loop keep --depth\n"
    "requests in flight on each of --connections connections for --duration seconds (or\n"
    "for --requests requests in all); then the report goes to standard output. SIGINT\n"
    "(Ctrl-C) or SIGTERM stops the run early and reports what was measured.\n"
    "\n"
    "TARGET is host[:port] (port 502 when left out, 802 with TLS).\n"
    "\n"
    "The run:\n"
    "  --connections N    connections at once (default 1)\n"
    "  --depth N          requests in flight on each connection (default 1)\n"
    "  --duration T       how long to measure, a duration: 10 (bare numbers are seconds;\n"
    "                     the default), 0.5, 250ms, 2m\n"
    "  --requests N       measure N requests in all instead of a duration\n"
    "  --warmup T         load the server this long before measuring (a duration, or 0,\n"
    "                     the default)\n"
    "  --churn            each connection connects, sends one request, waits for its answer\n"
    "                     and closes, again and again: connects/s and connect (handshake)\n"
    "                     latency\n"
    "  --unit N           unit id 0..255 (default 1)\n"
    "  --timeout T        per request, a duration: 500 (bare numbers are milliseconds),\n"
    "                     1.5s; default 1000 ms\n"
    "\n"
    "The requests:\n"
    "  --function FC      1, 2, 3 (default), 4, 5, 6, 15, 16 or 23\n"
    "  --address A        the first address of every request (default 0)\n"
    "  --quantity Q       values per request (default 10; FC 5 and 6 write one)\n"
    "  --mix FC:W,...     several function codes, each request drawn at random by weight:\n"
    "                     --mix 3:80,16:20\n"
    "  --write-ratio R    FC 3 reads and FC 16 writes of the same registers, R (0..1) of the\n"
    "                     requests writes\n"
    "  --seed N           seed of the draws (default 1): the same seed, the same sequence\n"
    "Writes leave a pattern that a read can check: holding register A gets A XOR 0xA5A5, coil\n"
    "A is on when A is odd. FC 23 writes the pattern and must read it back.\n"
    "\n"
    "Modbus/TCP Security (every connection makes its own handshake):\n"
    "  --tls              TLS; implied by --cert, --key, --ca, --pin, --server-name, --crl\n"
    "  --cert FILE        client certificate (PEM, with its chain), carrying the role\n"
    "  --key FILE         its private key\n"
    "  --ca FILE|DIR      CA(s) that must have signed the server certificate\n"
    "  --pin SHA256:HEX   accept the server certificate with this fingerprint instead\n"
    "  --server-name NAME the name or IP the server certificate must carry (default: the\n"
    "                     host of TARGET)\n"
    "  --crl FILE         CRL(s) to check the server's chain against\n"
    "  --tls12            at most TLS 1.2\n"
    "  --resume           offer the previous connection's session on each new connection\n"
    "\n"
    "Output:\n"
    "  --json             the report as one JSON object (its fields: docs/bench.md)\n"
    "  --progress         a progress line on stderr every second, even when stderr is not a\n"
    "                     terminal (on a terminal that is the default)\n"
    "  --quiet            no progress lines\n"
    "  -h, --help         this text\n"
    "\n"
    "Examples:\n"
    "  mbsec bench 192.0.2.10:5020 --connections 8 --depth 16 --duration 30\n"
    "  mbsec bench 192.0.2.10 --write-ratio 0.2 --quantity 50 --requests 100000 --json\n"
    "  mbsec bench 192.0.2.10 --churn --connections 4 --cert hmi.crt --key hmi.key \\\n"
    "      --ca ca.crt --resume\n"
    "\n"
    "Exit status: 0 every request succeeded, 1 some request failed (or none completed),\n"
    "2 usage, 3 no connection could be made (docs/bench.md).\n";

enum {
    FLAG_CONNECTIONS = 1,
    FLAG_DEPTH,
    FLAG_DURATION,
    FLAG_REQUESTS,
    FLAG_WARMUP,
    FLAG_FUNCTION,
    FLAG_ADDRESS,
    FLAG_QUANTITY,
    FLAG_MIX,
    FLAG_WRITE_RATIO,
    FLAG_SEED,
    FLAG_CHURN,
    FLAG_TLS12,
    FLAG_RESUME,
    FLAG_PROGRESS,
    FLAG_QUIET,
};

static const struct cli_flag flags[] = {
    {"connections", 1, FLAG_CONNECTIONS},
    {"depth", 1, FLAG_DEPTH},
    {"duration", 1, FLAG_DURATION},
    {"requests", 1, FLAG_REQUESTS},
    {"warmup", 1, FLAG_WARMUP},
    {"function", 1, FLAG_FUNCTION},
    {"address", 1, FLAG_ADDRESS},
    {"quantity", 1, FLAG_QUANTITY},
    {"mix", 1, FLAG_MIX},
    {"write-ratio", 1, FLAG_WRITE_RATIO},
    {"seed", 1, FLAG_SEED},
    {"churn", 0, FLAG_CHURN},
    {"tls12", 0, FLAG_TLS12},
    {"resume", 0, FLAG_RESUME},
    {"progress", 0, FLAG_PROGRESS},
    {"quiet", 0, FLAG_QUIET},
    {NULL, 0, 0},
};

/* One entry of the mix, as typed. */
struct mix_entry {
    uint8_t function;
    uint32_t weight;
};

/* The command's own options, as typed. */
struct bench_options {
    uint64_t connections;
    uint64_t depth;
    int depth_given;
    uint32_t duration_ms;
    int duration_given;
    uint64_t requests;
    uint32_t warmup_ms;
    uint64_t function;
    int function_given;
    uint64_t address;
    uint64_t quantity;
    int quantity_given;
    struct mix_entry mix[BENCH_MAX_FUNCTIONS];
    size_t mix_count;
    int mix_given;
    double write_ratio;
    int write_ratio_given;
    uint64_t seed;
    int churn;
    int tls12;
    int resume;
    int progress;
    int quiet;
};

/* Prints "mbsec bench: MESSAGE" for an option's bad value; returns -1 for take_flag(). */
static int complain(const char *format, ...) __attribute__((format(printf, 1, 2)));
static int complain(const char *format, ...) {
    va_list arguments;
    va_start(arguments, format);
    fputs("mbsec bench: ", stderr);
    vfprintf(stderr, format, arguments);
    fputc('\n', stderr);
    va_end(arguments);
    return -1;
}

static int supported_function(uint64_t function) {
    switch (function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        return 1;
    default:
        return 0;
    }
}

/* --duration and --warmup, whose bare numbers are seconds; --warmup also takes 0. Returns 0 or
 * -1 after printing why. */
static int take_duration(const char *name, const char *text, int zero_allowed,
                         uint32_t *milliseconds) {
    if (zero_allowed &&
        duration_parse(text, strlen(text), DURATION_BARE_SECONDS, milliseconds) == DURATION_ZERO) {
        *milliseconds = 0;
        return 0;
    }
    char problem[256];
    if (duration_option(name, text, DURATION_BARE_SECONDS, milliseconds, problem, sizeof problem) !=
        0)
        return complain("%s", problem);
    return 0;
}

#define MIX_EXPECTED                                                                       \
    "--mix: FUNCTION:WEIGHT pairs separated by commas (3:80,16:20), function codes 1, 2, " \
    "3, 4, 5, 6, 15, 16 or 23 each once, weights from 1 to 1000000; got '%s'"

/* "3:80,16:20" */
static int parse_mix(const char *text, struct bench_options *options) {
    char copy[256];
    if (strlen(text) >= sizeof copy)
        return complain(MIX_EXPECTED, text);
    strcpy(copy, text);
    options->mix_count = 0;
    char *saved = NULL;
    for (char *entry = strtok_r(copy, ",", &saved); entry != NULL;
         entry = strtok_r(NULL, ",", &saved)) {
        char *colon = strchr(entry, ':');
        uint64_t function, weight;
        if (colon == NULL || options->mix_count == BENCH_MAX_FUNCTIONS)
            return complain(MIX_EXPECTED, text);
        *colon = '\0';
        if (cli_parse_unsigned(entry, 1, 255, &function) != 0 ||
            cli_parse_unsigned(colon + 1, 1, MAX_WEIGHT, &weight) != 0 ||
            !supported_function(function))
            return complain(MIX_EXPECTED, text);
        for (size_t i = 0; i < options->mix_count; i++)
            if (options->mix[i].function == function)
                return complain(MIX_EXPECTED, text);
        options->mix[options->mix_count].function = (uint8_t)function;
        options->mix[options->mix_count].weight = (uint32_t)weight;
        options->mix_count++;
    }
    if (options->mix_count == 0)
        return complain(MIX_EXPECTED, text);
    options->mix_given = 1;
    return 0;
}

static int take_flag(void *data, int id, const char *argument) {
    struct bench_options *options = data;
    switch (id) {
    case FLAG_CONNECTIONS:
        if (cli_parse_unsigned(argument, 1, MAX_CONNECTIONS, &options->connections) != 0)
            return complain("--connections: a number from 1 to 10000, got '%s'", argument);
        return 0;
    case FLAG_DEPTH:
        if (cli_parse_unsigned(argument, 1, MAX_DEPTH, &options->depth) != 0)
            return complain("--depth: a number from 1 to 4096, got '%s'", argument);
        options->depth_given = 1;
        return 0;
    case FLAG_DURATION:
        if (take_duration("--duration", argument, 0, &options->duration_ms) != 0)
            return -1;
        options->duration_given = 1;
        return 0;
    case FLAG_REQUESTS:
        if (cli_parse_unsigned(argument, 1, MAX_REQUESTS, &options->requests) != 0)
            return complain("--requests: a number of requests from 1, got '%s'", argument);
        return 0;
    case FLAG_WARMUP:
        return take_duration("--warmup", argument, 1, &options->warmup_ms);
    case FLAG_FUNCTION:
        if (cli_parse_unsigned(argument, 1, 255, &options->function) != 0 ||
            !supported_function(options->function))
            return complain("--function: 1, 2, 3, 4, 5, 6, 15, 16 or 23, got '%s'", argument);
        options->function_given = 1;
        return 0;
    case FLAG_ADDRESS:
        if (cli_parse_unsigned(argument, 0, 65535, &options->address) != 0)
            return complain("--address: an address from 0 to 65535 (0x hex accepted), got '%s'",
                            argument);
        return 0;
    case FLAG_QUANTITY:
        if (cli_parse_unsigned(argument, 1, MB_MAX_READ_BITS, &options->quantity) != 0)
            return complain("--quantity: a number of values from 1 to 2000, got '%s'", argument);
        options->quantity_given = 1;
        return 0;
    case FLAG_MIX:
        return parse_mix(argument, options);
    case FLAG_WRITE_RATIO: {
        char *end;
        errno = 0;
        options->write_ratio = strtod(argument, &end);
        if (errno != 0 || end == argument || *end != '\0' || !isfinite(options->write_ratio) ||
            options->write_ratio < 0 || options->write_ratio > 1)
            return complain("--write-ratio: a fraction from 0 to 1 (0.2), got '%s'", argument);
        options->write_ratio_given = 1;
        return 0;
    }
    case FLAG_SEED:
        if (cli_parse_unsigned(argument, 0, UINT64_MAX, &options->seed) != 0)
            return complain("--seed: a number, got '%s'", argument);
        return 0;
    case FLAG_CHURN:
        options->churn = 1;
        return 0;
    case FLAG_TLS12:
        options->tls12 = 1;
        return 0;
    case FLAG_RESUME:
        options->resume = 1;
        return 0;
    case FLAG_PROGRESS:
        options->progress = 1;
        return 0;
    default:
        options->quiet = 1;
        return 0;
    }
}

/* ---- the requests ---- */

/* The pattern writes leave behind, so that a later read can tell them. */
static uint16_t register_pattern(uint32_t address) {
    return (uint16_t)(address ^ 0xA5A5u);
}

static int coil_pattern(uint32_t address) {
    return (int)(address & 1u);
}

/* The most values one request of `function` carries. */
static uint16_t quantity_limit(uint8_t function) {
    switch (function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
        return MB_MAX_READ_BITS;
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        return MB_MAX_READ_REGISTERS;
    case MB_FC_WRITE_MULTIPLE_COILS:
        return MB_MAX_WRITE_BITS;
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
        return MB_MAX_WRITE_REGISTERS;
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        return MB_MAX_RW_WRITE_REGISTERS;
    default:
        return 1; /* FC 5, 6 */
    }
}

/* Encodes the one request `function->function` sends for the whole run. Returns 0 or -1. */
static int encode_request(struct bench_function *function, uint16_t address, uint16_t quantity) {
    uint8_t values[2 * MB_MAX_READ_REGISTERS];
    struct mb_request request = {.function = function->function};
    memset(values, 0, sizeof values);
    switch (function->function) {
    case MB_FC_WRITE_SINGLE_COIL:
        request.write_single.address = address;
        request.write_single.value = coil_pattern(address) ? MB_COIL_ON : MB_COIL_OFF;
        break;
    case MB_FC_WRITE_SINGLE_REGISTER:
        request.write_single.address = address;
        request.write_single.value = register_pattern(address);
        break;
    case MB_FC_WRITE_MULTIPLE_COILS:
        for (uint32_t i = 0; i < quantity; i++)
            if (coil_pattern(address + i))
                values[i / 8] |= (uint8_t)(1u << (i % 8));
        request.write_multiple.address = address;
        request.write_multiple.quantity = quantity;
        request.write_multiple.values = values;
        break;
    case MB_FC_WRITE_MULTIPLE_REGISTERS:
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        for (uint32_t i = 0; i < quantity; i++) {
            uint16_t value = register_pattern(address + i);
            values[2 * i] = (uint8_t)(value >> 8);
            values[2 * i + 1] = (uint8_t)value;
        }
        if (function->function == MB_FC_WRITE_MULTIPLE_REGISTERS) {
            request.write_multiple.address = address;
            request.write_multiple.quantity = quantity;
            request.write_multiple.values = values;
            break;
        }
        request.read_write.write_address = address;
        request.read_write.write_quantity = quantity;
        request.read_write.values = values;
        request.read_write.read_address = address;
        request.read_write.read_quantity = quantity;
        /* The write happens before the read: the answer must hold what was just written. */
        memcpy(function->expected, values, 2u * quantity);
        function->expected_length = 2u * quantity;
        break;
    default: /* FC 1-4 */
        request.read.address = address;
        request.read.quantity = quantity;
        break;
    }
    int length = mb_request_encode(&request, function->pdu, sizeof function->pdu);
    if (length < 0)
        return -1;
    function->length = (size_t)length;
    return 0;
}

/* Settles the function codes, weights, address and quantity, and encodes each request. Returns
 * 0 or EXIT_STATUS_USAGE after printing why. */
static int settle_requests(const struct cli_options *cli, const struct bench_options *options,
                           struct bench_settings *settings) {
    if (options->function_given + options->mix_given + options->write_ratio_given > 1)
        return cli_usage_error(cli, "--function, --mix and --write-ratio exclude each other");
    struct mix_entry mix[BENCH_MAX_FUNCTIONS];
    size_t count = 0;
    if (options->mix_given) {
        memcpy(mix, options->mix, sizeof mix);
        count = options->mix_count;
    } else if (options->write_ratio_given) {
        uint32_t writes = (uint32_t)(options->write_ratio * MAX_WEIGHT + 0.5);
        if (writes < MAX_WEIGHT)
            mix[count++] = (struct mix_entry){MB_FC_READ_HOLDING_REGISTERS, MAX_WEIGHT - writes};
        if (writes > 0)
            mix[count++] = (struct mix_entry){MB_FC_WRITE_MULTIPLE_REGISTERS, writes};
    } else {
        mix[count++] = (struct mix_entry){
            options->function_given ? (uint8_t)options->function : MB_FC_READ_HOLDING_REGISTERS, 1};
    }

    uint16_t quantity = options->quantity_given ? (uint16_t)options->quantity : DEFAULT_QUANTITY;
    int multiple = 0; /* some function code carries more than one value */
    for (size_t i = 0; i < count; i++) {
        uint8_t function = mix[i].function;
        uint16_t limit = quantity_limit(function);
        if (limit > 1) {
            multiple = 1;
            if (quantity > limit)
                return cli_usage_error(cli, "--quantity %u: FC %u %s carries at most %u", quantity,
                                       function, mb_function_name(function), limit);
        }
        uint32_t span = limit > 1 ? quantity : 1;
        if (options->address + span > 65536)
            return cli_usage_error(cli, "--address %u with --quantity %u runs past address 65535",
                                   (unsigned)options->address, (unsigned)span);
    }
    if (!multiple && options->quantity_given)
        return cli_usage_error(cli, "--quantity does not apply to FC 5 and 6 (one value each)");

    settings->function_count = count;
    settings->total_weight = 0;
    settings->address_start = (uint16_t)options->address;
    settings->quantity = multiple ? quantity : 1;
    for (size_t i = 0; i < count; i++) {
        struct bench_function *function = &settings->functions[i];
        function->function = mix[i].function;
        function->weight = mix[i].weight;
        settings->total_weight += mix[i].weight;
        if (encode_request(function, (uint16_t)options->address, quantity) != 0)
            return cli_usage_error(cli, "FC %u: the request does not encode", function->function);
    }
    return 0;
}

/* ---- TLS, the target ---- */

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

static int make_tls_context(const struct cli_options *cli, const struct bench_options *options,
                            struct mb_tls_context **context) {
    if (cli->certificate == NULL || cli->key == NULL)
        return cli_usage_error(cli, "TLS needs --cert and --key: Modbus/TCP Security always "
                                    "authenticates the client (make them with mbsec cert "
                                    "client)");
    if (cli->ca == NULL && cli->pin == NULL)
        return cli_usage_error(cli, "TLS needs --ca (or --pin) to trust the server");
    char host[256];
    target_host(cli->target, host, sizeof host);
    struct stat status;
    int ca_is_directory = cli->ca != NULL && stat(cli->ca, &status) == 0 && S_ISDIR(status.st_mode);
    struct mb_tls_config config = {
        .certificate_file = cli->certificate,
        .key_file = cli->key,
        .ca_file = ca_is_directory ? NULL : cli->ca,
        .ca_directory = ca_is_directory ? cli->ca : NULL,
        .crl_file = cli->crl,
        .pin = cli->pin,
        .server_name = cli->server_name != NULL ? cli->server_name : host,
        .tls12_only = options->tls12,
        .resume = options->resume,
    };
    char error[320];
    if (mb_tls_context_create(0, &config, context, error, sizeof error) != 0)
        return cli_usage_error(cli, "TLS: %s", error);
    return 0;
}

/* Makes room for a descriptor per connection when the soft limit is lower (and the hard one
 * allows). Connections beyond what fits fail to connect and are counted. */
static void raise_descriptor_limit(uint32_t connections) {
    struct rlimit limit;
    rlim_t wanted = (rlim_t)connections + SPARE_DESCRIPTORS;
    if (getrlimit(RLIMIT_NOFILE, &limit) != 0 || limit.rlim_cur >= wanted)
        return;
    limit.rlim_cur =
        limit.rlim_max != RLIM_INFINITY && limit.rlim_max < wanted ? limit.rlim_max : wanted;
    setrlimit(RLIMIT_NOFILE, &limit);
}

/* Checks what the options say together and fills in *settings. Returns 0 or EXIT_STATUS_USAGE. */
static int settle(const struct cli_options *cli, const struct bench_options *options,
                  struct bench_settings *settings) {
    if (options->duration_given && options->requests != 0)
        return cli_usage_error(cli, "--duration and --requests exclude each other");
    if (options->churn && options->depth_given)
        return cli_usage_error(cli, "--depth does not apply to --churn (each connection "
                                    "sends one request, then closes)");
    if (options->quiet && options->progress)
        return cli_usage_error(cli, "--quiet and --progress exclude each other");
    if (cli->retries != 0)
        return cli_usage_error(cli, "--retries does not apply to bench: every request is "
                                    "sent once, and its failure counted");
    if ((options->tls12 || options->resume) && !cli->tls)
        return cli_usage_error(cli, "%s needs TLS (--tls with --cert, --key and --ca)",
                               options->tls12 ? "--tls12" : "--resume");
    if (!options->churn && options->connections * options->depth > MAX_IN_FLIGHT)
        return cli_usage_error(cli,
                               "--connections x --depth: at most %d requests in flight, "
                               "got %llu",
                               MAX_IN_FLIGHT,
                               (unsigned long long)(options->connections * options->depth));
    int status = settle_requests(cli, options, settings);
    if (status != 0)
        return status;
    settings->target = cli->target;
    settings->mode = options->churn ? BENCH_CHURN : BENCH_LOAD;
    settings->connections = (uint32_t)options->connections;
    settings->depth = options->churn ? 1 : (uint32_t)options->depth;
    settings->requests = options->requests;
    settings->duration_ms = options->requests != 0    ? 0
                            : options->duration_given ? options->duration_ms
                                                      : DEFAULT_DURATION_MS;
    settings->warmup_ms = options->warmup_ms;
    settings->unit = cli->unit;
    settings->timeout_ms = cli->timeout_ms;
    settings->connect_timeout_ms =
        cli->timeout_ms > MINIMUM_CONNECT_TIMEOUT_MS ? cli->timeout_ms : MINIMUM_CONNECT_TIMEOUT_MS;
    settings->seed = options->seed;
    settings->progress = !options->quiet && (options->progress || isatty(STDERR_FILENO));
    if (cli->tls)
        return make_tls_context(cli, options, &settings->tls);
    return 0;
}

int cmd_bench(int argc, char **argv) {
    struct bench_options options = {.connections = 1, .depth = 1, .seed = 1};
    const struct cli_command command = {
        .name = "bench",
        .help = help,
        .flags = flags,
        .take_flag = take_flag,
        .state = &options,
    };
    struct cli_options cli;
    char **positional;
    int count, exit_status;
    if (!cli_begin(&command, argc, argv, &cli, &positional, &count, &exit_status))
        return exit_status;
    struct bench_settings settings = {0};
    struct bench_results *results = NULL;
    if (count > 1) {
        exit_status = cli_usage_error(&cli,
                                      "unexpected argument '%s': bench takes TARGET "
                                      "alone (see mbsec bench --help)",
                                      positional[1]);
        goto done;
    }
    exit_status = settle(&cli, &options, &settings);
    if (exit_status != 0)
        goto done;

    const char *reason = NULL;
    if (mb_address_parse(cli.target, cli.tls ? MB_TLS_DEFAULT_PORT : MB_DEFAULT_PORT,
                         &settings.address, &settings.address_length, &reason) != 0) {
        char message[400];
        snprintf(message, sizeof message, "cannot connect to '%s': %s", cli.target,
                 reason != NULL ? reason : "not an address");
        exit_status = cli_report_message(&cli, EXIT_STATUS_CONNECT, 0, message);
        goto done;
    }
    raise_descriptor_limit(settings.connections);
    /* Large (two histograms): not on the stack. */
    results = calloc(1, sizeof *results);
    if (results == NULL || bench_run(&settings, results) != 0) {
        if (results == NULL)
            fprintf(stderr, "mbsec bench: out of memory\n");
        exit_status = EXIT_STATUS_FAILURE;
        goto done;
    }
    if (results->cannot_connect) {
        exit_status = cli_report_message(&cli, EXIT_STATUS_CONNECT, 0, results->connect_detail);
        goto done;
    }
    if (cli.format == CLI_JSON)
        bench_report_json(stdout, &settings, results);
    else
        bench_report_text(stdout, &settings, results);
    fflush(stdout);
    exit_status = bench_error_total(results) == 0 && results->requests > 0 ? EXIT_STATUS_OK
                                                                           : EXIT_STATUS_FAILURE;

done:
    free(results);
    mb_tls_context_destroy(settings.tls);
    free(positional);
    return exit_status;
}
