/* SPDX-License-Identifier: MIT */
/*
 * mbsec's RTU client against libmodbus 3.1.6's RTU server, over real tty paths: two openpty
 * pairs joined master to master by a thread (a null modem, as socat's pty pairs are), libmodbus
 * on one /dev/pts path, mbsec's client on the other. libmodbus sets its own termios (8N1 at
 * 115200; a pseudo-terminal cannot do parity), answers unit 17 from a mapping whose holding
 * registers are known values, and replies to writes; mbsec reads them back and checks the
 * values, writes and reads its writes back through libmodbus's mapping, gets libmodbus's
 * exception 02 for an address past the mapping, and times out on a unit libmodbus ignores.
 * Exits 0 when every check holds, 1 otherwise.
 *
 * With --device it runs no checks: it prints "device on PATH" (the free end) and serves until
 * its standard input closes, for the command-line tests (tests/interop/test_cli_rtu.sh). With
 * --null-modem it only joins two pseudo-terminals, prints "line PATH" for each, and bridges
 * them until its standard input closes (tests/interop/test_serve_rtu.sh).
 */
#define _GNU_SOURCE
#include <errno.h>
#include <modbus/modbus.h>
#include <poll.h>
#include <pthread.h>
#include <pty.h>
#include <stdio.h>
#include <string.h>
#include <termios.h>
#include <unistd.h>

#include "mbsec/client.h"
#include "mbsec/error.h"
#include "mbsec/serial.h"
#include "mbsec/transport.h"

#define UNIT 17
#define REGISTERS 100

static int failures;
#define EXPECT(cond, ...)                                                   \
    do {                                                                    \
        if (!(cond)) {                                                      \
            failures++;                                                     \
            fprintf(stderr, "FAIL %s:%d: %s: ", __FILE__, __LINE__, #cond); \
            fprintf(stderr, __VA_ARGS__);                                   \
            fputc('\n', stderr);                                            \
        }                                                                   \
    } while (0)

struct modem {
    int a, b; /* the two masters */
    volatile int stop;
};

/* Copies bytes between the two masters until told to stop. */
static void *null_modem(void *data) {
    struct modem *modem = data;
    uint8_t buffer[512];
    while (!modem->stop) {
        struct pollfd fds[2] = {{.fd = modem->a, .events = POLLIN},
                                {.fd = modem->b, .events = POLLIN}};
        if (poll(fds, 2, 10) <= 0)
            continue;
        for (int i = 0; i < 2; i++) {
            if (!(fds[i].revents & POLLIN))
                continue;
            ssize_t count = read(fds[i].fd, buffer, sizeof buffer);
            if (count > 0) {
                ssize_t written = write(i == 0 ? modem->b : modem->a, buffer, (size_t)count);
                (void)written;
            }
        }
    }
    return NULL;
}

struct server {
    char path[64];
    modbus_mapping_t *mapping;
    volatile int stop;
    int ready;
};

static void *run_libmodbus(void *data) {
    struct server *server = data;
    modbus_t *context = modbus_new_rtu(server->path, 115200, 'N', 8, 1);
    if (context == NULL || modbus_set_slave(context, UNIT) != 0 || modbus_connect(context) != 0) {
        fprintf(stderr, "libmodbus RTU server on %s: %s\n", server->path, modbus_strerror(errno));
        __atomic_store_n(&server->ready, -1, __ATOMIC_SEQ_CST);
        return NULL;
    }
    /* Short waits, so that the thread notices when it is told to stop. */
    modbus_set_indication_timeout(context, 0, 50000);
    __atomic_store_n(&server->ready, 1, __ATOMIC_SEQ_CST);
    uint8_t query[MODBUS_RTU_MAX_ADU_LENGTH];
    while (!server->stop) {
        int length = modbus_receive(context, query);
        if (length > 0)
            modbus_reply(context, query, length, server->mapping);
    }
    modbus_close(context);
    modbus_free(context);
    return NULL;
}

int main(int argc, char **argv) {
    int device_mode = argc > 1 && strcmp(argv[1], "--device") == 0;
    int modem_only = argc > 1 && strcmp(argv[1], "--null-modem") == 0;
    int master_a, slave_a, master_b, slave_b;
    struct server server = {0};
    char path_b[64];
    if (openpty(&master_a, &slave_a, server.path, NULL, NULL) != 0 ||
        openpty(&master_b, &slave_b, path_b, NULL, NULL) != 0) {
        perror("openpty");
        return 1;
    }
    struct termios raw;
    for (int i = 0; i < 2; i++) {
        int fd = i == 0 ? master_a : master_b;
        tcgetattr(fd, &raw);
        cfmakeraw(&raw);
        tcsetattr(fd, TCSANOW, &raw);
    }
    server.mapping = modbus_mapping_new(0, 0, REGISTERS, 0);
    for (int i = 0; i < REGISTERS; i++)
        server.mapping->tab_registers[i] = (uint16_t)(0x1000 + 3 * i);
    struct modem modem = {.a = master_a, .b = master_b};
    pthread_t modem_thread, server_thread;
    pthread_create(&modem_thread, NULL, null_modem, &modem);
    if (modem_only) {
        /* Two paths joined by the null modem, for two programs of the tests; until stdin
         * closes. Both slave sides stay open here: a pseudo-terminal nobody holds reads as hung
         * up on its master. */
        printf("line %s\nline %s\n", server.path, path_b);
        fflush(stdout);
        char ignored[64];
        while (read(0, ignored, sizeof ignored) > 0)
            ;
        modem.stop = 1;
        pthread_join(modem_thread, NULL);
        modbus_mapping_free(server.mapping);
        return 0;
    }
    pthread_create(&server_thread, NULL, run_libmodbus, &server);
    for (int i = 0; i < 200 && __atomic_load_n(&server.ready, __ATOMIC_SEQ_CST) == 0; i++)
        usleep(5000);
    EXPECT(__atomic_load_n(&server.ready, __ATOMIC_SEQ_CST) == 1, "libmodbus did not start");
    if (device_mode) {
        /* For the command-line tests: the free end's path, then serve until stdin closes. */
        printf("device on %s\n", path_b);
        fflush(stdout);
        char ignored[64];
        /* slave_b stays open: a pseudo-terminal whose slave side nobody holds reads as hung
         * up on its master, between two commands. */
        while (read(0, ignored, sizeof ignored) > 0)
            ;
    }

    struct mb_serial_config line = {.baud = 115200, .parity = 'N'};
    struct mb_client_options options = {.timeout_ms = 500};
    struct mb_client *client = NULL;
    char detail[256] = "";
    int rc = device_mode
                 ? -1
                 : mb_client_open_serial(path_b, &line, &options, &client, detail, sizeof detail);
    EXPECT(device_mode || rc == 0, "open %s: %s", path_b, detail);
    if (rc == 0) {
        uint16_t values[10] = {0};
        rc = mb_read_holding_registers(client, UNIT, 5, 10, values);
        EXPECT(rc == 0, "read: %s", mb_client_error_detail(client));
        for (int i = 0; i < 10; i++)
            EXPECT(values[i] == 0x1000 + 3 * (5 + i), "register %d: %04X", 5 + i, values[i]);
        rc = mb_write_register(client, UNIT, 50, 0xCAFE);
        EXPECT(rc == 0, "write: %s", mb_client_error_detail(client));
        const uint16_t many[4] = {11, 22, 33, 44};
        rc = mb_write_registers(client, UNIT, 60, 4, many);
        EXPECT(rc == 0, "write many: %s", mb_client_error_detail(client));
        rc = mb_read_holding_registers(client, UNIT, 50, 1, values);
        EXPECT(rc == 0 && values[0] == 0xCAFE, "read back 50: %d %04X", rc, values[0]);
        rc = mb_read_holding_registers(client, UNIT, 60, 4, values);
        EXPECT(rc == 0 && values[0] == 11 && values[3] == 44, "read back 60..63: %d", rc);
        /* What libmodbus itself holds now. */
        EXPECT(server.mapping->tab_registers[50] == 0xCAFE, "mapping[50] %04X",
               server.mapping->tab_registers[50]);
        EXPECT(server.mapping->tab_registers[62] == 33, "mapping[62] %u",
               server.mapping->tab_registers[62]);
        rc = mb_read_holding_registers(client, UNIT, REGISTERS - 2, 5, values);
        EXPECT(rc == MB_EX_ILLEGAL_DATA_ADDRESS, "past the mapping: %d (%s)", rc,
               mb_client_error_detail(client));
        /* Last: libmodbus's server takes the frame that follows a request for another unit as
         * that unit's answer ("confirmation to ignore"), as on a multi-drop bus it would be;
         * a request sent next may be eaten by it. */
        rc = mb_read_holding_registers(client, UNIT + 1, 0, 1, values);
        EXPECT(rc == MB_ETIMEDOUT, "another unit: %d", rc);
        mb_client_close(client);
    }
    server.stop = 1;
    pthread_join(server_thread, NULL);
    modem.stop = 1;
    pthread_join(modem_thread, NULL);
    modbus_mapping_free(server.mapping);
    close(master_a);
    close(slave_a);
    close(master_b);
    close(slave_b);
    if (device_mode)
        return failures == 0 ? 0 : 1;
    if (failures == 0)
        printf("rtu_libmodbus: every check passed\n");
    return failures == 0 ? 0 : 1;
}
