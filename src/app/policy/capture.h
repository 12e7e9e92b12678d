/* SPDX-License-Identifier: MIT */
/*
 * The packet-capture reader of `mbsec policy learn` and `mbsec policy test`: a pcap or pcapng
 * file (read through libpcap) → the Modbus/TCP requests in it, each handed to a visitor as a
 * `struct observed`. TCP is reassembled per connection and direction (retransmissions dropped,
 * segments out of order held and put back in order, lost segments skipped), MBAP frames are
 * found again after a loss or a capture that starts mid-stream, and memory stays bounded
 * whatever the file's size.
 */
#ifndef MBSEC_APP_POLICY_CAPTURE_H
#define MBSEC_APP_POLICY_CAPTURE_H

#include <stddef.h>
#include <stdint.h>

#include "app/policy/observed.h"

/* Connections tracked at once unless the options say otherwise; past it the least recently
 * used one is evicted (its bytes held for reassembly become a gap). */
#define CAPTURE_MAX_STREAMS 65536
/* Bytes (and segments) held out of order per direction before the hole in front of them is
 * declared lost. */
#define CAPTURE_HELD_PER_DIRECTION 65536
#define CAPTURE_HELD_SEGMENTS_PER_DIRECTION 256
/* Bytes held out of order over all connections, the same way. */
#define CAPTURE_HELD_TOTAL (16u << 20)

struct capture_options {
    const uint16_t *ports; /* Modbus/TCP server ports; NULL/0 count: {502} */
    size_t port_count;
    const uint16_t *tls_ports; /* Modbus/TCP Security ports, reported, never read; NULL/0: {802} */
    size_t tls_port_count;
    size_t max_streams; /* connections tracked at once; 0: CAPTURE_MAX_STREAMS */
};

struct capture_stats {
    uint64_t packets;        /* records in the file */
    uint64_t bytes;          /* bytes of the file read */
    uint64_t modbus_packets; /* TCP segments of streams on a Modbus port */
    uint64_t requests;       /* requests handed to the visitor */
    uint64_t responses;      /* responses seen (server -> client frames) */
    uint64_t streams;        /* TCP connections on a Modbus port */
    uint64_t tls_streams;    /* connections on a TLS port, or whose bytes were a TLS handshake on a
                                Modbus port */
    uint64_t retransmitted;  /* segments (or parts) carrying bytes already taken */
    uint64_t out_of_order;   /* segments that arrived ahead of a hole and were held */
    uint64_t gaps; /* holes never filled (lost segments): bytes skipped, stream resynchronised */
    uint64_t resynced;      /* times the reader looked for the next frame boundary (mid-stream
                               start, after a gap, after garbage) */
    uint64_t not_modbus;    /* bytes on a Modbus port that did not frame as Modbus/TCP */
    uint64_t other_packets; /* not TCP on a Modbus port (other protocols, other ports, ARP, ...) */
    uint64_t truncated_packets; /* captured shorter than on the wire (snaplen): their bytes are a
                                   gap */
    uint64_t held_bytes_max;    /* most bytes held at once for reassembly (the bound, for tests) */
    uint64_t evicted;           /* connections evicted because the table was full */
};

/* Reads a pcap or pcapng file (through libpcap, pcap_open_offline; "-" is standard input) and
 * calls visit() for every Modbus/TCP request in it, client to server, in capture order,
 * with time, client address (the side that is NOT on the Modbus port), unit id and PDU, role
 * NULL, tls 0, origin "FILE: packet N" (the packet that completed the frame). Returns 0, the
 * visitor's nonzero value, or -1 with one line in `error` (not a capture file, truncated file —
 * a truncated last record is an error naming the packet number but everything before it was
 * delivered —, a link type it cannot read). A capture without Modbus/TCP is not an error: the
 * stats say what it held. `stats` may be NULL; it is filled in whatever the outcome. Memory
 * stays bounded whatever the file's size. */
int capture_read(const char *path, const struct capture_options *options, observed_visit visit,
                 void *data, struct capture_stats *stats, char *error, size_t capacity);

#endif
