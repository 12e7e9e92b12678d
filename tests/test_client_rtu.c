/* SPDX-License-Identifier: MIT */
/*
 * The blocking client with RTU framing, over a real tty path (an openpty pair: the client opens
 * the slave side by its /dev/pts path, a slave device in a thread of this test answers on the
 * master side) and over TCP (RTU over TCP, as a serial-to-Ethernet converter in transparent mode
 * carries it). The slave device answers by unit id:
 *   1  FC 3: register i holds address + i; FC 6: echo; FC 16: the usual answer
 *   2  never answers (a dead unit on the bus)
 *   3  answers with a damaged CRC every other time (first damaged)
 *   4  answers, but as unit 5 (a confused device, or another one talking)
 *   6  answers 300 ms late (after the client's timeout)
 *   7  sends noise, falls silent, then answers
 *   0  broadcast: writes are recorded, nothing is answered
 */
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "mbsec/client.h"
#include "mbsec/error.h"
#include "mbsec/serial.h"
#include "mbsec/transport.h"
#include "mbsec/value.h"

struct device {
    int fd; /* the pty master, or a connected TCP socket */
    int listener;
    pthread_t thread;
    volatile int stop;
    int damaged_turn;
    int broadcasts; /* broadcast writes seen */
    uint16_t last_broadcast_value;
    int requests; /* frames with a good CRC seen */
    int echo;     /* send every byte received straight back, as a 2-wire adapter does */
};

static uint64_t now_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

static void send_frame(int fd, uint8_t unit, const uint8_t *pdu, size_t length, int damage) {
    uint8_t frame[MB_RTU_FRAME_MAX];
    int size = mb_rtu_encode(unit, pdu, length, frame, sizeof frame);
    if (size < 0)
        return;
    if (damage)
        frame[size - 1] ^= 0x5A;
    ssize_t written = write(fd, frame, (size_t)size);
    (void)written;
}

static void answer(struct device *device, uint8_t unit, const uint8_t *pdu, size_t length) {
    uint8_t out[MB_PDU_MAX];
    size_t out_length = 0;
    uint8_t function = pdu[0];
    if (unit == 0) {
        if (function == MB_FC_WRITE_SINGLE_REGISTER && length == 5) {
            __atomic_add_fetch(&device->broadcasts, 1, __ATOMIC_SEQ_CST);
            device->last_broadcast_value = mb_get_u16(pdu + 3);
        }
        return;
    }
    if (unit == 2)
        return;
    if (function == MB_FC_READ_HOLDING_REGISTERS && length == 5) {
        uint16_t address = mb_get_u16(pdu + 1), quantity = mb_get_u16(pdu + 3);
        out[0] = 3;
        out[1] = (uint8_t)(2 * quantity);
        for (uint16_t i = 0; i < quantity; i++)
            mb_put_u16(out + 2 + 2 * i, (uint16_t)(address + i));
        out_length = 2 + 2u * quantity;
    } else if (function == MB_FC_WRITE_SINGLE_REGISTER && length == 5) {
        memcpy(out, pdu, 5);
        out_length = 5;
    } else if (function == MB_FC_WRITE_MULTIPLE_REGISTERS && length >= 6) {
        memcpy(out, pdu, 5);
        out_length = 5;
    } else {
        out[0] = (uint8_t)(function | 0x80);
        out[1] = 1;
        out_length = 2;
    }
    switch (unit) {
    case 3:
        send_frame(device->fd, unit, out, out_length, device->damaged_turn++ % 2 == 0);
        break;
    case 4:
        send_frame(device->fd, 5, out, out_length, 0);
        break;
    case 6:
        usleep(300000);
        send_frame(device->fd, unit, out, out_length, 0);
        break;
    case 8: {
        /* In two pieces 50 ms apart, as a converter whose TCP holds a segment back sends it:
         * more than the 20 ms silence over TCP, and not the end of the frame. */
        uint8_t frame[MB_RTU_FRAME_MAX];
        int size = mb_rtu_encode(unit, out, out_length, frame, sizeof frame);
        ssize_t written = write(device->fd, frame, 4);
        usleep(50000);
        written = write(device->fd, frame + 4, (size_t)size - 4);
        (void)written;
        break;
    }
    case 7: {
        static const uint8_t noise[] = {0xFF, 0x13, 0x00, 0xA5, 0x5A};
        ssize_t written = write(device->fd, noise, sizeof noise);
        (void)written;
        usleep(20000); /* silence: the noise is a frame of its own */
        send_frame(device->fd, unit, out, out_length, 0);
        break;
    }
    default:
        send_frame(device->fd, unit, out, out_length, 0);
    }
}

static void *run_device(void *data) {
    struct device *device = data;
    if (device->listener >= 0) {
        device->fd = accept(device->listener, NULL, NULL);
        if (device->fd < 0)
            return NULL;
    }
    struct mb_rtu_decoder decoder;
    mb_rtu_decoder_init(&decoder, 1, 1750);
    uint8_t buffer[512];
    while (!device->stop) {
        struct pollfd poller = {.fd = device->fd, .events = POLLIN};
        int ready = poll(&poller, 1, 5);
        uint8_t unit;
        const uint8_t *pdu;
        size_t pdu_length;
        if (ready <= 0) {
            if (mb_rtu_decoder_silence(&decoder, now_us(), &unit, &pdu, &pdu_length) == 1) {
                device->requests++;
                answer(device, unit, pdu, pdu_length);
            }
            continue;
        }
        ssize_t count = read(device->fd, buffer, sizeof buffer);
        if (count <= 0) {
            if (count < 0 && errno == EAGAIN)
                continue;
            break;
        }
        if (device->echo) {
            ssize_t echoed = write(device->fd, buffer, (size_t)count);
            (void)echoed;
        }
        uint64_t at = now_us();
        size_t offset = 0;
        while (offset < (size_t)count) {
            size_t consumed = 0;
            int rc = mb_rtu_decoder_feed(&decoder, buffer + offset, (size_t)count - offset, at,
                                         &consumed, &unit, &pdu, &pdu_length);
            offset += consumed;
            if (rc == 1) {
                device->requests++;
                uint8_t copy[MB_PDU_MAX];
                memcpy(copy, pdu, pdu_length);
                answer(device, unit, copy, pdu_length);
            }
        }
    }
    return NULL;
}

static struct device device;
static char pty_path[64];
static int pty_slave_fd;

static void start_pty_device(void) {
    memset(&device, 0, sizeof device);
    device.listener = -1;
    CHECK_EQ(openpty(&device.fd, &pty_slave_fd, pty_path, NULL, NULL), 0);
    struct termios raw;
    tcgetattr(device.fd, &raw);
    cfmakeraw(&raw);
    tcsetattr(device.fd, TCSANOW, &raw);
    CHECK_EQ(pthread_create(&device.thread, NULL, run_device, &device), 0);
}

static void stop_device(void) {
    device.stop = 1;
    pthread_join(device.thread, NULL);
    if (device.fd >= 0)
        close(device.fd);
    if (device.listener >= 0)
        close(device.listener);
}

/* Closes the client, the pair's slave side and the device. */
static void finish(struct mb_client *client) {
    mb_client_close(client);
    close(pty_slave_fd);
    stop_device();
}

static const struct mb_serial_config line_8n1 = {.baud = 115200, .parity = 'N'};

static struct mb_client *open_client(uint32_t timeout_ms, uint32_t retries) {
    struct mb_client_options options = {.timeout_ms = timeout_ms, .retries = retries};
    struct mb_client *client = NULL;
    char detail[256] = "";
    int rc = mb_client_open_serial(pty_path, &line_8n1, &options, &client, detail, sizeof detail);
    CHECK_EQ(rc, 0);
    if (rc != 0)
        fprintf(stderr, "  %s\n", detail);
    return client;
}

TEST(reads_and_writes_over_a_tty_get_the_devices_values) {
    start_pty_device();
    struct mb_client *client = open_client(500, 0);
    uint16_t values[10] = {0};
    CHECK_EQ(mb_read_holding_registers(client, 1, 100, 10, values), 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(values[i], 100 + i);
    CHECK_EQ(mb_write_register(client, 1, 7, 0xBEEF), 0);
    const uint16_t many[3] = {1, 2, 3};
    CHECK_EQ(mb_write_registers(client, 1, 20, 3, many), 0);
    /* An exception from the device is its code. */
    struct mb_reply reply;
    const uint8_t unknown[] = {0x41, 0x00};
    CHECK_EQ(mb_client_call(client, 1, unknown, sizeof unknown, &reply), 1);
    struct mb_client_stats stats;
    mb_client_stats(client, &stats);
    CHECK_EQ(stats.requests, 4);
    CHECK_EQ(stats.responses, 4);
    finish(client);
}

TEST(a_dead_unit_times_out_and_the_next_unit_is_served_at_once) {
    start_pty_device();
    struct mb_client *client = open_client(150, 0);
    uint16_t value;
    uint64_t start = now_us();
    CHECK_EQ(mb_read_holding_registers(client, 2, 0, 1, &value), MB_ETIMEDOUT);
    uint64_t waited = now_us() - start;
    CHECK(waited >= 140000 && waited < 1000000);
    CHECK(strstr(mb_client_error_detail(client), "unit 2") != NULL);
    CHECK_EQ(mb_read_holding_registers(client, 1, 5, 1, &value), 0);
    CHECK_EQ(value, 5);
    finish(client);
}

TEST(a_late_answer_is_dropped_and_never_taken_for_the_next_request) {
    start_pty_device();
    struct mb_client *client = open_client(100, 0);
    uint16_t value = 0;
    CHECK_EQ(mb_read_holding_registers(client, 6, 1000, 1, &value), MB_ETIMEDOUT);
    usleep(300000); /* the late answer (register 1000, unit 6) arrives meanwhile */
    CHECK_EQ(mb_read_holding_registers(client, 1, 42, 1, &value), 0);
    CHECK_EQ(value, 42);
    struct mb_client_stats stats;
    mb_client_stats(client, &stats);
    CHECK(stats.unmatched >= 1); /* the late answer, dropped */
    finish(client);
}

TEST(an_answer_from_another_unit_is_not_taken) {
    start_pty_device();
    struct mb_client *client = open_client(150, 0);
    uint16_t value = 0;
    CHECK_EQ(mb_read_holding_registers(client, 4, 9, 1, &value), MB_ETIMEDOUT);
    CHECK_EQ(value, 0);
    struct mb_client_stats stats;
    mb_client_stats(client, &stats);
    CHECK_EQ(stats.unmatched, 1);
    CHECK_EQ(stats.responses, 0);
    finish(client);
}

TEST(noise_before_the_answer_is_counted_and_the_answer_taken) {
    start_pty_device();
    struct mb_client *client = open_client(500, 0);
    uint16_t value = 0;
    CHECK_EQ(mb_read_holding_registers(client, 7, 77, 1, &value), 0);
    CHECK_EQ(value, 77);
    struct mb_client_stats stats;
    mb_client_stats(client, &stats);
    CHECK_EQ(stats.malformed, 1);
    finish(client);
}

TEST(a_damaged_answer_fails_with_the_crc_error_and_a_retried_read_succeeds) {
    start_pty_device();
    struct mb_client *client = open_client(150, 0);
    uint16_t value = 0;
    CHECK_EQ(mb_read_holding_registers(client, 3, 30, 1, &value), MB_ECRC);
    CHECK(strstr(mb_client_error_detail(client), "damaged") != NULL);
    mb_client_close(client);
    device.damaged_turn = 0;
    client = open_client(150, 1);
    CHECK_EQ(mb_read_holding_registers(client, 3, 31, 1, &value), 0);
    CHECK_EQ(value, 31);
    /* A write is never repeated: it fails with the damaged answer. */
    device.damaged_turn = 0;
    CHECK_EQ(mb_write_register(client, 3, 1, 1), MB_ECRC);
    finish(client);
}

TEST(a_broadcast_write_is_sent_and_waited_for_by_nobody_and_a_broadcast_read_is_refused) {
    start_pty_device();
    struct mb_client *client = open_client(500, 0);
    uint64_t start = now_us();
    CHECK_EQ(mb_write_register(client, 0, 3, 0x1234), 0);
    CHECK(now_us() - start < 100000);
    for (int i = 0; i < 100 && __atomic_load_n(&device.broadcasts, __ATOMIC_SEQ_CST) == 0; i++)
        usleep(5000);
    CHECK_EQ(__atomic_load_n(&device.broadcasts, __ATOMIC_SEQ_CST), 1);
    CHECK_EQ(device.last_broadcast_value, 0x1234);
    uint16_t value;
    int before = device.requests;
    CHECK_EQ(mb_read_holding_registers(client, 0, 0, 1, &value), MB_EINVAL);
    CHECK(strstr(mb_client_error_detail(client), "broadcast") != NULL);
    CHECK_EQ(mb_read_holding_registers(client, 250, 0, 1, &value), MB_EINVAL);
    usleep(20000);
    CHECK_EQ(device.requests, before); /* nothing was sent */
    /* The next request waits out the turnaround, then goes through. */
    CHECK_EQ(mb_read_holding_registers(client, 1, 8, 1, &value), 0);
    CHECK_EQ(value, 8);
    finish(client);
}

TEST(a_line_that_disappears_fails_the_call_and_reopening_a_gone_path_says_so) {
    start_pty_device();
    struct mb_client_options options = {.timeout_ms = 200, .reconnect = 1};
    struct mb_client *client = NULL;
    char detail[256] = "";
    CHECK_EQ(mb_client_open_serial(pty_path, &line_8n1, &options, &client, detail, sizeof detail),
             0);
    uint16_t value;
    CHECK_EQ(mb_read_holding_registers(client, 1, 1, 1, &value), 0);
    device.stop = 1;
    pthread_join(device.thread, NULL);
    close(device.fd); /* the adapter goes away */
    device.fd = -1;
    int rc = mb_read_holding_registers(client, 1, 1, 1, &value);
    CHECK(rc == MB_ECLOSED || rc == MB_ETIMEDOUT);
    close(pty_slave_fd); /* the path is gone once both ends are closed */
    rc = mb_read_holding_registers(client, 1, 1, 1, &value);
    CHECK(rc == MB_EADDRESS || rc == MB_ECLOSED);
    mb_client_close(client);
}

TEST(an_adapter_that_echoes_is_heard_past_with_rtu_echo_and_not_taken_for_the_answer) {
    start_pty_device();
    device.echo = 1; /* the request comes back, and the answer right behind it */
    struct mb_client_options options = {.timeout_ms = 300, .rtu_echo = 1};
    struct mb_client *client = NULL;
    char detail[256] = "";
    CHECK_EQ(mb_client_open_serial(pty_path, &line_8n1, &options, &client, detail, sizeof detail),
             0);
    uint16_t values[3] = {0};
    CHECK_EQ(mb_read_holding_registers(client, 1, 40, 3, values), 0);
    CHECK_EQ(values[2], 42);
    CHECK_EQ(mb_write_register(client, 1, 9, 0x0909), 0);
    CHECK_EQ(mb_read_holding_registers(client, 1, 50, 1, values), 0);
    CHECK_EQ(values[0], 50);
    struct mb_client_stats stats;
    mb_client_stats(client, &stats);
    CHECK_EQ(stats.malformed, 0);
    CHECK_EQ(stats.responses, 3);
    mb_client_close(client);
    /* Without it, the echo of a read is taken for a damaged answer, and the answer right
     * behind it is lost with it. */
    options.rtu_echo = 0;
    CHECK_EQ(mb_client_open_serial(pty_path, &line_8n1, &options, &client, detail, sizeof detail),
             0);
    CHECK(mb_read_holding_registers(client, 1, 40, 3, values) != 0);
    finish(client);
}

TEST(rtu_over_tcp_reads_and_writes_through_a_socket) {
    memset(&device, 0, sizeof device);
    device.listener = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(device.listener, (struct sockaddr *)&address, sizeof address), 0);
    CHECK_EQ(listen(device.listener, 1), 0);
    socklen_t length = sizeof address;
    getsockname(device.listener, (struct sockaddr *)&address, &length);
    CHECK_EQ(pthread_create(&device.thread, NULL, run_device, &device), 0);
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", ntohs(address.sin_port));
    struct mb_client_options options = {.timeout_ms = 500, .framing = MB_FRAMING_RTU};
    struct mb_client *client = NULL;
    char detail[256] = "";
    CHECK_EQ(mb_client_connect(target, &options, &client, detail, sizeof detail), 0);
    uint16_t values[4];
    CHECK_EQ(mb_read_holding_registers(client, 1, 200, 4, values), 0);
    CHECK_EQ(values[3], 203);
    CHECK_EQ(mb_write_register(client, 1, 1, 9), 0);
    CHECK_EQ(mb_read_holding_registers(client, 2, 0, 1, values), MB_ETIMEDOUT);
    CHECK_EQ(mb_read_holding_registers(client, 1, 9, 1, values), 0);
    CHECK_EQ(values[0], 9);
    /* An answer in two segments 50 ms apart is one frame over TCP. */
    CHECK_EQ(mb_read_holding_registers(client, 8, 300, 3, values), 0);
    CHECK_EQ(values[2], 302);
    mb_client_close(client);
    stop_device();
}

int main(void) {
    RUN(reads_and_writes_over_a_tty_get_the_devices_values);
    RUN(a_dead_unit_times_out_and_the_next_unit_is_served_at_once);
    RUN(a_late_answer_is_dropped_and_never_taken_for_the_next_request);
    RUN(an_answer_from_another_unit_is_not_taken);
    RUN(noise_before_the_answer_is_counted_and_the_answer_taken);
    RUN(a_damaged_answer_fails_with_the_crc_error_and_a_retried_read_succeeds);
    RUN(a_broadcast_write_is_sent_and_waited_for_by_nobody_and_a_broadcast_read_is_refused);
    RUN(a_line_that_disappears_fails_the_call_and_reopening_a_gone_path_says_so);
    RUN(an_adapter_that_echoes_is_heard_past_with_rtu_echo_and_not_taken_for_the_answer);
    RUN(rtu_over_tcp_reads_and_writes_through_a_socket);
    return harness_result();
}
