/* SPDX-License-Identifier: MIT */
/*
 * Audit records back into requests. A line goes through three stages: the line reader cuts it
 * out of a bounded buffer, records_parse_line() reads its JSON object into the fields a request
 * record has, and rebuild() turns those fields into the PDU the gateway decided on. Only
 * "read" and "write" records are requests; the others are counted and left.
 *
 * Duplicate keys: a key the reader uses, given twice, makes a request record malformed. The
 * gateway never repeats one, so a repeat means the line was edited or damaged, and neither
 * "first wins" nor "last wins" would be what the gateway saw. Other keys are not tracked.
 */
#include "app/policy/records.h"

#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/common/json.h"
#include "app/policy/json_reader.h"

/* ---- the fields of a record ---- */

enum field {
    FIELD_TIME,
    FIELD_TYPE,
    FIELD_PEER,
    FIELD_TRANSPORT,
    FIELD_ROLE,
    FIELD_UNIT,
    FIELD_FUNCTION,
    FIELD_ADDRESS,
    FIELD_QUANTITY,
    FIELD_VALUES,
    FIELD_VALUES_NOT_SHOWN,
    FIELD_AND_MASK,
    FIELD_OR_MASK,
    FIELD_READ_ADDRESS,
    FIELD_READ_QUANTITY,
    FIELD_SUB_FUNCTION,
    FIELD_MALFORMED,
    FIELD_WOULD_DENY,
    FIELD_PDU,
    FIELD_COUNT
};

#define BIT(field) (1u << (field))

enum field_kind {
    KIND_STRING,
    KIND_ROLE, /* a string or null */
    KIND_NUMBER,
    KIND_VALUES, /* an array of numbers */
    KIND_BOOL,
};

struct field_spec {
    const char *key;
    size_t key_length;
    enum field_kind kind;
    uint64_t min, max;   /* numbers */
    const char *problem; /* said when the value is of the wrong type or out of range */
};

#define SPEC(key, kind, min, max, problem) \
    { key, sizeof key - 1, kind, min, max, problem }
#define SPEC_U16(key) SPEC(key, KIND_NUMBER, 0, 65535, "\"" key "\" is not a whole number 0..65535")

static const struct field_spec specs[FIELD_COUNT] = {
    [FIELD_TIME] = SPEC("time", KIND_STRING, 0, 0, "\"time\" is not a string"),
    [FIELD_TYPE] = SPEC("type", KIND_STRING, 0, 0, "\"type\" is not a string"),
    [FIELD_PEER] = SPEC("peer", KIND_STRING, 0, 0, "\"peer\" is not a string"),
    [FIELD_TRANSPORT] = SPEC("transport", KIND_STRING, 0, 0, "\"transport\" is not a string"),
    [FIELD_ROLE] = SPEC("role", KIND_ROLE, 0, 0,
                        "\"role\" is not null or a string of 1..255 bytes without NUL"),
    [FIELD_UNIT] = SPEC("unit", KIND_NUMBER, 0, 255, "\"unit\" is not a whole number 0..255"),
    [FIELD_FUNCTION] =
        SPEC("function", KIND_NUMBER, 1, 127, "\"function\" is not a whole number 1..127"),
    [FIELD_ADDRESS] = SPEC_U16("address"),
    [FIELD_QUANTITY] = SPEC_U16("quantity"),
    [FIELD_VALUES] = SPEC("values", KIND_VALUES, 0, 65535,
                          "\"values\" is not an array of at most 1968 whole numbers 0..65535"),
    [FIELD_VALUES_NOT_SHOWN] = SPEC_U16("values_not_shown"),
    [FIELD_AND_MASK] = SPEC_U16("and_mask"),
    [FIELD_OR_MASK] = SPEC_U16("or_mask"),
    [FIELD_READ_ADDRESS] = SPEC_U16("read_address"),
    [FIELD_READ_QUANTITY] = SPEC_U16("read_quantity"),
    [FIELD_SUB_FUNCTION] = SPEC_U16("sub_function"),
    [FIELD_MALFORMED] = SPEC("malformed", KIND_BOOL, 0, 0, "\"malformed\" is not true or false"),
    [FIELD_WOULD_DENY] = SPEC("would_deny", KIND_BOOL, 0, 0, "\"would_deny\" is not true or false"),
    [FIELD_PDU] = SPEC("pdu", KIND_STRING, 0, 0, "\"pdu\" is not a string"),
};

/* What a line's object said, before it is judged. Strings that do not fit their buffer keep
 * their whole length, so that a cut one is never taken for a shorter one. */
struct fields {
    unsigned present;    /* BIT(field) for each field met */
    unsigned strings;    /* BIT(field) for each string field whose value is a string */
    const char *problem; /* the first value of the wrong type or out of range */
    uint64_t numbers[FIELD_COUNT];
    int flag;       /* "malformed" */
    int would_deny; /* "would_deny" */
    char type[8], time[48], peer[64], transport[8];
    char pdu[2 * MB_PDU_MAX + 1];
    size_t type_length, time_length, peer_length, transport_length, pdu_length;
};

static void note_problem(struct fields *fields, const char *problem) {
    if (fields->problem == NULL)
        fields->problem = problem;
}

/* The field a key names, or -1. */
static int field_of(const char *key, size_t length) {
    for (int field = 0; field < FIELD_COUNT; field++)
        if (specs[field].key_length == length && memcmp(specs[field].key, key, length) == 0)
            return field;
    return -1;
}

/* A value of a type the field does not take: noted, and skipped so that the line's syntax is
 * still checked to its end. */
static int wrong_type(struct json_reader *reader, struct fields *fields, enum field field) {
    note_problem(fields, specs[field].problem);
    return json_reader_skip(reader);
}

static int read_number(struct json_reader *reader, struct fields *fields, enum field field,
                       uint64_t *value) {
    struct json_number number;
    if (json_reader_peek(reader) != JSON_NUMBER)
        return wrong_type(reader, fields, field);
    if (json_reader_number(reader, &number) != 0)
        return -1;
    if (!number.whole || number.overflow || number.value < specs[field].min ||
        number.value > specs[field].max)
        note_problem(fields, specs[field].problem);
    else
        *value = number.value;
    return 0;
}

static int read_values(struct json_reader *reader, struct fields *fields,
                       struct records_line *line) {
    if (json_reader_peek(reader) != JSON_ARRAY)
        return wrong_type(reader, fields, FIELD_VALUES);
    json_reader_expect(reader, '[');
    if (json_reader_accept(reader, ']'))
        return 0;
    do {
        /* read_number() leaves a value out of range as it was: past every value a field takes. */
        uint64_t value = UINT64_MAX;
        if (read_number(reader, fields, FIELD_VALUES, &value) != 0)
            return -1;
        if (line->value_count == RECORDS_VALUES_MAX)
            note_problem(fields, specs[FIELD_VALUES].problem);
        else if (value <= specs[FIELD_VALUES].max)
            line->values[line->value_count++] = (uint16_t)value;
    } while (json_reader_accept(reader, ','));
    return json_reader_expect(reader, ']');
}

/* A string field into its buffer; *length is the whole decoded length. */
static int read_text(struct json_reader *reader, struct fields *fields, enum field field,
                     char *text, size_t capacity, size_t *length) {
    if (json_reader_peek(reader) != JSON_STRING)
        return wrong_type(reader, fields, field);
    fields->strings |= BIT(field);
    return json_reader_string(reader, text, capacity, length);
}

static int read_role(struct json_reader *reader, struct fields *fields, struct records_line *line) {
    enum json_type type = json_reader_peek(reader);
    if (type == JSON_NULL)
        return json_reader_literal(reader, &type);
    size_t length = 0;
    if (type != JSON_STRING)
        return wrong_type(reader, fields, FIELD_ROLE);
    if (json_reader_string(reader, line->role, sizeof line->role, &length) != 0)
        return -1;
    /* A role is a C string for the policy: a NUL inside would cut it into another role. */
    if (length == 0 || length > RECORDS_ROLE_MAX || memchr(line->role, '\0', length) != NULL)
        note_problem(fields, specs[FIELD_ROLE].problem);
    else
        line->has_role = 1;
    return 0;
}

static int read_field(struct json_reader *reader, struct fields *fields, enum field field,
                      struct records_line *line) {
    switch (field) {
    case FIELD_TIME:
        return read_text(reader, fields, field, fields->time, sizeof fields->time,
                         &fields->time_length);
    case FIELD_TYPE:
        return read_text(reader, fields, field, fields->type, sizeof fields->type,
                         &fields->type_length);
    case FIELD_PEER:
        return read_text(reader, fields, field, fields->peer, sizeof fields->peer,
                         &fields->peer_length);
    case FIELD_TRANSPORT:
        return read_text(reader, fields, field, fields->transport, sizeof fields->transport,
                         &fields->transport_length);
    case FIELD_PDU:
        return read_text(reader, fields, field, fields->pdu, sizeof fields->pdu,
                         &fields->pdu_length);
    case FIELD_ROLE:
        return read_role(reader, fields, line);
    case FIELD_VALUES:
        return read_values(reader, fields, line);
    case FIELD_MALFORMED:
    case FIELD_WOULD_DENY: {
        enum json_type type = json_reader_peek(reader);
        if (type != JSON_TRUE && type != JSON_FALSE)
            return wrong_type(reader, fields, field);
        *(field == FIELD_MALFORMED ? &fields->flag : &fields->would_deny) = type == JSON_TRUE;
        return json_reader_literal(reader, &type);
    }
    default:
        return read_number(reader, fields, field, &fields->numbers[field]);
    }
}

/* The object of a line, key by key. Returns 0, or -1 when the line is not one JSON object. */
static int read_object(struct json_reader *reader, struct fields *fields,
                       struct records_line *line) {
    if (json_reader_expect(reader, '{') != 0)
        return -1;
    if (json_reader_accept(reader, '}'))
        return json_reader_finish(reader);
    do {
        /* Longer than every key the reader knows: read whole, then not found. */
        char key[24];
        size_t key_length;
        if (json_reader_string(reader, key, sizeof key, &key_length) != 0 ||
            json_reader_expect(reader, ':') != 0)
            return -1;
        int field = key_length < sizeof key ? field_of(key, key_length) : -1;
        int rc;
        if (field < 0) {
            rc = json_reader_skip(reader);
        } else if (fields->present & BIT(field)) {
            note_problem(fields, "a key given twice");
            rc = json_reader_skip(reader);
        } else {
            fields->present |= BIT(field);
            rc = read_field(reader, fields, (enum field)field, line);
        }
        if (rc != 0)
            return -1;
    } while (json_reader_accept(reader, ','));
    if (json_reader_expect(reader, '}') != 0)
        return -1;
    return json_reader_finish(reader);
}

/* ---- identity ---- */

/* Days from 1970-01-01 to the date (proleptic Gregorian; Howard Hinnant's days_from_civil). */
static int64_t days_from_civil(int64_t year, unsigned month, unsigned day) {
    year -= month <= 2;
    int64_t era = (year >= 0 ? year : year - 399) / 400;
    unsigned year_of_era = (unsigned)(year - era * 400);
    unsigned day_of_year = (153 * (month > 2 ? month - 3 : month + 9) + 2) / 5 + day - 1;
    unsigned day_of_era = year_of_era * 365 + year_of_era / 4 - year_of_era / 100 + day_of_year;
    return era * 146097 + (int64_t)day_of_era - 719468;
}

/* Reads `count` digits at text[*at], or returns -1. */
static long digits(const char *text, size_t length, size_t *at, size_t count) {
    long value = 0;
    if (length - *at < count)
        return -1;
    for (size_t i = 0; i < count; i++) {
        char c = text[*at + i];
        if (c < '0' || c > '9')
            return -1;
        value = value * 10 + (c - '0');
    }
    *at += count;
    return value;
}

static int take(const char *text, size_t length, size_t *at, const char *choices) {
    if (*at < length && text[*at] != '\0' && strchr(choices, text[*at]) != NULL) {
        (*at)++;
        return 1;
    }
    return 0;
}

/* RFC 3339 date-time ("2026-11-21T14:47:17.686Z", "...17+01:00", any fraction) in microseconds
 * since the epoch, or 0 when the text is not one. */
static int64_t time_of(const char *text, size_t length) {
    static const unsigned char month_days[] = {31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    size_t at = 0;
    long year = digits(text, length, &at, 4);
    long month = take(text, length, &at, "-") ? digits(text, length, &at, 2) : -1;
    long day = take(text, length, &at, "-") ? digits(text, length, &at, 2) : -1;
    long hour = take(text, length, &at, "Tt ") ? digits(text, length, &at, 2) : -1;
    long minute = take(text, length, &at, ":") ? digits(text, length, &at, 2) : -1;
    long second = take(text, length, &at, ":") ? digits(text, length, &at, 2) : -1;
    if (year < 0 || month < 1 || month > 12 || day < 1 || day > month_days[month - 1] || hour < 0 ||
        hour > 23 || minute < 0 || minute > 59 || second < 0 || second > 60)
        return 0;
    int leap = (year % 4 == 0 && year % 100 != 0) || year % 400 == 0;
    if (month == 2 && day == 29 && !leap)
        return 0;
    long micro = 0, scale = 100000;
    if (take(text, length, &at, ".")) {
        size_t first = at;
        long digit;
        while ((digit = digits(text, length, &at, 1)) >= 0) {
            micro += digit * scale;
            scale /= 10;
        }
        if (at == first)
            return 0;
    }
    long offset = 0;
    if (!take(text, length, &at, "Zz")) {
        int sign = at < length && text[at] == '-' ? -1 : 1;
        if (!take(text, length, &at, "+-"))
            return 0;
        long offset_hour = digits(text, length, &at, 2);
        long offset_minute = take(text, length, &at, ":") ? digits(text, length, &at, 2) : -1;
        if (offset_hour < 0 || offset_hour > 23 || offset_minute < 0 || offset_minute > 59)
            return 0;
        offset = sign * (offset_hour * 3600 + offset_minute * 60);
    }
    if (at != length)
        return 0;
    int64_t seconds = days_from_civil(year, (unsigned)month, (unsigned)day) * 86400 + hour * 3600 +
                      minute * 60 + second - offset;
    return seconds * 1000000 + micro;
}

/* "192.0.2.7:50312" or "[2001:db8::7]:50312" into the line's address; anything else leaves it
 * unknown (address_length 0). */
static void address_of(const char *text, size_t length, struct records_line *line) {
    const char *colon = length > 0 ? memrchr(text, ':', length) : NULL;
    if (colon == NULL)
        return;
    size_t at = (size_t)(colon - text) + 1, port_digits = length - at;
    long port = port_digits >= 1 && port_digits <= 5 ? digits(text, length, &at, port_digits) : -1;
    if (port < 0 || port > 65535)
        return;
    char host[INET6_ADDRSTRLEN + 1];
    size_t host_length = (size_t)(colon - text);
    int v6 = host_length >= 2 && text[0] == '[' && text[host_length - 1] == ']';
    if (v6) {
        text++;
        host_length -= 2;
    }
    if (host_length == 0 || host_length >= sizeof host || memchr(text, '\0', host_length))
        return;
    memcpy(host, text, host_length);
    host[host_length] = '\0';
    memset(&line->address, 0, sizeof line->address);
    if (v6) {
        struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&line->address;
        if (inet_pton(AF_INET6, host, &in6->sin6_addr) != 1)
            return;
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons((uint16_t)port);
        line->address_length = sizeof *in6;
    } else {
        struct sockaddr_in *in4 = (struct sockaddr_in *)&line->address;
        if (inet_pton(AF_INET, host, &in4->sin_addr) != 1)
            return;
        in4->sin_family = AF_INET;
        in4->sin_port = htons((uint16_t)port);
        line->address_length = sizeof *in4;
    }
}

/* ---- the request ---- */

static int judged(struct records_line *line, enum records_kind kind, const char *reason) {
    line->reason = reason;
    return kind;
}

/* The record's "pdu" field: lowercase (or uppercase) hex of 1..253 bytes. */
static int pdu_of(const struct fields *fields, struct records_line *line) {
    static const char not_hex[] = "\"pdu\" is not the hex of 1..253 bytes";
    if (fields->pdu_length == 0 || fields->pdu_length % 2 != 0 ||
        fields->pdu_length > 2 * MB_PDU_MAX)
        return judged(line, RECORDS_MALFORMED, not_hex);
    for (size_t i = 0; i < fields->pdu_length / 2; i++) {
        int high = json_hex_digit((unsigned char)fields->pdu[2 * i]),
            low = json_hex_digit((unsigned char)fields->pdu[2 * i + 1]);
        if (high < 0 || low < 0)
            return judged(line, RECORDS_MALFORMED, not_hex);
        line->pdu[i] = (uint8_t)(high << 4 | low);
    }
    line->pdu_length = fields->pdu_length / 2;
    if (line->pdu[0] != fields->numbers[FIELD_FUNCTION])
        return judged(line, RECORDS_MALFORMED, "\"pdu\" starts with another function code");
    line->from_pdu_field = 1;
    return RECORDS_REQUEST;
}

/* The write part of FC 15, 16 and 23: the values shown, zeros for those that were not. Returns
 * 0, or the kind the line is when they do not fit the quantity. */
static int put_written(const struct fields *fields, struct records_line *line, uint16_t limit,
                       int bits, uint8_t *bytes) {
    uint64_t quantity = fields->numbers[FIELD_QUANTITY];
    if (line->value_count > quantity)
        return judged(line, RECORDS_MALFORMED, "more \"values\" than \"quantity\"");
    if ((fields->present & BIT(FIELD_VALUES_NOT_SHOWN)) &&
        line->value_count + fields->numbers[FIELD_VALUES_NOT_SHOWN] != quantity)
        return judged(line, RECORDS_MALFORMED,
                      "\"values\" and \"values_not_shown\" do not add up to \"quantity\"");
    if (quantity == 0 || quantity > limit)
        return judged(line, RECORDS_NOT_REBUILDABLE,
                      "a \"quantity\" the function cannot carry: the request does not encode");
    memset(bytes, 0, MB_PDU_MAX);
    for (size_t i = 0; i < line->value_count; i++) {
        uint16_t value = line->values[i];
        if (bits && value > 1)
            return judged(line, RECORDS_MALFORMED, "a coil's value that is not 0 or 1");
        if (bits)
            bytes[i / 8] |= (uint8_t)(value << (i % 8));
        else
            mb_put_u16(bytes + 2 * i, value);
    }
    line->values_partial = line->value_count < quantity;
    return 0;
}

/* The PDU the record's fields describe, checked by encoding and decoding it. */
static int rebuild(const struct fields *fields, struct records_line *line) {
    static const char missing[] = "a field its function code needs is missing";
    static const uint8_t diagnostic_data[2] = {0, 0};
    uint8_t written[MB_PDU_MAX];
    struct mb_request request;
    memset(&request, 0, sizeof request);
    request.function = (uint8_t)fields->numbers[FIELD_FUNCTION];
    const uint64_t *number = fields->numbers;
    unsigned needed = 0;
    int rc = 0;
    switch (request.function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS:
        needed = BIT(FIELD_ADDRESS) | BIT(FIELD_QUANTITY);
        request.read.address = (uint16_t)number[FIELD_ADDRESS];
        request.read.quantity = (uint16_t)number[FIELD_QUANTITY];
        break;
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        needed = BIT(FIELD_ADDRESS) | BIT(FIELD_VALUES);
        if ((fields->present & needed) != needed)
            break;
        if (line->value_count != 1 ||
            (request.function == MB_FC_WRITE_SINGLE_COIL && line->values[0] > 1))
            return judged(line, RECORDS_MALFORMED,
                          "\"values\" of FC 5 or 6 is not one value ([0] or [1] for a coil)");
        request.write_single.address = (uint16_t)number[FIELD_ADDRESS];
        request.write_single.value = request.function == MB_FC_WRITE_SINGLE_REGISTER
                                         ? line->values[0]
                                     : line->values[0] ? MB_COIL_ON
                                                       : MB_COIL_OFF;
        break;
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS: {
        int coils = request.function == MB_FC_WRITE_MULTIPLE_COILS;
        needed = BIT(FIELD_ADDRESS) | BIT(FIELD_QUANTITY) | BIT(FIELD_VALUES);
        if ((fields->present & needed) != needed)
            break;
        rc = put_written(fields, line, coils ? MB_MAX_WRITE_BITS : MB_MAX_WRITE_REGISTERS, coils,
                         written);
        request.write_multiple.address = (uint16_t)number[FIELD_ADDRESS];
        request.write_multiple.quantity = (uint16_t)number[FIELD_QUANTITY];
        request.write_multiple.values = written;
        break;
    }
    case MB_FC_READ_WRITE_MULTIPLE_REGISTERS:
        needed = BIT(FIELD_ADDRESS) | BIT(FIELD_QUANTITY) | BIT(FIELD_VALUES) |
                 BIT(FIELD_READ_ADDRESS) | BIT(FIELD_READ_QUANTITY);
        if ((fields->present & needed) != needed)
            break;
        rc = put_written(fields, line, MB_MAX_RW_WRITE_REGISTERS, 0, written);
        request.read_write.write_address = (uint16_t)number[FIELD_ADDRESS];
        request.read_write.write_quantity = (uint16_t)number[FIELD_QUANTITY];
        request.read_write.read_address = (uint16_t)number[FIELD_READ_ADDRESS];
        request.read_write.read_quantity = (uint16_t)number[FIELD_READ_QUANTITY];
        request.read_write.values = written;
        break;
    case MB_FC_MASK_WRITE_REGISTER:
        needed = BIT(FIELD_ADDRESS) | BIT(FIELD_AND_MASK) | BIT(FIELD_OR_MASK);
        request.mask_write.address = (uint16_t)number[FIELD_ADDRESS];
        request.mask_write.and_mask = (uint16_t)number[FIELD_AND_MASK];
        request.mask_write.or_mask = (uint16_t)number[FIELD_OR_MASK];
        break;
    case MB_FC_DIAGNOSTICS:
        /* The record keeps the sub-function only; the data of the sub-functions a policy tells
         * apart is 0x0000. */
        needed = BIT(FIELD_SUB_FUNCTION);
        request.diagnostics.sub_function = (uint16_t)number[FIELD_SUB_FUNCTION];
        request.diagnostics.data = diagnostic_data;
        request.diagnostics.data_length = sizeof diagnostic_data;
        break;
    case MB_FC_READ_FIFO_QUEUE:
        needed = BIT(FIELD_ADDRESS);
        request.fifo.address = (uint16_t)number[FIELD_ADDRESS];
        break;
    case MB_FC_READ_EXCEPTION_STATUS:
    case MB_FC_GET_COMM_EVENT_COUNTER:
    case MB_FC_GET_COMM_EVENT_LOG:
    case MB_FC_REPORT_SERVER_ID:
        break;
    default:
        return judged(line, RECORDS_NOT_REBUILDABLE,
                      "a function code whose record does not hold the whole request, and no "
                      "\"pdu\"");
    }
    if ((fields->present & needed) != needed)
        return judged(line, RECORDS_MALFORMED, missing);
    if (rc != 0)
        return rc;
    int length = mb_request_encode(&request, line->pdu, sizeof line->pdu);
    struct mb_request decoded;
    if (length <= 0 || mb_request_decode(line->pdu, (size_t)length, &decoded) != 0)
        return judged(line, RECORDS_NOT_REBUILDABLE,
                      "the fields do not make a request that encodes (a quantity or value out of "
                      "the function's limits)");
    line->pdu_length = (size_t)length;
    return RECORDS_REQUEST;
}

/* A request record: who sent it, then its PDU. */
static int request_of(const struct fields *fields, struct records_line *line) {
    if ((fields->present & (BIT(FIELD_UNIT) | BIT(FIELD_FUNCTION))) !=
        (BIT(FIELD_UNIT) | BIT(FIELD_FUNCTION)))
        return judged(line, RECORDS_MALFORMED, "a request record without \"unit\" or \"function\"");
    line->unit = (uint8_t)fields->numbers[FIELD_UNIT];
    line->would_deny = fields->would_deny;
    if (fields->time_length < sizeof fields->time)
        line->time_us = time_of(fields->time, fields->time_length);
    line->tls = fields->transport_length == 3 && memcmp(fields->transport, "tls", 3) == 0 ? 1 : 0;
    if (fields->peer_length < sizeof fields->peer)
        address_of(fields->peer, fields->peer_length, line);
    if (fields->present & BIT(FIELD_PDU))
        return pdu_of(fields, line);
    if (fields->flag)
        return judged(line, RECORDS_NOT_REBUILDABLE,
                      "the gateway could not decode the request (\"malformed\": true) and the "
                      "record has no \"pdu\"");
    return rebuild(fields, line);
}

static int is_type(const struct fields *fields, const char *type) {
    size_t length = strlen(type);
    return fields->type_length == length && memcmp(fields->type, type, length) == 0;
}

int records_parse_line(const void *text, size_t length, struct records_line *line) {
    line->reason = NULL;
    line->record = 0;
    line->time_us = 0;
    line->has_role = 0;
    line->role[0] = '\0';
    line->tls = 0;
    line->address_length = 0;
    line->unit = 0;
    line->pdu_length = 0;
    line->values_partial = 0;
    line->from_pdu_field = 0;
    line->would_deny = 0;
    line->value_count = 0;

    struct json_reader reader;
    json_reader_init(&reader, text, length);
    if (json_reader_peek(&reader) == JSON_NONE && json_reader_finish(&reader) == 0)
        return RECORDS_BLANK;
    struct fields fields;
    fields.present = 0;
    fields.strings = 0;
    fields.problem = NULL;
    fields.flag = 0;
    fields.would_deny = 0;
    fields.type_length = fields.time_length = fields.peer_length = 0;
    fields.transport_length = fields.pdu_length = 0;
    if (read_object(&reader, &fields, line) != 0)
        return judged(line, RECORDS_MALFORMED, json_reader_error(&reader));
    if (!(fields.strings & BIT(FIELD_TYPE)))
        return judged(line, RECORDS_MALFORMED, "not an audit record: no \"type\" string");
    line->record = 1;
    if (!is_type(&fields, "read") && !is_type(&fields, "write"))
        return RECORDS_OTHER_TYPE;
    if (fields.problem != NULL)
        return judged(line, RECORDS_MALFORMED, fields.problem);
    return request_of(&fields, line);
}

/* ---- the file, line by line ---- */

/* Room for the longest line kept, its newline, and a read's worth after it, so that reads stay
 * large while a line is being completed. */
#define BUFFER_SIZE (2 * (RECORDS_LINE_MAX + 2))

struct line_reader {
    int fd;
    uint8_t *buffer;
    size_t start;   /* the next line begins here */
    size_t scanned; /* bytes from start on known to hold no newline */
    size_t end;     /* bytes read up to here */
    int at_end;
    int read_errno; /* a read that failed: the errno, else 0 */
    uint64_t bytes;
};

enum line_result { LINE_NONE, LINE_KEPT, LINE_TOO_LONG };

static int fill(struct line_reader *reader) {
    if (reader->start > 0) {
        memmove(reader->buffer, reader->buffer + reader->start, reader->end - reader->start);
        reader->end -= reader->start;
        reader->scanned -= reader->start;
        reader->start = 0;
    }
    for (;;) {
        ssize_t count = read(reader->fd, reader->buffer + reader->end, BUFFER_SIZE - reader->end);
        if (count > 0) {
            reader->end += (size_t)count;
            reader->bytes += (uint64_t)count;
            return 1;
        }
        if (count < 0 && errno == EINTR)
            continue;
        if (count < 0)
            reader->read_errno = errno;
        reader->at_end = 1;
        return 0;
    }
}

/*
 * The next line, without its newline: LINE_KEPT with *line and *length, LINE_TOO_LONG when it
 * was over RECORDS_LINE_MAX (its bytes are dropped as they come, so the buffer never grows), or
 * LINE_NONE at the end. A last line without a newline is a line.
 */
static enum line_result next_line(struct line_reader *reader, const uint8_t **line,
                                  size_t *length) {
    int too_long = 0;
    for (;;) {
        const uint8_t *newline =
            memchr(reader->buffer + reader->scanned, '\n', reader->end - reader->scanned);
        if (newline != NULL) {
            size_t at = (size_t)(newline - reader->buffer);
            *line = reader->buffer + reader->start;
            *length = at - reader->start;
            reader->start = reader->scanned = at + 1;
            return too_long || *length > RECORDS_LINE_MAX ? LINE_TOO_LONG : LINE_KEPT;
        }
        reader->scanned = reader->end;
        if (reader->end - reader->start > RECORDS_LINE_MAX) {
            too_long = 1;
            reader->start = reader->scanned = reader->end;
        }
        if (reader->at_end || !fill(reader)) {
            if (reader->start == reader->end)
                return too_long ? LINE_TOO_LONG : LINE_NONE;
            *line = reader->buffer + reader->start;
            *length = reader->end - reader->start;
            reader->start = reader->scanned = reader->end;
            return too_long ? LINE_TOO_LONG : LINE_KEPT;
        }
    }
}

/* ---- the whole read ---- */

/* What records_read() keeps for the whole file: one allocation. */
struct reading {
    struct line_reader lines;
    struct records_line line;
    uint8_t buffer[BUFFER_SIZE];
};

static void count_line(struct records_stats *stats, int kind, uint64_t number, const char *reason) {
    switch (kind) {
    case RECORDS_BLANK:
        stats->blank++;
        break;
    case RECORDS_MALFORMED:
        stats->malformed++;
        if (stats->first_bad_line == 0) {
            stats->first_bad_line = number;
            stats->first_bad_reason = reason;
        }
        break;
    case RECORDS_OTHER_TYPE:
        stats->skipped_types++;
        break;
    case RECORDS_NOT_REBUILDABLE:
        stats->not_rebuildable++;
        break;
    default:
        break;
    }
}

static int visit_request(struct reading *reading, const char *name, uint64_t number,
                         observed_visit visit, void *data, struct records_stats *stats) {
    const struct records_line *line = &reading->line;
    char origin[512];
    snprintf(origin, sizeof origin, "%s:%llu", name, (unsigned long long)number);
    struct observed request = {
        .time_us = line->time_us,
        .role = line->has_role ? line->role : NULL,
        .tls = line->tls,
        .address = line->address,
        .address_length = line->address_length,
        .unit = line->unit,
        .pdu = line->pdu,
        .pdu_length = line->pdu_length,
        .values_partial = line->values_partial,
        .origin = origin,
    };
    stats->requests++;
    stats->values_partial += line->values_partial != 0;
    stats->would_deny += line->would_deny != 0;
    return visit(data, &request);
}

/* The lines of an open file; the caller closes it. */
static int read_lines(struct reading *reading, const char *path, const char *name,
                      observed_visit visit, void *data, struct records_stats *stats, char *error,
                      size_t capacity) {
    struct line_reader *lines = &reading->lines;
    if (fill(lines) && lines->end >= 2 && lines->buffer[0] == 0x1f && lines->buffer[1] == 0x8b) {
        snprintf(error, capacity,
                 "%s: compressed with gzip; give it decompressed (zcat %s | ... -)", name, path);
        return -1;
    }
    uint64_t number = 0, records = 0, nonblank = 0;
    const uint8_t *text;
    size_t length;
    enum line_result result;
    while ((result = next_line(lines, &text, &length)) != LINE_NONE) {
        number++;
        stats->lines = number;
        stats->bytes = lines->bytes;
        int kind = RECORDS_MALFORMED;
        if (result == LINE_TOO_LONG) {
            stats->too_long++;
            nonblank++;
        } else {
            kind = records_parse_line(text, length, &reading->line);
            count_line(stats, kind, number, reading->line.reason);
            nonblank += kind != RECORDS_BLANK;
            records += reading->line.record;
        }
        if (nonblank == RECORDS_PROBE_LINES && records == 0)
            break;
        if (kind == RECORDS_REQUEST) {
            int rc = visit_request(reading, name, number, visit, data, stats);
            if (rc != 0)
                return rc;
        }
    }
    stats->bytes = lines->bytes;
    if (lines->read_errno != 0) {
        snprintf(error, capacity, "%s: cannot read line %llu: %s", name,
                 (unsigned long long)number + 1, strerror(lines->read_errno));
        return -1;
    }
    if (records == 0 && nonblank > 0) {
        if (stats->first_bad_line != 0)
            snprintf(error, capacity,
                     "%s: not an mbsec audit file: none of the first %llu lines with text is an "
                     "audit record (line %llu: %s)",
                     name, (unsigned long long)nonblank, (unsigned long long)stats->first_bad_line,
                     stats->first_bad_reason);
        else
            snprintf(error, capacity,
                     "%s: not an mbsec audit file: none of the first %llu lines with text is an "
                     "audit record (they are over 64 KiB)",
                     name, (unsigned long long)nonblank);
        return -1;
    }
    return 0;
}

int records_read(const char *path, observed_visit visit, void *data, struct records_stats *stats,
                 char *error, size_t capacity) {
    struct records_stats unused;
    if (stats == NULL)
        stats = &unused;
    memset(stats, 0, sizeof *stats);
    if (capacity > 0)
        error[0] = '\0';
    int standard_input = strcmp(path, "-") == 0;
    const char *name = standard_input ? "standard input" : path;
    struct reading *reading = malloc(sizeof *reading);
    if (reading == NULL) {
        snprintf(error, capacity, "%s: out of memory", name);
        return -1;
    }
    memset(&reading->lines, 0, sizeof reading->lines);
    reading->lines.buffer = reading->buffer;
    reading->lines.fd = standard_input ? STDIN_FILENO : open(path, O_RDONLY | O_CLOEXEC);
    if (reading->lines.fd < 0) {
        snprintf(error, capacity, "%s: cannot open: %s", name, strerror(errno));
        free(reading);
        return -1;
    }
    int rc = read_lines(reading, path, name, visit, data, stats, error, capacity);
    if (!standard_input)
        close(reading->lines.fd);
    free(reading);
    return rc;
}
