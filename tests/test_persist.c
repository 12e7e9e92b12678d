/* SPDX-License-Identifier: MIT */
/*
 * Persistence of the data model: what a client writes survives destroy and reopen, and the
 * process being killed; a file that is truncated, foreign, of another version, corrupt or of
 * another layout is refused with its own message and left byte for byte as it was; a new file
 * appears atomically; a directory that cannot be written is a clear error.
 */
#include <dirent.h>
#include <fcntl.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>
#include <sys/wait.h>
#include <unistd.h>

#include "harness.h"
#include "mbsec/error.h"
#include "mbsec/model.h"
#include "mbsec/pdu.h"

/* ---- helpers ---- */

static char directory[64];
static char path[128];

/* A fresh temporary directory for each test, and the data file's path in it. */
static void fresh_directory(void) {
    snprintf(directory, sizeof directory, "/tmp/mbsec-persist-XXXXXX");
    if (mkdtemp(directory) == NULL) {
        perror("mkdtemp");
        exit(2);
    }
    snprintf(path, sizeof path, "%s/model.dat", directory);
}

static void remove_directory(void) {
    DIR *listing = opendir(directory);
    struct dirent *entry;
    char name[512];
    while (listing != NULL && (entry = readdir(listing)) != NULL) {
        if (strcmp(entry->d_name, ".") == 0 || strcmp(entry->d_name, "..") == 0)
            continue;
        snprintf(name, sizeof name, "%s/%s", directory, entry->d_name);
        if (unlink(name) != 0)
            rmdir(name);
    }
    if (listing != NULL)
        closedir(listing);
    rmdir(directory);
}

/* Entries in the directory besides . and .. */
static int entries(void) {
    DIR *listing = opendir(directory);
    struct dirent *entry;
    int count = 0;
    while (listing != NULL && (entry = readdir(listing)) != NULL)
        if (strcmp(entry->d_name, ".") != 0 && strcmp(entry->d_name, "..") != 0)
            count++;
    if (listing != NULL)
        closedir(listing);
    return count;
}

/* The whole file, malloc'ed; *size set. NULL if it cannot be read. */
static uint8_t *slurp(const char *file, size_t *size) {
    struct stat st;
    *size = 0;
    if (stat(file, &st) != 0 || !S_ISREG(st.st_mode))
        return NULL;
    FILE *stream = fopen(file, "rb");
    if (stream == NULL)
        return NULL;
    long length = (long)st.st_size;
    uint8_t *bytes = malloc(length > 0 ? (size_t)length : 1);
    if (bytes != NULL && fread(bytes, 1, (size_t)length, stream) != (size_t)length) {
        free(bytes);
        bytes = NULL;
    }
    fclose(stream);
    *size = (size_t)length;
    return bytes;
}

static void spill(const char *file, const uint8_t *bytes, size_t size) {
    FILE *stream = fopen(file, "wb");
    if (stream == NULL || fwrite(bytes, 1, size, stream) != size) {
        perror("spill");
        exit(2);
    }
    fclose(stream);
}

static const struct mb_fifo_config fifos[] = {{90, 4}};

/* Unit 1 with 100 coils, 100 holding registers (a FIFO at 90), two files of 10 records;
 * unit 2 with 16 coils at 100 and nothing else persistent. */
static struct mb_unit_config units[2];

static struct mb_model_config persistent_config(uint32_t holding_size) {
    memset(units, 0, sizeof units);
    units[0] = (struct mb_unit_config){
        .unit_id = 1,
        .coils = {0, 100},
        .discrete_inputs = {0, 100},
        .holding_registers = {0, holding_size},
        .input_registers = {0, 100},
        .files = 2,
        .records_per_file = 10,
        .fifos = fifos,
        .fifo_count = 1,
    };
    units[1] = (struct mb_unit_config){
        .unit_id = 2,
        .coils = {100, 16},
        .input_registers = {0, 4},
    };
    struct mb_model_config config;
    mb_model_default_config(&config);
    config.any_unit = 0;
    config.units = units;
    config.unit_count = 2;
    config.persist_path = path;
    return config;
}

static char error[512];

static struct mb_model *open_model(const struct mb_model_config *config) {
    struct mb_model *model = NULL;
    error[0] = '\0';
    int rc = mb_model_create(config, &model, error, sizeof error);
    if (rc != 0)
        harness_fail(__FILE__, __LINE__, "mb_model_create: %s (%s)", mb_error_name(rc), error);
    return model;
}

/* Expects mb_model_create() to refuse with `code`, an error naming `words`, and the file (if
 * any) left exactly as it was. */
static void expect_refused(const struct mb_model_config *config, int code, const char *words,
                           int line) {
    size_t before_size = 0, after_size = 0;
    uint8_t *before = slurp(path, &before_size);
    struct mb_model *model = NULL;
    error[0] = '\0';
    int rc = mb_model_create(config, &model, error, sizeof error);
    harness_checks++;
    if (rc != code)
        harness_fail(__FILE__, line, "mb_model_create gave %s, want %s (%s)", mb_error_name(rc),
                     mb_error_name(code), error);
    if (model != NULL) {
        harness_fail(__FILE__, line, "a model was returned");
        mb_model_destroy(model);
    }
    if (strstr(error, words) == NULL)
        harness_fail(__FILE__, line, "error \"%s\" does not say \"%s\"", error, words);
    uint8_t *after = slurp(path, &after_size);
    if ((before == NULL) != (after == NULL) ||
        (before != NULL && (before_size != after_size || memcmp(before, after, before_size))))
        harness_fail(__FILE__, line, "the file was changed");
    free(before);
    free(after);
}

#define EXPECT_REFUSED(config, code, words) expect_refused((config), (code), (words), __LINE__)

static uint8_t answer[MB_PDU_MAX];

static int ask(struct mb_model *model, uint8_t unit_id, const uint8_t *pdu, size_t length) {
    struct mb_request request;
    if (mb_request_decode(pdu, length, &request) != 0)
        return MB_EINVAL;
    struct mb_server_request server_request = {.unit_id = unit_id, .request = &request};
    return mb_model_handle(model, &server_request, answer);
}

#define ASK(model, unit_id, ...) ask((model), (unit_id), BYTES(__VA_ARGS__))

/* The writes the persistence tests make, and the check that they are all there. */
static void write_everything(struct mb_model *model) {
    CHECK_EQ(ASK(model, 1, 0x06, 0x00, 0x63, 0xBE, 0xEF), 5);
    CHECK_EQ(ASK(model, 1, 0x10, 0x00, 0x00, 0x00, 0x02, 0x04, 0x12, 0x34, 0x56, 0x78), 5);
    CHECK_EQ(ASK(model, 1, 0x0F, 0x00, 0x13, 0x00, 0x0A, 0x02, 0xCD, 0x01), 5);
    CHECK_EQ(ASK(model, 1, 0x05, 0x00, 0x63, 0xFF, 0x00), 5);
    CHECK_EQ(ASK(model, 2, 0x05, 0x00, 0x6F, 0xFF, 0x00), 5); /* coil 111 */
    CHECK_EQ(
        ASK(model, 1, 0x15, 0x0B, 0x06, 0x00, 0x02, 0x00, 0x08, 0x00, 0x02, 0xAB, 0xCD, 0xEF, 0x01),
        13);
    CHECK_EQ(mb_model_fifo_push(model, 1, 90, 0x0777), 0);
    const uint16_t input = 0x4242;
    CHECK_EQ(mb_model_set(model, 1, MB_TABLE_INPUT_REGISTERS, 0, 1, &input), 0);
}

static void check_everything(struct mb_model *model) {
    int n = ASK(model, 1, 0x03, 0x00, 0x00, 0x00, 0x02);
    CHECK_BYTES(answer, n, 0x03, 0x04, 0x12, 0x34, 0x56, 0x78);
    n = ASK(model, 1, 0x03, 0x00, 0x63, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x03, 0x02, 0xBE, 0xEF);
    n = ASK(model, 1, 0x01, 0x00, 0x13, 0x00, 0x0A);
    CHECK_BYTES(answer, n, 0x01, 0x02, 0xCD, 0x01);
    n = ASK(model, 1, 0x01, 0x00, 0x63, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x01, 0x01, 0x01);
    n = ASK(model, 2, 0x01, 0x00, 0x64, 0x00, 0x10);
    CHECK_BYTES(answer, n, 0x01, 0x02, 0x00, 0x08);
    n = ASK(model, 1, 0x14, 0x07, 0x06, 0x00, 0x02, 0x00, 0x08, 0x00, 0x02);
    CHECK_BYTES(answer, n, 0x14, 0x06, 0x05, 0x06, 0xAB, 0xCD, 0xEF, 0x01);
    n = ASK(model, 1, 0x18, 0x00, 0x5A);
    CHECK_BYTES(answer, n, 0x18, 0x00, 0x04, 0x00, 0x01, 0x07, 0x77);
    /* Input registers and discrete inputs are not persistent: they start at 0 again. */
    n = ASK(model, 1, 0x04, 0x00, 0x00, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x04, 0x02, 0x00, 0x00);
}

/* A valid data file for persistent_config(100). */
static void make_valid_file(void) {
    struct mb_model_config config = persistent_config(100);
    struct mb_model *model = open_model(&config);
    mb_model_destroy(model);
}

/* ---- surviving ---- */

TEST(writes_survive_destroy_and_reopen) {
    fresh_directory();
    struct mb_model_config config = persistent_config(100);
    struct mb_model *model = open_model(&config);
    write_everything(model);
    CHECK_EQ(mb_model_sync(model), 0);
    mb_model_destroy(model);
    model = open_model(&config);
    check_everything(model);
    mb_model_destroy(model);
    remove_directory();
}

TEST(writes_survive_kill_9_without_sync_or_destroy) {
    fresh_directory();
    struct mb_model_config config = persistent_config(100);
    fflush(NULL);
    pid_t child = fork();
    if (child == 0) {
        struct mb_model *model = NULL;
        if (mb_model_create(&config, &model, NULL, 0) != 0)
            _exit(3);
        write_everything(model);
        raise(SIGKILL);
        _exit(4);
    }
    int status = 0;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFSIGNALED(status) && WTERMSIG(status) == SIGKILL);
    struct mb_model *model = open_model(&config);
    check_everything(model);
    mb_model_destroy(model);
    remove_directory();
}

TEST(a_new_file_is_created_atomically_and_leaves_no_temporary_file) {
    fresh_directory();
    struct mb_model_config config = persistent_config(100);
    struct mb_model *model = open_model(&config);
    CHECK_EQ(entries(), 1);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    /* Header page, then 13 + 200 + 40 bytes for unit 1 and 2 bytes of coils for unit 2. */
    CHECK_EQ(st.st_size, 4096 + 13 + 200 + 40 + 2);
    mb_model_destroy(model);
    size_t size = 0;
    uint8_t *bytes = slurp(path, &size);
    CHECK(bytes != NULL && size >= 8 && memcmp(bytes, "MBSECDAT", 8) == 0);
    free(bytes);
    CHECK_EQ(entries(), 1);
    remove_directory();
}

TEST(a_file_in_use_by_another_model_is_refused_and_free_again_once_closed) {
    /* Two servers on one file would each lose the other's acknowledged writes. */
    fresh_directory();
    struct mb_model_config config;
    mb_model_default_config(&config);
    config.persist_path = path;
    struct mb_model *first = open_model(&config);
    struct mb_model *second = NULL;
    CHECK_EQ(mb_model_create(&config, &second, error, sizeof error), MB_EPERSIST);
    CHECK(strstr(error, "in use by another process") != NULL);
    CHECK(second == NULL);
    CHECK_EQ(ASK(first, 1, 0x06, 0x00, 0x01, 0x00, 0x2A), 5);
    mb_model_destroy(first);
    struct mb_model *third = open_model(&config);
    CHECK_EQ(ASK(third, 1, 0x03, 0x00, 0x01, 0x00, 0x01), 4);
    CHECK_BYTES(answer, 4, 0x03, 0x02, 0x00, 0x2A);
    mb_model_destroy(third);
    remove_directory();
}

TEST(the_default_simulator_persists_in_a_file_of_about_180_kib) {
    fresh_directory();
    struct mb_model_config config;
    mb_model_default_config(&config);
    config.persist_path = path;
    struct mb_model *model = open_model(&config);
    CHECK_EQ(ASK(model, 7, 0x06, 0xFF, 0xFF, 0x12, 0x34), 5);
    mb_model_destroy(model);
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    /* header page, coils, holding registers, two files of 10000 records */
    CHECK_EQ(st.st_size, 4096 + 8192 + 131072 + 2 * 10000 * 2);
    model = open_model(&config);
    int n = ASK(model, 200, 0x03, 0xFF, 0xFF, 0x00, 0x01);
    CHECK_BYTES(answer, n, 0x03, 0x02, 0x12, 0x34);
    mb_model_destroy(model);
    remove_directory();
}

/* ---- refusing ---- */

TEST(a_truncated_file_is_refused_and_left_untouched) {
    fresh_directory();
    make_valid_file();
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(truncate(path, st.st_size - 1), 0);
    struct mb_model_config config = persistent_config(100);
    EXPECT_REFUSED(&config, MB_EPERSIST, "is truncated: 4350 bytes where its layout needs 4351");
    /* Cut inside the header too. */
    CHECK_EQ(truncate(path, 20), 0);
    EXPECT_REFUSED(&config, MB_EPERSIST, "is truncated: 20 bytes, shorter than its header");
    remove_directory();
}

TEST(a_longer_file_is_refused) {
    fresh_directory();
    make_valid_file();
    struct stat st;
    CHECK_EQ(stat(path, &st), 0);
    CHECK_EQ(truncate(path, st.st_size + 4096), 0);
    struct mb_model_config config = persistent_config(100);
    EXPECT_REFUSED(&config, MB_EPERSIST, "is longer than its layout");
    remove_directory();
}

TEST(a_foreign_file_of_random_bytes_is_refused_and_left_untouched) {
    fresh_directory();
    uint8_t noise[10000];
    srand(12345);
    for (size_t i = 0; i < sizeof noise; i++)
        noise[i] = (uint8_t)rand();
    spill(path, noise, sizeof noise);
    struct mb_model_config config = persistent_config(100);
    EXPECT_REFUSED(&config, MB_EPERSIST, "is not an mbsec data file");
    /* An empty file too: it was not ours to fill. */
    spill(path, noise, 0);
    EXPECT_REFUSED(&config, MB_EPERSIST, "is not an mbsec data file");
    remove_directory();
}

TEST(a_file_with_the_wrong_magic_is_refused) {
    fresh_directory();
    make_valid_file();
    size_t size = 0;
    uint8_t *bytes = slurp(path, &size);
    bytes[7] = 'X'; /* MBSECDAX */
    spill(path, bytes, size);
    free(bytes);
    struct mb_model_config config = persistent_config(100);
    EXPECT_REFUSED(&config, MB_EPERSIST, "(no MBSECDAT magic)");
    remove_directory();
}

TEST(a_file_of_another_version_is_refused) {
    fresh_directory();
    make_valid_file();
    size_t size = 0;
    uint8_t *bytes = slurp(path, &size);
    bytes[8] = 2; /* version, little-endian */
    spill(path, bytes, size);
    free(bytes);
    struct mb_model_config config = persistent_config(100);
    EXPECT_REFUSED(&config, MB_EPERSIST, "is format version 2; this build reads version 1");
    remove_directory();
}

TEST(a_file_with_a_corrupt_header_is_refused) {
    fresh_directory();
    make_valid_file();
    size_t size = 0;
    uint8_t *bytes = slurp(path, &size);
    bytes[32 + 4] ^= 0x01; /* unit 1's coil count, without fixing the checksum */
    spill(path, bytes, size);
    free(bytes);
    struct mb_model_config config = persistent_config(100);
    EXPECT_REFUSED(&config, MB_EPERSIST, "has a corrupt header (checksum mismatch)");
    remove_directory();
}

TEST(a_file_of_another_layout_is_refused_and_says_what_differs) {
    fresh_directory();
    make_valid_file();
    struct mb_model_config config = persistent_config(200);
    EXPECT_REFUSED(&config, MB_EPERSIST,
                   "another layout (unit 1: holding registers 0..99 in the file, holding "
                   "registers 0..199 in the configuration)");
    config = persistent_config(100);
    units[0].files = 3;
    EXPECT_REFUSED(&config, MB_EPERSIST, "(unit 1: 2 files of 10 records in the file, 3 files");
    config = persistent_config(100);
    units[1].unit_id = 3;
    EXPECT_REFUSED(&config, MB_EPERSIST, "(unit 2 in the file, unit 3 in the configuration)");
    config = persistent_config(100);
    config.unit_count = 1;
    EXPECT_REFUSED(&config, MB_EPERSIST, "(2 units in the file, 1 in the configuration)");
    /* Volatile tables and FIFOs are not part of the layout. */
    config = persistent_config(100);
    units[0].input_registers.size = 50;
    units[0].fifo_count = 0;
    struct mb_model *model = open_model(&config);
    mb_model_destroy(model);
    remove_directory();
}

TEST(a_directory_in_the_files_place_is_refused) {
    fresh_directory();
    CHECK_EQ(mkdir(path, 0700), 0);
    struct mb_model_config config = persistent_config(100);
    EXPECT_REFUSED(&config, MB_EPERSIST, "is not a regular file");
    remove_directory();
}

/* ---- directories that cannot take the file ---- */

TEST(a_missing_directory_is_a_clear_error) {
    fresh_directory();
    snprintf(path, sizeof path, "%s/missing/model.dat", directory);
    struct mb_model_config config = persistent_config(100);
    EXPECT_REFUSED(&config, MB_ESYSTEM, "No such file or directory");
    CHECK_EQ(entries(), 0);
    remove_directory();
}

TEST(an_unwritable_directory_is_a_clear_error_and_leaves_nothing) {
    fresh_directory();
    CHECK_EQ(chmod(directory, 0555), 0);
    fflush(NULL);
    /* Root writes anywhere: drop to an unprivileged user in a child to test for real. */
    pid_t child = fork();
    if (child == 0) {
        if (geteuid() == 0 && (setgid(65534) != 0 || setuid(65534) != 0))
            _exit(3);
        struct mb_model_config config = persistent_config(100);
        struct mb_model *model = NULL;
        char message[512] = "";
        int rc = mb_model_create(&config, &model, message, sizeof message);
        int ok = rc == MB_ESYSTEM && model == NULL &&
                 strstr(message, "cannot create persistence file") != NULL &&
                 strstr(message, "Permission denied") != NULL;
        if (!ok)
            fprintf(stderr, "  got %s: %s\n", mb_error_name(rc), message);
        _exit(ok ? 0 : 1);
    }
    int status = 0;
    CHECK_EQ(waitpid(child, &status, 0), child);
    CHECK(WIFEXITED(status) && WEXITSTATUS(status) == 0);
    CHECK_EQ(entries(), 0);
    chmod(directory, 0700);
    remove_directory();
}

TEST(sync_without_persistence_is_a_no_op) {
    struct mb_model_config config;
    mb_model_default_config(&config);
    struct mb_model *model = open_model(&config);
    CHECK_EQ(mb_model_sync(model), 0);
    mb_model_destroy(model);
}

int main(void) {
    RUN(writes_survive_destroy_and_reopen);
    RUN(writes_survive_kill_9_without_sync_or_destroy);
    RUN(a_new_file_is_created_atomically_and_leaves_no_temporary_file);
    RUN(a_file_in_use_by_another_model_is_refused_and_free_again_once_closed);
    RUN(the_default_simulator_persists_in_a_file_of_about_180_kib);
    RUN(a_truncated_file_is_refused_and_left_untouched);
    RUN(a_longer_file_is_refused);
    RUN(a_foreign_file_of_random_bytes_is_refused_and_left_untouched);
    RUN(a_file_with_the_wrong_magic_is_refused);
    RUN(a_file_of_another_version_is_refused);
    RUN(a_file_with_a_corrupt_header_is_refused);
    RUN(a_file_of_another_layout_is_refused_and_says_what_differs);
    RUN(a_directory_in_the_files_place_is_refused);
    RUN(a_missing_directory_is_a_clear_error);
    RUN(an_unwritable_directory_is_a_clear_error_and_leaves_nothing);
    RUN(sync_without_persistence_is_a_no_op);
    return harness_result();
}
