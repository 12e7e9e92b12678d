#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Helpers for test_gateway_watch.sh: the audit trail, syslog, metrics and clients under load.

Standard library only (and pymodbus 3.0 for `burst`); the Modbus framing is tests/lib's
modbus_raw.py. Every wait has a deadline, every loop a bound.

  audit-check FILE...                    every line is a JSON object with the documented fields;
                                         prints "FAIL ..." per problem, exits 1 on any
  select FILE COND...                    the records matching every COND, one JSON line each;
                                         COND: key=VALUE (VALUE as JSON, else a string),
                                         key~REGEX (on the value as text), key? (present),
                                         key! (absent)
  get FILE KEY COND...                   KEY of the first record matching every COND
  syslog-recv SOCKET OUT SECONDS         a unix datagram receiver: each datagram a line of OUT;
                                         exits after SECONDS
  syslog-check SYSLOG PID AUDITFILE...   RFC 5424 lines, PRI 13*8+severity by record type, MSGID
                                         the type, PROCID PID, and the same JSON records, in the
                                         same order, as the audit files
  scrape URL OUT                         GET URL, checks the Prometheus text format, writes the
                                         body to OUT; exits 1 on a problem
  status URL                             prints the HTTP status of GET URL
  burst HOST PORT COUNT ADDRESS V...     pymodbus: COUNT quick FC 3 reads on one connection,
                                         interleaved with reads on a second one (every 8th);
                                         prints JSON counts
  until-closed HOST PORT COUNT ADDRESS V...  raw reads on one connection until it is closed
  load HOST PORT CONNS SECONDS STOP READY UNIT ADDRESS V...
                                         CONNS connections reading in a loop and checking the
                                         values, until the file STOP exists (at most SECONDS);
                                         READY is created once every connection has read once,
                                         then holds the reads so far (every 20 ms)
  refuse HOST PORT HOLD EXTRA            holds HOLD connections (each reads once), then opens
                                         EXTRA more and counts those the server refuses
  same-tid HOST PORT TID HEX...          sends each PDU (hex, no spaces) on one connection, all
                                         with transaction id TID, one at a time; prints each
                                         answer in hex (or "closed", "no answer")
  slow-device PORT DELAY                 a Modbus/TCP device on 127.0.0.1:PORT (0: any) that
                                         answers FC 3 with register = address after DELAY s;
                                         at address 999 with too many bytes (a wrong answer)
  flood SOURCE HOST PORT COUNT           opens COUNT connections from SOURCE at once (all held,
                                         then closed); prints how many were closed on it
  greedy SOURCE HOST PORT CONNS EACH UNIT PDU  CONNS connections from SOURCE, each sending EACH
                                         copies of PDU (hex) to UNIT in one write; prints the
                                         answers counted by exception code ("0": normal)
  quiet SOURCE HOST PORT COUNT UNIT      COUNT FC 3 reads from SOURCE, one at a time; prints
                                         how many got a normal answer and the slowest, in ms
"""
import json
import os
import re
import socket
import struct
import sys
import threading
import time

sys.dont_write_bytecode = True  # no __pycache__ in the source tree
sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "lib"))
import modbus_raw  # noqa: E402  (tests/lib/modbus_raw.py)

TIME = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
TYPES = {"connection", "write", "read", "denied", "sanity", "alert", "audit"}
ALERTS = {
    "unit_scan",
    "denial_burst",
    "malformed_frames",
    "request_flood",
    "connection_flood",
    "fc8_restart",
    "fc8_listen_only",
    "backend_share",
}
COUNTED_ALERTS = ALERTS - {"fc8_restart", "fc8_listen_only"}
OUTCOMES = {
    "answered",
    "device_exception",
    "unavailable",
    "timeout",
    "mismatch",
    "over_share",
    "rejected",
}
MULTIPLE = {15, 16, 23}
READS = {1, 2, 3, 4}
TABLE_FUNCTIONS = {1, 2, 3, 4, 5, 6, 15, 16, 22, 23, 24}


def records(path):
    with open(path, encoding="utf-8") as file:
        for number, line in enumerate(file, 1):
            yield number, line.rstrip("\n")


# ---- audit-check ----


def problems_of(record):
    """What is wrong with one record, as a list of texts."""
    found = []

    def need(key, kinds, allow_null=False):
        if key not in record:
            found.append(f"no {key}")
        elif record[key] is None and allow_null:
            pass
        elif not isinstance(record[key], kinds) or isinstance(record[key], bool) != (kinds is bool):
            found.append(f"{key} is {record[key]!r}")

    if not isinstance(record.get("time"), str) or not TIME.match(record["time"]):
        found.append(f"time {record.get('time')!r} is not RFC 3339 UTC with milliseconds")
    kind = record.get("type")
    if kind not in TYPES:
        return found + [f"type {kind!r}"]
    if kind == "connection" and record.get("event") == "refused_summary":
        # Refusals of one source in one window, after the first (which has its own record).
        need("source", str)
        need("count", int)
        need("window_ms", int)
        need("reason", str)
        for key in ("first", "last"):
            if not isinstance(record.get(key), str) or not TIME.match(record[key]):
                found.append(f"{key} {record.get(key)!r} is not RFC 3339 UTC with milliseconds")
        if isinstance(record.get("count"), int) and record["count"] < 1:
            found.append("a summary of no refusal")
    elif kind == "connection":
        if record.get("event") not in {"opened", "tls", "tls_failed", "tls_revoked", "closed",
                                       "refused"}:
            found.append(f"event {record.get('event')!r}")
        need("connection", int)
        need("peer", str)
        need("listener", str)
        if record.get("event") == "refused":
            need("source", str)
        else:
            if record.get("transport") not in {"tcp", "tls"}:
                found.append(f"transport {record.get('transport')!r}")
            need("role", str, allow_null=True)
            need("subject", str, allow_null=True)
        if record.get("event") == "tls":
            need("version", str)
            need("cipher", str)
            need("resumed", bool)
            if record.get("transport") != "tls":
                found.append("a tls record whose transport is not tls")
        if record.get("event") == "closed":
            need("requests", int)
            need("duration_ms", int)
    elif kind in ("write", "read"):
        for key in ("connection", "unit", "function", "latency_us"):
            need(key, int)
        for key in ("peer", "function_name", "outcome"):
            need(key, str)
        need("rule", str, allow_null=True)
        need("backend", str, allow_null=True)
        if record.get("function") in TABLE_FUNCTIONS:
            need("address", int)
        if record.get("outcome") not in OUTCOMES:
            found.append(f"outcome {record.get('outcome')!r}")
        if record.get("backend") is not None:
            need("device_unit", int)
        if record.get("function") in MULTIPLE or record.get("function") in READS:
            need("quantity", int)
        if record.get("function") == 8:
            need("sub_function", int)
        if kind == "write":
            values = record.get("values")
            if not isinstance(values, list) or not all(isinstance(v, int) for v in values):
                found.append(f"values {values!r}")
            elif "quantity" in record and len(values) != min(record["quantity"], 64):
                found.append(f"{len(values)} values for quantity {record['quantity']}")
        if record.get("outcome") == "answered":
            if "exception" in record:
                found.append("answered, with an exception")
        elif not isinstance(record.get("exception"), int) or record["exception"] == 0:
            found.append(f"outcome {record.get('outcome')} without an exception")
    elif kind == "denied":
        for key in ("connection", "unit", "function"):
            need(key, int)
        for key in ("peer", "rule", "reason", "action"):
            need(key, str)
        need("role", str, allow_null=True)
        if record.get("action") not in {"deny", "drop", "close"}:
            found.append(f"action {record.get('action')!r}")
        if (record.get("action") == "deny") != ("exception" in record):
            found.append("exception present exactly when the action is deny: not so")
    elif kind == "sanity":
        if record.get("side") not in {"front", "backend"}:
            found.append(f"side {record.get('side')!r}")
        need("detail", str)
    elif kind == "audit":
        # The sinks a reload named did not open; the old ones were kept.
        if record.get("event") != "reopen_failed":
            found.append(f"event {record.get('event')!r}")
        need("detail", str)
    elif kind == "alert":
        if record.get("alert") not in ALERTS:
            found.append(f"alert {record.get('alert')!r}")
        need("source", str)
        need("detail", str)
        if record.get("alert") in COUNTED_ALERTS:
            need("count", int)
            need("window_ms", int)
    return found


def audit_check(paths):
    bad = 0
    total = 0
    for path in paths:
        for number, line in records(path):
            total += 1
            try:
                record = json.loads(line)
            except ValueError as error:
                print(f"FAIL {os.path.basename(path)}:{number}: not JSON ({error}): {line[:200]}")
                bad += 1
                continue
            if not isinstance(record, dict):
                print(f"FAIL {os.path.basename(path)}:{number}: not an object: {line[:200]}")
                bad += 1
                continue
            found = problems_of(record)
            if found:
                bad += 1
                if bad <= 20:
                    print(f"FAIL {os.path.basename(path)}:{number}: {'; '.join(found)}: {line}")
    print(f"{total} records, {bad} with problems")
    return 1 if bad or total == 0 else 0


# ---- select ----


def parse_condition(text):
    """key=VALUE, key~REGEX, key? or key! (keys hold neither '=' nor '~')."""
    positions = [index for index in (text.find("="), text.find("~")) if index > 0]
    if positions:
        index = min(positions)
        key, operator, value = text[:index], text[index], text[index + 1:]
        if operator == "=":
            try:
                value = json.loads(value)
            except ValueError:
                pass
        return key, operator, value
    if text.endswith("?") or text.endswith("!"):
        return text[:-1], text[-1], None
    raise SystemExit(f"watch_tool.py: bad condition {text!r}")


def matches(record, conditions):
    for key, operator, value in conditions:
        if operator == "?" and key not in record:
            return False
        if operator == "!" and key in record:
            return False
        if operator == "=" and (key not in record or record[key] != value
                                or isinstance(record[key], bool) != isinstance(value, bool)):
            return False
        if operator == "~":
            text = record.get(key)
            text = text if isinstance(text, str) else json.dumps(text)
            if key not in record or not re.search(value, text):
                return False
    return True


def select(path, texts, key=None):
    """Prints the matching records; with `key`, only that field of the first match (a string
    as it is, anything else as JSON)."""
    conditions = [parse_condition(text) for text in texts]
    for _, line in records(path):
        try:
            record = json.loads(line)
        except ValueError:
            continue
        if isinstance(record, dict) and matches(record, conditions):
            if key is None:
                print(line)
                continue
            value = record.get(key)
            print(value if isinstance(value, str) else json.dumps(value))
            break
    return 0


# ---- syslog ----


def syslog_recv(path, out, seconds):
    receiver = socket.socket(socket.AF_UNIX, socket.SOCK_DGRAM)
    receiver.bind(path)
    receiver.setsockopt(socket.SOL_SOCKET, socket.SO_RCVBUF, 1 << 20)
    deadline = time.monotonic() + seconds
    with open(out, "a", encoding="utf-8") as file:
        while time.monotonic() < deadline:
            receiver.settimeout(max(0.01, min(1.0, deadline - time.monotonic())))
            try:
                data = receiver.recv(65536)
            except socket.timeout:
                continue
            file.write(data.decode("utf-8", "replace").replace("\n", "\\n") + "\n")
            file.flush()
    return 0


SEVERITY = {"alert": 2, "audit": 3, "denied": 4, "sanity": 4, "write": 5, "read": 6}
SYSLOG = re.compile(r"^<(\d{1,3})>1 (\S+) (\S+) (\S+) (\S+) (\S+) - (.*)$")


def expected_severity(record):
    if record.get("type") == "connection":
        return 6 if record.get("event") in ("opened", "closed", "tls") else 4
    return SEVERITY.get(record.get("type"))


def syslog_check(path, pid, audit_paths):
    audit = [line for audit_path in audit_paths for _, line in records(audit_path)]
    messages = []
    bad = 0
    hostname = socket.gethostname()
    for number, line in records(path):
        match = SYSLOG.match(line)
        if match is None:
            print(f"FAIL syslog line {number} is not RFC 5424 as mbsec writes it: {line[:200]}")
            bad += 1
            continue
        pri, stamp, host, app, procid, msgid, message = match.groups()
        messages.append(message)
        try:
            record = json.loads(message)
        except ValueError:
            print(f"FAIL syslog line {number}: MSG is not JSON: {message[:200]}")
            bad += 1
            continue
        found = []
        severity = expected_severity(record)
        if int(pri) != 13 * 8 + (severity if severity is not None else -100):
            found.append(f"PRI {pri}, wanted 13*8+{severity} for a {record.get('type')} record")
        if not TIME.match(stamp):
            found.append(f"TIMESTAMP {stamp}")
        elif stamp[:19] != record.get("time", "")[:19]:
            found.append(f"TIMESTAMP {stamp} far from the record's time {record.get('time')}")
        if host != (hostname if hostname else "-"):
            found.append(f"HOSTNAME {host}, wanted {hostname}")
        if app != "mbsec-gateway":
            found.append(f"APP-NAME {app}")
        if procid != pid:
            found.append(f"PROCID {procid}, wanted {pid}")
        if msgid != record.get("type"):
            found.append(f"MSGID {msgid} for a {record.get('type')} record")
        if found:
            bad += 1
            if bad <= 20:
                print(f"FAIL syslog line {number}: {'; '.join(found)}: {line[:300]}")
    if messages != audit:
        bad += 1
        print(f"FAIL syslog got {len(messages)} records, the audit files {len(audit)}; "
              "they differ in content or order")
        for index, (got, wanted) in enumerate(zip(messages, audit)):
            if got != wanted:
                print(f"     first difference at record {index + 1}:\n     syslog {got[:200]}\n"
                      f"     file   {wanted[:200]}")
                break
    print(f"{len(messages)} syslog messages, {bad} problems")
    return 1 if bad or not messages else 0


# ---- metrics ----

SAMPLE = re.compile(
    r'^([a-zA-Z_:][a-zA-Z0-9_:]*)(\{[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*"'
    r'(,[a-zA-Z_][a-zA-Z0-9_]*="[^"\\\n]*")*\})? (-?[0-9]+(\.[0-9]+)?([eE][-+]?[0-9]+)?|[-+]Inf|NaN)$'
)


def fetch(url):
    import urllib.error
    import urllib.request

    try:
        with urllib.request.urlopen(url, timeout=5) as response:
            return response.status, response.headers.get("Content-Type", ""), response.read()
    except urllib.error.HTTPError as error:
        return error.code, error.headers.get("Content-Type", ""), error.read()


def scrape(url, out):
    status, content_type, body = fetch(url)
    problems = []
    if status != 200:
        problems.append(f"status {status}")
    if not content_type.startswith("text/plain"):
        problems.append(f"Content-Type {content_type!r}")
    text = body.decode("utf-8", "replace")
    if not text.endswith("\n"):
        problems.append("the body does not end with a newline")
    types = {}
    samples = 0
    for number, line in enumerate(text.splitlines(), 1):
        if line.startswith("# HELP "):
            if len(line.split(" ", 3)) < 4:
                problems.append(f"line {number}: HELP without text: {line}")
            continue
        if line.startswith("# TYPE "):
            parts = line.split(" ")
            if len(parts) != 4 or parts[3] not in ("counter", "gauge", "histogram", "summary",
                                                  "untyped"):
                problems.append(f"line {number}: {line}")
            else:
                types[parts[2]] = parts[3]
            continue
        match = SAMPLE.match(line)
        if match is None:
            problems.append(f"line {number} is not 'name{{labels}} value': {line}")
            continue
        samples += 1
        name = match.group(1)
        family = name
        for suffix in ("_bucket", "_sum", "_count"):
            if name.endswith(suffix) and types.get(name[: -len(suffix)]) == "histogram":
                family = name[: -len(suffix)]
        if family not in types:
            problems.append(f"line {number}: {name} has no # TYPE before it")
    with open(out, "w", encoding="utf-8") as file:
        file.write(text)
    for problem in problems[:20]:
        print(f"FAIL {problem}")
    print(f"{samples} samples, {len(problems)} problems")
    return 1 if problems or samples == 0 else 0


# ---- clients ----


def read_pdu(address, count):
    return modbus_raw.read_request(3, address, count)


def burst(host, port, count, address, values):
    from pymodbus.client import ModbusTcpClient
    from pymodbus.pdu import ExceptionResponse

    first = ModbusTcpClient(host, port=port, timeout=3, retries=0)
    second = ModbusTcpClient(host, port=port, timeout=3, retries=0)
    result = {"ok": 0, "busy": 0, "other": [], "second_ok": 0, "second_other": []}
    if not first.connect() or not second.connect():
        result["other"].append("cannot connect")
        print(json.dumps(result))
        return 1

    def one(client, prefix):
        response = client.read_holding_registers(address, len(values), slave=1)
        if isinstance(response, ExceptionResponse):
            if response.exception_code == 6 and prefix == "":
                result["busy"] += 1
            else:
                result[prefix + "other"].append(f"exception {response.exception_code}")
        elif response is None or response.isError():
            result[prefix + "other"].append(repr(response))
        elif list(response.registers) == values:
            result[prefix + "ok"] += 1
        else:
            result[prefix + "other"].append(f"values {list(response.registers)}")

    for i in range(count):
        one(first, "")
        if i % 8 == 0:
            one(second, "second_")
    first.close()
    second.close()
    print(json.dumps(result))
    return 0


def until_closed(host, port, count, address, values):
    result = {"answered": 0, "busy": 0, "other": [], "closed": False}
    connection = modbus_raw.Connection(host, port)
    expected = struct.pack(">BB", 3, 2 * len(values)) + b"".join(
        struct.pack(">H", v) for v in values)
    for _ in range(count):
        try:
            pdu = connection.request(read_pdu(address, len(values)), timeout=3)
        except (modbus_raw.ModbusError, ConnectionResetError, BrokenPipeError) as error:
            if "closed" in str(error) or isinstance(error, (ConnectionResetError,
                                                            BrokenPipeError)):
                result["closed"] = True
            else:
                result["other"].append(str(error))
            break
        except TimeoutError:
            result["other"].append("no answer")
            break
        if pdu == expected:
            result["answered"] += 1
        elif pdu == bytes([0x83, 6]):
            result["busy"] += 1
        else:
            result["other"].append(pdu.hex(" "))
    connection.close()
    print(json.dumps(result))
    return 0


def load(host, port, conns, seconds, stop, ready, unit, address, values):
    expected = struct.pack(">BB", 3, 2 * len(values)) + b"".join(
        struct.pack(">H", v) for v in values)
    deadline = time.monotonic() + seconds
    stats = [{"reads": 0, "bad": 0, "errors": []} for _ in range(conns)]
    started = threading.Barrier(conns + 1, timeout=seconds)

    def worker(index):
        mine = stats[index]
        connection = None
        first = True
        while time.monotonic() < deadline and not os.path.exists(stop):
            try:
                if connection is None:
                    connection = modbus_raw.Connection(host, port)
                pdu = connection.request(read_pdu(address, len(values)), unit=unit, timeout=3)
                if pdu == expected:
                    mine["reads"] += 1
                else:
                    mine["bad"] += 1
                    if len(mine["errors"]) < 5:
                        mine["errors"].append(f"answer {pdu.hex(' ')}")
            except (OSError, modbus_raw.ModbusError, TimeoutError) as error:
                mine["bad"] += 1
                if len(mine["errors"]) < 5:
                    mine["errors"].append(f"{type(error).__name__}: {error}")
                if connection is not None:
                    connection.close()
                connection = None
                time.sleep(0.01)
            if first:
                first = False
                try:
                    started.wait()
                except threading.BrokenBarrierError:
                    pass
        if connection is not None:
            connection.close()

    threads = [threading.Thread(target=worker, args=(i,)) for i in range(conns)]
    for thread in threads:
        thread.start()
    try:
        started.wait()
    except threading.BrokenBarrierError:
        pass
    while any(thread.is_alive() for thread in threads) and time.monotonic() < deadline + 10:
        with open(ready + ".new", "w", encoding="utf-8") as file:
            file.write(f"{sum(s['reads'] for s in stats)}\n")
        os.replace(ready + ".new", ready)
        time.sleep(0.02)
    for thread in threads:
        thread.join(10)
    print(json.dumps({"reads": sum(s["reads"] for s in stats),
                      "bad": sum(s["bad"] for s in stats),
                      "per_connection": [s["reads"] for s in stats],
                      "errors": [e for s in stats for e in s["errors"]][:10],
                      "stopped_by_file": os.path.exists(stop)}))
    return 0


def refuse(host, port, hold, extra):
    held = []
    result = {"held_ok": 0, "refused": 0, "accepted": 0}
    for _ in range(hold):
        connection = modbus_raw.Connection(host, port)
        try:
            if connection.request(read_pdu(0, 1), timeout=3)[0] == 3:
                result["held_ok"] += 1
        except (OSError, modbus_raw.ModbusError, TimeoutError):
            pass
        held.append(connection)
    for _ in range(extra):
        try:
            connection = modbus_raw.Connection(host, port)
        except OSError:
            result["refused"] += 1
            continue
        try:
            connection.request(read_pdu(0, 1), timeout=3)
            result["accepted"] += 1
        except (OSError, modbus_raw.ModbusError):
            result["refused"] += 1  # closed (or reset) without an answer
        except TimeoutError:
            result["accepted"] += 1
        connection.close()
    for connection in held:
        connection.close()
    print(json.dumps(result))
    return 0


def same_tid(host, port, tid, pdus):
    connection = modbus_raw.Connection(host, port)
    for pdu in pdus:
        try:
            connection.send(modbus_raw.mbap(tid, 1, bytes.fromhex(pdu)))
            got_tid, _, _, answer = connection.receive_frame(timeout=3)
            print(answer.hex() if got_tid == tid else f"tid {got_tid}: {answer.hex()}")
        except (modbus_raw.ModbusError, ConnectionResetError, BrokenPipeError):
            print("closed")
            break
        except TimeoutError:
            print("no answer")
    connection.close()
    return 0


def slow_device(port, delay):
    """FC 3: register N holds N; other functions: exception 01. Each request is logged."""
    listener = socket.socket(socket.AF_INET, socket.SOCK_STREAM)
    listener.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
    listener.bind(("127.0.0.1", port))
    listener.listen(16)
    print(f"listening on 127.0.0.1:{listener.getsockname()[1]}", flush=True)
    lock = threading.Lock()

    def serve(client, peer):
        with lock:
            print(f"connection_opened peer={peer[0]}:{peer[1]}", flush=True)
        buffer = b""
        while True:
            try:
                data = client.recv(4096)
            except OSError:
                break
            if not data:
                break
            buffer += data
            while True:
                frame, buffer = modbus_raw.split_frame(buffer)
                if frame is None:
                    break
                transaction, protocol, unit, pdu = frame
                with lock:
                    print(f"request unit={unit} function={pdu[0]}", flush=True)
                time.sleep(delay)
                if pdu[0] == 3 and len(pdu) == 5 and pdu[1:3] == b"\x03\xe7":
                    answer = bytes([3, 4, 0, 1, 0, 2])  # 2 registers for any quantity
                elif pdu[0] == 3 and len(pdu) == 5:
                    address, count = struct.unpack(">HH", pdu[1:5])
                    answer = struct.pack(">BB", 3, 2 * count) + b"".join(
                        struct.pack(">H", (address + i) & 0xFFFF) for i in range(count))
                else:
                    answer = bytes([pdu[0] | 0x80, 1])
                try:
                    client.sendall(modbus_raw.mbap(transaction, unit, answer, protocol))
                except OSError:
                    break
        client.close()

    listener.settimeout(1.0)
    deadline = time.monotonic() + 600  # bounded: the test kills it long before
    while time.monotonic() < deadline:
        try:
            client, peer = listener.accept()
        except socket.timeout:
            continue
        threading.Thread(target=serve, args=(client, peer), daemon=True).start()
    return 0


def flood(source, host, port, count):
    """Connections a server accepts and then closes at once are the refused ones."""
    import resource

    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    if soft < count + 64:
        resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, count + 64), hard))
    held, failed = [], 0
    for _ in range(count):
        try:
            held.append(socket.create_connection((host, port), timeout=3,
                                                 source_address=(source, 0)))
        except OSError:
            failed += 1
    closed = 0
    deadline = time.monotonic() + 5
    for connection in held:
        connection.settimeout(max(0.01, deadline - time.monotonic()))
        try:
            if connection.recv(1) == b"":
                closed += 1
        except socket.timeout:
            pass
        except OSError:
            closed += 1
    for connection in held:
        connection.close()
    print(json.dumps({"opened": len(held), "closed": closed, "failed": failed}))
    return 0


def greedy(source, host, port, conns, each, unit, pdu):
    connections = [modbus_raw.Connection(host, port, timeout=5, source=source)
                   for _ in range(conns)]
    for index, connection in enumerate(connections):
        frames = b"".join(modbus_raw.mbap(index * 1000 + i, unit, pdu) for i in range(each))
        connection.send(frames)
    answers = {}
    for connection in connections:
        for _ in range(each):
            try:
                _, _, _, answer = connection.receive_frame(timeout=5)
            except (TimeoutError, modbus_raw.ModbusError, OSError):
                answers["none"] = answers.get("none", 0) + 1
                continue
            key = str(answer[1]) if answer[0] & 0x80 else "0"
            answers[key] = answers.get(key, 0) + 1
        connection.close()
    print(json.dumps(answers, sort_keys=True))
    return 0


def quiet(source, host, port, count, unit):
    connection = modbus_raw.Connection(host, port, timeout=5, source=source)
    normal, slowest = 0, 0.0
    for i in range(count):
        start = time.monotonic()
        connection.send(modbus_raw.mbap(i + 1, unit, read_pdu(i, 1)))
        try:
            tid, _, _, answer = connection.receive_frame(timeout=5)
            if tid == i + 1 and answer[0] == 3:
                normal += 1
        except (TimeoutError, modbus_raw.ModbusError, OSError):
            pass
        slowest = max(slowest, time.monotonic() - start)
    connection.close()
    print(json.dumps({"normal": normal, "slowest_ms": int(slowest * 1000)}))
    return 0


def main(argv):
    if len(argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    command, args = argv[1], argv[2:]
    numbers = lambda items: [int(item, 0) for item in items]  # noqa: E731
    if command == "audit-check":
        return audit_check(args)
    if command == "select":
        return select(args[0], args[1:])
    if command == "get":
        return select(args[0], args[2:], key=args[1])
    if command == "syslog-recv":
        return syslog_recv(args[0], args[1], float(args[2]))
    if command == "syslog-check":
        return syslog_check(args[0], args[1], args[2:])
    if command == "scrape":
        return scrape(args[0], args[1])
    if command == "status":
        print(fetch(args[0])[0])
        return 0
    if command == "burst":
        return burst(args[0], int(args[1]), int(args[2]), int(args[3]), numbers(args[4:]))
    if command == "until-closed":
        return until_closed(args[0], int(args[1]), int(args[2]), int(args[3]), numbers(args[4:]))
    if command == "load":
        return load(args[0], int(args[1]), int(args[2]), float(args[3]), args[4], args[5],
                    int(args[6]), int(args[7]), numbers(args[8:]))
    if command == "refuse":
        return refuse(args[0], int(args[1]), int(args[2]), int(args[3]))
    if command == "same-tid":
        return same_tid(args[0], int(args[1]), int(args[2]), args[3:])
    if command == "flood":
        return flood(args[0], args[1], int(args[2]), int(args[3]))
    if command == "greedy":
        return greedy(args[0], args[1], int(args[2]), int(args[3]), int(args[4]), int(args[5]),
                      bytes.fromhex(args[6]))
    if command == "quiet":
        return quiet(args[0], args[1], int(args[2]), int(args[3]), int(args[4]))
    if command == "slow-device":
        return slow_device(int(args[0]), float(args[1]))
    print(f"watch_tool.py: unknown command {command}", file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main(sys.argv))
