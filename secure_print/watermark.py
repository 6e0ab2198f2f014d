"""The per-print watermark: ±1 µm on X of a sparse pseudo-random subset of moves (docs/sealed-job.md).

Each print's marks derive from the license's secret seed, the box id and the print number; tracing a captured
stream tries every (box, print number) the license allows and reports the one whose marks it carries.
"""

import hashlib
import hmac
import math
import re

from firmware_bridge import gcode

# An eligible move and its first X word in one match; "[^Xx]*" cannot pass an X, so only the first X can match.
_ELIGIBLE = re.compile(r"[Gg]0*[01](?![0-9.])[^Xx]*([Xx])\s*([-+]?)([0-9]+)(?:\.([0-9]{0,3}))?(?![0-9.])")
MOVES_PER_BLOCK = 32
SELECT_BELOW = 16  # one byte below 16: one move in 16 is selected
MAX_TRACE_MOVES = 20_000
MAX_TRACE_CANDIDATES = 100_000
QUICK_LOOK_MOVES = 2048
MIN_SELECTED = 64
MATCH_SHARE = 0.9


def mark_key(seed: bytes, box_id: str, print_number: int) -> bytes:
    message = b"mipjob/1 watermark\x00" + box_id.encode() + b"\x00" + print_number.to_bytes(4, "big")
    return hmac.new(seed, message, hashlib.sha256).digest()


def _block(key: bytes, index: int) -> bytes:
    return hashlib.blake2b(index.to_bytes(8, "big"), key=key).digest()


def _micrometres(match) -> int:
    _, sign, whole, decimals = match.groups()
    value = int(whole) * 1000 + (int(decimals.ljust(3, "0")) if decimals else 0)
    return -value if sign == "-" else value


def x_value(command: str):
    """(match, value in µm) of an eligible move's X word, or None when the command is not an eligible move."""
    match = _ELIGIBLE.match(command)
    return None if match is None else (match, _micrometres(match))


def _format_um(value: int) -> str:
    return "%s%d.%03d" % ("-" if value < 0 else "", abs(value) // 1000, abs(value) % 1000)


class Watermarker:
    """Marks the commands of one print as they stream: `mark(command) -> command`."""

    def __init__(self, seed: bytes, box_id: str, print_number: int, max_command_bytes: int = gcode.MAX_COMMAND_BYTES):
        self._key = mark_key(seed, box_id, print_number)
        self._max = max_command_bytes
        self._block = b""
        self.moves = 0
        self.marked = 0

    def mark(self, command: str) -> str:
        if command[0] not in "Gg":
            return command
        match = _ELIGIBLE.match(command)
        if match is None:
            return command
        index = self.moves
        self.moves += 1
        slot = index % MOVES_PER_BLOCK
        if slot == 0:
            self._block = _block(self._key, index // MOVES_PER_BLOCK)
        if self._block[2 * slot] >= SELECT_BELOW:
            return command
        bits = self._block[2 * slot + 1]
        value = _micrometres(match)
        if value % 2 == bits & 1:
            return command
        value += 1 if bits & 2 else -1
        marked = command[: match.start(1)] + "X" + _format_um(value) + command[match.end() :]
        if len(marked) > self._max:
            return command
        self.marked += 1
        return marked


def observed_moves(commands, limit: int = MAX_TRACE_MOVES) -> list:
    """The µm X values of the first `limit` eligible moves among cleaned commands."""
    values = []
    for command in commands:
        found = x_value(command)
        if found is not None:
            values.append(found[1])
            if len(values) >= limit:
                break
    return values


def score(values: list, seed: bytes, box_id: str, print_number: int) -> tuple:
    """(selected, matching) for one candidate print over observed X values."""
    key = mark_key(seed, box_id, print_number)
    selected = matching = 0
    block = b""
    for index, value in enumerate(values):
        slot = index % MOVES_PER_BLOCK
        if slot == 0:
            block = _block(key, index // MOVES_PER_BLOCK)
        if block[2 * slot] < SELECT_BELOW:
            selected += 1
            matching += value % 2 == block[2 * slot + 1] & 1
    return selected, matching


def false_match_chance(selected: int) -> float:
    """P(Bin(selected, 1/2) >= ceil(0.9 * selected)): the chance one wrong candidate matches this well."""
    need = math.ceil(MATCH_SHARE * selected)
    return sum(math.comb(selected, k) for k in range(need, selected + 1)) / (1 << selected)


def matches(selected: int, matching: int) -> bool:
    return selected >= MIN_SELECTED and matching >= math.ceil(MATCH_SHARE * selected)
