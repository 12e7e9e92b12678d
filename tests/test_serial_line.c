/* SPDX-License-Identifier: MIT */
/*
 * mb_serial_open() on real tty paths: pseudo-terminal pairs (openpty) carry bytes through the
 * kernel's tty layer, so raw mode, the settings a driver keeps or refuses, and the line's lock
 * are the kernel's, not a mock's. A pseudo-terminal has no parity (it drops PARENB) and no
 * 7-bit characters (EINVAL), and no RS-485 mode or RTS line: each must be a clear error.
 */
#include <errno.h>
#include <fcntl.h>
#include <poll.h>
#include <pty.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <termios.h>
#include <unistd.h>

#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/serial.h"
#include "mbsec/transport.h"

struct pair {
    int master;
    int slave;
    char path[64];
};

static void open_pair(struct pair *pair) {
    CHECK_EQ(openpty(&pair->master, &pair->slave, pair->path, NULL, NULL), 0);
}

static void close_pair(struct pair *pair) {
    close(pair->master);
    close(pair->slave);
}

static const struct mb_serial_config line_8n1 = {.baud = 19200, .parity = 'N'};

/* Reads what arrives on `fd` within `ms` into buffer, up to `want` bytes. */
static size_t read_for(int fd, uint8_t *buffer, size_t want, int ms) {
    size_t got = 0;
    struct pollfd poller = {.fd = fd, .events = POLLIN};
    for (int waited = 0; got < want && waited < ms; waited += 10) {
        if (poll(&poller, 1, 10) <= 0)
            continue;
        ssize_t count = read(fd, buffer + got, want - got);
        if (count > 0)
            got += (size_t)count;
    }
    return got;
}

TEST(a_pseudo_terminal_opens_raw_at_8n1_and_every_byte_passes_both_ways_unchanged) {
    struct pair pair;
    open_pair(&pair);
    char error[256] = "";
    int fd = mb_serial_open(pair.path, &line_8n1, error, sizeof error);
    CHECK(fd >= 0);
    if (fd < 0) {
        fprintf(stderr, "  %s\n", error);
        close_pair(&pair);
        return;
    }
    CHECK(fcntl(fd, F_GETFL) & O_NONBLOCK);
    CHECK(fcntl(fd, F_GETFD) & FD_CLOEXEC);
    struct termios tty;
    CHECK_EQ(tcgetattr(fd, &tty), 0);
    CHECK_EQ(cfgetospeed(&tty), B19200);
    CHECK_EQ(tty.c_cflag & CSIZE, CS8);
    CHECK(!(tty.c_iflag & (IXON | ICRNL | INLCR | ISTRIP)));
    CHECK(!(tty.c_lflag & (ECHO | ICANON | ISIG)));
    CHECK(!(tty.c_oflag & OPOST));
    /* Every byte value, 0x0D, 0x11 and 0x13 (XON/XOFF) and 0x03 (^C) among them. */
    uint8_t all[256], back[256];
    for (int i = 0; i < 256; i++)
        all[i] = (uint8_t)i;
    CHECK_EQ(write(pair.master, all, sizeof all), 256);
    CHECK_EQ(read_for(fd, back, sizeof back, 2000), 256);
    CHECK(memcmp(all, back, sizeof all) == 0);
    CHECK_EQ(write(fd, all, sizeof all), 256);
    /* The master side of the pair is raw too, so that it reads what was written. */
    struct termios raw;
    tcgetattr(pair.master, &raw);
    cfmakeraw(&raw);
    tcsetattr(pair.master, TCSANOW, &raw);
    memset(back, 0, sizeof back);
    CHECK_EQ(read_for(pair.master, back, sizeof back, 2000), 256);
    CHECK(memcmp(all, back, sizeof all) == 0);
    /* Non-blocking: nothing to read is EAGAIN, not a wait. */
    uint8_t byte;
    CHECK_EQ(read(fd, &byte, 1), -1);
    CHECK_EQ(errno, EAGAIN);
    close(fd);
    close_pair(&pair);
}

TEST(standard_and_other_rates_are_set_and_read_back) {
    static const uint32_t rates[] = {1200, 9600, 19200, 38400, 115200, 921600, 250000, 31250};
    for (size_t i = 0; i < sizeof rates / sizeof rates[0]; i++) {
        struct pair pair;
        open_pair(&pair);
        struct mb_serial_config config = line_8n1;
        config.baud = rates[i];
        char error[256] = "";
        int fd = mb_serial_open(pair.path, &config, error, sizeof error);
        CHECK(fd >= 0);
        if (fd < 0)
            fprintf(stderr, "  %u baud: %s\n", rates[i], error);
        else
            close(fd);
        close_pair(&pair);
    }
}

TEST(modbus_default_8e1_on_a_pseudo_terminal_is_refused_with_the_reason) {
    struct pair pair;
    open_pair(&pair);
    char error[256] = "";
    int fd = mb_serial_open(pair.path, NULL, error, sizeof error);
    CHECK_EQ(fd, MB_EUNSUPPORTED);
    CHECK(strstr(error, "parity even") != NULL);
    CHECK(strstr(error, "keeps none") != NULL);
    CHECK(strstr(error, pair.path) != NULL);
    struct mb_serial_config odd = line_8n1;
    odd.parity = 'O';
    CHECK_EQ(mb_serial_open(pair.path, &odd, error, sizeof error), MB_EUNSUPPORTED);
    CHECK(strstr(error, "parity odd") != NULL);
    close_pair(&pair);
}

TEST(seven_data_bits_refused_by_the_device_is_unsupported_not_a_crash) {
    struct pair pair;
    open_pair(&pair);
    struct mb_serial_config config = line_8n1;
    config.data_bits = 7;
    char error[256] = "";
    int fd = mb_serial_open(pair.path, &config, error, sizeof error);
    CHECK_EQ(fd, MB_EUNSUPPORTED);
    CHECK(strstr(error, "7 data bits") != NULL);
    close_pair(&pair);
}

TEST(two_stop_bits_are_kept) {
    struct pair pair;
    open_pair(&pair);
    struct mb_serial_config config = line_8n1;
    config.stop_bits = 2;
    char error[256] = "";
    int fd = mb_serial_open(pair.path, &config, error, sizeof error);
    CHECK(fd >= 0);
    if (fd >= 0) {
        struct termios tty;
        tcgetattr(fd, &tty);
        CHECK(tty.c_cflag & CSTOPB);
        close(fd);
    }
    close_pair(&pair);
}

TEST(a_second_program_on_the_same_line_is_refused_unless_both_share_it) {
    struct pair pair;
    open_pair(&pair);
    char error[256] = "";
    int first = mb_serial_open(pair.path, &line_8n1, error, sizeof error);
    CHECK(first >= 0);
    int second = mb_serial_open(pair.path, &line_8n1, error, sizeof error);
    CHECK_EQ(second, MB_EBUSY);
    CHECK(strstr(error, "in use by another program") != NULL ||
          strstr(error, "exclusive use") != NULL);
    close(first);
    /* Once the first lets go, the line is free again. */
    int again = mb_serial_open(pair.path, &line_8n1, error, sizeof error);
    CHECK(again >= 0);
    close(again);
    struct mb_serial_config shared = line_8n1;
    shared.shared = 1;
    int a = mb_serial_open(pair.path, &shared, error, sizeof error);
    int b = mb_serial_open(pair.path, &shared, error, sizeof error);
    CHECK(a >= 0);
    CHECK(b >= 0);
    close(a);
    close(b);
    close_pair(&pair);
}

TEST(rs485_modes_on_a_device_without_them_are_refused_with_advice) {
    struct pair pair;
    open_pair(&pair);
    char error[256] = "";
    struct mb_serial_config config = line_8n1;
    config.rs485 = MB_RS485_KERNEL;
    CHECK_EQ(mb_serial_open(pair.path, &config, error, sizeof error), MB_EUNSUPPORTED);
    CHECK(strstr(error, "no RS-485 mode") != NULL);
    config.rs485 = MB_RS485_RTS;
    CHECK_EQ(mb_serial_open(pair.path, &config, error, sizeof error), MB_EUNSUPPORTED);
    CHECK(strstr(error, "RTS") != NULL);
    /* Refused, the line is not left locked. */
    int fd = mb_serial_open(pair.path, &line_8n1, error, sizeof error);
    CHECK(fd >= 0);
    /* A transport that toggles RTS on a line without one: its write fails cleanly, nothing
     * is written, and the transport closes as any other. */
    struct mb_transport *transport = NULL;
    config.rs485 = MB_RS485_RTS;
    CHECK_EQ(mb_serial_transport_create_for(fd, &config, &transport), 0);
    CHECK_EQ(transport->ops->write(transport, "\x01\x03", 2), MB_EIO);
    uint8_t seen[8];
    CHECK_EQ(read_for(pair.master, seen, sizeof seen, 50), 0);
    transport->ops->close(transport);
    /* Without RTS toggling it is the plain serial transport. */
    fd = mb_serial_open(pair.path, &line_8n1, error, sizeof error);
    CHECK(fd >= 0);
    CHECK_EQ(mb_serial_transport_create_for(fd, &line_8n1, &transport), 0);
    CHECK_EQ(transport->ops->write(transport, "\x01\x03", 2), 2);
    CHECK_EQ(read_for(pair.master, seen, 2, 500), 2);
    transport->ops->close(transport);
    CHECK_EQ(mb_serial_transport_create_for(-1, &config, &transport), MB_EINVAL);
    close_pair(&pair);
}

TEST(paths_that_are_no_serial_line_get_a_clear_error) {
    char error[256] = "";
    CHECK_EQ(mb_serial_open("/dev/null", &line_8n1, error, sizeof error), MB_EADDRESS);
    CHECK(strstr(error, "not a serial line") != NULL);
    CHECK_EQ(mb_serial_open("/nonexistent/ttyUSB9", &line_8n1, error, sizeof error), MB_EADDRESS);
    CHECK(strstr(error, "no such serial device") != NULL);
    CHECK_EQ(mb_serial_open("", &line_8n1, error, sizeof error), MB_EINVAL);
    CHECK_EQ(mb_serial_open(NULL, &line_8n1, error, sizeof error), MB_EINVAL);
    /* A regular file is not a tty either. */
    char file[] = "/tmp/mbsec-serial-XXXXXX";
    int temp = mkstemp(file);
    CHECK(temp >= 0);
    CHECK_EQ(mb_serial_open(file, &line_8n1, error, sizeof error), MB_EADDRESS);
    close(temp);
    unlink(file);
}

TEST(settings_out_of_range_are_refused_before_the_device_is_touched) {
    char error[256] = "";
    struct mb_serial_config config = line_8n1;
    config.data_bits = 6;
    CHECK_EQ(mb_serial_open("/dev/null", &config, error, sizeof error), MB_EINVAL);
    CHECK(strstr(error, "6 data bits") != NULL);
    config = line_8n1;
    config.parity = 'X';
    CHECK_EQ(mb_serial_open("/dev/null", &config, error, sizeof error), MB_EINVAL);
    config = line_8n1;
    config.stop_bits = 3;
    CHECK_EQ(mb_serial_open("/dev/null", &config, error, sizeof error), MB_EINVAL);
    config = line_8n1;
    config.baud = 5000000;
    CHECK_EQ(mb_serial_open("/dev/null", &config, error, sizeof error), MB_EINVAL);
    config = line_8n1;
    config.rs485 = (enum mb_serial_rs485)7;
    CHECK_EQ(mb_serial_open("/dev/null", &config, error, sizeof error), MB_EINVAL);
    config = line_8n1;
    config.rs485_delay_before_ms = 5000;
    CHECK_EQ(mb_serial_open("/dev/null", &config, error, sizeof error), MB_EINVAL);
    /* No error buffer: the code alone. */
    CHECK_EQ(mb_serial_open("/dev/null", &config, NULL, 0), MB_EINVAL);
}

TEST(a_line_that_disappears_reads_as_an_error_not_as_silence) {
    struct pair pair;
    open_pair(&pair);
    char error[256] = "";
    int fd = mb_serial_open(pair.path, &line_8n1, error, sizeof error);
    CHECK(fd >= 0);
    close(pair.master); /* the other end goes away, as an unplugged USB adapter */
    struct pollfd poller = {.fd = fd, .events = POLLIN};
    CHECK_EQ(poll(&poller, 1, 1000), 1);
    CHECK(poller.revents & (POLLHUP | POLLERR | POLLIN));
    uint8_t byte;
    ssize_t count = read(fd, &byte, 1);
    CHECK(count == 0 || (count < 0 && errno == EIO));
    close(fd);
    close(pair.slave);
}

int main(void) {
    RUN(a_pseudo_terminal_opens_raw_at_8n1_and_every_byte_passes_both_ways_unchanged);
    RUN(standard_and_other_rates_are_set_and_read_back);
    RUN(modbus_default_8e1_on_a_pseudo_terminal_is_refused_with_the_reason);
    RUN(seven_data_bits_refused_by_the_device_is_unsupported_not_a_crash);
    RUN(two_stop_bits_are_kept);
    RUN(a_second_program_on_the_same_line_is_refused_unless_both_share_it);
    RUN(rs485_modes_on_a_device_without_them_are_refused_with_advice);
    RUN(paths_that_are_no_serial_line_get_a_clear_error);
    RUN(settings_out_of_range_are_refused_before_the_device_is_touched);
    RUN(a_line_that_disappears_reads_as_an_error_not_as_silence);
    return harness_result();
}
