/* SPDX-License-Identifier: MIT */
/*
 * The capture reader (src/app/policy/capture.h) on capture files written here byte by byte:
 * pcap and pcapng headers and records around real Ethernet (with VLAN tags), Linux cooked,
 * BSD loopback and raw IP frames, IPv4 and IPv6 headers and TCP segments with options. Each
 * test checks the requests delivered (unit, PDU, client address and port, time, origin) and
 * the counts: TCP put back in order, retransmissions, holes, captures that start mid-stream,
 * TLS, other protocols, bad files, and the bounds on connections and held bytes.
 */
#include <arpa/inet.h>
#include <netinet/in.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#include "app/policy/capture.h"
#include "harness.h"

/* ---- what the visitor saw ---- */

#define KEPT 64

struct seen {
    uint8_t unit;
    uint8_t pdu[253];
    size_t pdu_length;
    char client[64]; /* "address port" */
    int64_t time_us;
    char origin[256];
};

static struct seen seen[KEPT];
static size_t seen_count;
static size_t stop_after; /* 0: never stop */

static int visit(void *data, const struct observed *request) {
    (void)data;
    if (seen_count < KEPT) {
        struct seen *at = &seen[seen_count];
        at->unit = request->unit;
        memcpy(at->pdu, request->pdu, request->pdu_length);
        at->pdu_length = request->pdu_length;
        char text[INET6_ADDRSTRLEN] = "?";
        int port = 0;
        if (request->address.ss_family == AF_INET) {
            const struct sockaddr_in *address = (const struct sockaddr_in *)&request->address;
            inet_ntop(AF_INET, &address->sin_addr, text, sizeof text);
            port = ntohs(address->sin_port);
        } else if (request->address.ss_family == AF_INET6) {
            const struct sockaddr_in6 *address = (const struct sockaddr_in6 *)&request->address;
            inet_ntop(AF_INET6, &address->sin6_addr, text, sizeof text);
            port = ntohs(address->sin6_port);
        }
        snprintf(at->client, sizeof at->client, "%s %d", text, port);
        at->time_us = request->time_us;
        snprintf(at->origin, sizeof at->origin, "%s", request->origin);
        CHECK(request->role == NULL);
        CHECK_EQ(request->tls, 0);
    }
    seen_count++;
    if (stop_after != 0 && seen_count == stop_after)
        return 7;
    return 0;
}

/* ---- writing capture files ---- */

enum link {
    LINK_ETHERNET,
    LINK_VLAN, /* Ethernet with an 802.1ad tag and an 802.1Q tag inside */
    LINK_SLL,  /* Linux cooked, tcpdump -i any */
    LINK_SLL2, /* Linux cooked v2, tshark -i any */
    LINK_NULL, /* BSD loopback, the family in the capturing machine's (little-endian) order */
    LINK_RAW,  /* raw IP */
};

static const int linktypes[] = {1, 1, 113, 276, 0, 101};

struct capture {
    char path[160];
    FILE *file;
    int pcapng;
    enum link link;
    int64_t time_us; /* of the next record; each record advances it by 1 ms */
    uint32_t records;
};

static char directory[64];

static void fresh_directory(void) {
    if (directory[0] != '\0')
        return;
    snprintf(directory, sizeof directory, "/tmp/mbsec-capture-XXXXXX");
    CHECK(mkdtemp(directory) != NULL);
}

static void remove_directory(void) {
    char command[128];
    snprintf(command, sizeof command, "rm -rf '%s'", directory);
    CHECK_EQ(system(command), 0);
}

static void put16le(FILE *file, uint16_t value) {
    uint8_t bytes[2] = {(uint8_t)value, (uint8_t)(value >> 8)};
    fwrite(bytes, 1, 2, file);
}

static void put32le(FILE *file, uint32_t value) {
    uint8_t bytes[4] = {(uint8_t)value, (uint8_t)(value >> 8), (uint8_t)(value >> 16),
                        (uint8_t)(value >> 24)};
    fwrite(bytes, 1, 4, file);
}

#define START_US 1700000000000000LL

static void capture_begin(struct capture *capture, const char *name, enum link link, int pcapng) {
    fresh_directory();
    memset(capture, 0, sizeof *capture);
    snprintf(capture->path, sizeof capture->path, "%s/%s", directory, name);
    capture->file = fopen(capture->path, "wb");
    CHECK(capture->file != NULL);
    capture->link = link;
    capture->pcapng = pcapng;
    capture->time_us = START_US;
    FILE *file = capture->file;
    if (!pcapng) {
        put32le(file, 0xA1B2C3D4); /* microseconds, little-endian */
        put16le(file, 2);
        put16le(file, 4);
        put32le(file, 0);
        put32le(file, 0);
        put32le(file, 65535);
        put32le(file, (uint32_t)linktypes[link]);
        return;
    }
    /* Section header block: no options, section length unknown. */
    put32le(file, 0x0A0D0D0A);
    put32le(file, 28);
    put32le(file, 0x1A2B3C4D);
    put16le(file, 1);
    put16le(file, 0);
    put32le(file, 0xFFFFFFFF);
    put32le(file, 0xFFFFFFFF);
    put32le(file, 28);
    /* Interface description block: microsecond timestamps (the default). */
    put32le(file, 1);
    put32le(file, 20);
    put16le(file, (uint16_t)linktypes[link]);
    put16le(file, 0);
    put32le(file, 65535);
    put32le(file, 20);
}

/* One record of `captured` bytes of a packet that was `wire` bytes long. */
static void capture_record(struct capture *capture, const uint8_t *bytes, size_t captured,
                           size_t wire) {
    FILE *file = capture->file;
    uint32_t seconds = (uint32_t)(capture->time_us / 1000000);
    uint32_t micros = (uint32_t)(capture->time_us % 1000000);
    if (!capture->pcapng) {
        put32le(file, seconds);
        put32le(file, micros);
        put32le(file, (uint32_t)captured);
        put32le(file, (uint32_t)wire);
        fwrite(bytes, 1, captured, file);
    } else {
        size_t padded = (captured + 3) & ~(size_t)3;
        uint64_t stamp = (uint64_t)capture->time_us;
        put32le(file, 6);
        put32le(file, (uint32_t)(32 + padded));
        put32le(file, 0);
        put32le(file, (uint32_t)(stamp >> 32));
        put32le(file, (uint32_t)stamp);
        put32le(file, (uint32_t)captured);
        put32le(file, (uint32_t)wire);
        fwrite(bytes, 1, captured, file);
        static const uint8_t zeros[4] = {0};
        fwrite(zeros, 1, padded - captured, file);
        put32le(file, (uint32_t)(32 + padded));
    }
    capture->time_us += 1000;
    capture->records++;
}

static void capture_end(struct capture *capture) {
    CHECK_EQ(fclose(capture->file), 0);
    capture->file = NULL;
}

/* ---- building packets ---- */

#define FIN 0x01
#define SYN 0x02
#define RST 0x04
#define PSH 0x08
#define ACK 0x10

struct tcp {
    int ipv6;
    const char *client, *server;
    uint16_t client_port, server_port;
    uint32_t client_seq, server_seq; /* the next byte each side sends */
};

static size_t put_link(uint8_t *out, enum link link, int ipv6) {
    uint16_t ethertype = ipv6 ? 0x86DD : 0x0800;
    static const uint8_t macs[12] = {0x02, 0, 0, 0, 0, 0x02, 0x02, 0, 0, 0, 0, 0x01};
    size_t at = 0;
    switch (link) {
    case LINK_ETHERNET:
    case LINK_VLAN:
        memcpy(out, macs, 12);
        at = 12;
        if (link == LINK_VLAN) {
            static const uint8_t tags[8] = {0x88, 0xA8, 0x00, 0x64, 0x81, 0x00, 0x00, 0x0A};
            memcpy(out + at, tags, 8);
            at += 8;
        }
        out[at++] = (uint8_t)(ethertype >> 8);
        out[at++] = (uint8_t)ethertype;
        return at;
    case LINK_SLL: {
        const uint8_t header[16] = {0x00,
                                    0x00,
                                    0x00,
                                    0x01,
                                    0x00,
                                    0x06,
                                    0x02,
                                    0x00,
                                    0x00,
                                    0x00,
                                    0x00,
                                    0x01,
                                    0x00,
                                    0x00,
                                    (uint8_t)(ethertype >> 8),
                                    (uint8_t)ethertype};
        memcpy(out, header, 16);
        return 16;
    }
    case LINK_SLL2: {
        const uint8_t header[20] = {(uint8_t)(ethertype >> 8),
                                    (uint8_t)ethertype,
                                    0,
                                    0,
                                    0,
                                    0,
                                    0,
                                    2,
                                    0x00,
                                    0x01,
                                    0x00,
                                    0x06,
                                    0x02,
                                    0,
                                    0,
                                    0,
                                    0,
                                    0x01,
                                    0,
                                    0};
        memcpy(out, header, 20);
        return 20;
    }
    case LINK_NULL: {
        uint32_t family = ipv6 ? 30 : 2; /* macOS's AF_INET6 */
        out[0] = (uint8_t)family;
        out[1] = out[2] = out[3] = 0;
        return 4;
    }
    case LINK_RAW:
        return 0;
    }
    return 0;
}

static uint16_t checksum(const uint8_t *bytes, size_t length) {
    uint32_t sum = 0;
    for (size_t i = 0; i + 1 < length; i += 2)
        sum += (uint32_t)(bytes[i] << 8 | bytes[i + 1]);
    if (length & 1)
        sum += (uint32_t)bytes[length - 1] << 8;
    while (sum >> 16)
        sum = (sum & 0xFFFF) + (sum >> 16);
    return (uint16_t)~sum;
}

/* Writes the packet (link, IP, TCP with a timestamp option, payload, then `trailer` bytes of
 * Ethernet padding) and returns its length. */
static size_t build(uint8_t *out, enum link link, const struct tcp *tcp, int to_server,
                    uint32_t seq, uint32_t ack, uint8_t flags, const uint8_t *payload,
                    size_t length, size_t trailer) {
    size_t at = put_link(out, link, tcp->ipv6);
    const char *source = to_server ? tcp->client : tcp->server;
    const char *destination = to_server ? tcp->server : tcp->client;
    size_t tcp_length = 32 + length;
    if (!tcp->ipv6) {
        uint8_t *ip = out + at;
        size_t total = 20 + tcp_length;
        const uint8_t header[12] = {
            0x45, 0, (uint8_t)(total >> 8), (uint8_t)total, 0x12, 0x34, 0x40, 0, 64, 6, 0, 0};
        memcpy(ip, header, 12);
        CHECK_EQ(inet_pton(AF_INET, source, ip + 12), 1);
        CHECK_EQ(inet_pton(AF_INET, destination, ip + 16), 1);
        uint16_t sum = checksum(ip, 20);
        ip[10] = (uint8_t)(sum >> 8);
        ip[11] = (uint8_t)sum;
        at += 20;
    } else {
        /* With a hop-by-hop options header (8 bytes of padding) before TCP. */
        uint8_t *ip = out + at;
        size_t payload_length = 8 + tcp_length;
        const uint8_t header[8] = {
            0x60, 0, 0, 0, (uint8_t)(payload_length >> 8), (uint8_t)payload_length, 0, 64};
        memcpy(ip, header, 8);
        CHECK_EQ(inet_pton(AF_INET6, source, ip + 8), 1);
        CHECK_EQ(inet_pton(AF_INET6, destination, ip + 24), 1);
        const uint8_t hop_by_hop[8] = {6, 0, 1, 4, 0, 0, 0, 0};
        memcpy(ip + 40, hop_by_hop, 8);
        at += 48;
    }
    uint8_t *segment = out + at;
    uint16_t source_port = to_server ? tcp->client_port : tcp->server_port;
    uint16_t destination_port = to_server ? tcp->server_port : tcp->client_port;
    const uint8_t header[32] = {
        (uint8_t)(source_port >> 8), (uint8_t)source_port, (uint8_t)(destination_port >> 8),
        (uint8_t)destination_port, (uint8_t)(seq >> 24), (uint8_t)(seq >> 16), (uint8_t)(seq >> 8),
        (uint8_t)seq, (uint8_t)(ack >> 24), (uint8_t)(ack >> 16), (uint8_t)(ack >> 8), (uint8_t)ack,
        0x80, flags, 0xFF, 0xFF, 0, 0, 0, 0,
        /* NOP, NOP, timestamps */
        1, 1, 8, 10, 0, 0, 0, 1, 0, 0, 0, 0};
    memcpy(segment, header, 32);
    if (length > 0)
        memcpy(segment + 32, payload, length);
    at += 32 + length;
    memset(out + at, 0, trailer);
    return at + trailer;
}

/* One segment from a side, at that side's sequence number, which it then advances. */
static void send_segment(struct capture *capture, struct tcp *tcp, int to_server, uint8_t flags,
                         const uint8_t *payload, size_t length) {
    uint8_t packet[2048];
    uint32_t *seq = to_server ? &tcp->client_seq : &tcp->server_seq;
    uint32_t ack = to_server ? tcp->server_seq : tcp->client_seq;
    size_t size = build(packet, capture->link, tcp, to_server, *seq, ack, flags, payload, length,
                        capture->link == LINK_ETHERNET ? 4 : 0);
    capture_record(capture, packet, size, size);
    *seq += (uint32_t)length + ((flags & (SYN | FIN)) ? 1u : 0u);
}

static void client_sends(struct capture *capture, struct tcp *tcp, const uint8_t *bytes,
                         size_t length) {
    send_segment(capture, tcp, 1, PSH | ACK, bytes, length);
}

static void server_sends(struct capture *capture, struct tcp *tcp, const uint8_t *bytes,
                         size_t length) {
    send_segment(capture, tcp, 0, PSH | ACK, bytes, length);
}

static void handshake(struct capture *capture, struct tcp *tcp) {
    send_segment(capture, tcp, 1, SYN, NULL, 0);
    send_segment(capture, tcp, 0, SYN | ACK, NULL, 0);
    send_segment(capture, tcp, 1, ACK, NULL, 0);
}

static struct tcp tcp_v4(uint16_t client_port) {
    struct tcp tcp = {0, "192.0.2.10", "192.0.2.1", client_port, 502, 1000, 5000};
    return tcp;
}

/* ---- reading ---- */

static struct capture_stats stats;
static char error[256];

static int read_capture(const char *path, const struct capture_options *options) {
    memset(seen, 0, sizeof seen);
    seen_count = 0;
    memset(error, 'x', sizeof error);
    return capture_read(path, options, visit, NULL, &stats, error, sizeof error);
}

/* Requests used throughout: the guide's example and a few others. */
static const uint8_t read_4[] = {0x15, 0x01, 0x00, 0x00, 0x00, 0x06,
                                 0xFF, 0x03, 0x00, 0x04, 0x00, 0x01};
static const uint8_t write_100[] = {0x00, 0x02, 0x00, 0x00, 0x00, 0x09, 0x01, 0x10,
                                    0x00, 0x64, 0x00, 0x01, 0x02, 0x01, 0xF4};
static const uint8_t coil_7[] = {0x00, 0x03, 0x00, 0x00, 0x00, 0x06,
                                 0x11, 0x05, 0x00, 0x07, 0xFF, 0x00};
static const uint8_t answer_4[] = {0x15, 0x01, 0x00, 0x00, 0x00, 0x05,
                                   0xFF, 0x03, 0x02, 0x12, 0x34};

#define CHECK_READ_4(at) \
    CHECK_BYTES(seen[at].pdu, seen[at].pdu_length, 0x03, 0x00, 0x04, 0x00, 0x01)
#define CHECK_WRITE_100(at) \
    CHECK_BYTES(seen[at].pdu, seen[at].pdu_length, 0x10, 0x00, 0x64, 0x00, 0x01, 0x02, 0x01, 0xF4)
#define CHECK_COIL_7(at) \
    CHECK_BYTES(seen[at].pdu, seen[at].pdu_length, 0x05, 0x00, 0x07, 0xFF, 0x00)

static void check_origin(size_t at, const struct capture *capture, unsigned packet) {
    char want[256];
    snprintf(want, sizeof want, "%s: packet %u", capture->path, packet);
    CHECK_STR(seen[at].origin, want);
    CHECK_EQ(seen[at].time_us, START_US + (int64_t)(packet - 1) * 1000);
}

/* ---- tests ---- */

TEST(in_order_stream_delivers_each_request_with_unit_pdu_client_and_time) {
    struct capture capture;
    capture_begin(&capture, "in-order.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40001);
    handshake(&capture, &tcp);                                 /* packets 1-3 */
    client_sends(&capture, &tcp, read_4, sizeof read_4);       /* 4 */
    client_sends(&capture, &tcp, write_100, sizeof write_100); /* 5 */
    client_sends(&capture, &tcp, coil_7, sizeof coil_7);       /* 6 */
    send_segment(&capture, &tcp, 1, FIN | ACK, NULL, 0);
    send_segment(&capture, &tcp, 0, FIN | ACK, NULL, 0);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 3);
    CHECK_EQ(seen[0].unit, 0xFF);
    CHECK_READ_4(0);
    CHECK_STR(seen[0].client, "192.0.2.10 40001");
    check_origin(0, &capture, 4);
    CHECK_EQ(seen[1].unit, 0x01);
    CHECK_WRITE_100(1);
    check_origin(1, &capture, 5);
    CHECK_EQ(seen[2].unit, 0x11);
    CHECK_COIL_7(2);
    check_origin(2, &capture, 6);
    CHECK_EQ(stats.packets, 8);
    CHECK_EQ(stats.modbus_packets, 8);
    CHECK_EQ(stats.requests, 3);
    CHECK_EQ(stats.streams, 1);
    CHECK_EQ(stats.resynced, 0);
    CHECK_EQ(stats.not_modbus, 0);
    CHECK_EQ(stats.other_packets, 0);
    CHECK_EQ(stats.gaps, 0);
    CHECK_EQ(stats.retransmitted, 0);
    long size = 0;
    FILE *file = fopen(capture.path, "rb");
    CHECK(file != NULL && fseek(file, 0, SEEK_END) == 0);
    size = ftell(file);
    fclose(file);
    CHECK_EQ(stats.bytes, size);
}

TEST(responses_are_counted_not_delivered) {
    struct capture capture;
    capture_begin(&capture, "both-directions.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40002);
    handshake(&capture, &tcp);
    for (int i = 0; i < 3; i++) {
        client_sends(&capture, &tcp, read_4, sizeof read_4);
        server_sends(&capture, &tcp, answer_4, sizeof answer_4);
    }
    /* An exception response too. */
    server_sends(&capture, &tcp, BYTES(0x15, 0x02, 0x00, 0x00, 0x00, 0x03, 0xFF, 0x83, 0x02));
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 3);
    for (size_t i = 0; i < 3; i++)
        CHECK_READ_4(i);
    CHECK_EQ(stats.requests, 3);
    CHECK_EQ(stats.responses, 4);
    CHECK_EQ(stats.not_modbus, 0);
}

TEST(a_frame_split_over_three_segments_is_delivered_once_from_its_last_packet) {
    struct capture capture;
    capture_begin(&capture, "split.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40003);
    handshake(&capture, &tcp);
    client_sends(&capture, &tcp, write_100, 4);          /* 4: inside the MBAP header */
    client_sends(&capture, &tcp, write_100 + 4, 5);      /* 5 */
    client_sends(&capture, &tcp, write_100 + 9, 6);      /* 6: the end */
    client_sends(&capture, &tcp, read_4, sizeof read_4); /* 7 */
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 2);
    CHECK_WRITE_100(0);
    check_origin(0, &capture, 6);
    CHECK_READ_4(1);
    check_origin(1, &capture, 7);
    CHECK_EQ(stats.not_modbus, 0);
}

TEST(two_frames_in_one_segment_and_one_across_the_next_are_all_delivered) {
    struct capture capture;
    capture_begin(&capture, "two-in-one.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40004);
    handshake(&capture, &tcp);
    uint8_t bytes[64];
    memcpy(bytes, read_4, sizeof read_4);
    memcpy(bytes + 12, write_100, sizeof write_100);
    memcpy(bytes + 27, coil_7, sizeof coil_7);
    client_sends(&capture, &tcp, bytes, 30); /* two frames and 3 bytes of the third */
    client_sends(&capture, &tcp, bytes + 30, 9);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 3);
    CHECK_READ_4(0);
    check_origin(0, &capture, 4);
    CHECK_WRITE_100(1);
    check_origin(1, &capture, 4);
    CHECK_COIL_7(2);
    check_origin(2, &capture, 5);
}

TEST(retransmissions_exact_and_overlapping_are_dropped_and_counted) {
    struct capture capture;
    capture_begin(&capture, "retransmission.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40005);
    handshake(&capture, &tcp);
    uint32_t start = tcp.client_seq;
    client_sends(&capture, &tcp, read_4, sizeof read_4);
    /* The same segment again. */
    tcp.client_seq = start;
    client_sends(&capture, &tcp, read_4, sizeof read_4);
    /* The last 6 bytes of the first frame again, with the first 8 of the next. */
    uint8_t overlap[14];
    memcpy(overlap, read_4 + 6, 6);
    memcpy(overlap + 6, write_100, 8);
    tcp.client_seq = start + 6;
    client_sends(&capture, &tcp, overlap, sizeof overlap);
    /* The rest of the second frame, overlapping its first 8 bytes again. */
    tcp.client_seq = start + 12;
    client_sends(&capture, &tcp, write_100, sizeof write_100);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 2);
    CHECK_READ_4(0);
    CHECK_WRITE_100(1);
    check_origin(1, &capture, 7);
    CHECK_EQ(stats.retransmitted, 3);
    CHECK_EQ(stats.gaps, 0);
    CHECK_EQ(stats.not_modbus, 0);
}

TEST(two_swapped_segments_are_delivered_in_order) {
    struct capture capture;
    capture_begin(&capture, "swapped.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40006);
    handshake(&capture, &tcp);
    uint32_t start = tcp.client_seq;
    tcp.client_seq = start + sizeof read_4;
    client_sends(&capture, &tcp, write_100, sizeof write_100); /* 4: early */
    tcp.client_seq = start;
    client_sends(&capture, &tcp, read_4, sizeof read_4); /* 5: fills the hole */
    tcp.client_seq = start + sizeof read_4 + sizeof write_100;
    client_sends(&capture, &tcp, coil_7, sizeof coil_7); /* 6 */
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 3);
    CHECK_READ_4(0);
    check_origin(0, &capture, 5);
    CHECK_WRITE_100(1);
    check_origin(1, &capture, 4); /* sent (and captured) first, delivered second */
    CHECK_COIL_7(2);
    CHECK_EQ(stats.out_of_order, 1);
    CHECK_EQ(stats.gaps, 0);
    CHECK_EQ(stats.retransmitted, 0);
}

TEST(a_lost_segment_loses_its_frame_and_the_frames_after_it_are_found_again) {
    struct capture capture;
    capture_begin(&capture, "lost.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40007);
    handshake(&capture, &tcp);
    client_sends(&capture, &tcp, read_4, sizeof read_4); /* 4 */
    client_sends(&capture, &tcp, write_100, 5);          /* 5 */
    tcp.client_seq += 5;                                 /* lost: 5 bytes of the write */
    client_sends(&capture, &tcp, write_100 + 10, 5);     /* 6: the write's end */
    client_sends(&capture, &tcp, coil_7, sizeof coil_7); /* 7 */
    client_sends(&capture, &tcp, read_4, sizeof read_4); /* 8 */
    /* The server acknowledges everything: the capture lost the bytes, not the network. */
    send_segment(&capture, &tcp, 0, ACK, NULL, 0);             /* 9 */
    client_sends(&capture, &tcp, write_100, sizeof write_100); /* 10 */
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 4);
    CHECK_READ_4(0);
    CHECK_COIL_7(1);
    check_origin(1, &capture, 7);
    CHECK_READ_4(2);
    check_origin(2, &capture, 8);
    CHECK_WRITE_100(3);
    check_origin(3, &capture, 10);
    CHECK_EQ(stats.gaps, 1);
    CHECK_EQ(stats.resynced, 1);
    CHECK_EQ(stats.not_modbus, 10); /* the write's first 5 and last 5 bytes */

    /* Without the acknowledgement, the end of the capture declares the hole lost. */
    capture_begin(&capture, "lost-at-end.pcap", LINK_ETHERNET, 0);
    tcp = tcp_v4(40008);
    handshake(&capture, &tcp);
    client_sends(&capture, &tcp, write_100, 5);
    tcp.client_seq += 5;
    client_sends(&capture, &tcp, write_100 + 10, 5);
    client_sends(&capture, &tcp, coil_7, sizeof coil_7);
    client_sends(&capture, &tcp, read_4, sizeof read_4);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 2);
    CHECK_COIL_7(0);
    check_origin(0, &capture, 6);
    CHECK_READ_4(1);
    CHECK_EQ(stats.gaps, 1);
    CHECK_EQ(stats.out_of_order, 3);
}

TEST(a_capture_starting_mid_frame_finds_the_next_frame) {
    struct capture capture;
    capture_begin(&capture, "mid-stream.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40009);
    uint8_t bytes[64];
    memcpy(bytes, write_100 + 8, 7); /* the last 7 bytes of a write */
    memcpy(bytes + 7, read_4, sizeof read_4);
    memcpy(bytes + 19, coil_7, 4);
    client_sends(&capture, &tcp, bytes, 23);                   /* 1: no SYN seen */
    client_sends(&capture, &tcp, coil_7 + 4, 8);               /* 2 */
    server_sends(&capture, &tcp, answer_4 + 3, 8);             /* 3: a response's tail */
    server_sends(&capture, &tcp, answer_4, sizeof answer_4);   /* 4 */
    client_sends(&capture, &tcp, write_100, sizeof write_100); /* 5 */
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 3);
    CHECK_READ_4(0);
    check_origin(0, &capture, 1);
    CHECK_COIL_7(1);
    check_origin(1, &capture, 2);
    CHECK_WRITE_100(2);
    CHECK_EQ(stats.not_modbus, 7 + 8);
    CHECK_EQ(stats.responses, 1);
    CHECK_EQ(stats.resynced, 2);
    CHECK_EQ(stats.streams, 1);

    /* A capture that starts at a frame boundary with a single request loses nothing. */
    capture_begin(&capture, "mid-stream-boundary.pcap", LINK_ETHERNET, 0);
    tcp = tcp_v4(40010);
    client_sends(&capture, &tcp, read_4, sizeof read_4);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 1);
    CHECK_READ_4(0);
    CHECK_EQ(stats.not_modbus, 0);
}

TEST(tls_on_802_and_a_tls_handshake_on_502_are_counted_and_not_read) {
    struct capture capture;
    capture_begin(&capture, "tls.pcap", LINK_ETHERNET, 0);
    /* A ClientHello's first bytes, then bytes that would frame as Modbus if they were read. */
    uint8_t hello[40] = {0x16, 0x03, 0x01, 0x00, 0x23, 0x01, 0x00, 0x00, 0x1F, 0x03, 0x03};
    struct tcp tls = tcp_v4(40011);
    tls.server_port = 802;
    handshake(&capture, &tls);
    client_sends(&capture, &tls, hello, sizeof hello);
    client_sends(&capture, &tls, read_4, sizeof read_4);
    struct tcp on_502 = tcp_v4(40012);
    handshake(&capture, &on_502);
    client_sends(&capture, &on_502, hello, sizeof hello);
    client_sends(&capture, &on_502, read_4, sizeof read_4);
    server_sends(&capture, &on_502, answer_4, sizeof answer_4);
    /* Mid-stream TLS on 802 (no SYN): counted once as well. */
    struct tcp late = tcp_v4(40013);
    late.server_port = 802;
    client_sends(&capture, &late, BYTES(0x17, 0x03, 0x03, 0x00, 0x01, 0xAA));
    client_sends(&capture, &late, BYTES(0x17, 0x03, 0x03, 0x00, 0x01, 0xBB));
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 0);
    CHECK_EQ(stats.tls_streams, 3);
    CHECK_EQ(stats.streams, 1); /* the one on 502 */
    CHECK_EQ(stats.responses, 0);
    CHECK_EQ(stats.not_modbus, 0);
}

TEST(other_protocols_give_no_requests_and_count_as_other) {
    struct capture capture;
    capture_begin(&capture, "other.pcap", LINK_ETHERNET, 0);
    /* A DNS query over UDP. */
    uint8_t udp[128];
    size_t at = put_link(udp, LINK_ETHERNET, 0);
    const uint8_t dns[] = {0x45, 0x00, 0x00, 0x3C, 0x00, 0x01, 0x00, 0x00, 0x40, 0x11, 0x00,
                           0x00, 192,  0,    2,    10,   192,  0,    2,    53,   0xC3, 0x50,
                           0x00, 0x35, 0x00, 0x28, 0x00, 0x00, 0x12, 0x34, 0x01, 0x00, 0x00,
                           0x01, 0x00, 0x00, 0x00, 0x00, 0x00, 0x00, 7,    'e',  'x',  'a',
                           'm',  'p',  'l',  'e',  3,    'c',  'o',  'm',  0,    0x00, 0x01,
                           0x00, 0x01, 0x00, 0x00, 0x00, 0x00};
    memcpy(udp + at, dns, sizeof dns);
    capture_record(&capture, udp, at + 60, at + 60);
    /* ARP. */
    uint8_t arp[42] = {0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 0xFF, 2, 0, 0, 0, 0, 1, 0x08, 0x06};
    capture_record(&capture, arp, sizeof arp, sizeof arp);
    /* HTTP on port 80, whose bytes would frame as Modbus. */
    struct tcp http = tcp_v4(40014);
    http.server_port = 80;
    handshake(&capture, &http);
    client_sends(&capture, &http, read_4, sizeof read_4);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 0);
    CHECK_EQ(stats.packets, 6);
    CHECK_EQ(stats.other_packets, 6);
    CHECK_EQ(stats.modbus_packets, 0);
    CHECK_EQ(stats.streams, 0);
    /* Port 80 as a Modbus port: the same file gives its request. */
    const uint16_t ports[] = {80};
    struct capture_options options = {.ports = ports, .port_count = 1};
    CHECK_EQ(read_capture(capture.path, &options), 0);
    CHECK_EQ(seen_count, 1);
    CHECK_READ_4(0);
}

/* The same conversation on another link: a handshake, a split request, a whole one. */
static void check_link(const char *name, enum link link, int pcapng, int ipv6) {
    struct capture capture;
    capture_begin(&capture, name, link, pcapng);
    struct tcp tcp = tcp_v4(40015);
    if (ipv6) {
        tcp.ipv6 = 1;
        tcp.client = "2001:db8::10";
        tcp.server = "2001:db8::1";
    }
    handshake(&capture, &tcp);
    client_sends(&capture, &tcp, write_100, 9);
    client_sends(&capture, &tcp, write_100 + 9, 6);
    server_sends(&capture, &tcp,
                 BYTES(0x00, 0x02, 0x00, 0x00, 0x00, 0x06, 0x01, 0x10, 0x00, 0x64, 0x00, 0x01));
    client_sends(&capture, &tcp, read_4, sizeof read_4);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    if (error[0] != '\0' && error[0] != 'x')
        fprintf(stderr, "  %s: %s\n", name, error);
    CHECK_EQ(seen_count, 2);
    CHECK_WRITE_100(0);
    check_origin(0, &capture, 5);
    CHECK_READ_4(1);
    check_origin(1, &capture, 7);
    CHECK_STR(seen[0].client, ipv6 ? "2001:db8::10 40015" : "192.0.2.10 40015");
    CHECK_EQ(stats.responses, 1);
    CHECK_EQ(stats.modbus_packets, 7);
    CHECK_EQ(stats.other_packets, 0);
}

TEST(vlan_tagged_ethernet_qinq_is_read) {
    check_link("vlan.pcap", LINK_VLAN, 0, 0);
}

TEST(linux_cooked_sll_and_sll2_are_read) {
    check_link("sll.pcap", LINK_SLL, 0, 0);
    check_link("sll2.pcap", LINK_SLL2, 0, 0);
    check_link("sll2-v6.pcapng", LINK_SLL2, 1, 1);
}

TEST(bsd_loopback_and_raw_ip_are_read) {
    check_link("null.pcap", LINK_NULL, 0, 0);
    check_link("null-v6.pcap", LINK_NULL, 0, 1);
    check_link("raw.pcap", LINK_RAW, 0, 0);
    check_link("raw-v6.pcap", LINK_RAW, 0, 1);
}

TEST(ipv6_with_a_hop_by_hop_header_is_read) {
    check_link("ipv6.pcap", LINK_ETHERNET, 0, 1);
}

TEST(pcapng_is_read) {
    check_link("ethernet.pcapng", LINK_ETHERNET, 1, 0);
}

TEST(a_file_cut_mid_record_is_an_error_naming_the_packet_after_the_earlier_requests) {
    struct capture capture;
    capture_begin(&capture, "cut.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40016);
    handshake(&capture, &tcp);
    client_sends(&capture, &tcp, read_4, sizeof read_4);
    client_sends(&capture, &tcp, write_100, sizeof write_100);
    capture_end(&capture);
    FILE *file = fopen(capture.path, "rb+");
    CHECK(file != NULL && fseek(file, 0, SEEK_END) == 0);
    long size = ftell(file);
    fclose(file);
    CHECK_EQ(truncate(capture.path, size - 10), 0);
    CHECK_EQ(read_capture(capture.path, NULL), -1);
    char want[256];
    snprintf(want, sizeof want, "%s: truncated at packet 5", capture.path);
    CHECK_STR(error, want);
    CHECK_EQ(seen_count, 1);
    CHECK_READ_4(0);
    CHECK_EQ(stats.packets, 4);
    /* Cut inside a record's header, and the same in pcapng. */
    CHECK_EQ(truncate(capture.path, size - 101 + 8), 0); /* into record 5's 16-byte header */
    CHECK_EQ(read_capture(capture.path, NULL), -1);
    CHECK_STR(error, want);
    capture_begin(&capture, "cut.pcapng", LINK_ETHERNET, 1);
    tcp = tcp_v4(40017);
    client_sends(&capture, &tcp, read_4, sizeof read_4);
    client_sends(&capture, &tcp, write_100, sizeof write_100);
    capture_end(&capture);
    file = fopen(capture.path, "rb");
    CHECK(file != NULL && fseek(file, 0, SEEK_END) == 0);
    size = ftell(file);
    fclose(file);
    CHECK_EQ(truncate(capture.path, size - 3), 0);
    CHECK_EQ(read_capture(capture.path, NULL), -1);
    snprintf(want, sizeof want, "%s: truncated at packet 2", capture.path);
    CHECK_STR(error, want);
    CHECK_EQ(seen_count, 1);
}

TEST(a_file_that_is_not_a_capture_is_a_clear_error) {
    fresh_directory();
    char path[128];
    snprintf(path, sizeof path, "%s/notes.txt", directory);
    FILE *file = fopen(path, "w");
    CHECK(file != NULL);
    fputs("this is not a capture\n", file);
    fclose(file);
    CHECK_EQ(read_capture(path, NULL), -1);
    char want[256];
    snprintf(want, sizeof want, "%s: not a pcap or pcapng capture", path);
    CHECK(strncmp(error, want, strlen(want)) == 0);
    CHECK(strchr(error, '\n') == NULL);
    CHECK_EQ(seen_count, 0);
    /* Empty. */
    snprintf(path, sizeof path, "%s/empty.pcap", directory);
    file = fopen(path, "w");
    CHECK(file != NULL);
    fclose(file);
    CHECK_EQ(read_capture(path, NULL), -1);
    snprintf(want, sizeof want, "%s: an empty file, not a capture", path);
    CHECK_STR(error, want);
    /* Missing. */
    snprintf(path, sizeof path, "%s/missing.pcap", directory);
    CHECK_EQ(read_capture(path, NULL), -1);
    snprintf(want, sizeof want, "%s: No such file or directory", path);
    CHECK_STR(error, want);
    /* A header alone is a capture of nothing. */
    struct capture capture;
    capture_begin(&capture, "header-only.pcap", LINK_ETHERNET, 0);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(stats.packets, 0);
    /* A link type it cannot read (802.11). */
    capture_begin(&capture, "wifi.pcap", LINK_ETHERNET, 0);
    capture_end(&capture);
    file = fopen(capture.path, "rb+");
    CHECK(file != NULL && fseek(file, 20, SEEK_SET) == 0);
    put32le(file, 105);
    fclose(file);
    CHECK_EQ(read_capture(capture.path, NULL), -1);
    snprintf(want, sizeof want, "%s: link type IEEE802_11 (105) cannot be read", capture.path);
    CHECK_STR(error, want);
}

TEST(sequence_numbers_wrap_around_2_to_the_32) {
    struct capture capture;
    capture_begin(&capture, "wrap.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40018);
    tcp.client_seq = 0xFFFFFFF0u;
    handshake(&capture, &tcp);
    client_sends(&capture, &tcp, read_4, sizeof read_4); /* 0xFFFFFFF1..0xFFFFFFFC */
    /* The next frame straddles 2^32, in two segments that arrive swapped. */
    uint32_t start = tcp.client_seq;
    tcp.client_seq = start + 8;
    client_sends(&capture, &tcp, write_100 + 8, 7);
    tcp.client_seq = start;
    client_sends(&capture, &tcp, write_100, 8);
    tcp.client_seq = start + 15;
    client_sends(&capture, &tcp, coil_7, sizeof coil_7);
    /* An old segment from before the wrap is a retransmission. */
    tcp.client_seq = 0xFFFFFFF1u;
    client_sends(&capture, &tcp, read_4, sizeof read_4);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 3);
    CHECK_READ_4(0);
    CHECK_WRITE_100(1);
    CHECK_COIL_7(2);
    CHECK_EQ(stats.out_of_order, 1);
    CHECK_EQ(stats.retransmitted, 1);
    CHECK_EQ(stats.gaps, 0);
}

/* `count` connections, each sending half a frame, then (after all have started) the rest. */
static void many_connections(const char *name, int count, int with_handshake) {
    struct capture capture;
    capture_begin(&capture, name, LINK_RAW, 0);
    for (int i = 0; i < count; i++) {
        struct tcp tcp = tcp_v4((uint16_t)(10000 + i % 50000));
        char client[32];
        snprintf(client, sizeof client, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        tcp.client = client;
        if (with_handshake)
            handshake(&capture, &tcp);
        client_sends(&capture, &tcp, read_4, 5);
    }
    for (int i = 0; i < count; i++) {
        struct tcp tcp = tcp_v4((uint16_t)(10000 + i % 50000));
        char client[32];
        snprintf(client, sizeof client, "10.%d.%d.%d", (i >> 16) & 255, (i >> 8) & 255, i & 255);
        tcp.client = client;
        tcp.client_seq += (uint32_t)with_handshake + 5;
        tcp.server_seq += (uint32_t)with_handshake;
        client_sends(&capture, &tcp, read_4 + 5, 7);
    }
    capture_end(&capture);
}

TEST(connections_beyond_the_table_bound_evict_the_oldest_and_stay_bounded) {
    many_connections("many.pcap", 1000, 1);
    struct capture_options options = {.max_streams = 64};
    char path[128];
    snprintf(path, sizeof path, "%s/many.pcap", directory);
    CHECK_EQ(read_capture(path, &options), 0);
    /* The second halves come in the same order as the first, so each one finds its
     * connection evicted (by the one before it): it starts a connection of its own, mid-frame,
     * whose 7 bytes frame as nothing. Evicted halves are dropped, never delivered. */
    CHECK_EQ(stats.streams, 2000);
    CHECK_EQ(stats.evicted, 2000 - 64);
    CHECK_EQ(seen_count, 0);
    CHECK_EQ(stats.not_modbus, 1000 * 5 + 1000 * 7);
    /* With the default bound all are tracked. */
    CHECK_EQ(read_capture(path, NULL), 0);
    CHECK_EQ(seen_count, 1000);
    CHECK_EQ(stats.evicted, 0);
}

TEST(the_default_table_bound_holds_for_70000_connections) {
    many_connections("many-more.pcap", 70000, 0);
    char path[128];
    snprintf(path, sizeof path, "%s/many-more.pcap", directory);
    CHECK_EQ(read_capture(path, NULL), 0);
    CHECK_EQ(stats.streams, 2 * 70000);
    CHECK_EQ(stats.evicted, 2 * 70000 - CAPTURE_MAX_STREAMS);
    CHECK_EQ(stats.requests, 0);
    CHECK_EQ(stats.not_modbus, 70000 * 12);
    CHECK_EQ(unlink(path), 0);
}

TEST(held_bytes_stay_under_the_bound_when_a_hole_is_followed_by_a_flood) {
    struct capture capture;
    capture_begin(&capture, "flood.pcap", LINK_RAW, 0);
    struct tcp tcp = tcp_v4(40019);
    handshake(&capture, &tcp);
    client_sends(&capture, &tcp, read_4, sizeof read_4);
    tcp.client_seq += 100; /* a hole that never fills */
    uint8_t frames[120 * 12];
    for (int i = 0; i < 120; i++)
        memcpy(frames + i * 12, read_4, 12);
    for (int i = 0; i < 100; i++)
        client_sends(&capture, &tcp, frames, sizeof frames); /* 144,000 bytes ahead of it */
    /* A second connection does the same in 1-byte segments (the segment-count bound). */
    struct tcp small = tcp_v4(40020);
    handshake(&capture, &small);
    small.client_seq += 1;
    for (int i = 0; i < 600; i++)
        client_sends(&capture, &small, read_4 + i % 12, 1);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK(stats.held_bytes_max <= CAPTURE_HELD_PER_DIRECTION);
    CHECK(stats.held_bytes_max > CAPTURE_HELD_PER_DIRECTION / 2);
    CHECK_EQ(stats.gaps, 2);
    /* Past each hole every frame is found, from the first held segment on. */
    CHECK_EQ(seen_count, 1 + 100 * 120 + 600 / 12);
    CHECK_EQ(stats.not_modbus, 0);
}

TEST(a_reset_then_a_new_syn_on_the_same_tuple_starts_afresh) {
    struct capture capture;
    capture_begin(&capture, "reset.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40021);
    handshake(&capture, &tcp);
    client_sends(&capture, &tcp, write_100, 9); /* half a frame, then a reset */
    send_segment(&capture, &tcp, 1, RST | ACK, NULL, 0);
    struct tcp again = tcp_v4(40021);
    again.client_seq = 777777;
    again.server_seq = 999999;
    handshake(&capture, &again);
    client_sends(&capture, &again, read_4, sizeof read_4);
    /* A new SYN without a reset, with another initial sequence number, also starts afresh. */
    client_sends(&capture, &again, coil_7, 3);
    struct tcp third = tcp_v4(40021);
    third.client_seq = 5;
    third.server_seq = 6;
    handshake(&capture, &third);
    client_sends(&capture, &third, coil_7, sizeof coil_7);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 2);
    CHECK_READ_4(0);
    CHECK_COIL_7(1);
    CHECK_EQ(stats.streams, 3);
    CHECK_EQ(stats.not_modbus, 9 + 3);
    CHECK_EQ(stats.resynced, 0);
    CHECK_EQ(stats.gaps, 0);
}

TEST(a_packet_cut_by_the_snaplen_is_a_gap) {
    struct capture capture;
    capture_begin(&capture, "snaplen.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40022);
    handshake(&capture, &tcp);
    uint8_t packet[256];
    size_t size = build(packet, LINK_ETHERNET, &tcp, 1, tcp.client_seq, tcp.server_seq, ACK,
                        write_100, sizeof write_100, 0);
    capture_record(&capture, packet, size - 6, size); /* the write's last 6 bytes are missing */
    tcp.client_seq += sizeof write_100;
    client_sends(&capture, &tcp, read_4, sizeof read_4);
    client_sends(&capture, &tcp, coil_7, sizeof coil_7);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(stats.truncated_packets, 1);
    CHECK_EQ(stats.gaps, 1);
    CHECK_EQ(seen_count, 2);
    CHECK_READ_4(0);
    CHECK_COIL_7(1);
}

TEST(a_visitor_that_stops_gets_its_value_back) {
    struct capture capture;
    capture_begin(&capture, "stop.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40023);
    handshake(&capture, &tcp);
    for (int i = 0; i < 5; i++)
        client_sends(&capture, &tcp, read_4, sizeof read_4);
    capture_end(&capture);
    stop_after = 2;
    CHECK_EQ(read_capture(capture.path, NULL), 7);
    stop_after = 0;
    CHECK_EQ(seen_count, 2);
    CHECK_EQ(stats.requests, 2);
}

TEST(garbage_on_a_modbus_port_is_not_modbus_and_the_frames_after_it_are_found) {
    struct capture capture;
    capture_begin(&capture, "garbage.pcap", LINK_ETHERNET, 0);
    struct tcp tcp = tcp_v4(40024);
    handshake(&capture, &tcp);
    client_sends(&capture, &tcp, read_4, sizeof read_4);
    /* A header with protocol id 1, then noise that holds a false header with protocol 0. */
    client_sends(&capture, &tcp,
                 BYTES(0x00, 0x09, 0x00, 0x01, 0x00, 0x06, 0xFF, 0x03, 0x00, 0x00, 0x00, 0x00, 0x00,
                       0x04, 0xFF, 0x03));
    client_sends(&capture, &tcp, write_100, sizeof write_100);
    client_sends(&capture, &tcp, coil_7, sizeof coil_7);
    capture_end(&capture);
    CHECK_EQ(read_capture(capture.path, NULL), 0);
    CHECK_EQ(seen_count, 3);
    CHECK_READ_4(0);
    CHECK_WRITE_100(1);
    CHECK_COIL_7(2);
    CHECK_EQ(stats.not_modbus, 16);
    CHECK_EQ(stats.resynced, 1);
}

int main(void) {
    RUN(in_order_stream_delivers_each_request_with_unit_pdu_client_and_time);
    RUN(responses_are_counted_not_delivered);
    RUN(a_frame_split_over_three_segments_is_delivered_once_from_its_last_packet);
    RUN(two_frames_in_one_segment_and_one_across_the_next_are_all_delivered);
    RUN(retransmissions_exact_and_overlapping_are_dropped_and_counted);
    RUN(two_swapped_segments_are_delivered_in_order);
    RUN(a_lost_segment_loses_its_frame_and_the_frames_after_it_are_found_again);
    RUN(a_capture_starting_mid_frame_finds_the_next_frame);
    RUN(tls_on_802_and_a_tls_handshake_on_502_are_counted_and_not_read);
    RUN(other_protocols_give_no_requests_and_count_as_other);
    RUN(vlan_tagged_ethernet_qinq_is_read);
    RUN(linux_cooked_sll_and_sll2_are_read);
    RUN(bsd_loopback_and_raw_ip_are_read);
    RUN(ipv6_with_a_hop_by_hop_header_is_read);
    RUN(pcapng_is_read);
    RUN(a_file_cut_mid_record_is_an_error_naming_the_packet_after_the_earlier_requests);
    RUN(a_file_that_is_not_a_capture_is_a_clear_error);
    RUN(sequence_numbers_wrap_around_2_to_the_32);
    RUN(connections_beyond_the_table_bound_evict_the_oldest_and_stay_bounded);
    RUN(the_default_table_bound_holds_for_70000_connections);
    RUN(held_bytes_stay_under_the_bound_when_a_hole_is_followed_by_a_flood);
    RUN(a_reset_then_a_new_syn_on_the_same_tuple_starts_afresh);
    RUN(a_packet_cut_by_the_snaplen_is_a_gap);
    RUN(a_visitor_that_stops_gets_its_value_back);
    RUN(garbage_on_a_modbus_port_is_not_modbus_and_the_frames_after_it_are_found);
    remove_directory();
    return harness_result();
}
