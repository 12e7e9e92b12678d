#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Badly behaved peers against `mbsec serve`, on raw sockets (standard library only).

    test_bad_peers.py framing HOST PORT           (default server)
    test_bad_peers.py idle HOST PORT              (serve --idle-timeout 1s)
    test_bad_peers.py max-connections HOST PORT   (serve --max-connections 4)
    test_bad_peers.py max-per-source HOST PORT    (serve --max-per-source 3)
    test_bad_peers.py in-flight HOST PORT         (serve --in-flight 1)

run_with_server.sh starts the server with the flags each scenario needs. Loopback only; every
loop is bounded in count and time. Prints one "ok"/"not ok" line per check; exits 0 only if all
passed.
"""
import os
import socket
import struct
import sys
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
from modbus_raw import (  # noqa: E402
    Connection,
    ModbusError,
    mbap,
    read_request,
    registers_of,
    write_registers_request,
)

IDLE_TIMEOUT = 1.0  # what the idle scenario's server is started with
MAX_CONNECTIONS = 4  # what the max-connections scenario's server is started with
MAX_PER_SOURCE = 3  # --max-per-source of the max-per-source scenario

passed = 0
failed = 0


def report(ok, description):
    global passed, failed
    print(f"{'ok' if ok else 'not ok'} - {description}")
    if ok:
        passed += 1
    else:
        failed += 1
    return ok


def attempt(description, function):
    """Runs one check that raises on failure; reports it either way."""
    try:
        function()
        report(True, description)
    except (OSError, ModbusError, TimeoutError, AssertionError) as error:
        report(False, f"{description}: {type(error).__name__}: {error}")


def guard(description, function):
    """Runs a group of checks; reports only an error that escapes it."""
    try:
        function()
    except (OSError, ModbusError, TimeoutError, AssertionError) as error:
        report(False, f"{description}: {type(error).__name__}: {error}")


def still_served(connection, description):
    def check():
        response = connection.request(read_request(3, 0, 1))
        assert response[:2] == b"\x03\x02", f"got {response.hex(' ')}"

    attempt(description, check)


# ---- framing ----


def protocol_id_dropped(host, port):
    connection = Connection(host, port)
    try:
        # A frame with protocol id 1 and a good frame behind it, in one write.
        connection.send(
            mbap(0x0101, 1, read_request(3, 0, 1), protocol_id=1)
            + mbap(0x0102, 1, read_request(3, 0, 1))
        )
        transaction, protocol, _, pdu = connection.receive_frame()
        report(
            transaction == 0x0102 and protocol == 0 and pdu[:2] == b"\x03\x02",
            "protocol id 1 dropped, the next frame in the same write answered "
            f"(tid {transaction:#06x})",
        )
        # Protocol id 0xFFFF alone, then a good frame in a later write.
        connection.send(mbap(0x0201, 1, write_registers_request(50, [0xDEAD]), protocol_id=0xFFFF))
        connection.send(mbap(0x0202, 1, read_request(3, 50, 1)))
        transaction, _, _, pdu = connection.receive_frame()
        report(
            transaction == 0x0202 and pdu == b"\x03\x02\x00\x00",
            "protocol id 0xFFFF dropped (its write did not happen), "
            "the next write's frame answered",
        )
    finally:
        connection.close()


def bad_length_closes(host, port):
    for length in (0xFFFF, 0, 1, 255):
        connection = Connection(host, port)
        try:
            # Header only: the length is judged as soon as its 6 bytes are there.
            connection.send(mbap(7, 1, b"", length=length))
            report(
                connection.closed_by_peer(3.0) and not connection.buffer,
                f"MBAP length {length:#06x}: connection closed without an answer",
            )
        finally:
            connection.close()


def pipelined(host, port):
    connection = Connection(host, port)
    try:
        writes = b"".join(
            mbap(5000 + i, 1, struct.pack(">BHH", 6, 1000 + i, i * 3 + 1)) for i in range(100)
        )
        connection.send(writes)
        in_order = True
        for i in range(100):
            transaction, _, _, pdu = connection.receive_frame()
            if transaction != 5000 + i or pdu != struct.pack(">BHH", 6, 1000 + i, i * 3 + 1):
                in_order = False
                report(False, f"write {i}: tid {transaction}, pdu {pdu.hex(' ')}")
                break
        report(in_order, "100 pipelined FC 6 writes in one write: 100 echoes in order")

        reads = b"".join(mbap(6000 + i, i % 256, read_request(3, 1000 + i, 1)) for i in range(100))
        connection.send(reads)
        in_order = True
        for i in range(100):
            transaction, _, unit, pdu = connection.receive_frame()
            if transaction != 6000 + i or unit != i % 256 or registers_of(pdu) != [i * 3 + 1]:
                in_order = False
                report(False, f"read {i}: tid {transaction}, unit {unit}, pdu {pdu.hex(' ')}")
                break
        report(in_order, "100 pipelined FC 3 reads (units 0..99): answers in order, values right")

        # Good and bad requests mixed in one write: each answered, in order.
        mixed = [
            (read_request(3, 1000, 1), b"\x03\x02\x00\x01"),
            (read_request(3, 0, 126), b"\x83\x03"),
            (read_request(3, 65535, 2), b"\x83\x02"),
            (bytes([0x5A]), b"\xda\x01"),
            (read_request(3, 1001, 1), b"\x03\x02\x00\x04"),
        ]
        connection.send(b"".join(mbap(7000 + i, 1, pdu) for i, (pdu, _) in enumerate(mixed)))
        answers = [connection.receive_frame() for _ in mixed]
        report(
            [(t, p) for t, _, _, p in answers]
            == [(7000 + i, expected) for i, (_, expected) in enumerate(mixed)],
            "good and bad requests pipelined: answers and exceptions in order",
        )
    finally:
        connection.close()


GARBAGE = [
    ("function code 0", b"\x00", b"\x80\x01"),
    ("function code 0x5A (not defined)", b"\x5a\x00\x01", b"\xda\x01"),
    ("function code 0x83 (exception bit set)", b"\x83\x00\x00\x00\x01", b"\x83\x01"),
    ("FC 3 truncated to 3 bytes", b"\x03\x00\x00", b"\x83\x03"),
    ("FC 3 with a byte too many", b"\x03\x00\x00\x00\x01\xff", b"\x83\x03"),
    ("FC 3 quantity 0", b"\x03\x00\x00\x00\x00", b"\x83\x03"),
    ("FC 16 byte count 3 for 2 registers", b"\x10\x00\x00\x00\x02\x03\x00\x01\x00", b"\x90\x03"),
    ("FC 16 byte count 4 with 2 bytes of data", b"\x10\x00\x00\x00\x02\x04\x00\x01", b"\x90\x03"),
    ("FC 15 quantity 1969", b"\x0f\x00\x00\x07\xb1\xf7" + bytes(247), b"\x8f\x03"),
    ("FC 5 value 0x0001", b"\x05\x00\x00\x00\x01", b"\x85\x03"),
    ("FC 8 reserved sub-function 0x0005", b"\x08\x00\x05\x00\x00", b"\x88\x01"),
    ("FC 43 MEI type 0x0D (CANopen, not served)", b"\x2b\x0d\x00", b"\xab\x01"),
    ("FC 43/14 read code 0", b"\x2b\x0e\x00\x00", b"\xab\x03"),
]


def garbage(host, port):
    connection = Connection(host, port)
    try:
        for description, pdu, expected in GARBAGE:
            try:
                response = connection.request(pdu)
                report(
                    response == expected,
                    f"{description} -> {expected.hex(' ')} (got {response.hex(' ')})",
                )
            except (OSError, ModbusError, TimeoutError) as error:
                report(False, f"{description} -> {expected.hex(' ')}: {error}")
                connection.close()
                connection = Connection(host, port)
        still_served(connection, "after every garbage PDU the connection is still served")
    finally:
        connection.close()


def split_and_merged(host, port):
    connection = Connection(host, port)
    try:
        frame = mbap(0x0301, 1, read_request(3, 1000, 2))
        for byte in frame:
            connection.send(bytes([byte]))
        transaction, _, _, pdu = connection.receive_frame()
        report(
            transaction == 0x0301 and registers_of(pdu) == [1, 4],
            "a frame sent one byte per write is answered",
        )
        frames = [mbap(0x0400 + i, 1, read_request(3, 1000 + i, 1)) for i in range(3)]
        stream = b"".join(frames)
        # Frame 0 and half of frame 1, then the rest of 1 and all of 2.
        cut = len(frames[0]) + 5
        connection.send(stream[:cut])
        connection.send(stream[cut:])
        answers = [connection.receive_frame()[0] for _ in frames]
        report(answers == [0x0400, 0x0401, 0x0402], "frames split across writes and merged in one")
    finally:
        connection.close()


def half_closed(host, port):
    connection = Connection(host, port)
    try:
        # Requests, then FIN: the answers are still owed and must arrive before the close.
        connection.send(
            b"".join(mbap(0x0500 + i, 1, read_request(3, 1000 + i, 1)) for i in range(3))
        )
        connection.socket.shutdown(socket.SHUT_WR)
        answers = [connection.receive_frame()[0] for _ in range(3)]
        report(answers == [0x0500, 0x0501, 0x0502], "requests then FIN: all 3 answers arrive")
        report(connection.closed_by_peer(3.0), "after the answers the server closes its side")
    finally:
        connection.close()


def reset_with_answers_pending(host, port):
    # 100 requests, then RST (SO_LINGER 0) before reading anything: the server's writes fail
    # with EPIPE / ECONNRESET, which must cost it the connection, not the process (SIGPIPE).
    for _ in range(20):
        connection = Connection(host, port)
        connection.socket.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, struct.pack("ii", 1, 0))
        connection.send(b"".join(mbap(i, 1, read_request(3, 0, 125)) for i in range(100)))
        connection.close()
    survivor = Connection(host, port)
    still_served(survivor, "20 clients reset with 100 answers pending each: the server lives on")
    survivor.close()


def server_rss_kib():
    """The server's resident set in KiB (run_with_server.sh exports its PID), or None."""
    try:
        with open(f"/proc/{os.environ['MBSEC_SERVER_PID']}/status", encoding="ascii") as status:
            for line in status:
                if line.startswith("VmRSS:"):
                    return int(line.split()[1])
    except (KeyError, OSError, ValueError):
        pass
    return None


def never_reads(host, port):
    # A client that sends requests as fast as it can and never reads its answers: the server
    # must stop reading it (bounded in-flight requests) instead of buffering without end, and
    # keep serving everyone else.
    hog = Connection(host, port)
    other = Connection(host, port)
    rss_before = server_rss_kib()
    try:
        hog.socket.setblocking(False)
        request = b"".join(mbap(i, 1, read_request(3, 0, 125)) for i in range(64))
        sent = 0
        deadline = time.monotonic() + 2.0
        stalled_since = None
        while time.monotonic() < deadline:
            try:
                sent += hog.socket.send(request)
                stalled_since = None
            except BlockingIOError:
                # Both socket buffers are full: the server has stopped reading us. Stay
                # stalled for 300 ms to be sure it does not resume.
                stalled_since = stalled_since or time.monotonic()
                if time.monotonic() - stalled_since > 0.3:
                    break
                time.sleep(0.01)
        report(
            stalled_since is not None,
            f"a client that never reads is throttled ({sent} bytes accepted)",
        )
        still_served(other, "another client is served while the first never reads")
        rss_after = server_rss_kib()
        if rss_before is not None and rss_after is not None:
            # Each 12-byte request asks for a 259-byte answer: a server that kept reading and
            # buffered its answers would grow by tens of MiB; 16 MiB leaves room for sanitizers.
            report(
                rss_after - rss_before < 16 * 1024,
                f"the server did not buffer its answers: RSS {rss_before} -> {rss_after} KiB",
            )
    finally:
        hog.close()
        other.close()


def scenario_framing(host, port):
    guard("protocol id != 0", lambda: protocol_id_dropped(host, port))
    guard("MBAP lengths outside 2..254", lambda: bad_length_closes(host, port))
    guard("pipelining", lambda: pipelined(host, port))
    guard("garbage PDUs", lambda: garbage(host, port))
    guard("split and merged frames", lambda: split_and_merged(host, port))
    guard("half-closed connection", lambda: half_closed(host, port))
    guard("reset with answers pending", lambda: reset_with_answers_pending(host, port))
    guard("a client that never reads", lambda: never_reads(host, port))
    survivor = Connection(host, port)
    still_served(survivor, "the server still serves a new connection after all that")
    survivor.close()


# ---- idle timeout ----


def scenario_idle(host, port):
    half = Connection(host, port)
    silent = Connection(host, port)
    trickle = Connection(host, port)
    busy = Connection(host, port)
    # The trickler sends a 260-byte frame (FC 16, 123 registers) one byte per round: it never
    # completes a request in time, so trickling must not keep it alive.
    slow_frame = mbap(1, 1, write_registers_request(0, [0] * 123))
    try:
        half.send(mbap(1, 1, read_request(3, 0, 1))[:5])
        started = time.monotonic()
        answers = 0
        errors = []
        half_closed_at = silent_closed_at = trickle_closed_at = None
        # A busy client asks every ~200 ms until the idle ones are cut, at most 30 rounds.
        for round_number in range(30):
            try:
                if registers_of(busy.request(read_request(3, 0, 1))) == [0]:
                    answers += 1
            except (OSError, ModbusError, TimeoutError) as error:
                errors.append(str(error))
                break
            if trickle_closed_at is None:
                try:
                    trickle.send(slow_frame[round_number : round_number + 1])
                except (BrokenPipeError, ConnectionResetError):
                    trickle_closed_at = time.monotonic() - started
            if trickle_closed_at is None and trickle.closed_by_peer(0.05):
                trickle_closed_at = time.monotonic() - started
            if half_closed_at is None and half.closed_by_peer(0.05):
                half_closed_at = time.monotonic() - started
            if silent_closed_at is None and silent.closed_by_peer(0.05):
                silent_closed_at = time.monotonic() - started
            if None not in (half_closed_at, silent_closed_at, trickle_closed_at):
                break
        window = (IDLE_TIMEOUT * 0.75, IDLE_TIMEOUT * 4)
        report(
            half_closed_at is not None and window[0] <= half_closed_at <= window[1],
            f"half a frame then silence: cut after {half_closed_at} s "
            f"(idle timeout {IDLE_TIMEOUT} s)",
        )
        report(
            silent_closed_at is not None and window[0] <= silent_closed_at <= window[1],
            f"a connection that never sends: cut after {silent_closed_at} s",
        )
        report(
            trickle_closed_at is not None and window[0] <= trickle_closed_at <= window[1],
            f"a client trickling one byte per round: cut after {trickle_closed_at} s",
        )
        report(
            not errors and answers >= 3,
            f"a busy client kept getting answers meanwhile ({answers} answers, errors {errors})",
        )
        still_served(busy, "the busy client is still served after the idle ones were cut")
    finally:
        for connection in (half, silent, trickle, busy):
            connection.close()


# ---- connection limit ----


def refused(host, port):
    """True when a new connection is closed by the server without being served."""
    connection = Connection(host, port)
    try:
        try:
            connection.send(mbap(9, 1, read_request(3, 0, 1)))
        except (BrokenPipeError, ConnectionResetError):
            return True
        return connection.closed_by_peer(3.0) and not connection.buffer
    finally:
        connection.close()


def scenario_max_connections(host, port):
    clients = []
    try:
        for i in range(MAX_CONNECTIONS):
            clients.append(Connection(host, port))
            still_served(clients[-1], f"connection {i + 1} of {MAX_CONNECTIONS} is served")
        extra = [refused(host, port) for _ in range(6)]
        report(
            all(extra),
            f"6 connections beyond --max-connections {MAX_CONNECTIONS} closed unserved ({extra})",
        )
        for i, client in enumerate(clients):
            still_served(client, f"existing connection {i + 1} still served after the flood")
        clients.pop().close()
        # The server notices the close asynchronously: retry for at most 3 s.
        served = False
        for _ in range(30):
            connection = Connection(host, port)
            try:
                served = registers_of(connection.request(read_request(3, 0, 1), timeout=0.5)) == [0]
            except (OSError, ModbusError, TimeoutError):
                served = False
            finally:
                connection.close()
            if served:
                break
            time.sleep(0.1)
        report(served, "once one connection closes, a new one is served again")
    finally:
        for client in clients:
            client.close()


# ---- per-source limit ----


def scenario_max_per_source(host, port):
    clients = []
    try:
        for i in range(MAX_PER_SOURCE):
            clients.append(Connection(host, port, source="127.0.0.1"))
            still_served(
                clients[-1], f"connection {i + 1} of {MAX_PER_SOURCE} from 127.0.0.1 is served"
            )
        report(
            refused(host, port),
            f"connection {MAX_PER_SOURCE + 1} from 127.0.0.1 is closed unserved",
        )
        other = Connection(host, port, source="127.0.0.2")
        still_served(other, "a connection from 127.0.0.2 is still served")
        other.close()
        for i, client in enumerate(clients):
            still_served(client, f"existing connection {i + 1} from 127.0.0.1 still served")
    finally:
        for client in clients:
            client.close()


# ---- in-flight limit ----


def scenario_in_flight(host, port):
    # With at most one request in flight per connection, 100 pipelined requests are not
    # refused: the server reads them one after another, and every one is answered in order.
    connection = Connection(host, port)
    try:
        connection.send(
            b"".join(
                mbap(100 + i, 1, struct.pack(">BHH", 6, 2000 + i, 0x4000 + i)) for i in range(100)
            )
        )
        answers = [connection.receive_frame() for _ in range(100)]
        report(
            [(t, p) for t, _, _, p in answers]
            == [(100 + i, struct.pack(">BHH", 6, 2000 + i, 0x4000 + i)) for i in range(100)],
            "--in-flight 1: 100 pipelined writes all answered, in order",
        )
        report(
            registers_of(connection.request(read_request(3, 2000, 100)))
            == [0x4000 + i for i in range(100)],
            "--in-flight 1: all 100 writes happened",
        )
    finally:
        connection.close()


SCENARIOS = {
    "framing": scenario_framing,
    "idle": scenario_idle,
    "max-connections": scenario_max_connections,
    "max-per-source": scenario_max_per_source,
    "in-flight": scenario_in_flight,
}


def main():
    if len(sys.argv) != 4 or sys.argv[1] not in SCENARIOS:
        print(__doc__, file=sys.stderr)
        return 2
    host, port = sys.argv[2], int(sys.argv[3])
    print(f"# bad peers, scenario {sys.argv[1]}, against {host}:{port}")
    try:
        SCENARIOS[sys.argv[1]](host, port)
    except (OSError, ModbusError, TimeoutError) as error:
        report(False, f"scenario {sys.argv[1]} stopped: {type(error).__name__}: {error}")
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
