/* SPDX-License-Identifier: MIT */
/*
 * A synthetic Modbus/TCP capture for bench/policy-capture: what a tap in front of a few PLCs
 * would record, written straight to a file with stdio, no libpcap.
 *
 *     make_capture [--pcapng] [--requests N] [--connections K] [--servers M] [--seed S]
 *                  [--port P] [--ipv6] OUT
 *
 * K client connections (default 32), each from its own address (10.0.x.y, or fd00::1:x:y with
 * --ipv6) and ephemeral port, to M servers (default 3: 10.0.0.1, 10.0.0.2, ...) on port P
 * (default 502). Each connection opens with SYN, SYN-ACK, ACK, then carries request/response
 * pairs, one Modbus/TCP frame per segment, and closes with FIN, FIN, ACK. One client in four is
 * an engineering station that also writes setpoints in a band (FC 6, 16, 5, 15, 23) and asks
 * for diagnostics (FC 8/00) and the device identification (FC 43/14); the others poll (FC 3 of
 * a few ranges, FC 4, FC 1, FC 2), and now and then read past the end of the holding registers,
 * which the server answers with exception 02. Connections interleave at random, at most one
 * request outstanding on each; a client acknowledges an answer with a pure ACK one time in four
 * (otherwise its next request does). Transaction ids count up per connection; TCP sequence and
 * acknowledgement numbers, IPv4 header checksums and TCP checksums are correct, timestamps
 * increase. N requests (default 1000) in all, each answered: a reader that frames Modbus/TCP
 * finds exactly N requests and N responses.
 *
 * pcap (microsecond timestamps, Ethernet) by default, pcapng (one section, one interface,
 * enhanced packet blocks) with --pcapng. The same arguments write the same bytes. Prints on
 * stderr what it wrote: packets, requests, responses, pure ACKs, connections and bytes.
 */
#define _GNU_SOURCE
#include <errno.h>
#include <getopt.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#define ETHERNET_HEADER 14
#define IPV4_HEADER 20
#define IPV6_HEADER 40
#define TCP_HEADER 20
#define MSS_OPTION 4
#define MBAP 7
#define MAX_PDU 253
#define MAX_FRAME 1600
#define OUT_BUFFER (4u << 20)
#define MAX_CONNECTIONS 60000
#define MAX_SERVERS 250
#define SNAPLEN 262144

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_PSH 0x08
#define TCP_ACK 0x10

/* The server's data model: reads and writes past these are answered with exception 02. */
#define HOLDING_REGISTERS 4096
#define INPUT_REGISTERS 1024
#define COILS 1024
#define DISCRETE_INPUTS 1024

struct options {
    int pcapng;
    int ipv6;
    unsigned long long requests;
    unsigned connections;
    unsigned servers;
    unsigned long long seed;
    unsigned port;
    const char *out;
};

struct endpoint {
    uint8_t mac[6];
    uint8_t address[16]; /* the first 4 bytes for IPv4 */
    uint16_t port;
    uint16_t ip_id;
    uint32_t next_sequence;
};

struct connection {
    struct endpoint client;
    struct endpoint server;
    int writes;       /* an engineering station: writes and diagnostics besides the polling */
    unsigned unit_id; /* the unit behind the server this connection talks to */
    uint16_t next_transaction;
    uint16_t pending_length; /* the MBAP + PDU of the request waiting for its answer, or 0 */
    uint8_t pending[MBAP + MAX_PDU];
};

struct generator {
    const struct options *options;
    FILE *file;
    uint8_t *buffer;
    size_t used;
    uint64_t random_state;
    uint64_t now_us;
    unsigned long long packets;
    unsigned long long requests;
    unsigned long long responses;
    unsigned long long pure_acks;
    unsigned long long bytes;
    int failed;
};

/* xorshift64*: fast, and the same sequence for the same seed on every machine. */
static uint32_t next_random(struct generator *generator) {
    uint64_t x = generator->random_state;
    x ^= x >> 12;
    x ^= x << 25;
    x ^= x >> 27;
    generator->random_state = x;
    return (uint32_t)((x * 0x2545F4914F6CDD1DULL) >> 32);
}

static unsigned between(struct generator *generator, unsigned low, unsigned high) {
    return low + next_random(generator) % (high - low + 1);
}

static void put16(uint8_t *at, unsigned value) {
    at[0] = (uint8_t)(value >> 8);
    at[1] = (uint8_t)value;
}

static void put32(uint8_t *at, uint32_t value) {
    at[0] = (uint8_t)(value >> 24);
    at[1] = (uint8_t)(value >> 16);
    at[2] = (uint8_t)(value >> 8);
    at[3] = (uint8_t)value;
}

static unsigned get16(const uint8_t *at) {
    return (unsigned)at[0] << 8 | at[1];
}

/* ---- output: pcap or pcapng records through one large buffer ---- */

static void flush_output(struct generator *generator) {
    if (generator->used > 0 &&
        fwrite(generator->buffer, 1, generator->used, generator->file) != generator->used) {
        generator->failed = 1;
    }
    generator->bytes += generator->used;
    generator->used = 0;
}

/* Room for n more bytes in the buffer; a record is far smaller than the buffer. */
static uint8_t *reserve(struct generator *generator, size_t n) {
    if (generator->used + n > OUT_BUFFER) {
        flush_output(generator);
    }
    uint8_t *at = generator->buffer + generator->used;
    generator->used += n;
    return at;
}

/* The file headers are in the host's byte order, as libpcap writes them: readers look at the
 * magic number to know which order the rest is in. */
static void write_file_header(struct generator *generator) {
    if (!generator->options->pcapng) {
        struct {
            uint32_t magic;
            uint16_t major, minor;
            int32_t zone;
            uint32_t sigfigs, snaplen, linktype;
        } header = {0xa1b2c3d4u, 2, 4, 0, 0, SNAPLEN, 1};
        memcpy(reserve(generator, sizeof header), &header, sizeof header);
        return;
    }
    static const char application[] = "mbsec bench/make_capture";
    uint32_t application_padded = (sizeof application - 1 + 3) & ~3u;
    uint32_t section_length = 28 + 4 + application_padded + 4;
    uint8_t *at = reserve(generator, section_length);
    memset(at, 0, section_length);
    uint32_t words[] = {0x0A0D0D0Au, section_length, 0x1A2B3C4Du};
    memcpy(at, words, sizeof words);
    uint16_t version[] = {1, 0};
    memcpy(at + 12, version, sizeof version);
    int64_t unknown_length = -1;
    memcpy(at + 16, &unknown_length, sizeof unknown_length);
    uint16_t option[] = {4 /* shb_userappl */, sizeof application - 1};
    memcpy(at + 24, option, sizeof option);
    memcpy(at + 28, application, sizeof application - 1);
    /* opt_endofopt is the four zero bytes after the padded value. */
    memcpy(at + section_length - 4, &section_length, 4);

    struct {
        uint32_t type, length;
        uint16_t linktype, reserved;
        uint32_t snaplen, length_again;
    } interface = {1, 20, 1, 0, SNAPLEN, 20};
    memcpy(reserve(generator, sizeof interface), &interface, sizeof interface);
}

static void write_record(struct generator *generator, const uint8_t *frame, uint32_t length) {
    uint64_t now = generator->now_us;
    if (!generator->options->pcapng) {
        uint32_t header[] = {(uint32_t)(now / 1000000), (uint32_t)(now % 1000000), length, length};
        uint8_t *at = reserve(generator, sizeof header + length);
        memcpy(at, header, sizeof header);
        memcpy(at + sizeof header, frame, length);
    } else {
        uint32_t padded = (length + 3) & ~3u;
        uint32_t block_length = 32 + padded;
        uint32_t header[] = {6,      block_length, 0, (uint32_t)(now >> 32), (uint32_t)now,
                             length, length};
        uint8_t *at = reserve(generator, block_length);
        memcpy(at, header, sizeof header);
        memcpy(at + sizeof header, frame, length);
        memset(at + sizeof header + length, 0, padded - length);
        memcpy(at + sizeof header + padded, &block_length, 4);
    }
    generator->packets++;
}

/* ---- Ethernet, IP and TCP ---- */

static uint32_t sum_words(uint32_t sum, const uint8_t *data, size_t length) {
    for (size_t i = 0; i + 1 < length; i += 2) {
        sum += (uint32_t)data[i] << 8 | data[i + 1];
    }
    if (length & 1) {
        sum += (uint32_t)data[length - 1] << 8;
    }
    return sum;
}

static uint16_t fold(uint32_t sum) {
    while (sum >> 16) {
        sum = (sum & 0xffff) + (sum >> 16);
    }
    return (uint16_t)~sum;
}

/* One TCP segment from `from` to `to` with the current timestamp. The sequence number is the
 * sender's next one; SYN and FIN count for one, as the payload counts for its length. */
static void send_segment(struct generator *generator, struct endpoint *from,
                         const struct endpoint *to, unsigned flags, const uint8_t *payload,
                         size_t payload_length) {
    uint8_t frame[MAX_FRAME];
    int ipv6 = generator->options->ipv6;
    size_t ip_header = ipv6 ? IPV6_HEADER : IPV4_HEADER;
    size_t tcp_header = TCP_HEADER + ((flags & TCP_SYN) ? MSS_OPTION : 0);
    size_t tcp_length = tcp_header + payload_length;
    uint8_t *ip = frame + ETHERNET_HEADER;
    uint8_t *tcp = ip + ip_header;
    uint32_t sum;

    memcpy(frame, to->mac, 6);
    memcpy(frame + 6, from->mac, 6);
    put16(frame + 12, ipv6 ? 0x86dd : 0x0800);
    if (ipv6) {
        put32(ip, 0x60000000u);
        put16(ip + 4, (unsigned)tcp_length);
        ip[6] = 6; /* TCP */
        ip[7] = 64;
        memcpy(ip + 8, from->address, 16);
        memcpy(ip + 24, to->address, 16);
        sum = sum_words(0, ip + 8, 32);
    } else {
        ip[0] = 0x45;
        ip[1] = 0;
        put16(ip + 2, (unsigned)(IPV4_HEADER + tcp_length));
        put16(ip + 4, from->ip_id++);
        put16(ip + 6, 0x4000); /* don't fragment */
        ip[8] = 64;
        ip[9] = 6;
        put16(ip + 10, 0);
        memcpy(ip + 12, from->address, 4);
        memcpy(ip + 16, to->address, 4);
        put16(ip + 10, fold(sum_words(0, ip, IPV4_HEADER)));
        sum = sum_words(0, ip + 12, 8);
    }
    sum += 6 + (uint32_t)tcp_length;

    put16(tcp, from->port);
    put16(tcp + 2, to->port);
    put32(tcp + 4, from->next_sequence);
    put32(tcp + 8, (flags & TCP_ACK) ? to->next_sequence : 0);
    tcp[12] = (uint8_t)((tcp_header / 4) << 4);
    tcp[13] = (uint8_t)flags;
    put16(tcp + 14, 64240);
    put16(tcp + 16, 0);
    put16(tcp + 18, 0);
    if (flags & TCP_SYN) {
        tcp[20] = 2; /* maximum segment size */
        tcp[21] = 4;
        put16(tcp + 22, ipv6 ? 1440 : 1460);
    }
    if (payload_length > 0) /* no payload: no source pointer to copy from */
        memcpy(tcp + tcp_header, payload, payload_length);
    put16(tcp + 16, fold(sum_words(sum, tcp, tcp_length)));

    from->next_sequence += (uint32_t)payload_length + ((flags & (TCP_SYN | TCP_FIN)) ? 1 : 0);
    write_record(generator, frame, (uint32_t)(ETHERNET_HEADER + ip_header + tcp_length));
}

/* The clock moves on between packets: a little on one connection, more between requests. */
static void advance(struct generator *generator, unsigned low_us, unsigned high_us) {
    generator->now_us += between(generator, low_us, high_us);
}

/* ---- Modbus ---- */

/* An engineering station's request, or a poller's, into pdu; returns its length. */
static size_t make_request(struct generator *generator, const struct connection *connection,
                           uint8_t *pdu) {
    static const unsigned holding_ranges[][2] = {{0, 10}, {100, 20}, {1000, 50}};
    unsigned pick = between(generator, 0, 999);

    if (!connection->writes || pick < 620) {
        /* Polling, which engineering stations do too, in the same proportions. */
        unsigned poll = connection->writes ? pick * 1000 / 620 : pick;
        if (poll < 600) {
            const unsigned *range = holding_ranges[between(generator, 0, 2)];
            unsigned address = range[0], quantity = range[1];
            if (next_random(generator) % 500 == 0) {
                address = HOLDING_REGISTERS + 904; /* a misconfigured tag: exception 02 */
                quantity = 10;
            }
            pdu[0] = 3;
            put16(pdu + 1, address);
            put16(pdu + 3, quantity);
        } else if (poll < 800) {
            unsigned address = between(generator, 0, 1) ? 0 : 30;
            pdu[0] = 4;
            put16(pdu + 1, address);
            put16(pdu + 3, address == 0 ? 8 : 4);
        } else if (poll < 900) {
            pdu[0] = 1;
            put16(pdu + 1, 0);
            put16(pdu + 3, 16);
        } else {
            pdu[0] = 2;
            put16(pdu + 1, 0);
            put16(pdu + 3, 32);
        }
        return 5;
    }
    if (pick < 720) { /* a setpoint, in its band */
        pdu[0] = 6;
        put16(pdu + 1, between(generator, 200, 203));
        put16(pdu + 3, between(generator, 1000, 1200));
        return 5;
    }
    if (pick < 820) { /* four setpoints at once */
        pdu[0] = 16;
        put16(pdu + 1, 300);
        put16(pdu + 3, 4);
        pdu[5] = 8;
        for (int i = 0; i < 4; i++) {
            put16(pdu + 6 + 2 * i, between(generator, 500, 600));
        }
        return 14;
    }
    if (pick < 870) { /* a pump on or off */
        pdu[0] = 5;
        put16(pdu + 1, between(generator, 10, 13));
        put16(pdu + 3, between(generator, 0, 1) ? 0xff00 : 0x0000);
        return 5;
    }
    if (pick < 900) {
        pdu[0] = 15;
        put16(pdu + 1, 16);
        put16(pdu + 3, 8);
        pdu[5] = 1;
        pdu[6] = (uint8_t)next_random(generator);
        return 7;
    }
    if (pick < 930) { /* read the status block, write two limits */
        pdu[0] = 23;
        put16(pdu + 1, 0);
        put16(pdu + 3, 4);
        put16(pdu + 5, 310);
        put16(pdu + 7, 2);
        pdu[9] = 4;
        put16(pdu + 10, between(generator, 0, 100));
        put16(pdu + 12, between(generator, 0, 100));
        return 14;
    }
    if (pick < 960) { /* return query data */
        pdu[0] = 8;
        put16(pdu + 1, 0);
        put16(pdu + 3, next_random(generator) & 0xffff);
        return 5;
    }
    pdu[0] = 43; /* read device identification, basic, from the first object */
    pdu[1] = 14;
    pdu[2] = 1;
    pdu[3] = 0;
    return 4;
}

static size_t exception(const uint8_t *request, uint8_t *pdu, uint8_t code) {
    pdu[0] = (uint8_t)(request[0] | 0x80);
    pdu[1] = code;
    return 2;
}

static size_t read_bits(struct generator *generator, const uint8_t *request, uint8_t *pdu,
                        unsigned table) {
    unsigned address = get16(request + 1), quantity = get16(request + 3);
    if (address + quantity > table) {
        return exception(request, pdu, 2);
    }
    pdu[0] = request[0];
    pdu[1] = (uint8_t)((quantity + 7) / 8);
    for (unsigned i = 0; i < pdu[1]; i++) {
        pdu[2 + i] = (uint8_t)next_random(generator);
    }
    return 2 + (size_t)pdu[1];
}

static size_t read_registers(struct generator *generator, const uint8_t *request, uint8_t *pdu,
                             unsigned address, unsigned quantity, unsigned table) {
    if (address + quantity > table) {
        return exception(request, pdu, 2);
    }
    pdu[0] = request[0];
    pdu[1] = (uint8_t)(2 * quantity);
    for (unsigned i = 0; i < quantity; i++) {
        put16(pdu + 2 + 2 * i, between(generator, 0, 999));
    }
    return 2 + (size_t)pdu[1];
}

/* The server's answer to request (a PDU of request_length bytes) into pdu; returns its length. */
static size_t make_response(struct generator *generator, const uint8_t *request,
                            size_t request_length, uint8_t *pdu) {
    static const char *const objects[] = {"mbsec", "SIM-PLC", "1.0"};
    switch (request[0]) {
    case 1:
        return read_bits(generator, request, pdu, COILS);
    case 2:
        return read_bits(generator, request, pdu, DISCRETE_INPUTS);
    case 3:
        return read_registers(generator, request, pdu, get16(request + 1), get16(request + 3),
                              HOLDING_REGISTERS);
    case 4:
        return read_registers(generator, request, pdu, get16(request + 1), get16(request + 3),
                              INPUT_REGISTERS);
    case 5:
    case 6:
    case 8:
        memcpy(pdu, request, request_length);
        return request_length;
    case 15:
    case 16:
        memcpy(pdu, request, 5);
        return 5;
    case 23:
        return read_registers(generator, request, pdu, get16(request + 1), get16(request + 3),
                              HOLDING_REGISTERS);
    case 43: {
        size_t length = 7;
        memcpy(pdu, request, 3);
        pdu[3] = 0x01; /* conformity: basic identification, stream access only */
        pdu[4] = 0;    /* no more follows */
        pdu[5] = 0;
        pdu[6] = 3;
        for (unsigned i = 0; i < 3; i++) {
            size_t text = strlen(objects[i]);
            pdu[length] = (uint8_t)i;
            pdu[length + 1] = (uint8_t)text;
            memcpy(pdu + length + 2, objects[i], text);
            length += 2 + text;
        }
        return length;
    }
    default:
        return exception(request, pdu, 1);
    }
}

static size_t frame_with_mbap(uint8_t *frame, unsigned transaction, unsigned unit_id,
                              const uint8_t *pdu, size_t pdu_length) {
    put16(frame, transaction);
    put16(frame + 2, 0);
    put16(frame + 4, (unsigned)(pdu_length + 1));
    frame[6] = (uint8_t)unit_id;
    memcpy(frame + MBAP, pdu, pdu_length);
    return MBAP + pdu_length;
}

/* ---- connections ---- */

static void set_up(struct generator *generator, struct connection *connection, unsigned index) {
    const struct options *options = generator->options;
    unsigned server = index % options->servers;
    unsigned high = 1 + index / 250, low = 1 + index % 250;

    memset(connection, 0, sizeof *connection);
    connection->writes = index % 4 == 0;
    /* The second server is a gateway to three units; the others are a PLC each. */
    connection->unit_id = server == 1 ? 1 + index / options->servers % 3 : 1;
    connection->next_transaction = (uint16_t)next_random(generator);

    uint8_t client_mac[6] = {0x02, 0x00, 0x0a, 0x00, (uint8_t)high, (uint8_t)low};
    uint8_t server_mac[6] = {0x02, 0x00, 0x0a, 0x00, 0x00, (uint8_t)(1 + server)};
    memcpy(connection->client.mac, client_mac, 6);
    memcpy(connection->server.mac, server_mac, 6);
    if (options->ipv6) {
        uint8_t prefix[6] = {0xfd, 0x00, 0, 0, 0, 0};
        memcpy(connection->client.address, prefix, 6);
        memcpy(connection->server.address, prefix, 6);
        connection->client.address[7] = 1;
        connection->client.address[13] = (uint8_t)high;
        connection->client.address[15] = (uint8_t)low;
        connection->server.address[15] = (uint8_t)(1 + server);
    } else {
        uint8_t client[4] = {10, 0, (uint8_t)high, (uint8_t)low};
        uint8_t server_address[4] = {10, 0, 0, (uint8_t)(1 + server)};
        memcpy(connection->client.address, client, 4);
        memcpy(connection->server.address, server_address, 4);
    }
    connection->client.port = (uint16_t)between(generator, 32768, 60999);
    connection->server.port = (uint16_t)options->port;
    connection->client.ip_id = (uint16_t)next_random(generator);
    connection->server.ip_id = (uint16_t)next_random(generator);
    connection->client.next_sequence = next_random(generator);
    connection->server.next_sequence = next_random(generator);
}

static void open_connection(struct generator *generator, struct connection *connection) {
    advance(generator, 100, 2000);
    send_segment(generator, &connection->client, &connection->server, TCP_SYN, NULL, 0);
    advance(generator, 50, 300);
    send_segment(generator, &connection->server, &connection->client, TCP_SYN | TCP_ACK, NULL, 0);
    advance(generator, 20, 100);
    send_segment(generator, &connection->client, &connection->server, TCP_ACK, NULL, 0);
}

static void send_request(struct generator *generator, struct connection *connection) {
    uint8_t pdu[MAX_PDU];
    size_t length = make_request(generator, connection, pdu);
    connection->pending_length = (uint16_t)frame_with_mbap(
        connection->pending, connection->next_transaction++, connection->unit_id, pdu, length);
    advance(generator, 20, 400);
    send_segment(generator, &connection->client, &connection->server, TCP_PSH | TCP_ACK,
                 connection->pending, connection->pending_length);
    generator->requests++;
}

static void send_response(struct generator *generator, struct connection *connection) {
    uint8_t pdu[MAX_PDU], frame[MBAP + MAX_PDU];
    size_t length = make_response(generator, connection->pending + MBAP,
                                  connection->pending_length - MBAP, pdu);
    size_t frame_length =
        frame_with_mbap(frame, get16(connection->pending), connection->unit_id, pdu, length);
    connection->pending_length = 0;
    advance(generator, 20, 400);
    send_segment(generator, &connection->server, &connection->client, TCP_PSH | TCP_ACK, frame,
                 frame_length);
    generator->responses++;
    if (next_random(generator) % 4 == 0) {
        advance(generator, 20, 200);
        send_segment(generator, &connection->client, &connection->server, TCP_ACK, NULL, 0);
        generator->pure_acks++;
    }
}

static void close_connection(struct generator *generator, struct connection *connection) {
    advance(generator, 20, 400);
    send_segment(generator, &connection->client, &connection->server, TCP_FIN | TCP_ACK, NULL, 0);
    advance(generator, 20, 200);
    send_segment(generator, &connection->server, &connection->client, TCP_FIN | TCP_ACK, NULL, 0);
    advance(generator, 20, 200);
    send_segment(generator, &connection->client, &connection->server, TCP_ACK, NULL, 0);
}

static int generate(struct generator *generator, struct connection *connections) {
    const struct options *options = generator->options;

    write_file_header(generator);
    for (unsigned i = 0; i < options->connections; i++) {
        set_up(generator, &connections[i], i);
        open_connection(generator, &connections[i]);
    }
    /* A connection picked at random answers its outstanding request or sends a new one, so
     * that the connections interleave the way independent clients do. */
    while (generator->requests < options->requests) {
        struct connection *connection = &connections[next_random(generator) % options->connections];
        if (connection->pending_length > 0) {
            send_response(generator, connection);
        } else {
            send_request(generator, connection);
        }
    }
    for (unsigned i = 0; i < options->connections; i++) {
        if (connections[i].pending_length > 0) {
            send_response(generator, &connections[i]);
        }
    }
    for (unsigned i = 0; i < options->connections; i++) {
        close_connection(generator, &connections[i]);
    }
    flush_output(generator);
    return generator->failed ? -1 : 0;
}

/* ---- command line ---- */

static void usage(void) {
    fprintf(stderr,
            "usage: make_capture [--pcapng] [--requests N] [--connections K] [--servers M]\n"
            "                    [--seed S] [--port P] [--ipv6] OUT\n"
            "  --pcapng          pcapng instead of pcap\n"
            "  --requests N      Modbus requests in all, each answered (1000)\n"
            "  --connections K   client connections, each from its own address (32, at most "
            "60000)\n"
            "  --servers M       servers the connections spread over (3, at most 250)\n"
            "  --seed S          the same seed writes the same capture (1)\n"
            "  --port P          the servers' TCP port (502)\n"
            "  --ipv6            IPv6 instead of IPv4\n");
}

static int parse_number(const char *text, unsigned long long low, unsigned long long high,
                        unsigned long long *value) {
    char *end;
    errno = 0;
    unsigned long long parsed = strtoull(text, &end, 10);
    if (end == text || *end != '\0' || errno != 0 || text[0] == '-' || parsed < low ||
        parsed > high) {
        return -1;
    }
    *value = parsed;
    return 0;
}

static int parse_options(int argc, char **argv, struct options *options) {
    static const struct option long_options[] = {{"pcapng", no_argument, NULL, 'n'},
                                                 {"requests", required_argument, NULL, 'r'},
                                                 {"connections", required_argument, NULL, 'c'},
                                                 {"servers", required_argument, NULL, 'm'},
                                                 {"seed", required_argument, NULL, 's'},
                                                 {"port", required_argument, NULL, 'p'},
                                                 {"ipv6", no_argument, NULL, '6'},
                                                 {"help", no_argument, NULL, 'h'},
                                                 {NULL, 0, NULL, 0}};
    unsigned long long value;
    int option;

    *options =
        (struct options){.requests = 1000, .connections = 32, .servers = 3, .seed = 1, .port = 502};
    while ((option = getopt_long(argc, argv, "", long_options, NULL)) != -1) {
        switch (option) {
        case 'n':
            options->pcapng = 1;
            break;
        case '6':
            options->ipv6 = 1;
            break;
        case 'r':
            if (parse_number(optarg, 0, 1ULL << 40, &options->requests) != 0) {
                fprintf(stderr, "make_capture: --requests: '%s' is not a count\n", optarg);
                return -1;
            }
            break;
        case 'c':
            if (parse_number(optarg, 1, MAX_CONNECTIONS, &value) != 0) {
                fprintf(stderr, "make_capture: --connections: 1 to %d\n", MAX_CONNECTIONS);
                return -1;
            }
            options->connections = (unsigned)value;
            break;
        case 'm':
            if (parse_number(optarg, 1, MAX_SERVERS, &value) != 0) {
                fprintf(stderr, "make_capture: --servers: 1 to %d\n", MAX_SERVERS);
                return -1;
            }
            options->servers = (unsigned)value;
            break;
        case 's':
            if (parse_number(optarg, 0, UINT64_MAX, &options->seed) != 0) {
                fprintf(stderr, "make_capture: --seed: '%s' is not a number\n", optarg);
                return -1;
            }
            break;
        case 'p':
            if (parse_number(optarg, 1, 65535, &value) != 0) {
                fprintf(stderr, "make_capture: --port: 1 to 65535\n");
                return -1;
            }
            options->port = (unsigned)value;
            break;
        default:
            return -1;
        }
    }
    if (optind != argc - 1) {
        return -1;
    }
    options->out = argv[optind];
    return 0;
}

int main(int argc, char **argv) {
    struct options options;
    struct generator generator;
    struct connection *connections;

    if (parse_options(argc, argv, &options) != 0) {
        usage();
        return 2;
    }
    memset(&generator, 0, sizeof generator);
    generator.options = &options;
    /* xorshift must not start at 0; splitmix64's finaliser spreads nearby seeds apart. */
    uint64_t z = options.seed + 0x9E3779B97F4A7C15ULL;
    z = (z ^ (z >> 30)) * 0xBF58476D1CE4E5B9ULL;
    z = (z ^ (z >> 27)) * 0x94D049BB133111EBULL;
    generator.random_state = (z ^ (z >> 31)) | 1;
    generator.now_us = 1704067200ULL * 1000000; /* 2024-01-01 00:00:00 UTC */
    generator.buffer = malloc(OUT_BUFFER);
    connections = calloc(options.connections, sizeof connections[0]);
    generator.file = fopen(options.out, "wb");
    if (generator.buffer == NULL || connections == NULL || generator.file == NULL) {
        fprintf(stderr, "make_capture: %s: %s\n", options.out, strerror(errno));
        return 1;
    }
    int status = generate(&generator, connections);
    if (fclose(generator.file) != 0 || status != 0) {
        fprintf(stderr, "make_capture: writing %s failed: %s\n", options.out, strerror(errno));
        return 1;
    }
    fprintf(stderr,
            "make_capture: %s: %s, %llu packets, %llu requests, %llu responses, %llu pure ACKs, "
            "%u connections, %llu bytes\n",
            options.out, options.pcapng ? "pcapng" : "pcap", generator.packets, generator.requests,
            generator.responses, generator.pure_acks, options.connections, generator.bytes);
    free(connections);
    free(generator.buffer);
    return 0;
}
