/* SPDX-License-Identifier: MIT */
/*
 * The event loop: epoll, a timer heap and a monotonic clock in milliseconds. One loop runs in
 * one thread; nothing here is thread-safe except mb_loop_stop(). The server (server.h) and the
 * client run on it; an application may add its own descriptors and timers.
 */
#ifndef MBSEC_LOOP_H
#define MBSEC_LOOP_H

#include <stddef.h>
#include <stdint.h>

#include "mbsec/export.h"
#include "mbsec/transport.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mb_loop;

/* Called when `fd` is ready; `events` holds MB_IO_* bits (transport.h). */
typedef void (*mb_io_fn)(struct mb_loop *loop, int fd, unsigned events, void *data);

/* A timer, owned by the caller (no allocation): zero it before the first mb_timer_start(). */
struct mb_timer;
typedef void (*mb_timer_fn)(struct mb_loop *loop, struct mb_timer *timer);
struct mb_timer {
    uint64_t deadline_ms; /* on mb_loop_now()'s clock */
    size_t heap_index;    /* 0 when not running */
    mb_timer_fn fn;
    void *data;
};

/*
 * A task: a callback the loop runs once after the events and timers of the current iteration
 * (or, when posted from outside a callback, before the next wait). Owned by the caller like a
 * timer: zero it before the first mb_loop_post(). A client uses one to write every request
 * submitted during an iteration in a single system call.
 */
struct mb_task;
typedef void (*mb_task_fn)(struct mb_loop *loop, struct mb_task *task);
struct mb_task {
    mb_task_fn fn;
    void *data;
    struct mb_task *next; /* in the loop's list while queued */
    struct mb_task *previous;
    int queued;
};

/* Creates a loop. Returns 0, MB_ENOMEM or MB_ESYSTEM. */
MB_API int mb_loop_create(struct mb_loop **loop);

/* Frees the loop; descriptors added to it are not closed. */
MB_API void mb_loop_destroy(struct mb_loop *loop);

/* Watches `fd` for `events` (MB_IO_READ | MB_IO_WRITE). One watcher per descriptor.
 * Returns 0, MB_EINVAL or MB_ESYSTEM. */
MB_API int mb_loop_add(struct mb_loop *loop, int fd, unsigned events, mb_io_fn fn, void *data);

/* Changes the events a watched descriptor is watched for. */
MB_API int mb_loop_modify(struct mb_loop *loop, int fd, unsigned events);

/* Stops watching `fd` (before closing it). Safe to call from inside any callback. */
MB_API int mb_loop_remove(struct mb_loop *loop, int fd);

/* Starts (or restarts) `timer` to call `fn` once, `delay_ms` from now. */
MB_API void mb_timer_start(struct mb_loop *loop, struct mb_timer *timer, uint64_t delay_ms,
                           mb_timer_fn fn, void *data);

/* Stops `timer` if it is running; safe on a stopped or zeroed timer. */
MB_API void mb_timer_stop(struct mb_loop *loop, struct mb_timer *timer);

/* 1 if `timer` is running. */
MB_API int mb_timer_active(const struct mb_timer *timer);

/* Queues `task` to run `fn` once. Posting a task that is already queued keeps its place in the
 * queue and takes the new `fn` and `data`. A task may post itself (or others) again: those run
 * in the next iteration. */
MB_API void mb_loop_post(struct mb_loop *loop, struct mb_task *task, mb_task_fn fn, void *data);
/* Takes `task` off the queue if it is there; safe on an idle or zeroed task. */
MB_API void mb_loop_cancel(struct mb_loop *loop, struct mb_task *task);

/* The loop's monotonic clock, in milliseconds, updated once per iteration. */
MB_API uint64_t mb_loop_now(const struct mb_loop *loop);

/* Runs until mb_loop_stop(). Returns 0, or MB_ESYSTEM if epoll failed. */
MB_API int mb_loop_run(struct mb_loop *loop);

/* Runs one iteration, waiting at most `timeout_ms` (-1: until an event or timer). */
MB_API int mb_loop_run_once(struct mb_loop *loop, int timeout_ms);

/* Makes mb_loop_run() return after the current iteration. Async-signal-safe and callable from
 * any thread. */
MB_API void mb_loop_stop(struct mb_loop *loop);

#ifdef __cplusplus
}
#endif

#endif
