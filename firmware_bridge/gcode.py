"""G-code lines as the printer link sends them: cleaning, framing with N and checksum, Z extraction.

This module is the one G-code line parser of the project. It runs under CPython and MicroPython alike.
"""

from firmware_bridge.errors import GcodeError

# Marlin's MAX_CMD_SIZE is 96 bytes for the whole framed line ("N123 G1 X1*45"); keeping the command
# itself to 80 bytes leaves room for a line number up to N9999999 and the checksum.
MAX_COMMAND_BYTES = 80
# A raw source line longer than this is not G-code (a binary file, a minified blob): refuse it early.
MAX_RAW_LINE_BYTES = 4096


def checksum(data: bytes) -> int:
    """XOR of all bytes, as Marlin computes it over everything before '*'."""
    value = 0
    for byte in data:
        value ^= byte
    return value


def frame(line_number: int, command: str) -> bytes:
    """The bytes to put on the wire for `command` as line `line_number`, newline included."""
    body = ("N%d %s" % (line_number, command)).encode()
    return b"%s*%d\n" % (body, checksum(body))


# CPython checks a line in C; MicroPython (no str.isprintable, lenient decode) walks the bytes.
_HAS_ISPRINTABLE = hasattr("", "isprintable") and hasattr(b"", "isascii")


def _checked_text(raw: bytes, line_number: int) -> str:
    """Decode one stripped line byte by byte, saying exactly what is wrong with it."""
    non_ascii = control = False
    for byte in raw:
        if byte >= 128:
            non_ascii = True
        elif byte < 32 and byte != 9:
            control = True
    if non_ascii:
        try:
            raw.decode("utf-8")
        except UnicodeError:
            raise GcodeError(line_number, "bytes that are not UTF-8 text (is this a binary file?)") from None
    if control:
        raise GcodeError(line_number, "control characters (is this a binary file?)")
    if non_ascii:
        raise GcodeError(line_number, "non-ASCII characters outside a comment")
    return raw.decode().replace("\t", " ")


def _strip_framing(text: str) -> str:
    """Drop an existing 'N123 ' prefix and '*45' suffix (files captured from another host carry them)."""
    if text[:1] in ("N", "n") and len(text) > 1 and text[1].isdigit():
        cut = 1
        while cut < len(text) and text[cut].isdigit():
            cut += 1
        text = text[cut:].lstrip()
    star = text.find("*")
    if star >= 0:
        text = text[:star].rstrip()
    return text


def clean_line(raw: bytes, line_number: int, max_command_bytes: int = MAX_COMMAND_BYTES):
    """Return the command in one raw source line, or None for a blank or comment-only line.

    Comments (';' to the end of the line) and surrounding white space are stripped; an existing line
    number and checksum are removed so the link can apply its own. Raises GcodeError for binary junk,
    non-ASCII commands and commands longer than the firmware accepts.
    """
    semicolon = raw.find(b";")
    if semicolon >= 0:
        raw = raw[:semicolon]
    raw = raw.strip()
    if not raw:
        return None
    if _HAS_ISPRINTABLE and raw.isascii():
        text = raw.decode()
        if not text.isprintable():
            text = text.replace("\t", " ")
            if not text.isprintable():
                raise GcodeError(line_number, "control characters (is this a binary file?)")
    else:
        text = _checked_text(raw, line_number)
    if "*" in text or text[0] in ("N", "n"):
        text = _strip_framing(text)
        if not text:
            return None
    if len(text) > max_command_bytes:
        raise GcodeError(
            line_number,
            "command is %d bytes, longer than the %d the printer accepts" % (len(text), max_command_bytes),
        )
    return text


def iter_commands(stream, max_command_bytes: int = MAX_COMMAND_BYTES):
    """Yield (source_line_number, command) for every command in a binary file-like object."""
    line_number = 0
    while True:
        raw = stream.readline(MAX_RAW_LINE_BYTES + 1)
        if not raw:
            return
        line_number += 1
        if len(raw) > MAX_RAW_LINE_BYTES and not raw.endswith(b"\n"):
            raise GcodeError(line_number, "longer than %d bytes (is this a binary file?)" % MAX_RAW_LINE_BYTES)
        command = clean_line(raw, line_number, max_command_bytes)
        if command is not None:
            yield line_number, command


def word_value(command: str, letter: str):
    """The number after `letter` among a command's parameters, or None: 0.5 for "E" of "G1 X1 E0.5" and of
    "G1X1E0.5" (a firmware reads words run together too)."""
    at = 1
    while at < len(command) and (command[at].isdigit() or command[at] == "."):
        at += 1  # past the code itself (G1, G92, M155)
    at = command.find(letter, at)
    if at < 0:
        return None
    end = at + 1
    while end < len(command) and command[end] in "+-.0123456789":
        end += 1
    try:
        return float(command[at + 1 : end])
    except ValueError:
        return None


def z_of(command: str):
    """The Z coordinate a G0/G1 move sets, or None."""
    if command[:2] not in ("G0", "G1") or " Z" not in command:
        return None
    for word in command.split():
        if word[0] == "Z":
            try:
                return float(word[1:])
            except ValueError:
                return None
    return None
