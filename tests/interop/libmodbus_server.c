/* SPDX-License-Identifier: MIT */
/*
 * libmodbus 3.1.6's server, used the way its own multi-client example does
 * (tests/bandwidth-server-many-up.c): one thread, select() over the listening socket and every
 * client, modbus_receive() then modbus_reply() (libmodbus's own request handling, FC 17 and
 * FC 22 included) against one mapping. The peer of the interop tests (client_interop,
 * test_cli_peers.sh) and the incumbent of the server benchmark (bench/run).
 *
 *     libmodbus_server [--port PORT] [--known-values] [--stdin] [--lifetime SECONDS]
 *
 * Binds 127.0.0.1:PORT (default 0: the kernel picks a free port) and prints
 * "listening on 127.0.0.1:PORT" on stdout once it accepts connections. Exits 0 on SIGTERM or
 * SIGINT, with --stdin also when its stdin closes, and with --lifetime after that many seconds,
 * whichever comes first. Loopback only, by construction.
 *
 * The tables: 65536 entries of each, all zero; with --known-values KNOWN_SIZE entries of each
 * (the same as pymodbus_server.py):
 *   coil i = (i % 3 == 0), discrete input i = (i % 2 == 0),
 *   holding register i = 1000 + i, input register i = 2000 + i.
 */
#define _GNU_SOURCE
#include <arpa/inet.h>
#include <errno.h>
#include <modbus.h>
#include <netinet/in.h>
#include <signal.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <sys/select.h>
#include <sys/socket.h>
#include <time.h>
#include <unistd.h>

#define TABLE_SIZE 65536
#define KNOWN_SIZE 10000
#define BACKLOG 1024

struct options {
    long port;
    bool known_values;
    bool until_stdin_closes;
    long lifetime_seconds; /* 0: no limit */
};

static volatile sig_atomic_t stop_requested;

static void on_stop_signal(int signal_number) {
    (void)signal_number;
    stop_requested = 1;
}

/* Installs the stop handler with SIGTERM and SIGINT blocked, so that they are only delivered
 * inside pselect() and a signal can never slip in between the check and the wait. */
static int install_signals(sigset_t *wait_mask) {
    sigset_t blocked;
    struct sigaction action;

    memset(&action, 0, sizeof action);
    action.sa_handler = on_stop_signal;
    sigemptyset(&action.sa_mask);
    if (sigaction(SIGTERM, &action, NULL) != 0 || sigaction(SIGINT, &action, NULL) != 0) {
        return -1;
    }
    signal(SIGPIPE, SIG_IGN);
    sigemptyset(&blocked);
    sigaddset(&blocked, SIGTERM);
    sigaddset(&blocked, SIGINT);
    return sigprocmask(SIG_BLOCK, &blocked, wait_mask);
}

static int parse_number(const char *text, long low, long high, long *value) {
    char *end = NULL;

    errno = 0;
    *value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || *value < low || *value > high) {
        return -1;
    }
    return 0;
}

static int parse_options(int argc, char **argv, struct options *options) {
    memset(options, 0, sizeof *options);
    for (int i = 1; i < argc; i++) {
        if (strcmp(argv[i], "--port") == 0 && i + 1 < argc &&
            parse_number(argv[i + 1], 0, 65535, &options->port) == 0) {
            i++;
        } else if (strcmp(argv[i], "--lifetime") == 0 && i + 1 < argc &&
                   parse_number(argv[i + 1], 1, 3600, &options->lifetime_seconds) == 0) {
            i++;
        } else if (strcmp(argv[i], "--known-values") == 0) {
            options->known_values = true;
        } else if (strcmp(argv[i], "--stdin") == 0) {
            options->until_stdin_closes = true;
        } else {
            return -1;
        }
    }
    return 0;
}

static double now_seconds(void) {
    struct timespec now;
    clock_gettime(CLOCK_MONOTONIC, &now);
    return (double)now.tv_sec + (double)now.tv_nsec / 1e9;
}

static void fill_known_values(modbus_mapping_t *mapping) {
    for (int i = 0; i < KNOWN_SIZE; i++) {
        mapping->tab_bits[i] = (uint8_t)(i % 3 == 0);
        mapping->tab_input_bits[i] = (uint8_t)(i % 2 == 0);
        mapping->tab_registers[i] = (uint16_t)(1000 + i);
        mapping->tab_input_registers[i] = (uint16_t)(2000 + i);
    }
}

/* Serves until a stop signal, the end of stdin (when watched) or the lifetime. Returns the
 * process exit status. */
static int serve(modbus_t *context, modbus_mapping_t *mapping, int listener,
                 const struct options *options, const sigset_t *wait_mask) {
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    fd_set watched;
    int highest = listener;
    double deadline = now_seconds() + (double)options->lifetime_seconds;

    FD_ZERO(&watched);
    FD_SET(listener, &watched);
    if (options->until_stdin_closes) {
        FD_SET(STDIN_FILENO, &watched);
    }
    while (!stop_requested) {
        struct timespec timeout;
        const struct timespec *wait_limit = NULL;
        if (options->lifetime_seconds > 0) {
            double left = deadline - now_seconds();
            if (left <= 0) {
                fprintf(stderr, "libmodbus_server: lifetime of %ld s over: exiting\n",
                        options->lifetime_seconds);
                break;
            }
            timeout.tv_sec = (time_t)left;
            timeout.tv_nsec = (long)((left - (double)timeout.tv_sec) * 1e9);
            wait_limit = &timeout;
        }
        fd_set readable = watched;
        if (pselect(highest + 1, &readable, NULL, NULL, wait_limit, wait_mask) < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("libmodbus_server: pselect");
            return 1;
        }
        if (options->until_stdin_closes && FD_ISSET(STDIN_FILENO, &readable)) {
            char discard[256];
            if (read(STDIN_FILENO, discard, sizeof discard) <= 0) {
                break;
            }
        }
        for (int fd = 0; fd <= highest; fd++) {
            if (fd == STDIN_FILENO || !FD_ISSET(fd, &readable)) {
                continue;
            }
            if (fd == listener) {
                int client = accept(listener, NULL, NULL);
                if (client < 0) {
                    continue;
                }
                if (client >= FD_SETSIZE) {
                    /* select() cannot watch it: the incumbent's pattern tops out here. */
                    close(client);
                    continue;
                }
                FD_SET(client, &watched);
                if (client > highest) {
                    highest = client;
                }
                continue;
            }
            modbus_set_socket(context, fd);
            int length = modbus_receive(context, query);
            if (length > 0) {
                modbus_reply(context, query, length, mapping);
            } else if (length < 0) {
                close(fd);
                FD_CLR(fd, &watched);
                while (highest > listener && !FD_ISSET(highest, &watched)) {
                    highest--;
                }
            }
        }
    }
    for (int fd = 0; fd <= highest; fd++) {
        if (fd != listener && fd != STDIN_FILENO && FD_ISSET(fd, &watched)) {
            close(fd);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    struct options options;
    sigset_t wait_mask;

    if (parse_options(argc, argv, &options) != 0) {
        fprintf(stderr, "usage: libmodbus_server [--port PORT] [--known-values] [--stdin] "
                        "[--lifetime SECONDS]\n");
        return 2;
    }
    if (install_signals(&wait_mask) != 0) {
        perror("libmodbus_server: signals");
        return 1;
    }

    modbus_t *context = modbus_new_tcp("127.0.0.1", (int)options.port);
    if (context == NULL) {
        fprintf(stderr, "libmodbus_server: modbus_new_tcp: %s\n", modbus_strerror(errno));
        return 1;
    }
    int size = options.known_values ? KNOWN_SIZE : TABLE_SIZE;
    modbus_mapping_t *mapping = modbus_mapping_new(size, size, size, size);
    if (mapping == NULL) {
        fprintf(stderr, "libmodbus_server: mapping: %s\n", modbus_strerror(errno));
        modbus_free(context);
        return 1;
    }
    if (options.known_values) {
        fill_known_values(mapping);
    }
    int listener = modbus_tcp_listen(context, BACKLOG);
    if (listener < 0) {
        fprintf(stderr, "libmodbus_server: cannot listen on 127.0.0.1:%ld: %s\n", options.port,
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

    int status = serve(context, mapping, listener, &options, &wait_mask);
    close(listener);
    modbus_mapping_free(mapping);
    modbus_free(context);
    if (status == 0) {
        fprintf(stderr, "stopped\n");
    }
    return status;
}
