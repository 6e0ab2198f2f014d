"""One benchmark run of our host link, in a process of its own so its CPU time and peak RSS are its own.

python bench/host_runner.py pty PORT FILE [--window N] [--rx-buffer BYTES]
Prints one JSON object: lines, seconds, cpu_seconds, peak_rss_kb, outcome.
"""

import argparse
import json
import resource
import time

from firmware_bridge import gcode, marlin, streamer


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


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("pty",))
    parser.add_argument("port")
    parser.add_argument("file")
    parser.add_argument("--window", type=int)
    parser.add_argument("--rx-buffer", type=int, default=128)
    args = parser.parse_args()
    result = run_pty(args)
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


if __name__ == "__main__":
    main()
