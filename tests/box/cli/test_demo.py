"""`mipai-box demo` (what `make run` starts) as a user meets it in a terminal: the sample waits for the owner's
first dashboard visit, Ctrl-C (SIGINT to the terminal's whole process group) cancels the print safely, the
sample is queued once, and a busy port is refused with the way to pick another."""

import http.cookiejar
import os
import re
import signal
import subprocess
import sys
import time
import urllib.parse
import urllib.request

import pytest

from box.cli.demo_broker import free_port
from box.jobs.store import Store
from tests.browser import PASSWORD
from tests.daemon_process import wait_for

pytestmark = pytest.mark.timeout(180)


class Demo:
    """The demo in a terminal of its own: its own process group, as a shell's foreground job has."""

    def __init__(self, data_dir, log_path, port: int) -> None:
        self.data_dir, self.log_path, self.port = data_dir, log_path, port
        self.url = "http://127.0.0.1:%d" % port
        self.process = subprocess.Popen(
            [sys.executable, "-m", "box.cli", "--data-dir", str(data_dir), "demo", "--http-port", str(port)],
            stdin=subprocess.DEVNULL,
            stdout=subprocess.DEVNULL,
            stderr=open(log_path, "w"),  # noqa: SIM115 (closed with the process)
            start_new_session=True,
        )

    def log(self) -> str:
        return self.log_path.read_text()

    def wait_running(self) -> "Demo":
        def running() -> bool:
            if self.process.poll() is not None:
                raise AssertionError("the demo exited: %s" % self.log())
            return "running;" in self.log()

        wait_for(running, "the demo to start")
        return self

    def ctrl_c(self) -> int:
        """What the terminal does on Ctrl-C: SIGINT to every process of the foreground process group."""
        os.killpg(self.process.pid, signal.SIGINT)
        return self.process.wait(90)


def _jobs(data_dir) -> list:
    store = Store(str(data_dir / "box.sqlite"))
    try:
        return store.jobs()
    finally:
        store.close()


def _owner_reaches_the_dashboard(url: str) -> str:
    """The first wizard page (the admin password), then the dashboard, as a browser with cookies would."""
    browser = urllib.request.build_opener(urllib.request.HTTPCookieProcessor(http.cookiejar.CookieJar()))
    with browser.open(url + "/setup") as response:
        csrf = re.search(r"name=csrf value=([^ >]+)>", response.read().decode()).group(1)
    form = urllib.parse.urlencode({"csrf": csrf, "password": PASSWORD, "confirmation": PASSWORD, "box_name": ""})
    with browser.open(url + "/setup", form.encode()) as response:
        assert response.url.endswith("/setup/printer")
    with browser.open(url + "/") as response:
        return response.read().decode()


def test_ctrl_c_cancels_the_sample_safely_and_it_is_queued_once(tmp_path):
    data_dir = tmp_path / "demo-box"
    demo = Demo(data_dir, tmp_path / "demo.log", free_port()).wait_running()
    (sample,) = _jobs(data_dir)
    assert sample["state"] == "held"  # not printing while the owner is still in setup
    time.sleep(1.5)  # the printer's owner looks for queued jobs every second: it must leave the sample be
    assert _jobs(data_dir)[0]["state"] == "held"

    # A second demo on the same port is refused, says how to pick another, and queues nothing.
    other_dir = tmp_path / "other-box"
    refused = subprocess.run(
        [sys.executable, "-m", "box.cli", "demo", "--data-dir", str(other_dir), "--http-port", str(demo.port)],
        capture_output=True, text=True, stdin=subprocess.DEVNULL, timeout=60,
    )  # fmt: skip
    assert refused.returncode == 2
    assert "make run PORT=%d" % (demo.port + 1) in refused.stderr and "--http-port" in refused.stderr
    assert not (other_dir / "box.sqlite").exists() or _jobs(other_dir) == []

    page = _owner_reaches_the_dashboard(demo.url)
    assert "Sample vase (demo)" in page
    wait_for(lambda: _jobs(data_dir)[0]["state"] == "printing", "the sample to start printing")
    wait_for(lambda: (_jobs(data_dir)[0]["last_source_line"] or 0) > 0, "the first lines to be confirmed")

    assert demo.ctrl_c() == 0, demo.log()
    (sample,) = _jobs(data_dir)
    assert sample["state"] == "cancelled", sample
    assert sample["reason"] == "cancelled; end sequence sent"
    assert "input/output error" not in demo.log()

    # The next run finds the sample: nothing is queued again, and nothing starts on its own.
    again = Demo(data_dir, tmp_path / "demo-again.log", free_port()).wait_running()
    assert "queued on the first run" in again.log()
    assert again.ctrl_c() == 0
    assert [job["id"] for job in _jobs(data_dir)] == [sample["id"]]
