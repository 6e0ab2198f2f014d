"""The edge bridge, sans-I/O: a Marlin printer toward the box, HostLink toward the printer, counters and
attestations in between (docs/edge-firmware.md).

Feed it bytes with box_data() and printer_data(), call tick() at least every next_deadline(), and write out
to_box() and to_printer(). Time is passed in (seconds, any monotonic origin); nothing here touches hardware.
"""

import gc
from collections import deque

from firmware_bridge import gcode, marlin
from firmware_bridge.edge import attest
from firmware_bridge.edge.box_side import BoxSide

QUEUE_SIZE = 8  # commands waiting (Marlin's BUFSIZE is 4; the extra room holds the bridge's own answers)
OUT_LIMIT = 4096  # bytes waiting for either UART before the bridge stops taking input
KEEPALIVE = 2.0  # seconds between "busy: processing" while the printer works on a line
RELINK_DELAY = 5.0  # seconds before a failed printer link is rebuilt
# Resend history toward the printer: HostLink's 256 lines cost 16 KiB of a Pico's heap; the bridge sends one
# line at a time (or the printer's ADVANCED_OK window), so 64 lines of history are ample.
HISTORY_LINES = 64


def printer_link() -> marlin.HostLink:
    """The link toward the printer, sized for a microcontroller."""
    return marlin.HostLink(history_lines=HISTORY_LINES)


# What the box's commands are, by who answers them.
_FORWARD = 0
_M115 = 1
_M105 = 2
_M155 = 3
_ATTEST = 4
_LOCAL_OK = 5  # nothing to do but "ok" (M110: BoxSide already took its number)
_TOO_LONG = 6

# Capabilities the bridge answers for itself, whatever the printer says.
_OWN_CAPABILITIES = ("AUTOREPORT_TEMP", "EMERGENCY_PARSER", attest.CAPABILITY)
_NOT_PASSED_ON = ("ADVANCED_OK", "AUTOREPORT_TEMP", "EMERGENCY_PARSER", attest.CAPABILITY)


class Counters:
    """The attested counters of one boot (see the table in docs/edge-firmware.md)."""

    __slots__ = ("boot", "seq", "lines", "e_um", "layers", "resets")

    def __init__(self, boot: int) -> None:
        self.boot = boot
        self.seq = 0
        self.lines = 0
        self.e_um = 0
        self.layers = 0
        self.resets = 0


class Extrusion:
    """E-axis position as the printer will see it, to turn each move into micrometres of filament."""

    def __init__(self) -> None:
        self.relative = False
        self.position_um = 0

    def delta_um(self, command: str) -> int:
        """The E travel of `command` in micrometres (0 for a command that does not extrude)."""
        head = command.split(" ", 1)[0]
        if head[:1] == "G" and len(head) > 2 and head[2] in "XYZEFIJR":
            head = head[:2]  # "G1X10E1": a word run on without spaces
        if head in ("G0", "G1", "G2", "G3"):
            value = gcode.word_value(command, "E")
            if value is None:
                return 0
            target = round(value * 1000)
            if self.relative:
                return target
            delta = target - self.position_um
            self.position_um = target
            return delta
        if head == "G92":
            value = gcode.word_value(command, "E")
            if value is not None:
                self.position_um = round(value * 1000)
            elif len(command.split()) == 1:
                self.position_um = 0
        elif head in ("M82", "G90"):
            self.relative = False
        elif head in ("M83", "G91"):
            self.relative = True
        return 0


def classify(command: str) -> int:
    """Who answers a command from the box: the printer (_FORWARD) or the bridge itself."""
    code = command.split(" ", 1)[0]
    if code == "M110":
        return _LOCAL_OK
    if code == "M115":
        return _M115
    if code == "M105":
        return _M105
    if code == "M155":
        return _M155
    if code == attest.COMMAND:
        return _ATTEST
    if len(command) > gcode.MAX_COMMAND_BYTES:
        return _TOO_LONG
    return _FORWARD


class Bridge:
    """One box, one printer. `key` is the paired 32-byte key (None: unpaired); `boot` the persisted boot number."""

    def __init__(
        self,
        key=None,
        boot: int = 0,
        link_factory=printer_link,
        queue_size: int = QUEUE_SIZE,
        keepalive: float = KEEPALIVE,
        relink_delay: float = RELINK_DELAY,
        out_limit: int = OUT_LIMIT,
    ) -> None:
        if key is not None and len(key) != attest.KEY_BYTES:
            raise ValueError("an edge key is %d bytes, not %d" % (attest.KEY_BYTES, len(key)))
        self.box = BoxSide()
        self.counters = Counters(boot)
        self.temperatures = {}
        self.firmware = {}
        self.capabilities = {}
        self._key = key
        self._link_factory = link_factory
        self.link: marlin.HostLink = link_factory()
        self._identified = False
        self._queue: deque = deque((), queue_size)
        self._queue_size = queue_size
        # E deltas of forwarded lines not yet acknowledged, oldest first (bounded by the link's history).
        self._forwarded: deque = deque((), HISTORY_LINES)
        self._seen_lines = 0  # of the link's current Progress
        self._seen_layers = 0
        self._progress = None
        self._extrusion = Extrusion()
        self._to_printer = bytearray()
        self._keepalive = keepalive
        self._next_keepalive = None
        self._relink_delay = relink_delay
        self._relink_at = None
        self._announce_start = False  # after a rebuilt link: tell the box, as a rebooted printer would
        self._out_limit = out_limit
        self._report_interval = 0.0
        self._next_report = None
        self._started = None
        self._now = 0.0

    # ------------------------------------------------------------------------------ interface

    def box_data(self, data: bytes, now: float) -> None:
        """Bytes the box sent."""
        self._clock(now)
        self.box.receive(data)
        if self.box.emergency:
            self.box.emergency = False
            self._emergency_stop()
        self._pump()

    def printer_data(self, data: bytes, now: float) -> None:
        """Bytes the printer sent."""
        self._clock(now)
        self._handle(self.link.receive_data(data, now))
        self._pump()

    def tick(self, now: float) -> None:
        """Advance time: the link's timeouts and polls, keepalives, temperature reports, rebuilding a failed link."""
        self._clock(now)
        if self._relink_at is not None and now >= self._relink_at:
            self._relink_at = None
            self.link = None  # type: ignore[assignment]
            gc.collect()  # the old link's history is garbage now: room for the new one's in one piece
            self.link = self._link_factory()
            self._progress = None
            self._announce_start = True
        self._handle(self.link.tick(now))
        if self._forwarded and self._next_keepalive is not None and now >= self._next_keepalive:
            self.box.reply("echo:busy: processing")
            self._next_keepalive = now + self._keepalive
        if self._next_report is not None and now >= self._next_report:
            self._next_report = now + self._report_interval
            report = self._temperature_report()
            if report:
                self.box.reply(report)
        self._pump()

    def next_deadline(self, now: float) -> float:
        """The latest time at which tick() must be called again."""
        deadline = self.link.next_deadline(now)
        for candidate in (self._relink_at, self._next_report, self._next_keepalive if self._forwarded else None):
            if candidate is not None and candidate < deadline:
                deadline = candidate
        return max(deadline, now)

    def to_box(self) -> bytes:
        """Bytes to write to the box now (possibly empty)."""
        out = self.box.out
        if not out:
            return b""
        self.box.out = bytearray()
        return bytes(out)

    def to_printer(self) -> bytes:
        """Bytes to write to the printer now (possibly empty)."""
        data = self.link.data_to_send()
        if self._to_printer:
            data = bytes(self._to_printer) + data
            self._to_printer = bytearray()
        return data

    def up_ms(self) -> int:
        return int((self._now - self._started) * 1000) if self._started is not None else 0

    def attestation(self, challenge: bytes) -> str:
        """Sign the counters as they are now with `challenge`; raises ValueError when unpaired."""
        if self._key is None:
            raise ValueError("not paired")
        counters = self.counters
        counters.seq += 1
        values = (
            counters.boot,
            counters.seq,
            counters.lines,
            counters.e_um,
            counters.layers,
            self.up_ms(),
            counters.resets,
        )
        return attest.sign(self._key, challenge, values)

    # ------------------------------------------------------------------------------ the work

    def _clock(self, now: float) -> None:
        if self._started is None:
            self._started = now
        self._now = now

    def _pump(self) -> None:
        """Settle acknowledgements, take commands from the box, and run the queue, until nothing moves."""
        moved = True
        while moved:
            self._settle()
            moved = False
            while len(self._queue) < self._queue_size and len(self.box.out) < self._out_limit:
                command = self.box.next_command()
                if command is None:
                    break
                self._queue.append((classify(command), command))
                moved = True
            if self._run_queue():
                moved = True

    def _run_queue(self) -> bool:
        ran = False
        link = self.link
        while self._queue:
            kind, command = self._queue[0]
            if kind == _FORWARD:
                if not (self._identified and link.state == marlin.PRINTING and link.ready_for_job_line()):
                    return ran
                link.send_job_line(command)
                if not self._forwarded:
                    self._next_keepalive = self._now + self._keepalive
                self._forwarded.append(self._extrusion.delta_um(command))
            else:
                if self._forwarded or (kind == _M115 and not self._identified):
                    return ran  # strictly in order: what the printer still works on comes first
                self._answer(kind, command)
            self._queue.popleft()
            ran = True
        return ran

    def _settle(self) -> None:
        """Turn what the printer acknowledged into counters and an "ok" to the box, one per line."""
        progress = self.link.progress()
        if progress is not self._progress:
            self._progress = progress
            self._seen_lines = progress.lines_acknowledged
            self._seen_layers = progress.layer
        counters = self.counters
        while self._seen_lines < progress.lines_acknowledged:
            self._seen_lines += 1
            counters.lines += 1
            counters.e_um += self._forwarded.popleft() if self._forwarded else 0
            self.box.reply("ok")
            self._next_keepalive = self._now + self._keepalive
        if progress.layer > self._seen_layers:
            counters.layers += progress.layer - self._seen_layers
            self._seen_layers = progress.layer

    def _answer(self, kind: int, command: str) -> None:
        box = self.box
        if kind == _M115:
            box.reply(self._m115_report())
            for name in self.capabilities:
                if name not in _NOT_PASSED_ON:
                    box.reply("Cap:%s:%d" % (name, 1 if self.capabilities[name] else 0))
            for name in _OWN_CAPABILITIES:
                box.reply("Cap:%s:1" % name)
        elif kind == _M105:
            report = self._temperature_report()
            box.reply("ok " + report if report else "ok")
            return
        elif kind == _M155:
            seconds = gcode.word_value(command, "S")
            self._report_interval = seconds if seconds is not None and seconds > 0 else 0.0
            self._next_report = self._now + self._report_interval if self._report_interval else None
        elif kind == _ATTEST:
            challenge = attest.parse_challenge(command)
            if challenge is None:
                box.reply("Error:MIPAI_ATTEST wants %s C<32 hex digits>" % attest.COMMAND)
            elif self._key is None:
                box.reply("Error:MIPAI_ATTEST not paired")
            else:
                box.reply(self.attestation(challenge))
        elif kind == _TOO_LONG:
            box.reply("Error:command too long for the printer link")
        box.reply("ok")

    def _m115_report(self) -> str:
        firmware = self.firmware
        names = sorted([name for name in firmware if name != "FIRMWARE_NAME"])
        names.insert(0, "FIRMWARE_NAME")
        return " ".join(["%s:%s" % (name, firmware.get(name, "")) for name in names])

    def _temperature_report(self) -> str:
        readings = self.temperatures
        names = sorted(readings)
        if "T" in readings:
            names.remove("T")
            names.insert(0, "T")
        words = []
        for name in names:
            actual, target = readings[name]
            words.append("%s:%.2f /%.2f" % (name, actual, target if target is not None else 0.0))
        return " ".join(words)  # empty until the printer has reported: no made-up temperatures

    def _emergency_stop(self) -> None:
        self._handle(self.link.emergency_stop())

    def _drop_work(self) -> None:
        """The printer can no longer finish what was queued: nothing of it will be acknowledged."""
        for pending in (self._queue, self._forwarded):
            while pending:  # emptied in place: a new deque could fail to fit a fragmented heap
                pending.popleft()
        self._identified = False

    def _handle(self, events: list) -> None:
        for event in events:
            if isinstance(event, marlin.Connected):
                self.firmware = event.firmware
                self.capabilities = event.capabilities
                self._identified = True
                self.link.start_job()
                if self._announce_start:
                    self._announce_start = False
                    self.box.reset()
                    self.box.reply("start")
                self._extrusion = Extrusion()
            elif isinstance(event, marlin.Temperatures):
                for name in event.readings:
                    self.temperatures[name] = event.readings[name]
            elif isinstance(event, marlin.PrinterBusy):
                self.box.reply(event.text)
            elif isinstance(event, marlin.PrinterMessage):
                self._relay_message(event)
            elif isinstance(event, marlin.PrinterReset):
                self._settle()
                self.counters.resets += 1
                self._drop_work()
                self.box.reset()
                self.box.reply("start")
            elif isinstance(event, marlin.PrinterHalted):
                self._settle()
                self._drop_work()
                self.box.reply("Error:%s" % event.reason)
            elif isinstance(event, marlin.LinkFailed):
                self._settle()
                self._drop_work()
                self.counters.resets += 1
                self.box.reply("Error:Printer halted. kill() called! (edge bridge: %s)" % event.reason)
                self._relink_at = self._now + self._relink_delay

    def _relay_message(self, event) -> None:
        text = event.text
        if event.level == "error":
            self.box.reply("Error:" + text)
        elif event.level == "warning" or not (text[:5] == "echo:" or text[:2] == "//"):
            self.box.reply("echo:" + text)
        else:
            self.box.reply(text)
