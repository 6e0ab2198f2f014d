"""A designer and a box as their users run them: `mipai-seal` and `mipai-box` as processes, fresh folders."""

import os
import sqlite3
import subprocess
import sys
from importlib import resources

from firmware_bridge.virtual_printer import VirtualPrinterProcess

SAMPLE = str(resources.files("firmware_bridge.samples").joinpath("vase.gcode"))


def run(program: str, *args: str, env=None, cwd=None, timeout: float = 180) -> subprocess.CompletedProcess:
    module = {
        "mipai-box": "box.cli",
        "mipai-seal": "secure_print.seal_cli",
        "mipai-fleet": "fleet.cli",
        "mipai-chain": "chain_client.cli",
    }[program]
    return subprocess.run(
        [sys.executable, "-m", module, *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
        env=env,
        cwd=cwd,
    )


class World:
    """A designer's folder, a box's data directory and temporary directory, each fresh."""

    def __init__(self, root) -> None:
        self.designer_dir = root / "designer"
        self.data_dir = root / "box-data"
        self.box_tmp = root / "box-tmp"
        self.box_cwd = root / "box-cwd"
        self.printer_dir = root / "printer"
        for directory in (self.designer_dir, self.box_tmp, self.box_cwd, self.printer_dir):
            directory.mkdir()
        self.key = str(self.designer_dir / "designer.key")
        keygen = run("mipai-seal", "keygen", "-o", self.key)
        assert keygen.returncode == 0, keygen.stderr
        self.designer_public = keygen.stdout.strip()
        shown = self.box("keys", "show")
        assert shown.returncode == 0, shown.stderr
        fields = dict(line.split(":", 1) for line in shown.stdout.splitlines())
        self.box_id = fields["box id"].strip()
        self.recipient = fields["seal jobs to"].strip()

    def box(self, *args: str) -> subprocess.CompletedProcess:
        env = dict(os.environ, TMPDIR=str(self.box_tmp))
        return run("mipai-box", *args, "--data-dir", str(self.data_dir), env=env, cwd=str(self.box_cwd))

    def seal(self, *options: str, source: str = SAMPLE, name: str = "vase.mipjob") -> str:
        output = str(self.designer_dir / name)
        sealed = run(
            "mipai-seal", "seal", source, "--to", self.recipient, "--key", self.key, "--expires", "2099-12-31",
            "-o", output, *options,
        )  # fmt: skip
        assert sealed.returncode == 0, sealed.stderr
        return output

    def prints_done(self) -> int:
        path = self.data_dir / "prints.sqlite"
        if not path.exists():
            return 0
        with sqlite3.connect(str(path)) as db:
            return db.execute("SELECT COUNT(*) FROM prints").fetchone()[0]

    def print_job(self, job: str, *options: str, printer_args=()):
        record = self.printer_dir / ("record-%d.gcode" % len(list(self.printer_dir.iterdir())))
        with VirtualPrinterProcess("--record", str(record), *printer_args) as printer:
            result = self.box("print", job, "--port", printer.path, *options)
        return result, record.read_text().splitlines() if record.exists() else []
