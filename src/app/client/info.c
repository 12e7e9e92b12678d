/* SPDX-License-Identifier: MIT */
/*
 * mbsec info: what a device says about itself, FC 43/14 (read device identification, all the
 * transactions the device needs) and FC 17 (report server id). Many Modbus/TCP devices answer
 * only one of the two (FC 17 is a serial-line function), so an exception from one is shown and
 * the other still asked; the command fails only when neither answers.
 */
#include <stdlib.h>
#include <string.h>

#include "app/client/client.h"
#include "app/commands.h"

static const char help[] =
    "usage: mbsec info [options] TARGET\n"
    "\n"
    "Asks a device for its identification (FC 43/14, read device identification, following\n"
    "\"more follows\" over as many requests as the device needs) and its server id (FC 17,\n"
    "report server id, shown in hex and as text). When one of them is answered with an\n"
    "exception, the exception is shown and the other is still asked; the exit status is 5\n"
    "only when both are.\n"
    "\n" CLI_HELP_TARGET "\n"
    "Options:\n"
    "  --level LEVEL      basic (default: VendorName, ProductCode, MajorMinorRevision),\n"
    "                     regular (adds VendorUrl, ProductName, ModelName,\n"
    "                     UserApplicationName) or extended (adds private objects "
    "0x80..0xFF)\n" CLI_HELP_CONNECTION "  -h, --help         this text\n"
    "\n"
    "Examples:\n"
    "  mbsec info 192.0.2.10\n"
    "  mbsec info 192.0.2.10:5020 --level extended --unit 3 --json\n"
    "\n" CLI_HELP_EXIT;

enum { FLAG_LEVEL = 1 };

struct info_state {
    uint8_t read_code;
};

static int take_flag(void *data, int id, const char *argument) {
    struct info_state *state = data;
    (void)id;
    if (strcmp(argument, "basic") == 0)
        state->read_code = MB_DEVICE_ID_BASIC;
    else if (strcmp(argument, "regular") == 0)
        state->read_code = MB_DEVICE_ID_REGULAR;
    else if (strcmp(argument, "extended") == 0)
        state->read_code = MB_DEVICE_ID_EXTENDED;
    else {
        fprintf(stderr, "mbsec info: --level: basic, regular or extended, got '%s'\n", argument);
        return -1;
    }
    return 0;
}

static const char *const object_names[] = {
    "VendorName",  "ProductCode", "MajorMinorRevision",  "VendorUrl",
    "ProductName", "ModelName",   "UserApplicationName",
};

/* "VendorName", or "0x80" for objects without a name in the spec. */
static const char *object_name(uint8_t id, char *buffer, size_t capacity) {
    if (id < sizeof object_names / sizeof object_names[0])
        return object_names[id];
    snprintf(buffer, capacity, "0x%02X", id);
    return buffer;
}

/* The objects as they arrive; a device lists each id at most once per category, but one that
 * repeats an id is shown as it answered. */
struct identification {
    struct {
        uint8_t id;
        uint8_t length;
        uint8_t value[255];
    } objects[256];
    size_t count;
    uint8_t conformity_level;
};

static void collect_object(void *data, const struct mb_device_object *object,
                           uint8_t conformity_level) {
    struct identification *identification = data;
    identification->conformity_level = conformity_level;
    if (identification->count >= sizeof identification->objects / sizeof identification->objects[0])
        return;
    size_t index = identification->count++;
    identification->objects[index].id = object->id;
    identification->objects[index].length = object->length;
    memcpy(identification->objects[index].value, object->value, object->length);
}

/* Object values are text by the spec, but nothing stops a device from sending bytes: print
 * them the way a terminal can show. */
static const char *level_name(uint8_t read_code) {
    return read_code == MB_DEVICE_ID_EXTENDED  ? "extended"
           : read_code == MB_DEVICE_ID_REGULAR ? "regular"
                                               : "basic";
}

static void print_identification_human(const struct identification *identification,
                                       uint8_t read_code, int result) {
    printf("device identification (FC 43/14, %s)", level_name(read_code));
    if (result > 0) {
        printf(": exception %02X %s\n", (unsigned)result, mb_exception_name((uint8_t)result));
        return;
    }
    printf(", conformity level 0x%02X:\n", identification->conformity_level);
    char buffer[8];
    for (size_t i = 0; i < identification->count; i++) {
        printf("  %-20s ", object_name(identification->objects[i].id, buffer, sizeof buffer));
        text_write_escaped(stdout, (const char *)identification->objects[i].value,
                           identification->objects[i].length);
        fputc('\n', stdout);
    }
}

static void print_server_id_human(const struct mb_reply *reply, int result) {
    printf("server id (FC 17)");
    if (result > 0) {
        printf(": exception %02X %s\n", (unsigned)result, mb_exception_name((uint8_t)result));
        return;
    }
    const uint8_t *data = reply->response.server_id.data;
    size_t length = reply->response.server_id.byte_count;
    printf(": ");
    cli_hex_bytes(stdout, data, length, ' ');
    printf("  \"");
    cli_printable(stdout, data, length);
    printf("\"\n");
}

static void json_exception(int result) {
    printf("{\"exception\":%d,\"error\":\"exception %02X %s\"}", result, (unsigned)result,
           mb_exception_name((uint8_t)result));
}

static void print_json(const struct cli_options *options,
                       const struct identification *identification, uint8_t read_code,
                       int identification_result, const struct mb_reply *reply,
                       int server_id_result, int exit_status) {
    cli_json_open(stdout, options);
    printf(",\"level\":\"%s\"", level_name(read_code));
    if (identification_result > 0) {
        fputs(",\"identification_error\":", stdout);
        json_exception(identification_result);
    } else {
        printf(",\"identification\":{\"conformity_level\":%u,\"objects\":{",
               identification->conformity_level);
        char buffer[8];
        for (size_t i = 0; i < identification->count; i++) {
            const char *name = object_name(identification->objects[i].id, buffer, sizeof buffer);
            if (i > 0)
                fputc(',', stdout);
            json_write_string(stdout, name, strlen(name));
            fputc(':', stdout);
            json_write_string(stdout, (const char *)identification->objects[i].value,
                              identification->objects[i].length);
        }
        fputs("}}", stdout);
    }
    if (server_id_result > 0) {
        fputs(",\"server_id_error\":", stdout);
        json_exception(server_id_result);
    } else {
        const uint8_t *data = reply->response.server_id.data;
        size_t length = reply->response.server_id.byte_count;
        fputs(",\"server_id\":{\"hex\":\"", stdout);
        cli_hex_bytes(stdout, data, length, '\0');
        fputs("\",\"text\":", stdout);
        json_write_string(stdout, (const char *)data, length);
        fputc('}', stdout);
    }
    if (exit_status != EXIT_STATUS_OK)
        printf(",\"error\":\"both requests were answered with exceptions\",\"exit_code\":%d",
               exit_status);
    fputs("}\n", stdout);
}

static int ask(const struct cli_options *options, uint8_t read_code) {
    struct mb_client *client;
    int status = cli_connect(options, 0, &client);
    if (status != EXIT_STATUS_OK)
        return status;
    struct identification *identification = calloc(1, sizeof *identification);
    struct mb_reply *reply = calloc(1, sizeof *reply);
    if (identification == NULL || reply == NULL) {
        status = cli_report_message(options, EXIT_STATUS_FAILURE, 0, "out of memory");
        goto out;
    }
    int identification_result = mb_read_device_identification(client, options->unit, read_code,
                                                              collect_object, identification);
    if (identification_result < 0) {
        struct cli_request request = {.function = MB_FC_ENCAPSULATED_INTERFACE};
        status = cli_report_failure(options, client, identification_result, &request);
        goto out;
    }
    int server_id_result = mb_report_server_id(client, options->unit, reply);
    if (server_id_result < 0) {
        struct cli_request request = {.function = MB_FC_REPORT_SERVER_ID};
        status = cli_report_failure(options, client, server_id_result, &request);
        goto out;
    }
    status =
        identification_result > 0 && server_id_result > 0 ? EXIT_STATUS_EXCEPTION : EXIT_STATUS_OK;
    if (options->format == CLI_JSON) {
        print_json(options, identification, read_code, identification_result, reply,
                   server_id_result, status);
    } else {
        print_identification_human(identification, read_code, identification_result);
        print_server_id_human(reply, server_id_result);
    }
    if (status != EXIT_STATUS_OK)
        cli_error(options, "both FC 43/14 and FC 17 were answered with exceptions (unit %u)",
                  options->unit);
out:
    free(identification);
    free(reply);
    mb_client_close(client);
    return status;
}

int cmd_info(int argc, char **argv) {
    static const struct cli_flag flags[] = {{"level", 1, FLAG_LEVEL}, {NULL, 0, 0}};
    struct info_state state = {.read_code = MB_DEVICE_ID_BASIC};
    const struct cli_command command = {
        .name = "info",
        .help = help,
        .flags = flags,
        .take_flag = take_flag,
        .state = &state,
    };
    struct cli_options options;
    char **positional;
    int count, status;
    if (!cli_begin(&command, argc, argv, &options, &positional, &count, &status))
        return status;
    if (count > 1)
        status = cli_usage_error(&options, "unexpected argument '%s'", positional[1]);
    else
        status = ask(&options, state.read_code);
    free(positional);
    return status;
}
