/* SPDX-License-Identifier: MIT */
/*
 * mbsec scan: which unit ids answer behind one address (a gateway to a serial bus, usually).
 * One cheap probe per unit with a short timeout; a unit that answers, even with an exception,
 * is there, except for the gateway's own exceptions 0A and 0B, which say that nobody is.
 * Each unit that answered is asked once for its basic identification (FC 43/14), unless the
 * probe already was that request: at most two requests per unit in the range.
 */
#include <stdlib.h>
#include <string.h>

#include "app/client/client.h"
#include "app/commands.h"

#define DEFAULT_SCAN_TIMEOUT_MS 200

static const char help[] =
    "usage: mbsec scan [options] TARGET\n"
    "\n"
    "Finds the unit ids that answer at TARGET: one probe per unit, FC 3 (address 0, one\n"
    "register) by default. A unit that answers, even with an exception, is listed, except\n"
    "for exceptions 0A and 0B (a gateway saying that no device answered); a unit that does\n"
    "not answer within --timeout is not. Each unit listed is asked for its basic\n"
    "identification (FC 43/14: VendorName ProductCode MajorMinorRevision), one request.\n"
    "\n" CLI_HELP_TARGET "\n"
    "Options:\n"
    "  --units LIST       unit ids to try: 1-247 (default), 5, 1-10,20,30-32 (0..255;\n"
    "                     on a serial line 0 and 248..255 are left out)\n"
    "  --probe fc3|fc43   probe with FC 3 (default) or with FC 43/14 (read device\n"
    "                     identification), which also gives the identification\n"
    "  --timeout T        per probe: milliseconds (200) or seconds (1s); default 200 ms\n"
    "  --retries N        probe a silent unit up to N more times (default 0)\n"
    "  --json             one JSON object per unit that answered\n" CLI_HELP_TLS CLI_HELP_SERIAL
    "  -h, --help         this text\n"
    "\n"
    "Exit status: 0 when at least one unit answered, 1 when none did, 2 usage, 3 cannot\n"
    "connect (docs/exit-codes.md).\n"
    "\n"
    "Examples:\n"
    "  mbsec scan 192.0.2.10\n"
    "  mbsec scan 192.0.2.10 --units 1-32 --timeout 500 --probe fc43\n";

enum { FLAG_UNITS = 1, FLAG_PROBE };

struct scan_state {
    uint8_t wanted[256]; /* 1 for each unit id to probe */
    int units_given;
    int probe_device_id;
};

/* Parses "1-247", "5", "1-10,20,30-32" into state->wanted. */
static int parse_units(struct scan_state *state, const char *text) {
    memset(state->wanted, 0, sizeof state->wanted);
    char *copy = strdup(text), *saved = NULL;
    if (copy == NULL)
        return -1;
    int status = 0, any = 0;
    for (char *part = strtok_r(copy, ",", &saved); part != NULL && status == 0;
         part = strtok_r(NULL, ",", &saved)) {
        uint64_t first, last;
        char *dash = strchr(part, '-');
        if (dash != NULL)
            *dash = '\0';
        if (cli_parse_unsigned(part, 0, 255, &first) != 0 ||
            (dash != NULL && cli_parse_unsigned(dash + 1, 0, 255, &last) != 0))
            status = -1;
        else if (dash == NULL)
            last = first;
        if (status == 0 && last < first)
            status = -1;
        for (uint64_t unit = first; status == 0 && unit <= last; unit++)
            state->wanted[unit] = 1;
        any = 1;
    }
    free(copy);
    return status == 0 && any ? 0 : -1;
}

static int take_flag(void *data, int id, const char *argument) {
    struct scan_state *state = data;
    if (id == FLAG_UNITS) {
        if (parse_units(state, argument) != 0) {
            fprintf(stderr,
                    "mbsec scan: --units: unit ids 0..255 as a list of ids and ranges "
                    "(1-247, 5, 1-10,20), got '%s'\n",
                    argument);
            return -1;
        }
        state->units_given = 1;
        return 0;
    }
    if (strcmp(argument, "fc3") == 0)
        state->probe_device_id = 0;
    else if (strcmp(argument, "fc43") == 0)
        state->probe_device_id = 1;
    else {
        fprintf(stderr, "mbsec scan: --probe: fc3 or fc43, got '%s'\n", argument);
        return -1;
    }
    return 0;
}

/* What one unit said. */
struct finding {
    int result; /* of the probe */
    char answer[96];
    char vendor[64], product[64], revision[64];
    int identified;
};

static void copy_object(char *to, size_t capacity, const struct mb_device_object *object) {
    size_t length = object->length < capacity - 1 ? object->length : capacity - 1;
    for (size_t i = 0; i < length; i++)
        to[i] = object->value[i] >= 0x20 && object->value[i] < 0x7F ? (char)object->value[i] : '.';
    to[length] = '\0';
}

static void take_identification(struct finding *finding, const struct mb_reply *reply) {
    size_t offset = 0;
    struct mb_device_object object;
    while (mb_device_objects_next(&reply->response, &offset, &object) == 1) {
        if (object.id == MB_OBJECT_VENDOR_NAME)
            copy_object(finding->vendor, sizeof finding->vendor, &object);
        else if (object.id == MB_OBJECT_PRODUCT_CODE)
            copy_object(finding->product, sizeof finding->product, &object);
        else if (object.id == MB_OBJECT_MAJOR_MINOR_REVISION)
            copy_object(finding->revision, sizeof finding->revision, &object);
    }
    finding->identified = 1;
}

/* A probe's outcome. */
enum verdict {
    PRESENT,
    ABSENT, /* silence, a closed connection, or a gateway's 0A/0B */
    FATAL,  /* cannot go on: no connection can be made */
};

static enum verdict judge(struct mb_client *client, int result, struct finding *finding) {
    finding->result = result;
    if (result == 0) {
        snprintf(finding->answer, sizeof finding->answer, "ok");
        return PRESENT;
    }
    if (result == MB_EX_GATEWAY_PATH_UNAVAILABLE || result == MB_EX_GATEWAY_TARGET_FAILED)
        return ABSENT;
    if (result > 0) {
        snprintf(finding->answer, sizeof finding->answer, "exception %02X %s", (unsigned)result,
                 mb_exception_name((uint8_t)result));
        return PRESENT;
    }
    switch (result) {
    case MB_ETIMEDOUT:
    case MB_ECLOSED:
    case MB_EIO:
        return ABSENT;
    case MB_ECONNECT:
    case MB_EADDRESS:
    case MB_ENOMEM:
    case MB_ESYSTEM:
        return FATAL;
    default:
        /* Something answered, if not well: worth listing. */
        snprintf(finding->answer, sizeof finding->answer, "bad response: %s",
                 mb_client_error_detail(client)[0] ? mb_client_error_detail(client)
                                                   : mb_strerror(result));
        return PRESENT;
    }
}

static enum verdict probe(struct mb_client *client, uint8_t unit, int probe_device_id,
                          struct finding *finding) {
    memset(finding, 0, sizeof *finding);
    struct mb_reply reply;
    if (probe_device_id) {
        int result = mb_read_device_id(client, unit, MB_DEVICE_ID_BASIC, 0, &reply);
        enum verdict verdict = judge(client, result, finding);
        if (result == 0)
            take_identification(finding, &reply);
        return verdict;
    }
    uint16_t value;
    enum verdict verdict =
        judge(client, mb_read_holding_registers(client, unit, 0, 1, &value), finding);
    if (verdict == PRESENT && mb_read_device_id(client, unit, MB_DEVICE_ID_BASIC, 0, &reply) == 0)
        take_identification(finding, &reply);
    return verdict;
}

static void print_finding(const struct cli_options *options, uint8_t unit,
                          const struct finding *finding) {
    if (options->format == CLI_JSON) {
        struct cli_options for_unit = *options;
        for_unit.unit = unit;
        cli_json_open(stdout, &for_unit);
        fputs(",\"answer\":", stdout);
        json_write_string(stdout, finding->answer, strlen(finding->answer));
        if (finding->result > 0)
            printf(",\"exception\":%d", finding->result);
        if (finding->identified) {
            fputs(",\"identification\":{\"VendorName\":", stdout);
            json_write_string(stdout, finding->vendor, strlen(finding->vendor));
            fputs(",\"ProductCode\":", stdout);
            json_write_string(stdout, finding->product, strlen(finding->product));
            fputs(",\"MajorMinorRevision\":", stdout);
            json_write_string(stdout, finding->revision, strlen(finding->revision));
            fputc('}', stdout);
        }
        fputs("}\n", stdout);
    } else if (finding->identified) {
        printf("%-4u  %-32s  %s %s %s\n", unit, finding->answer, finding->vendor, finding->product,
               finding->revision);
    } else {
        printf("%-4u  %-32s  -\n", unit, finding->answer);
    }
    fflush(stdout);
}

static int scan(const struct cli_options *options, const struct scan_state *state) {
    struct mb_client *client;
    int status = cli_connect(options, 1, &client);
    if (status != EXIT_STATUS_OK)
        return status;
    if (options->format == CLI_HUMAN) {
        printf("%-4s  %-32s  %s\n", "unit", "answer", "identification");
        fflush(stdout);
    }
    size_t tried = 0, answered = 0;
    for (int unit = 0; unit < 256; unit++) {
        if (!state->wanted[unit])
            continue;
        tried++;
        struct finding finding;
        enum verdict verdict = probe(client, (uint8_t)unit, state->probe_device_id, &finding);
        if (verdict == FATAL) {
            struct cli_options for_unit = *options;
            for_unit.unit = (uint8_t)unit;
            status = cli_report_failure(&for_unit, client, finding.result, NULL);
            mb_client_close(client);
            return status;
        }
        if (verdict == PRESENT) {
            answered++;
            print_finding(options, (uint8_t)unit, &finding);
        }
    }
    mb_client_close(client);
    if (options->format == CLI_HUMAN)
        printf("%zu of %zu unit%s answered\n", answered, tried, tried == 1 ? "" : "s");
    return answered > 0 ? EXIT_STATUS_OK : EXIT_STATUS_FAILURE;
}

int cmd_scan(int argc, char **argv) {
    static const struct cli_flag flags[] = {
        {"units", 1, FLAG_UNITS},
        {"probe", 1, FLAG_PROBE},
        {NULL, 0, 0},
    };
    struct scan_state state = {0};
    const struct cli_command command = {
        .name = "scan",
        .help = help,
        .accepts = CLI_NO_UNIT,
        .flags = flags,
        .take_flag = take_flag,
        .state = &state,
        .default_timeout_ms = DEFAULT_SCAN_TIMEOUT_MS,
    };
    struct cli_options options;
    char **positional;
    int count, status;
    if (!cli_begin(&command, argc, argv, &options, &positional, &count, &status))
        return status;
    if (!state.units_given)
        for (int unit = 1; unit <= 247; unit++)
            state.wanted[unit] = 1;
    if (options.serial) {
        /* On a serial line 0 is the broadcast, which nobody answers, and 248..255 are
         * reserved: no device can be there. */
        state.wanted[0] = 0;
        for (int unit = 248; unit <= 255; unit++)
            state.wanted[unit] = 0;
    }
    if (count > 1)
        status = cli_usage_error(&options, "unexpected argument '%s'", positional[1]);
    else
        status = scan(&options, &state);
    free(positional);
    return status;
}
