/* SPDX-License-Identifier: MIT */
/*
 * The audit-record sink of `mbsec gateway`: each record is one JSON object (see app/common/json.h),
 * appended as a line to a file and/or sent to syslog. Neither sink ever blocks the caller for
 * long nor stops it: a record a sink cannot take is counted (audit_stats) and the failure
 * kept as a line of text (audit_take_error) for the program to log; this module never
 * prints. Writes, reopen, stats and take_error may come from several threads at once.
 *
 * File: opened O_WRONLY|O_APPEND|O_CREAT|O_CLOEXEC|O_NONBLOCK with mode 0640 (less the umask;
 * an existing file keeps its mode). Each record and its newline go out in one writev() call, so
 * that records of several processes appending to the same file never interleave. O_NONBLOCK
 * changes nothing for a regular file; it makes a FIFO or a terminal whose reader stalls drop
 * records instead of stopping the gateway (and a FIFO without a reader fail to open). A record
 * cut short (disk full, file size limit) counts as an error; a newline is then tried so that the
 * next record starts on a line of its own. A reader that went away costs no SIGPIPE.
 *
 * Syslog: RFC 5424, one record per datagram:
 *   <PRI>1 2026-11-21T10:00:00.123Z HOSTNAME APP-NAME PROCID MSGID - {"json":"record"}
 * PRI = facility * 8 + severity; the time is UTC with milliseconds; HOSTNAME is gethostname()'s
 * ("-" when it is empty or not printable ASCII); PROCID the process id at the time of the
 * record; no structured data. MSG is the JSON as it is, without the UTF-8 BOM that RFC 5424
 * recommends (a SHOULD): rsyslog keeps a BOM as part of the message text, so that JSON parsers
 * downstream (mmjsonparse, log shippers) no longer see an object; MSG-ANY is valid RFC 5424.
 *
 * Over a unix datagram socket (default /dev/log; rsyslog's imuxsock parses RFC 5424 there only
 * with useSpecialParser="off", and journald not at all), a datagram holds at most
 * AUDIT_UNIX_MAX bytes: whole records of the gateway always fit. The socket never blocks: a
 * record that finds the receiver's queue full is dropped (syslog_dropped). When the receiver
 * has gone (ECONNREFUSED, ENOENT: the daemon restarted), the record is sent again over a new
 * connection at once, and while that keeps failing a new connection is tried at most once a
 * second, the records in between counted as syslog_errors.
 *
 * Over UDP, a datagram holds at most AUDIT_UDP_MAX bytes, the size RFC 5424 says receivers
 * should accept; a longer record is cut there, at a UTF-8 character boundary, and counted in
 * syslog_truncated: the receiver gets the header and the start of the record (its MSG is then
 * not a whole JSON object), the file sink keeps it whole. The address is resolved once, when
 * the sink opens. A receiver that is not listening makes the next send fail (ICMP port
 * unreachable): that record counts as an error.
 *
 * Over TCP and TLS (tcp:, tls:), records go through a shipper (ship.h): spooled on disk, sent
 * with octet counting, kept until the collector's TCP acknowledged them, sent again after a
 * reconnect; nothing is cut (rsyslog's default MaxMessageSize of 8 KiB may cut on its side).
 * The collector may be down when the gateway starts: records wait in the spool.
 */
#ifndef MBSEC_TOOLS_AUDIT_H
#define MBSEC_TOOLS_AUDIT_H

#include <stddef.h>
#include <stdint.h>

#include "app/daemon/ship.h"

struct mb_tls_config;

/* The largest syslog datagram, header included, over a unix socket and over UDP. */
#define AUDIT_UNIX_MAX 8192
#define AUDIT_UDP_MAX 2048

/* An MQTT broker the records (and notices) are published to (ship_mqtt.h). */
struct audit_mqtt {
    const char *broker;              /* "tcp:HOST:PORT" (1883) or "tls:HOST:PORT" (8883) */
    const struct mb_tls_config *tls; /* for tls: */
    int protocol;                    /* 4 (3.1.1) or 5 */
    const char *client_id;
    const char *username, *password; /* NULL: none */
    unsigned keepalive_s;
    const char *prefix; /* PREFIX/audit/TYPE, PREFIX/status, PREFIX/metrics */
    const char *will;   /* the Last Will on PREFIX/status; NULL: none */
    int records;        /* 1: the audit records too; 0: notices only */
};

struct audit_config {
    /* Path of the JSON-lines file records are appended to; NULL: no file. */
    const char *file;
    /* NULL: no syslog; "unix" (/dev/log) or "unix:PATH", a datagram socket; "udp:HOST:PORT",
     * "udp:[V6]:PORT" or "udp:HOST" (port 514); "tcp:HOST:PORT" (514) or "tls:HOST:PORT" (6514),
     * a stream with octet counting (RFC 6587, RFC 5425), shipped through a spool (ship.h). */
    const char *syslog;
    /* tls: the client side: the collector's CA or pin, our certificate and key. */
    const struct mb_tls_config *syslog_tls;
    /* tcp: and tls: keep records until delivered in SPOOL/syslog; at most spool_bytes (0: 64
     * MiB). */
    const char *spool;
    uint64_t spool_bytes;
    /* NULL: no broker. Its spool is SPOOL/mqtt. */
    const struct audit_mqtt *mqtt;
    /* RFC 5424 APP-NAME, 1 to 48 printable ASCII characters; NULL: "mbsec-gateway". */
    const char *app_name;
    /* Syslog facility, 1 to 23; 0: 13 (log audit). Kernel messages (0) cannot be chosen, as
     * with syslog(3). */
    int facility;
};

struct audit;

/*
 * Opens the sinks `config` names (none at all is allowed: records are then only counted) into
 * *audit. The strings of `config` are copied. Returns 0, or a negative MB_E* code with one line
 * in `error` naming the sink and the cause ("audit file /var/log/x/audit.log: No such file or
 * directory"): MB_EINVAL for a config value out of range, MB_EADDRESS for a UDP address that
 * does not parse or resolve, MB_ESYSTEM for a file that cannot be opened or a syslog socket that
 * cannot be created or connected, MB_ENOMEM.
 */
int audit_open(const struct audit_config *config, struct audit **audit, char *error,
               size_t capacity);

/* What can be checked of `config` without opening anything (--check): the address of a stream
 * sink and its TLS files. Returns 0, or a negative MB_E* code with one line in `error`. */
int audit_check(const struct audit_config *config, char *error, size_t capacity);

/* RFC 5424 severities an audit record may carry. */
enum audit_severity {
    AUDIT_CRITICAL = 2,
    AUDIT_ERROR = 3,
    AUDIT_WARNING = 4,
    AUDIT_NOTICE = 5,
    AUDIT_INFO = 6
};

/*
 * Writes one record to every sink (nothing when `audit` or `json` is NULL). `json` is one JSON
 * object without a newline (a newline in it would split the line in the file); `msgid` names the
 * record type, the RFC 5424 MSGID: "write", "denied", "connection", "alert", "sanity" (NULL, empty
 * or not printable ASCII: "-"; cut to 32 characters). The file gets `json` alone; msgid and
 * severity go to syslog only, so put them in the JSON too when the file needs them. Failures are
 * counted, never returned.
 */
void audit_write(struct audit *audit, enum audit_severity severity, const char *msgid,
                 const char *json);

/*
 * Opens the file again by its path when the path no longer names the open file (logrotate
 * renamed or removed it), for SIGHUP; while it does, the open descriptor is kept, so that a
 * process that dropped its privileges after opening never needs to open it again. A unix syslog
 * socket that is down is tried again at the next record, whatever the once-a-second limit. On
 * failure the old file stays in use (records keep going to the moved file) and the result is as
 * for audit_open(), with `error` set. Returns 0 when there is no file.
 */
int audit_reopen(struct audit *audit, char *error, size_t capacity);

/* Gives the open file (a regular file; pipes and terminals are left alone) to uid:gid, before
 * the process drops its privileges to them, so that the file stays theirs to append to after a
 * rotation too (logrotate's copytruncate, or create with that owner). Returns 0, or
 * MB_ESYSTEM with one line in `error`. */
int audit_hand_over(struct audit *audit, unsigned uid, unsigned gid, char *error, size_t capacity);

struct audit_stats {
    uint64_t written;                 /* records every configured sink took (cut ones included) */
    uint64_t file_errors;             /* records the file did not take, or took only in part */
    uint64_t syslog_errors;           /* records not sent: no receiver, socket or network errors */
    uint64_t syslog_dropped;          /* records not sent because the receiver's queue was full */
    uint64_t syslog_truncated;        /* records sent cut to the datagram limit (counted as sent) */
    struct ship_stats syslog_shipped; /* tcp: and tls: */
    struct ship_stats mqtt_shipped;
};

/* Sets the latest value of a retained notice on the broker (PREFIX/`name`: "status",
 * "metrics"); nothing without a broker. */
void audit_notice(struct audit *audit, const char *name, const char *json);

/* 1 when the records go to an MQTT broker (a status to keep there). */
int audit_has_broker(const struct audit *audit);

/* The counters since audit_open(). */
void audit_stats(const struct audit *audit, struct audit_stats *stats);

/*
 * The failure a sink ran into, once per outage: returns 1 and copies one line into `text`
 * ("audit file /x: No space left on device") when a sink that was working has failed since the
 * last call, 2 likewise for a network sink with a spool (the line says whether records are kept
 * or dropped), or 0 when nothing new failed. A sink that keeps failing is not reported again until
 * it has worked once more, so logging what this returns after each write does not flood.
 */
int audit_take_error(struct audit *audit, char *text, size_t capacity);

/* The last failure of any sink, reported or not, as one line; "" when none. Owned by `audit`
 * and changed by the next write: for a program with one writing thread. */
const char *audit_last_error(const struct audit *audit);

/* Closes the sinks and frees `audit`; NULL is fine. */
void audit_close(struct audit *audit);

#endif
