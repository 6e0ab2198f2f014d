"""The verifier's state in SQLite (docs/verifier.md, "State"): the registry of boxes and jobs, the telemetry facts
and receipts that arrived, every verdict, per-box lifetime earned totals and what claims paid.

One file is shared by every `mipai-chain verify` process of a group on one host (WAL, busy timeout): each
process writes what it verified, and every decision is a transaction that moves a receipt out of `pending`
only if it is still pending, so a receipt is decided once and counted once whichever process decides it, and a
restart (or a message delivered twice) changes nothing. Each Ledger object belongs to one thread."""

import json
import sqlite3
import time

from chain_client import attestation_weighing, verifier
from wire import receipt, topics

SCHEMA = """
CREATE TABLE IF NOT EXISTS boxes (box_id TEXT PRIMARY KEY, ed25519 TEXT NOT NULL, evm_address TEXT NOT NULL,
    owner TEXT NOT NULL, registered INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS jobs (job_id TEXT PRIMARY KEY, sealed_sha256 TEXT NOT NULL, license_id TEXT,
    lines INTEGER, estimate_s INTEGER, added INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS telemetry (box_id TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL,
    prev TEXT NOT NULL, ts INTEGER NOT NULL, type TEXT NOT NULL, job_id TEXT, hotend_c INTEGER, hotend_t INTEGER,
    bed_c INTEGER, bed_t INTEGER, PRIMARY KEY (box_id, seq)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS forks (box_id TEXT NOT NULL, seq INTEGER NOT NULL, hash TEXT NOT NULL,
    PRIMARY KEY (box_id, seq, hash)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS thinned (box_id TEXT NOT NULL, seq INTEGER NOT NULL, PRIMARY KEY (box_id, seq))
    WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS box_state (box_id TEXT PRIMARY KEY, highest INTEGER NOT NULL DEFAULT 0,
    last_seen INTEGER NOT NULL DEFAULT 0, records INTEGER NOT NULL DEFAULT 0,
    duplicates INTEGER NOT NULL DEFAULT 0, earned TEXT NOT NULL DEFAULT '0', paid TEXT NOT NULL DEFAULT '0',
    report_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS receipts (hash TEXT PRIMARY KEY, box_id TEXT NOT NULL, seq INTEGER NOT NULL,
    prev TEXT NOT NULL, chained INTEGER NOT NULL, job_id TEXT, license_id TEXT, print_number INTEGER,
    tel_first INTEGER, tel_last INTEGER, payload BLOB NOT NULL, first_seen INTEGER NOT NULL, state TEXT NOT NULL,
    reason TEXT NOT NULL, reward TEXT NOT NULL DEFAULT '0', decided INTEGER, copies INTEGER NOT NULL DEFAULT 1);
CREATE INDEX IF NOT EXISTS receipts_by_box ON receipts (box_id, state, seq);
CREATE INDEX IF NOT EXISTS receipts_by_print ON receipts (box_id, license_id, print_number);
CREATE TABLE IF NOT EXISTS notices (box_id TEXT NOT NULL, topic TEXT NOT NULL, reason TEXT NOT NULL,
    count INTEGER NOT NULL, last INTEGER NOT NULL, PRIMARY KEY (box_id, topic, reason)) WITHOUT ROWID;
CREATE TABLE IF NOT EXISTS anchored (hash TEXT PRIMARY KEY, batch TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS report_times (box_id TEXT PRIMARY KEY, seq INTEGER NOT NULL, at REAL NOT NULL,
    settled_seq INTEGER NOT NULL DEFAULT 0);
CREATE TABLE IF NOT EXISTS payments (tx TEXT PRIMARY KEY, box_id TEXT NOT NULL, amount TEXT NOT NULL,
    total TEXT NOT NULL, at INTEGER NOT NULL);
CREATE TABLE IF NOT EXISTS batches (root TEXT PRIMARY KEY, epoch INTEGER NOT NULL, count INTEGER NOT NULL,
    path TEXT NOT NULL, tx TEXT NOT NULL DEFAULT '', at INTEGER NOT NULL);
"""
MAX_NOTICES_PER_BOX = 200


class LedgerError(ValueError):
    """A registry entry or payment the ledger refuses; the message says why."""


class Ledger:
    def __init__(self, path: str) -> None:
        self.path = path
        self._db = sqlite3.connect(path, timeout=30, isolation_level=None)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.execute("PRAGMA synchronous=NORMAL")
        self._db.executescript(SCHEMA)
        self.bridges = attestation_weighing.BridgeBook(self._db)  # edge bridges' keys and issued challenges

    def close(self) -> None:
        self._db.close()

    def _begin(self) -> None:
        self._db.execute("BEGIN IMMEDIATE")

    # -- the registry ------------------------------------------------------------------------------------------

    def add_box(self, entry: verifier.BoxEntry, now: int) -> None:
        """Register a box (or change its addresses); its Ed25519 key never changes once registered."""
        known = self._db.execute("SELECT ed25519 FROM boxes WHERE box_id = ?", (entry.box_id,)).fetchone()
        if known is not None and known[0] != entry.ed25519.hex():
            raise LedgerError("box %s is registered with another Ed25519 key" % entry.box_id)
        self._db.execute(
            "INSERT INTO boxes VALUES (?, ?, ?, ?, ?) ON CONFLICT (box_id) DO UPDATE SET "
            "evm_address = excluded.evm_address, owner = excluded.owner",
            (entry.box_id, entry.ed25519.hex(), entry.evm_address, entry.owner, now),
        )

    def boxes(self) -> dict:
        rows = self._db.execute("SELECT box_id, ed25519, evm_address, owner FROM boxes")
        return {r[0]: verifier.BoxEntry(r[0], bytes.fromhex(r[1]), r[2], r[3]) for r in rows}

    def add_job(self, entry: verifier.JobEntry, now: int) -> bool:
        """Record a job the platform issued; False when it was already recorded (with the same sealed file)."""
        known = self._db.execute("SELECT sealed_sha256 FROM jobs WHERE job_id = ?", (entry.job_id,)).fetchone()
        if known is not None:
            if known[0] != entry.sealed_sha256:
                raise LedgerError("job %s is already registered with another sealed file" % entry.job_id)
            self._db.execute(
                "UPDATE jobs SET license_id = coalesce(?, license_id), lines = coalesce(?, lines), "
                "estimate_s = coalesce(?, estimate_s) WHERE job_id = ?",
                (entry.license_id, entry.lines, entry.estimate_s, entry.job_id),
            )
            return False
        self._db.execute("INSERT INTO jobs VALUES (?, ?, ?, ?, ?, ?)", (entry.job_id, entry.sealed_sha256,
                         entry.license_id, entry.lines, entry.estimate_s, now))  # fmt: skip
        return True

    def job(self, job_id: str):
        row = self._db.execute("SELECT job_id, sealed_sha256, license_id, lines, estimate_s FROM jobs WHERE "
                               "job_id = ?", (job_id,)).fetchone()  # fmt: skip
        return verifier.JobEntry(*row) if row else None

    # -- what arrived ------------------------------------------------------------------------------------------

    def ingest(self, facts, now: int) -> set:
        """Keep the facts of one batch in one transaction; returns the box ids whose receipts may now be decided."""
        touched = set()
        db = self._db
        self._begin()
        try:
            for fact in facts:
                if isinstance(fact, verifier.Telemetry):
                    self._telemetry(fact)
                    touched.add(fact.box_id)
                elif isinstance(fact, verifier.ReceiptFact):
                    self._receipt(fact, now)
                    touched.add(fact.box_id)
                elif isinstance(fact, verifier.Status):
                    self._seen(fact.box_id, fact.ts)
                elif isinstance(fact, verifier.Refusal):
                    self._notice(fact.box_id, fact.topic, fact.reason, now)
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return touched

    def _seen(self, box_id: str, ts: int, highest: int = 0, record: int = 0, duplicate: int = 0) -> None:
        self._db.execute(
            "INSERT INTO box_state (box_id, highest, last_seen, records, duplicates) VALUES (?, ?, ?, ?, ?) "
            "ON CONFLICT (box_id) DO UPDATE SET highest = max(highest, excluded.highest), "
            "last_seen = max(last_seen, excluded.last_seen), records = records + excluded.records, "
            "duplicates = duplicates + excluded.duplicates",
            (box_id, highest, ts, record, duplicate),
        )

    def _telemetry(self, fact: verifier.Telemetry) -> None:
        hotend, bed = fact.hotend or (None, None), fact.bed or (None, None)
        cursor = self._db.execute(
            "INSERT OR IGNORE INTO telemetry VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?)",
            (fact.box_id, fact.seq, fact.hash, fact.prev, fact.ts, fact.type, fact.job_id, *hotend, *bed),
        )
        if cursor.rowcount == 0:
            (known,) = self._db.execute("SELECT hash FROM telemetry WHERE box_id = ? AND seq = ?",
                                        (fact.box_id, fact.seq)).fetchone()  # fmt: skip
            if known == fact.hash:
                self._seen(fact.box_id, fact.ts, fact.seq, duplicate=1)
                return
            self._db.executemany("INSERT OR IGNORE INTO forks VALUES (?, ?, ?)",
                                 [(fact.box_id, fact.seq, known), (fact.box_id, fact.seq, fact.hash)])  # fmt: skip
        if fact.thinned:
            self._db.executemany("INSERT OR IGNORE INTO thinned VALUES (?, ?)",
                                 [(fact.box_id, n) for n in fact.thinned])  # fmt: skip
        self._seen(fact.box_id, fact.ts, fact.seq, record=1)

    def _receipt(self, fact: verifier.ReceiptFact, now: int) -> None:
        db = self._db
        if db.execute("UPDATE receipts SET copies = copies + 1 WHERE hash = ?", (fact.hash,)).rowcount:
            return  # delivered again: the first copy's verdict stands
        found = fact.receipt
        state, reason, chained = verifier.REFUSED, fact.refusal, 0
        if found is not None:

            def chained_at(seq: int, column: str):
                row = db.execute("SELECT %s FROM receipts WHERE box_id = ? AND seq = ? AND chained = 1" % column,
                                 (fact.box_id, seq)).fetchone()  # fmt: skip
                return row[0] if row else None

            neighbours = (chained_at(fact.seq, "hash"), chained_at(fact.seq - 1, "hash"),
                          chained_at(fact.seq + 1, "prev"))  # fmt: skip
            reason = verifier.receipt_link_problem(fact.seq, fact.hash, fact.prev, *neighbours)
            if not reason:
                state, chained = verifier.PENDING, 1
        db.execute(
            "INSERT INTO receipts (hash, box_id, seq, prev, chained, job_id, license_id, print_number, tel_first, "
            "tel_last, payload, first_seen, state, reason, decided) VALUES (?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, ?, "
            "?, ?)",
            (fact.hash, fact.box_id, fact.seq, fact.prev, chained, found and found.job_id,
             found and found.license_id, found and found.print_number, found and found.telemetry_first,
             found and found.telemetry_last, fact.payload, now, state, reason,
             None if state == verifier.PENDING else now),
        )  # fmt: skip

    def _notice(self, box_id: str, topic: str, reason: str, now: int) -> None:
        self._db.execute(
            "INSERT INTO notices VALUES (?, ?, ?, 1, ?) ON CONFLICT (box_id, topic, reason) DO UPDATE SET "
            "count = count + 1, last = excluded.last",
            (box_id[:64], topic[:200], reason[: verifier.MAX_REASON], now),
        )
        count = self._db.execute("SELECT count(*) FROM notices WHERE box_id = ?", (box_id[:64],)).fetchone()[0]
        if count > MAX_NOTICES_PER_BOX:  # bounded: the oldest reasons go first
            self._db.execute("DELETE FROM notices WHERE box_id = ? AND last = (SELECT min(last) FROM notices WHERE "
                             "box_id = ?)", (box_id[:64], box_id[:64]))  # fmt: skip

    # -- decisions ---------------------------------------------------------------------------------------------

    def settle(self, box_ids, now: int, patience: int = verifier.DEFAULT_PATIENCE_SECONDS) -> list:
        """Decide every pending receipt of `box_ids` (None: of every box) that can be decided now. Returns
        [(box id, receipt hash, Verdict)] for the receipts whose state changed."""
        db = self._db
        if box_ids is None:
            box_ids = [r[0] for r in db.execute("SELECT DISTINCT box_id FROM receipts WHERE state = 'pending'")]
        decided = []
        for box_id in sorted(box_ids):
            self._begin()
            try:
                made = self._settle_box(box_id, now, patience)
                if made:
                    self._prune(box_id)
                decided.extend(made)
                db.execute("COMMIT")
            except BaseException:
                db.execute("ROLLBACK")
                raise
        return decided

    def _settle_box(self, box_id: str, now: int, patience: int) -> list:
        db = self._db
        pending = db.execute("SELECT hash, payload, first_seen, reason FROM receipts WHERE box_id = ? AND "
                             "state = 'pending' ORDER BY seq", (box_id,)).fetchall()  # fmt: skip
        if not pending:
            return []
        entry = self.boxes().get(box_id)
        highest = db.execute("SELECT highest FROM box_state WHERE box_id = ?", (box_id,)).fetchone()
        decided = []
        for digest, payload, first_seen, old_reason in pending:
            fact = verifier.read("%s/%s/%s" % (topics.PREFIX, box_id, topics.RECEIPT), payload,
                                 {box_id: entry})  # fmt: skip
            found = fact.receipt
            window = self._window(box_id, found.telemetry_first, found.telemetry_last, highest[0] if highest else 0)
            before = db.execute("SELECT seq FROM receipts WHERE box_id = ? AND license_id = ? AND print_number = ? "
                                "AND state = 'accepted' AND hash != ?",
                                (box_id, found.license_id, found.print_number, digest)).fetchone()  # fmt: skip
            overlap = db.execute("SELECT seq FROM receipts WHERE box_id = ? AND state = 'accepted' AND tel_first <= ? "
                                 "AND tel_last >= ? AND hash != ?",
                                 (box_id, found.telemetry_last, found.telemetry_first, digest)).fetchone()  # fmt: skip
            verdict = verifier.judge(fact, self.job(found.job_id), window, first_seen, now, before and before[0],
                                     patience, overlap and overlap[0])  # fmt: skip
            weight = None
            if verdict.state == verifier.ACCEPTED and verdict.reward:  # weighed by its edge attestation
                weight = self.bridges.weigh(box_id, found)
                verdict = verifier.Verdict(verdict.state, weight.reason,
                                           attestation_weighing.weighted(verdict.reward, weight.permille))  # fmt: skip
            if verdict.state == verifier.PENDING:
                if verdict.reason != old_reason:
                    db.execute("UPDATE receipts SET reason = ? WHERE hash = ?", (verdict.reason, digest))
                continue
            changed = db.execute("UPDATE receipts SET state = ?, reason = ?, reward = ?, decided = ? WHERE hash = ? "
                                 "AND state = 'pending'", (verdict.state, verdict.reason, str(verdict.reward), now,
                                 digest)).rowcount  # fmt: skip
            if changed and verdict.state == verifier.ACCEPTED and verdict.reward:
                earned = db.execute("SELECT earned FROM box_state WHERE box_id = ?", (box_id,)).fetchone()
                total = int(earned[0]) if earned else 0
                self._seen(box_id, 0)
                db.execute("UPDATE box_state SET earned = ? WHERE box_id = ?", (str(total + verdict.reward), box_id))
            if changed and weight is not None:
                self.bridges.use(box_id, weight, now)
            if changed:
                decided.append((box_id, digest, verdict))
        return decided

    def _prune(self, box_id: str) -> None:
        """Forget the telemetry records no future receipt needs: those up to the span of receipt K, when receipts
        1 to K of the box are all decided (a later receipt covers later records; one that claims pruned records
        waits, then is refused as a gap). Keeps the ledger bounded by what is still undecided."""
        db = self._db
        rows = db.execute("SELECT seq, state, tel_last FROM receipts WHERE box_id = ? AND chained = 1 ORDER BY seq",
                          (box_id,)).fetchall()  # fmt: skip
        cut = 0
        for expected, (seq, state, last) in enumerate(rows, start=1):
            if seq != expected or state == verifier.PENDING:
                break
            cut = max(cut, last or 0)
        if cut:
            for table in ("telemetry", "forks", "thinned"):
                db.execute("DELETE FROM %s WHERE box_id = ? AND seq <= ?" % table, (box_id, cut))

    def _window(self, box_id: str, first: int, last: int, highest: int) -> verifier.Window:
        db = self._db
        window = verifier.Window(highest=highest)
        if last - first + 1 > verifier.MAX_WINDOW_RECORDS:
            return window
        for row in db.execute("SELECT seq, hash, prev, ts, type, job_id, hotend_c, hotend_t, bed_c, bed_t FROM "
                              "telemetry WHERE box_id = ? AND seq BETWEEN ? AND ? ORDER BY seq",
                              (box_id, first, last)):  # fmt: skip
            hotend = None if row[6] is None and row[7] is None else (row[6], row[7])
            bed = None if row[8] is None and row[9] is None else (row[8], row[9])
            window.records.append(verifier.Telemetry(box_id, row[0], row[1], row[2], row[3], row[4], row[5],
                                                     hotend, bed))  # fmt: skip
        window.forks = {r[0] for r in db.execute("SELECT seq FROM forks WHERE box_id = ? AND seq BETWEEN ? AND ?",
                                                 (box_id, first, last))}  # fmt: skip
        window.thinned = {r[0] for r in db.execute("SELECT seq FROM thinned WHERE box_id = ? AND seq BETWEEN ? "
                                                   "AND ?", (box_id, first, last))}  # fmt: skip
        return window

    # -- what the network tells the box, and the claim side's record -------------------------------------------

    def unanchored(self, limit: int = 10_000) -> list:
        """Accepted receipts not yet in an anchored batch, oldest decision first: (receiptHash, boxKey, reward) as
        the Merkle leaf takes them (hex, hex, int), for the anchoring side."""
        rows = self._db.execute(
            "SELECT r.hash, b.ed25519, r.reward FROM receipts r JOIN boxes b ON b.box_id = r.box_id WHERE r.state = "
            "'accepted' AND r.hash NOT IN (SELECT hash FROM anchored) ORDER BY r.decided, r.hash LIMIT ?",
            (limit,),
        ).fetchall()
        return [(digest, receipt.box_key_hash(bytes.fromhex(key)).hex(), int(reward)) for digest, key, reward in rows]

    def mark_anchored(self, hashes, batch: str, now: int) -> None:
        """Record that these receipts are in batch `batch` (anchored on chain); a receipt is anchored once."""
        self._begin()
        try:
            self._db.executemany("INSERT OR IGNORE INTO anchored VALUES (?, ?, ?)", [(h, batch, now) for h in hashes])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def accepted_unanchored(self, decided_before: int) -> list:
        """Accepted receipts decided before `decided_before` and in no anchored batch: (hash, box id, Ed25519 key
        hex, reward, decided, payload), in the order a batch lists them (decision time, then hash)."""
        rows = self._db.execute(
            "SELECT r.hash, r.box_id, b.ed25519, r.reward, r.decided, r.payload FROM receipts r JOIN boxes b ON "
            "b.box_id = r.box_id WHERE r.state = 'accepted' AND r.decided < ? AND r.hash NOT IN (SELECT hash FROM "
            "anchored) ORDER BY r.decided, r.hash",
            (decided_before,),
        ).fetchall()
        return [(h, box, key, int(reward), decided, bytes(payload)) for h, box, key, reward, decided, payload in rows]

    def record_batch(self, root: str, epoch: int, count: int, path: str, now: int) -> None:
        """A batch file written (before its anchor is sent); written again, it keeps its first record."""
        self._db.execute("INSERT OR IGNORE INTO batches (root, epoch, count, path, at) VALUES (?, ?, ?, ?, ?)",
                         (root, epoch, count, path, now))  # fmt: skip

    def batch_anchored(self, root: str, hashes, tx: str, now: int) -> None:
        """The batch `root` is anchored by `tx`: its receipts are marked, all in one transaction."""
        self._begin()
        try:
            self._db.execute("UPDATE batches SET tx = ? WHERE root = ?", (tx, root))
            self._db.executemany("INSERT OR IGNORE INTO anchored VALUES (?, ?, ?)", [(h, root, now) for h in hashes])
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def batch_of(self, receipt_hash: str):
        """(root, epoch, count, batch file path, anchor tx) of the anchored batch holding the receipt, or None."""
        return self._db.execute(
            "SELECT b.root, b.epoch, b.count, b.path, b.tx FROM anchored a JOIN batches b ON b.root = a.batch WHERE "
            "a.hash = ?",
            (receipt_hash,),
        ).fetchone()

    def batches(self) -> list:
        """Every batch: (root, epoch, count, path, anchor tx or '')."""
        return self._db.execute("SELECT root, epoch, count, path, tx FROM batches ORDER BY epoch, at").fetchall()

    def anchored_earned(self) -> dict:
        """Per box id: the sum of rewards of its accepted receipts that are in an anchored batch (what a claim
        may sign: every unit it pays is backed by a root on chain)."""
        totals: dict = {}
        for box_id, reward in self._db.execute(
            "SELECT r.box_id, r.reward FROM receipts r JOIN anchored a ON a.hash = r.hash WHERE r.state = 'accepted'"
        ):
            totals[box_id] = totals.get(box_id, 0) + int(reward)
        return totals

    def paid_boxes_after(self, row: int) -> tuple:
        """(the last payment's row, the boxes paid after payment row `row`): whose rewards reports to send again
        after `mipai-chain claim` (another process) recorded a payment."""
        rows = self._db.execute("SELECT rowid, box_id FROM payments WHERE rowid > ? ORDER BY rowid", (row,))
        found = rows.fetchall()
        return (found[-1][0] if found else row), {box_id for _row, box_id in found}

    def paid(self, box_id: str) -> int:
        """What claims paid the box so far, as the ledger recorded them."""
        row = self._db.execute("SELECT paid FROM box_state WHERE box_id = ?", (box_id,)).fetchone()
        return int(row[0]) if row else 0

    def earned(self, box_id: str) -> int:
        """The box's lifetime total of rewards for accepted receipts (what claims co-sign)."""
        row = self._db.execute("SELECT earned FROM box_state WHERE box_id = ?", (box_id,)).fetchone()
        return int(row[0]) if row else 0

    def record_payment(self, box_id: str, tx: str, total_paid: int, now: int) -> None:
        """A claim transaction paid the box up to `total_paid` (cumulative); replaying the same tx changes nothing."""
        if total_paid > self.earned(box_id):
            raise LedgerError("a payment up to %d is above what box %s earned" % (total_paid, box_id))
        self._begin()
        try:
            row = self._db.execute("SELECT paid FROM box_state WHERE box_id = ?", (box_id,)).fetchone()
            paid = int(row[0]) if row else 0
            if self._db.execute("SELECT 1 FROM payments WHERE tx = ?", (tx,)).fetchone() is None and total_paid > paid:
                self._db.execute("INSERT INTO payments VALUES (?, ?, ?, ?, ?)", (tx, box_id, str(total_paid - paid),
                                 str(total_paid), now))  # fmt: skip
                self._db.execute("UPDATE box_state SET paid = ? WHERE box_id = ?", (str(total_paid), box_id))
            self._db.execute("COMMIT")
        except BaseException:
            self._db.execute("ROLLBACK")
            raise

    def report(self, box_id: str, settling: bool = False) -> tuple:
        """(rewards body, its sequence number) for the box's rewards topic; the number rises with every call.
        `settling`: this report is the one `unsettled_reports` asked for, so it needs no settling itself."""
        db = self._db
        self._begin()
        try:
            self._seen(box_id, 0)
            db.execute("UPDATE box_state SET report_seq = report_seq + 1 WHERE box_id = ?", (box_id,))
            earned, paid, seq = db.execute("SELECT earned, paid, report_seq FROM box_state WHERE box_id = ?",
                                           (box_id,)).fetchone()  # fmt: skip
            db.execute(
                "INSERT INTO report_times VALUES (?, ?, ?, ?) ON CONFLICT (box_id) DO UPDATE SET seq = excluded.seq, "
                "at = excluded.at, settled_seq = CASE WHEN ? THEN excluded.seq ELSE settled_seq END",
                (box_id, seq, time.time(), seq if settling else 0, settling),
            )
            pending = db.execute("SELECT count(*) FROM receipts WHERE box_id = ? AND state = 'pending'",
                                 (box_id,)).fetchone()[0]  # fmt: skip
            rows = db.execute("SELECT hash, seq, state, reason, reward FROM receipts WHERE box_id = ? ORDER BY "
                              "first_seen DESC, seq DESC LIMIT ?",
                              (box_id, receipt.MAX_REPORTED_RECEIPTS)).fetchall()  # fmt: skip
            payments = db.execute("SELECT tx, amount FROM payments WHERE box_id = ? ORDER BY at DESC LIMIT ?",
                                  (box_id, receipt.MAX_REPORTED_RECEIPTS)).fetchall()  # fmt: skip
            challenges = self.bridges.outstanding(box_id, int(time.time()))
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        entries = [{"hash": h, "seq": s, "state": st, "reason": r, "reward": int(w)} for h, s, st, r, w in rows]
        body = receipt.rewards_body(box_id, int(earned), int(paid), pending, entries[::-1],
                                    [{"tx": tx, "amount": int(amount)} for tx, amount in payments[::-1]],
                                    challenges)  # fmt: skip
        return body, seq

    def unsettled_reports(self, now: float, quiet_seconds: float) -> list:
        """Boxes whose newest report is `quiet_seconds` old and has not been settled, each handed to one caller.

        The processes of a group publish reports on the retained rewards topic as they decide, and two reports of
        one box made by two processes can reach the broker in the wrong order, leaving the older one retained.
        Once a box's reports have been quiet for a moment, one process publishes a fresh one, so what is retained
        is the newest."""
        db = self._db
        self._begin()
        try:
            rows = db.execute("SELECT box_id FROM report_times WHERE seq > settled_seq AND at <= ?",
                              (now - quiet_seconds,)).fetchall()  # fmt: skip
            boxes = [row[0] for row in rows]
            db.executemany("UPDATE report_times SET settled_seq = seq WHERE box_id = ?", [(b,) for b in boxes])
            db.execute("COMMIT")
        except BaseException:
            db.execute("ROLLBACK")
            raise
        return boxes

    def summary(self) -> list:
        """Per box: accepted, refused, pending, earned, paid, records, duplicates, and the refusal reasons."""
        db = self._db
        names = set(self.boxes()) | {r[0] for r in db.execute("SELECT box_id FROM box_state")}
        names |= {r[0] for r in db.execute("SELECT DISTINCT box_id FROM receipts")}
        result = []
        for box_id in sorted(names):
            counts = dict(db.execute("SELECT state, count(*) FROM receipts WHERE box_id = ? GROUP BY state",
                                     (box_id,)).fetchall())  # fmt: skip
            state = db.execute("SELECT earned, paid, records, duplicates FROM box_state WHERE box_id = ?",
                               (box_id,)).fetchone() or ("0", "0", 0, 0)  # fmt: skip
            reasons = db.execute("SELECT seq, reason FROM receipts WHERE box_id = ? AND state != 'accepted' "
                                 "ORDER BY seq", (box_id,)).fetchall()  # fmt: skip
            notices = db.execute("SELECT topic, reason, count FROM notices WHERE box_id = ? ORDER BY last",
                                 (box_id,)).fetchall()  # fmt: skip
            result.append({
                "box_id": box_id, "accepted": counts.get("accepted", 0), "refused": counts.get("refused", 0),
                "pending": counts.get("pending", 0), "earned": int(state[0]), "paid": int(state[1]),
                "records": state[2], "duplicates": state[3], "reasons": reasons, "notices": notices,
            })  # fmt: skip
        return result

    def dump(self) -> str:
        """Every receipt's verdict, as JSON lines (for audits and tests)."""
        rows = self._db.execute("SELECT box_id, seq, hash, state, reason, reward FROM receipts ORDER BY box_id, seq")
        return "\n".join(json.dumps(row) for row in rows)
