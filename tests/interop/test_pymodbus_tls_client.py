#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pymodbus 3.0's TLS clients (Debian's python3-pymodbus) against `mbsec serve`'s TLS listener.

    /usr/bin/python3 test_pymodbus_tls_client.py PKI_DIR HOST PORT

Run by tls_pymodbus.sh, which makes PKI_DIR with `mbsec cert` (ca/ca.crt, and client
certificates engineer, operator and norole) and starts the server with the policy of
tls_pymodbus.sh: on unit 1 an operator reads, an engineer writes holding registers 100..110
with FC 6/16 and values 0..500 only and does everything else freely; any other write touching
100..110 is denied (setpoints-guard); everything else is denied with 01.

Every client trusts our CA, checks the server's name (127.0.0.1, in its subjectAltName), sends
a client certificate that carries a role, and frames with ModbusSocketFramer: pymodbus's TLS
default, ModbusTlsFramer, sends a bare PDU without the MBAP header, which is not what the
Modbus/TCP Security specification says (the last check shows mbsec does not answer it).

The clients:
  - pymodbus.client.ModbusTlsClient, the blocking one. Its recv() (pymodbus 3.0.0rc1) waits
    in select() on the socket, which cannot see bytes OpenSSL has already decrypted: it reads
    an MBAP header (8 bytes) and then never sees the rest of the record it came in, and a TLS
    1.3 NewSessionTicket makes its non-blocking recv() raise SSLWantReadError. Against any
    TLS server, with the socket framer, it gets no answer. ReadingTlsClient replaces recv()
    (only that) with a blocking read with a deadline, which Python's ssl module completes.
  - pymodbus.client.AsyncModbusTlsClient, unchanged, once with TLS 1.3 and once limited to
    TLS 1.2 with the suite the specification requires for EC keys
    (ECDHE-ECDSA-AES128-GCM-SHA256).

Prints one "ok"/"not ok" line per check; exits 0 only if every check passed, 77 (skipped) if
pymodbus is not installed.
"""
import asyncio
import logging
import os
import socket
import ssl
import sys
import time

SKIP = 77
DEADLINE = 10.0  # seconds, for any one call
TIMEOUT = 2  # pymodbus's own per-request timeout (an int in 3.0)

try:
    from pymodbus.client import AsyncModbusTlsClient, ModbusTlsClient
    from pymodbus.exceptions import ConnectionException
    from pymodbus.framer.socket_framer import ModbusSocketFramer
    from pymodbus.framer.tls_framer import ModbusTlsFramer
    from pymodbus.mei_message import ReadDeviceInformationRequest
    from pymodbus.pdu import ExceptionResponse
except ImportError as error:
    print(f"SKIP: pymodbus is not installed ({error}): apt-get install python3-pymodbus")
    sys.exit(SKIP)

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


def call(function, *args, **kwargs):
    """The response of one request, or the exception it raised (reported as a failure)."""
    try:
        return function(*args, **kwargs)
    except Exception as error:  # pylint: disable=broad-except
        return error


def expect_values(description, response, attribute, expected):
    if isinstance(response, Exception) or response is None or response.isError():
        report(False, f"{description}: got {response!r}")
        return
    actual = list(getattr(response, attribute))[: len(expected)]
    if not report(actual == list(expected), description):
        print(f"    expected {list(expected)}\n    actual   {actual}")


def expect_normal(description, response):
    ok = not isinstance(response, Exception) and response is not None and not response.isError()
    report(ok, f"{description}" + ("" if ok else f": got {response!r}"))


def expect_exception(description, response, function, code):
    ok = (
        isinstance(response, ExceptionResponse)
        and response.original_code == function
        and response.exception_code == code
    )
    report(ok, f"{description} -> exception {code:02X}" + ("" if ok else f" (got {response!r})"))


class ReadingTlsClient(ModbusTlsClient):
    """ModbusTlsClient whose recv() lets the ssl module wait for the bytes (see the docstring)."""

    def recv(self, size):
        if not self.socket:
            raise ConnectionException(str(self))
        wanted = 4096 if size is None else size
        data = b""
        deadline = time.monotonic() + self.params.timeout
        while len(data) < wanted:
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                break
            self.socket.settimeout(remaining)
            try:
                chunk = self.socket.recv(wanted - len(data))
            except (socket.timeout, ssl.SSLWantReadError):
                break
            if not chunk:
                self.close()
                break
            data += chunk
            if size is None:
                break
        return data


class Blocking:
    """Runs an asyncio pymodbus client's calls one at a time, so the same checks drive both."""

    def __init__(self, client, loop):
        self.client = client
        self.loop = loop

    def __getattr__(self, name):
        attribute = getattr(self.client, name)
        if not callable(attribute):
            return attribute

        def run(*args, **kwargs):
            result = attribute(*args, **kwargs)
            if asyncio.iscoroutine(result) or asyncio.isfuture(result):
                return self.loop.run_until_complete(asyncio.wait_for(result, DEADLINE))
            return result

        return run


def ssl_context(pki, name, tls12_only=False):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_CLIENT)  # CERT_REQUIRED, hostname checked
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    if tls12_only:
        context.maximum_version = ssl.TLSVersion.TLSv1_2
        context.set_ciphers("ECDHE-ECDSA-AES128-GCM-SHA256")
    context.load_verify_locations(cafile=os.path.join(pki, "ca", "ca.crt"))
    context.load_cert_chain(os.path.join(pki, f"{name}.crt"), os.path.join(pki, f"{name}.key"))
    return context


def connect_sync(host, port, context):
    client = ReadingTlsClient(
        host, port=port, framer=ModbusSocketFramer, sslctx=context, timeout=TIMEOUT, retries=0
    )
    if not client.connect():
        return None, "connect failed"
    return client, f"{client.socket.version()} {client.socket.cipher()[0]}"


def connect_async(loop, host, port, context, framer=ModbusSocketFramer):
    client = AsyncModbusTlsClient(
        host, port=port, framer=framer, sslctx=context, timeout=TIMEOUT, retries=0
    )
    loop.run_until_complete(asyncio.wait_for(client.connect(), DEADLINE))
    if client.protocol is None or client.protocol.transport is None:
        loop.run_until_complete(client.close())
        return None, "connect failed"
    tls = client.protocol.transport.get_extra_info("ssl_object")
    return Blocking(client, loop), f"{tls.version()} {tls.cipher()[0]}"


def check_engineer(client, label, k):
    """The engineer's rights; client k uses its own registers so that runs do not collide."""
    setpoint = 100 + 3 * k
    expect_normal(f"{label}: FC 6 writes 321 to setpoint {setpoint}",
                  call(client.write_register, setpoint, 321, slave=1))
    expect_normal(f"{label}: FC 16 writes 400, 500 to {setpoint + 1}..{setpoint + 2}",
                  call(client.write_registers, setpoint + 1, [400, 500], slave=1))
    expect_values(f"{label}: FC 3 reads {setpoint}..{setpoint + 2} back",
                  call(client.read_holding_registers, setpoint, 3, slave=1),
                  "registers", [321, 400, 500])
    expect_exception(f"{label}: FC 6 of 501 to a setpoint (outside 0..500)",
                     call(client.write_register, setpoint, 501, slave=1), 0x06, 0x01)
    expect_exception(f"{label}: FC 16 of 501 among allowed values",
                     call(client.write_registers, setpoint, [1, 501], slave=1), 0x10, 0x01)
    expect_exception(f"{label}: FC 16 over 98..100 touches the setpoints (setpoints-guard)",
                     call(client.write_registers, 98, [1, 2, 3], slave=1), 0x10, 0x01)
    expect_values(f"{label}: the refused writes changed nothing",
                  call(client.read_holding_registers, setpoint, 3, slave=1),
                  "registers", [321, 400, 500])

    base = 1000 + 10 * k
    values = [0xBEEF, 600, 65535, 0, 1]
    expect_normal(f"{label}: FC 16 writes 5 registers at {base} (outside the setpoints, any "
                  f"value)", call(client.write_registers, base, values, slave=1))
    expect_values(f"{label}: FC 3 reads them back", call(client.read_holding_registers,
                  base, 5, slave=1), "registers", values)
    expect_values(
        f"{label}: FC 23 writes 7, 8, 9 at {base + 6} and reads {base + 5}..{base + 9}",
        call(client.readwrite_registers, read_address=base + 5, read_count=5,
             write_address=base + 6, write_registers=[7, 8, 9], unit=1),
        "registers", [0, 7, 8, 9, 0])
    expect_normal(f"{label}: FC 6 writes 0x12 to {base + 9}",
                  call(client.write_register, base + 9, 0x12, slave=1))
    expect_normal(f"{label}: FC 22 mask write AND 0xF2 OR 0x25",
                  call(client.mask_write_register, base + 9, 0xF2, 0x25, unit=1))
    expect_values(f"{label}: FC 22 gave 0x17", call(client.read_holding_registers,
                  base + 9, 1, slave=1), "registers", [0x17])

    coils = 200 + 20 * k
    pattern = [i % 3 == 0 for i in range(11)]
    expect_normal(f"{label}: FC 15 writes 11 coils at {coils}",
                  call(client.write_coils, coils, pattern, slave=1))
    expect_normal(f"{label}: FC 5 sets coil {coils + 1}",
                  call(client.write_coil, coils + 1, True, slave=1))
    expect_values(f"{label}: FC 1 reads the coils back", call(client.read_coils, coils, 11,
                  slave=1), "bits", [True, True] + pattern[2:])
    expect_values(f"{label}: FC 2 reads discrete inputs", call(client.read_discrete_inputs,
                  0, 8, slave=1), "bits", [False] * 8)
    expect_values(f"{label}: FC 4 reads input registers", call(client.read_input_registers,
                  0, 4, slave=1), "registers", [0] * 4)
    response = call(client.execute, ReadDeviceInformationRequest(read_code=1, object_id=0,
                                                                      unit=1))
    report(not isinstance(response, Exception) and not response.isError()
           and response.information.get(0) == b"mbsec",
           f"{label}: FC 43/14 VendorName b'mbsec' "
           f"({getattr(response, 'information', response)!r})")
    expect_exception(f"{label}: FC 3 to unit 2 (the policy says unit 1)",
                     call(client.read_holding_registers, 0, 1, slave=2), 0x03, 0x01)
    expect_values(f"{label}: after the exceptions the connection is still served",
                  call(client.read_holding_registers, setpoint, 1, slave=1),
                  "registers", [321])


def main():
    if len(sys.argv) != 4:
        print("usage: test_pymodbus_tls_client.py PKI_DIR HOST PORT", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.CRITICAL)
    pki, host, port = sys.argv[1], sys.argv[2], int(sys.argv[3])
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    async_clients = []

    def close_all():
        for client in async_clients:
            loop.run_until_complete(client.client.close())
        async_clients.clear()

    try:
        client, how = connect_sync(host, port, ssl_context(pki, "engineer"))
        if report(client is not None, f"ModbusTlsClient connects as engineer ({how})"):
            try:
                check_engineer(client, "ModbusTlsClient", 0)
            finally:
                client.close()

        client, how = connect_async(loop, host, port, ssl_context(pki, "engineer"))
        if report(client is not None and how.startswith("TLSv1.3"),
                  f"AsyncModbusTlsClient connects as engineer, TLS 1.3 ({how})"):
            async_clients.append(client)
            check_engineer(client, "AsyncModbusTlsClient TLS 1.3", 1)
        close_all()

        client, how = connect_async(loop, host, port,
                                    ssl_context(pki, "engineer", tls12_only=True))
        if report(client is not None and how == "TLSv1.2 ECDHE-ECDSA-AES128-GCM-SHA256",
                  f"AsyncModbusTlsClient connects as engineer, TLS 1.2 ({how})"):
            async_clients.append(client)
            check_engineer(client, "AsyncModbusTlsClient TLS 1.2", 2)
        close_all()

        client, how = connect_async(loop, host, port, ssl_context(pki, "operator"))
        if report(client is not None, f"AsyncModbusTlsClient connects as operator ({how})"):
            async_clients.append(client)
            expect_values("operator: FC 3 reads what the engineer wrote",
                          call(client.read_holding_registers, 100, 3, slave=1),
                          "registers", [321, 400, 500])
            expect_values("operator: FC 1 reads coils", call(client.read_coils, 200, 2,
                          slave=1), "bits", [True, True])
            expect_exception("operator: FC 6 write",
                             call(client.write_register, 0, 1, slave=1), 0x06, 0x01)
            expect_exception("operator: FC 16 write",
                             call(client.write_registers, 0, [1, 2], slave=1), 0x10, 0x01)
            expect_exception("operator: FC 5 write",
                             call(client.write_coil, 0, True, slave=1), 0x05, 0x01)
            expect_values("operator: register 0 still 0 after the refused writes",
                          call(client.read_holding_registers, 0, 1, slave=1),
                          "registers", [0])
        close_all()

        client, how = connect_async(loop, host, port, ssl_context(pki, "norole"))
        if report(client is not None, f"AsyncModbusTlsClient connects without a role ({how})"):
            async_clients.append(client)
            expect_exception("no role: FC 3 read",
                             call(client.read_holding_registers, 100, 1, slave=1), 0x03, 0x01)
            expect_exception(
                "no role: FC 43/14",
                call(client.execute,
                     ReadDeviceInformationRequest(read_code=1, object_id=0, unit=1)),
                0x2B, 0x01)
        close_all()

        # pymodbus's default TLS framing: a bare PDU, no MBAP header. mbsec waits for a whole
        # MBAP header that never comes: pymodbus gets no answer.
        client, how = connect_async(loop, host, port, ssl_context(pki, "engineer"),
                                    framer=ModbusTlsFramer)
        if report(client is not None, f"AsyncModbusTlsClient with its default framer ({how})"):
            async_clients.append(client)
            response = call(client.read_holding_registers, 100, 1, slave=1)
            report(isinstance(response, Exception) or response is None or response.isError(),
                   "pymodbus's default TLS framer (no MBAP header) gets no answer from mbsec "
                   f"({type(response).__name__})")
        close_all()
    finally:
        close_all()
        loop.close()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
