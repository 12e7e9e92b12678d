/* SPDX-License-Identifier: MIT */
/*
 * Value types over registers (--type, --order, --scale): decoding what was read into numbers to
 * print, and parsing what the user typed into registers to write. The byte orders themselves
 * are the library's (value.h).
 */
#include <ctype.h>
#include <errno.h>
#include <float.h>
#include <math.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "app/client/client.h"

struct type_description {
    const char *name;
    size_t registers;
    int numeric;
    int is_signed;
    int bits; /* width of the integer or float */
};

static const struct type_description types[] = {
    [CLI_TYPE_BIT] = {"bit", 1, 0, 0, 1},  [CLI_TYPE_U16] = {"u16", 1, 1, 0, 16},
    [CLI_TYPE_I16] = {"i16", 1, 1, 1, 16}, [CLI_TYPE_U32] = {"u32", 2, 1, 0, 32},
    [CLI_TYPE_I32] = {"i32", 2, 1, 1, 32}, [CLI_TYPE_U64] = {"u64", 4, 1, 0, 64},
    [CLI_TYPE_I64] = {"i64", 4, 1, 1, 64}, [CLI_TYPE_F32] = {"f32", 2, 1, 1, 32},
    [CLI_TYPE_F64] = {"f64", 4, 1, 1, 64}, [CLI_TYPE_ASCII] = {"ascii", 1, 0, 0, 16},
    [CLI_TYPE_HEX] = {"hex", 1, 0, 0, 16},
};

const char *cli_type_name(enum cli_type type) {
    return types[type].name;
}

int cli_type_parse(const char *text, enum cli_type *type) {
    for (size_t i = 0; i < sizeof types / sizeof types[0]; i++)
        if (strcasecmp(text, types[i].name) == 0) {
            *type = (enum cli_type)i;
            return 0;
        }
    return -1;
}

size_t cli_type_registers(enum cli_type type) {
    return types[type].registers;
}

int cli_type_is_numeric(enum cli_type type) {
    return types[type].numeric;
}

static int is_float_type(enum cli_type type) {
    return type == CLI_TYPE_F32 || type == CLI_TYPE_F64;
}

/* ---- decoding ---- */

void cli_decode(const struct cli_options *options, const uint16_t *registers,
                struct cli_value *value) {
    enum mb_order order = options->order;
    memset(value, 0, sizeof *value);
    value->kind = CLI_VALUE_UNSIGNED;
    switch (options->type) {
    case CLI_TYPE_U16:
        value->unsigned_value = mb_get_reg_u16(registers, order);
        value->bits = value->unsigned_value;
        break;
    case CLI_TYPE_I16:
        value->kind = CLI_VALUE_SIGNED;
        value->signed_value = mb_get_reg_i16(registers, order);
        value->bits = (uint16_t)value->signed_value;
        break;
    case CLI_TYPE_U32:
        value->unsigned_value = mb_get_reg_u32(registers, order);
        value->bits = value->unsigned_value;
        break;
    case CLI_TYPE_I32:
        value->kind = CLI_VALUE_SIGNED;
        value->signed_value = mb_get_reg_i32(registers, order);
        value->bits = (uint32_t)value->signed_value;
        break;
    case CLI_TYPE_U64:
        value->unsigned_value = mb_get_reg_u64(registers, order);
        value->bits = value->unsigned_value;
        break;
    case CLI_TYPE_I64:
        value->kind = CLI_VALUE_SIGNED;
        value->signed_value = mb_get_reg_i64(registers, order);
        value->bits = (uint64_t)value->signed_value;
        break;
    case CLI_TYPE_F32: {
        float number = mb_get_reg_f32(registers, order);
        uint32_t bits;
        memcpy(&bits, &number, sizeof bits);
        value->kind = CLI_VALUE_REAL;
        value->real = number;
        value->real_style = CLI_REAL_FLOAT;
        value->bits = bits;
        break;
    }
    case CLI_TYPE_F64: {
        double number = mb_get_reg_f64(registers, order);
        memcpy(&value->bits, &number, sizeof value->bits);
        value->kind = CLI_VALUE_REAL;
        value->real = number;
        value->real_style = CLI_REAL_DOUBLE;
        break;
    }
    case CLI_TYPE_HEX:
        value->kind = CLI_VALUE_HEX;
        value->unsigned_value = mb_get_reg_u16(registers, order);
        return; /* the value is its own hex column */
    default:
        return;
    }
    value->hex_digits = types[options->type].bits / 4;
    if (options->scale_given) {
        double number = value->kind == CLI_VALUE_SIGNED     ? (double)value->signed_value
                        : value->kind == CLI_VALUE_UNSIGNED ? (double)value->unsigned_value
                                                            : value->real;
        value->kind = CLI_VALUE_REAL;
        value->real = number * options->scale;
        value->real_style = CLI_REAL_SCALED;
    }
}

/* The shortest decimal text that reads back as the same number, so 1.5 prints as 1.5 and
 * 0.1f as 0.1 instead of 0.100000001. */
static void format_shortest(double number, int as_float, char *text, size_t capacity) {
    int most = as_float ? FLT_DECIMAL_DIG : DBL_DECIMAL_DIG;
    for (int digits = 1; digits <= most; digits++) {
        snprintf(text, capacity, "%.*g", digits, number);
        if (as_float ? strtof(text, NULL) == (float)number : strtod(text, NULL) == number)
            return;
    }
}

void cli_format_real(double number, char *text, size_t capacity) {
    format_shortest(number, 0, text, capacity);
}

void cli_format_value(const struct cli_value *value, char *text, size_t capacity) {
    switch (value->kind) {
    case CLI_VALUE_UNSIGNED:
        snprintf(text, capacity, "%llu", (unsigned long long)value->unsigned_value);
        return;
    case CLI_VALUE_SIGNED:
        snprintf(text, capacity, "%lld", (long long)value->signed_value);
        return;
    case CLI_VALUE_HEX:
        snprintf(text, capacity, "0x%04llX", (unsigned long long)value->unsigned_value);
        return;
    case CLI_VALUE_REAL:
        break;
    }
    double number = value->real;
    if (isnan(number))
        snprintf(text, capacity, "nan");
    else if (isinf(number))
        snprintf(text, capacity, number > 0 ? "inf" : "-inf");
    else if (value->real_style == CLI_REAL_SCALED)
        /* A scaled integer is a product with rounding noise (235 * 0.1): 15 digits hide it. */
        snprintf(text, capacity, "%.15g", number);
    else
        format_shortest(number, value->real_style == CLI_REAL_FLOAT, text, capacity);
}

/* ---- encoding ---- */

int cli_parse_bit(const char *text) {
    static const char *const on[] = {"1", "on", "true"};
    static const char *const off[] = {"0", "off", "false"};
    for (size_t i = 0; i < 3; i++) {
        if (strcasecmp(text, on[i]) == 0)
            return 1;
        if (strcasecmp(text, off[i]) == 0)
            return 0;
    }
    return -1;
}

/* Parses a whole number the way people write them (strtod accepts hex, inf and nan too). */
static int parse_real(const char *text, double *number) {
    char *end;
    errno = 0;
    *number = strtod(text, &end);
    if (end == text || *end != '\0' || isspace((unsigned char)text[0]))
        return -1;
    /* Underflow to a tiny number is fine; overflow to infinity is not what was typed. */
    if (errno == ERANGE && (*number > 1 || *number < -1))
        return -1;
    return 0;
}

/* Integer range of a type, as the bit patterns an unsigned 64-bit number can hold. */
static uint64_t unsigned_maximum(int bits) {
    return bits == 64 ? UINT64_MAX : ((uint64_t)1 << bits) - 1;
}

/* A value divided by --scale, cut to 15 significant digits: 0.15 / 0.1 is 1.4999999999999998 in
 * binary, and a person who wrote 0.15 with a scale of 0.1 means the tie 1.5. */
static double divide_by_scale(double number, double scale) {
    char text[32];
    snprintf(text, sizeof text, "%.15g", number / scale);
    return strtod(text, NULL);
}

/* With --scale: any number, divided by the scale and rounded to the nearest integer (half away
 * from zero), which must fit the type. */
static int parse_scaled_integer(const struct cli_options *options, const char *text, uint64_t *bits,
                                const char **complaint) {
    const struct type_description *type = &types[options->type];
    uint64_t maximum = unsigned_maximum(type->bits);
    double number;
    if (parse_real(text, &number) != 0 || isnan(number)) {
        *complaint = "not a number";
        return -1;
    }
    number = divide_by_scale(number, options->scale);
    *complaint = "out of range for the type once divided by --scale";
    if (!isfinite(number))
        return -1;
    if (!type->is_signed) {
        /* 2^64 is exact as a double; the largest double below it still fits a uint64_t. -0.5
         * rounds (half away from zero) to -1, which does not fit. */
        if (number <= -0.5 || number + 0.5 >= 18446744073709551616.0)
            return -1;
        uint64_t rounded = number < 0 ? 0 : (uint64_t)(number + 0.5);
        if (rounded > maximum)
            return -1;
        *bits = rounded;
        return 0;
    }
    int64_t highest = (int64_t)(maximum / 2);
    int64_t lowest = -highest - 1;
    if (number < (double)lowest - 0.5 || number >= (double)highest + 0.5)
        return -1;
    double rounded_real = number < 0 ? number - 0.5 : number + 0.5;
    if (rounded_real < -9223372036854775808.0 || rounded_real >= 9223372036854775808.0)
        return -1;
    int64_t rounded = (int64_t)rounded_real;
    if (rounded < lowest || rounded > highest)
        return -1;
    *bits = (uint64_t)rounded & maximum;
    return 0;
}

/*
 * Parses an integer of the type: decimal (a minus sign for signed types), or 0x-hex giving the
 * bit pattern (0xFFFF is -1 as i16).
 */
static int parse_integer(const struct cli_options *options, const char *text, uint64_t *bits,
                         const char **complaint) {
    const struct type_description *type = &types[options->type];
    uint64_t maximum = unsigned_maximum(type->bits);
    if (options->scale_given)
        return parse_scaled_integer(options, text, bits, complaint);
    if (text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        if (cli_parse_unsigned(text, 0, maximum, bits) != 0) {
            *complaint = "not a hex number that fits the type";
            return -1;
        }
        return 0;
    }
    if (text[0] == '-') {
        if (!type->is_signed) {
            *complaint = "negative, and the type is unsigned (use i16, i32 or i64)";
            return -1;
        }
        uint64_t magnitude;
        if (text[1] == '0' && (text[2] == 'x' || text[2] == 'X')) {
            *complaint = "a negative hex number; write the bit pattern (0xFFFF for -1 as i16)";
            return -1;
        }
        if (cli_parse_unsigned(text + 1, 0, maximum / 2 + 1, &magnitude) != 0) {
            *complaint = "not an integer in the range of the type";
            return -1;
        }
        *bits = (0 - magnitude) & maximum;
        return 0;
    }
    if (cli_parse_unsigned(text, 0, type->is_signed ? maximum / 2 : maximum, bits) != 0) {
        *complaint = "not an integer in the range of the type";
        return -1;
    }
    return 0;
}

static int encode_real(const struct cli_options *options, const char *text, uint16_t *registers,
                       const char **complaint) {
    double number;
    if (parse_real(text, &number) != 0) {
        *complaint = "not a number";
        return -1;
    }
    if (options->scale_given) {
        double scaled = number / options->scale;
        if (isfinite(number) && !isfinite(scaled)) {
            *complaint = "too large for the type once divided by --scale";
            return -1;
        }
        number = scaled;
    }
    if (options->type == CLI_TYPE_F32) {
        /* A double rounds to FLT_MAX up to half a float step above it (2^128 - 2^103 is the tie,
         * which rounds to even: infinity); only beyond that is it too large. The conversion is
         * done on the clamped value, since converting an out-of-range double is undefined. */
        const double float_limit = 340282356779733661637539395458142568448.0; /* 2^128 - 2^103 */
        if (isfinite(number) && fabs(number) >= float_limit) {
            *complaint = "too large for f32 (use f64)";
            return -1;
        }
        if (isfinite(number) && fabs(number) > FLT_MAX)
            number = copysign(FLT_MAX, number);
        mb_set_reg_f32(registers, (float)number, options->order);
        return 2;
    }
    mb_set_reg_f64(registers, number, options->order);
    return 4;
}

static int encode_hex(const struct cli_options *options, const char *text, uint16_t *registers,
                      const char **complaint) {
    const char *digits = text;
    if (digits[0] == '0' && (digits[1] == 'x' || digits[1] == 'X'))
        digits += 2;
    size_t length = strlen(digits);
    uint64_t value;
    char prefixed[8];
    if (length < 1 || length > 4 || snprintf(prefixed, sizeof prefixed, "0x%s", digits) < 0 ||
        cli_parse_unsigned(prefixed, 0, 0xFFFF, &value) != 0) {
        *complaint = "not a register in hex (1 to 4 hex digits, 0x optional)";
        return -1;
    }
    mb_set_reg_u16(registers, (uint16_t)value, options->order);
    return 1;
}

int cli_encode(const struct cli_options *options, const char *text, uint16_t *registers,
               size_t capacity, const char **complaint) {
    enum cli_type type = options->type;
    if (type == CLI_TYPE_ASCII) {
        size_t needed = (strlen(text) + 1) / 2;
        if (needed == 0) {
            *complaint = "empty text";
            return -1;
        }
        if (needed > capacity || mb_set_reg_string(registers, needed, options->order, text) < 0) {
            *complaint = "text runs past address 65535";
            return -1;
        }
        return (int)needed;
    }
    if (capacity < types[type].registers) {
        *complaint = "runs past address 65535";
        return -1;
    }
    if (type == CLI_TYPE_HEX)
        return encode_hex(options, text, registers, complaint);
    if (is_float_type(type))
        return encode_real(options, text, registers, complaint);

    uint64_t bits;
    if (parse_integer(options, text, &bits, complaint) != 0)
        return -1;
    switch (type) {
    case CLI_TYPE_U16:
    case CLI_TYPE_I16:
        mb_set_reg_u16(registers, (uint16_t)bits, options->order);
        return 1;
    case CLI_TYPE_U32:
    case CLI_TYPE_I32:
        mb_set_reg_u32(registers, (uint32_t)bits, options->order);
        return 2;
    default:
        mb_set_reg_u64(registers, bits, options->order);
        return 4;
    }
}
