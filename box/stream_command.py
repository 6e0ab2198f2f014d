"""`mipai-box stream`: send the owner's own plaintext G-code to a printer, for diagnostics."""

import contextlib
import signal
import sys
from importlib import resources

from console.progress_bar import ProgressBar
from firmware_bridge import gcode, marlin, streamer
from firmware_bridge.serial_transport import COMMON_BAUD_RATES, PrinterPortError
from firmware_bridge.virtual_printer import VirtualPrinterProcess

# The virtual printer of `--virtual-printer` moves 50 times faster than a real one: a demo, not a wait.
DEMO_MOVE_TIME_SCALE = "0.02"


def _positive_int(text: str) -> int:
    value = int(text)
    if value < 1:
        raise ValueError(text)
    return value


def _positive_float(text: str) -> float:
    value = float(text)
    if not value > 0:
        raise ValueError(text)
    return value


_positive_int.__name__ = "positive whole number"
_positive_float.__name__ = "positive number"
MAX_WINDOW = 128  # half of the link's default resend history


def add_arguments(parser) -> None:
    parser.add_argument("file", nargs="?", help="G-code file (default: the bundled sample vase)")
    where = parser.add_mutually_exclusive_group(required=True)
    where.add_argument("--port", help="serial port of the printer, e.g. /dev/ttyUSB0")
    where.add_argument("--virtual-printer", action="store_true", help="start a virtual printer and print to it")
    parser.add_argument(
        "--baud", type=_positive_int, help="baud rate (default: probe %s)" % ", ".join(map(str, COMMON_BAUD_RATES))
    )
    parser.add_argument(
        "--window",
        type=_positive_int,
        help="lines in flight, 1 to %d (default: 1, or what ADVANCED_OK reports)" % MAX_WINDOW,
    )
    parser.add_argument(
        "--timeout", type=_positive_float, default=10.0, help="seconds without an answer before retrying"
    )


def _open_source(path):
    if path is None:
        return resources.files("firmware_bridge.samples").joinpath("vase.gcode").open("rb")
    return open(path, "rb")


def check_file(path) -> int:
    """Read the whole file once and return its command count; raises GcodeError before anything is sent."""
    count = 0
    with _open_source(path) as handle:
        for _ in gcode.iter_commands(handle):
            count += 1
    return count


def run(args) -> int:
    if args.window is not None and args.window > MAX_WINDOW:
        print("mipai-box stream: --window must be at most %d lines" % MAX_WINDOW, file=sys.stderr)
        return 2
    name = args.file or "the bundled sample (vase.gcode)"
    try:
        total = check_file(args.file)
    except OSError as exc:
        print("mipai-box stream: cannot read %s: %s" % (args.file, exc.strerror or exc), file=sys.stderr)
        return 2
    except gcode.GcodeError as exc:
        print("mipai-box stream: %s, %s; nothing was sent" % (args.file, exc), file=sys.stderr)
        return 2
    if total == 0:
        print("mipai-box stream: %s holds no G-code commands; nothing was sent" % name, file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
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
            print("mipai-box stream: %s" % exc, file=sys.stderr)
            return 3
        stack.callback(connection.close)
        firmware = connection.firmware
        print(
            "printer: %s, %s at %d baud; %d commands from %s"
            % (
                firmware.get("MACHINE_TYPE", "unknown machine"),
                firmware.get("FIRMWARE_NAME", "unknown firmware"),
                connection.transport.baud,
                total,
                name,
            ),
            file=sys.stderr,
        )
        report = _stream_with_progress(connection, args.file, total)
    print(
        "%s: %s. %d of %d lines confirmed in %.1f s (%.0f lines/s), %d resends, %d printer warnings%s"
        % (
            report.outcome,
            report.reason,
            report.lines_acknowledged,
            total,
            report.seconds,
            report.lines_acknowledged / report.seconds if report.seconds else 0.0,
            report.resends,
            report.warnings,
            "" if report.outcome == marlin.DONE else "; last confirmed source line %d" % report.last_source_line,
        ),
        file=sys.stderr,
    )
    for message in list(report.messages)[-5:]:
        print("  printer said: %s" % message, file=sys.stderr)
    if report.recent_io:
        print("last lines on the serial port (> sent, < received):", file=sys.stderr)
        for line in report.recent_io[-12:]:
            print("  " + line, file=sys.stderr)
    return 0 if report.outcome == marlin.DONE else 1


def _stream_with_progress(connection, path, total: int) -> streamer.StreamReport:
    bar = ProgressBar(total, "printing")
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

    def on_progress(progress: marlin.Progress, _source_line: int) -> None:
        extra = "layer %d Z %.2f" % (progress.layer, progress.z) if progress.z is not None else ""
        if "T" in temperatures:
            extra += " T %.0f/%.0f" % (temperatures["T"][0], temperatures["T"][1] or 0)
        bar.update(progress.lines_acknowledged, extra)

    previous = signal.signal(signal.SIGINT, on_interrupt)
    try:
        with _open_source(path) as handle:
            return streamer.stream(
                connection, gcode.iter_commands(handle), on_progress=on_progress, on_event=on_event, controls=controls
            )
    finally:
        signal.signal(signal.SIGINT, previous)
        bar.close()
