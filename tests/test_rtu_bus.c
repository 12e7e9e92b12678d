/* SPDX-License-Identifier: MIT */
/*
 * The RTU bus master (mb_rtu_bus, client.h) on a real tty path: an openpty pair, the bus on the
 * slave side (opened through a symlink, as /dev/serial/by-id names a port), and on the master
 * side a scripted bus of devices that the test drives from the same event loop. Each unit id
 * plays a part:
 *   1  answers at once (FC 3: register i holds address + i; FC 6: echo)
 *   2  never answers (a dead slave)
 *   3  answers with a broken CRC
 *   4  answers as unit 9 (another device on the bus, or a misconfigured one)
 *   5  answers after `late_ms` (past the attempt's timeout)
 *   6  sends noise, then its answer
 *   7  answers in two pieces with a short gap (an adapter that flushes early)
 *   8  ignores the first `drop` requests, then answers
 *  10  answers after 60 ms (slow, but in time)
 * Also over TCP (RTU over TCP: the test is the serial-to-Ethernet converter).
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <pty.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "mbsec/client.h"
#include "mbsec/error.h"
#include "mbsec/loop.h"
#include "mbsec/serial.h"
#include "mbsec/value.h"

#define MAX_PENDING 8

struct delayed {
    struct mb_timer timer;
    uint8_t frame[MB_RTU_FRAME_MAX];
    size_t size;
    int used;
};

static struct {
    struct mb_loop *loop;
    struct mb_rtu_bus *bus;
    int master, slave;  /* the pty pair (master: the devices' side) */
    int listener, peer; /* RTU over TCP: the converter's listening socket and connection */
    int device_fd;      /* where the devices read and write: master or peer */
    char link[128], dir[64];
    uint8_t input[1024];
    size_t held;
    int late_ms;
    int drop;                /* unit 8: requests still to ignore */
    int echo;                /* the devices' side echoes every request first */
    int seen[256];           /* requests seen per unit */
    uint64_t seen_at_us[16]; /* when the last requests arrived (ring) */
    int seen_count;
    struct delayed later[MAX_PENDING];
    int events[8];
    int states_down;
} fx;

static uint64_t now_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

static void put(const uint8_t *bytes, size_t size) {
    CHECK_EQ(write(fx.device_fd, bytes, size), (ssize_t)size);
}

static void send_later(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    struct delayed *delayed = timer->data;
    put(delayed->frame, delayed->size);
    delayed->used = 0;
}

static void later(int ms, const uint8_t *frame, size_t size) {
    for (int i = 0; i < MAX_PENDING; i++)
        if (!fx.later[i].used) {
            struct delayed *delayed = &fx.later[i];
            delayed->used = 1;
            memcpy(delayed->frame, frame, size);
            delayed->size = size;
            mb_timer_start(fx.loop, &delayed->timer, (uint64_t)ms, send_later, delayed);
            return;
        }
    CHECK(0);
}

/* A device's answer to `pdu` as unit `unit`: FC 3 and FC 6 as unit 1 plays them. */
static size_t answer_frame(uint8_t unit, const uint8_t *pdu, uint8_t *frame) {
    uint8_t out[MB_PDU_MAX];
    size_t length;
    if (pdu[0] == 3) {
        uint16_t address = mb_get_u16(pdu + 1), quantity = mb_get_u16(pdu + 3);
        out[0] = 3;
        out[1] = (uint8_t)(2 * quantity);
        for (uint16_t i = 0; i < quantity; i++)
            mb_put_u16(out + 2 + 2 * i, (uint16_t)(address + i));
        length = 2 + 2u * quantity;
    } else {
        memcpy(out, pdu, 5);
        length = 5;
    }
    return (size_t)mb_rtu_encode(unit, out, length, frame, MB_RTU_FRAME_MAX);
}

/* One whole request from the bus, played by the unit it is for. */
static void play(const uint8_t *request, size_t size) {
    uint8_t unit;
    const uint8_t *pdu;
    size_t length;
    CHECK_EQ(mb_rtu_decode(request, size, &unit, &pdu, &length), 0);
    fx.seen[unit]++;
    fx.seen_at_us[fx.seen_count++ % 16] = now_us();
    if (fx.echo)
        put(request, size);
    uint8_t frame[MB_RTU_FRAME_MAX];
    size_t answer_size = answer_frame(unit, pdu, frame);
    switch (unit) {
    case 0: /* broadcast */
    case 2: /* dead */
        return;
    case 1:
        put(frame, answer_size);
        return;
    case 3:
        frame[answer_size - 1] ^= 0xFF;
        put(frame, answer_size);
        return;
    case 4:
        answer_size = answer_frame(9, pdu, frame);
        put(frame, answer_size);
        return;
    case 5:
        later(fx.late_ms, frame, answer_size);
        return;
    case 6: {
        const uint8_t noise[] = {0xFF, 0x00, 0x13};
        put(noise, sizeof noise);
        later(60, frame, answer_size); /* after a silence: the noise is a frame of its own */
        return;
    }
    case 7:
        put(frame, 4);
        later(1, frame + 4, answer_size - 4);
        return;
    case 10:
        later(60, frame, answer_size);
        return;
    case 8:
        if (fx.drop > 0) {
            fx.drop--;
            return;
        }
        put(frame, answer_size);
        return;
    default:
        return;
    }
}

static void on_device(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)loop;
    (void)events;
    (void)data;
    ssize_t count = read(fd, fx.input + fx.held, sizeof fx.input - fx.held);
    if (count <= 0)
        return;
    fx.held += (size_t)count;
    for (;;) {
        int length = mb_rtu_frame_length(fx.input, fx.held, 1);
        if (length <= 0 || (size_t)length > fx.held)
            return;
        play(fx.input, (size_t)length);
        memmove(fx.input, fx.input + length, fx.held - (size_t)length);
        fx.held -= (size_t)length;
    }
}

static void on_state(void *data, enum mb_async_state state, int error, const char *detail) {
    (void)data;
    (void)error;
    (void)detail;
    if (state == MB_ASYNC_DOWN)
        fx.states_down++;
}

static void on_event(void *data, enum mb_rtu_bus_event event, uint8_t unit, const char *detail) {
    (void)data;
    (void)unit;
    if (getenv("RTU_BUS_DEBUG") != NULL)
        fprintf(stderr, "  event %d: %s\n", event, detail);
    if ((unsigned)event < 8)
        fx.events[event]++;
}

static void new_pair(void) {
    char path[64];
    CHECK_EQ(openpty(&fx.master, &fx.slave, path, NULL, NULL), 0);
    struct termios raw;
    tcgetattr(fx.master, &raw);
    cfmakeraw(&raw);
    tcsetattr(fx.master, TCSANOW, &raw);
    fcntl(fx.master, F_SETFL, fcntl(fx.master, F_GETFL) | O_NONBLOCK);
    unlink(fx.link);
    CHECK_EQ(symlink(path, fx.link), 0);
    fx.device_fd = fx.master;
    CHECK_EQ(mb_loop_add(fx.loop, fx.master, MB_IO_READ, on_device, NULL), 0);
}

static struct mb_rtu_bus_config base_config(void) {
    struct mb_rtu_bus_config config = {
        .path = fx.link,
        .line = {.baud = 115200, .parity = 'N'},
        .answer_timeout_ms = 80,
        .timeout_ms = 2000,
        .unit_failures = 2,
        .unit_backoff_ms = 300,
        .reopen_min_ms = 20,
        .reopen_max_ms = 40,
        .on_state = on_state,
        .on_event = on_event,
    };
    return config;
}

/* Runs the loop until the bus is open (at most 2 s). */
static void wait_open(void) {
    uint64_t until = now_us() + 2000000;
    while (mb_rtu_bus_state(fx.bus) != MB_ASYNC_CONNECTED && now_us() < until)
        mb_loop_run_once(fx.loop, 10);
    CHECK_EQ(mb_rtu_bus_state(fx.bus), MB_ASYNC_CONNECTED);
}

static void start_with(struct mb_rtu_bus_config *config) {
    CHECK_EQ(mb_rtu_bus_create(fx.loop, config, &fx.bus), 0);
    wait_open();
}

static void start(void) {
    memset(&fx, 0, sizeof fx);
    fx.listener = fx.peer = -1;
    fx.late_ms = 120;
    snprintf(fx.dir, sizeof fx.dir, "/tmp/mbsec-rtubus-XXXXXX");
    CHECK(mkdtemp(fx.dir) != NULL);
    snprintf(fx.link, sizeof fx.link, "%s/ttyBUS", fx.dir);
    CHECK_EQ(mb_loop_create(&fx.loop), 0);
    new_pair();
}

static void stop(void) {
    mb_rtu_bus_destroy(fx.bus);
    for (int i = 0; i < MAX_PENDING; i++)
        mb_timer_stop(fx.loop, &fx.later[i].timer);
    if (fx.master >= 0) {
        mb_loop_remove(fx.loop, fx.master);
        close(fx.master);
        close(fx.slave);
    }
    if (fx.peer >= 0) {
        mb_loop_remove(fx.loop, fx.peer);
        close(fx.peer);
    }
    if (fx.listener >= 0)
        close(fx.listener);
    mb_loop_destroy(fx.loop);
    unlink(fx.link);
    rmdir(fx.dir);
}

struct outcome {
    int done;
    int status;
    uint8_t pdu[MB_PDU_MAX];
    size_t length;
    int has_response;
    uint64_t finished_us;
};

static void on_done(void *data, const struct mb_async_result *result) {
    struct outcome *outcome = data;
    outcome->done = 1;
    outcome->status = result->status;
    outcome->has_response = result->response != NULL;
    outcome->length = result->response_length;
    if (result->response_pdu != NULL)
        memcpy(outcome->pdu, result->response_pdu, result->response_length);
    outcome->finished_us = now_us();
}

static void run_until(struct outcome *outcome, int ms) {
    uint64_t until = now_us() + (uint64_t)ms * 1000u;
    while (!outcome->done && now_us() < until)
        mb_loop_run_once(fx.loop, 5);
}

static const uint8_t read_3_at_100[] = {0x03, 0x00, 0x64, 0x00, 0x03};
static const uint8_t write_7_at_16[] = {0x06, 0x00, 0x10, 0x00, 0x07};

/* Submits `pdu` to `unit`, runs the loop until it completes (at most 3 s). */
static struct outcome call(uint8_t unit, const uint8_t *pdu, size_t length) {
    struct outcome outcome = {0};
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, unit, pdu, length, 0, on_done, &outcome), 0);
    run_until(&outcome, 3000);
    CHECK(outcome.done);
    return outcome;
}

TEST(reads_and_writes_are_answered_with_the_devices_values) {
    start();
    struct mb_rtu_bus_config config = base_config();
    /* A silence wider than the spec's 1.75 ms, so that unit 7's 1 ms gap inside its answer
     * stays a gap on a loaded machine (on a real line a longer one voids the frame). */
    config.silence_us = 20000;
    config.answer_timeout_ms = 200;
    start_with(&config);
    struct outcome got = call(1, read_3_at_100, sizeof read_3_at_100);
    CHECK_EQ(got.status, 0);
    CHECK_EQ(got.length, 8);
    CHECK_EQ(mb_get_u16(got.pdu + 2), 100);
    CHECK_EQ(mb_get_u16(got.pdu + 6), 102);
    got = call(1, write_7_at_16, sizeof write_7_at_16);
    CHECK_EQ(got.status, 0);
    CHECK_BYTES(got.pdu, got.length, 0x06, 0x00, 0x10, 0x00, 0x07);
    /* An answer in two pieces (ended by its length, not by the gap) and one after noise. */
    got = call(7, read_3_at_100, sizeof read_3_at_100);
    CHECK_EQ(got.status, 0);
    CHECK_EQ(mb_get_u16(got.pdu + 6), 102);
    got = call(6, read_3_at_100, sizeof read_3_at_100);
    CHECK_EQ(got.status, 0);
    struct mb_rtu_bus_stats stats;
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK_EQ(stats.transactions, 4);
    CHECK_EQ(stats.answers, 4);
    CHECK_EQ(stats.damaged, 1); /* the noise */
    CHECK_EQ(stats.queued, 0);
    stop();
}

TEST(a_dead_unit_times_out_then_is_skipped_while_the_others_are_served_and_is_probed) {
    start();
    struct mb_rtu_bus_config config = base_config();
    start_with(&config);
    uint64_t began = now_us();
    struct outcome got = call(2, read_3_at_100, sizeof read_3_at_100);
    CHECK_EQ(got.status, MB_ETIMEDOUT);
    CHECK(got.finished_us - began >= 80000);
    CHECK_EQ(call(1, read_3_at_100, sizeof read_3_at_100).status, 0);
    CHECK_EQ(call(2, read_3_at_100, sizeof read_3_at_100).status, MB_ETIMEDOUT);
    CHECK_EQ(fx.events[MB_RTU_UNIT_SKIPPED], 1);
    /* Skipped: failed at once, never sent. */
    began = now_us();
    got = call(2, read_3_at_100, sizeof read_3_at_100);
    CHECK_EQ(got.status, MB_EBACKOFF);
    CHECK(got.finished_us - began < 40000);
    CHECK_EQ(fx.seen[2], 2);
    CHECK_EQ(call(1, read_3_at_100, sizeof read_3_at_100).status, 0);
    struct mb_rtu_bus_stats stats;
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK_EQ(stats.skipped, 1);
    CHECK_EQ(stats.units_skipped, 1);
    CHECK_EQ(stats.timeouts, 2);
    /* After the back-off the next request is a probe; a silent probe skips it again. */
    uint64_t until = now_us() + 320000;
    while (now_us() < until)
        mb_loop_run_once(fx.loop, 10);
    CHECK_EQ(call(2, read_3_at_100, sizeof read_3_at_100).status, MB_ETIMEDOUT);
    CHECK_EQ(fx.seen[2], 3);
    CHECK_EQ(call(2, read_3_at_100, sizeof read_3_at_100).status, MB_EBACKOFF);
    CHECK_EQ(fx.seen[2], 3);
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK_EQ(stats.units_skipped, 1);
    stop();
}

TEST(a_skipped_unit_that_answers_its_probe_is_healthy_again) {
    start();
    struct mb_rtu_bus_config config = base_config();
    start_with(&config);
    fx.drop = 2; /* unit 8 is silent twice, then answers */
    CHECK_EQ(call(8, read_3_at_100, sizeof read_3_at_100).status, MB_ETIMEDOUT);
    CHECK_EQ(call(8, read_3_at_100, sizeof read_3_at_100).status, MB_ETIMEDOUT);
    CHECK_EQ(call(8, read_3_at_100, sizeof read_3_at_100).status, MB_EBACKOFF);
    uint64_t until = now_us() + 320000;
    while (now_us() < until)
        mb_loop_run_once(fx.loop, 10);
    CHECK_EQ(call(8, read_3_at_100, sizeof read_3_at_100).status, 0);
    CHECK_EQ(fx.events[MB_RTU_UNIT_RECOVERED], 1);
    CHECK_EQ(call(8, read_3_at_100, sizeof read_3_at_100).status, 0);
    struct mb_rtu_bus_stats stats;
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK_EQ(stats.units_skipped, 0);
    stop();
}

TEST(a_broken_crc_and_another_units_answer_fail_the_request_and_are_counted) {
    start();
    struct mb_rtu_bus_config config = base_config();
    start_with(&config);
    CHECK_EQ(call(3, read_3_at_100, sizeof read_3_at_100).status, MB_ECRC);
    CHECK_EQ(call(4, read_3_at_100, sizeof read_3_at_100).status, MB_EMISMATCH);
    CHECK_EQ(call(1, read_3_at_100, sizeof read_3_at_100).status, 0);
    struct mb_rtu_bus_stats stats;
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK_EQ(stats.damaged, 1);
    CHECK_EQ(stats.wrong_unit, 1);
    CHECK_EQ(stats.timeouts, 0); /* they answered: no step towards being skipped */
    CHECK_EQ(fx.events[MB_RTU_WRONG_UNIT], 1);
    stop();
}

TEST(a_late_answer_is_recognised_and_never_taken_for_the_next_requests) {
    start();
    struct mb_rtu_bus_config config = base_config();
    config.unit_failures = 10;
    start_with(&config);
    const uint8_t read_3_at_200[] = {0x03, 0x00, 0xC8, 0x00, 0x03};
    /* Unit 5 answers after 110 ms, the attempt times out at 80; unit 1 answers at once, so
     * unit 5's answer comes when the bus is idle again. */
    fx.late_ms = 110;
    struct outcome first = {0}, second = {0};
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 5, read_3_at_100, sizeof read_3_at_100, 0, on_done, &first),
             0);
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 1, read_3_at_200, sizeof read_3_at_200, 0, on_done, &second),
             0);
    run_until(&first, 3000);
    run_until(&second, 3000);
    CHECK_EQ(first.status, MB_ETIMEDOUT);
    CHECK_EQ(second.status, 0);
    CHECK_EQ(mb_get_u16(second.pdu + 2), 200);
    uint64_t until = now_us() + 60000;
    while (now_us() < until)
        mb_loop_run_once(fx.loop, 5);
    struct mb_rtu_bus_stats stats;
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK_EQ(stats.late, 1);
    /* The late answer arrives while the next transaction waits for its own: unit 10 takes
     * 60 ms, unit 5's answer comes 20 ms into that. */
    fx.late_ms = 100;
    struct outcome third = {0}, fourth = {0};
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 5, read_3_at_100, sizeof read_3_at_100, 0, on_done, &third),
             0);
    CHECK_EQ(
        mb_rtu_bus_submit(fx.bus, 10, read_3_at_200, sizeof read_3_at_200, 0, on_done, &fourth), 0);
    run_until(&third, 3000);
    run_until(&fourth, 3000);
    CHECK_EQ(third.status, MB_ETIMEDOUT);
    CHECK_EQ(fourth.status, 0);
    CHECK_EQ(mb_get_u16(fourth.pdu + 2), 200);
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK_EQ(stats.late, 2);
    CHECK_EQ(stats.wrong_unit, 0);
    /* The same unit and function at other addresses: the two answers look alike, so the next
     * request waits until the late one had its time; it never gets the other's values. */
    struct outcome fifth = {0}, sixth = {0};
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 5, read_3_at_100, sizeof read_3_at_100, 0, on_done, &fifth),
             0);
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 5, read_3_at_200, sizeof read_3_at_200, 0, on_done, &sixth),
             0);
    run_until(&fifth, 3000);
    run_until(&sixth, 3000);
    CHECK_EQ(fifth.status, MB_ETIMEDOUT);
    CHECK_EQ(sixth.status, MB_ETIMEDOUT); /* unit 5 is always late: never 100's values */
    /* (until the late answer came, at 100 ms, or had its time) */
    CHECK(fx.seen_at_us[(fx.seen_count - 1) % 16] - fx.seen_at_us[(fx.seen_count - 2) % 16] >=
          95000);
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK_EQ(stats.late, 3);
    CHECK_EQ(stats.answers, 2);
    stop();
}

TEST(reads_are_retried_writes_never) {
    start();
    struct mb_rtu_bus_config config = base_config();
    config.retries = 1;
    config.unit_failures = 5;
    start_with(&config);
    fx.drop = 1;
    CHECK_EQ(call(8, read_3_at_100, sizeof read_3_at_100).status, 0);
    CHECK_EQ(fx.seen[8], 2);
    fx.drop = 1;
    CHECK_EQ(call(8, write_7_at_16, sizeof write_7_at_16).status, MB_ETIMEDOUT);
    CHECK_EQ(fx.seen[8], 3);
    struct mb_rtu_bus_stats stats;
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK_EQ(stats.retries, 1);
    stop();
}

TEST(a_broadcast_is_written_and_answered_by_nobody_reserved_units_are_refused) {
    start();
    struct mb_rtu_bus_config config = base_config();
    config.broadcast_pause_ms = 50;
    start_with(&config);
    uint64_t began = now_us();
    struct outcome got = call(0, write_7_at_16, sizeof write_7_at_16);
    CHECK_EQ(got.status, 0);
    CHECK(!got.has_response);
    CHECK_EQ(got.length, 0);
    CHECK(got.finished_us - began < 40000);
    /* The next request waits the turnaround. */
    CHECK_EQ(call(1, read_3_at_100, sizeof read_3_at_100).status, 0);
    CHECK(fx.seen_at_us[1] - fx.seen_at_us[0] >= 50000);
    CHECK_EQ(fx.seen[0], 1);
    struct outcome unused = {0};
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 0, read_3_at_100, sizeof read_3_at_100, 0, on_done, &unused),
             MB_EINVAL);
    CHECK_EQ(
        mb_rtu_bus_submit(fx.bus, 248, read_3_at_100, sizeof read_3_at_100, 0, on_done, &unused),
        MB_EINVAL);
    struct mb_rtu_bus_stats stats;
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK_EQ(stats.broadcasts, 1);
    stop();
}

TEST(a_request_out_of_time_is_answered_but_the_line_stays_reserved_for_its_answer) {
    start();
    struct mb_rtu_bus_config config = base_config();
    config.answer_timeout_ms = 150;
    start_with(&config);
    struct outcome first = {0}, second = {0};
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 2, read_3_at_100, sizeof read_3_at_100, 40, on_done, &first),
             0);
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 1, read_3_at_100, sizeof read_3_at_100, 0, on_done, &second),
             0);
    uint64_t began = now_us();
    run_until(&first, 3000);
    CHECK_EQ(first.status, MB_ETIMEDOUT);
    CHECK(first.finished_us - began < 100000);
    run_until(&second, 3000);
    CHECK_EQ(second.status, 0);
    /* Unit 1's request went out only once unit 2's attempt had run its course. */
    CHECK(fx.seen_at_us[1] - fx.seen_at_us[0] >= 150000);
    stop();
}

TEST(an_adapter_that_echoes_has_its_echo_dropped) {
    start();
    struct mb_rtu_bus_config config = base_config();
    config.echo = 1;
    start_with(&config);
    fx.echo = 1;
    /* FC 6's answer looks exactly like its request: only dropping the echo tells them apart. */
    const uint8_t write_9_at_16[] = {0x06, 0x00, 0x10, 0x00, 0x09};
    struct outcome got = call(1, write_9_at_16, sizeof write_9_at_16);
    CHECK_EQ(got.status, 0);
    got = call(1, read_3_at_100, sizeof read_3_at_100);
    CHECK_EQ(got.status, 0);
    CHECK_EQ(mb_get_u16(got.pdu + 2), 100);
    /* A broadcast's echo is dropped too, not counted as a stray frame. */
    got = call(0, write_9_at_16, sizeof write_9_at_16);
    CHECK_EQ(got.status, 0);
    CHECK_EQ(call(1, read_3_at_100, sizeof read_3_at_100).status, 0);
    struct mb_rtu_bus_stats stats;
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK_EQ(stats.unsolicited, 0);
    CHECK_EQ(stats.damaged, 0);
    CHECK_EQ(stats.wrong_unit, 0);
    /* Told to expect an echo that does not come: the answer's first bytes look like the
     * echo's (unit, function); they are handed back to the decoder and the read succeeds. */
    fx.echo = 0;
    got = call(1, read_3_at_100, sizeof read_3_at_100);
    CHECK_EQ(got.status, 0);
    CHECK_EQ(mb_get_u16(got.pdu + 2), 100);
    stop();
}

TEST(a_line_that_goes_away_fails_what_is_outstanding_and_is_opened_again) {
    start();
    struct mb_rtu_bus_config config = base_config();
    start_with(&config);
    /* Unit 2 is skipped before the line goes. */
    CHECK_EQ(call(2, read_3_at_100, sizeof read_3_at_100).status, MB_ETIMEDOUT);
    CHECK_EQ(call(2, read_3_at_100, sizeof read_3_at_100).status, MB_ETIMEDOUT);
    CHECK_EQ(call(2, read_3_at_100, sizeof read_3_at_100).status, MB_EBACKOFF);
    struct outcome got = {0};
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 9, read_3_at_100, sizeof read_3_at_100, 0, on_done, &got),
             0); /* unit 9: nobody, so it is outstanding when the line goes */
    for (int i = 0; i < 5; i++)
        mb_loop_run_once(fx.loop, 5);
    /* The adapter is unplugged: both ends go, the name with them. */
    mb_loop_remove(fx.loop, fx.master);
    close(fx.master);
    close(fx.slave);
    fx.master = -1;
    unlink(fx.link);
    run_until(&got, 2000);
    CHECK_EQ(got.status, MB_ECLOSED);
    CHECK_EQ(fx.states_down, 1);
    CHECK_EQ(mb_rtu_bus_state(fx.bus), MB_ASYNC_DOWN);
    struct outcome refused = {0};
    CHECK_EQ(
        mb_rtu_bus_submit(fx.bus, 1, read_3_at_100, sizeof read_3_at_100, 0, on_done, &refused),
        MB_ECLOSED);
    /* Plugged in again, under the same name. */
    for (int i = 0; i < 10; i++)
        mb_loop_run_once(fx.loop, 10);
    new_pair();
    wait_open();
    CHECK_EQ(call(1, read_3_at_100, sizeof read_3_at_100).status, 0);
    struct mb_rtu_bus_stats stats;
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK(stats.reopens >= 1);
    CHECK_EQ(stats.units_skipped, 0);
    /* A fresh line: unit 2 is asked again, not skipped. */
    int asked = fx.seen[2];
    CHECK_EQ(call(2, read_3_at_100, sizeof read_3_at_100).status, MB_ETIMEDOUT);
    CHECK_EQ(fx.seen[2], asked + 1);
    stop();
}

TEST(the_queue_is_bounded_and_bad_arguments_are_refused) {
    start();
    struct mb_rtu_bus_config config = base_config();
    config.max_queued = 2;
    start_with(&config);
    struct outcome a = {0}, b = {0}, c = {0};
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 1, read_3_at_100, sizeof read_3_at_100, 0, on_done, &a), 0);
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 1, read_3_at_100, sizeof read_3_at_100, 0, on_done, &b), 0);
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 1, read_3_at_100, sizeof read_3_at_100, 0, on_done, &c),
             MB_ELIMIT);
    CHECK_EQ(mb_rtu_bus_outstanding(fx.bus), 2);
    CHECK(!a.done); /* never completed inside submit */
    run_until(&b, 3000);
    CHECK_EQ(a.status, 0);
    CHECK_EQ(b.status, 0);
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 1, read_3_at_100, 0, 0, on_done, &c), MB_EINVAL);
    uint8_t huge[MB_PDU_MAX + 1] = {3};
    CHECK_EQ(mb_rtu_bus_submit(fx.bus, 1, huge, sizeof huge, 0, on_done, &c), MB_EINVAL);
    stop();
    struct mb_rtu_bus_config none = {0};
    struct mb_loop *loop;
    struct mb_rtu_bus *bus = NULL;
    CHECK_EQ(mb_loop_create(&loop), 0);
    CHECK_EQ(mb_rtu_bus_create(loop, &none, &bus), MB_EINVAL);
    mb_loop_destroy(loop);
}

TEST(a_line_that_cannot_be_opened_is_retried_and_said_why) {
    start();
    struct mb_rtu_bus_config config = base_config();
    config.path = "/nonexistent/ttyX";
    CHECK_EQ(mb_rtu_bus_create(fx.loop, &config, &fx.bus), 0);
    uint64_t until = now_us() + 200000;
    while (now_us() < until)
        mb_loop_run_once(fx.loop, 10);
    CHECK_EQ(mb_rtu_bus_state(fx.bus), MB_ASYNC_DOWN);
    struct mb_rtu_bus_stats stats;
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK(stats.reopens >= 2);
    stop();
}

/* ---- RTU over TCP: the test is the converter ---- */

static void on_accept(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)events;
    (void)data;
    fx.peer = accept4(fd, NULL, NULL, SOCK_NONBLOCK);
    CHECK(fx.peer >= 0);
    fx.device_fd = fx.peer;
    mb_loop_remove(loop, fd);
    CHECK_EQ(mb_loop_add(loop, fx.peer, MB_IO_READ, on_device, NULL), 0);
}

TEST(rtu_over_tcp_carries_the_same_frames_and_answers) {
    start();
    fx.listener = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    CHECK_EQ(bind(fx.listener, (struct sockaddr *)&address, sizeof address), 0);
    CHECK_EQ(listen(fx.listener, 4), 0);
    CHECK_EQ(getsockname(fx.listener, (struct sockaddr *)&address, &length), 0);
    CHECK_EQ(mb_loop_add(fx.loop, fx.listener, MB_IO_READ, on_accept, NULL), 0);
    struct mb_rtu_bus_config config = base_config();
    config.path = NULL;
    config.address = (struct sockaddr *)&address;
    config.address_length = length;
    start_with(&config);
    struct outcome got = call(1, read_3_at_100, sizeof read_3_at_100);
    CHECK_EQ(got.status, 0);
    CHECK_EQ(mb_get_u16(got.pdu + 6), 102);
    /* In two segments: the converter's socket has Nagle's algorithm on, so the second waits
     * for the bus's delayed acknowledgement, 40 ms, twice the 20 ms silence. */
    got = call(7, read_3_at_100, sizeof read_3_at_100);
    CHECK_EQ(got.status, 0);
    CHECK_EQ(call(3, read_3_at_100, sizeof read_3_at_100).status, MB_ECRC);
    CHECK_EQ(call(2, read_3_at_100, sizeof read_3_at_100).status, MB_ETIMEDOUT);
    CHECK_EQ(call(1, write_7_at_16, sizeof write_7_at_16).status, 0);
    /* The converter goes away: the bus is down, then connects again. */
    mb_loop_remove(fx.loop, fx.peer);
    close(fx.peer);
    fx.peer = -1;
    CHECK_EQ(mb_loop_add(fx.loop, fx.listener, MB_IO_READ, on_accept, NULL), 0);
    uint64_t until = now_us() + 500000;
    while (fx.states_down == 0 && now_us() < until)
        mb_loop_run_once(fx.loop, 10);
    CHECK_EQ(fx.states_down, 1);
    wait_open();
    CHECK_EQ(call(1, read_3_at_100, sizeof read_3_at_100).status, 0);
    stop();
}

/* A device that babbles: bursts of noise every millisecond for 300 ms, at 9600 baud (where
 * t3.5 is 4 ms, so the line is hardly ever quiet long enough to send). Requests end at their
 * deadlines whatever gets through, the loop does not spin, and once the line falls quiet the
 * bus works again. */
static int babble_left;
static struct mb_timer babble_timer;

static void babble(struct mb_loop *loop, struct mb_timer *timer) {
    (void)timer;
    static const uint8_t noise[64] = {0x55, 0xAA, 0x01, 0x03};
    put(noise, sizeof noise);
    if (--babble_left > 0)
        mb_timer_start(loop, &babble_timer, 1, babble, NULL);
}

TEST(a_babbling_device_delays_the_bus_but_never_hangs_it) {
    start();
    struct mb_rtu_bus_config config = base_config();
    config.line.baud = 9600;
    start_with(&config);
    babble_left = 300;
    memset(&babble_timer, 0, sizeof babble_timer);
    mb_timer_start(fx.loop, &babble_timer, 1, babble, NULL);
    struct outcome first = {0}, second = {0};
    CHECK_EQ(
        mb_rtu_bus_submit(fx.bus, 1, read_3_at_100, sizeof read_3_at_100, 100, on_done, &first), 0);
    CHECK_EQ(
        mb_rtu_bus_submit(fx.bus, 1, read_3_at_100, sizeof read_3_at_100, 150, on_done, &second),
        0);
    struct timespec cpu_before, cpu_after;
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu_before);
    uint64_t began = now_us();
    run_until(&second, 3000);
    CHECK(first.done);
    CHECK(second.done);
    /* (an answer may get through a gap in the noise; no request outlives its deadline) */
    CHECK(first.finished_us - began < 250000);
    CHECK(second.finished_us - began < 300000);
    uint64_t until = now_us() + 400000; /* the babbling ends */
    while (now_us() < until)
        mb_loop_run_once(fx.loop, 10);
    clock_gettime(CLOCK_PROCESS_CPUTIME_ID, &cpu_after);
    double cpu_s = (double)(cpu_after.tv_sec - cpu_before.tv_sec) +
                   (double)(cpu_after.tv_nsec - cpu_before.tv_nsec) / 1e9;
    if (getenv("RTU_BUS_DEBUG") != NULL)
        fprintf(stderr, "  babbling: %.3f s of CPU\n", cpu_s);
    CHECK(cpu_s < 0.5); /* about 0.7 s of wall time: no spinning */
    struct outcome after = call(1, read_3_at_100, sizeof read_3_at_100);
    CHECK_EQ(after.status, 0);
    CHECK_EQ(mb_get_u16(after.pdu + 2), 100);
    struct mb_rtu_bus_stats stats;
    mb_rtu_bus_stats(fx.bus, &stats);
    CHECK(stats.damaged > 0);
    stop();
}

int main(void) {
    RUN(reads_and_writes_are_answered_with_the_devices_values);
    RUN(a_dead_unit_times_out_then_is_skipped_while_the_others_are_served_and_is_probed);
    RUN(a_skipped_unit_that_answers_its_probe_is_healthy_again);
    RUN(a_broken_crc_and_another_units_answer_fail_the_request_and_are_counted);
    RUN(a_late_answer_is_recognised_and_never_taken_for_the_next_requests);
    RUN(reads_are_retried_writes_never);
    RUN(a_broadcast_is_written_and_answered_by_nobody_reserved_units_are_refused);
    RUN(a_request_out_of_time_is_answered_but_the_line_stays_reserved_for_its_answer);
    RUN(an_adapter_that_echoes_has_its_echo_dropped);
    RUN(a_line_that_goes_away_fails_what_is_outstanding_and_is_opened_again);
    RUN(the_queue_is_bounded_and_bad_arguments_are_refused);
    RUN(a_line_that_cannot_be_opened_is_retried_and_said_why);
    RUN(rtu_over_tcp_carries_the_same_frames_and_answers);
    RUN(a_babbling_device_delays_the_bus_but_never_hangs_it);
    return harness_result();
}
