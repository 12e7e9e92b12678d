/* SPDX-License-Identifier: MIT */
#include "app/config/backends.h"

#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "mbsec/error.h"
#include "mbsec/serial.h"

#define DEFAULT_PORT "502"
#define MAX_NAME 64
#define MAX_SERVER_NAME 253
#define NOT_ROUTED 0xFFFF

static const char *const backend_keys[] = {
    "name",   "address",    "connections", "timeout",       "in_flight",    "queue",
    "share",  "units",      "tls",         "serial",        "framing",      "baud",
    "parity", "data_bits",  "stop_bits",   "rs485",         "echo",         "answer_timeout",
    "pause",  "open_pause", "retries",     "unit_failures", "unit_backoff", NULL};
/* Keys of a serial line, and of any RTU bus (serial or RTU over TCP). */
static const char *const line_keys[] = {"baud",  "parity", "data_bits", "stop_bits",
                                        "rs485", "echo",   NULL};
static const char *const bus_keys[] = {"answer_timeout", "pause",        "open_pause", "retries",
                                       "unit_failures",  "unit_backoff", NULL};
static const char *const tcp_only_keys[] = {"connections", "in_flight", "tls", NULL};
static const char *const tls_keys[] = {"certificate", "key", "ca", "pin", "server_name", NULL};

static const char front_expected[] = "a front unit id 0..255";
static const char device_expected[] = "a device unit id 0..255";
static const char units_expected[] = "a unit id 0..255 or a range such as 10-19";

/* The backends being read, swapped into the configuration only when all of them are good. */
struct reading {
    const struct yaml_reader *reader;
    struct config_backend *backends;
    size_t backend_count;
    struct mb_gateway_route routes[256];
    size_t route_count;
    uint16_t routed_to[256];           /* the backend of each front unit, or NOT_ROUTED */
    const yaml_node_t *routed_at[256]; /* where that route was given */
    uint64_t slots;
};

static int out_of_memory(const struct yaml_reader *reader) {
    if (reader->error != NULL && reader->error_capacity > 0)
        snprintf(reader->error, reader->error_capacity, "%s: out of memory", reader->file);
    return MB_ENOMEM;
}

static char *copy_text(const char *text, size_t length) {
    char *copy = malloc(length + 1);
    if (copy != NULL) {
        memcpy(copy, text, length);
        copy[length] = '\0';
    }
    return copy;
}

void config_backend_free(struct config_backend *backend) {
    free(backend->name);
    free(backend->address);
    free(backend->tls_certificate);
    free(backend->tls_key);
    free(backend->tls_ca);
    free(backend->tls_pin);
    free(backend->tls_server_name);
    free(backend->serial);
    memset(backend, 0, sizeof *backend);
}

int config_backend_copy(struct config_backend *target, const struct config_backend *source) {
    *target = *source;
    char **fields[] = {
        &target->name,   &target->address, &target->tls_certificate, &target->tls_key,
        &target->tls_ca, &target->tls_pin, &target->tls_server_name, &target->serial};
    const char *texts[] = {
        source->name,   source->address, source->tls_certificate, source->tls_key,
        source->tls_ca, source->tls_pin, source->tls_server_name, source->serial};
    size_t count = sizeof fields / sizeof fields[0];
    for (size_t i = 0; i < count; i++)
        *fields[i] = NULL;
    for (size_t i = 0; i < count; i++) {
        if (texts[i] != NULL && (*fields[i] = copy_text(texts[i], strlen(texts[i]))) == NULL) {
            config_backend_free(target);
            return MB_ENOMEM;
        }
    }
    return 0;
}

/* ---- one backend ---- */

static int name_character(char c) {
    return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') || c == '-' ||
           c == '_' || c == '.';
}

static int parse_name(struct reading *reading, const yaml_node_t *node, const char *path,
                      struct config_backend *backend) {
    const struct yaml_reader *reader = reading->reader;
    const char *text;
    size_t length;
    int status = yaml_string(reader, node, path, MAX_NAME, &text, &length);
    if (status != 0)
        return status;
    if (length == 0)
        return yaml_error(reader, node, "%s: the name is empty", path);
    for (size_t i = 0; i < length; i++)
        if (!name_character(text[i]))
            return yaml_error(reader, node,
                              "%s: \"%s\" is not a backend name: use letters, digits, '-', "
                              "'_' and '.'",
                              path, text);
    for (size_t i = 0; i < reading->backend_count; i++)
        if (strcmp(reading->backends[i].name, text) == 0)
            return yaml_error(reader, node,
                              "%s: %s is already the name of backends[%zu] on line %zu", path, text,
                              i, reading->backends[i].line);
    free(backend->name);
    backend->name = copy_text(text, length);
    return backend->name == NULL ? out_of_memory(reader) : 0;
}

/* "host:port", or a host alone for port 502; names are resolved when the gateway starts. */
static int parse_address(struct reading *reading, const yaml_node_t *node, const char *path,
                         struct config_backend *backend) {
    const struct yaml_reader *reader = reading->reader;
    const char *text, *problem;
    size_t length;
    char address[272];
    int status = yaml_string(reader, node, path, 255, &text, &length);
    if (status != 0)
        return status;
    int bracketed = length > 2 && text[0] == '[' && text[length - 1] == ']';
    if (strchr(text, ':') == NULL || bracketed)
        snprintf(address, sizeof address, "%s:" DEFAULT_PORT, text);
    else
        snprintf(address, sizeof address, "%s", text);
    if (length == 0 || (address[0] == ':' && strchr(address + 1, ':') == NULL))
        return yaml_error(reader, node,
                          "%s: the host is missing: the device's address, such as "
                          "192.0.2.10:502 or plc1.example",
                          path);
    if ((problem = address_problem(address)) != NULL)
        return yaml_error(reader, node, "%s: %s is not a device's address: %s", path, text,
                          problem);
    const char *port = strrchr(address, ':') + 1;
    if (strspn(port, "0") == strlen(port))
        return yaml_error(reader, node, "%s: %s: port 0 is not a device's port", path, text);
    free(backend->address);
    backend->address = copy_text(address, strlen(address));
    return backend->address == NULL ? out_of_memory(reader) : 0;
}

static int parse_count(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                       uint32_t maximum, uint32_t *value) {
    uint64_t number;
    int status = yaml_integer(reader, node, path, 1, maximum, NULL, &number);
    if (status == 0)
        *value = (uint32_t)number;
    return status;
}

static int add_route(struct reading *reading, const yaml_node_t *node, const char *path,
                     uint64_t front, uint64_t device, size_t backend) {
    const struct yaml_reader *reader = reading->reader;
    if (reading->routed_to[front] != NOT_ROUTED) {
        size_t earlier = reading->routed_to[front];
        size_t line = reading->routed_at[front]->start_mark.line + 1;
        if (earlier == backend)
            return yaml_error(reader, node, "%s: front unit %u is already routed on line %zu", path,
                              (unsigned)front, line);
        return yaml_error(reader, node,
                          "%s: front unit %u is already routed to backend %s on line %zu", path,
                          (unsigned)front, reading->backends[earlier].name, line);
    }
    reading->routed_to[front] = (uint16_t)backend;
    reading->routed_at[front] = node;
    struct mb_gateway_route *route = &reading->routes[reading->route_count++];
    route->front_unit = (uint8_t)front;
    route->device_unit = (uint8_t)device;
    route->backend = (uint16_t)backend;
    return 0;
}

/* One item of a list of units: an id or a range "10-19", each front unit routed to the same
 * unit id of the device. */
static int parse_unit_item(struct reading *reading, const yaml_node_t *node, const char *path,
                           size_t backend) {
    const struct yaml_reader *reader = reading->reader;
    uint64_t first, last;
    if (node->type != YAML_SCALAR_NODE || yaml_is_null(node) ||
        node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE)
        return yaml_integer(reader, node, path, 0, 255, units_expected, &first);
    const char *text = (const char *)node->data.scalar.value;
    size_t length = node->data.scalar.length;
    const char *dash = length > 1 ? memchr(text + 1, '-', length - 1) : NULL;
    if (dash == NULL) {
        int status = yaml_integer(reader, node, path, 0, 255, units_expected, &first);
        if (status != 0)
            return status;
        last = first;
    } else if (integer_parse(text, (size_t)(dash - text), &first) != 0 ||
               integer_parse(dash + 1, length - (size_t)(dash - text) - 1, &last) != 0) {
        return yaml_error(reader, node, "%s: expected %s, got \"%.40s\"", path, units_expected,
                          text);
    }
    if (first > 255 || last > 255)
        return yaml_error(reader, node, "%s: %s is out of range; expected %s", path, text,
                          units_expected);
    if (first > last)
        return yaml_error(reader, node, "%s: %s ends before it starts", path, text);
    for (uint64_t unit = first; unit <= last; unit++) {
        int status = add_route(reading, node, path, unit, unit, backend);
        if (status != 0)
            return status;
    }
    return 0;
}

/* units: { FRONT: DEVICE, ... }, or a list of ids and ranges (or one of them) routed to the same
 * ids of the device. */
static int parse_units(struct reading *reading, const yaml_node_t *node, const char *path,
                       size_t backend) {
    const struct yaml_reader *reader = reading->reader;
    char item_path[96];
    int status = 0;
    if (yaml_is_null(node))
        return yaml_error(reader, node,
                          "%s: no value; give the front unit ids this device answers, as "
                          "{ 1: 1, 2: 5 } or [1, 2]",
                          path);
    if (node->type == YAML_MAPPING_NODE) {
        for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
            const yaml_node_t *key = yaml_mapping_key(reader, node, i);
            const char *key_text;
            yaml_node_t *value;
            uint64_t front, device;
            yaml_mapping_pair(reader, node, i, &key_text, &value);
            status = yaml_integer(reader, key, path, 0, 255, front_expected, &front);
            if (status != 0)
                break;
            snprintf(item_path, sizeof item_path, "%.64s.%u", path, (unsigned)front);
            status = yaml_integer(reader, value, item_path, 0, 255, device_expected, &device);
            if (status == 0)
                status = add_route(reading, key, path, front, device, backend);
        }
        return status;
    }
    if (node->type == YAML_SEQUENCE_NODE) {
        status = yaml_check_sequence(reader, node, path, 1, 256);
        for (size_t i = 0; status == 0 && i < yaml_sequence_size(node); i++) {
            snprintf(item_path, sizeof item_path, "%.64s[%zu]", path, i);
            status =
                parse_unit_item(reading, yaml_sequence_item(reader, node, i), item_path, backend);
        }
        return status;
    }
    return parse_unit_item(reading, node, path, backend);
}

/* "SHA256:" (optional) and 64 hex digits, colons allowed between them: what tls.c takes. */
static int pin_is_valid(const char *text) {
    size_t digits = 0;
    if (strncmp(text, "SHA256:", 7) == 0 || strncmp(text, "sha256:", 7) == 0)
        text += 7;
    for (; *text != '\0'; text++) {
        if (*text == ':')
            continue;
        if (strchr("0123456789abcdefABCDEF", *text) == NULL)
            return 0;
        digits++;
    }
    return digits == 64;
}

int config_tls_text(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                    const char *key, char **field) {
    const char *text;
    size_t length;
    int status = yaml_string(reader, node, path, 4095, &text, &length);
    if (status != 0)
        return status;
    if (length == 0)
        return yaml_error(reader, node, "%s: the value is empty", path);
    char *value;
    if (strcmp(key, "pin") == 0) {
        if (!pin_is_valid(text))
            return yaml_error(reader, node,
                              "%s: expected SHA256: and 64 hex digits (mbsec cert show "
                              "prints a certificate's pin), got \"%.40s\"",
                              path, text);
        value = copy_text(text, length);
    } else if (strcmp(key, "server_name") == 0) {
        if (length > MAX_SERVER_NAME || strpbrk(text, " \t\r\n/") != NULL)
            return yaml_error(reader, node,
                              "%s: expected the DNS name or IP address the device's "
                              "certificate carries",
                              path);
        value = copy_text(text, length);
    } else {
        value = yaml_path_from_file(reader, text, length);
    }
    if (value == NULL)
        return out_of_memory(reader);
    free(*field);
    *field = value;
    return 0;
}

/* tls: the gateway is the client of a Modbus/TCP Security device. */
static int parse_tls(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                     struct config_backend *backend) {
    char key_path[128];
    int status = yaml_check_mapping(reader, node, path, tls_keys);
    if (status != 0 || yaml_is_null(node))
        return status;
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, node, i, &key, &value);
        snprintf(key_path, sizeof key_path, "%s.%s", path, key);
        char **field = strcmp(key, "certificate") == 0 ? &backend->tls_certificate
                       : strcmp(key, "key") == 0       ? &backend->tls_key
                       : strcmp(key, "ca") == 0        ? &backend->tls_ca
                       : strcmp(key, "pin") == 0       ? &backend->tls_pin
                                                       : &backend->tls_server_name;
        status = config_tls_text(reader, value, key_path, key, field);
    }
    if (status != 0)
        return status;
    if (backend->tls_certificate == NULL || backend->tls_key == NULL)
        return yaml_error(reader, node,
                          "%s: a Modbus/TCP Security device authenticates the gateway by "
                          "its certificate: certificate and key are both needed (make them "
                          "with mbsec cert client)",
                          path);
    if (backend->tls_ca == NULL && backend->tls_pin == NULL)
        return yaml_error(reader, node,
                          "%s: nothing to trust the device's certificate by: give ca (the "
                          "CA that signed it) or pin (its fingerprint)",
                          path);
    return 0;
}

static int in_list(const char *const *list, const char *key) {
    for (; *list != NULL; list++)
        if (strcmp(*list, key) == 0)
            return 1;
    return 0;
}

/* serial: the path of a tty. */
static int parse_serial(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                        struct config_backend *backend) {
    const char *text;
    size_t length;
    int status = yaml_string(reader, node, path, 200, &text, &length);
    if (status != 0)
        return status;
    if (length == 0 || text[0] != '/')
        return yaml_error(reader, node,
                          "%s: expected the path of a serial line, such as /dev/ttyUSB0 or "
                          "/dev/serial/by-id/...",
                          path);
    free(backend->serial);
    backend->serial = copy_text(text, length);
    return backend->serial == NULL ? out_of_memory(reader) : 0;
}

/* One key of a serial line or an RTU bus. */
static int parse_rtu_key(const struct yaml_reader *reader, const yaml_node_t *node,
                         const char *path, const char *key, struct config_backend *backend) {
    static const char *const parities[] = {"none", "even", "odd", NULL};
    static const char *const rs485_modes[] = {"none", "kernel", "rts", NULL};
    static const char *const framings[] = {"tcp", "rtu", NULL};
    uint64_t number = 0;
    size_t choice = 0;
    int status;
    if (strcmp(key, "framing") == 0) {
        status = yaml_choice(reader, node, path, framings, &choice);
        if (status == 0 && choice == 1 && backend->link == MB_GATEWAY_LINK_TCP)
            backend->link = MB_GATEWAY_LINK_RTU_OVER_TCP;
        return status;
    }
    if (strcmp(key, "baud") == 0) {
        status = yaml_integer(reader, node, path, 50, 4000000, "a baud rate such as 9600 or 19200",
                              &number);
        backend->serial_line.baud = (uint32_t)number;
        return status;
    }
    if (strcmp(key, "parity") == 0) {
        status = yaml_choice(reader, node, path, parities, &choice);
        backend->serial_line.parity = "NEO"[choice < 3 ? choice : 1];
        return status;
    }
    if (strcmp(key, "data_bits") == 0) {
        status = yaml_integer(reader, node, path, 7, 8, "7 or 8", &number);
        backend->serial_line.data_bits = (uint8_t)number;
        return status;
    }
    if (strcmp(key, "stop_bits") == 0) {
        status = yaml_integer(reader, node, path, 1, 2, "1 or 2", &number);
        backend->serial_line.stop_bits = (uint8_t)number;
        return status;
    }
    if (strcmp(key, "rs485") == 0) {
        status = yaml_choice(reader, node, path, rs485_modes, &choice);
        backend->serial_line.rs485 = choice == 1   ? MB_RS485_KERNEL
                                     : choice == 2 ? MB_RS485_RTS
                                                   : MB_RS485_NONE;
        return status;
    }
    if (strcmp(key, "echo") == 0)
        return yaml_bool(reader, node, path, &backend->echo);
    if (strcmp(key, "answer_timeout") == 0)
        return yaml_duration(reader, node, path, &backend->answer_timeout_ms);
    if (strcmp(key, "pause") == 0)
        return yaml_duration(reader, node, path, &backend->pause_ms);
    if (strcmp(key, "open_pause") == 0)
        return yaml_duration(reader, node, path, &backend->open_pause_ms);
    if (strcmp(key, "unit_backoff") == 0)
        return yaml_duration(reader, node, path, &backend->unit_backoff_ms);
    if (strcmp(key, "retries") == 0) {
        status = yaml_integer(reader, node, path, 0, 10, "0..10", &number);
        backend->retries = (uint32_t)number;
        return status;
    }
    status = yaml_integer(reader, node, path, 1, 1000, "1..1000", &number); /* unit_failures */
    backend->unit_failures = (uint32_t)number;
    return status;
}

/* The keys that only some kinds of backend take. */
static int check_kind(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                      const struct config_backend *backend) {
    const char *kind = backend->link == MB_GATEWAY_LINK_SERIAL         ? "a serial line"
                       : backend->link == MB_GATEWAY_LINK_RTU_OVER_TCP ? "RTU over TCP"
                                                                       : "a Modbus/TCP device";
    for (size_t i = 0; i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, node, i, &key, &value);
        if (backend->link != MB_GATEWAY_LINK_SERIAL && in_list(line_keys, key))
            return yaml_error(reader, value,
                              "%s.%s: only a serial line has it, and %s is %s (serial: PATH "
                              "makes one)",
                              path, key, backend->name, kind);
        if (backend->link == MB_GATEWAY_LINK_TCP && in_list(bus_keys, key))
            return yaml_error(reader, value,
                              "%s.%s: only an RTU bus has it (serial: PATH, or framing: rtu for "
                              "RTU over TCP), and %s is %s",
                              path, key, backend->name, kind);
        if (backend->link != MB_GATEWAY_LINK_TCP && in_list(tcp_only_keys, key))
            return yaml_error(reader, value,
                              "%s.%s: %s is %s: one transaction at a time on one line, %s", path,
                              key, backend->name, kind,
                              strcmp(key, "tls") == 0 ? "and RTU has no TLS" : "so it is always 1");
    }
    return 0;
}

static int parse_backend(struct reading *reading, const yaml_node_t *node, const char *path,
                         size_t index) {
    const struct yaml_reader *reader = reading->reader;
    struct config_backend *backend = &reading->backends[index];
    char key_path[96];
    const yaml_node_t *units = NULL;
    if (node->type != YAML_MAPPING_NODE)
        return yaml_error(reader, node,
                          "%s: expected a backend: a mapping with name, address and units", path);
    memset(backend, 0, sizeof *backend);
    backend->connections = 1;
    backend->timeout_ms = 1000;
    backend->in_flight = 16;
    backend->queue = 256;
    backend->line = node->start_mark.line + 1;
    backend->column = node->start_mark.column + 1;
    int status = yaml_check_mapping(reader, node, path, backend_keys);
    for (size_t i = 0; status == 0 && i < yaml_mapping_size(node); i++) {
        const char *key;
        yaml_node_t *value;
        yaml_mapping_pair(reader, node, i, &key, &value);
        snprintf(key_path, sizeof key_path, "%s.%s", path, key);
        if (strcmp(key, "name") == 0)
            status = parse_name(reading, value, key_path, backend);
        else if (strcmp(key, "address") == 0)
            status = parse_address(reading, value, key_path, backend);
        else if (strcmp(key, "connections") == 0)
            status = parse_count(reader, value, key_path, MB_GATEWAY_MAX_CONNECTIONS,
                                 &backend->connections);
        else if (strcmp(key, "timeout") == 0)
            status = yaml_duration(reader, value, key_path, &backend->timeout_ms);
        else if (strcmp(key, "in_flight") == 0)
            status =
                parse_count(reader, value, key_path, MB_ASYNC_MAX_IN_FLIGHT, &backend->in_flight);
        else if (strcmp(key, "queue") == 0)
            status = parse_count(reader, value, key_path, MB_ASYNC_MAX_QUEUED, &backend->queue);
        else if (strcmp(key, "share") == 0)
            status = parse_count(reader, value, key_path, MB_GATEWAY_MAX_SLOTS, &backend->share);
        else if (strcmp(key, "units") == 0)
            units = value; /* after the name, which messages about routes use */
        else if (strcmp(key, "serial") == 0)
            status = parse_serial(reader, value, key_path, backend);
        else if (strcmp(key, "tls") == 0)
            status = parse_tls(reader, value, key_path, backend);
        else
            status = parse_rtu_key(reader, value, key_path, key, backend);
    }
    if (status != 0)
        return status;
    if (backend->name == NULL)
        return yaml_error(reader, node, "%s: name is missing (logs and --check use it)", path);
    if (backend->serial != NULL) {
        if (backend->address != NULL)
            return yaml_error(reader, node,
                              "%s: both serial and address: a backend is either a serial line "
                              "or a device on the network",
                              path);
        backend->link = MB_GATEWAY_LINK_SERIAL; /* framing: rtu or none: a line speaks RTU */
    }
    if (backend->address == NULL && backend->serial == NULL)
        return yaml_error(reader, node,
                          "%s: address is missing: where the device listens, such as "
                          "192.0.2.10:502 (or serial: /dev/ttyUSB0 for a serial line)",
                          path);
    status = check_kind(reader, node, path, backend);
    if (status != 0)
        return status;
    if (backend->link != MB_GATEWAY_LINK_TCP) {
        backend->connections = 1;
        backend->in_flight = 1;
        if (backend->answer_timeout_ms == 0)
            backend->answer_timeout_ms = backend->timeout_ms < 500 ? backend->timeout_ms : 500;
        if (backend->answer_timeout_ms > backend->timeout_ms)
            return yaml_error(reader, node,
                              "%s: answer_timeout (%u ms) is longer than timeout (%u ms): no "
                              "request would wait for its answer",
                              path, backend->answer_timeout_ms, backend->timeout_ms);
    }
    if (units == NULL)
        return yaml_error(reader, node,
                          "%s: units is missing: the front unit ids this device answers, as "
                          "{ 1: 1, 2: 5 } or [1, 2]",
                          path);
    snprintf(key_path, sizeof key_path, "%s.units", path);
    status = parse_units(reading, units, key_path, index);
    if (status != 0)
        return status;
    for (size_t i = 0; backend->link != MB_GATEWAY_LINK_TCP && i < reading->route_count; i++)
        if (reading->routes[i].backend == index &&
            reading->routes[i].device_unit > MB_SERIAL_ADDRESS_MAX)
            return yaml_error(reader, units,
                              "%s: device unit %u: on an RTU bus the units are 1..247 (and 0, "
                              "the broadcast); 248..255 are reserved",
                              key_path, reading->routes[i].device_unit);
    uint64_t capacity = (uint64_t)backend->connections * (backend->in_flight + backend->queue);
    if (backend->share > capacity)
        return yaml_error(reader, node,
                          "%s: share %u is more than the %llu requests the backend holds "
                          "(connections x (in_flight + queue)): one client could take it all",
                          path, backend->share, (unsigned long long)capacity);
    reading->slots += capacity;
    if (reading->slots > MB_GATEWAY_MAX_SLOTS)
        return yaml_error(reader, node,
                          "%s: the backends up to here hold %llu requests at once "
                          "(connections x (in_flight + queue)), more than the %u a gateway "
                          "allows; lower connections, in_flight or queue",
                          path, (unsigned long long)reading->slots, MB_GATEWAY_MAX_SLOTS);
    return 0;
}

int config_backends(const struct yaml_reader *reader, const yaml_node_t *node,
                    struct gateway_config *config) {
    /* "backends:" with nothing after it is the section left out. */
    if (yaml_is_null(node))
        return 0;
    /* Large (a backend per unit id at most): not on the stack. */
    struct reading *reading = calloc(1, sizeof *reading);
    struct config_backend *backends = calloc(CONFIG_MAX_BACKENDS, sizeof(struct config_backend));
    char path[32];
    int status = 0;
    if (reading == NULL || backends == NULL) {
        free(reading);
        free(backends);
        return out_of_memory(reader);
    }
    reading->reader = reader;
    reading->backends = backends;
    for (size_t unit = 0; unit < 256; unit++)
        reading->routed_to[unit] = NOT_ROUTED;
    status = yaml_check_sequence(reader, node, "backends", 1, CONFIG_MAX_BACKENDS);
    for (size_t i = 0; status == 0 && i < yaml_sequence_size(node); i++) {
        snprintf(path, sizeof path, "backends[%zu]", i);
        reading->backend_count = i;
        status = parse_backend(reading, yaml_sequence_item(reader, node, i), path, i);
        reading->backend_count = i + 1; /* so that its strings are freed on error too */
    }
    if (status == 0) {
        for (size_t i = 0; i < config->backend_count; i++)
            config_backend_free(&config->backends[i]);
        memcpy(config->backends, backends, reading->backend_count * sizeof *backends);
        config->backend_count = reading->backend_count;
        memcpy(config->routes, reading->routes, reading->route_count * sizeof reading->routes[0]);
        config->route_count = reading->route_count;
    } else {
        for (size_t i = 0; i < reading->backend_count; i++)
            config_backend_free(&backends[i]);
    }
    free(backends);
    free(reading);
    return status;
}
