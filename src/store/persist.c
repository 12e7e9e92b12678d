/* SPDX-License-Identifier: MIT */
/*
 * The persistence file: the writable tables (coils, holding registers) and the file records of
 * every unit, mapped MAP_SHARED so that a write acknowledged to a client is in the kernel's
 * page cache at once and survives the process being killed.
 *
 * File format, version 1, all header integers little-endian:
 *
 *   offset  size  field
 *        0     8  magic "MBSECDAT"
 *        8     4  format version (1)
 *       12     4  data offset: the header rounded up to 4096 bytes
 *       16     8  data size in bytes
 *       24     4  unit count N (1..256)
 *       28     4  reserved, 0
 *       32  24*N  one layout record per unit: unit id (1), any-unit flag (1), coils start (2),
 *                 coils size (4), holding start (2), files (2), holding size (4), records per
 *                 file (2), reserved (6)
 *   32+24N     4  CRC-32 (IEEE) of the bytes before it
 *
 * then zeros up to the data offset, then the data: per unit, in configuration order, the coils
 * (packed, ceil(size / 8) bytes), the holding registers (2 bytes each, big-endian) and the file
 * records (2 bytes each, big-endian, file 1 first). The data starts on a 4096-byte boundary and
 * the whole file is mapped from offset 0, so the format does not depend on the host's page size.
 *
 * A new file is written under a temporary name in the same directory (mkostemp: O_EXCL, mode
 * 0600), sized, fsync'ed, given its name with renameat2(RENAME_NOREPLACE) (a hard link where the
 * filesystem lacks it), and the directory fsync'ed; a file another process created meanwhile is
 * opened instead. An existing file is only ever read and mapped, never truncated, zeroed or
 * rewritten: a file that is foreign, of another version, with a corrupt header, of another layout
 * or of the wrong size is refused with MB_EPERSIST and a sentence saying which.
 */
#include <errno.h>
#include <fcntl.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/file.h>
#include <sys/mman.h>
#include <sys/stat.h>
#include <unistd.h>

#include "mbsec/error.h"
#include "store/store.h"

#define PERSIST_MAGIC "MBSECDAT"
#define PERSIST_VERSION 1
#define PERSIST_ALIGN 4096
#define FIXED_HEADER 32
#define UNIT_RECORD 24
#define MAX_UNITS 256
#define MAX_HEADER (FIXED_HEADER + UNIT_RECORD * MAX_UNITS + 4)

/* ---- little-endian fields ---- */

static void put_le16(uint8_t *p, uint16_t value) {
    p[0] = (uint8_t)value;
    p[1] = (uint8_t)(value >> 8);
}

static void put_le32(uint8_t *p, uint32_t value) {
    put_le16(p, (uint16_t)value);
    put_le16(p + 2, (uint16_t)(value >> 16));
}

static void put_le64(uint8_t *p, uint64_t value) {
    put_le32(p, (uint32_t)value);
    put_le32(p + 4, (uint32_t)(value >> 32));
}

static uint16_t get_le16(const uint8_t *p) {
    return (uint16_t)(p[0] | (uint16_t)p[1] << 8);
}

static uint32_t get_le32(const uint8_t *p) {
    return get_le16(p) | (uint32_t)get_le16(p + 2) << 16;
}

static uint64_t get_le64(const uint8_t *p) {
    return get_le32(p) | (uint64_t)get_le32(p + 4) << 32;
}

static uint32_t crc32_ieee(const uint8_t *data, size_t length) {
    uint32_t crc = 0xFFFFFFFFu;
    for (size_t i = 0; i < length; i++) {
        crc ^= data[i];
        for (int bit = 0; bit < 8; bit++)
            crc = (crc >> 1) ^ (0xEDB88320u & (0u - (crc & 1u)));
    }
    return ~crc;
}

/* ---- the header ---- */

static size_t header_length(size_t count) {
    return FIXED_HEADER + UNIT_RECORD * count + 4;
}

static uint64_t data_offset_for(size_t count) {
    return (header_length(count) + PERSIST_ALIGN - 1) / PERSIST_ALIGN * PERSIST_ALIGN;
}

static void encode_unit(uint8_t *at, const struct mb__unit_layout *layout) {
    memset(at, 0, UNIT_RECORD);
    at[0] = layout->unit_id;
    at[1] = layout->any_unit;
    put_le16(at + 2, layout->coils_start);
    put_le32(at + 4, layout->coils_size);
    put_le16(at + 8, layout->holding_start);
    put_le16(at + 10, layout->files);
    put_le32(at + 12, layout->holding_size);
    put_le16(at + 16, layout->records_per_file);
}

static void decode_unit(const uint8_t *at, struct mb__unit_layout *layout) {
    layout->unit_id = at[0];
    layout->any_unit = at[1];
    layout->coils_start = get_le16(at + 2);
    layout->coils_size = get_le32(at + 4);
    layout->holding_start = get_le16(at + 8);
    layout->files = get_le16(at + 10);
    layout->holding_size = get_le32(at + 12);
    layout->records_per_file = get_le16(at + 16);
}

/* Builds the header for `layouts` into `header` (MAX_HEADER bytes) and returns its length. */
static size_t encode_header(const struct mb__unit_layout *layouts, size_t count, uint64_t data_size,
                            uint8_t *header) {
    size_t length = header_length(count);
    memset(header, 0, length);
    memcpy(header, PERSIST_MAGIC, 8);
    put_le32(header + 8, PERSIST_VERSION);
    put_le32(header + 12, (uint32_t)data_offset_for(count));
    put_le64(header + 16, data_size);
    put_le32(header + 24, (uint32_t)count);
    for (size_t i = 0; i < count; i++)
        encode_unit(header + FIXED_HEADER + UNIT_RECORD * i, &layouts[i]);
    put_le32(header + length - 4, crc32_ieee(header, length - 4));
    return length;
}

/* "unit 5" or "any unit", for messages. */
static void describe_unit(const struct mb__unit_layout *layout, char *text, size_t capacity) {
    if (layout->any_unit)
        snprintf(text, capacity, "any unit");
    else
        snprintf(text, capacity, "unit %u", (unsigned)layout->unit_id);
}

static void describe_table(const char *name, uint16_t start, uint32_t size, char *text,
                           size_t capacity) {
    if (size == 0)
        snprintf(text, capacity, "no %s", name);
    else
        snprintf(text, capacity, "%s %u..%lu", name, (unsigned)start,
                 (unsigned long)start + size - 1);
}

/* Says how the file's layout differs from the configuration's; returns MB_EPERSIST. */
static int layout_mismatch(const char *path, const struct mb__unit_layout *file_layout,
                           const struct mb__unit_layout *config_layout, char *error,
                           size_t capacity) {
    char in_file[96], in_config[96], unit[32];
    describe_unit(config_layout, unit, sizeof unit);
    if (file_layout->unit_id != config_layout->unit_id ||
        file_layout->any_unit != config_layout->any_unit) {
        describe_unit(file_layout, in_file, sizeof in_file);
        describe_unit(config_layout, in_config, sizeof in_config);
        mb__store_error(error, capacity,
                        "persistence file %s holds another layout (%s in the file, %s in the "
                        "configuration); refusing to use it",
                        path, in_file, in_config);
        return MB_EPERSIST;
    }
    if (file_layout->coils_start != config_layout->coils_start ||
        file_layout->coils_size != config_layout->coils_size) {
        describe_table("coils", file_layout->coils_start, file_layout->coils_size, in_file,
                       sizeof in_file);
        describe_table("coils", config_layout->coils_start, config_layout->coils_size, in_config,
                       sizeof in_config);
    } else if (file_layout->holding_start != config_layout->holding_start ||
               file_layout->holding_size != config_layout->holding_size) {
        describe_table("holding registers", file_layout->holding_start, file_layout->holding_size,
                       in_file, sizeof in_file);
        describe_table("holding registers", config_layout->holding_start,
                       config_layout->holding_size, in_config, sizeof in_config);
    } else {
        snprintf(in_file, sizeof in_file, "%u files of %u records", (unsigned)file_layout->files,
                 (unsigned)file_layout->records_per_file);
        snprintf(in_config, sizeof in_config, "%u files of %u records",
                 (unsigned)config_layout->files, (unsigned)config_layout->records_per_file);
    }
    mb__store_error(error, capacity,
                    "persistence file %s holds another layout (%s: %s in the file, %s in the "
                    "configuration); refusing to use it",
                    path, unit, in_file, in_config);
    return MB_EPERSIST;
}

/* ---- opening an existing file ---- */

static int system_error(char *error, size_t capacity, const char *what, const char *path,
                        int code) {
    mb__store_error(error, capacity, "%s %s: %s", what, path, strerror(code));
    return MB_ESYSTEM;
}

static int read_fully(int fd, uint8_t *buffer, size_t length) {
    size_t done = 0;
    while (done < length) {
        ssize_t got = pread(fd, buffer + done, length - done, (off_t)done);
        if (got < 0 && errno == EINTR)
            continue;
        if (got <= 0)
            return -1;
        done += (size_t)got;
    }
    return 0;
}

/* Checks an existing file against the header we would have written; 0 or MB_EPERSIST. */
static int check_existing(int fd, const char *path, const uint8_t *expected, size_t length,
                          const struct mb__unit_layout *layouts, size_t count, uint64_t total,
                          char *error, size_t capacity) {
    struct stat st;
    if (fstat(fd, &st) != 0)
        return system_error(error, capacity, "cannot stat persistence file", path, errno);
    if (!S_ISREG(st.st_mode)) {
        mb__store_error(error, capacity, "persistence file %s is not a regular file", path);
        return MB_EPERSIST;
    }
    uint64_t size = (uint64_t)st.st_size;
    uint8_t header[MAX_HEADER];
    size_t have = size < sizeof header ? (size_t)size : sizeof header;
    if (read_fully(fd, header, have) != 0)
        return system_error(error, capacity, "cannot read persistence file", path, errno);

    if (have < 8 || memcmp(header, PERSIST_MAGIC, 8) != 0) {
        mb__store_error(error, capacity,
                        "persistence file %s is not an mbsec data file (no MBSECDAT magic); "
                        "refusing to use or overwrite it",
                        path);
        return MB_EPERSIST;
    }
    if (have < FIXED_HEADER) {
        mb__store_error(error, capacity,
                        "persistence file %s is truncated: %llu bytes, shorter than its header",
                        path, (unsigned long long)size);
        return MB_EPERSIST;
    }
    uint32_t version = get_le32(header + 8);
    if (version != PERSIST_VERSION) {
        mb__store_error(error, capacity,
                        "persistence file %s is format version %lu; this build reads version %d",
                        path, (unsigned long)version, PERSIST_VERSION);
        return MB_EPERSIST;
    }
    uint32_t file_units = get_le32(header + 24);
    if (file_units == 0 || file_units > MAX_UNITS) {
        mb__store_error(error, capacity,
                        "persistence file %s has a corrupt header (unit count %lu)", path,
                        (unsigned long)file_units);
        return MB_EPERSIST;
    }
    size_t file_header = header_length(file_units);
    if (have < file_header) {
        mb__store_error(error, capacity,
                        "persistence file %s is truncated: %llu bytes, shorter than its header",
                        path, (unsigned long long)size);
        return MB_EPERSIST;
    }
    if (crc32_ieee(header, file_header - 4) != get_le32(header + file_header - 4)) {
        mb__store_error(error, capacity,
                        "persistence file %s has a corrupt header (checksum mismatch)", path);
        return MB_EPERSIST;
    }
    if (get_le32(header + 12) != data_offset_for(file_units) || get_le32(header + 28) != 0) {
        mb__store_error(error, capacity,
                        "persistence file %s has a corrupt header (data offset %lu)", path,
                        (unsigned long)get_le32(header + 12));
        return MB_EPERSIST;
    }

    if (file_units != count) {
        mb__store_error(error, capacity,
                        "persistence file %s holds another layout (%lu units in the file, %zu in "
                        "the configuration); refusing to use it",
                        path, (unsigned long)file_units, count);
        return MB_EPERSIST;
    }
    for (size_t i = 0; i < count; i++) {
        struct mb__unit_layout file_layout;
        decode_unit(header + FIXED_HEADER + UNIT_RECORD * i, &file_layout);
        if (memcmp(header + FIXED_HEADER + UNIT_RECORD * i,
                   expected + FIXED_HEADER + UNIT_RECORD * i, UNIT_RECORD) != 0)
            return layout_mismatch(path, &file_layout, &layouts[i], error, capacity);
    }
    /* Same layout, so the same data size, unless the header lies. */
    if (memcmp(header, expected, length) != 0) {
        mb__store_error(error, capacity,
                        "persistence file %s has a corrupt header (data size %llu)", path,
                        (unsigned long long)get_le64(header + 16));
        return MB_EPERSIST;
    }
    if (size < total) {
        mb__store_error(error, capacity,
                        "persistence file %s is truncated: %llu bytes where its layout needs "
                        "%llu; refusing to use it",
                        path, (unsigned long long)size, (unsigned long long)total);
        return MB_EPERSIST;
    }
    if (size > total) {
        mb__store_error(error, capacity,
                        "persistence file %s is longer than its layout: %llu bytes where it "
                        "needs %llu; refusing to use it",
                        path, (unsigned long long)size, (unsigned long long)total);
        return MB_EPERSIST;
    }
    return 0;
}

/* ---- creating a new file ---- */

#define CREATE_RACED 1 /* another process created the file first: open it instead */

static int write_fully(int fd, const uint8_t *buffer, size_t length) {
    size_t done = 0;
    while (done < length) {
        ssize_t put = pwrite(fd, buffer + done, length - done, (off_t)done);
        if (put < 0 && errno == EINTR)
            continue;
        if (put <= 0)
            return -1;
        done += (size_t)put;
    }
    return 0;
}

/* Moves `from` to `to` unless `to` exists (EEXIST then). */
static int rename_no_replace(const char *from, const char *to) {
#ifdef RENAME_NOREPLACE
    if (renameat2(AT_FDCWD, from, AT_FDCWD, to, RENAME_NOREPLACE) == 0)
        return 0;
    if (errno != EINVAL && errno != ENOSYS && errno != ENOTSUP)
        return -1;
#endif
    /* Filesystems without RENAME_NOREPLACE: a hard link fails on an existing name too. */
    if (link(from, to) != 0)
        return -1;
    unlink(from);
    return 0;
}

/* The directory part of `path` ("." when it has none), malloc'ed. */
static char *directory_of(const char *path) {
    const char *slash = strrchr(path, '/');
    if (slash == NULL)
        return strdup(".");
    size_t length = slash == path ? 1 : (size_t)(slash - path);
    char *directory = malloc(length + 1);
    if (directory != NULL) {
        memcpy(directory, path, length);
        directory[length] = '\0';
    }
    return directory;
}

/*
 * Writes the header and a zeroed data area under a temporary name in the file's directory,
 * makes it durable, then gives it its name without replacing anything that appeared
 * meanwhile. Returns the open descriptor in *fd_out, CREATE_RACED, or an error.
 */
static int create_file(const char *path, const uint8_t *header, size_t length, uint64_t total,
                       int *fd_out, char *error, size_t capacity) {
    static const char suffix[] = ".tmp-XXXXXX";
    size_t path_length = strlen(path);
    char *temporary = malloc(path_length + sizeof suffix);
    char *directory = directory_of(path);
    int rc = 0, fd = -1;
    if (temporary == NULL || directory == NULL) {
        mb__store_error(error, capacity, "out of memory creating persistence file %s", path);
        rc = MB_ENOMEM;
        goto done;
    }
    memcpy(temporary, path, path_length);
    memcpy(temporary + path_length, suffix, sizeof suffix);

    fd = mkostemp(temporary, O_CLOEXEC);
    if (fd < 0) {
        mb__store_error(error, capacity,
                        "cannot create persistence file %s: no temporary file in directory %s: "
                        "%s",
                        path, directory, strerror(errno));
        rc = MB_ESYSTEM;
        goto done;
    }
    const char *failed = NULL;
    if (ftruncate(fd, (off_t)total) != 0)
        failed = "cannot size";
    else if (write_fully(fd, header, length) != 0)
        failed = "cannot write";
    else if (fsync(fd) != 0)
        failed = "cannot fsync";
    else if (rename_no_replace(temporary, path) != 0)
        failed = "cannot rename a temporary file to";
    int failed_errno = errno;
    if (failed != NULL && failed_errno == EEXIST) {
        /* Only the rename reports EEXIST: someone else created the file meanwhile. */
        unlink(temporary);
        close(fd);
        fd = -1;
        rc = CREATE_RACED;
        goto done;
    }
    if (failed != NULL) {
        unlink(temporary);
        close(fd);
        fd = -1;
        rc = system_error(error, capacity, failed, path, failed_errno);
        goto done;
    }

    /* The new name is durable only once the directory is. */
    int directory_fd = open(directory, O_RDONLY | O_DIRECTORY | O_CLOEXEC);
    if (directory_fd >= 0) {
        if (fsync(directory_fd) != 0 && errno != EINVAL)
            rc = system_error(error, capacity, "cannot fsync the directory of", path, errno);
        close(directory_fd);
    } else {
        rc = system_error(error, capacity, "cannot open the directory of", path, errno);
    }
    if (rc < 0) {
        close(fd);
        fd = -1;
    }
done:
    free(temporary);
    free(directory);
    *fd_out = fd;
    return rc;
}

/* ---- the mapping ---- */

static int map_file(int fd, const char *path, uint64_t total, uint64_t data_size,
                    struct mb__persist *persist, char *error, size_t capacity) {
    void *map = mmap(NULL, (size_t)total, PROT_READ | PROT_WRITE, MAP_SHARED, fd, 0);
    int map_errno = errno;
    if (map == MAP_FAILED) {
        close(fd);
        mb__store_error(error, capacity, "cannot map persistence file %s (%llu bytes): %s", path,
                        (unsigned long long)total, strerror(map_errno));
        return map_errno == ENOMEM ? MB_ENOMEM : MB_ESYSTEM;
    }
    persist->fd = fd;
    persist->map = map;
    persist->map_size = (size_t)total;
    persist->data = persist->map + (total - data_size);
    persist->data_size = data_size;
    return 0;
}

/*
 * Takes the file for this process alone. Two servers writing one file would each keep their own
 * lock and lose each other's acknowledged writes, so the second is refused. The lock lives as
 * long as the descriptor (kept open next to the mapping), and is dropped by the kernel when the
 * process dies, kill -9 included.
 */
static int lock_file(int fd, const char *path, char *error, size_t capacity) {
    if (flock(fd, LOCK_EX | LOCK_NB) == 0)
        return 0;
    if (errno == EWOULDBLOCK) {
        mb__store_error(error, capacity,
                        "persistence file %s is in use by another process: only one server may "
                        "own it",
                        path);
        return MB_EPERSIST;
    }
    return system_error(error, capacity, "cannot lock persistence file", path, errno);
}

int mb__persist_open(const char *path, const struct mb__unit_layout *layouts, size_t count,
                     struct mb__persist *persist, char *error, size_t error_capacity) {
    memset(persist, 0, sizeof *persist);
    persist->fd = -1;
    if (path == NULL || layouts == NULL || count == 0 || count > MAX_UNITS)
        return MB_EINVAL;
    uint64_t data_size = 0;
    for (size_t i = 0; i < count; i++)
        data_size += mb__unit_persistent_bytes(&layouts[i]);
    uint64_t total = data_offset_for(count) + data_size;
    if (total > (uint64_t)SIZE_MAX || total > (uint64_t)INT64_MAX) {
        mb__store_error(error, error_capacity,
                        "persistence file %s would need %llu bytes, more than this host can map",
                        path, (unsigned long long)total);
        return MB_ENOMEM;
    }
    uint8_t header[MAX_HEADER];
    size_t length = encode_header(layouts, count, data_size, header);

    /* Open what is there; create only when nothing is, and if another process wins the race
     * to create it, open theirs. */
    for (int attempt = 0; attempt < 3; attempt++) {
        int fd = open(path, O_RDWR | O_CLOEXEC);
        if (fd >= 0) {
            int rc = lock_file(fd, path, error, error_capacity);
            if (rc == 0)
                rc = check_existing(fd, path, header, length, layouts, count, total, error,
                                    error_capacity);
            if (rc != 0) {
                close(fd);
                return rc;
            }
            return map_file(fd, path, total, data_size, persist, error, error_capacity);
        }
        if (errno == EISDIR) {
            mb__store_error(error, error_capacity,
                            "persistence file %s is not a regular file but a directory", path);
            return MB_EPERSIST;
        }
        if (errno != ENOENT)
            return system_error(error, error_capacity, "cannot open persistence file", path, errno);
        int rc = create_file(path, header, length, total, &fd, error, error_capacity);
        if (rc == CREATE_RACED)
            continue;
        if (rc < 0)
            return rc;
        if ((rc = lock_file(fd, path, error, error_capacity)) != 0) {
            close(fd);
            return rc;
        }
        return map_file(fd, path, total, data_size, persist, error, error_capacity);
    }
    mb__store_error(error, error_capacity,
                    "persistence file %s keeps appearing and disappearing while being created",
                    path);
    return MB_ESYSTEM;
}

int mb__persist_sync(struct mb__persist *persist) {
    if (persist->map == NULL)
        return 0;
    return msync(persist->map, persist->map_size, MS_SYNC) == 0 ? 0 : MB_ESYSTEM;
}

void mb__persist_close(struct mb__persist *persist) {
    if (persist->map != NULL)
        munmap(persist->map, persist->map_size);
    if (persist->map != NULL && persist->fd >= 0)
        close(persist->fd);
    memset(persist, 0, sizeof *persist);
    persist->fd = -1;
}
