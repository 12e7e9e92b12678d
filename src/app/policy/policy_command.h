/* SPDX-License-Identifier: MIT */
/* mbsec policy's subcommands, each taking the arguments after its name (argv[0] is the name)
 * and returning the exit status. */
#ifndef MBSEC_APP_POLICY_COMMAND_H
#define MBSEC_APP_POLICY_COMMAND_H

int policy_learn(int argc, char **argv); /* learn.c */
int policy_test(int argc, char **argv);  /* replay.c */

#endif
