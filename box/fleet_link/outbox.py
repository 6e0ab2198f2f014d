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
import sqlite3

from wire.record_chain import GENESIS, ChainWriter

KIND = "telemetry"
SAMPLE, EVENT = 0, 1  # what may be thinned, and what is kept whatever happens

_SCHEMA = (
    "CREATE TABLE IF NOT EXISTS outbox (seq INTEGER PRIMARY KEY, priority INTEGER NOT NULL, created REAL NOT NULL,"
    " record TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS chain_head (kind TEXT PRIMARY KEY, seq INTEGER NOT NULL, head TEXT NOT NULL)",
    "CREATE TABLE IF NOT EXISTS job_seen (job INTEGER PRIMARY KEY, state TEXT NOT NULL)",
)


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
        self.max_records = max_records
        self.max_age = max_age

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

    def append_job_events(self, events: list, now: float) -> list:
        """Job events (telemetry.JobWatch), stored with the job states they report in one transaction, so a
        change is recorded exactly once even if the box stops right after it."""
        with self._transaction():
            signed = [self._insert(event, now, EVENT) for event in events]
            self._db.executemany("INSERT OR REPLACE INTO job_seen (job, state) VALUES (?, ?)",
                                 [(event["job"], event["state"]) for event in events])  # fmt: skip
            return signed

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


def _reload(db, writer: ChainWriter) -> None:
    """After a rollback, the writer goes back to the head that was stored."""
    row = db.execute("SELECT seq, head FROM chain_head WHERE kind = ?", (KIND,)).fetchone()
    writer.sequence, writer.head = row if row else (0, GENESIS)
