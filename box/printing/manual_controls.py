"""What the owner may do to an idle printer by hand: preheat (presets or custom), cool down, home, jog,
extrude and retract, motors off, and one G-code line of their own. Pure: each action and its form fields
become a description for the event log and the commands for the printer's link, or a refusal that says what
to change. The printer's owner sends them (`PrinterOwner.submit_manual`), never while a job runs."""

import re

from box.errors import BadInputError

# Hotend and bed targets in °C; what a spool's label usually says.
PRESETS = {"PLA": (200, 60), "PETG": (235, 80)}
MAX_HOTEND_C = 300
MAX_BED_C = 120
MAX_JOG_MM = 100.0
MAX_EXTRUDE_MM = 100.0
JOG_FEED_MM_PER_MIN = {"X": 3000, "Y": 3000, "Z": 600}
EXTRUDE_FEED_MM_PER_MIN = 300
MAX_CONSOLE_BYTES = 80  # the link's own limit for one command (firmware_bridge.gcode.MAX_COMMAND_BYTES)
_CONSOLE = re.compile(r"[GMT]\d{1,4}( [ -~]*)?\Z")
# Commands the link itself owns (line numbers, the emergency stop): sending them by hand would confuse it.
_LINK_OWNED = {
    "M110": "the box numbers the lines itself",
    "M112": "an emergency stop halts the printer until it is reset",
}
ACTIONS = ("preheat", "cooldown", "home", "jog", "extrude", "motors-off", "console")


class ControlRefused(BadInputError):
    """A manual control's fields are wrong; nothing was sent."""


def _number(fields, name: str, low: float, high: float, what: str) -> float:
    text = str(fields.get(name, "")).strip().replace(",", ".")
    try:
        value = float(text)
    except ValueError:
        raise ControlRefused("%s is a number from %g to %g" % (what, low, high)) from None
    if not low <= value <= high:  # NaN and infinities fail this too
        raise ControlRefused("%s is a number from %g to %g" % (what, low, high))
    return value


def commands_for(action: str, fields) -> tuple:
    """(description, commands) for one manual control and its form `fields`; raises ControlRefused."""
    if action == "preheat":
        preset = str(fields.get("preset", "")).upper()
        if preset in PRESETS:
            hotend, bed = PRESETS[preset]
            name = "preheat for %s" % preset
        elif preset == "CUSTOM":
            hotend = round(_number(fields, "hotend", 0, MAX_HOTEND_C, "the hotend temperature (°C)"))
            bed = round(_number(fields, "bed", 0, MAX_BED_C, "the bed temperature (°C)"))
            name = "preheat"
        else:
            raise ControlRefused("choose PLA, PETG or custom temperatures")
        return "%s (hotend %d °C, bed %d °C)" % (name, hotend, bed), ["M104 S%d" % hotend, "M140 S%d" % bed]
    if action == "cooldown":
        return "cool down (heaters and fan off)", ["M104 S0", "M140 S0", "M107"]
    if action == "home":
        axes = str(fields.get("axes", "XYZ")).upper()
        if not axes or any(axis not in "XYZ" for axis in axes) or len(set(axes)) != len(axes):
            raise ControlRefused("home X, Y, Z or any of them together")
        return "home %s" % axes, ["G28" if axes == "XYZ" else "G28 " + " ".join(sorted(axes))]
    if action == "jog":
        axis = str(fields.get("axis", "")).upper()
        if axis not in JOG_FEED_MM_PER_MIN:
            raise ControlRefused("jog X, Y or Z")
        distance = _number(fields, "distance", -MAX_JOG_MM, MAX_JOG_MM, "the distance (mm)")
        if distance == 0:
            raise ControlRefused("the distance (mm) is not 0")
        move = "G1 %s%.2f F%d" % (axis, distance, JOG_FEED_MM_PER_MIN[axis])
        return "jog %s by %+.2f mm" % (axis, distance), ["G91", move, "G90"]
    if action == "extrude":
        length = _number(fields, "length", -MAX_EXTRUDE_MM, MAX_EXTRUDE_MM, "the length (mm)")
        if str(fields.get("direction", "")) == "retract":
            length = -abs(length)
        if length == 0:
            raise ControlRefused("the length (mm) is not 0")
        move = "G1 E%.2f F%d" % (length, EXTRUDE_FEED_MM_PER_MIN)
        what = "extrude %.2f mm" % length if length > 0 else "retract %.2f mm" % -length
        return what, ["M83", move, "M82"]
    if action == "motors-off":
        return "motors off", ["M84"]
    if action == "console":
        line = str(fields.get("command", "")).strip()
        if "\n" in line or "\r" in line or len(line.encode()) > MAX_CONSOLE_BYTES:
            raise ControlRefused("one command of at most %d characters" % MAX_CONSOLE_BYTES)
        command = line.split(";", 1)[0].strip()
        if "*" in command:
            raise ControlRefused("a command without a checksum: the box adds line numbers and checksums")
        code = command.split(" ", 1)[0].upper()
        if not _CONSOLE.match(code + command[len(code) :]):
            raise ControlRefused("a G-code command such as M503 or G28 X (letter G, M or T, then its number)")
        if code in _LINK_OWNED:
            raise ControlRefused("%s is not sent by hand: %s" % (code, _LINK_OWNED[code]))
        sent = code + command[len(code) :]
        return "console: %s" % sent, [sent]
    raise ControlRefused("unknown control %r" % action)
