/* SPDX-License-Identifier: MIT */
/*
 * The client library against mbsec's own server and data model, in one process: the server
 * runs its loop in a thread on 127.0.0.1 (an ephemeral port), the clients run in the test's
 * thread. Every public function code with its values; timeouts, late answers, retries,
 * reconnection; the non-blocking client with many requests in flight.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <pthread.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#include "harness.h"
#include "mbsec/client.h"
#include "mbsec/model.h"
#include "mbsec/server.h"
#include "mbsec/value.h"

/* Unit ids the test handler treats specially; every other unit goes to the model. */
#define UNIT_SILENT 0xDD /* never answered */
#define UNIT_LATE 0xD1   /* answered LATE_MS after the request */
#define LATE_MS 150

struct fixture {
    struct mb_loop *loop;
    struct mb_server *server;
    struct mb_model *model;
    pthread_t thread;
    uint16_t port;
    char target[32];
    struct mb_timer late_timer;
    uint64_t late_token;
    uint8_t late_pdu[MB_PDU_MAX];
    int late_length;
    volatile int late_answers; /* written by the server thread once a late answer is sent */
};

static struct fixture fx;

static void answer_late(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    (void)timer;
    mb_server_reply(fx.server, fx.late_token, fx.late_pdu, (size_t)fx.late_length);
    __atomic_add_fetch(&fx.late_answers, 1, __ATOMIC_SEQ_CST);
}

/* Waits (bounded) until the server has sent `count` late answers in all. On loopback a sent
 * answer is in the client's socket buffer by then. */
static void wait_for_late_answers(int count) {
    for (int i = 0; i < 2000 && __atomic_load_n(&fx.late_answers, __ATOMIC_SEQ_CST) < count; i++)
        usleep(1000);
    CHECK(__atomic_load_n(&fx.late_answers, __ATOMIC_SEQ_CST) >= count);
}

static int handler(void *data, const struct mb_server_request *call, uint8_t *response) {
    switch (call->unit_id) {
    case UNIT_SILENT:
        return MB_SERVER_DEFER;
    case UNIT_LATE:
        fx.late_token = call->token;
        fx.late_length = mb_model_handle(data, call, fx.late_pdu);
        mb_timer_start(fx.loop, &fx.late_timer, LATE_MS, answer_late, NULL);
        return MB_SERVER_DEFER;
    default:
        return mb_model_handle(data, call, response);
    }
}

static void *run_loop(void *data) {
    (void)data;
    mb_loop_run(fx.loop);
    return NULL;
}

static const struct mb_fifo_config fifos[] = {{.address = 1000, .capacity = 8}};

/* Starts a server on `port` (0: any) with the simulator's model plus a FIFO at 1000. */
static void start_server(uint16_t port) {
    CHECK_EQ(mb_loop_create(&fx.loop), 0);
    if (fx.model == NULL) {
        struct mb_model_config config;
        mb_model_default_config(&config);
        struct mb_unit_config unit = config.units[0];
        unit.fifos = fifos;
        unit.fifo_count = 1;
        config.units = &unit;
        config.unit_count = 1;
        char error[256];
        CHECK_EQ(mb_model_create(&config, &fx.model, error, sizeof error), 0);
    }
    struct mb_server_config config = {.handler = handler, .handler_data = fx.model};
    CHECK_EQ(mb_server_create(fx.loop, &config, &fx.server), 0);
    char address[32];
    snprintf(address, sizeof address, "127.0.0.1:%u", port);
    CHECK_EQ(mb_server_listen(fx.server, address, 64), 0);
    char bound[64];
    CHECK(mb_server_listener_address(fx.server, 0, bound, sizeof bound) > 0);
    fx.port = (uint16_t)atoi(strrchr(bound, ':') + 1);
    snprintf(fx.target, sizeof fx.target, "127.0.0.1:%u", fx.port);
    memset(&fx.late_timer, 0, sizeof fx.late_timer);
    CHECK_EQ(pthread_create(&fx.thread, NULL, run_loop, NULL), 0);
}

static void stop_server(void) {
    mb_loop_stop(fx.loop);
    pthread_join(fx.thread, NULL);
    mb_timer_stop(fx.loop, &fx.late_timer);
    mb_server_destroy(fx.server);
    mb_loop_destroy(fx.loop);
    fx.server = NULL;
    fx.loop = NULL;
}

static struct mb_client *connect_client(const struct mb_client_options *options) {
    struct mb_client *client = NULL;
    char detail[256];
    CHECK_EQ(mb_client_connect(fx.target, options, &client, detail, sizeof detail), 0);
    return client;
}

/* ---- every function code, blocking ---- */

TEST(registers_written_with_fc_6_and_16_read_back_with_fc_3) {
    struct mb_client *client = connect_client(NULL);
    CHECK_EQ(mb_write_register(client, 1, 100, 0xBEEF), 0);
    uint16_t values[] = {1, 2, 3, 0xFFFF};
    CHECK_EQ(mb_write_registers(client, 1, 101, 4, values), 0);
    uint16_t read[5] = {0};
    CHECK_EQ(mb_read_holding_registers(client, 1, 100, 5, read), 0);
    CHECK_EQ(read[0], 0xBEEF);
    CHECK_EQ(read[1], 1);
    CHECK_EQ(read[4], 0xFFFF);
    CHECK_EQ(strcmp(mb_client_error_detail(client), ""), 0);
    mb_client_close(client);
}

TEST(coils_written_with_fc_5_and_15_read_back_with_fc_1) {
    struct mb_client *client = connect_client(NULL);
    CHECK_EQ(mb_write_coil(client, 1, 7, 1), 0);
    uint8_t bits[10] = {1, 0, 1, 1, 0, 0, 0, 1, 1, 0};
    CHECK_EQ(mb_write_coils(client, 1, 20, 10, bits), 0);
    uint8_t read[10];
    CHECK_EQ(mb_read_coils(client, 1, 7, 1, read), 0);
    CHECK_EQ(read[0], 1);
    memset(read, 0x55, sizeof read);
    CHECK_EQ(mb_read_coils(client, 1, 20, 10, read), 0);
    CHECK_EQ(memcmp(read, bits, 10), 0);
    mb_client_close(client);
}

TEST(read_only_tables_are_read_with_fc_2_and_4) {
    uint16_t inputs[3] = {11, 22, 33}, discrete[3] = {1, 0, 1};
    CHECK_EQ(mb_model_set(fx.model, 1, MB_TABLE_INPUT_REGISTERS, 500, 3, inputs), 0);
    CHECK_EQ(mb_model_set(fx.model, 1, MB_TABLE_DISCRETE_INPUTS, 500, 3, discrete), 0);
    struct mb_client *client = connect_client(NULL);
    uint16_t registers[3];
    CHECK_EQ(mb_read_input_registers(client, 1, 500, 3, registers), 0);
    CHECK_EQ(registers[0], 11);
    CHECK_EQ(registers[2], 33);
    uint8_t bits[3];
    CHECK_EQ(mb_read_discrete_inputs(client, 1, 500, 3, bits), 0);
    CHECK_EQ(bits[0], 1);
    CHECK_EQ(bits[1], 0);
    CHECK_EQ(bits[2], 1);
    mb_client_close(client);
}

TEST(fc_22_masks_and_fc_23_writes_then_reads) {
    struct mb_client *client = connect_client(NULL);
    CHECK_EQ(mb_write_register(client, 1, 200, 0x0012), 0);
    /* The spec's example: 0x12 AND 0xF2 OR (0x25 AND NOT 0xF2) = 0x17 */
    CHECK_EQ(mb_mask_write_register(client, 1, 200, 0x00F2, 0x0025), 0);
    uint16_t value = 0;
    CHECK_EQ(mb_read_holding_registers(client, 1, 200, 1, &value), 0);
    CHECK_EQ(value, 0x0017);
    uint16_t written[2] = {0xAAAA, 0xBBBB}, read[3] = {0};
    CHECK_EQ(mb_read_write_registers(client, 1, 201, 2, written, 200, 3, read), 0);
    CHECK_EQ(read[0], 0x0017);
    CHECK_EQ(read[1], 0xAAAA);
    CHECK_EQ(read[2], 0xBBBB);
    mb_client_close(client);
}

TEST(fc_24_reads_the_fifo_without_draining_it) {
    CHECK_EQ(mb_model_fifo_push(fx.model, 1, 1000, 7), 0);
    CHECK_EQ(mb_model_fifo_push(fx.model, 1, 1000, 8), 0);
    struct mb_client *client = connect_client(NULL);
    uint16_t values[MB_MAX_FIFO_COUNT], count = 99;
    CHECK_EQ(mb_read_fifo_queue(client, 1, 1000, values, &count), 0);
    CHECK_EQ(count, 2);
    CHECK_EQ(values[0], 7);
    CHECK_EQ(values[1], 8);
    CHECK_EQ(mb_read_fifo_queue(client, 1, 1000, values, &count), 0);
    CHECK_EQ(count, 2);
    mb_client_close(client);
}

TEST(fc_21_writes_file_records_that_fc_20_reads_back) {
    struct mb_client *client = connect_client(NULL);
    uint8_t data[6] = {0x12, 0x34, 0x56, 0x78, 0x9A, 0xBC};
    struct mb_file_record write = {.reference_type = 6,
                                   .file_number = 1,
                                   .record_number = 9,
                                   .record_length = 3,
                                   .data = data};
    CHECK_EQ(mb_write_file_record(client, 1, &write, 1), 0);
    struct mb_file_record reads[2] = {
        {.reference_type = 6, .file_number = 1, .record_number = 9, .record_length = 3},
        {.reference_type = 6, .file_number = 2, .record_number = 0, .record_length = 1},
    };
    struct mb_reply reply;
    CHECK_EQ(mb_read_file_record(client, 1, reads, 2, &reply), 0);
    size_t offset = 0;
    struct mb_file_record record;
    CHECK_EQ(mb_file_records_next(&reply.response.file, &offset, &record), 1);
    CHECK_EQ(record.record_length, 3);
    CHECK_EQ(memcmp(record.data, data, 6), 0);
    CHECK_EQ(mb_file_records_next(&reply.response.file, &offset, &record), 1);
    CHECK_EQ(record.record_length, 1);
    CHECK_EQ(mb_file_records_next(&reply.response.file, &offset, &record), 0);
    mb_client_close(client);
}

TEST(fc_7_8_11_12_answer_the_serial_line_diagnostics) {
    struct mb_client *client = connect_client(NULL);
    uint8_t status = 0xAA;
    CHECK_EQ(mb_read_exception_status(client, 1, &status), 0);
    CHECK_EQ(status, 0);
    struct mb_reply reply;
    const uint8_t echo[4] = {0xA5, 0x37, 0x00, 0x01};
    CHECK_EQ(mb_diagnostics(client, 1, MB_DIAG_RETURN_QUERY_DATA, echo, 4, &reply), 0);
    CHECK_EQ(reply.response.diagnostics.data_length, 4);
    CHECK_EQ(memcmp(reply.response.diagnostics.data, echo, 4), 0);
    const uint8_t zero[2] = {0, 0};
    CHECK_EQ(mb_diagnostics(client, 1, MB_DIAG_SERVER_MESSAGE_COUNT, zero, 2, &reply), 0);
    CHECK(mb_get_u16(reply.response.diagnostics.data) >= 2);
    uint16_t event_status = 1, events = 0xFFFF;
    CHECK_EQ(mb_get_comm_event_counter(client, 1, &event_status, &events), 0);
    CHECK_EQ(event_status, 0);
    CHECK(events != 0xFFFF);
    CHECK_EQ(mb_get_comm_event_log(client, 1, &reply), 0);
    CHECK_EQ(reply.response.function, MB_FC_GET_COMM_EVENT_LOG);
    CHECK(reply.response.event_log.message_count >= 4);
    mb_client_close(client);
}

struct identity {
    char vendor[64];
    char product_code[64];
    int objects;
    uint8_t conformity;
};

static void collect_object(void *data, const struct mb_device_object *object, uint8_t level) {
    struct identity *identity = data;
    identity->objects++;
    identity->conformity = level;
    char *into = object->id == MB_OBJECT_VENDOR_NAME    ? identity->vendor
                 : object->id == MB_OBJECT_PRODUCT_CODE ? identity->product_code
                                                        : NULL;
    if (into != NULL) {
        memcpy(into, object->value, object->length);
        into[object->length] = '\0';
    }
}

TEST(fc_17_and_fc_43_identify_the_simulator) {
    struct mb_client *client = connect_client(NULL);
    struct mb_reply reply;
    CHECK_EQ(mb_report_server_id(client, 1, &reply), 0);
    CHECK(reply.response.server_id.byte_count >= 5);
    CHECK_EQ(memcmp(reply.response.server_id.data, "mbsec", 5), 0);
    struct identity identity = {0};
    CHECK_EQ(
        mb_read_device_identification(client, 1, MB_DEVICE_ID_BASIC, collect_object, &identity), 0);
    CHECK_EQ(identity.objects, 3);
    CHECK_EQ(strcmp(identity.vendor, "mbsec"), 0);
    CHECK_EQ(strcmp(identity.product_code, "mbsec-sim"), 0);
    CHECK_EQ(identity.conformity, 0x83);
    CHECK_EQ(mb_read_device_id(client, 1, MB_DEVICE_ID_SPECIFIC, MB_OBJECT_PRODUCT_CODE, &reply),
             0);
    CHECK_EQ(reply.response.device_id.object_count, 1);
    mb_client_close(client);
}

TEST(an_exception_is_returned_as_its_code_with_a_detail_line) {
    struct mb_client *client = connect_client(NULL);
    uint16_t values[2] = {0x1111, 0x2222};
    /* 65535 + 2 registers runs past the table. */
    CHECK_EQ(mb_read_holding_registers(client, 1, 65535, 2, values), MB_EX_ILLEGAL_DATA_ADDRESS);
    CHECK_EQ(values[0], 0x1111);
    CHECK(strstr(mb_client_error_detail(client), "02 illegal data address") != NULL);
    struct mb_client_stats stats;
    mb_client_stats(client, &stats);
    CHECK_EQ(stats.exceptions, 1);
    /* The connection carries on. */
    CHECK_EQ(mb_read_holding_registers(client, 1, 0, 2, values), 0);
    mb_client_close(client);
}

TEST(a_request_outside_the_function_limits_is_refused_before_sending) {
    struct mb_client *client = connect_client(NULL);
    uint16_t values[126];
    CHECK_EQ(mb_read_holding_registers(client, 1, 0, 0, values), MB_EINVAL);
    CHECK_EQ(mb_read_holding_registers(client, 1, 0, 126, values), MB_EINVAL);
    CHECK(strstr(mb_client_error_detail(client), "quantity outside the limits") != NULL);
    CHECK_EQ(mb_write_registers(client, 1, 0, 124, (const uint16_t *)values), MB_EINVAL);
    struct mb_client_stats stats;
    mb_client_stats(client, &stats);
    CHECK_EQ(stats.requests, 0);
    mb_client_close(client);
}

TEST(raw_pdus_of_unknown_functions_are_sent_as_given) {
    struct mb_client *client = connect_client(NULL);
    const uint8_t user_defined[] = {0x41, 0x01, 0x02};
    struct mb_reply reply;
    CHECK_EQ(mb_client_call(client, 1, user_defined, sizeof user_defined, &reply),
             MB_EX_ILLEGAL_FUNCTION);
    CHECK_EQ(reply.length, 2);
    CHECK_EQ(reply.pdu[0], 0xC1);
    mb_client_close(client);
}

/* ---- timeouts, late answers, retries, reconnection ---- */

TEST(no_answer_times_out_and_the_connection_stays_usable) {
    struct mb_client_options options = {.timeout_ms = 100};
    struct mb_client *client = connect_client(&options);
    uint16_t values[2] = {0x5A5A, 0x5A5A};
    CHECK_EQ(mb_read_holding_registers(client, UNIT_SILENT, 0, 2, values), MB_ETIMEDOUT);
    CHECK_EQ(values[0], 0x5A5A);
    CHECK(strstr(mb_client_error_detail(client), "within 100 ms") != NULL);
    CHECK_EQ(mb_write_register(client, 1, 300, 42), 0);
    CHECK_EQ(mb_read_holding_registers(client, 1, 300, 1, values), 0);
    CHECK_EQ(values[0], 42);
    mb_client_close(client);
}

TEST(a_late_answer_is_discarded_and_never_given_to_the_next_request) {
    struct mb_client_options options = {.timeout_ms = 50};
    struct mb_client *client = connect_client(&options);
    CHECK_EQ(mb_write_register(client, 1, 400, 1111), 0);
    CHECK_EQ(mb_write_register(client, 1, 401, 2222), 0);
    uint16_t value = 0;
    int late_before = __atomic_load_n(&fx.late_answers, __ATOMIC_SEQ_CST);
    CHECK_EQ(mb_read_holding_registers(client, UNIT_LATE, 400, 1, &value), MB_ETIMEDOUT);
    /* The late answer (1111) is in the socket before the next request goes out. */
    wait_for_late_answers(late_before + 1);
    mb_client_set_timeout(client, 1000);
    CHECK_EQ(mb_read_holding_registers(client, 1, 401, 1, &value), 0);
    CHECK_EQ(value, 2222);
    struct mb_client_stats stats;
    mb_client_stats(client, &stats);
    CHECK_EQ(stats.unmatched, 1);
    CHECK_EQ(stats.timeouts, 1);
    mb_client_close(client);
}

TEST(reads_are_retried_and_writes_never) {
    struct mb_client_options options = {.timeout_ms = 40, .retries = 2};
    struct mb_client *client = connect_client(&options);
    uint16_t value;
    CHECK_EQ(mb_read_holding_registers(client, UNIT_SILENT, 0, 1, &value), MB_ETIMEDOUT);
    struct mb_client_stats stats;
    mb_client_stats(client, &stats);
    CHECK_EQ(stats.requests, 3);
    CHECK_EQ(mb_write_register(client, UNIT_SILENT, 0, 1), MB_ETIMEDOUT);
    mb_client_stats(client, &stats);
    CHECK_EQ(stats.requests, 4);
    mb_client_close(client);
}

TEST(a_refused_connection_and_a_bad_target_are_told_apart) {
    struct mb_client *client = NULL;
    char detail[256];
    /* A port that was just free: bind, read it back, close. */
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    socklen_t length = sizeof address;
    CHECK_EQ(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&address, &length), 0);
    close(fd);
    char target[32];
    snprintf(target, sizeof target, "127.0.0.1:%u", ntohs(address.sin_port));
    CHECK_EQ(mb_client_connect(target, NULL, &client, detail, sizeof detail), MB_ECONNECT);
    CHECK(strstr(detail, "refused") != NULL);
    CHECK_EQ(mb_client_connect("[::1", NULL, &client, detail, sizeof detail), MB_EADDRESS);
    CHECK(strstr(detail, "without ']'") != NULL);
    CHECK_EQ(mb_client_connect("127.0.0.1:99999", NULL, &client, detail, sizeof detail),
             MB_EADDRESS);
    CHECK_EQ(mb_client_connect("no-such-host.invalid", NULL, &client, detail, sizeof detail),
             MB_EADDRESS);
    CHECK(strstr(detail, "cannot resolve") != NULL);
}

TEST(localhost_resolves_and_connects_whichever_family_listens) {
    struct mb_client *client = NULL;
    char target[32], detail[256];
    snprintf(target, sizeof target, "localhost:%u", fx.port);
    CHECK_EQ(mb_client_connect(target, NULL, &client, detail, sizeof detail), 0);
    CHECK_EQ(strncmp(mb_client_peer(client), "127.0.0.1:", 10), 0);
    mb_client_close(client);
}

TEST(with_reconnect_a_call_after_the_server_restarted_goes_through) {
    struct mb_client_options plain = {0}, reconnecting = {.reconnect = 1};
    struct mb_client *once = connect_client(&plain);
    struct mb_client *again = connect_client(&reconnecting);
    uint16_t port = fx.port, value;
    stop_server();
    start_server(port);
    /* The first call finds the old connection closed. */
    int rc = mb_read_holding_registers(once, 1, 0, 1, &value);
    CHECK(rc == MB_ECLOSED || rc == MB_EIO);
    CHECK_EQ(mb_client_connected(once), 0);
    CHECK_EQ(mb_read_holding_registers(once, 1, 0, 1, &value), MB_ECLOSED);
    CHECK(strstr(mb_client_error_detail(once), "not connected") != NULL);
    /* A write on a lost connection is not repeated: it fails, and the next call reconnects. */
    rc = mb_write_register(again, 1, 0, 5);
    CHECK(rc == MB_ECLOSED || rc == MB_EIO);
    CHECK_EQ(mb_write_register(again, 1, 0, 5), 0);
    struct mb_client_stats stats;
    mb_client_stats(again, &stats);
    CHECK_EQ(stats.connects, 2);
    mb_client_close(once);
    mb_client_close(again);
}

TEST(a_read_retried_after_a_lost_connection_reconnects_and_succeeds) {
    struct mb_client_options options = {.reconnect = 1, .retries = 1};
    struct mb_client *client = connect_client(&options);
    uint16_t port = fx.port, value = 0;
    CHECK_EQ(mb_write_register(client, 1, 9, 99), 0);
    stop_server();
    start_server(port);
    CHECK_EQ(mb_read_holding_registers(client, 1, 9, 1, &value), 0);
    CHECK_EQ(value, 99);
    mb_client_close(client);
}

/* ---- non-blocking ---- */

struct expectation {
    uint16_t address;
    int status;
    int calls;
    uint16_t value;
};

static void on_read(void *data, const struct mb_async_result *result) {
    struct expectation *expect = data;
    expect->calls++;
    expect->status = result->status;
    if (result->status == 0 && result->response->exception == 0)
        expect->value = mb_get_u16(result->response->read.data);
}

static void run_until(struct mb_loop *loop, struct mb_async *client, int ms) {
    for (int i = 0; i < ms / 5 && mb_async_outstanding(client) > 0; i++)
        mb_loop_run_once(loop, 5);
}

static struct mb_async *async_client(struct mb_loop *loop, const struct mb_async_config *config) {
    struct sockaddr_storage address;
    socklen_t length;
    CHECK_EQ(mb_address_parse(fx.target, 502, &address, &length, NULL), 0);
    struct mb_async *client = NULL;
    CHECK_EQ(mb_async_create(loop, config, (struct sockaddr *)&address, length, &client), 0);
    return client;
}

static void submit_read(struct mb_async *client, uint8_t unit, uint16_t address, uint32_t timeout,
                        struct expectation *expect) {
    struct mb_request request = {.function = MB_FC_READ_HOLDING_REGISTERS, .read = {address, 1}};
    expect->address = address;
    CHECK_EQ(mb_async_send(client, unit, &request, timeout, on_read, expect), 0);
}

TEST(many_requests_in_flight_each_get_their_own_answer) {
    uint16_t values[200];
    for (int i = 0; i < 200; i++)
        values[i] = (uint16_t)(0x4000 + i * 7);
    CHECK_EQ(mb_model_set(fx.model, 1, MB_TABLE_HOLDING_REGISTERS, 2000, 100, values), 0);
    CHECK_EQ(mb_model_set(fx.model, 1, MB_TABLE_HOLDING_REGISTERS, 2100, 100, values + 100), 0);
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_async_config config = {.max_in_flight = 16};
    struct mb_async *client = async_client(loop, &config);
    static struct expectation expect[200];
    memset(expect, 0, sizeof expect);
    for (int i = 0; i < 200; i++)
        submit_read(client, 1, (uint16_t)(2000 + i), 0, &expect[i]);
    CHECK_EQ(mb_async_outstanding(client), 200);
    run_until(loop, client, 5000);
    for (int i = 0; i < 200; i++) {
        CHECK_EQ(expect[i].calls, 1);
        CHECK_EQ(expect[i].status, 0);
        CHECK_EQ(expect[i].value, values[i]);
    }
    struct mb_client_stats stats;
    mb_async_stats(client, &stats);
    CHECK_EQ(stats.requests, 200);
    CHECK_EQ(stats.responses, 200);
    CHECK_EQ(stats.unmatched, 0);
    CHECK_EQ(mb_async_state(client), MB_ASYNC_CONNECTED);
    mb_async_destroy(client);
    mb_loop_destroy(loop);
}

TEST(requests_submitted_in_one_round_leave_in_one_write) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_async_config config = {.max_in_flight = 16};
    struct mb_async *client = async_client(loop, &config);
    for (int i = 0; i < 400 && mb_async_state(client) != MB_ASYNC_CONNECTED; i++)
        mb_loop_run_once(loop, 5);
    CHECK_EQ(mb_async_state(client), MB_ASYNC_CONNECTED);
    /* Unanswered, so that no answer can free a place and send more within the round. */
    static struct expectation expect[20];
    memset(expect, 0, sizeof expect);
    for (int i = 0; i < 20; i++)
        submit_read(client, UNIT_SILENT, (uint16_t)i, i < 16 ? 100 : 1000, &expect[i]);
    struct mb_client_stats stats;
    mb_async_stats(client, &stats);
    CHECK_EQ(stats.writes, 0); /* nothing is written from inside mb_async_send() */
    mb_loop_run_once(loop, 0);
    mb_async_stats(client, &stats);
    CHECK_EQ(stats.requests, 16); /* the in-flight cap; the other 4 wait */
    CHECK_EQ(stats.writes, 1);
    run_until(loop, client, 5000);
    for (int i = 0; i < 20; i++)
        CHECK_EQ(expect[i].status, MB_ETIMEDOUT);
    mb_async_stats(client, &stats);
    CHECK_EQ(stats.requests, 20);
    CHECK(stats.writes >= 2 && stats.writes <= 5); /* the 4 follow as places free up */
    mb_async_destroy(client);
    mb_loop_destroy(loop);
}

static void on_any(void *data, const struct mb_async_result *result) {
    int *done = data;
    (*done)++;
    /* timed out at the device or in the queue; the last ones canceled by destroy */
    CHECK(result->status == MB_ETIMEDOUT || result->status == MB_ECANCELED);
}

TEST(a_device_that_stops_reading_fills_its_socket_then_nothing_more_is_taken) {
    /* A "device" that accepts and never reads, with the smallest receive buffer. */
    int listener = socket(AF_INET, SOCK_STREAM, 0);
    int small = 1024;
    setsockopt(listener, SOL_SOCKET, SO_RCVBUF, &small, sizeof small);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    CHECK_EQ(bind(listener, (struct sockaddr *)&address, sizeof address), 0);
    CHECK_EQ(listen(listener, 4), 0);
    socklen_t length = sizeof address;
    getsockname(listener, (struct sockaddr *)&address, &length);
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_async_config config = {.max_in_flight = 1024, .max_queued = 4096};
    struct mb_async *client = NULL;
    CHECK_EQ(mb_async_create(loop, &config, (struct sockaddr *)&address, sizeof address, &client),
             0);
    /* FC 16 of 123 registers: 259-byte frames; each times out after 20 ms, freeing its place
     * for the next, so only the full socket can stop the flow. */
    uint16_t values[123] = {0};
    struct mb_request request = {.function = MB_FC_WRITE_MULTIPLE_REGISTERS};
    request.write_multiple.address = 0;
    request.write_multiple.quantity = 123;
    uint8_t wire[246];
    mb_registers_to_wire(values, 123, wire);
    request.write_multiple.values = wire;
    int done = 0, submitted = 0;
    uint64_t requests_at_1s = 0;
    struct timespec begin, now;
    clock_gettime(CLOCK_MONOTONIC, &begin);
    for (;;) {
        clock_gettime(CLOCK_MONOTONIC, &now);
        double elapsed = (double)(now.tv_sec - begin.tv_sec) + (now.tv_nsec - begin.tv_nsec) / 1e9;
        if (elapsed > 2.0)
            break;
        while (mb_async_send(client, 1, &request, 20, on_any, &done) == 0)
            submitted++;
        mb_loop_run_once(loop, 5);
        struct mb_client_stats stats;
        mb_async_stats(client, &stats);
        if (elapsed < 1.0)
            requests_at_1s = stats.requests;
    }
    struct mb_client_stats stats;
    mb_async_stats(client, &stats);
    /* Whatever the kernel's buffers took in the first second, nothing more left after it: the
     * frames of timed-out requests still wait in the client's bounded output. */
    CHECK(stats.requests > 0);
    CHECK(stats.requests <= requests_at_1s + 1024);
    CHECK(stats.requests * 259 < 64u * 1024 * 1024);
    CHECK_EQ(mb_async_state(client), MB_ASYNC_CONNECTED);
    CHECK(done > 1000); /* the rest timed out in the queue: answered, not lost */
    mb_async_destroy(client);
    CHECK_EQ(done, submitted);
    mb_loop_destroy(loop);
    close(listener);
}

TEST(an_unanswered_request_times_out_once_while_the_others_complete) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_async *client = async_client(loop, NULL);
    struct expectation silent = {0}, answered = {0};
    submit_read(client, UNIT_SILENT, 0, 100, &silent);
    submit_read(client, 1, 2000, 1000, &answered);
    run_until(loop, client, 2000);
    CHECK_EQ(silent.calls, 1);
    CHECK_EQ(silent.status, MB_ETIMEDOUT);
    CHECK_EQ(answered.calls, 1);
    CHECK_EQ(answered.status, 0);
    CHECK_EQ(answered.value, 0x4000);
    mb_async_destroy(client);
    mb_loop_destroy(loop);
}

TEST(a_late_answer_to_a_timed_out_async_request_is_counted_not_delivered) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_async *client = async_client(loop, NULL);
    struct expectation late = {0}, next = {0};
    int late_before = __atomic_load_n(&fx.late_answers, __ATOMIC_SEQ_CST);
    submit_read(client, UNIT_LATE, 2000, 50, &late);
    run_until(loop, client, 1000);
    CHECK_EQ(late.status, MB_ETIMEDOUT);
    wait_for_late_answers(late_before + 1);
    mb_loop_run_once(loop, 50); /* reads the late answer */
    submit_read(client, 1, 2001, 1000, &next);
    run_until(loop, client, 1000);
    CHECK_EQ(next.status, 0);
    CHECK_EQ(next.value, 0x4007);
    struct mb_client_stats stats;
    mb_async_stats(client, &stats);
    CHECK_EQ(stats.unmatched, 1);
    mb_async_destroy(client);
    mb_loop_destroy(loop);
}

TEST(a_full_queue_refuses_and_destroy_cancels_what_is_left) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_async_config config = {.max_in_flight = 2, .max_queued = 2};
    struct mb_async *client = async_client(loop, &config);
    struct expectation expect[4] = {{0}};
    for (int i = 0; i < 4; i++)
        submit_read(client, UNIT_SILENT, (uint16_t)i, 5000, &expect[i]);
    uint8_t pdu[] = {3, 0, 0, 0, 1};
    CHECK_EQ(mb_async_submit(client, 1, pdu, sizeof pdu, 0, on_read, &expect[0]), MB_ELIMIT);
    for (int i = 0; i < 10; i++)
        mb_loop_run_once(loop, 5);
    mb_async_destroy(client);
    for (int i = 0; i < 4; i++) {
        CHECK_EQ(expect[i].calls, 1);
        CHECK_EQ(expect[i].status, MB_ECANCELED);
    }
    mb_loop_destroy(loop);
}

TEST(with_one_in_flight_a_request_that_times_out_lets_the_next_go_out_at_once) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_async_config config = {.max_in_flight = 1};
    struct mb_async *client = async_client(loop, &config);
    struct expectation silent = {0}, next = {0};
    submit_read(client, UNIT_SILENT, 0, 100, &silent);
    submit_read(client, 1, 2003, 400, &next);
    run_until(loop, client, 2000);
    CHECK_EQ(silent.status, MB_ETIMEDOUT);
    /* The second request had 300 ms left when the first gave up: plenty for an answer. */
    CHECK_EQ(next.status, 0);
    CHECK_EQ(next.value, 0x4015);
    mb_async_destroy(client);
    mb_loop_destroy(loop);
}

struct ordered {
    int *clock; /* shared: completions so far */
    int position;
    int status;
};

static void on_ordered(void *data, const struct mb_async_result *result) {
    struct ordered *ordered = data;
    ordered->position = ++*ordered->clock;
    ordered->status = result->status;
}

TEST(requests_with_different_timeouts_expire_in_deadline_order) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct mb_async *client = async_client(loop, NULL);
    int clock = 0;
    struct ordered slow = {.clock = &clock}, fast = {.clock = &clock}, middle = {.clock = &clock};
    uint8_t pdu[] = {3, 0, 0, 0, 1};
    CHECK_EQ(mb_async_submit(client, UNIT_SILENT, pdu, sizeof pdu, 400, on_ordered, &slow), 0);
    CHECK_EQ(mb_async_submit(client, UNIT_SILENT, pdu, sizeof pdu, 40, on_ordered, &fast), 0);
    CHECK_EQ(mb_async_submit(client, UNIT_SILENT, pdu, sizeof pdu, 150, on_ordered, &middle), 0);
    for (int i = 0; i < 300 && clock < 1; i++)
        mb_loop_run_once(loop, 5);
    /* The 40 ms request expires alone: the others are still waiting. */
    CHECK_EQ(fast.position, 1);
    CHECK_EQ(middle.position, 0);
    run_until(loop, client, 3000);
    CHECK_EQ(middle.position, 2);
    CHECK_EQ(slow.position, 3);
    CHECK_EQ(slow.status, MB_ETIMEDOUT);
    mb_async_destroy(client);
    mb_loop_destroy(loop);
}

struct chain {
    struct mb_async *client;
    int remaining;
    int answered;
    int failed;
    uint16_t last;
};

static void on_chain(void *data, const struct mb_async_result *result) {
    struct chain *chain = data;
    if (result->status != 0 || result->response->exception != 0) {
        chain->failed++;
        return;
    }
    chain->answered++;
    chain->last = mb_get_u16(result->response->read.data);
    if (--chain->remaining > 0) {
        uint16_t address = (uint16_t)(2000 + chain->answered % 100);
        struct mb_request request = {.function = MB_FC_READ_HOLDING_REGISTERS,
                                     .read = {address, 1}};
        CHECK_EQ(mb_async_send(chain->client, 1, &request, 1000, on_chain, chain), 0);
    }
}

TEST(a_completion_callback_may_submit_the_next_request) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct chain chain = {.remaining = 500};
    chain.client = async_client(loop, NULL);
    struct mb_request request = {.function = MB_FC_READ_HOLDING_REGISTERS, .read = {2000, 1}};
    CHECK_EQ(mb_async_send(chain.client, 1, &request, 1000, on_chain, &chain), 0);
    run_until(loop, chain.client, 10000);
    CHECK_EQ(chain.answered, 500);
    CHECK_EQ(chain.failed, 0);
    CHECK_EQ(chain.last, (uint16_t)(0x4000 + 7 * (499 % 100)));
    mb_async_destroy(chain.client);
    mb_loop_destroy(loop);
}

struct states {
    int connected;
    int down;
    int last_error;
    char sequence[64]; /* one letter per state: c(onnecting) C(onnected) D(own) X (closed) */
};

static void on_state(void *data, enum mb_async_state state, int error, const char *detail) {
    (void)detail;
    struct states *seen = data;
    size_t used = strlen(seen->sequence);
    if (used + 1 < sizeof seen->sequence)
        seen->sequence[used] = "?cCDX"[state];
    if (state == MB_ASYNC_CONNECTED)
        seen->connected++;
    if (state == MB_ASYNC_DOWN) {
        seen->down++;
        seen->last_error = error;
    }
}

TEST(a_lost_connection_fails_in_flight_requests_and_comes_back_with_backoff) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct states seen = {0};
    struct mb_async_config config = {.reconnect = 1,
                                     .reconnect_min_ms = 20,
                                     .reconnect_max_ms = 80,
                                     .on_state = on_state,
                                     .state_data = &seen};
    struct mb_async *client = async_client(loop, &config);
    struct expectation silent = {0};
    submit_read(client, UNIT_SILENT, 0, 5000, &silent);
    for (int i = 0; i < 100 && seen.connected == 0; i++)
        mb_loop_run_once(loop, 5);
    CHECK_EQ(seen.connected, 1);
    uint16_t port = fx.port;
    stop_server();
    for (int i = 0; i < 200 && silent.calls == 0; i++)
        mb_loop_run_once(loop, 5);
    CHECK_EQ(silent.calls, 1);
    CHECK_EQ(silent.status, MB_ECLOSED);
    CHECK(seen.down >= 1);
    uint8_t pdu[] = {3, 0, 0, 0, 1};
    struct expectation refused = {0};
    /* Right after the loss the client waits out its first backoff (20..25 ms). */
    CHECK_EQ(mb_async_state(client), MB_ASYNC_DOWN);
    CHECK_EQ(mb_async_submit(client, 1, pdu, sizeof pdu, 0, on_read, &refused), MB_ECLOSED);
    CHECK_EQ(strcmp(seen.sequence, "cCD"), 0);
    /* While the server is away, attempts fail and back off; it comes back on the same port. */
    for (int i = 0; i < 40; i++)
        mb_loop_run_once(loop, 5);
    CHECK(seen.down >= 2);
    CHECK_EQ(seen.last_error, MB_ECONNECT);
    start_server(port);
    for (int i = 0; i < 400 && seen.connected < 2; i++)
        mb_loop_run_once(loop, 5);
    CHECK_EQ(seen.connected, 2);
    /* Each failed attempt: connecting, then down; then connecting and connected. */
    CHECK_EQ(strncmp(seen.sequence, "cCDcD", 5), 0);
    CHECK_EQ(strcmp(seen.sequence + strlen(seen.sequence) - 2, "cC"), 0);
    struct expectation after = {0};
    submit_read(client, 1, 2002, 1000, &after);
    run_until(loop, client, 1000);
    CHECK_EQ(after.status, 0);
    CHECK_EQ(after.value, 0x400E);
    mb_async_destroy(client);
    mb_loop_destroy(loop);
}

TEST(without_reconnect_a_refused_connection_fails_queued_requests_with_econnect) {
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(0x7F000001)};
    socklen_t length = sizeof address;
    CHECK_EQ(bind(fd, (struct sockaddr *)&address, sizeof address), 0);
    CHECK_EQ(getsockname(fd, (struct sockaddr *)&address, &length), 0);
    close(fd);
    struct mb_async *client = NULL;
    CHECK_EQ(mb_async_create(loop, NULL, (struct sockaddr *)&address, length, &client), 0);
    struct expectation expect = {0};
    submit_read(client, 1, 0, 1000, &expect);
    run_until(loop, client, 1000);
    CHECK_EQ(expect.calls, 1);
    CHECK_EQ(expect.status, MB_ECONNECT);
    CHECK_EQ(mb_async_state(client), MB_ASYNC_CLOSED);
    mb_async_destroy(client);
    mb_loop_destroy(loop);
}

int main(void) {
    start_server(0);
    RUN(registers_written_with_fc_6_and_16_read_back_with_fc_3);
    RUN(coils_written_with_fc_5_and_15_read_back_with_fc_1);
    RUN(read_only_tables_are_read_with_fc_2_and_4);
    RUN(fc_22_masks_and_fc_23_writes_then_reads);
    RUN(fc_24_reads_the_fifo_without_draining_it);
    RUN(fc_21_writes_file_records_that_fc_20_reads_back);
    RUN(fc_7_8_11_12_answer_the_serial_line_diagnostics);
    RUN(fc_17_and_fc_43_identify_the_simulator);
    RUN(an_exception_is_returned_as_its_code_with_a_detail_line);
    RUN(a_request_outside_the_function_limits_is_refused_before_sending);
    RUN(raw_pdus_of_unknown_functions_are_sent_as_given);
    RUN(no_answer_times_out_and_the_connection_stays_usable);
    RUN(a_late_answer_is_discarded_and_never_given_to_the_next_request);
    RUN(reads_are_retried_and_writes_never);
    RUN(a_refused_connection_and_a_bad_target_are_told_apart);
    RUN(localhost_resolves_and_connects_whichever_family_listens);
    RUN(with_reconnect_a_call_after_the_server_restarted_goes_through);
    RUN(a_read_retried_after_a_lost_connection_reconnects_and_succeeds);
    RUN(many_requests_in_flight_each_get_their_own_answer);
    RUN(requests_submitted_in_one_round_leave_in_one_write);
    RUN(a_device_that_stops_reading_fills_its_socket_then_nothing_more_is_taken);
    RUN(an_unanswered_request_times_out_once_while_the_others_complete);
    RUN(a_late_answer_to_a_timed_out_async_request_is_counted_not_delivered);
    RUN(a_full_queue_refuses_and_destroy_cancels_what_is_left);
    RUN(with_one_in_flight_a_request_that_times_out_lets_the_next_go_out_at_once);
    RUN(a_completion_callback_may_submit_the_next_request);
    RUN(requests_with_different_timeouts_expire_in_deadline_order);
    RUN(a_lost_connection_fails_in_flight_requests_and_comes_back_with_backoff);
    RUN(without_reconnect_a_refused_connection_fails_queued_requests_with_econnect);
    stop_server();
    mb_model_destroy(fx.model);
    return harness_result();
}
