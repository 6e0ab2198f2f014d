"""Millimetres of filament (E) a stream of G-code commands moves, for the print receipt. Sans-I/O: fed one
cleaned command at a time (gcode.clean_line), it returns how far that command moves E.

It follows absolute and relative extrusion (M82/M83, and G90/G91, which set E's mode too), `G92 E` resets and
G0/G1 moves; retractions count negative, so a retract and its prime cancel out. Firmware retraction (G10/G11)
moves nothing here. Runs under CPython and MicroPython alike."""

_MOVES = ("G0", "G1", "G00", "G01")


def _e_word(words: list):
    for word in words[1:]:
        if word[:1] == "E":
            try:
                return float(word[1:])
            except ValueError:
                return None
    return None


class ExtrusionTracker:
    """Where E stands; `feed(command)` gives the E movement of one command in mm (0.0 for most)."""

    def __init__(self) -> None:
        self.relative = False
        self.position = 0.0

    def feed(self, command: str) -> float:
        """The signed E movement of one cleaned command, in mm."""
        if "E" not in command and command[:2] not in ("M8", "G9"):
            return 0.0
        words = command.split()
        if not words:
            return 0.0
        head = words[0]
        if head in ("M82", "G90"):
            self.relative = False
        elif head in ("M83", "G91"):
            self.relative = True
        elif head == "G92":
            e = _e_word(words)
            if e is not None:
                self.position = e
        elif head in _MOVES:
            e = _e_word(words)
            if e is not None:
                delta = e if self.relative else e - self.position
                self.position = self.position + e if self.relative else e
                return delta
        return 0.0
