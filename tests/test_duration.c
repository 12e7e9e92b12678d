/* SPDX-License-Identifier: MIT */
/*
 * The one duration grammar of the configuration file and the command lines
 * (src/app/common/duration.c): every unit, fractions rounded to the millisecond, each limit at
 * its edge, what a bare number means, everything refused with its status, and the one message.
 *
 * Linking: the parser lives in the mbsec program's library, so tests/CMakeLists.txt adds
 * `target_link_libraries(test_duration PRIVATE mbsec_tool)`.
 */
#include <string.h>

#include "app/common/duration.h"
#include "harness.h"

/* Parses `text`, NUL excluded, from the very end of a readable page, so that a read past the
 * last byte faults. */
static enum duration_status parse(const char *text, enum duration_bare bare,
                                  uint32_t *milliseconds) {
    size_t length = strlen(text);
    return duration_parse((const char *)guard_copy(text, length), length, bare, milliseconds);
}

static const struct {
    const char *text;
    /* The value when a bare number is seconds, and when it is milliseconds; 0 where it is
     * refused as shorter than 1 ms. */
    uint32_t seconds_bare;
    uint32_t milliseconds_bare;
} good[] = {
    {"250ms", 250, 250},
    {"5s", 5000, 5000},
    {"2m", 120000, 120000},
    {"1h", 3600000, 3600000},
    {"30", 30000, 30},
    {"1ms", 1, 1},
    {"007s", 7000, 7000},
    {"1.5s", 1500, 1500},
    {"0.25", 250, 0 /* too short: a quarter of a millisecond */},
    {".5s", 500, 500},
    {"0.5h", 1800000, 1800000},
    {"1.25m", 75000, 75000},
    {"2.5", 2500, 3 /* 2.5 ms rounds half up */},
    {"0.0005s", 1 /* exactly half a millisecond rounds up */, 1},
    {"0.0004999s", 0, 0},
    {"1.0004999s", 1000, 1000},
    {"0.001s", 1, 1},
    {"0.333333333333333333333333m", 20000, 20000},
    {"0.00000027777777777777h", 1 /* 0.99999... ms */, 1},
    {"24h", 86400000, 86400000},
    {"1440m", 86400000, 86400000},
    {"86400", 86400000, 86400},
    {"86400000ms", 86400000, 86400000},
    {"86399.9995s", 86400000, 86400000},
    {"23.99999999h", 86400000 /* 86399999.964 ms */, 86400000},
};

TEST(good_durations_have_their_exact_value_in_milliseconds) {
    for (size_t i = 0; i < sizeof good / sizeof good[0]; i++) {
        uint32_t milliseconds = 0;
        enum duration_status status = parse(good[i].text, DURATION_BARE_SECONDS, &milliseconds);
        if (good[i].seconds_bare == 0) {
            CHECK_EQ(status, DURATION_TOO_SHORT);
        } else {
            CHECK_EQ(status, DURATION_OK);
            CHECK_EQ(milliseconds, good[i].seconds_bare);
        }
        if (status != DURATION_OK && good[i].seconds_bare != 0)
            fprintf(stderr, "  refused \"%s\"\n", good[i].text);
        milliseconds = 0;
        status = parse(good[i].text, DURATION_BARE_MILLISECONDS, &milliseconds);
        if (good[i].milliseconds_bare == 0) {
            CHECK_EQ(status, DURATION_TOO_SHORT);
        } else {
            CHECK_EQ(status, DURATION_OK);
            CHECK_EQ(milliseconds, good[i].milliseconds_bare);
        }
    }
}

TEST(bad_durations_are_refused_with_their_reason_and_leave_the_value_alone) {
    static const struct {
        const char *text;
        enum duration_status status;
    } bad[] = {
        {"", DURATION_SYNTAX},
        {"-5s", DURATION_SYNTAX},
        {"+5s", DURATION_SYNTAX},
        {"-0", DURATION_SYNTAX},
        {"5 s", DURATION_SYNTAX},
        {" 5s", DURATION_SYNTAX},
        {"5s ", DURATION_SYNTAX},
        {"5S", DURATION_SYNTAX},
        {"5sec", DURATION_SYNTAX},
        {"5d", DURATION_SYNTAX},
        {"5us", DURATION_SYNTAX},
        {"ms", DURATION_SYNTAX},
        {"s", DURATION_SYNTAX},
        {".", DURATION_SYNTAX},
        {".s", DURATION_SYNTAX},
        {"5.", DURATION_SYNTAX},
        {"5.s", DURATION_SYNTAX},
        {"1.2.3s", DURATION_SYNTAX},
        {"1,5s", DURATION_SYNTAX},
        {"0x10", DURATION_SYNTAX},
        {"1e3", DURATION_SYNTAX},
        {"inf", DURATION_SYNTAX},
        {"nan", DURATION_SYNTAX},
        {"5m5s", DURATION_SYNTAX},
        {"5s\n", DURATION_SYNTAX},
        {"0", DURATION_ZERO},
        {"0s", DURATION_ZERO},
        {"0ms", DURATION_ZERO},
        {"000.000h", DURATION_ZERO},
        {".0", DURATION_ZERO},
        {"0.4ms", DURATION_TOO_SHORT},
        {"0.0001", DURATION_TOO_SHORT},
        {"25h", DURATION_TOO_LONG},
        {"86401", DURATION_TOO_LONG},
        {"1441m", DURATION_TOO_LONG},
        {"86400001ms", DURATION_TOO_LONG},
        {"86400.0005s", DURATION_TOO_LONG},
        {"24.000001h", DURATION_TOO_LONG},
        {"99999999999999999999999ms", DURATION_TOO_LONG},
        {"18446744073709551617h", DURATION_TOO_LONG},
        {"99999999999999999999999.5", DURATION_TOO_LONG},
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        uint32_t milliseconds = 77;
        enum duration_status status = parse(bad[i].text, DURATION_BARE_SECONDS, &milliseconds);
        CHECK_EQ(status, bad[i].status);
        CHECK_EQ(milliseconds, 77);
        if (status != bad[i].status)
            fprintf(stderr, "  \"%s\" gave status %d\n", bad[i].text, (int)status);
    }
}

TEST(the_length_bounds_the_text_and_no_nul_is_needed) {
    uint32_t milliseconds = 0;
    CHECK_EQ(duration_parse("250msXYZ", 5, DURATION_BARE_SECONDS, &milliseconds), DURATION_OK);
    CHECK_EQ(milliseconds, 250);
    CHECK_EQ(duration_parse("250msXYZ", 4, DURATION_BARE_SECONDS, &milliseconds), DURATION_OK);
    CHECK_EQ(milliseconds, 15000000); /* "250m" */
    CHECK_EQ(duration_parse("5s", 0, DURATION_BARE_SECONDS, &milliseconds), DURATION_SYNTAX);
}

TEST(every_refusal_has_one_message_naming_the_option) {
    char message[256];
    duration_message(message, sizeof message, "limits.idle_timeout", "\"5x\"",
                     DURATION_BARE_SECONDS, DURATION_SYNTAX);
    CHECK_STR(message, "limits.idle_timeout: expected a duration such as 250ms, 1.5s, 2m or 1h "
                       "(a bare number is seconds), got \"5x\"");
    uint32_t milliseconds = 77;
    CHECK_EQ(duration_option("--timeout", "2 s", DURATION_BARE_MILLISECONDS, &milliseconds, message,
                             sizeof message),
             -1);
    CHECK_STR(message, "--timeout: expected a duration such as 250ms, 1.5s, 2m or 1h (a bare "
                       "number is milliseconds), got '2 s'");
    CHECK_EQ(duration_option("--interval", "0", DURATION_BARE_SECONDS, &milliseconds, message,
                             sizeof message),
             -1);
    CHECK_STR(message, "--interval: the duration must be at least 1ms, got '0'");
    CHECK_EQ(duration_option("--interval", "0.1ms", DURATION_BARE_SECONDS, &milliseconds, message,
                             sizeof message),
             -1);
    CHECK_STR(message, "--interval: the duration must be at least 1ms, got '0.1ms'");
    CHECK_EQ(duration_option("--idle-timeout", "25h", DURATION_BARE_SECONDS, &milliseconds, message,
                             sizeof message),
             -1);
    CHECK_STR(message, "--idle-timeout: the duration must be at most 24h, got '25h'");
    CHECK_EQ(milliseconds, 77);
    CHECK_EQ(duration_option("--interval", "2m", DURATION_BARE_SECONDS, &milliseconds, message,
                             sizeof message),
             0);
    CHECK_EQ(milliseconds, 120000);
}

int main(void) {
    RUN(good_durations_have_their_exact_value_in_milliseconds);
    RUN(bad_durations_are_refused_with_their_reason_and_leave_the_value_alone);
    RUN(the_length_bounds_the_text_and_no_nul_is_needed);
    RUN(every_refusal_has_one_message_naming_the_option);
    return harness_result();
}
