"""One benchmark run of Printrun's printcore (the peer), in the benchmark-only virtualenv.

python bench/printcore_runner.py PORT FILE  -> one JSON object like host_runner.py's.
"""

import json
import resource
import sys
import time

from printrun import gcoder
from printrun.printcore import printcore


def cpu_seconds() -> float:
    usage = resource.getrusage(resource.RUSAGE_SELF)
    return usage.ru_utime + usage.ru_stime


def main() -> None:
    port, path = sys.argv[1], sys.argv[2]
    with open(path) as handle:
        job = gcoder.LightGCode(handle.read().splitlines())
    printer = printcore(port, 250000)
    deadline = time.monotonic() + 20
    while not printer.online and time.monotonic() < deadline:
        time.sleep(0.05)
    if not printer.online:
        print(json.dumps({"outcome": "not online"}))
        return
    started, cpu_started = time.perf_counter(), cpu_seconds()
    printer.startprint(job)
    while printer.printing:
        time.sleep(0.01)
    seconds, cpu = time.perf_counter() - started, cpu_seconds() - cpu_started
    lines = printer.lineno
    printer.disconnect()
    result = {"lines": lines, "seconds": seconds, "cpu_seconds": cpu, "outcome": "done"}
    result["peak_rss_kb"] = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss
    print(json.dumps(result))


if __name__ == "__main__":
    main()
