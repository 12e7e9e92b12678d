/* SPDX-License-Identifier: MIT */
/* mbsec policy: from traffic to a policy (learn), and a policy against traffic (test). */
#include <stdio.h>
#include <string.h>

#include "app/commands.h"
#include "app/policy/policy_command.h"

static void help(FILE *out) {
    fputs("usage: mbsec policy SUBCOMMAND [options] INPUT...\n"
          "\n"
          "The way from no policy to an enforced least-privilege one, without stopping a\n"
          "running process: learn a policy from what clients were seen doing, test a policy\n"
          "against recorded traffic before it is enforced, then run it in the gateway in\n"
          "monitor mode (policy_mode: monitor) and enforce it. Inputs are packet captures\n"
          "(pcap, pcapng) and gateway audit files (JSON lines).\n"
          "\n"
          "Subcommands:\n"
          "  learn    write the policy that allows what the inputs show, and nothing else\n"
          "  test     replay the inputs' requests against a policy (or two) and list what\n"
          "           it would refuse\n"
          "\n"
          "mbsec policy SUBCOMMAND --help describes each; so does mbsec-policy(1), and\n"
          "docs/learning.md the whole way on a live site.\n"
          "\n"
          "Examples:\n"
          "  mbsec policy learn plant.pcap --round 10 -o learned.yaml\n"
          "  mbsec policy test --policy learned.yaml yesterday.pcap\n"
          "  mbsec policy test --policy current.yaml --policy learned.yaml audit.jsonl\n",
          out);
}

int cmd_policy(int argc, char **argv) {
    if (argc < 2) {
        help(stderr);
        return EXIT_STATUS_USAGE;
    }
    if (strcmp(argv[1], "learn") == 0)
        return policy_learn(argc - 1, argv + 1);
    if (strcmp(argv[1], "test") == 0)
        return policy_test(argc - 1, argv + 1);
    if (strcmp(argv[1], "--help") == 0 || strcmp(argv[1], "-h") == 0 ||
        strcmp(argv[1], "help") == 0) {
        help(stdout);
        return EXIT_STATUS_OK;
    }
    fprintf(stderr, "mbsec policy: unknown subcommand '%s'\n\n", argv[1]);
    help(stderr);
    return EXIT_STATUS_USAGE;
}
