"""Parsers for the lines Marlin-family firmware sends back: ok, Resend, errors, temperatures, M115.

Pure functions over one decoded line; no state. Runs under CPython and MicroPython alike.
"""

# How an "Error:" line is classified. Recoverable errors are followed by "Resend:" and the link repairs them.
ERROR_LINE_NUMBER = "line-number"
ERROR_CHECKSUM = "checksum"
ERROR_FATAL = "fatal"
ERROR_OTHER = "other"

_FATAL_MARKERS = (
    "halted",
    "kill()",
    "thermal runaway",
    "system stopped",
    "mintemp",
    "maxtemp",
    "heating failed",
    "emergency stop",
)


def classify_error(text: str) -> str:
    """Classify the text after "Error:" (or "!!") into one of the ERROR_* kinds."""
    lowered = text.lower()
    for marker in _FATAL_MARKERS:
        if marker in lowered:
            return ERROR_FATAL
    if "is not last line number" in lowered:
        return ERROR_LINE_NUMBER
    if "checksum" in lowered or "last line" in lowered:
        return ERROR_CHECKSUM
    return ERROR_OTHER


def parse_resend(line: str):
    """The line number in "Resend: 12", "Resend:12", "rs 12" or "rs N12"; None if the line is not one."""
    lowered = line.lower()
    if lowered.startswith("resend"):
        rest = line[6:]
    elif lowered.startswith("rs ") or lowered.startswith("rs:"):
        rest = line[3:]
    else:
        return None
    rest = rest.replace(":", " ").replace("N", " ").strip()
    digits = rest.split()[0] if rest else ""
    if not digits.isdigit():
        return None
    return int(digits)


def parse_advanced_ok(line: str):
    """(last_line, planner_free, buffer_free) from "ok N12 P15 B3"; fields missing are None."""
    last_line = planner_free = buffer_free = None
    for word in line.split()[1:]:
        key = word[0]
        value = word[1:]
        if not value.isdigit():
            continue
        if key == "N":
            last_line = int(value)
        elif key == "P":
            planner_free = int(value)
        elif key == "B":
            buffer_free = int(value)
    return last_line, planner_free, buffer_free


def _to_float(text: str):
    try:
        return float(text)
    except ValueError:
        return None


def parse_temperatures(line: str):
    """Temperatures in a report like "T:210.1 /210.0 B:60.2 /60.0 T0:... C:... @:127 B@:64".

    Returns a dict mapping sensor name ("T", "T0", "B", "C", ...) to (actual, target or None), or None when
    the line holds no temperature. Heater powers ("@:", "B@:") and other fields are ignored.
    """
    if "T:" not in line and "B:" not in line:
        return None
    readings = {}
    words = line.replace("/ ", "/").split()
    index = 0
    while index < len(words):
        word = words[index]
        index += 1
        colon = word.find(":")
        if colon <= 0:
            continue
        name = word[:colon]
        if name == "ok" or "@" in name:
            continue
        if not (name in ("T", "B", "C") or (name[0] == "T" and name[1:].isdigit())):
            continue
        value = word[colon + 1 :]
        target = None
        slash = value.find("/")
        if slash >= 0:
            target = _to_float(value[slash + 1 :])
            value = value[:slash]
        elif index < len(words) and words[index][:1] == "/":
            target = _to_float(words[index][1:])
            index += 1
        actual = _to_float(value)
        if actual is not None:
            readings[name] = (actual, target)
    return readings or None


def _is_key(word: str) -> bool:
    colon = word.find(":")
    if colon <= 0:
        return False
    return all("A" <= char <= "Z" or char == "_" for char in word[:colon])


def parse_m115(line: str) -> dict:
    """Key/value pairs of an M115 report: FIRMWARE_NAME, MACHINE_TYPE, EXTRUDER_COUNT, UUID, ...

    Values may contain spaces ("Marlin 2.1.2 (Feb 20 2024 12:00:00)"); a new key starts at a word made of
    capitals and underscores followed by a colon.
    """
    fields = {}
    key = None
    parts = []
    for word in line.split(" "):
        if _is_key(word):
            if key is not None:
                fields[key] = " ".join(parts).strip()
            colon = word.find(":")
            key = word[:colon]
            parts = [word[colon + 1 :]]
        elif key is not None:
            parts.append(word)
    if key is not None:
        fields[key] = " ".join(parts).strip()
    return fields


def parse_capability(line: str):
    """(name, enabled) from "Cap:AUTOREPORT_TEMP:1", or None."""
    if not line.startswith("Cap:"):
        return None
    name, _, value = line[4:].partition(":")
    name = name.strip()
    if not name:
        return None
    return name, value.strip() == "1"
