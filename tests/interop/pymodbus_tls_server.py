#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""A pymodbus 3.0 Modbus/TCP Security server (Debian's python3-pymodbus) with known values.

    /usr/bin/python3 pymodbus_tls_server.py --cert FILE --key FILE --ca FILE
        [--tls-version 1.2|1.3] [--port PORT] [--lifetime SECONDS]

The peer for test_cli_pymodbus_tls.sh, run by run_with_peer.py. Binds 127.0.0.1:PORT (default
0: the kernel picks a free port), prints "listening on 127.0.0.1:PORT" on stdout once it
accepts connections, and exits by itself when its stdin closes or after --lifetime seconds
(default 60), whichever comes first. Loopback only.

TLS as Modbus/TCP Security asks: the server's certificate chain from --cert, client
certificates required (CERT_REQUIRED) and verified against --ca, TLS 1.2 at least (and at most
--tls-version, default 1.3). pymodbus's TLS server frames with ModbusTlsFramer by default, a
bare PDU without the MBAP header, which is not what the specification says: the socket
(MBAP) framer is passed explicitly. pymodbus does not look at the client's role.

Every unit id answers from one set of tables of TABLE_SIZE entries each, 0-based, as
pymodbus_server.py:

    coil i               i % 3 == 0
    discrete input i     i % 2 == 0
    holding register i   (1000 + i) & 0xFFFF
    input register i     (2000 + i) & 0xFFFF

Device identification: VendorName "pymodbus-tls-peer", ProductCode "PM-3-TLS",
MajorMinorRevision "3.0". Exits 77 (skipped) if pymodbus cannot be imported.
"""
import argparse
import asyncio
import logging
import os
import ssl
import sys
import threading

SKIP = 77
TABLE_SIZE = 1000

try:
    from pymodbus.datastore import (
        ModbusSequentialDataBlock,
        ModbusServerContext,
        ModbusSlaveContext,
    )
    from pymodbus.device import ModbusDeviceIdentification
    from pymodbus.framer.socket_framer import ModbusSocketFramer
    from pymodbus.server import StartAsyncTlsServer
except ImportError as error:
    print(f"SKIP: pymodbus is not installed ({error}): apt-get install python3-pymodbus")
    sys.stdout.flush()
    sys.exit(SKIP)

IDENTITY = {
    "VendorName": "pymodbus-tls-peer",
    "ProductCode": "PM-3-TLS",
    "MajorMinorRevision": "3.0",
}


def make_context():
    slave = ModbusSlaveContext(
        co=ModbusSequentialDataBlock(0, [i % 3 == 0 for i in range(TABLE_SIZE)]),
        di=ModbusSequentialDataBlock(0, [i % 2 == 0 for i in range(TABLE_SIZE)]),
        hr=ModbusSequentialDataBlock(0, [(1000 + i) & 0xFFFF for i in range(TABLE_SIZE)]),
        ir=ModbusSequentialDataBlock(0, [(2000 + i) & 0xFFFF for i in range(TABLE_SIZE)]),
        zero_mode=True,
    )
    return ModbusServerContext(slaves=slave, single=True)


def make_ssl_context(arguments):
    context = ssl.SSLContext(ssl.PROTOCOL_TLS_SERVER)
    context.minimum_version = ssl.TLSVersion.TLSv1_2
    context.maximum_version = (
        ssl.TLSVersion.TLSv1_2 if arguments.tls_version == "1.2" else ssl.TLSVersion.TLSv1_3
    )
    context.load_cert_chain(certfile=arguments.cert, keyfile=arguments.key)
    context.load_verify_locations(cafile=arguments.ca)
    context.verify_mode = ssl.CERT_REQUIRED
    return context


def exit_when_stdin_closes():
    """A daemon thread: the parent closing our stdin (or dying) ends the server."""
    try:
        while os.read(0, 4096):
            pass
    except OSError:
        pass
    os._exit(0)


async def serve(arguments):
    server = await StartAsyncTlsServer(
        context=make_context(),
        identity=ModbusDeviceIdentification(info_name=IDENTITY),
        address=("127.0.0.1", arguments.port),
        sslctx=make_ssl_context(arguments),
        framer=ModbusSocketFramer,
        defer_start=True,
        allow_reuse_address=True,
    )
    task = asyncio.create_task(server.serve_forever())
    await asyncio.wait_for(server.serving, timeout=10)
    bound = server.server.sockets[0].getsockname()
    print(f"listening on 127.0.0.1:{bound[1]}", flush=True)
    try:
        await asyncio.wait_for(task, timeout=arguments.lifetime)
    except asyncio.TimeoutError:
        print(f"lifetime of {arguments.lifetime} s over: exiting", file=sys.stderr, flush=True)


def main():
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--cert", required=True)
    parser.add_argument("--key", required=True)
    parser.add_argument("--ca", required=True)
    parser.add_argument("--tls-version", choices=("1.2", "1.3"), default="1.3")
    parser.add_argument("--port", type=int, default=0)
    parser.add_argument("--lifetime", type=float, default=60.0)
    arguments = parser.parse_args()
    # pymodbus 3.0 logs every exception response it sends and every closed connection (and
    # asyncio every refused handshake) as an error: keep quiet.
    logging.getLogger().setLevel(logging.CRITICAL)
    threading.Thread(target=exit_when_stdin_closes, daemon=True).start()
    asyncio.run(serve(arguments))
    sys.stdout.flush()
    os._exit(0)


if __name__ == "__main__":
    main()
