"""The operator's check of what boxes publish (sans-I/O): fed (topic, payload, historical) messages, it learns
each box's key from its signed status, verifies every telemetry and event record's signature and hash chain, and
says what it found: a record (ok or a duplicate that is not counted twice), a gap, or a refusal with its reason."""

from wire import topics
from wire.record_chain import ChainError, ChainVerifier


class Finding:
    """One verdict: `kind` is record, duplicate, status, refused or waiting (a record before its box's status)."""

    __slots__ = ("kind", "box_id", "record", "reason", "historical", "new_gaps")

    def __init__(self, kind, box_id, record=None, reason="", historical=False, new_gaps=()) -> None:
        self.kind = kind
        self.box_id = box_id
        self.record = record
        self.reason = reason
        self.historical = historical
        self.new_gaps = list(new_gaps)


class BoxView:
    def __init__(self, box_id: str, key: bytes) -> None:
        self.box_id = box_id
        self.key = key
        self.chain = ChainVerifier(key, box_id, topics.TELEMETRY_KIND)
        self.status = None
        self.session = 0
        self.records = 0
        self.duplicates = 0
        self.highest = 0
        self.first = None  # the lowest number seen: a watcher that joins late owes nothing before it
        self.last_seen = 0

    def gaps(self) -> list:
        """Numbers missing between the first and the highest record seen."""
        return [n for n in self.chain.gaps() if n > (self.first or 0)]


class TelemetryCheck:
    def __init__(self) -> None:
        self.boxes = {}  # box id -> BoxView
        self._early = {}  # box id -> records that came before the box's status (bounded)

    def feed(self, topic: str, payload: bytes, historical: bool = False) -> list:
        try:
            box_id, name = topics.split_topic(topic)
            if len(payload) > topics.MAX_PAYLOAD:
                raise topics.WireError("payload of %d bytes is over the limit" % len(payload))
        except topics.WireError as exc:
            return [Finding("refused", topic.split("/")[2] if topic.count("/") >= 3 else "?", reason=str(exc))]
        if name == topics.STATUS:
            try:
                return self._status(box_id, topics.decode(payload))
            except topics.WireError as exc:
                return [Finding("refused", box_id, reason=str(exc))]
        if name in (topics.TELEMETRY, topics.EVENT):
            view = self.boxes.get(box_id)
            if view is None:
                early = self._early.setdefault(box_id, [])
                if len(early) < 10_000:
                    early.append((payload, historical))
                return [Finding("waiting", box_id, reason="no status from this box yet")]
            return [self._record(view, payload, historical)]
        return []

    def _status(self, box_id: str, signed) -> list:
        if not signed:
            return []
        try:
            body = topics.verify_status(box_id, signed)
        except topics.WireError as exc:
            return [Finding("refused", box_id, reason=str(exc))]
        view = self.boxes.get(box_id)
        if view is None:
            view = self.boxes[box_id] = BoxView(box_id, bytes.fromhex(body["box_key"]))
        if body["session"] < view.session:
            return [Finding("status", box_id, reason="stale status of session %d ignored" % body["session"])]
        view.session = body["session"]
        view.status = dict(body, ts=signed["ts"])
        view.last_seen = max(view.last_seen, signed["ts"])
        findings = [Finding("status", box_id, record=signed)]
        for value, historical in self._early.pop(box_id, []):
            findings.append(self._record(view, value, historical))
        return findings

    def _record(self, view: BoxView, payload: bytes, historical: bool) -> Finding:
        try:
            verdict, signed = view.chain.accept_encoded(payload)
        except (ChainError, ValueError) as exc:
            return Finding("refused", view.box_id, reason=str(exc))
        if verdict == "duplicate":
            view.duplicates += 1
            return Finding("duplicate", view.box_id, record=signed, historical=historical)
        view.records += 1
        if view.first is None or signed["seq"] < view.first:
            view.first = signed["seq"]
        # numbers skipped since the last record (they may still arrive later)
        new_gaps = range(view.highest + 1, signed["seq"]) if view.highest else ()
        view.highest = max(view.highest, signed["seq"])
        view.last_seen = max(view.last_seen, signed["ts"])
        return Finding("record", view.box_id, record=signed, historical=historical, new_gaps=new_gaps)
