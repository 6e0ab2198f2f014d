"""What `mipai-box stream` and `mipai-box print` share: printer options, connecting, streaming with progress."""

import re
import signal
import sys

from console.progress_bar import ProgressBar
from firmware_bridge import marlin, streamer
from firmware_bridge.serial_transport import COMMON_BAUD_RATES, PrinterPortError
from firmware_bridge.virtual_printer import VirtualPrinterProcess

# The virtual printer of `--virtual-printer` moves 50 times faster than a real one: a demo, not a wait.
DEMO_MOVE_TIME_SCALE = "0.02"
MAX_WINDOW = 128  # half of the link's default resend history
_QUOTED = re.compile(r'"[^"]*"')


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
        printer = stack.enter_context(VirtualPrinterProcess("--move-time-scale", DEMO_MOVE_TIME_SCALE))
        port = printer.path
        print("virtual printer on %s" % port, file=sys.stderr)
    bauds = (args.baud,) if args.baud else COMMON_BAUD_RATES

    def new_link() -> marlin.HostLink:
        return marlin.HostLink(window=args.window, response_timeout=args.timeout)

    try:
        connection = streamer.connect(port, bauds, link_factory=new_link)
    except (PrinterPortError, streamer.NotAPrinterError) as exc:
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


def stream_with_progress(connection, commands, total: int, by_source_line: bool = False) -> streamer.StreamReport:
    """Stream with a progress bar over `total` commands (or source lines); Ctrl-C cancels, twice stops at once."""
    bar = ProgressBar(total, "printing", unit="source lines" if by_source_line else "lines")
    controls = streamer.Controls()
    temperatures = {}

    def on_interrupt(_signum, _frame) -> None:
        # First Ctrl-C cancels with the safe end sequence; a second one stops the printer at once.
        controls.request("emergency_stop" if controls.pending == "cancel" or on_interrupt.count else "cancel")
        on_interrupt.count += 1

    on_interrupt.count = 0

    def on_event(event) -> None:
        if isinstance(event, marlin.Temperatures):
            temperatures.update(event.readings)

    def on_progress(progress: marlin.Progress, source_line: int) -> None:
        extra = "layer %d Z %.2f" % (progress.layer, progress.z) if progress.z is not None else ""
        if "T" in temperatures:
            extra += " T %.0f/%.0f" % (temperatures["T"][0], temperatures["T"][1] or 0)
        bar.update(source_line if by_source_line else progress.lines_acknowledged, extra)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        return streamer.stream(connection, commands, on_progress=on_progress, on_event=on_event, controls=controls)
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()


def report_outcome(report: streamer.StreamReport, total, show_sent_lines: bool = True) -> int:
    """Print how the job ended; return the exit status (0 done, 1 not finished).

    Sealed jobs pass `show_sent_lines=False`: their G-code must not reach a terminal or a log.
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
    for message in list(report.messages)[-5:]:
        if not show_sent_lines:  # firmware quotes the command it complains about ("Unknown command: "...")
            message = _QUOTED.sub('"(a line of the job)"', message)
        print("  printer said: %s" % message, file=sys.stderr)
    recent = [line for line in report.recent_io if show_sent_lines or not line.startswith(">")]
    if recent:
        print(
            "last lines on the serial port (%s):" % ("> sent, < received" if show_sent_lines else "received"),
            file=sys.stderr,
        )
        for line in recent[-12:]:
            print("  " + line, file=sys.stderr)
    return 0 if report.outcome == marlin.DONE else 1
