#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pymodbus 3.0 (Debian's python3-pymodbus), a widely used Python client, against `mbsec serve`.

    /usr/bin/python3 test_pymodbus_client.py HOST PORT

The server is the default simulator (any unit id, four tables of 65536 entries, all zero at
start, FC 43/14 vendor "mbsec"). Writes values with every write function pymodbus offers and
reads them back, reads the read-only tables, asks for the device identification and the server
id, and checks the exceptions pymodbus reports. Prints one "ok"/"not ok" line per check; exits 0
only if every check passed, 77 (skipped) if pymodbus is not installed.

pymodbus 3.0 API notes: the client methods take `slave=` (the old `unit=` is still accepted with
an error log line), while the request classes used with client.execute() take `unit=`; the
default unit id is 0, which a TCP server must answer like any other.
"""
import logging
import sys

SKIP = 77

try:
    from pymodbus.client import ModbusTcpClient
    from pymodbus.diag_message import ReturnQueryDataRequest
    from pymodbus.mei_message import ReadDeviceInformationRequest
    from pymodbus.other_message import ReadExceptionStatusRequest, ReportSlaveIdRequest
    from pymodbus.pdu import ExceptionResponse
    from pymodbus.register_read_message import ReadWriteMultipleRegistersRequest
    from pymodbus.register_write_message import MaskWriteRegisterRequest
except ImportError as error:
    print(f"SKIP: pymodbus is not installed ({error}): apt-get install python3-pymodbus")
    sys.exit(SKIP)

UNIT = 1
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


def normal(response, description):
    """A response that must not be an error; returns it, or None after reporting."""
    if response is None or response.isError():
        report(False, f"{description}: got {response}")
        return None
    return response


def expect_values(description, response, attribute, expected):
    response = normal(response, description)
    if response is None:
        return
    actual = list(getattr(response, attribute))[: len(expected)]
    if not report(actual == list(expected), description):
        print(f"    expected {list(expected)}\n    actual   {actual}")


def expect_exception(description, response, function, code):
    ok = (
        isinstance(response, ExceptionResponse)
        and response.original_code == function
        and response.exception_code == code
    )
    report(ok, f"{description} -> exception {code:02X} (got {response})")


def check_bits(client):
    expect_values(
        "FC 1 coils 0..15 start at 0",
        client.read_coils(0, 16, slave=UNIT),
        "bits",
        [False] * 16,
    )
    normal(client.write_coil(10, True, slave=UNIT), "FC 5 write coil 10 on")
    expect_values(
        "FC 5 then FC 1: coil 10 on, 9 and 11 off",
        client.read_coils(9, 3, slave=UNIT),
        "bits",
        [False, True, False],
    )
    pattern = [(i % 3 == 0) != (i % 7 == 0) for i in range(37)]
    normal(client.write_coils(1000, pattern, slave=UNIT), "FC 15 write 37 coils at 1000")
    expect_values(
        "FC 15 then FC 1: 37 coils read back",
        client.read_coils(1000, 37, slave=UNIT),
        "bits",
        pattern,
    )
    normal(client.write_coil(1000, False, slave=UNIT), "FC 5 write coil 1000 off")
    expect_values(
        "FC 5 off then FC 1: coil 1000 off, 1001 unchanged",
        client.read_coils(1000, 2, slave=UNIT),
        "bits",
        [False, pattern[1]],
    )
    expect_values(
        "FC 2 discrete inputs read 0 (read only)",
        client.read_discrete_inputs(0, 40, slave=UNIT),
        "bits",
        [False] * 40,
    )
    expect_values(
        "FC 2 the last 8 discrete inputs (65528..65535) read 0",
        client.read_discrete_inputs(65528, 8, slave=UNIT),
        "bits",
        [False] * 8,
    )


def check_registers(client):
    normal(client.write_register(100, 0x1234, slave=UNIT), "FC 6 write register 100")
    expect_values(
        "FC 6 then FC 3: register 100 = 0x1234",
        client.read_holding_registers(99, 3, slave=UNIT),
        "registers",
        [0, 0x1234, 0],
    )
    values = [(i * 2654435761) & 0xFFFF for i in range(123)]
    normal(client.write_registers(2000, values, slave=UNIT), "FC 16 write 123 registers")
    expect_values(
        "FC 16 then FC 3: 123 registers read back (125 read, the last 2 still 0)",
        client.read_holding_registers(2000, 125, slave=UNIT),
        "registers",
        values + [0, 0],
    )
    expect_values(
        "FC 4 input registers read 0 (read only)",
        client.read_input_registers(0, 125, slave=UNIT),
        "registers",
        [0] * 125,
    )
    expect_values(
        "FC 4 the last input register (65535) reads 0",
        client.read_input_registers(65535, 1, slave=UNIT),
        "registers",
        [0],
    )

    # The spec's worked example: 0x12 AND 0xF2 OR 0x25 gives 0x17.
    normal(client.write_register(300, 0x12, slave=UNIT), "FC 6 write register 300 = 0x12")
    response = normal(
        client.mask_write_register(300, 0xF2, 0x25, unit=UNIT), "FC 22 mask write 300"
    )
    if response is not None:
        report(
            (response.address, response.and_mask, response.or_mask) == (300, 0xF2, 0x25),
            "FC 22 response echoes address and masks",
        )
    expect_values(
        "FC 22 then FC 3: 0x12 AND 0xF2 OR 0x25 = 0x17",
        client.read_holding_registers(300, 1, slave=UNIT),
        "registers",
        [0x17],
    )

    expect_values(
        "FC 23 write 3 at 400 then read 5 at 399: the write happens first",
        client.readwrite_registers(
            read_address=399,
            read_count=5,
            write_address=400,
            write_registers=[7, 8, 9],
            unit=UNIT,
        ),
        "registers",
        [0, 7, 8, 9, 0],
    )


def check_identification(client):
    response = normal(
        client.execute(ReadDeviceInformationRequest(read_code=1, object_id=0, unit=UNIT)),
        "FC 43/14 read device identification (basic)",
    )
    if response is not None:
        information = response.information
        report(information.get(0) == b"mbsec", f"FC 43/14 VendorName is b'mbsec' ({information})")
        report(
            all(key in information for key in (0, 1, 2)),
            "FC 43/14 basic: objects 0, 1 and 2 present",
        )
    response = normal(
        client.execute(ReadDeviceInformationRequest(read_code=4, object_id=0, unit=UNIT)),
        "FC 43/14 individual access to object 0",
    )
    if response is not None:
        report(
            response.information == {0: b"mbsec"},
            f"FC 43/14 read code 4: only VendorName ({response.information})",
        )

    response = normal(
        client.execute(ReportSlaveIdRequest(unit=UNIT)), "FC 17 report server id"
    )
    if response is not None:
        report(
            response.identifier.startswith(b"mbsec") and response.status,
            f"FC 17 server id starts with b'mbsec', run indicator on ({response})",
        )

    response = normal(
        client.execute(ReturnQueryDataRequest(0x1234, unit=UNIT)), "FC 8/00 return query data"
    )
    if response is not None:
        report(list(response.message) == [0x1234], f"FC 8/00 echoes 0x1234 ({response.message})")

    response = normal(
        client.execute(ReadExceptionStatusRequest(unit=UNIT)), "FC 7 read exception status"
    )
    if response is not None:
        report(0 <= response.status <= 0xFF, f"FC 7 status byte {response.status}")


def check_exceptions(client):
    expect_exception(
        "FC 3 read 2 at 65535 (past the end)",
        client.read_holding_registers(65535, 2, slave=UNIT),
        0x03,
        0x02,
    )
    expect_exception(
        "FC 3 quantity 126", client.read_holding_registers(0, 126, slave=UNIT), 0x03, 0x03
    )
    expect_exception(
        "FC 1 quantity 2001", client.read_coils(0, 2001, slave=UNIT), 0x01, 0x03
    )
    expect_exception(
        "FC 16 write 2 at 65535",
        client.write_registers(65535, [1, 2], slave=UNIT),
        0x10,
        0x02,
    )
    expect_exception(
        "FC 43/14 individual access to an unknown object",
        client.execute(ReadDeviceInformationRequest(read_code=4, object_id=0x7F, unit=UNIT)),
        0x2B,
        0x02,
    )
    expect_values(
        "after the exceptions the connection is still served",
        client.read_holding_registers(100, 1, slave=UNIT),
        "registers",
        [0x1234],
    )


def check_units(client):
    # pymodbus's default unit id is 0; 0 and 255 are plain unit ids on TCP.
    for unit in (0, 255, 42):
        expect_values(
            f"unit {unit} is answered from the same tables",
            client.read_holding_registers(100, 1, slave=unit),
            "registers",
            [0x1234],
        )


def main():
    if len(sys.argv) != 3:
        print("usage: test_pymodbus_client.py HOST PORT", file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.CRITICAL)
    host, port = sys.argv[1], int(sys.argv[2])
    client = ModbusTcpClient(host, port=port, timeout=2, retries=0)
    if not client.connect():
        print(f"not ok - connect to {host}:{port}")
        return 1
    print(f"# pymodbus against {host}:{port}")
    try:
        check_bits(client)
        check_registers(client)
        check_identification(client)
        check_exceptions(client)
        check_units(client)
    finally:
        client.close()
    print(f"{passed} passed, {failed} failed")
    return 0 if failed == 0 and passed > 0 else 1


if __name__ == "__main__":
    sys.exit(main())
