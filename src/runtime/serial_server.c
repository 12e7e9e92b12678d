/* SPDX-License-Identifier: MIT */
/*
 * An RTU slave on a serial line, on the event loop, with the TCP server's handler: bytes are
 * cut into frames by length and by silence (mb_rtu_decoder), requests for the units it answers
 * go to the handler, answers go out once the line has been quiet for t3.5, broadcasts of writes
 * are executed and never answered, and a line that goes away is opened again on a timer.
 */
#include <errno.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "mbsec/error.h"
#include "mbsec/loop.h"
#include "mbsec/pdu.h"
#include "mbsec/serial.h"
#include "mbsec/server.h"
#include "mbsec/transport.h"

#define READ_CHUNK 512
#define DEFAULT_REOPEN_MS 1000
#define STREAM_SILENCE_US 20000 /* RTU over TCP: segments may be delayed */

struct mb_serial_server {
    struct mb_loop *loop;
    struct mb_serial_server_config config;
    struct mb_serial_config line;
    char *path;
    int fd; /* -1 while the line is away */
    struct mb_rtu_decoder decoder;
    struct mb_ascii_decoder ascii; /* config.ascii: frames end at CR LF, no silence */
    struct mb_timer silence_timer; /* ends a frame whose length could not be judged */
    struct mb_timer send_timer;    /* waits for the line to be quiet before an answer */
    struct mb_timer reopen_timer;
    uint64_t quiet_at_us; /* the line has been quiet for t3.5 from then on */
    uint32_t silence_us;
    uint32_t baud;
    uint8_t output[2 * MB_ASCII_FRAME_MAX];
    size_t output_length;
    size_t output_sent;
    unsigned watched;
    struct mb_peer peer;
    uint64_t connection_id;
    int lost_logged;
    int adopted; /* a stream handed over (mb_serial_server_adopt()): never reopened */
    /* MB_RS485_RTS: answers go through a transport on a duplicate of fd that raises RTS
     * around each frame (mb_serial_transport_create_for()); NULL otherwise. */
    struct mb_transport *rts;
    struct mb_serial_server_stats stats;
};

/* Above the TCP server's ids (which count from 1), so that a handler keying state on the
 * connection id (FC 8 listen-only) never mixes a line with a connection. */
static atomic_uint_fast64_t next_line_id = (uint64_t)1 << 48;

static uint64_t monotonic_us(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000000u + (uint64_t)now.tv_nsec / 1000u;
}

/* Milliseconds for the loop's timers, rounded up so that a wait is never cut short. */
static uint64_t ms_until(uint64_t at_us, uint64_t now_us) {
    return at_us > now_us ? (at_us - now_us + 999) / 1000 : 0;
}

static void note(struct mb_serial_server *server, enum mb_log_level level, const char *event,
                 const char *reason) {
    if (server->config.log == NULL)
        return;
    struct mb_log_event record = {
        .level = level,
        .event = event,
        .listener = server->peer.text,
        .reason = reason,
    };
    server->config.log(server->config.log_data, &record);
}

static void on_io(struct mb_loop *loop, int fd, unsigned events, void *data);
static void line_lost(struct mb_serial_server *server, const char *why);

static void watch(struct mb_serial_server *server, unsigned events) {
    if (server->fd >= 0 && events != server->watched) {
        mb_loop_modify(server->loop, server->fd, events);
        server->watched = events;
    }
}

/* ---- answers ---- */

static void close_rts(struct mb_serial_server *server) {
    if (server->rts != NULL) {
        server->rts->ops->close(server->rts);
        server->rts = NULL;
    }
}

static void write_output(struct mb_serial_server *server) {
    if (server->rts != NULL && server->output_sent < server->output_length) {
        /* The whole frame at once, the transmitter on around it (this blocks for its time
         * on the wire). */
        long count = server->rts->ops->write(server->rts, server->output + server->output_sent,
                                             server->output_length - server->output_sent);
        if (count < 0) {
            line_lost(server, "writing an answer failed (RTS toggled)");
            return;
        }
        server->output_sent += (size_t)count;
    }
    while (server->output_sent < server->output_length) {
        ssize_t count = write(server->fd, server->output + server->output_sent,
                              server->output_length - server->output_sent);
        if (count > 0) {
            server->output_sent += (size_t)count;
            continue;
        }
        if (count < 0 && errno == EINTR)
            continue;
        if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK)) {
            watch(server, MB_IO_READ | MB_IO_WRITE);
            return;
        }
        line_lost(server, "writing an answer failed");
        return;
    }
    server->stats.responses++;
    /* write() returns once the driver has the bytes: the line carries them for a while. */
    uint64_t on_wire =
        server->baud != 0 ? (uint64_t)server->output_length * 11u * 1000000u / server->baud : 0;
    /* A stream (RTU over TCP) is nobody else's wire: its answers go at once. */
    if (!server->adopted)
        server->quiet_at_us = monotonic_us() + on_wire + server->silence_us;
    server->output_length = server->output_sent = 0;
    watch(server, MB_IO_READ);
}

static void send_when_quiet(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    struct mb_serial_server *server = timer->data;
    if (server->fd >= 0 && server->output_length > 0)
        write_output(server);
}

/* Sends `frame` once the line has been quiet for t3.5. A new request before an answer went
 * out (the master gave up on it) replaces the old answer. */
static void queue_answer(struct mb_serial_server *server, const uint8_t *frame, size_t length) {
    if (server->output_sent > 0 && server->output_sent < server->output_length) {
        /* Part of an answer is out: it is finished first (cutting it would garble the line),
         * and this one follows it if there is room, else it is dropped like an answer the
         * master gave up on. */
        size_t rest = server->output_length - server->output_sent;
        memmove(server->output, server->output + server->output_sent, rest);
        server->output_sent = 0;
        server->output_length = rest;
        if (rest + length <= sizeof server->output) {
            memcpy(server->output + rest, frame, length);
            server->output_length += length;
        }
        return; /* the descriptor's writability sends it */
    }
    memcpy(server->output, frame, length);
    server->output_length = length;
    server->output_sent = 0;
    uint64_t now = monotonic_us();
    if (now >= server->quiet_at_us) {
        mb_timer_stop(server->loop, &server->send_timer);
        write_output(server);
    } else {
        mb_timer_start(server->loop, &server->send_timer, ms_until(server->quiet_at_us, now),
                       send_when_quiet, server);
    }
}

/* ---- requests ---- */

/* A broadcast write reaches every unit of this slave: the handler gets it once per unit that
 * answers_unit accepts, with that unit id, or once with unit id 0 when every unit is answered
 * (answers_unit NULL: a handler with one set of tables for all). Nothing is answered. */
static void broadcast_to_units(struct mb_serial_server *server, const struct mb_request *request,
                               const uint8_t *pdu, size_t pdu_length) {
    uint8_t response[MB_PDU_MAX];
    struct mb_server_request call = {
        .peer = &server->peer,
        .connection_id = server->connection_id,
        .unit_id = MB_SERIAL_BROADCAST,
        .request = request,
        .pdu = pdu,
        .pdu_length = pdu_length,
    };
    if (server->config.answers_unit == NULL) {
        (void)server->config.handler(server->config.handler_data, &call, response);
        return;
    }
    for (unsigned unit = 1; unit <= MB_SERIAL_ADDRESS_MAX; unit++)
        if (server->config.answers_unit(server->config.unit_data, (uint8_t)unit)) {
            call.unit_id = (uint8_t)unit;
            (void)server->config.handler(server->config.handler_data, &call, response);
        }
}

static void handle(struct mb_serial_server *server, uint8_t unit, const uint8_t *pdu,
                   size_t pdu_length) {
    server->stats.frames++;
    int broadcast = unit == MB_SERIAL_BROADCAST;
    if (broadcast ? !mb_function_is_broadcastable(pdu[0])
                  : unit > MB_SERIAL_ADDRESS_MAX ||
                        (server->config.answers_unit != NULL &&
                         !server->config.answers_unit(server->config.unit_data, unit))) {
        server->stats.ignored++;
        return;
    }
    struct mb_request request;
    uint8_t response[MB_PDU_MAX];
    int rc = mb_request_decode(pdu, pdu_length, &request);
    int length;
    if (rc < 0) {
        /* The exception the spec names for what is wrong with it, 01 or 03. */
        uint8_t code = mb_error_exception(rc);
        length = mb_exception_answer(pdu[0], code != 0 ? code : MB_EX_ILLEGAL_DATA_VALUE, response,
                                     sizeof response);
    } else {
        if (broadcast) {
            server->stats.broadcasts++;
            broadcast_to_units(server, &request, pdu, pdu_length);
            return;
        }
        server->stats.requests++;
        struct mb_server_request call = {
            .peer = &server->peer,
            .connection_id = server->connection_id,
            .unit_id = unit,
            .request = &request,
            .pdu = pdu,
            .pdu_length = pdu_length,
        };
        length = server->config.handler(server->config.handler_data, &call, response);
        if (length == MB_SERVER_DEFER || length == MB_SERVER_CLOSE || length == 0)
            return; /* deferring has no place on a line that waits for its answer */
        if (length < 0 || length > MB_PDU_MAX)
            length =
                mb_exception_answer(pdu[0], MB_EX_SERVER_DEVICE_FAILURE, response, sizeof response);
    }
    if (broadcast)
        return;
    uint8_t frame[MB_ASCII_FRAME_MAX];
    int size = server->config.ascii
                   ? mb_ascii_encode(unit, response, (size_t)length, (char *)frame, sizeof frame)
                   : mb_rtu_encode(unit, response, (size_t)length, frame, sizeof frame);
    if (size > 0)
        queue_answer(server, frame, (size_t)size);
}

static void arm_silence(struct mb_serial_server *server);

static void silence_reached(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    struct mb_serial_server *server = timer->data;
    uint8_t unit;
    const uint8_t *pdu;
    size_t pdu_length;
    uint64_t now = monotonic_us();
    int rc = mb_rtu_decoder_silence(&server->decoder, now, &unit, &pdu, &pdu_length);
    if (rc == 1)
        handle(server, unit, pdu, pdu_length);
    else if (rc < 0)
        server->stats.errors++;
    arm_silence(server);
}

static void arm_silence(struct mb_serial_server *server) {
    uint64_t deadline = server->config.ascii ? 0 : mb_rtu_decoder_deadline(&server->decoder);
    if (deadline == 0) {
        mb_timer_stop(server->loop, &server->silence_timer);
        return;
    }
    mb_timer_start(server->loop, &server->silence_timer, ms_until(deadline, monotonic_us()),
                   silence_reached, server);
}

static void on_io(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)loop;
    (void)fd;
    struct mb_serial_server *server = data;
    if ((events & MB_IO_WRITE) && server->output_length > 0)
        write_output(server);
    if (server->fd < 0 || !(events & MB_IO_READ))
        return;
    uint8_t buffer[READ_CHUNK];
    for (int round = 0; round < 16 && server->fd >= 0; round++) {
        ssize_t count = read(server->fd, buffer, sizeof buffer);
        if (count < 0 && errno == EINTR)
            continue;
        if (count < 0 && (errno == EAGAIN || errno == EWOULDBLOCK))
            break;
        if (count <= 0) {
            line_lost(server, count == 0 ? "the line hung up" : strerror(errno));
            return;
        }
        uint64_t now = monotonic_us();
        if (!server->adopted)
            server->quiet_at_us = now + server->silence_us;
        size_t offset = 0;
        while (offset < (size_t)count && server->fd >= 0) {
            size_t consumed = 0;
            uint8_t unit;
            const uint8_t *pdu;
            size_t pdu_length;
            int rc =
                server->config.ascii
                    ? mb_ascii_decoder_feed(&server->ascii, (const char *)buffer + offset,
                                            (size_t)count - offset, &consumed, &unit, &pdu,
                                            &pdu_length)
                    : mb_rtu_decoder_feed(&server->decoder, buffer + offset, (size_t)count - offset,
                                          now, &consumed, &unit, &pdu, &pdu_length);
            offset += consumed;
            if (rc == 1)
                handle(server, unit, pdu, pdu_length);
            else if (rc < 0)
                server->stats.errors++;
        }
    }
    if (server->fd >= 0)
        arm_silence(server);
}

/* ---- the line ---- */

static int open_line(struct mb_serial_server *server, char *error, size_t error_size) {
    int fd = mb_serial_open(server->path, &server->line, error, error_size);
    if (fd < 0)
        return fd;
    int rc = mb_loop_add(server->loop, fd, MB_IO_READ, on_io, server);
    if (rc != 0) {
        close(fd);
        if (error != NULL && error_size > 0)
            snprintf(error, error_size, "%s: %s", server->path, mb_strerror(rc));
        return rc;
    }
    if (server->line.rs485 == MB_RS485_RTS) {
        int copy = dup(fd);
        if (copy < 0 || mb_serial_transport_create_for(copy, &server->line, &server->rts) != 0) {
            if (copy >= 0)
                close(copy);
            mb_loop_remove(server->loop, fd);
            close(fd);
            if (error != NULL && error_size > 0)
                snprintf(error, error_size, "%s: cannot set up RTS toggling: %s", server->path,
                         strerror(errno));
            return MB_ESYSTEM;
        }
    }
    server->fd = fd;
    server->watched = MB_IO_READ;
    mb_rtu_decoder_init(&server->decoder, 1, server->silence_us);
    mb_ascii_decoder_init(&server->ascii);
    server->quiet_at_us = monotonic_us() + server->silence_us;
    return 0;
}

static void reopen(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    struct mb_serial_server *server = timer->data;
    char why[256];
    if (open_line(server, why, sizeof why) != 0) {
        if (!server->lost_logged) {
            note(server, MB_LOG_WARNING, "serial_unavailable", why);
            server->lost_logged = 1;
        }
        mb_timer_start(server->loop, &server->reopen_timer, server->config.reopen_ms, reopen,
                       server);
        return;
    }
    server->stats.reopened++;
    server->lost_logged = 0;
    note(server, MB_LOG_INFO, "serial_reopened", "the line is back");
}

static void line_lost(struct mb_serial_server *server, const char *why) {
    if (server->fd < 0)
        return;
    if (server->adopted) {
        note(server, MB_LOG_INFO, "stream_closed", why);
        mb_loop_remove(server->loop, server->fd);
        close(server->fd);
        server->fd = -1;
        server->output_length = server->output_sent = 0;
        mb_timer_stop(server->loop, &server->silence_timer);
        mb_timer_stop(server->loop, &server->send_timer);
        if (server->config.on_closed != NULL)
            server->config.on_closed(server->config.closed_data, server);
        return;
    }
    char reason[320];
    snprintf(reason, sizeof reason, "%s; opening it again every %u ms", why,
             server->config.reopen_ms);
    note(server, MB_LOG_WARNING, "serial_lost", reason);
    mb_loop_remove(server->loop, server->fd);
    close(server->fd);
    close_rts(server);
    server->fd = -1;
    server->output_length = server->output_sent = 0;
    mb_timer_stop(server->loop, &server->silence_timer);
    mb_timer_stop(server->loop, &server->send_timer);
    mb_timer_start(server->loop, &server->reopen_timer, server->config.reopen_ms, reopen, server);
}

int mb_serial_server_create(struct mb_loop *loop, const char *path,
                            const struct mb_serial_config *line,
                            const struct mb_serial_server_config *config,
                            struct mb_serial_server **server_out, char *error, size_t error_size) {
    if (error != NULL && error_size > 0)
        error[0] = '\0';
    if (loop == NULL || path == NULL || config == NULL || config->handler == NULL ||
        server_out == NULL)
        return MB_EINVAL;
    struct mb_serial_server *server = calloc(1, sizeof *server);
    if (server == NULL || (server->path = strdup(path)) == NULL) {
        free(server);
        return MB_ENOMEM;
    }
    server->loop = loop;
    server->config = *config;
    if (server->config.reopen_ms == 0)
        server->config.reopen_ms = DEFAULT_REOPEN_MS;
    if (line != NULL)
        server->line = *line;
    server->baud = server->line.baud != 0 ? server->line.baud : 19200;
    uint32_t t15, t35;
    mb_rtu_timing(server->baud, &t15, &t35);
    server->silence_us = config->silence_us != 0 ? config->silence_us : t35;
    server->fd = -1;
    server->connection_id = atomic_fetch_add(&next_line_id, 1);
    snprintf(server->peer.text, sizeof server->peer.text, "serial:%s", path);
    snprintf(server->peer.source, sizeof server->peer.source, "serial");
    int rc = open_line(server, error, error_size);
    if (rc != 0) {
        free(server->path);
        free(server);
        return rc;
    }
    note(server, MB_LOG_INFO, "serial_opened",
         server->config.ascii ? "serving Modbus ASCII" : "serving Modbus RTU");
    *server_out = server;
    return 0;
}

int mb_serial_server_adopt(struct mb_loop *loop, int fd, const char *name,
                           const struct mb_serial_server_config *config,
                           struct mb_serial_server **server_out) {
    if (loop == NULL || fd < 0 || name == NULL || config == NULL || config->handler == NULL ||
        server_out == NULL)
        return MB_EINVAL;
    struct mb_serial_server *server = calloc(1, sizeof *server);
    if (server == NULL || (server->path = strdup(name)) == NULL) {
        free(server);
        return MB_ENOMEM;
    }
    server->loop = loop;
    server->config = *config;
    server->adopted = 1;
    server->silence_us = config->silence_us != 0 ? config->silence_us : STREAM_SILENCE_US;
    server->baud = 0; /* nothing to wait for on a wire */
    server->connection_id = atomic_fetch_add(&next_line_id, 1);
    snprintf(server->peer.text, sizeof server->peer.text, "%s", name);
    snprintf(server->peer.source, sizeof server->peer.source, "rtu-over-tcp");
    int rc = mb_loop_add(loop, fd, MB_IO_READ, on_io, server);
    if (rc != 0) {
        free(server->path);
        free(server);
        return rc;
    }
    server->fd = fd;
    server->watched = MB_IO_READ;
    mb_rtu_decoder_init(&server->decoder, 1, server->silence_us);
    /* A stream: a request split across delayed segments waits for its rest. */
    mb_rtu_decoder_set_stream(&server->decoder, 1);
    mb_ascii_decoder_init(&server->ascii);
    *server_out = server;
    return 0;
}

void mb_serial_server_get_stats(const struct mb_serial_server *server,
                                struct mb_serial_server_stats *stats) {
    *stats = server->stats;
}

void mb_serial_server_destroy(struct mb_serial_server *server) {
    if (server == NULL)
        return;
    mb_timer_stop(server->loop, &server->silence_timer);
    mb_timer_stop(server->loop, &server->send_timer);
    mb_timer_stop(server->loop, &server->reopen_timer);
    close_rts(server);
    if (server->fd >= 0) {
        mb_loop_remove(server->loop, server->fd);
        close(server->fd);
    }
    free(server->path);
    free(server);
}
