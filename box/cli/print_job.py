"""`mipai-box print JOB.mipjob`: verify a sealed job completely, record the print, then stream it watermarked."""

import contextlib
import sys

from box import data_dir
from box.cli import printer_options
from box.printing import job_run
from console.progress_bar import ProgressBar
from provisioning import identity
from secure_print import opener
from secure_print.errors import SealedJobError
from secure_print.ledger import PrintLedger
from secure_print.trust import TrustStore, TrustStoreError

PROGRAM = "mipai-box print"


def add_arguments(parser, _common) -> None:
    parser.add_argument("job", help="sealed job file (.mipjob)")
    parser.add_argument("--material", help="material loaded in the printer, e.g. PLA (when the license limits it)")
    printer_options.add_printer_arguments(parser)


def _refuse(problem) -> int:
    print("%s: refused: %s. Nothing was sent to the printer." % (PROGRAM, problem), file=sys.stderr)
    return 2


def run(args) -> int:
    if not printer_options.check_printer_arguments(args, PROGRAM):
        return 2
    root = data_dir.prepare(args.data_dir)
    box = identity.load_or_create(root)
    try:
        trust = TrustStore(data_dir.trust_file(root))
    except TrustStoreError as exc:
        return _refuse(exc)
    ledger = PrintLedger(data_dir.ledger_file(root))
    with contextlib.ExitStack() as stack:
        stack.callback(ledger.close)
        try:
            handle = stack.enter_context(open(args.job, "rb"))
        except OSError as exc:
            print("%s: cannot read %s: %s" % (PROGRAM, args.job, exc.strerror or exc), file=sys.stderr)
            return 2
        bars = []

        def on_progress(done: int, total: int) -> None:
            if not bars:
                bars.append(ProgressBar(total, "verifying", unit="bytes"))
            bars[0].update(done)

        try:
            job = job_run.verify(handle, box, trust, ledger, args.material, on_progress=on_progress)
            terms = job.license
        except SealedJobError as exc:
            return _refuse(exc)
        finally:
            for bar in bars:
                bar.close()
        lines = job.source_lines
        print(
            "verified %r: designer %s, %d lines, print %d of %s on this box"
            % (
                terms.title,
                job.vouched_by,
                lines,
                ledger.prints_done(terms.license_id) + 1,
                terms.max_prints or "unlimited",
            ),
            file=sys.stderr,
        )
        connection = printer_options.connect(args, stack, PROGRAM)
        if connection is None:
            return 3
        print("printer: %s" % printer_options.describe(connection), file=sys.stderr)
        try:
            print_number = job_run.record(job, box, ledger, connection.firmware, args.material)
        except SealedJobError as exc:
            return _refuse(exc)
        print("recorded print %d of license %s" % (print_number, terms.license_id), file=sys.stderr)
        commands = opener.stream_commands(job, handle, box.box_id, print_number)
        # If the file changes on disk mid-print, the stream pass fails authentication and the link cancels.
        report = printer_options.stream_with_progress(connection, commands, lines, by_source_line=True)
    return printer_options.report_outcome(report, None, show_sent_lines=False)
