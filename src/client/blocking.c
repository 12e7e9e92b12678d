/* SPDX-License-Identifier: MIT */
/* The blocking client: one request at a time, waiting in poll() on the transport's descriptor. */
#include <errno.h>
#include <netdb.h>
#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "mbsec/error.h"
#include "mbsec/serial.h"
#include "mbsec/value.h"

#define INPUT_SIZE 1024 /* bytes read at once; stray frames beyond ours wait for the next call */
#define DEFAULT_CONNECT_TIMEOUT_MS 3000
#define DEFAULT_TIMEOUT_MS 1000
#define MAX_DEVICE_ID_TRANSACTIONS 256
#define RTU_OVER_TCP_SILENCE_US 20000  /* TCP segments may be delayed: a wider silence */
#define BROADCAST_TURNAROUND_US 100000 /* what a device gets to execute a broadcast */

struct mb_client {
    struct mb_transport *transport; /* NULL while disconnected */
    struct mb_client_options options;
    struct sockaddr_storage address;
    socklen_t address_length;
    char peer[64];
    uint16_t next_transaction;
    struct mb_mbap_decoder decoder;
    uint32_t discarded_seen; /* decoder.discarded already added to the stats */
    uint8_t input[INPUT_SIZE];
    size_t input_start; /* input[input_start..input_end) was read but not yet decoded */
    size_t input_end;
    struct mb_client_stats stats;
    char detail[256];
    /* RTU framing (serial lines, RTU over TCP) */
    struct mb_rtu_decoder rtu;
    struct mb_ascii_decoder ascii; /* ASCII framing */
    uint64_t input_time_us;        /* when input[] was read */
    uint64_t quiet_at_us;          /* the line has been silent long enough to send from then on */
    uint32_t silence_us;           /* t3.5 */
    uint32_t baud;                 /* serial: what a frame takes on the wire; 0 over TCP */
    char *serial_path;             /* serial: opened again by reconnect() */
    struct mb_serial_config line;
};

/* "connect to ADDRESS: REASON" into a caller's buffer, which may be absent. */
static void connect_detail(char *detail, size_t detail_size, const char *address,
                           int system_errno) {
    if (detail != NULL && detail_size > 0)
        snprintf(detail, detail_size, "connect to %s: %s", address, strerror(system_errno));
}

/* Waits until `fd` is ready for `events` (MB_IO_*) or the deadline passes. */
static int wait_ready(int fd, unsigned events, uint64_t deadline_us) {
    struct pollfd poller = {.fd = fd};
    if (events & MB_IO_READ)
        poller.events |= POLLIN;
    if (events & MB_IO_WRITE)
        poller.events |= POLLOUT;
    for (;;) {
        uint64_t now = mb__client_now_us();
        if (now >= deadline_us)
            return MB_ETIMEDOUT;
        /* Rounded up, so that a wait never ends a little before its deadline and spins; long
         * waits are cut into pieces poll() can take. */
        uint64_t remaining_ms = (deadline_us - now + 999) / 1000;
        int timeout_ms = remaining_ms > 3600000 ? 3600000 : (int)remaining_ms;
        int ready = poll(&poller, 1, timeout_ms);
        if (ready > 0)
            return 0;
        if (ready < 0 && errno != EINTR)
            return MB_ESYSTEM;
    }
}

/* Connects one address within the deadline; fills *fd. */
static int connect_one(const struct sockaddr *address, socklen_t length, uint64_t deadline_us,
                       int *fd, int *system_errno) {
    int rc = mb__client_socket(address, length, fd, system_errno);
    if (rc != MB_EAGAIN)
        return rc;
    rc = wait_ready(*fd, MB_IO_WRITE, deadline_us);
    if (rc == 0)
        rc = mb__client_connect_result(*fd, system_errno);
    if (rc != 0) {
        if (rc == MB_ETIMEDOUT)
            *system_errno = ETIMEDOUT;
        close(*fd);
        *fd = -1;
        return MB_ECONNECT;
    }
    return 0;
}

/* Runs a transport's handshake (TLS) to its end within the deadline, so that a certificate
 * problem shows at connect time with its cause, not as a failed first request. On failure the
 * transport is closed. */
static int finish_handshake(struct mb_transport **transport, uint64_t deadline_us, const char *peer,
                            char *detail, size_t detail_size) {
    struct mb_transport *wrapped = *transport;
    if (wrapped->ops->handshake == NULL)
        return 0;
    for (;;) {
        int rc = wrapped->ops->handshake(wrapped);
        if (rc == 0)
            return 0;
        if (rc == MB_EAGAIN) {
            unsigned wanted = wrapped->ops->want(wrapped);
            rc = wait_ready(wrapped->fd, wanted != 0 ? wanted : MB_IO_READ, deadline_us);
            if (rc == 0)
                continue;
        }
        if (detail != NULL && detail_size > 0) {
            if (rc == MB_ETIMEDOUT)
                snprintf(detail, detail_size, "TLS handshake with %s not finished in time", peer);
            else
                snprintf(detail, detail_size, "TLS handshake with %s failed: %s", peer,
                         wrapped->detail != NULL && wrapped->detail[0] != '\0' ? wrapped->detail
                                                                               : mb_strerror(rc));
        }
        wrapped->ops->close(wrapped);
        *transport = NULL;
        return rc == MB_ETIMEDOUT ? MB_ECONNECT : rc == MB_EAGAIN ? MB_ETLS : rc;
    }
}

/* The serial framings' decoders, empty. Over TCP (RTU over TCP) a gap does not end a frame
 * whose length is known: a converter may hold a segment back. */
static void reset_serial_decoders(struct mb_client *client) {
    mb_rtu_decoder_init(&client->rtu, 0, client->silence_us);
    mb_rtu_decoder_set_stream(&client->rtu, client->serial_path == NULL);
    mb_ascii_decoder_init(&client->ascii);
}

static void reset_stream(struct mb_client *client) {
    mb_mbap_decoder_init(&client->decoder);
    reset_serial_decoders(client);
    client->discarded_seen = 0;
    client->input_start = client->input_end = 0;
}

static void disconnect(struct mb_client *client) {
    if (client->transport == NULL)
        return;
    client->transport->ops->close(client->transport);
    client->transport = NULL;
    client->stats.disconnects++;
    reset_stream(client);
}

/* Opens the client's serial line (again). */
static int reopen_serial(struct mb_client *client) {
    char why[sizeof client->detail];
    int fd = mb_serial_open(client->serial_path, &client->line, why, sizeof why);
    if (fd < 0) {
        snprintf(client->detail, sizeof client->detail, "%s", why);
        return fd;
    }
    int rc = mb_serial_transport_create_for(fd, &client->line, &client->transport);
    if (rc != 0) {
        close(fd);
        snprintf(client->detail, sizeof client->detail, "%s: %s", client->peer, mb_strerror(rc));
        return rc;
    }
    reset_stream(client);
    client->quiet_at_us = 0;
    client->stats.connects++;
    return 0;
}

/* (Re)connects to the client's address. */
static int reconnect(struct mb_client *client) {
    if (client->serial_path != NULL)
        return reopen_serial(client);
    int fd = -1, system_errno = 0;
    uint64_t deadline = mb__client_now_us() + (uint64_t)client->options.connect_timeout_ms * 1000u;
    int rc = connect_one((const struct sockaddr *)&client->address, client->address_length,
                         deadline, &fd, &system_errno);
    if (rc != 0) {
        connect_detail(client->detail, sizeof client->detail, client->peer, system_errno);
        return MB_ECONNECT;
    }
    rc = mb__client_wrap(client->options.wrap, client->options.wrap_data, fd, &client->transport);
    if (rc != 0) {
        snprintf(client->detail, sizeof client->detail, "connect to %s: %s", client->peer,
                 mb_strerror(rc));
        return rc;
    }
    rc = finish_handshake(&client->transport, deadline, client->peer, client->detail,
                          sizeof client->detail);
    if (rc != 0)
        return rc;
    reset_stream(client);
    client->stats.connects++;
    return 0;
}

static int client_create(const struct sockaddr *address, socklen_t length,
                         const struct mb_client_options *options, struct mb_client **client_out) {
    struct mb_client *client = calloc(1, sizeof *client);
    if (client == NULL)
        return MB_ENOMEM;
    if (options != NULL)
        client->options = *options;
    if (client->options.connect_timeout_ms == 0)
        client->options.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (client->options.timeout_ms == 0)
        client->options.timeout_ms = DEFAULT_TIMEOUT_MS;
    client->silence_us = client->options.rtu_silence_us != 0 ? client->options.rtu_silence_us
                                                             : RTU_OVER_TCP_SILENCE_US;
    memcpy(&client->address, address, length);
    client->address_length = length;
    mb_address_format(address, length, client->peer, sizeof client->peer);
    /* Start somewhere other than 0 so that two clients run back to back on one device do not
     * send the same transaction ids. */
    client->next_transaction = (uint16_t)(mb__client_now_us() ^ (uint64_t)getpid());
    reset_stream(client);
    *client_out = client;
    return 0;
}

int mb_client_connect_address(const struct sockaddr *address, socklen_t length,
                              const struct mb_client_options *options,
                              struct mb_client **client_out, char *detail, size_t detail_size) {
    if (detail != NULL && detail_size > 0)
        detail[0] = '\0';
    if (address == NULL || client_out == NULL || length == 0 ||
        length > sizeof(struct sockaddr_storage))
        return MB_EINVAL;
    struct mb_client *client;
    int rc = client_create(address, length, options, &client);
    if (rc != 0)
        return rc;
    rc = reconnect(client);
    if (rc != 0) {
        if (detail != NULL && detail_size > 0)
            snprintf(detail, detail_size, "%s", client->detail);
        free(client);
        return rc;
    }
    *client_out = client;
    return 0;
}

/* Splits "host[:port]" / "[v6][:port]" into its parts. */
static int split_target(const char *target, char *host, size_t host_size, char *port,
                        size_t port_size, const char **reason) {
    const char *port_text = NULL;
    size_t host_length;
    if (target[0] == '[') {
        const char *close = strchr(target, ']');
        if (close == NULL) {
            *reason = "'[' without ']'";
            return MB_EADDRESS;
        }
        host_length = (size_t)(close - target - 1);
        if (close[1] == ':')
            port_text = close + 2;
        else if (close[1] != '\0') {
            *reason = "expected ':' after ']'";
            return MB_EADDRESS;
        }
        target++;
    } else {
        const char *colon = strchr(target, ':');
        if (colon != NULL && strrchr(target, ':') != colon) {
            *reason = "IPv6 addresses go in brackets: [::1]:502";
            return MB_EADDRESS;
        }
        host_length = colon != NULL ? (size_t)(colon - target) : strlen(target);
        if (colon != NULL)
            port_text = colon + 1;
    }
    if (host_length == 0 || host_length >= host_size) {
        *reason = host_length == 0 ? "no host" : "host name too long";
        return MB_EADDRESS;
    }
    memcpy(host, target, host_length);
    host[host_length] = '\0';
    if (port_text == NULL)
        port_text = "502";
    char *end;
    errno = 0;
    unsigned long number = strtoul(port_text, &end, 10);
    if (port_text[0] < '0' || port_text[0] > '9' || *end != '\0' || number == 0 || number > 65535 ||
        errno != 0) {
        *reason = "port is not a number 1..65535";
        return MB_EADDRESS;
    }
    snprintf(port, port_size, "%lu", number);
    return 0;
}

int mb_client_connect(const char *target, const struct mb_client_options *options,
                      struct mb_client **client_out, char *detail, size_t detail_size) {
    if (detail != NULL && detail_size > 0)
        detail[0] = '\0';
    if (target == NULL || client_out == NULL)
        return MB_EINVAL;
    char host[256], port[8];
    const char *reason = NULL;
    if (split_target(target, host, sizeof host, port, sizeof port, &reason) != 0) {
        if (detail != NULL && detail_size > 0)
            snprintf(detail, detail_size, "bad target '%s': %s", target, reason);
        return MB_EADDRESS;
    }
    struct addrinfo hints = {
        .ai_family = AF_UNSPEC, .ai_socktype = SOCK_STREAM, .ai_flags = AI_NUMERICSERV};
    struct addrinfo *found = NULL;
    int gai = getaddrinfo(host, port, &hints, &found);
    if (gai != 0 || found == NULL) {
        if (detail != NULL && detail_size > 0)
            snprintf(detail, detail_size, "cannot resolve '%s': %s", host, gai_strerror(gai));
        return MB_EADDRESS;
    }
    /* A name may stand for several addresses ("localhost": ::1 and 127.0.0.1): try each in the
     * resolver's order, all within one connect timeout. */
    uint32_t connect_timeout = options != NULL && options->connect_timeout_ms != 0
                                   ? options->connect_timeout_ms
                                   : DEFAULT_CONNECT_TIMEOUT_MS;
    uint64_t deadline = mb__client_now_us() + (uint64_t)connect_timeout * 1000u;
    int rc = MB_ECONNECT;
    for (struct addrinfo *candidate = found; candidate != NULL; candidate = candidate->ai_next) {
        int fd = -1, system_errno = 0;
        char text[64];
        mb_address_format(candidate->ai_addr, candidate->ai_addrlen, text, sizeof text);
        rc = connect_one(candidate->ai_addr, candidate->ai_addrlen, deadline, &fd, &system_errno);
        if (rc != 0) {
            connect_detail(detail, detail_size, text, system_errno);
            continue;
        }
        struct mb_client *client;
        rc = client_create(candidate->ai_addr, candidate->ai_addrlen, options, &client);
        if (rc != 0) {
            close(fd);
            break;
        }
        rc = mb__client_wrap(client->options.wrap, client->options.wrap_data, fd,
                             &client->transport);
        if (rc == 0)
            rc = finish_handshake(&client->transport, deadline, text, detail, detail_size);
        else if (detail != NULL && detail_size > 0)
            snprintf(detail, detail_size, "connect to %s: %s", text, mb_strerror(rc));
        if (rc != 0) {
            free(client);
            break;
        }
        client->stats.connects++;
        *client_out = client;
        freeaddrinfo(found);
        return 0;
    }
    freeaddrinfo(found);
    return rc;
}

int mb_client_open_serial(const char *path, const struct mb_serial_config *line,
                          const struct mb_client_options *options, struct mb_client **client_out,
                          char *detail, size_t detail_size) {
    if (detail != NULL && detail_size > 0)
        detail[0] = '\0';
    if (path == NULL || client_out == NULL)
        return MB_EINVAL;
    struct mb_client *client = calloc(1, sizeof *client);
    if (client == NULL || (client->serial_path = strdup(path)) == NULL) {
        free(client);
        return MB_ENOMEM;
    }
    if (options != NULL)
        client->options = *options;
    if (client->options.timeout_ms == 0)
        client->options.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (client->options.framing != MB_FRAMING_ASCII)
        client->options.framing = MB_FRAMING_RTU;
    client->options.wrap = NULL;
    if (line != NULL)
        client->line = *line;
    client->baud = client->line.baud != 0 ? client->line.baud : 19200;
    uint32_t t15, t35;
    mb_rtu_timing(client->baud, &t15, &t35);
    client->silence_us = client->options.rtu_silence_us != 0 ? client->options.rtu_silence_us : t35;
    snprintf(client->peer, sizeof client->peer, "%s", path);
    reset_stream(client);
    int rc = reopen_serial(client);
    if (rc != 0) {
        if (detail != NULL && detail_size > 0)
            snprintf(detail, detail_size, "%s", client->detail);
        free(client->serial_path);
        free(client);
        return rc;
    }
    *client_out = client;
    return 0;
}

void mb_client_close(struct mb_client *client) {
    if (client == NULL)
        return;
    disconnect(client);
    free(client->serial_path);
    free(client);
}

void mb_client_set_timeout(struct mb_client *client, uint32_t timeout_ms) {
    client->options.timeout_ms = timeout_ms != 0 ? timeout_ms : DEFAULT_TIMEOUT_MS;
}

const char *mb_client_error_detail(const struct mb_client *client) {
    return client->detail;
}

int mb_client_connected(const struct mb_client *client) {
    return client->transport != NULL;
}

const char *mb_client_peer(const struct mb_client *client) {
    return client->peer;
}

void mb_client_stats(const struct mb_client *client, struct mb_client_stats *stats) {
    *stats = client->stats;
}

/* ---- one exchange ---- */

/* Records a lost connection: closes it and says why. */
static int connection_lost(struct mb_client *client, int rc, const char *when) {
    int system_errno = client->transport->system_errno;
    int mid_frame = mb_mbap_decoder_pending(&client->decoder);
    const char *detail = client->transport->detail;
    if (rc == MB_ETLS) {
        /* In TLS 1.3 a server's refusal of our certificate arrives after our side of the
         * handshake finished, at the first read: it is still a failed handshake. */
        snprintf(client->detail, sizeof client->detail, "TLS with %s failed: %s", client->peer,
                 detail != NULL && detail[0] != '\0' ? detail : mb_strerror(rc));
        disconnect(client);
        return MB_ETLS;
    }
    if (rc == MB_ECLOSED)
        snprintf(client->detail, sizeof client->detail, "%s closed the connection %s", client->peer,
                 mid_frame ? "in the middle of a response" : when);
    else
        snprintf(client->detail, sizeof client->detail, "connection to %s failed %s: %s",
                 client->peer, when, system_errno != 0 ? strerror(system_errno) : mb_strerror(rc));
    disconnect(client);
    return rc == MB_EIO ? MB_EIO : MB_ECLOSED;
}

static int write_all(struct mb_client *client, const uint8_t *data, size_t length,
                     uint64_t deadline_us) {
    size_t sent = 0;
    while (sent < length) {
        long count = client->transport->ops->write(client->transport, data + sent, length - sent);
        client->stats.writes++;
        if (count > 0) {
            sent += (size_t)count;
            continue;
        }
        if (count != MB_EAGAIN)
            return connection_lost(client, (int)count, "while the request was being sent");
        /* Waiting for readability as well would wake at once for any unread answer and spin
         * while the peer is not reading. */
        unsigned wanted = client->transport->ops->want(client->transport);
        int rc = wait_ready(client->transport->fd, wanted != 0 ? wanted : MB_IO_WRITE, deadline_us);
        if (rc != 0) {
            /* Part of a frame may be on the wire: the stream is no longer framed, so the
             * connection cannot carry another request. */
            if (rc == MB_ETIMEDOUT)
                snprintf(client->detail, sizeof client->detail,
                         "timed out sending the request to %s after %u ms", client->peer,
                         client->options.timeout_ms);
            else
                snprintf(client->detail, sizeof client->detail, "waiting to send to %s failed: %s",
                         client->peer, strerror(errno));
            disconnect(client);
            return rc;
        }
    }
    return 0;
}

/* Reads more input, waiting until `deadline_us` at most: 0 with input[] filled (and its time
 * noted, for the RTU decoder), MB_ETIMEDOUT, or the connection was lost. */
static int read_more(struct mb_client *client, uint64_t deadline_us) {
    struct mb_transport *transport = client->transport;
    for (;;) {
        long count = transport->ops->read(transport, client->input, sizeof client->input);
        if (count > 0) {
            client->input_start = 0;
            client->input_end = (size_t)count;
            client->input_time_us = mb__client_now_us();
            return 0;
        }
        if (count != MB_EAGAIN)
            return connection_lost(client, (int)count, "before it answered");
        unsigned wanted = transport->ops->want(transport);
        int rc = wait_ready(transport->fd, wanted != 0 ? wanted : MB_IO_READ, deadline_us);
        if (rc != 0)
            return rc;
    }
}

/* Checks the frame that answers the request pdu[0..length) to unit_id and fills `reply`:
 * 0, the exception code, or MB_EMISMATCH / a decoding error. */
static int finish_answer(struct mb_client *client, const uint8_t *pdu, size_t length,
                         uint8_t unit_id, struct mb_adu *frame, uint64_t started,
                         struct mb_reply *reply) {
    /* The frame may point into a decoder, which the next feed reuses: keep a copy and decode
     * the copy, so the reply's views stay valid. */
    memcpy(reply->pdu, frame->pdu, frame->pdu_length);
    reply->length = frame->pdu_length;
    reply->transaction_id = frame->header.transaction_id;
    reply->unit_id = frame->header.unit_id;
    reply->elapsed_us = (uint32_t)(mb__client_now_us() - started);
    frame->pdu = reply->pdu;
    int rc = mb__client_check(pdu, length, unit_id, frame, &reply->response, client->detail,
                              sizeof client->detail);
    if (rc == MB_EMISMATCH) {
        client->stats.mismatched++;
        return rc;
    }
    if (rc != 0) {
        client->stats.malformed++;
        return rc;
    }
    client->stats.responses++;
    if (reply->response.exception != 0) {
        client->stats.exceptions++;
        snprintf(client->detail, sizeof client->detail, "exception %02X %s",
                 reply->response.exception, mb_exception_name(reply->response.exception));
        return reply->response.exception;
    }
    return 0;
}

static int exchange_rtu(struct mb_client *client, uint8_t unit_id, const uint8_t *pdu,
                        size_t length, struct mb_reply *reply);
static int exchange_ascii(struct mb_client *client, uint8_t unit_id, const uint8_t *pdu,
                          size_t length, struct mb_reply *reply);

/*
 * Sends one request and waits for the frame carrying its transaction id. Frames for other
 * transactions (late answers to requests that timed out, duplicates) are discarded and counted.
 */
static int exchange(struct mb_client *client, uint8_t unit_id, const uint8_t *pdu, size_t length,
                    struct mb_reply *reply) {
    if (client->options.framing == MB_FRAMING_RTU)
        return exchange_rtu(client, unit_id, pdu, length, reply);
    if (client->options.framing == MB_FRAMING_ASCII)
        return exchange_ascii(client, unit_id, pdu, length, reply);
    uint8_t adu[MB_ADU_MAX];
    uint16_t transaction_id = client->next_transaction++;
    mb_mbap_encode(transaction_id, unit_id, length, adu, sizeof adu);
    memcpy(adu + MB_MBAP_HEADER_SIZE, pdu, length);

    uint64_t started = mb__client_now_us();
    uint64_t deadline = started + (uint64_t)client->options.timeout_ms * 1000u;
    int rc = write_all(client, adu, MB_MBAP_HEADER_SIZE + length, deadline);
    if (rc != 0)
        return rc;
    client->stats.requests++;

    for (;;) {
        while (client->input_start < client->input_end) {
            size_t consumed = 0;
            struct mb_adu frame;
            int fed =
                mb_mbap_decoder_feed(&client->decoder, client->input + client->input_start,
                                     client->input_end - client->input_start, &consumed, &frame);
            client->input_start += consumed;
            client->stats.discarded += client->decoder.discarded - client->discarded_seen;
            client->discarded_seen = client->decoder.discarded;
            if (fed < 0) {
                snprintf(client->detail, sizeof client->detail,
                         "%s sent a frame whose MBAP length is outside 2..254", client->peer);
                disconnect(client);
                return fed;
            }
            if (fed == 0)
                break;
            if (frame.header.transaction_id != transaction_id) {
                client->stats.unmatched++;
                continue;
            }
            return finish_answer(client, pdu, length, unit_id, &frame, started, reply);
        }
        rc = read_more(client, deadline);
        if (rc == MB_ETIMEDOUT) {
            client->stats.timeouts++;
            snprintf(client->detail, sizeof client->detail, "no answer from %s within %u ms",
                     client->peer, client->options.timeout_ms);
        }
        if (rc != 0)
            return rc;
    }
}

/* ---- RTU framing ---- */

static int refuse(struct mb_client *client, int rc, const char *why);

static void sleep_us(uint64_t us) {
    struct timespec pause = {.tv_sec = (time_t)(us / 1000000u),
                             .tv_nsec = (long)(us % 1000000u) * 1000};
    while (nanosleep(&pause, &pause) != 0 && errno == EINTR)
        ;
}

/* Drops whatever arrived since the last exchange (a late answer, noise), so that it can never
 * pass for the next request's answer. 0, or the connection was lost. */
static int drop_stale_input(struct mb_client *client) {
    size_t dropped = client->input_end - client->input_start;
    client->input_start = client->input_end = 0;
    for (;;) {
        long count =
            client->transport->ops->read(client->transport, client->input, sizeof client->input);
        if (count == MB_EAGAIN)
            break;
        if (count < 0)
            return connection_lost(client, (int)count, "before the request was sent");
        dropped += (size_t)count;
    }
    if (dropped > 0)
        client->stats.unmatched++;
    reset_serial_decoders(client);
    return 0;
}

/* What take_rtu_frame() returns for a frame that is not the answer awaited: out of the range of
 * every other result (0, exception codes 1..255, negative errors). */
#define RTU_NOT_OURS 0x10000

/* A frame the RTU decoder handed out while waiting for unit_id's answer: RTU_NOT_OURS when it
 * is not that answer (another unit's frame: counted and passed over), else what
 * finish_answer() says. */
static int take_rtu_frame(struct mb_client *client, const uint8_t *pdu, size_t length,
                          uint8_t unit_id, uint8_t address, const uint8_t *answer,
                          size_t answer_length, uint64_t started, struct mb_reply *reply) {
    if (address != unit_id) {
        client->stats.unmatched++;
        return RTU_NOT_OURS;
    }
    struct mb_adu frame = {.header = {.length = (uint16_t)(answer_length + 1), .unit_id = address},
                           .pdu = answer,
                           .pdu_length = answer_length};
    return finish_answer(client, pdu, length, unit_id, &frame, started, reply);
}

/* The unit ids a serial line refuses: 248..255, and a broadcast of what is not a write. */
static int check_serial_unit(struct mb_client *client, uint8_t unit_id, uint8_t function) {
    if (unit_id > MB_SERIAL_ADDRESS_MAX)
        return refuse(client, MB_EINVAL, "unit ids 248..255 are reserved on a serial line");
    if (unit_id == MB_SERIAL_BROADCAST && !mb_function_is_broadcastable(function))
        return refuse(client, MB_EINVAL,
                      "unit 0 is a broadcast, which nobody answers: writes only (FC 5, 6, 15, "
                      "16, 21, 22)");
    return 0;
}

/* The adapter's echo of the request comes first: dropped byte for byte. A byte that differs
 * means the echo was lost (or garbled): what follows is taken as it comes, including what
 * looked like the echo's start in this read (an answer shares the unit and function bytes). */
static void skip_echo(struct mb_client *client, const uint8_t *frame, size_t size,
                      size_t *echo_seen) {
    size_t taken = 0;
    while (*echo_seen < size && client->input_start < client->input_end) {
        if (client->input[client->input_start] != frame[*echo_seen]) {
            *echo_seen = size;
            client->input_start -= taken;
            return;
        }
        taken++;
        client->input_start++;
        (*echo_seen)++;
    }
}

/* The timeout came without an answer: the damage seen meanwhile, or the timeout itself. */
static int no_valid_answer(struct mb_client *client, uint8_t unit_id, int damaged) {
    client->stats.timeouts++;
    if (damaged != 0) {
        snprintf(client->detail, sizeof client->detail,
                 "the answer from %s unit %u was damaged (%s)", client->peer, unit_id,
                 mb_strerror(damaged));
        return damaged;
    }
    snprintf(client->detail, sizeof client->detail, "no answer from %s unit %u within %u ms",
             client->peer, unit_id, client->options.timeout_ms);
    return MB_ETIMEDOUT;
}

/*
 * Feeds what was read to the decoder of the client's serial framing (RTU or ASCII) and takes
 * each whole frame: returns what take_rtu_frame() says for the answer awaited, or RTU_NOT_OURS
 * when none came yet (frames of other units passed over, damaged ones counted in *damaged).
 */
static int take_serial_input(struct mb_client *client, const uint8_t *pdu, size_t length,
                             uint8_t unit_id, uint64_t started, struct mb_reply *reply,
                             int *damaged) {
    while (client->input_start < client->input_end) {
        size_t consumed = 0;
        uint8_t address;
        const uint8_t *answer;
        size_t answer_length;
        const uint8_t *data = client->input + client->input_start;
        size_t available = client->input_end - client->input_start;
        int fed = client->options.framing == MB_FRAMING_ASCII
                      ? mb_ascii_decoder_feed(&client->ascii, (const char *)data, available,
                                              &consumed, &address, &answer, &answer_length)
                      : mb_rtu_decoder_feed(&client->rtu, data, available, client->input_time_us,
                                            &consumed, &address, &answer, &answer_length);
        client->input_start += consumed;
        if (fed < 0) {
            client->stats.malformed++;
            *damaged = fed;
            continue;
        }
        if (fed == 0)
            break;
        int rc = take_rtu_frame(client, pdu, length, unit_id, address, answer, answer_length,
                                started, reply);
        if (rc != RTU_NOT_OURS)
            return rc;
    }
    return RTU_NOT_OURS;
}

/* Sends a serial frame: what is left of earlier exchanges dropped, the line quiet first, then
 * the frame written; *started and *deadline are the exchange's. */
static int send_serial_frame(struct mb_client *client, const uint8_t *frame, size_t size,
                             uint64_t *started, uint64_t *deadline) {
    int rc = drop_stale_input(client);
    if (rc != 0)
        return rc;
    uint64_t now = mb__client_now_us();
    if (client->quiet_at_us > now)
        sleep_us(client->quiet_at_us - now);
    *started = mb__client_now_us();
    *deadline = *started + (uint64_t)client->options.timeout_ms * 1000u;
    return write_all(client, frame, size, *deadline);
}

/*
 * One request with RTU framing: the line quiet for t3.5 first, the frame written, then bytes
 * fed to the RTU decoder until the answer from unit_id is whole, the line falls silent on a
 * frame whose length could not be judged, or the timeout. A broadcast (unit 0) waits for no
 * answer. A frame with a bad CRC is counted and waited past: a good answer may still follow
 * a burst of noise; if none does, the call fails with the CRC error rather than a timeout.
 */
static int exchange_rtu(struct mb_client *client, uint8_t unit_id, const uint8_t *pdu,
                        size_t length, struct mb_reply *reply) {
    int rc = check_serial_unit(client, unit_id, pdu[0]);
    if (rc != 0)
        return rc;
    uint8_t frame[MB_RTU_FRAME_MAX];
    int size = mb_rtu_encode(unit_id, pdu, length, frame, sizeof frame);
    if (size < 0)
        return refuse(client, MB_EINVAL, "the request does not fit an RTU frame");
    uint64_t started, deadline;
    rc = send_serial_frame(client, frame, (size_t)size, &started, &deadline);
    if (rc != 0)
        return rc;
    uint64_t now;
    client->stats.requests++;
    /* write() returns once the bytes are in the driver: the line carries them for a while. */
    uint64_t on_wire = client->baud != 0 ? (uint64_t)size * 11u * 1000000u / client->baud : 0;
    client->quiet_at_us = mb__client_now_us() + on_wire + client->silence_us;
    if (unit_id == MB_SERIAL_BROADCAST) {
        memset(reply, 0, sizeof *reply);
        client->quiet_at_us += BROADCAST_TURNAROUND_US;
        return 0;
    }
    int damaged = 0; /* a frame dropped for its CRC or length while waiting */
    size_t echo_seen = client->options.rtu_echo ? 0 : (size_t)size;
    for (;;) {
        skip_echo(client, frame, (size_t)size, &echo_seen);
        rc = take_serial_input(client, pdu, length, unit_id, started, reply, &damaged);
        if (rc != RTU_NOT_OURS)
            return rc;
        uint64_t silence_at = mb_rtu_decoder_deadline(&client->rtu);
        uint64_t wake = silence_at != 0 && silence_at < deadline ? silence_at : deadline;
        rc = read_more(client, wake);
        /* The next request waits until the line has been quiet for t3.5 after what it carried
         * last, so that the other devices on the bus see this answer end before it begins. */
        if (rc == 0 && client->input_time_us + client->silence_us > client->quiet_at_us)
            client->quiet_at_us = client->input_time_us + client->silence_us;
        if (rc == MB_ETIMEDOUT) {
            now = mb__client_now_us();
            uint8_t address;
            const uint8_t *answer;
            size_t answer_length;
            int ended =
                mb_rtu_decoder_silence(&client->rtu, now, &address, &answer, &answer_length);
            if (ended < 0) {
                client->stats.malformed++;
                damaged = ended;
            } else if (ended == 1) {
                rc = take_rtu_frame(client, pdu, length, unit_id, address, answer, answer_length,
                                    started, reply);
                if (rc != RTU_NOT_OURS)
                    return rc;
            }
            if (now < deadline)
                continue;
            return no_valid_answer(client, unit_id, damaged);
        }
        if (rc != 0)
            return rc;
    }
}

/*
 * One request with ASCII framing (':' hex LRC CR LF): written, then characters fed to the ASCII
 * decoder until the answer from unit_id is whole, or the timeout. A frame ends at its CR LF, so
 * no silence is needed; the rest is as for RTU (stale input dropped first, another unit's frame
 * passed over, a damaged one counted and waited past, the echo of a 2-wire adapter dropped, a
 * broadcast answered by nobody).
 */
static int exchange_ascii(struct mb_client *client, uint8_t unit_id, const uint8_t *pdu,
                          size_t length, struct mb_reply *reply) {
    int rc = check_serial_unit(client, unit_id, pdu[0]);
    if (rc != 0)
        return rc;
    char frame[MB_ASCII_FRAME_MAX];
    int size = mb_ascii_encode(unit_id, pdu, length, frame, sizeof frame);
    if (size < 0)
        return refuse(client, MB_EINVAL, "the request does not fit an ASCII frame");
    uint64_t started, deadline;
    rc = send_serial_frame(client, (const uint8_t *)frame, (size_t)size, &started, &deadline);
    if (rc != 0)
        return rc;
    client->stats.requests++;
    client->quiet_at_us = 0;
    if (unit_id == MB_SERIAL_BROADCAST) {
        memset(reply, 0, sizeof *reply);
        uint64_t on_wire = client->baud != 0 ? (uint64_t)size * 10u * 1000000u / client->baud : 0;
        client->quiet_at_us = mb__client_now_us() + on_wire + BROADCAST_TURNAROUND_US;
        return 0;
    }
    int damaged = 0;
    size_t echo_seen = client->options.rtu_echo ? 0 : (size_t)size;
    for (;;) {
        skip_echo(client, (const uint8_t *)frame, (size_t)size, &echo_seen);
        rc = take_serial_input(client, pdu, length, unit_id, started, reply, &damaged);
        if (rc != RTU_NOT_OURS)
            return rc;
        rc = read_more(client, deadline);
        if (rc == MB_ETIMEDOUT) {
            return no_valid_answer(client, unit_id, damaged);
        }
        if (rc != 0)
            return rc;
    }
}

int mb_client_call(struct mb_client *client, uint8_t unit_id, const uint8_t *pdu, size_t length,
                   struct mb_reply *reply) {
    if (client == NULL || pdu == NULL || length == 0 || length > MB_PDU_MAX)
        return MB_EINVAL;
    struct mb_reply scratch;
    if (reply == NULL)
        reply = &scratch;
    reply->length = 0;
    client->detail[0] = '\0';
    /* FC 43 is only a read with MEI type 14 (device identification): a CANopen request through
     * MEI 13 may write. */
    int repeatable =
        mb_function_is_idempotent(pdu[0]) &&
        (pdu[0] != MB_FC_ENCAPSULATED_INTERFACE || (length >= 2 && pdu[1] == MB_MEI_DEVICE_ID));
    uint32_t attempts = 1 + (repeatable ? client->options.retries : 0);
    int rc = MB_ECLOSED;
    for (uint32_t attempt = 0; attempt < attempts; attempt++) {
        if (client->transport == NULL) {
            if (!client->options.reconnect) {
                if (attempt == 0)
                    snprintf(client->detail, sizeof client->detail,
                             "not connected to %s (the connection was lost)", client->peer);
                return rc;
            }
            rc = reconnect(client);
            if (rc != 0)
                return rc;
        }
        rc = exchange(client, unit_id, pdu, length, reply);
        if (rc != MB_ETIMEDOUT && rc != MB_ECLOSED && rc != MB_EIO && rc != MB_ECRC &&
            rc != MB_EFRAME && rc != MB_ELRC && rc != MB_ECHARACTER)
            return rc;
    }
    if (rc == MB_ETIMEDOUT && attempts > 1) {
        /* The message names one attempt's timeout: say that there were several. */
        size_t used = strlen(client->detail);
        snprintf(client->detail + used, sizeof client->detail - used, " (%u attempts)", attempts);
    }
    return rc;
}

int mb_client_request(struct mb_client *client, uint8_t unit_id, const struct mb_request *request,
                      struct mb_reply *reply) {
    if (client == NULL || request == NULL)
        return MB_EINVAL;
    uint8_t pdu[MB_PDU_MAX];
    int length = mb_request_encode(request, pdu, sizeof pdu);
    if (length < 0) {
        /* MB_EINVAL, not the encoder's code: the same codes describe malformed answers, and a
         * caller must be able to tell "nothing was sent" from "the device answered badly". */
        snprintf(client->detail, sizeof client->detail, "invalid arguments: %s request: %s",
                 mb_function_name(request->function), mb_strerror(length));
        return MB_EINVAL;
    }
    return mb_client_call(client, unit_id, pdu, (size_t)length, reply);
}

/* ---- one call per function code ---- */

/* Refuses a call's arguments before anything is sent, saying why. */
static int refuse(struct mb_client *client, int rc, const char *why) {
    if (client != NULL)
        snprintf(client->detail, sizeof client->detail, "invalid arguments: %s", why);
    return rc;
}

static int read_bits(struct mb_client *client, uint8_t function, uint8_t unit_id, uint16_t address,
                     uint16_t quantity, uint8_t *bits) {
    if (bits == NULL)
        return refuse(client, MB_EINVAL, "no place for the bits read");
    struct mb_request request = {.function = function, .read = {address, quantity}};
    struct mb_reply reply;
    int rc = mb_client_request(client, unit_id, &request, &reply);
    if (rc == 0)
        mb_bits_unpack(reply.response.read.data, quantity, bits);
    return rc;
}

static int read_registers(struct mb_client *client, uint8_t function, uint8_t unit_id,
                          uint16_t address, uint16_t quantity, uint16_t *values) {
    if (values == NULL)
        return refuse(client, MB_EINVAL, "no place for the registers read");
    struct mb_request request = {.function = function, .read = {address, quantity}};
    struct mb_reply reply;
    int rc = mb_client_request(client, unit_id, &request, &reply);
    if (rc == 0)
        mb_registers_from_wire(reply.response.read.data, quantity, values);
    return rc;
}

int mb_read_coils(struct mb_client *client, uint8_t unit_id, uint16_t address, uint16_t quantity,
                  uint8_t *bits) {
    return read_bits(client, MB_FC_READ_COILS, unit_id, address, quantity, bits);
}

int mb_read_discrete_inputs(struct mb_client *client, uint8_t unit_id, uint16_t address,
                            uint16_t quantity, uint8_t *bits) {
    return read_bits(client, MB_FC_READ_DISCRETE_INPUTS, unit_id, address, quantity, bits);
}

int mb_read_holding_registers(struct mb_client *client, uint8_t unit_id, uint16_t address,
                              uint16_t quantity, uint16_t *values) {
    return read_registers(client, MB_FC_READ_HOLDING_REGISTERS, unit_id, address, quantity, values);
}

int mb_read_input_registers(struct mb_client *client, uint8_t unit_id, uint16_t address,
                            uint16_t quantity, uint16_t *values) {
    return read_registers(client, MB_FC_READ_INPUT_REGISTERS, unit_id, address, quantity, values);
}

int mb_write_coil(struct mb_client *client, uint8_t unit_id, uint16_t address, int on) {
    struct mb_request request = {.function = MB_FC_WRITE_SINGLE_COIL,
                                 .write_single = {address, on ? MB_COIL_ON : MB_COIL_OFF}};
    return mb_client_request(client, unit_id, &request, NULL);
}

int mb_write_register(struct mb_client *client, uint8_t unit_id, uint16_t address, uint16_t value) {
    struct mb_request request = {.function = MB_FC_WRITE_SINGLE_REGISTER,
                                 .write_single = {address, value}};
    return mb_client_request(client, unit_id, &request, NULL);
}

int mb_read_exception_status(struct mb_client *client, uint8_t unit_id, uint8_t *status) {
    if (status == NULL)
        return refuse(client, MB_EINVAL, "no place for the status");
    struct mb_request request = {.function = MB_FC_READ_EXCEPTION_STATUS};
    struct mb_reply reply;
    int rc = mb_client_request(client, unit_id, &request, &reply);
    if (rc == 0)
        *status = reply.response.exception_status;
    return rc;
}

int mb_diagnostics(struct mb_client *client, uint8_t unit_id, uint16_t sub_function,
                   const uint8_t *data, size_t length, struct mb_reply *reply) {
    if (length > MB_PDU_MAX - 3 || (length > 0 && data == NULL))
        return refuse(client, MB_EINVAL, "diagnostics data over 250 bytes, or missing");
    struct mb_request request = {.function = MB_FC_DIAGNOSTICS,
                                 .diagnostics = {sub_function, data, (uint8_t)length}};
    return mb_client_request(client, unit_id, &request, reply);
}

int mb_get_comm_event_counter(struct mb_client *client, uint8_t unit_id, uint16_t *status,
                              uint16_t *event_count) {
    if (status == NULL || event_count == NULL)
        return refuse(client, MB_EINVAL, "no place for the counter");
    struct mb_request request = {.function = MB_FC_GET_COMM_EVENT_COUNTER};
    struct mb_reply reply;
    int rc = mb_client_request(client, unit_id, &request, &reply);
    if (rc == 0) {
        *status = reply.response.event_counter.status;
        *event_count = reply.response.event_counter.event_count;
    }
    return rc;
}

int mb_get_comm_event_log(struct mb_client *client, uint8_t unit_id, struct mb_reply *reply) {
    struct mb_request request = {.function = MB_FC_GET_COMM_EVENT_LOG};
    return mb_client_request(client, unit_id, &request, reply);
}

int mb_write_coils(struct mb_client *client, uint8_t unit_id, uint16_t address, uint16_t quantity,
                   const uint8_t *bits) {
    if (bits == NULL)
        return refuse(client, MB_EINVAL, "no coil values");
    if (quantity == 0 || quantity > MB_MAX_WRITE_BITS)
        return refuse(client, MB_EINVAL, "FC 15 writes 1..1968 coils");
    uint8_t packed[(MB_MAX_WRITE_BITS + 7) / 8];
    mb_bits_pack(bits, quantity, packed);
    struct mb_request request = {.function = MB_FC_WRITE_MULTIPLE_COILS,
                                 .write_multiple = {address, quantity, packed}};
    return mb_client_request(client, unit_id, &request, NULL);
}

int mb_write_registers(struct mb_client *client, uint8_t unit_id, uint16_t address,
                       uint16_t quantity, const uint16_t *values) {
    if (values == NULL)
        return refuse(client, MB_EINVAL, "no register values");
    if (quantity == 0 || quantity > MB_MAX_WRITE_REGISTERS)
        return refuse(client, MB_EINVAL, "FC 16 writes 1..123 registers");
    uint8_t wire[2 * MB_MAX_WRITE_REGISTERS];
    mb_registers_to_wire(values, quantity, wire);
    struct mb_request request = {.function = MB_FC_WRITE_MULTIPLE_REGISTERS,
                                 .write_multiple = {address, quantity, wire}};
    return mb_client_request(client, unit_id, &request, NULL);
}

int mb_report_server_id(struct mb_client *client, uint8_t unit_id, struct mb_reply *reply) {
    struct mb_request request = {.function = MB_FC_REPORT_SERVER_ID};
    return mb_client_request(client, unit_id, &request, reply);
}

static int file_request(struct mb_client *client, uint8_t unit_id, uint8_t function, uint8_t layout,
                        const struct mb_file_record *records, size_t count,
                        struct mb_reply *reply) {
    if (records == NULL || count == 0)
        return refuse(client, MB_EINVAL, "no file records");
    uint8_t data[MB_PDU_MAX];
    size_t used = 0;
    for (size_t i = 0; i < count; i++) {
        int rc = mb_file_records_append(layout, &records[i], data, MB_PDU_MAX - 2, &used);
        if (rc != 0)
            return refuse(client, MB_EINVAL,
                          rc == MB_ENOSPC ? "the file records do not fit one request"
                                          : "a file record of 0 registers or over 127");
    }
    struct mb_request request = {.function = function,
                                 .file = {data, (uint8_t)used, (uint8_t)count, layout}};
    return mb_client_request(client, unit_id, &request, reply);
}

int mb_read_file_record(struct mb_client *client, uint8_t unit_id,
                        const struct mb_file_record *records, size_t count,
                        struct mb_reply *reply) {
    return file_request(client, unit_id, MB_FC_READ_FILE_RECORD, MB_FILE_READ_REQUEST, records,
                        count, reply);
}

int mb_write_file_record(struct mb_client *client, uint8_t unit_id,
                         const struct mb_file_record *records, size_t count) {
    return file_request(client, unit_id, MB_FC_WRITE_FILE_RECORD, MB_FILE_WRITE, records, count,
                        NULL);
}

int mb_mask_write_register(struct mb_client *client, uint8_t unit_id, uint16_t address,
                           uint16_t and_mask, uint16_t or_mask) {
    struct mb_request request = {.function = MB_FC_MASK_WRITE_REGISTER,
                                 .mask_write = {address, and_mask, or_mask}};
    return mb_client_request(client, unit_id, &request, NULL);
}

int mb_read_write_registers(struct mb_client *client, uint8_t unit_id, uint16_t write_address,
                            uint16_t write_quantity, const uint16_t *write_values,
                            uint16_t read_address, uint16_t read_quantity, uint16_t *read_values) {
    if (write_values == NULL || read_values == NULL)
        return refuse(client, MB_EINVAL, "no place for the registers written or read");
    if (write_quantity == 0 || write_quantity > MB_MAX_RW_WRITE_REGISTERS)
        return refuse(client, MB_EINVAL, "FC 23 writes 1..121 registers");
    uint8_t wire[2 * MB_MAX_RW_WRITE_REGISTERS];
    mb_registers_to_wire(write_values, write_quantity, wire);
    struct mb_request request = {
        .function = MB_FC_READ_WRITE_MULTIPLE_REGISTERS,
        .read_write = {read_address, read_quantity, write_address, write_quantity, wire}};
    struct mb_reply reply;
    int rc = mb_client_request(client, unit_id, &request, &reply);
    if (rc == 0)
        mb_registers_from_wire(reply.response.read.data, read_quantity, read_values);
    return rc;
}

int mb_read_fifo_queue(struct mb_client *client, uint8_t unit_id, uint16_t address,
                       uint16_t values[MB_MAX_FIFO_COUNT], uint16_t *count) {
    if (values == NULL || count == NULL)
        return refuse(client, MB_EINVAL, "no place for the queue");
    struct mb_request request = {.function = MB_FC_READ_FIFO_QUEUE, .fifo = {address}};
    struct mb_reply reply;
    int rc = mb_client_request(client, unit_id, &request, &reply);
    if (rc == 0) {
        mb_registers_from_wire(reply.response.fifo.values, reply.response.fifo.count, values);
        *count = reply.response.fifo.count;
    }
    return rc;
}

int mb_read_device_id(struct mb_client *client, uint8_t unit_id, uint8_t read_code,
                      uint8_t object_id, struct mb_reply *reply) {
    struct mb_request request = {.function = MB_FC_ENCAPSULATED_INTERFACE,
                                 .device_id = {MB_MEI_DEVICE_ID, read_code, object_id}};
    return mb_client_request(client, unit_id, &request, reply);
}

int mb_read_device_identification(struct mb_client *client, uint8_t unit_id, uint8_t read_code,
                                  mb_device_object_fn fn, void *data) {
    if (client == NULL || fn == NULL)
        return refuse(client, MB_EINVAL, "no object callback");
    uint8_t object_id = 0;
    struct mb_reply reply;
    for (int transaction = 0; transaction < MAX_DEVICE_ID_TRANSACTIONS; transaction++) {
        int rc = mb_read_device_id(client, unit_id, read_code, object_id, &reply);
        if (rc != 0)
            return rc;
        const struct mb_response *response = &reply.response;
        size_t offset = 0;
        struct mb_device_object object;
        while (mb_device_objects_next(response, &offset, &object) == 1)
            fn(data, &object, response->device_id.conformity_level);
        if (read_code == MB_DEVICE_ID_SPECIFIC || response->device_id.more_follows != 0xFF)
            return 0;
        /* A device that asks to be asked again from the same place (or from behind it) would
         * keep a client asking forever. */
        if (response->device_id.next_object_id <= object_id) {
            snprintf(client->detail, sizeof client->detail,
                     "device identification does not advance: more follows from object 0x%02X "
                     "after a request for 0x%02X",
                     response->device_id.next_object_id, object_id);
            return MB_EMISMATCH;
        }
        object_id = response->device_id.next_object_id;
    }
    snprintf(client->detail, sizeof client->detail,
             "device identification needs more than %d transactions", MAX_DEVICE_ID_TRANSACTIONS);
    return MB_EMISMATCH;
}
