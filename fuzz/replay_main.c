/* SPDX-License-Identifier: MIT */
/*
 * Runs a fuzz target's LLVMFuzzerTestOneInput() once over each file named on the command line
 * and over every file under each directory named, so that ordinary builds (gcc or clang, with
 * or without sanitizers) replay the seed corpus and past crashes as a CTest test.
 *
 *   fuzz_request_replay DIR_OR_FILE...
 *
 * Exits 0 when every input ran (a broken property aborts the process), 1 when no input was
 * found at all (an empty corpus proves nothing), 2 when a path cannot be read.
 */
#define _POSIX_C_SOURCE 200809L

#include <dirent.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/stat.h>

#include "fuzz.h"

static size_t inputs_run;

static int replay_file(const char *path) {
    FILE *file = fopen(path, "rb");
    if (file == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    size_t capacity = 4096, length = 0;
    uint8_t *data = malloc(capacity);
    size_t got;
    while (data != NULL && (got = fread(data + length, 1, capacity - length, file)) > 0) {
        length += got;
        if (length == capacity) {
            uint8_t *grown = realloc(data, capacity * 2);
            if (grown == NULL) {
                free(data);
                data = NULL;
                break;
            }
            data = grown;
            capacity *= 2;
        }
    }
    int failed = data == NULL || ferror(file);
    fclose(file);
    if (failed) {
        fprintf(stderr, "replay: %s: cannot read\n", path);
        free(data);
        return -1;
    }
    /* An exact-size copy, so that a read past the end is caught under AddressSanitizer. */
    uint8_t *input = fuzz_copy(data, length);
    free(data);
    /* Named before it runs, so that the output of a crash says which input it was. */
    printf("replay %s (%zu bytes)\n", path, length);
    fflush(stdout);
    LLVMFuzzerTestOneInput(input, length);
    free(input);
    inputs_run++;
    return 0;
}

static int compare_names(const void *a, const void *b) {
    return strcmp(*(const char *const *)a, *(const char *const *)b);
}

static int replay_path(const char *path);

/* Replays a directory's entries in name order, so that runs are repeatable. */
static int replay_directory(const char *path) {
    DIR *directory = opendir(path);
    if (directory == NULL) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    char **names = NULL;
    size_t count = 0, capacity = 0;
    int result = 0;
    struct dirent *entry;
    while ((entry = readdir(directory)) != NULL) {
        if (entry->d_name[0] == '.')
            continue;
        if (count == capacity) {
            capacity = capacity > 0 ? capacity * 2 : 64;
            char **grown = realloc(names, capacity * sizeof *names);
            if (grown == NULL) {
                result = -1;
                break;
            }
            names = grown;
        }
        size_t length = strlen(path) + 1 + strlen(entry->d_name) + 1;
        names[count] = malloc(length);
        if (names[count] == NULL) {
            result = -1;
            break;
        }
        snprintf(names[count], length, "%s/%s", path, entry->d_name);
        count++;
    }
    closedir(directory);
    if (count > 0)
        qsort(names, count, sizeof *names, compare_names);
    for (size_t i = 0; i < count; i++) {
        if (result == 0 && replay_path(names[i]) != 0)
            result = -1;
        free(names[i]);
    }
    free(names);
    return result;
}

static int replay_path(const char *path) {
    struct stat status;
    if (stat(path, &status) != 0) {
        fprintf(stderr, "replay: %s: %s\n", path, strerror(errno));
        return -1;
    }
    if (S_ISDIR(status.st_mode))
        return replay_directory(path);
    return replay_file(path);
}

int main(int argc, char **argv) {
    if (argc < 2) {
        fprintf(stderr, "usage: %s FILE_OR_DIRECTORY...\n", argv[0]);
        return 2;
    }
    for (int i = 1; i < argc; i++)
        if (replay_path(argv[i]) != 0)
            return 2;
    printf("%s: %zu inputs replayed\n", argv[0], inputs_run);
    return inputs_run > 0 ? 0 : 1;
}
