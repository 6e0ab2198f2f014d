"""One benchmark run of our host link, in a process of its own so its CPU time and peak RSS are its own.

python bench/host_runner.py pty PORT FILE [--window N] [--rx-buffer BYTES]
python bench/host_runner.py sealed PORT JOB --data-dir DIR [--max-lines N]   (PORT "-": no printer, stream pass only)
Prints one JSON object: lines, seconds, cpu_seconds, peak_rss_kb, outcome (and for sealed jobs the verify pass's
seconds and CPU, and the time from opening the job to its first line).
"""

import argparse
import itertools
import json
import os
import resource
import time

from firmware_bridge import gcode, marlin, streamer
from provisioning import identity
from secure_print import opener
from secure_print.trust import TrustStore


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


def run_sealed(args) -> dict:
    """The box's path for a sealed job: verify pass, connect, stream pass (the print counter is left out)."""
    box = identity.load_or_create(args.data_dir)
    trust = TrustStore(os.path.join(args.data_dir, "trust.json"))
    with open(args.file, "rb") as handle:
        opened_at, cpu_opened = time.perf_counter(), cpu_seconds()
        job = opener.open_job(handle, box.sealing, box.box_id, trust, time.time())
        opener.verify_payload(job, handle)
        verify_seconds, verify_cpu = time.perf_counter() - opened_at, cpu_seconds() - cpu_opened
        connection = None
        if args.port != "-":
            connection = streamer.connect(
                args.port,
                bauds=(250000,),
                link_factory=lambda: marlin.HostLink(window=args.window, rx_buffer_bytes=args.rx_buffer),
            )
        commands = opener.stream_commands(job, handle, box.box_id, 1)
        first = next(commands)  # the first line is ready to go
        first_line = time.perf_counter() - opened_at
        commands = itertools.chain([first], commands)
        if args.max_lines:
            commands = itertools.islice(commands, args.max_lines)
        started, cpu_started = time.perf_counter(), cpu_seconds()
        if connection is None:
            lines = sum(1 for _ in commands)
            outcome = marlin.DONE
        else:
            report = streamer.stream(connection, commands)
            lines, outcome = report.lines_acknowledged, report.outcome
        seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
        if connection is not None:
            connection.close()
    return {
        "lines": lines,
        "seconds": seconds,
        "cpu_seconds": cpu,
        "outcome": outcome,
        "verify_seconds": verify_seconds,
        "verify_cpu_seconds": verify_cpu,
        "first_line_seconds": first_line,
    }


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("mode", choices=("pty", "sealed"))
    parser.add_argument("port")
    parser.add_argument("file")
    parser.add_argument("--window", type=int)
    parser.add_argument("--rx-buffer", type=int, default=128)
    parser.add_argument("--data-dir", help="the box's data directory (sealed mode)")
    parser.add_argument("--max-lines", type=int, default=0, help="stop after this many lines (sealed mode)")
    args = parser.parse_args()
    result = run_sealed(args) if args.mode == "sealed" else run_pty(args)
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


if __name__ == "__main__":
    main()
