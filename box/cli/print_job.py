"""`mipai-box print JOB.mipjob`: verify a sealed job completely, record the print, then stream it watermarked."""

import contextlib
import sys

from box import data_dir
from box.cli import printer_options
from box.printing import job_run
from console.progress_bar import ProgressBar
from firmware_bridge import streamer
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


class _TerminalRun(job_run.JobRunHooks):
    """The job run as the terminal shows it: a verify bar, what was verified and recorded, a print bar."""

    def __init__(self, ledger: PrintLedger, terminal: printer_options.TerminalProgress) -> None:
        self.ledger = ledger
        self.verify_bar = None
        self.terminal = terminal

    def verifying(self, done: int, total: int) -> None:
        if self.verify_bar is None:
            self.verify_bar = ProgressBar(total, "verifying", unit="bytes")
        self.verify_bar.update(done)

    def close_verify_bar(self) -> None:
        if self.verify_bar is not None:
            self.verify_bar.close()
            self.verify_bar = None

    def verified(self, job: opener.OpenedJob) -> bool:
        self.close_verify_bar()
        terms = job.license
        print("verified %r: designer %s, %d lines, print %d of %s on this box"
              % (terms.title, job.vouched_by, job.source_lines, self.ledger.prints_done(terms.license_id) + 1,
                 terms.max_prints or "unlimited"), file=sys.stderr)  # fmt: skip
        return True

    def printing(self, job: opener.OpenedJob, print_number: int) -> None:
        print("recorded print %d of license %s" % (print_number, job.license.license_id), file=sys.stderr)
        self.terminal.start(job.source_lines)

    def progress(self, progress, source_line: int, _controls) -> None:
        self.terminal.on_progress(progress, source_line)

    def event(self, event) -> None:
        self.terminal.on_event(event)


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

        def connect():
            connection = printer_options.connect(args, stack, PROGRAM)
            if connection is not None:
                print("printer: %s" % printer_options.describe(connection), file=sys.stderr)
            return connection

        controls = streamer.Controls()
        try:
            with printer_options.TerminalProgress(controls, by_source_line=True) as terminal:
                hooks = _TerminalRun(ledger, terminal)
                try:
                    outcome = job_run.run_sealed_job(
                        handle, box, trust, ledger, args.material, connect, hooks, controls, progress_interval=0.25
                    )
                finally:
                    hooks.close_verify_bar()
        except SealedJobError as exc:
            return _refuse(exc)
    if outcome.stage == job_run.JobRun.NO_PRINTER:
        return 3
    if outcome.attestation is not None:
        print("edge bridge: %s" % job_run.describe_attestation(outcome.attestation), file=sys.stderr)
    return printer_options.report_outcome(outcome.report, None, sealed=True)
