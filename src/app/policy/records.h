/* SPDX-License-Identifier: MIT */
/*
 * The audit-record reader of `mbsec policy learn` and `mbsec policy test`: the requests of an
 * mbsec gateway audit file (JSON lines, docs/gateway.md "Audit records"), turned back into
 * request PDUs with who sent them, and handed to a visitor (observed.h) in file order.
 */
#ifndef MBSEC_APP_POLICY_RECORDS_H
#define MBSEC_APP_POLICY_RECORDS_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "app/policy/observed.h"
#include "mbsec/pdu.h"

/* Lines longer than this (bytes before the newline, a CR included) are skipped and counted:
 * the gateway writes at most 4 KiB a record. */
#define RECORDS_LINE_MAX 65536

/* A role longer than this is refused (a certificate carries at most 127 bytes). */
#define RECORDS_ROLE_MAX 255

/* Values a record may list (FC 15 writes at most 1968 coils). */
#define RECORDS_VALUES_MAX 1968

/* After this many lines that are not blank, none of them an audit record, the input is not an
 * audit file. */
#define RECORDS_PROBE_LINES 100

struct records_stats {
    uint64_t lines;           /* lines read */
    uint64_t bytes;           /* bytes read */
    uint64_t requests;        /* requests handed to the visitor */
    uint64_t skipped_types;   /* records of other types (denied, would_deny, alert, sanity, ...) */
    uint64_t malformed;       /* lines that are not one JSON object, or lack what a request
                                 record needs */
    uint64_t not_rebuildable; /* request records the reader cannot turn into a PDU (FC 20/21/43/
                                 other without "pdu", "malformed":true, fields that do not
                                 encode) */
    uint64_t values_partial;  /* requests delivered with values_partial set */
    uint64_t too_long;        /* lines over RECORDS_LINE_MAX, skipped */
    uint64_t first_bad_line;  /* line number of the first malformed line, 0 none */
    uint64_t blank;           /* empty or whitespace-only lines, skipped without a count */
    uint64_t would_deny;      /* requests delivered that carry "would_deny": true (forwarded
                                 because the refusing rule was in monitor mode) */
    /* Why the first malformed line is (static text, NULL when none), for the message. */
    const char *first_bad_reason;
};

/*
 * Reads an mbsec gateway audit file (JSON lines; "-" is standard input; a file compressed with
 * gzip is not handled, and said so when its first bytes are 1f 8b) and calls visit() for every
 * request record of type "read" or "write", in file order. *stats is set from zero and filled
 * as far as the reading went (stats may be NULL).
 *
 * Returns 0, the visitor's nonzero value (reading stops there), or -1 with one line in `error`
 * (the file cannot be opened or read; it is compressed; it is not an audit file: it has lines
 * with text, and not one of the first RECORDS_PROBE_LINES of them is a JSON object with a string
 * "type"; an empty file, or one of blank lines, is an audit file without records). Memory stays
 * bounded whatever the file size: one buffer of about 2 x RECORDS_LINE_MAX bytes for the whole
 * read.
 *
 * A key the reader uses, given twice in a line, makes a request record malformed (the gateway
 * never repeats one). A request's role, PDU and origin are valid during its visit only.
 */
int records_read(const char *path, observed_visit visit, void *data, struct records_stats *stats,
                 char *error, size_t capacity);

/* ---- one line: internal, exposed for the fuzz target ---- */

enum records_kind {
    RECORDS_BLANK = 1,       /* empty, or whitespace only */
    RECORDS_MALFORMED,       /* not one JSON object with a string "type", or a request record
                                whose fields are missing, of the wrong type or out of range */
    RECORDS_OTHER_TYPE,      /* a record, but not of type "read" or "write" */
    RECORDS_NOT_REBUILDABLE, /* a request record whose PDU cannot be rebuilt */
    RECORDS_REQUEST,         /* a request: the PDU and identity are in struct records_line */
};

/* One line as records_parse_line() read it. The caller owns it; nothing points outside it. */
struct records_line {
    const char *reason; /* static text: why MALFORMED or NOT_REBUILDABLE, else NULL */
    int record;         /* 1: one JSON object with a string "type" (whatever else is wrong) */
    /* who, for RECORDS_REQUEST */
    int64_t time_us; /* 0: absent or not RFC 3339 */
    int has_role;
    char role[RECORDS_ROLE_MAX + 1];
    int tls;
    struct sockaddr_storage address;
    socklen_t address_length; /* 0: absent or not "address:port" */
    /* what, for RECORDS_REQUEST */
    uint8_t unit;
    uint8_t pdu[MB_PDU_MAX];
    size_t pdu_length;
    int values_partial;
    int would_deny;     /* the record says "would_deny": true */
    int from_pdu_field; /* 1: the record's "pdu" field as it is; 0: rebuilt from its fields,
                           which mb_request_decode() then accepts */
    /* the values of the line's "values" array, kept here so that no line allocates */
    uint16_t values[RECORDS_VALUES_MAX];
    size_t value_count;
};

/* Reads one line (without its newline; a CR before it is whitespace) of `length` bytes, reading
 * nothing outside them. Returns an enum records_kind. */
int records_parse_line(const void *text, size_t length, struct records_line *line);

#endif
