/* SPDX-License-Identifier: MIT */
/* The event loop: tasks run once per post, after the iteration's events, in order, and a task
 * that re-posts itself runs again only in the next round, whatever other tasks do; timers fire in
 * deadline order whatever order they were started in, a stopped one never, a re-armed one once
 * per arming; an event for a descriptor closed during the iteration never reaches the watcher of
 * a new descriptor that got the same number. */
#include <stdlib.h>
#include <string.h>
#include <sys/eventfd.h>
#include <unistd.h>

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

/* ---- timers ---- */

#define TIMERS 200

struct fired {
    struct mb_timer timers[TIMERS];
    uint64_t deadlines[TIMERS]; /* in firing order */
    int order[TIMERS];          /* index of each timer fired, in firing order */
    int count;
    int runs[TIMERS];
};

static void record_timer(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    struct fired *fired = timer->data;
    int index = (int)(timer - fired->timers);
    fired->runs[index]++;
    if (fired->count < TIMERS) {
        fired->deadlines[fired->count] = timer->deadline_ms;
        fired->order[fired->count] = index;
    }
    fired->count++;
}

/* Runs the loop until `count` timers have fired or two seconds have passed. */
static void run_until_fired(struct mb_loop *loop, const int *count, int want) {
    uint64_t give_up = mb_loop_now(loop) + 2000;
    while (*count < want && mb_loop_now(loop) < give_up)
        mb_loop_run_once(loop, 50);
}

/* Starts TIMERS timers of `fired` with delays of 0..39 ms, in an order `seed` shuffles. */
static void start_random_timers(struct mb_loop *loop, struct fired *fired, unsigned seed) {
    memset(fired, 0, sizeof *fired);
    srand(seed);
    for (int i = 0; i < TIMERS; i++)
        mb_timer_start(loop, &fired->timers[i], (uint64_t)(rand() % 40), record_timer, fired);
}

TEST(timers_started_in_random_order_fire_in_deadline_order) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    static struct fired fired;
    start_random_timers(loop, &fired, 15);
    run_until_fired(loop, &fired.count, TIMERS);
    CHECK_EQ(fired.count, TIMERS);
    int in_order = 1, each_once = 1;
    for (int i = 1; i < TIMERS; i++)
        in_order &= fired.deadlines[i - 1] <= fired.deadlines[i];
    for (int i = 0; i < TIMERS; i++)
        each_once &= fired.runs[i] == 1 && !mb_timer_active(&fired.timers[i]);
    CHECK(in_order);
    CHECK(each_once);
    mb_loop_destroy(loop);
}

TEST(a_timer_stopped_from_the_middle_of_the_heap_never_fires_and_the_rest_keep_their_order) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    static struct fired fired;
    start_random_timers(loop, &fired, 42);
    /* Heap positions TIMERS / 2 and around: neither the root nor a leaf at the end. */
    int in_the_middle[TIMERS], stopped = 0;
    for (int i = 0; i < TIMERS; i++) {
        size_t position = fired.timers[i].heap_index;
        in_the_middle[i] = position >= TIMERS / 2 - 10 && position < TIMERS / 2 + 10;
    }
    for (int i = 0; i < TIMERS; i++) {
        if (in_the_middle[i]) {
            mb_timer_stop(loop, &fired.timers[i]);
            mb_timer_stop(loop, &fired.timers[i]); /* twice is harmless */
            CHECK(!mb_timer_active(&fired.timers[i]));
            fired.runs[i] = -1; /* marks it: it must stay at -1 */
            stopped++;
        }
    }
    CHECK_EQ(stopped, 20);
    run_until_fired(loop, &fired.count, TIMERS - stopped);
    mb_loop_run_once(loop, 50); /* a stopped timer that wrongly fired would have done so by now */
    CHECK_EQ(fired.count, TIMERS - stopped);
    int in_order = 1, stopped_stayed = 1, others_once = 1;
    for (int i = 1; i < fired.count; i++)
        in_order &= fired.deadlines[i - 1] <= fired.deadlines[i];
    for (int i = 0; i < TIMERS; i++) {
        if (fired.runs[i] < 0)
            stopped_stayed &= fired.runs[i] == -1;
        else
            others_once &= fired.runs[i] == 1;
    }
    CHECK(in_order);
    CHECK(stopped_stayed);
    CHECK(others_once);
    mb_loop_destroy(loop);
}

struct rearm {
    struct mb_timer timer;
    uint64_t delay_ms;
    int runs;
    int limit;
    int active_after_rearm;
};

static void rearm_timer(struct mb_loop *loop, struct mb_timer *timer) {
    struct rearm *rearm = timer->data;
    rearm->runs++;
    if (rearm->runs < rearm->limit) {
        mb_timer_start(loop, timer, rearm->delay_ms, rearm_timer, rearm);
        rearm->active_after_rearm += mb_timer_active(timer);
    }
}

TEST(a_timer_rearmed_from_its_callback_fires_once_per_arming) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct rearm rearm = {.delay_ms = 2, .limit = 5};
    mb_timer_start(loop, &rearm.timer, 2, rearm_timer, &rearm);
    run_until_fired(loop, &rearm.runs, 5);
    CHECK_EQ(rearm.runs, 5);
    CHECK_EQ(rearm.active_after_rearm, 4);
    CHECK(!mb_timer_active(&rearm.timer));
    mb_loop_destroy(loop);
}

TEST(a_timer_rearmed_with_no_delay_from_its_callback_waits_for_the_next_iteration) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct rearm rearm = {.delay_ms = 0, .limit = 1000};
    mb_timer_start(loop, &rearm.timer, 0, rearm_timer, &rearm);
    /* Each iteration runs the due timers twice (before the wait and after the events); a timer
     * that re-arms itself with no delay must not run more often than that, or it would keep the
     * loop from ever polling. */
    CHECK_EQ(mb_loop_run_once(loop, 0), 0);
    CHECK(rearm.runs >= 1 && rearm.runs <= 2);
    CHECK(mb_timer_active(&rearm.timer));
    mb_timer_stop(loop, &rearm.timer);
    mb_loop_destroy(loop);
}

struct stopper {
    struct mb_timer timer;
    struct fired *fired;
    int victim;
    int victim_runs_when_stopped;
    int runs;
};

static void stop_victim(struct mb_loop *loop, struct mb_timer *timer) {
    struct stopper *stopper = timer->data;
    stopper->runs++;
    stopper->victim_runs_when_stopped = stopper->fired->runs[stopper->victim];
    mb_timer_stop(loop, &stopper->fired->timers[stopper->victim]);
}

TEST(timers_with_equal_deadlines_all_fire_in_one_iteration_and_one_may_stop_another) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    static struct fired fired;
    memset(&fired, 0, sizeof fired);
    struct stopper stopper = {.fired = &fired, .victim = 25};
    /* Started within one iteration with one delay: one deadline for all 51. */
    for (int i = 0; i < 50; i++)
        mb_timer_start(loop, &fired.timers[i], 5, record_timer, &fired);
    mb_timer_start(loop, &stopper.timer, 5, stop_victim, &stopper);
    uint64_t give_up = mb_loop_now(loop) + 2000;
    while (fired.count == 0 && mb_loop_now(loop) < give_up)
        mb_loop_run_once(loop, 50);
    int fired_in_one_iteration = fired.count;
    mb_loop_run_once(loop, 20);
    CHECK_EQ(stopper.runs, 1);
    /* Either the victim fired before the stopper ran, or never. */
    int want = stopper.victim_runs_when_stopped ? 50 : 49;
    CHECK_EQ(fired_in_one_iteration, want);
    CHECK_EQ(fired.count, want);
    CHECK_EQ(fired.runs[25], stopper.victim_runs_when_stopped);
    int at_most_once = 1, same_deadline = 1;
    for (int i = 0; i < 50; i++)
        at_most_once &= fired.runs[i] == (i == 25 ? fired.runs[25] : 1);
    for (int i = 0; i < fired.count; i++)
        same_deadline &= fired.deadlines[i] == fired.deadlines[0];
    CHECK(at_most_once);
    CHECK(same_deadline);
    mb_loop_destroy(loop);
}

/* ---- descriptors ---- */

struct reuse {
    int fds[2];      /* two readable descriptors, watched by on_old */
    int old_runs[2]; /* events delivered to each */
    int closed;      /* index of the one closed by the first callback, or -1 */
    int new_fd;      /* the descriptor opened in its place */
    int new_runs;    /* events delivered to the new watcher */
    int same_number; /* the new descriptor got the closed one's number */
};

static void on_new(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)loop;
    (void)fd;
    (void)events;
    struct reuse *reuse = data;
    reuse->new_runs++;
}

static void on_old(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)events;
    struct reuse *reuse = data;
    int self = fd == reuse->fds[0] ? 0 : 1;
    reuse->old_runs[self]++;
    if (reuse->closed >= 0)
        return;
    /* The first callback closes the other descriptor, whose event is still in this batch, and
     * opens a readable one that takes its number. */
    int other = 1 - self;
    reuse->closed = other;
    mb_loop_remove(loop, reuse->fds[other]);
    close(reuse->fds[other]);
    reuse->new_fd = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC);
    reuse->same_number = reuse->new_fd == reuse->fds[other];
    mb_loop_add(loop, reuse->new_fd, MB_IO_READ, on_new, reuse);
}

TEST(an_event_for_a_descriptor_closed_in_the_same_iteration_never_reaches_its_reuser) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct reuse reuse = {.closed = -1, .new_fd = -1};
    for (int i = 0; i < 2; i++) {
        reuse.fds[i] = eventfd(1, EFD_NONBLOCK | EFD_CLOEXEC); /* readable at once */
        CHECK(reuse.fds[i] >= 0);
        CHECK_EQ(mb_loop_add(loop, reuse.fds[i], MB_IO_READ, on_old, &reuse), 0);
    }
    CHECK_EQ(mb_loop_run_once(loop, 1000), 0);
    CHECK(reuse.closed >= 0);
    CHECK(reuse.same_number);
    /* Both were ready in one batch: the closed one's event is dropped, not handed to the new
     * watcher (or to the old callback). */
    CHECK_EQ(reuse.old_runs[1 - reuse.closed], 1);
    CHECK_EQ(reuse.old_runs[reuse.closed], 0);
    CHECK_EQ(reuse.new_runs, 0);
    /* The new descriptor's own readiness is reported in the next iteration. */
    CHECK_EQ(mb_loop_run_once(loop, 1000), 0);
    CHECK(reuse.new_runs >= 1);
    CHECK_EQ(reuse.old_runs[reuse.closed], 0);
    mb_loop_remove(loop, reuse.new_fd);
    mb_loop_remove(loop, reuse.fds[1 - reuse.closed]);
    close(reuse.new_fd);
    close(reuse.fds[1 - reuse.closed]);
    mb_loop_destroy(loop);
}

int main(void) {
    RUN(a_posted_task_runs_once_in_the_next_iteration);
    RUN(a_cancelled_task_does_not_run);
    RUN(a_task_that_reposts_itself_cannot_hold_the_loop_even_if_it_cancels_the_last_task);
    RUN(timers_started_in_random_order_fire_in_deadline_order);
    RUN(a_timer_stopped_from_the_middle_of_the_heap_never_fires_and_the_rest_keep_their_order);
    RUN(a_timer_rearmed_from_its_callback_fires_once_per_arming);
    RUN(a_timer_rearmed_with_no_delay_from_its_callback_waits_for_the_next_iteration);
    RUN(timers_with_equal_deadlines_all_fire_in_one_iteration_and_one_may_stop_another);
    RUN(an_event_for_a_descriptor_closed_in_the_same_iteration_never_reaches_its_reuser);
    return harness_result();
}
