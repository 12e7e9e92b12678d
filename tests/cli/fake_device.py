# SPDX-License-Identifier: MIT
"""A misbehaving Modbus/TCP device for the client command and bench tests.

    fake_device.py MODE SECONDS

Listens on 127.0.0.1, port 0, prints the port on one line, and serves for at most SECONDS,
then exits by itself (the test also kills it by PID). Modes:

    silent     accepts connections, reads requests, never answers (a timeout for the client)
    closer     closes a connection as soon as a request arrives, without a word (what a
               Modbus/TCP Security port does to a plain client)
    mismatch   answers every request with the function code plus one and two data bytes, an
               answer that matches no request (a bad response for the client)
    close-after-3
               answers FC 3 correctly (zeros), but closes the connection after every 3rd answer
    short      answers FC 3 with one register fewer than asked for
"""
import os
import select
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from modbus_raw import mbap, split_frame  # noqa: E402


def answer(mode, pdu):
    """The answer PDU to a request PDU."""
    if mode == "mismatch":
        return bytes([(pdu[0] + 1) & 0x7F, 0x00, 0x00])
    _, quantity = struct.unpack(">HH", pdu[1:5])
    registers = quantity - 1 if mode == "short" else quantity
    return bytes([pdu[0], 2 * registers]) + bytes(2 * registers)


def main():
    mode, seconds = sys.argv[1], float(sys.argv[2])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(64)
    print(listener.getsockname()[1], flush=True)
    buffers, answered = {}, {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readable, _, _ = select.select([listener] + list(buffers), [], [], 0.1)
        for sock in readable:
            if sock is listener:
                connection, _ = listener.accept()
                buffers[connection], answered[connection] = b"", 0
                continue
            try:
                data = sock.recv(4096)
            except OSError:
                data = b""
            if not data or mode == "closer":
                del buffers[sock], answered[sock]
                sock.close()
                continue
            if mode == "silent":
                continue
            buffers[sock] += data
            while True:
                frame, buffers[sock] = split_frame(buffers[sock])
                if frame is None:
                    break
                transaction, _, unit, pdu = frame
                sock.sendall(mbap(transaction, unit, answer(mode, pdu)))
                answered[sock] += 1
                if mode == "close-after-3" and answered[sock] % 3 == 0:
                    del buffers[sock], answered[sock]
                    sock.close()
                    break


if __name__ == "__main__":
    main()
