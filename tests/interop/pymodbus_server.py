#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A pymodbus 3.0 server (Debian's python3-pymodbus) with known values, for client_interop.

    /usr/bin/python3 pymodbus_server.py [--port PORT] [--lifetime SECONDS]

Binds 127.0.0.1:PORT (default 0: the kernel picks a free port), prints
"listening on 127.0.0.1:PORT" on stdout once it accepts connections, and exits by itself when
its stdin closes or after --lifetime seconds (default 60), whichever comes first. Loopback only.

Every unit id answers from one set of tables of TABLE_SIZE entries each, 0-based (zero_mode):

    coil i               i % 3 == 0
    discrete input i     i % 2 == 0
    holding register i   (1000 + i) & 0xFFFF
    input register i     (2000 + i) & 0xFFFF

Device identification: VendorName "pymodbus-peer", ProductCode "PM-3", MajorMinorRevision "3.0",
VendorUrl "https://example.com/pm", ProductName "interop peer", ModelName "PM-3-TCP",
UserApplicationName "client_interop". Exits 77 (skipped) if pymodbus cannot be imported.
"""
import argparse
import asyncio
import logging
import os
import sys
import threading

SKIP = 77
TABLE_SIZE = 10000

try:
    from pymodbus.datastore import (
        ModbusSequentialDataBlock,
        ModbusServerContext,
        ModbusSlaveContext,
    )
    from pymodbus.device import ModbusDeviceIdentification
    from pymodbus.server import StartAsyncTcpServer
except ImportError as error:
    print(f"SKIP: pymodbus is not installed ({error}): apt-get install python3-pymodbus")
    sys.stdout.flush()
    sys.exit(SKIP)

IDENTITY = {
    "VendorName": "pymodbus-peer",
    "ProductCode": "PM-3",
    "MajorMinorRevision": "3.0",
    "VendorUrl": "https://example.com/pm",
    "ProductName": "interop peer",
    "ModelName": "PM-3-TCP",
    "UserApplicationName": "client_interop",
}


def make_context():
    coils = [i % 3 == 0 for i in range(TABLE_SIZE)]
    discrete_inputs = [i % 2 == 0 for i in range(TABLE_SIZE)]
    holding = [(1000 + i) & 0xFFFF for i in range(TABLE_SIZE)]
    inputs = [(2000 + i) & 0xFFFF for i in range(TABLE_SIZE)]
    slave = ModbusSlaveContext(
        co=ModbusSequentialDataBlock(0, coils),
        di=ModbusSequentialDataBlock(0, discrete_inputs),
        hr=ModbusSequentialDataBlock(0, holding),
        ir=ModbusSequentialDataBlock(0, inputs),
        zero_mode=True,
    )
    return ModbusServerContext(slaves=slave, single=True)


def exit_when_stdin_closes():
    """A daemon thread: the parent closing our stdin (or dying) ends the server."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    os._exit(0)


async def serve(port, lifetime):
    server = await StartAsyncTcpServer(
        context=make_context(),
        identity=ModbusDeviceIdentification(info_name=IDENTITY),
        address=("127.0.0.1", port),
        defer_start=True,
        allow_reuse_address=True,
    )
    task = asyncio.create_task(server.serve_forever())
    await asyncio.wait_for(server.serving, timeout=10)
    bound = server.server.sockets[0].getsockname()
    print(f"listening on 127.0.0.1:{bound[1]}", flush=True)
    try:
        await asyncio.wait_for(task, timeout=lifetime)
    except asyncio.TimeoutError:
        print(f"lifetime of {lifetime} s over: exiting", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=60.0)
    arguments = parser.parse_args()
    # Importing pymodbus 3.0 configures the root logger at WARNING, and it logs every
    # exception response it sends and every closed connection as an error: keep quiet.
    logging.getLogger().setLevel(logging.CRITICAL)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    asyncio.run(serve(arguments.port, arguments.lifetime))
    # Leave at once: pymodbus connection tasks may still be pending.
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
