"""Attestation challenges for the edge bridge (docs/edge-firmware.md, "Where the challenge comes from"): the
verifier's fresh challenges, which reach the box in its rewards reports, kept in `challenges.sqlite` in the data
dir until a job run uses each one once. When none is left the box makes its own random challenge and says so in
the receipt (`challenge_from: "box"`), which the verifier weighs lower (docs/rewards.md)."""

import os
import sqlite3
import threading

from firmware_bridge.edge import attest

CHALLENGE_BYTES = attest.CHALLENGE_BYTES
MAX_KEPT = 64  # unused challenges kept; the oldest go first beyond it
FROM_VERIFIER = "verifier"
FROM_BOX = "box"
FILE_NAME = "challenges.sqlite"
_SCHEMA = """
CREATE TABLE IF NOT EXISTS challenges (challenge TEXT PRIMARY KEY, received REAL NOT NULL,
    used REAL, job INTEGER);
"""


def challenges_file(root: str) -> str:
    return os.path.join(root, FILE_NAME)


class ChallengeStore:
    """The verifier's challenges the box holds. Safe to share between threads (one connection, one lock)."""

    def __init__(self, path: str) -> None:
        self._db = sqlite3.connect(path, timeout=10, isolation_level=None, check_same_thread=False)
        self._db.execute("PRAGMA journal_mode=WAL")
        self._db.executescript(_SCHEMA)
        self._lock = threading.Lock()

    def close(self) -> None:
        with self._lock:
            self._db.close()

    def add(self, challenges, now: float) -> int:
        """Keep the verifier's challenges (32 hex digits each) not seen before; returns how many were new. A
        challenge already used is never taken again, however often a report repeats it."""
        fresh = [c for c in challenges if isinstance(c, str) and attest.from_hex(c, CHALLENGE_BYTES) is not None]
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                added = sum(self._db.execute("INSERT OR IGNORE INTO challenges (challenge, received) VALUES (?, ?)",
                                             (c, now)).rowcount for c in fresh)  # fmt: skip
                self._db.execute("DELETE FROM challenges WHERE used IS NULL AND challenge NOT IN (SELECT challenge "
                                 "FROM challenges WHERE used IS NULL ORDER BY received DESC, challenge LIMIT ?)",
                                 (MAX_KEPT,))  # fmt: skip
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        return added

    def unused(self) -> int:
        with self._lock:
            return self._db.execute("SELECT count(*) FROM challenges WHERE used IS NULL").fetchone()[0]

    def take(self, job: int, now: float) -> tuple:
        """(challenge bytes, origin): the oldest unused verifier challenge, marked used by `job`, or a random one
        of the box's own (origin FROM_BOX) when the verifier sent none."""
        with self._lock:
            self._db.execute("BEGIN IMMEDIATE")
            try:
                row = self._db.execute("SELECT challenge FROM challenges WHERE used IS NULL ORDER BY received, "
                                       "challenge LIMIT 1").fetchone()  # fmt: skip
                if row is not None:
                    self._db.execute("UPDATE challenges SET used = ?, job = ? WHERE challenge = ?", (now, job, row[0]))
                self._db.execute("COMMIT")
            except BaseException:
                self._db.execute("ROLLBACK")
                raise
        if row is None:
            return os.urandom(CHALLENGE_BYTES), FROM_BOX
        return bytes.fromhex(row[0]), FROM_VERIFIER
