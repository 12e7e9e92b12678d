/* SPDX-License-Identifier: MIT */
/*
 * The RTU slave (mb_serial_server) on a real tty path: the server's loop runs in a thread on
 * the slave side of an openpty pair (opened through a symlink, as /dev/serial/by-id names a
 * port), and the test is the bus master on the master side, writing frames byte for byte as it
 * likes: good requests, other units, broadcasts, noise, broken CRCs, PDUs that do not decode,
 * and a line that goes away and comes back under the same name.
 *
 * The handler answers FC 3 with register i = address + i and echoes FC 6; the slave answers
 * units 1 and 5.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/loop.h"
#include "mbsec/serial.h"
#include "mbsec/server.h"
#include "mbsec/transport.h"
#include "mbsec/value.h"

static struct {
    struct mb_loop *loop;
    struct mb_serial_server *server;
    pthread_t thread;
    int master;
    int slave;
    char link[128];
    char dir[64];
    int written; /* FC 6 values the handler took, broadcasts included */
    uint16_t last_written;
    int lost, reopened; /* log events seen */
} fx;

static int answers_unit(void *data, uint8_t unit) {
    (void)data;
    return unit == 1 || unit == 5;
}

static int handler(void *data, const struct mb_server_request *call, uint8_t *response) {
    (void)data;
    const struct mb_request *request = call->request;
    if (request->function == MB_FC_READ_HOLDING_REGISTERS) {
        response[0] = 3;
        response[1] = (uint8_t)(2 * request->read.quantity);
        for (uint16_t i = 0; i < request->read.quantity; i++)
            mb_put_u16(response + 2 + 2 * i, (uint16_t)(request->read.address + i));
        return 2 + 2 * request->read.quantity;
    }
    if (request->function == MB_FC_WRITE_SINGLE_REGISTER) {
        __atomic_add_fetch(&fx.written, 1, __ATOMIC_SEQ_CST);
        fx.last_written = request->write_single.value;
        memcpy(response, call->pdu, 5);
        return 5;
    }
    return mb_exception_encode(request->function, MB_EX_ILLEGAL_FUNCTION, response, MB_PDU_MAX);
}

static void on_log(void *data, const struct mb_log_event *event) {
    (void)data;
    if (strcmp(event->event, "serial_lost") == 0)
        __atomic_add_fetch(&fx.lost, 1, __ATOMIC_SEQ_CST);
    if (strcmp(event->event, "serial_reopened") == 0)
        __atomic_add_fetch(&fx.reopened, 1, __ATOMIC_SEQ_CST);
}

static void *run_loop(void *data) {
    (void)data;
    mb_loop_run(fx.loop);
    return NULL;
}

/* A new pty pair, the symlink pointing at its slave side. */
static void new_pair(void) {
    char path[64];
    CHECK_EQ(openpty(&fx.master, &fx.slave, path, NULL, NULL), 0);
    struct termios raw;
    tcgetattr(fx.master, &raw);
    cfmakeraw(&raw);
    tcsetattr(fx.master, TCSANOW, &raw);
    unlink(fx.link);
    CHECK_EQ(symlink(path, fx.link), 0);
}

static void start(void) {
    memset(&fx, 0, sizeof fx);
    snprintf(fx.dir, sizeof fx.dir, "/tmp/mbsec-serial-XXXXXX");
    CHECK(mkdtemp(fx.dir) != NULL);
    snprintf(fx.link, sizeof fx.link, "%s/ttyRTU", fx.dir);
    new_pair();
    CHECK_EQ(mb_loop_create(&fx.loop), 0);
    struct mb_serial_config line = {.baud = 115200, .parity = 'N'};
    struct mb_serial_server_config config = {
        .handler = handler, .answers_unit = answers_unit, .log = on_log, .reopen_ms = 50};
    char error[256] = "";
    int rc =
        mb_serial_server_create(fx.loop, fx.link, &line, &config, &fx.server, error, sizeof error);
    CHECK_EQ(rc, 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n", error);
    pthread_create(&fx.thread, NULL, run_loop, NULL);
}

static void stop(void) {
    mb_loop_stop(fx.loop);
    pthread_join(fx.thread, NULL);
    mb_serial_server_destroy(fx.server);
    mb_loop_destroy(fx.loop);
    close(fx.master);
    close(fx.slave);
    unlink(fx.link);
    rmdir(fx.dir);
}

static void send_frame(uint8_t unit, const uint8_t *pdu, size_t length) {
    uint8_t frame[MB_RTU_FRAME_MAX];
    int size = mb_rtu_encode(unit, pdu, length, frame, sizeof frame);
    CHECK(size > 0);
    CHECK_EQ(write(fx.master, frame, (size_t)size), size);
}

/* Reads one answer frame within `ms` (cut by its length); returns its size, 0 for silence. */
static size_t answer(uint8_t *frame, int ms) {
    size_t got = 0;
    struct pollfd poller = {.fd = fx.master, .events = POLLIN};
    for (int waited = 0; waited < ms; waited += 5) {
        if (poll(&poller, 1, 5) <= 0)
            continue;
        ssize_t count = read(fx.master, frame + got, MB_RTU_FRAME_MAX - got);
        if (count > 0)
            got += (size_t)count;
        int length = mb_rtu_frame_length(frame, got, 0);
        if (length > 0 && got >= (size_t)length)
            return got;
    }
    return got;
}

static const uint8_t read_10_at_100[] = {0x03, 0x00, 0x64, 0x00, 0x0A};

TEST(a_read_for_its_unit_is_answered_with_the_handlers_values) {
    start();
    send_frame(1, read_10_at_100, sizeof read_10_at_100);
    uint8_t frame[MB_RTU_FRAME_MAX];
    size_t size = answer(frame, 1000);
    CHECK_EQ(size, 25);
    uint8_t unit;
    const uint8_t *pdu;
    size_t length;
    CHECK_EQ(mb_rtu_decode(frame, size, &unit, &pdu, &length), 0);
    CHECK_EQ(unit, 1);
    CHECK_EQ(length, 22);
    CHECK_EQ(mb_get_u16(pdu + 2), 100);
    CHECK_EQ(mb_get_u16(pdu + 20), 109);
    /* The other unit it answers. */
    send_frame(5, read_10_at_100, sizeof read_10_at_100);
    CHECK_EQ(answer(frame, 1000), 25);
    CHECK_EQ(frame[0], 5);
    stop();
}

TEST(another_units_request_gets_silence_and_the_next_is_answered) {
    start();
    send_frame(9, read_10_at_100, sizeof read_10_at_100);
    uint8_t frame[MB_RTU_FRAME_MAX];
    CHECK_EQ(answer(frame, 100), 0);
    send_frame(1, read_10_at_100, sizeof read_10_at_100);
    CHECK_EQ(answer(frame, 1000), 25);
    struct mb_serial_server_stats stats;
    mb_serial_server_get_stats(fx.server, &stats);
    CHECK_EQ(stats.ignored, 1);
    CHECK_EQ(stats.requests, 1);
    stop();
}

TEST(a_broadcast_write_is_executed_and_not_answered_a_broadcast_read_ignored) {
    start();
    const uint8_t write_7[] = {0x06, 0x00, 0x10, 0x00, 0x07};
    send_frame(0, write_7, sizeof write_7);
    uint8_t frame[MB_RTU_FRAME_MAX];
    CHECK_EQ(answer(frame, 100), 0);
    /* Once for each unit this slave answers (1 and 5). */
    CHECK_EQ(__atomic_load_n(&fx.written, __ATOMIC_SEQ_CST), 2);
    CHECK_EQ(fx.last_written, 7);
    send_frame(0, read_10_at_100, sizeof read_10_at_100);
    CHECK_EQ(answer(frame, 100), 0);
    struct mb_serial_server_stats stats;
    mb_serial_server_get_stats(fx.server, &stats);
    CHECK_EQ(stats.broadcasts, 1);
    CHECK_EQ(stats.ignored, 1);
    CHECK_EQ(stats.responses, 0);
    stop();
}

TEST(a_broken_crc_gets_silence_and_noise_between_frames_costs_nothing_else) {
    start();
    uint8_t frame[MB_RTU_FRAME_MAX];
    int size = mb_rtu_encode(1, read_10_at_100, sizeof read_10_at_100, frame, sizeof frame);
    frame[size - 1] ^= 0x01;
    CHECK_EQ(write(fx.master, frame, (size_t)size), size);
    uint8_t reply[MB_RTU_FRAME_MAX];
    CHECK_EQ(answer(reply, 100), 0);
    static const uint8_t noise[] = {0x00, 0xFF, 0x13, 0x11, 0x0D};
    CHECK_EQ(write(fx.master, noise, sizeof noise), (ssize_t)sizeof noise);
    usleep(20000); /* a silence after the noise */
    send_frame(1, read_10_at_100, sizeof read_10_at_100);
    CHECK_EQ(answer(reply, 1000), 25);
    struct mb_serial_server_stats stats;
    /* (the server's thread counts the answer just after writing it) */
    for (int i = 0; i < 100; i++) {
        mb_serial_server_get_stats(fx.server, &stats);
        if (stats.responses == 1)
            break;
        usleep(2000);
    }
    CHECK_EQ(stats.errors, 2);
    CHECK_EQ(stats.responses, 1);
    stop();
}

TEST(a_pdu_that_does_not_decode_gets_the_exception_the_spec_names) {
    start();
    const uint8_t quantity_0[] = {0x03, 0x00, 0x00, 0x00, 0x00};
    send_frame(1, quantity_0, sizeof quantity_0);
    uint8_t frame[MB_RTU_FRAME_MAX];
    CHECK_EQ(answer(frame, 1000), 5);
    CHECK_BYTES(frame, 3, 0x01, 0x83, 0x03);
    const uint8_t unknown[] = {0x41, 0x01};
    send_frame(1, unknown, sizeof unknown); /* ended by the silence, length unknown */
    CHECK_EQ(answer(frame, 1000), 5);
    CHECK_BYTES(frame, 3, 0x01, 0xC1, 0x01);
    stop();
}

TEST(a_line_that_goes_away_is_opened_again_when_it_comes_back) {
    start();
    uint8_t frame[MB_RTU_FRAME_MAX];
    send_frame(1, read_10_at_100, sizeof read_10_at_100);
    CHECK_EQ(answer(frame, 1000), 25);
    /* The adapter is unplugged: both ends of the pair go. */
    close(fx.master);
    close(fx.slave);
    for (int i = 0; i < 200 && __atomic_load_n(&fx.lost, __ATOMIC_SEQ_CST) == 0; i++)
        usleep(5000);
    CHECK_EQ(__atomic_load_n(&fx.lost, __ATOMIC_SEQ_CST), 1);
    usleep(120000); /* a few attempts against a name that leads nowhere */
    new_pair();     /* plugged in again: the same name, another device node */
    for (int i = 0; i < 200 && __atomic_load_n(&fx.reopened, __ATOMIC_SEQ_CST) == 0; i++)
        usleep(5000);
    CHECK_EQ(__atomic_load_n(&fx.reopened, __ATOMIC_SEQ_CST), 1);
    send_frame(1, read_10_at_100, sizeof read_10_at_100);
    CHECK_EQ(answer(frame, 1000), 25);
    CHECK_EQ(frame[0], 1);
    stop();
}

TEST(a_line_that_cannot_be_opened_is_refused_with_the_reason) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_serial_server_config config = {.handler = handler};
    struct mb_serial_server *server = NULL;
    char error[256] = "";
    CHECK_EQ(mb_serial_server_create(loop, "/nonexistent/ttyX", NULL, &config, &server, error,
                                     sizeof error),
             MB_EADDRESS);
    CHECK(strstr(error, "no such serial device") != NULL);
    CHECK(server == NULL);
    CHECK_EQ(mb_serial_server_create(loop, "/dev/null", NULL, NULL, &server, error, sizeof error),
             MB_EINVAL);
    mb_loop_destroy(loop);
}

int main(void) {
    RUN(a_read_for_its_unit_is_answered_with_the_handlers_values);
    RUN(another_units_request_gets_silence_and_the_next_is_answered);
    RUN(a_broadcast_write_is_executed_and_not_answered_a_broadcast_read_ignored);
    RUN(a_broken_crc_gets_silence_and_noise_between_frames_costs_nothing_else);
    RUN(a_pdu_that_does_not_decode_gets_the_exception_the_spec_names);
    RUN(a_line_that_goes_away_is_opened_again_when_it_comes_back);
    RUN(a_line_that_cannot_be_opened_is_refused_with_the_reason);
    return harness_result();
}
