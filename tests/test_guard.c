/* SPDX-License-Identifier: MIT */
/* The gateway's guard (src/app/daemon/ratelimit.c): token buckets per connection, alert counts per
 * source within a window, and refusals summed up per source and window, driven by a clock the test
 * sets. Sources are what the server made of the peer's address (struct mb_peer, source). */
#include <stdio.h>
#include <string.h>

#include "app/daemon/ratelimit.h"
#include "harness.h"

static const struct ratelimit_settings settings = {
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
    struct ratelimit *guard;
    CHECK_EQ(ratelimit_create(&settings, &guard), 0);
    struct ratelimit_client *client =
        ratelimit_open(guard, 7, "192.0.2.1:5000", "192.0.2.1", "0.0.0.0:502", 0);
    CHECK(client != NULL);
    CHECK(ratelimit_find(guard, 7) == client);
    CHECK_STR(client->source, "192.0.2.1");
    /* Three at once (the burst), then none until tokens come back: 10/s is one per 100 ms. */
    CHECK_EQ(ratelimit_admit(guard, client, 0), 1);
    CHECK_EQ(ratelimit_admit(guard, client, 0), 1);
    CHECK_EQ(ratelimit_admit(guard, client, 0), 1);
    CHECK_EQ(ratelimit_admit(guard, client, 0), 0);
    CHECK_EQ(ratelimit_admit(guard, client, 99), 0);
    CHECK_EQ(ratelimit_admit(guard, client, 100), 1);
    CHECK_EQ(ratelimit_admit(guard, client, 100), 0);
    /* A long pause refills up to the burst, not beyond. */
    int admitted = 0;
    for (int i = 0; i < 10; i++)
        admitted += ratelimit_admit(guard, client, 60000);
    CHECK_EQ(admitted, 3);
    /* Another connection from the same address has its own bucket. */
    struct ratelimit_client *other =
        ratelimit_open(guard, 8, "192.0.2.1:5001", "192.0.2.1", "0.0.0.0:502", 0);
    CHECK_EQ(ratelimit_admit(guard, other, 60000), 1);
    ratelimit_close(guard, 7);
    CHECK(ratelimit_find(guard, 7) == NULL);
    CHECK(ratelimit_find(guard, 8) == other);
    ratelimit_destroy(guard);
}

TEST(without_a_rate_everything_is_admitted_and_a_reload_cuts_the_bucket) {
    struct ratelimit_settings open = settings;
    open.rate = 0;
    struct ratelimit *guard;
    CHECK_EQ(ratelimit_create(&open, &guard), 0);
    struct ratelimit_client *client = ratelimit_open(guard, 1, "10.0.0.1:1", "10.0.0.1", "", 0);
    for (int i = 0; i < 1000; i++)
        CHECK_EQ(ratelimit_admit(guard, client, 0), 1);
    struct ratelimit_settings strict = settings;
    strict.rate = 1;
    strict.burst = 1;
    ratelimit_configure(guard, &strict);
    client->tokens_milli = 1000;
    CHECK_EQ(ratelimit_admit(guard, client, 0), 1);
    CHECK_EQ(ratelimit_admit(guard, client, 1), 0);
    CHECK_EQ(ratelimit_admit(guard, client, 1000), 1);
    ratelimit_destroy(guard);
}

TEST(a_unit_id_scan_alerts_once_per_window_on_distinct_units) {
    struct ratelimit *guard;
    uint32_t count;
    CHECK_EQ(ratelimit_create(&settings, &guard), 0);
    /* The same unit again and again is no scan. */
    for (int i = 0; i < 20; i++)
        CHECK_EQ(ratelimit_note(guard, "192.0.2.9", RATELIMIT_UNIT, 1, 10, &count), 0);
    CHECK_EQ(count, 1);
    CHECK_EQ(ratelimit_note(guard, "192.0.2.9", RATELIMIT_UNIT, 2, 20, &count), 0);
    CHECK_EQ(ratelimit_note(guard, "192.0.2.9", RATELIMIT_UNIT, 3, 30, &count), 0);
    /* The fourth distinct unit from one source, over several connections: the alert. */
    CHECK_EQ(ratelimit_note(guard, "192.0.2.9", RATELIMIT_UNIT, 4, 40, &count), 1);
    CHECK_EQ(count, 4);
    CHECK_EQ(ratelimit_note(guard, "192.0.2.9", RATELIMIT_UNIT, 5, 50, &count), 0);
    /* Another source has its own count. */
    CHECK_EQ(ratelimit_note(guard, "192.0.2.10", RATELIMIT_UNIT, 5, 50, &count), 0);
    CHECK_EQ(count, 1);
    /* A new window starts over. */
    for (int unit = 10; unit < 13; unit++)
        CHECK_EQ(ratelimit_note(guard, "192.0.2.9", RATELIMIT_UNIT, (uint8_t)unit, 1100, NULL), 0);
    CHECK_EQ(ratelimit_note(guard, "192.0.2.9", RATELIMIT_UNIT, 13, 1100, &count), 1);
    ratelimit_destroy(guard);
}

TEST(denials_malformed_frames_and_floods_have_their_own_thresholds) {
    struct ratelimit *guard;
    CHECK_EQ(ratelimit_create(&settings, &guard), 0);
    const char *peer = "2001:db8::/64";
    CHECK_EQ(ratelimit_note(guard, peer, RATELIMIT_DENIAL, 0, 0, NULL), 0);
    CHECK_EQ(ratelimit_note(guard, peer, RATELIMIT_MALFORMED, 0, 0, NULL), 0);
    CHECK_EQ(ratelimit_note(guard, peer, RATELIMIT_DENIAL, 0, 0, NULL), 0);
    CHECK_EQ(ratelimit_note(guard, peer, RATELIMIT_MALFORMED, 0, 0, NULL), 1);
    CHECK_EQ(ratelimit_note(guard, peer, RATELIMIT_DENIAL, 0, 0, NULL), 1);
    CHECK_EQ(ratelimit_note(guard, peer, RATELIMIT_DENIAL, 0, 0, NULL), 0);
    for (int i = 0; i < 4; i++)
        CHECK_EQ(ratelimit_note(guard, peer, RATELIMIT_RATE_LIMITED, 0, 0, NULL), 0);
    CHECK_EQ(ratelimit_note(guard, peer, RATELIMIT_RATE_LIMITED, 0, 0, NULL), 1);
    CHECK_EQ(ratelimit_note(guard, peer, RATELIMIT_REFUSED, 0, 0, NULL), 0);
    CHECK_EQ(ratelimit_note(guard, peer, RATELIMIT_REFUSED, 0, 0, NULL), 1);
    CHECK_EQ(ratelimit_note(guard, peer, (enum ratelimit_event)99, 0, 0, NULL), 0);
    ratelimit_destroy(guard);
}

TEST(the_source_is_the_host_part_of_the_peer) {
    char host[64];
    ratelimit_source_of("192.0.2.1:502", host, sizeof host);
    CHECK_STR(host, "192.0.2.1");
    ratelimit_source_of("[::1]:40000", host, sizeof host);
    CHECK_STR(host, "::1");
    ratelimit_source_of("::1", host, sizeof host);
    CHECK_STR(host, "::1");
    ratelimit_source_of("10.1.1.1", host, sizeof host);
    CHECK_STR(host, "10.1.1.1");
    ratelimit_source_of("", host, sizeof host);
    CHECK_STR(host, "");
}

TEST(sources_beyond_the_cap_are_counted_as_untracked_until_windows_pass) {
    struct ratelimit *guard;
    CHECK_EQ(ratelimit_create(&settings, &guard), 0);
    char peer[64];
    for (int i = 0; i < RATELIMIT_MAX_SOURCES; i++) {
        snprintf(peer, sizeof peer, "10.%d.%d.1", i >> 8, i & 255);
        ratelimit_note(guard, peer, RATELIMIT_DENIAL, 0, 0, NULL);
    }
    CHECK_EQ(ratelimit_untracked(guard), 0);
    CHECK_EQ(ratelimit_note(guard, "192.0.2.77", RATELIMIT_DENIAL, 0, 10, NULL), 0);
    CHECK_EQ(ratelimit_untracked(guard), 1);
    /* Once the old windows have passed, their entries make room. */
    uint32_t count;
    ratelimit_note(guard, "192.0.2.77", RATELIMIT_DENIAL, 0, 5000, &count);
    CHECK_EQ(count, 1);
    CHECK_EQ(ratelimit_untracked(guard), 1);
    ratelimit_destroy(guard);
}

/* A request's counts go through its connection's context, to the same source entry that
 * counting by text finds; a connection's source is never swept while it is open. */
TEST(a_connection_counts_for_its_source_and_holds_it_while_open) {
    struct ratelimit *guard;
    CHECK_EQ(ratelimit_create(&settings, &guard), 0);
    struct ratelimit_client *client =
        ratelimit_open(guard, 7, "192.0.2.9:40000", "192.0.2.9", "0.0.0.0:502", 0);
    CHECK(client != NULL && client->source_entry != NULL);
    uint32_t count;
    for (uint32_t i = 1; i < settings.denials; i++) {
        CHECK_EQ(ratelimit_note_client(guard, client, RATELIMIT_DENIAL, 0, 10, &count), 0);
        CHECK_EQ(count, i);
    }
    /* By text, the same entry: the threshold is reached with this one. */
    CHECK_EQ(ratelimit_note(guard, "192.0.2.9", RATELIMIT_DENIAL, 0, 10, &count), 1);
    CHECK_EQ(count, settings.denials);

    /* Every other entry is taken and every window passed: the sweep frees all but the held
     * one, whose window starts again. */
    char peer[64];
    for (int i = 0; i < RATELIMIT_MAX_SOURCES; i++) {
        snprintf(peer, sizeof peer, "10.%d.%d.1", i >> 8, i & 255);
        ratelimit_note(guard, peer, RATELIMIT_DENIAL, 0, 20, NULL);
    }
    CHECK_EQ(ratelimit_note(guard, "198.51.100.1", RATELIMIT_DENIAL, 0, 60000, &count), 0);
    CHECK_EQ(count, 1);
    CHECK_EQ(ratelimit_note_client(guard, client, RATELIMIT_DENIAL, 0, 60000, &count), 0);
    CHECK_EQ(count, 1);
    CHECK(client->source_entry != NULL);

    /* Closed, the entry is the table's again; a NULL client counts for "". */
    ratelimit_close(guard, 7);
    CHECK_EQ(ratelimit_note_client(guard, NULL, RATELIMIT_UNIT, 3, 60000, &count), 0);
    CHECK_EQ(count, 1);
    ratelimit_destroy(guard);
}

/* What ratelimit_refusal_summaries() handed out. */
static struct ratelimit_refusals summaries[8];
static int summary_count;

static void collect(void *data, const struct ratelimit_refusals *summary) {
    (void)data;
    if (summary_count < 8)
        summaries[summary_count] = *summary;
    summary_count++;
}

/* Finding 5 of the review: a burst of 2,000 connections left 11 records, because refusals were
 * counted from log lines limited to 10 a second for all sources together. */
TEST(refusals_are_counted_per_source_the_first_recorded_the_rest_summed_up_per_window) {
    struct ratelimit_settings lenient = settings;
    lenient.refused = 100;
    struct ratelimit *guard;
    int alert;
    uint32_t count;
    CHECK_EQ(ratelimit_create(&lenient, &guard), 0);
    /* A noisy source: 2,000 refusals within the window; the first is recorded at once. */
    CHECK_EQ(ratelimit_refused(guard, "192.0.2.66", "max_per_source (64) reached", 10, 500000,
                               &alert, &count),
             1);
    CHECK_EQ(alert, 0);
    int alerts = 0;
    for (int i = 1; i < 2000; i++) {
        CHECK_EQ(ratelimit_refused(guard, "192.0.2.66", "max_per_source (64) reached", 10 + i / 10,
                                   500000 + (uint64_t)i, &alert, &count),
                 0);
        alerts += alert;
    }
    CHECK_EQ(count, 2000);
    CHECK_EQ(alerts, 1); /* at the 100th, once per window */
    /* A quiet source in the same window is not hidden: its own first record, its own count. */
    CHECK_EQ(ratelimit_refused(guard, "2001:db8:7::/64", "max_connections (1024) reached", 300,
                               500300, &alert, &count),
             1);
    CHECK_EQ(ratelimit_refused(guard, "2001:db8:7::/64", "max_connections (1024) reached", 400,
                               500400, &alert, &count),
             0);
    CHECK_EQ(count, 2);
    /* Nothing is handed out while the windows are open. */
    summary_count = 0;
    ratelimit_refusal_summaries(guard, 900, 0, collect, NULL);
    CHECK_EQ(summary_count, 0);
    /* Once they end: one summary each, with what was not recorded on its own. */
    ratelimit_refusal_summaries(guard, 1400, 0, collect, NULL);
    CHECK_EQ(summary_count, 2);
    int noisy = strcmp(summaries[0].source, "192.0.2.66") == 0 ? 0 : 1;
    CHECK_STR(summaries[noisy].source, "192.0.2.66");
    CHECK_EQ(summaries[noisy].count, 1999);
    CHECK_EQ(summaries[noisy].first_ms, 500001);
    CHECK_EQ(summaries[noisy].last_ms, 501999);
    CHECK_STR(summaries[noisy].reason, "max_per_source (64) reached");
    CHECK_STR(summaries[1 - noisy].source, "2001:db8:7::/64");
    CHECK_EQ(summaries[1 - noisy].count, 1);
    /* Handed out once only. */
    summary_count = 0;
    ratelimit_refusal_summaries(guard, 5000, 1, collect, NULL);
    CHECK_EQ(summary_count, 0);
    ratelimit_destroy(guard);
}

TEST(a_window_that_ends_by_a_new_refusal_keeps_its_summary_for_later) {
    struct ratelimit *guard;
    int alert;
    CHECK_EQ(ratelimit_create(&settings, &guard), 0);
    CHECK_EQ(ratelimit_refused(guard, "198.51.100.1", "r", 0, 1000, &alert, NULL), 1);
    CHECK_EQ(ratelimit_refused(guard, "198.51.100.1", "r", 10, 1010, &alert, NULL), 0);
    CHECK_EQ(ratelimit_refused(guard, "198.51.100.1", "r", 20, 1020, &alert, NULL), 0);
    /* The next window starts with a refusal of its own, recorded at once. */
    CHECK_EQ(ratelimit_refused(guard, "198.51.100.1", "r", 1500, 2500, &alert, NULL), 1);
    CHECK_EQ(ratelimit_refused(guard, "198.51.100.1", "r", 1510, 2510, &alert, NULL), 0);
    summary_count = 0;
    ratelimit_refusal_summaries(guard, 1600, 0, collect, NULL);
    CHECK_EQ(summary_count, 1);
    CHECK_EQ(summaries[0].count, 2);
    CHECK_EQ(summaries[0].last_ms, 1020);
    /* At shutdown the open window's summary goes too. */
    ratelimit_refusal_summaries(guard, 1600, 1, collect, NULL);
    CHECK_EQ(summary_count, 2);
    CHECK_EQ(summaries[1].count, 1);
    ratelimit_destroy(guard);
}

TEST(refusals_of_sources_beyond_the_cap_go_into_one_summary_of_their_own) {
    struct ratelimit *guard;
    int alert;
    char source[64];
    CHECK_EQ(ratelimit_create(&settings, &guard), 0);
    for (int i = 0; i < RATELIMIT_MAX_SOURCES; i++) {
        snprintf(source, sizeof source, "10.%d.%d.1", i >> 8, i & 255);
        ratelimit_note(guard, source, RATELIMIT_DENIAL, 0, 0, NULL);
    }
    CHECK_EQ(ratelimit_refused(guard, "192.0.2.99", "r", 10, 77, &alert, NULL), 0);
    CHECK_EQ(ratelimit_refused(guard, "192.0.2.98", "r", 10, 78, &alert, NULL), 0);
    summary_count = 0;
    ratelimit_refusal_summaries(guard, 10, 0, collect, NULL);
    CHECK_EQ(summary_count, 1);
    CHECK_STR(summaries[0].source, "(other sources)");
    CHECK_EQ(summaries[0].count, 2);
    CHECK_EQ(summaries[0].first_ms, 77);
    ratelimit_destroy(guard);
}

int main(void) {
    RUN(a_connection_counts_for_its_source_and_holds_it_while_open);
    RUN(a_connection_gets_its_burst_at_once_then_the_rate);
    RUN(without_a_rate_everything_is_admitted_and_a_reload_cuts_the_bucket);
    RUN(a_unit_id_scan_alerts_once_per_window_on_distinct_units);
    RUN(denials_malformed_frames_and_floods_have_their_own_thresholds);
    RUN(the_source_is_the_host_part_of_the_peer);
    RUN(sources_beyond_the_cap_are_counted_as_untracked_until_windows_pass);
    RUN(refusals_are_counted_per_source_the_first_recorded_the_rest_summed_up_per_window);
    RUN(a_window_that_ends_by_a_new_refusal_keeps_its_summary_for_later);
    RUN(refusals_of_sources_beyond_the_cap_go_into_one_summary_of_their_own);
    return harness_result();
}
