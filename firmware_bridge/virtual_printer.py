"""A virtual Marlin printer on a pseudo-terminal: `python -m firmware_bridge.virtual_printer`.

It prints the path of its serial port on the first line of standard output, then serves until it is
stopped (SIGTERM, SIGINT) or a fault makes it disconnect. `--record FILE` writes every job command it
executed, one per line (host housekeeping such as M105 left out), so a test can check that each line
arrived exactly once and in order. `--summary FILE` writes counters as JSON when it stops.
"""

import argparse
import hashlib
import json
import os
import select
import signal
import sys
import termios
import time
import tty
from contextlib import suppress

from firmware_bridge.virtual_marlin import PrinterOptions, VirtualMarlin

# Linux's speed code for a rate without a B constant (250000 and the like); Python's termios lacks the name.
_BOTHER = 0o010000


class CommandRecord:
    """Executed job commands: counted, hashed in order, and optionally written to a file."""

    def __init__(self, path) -> None:
        self.count = 0
        self._digest = hashlib.sha256()
        self._file = open(path, "wb") if path else None  # noqa: SIM115 - closed by close(), kept for the run

    def __call__(self, command: bytes) -> None:
        self.count += 1
        self._digest.update(command + b"\n")
        if self._file is not None:
            self._file.write(command + b"\n")

    def sha256(self) -> str:
        return self._digest.hexdigest()

    def close(self) -> None:
        if self._file is not None:
            self._file.close()


class PseudoTerminalPrinter:
    """Runs a VirtualMarlin behind the master side of a new pseudo-terminal."""

    def __init__(self, printer: VirtualMarlin, link_path=None, baud=None) -> None:
        self.printer = printer
        # termios speed code the host must set to be understood; a wrong one gets line noise back.
        self._speed_code = None if baud is None else getattr(termios, "B%d" % baud, _BOTHER)
        self._master, self._slave = os.openpty()
        tty.setraw(self._slave)
        os.set_blocking(self._master, False)
        self.path = os.ttyname(self._slave)
        self._link_path = link_path
        if link_path:
            with suppress(FileNotFoundError):
                os.unlink(link_path)
            os.symlink(self.path, link_path)
        self._stopping = False

    def stop(self, *_args) -> None:
        self._stopping = True

    def serve(self) -> None:
        poller = select.poll()
        poller.register(self._master, select.POLLIN)
        printer = self.printer
        master = self._master
        clock = time.monotonic
        wakeup = clock()
        while not self._stopping and not printer.disconnected:
            now = clock()
            ready = poller.poll(max(0.0, wakeup - now) * 1000.0)
            now = clock()
            if ready:
                try:
                    data = os.read(master, 65536)
                except (BlockingIOError, InterruptedError):
                    data = b""
                if data and self._speed_code is not None and termios.tcgetattr(master)[4] != self._speed_code:
                    self._write(b"\xf0\x8a\x13\xfe\x80\n")  # what a wrong baud rate looks like
                elif data:
                    printer.receive_data(data, now)
                    wakeup = min(wakeup, printer.next_wakeup(now))  # a command may now be waiting on time
            if now >= wakeup:
                printer.tick(now)
                wakeup = printer.next_wakeup(now)
            out = printer.output()
            if out:
                self._write(out)
        self.close()

    def _write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._master, view)
            except BlockingIOError:
                select.select([], [self._master], [], 1.0)
                continue
            view = view[written:]

    def close(self) -> None:
        for fd in (self._master, self._slave):
            with suppress(OSError):
                os.close(fd)
        if self._link_path:
            with suppress(FileNotFoundError):
                os.unlink(self._link_path)


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m firmware_bridge.virtual_printer", description=__doc__.split("\n")[0]
    )
    parser.add_argument("--link", help="also make this symlink to the serial port")
    parser.add_argument("--record", help="write every executed job command to this file")
    parser.add_argument("--summary", help="write counters as JSON to this file when stopping")
    parser.add_argument("--seed", type=int, default=0, help="seed of the fault injection")
    parser.add_argument("--baud", type=int, help="answer only a host set to this baud rate (default: any)")
    parser.add_argument("--advanced-ok", action="store_true", help="advertise ADVANCED_OK and send 'ok N P B'")
    parser.add_argument("--no-emergency-parser", action="store_true")
    parser.add_argument("--no-autoreport", action="store_true", help="no M155; the host must poll M105")
    parser.add_argument("--bufsize", type=int, default=4, help="command queue entries (Marlin BUFSIZE)")
    parser.add_argument("--rx-buffer", type=int, default=128, help="receive buffer bytes (Marlin RX_BUFFER_SIZE)")
    parser.add_argument("--planner-moves", type=int, default=16)
    parser.add_argument("--move-time-scale", type=float, default=0.0, help="0: moves take no time; 1: real time")
    parser.add_argument("--heat-rate", type=float, default=50.0, help="degrees per second while heating")
    parser.add_argument("--machine-type", default=PrinterOptions().machine_type)
    parser.add_argument("--checksum-error-rate", type=float, default=0.0, help="share of lines hit by line noise")
    parser.add_argument("--drop-byte-rate", type=float, default=0.0, help="share of lines losing one byte")
    parser.add_argument("--busy-every", type=int, default=0, help="every Nth command reports busy for a while")
    parser.add_argument("--busy-seconds", type=float, default=0.5)
    parser.add_argument("--reset-after", type=int, default=0, help="reboot after N commands")
    parser.add_argument("--disconnect-after", type=int, default=0, help="vanish after N commands")
    parser.add_argument("--halt-after", type=int, default=0, help="thermal runaway after N commands")
    parser.add_argument("--silent-after", type=int, default=0, help="stop answering after N commands")
    return parser


def options_from(args: argparse.Namespace) -> PrinterOptions:
    return PrinterOptions(
        advanced_ok=args.advanced_ok,
        emergency_parser=not args.no_emergency_parser,
        autoreport_temp=not args.no_autoreport,
        bufsize=args.bufsize,
        rx_buffer=args.rx_buffer,
        planner_moves=args.planner_moves,
        move_time_scale=args.move_time_scale,
        heat_rate=args.heat_rate,
        machine_type=args.machine_type,
        checksum_error_rate=args.checksum_error_rate,
        drop_byte_rate=args.drop_byte_rate,
        busy_every=args.busy_every,
        busy_seconds=args.busy_seconds,
        reset_after=args.reset_after,
        disconnect_after=args.disconnect_after,
        halt_after=args.halt_after,
        silent_after=args.silent_after,
    )


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    for name in ("checksum_error_rate", "drop_byte_rate"):
        if not 0.0 <= getattr(args, name) <= 1.0:
            print("--%s must be between 0 and 1" % name.replace("_", "-"), file=sys.stderr)
            return 2
    for name, least in (("bufsize", 1), ("rx_buffer", 32), ("planner_moves", 1)):
        if getattr(args, name) < least:
            print("--%s must be at least %d" % (name.replace("_", "-"), least), file=sys.stderr)
            return 2
    if args.move_time_scale < 0 or args.heat_rate <= 0:
        print("--move-time-scale must not be negative and --heat-rate must be positive", file=sys.stderr)
        return 2
    record = CommandRecord(args.record)
    printer = VirtualMarlin(options_from(args), record=record, seed=args.seed)
    shell = PseudoTerminalPrinter(printer, link_path=args.link, baud=args.baud)
    signal.signal(signal.SIGTERM, shell.stop)
    signal.signal(signal.SIGINT, shell.stop)
    print(shell.path, flush=True)
    try:
        shell.serve()
    finally:
        record.close()
        if args.summary:
            summary = {
                "executed": printer.executed,
                "job_commands": record.count,
                "job_sha256": record.sha256(),
                "rx_overflows": printer.rx_overflows,
                "faults_injected": printer.faults_injected,
                "errors_reported": printer.errors_reported,
                "halted": printer.halted,
                "disconnected": printer.disconnected,
            }
            with open(args.summary, "w") as handle:
                json.dump(summary, handle)
    return 0


if __name__ == "__main__":
    sys.exit(main())


class VirtualPrinterProcess:
    """A virtual printer in a child process; `path` is its serial port. Use as a context manager."""

    def __init__(self, *args: str, python: str = sys.executable) -> None:
        import subprocess

        # In a session of its own: Ctrl-C in a terminal reaches the box, which ends a print safely while the
        # printer still listens, and not the printer as well.
        self._process = subprocess.Popen(
            [python, "-m", "firmware_bridge.virtual_printer", *args],
            stdout=subprocess.PIPE,
            text=True,
            start_new_session=True,
        )
        self.path = self._process.stdout.readline().strip()
        if not self.path:
            self._process.wait(5)
            raise RuntimeError("the virtual printer did not start (exit code %s)" % self._process.returncode)

    @property
    def pid(self) -> int:
        return self._process.pid

    def running(self) -> bool:
        return self._process.poll() is None

    def stop(self, timeout: float = 10.0) -> int:
        if self._process.poll() is None:
            self._process.send_signal(signal.SIGTERM)
        code = self._process.wait(timeout)
        self._process.stdout.close()
        return code

    def __enter__(self) -> "VirtualPrinterProcess":
        return self

    def __exit__(self, *_exc) -> None:
        self.stop()
