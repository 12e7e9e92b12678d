/* SPDX-License-Identifier: MIT */
/*
 * The audit records of mbsec gateway (src/app/common/json.c, src/app/daemon/audit.c): the JSON
 * builder's exact output for every type, escaping and UTF-8 repair, and valid JSON at every fill
 * level of its buffer (checked by a strict JSON checker below, itself checked first); the file sink
 * appending one line per record, mode 0640, logrotate's rename then reopen, clear errors for
 * paths it cannot open, a full device, a record cut short, and a FIFO reader that stalls or goes
 * away; syslog as RFC 5424 over a unix datagram socket and over UDP on 127.0.0.1, received and
 * taken apart field by field, a receiver that is gone or restarted, one that never reads, and
 * records cut to the UDP limit at a character boundary.
 *
 * Linking: the sink lives in the mbsec program's library, so tests/CMakeLists.txt adds
 * `target_link_libraries(test_audit PRIVATE mbsec_tool)`.
 */
#include <arpa/inet.h>
#include <ctype.h>
#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "app/common/json.h"
#include "app/common/log.h"
#include "app/daemon/audit.h"
#include "harness.h"
#include "mbsec/error.h"

/* ---- helpers ---- */

static char directory[128];

/* A fresh temporary directory for each test that touches files or sockets. */
static void fresh_directory(void) {
    const char *temporary = getenv("TMPDIR");
    /* Unix socket paths must fit sun_path: a long $TMPDIR is not used. */
    if (temporary == NULL || temporary[0] == '\0' || strlen(temporary) > 60)
        temporary = "/tmp";
    snprintf(directory, sizeof directory, "%s/mbsec-audit-XXXXXX", temporary);
    if (mkdtemp(directory) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
}

static void remove_tree(const char *path) {
    DIR *listing = opendir(path);
    struct dirent *entry;
    char name[600];
    while (listing != NULL && (entry = readdir(listing)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        snprintf(name, sizeof name, "%s/%s", path, entry->d_name);
        if (unlink(name) != 0)
            remove_tree(name);
    }
    if (listing != NULL)
        closedir(listing);
    rmdir(path);
}

static void remove_directory(void) {
    remove_tree(directory);
}

static void in_directory(char *path, size_t capacity, const char *name) {
    snprintf(path, capacity, "%s/%s", directory, name);
}

/* The whole file as a string ("" when it cannot be read); static, valid until the next call. */
static const char *file_text(const char *path) {
    static char text[65536];
    size_t length = 0;
    FILE *file = fopen(path, "rb");
    if (file != NULL) {
        length = fread(text, 1, sizeof text - 1, file);
        fclose(file);
    }
    text[length] = '\0';
    return text;
}

static struct audit *open_ok(int line, const struct audit_config *config) {
    struct audit *audit = NULL;
    char error[512];
    int rc = audit_open(config, &audit, error, sizeof error);
    harness_checks++;
    if (rc != 0 || audit == NULL)
        harness_fail(__FILE__, line, "audit_open failed with %d: %s", rc, error);
    return audit;
}

#define OPEN_OK(config) open_ok(__LINE__, config)

static struct audit_stats stats_of(const struct audit *audit) {
    struct audit_stats stats;
    audit_stats(audit, &stats);
    return stats;
}

static int64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* ---- a strict JSON checker (RFC 8259, strings in well-formed UTF-8) ---- */

static const char *json_value(const char *at, int depth);

static const char *json_space(const char *at) {
    while (*at == ' ' || *at == '\t' || *at == '\n' || *at == '\r')
        at++;
    return at;
}

/* The length of a well-formed UTF-8 character at `at`, or 0. Written apart from json.c's. */
static int utf8_character(const unsigned char *at) {
    if (at[0] < 0x80)
        return 1;
    int length = at[0] >= 0xF0 ? 4 : at[0] >= 0xE0 ? 3 : at[0] >= 0xC0 ? 2 : 0;
    if (length == 0 || at[0] > 0xF4)
        return 0;
    unsigned long code = at[0] & (0x7F >> length);
    for (int i = 1; i < length; i++) {
        if ((at[i] & 0xC0) != 0x80)
            return 0;
        code = code << 6 | (at[i] & 0x3F);
    }
    static const unsigned long smallest[] = {0, 0, 0x80, 0x800, 0x10000};
    if (code < smallest[length] || code > 0x10FFFF || (code >= 0xD800 && code <= 0xDFFF))
        return 0;
    return length;
}

static const char *json_string_at(const char *at) {
    if (*at++ != '"')
        return NULL;
    for (;;) {
        unsigned char byte = (unsigned char)*at;
        if (byte == '"')
            return at + 1;
        if (byte < 0x20)
            return NULL;
        if (byte == '\\') {
            at++;
            if (*at == 'u') {
                for (int i = 1; i <= 4; i++)
                    if (strchr("0123456789abcdefABCDEF", at[i]) == NULL || at[i] == '\0')
                        return NULL;
                at += 5;
            } else if (*at != '\0' && strchr("\"\\/bfnrt", *at) != NULL) {
                at++;
            } else {
                return NULL;
            }
            continue;
        }
        int length = utf8_character((const unsigned char *)at);
        if (length == 0)
            return NULL;
        at += length;
    }
}

static const char *json_digits(const char *at) {
    if (*at < '0' || *at > '9')
        return NULL;
    while (*at >= '0' && *at <= '9')
        at++;
    return at;
}

static const char *json_number(const char *at) {
    if (*at == '-')
        at++;
    if (*at == '0')
        at++;
    else if ((at = json_digits(at)) == NULL)
        return NULL;
    if (*at == '.' && (at = json_digits(at + 1)) == NULL)
        return NULL;
    if (*at == 'e' || *at == 'E') {
        at++;
        if (*at == '+' || *at == '-')
            at++;
        at = json_digits(at);
    }
    return at;
}

/* An object or an array: `open`, members separated by commas, `close`. */
static const char *json_container(const char *at, int depth, char close) {
    at = json_space(at + 1);
    if (*at == close)
        return at + 1;
    for (;;) {
        if (close == '}') {
            if ((at = json_string_at(at)) == NULL)
                return NULL;
            at = json_space(at);
            if (*at++ != ':')
                return NULL;
        }
        if ((at = json_value(at, depth + 1)) == NULL)
            return NULL;
        at = json_space(at);
        if (*at == close)
            return at + 1;
        if (*at++ != ',')
            return NULL;
        at = json_space(at);
    }
}

static const char *json_value(const char *at, int depth) {
    at = json_space(at);
    if (depth > 32)
        return NULL;
    if (*at == '{')
        return json_container(at, depth, '}');
    if (*at == '[')
        return json_container(at, depth, ']');
    if (*at == '"')
        return json_string_at(at);
    if (strncmp(at, "true", 4) == 0)
        return at + 4;
    if (strncmp(at, "false", 5) == 0)
        return at + 5;
    if (strncmp(at, "null", 4) == 0)
        return at + 4;
    return json_number(at);
}

/* 1 when `text` is exactly one JSON object. */
static int json_object_valid(const char *text) {
    if (text[0] != '{')
        return 0;
    const char *end = json_value(text, 0);
    return end != NULL && *json_space(end) == '\0';
}

/* ---- the JSON checker itself ---- */

TEST(the_json_checker_accepts_json_and_refuses_what_is_not) {
    CHECK(json_object_valid("{}"));
    CHECK(json_object_valid("{\"a\":[1,-2.5e3,true,false,null,{\"b\":\"\\u00e9\\n\"}]}"));
    CHECK(json_object_valid("{\"\xc3\xa9\":\"\xf0\x9f\x98\x80\"}"));
    CHECK(!json_object_valid("{"));
    CHECK(!json_object_valid("{\"a\":}"));
    CHECK(!json_object_valid("{\"a\":1,}"));
    CHECK(!json_object_valid("{\"a\":1}}"));
    CHECK(!json_object_valid("{\"a\":\"\x01\"}"));
    CHECK(!json_object_valid("{\"a\":\"\\x\"}"));
    CHECK(!json_object_valid("{\"a\":\"\xc0\xaf\"}"));
    CHECK(!json_object_valid("{\"a\":\"\xed\xa0\x80\"}"));
    CHECK(!json_object_valid("{\"a\":\"\xe2\x82\"}"));
    CHECK(!json_object_valid("{\"a\":01}"));
    CHECK(!json_object_valid("{\"a\":\"cut"));
    CHECK(!json_object_valid("[1]"));
}

/* ---- the JSON builder ---- */

TEST(an_empty_record_is_an_empty_object) {
    struct json json;
    json_begin(&json);
    CHECK_STR(json_end(&json), "{}");
    CHECK_EQ(json.length, 2);
    CHECK_EQ(json.fields, 0);
    CHECK_EQ(json.truncated, 0);
}

TEST(every_type_is_written_as_json) {
    struct json json;
    json_begin(&json);
    json_string(&json, "peer", "192.0.2.1:50123");
    json_string(&json, "role", NULL);
    json_uint(&json, "unit", 7);
    json_uint(&json, "big", UINT64_MAX);
    json_int(&json, "delta", -1);
    json_int(&json, "smallest", INT64_MIN);
    json_bool(&json, "secure", 1);
    json_bool(&json, "plain", 0);
    json_bool(&json, "any_nonzero", 42);
    json_raw(&json, "values", "[1,2,65535]");
    json_raw(&json, "nothing", NULL);
    json_raw(&json, "empty", "");
    const char *text = json_end(&json);
    CHECK_STR(text, "{\"peer\":\"192.0.2.1:50123\",\"role\":null,\"unit\":7,"
                    "\"big\":18446744073709551615,\"delta\":-1,\"smallest\":-9223372036854775808,"
                    "\"secure\":true,\"plain\":false,\"any_nonzero\":true,\"values\":[1,2,65535],"
                    "\"nothing\":null,\"empty\":null}");
    CHECK_EQ(json.length, strlen(text));
    CHECK_EQ(json.fields, 12);
    CHECK(json_object_valid(text));
}

TEST(strings_escape_quote_backslash_and_control_characters) {
    struct json json;
    json_begin(&json);
    json_string(
        &json, "reason",
        "say \"no\" to C:\\temp\nline\x01\x1f\t\x7f\b\f\r\xc2\x80\xc2\x9b\xc2\x9f\xc2\xa0 end");
    json_string(&json, "k\"ey\n", "v");
    const char *text = json_end(&json);
    /* \b \f \n \r \t have short escapes; other controls, DEL and the C1 controls (C2 80..9F,
     * U+0080..U+009F) are \u00XX; U+00A0 (C2 A0) is the first character past them. */
    CHECK_STR(text, "{\"reason\":\"say \\\"no\\\" to C:\\\\temp\\nline\\u0001\\u001f\\t"
                    "\\u007f\\b\\f\\r\\u0080\\u009b\\u009f\xc2\xa0 end\",\"k\\\"ey\\n\":\"v\"}");
    CHECK(json_object_valid(text));
}

TEST(well_formed_utf8_is_kept_as_it_is) {
    /* é (2 bytes), € (3), U+D7FF and U+E000 around the surrogates, 😀 (4), U+10FFFF. */
    const char *value = "\xc3\xa9 \xe2\x82\xac \xed\x9f\xbf \xee\x80\x80 \xf0\x9f\x98\x80 "
                        "\xf4\x8f\xbf\xbf";
    struct json json;
    json_begin(&json);
    json_string(&json, "name", value);
    const char *text = json_end(&json);
    char want[128];
    snprintf(want, sizeof want, "{\"name\":\"%s\"}", value);
    CHECK_STR(text, want);
    CHECK(json_object_valid(text));
}

static void check_repaired(int line, const char *value, const char *want_body) {
    struct json json;
    char want[256];
    json_begin(&json);
    json_string(&json, "s", value);
    const char *text = json_end(&json);
    snprintf(want, sizeof want, "{\"s\":\"%s\"}", want_body);
    harness_checks++;
    if (strcmp(text, want) != 0)
        harness_fail(__FILE__, line, "got %s, want %s", text, want);
    harness_checks++;
    if (!json_object_valid(text))
        harness_fail(__FILE__, line, "not valid JSON: %s", text);
}

#define CHECK_REPAIRED(value, want_body) check_repaired(__LINE__, value, want_body)
#define FFFD "\\ufffd"

TEST(ill_formed_utf8_becomes_one_ufffd_per_maximal_subpart) {
    CHECK_REPAIRED("a\x80z", "a" FFFD "z");                  /* a lone continuation byte */
    CHECK_REPAIRED("\xbf\xbf", FFFD FFFD);                   /* two of them */
    CHECK_REPAIRED("\xc0\xaf", FFFD FFFD);                   /* overlong '/' */
    CHECK_REPAIRED("\xc1\xbf", FFFD FFFD);                   /* overlong, C1 never leads */
    CHECK_REPAIRED("\xe0\x80\xaf", FFFD FFFD FFFD);          /* overlong in 3 bytes */
    CHECK_REPAIRED("\xed\xa0\x80", FFFD FFFD FFFD);          /* the surrogate U+D800 */
    CHECK_REPAIRED("\xf0\x80\x80\xaf", FFFD FFFD FFFD FFFD); /* overlong in 4 bytes */
    CHECK_REPAIRED("\xf4\x90\x80\x80", FFFD FFFD FFFD FFFD); /* above U+10FFFF */
    CHECK_REPAIRED("\xf5\xff\xfe", FFFD FFFD FFFD);          /* bytes that never appear */
    CHECK_REPAIRED("\xe2\x82\x41", FFFD "A");                /* € missing its last byte */
    CHECK_REPAIRED("x\xe2\x82", "x" FFFD);                   /* ... at the end */
    CHECK_REPAIRED("\xf0\x9f\x98\xc3\xa9", FFFD "\xc3\xa9"); /* 😀 cut, then é */
    CHECK_REPAIRED("\xc3\"", FFFD "\\\"");                   /* a lead byte before a quote */
    CHECK_REPAIRED("\xed\xbf\xbf", FFFD FFFD FFFD);          /* the surrogate U+DFFF */
    CHECK_REPAIRED("\xe0\x9f\xbf", FFFD FFFD FFFD);          /* overlong U+07FF */
    CHECK_REPAIRED("\xf4\x90", FFFD FFFD);                   /* above U+10FFFF, cut */
    CHECK_REPAIRED("\xf0\x9f\x98", FFFD);                    /* 😀 cut at the end */
    CHECK_REPAIRED("\xf8\x88\x80\x80\x80", FFFD FFFD FFFD FFFD FFFD); /* a 5-byte form */
    CHECK_REPAIRED("\xfe\xff", FFFD FFFD);                            /* UTF-16 byte order marks */
    CHECK_REPAIRED("\xc2\n", FFFD "\\n");                    /* a lead byte before a control */
    CHECK_REPAIRED("\xe2\x82\xac\x80", "\xe2\x82\xac" FFFD); /* € then one byte too many */
}

/* What `write` (json_write_string or text_write_quoted) makes of `length` bytes of
 * `input`: NUL-terminated, *written_length bytes before the NUL. Caller frees. */
static char *written(void (*write)(FILE *, const char *, size_t), const char *input, size_t length,
                     size_t *written_length) {
    char *text = NULL;
    FILE *stream = open_memstream(&text, written_length);
    write(stream, input, length);
    fclose(stream);
    return text;
}

/* The same escaping for a length given: a NUL inside is a control like the others. */
TEST(a_string_with_a_nul_inside_is_written_whole) {
    size_t length;
    char *text = written(json_write_string, "a\0b\xff", 4, &length);
    CHECK_STR(text, "\"a\\u0000b\\ufffd\"");
    free(text);
}

/* ---- the escaper against random bytes ---- */

/* xorshift64: the same bytes on every run, and no dependence on the C library's rand(). */
static uint64_t random_state = 0x9E3779B97F4A7C15u;
static uint64_t next_random(void) {
    random_state ^= random_state << 13;
    random_state ^= random_state >> 7;
    random_state ^= random_state << 17;
    return random_state;
}

/* Random bytes, drawn so that every kind shows up often: ASCII, controls, continuation bytes,
 * lead bytes of every length and bytes that never appear in UTF-8. */
static size_t random_text(unsigned char *text, size_t capacity) {
    static const unsigned char interesting[] = {0x00, 0x0A, 0x1F, '"',  '\\', 0x7F, 0x80,
                                                0x9B, 0xBF, 0xC0, 0xC2, 0xDF, 0xE0, 0xED,
                                                0xEF, 0xF0, 0xF4, 0xF5, 0xFF, 0xA0};
    size_t length = (size_t)(next_random() % capacity);
    for (size_t i = 0; i < length; i++) {
        uint64_t draw = next_random();
        text[i] = draw % 3 == 0 ? interesting[(draw >> 8) % sizeof interesting]
                                : (unsigned char)(draw >> 16);
    }
    return length;
}

/* Whether `length` bytes at `text` are all well-formed UTF-8, by this file's own decoder. */
static int all_utf8(const char *text, size_t length) {
    for (size_t at = 0; at < length;) {
        int character = utf8_character((const unsigned char *)text + at);
        if (character == 0 || at + (size_t)character > length)
            return 0;
        at += (size_t)character;
    }
    return 1;
}

/* One JSON string in valid UTF-8 (by this file's decoder), nothing after it, no NUL inside. */
static int one_json_string(const char *text, size_t length) {
    const char *end = json_string_at(text);
    return all_utf8(text, length) && end != NULL && *end == '\0' && strlen(text) == length;
}

/* One quoted field in valid UTF-8, no control byte, no quote but the two around it unless
 * escaped. */
static int one_quoted_field(const char *text, size_t length) {
    if (!all_utf8(text, length) || length < 2 || text[0] != '"' || text[length - 1] != '"')
        return 0;
    for (size_t i = 1; i + 1 < length; i++) {
        unsigned char byte = (unsigned char)text[i];
        if (byte < 0x20 || byte == 0x7F || (byte == 0xC2 && (unsigned char)text[i + 1] < 0xA0) ||
            byte == '"')
            return 0;
        if (byte == '\\')
            i++; /* the escaped byte: a quote, a backslash or the x of \xNN */
    }
    return 1;
}

/* `write` applied to 20000 random byte strings: each output must pass `whole`. */
static void check_random(int line, void (*write)(FILE *, const char *, size_t),
                         int (*whole)(const char *, size_t)) {
    for (int round = 0; round < 20000; round++) {
        unsigned char input[64];
        size_t input_length = random_text(input, sizeof input), length;
        char *text = written(write, (const char *)input, input_length, &length);
        harness_checks++;
        int good = whole(text, length);
        if (!good)
            harness_fail(__FILE__, line, "round %d: %s", round, text);
        free(text);
        if (!good)
            return;
    }
}

TEST(any_bytes_become_one_valid_json_string_in_valid_utf8) {
    check_random(__LINE__, json_write_string, one_json_string);
}

TEST(any_bytes_quoted_as_plain_text_stay_one_field_on_one_line) {
    check_random(__LINE__, text_write_quoted, one_quoted_field);
}

/* Valid UTF-8, no control byte, and every backslash the start of a \xNN escape. */
static int one_escaped_value(const char *text, size_t length) {
    if (!all_utf8(text, length))
        return 0;
    for (size_t i = 0; i < length; i++) {
        unsigned char byte = (unsigned char)text[i];
        if (byte < 0x20 || byte == 0x7F || (byte == 0xC2 && (unsigned char)text[i + 1] < 0xA0))
            return 0;
        if (byte == '\\' &&
            (i + 3 >= length || text[i + 1] != 'x' || !isxdigit((unsigned char)text[i + 2]) ||
             !isxdigit((unsigned char)text[i + 3])))
            return 0;
    }
    return 1;
}

TEST(any_bytes_escaped_without_quotes_stay_on_one_line) {
    check_random(__LINE__, text_write_escaped, one_escaped_value);
}

TEST(plain_text_keeps_utf8_and_writes_every_other_byte_as_xNN) {
    static const struct {
        const char *input;
        const char *quoted;
    } table[] = {
        {"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80",
         "\"caf\xc3\xa9 \xe2\x82\xac \xf0\x9f\x98\x80\""},
        {"a\"b\\c", "\"a\\\"b\\\\c\""},
        {"\n\t\x1b[2J\x7f", "\"\\x0a\\x09\\x1b[2J\\x7f\""},
        {"\xc2\x85\xc2\x9b\xc2\xa0", "\"\\xc2\\x85\\xc2\\x9b\xc2\xa0\""},
        {"\xed\xa0\x80", "\"\\xed\\xa0\\x80\""},
        {"\xe2\x82\x41", "\"\\xe2\\x82A\""},
        {"\xff\xc0\xaf", "\"\\xff\\xc0\\xaf\""},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        size_t length;
        char *text = written(text_write_quoted, table[i].input, strlen(table[i].input), &length);
        CHECK_STR(text, table[i].quoted);
        free(text);
    }
}

/* A device's identification objects and a certificate's names: the same, without the quotes,
 * a quote as it is and a backslash as \x5c. */
TEST(unquoted_text_keeps_utf8_and_quotes_and_escapes_the_backslash) {
    static const struct {
        const char *input;
        const char *escaped;
    } table[] = {
        {"mbsec \"sim\" caf\xc3\xa9", "mbsec \"sim\" caf\xc3\xa9"},
        {"a\\b", "a\\x5cb"},
        {"\n\x1b[2J\x7f\xc2\x9b", "\\x0a\\x1b[2J\\x7f\\xc2\\x9b"},
        {"\xff\xe2\x82\x41", "\\xff\\xe2\\x82A"},
    };
    for (size_t i = 0; i < sizeof table / sizeof table[0]; i++) {
        size_t length;
        char *text = written(text_write_escaped, table[i].input, strlen(table[i].input), &length);
        CHECK_STR(text, table[i].escaped);
        free(text);
    }
}

/* ---- log lines (src/app/common/log.c): what a peer controls cannot forge fields ---- */

/* The line logger_write() writes for `event`, in `format`, into `line`. */
static void log_line(enum log_format format, const struct mb_log_event *event, char *line,
                     size_t capacity) {
    char *text = NULL;
    size_t length = 0;
    FILE *stream = open_memstream(&text, &length);
    struct logger logger = {.stream = stream, .format = format, .level = MB_LOG_DEBUG};
    logger_write(&logger, event);
    fclose(stream);
    snprintf(line, capacity, "%s", text);
    free(text);
}

/* A client certificate's role is the peer's to choose: one made to look like more fields. */
static const char forged_role_reason[] =
    "TLSv1.3 TLS_AES_128_GCM_SHA256, role 'op' reason=\"forged\" peer=10.6.6.6 x='', CN=x\n"
    "2026-01-01T00:00:00.000Z info    fake_line \x1b[2J\xc2\x85\xff caf\xc3\xa9";

TEST(a_plain_line_escapes_quotes_backslashes_controls_and_bad_utf8_in_the_reason) {
    struct mb_log_event event = {.level = MB_LOG_INFO,
                                 .event = "tls_established",
                                 .peer = "127.0.0.1:4000",
                                 .connection_id = 7,
                                 .reason = forged_role_reason};
    char line[1024];
    log_line(LOG_PLAIN, &event, line, sizeof line);
    const char *reason = strstr(line, " reason=\"");
    CHECK(reason != NULL);
    /* One line, one reason field, one peer field: the forged ones stay inside the quotes. */
    CHECK_EQ(strchr(line, '\n') - line, (long)strlen(line) - 1);
    CHECK(strstr(reason + 1, " reason=\"") == NULL);
    CHECK_STR(reason, " reason=\"TLSv1.3 TLS_AES_128_GCM_SHA256, role 'op' reason=\\\"forged\\\" "
                      "peer=10.6.6.6 x='', CN=x\\x0a2026-01-01T00:00:00.000Z info    fake_line "
                      "\\x1b[2J\\xc2\\x85\\xff caf\xc3\xa9\"\n");
    event.reason = "C:\\path";
    log_line(LOG_PLAIN, &event, line, sizeof line);
    CHECK(strstr(line, " reason=\"C:\\\\path\"\n") != NULL);
}

TEST(a_json_line_escapes_the_reason_as_audit_records_do) {
    struct mb_log_event event = {.level = MB_LOG_WARNING,
                                 .event = "tls_established",
                                 .peer = "[::1]:4000",
                                 .reason = forged_role_reason};
    char line[1024];
    log_line(LOG_JSON, &event, line, sizeof line);
    CHECK_EQ(strchr(line, '\n') - line, (long)strlen(line) - 1);
    line[strlen(line) - 1] = '\0';
    CHECK(json_object_valid(line));
    struct json json;
    json_begin(&json);
    json_string(&json, "reason", forged_role_reason);
    const char *record = json_end(&json);
    /* The same escaping as the audit record's: {"reason":...} is its tail. */
    char *tail = strstr(line, ",\"reason\":");
    CHECK(tail != NULL);
    if (tail != NULL)
        CHECK_EQ(strncmp(tail + 1, record + 1, strlen(record) - 1), 0);
}

TEST(a_field_that_does_not_fit_is_dropped_whole_and_truncated_is_added_last) {
    static char big[5000];
    memset(big, 'x', sizeof big - 1);
    struct json json;
    json_begin(&json);
    json_uint(&json, "a", 1);
    json_string(&json, "big", big);
    json_raw(&json, "big_raw", big);
    json_bool(&json, "after", 1);
    const char *text = json_end(&json);
    CHECK_STR(text, "{\"a\":1,\"after\":true,\"truncated\":true}");
    CHECK_EQ(json.truncated, 1);
    CHECK_EQ(json.fields, 2);

    /* Nothing fits: the object holds the flag alone. */
    json_begin(&json);
    json_string(&json, "big", big);
    CHECK_STR(json_end(&json), "{\"truncated\":true}");
}

/* A filler string of `count` bytes made of `unit`, for the fill tests. */
static const char *filler(const char *unit, size_t count) {
    static char text[8192];
    size_t unit_length = strlen(unit), length = 0;
    while (length + unit_length <= count && length + unit_length < sizeof text) {
        memcpy(text + length, unit, unit_length);
        length += unit_length;
    }
    text[length] = '\0';
    return text;
}

/* {"fill":"..."} around `count` bytes of `unit`, into `record`. */
static void fill_record(char *record, size_t capacity, const char *unit, size_t count) {
    const char *fill = filler(unit, count);
    size_t length = strlen(fill);
    if (length + sizeof "{\"fill\":\"\"}" > capacity) {
        fprintf(stderr, "fill_record: %zu bytes do not fit\n", length);
        exit(2);
    }
    memcpy(record, "{\"fill\":\"", 9);
    memcpy(record + 9, fill, length);
    memcpy(record + 9 + length, "\"}", 3);
}

/* Every fill level up to and past the end of the buffer, with plain bytes, escaped ones (6
 * bytes out for 1 in), multi-byte characters and repaired bytes, then a field of each type: the
 * result is valid JSON, fits with its NUL, and each field is there whole or not at all. */
TEST(at_every_fill_level_the_record_stays_valid_json_and_fields_stay_whole) {
    static const struct {
        const char *unit;
        size_t bytes_out_per_byte_in;
    } units[] = {{"x", 1}, {"\x01", 6}, {"\xe2\x82\xac", 1}, {"\\\"", 2}, {"\xff", 6}};
    static const char *const wholes[][2] = {
        {"\"last_string\":", "\"last_string\":\"whole-string\""},
        {"\"last_uint\":", "\"last_uint\":123456789"},
        {"\"last_int\":", "\"last_int\":-42"},
        {"\"last_bool\":", "\"last_bool\":true"},
        {"\"last_raw\":", "\"last_raw\":[1,2,3]"}};
    int failures_before = harness_failures;
    for (size_t u = 0; u < sizeof units / sizeof units[0]; u++) {
        for (size_t size = 3950; size <= 4100; size++) {
            /* A short first field of every length moves the fill by single bytes even when the
             * filler grows by 6. */
            for (size_t pad = 0; pad < units[u].bytes_out_per_byte_in; pad++) {
                struct json json;
                json_begin(&json);
                json_string(&json, "pad", filler("p", pad));
                json_string(&json, "fill",
                            filler(units[u].unit, size / units[u].bytes_out_per_byte_in));
                json_string(&json, "last_string", "whole-string");
                json_uint(&json, "last_uint", 123456789);
                json_int(&json, "last_int", -42);
                json_bool(&json, "last_bool", 1);
                json_raw(&json, "last_raw", "[1,2,3]");
                const char *text = json_end(&json);
                harness_checks++;
                if (!json_object_valid(text) || json.length != strlen(text) ||
                    json.length >= sizeof json.text)
                    harness_fail(__FILE__, __LINE__, "unit %zu size %zu pad %zu: invalid: ...%s", u,
                                 size, pad, text + (json.length > 60 ? json.length - 60 : 0));
                /* A field is either whole or absent: its key never appears without its value. */
                for (size_t w = 0; w < sizeof wholes / sizeof wholes[0]; w++) {
                    harness_checks++;
                    if (strstr(text, wholes[w][0]) != NULL && strstr(text, wholes[w][1]) == NULL)
                        harness_fail(__FILE__, __LINE__, "unit %zu size %zu pad %zu: %s cut", u,
                                     size, pad, wholes[w][0]);
                }
                /* Dropped fields always say so, as the last field. */
                harness_checks++;
                if (json.truncated != (strstr(text, "\"truncated\":true}") != NULL))
                    harness_fail(__FILE__, __LINE__, "unit %zu size %zu pad %zu: truncated flag", u,
                                 size, pad);
                if (harness_failures - failures_before > 5)
                    return;
            }
        }
    }
}

TEST(many_small_fields_end_with_truncated_and_valid_json) {
    struct json json;
    char key[32];
    json_begin(&json);
    for (int i = 0; i < 1000; i++) {
        snprintf(key, sizeof key, "field_%d", i);
        json_uint(&json, key, (uint64_t)i * 1000003u);
    }
    const char *text = json_end(&json);
    CHECK(json_object_valid(text));
    CHECK_EQ(json.truncated, 1);
    CHECK(json.fields > 100);
    CHECK(json.length < sizeof json.text);
    CHECK(strcmp(text + json.length - strlen(",\"truncated\":true}"), ",\"truncated\":true}") == 0);
}

/* ---- the file ---- */

TEST(the_file_gets_one_line_per_record_appended_after_what_it_held) {
    fresh_directory();
    char path[256];
    in_directory(path, sizeof path, "audit.log");
    FILE *existing = fopen(path, "w");
    fputs("{\"earlier\":true}\n", existing);
    fclose(existing);

    struct audit_config config = {.file = path};
    struct audit *audit = OPEN_OK(&config);
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":1}");
    audit_write(audit, AUDIT_WARNING, "denied", "{\"n\":2,\"s\":\"caf\xc3\xa9\"}");
    audit_write(audit, AUDIT_NOTICE, NULL, "{\"n\":3}");
    CHECK_STR(file_text(path),
              "{\"earlier\":true}\n{\"n\":1}\n{\"n\":2,\"s\":\"caf\xc3\xa9\"}\n{\"n\":3}\n");
    struct audit_stats stats = stats_of(audit);
    CHECK_EQ(stats.written, 3);
    CHECK_EQ(stats.file_errors, 0);
    CHECK_STR(audit_last_error(audit), "");
    char error[256];
    CHECK_EQ(audit_take_error(audit, error, sizeof error), 0);
    audit_close(audit);
    remove_directory();
}

TEST(a_new_file_is_created_with_mode_0640_and_close_on_exec) {
    fresh_directory();
    char path[256];
    in_directory(path, sizeof path, "audit.log");
    mode_t previous = umask(022);
    struct audit_config config = {.file = path};
    struct audit *audit = OPEN_OK(&config);
    umask(previous);
    struct stat status;
    CHECK_EQ(stat(path, &status), 0);
    CHECK(S_ISREG(status.st_mode));
    CHECK_EQ(status.st_mode & 07777, 0640);
    /* The only descriptor to the file is the sink's: it must carry FD_CLOEXEC. */
    int found = 0;
    for (int fd = 3; fd < 1024; fd++) {
        char link[64], target[512];
        snprintf(link, sizeof link, "/proc/self/fd/%d", fd);
        ssize_t length = readlink(link, target, sizeof target - 1);
        if (length <= 0)
            continue;
        target[length] = '\0';
        if (strcmp(target, path) == 0) {
            found = 1;
            CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
            CHECK(fcntl(fd, F_GETFL) & O_APPEND);
        }
    }
    CHECK(found);
    audit_close(audit);
    remove_directory();
}

TEST(after_logrotate_renames_the_file_reopen_starts_a_new_one) {
    fresh_directory();
    char path[256], rotated[256];
    in_directory(path, sizeof path, "audit.log");
    in_directory(rotated, sizeof rotated, "audit.log.1");
    struct audit_config config = {.file = path};
    struct audit *audit = OPEN_OK(&config);
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":1}");
    CHECK_EQ(rename(path, rotated), 0);
    /* Until the reopen, records follow the file that moved. */
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":2}");
    char error[256] = "unchanged";
    CHECK_EQ(audit_reopen(audit, error, sizeof error), 0);
    CHECK_STR(error, "");
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":3}");
    CHECK_STR(file_text(rotated), "{\"n\":1}\n{\"n\":2}\n");
    CHECK_STR(file_text(path), "{\"n\":3}\n");
    CHECK_EQ(stats_of(audit).written, 3);
    audit_close(audit);
    remove_directory();
}

TEST(a_reopen_that_fails_keeps_writing_to_the_old_file) {
    fresh_directory();
    char folder[256], moved[256], path[300], moved_path[300];
    in_directory(folder, sizeof folder, "logs");
    in_directory(moved, sizeof moved, "moved");
    CHECK_EQ(mkdir(folder, 0755), 0);
    snprintf(path, sizeof path, "%s/audit.log", folder);
    snprintf(moved_path, sizeof moved_path, "%s/audit.log", moved);
    struct audit_config config = {.file = path};
    struct audit *audit = OPEN_OK(&config);
    CHECK_EQ(rename(folder, moved), 0);
    char error[512];
    CHECK_EQ(audit_reopen(audit, error, sizeof error), MB_ESYSTEM);
    CHECK(strstr(error, path) != NULL);
    CHECK(strstr(error, strerror(ENOENT)) != NULL);
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":1}");
    CHECK_STR(file_text(moved_path), "{\"n\":1}\n");
    CHECK_EQ(stats_of(audit).file_errors, 0);
    audit_close(audit);
    remove_directory();
}

static void check_open_fails(int line, const struct audit_config *config, int want_rc,
                             const char *want_1, const char *want_2) {
    /* Anything but NULL, to see that a failed open sets it to NULL. */
    static char sentinel;
    struct audit *audit = (struct audit *)(void *)&sentinel;
    char error[512];
    int rc = audit_open(config, &audit, error, sizeof error);
    harness_checks++;
    if (rc != want_rc || audit != NULL)
        harness_fail(__FILE__, line, "audit_open gave %d (%s), want %d and no sink", rc, error,
                     want_rc);
    const char *wants[] = {want_1, want_2};
    for (int i = 0; i < 2; i++) {
        harness_checks++;
        if (wants[i] != NULL && strstr(error, wants[i]) == NULL)
            harness_fail(__FILE__, line, "error \"%s\" does not say \"%s\"", error, wants[i]);
    }
    harness_checks++;
    if (strchr(error, '\n') != NULL)
        harness_fail(__FILE__, line, "error \"%s\" is more than one line", error);
    if (rc == 0)
        audit_close(audit);
}

#define CHECK_OPEN_FAILS(config, rc, want_1, want_2) \
    check_open_fails(__LINE__, config, rc, want_1, want_2)

TEST(a_file_that_cannot_be_opened_is_an_error_naming_the_path_and_the_cause) {
    fresh_directory();
    char path[256];
    in_directory(path, sizeof path, "missing/audit.log");
    struct audit_config config = {.file = path};
    CHECK_OPEN_FAILS(&config, MB_ESYSTEM, path, strerror(ENOENT));

    config.file = directory;
    CHECK_OPEN_FAILS(&config, MB_ESYSTEM, directory, strerror(EISDIR));

    /* Permissions do not hold root back; as anyone else, a read-only directory refuses. */
    char locked[256];
    in_directory(locked, sizeof locked, "locked");
    CHECK_EQ(mkdir(locked, 0500), 0);
    in_directory(path, sizeof path, "locked/audit.log");
    config.file = path;
    if (geteuid() != 0)
        CHECK_OPEN_FAILS(&config, MB_ESYSTEM, path, strerror(EACCES));

    /* A FIFO without a reader would block open() forever; it fails at once instead. */
    char fifo[256];
    in_directory(fifo, sizeof fifo, "fifo");
    CHECK_EQ(mkfifo(fifo, 0600), 0);
    config.file = fifo;
    CHECK_OPEN_FAILS(&config, MB_ESYSTEM, fifo, strerror(ENXIO));
    remove_directory();
}

TEST(a_full_device_counts_file_errors_and_reports_once_per_outage) {
    if (access("/dev/full", W_OK) != 0) {
        printf("  (skipped: no /dev/full)\n");
        return;
    }
    struct audit_config config = {.file = "/dev/full"};
    struct audit *audit = OPEN_OK(&config);
    char error[512];
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":1}");
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":2}");
    struct audit_stats stats = stats_of(audit);
    CHECK_EQ(stats.written, 0);
    CHECK_EQ(stats.file_errors, 2);
    CHECK_EQ(audit_take_error(audit, error, sizeof error), 1);
    CHECK_STR(error, "audit file /dev/full: No space left on device");
    CHECK_EQ(audit_take_error(audit, error, sizeof error), 0);
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":3}");
    CHECK_EQ(audit_take_error(audit, error, sizeof error), 0);
    CHECK_STR(audit_last_error(audit), "audit file /dev/full: No space left on device");
    CHECK_EQ(stats_of(audit).file_errors, 3);
    audit_close(audit);
}

/* In a child process: the file size limit cuts the record, SIGXFSZ ignored. */
TEST(a_record_cut_short_by_the_file_size_limit_is_counted) {
    fresh_directory();
    char path[256];
    in_directory(path, sizeof path, "audit.log");
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        signal(SIGXFSZ, SIG_IGN);
        struct rlimit limit = {100, 100};
        if (setrlimit(RLIMIT_FSIZE, &limit) != 0)
            _exit(3);
        struct audit_config config = {.file = path};
        struct audit *audit = NULL;
        char error[512];
        if (audit_open(&config, &audit, error, sizeof error) != 0)
            _exit(4);
        audit_write(audit, AUDIT_INFO, "write", "{\"n\":1}");
        char record[160];
        fill_record(record, sizeof record, "y", 140);
        audit_write(audit, AUDIT_INFO, "write", record);
        struct audit_stats stats;
        audit_stats(audit, &stats);
        int ok = stats.written == 1 && stats.file_errors == 1 &&
                 strstr(audit_last_error(audit), "cut short (92 of 152 bytes)") != NULL;
        if (!ok)
            fprintf(stderr, "  child: written %llu, errors %llu, last error \"%s\"\n",
                    (unsigned long long)stats.written, (unsigned long long)stats.file_errors,
                    audit_last_error(audit));
        audit_close(audit);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    CHECK_EQ(strncmp(file_text(path), "{\"n\":1}\n{\"fill\":\"yyy", 20), 0);
    remove_directory();
}

TEST(a_fifo_whose_reader_stalls_or_leaves_drops_records_without_blocking_or_sigpipe) {
    fresh_directory();
    char fifo[256];
    in_directory(fifo, sizeof fifo, "fifo");
    CHECK_EQ(mkfifo(fifo, 0600), 0);
    int reader = open(fifo, O_RDONLY | O_NONBLOCK | O_CLOEXEC);
    CHECK(reader >= 0);
    struct audit_config config = {.file = fifo};
    struct audit *audit = OPEN_OK(&config);
    char record[1100];
    fill_record(record, sizeof record, "z", 1000);
    /* 200 KB into a pipe of 64 KB that nobody reads. */
    int64_t started = now_ms();
    for (int i = 0; i < 200; i++)
        audit_write(audit, AUDIT_INFO, "write", record);
    CHECK(now_ms() - started < 2000);
    struct audit_stats stats = stats_of(audit);
    CHECK(stats.written > 0);
    CHECK(stats.file_errors > 0);
    CHECK_EQ(stats.written + stats.file_errors, 200);
    char error[512];
    CHECK_EQ(audit_take_error(audit, error, sizeof error), 1);
    CHECK(strstr(error, "not keeping up") != NULL);

    /* The reader goes away: EPIPE is an error like another, the process lives on and no
     * SIGPIPE is left pending. */
    close(reader);
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":1}");
    CHECK_EQ(stats_of(audit).file_errors, stats.file_errors + 1);
    CHECK(strstr(audit_last_error(audit), strerror(EPIPE)) != NULL);
    sigset_t pending;
    sigpending(&pending);
    CHECK(!sigismember(&pending, SIGPIPE));
    audit_close(audit);
    remove_directory();
}

/* ---- syslog ---- */

/* A datagram receiver bound where the sink will send: a unix socket path or 127.0.0.1. */
static int unix_receiver(const char *path, int receive_buffer) {
    int fd = socket(AF_UNIX, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_un address = {.sun_family = AF_UNIX};
    snprintf(address.sun_path, sizeof address.sun_path, "%s", path);
    if (receive_buffer > 0)
        setsockopt(fd, SOL_SOCKET, SO_RCVBUF, &receive_buffer, sizeof receive_buffer);
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        perror(path);
        exit(2);
    }
    return fd;
}

static int udp_receiver(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_DGRAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET};
    address.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    socklen_t length = sizeof address;
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0 ||
        getsockname(fd, (struct sockaddr *)&address, &length) != 0) {
        perror("udp receiver");
        exit(2);
    }
    *port = ntohs(address.sin_port);
    return fd;
}

/* One datagram within `timeout_ms`, NUL-terminated; its length, or -1 when none came. */
static long receive(int fd, char *buffer, size_t capacity, int timeout_ms) {
    struct pollfd wait = {.fd = fd, .events = POLLIN};
    if (poll(&wait, 1, timeout_ms) != 1)
        return -1;
    ssize_t length = recv(fd, buffer, capacity - 1, MSG_DONTWAIT);
    if (length < 0)
        return -1;
    buffer[length] = '\0';
    return (long)length;
}

/* An RFC 5424 message taken apart. */
struct syslog_message {
    int pri;
    char version[8], timestamp[64], hostname[300], app_name[64], procid[16], msgid[64], data[8];
    const char *msg;
};

/* Splits `datagram` at single spaces: <PRI>VERSION TIMESTAMP HOSTNAME APP-NAME PROCID MSGID
 * STRUCTURED-DATA MSG. Returns 1 when every field is there. */
static int parse_syslog(const char *datagram, struct syslog_message *message) {
    memset(message, 0, sizeof *message);
    const char *at = datagram;
    char *end;
    if (*at++ != '<')
        return 0;
    long pri = strtol(at, &end, 10);
    if (end == at || *end != '>' || end - at > 3)
        return 0;
    message->pri = (int)pri;
    at = end + 1;
    struct {
        char *field;
        size_t capacity;
    } fields[] = {{message->version, sizeof message->version},
                  {message->timestamp, sizeof message->timestamp},
                  {message->hostname, sizeof message->hostname},
                  {message->app_name, sizeof message->app_name},
                  {message->procid, sizeof message->procid},
                  {message->msgid, sizeof message->msgid},
                  {message->data, sizeof message->data}};
    for (size_t i = 0; i < sizeof fields / sizeof fields[0]; i++) {
        const char *space = strchr(at, ' ');
        if (space == NULL || space == at || (size_t)(space - at) >= fields[i].capacity)
            return 0;
        memcpy(fields[i].field, at, (size_t)(space - at));
        fields[i].field[space - at] = '\0';
        at = space + 1;
    }
    message->msg = at;
    return 1;
}

/* "2026-11-21T10:00:00.123Z", within a minute of now. */
static int timestamp_is_utc_with_milliseconds(const char *text) {
    static const char pattern[] = "dddd-dd-ddTdd:dd:dd.dddZ";
    if (strlen(text) != strlen(pattern))
        return 0;
    for (size_t i = 0; pattern[i] != '\0'; i++)
        if (pattern[i] == 'd' ? (text[i] < '0' || text[i] > '9') : text[i] != pattern[i])
            return 0;
    struct tm utc = {0};
    if (sscanf(text, "%4d-%2d-%2dT%2d:%2d:%2d", &utc.tm_year, &utc.tm_mon, &utc.tm_mday,
               &utc.tm_hour, &utc.tm_min, &utc.tm_sec) != 6)
        return 0;
    utc.tm_year -= 1900;
    utc.tm_mon -= 1;
    long difference = (long)(timegm(&utc) - time(NULL));
    return difference > -60 && difference < 60;
}

static void check_syslog(int line, const char *datagram, int pri, const char *app_name,
                         const char *msgid, const char *json) {
    struct syslog_message message;
    char hostname[300] = "", procid[16];
    gethostname(hostname, sizeof hostname - 1);
    snprintf(procid, sizeof procid, "%ld", (long)getpid());
    harness_checks++;
    if (!parse_syslog(datagram, &message)) {
        harness_fail(__FILE__, line, "not RFC 5424: %s", datagram);
        return;
    }
    int ok = message.pri == pri && strcmp(message.version, "1") == 0 &&
             timestamp_is_utc_with_milliseconds(message.timestamp) &&
             (strcmp(message.hostname, hostname) == 0 || strcmp(message.hostname, "-") == 0) &&
             strcmp(message.app_name, app_name) == 0 && strcmp(message.procid, procid) == 0 &&
             strcmp(message.msgid, msgid) == 0 && strcmp(message.data, "-") == 0 &&
             strcmp(message.msg, json) == 0;
    harness_checks++;
    if (!ok)
        harness_fail(__FILE__, line,
                     "got pri %d version %s time %s host %s app %s procid %s msgid %s sd %s "
                     "msg %s; want pri %d app %s procid %s msgid %s msg %s",
                     message.pri, message.version, message.timestamp, message.hostname,
                     message.app_name, message.procid, message.msgid, message.data, message.msg,
                     pri, app_name, procid, msgid, json);
}

#define CHECK_SYSLOG(datagram, pri, app_name, msgid, json) \
    check_syslog(__LINE__, datagram, pri, app_name, msgid, json)

TEST(syslog_over_a_unix_socket_is_one_rfc5424_message_per_record) {
    fresh_directory();
    char socket_path[256], file_path[256], config_syslog[300];
    in_directory(socket_path, sizeof socket_path, "log");
    in_directory(file_path, sizeof file_path, "audit.log");
    snprintf(config_syslog, sizeof config_syslog, "unix:%s", socket_path);
    int receiver = unix_receiver(socket_path, 0);
    struct audit_config config = {.file = file_path, .syslog = config_syslog};
    struct audit *audit = OPEN_OK(&config);
    const char *json = "{\"peer\":\"192.0.2.1:50123\",\"reason\":\"caf\xc3\xa9\"}";
    audit_write(audit, AUDIT_WARNING, "denied", json);
    char datagram[AUDIT_UNIX_MAX + 1];
    CHECK(receive(receiver, datagram, sizeof datagram, 2000) > 0);
    /* Facility 13 (log audit) by default: 13 * 8 + 4; no BOM before the JSON. */
    CHECK_SYSLOG(datagram, 108, "mbsec-gateway", "denied", json);
    CHECK_STR(file_text(file_path), "{\"peer\":\"192.0.2.1:50123\",\"reason\":\"caf\xc3\xa9\"}\n");
    struct audit_stats stats = stats_of(audit);
    CHECK_EQ(stats.written, 1);
    CHECK_EQ(stats.syslog_errors + stats.syslog_dropped + stats.file_errors, 0);

    /* A record of 4 KiB, the JSON builder's largest, arrives whole. */
    char big[4200];
    fill_record(big, sizeof big, "b", 4085);
    audit_write(audit, AUDIT_INFO, "write", big);
    CHECK(receive(receiver, datagram, sizeof datagram, 2000) > 0);
    CHECK_SYSLOG(datagram, 110, "mbsec-gateway", "write", big);
    CHECK_EQ(stats_of(audit).syslog_truncated, 0);
    audit_close(audit);
    close(receiver);
    remove_directory();
}

TEST(pri_is_facility_times_8_plus_severity_and_app_name_is_configured) {
    fresh_directory();
    char socket_path[256], config_syslog[300];
    in_directory(socket_path, sizeof socket_path, "log");
    snprintf(config_syslog, sizeof config_syslog, "unix:%s", socket_path);
    int receiver = unix_receiver(socket_path, 0);
    static const struct {
        int facility;
        enum audit_severity severity;
        int pri;
    } cases[] = {{23, AUDIT_CRITICAL, 186},
                 {1, AUDIT_INFO, 14},
                 {16, AUDIT_ERROR, 131},
                 {13, AUDIT_NOTICE, 109},
                 {4, AUDIT_WARNING, 36}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct audit_config config = {
            .syslog = config_syslog, .app_name = "plant-gw_1", .facility = cases[i].facility};
        struct audit *audit = OPEN_OK(&config);
        audit_write(audit, cases[i].severity, "alert", "{}");
        char datagram[512];
        CHECK(receive(receiver, datagram, sizeof datagram, 2000) > 0);
        CHECK_SYSLOG(datagram, cases[i].pri, "plant-gw_1", "alert", "{}");
        audit_close(audit);
    }
    close(receiver);
    remove_directory();
}

TEST(msgid_is_printable_ascii_of_at_most_32_characters_or_a_dash) {
    fresh_directory();
    char socket_path[256], config_syslog[300];
    in_directory(socket_path, sizeof socket_path, "log");
    snprintf(config_syslog, sizeof config_syslog, "unix:%s", socket_path);
    int receiver = unix_receiver(socket_path, 0);
    struct audit_config config = {.syslog = config_syslog};
    struct audit *audit = OPEN_OK(&config);
    static const char *const cases[][2] = {
        {"connection", "connection"},
        {"sanity", "sanity"},
        {NULL, "-"},
        {"", "-"},
        {"two words", "-"},
        {"caf\xc3\xa9", "-"},
        {"abcdefghijklmnopqrstuvwxyz0123456789", "abcdefghijklmnopqrstuvwxyz012345"}};
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        audit_write(audit, AUDIT_INFO, cases[i][0], "{}");
        char datagram[512];
        CHECK(receive(receiver, datagram, sizeof datagram, 2000) > 0);
        CHECK_SYSLOG(datagram, 110, "mbsec-gateway", cases[i][1], "{}");
    }
    audit_close(audit);
    close(receiver);
    remove_directory();
}

TEST(syslog_over_udp_reaches_127_0_0_1_and_cuts_long_records_at_2048_bytes) {
    uint16_t port;
    int receiver = udp_receiver(&port);
    char config_syslog[64];
    snprintf(config_syslog, sizeof config_syslog, "udp:127.0.0.1:%u", port);
    struct audit_config config = {.syslog = config_syslog, .facility = 10};
    struct audit *audit = OPEN_OK(&config);
    audit_write(audit, AUDIT_ERROR, "sanity", "{\"check\":\"ok\"}");
    char datagram[8192];
    CHECK(receive(receiver, datagram, sizeof datagram, 2000) > 0);
    CHECK_SYSLOG(datagram, 83, "mbsec-gateway", "sanity", "{\"check\":\"ok\"}");

    /* 3 KB of "é": the cut falls on a character boundary, at or just below 2048 bytes. */
    char big[3200];
    fill_record(big, sizeof big, "\xc3\xa9", 3000);
    audit_write(audit, AUDIT_INFO, "write", big);
    long length = receive(receiver, datagram, sizeof datagram, 2000);
    CHECK(length > 2040 && length <= AUDIT_UDP_MAX);
    struct syslog_message message;
    CHECK(parse_syslog(datagram, &message));
    CHECK_EQ(strncmp(message.msg, big, strlen(message.msg)), 0);
    /* Whole characters only: {"fill":" then an even number of bytes of é. */
    CHECK_EQ((strlen(message.msg) - strlen("{\"fill\":\"")) % 2, 0);
    struct audit_stats stats = stats_of(audit);
    CHECK_EQ(stats.written, 2);
    CHECK_EQ(stats.syslog_truncated, 1);
    audit_close(audit);
    close(receiver);
}

TEST(a_udp_receiver_that_is_not_listening_is_counted_not_fatal) {
    uint16_t port;
    int closed = udp_receiver(&port);
    close(closed);
    char config_syslog[64];
    snprintf(config_syslog, sizeof config_syslog, "udp:127.0.0.1:%u", port);
    struct audit_config config = {.syslog = config_syslog};
    struct audit *audit = OPEN_OK(&config);
    /* The ICMP port unreachable of one datagram fails the next send (on loopback at once). */
    int64_t deadline = now_ms() + 3000;
    while (stats_of(audit).syslog_errors == 0 && now_ms() < deadline)
        audit_write(audit, AUDIT_INFO, "write", "{}");
    CHECK(stats_of(audit).syslog_errors > 0);
    CHECK(strstr(audit_last_error(audit), strerror(ECONNREFUSED)) != NULL);
    CHECK(strstr(audit_last_error(audit), config_syslog) != NULL);
    audit_close(audit);
}

TEST(a_unix_receiver_that_went_away_is_counted_then_reconnected_within_a_second_or_two) {
    fresh_directory();
    char socket_path[256], config_syslog[300];
    in_directory(socket_path, sizeof socket_path, "log");
    snprintf(config_syslog, sizeof config_syslog, "unix:%s", socket_path);
    int receiver = unix_receiver(socket_path, 0);
    struct audit_config config = {.syslog = config_syslog};
    struct audit *audit = OPEN_OK(&config);
    char datagram[512], error[512];
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":1}");
    CHECK(receive(receiver, datagram, sizeof datagram, 2000) > 0);

    /* The daemon stops: its socket and its path are gone. */
    close(receiver);
    unlink(socket_path);
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":2}");
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":3}");
    struct audit_stats stats = stats_of(audit);
    CHECK_EQ(stats.written, 1);
    CHECK_EQ(stats.syslog_errors, 2);
    CHECK_EQ(audit_take_error(audit, error, sizeof error), 1);
    CHECK(strstr(error, socket_path) != NULL);
    CHECK(strstr(error, strerror(ENOENT)) != NULL);
    CHECK_EQ(audit_take_error(audit, error, sizeof error), 0);

    /* It comes back; within about a second a record reaches it. */
    receiver = unix_receiver(socket_path, 0);
    int64_t started = now_ms(), arrived = -1;
    while (arrived < 0 && now_ms() - started < 3000) {
        audit_write(audit, AUDIT_INFO, "write", "{\"n\":4}");
        if (receive(receiver, datagram, sizeof datagram, 20) > 0)
            arrived = now_ms() - started;
    }
    CHECK(arrived >= 0 && arrived <= 1500);
    CHECK_SYSLOG(datagram, 110, "mbsec-gateway", "write", "{\"n\":4}");
    /* Working again, so the next outage is reported again. */
    close(receiver);
    unlink(socket_path);
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":5}");
    CHECK_EQ(audit_take_error(audit, error, sizeof error), 1);
    audit_close(audit);
    remove_directory();
}

TEST(a_restarted_unix_receiver_gets_the_next_record_without_loss) {
    fresh_directory();
    char socket_path[256], config_syslog[300];
    in_directory(socket_path, sizeof socket_path, "log");
    snprintf(config_syslog, sizeof config_syslog, "unix:%s", socket_path);
    int receiver = unix_receiver(socket_path, 0);
    struct audit_config config = {.syslog = config_syslog};
    struct audit *audit = OPEN_OK(&config);
    char datagram[512];
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":1}");
    CHECK(receive(receiver, datagram, sizeof datagram, 2000) > 0);
    close(receiver);
    unlink(socket_path);
    receiver = unix_receiver(socket_path, 0);
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":2}");
    CHECK(receive(receiver, datagram, sizeof datagram, 2000) > 0);
    CHECK_SYSLOG(datagram, 110, "mbsec-gateway", "write", "{\"n\":2}");
    struct audit_stats stats = stats_of(audit);
    CHECK_EQ(stats.written, 2);
    CHECK_EQ(stats.syslog_errors, 0);
    audit_close(audit);
    close(receiver);
    remove_directory();
}

TEST(reopen_lets_a_down_unix_receiver_be_tried_at_once) {
    fresh_directory();
    char socket_path[256], config_syslog[300];
    in_directory(socket_path, sizeof socket_path, "log");
    snprintf(config_syslog, sizeof config_syslog, "unix:%s", socket_path);
    int receiver = unix_receiver(socket_path, 0);
    struct audit_config config = {.syslog = config_syslog};
    struct audit *audit = OPEN_OK(&config);
    close(receiver);
    unlink(socket_path);
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":1}");
    CHECK_EQ(stats_of(audit).syslog_errors, 1);
    receiver = unix_receiver(socket_path, 0);
    char error[256], datagram[512];
    CHECK_EQ(audit_reopen(audit, error, sizeof error), 0);
    audit_write(audit, AUDIT_INFO, "write", "{\"n\":2}");
    CHECK(receive(receiver, datagram, sizeof datagram, 2000) > 0);
    CHECK_EQ(stats_of(audit).written, 1);
    audit_close(audit);
    close(receiver);
    remove_directory();
}

TEST(a_unix_receiver_that_never_reads_drops_records_without_blocking) {
    fresh_directory();
    char socket_path[256], config_syslog[300];
    in_directory(socket_path, sizeof socket_path, "log");
    snprintf(config_syslog, sizeof config_syslog, "unix:%s", socket_path);
    int receiver = unix_receiver(socket_path, 1024);
    struct audit_config config = {.syslog = config_syslog};
    struct audit *audit = OPEN_OK(&config);
    char record[600];
    fill_record(record, sizeof record, "q", 500);
    int64_t started = now_ms();
    for (int i = 0; i < 1000; i++)
        audit_write(audit, AUDIT_INFO, "write", record);
    CHECK(now_ms() - started < 2000);
    struct audit_stats stats = stats_of(audit);
    CHECK(stats.written > 0);
    CHECK(stats.syslog_dropped > 0);
    CHECK_EQ(stats.syslog_errors, 0);
    CHECK_EQ(stats.written + stats.syslog_dropped, 1000);
    char error[512];
    CHECK_EQ(audit_take_error(audit, error, sizeof error), 1);
    CHECK(strstr(error, "queue is full") != NULL);
    CHECK_EQ(audit_take_error(audit, error, sizeof error), 0);
    audit_close(audit);
    close(receiver);
    remove_directory();
}

TEST(open_refuses_syslog_settings_it_cannot_use) {
    fresh_directory();
    struct audit_config config = {.syslog = "relp:127.0.0.1:514"};
    CHECK_OPEN_FAILS(&config, MB_EINVAL, "relp:127.0.0.1:514", "expected unix");
    /* Over TCP and TLS records wait in a spool: without one, and with an address that is not
     * one, nothing opens. */
    config.syslog = "tcp:127.0.0.1:514";
    CHECK_OPEN_FAILS(&config, MB_EINVAL, "tcp:127.0.0.1:514", "spool directory is needed");
    config.syslog = "tcp:[::1";
    CHECK_OPEN_FAILS(&config, MB_EADDRESS, "tcp:[::1", "not HOST:PORT");
    config.syslog = "tcp:127.0.0.1:70000";
    CHECK_OPEN_FAILS(&config, MB_EADDRESS, "tcp:127.0.0.1:70000", "not HOST:PORT");
    config.syslog = "tls:127.0.0.1:6514";
    config.spool = directory;
    CHECK_OPEN_FAILS(&config, MB_EINVAL, "tls:127.0.0.1:6514", "TLS settings are needed");
    config.spool = NULL;
    config.syslog = "udp:127.0.0.1:99999";
    CHECK_OPEN_FAILS(&config, MB_EADDRESS, "udp:127.0.0.1:99999", "port");
    config.syslog = "unix:";
    CHECK_OPEN_FAILS(&config, MB_EINVAL, "unix:", "path");
    char long_path[200] = "unix:/";
    strcat(long_path, filler("p", 150));
    config.syslog = long_path;
    CHECK_OPEN_FAILS(&config, MB_EINVAL, "too long", NULL);
    char missing[300];
    snprintf(missing, sizeof missing, "unix:%s/no-daemon-here", directory);
    config.syslog = missing;
    CHECK_OPEN_FAILS(&config, MB_ESYSTEM, missing, strerror(ENOENT));

    int receiver = unix_receiver(missing + 5, 0);
    config.app_name = "two words";
    CHECK_OPEN_FAILS(&config, MB_EINVAL, "two words", "app name");
    config.app_name = filler("a", 49);
    CHECK_OPEN_FAILS(&config, MB_EINVAL, "app name", NULL);
    config.app_name = filler("a", 48);
    audit_close(OPEN_OK(&config));
    config.app_name = NULL;
    config.facility = 24;
    CHECK_OPEN_FAILS(&config, MB_EINVAL, "facility 24", NULL);
    config.facility = -1;
    CHECK_OPEN_FAILS(&config, MB_EINVAL, "facility -1", NULL);
    close(receiver);

    /* The file is closed again when syslog then fails: nothing is left open or allocated
     * (LeakSanitizer in the ASan build). */
    char path[256];
    in_directory(path, sizeof path, "audit.log");
    struct audit_config both = {.file = path, .syslog = "nonsense"};
    CHECK_OPEN_FAILS(&both, MB_EINVAL, "nonsense", NULL);
    remove_directory();
}

TEST(without_sinks_records_are_only_counted_and_null_is_harmless) {
    struct audit_config config = {0};
    struct audit *audit = OPEN_OK(&config);
    audit_write(audit, AUDIT_INFO, "write", "{}");
    audit_write(audit, AUDIT_INFO, "write", NULL);
    CHECK_EQ(stats_of(audit).written, 1);
    char error[64];
    CHECK_EQ(audit_reopen(audit, error, sizeof error), 0);
    audit_close(audit);
    audit_write(NULL, AUDIT_INFO, "write", "{}");
    audit_close(NULL);
    CHECK_EQ(stats_of(NULL).written, 0);
    CHECK_STR(audit_last_error(NULL), "");
}

int main(void) {
    RUN(the_json_checker_accepts_json_and_refuses_what_is_not);
    RUN(an_empty_record_is_an_empty_object);
    RUN(every_type_is_written_as_json);
    RUN(strings_escape_quote_backslash_and_control_characters);
    RUN(well_formed_utf8_is_kept_as_it_is);
    RUN(ill_formed_utf8_becomes_one_ufffd_per_maximal_subpart);
    RUN(a_string_with_a_nul_inside_is_written_whole);
    RUN(any_bytes_become_one_valid_json_string_in_valid_utf8);
    RUN(any_bytes_quoted_as_plain_text_stay_one_field_on_one_line);
    RUN(any_bytes_escaped_without_quotes_stay_on_one_line);
    RUN(plain_text_keeps_utf8_and_writes_every_other_byte_as_xNN);
    RUN(unquoted_text_keeps_utf8_and_quotes_and_escapes_the_backslash);
    RUN(a_plain_line_escapes_quotes_backslashes_controls_and_bad_utf8_in_the_reason);
    RUN(a_json_line_escapes_the_reason_as_audit_records_do);
    RUN(a_field_that_does_not_fit_is_dropped_whole_and_truncated_is_added_last);
    RUN(at_every_fill_level_the_record_stays_valid_json_and_fields_stay_whole);
    RUN(many_small_fields_end_with_truncated_and_valid_json);
    RUN(the_file_gets_one_line_per_record_appended_after_what_it_held);
    RUN(a_new_file_is_created_with_mode_0640_and_close_on_exec);
    RUN(after_logrotate_renames_the_file_reopen_starts_a_new_one);
    RUN(a_reopen_that_fails_keeps_writing_to_the_old_file);
    RUN(a_file_that_cannot_be_opened_is_an_error_naming_the_path_and_the_cause);
    RUN(a_full_device_counts_file_errors_and_reports_once_per_outage);
    RUN(a_record_cut_short_by_the_file_size_limit_is_counted);
    RUN(a_fifo_whose_reader_stalls_or_leaves_drops_records_without_blocking_or_sigpipe);
    RUN(syslog_over_a_unix_socket_is_one_rfc5424_message_per_record);
    RUN(pri_is_facility_times_8_plus_severity_and_app_name_is_configured);
    RUN(msgid_is_printable_ascii_of_at_most_32_characters_or_a_dash);
    RUN(syslog_over_udp_reaches_127_0_0_1_and_cuts_long_records_at_2048_bytes);
    RUN(a_udp_receiver_that_is_not_listening_is_counted_not_fatal);
    RUN(a_unix_receiver_that_went_away_is_counted_then_reconnected_within_a_second_or_two);
    RUN(a_restarted_unix_receiver_gets_the_next_record_without_loss);
    RUN(reopen_lets_a_down_unix_receiver_be_tried_at_once);
    RUN(a_unix_receiver_that_never_reads_drops_records_without_blocking);
    RUN(open_refuses_syslog_settings_it_cannot_use);
    RUN(without_sinks_records_are_only_counted_and_null_is_harmless);
    return harness_result();
}
