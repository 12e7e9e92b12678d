/* SPDX-License-Identifier: MIT */
/* The event loop: epoll, watchers in an fd-indexed table, a binary heap of timers. */
#include <errno.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/eventfd.h>
#include <time.h>
#include <unistd.h>

#include "mbsec/error.h"
#include "mbsec/loop.h"

#define LOOP_EVENTS 256

struct watcher {
    mb_io_fn fn;
    void *data;
    uint32_t generation; /* changes whenever the slot is reused */
    int active;
};

struct mb_loop {
    int epoll_fd;
    int wake_fd;           /* eventfd: mb_loop_stop() from a signal handler or another thread */
    volatile int stopping; /* written by mb_loop_stop() */
    uint64_t now_ms;
    struct watcher *watchers; /* indexed by fd */
    size_t watcher_capacity;
    struct mb_timer **heap; /* 1-based binary min-heap on deadline_ms */
    size_t heap_count;
    size_t heap_capacity;
    struct mb_timer **due; /* run_timers(): the timers it took off the heap, heap_capacity long */
    struct mb_task *tasks; /* queued tasks, oldest first */
    struct mb_task *last_task;
};

static uint64_t monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000u + (uint64_t)now.tv_nsec / 1000000u;
}

static uint32_t to_epoll(unsigned events) {
    uint32_t mask = 0;
    if (events & MB_IO_READ)
        mask |= EPOLLIN | EPOLLRDHUP;
    if (events & MB_IO_WRITE)
        mask |= EPOLLOUT;
    return mask;
}

int mb_loop_create(struct mb_loop **loop_out) {
    if (loop_out == NULL)
        return MB_EINVAL;
    struct mb_loop *loop = calloc(1, sizeof *loop);
    if (loop == NULL)
        return MB_ENOMEM;
    loop->epoll_fd = epoll_create1(EPOLL_CLOEXEC);
    loop->wake_fd = eventfd(0, EFD_NONBLOCK | EFD_CLOEXEC);
    if (loop->epoll_fd < 0 || loop->wake_fd < 0) {
        if (loop->epoll_fd >= 0)
            close(loop->epoll_fd);
        if (loop->wake_fd >= 0)
            close(loop->wake_fd);
        free(loop);
        return MB_ESYSTEM;
    }
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = UINT64_MAX};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, loop->wake_fd, &event) != 0) {
        close(loop->epoll_fd);
        close(loop->wake_fd);
        free(loop);
        return MB_ESYSTEM;
    }
    loop->now_ms = monotonic_ms();
    *loop_out = loop;
    return 0;
}

void mb_loop_destroy(struct mb_loop *loop) {
    if (loop == NULL)
        return;
    close(loop->epoll_fd);
    close(loop->wake_fd);
    free(loop->watchers);
    free(loop->heap);
    free(loop->due);
    free(loop);
}

static int ensure_watcher(struct mb_loop *loop, int fd) {
    if ((size_t)fd < loop->watcher_capacity)
        return 0;
    size_t capacity = loop->watcher_capacity ? loop->watcher_capacity : 64;
    while (capacity <= (size_t)fd)
        capacity *= 2;
    struct watcher *grown = realloc(loop->watchers, capacity * sizeof *grown);
    if (grown == NULL)
        return MB_ENOMEM;
    memset(grown + loop->watcher_capacity, 0, (capacity - loop->watcher_capacity) * sizeof *grown);
    loop->watchers = grown;
    loop->watcher_capacity = capacity;
    return 0;
}

int mb_loop_add(struct mb_loop *loop, int fd, unsigned events, mb_io_fn fn, void *data) {
    if (loop == NULL || fd < 0 || fn == NULL)
        return MB_EINVAL;
    int rc = ensure_watcher(loop, fd);
    if (rc != 0)
        return rc;
    struct watcher *watcher = &loop->watchers[fd];
    if (watcher->active)
        return MB_EINVAL;
    watcher->generation++;
    /* The generation travels with the event, so that an event for a descriptor that was
     * closed and reused within one batch is not delivered to the new watcher. */
    struct epoll_event event = {.events = to_epoll(events),
                                .data.u64 = (uint64_t)watcher->generation << 32 | (uint32_t)fd};
    if (epoll_ctl(loop->epoll_fd, EPOLL_CTL_ADD, fd, &event) != 0)
        return MB_ESYSTEM;
    watcher->fn = fn;
    watcher->data = data;
    watcher->active = 1;
    return 0;
}

int mb_loop_modify(struct mb_loop *loop, int fd, unsigned events) {
    if (loop == NULL || fd < 0 || (size_t)fd >= loop->watcher_capacity ||
        !loop->watchers[fd].active)
        return MB_EINVAL;
    struct epoll_event event = {.events = to_epoll(events),
                                .data.u64 =
                                    (uint64_t)loop->watchers[fd].generation << 32 | (uint32_t)fd};
    return epoll_ctl(loop->epoll_fd, EPOLL_CTL_MOD, fd, &event) == 0 ? 0 : MB_ESYSTEM;
}

int mb_loop_remove(struct mb_loop *loop, int fd) {
    if (loop == NULL || fd < 0 || (size_t)fd >= loop->watcher_capacity ||
        !loop->watchers[fd].active)
        return MB_EINVAL;
    loop->watchers[fd].active = 0;
    loop->watchers[fd].fn = NULL;
    loop->watchers[fd].data = NULL;
    return epoll_ctl(loop->epoll_fd, EPOLL_CTL_DEL, fd, NULL) == 0 ? 0 : MB_ESYSTEM;
}

/* ---- timers ---- */

/* The heap_index of a timer that run_timers() took off the heap and has yet to fire: SIZE_MAX
 * minus its place in loop->due, far above any index the heap can reach. */
#define TIMER_DUE_INDEX(place) (SIZE_MAX - (place))
#define TIMER_IS_DUE(timer) ((timer)->heap_index > SIZE_MAX / 2)

static void heap_swap(struct mb_loop *loop, size_t a, size_t b) {
    struct mb_timer *timer = loop->heap[a];
    loop->heap[a] = loop->heap[b];
    loop->heap[b] = timer;
    loop->heap[a]->heap_index = a;
    loop->heap[b]->heap_index = b;
}

static void heap_up(struct mb_loop *loop, size_t index) {
    while (index > 1 && loop->heap[index / 2]->deadline_ms > loop->heap[index]->deadline_ms) {
        heap_swap(loop, index, index / 2);
        index /= 2;
    }
}

static void heap_down(struct mb_loop *loop, size_t index) {
    for (;;) {
        size_t smallest = index, left = 2 * index, right = left + 1;
        if (left <= loop->heap_count &&
            loop->heap[left]->deadline_ms < loop->heap[smallest]->deadline_ms)
            smallest = left;
        if (right <= loop->heap_count &&
            loop->heap[right]->deadline_ms < loop->heap[smallest]->deadline_ms)
            smallest = right;
        if (smallest == index)
            return;
        heap_swap(loop, index, smallest);
        index = smallest;
    }
}

void mb_timer_stop(struct mb_loop *loop, struct mb_timer *timer) {
    if (timer == NULL || timer->heap_index == 0)
        return;
    if (TIMER_IS_DUE(timer)) {
        /* Its place is emptied so that run_timers() never touches it again: the caller may free
         * it as soon as this returns. */
        loop->due[SIZE_MAX - timer->heap_index] = NULL;
        timer->heap_index = 0;
        return;
    }
    size_t index = timer->heap_index;
    heap_swap(loop, index, loop->heap_count);
    loop->heap_count--;
    timer->heap_index = 0;
    if (index <= loop->heap_count) {
        heap_up(loop, index);
        heap_down(loop, index);
    }
}

void mb_timer_start(struct mb_loop *loop, struct mb_timer *timer, uint64_t delay_ms, mb_timer_fn fn,
                    void *data) {
    mb_timer_stop(loop, timer);
    if (loop->heap_count + 1 >= loop->heap_capacity) {
        size_t capacity = loop->heap_capacity ? 2 * loop->heap_capacity : 64;
        struct mb_timer **grown = realloc(loop->heap, capacity * sizeof *grown);
        if (grown != NULL)
            loop->heap = grown;
        struct mb_timer **grown_due =
            grown != NULL ? realloc(loop->due, capacity * sizeof *grown_due) : NULL;
        if (grown_due == NULL) {
            /* Without room the timer cannot run; fire it at once rather than never, so that a
             * deadline is never silently lost. */
            fn(loop, timer);
            return;
        }
        loop->due = grown_due;
        loop->heap_capacity = capacity;
    }
    timer->deadline_ms = loop->now_ms + delay_ms;
    timer->fn = fn;
    timer->data = data;
    loop->heap[++loop->heap_count] = timer;
    timer->heap_index = loop->heap_count;
    heap_up(loop, loop->heap_count);
}

int mb_timer_active(const struct mb_timer *timer) {
    return timer != NULL && timer->heap_index != 0;
}

uint64_t mb_loop_now(const struct mb_loop *loop) {
    return loop->now_ms;
}

/* Takes every due timer off the heap first, then fires them in deadline order. A timer that a
 * callback starts again with no delay is due as well, but waits for the next call: fired at
 * once, a timer that keeps restarting itself would keep the loop from ever polling. A callback
 * that stops a timer still waiting its turn here keeps it from firing. */
static void run_timers(struct mb_loop *loop) {
    size_t due_count = 0;
    while (loop->heap_count > 0 && loop->heap[1]->deadline_ms <= loop->now_ms) {
        struct mb_timer *timer = loop->heap[1];
        mb_timer_stop(loop, timer);
        timer->heap_index = TIMER_DUE_INDEX(due_count);
        loop->due[due_count++] = timer;
    }
    for (size_t place = 0; place < due_count; place++) {
        struct mb_timer *timer = loop->due[place];
        if (timer == NULL)
            continue; /* stopped, or started again, by an earlier callback */
        loop->due[place] = NULL;
        timer->heap_index = 0;
        timer->fn(loop, timer);
    }
}

/* ---- tasks ---- */

void mb_loop_post(struct mb_loop *loop, struct mb_task *task, mb_task_fn fn, void *data) {
    task->fn = fn;
    task->data = data;
    if (task->queued)
        return;
    task->queued = 1;
    task->next = NULL;
    task->previous = loop->last_task;
    if (loop->last_task != NULL)
        loop->last_task->next = task;
    else
        loop->tasks = task;
    loop->last_task = task;
}

void mb_loop_cancel(struct mb_loop *loop, struct mb_task *task) {
    if (task == NULL || !task->queued)
        return;
    if (task->previous != NULL)
        task->previous->next = task->next;
    else
        loop->tasks = task->next;
    if (task->next != NULL)
        task->next->previous = task->previous;
    else
        loop->last_task = task->previous;
    task->queued = 0;
    task->next = task->previous = NULL;
}

/* Runs the tasks queued so far. A sentinel marks the end of the round: tasks posted while it
 * runs land behind it and wait for the next round, so a task that keeps re-posting itself
 * cannot keep the loop from polling; and unlike a pointer to the last task, the sentinel
 * cannot be cancelled by a task that runs before it. */
static void noop_task(struct mb_loop *loop, struct mb_task *task) {
    (void)loop;
    (void)task;
}

static void run_tasks(struct mb_loop *loop) {
    if (loop->tasks == NULL)
        return;
    struct mb_task sentinel = {0};
    mb_loop_post(loop, &sentinel, noop_task, NULL);
    while (loop->tasks != &sentinel) {
        struct mb_task *task = loop->tasks;
        mb_loop_cancel(loop, task);
        task->fn(loop, task);
    }
    mb_loop_cancel(loop, &sentinel);
}

/* ---- running ---- */

int mb_loop_run_once(struct mb_loop *loop, int timeout_ms) {
    struct epoll_event events[LOOP_EVENTS];
    loop->now_ms = monotonic_ms();
    run_timers(loop);
    run_tasks(loop);
    if (loop->tasks != NULL)
        timeout_ms = 0;
    else if (loop->heap_count > 0) {
        uint64_t until = loop->heap[1]->deadline_ms - loop->now_ms;
        if (timeout_ms < 0 || until < (uint64_t)timeout_ms)
            timeout_ms = until > 60000 ? 60000 : (int)until;
    }
    int count = epoll_wait(loop->epoll_fd, events, LOOP_EVENTS, timeout_ms);
    if (count < 0)
        return errno == EINTR ? 0 : MB_ESYSTEM;
    loop->now_ms = monotonic_ms();
    for (int i = 0; i < count; i++) {
        uint64_t tag = events[i].data.u64;
        if (tag == UINT64_MAX) {
            uint64_t value;
            while (read(loop->wake_fd, &value, sizeof value) > 0)
                ;
            continue;
        }
        int fd = (int)(uint32_t)tag;
        uint32_t generation = (uint32_t)(tag >> 32);
        if ((size_t)fd >= loop->watcher_capacity)
            continue;
        struct watcher *watcher = &loop->watchers[fd];
        if (!watcher->active || watcher->generation != generation)
            continue;
        unsigned ready = 0;
        if (events[i].events & (EPOLLIN | EPOLLRDHUP))
            ready |= MB_IO_READ;
        if (events[i].events & EPOLLOUT)
            ready |= MB_IO_WRITE;
        if (events[i].events & (EPOLLHUP | EPOLLERR))
            ready |= MB_IO_HANGUP | MB_IO_READ;
        watcher->fn(loop, fd, ready, watcher->data);
    }
    run_timers(loop);
    run_tasks(loop);
    return 0;
}

int mb_loop_run(struct mb_loop *loop) {
    /* A stop requested before the loop started still stops it; the flag is cleared on the way
     * out so that the loop can be run again. */
    int rc = 0;
    while (!loop->stopping && rc == 0)
        rc = mb_loop_run_once(loop, -1);
    loop->stopping = 0;
    return rc;
}

void mb_loop_stop(struct mb_loop *loop) {
    uint64_t one = 1;
    loop->stopping = 1;
    /* Wakes epoll_wait; write() is async-signal-safe. */
    ssize_t written = write(loop->wake_fd, &one, sizeof one);
    (void)written;
}
