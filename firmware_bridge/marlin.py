"""Sans-I/O host side of the Marlin-family serial protocol (Marlin 2.x, Prusa, RepRapFirmware in Marlin mode).

`HostLink` is a state machine. The caller feeds it what the printer sent (`receive_data`) and the time
(`tick`), pushes job lines when `ready_for_job_line()` says so, writes out `data_to_send()`, and handles the
events that `receive_data` and `tick` return. It never touches a port, a clock or a file, so the same code
runs in the box daemon, in tests and under MicroPython on the edge firmware (no dataclasses, no `match`).

The protocol and its states are described in docs/printer-link.md.
"""

from collections import deque

from firmware_bridge import gcode, replies
from firmware_bridge.errors import LocalProtocolError

# Link states. All legal transitions are in _TRANSITIONS; _set_state rejects the rest.
CONNECTING = "connecting"  # M110/M115 sent, waiting for the firmware to identify itself
READY = "ready"  # identified, no job
PRINTING = "printing"  # job lines are being accepted
PAUSED = "paused"  # job held; lines already sent complete
FINISHING = "finishing"  # the job's last line was handed over; waiting for the acknowledgements
CANCELLING = "cancelling"  # the safe end sequence is being sent
HALTED = "halted"  # the firmware stopped (kill(), thermal runaway, M112); needs a reset
FAILED = "failed"  # the link itself is broken (timeout, unanswerable resend, disconnect)

_TRANSITIONS = {
    CONNECTING: (READY, CONNECTING, HALTED, FAILED),
    READY: (PRINTING, CONNECTING, HALTED, FAILED),
    PRINTING: (PAUSED, FINISHING, CANCELLING, CONNECTING, HALTED, FAILED),
    PAUSED: (PRINTING, CANCELLING, CONNECTING, HALTED, FAILED),
    FINISHING: (READY, CANCELLING, CONNECTING, HALTED, FAILED),
    CANCELLING: (READY, CONNECTING, HALTED, FAILED),
    HALTED: (CONNECTING, FAILED),
    FAILED: (),
}

_JOB_STATES = (PRINTING, PAUSED, FINISHING, CANCELLING)

# Job outcomes, as JobEnded reports them.
DONE = "done"
CANCELLED = "cancelled"
FAILED_OUTCOME = "failed"
INTERRUPTED = "interrupted"

# Control commands waiting to be sent; the end sequence and a poll or two is all that ever queues.
_CONTROL_QUEUE_SIZE = 64

# Heaters and fans off, motors off: what a cancelled job leaves behind unless configured otherwise.
DEFAULT_END_SEQUENCE = ("M104 S0", "M140 S0", "M107", "M84")

# What each in-flight line is, so its acknowledgement can be acted on.
_JOB = 0
_CONTROL = 1
_END_SEQUENCE = 2
_TEMPERATURE_POLL = 3


# ---------------------------------------------------------------------------------------------- events


class Event:
    __slots__ = ()

    def __repr__(self) -> str:
        fields = ", ".join("%s=%r" % (name, getattr(self, name)) for name in self.__slots__)
        return "%s(%s)" % (type(self).__name__, fields)


class Connected(Event):
    """The firmware answered M115: `firmware` holds its fields, `capabilities` its Cap: lines."""

    __slots__ = ("firmware", "capabilities")

    def __init__(self, firmware: dict, capabilities: dict) -> None:
        self.firmware = firmware
        self.capabilities = capabilities


class Temperatures(Event):
    """A temperature report: sensor name -> (actual, target or None)."""

    __slots__ = ("readings",)

    def __init__(self, readings: dict) -> None:
        self.readings = readings


class ResendRequested(Event):
    """The printer asked for line `line_number` again; `ignored` when it was a stale repeat."""

    __slots__ = ("line_number", "ignored")

    def __init__(self, line_number: int, ignored: bool) -> None:
        self.line_number = line_number
        self.ignored = ignored


class PrinterBusy(Event):
    """The firmware is working on a long command ("busy: processing"); the link stays alive."""

    __slots__ = ("text",)

    def __init__(self, text: str) -> None:
        self.text = text


class PrinterMessage(Event):
    """A line worth showing to a person: echo output, a non-fatal error, undecodable bytes."""

    __slots__ = ("level", "text")

    def __init__(self, level: str, text: str) -> None:
        self.level = level
        self.text = text


class PrinterHalted(Event):
    """The firmware stopped itself (kill(), thermal runaway, M112); it must be reset."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class PrinterReset(Event):
    """The firmware restarted ("start"); the link is connecting again."""

    __slots__ = ()


class LinkFailed(Event):
    """The link cannot go on: no answer, an unanswerable resend, a vanished port."""

    __slots__ = ("reason",)

    def __init__(self, reason: str) -> None:
        self.reason = reason


class JobEnded(Event):
    """The job is over. `outcome` is done, cancelled, failed or interrupted; `lines_acknowledged` counts
    the job lines the firmware confirmed, so a later resume can start after them."""

    __slots__ = ("outcome", "reason", "lines_acknowledged")

    def __init__(self, outcome: str, reason: str, lines_acknowledged: int) -> None:
        self.outcome = outcome
        self.reason = reason
        self.lines_acknowledged = lines_acknowledged


class Progress:
    """Counters of the current job, read with HostLink.progress()."""

    __slots__ = ("lines_sent", "lines_acknowledged", "bytes_acknowledged", "resends", "z", "layer")

    def __init__(self) -> None:
        self.lines_sent = 0
        self.lines_acknowledged = 0
        self.bytes_acknowledged = 0
        self.resends = 0
        self.z = None
        self.layer = 0


# ------------------------------------------------------------------------------------------- the link


class HostLink:
    """The host side of one printer connection. See the module docstring for how to drive it."""

    def __init__(
        self,
        window=None,
        rx_buffer_bytes: int = 128,
        history_lines: int = 256,
        response_timeout: float = 10.0,
        max_timeouts: int = 3,
        connect_timeout: float = 5.0,
        temperature_interval: float = 2.0,
        end_sequence=DEFAULT_END_SEQUENCE,
        max_command_bytes: int = gcode.MAX_COMMAND_BYTES,
        max_reply_bytes: int = 1024,
        stray_grace: float = 1.0,
    ) -> None:
        if window is not None and not 1 <= window <= history_lines // 2:
            raise LocalProtocolError("window must be 1 to %d lines (half the resend history)" % (history_lines // 2))
        self.state = CONNECTING
        self.firmware = {}
        self.capabilities = {}
        self.failure = None  # why the link failed, once it has
        self._configured_window = window
        self._window = 1
        self._rx_buffer_bytes = rx_buffer_bytes
        self._response_timeout = response_timeout
        self._max_timeouts = max_timeouts
        self._connect_timeout = connect_timeout
        self._temperature_interval = temperature_interval
        self._end_sequence = tuple(end_sequence)
        self._max_command_bytes = max_command_bytes
        self._max_reply_bytes = max_reply_bytes
        # Sent lines kept for Resend:, a ring indexed by line number modulo its size.
        self._history_size = history_lines
        self._history_numbers = [-1] * history_lines
        self._history_frames = [b""] * history_lines
        self._history_kinds = [_JOB] * history_lines
        self._history_z = [None] * history_lines
        self._next_line = 0
        self._resend_from = None  # next line number to send again from history, while repairing
        self._rewound_to = -1
        self._stray_budget = 0  # Resend: repeats still expected from lines that were in flight
        self._swallow_oks = 0  # the "ok" that follows each Resend: belongs to the resend, not a line
        self._owed_oks = 0  # lines counted as done by a Resend: whose own "ok" is still to come
        self._last_error_kind = None
        self._resync_line = None  # the line sent again after a silence, until the firmware answers it
        self._in_flight = deque((), history_lines)  # line numbers sent and not yet acknowledged
        self._in_flight_bytes = 0
        self._control = deque((), _CONTROL_QUEUE_SIZE)  # (command, kind) waiting to be sent before job lines
        self._out = bytearray()
        self._out_first_line = None  # number of the first framed line in _out, not yet handed to the caller
        self._partial = b""
        self._events = []
        self._progress = Progress()
        self._relative_moves = False  # after G91 in the job, until G90
        # When the firmware last answered the flow (ok, Resend:, Error:, busy:, a heating report). Plain
        # temperature auto-reports do not count: a firmware that lost our lines still sends those.
        self._last_heard = None
        self._now = 0.0
        self._stray_deadline = None  # when an ignored Resend: repeat is taken as real if nothing follows
        self._stray_grace = stray_grace
        self._connect_started = None
        self._timeouts = 0
        self._next_poll = None
        self._advanced_ok_buffer = None
        self._queue_handshake()

    # ------------------------------------------------------------------------------ public interface

    def ready_for_job_line(self) -> bool:
        """True when the next job line may be handed over with send_job_line()."""
        return (
            self.state == PRINTING
            and self._resend_from is None
            and not self._control
            and len(self._in_flight) < self._window
            and self._in_flight_bytes < self._rx_buffer_bytes
        )

    def send_job_line(self, command: str) -> None:
        """Frame one cleaned job command (see gcode.clean_line) and queue it for the printer."""
        if not self.ready_for_job_line():
            raise LocalProtocolError("send_job_line while the link is not ready for one (state %s)" % self.state)
        if len(command) > self._max_command_bytes:
            raise LocalProtocolError("command of %d bytes: clean lines with gcode.clean_line first" % len(command))
        z = None
        if "Z" in command and not self._relative_moves:
            z = gcode.z_of(command)
        elif command[:2] == "G9":
            if command[:3] == "G91":
                self._relative_moves = True  # Z of relative moves (an end-of-print lift) is no layer
            elif command[:3] == "G90":
                self._relative_moves = False
        self._send_new(command, _JOB, z)
        self._progress.lines_sent += 1

    def data_to_send(self) -> bytes:
        """Bytes to write to the printer now (possibly empty)."""
        if not self._out:
            return b""
        data = bytes(self._out)
        self._out = bytearray()
        self._out_first_line = None
        return data

    def receive_data(self, data: bytes, now: float) -> list:
        """Feed bytes read from the printer; returns the events they caused."""
        self._now = now
        if data == b"ok\n" and not self._partial and self._last_heard is not None:
            self._on_ok(data)  # the answer to nearly every line: skip the splitting
            if self._resend_from is not None or self._control:
                self._pump()
            return self._take_events()
        if self._last_heard is None:
            self._last_heard = now
        buffer = self._partial + data if self._partial else data
        lines = buffer.split(b"\n")
        self._partial = lines.pop()
        if len(self._partial) > self._max_reply_bytes:
            self._partial = b""
            self._events.append(PrinterMessage("warning", "discarded an overlong line from the printer"))
        for raw in lines:
            if raw == b"ok" or raw == b"ok\r":
                self._on_ok(raw)
            else:
                self._on_line(raw)
            # Repairs and control commands go out between lines, so how the bytes were chunked never matters.
            if self._resend_from is not None or self._control:
                self._pump()
        return self._take_events()

    def tick(self, now: float) -> list:
        """Advance time: timeouts and temperature polling. Call at least every next_deadline()."""
        self._now = now
        if self._last_heard is None:
            self._last_heard = now
        if self.state == CONNECTING:
            if self._connect_started is None:
                self._connect_started = now
            elif now - self._connect_started > self._connect_timeout:
                self._fail(
                    "no answer to M115 within %.0f s: is this a printer, at the right baud rate?"
                    % self._connect_timeout
                )
        elif self.state in (HALTED, FAILED):
            pass
        else:
            if (self._in_flight or self._resend_from is not None) and now - self._last_heard > self._response_timeout:
                self._on_silence(now)
            elif self._stray_deadline is not None and now >= self._stray_deadline:
                self._stray_deadline = None
                if self._in_flight and self._in_flight[0] == self._rewound_to:
                    self._rewind(self._rewound_to, None)
            if self._next_poll is not None and now >= self._next_poll:
                self._next_poll = now + self._temperature_interval
                if self._no_poll_pending():
                    self._control.append(("M105", _TEMPERATURE_POLL))
        self._pump()
        return self._take_events()

    def next_deadline(self, now: float) -> float:
        """The latest time at which tick() must be called again."""
        if self.state == CONNECTING:
            return self._connect_started + self._connect_timeout if self._connect_started is not None else now
        deadline = now + 1.0
        if self._in_flight and self._last_heard is not None:
            deadline = min(deadline, self._last_heard + self._response_timeout)
        if self._next_poll is not None:
            deadline = min(deadline, self._next_poll)
        if self._stray_deadline is not None:
            deadline = min(deadline, self._stray_deadline)
        return max(deadline, now)

    def progress(self) -> Progress:
        """Counters of the current job (the same object is updated in place)."""
        return self._progress

    def start_job(self) -> None:
        """Begin accepting job lines."""
        self._set_state(PRINTING)
        self._progress = Progress()
        self._relative_moves = False

    def finish_job(self) -> list:
        """The caller has handed over the job's last line; JobEnded(done) follows once all are confirmed."""
        self._set_state(FINISHING)
        self._check_finished()
        return self._take_events()

    def pause(self) -> None:
        """Stop taking job lines; lines already sent still complete."""
        self._set_state(PAUSED)

    def resume(self) -> None:
        self._set_state(PRINTING)

    def cancel(self) -> list:
        """End the job: lines in flight complete, then the safe end sequence runs, then JobEnded(cancelled)."""
        self._set_state(CANCELLING)
        for command in self._end_sequence:
            self._control.append((command, _END_SEQUENCE))
        self._check_finished()
        self._pump()
        return self._take_events()

    def emergency_stop(self) -> list:
        """M112 now, unnumbered and ahead of everything queued here.

        Firmware with EMERGENCY_PARSER acts on it as the bytes arrive; other firmware when it reaches it
        in its receive buffer, which is the best any host can do for it.
        """
        self._out += b"M112\n"
        self._halt("emergency stop (M112)", CANCELLED)
        return self._take_events()

    def send_command(self, command: str) -> None:
        """Queue a control command (M105, G28, ...) ahead of job lines."""
        if self.state in (HALTED, FAILED):
            raise LocalProtocolError("cannot send %r: the link is %s" % (command, self.state))
        if len(self._control) >= _CONTROL_QUEUE_SIZE - len(self._end_sequence):
            raise LocalProtocolError("%d control commands are already waiting" % len(self._control))
        self._control.append((command, _CONTROL))
        self._pump()

    def connection_lost(self, reason: str) -> list:
        """The port went away (USB unplugged): the job ends as interrupted at its last confirmed line."""
        if self.state != FAILED:
            self._fail("printer disconnected: %s" % reason, INTERRUPTED)
        return self._take_events()

    # ------------------------------------------------------------------------------ state handling

    def _set_state(self, new_state: str) -> None:
        if new_state not in _TRANSITIONS[self.state]:
            raise LocalProtocolError("the link cannot go from %s to %s" % (self.state, new_state))
        self.state = new_state

    def _end_job(self, outcome: str, reason: str) -> None:
        self._events.append(JobEnded(outcome, reason, self._progress.lines_acknowledged))

    def _fail(self, reason: str, outcome: str = FAILED_OUTCOME) -> None:
        if self.state in _JOB_STATES:
            self._end_job(outcome, reason)
        self._set_state(FAILED)
        self.failure = reason
        self._control = deque((), _CONTROL_QUEUE_SIZE)
        self._events.append(LinkFailed(reason))

    def _halt(self, reason: str, outcome: str) -> None:
        if self.state in (HALTED, FAILED):
            return
        if self.state in _JOB_STATES:
            self._end_job(outcome, reason)
        self._set_state(HALTED)
        self._control = deque((), _CONTROL_QUEUE_SIZE)
        self._next_poll = None
        self._events.append(PrinterHalted(reason))

    def _forget_in_flight(self) -> None:
        """Drop every line in flight and every expectation about the answers to come."""
        self._in_flight = deque((), self._history_size)
        self._in_flight_bytes = 0
        self._swallow_oks = self._owed_oks = self._stray_budget = 0

    def _queue_handshake(self) -> None:
        self._next_line = 0
        self._forget_in_flight()
        self._resend_from = None
        self._control = deque((), _CONTROL_QUEUE_SIZE)
        self._next_poll = None
        self._connect_started = None
        self._identity_seen = False
        self.firmware = {}
        self.capabilities = {}
        self._window = 1  # the handshake goes line by line
        # "N0 M110 N0" makes the firmware expect line 1 next, whatever it counted before.
        self._send_new("M110 N0", _CONTROL, None)
        self._control.append(("M115", _CONTROL))

    def _take_events(self) -> list:
        events = self._events
        self._events = []
        return events

    # ------------------------------------------------------------------------------ sending

    def _send_new(self, command: str, kind: int, z) -> None:
        """Number, frame and record a new line; send it now if it fits, else leave it pending in history."""
        number = self._next_line
        self._next_line = number + 1
        data = gcode.frame(number, command)
        slot = number % self._history_size
        self._history_numbers[slot] = number
        self._history_frames[slot] = data
        self._history_kinds[slot] = kind
        self._history_z[slot] = z
        if self._resend_from is None and self._room_for(len(data)):
            if not self._in_flight:
                self._last_heard = self._now  # the silence timer runs from the oldest line in flight
            self._in_flight.append(number)
            self._in_flight_bytes += len(data)
            if self._out_first_line is None:
                self._out_first_line = number
            self._out += data
        elif self._resend_from is None:
            self._resend_from = number

    def _room_for(self, size: int) -> bool:
        if not self._in_flight:
            return True
        if self._resync_line is not None:
            return False  # after a silence, the line sent again travels alone until it is answered
        if len(self._in_flight) >= self._window:
            return False
        return self._in_flight_bytes + size <= self._rx_buffer_bytes

    def _pump(self) -> None:
        """Send what may be sent now: repairs first, then control commands. Job lines come from the caller."""
        if self.state in (HALTED, FAILED):
            return
        while self._resend_from is not None:
            number = self._resend_from
            slot = number % self._history_size
            data = self._history_frames[slot]
            if not self._room_for(len(data)):
                return
            if not self._in_flight:
                self._last_heard = self._now
            self._in_flight.append(number)
            self._in_flight_bytes += len(data)
            if self._out_first_line is None:
                self._out_first_line = number
            self._out += data
            self._resend_from = number + 1 if number + 1 < self._next_line else None
        while self._control:
            command, kind = self._control[0]
            if not self._room_for(len(command) + 16):
                return
            self._control.popleft()
            self._send_new(command, kind, None)

    def _no_poll_pending(self) -> bool:
        if any(kind == _TEMPERATURE_POLL for _command, kind in self._control):
            return False
        kinds = self._history_kinds
        return all(kinds[number % self._history_size] != _TEMPERATURE_POLL for number in self._in_flight)

    # ------------------------------------------------------------------------------ receiving

    def _on_line(self, raw: bytes) -> None:
        try:
            line = raw.decode("utf-8").strip()
        except UnicodeError:
            self._events.append(PrinterMessage("warning", "undecodable bytes from the printer (wrong baud rate?)"))
            return
        if not line:
            return
        if line.startswith("ok"):
            self._on_ok(line)
            return
        resend = replies.parse_resend(line)
        if resend is not None:
            self._on_resend(resend)
            return
        if line.startswith("Error:") or line.startswith("!!"):
            self._on_error(line[6:].strip() if line.startswith("Error:") else line[2:].strip())
            return
        if "busy:" in line:
            self._timeouts = 0
            self._last_heard = self._now
            self._events.append(PrinterBusy(line))
            return
        if line == "start":
            self._on_reset()
            return
        if line.startswith("FIRMWARE_NAME:"):
            self.firmware = replies.parse_m115(line)
            self._identity_seen = self.state == CONNECTING
            return
        capability = replies.parse_capability(line)
        if capability is not None:
            self.capabilities[capability[0]] = capability[1]
            return
        readings = replies.parse_temperatures(line)
        if readings is not None:
            if " W:" in line:  # reports while M109/M190 waits: the firmware is working on our line
                self._last_heard = self._now
            self._events.append(Temperatures(readings))
            return
        self._events.append(PrinterMessage("info", line))

    def _on_ok(self, line) -> None:
        self._timeouts = 0
        self._last_heard = self._now
        if self.state == CONNECTING:
            if isinstance(line, str) and len(line) > 3:
                self._on_ok_fields(line)
            self._on_handshake_ok()
            return
        if self._swallow_oks:
            self._swallow_oks -= 1
            return
        self._stray_deadline = None  # an answer came: the repeat we ignored was a stray indeed
        if self._owed_oks:
            self._owed_oks -= 1
            return
        if isinstance(line, str) and len(line) > 3:
            self._on_ok_fields(line)
        if not self._in_flight:
            return  # an ok for nothing we sent: a firmware's own extra ok; nothing to count
        self._resync_line = None
        self._acknowledge(self._in_flight.popleft())
        if self.state == FINISHING or self.state == CANCELLING:
            self._check_finished()

    def _on_ok_fields(self, line: str) -> None:
        if "T:" in line:
            readings = replies.parse_temperatures(line)
            if readings is not None:
                self._events.append(Temperatures(readings))
        elif " B" in line:
            buffer_free = replies.parse_advanced_ok(line)[2]
            if buffer_free is not None:
                self._advanced_ok_buffer = buffer_free

    def _acknowledge(self, number: int) -> None:
        slot = number % self._history_size
        data_size = len(self._history_frames[slot])
        self._in_flight_bytes -= data_size
        kind = self._history_kinds[slot]
        if kind == _JOB:
            progress = self._progress
            progress.lines_acknowledged += 1
            progress.bytes_acknowledged += data_size
            z = self._history_z[slot]
            if z is not None:
                if progress.z is None or z > progress.z:
                    progress.layer += 1
                progress.z = z

    def _on_handshake_ok(self) -> None:
        """While connecting, only the ok that follows the M115 report counts.

        A firmware that rebooted as the port opened may answer lines from before its "start" banner, so
        counting oks here could leave one over for the job. The M115 report is the handshake's last answer:
        once its ok is in, nothing sent before it is still owed an answer.
        """
        if not self._identity_seen:
            if self._in_flight:
                number = self._in_flight.popleft()
                self._in_flight_bytes -= len(self._history_frames[number % self._history_size])
            return
        self._forget_in_flight()
        self._resend_from = None
        self._on_identified()

    def _on_identified(self) -> None:
        if self._configured_window is not None:
            self._window = self._configured_window
        elif self.capabilities.get("ADVANCED_OK"):
            self._window = max(1, self._advanced_ok_buffer or 1)
        self._set_state(READY)
        self._events.append(Connected(self.firmware, self.capabilities))
        if self.capabilities.get("AUTOREPORT_TEMP"):
            self._control.append(("M155 S%d" % max(1, int(self._temperature_interval)), _CONTROL))
        else:
            self._next_poll = self._last_heard

    def _on_error(self, text: str) -> None:
        self._last_heard = self._now
        kind = replies.classify_error(text)
        self._last_error_kind = kind
        if kind == replies.ERROR_FATAL:
            self._halt("printer halted: %s" % text, FAILED_OUTCOME)
        elif kind == replies.ERROR_OTHER:
            self._events.append(PrinterMessage("error", text))

    def _on_resend(self, number: int) -> None:
        error_kind = self._last_error_kind
        self._last_error_kind = None
        self._swallow_oks += 1
        self._last_heard = self._now
        self._stray_deadline = None
        try:
            self._answer_resend(number, error_kind)
        finally:
            self._resync_line = None

    def _answer_resend(self, number: int, error_kind) -> None:
        if self.state in (HALTED, FAILED):
            return
        if (
            self._stray_budget > 0
            and error_kind == replies.ERROR_LINE_NUMBER
            and number == self._rewound_to
            and self._in_flight
            and self._in_flight[0] == number
        ):
            # A line that was already on its way when we rewound reached the firmware out of order. If it
            # was in fact our new copy of the line failing, nothing more will come: stray_grace decides.
            self._stray_budget -= 1
            self._stray_deadline = self._now + self._stray_grace
            self._events.append(ResendRequested(number, True))
            return
        self._rewind(number, error_kind)

    def _rewind(self, number: int, error_kind) -> None:
        """Act on a genuine Resend: request for line `number`."""
        if number >= self._next_line:
            if number == self._next_line and self._in_flight:
                # Everything we sent arrived; the request is for the line we have not sent yet.
                self._acknowledge_before(number, error_kind)
                self._stray_budget = 0
                return
            self._fail("printer asked for line %d, but only lines up to %d were sent" % (number, self._next_line - 1))
            return
        if self._history_numbers[number % self._history_size] != number:
            self._fail(
                "printer asked for line %d, which is no longer in the %d-line resend history"
                % (number, self._history_size)
            )
            return
        self._acknowledge_before(number, error_kind)
        self._stray_budget = 0
        # Lines still in our own output buffer never reached the printer: they are not strays, and they
        # must not go out twice, so the buffer is dropped with them and they go out again in order.
        unsent_from = self._next_line if self._out_first_line is None else self._out_first_line
        while self._in_flight:
            dropped = self._in_flight.pop()
            self._in_flight_bytes -= len(self._history_frames[dropped % self._history_size])
            if dropped != number and dropped < unsent_from:
                self._stray_budget += 1
        if self._out_first_line is not None and self._out_first_line >= number:
            self._out = bytearray()
            self._out_first_line = None
        self._progress.resends += 1
        self._rewound_to = number
        self._resend_from = number
        self._events.append(ResendRequested(number, False))

    def _acknowledge_before(self, number: int, error_kind) -> None:
        """Lines below `number` reached the firmware, which sends a command's ok only when it has run it.

        Their oks are still to come, and must not be taken for the oks of later lines. The one exception:
        after a silence we sent the oldest line again, and the firmware calls it a duplicate. Then its first
        copy ran and the ok we waited for was lost on the way.
        """
        lost_ok = (
            self._resync_line is not None
            and error_kind == replies.ERROR_LINE_NUMBER
            and number == self._resync_line + 1
        )
        while self._in_flight and self._in_flight[0] < number:
            self._acknowledge(self._in_flight.popleft())
            if not lost_ok:
                self._owed_oks += 1
        if self.state == FINISHING or self.state == CANCELLING:
            self._check_finished()

    def _on_silence(self, now: float) -> None:
        self._timeouts += 1
        if self._timeouts > self._max_timeouts:
            self._fail("no answer from the printer for %.0f s" % (self._response_timeout * self._max_timeouts))
            return
        # Resend the oldest unconfirmed line: the firmware either runs it or, if it already has it,
        # answers with a Resend: for the line it really wants. Either way the two sides agree again.
        self._last_heard = now
        oldest = self._in_flight[0] if self._in_flight else self._resend_from
        self._forget_in_flight()
        self._rewound_to = oldest
        self._resend_from = oldest
        self._resync_line = oldest
        self._events.append(
            PrinterMessage("warning", "no answer for %.0f s; sending line %d again" % (self._response_timeout, oldest))
        )

    def _on_reset(self) -> None:
        if self.state in _JOB_STATES:
            self._end_job(FAILED_OUTCOME, "printer reset")
        if self.state == FAILED:
            return
        if self.state != CONNECTING:
            self._events.append(PrinterReset())
        self._set_state(CONNECTING)
        self._queue_handshake()

    def _check_finished(self) -> None:
        if self._in_flight or self._resend_from is not None:
            return
        if self.state == FINISHING:
            self._set_state(READY)
            self._end_job(DONE, "all lines confirmed by the printer")
        elif self.state == CANCELLING and not self._control:
            self._finish_cancel()

    def _finish_cancel(self) -> None:
        self._set_state(READY)
        self._end_job(CANCELLED, "cancelled; end sequence sent")
