/* SPDX-License-Identifier: MIT */
#include "harness.h"

#include <stdarg.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <unistd.h>

int harness_failures;
int harness_checks;
const char *harness_current = "(none)";

void harness_fail(const char *file, int line, const char *fmt, ...) {
    va_list args;
    harness_failures++;
    fprintf(stderr, "FAIL %s\n  %s:%d: ", harness_current, file, line);
    va_start(args, fmt);
    vfprintf(stderr, fmt, args);
    va_end(args);
    fputc('\n', stderr);
}

void harness_run(const char *name, void (*test)(void)) {
    int failures_before = harness_failures;
    int checks_before = harness_checks;
    harness_current = name;
    test();
    /* A test that checked nothing proves nothing: most often a loop that never ran or a check
     * that was left out. */
    if (harness_checks == checks_before) {
        harness_failures++;
        fprintf(stderr, "FAIL %s\n  the test made no check\n", name);
    }
    printf("%s %s\n", harness_failures == failures_before ? "ok  " : "FAIL", name);
    fflush(stdout);
}

int harness_result(void) {
    printf("%d checks, %d failed\n", harness_checks, harness_failures);
    return harness_failures == 0 ? 0 : 1;
}

void harness_hexdump(const char *label, const uint8_t *data, size_t length) {
    fprintf(stderr, "  %s (%zu):", label, length);
    for (size_t i = 0; i < length; i++)
        fprintf(stderr, " %02X", data[i]);
    fputc('\n', stderr);
}

int harness_bytes_equal(const char *file, int line, const uint8_t *got, size_t got_length,
                        const uint8_t *want, size_t want_length) {
    if (got_length == want_length && (want_length == 0 || memcmp(got, want, want_length) == 0))
        return 1;
    harness_fail(file, line, "bytes differ");
    harness_hexdump("got ", got, got_length);
    harness_hexdump("want", want, want_length);
    return 0;
}

const uint8_t *guard_copy(const void *data, size_t length) {
    static uint8_t *region;
    static size_t page;
    if (region == NULL) {
        page = (size_t)sysconf(_SC_PAGESIZE);
        region = mmap(NULL, 2 * page, PROT_READ | PROT_WRITE, MAP_PRIVATE | MAP_ANONYMOUS, -1, 0);
        if (region == MAP_FAILED || mprotect(region + page, page, PROT_NONE) != 0) {
            perror("guard_copy: mmap/mprotect");
            exit(2);
        }
    }
    if (length > page) {
        fprintf(stderr, "guard_copy: %zu bytes do not fit a page\n", length);
        exit(2);
    }
    uint8_t *start = region + page - length;
    if (length > 0)
        memcpy(start, data, length);
    return start;
}
