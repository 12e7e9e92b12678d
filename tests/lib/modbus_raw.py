#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""Modbus/TCP framing for the test scripts, standard library only: MBAP headers built and
split (mbap, mbap_header, split_frame, for clients and for the fake servers the tests run) and a
client on plain sockets (Connection).

Frames by the MBAP length, never by the function code. Every wait has a deadline. Used as a
module by the Python test programs (which put tests/lib on sys.path), and from the shell:

    modbus_raw.py HOST PORT write-registers ADDRESS VALUE...    (FC 16)
    modbus_raw.py HOST PORT read-registers ADDRESS COUNT        (FC 3; prints the values)
    modbus_raw.py HOST PORT write-coils ADDRESS BIT...          (FC 15)
    modbus_raw.py HOST PORT read-coils ADDRESS COUNT            (FC 1; prints 0/1 values)
    modbus_raw.py HOST PORT read-inputs ADDRESS COUNT           (FC 4)
    modbus_raw.py HOST PORT pipeline-write ADDRESS COUNT        (COUNT FC 6 writes in one send:
                                                                 register ADDRESS+i = i+1; waits
                                                                 for every acknowledgement)
    modbus_raw.py HOST PORT pdu HEX [UNIT]                      (any request PDU; prints the
                                                                 response PDU in hex)

Exits 0 on a normal response, 1 on an exception response or any failure (with a message).
"""
import socket
import struct
import sys
import time

TIMEOUT = 3.0


class ModbusError(Exception):
    pass


def mbap(transaction_id, unit_id, pdu, protocol_id=0, length=None):
    """An ADU: the 7-byte MBAP header (length from the PDU unless given) and the PDU."""
    if length is None:
        length = len(pdu) + 1
    return struct.pack(">HHHB", transaction_id, protocol_id, length, unit_id) + pdu


def mbap_header(header):
    """(transaction id, protocol id, length, unit id) of the first 7 bytes of an ADU."""
    return struct.unpack(">HHHB", header[:7])


def split_frame(buffer):
    """The first ADU of `buffer`, framed by its MBAP length: ((transaction id, protocol id,
    unit id, pdu), the bytes after it), or (None, buffer) while the ADU is incomplete."""
    if len(buffer) < 7:
        return None, buffer
    transaction, protocol, length, unit = mbap_header(buffer)
    if len(buffer) < 6 + length:
        return None, buffer
    return (transaction, protocol, unit, buffer[7 : 6 + length]), buffer[6 + length :]


def read_request(function, address, quantity):
    return struct.pack(">BHH", function, address, quantity)


def write_registers_request(address, values):
    return struct.pack(">BHHB", 16, address, len(values), 2 * len(values)) + b"".join(
        struct.pack(">H", value) for value in values
    )


def write_coils_request(address, bits):
    packed = bytearray((len(bits) + 7) // 8)
    for index, bit in enumerate(bits):
        if bit:
            packed[index // 8] |= 1 << (index % 8)
    return struct.pack(">BHHB", 15, address, len(bits), len(packed)) + bytes(packed)


def registers_of(pdu):
    """The values of an FC 3/4/23 response PDU."""
    if len(pdu) < 2 or pdu[1] != len(pdu) - 2 or pdu[1] % 2:
        raise ModbusError(f"malformed register response {pdu.hex(' ')}")
    return list(struct.unpack(f">{pdu[1] // 2}H", pdu[2:]))


def bits_of(pdu, count):
    """The first `count` bits of an FC 1/2 response PDU."""
    if len(pdu) < 2 or pdu[1] != len(pdu) - 2 or pdu[1] != (count + 7) // 8:
        raise ModbusError(f"malformed bit response {pdu.hex(' ')}")
    return [(pdu[2 + i // 8] >> (i % 8)) & 1 for i in range(count)]


class Connection:
    """One Modbus/TCP connection with a receive buffer framed by MBAP length."""

    def __init__(self, host, port, timeout=TIMEOUT, source=None):
        self.socket = socket.create_connection(
            (host, port), timeout=timeout, source_address=(source, 0) if source else None
        )
        self.socket.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
        self.buffer = b""
        self.next_transaction = 1

    def close(self):
        self.socket.close()

    def send(self, data):
        self.socket.sendall(data)

    def _fill(self, deadline):
        """Reads more bytes; returns False at end of stream. Raises TimeoutError at the
        deadline and ConnectionResetError if the peer reset the connection."""
        left = deadline - time.monotonic()
        if left <= 0:
            raise TimeoutError("no data before the deadline")
        self.socket.settimeout(left)
        try:
            data = self.socket.recv(4096)
        except socket.timeout as error:
            raise TimeoutError("no data before the deadline") from error
        if not data:
            return False
        self.buffer += data
        return True

    def receive_frame(self, timeout=TIMEOUT):
        """The next (transaction id, protocol id, unit id, pdu). Raises ModbusError on end of
        stream or a broken header, TimeoutError at the deadline."""
        deadline = time.monotonic() + timeout
        while True:
            if len(self.buffer) >= 7:
                transaction, protocol, length, unit = mbap_header(self.buffer)
                if length < 2 or length > 254:
                    raise ModbusError(f"response with MBAP length {length}")
                if len(self.buffer) >= 6 + length:
                    pdu = self.buffer[7 : 6 + length]
                    self.buffer = self.buffer[6 + length :]
                    return transaction, protocol, unit, pdu
            if not self._fill(deadline):
                raise ModbusError("connection closed by the server")

    def request(self, pdu, unit=1, timeout=TIMEOUT):
        """Sends one request and returns the response PDU, checking the echoed header."""
        transaction = self.next_transaction
        self.next_transaction = (self.next_transaction + 1) & 0xFFFF
        self.send(mbap(transaction, unit, pdu))
        got_transaction, protocol, got_unit, response = self.receive_frame(timeout)
        if (got_transaction, protocol, got_unit) != (transaction, 0, unit):
            raise ModbusError(
                f"header mismatch: sent tid {transaction} unit {unit}, got tid "
                f"{got_transaction} protocol {protocol} unit {got_unit}"
            )
        return response

    def closed_by_peer(self, timeout):
        """True once the server closes (end of stream or reset) before `timeout` seconds;
        False if it is still open then. Any data that arrives meanwhile is kept."""
        deadline = time.monotonic() + timeout
        try:
            while self._fill(deadline):
                pass
            return True
        except (ConnectionResetError, BrokenPipeError):
            return True
        except TimeoutError:
            return False


def expect_normal(pdu, function):
    if not pdu or pdu[0] != function:
        raise ModbusError(f"expected a normal FC {function} response, got {pdu.hex(' ')}")
    return pdu


def main(argv):
    if len(argv) < 5:
        print(__doc__, file=sys.stderr)
        return 2
    host, port, command = argv[1], int(argv[2]), argv[3]
    try:
        connection = Connection(host, port)
        try:
            if command == "pdu":
                unit = int(argv[5]) if len(argv) > 5 else 1
                print(connection.request(bytes.fromhex(argv[4]), unit).hex())
                return 0
            numbers = [int(value, 0) for value in argv[4:]]
            if command == "write-registers":
                request = write_registers_request(numbers[0], numbers[1:])
                expect_normal(connection.request(request), 16)
            elif command == "write-coils":
                expect_normal(connection.request(write_coils_request(numbers[0], numbers[1:])), 15)
            elif command in ("read-registers", "read-inputs"):
                function = 3 if command == "read-registers" else 4
                pdu = expect_normal(
                    connection.request(read_request(function, numbers[0], numbers[1])), function
                )
                print(" ".join(str(value) for value in registers_of(pdu)))
            elif command == "pipeline-write":
                address, count = numbers[0], numbers[1]
                connection.send(
                    b"".join(
                        mbap(i & 0xFFFF, 1, struct.pack(">BHH", 6, address + i, i + 1))
                        for i in range(count)
                    )
                )
                for i in range(count):
                    transaction, _, _, pdu = connection.receive_frame()
                    echo = struct.pack(">BHH", 6, address + i, i + 1)
                    if transaction != i & 0xFFFF or pdu != echo:
                        raise ModbusError(f"write {i}: tid {transaction}, answer {pdu.hex(' ')}")
            elif command == "read-coils":
                pdu = expect_normal(connection.request(read_request(1, numbers[0], numbers[1])), 1)
                print(" ".join(str(bit) for bit in bits_of(pdu, numbers[1])))
            else:
                print(f"modbus_raw.py: unknown command {command}", file=sys.stderr)
                return 2
        finally:
            connection.close()
    except (OSError, ModbusError, TimeoutError, IndexError, ValueError) as error:
        print(f"modbus_raw.py {command}: {error}", file=sys.stderr)
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv))
