/* SPDX-License-Identifier: MIT */
/*
 * The MQTT link of the shipper (ship.h): MQTT 3.1.1 or 5 over TCP or TLS to a broker (Mosquitto,
 * EMQX, HiveMQ, ...). Records are published with QoS 1 to PREFIX/audit/TYPE and count as
 * delivered at the broker's PUBACK; notices (the gateway's status, metrics snapshots) go to
 * PREFIX/NAME, retained; a Last Will on PREFIX/status says the gateway vanished.
 *
 * The client is mbsec's own, on the shipper's poll loop and the library's TLS transport (the
 * broker's certificate checked by CA or pin, the gateway's certificate for mutual TLS):
 * Debian 12's libmosquitto 2.0.11 cannot be driven from another loop (an asynchronous connect
 * never sends CONNECT; a TLS handshake completes only inside mosquitto_loop(), whose select()
 * refuses descriptors above 1023, which a busy gateway has). See docs/fleet.md.
 */
#ifndef MBSEC_DAEMON_SHIP_MQTT_H
#define MBSEC_DAEMON_SHIP_MQTT_H

#include <stddef.h>
#include <stdint.h>

#include "app/daemon/ship.h"

struct mb_tls_config;

struct ship_mqtt_config {
    const char *host;
    uint16_t port;
    const struct mb_tls_config *tls; /* NULL: plain TCP */
    int protocol;                    /* 4 (MQTT 3.1.1) or 5 */
    const char *client_id;
    const char *username; /* NULL: none */
    const char *password; /* NULL: none (needs a username in 3.1.1) */
    unsigned keepalive_s; /* 5..65535 */
    const char *prefix;   /* topics: PREFIX/audit/TYPE, PREFIX/status, PREFIX/metrics */
    const char *will;     /* the Last Will's payload on PREFIX/status (retained), NULL: none */
};

int ship_mqtt_create(const struct ship_mqtt_config *config, struct ship_link **link, char *error,
                     size_t capacity);

/* Packet encoding and decoding, for the tests: the length of a remaining-length field read
 * from `data` (1..4 bytes) with *value, 0 when more bytes are needed, -1 when malformed. */
int ship_mqtt_varint(const uint8_t *data, size_t length, uint32_t *value);

#endif
