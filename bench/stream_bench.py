"""`make bench`: how fast and how cheaply G-code reaches a (virtual) printer, ours against Printrun's printcore.

Every run streams a tessellated vase (short G1 segments, about 28 bytes a line) over a real pseudo-terminal
to the virtual Marlin printer, which records a SHA-256 of every job command it executed; "exactly once"
means that digest and count equal the file's own. Each figure is the median of --runs runs. The host runs
in a process of its own, so its CPU time and peak RSS are its alone. A last table streams files of growing size
to show that the host's memory does not grow with the file.
"""

import argparse
import hashlib
import json
import os
import statistics
import subprocess
import sys
import tempfile
import time
import tty
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.make_gcode import write_vase  # noqa: E402
from firmware_bridge import gcode  # noqa: E402
from firmware_bridge.virtual_printer import VirtualPrinterProcess  # noqa: E402

OUT = ROOT / "bench" / "out"
WINDOWED_PRINTER = ("--advanced-ok", "--bufsize", "16", "--rx-buffer", "1024")


def vase(segments: int) -> Path:
    path = OUT / ("vase-%d.gcode" % segments)
    if not path.exists():
        OUT.mkdir(parents=True, exist_ok=True)
        with open(path, "w") as handle:
            write_vase(handle, segments)
    return path


def expected_digest(path: Path):
    digest = hashlib.sha256()
    count = 0
    with open(path, "rb") as handle:
        for _line, command in gcode.iter_commands(handle):
            digest.update(command.encode() + b"\n")
            count += 1
    return count, digest.hexdigest()


def one_run(host_command, printer_args, path: Path, expected, seed: int) -> dict:
    with tempfile.TemporaryDirectory() as scratch:
        summary_path = Path(scratch) / "summary.json"
        printer = VirtualPrinterProcess(
            "--summary", str(summary_path), "--heat-rate", "1e9", "--seed", str(seed), *printer_args
        )
        try:
            output = subprocess.run(
                host_command(printer.path, str(path)), capture_output=True, text=True, timeout=1800, cwd=ROOT
            )
        finally:
            printer.stop()
        summary = json.loads(summary_path.read_text())
    if output.returncode != 0:
        raise RuntimeError("host failed: %s" % output.stderr[-2000:])
    result = json.loads(output.stdout.strip().splitlines()[-1])
    result["exactly_once"] = (summary["job_commands"], summary["job_sha256"]) == expected
    result["lines"] = summary["job_commands"]
    return result


def scenario(name, host_command, printer_args, path: Path, error_rate: float, runs: int) -> dict:
    expected = expected_digest(path)
    results = []
    for run in range(runs):
        args = (*printer_args, "--checksum-error-rate", str(error_rate))
        results.append(one_run(host_command, args, path, expected, seed=run + 1))
        print(
            "  %s, %.0f%% errors, run %d: %.0f lines/s"
            % (name, error_rate * 100, run + 1, results[-1]["lines"] / results[-1]["seconds"]),
            file=sys.stderr,
        )
    rates = [result["lines"] / result["seconds"] for result in results]
    return {
        "host": name,
        "errors": "%.0f%%" % (error_rate * 100),
        "lines": expected[0],
        "lines_per_s": statistics.median(rates),
        "cpu_ms_per_1000": statistics.median(1e6 * r["cpu_seconds"] / max(r["lines"], 1) for r in results),
        "peak_rss_mb": statistics.median(r["peak_rss_kb"] / 1024 for r in results),
        "exactly_once": "%d/%d" % (sum(r["exactly_once"] for r in results), len(results)),
    }


def pty_floor(round_trips: int = 30000) -> float:
    """Round trips per second of a bare pseudo-terminal with a trivial echo: the ceiling for ping-pong."""
    master, slave = os.openpty()
    tty.setraw(slave)
    child = os.fork()
    if child == 0:
        os.close(slave)
        while True:
            data = os.read(master, 4096)
            if data == b"quit\n":
                os._exit(0)
            os.write(master, b"ok\n")
    os.close(master)
    line = b"N123456 G1 X140.072 Y110.472 E0.0400*99\n"
    started = time.perf_counter()
    for _ in range(round_trips):
        os.write(slave, line)
        os.read(slave, 4096)
    seconds = time.perf_counter() - started
    os.write(slave, b"quit\n")
    os.waitpid(child, 0)
    os.close(slave)
    return round_trips / seconds


def rss_row(size_mb: int) -> dict:
    """Peak memory of our host streaming a file of `size_mb` MB, windowed, over the pseudo-terminal."""
    segments = size_mb * 1024 * 1024 // 31
    path = vase(segments)
    expected = expected_digest(path)
    windowed = lambda port, file: [sys.executable, "bench/host_runner.py", "pty", port, file, "--rx-buffer", "1024"]  # noqa: E731
    result = one_run(windowed, WINDOWED_PRINTER, path, expected, seed=1)
    return {
        "file": "%d MB" % (path.stat().st_size // 1_000_000),
        "lines": result["lines"],
        "lines_per_s": result["lines"] / result["seconds"],
        "peak_rss_mb": result["peak_rss_kb"] / 1024,
        "exactly_once": result["exactly_once"],
    }


def print_table(rows, columns) -> None:
    widths = [max(len(title), *(len(fmt(row[key])) for row in rows)) for key, title, fmt in columns]
    print("| " + " | ".join(title.ljust(width) for (_k, title, _f), width in zip(columns, widths, strict=True)) + " |")
    print("|" + "|".join("-" * (width + 2) for width in widths) + "|")
    for row in rows:
        cells = [fmt(row[key]).rjust(width) for (key, _t, fmt), width in zip(columns, widths, strict=True)]
        print("| " + " | ".join(cells) + " |")


def print_figures(rows) -> None:
    """The benchmarks' closing table of (figure, target, measured) rows."""
    print("| figure | target | measured |")
    print("|---|---|---|")
    for row in rows:
        print("| %s | %s | %s |" % row)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--peer-python", help="python of the virtualenv with printrun (skip the peer if absent)")
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--segments", type=int, default=200000, help="G1 segments in our file")
    parser.add_argument("--peer-segments", type=int, default=20000, help="G1 segments for printcore (it is slow)")
    parser.add_argument("--rss-sizes", default="10,100", help="file sizes in MB for the memory table")
    args = parser.parse_args()

    ours = [sys.executable, "bench/host_runner.py", "pty"]
    rows = []
    big, small = vase(args.segments), vase(args.peer_segments)
    for error_rate in (0.0, 0.01):
        rows.append(scenario("ours, ping-pong", lambda port, path: [*ours, port, path], (), big, error_rate, args.runs))
        windowed = lambda port, path: [*ours, port, path, "--rx-buffer", "1024"]  # noqa: E731
        rows.append(scenario("ours, windowed (ADVANCED_OK)", windowed, WINDOWED_PRINTER, big, error_rate, args.runs))
        if args.peer_python:
            peer = lambda port, path: [args.peer_python, "bench/printcore_runner.py", port, path]  # noqa: E731
            rows.append(scenario("printcore 2.2.0 (Printrun)", peer, (), small, error_rate, args.runs))
    floor = pty_floor()

    print()
    print("Streaming G-code over a pseudo-terminal to the virtual Marlin printer (median of %d runs)" % args.runs)
    print()
    print_table(
        rows,
        [
            ("host", "host", str),
            ("errors", "checksum errors", str),
            ("lines", "lines", lambda v: f"{v:,}"),
            ("lines_per_s", "lines/s", lambda v: f"{v:,.0f}"),
            ("cpu_ms_per_1000", "host CPU ms / 1000 lines", lambda v: "%.1f" % v),
            ("peak_rss_mb", "host peak RSS MB", lambda v: "%.1f" % v),
            ("exactly_once", "exactly once", str),
        ],
    )
    print()
    print("Bare pseudo-terminal round trip with a trivial echo (the ceiling for ping-pong): %s/s" % f"{floor:,.0f}")
    print("Windowed runs: virtual printer as a 32-bit board (BUFSIZE 16, RX buffer 1024 bytes, ADVANCED_OK).")
    print()
    rss_rows = [rss_row(int(size)) for size in args.rss_sizes.split(",")]
    print("Host memory against file size (windowed, over the pseudo-terminal, one run each)")
    print()
    print_table(
        rss_rows,
        [
            ("file", "file", str),
            ("lines", "lines", lambda v: f"{v:,}"),
            ("lines_per_s", "lines/s", lambda v: f"{v:,.0f}"),
            ("peak_rss_mb", "peak RSS MB", lambda v: "%.1f" % v),
            ("exactly_once", "exactly once", str),
        ],
    )


if __name__ == "__main__":
    main()
