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

/* The RFC 5424 header of a message, "<PRI>1 TIME HOST APP PID MSGID - " (an empty msgid is
 * "-"; the time is RFC 3339 UTC with milliseconds), for the stream link and the datagram sink
 * (audit.c). Returns its length, or -1 when it does not fit in `capacity`. */
int ship_syslog_header(char *out, size_t capacity, int facility, int severity, uint64_t time_ms,
                       const char *hostname, const char *app_name, long pid, const char *msgid);

#endif
