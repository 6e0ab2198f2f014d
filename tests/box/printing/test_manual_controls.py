"""Manual controls: what each becomes on the printer's link, what is refused before anything is sent, and the
printer's owner sending them to a real (virtual) printer only while no job runs."""

import threading
import time

import pytest

from box.jobs.spool import Spool
from box.jobs.store_owner import StoreOwner
from box.printing import manual_controls
from box.printing.manual_controls import ControlRefused, commands_for
from box.printing.printer_owner import ManualControlRefused, PrinterOwner
from box.settings import Settings
from firmware_bridge.virtual_printer import VirtualPrinterProcess
from tests.daemon_process import wait_for
from tests.users import World


@pytest.mark.parametrize(
    ("action", "fields", "description", "commands"),
    [
        ("preheat", {"preset": "pla"}, "preheat for PLA (hotend 200 °C, bed 60 °C)", ["M104 S200", "M140 S60"]),
        ("preheat", {"preset": "PETG"}, "preheat for PETG (hotend 235 °C, bed 80 °C)", ["M104 S235", "M140 S80"]),
        ("preheat", {"preset": "custom", "hotend": "215", "bed": "0"}, "preheat (hotend 215 °C, bed 0 °C)",
         ["M104 S215", "M140 S0"]),
        ("cooldown", {}, "cool down (heaters and fan off)", ["M104 S0", "M140 S0", "M107"]),
        ("home", {"axes": "XYZ"}, "home XYZ", ["G28"]),
        ("home", {"axes": "zx"}, "home ZX", ["G28 X Z"]),
        ("jog", {"axis": "y", "distance": "-0,5"}, "jog Y by -0.50 mm", ["G91", "G1 Y-0.50 F3000", "G90"]),
        ("extrude", {"length": "5"}, "extrude 5.00 mm", ["M83", "G1 E5.00 F300", "M82"]),
        ("extrude", {"length": "5", "direction": "retract"}, "retract 5.00 mm", ["M83", "G1 E-5.00 F300", "M82"]),
        ("motors-off", {}, "motors off", ["M84"]),
        ("console", {"command": " m503 ; settings "}, "console: M503", ["M503"]),
        ("console", {"command": "M117 Hello there"}, "console: M117 Hello there", ["M117 Hello there"]),
    ],
)  # fmt: skip
def test_each_control_becomes_its_commands(action, fields, description, commands):
    assert commands_for(action, fields) == (description, commands)


@pytest.mark.parametrize(
    ("action", "fields", "problem"),
    [
        ("preheat", {"preset": "ABS"}, "choose PLA, PETG or custom temperatures"),
        ("preheat", {"preset": "custom", "hotend": "301", "bed": "60"}, "hotend temperature (°C) is a number from 0"),
        ("preheat", {"preset": "custom", "hotend": "nan", "bed": "60"}, "hotend temperature"),
        ("preheat", {"preset": "custom", "hotend": "200", "bed": "inf"}, "bed temperature"),
        ("home", {"axes": "XA"}, "home X, Y, Z"),
        ("home", {"axes": "XX"}, "home X, Y, Z"),
        ("jog", {"axis": "E", "distance": "1"}, "jog X, Y or Z"),
        ("jog", {"axis": "X", "distance": "150"}, "the distance (mm) is a number from -100 to 100"),
        ("jog", {"axis": "X", "distance": "0"}, "is not 0"),
        ("extrude", {"length": "abc"}, "the length (mm) is a number"),
        ("console", {"command": "M112"}, "M112 is not sent by hand"),
        ("console", {"command": "M110 N0"}, "M110 is not sent by hand"),
        ("console", {"command": "G28\nM112"}, "one command of at most 80 characters"),
        ("console", {"command": "M117 " + "x" * 80}, "one command of at most 80 characters"),
        ("console", {"command": "N5 G28"}, "a G-code command such as M503"),
        ("console", {"command": "G28*17"}, "without a checksum"),
        ("console", {"command": "hello"}, "a G-code command such as M503"),
        ("console", {"command": "M117 caf\u00e9"}, "a G-code command such as M503"),
        ("console", {"command": ""}, "a G-code command such as M503"),
        ("reboot", {}, "unknown control"),
    ],
)
def test_bad_fields_are_refused_before_anything_is_sent(action, fields, problem):
    with pytest.raises(ControlRefused, match=problem.replace("(", r"\(").replace(")", r"\)")):
        commands_for(action, fields)


def test_every_listed_action_is_known():
    for action in manual_controls.ACTIONS:
        try:
            commands_for(action, {"preset": "PLA", "axes": "X", "axis": "X", "distance": "1", "length": "1",
                                  "command": "M105"})  # fmt: skip
        except ControlRefused as exc:
            pytest.fail("%s: %s" % (action, exc))


def _hotend_target(worker: PrinterOwner):
    samples = worker.live.snapshot(time.monotonic())["samples"]
    return samples[-1][2] if samples else None


def test_the_printer_owner_sends_controls_to_the_idle_printer_and_refuses_them_during_a_job(tmp_path):
    world = World(tmp_path)
    assert world.box("trust", "add", world.designer_public).returncode == 0
    job = world.seal("--max-prints", "1")
    record = tmp_path / "record.gcode"
    with VirtualPrinterProcess("--record", str(record), "--move-time-scale", "0.02") as printer:
        store = StoreOwner(str(world.data_dir))
        settings = Settings.from_mapping({"printer": {"port": printer.path, "baud": 250000}}, "test").printer
        stop = threading.Event()
        worker = PrinterOwner(str(world.data_dir), settings, stop, store)
        with pytest.raises(ManualControlRefused, match="no printer is connected"):
            worker.submit_manual("console: M117 before", ["M117 before"])
        worker.start()
        try:
            wait_for(lambda: worker.printer is not None, "the printer")
            worker.submit_manual("preheat for PLA", ["M104 S200", "M140 S60"])
            wait_for(lambda: _hotend_target(worker) == 200, "the preheat to reach the printer", 20)

            with open(job, "rb") as handle:
                job_id, path = Spool(str(world.data_dir / "spool")).add_sealed(handle)
            number = store.blocking_store.add_job(job_id, "vase", path)
            wait_for(lambda: store.blocking_store.job(number)["state"] == "printing", "the job to print", 30)
            with pytest.raises(ManualControlRefused, match="job %d is running: manual controls wait" % number):
                worker.submit_manual("console: M117 during", ["M117 during"])
            wait_for(lambda: store.blocking_store.job(number)["state"] == "done", "the job to end", 60)
            worker.submit_manual("console: M117 after", ["M117 after"])
            wait_for(lambda: any(line.endswith("> M117 after") for _at, line in worker.live.console), "the console")
            time.sleep(1.5)  # the keep-alive hands it over; the printer then records it
        finally:
            stop.set()
            worker.join(10)
            store.close()
    executed = record.read_text().splitlines()
    assert "M117 before" not in executed and "M117 during" not in executed
    assert executed[:2] == ["M104 S200", "M140 S60"]  # before the job's first line
    assert executed[-1] == "M117 after"  # after the job's last line
