"""`make bench`, sealed jobs: seal and verify throughput, time to first line, CPU per line against plaintext, memory.

Sealing and verifying run in this process on a 100 MB vase (median of --runs). Streaming runs our host in a
process of its own over a real pseudo-terminal to the virtual printer, the same file once as plaintext and once
sealed, so the CPU per line of the two can be compared; the sealed stream is checked line for line against the
box's own stream pass (watermark included). The memory row opens a 1 GB job: the whole verify pass, then the
whole stream pass (without a printer: a pty would need hours for 35 million lines).
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
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_bench import WINDOWED_PRINTER, expected_digest, one_run, print_table, vase  # noqa: E402
from firmware_bridge.virtual_printer import VirtualPrinterProcess  # noqa: E402
from provisioning import identity  # noqa: E402
from secure_print import opener, seal  # noqa: E402
from secure_print.license import License  # noqa: E402
from secure_print.signer_key import SignerKey  # noqa: E402
from secure_print.trust import TrustStore  # noqa: E402
from wire import keytext  # noqa: E402

OUT = ROOT / "bench" / "out"
MB = 1_000_000


def segments_for(size_mb: int) -> int:
    return size_mb * 1024 * 1024 // 31


class Box:
    """A box data directory that trusts one designer."""

    def __init__(self, directory: str) -> None:
        self.directory = directory
        self.identity = identity.load_or_create(directory)
        self.designer = SignerKey.generate(keytext.DESIGNER)
        TrustStore(os.path.join(directory, "trust.json")).add(self.designer.public_text)

    def seal(self, source: Path, target: Path) -> float:
        job_id, license_id, seed = seal.new_ids()
        terms = License(license_id, job_id, self.designer.public_text, [self.identity.box_id], None, 0, 2**33, seed)
        started = time.perf_counter()
        with open(source, "rb") as handle, open(target, "wb") as out:
            seal.seal(handle, out, self.designer, [self.identity.sealing_public], terms)
        return time.perf_counter() - started

    def verify(self, job: Path) -> float:
        trust = TrustStore(os.path.join(self.directory, "trust.json"))
        started = time.perf_counter()
        with open(job, "rb") as handle:
            opened = opener.open_job(handle, self.identity.sealing, self.identity.box_id, trust, time.time())
            opener.verify_payload(opened, handle)
        return time.perf_counter() - started

    def stream_digest(self, job: Path):
        """(count, SHA-256) of the commands the stream pass yields for print 1, as the printer must record them."""
        trust = TrustStore(os.path.join(self.directory, "trust.json"))
        digest, count = hashlib.sha256(), 0
        with open(job, "rb") as handle:
            opened = opener.open_job(handle, self.identity.sealing, self.identity.box_id, trust, time.time())
            opener.verify_payload(opened, handle)
            for _line, command in opener.stream_commands(opened, handle, self.identity.box_id, 1):
                digest.update(command.encode() + b"\n")
                count += 1
        return count, digest.hexdigest()


def throughput_row(box: Box, size_mb: int, runs: int) -> dict:
    source = vase(segments_for(size_mb))
    job = OUT / ("vase-%d.mipjob" % size_mb)
    seal_times = [box.seal(source, job) for _ in range(runs)]
    verify_times = [box.verify(job) for _ in range(runs)]
    gcode_mb, sealed_mb = source.stat().st_size / MB, job.stat().st_size / MB
    return {
        "gcode_mb": gcode_mb,
        "sealed_mb": sealed_mb,
        "seal_mb_s": gcode_mb / statistics.median(seal_times),
        "verify_s": statistics.median(verify_times),
        "verify_mb_s": sealed_mb / statistics.median(verify_times),
        "verify_gcode_mb_s": gcode_mb / statistics.median(verify_times),
    }


def host(mode: str, box: Box, window: bool, max_lines: int = 0):
    def command(port: str, path: str) -> list:
        line = [sys.executable, "bench/host_runner.py", mode, port, path]
        if mode == "sealed":
            line += ["--data-dir", box.directory]
            if max_lines:
                line += ["--max-lines", str(max_lines)]
        return [*line, "--rx-buffer", "1024"] if window else line

    return command


def streaming_rows(box: Box, segments: int, runs: int) -> list:
    plain = vase(segments)
    job = OUT / ("vase-%d-segments.mipjob" % segments)
    box.seal(plain, job)
    rows = []
    for window in (False, True):
        printer_args = WINDOWED_PRINTER if window else ()
        per_mode = {}
        for mode, path, expected in (
            ("plaintext", plain, expected_digest(plain)),
            ("sealed", job, box.stream_digest(job)),
        ):
            results = [one_run(host(mode if mode == "sealed" else "pty", box, window), printer_args, path, expected,
                               seed=run + 1) for run in range(runs)]  # fmt: skip
            cpu = statistics.median(1e6 * r["cpu_seconds"] / max(r["lines"], 1) for r in results)
            per_mode[mode] = cpu
            rows.append(
                {
                    "link": "windowed" if window else "ping-pong",
                    "job": mode,
                    "lines": results[0]["lines"],
                    "lines_per_s": statistics.median(r["lines"] / r["seconds"] for r in results),
                    "cpu": cpu,
                    "ratio": cpu / per_mode["plaintext"],
                    "exactly_once": "%d/%d" % (sum(r["exactly_once"] for r in results), len(results)),
                }
            )
    return rows


def first_line_row(box: Box, size_mb: int) -> dict:
    job = OUT / ("vase-%d.mipjob" % size_mb)
    result = sealed_over_pty(box, job, max_lines=20000)
    return {
        "job_mb": job.stat().st_size / MB,
        "verify_s": result["verify_seconds"],
        "first_line_s": result["first_line_seconds"],
        "peak_rss_mb": result["peak_rss_kb"] / 1024,
    }


def sealed_over_pty(box: Box, job: Path, max_lines: int) -> dict:
    with VirtualPrinterProcess("--heat-rate", "1e9") as printer:
        output = subprocess.run(
            host("sealed", box, False, max_lines)(printer.path, str(job)),
            capture_output=True, text=True, timeout=1800, cwd=ROOT,
        )  # fmt: skip
    if output.returncode != 0:
        raise RuntimeError("host failed: %s" % output.stderr[-2000:])
    return json.loads(output.stdout.strip().splitlines()[-1])


def memory_row(box: Box, size_mb: int) -> dict:
    source = vase(segments_for(size_mb))
    job = OUT / ("vase-%d.mipjob" % size_mb)
    if not job.exists() or job.stat().st_mtime < source.stat().st_mtime:
        box.seal(source, job)
    output = subprocess.run(
        [sys.executable, "bench/host_runner.py", "sealed", "-", str(job), "--data-dir", box.directory],
        capture_output=True, text=True, timeout=7200, cwd=ROOT,
    )  # fmt: skip
    if output.returncode != 0:
        raise RuntimeError("host failed: %s" % output.stderr[-2000:])
    result = json.loads(output.stdout.strip().splitlines()[-1])
    return {
        "gcode_mb": source.stat().st_size / MB,
        "job_mb": job.stat().st_size / MB,
        "lines": result["lines"],
        "verify_s": result["verify_seconds"],
        "stream_s": result["seconds"],
        "peak_rss_mb": result["peak_rss_kb"] / 1024,
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--size-mb", type=int, default=100, help="G-code size for throughput and first line")
    parser.add_argument("--segments", type=int, default=200000, help="G1 segments for the streaming comparison")
    parser.add_argument("--big-mb", type=int, default=1024, help="G-code size for the memory row (0: skip)")
    args = parser.parse_args()
    OUT.mkdir(parents=True, exist_ok=True)
    with tempfile.TemporaryDirectory() as directory:
        box = Box(directory)
        throughput = throughput_row(box, args.size_mb, args.runs)
        first = first_line_row(box, args.size_mb)
        streaming = streaming_rows(box, args.segments, args.runs)
        memory = memory_row(box, args.big_mb) if args.big_mb else None

    print()
    print("Sealing and verifying a %d MB vase in one process (median of %d runs)" % (args.size_mb, args.runs))
    print()
    print_table(
        [throughput],
        [
            ("gcode_mb", "G-code MB", lambda v: "%.1f" % v),
            ("sealed_mb", "sealed MB", lambda v: "%.1f" % v),
            ("seal_mb_s", "seal MB/s of G-code", lambda v: "%.0f" % v),
            ("verify_s", "verify s", lambda v: "%.2f" % v),
            ("verify_mb_s", "verify MB/s of sealed data", lambda v: "%.0f" % v),
            ("verify_gcode_mb_s", "verify MB/s of G-code", lambda v: "%.0f" % v),
        ],
    )
    print()
    print("Time to the first line for the sealed %d MB vase (verify pass, connect, first line; one run)" % args.size_mb)
    print()
    print_table(
        [first],
        [
            ("job_mb", "sealed MB", lambda v: "%.1f" % v),
            ("verify_s", "verify pass s", lambda v: "%.2f" % v),
            ("first_line_s", "first line after s", lambda v: "%.2f" % v),
            ("peak_rss_mb", "peak RSS MB", lambda v: "%.1f" % v),
        ],
    )
    print()
    print("Streaming the same vase as plaintext and sealed through the same link (median of %d runs;" % args.runs)
    print("CPU is the host's during streaming; the sealed job's verify pass is in the first table)")
    print()
    print_table(
        streaming,
        [
            ("link", "link", str),
            ("job", "job", str),
            ("lines", "lines", lambda v: f"{v:,}"),
            ("lines_per_s", "lines/s", lambda v: f"{v:,.0f}"),
            ("cpu", "host CPU ms / 1000 lines", lambda v: "%.1f" % v),
            ("ratio", "CPU / plaintext", lambda v: "%.2fx" % v),
            ("exactly_once", "exactly once", str),
        ],
    )
    if memory:
        print()
        print("Memory for a large sealed job: whole verify pass, then whole stream pass without a printer")
        print()
        print_table(
            [memory],
            [
                ("gcode_mb", "G-code MB", lambda v: "%.0f" % v),
                ("job_mb", "sealed MB", lambda v: "%.0f" % v),
                ("lines", "lines", lambda v: f"{v:,}"),
                ("verify_s", "verify s", lambda v: "%.1f" % v),
                ("stream_s", "stream pass s", lambda v: "%.1f" % v),
                ("peak_rss_mb", "peak RSS MB", lambda v: "%.1f" % v),
            ],
        )


if __name__ == "__main__":
    main()
