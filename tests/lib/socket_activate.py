#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""Starts a program as systemd socket activation would, for the process tests.

    socket_activate.py [--names NAME:NAME...] LOG PORTS PROGRAM [ARGS...]

Binds one listening socket on 127.0.0.1, an ephemeral port, per name (one socket when --names
is left out), writes their ports to the file PORTS, one per line in order, places them on
descriptors 3, 4, ..., sets LISTEN_FDS, LISTEN_PID (exec keeps the pid) and, with --names,
LISTEN_FDNAMES as systemd does from FileDescriptorName=, sends stderr to LOG, and execs PROGRAM.
"""
import os
import socket
import sys

args = sys.argv[1:]
names = None
if args[:1] == ["--names"]:
    names = args[1].split(":")
    args = args[2:]
log, ports, program = args[0], args[1], args[2:]

sockets = []
for _ in names or [None]:
    s = socket.socket()
    s.bind(("127.0.0.1", 0))
    s.listen(16)
    sockets.append(s)
with open(ports, "w", encoding="ascii") as f:
    f.write("".join(f"{s.getsockname()[1]}\n" for s in sockets))
# Descriptors above the ones to fill first, so that placing one never closes another.
held = [os.dup(s.fileno()) for s in sockets]
for s in sockets:
    s.close()
for i, fd in enumerate(held):
    os.dup2(fd, 3 + i)
    os.set_inheritable(3 + i, True)
for fd in held:
    if fd >= 3 + len(held):
        os.close(fd)
os.environ["LISTEN_FDS"] = str(len(held))
os.environ["LISTEN_PID"] = str(os.getpid())
if names is not None:
    os.environ["LISTEN_FDNAMES"] = ":".join(names)
err = os.open(log, os.O_WRONLY | os.O_CREAT | os.O_TRUNC)
os.dup2(err, 2)
os.execv(program[0], program)
