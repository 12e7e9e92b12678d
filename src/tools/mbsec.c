/* SPDX-License-Identifier: MIT */
/* The mbsec program's front door: `mbsec COMMAND [options]`. */
#include <stdio.h>
#include <string.h>

#include "mbsec/version.h"
#include "tools/commands.h"

static void help(FILE *out) {
    fputs("usage: mbsec COMMAND [options]\n"
          "\n"
          "Commands:\n"
          "  serve      Modbus/TCP server and device simulator (mbsec serve --help)\n"
          "  version    print the version\n"
          "  help       this text\n"
          "\n"
          "mbsec is a Modbus/TCP toolkit built for security. Documentation: docs/ in the\n"
          "source tree.\n",
          out);
}

int mb_tool_main(int argc, char **argv) {
    if (argc < 2) {
        help(stderr);
        return MB_EXIT_USAGE;
    }
    const char *command = argv[1];
    if (strcmp(command, "serve") == 0)
        return mb_cmd_serve(argc - 1, argv + 1);
    if (strcmp(command, "version") == 0 || strcmp(command, "--version") == 0) {
        printf("mbsec %s\n", mb_version());
        return MB_EXIT_OK;
    }
    if (strcmp(command, "help") == 0 || strcmp(command, "--help") == 0 ||
        strcmp(command, "-h") == 0) {
        help(stdout);
        return MB_EXIT_OK;
    }
    fprintf(stderr, "mbsec: unknown command '%s'\n\n", command);
    help(stderr);
    return MB_EXIT_USAGE;
}
