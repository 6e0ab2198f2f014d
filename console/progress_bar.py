"""A one-line progress display for long work on a terminal (and plain periodic lines when not a terminal)."""

import sys
import time


def _clock(seconds: float) -> str:
    seconds = int(max(seconds, 0))
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


class ProgressBar:
    """Redraws one status line; `update(done, extra)` is cheap enough to call a few times a second."""

    def __init__(self, total: int, label: str, stream=sys.stderr, width: int = 30, unit: str = "lines") -> None:
        self.total = max(total, 1)
        self.label = label
        self.unit = unit
        self._stream = stream
        self._width = width
        self._started = time.monotonic()
        self._interactive = stream.isatty()
        self._last_plain = 0.0

    def update(self, done: int, extra: str = "") -> None:
        now = time.monotonic()
        elapsed = now - self._started
        fraction = min(done / self.total, 1.0)
        rate = done / elapsed if elapsed > 0 else 0.0
        eta = (self.total - done) / rate if rate > 0 else 0.0
        filled = int(fraction * self._width)
        if self.unit == "bytes":
            amount = "%.1f/%.1f MB %6.1f MB/s" % (done / 1e6, self.total / 1e6, rate / 1e6)
        else:
            amount = "%d/%d %s %6.0f %s/s" % (done, self.total, self.unit, rate, self.unit)
        line = "%s [%s%s] %5.1f%% %s ETA %s %s" % (
            self.label,
            "#" * filled,
            "." * (self._width - filled),
            fraction * 100,
            amount,
            _clock(eta),
            extra,
        )
        if self._interactive:
            self._stream.write("\r" + line.rstrip() + "\x1b[K")
            self._stream.flush()
        elif now - self._last_plain >= 5.0 or done >= self.total:
            self._last_plain = now
            self._stream.write(line.rstrip() + "\n")
            self._stream.flush()

    def close(self) -> None:
        if self._interactive:
            self._stream.write("\n")
            self._stream.flush()
