/* SPDX-License-Identifier: MIT */
/*
 * The server runtime over real loopback sockets: the server's loop runs in a thread with a test
 * handler; the tests are blocking clients that behave well and badly.
 *
 * The handler answers by unit id:
 *   0x01   FC 3: register i of the range holds address + i; FC 6: echo
 *   0xCC   sends nothing (like FC 8 listen-only)
 *   0xDD   defers; answered 50 ms later by a timer, in reverse order of arrival
 *   0xEE   fails (the server must answer exception 04)
 *   0xDE   defers and keeps the token in fx.parked, never answering by itself
 *   0xDF   answers the parked request from inside the handler, then answers its own
 *   0xDB   answers its own token from inside the handler, then returns MB_SERVER_DEFER
 *   0xDA   shuts the server down from inside the handler, then answers
 */
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "mbsec/mbap.h"
#include "mbsec/server.h"

struct fixture {
    struct mb_loop *loop;
    struct mb_server *server;
    pthread_t thread;
    uint16_t port;
    uint64_t deferred[64];
    int deferred_count;
    uint8_t deferred_pdu[64][8];
    struct mb_timer deferred_timer;
    int replies_to_closed; /* deferred answers that found their connection gone */
    uint64_t parked;       /* 0xDE's token */
    int parked_set;
    int second_reply; /* what replying twice to one token gave */
    int log_closed;
    int log_refused;
    char last_reason[128];
    pthread_mutex_t lock;
};

static struct fixture fx;

static void answer_deferred(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    (void)timer;
    /* Replying lets the server read held-back requests, which may defer again: work on a
     * copy so that those land in a fresh list. */
    uint64_t tokens[64];
    uint8_t pdus[64][8];
    int count = fx.deferred_count;
    memcpy(tokens, fx.deferred, sizeof tokens);
    memcpy(pdus, fx.deferred_pdu, sizeof pdus);
    fx.deferred_count = 0;
    for (int i = count - 1; i >= 0; i--) {
        int rc = mb_server_reply(fx.server, tokens[i], pdus[i], 5);
        if (rc == MB_ECLOSED)
            fx.replies_to_closed++;
        else
            CHECK_EQ(rc, 0);
    }
}

static int handler(void *data, const struct mb_server_request *call, uint8_t *response) {
    (void)data;
    const struct mb_request *request = call->request;
    switch (call->unit_id) {
    case 0xCC:
        return 0;
    case 0xEE:
        return MB_EIO;
    case 0xDE:
        fx.parked = call->token;
        fx.parked_set = 1;
        return MB_SERVER_DEFER;
    case 0xDF: {
        static const uint8_t parked_answer[] = {6, 0, 9, 0, 9};
        if (fx.parked_set) {
            CHECK_EQ(mb_server_reply(fx.server, fx.parked, parked_answer, 5), 0);
            fx.second_reply = mb_server_reply(fx.server, fx.parked, parked_answer, 5);
            fx.parked_set = 0;
        }
        memcpy(response, call->pdu, 5);
        return 5;
    }
    case 0xDB:
        CHECK_EQ(mb_server_reply(fx.server, call->token, call->pdu, 5), 0);
        return MB_SERVER_DEFER;
    case 0xDA:
        mb_server_shutdown(fx.server, 1000);
        memcpy(response, call->pdu, 5);
        return 5;
    case 0xDD:
        if (fx.deferred_count >= 64)
            return MB_ELIMIT;
        /* FC 6 echo, answered later */
        memcpy(fx.deferred_pdu[fx.deferred_count], call->pdu, 5);
        fx.deferred[fx.deferred_count++] = call->token;
        if (!mb_timer_active(&fx.deferred_timer))
            mb_timer_start(fx.loop, &fx.deferred_timer, 50, answer_deferred, NULL);
        return MB_SERVER_DEFER;
    default:
        break;
    }
    if (request->function == MB_FC_READ_HOLDING_REGISTERS) {
        response[0] = 3;
        response[1] = (uint8_t)(2 * request->read.quantity);
        for (uint16_t i = 0; i < request->read.quantity; i++)
            mb_put_u16(response + 2 + 2 * i, (uint16_t)(request->read.address + i));
        return 2 + 2 * request->read.quantity;
    }
    if (request->function == MB_FC_WRITE_SINGLE_REGISTER) {
        memcpy(response, call->pdu, 5);
        return 5;
    }
    return mb_exception_encode(request->function, MB_EX_ILLEGAL_FUNCTION, response, MB_PDU_MAX);
}

static void on_log(void *data, const struct mb_log_event *event) {
    (void)data;
    pthread_mutex_lock(&fx.lock);
    if (strcmp(event->event, "connection_refused") == 0)
        fx.log_refused++;
    if (strcmp(event->event, "connection_closed") == 0 ||
        strcmp(event->event, "connection_refused") == 0) {
        fx.log_closed++;
        snprintf(fx.last_reason, sizeof fx.last_reason, "%s", event->reason ? event->reason : "");
    }
    pthread_mutex_unlock(&fx.lock);
}

static void *run_loop(void *data) {
    (void)data;
    mb_loop_run(fx.loop);
    return NULL;
}

static void start(const struct mb_server_limits *limits, const char *address) {
    memset(&fx, 0, sizeof fx);
    pthread_mutex_init(&fx.lock, NULL);
    struct mb_server_config config = {.handler = handler, .log = on_log};
    if (limits != NULL)
        config.limits = *limits;
    CHECK_EQ(mb_loop_create(&fx.loop), 0);
    CHECK_EQ(mb_server_create(fx.loop, &config, &fx.server), 0);
    int index = mb_server_listen(fx.server, address ? address : "127.0.0.1:0", 64);
    CHECK_EQ(index, 0);
    char bound[64];
    CHECK(mb_server_listener_address(fx.server, 0, bound, sizeof bound) > 0);
    fx.port = (uint16_t)atoi(strrchr(bound, ':') + 1);
    CHECK(fx.port != 0);
    pthread_create(&fx.thread, NULL, run_loop, NULL);
}

static void stop(void) {
    mb_loop_stop(fx.loop);
    pthread_join(fx.thread, NULL);
    mb_server_destroy(fx.server);
    mb_loop_destroy(fx.loop);
}

static int connect_to(uint16_t port) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {
        .sin_family = AF_INET, .sin_port = htons(port), .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    if (connect(fd, (struct sockaddr *)&address, sizeof address) != 0) {
        close(fd);
        return -1;
    }
    struct timeval timeout = {.tv_sec = 5};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &timeout, sizeof timeout);
    return fd;
}

static void send_all(int fd, const uint8_t *data, size_t length) {
    while (length > 0) {
        ssize_t written = send(fd, data, length, MSG_NOSIGNAL);
        if (written <= 0)
            return;
        data += written;
        length -= (size_t)written;
    }
}

/* Reads exactly `length` bytes; returns what it got (less at EOF or timeout). */
static size_t receive_exactly(int fd, uint8_t *buffer, size_t length) {
    size_t got = 0;
    while (got < length) {
        ssize_t count = recv(fd, buffer + got, length - got, 0);
        if (count <= 0)
            break;
        got += (size_t)count;
    }
    return got;
}

/* 1 when the server closed the connection (EOF) within `ms`. */
static int closed_within(int fd, int ms) {
    struct pollfd poller = {.fd = fd, .events = POLLIN};
    uint8_t byte;
    for (int waited = 0; waited < ms; waited += 10) {
        if (poll(&poller, 1, 10) > 0) {
            ssize_t count = recv(fd, &byte, 1, MSG_DONTWAIT);
            if (count == 0 || (count < 0 && errno == ECONNRESET))
                return 1;
        }
    }
    return 0;
}

static void read_request(uint8_t frame[12], uint16_t transaction, uint8_t unit, uint16_t address,
                         uint16_t quantity) {
    const uint8_t pdu[] = {3, (uint8_t)(address >> 8), (uint8_t)address, (uint8_t)(quantity >> 8),
                           (uint8_t)quantity};
    mb_mbap_encode(transaction, unit, sizeof pdu, frame, 7);
    memcpy(frame + 7, pdu, sizeof pdu);
}

TEST(answers_a_read_with_the_handlers_values) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t request[12], response[32];
    read_request(request, 0x1501, 1, 100, 3);
    send_all(fd, request, sizeof request);
    CHECK_EQ(receive_exactly(fd, response, 15), 15);
    CHECK_BYTES(response, 15, 0x15, 0x01, 0x00, 0x00, 0x00, 0x09, 0x01, 0x03, 0x06, 0x00, 0x64,
                0x00, 0x65, 0x00, 0x66);
    close(fd);
    stop();
}

TEST(pipelined_requests_in_one_write_are_all_answered_in_order) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    static uint8_t requests[100 * 12];
    for (int i = 0; i < 100; i++)
        read_request(requests + 12 * i, (uint16_t)(1000 + i), 1, (uint16_t)i, 1);
    send_all(fd, requests, sizeof requests);
    int in_order = 0;
    for (int i = 0; i < 100; i++) {
        uint8_t response[11];
        if (receive_exactly(fd, response, 11) != 11)
            break;
        if (mb_get_u16(response) == 1000 + i && mb_get_u16(response + 9) == i)
            in_order++;
    }
    CHECK_EQ(in_order, 100);
    close(fd);
    stop();
}

TEST(a_frame_split_into_single_bytes_is_answered) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    int on = 1;
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    uint8_t request[12], response[11];
    read_request(request, 7, 1, 5, 1);
    for (int i = 0; i < 12; i++) {
        send_all(fd, request + i, 1);
        usleep(2000);
    }
    CHECK_EQ(receive_exactly(fd, response, 11), 11);
    CHECK_EQ(mb_get_u16(response + 9), 5);
    close(fd);
    stop();
}

TEST(undecodable_pdus_get_01_or_03_and_the_connection_stays) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t response[16];
    /* FC 3 with quantity 0 -> 03 */
    send_all(fd, BYTES(0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 0));
    CHECK_EQ(receive_exactly(fd, response, 9), 9);
    CHECK_BYTES(response, 9, 0, 1, 0, 0, 0, 3, 1, 0x83, 0x03);
    /* reserved FC 9 -> 01 */
    send_all(fd, BYTES(0, 2, 0, 0, 0, 2, 1, 9));
    CHECK_EQ(receive_exactly(fd, response, 9), 9);
    CHECK_BYTES(response, 9, 0, 2, 0, 0, 0, 3, 1, 0x89, 0x01);
    /* function code 0 -> 0x80 01 */
    send_all(fd, BYTES(0, 3, 0, 0, 0, 2, 1, 0));
    CHECK_EQ(receive_exactly(fd, response, 9), 9);
    CHECK_BYTES(response, 9, 0, 3, 0, 0, 0, 3, 1, 0x80, 0x01);
    /* still served */
    uint8_t request[12];
    read_request(request, 4, 1, 9, 1);
    send_all(fd, request, 12);
    CHECK_EQ(receive_exactly(fd, response, 11), 11);
    close(fd);
    stop();
}

TEST(a_protocol_id_other_than_0_is_dropped_silently_and_the_next_frame_answered) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t response[11];
    send_all(fd, BYTES(0, 1, 0, 1, 0, 6, 1, 3, 0, 0, 0, 1, 0, 2, 0, 0, 0, 6, 1, 3, 0, 7, 0, 1));
    CHECK_EQ(receive_exactly(fd, response, 11), 11);
    CHECK_EQ(mb_get_u16(response), 2);
    CHECK_EQ(mb_get_u16(response + 9), 7);
    struct mb_server_stats stats;
    mb_server_get_stats(fx.server, &stats);
    CHECK_EQ(stats.discarded, 1);
    close(fd);
    stop();
}

TEST(an_mbap_length_outside_2_to_254_closes_the_connection) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    send_all(fd, BYTES(0, 1, 0, 0, 0xFF, 0xFF, 1, 3));
    CHECK(closed_within(fd, 2000));
    close(fd);
    fd = connect_to(fx.port);
    send_all(fd, BYTES(0, 1, 0, 0, 0, 1, 1));
    CHECK(closed_within(fd, 2000));
    close(fd);
    struct mb_server_stats stats;
    mb_server_get_stats(fx.server, &stats);
    CHECK_EQ(stats.protocol_errors, 2);
    stop();
}

TEST(a_handler_failure_is_answered_with_04) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t request[12], response[9];
    read_request(request, 9, 0xEE, 0, 1);
    send_all(fd, request, 12);
    CHECK_EQ(receive_exactly(fd, response, 9), 9);
    CHECK_BYTES(response, 9, 0, 9, 0, 0, 0, 3, 0xEE, 0x83, 0x04);
    close(fd);
    stop();
}

TEST(a_handler_that_returns_0_sends_nothing) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t request[12], response[11];
    read_request(request, 1, 0xCC, 0, 1);
    send_all(fd, request, 12);
    read_request(request, 2, 1, 3, 1);
    send_all(fd, request, 12);
    CHECK_EQ(receive_exactly(fd, response, 11), 11);
    CHECK_EQ(mb_get_u16(response), 2); /* the first got no answer */
    close(fd);
    stop();
}

TEST(deferred_replies_complete_out_of_order_matched_by_transaction_id) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t requests[5 * 12];
    for (int i = 0; i < 5; i++) {
        const uint8_t pdu[] = {6, 0, (uint8_t)i, 0, (uint8_t)(10 * i)};
        mb_mbap_encode((uint16_t)(100 + i), 0xDD, 5, requests + 12 * i, 7);
        memcpy(requests + 12 * i + 7, pdu, 5);
    }
    send_all(fd, requests, sizeof requests);
    int seen[5] = {0}, wrong = 0;
    for (int i = 0; i < 5; i++) {
        uint8_t response[12];
        if (receive_exactly(fd, response, 12) != 12)
            break;
        int which = mb_get_u16(response) - 100;
        if (which < 0 || which > 4 || response[9] != which || response[11] != 10 * which)
            wrong++;
        else
            seen[which]++;
        if (i == 0)
            CHECK_EQ(which, 4); /* answered in reverse order */
    }
    CHECK_EQ(wrong, 0);
    for (int i = 0; i < 5; i++)
        CHECK_EQ(seen[i], 1);
    close(fd);
    stop();
}

TEST(deferred_answers_completed_in_one_round_leave_in_one_write) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t requests[16 * 12];
    for (int i = 0; i < 16; i++) {
        const uint8_t pdu[] = {6, 0, (uint8_t)i, 0, (uint8_t)i};
        mb_mbap_encode((uint16_t)(200 + i), 0xDD, 5, requests + 12 * i, 7);
        memcpy(requests + 12 * i + 7, pdu, 5);
    }
    send_all(fd, requests, sizeof requests); /* one timer answers all 16, one at a time */
    int seen = 0;
    uint8_t response[12];
    while (seen < 16 && receive_exactly(fd, response, 12) == 12)
        seen += mb_get_u16(response) >= 200 && mb_get_u16(response) < 216 &&
                response[9] == mb_get_u16(response) - 200;
    CHECK_EQ(seen, 16);
    /* The counters are the loop thread's: the answers can arrive before it has counted the
     * write that sent them. */
    struct mb_server_stats stats;
    for (int i = 0; i < 100; i++) {
        mb_server_get_stats(fx.server, &stats);
        if (stats.writes >= 1)
            break;
        usleep(10000);
    }
    usleep(20000); /* a second write, if there were one, would be counted by now */
    mb_server_get_stats(fx.server, &stats);
    CHECK_EQ(stats.responses, 16);
    CHECK_EQ(stats.writes, 1); /* not 16: the answers wait for the end of the loop's round */
    close(fd);
    stop();
}

TEST(answers_queued_just_before_the_server_is_destroyed_still_go_out) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t request[12];
    read_request(request, 0x77, 0xDE, 0, 1); /* parked: answered by the test below */
    send_all(fd, request, 12);
    for (int i = 0; i < 200 && !__atomic_load_n(&fx.parked_set, __ATOMIC_SEQ_CST); i++)
        usleep(5000);
    CHECK(fx.parked_set);
    mb_loop_stop(fx.loop);
    pthread_join(fx.thread, NULL);
    /* As a gateway being destroyed answers what it holds, right before the server goes. */
    static const uint8_t answer[] = {0x83, 0x0B};
    CHECK_EQ(mb_server_reply(fx.server, fx.parked, answer, sizeof answer), 0);
    mb_server_destroy(fx.server);
    mb_loop_destroy(fx.loop);
    uint8_t response[9];
    CHECK_EQ(receive_exactly(fd, response, 9), 9);
    CHECK_BYTES(response, 9, 0x00, 0x77, 0x00, 0x00, 0x00, 0x03, 0xDE, 0x83, 0x0B);
    close(fd);
}

TEST(a_deferred_request_answered_with_nothing_sends_nothing_and_frees_its_place) {
    /* As the gateway does for a broadcast to a serial bus: the request is released, nothing is
     * written, and the connection goes on (found by UBSan: the flush saw no output buffer). */
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t request[12];
    read_request(request, 0x77, 0xDE, 0, 1); /* parked */
    send_all(fd, request, 12);
    for (int i = 0; i < 200 && !__atomic_load_n(&fx.parked_set, __ATOMIC_SEQ_CST); i++)
        usleep(5000);
    CHECK(fx.parked_set);
    mb_loop_stop(fx.loop);
    pthread_join(fx.thread, NULL);
    CHECK_EQ(mb_server_reply(fx.server, fx.parked, NULL, 0), 0);
    fx.parked_set = 0;
    pthread_create(&fx.thread, NULL, run_loop, NULL);
    read_request(request, 0x78, 0xDF, 0, 1); /* echoed */
    send_all(fd, request, 12);
    uint8_t response[12];
    CHECK_EQ(receive_exactly(fd, response, 12), 12);
    CHECK_BYTES(response, 7, 0x00, 0x78, 0x00, 0x00, 0x00, 0x06, 0xDF);
    close(fd);
    stop();
}

TEST(a_client_that_keeps_sending_at_its_in_flight_cap_has_one_chunk_read_then_waits) {
    struct mb_server_limits limits = {.max_in_flight = 1};
    start(&limits, NULL);
    int fd = connect_to(fx.port);
    int small = 4096;
    setsockopt(fd, SOL_SOCKET, SO_SNDBUF, &small, sizeof small);
    uint8_t request[12];
    read_request(request, 1, 0xDE, 0, 1); /* deferred for good: the cap is reached */
    send_all(fd, request, 12);
    /* Reading stays armed at the cap (no epoll_ctl per round); what comes anyway must not be
     * read without bound: the sender is pushed back once the kernel's buffers are full. */
    static uint8_t more[1000 * 12];
    for (int i = 0; i < 1000; i++)
        read_request(more + 12 * i, (uint16_t)(2 + i), 1, 0, 1);
    size_t sent = 0;
    int blocked = 0;
    for (int round = 0; round < 4000 && !blocked; round++) { /* at most 48 MB */
        ssize_t count = send(fd, more, sizeof more, MSG_NOSIGNAL | MSG_DONTWAIT);
        if (count < 0 && errno == EAGAIN) {
            usleep(20000); /* give the server every chance to read more */
            count = send(fd, more, sizeof more, MSG_NOSIGNAL | MSG_DONTWAIT);
            blocked = count < 0 && errno == EAGAIN;
        }
        if (count > 0)
            sent += (size_t)count;
    }
    CHECK(blocked);
    CHECK(sent < 16u * 1024 * 1024);
    struct mb_server_stats stats;
    mb_server_get_stats(fx.server, &stats);
    CHECK(stats.requests <= 1 + 4096 / 12); /* the parked request and at most one chunk */
    CHECK_EQ(stats.responses, 0);
    close(fd);
    stop();
}

TEST(in_flight_limit_holds_further_requests_until_answers_go_out) {
    struct mb_server_limits limits = {.max_in_flight = 2};
    start(&limits, NULL);
    int fd = connect_to(fx.port);
    uint8_t requests[6 * 12];
    for (int i = 0; i < 6; i++) {
        const uint8_t pdu[] = {6, 0, (uint8_t)i, 0, (uint8_t)i};
        mb_mbap_encode((uint16_t)i, 0xDD, 5, requests + 12 * i, 7);
        memcpy(requests + 12 * i + 7, pdu, 5);
    }
    send_all(fd, requests, sizeof requests);
    int answered = 0;
    uint8_t response[12];
    while (answered < 6 && receive_exactly(fd, response, 12) == 12)
        answered++;
    CHECK_EQ(answered, 6);
    close(fd);
    stop();
}

TEST(a_half_frame_then_silence_is_cut_at_the_idle_timeout_while_others_are_served) {
    struct mb_server_limits limits = {.idle_timeout_ms = 300};
    start(&limits, NULL);
    int stalled = connect_to(fx.port);
    send_all(stalled, BYTES(0, 1, 0, 0, 0, 6, 1, 3));
    int busy = connect_to(fx.port);
    int served = 0;
    for (int i = 0; i < 20; i++) { /* 20 x 25 ms: past the timeout */
        uint8_t request[12], response[11];
        read_request(request, (uint16_t)i, 1, 1, 1);
        send_all(busy, request, 12);
        if (receive_exactly(busy, response, 11) == 11)
            served++;
        usleep(25000);
    }
    CHECK_EQ(served, 20);
    CHECK(closed_within(stalled, 2000));
    struct mb_server_stats stats;
    mb_server_get_stats(fx.server, &stats);
    CHECK_EQ(stats.timeouts, 1);
    CHECK_EQ(stats.connections, 1); /* the busy one is still open */
    close(stalled);
    close(busy);
    stop();
}

TEST(connections_over_the_limit_are_refused_while_existing_ones_are_served) {
    struct mb_server_limits limits = {.max_connections = 3, .max_per_source = 100};
    start(&limits, NULL);
    int clients[3];
    for (int i = 0; i < 3; i++)
        clients[i] = connect_to(fx.port);
    int refused = 0;
    for (int i = 0; i < 10; i++) {
        int extra = connect_to(fx.port);
        if (extra >= 0 && closed_within(extra, 2000))
            refused++;
        close(extra);
    }
    CHECK_EQ(refused, 10);
    for (int i = 0; i < 3; i++) {
        uint8_t request[12], response[11];
        read_request(request, (uint16_t)i, 1, 2, 1);
        send_all(clients[i], request, 12);
        CHECK_EQ(receive_exactly(clients[i], response, 11), 11);
        close(clients[i]);
    }
    struct mb_server_stats stats;
    mb_server_get_stats(fx.server, &stats);
    CHECK_EQ(stats.refused, 10);
    stop();
}

TEST(a_flood_of_refused_connections_is_counted_but_not_logged_line_by_line) {
    struct mb_server_limits limits = {.max_connections = 1};
    start(&limits, NULL);
    int kept = connect_to(fx.port);
    for (int i = 0; i < 40; i++) {
        int extra = connect_to(fx.port);
        closed_within(extra, 1000);
        close(extra);
    }
    struct mb_server_stats stats;
    mb_server_get_stats(fx.server, &stats);
    CHECK_EQ(stats.refused, 40);
    pthread_mutex_lock(&fx.lock);
    CHECK(fx.log_refused >= 10);
    CHECK(fx.log_refused <= 30); /* at most 10 a second, and this takes well under 3 s */
    pthread_mutex_unlock(&fx.lock);
    close(kept);
    stop();
}

TEST(connections_over_the_per_source_limit_are_refused) {
    struct mb_server_limits limits = {.max_per_source = 2};
    start(&limits, NULL);
    int a = connect_to(fx.port), b = connect_to(fx.port), c = connect_to(fx.port);
    CHECK(closed_within(c, 2000));
    pthread_mutex_lock(&fx.lock);
    CHECK(strstr(fx.last_reason, "max_per_source") != NULL);
    pthread_mutex_unlock(&fx.lock);
    uint8_t request[12], response[11];
    read_request(request, 1, 1, 2, 1);
    send_all(b, request, 12);
    CHECK_EQ(receive_exactly(b, response, 11), 11);
    close(a);
    close(b);
    close(c);
    stop();
}

TEST(a_client_that_never_reads_is_paused_not_buffered_without_bound) {
    start(NULL, NULL);
    int greedy = connect_to(fx.port);
    int small = 4096;
    setsockopt(greedy, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    /* 20000 requests of 125 registers: 5 MB of answers it never reads. */
    static uint8_t requests[2000 * 12];
    for (int i = 0; i < 2000; i++)
        read_request(requests + 12 * i, (uint16_t)i, 1, 0, 125);
    struct timeval timeout = {.tv_sec = 0, .tv_usec = 200000};
    setsockopt(greedy, SOL_SOCKET, SO_SNDTIMEO, &timeout, sizeof timeout);
    for (int round = 0; round < 10; round++)
        send(greedy, requests, sizeof requests, MSG_NOSIGNAL | MSG_DONTWAIT);
    /* Another client is served all the while. */
    int polite = connect_to(fx.port);
    uint8_t request[12], response[11];
    read_request(request, 1, 1, 2, 1);
    send_all(polite, request, 12);
    CHECK_EQ(receive_exactly(polite, response, 11), 11);
    close(polite);
    close(greedy);
    stop();
}

TEST(graceful_shutdown_finishes_deferred_requests_then_closes) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t request[12];
    const uint8_t pdu[] = {6, 0, 1, 0, 42};
    mb_mbap_encode(77, 0xDD, 5, request, 7);
    memcpy(request + 7, pdu, 5);
    send_all(fd, request, 12);
    usleep(20000); /* the request is in flight (answered at 50 ms) */
    mb_loop_stop(fx.loop);
    pthread_join(fx.thread, NULL);
    mb_server_shutdown(fx.server, 2000);
    for (int i = 0; i < 200 && !mb_server_idle(fx.server); i++)
        mb_loop_run_once(fx.loop, 10);
    CHECK(mb_server_idle(fx.server));
    uint8_t response[12];
    CHECK_EQ(receive_exactly(fd, response, 12), 12);
    CHECK_EQ(mb_get_u16(response), 77);
    CHECK_EQ(response[11], 42);
    CHECK(closed_within(fd, 1000));
    /* New connections are no longer accepted. */
    CHECK_EQ(connect_to(fx.port), -1);
    close(fd);
    mb_server_destroy(fx.server);
    mb_loop_destroy(fx.loop);
}

TEST(a_reply_to_a_closed_connection_is_dropped_with_eclosed) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t request[12];
    const uint8_t pdu[] = {6, 0, 1, 0, 1};
    mb_mbap_encode(1, 0xDD, 5, request, 7);
    memcpy(request + 7, pdu, 5);
    send_all(fd, request, 12);
    usleep(10000);
    /* A reset, not a FIN: after a FIN the answer would still be owed (a half-close). */
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    close(fd);
    for (int i = 0; i < 100 && fx.replies_to_closed == 0; i++)
        usleep(10000);
    CHECK_EQ(fx.replies_to_closed, 1);
    stop();
}

TEST(after_the_peer_half_closes_every_answer_is_still_sent) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    static uint8_t requests[2000 * 12];
    for (int i = 0; i < 2000; i++)
        read_request(requests + 12 * i, (uint16_t)i, 1, 0, 125);
    send_all(fd, requests, sizeof requests);
    shutdown(fd, SHUT_WR);
    int answers = 0;
    static uint8_t response[259];
    while (answers < 2000 && receive_exactly(fd, response, 259) == 259)
        answers++;
    CHECK_EQ(answers, 2000);
    CHECK(closed_within(fd, 2000));
    close(fd);
    stop();
}

TEST(a_good_frame_before_a_broken_length_is_answered_before_the_close) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    send_all(fd, BYTES(0, 1, 0, 0, 0, 6, 1, 6, 0, 10, 0, 0x55, 0, 2, 0, 0, 0xFF, 0xFF, 1));
    uint8_t response[12];
    CHECK_EQ(receive_exactly(fd, response, 12), 12);
    CHECK_BYTES(response, 12, 0, 1, 0, 0, 0, 6, 1, 6, 0, 10, 0, 0x55);
    CHECK(closed_within(fd, 2000));
    close(fd);
    stop();
}

static double cpu_seconds(void) {
    struct rusage usage;
    getrusage(RUSAGE_SELF, &usage);
    return (double)usage.ru_utime.tv_sec + (double)usage.ru_stime.tv_sec +
           ((double)usage.ru_utime.tv_usec + (double)usage.ru_stime.tv_usec) / 1e6;
}

TEST(a_reset_while_reading_is_paused_closes_the_connection_instead_of_spinning) {
    struct mb_server_limits limits = {.max_in_flight = 1};
    start(&limits, NULL);
    int fd = connect_to(fx.port);
    uint8_t request[12];
    read_request(request, 1, 0xDE, 0, 1); /* deferred for good: reading pauses */
    send_all(fd, request, 12);
    usleep(50000);
    struct linger reset = {.l_onoff = 1, .l_linger = 0};
    setsockopt(fd, SOL_SOCKET, SO_LINGER, &reset, sizeof reset);
    double before = cpu_seconds();
    close(fd);
    struct mb_server_stats stats;
    for (int i = 0; i < 100; i++) {
        mb_server_get_stats(fx.server, &stats);
        if (stats.connections == 0)
            break;
        usleep(10000);
    }
    usleep(300000);
    CHECK_EQ(stats.connections, 0);
    CHECK(cpu_seconds() - before < 0.25); /* a spinning loop would burn ~0.3 s here */
    stop();
}

TEST(a_handler_may_answer_another_request_from_inside_and_a_token_works_once) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t requests[24];
    const uint8_t parked[] = {6, 0, 1, 0, 1}, own[] = {6, 0, 2, 0, 2};
    mb_mbap_encode(10, 0xDE, 5, requests, 7);
    memcpy(requests + 7, parked, 5);
    mb_mbap_encode(11, 0xDF, 5, requests + 12, 7);
    memcpy(requests + 19, own, 5);
    send_all(fd, requests, sizeof requests);
    int seen10 = 0, seen11 = 0;
    for (int i = 0; i < 2; i++) {
        uint8_t response[12];
        if (receive_exactly(fd, response, 12) != 12)
            break;
        seen10 += mb_get_u16(response) == 10 && response[9] == 9;
        seen11 += mb_get_u16(response) == 11 && response[9] == 2;
    }
    CHECK_EQ(seen10, 1);
    CHECK_EQ(seen11, 1);
    CHECK_EQ(fx.second_reply, MB_EINVAL);
    close(fd);
    stop();
}

TEST(a_handler_that_answers_its_own_token_at_once_is_answered_exactly_once) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t request[12], response[12];
    const uint8_t pdu[] = {6, 0, 3, 0, 3};
    mb_mbap_encode(21, 0xDB, 5, request, 7);
    memcpy(request + 7, pdu, 5);
    send_all(fd, request, 12);
    read_request(request, 22, 1, 7, 1);
    send_all(fd, request, 12);
    CHECK_EQ(receive_exactly(fd, response, 12), 12);
    CHECK_EQ(mb_get_u16(response), 21);
    uint8_t read_answer[11];
    CHECK_EQ(receive_exactly(fd, read_answer, 11), 11);
    CHECK_EQ(mb_get_u16(read_answer), 22);
    close(fd);
    stop();
}

TEST(a_handler_may_shut_the_server_down_and_its_answer_still_goes_out) {
    start(NULL, NULL);
    int fd = connect_to(fx.port);
    uint8_t request[12], response[12];
    const uint8_t pdu[] = {6, 0, 4, 0, 4};
    mb_mbap_encode(31, 0xDA, 5, request, 7);
    memcpy(request + 7, pdu, 5);
    send_all(fd, request, 12);
    CHECK_EQ(receive_exactly(fd, response, 12), 12);
    CHECK_EQ(mb_get_u16(response), 31);
    CHECK(closed_within(fd, 2000));
    for (int i = 0; i < 100 && !mb_server_idle(fx.server); i++)
        usleep(10000);
    CHECK(mb_server_idle(fx.server));
    close(fd);
    stop();
}

TEST(listens_on_ipv6_loopback) {
    struct mb_loop *loop;
    struct mb_server *server;
    struct mb_server_config config = {.handler = handler};
    CHECK_EQ(mb_loop_create(&loop), 0);
    CHECK_EQ(mb_server_create(loop, &config, &server), 0);
    int index = mb_server_listen(server, "[::1]:0", 8);
    if (index == MB_EADDRESS || index == MB_ESYSTEM) {
        printf("skip: no IPv6 loopback here\n");
    } else {
        CHECK_EQ(index, 0);
        char bound[64];
        CHECK(mb_server_listener_address(server, 0, bound, sizeof bound) > 0);
        CHECK(strncmp(bound, "[::1]:", 6) == 0);
    }
    mb_server_destroy(server);
    mb_loop_destroy(loop);
}

TEST(a_port_in_use_gives_eaddrinuse_and_a_privileged_port_eacces) {
    start(NULL, NULL);
    struct mb_loop *loop;
    struct mb_server *server;
    struct mb_server_config config = {.handler = handler};
    CHECK_EQ(mb_loop_create(&loop), 0);
    CHECK_EQ(mb_server_create(loop, &config, &server), 0);
    char taken[32];
    snprintf(taken, sizeof taken, "127.0.0.1:%u", fx.port);
    /* SO_REUSEPORT lets workers share a port, but only within one user: the same user gets
     * it too, so check a port bound without SO_REUSEPORT instead. */
    int plain = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    CHECK_EQ(bind(plain, (struct sockaddr *)&address, sizeof address), 0);
    CHECK_EQ(listen(plain, 1), 0);
    getsockname(plain, (struct sockaddr *)&address, &length);
    snprintf(taken, sizeof taken, "127.0.0.1:%u", ntohs(address.sin_port));
    CHECK_EQ(mb_server_listen(server, taken, 8), MB_EADDRINUSE);
    close(plain);
    CHECK_EQ(mb_server_listen(server, "no-such-host.invalid:502", 8), MB_EADDRESS);
    CHECK_EQ(mb_server_listen(server, "127.0.0.1:99999", 8), MB_EADDRESS);
    mb_server_destroy(server);
    mb_loop_destroy(loop);

    /* Port 502 as an unprivileged user: a child drops to nobody and tries. */
    pid_t child = fork();
    if (child == 0) {
        if (getuid() == 0 && setuid(65534) != 0)
            _exit(3);
        if (getuid() == 0)
            _exit(4);
        struct mb_loop *child_loop;
        struct mb_server *child_server;
        if (mb_loop_create(&child_loop) != 0 ||
            mb_server_create(child_loop, &config, &child_server) != 0)
            _exit(5);
        _exit(mb_server_listen(child_server, "127.0.0.1:502", 8) == MB_EACCES ? 0 : 6);
    }
    int status = 0;
    waitpid(child, &status, 0);
    CHECK(WIFEXITED(status));
    CHECK_EQ(WEXITSTATUS(status), 0);
    stop();
}

int main(void) {
    RUN(answers_a_read_with_the_handlers_values);
    RUN(pipelined_requests_in_one_write_are_all_answered_in_order);
    RUN(a_frame_split_into_single_bytes_is_answered);
    RUN(undecodable_pdus_get_01_or_03_and_the_connection_stays);
    RUN(a_protocol_id_other_than_0_is_dropped_silently_and_the_next_frame_answered);
    RUN(an_mbap_length_outside_2_to_254_closes_the_connection);
    RUN(a_handler_failure_is_answered_with_04);
    RUN(a_handler_that_returns_0_sends_nothing);
    RUN(deferred_replies_complete_out_of_order_matched_by_transaction_id);
    RUN(deferred_answers_completed_in_one_round_leave_in_one_write);
    RUN(answers_queued_just_before_the_server_is_destroyed_still_go_out);
    RUN(a_deferred_request_answered_with_nothing_sends_nothing_and_frees_its_place);
    RUN(a_client_that_keeps_sending_at_its_in_flight_cap_has_one_chunk_read_then_waits);
    RUN(in_flight_limit_holds_further_requests_until_answers_go_out);
    RUN(a_half_frame_then_silence_is_cut_at_the_idle_timeout_while_others_are_served);
    RUN(connections_over_the_limit_are_refused_while_existing_ones_are_served);
    RUN(a_flood_of_refused_connections_is_counted_but_not_logged_line_by_line);
    RUN(connections_over_the_per_source_limit_are_refused);
    RUN(a_client_that_never_reads_is_paused_not_buffered_without_bound);
    RUN(graceful_shutdown_finishes_deferred_requests_then_closes);
    RUN(a_reply_to_a_closed_connection_is_dropped_with_eclosed);
    RUN(after_the_peer_half_closes_every_answer_is_still_sent);
    RUN(a_good_frame_before_a_broken_length_is_answered_before_the_close);
    RUN(a_reset_while_reading_is_paused_closes_the_connection_instead_of_spinning);
    RUN(a_handler_may_answer_another_request_from_inside_and_a_token_works_once);
    RUN(a_handler_that_answers_its_own_token_at_once_is_answered_exactly_once);
    RUN(a_handler_may_shut_the_server_down_and_its_answer_still_goes_out);
    RUN(listens_on_ipv6_loopback);
    RUN(a_port_in_use_gives_eaddrinuse_and_a_privileged_port_eacces);
    return harness_result();
}
