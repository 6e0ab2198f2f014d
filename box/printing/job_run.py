"""The one sequence for printing a sealed job, shared by `mipai-box print` and the daemon's printer owner:
verify completely, then (printer connected) check the printer and record the print, then stream the stream
pass. Callers differ only in what they do at each step, which they say through `JobRunHooks`."""

import re
import time

from firmware_bridge import attestation, marlin, streamer
from firmware_bridge.errors import FirmwareBridgeError
from secure_print import opener
from secure_print.license import PRINTER_FIELDS
from wire import canonical, envelope

USAGE_RECORD = "print.usage"
# Firmware quotes the command it complains about ("Unknown command: "..."): not for a sealed job's report.
_QUOTED = re.compile(r'"[^"]*"')
FAILURE_REPORT_LINES = 12


class JobRunHooks:
    """What a caller does at each step of a job run; every method may be left as it is."""

    def verifying(self, done: int, total: int) -> None:
        """`done` of `total` bytes of G-code checked by the verify pass."""

    def verified(self, job: opener.OpenedJob) -> bool:
        """The whole job checked out; return False to stop here (nothing is recorded or sent)."""
        return True

    def printing(self, job: opener.OpenedJob, print_number: int) -> None:
        """The print is recorded; its lines go to the printer next."""

    def progress(self, progress: marlin.Progress, source_line: int, controls: streamer.Controls) -> None:
        """Called every `progress_interval` seconds while streaming; may request pause, resume or cancel."""

    def event(self, event: marlin.Event) -> None:
        """An event of the link while streaming (temperatures, messages)."""

    def challenge(self) -> tuple:
        """(16 bytes, origin) for the next attestation request of an edge bridge: the verifier's challenge
        ("verifier"), or by default one of the box's own ("box")."""
        return attestation.new_challenge(), "box"


class JobRun:
    """How one run went: `stage` is where it stopped (declined, no printer, or streamed)."""

    DECLINED = "declined"  # `verified` returned False
    NO_PRINTER = "no printer"  # `connect` gave nothing
    STREAMED = "streamed"  # the job reached the printer; `report` says how it ended

    def __init__(self, job: opener.OpenedJob, stage: str) -> None:
        self.job = job
        self.stage = stage
        self.print_number = None
        self.firmware = {}
        self.report = None
        self.started_at = None  # wall-clock seconds of the first line and of the end
        self.ended_at = None
        self.attestation = None  # the receipt's `attestation` member; None for a printer without a bridge


def run_sealed_job(
    handle, box, trust, ledger, material, connect, hooks=None, controls=None, progress_interval: float = 0.5, now=None
) -> JobRun:
    """Verify the sealed job in `handle`, then get a printer from `connect()` (a PrinterConnection or None),
    record the print and stream it. Raises SealedJobError when the job is refused; nothing is sent then."""
    hooks = hooks or JobRunHooks()
    controls = controls or streamer.Controls()
    job = verify(handle, box, trust, ledger, material, hooks.verifying, now)
    if not hooks.verified(job):
        return JobRun(job, JobRun.DECLINED)
    connection = connect()
    if connection is None:
        return JobRun(job, JobRun.NO_PRINTER)
    run = JobRun(job, JobRun.STREAMED)
    run.firmware = dict(connection.firmware)
    run.print_number = record(job, box, ledger, connection.firmware, material)
    hooks.printing(job, run.print_number)
    commands = opener.stream_commands(job, handle, box.box_id, run.print_number)
    start = fetch_attestation(connection, hooks)
    run.started_at = time.time()
    # If the file changes on disk mid-print, the stream pass fails authentication and the link cancels.
    run.report = streamer.stream(
        connection,
        commands,
        on_progress=lambda progress, source_line: hooks.progress(progress, source_line, controls),
        on_event=hooks.event,
        controls=controls,
        progress_interval=progress_interval,
    )
    run.ended_at = time.time()
    if start is not None:  # behind a bridge; one that failed at the start is not asked again
        end = start if isinstance(start, Exception) else fetch_attestation(connection, hooks)
        run.attestation = attestation_record(start, end, run.report)
    return run


def fetch_attestation(connection: streamer.PrinterConnection, hooks: JobRunHooks):
    """(Attestation, challenge origin) from the edge bridge in front of the printer; None for a printer without
    one (it prints exactly as before); the AttestationError when the bridge gave none."""
    if not attestation.is_bridge(connection.capabilities):
        return None
    challenge, origin = hooks.challenge()
    try:
        return attestation.fetch(connection, challenge, on_event=hooks.event), origin
    except attestation.AttestationError as exc:
        return exc
    except (FirmwareBridgeError, OSError) as exc:  # the port went away after the job
        return attestation.BridgeUnavailable("the bridge could not be asked: %s" % exc)


def attestation_record(start, end, report: streamer.StreamReport) -> dict:
    """The receipt's `attestation` member (docs/topics.md): both reply lines, where their challenges came from
    and the commands the box's link saw confirmed; or {"error"} when the bridge gave no attestation."""
    for part in (start, end):
        if isinstance(part, Exception):
            return {"error": ("%s: %s" % (type(part).__name__, part))[:300]}
    (first, first_origin), (last, last_origin) = start, end
    origin = "verifier" if first_origin == last_origin == "verifier" else "box"
    return dict(attestation.as_record(first, last), challenge_from=origin, commands=report.lines_acknowledged)


def verify(handle, box, trust, ledger, material, on_progress=None, now=None) -> opener.OpenedJob:
    """Every check that needs no printer; raises SealedJobError. `on_progress(bytes, total)` as G-code is checked."""
    job = opener.open_job(handle, box.sealing, box.box_id, trust, now or time.time(), {box.signing_public})
    job.license.check_material(material)
    job.license.check_prints_left(ledger.prints_done(job.license.license_id))
    total = job.header.gcode_length
    report = None if on_progress is None else (lambda done: on_progress(done, total))
    opener.verify_payload(job, handle, on_progress=report)
    return job


def record(job: opener.OpenedJob, box, ledger, firmware: dict, material) -> int:
    """Check the connected printer against the license, then take the next print number with a signed usage
    record in one transaction. Returns the print number; raises SealedJobError (LicenseError)."""
    terms = job.license
    terms.check_printer(firmware)
    printer = {field: firmware.get(field, "") for field in PRINTER_FIELDS}

    def usage_record(print_number: int, sequence: int) -> str:
        body = {
            "box_id": box.box_id,
            "designer": terms.designer,
            "job_id": job.job_id,
            "license_id": terms.license_id,
            "material": (material or "").upper(),
            "print_number": print_number,
            "printer": printer,
        }
        signed = envelope.sign(USAGE_RECORD, body, box.signing, box.box_id, int(time.time()), sequence)
        return canonical.encode(signed).decode()

    return ledger.record_print(terms.license_id, job.job_id, terms.max_prints, usage_record)


def describe_attestation(record: dict) -> str:
    """One line for a person about a run's `attestation` member."""
    if "error" in record:
        return "no attestation: %s" % record["error"]
    return "bridge %s attested %d commands at start and end (challenges: %s)" % (
        record["bridge_id"],
        record["commands"],
        "the verifier's" if record["challenge_from"] == "verifier" else "the box's own",
    )


def failure_report(report: streamer.StreamReport, sealed: bool = True) -> list:
    """The printer's last complaints and the serial exchanges before a job ended badly, as lines for a person.

    For a sealed job the lines sent are left out and quoted commands masked: its G-code must not reach a
    terminal, a log, a page or the fleet."""
    lines = []
    for message in list(report.messages)[-5:]:
        lines.append("printer said: %s" % (_QUOTED.sub('"(a line of the job)"', message) if sealed else message))
    recent = [line for line in report.recent_io if not (sealed and line.startswith(">"))]
    if recent:
        lines.append("last lines on the serial port (%s):" % ("received" if sealed else "> sent, < received"))
        lines.extend("  " + (_QUOTED.sub('"(a line of the job)"', line) if sealed else line)
                     for line in recent[-FAILURE_REPORT_LINES:])  # fmt: skip
    return lines
