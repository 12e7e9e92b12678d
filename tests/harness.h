/* SPDX-License-Identifier: MIT */
/*
 * A small test harness. Each test file is its own executable (CTest runs each in its own process
 * with a time limit); inside it, tests run in order and a failed check reports file:line and
 * carries on, so one run shows every failure. A test that makes no check fails.
 *
 *   TEST(returns_03_when_quantity_is_0) { CHECK_EQ(mb_request_check(...), 3); }
 *   int main(void) { RUN(returns_03_when_quantity_is_0); return harness_result(); }
 */
#ifndef MBSEC_TESTS_HARNESS_H
#define MBSEC_TESTS_HARNESS_H

#include <stddef.h>
#include <stdint.h>
#include <stdio.h>

extern int harness_failures;
extern int harness_checks;
extern const char *harness_current;

void harness_fail(const char *file, int line, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
void harness_run(const char *name, void (*test)(void));
int harness_result(void);
void harness_hexdump(const char *label, const uint8_t *data, size_t length);
int harness_bytes_equal(const char *file, int line, const uint8_t *got, size_t got_length,
                        const uint8_t *want, size_t want_length);

/*
 * Copies data to the very end of a readable page followed by an inaccessible one, so that a
 * read one byte past the end faults. The copy stays valid until the next call.
 */
const uint8_t *guard_copy(const void *data, size_t length);

#define TEST(name) static void name(void)
#define RUN(name) harness_run(#name, name)

#define CHECK(cond)                                               \
    do {                                                          \
        harness_checks++;                                         \
        if (!(cond))                                              \
            harness_fail(__FILE__, __LINE__, "CHECK(%s)", #cond); \
    } while (0)

#define CHECK_EQ(got, want)                                                                    \
    do {                                                                                       \
        long long got_ = (long long)(got), want_ = (long long)(want);                          \
        harness_checks++;                                                                      \
        if (got_ != want_)                                                                     \
            harness_fail(__FILE__, __LINE__, "%s == %lld, want %s == %lld", #got, got_, #want, \
                         want_);                                                               \
    } while (0)

#define CHECK_STR(got, want)                                                    \
    do {                                                                        \
        const char *got_ = (got), *want_ = (want);                              \
        harness_checks++;                                                       \
        if (got_ == NULL || strcmp(got_, want_) != 0)                           \
            harness_fail(__FILE__, __LINE__, "%s == \"%s\", want \"%s\"", #got, \
                         got_ ? got_ : "(null)", want_);                        \
    } while (0)

/* CHECK_BYTES(buffer, length, 0x01, 0x02, ...): the bytes equal the listed ones exactly. */
#define CHECK_BYTES(got, got_length, ...)                                                          \
    do {                                                                                           \
        static const uint8_t want_[] = {__VA_ARGS__};                                              \
        harness_checks++;                                                                          \
        harness_bytes_equal(__FILE__, __LINE__, (got), (size_t)(got_length), want_, sizeof want_); \
    } while (0)

/* A byte vector written out in full: BYTES(0x01, 0x03) is a compound literal and its size. */
#define BYTES(...) ((const uint8_t[]){__VA_ARGS__}), sizeof((const uint8_t[]){__VA_ARGS__})

#endif
