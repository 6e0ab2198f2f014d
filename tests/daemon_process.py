"""`mipai-box run` as a process for the tests, and what they read of its data directory."""

import contextlib
import signal
import subprocess
import sys
import time

from box.cli.demo_broker import free_port
from box.jobs.store import Store
from firmware_bridge.virtual_printer import VirtualPrinterProcess
from secure_print.ledger import PrintLedger
from tests.users import World


class Daemon:
    def __init__(self, world: World, port: str) -> None:
        self.world = world
        self.config = world.printer_dir / "box.toml"
        self.http_port = free_port()
        self.web = '[box]\nhttp_host = "127.0.0.1"\nhttp_port = %d\n' % self.http_port
        self.config.write_text(self.web + '[printer]\nport = "%s"\nbaud = 250000\n' % port)
        self.log = world.printer_dir / ("daemon-%d.log" % time.monotonic_ns())
        self.process = None
        self.env = None

    def on_broker(self, port: int, operators=(), verifiers=()) -> "Daemon":
        """Adds a `[fleet]` section: the broker on loopback `port`, and the keys the box trusts there."""
        quoted = ", ".join('"%s"' % key.public_text for key in operators)
        trusted = ", ".join('"%s"' % key.public_text for key in verifiers)
        with open(self.config, "a") as config:
            config.write('[fleet]\nbroker_host = "127.0.0.1"\nbroker_port = %d\nidle_telemetry_seconds = 5\n'
                         "operators = [%s]\nverifiers = [%s]\n" % (port, quoted, trusted))  # fmt: skip
        return self

    def start(self) -> "Daemon":
        self.process = subprocess.Popen(
            [
                sys.executable,
                "-m",
                "box.cli",
                "run",
                "--config",
                str(self.config),
                "--data-dir",
                str(self.world.data_dir),
            ],
            stdout=subprocess.DEVNULL,
            stderr=open(self.log, "w"),  # noqa: SIM115 (closed with the process)
            stdin=subprocess.DEVNULL,
            env=self.env,
        )

        def started() -> bool:
            if self.process.poll() is not None:
                raise AssertionError("the daemon exited: %s" % self.log.read_text())
            return "running;" in self.log.read_text()

        wait_for(started, "the daemon to start")
        return self

    def stop(self, how=signal.SIGTERM) -> int:
        if self.process.poll() is None:
            self.process.send_signal(how)
        return self.process.wait(90)


@contextlib.contextmanager
def serving_box(world: World, move_time_scale: str):
    """A daemon that trusts the world's designer, on a virtual printer moving at `move_time_scale` of real
    time; it carries its `url` and `world`."""
    assert world.box("trust", "add", world.designer_public).returncode == 0
    with VirtualPrinterProcess("--move-time-scale", move_time_scale) as printer:
        daemon = Daemon(world, printer.path).start()
        daemon.url = "http://127.0.0.1:%d" % daemon.http_port
        daemon.world = world
        try:
            yield daemon
        finally:
            daemon.stop()


def wait_for(condition, what: str, timeout: float = 60.0):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = condition()
        if value:
            return value
        time.sleep(0.1)
    raise AssertionError("timed out waiting for %s" % what)


def job_row(world: World, number: int = 1) -> dict:
    store = Store(str(world.data_dir / "box.sqlite"))
    try:
        return store.job(number)
    finally:
        store.close()


def prints_done(world: World) -> int:
    ledger = PrintLedger(str(world.data_dir / "prints.sqlite"))
    try:
        return ledger.total_prints()
    finally:
        ledger.close()
