/* SPDX-License-Identifier: MIT */
#include "app/daemon/spool.h"

#include <dirent.h>
#include <errno.h>
#include <fcntl.h>
#include <limits.h>
#include <pthread.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <unistd.h>

#define HEADER 8 /* length, CRC-32 */
#define WRITE_BUFFER (256 * 1024)
#define READ_WINDOW (256 * 1024)
#define CURSOR_SIZE 20 /* segment number, offset, CRC-32 */

struct segment {
    uint64_t number;
    uint64_t size;    /* bytes of whole records */
    uint64_t records; /* records in it, acknowledged ones included */
};

struct spool {
    char directory[PATH_MAX];
    int directory_fd;
    int cursor_fd;
    uint64_t max_bytes;
    uint64_t segment_bytes;
    struct segment *segments; /* oldest first; the last one is written to */
    size_t count, capacity;
    int write_fd;
    uint64_t read_offset; /* in segments[0]: the first record not acknowledged */
    uint64_t read_index;  /* records of segments[0] acknowledged */
    uint8_t *buffer;
    size_t buffer_capacity;
    /* Read-ahead: the next record spool_next() hands out is at send_offset of the segment
     * numbered send_number; `sent` records from the first unacknowledged one were handed out
     * and wait for their acknowledgement. `head` is the ticket of the first unacknowledged
     * record: tickets count up over every record acknowledged or dropped since the spool
     * opened. */
    uint64_t send_number;
    uint64_t send_offset;
    int send_fd;
    uint64_t sent;
    uint64_t head;
    /* The lengths (header included) of the `sent` records handed out, oldest first: an
     * acknowledgement moves the cursor without reading the record again. */
    uint32_t *lengths;
    size_t lengths_head, lengths_capacity;
    /* Appends wait here (whole records, of the newest segment) until WRITE_BUFFER bytes, a
     * sync, a rotation or a read of the newest segment: one write for many records. */
    uint8_t *pending;
    size_t pending_length, pending_capacity;
    uint64_t pending_records;
    /* Reads come through a window of the segment being read: one pread for many records. */
    uint8_t *window;
    uint64_t window_number, window_offset;
    size_t window_length;
    uint64_t dropped_pending;
    struct spool_stats stats;
    char error[512];
};

/* CRC-32 (IEEE 802.3, reflected, 0xEDB88320; "123456789" sums to CBF43926), eight bytes at a
 * time through eight tables ("slicing by 8"): every record is summed when appended and when read
 * back, at up to the gateway's request rate. */
static uint32_t crc_tables[8][256];
static pthread_once_t crc_once = PTHREAD_ONCE_INIT;

static void crc_init(void) {
    for (uint32_t n = 0; n < 256; n++) {
        uint32_t crc = n;
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
        crc_tables[0][n] = crc;
    }
    for (uint32_t n = 0; n < 256; n++)
        for (int k = 1; k < 8; k++)
            crc_tables[k][n] =
                (crc_tables[k - 1][n] >> 8) ^ crc_tables[0][crc_tables[k - 1][n] & 0xFFu];
}

static uint32_t crc32(const uint8_t *data, size_t length) {
    pthread_once(&crc_once, crc_init);
    uint32_t crc = 0xFFFFFFFFu;
    for (; length >= 8; data += 8, length -= 8) {
        uint32_t one = crc ^ ((uint32_t)data[0] | (uint32_t)data[1] << 8 | (uint32_t)data[2] << 16 |
                              (uint32_t)data[3] << 24);
        uint32_t two = (uint32_t)data[4] | (uint32_t)data[5] << 8 | (uint32_t)data[6] << 16 |
                       (uint32_t)data[7] << 24;
        crc = crc_tables[7][one & 0xFFu] ^ crc_tables[6][(one >> 8) & 0xFFu] ^
              crc_tables[5][(one >> 16) & 0xFFu] ^ crc_tables[4][one >> 24] ^
              crc_tables[3][two & 0xFFu] ^ crc_tables[2][(two >> 8) & 0xFFu] ^
              crc_tables[1][(two >> 16) & 0xFFu] ^ crc_tables[0][two >> 24];
    }
    while (length-- > 0)
        crc = crc_tables[0][(crc ^ *data++) & 0xFFu] ^ (crc >> 8);
    return ~crc;
}

static void put32(uint8_t *out, uint32_t value) {
    for (int i = 0; i < 4; i++)
        out[i] = (uint8_t)(value >> (8 * i));
}

static uint32_t get32(const uint8_t *in) {
    return (uint32_t)in[0] | (uint32_t)in[1] << 8 | (uint32_t)in[2] << 16 | (uint32_t)in[3] << 24;
}

static void put64(uint8_t *out, uint64_t value) {
    put32(out, (uint32_t)value);
    put32(out + 4, (uint32_t)(value >> 32));
}

static uint64_t get64(const uint8_t *in) {
    return (uint64_t)get32(in) | (uint64_t)get32(in + 4) << 32;
}

static void segment_name(uint64_t number, char *name, size_t capacity) {
    snprintf(name, capacity, "segment-%016llu.spool", (unsigned long long)number);
}

static int fail(struct spool *spool, const char *what, int error) {
    snprintf(spool->error, sizeof spool->error, "spool %.200s: %s: %s", spool->directory, what,
             strerror(error));
    return -1;
}

/* Reads `length` bytes at `offset`: 0, or -1 when they are not all there. */
static int read_at(int fd, void *buffer, size_t length, uint64_t offset) {
    size_t got = 0;
    while (got < length) {
        ssize_t count = pread(fd, (uint8_t *)buffer + got, length - got, (off_t)(offset + got));
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0)
            return -1;
        got += (size_t)count;
    }
    return 0;
}

static int grow_buffer(struct spool *spool, size_t length) {
    if (length <= spool->buffer_capacity)
        return 0;
    uint8_t *bigger = realloc(spool->buffer, length);
    if (bigger == NULL)
        return -1;
    spool->buffer = bigger;
    spool->buffer_capacity = length;
    return 0;
}

/* Reads the record at `offset` of `fd` (a segment of `size` bytes) into the buffer: its length,
 * or -1 when what is there is no whole, intact record. */
static long read_record(struct spool *spool, int fd, uint64_t offset, uint64_t size) {
    uint8_t header[HEADER];
    if (offset + HEADER > size || read_at(fd, header, HEADER, offset) != 0)
        return -1;
    uint32_t length = get32(header);
    if (length == 0 || length > SPOOL_RECORD_MAX || offset + HEADER + length > size ||
        grow_buffer(spool, length) != 0 ||
        read_at(fd, spool->buffer, length, offset + HEADER) != 0 ||
        crc32(spool->buffer, length) != get32(header + 4))
        return -1;
    return (long)length;
}

/* Whole, intact records from the start of a segment: their count and where they end. */
static void scan(struct spool *spool, int fd, uint64_t size, uint64_t *end, uint64_t *records) {
    *end = 0;
    *records = 0;
    long length;
    while ((length = read_record(spool, fd, *end, size)) > 0) {
        *end += HEADER + (uint64_t)length;
        (*records)++;
    }
}

static int add_segment(struct spool *spool, uint64_t number, uint64_t size, uint64_t records) {
    if (spool->count == spool->capacity) {
        size_t capacity = spool->capacity ? spool->capacity * 2 : 8;
        struct segment *bigger = realloc(spool->segments, capacity * sizeof *bigger);
        if (bigger == NULL)
            return -1;
        spool->segments = bigger;
        spool->capacity = capacity;
    }
    spool->segments[spool->count++] = (struct segment){number, size, records};
    return 0;
}

/* Deletes the oldest segment: `counted` says whether its records not yet acknowledged are
 * counted as dropped (space) or not (all acknowledged). */
static void remove_oldest(struct spool *spool, int counted) {
    struct segment *oldest = &spool->segments[0];
    if (counted) {
        uint64_t lost = oldest->records - spool->read_index;
        spool->stats.dropped += lost;
        spool->dropped_pending += lost;
        spool->head += lost;
        /* Handed out and now dropped: their acknowledgements, by ticket, no longer count. */
        uint64_t gone =
            spool->send_number == oldest->number || spool->sent < lost ? spool->sent : lost;
        spool->sent -= gone;
        spool->lengths_head =
            spool->lengths_capacity ? (spool->lengths_head + gone) % spool->lengths_capacity : 0;
    }
    if (spool->window_number == oldest->number)
        spool->window_length = 0;
    if (spool->send_number == oldest->number) {
        if (spool->send_fd >= 0)
            close(spool->send_fd);
        spool->send_fd = -1;
        spool->send_number = spool->count > 1 ? oldest[1].number : oldest->number + 1;
        spool->send_offset = 0;
    }
    char name[64];
    segment_name(oldest->number, name, sizeof name);
    unlinkat(spool->directory_fd, name, 0);
    memmove(spool->segments, spool->segments + 1, (spool->count - 1) * sizeof *spool->segments);
    spool->count--;
    spool->read_offset = 0;
    spool->read_index = 0;
}

/* Writes the appends that wait (to the newest segment). On failure the whole records that
 * reached the file stay, the rest are counted as lost, and -1 is returned. */
static int flush_pending(struct spool *spool) {
    if (spool->pending_length == 0)
        return 0;
    struct segment *current = &spool->segments[spool->count - 1];
    uint64_t durable = current->size - spool->pending_length;
    size_t done = 0;
    int error = 0;
    while (done < spool->pending_length) {
        ssize_t count = write(spool->write_fd, spool->pending + done, spool->pending_length - done);
        if (count < 0 && errno == EINTR)
            continue;
        if (count <= 0) {
            error = count < 0 ? errno : ENOSPC;
            break;
        }
        done += (size_t)count;
    }
    if (error == 0) {
        spool->pending_length = 0;
        spool->pending_records = 0;
        return 0;
    }
    /* Keep the whole records that made it; the segment ends after the last of them. */
    size_t kept_bytes = 0;
    uint64_t kept = 0;
    while (kept_bytes + HEADER <= done) {
        uint64_t next = kept_bytes + HEADER + get32(spool->pending + kept_bytes);
        if (next > done)
            break;
        kept_bytes = (size_t)next;
        kept++;
    }
    if (ftruncate(spool->write_fd, (off_t)(durable + kept_bytes)) != 0) {
        /* then the next open finds the cut record and drops it */
    }
    uint64_t lost = spool->pending_records - kept;
    spool->stats.lost += lost;
    current->size = durable + kept_bytes;
    current->records -= lost;
    spool->pending_length = 0;
    spool->pending_records = 0;
    return fail(spool, "cannot write a record", error);
}

/* Closes the segment being written (durably) and begins the next one. */
static int rotate(struct spool *spool) {
    if (spool->count > 0)
        (void)flush_pending(spool); /* a failure is counted; the segment ends where it can */
    uint64_t number = spool->count > 0 ? spool->segments[spool->count - 1].number + 1 : 1;
    char name[64];
    segment_name(number, name, sizeof name);
    int fd =
        openat(spool->directory_fd, name, O_WRONLY | O_CREAT | O_EXCL | O_APPEND | O_CLOEXEC, 0600);
    if (fd < 0)
        return fail(spool, "cannot begin a segment", errno);
    if (add_segment(spool, number, 0, 0) != 0) {
        close(fd);
        unlinkat(spool->directory_fd, name, 0);
        return fail(spool, "cannot begin a segment", ENOMEM);
    }
    if (spool->write_fd >= 0) {
        fsync(spool->write_fd);
        close(spool->write_fd);
    }
    spool->write_fd = fd;
    fsync(spool->directory_fd);
    return 0;
}

static uint64_t bytes_on_disk(const struct spool *spool) {
    uint64_t bytes = 0;
    for (size_t i = 0; i < spool->count; i++)
        bytes += spool->segments[i].size;
    return bytes;
}

static int compare_numbers(const void *a, const void *b) {
    uint64_t x = *(const uint64_t *)a, y = *(const uint64_t *)b;
    return x < y ? -1 : x > y;
}

/* Finds the segments an earlier run left, keeps their whole, intact records, and the cursor. */
static int load(struct spool *spool) {
    DIR *directory = fdopendir(dup(spool->directory_fd));
    if (directory == NULL)
        return fail(spool, "cannot read the directory", errno);
    uint64_t *numbers = NULL;
    size_t found = 0, room = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        unsigned long long number;
        char tail[8];
        if (sscanf(entry->d_name, "segment-%16llu.%7s", &number, tail) != 2 ||
            strcmp(tail, "spool") != 0)
            continue;
        if (found == room) {
            room = room ? room * 2 : 16;
            uint64_t *bigger = realloc(numbers, room * sizeof *bigger);
            if (bigger == NULL) {
                free(numbers);
                closedir(directory);
                return fail(spool, "reading the segments", ENOMEM);
            }
            numbers = bigger;
        }
        numbers[found++] = number;
    }
    closedir(directory);
    if (found > 1)
        qsort(numbers, found, sizeof *numbers, compare_numbers);
    for (size_t i = 0; i < found; i++) {
        char name[64];
        segment_name(numbers[i], name, sizeof name);
        int fd = openat(spool->directory_fd, name, O_RDWR | O_CLOEXEC);
        struct stat status;
        if (fd < 0 || fstat(fd, &status) != 0) {
            if (fd >= 0)
                close(fd);
            continue;
        }
        uint64_t end, records;
        scan(spool, fd, (uint64_t)status.st_size, &end, &records);
        if (end < (uint64_t)status.st_size) {
            /* A record cut short by a crash, or damage: what follows is not trusted. */
            spool->stats.damaged++;
            if (ftruncate(fd, (off_t)end) != 0)
                end = 0, records = 0;
        }
        close(fd);
        if (records == 0) {
            unlinkat(spool->directory_fd, name, 0);
            continue;
        }
        if (add_segment(spool, numbers[i], end, records) != 0) {
            free(numbers);
            return fail(spool, "reading the segments", ENOMEM);
        }
    }
    free(numbers);
    /* The cursor: the first record not acknowledged. Segments before it are done with. */
    uint8_t cursor[CURSOR_SIZE];
    if (read_at(spool->cursor_fd, cursor, sizeof cursor, 0) == 0 &&
        crc32(cursor, 16) == get32(cursor + 16)) {
        uint64_t number = get64(cursor), offset = get64(cursor + 8);
        while (spool->count > 0 && spool->segments[0].number < number)
            remove_oldest(spool, 0);
        if (spool->count > 0 && spool->segments[0].number == number) {
            /* Count the records before it, and make sure it is a record's start. */
            char name[64];
            segment_name(number, name, sizeof name);
            int fd = openat(spool->directory_fd, name, O_RDONLY | O_CLOEXEC);
            uint64_t at = 0, index = 0;
            long length;
            while (fd >= 0 && at < offset &&
                   (length = read_record(spool, fd, at, spool->segments[0].size)) > 0) {
                at += HEADER + (uint64_t)length;
                index++;
            }
            if (fd >= 0)
                close(fd);
            if (at == offset) {
                spool->read_offset = offset;
                spool->read_index = index;
            }
        }
    }
    return 0;
}

int spool_open(const char *path, uint64_t max_bytes, struct spool **out, char *error,
               size_t capacity) {
    if (path == NULL || max_bytes < SPOOL_MIN_BYTES || strlen(path) >= PATH_MAX) {
        snprintf(error, capacity, "spool: a directory and at least %d bytes are needed",
                 SPOOL_MIN_BYTES);
        return -1;
    }
    struct spool *spool = calloc(1, sizeof *spool);
    if (spool == NULL) {
        snprintf(error, capacity, "spool %.200s: out of memory", path);
        return -1;
    }
    snprintf(spool->directory, sizeof spool->directory, "%s", path);
    spool->max_bytes = max_bytes;
    spool->segment_bytes =
        max_bytes / 16 > SPOOL_MIN_BYTES / 4 ? max_bytes / 16 : SPOOL_MIN_BYTES / 4;
    spool->write_fd = spool->send_fd = spool->cursor_fd = -1;
    spool->pending = malloc(WRITE_BUFFER);
    spool->pending_capacity = WRITE_BUFFER;
    spool->window = malloc(READ_WINDOW);
    if (spool->pending == NULL || spool->window == NULL) {
        free(spool->pending);
        free(spool->window);
        free(spool);
        snprintf(error, capacity, "spool %.200s: out of memory", path);
        return -1;
    }
    spool->directory_fd = -1;
    if (mkdir(path, 0700) != 0 && errno != EEXIST) {
        snprintf(error, capacity, "spool %.200s: cannot create it: %s", path, strerror(errno));
        spool_close(spool);
        return -1;
    }
    spool->directory_fd = open(path, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (spool->directory_fd < 0) {
        snprintf(error, capacity, "spool %.200s: %s", path, strerror(errno));
        spool_close(spool);
        return -1;
    }
    spool->cursor_fd = openat(spool->directory_fd, "cursor", O_RDWR | O_CREAT | O_CLOEXEC, 0600);
    int rc = spool->cursor_fd >= 0 ? load(spool) : fail(spool, "cannot open the cursor", errno);
    if (rc == 0) {
        /* Appends go to a fresh segment: an earlier run's last one may end anywhere. */
        rc = rotate(spool);
    }
    if (rc == 0)
        spool_rewind(spool);
    if (rc != 0) {
        snprintf(error, capacity, "%s", spool->error);
        spool->error[0] = '\0';
        spool_close(spool);
        return -1;
    }
    *out = spool;
    return 0;
}

int spool_append(struct spool *spool, const void *record, size_t length) {
    if (length == 0 || length > SPOOL_RECORD_MAX) {
        spool->stats.lost++;
        snprintf(spool->error, sizeof spool->error, "spool %.200s: a record of %zu bytes",
                 spool->directory, length);
        return -1;
    }
    uint64_t need = HEADER + (uint64_t)length;
    if (need > spool->max_bytes / 2) {
        spool->stats.lost++;
        snprintf(spool->error, sizeof spool->error,
                 "spool %.200s: a record of %zu bytes is more than half the spool",
                 spool->directory, length);
        return -1;
    }
    /* Room: the oldest records go, whole segments at a time. */
    while (bytes_on_disk(spool) + need > spool->max_bytes) {
        if (spool->count == 1 && rotate(spool) != 0)
            break;
        remove_oldest(spool, 1);
    }
    struct segment *current = &spool->segments[spool->count - 1];
    if (current->size > 0 && current->size + need > spool->segment_bytes) {
        if (rotate(spool) != 0) {
            spool->stats.lost++;
            return -1;
        }
        current = &spool->segments[spool->count - 1];
    }
    /* Into the write buffer, written when full (a record larger than it gets a buffer of its
     * size, written at once), at a sync, a rotation or a read of this segment. */
    if (spool->pending_length > 0 && spool->pending_length + need > WRITE_BUFFER &&
        flush_pending(spool) != 0) {
        /* counted; the record goes to the emptied buffer all the same */
    }
    if (need > spool->pending_capacity) {
        uint8_t *bigger = realloc(spool->pending, (size_t)need);
        if (bigger == NULL) {
            spool->stats.lost++;
            return fail(spool, "cannot write a record", ENOMEM);
        }
        spool->pending = bigger;
        spool->pending_capacity = (size_t)need;
    }
    current = &spool->segments[spool->count - 1];
    put32(spool->pending + spool->pending_length, (uint32_t)length);
    put32(spool->pending + spool->pending_length + 4, crc32(record, length));
    memcpy(spool->pending + spool->pending_length + HEADER, record, length);
    spool->pending_length += (size_t)need;
    spool->pending_records++;
    current->size += need;
    current->records++;
    spool->stats.appended++;
    if (spool->pending_length >= WRITE_BUFFER && flush_pending(spool) != 0)
        return -1; /* counted */
    return 0;
}

int spool_sync(struct spool *spool) {
    int rc = flush_pending(spool);
    if (spool->write_fd >= 0 && fsync(spool->write_fd) != 0)
        rc = fail(spool, "fsync", errno);
    uint8_t cursor[CURSOR_SIZE];
    put64(cursor, spool->count > 0 ? spool->segments[0].number : 0);
    put64(cursor + 8, spool->read_offset);
    put32(cursor + 16, crc32(cursor, 16));
    if (pwrite(spool->cursor_fd, cursor, sizeof cursor, 0) != (ssize_t)sizeof cursor ||
        fsync(spool->cursor_fd) != 0)
        rc = fail(spool, "cannot write the cursor", errno ? errno : EIO);
    return rc;
}

/* The index of the segment the send cursor is in, or spool->count when it is gone. */
static size_t send_segment(const struct spool *spool) {
    size_t i = 0;
    while (i < spool->count && spool->segments[i].number != spool->send_number)
        i++;
    return i;
}

void spool_rewind(struct spool *spool) {
    if (spool->send_fd >= 0)
        close(spool->send_fd);
    spool->send_fd = -1;
    spool->send_number = spool->count > 0 ? spool->segments[0].number : 0;
    spool->send_offset = spool->read_offset;
    spool->sent = 0;
    spool->lengths_head = 0;
}

/* Remembers the length of a record handed out, for its acknowledgement. */
static int remember_length(struct spool *spool, uint32_t length) {
    if (spool->sent == spool->lengths_capacity) {
        size_t capacity = spool->lengths_capacity ? spool->lengths_capacity * 2 : 1024;
        uint32_t *bigger = malloc(capacity * sizeof *bigger);
        if (bigger == NULL)
            return -1;
        for (uint64_t i = 0; i < spool->sent; i++)
            bigger[i] = spool->lengths[(spool->lengths_head + i) % spool->lengths_capacity];
        free(spool->lengths);
        spool->lengths = bigger;
        spool->lengths_capacity = capacity;
        spool->lengths_head = 0;
    }
    spool->lengths[(spool->lengths_head + spool->sent) % spool->lengths_capacity] = length;
    return 0;
}

/* The record at `offset` of `segment` (of `size` bytes) through the read window: its length,
 * with *record pointing at its bytes (valid until the next read), or -1 when what is there is
 * no whole, intact record. */
static long window_record(struct spool *spool, const struct segment *segment, int fd,
                          uint64_t offset, const uint8_t **record) {
    for (int attempt = 0; attempt < 2; attempt++) {
        int inside = spool->window_number == segment->number && offset >= spool->window_offset &&
                     offset + HEADER <= spool->window_offset + spool->window_length;
        if (inside) {
            const uint8_t *at = spool->window + (offset - spool->window_offset);
            uint32_t length = get32(at);
            if (length == 0 || length > SPOOL_RECORD_MAX ||
                offset + HEADER + length > segment->size)
                return -1;
            if (offset + HEADER + length <= spool->window_offset + spool->window_length) {
                if (crc32(at + HEADER, length) != get32(at + 4))
                    return -1;
                *record = at + HEADER;
                return (long)length;
            }
            if (HEADER + (uint64_t)length > READ_WINDOW) {
                /* Larger than the window: read on its own. */
                long got = read_record(spool, fd, offset, segment->size);
                *record = spool->buffer;
                return got;
            }
        }
        uint64_t want = segment->size - offset < READ_WINDOW ? segment->size - offset : READ_WINDOW;
        if (want < HEADER || read_at(fd, spool->window, (size_t)want, offset) != 0) {
            spool->window_length = 0;
            return -1;
        }
        spool->window_number = segment->number;
        spool->window_offset = offset;
        spool->window_length = (size_t)want;
    }
    return -1;
}

/* At the first unacknowledged record with nothing handed out, a record that does not read
 * back intact: the rest of its segment is not trusted. Returns 1 when there may be more. */
static int skip_damage(struct spool *spool) {
    struct segment *oldest = &spool->segments[0];
    spool->stats.damaged += oldest->records - spool->read_index;
    if (spool->count == 1) {
        if (ftruncate(spool->write_fd, (off_t)spool->read_offset) == 0) {
            oldest->size = spool->read_offset;
            oldest->records = spool->read_index;
        }
        return 0;
    }
    spool->head += oldest->records - spool->read_index;
    spool->read_index = oldest->records; /* counted above, not dropped again */
    remove_oldest(spool, 0);
    spool_rewind(spool);
    return 1;
}

int spool_next(struct spool *spool, const void **record, size_t *length, uint64_t *ticket) {
    for (;;) {
        if (spool->count == 0)
            return 0;
        size_t index = send_segment(spool);
        if (index == spool->count) {
            spool_rewind(spool);
            index = 0;
        }
        if (index == 0 && spool->sent == 0 && spool->read_offset >= spool->segments[0].size &&
            spool->count > 1) {
            remove_oldest(spool, 0); /* all of it acknowledged */
            spool_rewind(spool);
            continue;
        }
        if (index == spool->count - 1 && spool->pending_length > 0)
            (void)flush_pending(spool); /* counted when it fails; the size follows */
        struct segment *segment = &spool->segments[index];
        if (spool->send_offset >= segment->size) {
            if (index + 1 >= spool->count)
                return 0; /* all of it handed out; the segment is still written to */
            if (spool->send_fd >= 0)
                close(spool->send_fd);
            spool->send_fd = -1;
            spool->send_number = segment[1].number;
            spool->send_offset = 0;
            continue;
        }
        if (spool->send_fd < 0) {
            char name[64];
            segment_name(segment->number, name, sizeof name);
            spool->send_fd = openat(spool->directory_fd, name, O_RDONLY | O_CLOEXEC);
        }
        const uint8_t *bytes = NULL;
        long got = spool->send_fd >= 0
                       ? window_record(spool, segment, spool->send_fd, spool->send_offset, &bytes)
                       : -1;
        if (got >= 0 && remember_length(spool, HEADER + (uint32_t)got) != 0)
            return 0; /* out of memory: nothing more handed out for now */
        if (got < 0) {
            /* Damaged since it was written. Ahead of records still in flight, wait for them:
             * the damage is dealt with from the first unacknowledged record. */
            if (index != 0 || spool->sent != 0 || spool->send_offset != spool->read_offset)
                return 0;
            if (!skip_damage(spool))
                return 0;
            continue;
        }
        *record = bytes;
        *length = (size_t)got;
        if (ticket != NULL)
            *ticket = spool->head + spool->sent;
        spool->send_offset += HEADER + (uint64_t)got;
        spool->sent++;
        return 1;
    }
}

/* Acknowledges the first unacknowledged record, which was handed out. */
static void ack_one(struct spool *spool) {
    struct segment *oldest = &spool->segments[0];
    spool->read_offset += spool->lengths[spool->lengths_head];
    spool->lengths_head = (spool->lengths_head + 1) % spool->lengths_capacity;
    spool->read_index++;
    spool->head++;
    spool->sent--;
    spool->stats.acked++;
    if (spool->count > 1 && spool->read_offset >= oldest->size)
        remove_oldest(spool, 0);
}

void spool_ack_through(struct spool *spool, uint64_t ticket) {
    while (spool->sent > 0 && spool->count > 0 && spool->head <= ticket)
        ack_one(spool);
}

uint64_t spool_head(const struct spool *spool) {
    return spool->head;
}

int spool_peek(struct spool *spool, const void **record, size_t *length) {
    spool_rewind(spool);
    return spool_next(spool, record, length, NULL);
}

void spool_ack(struct spool *spool) {
    spool_ack_through(spool, spool->head);
}

uint64_t spool_take_dropped(struct spool *spool) {
    uint64_t dropped = spool->dropped_pending;
    spool->dropped_pending = 0;
    return dropped;
}

void spool_stats(const struct spool *spool, struct spool_stats *stats) {
    *stats = spool->stats;
    uint64_t records = 0;
    for (size_t i = 0; i < spool->count; i++)
        records += spool->segments[i].records;
    stats->queued = records - (spool->count > 0 ? spool->read_index : 0);
    stats->bytes = bytes_on_disk(spool);
    stats->segments = (uint32_t)spool->count;
}

const char *spool_error(const struct spool *spool) {
    return spool->error;
}

void spool_close(struct spool *spool) {
    if (spool == NULL)
        return;
    if (spool->cursor_fd >= 0 && spool->directory_fd >= 0)
        spool_sync(spool);
    if (spool->write_fd >= 0)
        close(spool->write_fd);
    if (spool->send_fd >= 0)
        close(spool->send_fd);
    if (spool->cursor_fd >= 0)
        close(spool->cursor_fd);
    if (spool->directory_fd >= 0)
        close(spool->directory_fd);
    free(spool->segments);
    free(spool->buffer);
    free(spool->pending);
    free(spool->window);
    free(spool->lengths);
    free(spool);
}
