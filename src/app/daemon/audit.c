/* SPDX-License-Identifier: MIT */
#include "app/daemon/audit.h"

#include <errno.h>
#include <fcntl.h>
#include <pthread.h>
#include <signal.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/uio.h>
#include <sys/un.h>
#include <time.h>
#include <unistd.h>

#include "app/common/log.h"
#include "app/daemon/ship_mqtt.h"
#include "app/daemon/ship_stream.h"
#include "app/daemon/ship_syslog.h"
#include "mbsec/error.h"
#include "mbsec/tls.h"
#include "mbsec/transport.h"

#define DEFAULT_APP_NAME "mbsec-gateway"
#define DEFAULT_FACILITY 13 /* log audit */
#define DEFAULT_SYSLOG_PATH "/dev/log"
#define SYSLOG_PORT 514
#define APP_NAME_MAX 48
#define MSGID_MAX 32
#define HOSTNAME_MAX 255
#define RECONNECT_INTERVAL_MS 1000

enum syslog_kind { SYSLOG_NONE, SYSLOG_UNIX, SYSLOG_UDP, SYSLOG_STREAM };

/* Whether a sink is failing, and the line about it that audit_take_error() has yet to hand
 * out: one per outage. */
struct sink_state {
    int failing;
    int unreported;
    char message[512];
};

struct audit {
    /* Serializes writes: the sinks share the datagram buffer and the states. */
    pthread_mutex_t lock;

    char *file_path;
    int file_fd;
    int file_is_pipe; /* a FIFO or socket, whose reader can go away: SIGPIPE is held off */
    struct sink_state file_state;

    enum syslog_kind syslog_kind;
    char *syslog_name; /* as configured, for messages */
    int syslog_fd;
    struct sockaddr_storage syslog_address;
    socklen_t syslog_address_length;
    /* The last failed connect (CLOCK_MONOTONIC, ms) and its errno; 0 when the last one worked. */
    int64_t connect_failed_at;
    int connect_errno;
    struct sink_state syslog_state;
    struct ship *syslog_ship; /* SYSLOG_STREAM: tcp: and tls: */
    struct ship *mqtt_ship;   /* an MQTT broker */
    int mqtt_records;         /* the records go to the broker too */

    char app_name[APP_NAME_MAX + 1];
    char hostname[HOSTNAME_MAX + 1];
    int facility;

    /* Counters change under the lock; they are read with atomic loads, without it. */
    struct audit_stats stats;
    const char *last_error;
    char datagram[AUDIT_UNIX_MAX];
};

static void counter_add(uint64_t *counter) {
    __atomic_fetch_add(counter, 1, __ATOMIC_RELAXED);
}

static int64_t monotonic_ms(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (int64_t)now.tv_sec * 1000 + now.tv_nsec / 1000000;
}

/* RFC 5424 header fields are PRINTUSASCII (33..126), 1 to `max` of them. */
static int printable_ascii(const char *text, size_t max) {
    size_t length = 0;
    for (; text[length] != '\0'; length++)
        if (length >= max || text[length] < 33 || text[length] > 126)
            return 0;
    return length > 0;
}

static void sink_failed(struct audit *audit, struct sink_state *state, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

static void sink_failed(struct audit *audit, struct sink_state *state, const char *fmt, ...) {
    va_list args;
    va_start(args, fmt);
    vsnprintf(state->message, sizeof state->message, fmt, args);
    va_end(args);
    if (!state->failing) {
        state->failing = 1;
        state->unreported = 1;
    }
    audit->last_error = state->message;
}

static void sink_worked(struct sink_state *state) {
    state->failing = 0;
}

/* ---- the file ---- */

static int file_open(const char *path, int *is_pipe, char *error, size_t capacity) {
    /* O_NONBLOCK: see audit.h; O_NOCTTY: a terminal given as the file must not become ours. */
    int fd = open(path, O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC | O_NONBLOCK | O_NOCTTY, 0640);
    if (fd < 0) {
        snprintf(error, capacity, "audit file %s: %s", path, strerror(errno));
        return MB_ESYSTEM;
    }
    struct stat status;
    *is_pipe = fstat(fd, &status) == 0 && (S_ISFIFO(status.st_mode) || S_ISSOCK(status.st_mode));
    return fd;
}

/*
 * writev() that cannot raise SIGPIPE: the signal is blocked in this thread around the call and
 * the one the call may have raised is taken back, unless one was already pending before (that
 * one is not ours to swallow). Only FIFOs and sockets need it, regular files never raise it.
 */
static ssize_t write_without_sigpipe(int fd, const struct iovec *parts, int count) {
    sigset_t pipe_signal, pending, previous;
    sigemptyset(&pipe_signal);
    sigaddset(&pipe_signal, SIGPIPE);
    sigpending(&pending);
    int was_pending = sigismember(&pending, SIGPIPE);
    pthread_sigmask(SIG_BLOCK, &pipe_signal, &previous);
    ssize_t written = writev(fd, parts, count);
    int saved_errno = errno;
    if (written < 0 && saved_errno == EPIPE && !was_pending) {
        const struct timespec no_wait = {0, 0};
        while (sigtimedwait(&pipe_signal, NULL, &no_wait) < 0 && errno == EINTR) {
        }
    }
    pthread_sigmask(SIG_SETMASK, &previous, NULL);
    errno = saved_errno;
    return written;
}

static ssize_t file_append(struct audit *audit, const struct iovec *parts, int count) {
    ssize_t written;
    do {
        written = audit->file_is_pipe ? write_without_sigpipe(audit->file_fd, parts, count)
                                      : writev(audit->file_fd, parts, count);
    } while (written < 0 && errno == EINTR);
    return written;
}

static int file_write(struct audit *audit, const char *json) {
    static char newline[] = "\n";
    size_t length = strlen(json);
    /* writev() takes non-const bases but only reads them; one call is one append. */
    struct iovec parts[2] = {{(void *)(uintptr_t)json, length}, {newline, 1}};
    ssize_t written = file_append(audit, parts, 2);
    if (written == (ssize_t)(length + 1)) {
        sink_worked(&audit->file_state);
        return 1;
    }
    counter_add(&audit->stats.file_errors);
    if (written < 0) {
        int code = errno;
        if (code == EAGAIN || code == EWOULDBLOCK)
            sink_failed(audit, &audit->file_state,
                        "audit file %s: its reader is not keeping up, records are dropped",
                        audit->file_path);
        else
            sink_failed(audit, &audit->file_state, "audit file %s: %s", audit->file_path,
                        strerror(code));
        return 0;
    }
    sink_failed(audit, &audit->file_state, "audit file %s: record cut short (%zd of %zu bytes)",
                audit->file_path, written, length + 1);
    /* The cut record cannot be completed without risking another writer's record in between;
     * ending its line lets the next record start on a line of its own. */
    if (written > 0)
        (void)file_append(audit, &parts[1], 1);
    return 0;
}

/* ---- syslog ---- */

static int syslog_connect(struct audit *audit) {
    int fd = socket(audit->syslog_address.ss_family, SOCK_DGRAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0);
    if (fd < 0)
        return -errno;
    if (connect(fd, (const struct sockaddr *)&audit->syslog_address,
                audit->syslog_address_length) != 0) {
        int code = errno;
        close(fd);
        return -code;
    }
    audit->syslog_fd = fd;
    return 0;
}

static void syslog_disconnect(struct audit *audit) {
    if (audit->syslog_fd >= 0)
        close(audit->syslog_fd);
    audit->syslog_fd = -1;
}

/* Connects again, unless the last attempt failed less than a second ago (then its error). */
static int syslog_reconnect(struct audit *audit) {
    int64_t now = monotonic_ms();
    if (audit->connect_failed_at != 0 && now - audit->connect_failed_at < RECONNECT_INTERVAL_MS)
        return -audit->connect_errno;
    int rc = syslog_connect(audit);
    if (rc == 0) {
        audit->connect_failed_at = 0;
    } else {
        /* 0 means "no failure": a clock that reads 0 is moved by a millisecond. */
        audit->connect_failed_at = now != 0 ? now : 1;
        audit->connect_errno = -rc;
    }
    return rc;
}

/* The errors of a unix socket whose receiver has gone: a new connection may find the next. */
static int receiver_gone(int code) {
    return code == ECONNREFUSED || code == ENOTCONN || code == ENOENT || code == EPIPE ||
           code == ECONNRESET || code == EDESTADDRREQ;
}

/* Sends the datagram, connecting first when the unix socket is down. Returns 0 or -errno. */
static int syslog_send(struct audit *audit, size_t length) {
    int reconnected = 0;
    for (;;) {
        if (audit->syslog_fd < 0) {
            int rc = syslog_reconnect(audit);
            if (rc != 0)
                return rc;
            reconnected = 1;
        }
        if (send(audit->syslog_fd, audit->datagram, length, MSG_NOSIGNAL | MSG_DONTWAIT) >= 0)
            return 0;
        int code = errno;
        if (code == EINTR)
            continue;
        if (audit->syslog_kind != SYSLOG_UNIX || !receiver_gone(code) || reconnected)
            return -code;
        /* The daemon restarted: its new socket may already be there. */
        syslog_disconnect(audit);
    }
}

/* MSGID as RFC 5424 allows it: printable ASCII, at most 32 characters, or "-". */
static void msgid_field(const char *msgid, char *field) {
    size_t length = 0;
    if (msgid != NULL)
        for (; msgid[length] != '\0' && length < MSGID_MAX; length++)
            if (msgid[length] < 33 || msgid[length] > 126)
                break;
    if (msgid == NULL || length == 0 || (msgid[length] != '\0' && length < MSGID_MAX)) {
        strcpy(field, "-");
        return;
    }
    memcpy(field, msgid, length);
    field[length] = '\0';
}

static int syslog_write(struct audit *audit, enum audit_severity severity, const char *msgid,
                        const char *json) {
    char msgid_text[MSGID_MAX + 1];
    unsigned level = (unsigned)severity <= 7 ? (unsigned)severity : AUDIT_INFO;
    msgid_field(msgid, msgid_text);
    size_t limit = audit->syslog_kind == SYSLOG_UDP ? AUDIT_UDP_MAX : AUDIT_UNIX_MAX;
    /* The header is under 400 bytes (hostname 255, app name 48, msgid 32), well below limit. */
    int header =
        ship_syslog_header(audit->datagram, limit, audit->facility, (int)level, log_wall_ms(),
                           audit->hostname, audit->app_name, (long)getpid(), msgid_text);
    if (header < 0)
        header = 0;
    size_t room = limit - (size_t)header, length = strlen(json);
    if (length > room) {
        /* Cut before a UTF-8 continuation byte, so the start of a character is not left alone. */
        length = room;
        while (length > 0 && ((unsigned char)json[length] & 0xC0) == 0x80)
            length--;
        counter_add(&audit->stats.syslog_truncated);
    }
    memcpy(audit->datagram + header, json, length);
    int rc = syslog_send(audit, (size_t)header + length);
    if (rc == 0) {
        sink_worked(&audit->syslog_state);
        return 1;
    }
    if (rc == -EAGAIN || rc == -EWOULDBLOCK || rc == -ENOBUFS) {
        counter_add(&audit->stats.syslog_dropped);
        sink_failed(audit, &audit->syslog_state,
                    "audit syslog %s: the receiver's queue is full, records are dropped",
                    audit->syslog_name);
    } else {
        counter_add(&audit->stats.syslog_errors);
        int reconnecting = audit->syslog_kind == SYSLOG_UNIX && receiver_gone(-rc);
        sink_failed(audit, &audit->syslog_state, "audit syslog %s: %s%s", audit->syslog_name,
                    strerror(-rc), reconnecting ? " (trying again at most once a second)" : "");
    }
    return 0;
}

/* Parses "unix", "unix:PATH" or "udp:HOST:PORT" into the address to send to. */
static int syslog_address(struct audit *audit, const char *text, char *error, size_t capacity) {
    if (strcmp(text, "unix") == 0 || strncmp(text, "unix:", 5) == 0) {
        const char *path = text[4] == ':' ? text + 5 : DEFAULT_SYSLOG_PATH;
        struct sockaddr_un *unix_address = (struct sockaddr_un *)&audit->syslog_address;
        if (path[0] == '\0' || strlen(path) >= sizeof unix_address->sun_path) {
            snprintf(error, capacity, "audit syslog %s: the socket path is empty or too long",
                     text);
            return MB_EINVAL;
        }
        unix_address->sun_family = AF_UNIX;
        strcpy(unix_address->sun_path, path);
        audit->syslog_address_length = (socklen_t)sizeof *unix_address;
        audit->syslog_kind = SYSLOG_UNIX;
        return 0;
    }
    if (strncmp(text, "udp:", 4) == 0) {
        const char *reason = NULL;
        if (mb_address_parse(text + 4, SYSLOG_PORT, &audit->syslog_address,
                             &audit->syslog_address_length, &reason) != 0) {
            snprintf(error, capacity, "audit syslog %s: %s", text,
                     reason != NULL ? reason : "not an address");
            return MB_EADDRESS;
        }
        audit->syslog_kind = SYSLOG_UDP;
        return 0;
    }
    if (strncmp(text, "tcp:", 4) == 0 || strncmp(text, "tls:", 4) == 0) {
        audit->syslog_kind = SYSLOG_STREAM;
        return 0;
    }
    snprintf(error, capacity,
             "audit syslog %s: expected unix, unix:PATH, udp:HOST:PORT, tcp:HOST:PORT or "
             "tls:HOST:PORT",
             text);
    return MB_EINVAL;
}

/* Splits "tcp:HOST:PORT", "tls:[V6]:PORT" or "tls:HOST" (syslog's ports by default). */
static int stream_address(const char *text, char *host, size_t capacity, uint16_t *port) {
    return ship_split_address(text + 4, strncmp(text, "tls:", 4) == 0 ? 6514 : 514, host, capacity,
                              port);
}

/* Loads a TLS client context to see that its files are right. */
static int check_tls(const char *what, const char *host, const struct mb_tls_config *given,
                     char *error, size_t capacity) {
    struct mb_tls_config tls = *given;
    if (tls.server_name == NULL && tls.pin == NULL)
        tls.server_name = host;
    struct mb_tls_context *context = NULL;
    char reason[256];
    if (mb_tls_context_create(0, &tls, &context, reason, sizeof reason) != 0) {
        snprintf(error, capacity, "%s: %s", what, reason);
        return MB_ECONFIG;
    }
    mb_tls_context_destroy(context);
    return 0;
}

int audit_check(const struct audit_config *config, char *error, size_t capacity) {
    if (config->mqtt != NULL && config->mqtt->tls != NULL &&
        strncmp(config->mqtt->broker, "tls:", 4) == 0) {
        char host[256], what[320];
        uint16_t port;
        snprintf(what, sizeof what, "mqtt %s", config->mqtt->broker);
        if (ship_split_address(config->mqtt->broker + 4, 8883, host, sizeof host, &port) != 0) {
            snprintf(error, capacity, "%s: not tls:HOST:PORT", what);
            return MB_EADDRESS;
        }
        int rc = check_tls(what, host, config->mqtt->tls, error, capacity);
        if (rc != 0)
            return rc;
    }
    if (config->syslog == NULL ||
        (strncmp(config->syslog, "tcp:", 4) != 0 && strncmp(config->syslog, "tls:", 4) != 0))
        return 0;
    char host[256];
    uint16_t port;
    if (stream_address(config->syslog, host, sizeof host, &port) != 0) {
        snprintf(error, capacity, "audit syslog %s: not HOST:PORT", config->syslog);
        return MB_EADDRESS;
    }
    if (strncmp(config->syslog, "tls:", 4) != 0 || config->syslog_tls == NULL)
        return 0;
    char what[320];
    snprintf(what, sizeof what, "audit syslog %s", config->syslog);
    return check_tls(what, host, config->syslog_tls, error, capacity);
}

/* Starts the shipper of a network sink over `link` (which it takes), with its spool in
 * SPOOL/`leaf` (SPOOL made, mode 0700, when missing). */
static int start_shipper(struct audit *audit, const struct audit_config *config, const char *name,
                         const char *leaf, struct ship_link *link, struct ship **ship, char *error,
                         size_t capacity) {
    char directory[4200];
    if (mkdir(config->spool, 0700) != 0 && errno != EEXIST) {
        snprintf(error, capacity, "audit spool %s: %s", config->spool, strerror(errno));
        link->ops->destroy(link);
        return MB_ESYSTEM;
    }
    snprintf(directory, sizeof directory, "%s/%s", config->spool, leaf);
    struct ship_config ship_config = {.name = name,
                                      .spool = directory,
                                      .spool_bytes = config->spool_bytes,
                                      .app_name = audit->app_name};
    return ship_open(&ship_config, link, ship, error, capacity) == 0 ? 0 : MB_ESYSTEM;
}

/* Opens the shipper of syslog over TCP or TLS, with its spool in SPOOL/syslog. */
static int stream_open(struct audit *audit, const struct audit_config *config, char *error,
                       size_t capacity) {
    char host[256], name[300];
    uint16_t port;
    if (stream_address(config->syslog, host, sizeof host, &port) != 0) {
        snprintf(error, capacity, "audit syslog %s: not HOST:PORT", config->syslog);
        return MB_EADDRESS;
    }
    snprintf(name, sizeof name, "audit syslog %s", config->syslog);
    if (config->spool == NULL) {
        snprintf(error, capacity, "%s: a spool directory is needed", name);
        return MB_EINVAL;
    }
    struct ship_syslog_config link_config = {
        .host = host,
        .port = port,
        .tls = strncmp(config->syslog, "tls:", 4) == 0 ? config->syslog_tls : NULL,
        .hostname = audit->hostname,
        .app_name = audit->app_name,
        .facility = audit->facility,
    };
    if (strncmp(config->syslog, "tls:", 4) == 0 && config->syslog_tls == NULL) {
        snprintf(error, capacity, "%s: TLS settings are needed", name);
        return MB_EINVAL;
    }
    struct ship_link *link = NULL;
    char reason[400];
    if (ship_syslog_create(&link_config, &link, reason, sizeof reason) != 0) {
        snprintf(error, capacity, "%s: %s", name, reason);
        return MB_ECONFIG;
    }
    return start_shipper(audit, config, name, "syslog", link, &audit->syslog_ship, error, capacity);
}

/* Opens the shipper to an MQTT broker, with its spool in SPOOL/mqtt. */
static int mqtt_open(struct audit *audit, const struct audit_config *config, char *error,
                     size_t capacity) {
    const struct audit_mqtt *mqtt = config->mqtt;
    char host[256], name[320];
    uint16_t port;
    int secure = strncmp(mqtt->broker, "tls:", 4) == 0;
    snprintf(name, sizeof name, "mqtt %s", mqtt->broker);
    if ((!secure && strncmp(mqtt->broker, "tcp:", 4) != 0) ||
        ship_split_address(mqtt->broker + 4, secure ? 8883 : 1883, host, sizeof host, &port) != 0) {
        snprintf(error, capacity, "%s: not tcp:HOST:PORT or tls:HOST:PORT", name);
        return MB_EADDRESS;
    }
    if (secure && mqtt->tls == NULL) {
        snprintf(error, capacity, "%s: TLS settings are needed", name);
        return MB_EINVAL;
    }
    if (config->spool == NULL) {
        snprintf(error, capacity, "%s: a spool directory is needed", name);
        return MB_EINVAL;
    }
    struct ship_mqtt_config link_config = {
        .host = host,
        .port = port,
        .tls = secure ? mqtt->tls : NULL,
        .protocol = mqtt->protocol,
        .client_id = mqtt->client_id,
        .username = mqtt->username,
        .password = mqtt->password,
        .keepalive_s = mqtt->keepalive_s,
        .prefix = mqtt->prefix,
        .will = mqtt->will,
    };
    struct ship_link *link = NULL;
    char reason[400];
    if (ship_mqtt_create(&link_config, &link, reason, sizeof reason) != 0) {
        snprintf(error, capacity, "%s: %s", name, reason);
        return MB_ECONFIG;
    }
    int rc = start_shipper(audit, config, name, "mqtt", link, &audit->mqtt_ship, error, capacity);
    audit->mqtt_records = rc == 0 && mqtt->records;
    return rc;
}

static void hostname_field(char *field) {
    char name[HOSTNAME_MAX + 2] = "";
    if (gethostname(name, sizeof name) != 0)
        name[0] = '\0';
    name[sizeof name - 1] = '\0';
    strcpy(field, printable_ascii(name, HOSTNAME_MAX) ? name : "-");
}

/* ---- the sink ---- */

static int audit_configure(struct audit *audit, const struct audit_config *config, char *error,
                           size_t capacity) {
    const char *app_name = config->app_name != NULL ? config->app_name : DEFAULT_APP_NAME;
    if (!printable_ascii(app_name, APP_NAME_MAX)) {
        snprintf(error, capacity,
                 "audit syslog app name '%s': 1 to 48 printable ASCII characters, no spaces",
                 app_name);
        return MB_EINVAL;
    }
    strcpy(audit->app_name, app_name);
    if (config->facility < 0 || config->facility > 23) {
        snprintf(error, capacity, "audit syslog facility %d: expected 1 to 23", config->facility);
        return MB_EINVAL;
    }
    audit->facility = config->facility != 0 ? config->facility : DEFAULT_FACILITY;
    hostname_field(audit->hostname);

    if (config->file != NULL) {
        audit->file_path = strdup(config->file);
        if (audit->file_path == NULL)
            return MB_ENOMEM;
        int fd = file_open(audit->file_path, &audit->file_is_pipe, error, capacity);
        if (fd < 0)
            return fd;
        audit->file_fd = fd;
    }
    if (config->syslog != NULL) {
        audit->syslog_name = strdup(config->syslog);
        if (audit->syslog_name == NULL)
            return MB_ENOMEM;
        int rc = syslog_address(audit, config->syslog, error, capacity);
        if (rc != 0)
            return rc;
        if (audit->syslog_kind == SYSLOG_STREAM) {
            rc = stream_open(audit, config, error, capacity);
            if (rc != 0)
                return rc;
            return config->mqtt != NULL ? mqtt_open(audit, config, error, capacity) : 0;
        }
        /* Refused at the start: a sink that does not exist is more likely a mistake in the
         * configuration than a daemon restarting. */
        rc = syslog_connect(audit);
        if (rc != 0) {
            snprintf(error, capacity, "audit syslog %s: %s", config->syslog, strerror(-rc));
            return MB_ESYSTEM;
        }
    }
    if (config->mqtt != NULL)
        return mqtt_open(audit, config, error, capacity);
    return 0;
}

int audit_open(const struct audit_config *config, struct audit **audit, char *error,
               size_t capacity) {
    if (error != NULL && capacity > 0)
        error[0] = '\0';
    if (config == NULL || audit == NULL || error == NULL || capacity == 0) {
        if (error != NULL && capacity > 0)
            snprintf(error, capacity, "audit: invalid argument");
        return MB_EINVAL;
    }
    *audit = NULL;
    struct audit *created = calloc(1, sizeof *created);
    if (created == NULL) {
        snprintf(error, capacity, "audit: %s", mb_strerror(MB_ENOMEM));
        return MB_ENOMEM;
    }
    created->file_fd = -1;
    created->syslog_fd = -1;
    created->last_error = "";
    if (pthread_mutex_init(&created->lock, NULL) != 0) {
        free(created);
        snprintf(error, capacity, "audit: %s", mb_strerror(MB_ENOMEM));
        return MB_ENOMEM;
    }
    int rc = audit_configure(created, config, error, capacity);
    if (rc != 0) {
        if (rc == MB_ENOMEM)
            snprintf(error, capacity, "audit: %s", mb_strerror(MB_ENOMEM));
        audit_close(created);
        return rc;
    }
    *audit = created;
    return 0;
}

void audit_write(struct audit *audit, enum audit_severity severity, const char *msgid,
                 const char *json) {
    if (audit == NULL || json == NULL)
        return;
    pthread_mutex_lock(&audit->lock);
    int taken = 1;
    if (audit->file_fd >= 0)
        taken &= file_write(audit, json);
    if (audit->syslog_kind == SYSLOG_STREAM) {
        char msgid_text[MSGID_MAX + 1];
        msgid_field(msgid, msgid_text);
        ship_push(audit->syslog_ship, (int)severity, msgid_text, json);
    } else if (audit->syslog_kind != SYSLOG_NONE) {
        taken &= syslog_write(audit, severity, msgid, json);
    }
    if (audit->mqtt_records) {
        char msgid_text[MSGID_MAX + 1];
        msgid_field(msgid, msgid_text);
        ship_push(audit->mqtt_ship, (int)severity, msgid_text, json);
    }
    if (taken)
        counter_add(&audit->stats.written);
    pthread_mutex_unlock(&audit->lock);
}

/* 1 when the path no longer names the open file (logrotate renamed or removed it). */
static int file_moved(struct audit *audit) {
    struct stat open_file, named;
    pthread_mutex_lock(&audit->lock);
    int fd = audit->file_fd;
    int known = fd >= 0 && fstat(fd, &open_file) == 0;
    pthread_mutex_unlock(&audit->lock);
    if (!known || stat(audit->file_path, &named) != 0)
        return 1;
    return open_file.st_dev != named.st_dev || open_file.st_ino != named.st_ino;
}

int audit_hand_over(struct audit *audit, unsigned uid, unsigned gid, char *error, size_t capacity) {
    if (audit == NULL || audit->file_fd < 0)
        return 0;
    struct stat status;
    if (fstat(audit->file_fd, &status) != 0 || !S_ISREG(status.st_mode))
        return 0;
    if (fchown(audit->file_fd, (uid_t)uid, (gid_t)gid) != 0) {
        snprintf(error, capacity, "audit file %s: cannot give it to uid %u: %s", audit->file_path,
                 uid, strerror(errno));
        return MB_ESYSTEM;
    }
    return 0;
}

int audit_reopen(struct audit *audit, char *error, size_t capacity) {
    if (error != NULL && capacity > 0)
        error[0] = '\0';
    if (audit == NULL || error == NULL || capacity == 0)
        return MB_EINVAL;
    int fd = -1, is_pipe = 0;
    if (audit->file_path != NULL && !file_moved(audit)) {
        /* Still the file the path names: the descriptor stays, so a process that dropped its
         * privileges keeps writing to the file it opened as root. */
        pthread_mutex_lock(&audit->lock);
        audit->connect_failed_at = 0;
        pthread_mutex_unlock(&audit->lock);
        return 0;
    }
    if (audit->file_path != NULL) {
        fd = file_open(audit->file_path, &is_pipe, error, capacity);
        if (fd < 0)
            return fd;
    }
    pthread_mutex_lock(&audit->lock);
    int replaced = audit->file_fd;
    if (fd >= 0) {
        audit->file_fd = fd;
        audit->file_is_pipe = is_pipe;
    }
    audit->connect_failed_at = 0;
    pthread_mutex_unlock(&audit->lock);
    if (fd >= 0 && replaced >= 0)
        close(replaced);
    return 0;
}

void audit_stats(const struct audit *audit, struct audit_stats *stats) {
    memset(stats, 0, sizeof *stats);
    if (audit == NULL)
        return;
    stats->written = __atomic_load_n(&audit->stats.written, __ATOMIC_RELAXED);
    stats->file_errors = __atomic_load_n(&audit->stats.file_errors, __ATOMIC_RELAXED);
    stats->syslog_errors = __atomic_load_n(&audit->stats.syslog_errors, __ATOMIC_RELAXED);
    stats->syslog_dropped = __atomic_load_n(&audit->stats.syslog_dropped, __ATOMIC_RELAXED);
    stats->syslog_truncated = __atomic_load_n(&audit->stats.syslog_truncated, __ATOMIC_RELAXED);
    ship_stats(audit->syslog_ship, &stats->syslog_shipped);
    ship_stats(audit->mqtt_ship, &stats->mqtt_shipped);
}

void audit_notice(struct audit *audit, const char *name, const char *json) {
    if (audit != NULL)
        ship_notice(audit->mqtt_ship, name, json, 1);
}

int audit_has_broker(const struct audit *audit) {
    return audit != NULL && audit->mqtt_ship != NULL;
}

int audit_take_error(struct audit *audit, char *text, size_t capacity) {
    if (audit == NULL || text == NULL || capacity == 0)
        return 0;
    int found = 0;
    pthread_mutex_lock(&audit->lock);
    struct sink_state *states[] = {&audit->file_state, &audit->syslog_state};
    for (size_t i = 0; i < sizeof states / sizeof states[0] && !found; i++)
        if (states[i]->unreported) {
            snprintf(text, capacity, "%s", states[i]->message);
            states[i]->unreported = 0;
            found = 1;
        }
    pthread_mutex_unlock(&audit->lock);
    if (!found && (ship_take_error(audit->syslog_ship, text, capacity) ||
                   ship_take_error(audit->mqtt_ship, text, capacity)))
        found = 2;
    return found;
}

const char *audit_last_error(const struct audit *audit) {
    return audit != NULL ? audit->last_error : "";
}

void audit_close(struct audit *audit) {
    if (audit == NULL)
        return;
    if (audit->file_fd >= 0)
        close(audit->file_fd);
    syslog_disconnect(audit);
    ship_close(audit->syslog_ship);
    ship_close(audit->mqtt_ship);
    pthread_mutex_destroy(&audit->lock);
    free(audit->file_path);
    free(audit->syslog_name);
    free(audit);
}
