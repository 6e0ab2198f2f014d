"""Under MicroPython: forward LINES lines through the bridge and report gc.mem_free() at the start and the end.

The box here only frames lines (gcode.frame) and sends the next one after each "ok", so what is measured is
the bridge and its link to the printer, not a second HostLink that the board never runs.

micropython -X heapsize=160K tests/edge/mp_heap.py LINES
Prints "HEAP start=<bytes> end=<bytes> lines=<n> executed=<n> e_um=<n>".
"""

import gc
import sys

from firmware_bridge import gcode
from firmware_bridge.edge.bridge import Bridge
from tests.edge.harness import KEY, ScriptedPrinter, job


class Run:
    def __init__(self) -> None:
        self.bridge = Bridge(key=KEY, boot=1)
        self.printer = ScriptedPrinter()
        self.now = 0.0

    def step(self, data: bytes = b"") -> bytes:
        self.now += 0.001
        bridge = self.bridge
        if data:
            bridge.box_data(data, self.now)
        bridge.tick(self.now)
        out = bridge.to_printer()
        if out:
            self.printer.receive(out, self.now)
        self.printer.tick(self.now)
        back = self.printer.output()
        if back:
            bridge.printer_data(back, self.now)
        return bridge.to_box()

    def send(self, count: int, first: int) -> int:
        """Send job(count) as lines first, first + 1, ...; returns the next line number."""
        number = first
        for command in job(count):
            out = self.step(gcode.frame(number, command))
            while b"ok" not in out:
                out = self.step()
            number += 1
        return number


def main(count: int) -> None:
    run = Run()
    while not run.bridge.firmware:
        run.step()
    run.step(b"N0 M110 N0*125\n")
    number = run.send(1000, 1)  # warm-up: every path of a forwarded line has run
    gc.collect()
    start = gc.mem_free()
    run.send(count, number)
    gc.collect()
    end = gc.mem_free()
    counters = run.bridge.counters
    print("HEAP start=%d end=%d lines=%d executed=%d e_um=%d" % (start, end, counters.lines, run.printer.executed,
          counters.e_um))  # fmt: skip


main(int(sys.argv[1]) if len(sys.argv) > 1 else 100000)
