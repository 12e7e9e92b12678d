/* SPDX-License-Identifier: MIT */
/*
 * The capture reader: libpcap hands out one record at a time (pcap_next_ex), so a file of any
 * size costs the same memory. Each record goes through four stages, in this order:
 *
 *   1. link layer (packet_network): Ethernet with VLAN tags, Linux cooked SLL/SLL2, BSD
 *      loopback, raw IP → the IP packet;
 *   2. network and transport (packet_segment): IPv4/IPv6 and TCP → one segment of a
 *      connection, with its direction (to the server or back);
 *   3. reassembly (direction_segment): per connection and direction, bytes put back in order;
 *      retransmissions dropped, early segments held (bounded), holes declared lost;
 *   4. framing (direction_take, frame_view): MBAP frames, found again after a loss, handed to
 *      the visitor (requests) or counted (responses).
 *
 * Frames are parsed straight out of the packet's bytes; only a frame that straddles segments
 * (or bytes being searched for a frame boundary) is copied into a per-direction buffer, which
 * comes from a pool, so the steady path allocates nothing.
 */
#include "app/policy/capture.h"

#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <pcap/pcap.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "mbsec/pdu.h"

#define TCP_FIN 0x01
#define TCP_SYN 0x02
#define TCP_RST 0x04
#define TCP_ACK 0x10

/* A frame is at most 260 bytes; while a boundary is being confirmed the buffer holds a
 * candidate frame and the start of the next one (260 + 8), and there is room to spare so that
 * appending to a full-looking buffer always makes progress. */
#define BUFFER_CAPACITY 544
#define MBAP_HEADER 6 /* transaction, protocol, length: enough to know the frame's size */

/* ---- connections ---- */

struct held {
    struct held *next;
    uint32_t seq;
    uint32_t length;
    uint64_t packet;
    int64_t time_us;
    uint8_t bytes[];
};

struct direction {
    uint32_t next_seq; /* the next byte expected */
    uint32_t fin_seq;  /* where the FIN is, once seen */
    uint8_t started;   /* next_seq is known */
    uint8_t synced;    /* at a frame boundary (else searching for one) */
    uint8_t fin;       /* a FIN was seen */
    uint8_t closed;    /* every byte up to the FIN was taken */
    uint8_t candidate_set;
    uint16_t buffer_length;
    uint8_t *buffer;   /* from the pool while it holds bytes, else NULL */
    struct held *held; /* out of order, sorted by sequence number */
    uint32_t held_bytes;
    uint32_t held_count;
    /* The packet that completed a frame still waiting for confirmation (resynchronising). */
    uint64_t candidate_packet;
    int64_t candidate_time;
};

struct stream_key {
    uint8_t client[16];
    uint8_t server[16];
    uint16_t client_port;
    uint16_t server_port;
    uint8_t family; /* AF_INET or AF_INET6 */
    uint8_t padding[3];
};

struct stream {
    struct stream_key key;
    struct stream *hash_next;
    struct stream *older, *newer; /* least recently used order */
    uint8_t ignored;     /* TLS (on a TLS port or by its first bytes): counted, never read */
    uint8_t tls_checked; /* the client's first bytes were looked at */
    struct direction to_server, to_client;
};

_Static_assert(sizeof(struct stream_key) == 40, "the key is hashed and compared as 40 bytes");

/* ---- one decoded TCP segment ---- */

struct segment {
    struct stream_key key; /* client and server already told apart */
    int to_server;
    int tls_port;
    uint32_t seq, ack;
    uint8_t flags;
    const uint8_t *payload;
    size_t length;  /* payload bytes captured */
    size_t missing; /* payload bytes on the wire but not in the capture (snaplen) */
};

struct reader {
    struct capture_stats *stats;
    observed_visit visit;
    void *data;
    int stop; /* the visitor's nonzero answer: nothing more is delivered */
    uint8_t modbus_ports[8192];
    uint8_t tls_ports[8192];
    int datalink;
    uint64_t packet;
    int64_t time_us;
    /* connections: a fixed array, a chained hash table and an LRU list */
    struct stream *streams;
    size_t stream_capacity;
    size_t streams_fresh; /* slots never used yet */
    struct stream *free_streams;
    struct stream **buckets;
    size_t bucket_mask;
    struct stream *newest, *oldest;
    void *free_buffers; /* pool of BUFFER_CAPACITY buffers, linked through their first bytes */
    uint64_t held_total;
    /* "FILE: packet " with room for the number */
    char *origin;
    size_t origin_prefix;
};

static uint16_t be16(const uint8_t *bytes) {
    return (uint16_t)(bytes[0] << 8 | bytes[1]);
}

static uint32_t be32(const uint8_t *bytes) {
    return (uint32_t)bytes[0] << 24 | (uint32_t)bytes[1] << 16 | (uint32_t)bytes[2] << 8 | bytes[3];
}

/* Sequence numbers wrap at 2^32: compare by the sign of the difference. */
static int seq_before(uint32_t a, uint32_t b) {
    return (int32_t)(a - b) < 0;
}

static int port_in(const uint8_t *set, uint16_t port) {
    return (set[port >> 3] >> (port & 7)) & 1;
}

static void port_add(uint8_t *set, uint16_t port) {
    set[port >> 3] |= (uint8_t)(1u << (port & 7));
}

/* ---- the buffer pool ---- */

static uint8_t *buffer_get(struct reader *reader) {
    if (reader->free_buffers != NULL) {
        void *buffer = reader->free_buffers;
        memcpy(&reader->free_buffers, buffer, sizeof(void *));
        return buffer;
    }
    return malloc(BUFFER_CAPACITY);
}

static void buffer_put(struct reader *reader, uint8_t *buffer) {
    memcpy(buffer, &reader->free_buffers, sizeof(void *));
    reader->free_buffers = buffer;
}

static void direction_drop_buffer(struct reader *reader, struct direction *direction) {
    reader->stats->not_modbus += direction->buffer_length;
    direction->buffer_length = 0;
    direction->candidate_set = 0;
    if (direction->buffer != NULL)
        buffer_put(reader, direction->buffer);
    direction->buffer = NULL;
}

/* ---- framing ---- */

/* 1 if the 8 bytes at `bytes` look like the start of a frame: protocol 0, a length of 2..254,
 * a function code a client sends, or for the server's side also an exception (which is always
 * 3 bytes long). Used only to find a boundary, where a false frame costs more than a missed one. */
static int header_plausible(const uint8_t *bytes, int to_server) {
    if (bytes[2] != 0 || bytes[3] != 0)
        return 0;
    unsigned length = be16(bytes + 4);
    if (length < 2 || length > 254)
        return 0;
    uint8_t function = bytes[7];
    if (function >= 1 && function <= 127)
        return 1;
    return !to_server && function >= 0x81 && length == 3;
}

/* A frame that ends where a segment ends is taken without a following frame to confirm it if
 * its PDU decodes: clients send one request per segment, so this is how most boundaries are
 * found, with no delay. */
static int frame_decodes(const uint8_t *frame, size_t length, int to_server) {
    if (to_server) {
        struct mb_request request;
        return mb_request_decode(frame + 7, length - 7, &request) == 0;
    }
    struct mb_response response;
    return mb_response_decode(frame + 7, length - 7, &response) == 0;
}

enum scan { SCAN_FOUND, SCAN_WAIT, SCAN_NONE };

/* Looks for a frame boundary in bytes[0..length): FOUND at *skip (a plausible frame followed by
 * another plausible header, or ending with the segment and decoding), WAIT at *skip (a
 * plausible frame whose confirmation has not arrived yet) or NONE (no frame can start before
 * *skip). */
static enum scan resync_scan(const uint8_t *bytes, size_t length, int at_segment_end, int to_server,
                             size_t *skip) {
    size_t at = 0;
    for (; at + 8 <= length; at++) {
        if (!header_plausible(bytes + at, to_server))
            continue;
        size_t end = at + MBAP_HEADER + be16(bytes + at + 4);
        if (end + 8 <= length) {
            if (header_plausible(bytes + end, to_server)) {
                *skip = at;
                return SCAN_FOUND;
            }
            continue;
        }
        if (end == length && at_segment_end && frame_decodes(bytes + at, end - at, to_server)) {
            *skip = at;
            return SCAN_FOUND;
        }
        *skip = at;
        return SCAN_WAIT;
    }
    *skip = at;
    return SCAN_NONE;
}

static void frame_origin(struct reader *reader, uint64_t packet) {
    char digits[24];
    size_t count = 0;
    do {
        digits[count++] = (char)('0' + packet % 10);
        packet /= 10;
    } while (packet > 0);
    char *out = reader->origin + reader->origin_prefix;
    while (count > 0)
        *out++ = digits[--count];
    *out = '\0';
}

static void frame_emit(struct reader *reader, const struct stream *stream, int to_server,
                       const uint8_t *frame, size_t length, uint64_t packet, int64_t time_us) {
    uint8_t function = frame[7];
    if (!to_server) {
        if (function == 0 || function == 0x80)
            reader->stats->not_modbus += length;
        else
            reader->stats->responses++;
        return;
    }
    /* A frame that framed but whose function code no client sends: not a request. */
    if (function == 0 || function >= 0x80) {
        reader->stats->not_modbus += length;
        return;
    }
    struct observed request;
    memset(&request, 0, sizeof request);
    request.time_us = time_us;
    if (stream->key.family == AF_INET) {
        struct sockaddr_in *address = (struct sockaddr_in *)&request.address;
        address->sin_family = AF_INET;
        address->sin_port = htons(stream->key.client_port);
        memcpy(&address->sin_addr, stream->key.client, 4);
        request.address_length = sizeof *address;
    } else {
        struct sockaddr_in6 *address = (struct sockaddr_in6 *)&request.address;
        address->sin6_family = AF_INET6;
        address->sin6_port = htons(stream->key.client_port);
        memcpy(&address->sin6_addr, stream->key.client, 16);
        request.address_length = sizeof *address;
    }
    request.unit = frame[6];
    request.pdu = frame + 7;
    request.pdu_length = length - 7;
    frame_origin(reader, packet);
    request.origin = reader->origin;
    reader->stats->requests++;
    int rc = reader->visit(reader->data, &request);
    if (rc != 0)
        reader->stop = rc;
}

/* Frames what bytes[0..length) holds and returns how many bytes it used: whole frames, and
 * bytes found not to be Modbus; it stops at a frame not yet complete. */
static size_t frame_view(struct reader *reader, struct stream *stream, struct direction *direction,
                         int to_server, const uint8_t *bytes, size_t length, int at_segment_end,
                         uint64_t packet, int64_t time_us) {
    size_t offset = 0;
    while (offset < length && reader->stop == 0) {
        uint64_t frame_packet = packet;
        int64_t frame_time = time_us;
        if (!direction->synced) {
            size_t skip;
            enum scan scan =
                resync_scan(bytes + offset, length - offset, at_segment_end, to_server, &skip);
            if (skip > 0) {
                reader->stats->not_modbus += skip;
                direction->candidate_set = 0;
                offset += skip;
            }
            if (scan == SCAN_NONE)
                return offset;
            size_t frame_length = MBAP_HEADER + (size_t)be16(bytes + offset + 4);
            if (scan == SCAN_WAIT) {
                /* The frame was sent when its last byte was: remember that packet for when
                 * the next frame confirms it. */
                if (!direction->candidate_set && frame_length <= length - offset) {
                    direction->candidate_set = 1;
                    direction->candidate_packet = packet;
                    direction->candidate_time = time_us;
                }
                return offset;
            }
            direction->synced = 1;
            if (direction->candidate_set) {
                frame_packet = direction->candidate_packet;
                frame_time = direction->candidate_time;
                direction->candidate_set = 0;
            }
        }
        if (length - offset < MBAP_HEADER)
            return offset;
        const uint8_t *frame = bytes + offset;
        unsigned mbap_length = be16(frame + 4);
        if (frame[2] != 0 || frame[3] != 0 || mbap_length < 2 || mbap_length > 254) {
            direction->synced = 0;
            reader->stats->resynced++;
            continue;
        }
        size_t frame_length = MBAP_HEADER + mbap_length;
        if (length - offset < frame_length)
            return offset;
        frame_emit(reader, stream, to_server, frame, frame_length, frame_packet, frame_time);
        offset += frame_length;
    }
    return offset;
}

/* The bytes still needed to finish the frame at the start of a synced buffer; 0 if its header
 * is broken (the whole chunk is then taken and searched). */
static size_t frame_missing(const struct direction *direction) {
    if (direction->buffer_length < MBAP_HEADER)
        return MBAP_HEADER - direction->buffer_length;
    const uint8_t *header = direction->buffer;
    unsigned mbap_length = be16(header + 4);
    if (header[2] != 0 || header[3] != 0 || mbap_length < 2 || mbap_length > 254)
        return 0;
    size_t frame_length = MBAP_HEADER + mbap_length;
    return frame_length > direction->buffer_length ? frame_length - direction->buffer_length : 0;
}

/* TLS records start with a content type of 20..23 and a version of 3.x; a Modbus frame cannot
 * (its protocol id would be 0x03xx). */
static int looks_like_tls(const uint8_t *bytes, size_t length) {
    return length >= 3 && bytes[0] >= 0x14 && bytes[0] <= 0x17 && bytes[1] == 0x03 &&
           bytes[2] <= 0x04;
}

static void stream_ignore(struct reader *reader, struct stream *stream);

/* In-order bytes of one direction, straight from a segment. */
static void direction_take(struct reader *reader, struct stream *stream, int to_server,
                           const uint8_t *bytes, size_t length, uint64_t packet, int64_t time_us) {
    struct direction *direction = to_server ? &stream->to_server : &stream->to_client;
    if (stream->ignored || reader->stop != 0)
        return;
    if (to_server && !stream->tls_checked && length > 0) {
        stream->tls_checked = 1;
        if (looks_like_tls(bytes, length)) {
            reader->stats->tls_streams++;
            stream_ignore(reader, stream);
            return;
        }
    }
    while (length > 0 && reader->stop == 0) {
        if (direction->buffer_length == 0) {
            size_t used =
                frame_view(reader, stream, direction, to_server, bytes, length, 1, packet, time_us);
            bytes += used;
            length -= used;
            if (length == 0 || reader->stop != 0)
                return;
            /* What is left is shorter than a frame (or a frame and the start of the next while
             * a boundary is confirmed): it fits. */
            direction->buffer = buffer_get(reader);
            if (direction->buffer == NULL) {
                reader->stats->not_modbus += length;
                direction->synced = 0;
                reader->stats->resynced++;
                return;
            }
            memcpy(direction->buffer, bytes, length);
            direction->buffer_length = (uint16_t)length;
            return;
        }
        size_t chunk = BUFFER_CAPACITY - direction->buffer_length;
        if (chunk > length)
            chunk = length;
        if (direction->synced) {
            /* Copy only up to the end of the frame, so that the frames after it are parsed
             * where they lie. */
            size_t missing = frame_missing(direction);
            if (missing > 0 && missing < chunk)
                chunk = missing;
        }
        memcpy(direction->buffer + direction->buffer_length, bytes, chunk);
        direction->buffer_length = (uint16_t)(direction->buffer_length + chunk);
        bytes += chunk;
        length -= chunk;
        size_t used = frame_view(reader, stream, direction, to_server, direction->buffer,
                                 direction->buffer_length, length == 0, packet, time_us);
        if (used > 0) {
            memmove(direction->buffer, direction->buffer + used, direction->buffer_length - used);
            direction->buffer_length = (uint16_t)(direction->buffer_length - used);
        }
        if (direction->buffer_length == 0) {
            buffer_put(reader, direction->buffer);
            direction->buffer = NULL;
        }
    }
}

/* ---- reassembly ---- */

/* The bytes from next_seq up to `to` will never come: skip them and look for the next frame. */
static void direction_lose_until(struct reader *reader, struct direction *direction, uint32_t to) {
    reader->stats->gaps++;
    direction_drop_buffer(reader, direction);
    direction->next_seq = to;
    direction->synced = 0;
    reader->stats->resynced++;
}

static void direction_deliver(struct reader *reader, struct stream *stream, int to_server,
                              const uint8_t *bytes, size_t length, uint64_t packet,
                              int64_t time_us) {
    struct direction *direction = to_server ? &stream->to_server : &stream->to_client;
    direction->next_seq += (uint32_t)length;
    direction_take(reader, stream, to_server, bytes, length, packet, time_us);
}

static void held_free(struct reader *reader, struct direction *direction, struct held *held) {
    direction->held_bytes -= held->length;
    direction->held_count--;
    reader->held_total -= held->length;
    free(held);
}

/* Delivers the held segments the stream has reached, in order. */
static void direction_drain(struct reader *reader, struct stream *stream, int to_server) {
    struct direction *direction = to_server ? &stream->to_server : &stream->to_client;
    while (direction->held != NULL && !seq_before(direction->next_seq, direction->held->seq)) {
        struct held *held = direction->held;
        direction->held = held->next;
        uint32_t behind = direction->next_seq - held->seq;
        if (behind >= held->length) {
            reader->stats->retransmitted++;
        } else {
            if (behind > 0)
                reader->stats->retransmitted++;
            direction_deliver(reader, stream, to_server, held->bytes + behind,
                              held->length - behind, held->packet, held->time_us);
        }
        held_free(reader, direction, held);
    }
}

/* The hole in front of the first held segment is lost: jump over it. */
static void direction_skip_hole(struct reader *reader, struct stream *stream, int to_server) {
    struct direction *direction = to_server ? &stream->to_server : &stream->to_client;
    direction_lose_until(reader, direction, direction->held->seq);
    direction_drain(reader, stream, to_server);
}

/* Holds a segment that arrived ahead of a hole; returns 0 if it would break a bound. */
static int direction_hold(struct reader *reader, struct direction *direction, uint32_t seq,
                          const uint8_t *bytes, size_t length) {
    struct held **link = &direction->held;
    while (*link != NULL && seq_before((*link)->seq, seq))
        link = &(*link)->next;
    /* The same bytes held already (a retransmission of an early segment). */
    if (*link != NULL && (*link)->seq == seq && (*link)->length >= length) {
        reader->stats->retransmitted++;
        return 1;
    }
    if (direction->held_bytes + length > CAPTURE_HELD_PER_DIRECTION ||
        direction->held_count >= CAPTURE_HELD_SEGMENTS_PER_DIRECTION ||
        reader->held_total + length > CAPTURE_HELD_TOTAL)
        return 0;
    struct held *held = malloc(sizeof *held + length);
    if (held == NULL)
        return 0;
    held->seq = seq;
    held->length = (uint32_t)length;
    held->packet = reader->packet;
    held->time_us = reader->time_us;
    memcpy(held->bytes, bytes, length);
    held->next = *link;
    *link = held;
    direction->held_bytes += (uint32_t)length;
    direction->held_count++;
    reader->held_total += length;
    if (reader->held_total > reader->stats->held_bytes_max)
        reader->stats->held_bytes_max = reader->held_total;
    reader->stats->out_of_order++;
    return 1;
}

/* One segment's payload for a direction whose next_seq is known. */
static void direction_segment(struct reader *reader, struct stream *stream, int to_server,
                              uint32_t seq, const uint8_t *bytes, size_t length, size_t missing) {
    struct direction *direction = to_server ? &stream->to_server : &stream->to_client;
    for (;;) {
        int32_t ahead = (int32_t)(seq - direction->next_seq);
        if (ahead <= 0) {
            size_t behind = (size_t)(-(int64_t)ahead);
            if (behind >= length + missing) {
                reader->stats->retransmitted++;
                return;
            }
            if (behind > 0)
                reader->stats->retransmitted++;
            if (behind >= length) {
                missing -= behind - length;
                length = 0;
            } else {
                bytes += behind;
                length -= behind;
            }
            direction_deliver(reader, stream, to_server, bytes, length, reader->packet,
                              reader->time_us);
            if (missing > 0)
                direction_lose_until(reader, direction, direction->next_seq + (uint32_t)missing);
            direction_drain(reader, stream, to_server);
            return;
        }
        if (length == 0)
            return; /* only bytes the capture cut off: the hole shows when data follows */
        if (direction_hold(reader, direction, seq, bytes, length))
            return;
        /* Past a bound: the hole in front is declared lost, which makes room or brings this
         * segment in order. */
        if (direction->held != NULL && seq_before(direction->held->seq, seq))
            direction_skip_hole(reader, stream, to_server);
        else
            direction_lose_until(reader, direction, seq);
    }
}

/* Ends a direction: every hole is lost, what lies past them is framed, a partial frame is
 * dropped. */
static void direction_finish(struct reader *reader, struct stream *stream, int to_server) {
    struct direction *direction = to_server ? &stream->to_server : &stream->to_client;
    while (direction->held != NULL) {
        if (reader->stop != 0 || stream->ignored) {
            struct held *held = direction->held;
            direction->held = held->next;
            held_free(reader, direction, held);
            continue;
        }
        direction_skip_hole(reader, stream, to_server);
    }
    direction_drop_buffer(reader, direction);
}

static void stream_ignore(struct reader *reader, struct stream *stream) {
    stream->ignored = 1;
    direction_finish(reader, stream, 1);
    direction_finish(reader, stream, 0);
}

/* ---- the connection table ---- */

static uint32_t key_hash(const struct stream_key *key) {
    uint64_t words[5];
    memcpy(words, key, sizeof words);
    uint64_t hash = 0x9E3779B97F4A7C15u;
    for (int i = 0; i < 5; i++) {
        hash = (hash ^ words[i]) * 0xFF51AFD7ED558CCDu;
        hash ^= hash >> 32;
    }
    return (uint32_t)hash;
}

static void lru_unlink(struct reader *reader, struct stream *stream) {
    if (stream->newer != NULL)
        stream->newer->older = stream->older;
    else
        reader->newest = stream->older;
    if (stream->older != NULL)
        stream->older->newer = stream->newer;
    else
        reader->oldest = stream->newer;
    stream->newer = stream->older = NULL;
}

static void lru_push(struct reader *reader, struct stream *stream) {
    stream->older = reader->newest;
    stream->newer = NULL;
    if (reader->newest != NULL)
        reader->newest->newer = stream;
    else
        reader->oldest = stream;
    reader->newest = stream;
}

static void stream_free(struct reader *reader, struct stream *stream) {
    direction_finish(reader, stream, 1);
    direction_finish(reader, stream, 0);
    struct stream **link = &reader->buckets[key_hash(&stream->key) & reader->bucket_mask];
    while (*link != stream)
        link = &(*link)->hash_next;
    *link = stream->hash_next;
    lru_unlink(reader, stream);
    memset(stream, 0, sizeof *stream);
    stream->hash_next = reader->free_streams;
    reader->free_streams = stream;
}

static struct stream *stream_find(struct reader *reader, const struct stream_key *key) {
    struct stream *stream = reader->buckets[key_hash(key) & reader->bucket_mask];
    while (stream != NULL && memcmp(&stream->key, key, sizeof *key) != 0)
        stream = stream->hash_next;
    if (stream != NULL && stream != reader->newest) {
        lru_unlink(reader, stream);
        lru_push(reader, stream);
    }
    return stream;
}

static struct stream *stream_create(struct reader *reader, const struct stream_key *key) {
    if (reader->free_streams == NULL && reader->streams_fresh == reader->stream_capacity) {
        reader->stats->evicted++;
        stream_free(reader, reader->oldest);
    }
    struct stream *stream;
    if (reader->free_streams != NULL) {
        stream = reader->free_streams;
        reader->free_streams = stream->hash_next;
    } else {
        stream = &reader->streams[reader->streams_fresh++];
    }
    memset(stream, 0, sizeof *stream);
    stream->key = *key;
    struct stream **bucket = &reader->buckets[key_hash(key) & reader->bucket_mask];
    stream->hash_next = *bucket;
    *bucket = stream;
    lru_push(reader, stream);
    return stream;
}

static void direction_reset(struct reader *reader, struct stream *stream, int to_server) {
    struct direction *direction = to_server ? &stream->to_server : &stream->to_client;
    direction_finish(reader, stream, to_server);
    memset(direction, 0, sizeof *direction);
}

/* ---- stage 2: one TCP segment ---- */

static void segment_handle(struct reader *reader, struct segment *segment) {
    int syn = (segment->flags & TCP_SYN) != 0;
    int to_server = segment->to_server;
    int opening = syn && to_server && !(segment->flags & TCP_ACK);
    struct stream *stream = stream_find(reader, &segment->key);
    if (stream != NULL && stream->ignored) {
        /* Only the end of a TLS connection and the start of the next on the same addresses
         * and ports matter (a repeated SYN is not a new one). */
        if (segment->flags & TCP_RST) {
            stream_free(reader, stream);
            return;
        }
        if (!opening ||
            (stream->to_server.started && segment->seq + 1 == stream->to_server.next_seq))
            return;
        stream_free(reader, stream);
        stream = NULL;
    }
    if (stream == NULL) {
        /* Pure acknowledgements and resets of connections not followed start nothing. */
        if (!syn && segment->length == 0 && segment->missing == 0)
            return;
        if (segment->flags & TCP_RST)
            return;
        stream = stream_create(reader, &segment->key);
        if (segment->tls_port) {
            stream->ignored = 1;
            reader->stats->tls_streams++;
            if (opening) {
                stream->to_server.started = 1;
                stream->to_server.next_seq = segment->seq + 1;
            }
            return;
        }
        reader->stats->streams++;
    }
    struct direction *direction = to_server ? &stream->to_server : &stream->to_client;
    struct direction *other = to_server ? &stream->to_client : &stream->to_server;
    uint32_t seq = segment->seq;
    if (syn) {
        if (direction->started && seq + 1 != direction->next_seq) {
            /* A new connection on the same addresses and ports (or a new answer to it). */
            if (opening) {
                direction_reset(reader, stream, 1);
                direction_reset(reader, stream, 0);
                stream->tls_checked = 0;
                reader->stats->streams++;
            } else {
                direction_reset(reader, stream, to_server);
            }
        }
        if (!direction->started) {
            direction->started = 1;
            direction->synced = 1;
            direction->next_seq = seq + 1;
        }
        seq++;
    }
    if (!direction->started) {
        if (segment->length == 0 && segment->missing == 0)
            return;
        /* The capture starts in the middle of this direction. */
        direction->started = 1;
        direction->next_seq = seq;
        direction->synced = 0;
        reader->stats->resynced++;
    }
    /* The peer acknowledged bytes the capture never showed, ahead of which data is held:
     * they were lost by the capture, not by the network, and will not be sent again. */
    if ((segment->flags & TCP_ACK) && other->started && other->held != NULL &&
        seq_before(other->next_seq, segment->ack)) {
        while (other->held != NULL && seq_before(other->next_seq, segment->ack) &&
               !seq_before(segment->ack, other->held->seq))
            direction_skip_hole(reader, stream, !to_server);
    }
    if (segment->length > 0 || segment->missing > 0)
        direction_segment(reader, stream, to_server, seq, segment->payload, segment->length,
                          segment->missing);
    if (segment->flags & TCP_FIN) {
        direction->fin = 1;
        direction->fin_seq = seq + (uint32_t)(segment->length + segment->missing);
    }
    if (direction->fin && direction->next_seq == direction->fin_seq)
        direction->closed = 1;
    if ((segment->flags & TCP_RST) || (stream->to_server.closed && stream->to_client.closed))
        stream_free(reader, stream);
}

/* ---- stage 1: link, network and transport headers ---- */

/* Fills in the TCP part of `segment` from a TCP header and what follows; 0 if it is not one. */
static int packet_tcp(struct reader *reader, struct segment *segment, const uint8_t *tcp,
                      size_t captured, size_t wire, const uint8_t *source,
                      const uint8_t *destination, size_t address_length) {
    if (captured < 20 || wire < 20)
        return 0;
    size_t data_offset = (size_t)(tcp[12] >> 4) * 4;
    if (data_offset < 20 || data_offset > wire || data_offset > captured)
        return 0;
    uint16_t source_port = be16(tcp);
    uint16_t destination_port = be16(tcp + 2);
    int to_server;
    int modbus_source = port_in(reader->modbus_ports, source_port);
    int modbus_destination = port_in(reader->modbus_ports, destination_port);
    if (modbus_source && modbus_destination) {
        /* Both ends on a Modbus port: the lower port (then address) is the server, the same
         * answer for both directions. */
        int order = source_port != destination_port ? (destination_port < source_port ? -1 : 1)
                                                    : memcmp(destination, source, address_length);
        to_server = order <= 0;
    } else if (modbus_destination) {
        to_server = 1;
    } else if (modbus_source) {
        to_server = 0;
    } else if (port_in(reader->tls_ports, destination_port)) {
        to_server = 1;
        segment->tls_port = 1;
    } else if (port_in(reader->tls_ports, source_port)) {
        to_server = 0;
        segment->tls_port = 1;
    } else {
        return 0;
    }
    memset(&segment->key, 0, sizeof segment->key);
    segment->key.family = address_length == 4 ? AF_INET : AF_INET6;
    memcpy(segment->key.client, to_server ? source : destination, address_length);
    memcpy(segment->key.server, to_server ? destination : source, address_length);
    segment->key.client_port = to_server ? source_port : destination_port;
    segment->key.server_port = to_server ? destination_port : source_port;
    segment->to_server = to_server;
    segment->seq = be32(tcp + 4);
    segment->ack = be32(tcp + 8);
    segment->flags = tcp[13];
    segment->payload = tcp + data_offset;
    size_t payload_wire = wire - data_offset;
    size_t payload_captured = captured - data_offset;
    if (payload_captured > payload_wire)
        payload_captured = payload_wire;
    segment->length = payload_captured;
    segment->missing = payload_wire - payload_captured;
    return 1;
}

/* `record_cut`: the record is shorter than the packet was, so a length in a header that runs
 * past the captured bytes is the snaplen at work, not a malformed packet. */
static int packet_ipv4(struct reader *reader, struct segment *segment, const uint8_t *ip,
                       size_t captured, int record_cut) {
    if (captured < 20 || (ip[0] >> 4) != 4)
        return 0;
    size_t header_length = (size_t)(ip[0] & 0x0F) * 4;
    size_t total = be16(ip + 2);
    if (total == 0 && !record_cut)
        total = captured; /* TCP segmentation offload on the capturing host */
    if (header_length < 20 || header_length > captured || total < header_length)
        return 0;
    /* Later fragments carry no TCP header; the first one is read as far as it goes. */
    if ((be16(ip + 6) & 0x1FFF) != 0 || ip[9] != IPPROTO_TCP)
        return 0;
    if (total > captured && !record_cut)
        total = captured;
    size_t available = captured < total ? captured : total;
    return packet_tcp(reader, segment, ip + header_length, available - header_length,
                      total - header_length, ip + 12, ip + 16, 4);
}

static int packet_ipv6(struct reader *reader, struct segment *segment, const uint8_t *ip,
                       size_t captured, int record_cut) {
    if (captured < 40 || (ip[0] >> 4) != 6)
        return 0;
    size_t total = 40 + (size_t)be16(ip + 4);
    if (total == 40 && !record_cut)
        total = captured; /* a jumbogram, or offload */
    if (total > captured && !record_cut)
        total = captured;
    size_t available = captured < total ? captured : total;
    uint8_t next = ip[6];
    size_t offset = 40;
    /* Hop-by-hop, routing and destination options are skipped; a fragment header means a
     * reassembly this reader does not do. */
    while (next == 0 || next == 43 || next == 60) {
        if (offset + 8 > available)
            return 0;
        size_t length = ((size_t)ip[offset + 1] + 1) * 8;
        next = ip[offset];
        offset += length;
        if (offset > available)
            return 0;
    }
    if (next != IPPROTO_TCP)
        return 0;
    return packet_tcp(reader, segment, ip + offset, available - offset, total - offset, ip + 8,
                      ip + 24, 16);
}

/* Reads the link layer: returns 4 or 6 with *network set to the IP header, or 0. */
static int packet_network(const struct reader *reader, const uint8_t *bytes, size_t captured,
                          size_t *network) {
    uint16_t type;
    size_t offset;
    switch (reader->datalink) {
    case DLT_EN10MB:
        if (captured < 14)
            return 0;
        type = be16(bytes + 12);
        offset = 14;
        break;
    case DLT_LINUX_SLL:
        if (captured < 16)
            return 0;
        type = be16(bytes + 14);
        offset = 16;
        break;
    case DLT_LINUX_SLL2:
        if (captured < 20)
            return 0;
        type = be16(bytes);
        offset = 20;
        break;
    case DLT_NULL:
    case DLT_LOOP: {
        if (captured < 4)
            return 0;
        /* The address family in the byte order of the machine that captured (DLT_NULL) or
         * in network order (DLT_LOOP): whichever reading is small. */
        uint32_t little = (uint32_t)bytes[0] | (uint32_t)bytes[1] << 8 | (uint32_t)bytes[2] << 16 |
                          (uint32_t)bytes[3] << 24;
        uint32_t family = little < 256 ? little : be32(bytes);
        *network = 4;
        if (family == 2)
            return 4;
        /* AF_INET6 is 10 on Linux, 24, 28 or 30 on the BSDs and macOS. */
        if (family == 10 || family == 24 || family == 28 || family == 30)
            return 6;
        return 0;
    }
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
        if (captured < 1)
            return 0;
        *network = 0;
        return (bytes[0] >> 4) == 4 ? 4 : (bytes[0] >> 4) == 6 ? 6 : 0;
    default:
        return 0;
    }
    /* 802.1Q, 802.1ad (QinQ) and the older QinQ type, any number deep. */
    while (type == 0x8100 || type == 0x88A8 || type == 0x9100) {
        if (offset + 4 > captured)
            return 0;
        type = be16(bytes + offset + 2);
        offset += 4;
    }
    *network = offset;
    return type == 0x0800 ? 4 : type == 0x86DD ? 6 : 0;
}

static void packet_handle(struct reader *reader, const struct pcap_pkthdr *header,
                          const uint8_t *bytes) {
    size_t captured = header->caplen;
    int record_cut = header->caplen < header->len;
    if (record_cut)
        reader->stats->truncated_packets++;
    size_t network = 0;
    int version = packet_network(reader, bytes, captured, &network);
    struct segment segment;
    segment.tls_port = 0;
    int tcp = 0;
    if (version == 4)
        tcp = packet_ipv4(reader, &segment, bytes + network, captured - network, record_cut);
    else if (version == 6)
        tcp = packet_ipv6(reader, &segment, bytes + network, captured - network, record_cut);
    if (!tcp || segment.tls_port) {
        reader->stats->other_packets++;
        if (!tcp)
            return;
    } else {
        reader->stats->modbus_packets++;
    }
    segment_handle(reader, &segment);
}

/* ---- the file ---- */

/* Microseconds since the epoch; 0 (unknown) for a time too far off to count in 64 bits, which
 * a pcapng timestamp can be. */
static int64_t packet_time(const struct pcap_pkthdr *header) {
    const int64_t limit = INT64_MAX / 1000000 - 1;
    int64_t seconds = (int64_t)header->ts.tv_sec;
    if (seconds > limit || seconds < -limit)
        return 0;
    return seconds * 1000000 + (int64_t)header->ts.tv_usec;
}

static int supported_link(int datalink) {
    switch (datalink) {
    case DLT_EN10MB:
    case DLT_LINUX_SLL:
    case DLT_LINUX_SLL2:
    case DLT_NULL:
    case DLT_LOOP:
    case DLT_RAW:
    case DLT_IPV4:
    case DLT_IPV6:
        return 1;
    default:
        return 0;
    }
}

static int reader_setup(struct reader *reader, const char *path,
                        const struct capture_options *options) {
    static const uint16_t default_port = 502, default_tls_port = 802;
    const uint16_t *ports = &default_port, *tls_ports = &default_tls_port;
    size_t port_count = 1, tls_port_count = 1;
    size_t max_streams = CAPTURE_MAX_STREAMS;
    if (options != NULL) {
        if (options->ports != NULL && options->port_count > 0) {
            ports = options->ports;
            port_count = options->port_count;
        }
        if (options->tls_ports != NULL && options->tls_port_count > 0) {
            tls_ports = options->tls_ports;
            tls_port_count = options->tls_port_count;
        }
        if (options->max_streams > 0)
            max_streams = options->max_streams;
    }
    for (size_t i = 0; i < port_count; i++)
        port_add(reader->modbus_ports, ports[i]);
    for (size_t i = 0; i < tls_port_count; i++)
        if (!port_in(reader->modbus_ports, tls_ports[i]))
            port_add(reader->tls_ports, tls_ports[i]);
    /* The slots are zeroed pages the system maps on first touch, so a small capture costs
     * little of the table's full size. */
    reader->stream_capacity = max_streams;
    reader->streams = calloc(max_streams, sizeof *reader->streams);
    size_t buckets = 1;
    while (buckets < max_streams * 2)
        buckets *= 2;
    reader->buckets = calloc(buckets, sizeof *reader->buckets);
    reader->bucket_mask = buckets - 1;
    size_t path_length = strlen(path);
    reader->origin = malloc(path_length + 40);
    if (reader->streams == NULL || reader->buckets == NULL || reader->origin == NULL)
        return -1;
    memcpy(reader->origin, path, path_length);
    memcpy(reader->origin + path_length, ": packet ", 10);
    reader->origin_prefix = path_length + 9;
    return 0;
}

static void reader_finish(struct reader *reader) {
    /* Oldest first, so that what the capture ends with is framed in the order it came. */
    while (reader->oldest != NULL)
        stream_free(reader, reader->oldest);
}

static void reader_free(struct reader *reader) {
    while (reader->free_buffers != NULL) {
        void *buffer = reader->free_buffers;
        memcpy(&reader->free_buffers, buffer, sizeof(void *));
        free(buffer);
    }
    free(reader->streams);
    free(reader->buckets);
    free(reader->origin);
}

/* libpcap's messages are one line, but a control character in one or in the path would break
 * the caller's log line. */
static void error_one_line(char *error) {
    for (char *at = error; *at != '\0'; at++)
        if ((unsigned char)*at < 0x20 || *at == 0x7F)
            *at = ' ';
}

int capture_read(const char *path, const struct capture_options *options, observed_visit visit,
                 void *data, struct capture_stats *stats, char *error, size_t capacity) {
    struct capture_stats scratch;
    if (stats == NULL)
        stats = &scratch;
    memset(stats, 0, sizeof *stats);
    /* snprintf with a capacity of 0 writes nothing, so a caller may pass NULL, 0. */
    char no_error[1];
    if (error == NULL || capacity == 0) {
        error = no_error;
        capacity = sizeof no_error;
    }
    error[0] = '\0';
    int standard_input = strcmp(path, "-") == 0;
    FILE *file = standard_input ? stdin : fopen(path, "rb");
    if (file == NULL) {
        snprintf(error, capacity, "%s: %s", path, strerror(errno));
        error_one_line(error);
        return -1;
    }
    struct stat status;
    if (fstat(fileno(file), &status) == 0 && S_ISREG(status.st_mode) && status.st_size == 0) {
        snprintf(error, capacity, "%s: an empty file, not a capture", path);
        error_one_line(error);
        if (!standard_input)
            fclose(file);
        return -1;
    }
    char pcap_error[PCAP_ERRBUF_SIZE] = "";
    /* Microseconds whatever the file holds, which is what `struct observed` counts in. */
    pcap_t *pcap =
        pcap_fopen_offline_with_tstamp_precision(file, PCAP_TSTAMP_PRECISION_MICRO, pcap_error);
    if (pcap == NULL) {
        snprintf(error, capacity, "%s: not a pcap or pcapng capture (%s)", path, pcap_error);
        error_one_line(error);
        if (!standard_input)
            fclose(file);
        return -1;
    }
    struct reader *reader = calloc(1, sizeof *reader);
    int result = 0;
    if (reader == NULL || reader_setup(reader, standard_input ? "stdin" : path, options) != 0) {
        snprintf(error, capacity, "%s: out of memory", path);
        result = -1;
        goto done;
    }
    reader->stats = stats;
    reader->visit = visit;
    reader->data = data;
    reader->datalink = pcap_datalink(pcap);
    if (!supported_link(reader->datalink)) {
        const char *name = pcap_datalink_val_to_name(reader->datalink);
        snprintf(error, capacity, "%s: link type %s (%d) cannot be read", path,
                 name != NULL ? name : "unknown", reader->datalink);
        result = -1;
        goto done;
    }
    uint64_t record_bytes = 0;
    for (;;) {
        struct pcap_pkthdr *header;
        const u_char *bytes;
        int rc = pcap_next_ex(pcap, &header, &bytes);
        if (rc == PCAP_ERROR_BREAK)
            break;
        if (rc != 1) {
            const char *message = pcap_geterr(pcap);
            if (strstr(message, "truncated") != NULL)
                snprintf(error, capacity, "%s: truncated at packet %llu", path,
                         (unsigned long long)stats->packets + 1);
            else
                snprintf(error, capacity, "%s: packet %llu: %s", path,
                         (unsigned long long)stats->packets + 1, message);
            result = -1;
            break;
        }
        stats->packets++;
        record_bytes += 16 + (uint64_t)header->caplen;
        reader->packet = stats->packets;
        reader->time_us = packet_time(header);
        packet_handle(reader, header, bytes);
        if (reader->stop != 0)
            break;
    }
    /* What was held is framed even after a read error: everything before the cut counts. */
    reader_finish(reader);
    if (reader->stop != 0)
        result = reader->stop;
    long position = standard_input ? -1 : ftell(file);
    stats->bytes = position >= 0 ? (uint64_t)position : record_bytes + 24;
done:
    if (reader != NULL)
        reader_free(reader);
    free(reader);
    pcap_close(pcap);
    error_one_line(error);
    return result;
}
