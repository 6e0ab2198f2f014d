"""The G-code's own time estimate: the sum of every move's length over its feed rate, plus dwells. Acceleration
is ignored, so the estimate is a lower bound of the real print time (a verifier refuses prints much faster than
it: docs/verifier.md). Reads commands as `gcode.iter_commands` yields them."""

import math

DEFAULT_FEED_MM_PER_MIN = 1500.0
MIN_FEED_MM_PER_MIN = 1.0


class TimeEstimate:
    """Fed commands in order; `seconds` is the estimate so far, `last_line` the source line of the last command."""

    def __init__(self) -> None:
        self.seconds = 0.0
        self.last_line = 0
        self._position = [0.0, 0.0, 0.0, 0.0]  # X Y Z E
        self._relative = False
        self._relative_e = False
        self._feed = DEFAULT_FEED_MM_PER_MIN

    def feed(self, line_number: int, command: str) -> None:
        self.last_line = line_number
        words = command.split()
        code = words[0].upper()
        if code in ("G0", "G1"):
            self._move(words[1:])
        elif code == "G4":
            for word in words[1:]:
                value = _number(word[1:])
                if value is not None and word[0] in "Pp":
                    self.seconds += max(0.0, value) / 1000
                elif value is not None and word[0] in "Ss":
                    self.seconds += max(0.0, value)
        elif code == "G90":
            self._relative = self._relative_e = False
        elif code == "G91":
            self._relative = self._relative_e = True
        elif code == "M82":
            self._relative_e = False
        elif code == "M83":
            self._relative_e = True
        elif code == "G92":
            for word in words[1:]:
                axis = "XYZE".find(word[0].upper())
                value = _number(word[1:])
                if axis >= 0 and value is not None:
                    self._position[axis] = value

    def _move(self, words) -> None:
        delta = [0.0, 0.0, 0.0, 0.0]
        for word in words:
            letter, value = word[0].upper(), _number(word[1:])
            if value is None:
                continue
            if letter == "F":
                self._feed = max(MIN_FEED_MM_PER_MIN, value)
                continue
            axis = "XYZE".find(letter)
            if axis < 0:
                continue
            relative = self._relative_e if axis == 3 else self._relative
            delta[axis] = value if relative else value - self._position[axis]
            self._position[axis] += delta[axis]
        distance = math.sqrt(delta[0] ** 2 + delta[1] ** 2 + delta[2] ** 2) or abs(delta[3])
        self.seconds += distance / (self._feed / 60)


def _number(text: str):
    try:
        return float(text)
    except ValueError:
        return None


def estimate(commands) -> TimeEstimate:
    """The estimate of (source line, command) pairs, such as `gcode.iter_commands(handle)` yields."""
    result = TimeEstimate()
    for line_number, command in commands:
        result.feed(line_number, command)
    return result
