# SPDX-License-Identifier: MIT
"""A misbehaving Modbus/TCP device for the client command tests.

    fake_device.py MODE SECONDS

Listens on 127.0.0.1, port 0, prints the port on one line, and serves for at most SECONDS,
then exits by itself (the test also kills it by PID). Modes:

    silent     accepts connections, reads requests, never answers (a timeout for the client)
    mismatch   answers every request with the function code plus one and two data bytes, an
               answer that matches no request (a bad response for the client)
"""
import select
import socket
import struct
import sys
import time


def main():
    mode, seconds = sys.argv[1], float(sys.argv[2])
    listener = socket.socket()
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    print(listener.getsockname()[1], flush=True)
    connections = []
    buffers = {}
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline:
        readable, _, _ = select.select([listener] + connections, [], [], 0.1)
        for sock in readable:
            if sock is listener:
                connection, _ = listener.accept()
                connections.append(connection)
                buffers[connection] = b""
                continue
            data = sock.recv(4096)
            if not data:
                connections.remove(sock)
                sock.close()
                continue
            if mode == "silent":
                continue
            if mode == "closer":
                # What a Modbus/TCP Security port does to a plain client: close, without a word.
                connections.remove(sock)
                sock.close()
                continue
            buffers[sock] += data
            while len(buffers[sock]) >= 7:
                transaction, _, length, unit = struct.unpack(">HHHB", buffers[sock][:7])
                if len(buffers[sock]) < 6 + length:
                    break
                function = buffers[sock][7]
                buffers[sock] = buffers[sock][6 + length:]
                pdu = bytes([(function + 1) & 0x7F, 0x00, 0x00])
                sock.sendall(struct.pack(">HHHB", transaction, 0, len(pdu) + 1, unit) + pdu)


if __name__ == "__main__":
    main()
