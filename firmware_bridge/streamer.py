"""Drives a HostLink over a SerialTransport: connecting (with baud probing) and streaming a job.

This is the blocking shell around the sans-I/O link. The daemon runs it in a thread of its own.
"""

import time
from collections import deque

from firmware_bridge import marlin
from firmware_bridge.errors import NotAPrinterError, PrinterDisconnected
from firmware_bridge.extrusion import ExtrusionTracker
from firmware_bridge.serial_transport import COMMON_BAUD_RATES, SerialTransport

# How many reads and writes the failure report keeps (each a chunk of one or more lines).
RECENT_EXCHANGES = 64


class StreamReport:
    """How a job ended. `last_source_line` is the source line of the last command the printer confirmed."""

    def __init__(self) -> None:
        self.outcome = None
        self.reason = ""
        self.lines_acknowledged = 0
        self.last_source_line = 0
        self.filament_mm = 0.0  # E the printer confirmed (extrusion.ExtrusionTracker), retractions netted out
        self.seconds = 0.0
        self.resends = 0
        self.messages = deque((), 50)  # the printer's latest warnings and errors
        self.warnings = 0  # how many there were in all
        self.recent_io = []  # when the job did not finish: the last lines sent (>) and received (<)

    def __repr__(self) -> str:
        return "StreamReport(%s, %r, lines=%d, resends=%d, %.2fs)" % (
            self.outcome,
            self.reason,
            self.lines_acknowledged,
            self.resends,
            self.seconds,
        )


class Controls:
    """Requests from outside the streaming loop (a signal handler, another thread)."""

    def __init__(self) -> None:
        self.pending = None  # "pause", "resume", "cancel" or "emergency_stop"

    def request(self, action: str) -> None:
        self.pending = action


class PrinterConnection:
    """An identified printer: the transport, the link, and what M115 said."""

    def __init__(self, transport: SerialTransport, link: marlin.HostLink, connected: marlin.Connected) -> None:
        self.transport = transport
        self.link = link
        self.firmware = connected.firmware
        self.capabilities = connected.capabilities

    def close(self) -> None:
        self.transport.close()


class _Exchanger:
    """One round at a time: write what the link wants sent, read what came back, let the link act on it."""

    def __init__(self, transport: SerialTransport, link: marlin.HostLink, clock, on_event) -> None:
        self._transport = transport
        self._link = link
        self._clock = clock
        self._on_event = on_event
        self._deadline = 0.0
        # The last exchanges with the printer, for the failure report (Klipper keeps the same ring).
        self.recent = deque((), RECENT_EXCHANGES)

    def __call__(self) -> list:
        link = self._link
        out = link.data_to_send()
        try:
            if out:  # a port can vanish between two writes as well as during a read
                self.recent.append(b"> " + out)
                self._transport.write(out)
            data = self._transport.read()
            if data:
                self.recent.append(b"< " + data)
        except PrinterDisconnected as exc:
            events = link.connection_lost(str(exc))
        else:
            now = self._clock()
            events = link.receive_data(data, now) if data else []
            if now >= self._deadline:
                events += link.tick(now)
                self._deadline = link.next_deadline(now)
        if self._on_event is not None:
            for event in events:
                self._on_event(event)
        return events


def connect(port: str, bauds=COMMON_BAUD_RATES, link_factory=marlin.HostLink, clock=time.monotonic, on_event=None):
    """Open `port`, find the baud rate at which a printer answers M115, and return a PrinterConnection."""
    tried = []
    for baud in bauds:
        transport = SerialTransport(port, baud)
        link = link_factory()
        link.tick(clock())
        exchange = _Exchanger(transport, link, clock, on_event)
        while link.state == marlin.CONNECTING:
            for event in exchange():
                if isinstance(event, marlin.Connected):
                    return PrinterConnection(transport, link, event)
        transport.close()
        tried.append(str(baud))
        if link.failure is not None and link.failure.startswith("printer disconnected"):
            raise NotAPrinterError("%s went away while probing: %s" % (port, link.failure))
    raise NotAPrinterError("no Marlin-family printer answered M115 on %s at %s baud" % (port, ", ".join(tried)))


def stream(
    connection: PrinterConnection,
    commands,
    clock=time.monotonic,
    on_progress=None,
    on_event=None,
    controls=None,
    progress_interval: float = 0.25,
) -> StreamReport:
    """Send every (source_line, command) of `commands` through the connection; block until the job ends."""
    transport = connection.transport
    link = connection.link
    report = StreamReport()
    pending_sources = deque()  # (source line, E moved) of lines sent and not yet known to be confirmed
    extrusion = ExtrusionTracker()

    def on_sent(source_line: int, command: str) -> None:
        pending_sources.append((source_line, extrusion.feed(command)))

    started = clock()
    next_report = started
    commands = iter(commands)
    exchange = _Exchanger(transport, link, clock, on_event)
    link.start_job()
    progress = link.progress()
    source_failure = None
    while True:
        try:
            events = hand_over_lines(link, commands, on_sent) if link.state == marlin.PRINTING else []
        except Exception as exc:  # the source of lines failed (a job file changed on disk): end the job safely
            source_failure = exc
            events = link.cancel() or []
        if not events:  # (the only event handing over can cause is the end of a job already confirmed)
            events = exchange()
        if controls is not None and controls.pending is not None:
            events += _apply(link, controls)
        for event in events:
            if isinstance(event, marlin.PrinterMessage) and event.level != "info":
                report.messages.append(event.text)
                report.warnings += 1
            if isinstance(event, marlin.JobEnded):
                _flush(transport, link)  # an emergency stop's M112 must still reach the printer
                _settle(pending_sources, progress, report)
                report.outcome = event.outcome
                report.reason = event.reason
                if source_failure is not None:
                    report.reason = "the job could not be read on: %s" % source_failure
                report.lines_acknowledged = event.lines_acknowledged
                report.resends = progress.resends
                report.seconds = clock() - started
                if event.outcome != marlin.DONE:
                    report.recent_io = _recent_lines(exchange.recent)
                if on_progress is not None:
                    on_progress(progress, report.last_source_line)
                return report
        if len(pending_sources) > 512:  # without a progress callback nothing else keeps it short
            _settle(pending_sources, progress, report)
        if on_progress is not None:
            now = clock()
            if now >= next_report:
                next_report = now + progress_interval
                _settle(pending_sources, progress, report)
                on_progress(progress, report.last_source_line)


def keep_alive(connection: PrinterConnection, seconds: float, clock=time.monotonic, on_event=None) -> bool:
    """Talk with an idle printer for `seconds`: its temperature reports are read (or polled), and an unplugged
    port or a halted printer is noticed now rather than at the next job. False when the printer is unusable."""
    exchange = _Exchanger(connection.transport, connection.link, clock, on_event)
    end = clock() + seconds
    while clock() < end:
        exchange()
        if connection.link.state in (marlin.FAILED, marlin.HALTED):
            return False
    return True


def hand_over_lines(link: marlin.HostLink, commands, on_sent=None) -> list:
    """Give the link as many (source_line, command) items as it will take; finish the job when they run out.
    `on_sent(source_line, command)` is called for each line handed over.

    Returns the events of finishing (JobEnded when every line was already confirmed), else an empty list.
    """
    while link.ready_for_job_line():
        item = next(commands, None)
        if item is None:
            return link.finish_job()
        link.send_job_line(item[1])
        if on_sent is not None:
            on_sent(item[0], item[1])
    return []


def _recent_lines(chunks, limit: int = 40) -> list:
    lines = []
    for chunk in chunks:
        direction, payload = chunk[:2].decode(), chunk[2:]
        for line in payload.decode("utf-8", "replace").splitlines():
            lines.append(direction + line)
    return lines[-limit:]


def _flush(transport: SerialTransport, link: marlin.HostLink) -> None:
    out = link.data_to_send()
    if out:
        try:
            transport.write(out)
        except PrinterDisconnected:
            pass  # the job has already ended; the report says why


def _settle(pending_sources: deque, progress: marlin.Progress, report: StreamReport) -> None:
    """Move the confirmed lines' source numbers and E movement into the report."""
    confirmed = progress.lines_acknowledged - report.lines_acknowledged
    while confirmed > 0 and pending_sources:
        report.last_source_line, moved = pending_sources.popleft()
        report.filament_mm += moved
        confirmed -= 1
    report.lines_acknowledged = progress.lines_acknowledged


def _apply(link: marlin.HostLink, controls: Controls) -> list:
    """Carry out a pending request; returns the events it caused (a cancel or stop can end the job)."""
    action = controls.pending
    controls.pending = None
    try:
        return getattr(link, action)() or []
    except marlin.LocalProtocolError:
        return []  # e.g. pause while already finishing: the request no longer applies
