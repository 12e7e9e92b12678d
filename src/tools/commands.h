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
};

int mb_tool_main(int argc, char **argv);
int mb_cmd_serve(int argc, char **argv);

#endif
