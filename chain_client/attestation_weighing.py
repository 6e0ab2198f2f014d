"""Weighing a receipt by its edge attestation (docs/rewards.md, "Attested prints"; docs/edge-firmware.md).

`weigh` is the pure rule: given a receipt, the network's copy of its bridge's key, the (BOOT, SEQ) last accepted
from that bridge and which challenges the verifier issued, it says what share of the reward the receipt earns
and why. `BridgeBook` keeps what that needs in the ledger's SQLite file (tables `bridges` and
`attest_challenges`): the keys `mipai-chain bridges add` records, the challenges issued to each box (sent in its
rewards report), and, inside the ledger's settling transaction, what a weighed receipt used up.
"""

import os
import sqlite3
from dataclasses import dataclass

from firmware_bridge import attestation
from firmware_bridge.edge import attest
from wire import receipt

ATTESTED_PERMILLE = 1000  # both attestations verify, against challenges the verifier issued
OWN_CHALLENGE_PERMILLE = 750  # both verify, but against the box's own challenges
UNATTESTED_PERMILLE = 500  # no attestation, or one the verifier refuses
E_TOLERANCE_MM = 1  # the bridge's E (µm, rounded per move) against the receipt's whole mm: at least 1 mm off...
E_TOLERANCE_PERMILLE = 10  # ...or 1 % of the receipt's filament, whichever is larger
ISSUED_PER_BOX = 4  # unused challenges the verifier keeps out for each box (two per job: start and end)

SCHEMA = """
CREATE TABLE IF NOT EXISTS bridges (bridge_id TEXT PRIMARY KEY, key TEXT NOT NULL, added INTEGER NOT NULL,
    last_boot INTEGER, last_seq INTEGER);
CREATE TABLE IF NOT EXISTS attest_challenges (challenge TEXT PRIMARY KEY, box_id TEXT NOT NULL,
    issued INTEGER NOT NULL, used INTEGER, origin TEXT NOT NULL DEFAULT 'verifier');
CREATE INDEX IF NOT EXISTS attest_challenges_open ON attest_challenges (box_id, used);
"""


@dataclass(frozen=True)
class Weight:
    """What share (per mille) of its reward a receipt earns, and why. `sequence` and `challenges` are what a
    valid attestation uses up: the end's (BOOT, SEQ) and both challenges (hex)."""

    permille: int
    reason: str
    bridge_id: str = ""
    sequence: tuple | None = None
    challenges: tuple = ()
    origin: str = ""


def _unattested(reason: str) -> Weight:
    return Weight(UNATTESTED_PERMILLE, "%s: 50%% of the reward" % reason)


NO_ATTESTATION = _unattested("no attestation (the printer is not behind an edge bridge)").reason


def e_tolerance_um(filament_mm: int) -> int:
    """How far (µm) the bridge's extrusion may be from the receipt's `filament_mm`."""
    return max(E_TOLERANCE_MM * 1000, filament_mm * E_TOLERANCE_PERMILLE)


def weigh(found: receipt.Receipt, key, last, issued) -> Weight:
    """The rule. `key`: the network's copy of the named bridge's key, or None (not paired with the network);
    `last`: (boot, seq) last accepted from that bridge, or None; `issued(challenge_hex)`: "open" when the verifier
    issued it to this box and it is unused, "used" when it was used before, None when it never issued it."""
    record = found.attestation
    if record is None:
        return Weight(UNATTESTED_PERMILLE, NO_ATTESTATION)
    if "error" in record:
        return _unattested("the edge bridge gave no attestation (%s)" % record["error"][:160])
    bridge = record["bridge_id"]
    if key is None:
        return _unattested("attestation refused: bridge %s is not paired with the network" % bridge)
    try:
        start, end = attestation.parse(record["start"]), attestation.parse(record["end"])
        if start.bridge_id != bridge or end.bridge_id != bridge:
            raise attestation.AttestationInvalid("the lines come from another bridge than %s" % bridge)
        if start.challenge == end.challenge:
            raise attestation.AttestationInvalid("start and end answer the same challenge")
        for part in (start, end):
            state = issued(part.challenge.hex())
            if state == "used":
                raise attestation.AttestationInvalid("challenge %s… was used before: a replay"
                                                     % part.challenge.hex()[:8])  # fmt: skip
            if record["challenge_from"] == "verifier" and state != "open":
                raise attestation.AttestationInvalid("challenge %s… was never issued to this box"
                                                     % part.challenge.hex()[:8])  # fmt: skip
        attestation.verify(start, key, start.challenge, last)
        attestation.verify(end, key, end.challenge, (start.boot, start.seq))
        evidence = attestation.job_evidence(start, end)
    except attestation.AttestationError as exc:
        return _unattested("attestation refused: %s" % exc)
    if evidence["lines"] != record["commands"]:
        return _unattested("attestation refused: the bridge counted %d commands acknowledged, the box %d"
                           % (evidence["lines"], record["commands"]))  # fmt: skip
    if record["commands"] > found.lines:
        return _unattested("attestation refused: %d commands cannot fit in %d source lines"
                           % (record["commands"], found.lines))  # fmt: skip
    if abs(evidence["e_um"] - found.filament_mm * 1000) > e_tolerance_um(found.filament_mm):
        return _unattested("attestation refused: the bridge counted %.1f mm of filament, the receipt %d mm"
                           % (evidence["e_um"] / 1000, found.filament_mm))  # fmt: skip
    used = (start.challenge.hex(), end.challenge.hex())
    if record["challenge_from"] == "verifier":
        return Weight(ATTESTED_PERMILLE, "attested by edge bridge %s" % bridge, bridge, (end.boot, end.seq), used,
                      "verifier")  # fmt: skip
    return Weight(OWN_CHALLENGE_PERMILLE, "attested by edge bridge %s against the box's own challenge: 75%% of "
                  "the reward" % bridge, bridge, (end.boot, end.seq), used, "box")  # fmt: skip


def weighted(amount: int, permille: int) -> int:
    """The share of `amount` a weight gives (integers only: every verifier computes the same)."""
    return amount * permille // 1000


class BridgeBook:
    """The bridges and challenges tables on the ledger's connection; callers own the transactions."""

    def __init__(self, db: sqlite3.Connection) -> None:
        self._db = db
        db.executescript(SCHEMA)

    def add_bridge(self, bridge_id: str, key: bytes, now: int) -> bool:
        """Record the network's copy of a paired bridge's key; False when it was known already. A bridge id never
        changes its key (the id is derived from it)."""
        if attest.to_hex(attest.bridge_id(key)) != bridge_id:
            raise ValueError("key does not belong to bridge %s" % bridge_id)
        return bool(self._db.execute("INSERT OR IGNORE INTO bridges (bridge_id, key, added) VALUES (?, ?, ?)",
                                     (bridge_id, key.hex(), now)).rowcount)  # fmt: skip

    def bridge(self, bridge_id: str):
        """(key, last (boot, seq) or None), or None for a bridge not paired with the network."""
        row = self._db.execute("SELECT key, last_boot, last_seq FROM bridges WHERE bridge_id = ?",
                               (bridge_id,)).fetchone()  # fmt: skip
        if row is None:
            return None
        return bytes.fromhex(row[0]), None if row[1] is None else (row[1], row[2])

    def challenge_state(self, box_id: str, challenge: str):
        row = self._db.execute("SELECT box_id, used FROM attest_challenges WHERE challenge = ?",
                               (challenge,)).fetchone()  # fmt: skip
        if row is None:
            return None
        if row[1] is not None:
            return "used"
        return "open" if row[0] == box_id else None

    def outstanding(self, box_id: str, now: int) -> list:
        """The box's unused challenges, topped up to ISSUED_PER_BOX with fresh random ones (oldest first)."""
        rows = self._db.execute("SELECT challenge FROM attest_challenges WHERE box_id = ? AND used IS NULL AND "
                                "origin = 'verifier' ORDER BY rowid", (box_id,)).fetchall()  # fmt: skip
        issued = [row[0] for row in rows]
        while len(issued) < ISSUED_PER_BOX:
            fresh = os.urandom(attest.CHALLENGE_BYTES).hex()
            self._db.execute("INSERT INTO attest_challenges (challenge, box_id, issued) VALUES (?, ?, ?)",
                             (fresh, box_id, now))  # fmt: skip
            issued.append(fresh)
        return issued[:ISSUED_PER_BOX]

    def weigh(self, box_id: str, found: receipt.Receipt) -> Weight:
        """The rule applied with what the book knows (reads only)."""
        record = found.attestation or {}
        known = self.bridge(record["bridge_id"]) if "bridge_id" in record else None
        key, last = known if known is not None else (None, None)
        return weigh(found, key, last, lambda challenge: self.challenge_state(box_id, challenge))

    def use(self, box_id: str, weight: Weight, now: int) -> None:
        """A valid attestation was counted: its challenges are spent and its bridge's sequence moves on."""
        if weight.sequence is None:
            return
        for challenge in weight.challenges:
            self._db.execute("INSERT INTO attest_challenges (challenge, box_id, issued, used, origin) VALUES "
                             "(?, ?, ?, ?, ?) ON CONFLICT (challenge) DO UPDATE SET used = excluded.used",
                             (challenge, box_id, now, now, weight.origin))  # fmt: skip
        self._db.execute("UPDATE bridges SET last_boot = ?, last_seq = ? WHERE bridge_id = ?",
                         (*weight.sequence, weight.bridge_id))  # fmt: skip
