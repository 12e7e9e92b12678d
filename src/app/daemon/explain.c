/* SPDX-License-Identifier: MIT */
/*
 * `--check FILE --explain WHO UNIT FUNCTION [ADDRESS [ARGUMENTS...]]` of serve and gateway: what
 * the file's policy decides for one request, without a client, a certificate or a device. The
 * request is built from the arguments as a client would send it and decided by the same engine,
 * with the reason written in full.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/commands.h"
#include "app/daemon/front.h"
#include "mbsec/pdu.h"
#include "mbsec/value.h"

/* Who asks: a role (over TLS), a source address (plain TCP), or ROLE@ADDRESS. */
struct asker {
    char role[128];
    int has_role;
    struct sockaddr_storage address;
    socklen_t address_length;
};

static int parse_address(const char *text, struct sockaddr_storage *address, socklen_t *length) {
    struct sockaddr_in *v4 = (struct sockaddr_in *)address;
    struct sockaddr_in6 *v6 = (struct sockaddr_in6 *)address;
    memset(address, 0, sizeof *address);
    if (inet_pton(AF_INET, text, &v4->sin_addr) == 1) {
        v4->sin_family = AF_INET;
        *length = sizeof *v4;
        return 0;
    }
    if (inet_pton(AF_INET6, text, &v6->sin6_addr) == 1) {
        v6->sin6_family = AF_INET6;
        *length = sizeof *v6;
        return 0;
    }
    return -1;
}

static int parse_asker(const char *text, struct asker *asker) {
    memset(asker, 0, sizeof *asker);
    const char *at = strrchr(text, '@');
    if (at != NULL) {
        if (at == text || (size_t)(at - text) >= sizeof asker->role ||
            parse_address(at + 1, &asker->address, &asker->address_length) != 0)
            return -1;
        snprintf(asker->role, sizeof asker->role, "%.*s", (int)(at - text), text);
        asker->has_role = 1;
        return 0;
    }
    if (parse_address(text, &asker->address, &asker->address_length) == 0)
        return 0;
    if (text[0] == '\0' || strlen(text) >= sizeof asker->role)
        return -1;
    snprintf(asker->role, sizeof asker->role, "%s", text);
    asker->has_role = 1;
    return 0;
}

static int number(const char *text, unsigned long maximum, unsigned long *value) {
    char *end;
    if (text == NULL || text[0] == '\0' || text[0] == '-')
        return -1;
    unsigned long parsed = strtoul(text, &end, 0);
    if (*end != '\0' || parsed > maximum)
        return -1;
    *value = parsed;
    return 0;
}

/* The request PDU the arguments describe, into `pdu`. Returns its length, or 0 with the
 * problem in `error`. */
static size_t build_pdu(const char *const *args, int count, uint8_t *pdu, char *error,
                        size_t capacity) {
    uint8_t function;
    int sub = -1;
    unsigned long code, address = 0, value;
    if (number(args[0], 127, &code) == 0 && code > 0) {
        function = (uint8_t)code;
    } else if (mb_policy_function_lookup(args[0], &function, &sub) != 0) {
        snprintf(error, capacity,
                 "FUNCTION '%s': a function code 1..127 or a name such as "
                 "read_holding_registers (docs/configuration.md lists them)",
                 args[0]);
        return 0;
    }
    int rest = count - 1;
    const char *const *more = args + 1;
    if (rest > 0 && number(more[0], 65535, &address) != 0) {
        snprintf(error, capacity, "ADDRESS '%s': 0..65535", more[0]);
        return 0;
    }
    size_t length = 0;
    pdu[length++] = function;
    switch (function) {
    case MB_FC_READ_COILS:
    case MB_FC_READ_DISCRETE_INPUTS:
    case MB_FC_READ_HOLDING_REGISTERS:
    case MB_FC_READ_INPUT_REGISTERS: {
        unsigned long quantity = 1;
        if (rest > 1 && number(more[1], 2000, &quantity) != 0) {
            snprintf(error, capacity, "QUANTITY '%s': 1..2000", more[1]);
            return 0;
        }
        mb_put_u16(pdu + 1, (uint16_t)address);
        mb_put_u16(pdu + 3, (uint16_t)quantity);
        return 5;
    }
    case MB_FC_WRITE_SINGLE_COIL:
    case MB_FC_WRITE_SINGLE_REGISTER:
        value = 0;
        if (rest > 1 &&
            number(more[1], function == MB_FC_WRITE_SINGLE_COIL ? 1 : 65535, &value) != 0) {
            snprintf(error, capacity, "VALUE '%s': %s", more[1],
                     function == MB_FC_WRITE_SINGLE_COIL ? "0 or 1" : "0..65535");
            return 0;
        }
        mb_put_u16(pdu + 1, (uint16_t)address);
        mb_put_u16(pdu + 3, function == MB_FC_WRITE_SINGLE_COIL ? (value ? 0xFF00 : 0) : value);
        return 5;
    case MB_FC_WRITE_MULTIPLE_COILS:
    case MB_FC_WRITE_MULTIPLE_REGISTERS: {
        int bits = function == MB_FC_WRITE_MULTIPLE_COILS;
        int values = rest - 1;
        if (values < 1 || values > (bits ? 1968 : 123)) {
            snprintf(error, capacity, "FC %u takes ADDRESS and 1..%d VALUEs", function,
                     bits ? 1968 : 123);
            return 0;
        }
        mb_put_u16(pdu + 1, (uint16_t)address);
        mb_put_u16(pdu + 3, (uint16_t)values);
        size_t bytes = bits ? ((size_t)values + 7) / 8 : 2 * (size_t)values;
        pdu[5] = (uint8_t)bytes;
        memset(pdu + 6, 0, bytes);
        for (int i = 0; i < values; i++) {
            if (number(more[1 + i], bits ? 1 : 65535, &value) != 0) {
                snprintf(error, capacity, "VALUE '%s': %s", more[1 + i],
                         bits ? "0 or 1" : "0..65535");
                return 0;
            }
            if (bits)
                pdu[6 + i / 8] |= (uint8_t)(value << (i % 8));
            else
                mb_put_u16(pdu + 6 + 2 * i, (uint16_t)value);
        }
        return 6 + bytes;
    }
    case MB_FC_READ_FIFO_QUEUE:
        mb_put_u16(pdu + 1, (uint16_t)address);
        return 3;
    case MB_FC_DIAGNOSTICS:
        mb_put_u16(pdu + 1, (uint16_t)(sub >= 0 ? sub : (int)address));
        mb_put_u16(pdu + 3, sub == 1 ? 0xFF00 : 0);
        return 5;
    case MB_FC_ENCAPSULATED_INTERFACE:
        pdu[1] = (uint8_t)(sub >= 0 ? sub : MB_MEI_DEVICE_ID);
        pdu[2] = 1;
        pdu[3] = 0;
        return 4;
    case MB_FC_READ_EXCEPTION_STATUS:
    case MB_FC_GET_COMM_EVENT_COUNTER:
    case MB_FC_GET_COMM_EVENT_LOG:
    case MB_FC_REPORT_SERVER_ID:
        return 1;
    default:
        snprintf(error, capacity,
                 "FC %u: --explain builds FC 1-8, 11, 12, 15-17, 24 and 43 requests; test others "
                 "with a client against the running program",
                 function);
        return 0;
    }
}

int front_explain(const char *program, const struct mb_policy *policy, int authorize_plain,
                  const char *const *args, int count) {
    struct asker asker;
    uint8_t pdu[MB_PDU_MAX];
    unsigned long unit;
    char error[200];
    if (count < 3) {
        fprintf(stderr,
                "%s: --explain WHO UNIT FUNCTION [ADDRESS [QUANTITY | VALUE...]]: WHO is a role "
                "(over TLS), a source address (plain TCP) or ROLE@ADDRESS\n",
                program);
        return EXIT_STATUS_USAGE;
    }
    if (parse_asker(args[0], &asker) != 0) {
        fprintf(stderr, "%s: --explain: WHO '%s': a role, an address, or ROLE@ADDRESS\n", program,
                args[0]);
        return EXIT_STATUS_USAGE;
    }
    if (number(args[1], 255, &unit) != 0) {
        fprintf(stderr, "%s: --explain: UNIT '%s': 0..255\n", program, args[1]);
        return EXIT_STATUS_USAGE;
    }
    size_t length = build_pdu(args + 2, count - 2, pdu, error, sizeof error);
    if (length == 0) {
        fprintf(stderr, "%s: --explain: %s\n", program, error);
        return EXIT_STATUS_USAGE;
    }
    if (!asker.has_role && !authorize_plain) {
        printf("allowed, unchecked: plain requests are not checked against the policy "
               "(authorize_plain: false)\n");
        return EXIT_STATUS_OK;
    }
    if (policy == NULL) {
        printf("denied with exception 01: there is no policy\n");
        return EXIT_STATUS_FAILURE;
    }
    struct mb_policy_identity who = {
        .role = asker.has_role ? asker.role : NULL,
        .tls = asker.has_role,
        .address = asker.address_length ? (const struct sockaddr *)&asker.address : NULL,
        .address_length = asker.address_length,
        .explain = 1,
    };
    struct mb_policy_decision decision;
    mb_policy_decide(policy, &who, (uint8_t)unit, pdu, length, &decision);
    switch (decision.action) {
    case MB_POLICY_ALLOW:
        printf("allowed by rule '%s'\n", decision.rule_name);
        break;
    case MB_POLICY_DENY:
        printf("denied with exception %02X by %s%s%s\n", decision.exception,
               decision.rule < 0 ? "" : "rule '", decision.rule_name,
               decision.rule < 0 ? " (no rule matched)" : "'");
        break;
    case MB_POLICY_DROP:
        printf("dropped (no answer) by rule '%s'\n", decision.rule_name);
        break;
    case MB_POLICY_CLOSE:
        printf("connection closed by rule '%s'\n", decision.rule_name);
        break;
    }
    if (decision.monitor)
        printf("  monitor mode: not enforced; served, and reported as would_deny\n");
    printf("  %s\n", decision.reason);
    /* Refused is what enforcing says: a monitored refusal is one to look at all the same. */
    return decision.action == MB_POLICY_ALLOW ? EXIT_STATUS_OK : EXIT_STATUS_FAILURE;
}
