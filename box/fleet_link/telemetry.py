"""What the box reports as telemetry, and when (sans-I/O: the caller passes what it sees and the time).

Samples (printer state, temperatures, the printing job's progress) come once a second while printing and every
`idle_seconds` otherwise; they may be thinned by the outbox's cap policy. Events (a job changing state, the printer
coming or going, the broker link, errors) are recorded as they happen and are never thinned. Temperatures are
tenths of a degree: signed records hold integers only (canonical JSON)."""

from box.jobs import job_states
from box.jobs.store import failure_report, print_facts

PRINTING_INTERVAL = 1.0
MAX_REPORT_LINES = 20


def _tenths(value):
    return None if value is None else round(value * 10)


def sample(printer_connected: bool, printing: bool, live: dict, job_row=None) -> dict:
    """A sample record's body from the printer owner's live view (LiveStatus.snapshot) and the printing job."""
    latest = live["samples"][-1] if live["samples"] else None
    body = {
        "type": "sample",
        "printer": "printing" if printing else ("ready" if printer_connected else "disconnected"),
        "hotend": [_tenths(latest[1]), _tenths(latest[2])] if latest else None,
        "bed": [_tenths(latest[3]), _tenths(latest[4])] if latest else None,
        "job": None,
    }
    job = live.get("job")
    if job_row is not None:
        eta = job.get("eta_seconds") if job else None
        body["job"] = {
            "number": job_row["id"],
            "job_id": job_row["job_id"],
            "line": job_row["last_source_line"] or 0,
            "lines": job_row["source_lines"] or 0,
            "layer": job.get("layer") if job else None,
            "eta_s": None if eta is None else int(eta),
        }
    return body


class Schedule:
    """When the next sample is due: 1 Hz while printing, `idle_seconds` apart otherwise."""

    def __init__(self, idle_seconds: float) -> None:
        self.idle_seconds = idle_seconds
        self._last = None

    def due(self, now: float, printing: bool) -> bool:
        interval = PRINTING_INTERVAL if printing else self.idle_seconds
        if self._last is None or now - self._last >= interval:
            self._last = now
            return True
        return False


class RejectionLog:
    """How many refused-command events may enter the outbox: `burst` at once, then one every `interval` seconds,
    so a flood of junk cannot fill it. `admit` returns None (leave it out) or how many were left out before."""

    def __init__(self, burst: int = 10, interval: float = 6.0) -> None:
        self.burst = burst
        self.interval = interval
        self._tokens = float(burst)
        self._last = None
        self._suppressed = 0

    def admit(self, now: float):
        if self._last is not None:
            self._tokens = min(self.burst, self._tokens + (now - self._last) / self.interval)
        self._last = now
        if self._tokens < 1:
            self._suppressed += 1
            return None
        self._tokens -= 1
        suppressed, self._suppressed = self._suppressed, 0
        return suppressed


def rejection_event(command, reason: str, suppressed: int) -> dict:
    """The event body of a refused command: who sent it under which number and why, never what it said."""
    key_id = command.get("key_id") if isinstance(command, dict) else None
    sequence = command.get("seq") if isinstance(command, dict) else None
    return {
        "type": "command.rejected",
        "from": key_id[:64] if isinstance(key_id, str) else "",
        "seq": sequence if isinstance(sequence, int) and not isinstance(sequence, bool) else -1,
        "reason": reason[:200],
        "suppressed": suppressed,
    }


class JobWatch:
    """Turns the job table into job events: each call returns the changes since the last one. `seen` is what
    was reported before (persisted with the events, so nothing is missed or repeated across a restart); a job
    not in it is reported in its current state."""

    def __init__(self, seen=None) -> None:
        self._states = dict(seen or {})

    def changes(self, rows: list) -> list:
        """Events for the rows whose state differs from the last one reported, in the order given (a job's
        successive rows each count)."""
        events = []
        for row in rows:
            number = row["id"]
            if self._states.get(number) != row["state"]:
                event = {
                    "type": "job",
                    "job": number,
                    "job_id": row["job_id"],
                    "state": row["state"],
                    "reason": (row["reason"] or "")[:500],
                    "line": row["last_source_line"] or 0,
                }
                report = failure_report(row)[:MAX_REPORT_LINES]
                if report:
                    event["report"] = report
                attested = print_facts(row).get("attestation") if row["state"] in job_states.FINISHED else None
                if isinstance(attested, dict):
                    event["attestation"] = attested  # the edge bridge's evidence, as in the receipt
                events.append(event)
                self._states[number] = row["state"]
        return events
