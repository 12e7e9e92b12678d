/* SPDX-License-Identifier: MIT */
/* The event loop's tasks: run once per post, after the iteration's events, in order; a task that
 * re-posts itself runs again only in the next round, whatever other tasks do. */
#include <string.h>

#include "harness.h"
#include "mbsec/loop.h"

struct tally {
    struct mb_task *other; /* a task this one cancels */
    int runs;
    int repost;
};

static void count_task(struct mb_loop *loop, struct mb_task *task) {
    struct tally *tally = task->data;
    tally->runs++;
    if (tally->other != NULL)
        mb_loop_cancel(loop, tally->other);
    if (tally->repost)
        mb_loop_post(loop, task, count_task, tally);
}

TEST(a_posted_task_runs_once_in_the_next_iteration) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_task task = {0};
    struct tally tally = {0};
    mb_loop_post(loop, &task, count_task, &tally);
    mb_loop_post(loop, &task, count_task, &tally); /* already queued: still once */
    CHECK_EQ(tally.runs, 0);
    CHECK_EQ(mb_loop_run_once(loop, 0), 0);
    CHECK_EQ(tally.runs, 1);
    CHECK_EQ(mb_loop_run_once(loop, 0), 0);
    CHECK_EQ(tally.runs, 1);
    mb_loop_destroy(loop);
}

TEST(a_cancelled_task_does_not_run) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_task first = {0}, second = {0};
    struct tally one = {0}, two = {0};
    mb_loop_post(loop, &first, count_task, &one);
    mb_loop_post(loop, &second, count_task, &two);
    mb_loop_cancel(loop, &first);
    mb_loop_cancel(loop, &first); /* twice is harmless */
    CHECK_EQ(mb_loop_run_once(loop, 0), 0);
    CHECK_EQ(one.runs, 0);
    CHECK_EQ(two.runs, 1);
    mb_loop_destroy(loop);
}

TEST(a_task_that_reposts_itself_cannot_hold_the_loop_even_if_it_cancels_the_last_task) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_task looping = {0}, last = {0};
    struct tally last_tally = {0};
    struct tally looping_tally = {.other = &last, .repost = 1};
    mb_loop_post(loop, &looping, count_task, &looping_tally);
    mb_loop_post(loop, &last, count_task, &last_tally);
    for (int i = 0; i < 3; i++)
        CHECK_EQ(mb_loop_run_once(loop, 0), 0);
    /* Tasks run before the wait and after the events: at most twice per iteration, and each
     * iteration returns. */
    CHECK(looping_tally.runs >= 3 && looping_tally.runs <= 6);
    CHECK_EQ(last_tally.runs, 0);
    mb_loop_cancel(loop, &looping);
    mb_loop_destroy(loop);
}

int main(void) {
    RUN(a_posted_task_runs_once_in_the_next_iteration);
    RUN(a_cancelled_task_does_not_run);
    RUN(a_task_that_reposts_itself_cannot_hold_the_loop_even_if_it_cancels_the_last_task);
    return harness_result();
}
