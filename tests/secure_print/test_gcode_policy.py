"""The verify pass's fast line screening agrees with checking every line with the one G-code parser."""

import io

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from firmware_bridge import gcode
from secure_print.errors import PolicyError
from secure_print.gcode_policy import LineChecker, check_command
from secure_print.license import GcodePolicy

POLICY = GcodePolicy(max_hotend_c=250, max_bed_c=100)


def reference(data: bytes):
    """The slow, obvious check: every line through gcode.iter_commands, then the policy. Returns the error text."""
    try:
        for number, command in gcode.iter_commands(io.BytesIO(data)):
            check_command(POLICY, command, number)
    except gcode.GcodeError as exc:
        return "%s; it cannot be sent to a printer" % exc
    except PolicyError as exc:
        return str(exc)
    return None


def screened(data: bytes, cuts: list):
    checker = LineChecker(POLICY)
    try:
        start = 0
        for cut in [*sorted(cuts), len(data)]:
            checker.feed(data[start:cut])
            start = max(start, cut)
        checker.finish()
    except PolicyError as exc:
        return str(exc)
    return None


PIECES = [
    "G1 X10.5 Y3", "G0X1", "M104 S200", "M104 S260", "m109 s251", "M140 S90", "M190 R101", "M 997", "M0997",
    "M500", "M110 N0", "M117 Hello M997", "; M997 in a comment", "G28 ; home", "", "   ", "\t", "N12 M997*34",
    "M303 E0 S300", "T0", "M106 S255", "G1 X" + "1" * 90, ";" + "x" * 100, "M117 " + "y" * 80, "G1\x00X1",
    "G1 X1\r", "G1 X1\rM997", "M104 S2.5e3", "M104 S-5", "M1040 S999", "caf\u00e9 ; ok", "M117 caf\u00e9",
]  # fmt: skip


@settings(max_examples=400, deadline=None)
@given(
    st.lists(st.sampled_from(PIECES), max_size=40),
    st.lists(st.integers(0, 4000), max_size=6),
    st.booleans(),
)
def test_screening_agrees_with_the_reference(pieces, cuts, final_newline):
    data = "\n".join(pieces).encode() + (b"\n" if final_newline else b"")
    assert screened(data, [c % (len(data) + 1) for c in cuts]) == reference(data)


@pytest.mark.parametrize(
    ("line", "problem"),
    [
        ("M997", "M997 (firmware update) is forbidden"),
        ("m 500", "M500 (saving settings to EEPROM) is forbidden"),
        ("M109 S251", "asks for 251 °C on the hotend, above the policy's 250 °C"),
        ("M190 R100.5", "asks for 100.5 °C on the bed"),
        ("M104 S200 B400 F1", "M104 asks for 400 °C on the hotend (its B: the AUTOTEMP maximum)"),
        ("M109 S200 B400", "M109 asks for 400 °C on the hotend (its B"),
        ("M141 S80", "M141 asks for 80 °C on the chamber, above the policy's 60 °C"),
        ("M191 R70", "M191 asks for 70 °C on the chamber"),
        ("M303 E-1 S150 C8", "M303 asks for 150 °C on the bed, above the policy's 100 °C"),
        ("M303 E-2 S90", "M303 asks for 90 °C on the chamber"),
        ("M303 E0 S260", "M303 asks for 260 °C on the hotend"),
        ("M568 P0 S260 R150", "M568 asks for 260 °C on the hotend"),
    ],
)
def test_refusals_name_the_line_and_the_rule(line, problem):
    data = b"G28\n; setup\n" + line.encode() + b"\n"
    message = screened(data, [])
    assert message.startswith("line 3: ") and problem in message


def test_allowed_lines_pass():
    assert screened(b"M104 S250\nM140 S100\nM117 M997 is just text here\nM1040 S999\n", [5, 17]) is None
    allowed = b"M104 S200 B240 F1\nM109 S200 B250\nM141 S60\nM191 R40\nM303 E-1 S90\nM303 E0 S240\nM568 S250 R180\n"
    assert screened(allowed, [7]) is None
