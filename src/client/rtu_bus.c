/* SPDX-License-Identifier: MIT */
/*
 * The RTU bus master (client.h): one transaction on the wire at a time, driven by the event
 * loop. Everything that moves the bus on (a submission, input, a timer, the line becoming
 * writable) ends in step(), which finishes what can be finished and starts the next
 * transaction when the line has been quiet long enough. Completion callbacks run only from
 * step() and from the loop's own callbacks, never from inside mb_rtu_bus_submit().
 */
#include <errno.h>
#include <stddef.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "mbsec/error.h"
#include "mbsec/serial.h"

#define DEFAULT_TIMEOUT_MS 1000
#define DEFAULT_ANSWER_TIMEOUT_MS 500
#define DEFAULT_MAX_QUEUED 64
#define DEFAULT_BROADCAST_PAUSE_MS 100
#define DEFAULT_UNIT_FAILURES 3
#define DEFAULT_UNIT_BACKOFF_MS 10000
#define DEFAULT_REOPEN_MIN_MS 100
#define DEFAULT_REOPEN_MAX_MS 30000
#define DEFAULT_CONNECT_TIMEOUT_MS 3000
#define TCP_SILENCE_US 20000 /* TCP segments may be delayed: a wider silence */
#define READ_CHUNK 512

struct request {
    mb_async_done done;
    void *data;
    uint64_t deadline_us;
    uint32_t attempts_left;  /* after the current one */
    uint32_t previous, next; /* the queue, submission order: index + 1 */
    uint8_t unit;
    uint8_t length;
    uint8_t pdu[MB_PDU_MAX];
};

struct unit_health {
    uint32_t failures;      /* failed attempts in a row (no answer at all) */
    uint64_t skip_until_us; /* 0: healthy; else skipped until then, then probed */
};

/* The transaction on the wire. */
struct transaction {
    int active;
    int sending;             /* part of the frame is still to be written */
    struct request *request; /* NULL once its request was completed (its deadline passed) */
    uint8_t unit, function;
    uint8_t frame[MB_RTU_FRAME_MAX];
    size_t size, written, echo_seen;
    uint64_t answer_deadline_us; /* awaiting: when the attempt has failed */
    uint64_t send_deadline_us;   /* sending: when a line that takes nothing more is lost */
    int damaged;                 /* a frame with a bad CRC or length came meanwhile: its error */
    int mismatch;                /* a frame from the unit that did not match: its error */
    int wrong;                   /* a frame from another unit came */
    char detail[320];
};

struct mb_rtu_bus {
    struct mb_loop *loop;
    struct mb_rtu_bus_config config;
    char path[256];
    struct sockaddr_storage address;
    enum mb_async_state state;
    struct mb_transport *transport;
    int connecting_fd;
    int watched;
    uint32_t failures; /* line failures in a row, for the reopen back-off */
    uint64_t random;
    char peer[96]; /* for messages: the path or address, cut if need be */
    uint32_t silence_us;
    uint32_t bits_per_character;

    struct request *requests;
    uint32_t count, free_list, head, tail;

    struct transaction tx;
    struct mb_rtu_decoder decoder;
    uint64_t quiet_at_us; /* no transaction starts before */
    /* The last attempt that timed out: its answer, if it still comes, is recognised. Until
     * late_until_us, a different request of the same unit and function is not sent: its answer
     * and the late one could not be told apart (an FC 3 answer does not say which addresses
     * it holds). The same request again (a retry, the next poll) may go: either answer is
     * right for it. */
    int late_valid;
    uint8_t late_unit, late_function;
    uint8_t late_pdu[MB_PDU_MAX];
    size_t late_length;
    uint64_t late_until_us;
    struct unit_health units[256];

    struct mb_timer wire_timer;
    struct mb_timer reopen_timer;
    struct mb_timer connect_timer;
    struct mb_task step_task;
    int stepping, step_again;
    int destroying;
    struct mb_rtu_bus_stats stats;
};

static void step(struct mb_rtu_bus *bus);
static void open_line(struct mb_rtu_bus *bus);
static void on_io(struct mb_loop *loop, int fd, unsigned events, void *data);

static void event(struct mb_rtu_bus *bus, enum mb_rtu_bus_event what, uint8_t unit,
                  const char *detail) {
    if (bus->config.on_event != NULL && !bus->destroying)
        bus->config.on_event(bus->config.state_data, what, unit, detail);
}

static void set_state(struct mb_rtu_bus *bus, enum mb_async_state state, int error,
                      const char *detail) {
    bus->state = state;
    if (bus->config.on_state != NULL && !bus->destroying)
        bus->config.on_state(bus->config.state_data, state, error, detail ? detail : "");
}

static void on_step_task(struct mb_loop *loop, struct mb_task *task) {
    (void)loop;
    step(task->data);
}

static void post_step(struct mb_rtu_bus *bus) {
    if (!bus->destroying)
        mb_loop_post(bus->loop, &bus->step_task, on_step_task, bus);
}

/* ---- the queue ---- */

static uint32_t index_of(const struct mb_rtu_bus *bus, const struct request *request) {
    return (uint32_t)(request - bus->requests) + 1;
}

static void unlink_request(struct mb_rtu_bus *bus, struct request *request) {
    if (request->previous)
        bus->requests[request->previous - 1].next = request->next;
    else
        bus->head = request->next;
    if (request->next)
        bus->requests[request->next - 1].previous = request->previous;
    else
        bus->tail = request->previous;
    request->next = bus->free_list;
    request->previous = 0;
    bus->free_list = index_of(bus, request);
    bus->count--;
}

/* Takes the request off the queue and calls its callback with `status`. */
static void complete(struct mb_rtu_bus *bus, struct request *request, int status,
                     const uint8_t *answer, size_t answer_length,
                     const struct mb_response *response, const char *detail) {
    uint8_t pdu[MB_PDU_MAX];
    size_t length = request->length;
    uint8_t unit = request->unit;
    memcpy(pdu, request->pdu, length);
    mb_async_done done = request->done;
    void *data = request->data;
    if (bus->tx.request == request)
        bus->tx.request = NULL;
    unlink_request(bus, request);
    struct mb_async_result result = {
        .status = status,
        .unit_id = unit,
        .request_pdu = pdu,
        .request_length = length,
        .response = status == 0 ? response : NULL,
        .response_pdu = answer,
        .response_length = answer_length,
        .detail = detail != NULL ? detail : "",
    };
    done(data, &result);
}

static void fail_all(struct mb_rtu_bus *bus, int status, const char *detail) {
    while (bus->head != 0)
        complete(bus, &bus->requests[bus->head - 1], status, NULL, 0, NULL, detail);
}

/* ---- the line ---- */

static uint32_t next_backoff(struct mb_rtu_bus *bus) {
    return mb__client_backoff(bus->config.reopen_min_ms, bus->config.reopen_max_ms, bus->failures,
                              &bus->random);
}

static void close_line(struct mb_rtu_bus *bus) {
    mb_timer_stop(bus->loop, &bus->wire_timer);
    mb_timer_stop(bus->loop, &bus->connect_timer);
    if (bus->transport != NULL) {
        mb_loop_remove(bus->loop, bus->transport->fd);
        bus->transport->ops->close(bus->transport);
        bus->transport = NULL;
    }
    if (bus->connecting_fd >= 0) {
        mb_loop_remove(bus->loop, bus->connecting_fd);
        close(bus->connecting_fd);
        bus->connecting_fd = -1;
    }
    bus->watched = 0;
    memset(&bus->tx, 0, sizeof bus->tx);
}

static void on_reopen_timer(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    open_line(timer->data);
}

/* The line failed or could not be opened: what is outstanding fails, and it is tried again
 * after the back-off. */
static void line_lost(struct mb_rtu_bus *bus, int status, const char *detail) {
    close_line(bus);
    bus->failures++;
    bus->stats.reopens++;
    if (bus->destroying)
        return;
    set_state(bus, MB_ASYNC_DOWN, status, detail);
    mb_timer_start(bus->loop, &bus->reopen_timer, next_backoff(bus), on_reopen_timer, bus);
    fail_all(bus, MB_ECLOSED, detail);
}

/* Over TCP a gap is no sign that a frame ended (a converter may hold a segment back): the
 * decoder waits for the rest of a frame whose length it knows, within the attempt's timeout. */
static void reset_decoder(struct mb_rtu_bus *bus) {
    mb_rtu_decoder_init(&bus->decoder, 0, bus->silence_us);
    mb_rtu_decoder_set_stream(&bus->decoder, bus->config.path == NULL);
}

static void line_open(struct mb_rtu_bus *bus) {
    mb_timer_stop(bus->loop, &bus->connect_timer);
    bus->failures = 0;
    /* A line opened again is a fresh start: the units it lost get their chance at once. */
    memset(bus->units, 0, sizeof bus->units);
    bus->stats.units_skipped = 0;
    bus->late_valid = 0;
    bus->watched = MB_IO_READ;
    reset_decoder(bus);
    bus->quiet_at_us =
        mb__client_now_us() + (uint64_t)bus->config.open_pause_ms * 1000u + bus->silence_us;
    set_state(bus, MB_ASYNC_CONNECTED, 0, "");
    post_step(bus);
}

static void on_connect_timeout(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    struct mb_rtu_bus *bus = timer->data;
    char detail[320];
    snprintf(detail, sizeof detail, "connect to %s: %s", bus->peer, strerror(ETIMEDOUT));
    line_lost(bus, MB_ECONNECT, detail);
}

static void open_line(struct mb_rtu_bus *bus) {
    char detail[320];
    set_state(bus, MB_ASYNC_CONNECTING, 0, "");
    if (bus->config.path != NULL) {
        char why[400];
        int fd = mb_serial_open(bus->path, &bus->config.line, why, sizeof why);
        int rc = fd;
        if (fd >= 0) {
            rc = mb_serial_transport_create_for(fd, &bus->config.line, &bus->transport);
            if (rc != 0)
                close(fd);
            else if ((rc = mb_loop_add(bus->loop, fd, MB_IO_READ, on_io, bus)) != 0) {
                bus->transport->ops->close(bus->transport);
                bus->transport = NULL;
            }
            snprintf(why, sizeof why, "%s: %s", bus->peer, mb_strerror(rc));
        }
        if (rc != 0) {
            line_lost(bus, rc, why);
            return;
        }
        line_open(bus);
        return;
    }
    int fd = -1, system_errno = 0;
    int rc = mb__client_socket((const struct sockaddr *)&bus->address, bus->config.address_length,
                               &fd, &system_errno);
    if (rc == 0 || rc == MB_EAGAIN) {
        if (mb_loop_add(bus->loop, fd, MB_IO_WRITE, on_io, bus) == 0) {
            bus->connecting_fd = fd;
            mb_timer_start(bus->loop, &bus->connect_timer, bus->config.connect_timeout_ms,
                           on_connect_timeout, bus);
            return;
        }
        close(fd);
        system_errno = EMFILE;
    }
    snprintf(detail, sizeof detail, "connect to %s: %s", bus->peer, strerror(system_errno));
    line_lost(bus, MB_ECONNECT, detail);
}

static void connected(struct mb_rtu_bus *bus) {
    int fd = bus->connecting_fd, system_errno = 0;
    char detail[320];
    mb_loop_remove(bus->loop, fd);
    bus->connecting_fd = -1;
    int rc = mb__client_connect_result(fd, &system_errno);
    if (rc == 0) {
        rc = mb_tcp_transport_create(fd, &bus->transport);
        if (rc != 0)
            close(fd);
        else if ((rc = mb_loop_add(bus->loop, fd, MB_IO_READ, on_io, bus)) != 0) {
            bus->transport->ops->close(bus->transport);
            bus->transport = NULL;
        }
        system_errno = rc == 0 ? 0 : EMFILE;
    } else {
        close(fd);
    }
    if (rc != 0) {
        snprintf(detail, sizeof detail, "connect to %s: %s", bus->peer, strerror(system_errno));
        line_lost(bus, MB_ECONNECT, detail);
        return;
    }
    line_open(bus);
}

/* ---- transactions ---- */

/* How long `bytes` characters take on the line (0 over TCP). */
static uint64_t on_wire_us(const struct mb_rtu_bus *bus, size_t bytes) {
    uint32_t baud = bus->config.line.baud;
    if (bus->config.path == NULL || baud == 0)
        return 0;
    return (uint64_t)bytes * bus->bits_per_character * 1000000u / baud;
}

static void keep_quiet(struct mb_rtu_bus *bus, uint64_t until_us) {
    if (until_us > bus->quiet_at_us)
        bus->quiet_at_us = until_us;
}

/* A transaction's last byte crossed the line at `at`: t3.5 and the configured pause follow. */
static void quiet_after(struct mb_rtu_bus *bus, uint64_t at) {
    keep_quiet(bus, at + bus->silence_us + (uint64_t)bus->config.pause_ms * 1000u);
}

static int repeatable(const struct request *request) {
    return mb_function_is_idempotent(request->pdu[0]) &&
           (request->pdu[0] != MB_FC_ENCAPSULATED_INTERFACE ||
            (request->length >= 2 && request->pdu[1] == MB_MEI_DEVICE_ID));
}

/* The attempt on the wire ended without a good answer. */
static void attempt_failed(struct mb_rtu_bus *bus, uint64_t now) {
    struct transaction *tx = &bus->tx;
    struct request *request = tx->request;
    int status = MB_ETIMEDOUT;
    char detail[320];
    if (tx->damaged != 0 || tx->mismatch != 0 || tx->wrong) {
        status = tx->mismatch != 0 ? tx->mismatch : tx->damaged != 0 ? tx->damaged : MB_EMISMATCH;
        if (tx->detail[0] == '\0')
            snprintf(tx->detail, sizeof tx->detail, "%s: no valid answer from unit %u (%s)",
                     bus->peer, tx->unit, mb_strerror(status));
        snprintf(detail, sizeof detail, "%s", tx->detail);
    } else {
        /* Nothing at all: the unit is silent. Its answer, should it still come, is late. */
        bus->stats.timeouts++;
        bus->late_valid = 1;
        bus->late_unit = tx->unit;
        bus->late_function = tx->function;
        bus->late_until_us = now + (uint64_t)bus->config.answer_timeout_ms * 1000u;
        bus->late_length = request != NULL ? request->length : 0;
        if (request != NULL)
            memcpy(bus->late_pdu, request->pdu, request->length);
        struct unit_health *health = &bus->units[tx->unit];
        health->failures++;
        snprintf(detail, sizeof detail, "no answer from %s unit %u within %u ms", bus->peer,
                 tx->unit, bus->config.answer_timeout_ms);
        if (health->failures >= bus->config.unit_failures) {
            if (health->skip_until_us == 0) {
                bus->stats.units_skipped++;
                char why[400];
                snprintf(why, sizeof why,
                         "%s unit %u: %u attempts in a row without an answer; its requests are "
                         "answered at once for %u ms, then it is probed",
                         bus->peer, tx->unit, health->failures, bus->config.unit_backoff_ms);
                event(bus, MB_RTU_UNIT_SKIPPED, tx->unit, why);
            }
            health->skip_until_us = now + (uint64_t)bus->config.unit_backoff_ms * 1000u;
        }
    }
    tx->active = 0;
    quiet_after(bus, now);
    if (request == NULL)
        return;
    if (request->attempts_left > 0 && now < request->deadline_us &&
        bus->units[tx->unit].skip_until_us <= now) {
        request->attempts_left--;
        bus->stats.retries++;
        tx->request = NULL; /* it waits at the head of the queue again, deadline and all */
        return;
    }
    complete(bus, request, status, NULL, 0, NULL, detail);
}

/* The late answer of the attempt that timed out last came: dropped, and no longer awaited. */
static void late_answer(struct mb_rtu_bus *bus, uint8_t address) {
    char detail[320];
    bus->stats.late++;
    bus->late_valid = 0;
    snprintf(detail, sizeof detail, "%s unit %u: answer after its timeout, dropped", bus->peer,
             address);
    event(bus, MB_RTU_LATE_ANSWER, address, detail);
}

/* A whole frame read while the transaction was on the wire (or between transactions). */
static void take_frame(struct mb_rtu_bus *bus, uint8_t address, const uint8_t *pdu, size_t length,
                       uint64_t now) {
    struct transaction *tx = &bus->tx;
    char detail[320];
    int late = bus->late_valid && address == bus->late_unit && length > 0 &&
               (pdu[0] & 0x7F) == bus->late_function;
    if (!tx->active || tx->sending) {
        if (late) {
            late_answer(bus, address);
        } else {
            bus->stats.unsolicited++;
            snprintf(detail, sizeof detail,
                     "%s: a frame from unit %u while nothing was asked, dropped", bus->peer,
                     address);
            event(bus, MB_RTU_UNSOLICITED, address, detail);
        }
        return;
    }
    if (address != tx->unit || (late && length > 0 && (pdu[0] & 0x7F) != tx->function)) {
        if (late) {
            late_answer(bus, address);
            return;
        }
        bus->stats.wrong_unit++;
        tx->wrong = 1;
        snprintf(tx->detail, sizeof tx->detail,
                 "%s: unit %u answered when unit %u was asked (dropped)", bus->peer, address,
                 tx->unit);
        event(bus, MB_RTU_WRONG_UNIT, address, tx->detail);
        return;
    }
    struct request *request = tx->request;
    if (request == NULL) {
        /* Its request already ran out of time: the answer is late, the line is free. */
        bus->stats.late++;
        snprintf(detail, sizeof detail, "%s unit %u: answer after its deadline, dropped", bus->peer,
                 address);
        event(bus, MB_RTU_LATE_ANSWER, address, detail);
        tx->active = 0;
        bus->units[address].failures = 0;
        quiet_after(bus, now);
        return;
    }
    struct mb_adu adu = {.header = {.length = (uint16_t)(length + 1), .unit_id = address},
                         .pdu = pdu,
                         .pdu_length = length};
    struct mb_response response;
    int rc = mb__client_check(request->pdu, request->length, request->unit, &adu, &response,
                              tx->detail, sizeof tx->detail);
    if (rc != 0) {
        bus->stats.mismatched++;
        tx->mismatch = rc;
        return; /* a good answer may still follow within the attempt's timeout */
    }
    struct unit_health *health = &bus->units[address];
    if (health->skip_until_us != 0) {
        bus->stats.units_skipped--;
        snprintf(detail, sizeof detail, "%s unit %u answers again", bus->peer, address);
        event(bus, MB_RTU_UNIT_RECOVERED, address, detail);
    }
    health->failures = 0;
    health->skip_until_us = 0;
    if (bus->late_valid && bus->late_unit == address)
        bus->late_valid = 0;
    tx->active = 0;
    quiet_after(bus, now);
    bus->stats.answers++;
    complete(bus, request, 0, pdu, length, &response, "");
}

/* Writes what is left of the frame. 0, or the line failed (and was closed). */
static int write_frame(struct mb_rtu_bus *bus) {
    struct transaction *tx = &bus->tx;
    while (tx->written < tx->size) {
        long count = bus->transport->ops->write(bus->transport, tx->frame + tx->written,
                                                tx->size - tx->written);
        bus->stats.writes++;
        if (count == MB_EAGAIN) {
            if (!(bus->watched & MB_IO_WRITE)) {
                bus->watched = MB_IO_READ | MB_IO_WRITE;
                mb_loop_modify(bus->loop, bus->transport->fd, bus->watched);
            }
            return 0;
        }
        if (count < 0) {
            char detail[320];
            snprintf(detail, sizeof detail, "%s: writing failed: %s", bus->peer,
                     mb_strerror((int)count));
            line_lost(bus, (int)count, detail);
            return (int)count;
        }
        tx->written += (size_t)count;
    }
    if (bus->watched & MB_IO_WRITE) {
        bus->watched = MB_IO_READ;
        mb_loop_modify(bus->loop, bus->transport->fd, bus->watched);
    }
    tx->sending = 0;
    uint64_t now = mb__client_now_us(), wire = on_wire_us(bus, tx->size);
    tx->answer_deadline_us = now + wire + (uint64_t)bus->config.answer_timeout_ms * 1000u;
    quiet_after(bus, now + wire);
    reset_decoder(bus);
    tx->echo_seen = bus->config.echo ? 0 : tx->size;
    if (tx->unit == MB_SERIAL_BROADCAST) {
        /* Nobody answers; an adapter that echoes still sends the echo, which the transaction
         * stays open to drop (until it is whole, or the attempt's time is up). */
        if (!bus->config.echo)
            tx->active = 0;
        keep_quiet(bus, now + wire + (uint64_t)bus->config.broadcast_pause_ms * 1000u);
        if (tx->request != NULL)
            complete(bus, tx->request, 0, NULL, 0, NULL, "");
    }
    return 0;
}

static void feed(struct mb_rtu_bus *bus, const uint8_t *data, size_t length, uint64_t now);

/* Bytes from the line, read at `now`. */
static void take_input(struct mb_rtu_bus *bus, const uint8_t *data, size_t length, uint64_t now) {
    struct transaction *tx = &bus->tx;
    /* Whatever is on the line now keeps it busy: nothing is sent into an answer. */
    keep_quiet(bus, now + bus->silence_us);
    size_t at = 0;
    if (tx->active && !tx->sending && tx->echo_seen < tx->size) {
        while (tx->echo_seen < tx->size && at < length) {
            if (data[at] != tx->frame[tx->echo_seen]) {
                /* The echo was lost: what looked like its start was the answer's (they share
                 * the unit and function bytes), which the decoder gets after all. */
                size_t prefix = tx->echo_seen;
                tx->echo_seen = tx->size;
                feed(bus, tx->frame, prefix, now);
                if (bus->transport == NULL)
                    return;
                break;
            }
            at++;
            tx->echo_seen++;
        }
        if (tx->unit == MB_SERIAL_BROADCAST && tx->echo_seen >= tx->size && tx->active) {
            tx->active = 0; /* the broadcast's echo is whole */
            post_step(bus);
        }
    }
    feed(bus, data + at, length - at, now);
}

/* Bytes through the decoder, frames to take_frame(). */
static void feed(struct mb_rtu_bus *bus, const uint8_t *data, size_t length, uint64_t now) {
    struct transaction *tx = &bus->tx;
    size_t at = 0;
    while (at < length) {
        size_t consumed = 0;
        uint8_t address;
        const uint8_t *pdu;
        size_t pdu_length;
        int fed = mb_rtu_decoder_feed(&bus->decoder, data + at, length - at, now, &consumed,
                                      &address, &pdu, &pdu_length);
        at += consumed;
        if (fed < 0) {
            bus->stats.damaged++;
            if (tx->active && !tx->sending)
                tx->damaged = fed;
            char detail[320];
            snprintf(detail, sizeof detail, "%s: a damaged frame dropped (%s)", bus->peer,
                     mb_strerror(fed));
            event(bus, MB_RTU_DAMAGED, tx->active ? tx->unit : 0, detail);
            continue;
        }
        if (fed == 0)
            break;
        take_frame(bus, address, pdu, pdu_length, now);
        if (bus->transport == NULL)
            return;
    }
}

static void on_wire_timer(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    step(timer->data);
}

static void wake_at(struct mb_rtu_bus *bus, uint64_t when_us, uint64_t now) {
    uint64_t delay_ms = when_us > now ? (when_us - now + 999) / 1000 : 0;
    if (delay_ms == 0) {
        post_step(bus);
        return;
    }
    uint64_t deadline = mb_loop_now(bus->loop) + delay_ms;
    if (mb_timer_active(&bus->wire_timer) && bus->wire_timer.deadline_ms <= deadline)
        return;
    mb_timer_start(bus->loop, &bus->wire_timer, delay_ms, on_wire_timer, bus);
}

/* Completes the queued requests (not the one on the wire) whose deadline passed; returns the
 * earliest deadline left, or UINT64_MAX. */
static uint64_t expire_queued(struct mb_rtu_bus *bus, uint64_t now) {
    uint64_t earliest = UINT64_MAX;
    uint32_t entry = bus->head;
    while (entry != 0) {
        struct request *request = &bus->requests[entry - 1];
        entry = request->next;
        if (request == bus->tx.request)
            continue;
        if (request->deadline_us <= now) {
            char detail[320];
            snprintf(detail, sizeof detail, "no answer from %s unit %u in time (the bus was busy)",
                     bus->peer, request->unit);
            complete(bus, request, MB_ETIMEDOUT, NULL, 0, NULL, detail);
            earliest = UINT64_MAX;
            entry = bus->head; /* the callback may have queued others: start again */
            continue;
        }
        if (request->deadline_us < earliest)
            earliest = request->deadline_us;
    }
    return earliest;
}

static void step_once(struct mb_rtu_bus *bus) {
    if (bus->destroying)
        return;
    struct transaction *tx = &bus->tx;
    uint64_t now = mb__client_now_us();
    uint64_t wake = expire_queued(bus, now);
    if (bus->transport == NULL) {
        /* Opening (a converter being connected): the requests waiting for it still end at
         * their deadlines. */
        if (wake != UINT64_MAX)
            wake_at(bus, wake, now);
        return;
    }
    if (tx->active) {
        if (tx->sending) {
            /* Waiting for the line to take the rest: a request out of time is answered, and
             * a line that takes nothing for an attempt's length is lost. */
            if (tx->request != NULL && tx->request->deadline_us <= now) {
                char detail[320];
                snprintf(detail, sizeof detail, "%s took the request to unit %u too slowly",
                         bus->peer, tx->unit);
                complete(bus, tx->request, MB_ETIMEDOUT, NULL, 0, NULL, detail);
            }
            if (now >= tx->send_deadline_us) {
                char detail[320];
                snprintf(detail, sizeof detail, "%s takes nothing more (a write stalled for %u ms)",
                         bus->peer, bus->config.answer_timeout_ms);
                line_lost(bus, MB_ETIMEDOUT, detail);
                return;
            }
            wake_at(bus, tx->send_deadline_us < wake ? tx->send_deadline_us : wake, now);
            return;
        }
        if (tx->request != NULL && tx->request->deadline_us <= now) {
            /* Out of time: the client is told now; the line stays reserved for the answer
             * until the attempt's own timeout, so that it is never taken for the next. */
            char detail[320];
            snprintf(detail, sizeof detail, "no answer from %s unit %u in time", bus->peer,
                     tx->unit);
            complete(bus, tx->request, MB_ETIMEDOUT, NULL, 0, NULL, detail);
            if (bus->transport == NULL)
                return;
        }
        uint64_t silence_at = mb_rtu_decoder_deadline(&bus->decoder);
        if (silence_at != 0 && silence_at <= now) {
            uint8_t address;
            const uint8_t *pdu;
            size_t length;
            int ended = mb_rtu_decoder_silence(&bus->decoder, now, &address, &pdu, &length);
            if (ended < 0) {
                bus->stats.damaged++;
                tx->damaged = ended;
            } else if (ended == 1) {
                take_frame(bus, address, pdu, length, now);
                if (bus->transport == NULL)
                    return;
            }
            if (!tx->active) {
                post_step(bus);
                return;
            }
            silence_at = mb_rtu_decoder_deadline(&bus->decoder);
        }
        if (now >= tx->answer_deadline_us) {
            if (tx->unit == MB_SERIAL_BROADCAST)
                tx->active = 0; /* its echo did not come whole: nothing more to wait for */
            else
                attempt_failed(bus, now);
            post_step(bus);
            return;
        }
        uint64_t next = tx->answer_deadline_us;
        if (silence_at != 0 && silence_at < next)
            next = silence_at;
        if (tx->request != NULL && tx->request->deadline_us < next)
            next = tx->request->deadline_us;
        if (wake < next)
            next = wake;
        wake_at(bus, next, now);
        return;
    }
    /* Idle: the next request, if the line has been quiet long enough. */
    while (bus->head != 0) {
        struct request *request = &bus->requests[bus->head - 1];
        struct unit_health *health = &bus->units[request->unit];
        if (health->skip_until_us == 0 || health->skip_until_us <= now)
            break; /* healthy, or due for its probe */
        bus->stats.skipped++;
        char detail[320];
        snprintf(detail, sizeof detail, "%s unit %u is skipped: it stopped answering", bus->peer,
                 request->unit);
        complete(bus, request, MB_EBACKOFF, NULL, 0, NULL, detail);
        if (bus->transport == NULL)
            return;
    }
    if (bus->head == 0) {
        mb_timer_stop(bus->loop, &bus->wire_timer);
        if (wake != UINT64_MAX)
            wake_at(bus, wake, now);
        return;
    }
    struct request *request = &bus->requests[bus->head - 1];
    uint64_t start_at = bus->quiet_at_us;
    if (bus->late_valid && now < bus->late_until_us && request->unit == bus->late_unit &&
        request->pdu[0] == bus->late_function &&
        (request->length != bus->late_length ||
         memcmp(request->pdu, bus->late_pdu, request->length) != 0) &&
        bus->late_until_us > start_at)
        start_at = bus->late_until_us;
    if (now < start_at) {
        wake_at(bus, start_at < wake ? start_at : wake, now);
        return;
    }
    int size =
        mb_rtu_encode(request->unit, request->pdu, request->length, tx->frame, sizeof tx->frame);
    if (size < 0) { /* cannot happen: the length was checked at submission */
        complete(bus, request, MB_EINVAL, NULL, 0, NULL, "the request does not fit an RTU frame");
        post_step(bus);
        return;
    }
    tx->damaged = tx->mismatch = tx->wrong = 0;
    tx->detail[0] = '\0';
    tx->echo_seen = 0;
    tx->active = 1;
    tx->sending = 1;
    tx->send_deadline_us = now + (uint64_t)bus->config.answer_timeout_ms * 1000u;
    tx->request = request;
    tx->unit = request->unit;
    tx->function = request->pdu[0];
    tx->size = (size_t)size;
    tx->written = 0;
    bus->stats.transactions++;
    if (request->unit == MB_SERIAL_BROADCAST)
        bus->stats.broadcasts++;
    if (write_frame(bus) != 0)
        return;
    post_step(bus);
}

static void step(struct mb_rtu_bus *bus) {
    if (bus->stepping) {
        bus->step_again = 1;
        return;
    }
    bus->stepping = 1;
    do {
        bus->step_again = 0;
        step_once(bus);
    } while (bus->step_again && !bus->destroying);
    bus->stepping = 0;
}

static void on_io(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)loop;
    struct mb_rtu_bus *bus = data;
    if (bus->connecting_fd == fd) {
        connected(bus);
        return;
    }
    if (bus->transport == NULL)
        return;
    if (events & MB_IO_WRITE && bus->tx.active && bus->tx.sending) {
        if (write_frame(bus) != 0)
            return;
    }
    if (events & (MB_IO_READ | MB_IO_HANGUP)) {
        uint8_t buffer[READ_CHUNK];
        for (int round = 0; round < 8 && bus->transport != NULL; round++) {
            long count = bus->transport->ops->read(bus->transport, buffer, sizeof buffer);
            if (count == MB_EAGAIN)
                break;
            if (count <= 0) {
                char detail[320];
                snprintf(detail, sizeof detail, "%s: %s", bus->peer,
                         count == MB_ECLOSED ? "the line went away" : mb_strerror((int)count));
                line_lost(bus, count == 0 ? MB_ECLOSED : (int)count, detail);
                return;
            }
            take_input(bus, buffer, (size_t)count, mb__client_now_us());
        }
    }
    step(bus);
}

/* ---- the API ---- */

int mb_rtu_bus_create(struct mb_loop *loop, const struct mb_rtu_bus_config *config,
                      struct mb_rtu_bus **created) {
    if (loop == NULL || config == NULL || created == NULL)
        return MB_EINVAL;
    if (config->path == NULL && (config->address == NULL || config->address_length == 0 ||
                                 config->address_length > sizeof(struct sockaddr_storage)))
        return MB_EINVAL;
    if (config->path != NULL && strlen(config->path) >= sizeof((struct mb_rtu_bus *)0)->path)
        return MB_EINVAL;
    if (config->max_queued > MB_ASYNC_MAX_QUEUED)
        return MB_EINVAL;
    struct mb_rtu_bus *bus = calloc(1, sizeof *bus);
    if (bus == NULL)
        return MB_ENOMEM;
    bus->loop = loop;
    bus->config = *config;
    struct mb_rtu_bus_config *c = &bus->config;
    c->timeout_ms = c->timeout_ms ? c->timeout_ms : DEFAULT_TIMEOUT_MS;
    c->answer_timeout_ms = c->answer_timeout_ms ? c->answer_timeout_ms : DEFAULT_ANSWER_TIMEOUT_MS;
    c->max_queued = c->max_queued ? c->max_queued : DEFAULT_MAX_QUEUED;
    c->broadcast_pause_ms =
        c->broadcast_pause_ms ? c->broadcast_pause_ms : DEFAULT_BROADCAST_PAUSE_MS;
    c->unit_failures = c->unit_failures ? c->unit_failures : DEFAULT_UNIT_FAILURES;
    c->unit_backoff_ms = c->unit_backoff_ms ? c->unit_backoff_ms : DEFAULT_UNIT_BACKOFF_MS;
    c->reopen_min_ms = c->reopen_min_ms ? c->reopen_min_ms : DEFAULT_REOPEN_MIN_MS;
    c->reopen_max_ms = c->reopen_max_ms ? c->reopen_max_ms : DEFAULT_REOPEN_MAX_MS;
    if (c->reopen_max_ms < c->reopen_min_ms)
        c->reopen_max_ms = c->reopen_min_ms;
    c->connect_timeout_ms =
        c->connect_timeout_ms ? c->connect_timeout_ms : DEFAULT_CONNECT_TIMEOUT_MS;
    if (c->path != NULL) {
        snprintf(bus->path, sizeof bus->path, "%s", c->path);
        c->path = bus->path;
        c->address = NULL;
        if (c->line.baud == 0)
            c->line.baud = 19200;
        uint32_t t15, t35;
        mb_rtu_timing(c->line.baud, &t15, &t35);
        bus->silence_us = c->silence_us ? c->silence_us : t35;
        uint32_t data_bits = c->line.data_bits ? c->line.data_bits : 8;
        char parity = c->line.parity ? c->line.parity : 'E';
        uint32_t stop_bits = c->line.stop_bits ? c->line.stop_bits : 1;
        bus->bits_per_character = 1 + data_bits + (parity == 'N' ? 0 : 1) + stop_bits;
        snprintf(bus->peer, sizeof bus->peer, "%.95s", bus->path);
    } else {
        memcpy(&bus->address, c->address, c->address_length);
        c->address = (const struct sockaddr *)&bus->address;
        bus->silence_us = c->silence_us ? c->silence_us : TCP_SILENCE_US;
        c->echo = 0;
        if (mb_address_format(c->address, c->address_length, bus->peer, sizeof bus->peer) < 0)
            snprintf(bus->peer, sizeof bus->peer, "RTU over TCP");
    }
    bus->requests = calloc(c->max_queued, sizeof *bus->requests);
    if (bus->requests == NULL) {
        free(bus);
        return MB_ENOMEM;
    }
    for (uint32_t i = 0; i < c->max_queued; i++)
        bus->requests[i].next = i + 2 <= c->max_queued ? i + 2 : 0;
    bus->free_list = 1;
    bus->connecting_fd = -1;
    bus->random = mb__client_now_us() | 1;
    bus->state = MB_ASYNC_CONNECTING;
    bus->reopen_timer.data = bus;
    mb_timer_start(loop, &bus->reopen_timer, 0, on_reopen_timer, bus);
    *created = bus;
    return 0;
}

void mb_rtu_bus_destroy(struct mb_rtu_bus *bus) {
    if (bus == NULL)
        return;
    mb_timer_stop(bus->loop, &bus->reopen_timer);
    mb_loop_cancel(bus->loop, &bus->step_task);
    close_line(bus);
    bus->destroying = 1;
    fail_all(bus, MB_ECANCELED, "the bus was closed");
    free(bus->requests);
    free(bus);
}

int mb_rtu_bus_submit(struct mb_rtu_bus *bus, uint8_t unit_id, const uint8_t *pdu, size_t length,
                      uint32_t timeout_ms, mb_async_done done, void *data) {
    if (bus == NULL || pdu == NULL || length == 0 || length > MB_PDU_MAX || done == NULL ||
        bus->destroying)
        return MB_EINVAL;
    if (unit_id > MB_SERIAL_ADDRESS_MAX)
        return MB_EINVAL;
    if (unit_id == MB_SERIAL_BROADCAST && !mb_function_is_broadcastable(pdu[0]))
        return MB_EINVAL;
    if (bus->state == MB_ASYNC_DOWN || bus->state == MB_ASYNC_CLOSED)
        return MB_ECLOSED;
    if (bus->free_list == 0)
        return MB_ELIMIT;
    struct request *request = &bus->requests[bus->free_list - 1];
    bus->free_list = request->next;
    memset(request, 0, offsetof(struct request, pdu));
    request->done = done;
    request->data = data;
    request->unit = unit_id;
    request->length = (uint8_t)length;
    memcpy(request->pdu, pdu, length);
    request->deadline_us =
        mb__client_now_us() + (uint64_t)(timeout_ms ? timeout_ms : bus->config.timeout_ms) * 1000u;
    request->attempts_left = repeatable(request) ? bus->config.retries : 0;
    request->previous = bus->tail;
    request->next = 0;
    if (bus->tail != 0)
        bus->requests[bus->tail - 1].next = index_of(bus, request);
    else
        bus->head = index_of(bus, request);
    bus->tail = index_of(bus, request);
    bus->count++;
    post_step(bus);
    return 0;
}

enum mb_async_state mb_rtu_bus_state(const struct mb_rtu_bus *bus) {
    return bus->state;
}

size_t mb_rtu_bus_outstanding(const struct mb_rtu_bus *bus) {
    return bus->count;
}

void mb_rtu_bus_stats(const struct mb_rtu_bus *bus, struct mb_rtu_bus_stats *stats) {
    *stats = bus->stats;
    stats->queued = bus->count;
}
