/* SPDX-License-Identifier: MIT */
/*
 * RTU transactions per second on a serial line, one request at a time, as a master on a bus
 * does: FC 3 for 10 registers to one unit, every answer checked, with mbsec's client or with
 * libmodbus's RTU client (when built with it), so that bench/serial-rtu can put them side by
 * side on the same line:
 *
 *     rtu_rate [--client mbsec|libmodbus] [--seconds S] [--baud B] PATH UNIT
 *
 * Prints one line:
 *
 *     result client=mbsec transactions=N tps=T p50_us=A p99_us=B errors=E
 *
 * where the latencies are from sending the request to the checked answer. Over a pseudo-terminal
 * the baud rate is not enforced: what is measured is the time the software adds. Exits 0 only
 * when no transaction failed.
 */
#define _GNU_SOURCE
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include <mbsec/client.h>
#include <mbsec/transport.h>
#ifdef MBSEC_RTU_RATE_LIBMODBUS
#include <modbus/modbus.h>
#endif

#define REGISTERS 10
#define BUCKETS 100000 /* 1 us each: 0..100 ms */

static uint64_t now_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

static uint32_t histogram[BUCKETS + 1];

static uint64_t percentile(uint64_t count, double fraction) {
    uint64_t wanted = (uint64_t)((double)count * fraction), seen = 0;
    for (uint32_t i = 0; i <= BUCKETS; i++) {
        seen += histogram[i];
        if (seen > wanted)
            return i;
    }
    return BUCKETS;
}

static void record(uint64_t elapsed) {
    histogram[elapsed < BUCKETS ? elapsed : BUCKETS]++;
}

int main(int argc, char **argv) {
    const char *client_name = "mbsec";
    double seconds = 3;
    uint32_t baud = 115200;
    int i = 1;
    for (; i + 1 < argc && strncmp(argv[i], "--", 2) == 0; i += 2) {
        if (strcmp(argv[i], "--client") == 0)
            client_name = argv[i + 1];
        else if (strcmp(argv[i], "--seconds") == 0)
            seconds = atof(argv[i + 1]);
        else if (strcmp(argv[i], "--baud") == 0)
            baud = (uint32_t)atoi(argv[i + 1]);
        else
            break;
    }
    if (argc - i != 2 || seconds <= 0) {
        fprintf(stderr, "usage: rtu_rate [--client mbsec|libmodbus] [--seconds S] [--baud B] "
                        "PATH UNIT\n");
        return 2;
    }
    const char *path = argv[i];
    int unit = atoi(argv[i + 1]);
    uint64_t transactions = 0, errors = 0;
    uint64_t end = now_us() + (uint64_t)(seconds * 1e6);
    uint16_t values[REGISTERS];

    if (strcmp(client_name, "mbsec") == 0) {
        struct mb_serial_config line = {.baud = baud, .parity = 'N'};
        struct mb_client_options options = {.timeout_ms = 500};
        struct mb_client *client;
        char detail[256];
        if (mb_client_open_serial(path, &line, &options, &client, detail, sizeof detail) != 0) {
            fprintf(stderr, "rtu_rate: %s\n", detail);
            return 1;
        }
        while (now_us() < end) {
            uint64_t start = now_us();
            int rc = mb_read_holding_registers(client, (uint8_t)unit, 0, REGISTERS, values);
            if (rc == 0)
                record(now_us() - start);
            else
                errors++;
            transactions++;
        }
        mb_client_close(client);
    } else if (strcmp(client_name, "libmodbus") == 0) {
#ifdef MBSEC_RTU_RATE_LIBMODBUS
        modbus_t *context = modbus_new_rtu(path, (int)baud, 'N', 8, 1);
        if (context == NULL || modbus_set_slave(context, unit) != 0 ||
            modbus_connect(context) != 0) {
            fprintf(stderr, "rtu_rate: libmodbus on %s failed\n", path);
            return 1;
        }
        modbus_set_response_timeout(context, 0, 500000);
        while (now_us() < end) {
            uint64_t start = now_us();
            int count = modbus_read_registers(context, 0, REGISTERS, values);
            if (count == REGISTERS)
                record(now_us() - start);
            else
                errors++;
            transactions++;
        }
        modbus_close(context);
        modbus_free(context);
#else
        fprintf(stderr, "rtu_rate: built without libmodbus\n");
        return 2;
#endif
    } else {
        fprintf(stderr, "rtu_rate: --client mbsec or libmodbus\n");
        return 2;
    }
    uint64_t good = transactions - errors;
    printf("result client=%s transactions=%llu tps=%.1f p50_us=%llu p99_us=%llu errors=%llu\n",
           client_name, (unsigned long long)transactions, (double)transactions / seconds,
           (unsigned long long)percentile(good, 0.5), (unsigned long long)percentile(good, 0.99),
           (unsigned long long)errors);
    return errors == 0 ? 0 : 1;
}
