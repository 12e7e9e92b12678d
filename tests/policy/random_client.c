/* SPDX-License-Identifier: MIT */
/*
 * A libmodbus 3.1.6 client in the manner of libmodbus's own tests/random-test-client.c: writes
 * coils and holding registers at pseudo-random addresses with pseudo-random values, reads each
 * write back and checks it, and reads and writes at once with FC 23. The sequence depends only
 * on the seed, so that the same traffic can be recorded once and replayed through the gateway.
 *
 *     random_client HOST PORT SEED LOOPS
 *
 * Addresses stay in 0..99 and register values in 0..999 (so that a learned policy has ranges
 * to show). Exits 0 when every value read back is the one written, 1 on the first mismatch or
 * failed call (with the libmodbus error), 2 on bad arguments.
 */
#include <errno.h>
#include <modbus.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ADDRESSES 100
#define MOST 16 /* values per multiple write */

/* A small generator of our own: rand() differs between C libraries. */
static uint32_t state;
static uint32_t next(uint32_t bound) {
    state = state * 1103515245u + 12345u;
    return (state >> 8) % bound;
}

static int failed(modbus_t *context, const char *what) {
    fprintf(stderr, "random_client: %s: %s\n", what, modbus_strerror(errno));
    modbus_close(context);
    modbus_free(context);
    return 1;
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: random_client HOST PORT SEED LOOPS\n");
        return 2;
    }
    state = (uint32_t)strtoul(argv[3], NULL, 10);
    long loops = strtol(argv[4], NULL, 10);
    modbus_t *context = modbus_new_tcp(argv[1], atoi(argv[2]));
    if (context == NULL || modbus_set_slave(context, 1) != 0 || modbus_connect(context) != 0) {
        fprintf(stderr, "random_client: cannot connect to %s:%s: %s\n", argv[1], argv[2],
                modbus_strerror(errno));
        return 1;
    }
    modbus_set_response_timeout(context, 2, 0);
    for (long loop = 0; loop < loops; loop++) {
        int address = (int)next(ADDRESSES - MOST);
        int count = 1 + (int)next(MOST);
        uint8_t bits[MOST], bits_read[MOST];
        uint16_t registers[MOST], registers_read[MOST];
        for (int i = 0; i < count; i++) {
            bits[i] = (uint8_t)next(2);
            registers[i] = (uint16_t)next(1000);
        }
        /* FC 5 and FC 1 */
        if (modbus_write_bit(context, address, bits[0]) != 1)
            return failed(context, "FC 5");
        if (modbus_read_bits(context, address, 1, bits_read) != 1 || bits_read[0] != bits[0])
            return failed(context, "FC 1 after FC 5");
        /* FC 15 and FC 1 */
        if (modbus_write_bits(context, address, count, bits) != count)
            return failed(context, "FC 15");
        if (modbus_read_bits(context, address, count, bits_read) != count ||
            memcmp(bits, bits_read, (size_t)count) != 0)
            return failed(context, "FC 1 after FC 15");
        /* FC 6 and FC 3 */
        if (modbus_write_register(context, address, registers[0]) != 1)
            return failed(context, "FC 6");
        if (modbus_read_registers(context, address, 1, registers_read) != 1 ||
            registers_read[0] != registers[0])
            return failed(context, "FC 3 after FC 6");
        /* FC 16 and FC 3 */
        if (modbus_write_registers(context, address, count, registers) != count)
            return failed(context, "FC 16");
        if (modbus_read_registers(context, address, count, registers_read) != count ||
            memcmp(registers, registers_read, (size_t)count * 2) != 0)
            return failed(context, "FC 3 after FC 16");
        /* FC 23: write the values reversed, read them back in the same request. */
        for (int i = 0; i < count; i++)
            registers[i] = (uint16_t)(999 - registers[i]);
        if (modbus_write_and_read_registers(context, address, count, registers, address, count,
                                            registers_read) != count ||
            memcmp(registers, registers_read, (size_t)count * 2) != 0)
            return failed(context, "FC 23");
    }
    modbus_close(context);
    modbus_free(context);
    printf("random_client: %ld loops, every value read back\n", loops);
    return 0;
}
