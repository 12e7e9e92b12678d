/* SPDX-License-Identifier: MIT */
/*
 * The gateway (gateway.h) between front clients and a hostile device, all in one loop and one
 * thread: a server front (whose handler records each call and hands it to mb_gateway_handle()),
 * three front clients, and the device, whose end of the backend connection the harness holds
 * and writes what the input says. Routes: front unit 1 to the device's unit 1, front unit 2 to
 * its unit 9, front unit 3 to a second backend nobody listens for (refused, reconnecting);
 * other units have no route.
 *
 * Input: a header byte (bits 0-1: the backend's in-flight limit, 1, 2, 4 or 16; bit 2: a
 * request deadline of 3 ms instead of 1 s), then actions until the input ends:
 *   0 front    a client (0..2), a unit selector (1, 2, 3, 4, 1, 2, 0, or the next byte), a PDU
 *              (length byte and bytes); sent with the client's next transaction id
 *   1 frame    from the device: a reference byte naming a request the device received (or,
 *              with 0x80, a raw transaction id in the next two bytes), a unit byte (0: the
 *              request's device unit), a PDU
 *   2 raw      device bytes as they are (length byte and bytes)
 *   3 settle   run the loop until nothing moves
 *   4 hang up  the device closes its connection (the gateway reconnects after a millisecond)
 *   5 wait     until the requests' deadlines have passed (once per input)
 *   6 reopen   a client (0..2) closes its connection and opens a new one (the server may give it
 *              the old one's slot: answers still owed to the old one must not reach it)
 * At the end the loop settles and the gateway is destroyed (what is outstanding gets 0B).
 *
 * Properties:
 *   - every front request is handled once (the server calls the gateway's handler with its
 *     transaction id, unit id and PDU) and, while its connection lasts, answered exactly once,
 *     with its transaction id and unit id, on its own connection only;
 *   - the answer is what the handler returned at once (0A for no route or a backend down, 02
 *     for addresses past 65535, 06 over the share, or the exception for a PDU that does not
 *     decode), or, for a forwarded request, 0A or 0B
 *     from the gateway, or the PDU of a frame the device sent back on the connection the request
 *     went out on, with the transaction id and unit id it went out with, answering it
 *     (mb_response_matches(), or an exception to its function code); no frame the device
 *     received answers two front requests (requests that are byte for byte alike may have their
 *     frames in any order: a matching decides);
 *   - the device receives forwarded requests in the order they were forwarded, each once, with
 *     the route's device unit id and the PDU as the client sent it;
 *   - on_complete runs once per handled request that decodes (the core answers a PDU that does
 *     not decode itself, without it, and the gateway program's watch counts on exactly that),
 *     with an outcome that agrees with its exception.
 */
#include <stdio.h>
#include <string.h>

#include "fuzz.h"
#include "fuzz_net.h"
#include "mbsec/gateway.h"
#include "mbsec/loop.h"
#include "mbsec/mbap.h"
#include "mbsec/pdu.h"
#include "mbsec/server.h"

#define CLIENTS 3
#define MAX_REQUESTS 12 /* per front connection: below the server's in-flight limit */
#define MAX_CALLS 96
#define SHORT_DEADLINE_MS 3
#define DEADLINE_MS 3000

enum { BACKEND_DEVICE = 0, BACKEND_DEAD = 1 };

static const struct mb_gateway_route routes[] = {
    {.front_unit = 1, .device_unit = 1, .backend = BACKEND_DEVICE},
    {.front_unit = 2, .device_unit = 9, .backend = BACKEND_DEVICE},
    {.front_unit = 3, .device_unit = 3, .backend = BACKEND_DEAD},
};

/* A request as a front client sent it, and what came back. */
struct front_request {
    int client;
    int generation; /* of the client's connection */
    uint16_t transaction_id;
    uint8_t unit_id;
    uint8_t pdu[MB_PDU_MAX];
    size_t length;
    int answers;
    uint8_t answer[MB_PDU_MAX];
    size_t answer_length;
    /* what the handler did */
    int handled;
    int decodes;
    int deferred;
    uint8_t immediate[MB_PDU_MAX];
    size_t immediate_length;
};

/* A forwarded request as the device received it; `owner` is the front request whose answer it
 * gave, once judged (-1: none). */
struct received_frame {
    int device; /* the device connection */
    uint16_t transaction_id;
    uint8_t unit_id;
    uint8_t pdu[MB_PDU_MAX];
    size_t length;
    int owner;
};

struct front {
    int fd;
    int generation;
    size_t requests; /* sent on this connection */
    struct fuzz_log received;
    size_t framed;
    int ended;
};

struct device {
    int fd;
    struct fuzz_log received;
    size_t framed;
    struct fuzz_log sent;
};

struct run {
    struct mb_loop *loop;
    struct mb_server *server;
    struct mb_gateway *gateway;
    int device_listener;
    struct front fronts[CLIENTS];
    struct front_request requests[MAX_CALLS];
    size_t request_count;
    /* The requests in the order the server handed them to the gateway (clients are served in
     * whatever order their events come), and the next one the device may receive. */
    struct front_request *handled[MAX_CALLS];
    size_t handled_count;
    size_t forwarded_next;
    struct device *devices; /* every connection the gateway made to the device */
    int device_count;
    int device_capacity;
    int device; /* the device connection in use, or -1 */
    struct received_frame frames[MAX_CALLS];
    size_t frame_count;
    size_t completions;
    size_t progress;
};

/* Transaction ids are unique in a run: client, connection generation and a counter. */
static uint16_t transaction_id_of(int client, int generation, size_t counter) {
    return (uint16_t)((client + 1) << 12 | (generation & 0xF) << 8 | (int)counter);
}

static struct front_request *find_request(struct run *run, uint16_t transaction_id) {
    for (size_t i = 0; i < run->request_count; i++)
        if (run->requests[i].transaction_id == transaction_id)
            return &run->requests[i];
    return NULL;
}

/* ---- the server's handler and the gateway's completion callback ---- */

static int handler_call(void *data, const struct mb_server_request *call, uint8_t *response) {
    struct run *run = data;
    run->progress++;
    struct front_request *request = find_request(run, call->transaction_id);
    FUZZ_CHECK(request != NULL && !request->handled);
    FUZZ_CHECK(call->unit_id == request->unit_id);
    FUZZ_CHECK(call->pdu_length == request->length &&
               memcmp(call->pdu, request->pdu, request->length) == 0);
    request->handled = 1;
    request->decodes = call->request != NULL;
    run->handled[run->handled_count++] = request;
    int length = mb_gateway_handle(run->gateway, call, response);
    FUZZ_CHECK(length == MB_SERVER_DEFER || (length >= 2 && length <= MB_PDU_MAX));
    if (length == MB_SERVER_DEFER) {
        request->deferred = 1;
    } else {
        memcpy(request->immediate, response, (size_t)length);
        request->immediate_length = (size_t)length;
    }
    return length;
}

static void on_complete(void *data, const struct mb_gateway_completion *done) {
    struct run *run = data;
    run->completions++;
    run->progress++;
    /* The outcome and the exception agree; only the device's answers come from the device. */
    FUZZ_CHECK(done->from_device == (done->outcome == MB_GATEWAY_ANSWERED));
    switch (done->outcome) {
    case MB_GATEWAY_ANSWERED:
        break;
    case MB_GATEWAY_UNAVAILABLE:
        FUZZ_CHECK(done->exception == MB_EX_GATEWAY_PATH_UNAVAILABLE);
        break;
    case MB_GATEWAY_TIMEOUT:
    case MB_GATEWAY_MISMATCH:
        FUZZ_CHECK(done->exception == MB_EX_GATEWAY_TARGET_FAILED);
        break;
    case MB_GATEWAY_OVER_SHARE:
        FUZZ_CHECK(done->exception == MB_EX_SERVER_DEVICE_BUSY);
        break;
    case MB_GATEWAY_REJECTED:
        FUZZ_CHECK(done->exception == MB_EX_ILLEGAL_DATA_ADDRESS);
        break;
    default:
        FUZZ_CHECK(0);
    }
}

/* ---- the front clients ---- */

static void front_open(struct run *run, int client, const struct fuzz_address *address) {
    struct front *front = &run->fronts[client];
    front->fd = fuzz_connect(address);
    front->generation++;
    front->requests = 0;
    fuzz_log_free(&front->received);
    front->framed = 0;
    front->ended = 0;
}

/* Checks the answers that arrived on a client's connection. */
static void front_receive(struct run *run, int client) {
    struct front *front = &run->fronts[client];
    if (front->fd < 0)
        return;
    run->progress += fuzz_receive(front->fd, &front->received, &front->ended);
    const uint8_t *data = front->received.bytes;
    while (front->received.length - front->framed >= 7) {
        const uint8_t *frame = data + front->framed;
        uint16_t length = mb_get_u16(frame + 4);
        FUZZ_CHECK(mb_get_u16(frame + 2) == 0 && length >= 2 && length <= 254);
        if (front->received.length - front->framed < 6u + length)
            break;
        struct front_request *request = find_request(run, mb_get_u16(frame));
        FUZZ_CHECK(request != NULL && request->client == client &&
                   request->generation == front->generation);
        FUZZ_CHECK(frame[6] == request->unit_id);
        FUZZ_CHECK(++request->answers == 1);
        request->answer_length = (size_t)length - 1;
        memcpy(request->answer, frame + 7, request->answer_length);
        front->framed += 6u + length;
    }
}

/* ---- the device ---- */

static void device_accept(struct run *run) {
    int fd;
    while ((fd = fuzz_accept(run->device_listener)) >= 0) {
        if (run->device_count == run->device_capacity) {
            run->device_capacity = run->device_capacity > 0 ? 2 * run->device_capacity : 4;
            run->devices =
                realloc(run->devices, (size_t)run->device_capacity * sizeof *run->devices);
            FUZZ_CHECK(run->devices != NULL);
        }
        struct device *device = &run->devices[run->device_count];
        memset(device, 0, sizeof *device);
        device->fd = fd;
        /* The gateway has one connection to the device: a new one replaces the old. */
        if (run->device >= 0 && run->devices[run->device].fd >= 0) {
            close(run->devices[run->device].fd);
            run->devices[run->device].fd = -1;
        }
        run->device = run->device_count++;
        run->progress++;
    }
}

static uint8_t device_unit_of(const struct front_request *request) {
    return request->unit_id == 1 ? 1 : 9;
}

static int same_request(const struct front_request *request, const struct received_frame *frame) {
    return frame->unit_id == device_unit_of(request) && frame->length == request->length &&
           memcmp(frame->pdu, request->pdu, request->length) == 0;
}

/* Takes the forwarded requests that arrived: each is one that the gateway deferred for the
 * device's backend (front unit 1 or 2), with the route's device unit and the client's PDU, later
 * in the order the gateway handled them than the one before (requests in between never went
 * out). Which front request a frame is, when several sent the same, is settled by judge(). */
static void device_receive(struct run *run, int index) {
    struct device *device = &run->devices[index];
    if (device->fd < 0)
        return;
    int ended = 0;
    run->progress += fuzz_receive(device->fd, &device->received, &ended);
    const uint8_t *data = device->received.bytes;
    while (device->received.length - device->framed >= 7) {
        const uint8_t *bytes = data + device->framed;
        uint16_t length = mb_get_u16(bytes + 4);
        FUZZ_CHECK(mb_get_u16(bytes + 2) == 0 && length >= 2 && length <= 254);
        if (device->received.length - device->framed < 6u + length)
            break;
        FUZZ_CHECK(run->frame_count < MAX_CALLS);
        struct received_frame *frame = &run->frames[run->frame_count++];
        frame->device = index;
        frame->transaction_id = mb_get_u16(bytes);
        frame->unit_id = bytes[6];
        frame->length = (size_t)length - 1;
        memcpy(frame->pdu, bytes + 7, frame->length);
        frame->owner = -1;
        int found = 0;
        while (!found) {
            FUZZ_CHECK(run->forwarded_next < run->handled_count);
            const struct front_request *next = run->handled[run->forwarded_next++];
            found = next->deferred && next->unit_id != 3 && same_request(next, frame);
        }
        device->framed += 6u + length;
    }
}

static void device_send(struct run *run, const void *bytes, size_t length) {
    if (run->device < 0 || run->devices[run->device].fd < 0 || length == 0)
        return;
    struct device *device = &run->devices[run->device];
    fuzz_log_append(&device->sent, bytes, length);
    if (fuzz_send_all(device->fd, bytes, length) != 0) {
        close(device->fd);
        device->fd = -1;
    }
}

/* 1 if device connection `index` sent a frame with this transaction id, unit id and PDU. */
static int device_sent(const struct run *run, int index, uint16_t transaction_id, uint8_t unit_id,
                       const uint8_t *pdu, size_t pdu_length) {
    const struct device *device = &run->devices[index];
    const uint8_t *data = device->sent.bytes;
    size_t size = device->sent.length, offset = 0;
    while (size - offset >= 6) {
        uint16_t length = mb_get_u16(data + offset + 4);
        if (length < 2 || length > 254 || size - offset < 6u + length)
            return 0;
        if (mb_get_u16(data + offset) == transaction_id && mb_get_u16(data + offset + 2) == 0 &&
            data[offset + 6] == unit_id && (size_t)length - 1 == pdu_length &&
            memcmp(data + offset + 7, pdu, pdu_length) == 0)
            return 1;
        offset += 6u + length;
    }
    return 0;
}

static void pump(struct run *run) {
    device_accept(run);
    for (int i = 0; i < run->device_count; i++)
        device_receive(run, i);
    for (int client = 0; client < CLIENTS; client++)
        front_receive(run, client);
}

static void settle(struct run *run, uint64_t deadline) {
    int idle = 0;
    while (idle < 3) {
        FUZZ_CHECK(fuzz_now_ms() < deadline);
        size_t before = run->progress;
        mb_loop_run_once(run->loop, 0);
        pump(run);
        idle = run->progress == before ? idle + 1 : 0;
    }
}

/* ---- judging the answers ---- */

static int is_gateway_exception(const struct front_request *request) {
    return request->answer_length == 2 &&
           request->answer[0] == (request->pdu[0] | MB_EXCEPTION_BIT) &&
           (request->answer[1] == MB_EX_GATEWAY_PATH_UNAVAILABLE ||
            request->answer[1] == MB_EX_GATEWAY_TARGET_FAILED);
}

/* Whether `frame` can be the one the device's answer to `request` came for. */
static int answered_by(const struct run *run, const struct front_request *request,
                       const struct received_frame *frame) {
    return same_request(request, frame) &&
           device_sent(run, frame->device, frame->transaction_id, frame->unit_id, request->answer,
                       request->answer_length);
}

/* Gives front request `index` a received frame whose answer it got, moving earlier owners to
 * other frames if need be (a matching: requests that are alike may have their frames in any
 * order, but no frame answers two). */
static int claim(struct run *run, int index, uint8_t *visited) {
    for (size_t f = 0; f < run->frame_count; f++) {
        struct received_frame *frame = &run->frames[f];
        if (visited[f] || !answered_by(run, &run->requests[index], frame))
            continue;
        visited[f] = 1;
        if (frame->owner < 0 || claim(run, frame->owner, visited)) {
            frame->owner = index;
            return 1;
        }
    }
    return 0;
}

static void judge(struct run *run, int index) {
    const struct front_request *request = &run->requests[index];
    FUZZ_CHECK(request->handled);
    FUZZ_CHECK(request->answers == 1);
    if (!request->deferred) {
        FUZZ_CHECK(request->answer_length == request->immediate_length &&
                   memcmp(request->answer, request->immediate, request->answer_length) == 0);
        return;
    }
    if (is_gateway_exception(request))
        return;
    /* A device's answer: to a frame of this request that went out, sent back with its
     * transaction id and unit, and answering it. */
    FUZZ_CHECK(request->unit_id != 3);
    FUZZ_CHECK((request->answer[0] & ~MB_EXCEPTION_BIT) == request->pdu[0]);
    struct mb_response response;
    FUZZ_CHECK(mb_response_decode(request->answer, request->answer_length, &response) == 0);
    struct mb_request decoded;
    FUZZ_CHECK(mb_request_decode(request->pdu, request->length, &decoded) == 0);
    if (response.exception == 0)
        FUZZ_CHECK(mb_response_matches(&decoded, &response) == 0);
    uint8_t visited[MAX_CALLS] = {0};
    FUZZ_CHECK(claim(run, index, visited));
}

/* ---- the target ---- */

struct listeners {
    int front;
    int device;
    struct fuzz_address front_address;
    struct fuzz_address device_address;
    struct fuzz_address dead_address;
};

static const struct listeners *listeners(void) {
    static struct listeners shared = {.front = -1};
    if (shared.front >= 0)
        return &shared;
    shared.front = fuzz_listen("gateway-front", &shared.front_address);
    shared.device = fuzz_listen("gateway-device", &shared.device_address);
    /* A name nobody listens on: connections to it are refused at once. */
    int dead = fuzz_listen("gateway-dead", &shared.dead_address);
    close(dead);
    return &shared;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size) {
    const struct listeners *at = listeners();
    struct fuzz_input input;
    fuzz_input_init(&input, data, size);
    uint8_t header = fuzz_u8(&input);
    static const uint32_t in_flight[] = {1, 2, 4, 16};

    struct run *run = calloc(1, sizeof *run);
    FUZZ_CHECK(run != NULL);
    run->device = -1;
    run->device_listener = at->device;
    uint64_t deadline = fuzz_now_ms() + DEADLINE_MS;
    FUZZ_CHECK(mb_loop_create(&run->loop) == 0);
    struct mb_server_config server_config = {
        .handler = handler_call,
        .handler_data = run,
        .pass_undecodable = 1,
    };
    FUZZ_CHECK(mb_server_create(run->loop, &server_config, &run->server) == 0);
    FUZZ_CHECK(mb_server_adopt(run->server, at->front, 0) == 0);

    struct mb_gateway_backend backends[2];
    memset(backends, 0, sizeof backends);
    const struct fuzz_address *addresses[2] = {&at->device_address, &at->dead_address};
    for (int i = 0; i < 2; i++) {
        backends[i].name = i == BACKEND_DEVICE ? "device" : "dead";
        memcpy(&backends[i].address, &addresses[i]->un, addresses[i]->length);
        backends[i].address_length = addresses[i]->length;
        backends[i].timeout_ms = header & 4 ? SHORT_DEADLINE_MS : 1000;
        backends[i].max_in_flight = in_flight[header & 3];
        backends[i].max_queued = 4;
        backends[i].reconnect_min_ms = 1;
        backends[i].reconnect_max_ms = 1;
    }
    struct mb_gateway_config gateway_config = {
        .backends = backends,
        .backend_count = 2,
        .routes = routes,
        .route_count = sizeof routes / sizeof routes[0],
        .on_complete = on_complete,
        .complete_data = run,
    };
    FUZZ_CHECK(mb_gateway_create(run->loop, run->server, &gateway_config, &run->gateway) == 0);
    for (int client = 0; client < CLIENTS; client++)
        front_open(run, client, &at->front_address);
    /* The gateway connects to the device from the loop. */
    while (run->device < 0) {
        FUZZ_CHECK(fuzz_now_ms() < deadline);
        mb_loop_run_once(run->loop, 0);
        device_accept(run);
    }
    settle(run, deadline);

    int waited = 0;
    while (fuzz_input_left(&input) > 0) {
        uint8_t action = fuzz_u8(&input) % 7;
        if (action == 0) {
            static const int units[] = {1, 2, 3, 4, 1, 2, 0, -1};
            int client = fuzz_u8(&input) % CLIENTS;
            int unit = units[fuzz_u8(&input) % 8];
            if (unit < 0)
                unit = fuzz_u8(&input);
            const uint8_t *bytes;
            size_t wanted = fuzz_u8(&input);
            size_t length = fuzz_take(&input,
                                      wanted == 0           ? 1
                                      : wanted > MB_PDU_MAX ? MB_PDU_MAX
                                                            : wanted,
                                      &bytes);
            struct front *front = &run->fronts[client];
            if (length == 0 || front->requests == MAX_REQUESTS || run->request_count == MAX_CALLS)
                continue;
            struct front_request *request = &run->requests[run->request_count++];
            request->client = client;
            request->generation = front->generation;
            request->transaction_id = transaction_id_of(client, front->generation, front->requests);
            request->unit_id = (uint8_t)unit;
            memcpy(request->pdu, bytes, length);
            request->length = length;
            front->requests++;
            uint8_t frame[MB_MBAP_HEADER_SIZE + MB_PDU_MAX];
            mb_put_u16(frame, request->transaction_id);
            mb_put_u16(frame + 2, 0);
            mb_put_u16(frame + 4, (uint16_t)(length + 1));
            frame[6] = request->unit_id;
            memcpy(frame + 7, bytes, length);
            FUZZ_CHECK(fuzz_send_all(front->fd, frame, 7 + length) == 0);
        } else if (action == 1) {
            uint8_t reference = fuzz_u8(&input);
            uint16_t transaction_id;
            uint8_t unit_id = 1;
            if ((reference & 0x80) || run->frame_count == 0) {
                transaction_id = fuzz_u16(&input);
            } else {
                static const int deltas[] = {0, 1, -1, 256};
                const struct received_frame *frame =
                    &run->frames[run->frame_count - 1 - (reference & 7) % run->frame_count];
                transaction_id = (uint16_t)(frame->transaction_id + deltas[(reference >> 3) & 3]);
                unit_id = frame->unit_id;
            }
            uint8_t unit = fuzz_u8(&input);
            if (unit != 0)
                unit_id = unit;
            const uint8_t *pdu;
            size_t length = fuzz_take(&input, fuzz_u8(&input), &pdu);
            uint8_t frame[MB_MBAP_HEADER_SIZE + 255];
            mb_put_u16(frame, transaction_id);
            mb_put_u16(frame + 2, 0);
            mb_put_u16(frame + 4, (uint16_t)(length + 1));
            frame[6] = unit_id;
            memcpy(frame + 7, pdu, length);
            device_send(run, frame, 7 + length);
        } else if (action == 2) {
            const uint8_t *bytes;
            size_t length = fuzz_take(&input, fuzz_u8(&input), &bytes);
            device_send(run, bytes, length);
        } else if (action == 3) {
            settle(run, deadline);
        } else if (action == 4) {
            settle(run, deadline);
            if (run->device >= 0 && run->devices[run->device].fd >= 0) {
                close(run->devices[run->device].fd);
                run->devices[run->device].fd = -1;
            }
            settle(run, deadline);
        } else if (action == 5 && !waited) {
            waited = 1;
            uint64_t until = fuzz_now_ms() + (header & 4 ? SHORT_DEADLINE_MS + 1 : 2);
            while (fuzz_now_ms() < until) {
                mb_loop_run_once(run->loop, 1);
                pump(run);
            }
            settle(run, deadline);
        } else if (action == 6) {
            int client = fuzz_u8(&input) % CLIENTS;
            if (run->fronts[client].generation >= 15)
                continue; /* transaction ids keep 4 bits for it */
            settle(run, deadline);
            close(run->fronts[client].fd);
            front_open(run, client, &at->front_address);
            settle(run, deadline);
        }
    }
    settle(run, deadline);
    /* Every request sent was handled; then the gateway answers what is outstanding (0B) as it
     * goes, and the server closes the clients. */
    for (size_t i = 0; i < run->request_count; i++)
        FUZZ_CHECK(run->requests[i].handled ||
                   run->requests[i].generation != run->fronts[run->requests[i].client].generation);
    mb_gateway_destroy(run->gateway);
    mb_server_destroy(run->server);
    for (int client = 0; client < CLIENTS; client++) {
        while (!run->fronts[client].ended) {
            FUZZ_CHECK(fuzz_now_ms() < deadline);
            front_receive(run, client);
        }
    }
    for (size_t i = 0; i < run->request_count; i++) {
        const struct front_request *request = &run->requests[i];
        if (request->generation == run->fronts[request->client].generation)
            judge(run, (int)i);
        else
            FUZZ_CHECK(request->answers == 0 || request->answers == 1);
    }
    size_t completed = 0;
    for (size_t i = 0; i < run->request_count; i++)
        completed += run->requests[i].handled && run->requests[i].decodes;
    FUZZ_CHECK(run->completions == completed);

    for (int client = 0; client < CLIENTS; client++) {
        close(run->fronts[client].fd);
        fuzz_log_free(&run->fronts[client].received);
    }
    for (int i = 0; i < run->device_count; i++) {
        if (run->devices[i].fd >= 0)
            close(run->devices[i].fd);
        fuzz_log_free(&run->devices[i].received);
        fuzz_log_free(&run->devices[i].sent);
    }
    /* Connections the gateway opened to the device and the harness never took. */
    int stray;
    while ((stray = fuzz_accept(at->device)) >= 0)
        close(stray);
    mb_loop_destroy(run->loop);
    free(run->devices);
    free(run);
    return 0;
}
