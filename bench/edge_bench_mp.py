"""Run by MicroPython for bench/edge_bench.py: the bridge's throughput and garbage-collection pauses.

micropython -X heapsize=160K bench/edge_bench_mp.py LINES
Prints KEY=VALUE lines. The box here frames each line and sends the next after its "ok"; the printer answers
"ok" to each line it gets (`lean`) or is the tests' Marlin-like printer (`marlin`), so the lean figure is the
bridge's own cost.
"""

import gc
import sys
import time

from firmware_bridge import gcode
from firmware_bridge.edge.bridge import Bridge
from tests.edge.harness import KEY, ScriptedPrinter, job


class LeanPrinter:
    """Answers the handshake, then "ok" to every line: as little printer as a bridge can talk to."""

    def __init__(self) -> None:
        self._out = b""

    def receive(self, data: bytes, now: float) -> None:
        if b"M115" in data:
            self._out += b"FIRMWARE_NAME:Marlin 2.1.2.1\nCap:AUTOREPORT_TEMP:1\nok\n"
            return
        self._out += b"ok\n" * data.count(b"\n")

    def tick(self, now: float) -> None:
        pass

    def output(self) -> bytes:
        out = self._out
        self._out = b""
        return out


class Run:
    def __init__(self, printer) -> None:
        self.bridge = Bridge(key=KEY, boot=1)
        self.printer = printer
        self.now = 0.0

    def step(self, data: bytes = b"") -> bytes:
        self.now += 0.0005
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

    def connect(self) -> None:
        while not self.bridge.firmware:
            self.step()
        self.step(b"N0 M110 N0*125\n")
        for _ in range(20):
            self.step()

    def send(self, frames, on_line=None) -> int:
        count = 0
        for data in frames:
            out = self.step(data)
            while b"ok" not in out:
                out = self.step()
            count += 1
            if on_line is not None:
                on_line()
        return count


def frames(count: int):
    number = 1
    for command in job(count):
        yield gcode.frame(number, command)
        number += 1


def throughput(name: str, printer, count: int) -> None:
    run = Run(printer)
    run.connect()
    gc.collect()
    started = time.ticks_us()
    sent = run.send(frames(count))
    elapsed = time.ticks_diff(time.ticks_us(), started) / 1e6
    print("%s_lines=%d" % (name, sent))
    print("%s_seconds=%.3f" % (name, elapsed))
    assert run.bridge.counters.lines == count


def asyncio_throughput(count: int) -> None:
    """The board's asyncio shell on loopback streams, with the box's HostLink and the printer in the same process."""
    from tests.edge import mp_asyncio

    started = time.ticks_us()
    ended = mp_asyncio.run_job(count, faults=False)[0]
    elapsed = time.ticks_diff(time.ticks_us(), started) / 1e6
    assert ended.lines_acknowledged == count
    print("asyncio_lines=%d" % count)
    print("asyncio_seconds=%.3f" % elapsed)


def gc_pauses(count: int) -> None:
    """Collections as the heap fills: automatic collection off, and each full one timed when free memory runs low."""
    run = Run(LeanPrinter())
    run.connect()
    gc.collect()
    low = 16 * 1024
    stats = {"free": gc.mem_free(), "allocated": 0, "collections": 0, "max_us": 0, "total_us": 0, "over_5ms": 0}
    histogram = [0] * 101  # pauses in 0.1 ms steps; the last holds 10 ms and more

    def check() -> None:
        free = gc.mem_free()
        stats["allocated"] += stats["free"] - free
        if free < low:
            started = time.ticks_us()
            gc.collect()
            pause = time.ticks_diff(time.ticks_us(), started)
            stats["collections"] += 1
            stats["total_us"] += pause
            if pause > stats["max_us"]:
                stats["max_us"] = pause
            if pause > 5000:
                stats["over_5ms"] += 1
            histogram[min(pause // 100, 100)] += 1
            free = gc.mem_free()
        stats["free"] = free

    start_free = gc.mem_free()
    gc.disable()
    run.send(frames(count), check)
    stats["allocated"] += stats["free"] - gc.mem_free()
    gc.enable()
    gc.collect()
    collections = stats["collections"]
    print("gc_lines=%d" % count)
    print("gc_collections=%d" % collections)
    print("gc_max_ms=%.3f" % (stats["max_us"] / 1000))
    print("gc_mean_ms=%.3f" % (stats["total_us"] / collections / 1000 if collections else 0.0))
    print("gc_over_5ms=%d" % stats["over_5ms"])
    seen = 0
    for step in range(101):
        seen += histogram[step]
        if seen * 100 >= collections * 99:
            print("gc_p99_ms=%.1f" % ((step + 1) / 10))
            break
    print("gc_bytes_per_line=%.1f" % (stats["allocated"] / count))
    print("mem_free_start=%d" % start_free)
    print("mem_free_end=%d" % gc.mem_free())


def main(count: int, which: str) -> None:
    if which in ("all", "throughput"):
        throughput("lean", LeanPrinter(), count)
        throughput("marlin", ScriptedPrinter(), count)
    if which in ("all", "asyncio"):
        asyncio_throughput(count // 5)
    if which in ("all", "gc"):
        gc_pauses(count)


if __name__ == "__main__":
    main(int(sys.argv[1]) if len(sys.argv) > 1 else 100000, sys.argv[2] if len(sys.argv) > 2 else "all")
