#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pymodbus 3.0 (Debian's python3-pymodbus) speaking Modbus ASCII on a serial line, for
test_ascii_pymodbus.sh: another implementation of ASCII to check mbsec's against.

    pymodbus_ascii.py client PATH      a master: writes holding registers 20, 21 of unit 1 as
                                       100 and 200, reads 10..12 and 20..21 back, asks unit 9,
                                       and prints one line per step ("read 10 7 8 9")
    pymodbus_ascii.py server PATH      a slave answering unit 1: holding register i holds
                                       1000 + i (0-based); prints "serving PATH", exits after
                                       60 s or when stdin closes

115200 8N1 (a pseudo-terminal has no parity). Exits 77 when pymodbus or pyserial is missing.
"""
import sys
import threading
import os

SKIP = 77
try:
    from pymodbus.client import ModbusSerialClient
    from pymodbus.datastore import (
        ModbusSequentialDataBlock,
        ModbusServerContext,
        ModbusSlaveContext,
    )
    from pymodbus.framer.ascii_framer import ModbusAsciiFramer
    from pymodbus.server import StartSerialServer
    import serial  # noqa: F401  (pyserial: pymodbus's serial transport)
except ImportError as error:
    print(f"SKIP: pymodbus or pyserial is missing ({error})", flush=True)
    sys.exit(SKIP)


def client(path):
    master = ModbusSerialClient(path, framer=ModbusAsciiFramer, baudrate=115200, parity="N",
                                timeout=1)
    if not master.connect():
        print("connect failed", flush=True)
        return 1
    answer = master.write_registers(20, [100, 200], slave=1)
    print("write", "error" if answer.isError() else "ok", flush=True)
    for address, count in ((10, 3), (20, 2)):
        answer = master.read_holding_registers(address, count, slave=1)
        values = "error" if answer.isError() else " ".join(str(v) for v in answer.registers)
        print("read", address, values, flush=True)
    answer = master.read_holding_registers(0, 1, slave=9)
    print("unit9", "error" if answer.isError() else "answered", flush=True)
    master.close()
    return 0


def server(path):
    holding = [(1000 + i) & 0xFFFF for i in range(100)]
    store = ModbusSlaveContext(hr=ModbusSequentialDataBlock(0, holding), zero_mode=True)
    context = ModbusServerContext(slaves={1: store}, single=False)
    # Ends with stdin (the test's pipe) or after 60 s.
    def watch():
        try:
            sys.stdin.read()
        finally:
            os._exit(0)
    threading.Thread(target=watch, daemon=True).start()
    threading.Timer(60, lambda: os._exit(0)).start()
    print("serving", path, flush=True)
    StartSerialServer(context=context, framer=ModbusAsciiFramer, port=path, baudrate=115200,
                      parity="N", timeout=0.1)
    return 0


if __name__ == "__main__":
    sys.exit(client(sys.argv[2]) if sys.argv[1] == "client" else server(sys.argv[2]))
