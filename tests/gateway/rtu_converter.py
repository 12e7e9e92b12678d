#!/usr/bin/env python3
# SPDX-License-Identifier: MIT
"""A serial-to-Ethernet converter in transparent mode, for the tests: bytes from one TCP client
go to a tty and bytes from the tty go back, unchanged ("RTU over TCP").

    rtu_converter.py TTY_PATH [SECONDS]

Listens on 127.0.0.1, an ephemeral port, and prints the port on stdout once it accepts. One
client at a time (as most converters); a new one waits until the current one leaves. Exits
after SECONDS (default 120) or on SIGTERM. Loopback only, by construction.
"""
import os
import select
import signal
import socket
import sys
import termios
import time
import tty


def main():
    path = sys.argv[1]
    seconds = float(sys.argv[2]) if len(sys.argv) > 2 else 120.0
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    line = os.open(path, os.O_RDWR | os.O_NOCTTY | os.O_NONBLOCK)
    tty.setraw(line, termios.TCSANOW)
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(4)
    print(listener.getsockname()[1], flush=True)
    deadline = time.monotonic() + seconds
    client = None
    while time.monotonic() < deadline:
        watched = [line, listener] if client is None else [line, client]
        ready, _, _ = select.select(watched, [], [], 0.2)
        if listener in ready:
            client, _ = listener.accept()
        if client is not None and client in ready:
            data = client.recv(4096)
            if not data:
                client.close()
                client = None
            else:
                os.write(line, data)
        if line in ready:
            try:
                data = os.read(line, 4096)
            except BlockingIOError:
                data = b""
            if data and client is not None:
                client.sendall(data)


if __name__ == "__main__":
    main()
