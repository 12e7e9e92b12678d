/* SPDX-License-Identifier: MIT */
/*
 * libmodbus 3.1.6, the incumbent C client, against `mbsec serve` (the default simulator: any unit
 * id, four tables of 65536 entries, all zero at start, FC 43/14 vendor "mbsec").
 *
 *     libmodbus_client [--libmodbus-server] HOST PORT
 *
 * Calls every request function libmodbus offers and checks the values that come back, the
 * exceptions it reports (errno EMBXILADD, ...) and the raw requests it can send. Prints one
 * "ok" or "not ok" line per check and exits 0 only if every check passed.
 *
 * --libmodbus-server: the peer is bench/libmodbus_server (to check this program itself): FC 8
 * and 43 are left out, because libmodbus's server frames requests by function code and
 * cannot read them, and its FC 17 identity is its own.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <modbus.h>
#include <poll.h>
#include <stdarg.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#define RESPONSE_TIMEOUT_SECONDS 2
#define MBAP_SIZE 7

static int passed;
static int failed;
static int peer_is_libmodbus;

__attribute__((format(printf, 2, 3))) static void report(int ok, const char *format, ...) {
    va_list arguments;

    va_start(arguments, format);
    printf("%s - ", ok ? "ok" : "not ok");
    vprintf(format, arguments);
    printf("\n");
    va_end(arguments);
    if (ok) {
        passed++;
    } else {
        failed++;
    }
}

/* A libmodbus call that returned -1 where success was expected. */
static void report_call(int rc, int expected, const char *what) {
    if (rc == expected) {
        report(1, "%s", what);
    } else {
        report(0, "%s: returned %d, expected %d (%s)", what, rc, expected,
               rc < 0 ? modbus_strerror(errno) : "short");
    }
}

/* A call that must fail with the given libmodbus errno (an exception from the server). */
static void report_exception(int rc, int expected_errno, const char *what) {
    int error = errno;

    if (rc == -1 && error == expected_errno) {
        report(1, "%s -> %s", what, modbus_strerror(expected_errno));
    } else if (rc == -1) {
        report(0, "%s: errno %d (%s), expected %s", what, error, modbus_strerror(error),
               modbus_strerror(expected_errno));
    } else {
        report(0, "%s: returned %d, expected the exception %s", what, rc,
               modbus_strerror(expected_errno));
    }
}

static long long now_ms(void) {
    struct timespec now;

    clock_gettime(CLOCK_MONOTONIC, &now);
    return (long long)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* Reads exactly `length` bytes from `fd` before `deadline` (ms). Returns 0 or -1. */
static int read_exactly(int fd, uint8_t *buffer, size_t length, long long deadline) {
    size_t have = 0;

    while (have < length) {
        long long left = deadline - now_ms();
        if (left <= 0) {
            return -1;
        }
        struct pollfd waiting = {.fd = fd, .events = POLLIN};
        int ready = poll(&waiting, 1, (int)left);
        if (ready < 0 && errno == EINTR) {
            continue;
        }
        if (ready <= 0) {
            return -1;
        }
        ssize_t got = read(fd, buffer + have, length - have);
        if (got <= 0) {
            return -1;
        }
        have += (size_t)got;
    }
    return 0;
}

/*
 * Sends `request` (unit id, function code, data) with modbus_send_raw_request() and reads the
 * answer framed by its MBAP length, as a Modbus/TCP receiver must: libmodbus 3.1.6 frames
 * responses by function code and has no rule for FC 8 or FC 43 (it would read two bytes of the
 * PDU and leave the rest in the socket). Returns the PDU length (PDU in `pdu`), or -1.
 */
static int raw_exchange(modbus_t *context, const uint8_t *request, int length, uint8_t *pdu,
                        size_t capacity, const char *what) {
    uint8_t header[MBAP_SIZE];
    long long deadline = now_ms() + RESPONSE_TIMEOUT_SECONDS * 1000;

    if (modbus_send_raw_request(context, request, length) != length + MBAP_SIZE - 1) {
        report(0, "%s: modbus_send_raw_request: %s", what, modbus_strerror(errno));
        return -1;
    }
    int fd = modbus_get_socket(context);
    if (read_exactly(fd, header, sizeof header, deadline) != 0) {
        report(0, "%s: no MBAP header within %d s", what, RESPONSE_TIMEOUT_SECONDS);
        return -1;
    }
    unsigned transaction = (unsigned)header[0] << 8 | header[1];
    unsigned protocol = (unsigned)header[2] << 8 | header[3];
    unsigned mbap_length = (unsigned)header[4] << 8 | header[5];
    /* modbus_send_raw_request() always sends transaction id 0. */
    if (transaction != 0 || protocol != 0 || mbap_length < 2 || mbap_length > 254 ||
        header[6] != request[0] || mbap_length - 1 > capacity) {
        report(0, "%s: bad MBAP header tid %u protocol %u length %u unit %u", what, transaction,
               protocol, mbap_length, header[6]);
        return -1;
    }
    if (read_exactly(fd, pdu, mbap_length - 1, deadline) != 0) {
        report(0, "%s: PDU of %u bytes not complete within %d s", what, mbap_length - 1,
               RESPONSE_TIMEOUT_SECONDS);
        return -1;
    }
    return (int)mbap_length - 1;
}

/* Sends a raw request whose answer must be the exception `function | 0x80, code`, reading it
 * with modbus_receive_confirmation() (libmodbus frames exception responses correctly). */
static void raw_expect_exception(modbus_t *context, const uint8_t *request, int length,
                                 uint8_t code, const char *what) {
    uint8_t response[MODBUS_TCP_MAX_ADU_LENGTH];

    if (modbus_send_raw_request(context, request, length) < 0) {
        report(0, "%s: modbus_send_raw_request: %s", what, modbus_strerror(errno));
        return;
    }
    int rc = modbus_receive_confirmation(context, response);
    if (rc != MBAP_SIZE + 2) {
        report(0, "%s: modbus_receive_confirmation returned %d (%s)", what, rc,
               rc < 0 ? modbus_strerror(errno) : "not a 2-byte exception PDU");
        return;
    }
    uint8_t function = response[MBAP_SIZE];
    uint8_t exception = response[MBAP_SIZE + 1];
    report(function == (request[1] | 0x80) && exception == code,
           "%s -> exception %02X (got function %02X, exception %02X)", what, code, function,
           exception);
}

static int bits_equal(const uint8_t *a, const uint8_t *b, int count) {
    for (int i = 0; i < count; i++) {
        if ((a[i] != 0) != (b[i] != 0)) {
            return 0;
        }
    }
    return 1;
}

static void check_bits(modbus_t *context) {
    static uint8_t written[MODBUS_MAX_WRITE_BITS];
    static uint8_t read_back[MODBUS_MAX_READ_BITS];
    uint8_t zeros[64] = {0};

    report_call(modbus_read_bits(context, 100, 20, read_back), 20, "FC 1 read_bits 20 at 100");
    report(bits_equal(read_back, zeros, 20), "FC 1 coils start at 0");

    report_call(modbus_write_bit(context, 101, 1), 1, "FC 5 write_bit 101 on");
    report_call(modbus_read_bits(context, 100, 3, read_back), 3, "FC 1 read_bits 3 at 100");
    report(read_back[0] == 0 && read_back[1] == 1 && read_back[2] == 0,
           "FC 5 then FC 1: coil 101 is on, 100 and 102 off (got %u %u %u)", read_back[0],
           read_back[1], read_back[2]);
    report_call(modbus_write_bit(context, 101, 0), 1, "FC 5 write_bit 101 off");
    report_call(modbus_read_bits(context, 101, 1, read_back), 1, "FC 1 read_bits 1 at 101");
    report(read_back[0] == 0, "FC 5 off then FC 1: coil 101 is off");

    for (int i = 0; i < 19; i++) {
        written[i] = (uint8_t)((i * 7 + 3) % 3 == 0);
    }
    report_call(modbus_write_bits(context, 200, 19, written), 19, "FC 15 write_bits 19 at 200");
    report_call(modbus_read_bits(context, 200, 19, read_back), 19, "FC 1 read_bits 19 at 200");
    report(bits_equal(written, read_back, 19), "FC 15 then FC 1: the 19 coils read back");

    for (int i = 0; i < MODBUS_MAX_WRITE_BITS; i++) {
        written[i] = (uint8_t)((i % 5) == 1 || (i % 11) == 0);
    }
    report_call(modbus_write_bits(context, 60000, MODBUS_MAX_WRITE_BITS, written),
                MODBUS_MAX_WRITE_BITS, "FC 15 write_bits 1968 (the maximum) at 60000");
    report_call(modbus_read_bits(context, 60000, MODBUS_MAX_READ_BITS, read_back),
                MODBUS_MAX_READ_BITS, "FC 1 read_bits 2000 (the maximum) at 60000");
    report(bits_equal(written, read_back, MODBUS_MAX_WRITE_BITS) &&
               bits_equal(read_back + MODBUS_MAX_WRITE_BITS, zeros,
                          MODBUS_MAX_READ_BITS - MODBUS_MAX_WRITE_BITS),
           "FC 15 then FC 1: 1968 coils read back, the 32 after them still 0");
    report_call(modbus_read_bits(context, 65535, 1, read_back), 1,
                "FC 1 read_bits 1 at 65535 (the last coil)");

    report_call(modbus_read_input_bits(context, 0, 50, read_back), 50,
                "FC 2 read_input_bits 50 at 0");
    report(bits_equal(read_back, zeros, 50), "FC 2 discrete inputs are 0");
    report_call(modbus_read_input_bits(context, 65530, 6, read_back), 6,
                "FC 2 read_input_bits 6 at 65530 (up to the last input)");
}

static void check_registers(modbus_t *context) {
    uint16_t written[MODBUS_MAX_READ_REGISTERS];
    uint16_t read_back[MODBUS_MAX_READ_REGISTERS];

    report_call(modbus_write_register(context, 300, 0xBEEF), 1, "FC 6 write_register 300");
    report_call(modbus_read_registers(context, 299, 3, read_back), 3,
                "FC 3 read_registers 3 at 299");
    report(read_back[0] == 0 && read_back[1] == 0xBEEF && read_back[2] == 0,
           "FC 6 then FC 3: 0x0000 0xBEEF 0x0000 (got 0x%04X 0x%04X 0x%04X)", read_back[0],
           read_back[1], read_back[2]);

    for (int i = 0; i < MODBUS_MAX_WRITE_REGISTERS; i++) {
        written[i] = (uint16_t)(0x1000 + i * 257);
    }
    report_call(modbus_write_registers(context, 400, MODBUS_MAX_WRITE_REGISTERS, written),
                MODBUS_MAX_WRITE_REGISTERS, "FC 16 write_registers 123 (the maximum) at 400");
    report_call(modbus_read_registers(context, 400, MODBUS_MAX_READ_REGISTERS, read_back),
                MODBUS_MAX_READ_REGISTERS, "FC 3 read_registers 125 (the maximum) at 400");
    report(memcmp(written, read_back, MODBUS_MAX_WRITE_REGISTERS * sizeof written[0]) == 0 &&
               read_back[123] == 0 && read_back[124] == 0,
           "FC 16 then FC 3: 123 registers read back, the 2 after them still 0");

    uint16_t last[2] = {0xCAFE, 0xF00D};
    report_call(modbus_write_registers(context, 65534, 2, last), 2,
                "FC 16 write_registers 2 at 65534 (up to the last register)");
    report_call(modbus_read_registers(context, 65534, 2, read_back), 2,
                "FC 3 read_registers 2 at 65534");
    report(read_back[0] == 0xCAFE && read_back[1] == 0xF00D, "registers 65534 and 65535 read back");

    report_call(modbus_read_input_registers(context, 0, MODBUS_MAX_READ_REGISTERS, read_back),
                MODBUS_MAX_READ_REGISTERS, "FC 4 read_input_registers 125 at 0");
    int zero = 1;
    for (int i = 0; i < MODBUS_MAX_READ_REGISTERS; i++) {
        zero = zero && read_back[i] == 0;
    }
    report(zero, "FC 4 input registers are 0");

    /* The spec's worked example: 0x12 AND 0xF2 OR 0x25 gives 0x17. */
    report_call(modbus_write_register(context, 500, 0x0012), 1, "FC 6 write_register 500 = 0x12");
    report_call(modbus_mask_write_register(context, 500, 0x00F2, 0x0025), 1,
                "FC 22 mask_write_register 500 AND 0xF2 OR 0x25");
    report_call(modbus_read_registers(context, 500, 1, read_back), 1, "FC 3 read register 500");
    report(read_back[0] == 0x0017, "FC 22: 0x12 AND 0xF2 OR 0x25 = 0x17 (got 0x%04X)",
           read_back[0]);

    uint16_t triple[3] = {1, 2, 3};
    report_call(modbus_write_and_read_registers(context, 600, 3, triple, 599, 5, read_back), 5,
                "FC 23 write_and_read_registers: write 3 at 600, read 5 at 599");
    report(read_back[0] == 0 && read_back[1] == 1 && read_back[2] == 2 && read_back[3] == 3 &&
               read_back[4] == 0,
           "FC 23 reads 0 1 2 3 0: the write happens before the read");
    uint16_t pair[2] = {0x7777, 0x8888};
    report_call(modbus_write_and_read_registers(context, 700, 2, pair, 700, 2, read_back), 2,
                "FC 23 write 2 at 700 and read the same 2");
    report(read_back[0] == 0x7777 && read_back[1] == 0x8888,
           "FC 23 on the same range reads what it wrote");
}

static void check_exceptions(modbus_t *context) {
    uint16_t registers[4];
    uint8_t bits[4];
    uint16_t values[2] = {1, 2};

    report_exception(modbus_read_registers(context, 65535, 2, registers), EMBXILADD,
                     "FC 3 read 2 at 65535 (past the end)");
    report_exception(modbus_read_input_registers(context, 65535, 2, registers), EMBXILADD,
                     "FC 4 read 2 at 65535");
    report_exception(modbus_read_bits(context, 65535, 2, bits), EMBXILADD, "FC 1 read 2 at 65535");
    report_exception(modbus_read_input_bits(context, 65535, 2, bits), EMBXILADD,
                     "FC 2 read 2 at 65535");
    report_exception(modbus_write_registers(context, 65535, 2, values), EMBXILADD,
                     "FC 16 write 2 at 65535");
    report_exception(modbus_write_and_read_registers(context, 0, 1, values, 65535, 2, registers),
                     EMBXILADD, "FC 23 read part past the end");

    /* Quantities libmodbus itself refuses to send: raw requests. */
    const uint8_t read_126[] = {0x01, 0x03, 0x00, 0x00, 0x00, 0x7E};
    raw_expect_exception(context, read_126, sizeof read_126, 0x03, "FC 3 quantity 126");
    const uint8_t read_0[] = {0x01, 0x01, 0x00, 0x00, 0x00, 0x00};
    raw_expect_exception(context, read_0, sizeof read_0, 0x03, "FC 1 quantity 0");
    const uint8_t bad_coil[] = {0x01, 0x05, 0x00, 0x10, 0x12, 0x34};
    raw_expect_exception(context, bad_coil, sizeof bad_coil, 0x03, "FC 5 value 0x1234");
    const uint8_t unknown[] = {0x01, 0x5A, 0x00, 0x00};
    raw_expect_exception(context, unknown, sizeof unknown, 0x01, "function code 0x5A");

    /* The connection survives exceptions. */
    report_call(modbus_read_registers(context, 300, 1, registers), 1,
                "FC 3 after the exceptions: the connection is still served");
    report(registers[0] == 0xBEEF, "register 300 still holds 0xBEEF");
}

static void check_raw(modbus_t *context) {
    uint8_t response[MODBUS_TCP_MAX_ADU_LENGTH];
    uint8_t pdu[256];

    /* A raw FC 3, framed by libmodbus itself. */
    const uint8_t read_300[] = {0x01, 0x03, 0x01, 0x2C, 0x00, 0x01};
    int rc = modbus_send_raw_request(context, read_300, sizeof read_300);
    report(rc == (int)sizeof read_300 + MBAP_SIZE - 1, "send_raw_request FC 3 read 1 at 300");
    rc = modbus_receive_confirmation(context, response);
    report(rc == MBAP_SIZE + 4 && response[6] == 0x01 && response[7] == 0x03 &&
               response[8] == 0x02 && response[9] == 0xBE && response[10] == 0xEF,
           "receive_confirmation: 03 02 BE EF (%d bytes)", rc);

    if (peer_is_libmodbus) {
        return;
    }

    const uint8_t echo[] = {0x01, 0x08, 0x00, 0x00, 0x12, 0x34};
    rc = raw_exchange(context, echo, sizeof echo, pdu, sizeof pdu, "FC 8/00 echo");
    if (rc >= 0) {
        report(rc == 5 && memcmp(pdu, echo + 1, 5) == 0, "FC 8/00 echoes 08 00 00 12 34");
    }

    const uint8_t basic[] = {0x01, 0x2B, 0x0E, 0x01, 0x00};
    rc = raw_exchange(context, basic, sizeof basic, pdu, sizeof pdu, "FC 43/14 basic");
    if (rc >= 0) {
        int found = 0;
        int offset = 7;
        int ok = rc >= 7 && pdu[0] == 0x2B && pdu[1] == 0x0E && pdu[2] == 0x01;
        for (int object = 0; ok && rc >= 7 && object < pdu[6]; object++) {
            if (offset + 2 > rc || offset + 2 + pdu[offset + 1] > rc) {
                ok = 0;
                break;
            }
            if (pdu[offset] == 0x00 && pdu[offset + 1] == 5 &&
                memcmp(pdu + offset + 2, "mbsec", 5) == 0) {
                found = 1;
            }
            offset += 2 + pdu[offset + 1];
        }
        report(ok && offset == rc, "FC 43/14 basic: well-formed, %d objects", rc >= 7 ? pdu[6] : 0);
        report(found, "FC 43/14 basic: VendorName (object 0) is \"mbsec\"");
    }

    const uint8_t one[] = {0x01, 0x2B, 0x0E, 0x04, 0x00};
    rc = raw_exchange(context, one, sizeof one, pdu, sizeof pdu, "FC 43/14 individual object 0");
    if (rc >= 0) {
        report(rc == 14 && pdu[2] == 0x04 && pdu[4] == 0x00 && pdu[6] == 1 && pdu[7] == 0x00 &&
                   pdu[8] == 5 && memcmp(pdu + 9, "mbsec", 5) == 0,
               "FC 43/14 read code 4 object 0: just \"mbsec\" (%d bytes)", rc);
    }

    const uint8_t bad_code[] = {0x01, 0x2B, 0x0E, 0x05, 0x00};
    rc = raw_exchange(context, bad_code, sizeof bad_code, pdu, sizeof pdu, "FC 43/14 code 5");
    if (rc >= 0) {
        report(rc == 2 && pdu[0] == 0xAB && pdu[1] == 0x03, "FC 43/14 read code 5 -> exception 03");
    }
}

static void check_server_id(modbus_t *context) {
    uint8_t id[256];

    int rc = modbus_report_slave_id(context, (int)sizeof id, id);
    if (rc < 2) {
        report(0, "FC 17 report_slave_id: returned %d (%s)", rc,
               rc < 0 ? modbus_strerror(errno) : "too short");
        return;
    }
    report(1, "FC 17 report_slave_id: %d bytes", rc);
    if (peer_is_libmodbus) {
        report(id[1] == 0xFF, "FC 17 libmodbus server: run indicator on");
        return;
    }
    report(rc >= 6 && memcmp(id, "mbsec", 5) == 0 && id[5] == 0xFF,
           "FC 17: server id \"mbsec\", run indicator 0xFF");
}

static void check_units(modbus_t *context) {
    uint16_t value = 0;

    /* The default simulator answers every unit id from one set of tables. */
    const int units[] = {0, 0xFF, 17, 247};
    for (size_t i = 0; i < sizeof units / sizeof units[0]; i++) {
        char what[64];
        modbus_set_slave(context, units[i]);
        snprintf(what, sizeof what, "FC 3 to unit %d", units[i]);
        report_call(modbus_read_registers(context, 300, 1, &value), 1, what);
        report(value == 0xBEEF, "unit %d sees the same tables (0x%04X)", units[i], value);
    }
    modbus_set_slave(context, 1);
}

int main(int argc, char **argv) {
    int first = 1;

    if (argc > 1 && strcmp(argv[1], "--libmodbus-server") == 0) {
        peer_is_libmodbus = 1;
        first = 2;
    }
    if (argc - first != 2) {
        fprintf(stderr, "usage: libmodbus_client [--libmodbus-server] HOST PORT\n");
        return 2;
    }
    int port = atoi(argv[first + 1]);
    modbus_t *context = modbus_new_tcp(argv[first], port);
    if (context == NULL) {
        fprintf(stderr, "modbus_new_tcp: %s\n", modbus_strerror(errno));
        return 1;
    }
    modbus_set_response_timeout(context, RESPONSE_TIMEOUT_SECONDS, 0);
    modbus_set_slave(context, 1);
    if (modbus_connect(context) != 0) {
        fprintf(stderr, "not ok - connect to %s:%d: %s\n", argv[first], port,
                modbus_strerror(errno));
        modbus_free(context);
        return 1;
    }
    printf("# libmodbus %s against %s:%d\n", LIBMODBUS_VERSION_STRING, argv[first], port);

    check_bits(context);
    check_registers(context);
    check_exceptions(context);
    check_raw(context);
    check_server_id(context);
    check_units(context);

    modbus_close(context);
    modbus_free(context);
    printf("%d passed, %d failed\n", passed, failed);
    return failed == 0 && passed > 0 ? 0 : 1;
}
