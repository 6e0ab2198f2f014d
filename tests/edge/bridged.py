"""The edge bridge's firmware run by CPython behind a pseudo-terminal (firmware_bridge.edge_pty) in front of the
virtual printer: the CPython tests' and the benchmark's bridged printer."""

import subprocess
import sys
from contextlib import contextmanager

from firmware_bridge.edge import keystore
from firmware_bridge.virtual_printer import VirtualPrinterProcess
from tests.edge.harness import KEY


@contextmanager
def bridged_printer(directory, *printer_args: str, paired: bool = True):
    """A virtual printer (`printer_args` added to its options) and the bridge in front of it, paired with KEY
    unless `paired` is False; yields (the bridge's port toward the box, the file of the commands executed)."""
    state = directory / "bridge-state"
    state.mkdir()
    if paired:
        keystore.pair(KEY.hex(), str(state))
    record = directory / "executed.gcode"
    with VirtualPrinterProcess("--record", str(record), "--heat-rate", "1e6", *printer_args) as printer:
        bridge = subprocess.Popen(
            [sys.executable, "-m", "firmware_bridge.edge_pty", "--printer", printer.path, "--state-dir", str(state)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            port = bridge.stdout.readline().strip()
            assert port, "the bridge did not start"
            yield port, record
        finally:
            bridge.terminate()
            bridge.wait(10)
            bridge.stdout.close()
