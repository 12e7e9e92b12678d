/* SPDX-License-Identifier: MIT */
/*
 * The incumbent's server, for the side-by-side benchmark (bench/server-vs-libmodbus) and as a
 * stand-in peer: libmodbus 3.1.6 used the way its own multi-client example does
 * (tests/bandwidth-server-many-up.c): one thread, select() over the listening socket and every
 * client, modbus_receive() then modbus_reply() against one mapping of 65536 coils, discrete
 * inputs, holding registers and input registers, all zero.
 *
 *     libmodbus_server [PORT]
 *
 * Binds 127.0.0.1:PORT (default 0: an ephemeral port, read back with getsockname()), prints
 * "listening on 127.0.0.1:PORT" on stderr once it accepts connections, and exits 0 on SIGTERM
 * or SIGINT. Loopback only, by construction.
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
#include <unistd.h>

#define TABLE_SIZE 65536
#define BACKLOG 1024

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

static int parse_port(const char *text, int *port) {
    char *end = NULL;
    long value;

    errno = 0;
    value = strtol(text, &end, 10);
    if (errno != 0 || end == text || *end != '\0' || value < 0 || value > 65535) {
        return -1;
    }
    *port = (int)value;
    return 0;
}

/* Serves until a stop signal. Returns the process exit status. */
static int serve(modbus_t *context, modbus_mapping_t *mapping, int listener,
                 const sigset_t *wait_mask) {
    uint8_t query[MODBUS_TCP_MAX_ADU_LENGTH];
    fd_set clients;
    int highest = listener;

    FD_ZERO(&clients);
    FD_SET(listener, &clients);
    while (!stop_requested) {
        fd_set readable = clients;
        if (pselect(highest + 1, &readable, NULL, NULL, NULL, wait_mask) < 0) {
            if (errno == EINTR) {
                continue;
            }
            perror("libmodbus_server: pselect");
            return 1;
        }
        for (int fd = 0; fd <= highest; fd++) {
            if (!FD_ISSET(fd, &readable)) {
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
                FD_SET(client, &clients);
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
                FD_CLR(fd, &clients);
                while (highest > listener && !FD_ISSET(highest, &clients)) {
                    highest--;
                }
            }
        }
    }
    for (int fd = 0; fd <= highest; fd++) {
        if (fd != listener && FD_ISSET(fd, &clients)) {
            close(fd);
        }
    }
    return 0;
}

int main(int argc, char **argv) {
    int port = 0;
    sigset_t wait_mask;

    if (argc > 2 || (argc == 2 && parse_port(argv[1], &port) != 0)) {
        fprintf(stderr, "usage: libmodbus_server [PORT]   (binds 127.0.0.1:PORT; 0 = ephemeral)\n");
        return 2;
    }
    if (install_signals(&wait_mask) != 0) {
        perror("libmodbus_server: signals");
        return 1;
    }

    modbus_t *context = modbus_new_tcp("127.0.0.1", port);
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
    int listener = modbus_tcp_listen(context, BACKLOG);
    if (listener < 0) {
        fprintf(stderr, "libmodbus_server: cannot listen on 127.0.0.1:%d: %s\n", port,
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
    fprintf(stderr, "listening on 127.0.0.1:%u\n", (unsigned)ntohs(bound.sin_port));
    fflush(stderr);

    int status = serve(context, mapping, listener, &wait_mask);
    close(listener);
    modbus_mapping_free(mapping);
    modbus_free(context);
    if (status == 0) {
        fprintf(stderr, "stopped\n");
    }
    return status;
}
