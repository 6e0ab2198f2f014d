"""In-memory peers for the bridge, on simulated time: the box's own HostLink on one side and a small Marlin-like
printer on the other. Plain code that CPython and MicroPython both run."""

import hashlib
from collections import deque

from firmware_bridge import marlin
from firmware_bridge.edge.box_side import BoxSide
from firmware_bridge.edge.bridge import Bridge

KEY = bytes(range(32))
FIRMWARE = "FIRMWARE_NAME:Marlin 2.1.2.1 (Feb 20 2024) MACHINE_TYPE:Ender-3 V2 EXTRUDER_COUNT:1"
HOUSEKEEPING = ("M110", "M115", "M105", "M155")


class ScriptedPrinter:
    """Marlin's intake (the bridge's own BoxSide, which follows Marlin) plus scripted behaviour and faults."""

    def __init__(self, capabilities=("AUTOREPORT_TEMP:1", "EEPROM:1")) -> None:
        self.side = BoxSide(rx_bytes=4096)
        self.capabilities = capabilities
        self.executed = 0  # job commands run
        self.digest = hashlib.sha256()  # over every job command run, in order, each with a newline
        self.last = deque((), 8)  # the last job commands run
        self.corrupt = []  # line numbers to hit with line noise once each (the printer then asks again)
        self.busy = {}  # job command index -> seconds the printer stays busy on it
        self.errors = []  # job command indexes answered with a non-fatal "Error:" before their ok
        self.reset_at = None  # job command index after which the printer reboots
        self.halt_at = None  # job command index after which the printer halts (thermal runaway)
        self.silent = False
        self.silent_at = None  # job command index after which the printer answers nothing until `silent` is reset
        self._out = bytearray()
        self._busy_until = None
        self._waiting_ok = False
        self._next_busy_line = 0.0
        self._report_every = 0.0
        self._next_report = 0.0

    def receive(self, data: bytes, now: float) -> None:
        if self.silent:
            return
        for number in list(self.corrupt):
            marker = b"N%d " % number
            where = data.find(marker)
            if where >= 0:
                self.corrupt.remove(number)
                star = data.find(b"*", where)
                data = data[:star] + (b"*0" if data[star + 1 : star + 2] != b"0" else b"*1") + data[star + 2 :]
        self.side.receive(data)
        self._run(now)

    def tick(self, now: float) -> None:
        if self._report_every and now >= self._next_report and not self.silent:
            self._next_report = now + self._report_every
            self._reply("T:210.00 /210.00 B:60.00 /60.00 @:0 B@:0")
        if self._busy_until is not None:
            if now >= self._busy_until:
                self._busy_until = None
                self._reply("ok")
                self._run(now)
            elif now >= self._next_busy_line:
                self._next_busy_line = now + 1.0
                self._reply("echo:busy: processing")

    def output(self) -> bytes:
        out = bytes(self.side.out) + bytes(self._out)
        self.side.out = bytearray()
        self._out = bytearray()
        return out

    def _reply(self, text: str) -> None:
        self.side.out += text.encode() + b"\n"

    def _run(self, now: float) -> None:
        while self._busy_until is None and not self.silent:
            command = self.side.next_command()
            if command is None:
                return
            code = command.split(" ")[0]
            if code == "M115":
                self._reply(FIRMWARE)
                for capability in self.capabilities:
                    self._reply("Cap:" + capability)
                self._reply("ok")
            elif code == "M105":
                self._reply("ok T:210.00 /210.00 B:60.00 /60.00")
            elif code == "M155":
                self._report_every = float(command.split("S")[1]) if "S" in command else 0.0
                self._next_report = now
                self._reply("ok")
            elif code in HOUSEKEEPING:
                self._reply("ok")
            else:
                index = self.executed
                self.executed += 1
                self.digest.update(command.encode() + b"\n")
                self.last.append(command)
                if index in self.errors:
                    self._reply('Error:Unknown command: "%s"' % command)
                if index in self.busy:
                    self._busy_until = now + self.busy[index]
                    self._next_busy_line = now
                    continue
                self._reply("ok")
                if index == self.reset_at:
                    self.reset_at = None
                    self.side.reset()
                    self._reply("start")
                    return
                if index == self.silent_at:
                    self.silent_at = None
                    self.silent = True
                    return
                if index == self.halt_at:
                    self._reply("Error:Thermal Runaway, system stopped! Heater_ID: 0")
                    self._reply("Error:Printer halted. kill() called!")
                    self.silent = True
                    return


class Wire:
    """Box link <-> bridge <-> printer, stepped on simulated time; `box_noise` corrupts lines toward the bridge."""

    def __init__(self, bridge=None, printer=None, box_link=None, step: float = 0.001) -> None:
        self.bridge = bridge if bridge is not None else Bridge(key=KEY, boot=7)
        self.printer = printer if printer is not None else ScriptedPrinter()
        self.box = box_link if box_link is not None else marlin.HostLink(history_lines=64)
        self.now = 0.0
        self.step = step
        self.events = []
        self.box_noise = []  # box line numbers to corrupt once on the way to the bridge
        self.chunk = 0  # when set, what the box sends reaches the bridge this many bytes at a time
        self.to_box = []  # every line the bridge sent the box

    def exchange(self) -> list:
        self.now += self.step
        now = self.now
        bridge = self.bridge
        out = self.box.data_to_send()
        if out:
            out = _corrupt(out, self.box_noise)
            if self.chunk:
                for at in range(0, len(out), self.chunk):
                    bridge.box_data(out[at : at + self.chunk], now)
            else:
                bridge.box_data(out, now)
        bridge.tick(now)
        data = bridge.to_printer()
        if data:
            self.printer.receive(data, now)
        self.printer.tick(now)
        back = self.printer.output()
        if back:
            bridge.printer_data(back, now)
        reply = bridge.to_box()
        events = []
        if reply:
            if len(self.to_box) < 100:
                self.to_box.extend(reply.decode().splitlines())
            events = self.box.receive_data(reply, now)
        events += self.box.tick(now)
        if len(self.events) < 50:
            self.events.extend(events)
        return events

    def connect(self, max_steps: int = 20000) -> marlin.Connected:
        for _ in range(max_steps):
            for event in self.exchange():
                if isinstance(event, marlin.Connected):
                    self.settle()
                    return event
        raise AssertionError("no handshake through the bridge: %r" % self.to_box[-5:])

    def settle(self, steps: int = 50) -> None:
        for _ in range(steps):
            self.exchange()

    def print_job(self, commands, max_steps: int = 5000000) -> marlin.JobEnded:
        self.box.start_job()
        pending = iter(enumerate(commands, 1))
        for _ in range(max_steps):
            events = hand_over_lines(self.box, pending) if self.box.state == marlin.PRINTING else []
            for event in events + self.exchange():
                if isinstance(event, marlin.JobEnded):
                    return event
        raise AssertionError("the job did not end: %r" % self.to_box[-5:])

    def command(self, command: str, until, max_steps: int = 20000) -> list:
        """Send a control command from the box; step until a line the box received satisfies `until`."""
        self.to_box = []
        seen = 0
        self.box.send_command(command)
        for _ in range(max_steps):
            self.exchange()
            for line in self.to_box[seen:]:
                if until(line):
                    self.settle(20)
                    return self.to_box[seen:]
        raise AssertionError("no answer to %s: %r" % (command, self.to_box[-5:]))

    def attest(self, challenge: bytes) -> str:
        from firmware_bridge.edge.attest import to_hex

        lines = self.command("M7770 C" + to_hex(challenge), lambda line: line.startswith("MIPAI_ATTEST:"))
        return next(line for line in lines if line.startswith("MIPAI_ATTEST:"))


def hand_over_lines(link, commands) -> list:
    """streamer.hand_over_lines, which MicroPython cannot import (the streamer needs pyserial)."""
    while link.ready_for_job_line():
        item = next(commands, None)
        if item is None:
            return link.finish_job()
        link.send_job_line(item[1])
    return []


def _corrupt(data: bytes, numbers: list) -> bytes:
    for number in list(numbers):
        marker = b"N%d " % number
        where = data.find(marker)
        if where >= 0:
            numbers.remove(number)
            star = data.find(b"*", where)
            data = data[:star] + (b"*0" if data[star + 1 : star + 2] != b"0" else b"*1") + data[star + 2 :]
    return data


def job(count: int, layer_every: int = 10):
    """A job of `count` lines, made as it is sent: G28, M83, then extrusion moves with a layer change every
    `layer_every` lines (so count - 2 - (count - 1) // layer_every moves of 0.05 mm each)."""
    for index in range(count):  # (a generator: a list of 100,000 lines would not fit a Pico's heap)
        if index == 0:
            yield "G28"
        elif index == 1:
            yield "M83"
        elif index % layer_every == 0:
            yield "G1 Z%.1f F600" % (index // layer_every * 0.2)
        else:
            yield "G1 X%d Y%d E0.05 F1800" % (index % 200, index // layer_every)


def job_digest(count: int, layer_every: int = 10) -> bytes:
    """SHA-256 of job(count) as ScriptedPrinter hashes what it ran: the job arrived whole, once, in order."""
    digest = hashlib.sha256()
    for command in job(count, layer_every):
        digest.update(command.encode() + b"\n")
    return digest.digest()
