/* SPDX-License-Identifier: MIT */
#include "app/daemon/ship_mqtt.h"

#include <poll.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "app/daemon/ship_stream.h"

#define WINDOW_MAX 2048 /* PUBLISH packets in flight, at most */
#define CONNACK_TIMEOUT_MS 10000
#define IN_MAX (64 * 1024)   /* the largest packet taken from the broker */
#define OUT_MAX (256 * 1024) /* bytes of packets not yet written */
#define TOPIC_MAX 512

/* Packet types (the fixed header's high nibble). */
enum {
    CONNECT = 1,
    CONNACK = 2,
    PUBLISH = 3,
    PUBACK = 4,
    PINGREQ = 12,
    PINGRESP = 13,
    DISCONNECT = 14
};

struct flight {
    uint16_t id;
    uint8_t record;  /* 1: a record with `ticket`; 0: a notice */
    uint8_t acked;   /* its PUBACK came (maybe ahead of an earlier one's) */
    uint8_t refused; /* ...with a reason code of failure, or it could not be sent at all */
    uint16_t reason;
    uint64_t ticket;
};

struct mqtt_link {
    struct ship_link base;
    struct ship_stream stream;
    int protocol;
    char *client_id, *username, *password, *prefix, *will;
    unsigned keepalive_s;

    int session; /* 1 once CONNACK accepted the connection */
    int64_t connack_deadline;
    int64_t last_sent, ping_sent;
    uint16_t next_id;
    unsigned window;     /* the broker's Receive Maximum (MQTT 5), at most WINDOW_MAX */
    uint32_t packet_max; /* the broker's Maximum Packet Size (MQTT 5); 0: none */
    struct flight flight[WINDOW_MAX];
    size_t flight_head, flight_count;
    uint8_t in[IN_MAX];
    size_t in_length;
};

int ship_mqtt_varint(const uint8_t *data, size_t length, uint32_t *value) {
    uint32_t result = 0;
    for (size_t i = 0; i < 4; i++) {
        if (i >= length)
            return 0;
        result |= (uint32_t)(data[i] & 0x7F) << (7 * i);
        if ((data[i] & 0x80) == 0) {
            *value = result;
            return (int)i + 1;
        }
    }
    return -1;
}

static size_t varint_size(uint32_t value) {
    return value < 128 ? 1 : value < 16384 ? 2 : value < 2097152 ? 3 : 4;
}

static uint8_t *put_varint(uint8_t *at, uint32_t value) {
    do {
        uint8_t byte = value & 0x7F;
        value >>= 7;
        *at++ = (uint8_t)(byte | (value > 0 ? 0x80 : 0));
    } while (value > 0);
    return at;
}

static uint8_t *put_u16(uint8_t *at, unsigned value) {
    *at++ = (uint8_t)(value >> 8);
    *at++ = (uint8_t)value;
    return at;
}

static uint8_t *put_bytes(uint8_t *at, const void *data, size_t length) {
    at = put_u16(at, (unsigned)length);
    memcpy(at, data, length);
    return at + length;
}

static void forget(struct mqtt_link *link) {
    link->session = 0;
    link->in_length = 0;
    link->flight_head = link->flight_count = 0;
    link->ping_sent = 0;
    link->window = WINDOW_MAX;
    link->packet_max = 0;
}

/* Queues a packet of `type` (with `flags`) whose variable header and payload are `body`. */
static int queue_packet(struct mqtt_link *link, unsigned type, unsigned flags, const uint8_t *body,
                        size_t length) {
    uint8_t *at = ship_stream_reserve(&link->stream, 1 + 4 + length);
    if (at == NULL)
        return -1;
    uint8_t *start = at;
    *at++ = (uint8_t)(type << 4 | flags);
    at = put_varint(at, (uint32_t)length);
    if (length > 0)
        memcpy(at, body, length);
    ship_stream_commit(&link->stream, (size_t)(at - start) + length);
    link->last_sent = ship_monotonic_ms();
    return 0;
}

static int send_connect(struct mqtt_link *link) {
    size_t will_topic = strlen(link->prefix) + 7; /* "/status" */
    size_t need = 10 + (link->protocol == 5 ? 1 : 0) + 2 + strlen(link->client_id);
    if (link->will != NULL)
        need += (link->protocol == 5 ? 1 : 0) + 2 + will_topic + 2 + strlen(link->will);
    if (link->username != NULL)
        need += 2 + strlen(link->username);
    if (link->password != NULL)
        need += 2 + strlen(link->password);
    uint8_t *body = malloc(need);
    if (body == NULL)
        return -1;
    uint8_t *at = put_bytes(body, "MQTT", 4);
    *at++ = (uint8_t)link->protocol;
    unsigned flags = 0x02; /* clean session: what is in flight is the spool's to send again */
    if (link->will != NULL)
        flags |= 0x04 | 0x08 | 0x20; /* will, QoS 1, retained */
    if (link->username != NULL)
        flags |= 0x80;
    if (link->password != NULL)
        flags |= 0x40;
    *at++ = (uint8_t)flags;
    at = put_u16(at, link->keepalive_s);
    if (link->protocol == 5)
        *at++ = 0; /* no properties */
    at = put_bytes(at, link->client_id, strlen(link->client_id));
    if (link->will != NULL) {
        if (link->protocol == 5)
            *at++ = 0; /* no will properties */
        at = put_u16(at, (unsigned)will_topic);
        memcpy(at, link->prefix, will_topic - 7);
        memcpy(at + will_topic - 7, "/status", 7);
        at += will_topic;
        at = put_bytes(at, link->will, strlen(link->will));
    }
    if (link->username != NULL)
        at = put_bytes(at, link->username, strlen(link->username));
    if (link->password != NULL)
        at = put_bytes(at, link->password, strlen(link->password));
    int rc = queue_packet(link, CONNECT, 0, body, (size_t)(at - body));
    free(body);
    return rc;
}

static int mqtt_connect(struct ship_link *base, char *error, size_t capacity) {
    struct mqtt_link *link = (struct mqtt_link *)base;
    forget(link);
    return ship_stream_connect(&link->stream, error, capacity);
}

static int mqtt_wait_for(struct ship_link *base, short *events, int *timeout_ms) {
    struct mqtt_link *link = (struct mqtt_link *)base;
    int fd = ship_stream_wait_for(&link->stream, events, timeout_ms);
    if (fd < 0 || link->stream.state != STREAM_UP)
        return fd;
    int64_t now = ship_monotonic_ms(), next;
    if (!link->session)
        next = link->connack_deadline;
    else if (link->ping_sent != 0)
        next = link->ping_sent + (int64_t)link->keepalive_s * 1000;
    else
        next = link->last_sent + (int64_t)link->keepalive_s * 500;
    if (next - now < *timeout_ms)
        *timeout_ms = next > now ? (int)(next - now) : 0;
    return fd;
}

static const char *connack_reason(int protocol, unsigned code) {
    if (protocol != 5) {
        static const char *const v3[] = {
            "accepted",           "unacceptable protocol version", "identifier rejected",
            "server unavailable", "bad user name or password",     "not authorized"};
        return code < 6 ? v3[code] : "refused";
    }
    switch (code) {
    case 0x80:
        return "unspecified error";
    case 0x81:
        return "malformed packet";
    case 0x82:
        return "protocol error";
    case 0x84:
        return "unsupported protocol version";
    case 0x85:
        return "client identifier not valid";
    case 0x86:
        return "bad user name or password";
    case 0x87:
        return "not authorized";
    case 0x88:
        return "server unavailable";
    case 0x89:
        return "server busy";
    case 0x8A:
        return "banned";
    case 0x8C:
        return "bad authentication method";
    case 0x90:
        return "topic name invalid";
    case 0x93:
        return "receive maximum exceeded";
    case 0x95:
        return "packet too large";
    case 0x97:
        return "quota exceeded";
    case 0x99:
        return "payload format invalid";
    case 0x9A:
        return "retain not supported";
    case 0x9B:
        return "QoS not supported";
    case 0x9C:
        return "use another server";
    case 0x9D:
        return "server moved";
    case 0x9F:
        return "connection rate exceeded";
    default:
        return "refused";
    }
}

/* MQTT 5 properties of a CONNACK: Receive Maximum and Maximum Packet Size are kept, the rest
 * skipped. Returns 0, or -1 when they do not parse. */
static int connack_properties(struct mqtt_link *link, const uint8_t *at, size_t length) {
    const uint8_t *end = at + length;
    while (at < end) {
        unsigned id = *at++;
        size_t size;
        switch (id) {
        case 0x01:
        case 0x17:
        case 0x19:
        case 0x24:
        case 0x25:
        case 0x28:
        case 0x29:
        case 0x2A:
            size = 1;
            break;
        case 0x13:
        case 0x21:
        case 0x22:
        case 0x23:
            size = 2;
            break;
        case 0x02:
        case 0x11:
        case 0x18:
        case 0x27:
            size = 4;
            break;
        case 0x0B: {
            uint32_t ignored;
            int used = ship_mqtt_varint(at, (size_t)(end - at), &ignored);
            if (used <= 0)
                return -1;
            size = (size_t)used;
            break;
        }
        case 0x03:
        case 0x08:
        case 0x09:
        case 0x12:
        case 0x15:
        case 0x16:
        case 0x1A:
        case 0x1C:
        case 0x1F:
            if (end - at < 2)
                return -1;
            size = 2 + ((size_t)at[0] << 8 | at[1]);
            break;
        case 0x26: {
            if (end - at < 2)
                return -1;
            size_t first = 2 + ((size_t)at[0] << 8 | at[1]);
            if ((size_t)(end - at) < first + 2)
                return -1;
            size = first + 2 + ((size_t)at[first] << 8 | at[first + 1]);
            break;
        }
        default:
            return -1;
        }
        if ((size_t)(end - at) < size)
            return -1;
        if (id == 0x21) {
            unsigned maximum = (unsigned)at[0] << 8 | at[1];
            if (maximum == 0)
                return -1;
            link->window = maximum < WINDOW_MAX ? maximum : WINDOW_MAX;
        } else if (id == 0x27) {
            link->packet_max =
                (uint32_t)at[0] << 24 | (uint32_t)at[1] << 16 | (uint32_t)at[2] << 8 | at[3];
        }
        at += size;
    }
    return 0;
}

static struct flight *flight_at(struct mqtt_link *link, size_t index) {
    return &link->flight[(link->flight_head + index) % WINDOW_MAX];
}

/* Takes the packets done from the front of the window: records are acknowledged by ticket,
 * in order; refused ones are counted. */
static void pop_done(struct mqtt_link *link, struct ship_progress *progress) {
    while (link->flight_count > 0 && flight_at(link, 0)->acked) {
        struct flight *done = flight_at(link, 0);
        if (done->record) {
            progress->acked = done->ticket;
            progress->has_ack = 1;
            if (done->refused) {
                progress->refused++;
                if (done->reason != 0)
                    snprintf(progress->why, sizeof progress->why, "PUBACK %s (0x%02X)",
                             connack_reason(5, done->reason), done->reason);
                else
                    snprintf(progress->why, sizeof progress->why,
                             "a record larger than the broker's maximum packet size");
            }
        }
        link->flight_head = (link->flight_head + 1) % WINDOW_MAX;
        link->flight_count--;
    }
}

/* A PUBACK: its packet is done. */
static void take_puback(struct mqtt_link *link, unsigned id, unsigned reason,
                        struct ship_progress *progress) {
    for (size_t i = 0; i < link->flight_count; i++) {
        struct flight *entry = flight_at(link, i);
        if (entry->id != id || entry->acked)
            continue;
        entry->acked = 1;
        entry->refused = reason >= 0x80;
        entry->reason = (uint16_t)reason;
        break;
    }
    pop_done(link, progress);
}

/* One whole packet from the broker. Returns 0, or -1 with `error`. */
static int take_packet(struct mqtt_link *link, unsigned type, const uint8_t *body, size_t length,
                       struct ship_progress *progress, char *error, size_t capacity) {
    switch (type >> 4) {
    case CONNACK: {
        if (link->session || length < 2) {
            snprintf(error, capacity, "protocol error: an unexpected CONNACK");
            return -1;
        }
        if (body[1] != 0) {
            snprintf(error, capacity, "the broker refused the connection: %s",
                     connack_reason(link->protocol, body[1]));
            return -1;
        }
        if (link->protocol == 5) {
            uint32_t size;
            int used = ship_mqtt_varint(body + 2, length - 2, &size);
            if (used <= 0 || 2 + (size_t)used + size > length ||
                connack_properties(link, body + 2 + used, size) != 0) {
                snprintf(error, capacity, "protocol error: a CONNACK that does not parse");
                return -1;
            }
        }
        link->session = 1;
        return 0;
    }
    case PUBACK:
        if (!link->session || length < 2) {
            snprintf(error, capacity, "protocol error: a PUBACK out of place");
            return -1;
        }
        take_puback(link, (unsigned)body[0] << 8 | body[1],
                    link->protocol == 5 && length >= 3 ? body[2] : 0, progress);
        return 0;
    case PINGRESP:
        link->ping_sent = 0;
        return 0;
    case DISCONNECT:
        snprintf(error, capacity, "the broker disconnected%s%s", length >= 1 ? ": " : "",
                 length >= 1 ? connack_reason(5, body[0]) : "");
        return -1;
    default:
        snprintf(error, capacity, "protocol error: packet type %u from the broker", type >> 4);
        return -1;
    }
}

static int read_packets(struct mqtt_link *link, struct ship_progress *progress, char *error,
                        size_t capacity) {
    for (;;) {
        long got = ship_stream_read(&link->stream, link->in + link->in_length,
                                    sizeof link->in - link->in_length, error, capacity);
        if (got < 0)
            return -1;
        if (got == 0)
            return 0;
        link->in_length += (size_t)got;
        size_t at = 0;
        while (link->in_length - at >= 2) {
            uint32_t length;
            int used = ship_mqtt_varint(link->in + at + 1, link->in_length - at - 1, &length);
            if (used < 0 || (used > 0 && 1 + (size_t)used + length > sizeof link->in)) {
                snprintf(error, capacity, "protocol error: a packet too large or malformed");
                ship_stream_close(&link->stream);
                return -1;
            }
            if (used == 0 || link->in_length - at < 1 + (size_t)used + length)
                break;
            if (take_packet(link, link->in[at], link->in + at + 1 + used, length, progress, error,
                            capacity) != 0) {
                ship_stream_close(&link->stream);
                return -1;
            }
            at += 1 + (size_t)used + length;
        }
        memmove(link->in, link->in + at, link->in_length - at);
        link->in_length -= at;
    }
}

static int mqtt_step(struct ship_link *base, short revents, struct ship_progress *progress,
                     char *error, size_t capacity) {
    struct mqtt_link *link = (struct mqtt_link *)base;
    int was_up = link->stream.state == STREAM_UP;
    int state = ship_stream_advance(&link->stream, error, capacity);
    if (state <= 0)
        return state;
    int64_t now = ship_monotonic_ms();
    if (!was_up) {
        link->connack_deadline = now + CONNACK_TIMEOUT_MS;
        if (send_connect(link) != 0) {
            snprintf(error, capacity, "out of memory");
            ship_stream_close(&link->stream);
            return -1;
        }
    }
    if ((revents & (POLLIN | POLLHUP | POLLERR)) && read_packets(link, progress, error, capacity))
        return -1;
    if (!link->session && now >= link->connack_deadline) {
        snprintf(error, capacity, "the broker did not answer CONNECT");
        ship_stream_close(&link->stream);
        return -1;
    }
    if (link->session && link->ping_sent != 0 &&
        now - link->ping_sent >= (int64_t)link->keepalive_s * 1000) {
        snprintf(error, capacity, "the broker stopped answering (no PINGRESP)");
        ship_stream_close(&link->stream);
        return -1;
    }
    if (link->session && link->ping_sent == 0 &&
        now - link->last_sent >= (int64_t)link->keepalive_s * 500) {
        if (queue_packet(link, PINGREQ, 0, NULL, 0) != 0) {
            snprintf(error, capacity, "out of memory");
            ship_stream_close(&link->stream);
            return -1;
        }
        link->ping_sent = now;
    }
    pop_done(link, progress);
    if (ship_stream_flush(&link->stream, error, capacity) != 0)
        return -1;
    return link->session ? 1 : 0;
}

static int mqtt_room(struct ship_link *base) {
    struct mqtt_link *link = (struct mqtt_link *)base;
    return link->session && link->flight_count < link->window &&
           ship_stream_pending(&link->stream) < OUT_MAX;
}

/* Queues a PUBLISH with QoS 1 of `json` to PREFIX/`suffix`. Returns 0, 1 when it is larger
 * than the broker takes (nothing sent), -1 when out of memory. */
static int publish(struct mqtt_link *link, const char *suffix, const char *json, size_t length,
                   int retain, int record, uint64_t ticket) {
    char topic[TOPIC_MAX];
    int topic_length = snprintf(topic, sizeof topic, "%s/%s", link->prefix, suffix);
    if (topic_length < 0 || (size_t)topic_length >= sizeof topic)
        return 1;
    size_t body = 2 + (size_t)topic_length + 2 + (link->protocol == 5 ? 1 : 0) + length;
    if (link->packet_max != 0 && 1 + varint_size((uint32_t)body) + body > link->packet_max)
        return 1;
    uint8_t *at = ship_stream_reserve(&link->stream, 1 + 4 + body);
    if (at == NULL)
        return -1;
    if (++link->next_id == 0)
        link->next_id = 1;
    uint8_t *start = at;
    *at++ = (uint8_t)(PUBLISH << 4 | 0x02 | (retain ? 0x01 : 0));
    at = put_varint(at, (uint32_t)body);
    at = put_bytes(at, topic, (size_t)topic_length);
    at = put_u16(at, link->next_id);
    if (link->protocol == 5)
        *at++ = 0; /* no properties */
    memcpy(at, json, length);
    at += length;
    ship_stream_commit(&link->stream, (size_t)(at - start));
    link->last_sent = ship_monotonic_ms();
    *flight_at(link, link->flight_count++) =
        (struct flight){.id = link->next_id, .record = (uint8_t)record, .ticket = ticket};
    return 0;
}

static int mqtt_send(struct ship_link *base, const struct ship_record *record, uint64_t ticket,
                     char *error, size_t capacity) {
    struct mqtt_link *link = (struct mqtt_link *)base;
    char suffix[48];
    snprintf(suffix, sizeof suffix, "audit/%s", record->msgid[0] ? record->msgid : "record");
    int rc = publish(link, suffix, record->json, record->json_length, 0, 1, ticket);
    if (rc < 0) {
        snprintf(error, capacity, "out of memory");
        ship_stream_close(&link->stream);
        return -1;
    }
    if (rc > 0) {
        /* Larger than the broker takes: it cannot be delivered; skipped as refused would be. */
        *flight_at(link, link->flight_count++) =
            (struct flight){.record = 1, .acked = 1, .refused = 1, .ticket = ticket};
    }
    return 0;
}

static int mqtt_notice(struct ship_link *base, const char *name, const char *json, int retain,
                       char *error, size_t capacity) {
    struct mqtt_link *link = (struct mqtt_link *)base;
    if (!link->session || link->flight_count >= link->window)
        return 1;
    if (publish(link, name, json, strlen(json), retain, 0, 0) < 0) {
        snprintf(error, capacity, "out of memory");
        ship_stream_close(&link->stream);
        return -1;
    }
    return 0;
}

static void mqtt_disconnect(struct ship_link *base, int clean) {
    struct mqtt_link *link = (struct mqtt_link *)base;
    if (clean && link->session && queue_packet(link, DISCONNECT, 0, NULL, 0) == 0) {
        /* An orderly goodbye (no Last Will), written within half a second at most. */
        int64_t until = ship_monotonic_ms() + 500;
        char ignored[160];
        while (ship_stream_pending(&link->stream) > 0 && ship_monotonic_ms() < until) {
            struct pollfd wait = {link->stream.fd, POLLOUT, 0};
            if (poll(&wait, 1, 50) < 0 ||
                ship_stream_flush(&link->stream, ignored, sizeof ignored) != 0)
                break;
        }
    }
    ship_stream_close(&link->stream);
    forget(link);
}

static void mqtt_destroy(struct ship_link *base) {
    struct mqtt_link *link = (struct mqtt_link *)base;
    ship_stream_free(&link->stream);
    free(link->client_id);
    free(link->username);
    free(link->password);
    free(link->prefix);
    free(link->will);
    free(link);
}

static const struct ship_link_ops mqtt_ops = {
    .connect = mqtt_connect,
    .wait_for = mqtt_wait_for,
    .step = mqtt_step,
    .room = mqtt_room,
    .send = mqtt_send,
    .notice = mqtt_notice,
    .disconnect = mqtt_disconnect,
    .destroy = mqtt_destroy,
};

static char *copy(const char *text) {
    return text != NULL ? strdup(text) : NULL;
}

int ship_mqtt_create(const struct ship_mqtt_config *config, struct ship_link **out, char *error,
                     size_t capacity) {
    *out = NULL;
    struct mqtt_link *link = calloc(1, sizeof *link);
    if (link == NULL) {
        snprintf(error, capacity, "out of memory");
        return -1;
    }
    link->base.ops = &mqtt_ops;
    link->stream.fd = -1;
    link->protocol = config->protocol == 5 ? 5 : 4;
    link->keepalive_s = config->keepalive_s >= 5 ? config->keepalive_s : 5;
    link->client_id = copy(config->client_id);
    link->username = copy(config->username);
    link->password = copy(config->password);
    link->prefix = copy(config->prefix);
    link->will = copy(config->will);
    forget(link);
    if (link->client_id == NULL || link->prefix == NULL ||
        (config->username != NULL && link->username == NULL) ||
        (config->password != NULL && link->password == NULL) ||
        (config->will != NULL && link->will == NULL)) {
        snprintf(error, capacity, "out of memory");
        mqtt_destroy(&link->base);
        return -1;
    }
    if (ship_stream_init(&link->stream, config->host, config->port, config->tls, error, capacity) !=
        0) {
        mqtt_destroy(&link->base);
        return -1;
    }
    *out = &link->base;
    return 0;
}
