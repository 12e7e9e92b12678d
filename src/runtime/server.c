/* SPDX-License-Identifier: MIT */
/*
 * The Modbus/TCP server: listeners, connections, framing, pipelining, limits.
 *
 * Memory: an idle connection holds its struct (the MBAP decoder's 260-byte frame buffer and a
 * few counters). Reads land in one scratch buffer per server and responses are gathered in
 * another, so a connection allocates output or input backlog only while its peer is not
 * reading fast enough; both are bounded, and reading pauses while they are full.
 */
#include <arpa/inet.h>
#include <errno.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <pthread.h>
#include <stdatomic.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mbsec/mbap.h"
#include "mbsec/server.h"
#include "mbsec/tls.h"

#define READ_CHUNK 4096      /* bytes read per call: bounds the work one read can cause */
#define BATCH_CAPACITY 16384 /* responses gathered before one write */
#define OUTPUT_LIMIT 65536   /* unsent bytes at which a connection stops being read */
#define ACCEPTS_PER_EVENT 64 /* fairness between listeners and connections */
#define MAX_LISTENERS 32
#define PROTOCOL_ERRORS_LOGGED 8 /* per connection; the rest are counted and summed up */
#define ACCEPT_PAUSE_MS 100      /* after EMFILE: let descriptors free up */
#define REFUSALS_LOGGED 10       /* per second: a connection flood must not become a log flood */

/* Deferred-reply tokens pack what the answer needs, so nothing is allocated per request. */
#define TOKEN_SLOT_BITS 20
#define TOKEN_GENERATION_BITS 20
#define MAX_SLOTS (1u << TOKEN_SLOT_BITS)

struct source_count {
    struct source_count *next;
    uint8_t key[17]; /* family byte + 16 address bytes */
    uint32_t connections;
};

/* What the servers of one group (the workers of one process) count together, so that limits
 * hold for the whole process, not per worker. Touched only at accept and close. */
struct mb_server_group {
    pthread_mutex_t lock;
    uint64_t connections;
    struct source_count *sources[256];
};

struct listener {
    struct mb_server *server;
    int fd;
    int owned;
    char text[64];
    struct mb_timer pause_timer;
    struct mb_tls_context *tls; /* NULL: plain TCP */
};

struct connection {
    struct mb_server *server;
    struct mb_transport *transport;
    struct mb_peer peer;
    uint64_t id;
    uint32_t slot;
    uint32_t generation;
    struct source_count *source;
    struct mb_mbap_decoder decoder;
    struct mb_timer idle_timer;
    uint8_t *output; /* unsent bytes, allocated only while the peer lags */
    size_t output_length;
    size_t output_capacity;
    uint8_t *input; /* read but not yet served (reading paused), allocated likewise */
    size_t input_length;
    uint32_t in_flight; /* deferred requests not yet answered */
    uint32_t protocol_errors;
    uint64_t requests;
    uint64_t opened_ms;
    uint64_t last_request_ms;  /* the idle timer re-arms itself from this, lazily */
    unsigned watched;          /* MB_IO_* currently asked of the loop */
    int closing;               /* close once the output is written and nothing is in flight */
    int handshaking;           /* TLS: the handshake is not finished */
    int listener;              /* the index of the listener that accepted it */
    struct mb_task read_task;  /* TLS: decrypted bytes left to serve without a socket event */
    struct mb_task flush_task; /* deferred answers queued in `output`, written once per round */
    const char *close_reason;  /* why, for the log line, when closing */
    uint32_t *outstanding;     /* deferred requests: transaction id << 8 | unit id */
    uint32_t outstanding_capacity;
};

struct mb_server {
    struct mb_loop *loop;
    struct mb_server_limits limits;
    mb_server_handler handler;
    void *handler_data;
    mb_log_fn log;
    void *log_data;
    void (*on_refused)(void *data, const struct mb_peer *peer, const char *listener,
                       const char *reason);
    void *refused_data;
    struct listener listeners[MAX_LISTENERS];
    int listener_count;
    struct connection **slots;
    uint32_t *slot_generation;
    uint32_t slot_capacity;
    uint32_t *free_slots;
    uint32_t free_count;
    struct mb_server_group *group; /* connection and per-source counts, maybe shared */
    int owns_group;
    int shutting_down;
    int pass_undecodable;
    int dispatching; /* > 0 while a handler runs: calls back into the server must not close */
    struct mb_timer grace_timer;
    struct mb_timer sweep_timer;
    struct mb_server_stats stats;
    uint64_t refusal_second; /* refusals are logged at most REFUSALS_LOGGED a second */
    uint32_t refusals_logged;
    uint32_t refusals_unlogged;
    uint8_t read_buffer[READ_CHUNK];
    uint8_t batch[BATCH_CAPACITY];
    size_t batch_length;
    struct connection *batch_owner;
};

/* Connection ids are unique in the process, across servers (workers) too, so that log lines
 * of different workers never share one. */
static atomic_uint_fast64_t next_connection_id = 1;

static void connection_close(struct connection *connection, const char *reason);
static int connection_flush(struct connection *connection);
static void connection_io(struct mb_loop *loop, int fd, unsigned events, void *data);
static void flush_task_run(struct mb_loop *loop, struct mb_task *task);

/* ---- logging ---- */

static void log_event(struct mb_server *server, enum mb_log_level level, const char *event,
                      const char *listener, const struct connection *connection,
                      const char *reason) {
    if (server->log == NULL)
        return;
    struct mb_log_event record = {
        .level = level,
        .event = event,
        .listener = listener,
        .peer = connection ? connection->peer.text : NULL,
        .source = connection ? connection->peer.source : NULL,
        .connection_id = connection ? connection->id : 0,
        .reason = reason,
        .role = connection ? connection->peer.role : NULL,
    };
    if (connection != NULL && strcmp(event, "connection_closed") == 0) {
        record.requests = connection->requests;
        record.duration_ms = mb_loop_now(server->loop) - connection->opened_ms;
    }
    server->log(server->log_data, &record);
}

/* ---- configuration ---- */

struct mb_server_limits mb_server_default_limits(void) {
    struct mb_server_limits limits = {
        .max_connections = 1024,
        .max_per_source = 64,
        .idle_timeout_ms = 60000,
        .max_in_flight = 16,
        .handshake_timeout_ms = 10000,
        .source_prefix_ipv4 = 32,
        .source_prefix_ipv6 = 64,
    };
    return limits;
}

static struct mb_server_limits complete_limits(const struct mb_server_limits *given) {
    struct mb_server_limits limits = mb_server_default_limits();
    if (given != NULL) {
        if (given->max_connections)
            limits.max_connections = given->max_connections;
        if (given->max_per_source)
            limits.max_per_source = given->max_per_source;
        if (given->idle_timeout_ms)
            limits.idle_timeout_ms = given->idle_timeout_ms;
        if (given->max_in_flight)
            limits.max_in_flight = given->max_in_flight;
        if (given->handshake_timeout_ms)
            limits.handshake_timeout_ms = given->handshake_timeout_ms;
        if (given->source_prefix_ipv4 >= 1 && given->source_prefix_ipv4 <= 32)
            limits.source_prefix_ipv4 = given->source_prefix_ipv4;
        if (given->source_prefix_ipv6 >= 1 && given->source_prefix_ipv6 <= 128)
            limits.source_prefix_ipv6 = given->source_prefix_ipv6;
    }
    if (limits.max_connections >= MAX_SLOTS)
        limits.max_connections = MAX_SLOTS - 1;
    return limits;
}

int mb_server_create(struct mb_loop *loop, const struct mb_server_config *config,
                     struct mb_server **server_out) {
    if (loop == NULL || config == NULL || config->handler == NULL || server_out == NULL)
        return MB_EINVAL;
    struct mb_server *server = calloc(1, sizeof *server);
    if (server == NULL)
        return MB_ENOMEM;
    server->loop = loop;
    server->limits = complete_limits(&config->limits);
    server->handler = config->handler;
    server->handler_data = config->handler_data;
    server->pass_undecodable = config->pass_undecodable;
    server->log = config->log;
    server->log_data = config->log_data;
    server->on_refused = config->on_refused;
    server->refused_data = config->refused_data;
    server->group = config->group;
    if (server->group == NULL) {
        if (mb_server_group_create(&server->group) != 0) {
            free(server);
            return MB_ENOMEM;
        }
        server->owns_group = 1;
    }
    *server_out = server;
    return 0;
}

void mb_server_set_limits(struct mb_server *server, const struct mb_server_limits *limits) {
    server->limits = complete_limits(limits);
}

void mb_server_set_handler(struct mb_server *server, mb_server_handler handler, void *data) {
    if (handler != NULL) {
        server->handler = handler;
        server->handler_data = data;
    }
}

void mb_server_get_stats(const struct mb_server *server, struct mb_server_stats *stats) {
    *stats = server->stats;
}

/* ---- per-source counting ---- */

/* Clears the bits of `address` past `prefix`. */
static void cut_to_prefix(uint8_t *address, size_t bytes, unsigned prefix) {
    for (size_t i = 0; i < bytes; i++) {
        unsigned kept = prefix >= 8 * (i + 1) ? 8 : prefix > 8 * i ? prefix - 8 * i : 0;
        address[i] &= (uint8_t)(0xFF00u >> kept);
    }
}

/* The peer's source (struct mb_peer, source_key and source): its address cut to the prefix of
 * its family, an IPv4-mapped IPv6 address counted as the IPv4 one. */
static void peer_source(const struct mb_server_limits *limits, struct mb_peer *peer) {
    static const uint8_t mapped[12] = {0, 0, 0, 0, 0, 0, 0, 0, 0, 0, 0xFF, 0xFF};
    uint8_t *key = peer->source_key;
    unsigned prefix = 0, full = 0;
    memset(key, 0, sizeof peer->source_key);
    if (peer->address.ss_family == AF_INET) {
        const struct sockaddr_in *v4 = (const struct sockaddr_in *)(const void *)&peer->address;
        key[0] = 4;
        memcpy(key + 1, &v4->sin_addr, 4);
    } else if (peer->address.ss_family == AF_INET6) {
        const struct sockaddr_in6 *v6 = (const struct sockaddr_in6 *)(const void *)&peer->address;
        key[0] = 6;
        memcpy(key + 1, &v6->sin6_addr, 16);
        if (memcmp(key + 1, mapped, sizeof mapped) == 0) {
            key[0] = 4;
            memmove(key + 1, key + 13, 4);
            memset(key + 5, 0, 12);
        }
    }
    if (key[0] == 4) {
        prefix = limits->source_prefix_ipv4;
        full = 32;
        cut_to_prefix(key + 1, 4, prefix);
    } else if (key[0] == 6) {
        prefix = limits->source_prefix_ipv6;
        full = 128;
        cut_to_prefix(key + 1, 16, prefix);
    }
    char text[INET6_ADDRSTRLEN] = "?";
    if (key[0] != 0)
        inet_ntop(key[0] == 4 ? AF_INET : AF_INET6, key + 1, text, sizeof text);
    if (prefix < full)
        snprintf(peer->source, sizeof peer->source, "%s/%u", text, prefix);
    else
        snprintf(peer->source, sizeof peer->source, "%s", text);
}

static size_t source_bucket(const uint8_t key[17]) {
    uint32_t hash = 2166136261u; /* FNV-1a */
    for (int i = 0; i < 17; i++)
        hash = (hash ^ key[i]) * 16777619u;
    return hash % 256;
}

int mb_server_group_create(struct mb_server_group **group_out) {
    if (group_out == NULL)
        return MB_EINVAL;
    struct mb_server_group *group = calloc(1, sizeof *group);
    if (group == NULL)
        return MB_ENOMEM;
    pthread_mutex_init(&group->lock, NULL);
    *group_out = group;
    return 0;
}

void mb_server_group_destroy(struct mb_server_group *group) {
    if (group == NULL)
        return;
    for (size_t i = 0; i < 256; i++)
        while (group->sources[i] != NULL) {
            struct source_count *next = group->sources[i]->next;
            free(group->sources[i]);
            group->sources[i] = next;
        }
    pthread_mutex_destroy(&group->lock);
    free(group);
}

/* Counts a new connection against the limits, or says in `reason` why it may not open. */
static int admit(struct mb_server *server, const uint8_t key[17], struct source_count **source_out,
                 char *reason, size_t capacity) {
    struct mb_server_group *group = server->group;
    int rc = -1;
    pthread_mutex_lock(&group->lock);
    struct source_count *source = group->sources[source_bucket(key)];
    while (source != NULL && memcmp(source->key, key, 17) != 0)
        source = source->next;
    if (group->connections >= server->limits.max_connections) {
        snprintf(reason, capacity, "max_connections (%u) reached", server->limits.max_connections);
    } else if (source != NULL && source->connections >= server->limits.max_per_source) {
        snprintf(reason, capacity, "max_per_source (%u) reached for this address",
                 server->limits.max_per_source);
    } else {
        if (source == NULL && (source = calloc(1, sizeof *source)) != NULL) {
            memcpy(source->key, key, 17);
            size_t bucket = source_bucket(key);
            source->next = group->sources[bucket];
            group->sources[bucket] = source;
        }
        if (source == NULL) {
            snprintf(reason, capacity, "out of memory");
        } else {
            source->connections++;
            group->connections++;
            *source_out = source;
            rc = 0;
        }
    }
    pthread_mutex_unlock(&group->lock);
    return rc;
}

static void source_release(struct mb_server *server, struct source_count *source) {
    struct mb_server_group *group = server->group;
    pthread_mutex_lock(&group->lock);
    group->connections--;
    if (--source->connections == 0) {
        struct source_count **link = &group->sources[source_bucket(source->key)];
        while (*link != source)
            link = &(*link)->next;
        *link = source->next;
        free(source);
    }
    pthread_mutex_unlock(&group->lock);
}

/* ---- listeners ---- */

static void accept_resume(struct mb_loop *loop, struct mb_timer *timer) {
    struct listener *listener = timer->data;
    mb_loop_modify(loop, listener->fd, MB_IO_READ);
}

static int set_nonblocking(int fd) {
    int flags = fcntl(fd, F_GETFL);
    return flags < 0 || fcntl(fd, F_SETFL, flags | O_NONBLOCK) != 0 ? MB_ESYSTEM : 0;
}

static void configure_socket(int fd) {
    int on = 1;
    /* Modbus is request/response with small frames: Nagle would only add latency. */
    setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &on, sizeof on);
    /* Keep-alive finds peers that vanished without a FIN (power loss, cable pulled). */
    setsockopt(fd, SOL_SOCKET, SO_KEEPALIVE, &on, sizeof on);
    int idle = 60, interval = 10, count = 5;
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPIDLE, &idle, sizeof idle);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPINTVL, &interval, sizeof interval);
    setsockopt(fd, IPPROTO_TCP, TCP_KEEPCNT, &count, sizeof count);
}

static int allocate_slot(struct mb_server *server, uint32_t *slot) {
    if (server->free_count > 0) {
        *slot = server->free_slots[--server->free_count];
        return 0;
    }
    if (server->slot_capacity >= MAX_SLOTS)
        return MB_ELIMIT;
    uint32_t capacity = server->slot_capacity ? server->slot_capacity * 2 : 64;
    if (capacity > MAX_SLOTS)
        capacity = MAX_SLOTS;
    struct connection **slots = realloc(server->slots, capacity * sizeof *slots);
    if (slots == NULL)
        return MB_ENOMEM;
    server->slots = slots;
    uint32_t *generations = realloc(server->slot_generation, capacity * sizeof *generations);
    if (generations == NULL)
        return MB_ENOMEM;
    server->slot_generation = generations;
    uint32_t *free_slots = realloc(server->free_slots, capacity * sizeof *free_slots);
    if (free_slots == NULL)
        return MB_ENOMEM;
    server->free_slots = free_slots;
    for (uint32_t i = server->slot_capacity; i < capacity; i++) {
        slots[i] = NULL;
        generations[i] = 0;
    }
    /* New slots go on the free list highest first, so that low slots are used first. */
    for (uint32_t i = capacity; i > server->slot_capacity + 1; i--)
        free_slots[server->free_count++] = i - 1;
    *slot = server->slot_capacity;
    server->slot_capacity = capacity;
    return 0;
}

static void idle_expired(struct mb_loop *loop, struct mb_timer *timer) {
    struct connection *connection = timer->data;
    struct mb_server *server = connection->server;
    if (connection->handshaking) {
        server->stats.timeouts++;
        connection_close(connection, "TLS handshake not finished in time");
        return;
    }
    /* Requests only note their time; the timer moves when it fires, not on every request. */
    uint64_t idle = mb_loop_now(loop) - connection->last_request_ms;
    if (idle < server->limits.idle_timeout_ms) {
        mb_timer_start(loop, timer, server->limits.idle_timeout_ms - idle, idle_expired,
                       connection);
        return;
    }
    server->stats.timeouts++;
    connection_close(connection, "idle timeout");
}

static void refuse(struct mb_server *server, struct listener *listener, int fd,
                   const struct mb_peer *peer, const char *reason) {
    struct connection shown = {.peer = *peer};
    server->stats.refused++;
    if (server->on_refused != NULL)
        server->on_refused(server->refused_data, peer, listener->text, reason);
    uint64_t second = mb_loop_now(server->loop) / 1000;
    if (second != server->refusal_second) {
        server->refusal_second = second;
        server->refusals_logged = 0;
    }
    if (server->refusals_logged >= REFUSALS_LOGGED) {
        server->refusals_unlogged++;
        close(fd);
        return;
    }
    server->refusals_logged++;
    char text[192];
    if (server->refusals_unlogged > 0) {
        snprintf(text, sizeof text, "%s (and %u more refusals not logged before this one)", reason,
                 server->refusals_unlogged);
        server->refusals_unlogged = 0;
        reason = text;
    }
    /* Logged before the close, so that the line exists by the time the peer sees the close. */
    log_event(server, MB_LOG_WARNING, "connection_refused", listener->text, &shown, reason);
    close(fd);
}

static void accept_one(struct mb_server *server, struct listener *listener, int fd,
                       const struct mb_peer *peer) {
    char reason[96];
    if (server->shutting_down) {
        refuse(server, listener, fd, peer, "shutting down");
        return;
    }
    struct source_count *source = NULL;
    if (admit(server, peer->source_key, &source, reason, sizeof reason) != 0) {
        refuse(server, listener, fd, peer, reason);
        return;
    }
    struct connection *connection = calloc(1, sizeof *connection);
    uint32_t slot;
    if (connection == NULL || allocate_slot(server, &slot) != 0) {
        free(connection);
        source_release(server, source);
        refuse(server, listener, fd, peer, "out of memory");
        return;
    }

    configure_socket(fd);
    connection->server = server;
    connection->peer = *peer;
    connection->id = atomic_fetch_add(&next_connection_id, 1);
    connection->slot = slot;
    connection->generation = ++server->slot_generation[slot] & ((1u << TOKEN_GENERATION_BITS) - 1);
    connection->source = source;
    connection->opened_ms = mb_loop_now(server->loop);
    connection->last_request_ms = connection->opened_ms;
    mb_mbap_decoder_init(&connection->decoder);
    connection->handshaking = listener->tls != NULL;
    connection->listener = (int)(listener - server->listeners);
    int created = listener->tls != NULL
                      ? mb_tls_transport_create(listener->tls, fd, &connection->transport)
                      : mb_tcp_transport_create(fd, &connection->transport);
    if (created != 0 || mb_loop_add(server->loop, fd, MB_IO_READ, connection_io, connection) != 0) {
        if (connection->transport != NULL)
            connection->transport->ops->close(connection->transport);
        else
            close(fd);
        source_release(server, source);
        server->free_slots[server->free_count++] = slot;
        free(connection);
        server->stats.refused++;
        return;
    }
    connection->watched = MB_IO_READ;
    server->slots[slot] = connection;
    server->stats.connections++;
    server->stats.accepted++;
    mb_timer_start(server->loop, &connection->idle_timer,
                   connection->handshaking ? server->limits.handshake_timeout_ms
                                           : server->limits.idle_timeout_ms,
                   idle_expired, connection);
    log_event(server, MB_LOG_INFO, "connection_opened", listener->text, connection, NULL);
}

static void listener_io(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)events;
    struct listener *listener = data;
    struct mb_server *server = listener->server;
    for (int i = 0; i < ACCEPTS_PER_EVENT; i++) {
        struct mb_peer peer;
        memset(&peer, 0, sizeof peer);
        peer.address_length = sizeof peer.address;
        int client = accept4(fd, (struct sockaddr *)&peer.address, &peer.address_length,
                             SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (client < 0) {
            if (errno == EINTR || errno == ECONNABORTED)
                continue;
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM) {
                /* Out of descriptors: stop accepting for a moment instead of spinning. */
                log_event(server, MB_LOG_ERROR, "listener_error", listener->text, NULL,
                          strerror(errno));
                mb_loop_modify(loop, fd, 0);
                mb_timer_start(loop, &listener->pause_timer, ACCEPT_PAUSE_MS, accept_resume,
                               listener);
            }
            return;
        }
        if (mb_address_format((struct sockaddr *)&peer.address, peer.address_length, peer.text,
                              sizeof peer.text) < 0)
            strcpy(peer.text, "?");
        peer_source(&server->limits, &peer);
        accept_one(server, listener, client, &peer);
    }
}

static int add_listener(struct mb_server *server, int fd, int owned) {
    if (server->listener_count >= MAX_LISTENERS)
        return MB_ELIMIT;
    struct listener *listener = &server->listeners[server->listener_count];
    memset(listener, 0, sizeof *listener);
    listener->server = server;
    listener->fd = fd;
    listener->owned = owned;
    struct sockaddr_storage bound;
    socklen_t length = sizeof bound;
    if (getsockname(fd, (struct sockaddr *)&bound, &length) != 0 ||
        mb_address_format((struct sockaddr *)&bound, length, listener->text,
                          sizeof listener->text) < 0)
        strcpy(listener->text, "?");
    int rc = mb_loop_add(server->loop, fd, MB_IO_READ, listener_io, listener);
    if (rc != 0)
        return rc;
    log_event(server, MB_LOG_INFO, "listening", listener->text, NULL, NULL);
    return server->listener_count++;
}

static int bind_error(int error) {
    errno = error;
    if (error == EACCES || error == EPERM)
        return MB_EACCES;
    if (error == EADDRINUSE)
        return MB_EADDRINUSE;
    if (error == EADDRNOTAVAIL || error == EAFNOSUPPORT)
        return MB_EADDRESS;
    return MB_ESYSTEM;
}

/* A socket for `address`, bound; with SO_REUSEPORT when `share_port`. Returns the descriptor
 * or a negative error. */
static int bound_socket(const struct sockaddr_storage *address, socklen_t length, int share_port) {
    int fd = socket(address->ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return bind_error(errno);
    int on = 1;
    setsockopt(fd, SOL_SOCKET, SO_REUSEADDR, &on, sizeof on);
    if (share_port)
        setsockopt(fd, SOL_SOCKET, SO_REUSEPORT, &on, sizeof on);
    if (address->ss_family == AF_INET6)
        setsockopt(fd, IPPROTO_IPV6, IPV6_V6ONLY, &on, sizeof on);
    if (bind(fd, (const struct sockaddr *)address, length) != 0) {
        int error = errno;
        close(fd);
        return bind_error(error);
    }
    return fd;
}

static int listen_on(struct mb_server *server, const char *address_text, int backlog,
                     int exclusive) {
    struct sockaddr_storage address;
    socklen_t length;
    if (server == NULL || address_text == NULL)
        return MB_EINVAL;
    int rc = mb_address_parse(address_text, 502, &address, &length, NULL);
    if (rc != 0)
        return rc;
    uint16_t port = ntohs(address.ss_family == AF_INET
                              ? ((const struct sockaddr_in *)(const void *)&address)->sin_port
                              : ((const struct sockaddr_in6 *)(const void *)&address)->sin6_port);
    if (exclusive && port != 0) {
        /* SO_REUSEPORT would let a second server (another mbsec started by mistake) share the
         * port and silently take half the connections. A bind without it fails while anyone
         * listens there, so probe with one first. */
        int probe = bound_socket(&address, length, 0);
        if (probe < 0)
            return probe;
        close(probe);
    }
    /* SO_REUSEPORT lets this server's own workers listen on the same address. */
    int fd = bound_socket(&address, length, 1);
    if (fd < 0)
        return fd;
    if (listen(fd, backlog > 0 ? backlog : 512) != 0) {
        close(fd);
        return MB_ESYSTEM;
    }
    rc = add_listener(server, fd, 1);
    if (rc < 0)
        close(fd);
    return rc;
}

int mb_server_listen(struct mb_server *server, const char *address, int backlog) {
    return listen_on(server, address, backlog, 1);
}

int mb_server_listen_shared(struct mb_server *server, const char *address, int backlog) {
    return listen_on(server, address, backlog, 0);
}

int mb_server_adopt(struct mb_server *server, int fd, int owned) {
    if (server == NULL || fd < 0)
        return MB_EINVAL;
    if (set_nonblocking(fd) != 0)
        return MB_ESYSTEM;
    return add_listener(server, fd, owned);
}

int mb_server_listener_address(const struct mb_server *server, int index, char *text,
                               size_t capacity) {
    if (server == NULL || index < 0 || index >= server->listener_count || text == NULL)
        return MB_EINVAL;
    int written = snprintf(text, capacity, "%s", server->listeners[index].text);
    return written < 0 || (size_t)written >= capacity ? MB_ENOSPC : written;
}

/* The client certificate of an established connection whose listener has a new context (a
 * new CA or CRL) is checked against that: 1 when it was refused and the connection closed. */
static int recheck_client(struct connection *connection) {
    struct mb_server *server = connection->server;
    struct mb_tls_context *current = server->listeners[connection->listener].tls;
    const struct mb_transport *transport = connection->transport;
    if (current == NULL || transport->ops->recheck == NULL)
        return 0;
    char why[160], reason[240];
    if (transport->ops->recheck(transport, current, why, sizeof why) != 1)
        return 0;
    snprintf(reason, sizeof reason, "client certificate no longer accepted (new CA or CRL): %s",
             why);
    server->stats.tls_revoked++;
    log_event(server, MB_LOG_WARNING, "tls_revoked", server->listeners[connection->listener].text,
              connection, reason);
    connection_close(connection, "client certificate no longer accepted");
    return 1;
}

int mb_server_listener_set_tls(struct mb_server *server, int index, struct mb_tls_context *tls) {
    if (server == NULL || index < 0 || index >= server->listener_count || server->dispatching)
        return MB_EINVAL;
    struct listener *listener = &server->listeners[index];
    if (tls == listener->tls)
        return 0;
    struct mb_tls_context *previous = listener->tls;
    listener->tls = mb_tls_context_ref(tls);
    int closed = 0;
    if (previous != NULL && tls != NULL) {
        /* Connections still in their handshake are checked when it is done (handshake_done). */
        for (uint32_t slot = 0; slot < server->slot_capacity; slot++) {
            struct connection *connection = server->slots[slot];
            if (connection != NULL && connection->listener == index && !connection->handshaking &&
                !connection->closing)
                closed += recheck_client(connection);
        }
    }
    mb_tls_context_destroy(previous); /* the listener's reference */
    return closed;
}

int mb_server_replace_tls(struct mb_server *server, struct mb_tls_context *previous,
                          struct mb_tls_context *tls) {
    if (server == NULL || previous == NULL || tls == NULL || server->dispatching)
        return MB_EINVAL;
    int closed = 0;
    for (int i = 0; i < server->listener_count; i++)
        if (server->listeners[i].tls == previous)
            closed += mb_server_listener_set_tls(server, i, tls);
    return closed;
}

int mb_server_listener_fd(const struct mb_server *server, int index) {
    if (server == NULL || index < 0 || index >= server->listener_count ||
        server->listeners[index].fd < 0)
        return MB_EINVAL;
    return server->listeners[index].fd;
}

/* ---- output ---- */

/* Keeps `length` bytes that could not be written yet. */
static int backlog_append(struct connection *connection, const uint8_t *data, size_t length) {
    if (connection->output_length + length > connection->output_capacity) {
        size_t capacity = connection->output_capacity ? connection->output_capacity : 1024;
        while (capacity < connection->output_length + length)
            capacity *= 2;
        uint8_t *grown = realloc(connection->output, capacity);
        if (grown == NULL)
            return MB_ENOMEM;
        connection->output = grown;
        connection->output_capacity = capacity;
    }
    memcpy(connection->output + connection->output_length, data, length);
    connection->output_length += length;
    return 0;
}

/* Writes `data`, keeping what the socket does not take. Returns 0, or < 0 if the connection
 * failed (the caller closes it). */
static int send_or_keep(struct connection *connection, const uint8_t *data, size_t length) {
    if (connection->output_length > 0)
        return backlog_append(connection, data, length);
    while (length > 0) {
        long written = connection->transport->ops->write(connection->transport, data, length);
        connection->server->stats.writes++;
        if (written == MB_EAGAIN)
            return backlog_append(connection, data, length);
        if (written < 0)
            return (int)written;
        data += written;
        length -= (size_t)written;
    }
    return 0;
}

static int batch_flush(struct mb_server *server) {
    struct connection *connection = server->batch_owner;
    int rc = 0;
    if (connection != NULL && server->batch_length > 0)
        rc = send_or_keep(connection, server->batch, server->batch_length);
    server->batch_length = 0;
    return rc;
}

/* Writes one response frame (MBAP header + PDU) at `at` and counts it. Returns its size. */
static size_t put_frame(struct mb_server *server, uint8_t *at, const struct mb_mbap_header *header,
                        const uint8_t *pdu, size_t pdu_length) {
    mb_mbap_encode(header->transaction_id, header->unit_id, pdu_length, at, MB_MBAP_HEADER_SIZE);
    memcpy(at + MB_MBAP_HEADER_SIZE, pdu, pdu_length);
    server->stats.responses++;
    if (pdu[0] & MB_EXCEPTION_BIT)
        server->stats.exceptions++;
    return MB_MBAP_HEADER_SIZE + pdu_length;
}

/* Queues one response frame (MBAP header + PDU) for the connection being served. */
static int queue_frame(struct connection *connection, const struct mb_mbap_header *header,
                       const uint8_t *pdu, size_t pdu_length) {
    struct mb_server *server = connection->server;
    if (server->batch_owner != connection) {
        int rc = batch_flush(server);
        server->batch_owner = connection;
        if (rc != 0)
            return rc;
    }
    if (server->batch_length + MB_MBAP_HEADER_SIZE + pdu_length > BATCH_CAPACITY) {
        int rc = batch_flush(server);
        if (rc != 0)
            return rc;
    }
    server->batch_length +=
        put_frame(server, server->batch + server->batch_length, header, pdu, pdu_length);
    return 0;
}

/* ---- TLS ---- */

static void handshake_failed(struct connection *connection, int rc) {
    struct mb_server *server = connection->server;
    char reason[320];
    const char *detail = connection->transport->detail;
    snprintf(reason, sizeof reason, "TLS handshake failed: %s",
             detail != NULL && detail[0] != '\0' ? detail : mb_strerror(rc));
    server->stats.tls_failures++;
    log_event(server, MB_LOG_WARNING, "tls_failed", NULL, connection, reason);
    connection_close(connection, "TLS handshake failed");
}

static void handshake_done(struct connection *connection) {
    struct mb_server *server = connection->server;
    connection->handshaking = 0;
    connection->peer.role = connection->transport->role;
    connection->peer.secure = 1;
    connection->last_request_ms = mb_loop_now(server->loop);
    struct mb_tls_session_info info;
    char reason[720];
    int have_info = mb_tls_transport_info(connection->transport, &info) == 0;
    if (have_info) {
        char who[200];
        if (info.has_role)
            snprintf(who, sizeof who, "role '%s'", info.role);
        else
            snprintf(who, sizeof who, "no role (%s)", info.role_diagnostic);
        snprintf(reason, sizeof reason, "%s %s%s, %s, %s", info.version, info.cipher,
                 info.resumed ? " (resumed)" : "", who, info.subject);
    } else {
        snprintf(reason, sizeof reason, "established");
    }
    server->stats.tls_handshakes++;
    if (server->log != NULL) {
        struct mb_log_event record = {
            .level = MB_LOG_INFO,
            .event = "tls_established",
            .peer = connection->peer.text,
            .source = connection->peer.source,
            .connection_id = connection->id,
            .reason = reason,
            .role = connection->peer.role,
            .tls = have_info ? &info : NULL,
        };
        server->log(server->log_data, &record);
    }
}

static void read_pending(struct mb_loop *loop, struct mb_task *task) {
    struct connection *connection = task->data;
    connection_io(loop, connection->transport->fd, MB_IO_READ, connection);
}

/* Asks the loop for the events the connection needs now. */
static void update_interest(struct connection *connection) {
    unsigned wanted = 0;
    /* A connection at its in-flight cap stays watched: a pipelining client that waits for its
     * answers sends nothing more, and un-watching and re-watching it would cost two epoll_ctl
     * calls per round. A client that sends anyway has one chunk read and held as input
     * backlog (serve_bytes()), and that pauses it. */
    int paused = connection->output_length >= OUTPUT_LIMIT || connection->input_length > 0;
    if (connection->handshaking) {
        unsigned handshake = connection->transport->ops->want(connection->transport);
        wanted = handshake != 0 ? handshake : MB_IO_READ;
        if (wanted != connection->watched) {
            mb_loop_modify(connection->server->loop, connection->transport->fd, wanted);
            connection->watched = wanted;
        }
        return;
    }
    if (!connection->closing && !connection->server->shutting_down && !paused) {
        wanted |= MB_IO_READ;
        /* Records OpenSSL already decrypted raise no socket event: serve them from a task. */
        if (connection->transport->ops->pending(connection->transport) > 0)
            mb_loop_post(connection->server->loop, &connection->read_task, read_pending,
                         connection);
    }
    /* A TLS read may need to write (and a write to read) before it can go on. */
    wanted |= connection->transport->ops->want(connection->transport) & MB_IO_WRITE;
    /* Held-back input that may now be served is picked up from the next writable event. */
    int backlog_ready = connection->input_length > 0 && connection->output_length < OUTPUT_LIMIT &&
                        connection->in_flight < connection->server->limits.max_in_flight;
    /* Output the flush task will write this round needs no writability event (watching for it
     * would cost two epoll_ctl calls per round). */
    if ((connection->output_length > 0 || backlog_ready) && !connection->flush_task.queued)
        wanted |= MB_IO_WRITE;
    if (wanted != connection->watched) {
        mb_loop_modify(connection->server->loop, connection->transport->fd, wanted);
        connection->watched = wanted;
    }
}

/* ---- requests ---- */

static void protocol_error(struct connection *connection, const char *what) {
    if (++connection->protocol_errors <= PROTOCOL_ERRORS_LOGGED)
        log_event(connection->server, MB_LOG_INFO, "protocol_error", NULL, connection, what);
}

/* Deferred requests are tracked by key, so that a reply with a stale, duplicate or foreign
 * token is refused instead of answering some other request. */
static int outstanding_add(struct connection *connection, uint32_t key) {
    if (connection->in_flight >= connection->outstanding_capacity) {
        uint32_t capacity =
            connection->outstanding_capacity ? 2 * connection->outstanding_capacity : 4;
        uint32_t *grown = realloc(connection->outstanding, capacity * sizeof *grown);
        if (grown == NULL)
            return MB_ENOMEM;
        connection->outstanding = grown;
        connection->outstanding_capacity = capacity;
    }
    connection->outstanding[connection->in_flight++] = key;
    return 0;
}

static int outstanding_remove(struct connection *connection, uint32_t key) {
    for (uint32_t i = 0; i < connection->in_flight; i++)
        if (connection->outstanding[i] == key) {
            connection->outstanding[i] = connection->outstanding[--connection->in_flight];
            if (connection->in_flight == 0 && connection->outstanding_capacity > 16) {
                free(connection->outstanding);
                connection->outstanding = NULL;
                connection->outstanding_capacity = 0;
            }
            return 1;
        }
    return 0;
}

/* Serves one frame. Returns 0, or < 0 when the connection must close. */
static int serve_frame(struct connection *connection, const struct mb_adu *adu) {
    struct mb_server *server = connection->server;
    uint8_t response[MB_PDU_MAX];
    struct mb_request request;
    int length;

    connection->requests++;
    server->stats.requests++;
    int rc = mb_request_decode(adu->pdu, adu->pdu_length, &request);
    if (rc < 0 && !server->pass_undecodable) {
        uint8_t code = mb_error_exception(rc);
        char what[96];
        snprintf(what, sizeof what, "function 0x%02X: %s", adu->pdu[0], mb_strerror(rc));
        protocol_error(connection, what);
        /* Answered for whatever function code came, 0 and codes >= 0x80 included. */
        response[0] = adu->pdu[0] | MB_EXCEPTION_BIT;
        response[1] = code ? code : MB_EX_ILLEGAL_DATA_VALUE;
        return queue_frame(connection, &adu->header, response, 2);
    }

    uint32_t key = (uint32_t)adu->header.transaction_id << 8 | adu->header.unit_id;
    struct mb_server_request call = {
        .peer = &connection->peer,
        .connection_id = connection->id,
        .token = (uint64_t)connection->slot << 44 | (uint64_t)connection->generation << 24 | key,
        .transaction_id = adu->header.transaction_id,
        .unit_id = adu->header.unit_id,
        .request = rc < 0 ? NULL : &request,
        .decode_error = rc < 0 ? rc : 0,
        .pdu = adu->pdu,
        .pdu_length = adu->pdu_length,
    };
    if (rc < 0)
        protocol_error(connection, "undecodable PDU handed to the handler");
    /* Registered before the call, so that a handler may answer through its token at once. */
    if ((rc = outstanding_add(connection, key)) != 0)
        return rc;
    server->dispatching++;
    length = server->handler(server->handler_data, &call, response);
    server->dispatching--;
    if (length == MB_SERVER_DEFER)
        return 0;
    if (!outstanding_remove(connection, key))
        return 0; /* answered already through mb_server_reply() */
    if (length == MB_SERVER_CLOSE) {
        /* Answers already owed still go out; nothing more is read or served. */
        connection->closing = 1;
        connection->close_reason = "closed by the application (authorization policy)";
        return 0;
    }
    if (length == 0)
        return 0;
    if (length < 0 || length > MB_PDU_MAX) {
        char what[96];
        snprintf(what, sizeof what, "handler failed for function 0x%02X: %s", adu->pdu[0],
                 length < 0 ? mb_strerror(length) : "response longer than a PDU");
        log_event(server, MB_LOG_ERROR, "handler_error", NULL, connection, what);
        response[0] = adu->pdu[0] | MB_EXCEPTION_BIT;
        response[1] = MB_EX_SERVER_DEVICE_FAILURE;
        length = 2;
    }
    return queue_frame(connection, &adu->header, response, (size_t)length);
}

/*
 * Serves the frames in data[0..length). Stops early, keeping the rest as input backlog, when
 * the peer is not reading its answers or too many requests are in flight. Returns 0, or < 0
 * when the connection must close.
 */
static int serve_bytes(struct connection *connection, const uint8_t *data, size_t length) {
    struct mb_server *server = connection->server;
    size_t offset = 0;
    if (connection->closing)
        return 0; /* closed by the handler: nothing more is served */
    while (offset < length) {
        if (connection->output_length >= OUTPUT_LIMIT ||
            connection->in_flight >= server->limits.max_in_flight) {
            uint8_t *kept = malloc(length - offset);
            if (kept == NULL)
                return MB_ENOMEM;
            memcpy(kept, data + offset, length - offset);
            connection->input = kept;
            connection->input_length = length - offset;
            return 0;
        }
        size_t consumed;
        struct mb_adu adu;
        uint32_t discarded = connection->decoder.discarded;
        int rc = mb_mbap_decoder_feed(&connection->decoder, data + offset, length - offset,
                                      &consumed, &adu);
        offset += consumed;
        if (connection->decoder.discarded != discarded) {
            server->stats.discarded += connection->decoder.discarded - discarded;
            protocol_error(connection, "frame with a protocol id other than 0 dropped");
        }
        if (rc < 0) {
            server->stats.protocol_errors++;
            protocol_error(connection, mb_strerror(rc));
            return rc;
        }
        if (rc == 0)
            break;
        connection->last_request_ms = mb_loop_now(server->loop);
        rc = serve_frame(connection, &adu);
        if (rc < 0)
            return rc;
        if (connection->closing)
            return 0; /* the handler closed it: the rest of the input is not served */
    }
    return 0;
}

/* Serves input kept while reading was paused, once there is room again. */
static int serve_backlog(struct connection *connection) {
    if (connection->input_length == 0)
        return 0;
    uint8_t *input = connection->input;
    size_t length = connection->input_length;
    connection->input = NULL;
    connection->input_length = 0;
    int rc = serve_bytes(connection, input, length);
    free(input);
    return rc;
}

/* ---- connection events ---- */

static int connection_flush(struct connection *connection) {
    size_t offset = 0;
    while (offset < connection->output_length) {
        long written = connection->transport->ops->write(
            connection->transport, connection->output + offset, connection->output_length - offset);
        connection->server->stats.writes++;
        if (written == MB_EAGAIN)
            break;
        if (written < 0)
            return (int)written;
        offset += (size_t)written;
    }
    /* (output is NULL when nothing was ever queued: a deferred request answered with nothing,
     * a broadcast through the gateway; memmove() must not see it) */
    if (offset > 0 && offset < connection->output_length)
        memmove(connection->output, connection->output + offset,
                connection->output_length - offset);
    connection->output_length -= offset;
    if (connection->output_length == 0 && connection->output_capacity > 4096) {
        /* The peer caught up: give the memory back, an idle connection stays small. */
        free(connection->output);
        connection->output = NULL;
        connection->output_capacity = 0;
    }
    return 0;
}

/* Closes a connection that has nothing left to send and nothing in flight, when asked to. */
static int close_if_done(struct connection *connection) {
    if ((connection->closing || connection->server->shutting_down) &&
        connection->output_length == 0 && connection->in_flight == 0) {
        connection_close(connection,
                         connection->closing ? connection->close_reason : "server shutting down");
        return 1;
    }
    return 0;
}

/* Closes a connection whose transport failed with `rc`, saying why. */
static void connection_failed(struct connection *connection, int rc) {
    const char *detail = connection->transport->detail;
    connection_close(connection, rc == MB_EIO && connection->transport->system_errno == ECONNRESET
                                     ? "connection reset by peer"
                                 : rc == MB_ETLS && detail != NULL && detail[0] != '\0'
                                     ? detail
                                     : mb_strerror(rc));
}

/*
 * After serving input with result `rc`: a stream that ended (the peer finished sending, or
 * broke the framing after some good frames) lets the answers owed still go out, then closes;
 * the answers the round gathered are written, or dropped when the connection failed. Returns
 * 0, or < 0 when the connection failed.
 */
static int gather_answers(struct connection *connection, int rc) {
    struct mb_server *server = connection->server;
    if (rc == MB_ECLOSED || rc == MB_EMBAP_LENGTH) {
        connection->closing = 1;
        connection->close_reason =
            rc == MB_EMBAP_LENGTH ? "MBAP length outside 2..254: stream cannot be resynchronised"
            : connection->decoder.held > 0 ? "peer closed in the middle of a frame"
                                           : "peer closed";
        rc = 0;
    }
    if (rc == 0)
        rc = batch_flush(server);
    else
        server->batch_length = 0;
    server->batch_owner = NULL;
    return rc;
}

/* Ends a round of work on a connection: closes it when it failed or has nothing more to do,
 * else asks the loop for the events it needs now. */
static void round_done(struct connection *connection, int rc) {
    if (rc < 0)
        connection_failed(connection, rc);
    else if (!close_if_done(connection))
        update_interest(connection);
}

static void connection_io(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)loop;
    (void)fd;
    struct connection *connection = data;
    struct mb_server *server = connection->server;
    int rc = 0;

    if ((events & MB_IO_HANGUP) && !(connection->watched & MB_IO_READ)) {
        /* Reported even while reading is paused: the peer is gone and nothing can reach it, so
         * waiting (for a deferred answer, say) would only spin the loop. */
        connection_close(connection, "connection reset by peer");
        return;
    }
    if (connection->handshaking) {
        rc = connection->transport->ops->handshake(connection->transport);
        if (rc == MB_EAGAIN) {
            update_interest(connection);
            return;
        }
        if (rc != 0) {
            handshake_failed(connection, rc);
            return;
        }
        handshake_done(connection);
        if (recheck_client(connection))
            return;
        /* The client's first requests may have come with its last handshake message. */
        events |= MB_IO_READ;
        rc = 0;
    }
    if (events & MB_IO_WRITE) {
        /* A TLS read that had to write first (a key update's answer) waits for writability:
         * once there is room, it is the read that goes on. */
        if (connection->transport->ops->want(connection->transport) & MB_IO_WRITE)
            events |= MB_IO_READ;
        rc = connection_flush(connection);
        if (rc == 0 && connection->output_length < OUTPUT_LIMIT)
            rc = serve_backlog(connection);
    }
    if (rc == 0 && (events & MB_IO_READ) && (connection->watched & MB_IO_READ)) {
        /* Read until the socket is drained (and the transport's own buffer, for TLS), but at
         * most a few chunks, so one busy peer cannot starve the others. */
        for (int round = 0; round < 16 && rc == 0; round++) {
            long count = connection->transport->ops->read(connection->transport,
                                                          server->read_buffer, READ_CHUNK);
            if (count == MB_EAGAIN)
                break;
            if (count < 0) {
                rc = (int)count;
                break;
            }
            rc = serve_bytes(connection, server->read_buffer, (size_t)count);
            if (connection->input_length > 0 || connection->closing)
                break;
            if ((size_t)count < READ_CHUNK &&
                connection->transport->ops->pending(connection->transport) == 0)
                break;
        }
    }
    round_done(connection, gather_answers(connection, rc));
}

static void connection_close(struct connection *connection, const char *reason) {
    struct mb_server *server = connection->server;
    char summary[160];
    if (reason != NULL && connection->protocol_errors > PROTOCOL_ERRORS_LOGGED) {
        snprintf(summary, sizeof summary, "%s (%u protocol errors, %u not logged)", reason,
                 connection->protocol_errors, connection->protocol_errors - PROTOCOL_ERRORS_LOGGED);
        reason = summary;
    }
    log_event(server, MB_LOG_INFO, "connection_closed", NULL, connection,
              reason ? reason : "closed");
    if (server->batch_owner == connection) {
        server->batch_owner = NULL;
        server->batch_length = 0;
    }
    mb_timer_stop(server->loop, &connection->idle_timer);
    mb_loop_cancel(server->loop, &connection->read_task);
    mb_loop_cancel(server->loop, &connection->flush_task);
    mb_loop_remove(server->loop, connection->transport->fd);
    connection->transport->ops->close(connection->transport);
    source_release(server, connection->source);
    server->slots[connection->slot] = NULL;
    server->free_slots[server->free_count++] = connection->slot;
    server->stats.connections--;
    free(connection->output);
    free(connection->input);
    free(connection->outstanding);
    free(connection);
}

/* ---- deferred replies ---- */

int mb_server_reply(struct mb_server *server, uint64_t token, const uint8_t *response,
                    size_t length) {
    if (server == NULL || length > MB_PDU_MAX || (length > 0 && response == NULL))
        return MB_EINVAL;
    uint32_t slot = (uint32_t)(token >> 44);
    uint32_t generation = (uint32_t)(token >> 24) & ((1u << TOKEN_GENERATION_BITS) - 1);
    struct mb_mbap_header header = {
        .transaction_id = (uint16_t)(token >> 8),
        .unit_id = (uint8_t)token,
    };
    if (slot >= server->slot_capacity)
        return MB_EINVAL;
    struct connection *connection = server->slots[slot];
    if (connection == NULL || connection->generation != generation)
        return MB_ECLOSED;
    if (!outstanding_remove(connection, (uint32_t)token & 0xFFFFFF))
        return MB_EINVAL;
    if (length > 0) {
        uint8_t frame[MB_ADU_MAX];
        size_t frame_size = put_frame(server, frame, &header, response, length);
        int rc = backlog_append(connection, frame, frame_size);
        if (rc != 0)
            return rc;
    }
    /* Written by the connection's flush task once the loop has handled every ready event, so
     * that the answers one round completes leave in one send (and one TLS record); never from
     * here, where a handler of this connection may be up the stack. */
    mb_loop_post(server->loop, &connection->flush_task, flush_task_run, connection);
    return 0;
}

/* Writes the answers mb_server_reply() queued, then serves the input that waited for a free
 * in-flight place, and closes the connection if it was only waiting for these answers. */
static void flush_task_run(struct mb_loop *loop, struct mb_task *task) {
    (void)loop;
    struct connection *connection = task->data;
    int rc = 0;
    /* Answers to the held-back input join the queued ones, so that both leave in one send. */
    if (connection->output_length < OUTPUT_LIMIT)
        rc = serve_backlog(connection);
    rc = gather_answers(connection, rc);
    if (rc == 0)
        rc = connection_flush(connection);
    round_done(connection, rc);
}

/* ---- shutdown ---- */

static void grace_expired(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    struct mb_server *server = timer->data;
    for (uint32_t i = 0; i < server->slot_capacity; i++)
        if (server->slots[i] != NULL)
            connection_close(server->slots[i], "shutdown grace period over");
}

static void shutdown_sweep(struct mb_loop *loop, struct mb_timer *timer) {
    (void)loop;
    struct mb_server *server = timer->data;
    for (uint32_t i = 0; i < server->slot_capacity; i++) {
        struct connection *connection = server->slots[i];
        if (connection != NULL && !close_if_done(connection))
            update_interest(connection);
    }
    if (server->stats.connections == 0)
        mb_timer_stop(server->loop, &server->grace_timer);
}

void mb_server_shutdown(struct mb_server *server, uint32_t grace_ms) {
    if (server == NULL || server->shutting_down)
        return;
    server->shutting_down = 1;
    log_event(server, MB_LOG_INFO, "shutdown", NULL, NULL, "finishing requests in flight");
    /* Closing the listeners (not just ignoring them) makes the kernel refuse new connections
     * instead of completing their handshakes into a backlog nobody reads. */
    for (int i = 0; i < server->listener_count; i++) {
        struct listener *listener = &server->listeners[i];
        mb_loop_remove(server->loop, listener->fd);
        mb_timer_stop(server->loop, &listener->pause_timer);
        if (listener->owned)
            close(listener->fd);
        listener->fd = -1;
    }
    /* Connections are closed from a timer, never from here: a handler may be the caller, with
     * its connection still in use up the stack. */
    mb_timer_start(server->loop, &server->sweep_timer, 0, shutdown_sweep, server);
    mb_timer_start(server->loop, &server->grace_timer, grace_ms, grace_expired, server);
}

int mb_server_idle(const struct mb_server *server) {
    return server->stats.connections == 0;
}

void mb_server_destroy(struct mb_server *server) {
    if (server == NULL)
        return;
    for (uint32_t i = 0; i < server->slot_capacity; i++) {
        struct connection *connection = server->slots[i];
        if (connection == NULL)
            continue;
        /* Answers queued this round (a gateway destroyed just before answers what it still
         * held with 0B) go out if the socket takes them: best effort, never a wait. */
        if (connection->output_length > 0 && !connection->handshaking)
            (void)connection_flush(connection);
        connection_close(connection, "server destroyed");
    }
    for (int i = 0; i < server->listener_count; i++) {
        struct listener *listener = &server->listeners[i];
        mb_timer_stop(server->loop, &listener->pause_timer);
        mb_tls_context_destroy(listener->tls); /* the listener's reference */
        listener->tls = NULL;
        if (listener->fd < 0)
            continue;
        mb_loop_remove(server->loop, listener->fd);
        if (listener->owned)
            close(listener->fd);
    }
    mb_timer_stop(server->loop, &server->grace_timer);
    mb_timer_stop(server->loop, &server->sweep_timer);
    if (server->owns_group)
        mb_server_group_destroy(server->group);
    free(server->slots);
    free(server->slot_generation);
    free(server->free_slots);
    free(server);
}
