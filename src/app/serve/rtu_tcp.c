/* SPDX-License-Identifier: MIT */
#include "app/serve/rtu_tcp.h"

#include <errno.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <unistd.h>

#include "mbsec/error.h"
#include "mbsec/transport.h"

#define RTU_TCP_PAUSE_MS 100      /* accepting paused when out of descriptors */
#define RTU_TCP_SWEEP_MAX_MS 5000 /* idle connections are looked for at least this often */

struct rtu_tcp {
    struct mb_loop *loop;
    int fd;
    char name[80];
    struct mb_serial_server_config config;
    struct mb_serial_server *connections[RTU_TCP_MAX_CONNECTIONS];
    int closed[RTU_TCP_MAX_CONNECTIONS]; /* its stream ended: destroyed by the reap task */
    struct mb_task reap_task;
    uint64_t refused;
    /* Idle connections are closed: frames seen by each, and when that count last moved. */
    uint64_t frames_seen[RTU_TCP_MAX_CONNECTIONS];
    uint64_t active_at_ms[RTU_TCP_MAX_CONNECTIONS];
    struct mb_timer idle_timer;
    uint32_t idle_ms;
    uint32_t sweep_ms;
    /* Out of descriptors: accepting pauses (a level-triggered listener would spin). */
    struct mb_timer resume_timer;
    int paused;
};

static void on_accept(struct mb_loop *loop, int fd, unsigned events, void *data);

static void note(struct rtu_tcp *listener, enum mb_log_level level, const char *event,
                 const char *peer, const char *reason) {
    if (listener->config.log == NULL)
        return;
    struct mb_log_event record = {
        .level = level, .event = event, .listener = listener->name, .peer = peer, .reason = reason};
    listener->config.log(listener->config.log_data, &record);
}

/* Destroys the servers whose streams ended; a loop task, never inside their own callbacks. */
static void reap(struct mb_loop *loop, struct mb_task *task) {
    (void)loop;
    struct rtu_tcp *listener = task->data;
    for (size_t i = 0; i < RTU_TCP_MAX_CONNECTIONS; i++)
        if (listener->closed[i]) {
            mb_serial_server_destroy(listener->connections[i]);
            listener->connections[i] = NULL;
            listener->closed[i] = 0;
        }
}

static void on_closed(void *data, struct mb_serial_server *server) {
    struct rtu_tcp *listener = data;
    for (size_t i = 0; i < RTU_TCP_MAX_CONNECTIONS; i++)
        if (listener->connections[i] == server)
            listener->closed[i] = 1;
    mb_loop_post(listener->loop, &listener->reap_task, reap, listener);
}

static void resume_accepting(struct mb_loop *loop, struct mb_timer *timer) {
    struct rtu_tcp *listener = timer->data;
    if (mb_loop_add(loop, listener->fd, MB_IO_READ, on_accept, listener) == 0)
        listener->paused = 0;
    else
        mb_timer_start(loop, &listener->resume_timer, RTU_TCP_PAUSE_MS, resume_accepting, listener);
}

static void pause_accepting(struct rtu_tcp *listener, const char *why) {
    if (listener->paused)
        return;
    listener->paused = 1;
    mb_loop_remove(listener->loop, listener->fd);
    mb_timer_start(listener->loop, &listener->resume_timer, RTU_TCP_PAUSE_MS, resume_accepting,
                   listener);
    char reason[160];
    snprintf(reason, sizeof reason, "cannot accept (%s): pausing %d ms", why, RTU_TCP_PAUSE_MS);
    note(listener, MB_LOG_WARNING, "accept_paused", NULL, reason);
}

/* Closes the connections that sent no frame for idle_ms, so that silent ones cannot hold every
 * place. */
static void sweep_idle(struct mb_loop *loop, struct mb_timer *timer) {
    struct rtu_tcp *listener = timer->data;
    uint64_t now = mb_loop_now(loop);
    for (size_t i = 0; i < RTU_TCP_MAX_CONNECTIONS; i++) {
        if (listener->connections[i] == NULL || listener->closed[i])
            continue;
        struct mb_serial_server_stats stats;
        mb_serial_server_get_stats(listener->connections[i], &stats);
        uint64_t frames = stats.frames + stats.errors;
        if (frames != listener->frames_seen[i]) {
            listener->frames_seen[i] = frames;
            listener->active_at_ms[i] = now;
        } else if (now - listener->active_at_ms[i] >= listener->idle_ms) {
            mb_serial_server_destroy(listener->connections[i]);
            listener->connections[i] = NULL;
            char reason[80];
            snprintf(reason, sizeof reason, "idle: no frame for %u ms", listener->idle_ms);
            note(listener, MB_LOG_INFO, "connection_closed", NULL, reason);
        }
    }
    mb_timer_start(loop, &listener->idle_timer, listener->sweep_ms, sweep_idle, listener);
}

static void on_accept(struct mb_loop *loop, int fd, unsigned events, void *data) {
    (void)events;
    struct rtu_tcp *listener = data;
    for (int round = 0; round < 16; round++) {
        struct sockaddr_storage address;
        socklen_t length = sizeof address;
        int connection =
            accept4(fd, (struct sockaddr *)&address, &length, SOCK_NONBLOCK | SOCK_CLOEXEC);
        if (connection < 0) {
            if (errno == EMFILE || errno == ENFILE || errno == ENOBUFS || errno == ENOMEM)
                pause_accepting(listener, strerror(errno));
            return; /* else EAGAIN, or a connection that went before it was taken */
        }
        char peer[64] = "?";
        mb_address_format((struct sockaddr *)&address, length, peer, sizeof peer);
        size_t slot = 0;
        while (slot < RTU_TCP_MAX_CONNECTIONS && listener->connections[slot] != NULL)
            slot++;
        if (slot == RTU_TCP_MAX_CONNECTIONS) {
            close(connection);
            char reason[120];
            snprintf(reason, sizeof reason, "%d connections already: closed (%llu so far)",
                     RTU_TCP_MAX_CONNECTIONS, (unsigned long long)++listener->refused);
            note(listener, MB_LOG_WARNING, "connection_refused", peer, reason);
            continue;
        }
        int one = 1;
        setsockopt(connection, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        int rc = mb_serial_server_adopt(loop, connection, peer, &listener->config,
                                        &listener->connections[slot]);
        if (rc != 0) {
            close(connection);
            note(listener, MB_LOG_WARNING, "connection_refused", peer, mb_strerror(rc));
            continue;
        }
        listener->frames_seen[slot] = 0;
        listener->active_at_ms[slot] = mb_loop_now(loop);
        note(listener, MB_LOG_INFO, "connection_opened", peer, "Modbus RTU over TCP");
    }
}

int rtu_tcp_open(struct mb_loop *loop, const char *text,
                 const struct mb_serial_server_config *config, uint32_t idle_ms,
                 struct rtu_tcp **out, char *error, size_t error_size) {
    struct sockaddr_storage address;
    socklen_t length;
    const char *problem = NULL;
    if (mb_address_parse(text, 502, &address, &length, &problem) != 0) {
        snprintf(error, error_size, "--rtu-over-tcp %s: %s", text,
                 problem != NULL ? problem : "not an address");
        return MB_EADDRESS;
    }
    struct rtu_tcp *listener = calloc(1, sizeof *listener);
    if (listener == NULL)
        return MB_ENOMEM;
    listener->loop = loop;
    listener->config = *config;
    listener->config.on_closed = on_closed;
    listener->config.closed_data = listener;
    listener->idle_ms = idle_ms ? idle_ms : 60000;
    listener->sweep_ms = listener->idle_ms / 4 > RTU_TCP_SWEEP_MAX_MS ? RTU_TCP_SWEEP_MAX_MS
                         : listener->idle_ms / 4 > 0                  ? listener->idle_ms / 4
                                                                      : 1;
    int one = 1;
    listener->fd = socket(address.ss_family, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (listener->fd < 0 ||
        setsockopt(listener->fd, SOL_SOCKET, SO_REUSEADDR, &one, sizeof one) != 0 ||
        bind(listener->fd, (struct sockaddr *)&address, length) != 0 ||
        listen(listener->fd, 64) != 0) {
        int saved = errno;
        snprintf(error, error_size, "--rtu-over-tcp %s: %s", text, strerror(saved));
        if (listener->fd >= 0)
            close(listener->fd);
        free(listener);
        return saved == EADDRINUSE ? MB_EADDRINUSE : saved == EACCES ? MB_EACCES : MB_ESYSTEM;
    }
    length = sizeof address;
    getsockname(listener->fd, (struct sockaddr *)&address, &length);
    mb_address_format((struct sockaddr *)&address, length, listener->name, sizeof listener->name);
    int rc = mb_loop_add(loop, listener->fd, MB_IO_READ, on_accept, listener);
    if (rc != 0) {
        snprintf(error, error_size, "--rtu-over-tcp %s: %s", text, mb_strerror(rc));
        close(listener->fd);
        free(listener);
        return rc;
    }
    mb_timer_start(loop, &listener->idle_timer, listener->sweep_ms, sweep_idle, listener);
    note(listener, MB_LOG_INFO, "listening", NULL, NULL);
    note(listener, MB_LOG_INFO, "rtu_listener", NULL,
         "Modbus RTU over TCP (as to a serial-to-Ethernet converter)");
    *out = listener;
    return 0;
}

void rtu_tcp_close(struct rtu_tcp *listener) {
    if (listener == NULL)
        return;
    mb_loop_cancel(listener->loop, &listener->reap_task);
    mb_timer_stop(listener->loop, &listener->idle_timer);
    mb_timer_stop(listener->loop, &listener->resume_timer);
    if (!listener->paused)
        mb_loop_remove(listener->loop, listener->fd);
    close(listener->fd);
    for (size_t i = 0; i < RTU_TCP_MAX_CONNECTIONS; i++)
        mb_serial_server_destroy(listener->connections[i]);
    free(listener);
}
