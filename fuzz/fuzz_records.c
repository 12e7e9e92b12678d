/* SPDX-License-Identifier: MIT */
/*
 * The audit-record reader (src/app/policy/records.c), three ways:
 *
 *  - the input as one line to records_parse_line(), in a heap copy of exactly its size: the
 *    kind is one of the five; a malformed or unbuildable line says why in printable text; a
 *    request has a PDU of 1..253 bytes starting with a function code 1..127, which decodes
 *    when it was rebuilt from fields, a role that is a C string within its buffer, an address
 *    of the family its length says; the same line with a CR after it reads the same;
 *  - the input as a whole file to records_read() (through a memory file): it returns 0 or -1
 *    with one line of error; every line is counted exactly once (requests, other types,
 *    malformed, not rebuildable, too long, blank), every request is visited once, in order,
 *    with the properties above and an origin naming its line;
 *  - the input as a request PDU: when it decodes, a record is written from it as the gateway
 *    writes one (the fields of src/app/gateway/watch.c put_request(), through the one JSON
 *    builder) and read back: the same PDU (FC 8: its sub-function with data 0x0000; writes of
 *    more than 64 values: the values shown, zeros after, and values_partial), the same unit,
 *    peer and time, or "not rebuildable" for the function codes whose record does not hold
 *    the request (FC 20, 21, 43, user-defined).
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/mman.h>
#include <unistd.h>

#include "app/common/json.h"
#include "app/policy/records.h"
#include "fuzz.h"
#include "mbsec/pdu.h"

static int printable_reason(const char *reason) {
    return reason != NULL && reason[0] != '\0' && fuzz_printable(reason, 400);
}

/* What every request the reader hands out promises. */
static void check_request(const uint8_t *pdu, size_t pdu_length, int rebuilt) {
    FUZZ_CHECK(pdu_length >= 1 && pdu_length <= MB_PDU_MAX);
    FUZZ_CHECK(pdu[0] >= 1 && pdu[0] <= 127);
    struct mb_request request;
    if (rebuilt)
        FUZZ_CHECK(mb_request_decode(pdu, pdu_length, &request) == 0);
}

static void check_identity(int has_role, const char *role, size_t role_capacity,
                           const struct sockaddr_storage *address, socklen_t address_length) {
    if (has_role) {
        FUZZ_CHECK(memchr(role, '\0', role_capacity) != NULL);
        FUZZ_CHECK(role[0] != '\0');
    }
    FUZZ_CHECK(address_length == 0 ||
               (address_length == sizeof(struct sockaddr_in) && address->ss_family == AF_INET) ||
               (address_length == sizeof(struct sockaddr_in6) && address->ss_family == AF_INET6));
}

static struct records_line line, again;

static int check_line(const uint8_t *data, size_t size) {
    uint8_t *copy = fuzz_copy(data, size);
    int kind = records_parse_line(copy, size, &line);
    FUZZ_CHECK(kind >= RECORDS_BLANK && kind <= RECORDS_REQUEST);
    if (kind == RECORDS_MALFORMED || kind == RECORDS_NOT_REBUILDABLE)
        FUZZ_CHECK(printable_reason(line.reason));
    if (kind == RECORDS_OTHER_TYPE || kind == RECORDS_REQUEST || kind == RECORDS_NOT_REBUILDABLE)
        FUZZ_CHECK(line.record == 1);
    if (kind == RECORDS_REQUEST) {
        check_request(line.pdu, line.pdu_length, !line.from_pdu_field);
        check_identity(line.has_role, line.role, sizeof line.role, &line.address,
                       line.address_length);
        FUZZ_CHECK(!line.values_partial || !line.from_pdu_field);
    }
    free(copy);

    /* A CR before the newline is whitespace: the same line. */
    uint8_t *crlf = fuzz_buffer(size + 1);
    if (size > 0)
        memcpy(crlf, data, size);
    crlf[size] = '\r';
    int kind_crlf = records_parse_line(crlf, size + 1, &again);
    free(crlf);
    FUZZ_CHECK(kind_crlf == kind);
    if (kind == RECORDS_REQUEST) {
        FUZZ_CHECK(again.pdu_length == line.pdu_length);
        FUZZ_CHECK(memcmp(again.pdu, line.pdu, line.pdu_length) == 0);
        FUZZ_CHECK(again.unit == line.unit && again.time_us == line.time_us);
        FUZZ_CHECK(again.values_partial == line.values_partial);
    }
    return kind;
}

/* ---- the whole file ---- */

struct visits {
    uint64_t count;
    uint64_t partial;
    char last_origin[600];
};

static int visit(void *data, const struct observed *request) {
    struct visits *visits = data;
    visits->count++;
    visits->partial += request->values_partial != 0;
    check_request(request->pdu, request->pdu_length, 0);
    check_identity(request->role != NULL, request->role ? request->role : "", 256,
                   &request->address, request->address_length);
    FUZZ_CHECK(request->origin != NULL);
    /* Origins name lines in increasing order. */
    FUZZ_CHECK(strncmp(request->origin, "/proc/self/fd/", 14) == 0);
    snprintf(visits->last_origin, sizeof visits->last_origin, "%s", request->origin);
    return 0;
}

static const char *memory_file(void) {
    static char path[64];
    static int fd = -1;
    if (fd < 0) {
        fd = memfd_create("fuzz-records.jsonl", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    return path;
}

static void check_file(const uint8_t *data, size_t size) {
    const char *path = memory_file();
    int fd = atoi(path + strlen("/proc/self/fd/"));
    size_t written = 0;
    while (written < size) {
        ssize_t count = pwrite(fd, data + written, size - written, (off_t)written);
        FUZZ_CHECK(count > 0);
        written += (size_t)count;
    }
    struct records_stats stats;
    struct visits visits = {0};
    char error[512];
    memset(error, 'x', sizeof error);
    int rc = records_read(path, visit, &visits, &stats, error, sizeof error);
    FUZZ_CHECK(rc == 0 || rc == -1);
    FUZZ_CHECK(stats.bytes <= size);
    FUZZ_CHECK(stats.requests == visits.count);
    FUZZ_CHECK(stats.values_partial == visits.partial);
    FUZZ_CHECK(stats.requests + stats.skipped_types + stats.malformed + stats.not_rebuildable +
                   stats.too_long + stats.blank ==
               stats.lines);
    FUZZ_CHECK((stats.first_bad_line != 0) == (stats.malformed != 0));
    FUZZ_CHECK(stats.first_bad_line == 0 || printable_reason(stats.first_bad_reason));
    if (rc == -1) {
        FUZZ_CHECK(fuzz_one_line(error, sizeof error));
        FUZZ_CHECK(visits.count == 0);
        /* Gzip is recognised by its magic; any other refusal has seen no record, in at most
         * RECORDS_PROBE_LINES lines that are not blank. */
        int gzip = size >= 2 && data[0] == 0x1f && data[1] == 0x8b;
        FUZZ_CHECK(stats.requests + stats.skipped_types + stats.not_rebuildable == 0);
        FUZZ_CHECK(gzip || stats.lines - stats.blank <= RECORDS_PROBE_LINES);
    } else {
        FUZZ_CHECK(stats.bytes == size);
        /* Lines: every newline, and a last line without one. */
        uint64_t newlines = 0;
        for (size_t i = 0; i < size; i++)
            newlines += data[i] == '\n';
        FUZZ_CHECK(stats.lines == newlines + (size > 0 && data[size - 1] != '\n'));
    }
}

/* ---- PDU -> record -> PDU ---- */

/* The values of a write as watch.c's put_values() shows them: the first 64, then the count of
 * the rest. */
static void put_values(struct json *json, const uint8_t *values, uint16_t count, int bits) {
    char text[64 * 7 + 4];
    size_t used = 0;
    text[used++] = '[';
    uint16_t shown = count < 64 ? count : 64;
    for (uint16_t i = 0; i < shown; i++) {
        unsigned value = bits ? (values[i / 8] >> (i % 8)) & 1u
                              : (unsigned)(values[2 * i] << 8 | values[2 * i + 1]);
        used += (size_t)snprintf(text + used, sizeof text - used, "%s%u", i ? "," : "", value);
    }
    snprintf(text + used, sizeof text - used, "]");
    json_raw(json, "values", text);
    if (count > shown)
        json_uint(json, "values_not_shown", (uint64_t)(count - shown));
}

/* The request's fields as watch.c's put_request() writes them. */
static void put_request(struct json *json, uint8_t unit, const struct mb_request *request) {
    json_uint(json, "unit", unit);
    json_uint(json, "function", request->function);
    json_string(json, "function_name", mb_function_name(request->function));
    switch (request->function) {
    case 1:
    case 2:
    case 3:
    case 4:
        json_uint(json, "address", request->read.address);
        json_uint(json, "quantity", request->read.quantity);
        break;
    case 5:
        json_uint(json, "address", request->write_single.address);
        json_raw(json, "values", request->write_single.value == MB_COIL_ON ? "[1]" : "[0]");
        break;
    case 6: {
        char text[16];
        snprintf(text, sizeof text, "[%u]", request->write_single.value);
        json_uint(json, "address", request->write_single.address);
        json_raw(json, "values", text);
        break;
    }
    case 15:
    case 16:
        json_uint(json, "address", request->write_multiple.address);
        json_uint(json, "quantity", request->write_multiple.quantity);
        put_values(json, request->write_multiple.values, request->write_multiple.quantity,
                   request->function == 15);
        break;
    case 22:
        json_uint(json, "address", request->mask_write.address);
        json_uint(json, "and_mask", request->mask_write.and_mask);
        json_uint(json, "or_mask", request->mask_write.or_mask);
        break;
    case 23:
        json_uint(json, "address", request->read_write.write_address);
        json_uint(json, "quantity", request->read_write.write_quantity);
        put_values(json, request->read_write.values, request->read_write.write_quantity, 0);
        json_uint(json, "read_address", request->read_write.read_address);
        json_uint(json, "read_quantity", request->read_write.read_quantity);
        break;
    case 8:
        json_uint(json, "sub_function", request->diagnostics.sub_function);
        break;
    case 24:
        json_uint(json, "address", request->fifo.address);
        break;
    case 20:
    case 21:
        json_uint(json, "records", request->file.count);
        break;
    default:
        break;
    }
}

/* How many bytes of a rebuilt write are the values shown: the header and the first 64. */
static size_t shown_bytes(const struct mb_request *request) {
    if (request->function == 15)
        return 6 + (request->write_multiple.quantity > 64 ? 8 : 0);
    if (request->function == 16)
        return 6 + 2 * 64;
    return 10 + 2 * 64; /* 23 */
}

static void check_round_trip(const uint8_t *data, size_t size) {
    if (size < 4 || size - 3 > MB_PDU_MAX)
        return;
    /* The first three bytes: unit, a peer's family and port; the rest is the PDU. */
    uint8_t unit = data[0];
    int v6 = data[1] & 1;
    uint16_t port = (uint16_t)(data[1] << 8 | data[2]);
    const uint8_t *pdu = data + 3;
    size_t pdu_length = size - 3;
    struct mb_request request;
    if (mb_request_decode(pdu, pdu_length, &request) != 0)
        return;
    char peer[80];
    uint8_t host[16];
    for (size_t i = 0; i < sizeof host; i++)
        host[i] = pdu[i % pdu_length];
    char text[INET6_ADDRSTRLEN];
    FUZZ_CHECK(inet_ntop(v6 ? AF_INET6 : AF_INET, host, text, sizeof text) != NULL);
    snprintf(peer, sizeof peer, v6 ? "[%s]:%u" : "%s:%u", text, port);

    struct json json;
    json_begin(&json);
    json_string(&json, "time", "2026-11-21T14:47:17.686Z");
    json_string(&json, "type", "write");
    json_uint(&json, "connection", 4);
    json_string(&json, "peer", peer);
    json_string(&json, "transport", "tls");
    json_string(&json, "role", "engineer");
    json_string(&json, "subject", "/CN=engineer");
    put_request(&json, unit, &request);
    json_string(&json, "rule", "r");
    json_string(&json, "backend", "b");
    json_uint(&json, "device_unit", 1);
    json_string(&json, "outcome", "answered");
    json_uint(&json, "latency_us", 155);
    const char *record = json_end(&json);
    FUZZ_CHECK(!json.truncated);

    uint8_t *copy = fuzz_copy(record, json.length);
    int kind = records_parse_line(copy, json.length, &line);
    free(copy);
    uint8_t function = pdu[0];
    if (function == 20 || function == 21 || function == 43 ||
        mb_function_is_user_defined(function)) {
        FUZZ_CHECK(kind == RECORDS_NOT_REBUILDABLE);
        return;
    }
    FUZZ_CHECK(kind == RECORDS_REQUEST);
    FUZZ_CHECK(line.unit == unit && line.tls == 1 && line.has_role &&
               strcmp(line.role, "engineer") == 0);
    FUZZ_CHECK(line.time_us == 1795272437686000LL);
    FUZZ_CHECK(line.address_length ==
               (v6 ? sizeof(struct sockaddr_in6) : sizeof(struct sockaddr_in)));
    if (v6) {
        const struct sockaddr_in6 *in6 = (const struct sockaddr_in6 *)&line.address;
        FUZZ_CHECK(memcmp(&in6->sin6_addr, host, 16) == 0 && ntohs(in6->sin6_port) == port);
    } else {
        const struct sockaddr_in *in4 = (const struct sockaddr_in *)&line.address;
        FUZZ_CHECK(memcmp(&in4->sin_addr, host, 4) == 0 && ntohs(in4->sin_port) == port);
    }
    if (function == 8) {
        FUZZ_CHECK(line.pdu_length == 5);
        FUZZ_CHECK(memcmp(line.pdu, pdu, 3) == 0 && line.pdu[3] == 0 && line.pdu[4] == 0);
        return;
    }
    FUZZ_CHECK(line.pdu_length == pdu_length);
    uint16_t quantity = function == 15 || function == 16 ? request.write_multiple.quantity
                        : function == 23                 ? request.read_write.write_quantity
                                                         : 0;
    if (quantity <= 64) {
        FUZZ_CHECK(!line.values_partial);
        FUZZ_CHECK(memcmp(line.pdu, pdu, pdu_length) == 0);
        return;
    }
    FUZZ_CHECK(line.values_partial);
    size_t shown = shown_bytes(&request);
    FUZZ_CHECK(memcmp(line.pdu, pdu, shown) == 0);
    for (size_t i = shown; i < pdu_length; i++)
        FUZZ_CHECK(line.pdu[i] == 0);
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    check_line(data, size);
    check_file(data, size);
    check_round_trip(data, size);
    return 0;
}
