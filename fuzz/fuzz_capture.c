/* SPDX-License-Identifier: MIT */
/*
 * The capture reader (src/app/policy/capture.c) against any file: the input is written to a
 * memory file and read through /proc/self/fd/N as a pcap or pcapng capture, with a table of 8
 * connections so that eviction is reached too.
 *
 * Properties:
 *   - capture_read() returns 0 or -1, and -1 comes with one line (no control characters) that
 *     starts with the file's path;
 *   - every request handed over has a PDU of 1..253 bytes whose function code a client sends,
 *     an IPv4 or IPv6 client address, no role, tls 0, and an origin "PATH: packet N" with N at
 *     most the number of records read; the stats count exactly the requests handed over, each
 *     record once (Modbus or other), and the bytes held never pass the global bound;
 *   - a second read whose visitor stops after half the requests returns the visitor's value,
 *     having handed over the same requests, in the same order, up to there.
 * Nothing leaks, and the run ends with no descriptor more.
 */
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/mman.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app/policy/capture.h"
#include "fuzz.h"

#define STOP_VALUE 42

struct run {
    struct fuzz_log log;
    uint64_t count;
    uint64_t stop_after; /* 0: never */
    const char *path;
    uint64_t packets_bound;
};

static int visit(void *data, const struct observed *request) {
    struct run *run = data;
    FUZZ_CHECK(request->pdu_length >= 1 && request->pdu_length <= 253);
    FUZZ_CHECK(request->pdu[0] >= 1 && request->pdu[0] <= 127);
    FUZZ_CHECK(request->role == NULL && request->tls == 0);
    FUZZ_CHECK(request->address.ss_family == AF_INET || request->address.ss_family == AF_INET6);
    FUZZ_CHECK(request->address_length > 0);
    size_t path_length = strlen(run->path);
    FUZZ_CHECK(strncmp(request->origin, run->path, path_length) == 0);
    FUZZ_CHECK(strncmp(request->origin + path_length, ": packet ", 9) == 0);
    unsigned long long packet = strtoull(request->origin + path_length + 9, NULL, 10);
    FUZZ_CHECK(packet >= 1 && packet <= run->packets_bound);
    uint8_t head[2] = {request->unit, (uint8_t)request->pdu_length};
    fuzz_log_append(&run->log, head, sizeof head);
    fuzz_log_append(&run->log, request->pdu, request->pdu_length);
    fuzz_log_append(&run->log, &request->address, (size_t)request->address_length);
    fuzz_log_append(&run->log, &request->time_us, sizeof request->time_us);
    run->count++;
    return run->stop_after != 0 && run->count == run->stop_after ? STOP_VALUE : 0;
}

static int read_once(const char *path, struct run *run, size_t size, struct capture_stats *stats) {
    struct capture_options options = {.max_streams = 8};
    char error[512];
    memset(error, 'x', sizeof error);
    run->path = path;
    /* A record takes at least 16 bytes of the file (pcapng more). */
    run->packets_bound = size / 16 + 1;
    int rc = capture_read(path, &options, visit, run, stats, error, sizeof error);
    if (rc == -1) {
        FUZZ_CHECK(fuzz_one_line(error, sizeof error));
        FUZZ_CHECK(strncmp(error, path, strlen(path)) == 0);
    } else {
        FUZZ_CHECK(rc == 0 || (rc == STOP_VALUE && run->stop_after != 0));
    }
    FUZZ_CHECK(stats->requests == run->count);
    FUZZ_CHECK(stats->packets == stats->modbus_packets + stats->other_packets);
    FUZZ_CHECK(stats->packets <= run->packets_bound);
    FUZZ_CHECK(stats->held_bytes_max <= CAPTURE_HELD_TOTAL);
    FUZZ_CHECK(stats->streams + stats->tls_streams >= stats->evicted);
    return rc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    static int fd = -1;
    static char path[64];
    if (fd < 0) {
        fd = memfd_create("fuzz-capture.pcap", MFD_CLOEXEC);
        FUZZ_CHECK(fd >= 0);
        snprintf(path, sizeof path, "/proc/self/fd/%d", fd);
    }
    FUZZ_CHECK(ftruncate(fd, 0) == 0);
    size_t written = 0;
    while (written < size) {
        ssize_t count = pwrite(fd, data + written, size - written, (off_t)written);
        FUZZ_CHECK(count > 0);
        written += (size_t)count;
    }

    struct run whole = {0};
    struct capture_stats stats;
    int rc = read_once(path, &whole, size, &stats);

    if (whole.count > 0) {
        struct run part = {0};
        part.stop_after = whole.count / 2 + 1;
        struct capture_stats part_stats;
        int part_rc = read_once(path, &part, size, &part_stats);
        FUZZ_CHECK(part.count == part.stop_after);
        FUZZ_CHECK(part_rc == STOP_VALUE);
        FUZZ_CHECK(part.log.length <= whole.log.length);
        FUZZ_CHECK(memcmp(part.log.bytes, whole.log.bytes, part.log.length) == 0);
        fuzz_log_free(&part.log);
    }
    (void)rc;
    fuzz_log_free(&whole.log);
    return 0;
}
