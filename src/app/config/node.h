/* SPDX-License-Identifier: MIT */
/*
 * Typed values out of a libyaml document, each failure reported as one line
 * "FILE:LINE:COLUMN: path: what is wrong" in the reader's error buffer. The configuration schema
 * (config.c, units.c) is written with these; nothing here knows the schema.
 *
 * `path` arguments name where a node sits, for messages: "limits.idle_timeout", "units[2].id";
 * "" is the top level. Every function returns 0 or MB_ECONFIG (with the message written).
 */
#ifndef MBSEC_CONFIG_NODE_H
#define MBSEC_CONFIG_NODE_H

#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

struct yaml_reader {
    const char *file; /* the name messages start with */
    yaml_document_t *document;
    char *error; /* may be NULL */
    size_t error_capacity;
};

/* Writes "FILE:LINE:COLUMN: " and the message, for the position where `node` starts. Returns
 * MB_ECONFIG. */
int yaml_error(const struct yaml_reader *reader, const yaml_node_t *node, const char *format, ...)
    __attribute__((format(printf, 3, 4)));

/* Refuses nodes carrying an explicit tag other than the defaults (!!str, !!seq, !!map): the
 * schema gives every value its type. Walks the document's node table, so aliases cost nothing. */
int yaml_check_tags(const struct yaml_reader *reader);

/* 1 when the node is YAML's null: an empty plain scalar, "~" or "null". */
int yaml_is_null(const yaml_node_t *node);

/*
 * Checks that `node` is a mapping (null counts as an empty one) whose keys are plain scalars,
 * each one of `keys` (a NULL-terminated list), none given twice. Unknown keys are named, with
 * the valid ones listed.
 */
int yaml_check_mapping(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                       const char *const *keys);

/* The number of pairs of a checked mapping (0 for null). */
size_t yaml_mapping_size(const yaml_node_t *node);

/* The key text and value node of pair `index` of a checked mapping. */
void yaml_mapping_pair(const struct yaml_reader *reader, const yaml_node_t *node, size_t index,
                       const char **key, yaml_node_t **value);

/* Checks that `node` is a list of minimum..maximum items. */
int yaml_check_sequence(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                        size_t minimum, size_t maximum);

/* The number of items of a list. */
size_t yaml_sequence_size(const yaml_node_t *node);

/* Item `index` of a checked list. */
yaml_node_t *yaml_sequence_item(const struct yaml_reader *reader, const yaml_node_t *node,
                                size_t index);

/*
 * A plain scalar holding a whole number, decimal ("502") or hexadecimal ("0x1F6"), within
 * minimum..maximum. Negative numbers, fractions, leading zeros (octal in YAML 1.1), booleans,
 * quoted strings, lists and mappings are refused. `expected` says what the key takes, for
 * messages ("a unit id 0..255 or any"); NULL gives "an integer in MIN..MAX".
 */
int yaml_integer(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                 uint64_t minimum, uint64_t maximum, const char *expected, uint64_t *value);

/* Parses a whole number written in decimal or as 0x hex, as yaml_integer() accepts it.
 * Returns 0, or -1 for anything else (and for numbers past UINT64_MAX). */
int integer_parse(const char *text, size_t length, uint64_t *value);

/* 1 when the node is a scalar spelling `word` exactly. */
int yaml_is_word(const yaml_node_t *node, const char *word);

/* A plain true or false (also True, TRUE, False, FALSE). */
int yaml_bool(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
              int *value);

/*
 * A scalar that is not null, as text of at most `maximum_length` bytes without NUL bytes. The
 * text belongs to the document (NUL-terminated): copy it before the document goes.
 */
int yaml_string(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                size_t maximum_length, const char **text, size_t *length);

/* A plain scalar that is one of `choices` (NULL-terminated); *index is its position. */
int yaml_choice(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                const char *const *choices, size_t *index);

/* A duration (app/common/duration.h; a bare number is seconds) as a plain or quoted scalar. */
int yaml_duration(const struct yaml_reader *reader, const yaml_node_t *node, const char *path,
                  uint32_t *milliseconds);

/*
 * Writes `node` on one line in YAML's flow style ("[operator, engineer]", "{ holding_registers:
 * 100-110 }"), scalars as written (quoted ones in double quotes), control characters as '?',
 * cut with "..." when it does not fit `capacity`. For summaries of what a file says.
 */
void yaml_flow(const struct yaml_reader *reader, const yaml_node_t *node, char *text,
               size_t capacity);

/*
 * A path given in the file, as an allocated string: a relative one is taken from the directory
 * of the configuration file (reader->file), so that a file and what it names can move together
 * whatever directory the daemon starts in. NULL when out of memory.
 */
char *yaml_path_from_file(const struct yaml_reader *reader, const char *text, size_t length);

/* The key node of pair `index` of a checked mapping (for mappings whose keys are not words). */
yaml_node_t *yaml_mapping_key(const struct yaml_reader *reader, const yaml_node_t *node,
                              size_t index);

/* Why `address` is not "host:port" (IPv6 hosts in brackets, port 0..65535), or NULL when it
 * is: a phrase for messages ("the port must be a number 0..65535"). */
const char *address_problem(const char *address);

#endif
