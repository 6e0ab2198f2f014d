"""Sans-I/O model of Marlin 2.x firmware's serial side, with fault injection, for tests and benchmarks.

It follows Marlin's GCodeQueue: a bounded receive buffer, line-number and checksum checks in that order,
"Error:... Last Line: N" + "Resend: N+1" + "ok" on a bad line with the receive buffer flushed, a command
queue of BUFSIZE entries, "ok" sent when a command leaves the queue, an optional finite planner with
simulated move time, heaters, M105/M155/M115 and the emergency parser. The pseudo-terminal shell around it
is firmware_bridge.virtual_printer.
"""

import math
import random
from collections import deque

from firmware_bridge.gcode import checksum

# Commands the host adds on its own (handshake, temperature reports); a job's record leaves them out.
HOST_HOUSEKEEPING = (b"M110", b"M115", b"M105", b"M155")

_CAPABILITIES = (
    "SERIAL_XON_XOFF:0",
    "BINARY_FILE_TRANSFER:0",
    "EEPROM:1",
    "AUTOREPORT_POS:0",
    "PROGRESS:0",
    "PRINT_JOB:1",
    "AUTOLEVEL:1",
    "Z_PROBE:1",
    "SDCARD:1",
    "THERMAL_PROTECTION:1",
    "ARCS:1",
)


class PrinterOptions:
    """What the virtual printer is and which faults it injects. Rates are per received line."""

    def __init__(self, **overrides) -> None:
        self.firmware_name = "Marlin 2.1.2.1 (virtual)"
        self.machine_type = "MIP.AI Virtual Printer"
        self.uuid = "cede2a2f-41a2-4748-9b12-c55c62f367ff"
        self.extruders = 1
        self.advanced_ok = False
        self.emergency_parser = True
        self.autoreport_temp = True
        self.bufsize = 4
        self.rx_buffer = 128
        self.planner_moves = 16
        self.move_time_scale = 0.0  # 0: moves take no time; 1: real time from distance and feed rate
        self.heat_rate = 50.0  # degrees per second while heating
        self.checksum_error_rate = 0.0
        self.drop_byte_rate = 0.0
        self.busy_every = 0  # every Nth command keeps the firmware busy for busy_seconds
        self.busy_seconds = 0.5
        self.busy_interval = 0.1  # Marlin's host keepalive interval (2 s by default; shorter for tests)
        self.reset_after = 0  # after N executed commands: reboot ("start")
        self.disconnect_after = 0  # after N executed commands: the port goes away
        self.halt_after = 0  # after N executed commands: thermal runaway, "Printer halted. kill() called!"
        self.silent_after = 0  # after N executed commands: answer nothing, ever again
        for name, value in overrides.items():
            if not hasattr(self, name):
                raise TypeError("unknown printer option %r" % name)
            setattr(self, name, value)


class Heater:
    def __init__(self, name: str) -> None:
        self.name = name
        self.actual = 25.0
        self.target = 0.0

    def advance(self, seconds: float, heat_rate: float) -> None:
        goal = self.target if self.target > 0 else 25.0
        step = (heat_rate if goal > self.actual else heat_rate / 5) * seconds
        if abs(goal - self.actual) <= step:
            self.actual = goal
        else:
            self.actual += step if goal > self.actual else -step

    def reached(self) -> bool:
        return abs(self.actual - self.target) < 1.0


class VirtualMarlin:
    """Feed it host bytes with receive_data(); collect its answer with output(); call tick() as time passes."""

    def __init__(self, options: PrinterOptions, record=None, seed: int = 0) -> None:
        self.options = options
        self._record = record
        self._random = random.Random(seed)
        self._rx = bytearray()
        self._queue = deque(maxlen=options.bufsize)
        self._planner = deque(maxlen=options.planner_moves)  # end times of moves not finished yet
        self._out = bytearray()
        self.last_line = 0
        self.executed = 0
        self.rx_overflows = 0
        self.faults_injected = 0
        self.errors_reported = 0
        self.halted = False
        self.silent = False
        self.disconnected = False
        self._hotend = Heater("T")
        self._bed = Heater("B")
        self._position = [0.0, 0.0, 0.0]
        self._feed_rate = 1500.0
        self._autoreport_interval = 0.0
        self._next_autoreport = 0.0
        self._blocked_until = None  # busy/dwell end time for the command at the head of the queue
        self._next_keepalive = 0.0
        self._last_time = 0.0
        self._busy_done = False
        self._next_fault_at = min([n for n in self._fault_points()] or [0])
        self._boot()

    # ------------------------------------------------------------------------------ interface

    def receive_data(self, data: bytes, now: float) -> None:
        if self.silent or self.disconnected:
            return
        if self.options.emergency_parser and b"M112" in data and not self.halted:
            self._kill("Printer halted. kill() called!")
            return
        if self.halted:
            return
        room = self.options.rx_buffer - len(self._rx)
        if len(data) > room:
            self.rx_overflows += 1
            data = data[: max(room, 0)]
        self._rx += data
        self._run(now)

    def tick(self, now: float) -> None:
        if self.silent or self.disconnected or self.halted:
            return
        self._run(now)

    def output(self) -> bytes:
        data = bytes(self._out)
        self._out = bytearray()
        return data

    def next_wakeup(self, now: float) -> float:
        """When tick() has work to do next (timers, moves, heating)."""
        if self._queue or self._planner or self._autoreport_interval:
            return now + 0.02
        return now + 1.0

    # ------------------------------------------------------------------------------ boot, kill

    def _boot(self) -> None:
        self._rx = bytearray()
        self._queue.clear()
        self._planner.clear()
        self.last_line = 0
        self._autoreport_interval = 0.0
        self._out += b"start\necho:Marlin 2.1.2.1\necho: Last Updated: 2024-02-20 | Author: (virtual)\n"

    def _kill(self, reason: str) -> None:
        self._out += b"Error:%s\n" % reason.encode()
        self.halted = True
        self._queue.clear()
        self._rx = bytearray()

    # ------------------------------------------------------------------------------ the main loop

    def _run(self, now: float) -> None:
        if now - self._last_time > 0.01:
            seconds = now - self._last_time
            self._hotend.advance(seconds, self.options.heat_rate)
            self._bed.advance(seconds, self.options.heat_rate)
            self._last_time = now
        while self._planner and self._planner[0] <= now:
            self._planner.popleft()
        if self._autoreport_interval and now >= self._next_autoreport:
            self._next_autoreport = now + self._autoreport_interval
            self._out += b" " + self._temperature_report() + b"\n"
        while True:
            while len(self._queue) < self.options.bufsize and not self.halted:
                newline = self._rx.find(b"\n")
                if newline < 0:
                    break
                raw = bytes(self._rx[:newline])
                del self._rx[: newline + 1]
                self._accept_line(raw)
            if not self._queue or self.halted or self.silent or self.disconnected:
                return
            command = self._queue[0]
            if not self._execute(command, now):
                return
            if self._queue and self._queue[0] is command:  # a reboot or kill() empties the queue itself
                self._queue.popleft()

    def _accept_line(self, raw: bytes) -> None:
        """Marlin's get_serial_commands for one line: numbering and checksum, then the command queue."""
        raw = raw.strip()
        if not raw:
            return
        options = self.options
        # At most one fault a line: XOR checksums catch any single bad or lost byte, but two faults in one
        # line can turn "N12 G1 X1*34" into a valid unnumbered command; no Marlin host can prevent that.
        if options.checksum_error_rate and self._random.random() < options.checksum_error_rate:
            raw = self._flip_bit(raw)
        elif options.drop_byte_rate and self._random.random() < options.drop_byte_rate:
            position = self._random.randrange(len(raw))
            raw = raw[:position] + raw[position + 1 :]
            self.faults_injected += 1
        if raw[:1] == b"N":
            space = raw.find(b" ")
            is_m110 = b"M110" in raw
            if is_m110:
                second = raw.find(b"N", raw.find(b"M110") + 4)
                number = _leading_int(raw, second + 1 if second >= 0 else 1)
            else:
                number = _leading_int(raw, 1, space)
            if number is None or (number != self.last_line + 1 and not is_m110):
                self._line_error(b"Line Number is not Last Line Number+1, Last Line: ")
                return
            star = raw.rfind(b"*")
            if star < 0:
                self._line_error(b"No Checksum with line number, Last Line: ")
                return
            if _leading_int(raw, star + 1) != checksum(raw[:star]):
                self._line_error(b"checksum mismatch, Last Line: ")
                return
            self.last_line = number
            command = raw[space + 1 : star].strip() if 0 <= space < star else b""
        elif b"*" in raw:
            self._line_error(b"No Line Number with checksum, Last Line: ")
            return
        else:
            command = raw
        if command:
            self._queue.append(command)

    def _line_error(self, message: bytes) -> None:
        self.errors_reported += 1
        self._out += b"Error:%s%d\n" % (message, self.last_line)
        self._rx = bytearray()  # Marlin drops whatever else is in its receive buffer
        self._out += b"Resend: %d\nok\n" % (self.last_line + 1)

    def _flip_bit(self, raw: bytes) -> bytes:
        self.faults_injected += 1
        position = self._random.randrange(len(raw))
        for _ in range(8):
            flipped = raw[position] ^ (1 << self._random.randrange(8))
            if flipped not in (10, 13):  # noise that splits a line is not modelled
                return raw[:position] + bytes((flipped,)) + raw[position + 1 :]
        return raw

    # ------------------------------------------------------------------------------ commands

    def _execute(self, command: bytes, now: float) -> bool:
        """Run the command at the head of the queue; False while it must wait (planner full, heating)."""
        options = self.options
        if self._blocked_until is not None:
            if now < self._blocked_until:
                self._keepalive(now)
                return False
            self._blocked_until = None
            self._busy_done = True
        elif options.busy_every and (self.executed + 1) % options.busy_every == 0 and not self._busy_done:
            self._blocked_until = now + options.busy_seconds
            self._next_keepalive = now
            self._keepalive(now)
            return False
        code = command.split(b" ", 1)[0].upper()
        if code in (b"G0", b"G1", b"G2", b"G3"):
            if options.move_time_scale and not self._move(command, now):
                return False
        elif code in (b"M109", b"M190"):
            heater = self._hotend if code == b"M109" else self._bed
            target = _word(command, b"S")
            if target is not None:
                heater.target = target
            if not heater.reached():
                if now >= self._next_keepalive:
                    self._next_keepalive = now + 1.0
                    self._out += b" " + self._temperature_report() + b" W:?\n"
                return False
        elif code == b"M400" and self._planner:
            return False
        elif code == b"G4" and self._blocked_until is None:
            seconds = (_word(command, b"P") or 0.0) / 1000.0 + (_word(command, b"S") or 0.0)
            if seconds > 0:
                self._blocked_until = now + seconds * max(self.options.move_time_scale, 0.0)
                return False
        self._busy_done = False
        self._finish(code, command)
        return True

    def _finish(self, code: bytes, command: bytes) -> None:
        """The command is done: its side effects, the record, and the "ok"."""
        extra = b""
        if code[:1] == b"G":
            pass
        elif code in (b"M104", b"M109"):
            self._hotend.target = _word(command, b"S") or 0.0
        elif code in (b"M140", b"M190"):
            self._bed.target = _word(command, b"S") or 0.0
        elif code == b"M105":
            extra = b" " + self._temperature_report()
        elif code == b"M155":
            self._autoreport_interval = _word(command, b"S") or 0.0
        elif code == b"M115":
            self._out += self._m115_report()
        elif code == b"M112":
            self._kill("Printer halted. kill() called!")
            return
        if self._record is not None and code not in HOST_HOUSEKEEPING:
            self._record(command)
        self.executed += 1
        if self.options.advanced_ok:
            extra += b" N%d P%d B%d" % (
                self.last_line,
                self.options.planner_moves - len(self._planner),
                self.options.bufsize - len(self._queue) + 1,
            )
        self._out += b"ok%s\n" % extra
        self._after_command()

    def _after_command(self) -> None:
        options = self.options
        count = self.executed
        if count != self._next_fault_at:
            return
        self._next_fault_at = min([n for n in self._fault_points() if n > count] or [0])
        if options.reset_after and count == options.reset_after:
            self._boot()
        elif options.disconnect_after and count == options.disconnect_after:
            self.disconnected = True
        elif options.halt_after and count == options.halt_after:
            self._out += b"Error:Thermal Runaway, system stopped! Heater_ID: 0\n"
            self._kill("Printer halted. kill() called!")
        elif options.silent_after and count == options.silent_after:
            self.silent = True

    def _fault_points(self) -> list:
        options = self.options
        return [
            n for n in (options.reset_after, options.disconnect_after, options.halt_after, options.silent_after) if n
        ]

    def _move(self, command: bytes, now: float) -> bool:
        """Put a move in the planner, False while the planner is full. Only used when moves take time."""
        scale = self.options.move_time_scale
        target = list(self._position)
        for index, axis in enumerate((b"X", b"Y", b"Z")):
            value = _word(command, axis)
            if value is not None:
                target[index] = value
        feed = _word(command, b"F")
        if feed:
            self._feed_rate = feed
        if len(self._planner) >= self.options.planner_moves:
            return False
        distance = math.sqrt(sum((a - b) ** 2 for a, b in zip(target, self._position, strict=True)))
        seconds = distance / (self._feed_rate / 60.0) * scale
        start = self._planner[-1] if self._planner else now
        self._planner.append(max(start, now) + seconds)
        self._position = target
        return True

    def _keepalive(self, now: float) -> None:
        if now >= self._next_keepalive:
            self._next_keepalive = now + self.options.busy_interval
            self._out += b"echo:busy: processing\n"

    def _temperature_report(self) -> bytes:
        hotend, bed = self._hotend, self._bed
        return b"T:%.2f /%.2f B:%.2f /%.2f @:0 B@:0" % (hotend.actual, hotend.target, bed.actual, bed.target)

    def _m115_report(self) -> bytes:
        options = self.options
        lines = [
            "FIRMWARE_NAME:%s SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin PROTOCOL_VERSION:1.0 "
            "MACHINE_TYPE:%s EXTRUDER_COUNT:%d UUID:%s"
            % (options.firmware_name, options.machine_type, options.extruders, options.uuid)
        ]
        capabilities = list(_CAPABILITIES)
        capabilities.append("AUTOREPORT_TEMP:%d" % options.autoreport_temp)
        capabilities.append("EMERGENCY_PARSER:%d" % options.emergency_parser)
        capabilities.append("ADVANCED_OK:%d" % options.advanced_ok)
        lines.extend("Cap:" + capability for capability in capabilities)
        return ("\n".join(lines) + "\n").encode()


def _leading_int(raw: bytes, start: int, end: int = -1):
    """The integer in raw[start:end], or at raw[start:] up to the first non-digit; None if there is none."""
    if end < 0:
        end = start
        if end < len(raw) and raw[end] == 45:  # "-"
            end += 1
        while end < len(raw) and 48 <= raw[end] <= 57:
            end += 1
    try:
        return int(raw[start:end])
    except ValueError:
        return None


def _word(command: bytes, letter: bytes):
    """The number after `letter` in a G-code command (b"G1 X1.5" -> 1.5 for X), or None."""
    for word in command.split(b" ")[1:]:
        if word[:1].upper() == letter:
            try:
                return float(word[1:])
            except ValueError:
                return None
    return None
