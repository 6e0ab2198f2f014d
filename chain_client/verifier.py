"""The verifier's core (docs/verifier.md), sans-I/O: `read` turns one MQTT message (topic, payload, now) into a
checked fact (a telemetry record, a receipt, a status) or a refusal with its reason; `judge` decides one receipt
from the job registry's entry and the box's telemetry records covering the print. Neither touches a file, a
socket or a clock; the ledger (`chain_client/ledger.py`) keeps the facts and applies the verdicts."""

import hashlib
import itertools
from collections.abc import Mapping
from dataclasses import dataclass, field

from chain_client import rewards
from wire import envelope, receipt, topics
from wire.receipt import Receipt
from wire.record_chain import GENESIS

ACCEPTED, REFUSED, PENDING = "accepted", "refused", "pending"
HEAT_TOLERANCE = 50  # tenths of a degree: a heater within 5 °C of its target has reached it
MIN_ESTIMATE_FRACTION_PERMILLE = 500  # a print faster than half the G-code's own estimate is implausible
TELEMETRY_SLACK_SECONDS = 120
DEFAULT_PATIENCE_SECONDS = 24 * 3600  # how long missing telemetry is waited for once later records arrived
MAX_WINDOW_RECORDS = 400_000  # telemetry records one receipt may cover (4.6 days of samples once a second)
MAX_REASON = receipt.MAX_REASON


@dataclass(frozen=True)
class BoxEntry:
    """A box the network registered: its Ed25519 key (which verifies everything it signs) and chain addresses."""

    box_id: str
    ed25519: bytes
    evm_address: str = ""
    owner: str = ""


@dataclass(frozen=True)
class JobEntry:
    """A job the platform issued (`mipai-chain jobs add`). `lines`: the source line number of its last command
    (what a complete print confirms); `estimate_s`: the G-code's own time estimate; None when not known."""

    job_id: str
    sealed_sha256: str
    license_id: str | None = None
    lines: int | None = None
    estimate_s: int | None = None


@dataclass(frozen=True)
class Telemetry:
    """A verified telemetry or event record: its place in the chain and the facts a verdict needs."""

    box_id: str
    seq: int
    hash: str
    prev: str
    ts: int
    type: str
    job_id: str | None = None
    hotend: tuple | None = None  # (current, target) in tenths of a degree
    bed: tuple | None = None
    thinned: tuple = ()  # numbers the box says its outbox dropped (an outbox.thinned event)


@dataclass(frozen=True)
class ReceiptFact:
    """A receipt as it arrived: verified and parsed (`receipt` set), or refused on arrival (`refusal` set)."""

    box_id: str
    hash: str
    payload: bytes
    seq: int = 0
    prev: str = ""
    receipt: Receipt | None = None
    refusal: str = ""


@dataclass(frozen=True)
class Status:
    box_id: str
    ts: int


@dataclass(frozen=True)
class Refusal:
    """A message refused on arrival, with who sent it (as far as the topic says) and why."""

    box_id: str
    topic: str
    reason: str


@dataclass(frozen=True)
class Verdict:
    state: str  # accepted, refused or pending
    reason: str = ""
    reward: int = 0


@dataclass
class Window:
    """What the ledger knows of a box's telemetry around one receipt: the records numbered `first`..`last` that
    arrived (sorted), numbers claimed by two different records (forks), numbers the box said it dropped, and
    the highest number seen from the box."""

    records: list = field(default_factory=list)
    forks: set = field(default_factory=set)
    thinned: set = field(default_factory=set)
    highest: int = 0


def _clip(text: str) -> str:
    return text if len(text) <= MAX_REASON else text[: MAX_REASON - 3] + "..."


def _pair(value):
    if isinstance(value, list) and len(value) == 2 and all(type(v) is int or v is None for v in value):
        return (value[0], value[1])
    return None


def read(topic: str, payload: bytes, boxes: Mapping) -> object:
    """One message as a fact: Telemetry, ReceiptFact, Status, Refusal, or None for a message that needs nothing
    (an empty retained payload, a topic the verifier does not read). `boxes`: box id -> BoxEntry."""
    try:
        box_id, name = topics.split_topic(topic)
    except topics.WireError as exc:
        return Refusal("?", topic[:200], str(exc))
    if name == topics.RECEIPT:
        return _receipt(box_id, payload, boxes.get(box_id))
    if name not in (topics.TELEMETRY, topics.EVENT, topics.STATUS):
        return None
    if not payload:
        return None
    entry = boxes.get(box_id)
    if entry is None:
        return Refusal(box_id, name, "box %s is not registered with the network" % box_id)
    if len(payload) > topics.MAX_PAYLOAD:
        return Refusal(
            box_id, name, "payload of %d bytes is over the %d-byte limit" % (len(payload), topics.MAX_PAYLOAD)
        )
    try:
        signed = envelope.verify_encoded(payload, entry.ed25519)
    except envelope.EnvelopeError as exc:
        return Refusal(box_id, name, "forged or damaged %s record: %s" % (name, exc))
    if signed["key_id"] != box_id:
        return Refusal(box_id, name, "a record signed under %s on the topic of %s" % (signed["key_id"][:64], box_id))
    if name == topics.STATUS:
        return Status(box_id, signed["ts"]) if signed["kind"] == topics.STATUS_KIND else None
    if signed["kind"] != topics.TELEMETRY_KIND:
        return Refusal(box_id, name, "a %s envelope on a telemetry topic" % signed["kind"][:64])
    return _telemetry(box_id, signed, hashlib.sha256(payload).hexdigest(), name)


def _telemetry(box_id: str, signed: dict, digest: str, name: str):
    body = signed["body"]
    prev, kind = body.get("prev"), body.get("type")
    if not isinstance(prev, str) or len(prev) != 64 or not isinstance(kind, str) or signed["seq"] < 1:
        return Refusal(box_id, name, "telemetry record %d has no type or no link to the one before" % signed["seq"])
    job = body.get("job") if isinstance(body.get("job"), dict) else {}
    job_id = job.get("job_id") if isinstance(job.get("job_id"), str) else None
    thinned = ()
    if kind == "outbox.thinned" and isinstance(body.get("removed"), list):
        thinned = tuple(n for n in body["removed"][:100_000] if type(n) is int)
    return Telemetry(box_id, signed["seq"], digest, prev, signed["ts"], kind[:64], job_id,
                     _pair(body.get("hotend")), _pair(body.get("bed")), thinned)  # fmt: skip


def _receipt(box_id: str, payload: bytes, entry) -> ReceiptFact:
    digest = receipt.receipt_hash(payload)
    if entry is None:
        return ReceiptFact(box_id, digest, payload, refusal="box %s is not registered with the network" % box_id)
    if len(payload) > topics.MAX_PAYLOAD:
        return ReceiptFact(box_id, digest, b"", refusal="the receipt is over the %d-byte limit" % topics.MAX_PAYLOAD)
    try:
        signed, parsed = receipt.read_receipt(payload, entry.ed25519, box_id)
    except envelope.EnvelopeError as exc:
        return ReceiptFact(box_id, digest, payload, refusal="forged receipt: %s" % exc)
    except receipt.ReceiptError as exc:
        return ReceiptFact(box_id, digest, payload, refusal=_clip("malformed receipt: %s" % exc))
    return ReceiptFact(box_id, digest, payload, signed["seq"], signed["body"]["prev"], parsed)


def receipt_link_problem(seq: int, digest: str, prev: str, same_number, before, after_prev) -> str:
    """Why a receipt breaks its box's receipt chain, or "": `same_number` is the hash of another receipt already
    holding number `seq` (or None), `before` the hash of receipt `seq - 1`, `after_prev` the `prev` of receipt
    `seq + 1` (None when unknown)."""
    if same_number is not None and same_number != digest:
        return "two different receipts claim number %d (fork of the receipt chain)" % seq
    if seq == 1 and prev != GENESIS:
        return "receipt 1 must start the receipt chain"
    if before is not None and before != prev:
        return "receipt %d does not follow receipt %d (edited or forged)" % (seq, seq - 1)
    if after_prev is not None and after_prev != digest:
        return "receipt %d does not follow receipt %d (edited or forged)" % (seq + 1, seq)
    return ""


def _ranges(numbers: list) -> str:
    """'3, 5 to 9' for [3, 5, 6, 7, 8, 9] (at most five ranges shown)."""
    spans = []
    for number in numbers:
        if spans and spans[-1][1] == number - 1:
            spans[-1][1] = number
        else:
            spans.append([number, number])
    shown = ["%d" % a if a == b else "%d to %d" % (a, b) for a, b in spans[:5]]
    return ", ".join(shown) + (" and more" if len(spans) > 5 else "")


def _minutes(seconds: int) -> str:
    return "%d min %02d s" % divmod(seconds, 60)


def judge(
    fact: ReceiptFact,
    job,
    window: Window,
    first_seen: int,
    now: int,
    counted_before: int | None = None,
    patience: int = DEFAULT_PATIENCE_SECONDS,
    overlapping: int | None = None,
) -> Verdict:
    """The verdict on one verified receipt. `job`: its JobEntry or None (never issued); `window`: the box's
    telemetry covering the print; `first_seen`: when the receipt arrived; `counted_before`: the number of an
    accepted receipt of the box for the same license and print number, if any; `overlapping`: the number of an
    accepted receipt of the box whose telemetry span overlaps this one's, if any (one print, one span)."""
    found = fact.receipt
    if job is None:
        return Verdict(REFUSED, "job %s was never issued by the platform" % found.job_id)
    if job.sealed_sha256 != found.sealed_sha256:
        return Verdict(REFUSED, "the sealed file printed (%s…) is not the one the platform issued for job %s"
                       % (found.sealed_sha256[:12], found.job_id))  # fmt: skip
    if job.license_id is not None and job.license_id != found.license_id:
        return Verdict(REFUSED, "license %s is not the license of job %s" % (found.license_id, found.job_id))
    if counted_before is not None:
        return Verdict(REFUSED, "duplicate: print %d of license %s was already counted in receipt %d"
                       % (found.print_number, found.license_id, counted_before))  # fmt: skip
    first, last = found.telemetry_first, found.telemetry_last
    if overlapping is not None:
        return Verdict(REFUSED, "duplicate: telemetry records %d to %d already cover receipt %d"
                       % (first, last, overlapping))  # fmt: skip
    if last - first + 1 > MAX_WINDOW_RECORDS:
        return Verdict(REFUSED, "the receipt claims %d telemetry records, more than the %d one print may cover"
                       % (last - first + 1, MAX_WINDOW_RECORDS))  # fmt: skip
    forks = sorted(n for n in window.forks if first <= n <= last)
    if forks:
        return Verdict(REFUSED, "fork: two different telemetry records claim number %s" % _ranges(forks))
    dropped = sorted(n for n in window.thinned if first <= n <= last)
    if dropped:
        return Verdict(REFUSED, "gap: the box dropped telemetry records %s covering the print" % _ranges(dropped))
    by_number = {record.seq: record for record in window.records}
    missing = [n for n in range(first, last + 1) if n not in by_number]
    if missing:
        if window.highest > last and now - first_seen >= patience:
            return Verdict(REFUSED, "gap: telemetry records %s covering the print never arrived, though later "
                           "records did" % _ranges(missing))  # fmt: skip
        return Verdict(PENDING, "waiting for telemetry records %s" % _ranges(missing))
    records = [by_number[n] for n in range(first, last + 1)]
    if first == 1 and records[0].prev != GENESIS:
        return Verdict(REFUSED, "telemetry record 1 does not start the chain")
    for before, after in itertools.pairwise(records):
        if after.prev != before.hash:
            return Verdict(REFUSED, "telemetry record %d does not follow record %d (edited or forged)"
                           % (after.seq, before.seq))  # fmt: skip
    if records[-1].hash != found.telemetry_last_hash:
        return Verdict(REFUSED, "the receipt's hash of telemetry record %d is not the record's hash" % last)
    if found.outcome not in rewards.PAID_OUTCOMES:
        return Verdict(ACCEPTED, "no reward for a %s print" % found.outcome, 0)
    problem = _implausible(found, job, records)
    if problem:
        return Verdict(REFUSED, "implausible print: " + problem)
    amount = rewards.reward(found.outcome, found.material, found.duration, job.estimate_s)
    return Verdict(ACCEPTED, "", amount)


def _implausible(found: receipt.Receipt, job: JobEntry, records: list) -> str:
    """Why a completed print does not fit its job and its telemetry, or ""."""
    if job.lines is not None and found.lines < job.lines:
        return "the printer confirmed %d of the job's %d lines" % (found.lines, job.lines)
    if job.estimate_s is not None and found.duration * 1000 < job.estimate_s * MIN_ESTIMATE_FRACTION_PERMILLE:
        return "printed in %s, under half the G-code's own estimate of %s" % (
            _minutes(found.duration),
            _minutes(job.estimate_s),
        )
    named = {record.job_id for record in records if record.job_id is not None}
    if named and found.job_id not in named:
        return "the telemetry of the print never shows job %s" % found.job_id
    span = records[-1].ts - records[0].ts
    if 2 * (span + TELEMETRY_SLACK_SECONDS) < found.duration:
        return "the telemetry covers %s of a print said to last %s" % (_minutes(span), _minutes(found.duration))
    for name in ("hotend", "bed"):
        readings = [getattr(record, name) for record in records if getattr(record, name) is not None]
        heated = [(current, target) for current, target in readings if target]
        if not heated:
            if name == "hotend":
                return "the hotend was never heated in the telemetry of the print"
            continue  # no heated bed, or a cold-bed material: nothing to check
        if not any(current is not None and current >= target - HEAT_TOLERANCE for current, target in heated):
            best = max((current or 0) for current, _target in heated)
            target = max(target for _current, target in heated)
            return "the %s never reached its target (at most %.1f °C of %.1f °C)" % (name, best / 10, target / 10)
    return ""
