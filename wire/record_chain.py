"""Hash-chained signed records (telemetry, and later print receipts): each record's envelope body carries the
hash of the previous record, so a dropped, edited or reordered record shows. Sans-I/O on both sides: the writer
is given its last head (persisted by the caller, so the chain continues across restarts); the verifier is fed
envelopes in any order and reports what it can prove."""

import hashlib

from wire import canonical, envelope

GENESIS = "0" * 64


def record_hash(signed: dict) -> str:
    """SHA-256 of the canonical encoding of a whole envelope, signature included."""
    return hashlib.sha256(canonical.encode(signed)).hexdigest()


class ChainWriter:
    """Signs records of one kind in sequence, each chained to the one before."""

    def __init__(self, kind: str, key, key_id: str, last_sequence: int = 0, last_hash: str = GENESIS) -> None:
        self.kind = kind
        self._key = key
        self.key_id = key_id
        self.sequence = last_sequence
        self.head = last_hash

    def next(self, body: dict, timestamp: int) -> dict:
        """The next signed record; `sequence` and `head` then describe it (persist them with it)."""
        return self.next_encoded(body, timestamp)[0]

    def next_encoded(self, body: dict, timestamp: int) -> tuple:
        """`next`, with the record's canonical bytes (whose SHA-256 is the new head)."""
        chained = dict(body, prev=self.head)
        signed, encoded = envelope.sign_encoded(self.kind, chained, self._key, self.key_id, timestamp,
                                                self.sequence + 1)  # fmt: skip
        self.sequence += 1
        self.head = hashlib.sha256(encoded).hexdigest()
        return signed, encoded


class ChainVerifier:
    """Checks one signer's chain: signatures, the hash links and the sequence. `accept(envelope)` returns one of
    "ok", "duplicate" (seen before: not counted twice), or raises ChainError; `gaps()` lists missing numbers."""

    def __init__(self, public_key: bytes, key_id: str, kind: str) -> None:
        self._public_key = public_key
        self.key_id = key_id
        self.kind = kind
        self._hashes = {}  # sequence -> (record hash, prev hash)

    def accept(self, signed: dict) -> str:
        envelope.verify(signed, self._public_key)
        return self._link(signed, record_hash(signed))

    def accept_encoded(self, data: bytes) -> tuple:
        """`accept` for a record as it arrived (canonical JSON bytes): (verdict, envelope). Raises EnvelopeError
        for a record that does not verify, ChainError for one that breaks the chain."""
        signed = envelope.verify_encoded(data, self._public_key)
        return self._link(signed, hashlib.sha256(data).hexdigest()), signed

    def _link(self, signed: dict, digest: str) -> str:
        body = signed["body"]
        if signed["key_id"] != self.key_id or signed["kind"] != self.kind:
            raise ChainError("a %s record of %s in the chain of %s" % (signed["kind"], signed["key_id"], self.key_id))
        previous = body.get("prev")
        if not isinstance(previous, str) or len(previous) != 64:
            raise ChainError("record %d has no link to the one before" % signed["seq"])
        sequence = signed["seq"]
        known = self._hashes.get(sequence)
        if known is not None:
            if known[0] == digest:
                return "duplicate"
            raise ChainError("two different records claim number %d" % sequence)
        for neighbour in (sequence - 1, sequence + 1):
            other = self._hashes.get(neighbour)
            if other is None:
                continue
            if neighbour < sequence and other[0] != previous:
                raise ChainError("record %d does not follow record %d (edited or forged)" % (sequence, neighbour))
            if neighbour > sequence and other[1] != digest:
                raise ChainError("record %d does not follow record %d (edited or forged)" % (neighbour, sequence))
        if sequence == 1 and previous != GENESIS:
            raise ChainError("record 1 must start the chain")
        self._hashes[sequence] = (digest, previous)  # only a record that fits is remembered
        return "ok"

    def gaps(self) -> list:
        """Sequence numbers missing between 1 and the highest seen."""
        if not self._hashes:
            return []
        return [n for n in range(1, max(self._hashes) + 1) if n not in self._hashes]


class ChainError(ValueError):
    """A record that breaks its signer's chain."""
