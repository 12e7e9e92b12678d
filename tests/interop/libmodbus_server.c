/* SPDX-License-Identifier: MIT */
/*
 * A libmodbus 3.1.6 server with known values, the peer of client_interop: modbus_receive() then
 * modbus_reply() (libmodbus's own request handling, FC 17 and FC 22 included) over one mapping,
 * one thread and select(), as libmodbus's multi-client example does.
 *
 *     libmodbus_server [--port PORT] [--lifetime SECONDS]
 *
 * Binds 127.0.0.1:PORT (default 0: the kernel picks a free port), prints
 * "listening on 127.0.0.1:PORT" on stdout once it accepts connections, and exits 0 when its
 * stdin closes or after --lifetime seconds (default 60), whichever comes first. Loopback only.
 *
 * The tables, TABLE_SIZE entries each (the same as pymodbus_server.py):
 *   coil i = (i % 3 == 0), discrete input i = (i % 2 == 0),
 *   holding register i = 1000 + i, input register i = 2000 + i.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TABLE_SIZE 10000
#define BACKLOG 64

static int parse_number(const char *text, long low, long high, long *value) {
    char *end = NULL;
    errno = 0;
    *value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || *value < low || *value > high)
        return -1;
    return 0;
}

static double now_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void fill(modbus_mapping_t *mapping) {
    for (int i = 0; i < TABLE_SIZE; i++) {
        mapping->tab_bits[i] = (uint8_t)(i % 3 == 0);
        mapping->tab_input_bits[i] = (uint8_t)(i % 2 == 0);
        mapping->tab_registers[i] = (uint16_t)(1000 + i);
        mapping->tab_input_registers[i] = (uint16_t)(2000 + i);
    }
}

/* Serves until stdin closes or the lifetime is over. Returns the process exit status. */
static int serve(modbus_t *context, modbus_mapping_t *mapping, int listener, double lifetime) {
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    fd_set watched;
    int highest = listener;
    double deadline = now_seconds() + lifetime;

    FD_ZERO(&watched);
    FD_SET(STDIN_FILENO, &watched);
    FD_SET(listener, &watched);
    for (;;) {
        double left = deadline - now_seconds();
        if (left <= 0) {
            fprintf(stderr, "libmodbus_server: lifetime of %.0f s over: exiting\n", lifetime);
            break;
        }
        struct timeval timeout = {.tv_sec = (time_t)left,
                                  .tv_usec = (suseconds_t)((left - (double)(time_t)left) * 1e6)};
        fd_set readable = watched;
        int ready = select(highest + 1, &readable, NULL, NULL, &timeout);
        if (ready < 0) {
            if (errno == EINTR)
                continue;
            perror("libmodbus_server: select");
            return 1;
        }
        if (FD_ISSET(STDIN_FILENO, &readable)) {
            char discard[256];
            if (read(STDIN_FILENO, discard, sizeof discard) <= 0)
                break;
        }
        for (int fd = 0; fd <= highest; fd++) {
            if (fd == STDIN_FILENO || !FD_ISSET(fd, &readable))
                continue;
            if (fd == listener) {
                int client = accept(listener, NULL, NULL);
                if (client < 0)
                    continue;
                if (client >= FD_SETSIZE) {
                    close(client);
                    continue;
                }
                FD_SET(client, &watched);
                if (client > highest)
                    highest = client;
                continue;
            }
            modbus_set_socket(context, fd);
            int length = modbus_receive(context, query);
            if (length > 0) {
                modbus_reply(context, query, length, mapping);
            } else if (length < 0) {
                close(fd);
                FD_CLR(fd, &watched);
                while (highest > listener && !FD_ISSET(highest, &watched))
                    highest--;
            }
        }
    }
    for (int fd = 0; fd <= highest; fd++) {
        if (fd != listener && fd != STDIN_FILENO && FD_ISSET(fd, &watched))
            close(fd);
    }
    return 0;
}

int main(int argc, char **argv) {
    long port = 0, lifetime = 60;

    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc &&
            parse_number(argv[i + 1], 0, 65535, &port) == 0) {
            i++;
        } else if (strcmp(argv[i], "--lifetime") == 0 && i + 1 < argc &&
                   parse_number(argv[i + 1], 1, 3600, &lifetime) == 0) {
            i++;
        } else {
            fprintf(stderr, "usage: libmodbus_server [--port PORT] [--lifetime SECONDS]\n");
            return 2;
        }
    }
    signal(SIGPIPE, SIG_IGN);

    modbus_t *context = modbus_new_tcp("127.0.0.1", (int)port);
    if (context == NULL) {
        fprintf(stderr, "libmodbus_server: modbus_new_tcp: %s\n", modbus_strerror(errno));
        return 1;
    }
    modbus_mapping_t *mapping = modbus_mapping_new(TABLE_SIZE, TABLE_SIZE, TABLE_SIZE, TABLE_SIZE);
    if (mapping == NULL) {
        fprintf(stderr, "libmodbus_server: mapping: %s\n", modbus_strerror(errno));
        modbus_free(context);
        return 1;
    }
    fill(mapping);
    int listener = modbus_tcp_listen(context, BACKLOG);
    if (listener < 0) {
        fprintf(stderr, "libmodbus_server: cannot listen on 127.0.0.1:%ld: %s\n", port,
                modbus_strerror(errno));
        modbus_mapping_free(mapping);
        modbus_free(context);
        return 1;
    }
    struct sockaddr_in bound;
    socklen_t bound_length = sizeof bound;
    if (getsockname(listener, (struct sockaddr *)&bound, &bound_length) != 0) {
        perror("libmodbus_server: getsockname");
        close(listener);
        modbus_mapping_free(mapping);
        modbus_free(context);
        return 1;
    }
    printf("listening on 127.0.0.1:%u\n", (unsigned)ntohs(bound.sin_port));
    fflush(stdout);

    int status = serve(context, mapping, listener, (double)lifetime);
    close(listener);
    modbus_mapping_free(mapping);
    modbus_free(context);
    return status;
}
