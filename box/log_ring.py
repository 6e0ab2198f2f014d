"""The daemon's recent log lines, kept in memory (bounded) for the fleet's `logs.fetch`."""

import collections
import logging
import threading

MAX_LINES = 1000


class LogRing(logging.Handler):
    def __init__(self, capacity: int = MAX_LINES) -> None:
        super().__init__()
        self._lines = collections.deque(maxlen=capacity)
        self._guard = threading.Lock()
        self.setFormatter(logging.Formatter("%(asctime)s %(name)s: %(message)s"))

    def emit(self, record: logging.LogRecord) -> None:
        try:
            line = self.format(record)
        except (TypeError, ValueError):
            return
        with self._guard:
            self._lines.append(line)

    def last(self, count: int) -> list:
        with self._guard:
            return list(self._lines)[-count:]
