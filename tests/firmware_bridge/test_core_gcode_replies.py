"""G-code cleaning and firmware reply parsing.

Plain test functions without pytest features: tests/micropython_runner.py runs this file under MicroPython too.
"""

from firmware_bridge import gcode, replies
from tests.firmware_bridge.expect import expect_raises


def test_frame_matches_marlin_checksum():
    # Reference values computed as Marlin does: XOR of every byte before '*'.
    assert gcode.frame(0, "M110 N0") == b"N0 M110 N0*125\n"
    assert gcode.frame(1, "M115") == b"N1 M115*39\n"
    assert gcode.checksum(b"N1 M115") == 39


def test_clean_line_strips_comments_and_blank_lines():
    assert gcode.clean_line(b"G1 X1 Y2 ; move\n", 1) == "G1 X1 Y2"
    assert gcode.clean_line(b"   ; only a comment\n", 2) is None
    assert gcode.clean_line(b"\r\n", 3) is None
    assert gcode.clean_line(b"\tG28\t\r\n", 4) == "G28"
    assert gcode.clean_line(b"G1\tX1\n", 5) == "G1 X1"


def test_clean_line_removes_existing_numbering():
    assert gcode.clean_line(b"N12 G1 X5*85\n", 1) == "G1 X5"
    assert gcode.clean_line(b"N7 *12\n", 2) is None


def test_clean_line_rejects_binary_and_non_ascii():
    error = expect_raises(gcode.GcodeError, gcode.clean_line, b"G1 \xff\xfe X1\n", 9)
    assert error.line_number == 9
    assert "UTF-8" in error.problem
    error = expect_raises(gcode.GcodeError, gcode.clean_line, b"M117 caf\xc3\xa9\n", 10)
    assert "non-ASCII" in error.problem
    error = expect_raises(gcode.GcodeError, gcode.clean_line, b"G1 X1\x00\x01\n", 11)
    assert "control" in error.problem


def test_clean_line_accepts_non_ascii_in_comments():
    assert gcode.clean_line("G1 X1 ; café".encode(), 1) == "G1 X1"


def test_clean_line_rejects_commands_the_firmware_cannot_take():
    long_line = b"M117 " + b"x" * 90 + b"\n"
    error = expect_raises(gcode.GcodeError, gcode.clean_line, long_line, 4)
    assert "longer than" in error.problem
    assert str(error).startswith("line 4:")


def test_z_of_moves():
    assert gcode.z_of("G1 Z0.20") == 0.2
    assert gcode.z_of("G0 X1 Z12.5 F300") == 12.5
    assert gcode.z_of("G1 X1 Y1") is None
    assert gcode.z_of("M104 S200") is None
    assert gcode.z_of("G1 Zfoo") is None


def test_parse_resend_forms():
    assert replies.parse_resend("Resend: 12") == 12
    assert replies.parse_resend("Resend:12") == 12
    assert replies.parse_resend("rs 7") == 7
    assert replies.parse_resend("rs N7") == 7
    assert replies.parse_resend("resend: N3") == 3
    assert replies.parse_resend("Resend: x") is None
    assert replies.parse_resend("ok") is None


def test_classify_errors():
    assert replies.classify_error("checksum mismatch, Last Line: 4") == replies.ERROR_CHECKSUM
    assert replies.classify_error("No Checksum with line number, Last Line: 4") == replies.ERROR_CHECKSUM
    assert replies.classify_error("Line Number is not Last Line Number+1, Last Line: 4") == replies.ERROR_LINE_NUMBER
    assert replies.classify_error("Printer halted. kill() called!") == replies.ERROR_FATAL
    assert replies.classify_error("Thermal Runaway, system stopped! Heater_ID: 0") == replies.ERROR_FATAL
    assert replies.classify_error("MINTEMP triggered, system stopped! Heater_ID: bed") == replies.ERROR_FATAL
    assert replies.classify_error("Probe not deployed") == replies.ERROR_OTHER


def test_parse_temperatures_forms():
    assert replies.parse_temperatures("ok T:20.0 /0.0 B:21.5 /60.0 @:0 B@:0") == {
        "T": (20.0, 0.0),
        "B": (21.5, 60.0),
    }
    multi = replies.parse_temperatures(
        " T:200.0 /200.0 B:60.0 /60.0 T0:200.0 /200.0 T1:25.0 /0.0 C:30.1 /0.0 @:127 B@:64 @0:127"
    )
    assert multi["T1"] == (25.0, 0.0)
    assert multi["C"] == (30.1, 0.0)
    assert "@0" not in multi
    assert replies.parse_temperatures("T:210.3/215.0 B:59.9/60.0") == {"T": (210.3, 215.0), "B": (59.9, 60.0)}
    assert replies.parse_temperatures("T:185.4 E:0 W:?") == {"T": (185.4, None)}
    assert replies.parse_temperatures("echo:busy: processing") is None
    assert replies.parse_temperatures("T:abc") is None


def test_parse_m115_values_with_spaces_and_colons():
    line = (
        "FIRMWARE_NAME:Marlin 2.1.2.1 (Feb 20 2024 12:00:00) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
        "PROTOCOL_VERSION:1.0 MACHINE_TYPE:Ender-3 V2 EXTRUDER_COUNT:1 UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff"
    )
    fields = replies.parse_m115(line)
    assert fields["FIRMWARE_NAME"] == "Marlin 2.1.2.1 (Feb 20 2024 12:00:00)"
    assert fields["MACHINE_TYPE"] == "Ender-3 V2"
    assert fields["EXTRUDER_COUNT"] == "1"
    assert fields["UUID"] == "cede2a2f-41a2-4748-9b12-c55c62f367ff"
    prusa = replies.parse_m115(
        "FIRMWARE_NAME:Prusa-Firmware 3.13.2 based on Marlin FIRMWARE_URL:https://github.com/prusa3d/Prusa-Firmware "
        "PROTOCOL_VERSION:1.0 MACHINE_TYPE:Prusa i3 MK3S EXTRUDER_COUNT:1 UUID:00000000-0000-0000-0000-000000000000"
    )
    assert prusa["FIRMWARE_URL"] == "https://github.com/prusa3d/Prusa-Firmware"
    assert prusa["MACHINE_TYPE"] == "Prusa i3 MK3S"


def test_parse_capability_and_advanced_ok():
    assert replies.parse_capability("Cap:AUTOREPORT_TEMP:1") == ("AUTOREPORT_TEMP", True)
    assert replies.parse_capability("Cap:EEPROM:0") == ("EEPROM", False)
    assert replies.parse_capability("Cap:") is None
    assert replies.parse_capability("ok") is None
    assert replies.parse_advanced_ok("ok N12 P15 B3") == (12, 15, 3)
    assert replies.parse_advanced_ok("ok P15 B3") == (None, 15, 3)
    assert replies.parse_advanced_ok("ok") == (None, None, None)
