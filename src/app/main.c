/* SPDX-License-Identifier: MIT */
/* The mbsec program: dispatches to a command. */
#include "app/commands.h"

int main(int argc, char **argv) {
    return tool_main(argc, argv);
}
