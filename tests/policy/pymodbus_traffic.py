#!/usr/bin/python3
# SPDX-License-Identifier: MIT
"""pymodbus 3.0 (Debian's python3-pymodbus) as a plant's SCADA client: a fixed round of the
requests a poller and an operator make, against `mbsec serve` (the default simulator) or a
gateway in front of it, for the policy learning test to record and replay.

    /usr/bin/python3 pymodbus_traffic.py HOST PORT ROUNDS

Every request is one a device accepts (the interop script, tests/interop/, also sends ones it
refuses); every value written is read back and checked. Exits 0 when all were, 1 otherwise.
"""
import sys

from pymodbus.client import ModbusTcpClient
from pymodbus.diag_message import ReturnQueryDataRequest
from pymodbus.mei_message import ReadDeviceInformationRequest
from pymodbus.other_message import ReportSlaveIdRequest

UNIT = 1


def main():
    host, port, rounds = sys.argv[1], int(sys.argv[2]), int(sys.argv[3])
    client = ModbusTcpClient(host, port=port, timeout=3)
    if not client.connect():
        print(f"pymodbus_traffic: cannot connect to {host}:{port}")
        return 1
    failures = []

    def check(description, response, attribute=None, expected=None):
        if response is None or response.isError():
            failures.append(f"{description}: {response}")
            return
        if attribute is not None and list(getattr(response, attribute))[: len(expected)] != expected:
            failures.append(f"{description}: {getattr(response, attribute)} != {expected}")

    for n in range(rounds):
        setpoint = 200 + 10 * n
        # The poller: process values, alarms, a status word.
        check("FC 3 process values", client.read_holding_registers(0, 10, slave=UNIT))
        check("FC 4 measurements", client.read_input_registers(30, 8, slave=UNIT))
        check("FC 2 alarms", client.read_discrete_inputs(0, 16, slave=UNIT))
        check("FC 1 outputs", client.read_coils(0, 8, slave=UNIT))
        # The operator: a setpoint, a block of recipe values, a pump on.
        check("FC 6 setpoint", client.write_register(100, setpoint, slave=UNIT))
        check("FC 3 setpoint back", client.read_holding_registers(100, 1, slave=UNIT),
              "registers", [setpoint])
        recipe = [setpoint + i for i in range(4)]
        check("FC 16 recipe", client.write_registers(110, recipe, slave=UNIT))
        check("FC 3 recipe back", client.read_holding_registers(110, 4, slave=UNIT),
              "registers", recipe)
        check("FC 5 pump", client.write_coil(3, n % 2 == 0, slave=UNIT))
        check("FC 1 pump back", client.read_coils(3, 1, slave=UNIT), "bits", [n % 2 == 0])
        check("FC 15 valves", client.write_coils(8, [True, False, True], slave=UNIT))
        check("FC 22 mode bits", client.mask_write_register(120, 0x00F0, 0x0005, unit=UNIT))
        check("FC 23 handshake",
              client.readwrite_registers(read_address=130, read_count=2, write_address=130,
                                         write_registers=[n, setpoint], unit=UNIT),
              "registers", [n, setpoint])
    # Once: who is the device, is it alive.
    check("FC 43/14 identification",
          client.execute(ReadDeviceInformationRequest(read_code=1, object_id=0, unit=UNIT)))
    check("FC 17 server id", client.execute(ReportSlaveIdRequest(unit=UNIT)))
    check("FC 8/00 echo", client.execute(ReturnQueryDataRequest(message=0x1234, unit=UNIT)))
    client.close()
    for failure in failures:
        print(f"not ok - {failure}")
    print(f"pymodbus_traffic: {rounds} rounds, {len(failures)} failures")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
