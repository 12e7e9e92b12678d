/* SPDX-License-Identifier: MIT */
/* The syslog link of the shipper (ship.h): RFC 5424 over TCP (RFC 6587 octet counting) or TLS
 * (RFC 5425). */
#ifndef MBSEC_DAEMON_SHIP_SYSLOG_H
#define MBSEC_DAEMON_SHIP_SYSLOG_H

#include <stddef.h>
#include <stdint.h>

#include "app/daemon/ship.h"

struct mb_tls_config;

struct ship_syslog_config {
    const char *host;
    uint16_t port;
    /* NULL: plain TCP. Otherwise the client side of TLS: our certificate and key (mutual TLS),
     * the collector's CA, or a pin; without a pin the collector's certificate must name
     * `host` (server_name, when not set). */
    const struct mb_tls_config *tls;
    const char *hostname; /* the HOSTNAME field, already checked */
    const char *app_name; /* the APP-NAME field, already checked */
    int facility;         /* 1..23 */
};

/* Makes the link (it connects when the shipper asks). Returns 0, or -1 with one line in
 * `error` (a certificate or key that does not load). */
int ship_syslog_create(const struct ship_syslog_config *config, struct ship_link **link,
                       char *error, size_t capacity);

/* Formats one record as it goes on the wire: "LEN <PRI>1 TIME HOST APP PID MSGID - JSON".
 * Returns the bytes needed; writes them only when they fit in `capacity`. */
size_t ship_syslog_format(char *out, size_t capacity, int facility, const char *hostname,
                          const char *app_name, long pid, const struct ship_record *record);

#endif
