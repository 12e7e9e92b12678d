#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Runs a client against another implementation's server (pymodbus, libmodbus).

    run_with_peer.py PEER_SERVER [arguments...] -- CLIENT [arguments...]

Starts PEER_SERVER with a pipe on its stdin and stdout, waits (at most DEADLINE seconds) for its
"listening on 127.0.0.1:PORT" line on stdout, runs `CLIENT [arguments] 127.0.0.1 PORT` (at most
CLIENT_DEADLINE seconds), then closes the server's stdin, which makes it exit, and waits for it
by PID (SIGKILL after DEADLINE seconds). A server that prints "SKIP: ..." and exits 77 (its
library is missing) makes this exit 77, which CTest reports as skipped.

Exits with the client's status, or 1 if the server did not get ready or the client overran.
"""
import os
import selectors
import subprocess
import sys
import time

SKIP = 77
DEADLINE = 10.0
CLIENT_DEADLINE = 90.0


def wait_for_port(server):
    """The port from the server's listening line, None if it exited or overran."""
    selector = selectors.DefaultSelector()
    selector.register(server.stdout, selectors.EVENT_READ)
    pending = b""
    deadline = time.monotonic() + DEADLINE
    while time.monotonic() < deadline:
        if not selector.select(deadline - time.monotonic()):
            continue
        chunk = os.read(server.stdout.fileno(), 4096)
        if not chunk:
            return None
        pending += chunk
        while b"\n" in pending:
            line, pending = pending.split(b"\n", 1)
            text = line.decode(errors="replace")
            print(f"# peer: {text}", flush=True)
            prefix = "listening on 127.0.0.1:"
            if text.startswith(prefix):
                return int(text[len(prefix):])
    return None


def stop(server):
    try:
        server.stdin.close()
    except OSError:
        pass
    try:
        return server.wait(timeout=DEADLINE)
    except subprocess.TimeoutExpired:
        print(f"# peer PID {server.pid} still running {DEADLINE} s after its stdin closed: "
              "SIGKILL", flush=True)
        server.kill()
        return server.wait()


def main():
    arguments = sys.argv[1:]
    if "--" not in arguments:
        print(__doc__, file=sys.stderr)
        return 2
    split = arguments.index("--")
    server_command, client_command = arguments[:split], arguments[split + 1:]
    if not server_command or not client_command:
        print(__doc__, file=sys.stderr)
        return 2

    server = subprocess.Popen(server_command, stdin=subprocess.PIPE, stdout=subprocess.PIPE)
    try:
        port = wait_for_port(server)
        if port is None:
            status = stop(server)
            if status == SKIP:
                return SKIP
            print(f"not ok - {server_command[0]} did not print its listening line within "
                  f"{DEADLINE} s (exit status {status})", flush=True)
            return 1
        print(f"# peer {os.path.basename(server_command[-1])} listening on 127.0.0.1:{port} "
              f"(PID {server.pid})", flush=True)
        try:
            client = subprocess.run(
                client_command + ["127.0.0.1", str(port)], timeout=CLIENT_DEADLINE
            )
        except subprocess.TimeoutExpired:
            print(f"not ok - the client ran longer than {CLIENT_DEADLINE} s", flush=True)
            return 1
        if server.poll() is not None:
            print(f"# the peer exited during the test (status {server.returncode})", flush=True)
        return client.returncode
    finally:
        if server.poll() is None:
            stop(server)


if __name__ == "__main__":
    sys.exit(main())
