"""One benchmark run of our host link, in a process of its own so its CPU time and peak RSS are its own.

python bench/host_runner.py pty PORT FILE [--window N] [--rx-buffer BYTES]
python bench/host_runner.py loopback FILE        (in-process virtual printer: the reader and link alone)
Prints one JSON object: lines, seconds, cpu_seconds, peak_rss_kb, outcome, and the printer's digest in loopback.
"""

import argparse
import hashlib
import json
import resource
import time

from firmware_bridge import gcode, marlin, streamer
from firmware_bridge.virtual_marlin import PrinterOptions, VirtualMarlin


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def run_pty(args) -> dict:
    connection = streamer.connect(
        args.port,
        bauds=(250000,),
        link_factory=lambda: marlin.HostLink(window=args.window, rx_buffer_bytes=args.rx_buffer),
    )
    with open(args.file, "rb") as handle:
        started, cpu_started = time.perf_counter(), cpu_seconds()
        report = streamer.stream(connection, gcode.iter_commands(handle))
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    connection.close()
    return {"lines": report.lines_acknowledged, "seconds": seconds, "cpu_seconds": cpu, "outcome": report.outcome}


def run_loopback(args) -> dict:
    digest = hashlib.sha256()
    recorded = [0]

    def record(command: bytes) -> None:
        recorded[0] += 1
        digest.update(command + b"\n")

    printer = VirtualMarlin(PrinterOptions(heat_rate=1e9, bufsize=16, rx_buffer=1024), record=record)
    link = marlin.HostLink(window=16, rx_buffer_bytes=1024)
    now = 0.0

    def exchange() -> list:
        out = link.data_to_send()
        if out:
            printer.receive_data(out, now)
        back = printer.output()
        return (link.receive_data(back, now) if back else []) + link.tick(now)

    while link.state != marlin.READY:
        now += 0.001
        exchange()
    started, cpu_started = time.perf_counter(), cpu_seconds()
    link.start_job()
    ended = None
    with open(args.file, "rb") as handle:
        commands = gcode.iter_commands(handle)
        while ended is None:
            now += 0.0001
            if link.state == marlin.PRINTING:
                streamer.hand_over_lines(link, commands)
            for event in exchange():
                if isinstance(event, marlin.JobEnded):
                    ended = event
    return {
        "lines": ended.lines_acknowledged,
        "seconds": time.perf_counter() - started,
        "cpu_seconds": cpu_seconds() - cpu_started,
        "outcome": ended.outcome,
        "job_commands": recorded[0],
        "job_sha256": digest.hexdigest(),
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("pty", "loopback"))
    parser.add_argument("port", nargs="?")
    parser.add_argument("file")
    parser.add_argument("--window", type=int)
    parser.add_argument("--rx-buffer", type=int, default=128)
    args = parser.parse_args()
    result = run_pty(args) if args.mode == "pty" else run_loopback(args)
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


if __name__ == "__main__":
    main()
