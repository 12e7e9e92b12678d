/* SPDX-License-Identifier: MIT */
/*
 * Authorization: which client may send which request (Modbus/TCP Security's role-based
 * authorization, and the firewall of the gateway).
 *
 * A policy is an ordered list of rules, compiled once by mb_policy_create() and read-only
 * afterwards: any number of threads may call mb_policy_decide() on one policy at the same time.
 * Deciding allocates nothing and does no I/O; it decodes the request and scans the rules.
 *
 * A policy is reference counted, so that a program can hand a new one to each of its threads
 * and let the old one go when the last thread has stopped deciding with it: mb_policy_create()
 * and mb_policy_copy() give the caller one reference, mb_policy_ref() takes one more, and
 * mb_policy_destroy() drops one and frees the policy with the last. Only taking and dropping
 * references touch the count (atomically); deciding does not.
 *
 * How a request is decided
 *
 *   1. The request is split into the parts it touches (below). Each part goes down the rule
 *      list on its own; the first rule that matches it decides it; a part that no rule matches
 *      is denied with exception 01 (default deny).
 *   2. The request is allowed when every part is. Otherwise the most severe decision of its
 *      parts is taken (close, then drop, then deny), the first part on a tie; so an FC 23
 *      whose write is allowed and whose read is denied is denied, and the reason names the
 *      read.
 *   3. Monitor mode (a rule's `monitor`, or the default's in struct mb_policy_settings): what
 *      is enforced is what the policy without its monitored rules decides, so monitor mode
 *      never weakens enforcement. A part whose first matching rule is in monitor mode is
 *      refused, as enforced, when the first rule after it that is not in monitor mode refuses
 *      it, or when none matches and the default deny is enforced; otherwise the monitored
 *      rule reports it (a monitored refusal). A request with any part refused as enforced is
 *      refused; one with only monitored refusals says `monitor` (serve it, report the most
 *      severe of them).
 *
 * The parts of each function code (a "table part" has a table and an address range; a "device
 * part" has the pseudo-table `device` and no address):
 *
 *   FC 1, 2, 3, 4       read of coils, discrete inputs, holding or input registers,
 *                       address .. address + quantity - 1
 *   FC 5, 15            write of coils (values: 0 off, 1 on)
 *   FC 6, 16, 22        write of holding registers (FC 22: see value limits)
 *   FC 23               two parts: the write of holding registers (its write range and
 *                       values) and the read (its read range); each is decided on its own,
 *                       possibly by different rules
 *   FC 24               read of the `fifos` table at the FIFO pointer address P; FC 24 also
 *                       returns holding registers P .. P + 31 (the count register and up to 31
 *                       values; cut at 65535), so a rule on holding registers matches it too,
 *                       as a read of that range (inside for a rule that allows, touching for
 *                       one that refuses): a guard on holding registers covers FC 24
 *   FC 20, 21           one part per sub-request: read/write of the `files` table, file
 *                       number and records record .. record + length - 1 (a sub-request of
 *                       length 0, which a server answers 02, is judged as touching its first
 *                       record, and in FC 21 as writing the value 0)
 *   FC 7, 11, 12, 17    read of the device
 *   FC 8                the device; sub-functions 01 (restart communications), 03 (change ASCII
 *                       delimiter), 04 (force listen-only), 0A (clear counters) and 14 (clear
 *                       overrun counter) are writes, the others reads
 *   FC 43/14            read of the device; FC 43/13 (CANopen) read and write of the device
 *   other codes         (user-defined, reserved) read and write of the device
 *
 * A request that does not decode (mb_request_decode() fails) is one part of no known table, with
 * its function code, read or write as the code implies (read and write when unknown), and the
 * FC 8 sub-function or FC 43 MEI type when the bytes carry a defined one: only rules without
 * tables can match it, and when it writes, only those without a value limit. Allowing it lets
 * the server answer it (with 03, usually); denying it answers 01.
 *
 * When a rule matches a part: every condition the rule gives holds (a condition left out holds
 * always), namely
 *
 *   who     role:    `roles` (exact, case-sensitive) or MB_POLICY_ROLE_ANY (any role a
 *                    certificate carries) or MB_POLICY_ROLE_NONE (no role: plain TCP, or a
 *                    certificate without one). The NULL role matches only ROLE_NONE.
 *           source:  the client's address is inside one of `sources` (CIDR). An IPv4 client
 *                    is an IPv4 client however the socket saw it: an IPv4-mapped IPv6 address
 *                    (::ffff:192.0.2.7) matches IPv4 networks only, and a mapped network
 *                    (::ffff:192.0.2.0/120) is the IPv4 one (192.0.2.0/24).
 *           transport: MB_POLICY_TLS_ONLY or MB_POLICY_PLAIN_ONLY (`tls: true` or `false` in
 *                    the configuration).
 *           Roles are compared byte for byte: the Modbus/TCP Security specification gives
 *           them no case rule, they come from signed certificates, and folding the case of
 *           UTF-8 text depends on a locale. A refusal for a role that differs only in
 *           (ASCII) case from one a rule names says so in its reason.
 *           A rule must name who it applies to: roles, sources or both (everybody is
 *           MB_POLICY_ROLE_ANY | MB_POLICY_ROLE_NONE, or the sources 0.0.0.0/0 and ::/0).
 *   what    unit:    the unit id is in `units`.
 *           function: the function code is in `functions` (or the preset's); for FC 8 the
 *                    sub-function is in `diagnostics`, for FC 43 the MEI type in
 *                    `encapsulated`.
 *           access:  the part's access (read, write, or both for unknown ones) is within
 *                    `access`.
 *           tables:  when the rule grants tables, the part's table is one of them, and for a
 *                    rule that allows, the part's whole address range lies inside one of the
 *                    table's ranges; for a rule that refuses (deny, drop, close), it touches
 *                    one of them, so that a guard on some addresses cannot be slipped past by
 *                    a request that also covers the addresses next to them. Files: the file
 *                    number against `ranges`, the records against `records`. Grant `device`
 *                    for the device parts; a rule without tables covers every table and the
 *                    device.
 *           values:  (rules that allow only) with a value limit, a write part matches only if
 *                    it is a table write and every value it writes lies inside
 *                    value_min..value_max (registers as unsigned 16-bit numbers, coils as 0 or
 *                    1). An FC 22 mask write matches when every result it can produce does:
 *                    (OR & ~AND) .. (OR & ~AND) | AND. Reads are not limited by values.
 */
#ifndef MBSEC_POLICY_H
#define MBSEC_POLICY_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mbsec/error.h"
#include "mbsec/export.h"

struct mb_request; /* mbsec/pdu.h */

#ifdef __cplusplus
extern "C" {
#endif

/* Compiled rules: immutable after creation, safe to read from any number of threads at once,
 * and reference counted (above). */
struct mb_policy;

/* ---- deciding ---- */

/* Who sent a request. */
struct mb_policy_identity {
    const char *role;               /* Modbus/TCP Security role from the client certificate;
                                       NULL: none (plain TCP, or a certificate without one) */
    int tls;                        /* 1: the request came over TLS */
    const struct sockaddr *address; /* the client's source address (AF_INET or AF_INET6);
                                       NULL: unknown, and then no rule with sources matches */
    socklen_t address_length;
    int explain; /* 1: write the reason for allowed reads too (debug logs, tests) */
};

enum mb_policy_action {
    MB_POLICY_ALLOW = 1,
    MB_POLICY_DENY = 2,  /* answer with an exception (01 unless the rule says otherwise) */
    MB_POLICY_DROP = 3,  /* send no answer */
    MB_POLICY_CLOSE = 4, /* close the connection */
};

struct mb_policy_decision {
    enum mb_policy_action action;
    uint8_t exception;     /* with DENY: the exception to answer, 01 unless the rule says
                              otherwise; 0 with the other actions */
    int rule;              /* index of the deciding rule in the array given to
                              mb_policy_create(), -1 when nothing matched (default deny) */
    const char *rule_name; /* the rule's name (owned by the policy), or "default" */
    unsigned access;       /* what the request does: MB_POLICY_READ, MB_POLICY_WRITE or both,
                              as mb_policy_request_access() says */
    /* 1: the refusal described (action DENY, DROP or CLOSE, exception, rule) comes from a rule
     * or default deny in monitor mode: the caller should serve the request as if allowed and
     * report what enforcement would have done. Never 1 when what is enforced refuses any part of
     * the request (an enforced rule, before or after a monitored one, or an enforced default
     * deny): enforced refusals come before monitored ones, whatever their severity. 0 for every
     * decision of a policy without monitor mode. */
    int monitor;
    /* One line for the audit record, printable ASCII: who, what, which rule, e.g. "role
     * 'operator' from 192.0.2.7: write holding registers 100..101 on unit 1 (FC 16) matched no
     * rule (default deny)"; the role is cut at 32 bytes, odd characters shown as '?'. Empty for
     * an allowed request that only reads (unless the identity asks to `explain`): nobody
     * audits those, and deciding is several times faster without writing it. When nothing
     * matched and the client's role differs only in case (ASCII) from a role a rule names, the
     * reason ends with "; role 'Operator' differs only in case from role 'operator' of rule
     * 'operators' (roles are case-sensitive)". */
    char reason[256];
};

/*
 * Decides one request. `pdu` is the request PDU as received, `pdu_length` bytes (it may not
 * decode: see the top of this file; an empty one is function code 0). Fills *decision and
 * returns 0; never fails for well-formed arguments, and returns MB_EINVAL only when an argument
 * is NULL (*decision is then a default deny, when `decision` itself is not NULL). Allocates
 * nothing; decision->rule_name stays valid as long as the policy.
 */
MB_API int mb_policy_decide(const struct mb_policy *policy, const struct mb_policy_identity *who,
                            uint8_t unit_id, const uint8_t *pdu, size_t pdu_length,
                            struct mb_policy_decision *decision);

/*
 * The same for a request the caller decoded already (a server hands its handler the decoding):
 * `request` is mb_request_decode()'s result for exactly `pdu` and `pdu_length`, or NULL when
 * that failed. The decision is the one mb_policy_decide() makes, without decoding again.
 */
MB_API int mb_policy_decide_decoded(const struct mb_policy *policy,
                                    const struct mb_policy_identity *who, uint8_t unit_id,
                                    const uint8_t *pdu, size_t pdu_length,
                                    const struct mb_request *request,
                                    struct mb_policy_decision *decision);

/*
 * What a request does, by the parts listed at the top of this file: MB_POLICY_READ,
 * MB_POLICY_WRITE or both (both for a NULL pdu). FC 8 return query data (00) reads; FC 8
 * restart communications (01) writes; FC 23 does both. For audit trails that keep writes.
 */
MB_API unsigned mb_policy_request_access(const uint8_t *pdu, size_t pdu_length);
/* The same for a request decoded already (`request` as for mb_policy_decide_decoded()). */
MB_API unsigned mb_policy_decoded_access(const uint8_t *pdu, size_t pdu_length,
                                         const struct mb_request *request);

/* Drops one reference to a policy, and frees it when that was the last one (NULL is a no-op).
 * The caller may not decide with it afterwards; holders of other references still may.
 * Thread-safe: references to one policy may be dropped and taken in any threads at once. */
MB_API void mb_policy_destroy(struct mb_policy *policy);

/* Takes another reference to `policy` (one more mb_policy_destroy() to call), for a program
 * that hands a policy to another thread to decide with and let go of in its own time. An atomic
 * increment, thread-safe. Returns `policy` (NULL for NULL). */
MB_API struct mb_policy *mb_policy_ref(struct mb_policy *policy);

/* ---- building ---- */

#define MB_POLICY_MAX_RULES 1024
#define MB_POLICY_MAX_LIST 256 /* roles, sources, units, functions, ranges of a table */
#define MB_POLICY_MAX_NAME 64  /* bytes of a rule name */
#define MB_POLICY_MAX_ROLE 255 /* bytes of a role in a rule */

/* Tables a rule can grant. */
enum mb_policy_table {
    MB_POLICY_COILS = 0,             /* FC 1, 5, 15 */
    MB_POLICY_DISCRETE_INPUTS = 1,   /* FC 2 */
    MB_POLICY_HOLDING_REGISTERS = 2, /* FC 3, 6, 16, 22, 23 */
    MB_POLICY_INPUT_REGISTERS = 3,   /* FC 4 */
    MB_POLICY_FILES = 4,             /* FC 20, 21: ranges of file numbers */
    MB_POLICY_FIFOS = 5,             /* FC 24: ranges of FIFO pointer addresses (and see above) */
    MB_POLICY_DEVICE = 6,            /* FC 7, 8, 11, 12, 17, 43, user-defined: no addresses */
};
#define MB_POLICY_TABLES 7

/* Access bits. */
#define MB_POLICY_READ 1u
#define MB_POLICY_WRITE 2u

/* Role flags. */
#define MB_POLICY_ROLE_NONE 1u /* the request carries no role */
#define MB_POLICY_ROLE_ANY 2u  /* the request carries a role, whichever */

/* FC 43 MEI type bits for struct mb_policy_rule.encapsulated. */
#define MB_POLICY_MEI_DEVICE_ID 1u /* 43/14, read device identification */
#define MB_POLICY_MEI_CANOPEN 2u   /* 43/13, CANopen general reference */

enum mb_policy_transport {
    MB_POLICY_TLS_OR_PLAIN = 0, /* no condition */
    MB_POLICY_TLS_ONLY = 1,
    MB_POLICY_PLAIN_ONLY = 2,
};

/*
 * Shorthands for a rule's functions and access (they cannot be combined with `functions`,
 * `diagnostics`, `encapsulated` or `access`, but can with units, tables and values):
 *   READ_ONLY   the read part of every public function code (1-8, 11, 12, 15-17, 20-24,
 *               43/14): reads of every table, FC 24, the FC 8 sub-functions that read, 7, 11,
 *               12, 17, 43/14, and the read part of FC 23.
 *   READ_WRITE  every part of every public function code, except FC 8 restart communications
 *               (01) and force listen-only (04).
 * Neither covers FC 43/13 (CANopen) nor user-defined function codes: name those.
 */
enum mb_policy_preset {
    MB_POLICY_PRESET_NONE = 0,
    MB_POLICY_READ_ONLY = 1,
    MB_POLICY_READ_WRITE = 2,
};

/* A range of numbers, both ends included. */
struct mb_policy_range {
    uint16_t first;
    uint16_t last;
};

/* A source network (CIDR), as mb_policy_source_parse() makes it. */
struct mb_policy_source {
    int family;          /* AF_INET or AF_INET6 */
    uint8_t prefix;      /* 0..32 or 0..128 */
    uint8_t address[16]; /* network byte order; 4 bytes used for AF_INET; bits past the prefix
                            are 0 */
};

/* One table a rule grants. */
struct mb_policy_grant {
    int granted;                          /* 1: the rule covers this table */
    const struct mb_policy_range *ranges; /* addresses (file numbers for files; none for the
                                             device) */
    size_t range_count;                   /* 0: every address */
};

/*
 * One rule. Zero-initialise, then set what the rule needs: every list left empty and every
 * field left 0 is a condition that holds always, except that a rule must name who it applies
 * to (roles, role_flags or sources). mb_policy_create() copies everything it needs.
 */
struct mb_policy_rule {
    const char *name;             /* required: 1..64 bytes of letters, digits, '-', '_', '.',
                                     unique in the policy; "default" is reserved */
    enum mb_policy_action action; /* required */
    uint8_t exception;            /* with DENY: the exception to answer (0 means 01); must be 0
                                     with the other actions */
    /* who */
    const char *const *roles; /* role names, each 1..255 bytes */
    size_t role_count;
    unsigned role_flags; /* MB_POLICY_ROLE_NONE, MB_POLICY_ROLE_ANY */
    const struct mb_policy_source *sources;
    size_t source_count;
    enum mb_policy_transport transport;
    /* what */
    const struct mb_policy_range *units; /* unit id ranges, 0..255; none: every unit */
    size_t unit_count;
    enum mb_policy_preset preset;
    const uint8_t *functions; /* function codes 1..127; none: every function code */
    size_t function_count;
    uint32_t diagnostics;  /* FC 8: bit n allows sub-function n (defined ones only); 0: all */
    unsigned encapsulated; /* FC 43: MB_POLICY_MEI_* bits; 0: both */
    unsigned access;       /* MB_POLICY_READ | MB_POLICY_WRITE; 0: both */
    struct mb_policy_grant tables[MB_POLICY_TABLES]; /* none granted: no table condition */
    const struct mb_policy_range *records; /* with files: record numbers; none: every record */
    size_t record_count;
    int value_limit;    /* 1: writes only of values in value_min..value_max */
    uint16_t value_min; /* registers 0..65535, coils 0 (off) or 1 (on) */
    uint16_t value_max;
    int monitor; /* 1: monitor mode: a refusal by this rule is reported, not carried out (see
                    struct mb_policy_decision's `monitor`); only with DENY, DROP or CLOSE */
};

/* What a policy says beyond its rules. Zero-initialise. */
struct mb_policy_settings {
    int monitor_default; /* 1: the default deny (a part no rule matches) is in monitor mode */
};

/*
 * Compiles `count` rules (0 is allowed: a policy that denies everything) into *policy, to be
 * freed with mb_policy_destroy(). Nothing of `rules` is referenced afterwards. Overlapping or
 * adjacent ranges of one list are merged, so a request spanning two listed ranges that touch
 * is inside. Returns 0, MB_ENOMEM, or MB_EINVAL with one line in `error` (may be NULL) naming
 * the rule by index and name and what is wrong with it: no name, a duplicate or malformed one,
 * no one to apply to, a range that ends before it starts, a unit id over 255, function code 0
 * or over 127, a sub-function bit the spec does not define, a preset combined with functions
 * or access, ranges for the device, diagnostics without FC 8 (or encapsulated without FC 43)
 * among the functions, records without files, a value limit on a rule that does not allow or
 * grants no write, an exception with an action other than DENY, more than
 * MB_POLICY_MAX_RULES rules or MB_POLICY_MAX_LIST items in a list.
 */
MB_API int mb_policy_create(const struct mb_policy_rule *rules, size_t count,
                            struct mb_policy **policy, char *error, size_t error_capacity);

/* The same with settings (NULL: all zero, which is mb_policy_create()). A policy in monitor mode
 * (some rules, or the default deny) enforces what it would without its monitored rules, and
 * says in the decision when a refusal by a monitored rule is not to be carried out (item 3 at
 * the top of this file): how a site learns what enforcing would break. Also refuses MB_EINVAL:
 * monitor on a rule that allows. */
MB_API int mb_policy_create_with(const struct mb_policy_rule *rules, size_t count,
                                 const struct mb_policy_settings *settings,
                                 struct mb_policy **policy, char *error, size_t error_capacity);

/* Copies a policy into *copy (one allocation and a memcpy): a policy of its own, with one
 * reference, to be freed with mb_policy_destroy() whatever becomes of the original. Returns 0,
 * MB_ENOMEM or MB_EINVAL. */
MB_API int mb_policy_copy(const struct mb_policy *policy, struct mb_policy **copy);

/* The number of rules of a policy. */
MB_API size_t mb_policy_rule_count(const struct mb_policy *policy);

/* The name of rule `index`, owned by the policy; NULL when there is no such rule. */
MB_API const char *mb_policy_rule_name(const struct mb_policy *policy, size_t index);

/* 1 when rule `index` is in monitor mode, 0 when it is enforced or there is no such rule; index
 * mb_policy_rule_count() is the default deny. */
MB_API int mb_policy_rule_monitor(const struct mb_policy *policy, size_t index);

/*
 * The policy's canonical form: text written from what it decides with (each rule in order: its
 * name, action, who, units, functions, sub-functions, access, tables with merged ranges,
 * records, values; roles and sources sorted; then the default deny), so that files that differ
 * only in layout, comments, key order, the order of roles or sources, or the spelling of a
 * list ([1, 2, 3] or [1-3]) give the same text, and any change in what is decided gives
 * another. Hash it (SHA-256) to name a policy across a fleet. Like snprintf(): writes at most
 * `capacity` bytes including a NUL (out may be NULL with capacity 0) and returns the length of
 * the whole text, or MB_EINVAL. The form is versioned by its first line.
 */
MB_API long mb_policy_canonical(const struct mb_policy *policy, char *out, size_t capacity);

/*
 * Parses a source network: "192.0.2.0/24", "2001:db8::/32", or a bare address ("192.0.2.7" is
 * /32, "::1" is /128). An IPv4-mapped IPv6 network of prefix 96 or more becomes the IPv4 one.
 * Returns 0, or MB_EADDRESS with one line in `error` (may be NULL): not an address, a prefix
 * that is not a number in 0..32 / 0..128, or bits set past the prefix ("192.0.2.1/24": did you
 * mean 192.0.2.0/24?).
 */
MB_API int mb_policy_source_parse(const char *text, struct mb_policy_source *source, char *error,
                                  size_t error_capacity);

/*
 * Looks up a function by its policy name: the function codes in snake case
 * ("read_holding_registers", "diagnostics", "encapsulated_interface"), the FC 8 sub-functions
 * ("return_query_data", "restart_communications", ..., see docs/configuration.md),
 * "read_device_identification" (FC 43/14) and "canopen_general_reference" (FC 43/13). Sets
 * *function, and *sub_function to the FC 8 sub-function or the FC 43 MEI type (13, 14) the
 * name stands for, or -1 when it stands for the whole function code. Returns 0 or MB_EINVAL
 * (unknown name).
 */
MB_API int mb_policy_function_lookup(const char *name, uint8_t *function, int *sub_function);

/* The other way round: the policy name of a function code (sub_function -1) or of an FC 8
 * sub-function or FC 43 MEI type ("read_holding_registers", "return_query_data",
 * "read_device_identification"); NULL when it has none (user-defined and reserved codes,
 * undefined sub-functions: a policy names those by number). */
MB_API const char *mb_policy_function_name(uint8_t function, int sub_function);

/* "allow", "deny", "drop", "close"; "unknown" for other values. */
MB_API const char *mb_policy_action_name(enum mb_policy_action action);

#ifdef __cplusplus
}
#endif

#endif
