/* SPDX-License-Identifier: MIT */
/*
 * One request seen on the wire or in an audit trail: what `mbsec policy learn` learns from and
 * `mbsec policy test` replays. The capture reader (capture.c) and the audit record reader
 * (records.c) both hand their requests to a visitor in this one form.
 */
#ifndef MBSEC_APP_POLICY_OBSERVED_H
#define MBSEC_APP_POLICY_OBSERVED_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mbsec/pdu.h"

struct observed {
    int64_t time_us; /* when it was sent, microseconds since the epoch; 0: unknown */
    /* who: the client */
    const char *role; /* Modbus/TCP Security role; NULL: none (always NULL from captures) */
    int tls;          /* 1: it came over TLS (audit records only) */
    struct sockaddr_storage address; /* the client's address (AF_INET or AF_INET6) */
    socklen_t address_length;        /* 0: unknown */
    /* what */
    uint8_t unit;
    const uint8_t *pdu; /* the request PDU, function code first; valid during the visit */
    size_t pdu_length;
    /* 1: the writes' values are not all known (an audit record that showed only the first
     * ones and carried no PDU): the values in `pdu` past those are 0, and value ranges learned
     * from it are a lower bound */
    int values_partial;
    /* where it came from, for messages: "FILE:LINE" (audit) or "FILE: packet N" (capture) */
    const char *origin;
};

/* Called once per request, in the order of the input. Returns 0 to go on, anything else to stop
 * reading (the reader then returns that value). */
typedef int (*observed_visit)(void *data, const struct observed *request);

#endif
