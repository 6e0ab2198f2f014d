"""The telemetry outbox: every signed record waits in SQLite (WAL) until the broker acknowledges it, so a broker
outage or a restart loses nothing. Records are chained (chain_client.record_chain) and the chain's head is kept
in the same transaction as the record, so the chain continues across restarts.

Cap policy, when the outbox holds more than `max_records` or records older than `max_age`: the oldest samples
(temperature and state readings) are thinned first, every other one, then dropped oldest first; job events and
errors are never dropped. Each thinning is itself recorded, naming the sequence numbers it removed, so a
verifier can tell a stated thinning from a silent loss.
"""

import contextlib
import json
import logging
import sqlite3

from box.jobs import job_states
from wire import receipt
from wire.record_chain import GENESIS, ChainWriter

log = logging.getLogger("mipai.fleet")

KIND = "telemetry"
SAMPLE, EVENT = 0, 1  # what may be thinned, and what is kept whatever happens

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, priority INTEGER NOT NULL, created REAL NOT NULL,"
    " record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS chain_head (kind TEXT PRIMARY KEY, seq INTEGER NOT NULL, head TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS job_seen (job INTEGER PRIMARY KEY, state TEXT NOT NULL)",
    # Print receipts (wire/receipt.py): kept after the PUBACK too (`sent`), the newest MAX_RECEIPTS of them.
    "CREATE TABLE IF NOT EXISTS receipts (seq INTEGER PRIMARY KEY, job INTEGER NOT NULL UNIQUE, hash TEXT NOT NULL,"
    " created REAL NOT NULL, record TEXT NOT NULL, sent INTEGER NOT NULL DEFAULT 0)",
    # The telemetry record that opened each print (its `printing` event): the first record of its receipt.
    "CREATE TABLE IF NOT EXISTS print_span (job INTEGER PRIMARY KEY, first INTEGER NOT NULL)",
)
MAX_RECEIPTS = 10_000  # receipts kept once the broker has them; unsent ones are never dropped
_STARTED = (job_states.PRINTING, job_states.PAUSED)


class Outbox:
    def __init__(self, path: str, key, key_id: str, max_records: int = 100_000, max_age: float = 7 * 86400):
        self._db = sqlite3.connect(path, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=FULL")
        for statement in _SCHEMA:
            self._db.execute(statement)
        row = self._db.execute("SELECT seq, head FROM chain_head WHERE kind = ?", (KIND,)).fetchone()
        sequence, head = row if row else (0, GENESIS)
        self._writer = ChainWriter(KIND, key, key_id, sequence, head)
        row = self._db.execute("SELECT seq, head FROM chain_head WHERE kind = ?", (receipt.RECEIPT_KIND,)).fetchone()
        self._receipts = receipt.receipt_writer(key, key_id, *(row if row else (0, GENESIS)))
        self.max_records = max_records
        self.max_age = max_age
        self.made_receipts = []

    def close(self) -> None:
        self._db.close()

    @contextlib.contextmanager
    def _transaction(self):
        """One SQLite transaction; on failure the chain writer goes back to the stored head."""
        self._db.execute("BEGIN IMMEDIATE")
        try:
            yield
        except BaseException:
            self._db.execute("ROLLBACK")
            _reload(self._db, self._writer)
            _reload(self._db, self._receipts)
            raise
        self._db.execute("COMMIT")

    def append(self, body: dict, now: float, priority: int = SAMPLE) -> dict:
        """Sign, chain and store one record; returns the envelope."""
        with self._transaction():
            return self._insert(body, now, priority)

    def append_many(self, bodies: list, now: float, priority: int = SAMPLE) -> list:
        """Sign, chain and store several records in one transaction (one disk flush for all of them)."""
        with self._transaction():
            return [self._insert(body, now, priority) for body in bodies]

    def append_job_events(self, events: list, now: float, facts=None) -> list:
        """Job events (telemetry.JobWatch), stored with the job states they report in one transaction, so a
        change is recorded exactly once even if the box stops right after it. `facts`: job number -> what the
        printer owner stored of its print (box.jobs.store.print_facts); a job that ends after a `printing` event
        gets its print receipt in the same transaction, so it too is made exactly once."""
        facts = facts or {}
        made = []
        with self._transaction():
            signed = []
            for event in events:
                record = self._insert(event, now, EVENT)
                signed.append(record)
                if event["state"] in _STARTED:
                    self._db.execute("INSERT OR IGNORE INTO print_span (job, first) VALUES (?, ?)",
                                     (event["job"], record["seq"]))  # fmt: skip
                elif event["state"] in job_states.FINISHED:
                    made += self._receipt(event, record["seq"], facts.get(event["job"]), now)
            self._db.executemany("INSERT OR REPLACE INTO job_seen (job, state) VALUES (?, ?)",
                                 [(event["job"], event["state"]) for event in events])  # fmt: skip
        self.made_receipts = made  # (seq, job, hash) of the receipts this call made, once committed
        return signed

    def _receipt(self, event: dict, last: int, facts, now: float) -> list:
        """Sign and store the receipt of a print that ended with the telemetry record `last` (in a transaction);
        returns [(seq, job, hash)], or [] for a job that never reached the printer, or whose start no telemetry
        record covered (it printed while the box had no fleet broker)."""
        row = self._db.execute("SELECT first FROM print_span WHERE job = ?", (event["job"],)).fetchone()
        if row is None or not facts or not facts.get("print_number"):
            return []
        if self._db.execute("SELECT 1 FROM receipts WHERE job = ?", (event["job"],)).fetchone():
            return []
        try:
            made = receipt_of(event, facts, row[0], last, self._writer.head)
            signed, encoded = receipt.sign_receipt(self._receipts, made, int(now))
        except (receipt.ReceiptError, KeyError, TypeError, ValueError) as exc:  # the facts are our own: a bug
            log.error("no receipt for job %d: its print facts are not valid: %s", event["job"], exc)
            return []
        digest = receipt.receipt_hash(encoded)
        self._db.execute("INSERT INTO receipts (seq, job, hash, created, record) VALUES (?, ?, ?, ?, ?)",
                         (signed["seq"], event["job"], digest, now, encoded.decode()))  # fmt: skip
        self._db.execute("INSERT OR REPLACE INTO chain_head (kind, seq, head) VALUES (?, ?, ?)",
                         (receipt.RECEIPT_KIND, self._receipts.sequence, self._receipts.head))  # fmt: skip
        self._db.execute("DELETE FROM print_span WHERE job = ?", (event["job"],))
        return [(signed["seq"], event["job"], digest)]

    def pending_receipts(self, limit: int = 100, after: int = 0) -> list:
        """(seq, canonical bytes) of the oldest receipts the broker has not acknowledged (numbered above `after`)."""
        rows = self._db.execute("SELECT seq, record FROM receipts WHERE sent = 0 AND seq > ? ORDER BY seq LIMIT ?",
                                (after, limit))  # fmt: skip
        return [(seq, record.encode()) for seq, record in rows]

    def receipts_acknowledged(self, sequences: list) -> None:
        """The broker has these receipts (PUBACK); only the newest MAX_RECEIPTS sent ones are kept."""
        if sequences:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("UPDATE receipts SET sent = 1 WHERE seq = ?", [(seq,) for seq in sequences])
            self._db.execute("DELETE FROM receipts WHERE sent = 1 AND seq <= (SELECT max(seq) FROM receipts) - ?",
                             (MAX_RECEIPTS,))  # fmt: skip
            self._db.execute("COMMIT")

    def receipts(self, limit: int = 50) -> list:
        """(seq, job number, receipt hash, sent) of the newest receipts."""
        rows = self._db.execute("SELECT seq, job, hash, sent FROM receipts ORDER BY seq DESC LIMIT ?", (limit,))
        return [(seq, job, digest, bool(sent)) for seq, job, digest, sent in rows]

    def job_states_seen(self) -> dict:
        """job number -> the state last reported."""
        return dict(self._db.execute("SELECT job, state FROM job_seen"))

    def _insert(self, body: dict, now: float, priority: int) -> dict:
        signed, encoded = self._writer.next_encoded(body, int(now))
        self._db.execute(
            "INSERT INTO outbox (seq, priority, created, record) VALUES (?, ?, ?, ?)",
            (signed["seq"], priority, now, encoded.decode()),
        )
        self._db.execute(
            "INSERT OR REPLACE INTO chain_head (kind, seq, head) VALUES (?, ?, ?)",
            (KIND, self._writer.sequence, self._writer.head),
        )
        return signed

    def pending(self, limit: int = 100, after: int = 0) -> list:
        """(seq, created, envelope) of the oldest records not yet acknowledged (numbered above `after`)."""
        rows = self._db.execute("SELECT seq, created, record FROM outbox WHERE seq > ? ORDER BY seq LIMIT ?",
                                (after, limit))  # fmt: skip
        return [(seq, created, json.loads(record)) for seq, created, record in rows]

    def pending_encoded(self, limit: int = 100, after: int = 0) -> list:
        """(seq, created, priority, canonical bytes) of the oldest records not yet acknowledged: what is
        published, as it was signed, with nothing decoded or encoded again."""
        rows = self._db.execute("SELECT seq, created, priority, record FROM outbox WHERE seq > ? ORDER BY seq"
                                " LIMIT ?", (after, limit))  # fmt: skip
        return [(seq, created, priority, record.encode()) for seq, created, priority, record in rows]

    def acknowledged(self, sequence: int) -> None:
        """The broker has the record (PUBACK): only now is its row deleted."""
        self._db.execute("DELETE FROM outbox WHERE seq = ?", (sequence,))

    def acknowledged_many(self, sequences: list) -> None:
        """`acknowledged` for several records in one transaction (PUBACKs come in bursts)."""
        if sequences:
            self._db.execute("BEGIN IMMEDIATE")
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in sequences])
            self._db.execute("COMMIT")

    def count(self) -> int:
        return self._db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]

    def enforce_caps(self, now: float) -> list:
        """Apply the cap policy; return the sequence numbers removed. The removal and the record saying so are
        one transaction."""
        samples = [seq for seq, in self._db.execute(
            "SELECT seq FROM outbox WHERE priority = ? ORDER BY seq", (SAMPLE,))]  # fmt: skip
        aged = {seq for seq, in self._db.execute(
            "SELECT seq FROM outbox WHERE priority = ? AND created < ?", (SAMPLE, now - self.max_age))}  # fmt: skip
        removed = set(aged)
        over = self.count() - len(removed) + 1 - self.max_records  # (+1: the thinning record itself)
        if over > 0:
            younger = [seq for seq in samples if seq not in aged]
            for seq in younger[::2] + younger[1::2]:  # every other sample, oldest first; then the rest
                if over <= 0:
                    break
                removed.add(seq)
                over -= 1
        if not removed:
            return []
        removed = sorted(removed)
        with self._transaction():
            self._db.executemany("DELETE FROM outbox WHERE seq = ?", [(seq,) for seq in removed])
            self._insert({"type": "outbox.thinned", "removed": removed}, now, EVENT)
        return removed


def receipt_of(event: dict, facts: dict, first: int, last: int, last_hash: str) -> receipt.Receipt:
    """The receipt of a print from its end event, the printer owner's facts and the telemetry records covering
    it (`first` to `last`, whose record hash is `last_hash`)."""
    material = facts.get("material") or ""
    printer = facts.get("printer") or {}
    return receipt.Receipt(
        job_id=event["job_id"],
        license_id=facts["license_id"],
        sealed_sha256=facts["sealed_sha256"],
        print_number=facts["print_number"],
        started=facts["started"],
        ended=max(facts.get("ended", facts["started"]), facts["started"]),
        outcome=event["state"],
        lines=facts.get("lines", 0),
        filament_mm=facts.get("filament_mm", 0),
        firmware_name=str(printer.get("FIRMWARE_NAME", ""))[: receipt.MAX_IDENTITY_TEXT],
        machine_type=str(printer.get("MACHINE_TYPE", ""))[: receipt.MAX_IDENTITY_TEXT],
        material=material if receipt.valid_material(material) else "",
        telemetry_first=first,
        telemetry_last=last,
        telemetry_last_hash=last_hash,
        attestation=facts.get("attestation"),
    )


def _reload(db, writer: ChainWriter) -> None:
    """After a rollback, the writer goes back to the head that was stored."""
    row = db.execute("SELECT seq, head FROM chain_head WHERE kind = ?", (writer.kind,)).fetchone()
    writer.sequence, writer.head = row if row else (0, GENESIS)
