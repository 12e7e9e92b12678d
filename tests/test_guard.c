/* SPDX-License-Identifier: MIT */
/* The gateway's guard (src/tools/guard.c): token buckets per connection and alert counts per
 * source address within a window, driven by a clock the test sets. */
#include <stdio.h>
#include <string.h>

#include "harness.h"
#include "tools/guard.h"

static const struct mb_guard_settings settings = {
    .rate = 10,
    .burst = 3,
    .window_ms = 1000,
    .scan_units = 4,
    .denials = 3,
    .malformed = 2,
    .rate_limited = 5,
    .refused = 2,
};

TEST(a_connection_gets_its_burst_at_once_then_the_rate) {
    struct mb_guard *guard;
    CHECK_EQ(mb_guard_create(&settings, &guard), 0);
    struct mb_guard_client *client = mb_guard_open(guard, 7, "192.0.2.1:5000", "0.0.0.0:502", 0);
    CHECK(client != NULL);
    CHECK(mb_guard_find(guard, 7) == client);
    /* Three at once (the burst), then none until tokens come back: 10/s is one per 100 ms. */
    CHECK_EQ(mb_guard_admit(guard, client, 0), 1);
    CHECK_EQ(mb_guard_admit(guard, client, 0), 1);
    CHECK_EQ(mb_guard_admit(guard, client, 0), 1);
    CHECK_EQ(mb_guard_admit(guard, client, 0), 0);
    CHECK_EQ(mb_guard_admit(guard, client, 99), 0);
    CHECK_EQ(mb_guard_admit(guard, client, 100), 1);
    CHECK_EQ(mb_guard_admit(guard, client, 100), 0);
    /* A long pause refills up to the burst, not beyond. */
    int admitted = 0;
    for (int i = 0; i < 10; i++)
        admitted += mb_guard_admit(guard, client, 60000);
    CHECK_EQ(admitted, 3);
    /* Another connection from the same address has its own bucket. */
    struct mb_guard_client *other = mb_guard_open(guard, 8, "192.0.2.1:5001", "0.0.0.0:502", 0);
    CHECK_EQ(mb_guard_admit(guard, other, 60000), 1);
    mb_guard_close(guard, 7);
    CHECK(mb_guard_find(guard, 7) == NULL);
    CHECK(mb_guard_find(guard, 8) == other);
    mb_guard_destroy(guard);
}

TEST(without_a_rate_everything_is_admitted_and_a_reload_cuts_the_bucket) {
    struct mb_guard_settings open = settings;
    open.rate = 0;
    struct mb_guard *guard;
    CHECK_EQ(mb_guard_create(&open, &guard), 0);
    struct mb_guard_client *client = mb_guard_open(guard, 1, "10.0.0.1:1", "", 0);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(mb_guard_admit(guard, client, 0), 1);
    struct mb_guard_settings strict = settings;
    strict.rate = 1;
    strict.burst = 1;
    mb_guard_configure(guard, &strict);
    client->tokens_milli = 1000;
    CHECK_EQ(mb_guard_admit(guard, client, 0), 1);
    CHECK_EQ(mb_guard_admit(guard, client, 1), 0);
    CHECK_EQ(mb_guard_admit(guard, client, 1000), 1);
    mb_guard_destroy(guard);
}

TEST(a_unit_id_scan_alerts_once_per_window_on_distinct_units) {
    struct mb_guard *guard;
    uint32_t count;
    CHECK_EQ(mb_guard_create(&settings, &guard), 0);
    /* The same unit again and again is no scan. */
    for (int i = 0; i < 20; i++)
        CHECK_EQ(mb_guard_note(guard, "192.0.2.9:40000", MB_GUARD_UNIT, 1, 10, &count), 0);
    CHECK_EQ(count, 1);
    CHECK_EQ(mb_guard_note(guard, "192.0.2.9:40001", MB_GUARD_UNIT, 2, 20, &count), 0);
    CHECK_EQ(mb_guard_note(guard, "192.0.2.9:40002", MB_GUARD_UNIT, 3, 30, &count), 0);
    /* The fourth distinct unit from one address, over several connections: the alert. */
    CHECK_EQ(mb_guard_note(guard, "192.0.2.9:40003", MB_GUARD_UNIT, 4, 40, &count), 1);
    CHECK_EQ(count, 4);
    CHECK_EQ(mb_guard_note(guard, "192.0.2.9:40003", MB_GUARD_UNIT, 5, 50, &count), 0);
    /* Another address has its own count. */
    CHECK_EQ(mb_guard_note(guard, "192.0.2.10:1", MB_GUARD_UNIT, 5, 50, &count), 0);
    CHECK_EQ(count, 1);
    /* A new window starts over. */
    for (int unit = 10; unit < 13; unit++)
        CHECK_EQ(mb_guard_note(guard, "192.0.2.9:1", MB_GUARD_UNIT, (uint8_t)unit, 1100, NULL), 0);
    CHECK_EQ(mb_guard_note(guard, "192.0.2.9:1", MB_GUARD_UNIT, 13, 1100, &count), 1);
    mb_guard_destroy(guard);
}

TEST(denials_malformed_frames_and_floods_have_their_own_thresholds) {
    struct mb_guard *guard;
    CHECK_EQ(mb_guard_create(&settings, &guard), 0);
    const char *peer = "[2001:db8::1]:502";
    CHECK_EQ(mb_guard_note(guard, peer, MB_GUARD_DENIAL, 0, 0, NULL), 0);
    CHECK_EQ(mb_guard_note(guard, peer, MB_GUARD_MALFORMED, 0, 0, NULL), 0);
    CHECK_EQ(mb_guard_note(guard, peer, MB_GUARD_DENIAL, 0, 0, NULL), 0);
    CHECK_EQ(mb_guard_note(guard, peer, MB_GUARD_MALFORMED, 0, 0, NULL), 1);
    CHECK_EQ(mb_guard_note(guard, peer, MB_GUARD_DENIAL, 0, 0, NULL), 1);
    CHECK_EQ(mb_guard_note(guard, peer, MB_GUARD_DENIAL, 0, 0, NULL), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(mb_guard_note(guard, peer, MB_GUARD_RATE_LIMITED, 0, 0, NULL), 0);
    CHECK_EQ(mb_guard_note(guard, peer, MB_GUARD_RATE_LIMITED, 0, 0, NULL), 1);
    CHECK_EQ(mb_guard_note(guard, "2001:db8::1", MB_GUARD_REFUSED, 0, 0, NULL), 0);
    CHECK_EQ(mb_guard_note(guard, "[2001:db8::1]:9", MB_GUARD_REFUSED, 0, 0, NULL), 1);
    CHECK_EQ(mb_guard_note(guard, peer, (enum mb_guard_event)99, 0, 0, NULL), 0);
    mb_guard_destroy(guard);
}

TEST(the_source_is_the_host_part_of_the_peer) {
    char host[64];
    mb_guard_source_of("192.0.2.1:502", host, sizeof host);
    CHECK_STR(host, "192.0.2.1");
    mb_guard_source_of("[::1]:40000", host, sizeof host);
    CHECK_STR(host, "::1");
    mb_guard_source_of("::1", host, sizeof host);
    CHECK_STR(host, "::1");
    mb_guard_source_of("10.1.1.1", host, sizeof host);
    CHECK_STR(host, "10.1.1.1");
    mb_guard_source_of("", host, sizeof host);
    CHECK_STR(host, "");
}

TEST(sources_beyond_the_cap_are_counted_as_untracked_until_windows_pass) {
    struct mb_guard *guard;
    CHECK_EQ(mb_guard_create(&settings, &guard), 0);
    char peer[64];
    for (int i = 0; i < MB_GUARD_MAX_SOURCES; i++) {
        snprintf(peer, sizeof peer, "10.%d.%d.1:1", i >> 8, i & 255);
        mb_guard_note(guard, peer, MB_GUARD_DENIAL, 0, 0, NULL);
    }
    CHECK_EQ(mb_guard_untracked(guard), 0);
    CHECK_EQ(mb_guard_note(guard, "192.0.2.77:1", MB_GUARD_DENIAL, 0, 10, NULL), 0);
    CHECK_EQ(mb_guard_untracked(guard), 1);
    /* Once the old windows have passed, their entries make room. */
    uint32_t count;
    mb_guard_note(guard, "192.0.2.77:1", MB_GUARD_DENIAL, 0, 5000, &count);
    CHECK_EQ(count, 1);
    CHECK_EQ(mb_guard_untracked(guard), 1);
    mb_guard_destroy(guard);
}

int main(void) {
    RUN(a_connection_gets_its_burst_at_once_then_the_rate);
    RUN(without_a_rate_everything_is_admitted_and_a_reload_cuts_the_bucket);
    RUN(a_unit_id_scan_alerts_once_per_window_on_distinct_units);
    RUN(denials_malformed_frames_and_floods_have_their_own_thresholds);
    RUN(the_source_is_the_host_part_of_the_peer);
    RUN(sources_beyond_the_cap_are_counted_as_untracked_until_windows_pass);
    return harness_result();
}
