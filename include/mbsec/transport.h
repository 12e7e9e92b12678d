/* SPDX-License-Identifier: MIT */
/*
 * Transports: a byte stream behind one small table of functions, so that the server and the
 * clients work the same over TCP and TLS (tls.h). A transport never blocks: reads and writes
 * that cannot proceed return MB_EAGAIN, and want() says which readiness to wait for.
 */
#ifndef MBSEC_TRANSPORT_H
#define MBSEC_TRANSPORT_H

#include <stddef.h>
#include <stdint.h>
#include <sys/socket.h>

#include "mbsec/export.h"

#ifdef __cplusplus
extern "C" {
#endif

struct mb_transport;
struct mb_tls_context;

/* Readiness of a descriptor: what a transport waits for (want()), and what the event loop
 * (loop.h) watches descriptors for and reports. */
enum mb_io_events {
    MB_IO_READ = 1,
    MB_IO_WRITE = 2,
    MB_IO_HANGUP = 4, /* reported only: the peer hung up or the descriptor failed */
};

struct mb_transport_ops {
    const char *name; /* "tcp", "tls" */
    /* Reads up to `capacity` bytes. Returns the count (> 0), MB_EAGAIN, MB_ECLOSED at end of
     * stream, or another negative error. */
    long (*read)(struct mb_transport *transport, void *buffer, size_t capacity);
    /* Writes up to `length` bytes. Returns the count (> 0), MB_EAGAIN, or a negative error. */
    long (*write)(struct mb_transport *transport, const void *data, size_t length);
    /* Bytes already received and buffered inside the transport (decrypted TLS records) that a
     * read returns without waiting for the descriptor: drain them before waiting. */
    size_t (*pending)(const struct mb_transport *transport);
    /* The readiness (MB_IO_READ / MB_IO_WRITE) the last MB_EAGAIN is waiting for: for TCP the
     * direction of that call; a TLS read may need the descriptor writable (a handshake message
     * to send) and a TLS write may need it readable. 0 when no call is waiting. */
    unsigned (*want)(const struct mb_transport *transport);
    /* Advances a handshake (TLS): 0 once it is done, MB_EAGAIN while it needs the descriptor
     * (see want()), or an error (MB_ETLS, with `detail` saying why). NULL: nothing to do (TCP).
     * Reads and writes also advance it, so calling it is optional. */
    int (*handshake)(struct mb_transport *transport);
    /* Closes the descriptor and frees the transport. */
    void (*close)(struct mb_transport *transport);
    /* Verifies the peer's certificate of an established server transport again, with the trust
     * anchors, CRLs and flags of `context` (a listener's reloaded CA or CRL, tls.h). Returns 0
     * when the peer is still accepted (or when the transport was made from `context`, which
     * verified it already), 1 when it is not (`why` holds OpenSSL's reason, "certificate
     * revoked"; `why` may be NULL with why_size 0), MB_EINVAL when the transport is not an
     * established server transport with a peer certificate, MB_ENOMEM. NULL: no peer
     * certificate to check (TCP). */
    int (*recheck)(const struct mb_transport *transport, struct mb_tls_context *context, char *why,
                   size_t why_size);
};

/* The common head of every transport. */
struct mb_transport {
    const struct mb_transport_ops *ops;
    int fd;
    int last_error;      /* the last negative error a call returned, sticky until read */
    int system_errno;    /* errno behind MB_ESYSTEM / MB_EIO, for messages */
    unsigned blocked_on; /* MB_IO_* the last MB_EAGAIN waits for (what want() reports) */
    /* A line about the last failure (a TLS alert, a certificate that did not verify); "" when
     * there is nothing more to say than the error code. Owned by the transport. */
    const char *detail;
    /* After a TLS handshake: the role of the peer's certificate, NULL when it has none (or on
     * plain TCP). Owned by the transport. */
    const char *role;
    int secure; /* 1 on a TLS transport */
};

/* Wraps a connected, non-blocking TCP socket. Returns 0, MB_ENOMEM or MB_EINVAL. */
MB_API int mb_tcp_transport_create(int fd, struct mb_transport **transport);

/* ---- serial lines ---- */

/* How the transmitter of an RS-485 adapter is switched on to send. */
enum mb_serial_rs485 {
    MB_RS485_NONE = 0,   /* RS-232, or an adapter that switches by itself (most USB ones) */
    MB_RS485_KERNEL = 1, /* the driver's RS-485 mode (TIOCSRS485): RTS drives the transmitter */
    MB_RS485_RTS = 2,    /* RTS raised by mbsec around each frame (drivers without that mode) */
};

/* A serial line's settings. Zeroed fields take Modbus's defaults: 19200 baud, 8 data bits, even
 * parity, 1 stop bit (8E1), the line taken for this program alone. */
struct mb_serial_config {
    uint32_t baud;     /* any rate the driver takes: 1200..921600 and others; 0: 19200 */
    uint8_t data_bits; /* 7 or 8; 0: 8 */
    char parity;       /* 'N', 'E' or 'O'; 0: 'E' */
    uint8_t stop_bits; /* 1 or 2; 0: 1 */
    enum mb_serial_rs485 rs485;
    uint32_t rs485_delay_before_ms; /* MB_RS485_KERNEL: RTS raised this long before sending */
    uint32_t rs485_delay_after_ms;  /* ... and kept this long after the last character */
    int shared;                     /* 1: do not lock the line against other programs */
};

/*
 * Opens the serial line at `path` (a tty: /dev/ttyUSB0, /dev/ttyS1, a pseudo-terminal) for
 * Modbus: raw, non-blocking, close-on-exec, the settings of `config` (NULL: the defaults), and,
 * unless config->shared, locked against every other program that locks it (flock; and
 * TIOCEXCL, which refuses further opens to all but root). The settings are read back: a device
 * that silently keeps another one (a pseudo-terminal drops parity) is an error, never a line
 * that runs with settings nobody asked for. Returns the descriptor (>= 0), or MB_EINVAL (a
 * setting out of range), MB_EADDRESS (no such device, or not a tty), MB_EACCES, MB_EBUSY (locked
 * by another program), MB_EUNSUPPORTED (the device refused a setting), MB_ESYSTEM; `error` (if
 * given) says which, in words, with the path.
 */
MB_API int mb_serial_open(const char *path, const struct mb_serial_config *config, char *error,
                          size_t error_size);

/* Wraps a serial line opened by mb_serial_open(): read() and write() on the tty; a device that
 * goes away reads as MB_ECLOSED. Returns 0, MB_ENOMEM or MB_EINVAL. */
MB_API int mb_serial_transport_create(int fd, struct mb_transport **transport);

/* The same for a line opened with `config`: with MB_RS485_RTS its writes raise RTS, wait
 * rs485_delay_before_ms, write the frame whole, wait until the last character has left
 * (tcdrain), wait rs485_delay_after_ms and lower RTS; which blocks for the frame's time on the
 * wire. Any other mode (or config NULL): mb_serial_transport_create(). */
MB_API int mb_serial_transport_create_for(int fd, const struct mb_serial_config *config,
                                          struct mb_transport **transport);

/* The peer of a connection: its address and, over TLS, its role. */
struct mb_peer {
    struct sockaddr_storage address;
    socklen_t address_length;
    char text[64];    /* "192.0.2.1:50123" or "[2001:db8::1]:50123" */
    const char *role; /* Modbus/TCP Security role; NULL on plain TCP or without one */
    int secure;       /* 1 when the connection is TLS (its certificate was verified) */
    /* The source that per-source limits and counts key on: the address cut to a prefix
     * (server.h: limits.source_prefix_ipv4 and _ipv6, /32 and /64 by default), so that one host
     * with a whole IPv6 /64 is one source. An IPv4-mapped IPv6 address is its IPv4 address.
     * source_key: a family byte (4 or 6, 0 when unknown) and 16 address bytes with the bits
     * past the prefix cleared; source: the same as text, "192.0.2.7", "192.0.2.0/24",
     * "2001:db8:1:2::/64". Filled by the server at accept. */
    uint8_t source_key[17];
    char source[56];
};

/* Formats a socket address as "host:port" (IPv6 in brackets). Returns the length or
 * MB_ENOSPC / MB_EINVAL. */
MB_API int mb_address_format(const struct sockaddr *address, socklen_t length, char *text,
                             size_t capacity);

/*
 * Parses "host:port", "[v6]:port", ":port" or "port" (all addresses) into a socket address,
 * numerically or through the resolver. Returns 0, or MB_EADDRESS with a reason in `error`
 * (a static string) when one is given.
 */
MB_API int mb_address_parse(const char *text, uint16_t default_port,
                            struct sockaddr_storage *address, socklen_t *length,
                            const char **error);

#ifdef __cplusplus
}
#endif

#endif
