"""What the dashboard shows live: temperatures of the last 15 minutes and the current print's layer, Z and
ETA. Written by the printer's owner thread, read by the web app; bounded (one sample a second at most)."""

import collections
import threading

HISTORY_SECONDS = 15 * 60
CONSOLE_LINES = 40  # the manual console's last lines: commands sent by hand and what the idle printer said


class LiveStatus:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.samples = collections.deque(maxlen=HISTORY_SECONDS)  # (time, hotend, hotend target, bed, bed target)
        self.job = None  # {"number", "layer", "z", "eta_seconds"} while a job prints
        self.console = collections.deque(maxlen=CONSOLE_LINES)  # (wall time, "> sent" or "< received")

    def add_console(self, line: str, at: float) -> None:
        with self._lock:
            self.console.append((at, line[:200]))

    def add_temperatures(self, readings: dict, now: float) -> None:
        hotend, hotend_target = readings.get("T", readings.get("T0", (None, None)))
        bed, bed_target = readings.get("B", (None, None))
        with self._lock:
            if self.samples and now - self.samples[-1][0] < 1.0:
                return
            self.samples.append((now, hotend, hotend_target, bed, bed_target))

    def update_job(self, number: int, layer: int, z, source_line: int, source_lines: int, started: float, now: float):
        elapsed = now - started
        eta = None
        if source_line > 0 and elapsed > 0 and source_lines:
            eta = (source_lines - source_line) / (source_line / elapsed)
        with self._lock:
            self.job = {"number": number, "layer": layer, "z": z, "eta_seconds": eta}

    def job_finished(self) -> None:
        with self._lock:
            self.job = None

    def snapshot(self, now: float) -> dict:
        with self._lock:
            samples = [s for s in self.samples if now - s[0] <= HISTORY_SECONDS]
            job = dict(self.job) if self.job else None
            return {"samples": samples, "job": job, "console": list(self.console)}
