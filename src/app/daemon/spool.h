/* SPDX-License-Identifier: MIT */
/*
 * A bounded on-disk spool of records for the network sinks of the audit trail (issue 18): a
 * record is appended here before it is sent, and removed when the receiver acknowledged it, so
 * that a collector or broker outage, and a restart of the gateway during one, lose nothing.
 *
 * Layout: a directory of segment files, "segment-NNNNNNNNNNNNNNNN.spool" (the number counts
 * up), each a run of records, every record a 4-byte length, a 4-byte CRC-32 of its bytes, and
 * the bytes; and a file "cursor" naming the first record not yet acknowledged (segment number,
 * offset, CRC-32). Appending writes to the newest segment; a segment that reaches its size is
 * closed and a new one begun; a segment whose records were all acknowledged is deleted.
 *
 * Durability: spool_sync() makes what was appended and acknowledged so far durable (fsync of the
 * newest segment, and of the cursor); a caller syncs once per batch, not per record. After a
 * crash, records appended since the last sync may be missing, a record cut short at the end is
 * dropped, and records acknowledged since the last sync are sent again: at least once, never
 * silently lost once synced.
 *
 * Bounds: at most max_bytes on disk. When an append would pass it, the oldest records are
 * dropped, whole segments at a time, and counted; spool_take_dropped() hands the count over,
 * so the sink can send a record saying how many. A record that cannot be written (disk full, a
 * file size limit) is counted as lost and the append fails; nothing blocks and nothing crashes.
 * Damaged records found when reading (a CRC that does not match) are skipped with the rest of
 * their segment and counted.
 *
 * One thread at a time.
 */
#ifndef MBSEC_DAEMON_SPOOL_H
#define MBSEC_DAEMON_SPOOL_H

#include <stddef.h>
#include <stdint.h>

#define SPOOL_RECORD_MAX (1024 * 1024) /* bytes of one record */
#define SPOOL_MIN_BYTES (64 * 1024)    /* the smallest max_bytes */

struct spool;

struct spool_stats {
    uint64_t appended; /* records taken */
    uint64_t acked;    /* records acknowledged (sent) */
    uint64_t dropped;  /* records dropped, oldest first, to stay within max_bytes */
    uint64_t lost;     /* records that could not be written (disk full, size limit) */
    uint64_t damaged;  /* records skipped for a bad CRC or length, with their segment's rest */
    uint64_t queued;   /* records waiting now */
    uint64_t bytes;    /* bytes on disk now */
    uint32_t segments; /* segment files now */
};

/* Opens (creating it, mode 0700, when missing) the spool in `directory`, with what an earlier
 * run left there. Returns 0, or -1 with one line in `error`. */
int spool_open(const char *directory, uint64_t max_bytes, struct spool **spool, char *error,
               size_t capacity);

/* Appends a record (1..SPOOL_RECORD_MAX bytes). Returns 0, or -1 when it could not be written
 * (counted as lost; spool_error() says why). */
int spool_append(struct spool *spool, const void *record, size_t length);

/* Makes the appends and acknowledgements so far durable. Returns 0 or -1. */
int spool_sync(struct spool *spool);

/*
 * Read-ahead for a sink with several records in flight: hands out the next record not yet
 * handed out, with its ticket. Returns 1 with *record and *length (valid until the next call on
 * the spool) and *ticket (may be NULL), 0 when every record was handed out. Tickets count up in
 * the order of the records; a ticket of a record dropped for space meanwhile is just stale.
 */
int spool_next(struct spool *spool, const void **record, size_t *length, uint64_t *ticket);

/* Acknowledges every record handed out up to and including the one of `ticket` (a receiver
 * acknowledges in order: TCP, MQTT QoS 1 PUBACKs). Stale tickets acknowledge nothing more. */
void spool_ack_through(struct spool *spool, uint64_t ticket);

/* Forgets what was handed out and not acknowledged: spool_next() starts again from the first
 * unacknowledged record (a connection was lost; its records in flight are sent again). */
void spool_rewind(struct spool *spool);

/* The ticket of the first unacknowledged record. */
uint64_t spool_head(const struct spool *spool);

/* One at a time: the oldest record not yet acknowledged (spool_rewind(), then spool_next()):
 * returns 1 with *record and *length, 0 when there is none. */
int spool_peek(struct spool *spool, const void **record, size_t *length);

/* Acknowledges the record spool_peek() returned last. */
void spool_ack(struct spool *spool);

/* Records dropped for space since the last call. */
uint64_t spool_take_dropped(struct spool *spool);

void spool_stats(const struct spool *spool, struct spool_stats *stats);

/* The last failure, one line ("" when none). */
const char *spool_error(const struct spool *spool);

/* Syncs and closes. NULL is ignored. */
void spool_close(struct spool *spool);

#endif
