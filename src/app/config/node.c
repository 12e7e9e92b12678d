/* SPDX-License-Identifier: MIT */
#include "app/config/node.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/common/duration.h"
#include "app/common/json.h"
#include "mbsec/error.h"

int yaml_error(const struct yaml_reader *reader, const yaml_node_t *node, const char *format, ...) {
    if (reader->error == NULL || reader->error_capacity == 0)
        return MB_ECONFIG;
    int used = snprintf(reader->error, reader->error_capacity, "%s:%zu:%zu: ", reader->file,
                        node->start_mark.line + 1, node->start_mark.column + 1);
    if (used >= 0 && (size_t)used < reader->error_capacity) {
        va_list arguments;
        va_start(arguments, format);
        vsnprintf(reader->error + used, reader->error_capacity - (size_t)used, format, arguments);
        va_end(arguments);
        /* Messages quote the file's values, and a double-quoted YAML string can hold any
         * character ("\n", "\e"): shown as '?', so that the message stays one line and cannot
         * write terminal escapes or forge log lines. */
        for (char *at = reader->error + used; *at != '\0'; at++)
            if ((unsigned char)*at < 0x20 || (unsigned char)*at == 0x7F)
                *at = '?';
    }
    return MB_ECONFIG;
}

static const char *scalar_text(const yaml_node_t *node) {
    return (const char *)node->data.scalar.value;
}

static int is_plain(const yaml_node_t *node) {
    return node->type == YAML_SCALAR_NODE && node->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

static int plain_is_one_of(const yaml_node_t *node, const char *const *words) {
    if (!is_plain(node))
        return 0;
    for (size_t i = 0; words[i] != NULL; i++)
        if (strcmp(scalar_text(node), words[i]) == 0)
            return 1;
    return 0;
}

static const char *const null_words[] = {"", "~", "null", "Null", "NULL", NULL};
static const char *const true_words[] = {"true", "True", "TRUE", NULL};
static const char *const false_words[] = {"false", "False", "FALSE", NULL};

/* The prefix "!!" stands for, to show tags as they were written. */
#define STANDARD_TAG_PREFIX "tag:yaml.org,2002:"

int yaml_check_tags(const struct yaml_reader *reader) {
    for (yaml_node_t *node = reader->document->nodes.start; node < reader->document->nodes.top;
         node++) {
        const char *tag = (const char *)node->tag;
        const char *expected = node->type == YAML_SCALAR_NODE     ? YAML_DEFAULT_SCALAR_TAG
                               : node->type == YAML_SEQUENCE_NODE ? YAML_DEFAULT_SEQUENCE_TAG
                                                                  : YAML_DEFAULT_MAPPING_TAG;
        if (tag != NULL && strcmp(tag, expected) != 0) {
            int standard = strncmp(tag, STANDARD_TAG_PREFIX, strlen(STANDARD_TAG_PREFIX)) == 0;
            return yaml_error(reader, node,
                              "the tag %s%.60s is not supported: the configuration gives "
                              "every value its type",
                              standard ? "!!" : "",
                              standard ? tag + strlen(STANDARD_TAG_PREFIX) : tag);
        }
    }
    return 0;
}

int yaml_is_null(const yaml_node_t *node) {
    return plain_is_one_of(node, null_words);
}

static int is_bool(const yaml_node_t *node) {
    return plain_is_one_of(node, true_words) || plain_is_one_of(node, false_words);
}

/* Up to 40 bytes of a scalar for a message, control characters shown as '?', so that the
 * message stays on one line. */
static void quote_scalar(const yaml_node_t *node, char *text, size_t capacity) {
    const unsigned char *value = node->data.scalar.value;
    size_t length = node->data.scalar.length;
    size_t shown = length > 40 ? 40 : length;
    size_t out = 0;
    if (capacity < 48)
        return;
    text[out++] = '"';
    for (size_t i = 0; i < shown; i++)
        text[out++] = (char)(value[i] < 0x20 || value[i] == 0x7F ? '?' : value[i]);
    if (shown < length) {
        memcpy(text + out, "...", 3);
        out += 3;
    }
    text[out++] = '"';
    text[out] = '\0';
}

/* What a node is, for "expected X, got Y" messages. */
static void describe(const yaml_node_t *node, char *text, size_t capacity) {
    char quoted[64];
    if (node->type == YAML_MAPPING_NODE) {
        snprintf(text, capacity, "a mapping");
    } else if (node->type == YAML_SEQUENCE_NODE) {
        snprintf(text, capacity, "a list");
    } else if (yaml_is_null(node)) {
        snprintf(text, capacity, "no value");
    } else if (is_bool(node)) {
        snprintf(text, capacity, "the boolean %s", scalar_text(node));
    } else {
        quote_scalar(node, quoted, sizeof quoted);
        snprintf(text, capacity, "%s%s", is_plain(node) ? "" : "the quoted string ", quoted);
    }
}

static int key_is_known(const char *key, const char *const *keys) {
    for (size_t i = 0; keys[i] != NULL; i++)
        if (strcmp(key, keys[i]) == 0)
            return 1;
    return 0;
}

/* Levenshtein distance, for "did you mean"; long words are never close. */
static size_t edit_distance(const char *a, const char *b) {
    size_t a_length = strlen(a), b_length = strlen(b);
    size_t previous[33], current[33];
    if (a_length > 32 || b_length > 32)
        return 99;
    for (size_t j = 0; j <= b_length; j++)
        previous[j] = j;
    for (size_t i = 1; i <= a_length; i++) {
        current[0] = i;
        for (size_t j = 1; j <= b_length; j++) {
            size_t substitute = previous[j - 1] + (a[i - 1] != b[j - 1]);
            size_t remove = previous[j] + 1, insert = current[j - 1] + 1;
            size_t best = substitute < remove ? substitute : remove;
            current[j] = best < insert ? best : insert;
        }
        memcpy(previous, current, (b_length + 1) * sizeof previous[0]);
    }
    return previous[b_length];
}

static int unknown_key(const struct yaml_reader *reader, const yaml_node_t *key_node,
                       const char *path, const char *const *keys) {
    char valid[512] = "", hint[80] = "";
    const char *key = scalar_text(key_node);
    /* Two edits turn any short word into another: only suggest what is plausibly a typo. */
    size_t used = 0, best_distance = strlen(key) <= 4 ? 2 : 3;
    char quoted[64];
    for (size_t i = 0; keys[i] != NULL; i++) {
        int written = snprintf(valid + used, sizeof valid - used, "%s%s", i ? ", " : "", keys[i]);
        if (written > 0 && (size_t)written < sizeof valid - used)
            used += (size_t)written;
        size_t distance = edit_distance(key, keys[i]);
        if (distance < best_distance) {
            best_distance = distance;
            snprintf(hint, sizeof hint, " (did you mean %s?)", keys[i]);
        }
    }
    quote_scalar(key_node, quoted, sizeof quoted);
    if (path[0] == '\0')
        return yaml_error(reader, key_node, "unknown key %s%s; valid keys: %s", quoted, hint,
                          valid);
    return yaml_error(reader, key_node, "unknown key %s in %s%s; valid keys: %s", quoted, path,
                      hint, valid);
}

int yaml_check_mapping(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                       const char *const *keys) {
    char got[96];
    if (yaml_is_null(node))
        return 0;
    if (node->type != YAML_MAPPING_NODE) {
        describe(node, got, sizeof got);
        if (path[0] == '\0')
            return yaml_error(reader, node, "expected a mapping of keys, got %s", got);
        return yaml_error(reader, node, "%s: expected a mapping of keys, got %s", path, got);
    }
    size_t count = yaml_mapping_size(node);
    for (size_t i = 0; i < count; i++) {
        const yaml_node_pair_t *pair = node->data.mapping.pairs.start + i;
        const yaml_node_t *key = yaml_document_get_node(reader->document, pair->key);
        if (key->type != YAML_SCALAR_NODE || yaml_is_null(key) ||
            strlen(scalar_text(key)) != key->data.scalar.length) {
            describe(key, got, sizeof got);
            return yaml_error(reader, key, "%s%skeys must be words, got %s", path,
                              path[0] ? ": " : "", got);
        }
        if (!key_is_known(scalar_text(key), keys))
            return unknown_key(reader, key, path, keys);
        for (size_t j = 0; j < i; j++) {
            const yaml_node_pair_t *earlier = node->data.mapping.pairs.start + j;
            const yaml_node_t *earlier_key = yaml_document_get_node(reader->document, earlier->key);
            if (strcmp(scalar_text(earlier_key), scalar_text(key)) == 0)
                return yaml_error(reader, key, "%s%skey \"%s\" given twice (first on line %zu)",
                                  path, path[0] ? ": " : "", scalar_text(key),
                                  earlier_key->start_mark.line + 1);
        }
    }
    return 0;
}

size_t yaml_mapping_size(const yaml_node_t *node) {
    if (node->type != YAML_MAPPING_NODE)
        return 0;
    return (size_t)(node->data.mapping.pairs.top - node->data.mapping.pairs.start);
}

void yaml_mapping_pair(const struct yaml_reader *reader, const yaml_node_t *node, size_t index,
                       const char **key, yaml_node_t **value) {
    const yaml_node_pair_t *pair = node->data.mapping.pairs.start + index;
    *key = scalar_text(yaml_document_get_node(reader->document, pair->key));
    *value = yaml_document_get_node(reader->document, pair->value);
}

yaml_node_t *yaml_mapping_key(const struct yaml_reader *reader, const yaml_node_t *node,
                              size_t index) {
    return yaml_document_get_node(reader->document, node->data.mapping.pairs.start[index].key);
}

int yaml_check_sequence(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                        size_t minimum, size_t maximum) {
    char got[96];
    if (node->type != YAML_SEQUENCE_NODE) {
        describe(node, got, sizeof got);
        return yaml_error(reader, node, "%s: expected a list, got %s", path, got);
    }
    size_t count = yaml_sequence_size(node);
    if (count < minimum)
        return yaml_error(reader, node, "%s: the list needs at least %zu item%s", path, minimum,
                          minimum == 1 ? "" : "s");
    if (count > maximum)
        return yaml_error(reader, node, "%s: %zu items is more than the %zu allowed", path, count,
                          maximum);
    return 0;
}

size_t yaml_sequence_size(const yaml_node_t *node) {
    if (node->type != YAML_SEQUENCE_NODE)
        return 0;
    return (size_t)(node->data.sequence.items.top - node->data.sequence.items.start);
}

yaml_node_t *yaml_sequence_item(const struct yaml_reader *reader, const yaml_node_t *node,
                                size_t index) {
    return yaml_document_get_node(reader->document, node->data.sequence.items.start[index]);
}

enum scan_status {
    SCAN_OK,
    SCAN_NOT_NUMBER,
    SCAN_NEGATIVE,
    SCAN_FRACTION,
    SCAN_LEADING_ZERO,
    SCAN_TOO_LARGE,
};

static int is_digit(char c) {
    return c >= '0' && c <= '9';
}

/* Something a reader would take for a number that is not a whole one: 1.5, 1e3, .5, 2.5e-3 */
static int looks_like_fraction(const char *text, size_t length) {
    int digits = 0, point_or_exponent = 0;
    if (!is_digit(text[0]) && text[0] != '.')
        return 0;
    for (size_t i = 0; i < length; i++) {
        if (is_digit(text[i]))
            digits = 1;
        else if (text[i] == '.' || text[i] == 'e' || text[i] == 'E')
            point_or_exponent = 1;
        else if ((text[i] != '+' && text[i] != '-') || (text[i - 1] != 'e' && text[i - 1] != 'E'))
            return 0;
    }
    return digits && point_or_exponent;
}

static enum scan_status scan_integer(const char *text, size_t length, uint64_t *value) {
    uint64_t result = 0;
    if (length == 0)
        return SCAN_NOT_NUMBER;
    if (text[0] == '-') {
        uint64_t ignored;
        return text[1] != '-' && scan_integer(text + 1, length - 1, &ignored) != SCAN_NOT_NUMBER
                   ? SCAN_NEGATIVE
                   : SCAN_NOT_NUMBER;
    }
    if (length > 2 && text[0] == '0' && (text[1] == 'x' || text[1] == 'X')) {
        for (size_t i = 2; i < length; i++) {
            int digit = json_hex_digit((unsigned char)text[i]);
            if (digit < 0)
                return SCAN_NOT_NUMBER;
            if (result > (UINT64_MAX >> 4))
                return SCAN_TOO_LARGE;
            result = result << 4 | (uint64_t)digit;
        }
        *value = result;
        return SCAN_OK;
    }
    for (size_t i = 0; i < length; i++) {
        if (!is_digit(text[i]))
            return looks_like_fraction(text, length) ? SCAN_FRACTION : SCAN_NOT_NUMBER;
    }
    if (length > 1 && text[0] == '0')
        return SCAN_LEADING_ZERO;
    for (size_t i = 0; i < length; i++) {
        uint64_t digit = (uint64_t)(text[i] - '0');
        if (result > (UINT64_MAX - digit) / 10)
            return SCAN_TOO_LARGE;
        result = result * 10 + digit;
    }
    *value = result;
    return SCAN_OK;
}

int yaml_integer(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                 uint64_t minimum, uint64_t maximum, const char *expected, uint64_t *value) {
    char range[64], got[96];
    uint64_t number = 0;
    if (expected == NULL) {
        snprintf(range, sizeof range, "an integer in %llu..%llu", (unsigned long long)minimum,
                 (unsigned long long)maximum);
        expected = range;
    }
    if (!is_plain(node) || yaml_is_null(node) || is_bool(node)) {
        describe(node, got, sizeof got);
        return yaml_error(reader, node, "%s: expected %s, got %s", path, expected, got);
    }
    const char *text = scalar_text(node);
    switch (scan_integer(text, node->data.scalar.length, &number)) {
    case SCAN_OK:
        break;
    case SCAN_NEGATIVE:
        return yaml_error(reader, node, "%s: %s is negative; expected %s", path, text, expected);
    case SCAN_FRACTION:
        return yaml_error(reader, node, "%s: %s is not a whole number; expected %s", path, text,
                          expected);
    case SCAN_LEADING_ZERO:
        return yaml_error(reader, node,
                          "%s: %s has a leading zero (octal in YAML 1.1); write it in "
                          "decimal without the zero, or in hex as 0x...",
                          path, text);
    case SCAN_TOO_LARGE:
        return yaml_error(reader, node, "%s: %s is out of range; expected %s", path, text,
                          expected);
    default:
        describe(node, got, sizeof got);
        return yaml_error(reader, node, "%s: expected %s, got %s", path, expected, got);
    }
    if (number < minimum || number > maximum)
        return yaml_error(reader, node, "%s: %s is out of range; expected %s", path, text,
                          expected);
    *value = number;
    return 0;
}

int integer_parse(const char *text, size_t length, uint64_t *value) {
    return scan_integer(text, length, value) == SCAN_OK ? 0 : -1;
}

int yaml_is_word(const yaml_node_t *node, const char *word) {
    return node->type == YAML_SCALAR_NODE && strcmp(scalar_text(node), word) == 0 &&
           node->data.scalar.length == strlen(word);
}

int yaml_bool(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
              int *value) {
    char got[96];
    if (plain_is_one_of(node, true_words)) {
        *value = 1;
        return 0;
    }
    if (plain_is_one_of(node, false_words)) {
        *value = 0;
        return 0;
    }
    describe(node, got, sizeof got);
    return yaml_error(reader, node, "%s: expected true or false, got %s", path, got);
}

int yaml_string(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                size_t maximum_length, const char **text, size_t *length) {
    char got[96];
    if (node->type != YAML_SCALAR_NODE || yaml_is_null(node)) {
        describe(node, got, sizeof got);
        return yaml_error(reader, node, "%s: expected a string, got %s", path, got);
    }
    size_t size = node->data.scalar.length;
    if (strlen(scalar_text(node)) != size)
        return yaml_error(reader, node, "%s: the string holds a NUL character", path);
    if (size > maximum_length)
        return yaml_error(reader, node, "%s: %zu bytes is longer than the %zu allowed", path, size,
                          maximum_length);
    *text = scalar_text(node);
    *length = size;
    return 0;
}

int yaml_choice(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                const char *const *choices, size_t *index) {
    char valid[256] = "", got[96];
    size_t used = 0;
    for (size_t i = 0; choices[i] != NULL; i++) {
        if (yaml_is_word(node, choices[i])) {
            *index = i;
            return 0;
        }
        int written =
            snprintf(valid + used, sizeof valid - used, "%s%s", i ? ", " : "", choices[i]);
        if (written > 0 && (size_t)written < sizeof valid - used)
            used += (size_t)written;
    }
    describe(node, got, sizeof got);
    return yaml_error(reader, node, "%s: expected one of %s, got %s", path, valid, got);
}

int yaml_duration(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                  uint32_t *milliseconds) {
    enum duration_status status = DURATION_SYNTAX;
    if (node->type == YAML_SCALAR_NODE && !yaml_is_null(node) && !is_bool(node))
        status = duration_parse(scalar_text(node), node->data.scalar.length, DURATION_BARE_SECONDS,
                                milliseconds);
    if (status == DURATION_OK)
        return 0;
    char got[96], message[256];
    describe(node, got, sizeof got);
    duration_message(message, sizeof message, path, got, DURATION_BARE_SECONDS, status);
    return yaml_error(reader, node, "%s", message);
}

/* ---- one-line summaries ---- */

struct flow_writer {
    char *text;
    size_t capacity;
    size_t used;
    int full;
};

static void flow_put(struct flow_writer *writer, const char *piece, size_t length) {
    /* Room is kept for "..." and the terminator, so that a cut line says it was cut. */
    if (writer->full)
        return;
    if (writer->used + length + 4 > writer->capacity) {
        writer->full = 1;
        return;
    }
    memcpy(writer->text + writer->used, piece, length);
    writer->used += length;
}

static void flow_node(const struct yaml_reader *reader, const yaml_node_t *node,
                      struct flow_writer *writer, int depth) {
    if (writer->full)
        return; /* aliases can make a small file a huge tree: stop walking it too */
    if (node == NULL || depth > 16) {
        flow_put(writer, "...", 3);
        return;
    }
    if (node->type == YAML_SCALAR_NODE) {
        int quoted = node->data.scalar.style != YAML_PLAIN_SCALAR_STYLE;
        if (quoted)
            flow_put(writer, "\"", 1);
        for (size_t i = 0; i < node->data.scalar.length; i++) {
            char c = (char)node->data.scalar.value[i];
            if ((unsigned char)c < 0x20 || c == 0x7F)
                c = '?';
            if (quoted && (c == '"' || c == '\\'))
                flow_put(writer, "\\", 1);
            flow_put(writer, &c, 1);
        }
        if (quoted)
            flow_put(writer, "\"", 1);
    } else if (node->type == YAML_SEQUENCE_NODE) {
        flow_put(writer, "[", 1);
        for (size_t i = 0; i < yaml_sequence_size(node); i++) {
            if (i > 0)
                flow_put(writer, ", ", 2);
            flow_node(reader, yaml_sequence_item(reader, node, i), writer, depth + 1);
        }
        flow_put(writer, "]", 1);
    } else if (node->type == YAML_MAPPING_NODE) {
        flow_put(writer, "{ ", 2);
        for (size_t i = 0; i < yaml_mapping_size(node); i++) {
            const yaml_node_pair_t *pair = node->data.mapping.pairs.start + i;
            if (i > 0)
                flow_put(writer, ", ", 2);
            flow_node(reader, yaml_document_get_node(reader->document, pair->key), writer,
                      depth + 1);
            flow_put(writer, ": ", 2);
            flow_node(reader, yaml_document_get_node(reader->document, pair->value), writer,
                      depth + 1);
        }
        flow_put(writer, " }", 2);
    }
}

void yaml_flow(const struct yaml_reader *reader, const yaml_node_t *node, char *text,
               size_t capacity) {
    struct flow_writer writer = {.text = text, .capacity = capacity};
    if (capacity < 4) {
        if (capacity > 0)
            text[0] = '\0';
        return;
    }
    flow_node(reader, node, &writer, 0);
    if (writer.full) {
        memcpy(text + writer.used, "...", 3);
        writer.used += 3;
    }
    text[writer.used] = '\0';
}

char *yaml_path_from_file(const struct yaml_reader *reader, const char *text, size_t length) {
    const char *slash = strrchr(reader->file, '/');
    size_t directory_length =
        text[0] == '/' || slash == NULL ? 0 : (size_t)(slash - reader->file) + 1;
    char *joined = malloc(directory_length + length + 1);
    if (joined == NULL)
        return NULL;
    memcpy(joined, reader->file, directory_length);
    memcpy(joined + directory_length, text, length);
    joined[directory_length + length] = '\0';
    return joined;
}

/* ---- addresses ---- */

const char *address_problem(const char *address) {
    const char *colon = strrchr(address, ':');
    if (strpbrk(address, " \t\r\n") != NULL)
        return "it holds a space";
    if (colon == NULL)
        return "expected host:port, such as 0.0.0.0:502 or [::]:502";
    size_t host_length = (size_t)(colon - address);
    if (host_length == 0)
        return "the host is missing: 0.0.0.0:502 listens on every IPv4 address, [::]:502 on "
               "every IPv6 one";
    if (address[0] == '[') {
        if (host_length < 3 || address[host_length - 1] != ']' ||
            memchr(address + 1, '[', host_length - 1) != NULL ||
            memchr(address, ']', host_length - 1) != NULL)
            return "an IPv6 host goes in brackets: [::1]:502";
    } else if (memchr(address, ':', host_length) != NULL || memchr(address, ']', host_length)) {
        return "an IPv6 host goes in brackets: [::1]:502";
    }
    const char *port = colon + 1;
    size_t port_length = strlen(port);
    unsigned long value = 0;
    if (port_length == 0 || port_length > 5)
        return "the port must be a number 0..65535";
    for (size_t i = 0; i < port_length; i++) {
        if (port[i] < '0' || port[i] > '9')
            return "the port must be a number 0..65535";
        value = value * 10 + (unsigned long)(port[i] - '0');
    }
    if (value > 65535)
        return "the port must be a number 0..65535";
    return NULL;
}
