"""The printer's owner: a thread that finds the printer, takes queued jobs one at a time and runs each through
the one job-run sequence (`box.printing.job_run`), writing their progress to the store through its owner.
Blocking serial I/O stays off the daemon's event loop; the printer's state is published on the change feed."""

import glob
import json
import logging
import queue
import threading
import time

from box import change_feed, data_dir
from box.errors import WrongStateError
from box.jobs import job_states, spool
from box.printing import challenges, job_run
from box.printing.live_status import LiveStatus
from firmware_bridge import marlin, streamer
from firmware_bridge.errors import LocalProtocolError, PrinterUnavailable
from provisioning import identity
from secure_print.errors import SealedJobError
from secure_print.trust import TrustStore, TrustStoreError

log = logging.getLogger("mipai.printer")

_OUTCOMES = {
    marlin.DONE: job_states.DONE,
    marlin.CANCELLED: job_states.CANCELLED,
    marlin.FAILED: job_states.FAILED,
    marlin.INTERRUPTED: job_states.INTERRUPTED,
}
RECONNECT_SECONDS = 5.0
POLL_SECONDS = 1.0
PROGRESS_SECONDS = 0.5
MANUAL_BATCHES = 8  # manual controls waiting to be sent; more is refused
CONSOLE_ANSWER_SECONDS = 5.0  # how long after a manual control the printer's messages count as its answer


class ManualControlRefused(WrongStateError):
    """A manual control came while the printer cannot take it (a job runs, no printer): nothing was sent."""


class PrinterOwner:
    def __init__(self, root: str, printer_settings, stop: threading.Event, owner) -> None:
        self.root = root
        self.settings = printer_settings
        self.stop = stop
        self._store = owner.blocking_store
        self._ledger = owner.blocking_ledger
        self._feed = owner.feed
        self._lock = threading.Lock()
        self._printer = None  # what M115 said, with port and baud, while connected
        self._printing = False
        self._jobs_taken = 0  # counts the jobs the thread took; a manual control queued before a job is dropped
        self._job_number = None  # the job the thread is busy with (verifying, printing or paused)
        self._manual = queue.Queue(MANUAL_BATCHES)
        self._console_until = 0.0  # the printer's messages are shown on the console until then
        self.live = LiveStatus()
        self.challenges = None  # the verifier's attestation challenges (challenges.sqlite), opened by the thread
        self.thread = threading.Thread(target=self._run, name="printer", daemon=True)

    @property
    def printer(self):
        """What the connected printer said of itself (a copy), or None."""
        with self._lock:
            return dict(self._printer) if self._printer is not None else None

    @property
    def printing(self) -> bool:
        with self._lock:
            return self._printing

    def publish_state(self, printer="unchanged", printing=None) -> None:
        """Record and publish the printer (what M115 said, or None) and whether it prints (the owner thread)."""
        with self._lock:
            if printer != "unchanged":
                self._printer = printer
            if printing is not None:
                self._printing = printing
            state = {"printer": dict(self._printer) if self._printer else None, "printing": self._printing}
        self._feed.publish(change_feed.PRINTER, state)

    def describe_printer(self) -> str:
        printer = self.printer
        if printer is None:
            return "No printer connected (looking for one)."
        return "%s, %s, on %s at %d baud" % (
            printer.get("MACHINE_TYPE", "unknown machine"),
            printer.get("FIRMWARE_NAME", "unknown firmware"),
            printer["port"],
            printer["baud"],
        )

    def submit_manual(self, description: str, commands: list) -> None:
        """Queue one manual control's commands (box.printing.manual_controls) for the idle printer. Raises
        ManualControlRefused while a job is being verified, printed or paused, or with no printer; the printer
        thread sends them between jobs, never into a job."""
        with self._lock:
            if self._job_number is not None:
                raise ManualControlRefused("job %d is running: manual controls wait until it has ended"
                                           % self._job_number)  # fmt: skip
            if self._printer is None:
                raise ManualControlRefused("no printer is connected")
            taken = self._jobs_taken
        try:
            self._manual.put_nowait((taken, description, list(commands)))
        except queue.Full:
            raise ManualControlRefused("%d manual controls are still waiting to be sent" % MANUAL_BATCHES) from None

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        box = identity.load_or_create(self.root)
        self.challenges = challenges.ChallengeStore(challenges.challenges_file(self.root))
        connection = None
        try:
            while not self.stop.is_set():
                if connection is None:
                    connection = self._connect()
                    if connection is None:
                        self.stop.wait(RECONNECT_SECONDS)
                        continue
                self._send_manual(connection)
                row = self._store.next_queued()
                if row is None:
                    if not streamer.keep_alive(connection, POLL_SECONDS, on_event=self._on_idle_event):
                        log.warning("printer on %s is gone or halted: %s", self.printer.get("port"),
                                    connection.link.failure or "halted")  # fmt: skip
                        connection.close()
                        connection = None
                        self.publish_state(printer=None)
                    continue
                if not self._print(box, connection, row):
                    connection.close()
                    connection = None
                    self.publish_state(printer=None)
        finally:
            if connection is not None:
                connection.close()
            self.challenges.close()

    def _on_idle_event(self, event) -> None:
        if isinstance(event, marlin.Temperatures):
            self.live.add_temperatures(event.readings, time.monotonic())
        elif isinstance(event, marlin.PrinterMessage) and time.monotonic() < self._console_until:
            # Only the answers to a manual control: a late echo of a sealed job's line never reaches the page.
            self.live.add_console("< " + event.text, time.time())

    def _send_manual(self, connection) -> None:
        """Hand one waiting manual control to the link (the idle keep-alive sends it); a control that waited
        across a job is dropped, so nothing typed before a job reaches the printer after it started."""
        try:
            taken, description, commands = self._manual.get_nowait()
        except queue.Empty:
            return
        with self._lock:
            stale = taken != self._jobs_taken
        if stale:
            self._store.log("control", "not sent, a job started first: %s" % description)
            return
        for command in commands:
            try:
                connection.link.send_command(command)
            except LocalProtocolError as exc:
                self._store.log("control", "not sent: %s (%s)" % (description, exc))
                return
            self.live.add_console("> " + command, time.time())
        self._console_until = time.monotonic() + CONSOLE_ANSWER_SECONDS

    def _ports(self) -> list:
        if self.settings.port != "auto":
            return [self.settings.port]
        return sorted(path for pattern in self.settings.scan for path in glob.glob(pattern))

    def _connect(self):
        baud = self.settings.baud
        for port in self._ports():
            try:
                connection = streamer.connect(port, (baud,) if baud else streamer.COMMON_BAUD_RATES)
            except PrinterUnavailable as exc:
                log.info("no printer on %s: %s", port, exc)
                continue
            self.publish_state(printer=dict(connection.firmware, port=port, baud=connection.transport.baud))
            log.info("printer on %s at %d baud: %s", port, connection.transport.baud,
                     connection.firmware.get("MACHINE_TYPE", "unknown"))  # fmt: skip
            return connection
        return None

    def _print(self, box, connection, row) -> bool:
        """Print one queued job to its end. Returns False when the printer went away."""
        number = row["id"]
        with self._lock:
            self._jobs_taken += 1
            self._job_number = number
        try:
            return self._print_taken(box, connection, row)
        finally:
            with self._lock:
                self._job_number = None

    def _print_taken(self, box, connection, row) -> bool:
        number = row["id"]
        material = self._store.get_setting("printer.material") or self.settings.material or None
        self._store.move(number, job_states.VERIFYING)
        hooks = _DaemonRun(self, number, row["spool_path"], material)
        try:
            trust = TrustStore(data_dir.trust_file(self.root))  # read anew: `mipai-box trust` may have changed it
            with open(row["spool_path"], "rb") as handle:
                run = job_run.run_sealed_job(handle, box, trust, self._ledger, material, lambda: connection, hooks,
                                             progress_interval=PROGRESS_SECONDS)  # fmt: skip
        except (SealedJobError, TrustStoreError, OSError) as exc:
            self._store.move(number, job_states.FAILED, "refused: %s; nothing was sent to the printer" % exc)
            return True
        finally:
            if hooks.started:
                self.publish_state(printing=False)
                self.live.job_finished()
        if run.stage == job_run.JobRun.DECLINED:
            self._store.move(number, job_states.CANCELLED, "cancelled before printing; nothing was sent")
            return True
        report = run.report
        self._store.record_progress(number, report.lines_acknowledged, report.last_source_line)
        current = self._store.job(number)["state"]
        outcome = _OUTCOMES[report.outcome]
        if current == job_states.PAUSED and outcome == job_states.DONE:
            self._store.move(number, job_states.PRINTING)
        failure = job_run.failure_report(report, sealed=True) if outcome != job_states.DONE else []
        facts = dict(hooks.facts, ended=max(int(run.ended_at), hooks.facts["started"]), lines=report.last_source_line,
                     filament_mm=max(0, int(report.filament_mm)))  # fmt: skip
        if run.attestation is not None:
            facts["attestation"] = run.attestation
            if "error" in run.attestation:
                self._store.log("job", "job %d: the edge bridge gave no attestation: %s"
                                % (number, run.attestation["error"]))  # fmt: skip
        self._store.move(number, outcome, report.reason, report=json.dumps(failure) if failure else "",
                         facts=json.dumps(facts, sort_keys=True))  # fmt: skip
        return report.outcome != marlin.INTERRUPTED


class _DaemonRun(job_run.JobRunHooks):
    """The job run as the daemon carries it out: states and progress in the store, requests from the store
    (the dashboard, the fleet, `mipai-box queue`), temperatures and layers on the live status."""

    def __init__(self, owner: PrinterOwner, number: int, spool_path: str, material) -> None:
        self.owner = owner
        self.number = number
        self.spool_path = spool_path
        self.material = (material or "").upper()
        self.facts = {}  # what the print's receipt will say (box.jobs.store.print_facts), from its start
        self.started = False
        self.started_at = 0.0
        self.source_lines = 0
        self.stopping = False

    def verified(self, job) -> bool:
        return self.owner._store.take_request(self.number) != "cancel"

    def printing(self, job, print_number: int) -> None:
        self.source_lines = job.source_lines
        firmware = self.owner.printer or {}
        self.facts = {
            "license_id": job.license.license_id,
            "sealed_sha256": spool.sealed_sha256(self.spool_path),
            "print_number": print_number,
            "started": int(time.time()),
            "printer": {field: str(firmware.get(field, ""))[:200] for field in ("FIRMWARE_NAME", "MACHINE_TYPE")},
            "material": self.material,
            "lines": 0,
            "filament_mm": 0,
        }
        self.owner._store.move(self.number, job_states.PRINTING, print_number=print_number,
                               source_lines=job.source_lines, facts=json.dumps(self.facts, sort_keys=True))  # fmt: skip
        self.started = True
        self.started_at = time.monotonic()
        self.owner.publish_state(printing=True)

    def event(self, event) -> None:
        if isinstance(event, marlin.Temperatures):
            self.owner.live.add_temperatures(event.readings, time.monotonic())

    def challenge(self) -> tuple:
        challenge, origin = self.owner.challenges.take(self.number, time.time())
        if origin == challenges.FROM_BOX:
            self.owner._store.log("job", "job %d: no attestation challenge from the verifier left; the edge bridge "
                                  "attests against the box's own (weighed lower)" % self.number)  # fmt: skip
        return challenge, origin

    def progress(self, progress, source_line: int, controls) -> None:
        store, number = self.owner._store, self.number
        store.record_progress(number, progress.lines_acknowledged, source_line)
        self.owner.live.update_job(number, progress.layer, progress.z, source_line, self.source_lines,
                                   self.started_at, time.monotonic())  # fmt: skip
        if self.owner.stop.is_set() and not self.stopping:
            self.stopping = True
            store.log("job", "job %d: the box is stopping; cancelling the print safely" % number)
            action = "cancel"
        else:
            action = store.take_request(number)
        if action in ("pause", "resume", "cancel") and controls.pending is None:
            controls.request(action)
            state = store.job(number)["state"]
            if action == "pause" and state == job_states.PRINTING:
                store.move(number, job_states.PAUSED)
            elif action == "resume" and state == job_states.PAUSED:
                store.move(number, job_states.PRINTING)
