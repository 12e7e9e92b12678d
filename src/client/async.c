/* SPDX-License-Identifier: MIT */
/*
 * The non-blocking client: requests queue in submission order, up to max_in_flight of them are
 * on the wire at once, and answers are matched to requests by transaction id through a small
 * open-addressed table. Every request submitted during one loop iteration goes out in one
 * write (a loop task flushes the output once the iteration's callbacks have run).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "client/client_internal.h"
#include "mbsec/error.h"

#define DEFAULT_MAX_IN_FLIGHT 16
#define DEFAULT_MAX_QUEUED 1024
#define DEFAULT_TIMEOUT_MS 1000
#define DEFAULT_CONNECT_TIMEOUT_MS 3000
#define DEFAULT_RECONNECT_MIN_MS 100
#define DEFAULT_RECONNECT_MAX_MS 30000
#define READ_CHUNK 4096
/* Chunks read per readiness event, so that one busy peer cannot starve the others. */
#define READ_ROUNDS 16

enum slot_state {
    SLOT_FREE = 0,
    SLOT_QUEUED,    /* submitted, waiting for an in-flight place or the connection */
    SLOT_IN_FLIGHT, /* written (or in the output buffer), waiting for its answer */
};

struct slot {
    struct mb_async *client;
    uint64_t deadline_ms;                  /* on the loop's clock */
    uint32_t deadline_prev, deadline_next; /* the deadline list: slot index + 1, 0 at the ends */
    mb_async_done done;
    void *data;
    uint32_t next; /* queue or free list link: slot index + 1, 0 at the end */
    uint16_t transaction_id;
    uint8_t unit_id;
    uint8_t state;
    uint8_t length;
    uint8_t pdu[MB_PDU_MAX];
};

struct mb_async {
    struct mb_loop *loop;
    struct mb_async_config config;
    struct sockaddr_storage address;
    socklen_t address_length;
    char peer[64];
    enum mb_async_state state;

    struct mb_transport *transport; /* NULL unless connected */
    int connecting_fd;              /* -1 unless connecting */
    unsigned watched;               /* MB_IO_* the descriptor is watched for */
    int write_blocked;              /* output is waiting for the descriptor to be writable */
    int handshaking;                /* TLS: connected, handshake not finished */
    struct mb_timer connect_timer;
    struct mb_timer reconnect_timer;
    uint32_t failures; /* consecutive failed connections, for the backoff */
    uint64_t random;   /* xorshift state for the jitter */

    struct slot *slots;
    uint32_t slot_count;
    uint32_t free_list; /* slot index + 1 */
    uint32_t queue_head, queue_tail;
    uint32_t queued;
    uint32_t in_flight;
    uint32_t *table; /* transaction id -> slot index + 1, open addressing */
    uint32_t table_mask;
    uint16_t next_transaction;

    struct mb_mbap_decoder decoder;
    uint32_t discarded_seen; /* decoder.discarded already added to the stats */
    uint8_t *output;
    size_t output_length;
    size_t output_capacity;
    struct mb_task flush_task;
    struct mb_task connect_task;
    struct mb_task read_task; /* TLS: decrypted bytes left over, which raise no socket event */
    /* Outstanding requests sorted by deadline, and one timer for the earliest. Requests nearly
     * always share one timeout, so they arrive in deadline order: inserting at the tail and
     * unlinking are O(1), where a heap timer per request cost a few hundred instructions. */
    uint32_t deadline_head, deadline_tail;
    struct mb_timer deadline_timer;
    struct mb_client_stats stats;
    int destroying;
};

static void on_io(struct mb_loop *loop, int fd, unsigned events, void *data);
static void start_connect(struct mb_async *client);
static void dispatch(struct mb_async *client);

static uint32_t slot_index(const struct mb_async *client, const struct slot *slot) {
    return (uint32_t)(slot - client->slots);
}

/* ---- transaction table ---- */

static void table_insert(struct mb_async *client, struct slot *slot) {
    /* Transaction ids advance by one per request; an id whose place in the table is still
     * taken is skipped, so lookups never probe. The table has at least twice as many places as
     * requests in flight, so a free one is always near. */
    while (client->table[client->next_transaction & client->table_mask] != 0)
        client->next_transaction++;
    slot->transaction_id = client->next_transaction++;
    client->table[slot->transaction_id & client->table_mask] = slot_index(client, slot) + 1;
}

static struct slot *table_find(struct mb_async *client, uint16_t transaction_id) {
    uint32_t entry = client->table[transaction_id & client->table_mask];
    if (entry == 0)
        return NULL;
    struct slot *slot = &client->slots[entry - 1];
    return slot->state == SLOT_IN_FLIGHT && slot->transaction_id == transaction_id ? slot : NULL;
}

/* ---- deadlines ---- */

static void on_deadline_timer(struct mb_loop *loop, struct mb_timer *timer);

static void deadline_insert(struct mb_async *client, struct slot *slot, uint32_t timeout_ms) {
    uint32_t entry = slot_index(client, slot) + 1, after = client->deadline_tail;
    slot->deadline_ms = mb_loop_now(client->loop) + timeout_ms;
    while (after != 0 && client->slots[after - 1].deadline_ms > slot->deadline_ms)
        after = client->slots[after - 1].deadline_prev;
    slot->deadline_prev = after;
    slot->deadline_next =
        after != 0 ? client->slots[after - 1].deadline_next : client->deadline_head;
    if (after != 0)
        client->slots[after - 1].deadline_next = entry;
    else
        client->deadline_head = entry;
    if (slot->deadline_next != 0)
        client->slots[slot->deadline_next - 1].deadline_prev = entry;
    else
        client->deadline_tail = entry;
    /* The timer may run late for an earlier head that has completed since (it then finds nothing
     * due and re-arms), but never later than the earliest deadline. */
    if (!mb_timer_active(&client->deadline_timer) ||
        client->deadline_timer.deadline_ms > slot->deadline_ms)
        mb_timer_start(client->loop, &client->deadline_timer, timeout_ms, on_deadline_timer,
                       client);
}

static void deadline_remove(struct mb_async *client, struct slot *slot) {
    if (slot->deadline_prev != 0)
        client->slots[slot->deadline_prev - 1].deadline_next = slot->deadline_next;
    else
        client->deadline_head = slot->deadline_next;
    if (slot->deadline_next != 0)
        client->slots[slot->deadline_next - 1].deadline_prev = slot->deadline_prev;
    else
        client->deadline_tail = slot->deadline_prev;
    slot->deadline_prev = slot->deadline_next = 0;
}

/* ---- completing requests ---- */

static void slot_release(struct mb_async *client, struct slot *slot) {
    deadline_remove(client, slot);
    if (slot->state == SLOT_IN_FLIGHT) {
        client->table[slot->transaction_id & client->table_mask] = 0;
        client->in_flight--;
    }
    slot->state = SLOT_FREE;
    slot->next = client->free_list;
    client->free_list = slot_index(client, slot) + 1;
}

/* Completes a request that got no answer, or a wrong one. The slot is free before the callback
 * runs, so that the callback may submit again. */
static void complete_failed(struct mb_async *client, struct slot *slot, int status,
                            const char *detail, const uint8_t *response_pdu,
                            size_t response_length) {
    uint8_t pdu[MB_PDU_MAX];
    memcpy(pdu, slot->pdu, slot->length);
    struct mb_async_result result = {
        .status = status,
        .unit_id = slot->unit_id,
        .transaction_id = slot->state == SLOT_IN_FLIGHT ? slot->transaction_id : 0,
        .request_pdu = pdu,
        .request_length = slot->length,
        .response_pdu = response_pdu,
        .response_length = response_length,
        .detail = detail != NULL ? detail : mb_strerror(status),
    };
    mb_async_done done = slot->done;
    void *data = slot->data;
    slot_release(client, slot);
    done(data, &result);
}

static uint32_t queue_pop(struct mb_async *client) {
    uint32_t entry = client->queue_head;
    if (entry != 0) {
        client->queue_head = client->slots[entry - 1].next;
        if (client->queue_head == 0)
            client->queue_tail = 0;
        client->queued--;
    }
    return entry;
}

/* Fails every request, queued and in flight. */
static void fail_all(struct mb_async *client, int status, const char *detail) {
    uint32_t entry;
    while ((entry = queue_pop(client)) != 0)
        complete_failed(client, &client->slots[entry - 1], status, detail, NULL, 0);
    for (uint32_t i = 0; i < client->slot_count && client->in_flight > 0; i++)
        if (client->slots[i].state == SLOT_IN_FLIGHT)
            complete_failed(client, &client->slots[i], status, detail, NULL, 0);
}

static void expire(struct mb_async *client, struct slot *slot) {
    if (slot->state == SLOT_QUEUED) {
        /* Unlink it from the queue: walk from the head (the queue is short in practice, and a
         * queued request timing out is the exception). */
        uint32_t entry = slot_index(client, slot) + 1, *link = &client->queue_head, previous = 0;
        while (*link != 0 && *link != entry) {
            previous = *link;
            link = &client->slots[*link - 1].next;
        }
        if (*link == entry) {
            *link = slot->next;
            if (client->queue_tail == entry)
                client->queue_tail = previous;
            client->queued--;
        }
    }
    client->stats.timeouts++;
    char detail[160];
    snprintf(detail, sizeof detail, "no answer from %s in time%s", client->peer,
             slot->state == SLOT_QUEUED ? " (the request was still queued)" : "");
    complete_failed(client, slot, MB_ETIMEDOUT, detail, NULL, 0);
}

static void on_deadline_timer(struct mb_loop *loop, struct mb_timer *timer) {
    struct mb_async *client = timer->data;
    uint64_t now = mb_loop_now(loop);
    int expired = 0;
    /* Callbacks may submit: new requests land behind, with later deadlines. */
    while (client->deadline_head != 0 &&
           client->slots[client->deadline_head - 1].deadline_ms <= now) {
        expire(client, &client->slots[client->deadline_head - 1]);
        expired = 1;
    }
    if (client->deadline_head != 0 && !mb_timer_active(timer))
        mb_timer_start(loop, timer, client->slots[client->deadline_head - 1].deadline_ms - now,
                       on_deadline_timer, client);
    /* The places they held (in flight, or in the queue) may let queued requests go out. */
    if (expired && client->transport != NULL)
        dispatch(client);
}

/* ---- output ---- */

static void update_interest(struct mb_async *client) {
    if (client->transport == NULL)
        return;
    /* Writability is watched only while a write is blocked: output that is merely pending goes
     * out from the flush task, and watching for it would cost two epoll_ctl calls per batch. */
    unsigned wanted = MB_IO_READ | client->transport->ops->want(client->transport);
    if (client->write_blocked)
        wanted |= MB_IO_WRITE;
    if (wanted != client->watched) {
        mb_loop_modify(client->loop, client->transport->fd, wanted);
        client->watched = wanted;
    }
}

static void connection_lost(struct mb_async *client, int status, const char *detail);

static void flush(struct mb_async *client) {
    size_t sent = 0;
    while (sent < client->output_length) {
        long count = client->transport->ops->write(client->transport, client->output + sent,
                                                   client->output_length - sent);
        client->stats.writes++;
        if (count == MB_EAGAIN)
            break;
        if (count < 0) {
            char detail[128];
            snprintf(detail, sizeof detail, "connection to %s failed while sending: %s",
                     client->peer, mb_strerror((int)count));
            connection_lost(client, MB_ECLOSED, detail);
            return;
        }
        sent += (size_t)count;
    }
    memmove(client->output, client->output + sent, client->output_length - sent);
    client->output_length -= sent;
    client->write_blocked = client->output_length > 0;
    update_interest(client);
}

static void on_flush_task(struct mb_loop *loop, struct mb_task *task) {
    (void)loop;
    struct mb_async *client = task->data;
    if (client->transport != NULL && client->output_length > 0) {
        flush(client);
        /* Room the write freed (frames of requests that timed out before going out) may let
         * queued requests follow. */
        if (client->transport != NULL && client->queue_head != 0)
            dispatch(client);
    }
}

/* Moves queued requests onto the wire while there is room. */
static void dispatch(struct mb_async *client) {
    if (client->state != MB_ASYNC_CONNECTED)
        return;
    int added = 0;
    /* The output holds at most max_in_flight frames' worth: frames of requests that timed out
     * before they could be written still take room until the peer reads them. */
    while (client->queue_head != 0 && client->in_flight < client->config.max_in_flight &&
           client->output_length + MB_ADU_MAX <= client->output_capacity) {
        struct slot *slot = &client->slots[queue_pop(client) - 1];
        slot->state = SLOT_IN_FLIGHT;
        client->in_flight++;
        table_insert(client, slot);
        uint8_t *frame = client->output + client->output_length;
        mb_mbap_encode(slot->transaction_id, slot->unit_id, slot->length, frame,
                       MB_MBAP_HEADER_SIZE);
        memcpy(frame + MB_MBAP_HEADER_SIZE, slot->pdu, slot->length);
        client->output_length += MB_MBAP_HEADER_SIZE + slot->length;
        client->stats.requests++;
        added = 1;
    }
    if (added)
        mb_loop_post(client->loop, &client->flush_task, on_flush_task, client);
}

/* ---- input ---- */

static void deliver(struct mb_async *client, const struct mb_adu *adu) {
    struct slot *slot = table_find(client, adu->header.transaction_id);
    if (slot == NULL) {
        client->stats.unmatched++;
        if (client->config.on_unmatched != NULL)
            client->config.on_unmatched(client->config.state_data, adu->header.transaction_id,
                                        adu->header.unit_id);
        return;
    }
    /* The frame stays where it is (the read buffer or the decoder) until the next feed, which
     * comes after the callback: the views handed over need no copy. */
    const uint8_t *pdu = adu->pdu;
    struct mb_response response;
    char detail[192];
    int rc = mb__client_check(slot->pdu, slot->length, slot->unit_id, adu, &response, detail,
                              sizeof detail);
    if (rc != 0) {
        if (rc == MB_EMISMATCH)
            client->stats.mismatched++;
        else
            client->stats.malformed++;
        complete_failed(client, slot, rc, detail, pdu, adu->pdu_length);
        return;
    }
    client->stats.responses++;
    if (response.exception != 0)
        client->stats.exceptions++;
    uint8_t request_pdu[MB_PDU_MAX];
    memcpy(request_pdu, slot->pdu, slot->length);
    struct mb_async_result result = {
        .status = 0,
        .unit_id = slot->unit_id,
        .transaction_id = slot->transaction_id,
        .request_pdu = request_pdu,
        .request_length = slot->length,
        .response = &response,
        .response_pdu = pdu,
        .response_length = adu->pdu_length,
        .detail = "",
    };
    mb_async_done done = slot->done;
    void *data = slot->data;
    slot_release(client, slot);
    done(data, &result);
}

/* Returns 0, or the error that ended the connection. */
static int read_input(struct mb_async *client) {
    uint8_t buffer[READ_CHUNK];
    for (int round = 0; round < READ_ROUNDS; round++) {
        if (client->transport == NULL)
            return 0;
        long count = client->transport->ops->read(client->transport, buffer, sizeof buffer);
        if (count == MB_EAGAIN)
            return 0;
        if (count < 0)
            return (int)count;
        size_t offset = 0;
        while (offset < (size_t)count) {
            size_t consumed = 0;
            struct mb_adu adu;
            int fed = mb_mbap_decoder_feed(&client->decoder, buffer + offset,
                                           (size_t)count - offset, &consumed, &adu);
            offset += consumed;
            client->stats.discarded += client->decoder.discarded - client->discarded_seen;
            client->discarded_seen = client->decoder.discarded;
            if (fed < 0)
                return fed;
            if (fed == 0)
                break;
            deliver(client, &adu);
        }
        if ((size_t)count < sizeof buffer &&
            client->transport->ops->pending(client->transport) == 0)
            return 0;
    }
    return 0;
}

/* ---- connection ---- */

static void set_state(struct mb_async *client, enum mb_async_state state, int error,
                      const char *detail) {
    client->state = state;
    if (client->config.on_state != NULL && !client->destroying)
        client->config.on_state(client->config.state_data, state, error, detail ? detail : "");
}

static uint32_t next_backoff(struct mb_async *client) {
    return mb__client_backoff(client->config.reconnect_min_ms, client->config.reconnect_max_ms,
                              client->failures, &client->random);
}

static void on_reconnect_timer(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    start_connect(timer->data);
}

static void close_descriptor(struct mb_async *client) {
    mb_timer_stop(client->loop, &client->connect_timer);
    mb_loop_cancel(client->loop, &client->flush_task);
    mb_loop_cancel(client->loop, &client->read_task);
    if (client->transport != NULL) {
        mb_loop_remove(client->loop, client->transport->fd);
        client->transport->ops->close(client->transport);
        client->transport = NULL;
    }
    if (client->connecting_fd >= 0) {
        mb_loop_remove(client->loop, client->connecting_fd);
        close(client->connecting_fd);
        client->connecting_fd = -1;
    }
    client->watched = 0;
    client->write_blocked = 0;
    client->handshaking = 0;
    client->output_length = 0;
    mb_mbap_decoder_init(&client->decoder);
    client->discarded_seen = 0;
}

/* The connection is gone (or never came): every request fails, then the client waits to
 * reconnect or closes for good. */
static void connection_lost(struct mb_async *client, int status, const char *detail) {
    int was_connected = client->transport != NULL;
    close_descriptor(client);
    if (was_connected)
        client->stats.disconnects++;
    client->failures++;
    if (client->config.reconnect && !client->destroying) {
        set_state(client, MB_ASYNC_DOWN, status, detail);
        mb_timer_start(client->loop, &client->reconnect_timer, next_backoff(client),
                       on_reconnect_timer, client);
    } else {
        set_state(client, MB_ASYNC_CLOSED, status, detail);
    }
    fail_all(client, status, detail);
}

/* The connection is usable: requests may go out. */
static void established(struct mb_async *client) {
    mb_timer_stop(client->loop, &client->connect_timer);
    client->handshaking = 0;
    client->failures = 0;
    client->stats.connects++;
    set_state(client, MB_ASYNC_CONNECTED, 0, "");
    dispatch(client);
    update_interest(client);
}

/* Advances a TLS handshake; the connect timer still runs and bounds it. */
static void continue_handshake(struct mb_async *client) {
    int rc = client->transport->ops->handshake(client->transport);
    if (rc == 0) {
        established(client);
        return;
    }
    if (rc == MB_EAGAIN) {
        unsigned wanted = client->transport->ops->want(client->transport);
        if (wanted == 0)
            wanted = MB_IO_READ;
        if (wanted != client->watched) {
            mb_loop_modify(client->loop, client->transport->fd, wanted);
            client->watched = wanted;
        }
        return;
    }
    char detail[320];
    const char *cause = client->transport->detail;
    snprintf(detail, sizeof detail, "TLS handshake with %s failed: %s", client->peer,
             cause != NULL && cause[0] != '\0' ? cause : mb_strerror(rc));
    connection_lost(client, MB_ECONNECT, detail);
}

static void connected(struct mb_async *client, int fd) {
    mb_loop_remove(client->loop, fd);
    client->connecting_fd = -1;
    int rc = mb__client_wrap(client->config.wrap, client->config.wrap_data, fd, &client->transport);
    if (rc == 0) {
        rc = mb_loop_add(client->loop, fd, MB_IO_READ, on_io, client);
        if (rc != 0) {
            client->transport->ops->close(client->transport);
            client->transport = NULL;
        }
    }
    if (rc != 0) {
        char detail[128];
        snprintf(detail, sizeof detail, "connect to %s: %s", client->peer, mb_strerror(rc));
        connection_lost(client, MB_ECONNECT, detail);
        return;
    }
    client->watched = MB_IO_READ;
    if (client->transport->ops->handshake != NULL) {
        client->handshaking = 1;
        continue_handshake(client);
        return;
    }
    established(client);
}

static void connect_failed(struct mb_async *client, int system_errno) {
    char detail[160];
    snprintf(detail, sizeof detail, "connect to %s: %s", client->peer, strerror(system_errno));
    connection_lost(client, MB_ECONNECT, detail);
}

static void on_connect_timeout(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    connect_failed(timer->data, ETIMEDOUT);
}

static void on_connect_task(struct mb_loop *loop, struct mb_task *task) {
    (void)loop;
    start_connect(task->data);
}

static void start_connect(struct mb_async *client) {
    int fd = -1, system_errno = 0;
    set_state(client, MB_ASYNC_CONNECTING, 0, "");
    int rc = mb__client_socket((const struct sockaddr *)&client->address, client->address_length,
                               &fd, &system_errno);
    if (rc == 0 || rc == MB_EAGAIN) {
        client->connecting_fd = fd;
        if (mb_loop_add(client->loop, fd, MB_IO_WRITE, on_io, client) == 0) {
            mb_timer_start(client->loop, &client->connect_timer, client->config.connect_timeout_ms,
                           on_connect_timeout, client);
            return;
        }
        system_errno = EMFILE;
        close(fd);
        client->connecting_fd = -1;
    }
    connect_failed(client, system_errno);
}

static void read_pending(struct mb_loop *loop, struct mb_task *task) {
    struct mb_async *client = task->data;
    if (client->transport != NULL)
        on_io(loop, client->transport->fd, MB_IO_READ, client);
}

static void on_io(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)loop;
    struct mb_async *client = data;
    if (client->connecting_fd == fd) {
        int system_errno = 0;
        if (mb__client_connect_result(fd, &system_errno) != 0)
            connect_failed(client, system_errno);
        else
            connected(client, fd);
        return;
    }
    if (client->transport == NULL)
        return;
    if (client->handshaking) {
        continue_handshake(client);
        if (client->transport == NULL || client->handshaking)
            return;
    }
    if ((events & MB_IO_WRITE) && client->output_length > 0) {
        flush(client);
        if (client->transport == NULL)
            return;
    }
    if (events & (MB_IO_READ | MB_IO_HANGUP)) {
        int rc = read_input(client);
        if (rc != 0 && client->transport != NULL) {
            char detail[160];
            int system_errno = client->transport->system_errno;
            if (rc == MB_EMBAP_LENGTH)
                snprintf(detail, sizeof detail,
                         "%s sent a frame whose MBAP length is outside 2..254", client->peer);
            else if (rc == MB_ECLOSED)
                snprintf(detail, sizeof detail, "%s closed the connection%s", client->peer,
                         mb_mbap_decoder_pending(&client->decoder) ? " in the middle of a response"
                                                                   : "");
            else if (rc == MB_ETLS)
                snprintf(detail, sizeof detail, "TLS with %s failed: %s", client->peer,
                         client->transport->detail != NULL && client->transport->detail[0] != '\0'
                             ? client->transport->detail
                             : mb_strerror(rc));
            else
                snprintf(detail, sizeof detail, "connection to %s failed: %s", client->peer,
                         system_errno != 0 ? strerror(system_errno) : mb_strerror(rc));
            connection_lost(client, MB_ECLOSED, detail);
            return;
        }
    }
    if (client->transport != NULL) {
        dispatch(client);
        update_interest(client);
        if (client->transport->ops->pending(client->transport) > 0)
            mb_loop_post(client->loop, &client->read_task, read_pending, client);
    }
}

/* ---- public ---- */

int mb_async_create(struct mb_loop *loop, const struct mb_async_config *config,
                    const struct sockaddr *address, socklen_t length,
                    struct mb_async **client_out) {
    if (loop == NULL || address == NULL || client_out == NULL || length == 0 ||
        length > sizeof(struct sockaddr_storage))
        return MB_EINVAL;
    struct mb_async_config settings = config != NULL ? *config : (struct mb_async_config){0};
    if (settings.max_in_flight == 0)
        settings.max_in_flight = DEFAULT_MAX_IN_FLIGHT;
    if (settings.max_queued == 0)
        settings.max_queued = DEFAULT_MAX_QUEUED;
    if (settings.timeout_ms == 0)
        settings.timeout_ms = DEFAULT_TIMEOUT_MS;
    if (settings.connect_timeout_ms == 0)
        settings.connect_timeout_ms = DEFAULT_CONNECT_TIMEOUT_MS;
    if (settings.reconnect_min_ms == 0)
        settings.reconnect_min_ms = DEFAULT_RECONNECT_MIN_MS;
    if (settings.reconnect_max_ms == 0)
        settings.reconnect_max_ms = DEFAULT_RECONNECT_MAX_MS;
    if (settings.max_in_flight > MB_ASYNC_MAX_IN_FLIGHT ||
        settings.max_queued > MB_ASYNC_MAX_QUEUED ||
        settings.reconnect_max_ms < settings.reconnect_min_ms)
        return MB_EINVAL;

    struct mb_async *client = calloc(1, sizeof *client);
    if (client == NULL)
        return MB_ENOMEM;
    client->loop = loop;
    client->config = settings;
    memcpy(&client->address, address, length);
    client->address_length = length;
    mb_address_format(address, length, client->peer, sizeof client->peer);
    client->connecting_fd = -1;
    client->slot_count = settings.max_in_flight + settings.max_queued;
    uint32_t table_size = 2;
    while (table_size < 2 * settings.max_in_flight)
        table_size *= 2;
    client->table_mask = table_size - 1;
    client->output_capacity = (size_t)settings.max_in_flight * MB_ADU_MAX;
    client->slots = calloc(client->slot_count, sizeof *client->slots);
    client->table = calloc(table_size, sizeof *client->table);
    client->output = malloc(client->output_capacity);
    if (client->slots == NULL || client->table == NULL || client->output == NULL) {
        free(client->slots);
        free(client->table);
        free(client->output);
        free(client);
        return MB_ENOMEM;
    }
    for (uint32_t i = client->slot_count; i > 0; i--) {
        client->slots[i - 1].client = client;
        client->slots[i - 1].next = client->free_list;
        client->free_list = i;
    }
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    client->random = ((uint64_t)now.tv_nsec << 20) ^ (uint64_t)getpid() ^ (uintptr_t)client;
    if (client->random == 0)
        client->random = 1;
    client->next_transaction = (uint16_t)client->random;
    mb_mbap_decoder_init(&client->decoder);
    /* Connecting starts from the loop, so that no callback runs inside this call. */
    client->state = MB_ASYNC_CONNECTING;
    mb_loop_post(loop, &client->connect_task, on_connect_task, client);
    *client_out = client;
    return 0;
}

void mb_async_destroy(struct mb_async *client) {
    if (client == NULL)
        return;
    client->destroying = 1;
    client->state = MB_ASYNC_CLOSED; /* callbacks that submit again are refused */
    mb_timer_stop(client->loop, &client->reconnect_timer);
    mb_timer_stop(client->loop, &client->deadline_timer);
    mb_loop_cancel(client->loop, &client->connect_task);
    close_descriptor(client);
    fail_all(client, MB_ECANCELED, "the client was destroyed");
    free(client->slots);
    free(client->table);
    free(client->output);
    free(client);
}

int mb_async_submit(struct mb_async *client, uint8_t unit_id, const uint8_t *pdu, size_t length,
                    uint32_t timeout_ms, mb_async_done done, void *data) {
    if (client == NULL || pdu == NULL || length == 0 || length > MB_PDU_MAX || done == NULL)
        return MB_EINVAL;
    if (client->state == MB_ASYNC_DOWN || client->state == MB_ASYNC_CLOSED)
        return MB_ECLOSED;
    if (client->free_list == 0)
        return MB_ELIMIT;
    struct slot *slot = &client->slots[client->free_list - 1];
    client->free_list = slot->next;
    slot->done = done;
    slot->data = data;
    slot->unit_id = unit_id;
    slot->length = (uint8_t)length;
    memcpy(slot->pdu, pdu, length);
    slot->state = SLOT_QUEUED;
    slot->next = 0;
    uint32_t entry = slot_index(client, slot) + 1;
    if (client->queue_tail != 0)
        client->slots[client->queue_tail - 1].next = entry;
    else
        client->queue_head = entry;
    client->queue_tail = entry;
    client->queued++;
    deadline_insert(client, slot, timeout_ms != 0 ? timeout_ms : client->config.timeout_ms);
    dispatch(client);
    return 0;
}

int mb_async_send(struct mb_async *client, uint8_t unit_id, const struct mb_request *request,
                  uint32_t timeout_ms, mb_async_done done, void *data) {
    if (request == NULL)
        return MB_EINVAL;
    uint8_t pdu[MB_PDU_MAX];
    int length = mb_request_encode(request, pdu, sizeof pdu);
    if (length < 0)
        return length;
    return mb_async_submit(client, unit_id, pdu, (size_t)length, timeout_ms, done, data);
}

enum mb_async_state mb_async_state(const struct mb_async *client) {
    return client->state;
}

size_t mb_async_outstanding(const struct mb_async *client) {
    return (size_t)client->queued + client->in_flight;
}

void mb_async_stats(const struct mb_async *client, struct mb_client_stats *stats) {
    *stats = client->stats;
}
