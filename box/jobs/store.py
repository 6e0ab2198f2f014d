"""The box's SQLite store (WAL): the job queue with its states, and the event log.

One Store per process; the daemon gives it a single owner thread. Print counters live in `prints.sqlite`
(secure_print.ledger), which the verify-then-record step owns.
"""

import contextlib
import json
import os
import time

from box.errors import BadInputError
from box.jobs import job_states, sqlite_tables

MAX_EVENTS = 10_000  # the event log is trimmed to this many rows
MAX_REPORT_LINE = 200
# The highest job number ever deleted from the history: numbers are never given twice, so an event, a receipt
# or an owner's note about job N always means the same job.
HIGHEST_DELETED = "jobs.highest_deleted"


def print_facts(row) -> dict:
    """What the printer owner stored of a print that reached the printer (the receipt's facts), or {}."""
    try:
        facts = json.loads(row.get("facts") or "{}")
    except ValueError:
        return {}
    return facts if isinstance(facts, dict) else {}


def failure_report(row) -> list:
    """The stored failure report of a job row: the printer's last words and the serial exchanges before the job
    ended badly, already redacted of the job's G-code (`box.printing.job_run.failure_report`)."""
    try:
        lines = json.loads(row.get("report") or "[]")
    except ValueError:
        return []
    return [str(line)[:MAX_REPORT_LINE] for line in lines] if isinstance(lines, list) else []


class UnknownJob(BadInputError):
    """No job has that number."""


class Store:
    def __init__(self, path: str, clock=time.time) -> None:
        self.db = sqlite_tables.Database(path)
        self.db.enable_wal()
        self.db.execute("PRAGMA synchronous=FULL")
        self._clock = clock
        if "jobs" not in self.db.table_names():
            self.db["jobs"].create(
                {
                    "id": int,
                    "job_id": str,
                    "title": str,
                    "spool_path": str,
                    "state": str,
                    "reason": str,
                    "request": str,
                    "print_number": int,
                    "source_lines": int,
                    "lines_acknowledged": int,
                    "last_source_line": int,
                    "created_at": float,
                    "updated_at": float,
                },
                pk="id",
                not_null={"job_id", "spool_path", "state"},
            )
            self.db["jobs"].create_index(["state"])
        if "report" not in self.db["jobs"].columns_dict:  # added with failure reports; older boxes lack it
            self.db["jobs"].add_column("report", str)
        for column in ("facts", "receipt"):  # added with print receipts (print_facts, set_receipt)
            if column not in self.db["jobs"].columns_dict:
                self.db["jobs"].add_column(column, str)
        if "rewards" not in self.db.table_names():
            self.db["rewards"].create({"key_id": str, "seq": int, "at": float, "report": str}, pk="key_id")
        if "settings" not in self.db.table_names():
            self.db["settings"].create({"key": str, "value": str}, pk="key")
        if "events" not in self.db.table_names():
            self.db["events"].create({"id": int, "at": float, "kind": str, "message": str}, pk="id")

    def close(self) -> None:
        self.db.close()

    # -- jobs ------------------------------------------------------------------------------------------------

    def add_job(self, job_id: str, title: str, spool_path: str, held: bool = False) -> int:
        """Queue a spooled job, or keep it `held` (a slicer's plain upload) until the owner starts it."""
        now = self._clock()
        state = job_states.HELD if held else job_states.QUEUED
        with self.db.conn:
            newest = self.db.execute("SELECT MAX(id) FROM jobs").fetchone()[0] or 0
            row = self.db["jobs"].insert(
                {
                    "id": max(newest, self.get_setting(HIGHEST_DELETED, 0)) + 1,
                    "job_id": job_id,
                    "title": title,
                    "spool_path": spool_path,
                    "state": state,
                    "reason": "",
                    "request": "",
                    "lines_acknowledged": 0,
                    "last_source_line": 0,
                    "created_at": now,
                    "updated_at": now,
                }
            )
        kept = "held %r until the owner starts it" if held else "queued %r"
        self.log("job", (kept + " (job %s)") % (title, job_id))
        return row.last_pk

    def job(self, number: int) -> dict:
        try:
            return self.db["jobs"].get(number)
        except sqlite_tables.NotFoundError:
            raise UnknownJob("there is no job %d" % number) from None

    def jobs(self, states=None) -> list:
        if states is None:
            return list(self.db["jobs"].rows_where(order_by="id"))
        marks = ",".join("?" for _ in states)
        return list(self.db["jobs"].rows_where("state in (%s)" % marks, list(states), order_by="id"))

    def next_queued(self):
        return next(iter(self.db["jobs"].rows_where("state = ?", [job_states.QUEUED], order_by="id", limit=1)), None)

    def move(self, number: int, wanted: str, reason: str = "", **fields) -> dict:
        """Apply one transition of the job state table, with its reason and any progress fields, atomically."""
        with self.db.conn:
            current = self.db["jobs"].get(number)["state"]
            job_states.check(current, wanted)
            self.db["jobs"].update(number, dict(fields, state=wanted, reason=reason, updated_at=self._clock()))
        self.log("job", "job %d: %s -> %s%s" % (number, current, wanted, ": " + reason if reason else ""))
        return self.job(number)

    def record_progress(self, number: int, lines_acknowledged: int, last_source_line: int) -> None:
        with self.db.conn:
            self.db["jobs"].update(
                number,
                {
                    "lines_acknowledged": lines_acknowledged,
                    "last_source_line": last_source_line,
                    "updated_at": self._clock(),
                },
            )

    def request(self, number: int, action: str) -> str:
        """Ask for start, pause, resume or cancel. A held job is started (queued) or cancelled at once, and so is
        a queued job cancelled; a job being verified or printed gets the request, which the printer's owner
        carries out. Returns what happened, for the user."""
        with self.db.conn:
            row = self.job(number)
            if action == "cancel" and row["state"] in (job_states.QUEUED, job_states.HELD):
                job_states.check(row["state"], job_states.CANCELLED)
                self.db["jobs"].update(number, {"state": job_states.CANCELLED, "reason": "cancelled before it started"})
                outcome = "cancelled"
            elif action == "start" and row["state"] == job_states.HELD:
                job_states.check(row["state"], job_states.QUEUED)
                self.db["jobs"].update(number, {"state": job_states.QUEUED, "updated_at": self._clock()})
                outcome = "queued to print"
            elif action != "start" and row["state"] in (job_states.VERIFYING, job_states.PRINTING, job_states.PAUSED):
                self.db["jobs"].update(number, {"request": action})
                outcome = "%s requested" % action
            else:
                raise job_states.IllegalTransition("job %d is %s: nothing to %s" % (number, row["state"], action))
        self.log("job", "job %d: %s" % (number, outcome))
        return outcome

    def take_request(self, number: int) -> str:
        """The pending request of a job ("" when none), cleared as it is read."""
        with self.db.conn:
            action = self.db["jobs"].get(number)["request"] or ""
            if action:
                self.db["jobs"].update(number, {"request": ""})
        return action

    def finished_job(self, number: int) -> dict:
        """The row of a finished job; raises UnknownJob or IllegalTransition (it has not finished)."""
        row = self.job(number)
        if row["state"] not in job_states.FINISHED:
            raise job_states.IllegalTransition("job %d is %s: only a finished job can be" % (number, row["state"]))
        return row

    def print_again(self, number: int) -> int:
        """Queue a finished job's sealed file once more, as a new job; the license is checked when it runs."""
        row = self.finished_job(number)
        again = self.add_job(row["job_id"], row["title"], row["spool_path"])
        self.log("job", "job %d queued again as job %d" % (number, again))
        return again

    def delete_job(self, number: int) -> dict:
        """Remove a finished job from the history; its sealed file goes too when no other job uses it."""
        row = self.finished_job(number)
        with self.db.conn:
            self.db["jobs"].delete(number)
            highest = max(number, self.get_setting(HIGHEST_DELETED, 0))
            self.db["settings"].upsert({"key": HIGHEST_DELETED, "value": json.dumps(highest)}, pk="key")
        self.forget_unqueued(row["spool_path"])
        self.log("job", "job %d (%r) deleted from the history" % (number, row["title"]))
        return row

    def forget_unqueued(self, spool_path: str) -> None:
        """Delete a spooled job file that no job refers to (an upload that was not queued)."""
        if not any(True for _ in self.db["jobs"].rows_where("spool_path = ?", [spool_path])):
            with contextlib.suppress(FileNotFoundError):
                os.unlink(spool_path)

    def recover(self) -> list:
        """On start: every job a crash or power cut left unfinished becomes `interrupted`, never restarted."""
        recovered = []
        for row in self.jobs(job_states.UNFINISHED_AT_START):
            if row["state"] == job_states.VERIFYING:
                reason = "the box stopped while verifying the job; nothing had been sent to the printer"
            else:
                reason = (
                    "the box stopped while printing (crash or power cut) after source line %d"
                    % (row["last_source_line"])
                )
            facts = print_facts(row)
            fields = {}
            if facts:  # the print reached the printer: its receipt says it ended now, at the last confirmed line
                ended = max(int(self._clock()), facts.get("started", 0))
                facts.update(ended=ended, lines=row["last_source_line"] or 0)
                fields["facts"] = json.dumps(facts, sort_keys=True)
            recovered.append(self.move(row["id"], job_states.INTERRUPTED, reason, **fields))
        return recovered

    def set_receipt(self, number: int, sequence: int, digest: str) -> None:
        """Note on the job the number and hash of the receipt the fleet agent signed for its print."""
        with self.db.conn:
            self.db["jobs"].update(number, {"receipt": json.dumps({"seq": sequence, "hash": digest})})

    # -- what the network reports back (rewards) --------------------------------------------------------------

    def save_rewards(self, key_id: str, sequence: int, report: dict) -> bool:
        """Keep a trusted verifier's checked rewards report unless a newer one (higher number) is stored."""
        with self.db.conn:
            rows = list(self.db["rewards"].rows_where("key_id = ?", [key_id]))
            if rows and rows[0]["seq"] >= sequence:
                return False
            record = {"key_id": key_id, "seq": sequence, "at": self._clock(), "report": json.dumps(report)}
            self.db["rewards"].upsert(record, pk="key_id")
        return True

    def rewards(self) -> list:
        """The latest rewards report of each trusted verifier: dicts with key_id, seq, at and report."""
        rows = self.db["rewards"].rows_where(order_by="at desc")
        return [dict(row, report=json.loads(row["report"])) for row in rows]

    # -- settings chosen at run time (setup wizard, dashboard); the TOML file gives the defaults -----------------

    def get_setting(self, key: str, default=None):
        rows = list(self.db["settings"].rows_where("key = ?", [key]))
        return json.loads(rows[0]["value"]) if rows else default

    def set_setting(self, key: str, value) -> None:
        with self.db.conn:
            self.db["settings"].upsert({"key": key, "value": json.dumps(value)}, pk="key")

    # -- event log -------------------------------------------------------------------------------------------

    def log(self, kind: str, message: str) -> None:
        with self.db.conn:
            newest = self.db["events"].insert({"at": self._clock(), "kind": kind, "message": message}).last_pk
            self.db.execute("DELETE FROM events WHERE id <= ?", [newest - MAX_EVENTS])

    def recent_events(self, limit: int = 50) -> list:
        return list(self.db["events"].rows_where(order_by="id desc", limit=limit))
