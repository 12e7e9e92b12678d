/* SPDX-License-Identifier: MIT */
/*
 * Modbus/TCP Security over the TLS transport, with real OpenSSL on 127.0.0.1: the server runs
 * its loop in a thread with a TLS listener (and the CRL), the clients in the test's thread.
 * Certificates come from tests/tls/make_certs.sh (the openssl command), made fresh per run.
 * Handshakes that must succeed (TLS 1.2 and 1.3, pins, resumption) and must fail with their
 * cause named (unknown CA, expired, revoked, wrong pin, name mismatch, plain Modbus on the TLS
 * port, a stalled handshake), and the role the handler sees for each kind of certificate.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "harness.h"
#include "mbsec/client.h"
#include "mbsec/server.h"
#include "mbsec/tls.h"

struct fixture {
    struct mb_loop *loop;
    struct mb_server *server;
    struct mb_tls_context *tls;
    pthread_t thread;
    uint16_t port;
    char target[32];
    char certs[128];
    pthread_mutex_t lock;
    char last_role[128]; /* the role the handler saw last: "(none)" for NULL */
    char last_tls_event[640];
    char last_tls_failure[640];
    int handshakes;
    int failures;
    int revoked;
    char last_revoked[640];
};

static struct fixture fx;

static int handler(void *data, const struct mb_server_request *call, uint8_t *response) {
    (void)data;
    pthread_mutex_lock(&fx.lock);
    snprintf(fx.last_role, sizeof fx.last_role, "%s",
             call->peer->role != NULL ? call->peer->role : "(none)");
    pthread_mutex_unlock(&fx.lock);
    const struct mb_request *request = call->request;
    if (request != NULL && request->function == MB_FC_READ_HOLDING_REGISTERS) {
        response[0] = 3;
        response[1] = (uint8_t)(2 * request->read.quantity);
        for (uint16_t i = 0; i < request->read.quantity; i++)
            mb_put_u16(response + 2 + 2 * i, (uint16_t)(request->read.address + i));
        return 2 + 2 * request->read.quantity;
    }
    return mb_exception_encode(call->pdu[0], MB_EX_ILLEGAL_FUNCTION, response, MB_PDU_MAX);
}

static void on_log(void *data, const struct mb_log_event *event) {
    (void)data;
    pthread_mutex_lock(&fx.lock);
    if (strcmp(event->event, "tls_established") == 0) {
        fx.handshakes++;
        snprintf(fx.last_tls_event, sizeof fx.last_tls_event, "%s", event->reason);
    }
    if (strcmp(event->event, "tls_revoked") == 0) {
        fx.revoked++;
        snprintf(fx.last_revoked, sizeof fx.last_revoked, "%s", event->reason);
    }
    if (strcmp(event->event, "tls_failed") == 0) {
        fx.failures++;
        snprintf(fx.last_tls_failure, sizeof fx.last_tls_failure, "%s", event->reason);
    }
    pthread_mutex_unlock(&fx.lock);
}

static void *run_loop(void *data) {
    (void)data;
    mb_loop_run(fx.loop);
    return NULL;
}

static void path(char *out, size_t size, const char *name) {
    snprintf(out, size, "%s/%s", fx.certs, name);
}

static void start_server(void) {
    char certificate[192], key[192], ca[192], crl[192], error[256];
    path(certificate, sizeof certificate, "server.crt");
    path(key, sizeof key, "server.key");
    path(ca, sizeof ca, "ca.crt");
    path(crl, sizeof crl, "crl.pem");
    struct mb_tls_config config = {
        .certificate_file = certificate, .key_file = key, .ca_file = ca, .crl_file = crl};
    int rc = mb_tls_context_create(1, &config, &fx.tls, error, sizeof error);
    if (rc != 0)
        fprintf(stderr, "server context: %s\n", error);
    CHECK_EQ(rc, 0);
    CHECK_EQ(mb_loop_create(&fx.loop), 0);
    struct mb_server_config server_config = {.handler = handler, .log = on_log};
    server_config.limits.handshake_timeout_ms = 300;
    CHECK_EQ(mb_server_create(fx.loop, &server_config, &fx.server), 0);
    CHECK_EQ(mb_server_listen(fx.server, "127.0.0.1:0", 64), 0);
    CHECK_EQ(mb_server_listener_set_tls(fx.server, 0, fx.tls), 0);
    char bound[64];
    CHECK(mb_server_listener_address(fx.server, 0, bound, sizeof bound) > 0);
    fx.port = (uint16_t)atoi(strrchr(bound, ':') + 1);
    snprintf(fx.target, sizeof fx.target, "127.0.0.1:%u", fx.port);
    CHECK_EQ(pthread_create(&fx.thread, NULL, run_loop, NULL), 0);
}

/* The server is not thread-safe: its loop's thread is stopped while the test touches it. */
static void pause_server(void) {
    mb_loop_stop(fx.loop);
    pthread_join(fx.thread, NULL);
}

static void resume_server(void) {
    CHECK_EQ(pthread_create(&fx.thread, NULL, run_loop, NULL), 0);
}

static void stop_server(void) {
    pause_server();
    mb_server_destroy(fx.server);
    mb_loop_destroy(fx.loop);
    mb_tls_context_destroy(fx.tls);
}

/* A client context for the certificate NAME (client-NAME.crt/.key) trusting ca.crt. */
static struct mb_tls_context *client_context(const char *name, const struct mb_tls_config *extra) {
    char certificate[192], key[192], ca[192], file[64], error[256];
    snprintf(file, sizeof file, "client-%s.crt", name);
    path(certificate, sizeof certificate, file);
    snprintf(file, sizeof file, "client-%s.key", name);
    path(key, sizeof key, file);
    path(ca, sizeof ca, "ca.crt");
    struct mb_tls_config config = {0};
    if (extra != NULL)
        config = *extra;
    config.certificate_file = certificate;
    config.key_file = key;
    if (config.pin == NULL)
        config.ca_file = ca;
    struct mb_tls_context *context = NULL;
    int rc = mb_tls_context_create(0, &config, &context, error, sizeof error);
    if (rc != 0)
        fprintf(stderr, "client context %s: %s\n", name, error);
    CHECK_EQ(rc, 0);
    return context;
}

/* Connects with the context and reads 2 registers at 40; returns the connect result and leaves
 * the detail line in `detail`. */
static int read_over_tls(struct mb_tls_context *context, char *detail, size_t detail_size) {
    struct mb_client_options options = {.wrap = mb_tls_wrap, .wrap_data = context};
    struct mb_client *client = NULL;
    int rc = mb_client_connect(fx.target, &options, &client, detail, detail_size);
    if (rc != 0)
        return rc;
    uint16_t values[2] = {0};
    rc = mb_read_holding_registers(client, 1, 40, 2, values);
    if (rc == 0 && (values[0] != 40 || values[1] != 41))
        rc = MB_EMISMATCH;
    if (rc != 0)
        snprintf(detail, detail_size, "%s", mb_client_error_detail(client));
    mb_client_close(client);
    return rc;
}

static void last_role(char *out, size_t size) {
    pthread_mutex_lock(&fx.lock);
    snprintf(out, size, "%s", fx.last_role);
    pthread_mutex_unlock(&fx.lock);
}

/* Waits (bounded) until the server has logged `count` TLS failures, then copies the last. */
static void wait_for_failure(int count, char *out, size_t size) {
    for (int i = 0; i < 2000; i++) {
        pthread_mutex_lock(&fx.lock);
        int seen = fx.failures;
        snprintf(out, size, "%s", fx.last_tls_failure);
        pthread_mutex_unlock(&fx.lock);
        if (seen >= count)
            return;
        usleep(1000);
    }
    CHECK(!"the server logged no TLS failure");
}

static int failures_so_far(void) {
    pthread_mutex_lock(&fx.lock);
    int seen = fx.failures;
    pthread_mutex_unlock(&fx.lock);
    return seen;
}

TEST(a_client_with_a_role_reads_over_tls_1_3_and_the_handler_sees_the_role) {
    struct mb_tls_context *context = client_context("operator", NULL);
    char detail[320] = "", role[128];
    CHECK_EQ(read_over_tls(context, detail, sizeof detail), 0);
    last_role(role, sizeof role);
    CHECK_STR(role, "operator");
    pthread_mutex_lock(&fx.lock);
    CHECK(strstr(fx.last_tls_event, "TLSv1.3") != NULL);
    CHECK(strstr(fx.last_tls_event, "role 'operator'") != NULL);
    pthread_mutex_unlock(&fx.lock);
    mb_tls_context_destroy(context);
}

TEST(tls_1_2_with_the_spec_cipher_suite_works_too) {
    struct mb_tls_config extra = {.tls12_only = 1};
    struct mb_tls_context *context = client_context("engineer", &extra);
    char detail[320] = "", role[128];
    CHECK_EQ(read_over_tls(context, detail, sizeof detail), 0);
    last_role(role, sizeof role);
    CHECK_STR(role, "engineer");
    pthread_mutex_lock(&fx.lock);
    CHECK(strstr(fx.last_tls_event, "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256") != NULL);
    pthread_mutex_unlock(&fx.lock);
    mb_tls_context_destroy(context);
}

TEST(no_role_and_malformed_roles_give_the_null_role_with_a_diagnostic) {
    static const struct {
        const char *name;
        const char *diagnostic;
    } cases[] = {
        {"norole", "no role extension"},
        {"octet", "OCTET STRING"},
        {"two", "2 values"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        struct mb_tls_context *context = client_context(cases[i].name, NULL);
        char detail[320] = "", role[128];
        CHECK_EQ(read_over_tls(context, detail, sizeof detail), 0);
        last_role(role, sizeof role);
        CHECK_STR(role, "(none)");
        pthread_mutex_lock(&fx.lock);
        if (strstr(fx.last_tls_event, cases[i].diagnostic) == NULL)
            fprintf(stderr, "  %s: logged '%s'\n", cases[i].name, fx.last_tls_event);
        CHECK(strstr(fx.last_tls_event, cases[i].diagnostic) != NULL);
        pthread_mutex_unlock(&fx.lock);
        mb_tls_context_destroy(context);
    }
}

/* A certificate the server refuses: the client's connect fails with MB_ETLS or MB_ECONNECT (in
 * TLS 1.3 the client learns only from the alert after its handshake, so possibly at the first
 * read: MB_ECLOSED or MB_ETLS), and the server logs the cause. */
static void expect_refused(const char *name, const char *server_cause) {
    int before = failures_so_far();
    struct mb_tls_context *context = client_context(name, NULL);
    char detail[320] = "", failure[640];
    int rc = read_over_tls(context, detail, sizeof detail);
    CHECK(rc < 0);
    wait_for_failure(before + 1, failure, sizeof failure);
    if (strstr(failure, server_cause) == NULL)
        fprintf(stderr, "  %s: server logged '%s', client said '%s'\n", name, failure, detail);
    CHECK(strstr(failure, server_cause) != NULL);
    mb_tls_context_destroy(context);
}

TEST(a_certificate_from_another_ca_is_refused_as_unknown_ca) {
    expect_refused("other", "unknown CA");
}

TEST(an_expired_certificate_is_refused_as_expired) {
    expect_refused("expired", "certificate expired");
}

TEST(a_revoked_certificate_is_refused_as_revoked) {
    expect_refused("revoked", "certificate revoked");
}

TEST(a_pinned_server_certificate_is_accepted_and_a_wrong_pin_refused) {
    char server[192];
    path(server, sizeof server, "server.crt");
    char command[400], pin[160] = "";
    snprintf(command, sizeof command,
             "openssl x509 -in %s -noout -fingerprint -sha256 | sed 's/.*=/SHA256:/'", server);
    FILE *pipe = popen(command, "r");
    CHECK(pipe != NULL && fgets(pin, sizeof pin, pipe) != NULL);
    pclose(pipe);
    pin[strcspn(pin, "\n")] = '\0';
    struct mb_tls_config pinned = {.pin = pin};
    struct mb_tls_context *context = client_context("operator", &pinned);
    char detail[320] = "";
    CHECK_EQ(read_over_tls(context, detail, sizeof detail), 0);
    mb_tls_context_destroy(context);

    struct mb_tls_config wrong = {
        .pin = "SHA256:00:11:22:33:44:55:66:77:88:99:AA:BB:CC:DD:EE:FF:00:11:22:33:44:55:66:"
               "77:88:99:AA:BB:CC:DD:EE:FF"};
    context = client_context("operator", &wrong);
    CHECK(read_over_tls(context, detail, sizeof detail) < 0);
    CHECK(strstr(detail, "TLS handshake") != NULL);
    mb_tls_context_destroy(context);
}

TEST(a_server_name_the_certificate_does_not_carry_is_a_name_mismatch) {
    struct mb_tls_config named = {.server_name = "plc.example.com"};
    struct mb_tls_context *context = client_context("operator", &named);
    char detail[320] = "";
    CHECK(read_over_tls(context, detail, sizeof detail) < 0);
    if (strstr(detail, "name mismatch") == NULL)
        fprintf(stderr, "  client said '%s'\n", detail);
    CHECK(strstr(detail, "name mismatch") != NULL);
    mb_tls_context_destroy(context);
    struct mb_tls_config address = {.server_name = "127.0.0.1"};
    context = client_context("operator", &address);
    CHECK_EQ(read_over_tls(context, detail, sizeof detail), 0);
    mb_tls_context_destroy(context);
}

TEST(a_resumed_session_keeps_the_role) {
    struct mb_tls_config resume = {.resume = 1, .tls12_only = 1};
    struct mb_tls_context *context = client_context("engineer", &resume);
    char detail[320] = "", role[128];
    CHECK_EQ(read_over_tls(context, detail, sizeof detail), 0);
    CHECK_EQ(read_over_tls(context, detail, sizeof detail), 0);
    last_role(role, sizeof role);
    CHECK_STR(role, "engineer");
    pthread_mutex_lock(&fx.lock);
    CHECK(strstr(fx.last_tls_event, "(resumed)") != NULL);
    CHECK(strstr(fx.last_tls_event, "role 'engineer'") != NULL);
    pthread_mutex_unlock(&fx.lock);
    mb_tls_context_destroy(context);
}

TEST(a_resumed_tls_1_3_session_keeps_the_role) {
    struct mb_tls_config resume = {.resume = 1};
    struct mb_tls_context *context = client_context("operator", &resume);
    char detail[320] = "", role[128];
    CHECK_EQ(read_over_tls(context, detail, sizeof detail), 0);
    CHECK_EQ(read_over_tls(context, detail, sizeof detail), 0);
    last_role(role, sizeof role);
    CHECK_STR(role, "operator");
    pthread_mutex_lock(&fx.lock);
    CHECK(strstr(fx.last_tls_event, "(resumed)") != NULL);
    pthread_mutex_unlock(&fx.lock);
    mb_tls_context_destroy(context);
}

/* A raw TCP connection to the TLS port. */
static int raw_connection(void) {
    int fd = socket(AF_INET, SOCK_STREAM, 0);
    struct sockaddr_in address = {
        .sin_family = AF_INET, .sin_port = htons(fx.port), .sin_addr.s_addr = htonl(0x7F000001)};
    CHECK_EQ(connect(fd, (struct sockaddr *)&address, sizeof address), 0);
    return fd;
}

TEST(plain_modbus_sent_to_the_tls_port_fails_the_handshake_and_closes) {
    int before = failures_so_far();
    int fd = raw_connection();
    const uint8_t request[] = {0, 1, 0, 0, 0, 6, 1, 3, 0, 0, 0, 1};
    CHECK_EQ(send(fd, request, sizeof request, 0), (ssize_t)sizeof request);
    char failure[640];
    wait_for_failure(before + 1, failure, sizeof failure);
    CHECK(strstr(failure, "TLS handshake failed") != NULL);
    uint8_t buffer[64];
    struct timeval limit = {.tv_sec = 2};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    /* No Modbus answer: at most an alert, then the end of the stream. */
    ssize_t got;
    while ((got = recv(fd, buffer, sizeof buffer, 0)) > 0)
        CHECK(buffer[0] != 0); /* a TLS record, never our MBAP transaction id 0x0001 */
    /* Closed: an orderly end, or a reset for the request bytes the server never read. */
    CHECK(got == 0 || errno == ECONNRESET);
    close(fd);
}

TEST(a_handshake_that_stalls_is_cut_at_the_handshake_timeout) {
    int fd = raw_connection();
    uint8_t buffer[16];
    struct timeval limit = {.tv_sec = 3};
    setsockopt(fd, SOL_SOCKET, SO_RCVTIMEO, &limit, sizeof limit);
    /* The server closes after 300 ms without a ClientHello. */
    CHECK_EQ(recv(fd, buffer, sizeof buffer, 0), 0);
    close(fd);
}

struct expectation {
    uint16_t address;
    int status;
    uint16_t value;
    int calls;
};

static void on_answer(void *data, const struct mb_async_result *result) {
    struct expectation *expect = data;
    expect->calls++;
    expect->status = result->status;
    if (result->status == 0 && result->response->exception == 0)
        expect->value = mb_get_u16(result->response->read.data);
}

TEST(the_non_blocking_client_keeps_many_requests_in_flight_over_tls) {
    struct mb_tls_context *context = client_context("operator", NULL);
    struct mb_loop *loop;
    CHECK_EQ(mb_loop_create(&loop), 0);
    struct sockaddr_storage address;
    socklen_t length;
    CHECK_EQ(mb_address_parse(fx.target, 802, &address, &length, NULL), 0);
    struct mb_async_config config = {
        .max_in_flight = 16, .wrap = mb_tls_wrap, .wrap_data = context};
    struct mb_async *client = NULL;
    CHECK_EQ(mb_async_create(loop, &config, (struct sockaddr *)&address, length, &client), 0);
    static struct expectation expect[100];
    for (int i = 0; i < 100; i++) {
        expect[i] = (struct expectation){.address = (uint16_t)(1000 + i)};
        struct mb_request request = {.function = MB_FC_READ_HOLDING_REGISTERS,
                                     .read = {expect[i].address, 1}};
        CHECK_EQ(mb_async_send(client, 1, &request, 3000, on_answer, &expect[i]), 0);
    }
    for (int i = 0; i < 1000 && mb_async_outstanding(client) > 0; i++)
        mb_loop_run_once(loop, 5);
    for (int i = 0; i < 100; i++) {
        CHECK_EQ(expect[i].calls, 1);
        CHECK_EQ(expect[i].status, 0);
        CHECK_EQ(expect[i].value, expect[i].address);
    }
    mb_async_destroy(client);
    mb_loop_destroy(loop);
    mb_tls_context_destroy(context);
}

TEST(a_client_context_refuses_missing_certificates_and_bad_pins) {
    struct mb_tls_context *context = NULL;
    char error[256];
    struct mb_tls_config none = {0};
    CHECK_EQ(mb_tls_context_create(0, &none, &context, error, sizeof error), MB_ECONFIG);
    CHECK(strstr(error, "certificate") != NULL);
    char certificate[192], key[192], other_key[192];
    path(certificate, sizeof certificate, "client-operator.crt");
    path(key, sizeof key, "client-operator.key");
    path(other_key, sizeof other_key, "client-engineer.key");
    struct mb_tls_config mismatched = {
        .certificate_file = certificate, .key_file = other_key, .pin = "SHA256:00"};
    CHECK_EQ(mb_tls_context_create(0, &mismatched, &context, error, sizeof error), MB_ECONFIG);
    struct mb_tls_config bad_pin = {
        .certificate_file = certificate, .key_file = key, .pin = "MD5:1"};
    CHECK_EQ(mb_tls_context_create(0, &bad_pin, &context, error, sizeof error), MB_ECONFIG);
    CHECK(strstr(error, "pin") != NULL);
    struct mb_tls_config keyless = {.certificate_file = certificate, .key_file = other_key};
    CHECK_EQ(mb_tls_context_create(1, &keyless, &context, error, sizeof error), MB_ECONFIG);
}

/* A server context like start_server()'s, with other files. */
static struct mb_tls_context *server_context(const char *certificate_name, const char *ca_name,
                                             const char *crl_name) {
    char certificate[192], key[192], ca[192], crl[192], file[64], error[256];
    snprintf(file, sizeof file, "%s.crt", certificate_name);
    path(certificate, sizeof certificate, file);
    snprintf(file, sizeof file, "%s.key", certificate_name);
    path(key, sizeof key, file);
    path(ca, sizeof ca, ca_name);
    path(crl, sizeof crl, crl_name != NULL ? crl_name : "");
    struct mb_tls_config config = {.certificate_file = certificate,
                                   .key_file = key,
                                   .ca_file = ca,
                                   .crl_file = crl_name != NULL ? crl : NULL};
    struct mb_tls_context *context = NULL;
    int rc = mb_tls_context_create(1, &config, &context, error, sizeof error);
    if (rc != 0)
        fprintf(stderr, "server context: %s\n", error);
    CHECK_EQ(rc, 0);
    return context;
}

/* Gives listener 0 `context` (the fixture's reference moves to it); returns what
 * mb_server_listener_set_tls() returned. */
static int rotate_server(struct mb_tls_context *context) {
    pause_server();
    int closed = mb_server_listener_set_tls(fx.server, 0, context);
    mb_tls_context_destroy(fx.tls); /* the listener keeps the old one while it is used */
    fx.tls = context;
    resume_server();
    return closed;
}

static int revoked_so_far(char *last, size_t size) {
    pthread_mutex_lock(&fx.lock);
    int seen = fx.revoked;
    if (last != NULL)
        snprintf(last, size, "%s", fx.last_revoked);
    pthread_mutex_unlock(&fx.lock);
    return seen;
}

/* An open connection reads 2 registers at 40 again: 0, or the error. */
static int read_again(struct mb_client *client) {
    uint16_t values[2] = {0};
    int rc = mb_read_holding_registers(client, 1, 40, 2, values);
    if (rc == 0 && (values[0] != 40 || values[1] != 41))
        rc = MB_EMISMATCH;
    return rc;
}

static struct mb_client *open_client(struct mb_tls_context *context) {
    struct mb_client_options options = {
        .wrap = mb_tls_wrap, .wrap_data = context, .timeout_ms = 2000};
    struct mb_client *client = NULL;
    char detail[320];
    CHECK_EQ(mb_client_connect(fx.target, &options, &client, detail, sizeof detail), 0);
    if (client != NULL)
        CHECK_EQ(read_again(client), 0);
    return client;
}

/* The TLS handshake of a client transport over a connected socket, blocking (bounded). */
static int handshake_over(struct mb_transport *transport) {
    for (int i = 0; i < 200; i++) {
        int rc = transport->ops->handshake(transport);
        if (rc != MB_EAGAIN)
            return rc;
        struct pollfd wait = {.fd = transport->fd,
                              .events = (transport->ops->want(transport) & MB_IO_WRITE) ? POLLOUT
                                                                                        : POLLIN};
        poll(&wait, 1, 50);
    }
    return MB_ETIMEDOUT;
}

/* Advances the handshakes of both ends of a connected pair until both are done (bounded). */
static int handshake_pair(struct mb_transport *server, struct mb_transport *client) {
    int server_rc = MB_EAGAIN, client_rc = MB_EAGAIN;
    for (int i = 0; i < 400 && (server_rc == MB_EAGAIN || client_rc == MB_EAGAIN); i++) {
        if (client_rc == MB_EAGAIN)
            client_rc = client->ops->handshake(client);
        if (server_rc == MB_EAGAIN)
            server_rc = server->ops->handshake(server);
        if (server_rc == MB_EAGAIN || client_rc == MB_EAGAIN)
            usleep(1000);
    }
    return server_rc != 0 ? server_rc : client_rc;
}

TEST(recheck_refuses_a_client_certificate_a_new_crl_revokes_and_keeps_one_it_does_not) {
    int pair[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair), 0);
    struct mb_tls_context *server_tls = server_context("server", "ca.crt", "crl.pem");
    struct mb_tls_context *client_tls = client_context("rotated", NULL);
    struct mb_transport *server = NULL, *client = NULL;
    CHECK_EQ(mb_tls_transport_create(server_tls, pair[0], &server), 0);
    CHECK_EQ(mb_tls_transport_create(client_tls, pair[1], &client), 0);
    char why[160] = "stale";
    /* Before the handshake there is no peer certificate to check. */
    CHECK_EQ(server->ops->recheck(server, server_tls, why, sizeof why), MB_EINVAL);
    CHECK_EQ(handshake_pair(server, client), 0);
    /* The context the transport was made from verified it already. */
    CHECK_EQ(server->ops->recheck(server, server_tls, why, sizeof why), 0);
    CHECK_STR(why, "");
    /* Another context with the same CRL accepts it; the next CRL revokes it. */
    struct mb_tls_context *same = server_context("server", "ca.crt", "crl.pem");
    struct mb_tls_context *next = server_context("server", "ca.crt", "crl-2.pem");
    CHECK_EQ(server->ops->recheck(server, same, why, sizeof why), 0);
    CHECK_EQ(server->ops->recheck(server, next, why, sizeof why), 1);
    CHECK_STR(why, "certificate revoked");
    CHECK_EQ(server->ops->recheck(server, next, NULL, 0), 1);
    /* A client checks its server when it connects; it has nothing to recheck. */
    CHECK_EQ(client->ops->recheck(client, client_tls, why, sizeof why), MB_EINVAL);
    CHECK_EQ(server->ops->recheck(server, NULL, why, sizeof why), MB_EINVAL);
    server->ops->close(server);
    client->ops->close(client);
    mb_tls_context_destroy(next);
    mb_tls_context_destroy(same);
    mb_tls_context_destroy(client_tls);
    mb_tls_context_destroy(server_tls);
}

TEST(a_tcp_transport_has_no_certificate_to_recheck) {
    int pair[2];
    CHECK_EQ(socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK, 0, pair), 0);
    struct mb_transport *tcp = NULL;
    CHECK_EQ(mb_tcp_transport_create(pair[0], &tcp), 0);
    CHECK(tcp->ops->recheck == NULL);
    tcp->ops->close(tcp);
    close(pair[1]);
}

TEST(a_new_crl_closes_the_connections_it_revokes_and_keeps_the_others) {
    struct mb_tls_context *rotated = client_context("rotated", NULL);
    struct mb_tls_context *kept_context = client_context("operator", NULL);
    struct mb_client *doomed = open_client(rotated);
    struct mb_client *kept = open_client(kept_context);
    CHECK(doomed != NULL && kept != NULL);
    /* A connection accepted under the old CRL, whose handshake is not done when the new one
     * comes: checked when it is. */
    int pending = raw_connection();
    for (int i = 0; i < 200; i++) {
        pause_server();
        struct mb_server_stats stats;
        mb_server_get_stats(fx.server, &stats);
        resume_server();
        if (stats.connections >= 3)
            break;
        usleep(5000);
    }
    int before = revoked_so_far(NULL, 0);
    CHECK_EQ(rotate_server(server_context("server", "ca.crt", "crl-2.pem")), 1);
    char reason[640];
    CHECK_EQ(revoked_so_far(reason, sizeof reason), before + 1);
    CHECK(strstr(reason, "certificate revoked") != NULL);
    /* The revoked client's connection is gone; the other one is served as before. */
    CHECK(read_again(doomed) != 0);
    CHECK_EQ(read_again(kept), 0);
    CHECK_EQ(read_again(kept), 0);
    /* The pending handshake completes (the old CRL did not list it), then the check closes it. */
    struct mb_transport *late = NULL;
    CHECK_EQ(mb_tls_transport_create(rotated, pending, &late), 0);
    int handshake = handshake_over(late);
    uint8_t request[] = {0, 7, 0, 0, 0, 6, 1, 3, 0, 40, 0, 2}, answer[64];
    if (handshake == 0) {
        late->ops->write(late, request, sizeof request);
        long got = MB_EAGAIN;
        for (int i = 0; i < 200 && got == MB_EAGAIN; i++) {
            struct pollfd wait = {.fd = pending, .events = POLLIN};
            poll(&wait, 1, 20);
            got = late->ops->read(late, answer, sizeof answer);
        }
        CHECK(got <= 0); /* closed, never answered */
    }
    for (int i = 0; i < 200 && revoked_so_far(NULL, 0) < before + 2; i++)
        usleep(5000);
    CHECK_EQ(revoked_so_far(reason, sizeof reason), before + 2);
    late->ops->close(late);
    /* New connections with the revoked certificate are refused by the new CRL. */
    expect_refused("rotated", "certificate revoked");
    pause_server();
    struct mb_server_stats stats;
    mb_server_get_stats(fx.server, &stats);
    resume_server();
    CHECK_EQ(stats.tls_revoked, (uint64_t)before + 2);
    mb_client_close(doomed);
    mb_client_close(kept);
    mb_tls_context_destroy(rotated);
    mb_tls_context_destroy(kept_context);
}

TEST(a_new_ca_closes_the_clients_of_the_old_one_and_a_new_certificate_is_served) {
    struct mb_tls_context *kept_context = client_context("operator", NULL);
    struct mb_client *old_client = open_client(kept_context);
    CHECK(old_client != NULL);
    int before = revoked_so_far(NULL, 0);
    /* The server moves to other-ca, for its own certificate and for its clients'. */
    CHECK_EQ(rotate_server(server_context("other-server", "other-ca.crt", NULL)), 1);
    char reason[640];
    revoked_so_far(reason, sizeof reason);
    CHECK(strstr(reason, "local issuer") != NULL);
    CHECK(read_again(old_client) != 0);
    mb_client_close(old_client);
    /* A client of other-ca, trusting other-ca, is served with the new certificate. */
    char certificate[192], key[192], ca[192], detail[320] = "";
    path(certificate, sizeof certificate, "client-other.crt");
    path(key, sizeof key, "client-other.key");
    path(ca, sizeof ca, "other-ca.crt");
    struct mb_tls_config config = {.certificate_file = certificate, .key_file = key, .ca_file = ca};
    struct mb_tls_context *other = NULL;
    CHECK_EQ(mb_tls_context_create(0, &config, &other, detail, sizeof detail), 0);
    CHECK_EQ(read_over_tls(other, detail, sizeof detail), 0);
    /* The old client no longer trusts the server's certificate. */
    CHECK(read_over_tls(kept_context, detail, sizeof detail) < 0);
    CHECK_EQ(revoked_so_far(NULL, 0), before + 1);
    mb_tls_context_destroy(other);
    mb_tls_context_destroy(kept_context);
    /* Back to the first context for whatever runs next. */
    CHECK_EQ(rotate_server(server_context("server", "ca.crt", "crl.pem")), 0);
}

int main(void) {
    pthread_mutex_init(&fx.lock, NULL);
    snprintf(fx.certs, sizeof fx.certs, "%s/mbsec-tls-XXXXXX",
             getenv("TMPDIR") ? getenv("TMPDIR") : "/tmp");
    if (mkdtemp(fx.certs) == NULL)
        return 1;
    char command[512];
    snprintf(command, sizeof command, "sh %s %s", MBSEC_MAKE_CERTS, fx.certs);
    if (system(command) != 0) {
        fprintf(stderr, "make_certs.sh failed\n");
        return 1;
    }
    start_server();
    RUN(a_client_with_a_role_reads_over_tls_1_3_and_the_handler_sees_the_role);
    RUN(tls_1_2_with_the_spec_cipher_suite_works_too);
    RUN(no_role_and_malformed_roles_give_the_null_role_with_a_diagnostic);
    RUN(a_certificate_from_another_ca_is_refused_as_unknown_ca);
    RUN(an_expired_certificate_is_refused_as_expired);
    RUN(a_revoked_certificate_is_refused_as_revoked);
    RUN(a_pinned_server_certificate_is_accepted_and_a_wrong_pin_refused);
    RUN(a_server_name_the_certificate_does_not_carry_is_a_name_mismatch);
    RUN(a_resumed_session_keeps_the_role);
    RUN(a_resumed_tls_1_3_session_keeps_the_role);
    RUN(plain_modbus_sent_to_the_tls_port_fails_the_handshake_and_closes);
    RUN(a_handshake_that_stalls_is_cut_at_the_handshake_timeout);
    RUN(the_non_blocking_client_keeps_many_requests_in_flight_over_tls);
    RUN(a_client_context_refuses_missing_certificates_and_bad_pins);
    RUN(recheck_refuses_a_client_certificate_a_new_crl_revokes_and_keeps_one_it_does_not);
    RUN(a_tcp_transport_has_no_certificate_to_recheck);
    RUN(a_new_crl_closes_the_connections_it_revokes_and_keeps_the_others);
    RUN(a_new_ca_closes_the_clients_of_the_old_one_and_a_new_certificate_is_served);
    stop_server();
    snprintf(command, sizeof command, "rm -rf %s", fx.certs);
    if (system(command) != 0)
        fprintf(stderr, "could not remove %s\n", fx.certs);
    return harness_result();
}
