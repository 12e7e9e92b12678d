/* SPDX-License-Identifier: MIT */
/*
 * The audit spool (src/app/daemon/spool.h) on a real directory: order, acknowledgement,
 * persistence across a close and a crash (a record cut short, a lost cursor), segments that
 * come and go, the bound with its dropped count, damage found when reading, and a disk that
 * takes nothing more (a file size limit, in a child process).
 */
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "app/daemon/spool.h"
#include "harness.h"

static char directory[64];

static void fresh_directory(void) {
    snprintf(directory, sizeof directory, "/tmp/mbsec-spool-XXXXXX");
    CHECK(mkdtemp(directory) != NULL);
}

static void remove_directory(void) {
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", directory);
    CHECK_EQ(system(command), 0);
}

static struct spool *open_spool(uint64_t max_bytes) {
    struct spool *spool = NULL;
    char error[320] = "";
    int rc = spool_open(directory, max_bytes, &spool, error, sizeof error);
    CHECK_EQ(rc, 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n", error);
    return spool;
}

static void append_numbered(struct spool *spool, int first, int count, size_t size) {
    char record[2048];
    for (int i = first; i < first + count; i++) {
        memset(record, 'x', size);
        int length = snprintf(record, sizeof record, "record %d", i);
        record[length] = ' ';
        CHECK_EQ(spool_append(spool, record, size), 0);
    }
}

/* The number in the next record, acknowledged; -1 when the spool is empty. */
static int take(struct spool *spool) {
    const void *record;
    size_t length;
    if (spool_peek(spool, &record, &length) != 1)
        return -1;
    int number = -1;
    sscanf(record, "record %d", &number);
    spool_ack(spool);
    return number;
}

/* The number in a record. */
static int number_of(const void *record) {
    int number = -1;
    sscanf(record, "record %d", &number);
    return number;
}

TEST(read_ahead_hands_out_in_order_and_acknowledges_by_ticket) {
    fresh_directory();
    struct spool *spool = open_spool(1024 * 1024);
    append_numbered(spool, 0, 300, 100); /* more than one segment */
    const void *record;
    size_t length;
    uint64_t ticket = 99;
    for (int i = 0; i < 200; i++) {
        CHECK_EQ(spool_next(spool, &record, &length, &ticket), 1);
        CHECK_EQ(number_of(record), i);
        CHECK_EQ(ticket, (uint64_t)i);
    }
    spool_ack_through(spool, 149);
    CHECK_EQ(spool_head(spool), 150);
    /* A connection lost: what is in flight comes again, from the first unacknowledged. */
    spool_rewind(spool);
    CHECK_EQ(spool_next(spool, &record, &length, &ticket), 1);
    CHECK_EQ(number_of(record), 150);
    CHECK_EQ(ticket, 150);
    /* Acknowledging past what was handed out acknowledges only what was. */
    spool_ack_through(spool, 1000);
    CHECK_EQ(spool_head(spool), 151);
    for (int i = 151; i < 300; i++) {
        CHECK_EQ(spool_next(spool, &record, &length, &ticket), 1);
        CHECK_EQ(number_of(record), i);
    }
    CHECK_EQ(spool_next(spool, &record, &length, &ticket), 0);
    append_numbered(spool, 300, 1, 100);
    CHECK_EQ(spool_next(spool, &record, &length, &ticket), 1);
    CHECK_EQ(number_of(record), 300);
    spool_ack_through(spool, 250);
    spool_sync(spool);
    spool_close(spool);
    /* After a restart: from the first record not acknowledged. */
    spool = open_spool(1024 * 1024);
    CHECK_EQ(take(spool), 251);
    struct spool_stats stats;
    spool_stats(spool, &stats);
    CHECK_EQ(stats.queued, 49); /* 252..300 */
    spool_close(spool);
    remove_directory();
}

TEST(records_dropped_while_in_flight_make_their_tickets_stale) {
    fresh_directory();
    struct spool *spool = open_spool(64 * 1024);
    append_numbered(spool, 0, 20, 1000);
    const void *record;
    size_t length;
    uint64_t ticket, first = 0;
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(spool_next(spool, &record, &length, &ticket), 1);
        if (i == 0)
            first = ticket;
    }
    /* Enough to drop the oldest segments, those in flight among them. */
    append_numbered(spool, 20, 60, 1000);
    struct spool_stats stats;
    spool_stats(spool, &stats);
    CHECK(stats.dropped > 10);
    uint64_t head = spool_head(spool);
    CHECK(head > first + 9);
    /* The late acknowledgement of a dropped record acknowledges nothing that is left. */
    spool_ack_through(spool, first + 9);
    CHECK_EQ(spool_head(spool), head);
    CHECK_EQ(spool_take_dropped(spool), head);
    /* The first record left comes next, with the head's ticket. */
    CHECK_EQ(spool_next(spool, &record, &length, &ticket), 1);
    CHECK_EQ(ticket, head);
    CHECK_EQ(number_of(record), (int)head);
    spool_close(spool);
    remove_directory();
}

TEST(records_larger_than_the_buffers_and_a_mix_of_sizes_come_back_whole) {
    fresh_directory();
    struct spool *spool = open_spool(8 * 1024 * 1024);
    static uint8_t big[600 * 1024];
    for (size_t i = 0; i < sizeof big; i++)
        big[i] = (uint8_t)(i * 7);
    char small[64];
    for (int round = 0; round < 3; round++) {
        int length = snprintf(small, sizeof small, "record %d", round);
        CHECK_EQ(spool_append(spool, small, (size_t)length + 1), 0); /* with its NUL */
        big[0] = (uint8_t)round;
        CHECK_EQ(spool_append(spool, big, sizeof big), 0);
    }
    const void *record;
    size_t length;
    uint64_t ticket;
    for (int round = 0; round < 3; round++) {
        CHECK_EQ(spool_next(spool, &record, &length, &ticket), 1);
        CHECK_EQ(number_of(record), round);
        CHECK_EQ(spool_next(spool, &record, &length, &ticket), 1);
        CHECK_EQ(length, sizeof big);
        CHECK_EQ(((const uint8_t *)record)[0], round);
        CHECK(memcmp((const uint8_t *)record + 1, big + 1, sizeof big - 1) == 0);
    }
    CHECK_EQ(spool_next(spool, &record, &length, &ticket), 0);
    spool_ack_through(spool, ticket);
    struct spool_stats stats;
    spool_stats(spool, &stats);
    CHECK_EQ(stats.queued, 0);
    CHECK_EQ(stats.acked, 6);
    spool_close(spool);
    remove_directory();
}

TEST(a_record_on_disk_is_its_length_its_crc32_and_its_bytes) {
    fresh_directory();
    struct spool *spool = open_spool(1024 * 1024);
    /* The check value of CRC-32 (IEEE): "123456789" sums to CBF43926; and a longer record,
     * against the bit-by-bit definition. */
    CHECK_EQ(spool_append(spool, "123456789", 9), 0);
    static uint8_t longer[1000];
    for (size_t i = 0; i < sizeof longer; i++)
        longer[i] = (uint8_t)(i * 31 + 7);
    CHECK_EQ(spool_append(spool, longer, sizeof longer), 0);
    CHECK_EQ(spool_sync(spool), 0);
    uint32_t want = 0xFFFFFFFFu;
    for (size_t i = 0; i < sizeof longer; i++) {
        want ^= longer[i];
        for (int bit = 0; bit < 8; bit++)
            want = (want >> 1) ^ (0xEDB88320u & (0u - (want & 1u)));
    }
    want = ~want;
    char path[160];
    snprintf(path, sizeof path, "%s/segment-0000000000000001.spool", directory);
    FILE *file = fopen(path, "rb");
    uint8_t bytes[8 + 9 + 8];
    CHECK(file != NULL && fread(bytes, 1, sizeof bytes, file) == sizeof bytes);
    if (file != NULL)
        fclose(file);
    CHECK_EQ(bytes[0] | bytes[1] << 8, 9);
    CHECK_EQ((uint32_t)bytes[4] | (uint32_t)bytes[5] << 8 | (uint32_t)bytes[6] << 16 |
                 (uint32_t)bytes[7] << 24,
             0xCBF43926u);
    CHECK(memcmp(bytes + 8, "123456789", 9) == 0);
    uint32_t got = 0;
    file = fopen(path, "rb");
    uint8_t header[8];
    CHECK(file != NULL && fseek(file, 17, SEEK_SET) == 0 && fread(header, 1, 8, file) == 8);
    if (file != NULL)
        fclose(file);
    got = (uint32_t)header[4] | (uint32_t)header[5] << 8 | (uint32_t)header[6] << 16 |
          (uint32_t)header[7] << 24;
    CHECK_EQ(got, want);
    spool_close(spool);
    remove_directory();
}

TEST(records_come_back_in_order_and_once_acknowledged_are_gone) {
    fresh_directory();
    struct spool *spool = open_spool(1024 * 1024);
    append_numbered(spool, 0, 100, 100);
    const void *record;
    size_t length;
    CHECK_EQ(spool_peek(spool, &record, &length), 1);
    CHECK_EQ(length, 100);
    CHECK(memcmp(record, "record 0 ", 9) == 0);
    /* Not acknowledged: the same record again. */
    CHECK_EQ(spool_peek(spool, &record, &length), 1);
    CHECK(memcmp(record, "record 0 ", 9) == 0);
    for (int i = 0; i < 100; i++)
        CHECK_EQ(take(spool), i);
    CHECK_EQ(take(spool), -1);
    struct spool_stats stats;
    spool_stats(spool, &stats);
    CHECK_EQ(stats.appended, 100);
    CHECK_EQ(stats.acked, 100);
    CHECK_EQ(stats.queued, 0);
    CHECK_EQ(stats.dropped, 0);
    spool_close(spool);
    remove_directory();
}

TEST(what_was_not_acknowledged_survives_a_restart_and_what_was_does_not) {
    fresh_directory();
    struct spool *spool = open_spool(1024 * 1024);
    append_numbered(spool, 0, 50, 200);
    for (int i = 0; i < 20; i++)
        CHECK_EQ(take(spool), i);
    CHECK_EQ(spool_sync(spool), 0);
    spool_close(spool);
    spool = open_spool(1024 * 1024);
    struct spool_stats stats;
    spool_stats(spool, &stats);
    CHECK_EQ(stats.queued, 30);
    append_numbered(spool, 50, 10, 200);
    for (int i = 20; i < 60; i++)
        CHECK_EQ(take(spool), i);
    CHECK_EQ(take(spool), -1);
    spool_close(spool);
    remove_directory();
}

TEST(many_segments_come_and_go_and_the_bound_drops_the_oldest_counted) {
    fresh_directory();
    /* 64 KiB: segments of 16 KiB; 1000-byte records. */
    struct spool *spool = open_spool(64 * 1024);
    append_numbered(spool, 0, 40, 1000);
    struct spool_stats stats;
    spool_stats(spool, &stats);
    CHECK(stats.segments >= 3);
    CHECK_EQ(stats.dropped, 0);
    CHECK(stats.bytes <= 64 * 1024);
    /* Past the bound: the oldest go, whole segments of them, and are counted. */
    append_numbered(spool, 40, 60, 1000);
    spool_stats(spool, &stats);
    CHECK(stats.bytes <= 64 * 1024);
    CHECK(stats.dropped > 0);
    CHECK_EQ(stats.dropped + stats.queued, 100);
    CHECK_EQ(spool_take_dropped(spool), stats.dropped);
    CHECK_EQ(spool_take_dropped(spool), 0);
    /* What is left is the newest, in order, ending with 99. */
    int first = take(spool), last = first, next;
    CHECK_EQ(first, (int)stats.dropped);
    while ((next = take(spool)) >= 0) {
        CHECK_EQ(next, last + 1);
        last = next;
    }
    CHECK_EQ(last, 99);
    spool_stats(spool, &stats);
    CHECK_EQ(stats.segments, 1); /* the acknowledged ones deleted */
    spool_close(spool);
    remove_directory();
}

TEST(a_record_cut_short_by_a_crash_is_dropped_and_the_rest_kept) {
    fresh_directory();
    struct spool *spool = open_spool(1024 * 1024);
    append_numbered(spool, 0, 10, 300);
    spool_sync(spool);
    spool_close(spool);
    /* A crash in the middle of a record: the newest segment ends with half of one. */
    char command[256];
    snprintf(command, sizeof command,
             "f=$(ls '%s'/segment-*.spool | tail -n 1); printf '\\x2c\\x01\\x00\\x00abcd' >>\"$f\"",
             directory);
    CHECK_EQ(system(command), 0);
    spool = open_spool(1024 * 1024);
    struct spool_stats stats;
    spool_stats(spool, &stats);
    CHECK_EQ(stats.queued, 10);
    CHECK_EQ(stats.damaged, 1);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(take(spool), i);
    CHECK_EQ(take(spool), -1);
    spool_close(spool);
    /* A damaged cursor: everything not yet deleted is sent again (at least once). */
    spool = open_spool(1024 * 1024);
    append_numbered(spool, 10, 5, 300);
    CHECK_EQ(take(spool), 10);
    spool_sync(spool);
    spool_close(spool);
    snprintf(command, sizeof command, "printf 'garbage' >'%s/cursor'", directory);
    CHECK_EQ(system(command), 0);
    spool = open_spool(1024 * 1024);
    CHECK_EQ(take(spool), 10);
    spool_close(spool);
    remove_directory();
}

TEST(a_record_damaged_on_disk_is_skipped_with_the_rest_of_its_segment) {
    fresh_directory();
    struct spool *spool = open_spool(64 * 1024);
    append_numbered(spool, 0, 40, 1000); /* several segments */
    spool_sync(spool);
    /* Flip a byte in the oldest segment's second record. */
    char command[256];
    snprintf(command, sizeof command,
             "f=$(ls '%s'/segment-*.spool | head -n 1); printf 'Z' | dd of=\"$f\" bs=1 "
             "seek=1100 conv=notrunc status=none",
             directory);
    CHECK_EQ(system(command), 0);
    CHECK_EQ(take(spool), 0);
    int next = take(spool);
    CHECK(next > 1); /* record 1 and the rest of its segment skipped */
    struct spool_stats stats;
    spool_stats(spool, &stats);
    CHECK(stats.damaged >= 1);
    spool_close(spool);
    remove_directory();
}

TEST(a_disk_that_takes_nothing_more_loses_the_record_counted_and_nothing_else) {
    fresh_directory();
    pid_t child = fork();
    if (child == 0) {
        /* A file size limit stands in for a full disk: writes past it fail (EFBIG). */
        signal(SIGXFSZ, SIG_IGN);
        struct spool *spool = NULL;
        char error[320];
        if (spool_open(directory, 1024 * 1024, &spool, error, sizeof error) != 0)
            _exit(10);
        struct rlimit limit = {.rlim_cur = 4096, .rlim_max = RLIM_INFINITY};
        setrlimit(RLIMIT_FSIZE, &limit);
        char record[1000];
        memset(record, 'y', sizeof record);
        int failed = 0;
        for (int i = 0; i < 10; i++)
            if (spool_append(spool, record, sizeof record) != 0)
                failed++;
        /* Appends wait in memory: the sync writes them and finds the disk full. */
        if (spool_sync(spool) == 0)
            _exit(13);
        struct spool_stats stats;
        spool_stats(spool, &stats);
        int written = 10 - (int)stats.lost;
        if (written == 0 || stats.lost == 0 || stats.lost < (uint64_t)failed ||
            stats.queued != (uint64_t)written ||
            strstr(spool_error(spool), "cannot write a record") == NULL)
            _exit(11);
        /* What was written is intact. */
        for (int i = 0; i < written; i++) {
            const void *got;
            size_t length;
            if (spool_peek(spool, &got, &length) != 1 || length != sizeof record)
                _exit(12);
            spool_ack(spool);
        }
        spool_close(spool);
        _exit(0);
    }
    int status = 0;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    remove_directory();
}

TEST(bad_arguments_and_a_directory_that_cannot_be_made_are_refused) {
    struct spool *spool = NULL;
    char error[320] = "";
    CHECK_EQ(spool_open("/proc/mbsec-no/spool", 1024 * 1024, &spool, error, sizeof error), -1);
    CHECK(strstr(error, "cannot create it") != NULL);
    CHECK_EQ(spool_open("/tmp", 1000, &spool, error, sizeof error), -1);
    fresh_directory();
    spool = open_spool(64 * 1024);
    CHECK_EQ(spool_append(spool, "", 0), -1);
    static char huge[40 * 1024];
    CHECK_EQ(spool_append(spool, huge, sizeof huge), -1); /* over half the spool */
    struct spool_stats stats;
    spool_stats(spool, &stats);
    CHECK_EQ(stats.lost, 2);
    spool_close(spool);
    remove_directory();
}

int main(void) {
    RUN(records_come_back_in_order_and_once_acknowledged_are_gone);
    RUN(what_was_not_acknowledged_survives_a_restart_and_what_was_does_not);
    RUN(many_segments_come_and_go_and_the_bound_drops_the_oldest_counted);
    RUN(a_record_cut_short_by_a_crash_is_dropped_and_the_rest_kept);
    RUN(a_record_damaged_on_disk_is_skipped_with_the_rest_of_its_segment);
    RUN(a_disk_that_takes_nothing_more_loses_the_record_counted_and_nothing_else);
    RUN(bad_arguments_and_a_directory_that_cannot_be_made_are_refused);
    RUN(read_ahead_hands_out_in_order_and_acknowledges_by_ticket);
    RUN(records_dropped_while_in_flight_make_their_tickets_stale);
    RUN(records_larger_than_the_buffers_and_a_mix_of_sizes_come_back_whole);
    RUN(a_record_on_disk_is_its_length_its_crc32_and_its_bytes);
    return harness_result();
}
