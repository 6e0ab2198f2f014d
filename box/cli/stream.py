"""`mipai-box stream`: send the owner's own plaintext G-code to a printer, for diagnostics."""

import contextlib
import sys
from importlib import resources

from box.cli import printer_options
from firmware_bridge import gcode

PROGRAM = "mipai-box stream"


def add_arguments(parser, _common) -> None:
    parser.add_argument("file", nargs="?", help="G-code file (default: the bundled sample vase)")
    printer_options.add_printer_arguments(parser)


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
    if not printer_options.check_printer_arguments(args, PROGRAM):
        return 2
    name = args.file or "the bundled sample (vase.gcode)"
    try:
        total = check_file(args.file)
    except OSError as exc:
        print("%s: cannot read %s: %s" % (PROGRAM, args.file, exc.strerror or exc), file=sys.stderr)
        return 2
    except gcode.GcodeError as exc:
        print("%s: %s, %s; nothing was sent" % (PROGRAM, args.file, exc), file=sys.stderr)
        return 2
    if total == 0:
        print("%s: %s holds no G-code commands; nothing was sent" % (PROGRAM, name), file=sys.stderr)
        return 2
    with contextlib.ExitStack() as stack:
        connection = printer_options.connect(args, stack, PROGRAM)
        if connection is None:
            return 3
        print("printer: %s; %d commands from %s" % (printer_options.describe(connection), total, name), file=sys.stderr)
        with _open_source(args.file) as handle:
            report = printer_options.stream_with_progress(connection, gcode.iter_commands(handle), total)
    return printer_options.report_outcome(report, total)
