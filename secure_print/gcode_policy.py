"""The verify pass's check of every G-code line: sendable by the printer link, and within the job's policy.

The check must agree exactly with what the stream pass will send, so every decision on a line goes through
firmware_bridge.gcode.clean_line, the one G-code line parser. Scanning line by line in Python would cap the verify
pass far below the decompressor's speed, so each block is first screened with C-speed byte operations, and only
lines that can matter (an `M` or `m` anywhere, over 80 bytes, or unusual bytes) are parsed.
"""

import re

from firmware_bridge import gcode
from secure_print.errors import PolicyError

# One translate gives a block's shape: printable bytes and tabs become "a", CR "r", newlines stay, anything else
# NUL. A run of 81 "a" is a line longer than a command may be; a NUL or a CR not ending a line is unusual.
_LINE_SHAPE = bytes(
    10 if byte == 10 else 114 if byte == 13 else 97 if 32 <= byte < 127 or byte == 9 else 0 for byte in range(256)
)
_LONG_LINE = b"a" * (gcode.MAX_COMMAND_BYTES + 1)
_WORD = re.compile(r"([A-Z])\s*([-+]?[0-9]*\.?[0-9]*)")
# Every command that sets a temperature, with the heater it sets and the parameters that are temperatures:
# S (target), R (target when waiting to cool), B (the AUTOTEMP maximum the firmware may heat to). M303 (PID
# tuning) heats the heater that E names: -1 the bed, -2 the chamber, any other the hotend. M568 is RepRapFirmware's.
_HOTEND, _BED, _CHAMBER = "hotend", "bed", "chamber"
_TEMPERATURE_COMMANDS = {
    104: (_HOTEND, "SRB"),
    109: (_HOTEND, "SRB"),
    568: (_HOTEND, "SR"),
    140: (_BED, "SR"),
    190: (_BED, "SR"),
    141: (_CHAMBER, "SR"),
    191: (_CHAMBER, "SR"),
    303: (None, "S"),
}
_M303_HEATERS = {"-1": _BED, "-2": _CHAMBER}
_PARAMETER_NOTES = {"R": " (its R: the target when waiting)", "B": " (its B: the AUTOTEMP maximum)"}
_M_CODE = re.compile(r"M\s*([0-9]+)")
_DESCRIPTIONS = {
    "M28": "writing to the printer's SD card",
    "M29": "writing to the printer's SD card",
    "M928": "logging to the printer's SD card",
    "M500": "saving settings to EEPROM",
    "M502": "resetting settings to factory defaults",
    "M997": "firmware update",
    "M110": "setting the line number, which the box's printer link owns",
}


def check_command(policy, command: str, line_number: int) -> None:
    """Raise PolicyError when one cleaned command breaks `policy` (a license.GcodePolicy)."""
    upper = command.upper()
    if upper[0] != "M":
        return
    match = _M_CODE.match(upper)
    if match is None:
        return
    code = int(match.group(1))
    name = "M%d" % code
    if name in policy.forbidden:
        what = _DESCRIPTIONS.get(name)
        raise PolicyError(
            "line %d: %s%s is forbidden by the job's G-code policy"
            % (line_number, name, " (%s)" % what if what else "")
        )
    entry = _TEMPERATURE_COMMANDS.get(code)
    if entry is None:
        return
    heater, temperature_letters = entry
    words = _WORD.findall(upper, match.end())
    if heater is None:
        heater = next((_M303_HEATERS.get(value, _HOTEND) for letter, value in words if letter == "E"), _HOTEND)
    limit = {_HOTEND: policy.max_hotend_c, _BED: policy.max_bed_c, _CHAMBER: policy.max_chamber_c}[heater]
    for letter, value in words:
        if letter in temperature_letters and value not in ("", "-", "+", ".") and float(value) > limit:
            raise PolicyError(
                "line %d: %s asks for %s °C on the %s%s, above the policy's %d °C"
                % (line_number, name, value, heater, _PARAMETER_NOTES.get(letter, ""), limit)
            )


class LineChecker:
    """Fed the decompressed G-code block by block; raises PolicyError naming the first bad line."""

    def __init__(self, policy) -> None:
        self.policy = policy
        self.lines = 0  # complete lines already checked
        self._carry = b""

    def feed(self, block: bytes) -> None:
        data = self._carry + block if self._carry else block
        cut = data.rfind(b"\n") + 1
        self._carry = data[cut:]
        if len(self._carry) > gcode.MAX_RAW_LINE_BYTES:
            raise PolicyError(
                "line %d: longer than %d bytes (is this a binary file?)"
                % (self.lines + data.count(b"\n", 0, cut) + 1, gcode.MAX_RAW_LINE_BYTES)
            )
        if cut:
            self._check_lines(data[:cut])

    def finish(self) -> None:
        if self._carry:
            self._check_lines(self._carry + b"\n")
            self._carry = b""

    def _check_lines(self, part: bytes) -> None:
        """`part` holds whole lines, each ending in a newline."""
        line_count = part.count(b"\n")
        shape = part.translate(_LINE_SHAPE)
        unusual = b"\x00" in shape or (b"r" in shape and shape.count(b"r") != shape.count(b"r\n"))
        if unusual or shape.find(_LONG_LINE) >= 0:
            spans = _all_lines(part)
        else:
            spans = sorted(_lines_with(part, b"M") | _lines_with(part, b"m"))
        line_number, counted_to = self.lines + 1, 0
        for start, end in spans:
            line_number += part.count(b"\n", counted_to, start)
            counted_to = start
            try:
                command = gcode.clean_line(part[start:end], line_number)
            except gcode.GcodeError as exc:
                raise PolicyError("%s; it cannot be sent to a printer" % exc) from None
            if command is not None:
                check_command(self.policy, command, line_number)
        self.lines += line_count


def _lines_with(part: bytes, letter: bytes) -> set:
    """(start, end) of every line of `part` holding `letter`; memchr-speed on lines without it."""
    spans = set()
    position = part.find(letter)
    while position >= 0:
        start = part.rfind(b"\n", 0, position) + 1
        end = part.find(b"\n", position)
        spans.add((start, end))
        position = part.find(letter, end)
    return spans


def _all_lines(part: bytes) -> list:
    spans = []
    start = 0
    for line in part.split(b"\n")[:-1]:
        spans.append((start, start + len(line)))
        start += len(line) + 1
    return spans
