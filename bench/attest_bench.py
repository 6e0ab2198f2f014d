"""What an edge attestation adds to a job run: the time of the box's fetch step (box/printing/job_run.py,
`fetch_attestation`) at the start of a job (an idle link) and at its end (right after the last line's ok), through
the bridge's firmware run by CPython behind a pseudo-terminal (firmware_bridge.edge_pty) to the virtual printer,
and the same step for a printer without a bridge (a capability lookup). Prints a table of median, 95th percentile
and longest over `--rounds` jobs of `--lines` lines each (defaults 20 and 200).

Wall-clock times on a shared 2-core machine: the bridge, the printer and the box are three processes on it. A
board's figure is the UART round trip (about 0.2 ms a line at 250,000 baud) plus the HMAC on its CPU.
"""

import argparse
import os
import pathlib
import statistics
import sys
import tempfile
import time

ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
sys.path.insert(0, ROOT)

from bench.stream_bench import print_table  # noqa: E402
from box.printing import job_run  # noqa: E402
from firmware_bridge import attestation, marlin, streamer  # noqa: E402
from firmware_bridge.virtual_printer import VirtualPrinterProcess  # noqa: E402
from tests.edge.bridged import bridged_printer  # noqa: E402
from tests.edge.harness import KEY  # noqa: E402


def job(lines: int, offset: int) -> list:
    return [(n + 1, "G1 X%d Y%d E0.05" % ((offset + n) % 100, n % 80)) for n in range(lines)]


class Hooks(job_run.JobRunHooks):
    """The default hooks (the box's own challenges), remembering each challenge and the last sequence."""

    def __init__(self) -> None:
        self.sent = None
        self.last = None

    def challenge(self) -> tuple:
        self.sent, origin = super().challenge()
        return self.sent, origin


def fetch_ms(connection, hooks: Hooks) -> float:
    """One fetch step, timed; the attestation it brings must verify (a fresh answer, not a stale line)."""
    began = time.perf_counter()
    fetched = job_run.fetch_attestation(connection, hooks)
    elapsed = (time.perf_counter() - began) * 1000
    if isinstance(fetched, Exception):
        raise SystemExit("the bridge gave no attestation: %s" % fetched)
    attestation.verify(fetched[0], KEY, hooks.sent, hooks.last)
    hooks.last = (fetched[0].boot, fetched[0].seq)
    return elapsed


def bridged(rounds: int, lines: int, directory: pathlib.Path) -> dict:
    starts, ends = [], []
    with bridged_printer(directory, "--move-time-scale", "0.01") as (port, _record):
        connection = streamer.connect(port, bauds=(250000,))
        hooks = Hooks()
        try:
            for n in range(rounds):
                starts.append(fetch_ms(connection, hooks))
                report = streamer.stream(connection, iter(job(lines, n)))
                if report.outcome != marlin.DONE:
                    raise SystemExit("a job did not finish: %s" % report.reason)
                ends.append(fetch_ms(connection, hooks))
        finally:
            connection.close()
    return {"start": starts, "end": ends}


def plain(rounds: int) -> list:
    with VirtualPrinterProcess() as printer:
        connection = streamer.connect(printer.path, bauds=(250000,))
        try:
            assert not attestation.is_bridge(connection.capabilities)
            hooks = job_run.JobRunHooks()
            times = []
            for _ in range(rounds):
                began = time.perf_counter()
                assert job_run.fetch_attestation(connection, hooks) is None
                times.append((time.perf_counter() - began) * 1000)
            return times
        finally:
            connection.close()


def row(name: str, times: list) -> dict:
    ordered = sorted(times)
    return {"what": name, "n": len(times), "median": statistics.median(ordered),
            "p95": ordered[min(len(ordered) - 1, int(0.95 * len(ordered)))], "max": ordered[-1]}  # fmt: skip


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--rounds", type=int, default=20)
    parser.add_argument("--lines", type=int, default=200)
    args = parser.parse_args()
    with tempfile.TemporaryDirectory() as directory:
        figures = bridged(args.rounds, args.lines, pathlib.Path(directory))
    rows = [
        row("fetch at job start (idle link), bridge on a pty", figures["start"]),
        row("fetch at job end (after the last ok), bridge on a pty", figures["end"]),
        row("the same step, printer without a bridge", plain(args.rounds)),
    ]
    ms = "{:.3f} ms".format
    print_table(rows, [("what", "attestation fetch", str), ("n", "jobs", str), ("median", "median", ms),
                       ("p95", "95th percentile", ms), ("max", "longest", ms)])  # fmt: skip


if __name__ == "__main__":
    main()
