/* SPDX-License-Identifier: MIT */
/*
 * The floor for the gateway benchmark (bench/gateway-vs-proxies): the least a Modbus-aware TLS
 * gateway that multiplexes its clients onto one device connection can do per request on this
 * machine. One epoll loop; OpenSSL (mutual TLS, the same settings as the other paths) towards
 * the clients; one plain connection to the device; the MBAP length to find frames; every
 * request's transaction id swapped for one of the device connection's own (a 65,536-entry
 * table) and swapped back in the answer. Output is coalesced the way the gateway does it: one
 * send to the device and one SSL_write per client connection per loop round. Nothing else: no
 * decoding, no policy, no limits, no audit, no metrics, no deadlines.
 *
 *     floor_tls_proxy CERT KEY CA DEVICE_PORT
 *
 * Listens on 127.0.0.1 (an ephemeral port) and prints "listening on 127.0.0.1:PORT" on stderr;
 * the device is 127.0.0.1:DEVICE_PORT. Exits 0 on SIGTERM or SIGINT. A device connection that
 * the device closes (its idle timeout, between runs) is made again at once; requests that were
 * on it are lost. A client that sends something that is not MBAP (protocol id, length) is dropped.
 * Loopback only, by construction. A benchmark's yardstick, not a product: a client that stops
 * reading makes its output buffer grow (bounded by what the clients keep in flight).
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <openssl/err.h>
#include <openssl/ssl.h>
#include <signal.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/epoll.h>
#include <sys/signalfd.h>
#include <sys/socket.h>
#include <unistd.h>

#define MBAP 7
#define MAX_FRAME 260
#define READ_SIZE 65536
#define MAX_EVENTS 256
#define MAX_CLIENTS 1024
#define TAG_LISTEN UINT64_MAX
#define TAG_DEVICE (UINT64_MAX - 1)
#define TAG_SIGNAL (UINT64_MAX - 2)

struct buffer {
    uint8_t *data;
    size_t length, capacity, offset;
};

struct client {
    int fd;
    SSL *ssl;
    int handshaken;
    int dirty; /* output waiting for the end of the round */
    uint32_t generation;
    size_t partial;
    uint8_t in[MAX_FRAME];
    struct buffer out;
};

struct slot {
    uint16_t client; /* index + 1; 0: free */
    uint16_t tid;
    uint32_t generation;
};

static struct client clients[MAX_CLIENTS];
static struct slot slots[65536];
static uint16_t next_tid;
static int epoll_fd, device_fd;
static struct sockaddr_in device_address;
static struct buffer device_out;
static uint8_t device_in[MAX_FRAME + READ_SIZE];
static size_t device_partial;
static uint16_t dirty_list[MAX_CLIENTS];
static size_t dirty_count;

static void die(const char *what) {
    fprintf(stderr, "floor_tls_proxy: %s: %s\n", what, strerror(errno));
    exit(1);
}

static void append(struct buffer *buffer, const uint8_t *bytes, size_t length) {
    if (buffer->length + length > buffer->capacity) {
        size_t capacity = buffer->capacity ? buffer->capacity : 4096;
        while (capacity < buffer->length + length)
            capacity *= 2;
        buffer->data = realloc(buffer->data, capacity);
        if (!buffer->data)
            die("realloc");
        buffer->capacity = capacity;
    }
    memcpy(buffer->data + buffer->length, bytes, length);
    buffer->length += length;
}

static int frame_length(const uint8_t *header) {
    unsigned length = (unsigned)header[4] << 8 | header[5];
    if (header[2] || header[3] || length < 2 || length > 254)
        return -1;
    return (int)(6 + length);
}

static void close_client(struct client *client) {
    epoll_ctl(epoll_fd, EPOLL_CTL_DEL, client->fd, NULL);
    SSL_free(client->ssl);
    close(client->fd);
    client->fd = -1;
    client->ssl = NULL;
    client->generation++;
    client->out.length = client->out.offset = 0;
    client->partial = 0;
    client->dirty = 0;
}

/* One request from a client: a device transaction id of our own, then onto the device output. */
static void forward_request(struct client *client, uint8_t *frame, size_t length) {
    uint16_t tid = next_tid++;
    struct slot *slot = &slots[tid];
    slot->client = (uint16_t)(client - clients + 1);
    slot->tid = (uint16_t)(frame[0] << 8 | frame[1]);
    slot->generation = client->generation;
    frame[0] = (uint8_t)(tid >> 8);
    frame[1] = (uint8_t)tid;
    append(&device_out, frame, length);
}

static void client_readable(struct client *client) {
    if (!client->handshaken) {
        int result = SSL_accept(client->ssl);
        if (result != 1) {
            int error = SSL_get_error(client->ssl, result);
            if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE)
                close_client(client);
            return;
        }
        client->handshaken = 1;
    }
    uint8_t data[16384];
    for (;;) {
        int got = SSL_read(client->ssl, data, sizeof data);
        if (got <= 0) {
            int error = SSL_get_error(client->ssl, got);
            if (error != SSL_ERROR_WANT_READ && error != SSL_ERROR_WANT_WRITE)
                close_client(client);
            return;
        }
        size_t at = 0;
        while (at < (size_t)got) {
            size_t take;
            if (client->partial < MBAP) {
                take = MBAP - client->partial;
            } else {
                int length = frame_length(client->in);
                if (length < 0) {
                    close_client(client);
                    return;
                }
                take = (size_t)length - client->partial;
            }
            if (take > (size_t)got - at)
                take = (size_t)got - at;
            memcpy(client->in + client->partial, data + at, take);
            client->partial += take;
            at += take;
            if (client->partial >= MBAP) {
                int length = frame_length(client->in);
                if (length < 0) {
                    close_client(client);
                    return;
                }
                if (client->partial == (size_t)length) {
                    forward_request(client, client->in, (size_t)length);
                    client->partial = 0;
                }
            }
        }
        if ((size_t)got < sizeof data && !SSL_pending(client->ssl))
            return;
    }
}

static void watch(int fd, uint64_t tag);

/* (Re)connects to the device: blocking, on loopback. */
static void connect_device(void) {
    int one = 1;
    if (device_fd > 0) {
        epoll_ctl(epoll_fd, EPOLL_CTL_DEL, device_fd, NULL);
        close(device_fd);
    }
    device_fd = socket(AF_INET, SOCK_STREAM, 0);
    if (device_fd < 0 ||
        connect(device_fd, (struct sockaddr *)&device_address, sizeof device_address) < 0)
        die("connect to the device");
    setsockopt(device_fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    device_partial = 0;
    device_out.length = device_out.offset = 0;
    watch(device_fd, TAG_DEVICE);
}

static void device_readable(void) {
    ssize_t got = read(device_fd, device_in + device_partial, READ_SIZE);
    if (got < 0 && (errno == EAGAIN || errno == EINTR))
        return;
    if (got <= 0) {
        connect_device();
        return;
    }
    size_t end = device_partial + (size_t)got, at = 0;
    while (end - at >= MBAP) {
        int length = frame_length(device_in + at);
        if (length < 0) {
            fprintf(stderr, "floor_tls_proxy: the device sent something that is not MBAP\n");
            exit(1);
        }
        if (end - at < (size_t)length)
            break;
        uint8_t *frame = device_in + at;
        struct slot *slot = &slots[frame[0] << 8 | frame[1]];
        if (slot->client) {
            struct client *client = &clients[slot->client - 1];
            if (client->fd >= 0 && client->generation == slot->generation) {
                frame[0] = (uint8_t)(slot->tid >> 8);
                frame[1] = (uint8_t)slot->tid;
                append(&client->out, frame, (size_t)length);
                if (!client->dirty) {
                    client->dirty = 1;
                    dirty_list[dirty_count++] = (uint16_t)(client - clients);
                }
            }
            slot->client = 0;
        }
        at += (size_t)length;
    }
    device_partial = end - at;
    memmove(device_in, device_in + at, device_partial);
}

static void flush_device(void) {
    while (device_out.offset < device_out.length) {
        ssize_t sent = send(device_fd, device_out.data + device_out.offset,
                            device_out.length - device_out.offset, MSG_NOSIGNAL);
        if (sent < 0) {
            if (errno == EINTR)
                continue;
            if (errno == EAGAIN) /* the rest leaves at a later round */
                return;
            die("send to the device");
        }
        device_out.offset += (size_t)sent;
    }
    device_out.length = device_out.offset = 0;
}

static void flush_client(struct client *client) {
    while (client->out.offset < client->out.length) {
        int wrote = SSL_write(client->ssl, client->out.data + client->out.offset,
                              (int)(client->out.length - client->out.offset));
        if (wrote <= 0) {
            int error = SSL_get_error(client->ssl, wrote);
            if (error == SSL_ERROR_WANT_WRITE || error == SSL_ERROR_WANT_READ) {
                client->dirty = 1; /* tried again next round */
                dirty_list[dirty_count++] = (uint16_t)(client - clients);
                return;
            }
            close_client(client);
            return;
        }
        client->out.offset += (size_t)wrote;
    }
    client->out.length = client->out.offset = 0;
}

static SSL_CTX *make_context(const char *cert, const char *key, const char *ca) {
    SSL_CTX *context = SSL_CTX_new(TLS_server_method());
    if (!context || SSL_CTX_use_certificate_chain_file(context, cert) != 1 ||
        SSL_CTX_use_PrivateKey_file(context, key, SSL_FILETYPE_PEM) != 1 ||
        SSL_CTX_load_verify_locations(context, ca, NULL) != 1 ||
        SSL_CTX_set_min_proto_version(context, TLS1_3_VERSION) != 1 ||
        SSL_CTX_set_ciphersuites(context, "TLS_AES_128_GCM_SHA256") != 1 ||
        SSL_CTX_set1_groups_list(context, "P-256") != 1) {
        ERR_print_errors_fp(stderr);
        exit(1);
    }
    SSL_CTX_set_verify(context, SSL_VERIFY_PEER | SSL_VERIFY_FAIL_IF_NO_PEER_CERT, NULL);
    SSL_CTX_set_mode(context, SSL_MODE_ENABLE_PARTIAL_WRITE | SSL_MODE_ACCEPT_MOVING_WRITE_BUFFER);
    SSL_CTX_set_read_ahead(context, 1);
    SSL_CTX_set_num_tickets(context, 0);
    return context;
}

static void watch(int fd, uint64_t tag) {
    struct epoll_event event = {.events = EPOLLIN, .data.u64 = tag};
    if (epoll_ctl(epoll_fd, EPOLL_CTL_ADD, fd, &event) < 0)
        die("epoll_ctl");
}

int main(int argc, char **argv) {
    if (argc != 5) {
        fprintf(stderr, "usage: floor_tls_proxy CERT KEY CA DEVICE_PORT\n");
        return 2;
    }
    SSL_CTX *context = make_context(argv[1], argv[2], argv[3]);
    int one = 1;
    struct sockaddr_in address = {.sin_family = AF_INET, .sin_addr.s_addr = htonl(INADDR_LOOPBACK)};

    device_address = address;
    device_address.sin_port = htons((uint16_t)atoi(argv[4]));

    int listen_fd = socket(AF_INET, SOCK_STREAM | SOCK_NONBLOCK, 0);
    socklen_t length = sizeof address;
    if (listen_fd < 0 || bind(listen_fd, (struct sockaddr *)&address, sizeof address) < 0 ||
        listen(listen_fd, 128) < 0 ||
        getsockname(listen_fd, (struct sockaddr *)&address, &length) < 0)
        die("listen");

    sigset_t signals;
    sigemptyset(&signals);
    sigaddset(&signals, SIGTERM);
    sigaddset(&signals, SIGINT);
    sigprocmask(SIG_BLOCK, &signals, NULL);
    int signal_fd = signalfd(-1, &signals, SFD_NONBLOCK);

    epoll_fd = epoll_create1(0);
    if (epoll_fd < 0 || signal_fd < 0)
        die("epoll_create1/signalfd");
    watch(listen_fd, TAG_LISTEN);
    watch(signal_fd, TAG_SIGNAL);
    connect_device();
    for (size_t i = 0; i < MAX_CLIENTS; i++)
        clients[i].fd = -1;
    fprintf(stderr, "listening on 127.0.0.1:%u\n", ntohs(address.sin_port));

    struct epoll_event events[MAX_EVENTS];
    for (;;) {
        /* A full socket left output behind: wake within a millisecond to try again. */
        int ready =
            epoll_wait(epoll_fd, events, MAX_EVENTS, dirty_count || device_out.length ? 1 : -1);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            die("epoll_wait");
        }
        for (int i = 0; i < ready; i++) {
            uint64_t tag = events[i].data.u64;
            if (tag == TAG_SIGNAL)
                return 0;
            if (tag == TAG_DEVICE) {
                device_readable();
            } else if (tag == TAG_LISTEN) {
                int fd;
                while ((fd = accept4(listen_fd, NULL, NULL, SOCK_NONBLOCK)) >= 0) {
                    size_t index = 0;
                    while (index < MAX_CLIENTS && clients[index].fd >= 0)
                        index++;
                    if (index == MAX_CLIENTS) {
                        close(fd);
                        continue;
                    }
                    struct client *client = &clients[index];
                    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
                    client->fd = fd;
                    client->ssl = SSL_new(context);
                    client->handshaken = 0;
                    SSL_set_fd(client->ssl, fd);
                    watch(fd, index);
                }
            } else {
                struct client *client = &clients[tag];
                if (client->fd >= 0)
                    client_readable(client);
            }
        }
        flush_device();
        size_t count = dirty_count;
        dirty_count = 0;
        for (size_t i = 0; i < count; i++) {
            struct client *client = &clients[dirty_list[i]];
            client->dirty = 0;
            if (client->fd >= 0)
                flush_client(client);
        }
    }
}
