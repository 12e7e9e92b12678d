/* SPDX-License-Identifier: MIT */
/* The mbsec program's front door: `mbsec COMMAND [options]`. */
#include <stdio.h>
#include <string.h>

#include "app/commands.h"
#include "mbsec/version.h"

static void help(FILE *out) {
    fputs("usage: mbsec COMMAND [options]\n"
          "\n"
          "Commands:\n"
          "  serve      Modbus/TCP server and device simulator\n"
          "  gateway    security gateway: TLS and a firewall policy in front of Modbus/TCP\n"
          "             devices, with an audit trail\n"
          "  read       read coils, discrete inputs, holding or input registers\n"
          "  write      write coils or holding registers\n"
          "  poll       read again and again, printing values (or only their changes)\n"
          "  info       a device's identification (FC 43/14) and server id (FC 17)\n"
          "  scan       find the unit ids that answer at an address\n"
          "  diag       diagnostics (FC 8): echo, counters, restart, listen-only\n"
          "  raw        send a PDU given in hex and decode the answer\n"
          "  bench      load a Modbus/TCP server and measure requests/s and latency\n"
          "  cert       certificates for Modbus/TCP Security: CA, server, client (with a\n"
          "             role), show, revoke, CRL\n"
          "  policy     learn a policy from captures or audit records, test one against\n"
          "             them before enforcing it\n"
          "  version    print the version\n"
          "  help       this text\n"
          "\n"
          "mbsec COMMAND --help describes each command; so do the mbsec-COMMAND(1) manual\n"
          "pages. mbsec is a Modbus/TCP toolkit built for security. Documentation: docs/ in\n"
          "the source tree.\n",
          out);
}

static const struct {
    const char *name;
    int (*run)(int argc, char **argv);
} commands[] = {
    {"serve", cmd_serve}, {"gateway", cmd_gateway}, {"read", cmd_read}, {"write", cmd_write},
    {"poll", cmd_poll},   {"info", cmd_info},       {"scan", cmd_scan}, {"diag", cmd_diag},
    {"raw", cmd_raw},     {"bench", cmd_bench},     {"cert", cmd_cert}, {"policy", cmd_policy},
};

int tool_main(int argc, char **argv) {
    if (argc < 2) {
        help(stderr);
        return EXIT_STATUS_USAGE;
    }
    const char *command = argv[1];
    for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
        if (strcmp(command, commands[i].name) == 0)
            return commands[i].run(argc - 1, argv + 1);
    if (strcmp(command, "version") == 0 || strcmp(command, "--version") == 0) {
        printf("mbsec %s\n", mb_version());
        return EXIT_STATUS_OK;
    }
    if (strcmp(command, "help") == 0 && argc > 2) {
        /* `mbsec help read` is `mbsec read --help`. */
        char help_flag[] = "--help";
        char *help_argv[] = {argv[2], help_flag, NULL};
        for (size_t i = 0; i < sizeof commands / sizeof commands[0]; i++)
            if (strcmp(argv[2], commands[i].name) == 0)
                return commands[i].run(2, help_argv);
        fprintf(stderr, "mbsec: unknown command '%s'\n\n", argv[2]);
        help(stderr);
        return EXIT_STATUS_USAGE;
    }
    if (strcmp(command, "help") == 0 || strcmp(command, "--help") == 0 ||
        strcmp(command, "-h") == 0) {
        help(stdout);
        return EXIT_STATUS_OK;
    }
    fprintf(stderr, "mbsec: unknown command '%s'\n\n", command);
    help(stderr);
    return EXIT_STATUS_USAGE;
}
