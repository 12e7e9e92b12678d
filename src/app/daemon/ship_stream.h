/* SPDX-License-Identifier: MIT */
/*
 * A non-blocking TCP or TLS connection for the shipper's links (ship_syslog.c, ship_mqtt.c):
 * connecting with a deadline, the TLS handshake, an output buffer written as the socket takes
 * it, and reads. Everything runs from the shipper's poll loop; nothing blocks but the name
 * lookup.
 */
#ifndef MBSEC_DAEMON_SHIP_STREAM_H
#define MBSEC_DAEMON_SHIP_STREAM_H

#include <stddef.h>
#include <stdint.h>

struct mb_tls_config;
struct mb_tls_context;
struct mb_transport;

enum ship_stream_state { STREAM_DOWN, STREAM_CONNECTING, STREAM_HANDSHAKE, STREAM_UP };

struct ship_stream {
    char host[256];
    char port[8];
    struct mb_tls_context *context; /* NULL: plain TCP */
    enum ship_stream_state state;
    int fd;
    struct mb_transport *transport;
    int64_t deadline; /* of connecting and the handshake (monotonic ms) */
    uint8_t *out;
    size_t out_length, out_sent, out_capacity;
    uint64_t written; /* bytes handed to the transport since connecting */
    int ended;        /* the last connection ended by the peer's orderly goodbye (FIN) */
};

/* Sets up a stream to host:port, over TLS when `tls` is not NULL (without a pin, the peer's
 * certificate must name `host` unless tls->server_name says otherwise). Returns 0, or -1 with
 * one line in `error` (a certificate or key that does not load). */
int ship_stream_init(struct ship_stream *stream, const char *host, uint16_t port,
                     const struct mb_tls_config *tls, char *error, size_t capacity);

/* Begins to connect (closing what was open): 0, or -1 with `error`. */
int ship_stream_connect(struct ship_stream *stream, char *error, size_t capacity);

/* The descriptor to poll (-1: none) and for what; lowers *timeout_ms to the deadline while
 * connecting. Up, it asks for POLLIN, and POLLOUT while output waits. */
int ship_stream_wait_for(struct ship_stream *stream, short *events, int *timeout_ms);

/* Goes on with connecting: 1 when up (at once when it already was), 0 while connecting, -1 on
 * failure (closed, `error` says why). */
int ship_stream_advance(struct ship_stream *stream, char *error, size_t capacity);

/* Room for `more` bytes at the end of the output: a pointer to write them to, NULL when out of
 * memory. ship_stream_commit() then adds them. */
uint8_t *ship_stream_reserve(struct ship_stream *stream, size_t more);
void ship_stream_commit(struct ship_stream *stream, size_t length);

/* Bytes waiting to be written. */
size_t ship_stream_pending(const struct ship_stream *stream);

/* Writes what the socket takes: 0, or -1 on failure (closed, `error`). */
int ship_stream_flush(struct ship_stream *stream, char *error, size_t capacity);

/* Reads: the count (> 0), 0 when nothing is there now, -1 on failure or end of stream (closed,
 * `error`: "the peer closed the connection" at the end, and `ended` set: an orderly close, not a
 * reset). */
long ship_stream_read(struct ship_stream *stream, void *buffer, size_t capacity, char *error,
                      size_t error_capacity);

/* Closes the connection (the stream can connect again). */
void ship_stream_close(struct ship_stream *stream);

/* Closes and frees what the stream holds. */
void ship_stream_free(struct ship_stream *stream);

/* Splits "HOST:PORT", "[V6]:PORT", "HOST" or "[V6]" (then `fallback` is the port). Returns 0,
 * or -1 when it is not one of those. */
int ship_split_address(const char *text, uint16_t fallback, char *host, size_t capacity,
                       uint16_t *port);

#endif
