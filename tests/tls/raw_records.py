#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Sends Modbus requests over TLS as separate records in ONE TCP send, and counts the answers.

    raw_records.py HOST PORT CA CERT KEY VERSION COUNT [FIRST_PDU_HEX]

Opens a TLS connection (TLS 1.2 or 1.3) with the client certificate, sends COUNT FC 3 requests
(transaction ids 1..COUNT; the first replaced by FIRST_PDU_HEX when given), each in its own
record but all in a single send, then reads answers for at most 3 s and prints
"answers: N" and the transaction ids. Exits 0 once done (the caller judges the count).
With read-ahead a server holds the later records inside its TLS library, where no socket event
announces them: they must be served anyway.
"""
import os
import socket
import ssl
import struct
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from modbus_raw import mbap, split_frame  # noqa: E402


def main():
    host, port, ca, cert, key, version, count = sys.argv[1:8]
    first = bytes.fromhex(sys.argv[8]) if len(sys.argv) > 8 else None
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)
    context.load_verify_locations(ca)
    context.load_cert_chain(cert, key)
    if version == "1.2":
        context.maximum_version = ssl.TLSVersion.TLSv1_2
    incoming, outgoing = ssl.MemoryBIO(), ssl.MemoryBIO()
    tls = context.wrap_bio(incoming, outgoing, server_hostname=host)
    sock = socket.create_connection((host, int(port)), timeout=3)
    while True:
        try:
            tls.do_handshake()
            break
        except ssl.SSLWantReadError:
            sock.sendall(outgoing.read())
            data = sock.recv(65536)
            if not data:
                sys.exit("closed during the handshake")
            incoming.write(data)
    sock.sendall(outgoing.read())
    # Let the server finish its side (TLS 1.3 tickets) and go idle before the burst.
    sock.settimeout(0.3)
    try:
        data = sock.recv(65536)
        if data:
            incoming.write(data)
    except socket.timeout:
        pass
    for transaction in range(1, int(count) + 1):
        pdu = first if transaction == 1 and first else struct.pack(">BHH", 3, 0, 1)
        tls.write(mbap(transaction, 1, pdu))
    sock.sendall(outgoing.read())  # every record in one send
    answers = []
    pending = b""
    deadline = time.monotonic() + 3
    sock.settimeout(0.2)
    while len(answers) < int(count) and time.monotonic() < deadline:
        try:
            data = sock.recv(65536)
        except socket.timeout:
            continue
        except ConnectionResetError:
            break
        if not data:
            break
        incoming.write(data)
        while True:
            try:
                data = tls.read(65536)
            except (ssl.SSLWantReadError, ssl.SSLZeroReturnError, ssl.SSLEOFError):
                break
            if not data:
                break
            pending += data
        while True:
            answer, pending = split_frame(pending)
            if answer is None:
                break
            answers.append(answer[0])
    print("answers:", len(answers), "transactions:", answers)


if __name__ == "__main__":
    main()
