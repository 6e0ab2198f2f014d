"""A Mosquitto child process on a loopback port: the demo's fleet broker (`mipai-box demo`), and the tests'.
It listens on 127.0.0.1 only, so nothing beyond this machine can reach it."""

import os
import shutil
import socket
import subprocess
import time

from box.errors import MissingPartError

START_SECONDS = 10.0


class BrokerUnavailable(MissingPartError):
    """Mosquitto is not installed, or did not start."""


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def anonymous_config(port: int, log_file: str, extra: str = "") -> str:
    # Started as root, Mosquitto drops to the user `mosquitto`, who may not read a private folder: stay root then.
    run_as = "user root\n" if os.geteuid() == 0 else ""
    return "listener %d 127.0.0.1\nallow_anonymous true\nlog_dest file %s\n%s%s" % (port, log_file, run_as, extra)


class LocalMosquitto:
    def __init__(self, config_path: str, port: int) -> None:
        self.config_path = str(config_path)
        self.port = port
        self.process = None

    def start(self) -> "LocalMosquitto":
        binary = shutil.which("mosquitto") or ("/usr/sbin/mosquitto" if os.path.exists("/usr/sbin/mosquitto") else "")
        if not binary:
            raise BrokerUnavailable("mosquitto is not installed (Debian: apt-get install mosquitto)")
        # In a session of its own, so that Ctrl-C reaches only the box, which reports its last state before the
        # broker is stopped.
        self.process = subprocess.Popen([binary, "-c", self.config_path], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL, start_new_session=True)  # fmt: skip
        deadline = time.monotonic() + START_SECONDS
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise BrokerUnavailable("mosquitto exited at start (see %s)" % self.config_path)
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        self.stop()
        raise BrokerUnavailable("mosquitto did not start on port %d" % self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None
