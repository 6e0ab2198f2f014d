"""The printer link end to end: our streamer over a real pseudo-terminal to the virtual printer process."""

import json
import os
import tty

import pytest

from firmware_bridge import marlin, streamer
from firmware_bridge.serial_transport import PrinterPortError
from firmware_bridge.virtual_printer import VirtualPrinterProcess

JOB = ["G1 X%d.%03d Y%d E%d.5" % (index % 200, index % 997, index % 50, index) for index in range(3000)]


class Run:
    """One virtual printer process with a record of what it executed."""

    def __init__(self, tmp_path, *printer_args):
        self.record_path = tmp_path / "executed.gcode"
        self.summary_path = tmp_path / "summary.json"
        self.printer = VirtualPrinterProcess(
            "--record", str(self.record_path), "--summary", str(self.summary_path), "--heat-rate", "1e6", *printer_args
        )

    def executed(self) -> list:
        self.printer.stop()
        return self.record_path.read_text().splitlines()

    def summary(self) -> dict:
        self.printer.stop()
        return json.loads(self.summary_path.read_text())

    def connect(self, **link_options) -> streamer.PrinterConnection:
        return streamer.connect(
            self.printer.path, bauds=(115200,), link_factory=lambda: marlin.HostLink(**link_options)
        )


@pytest.fixture
def printer_run(tmp_path):
    runs = []

    def start(*printer_args) -> Run:
        run = Run(tmp_path, *printer_args)
        runs.append(run)
        return run

    yield start
    for run in runs:
        run.printer.stop()


def stream(connection, commands=JOB, **options) -> streamer.StreamReport:
    try:
        return streamer.stream(
            connection, ((number + 1, command) for number, command in enumerate(commands)), **options
        )
    finally:
        connection.close()


def test_clean_print_every_line_once_in_order(printer_run):
    run = printer_run()
    connection = run.connect()
    assert connection.firmware["MACHINE_TYPE"] == "MIP.AI Virtual Printer"
    assert connection.capabilities["AUTOREPORT_TEMP"] is True
    report = stream(connection)
    assert (report.outcome, report.lines_acknowledged, report.resends) == (marlin.DONE, len(JOB), 0)
    assert report.last_source_line == len(JOB)
    assert report.filament_mm == pytest.approx(len(JOB) - 0.5)  # absolute E: the last line's E
    assert run.executed() == JOB


@pytest.mark.parametrize("window", [None, 4])
def test_one_percent_checksum_errors_still_exactly_once(printer_run, window):
    run = printer_run("--checksum-error-rate", "0.01", "--seed", "7", "--advanced-ok")
    report = stream(run.connect(window=window, response_timeout=1.0))
    assert report.outcome == marlin.DONE
    assert report.resends > 5
    assert run.executed() == JOB


def test_dropped_bytes_are_repaired(printer_run):
    run = printer_run("--drop-byte-rate", "0.02", "--seed", "3")
    report = stream(run.connect(response_timeout=1.0))
    assert report.outcome == marlin.DONE
    assert report.resends > 10
    assert run.executed() == JOB


def test_windowed_with_a_real_planner_never_overflows_the_receive_buffer(printer_run):
    run = printer_run(
        "--advanced-ok",
        "--bufsize",
        "8",
        "--rx-buffer",
        "256",
        "--move-time-scale",
        "0.0005",
        "--checksum-error-rate",
        "0.01",
        "--seed",
        "11",
    )
    report = stream(run.connect(rx_buffer_bytes=256, response_timeout=2.0), JOB[:1500])
    assert report.outcome == marlin.DONE
    summary = run.summary()
    assert summary["rx_overflows"] == 0
    assert summary["job_commands"] == 1500
    assert run.record_path.read_text().splitlines() == JOB[:1500]


def test_busy_printer_keeps_the_link_alive(printer_run):
    run = printer_run("--busy-every", "500", "--busy-seconds", "1.0")
    messages = []
    report = stream(
        run.connect(response_timeout=0.5, max_timeouts=1), JOB[:1200], on_event=lambda event: messages.append(event)
    )
    assert report.outcome == marlin.DONE
    assert sum(isinstance(event, marlin.PrinterBusy) for event in messages) >= 10
    assert run.executed() == JOB[:1200]


def test_reset_mid_print_ends_the_job(printer_run):
    run = printer_run("--reset-after", "1000")
    report = stream(run.connect())
    assert (report.outcome, report.reason) == (marlin.FAILED_OUTCOME, "printer reset")
    executed = run.executed()
    assert executed == JOB[: len(executed)]
    assert report.lines_acknowledged <= len(executed) <= 1000


def test_usb_unplug_interrupts_at_the_last_confirmed_line(printer_run):
    run = printer_run("--disconnect-after", "800")
    report = stream(run.connect())
    assert report.outcome == marlin.INTERRUPTED
    assert "disconnected" in report.reason
    executed = run.executed()
    assert executed == JOB[: len(executed)]
    # The host may miss the last ok or two as the port vanishes; it never claims a line that did not run.
    assert 0 < report.lines_acknowledged <= len(executed)
    assert report.last_source_line == report.lines_acknowledged
    assert report.filament_mm == pytest.approx(report.last_source_line - 0.5)  # E of the last confirmed line


def test_thermal_runaway_halts_the_job_with_the_reason(printer_run):
    run = printer_run("--halt-after", "500")
    report = stream(run.connect())
    assert report.outcome == marlin.FAILED_OUTCOME
    assert "Thermal Runaway" in report.reason
    assert run.summary()["halted"] is True
    # The failure report keeps the last exchanges, the firmware's own words among them.
    assert "< Error:Thermal Runaway, system stopped! Heater_ID: 0" in report.recent_io
    assert any(line.startswith("> N") for line in report.recent_io)


def test_silent_printer_times_out_instead_of_hanging(printer_run):
    run = printer_run("--silent-after", "300")
    report = stream(run.connect(response_timeout=0.3, max_timeouts=2))
    assert report.outcome == marlin.FAILED_OUTCOME
    assert "no answer from the printer" in report.reason


def test_temperatures_are_reported_while_printing(printer_run):
    run = printer_run("--move-time-scale", "0.0005")
    readings = []
    report = stream(
        run.connect(temperature_interval=1.0),
        ["M104 S210", "M109 S210", *JOB[:1500], "M105"],
        on_event=lambda event: isinstance(event, marlin.Temperatures) and readings.append(event.readings),
    )
    assert report.outcome == marlin.DONE
    assert readings
    assert readings[-1]["T"] == (210.0, 210.0)


def test_polls_m105_when_the_firmware_cannot_autoreport(printer_run):
    run = printer_run("--no-autoreport", "--move-time-scale", "0.0005")
    readings = []
    report = stream(
        run.connect(temperature_interval=0.2),
        JOB[:2000],
        on_event=lambda event: isinstance(event, marlin.Temperatures) and readings.append(event.readings),
    )
    assert report.outcome == marlin.DONE
    assert len(readings) >= 2
    assert run.executed() == JOB[:2000]  # the polls are housekeeping, not part of the job's record


def cancel_when(count: int, action: str):
    controls = streamer.Controls()

    def on_progress(progress, _source_line):
        if progress.lines_acknowledged >= count and not on_progress.done:
            controls.request(action)
            on_progress.done = True

    on_progress.done = False
    return controls, on_progress


def test_cancel_runs_the_safe_end_sequence(printer_run):
    run = printer_run("--move-time-scale", "0.0005")
    controls, on_progress = cancel_when(200, "cancel")
    report = stream(run.connect(), controls=controls, on_progress=on_progress, progress_interval=0.01)
    assert report.outcome == marlin.CANCELLED
    executed = run.executed()
    assert executed[-4:] == list(marlin.DEFAULT_END_SEQUENCE)
    assert executed[:-4] == JOB[: len(executed) - 4]
    assert len(executed) - 4 < len(JOB)


def test_emergency_stop_halts_the_printer(printer_run):
    run = printer_run("--move-time-scale", "0.0005")
    controls, on_progress = cancel_when(200, "emergency_stop")
    report = stream(run.connect(), controls=controls, on_progress=on_progress, progress_interval=0.01)
    assert (report.outcome, report.reason) == (marlin.CANCELLED, "emergency stop (M112)")
    assert run.summary()["halted"] is True


def test_pause_and_resume_lose_nothing(printer_run):
    run = printer_run("--move-time-scale", "0.0002")
    controls = streamer.Controls()
    paused_at = []

    def on_progress(progress, _source_line):
        if progress.lines_acknowledged >= 500 and not paused_at:
            controls.request("pause")
            paused_at.append(progress.lines_acknowledged)
        elif paused_at and len(paused_at) < 30:
            paused_at.append(progress.lines_acknowledged)  # confirmations stop growing while paused
            if len(paused_at) == 30:
                controls.request("resume")

    report = stream(run.connect(), controls=controls, on_progress=on_progress, progress_interval=0.01)
    assert report.outcome == marlin.DONE
    assert paused_at[-1] == paused_at[-10]
    assert run.executed() == JOB


def test_a_port_without_a_printer_is_reported(tmp_path):
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        with pytest.raises(streamer.NotAPrinterError, match="no Marlin-family printer answered M115"):
            streamer.connect(
                os.ttyname(slave), bauds=(250000, 115200), link_factory=lambda: marlin.HostLink(connect_timeout=0.5)
            )
    finally:
        os.close(master)
        os.close(slave)


def test_a_missing_port_is_reported(tmp_path):
    with pytest.raises(PrinterPortError, match=r"cannot open .*no-such-port"):
        streamer.connect(str(tmp_path / "no-such-port"))


def test_baud_probing_finds_the_printers_rate(printer_run):
    run = printer_run("--baud", "115200")
    connection = streamer.connect(
        run.printer.path, bauds=(250000, 57600, 115200), link_factory=lambda: marlin.HostLink(connect_timeout=0.5)
    )
    assert connection.transport.baud == 115200
    report = stream(connection, JOB[:100])
    assert report.outcome == marlin.DONE
    assert run.executed() == JOB[:100]


def test_link_option_gives_the_port_a_stable_name(tmp_path):
    link = tmp_path / "ttyPRINTER"
    with VirtualPrinterProcess("--link", str(link)) as printer:
        assert os.path.realpath(link) == printer.path
        connection = streamer.connect(str(link), bauds=(115200,))
        assert connection.firmware["FIRMWARE_NAME"].startswith("Marlin")
        connection.close()
    assert not link.exists()


def test_a_failing_job_source_ends_the_job_with_the_safe_end_sequence(printer_run):
    run = printer_run()

    def commands():
        for number, command in enumerate(JOB[:300]):
            yield number + 1, command
        raise OSError("the job file changed while printing")

    connection = run.connect()
    try:
        report = streamer.stream(connection, commands())
    finally:
        connection.close()
    assert report.outcome == marlin.CANCELLED
    assert report.reason == "the job could not be read on: the job file changed while printing"
    executed = run.executed()
    assert executed[:300] == JOB[:300]
    assert executed[300:] == list(marlin.DEFAULT_END_SEQUENCE)


def test_a_port_that_vanishes_before_a_write_interrupts_the_job(printer_run):
    run = printer_run()
    connection = run.connect()
    run.printer.stop()  # the printer goes away between the handshake and the first job line
    report = stream(connection)
    assert report.outcome == marlin.INTERRUPTED
    assert "disconnected" in report.reason and report.lines_acknowledged == 0
