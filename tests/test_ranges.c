/* SPDX-License-Identifier: MIT */
/*
 * The merged number ranges of mbsec policy (src/app/policy/ranges.c): what learn writes into a
 * rule and what test reports. Ranges that overlap or touch become one, as the policy's own do;
 * the ends of the address space (0 and 65535) are ordinary numbers.
 */
#include <stdlib.h>
#include <string.h>

#include "app/policy/ranges.h"
#include "harness.h"

static const char *text_of(const struct ranges *set) {
    static char text[4096];
    ranges_format(set, text, sizeof text);
    return text;
}

TEST(ranges_that_overlap_or_touch_become_one) {
    struct ranges set = {0};
    CHECK_EQ(ranges_add(&set, 10, 19), 0);
    CHECK_EQ(ranges_add(&set, 30, 39), 0);
    CHECK_STR(text_of(&set), "[10-19, 30-39]");
    CHECK_EQ(ranges_add(&set, 20, 20), 0); /* touches the first */
    CHECK_STR(text_of(&set), "[10-20, 30-39]");
    CHECK_EQ(ranges_add(&set, 21, 29), 0); /* touches both: one range */
    CHECK_STR(text_of(&set), "10-39");
    CHECK_EQ(ranges_add(&set, 5, 50), 0); /* covers it */
    CHECK_STR(text_of(&set), "5-50");
    CHECK_EQ(ranges_add(&set, 7, 7), 0); /* inside */
    CHECK_STR(text_of(&set), "5-50");
    CHECK_EQ(ranges_add(&set, 0, 0), 0);
    CHECK_EQ(ranges_add(&set, 52, 52), 0); /* a gap of one stays a gap */
    CHECK_STR(text_of(&set), "[0, 5-50, 52]");
    CHECK_EQ(set.count, 3);
    ranges_free(&set);
}

TEST(the_ends_of_the_address_space_are_ordinary_numbers) {
    struct ranges set = {0};
    CHECK_EQ(ranges_add(&set, 65535, 65535), 0);
    CHECK_EQ(ranges_add(&set, 65534, 65534), 0);
    CHECK_EQ(ranges_add(&set, 0, 1), 0);
    CHECK_STR(text_of(&set), "[0-1, 65534-65535]");
    CHECK(ranges_cover(&set, 65534, 65535));
    CHECK(ranges_cover(&set, 0, 0));
    CHECK(!ranges_cover(&set, 1, 2));
    CHECK(!ranges_cover(&set, 2, 65533));
    CHECK_EQ(ranges_add(&set, 2, 65533), 0);
    CHECK_STR(text_of(&set), "0-65535");
    ranges_free(&set);
}

TEST(adding_in_any_order_gives_the_same_set) {
    /* Every other number of 0..999, in a scrambled order, then the odd ones: one range. */
    struct ranges forward = {0}, scrambled = {0};
    for (unsigned i = 0; i < 1000; i += 2)
        CHECK_EQ(ranges_add(&forward, (uint16_t)i, (uint16_t)i), 0);
    for (unsigned i = 0; i < 500; i++) {
        unsigned n = (i * 317u) % 500u * 2u;
        CHECK_EQ(ranges_add(&scrambled, (uint16_t)n, (uint16_t)n), 0);
    }
    CHECK_EQ(forward.count, 500);
    CHECK(ranges_equal(&forward, &scrambled));
    for (unsigned i = 1; i < 1000; i += 2)
        CHECK_EQ(ranges_add(&scrambled, (uint16_t)i, (uint16_t)i), 0);
    CHECK_STR(text_of(&scrambled), "0-999");
    CHECK(!ranges_equal(&forward, &scrambled));
    ranges_free(&forward);
    ranges_free(&scrambled);
}

TEST(rounding_widens_to_whole_blocks_and_merges) {
    struct ranges set = {0};
    CHECK_EQ(ranges_add(&set, 100, 104), 0);
    CHECK_EQ(ranges_add(&set, 112, 112), 0);
    CHECK_EQ(ranges_add(&set, 131, 131), 0);
    CHECK_EQ(ranges_add(&set, 65530, 65535), 0);
    ranges_round(&set, 10);
    CHECK_STR(text_of(&set), "[100-119, 130-139, 65530-65535]");
    ranges_round(&set, 1); /* nothing */
    CHECK_STR(text_of(&set), "[100-119, 130-139, 65530-65535]");
    ranges_round(&set, 65536);
    CHECK_STR(text_of(&set), "0-65535");
    ranges_free(&set);
}

TEST(fitting_joins_the_nearest_ranges_and_counts_what_it_adds) {
    struct ranges set = {0};
    CHECK_EQ(ranges_add(&set, 0, 0), 0);
    CHECK_EQ(ranges_add(&set, 2, 2), 0);     /* gap 1 */
    CHECK_EQ(ranges_add(&set, 10, 10), 0);   /* gap 7 */
    CHECK_EQ(ranges_add(&set, 100, 100), 0); /* gap 89 */
    CHECK_EQ(ranges_fit(&set, 4), 0);
    CHECK_EQ(ranges_fit(&set, 3), 1);
    CHECK_STR(text_of(&set), "[0-2, 10, 100]");
    CHECK_EQ(ranges_fit(&set, 1), 7 + 89);
    CHECK_STR(text_of(&set), "0-100");
    ranges_free(&set);
    /* 300 single registers 3 apart, 256 at most: 44 gaps of 2 joined. */
    for (unsigned i = 0; i < 300; i++)
        CHECK_EQ(ranges_add(&set, (uint16_t)(i * 3), (uint16_t)(i * 3)), 0);
    CHECK_EQ(ranges_fit(&set, 256), 44 * 2);
    CHECK_EQ(set.count, 256);
    ranges_free(&set);
}

TEST(formatting_stops_at_the_capacity_like_snprintf) {
    struct ranges set = {0}, copy = {0};
    CHECK_EQ(ranges_add(&set, 1, 1), 0);
    CHECK_EQ(ranges_add(&set, 3, 9), 0);
    char small[6];
    CHECK_EQ(ranges_format(&set, small, sizeof small), (int)strlen("[1, 3-9]"));
    CHECK_STR(small, "[1, 3");
    CHECK_EQ(ranges_copy(&copy, &set), 0);
    CHECK(ranges_equal(&copy, &set));
    CHECK_EQ(ranges_merge(&copy, &set), 0);
    CHECK(ranges_equal(&copy, &set));
    struct ranges empty = {0};
    CHECK_STR(text_of(&empty), "");
    ranges_free(&set);
    ranges_free(&copy);
}

TEST(the_last_number_of_a_span_is_cut_at_65535) {
    CHECK_EQ(ranges_last(100, 10), 109);
    CHECK_EQ(ranges_last(100, 1), 100);
    CHECK_EQ(ranges_last(100, 0), 100); /* a quantity of 0 touches its first address */
    CHECK_EQ(ranges_last(65535, 1), 65535);
    CHECK_EQ(ranges_last(65530, 125), 65535);
    CHECK_EQ(ranges_last(0, 65536), 65535);
}

int main(void) {
    RUN(the_last_number_of_a_span_is_cut_at_65535);
    RUN(ranges_that_overlap_or_touch_become_one);
    RUN(the_ends_of_the_address_space_are_ordinary_numbers);
    RUN(adding_in_any_order_gives_the_same_set);
    RUN(rounding_widens_to_whole_blocks_and_merges);
    RUN(fitting_joins_the_nearest_ranges_and_counts_what_it_adds);
    RUN(formatting_stops_at_the_capacity_like_snprintf);
    return harness_result();
}
