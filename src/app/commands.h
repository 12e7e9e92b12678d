/* SPDX-License-Identifier: MIT */
/* The mbsec program's commands. Each takes the arguments after its name and returns the
 * process exit status (see docs/exit-codes.md). */
#ifndef MBSEC_TOOLS_COMMANDS_H
#define MBSEC_TOOLS_COMMANDS_H

/* Exit statuses shared by every command. */
enum exit_status {
    EXIT_STATUS_OK = 0,
    EXIT_STATUS_FAILURE = 1, /* a runtime failure (could not bind, persistence refused, ...) */
    EXIT_STATUS_USAGE = 2,   /* bad arguments or configuration */
    /* client commands */
    EXIT_STATUS_CONNECT = 3,   /* could not connect (refused, unreachable, name not resolved) */
    EXIT_STATUS_TIMEOUT = 4,   /* connected, but no answer in time */
    EXIT_STATUS_EXCEPTION = 5, /* the device answered with a Modbus exception */
    EXIT_STATUS_PROTOCOL = 6,  /* the answer was malformed or did not match the request */
};

int tool_main(int argc, char **argv);
int cmd_serve(int argc, char **argv);
int cmd_gateway(int argc, char **argv); /* src/app/gateway/gateway.c */

/* Client commands (src/app/client/). */
int cmd_read(int argc, char **argv);
int cmd_write(int argc, char **argv);
int cmd_poll(int argc, char **argv);
int cmd_info(int argc, char **argv);
int cmd_scan(int argc, char **argv);
int cmd_diag(int argc, char **argv);
int cmd_raw(int argc, char **argv);

/* A load generator for Modbus/TCP servers (src/app/bench/). */
int cmd_bench(int argc, char **argv);

/* Certificates for Modbus/TCP Security (src/app/cert/). */
int cmd_cert(int argc, char **argv);

/* Policies from traffic and traffic against policies (src/app/policy/). */
int cmd_policy(int argc, char **argv);

#endif
