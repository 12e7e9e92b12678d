/* SPDX-License-Identifier: MIT */
/*
 * What the client commands print: an aligned table for people, one JSON object per reading, or
 * CSV rows. Machine formats carry protocol addresses (counted from 0) whatever numbering the
 * command line used, so that a script never needs to know the flags; the human table counts the
 * way the user did (--one-based, Modicon references).
 */
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/client/client.h"

void cli_hex_bytes(FILE *out, const uint8_t *bytes, size_t length, char separator) {
    for (size_t i = 0; i < length; i++) {
        if (i > 0 && separator != '\0')
            fputc(separator, out);
        fprintf(out, "%02x", bytes[i]);
    }
}

void cli_printable(FILE *out, const uint8_t *bytes, size_t length) {
    for (size_t i = 0; i < length; i++)
        fputc(bytes[i] >= 0x20 && bytes[i] < 0x7F ? bytes[i] : '.', out);
}

void cli_json_open(FILE *out, const struct cli_options *options) {
    char timestamp[32];
    log_timestamp(timestamp, sizeof timestamp);
    fprintf(out, "{\"timestamp\":\"%s\",\"target\":", timestamp);
    json_write_string(out, options->target, strlen(options->target));
    fprintf(out, ",\"unit\":%u", options->unit);
}

/* ---- one value in each format ---- */

/* The text of an ascii reading: all its registers as one string. Caller frees. */
static char *reading_text(const struct cli_options *options, const struct cli_reading *reading,
                          size_t *length) {
    size_t capacity = reading->count * 2 + 1;
    char *text = malloc(capacity);
    if (text == NULL)
        return NULL;
    int written =
        mb_get_reg_string(reading->registers, reading->count, options->order, text, capacity);
    *length = written < 0 ? strlen(text) : (size_t)written;
    return text;
}

/* A value as JSON: numbers as numbers (NaN and infinities have no JSON form: null), hex as a
 * string. */
static void json_value(FILE *out, const struct cli_value *value) {
    char text[64];
    cli_format_value(value, text, sizeof text);
    if (value->kind == CLI_VALUE_HEX)
        fprintf(out, "\"%s\"", text);
    else if (value->kind == CLI_VALUE_REAL && !isfinite(value->real))
        fputs("null", out);
    else
        fputs(text, out);
}

static void csv_text(FILE *out, const char *text, size_t length) {
    fputc('"', out);
    for (size_t i = 0; i < length; i++) {
        if (text[i] == '"')
            fputc('"', out);
        fputc(text[i], out);
    }
    fputc('"', out);
}

/* ---- a whole reading ---- */

/* Row i of a reading: its protocol address and its value (bits: unsigned 0 or 1). */
static void reading_row(const struct cli_options *options, const struct cli_reading *reading,
                        size_t index, uint32_t *address, struct cli_value *value) {
    size_t per_value = cli_type_registers(options->type);
    *address = (uint32_t)reading->location->address + (uint32_t)(index * per_value);
    if (options->type == CLI_TYPE_BIT) {
        memset(value, 0, sizeof *value);
        value->kind = CLI_VALUE_UNSIGNED;
        value->unsigned_value = reading->bits[index];
        return;
    }
    cli_decode(options, reading->registers + index * per_value, value);
}

static void print_human(const struct cli_options *options, const struct cli_reading *reading) {
    char address_text[16], value_text[64];
    uint32_t address;
    struct cli_value value;
    if (options->type == CLI_TYPE_ASCII) {
        size_t length;
        char *text = reading_text(options, reading, &length);
        cli_format_address(reading->location, reading->location->address, address_text,
                           sizeof address_text);
        printf("%-8s  text\n%-8s  ", "address", address_text);
        if (text != NULL)
            text_write_quoted(stdout, text, length);
        fputc('\n', stdout);
        free(text);
        return;
    }
    /* Two passes: the widths first, so that the columns line up. */
    int address_width = (int)strlen("address"), value_width = (int)strlen("value");
    int hex_digits = 0;
    for (size_t i = 0; i < reading->count; i++) {
        reading_row(options, reading, i, &address, &value);
        cli_format_address(reading->location, address, address_text, sizeof address_text);
        cli_format_value(&value, value_text, sizeof value_text);
        if ((int)strlen(address_text) > address_width)
            address_width = (int)strlen(address_text);
        if ((int)strlen(value_text) > value_width)
            value_width = (int)strlen(value_text);
        hex_digits = value.hex_digits;
    }
    if (hex_digits > 0)
        printf("%-*s  %*s  hex\n", address_width, "address", value_width, "value");
    else
        printf("%-*s  %*s\n", address_width, "address", value_width, "value");
    for (size_t i = 0; i < reading->count; i++) {
        reading_row(options, reading, i, &address, &value);
        cli_format_address(reading->location, address, address_text, sizeof address_text);
        cli_format_value(&value, value_text, sizeof value_text);
        if (value.hex_digits > 0)
            printf("%-*s  %*s  0x%0*llX\n", address_width, address_text, value_width, value_text,
                   value.hex_digits, (unsigned long long)value.bits);
        else
            printf("%-*s  %*s\n", address_width, address_text, value_width, value_text);
    }
}

static void print_json(const struct cli_options *options, const struct cli_reading *reading) {
    fprintf(stdout, "{\"timestamp\":\"%s\",\"target\":", reading->timestamp);
    json_write_string(stdout, options->target, strlen(options->target));
    printf(",\"unit\":%u,\"table\":\"%s\",\"address\":%u,\"type\":\"%s\"", options->unit,
           cli_table_name(reading->location->table), reading->location->address,
           cli_type_name(options->type));
    if (options->type != CLI_TYPE_BIT)
        printf(",\"order\":\"%s\"", mb_order_name(options->order));
    if (options->scale_given) {
        char scale[32];
        cli_format_real(options->scale, scale, sizeof scale);
        printf(",\"scale\":%s", scale);
    }
    fputs(",\"values\":[", stdout);
    if (options->type == CLI_TYPE_ASCII) {
        size_t length = 0;
        char *text = reading_text(options, reading, &length);
        json_write_string(stdout, text != NULL ? text : "", text != NULL ? length : 0);
        free(text);
    } else {
        for (size_t i = 0; i < reading->count; i++) {
            uint32_t address;
            struct cli_value value;
            reading_row(options, reading, i, &address, &value);
            if (i > 0)
                fputc(',', stdout);
            json_value(stdout, &value);
        }
    }
    fputs("]}\n", stdout);
}

static void print_csv(const struct cli_options *options, const struct cli_reading *reading,
                      int header) {
    if (header)
        fputs("timestamp,address,value\n", stdout);
    if (options->type == CLI_TYPE_ASCII) {
        size_t length = 0;
        char *text = reading_text(options, reading, &length);
        printf("%s,%u,", reading->timestamp, reading->location->address);
        csv_text(stdout, text != NULL ? text : "", text != NULL ? length : 0);
        fputc('\n', stdout);
        free(text);
        return;
    }
    for (size_t i = 0; i < reading->count; i++) {
        uint32_t address;
        struct cli_value value;
        char value_text[64];
        reading_row(options, reading, i, &address, &value);
        cli_format_value(&value, value_text, sizeof value_text);
        printf("%s,%u,%s\n", reading->timestamp, address, value_text);
    }
}

void cli_print_reading(const struct cli_options *options, const struct cli_reading *reading,
                       int csv_header) {
    switch (options->format) {
    case CLI_JSON:
        print_json(options, reading);
        break;
    case CLI_CSV:
        print_csv(options, reading, csv_header);
        break;
    default:
        print_human(options, reading);
        break;
    }
    fflush(stdout);
}
