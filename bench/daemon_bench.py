"""`make bench`, the daemon: idle memory and CPU with a printer connected, and the dashboard's page weight.

Starts `mipai-box run` on a fresh data directory with a virtual printer, sets the box up and logs in over HTTP,
lets it idle, then measures its resident memory and CPU share over --seconds with psutil.
"""

import argparse
import http.cookiejar
import re
import socket
import subprocess
import sys
import tempfile
import time
import urllib.parse
import urllib.request
from pathlib import Path

import psutil

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))

from bench.stream_bench import print_table  # noqa: E402
from firmware_bridge.virtual_printer import VirtualPrinterProcess  # noqa: E402

PASSWORD = "benchmark password"


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def log_in(url: str):
    """Set the box up and log in; return an opener that carries the session."""
    jar = http.cookiejar.CookieJar()
    opener = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(jar))

    def form_token(path: str) -> str:
        page = opener.open(url + path).read().decode()
        return re.search(r"name=csrf value=([^ >]+)", page).group(1)

    token = form_token("/setup")
    fields = {"csrf": token, "box_name": "bench", "password": PASSWORD, "confirmation": PASSWORD}
    opener.open(url + "/setup", urllib.parse.urlencode(fields).encode())
    token = form_token("/login")
    opener.open(url + "/login", urllib.parse.urlencode({"csrf": token, "password": PASSWORD}).encode())
    return opener


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    parser.add_argument("--seconds", type=float, default=30.0, help="idle time measured")
    args = parser.parse_args()
    port = free_port()
    with tempfile.TemporaryDirectory() as data, VirtualPrinterProcess() as printer:
        config = Path(data) / "box.toml"
        config.write_text(
            '[box]\nhttp_host = "127.0.0.1"\nhttp_port = %d\n[printer]\nport = "%s"\n' % (port, printer.path)
        )
        daemon = subprocess.Popen(
            [sys.executable, "-m", "box.cli", "run", "--config", str(config), "--data-dir", data],
            stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, cwd=ROOT, text=True,
        )  # fmt: skip
        try:
            url = "http://127.0.0.1:%d" % port
            deadline = time.monotonic() + 30
            while True:
                try:
                    urllib.request.urlopen(url + "/setup")
                    break
                except OSError:
                    if time.monotonic() > deadline or daemon.poll() is not None:
                        raise RuntimeError("the daemon did not start") from None
                    time.sleep(0.2)
            opener = log_in(url)
            dashboard = opener.open(url + "/").read()
            time.sleep(5)  # settle after start and login
            process = psutil.Process(daemon.pid)
            process.cpu_percent(None)
            time.sleep(args.seconds)
            cpu = process.cpu_percent(None)
            rss = process.memory_info().rss / 2**20
        finally:
            daemon.terminate()
            daemon.wait(60)
    print()
    print("The box daemon idling with a printer connected (%.0f s measured after login)" % args.seconds)
    print()
    print_table(
        [{"rss": rss, "cpu": cpu, "page": len(dashboard) / 1024}],
        [
            ("rss", "idle RSS MiB", lambda v: "%.1f" % v),
            ("cpu", "idle CPU %", lambda v: "%.2f" % v),
            ("page", "dashboard page KB", lambda v: "%.1f" % v),
        ],
    )


if __name__ == "__main__":
    main()
