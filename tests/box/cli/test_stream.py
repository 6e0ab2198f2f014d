"""`mipai-box stream` as a user runs it: a real process, a real pseudo-terminal, clear errors for bad input."""

import subprocess
import sys

import pytest

from firmware_bridge.virtual_printer import VirtualPrinterProcess


def mipai_box(*args: str, timeout: float = 120) -> subprocess.CompletedProcess:
    return subprocess.run(
        [sys.executable, "-m", "box.cli", *args],
        capture_output=True,
        text=True,
        timeout=timeout,
        stdin=subprocess.DEVNULL,
    )


@pytest.fixture
def gcode_file(tmp_path):
    def write(content: bytes, name: str = "part.gcode"):
        path = tmp_path / name
        path.write_bytes(content)
        return str(path)

    return write


def test_streams_a_file_to_a_printer_and_summarises(tmp_path, gcode_file):
    lines = ["G28 ; home", "", "; a comment line", "G1 Z0.2 F3000"] + ["G1 X%d Y%d E%d" % (i, i, i) for i in range(200)]
    path = gcode_file(("\n".join(lines) + "\n").encode())
    record = tmp_path / "executed.gcode"
    with VirtualPrinterProcess("--record", str(record), "--checksum-error-rate", "0.02", "--seed", "5") as printer:
        result = mipai_box("stream", path, "--port", printer.path)
    assert result.returncode == 0, result.stderr
    assert "MIP.AI Virtual Printer" in result.stderr
    assert "done: all lines confirmed by the printer. 202 of 202 lines confirmed" in result.stderr
    assert "printer warnings" in result.stderr
    assert record.read_text().splitlines() == ["G28", "G1 Z0.2 F3000"] + [
        "G1 X%d Y%d E%d" % (i, i, i) for i in range(200)
    ]


def test_virtual_printer_demo_prints_the_bundled_sample():
    result = mipai_box("stream", "--virtual-printer", timeout=300)
    assert result.returncode == 0, result.stderr
    assert "from the bundled sample (vase.gcode)" in result.stderr
    assert "done: all lines confirmed by the printer" in result.stderr


@pytest.mark.parametrize(
    ("content", "message"),
    [
        (b"G28\nG1 X1\x00\x01\x02\x03\xff\xfe\n", "line 2: bytes that are not UTF-8 text"),
        (b"G28\nM117 caf\xc3\xa9\n", "line 2: non-ASCII characters outside a comment"),
        (b"G28\nG1 X1\nM117 " + b"x" * 100 + b"\n", "line 3: command is 105 bytes, longer than the 80"),
        (b"\x7fELF" + bytes(range(256)) * 40, "is this a binary file?"),
    ],
)
def test_bad_files_are_refused_before_anything_is_sent(tmp_path, gcode_file, content, message):
    path = gcode_file(content)
    record = tmp_path / "executed.gcode"
    with VirtualPrinterProcess("--record", str(record)) as printer:
        result = mipai_box("stream", path, "--port", printer.path)
    assert result.returncode == 2
    assert message in result.stderr
    assert "nothing was sent" in result.stderr
    assert record.read_text() == ""


def test_a_file_without_commands_is_refused(gcode_file):
    result = mipai_box("stream", gcode_file(b"; only comments\n\n   \n"), "--port", "/dev/null")
    assert result.returncode == 2
    assert "holds no G-code commands" in result.stderr


def test_a_missing_file_is_reported(tmp_path):
    result = mipai_box("stream", str(tmp_path / "nope.gcode"), "--port", "/dev/null")
    assert result.returncode == 2
    assert "cannot read" in result.stderr and "No such file" in result.stderr


def test_a_missing_port_is_reported(tmp_path, gcode_file):
    result = mipai_box("stream", gcode_file(b"G28\n"), "--port", str(tmp_path / "ttyUSB9"))
    assert result.returncode == 3
    assert "cannot open" in result.stderr and "ttyUSB9" in result.stderr
    assert "Traceback" not in result.stderr


@pytest.mark.parametrize(
    ("option", "message"),
    [
        (["--window", "0"], "invalid positive whole number value: '0'"),
        (["--window", "500"], "--window must be at most 128 lines"),
        (["--timeout", "-3"], "invalid positive number value: '-3'"),
        (["--baud", "fast"], "invalid positive whole number value: 'fast'"),
    ],
)
def test_bad_options_are_refused_with_a_message(gcode_file, option, message):
    result = mipai_box("stream", gcode_file(b"G28\n"), "--virtual-printer", *option)
    assert result.returncode == 2
    assert message in result.stderr
    assert "Traceback" not in result.stderr


def test_a_port_that_is_not_a_serial_device_is_reported(gcode_file):
    result = mipai_box("stream", gcode_file(b"G28\n"), "--port", "/dev/null")
    assert result.returncode == 3
    assert "cannot open /dev/null" in result.stderr
