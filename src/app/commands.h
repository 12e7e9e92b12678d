/* SPDX-License-Identifier: MIT */
/* The mbsec program's commands. Each takes the arguments after its name and returns the
 * process exit status (see docs/exit-codes.md). */
#ifndef MBSEC_TOOLS_COMMANDS_H
#define MBSEC_TOOLS_COMMANDS_H

/* Exit statuses shared by every command. */
enum mb_exit {
    MB_EXIT_OK = 0,
    MB_EXIT_FAILURE = 1, /* a runtime failure (could not bind, persistence refused, ...) */
    MB_EXIT_USAGE = 2,   /* bad arguments or configuration */
    /* client commands */
    MB_EXIT_CONNECT = 3,   /* could not connect (refused, unreachable, name not resolved) */
    MB_EXIT_TIMEOUT = 4,   /* connected, but no answer in time */
    MB_EXIT_EXCEPTION = 5, /* the device answered with a Modbus exception */
    MB_EXIT_PROTOCOL = 6,  /* the answer was malformed or did not match the request */
};

int mb_tool_main(int argc, char **argv);
int mb_cmd_serve(int argc, char **argv);
int mb_cmd_gateway(int argc, char **argv); /* src/app/gateway/gateway.c */

/* Client commands (src/app/client/). */
int mb_cmd_read(int argc, char **argv);
int mb_cmd_write(int argc, char **argv);
int mb_cmd_poll(int argc, char **argv);
int mb_cmd_info(int argc, char **argv);
int mb_cmd_scan(int argc, char **argv);
int mb_cmd_diag(int argc, char **argv);
int mb_cmd_raw(int argc, char **argv);

/* A load generator for Modbus/TCP servers (src/app/bench/). */
int mb_cmd_bench(int argc, char **argv);

/* Certificates for Modbus/TCP Security (src/app/cert/). */
int mb_cmd_cert(int argc, char **argv);

#endif
