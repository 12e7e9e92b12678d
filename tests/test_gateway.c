/* SPDX-License-Identifier: MIT */
/*
 * The gateway core with real sockets on 127.0.0.1: a device (mbsec's server and data model,
 * accepting ONE connection, as many devices do) in one thread, the gateway (a server whose
 * handler forwards through mb_gateway) in another, and the clients in the test's thread.
 * Many clients multiplexed onto the device's one connection with every value checked; unit-id
 * remapping; no route and a dead backend answered 0x0A, a silent device 0x0B; service resuming
 * when the device returns; a slow device not delaying a fast one.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/time.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "mbsec/client.h"
#include "mbsec/gateway.h"
#include "mbsec/model.h"
#include "mbsec/server.h"

#define UNIT_SILENT 0xDD /* the device never answers this unit */
#define UNIT_SLOW 0xD5   /* the slow device answers after SLOW_MS */
#define SLOW_MS 400

/* A server in its own thread. */
struct node {
    struct mb_loop *loop;
    struct mb_server *server;
    pthread_t thread;
    uint16_t port;
};

struct slow_answer {
    uint64_t token;
    uint8_t pdu[MB_PDU_MAX];
    int length;
    struct mb_timer timer;
};

static struct mb_model *model;
static struct node device, slow_device, spare_device, gateway_node;
static struct mb_gateway *gateway;
static struct slow_answer slow[64];
static int slow_count;

/* What the completion hook saw last (written on the gateway's thread). */
static pthread_mutex_t completion_lock = PTHREAD_MUTEX_INITIALIZER;
static struct mb_gateway_completion last_completion;
static char last_backend[32];
static int completions;
static int backends_removed; /* "backend_removed" events seen (gateway thread; read atomically) */

static void on_log(void *data, const struct mb_log_event *event) {
    (void)data;
    if (strcmp(event->event, "backend_removed") == 0)
        __atomic_add_fetch(&backends_removed, 1, __ATOMIC_SEQ_CST);
}

static void on_complete(void *data, const struct mb_gateway_completion *done) {
    (void)data;
    pthread_mutex_lock(&completion_lock);
    last_completion = *done;
    snprintf(last_backend, sizeof last_backend, "%s", done->backend ? done->backend : "(none)");
    completions++;
    pthread_mutex_unlock(&completion_lock);
}

static struct mb_gateway_completion completion(char *backend, size_t size) {
    pthread_mutex_lock(&completion_lock);
    struct mb_gateway_completion copy = last_completion;
    snprintf(backend, size, "%s", last_backend);
    pthread_mutex_unlock(&completion_lock);
    return copy;
}

static int device_handler(void *data, const struct mb_server_request *call, uint8_t *response) {
    if (call->unit_id == UNIT_SILENT)
        return MB_SERVER_DEFER; /* never answered */
    return mb_model_handle(data, call, response);
}

static void answer_slow(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    struct slow_answer *answer = timer->data;
    mb_server_reply(slow_device.server, answer->token, answer->pdu, (size_t)answer->length);
}

static int slow_handler(void *data, const struct mb_server_request *call, uint8_t *response) {
    (void)response;
    struct slow_answer *answer = &slow[__atomic_fetch_add(&slow_count, 1, __ATOMIC_SEQ_CST) % 64];
    answer->token = call->token;
    answer->length = mb_model_handle(data, call, answer->pdu);
    memset(&answer->timer, 0, sizeof answer->timer);
    mb_timer_start(slow_device.loop, &answer->timer, SLOW_MS, answer_slow, answer);
    return MB_SERVER_DEFER;
}

/* The paced device: one request at a time (the gateway's backend has in_flight 1, as for a
 * serial line), each answered PACED_MS after it came. */
#define PACED_MS 10
static struct node paced_device;
static struct slow_answer paced[8];
static int paced_count;

static void answer_paced(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    struct slow_answer *answer = timer->data;
    mb_server_reply(paced_device.server, answer->token, answer->pdu, (size_t)answer->length);
}

static int paced_handler(void *data, const struct mb_server_request *call, uint8_t *response) {
    (void)response;
    struct slow_answer *answer = &paced[paced_count++ % 8];
    answer->token = call->token;
    answer->length = mb_model_handle(data, call, answer->pdu);
    memset(&answer->timer, 0, sizeof answer->timer);
    mb_timer_start(paced_device.loop, &answer->timer, PACED_MS, answer_paced, answer);
    return MB_SERVER_DEFER;
}

static void *run(void *data) {
    struct node *node = data;
    mb_loop_run(node->loop);
    return NULL;
}

static uint16_t port_of(struct mb_server *server) {
    char bound[64];
    CHECK(mb_server_listener_address(server, 0, bound, sizeof bound) > 0);
    return (uint16_t)atoi(strrchr(bound, ':') + 1);
}

static void start_device(struct node *node, mb_server_handler handler, uint16_t port) {
    CHECK_EQ(mb_loop_create(&node->loop), 0);
    struct mb_server_config config = {.handler = handler, .handler_data = model};
    config.limits.max_connections = 1; /* a device that takes one connection */
    CHECK_EQ(mb_server_create(node->loop, &config, &node->server), 0);
    char address[32];
    snprintf(address, sizeof address, "127.0.0.1:%u", port);
    CHECK_EQ(mb_server_listen(node->server, address, 16), 0);
    node->port = port_of(node->server);
    CHECK_EQ(pthread_create(&node->thread, NULL, run, node), 0);
}

static void stop_node(struct node *node) {
    mb_loop_stop(node->loop);
    pthread_join(node->thread, NULL);
    mb_server_destroy(node->server);
    mb_loop_destroy(node->loop);
    memset(node, 0, sizeof *node);
}

static void backend_at(struct mb_gateway_backend *backend, const char *name, uint16_t port,
                       uint32_t timeout_ms) {
    memset(backend, 0, sizeof *backend);
    backend->name = name;
    char address[32];
    snprintf(address, sizeof address, "127.0.0.1:%u", port);
    CHECK_EQ(mb_address_parse(address, 502, &backend->address, &backend->address_length, NULL), 0);
    backend->timeout_ms = timeout_ms;
    backend->reconnect_min_ms = 20;
    backend->reconnect_max_ms = 100;
    /* The tests multiplex many clients of one address (one identity): the whole backend is
     * theirs. The fair share has a gateway of its own below. */
    backend->share = 1000000;
}

static void start_gateway(void) {
    CHECK_EQ(mb_loop_create(&gateway_node.loop), 0);
    struct mb_server_config config = {0};
    config.handler = mb_gateway_handle;
    CHECK_EQ(mb_server_create(gateway_node.loop, &config, &gateway_node.server), 0);
    CHECK_EQ(mb_server_listen(gateway_node.server, "127.0.0.1:0", 64), 0);
    gateway_node.port = port_of(gateway_node.server);
    struct mb_gateway_backend backends[2];
    backend_at(&backends[0], "plc", device.port, 300);
    backend_at(&backends[1], "slow-plc", slow_device.port, 2000);
    const struct mb_gateway_route routes[] = {
        {.front_unit = 1, .device_unit = 1, .backend = 0},
        {.front_unit = 5, .device_unit = 1, .backend = 0}, /* remapped to the device's unit 1 */
        {.front_unit = UNIT_SILENT, .device_unit = UNIT_SILENT, .backend = 0},
        {.front_unit = 9, .device_unit = UNIT_SLOW, .backend = 1},
    };
    struct mb_gateway_config gateway_config = {.backends = backends,
                                               .backend_count = 2,
                                               .routes = routes,
                                               .route_count = 4,
                                               .on_complete = on_complete,
                                               .log = on_log};
    CHECK_EQ(mb_gateway_create(gateway_node.loop, gateway_node.server, &gateway_config, &gateway),
             0);
    mb_server_set_handler(gateway_node.server, mb_gateway_handle, gateway);
    CHECK_EQ(pthread_create(&gateway_node.thread, NULL, run, &gateway_node), 0);
}

static struct mb_client *connect_gateway(uint32_t timeout_ms) {
    char target[32], detail[256];
    snprintf(target, sizeof target, "127.0.0.1:%u", gateway_node.port);
    struct mb_client_options options = {.timeout_ms = timeout_ms};
    struct mb_client *client = NULL;
    CHECK_EQ(mb_client_connect(target, &options, &client, detail, sizeof detail), 0);
    return client;
}

/* Waits (bounded) until a read of unit 1 through the gateway succeeds. */
static int wait_until_served(void) {
    struct mb_client *client = connect_gateway(200);
    uint16_t value;
    int rc = -1;
    for (int i = 0; i < 200 && rc != 0; i++) {
        rc = mb_read_holding_registers(client, 1, 0, 1, &value);
        if (rc != 0)
            usleep(10000);
    }
    mb_client_close(client);
    return rc;
}

static uint64_t now_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (uint64_t)now.tv_sec * 1000 + (uint64_t)now.tv_nsec / 1000000;
}

TEST(a_read_through_the_gateway_returns_the_device_values) {
    CHECK_EQ(wait_until_served(), 0);
    uint16_t values[3] = {0x1111, 0x2222, 0x3333};
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_HOLDING_REGISTERS, 10, 3, values), 0);
    struct mb_client *client = connect_gateway(1000);
    uint16_t read[3] = {0};
    CHECK_EQ(mb_read_holding_registers(client, 1, 10, 3, read), 0);
    CHECK_EQ(read[0], 0x1111);
    CHECK_EQ(read[2], 0x3333);
    /* Front unit 5 is the device's unit 1. */
    memset(read, 0, sizeof read);
    CHECK_EQ(mb_read_holding_registers(client, 5, 10, 3, read), 0);
    CHECK_EQ(read[1], 0x2222);
    CHECK_EQ(mb_write_register(client, 5, 20, 777), 0);
    CHECK_EQ(mb_read_holding_registers(client, 1, 20, 1, read), 0);
    CHECK_EQ(read[0], 777);
    mb_client_close(client);
}

TEST(a_unit_without_a_route_gets_0a_and_a_silent_device_0b) {
    struct mb_client *client = connect_gateway(2000);
    uint16_t value = 0x5A5A;
    char backend[32];
    CHECK_EQ(mb_read_holding_registers(client, 77, 0, 1, &value), MB_EX_GATEWAY_PATH_UNAVAILABLE);
    struct mb_gateway_completion done = completion(backend, sizeof backend);
    CHECK_EQ(done.front_unit, 77);
    CHECK_EQ(done.exception, MB_EX_GATEWAY_PATH_UNAVAILABLE);
    CHECK_EQ(done.from_device, 0);
    CHECK_STR(backend, "(none)");
    CHECK_EQ(mb_read_holding_registers(client, UNIT_SILENT, 0, 1, &value),
             MB_EX_GATEWAY_TARGET_FAILED);
    CHECK_EQ(value, 0x5A5A);
    done = completion(backend, sizeof backend);
    CHECK_EQ(done.exception, MB_EX_GATEWAY_TARGET_FAILED);
    CHECK_STR(backend, "plc");
    CHECK(done.latency_us >= 250000); /* the backend's 300 ms timeout */
    /* The connection to the device carries on. */
    CHECK_EQ(mb_read_holding_registers(client, 5, 0, 1, &value), 0);
    done = completion(backend, sizeof backend);
    CHECK_EQ(done.exception, 0);
    CHECK_EQ(done.from_device, 1);
    CHECK_EQ(done.front_unit, 5);
    CHECK_EQ(done.device_unit, 1);
    CHECK_EQ(done.function, MB_FC_READ_HOLDING_REGISTERS);
    mb_client_close(client);
}

struct multiplexed {
    int client;
    int index;
    int status;
    uint16_t value;
    int calls;
};

static void on_multiplexed(void *data, const struct mb_async_result *result) {
    struct multiplexed *request = data;
    request->calls++;
    request->status = result->status == 0 ? result->response->exception : result->status;
    if (result->status == 0 && result->response->exception == 0)
        request->value = mb_get_u16(result->response->read.data);
}

TEST(many_clients_share_the_device_single_connection_without_cross_talk) {
    enum { CLIENTS = 6, REQUESTS = 100 };
    uint16_t values[CLIENTS * REQUESTS];
    for (int i = 0; i < CLIENTS * REQUESTS; i++)
        values[i] = (uint16_t)(0x8000 + i * 13);
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_HOLDING_REGISTERS, 1000, 125, values), 0);
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_HOLDING_REGISTERS, 1125, 125, values + 125), 0);
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_HOLDING_REGISTERS, 1250, 125, values + 250), 0);
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_HOLDING_REGISTERS, 1375, 125, values + 375), 0);
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_HOLDING_REGISTERS, 1500, 100, values + 500), 0);
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct sockaddr_storage address;
    socklen_t length;
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", gateway_node.port);
    CHECK_EQ(mb_address_parse(target, 502, &address, &length, NULL), 0);
    struct mb_async *clients[CLIENTS];
    static struct multiplexed requests[CLIENTS * REQUESTS];
    memset(requests, 0, sizeof requests);
    struct mb_async_config config = {.max_in_flight = 16, .max_queued = REQUESTS};
    for (int c = 0; c < CLIENTS; c++)
        CHECK_EQ(mb_async_create(loop, &config, (struct sockaddr *)&address, length, &clients[c]),
                 0);
    for (int i = 0; i < CLIENTS * REQUESTS; i++) {
        int c = i % CLIENTS;
        struct mb_request request = {.function = MB_FC_READ_HOLDING_REGISTERS,
                                     .read = {(uint16_t)(1000 + i), 1}};
        requests[i] = (struct multiplexed){.client = c, .index = i};
        /* Front units 1 and 5 both reach the device's unit 1. */
        CHECK_EQ(mb_async_send(clients[c], (i & 1) ? 5 : 1, &request, 5000, on_multiplexed,
                               &requests[i]),
                 0);
    }
    size_t outstanding = 1;
    for (int round = 0; round < 2000 && outstanding > 0; round++) {
        mb_loop_run_once(loop, 5);
        outstanding = 0;
        for (int c = 0; c < CLIENTS; c++)
            outstanding += mb_async_outstanding(clients[c]);
    }
    int wrong = 0;
    for (int i = 0; i < CLIENTS * REQUESTS; i++)
        if (requests[i].calls != 1 || requests[i].status != 0 || requests[i].value != values[i])
            wrong++;
    CHECK_EQ(wrong, 0);
    for (int c = 0; c < CLIENTS; c++)
        mb_async_destroy(clients[c]);
    mb_loop_destroy(loop);
    struct mb_gateway_stats stats;
    mb_gateway_stats(gateway, &stats);
    CHECK(stats.forwarded >= CLIENTS * REQUESTS);
    CHECK_EQ(stats.mismatched, 0);
}

struct timed {
    int status;
    uint64_t done_ms;
    int calls;
};

static void on_timed(void *data, const struct mb_async_result *result) {
    struct timed *timed = data;
    timed->calls++;
    timed->status = result->status == 0 ? result->response->exception : result->status;
    timed->done_ms = now_ms();
}

TEST(a_slow_device_does_not_delay_requests_to_another) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct sockaddr_storage address;
    socklen_t length;
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", gateway_node.port);
    CHECK_EQ(mb_address_parse(target, 502, &address, &length, NULL), 0);
    struct mb_async *client;
    CHECK_EQ(mb_async_create(loop, NULL, (struct sockaddr *)&address, length, &client), 0);
    struct timed slow_request = {0}, fast[10];
    memset(fast, 0, sizeof fast);
    struct mb_request request = {.function = MB_FC_READ_HOLDING_REGISTERS, .read = {0, 1}};
    uint64_t start = now_ms();
    CHECK_EQ(mb_async_send(client, 9, &request, 3000, on_timed, &slow_request), 0);
    for (int i = 0; i < 10; i++)
        CHECK_EQ(mb_async_send(client, 1, &request, 3000, on_timed, &fast[i]), 0);
    for (int round = 0; round < 1000 && mb_async_outstanding(client) > 0; round++)
        mb_loop_run_once(loop, 5);
    CHECK_EQ(slow_request.status, 0);
    CHECK(slow_request.done_ms - start >= SLOW_MS);
    for (int i = 0; i < 10; i++) {
        CHECK_EQ(fast[i].status, 0);
        /* Answered long before the slow device's answer came. */
        CHECK(fast[i].done_ms < slow_request.done_ms);
    }
    mb_async_destroy(client);
    mb_loop_destroy(loop);
}

TEST(a_dead_device_gives_0a_or_0b_and_service_resumes_when_it_returns) {
    uint16_t port = device.port, value;
    stop_node(&device);
    struct mb_client *client = connect_gateway(2000);
    /* Lost while connected: in flight 0x0B, then down: 0x0A, never a hang. */
    int rc = mb_read_holding_registers(client, 1, 0, 1, &value);
    CHECK(rc == MB_EX_GATEWAY_PATH_UNAVAILABLE || rc == MB_EX_GATEWAY_TARGET_FAILED);
    rc = mb_read_holding_registers(client, 1, 0, 1, &value);
    CHECK(rc == MB_EX_GATEWAY_PATH_UNAVAILABLE || rc == MB_EX_GATEWAY_TARGET_FAILED);
    mb_client_close(client);
    start_device(&device, device_handler, port);
    CHECK_EQ(wait_until_served(), 0);
}

/* Stops the gateway's thread, so that the test may call into the gateway, and starts it again. */
static void pause_gateway(void) {
    mb_loop_stop(gateway_node.loop);
    pthread_join(gateway_node.thread, NULL);
}

static void resume_gateway(void) {
    CHECK_EQ(pthread_create(&gateway_node.thread, NULL, run, &gateway_node), 0);
}

TEST(a_reconfiguration_keeps_unchanged_backends_and_lets_removed_ones_finish) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct sockaddr_storage address;
    socklen_t length;
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", gateway_node.port);
    CHECK_EQ(mb_address_parse(target, 502, &address, &length, NULL), 0);
    struct mb_async *client;
    CHECK_EQ(mb_async_create(loop, NULL, (struct sockaddr *)&address, length, &client), 0);
    struct mb_request request = {.function = MB_FC_READ_HOLDING_REGISTERS, .read = {0, 1}};
    struct timed in_flight = {0}, after = {0};
    /* A request held by the slow device when the reload comes. */
    int asked = __atomic_load_n(&slow_count, __ATOMIC_SEQ_CST);
    CHECK_EQ(mb_async_send(client, 9, &request, 5000, on_timed, &in_flight), 0);
    for (int round = 0; round < 400 && __atomic_load_n(&slow_count, __ATOMIC_SEQ_CST) == asked;
         round++)
        mb_loop_run_once(loop, 5);
    CHECK(__atomic_load_n(&slow_count, __ATOMIC_SEQ_CST) > asked);

    pause_gateway();
    struct mb_gateway_backend_info before;
    CHECK_EQ(mb_gateway_backend_info(gateway, 0, &before), 0);
    CHECK_STR(before.name, "plc");
    CHECK_EQ(before.connections_up, 1);
    struct mb_gateway_backend_info slow_info;
    CHECK_EQ(mb_gateway_backend_info(gateway, 1, &slow_info), 0);
    CHECK_EQ(slow_info.outstanding, 1);
    /* The new configuration: plc as it was, slow-plc gone, unit 9 now on the spare device. */
    struct mb_gateway_backend backends[2];
    backend_at(&backends[0], "plc", device.port, 300);
    backend_at(&backends[1], "spare", spare_device.port, 1000);
    struct mb_gateway_route routes[] = {
        {.front_unit = 1, .device_unit = 1, .backend = 0},
        {.front_unit = 5, .device_unit = 1, .backend = 0},
        {.front_unit = 9, .device_unit = 1, .backend = 1},
    };
    struct mb_gateway_config config = {.backends = backends,
                                       .backend_count = 2,
                                       .routes = routes,
                                       .route_count = 3,
                                       .on_complete = on_complete,
                                       .log = on_log};
    /* A bad one first: refused, nothing changes. */
    routes[2].backend = 7;
    CHECK_EQ(mb_gateway_reconfigure(gateway, &config), MB_EINVAL);
    CHECK_EQ(mb_gateway_backend_count(gateway), 2);
    CHECK_EQ(mb_gateway_backend_info(gateway, 1, &slow_info), 0);
    CHECK_STR(slow_info.name, "slow-plc");
    routes[2].backend = 1;
    CHECK_EQ(mb_gateway_reconfigure(gateway, &config), 0);
    CHECK_EQ(mb_gateway_backend_count(gateway), 2);
    struct mb_gateway_backend_info kept, spare;
    CHECK_EQ(mb_gateway_backend_info(gateway, 0, &kept), 0);
    CHECK_EQ(mb_gateway_backend_info(gateway, 1, &spare), 0);
    CHECK_STR(spare.name, "spare");
    /* The unchanged backend kept its connection and its counters. */
    CHECK_EQ(kept.connections_up, 1);
    CHECK_EQ(kept.reconnects, before.reconnects);
    CHECK_EQ(kept.forwarded, before.forwarded);
    struct mb_gateway_stats stats;
    mb_gateway_stats(gateway, &stats);
    CHECK_EQ(stats.reloads, 1);
    resume_gateway();

    /* The request the removed backend held is answered by it; new ones go to the spare. */
    uint64_t start = now_ms();
    CHECK_EQ(mb_async_send(client, 9, &request, 3000, on_timed, &after), 0);
    for (int round = 0; round < 1000 && mb_async_outstanding(client) > 0; round++)
        mb_loop_run_once(loop, 5);
    CHECK_EQ(in_flight.calls, 1);
    CHECK_EQ(in_flight.status, 0);
    CHECK_EQ(after.calls, 1);
    CHECK_EQ(after.status, 0);
    CHECK(after.done_ms - start < SLOW_MS); /* the spare, not the slow device */
    /* Its last request answered, the removed backend is closed. */
    for (int round = 0; round < 200 && __atomic_load_n(&backends_removed, __ATOMIC_SEQ_CST) == 0;
         round++)
        usleep(5000);
    CHECK_EQ(__atomic_load_n(&backends_removed, __ATOMIC_SEQ_CST), 1);
    uint16_t value;
    struct mb_client *blocking = connect_gateway(1000);
    CHECK_EQ(mb_read_holding_registers(blocking, 5, 0, 1, &value), 0);
    CHECK_EQ(mb_read_holding_registers(blocking, UNIT_SILENT, 0, 1, &value),
             MB_EX_GATEWAY_PATH_UNAVAILABLE); /* its route is gone */
    mb_client_close(blocking);
    mb_async_destroy(client);
    mb_loop_destroy(loop);
}

/* ---- the fair share ---- */

/* A blocking TCP connection from `source` (a loopback address of its own: another identity) to
 * 127.0.0.1:port, with a receive timeout. */
static int raw_connect(const char *source, uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in from = {.sin_family = AF_INET}, to = {.sin_family = AF_INET};
    inet_pton(AF_INET, source, &from.sin_addr);
    inet_pton(AF_INET, "127.0.0.1", &to.sin_addr);
    to.sin_port = htons(port);
    struct timeval timeout = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    if (bind(fd, (struct sockaddr *)&from, sizeof from) != 0 ||
        connect(fd, (struct sockaddr *)&to, sizeof to) != 0) {
        close(fd);
        return -1;
    }
    return fd;
}

/* Sends FC 3 reads of register 0 with transaction ids first..first+count-1. */
static int raw_send_reads(int fd, uint16_t first, int count, uint8_t unit) {
    uint8_t frames[64 * 12];
    for (int i = 0; i < count && i < 64; i++) {
        uint16_t id = (uint16_t)(first + i);
        const uint8_t frame[12] = {id >> 8, id & 0xFF, 0, 0, 0, 6, unit, 3, 0, 0, 0, 1};
        memcpy(frames + 12 * i, frame, 12);
    }
    return write(fd, frames, (size_t)(12 * count)) == 12 * count ? 0 : -1;
}

/* Reads one answer frame: its transaction id, and 0 for a normal answer or the exception
 * code. Returns 0, or -1 when nothing came in time. */
static int raw_answer(int fd, uint16_t *transaction, int *exception) {
    uint8_t frame[260];
    size_t have = 0, want = 7;
    while (have < want) {
        ssize_t count = read(fd, frame + have, want - have);
        if (count <= 0)
            return -1;
        have += (size_t)count;
        if (have == 7)
            want = 6 + (size_t)(frame[4] << 8 | frame[5]);
        if (want > sizeof frame || want < 8)
            return -1;
    }
    *transaction = (uint16_t)(frame[0] << 8 | frame[1]);
    *exception = (frame[7] & 0x80) ? frame[8] : 0;
    return 0;
}

/* Writes to the client connections and to the device connection "plc" so far. */
static void write_counts(uint64_t *front, uint64_t *device_side) {
    struct mb_server_stats stats;
    mb_server_get_stats(gateway_node.server, &stats);
    *front = stats.writes;
    struct mb_gateway_backend_info info;
    CHECK_EQ(mb_gateway_backend_info(gateway, 0, &info), 0);
    CHECK(strcmp(info.name, "plc") == 0);
    *device_side = info.writes;
}

TEST(sixteen_pipelined_reads_leave_in_one_write_each_way) {
    CHECK_EQ(wait_until_served(), 0);
    int fd = raw_connect("127.0.0.1", gateway_node.port);
    CHECK(fd >= 0);
    uint64_t front_before, device_before, front_after, device_after;
    write_counts(&front_before, &device_before);
    CHECK_EQ(raw_send_reads(fd, 700, 16, 1), 0); /* one segment of 16 frames */
    int answered = 0;
    uint16_t transaction;
    int exception;
    while (answered < 16 && raw_answer(fd, &transaction, &exception) == 0)
        answered += transaction >= 700 && transaction < 716 && exception == 0;
    CHECK_EQ(answered, 16);
    /* The counters are the gateway thread's: the answers can arrive before it has counted the
     * write that sent them. */
    for (int i = 0; i < 100; i++) {
        write_counts(&front_after, &device_after);
        if (front_after > front_before)
            break;
        usleep(10000);
    }
    usleep(20000);
    write_counts(&front_after, &device_after);
    /* One each way; two if the kernel split a batch. Before coalescing: 16 to the client. */
    CHECK(device_after - device_before >= 1 && device_after - device_before <= 2);
    CHECK(front_after - front_before >= 1 && front_after - front_before <= 2);
    close(fd);
}

/*
 * Finding 3 of the review: one client with many connections and many requests in flight took
 * every slot of a slow device's backend, and everybody else got 0A or timed out. Now it gets
 * 06 past its share, and another identity waits behind at most one of its requests.
 */
TEST(a_greedy_identity_gets_06_past_its_share_while_another_gets_every_answer) {
    enum { GREEDY_CONNECTIONS = 4, GREEDY_EACH = 20, QUIET = 8 };
    paced_count = 0;
    start_device(&paced_device, paced_handler, 0);
    struct node fair = {0};
    struct mb_gateway *fair_gateway;
    CHECK_EQ(mb_loop_create(&fair.loop), 0);
    struct mb_server_config server_config = {.handler = mb_gateway_handle};
    CHECK_EQ(mb_server_create(fair.loop, &server_config, &fair.server), 0);
    CHECK_EQ(mb_server_listen(fair.server, "127.0.0.1:0", 64), 0);
    fair.port = port_of(fair.server);
    struct mb_gateway_backend backend;
    backend_at(&backend, "serial-like", paced_device.port, 3000);
    backend.share = 0; /* the default: a quarter of 1 x (1 + 39) */
    backend.max_in_flight = 1;
    backend.max_queued = 39;
    const struct mb_gateway_route route = {.front_unit = 1, .device_unit = 1, .backend = 0};
    struct mb_gateway_config config = {
        .backends = &backend, .backend_count = 1, .routes = &route, .route_count = 1};
    CHECK_EQ(mb_gateway_create(fair.loop, fair.server, &config, &fair_gateway), 0);
    mb_server_set_handler(fair.server, mb_gateway_handle, fair_gateway);
    CHECK_EQ(pthread_create(&fair.thread, NULL, run, &fair), 0);

    /* The quiet client's first answer proves the device is up before the flood. */
    int quiet = raw_connect("127.0.0.2", fair.port);
    CHECK(quiet >= 0);
    uint16_t transaction;
    int exception = -1;
    CHECK_EQ(raw_send_reads(quiet, 1000, 1, 1), 0);
    CHECK_EQ(raw_answer(quiet, &transaction, &exception), 0);
    CHECK_EQ(exception, 0);

    int greedy[GREEDY_CONNECTIONS];
    for (int c = 0; c < GREEDY_CONNECTIONS; c++) {
        greedy[c] = raw_connect("127.0.0.1", fair.port);
        CHECK(greedy[c] >= 0);
        CHECK_EQ(raw_send_reads(greedy[c], (uint16_t)(c * 100), GREEDY_EACH, 1), 0);
    }
    /* While the greedy requests are queued, the quiet client asks, one request at a time. */
    usleep(20000);
    int quiet_answered = 0;
    uint64_t slowest = 0;
    for (int i = 0; i < QUIET; i++) {
        uint64_t start = now_ms();
        CHECK_EQ(raw_send_reads(quiet, (uint16_t)(2000 + i), 1, 1), 0);
        if (raw_answer(quiet, &transaction, &exception) == 0 && exception == 0 &&
            transaction == 2000 + i)
            quiet_answered++;
        if (now_ms() - start > slowest)
            slowest = now_ms() - start;
    }
    CHECK_EQ(quiet_answered, QUIET);
    /* Behind at most the greedy request in flight and the one whose turn it is (10 ms each);
     * the bound leaves room for a busy machine, and is far below the 40 queued ahead of it
     * in arrival order. */
    CHECK(slowest < 200);

    int answers = 0, busy = 0, normal = 0, other = 0;
    for (int c = 0; c < GREEDY_CONNECTIONS; c++) {
        int seen[GREEDY_EACH] = {0};
        for (int i = 0; i < GREEDY_EACH; i++) {
            if (raw_answer(greedy[c], &transaction, &exception) != 0)
                break;
            answers++;
            int index = transaction - c * 100;
            if (index < 0 || index >= GREEDY_EACH || seen[index]++)
                other++;
            if (exception == MB_EX_SERVER_DEVICE_BUSY)
                busy++;
            else if (exception == 0)
                normal++;
            else
                other++;
        }
        close(greedy[c]);
    }
    /* Every greedy request answered once: its share (10) by the device, the rest 06 at once. */
    CHECK_EQ(answers, GREEDY_CONNECTIONS * GREEDY_EACH);
    CHECK_EQ(other, 0);
    CHECK(busy >= GREEDY_CONNECTIONS * GREEDY_EACH - 10 - 10);
    CHECK(normal >= 10);
    close(quiet);

    mb_loop_stop(fair.loop);
    pthread_join(fair.thread, NULL);
    struct mb_gateway_backend_info info;
    CHECK_EQ(mb_gateway_backend_info(fair_gateway, 0, &info), 0);
    CHECK_EQ(info.share, 10);
    CHECK_EQ(info.over_share, (uint64_t)busy);
    mb_gateway_destroy(fair_gateway);
    mb_server_destroy(fair.server);
    mb_loop_destroy(fair.loop);
    stop_node(&paced_device);
}

/* Finding 9: a device that wraps addresses around would write register 0. */
TEST(addresses_past_65535_get_02_from_the_gateway_and_never_reach_the_device) {
    struct mb_client *client = connect_gateway(1000);
    struct mb_gateway_stats before, after;
    uint16_t values[2];
    mb_gateway_stats(gateway, &before);
    /* Sent as raw PDUs: the client library would refuse to encode them. */
    const uint8_t read_past[] = {0x03, 0xFF, 0xFF, 0x00, 0x02};
    const uint8_t write_past[] = {0x10, 0xFF, 0xFF, 0x00, 0x02, 0x04, 0xDE, 0xAD, 0xBE, 0xEF};
    CHECK_EQ(mb_client_call(client, 1, read_past, sizeof read_past, NULL),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(mb_client_call(client, 1, write_past, sizeof write_past, NULL),
             MB_EX_ILLEGAL_DATA_ADDRESS);
    /* The last register itself is fine. */
    CHECK_EQ(mb_read_holding_registers(client, 1, 65535, 1, values), 0);
    mb_client_close(client);
    char backend[32];
    struct mb_gateway_completion done = completion(backend, sizeof backend);
    CHECK_EQ(done.outcome, MB_GATEWAY_ANSWERED);
    mb_gateway_stats(gateway, &after);
    CHECK_EQ(after.rejected - before.rejected, 2);
    CHECK_EQ(after.forwarded - before.forwarded, 1);
    uint16_t zero[2] = {1, 1};
    CHECK_EQ(mb_model_get(model, 1, MB_TABLE_HOLDING_REGISTERS, 0, 2, zero), 0);
    CHECK(zero[0] != 0xDEAD && zero[1] != 0xBEEF);
}

int main(void) {
    struct mb_model_config config;
    mb_model_default_config(&config);
    char error[256];
    if (mb_model_create(&config, &model, error, sizeof error) != 0)
        return 1;
    start_device(&device, device_handler, 0);
    start_device(&slow_device, slow_handler, 0);
    start_device(&spare_device, device_handler, 0);
    start_gateway();
    RUN(a_read_through_the_gateway_returns_the_device_values);
    RUN(a_unit_without_a_route_gets_0a_and_a_silent_device_0b);
    RUN(many_clients_share_the_device_single_connection_without_cross_talk);
    RUN(a_slow_device_does_not_delay_requests_to_another);
    RUN(sixteen_pipelined_reads_leave_in_one_write_each_way);
    RUN(a_greedy_identity_gets_06_past_its_share_while_another_gets_every_answer);
    RUN(addresses_past_65535_get_02_from_the_gateway_and_never_reach_the_device);
    RUN(a_dead_device_gives_0a_or_0b_and_service_resumes_when_it_returns);
    RUN(a_reconfiguration_keeps_unchanged_backends_and_lets_removed_ones_finish);
    /* The gateway's loop must not run while the gateway goes away. */
    mb_loop_stop(gateway_node.loop);
    pthread_join(gateway_node.thread, NULL);
    mb_gateway_destroy(gateway);
    mb_server_destroy(gateway_node.server);
    mb_loop_destroy(gateway_node.loop);
    stop_node(&device);
    stop_node(&slow_device);
    stop_node(&spare_device);
    mb_model_destroy(model);
    return harness_result();
}
