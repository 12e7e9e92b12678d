/* SPDX-License-Identifier: MIT */
/*
 * The shipper (src/app/daemon/ship.h) and its links against hostile and broken peers, each a
 * thread of this test on a loopback socket of its own:
 *
 *   MQTT   a broker that refuses the client; one that limits the window (Receive Maximum) and
 *          the packet size, and refuses some records (PUBACK reason 0x87); one that sends a
 *          packet a broker never sends, and one a length that does not parse; one that
 *          acknowledges out of order and then drops the connection;
 *   syslog a collector that checks the octet counting of every frame and hangs up halfway;
 *          one that stalls (never reads) while records keep coming.
 *
 * Every scenario ends with every record delivered (or counted as refused), none twice where
 * the protocol allows it, and the peer's view checked as well as the shipper's counters.
 */
#include <errno.h>
#include <netinet/in.h>
#include <poll.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "app/common/log.h"
#include "app/daemon/ship.h"
#include "app/daemon/ship_mqtt.h"
#include "app/daemon/ship_syslog.h"
#include "harness.h"

static char directory[64];

static void fresh_directory(void) {
    snprintf(directory, sizeof directory, "/tmp/mbsec-ship-XXXXXX");
    CHECK(mkdtemp(directory) != NULL);
}

static void remove_directory(void) {
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", directory);
    CHECK_EQ(system(command), 0);
}

static int listen_loopback(uint16_t *port) {
    int fd = socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};
    socklen_t length = sizeof address;
    if (fd < 0 || bind(fd, (struct sockaddr *)&address, sizeof address) != 0 ||
        listen(fd, 8) != 0 || getsockname(fd, (struct sockaddr *)&address, &length) != 0)
        return -1;
    *port = ntohs(address.sin_port);
    return fd;
}

/* Accepts one connection within `ms`: its descriptor, or -1. */
static int accept_within(int listener, int ms) {
    struct pollfd wait = {listener, POLLIN, 0};
    if (poll(&wait, 1, ms) <= 0)
        return -1;
    return accept4(listener, NULL, NULL, SOCK_CLOEXEC);
}

/* Reads exactly `length` bytes within `ms` each: 0, or -1 at end of stream or timeout. */
static int read_exact(int fd, void *buffer, size_t length, int ms) {
    size_t got = 0;
    while (got < length) {
        struct pollfd wait = {fd, POLLIN, 0};
        if (poll(&wait, 1, ms) <= 0)
            return -1;
        ssize_t n = read(fd, (char *)buffer + got, length - got);
        if (n <= 0)
            return -1;
        got += (size_t)n;
    }
    return 0;
}

static void write_all(int fd, const void *data, size_t length) {
    const char *at = data;
    while (length > 0) {
        ssize_t n = send(fd, at, length, MSG_NOSIGNAL);
        if (n <= 0)
            return;
        at += n;
        length -= (size_t)n;
    }
}

/* ---- a scripted MQTT broker ---- */

struct packet {
    unsigned type;
    uint32_t length;
    uint8_t body[4096];
};

/* Reads one packet: 0, or -1 (end, timeout, or a packet larger than the buffer). */
static int read_packet(int fd, struct packet *packet, int ms) {
    uint8_t byte;
    if (read_exact(fd, &byte, 1, ms) != 0)
        return -1;
    packet->type = byte;
    uint8_t length[4];
    size_t used = 0;
    uint32_t value;
    int rc = 0;
    while (rc == 0 && used < 4) {
        if (read_exact(fd, &length[used++], 1, ms) != 0)
            return -1;
        rc = ship_mqtt_varint(length, used, &value);
    }
    if (rc <= 0 || value > sizeof packet->body)
        return -1;
    packet->length = value;
    return read_exact(fd, packet->body, value, ms);
}

/* The number in a PUBLISH's payload {"n":N}, and its packet id. */
static int publish_number(const struct packet *packet, int protocol, unsigned *id) {
    size_t topic = (size_t)packet->body[0] << 8 | packet->body[1];
    size_t at = 2 + topic;
    *id = (unsigned)packet->body[at] << 8 | packet->body[at + 1];
    at += 2 + (protocol == 5 ? 1 : 0);
    int number = -1;
    char text[64] = "";
    size_t length = packet->length - at < sizeof text - 1 ? packet->length - at : sizeof text - 1;
    memcpy(text, packet->body + at, length);
    sscanf(text, "{\"n\":%d", &number);
    return number;
}

static void puback(int fd, unsigned id, int protocol, unsigned reason) {
    uint8_t packet[5] = {0x40, 2, (uint8_t)(id >> 8), (uint8_t)id, (uint8_t)reason};
    if (protocol == 5 && reason != 0)
        packet[1] = 3;
    write_all(fd, packet, 2 + packet[1]);
}

enum broker_script { REFUSE, WINDOW, GARBAGE, SHUFFLE };

struct broker {
    int listener;
    enum broker_script script;
    int protocol;
    int records; /* how many the test sends */
    /* what the broker saw */
    int connections;
    int max_in_flight;
    int seen[256]; /* PUBLISH per record number */
    int refused_here;
};

/* Answers CONNECT: a CONNACK with `code` (and, for MQTT 5, Receive Maximum 2 and Maximum Packet
 * Size 300 when `limits`). Returns 0 when the CONNECT was one. */
static int connack(struct broker *broker, int fd, unsigned code, int limits) {
    struct packet packet;
    if (read_packet(fd, &packet, 5000) != 0 || packet.type >> 4 != 1)
        return -1;
    if (broker->protocol == 5) {
        uint8_t with[] = {0x20, 11, 0, (uint8_t)code, 8, 0x21, 0, 2, 0x27, 0, 0, 1, 44};
        uint8_t without[] = {0x20, 3, 0, (uint8_t)code, 0};
        if (limits)
            write_all(fd, with, sizeof with);
        else
            write_all(fd, without, sizeof without);
    } else {
        uint8_t v3[] = {0x20, 2, 0, (uint8_t)code};
        write_all(fd, v3, sizeof v3);
    }
    return 0;
}

static void *broker_run(void *argument) {
    struct broker *broker = argument;
    for (;;) {
        int fd = accept_within(broker->listener, 8000);
        if (fd < 0)
            return NULL;
        broker->connections++;
        if (broker->script == REFUSE) {
            connack(broker, fd, broker->protocol == 5 ? 0x86 : 5, 0);
            close(fd);
            if (broker->connections >= 2)
                return NULL;
            continue;
        }
        if (connack(broker, fd, 0, broker->script == WINDOW) != 0) {
            close(fd);
            continue;
        }
        if (broker->script == GARBAGE && broker->connections == 1) {
            /* A PUBLISH to a client that subscribed to nothing. */
            uint8_t publish[] = {0x30, 5, 0, 1, 'x', 'h', 'i'};
            write_all(fd, publish, sizeof publish);
        } else if (broker->script == GARBAGE && broker->connections == 2) {
            /* A remaining length of five bytes: malformed. */
            uint8_t bad[] = {0xD0, 0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
            write_all(fd, bad, sizeof bad);
        }
        unsigned pending[8];
        int pending_count = 0, total = 0;
        for (;;) {
            struct packet packet;
            if (read_packet(fd, &packet, 300) != 0) {
                /* Nothing more for a while (or the end): what waits is acknowledged. */
                if (pending_count == 0 || broker->script != WINDOW)
                    break;
                for (int i = 0; i < pending_count; i++)
                    puback(fd, pending[i], 5, 0);
                pending_count = 0;
                continue;
            }
            unsigned type = packet.type >> 4;
            if (type == 12) {
                uint8_t pong[] = {0xD0, 0};
                write_all(fd, pong, sizeof pong);
                continue;
            }
            if (type == 14)
                break;
            if (type != 3)
                continue;
            unsigned id;
            int number = publish_number(&packet, broker->protocol, &id);
            if (number >= 0 && number < 256)
                broker->seen[number]++;
            total++;
            if (broker->script == WINDOW) {
                pending[pending_count++] = id;
                if (pending_count > broker->max_in_flight)
                    broker->max_in_flight = pending_count;
                if (pending_count == 2) {
                    int refuse = number % 3 == 0;
                    broker->refused_here += refuse;
                    puback(fd, pending[0], 5, 0);
                    puback(fd, pending[1], 5, refuse ? 0x87 : 0);
                    pending_count = 0;
                }
            } else if (broker->script == SHUFFLE && broker->connections == 1) {
                pending[pending_count++] = id;
                if (pending_count == 3) {
                    puback(fd, pending[2], broker->protocol, 0);
                    puback(fd, pending[0], broker->protocol, 0);
                    puback(fd, pending[1], broker->protocol, 0);
                    pending_count = 0;
                }
                if (total == 5) {
                    /* Two in flight, unacknowledged, when the connection drops: an orderly
                     * goodbye, so that the acknowledgements sent are not reset away. */
                    shutdown(fd, SHUT_WR);
                    while (read_packet(fd, &packet, 2000) == 0) {
                    }
                    break;
                }
            } else {
                puback(fd, id, broker->protocol, 0);
            }
        }
        close(fd);
        if (broker->script != SHUFFLE || broker->connections >= 2) {
            if (broker->script != GARBAGE || broker->connections >= 3)
                return NULL;
        }
    }
}

static struct ship *open_mqtt(uint16_t port, int protocol) {
    struct ship_mqtt_config link_config = {
        .host = "127.0.0.1",
        .port = port,
        .protocol = protocol,
        .client_id = "ship-test",
        .keepalive_s = 30,
        .prefix = "t",
    };
    struct ship_link *link = NULL;
    char error[300];
    CHECK_EQ(ship_mqtt_create(&link_config, &link, error, sizeof error), 0);
    struct ship_config config = {.name = "mqtt test", .spool = directory};
    struct ship *ship = NULL;
    CHECK_EQ(ship_open(&config, link, &ship, error, sizeof error), 0);
    return ship;
}

static void push_numbered(struct ship *ship, int first, int count, size_t pad) {
    char json[1024];
    for (int i = first; i < first + count; i++) {
        int length = snprintf(json, sizeof json, "{\"n\":%d,\"pad\":\"", i);
        for (size_t p = 0; p < pad && (size_t)length < sizeof json - 3; p++)
            json[length++] = 'x';
        snprintf(json + length, sizeof json - (size_t)length, "\"}");
        ship_push(ship, 6, "read", json);
    }
}

TEST(a_broker_that_refuses_the_client_is_reported_and_nothing_is_lost) {
    fresh_directory();
    uint16_t port;
    struct broker broker = {.listener = listen_loopback(&port), .script = REFUSE, .protocol = 4};
    pthread_t thread;
    pthread_create(&thread, NULL, broker_run, &broker);
    struct ship *ship = open_mqtt(port, 4);
    push_numbered(ship, 0, 5, 0);
    CHECK_EQ(ship_drain(ship, 1500), 0);
    char error[512] = "";
    CHECK_EQ(ship_take_error(ship, error, sizeof error), 1);
    CHECK(strstr(error, "the broker refused the connection: not authorized") != NULL);
    struct ship_stats stats;
    ship_stats(ship, &stats);
    CHECK_EQ(stats.delivered, 0);
    CHECK_EQ(stats.queued, 5);
    CHECK(stats.failures >= 1);
    ship_close(ship);
    pthread_join(thread, NULL);
    close(broker.listener);
    remove_directory();
}

TEST(mqtt5_window_packet_size_and_refusals_are_honoured) {
    fresh_directory();
    uint16_t port;
    struct broker broker = {.listener = listen_loopback(&port), .script = WINDOW, .protocol = 5};
    pthread_t thread;
    pthread_create(&thread, NULL, broker_run, &broker);
    struct ship *ship = open_mqtt(port, 5);
    push_numbered(ship, 0, 30, 10);
    push_numbered(ship, 30, 1, 400); /* larger than the broker's 300-byte packets */
    push_numbered(ship, 31, 9, 10);
    CHECK_EQ(ship_drain(ship, 5000), 1);
    struct ship_stats stats;
    ship_stats(ship, &stats);
    CHECK_EQ(stats.delivered, 40);
    CHECK_EQ(stats.refused, broker.refused_here + 1);
    CHECK(broker.refused_here > 0);
    ship_close(ship);
    pthread_join(thread, NULL);
    CHECK_EQ(broker.max_in_flight, 2);
    CHECK_EQ(broker.seen[30], 0); /* never sent */
    for (int i = 0; i < 40; i++)
        if (i != 30)
            CHECK_EQ(broker.seen[i], 1);
    close(broker.listener);
    remove_directory();
}

TEST(a_broker_that_sends_what_no_broker_sends_is_left_and_the_records_sent_again) {
    fresh_directory();
    uint16_t port;
    struct broker broker = {.listener = listen_loopback(&port), .script = GARBAGE, .protocol = 4};
    pthread_t thread;
    pthread_create(&thread, NULL, broker_run, &broker);
    struct ship *ship = open_mqtt(port, 4);
    push_numbered(ship, 0, 10, 0);
    CHECK_EQ(ship_drain(ship, 8000), 1);
    char error[512] = "";
    CHECK_EQ(ship_take_error(ship, error, sizeof error), 1);
    CHECK(strstr(error, "protocol error") != NULL);
    ship_close(ship);
    pthread_join(thread, NULL);
    CHECK_EQ(broker.connections, 3);
    for (int i = 0; i < 10; i++)
        CHECK(broker.seen[i] >= 1);
    close(broker.listener);
    remove_directory();
}

TEST(acknowledgements_out_of_order_and_a_lost_connection_lose_nothing) {
    fresh_directory();
    uint16_t port;
    struct broker broker = {.listener = listen_loopback(&port), .script = SHUFFLE, .protocol = 4};
    pthread_t thread;
    pthread_create(&thread, NULL, broker_run, &broker);
    struct ship *ship = open_mqtt(port, 4);
    push_numbered(ship, 0, 8, 0);
    CHECK_EQ(ship_drain(ship, 8000), 1);
    ship_close(ship);
    pthread_join(thread, NULL);
    CHECK_EQ(broker.connections, 2);
    /* 0..2 were acknowledged (out of order) and not sent again; 3 and 4 were in flight when the
     * connection dropped and came again; 5.. at least once. */
    for (int i = 0; i < 3; i++)
        CHECK_EQ(broker.seen[i], 1);
    for (int i = 3; i < 5; i++)
        CHECK_EQ(broker.seen[i], 2);
    for (int i = 5; i < 8; i++)
        CHECK(broker.seen[i] >= 1);
    close(broker.listener);
    remove_directory();
}

/* ---- syslog collectors ---- */

struct collector {
    int listener;
    int stall; /* accept, then read nothing until `go` */
    volatile int go;
    int hang_up_after; /* frames, on the first connection; 0: never */
    int connections;
    int bad_frames;
    int seen[20000];
};

static void *collector_run(void *argument) {
    struct collector *collector = argument;
    for (;;) {
        int fd = accept_within(collector->listener, 8000);
        if (fd < 0)
            return NULL;
        collector->connections++;
        while (collector->stall && !collector->go)
            usleep(10000);
        int frames = 0;
        char length_text[16];
        for (;;) {
            size_t used = 0;
            while (used < sizeof length_text - 1 &&
                   read_exact(fd, &length_text[used], 1, 3000) == 0 && length_text[used] != ' ')
                used++;
            if (used == 0 || length_text[used] != ' ')
                break;
            length_text[used] = '\0';
            long length = strtol(length_text, NULL, 10);
            static char message[65536];
            if (length <= 0 || length >= (long)sizeof message ||
                read_exact(fd, message, (size_t)length, 500) != 0) {
                collector->bad_frames++;
                break;
            }
            message[length] = '\0';
            int number = -1;
            const char *json = strstr(message, " - {");
            if (strncmp(message, "<110>1 ", 7) != 0 || json == NULL ||
                sscanf(json, " - {\"n\":%d", &number) != 1 || number < 0 || number >= 20000)
                collector->bad_frames++;
            else
                collector->seen[number]++;
            if (collector->connections == 1 && ++frames == collector->hang_up_after)
                break;
        }
        close(fd);
        if (collector->connections >= 2 || collector->hang_up_after == 0)
            return NULL;
    }
}

static struct ship *open_syslog(uint16_t port) {
    struct ship_syslog_config link_config = {
        .host = "127.0.0.1",
        .port = port,
        .hostname = "test-host",
        .app_name = "mbsec-gateway",
        .facility = 13,
    };
    struct ship_link *link = NULL;
    char error[300];
    CHECK_EQ(ship_syslog_create(&link_config, &link, error, sizeof error), 0);
    struct ship_config config = {.name = "syslog test", .spool = directory};
    struct ship *ship = NULL;
    CHECK_EQ(ship_open(&config, link, &ship, error, sizeof error), 0);
    return ship;
}

TEST(a_collector_that_hangs_up_halfway_gets_every_record_in_frames_that_count_right) {
    fresh_directory();
    uint16_t port;
    static struct collector collector;
    memset(&collector, 0, sizeof collector);
    collector.listener = listen_loopback(&port);
    collector.hang_up_after = 40;
    pthread_t thread;
    pthread_create(&thread, NULL, collector_run, &collector);
    struct ship *ship = open_syslog(port);
    push_numbered(ship, 0, 200, 50);
    CHECK_EQ(ship_drain(ship, 8000), 1);
    ship_close(ship);
    pthread_join(thread, NULL);
    CHECK_EQ(collector.connections, 2);
    CHECK_EQ(collector.bad_frames, 0);
    int missing = 0;
    for (int i = 0; i < 200; i++)
        missing += collector.seen[i] == 0;
    CHECK_EQ(missing, 0);
    close(collector.listener);
    remove_directory();
}

TEST(a_stalled_collector_never_stalls_the_caller_and_gets_everything_once_it_reads) {
    fresh_directory();
    uint16_t port;
    static struct collector collector;
    memset(&collector, 0, sizeof collector);
    collector.listener = listen_loopback(&port);
    collector.stall = 1;
    pthread_t thread;
    pthread_create(&thread, NULL, collector_run, &collector);
    struct ship *ship = open_syslog(port);
    /* Far more than the socket buffers hold: the caller goes on regardless. */
    push_numbered(ship, 0, 20000, 200);
    struct ship_stats stats;
    ship_stats(ship, &stats);
    CHECK_EQ(stats.taken, 20000);
    CHECK(stats.queued > 0);
    collector.go = 1;
    CHECK_EQ(ship_drain(ship, 20000), 1);
    ship_stats(ship, &stats);
    CHECK_EQ(stats.delivered, 20000);
    CHECK_EQ(stats.dropped, 0);
    ship_close(ship);
    pthread_join(thread, NULL);
    int missing = 0;
    for (int i = 0; i < 20000; i++)
        missing += collector.seen[i] != 1;
    CHECK_EQ(missing, 0);
    CHECK_EQ(collector.bad_frames, 0);
    close(collector.listener);
    remove_directory();
}

TEST(records_survive_encoding_and_bad_encodings_are_refused) {
    uint8_t buffer[256];
    size_t length = ship_encode(buffer, sizeof buffer, 4, 1765000000123LL, "denied", "{}", 2);
    struct ship_record record;
    CHECK_EQ(ship_decode(buffer, length, &record), 0);
    CHECK_EQ(record.severity, 4);
    CHECK_EQ(record.time_ms, 1765000000123LL);
    CHECK_STR(record.msgid, "denied");
    CHECK_EQ(record.json_length, 2);
    CHECK_EQ(ship_decode(buffer, 5, &record), -1);
    buffer[0] = 9;
    CHECK_EQ(ship_decode(buffer, length, &record), -1);
    CHECK_EQ(ship_encode(buffer, 8, 4, 0, "denied", "{}", 2), 0);
    char time[40];
    /* The RFC 5424 header the stream link and the datagram sink share. */
    char header[128];
    int header_length = ship_syslog_header(header, sizeof header, 13, 4, 1765000000123ULL, "host",
                                           "mbsec-gateway", 42, "denied");
    CHECK_STR(header, "<108>1 2025-12-06T05:46:40.123Z host mbsec-gateway 42 denied - ");
    CHECK_EQ(header_length, (int)strlen(header));
    ship_syslog_header(header, sizeof header, 13, 6, 1765000000123ULL, "host", "app", 42, "");
    CHECK_STR(header, "<110>1 2025-12-06T05:46:40.123Z host app 42 - - ");
    CHECK_EQ(ship_syslog_header(header, 20, 13, 6, 1765000000123ULL, "host", "app", 42, "x"), -1);
    /* The logs' and records' time, cached per second: the same text, across seconds too. */
    log_time_of(1765000000123ULL, time, sizeof time);
    CHECK_STR(time, "2025-12-06T05:46:40.123Z");
    log_time_of(1765000000999ULL, time, sizeof time);
    CHECK_STR(time, "2025-12-06T05:46:40.999Z");
    log_time_of(1765000001005ULL, time, sizeof time);
    CHECK_STR(time, "2025-12-06T05:46:41.005Z");
    log_time_of(0, time, sizeof time);
    CHECK_STR(time, "1970-01-01T00:00:00.000Z");
    char small[8] = "x";
    log_time_of(1765000000123ULL, small, sizeof small);
    CHECK_STR(small, "");
    uint32_t value;
    const uint8_t one[] = {0x7F}, two[] = {0x80, 0x01}, five[] = {0xFF, 0xFF, 0xFF, 0xFF, 0x7F};
    CHECK_EQ(ship_mqtt_varint(one, 1, &value), 1);
    CHECK_EQ(value, 127);
    CHECK_EQ(ship_mqtt_varint(two, 2, &value), 2);
    CHECK_EQ(value, 128);
    CHECK_EQ(ship_mqtt_varint(two, 1, &value), 0);
    CHECK_EQ(ship_mqtt_varint(five, 5, &value), -1);
}

int main(void) {
    RUN(records_survive_encoding_and_bad_encodings_are_refused);
    RUN(a_broker_that_refuses_the_client_is_reported_and_nothing_is_lost);
    RUN(mqtt5_window_packet_size_and_refusals_are_honoured);
    RUN(a_broker_that_sends_what_no_broker_sends_is_left_and_the_records_sent_again);
    RUN(acknowledgements_out_of_order_and_a_lost_connection_lose_nothing);
    RUN(a_collector_that_hangs_up_halfway_gets_every_record_in_frames_that_count_right);
    RUN(a_stalled_collector_never_stalls_the_caller_and_gets_everything_once_it_reads);
    return harness_result();
}
