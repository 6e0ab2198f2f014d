"""The printer's owner: a thread that finds the printer, takes queued jobs one at a time, verifies, records and
streams them, and writes their progress to the store. Blocking serial I/O stays off the daemon's event loop."""

import glob
import logging
import os
import threading
import time

from box import data_dir
from box.jobs import job_states
from box.jobs.store import Store
from box.printing import job_run
from box.printing.live_status import LiveStatus
from firmware_bridge import marlin, streamer
from firmware_bridge.serial_transport import COMMON_BAUD_RATES, PrinterPortError
from provisioning import identity
from secure_print import opener
from secure_print.errors import SealedJobError
from secure_print.ledger import PrintLedger
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


class PrintWorker:
    def __init__(self, root: str, settings, stop: threading.Event) -> None:
        self.root = root
        self.settings = settings
        self.stop = stop
        self.printer = None  # what M115 said, while connected
        self.printing = False
        self.live = LiveStatus()
        self.thread = threading.Thread(target=self._run, name="printer", daemon=True)

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

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    # -- the thread ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        store = Store(os.path.join(self.root, "box.sqlite"))
        ledger = PrintLedger(data_dir.ledger_file(self.root))
        box = identity.load_or_create(self.root)
        connection = None
        try:
            while not self.stop.is_set():
                if connection is None:
                    connection = self._connect()
                    if connection is None:
                        self.stop.wait(RECONNECT_SECONDS)
                        continue
                row = store.next_queued()
                if row is None:
                    if not streamer.keep_alive(connection, POLL_SECONDS, on_event=self._on_idle_event):
                        log.warning("printer on %s is gone or halted: %s", self.printer.get("port"),
                                    connection.link.failure or "halted")  # fmt: skip
                        connection.close()
                        connection = None
                        self.printer = None
                    continue
                if not self._print(store, ledger, box, connection, row):
                    connection.close()
                    connection = None
                    self.printer = None
        finally:
            if connection is not None:
                connection.close()
            ledger.close()
            store.close()

    def _on_idle_event(self, event) -> None:
        if isinstance(event, marlin.Temperatures):
            self.live.add_temperatures(event.readings, time.monotonic())

    def _ports(self) -> list:
        port = self.settings.get("printer", "port")
        if port != "auto":
            return [port]
        return sorted(path for pattern in self.settings.get("printer", "scan") for path in glob.glob(pattern))

    def _connect(self):
        baud = self.settings.get("printer", "baud")
        for port in self._ports():
            try:
                connection = streamer.connect(port, (baud,) if baud else COMMON_BAUD_RATES)
            except (PrinterPortError, streamer.NotAPrinterError) as exc:
                log.info("no printer on %s: %s", port, exc)
                continue
            self.printer = dict(connection.firmware, port=port, baud=connection.transport.baud)
            log.info("printer on %s at %d baud: %s", port, connection.transport.baud,
                     connection.firmware.get("MACHINE_TYPE", "unknown"))  # fmt: skip
            return connection
        return None

    def _print(self, store: Store, ledger: PrintLedger, box, connection, row) -> bool:
        """Print one queued job to its end. Returns False when the printer went away."""
        number = row["id"]
        material = store.get_setting("printer.material") or self.settings.get("printer", "material") or None
        store.move(number, job_states.VERIFYING)
        try:
            trust = TrustStore(data_dir.trust_file(self.root))  # read anew: `mipai-box trust` may have changed it
            with open(row["spool_path"], "rb") as handle:
                job = job_run.verify(handle, box, trust, ledger, material)
                if store.take_request(number) == "cancel":
                    store.move(number, job_states.CANCELLED, "cancelled before printing; nothing was sent")
                    return True
                print_number = job_run.record(job, box, ledger, connection.firmware, material)
                store.move(number, job_states.PRINTING, print_number=print_number, source_lines=job.source_lines)
                self.printing = True
                try:
                    commands = opener.stream_commands(job, handle, box.box_id, print_number)
                    report = self._stream(store, number, connection, commands, job.source_lines)
                finally:
                    self.printing = False
                    self.live.job_finished()
        except (SealedJobError, TrustStoreError, OSError) as exc:
            store.move(number, job_states.FAILED, "refused: %s; nothing was sent to the printer" % exc)
            return True
        store.record_progress(number, report.lines_acknowledged, report.last_source_line)
        current = store.job(number)["state"]
        outcome = _OUTCOMES[report.outcome]
        if current == job_states.PAUSED and outcome == job_states.DONE:
            store.move(number, job_states.PRINTING)
        store.move(number, outcome, report.reason)
        return report.outcome != marlin.INTERRUPTED

    def _stream(self, store: Store, number: int, connection, commands, source_lines: int) -> streamer.StreamReport:
        controls = streamer.Controls()
        stopping = []
        started = time.monotonic()

        def on_event(event) -> None:
            if isinstance(event, marlin.Temperatures):
                self.live.add_temperatures(event.readings, time.monotonic())

        def on_progress(progress: marlin.Progress, source_line: int) -> None:
            store.record_progress(number, progress.lines_acknowledged, source_line)
            self.live.update_job(number, progress.layer, progress.z, source_line, source_lines, started,
                                 time.monotonic())  # fmt: skip
            if self.stop.is_set() and not stopping:
                stopping.append(True)
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

        return streamer.stream(
            connection,
            commands,
            on_progress=on_progress,
            on_event=on_event,
            controls=controls,
            progress_interval=PROGRESS_SECONDS,
        )
