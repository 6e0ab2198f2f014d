"""What `mipai-box stream` and `mipai-box print` share: printer options, connecting, and a print as the terminal
shows it (progress bar, Ctrl-C, how it ended)."""

import signal
import sys

from box.printing import job_run
from console.progress_bar import ProgressBar
from firmware_bridge import marlin, streamer
from firmware_bridge.errors import PrinterUnavailable
from firmware_bridge.serial_transport import COMMON_BAUD_RATES
from firmware_bridge.virtual_printer import VirtualPrinterProcess

# How fast the virtual printer moves, against a real one: `--virtual-printer` is a quick check, not a wait;
# the demo's sample (`mipai-box demo`, `make run`) takes about 80 s: time to open the page and watch it.
QUICK_VIRTUAL_PRINTER = ("--move-time-scale", "0.02")
DEMO_VIRTUAL_PRINTER = ("--move-time-scale", "0.25")
MAX_WINDOW = 128  # half of the link's default resend history


def positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


positive_int.__name__ = "positive whole number"
positive_float.__name__ = "positive number"


def add_printer_arguments(parser) -> None:
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial port of the printer, e.g. /dev/ttyUSB0")
    where.add_argument("--virtual-printer", action="store_true", help="start a virtual printer and print to it")
    parser.add_argument(
        "--baud", type=positive_int, help="baud rate (default: probe %s)" % ", ".join(map(str, COMMON_BAUD_RATES))
    )
    parser.add_argument(
        "--window",
        type=positive_int,
        help="lines in flight, 1 to %d (default: 1, or what ADVANCED_OK reports)" % MAX_WINDOW,
    )
    parser.add_argument(
        "--timeout", type=positive_float, default=10.0, help="seconds without an answer before retrying"
    )


def check_printer_arguments(args, program: str) -> bool:
    if args.window is not None and args.window > MAX_WINDOW:
        print("%s: --window must be at most %d lines" % (program, MAX_WINDOW), file=sys.stderr)
        return False
    return True


def connect(args, stack, program: str):
    """Connect to `--port` or a fresh virtual printer; None (after saying why) when there is no printer."""
    port = args.port
    if args.virtual_printer:
        printer = stack.enter_context(VirtualPrinterProcess(*QUICK_VIRTUAL_PRINTER))
        port = printer.path
        print("virtual printer on %s" % port, file=sys.stderr)
    bauds = (args.baud,) if args.baud else COMMON_BAUD_RATES

    def new_link() -> marlin.HostLink:
        return marlin.HostLink(window=args.window, response_timeout=args.timeout)

    try:
        connection = streamer.connect(port, bauds, link_factory=new_link)
    except PrinterUnavailable as exc:
        print("%s: %s" % (program, exc), file=sys.stderr)
        return None
    stack.callback(connection.close)
    return connection


def describe(connection) -> str:
    firmware = connection.firmware
    return "%s, %s at %d baud" % (
        firmware.get("MACHINE_TYPE", "unknown machine"),
        firmware.get("FIRMWARE_NAME", "unknown firmware"),
        connection.transport.baud,
    )


class TerminalProgress:
    """A progress bar over a job's commands (or source lines) with layer, Z and hotend temperature, shown from
    `start` on; meanwhile Ctrl-C cancels the job with the safe end sequence and a second one stops the printer."""

    def __init__(self, controls: streamer.Controls, by_source_line: bool = False) -> None:
        self.controls = controls
        self.by_source_line = by_source_line
        self.bar = None
        self.temperatures = {}
        self.interrupts = 0
        self._previous_handler = None

    def __enter__(self) -> "TerminalProgress":
        return self

    def __exit__(self, *_exc) -> None:
        self.close()

    def start(self, total: int) -> None:
        self.bar = ProgressBar(total, "printing", unit="source lines" if self.by_source_line else "lines")
        self._previous_handler = signal.signal(signal.SIGINT, self._on_interrupt)

    def close(self) -> None:
        if self.bar is not None:
            signal.signal(signal.SIGINT, self._previous_handler)
            self.bar.close()
            self.bar = None

    def _on_interrupt(self, _signum, _frame) -> None:
        stop_now = self.controls.pending == "cancel" or self.interrupts
        self.controls.request("emergency_stop" if stop_now else "cancel")
        self.interrupts += 1

    def on_event(self, event) -> None:
        if isinstance(event, marlin.Temperatures):
            self.temperatures.update(event.readings)

    def on_progress(self, progress: marlin.Progress, source_line: int) -> None:
        extra = "layer %d Z %.2f" % (progress.layer, progress.z) if progress.z is not None else ""
        if "T" in self.temperatures:
            extra += " T %.0f/%.0f" % (self.temperatures["T"][0], self.temperatures["T"][1] or 0)
        if self.bar is not None:
            self.bar.update(source_line if self.by_source_line else progress.lines_acknowledged, extra)


def stream_with_progress(connection, commands, total: int) -> streamer.StreamReport:
    """Stream plaintext commands with a progress bar; Ctrl-C cancels, twice stops at once."""
    controls = streamer.Controls()
    with TerminalProgress(controls) as terminal:
        terminal.start(total)
        return streamer.stream(
            connection, commands, on_progress=terminal.on_progress, on_event=terminal.on_event, controls=controls
        )


def report_outcome(report: streamer.StreamReport, total, sealed: bool = False) -> int:
    """Print how the job ended; return the exit status (0 done, 1 not finished).

    A sealed job's G-code must not reach a terminal or a log: `job_run.failure_report` leaves it out.
    """
    print(
        "%s: %s. %d%s lines confirmed in %.1f s (%.0f lines/s), %d resends, %d printer warnings%s"
        % (
            report.outcome,
            report.reason,
            report.lines_acknowledged,
            "" if total is None else " of %d" % total,
            report.seconds,
            report.lines_acknowledged / report.seconds if report.seconds else 0.0,
            report.resends,
            report.warnings,
            "" if report.outcome == marlin.DONE else "; last confirmed source line %d" % report.last_source_line,
        ),
        file=sys.stderr,
    )
    for line in job_run.failure_report(report, sealed):
        print("  " + line, file=sys.stderr)
    return 0 if report.outcome == marlin.DONE else 1
