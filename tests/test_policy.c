/* SPDX-License-Identifier: MIT */
/*
 * The authorization policy (include/mbsec/policy.h): an operator with read-only access and an
 * engineer with read/write access within limits, over every function code, inside and outside
 * their ranges; who (roles, no role, sources in IPv4, IPv6 and IPv4-mapped form, TLS or plain);
 * the parts of FC 23 and FC 20/21 decided on their own; FC 8 sub-functions; value limits;
 * actions; rule order; requests that do not decode; the reason text; building errors; copies
 * and references.
 * Every PDU is decided from the very end of a readable page, so an over-read crashes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdlib.h>
#include <string.h>

#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/pdu.h"
#include "mbsec/policy.h"

/* ---- who ---- */

struct who {
    struct mb_policy_identity identity;
    struct sockaddr_storage storage;
};

/* A client with `role` (NULL: none), over TLS or not, from `address` (NULL: unknown). */
static void set_who(struct who *who, const char *role, int tls, const char *address) {
    memset(who, 0, sizeof *who);
    who->identity.role = role;
    who->identity.tls = tls;
    if (address == NULL)
        return;
    struct sockaddr_in *in = (struct sockaddr_in *)&who->storage;
    struct sockaddr_in6 *in6 = (struct sockaddr_in6 *)&who->storage;
    if (inet_pton(AF_INET, address, &in->sin_addr) == 1) {
        in->sin_family = AF_INET;
        in->sin_port = htons(40000);
        who->identity.address_length = sizeof *in;
    } else if (inet_pton(AF_INET6, address, &in6->sin6_addr) == 1) {
        in6->sin6_family = AF_INET6;
        in6->sin6_port = htons(40000);
        who->identity.address_length = sizeof *in6;
    } else {
        fprintf(stderr, "bad test address %s\n", address);
        exit(2);
    }
    who->identity.address = (const struct sockaddr *)&who->storage;
}

/* ---- deciding ---- */

static struct mb_policy_decision decide(const struct mb_policy *policy, const struct who *who,
                                        uint8_t unit, const uint8_t *pdu, size_t length) {
    struct mb_policy_decision decision;
    memset(&decision, 0x5A, sizeof decision);
    int status =
        mb_policy_decide(policy, &who->identity, unit, guard_copy(pdu, length), length, &decision);
    harness_checks++;
    if (status != 0)
        harness_fail(__FILE__, __LINE__, "mb_policy_decide returned %d", status);
    /* A server's handler has the request decoded already: deciding on that decoding must give
     * the same decision, and the access the same as mb_policy_request_access(). */
    struct mb_request request;
    const uint8_t *copy = guard_copy(pdu, length);
    int decoded = mb_request_decode(copy, length, &request) == 0;
    struct mb_policy_decision again;
    memset(&again, 0xA5, sizeof again);
    status = mb_policy_decide_decoded(policy, &who->identity, unit, copy, length,
                                      decoded ? &request : NULL, &again);
    harness_checks++;
    if (status != 0 || again.action != decision.action || again.exception != decision.exception ||
        again.rule != decision.rule || again.access != decision.access ||
        again.monitor != decision.monitor || strcmp(again.rule_name, decision.rule_name) != 0 ||
        strcmp(again.reason, decision.reason) != 0)
        harness_fail(__FILE__, __LINE__, "mb_policy_decide_decoded differs (%d): %s / %s", status,
                     again.reason, decision.reason);
    harness_checks++;
    if (decision.access != mb_policy_request_access(pdu, length) ||
        decision.access != mb_policy_decoded_access(copy, length, decoded ? &request : NULL))
        harness_fail(__FILE__, __LINE__, "access %u, mb_policy_request_access %u", decision.access,
                     mb_policy_request_access(pdu, length));
    return decision;
}

/* Checks the action and exception of a decision, showing its reason when they are wrong. */
static void expect(int line, const struct mb_policy *policy, const struct who *who, uint8_t unit,
                   const uint8_t *pdu, size_t length, enum mb_policy_action action,
                   uint8_t exception) {
    struct mb_policy_decision decision = decide(policy, who, unit, pdu, length);
    harness_checks++;
    if (decision.action != action || decision.exception != exception) {
        harness_fail(__FILE__, line, "action %s exception %02X, want %s exception %02X (%s)",
                     mb_policy_action_name(decision.action), decision.exception,
                     mb_policy_action_name(action), exception, decision.reason);
        harness_hexdump("pdu", pdu, length);
    }
}

/* Checks the whole reason line. */
static void expect_reason(int line, const struct mb_policy *policy, const struct who *who,
                          uint8_t unit, const uint8_t *pdu, size_t length, const char *reason) {
    struct who explained = *who;
    explained.identity.explain = 1;
    if (explained.identity.address != NULL)
        explained.identity.address = (const struct sockaddr *)&explained.storage;
    struct mb_policy_decision decision = decide(policy, &explained, unit, pdu, length);
    harness_checks++;
    if (strcmp(decision.reason, reason) != 0)
        harness_fail(__FILE__, line, "reason\n    \"%s\"\n  want\n    \"%s\"", decision.reason,
                     reason);
}

#define ALLOWED(policy, who, ...) expect(__LINE__, policy, who, 1, __VA_ARGS__, MB_POLICY_ALLOW, 0)
#define DENIED(policy, who, ...) expect(__LINE__, policy, who, 1, __VA_ARGS__, MB_POLICY_DENY, 1)
#define REASON(policy, who, ...) expect_reason(__LINE__, policy, who, 1, __VA_ARGS__)

static struct mb_policy *build(int line, const struct mb_policy_rule *rules, size_t count) {
    struct mb_policy *policy = NULL;
    char error[256];
    int status = mb_policy_create(rules, count, &policy, error, sizeof error);
    harness_checks++;
    if (status != 0 || policy == NULL) {
        harness_fail(__FILE__, line, "mb_policy_create: %d: %s", status, error);
        exit(1);
    }
    return policy;
}

#define BUILD(rules) build(__LINE__, rules, sizeof rules / sizeof rules[0])

/* ---- the station: an operator and an engineer ---- */

static const struct mb_policy_range bits_0_99[] = {{0, 99}};
static const struct mb_policy_range registers_0_199[] = {{0, 199}};
static const struct mb_policy_range files_1_2[] = {{1, 2}};
static const struct mb_policy_range records_0_999[] = {{0, 999}};
static const struct mb_policy_range fifos_900_910[] = {{900, 910}};
static const struct mb_policy_range setpoints[] = {{100, 110}};
static const char *const operator_role[] = {"operator"};
static const char *const engineer_role[] = {"engineer"};
static const uint8_t setpoint_functions[] = {MB_FC_WRITE_SINGLE_REGISTER,
                                             MB_FC_WRITE_MULTIPLE_REGISTERS};

/* Every table of the station, in its ranges, and the device. */
static void grant_station(struct mb_policy_rule *rule) {
    rule->tables[MB_POLICY_COILS] = (struct mb_policy_grant){1, bits_0_99, 1};
    rule->tables[MB_POLICY_DISCRETE_INPUTS] = (struct mb_policy_grant){1, bits_0_99, 1};
    rule->tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, registers_0_199, 1};
    rule->tables[MB_POLICY_INPUT_REGISTERS] = (struct mb_policy_grant){1, registers_0_199, 1};
    rule->tables[MB_POLICY_FILES] = (struct mb_policy_grant){1, files_1_2, 1};
    rule->records = records_0_999;
    rule->record_count = 1;
    rule->tables[MB_POLICY_FIFOS] = (struct mb_policy_grant){1, fifos_900_910, 1};
    rule->tables[MB_POLICY_DEVICE].granted = 1;
}

/*
 *   0 operators-read            operator: read-only, every table in its range, the device
 *   1 engineer-setpoints        engineer: FC 6/16 on holding 100..110 with values 0..500
 *   2 engineer-setpoints-guard  engineer: any other write on 100..110 is denied
 *   3 engineer                  engineer: read-write, every table in its range, the device
 */
static struct mb_policy *station(void) {
    struct mb_policy_rule rules[4];
    memset(rules, 0, sizeof rules);
    rules[0].name = "operators-read";
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].roles = operator_role;
    rules[0].role_count = 1;
    rules[0].preset = MB_POLICY_READ_ONLY;
    grant_station(&rules[0]);

    rules[1].name = "engineer-setpoints";
    rules[1].action = MB_POLICY_ALLOW;
    rules[1].roles = engineer_role;
    rules[1].role_count = 1;
    rules[1].functions = setpoint_functions;
    rules[1].function_count = 2;
    rules[1].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, setpoints, 1};
    rules[1].value_limit = 1;
    rules[1].value_min = 0;
    rules[1].value_max = 500;

    rules[2].name = "engineer-setpoints-guard";
    rules[2].action = MB_POLICY_DENY;
    rules[2].roles = engineer_role;
    rules[2].role_count = 1;
    rules[2].access = MB_POLICY_WRITE;
    rules[2].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, setpoints, 1};

    rules[3].name = "engineer";
    rules[3].action = MB_POLICY_ALLOW;
    rules[3].roles = engineer_role;
    rules[3].role_count = 1;
    rules[3].preset = MB_POLICY_READ_WRITE;
    grant_station(&rules[3]);
    return BUILD(rules);
}

/* One request of the matrix: its bytes and whether the operator and the engineer may send it. */
struct case_ {
    const char *what;
    uint8_t pdu[32];
    size_t length;
    int operator_allowed;
    int engineer_allowed;
};

#define CASE(what, operator, engineer, ...) \
    { what, {__VA_ARGS__}, sizeof((const uint8_t[]){__VA_ARGS__}), operator, engineer }

static const struct case_ matrix[] = {
    CASE("FC 1 coils 0..9", 1, 1, 0x01, 0x00, 0x00, 0x00, 0x0A),
    CASE("FC 1 coils 0..99, the whole range", 1, 1, 0x01, 0x00, 0x00, 0x00, 0x64),
    CASE("FC 1 coils 95..104, past the range", 0, 0, 0x01, 0x00, 0x5F, 0x00, 0x0A),
    CASE("FC 1 coils 100", 0, 0, 0x01, 0x00, 0x64, 0x00, 0x01),
    CASE("FC 2 discrete inputs 0..9", 1, 1, 0x02, 0x00, 0x00, 0x00, 0x0A),
    CASE("FC 2 discrete inputs 99..100", 0, 0, 0x02, 0x00, 0x63, 0x00, 0x02),
    CASE("FC 3 holding 0..9", 1, 1, 0x03, 0x00, 0x00, 0x00, 0x0A),
    CASE("FC 3 holding 100..110, the setpoints", 1, 1, 0x03, 0x00, 0x64, 0x00, 0x0B),
    CASE("FC 3 holding 195..204", 0, 0, 0x03, 0x00, 0xC3, 0x00, 0x0A),
    CASE("FC 3 holding 65535..65659", 0, 0, 0x03, 0xFF, 0xFF, 0x00, 0x7D),
    CASE("FC 4 input 190..199", 1, 1, 0x04, 0x00, 0xBE, 0x00, 0x0A),
    CASE("FC 4 input 200", 0, 0, 0x04, 0x00, 0xC8, 0x00, 0x01),
    CASE("FC 5 coil 5 on", 0, 1, 0x05, 0x00, 0x05, 0xFF, 0x00),
    CASE("FC 5 coil 100 off", 0, 0, 0x05, 0x00, 0x64, 0x00, 0x00),
    CASE("FC 6 holding 10 = 1234", 0, 1, 0x06, 0x00, 0x0A, 0x04, 0xD2),
    CASE("FC 6 holding 105 = 400", 0, 1, 0x06, 0x00, 0x69, 0x01, 0x90),
    CASE("FC 6 holding 105 = 500", 0, 1, 0x06, 0x00, 0x69, 0x01, 0xF4),
    CASE("FC 6 holding 105 = 501", 0, 0, 0x06, 0x00, 0x69, 0x01, 0xF5),
    CASE("FC 6 holding 300 = 1", 0, 0, 0x06, 0x01, 0x2C, 0x00, 0x01),
    CASE("FC 7", 1, 1, 0x07),
    CASE("FC 8/00 return query data", 1, 1, 0x08, 0x00, 0x00, 0x12, 0x34),
    CASE("FC 8/01 restart communications", 0, 0, 0x08, 0x00, 0x01, 0x00, 0x00),
    CASE("FC 8/02 return diagnostic register", 1, 1, 0x08, 0x00, 0x02, 0x00, 0x00),
    CASE("FC 8/03 change ASCII delimiter", 0, 1, 0x08, 0x00, 0x03, 0x0A, 0x00),
    CASE("FC 8/04 force listen-only", 0, 0, 0x08, 0x00, 0x04, 0x00, 0x00),
    CASE("FC 8/0A clear counters", 0, 1, 0x08, 0x00, 0x0A, 0x00, 0x00),
    CASE("FC 8/0B bus message count", 1, 1, 0x08, 0x00, 0x0B, 0x00, 0x00),
    CASE("FC 8/12 bus character overrun count", 1, 1, 0x08, 0x00, 0x12, 0x00, 0x00),
    CASE("FC 8/14 clear overrun counter", 0, 1, 0x08, 0x00, 0x14, 0x00, 0x00),
    CASE("FC 11", 1, 1, 0x0B),
    CASE("FC 12", 1, 1, 0x0C),
    CASE("FC 15 coils 0..7", 0, 1, 0x0F, 0x00, 0x00, 0x00, 0x08, 0x01, 0xFF),
    CASE("FC 15 coils 98..101", 0, 0, 0x0F, 0x00, 0x62, 0x00, 0x04, 0x01, 0x0F),
    CASE("FC 16 holding 100..101 = 1, 500", 0, 1, 0x10, 0x00, 0x64, 0x00, 0x02, 0x04, 0x00, 0x01,
         0x01, 0xF4),
    CASE("FC 16 holding 100..101 = 1, 501", 0, 0, 0x10, 0x00, 0x64, 0x00, 0x02, 0x04, 0x00, 0x01,
         0x01, 0xF5),
    CASE("FC 16 holding 99..100, half in the setpoints", 0, 0, 0x10, 0x00, 0x63, 0x00, 0x02, 0x04,
         0x00, 0x01, 0x00, 0x01),
    CASE("FC 16 holding 10..11", 0, 1, 0x10, 0x00, 0x0A, 0x00, 0x02, 0x04, 0x00, 0x01, 0x00, 0x02),
    CASE("FC 16 holding 198..201", 0, 0, 0x10, 0x00, 0xC6, 0x00, 0x04, 0x08, 0x00, 0x01, 0x00, 0x02,
         0x00, 0x03, 0x00, 0x04),
    CASE("FC 17", 1, 1, 0x11),
    CASE("FC 20 file 1 records 0..1", 1, 1, 0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02),
    CASE("FC 20 file 2 records 998..999", 1, 1, 0x14, 0x07, 0x06, 0x00, 0x02, 0x03, 0xE6, 0x00,
         0x02),
    CASE("FC 20 file 3", 0, 0, 0x14, 0x07, 0x06, 0x00, 0x03, 0x00, 0x00, 0x00, 0x02),
    CASE("FC 20 file 1 records 999..1000", 0, 0, 0x14, 0x07, 0x06, 0x00, 0x01, 0x03, 0xE7, 0x00,
         0x02),
    CASE("FC 20 files 1 and 2", 1, 1, 0x14, 0x0E, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06,
         0x00, 0x02, 0x00, 0x00, 0x00, 0x01),
    CASE("FC 20 files 1 and 3", 0, 0, 0x14, 0x0E, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06,
         0x00, 0x03, 0x00, 0x00, 0x00, 0x01),
    CASE("FC 21 file 1 record 0", 0, 1, 0x15, 0x09, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x12,
         0x34),
    CASE("FC 21 file 3 record 0", 0, 0, 0x15, 0x09, 0x06, 0x00, 0x03, 0x00, 0x00, 0x00, 0x01, 0x12,
         0x34),
    CASE("FC 22 holding 10", 0, 1, 0x16, 0x00, 0x0A, 0x00, 0xF2, 0x00, 0x25),
    CASE("FC 22 holding 105, a setpoint", 0, 0, 0x16, 0x00, 0x69, 0x00, 0x00, 0x01, 0x00),
    CASE("FC 22 holding 300", 0, 0, 0x16, 0x01, 0x2C, 0x00, 0xF2, 0x00, 0x25),
    CASE("FC 23 read 0..1, write 10", 0, 1, 0x17, 0x00, 0x00, 0x00, 0x02, 0x00, 0x0A, 0x00, 0x01,
         0x02, 0x00, 0x07),
    CASE("FC 23 read 195..204, write 10", 0, 0, 0x17, 0x00, 0xC3, 0x00, 0x0A, 0x00, 0x0A, 0x00,
         0x01, 0x02, 0x00, 0x07),
    CASE("FC 23 read 0..1, write 105, a setpoint", 0, 0, 0x17, 0x00, 0x00, 0x00, 0x02, 0x00, 0x69,
         0x00, 0x01, 0x02, 0x00, 0x07),
    CASE("FC 24 FIFO 900", 1, 1, 0x18, 0x03, 0x84),
    CASE("FC 24 FIFO 910", 1, 1, 0x18, 0x03, 0x8E),
    CASE("FC 24 FIFO 950", 0, 0, 0x18, 0x03, 0xB6),
    CASE("FC 24 FIFO 10, holding 10..41 inside 0..199", 1, 1, 0x18, 0x00, 0x0A),
    CASE("FC 24 FIFO 180, holding 180..211 past 199", 0, 0, 0x18, 0x00, 0xB4),
    CASE("FC 43/14 basic", 1, 1, 0x2B, 0x0E, 0x01, 0x00),
    CASE("FC 43/14 one object", 1, 1, 0x2B, 0x0E, 0x04, 0x02),
    CASE("FC 43/13 CANopen", 0, 0, 0x2B, 0x0D, 0x01, 0x02),
    CASE("FC 65 user-defined", 0, 0, 0x41, 0x01, 0x02),
    CASE("FC 100 user-defined", 0, 0, 0x64, 0x01, 0x02),
    CASE("FC 9 reserved", 0, 0, 0x09, 0x00, 0x00),
    CASE("FC 3 quantity 0, undecodable", 0, 0, 0x03, 0x00, 0x00, 0x00, 0x00),
    CASE("FC 16 byte count wrong, undecodable", 0, 0, 0x10, 0x00, 0x0A, 0x00, 0x01, 0x04, 0x00,
         0x01),
};

static void run_matrix(const struct mb_policy *policy, const struct who *who, int column) {
    for (size_t i = 0; i < sizeof matrix / sizeof matrix[0]; i++) {
        const struct case_ *c = &matrix[i];
        int allowed = column == 0 ? c->operator_allowed : column == 1 ? c->engineer_allowed : 0;
        struct mb_policy_decision decision = decide(policy, who, 1, c->pdu, c->length);
        harness_checks++;
        if (decision.action != (allowed ? MB_POLICY_ALLOW : MB_POLICY_DENY) ||
            decision.exception != (allowed ? 0 : 1))
            harness_fail(__FILE__, __LINE__, "%s as %s: %s exception %02X, want %s (%s)", c->what,
                         who->identity.role ? who->identity.role : "(no role)",
                         mb_policy_action_name(decision.action), decision.exception,
                         allowed ? "allow" : "deny with 01", decision.reason);
    }
}

TEST(the_operator_reads_and_the_engineer_writes_within_limits_over_every_function_code) {
    struct mb_policy *policy = station();
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    run_matrix(policy, &who, 0);
    set_who(&who, "engineer", 1, "2001:db8::7");
    run_matrix(policy, &who, 1);
    mb_policy_destroy(policy);
}

TEST(no_role_an_unknown_role_and_roles_in_another_case_get_nothing) {
    struct mb_policy *policy = station();
    struct who who;
    set_who(&who, NULL, 1, "192.0.2.7");
    run_matrix(policy, &who, 2);
    set_who(&who, NULL, 0, "192.0.2.7");
    run_matrix(policy, &who, 2);
    set_who(&who, "guest", 1, "192.0.2.7");
    run_matrix(policy, &who, 2);
    set_who(&who, "Operator", 1, "192.0.2.7");
    run_matrix(policy, &who, 2);
    set_who(&who, "operator ", 1, "192.0.2.7");
    run_matrix(policy, &who, 2);
    set_who(&who, "", 1, "192.0.2.7");
    run_matrix(policy, &who, 2);
    mb_policy_destroy(policy);
}

TEST(the_deciding_rule_is_named_by_index_and_name) {
    struct mb_policy *policy = station();
    struct who who;
    set_who(&who, "engineer", 1, "192.0.2.7");
    struct mb_policy_decision decision =
        decide(policy, &who, 1, BYTES(0x06, 0x00, 0x69, 0x01, 0x90));
    CHECK_EQ(decision.rule, 1);
    CHECK_STR(decision.rule_name, "engineer-setpoints");
    decision = decide(policy, &who, 1, BYTES(0x06, 0x00, 0x69, 0x01, 0xF5));
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.rule, 2);
    CHECK_STR(decision.rule_name, "engineer-setpoints-guard");
    decision = decide(policy, &who, 1, BYTES(0x06, 0x00, 0x0A, 0x01, 0xF5));
    CHECK_EQ(decision.rule, 3);
    CHECK_STR(decision.rule_name, "engineer");
    set_who(&who, "operator", 1, "192.0.2.7");
    decision = decide(policy, &who, 1, BYTES(0x06, 0x00, 0x0A, 0x01, 0xF5));
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.exception, 1);
    CHECK_EQ(decision.rule, -1);
    CHECK_STR(decision.rule_name, "default");
    CHECK_EQ(mb_policy_rule_count(policy), 4);
    CHECK_STR(mb_policy_rule_name(policy, 0), "operators-read");
    CHECK_STR(mb_policy_rule_name(policy, 3), "engineer");
    CHECK(mb_policy_rule_name(policy, 4) == NULL);
    CHECK(mb_policy_rule_name(NULL, 0) == NULL);
    CHECK_EQ(mb_policy_rule_count(NULL), 0);
    mb_policy_destroy(policy);
}

/* ---- who ---- */

static const struct mb_policy_range read_all[] = {{0, 65535}};

/* A rule allowing FC 3 on holding registers to whoever `who` names. */
static struct mb_policy_rule holding_reader(const char *name) {
    static const uint8_t fc3[] = {MB_FC_READ_HOLDING_REGISTERS};
    struct mb_policy_rule rule;
    memset(&rule, 0, sizeof rule);
    rule.name = name;
    rule.action = MB_POLICY_ALLOW;
    rule.functions = fc3;
    rule.function_count = 1;
    rule.tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, read_all, 1};
    return rule;
}

#define READ_3 BYTES(0x03, 0x00, 0x00, 0x00, 0x01)

TEST(role_none_is_the_only_way_to_grant_requests_without_a_role) {
    struct mb_policy_rule rules[1] = {holding_reader("nobody")};
    rules[0].role_flags = MB_POLICY_ROLE_NONE;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, NULL, 1, "192.0.2.7");
    ALLOWED(policy, &who, READ_3);
    set_who(&who, NULL, 0, "192.0.2.7");
    ALLOWED(policy, &who, READ_3);
    set_who(&who, "operator", 1, "192.0.2.7");
    DENIED(policy, &who, READ_3);
    mb_policy_destroy(policy);
}

TEST(role_any_takes_every_role_but_not_the_absence_of_one) {
    struct mb_policy_rule rules[1] = {holding_reader("anyone-with-a-role")};
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    ALLOWED(policy, &who, READ_3);
    set_who(&who, "x", 1, NULL);
    ALLOWED(policy, &who, READ_3);
    set_who(&who, NULL, 1, "192.0.2.7");
    DENIED(policy, &who, READ_3);
    mb_policy_destroy(policy);

    /* Both flags: everybody. */
    rules[0].role_flags = MB_POLICY_ROLE_ANY | MB_POLICY_ROLE_NONE;
    policy = BUILD(rules);
    set_who(&who, NULL, 0, NULL);
    ALLOWED(policy, &who, READ_3);
    set_who(&who, "y", 1, NULL);
    ALLOWED(policy, &who, READ_3);
    mb_policy_destroy(policy);
}

TEST(roles_are_exact_case_sensitive_strings) {
    static const char *const roles[] = {"Operator", "maintenance-2", "Bediener Süd"};
    struct mb_policy_rule rules[1] = {holding_reader("named")};
    rules[0].roles = roles;
    rules[0].role_count = 3;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    const char *allowed[] = {"Operator", "maintenance-2", "Bediener Süd"};
    const char *denied[] = {"operator",       "OPERATOR",     "Operator ", "maintenance",
                            "maintenance-22", "Bediener Sud", ""};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        set_who(&who, allowed[i], 1, "192.0.2.7");
        ALLOWED(policy, &who, READ_3);
    }
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        set_who(&who, denied[i], 1, "192.0.2.7");
        DENIED(policy, &who, READ_3);
    }
    /* A role that differs only in case is the likeliest mistake: the reason says so. */
    set_who(&who, "operator", 1, "192.0.2.7");
    REASON(policy, &who, READ_3,
           "role 'operator' from 192.0.2.7: read holding register 0 on unit 1 (FC 3) matched no "
           "rule (default deny); role 'operator' differs only in case from role 'Operator' of rule "
           "'named' (roles are case-sensitive)");
    set_who(&who, "maintenance", 1, "192.0.2.7");
    REASON(policy, &who, READ_3,
           "role 'maintenance' from 192.0.2.7: read holding register 0 on unit 1 (FC 3) matched "
           "no rule (default deny)");
    mb_policy_destroy(policy);
}

static struct mb_policy_source source(const char *text) {
    struct mb_policy_source parsed;
    char error[128];
    memset(&parsed, 0, sizeof parsed);
    if (mb_policy_source_parse(text, &parsed, error, sizeof error) != 0) {
        fprintf(stderr, "%s\n", error);
        exit(2);
    }
    return parsed;
}

TEST(sources_match_ipv4_and_ipv6_networks_and_mapped_addresses_as_ipv4) {
    struct mb_policy_source sources[] = {source("192.0.2.0/24"), source("2001:db8::/32"),
                                         source("198.51.100.7"), source("::1"),
                                         source("::ffff:10.0.0.0/104")};
    struct mb_policy_rule rules[1] = {holding_reader("site")};
    rules[0].sources = sources;
    rules[0].source_count = 5;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    const char *allowed[] = {
        "192.0.2.0",   "192.0.2.7",        "192.0.2.255",          "::ffff:192.0.2.7",
        "2001:db8::1", "2001:db8:ffff::1", "198.51.100.7",         "::ffff:198.51.100.7",
        "::1",         "10.1.2.3",         "::ffff:10.255.255.255"};
    const char *denied[] = {"192.0.3.0",    "192.0.1.255", "2001:db9::1", "2001:db7:ffff::1",
                            "198.51.100.8", "::2",         "11.0.0.0",    "::ffff:11.0.0.1",
                            "0.0.0.0",      "::",          "::192.0.2.7"};
    for (size_t i = 0; i < sizeof allowed / sizeof allowed[0]; i++) {
        set_who(&who, NULL, 0, allowed[i]);
        ALLOWED(policy, &who, READ_3);
        set_who(&who, "operator", 1, allowed[i]);
        ALLOWED(policy, &who, READ_3);
    }
    for (size_t i = 0; i < sizeof denied / sizeof denied[0]; i++) {
        set_who(&who, NULL, 0, denied[i]);
        DENIED(policy, &who, READ_3);
    }
    /* An unknown address, an address of another family, a truncated one: no source matches. */
    set_who(&who, NULL, 0, NULL);
    DENIED(policy, &who, READ_3);
    struct sockaddr_storage unix_address;
    memset(&unix_address, 0, sizeof unix_address);
    unix_address.ss_family = AF_UNIX;
    who.identity.address = (const struct sockaddr *)&unix_address;
    who.identity.address_length = sizeof unix_address;
    DENIED(policy, &who, READ_3);
    set_who(&who, NULL, 0, "192.0.2.7");
    who.identity.address_length = sizeof(struct sockaddr_in) - 1;
    DENIED(policy, &who, READ_3);
    set_who(&who, NULL, 0, "2001:db8::1");
    who.identity.address_length = sizeof(struct sockaddr_in) + 4;
    DENIED(policy, &who, READ_3);
    mb_policy_destroy(policy);
}

TEST(every_address_is_0_0_0_0_slash_0_for_ipv4_and_colons_slash_0_for_ipv6) {
    struct mb_policy_source v4[] = {source("0.0.0.0/0")};
    struct mb_policy_source v6[] = {source("::/0")};
    struct mb_policy_rule rules[1] = {holding_reader("everyone")};
    struct who who;
    rules[0].sources = v4;
    rules[0].source_count = 1;
    struct mb_policy *policy = BUILD(rules);
    set_who(&who, NULL, 0, "203.0.113.9");
    ALLOWED(policy, &who, READ_3);
    set_who(&who, NULL, 0, "::ffff:203.0.113.9");
    ALLOWED(policy, &who, READ_3);
    set_who(&who, NULL, 0, "2001:db8::1");
    DENIED(policy, &who, READ_3);
    mb_policy_destroy(policy);
    rules[0].sources = v6;
    policy = BUILD(rules);
    set_who(&who, NULL, 0, "2001:db8::1");
    ALLOWED(policy, &who, READ_3);
    /* An IPv4 client is an IPv4 client however the socket saw it. */
    set_who(&who, NULL, 0, "::ffff:203.0.113.9");
    DENIED(policy, &who, READ_3);
    set_who(&who, NULL, 0, "203.0.113.9");
    DENIED(policy, &who, READ_3);
    mb_policy_destroy(policy);
}

TEST(roles_and_sources_together_must_both_hold) {
    struct mb_policy_source sources[] = {source("192.0.2.0/24")};
    struct mb_policy_rule rules[1] = {holding_reader("operators-on-site")};
    rules[0].roles = operator_role;
    rules[0].role_count = 1;
    rules[0].sources = sources;
    rules[0].source_count = 1;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    ALLOWED(policy, &who, READ_3);
    set_who(&who, "operator", 1, "203.0.113.9");
    DENIED(policy, &who, READ_3);
    set_who(&who, "engineer", 1, "192.0.2.7");
    DENIED(policy, &who, READ_3);
    set_who(&who, NULL, 1, "192.0.2.7");
    DENIED(policy, &who, READ_3);
    mb_policy_destroy(policy);
}

TEST(tls_only_and_plain_only_conditions) {
    struct mb_policy_rule rules[2] = {holding_reader("tls"), holding_reader("plain")};
    static const uint8_t fc4[] = {MB_FC_READ_INPUT_REGISTERS};
    rules[0].role_flags = MB_POLICY_ROLE_ANY | MB_POLICY_ROLE_NONE;
    rules[0].transport = MB_POLICY_TLS_ONLY;
    rules[1].role_flags = MB_POLICY_ROLE_ANY | MB_POLICY_ROLE_NONE;
    rules[1].transport = MB_POLICY_PLAIN_ONLY;
    rules[1].functions = fc4;
    rules[1].tables[MB_POLICY_HOLDING_REGISTERS].granted = 0;
    rules[1].tables[MB_POLICY_INPUT_REGISTERS] = (struct mb_policy_grant){1, NULL, 0};
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, NULL, 1, "192.0.2.7");
    ALLOWED(policy, &who, READ_3);
    DENIED(policy, &who, BYTES(0x04, 0x00, 0x00, 0x00, 0x01));
    set_who(&who, NULL, 0, "192.0.2.7");
    DENIED(policy, &who, READ_3);
    ALLOWED(policy, &who, BYTES(0x04, 0xFF, 0x00, 0x00, 0x7D));
    mb_policy_destroy(policy);
}

/* ---- what ---- */

TEST(units_restrict_a_rule_to_some_unit_ids) {
    static const struct mb_policy_range units[] = {{1, 1}, {10, 19}, {255, 255}};
    struct mb_policy_rule rules[1] = {holding_reader("some-units")};
    rules[0].role_flags = MB_POLICY_ROLE_NONE;
    rules[0].units = units;
    rules[0].unit_count = 3;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, NULL, 0, "192.0.2.7");
    const uint8_t allowed[] = {1, 10, 15, 19, 255};
    const uint8_t denied[] = {0, 2, 9, 20, 254};
    for (size_t i = 0; i < sizeof allowed; i++)
        expect(__LINE__, policy, &who, allowed[i], READ_3, MB_POLICY_ALLOW, 0);
    for (size_t i = 0; i < sizeof denied; i++)
        expect(__LINE__, policy, &who, denied[i], READ_3, MB_POLICY_DENY, 1);
    mb_policy_destroy(policy);
}

TEST(ranges_are_inclusive_and_touching_ranges_merge) {
    static const struct mb_policy_range ranges[] = {{100, 199}, {0, 99}, {300, 300}, {150, 160}};
    struct mb_policy_rule rules[1] = {holding_reader("merged")};
    rules[0].role_flags = MB_POLICY_ROLE_NONE;
    rules[0].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, ranges, 4};
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, NULL, 0, "192.0.2.7");
    ALLOWED(policy, &who, BYTES(0x03, 0x00, 0x5F, 0x00, 0x0A)); /* 95..104 spans 0-99, 100-199 */
    ALLOWED(policy, &who, BYTES(0x03, 0x00, 0x00, 0x00, 0x7D)); /* 0..124 */
    ALLOWED(policy, &who, BYTES(0x03, 0x00, 0x4B, 0x00, 0x7D)); /* 75..199 */
    DENIED(policy, &who, BYTES(0x03, 0x00, 0x4C, 0x00, 0x7D));  /* 76..200 */
    ALLOWED(policy, &who, BYTES(0x03, 0x01, 0x2C, 0x00, 0x01)); /* 300 */
    DENIED(policy, &who, BYTES(0x03, 0x01, 0x2C, 0x00, 0x02));  /* 300..301 */
    DENIED(policy, &who, BYTES(0x03, 0x01, 0x2B, 0x00, 0x02));  /* 299..300 */
    DENIED(policy, &who, BYTES(0x03, 0x00, 0xC8, 0x00, 0x01));  /* 200 */
    mb_policy_destroy(policy);
}

TEST(a_rule_that_refuses_matches_a_range_that_touches_its_own) {
    static const struct mb_policy_range guarded[] = {{100, 110}};
    static const struct mb_policy_range files[] = {{2, 2}};
    static const struct mb_policy_range records[] = {{50, 59}};
    struct mb_policy_rule rules[2];
    memset(rules, 0, sizeof rules);
    rules[0].name = "guard";
    rules[0].action = MB_POLICY_DENY;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, guarded, 1};
    rules[0].tables[MB_POLICY_FILES] = (struct mb_policy_grant){1, files, 1};
    rules[0].records = records;
    rules[0].record_count = 1;
    rules[1].name = "the-rest";
    rules[1].action = MB_POLICY_ALLOW;
    rules[1].role_flags = MB_POLICY_ROLE_ANY;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "engineer", 1, "192.0.2.7");
    DENIED(policy, &who, BYTES(0x03, 0x00, 0x63, 0x00, 0x02));  /* 99..100 */
    DENIED(policy, &who, BYTES(0x03, 0x00, 0x6E, 0x00, 0x02));  /* 110..111 */
    DENIED(policy, &who, BYTES(0x03, 0x00, 0x00, 0x00, 0x7D));  /* 0..124 */
    DENIED(policy, &who, BYTES(0x03, 0x00, 0x68, 0x00, 0x01));  /* 104 */
    ALLOWED(policy, &who, BYTES(0x03, 0x00, 0x00, 0x00, 0x64)); /* 0..99 */
    ALLOWED(policy, &who, BYTES(0x03, 0x00, 0x6F, 0x00, 0x10)); /* 111..126 */
    /* file 2, records 50..59 */
    DENIED(policy, &who, BYTES(0x14, 0x07, 0x06, 0x00, 0x02, 0x00, 0x30, 0x00, 0x04));
    ALLOWED(policy, &who, BYTES(0x14, 0x07, 0x06, 0x00, 0x02, 0x00, 0x2C, 0x00, 0x04));
    ALLOWED(policy, &who, BYTES(0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x30, 0x00, 0x04));
    mb_policy_destroy(policy);
}

TEST(a_rule_without_tables_covers_every_table_and_the_device) {
    struct mb_policy_rule rules[1];
    memset(rules, 0, sizeof rules);
    rules[0].name = "reader";
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].roles = operator_role;
    rules[0].role_count = 1;
    rules[0].preset = MB_POLICY_READ_ONLY;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    ALLOWED(policy, &who, BYTES(0x03, 0xFF, 0x83, 0x00, 0x7D));
    ALLOWED(policy, &who, BYTES(0x01, 0xF8, 0x30, 0x07, 0xD0));
    ALLOWED(policy, &who, BYTES(0x18, 0xFF, 0xFF));
    ALLOWED(policy, &who, BYTES(0x11));
    ALLOWED(policy, &who, BYTES(0x2B, 0x0E, 0x01, 0x00));
    DENIED(policy, &who, BYTES(0x06, 0x00, 0x00, 0x00, 0x00));
    /* Reads past the address space are outside every range a rule can give... */
    struct mb_policy_rule ranged[1] = {rules[0]};
    ranged[0].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, NULL, 0};
    mb_policy_destroy(policy);
    policy = BUILD(ranged);
    ALLOWED(policy, &who, BYTES(0x03, 0xFF, 0x83, 0x00, 0x7D)); /* 65411..65535 */
    DENIED(policy, &who, BYTES(0x03, 0xFF, 0x84, 0x00, 0x7D));  /* 65412..65536 */
    /* ... and a rule granting tables does not grant the device unless it says so. */
    DENIED(policy, &who, BYTES(0x11));
    DENIED(policy, &who, BYTES(0x08, 0x00, 0x00, 0x12, 0x34));
    mb_policy_destroy(policy);
}

TEST(functions_by_code_with_access_read_or_write) {
    static const uint8_t functions[] = {MB_FC_READ_COILS, MB_FC_WRITE_SINGLE_COIL,
                                        MB_FC_READ_WRITE_MULTIPLE_REGISTERS};
    struct mb_policy_rule rules[1];
    memset(rules, 0, sizeof rules);
    rules[0].name = "coils";
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].role_flags = MB_POLICY_ROLE_NONE;
    rules[0].functions = functions;
    rules[0].function_count = 3;
    rules[0].access = MB_POLICY_READ;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, NULL, 0, "192.0.2.7");
    ALLOWED(policy, &who, BYTES(0x01, 0x00, 0x00, 0x00, 0x01));
    DENIED(policy, &who, BYTES(0x02, 0x00, 0x00, 0x00, 0x01));
    DENIED(policy, &who, BYTES(0x05, 0x00, 0x00, 0xFF, 0x00)); /* a write, access read */
    /* FC 23 with access read: the read part is granted, the write part is not. */
    DENIED(policy, &who,
           BYTES(0x17, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x02, 0x00, 0x07));
    mb_policy_destroy(policy);
    rules[0].access = MB_POLICY_READ | MB_POLICY_WRITE;
    policy = BUILD(rules);
    ALLOWED(policy, &who, BYTES(0x05, 0x00, 0x00, 0xFF, 0x00));
    ALLOWED(policy, &who,
            BYTES(0x17, 0x00, 0x00, 0x00, 0x01, 0x00, 0x01, 0x00, 0x01, 0x02, 0x00, 0x07));
    DENIED(policy, &who, BYTES(0x06, 0x00, 0x00, 0x00, 0x00));
    mb_policy_destroy(policy);
}

TEST(fc23_read_allowed_write_denied_and_the_other_way_round) {
    static const struct mb_policy_range low[] = {{0, 99}};
    static const struct mb_policy_range high[] = {{100, 199}};
    struct mb_policy_rule rules[2];
    memset(rules, 0, sizeof rules);
    rules[0].name = "read-low";
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].access = MB_POLICY_READ;
    rules[0].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, low, 1};
    rules[1].name = "write-high";
    rules[1].action = MB_POLICY_ALLOW;
    rules[1].role_flags = MB_POLICY_ROLE_ANY;
    rules[1].access = MB_POLICY_WRITE;
    rules[1].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, high, 1};
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    /* read 0..1, write 100: each part by its own rule */
    const uint8_t both[] = {0x17, 0x00, 0x00, 0x00, 0x02, 0x00, 0x64, 0x00, 0x01, 0x02, 0x00, 0x07};
    ALLOWED(policy, &who, both, sizeof both);
    REASON(policy, &who, both, sizeof both,
           "role 'operator' from 192.0.2.7: write holding register 100 and read holding "
           "registers 0..1 on unit 1 (FC 23) allowed by rules 'write-high' and 'read-low'");
    struct mb_policy_decision decision = decide(policy, &who, 1, both, sizeof both);
    CHECK_EQ(decision.rule, 1);
    CHECK_STR(decision.rule_name, "write-high");
    /* read 0..1 allowed, write 50 denied */
    const uint8_t write_denied[] = {0x17, 0x00, 0x00, 0x00, 0x02, 0x00,
                                    0x32, 0x00, 0x01, 0x02, 0x00, 0x07};
    DENIED(policy, &who, write_denied, sizeof write_denied);
    REASON(policy, &who, write_denied, sizeof write_denied,
           "role 'operator' from 192.0.2.7: write holding register 50 on unit 1 (FC 23) matched "
           "no rule (default deny)");
    /* write 100 allowed, read 150..151 denied */
    const uint8_t read_denied[] = {0x17, 0x00, 0x96, 0x00, 0x02, 0x00,
                                   0x64, 0x00, 0x01, 0x02, 0x00, 0x07};
    DENIED(policy, &who, read_denied, sizeof read_denied);
    REASON(policy, &who, read_denied, sizeof read_denied,
           "role 'operator' from 192.0.2.7: read holding registers 150..151 on unit 1 (FC 23) "
           "matched no rule (default deny)");
    mb_policy_destroy(policy);
}

/* FC 24 answers the count register at its pointer and up to 31 values after it: a guard on
 * holding registers must not be read around through the FIFO queue. */
TEST(fc24_is_a_read_of_holding_registers_pointer_to_pointer_plus_31) {
    static const struct mb_policy_range secret[] = {{100, 110}};
    static const struct mb_policy_range everything[] = {{0, 65535}};
    static const struct mb_policy_range low[] = {{0, 99}};
    struct mb_policy_rule rules[3];
    memset(rules, 0, sizeof rules);
    rules[0].name = "secret";
    rules[0].action = MB_POLICY_DENY;
    rules[0].roles = operator_role;
    rules[0].role_count = 1;
    rules[0].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, secret, 1};
    rules[1].name = "fifos";
    rules[1].action = MB_POLICY_ALLOW;
    rules[1].roles = operator_role;
    rules[1].role_count = 1;
    rules[1].tables[MB_POLICY_FIFOS] = (struct mb_policy_grant){1, everything, 1};
    rules[2].name = "low";
    rules[2].action = MB_POLICY_ALLOW;
    rules[2].roles = engineer_role;
    rules[2].role_count = 1;
    rules[2].preset = MB_POLICY_READ_ONLY;
    rules[2].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, low, 1};
    struct mb_policy *policy = BUILD(rules);
    struct who operator_, engineer;
    set_who(&operator_, "operator", 1, "192.0.2.7");
    set_who(&engineer, "engineer", 1, "192.0.2.8");

    /* The guard sees the queue's whole reach: 69..100 touches 100, 111 is past it. */
    DENIED(policy, &operator_, (const uint8_t[]){0x18, 0x00, 0x64}, 3);
    DENIED(policy, &operator_, (const uint8_t[]){0x18, 0x00, 0x45}, 3);
    DENIED(policy, &operator_, (const uint8_t[]){0x18, 0x00, 0x6E}, 3);
    ALLOWED(policy, &operator_, (const uint8_t[]){0x18, 0x00, 0x44}, 3);
    ALLOWED(policy, &operator_, (const uint8_t[]){0x18, 0x00, 0x6F}, 3);
    /* An allowing rule on holding registers covers FC 24 only when all 32 are inside. */
    ALLOWED(policy, &engineer, (const uint8_t[]){0x18, 0x00, 0x44}, 3);
    DENIED(policy, &engineer, (const uint8_t[]){0x18, 0x00, 0x45}, 3);
    /* At the top of the address space the reach stops at 65535. */
    DENIED(policy, &engineer, (const uint8_t[]){0x18, 0xFF, 0xFF}, 3);
    REASON(policy, &operator_, (const uint8_t[]){0x18, 0x00, 0x64}, 3,
           "role 'operator' from 192.0.2.7: read FIFO queue at 100 on unit 1 (FC 24) denied by "
           "rule 'secret'");
    mb_policy_destroy(policy);
}

TEST(fc8_sub_functions_one_by_one) {
    struct mb_policy_rule rules[1];
    static const uint8_t fc8[] = {MB_FC_DIAGNOSTICS};
    memset(rules, 0, sizeof rules);
    rules[0].name = "echo-and-counters";
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].functions = fc8;
    rules[0].function_count = 1;
    rules[0].diagnostics = 1u << 0x00 | 1u << 0x0B | 1u << 0x01;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "engineer", 1, "192.0.2.7");
    ALLOWED(policy, &who, BYTES(0x08, 0x00, 0x00, 0xAB, 0xCD));
    ALLOWED(policy, &who, BYTES(0x08, 0x00, 0x0B, 0x00, 0x00));
    ALLOWED(policy, &who, BYTES(0x08, 0x00, 0x01, 0xFF, 0x00));
    DENIED(policy, &who, BYTES(0x08, 0x00, 0x0C, 0x00, 0x00));
    DENIED(policy, &who, BYTES(0x08, 0x00, 0x04, 0x00, 0x00));
    DENIED(policy, &who, BYTES(0x03, 0x00, 0x00, 0x00, 0x01));
    /* A reserved sub-function, or a short PDU, restricted rules cannot judge. */
    DENIED(policy, &who, BYTES(0x08, 0x00, 0x05, 0x00, 0x00));
    DENIED(policy, &who, BYTES(0x08, 0x00));
    /* A defined sub-function with bad data: judged by its sub-function, then answered 03. */
    ALLOWED(policy, &who, BYTES(0x08, 0x00, 0x00, 0xAB));
    DENIED(policy, &who, BYTES(0x08, 0x00, 0x0C, 0x00, 0x01));
    mb_policy_destroy(policy);

    /* Without a restriction: every sub-function, reserved ones and short PDUs included. */
    rules[0].diagnostics = 0;
    policy = BUILD(rules);
    ALLOWED(policy, &who, BYTES(0x08, 0x00, 0x04, 0x00, 0x00));
    ALLOWED(policy, &who, BYTES(0x08, 0x00, 0x05, 0x00, 0x00));
    ALLOWED(policy, &who, BYTES(0x08, 0x00));
    mb_policy_destroy(policy);
}

TEST(fc43_device_identification_and_canopen_apart) {
    struct mb_policy_rule rules[1];
    static const uint8_t fc43[] = {MB_FC_ENCAPSULATED_INTERFACE};
    memset(rules, 0, sizeof rules);
    rules[0].name = "identification";
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].functions = fc43;
    rules[0].function_count = 1;
    rules[0].encapsulated = MB_POLICY_MEI_DEVICE_ID;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "engineer", 1, "192.0.2.7");
    ALLOWED(policy, &who, BYTES(0x2B, 0x0E, 0x01, 0x00));
    ALLOWED(policy, &who, BYTES(0x2B, 0x0E, 0x07, 0x00)); /* bad read code: answered 03 */
    DENIED(policy, &who, BYTES(0x2B, 0x0D, 0x01, 0x02));
    DENIED(policy, &who, BYTES(0x2B, 0x0F, 0x00));
    DENIED(policy, &who, BYTES(0x2B));
    mb_policy_destroy(policy);
    rules[0].encapsulated = 0;
    policy = BUILD(rules);
    ALLOWED(policy, &who, BYTES(0x2B, 0x0D, 0x01, 0x02));
    ALLOWED(policy, &who, BYTES(0x2B, 0x0F, 0x00));
    mb_policy_destroy(policy);
}

TEST(value_limits_hold_for_every_value_written) {
    struct mb_policy_rule rules[2];
    memset(rules, 0, sizeof rules);
    rules[0].name = "setpoints";
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, setpoints, 1};
    rules[0].tables[MB_POLICY_FILES] = (struct mb_policy_grant){1, NULL, 0};
    rules[0].value_limit = 1;
    rules[0].value_min = 100;
    rules[0].value_max = 500;
    rules[1].name = "coils-off";
    rules[1].action = MB_POLICY_ALLOW;
    rules[1].role_flags = MB_POLICY_ROLE_ANY;
    rules[1].tables[MB_POLICY_COILS] = (struct mb_policy_grant){1, NULL, 0};
    rules[1].value_limit = 1;
    rules[1].value_min = 0;
    rules[1].value_max = 0;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "engineer", 1, "192.0.2.7");
    /* FC 6 and 16 */
    ALLOWED(policy, &who, BYTES(0x06, 0x00, 0x64, 0x00, 0x64));
    ALLOWED(policy, &who, BYTES(0x06, 0x00, 0x64, 0x01, 0xF4));
    DENIED(policy, &who, BYTES(0x06, 0x00, 0x64, 0x00, 0x63));
    DENIED(policy, &who, BYTES(0x06, 0x00, 0x64, 0x01, 0xF5));
    DENIED(policy, &who, BYTES(0x06, 0x00, 0x64, 0xFF, 0xFF));
    ALLOWED(policy, &who,
            BYTES(0x10, 0x00, 0x64, 0x00, 0x03, 0x06, 0x00, 0x64, 0x01, 0xF4, 0x01, 0x00));
    DENIED(policy, &who,
           BYTES(0x10, 0x00, 0x64, 0x00, 0x03, 0x06, 0x00, 0x64, 0x01, 0xF4, 0x00, 0x00));
    DENIED(policy, &who,
           BYTES(0x10, 0x00, 0x64, 0x00, 0x03, 0x06, 0x02, 0x00, 0x01, 0xF4, 0x01, 0x00));
    /* FC 22: every result the masks can give, whatever the register holds */
    ALLOWED(policy, &who, BYTES(0x16, 0x00, 0x64, 0x00, 0x00, 0x01, 0x2C)); /* = 300 */
    ALLOWED(policy, &who, BYTES(0x16, 0x00, 0x64, 0x00, 0x0F, 0x01, 0x00)); /* 256..271 */
    DENIED(policy, &who, BYTES(0x16, 0x00, 0x64, 0x02, 0x00, 0x00, 0x64));  /* 100..612 */
    DENIED(policy, &who, BYTES(0x16, 0x00, 0x64, 0xFF, 0xFF, 0x00, 0x00));  /* 0..65535 */
    DENIED(policy, &who, BYTES(0x16, 0x00, 0x64, 0x00, 0x00, 0x00, 0x00));  /* = 0 */
    /* FC 23: the write part's values; the read part is not limited */
    ALLOWED(policy, &who,
            BYTES(0x17, 0x00, 0x64, 0x00, 0x02, 0x00, 0x65, 0x00, 0x01, 0x02, 0x00, 0xC8));
    DENIED(policy, &who,
           BYTES(0x17, 0x00, 0x64, 0x00, 0x02, 0x00, 0x65, 0x00, 0x01, 0x02, 0x00, 0x07));
    /* FC 21: the record data */
    ALLOWED(policy, &who,
            BYTES(0x15, 0x0B, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x64, 0x01, 0xF4));
    DENIED(policy, &who,
           BYTES(0x15, 0x0B, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02, 0x00, 0x64, 0x01, 0xF5));
    /* FC 20 reads are not limited by values */
    ALLOWED(policy, &who, BYTES(0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02));
    /* FC 5 and 15: coils only off */
    ALLOWED(policy, &who, BYTES(0x05, 0x00, 0x07, 0x00, 0x00));
    DENIED(policy, &who, BYTES(0x05, 0x00, 0x07, 0xFF, 0x00));
    ALLOWED(policy, &who, BYTES(0x0F, 0x00, 0x00, 0x00, 0x0A, 0x02, 0x00, 0x00));
    DENIED(policy, &who, BYTES(0x0F, 0x00, 0x00, 0x00, 0x0A, 0x02, 0x00, 0x02));
    /* Padding bits past the quantity are not values. */
    ALLOWED(policy, &who, BYTES(0x0F, 0x00, 0x00, 0x00, 0x0A, 0x02, 0x00, 0xFC));
    ALLOWED(policy, &who, BYTES(0x01, 0x00, 0x00, 0x00, 0x0A));
    mb_policy_destroy(policy);
}

TEST(actions_deny_with_an_exception_drop_and_close) {
    static const uint8_t fc6[] = {MB_FC_WRITE_SINGLE_REGISTER};
    static const uint8_t fc16[] = {MB_FC_WRITE_MULTIPLE_REGISTERS};
    static const uint8_t fc22[] = {MB_FC_MASK_WRITE_REGISTER};
    struct mb_policy_rule rules[4];
    memset(rules, 0, sizeof rules);
    rules[0].name = "deny-02";
    rules[0].action = MB_POLICY_DENY;
    rules[0].exception = MB_EX_ILLEGAL_DATA_ADDRESS;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].functions = fc6;
    rules[0].function_count = 1;
    rules[1].name = "drop";
    rules[1].action = MB_POLICY_DROP;
    rules[1].role_flags = MB_POLICY_ROLE_ANY;
    rules[1].functions = fc16;
    rules[1].function_count = 1;
    rules[2].name = "close";
    rules[2].action = MB_POLICY_CLOSE;
    rules[2].role_flags = MB_POLICY_ROLE_ANY;
    rules[2].functions = fc22;
    rules[2].function_count = 1;
    rules[3].name = "the-rest";
    rules[3].action = MB_POLICY_ALLOW;
    rules[3].role_flags = MB_POLICY_ROLE_ANY;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "engineer", 1, "192.0.2.7");
    expect(__LINE__, policy, &who, 1, BYTES(0x06, 0x00, 0x00, 0x00, 0x01), MB_POLICY_DENY, 2);
    expect(__LINE__, policy, &who, 1, BYTES(0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x01),
           MB_POLICY_DROP, 0);
    expect(__LINE__, policy, &who, 1, BYTES(0x16, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
           MB_POLICY_CLOSE, 0);
    expect(__LINE__, policy, &who, 1, BYTES(0x03, 0x00, 0x00, 0x00, 0x01), MB_POLICY_ALLOW, 0);
    REASON(policy, &who, BYTES(0x06, 0x00, 0x00, 0x00, 0x01),
           "role 'engineer' from 192.0.2.7: write holding register 0 on unit 1 (FC 6) denied by "
           "rule 'deny-02' with exception 02");
    REASON(policy, &who, BYTES(0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x01),
           "role 'engineer' from 192.0.2.7: write holding register 0 on unit 1 (FC 16) dropped by "
           "rule 'drop'");
    REASON(policy, &who, BYTES(0x16, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00),
           "role 'engineer' from 192.0.2.7: write holding register 0 on unit 1 (FC 22) connection "
           "closed by rule 'close'");
    mb_policy_destroy(policy);
}

TEST(the_most_severe_part_decides_a_request_of_several_parts) {
    static const struct mb_policy_range low[] = {{0, 99}};
    static const struct mb_policy_range file_1[] = {{1, 1}};
    static const struct mb_policy_range file_2[] = {{2, 2}};
    struct mb_policy_rule rules[4];
    memset(rules, 0, sizeof rules);
    rules[0].name = "close-on-low-reads";
    rules[0].action = MB_POLICY_CLOSE;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].access = MB_POLICY_READ;
    rules[0].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, low, 1};
    rules[1].name = "drop-low-writes";
    rules[1].action = MB_POLICY_DROP;
    rules[1].role_flags = MB_POLICY_ROLE_ANY;
    rules[1].access = MB_POLICY_WRITE;
    rules[1].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, low, 1};
    rules[2].name = "file-1";
    rules[2].action = MB_POLICY_ALLOW;
    rules[2].role_flags = MB_POLICY_ROLE_ANY;
    rules[2].tables[MB_POLICY_FILES] = (struct mb_policy_grant){1, file_1, 1};
    rules[3].name = "file-2";
    rules[3].action = MB_POLICY_ALLOW;
    rules[3].role_flags = MB_POLICY_ROLE_ANY;
    rules[3].tables[MB_POLICY_FILES] = (struct mb_policy_grant){1, file_2, 1};
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "engineer", 1, "192.0.2.7");
    const uint8_t fc23[] = {0x17, 0x00, 0x00, 0x00, 0x02, 0x00, 0x0A, 0x00, 0x01, 0x02, 0x00, 0x07};
    struct mb_policy_decision decision = decide(policy, &who, 1, fc23, sizeof fc23);
    CHECK_EQ(decision.action, MB_POLICY_CLOSE);
    CHECK_STR(decision.rule_name, "close-on-low-reads");
    /* Default deny outranks allow; an allowed part never hides a denied one. */
    const uint8_t files[] = {0x14, 0x15, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x06, 0x00, 0x03,
                             0x00, 0x00, 0x00, 0x01, 0x06, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01};
    decision = decide(policy, &who, 1, files, sizeof files);
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.rule, -1);
    REASON(policy, &who, files, sizeof files,
           "role 'engineer' from 192.0.2.7: read file 3 record 0 on unit 1 (FC 20) matched no "
           "rule (default deny)");
    const uint8_t allowed[] = {0x14, 0x15, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00,
                               0x01, 0x06, 0x00, 0x02, 0x00, 0x00, 0x00, 0x01,
                               0x06, 0x00, 0x01, 0x00, 0x05, 0x00, 0x03};
    decision = decide(policy, &who, 1, allowed, sizeof allowed);
    CHECK_EQ(decision.action, MB_POLICY_ALLOW);
    CHECK_STR(decision.rule_name, "file-1");
    REASON(policy, &who, allowed, sizeof allowed,
           "role 'engineer' from 192.0.2.7: read file 1 record 0 and 2 more sub-requests on unit "
           "1 (FC 20) allowed by rules 'file-1' and 'file-2'");
    mb_policy_destroy(policy);
}

/* ---- monitor mode ---- */

static struct mb_policy *build_with(int line, const struct mb_policy_rule *rules, size_t count,
                                    int monitor_default) {
    struct mb_policy *policy = NULL;
    char error[256];
    struct mb_policy_settings settings = {.monitor_default = monitor_default};
    int status = mb_policy_create_with(rules, count, &settings, &policy, error, sizeof error);
    harness_checks++;
    if (status != 0 || policy == NULL) {
        harness_fail(__FILE__, line, "mb_policy_create_with: %d: %s", status, error);
        exit(1);
    }
    return policy;
}

TEST(a_default_deny_in_monitor_mode_says_monitor_and_what_it_would_answer) {
    struct mb_policy_rule rules[1];
    memset(rules, 0, sizeof rules);
    rules[0].name = "reads";
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].preset = MB_POLICY_READ_ONLY;
    struct mb_policy *policy = build_with(__LINE__, rules, 1, 1);
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    struct mb_policy_decision decision =
        decide(policy, &who, 1, BYTES(0x06, 0x00, 0x64, 0x00, 0x07));
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.exception, 1);
    CHECK_EQ(decision.monitor, 1);
    CHECK_EQ(decision.rule, -1);
    CHECK_STR(decision.rule_name, "default");
    CHECK_STR(decision.reason, "role 'operator' from 192.0.2.7: write holding register 100 on unit "
                               "1 (FC 6) matched no rule (default deny) [monitor mode: not "
                               "enforced]");
    decision = decide(policy, &who, 1, BYTES(0x03, 0x00, 0x64, 0x00, 0x07));
    CHECK_EQ(decision.action, MB_POLICY_ALLOW);
    CHECK_EQ(decision.monitor, 0);
    CHECK_EQ(mb_policy_rule_monitor(policy, 0), 0);
    CHECK_EQ(mb_policy_rule_monitor(policy, 1), 1); /* the default */
    CHECK_EQ(mb_policy_rule_monitor(policy, 2), 0); /* no such rule */
    CHECK_EQ(mb_policy_rule_monitor(NULL, 0), 0);
    mb_policy_destroy(policy);
    /* The same rules enforced: the same decision, not monitored. */
    policy = build_with(__LINE__, rules, 1, 0);
    decision = decide(policy, &who, 1, BYTES(0x06, 0x00, 0x64, 0x00, 0x07));
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.monitor, 0);
    CHECK_EQ(mb_policy_rule_monitor(policy, 1), 0);
    mb_policy_destroy(policy);
}

TEST(a_monitor_rule_reports_the_parts_it_matches_when_the_rest_would_allow_them) {
    static const struct mb_policy_range guarded[] = {{100, 110}};
    struct mb_policy_rule rules[2];
    memset(rules, 0, sizeof rules);
    rules[0].name = "guard";
    rules[0].action = MB_POLICY_DENY;
    rules[0].exception = MB_EX_ILLEGAL_DATA_ADDRESS;
    rules[0].monitor = 1;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, guarded, 1};
    rules[1].name = "everything";
    rules[1].action = MB_POLICY_ALLOW;
    rules[1].role_flags = MB_POLICY_ROLE_ANY;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "engineer", 1, "192.0.2.7");
    struct mb_policy_decision decision =
        decide(policy, &who, 1, BYTES(0x06, 0x00, 0x64, 0x00, 0x07));
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.exception, 2);
    CHECK_EQ(decision.monitor, 1);
    CHECK_STR(decision.rule_name, "guard");
    CHECK_STR(decision.reason, "role 'engineer' from 192.0.2.7: write holding register 100 on unit "
                               "1 (FC 6) denied by rule 'guard' with exception 02 [monitor mode: "
                               "not enforced]");
    /* Outside the guard: the next rule allows, nothing monitored. */
    decision = decide(policy, &who, 1, BYTES(0x06, 0x00, 0x6F, 0x00, 0x07));
    CHECK_EQ(decision.action, MB_POLICY_ALLOW);
    CHECK_EQ(decision.monitor, 0);
    /* The default of this policy is enforced: a policy's monitor mode is per rule. */
    CHECK_EQ(mb_policy_rule_monitor(policy, 0), 1);
    CHECK_EQ(mb_policy_rule_monitor(policy, 2), 0);
    mb_policy_destroy(policy);
}

TEST(a_monitor_rule_never_shadows_an_enforced_rule_after_it_or_the_default) {
    /* A guard on trial at the top: an enforced close of FC 8 restart after it still closes. */
    static const uint8_t restart[] = {MB_FC_DIAGNOSTICS};
    struct mb_policy_rule rules[3];
    memset(rules, 0, sizeof rules);
    rules[0].name = "guard-on-trial";
    rules[0].action = MB_POLICY_DENY;
    rules[0].monitor = 1;
    rules[0].role_flags = MB_POLICY_ROLE_ANY | MB_POLICY_ROLE_NONE;
    rules[0].access = MB_POLICY_WRITE;
    rules[1].name = "no-restarts";
    rules[1].action = MB_POLICY_CLOSE;
    rules[1].role_flags = MB_POLICY_ROLE_ANY | MB_POLICY_ROLE_NONE;
    rules[1].functions = restart;
    rules[1].function_count = 1;
    rules[1].diagnostics = 1u << MB_DIAG_RESTART_COMMUNICATIONS;
    rules[2].name = "everyone";
    rules[2].action = MB_POLICY_ALLOW;
    rules[2].role_flags = MB_POLICY_ROLE_ANY | MB_POLICY_ROLE_NONE;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, NULL, 0, "10.0.0.1");
    struct mb_policy_decision decision =
        decide(policy, &who, 1, BYTES(0x08, 0x00, 0x01, 0x00, 0x00));
    CHECK_EQ(decision.action, MB_POLICY_CLOSE);
    CHECK_EQ(decision.monitor, 0);
    CHECK_STR(decision.rule_name, "no-restarts");
    /* A write the trial guard refuses and "everyone" allows: reported, not enforced. */
    decision = decide(policy, &who, 1, BYTES(0x06, 0x00, 0x64, 0x00, 0x07));
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.monitor, 1);
    CHECK_STR(decision.rule_name, "guard-on-trial");
    mb_policy_destroy(policy);

    /* The guard alone, before an enforced default deny: the default still denies. */
    policy = build_with(__LINE__, rules, 1, 0);
    decision = decide(policy, &who, 1, BYTES(0x06, 0x00, 0x64, 0x00, 0x07));
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.monitor, 0);
    CHECK_EQ(decision.rule, -1);
    mb_policy_destroy(policy);
    /* With the default in monitor mode too, the guard is what is reported. */
    policy = build_with(__LINE__, rules, 1, 1);
    decision = decide(policy, &who, 1, BYTES(0x06, 0x00, 0x64, 0x00, 0x07));
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.monitor, 1);
    CHECK_STR(decision.rule_name, "guard-on-trial");
    mb_policy_destroy(policy);

    /* Two monitored rules, then an enforced one: the enforced one decides. */
    struct mb_policy_rule chain[3];
    memset(chain, 0, sizeof chain);
    chain[0] = rules[0];
    chain[1] = rules[0];
    chain[1].name = "second-trial";
    chain[1].action = MB_POLICY_DROP;
    chain[2] = rules[0];
    chain[2].name = "enforced-guard";
    chain[2].monitor = 0;
    chain[2].exception = MB_EX_ILLEGAL_DATA_ADDRESS;
    policy = build_with(__LINE__, chain, 3, 1);
    decision = decide(policy, &who, 1, BYTES(0x06, 0x00, 0x64, 0x00, 0x07));
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.exception, 2);
    CHECK_EQ(decision.monitor, 0);
    CHECK_STR(decision.rule_name, "enforced-guard");
    mb_policy_destroy(policy);
}

TEST(an_enforced_refusal_of_any_part_outranks_every_monitored_one) {
    static const struct mb_policy_range low[] = {{0, 99}};
    struct mb_policy_rule rules[5];
    memset(rules, 0, sizeof rules);
    rules[0].name = "close-low-writes";
    rules[0].action = MB_POLICY_CLOSE;
    rules[0].monitor = 1;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].access = MB_POLICY_WRITE;
    rules[0].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, low, 1};
    rules[1].name = "deny-low-reads";
    rules[1].action = MB_POLICY_DENY;
    rules[1].role_flags = MB_POLICY_ROLE_ANY;
    rules[1].access = MB_POLICY_READ;
    rules[1].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, low, 1};
    rules[2].name = "drop-high-reads";
    rules[2].action = MB_POLICY_DROP;
    rules[2].monitor = 1;
    rules[2].role_flags = MB_POLICY_ROLE_ANY;
    rules[2].access = MB_POLICY_READ;
    rules[3].name = "reads";
    rules[3].action = MB_POLICY_ALLOW;
    rules[3].role_flags = MB_POLICY_ROLE_ANY;
    rules[3].access = MB_POLICY_READ;
    rules[4].name = "low-writes";
    rules[4].action = MB_POLICY_ALLOW;
    rules[4].role_flags = MB_POLICY_ROLE_ANY;
    rules[4].access = MB_POLICY_WRITE;
    rules[4].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, low, 1};
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "engineer", 1, "192.0.2.7");
    /* FC 23 writing 0..1 (monitored close) and reading 10 (enforced deny): denied, enforced. */
    const uint8_t both_low[] = {0x17, 0x00, 0x0A, 0x00, 0x01, 0x00,
                                0x00, 0x00, 0x01, 0x02, 0x00, 0x07};
    struct mb_policy_decision decision = decide(policy, &who, 1, both_low, sizeof both_low);
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.monitor, 0);
    CHECK_STR(decision.rule_name, "deny-low-reads");
    /* Reading 200 (monitored drop) and writing 0 (monitored close): the most severe monitored
     * refusal, still monitored. */
    const uint8_t high_read[] = {0x17, 0x00, 0xC8, 0x00, 0x01, 0x00,
                                 0x00, 0x00, 0x01, 0x02, 0x00, 0x07};
    decision = decide(policy, &who, 1, high_read, sizeof high_read);
    CHECK_EQ(decision.action, MB_POLICY_CLOSE);
    CHECK_EQ(decision.monitor, 1);
    CHECK_STR(decision.rule_name, "close-low-writes");
    /* Writing 200: no rule, the enforced default deny beats the monitored drop of the read. */
    const uint8_t high_write[] = {0x17, 0x00, 0xC8, 0x00, 0x01, 0x00,
                                  0xC8, 0x00, 0x01, 0x02, 0x00, 0x07};
    decision = decide(policy, &who, 1, high_write, sizeof high_write);
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.monitor, 0);
    CHECK_EQ(decision.rule, -1);
    mb_policy_destroy(policy);
}

TEST(monitor_goes_only_with_rules_that_refuse_and_changes_the_canonical_form) {
    struct mb_policy_rule rule;
    memset(&rule, 0, sizeof rule);
    rule.name = "reads";
    rule.action = MB_POLICY_ALLOW;
    rule.monitor = 1;
    rule.role_flags = MB_POLICY_ROLE_ANY;
    struct mb_policy *policy = NULL;
    char error[256];
    CHECK_EQ(mb_policy_create(&rule, 1, &policy, error, sizeof error), MB_EINVAL);
    CHECK(strstr(error, "monitor mode goes only with a rule that refuses") != NULL);
    CHECK(policy == NULL);
    /* Enforced, monitored rule, monitored default: three canonical forms, three hashes; the
     * enforced one is the text a policy had before monitor mode existed. */
    rule.action = MB_POLICY_DENY;
    rule.monitor = 0;
    struct mb_policy *enforced = build_with(__LINE__, &rule, 1, 0);
    rule.monitor = 1;
    struct mb_policy *monitored = build_with(__LINE__, &rule, 1, 0);
    rule.monitor = 0;
    struct mb_policy *monitored_default = build_with(__LINE__, &rule, 1, 1);
    char one[2048], two[2048], three[2048];
    CHECK(mb_policy_canonical(enforced, one, sizeof one) > 0);
    CHECK(mb_policy_canonical(monitored, two, sizeof two) > 0);
    CHECK(mb_policy_canonical(monitored_default, three, sizeof three) > 0);
    CHECK(strstr(one, "monitor") == NULL);
    CHECK(strstr(one, "\ndefault deny\n") != NULL);
    CHECK(strstr(two, "\n monitor\n") != NULL);
    CHECK(strstr(three, "\ndefault deny monitor\n") != NULL);
    CHECK(strcmp(one, two) != 0 && strcmp(two, three) != 0 && strcmp(one, three) != 0);
    /* A copy keeps the modes. */
    struct mb_policy *copy = NULL;
    CHECK_EQ(mb_policy_copy(monitored_default, &copy), 0);
    CHECK_EQ(mb_policy_rule_monitor(copy, 1), 1);
    mb_policy_destroy(copy);
    mb_policy_destroy(enforced);
    mb_policy_destroy(monitored);
    mb_policy_destroy(monitored_default);
}

TEST(the_first_matching_rule_decides) {
    struct mb_policy_rule rules[2] = {holding_reader("deny-first"), holding_reader("allow")};
    rules[0].action = MB_POLICY_DENY;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[1].role_flags = MB_POLICY_ROLE_ANY;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    struct mb_policy_decision decision = decide(policy, &who, 1, READ_3);
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.rule, 0);
    mb_policy_destroy(policy);

    struct mb_policy_rule swapped[2] = {rules[1], rules[0]};
    policy = BUILD(swapped);
    decision = decide(policy, &who, 1, READ_3);
    CHECK_EQ(decision.action, MB_POLICY_ALLOW);
    CHECK_EQ(decision.rule, 0);
    CHECK_STR(decision.rule_name, "allow");
    mb_policy_destroy(policy);

    /* A rule that does not match (another role) is passed over. */
    swapped[0].role_flags = 0;
    swapped[0].roles = engineer_role;
    swapped[0].role_count = 1;
    policy = BUILD(swapped);
    decision = decide(policy, &who, 1, READ_3);
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(decision.rule, 1);
    mb_policy_destroy(policy);
}

TEST(an_empty_policy_denies_everything) {
    struct mb_policy *policy = NULL;
    CHECK_EQ(mb_policy_create(NULL, 0, &policy, NULL, 0), 0);
    struct who who;
    set_who(&who, "admin", 1, "::1");
    DENIED(policy, &who, READ_3);
    DENIED(policy, &who, BYTES(0x11));
    mb_policy_destroy(policy);
}

TEST(requests_that_do_not_decode_match_only_rules_without_tables) {
    static const uint8_t fc3_fc16[] = {MB_FC_READ_HOLDING_REGISTERS,
                                       MB_FC_WRITE_MULTIPLE_REGISTERS};
    struct mb_policy_rule rules[1];
    memset(rules, 0, sizeof rules);
    rules[0].name = "by-function";
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].functions = fc3_fc16;
    rules[0].function_count = 2;
    rules[0].access = MB_POLICY_READ;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    ALLOWED(policy, &who, BYTES(0x03, 0x00, 0x00, 0x00, 0x00)); /* quantity 0 */
    ALLOWED(policy, &who, BYTES(0x03, 0x00, 0x00, 0x00));       /* truncated */
    ALLOWED(policy, &who, BYTES(0x03));
    /* FC 16 is a write: access read does not cover it, decoded or not. */
    DENIED(policy, &who, BYTES(0x10, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x01));
    DENIED(policy, &who, BYTES(0x04, 0x00, 0x00, 0x00, 0x00));
    mb_policy_destroy(policy);

    rules[0].access = 0;
    policy = BUILD(rules);
    ALLOWED(policy, &who, BYTES(0x10, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x01));
    mb_policy_destroy(policy);

    /* With a value limit a write that does not decode has no values to check. */
    rules[0].value_limit = 1;
    rules[0].value_max = 65535;
    policy = BUILD(rules);
    DENIED(policy, &who, BYTES(0x10, 0x00, 0x00, 0x00, 0x01, 0x04, 0x00, 0x01));
    ALLOWED(policy, &who, BYTES(0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x01));
    ALLOWED(policy, &who, BYTES(0x03, 0x00, 0x00, 0x00, 0x00));
    mb_policy_destroy(policy);

    /* With tables: nothing that does not decode. */
    rules[0].value_limit = 0;
    rules[0].value_max = 0;
    rules[0].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, NULL, 0};
    rules[0].tables[MB_POLICY_DEVICE].granted = 1;
    policy = BUILD(rules);
    ALLOWED(policy, &who, BYTES(0x03, 0x00, 0x00, 0x00, 0x01));
    DENIED(policy, &who, BYTES(0x03, 0x00, 0x00, 0x00, 0x00));
    mb_policy_destroy(policy);

    /* An empty PDU, reserved and exception-bit codes: only a rule on every function code. */
    memset(rules, 0, sizeof rules);
    rules[0].name = "everything";
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    policy = BUILD(rules);
    struct mb_policy_decision decision;
    CHECK_EQ(mb_policy_decide(policy, &who.identity, 1, (const uint8_t *)"", 0, &decision), 0);
    CHECK_EQ(decision.action, MB_POLICY_ALLOW);
    ALLOWED(policy, &who, BYTES(0x09));
    ALLOWED(policy, &who, BYTES(0x83, 0x02));
    ALLOWED(policy, &who, BYTES(0x64));
    mb_policy_destroy(policy);
}

TEST(user_defined_codes_need_read_and_write_and_are_not_in_presets) {
    static const uint8_t fc100[] = {100};
    struct mb_policy_rule rules[2];
    memset(rules, 0, sizeof rules);
    rules[0].name = "vendor-read";
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].role_flags = MB_POLICY_ROLE_ANY;
    rules[0].functions = fc100;
    rules[0].function_count = 1;
    rules[0].access = MB_POLICY_READ;
    rules[1].name = "read-write";
    rules[1].action = MB_POLICY_ALLOW;
    rules[1].role_flags = MB_POLICY_ROLE_ANY;
    rules[1].preset = MB_POLICY_READ_WRITE;
    struct mb_policy *policy = BUILD(rules);
    struct who who;
    set_who(&who, "engineer", 1, "192.0.2.7");
    DENIED(policy, &who, BYTES(0x64, 0x01));
    ALLOWED(policy, &who, BYTES(0x10, 0x00, 0x00, 0x00, 0x01, 0x02, 0x00, 0x01));
    mb_policy_destroy(policy);
    rules[0].access = 0;
    policy = BUILD(rules);
    ALLOWED(policy, &who, BYTES(0x64, 0x01));
    DENIED(policy, &who, BYTES(0x65, 0x01));
    mb_policy_destroy(policy);
}

/* ---- reasons ---- */

TEST(an_allowed_read_has_no_reason_unless_explained) {
    struct mb_policy *policy = station();
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    const uint8_t read[] = {0x03, 0x00, 0x00, 0x00, 0x0A};
    struct mb_policy_decision decision = decide(policy, &who, 1, read, sizeof read);
    CHECK_EQ(decision.action, MB_POLICY_ALLOW);
    CHECK_STR(decision.rule_name, "operators-read");
    CHECK_STR(decision.reason, "");
    mb_policy_destroy(policy);
}

TEST(reasons_say_who_what_and_which_rule) {
    struct mb_policy *policy = station();
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    REASON(policy, &who, BYTES(0x03, 0x00, 0x00, 0x00, 0x0A),
           "role 'operator' from 192.0.2.7: read holding registers 0..9 on unit 1 (FC 3) allowed "
           "by rule 'operators-read'");
    REASON(policy, &who, BYTES(0x10, 0x00, 0x64, 0x00, 0x02, 0x04, 0x00, 0x01, 0x01, 0xF4),
           "role 'operator' from 192.0.2.7: write holding registers 100..101 on unit 1 (FC 16) "
           "matched no rule (default deny)");
    REASON(policy, &who, BYTES(0x01, 0x00, 0x05, 0x00, 0x01),
           "role 'operator' from 192.0.2.7: read coil 5 on unit 1 (FC 1) allowed by rule "
           "'operators-read'");
    REASON(policy, &who, BYTES(0x02, 0x00, 0x05, 0x00, 0x02),
           "role 'operator' from 192.0.2.7: read discrete inputs 5..6 on unit 1 (FC 2) allowed "
           "by rule 'operators-read'");
    REASON(policy, &who, BYTES(0x04, 0x00, 0x05, 0x00, 0x02),
           "role 'operator' from 192.0.2.7: read input registers 5..6 on unit 1 (FC 4) allowed "
           "by rule 'operators-read'");
    REASON(policy, &who, BYTES(0x0F, 0x00, 0x00, 0x00, 0x08, 0x01, 0xFF),
           "role 'operator' from 192.0.2.7: write coils 0..7 on unit 1 (FC 15) matched no rule "
           "(default deny)");
    REASON(policy, &who, BYTES(0x08, 0x00, 0x01, 0x00, 0x00),
           "role 'operator' from 192.0.2.7: restart communications on unit 1 (FC 8/01) matched "
           "no rule (default deny)");
    REASON(policy, &who, BYTES(0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x02),
           "role 'operator' from 192.0.2.7: read file 1 records 0..1 on unit 1 (FC 20) allowed "
           "by rule 'operators-read'");
    REASON(policy, &who, BYTES(0x15, 0x09, 0x06, 0x00, 0x01, 0x00, 0x00, 0x00, 0x01, 0x12, 0x34),
           "role 'operator' from 192.0.2.7: write file 1 record 0 on unit 1 (FC 21) matched no "
           "rule (default deny)");
    REASON(policy, &who, BYTES(0x18, 0x03, 0x84),
           "role 'operator' from 192.0.2.7: read FIFO queue at 900 on unit 1 (FC 24) allowed by "
           "rule 'operators-read'");
    REASON(policy, &who, BYTES(0x2B, 0x0E, 0x01, 0x00),
           "role 'operator' from 192.0.2.7: read device identification on unit 1 (FC 43/14) "
           "allowed by rule 'operators-read'");
    REASON(policy, &who, BYTES(0x2B, 0x0D, 0x01),
           "role 'operator' from 192.0.2.7: CANopen general reference on unit 1 (FC 43/13) "
           "matched no rule (default deny)");
    REASON(policy, &who, BYTES(0x11),
           "role 'operator' from 192.0.2.7: report server id on unit 1 (FC 17) allowed by rule "
           "'operators-read'");
    REASON(policy, &who, BYTES(0x64, 0x00),
           "role 'operator' from 192.0.2.7: user-defined function on unit 1 (FC 100) matched no "
           "rule (default deny)");
    REASON(policy, &who, BYTES(0x03, 0x00, 0x00, 0x00, 0x00),
           "role 'operator' from 192.0.2.7: undecodable request on unit 1 (FC 3) matched no rule "
           "(default deny)");
    REASON(policy, &who, BYTES(0x08, 0x00, 0x00, 0x12),
           "role 'operator' from 192.0.2.7: undecodable request on unit 1 (FC 8/00) matched no "
           "rule (default deny)");
    set_who(&who, "engineer", 1, "2001:db8::7");
    expect_reason(__LINE__, policy, &who, 17, BYTES(0x06, 0x00, 0x69, 0x01, 0x90),
                  "role 'engineer' from 2001:db8::7: write holding register 105 on unit 17 (FC 6) "
                  "allowed by rule 'engineer-setpoints'");
    REASON(policy, &who, BYTES(0x06, 0x00, 0x69, 0x01, 0xF5),
           "role 'engineer' from 2001:db8::7: write holding register 105 on unit 1 (FC 6) denied "
           "by rule 'engineer-setpoints-guard'");
    REASON(policy, &who,
           BYTES(0x17, 0x00, 0x00, 0x00, 0x02, 0x00, 0x0A, 0x00, 0x01, 0x02, 0x00, 0x07),
           "role 'engineer' from 2001:db8::7: write holding register 10 and read holding "
           "registers 0..1 on unit 1 (FC 23) allowed by rule 'engineer'");
    set_who(&who, "engineer", 1, "::ffff:192.0.2.8");
    REASON(policy, &who, BYTES(0x07),
           "role 'engineer' from 192.0.2.8: read exception status on unit 1 (FC 7) allowed by "
           "rule 'engineer'");
    set_who(&who, NULL, 1, "192.0.2.7");
    REASON(policy, &who, BYTES(0x0B),
           "no role from 192.0.2.7: get comm event counter on unit 1 (FC 11) matched no rule "
           "(default deny)");
    set_who(&who, NULL, 0, "192.0.2.7");
    REASON(policy, &who, BYTES(0x0C),
           "plain TCP from 192.0.2.7: get comm event log on unit 1 (FC 12) matched no rule "
           "(default deny)");
    set_who(&who, "operator", 0, NULL);
    REASON(policy, &who, BYTES(0x11),
           "role 'operator' from an unknown address over plain TCP: report server id on unit 1 "
           "(FC 17) allowed by rule 'operators-read'");
    mb_policy_destroy(policy);
}

TEST(reasons_keep_strange_roles_on_one_short_line) {
    struct mb_policy *policy = station();
    struct who who;
    set_who(&who, "evil'\n\"role\\\x7f", 1, "192.0.2.7");
    REASON(policy, &who, BYTES(0x11),
           "role 'evil?\?\?role?\?' from 192.0.2.7: report server id on unit 1 (FC 17) matched no "
           "rule (default deny)");
    char long_role[400];
    memset(long_role, 'r', sizeof long_role - 1);
    long_role[sizeof long_role - 1] = '\0';
    set_who(&who, long_role, 1, "ffff:ffff:ffff:ffff:ffff:ffff:ffff:fffe");
    struct mb_policy_decision decision =
        decide(policy, &who, 255,
               BYTES(0x17, 0xFF, 0x00, 0x00, 0x7D, 0xFF, 0x00, 0x00, 0x01, 0x02, 0x00, 0x07));
    char prefix[64];
    snprintf(prefix, sizeof prefix, "role '%.32s...' from ffff:", long_role);
    CHECK(strlen(decision.reason) < sizeof decision.reason);
    CHECK(strncmp(decision.reason, prefix, strlen(prefix)) == 0);
    CHECK(strchr(decision.reason, '\n') == NULL);
    mb_policy_destroy(policy);
}

TEST(reasons_write_addresses_as_inet_ntop_does) {
    struct mb_policy *policy = station();
    struct who who;
    const char *addresses[] = {"::1",
                               "::",
                               "2001:db8::7",
                               "1::",
                               "1:0:0:2::3",
                               "1::2:0:0:3",
                               "1:0:2:0:3:0:4:0",
                               "fe80::1:0:0:0",
                               "0:0:1::",
                               "1:2:3:4:5:6:7:8",
                               "a:bc:def:1234::",
                               "0.0.0.0",
                               "255.255.255.255",
                               "10.0.0.1"};
    for (size_t i = 0; i < sizeof addresses / sizeof addresses[0]; i++) {
        set_who(&who, NULL, 1, addresses[i]);
        struct mb_policy_decision decision = decide(policy, &who, 1, READ_3);
        char want[96];
        snprintf(want, sizeof want, "no role from %s: ", addresses[i]);
        CHECK(strncmp(decision.reason, want, strlen(want)) == 0);
        if (strncmp(decision.reason, want, strlen(want)) != 0)
            fprintf(stderr, "  %s\n", decision.reason);
    }
    /* Random addresses with runs of zero groups, against the C library's own formatting
     * (leaving out ::/96, which it writes with a dotted IPv4 tail). */
    unsigned seed = 12345;
    for (int round = 0; round < 2000; round++) {
        struct sockaddr_in6 in6;
        memset(&in6, 0, sizeof in6);
        in6.sin6_family = AF_INET6;
        for (int group = 0; group < 8; group++) {
            seed = seed * 1103515245u + 12345u;
            unsigned value = (seed >> 16) % 4 == 0 ? 0 : (seed >> 8) & 0xFFFF;
            if ((seed >> 20) % 3 == 0)
                value &= 0xF;
            in6.sin6_addr.s6_addr[2 * group] = (uint8_t)(value >> 8);
            in6.sin6_addr.s6_addr[2 * group + 1] = (uint8_t)value;
        }
        static const uint8_t zero[12];
        if (memcmp(in6.sin6_addr.s6_addr, zero, 12) == 0 ||
            (memcmp(in6.sin6_addr.s6_addr, zero, 10) == 0 && in6.sin6_addr.s6_addr[10] == 0xFF &&
             in6.sin6_addr.s6_addr[11] == 0xFF))
            continue;
        char text[INET6_ADDRSTRLEN], want[96];
        inet_ntop(AF_INET6, &in6.sin6_addr, text, sizeof text);
        struct mb_policy_identity identity = {.role = NULL,
                                              .tls = 1,
                                              .address = (const struct sockaddr *)&in6,
                                              .address_length = sizeof in6};
        struct mb_policy_decision decision;
        CHECK_EQ(mb_policy_decide(policy, &identity, 1, READ_3, &decision), 0);
        snprintf(want, sizeof want, "no role from %s: ", text);
        harness_checks++;
        if (strncmp(decision.reason, want, strlen(want)) != 0)
            harness_fail(__FILE__, __LINE__, "%s\n  want %s", decision.reason, want);
    }
    mb_policy_destroy(policy);
}

/* ---- arguments, copies ---- */

TEST(null_arguments_are_einval_and_a_default_deny) {
    struct mb_policy *policy = station();
    struct who who;
    struct mb_policy_decision decision;
    set_who(&who, "operator", 1, "192.0.2.7");
    const uint8_t pdu[] = {0x03, 0x00, 0x00, 0x00, 0x01};
    CHECK_EQ(mb_policy_decide(NULL, &who.identity, 1, pdu, sizeof pdu, &decision), MB_EINVAL);
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_STR(decision.reason,
              "no policy decision possible: an argument is missing (default deny)");
    CHECK_EQ(decision.exception, 1);
    CHECK_EQ(decision.rule, -1);
    CHECK_STR(decision.rule_name, "default");
    CHECK_EQ(mb_policy_decide(policy, NULL, 1, pdu, sizeof pdu, &decision), MB_EINVAL);
    CHECK_EQ(decision.action, MB_POLICY_DENY);
    CHECK_EQ(mb_policy_decide(policy, &who.identity, 1, NULL, 5, &decision), MB_EINVAL);
    CHECK_EQ(mb_policy_decide(policy, &who.identity, 1, pdu, sizeof pdu, NULL), MB_EINVAL);
    CHECK_EQ(mb_policy_decide(policy, &who.identity, 1, pdu, sizeof pdu, &decision), 0);
    CHECK_EQ(decision.action, MB_POLICY_ALLOW);
    struct mb_policy *copy = NULL;
    CHECK_EQ(mb_policy_copy(NULL, &copy), MB_EINVAL);
    CHECK_EQ(mb_policy_copy(policy, NULL), MB_EINVAL);
    CHECK_EQ(mb_policy_create(NULL, 1, &copy, NULL, 0), MB_EINVAL);
    CHECK_EQ(mb_policy_create(NULL, 0, NULL, NULL, 0), MB_EINVAL);
    mb_policy_destroy(NULL);
    mb_policy_destroy(policy);
}

TEST(a_copy_decides_alike_after_the_original_is_gone) {
    struct mb_policy *policy = station();
    struct mb_policy *copy = NULL;
    CHECK_EQ(mb_policy_copy(policy, &copy), 0);
    mb_policy_destroy(policy);
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    run_matrix(copy, &who, 0);
    set_who(&who, "engineer", 1, "192.0.2.7");
    run_matrix(copy, &who, 1);
    struct mb_policy_decision decision = decide(copy, &who, 1, BYTES(0x06, 0x00, 0x69, 0x01, 0x90));
    CHECK_STR(decision.rule_name, "engineer-setpoints");
    CHECK_STR(mb_policy_rule_name(copy, 2), "engineer-setpoints-guard");
    mb_policy_destroy(copy);
}

TEST(a_referenced_policy_outlives_one_destroy_and_the_last_destroy_frees_it) {
    struct mb_policy *policy = station();
    CHECK(mb_policy_ref(policy) == policy);
    CHECK(mb_policy_ref(NULL) == NULL);
    mb_policy_destroy(policy); /* the creator lets go; the reference taken above keeps it */
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    run_matrix(policy, &who, 0);
    set_who(&who, "engineer", 1, "192.0.2.7");
    run_matrix(policy, &who, 1);
    struct mb_policy_decision decision =
        decide(policy, &who, 1, BYTES(0x06, 0x00, 0x69, 0x01, 0x90));
    CHECK_STR(decision.rule_name, "engineer-setpoints");
    DENIED(policy, &who, BYTES(0x06, 0x00, 0x69, 0x01, 0xF5));
    CHECK_STR(mb_policy_rule_name(policy, 3), "engineer");
    /* The last reference: the policy is freed now (the sanitizer build reports it otherwise). */
    mb_policy_destroy(policy);
}

TEST(a_copy_has_one_reference_of_its_own_whatever_the_original_has) {
    struct mb_policy *policy = station();
    mb_policy_ref(policy);
    mb_policy_ref(policy);
    struct mb_policy *copy = NULL;
    CHECK_EQ(mb_policy_copy(policy, &copy), 0);
    CHECK(copy != policy);
    for (int i = 0; i < 3; i++)
        mb_policy_destroy(policy);
    struct who who;
    set_who(&who, "engineer", 1, "192.0.2.7");
    run_matrix(copy, &who, 1);
    mb_policy_ref(copy);
    mb_policy_destroy(copy);
    ALLOWED(copy, &who, BYTES(0x06, 0x00, 0x69, 0x01, 0x90));
    mb_policy_destroy(copy); /* its last one: freed, not kept for the original's three */
}

TEST(the_rules_given_to_create_are_not_referenced_afterwards) {
    char name[16] = "temporary", role[16] = "operator";
    const char *roles[1] = {role};
    struct mb_policy_range ranges[1] = {{0, 9}};
    struct mb_policy_rule rules[1];
    memset(rules, 0, sizeof rules);
    rules[0].name = name;
    rules[0].action = MB_POLICY_ALLOW;
    rules[0].roles = roles;
    rules[0].role_count = 1;
    rules[0].tables[MB_POLICY_HOLDING_REGISTERS] = (struct mb_policy_grant){1, ranges, 1};
    struct mb_policy *policy = BUILD(rules);
    memset(name, 'x', sizeof name - 1);
    memset(role, 'x', sizeof role - 1);
    ranges[0].last = 65535;
    memset(rules, 0, sizeof rules);
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    ALLOWED(policy, &who, BYTES(0x03, 0x00, 0x09, 0x00, 0x01));
    DENIED(policy, &who, BYTES(0x03, 0x00, 0x0A, 0x00, 0x01));
    CHECK_STR(mb_policy_rule_name(policy, 0), "temporary");
    mb_policy_destroy(policy);
}

TEST(a_policy_of_many_rules_decides_by_the_last_one) {
    enum { COUNT = MB_POLICY_MAX_RULES };
    static struct mb_policy_rule rules[COUNT];
    static char names[COUNT][16];
    static const char *const nobody[] = {"nobody"};
    for (int i = 0; i < COUNT; i++) {
        snprintf(names[i], sizeof names[i], "rule-%d", i);
        rules[i] = holding_reader(names[i]);
        rules[i].roles = nobody;
        rules[i].role_count = 1;
    }
    rules[COUNT - 1].roles = operator_role;
    struct mb_policy *policy = build(__LINE__, rules, COUNT);
    struct who who;
    set_who(&who, "operator", 1, "192.0.2.7");
    struct mb_policy_decision decision = decide(policy, &who, 1, READ_3);
    CHECK_EQ(decision.action, MB_POLICY_ALLOW);
    CHECK_EQ(decision.rule, COUNT - 1);
    CHECK_STR(decision.rule_name, "rule-1023");
    mb_policy_destroy(policy);
    struct mb_policy *too_many = NULL;
    static struct mb_policy_rule more[COUNT + 1];
    memcpy(more, rules, sizeof rules);
    more[COUNT] = holding_reader("one-more");
    more[COUNT].role_flags = MB_POLICY_ROLE_ANY;
    char error[128];
    CHECK_EQ(mb_policy_create(more, COUNT + 1, &too_many, error, sizeof error), MB_EINVAL);
    CHECK_STR(error, "1025 rules is more than the 1024 allowed");
    CHECK(too_many == NULL);
}

/* ---- building errors ---- */

static void expect_create_error(int line, const struct mb_policy_rule *rules, size_t count,
                                const char *want) {
    struct mb_policy *policy = (struct mb_policy *)&policy;
    char error[256];
    int status = mb_policy_create(rules, count, &policy, error, sizeof error);
    harness_checks += 3;
    if (status != MB_EINVAL)
        harness_fail(__FILE__, line, "status %d, want MB_EINVAL", status);
    if (policy != NULL)
        harness_fail(__FILE__, line, "*policy not NULL after an error");
    if (strcmp(error, want) != 0)
        harness_fail(__FILE__, line, "error\n    \"%s\"\n  want\n    \"%s\"", error, want);
    if (status == 0)
        mb_policy_destroy(policy);
}

#define CREATE_ERROR(rule, want)                                          \
    do {                                                                  \
        struct mb_policy_rule pair_[2] = {holding_reader("first"), rule}; \
        pair_[0].role_flags = MB_POLICY_ROLE_ANY;                         \
        expect_create_error(__LINE__, pair_, 2, want);                    \
    } while (0)

TEST(create_refuses_rules_that_are_wrong_and_says_which_and_why) {
    static const struct mb_policy_range reversed[] = {{10, 9}};
    static const struct mb_policy_range unit_256[] = {{250, 256}};
    static const uint8_t fc0[] = {0};
    static const uint8_t fc128[] = {128};
    static const uint8_t fc3[] = {3};
    static const char *const empty_role[] = {""};
    struct mb_policy_rule rule = holding_reader("second");
    rule.role_flags = MB_POLICY_ROLE_ANY;
    struct mb_policy_rule bad;

    bad = rule, bad.name = NULL;
    CREATE_ERROR(bad, "rule 1: the rule has no name");
    bad = rule, bad.name = "";
    CREATE_ERROR(bad, "rule 1: the rule has no name");
    bad = rule, bad.name = "two words";
    CREATE_ERROR(bad, "rule 1: the name must be 1..64 letters, digits, '-', '_' or '.'");
    char long_name[MB_POLICY_MAX_NAME + 2];
    memset(long_name, 'n', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';
    bad = rule, bad.name = long_name;
    CREATE_ERROR(bad, "rule 1: the name must be 1..64 letters, digits, '-', '_' or '.'");
    bad = rule, bad.name = "first";
    CREATE_ERROR(bad, "rule 1 (first): rule 0 has the same name");
    bad = rule, bad.name = "default";
    CREATE_ERROR(bad, "rule 1 (default): the name \"default\" is reserved for requests no rule "
                      "matches");
    bad = rule, bad.action = 0;
    CREATE_ERROR(bad, "rule 1 (second): the action must be allow, deny, drop or close");
    bad = rule, bad.action = 5;
    CREATE_ERROR(bad, "rule 1 (second): the action must be allow, deny, drop or close");
    bad = rule, bad.exception = 2;
    CREATE_ERROR(bad, "rule 1 (second): an exception code goes only with the action deny");
    bad = rule, bad.role_flags = 0;
    CREATE_ERROR(bad, "rule 1 (second): the rule names no one: give roles or sources");
    bad = rule, bad.role_flags = 4;
    CREATE_ERROR(bad, "rule 1 (second): unknown role flags");
    bad = rule, bad.roles = empty_role, bad.role_count = 1;
    CREATE_ERROR(bad, "rule 1 (second): role 0 must be 1..255 bytes");
    bad = rule, bad.role_count = 1;
    CREATE_ERROR(bad, "rule 1 (second): a list is missing or holds more than 256 items");
    bad = rule, bad.units = unit_256, bad.unit_count = 1;
    CREATE_ERROR(bad, "rule 1 (second): units: 256 is over 255");
    bad = rule, bad.units = reversed, bad.unit_count = 1;
    CREATE_ERROR(bad, "rule 1 (second): units: 10-9 ends before it starts");
    bad = rule, bad.preset = MB_POLICY_READ_ONLY;
    CREATE_ERROR(bad, "rule 1 (second): a preset sets functions and access itself; it cannot be "
                      "combined with them");
    bad = rule, bad.preset = MB_POLICY_READ_WRITE, bad.function_count = 0, bad.access = 1;
    CREATE_ERROR(bad, "rule 1 (second): a preset sets functions and access itself; it cannot be "
                      "combined with them");
    bad = rule, bad.functions = fc0;
    CREATE_ERROR(bad, "rule 1 (second): function code 0 is outside 1..127");
    bad = rule, bad.functions = fc128;
    CREATE_ERROR(bad, "rule 1 (second): function code 128 is outside 1..127");
    bad = rule, bad.diagnostics = 1u << 5;
    CREATE_ERROR(bad, "rule 1 (second): diagnostics names a sub-function the specification does "
                      "not define");
    bad = rule, bad.functions = fc3, bad.diagnostics = 1;
    CREATE_ERROR(bad, "rule 1 (second): diagnostics sub-functions are given but FC 8 is not among "
                      "the functions");
    bad = rule, bad.encapsulated = MB_POLICY_MEI_CANOPEN;
    CREATE_ERROR(bad, "rule 1 (second): encapsulated interface types are given but FC 43 is not "
                      "among the functions");
    bad = rule, bad.access = 4;
    CREATE_ERROR(bad, "rule 1 (second): unknown access bits");
    bad = rule, bad.tables[MB_POLICY_COILS] = (struct mb_policy_grant){1, reversed, 1};
    CREATE_ERROR(bad, "rule 1 (second): coils: 10-9 ends before it starts");
    bad = rule, bad.tables[MB_POLICY_FIFOS] = (struct mb_policy_grant){1, NULL, 1};
    CREATE_ERROR(bad, "rule 1 (second): fifos: the list is missing or holds more than 256 ranges");
    bad = rule, bad.tables[MB_POLICY_DEVICE] = (struct mb_policy_grant){1, reversed, 1};
    CREATE_ERROR(bad, "rule 1 (second): device: the device has no addresses to give ranges of");
    bad = rule, bad.records = reversed, bad.record_count = 1;
    CREATE_ERROR(bad, "rule 1 (second): records are given but the rule does not grant files");
    bad = rule, bad.tables[MB_POLICY_FILES].granted = 1, bad.records = reversed,
    bad.record_count = 1;
    CREATE_ERROR(bad, "rule 1 (second): records: 10-9 ends before it starts");
    bad = rule, bad.value_limit = 1, bad.value_min = 5, bad.value_max = 4;
    CREATE_ERROR(bad, "rule 1 (second): values: 5-4 ends before it starts");
    bad = rule, bad.value_limit = 1, bad.value_max = 4, bad.access = MB_POLICY_READ;
    CREATE_ERROR(bad, "rule 1 (second): values limit writes, but the rule grants only reads");
    bad = rule, bad.value_limit = 1, bad.value_max = 4, bad.function_count = 0,
    bad.preset = MB_POLICY_READ_ONLY;
    CREATE_ERROR(bad, "rule 1 (second): values limit writes, but the rule grants only reads");
    bad = rule, bad.action = MB_POLICY_DENY, bad.value_limit = 1, bad.value_max = 4;
    CREATE_ERROR(bad, "rule 1 (second): values limit what a rule allows; they go only with the "
                      "action allow");
    bad = rule, bad.transport = 3;
    CREATE_ERROR(bad, "rule 1 (second): unknown transport condition");
    struct mb_policy_source source_33 = {AF_INET, 33, {0}};
    bad = rule, bad.sources = &source_33, bad.source_count = 1;
    CREATE_ERROR(bad, "rule 1 (second): source 0 is neither an IPv4 network (prefix 0..32) nor an "
                      "IPv6 one (0..128)");
}

TEST(source_parse_takes_networks_and_bare_addresses) {
    struct mb_policy_source parsed;
    char error[160];
    CHECK_EQ(mb_policy_source_parse("10.0.0.0/8", &parsed, error, sizeof error), 0);
    CHECK_EQ(parsed.family, AF_INET);
    CHECK_EQ(parsed.prefix, 8);
    CHECK_BYTES(parsed.address, 4, 10, 0, 0, 0);
    CHECK_EQ(mb_policy_source_parse("192.0.2.7", &parsed, error, sizeof error), 0);
    CHECK_EQ(parsed.prefix, 32);
    CHECK_EQ(mb_policy_source_parse("0.0.0.0/0", &parsed, error, sizeof error), 0);
    CHECK_EQ(parsed.prefix, 0);
    CHECK_EQ(mb_policy_source_parse("::1", &parsed, error, sizeof error), 0);
    CHECK_EQ(parsed.family, AF_INET6);
    CHECK_EQ(parsed.prefix, 128);
    CHECK_EQ(mb_policy_source_parse("2001:db8::/32", &parsed, error, sizeof error), 0);
    CHECK_EQ(parsed.prefix, 32);
    CHECK_BYTES(parsed.address, 16, 0x20, 0x01, 0x0d, 0xb8, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0);
    CHECK_EQ(mb_policy_source_parse("::ffff:192.0.2.0/120", &parsed, error, sizeof error), 0);
    CHECK_EQ(parsed.family, AF_INET);
    CHECK_EQ(parsed.prefix, 24);
    CHECK_BYTES(parsed.address, 4, 192, 0, 2, 0);
    CHECK_EQ(mb_policy_source_parse("::ffff:192.0.2.7", &parsed, error, sizeof error), 0);
    CHECK_EQ(parsed.family, AF_INET);
    CHECK_EQ(parsed.prefix, 32);
    CHECK_EQ(mb_policy_source_parse("::ffff:0:0/96", &parsed, error, sizeof error), 0);
    CHECK_EQ(parsed.family, AF_INET);
    CHECK_EQ(parsed.prefix, 0);
    CHECK_EQ(mb_policy_source_parse("::/80", &parsed, error, sizeof error), 0);
    CHECK_EQ(parsed.family, AF_INET6);
    CHECK_EQ(parsed.prefix, 80);
    CHECK_EQ(mb_policy_source_parse("::/0", &parsed, error, sizeof error), 0);
    CHECK_EQ(parsed.family, AF_INET6);

    static const struct {
        const char *text;
        const char *error;
    } bad[] = {
        {"10.0.0.1/8", "\"10.0.0.1/8\" has bits set past the /8 prefix; did you mean 10.0.0.0/8?"},
        {"2001:db8::1/32",
         "\"2001:db8::1/32\" has bits set past the /32 prefix; did you mean 2001:db8::/32?"},
        {"10.0.0.0/33", "\"10.0.0.0/33\": the prefix after / must be a number 0..32"},
        {"::/129", "\"::/129\": the prefix after / must be a number 0..128"},
        {"10.0.0.0/", "\"10.0.0.0/\": the prefix after / must be a number 0..32"},
        {"10.0.0.0/08", "\"10.0.0.0/08\": the prefix after / must be a number 0..32"},
        {"10.0.0.0/-8", "\"10.0.0.0/-8\": the prefix after / must be a number 0..32"},
        {"10.0.0.0/8/8", "\"10.0.0.0/8/8\": the prefix after / must be a number 0..32"},
        {"10.0.0/8", "\"10.0.0/8\" is not an IP address or network such as 192.0.2.0/24, "
                     "2001:db8::/32 or ::1"},
        {"localhost", "\"localhost\" is not an IP address or network such as 192.0.2.0/24, "
                      "2001:db8::/32 or ::1"},
        {"", "\"\" is not an IP address or network such as 192.0.2.0/24, 2001:db8::/32 or ::1"},
        {"/8", "\"/8\" is not an IP address or network such as 192.0.2.0/24, 2001:db8::/32 or ::1"},
        {" 10.0.0.0/8", "\" 10.0.0.0/8\" is not an IP address or network such as 192.0.2.0/24, "
                        "2001:db8::/32 or ::1"},
        {"[::1]", "\"[::1]\" is not an IP address or network such as 192.0.2.0/24, "
                  "2001:db8::/32 or ::1"},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        memset(&parsed, 0x77, sizeof parsed);
        CHECK_EQ(mb_policy_source_parse(bad[i].text, &parsed, error, sizeof error), MB_EADDRESS);
        CHECK_STR(error, bad[i].error);
        CHECK_EQ(parsed.family, 0x77777777);
    }
    CHECK_EQ(mb_policy_source_parse("10.0.0.0/33", &parsed, NULL, 0), MB_EADDRESS);
    CHECK_EQ(mb_policy_source_parse(NULL, &parsed, NULL, 0), MB_EINVAL);
}

TEST(function_names_map_to_codes_and_sub_functions) {
    uint8_t function = 0;
    int sub = 0;
    CHECK_EQ(mb_policy_function_lookup("read_holding_registers", &function, &sub), 0);
    CHECK_EQ(function, 3);
    CHECK_EQ(sub, -1);
    CHECK_EQ(mb_policy_function_lookup("read_write_multiple_registers", &function, &sub), 0);
    CHECK_EQ(function, 23);
    CHECK_EQ(mb_policy_function_lookup("diagnostics", &function, &sub), 0);
    CHECK_EQ(function, 8);
    CHECK_EQ(sub, -1);
    CHECK_EQ(mb_policy_function_lookup("restart_communications", &function, &sub), 0);
    CHECK_EQ(function, 8);
    CHECK_EQ(sub, 1);
    CHECK_EQ(mb_policy_function_lookup("clear_overrun_counter", &function, &sub), 0);
    CHECK_EQ(sub, 0x14);
    CHECK_EQ(mb_policy_function_lookup("read_device_identification", &function, &sub), 0);
    CHECK_EQ(function, 43);
    CHECK_EQ(sub, 14);
    CHECK_EQ(mb_policy_function_lookup("read_fifo_queue", &function, &sub), 0);
    CHECK_EQ(function, 24);
    CHECK_EQ(mb_policy_function_lookup("read holding registers", &function, &sub), MB_EINVAL);
    CHECK_EQ(mb_policy_function_lookup("Read_Coils", &function, &sub), MB_EINVAL);
    CHECK_EQ(mb_policy_function_lookup(NULL, &function, &sub), MB_EINVAL);
    CHECK_STR(mb_policy_action_name(MB_POLICY_ALLOW), "allow");
    CHECK_STR(mb_policy_action_name(MB_POLICY_DENY), "deny");
    CHECK_STR(mb_policy_action_name(MB_POLICY_DROP), "drop");
    CHECK_STR(mb_policy_action_name(MB_POLICY_CLOSE), "close");
    CHECK_STR(mb_policy_action_name((enum mb_policy_action)0), "unknown");
}

/* The canonical form: the same for the same decisions, whatever the spelling; another for any
 * change. */
static long canonical(const struct mb_policy *policy, char *out, size_t capacity) {
    long length = mb_policy_canonical(policy, out, capacity);
    CHECK(length > 0);
    CHECK((size_t)length < capacity);
    return length;
}

TEST(the_canonical_form_ignores_spelling_and_order_and_sees_every_change) {
    static const char *const two_roles[] = {"operator", "engineer"};
    static const char *const two_roles_swapped[] = {"engineer", "operator"};
    static const struct mb_policy_range units_split[] = {{1, 2}, {3, 3}, {7, 7}};
    static const struct mb_policy_range units_joined[] = {{7, 7}, {1, 3}};
    struct mb_policy_source sources[2], sources_swapped[2];
    CHECK_EQ(mb_policy_source_parse("192.0.2.0/24", &sources[0], NULL, 0), 0);
    CHECK_EQ(mb_policy_source_parse("2001:db8::/32", &sources[1], NULL, 0), 0);
    sources_swapped[0] = sources[1];
    sources_swapped[1] = sources[0];
    struct mb_policy_rule a = {.name = "readers",
                               .action = MB_POLICY_ALLOW,
                               .roles = two_roles,
                               .role_count = 2,
                               .sources = sources,
                               .source_count = 2,
                               .units = units_split,
                               .unit_count = 3,
                               .preset = MB_POLICY_READ_ONLY};
    struct mb_policy_rule b = a;
    b.roles = two_roles_swapped;
    b.sources = sources_swapped;
    b.units = units_joined;
    b.unit_count = 2;
    struct mb_policy *first = build(__LINE__, &a, 1), *second = build(__LINE__, &b, 1);
    static char one[8192], two[8192];
    long length = canonical(first, one, sizeof one);
    CHECK_EQ(canonical(second, two, sizeof two), length);
    CHECK_STR(one, two);
    CHECK(strncmp(one, "mbsec policy 1\n", 15) == 0);
    /* Measuring first, as snprintf() does; a short buffer gets a cut, terminated text. */
    CHECK_EQ(mb_policy_canonical(first, NULL, 0), length);
    char small[16];
    CHECK_EQ(mb_policy_canonical(first, small, sizeof small), length);
    CHECK_EQ(strlen(small), sizeof small - 1);
    CHECK_EQ(mb_policy_canonical(NULL, one, sizeof one), MB_EINVAL);
    mb_policy_destroy(second);
    /* Every change is seen: a unit more, another action, a value limit, a rule's name. */
    struct mb_policy_rule c = a;
    static const struct mb_policy_range units_more[] = {{1, 3}, {7, 8}};
    c.units = units_more;
    c.unit_count = 2;
    second = build(__LINE__, &c, 1);
    canonical(second, two, sizeof two);
    CHECK(strcmp(one, two) != 0);
    mb_policy_destroy(second);
    c = a;
    c.action = MB_POLICY_DROP;
    second = build(__LINE__, &c, 1);
    canonical(second, two, sizeof two);
    CHECK(strcmp(one, two) != 0);
    mb_policy_destroy(second);
    c = a;
    c.name = "readers2";
    second = build(__LINE__, &c, 1);
    canonical(second, two, sizeof two);
    CHECK(strcmp(one, two) != 0);
    mb_policy_destroy(second);
    /* The order of rules decides, so it is in the form. */
    struct mb_policy_rule pair[2] = {a, a}, swapped[2];
    pair[1].name = "writers";
    pair[1].preset = MB_POLICY_READ_WRITE;
    swapped[0] = pair[1];
    swapped[1] = pair[0];
    second = build(__LINE__, pair, 2);
    struct mb_policy *third = build(__LINE__, swapped, 2);
    canonical(second, one, sizeof one);
    canonical(third, two, sizeof two);
    CHECK(strcmp(one, two) != 0);
    /* A copy has the same form. */
    struct mb_policy *copy = NULL;
    CHECK_EQ(mb_policy_copy(second, &copy), 0);
    canonical(copy, two, sizeof two);
    CHECK_STR(one, two);
    mb_policy_destroy(copy);
    mb_policy_destroy(third);
    mb_policy_destroy(second);
    mb_policy_destroy(first);
}

int main(void) {
    RUN(the_canonical_form_ignores_spelling_and_order_and_sees_every_change);
    RUN(the_operator_reads_and_the_engineer_writes_within_limits_over_every_function_code);
    RUN(no_role_an_unknown_role_and_roles_in_another_case_get_nothing);
    RUN(the_deciding_rule_is_named_by_index_and_name);
    RUN(role_none_is_the_only_way_to_grant_requests_without_a_role);
    RUN(role_any_takes_every_role_but_not_the_absence_of_one);
    RUN(roles_are_exact_case_sensitive_strings);
    RUN(sources_match_ipv4_and_ipv6_networks_and_mapped_addresses_as_ipv4);
    RUN(every_address_is_0_0_0_0_slash_0_for_ipv4_and_colons_slash_0_for_ipv6);
    RUN(roles_and_sources_together_must_both_hold);
    RUN(tls_only_and_plain_only_conditions);
    RUN(units_restrict_a_rule_to_some_unit_ids);
    RUN(ranges_are_inclusive_and_touching_ranges_merge);
    RUN(a_rule_that_refuses_matches_a_range_that_touches_its_own);
    RUN(a_rule_without_tables_covers_every_table_and_the_device);
    RUN(functions_by_code_with_access_read_or_write);
    RUN(fc23_read_allowed_write_denied_and_the_other_way_round);
    RUN(fc24_is_a_read_of_holding_registers_pointer_to_pointer_plus_31);
    RUN(fc8_sub_functions_one_by_one);
    RUN(fc43_device_identification_and_canopen_apart);
    RUN(value_limits_hold_for_every_value_written);
    RUN(actions_deny_with_an_exception_drop_and_close);
    RUN(the_most_severe_part_decides_a_request_of_several_parts);
    RUN(the_first_matching_rule_decides);
    RUN(a_default_deny_in_monitor_mode_says_monitor_and_what_it_would_answer);
    RUN(a_monitor_rule_reports_the_parts_it_matches_when_the_rest_would_allow_them);
    RUN(a_monitor_rule_never_shadows_an_enforced_rule_after_it_or_the_default);
    RUN(an_enforced_refusal_of_any_part_outranks_every_monitored_one);
    RUN(monitor_goes_only_with_rules_that_refuse_and_changes_the_canonical_form);
    RUN(an_empty_policy_denies_everything);
    RUN(requests_that_do_not_decode_match_only_rules_without_tables);
    RUN(user_defined_codes_need_read_and_write_and_are_not_in_presets);
    RUN(an_allowed_read_has_no_reason_unless_explained);
    RUN(reasons_say_who_what_and_which_rule);
    RUN(reasons_keep_strange_roles_on_one_short_line);
    RUN(reasons_write_addresses_as_inet_ntop_does);
    RUN(null_arguments_are_einval_and_a_default_deny);
    RUN(a_copy_decides_alike_after_the_original_is_gone);
    RUN(a_referenced_policy_outlives_one_destroy_and_the_last_destroy_frees_it);
    RUN(a_copy_has_one_reference_of_its_own_whatever_the_original_has);
    RUN(the_rules_given_to_create_are_not_referenced_afterwards);
    RUN(a_policy_of_many_rules_decides_by_the_last_one);
    RUN(create_refuses_rules_that_are_wrong_and_says_which_and_why);
    RUN(source_parse_takes_networks_and_bare_addresses);
    RUN(function_names_map_to_codes_and_sub_functions);
    return harness_result();
}
