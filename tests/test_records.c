/* SPDX-License-Identifier: MIT */
/*
 * The audit-record reader of `mbsec policy learn` and `mbsec policy test`
 * (src/app/policy/records.c): every function code's record turned back into its exact PDU,
 * who sent it (role, TLS, IPv4 and IPv6 peers, the time), the "pdu" field winning over the
 * fields, values not shown filled with zeros and flagged, other record types skipped and
 * counted, every kind of broken line counted with the good lines around it still delivered
 * (each line also parsed at the very end of a readable page, so that an over-read faults),
 * line ends, lines over the bound, an empty file, gzip, files of another kind, standard
 * input, and a visitor's stop value.
 *
 * Linking: the reader lives in the mbsec program's library, so tests/CMakeLists.txt adds
 * `target_link_libraries(test_records PRIVATE mbsec_tool)`.
 */
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app/policy/records.h"
#include "harness.h"

/* ---- helpers ---- */

/* The fields every request record of the examples shares, before and after the request's. */
#define HEAD                                                                               \
    "{\"time\":\"2026-11-21T14:47:17.686Z\",\"type\":\"write\",\"connection\":4,\"peer\":" \
    "\"127.0.0.1:35648\",\"transport\":\"tls\",\"role\":\"engineer\",\"subject\":\"/"      \
    "CN=engineer\","                                                                       \
    "\"unit\":1,"
#define TAIL                                                                                    \
    ",\"rule\":\"engineer-setpoints\",\"backend\":\"simulator\",\"device_unit\":1,\"outcome\":" \
    "\"answered\",\"latency_us\":155}"
#define READ_HEAD                                                                         \
    "{\"time\":\"2026-11-21T14:47:17.686Z\",\"type\":\"read\",\"connection\":2,\"peer\":" \
    "\"[::1]:40000\",\"transport\":\"tcp\",\"role\":null,\"subject\":null,\"unit\":1,"

/* A good record between the broken ones: FC 6, address 100, value 250. */
#define GOOD                                                                           \
    HEAD "\"function\":6,\"function_name\":\"write single register\",\"address\":100," \
         "\"values\":[250]" TAIL "\n"

/* 2026-11-21T14:47:17.686Z in microseconds since the epoch. */
#define EXAMPLE_TIME_US 1795272437686000LL

struct seen {
    uint8_t pdu[MB_PDU_MAX];
    size_t pdu_length;
    int has_role;
    char role[RECORDS_ROLE_MAX + 1];
    int tls;
    struct sockaddr_storage address;
    socklen_t address_length;
    uint8_t unit;
    int64_t time_us;
    int values_partial;
    char origin[256];
};

/* What a visitor collected: every request, and the value it returns for the request numbered
 * stop_at (counting from 1; 0: never). */
struct collected {
    struct seen seen[64];
    size_t count;
    size_t stop_at;
    int stop_value;
};

static struct collected collected;

static int collect(void *data, const struct observed *request) {
    struct collected *into = data;
    size_t index = into->count++;
    if (index < sizeof into->seen / sizeof into->seen[0]) {
        struct seen *seen = &into->seen[index];
        memcpy(seen->pdu, request->pdu, request->pdu_length);
        seen->pdu_length = request->pdu_length;
        seen->has_role = request->role != NULL;
        snprintf(seen->role, sizeof seen->role, "%s", request->role ? request->role : "");
        seen->tls = request->tls;
        seen->address = request->address;
        seen->address_length = request->address_length;
        seen->unit = request->unit;
        seen->time_us = request->time_us;
        seen->values_partial = request->values_partial;
        snprintf(seen->origin, sizeof seen->origin, "%s", request->origin);
    }
    return into->count == into->stop_at ? into->stop_value : 0;
}

static char directory[64];
static char path[128];

static void fresh_directory(void) {
    snprintf(directory, sizeof directory, "/tmp/mbsec-records-XXXXXX");
    CHECK(mkdtemp(directory) != NULL);
    snprintf(path, sizeof path, "%s/audit.jsonl", directory);
}

static void remove_directory(void) {
    unlink(path);
    CHECK_EQ(rmdir(directory), 0);
}

static void write_bytes(const void *bytes, size_t length) {
    FILE *file = fopen(path, "wb");
    CHECK(file != NULL);
    if (file == NULL)
        return;
    CHECK_EQ(fwrite(bytes, 1, length, file), length);
    CHECK_EQ(fclose(file), 0);
}

static struct records_stats stats;
static char error[512];

/* Reads `length` bytes as an audit file into `collected`; returns records_read()'s value. */
static int read_bytes(const void *bytes, size_t length) {
    memset(&collected, 0, sizeof collected);
    fresh_directory();
    write_bytes(bytes, length);
    int rc = records_read(path, collect, &collected, &stats, error, sizeof error);
    remove_directory();
    return rc;
}

static int read_text(const char *text) {
    return read_bytes(text, strlen(text));
}

/* Parses one line placed at the very end of a readable page. */
static struct records_line line;
static int parse(const char *text) {
    size_t length = strlen(text);
    if (length <= 4000)
        return records_parse_line(guard_copy(text, length), length, &line);
    /* Longer than a page: a heap copy of exactly its size, for AddressSanitizer to watch. */
    char *copy = malloc(length);
    CHECK(copy != NULL);
    memcpy(copy, text, length);
    int kind = records_parse_line(copy, length, &line);
    free(copy);
    return kind;
}

/* ---- every function code ---- */

TEST(each_function_codes_record_gives_back_its_exact_pdu) {
    static const char file[] = READ_HEAD
        "\"function\":1,\"address\":19,\"quantity\":37" TAIL "\n" /* 1 */
        READ_HEAD "\"function\":2,\"address\":196,\"quantity\":22" TAIL "\n" READ_HEAD
        "\"function\":3,\"address\":107,\"quantity\":3" TAIL "\n" READ_HEAD
        "\"function\":4,\"address\":8,\"quantity\":1" TAIL "\n" HEAD
        "\"function\":5,\"address\":172,\"values\":[1]" TAIL "\n" /* 5 */
        HEAD "\"function\":5,\"address\":173,\"values\":[0]" TAIL "\n" HEAD
        "\"function\":6,\"address\":1,\"values\":[3]" TAIL "\n" READ_HEAD "\"function\":7" TAIL
        "\n" READ_HEAD "\"function\":8,\"sub_function\":10" TAIL "\n" READ_HEAD
        "\"function\":11" TAIL "\n" /* 10 */
        READ_HEAD "\"function\":12" TAIL "\n" HEAD
        "\"function\":15,\"address\":19,\"quantity\":10,\"values\":[1,0,1,1,0,0,1,1,1,0]" TAIL
        "\n" HEAD "\"function\":16,\"address\":1,\"quantity\":2,\"values\":[10,258]" TAIL
        "\n" READ_HEAD "\"function\":17" TAIL "\n" HEAD
        "\"function\":22,\"address\":4,\"and_mask\":242,\"or_mask\":37" TAIL "\n" /* 15 */
        HEAD "\"function\":23,\"address\":14,\"quantity\":3,\"values\":[255,255,255],"
        "\"read_address\":3,\"read_quantity\":6" TAIL "\n" READ_HEAD
        "\"function\":24,\"address\":1246" TAIL "\n";
    CHECK_EQ(read_text(file), 0);
    CHECK_EQ(stats.lines, 17);
    CHECK_EQ(stats.requests, 17);
    CHECK_EQ(stats.malformed + stats.not_rebuildable + stats.skipped_types, 0);
    CHECK_EQ(collected.count, 17);
    struct seen *s = collected.seen;
    CHECK_BYTES(s[0].pdu, s[0].pdu_length, 0x01, 0x00, 0x13, 0x00, 0x25);
    CHECK_BYTES(s[1].pdu, s[1].pdu_length, 0x02, 0x00, 0xC4, 0x00, 0x16);
    CHECK_BYTES(s[2].pdu, s[2].pdu_length, 0x03, 0x00, 0x6B, 0x00, 0x03);
    CHECK_BYTES(s[3].pdu, s[3].pdu_length, 0x04, 0x00, 0x08, 0x00, 0x01);
    CHECK_BYTES(s[4].pdu, s[4].pdu_length, 0x05, 0x00, 0xAC, 0xFF, 0x00);
    CHECK_BYTES(s[5].pdu, s[5].pdu_length, 0x05, 0x00, 0xAD, 0x00, 0x00);
    CHECK_BYTES(s[6].pdu, s[6].pdu_length, 0x06, 0x00, 0x01, 0x00, 0x03);
    CHECK_BYTES(s[7].pdu, s[7].pdu_length, 0x07);
    CHECK_BYTES(s[8].pdu, s[8].pdu_length, 0x08, 0x00, 0x0A, 0x00, 0x00);
    CHECK_BYTES(s[9].pdu, s[9].pdu_length, 0x0B);
    CHECK_BYTES(s[10].pdu, s[10].pdu_length, 0x0C);
    CHECK_BYTES(s[11].pdu, s[11].pdu_length, 0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01);
    CHECK_BYTES(s[12].pdu, s[12].pdu_length, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x0A, 0x01,
                0x02);
    CHECK_BYTES(s[13].pdu, s[13].pdu_length, 0x11);
    CHECK_BYTES(s[14].pdu, s[14].pdu_length, 0x16, 0x00, 0x04, 0x00, 0xF2, 0x00, 0x25);
    CHECK_BYTES(s[15].pdu, s[15].pdu_length, 0x17, 0x00, 0x03, 0x00, 0x06, 0x00, 0x0E, 0x00, 0x03,
                0x06, 0x00, 0xFF, 0x00, 0xFF, 0x00, 0xFF);
    CHECK_BYTES(s[16].pdu, s[16].pdu_length, 0x18, 0x04, 0xDE);
    for (size_t i = 0; i < 17; i++) {
        CHECK_EQ(s[i].unit, 1);
        CHECK_EQ(s[i].values_partial, 0);
        CHECK_EQ(s[i].time_us, EXAMPLE_TIME_US);
    }
}

TEST(the_identity_is_role_tls_peer_time_and_origin) {
    static const char file[] = GOOD READ_HEAD "\"function\":3,\"address\":0,\"quantity\":10" TAIL;
    CHECK_EQ(read_text(file), 0);
    CHECK_EQ(collected.count, 2);
    const struct seen *write = &collected.seen[0], *read = &collected.seen[1];
    CHECK_EQ(write->has_role, 1);
    CHECK_STR(write->role, "engineer");
    CHECK_EQ(write->tls, 1);
    CHECK_EQ(write->time_us, EXAMPLE_TIME_US);
    CHECK_EQ(write->address_length, sizeof(struct sockaddr_in));
    const struct sockaddr_in *v4 = (const struct sockaddr_in *)&write->address;
    CHECK_EQ(v4->sin_family, AF_INET);
    CHECK_EQ(ntohs(v4->sin_port), 35648);
    CHECK_EQ(ntohl(v4->sin_addr.s_addr), 0x7F000001);
    char origin[200];
    snprintf(origin, sizeof origin, "%s:1", path);
    CHECK_STR(write->origin, origin);
    /* role null, plain TCP, an IPv6 peer, and the last line without its newline */
    CHECK_EQ(read->has_role, 0);
    CHECK_EQ(read->tls, 0);
    CHECK_EQ(read->address_length, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&read->address;
    CHECK_EQ(v6->sin6_family, AF_INET6);
    CHECK_EQ(ntohs(v6->sin6_port), 40000);
    CHECK(memcmp(&v6->sin6_addr, &in6addr_loopback, sizeof in6addr_loopback) == 0);
    snprintf(origin, sizeof origin, "%s:2", path);
    CHECK_STR(read->origin, origin);
}

TEST(ipv6_peers_are_read_with_their_port_and_other_peers_are_unknown) {
    CHECK_EQ(
        parse("{\"type\":\"read\",\"peer\":\"[2001:db8::7]:50312\",\"unit\":1,\"function\":7}"),
        RECORDS_REQUEST);
    CHECK_EQ(line.address_length, sizeof(struct sockaddr_in6));
    const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)&line.address;
    uint8_t want[16];
    inet_pton(AF_INET6, "2001:db8::7", want);
    CHECK(memcmp(&v6->sin6_addr, want, 16) == 0);
    CHECK_EQ(ntohs(v6->sin6_port), 50312);
    CHECK_EQ(parse("{\"type\":\"read\",\"peer\":\"[::ffff:192.0.2.7]:1\",\"unit\":1,"
                   "\"function\":7}"),
             RECORDS_REQUEST);
    CHECK_EQ(line.address_length, sizeof(struct sockaddr_in6));
    /* The gateway writes "" when the connection was gone; none of these is an error. */
    static const char *const unknown[] = {"",
                                          "192.0.2.7",
                                          "192.0.2.7:",
                                          "192.0.2.7:65536",
                                          "192.0.2.7:-1",
                                          "host.example:502",
                                          "2001:db8::7:502",
                                          "[2001:db8::7]",
                                          "[2001:db8::7]:x",
                                          "[]:502",
                                          "[192.0.2.7]:502",
                                          "192.0.2.7\\u0000:502"};
    for (size_t i = 0; i < sizeof unknown / sizeof unknown[0]; i++) {
        char text[200];
        snprintf(text, sizeof text, "{\"type\":\"read\",\"peer\":\"%s\",\"unit\":1,\"function\":7}",
                 unknown[i]);
        CHECK_EQ(parse(text), RECORDS_REQUEST);
        CHECK_EQ(line.address_length, 0);
    }
}

TEST(times_in_rfc_3339_with_offsets_and_fractions_and_0_when_unreadable) {
    static const struct {
        const char *time;
        int64_t microseconds;
    } cases[] = {
        {"2026-11-21T14:47:17.686Z", EXAMPLE_TIME_US},
        {"2026-11-21T14:47:17.686z", EXAMPLE_TIME_US},
        {"2026-11-21T15:47:17.686+01:00", EXAMPLE_TIME_US},
        {"2026-11-21T12:17:17.686-02:30", EXAMPLE_TIME_US},
        {"2026-11-21T13:47:17Z", 1795268837000000LL},
        {"2026-11-21 13:47:17Z", 1795268837000000LL},
        {"2024-02-29T23:59:59.123456789Z", 1709251199123456LL},
        {"1970-01-01T00:00:00Z", 0},
        {"2025-02-29T00:00:00Z", 0},
        {"2026-13-01T00:00:00Z", 0},
        {"2026-11-21T24:00:00Z", 0},
        {"2026-11-21T14:47:17.Z", 0},
        {"2026-11-21T14:47:17", 0},
        {"2026-11-21T14:47:17+0100", 0},
        {"2026-11-21", 0},
        {"yesterday", 0},
        {"", 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char text[200];
        snprintf(text, sizeof text, "{\"time\":\"%s\",\"type\":\"read\",\"unit\":1,\"function\":7}",
                 cases[i].time);
        CHECK_EQ(parse(text), RECORDS_REQUEST);
        if (line.time_us != cases[i].microseconds)
            fprintf(stderr, "  %s\n", cases[i].time);
        CHECK_EQ(line.time_us, cases[i].microseconds);
    }
}

TEST(roles_are_decoded_from_every_escape_into_utf8) {
    CHECK_EQ(parse("{\"type\":\"write\",\"role\":\"op\\u00e9rateur \\ud83d\\ude00 \\\"q\\\" "
                   "\\\\ \\/ \\b\\f\\n\\r\\t\",\"unit\":1,\"function\":7}"),
             RECORDS_REQUEST);
    CHECK_EQ(line.has_role, 1);
    CHECK_STR(line.role, "op\xC3\xA9rateur \xF0\x9F\x98\x80 \"q\" \\ / \b\f\n\r\t");
    CHECK_EQ(parse("{\"type\":\"write\",\"role\":\"\xE6\x8A\x80\xE5\xB8\xAB\",\"unit\":1,"
                   "\"function\":7}"),
             RECORDS_REQUEST);
    CHECK_STR(line.role, "\xE6\x8A\x80\xE5\xB8\xAB");
    /* Absent (a record whose connection was gone) or null: no role. */
    CHECK_EQ(parse("{\"type\":\"write\",\"unit\":1,\"function\":7}"), RECORDS_REQUEST);
    CHECK_EQ(line.has_role, 0);
    CHECK_EQ(line.tls, 0);
}

/* ---- the pdu field ---- */

TEST(the_pdu_field_wins_over_the_fields) {
    static const char file[] =
        HEAD "\"function\":16,\"address\":1,\"quantity\":2,\"values\":[7,7],\"pdu\":"
             "\"1000010002040001ABCD\"" TAIL "\n" READ_HEAD
             "\"function\":20,\"records\":1,\"pdu\":\"14070600010002000a\"" TAIL "\n" READ_HEAD
             "\"function\":43,\"pdu\":\"2b0e0100\"" TAIL "\n" READ_HEAD
             "\"function\":100,\"pdu\":\"64\"" TAIL "\n" READ_HEAD
             "\"function\":3,\"malformed\":true,\"would_deny\":true,\"pdu\":\"0300\"" TAIL "\n";
    CHECK_EQ(read_text(file), 0);
    CHECK_EQ(stats.requests, 5);
    CHECK_EQ(stats.would_deny, 1);
    CHECK_EQ(collected.count, 5);
    struct seen *s = collected.seen;
    CHECK_BYTES(s[0].pdu, s[0].pdu_length, 0x10, 0x00, 0x01, 0x00, 0x02, 0x04, 0x00, 0x01, 0xAB,
                0xCD);
    CHECK_EQ(s[0].values_partial, 0);
    CHECK_BYTES(s[1].pdu, s[1].pdu_length, 0x14, 0x07, 0x06, 0x00, 0x01, 0x00, 0x02, 0x00, 0x0A);
    CHECK_BYTES(s[2].pdu, s[2].pdu_length, 0x2B, 0x0E, 0x01, 0x00);
    CHECK_BYTES(s[3].pdu, s[3].pdu_length, 0x64);
    /* An undecodable request is passed on as the gateway saw it: the policy decides on it. */
    CHECK_BYTES(s[4].pdu, s[4].pdu_length, 0x03, 0x00);
}

TEST(a_pdu_field_whose_function_code_differs_or_is_not_hex_is_malformed) {
    CHECK_EQ(parse("{\"type\":\"write\",\"unit\":1,\"function\":6,\"pdu\":\"0500010000\"}"),
             RECORDS_MALFORMED);
    CHECK(line.reason != NULL && strstr(line.reason, "pdu") != NULL);
    static const char *const bad[] = {"", "0", "06000", "0g", "06 00", "0x06", "06\\u0000"};
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        char text[200];
        snprintf(text, sizeof text, "{\"type\":\"write\",\"unit\":1,\"function\":6,\"pdu\":\"%s\"}",
                 bad[i]);
        CHECK_EQ(parse(text), RECORDS_MALFORMED);
    }
    char text[700];
    int used =
        snprintf(text, sizeof text, "{\"type\":\"write\",\"unit\":1,\"function\":100,\"pdu\":\"");
    for (int i = 0; i < 254; i++)
        used += snprintf(text + used, sizeof text - (size_t)used, "64");
    snprintf(text + used, sizeof text - (size_t)used, "\"}");
    CHECK_EQ(parse(text), RECORDS_MALFORMED); /* 254 bytes: one more than a PDU holds */
    text[used - 2] = '\0';
    snprintf(text + used - 2, sizeof text - (size_t)used + 2, "\"}");
    CHECK_EQ(parse(text), RECORDS_REQUEST);
    CHECK_EQ(line.pdu_length, MB_PDU_MAX);
}

TEST(records_that_do_not_hold_the_whole_request_without_pdu_are_not_rebuildable) {
    static const char file[] = READ_HEAD
        "\"function\":20,\"records\":1" TAIL "\n" HEAD "\"function\":21,\"records\":2" TAIL
        "\n" READ_HEAD "\"function\":43" TAIL "\n" READ_HEAD "\"function\":100" TAIL "\n" READ_HEAD
        "\"function\":3,\"malformed\":true" TAIL "\n"
        /* fields that do not encode: quantity 0, over the limit, a reserved sub-function */
        READ_HEAD "\"function\":3,\"address\":0,\"quantity\":0" TAIL "\n" READ_HEAD
        "\"function\":3,\"address\":0,\"quantity\":126" TAIL "\n" HEAD
        "\"function\":16,\"address\":0,\"quantity\":124,\"values\":[1]" TAIL "\n" READ_HEAD
        "\"function\":8,\"sub_function\":5" TAIL "\n" GOOD;
    CHECK_EQ(read_text(file), 0);
    CHECK_EQ(stats.lines, 10);
    CHECK_EQ(stats.not_rebuildable, 9);
    CHECK_EQ(stats.requests, 1);
    CHECK_EQ(stats.malformed, 0);
    CHECK_EQ(collected.count, 1);
}

TEST(addresses_past_65535_still_make_a_request_as_the_gateway_decided_on) {
    /* Address 65535 with 10 registers: the device would refuse it (02), but it decodes. */
    CHECK_EQ(parse(READ_HEAD "\"function\":3,\"address\":65535,\"quantity\":10" TAIL),
             RECORDS_REQUEST);
    CHECK_BYTES(line.pdu, line.pdu_length, 0x03, 0xFF, 0xFF, 0x00, 0x0A);
}

/* ---- values not shown ---- */

TEST(values_not_shown_are_zeros_and_set_values_partial) {
    char file[4096];
    int used = snprintf(file, sizeof file,
                        HEAD "\"function\":16,\"address\":0,\"quantity\":66,\"values\":[");
    for (int i = 1; i <= 64; i++)
        used += snprintf(file + used, sizeof file - (size_t)used, "%s%d", i > 1 ? "," : "", i);
    used += snprintf(file + used, sizeof file - (size_t)used,
                     "],\"values_not_shown\":2" TAIL "\n" HEAD
                     "\"function\":15,\"address\":0,\"quantity\":12,\"values\":[1,1,1]" TAIL
                     "\n" HEAD "\"function\":16,\"address\":0,\"quantity\":2,\"values\":[5,6],"
                     "\"values_not_shown\":0" TAIL "\n");
    CHECK_EQ(read_bytes(file, (size_t)used), 0);
    CHECK_EQ(stats.requests, 3);
    CHECK_EQ(stats.values_partial, 2);
    CHECK_EQ(collected.count, 3);
    const struct seen *many = &collected.seen[0];
    CHECK_EQ(many->values_partial, 1);
    CHECK_EQ(many->pdu_length, 6 + 132);
    CHECK_BYTES(many->pdu, 8, 0x10, 0x00, 0x00, 0x00, 0x42, 0x84, 0x00, 0x01);
    CHECK_BYTES(many->pdu + 6 + 126, 6, 0x00, 0x40, 0x00, 0x00, 0x00, 0x00);
    /* Fewer values than the quantity, without values_not_shown: partial too. */
    const struct seen *coils = &collected.seen[1];
    CHECK_EQ(coils->values_partial, 1);
    CHECK_BYTES(coils->pdu, coils->pdu_length, 0x0F, 0x00, 0x00, 0x00, 0x0C, 0x02, 0x07, 0x00);
    CHECK_EQ(collected.seen[2].values_partial, 0);
}

TEST(values_that_do_not_fit_the_quantity_are_malformed) {
    CHECK_EQ(parse(HEAD "\"function\":16,\"address\":0,\"quantity\":2,\"values\":[1,2,3]}"),
             RECORDS_MALFORMED);
    CHECK_EQ(parse(HEAD "\"function\":16,\"address\":0,\"quantity\":5,\"values\":[1,2,3],"
                        "\"values_not_shown\":1}"),
             RECORDS_MALFORMED);
    CHECK_EQ(parse(HEAD "\"function\":15,\"address\":0,\"quantity\":2,\"values\":[1,2]}"),
             RECORDS_MALFORMED);
    CHECK_EQ(parse(HEAD "\"function\":5,\"address\":0,\"values\":[2]}"), RECORDS_MALFORMED);
    CHECK_EQ(parse(HEAD "\"function\":5,\"address\":0,\"values\":[65280]}"), RECORDS_MALFORMED);
    CHECK_EQ(parse(HEAD "\"function\":6,\"address\":0,\"values\":[]}"), RECORDS_MALFORMED);
    CHECK_EQ(parse(HEAD "\"function\":6,\"address\":0,\"values\":[1,2]}"), RECORDS_MALFORMED);
    CHECK_EQ(parse(HEAD "\"function\":6,\"address\":0}"), RECORDS_MALFORMED);
    CHECK_EQ(parse(HEAD "\"function\":23,\"address\":0,\"quantity\":1,\"values\":[1]}"),
             RECORDS_MALFORMED); /* no read_address, read_quantity */
    CHECK_EQ(parse("{\"type\":\"write\",\"function\":7}"), RECORDS_MALFORMED); /* no unit */
    CHECK_EQ(parse("{\"type\":\"write\",\"unit\":1}"), RECORDS_MALFORMED);     /* no function */
}

/* ---- other records ---- */

TEST(records_of_other_types_are_skipped_and_counted) {
    static const char file[] =
        "{\"time\":\"2026-11-21T14:47:00.000Z\",\"type\":\"connection\",\"connection\":1,"
        "\"peer\":\"127.0.0.1:32862\",\"event\":\"opened\",\"listener\":\"0.0.0.0:502\"}\n"
        "{\"time\":\"2026-11-21T14:47:27.971Z\",\"type\":\"denied\",\"connection\":1,\"peer\":"
        "\"127.0.0.1:32862\",\"transport\":\"tls\",\"role\":\"operator\",\"subject\":"
        "\"/CN=operator\",\"unit\":1,\"function\":6,\"function_name\":\"write single register\","
        "\"address\":100,\"values\":[42],\"rule\":\"default\",\"action\":\"deny\",\"exception\":1,"
        "\"reason\":\"role 'operator' from 127.0.0.1: write holding register 100 on unit 1 (FC 6) "
        "matched no rule (default deny)\"}\n"
        "{\"type\":\"would_deny\",\"unit\":1,\"function\":6,\"address\":70000}\n"
        "{\"type\":\"sanity\",\"side\":\"front\",\"unit\":1,\"function\":3,\"malformed\":true}\n"
        "{\"type\":\"alert\",\"alert\":\"scan\",\"source\":\"192.0.2.7\",\"count\":[1.5e3]}\n"
        "{\"type\":\"audit\",\"event\":\"reopen_failed\",\"detail\":{\"file\":\"x\"}}\n"
        "{\"type\":\"audit_dropped\",\"count\":3}\n"
        "{\"type\":\"Write\",\"unit\":1,\"function\":6}\n"
        "{\"type\":\"write \",\"unit\":1,\"function\":6}\n"
        "{\"type\":\"writes\",\"unit\":1,\"function\":6}\n"
        "{\"type\":\"write\\u0000\",\"unit\":1,\"function\":6}\n"
        "{\"type\":\"\",\"unit\":1,\"function\":6}\n" GOOD;
    CHECK_EQ(read_text(file), 0);
    CHECK_EQ(stats.lines, 13);
    CHECK_EQ(stats.skipped_types, 12);
    CHECK_EQ(stats.requests, 1);
    CHECK_EQ(stats.malformed, 0);
    CHECK_EQ(stats.first_bad_line, 0);
    CHECK_EQ(collected.count, 1);
}

/* ---- broken lines ---- */

/* Lines that are not a request record the reader can use, each between good ones. */
static const char *const broken_lines[] = {
    "hello",
    "[1,2,3]",
    "\"write\"",
    "{",
    "{}",
    "{\"type\":\"write\"",
    "{\"time\":\"2026-11-21T14:47:17.686Z\",\"type\":\"write\",\"unit\":1,",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250]} x",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250]}{}",
    "{\"type\":7,\"unit\":1,\"function\":6,\"address\":100,\"values\":[250]}",
    "{\"type\":null}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":\"100\",\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":250}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[\"250\"]}",
    "{\"type\":\"write\",\"unit\":1.5,\"function\":6,\"address\":100,\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":256,\"function\":6,\"address\":100,\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":0}",
    "{\"type\":\"write\",\"unit\":1,\"function\":128}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":70000,\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[65536]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":-1,\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":-0,\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":1e3,\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100.0,\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":0100,\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":+100,\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":18446744073709551616,"
    "\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":"
    "99999999999999999999999999999999999999999999999999999999999999999999,\"values\":[250]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"role\":\"a\\x\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"role\":\"\\u12\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"role\":\"\\ud800\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"role\":\"\\ud800\\u0041\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"role\":\"\\udc00\\ud800\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"role\":\"\\u0000\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"role\":\"\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"role\":\"\xFF\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"role\":\"\xC0\xAF\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"role\":\"\xED\xA0\x80\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"role\":\"tab\there\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],\"role\":5}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"transport\":true}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"address\":100}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"malformed\":\"no\"}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250,]}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"x\":tru}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],\"x\":nul}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "\"x\":{\"a\" 1}}",
    "{\"type\":\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250],"
    "'x':1}",
    "{type:\"write\",\"unit\":1,\"function\":6,\"address\":100,\"values\":[250]}",
};

TEST(malformed_lines_are_counted_and_the_good_lines_around_them_delivered) {
    static char file[1 << 16];
    size_t used = 0;
    size_t count = sizeof broken_lines / sizeof broken_lines[0];
    for (size_t i = 0; i < count; i++)
        used += (size_t)snprintf(file + used, sizeof file - used, GOOD "%s\n", broken_lines[i]);
    used += (size_t)snprintf(file + used, sizeof file - used, GOOD);
    CHECK(used < sizeof file);
    CHECK_EQ(read_bytes(file, used), 0);
    CHECK_EQ(stats.lines, 2 * count + 1);
    CHECK_EQ(stats.malformed, count);
    CHECK_EQ(stats.requests, count + 1);
    CHECK_EQ(stats.first_bad_line, 2);
    CHECK(stats.first_bad_reason != NULL);
    CHECK_EQ(collected.count, count + 1);
    for (size_t i = 0; i < count; i++) {
        int kind = parse(broken_lines[i]);
        if (kind != RECORDS_MALFORMED)
            fprintf(stderr, "  not malformed (%d): %s\n", kind, broken_lines[i]);
        CHECK_EQ(kind, RECORDS_MALFORMED);
        CHECK(line.reason != NULL && line.reason[0] != '\0');
    }
}

TEST(deep_nesting_is_refused_without_recursing_into_it) {
    static char text[20100];
    int used = snprintf(text, sizeof text, "{\"type\":\"write\",\"unit\":1,\"function\":7,\"x\":");
    for (int i = 0; i < 10000; i++)
        text[used++] = i % 2 ? '{' : '[';
    text[used] = '\0';
    CHECK_EQ(parse(text), RECORDS_MALFORMED);
    /* Closed properly, it is still too deep. */
    used = snprintf(text, sizeof text, "{\"type\":\"write\",\"unit\":1,\"function\":7,\"x\":");
    for (int i = 0; i < 5000; i++)
        text[used++] = '[';
    for (int i = 0; i < 5000; i++)
        text[used++] = ']';
    snprintf(text + used, sizeof text - (size_t)used, "}");
    CHECK_EQ(parse(text), RECORDS_MALFORMED);
    /* Unknown values nested a little are skipped. */
    CHECK_EQ(parse("{\"type\":\"write\",\"unit\":1,\"function\":7,\"x\":[{\"a\":[1,-2.5e-3,"
                   "\"\\u00e9\",true,false,null,{}]},[]],\"y\":{\"type\":\"read\"}}"),
             RECORDS_REQUEST);
}

TEST(nul_bytes_in_a_line_make_it_malformed_and_the_next_line_is_read) {
    static const char good[] = GOOD;
    char file[2048];
    size_t used = 0;
    memcpy(file + used, good, sizeof good - 1);
    used += sizeof good - 1;
    memcpy(file + used, good, sizeof good - 1);
    file[used + 30] = '\0'; /* inside the time string */
    used += sizeof good - 1;
    memcpy(file + used, good, sizeof good - 1);
    file[used + sizeof good - 3] = '\0'; /* instead of the closing brace */
    used += sizeof good - 1;
    memcpy(file + used, good, sizeof good - 1);
    used += sizeof good - 1;
    CHECK_EQ(read_bytes(file, used), 0);
    CHECK_EQ(stats.lines, 4);
    CHECK_EQ(stats.malformed, 2);
    CHECK_EQ(stats.first_bad_line, 2);
    CHECK_EQ(stats.requests, 2);
}

TEST(a_line_over_64_kib_is_skipped_and_counted_and_one_at_the_bound_is_read) {
    size_t size = 3 * RECORDS_LINE_MAX + 1024 * 1024;
    char *file = malloc(size);
    CHECK(file != NULL);
    if (file == NULL)
        return;
    static const char good[] = GOOD;
    size_t used = 0;
    memcpy(file + used, good, sizeof good - 1);
    used += sizeof good - 1;
    /* a 1 MB line */
    memset(file + used, 'x', 1024 * 1024);
    used += 1024 * 1024;
    file[used++] = '\n';
    /* exactly RECORDS_LINE_MAX bytes before the newline, CR included: kept */
    size_t record = sizeof good - 2;
    memcpy(file + used, good, record);
    memset(file + used + record, ' ', RECORDS_LINE_MAX - record - 1);
    file[used + RECORDS_LINE_MAX - 1] = '\r';
    used += RECORDS_LINE_MAX;
    file[used++] = '\n';
    /* one byte more: skipped */
    memcpy(file + used, good, record);
    memset(file + used + record, ' ', RECORDS_LINE_MAX + 1 - record);
    used += RECORDS_LINE_MAX + 1;
    file[used++] = '\n';
    memcpy(file + used, good, sizeof good - 1);
    used += sizeof good - 1;
    CHECK_EQ(read_bytes(file, used), 0);
    CHECK_EQ(stats.lines, 5);
    CHECK_EQ(stats.too_long, 2);
    CHECK_EQ(stats.malformed, 0);
    CHECK_EQ(stats.requests, 3);
    CHECK_EQ(stats.bytes, used);
    /* A file that ends inside a line that is too long. */
    CHECK_EQ(read_bytes(file, sizeof good - 1 + 300000), 0);
    CHECK_EQ(stats.lines, 2);
    CHECK_EQ(stats.too_long, 1);
    CHECK_EQ(stats.requests, 1);
    free(file);
}

/* ---- line ends and ends of files ---- */

TEST(crlf_line_ends_blank_lines_and_a_last_line_without_newline_are_read) {
    static const char file[] =
        HEAD "\"function\":6,\"address\":100,\"values\":[250]" TAIL "\r\n"
             "\r\n"
             "   \t\n"
             "\n" HEAD "\"function\":6,\"address\":101,\"values\":[251]" TAIL "\r\n" HEAD
             "\"function\":6,\"address\":102,\"values\":[252]" TAIL;
    CHECK_EQ(read_text(file), 0);
    CHECK_EQ(stats.lines, 6);
    CHECK_EQ(stats.blank, 3);
    CHECK_EQ(stats.malformed, 0);
    CHECK_EQ(stats.requests, 3);
    CHECK_EQ(collected.count, 3);
    CHECK_BYTES(collected.seen[2].pdu, collected.seen[2].pdu_length, 0x06, 0x00, 0x66, 0x00, 0xFC);
}

TEST(a_truncated_last_line_is_malformed_and_not_fatal) {
    static const char file[] = GOOD GOOD "{\"time\":\"2026-11-21T14:47:17.686Z\",\"type\":\"wr";
    CHECK_EQ(read_text(file), 0);
    CHECK_EQ(stats.lines, 3);
    CHECK_EQ(stats.requests, 2);
    CHECK_EQ(stats.malformed, 1);
    CHECK_EQ(stats.first_bad_line, 3);
}

TEST(an_empty_file_has_no_records_and_is_no_error) {
    CHECK_EQ(read_text(""), 0);
    CHECK_EQ(stats.lines, 0);
    CHECK_EQ(stats.bytes, 0);
    CHECK_EQ(stats.requests, 0);
    CHECK_EQ(collected.count, 0);
    CHECK_EQ(read_text("\n\n"), 0);
    CHECK_EQ(stats.lines, 2);
    CHECK_EQ(stats.blank, 2);
}

/* ---- files that are not audit files ---- */

TEST(a_gzip_file_is_refused_with_a_clear_error) {
    static const uint8_t gzip[] = {0x1f, 0x8b, 0x08, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x03,
                                   0x03, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00};
    CHECK_EQ(read_bytes(gzip, sizeof gzip), -1);
    CHECK(strstr(error, "gzip") != NULL);
    CHECK(strstr(error, path) == error);
    CHECK(strchr(error, '\n') == NULL);
    CHECK_EQ(collected.count, 0);
}

TEST(a_pcap_or_a_text_log_is_not_an_audit_file) {
    static const uint8_t pcap[] = {0xd4, 0xc3, 0xb2, 0xa1, 0x02, 0x00, 0x04, 0x00, 0x00, 0x00,
                                   0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 0xff, 0xff, 0x00, 0x00,
                                   0x01, 0x00, 0x00, 0x00, 0x0a, 0x00, 0x00, 0x00};
    CHECK_EQ(read_bytes(pcap, sizeof pcap), -1);
    CHECK(strstr(error, "not an mbsec audit file") != NULL);
    CHECK(strchr(error, '\n') == NULL);
    CHECK_EQ(read_text("Nov 21 14:47:17 host mbsec[12]: gateway started\n"
                       "Nov 21 14:47:18 host mbsec[12]: listening on 0.0.0.0:502\n"),
             -1);
    CHECK(strstr(error, "not an mbsec audit file") != NULL);
    /* Log lines of mbsec in JSON are objects, but carry no "type". */
    CHECK_EQ(read_text("{\"time\":\"2026-11-21T14:47:17.686Z\",\"level\":\"info\",\"event\":"
                       "\"started\"}\n"),
             -1);
    CHECK(strstr(error, "not an mbsec audit file") != NULL);
}

TEST(the_first_100_lines_decide_and_reading_stops_there) {
    static char file[8192];
    size_t used = 0;
    for (int i = 0; i < 150; i++)
        used += (size_t)snprintf(file + used, sizeof file - used, "line %d\n", i);
    used += (size_t)snprintf(file + used, sizeof file - used, GOOD);
    CHECK_EQ(read_bytes(file, used), -1);
    CHECK_EQ(stats.lines, RECORDS_PROBE_LINES);
    CHECK_EQ(collected.count, 0);
    CHECK(strstr(error, "first 100 lines") != NULL);
    /* One record among them is enough, wherever it is. */
    used = 0;
    for (int i = 0; i < 99; i++)
        used += (size_t)snprintf(file + used, sizeof file - used, "line %d\n", i);
    used += (size_t)snprintf(file + used, sizeof file - used, GOOD "line\n");
    CHECK_EQ(read_bytes(file, used), 0);
    CHECK_EQ(stats.malformed, 100);
    CHECK_EQ(stats.requests, 1);
    /* Blank lines do not count: text after 150 of them is still judged. */
    memset(file, '\n', 150);
    CHECK_EQ(read_bytes(file, 150 + (size_t)snprintf(file + 150, sizeof file - 150, "hello\n")),
             -1);
    CHECK_EQ(stats.lines, 151);
    CHECK(strstr(error, "first 1 lines with text") != NULL);
}

TEST(a_file_that_cannot_be_opened_is_an_error_of_one_line) {
    memset(&collected, 0, sizeof collected);
    CHECK_EQ(
        records_read("/nonexistent/audit.jsonl", collect, &collected, &stats, error, sizeof error),
        -1);
    CHECK(strstr(error, "/nonexistent/audit.jsonl: cannot open") == error);
    CHECK_EQ(records_read("/", collect, &collected, &stats, error, sizeof error), -1);
    CHECK(strstr(error, "/: cannot read") == error);
}

TEST(dash_reads_standard_input) {
    fresh_directory();
    static const char text[] = GOOD GOOD;
    write_bytes(text, sizeof text - 1);
    int saved = dup(STDIN_FILENO);
    int fd = open(path, O_RDONLY);
    CHECK(saved >= 0 && fd >= 0);
    CHECK_EQ(dup2(fd, STDIN_FILENO), STDIN_FILENO);
    close(fd);
    memset(&collected, 0, sizeof collected);
    CHECK_EQ(records_read("-", collect, &collected, &stats, error, sizeof error), 0);
    CHECK_EQ(dup2(saved, STDIN_FILENO), STDIN_FILENO);
    close(saved);
    CHECK_EQ(collected.count, 2);
    CHECK_STR(collected.seen[1].origin, "standard input:2");
    remove_directory();
}

/* ---- the visitor ---- */

TEST(a_visitors_stop_value_ends_the_read_and_is_returned) {
    static const char file[] = GOOD GOOD GOOD GOOD;
    memset(&collected, 0, sizeof collected);
    fresh_directory();
    write_bytes(file, sizeof file - 1);
    collected.stop_at = 2;
    collected.stop_value = 7;
    CHECK_EQ(records_read(path, collect, &collected, &stats, error, sizeof error), 7);
    CHECK_EQ(collected.count, 2);
    CHECK_EQ(stats.requests, 2);
    CHECK_EQ(stats.lines, 2);
    collected.count = 0;
    collected.stop_at = 1;
    collected.stop_value = -5;
    CHECK_EQ(records_read(path, collect, &collected, &stats, error, sizeof error), -5);
    CHECK_EQ(collected.count, 1);
    remove_directory();
}

/* ---- every prefix ---- */

TEST(every_prefix_of_a_record_is_read_within_its_bytes) {
    static const char *const records[] = {
        HEAD "\"function\":23,\"address\":14,\"quantity\":3,\"values\":[255,255,255],"
             "\"read_address\":3,\"read_quantity\":6" TAIL,
        "{\"type\":\"write\",\"role\":\"op\\u00e9 \\ud83d\\ude00\",\"unit\":1,\"function\":7,"
        "\"x\":[{\"a\":-1.5e+3},true,false,null],\"pdu\":\"07\"}",
    };
    for (size_t r = 0; r < sizeof records / sizeof records[0]; r++) {
        size_t length = strlen(records[r]);
        for (size_t cut = 0; cut < length; cut++) {
            int kind = records_parse_line(guard_copy(records[r], cut), cut, &line);
            CHECK(kind == RECORDS_MALFORMED || (kind == RECORDS_BLANK && cut == 0));
        }
        CHECK_EQ(records_parse_line(guard_copy(records[r], length), length, &line),
                 RECORDS_REQUEST);
    }
}

int main(void) {
    RUN(each_function_codes_record_gives_back_its_exact_pdu);
    RUN(the_identity_is_role_tls_peer_time_and_origin);
    RUN(ipv6_peers_are_read_with_their_port_and_other_peers_are_unknown);
    RUN(times_in_rfc_3339_with_offsets_and_fractions_and_0_when_unreadable);
    RUN(roles_are_decoded_from_every_escape_into_utf8);
    RUN(the_pdu_field_wins_over_the_fields);
    RUN(a_pdu_field_whose_function_code_differs_or_is_not_hex_is_malformed);
    RUN(records_that_do_not_hold_the_whole_request_without_pdu_are_not_rebuildable);
    RUN(addresses_past_65535_still_make_a_request_as_the_gateway_decided_on);
    RUN(values_not_shown_are_zeros_and_set_values_partial);
    RUN(values_that_do_not_fit_the_quantity_are_malformed);
    RUN(records_of_other_types_are_skipped_and_counted);
    RUN(malformed_lines_are_counted_and_the_good_lines_around_them_delivered);
    RUN(deep_nesting_is_refused_without_recursing_into_it);
    RUN(nul_bytes_in_a_line_make_it_malformed_and_the_next_line_is_read);
    RUN(a_line_over_64_kib_is_skipped_and_counted_and_one_at_the_bound_is_read);
    RUN(crlf_line_ends_blank_lines_and_a_last_line_without_newline_are_read);
    RUN(a_truncated_last_line_is_malformed_and_not_fatal);
    RUN(an_empty_file_has_no_records_and_is_no_error);
    RUN(a_gzip_file_is_refused_with_a_clear_error);
    RUN(a_pcap_or_a_text_log_is_not_an_audit_file);
    RUN(the_first_100_lines_decide_and_reading_stops_there);
    RUN(a_file_that_cannot_be_opened_is_an_error_of_one_line);
    RUN(dash_reads_standard_input);
    RUN(a_visitors_stop_value_ends_the_read_and_is_returned);
    RUN(every_prefix_of_a_record_is_read_within_its_bytes);
    return harness_result();
}
