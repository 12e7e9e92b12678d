/* SPDX-License-Identifier: MIT */
/*
 * Opening a serial line for Modbus: termios in raw mode, any baud rate the driver takes, the
 * line locked for this program, RS-485 through the driver where asked, and every setting read
 * back, because drivers (and pseudo-terminals) may keep another one without saying so.
 */
#include <errno.h>
#include <fcntl.h>
#include <linux/serial.h>
#include <poll.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/ioctl.h>
#include <sys/stat.h>
#include <termios.h>
#include <time.h>
#include <unistd.h>

#include "mbsec/error.h"
#include "mbsec/serial.h"
#include "mbsec/transport.h"
#include "transport/fd_transport.h"

#define DEFAULT_BAUD 19200

/* The kernel's struct termios2 (its header cannot be included next to <termios.h>), through
 * which a driver takes any rate (BOTHER), not only the B-constants. Its layout is the generic
 * one, which the common Debian architectures share. */
#if defined(__x86_64__) || defined(__i386__) || defined(__aarch64__) || defined(__arm__) || \
    defined(__riscv)
#define HAVE_TERMIOS2 1
struct kernel_termios2 {
    tcflag_t c_iflag, c_oflag, c_cflag, c_lflag;
    cc_t c_line;
    cc_t c_cc[19];
    speed_t c_ispeed, c_ospeed;
};
#define GET_TERMIOS2 _IOR('T', 0x2A, struct kernel_termios2)
#define SET_TERMIOS2 _IOW('T', 0x2B, struct kernel_termios2)
#define KERNEL_CBAUD 0010017
#define KERNEL_BOTHER 0010000
#define KERNEL_IBSHIFT 16
#endif

static const struct {
    uint32_t baud;
    speed_t code;
} standard_rates[] = {
    {1200, B1200},       {1800, B1800},       {2400, B2400},       {4800, B4800},
    {9600, B9600},       {19200, B19200},     {38400, B38400},     {57600, B57600},
    {115200, B115200},   {230400, B230400},   {460800, B460800},   {500000, B500000},
    {576000, B576000},   {921600, B921600},   {1000000, B1000000}, {1152000, B1152000},
    {1500000, B1500000}, {2000000, B2000000}, {3000000, B3000000}, {4000000, B4000000},
};

static int say(char *error, size_t size, int rc, const char *fmt, ...)
    __attribute__((format(printf, 4, 5)));
static int say(char *error, size_t size, int rc, const char *fmt, ...) {
    if (error != NULL && size > 0) {
        va_list args;
        va_start(args, fmt);
        vsnprintf(error, size, fmt, args);
        va_end(args);
    }
    return rc;
}

static speed_t standard_code(uint32_t baud) {
    for (size_t i = 0; i < sizeof standard_rates / sizeof standard_rates[0]; i++)
        if (standard_rates[i].baud == baud)
            return standard_rates[i].code;
    return 0;
}

static const char *parity_name(char parity) {
    return parity == 'N' ? "none" : parity == 'E' ? "even" : "odd";
}

/* The settings with the defaults filled in; MB_EINVAL when one is out of range. */
static int complete(const struct mb_serial_config *given, struct mb_serial_config *config,
                    char *error, size_t size) {
    static const struct mb_serial_config none = {0};
    *config = given != NULL ? *given : none;
    if (config->baud == 0)
        config->baud = DEFAULT_BAUD;
    if (config->data_bits == 0)
        config->data_bits = 8;
    if (config->parity == 0)
        config->parity = 'E';
    if (config->stop_bits == 0)
        config->stop_bits = 1;
    if (config->baud < 50 || config->baud > 4000000)
        return say(error, size, MB_EINVAL, "baud rate %u outside 50..4000000", config->baud);
    if (config->data_bits != 7 && config->data_bits != 8)
        return say(error, size, MB_EINVAL, "%u data bits: 7 or 8", config->data_bits);
    if (config->parity != 'N' && config->parity != 'E' && config->parity != 'O')
        return say(error, size, MB_EINVAL, "parity '%c': none (N), even (E) or odd (O)",
                   config->parity);
    if (config->stop_bits != 1 && config->stop_bits != 2)
        return say(error, size, MB_EINVAL, "%u stop bits: 1 or 2", config->stop_bits);
    if (config->rs485 != MB_RS485_NONE && config->rs485 != MB_RS485_KERNEL &&
        config->rs485 != MB_RS485_RTS)
        return say(error, size, MB_EINVAL, "RS-485 mode %d unknown", (int)config->rs485);
    if (config->rs485_delay_before_ms > 1000 || config->rs485_delay_after_ms > 1000)
        return say(error, size, MB_EINVAL, "RS-485 delays above 1000 ms");
    return 0;
}

/* Raw mode with the character format of `config`: no echo, no signals, no translation of any
 * byte (0x0D, 0x11 and 0x13 are data in RTU), no flow control. */
static void make_raw(struct termios *tty, const struct mb_serial_config *config) {
    cfmakeraw(tty);
    tty->c_iflag &= (tcflag_t) ~(IXON | IXOFF | IXANY | INPCK | ISTRIP | IGNPAR | PARMRK);
    tty->c_cflag &= (tcflag_t) ~(CSIZE | PARENB | PARODD | CSTOPB | CRTSCTS | HUPCL);
    tty->c_cflag |= CLOCAL | CREAD | (config->data_bits == 7 ? CS7 : CS8);
    if (config->parity != 'N')
        tty->c_cflag |= PARENB | (config->parity == 'O' ? PARODD : 0);
    if (config->stop_bits == 2)
        tty->c_cflag |= CSTOPB;
    /* VMIN 1: with O_NONBLOCK a read that finds nothing is EAGAIN. With VMIN 0 and VTIME 0 the
     * kernel returns 0 instead, which is also what a line that went away reads as. */
    tty->c_cc[VMIN] = 1;
    tty->c_cc[VTIME] = 0;
}

/* Sets a rate that has no B-constant through termios2. */
static int set_other_rate(int fd, uint32_t baud) {
#ifdef HAVE_TERMIOS2
    struct kernel_termios2 tty;
    if (ioctl(fd, GET_TERMIOS2, &tty) != 0)
        return -1;
    tty.c_cflag &= ~(tcflag_t)(KERNEL_CBAUD | (KERNEL_CBAUD << KERNEL_IBSHIFT));
    tty.c_cflag |= KERNEL_BOTHER | (KERNEL_BOTHER << KERNEL_IBSHIFT);
    tty.c_ispeed = tty.c_ospeed = baud;
    return ioctl(fd, SET_TERMIOS2, &tty);
#else
    (void)fd;
    (void)baud;
    errno = EINVAL;
    return -1;
#endif
}

/* The output rate the driver holds now, in baud; 0 when it cannot be read. */
static uint32_t rate_in_force(int fd) {
#ifdef HAVE_TERMIOS2
    struct kernel_termios2 kernel;
    if (ioctl(fd, GET_TERMIOS2, &kernel) == 0)
        return (uint32_t)kernel.c_ospeed;
#endif
    struct termios tty;
    if (tcgetattr(fd, &tty) != 0)
        return 0;
    speed_t code = cfgetospeed(&tty);
    for (size_t i = 0; i < sizeof standard_rates / sizeof standard_rates[0]; i++)
        if (standard_rates[i].code == code)
            return standard_rates[i].baud;
    return 0;
}

/* Applies the character format and rate, then reads them back. */
static int apply_format(int fd, const char *path, const struct mb_serial_config *config,
                        char *error, size_t size) {
    struct termios tty;
    if (tcgetattr(fd, &tty) != 0)
        return say(error, size, MB_ESYSTEM, "%s: cannot read its settings: %s", path,
                   strerror(errno));
    make_raw(&tty, config);
    speed_t code = standard_code(config->baud);
    if (code != 0) {
        cfsetispeed(&tty, code);
        cfsetospeed(&tty, code);
    }
    if (tcsetattr(fd, TCSANOW, &tty) != 0) {
        int failure = errno;
        if (failure == EINVAL)
            return say(error, size, MB_EUNSUPPORTED,
                       "%s refuses %u data bits, parity %s, %u stop bit(s) at %u baud", path,
                       config->data_bits, parity_name(config->parity), config->stop_bits,
                       config->baud);
        return say(error, size, MB_ESYSTEM, "%s: cannot apply its settings: %s", path,
                   strerror(failure));
    }
    if (code == 0 && set_other_rate(fd, config->baud) != 0)
        return say(error, size, MB_EUNSUPPORTED, "%s refuses %u baud: %s", path, config->baud,
                   strerror(errno));

    /* What the driver kept. */
    struct termios kept;
    if (tcgetattr(fd, &kept) != 0)
        return say(error, size, MB_ESYSTEM, "%s: cannot read its settings back: %s", path,
                   strerror(errno));
    unsigned bits = (kept.c_cflag & CSIZE) == CS7 ? 7 : (kept.c_cflag & CSIZE) == CS8 ? 8 : 0;
    char parity = !(kept.c_cflag & PARENB) ? 'N' : (kept.c_cflag & PARODD) ? 'O' : 'E';
    unsigned stops = (kept.c_cflag & CSTOPB) ? 2 : 1;
    if (bits != config->data_bits)
        return say(error, size, MB_EUNSUPPORTED, "%s does not take %u data bits (it keeps %u)",
                   path, config->data_bits, bits);
    if (parity != config->parity)
        return say(error, size, MB_EUNSUPPORTED,
                   "%s does not take parity %s (it keeps %s); a pseudo-terminal has no parity: "
                   "use parity none there",
                   path, parity_name(config->parity), parity_name(parity));
    if (stops != config->stop_bits)
        return say(error, size, MB_EUNSUPPORTED, "%s does not take %u stop bits (it keeps %u)",
                   path, config->stop_bits, stops);
    uint32_t rate = rate_in_force(fd);
    if (rate != 0 && rate != config->baud) {
        /* Drivers round to what their clock divides to: within 2% a UART still talks. */
        uint32_t off = rate > config->baud ? rate - config->baud : config->baud - rate;
        if (off * 50 > config->baud)
            return say(error, size, MB_EUNSUPPORTED, "%s does not take %u baud (it runs at %u)",
                       path, config->baud, rate);
    }
    return 0;
}

static int apply_rs485(int fd, const char *path, const struct mb_serial_config *config, char *error,
                       size_t size) {
    if (config->rs485 == MB_RS485_KERNEL) {
        struct serial_rs485 mode;
        memset(&mode, 0, sizeof mode);
        if (ioctl(fd, TIOCGRS485, &mode) != 0)
            return say(error, size, MB_EUNSUPPORTED,
                       "%s: its driver has no RS-485 mode (%s); with an adapter that does not "
                       "switch by itself, let mbsec toggle RTS instead",
                       path, strerror(errno));
        mode.flags |= SER_RS485_ENABLED | SER_RS485_RTS_ON_SEND;
        mode.flags &= ~(uint32_t)(SER_RS485_RTS_AFTER_SEND | SER_RS485_RX_DURING_TX);
        mode.delay_rts_before_send = config->rs485_delay_before_ms;
        mode.delay_rts_after_send = config->rs485_delay_after_ms;
        if (ioctl(fd, TIOCSRS485, &mode) != 0 || ioctl(fd, TIOCGRS485, &mode) != 0 ||
            !(mode.flags & SER_RS485_ENABLED))
            return say(error, size, MB_EUNSUPPORTED, "%s refuses RS-485 mode: %s", path,
                       strerror(errno));
    } else if (config->rs485 == MB_RS485_RTS) {
        /* Receiving until there is something to send: the transmitter off. */
        int rts = TIOCM_RTS;
        if (ioctl(fd, TIOCMBIC, &rts) != 0)
            return say(error, size, MB_EUNSUPPORTED, "%s has no RTS line to toggle: %s", path,
                       strerror(errno));
    }
    return 0;
}

int mb_serial_open(const char *path, const struct mb_serial_config *given, char *error,
                   size_t error_size) {
    struct mb_serial_config config;
    if (path == NULL || path[0] == '\0')
        return say(error, error_size, MB_EINVAL, "no serial device named");
    int rc = complete(given, &config, error, error_size);
    if (rc != 0)
        return rc;
    int fd = open(path, O_RDWR | O_NOCTTY | O_NONBLOCK | O_CLOEXEC);
    if (fd < 0) {
        int failure = errno;
        if (failure == ENOENT || failure == ENODEV || failure == ENXIO || failure == ENOTDIR)
            return say(error, error_size, MB_EADDRESS, "%s: no such serial device", path);
        if (failure == EACCES || failure == EPERM)
            return say(error, error_size, MB_EACCES,
                       "%s: permission denied (serial devices usually belong to the group "
                       "dialout)",
                       path);
        if (failure == EBUSY)
            return say(error, error_size, MB_EBUSY, "%s is in exclusive use by another program",
                       path);
        return say(error, error_size, MB_ESYSTEM, "%s: %s", path, strerror(failure));
    }
    if (!isatty(fd)) {
        close(fd);
        return say(error, error_size, MB_EADDRESS, "%s is not a serial line (not a tty)", path);
    }
    if (!config.shared) {
        if (flock(fd, LOCK_EX | LOCK_NB) != 0) {
            int failure = errno;
            close(fd);
            if (failure == EWOULDBLOCK)
                return say(error, error_size, MB_EBUSY,
                           "%s is in use by another program (it holds the line's lock)", path);
            return say(error, error_size, MB_ESYSTEM, "%s: cannot lock it: %s", path,
                       strerror(failure));
        }
        /* Not fatal: a lock is what cooperating programs check; this keeps out the others. */
        (void)ioctl(fd, TIOCEXCL);
    }
    rc = apply_format(fd, path, &config, error, error_size);
    if (rc == 0)
        rc = apply_rs485(fd, path, &config, error, error_size);
    if (rc == 0 && tcflush(fd, TCIOFLUSH) != 0)
        rc = say(error, error_size, MB_ESYSTEM, "%s: cannot flush it: %s", path, strerror(errno));
    if (rc != 0) {
        close(fd);
        return rc;
    }
    return fd;
}

/* ---- the transport ---- */

static long line_read(struct mb_transport *transport, void *buffer, size_t capacity) {
    for (;;) {
        ssize_t count = read(transport->fd, buffer, capacity);
        if (count > 0) {
            transport->blocked_on = 0;
            return (long)count;
        }
        if (count < 0 && errno == EINTR)
            continue;
        if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            transport->blocked_on = MB_IO_READ;
            return MB_EAGAIN;
        }
        /* 0 or EIO: the device went away (a USB adapter unplugged, the other end of a
         * pseudo-terminal closed). With VMIN 1 on a non-blocking descriptor a read that finds
         * nothing is EAGAIN, so 0 means only that. */
        return mb__fd_fail(transport, MB_ECLOSED);
    }
}

static long line_write(struct mb_transport *transport, const void *data, size_t length) {
    for (;;) {
        ssize_t count = write(transport->fd, data, length);
        if (count >= 0) {
            transport->blocked_on = 0;
            return (long)count;
        }
        if (errno == EINTR)
            continue;
        if (errno == EAGAIN || errno == EWOULDBLOCK) {
            transport->blocked_on = MB_IO_WRITE;
            return MB_EAGAIN;
        }
        return mb__fd_fail(transport, errno == EIO || errno == ENXIO ? MB_ECLOSED : MB_EIO);
    }
}

static const struct mb_transport_ops line_ops = {
    .name = "serial",
    .read = line_read,
    .write = line_write,
    .pending = mb__fd_pending,
    .want = mb__fd_want,
    .close = mb__fd_close,
};

int mb_serial_transport_create(int fd, struct mb_transport **transport_out) {
    return mb__fd_transport_create(fd, &line_ops, transport_out);
}

/* ---- RTS toggled by mbsec (MB_RS485_RTS) ---- */

/* The transport head, and what toggling needs. mb__fd_close() frees it through the head. */
struct rts_line {
    struct mb_transport head;
    uint32_t before_ms, after_ms;
};

static void pause_ms(uint32_t ms) {
    struct timespec pause = {.tv_sec = ms / 1000, .tv_nsec = (long)(ms % 1000) * 1000000L};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
}

/*
 * A frame with the transmitter switched on for it: RTS raised, the frame written whole (waiting
 * for the driver if it must), tcdrain() until the last character has left the UART, RTS
 * lowered. This blocks the caller for the frame's time on the wire, as every user-space RTS
 * toggle must: lowering RTS a moment too early cuts the frame's last character off, too late
 * talks over the answer. Drivers with an RS-485 mode (MB_RS485_KERNEL) do it without blocking.
 */
static long rts_write(struct mb_transport *transport, const void *data, size_t length) {
    struct rts_line *line = (struct rts_line *)transport;
    int rts = TIOCM_RTS;
    if (ioctl(transport->fd, TIOCMBIS, &rts) != 0)
        return mb__fd_fail(transport, MB_EIO);
    if (line->before_ms > 0)
        pause_ms(line->before_ms);
    size_t written = 0;
    long result = 0;
    while (written < length) {
        ssize_t count = write(transport->fd, (const uint8_t *)data + written, length - written);
        if (count > 0) {
            written += (size_t)count;
            continue;
        }
        if (count < 0 && errno == EINTR)
            continue;
        if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            struct pollfd poller = {.fd = transport->fd, .events = POLLOUT};
            if (poll(&poller, 1, 1000) > 0)
                continue;
        }
        result = mb__fd_fail(transport,
                             count < 0 && (errno == EIO || errno == ENXIO) ? MB_ECLOSED : MB_EIO);
        break;
    }
    if (result == 0 && tcdrain(transport->fd) != 0)
        result = mb__fd_fail(transport, MB_EIO);
    if (line->after_ms > 0)
        pause_ms(line->after_ms);
    ioctl(transport->fd, TIOCMBIC, &rts);
    if (result != 0)
        return result;
    transport->blocked_on = 0;
    return (long)written;
}

static const struct mb_transport_ops rts_ops = {
    .name = "serial",
    .read = line_read,
    .write = rts_write,
    .pending = mb__fd_pending,
    .want = mb__fd_want,
    .close = mb__fd_close,
};

int mb_serial_transport_create_for(int fd, const struct mb_serial_config *config,
                                   struct mb_transport **transport_out) {
    if (config == NULL || config->rs485 != MB_RS485_RTS)
        return mb_serial_transport_create(fd, transport_out);
    if (fd < 0 || transport_out == NULL)
        return MB_EINVAL;
    struct rts_line *line = calloc(1, sizeof *line);
    if (line == NULL)
        return MB_ENOMEM;
    line->head.ops = &rts_ops;
    line->head.fd = fd;
    line->head.detail = "";
    line->before_ms = config->rs485_delay_before_ms;
    line->after_ms = config->rs485_delay_after_ms;
    *transport_out = &line->head;
    return 0;
}
