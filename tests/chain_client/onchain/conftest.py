"""Real EVM peers for the chain tests: anvil (npm @foundry-rs/anvil) on a loopback port, and py-evm in process;
and a deployed network on either, with three verifier keys (k = 2) and helpers to register boxes and sign claims."""

import os
import platform
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest
from web3 import Web3

from chain_client import devnet, evm
from chain_client.devnet import Network

ROOT = Path(__file__).resolve().parents[3]
ANVIL_LIFETIME = 900  # seconds: an anvil left behind by a crashed test run ends by itself


def anvil_binary() -> Path:
    """The platform binary of the npm package (its node shim would hide the process we must stop)."""
    arch = {"x86_64": "amd64", "aarch64": "arm64", "arm64": "arm64"}[platform.machine()]
    binary = ROOT / "node_modules" / "@foundry-rs" / ("anvil-linux-%s" % arch) / "bin" / "anvil"
    if not binary.exists():
        pytest.fail("anvil is not installed: run `npm ci` (make test does)")
    return binary


def free_port() -> int:
    """A free TCP port on loopback."""
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Anvil:
    """One anvil process on 127.0.0.1 with Prague rules; with `state`, it dumps its chain there when stopped."""

    def __init__(self, port: int | None = None, state: Path | None = None) -> None:
        self.port = port or free_port()
        self.state = state
        self.process: subprocess.Popen | None = None

    @property
    def url(self) -> str:
        return "http://127.0.0.1:%d" % self.port

    def start(self) -> "Anvil":
        command = ["timeout", str(ANVIL_LIFETIME), str(anvil_binary()), "--host", "127.0.0.1"]
        command += ["--port", str(self.port), "--hardfork", "prague", "--silent", "--chain-id", "31337"]
        if self.state is not None:
            command += ["--state", str(self.state), "--preserve-historical-states"]
        self.process = subprocess.Popen(command, stdin=subprocess.DEVNULL, start_new_session=True)
        end = time.monotonic() + 30
        while time.monotonic() < end:
            try:
                with socket.create_connection(("127.0.0.1", self.port), timeout=0.2):
                    return self
            except OSError:
                if self.process.poll() is not None:
                    raise RuntimeError("anvil exited with status %s" % self.process.returncode) from None
                time.sleep(0.05)
        self.stop()
        raise RuntimeError("anvil did not listen on port %d within 30 s" % self.port)

    def stop(self) -> None:
        """Stop it as Ctrl-C would (so it writes its state), then make sure it is gone."""
        if self.process is None:
            return
        try:
            os.killpg(self.process.pid, signal.SIGINT)
            self.process.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(self.process.pid, signal.SIGKILL)
            self.process.wait()
        except ProcessLookupError:
            pass
        self.process = None


def make_network(w3: Web3, **settings) -> Network:
    """Deploy on `w3` with verifier keys 1, 2, 3 (k = 2)."""
    return devnet.make_network(w3, [bytes([i + 1]) * 32 for i in range(3)], **settings)


@pytest.fixture(scope="module")
def anvil():
    """One anvil for a test module."""
    node = Anvil().start()
    try:
        yield node
    finally:
        node.stop()


@pytest.fixture(params=["py-evm", "anvil"])
def chain(request) -> Web3:
    """A web3 connection to each kind of chain in turn."""
    if request.param == "py-evm":
        return evm.in_process()
    return evm.connect(request.getfixturevalue("anvil").url)


@pytest.fixture
def network(chain) -> Network:
    """Contracts freshly deployed on each kind of chain."""
    return make_network(chain)
