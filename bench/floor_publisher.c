/* SPDX-License-Identifier: MIT */
/*
 * The floor of shipping audit records to MQTT on this machine (bench/fleet): publishes a record
 * of the gateway's size (a read, 330 bytes) RATE times a second for SECONDS through the same
 * shipper, spool and MQTT link as the gateway, with no gateway work around it. Run beside a
 * gateway without audit, it costs the machine what shipping costs the gateway (the shipper
 * thread, the broker), so that gateway's rate is the most an audited gateway can reach here.
 *
 *   floor_publisher HOST PORT CA CERT KEY SPOOL RATE SECONDS
 *
 * Prints "taken N delivered M" at the end (after at most 30 s of draining).
 */
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "app/daemon/ship.h"
#include "app/daemon/ship_mqtt.h"
#include "mbsec/tls.h"

static double now_s(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

int main(int argc, char **argv) {
    if (argc != 9) {
        fprintf(stderr, "usage: floor_publisher HOST PORT CA CERT KEY SPOOL RATE SECONDS\n");
        return 2;
    }
    struct mb_tls_config tls = {
        .ca_file = argv[3], .certificate_file = argv[4], .key_file = argv[5]};
    struct ship_mqtt_config link_config = {
        .host = argv[1],
        .port = (uint16_t)atoi(argv[2]),
        .tls = &tls,
        .protocol = 4,
        .client_id = "mbsec-floor",
        .keepalive_s = 30,
        .prefix = "mbsec/floor",
    };
    char error[400];
    struct ship_link *link = NULL;
    if (ship_mqtt_create(&link_config, &link, error, sizeof error) != 0) {
        fprintf(stderr, "floor_publisher: %s\n", error);
        return 1;
    }
    struct ship_config config = {.name = "floor", .spool = argv[6], .spool_bytes = 8ull << 30};
    struct ship *ship = NULL;
    if (ship_open(&config, link, &ship, error, sizeof error) != 0) {
        fprintf(stderr, "floor_publisher: %s\n", error);
        return 1;
    }
    double rate = atof(argv[7]), seconds = atof(argv[8]);
    const char *record =
        "{\"time\":\"2026-12-06T21:37:33.004Z\",\"type\":\"read\",\"connection\":2,\"peer\":"
        "\"127.0.0.1:43754\",\"transport\":\"tcp\",\"role\":null,\"subject\":null,\"unit\":1,"
        "\"function\":3,\"function_name\":\"read holding registers\",\"address\":0,"
        "\"quantity\":10,\"rule\":\"local-reads\",\"backend\":\"plc\",\"device_unit\":1,"
        "\"outcome\":\"answered\",\"latency_us\":169}";
    double start = now_s();
    uint64_t sent = 0;
    for (;;) {
        double elapsed = now_s() - start;
        if (elapsed >= seconds)
            break;
        uint64_t due = (uint64_t)(elapsed * rate);
        while (sent < due) {
            ship_push(ship, 6, "read", record);
            sent++;
        }
        struct timespec tick = {0, 1000000};
        nanosleep(&tick, NULL);
    }
    ship_drain(ship, 30000);
    struct ship_stats stats;
    ship_stats(ship, &stats);
    printf("taken %llu delivered %llu\n", (unsigned long long)stats.taken,
           (unsigned long long)stats.delivered);
    ship_close(ship);
    return 0;
}
