#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A deliberately broken Modbus/TCP server, for the client tests (test_client_bad.c).

    /usr/bin/python3 broken_server.py --mode MODE [--lifetime SECONDS] [--delay-ms MS]

Listens on 127.0.0.1, port 0 (the kernel picks a free one), prints
"listening on 127.0.0.1:PORT" on stdout once it accepts connections, and exits by itself after
--lifetime seconds (default 30) or as soon as its stdin closes. Standard library only.

Every connection is served the same way, by a thread of its own. Requests are framed by the MBAP
length. The correct answer to a request is: FC 3, register i of the range holds address + i;
FC 6, the echo; FC 43/14 read code 1, the objects 0..2 one per transaction (more follows,
next object id); any other request, exception 01. For each request it prints
"request TID function FC" on stdout, and after each answer (or part of one) "sent TID", so that a
test can count what arrived and wait for a late answer to have gone out instead of sleeping.

Modes, one misbehaviour each:
  refuse-after-accept   accept, then close at once (FIN), never read a request
  silent                read requests, never answer
  wrong-tid             the right answer with transaction id + 1
  wrong-tid-then-right  first the answer with transaction id + 1 and other values (0xBAD0 + i),
                        then the right answer
  truncated             the first half of the answer, then close (FIN)
  truncated-stall       the first half of the answer, then nothing
  wrong-byte-count      FC 3 with byte count 2 * quantity - 2 and that many bytes (the MBAP
                        length agrees): decodes, but does not answer the request
  odd-byte-count        FC 3 with byte count 2 * quantity + 1 and that many bytes: does not
                        decode
  short-data            FC 3 with byte count 20 and only 10 data bytes (MBAP length counts 10)
  wrong-function        FC 4 in answer to FC 3 (same data)
  wrong-unit            the right answer from unit id + 1
  bad-protocol-id       the right answer with protocol id 1, then nothing
  mbap-length-zero      an MBAP header with length 0, then nothing
  mbap-length-huge      an MBAP header with length 0xFFFF and a few bytes, then nothing
  garbage               64 pseudo-random bytes (fixed seed) whose MBAP length field is outside
                        2..254, then nothing
  echo-mismatch         FC 6 echo with value + 1
  exception-zero        the exception response function | 0x80 with exception code 0
  split-bytes           the right answer, one byte per write, 5 ms apart
  two-answers           the right answer twice, for the first request of a connection only
  slow                  the right answer after --delay-ms
  close-once            the first connection of the process is closed (FIN) on its first
                        request, unanswered; later connections are served correctly
  drop-first            the first request of the process is never answered; every later one
                        is answered correctly
  device-id-stuck       FC 43/14 answers say more follows, with a next object id that does not
                        move forward
  healthy               no misbehaviour: every request gets the correct answer
  flood-wrong-tid       answers with transaction id + 1, again every 20 ms for 2 s
  trickle               the right answer, one byte every 50 ms
  reset                 on the first request, close with SO_LINGER 0 (a reset, RST)
"""
import argparse
import os
import random
import select
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from modbus_raw import mbap, mbap_header  # noqa: E402

MODES = (
    "refuse-after-accept",
    "silent",
    "wrong-tid",
    "wrong-tid-then-right",
    "truncated",
    "truncated-stall",
    "wrong-byte-count",
    "odd-byte-count",
    "short-data",
    "wrong-function",
    "wrong-unit",
    "bad-protocol-id",
    "mbap-length-zero",
    "mbap-length-huge",
    "garbage",
    "echo-mismatch",
    "exception-zero",
    "split-bytes",
    "two-answers",
    "slow",
    "close-once",
    "drop-first",
    "device-id-stuck",
    "healthy",
    "flood-wrong-tid",
    "trickle",
    "reset",
)

# How long a connection is kept open after a misbehaviour that ends in silence; the process
# lifetime bounds it anyway.
STALL_SECONDS = 60.0

output_lock = threading.Lock()
# For close-once and drop-first: whether the one misbehaviour has happened yet.
first_of_process = {"connection": True, "request": True}
first_lock = threading.Lock()


def first_time(what):
    with first_lock:
        was = first_of_process[what]
        first_of_process[what] = False
        return was


def say(line):
    with output_lock:
        sys.stdout.write(line + "\n")
        sys.stdout.flush()


def receive_exactly(connection, count):
    data = b""
    while len(data) < count:
        chunk = connection.recv(count - len(data))
        if not chunk:
            return None
        data += chunk
    return data


def read_request(connection):
    """(transaction id, unit id, PDU) of the next request, or None at end of stream."""
    header = receive_exactly(connection, 7)
    if header is None:
        return None
    transaction_id, _protocol_id, length, unit_id = mbap_header(header)
    if length < 2:
        return None
    pdu = receive_exactly(connection, length - 1)
    if pdu is None:
        return None
    return transaction_id, unit_id, pdu


def registers(address, quantity, base=None):
    return b"".join(
        struct.pack(">H", ((base if base is not None else address) + i) & 0xFFFF)
        for i in range(quantity)
    )


# FC 43/14 objects of the basic category, streamed one per transaction.
DEVICE_OBJECTS = {0: b"broken", 1: b"BS-1", 2: b"0.1"}


def device_id_answer(pdu, stuck):
    """One object per answer, more-follows set while objects remain; when `stuck`, the next
    object id does not move forward."""
    read_code, object_id = pdu[2], pdu[3]
    if object_id not in DEVICE_OBJECTS:
        object_id = 0
    value = DEVICE_OBJECTS[object_id]
    more = object_id + 1 in DEVICE_OBJECTS
    next_id = object_id if stuck else (object_id + 1 if more else 0)
    return (
        bytes([43, 14, read_code, 0x01, 0xFF if more or stuck else 0x00, next_id, 1])
        + bytes([object_id, len(value)])
        + value
    )


def correct_answer(pdu, base=None, stuck=False):
    """The PDU a well-behaved server sends (FC 3 address + i, FC 6 echo, FC 43/14 streamed
    one object at a time, else exception 01)."""
    function = pdu[0]
    if function == 3 and len(pdu) == 5:
        address, quantity = struct.unpack(">HH", pdu[1:5])
        return bytes([3, 2 * quantity]) + registers(address, quantity, base)
    if function == 6 and len(pdu) == 5:
        return pdu
    if function == 43 and len(pdu) == 4 and pdu[1] == 14 and pdu[2] == 1:
        return device_id_answer(pdu, stuck)
    return bytes([function | 0x80, 1])


def quantity_of(pdu):
    if pdu[0] == 3 and len(pdu) == 5:
        return struct.unpack(">HH", pdu[1:5])
    return 0, 1


def finish_with_fin(connection):
    """Sends FIN now, then drains what the client still sends until it closes (or the stall
    bound), so that the close never turns into a reset."""
    try:
        connection.shutdown(socket.SHUT_WR)
        connection.settimeout(STALL_SECONDS)
        while connection.recv(4096):
            pass
    except OSError:
        pass


def stall(connection):
    """Keeps the connection open and reads (and ignores) whatever comes, until the client
    closes or the stall bound."""
    try:
        connection.settimeout(STALL_SECONDS)
        while connection.recv(4096):
            pass
    except OSError:
        pass


def garbage_bytes():
    generator = random.Random(20240501)
    while True:
        data = bytes(generator.getrandbits(8) for _ in range(64))
        length = mbap_header(data)[2]
        if not 2 <= length <= 254:
            return data


def serve_connection(connection, mode, delay_ms):
    connection.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    if mode == "refuse-after-accept":
        finish_with_fin(connection)
        return
    close_this_one = mode == "close-once" and first_time("connection")
    first = True
    while True:
        request = read_request(connection)
        if request is None:
            return
        tid, unit, pdu = request
        say(f"request {tid} function {pdu[0]}")
        answer = correct_answer(pdu, stuck=mode == "device-id-stuck")
        if mode == "silent":
            continue
        if close_this_one:
            finish_with_fin(connection)
            return
        if mode == "drop-first" and first_time("request"):
            continue
        if mode == "wrong-tid":
            connection.sendall(mbap((tid + 1) & 0xFFFF, unit, answer))
        elif mode == "wrong-tid-then-right":
            connection.sendall(mbap((tid + 1) & 0xFFFF, unit, correct_answer(pdu, base=0xBAD0)))
            connection.sendall(mbap(tid, unit, answer))
        elif mode in ("truncated", "truncated-stall"):
            whole = mbap(tid, unit, answer)
            connection.sendall(whole[: len(whole) // 2])
            say(f"sent {tid}")
            if mode == "truncated":
                finish_with_fin(connection)
            else:
                stall(connection)
            return
        elif mode == "wrong-byte-count":
            address, quantity = quantity_of(pdu)
            data = registers(address, quantity)[: 2 * quantity - 2]
            connection.sendall(mbap(tid, unit, bytes([3, len(data)]) + data))
        elif mode == "odd-byte-count":
            address, quantity = quantity_of(pdu)
            data = registers(address, quantity) + b"\x00"
            connection.sendall(mbap(tid, unit, bytes([3, len(data)]) + data))
        elif mode == "short-data":
            address, _quantity = quantity_of(pdu)
            connection.sendall(mbap(tid, unit, bytes([3, 20]) + registers(address, 5)))
        elif mode == "wrong-function":
            connection.sendall(mbap(tid, unit, bytes([4]) + answer[1:]))
        elif mode == "wrong-unit":
            connection.sendall(mbap(tid, (unit + 1) & 0xFF, answer))
        elif mode == "bad-protocol-id":
            connection.sendall(mbap(tid, unit, answer, protocol_id=1))
            say(f"sent {tid}")
            stall(connection)
            return
        elif mode == "mbap-length-zero":
            connection.sendall(mbap(tid, unit, b"", length=0))
            say(f"sent {tid}")
            stall(connection)
            return
        elif mode == "mbap-length-huge":
            connection.sendall(mbap(tid, unit, answer, length=0xFFFF))
            say(f"sent {tid}")
            stall(connection)
            return
        elif mode == "garbage":
            connection.sendall(garbage_bytes())
            say(f"sent {tid}")
            stall(connection)
            return
        elif mode == "echo-mismatch":
            if pdu[0] == 6 and len(pdu) == 5:
                address, value = struct.unpack(">HH", pdu[1:5])
                answer = struct.pack(">BHH", 6, address, (value + 1) & 0xFFFF)
            connection.sendall(mbap(tid, unit, answer))
        elif mode == "exception-zero":
            connection.sendall(mbap(tid, unit, bytes([pdu[0] | 0x80, 0])))
        elif mode == "split-bytes":
            for byte in mbap(tid, unit, answer):
                connection.sendall(bytes([byte]))
                time.sleep(0.005)
        elif mode == "two-answers":
            connection.sendall(mbap(tid, unit, answer))
            if first:
                connection.sendall(mbap(tid, unit, answer))
        elif mode == "flood-wrong-tid":
            wrong = mbap((tid + 1) & 0xFFFF, unit, answer)
            for _ in range(100):
                connection.sendall(wrong)
                time.sleep(0.02)
        elif mode == "trickle":
            for byte in mbap(tid, unit, answer):
                connection.sendall(bytes([byte]))
                time.sleep(0.05)
        elif mode == "reset":
            connection.setsockopt(
                socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0)
            )
            say(f"sent {tid}")
            return
        elif mode == "slow":
            time.sleep(delay_ms / 1000.0)
            connection.sendall(mbap(tid, unit, answer))
        else:
            connection.sendall(mbap(tid, unit, answer))
        say(f"sent {tid}")
        first = False


def serve_safely(connection, mode, delay_ms):
    try:
        serve_connection(connection, mode, delay_ms)
    except OSError:
        pass
    finally:
        connection.close()


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--mode", required=True, choices=MODES)
    parser.add_argument("--lifetime", type=float, default=30.0)
    parser.add_argument("--delay-ms", type=int, default=500)
    arguments = parser.parse_args()

    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", 0))
    listener.listen(16)
    say(f"listening on 127.0.0.1:{listener.getsockname()[1]}")

    deadline = time.monotonic() + arguments.lifetime
    watch_stdin = True
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            break
        watched = [listener] + ([sys.stdin] if watch_stdin else [])
        readable, _, _ = select.select(watched, [], [], left)
        if sys.stdin in readable:
            try:
                if not os.read(sys.stdin.fileno(), 4096):
                    break
            except OSError:
                watch_stdin = False
        if listener in readable:
            connection, _ = listener.accept()
            threading.Thread(
                target=serve_safely,
                args=(connection, arguments.mode, arguments.delay_ms),
                daemon=True,
            ).start()
    # Daemon threads may sit in a stall: leave without waiting for them.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
