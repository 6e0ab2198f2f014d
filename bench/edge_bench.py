"""The edge bridge under the MicroPython unix port with a Pico's heap (-X heapsize=160K). Prints a table of:

- lines forwarded per second through the bridge (box framing each line and waiting for its ok; the printer a
  bare "ok" answerer, then the tests' Marlin-like printer with its own line checks), target >= 2,000;
- the same through the board's asyncio shell (edge.run.serve) on loopback TCP streams, with the box's HostLink
  and the printer in the same interpreter (a fifth of the lines);
- garbage collections over the run: automatic collection off and each collection timed when free memory falls
  under 16 KiB, so every pause is a whole collection of this heap; target: none longer than 5 ms;
- bytes allocated per forwarded line, and gc.mem_free() at the start and end.

A collection's time is wall-clock time on a shared machine, so another process can stretch one; the 99th
percentile and the count over 5 ms show whether the longest is the rule or an outlier. These are the unix
port's figures on this machine's CPU, not a Pico's: an RP2040 at 133 MHz runs the same
bytecode many times slower. `--lines N` (default 100,000).
"""

import argparse
import os
import subprocess
import sys

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.stream_bench import print_table  # noqa: E402
from tests.test_micropython_core import micropython  # noqa: E402

HEAP = "160K"


def measure(lines: int, which: str) -> dict:
    """One part of bench/edge_bench_mp.py in a fresh interpreter, so each has the whole heap to itself."""
    result = subprocess.run(
        [micropython(), "-X", "heapsize=" + HEAP, "bench/edge_bench_mp.py", str(lines), which],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=1800,
        env={**os.environ, "MICROPYPATH": ".frozen:."},
    )
    if result.returncode:
        raise SystemExit("the MicroPython side failed:\n" + result.stdout + result.stderr)
    return dict(line.split("=", 1) for line in result.stdout.split())


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--lines", type=int, default=100000)
    args = parser.parse_args()
    figures = {}
    for which in ("throughput", "asyncio", "gc"):
        figures.update(measure(args.lines, which))
    rows = []
    for name, peer in (("lean", "bare ok printer"), ("marlin", "Marlin-like printer")):
        rate = int(figures[name + "_lines"]) / float(figures[name + "_seconds"])
        rows.append({"what": "forwarded, %s" % peer, "value": "%.0f lines/s" % rate, "target": ">= 2,000 lines/s",
                     "met": "yes" if rate >= 2000 else "NO"})  # fmt: skip
    rate = int(figures["asyncio_lines"]) / float(figures["asyncio_seconds"])
    met = "yes" if rate >= 2000 else "NO"
    rows.append({"what": "asyncio shell, loopback streams, box and printer in the same interpreter",
                 "value": "%.0f lines/s" % rate, "target": ">= 2,000 lines/s", "met": met})  # fmt: skip
    longest = float(figures["gc_max_ms"])
    rows.append({"what": "collections over %s lines" % figures["gc_lines"], "value": figures["gc_collections"],
                 "target": "", "met": ""})  # fmt: skip
    rows.append({"what": "longest collection", "value": "%.3f ms" % longest, "target": "<= 5 ms",
                 "met": "yes" if longest <= 5 else "NO"})  # fmt: skip
    rows.append({"what": "99th percentile of collections", "value": "<= %s ms" % figures["gc_p99_ms"], "target": "",
                 "met": ""})  # fmt: skip
    rows.append({"what": "collections longer than 5 ms", "value": figures["gc_over_5ms"], "target": "0",
                 "met": "yes" if figures["gc_over_5ms"] == "0" else "NO"})  # fmt: skip
    rows.append({"what": "mean collection", "value": "%s ms" % figures["gc_mean_ms"], "target": "", "met": ""})
    rows.append({"what": "allocated per line", "value": "%s bytes" % figures["gc_bytes_per_line"], "target": "",
                 "met": ""})  # fmt: skip
    rows.append({"what": "gc.mem_free() start / end", "value": "%s / %s" % (figures["mem_free_start"],
                 figures["mem_free_end"]), "target": "", "met": ""})  # fmt: skip
    print()
    print("Edge bridge under the MicroPython unix port, heap %s, %d lines" % (HEAP, args.lines))
    print()
    print_table(rows, [(key, key, str) for key in ("what", "value", "target", "met")])


if __name__ == "__main__":
    main()
