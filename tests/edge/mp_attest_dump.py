"""Under MicroPython: run a job through the bridge and print the attestations it signs, one per line, for
tests/edge/test_edge_micropython.py to verify on CPython with the network's key.

micropython tests/edge/mp_attest_dump.py LINES
"""

import sys

from tests.edge.harness import Wire, job

count = int(sys.argv[1]) if len(sys.argv) > 1 else 1000
wire = Wire()
wire.connect()
print("START", wire.attest(b"\x11" * 16))
ended = wire.print_job(job(count))
print("OUTCOME", ended.outcome, ended.lines_acknowledged, wire.printer.executed)
print("END", wire.attest(b"\x22" * 16))
