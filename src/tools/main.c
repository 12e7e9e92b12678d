/* SPDX-License-Identifier: MIT */
/* The mbsec program: dispatches to a command. */
#include "tools/commands.h"

int main(int argc, char **argv) {
    return mb_tool_main(argc, argv);
}
