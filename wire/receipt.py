"""Print receipts and the network's rewards report (docs/topics.md, "Receipts and rewards"). Sans-I/O.

A receipt is an envelope of kind `print.receipt`, signed by the box, chained to the box's previous receipt
through `wire/record_chain.py` (the box keeps its own receipt chain, apart from telemetry). It says what happened;
whether it earns is the verifier's rule. The rewards report is an envelope of kind `rewards`, signed by a
verifier, retained on the box's `rewards` topic: what the box earned, what is pending and what was paid.
"""

import hashlib
import re
from dataclasses import dataclass

from wire import canonical, envelope, keytext
from wire.record_chain import GENESIS, ChainWriter

__all__ = ["GENESIS", "RECEIPT_KIND", "REWARDS_KIND", "Receipt", "ReceiptError"]

RECEIPT_KIND = "print.receipt"
REWARDS_KIND = "rewards"
OUTCOMES = ("done", "cancelled", "failed", "interrupted")
MAX_COUNT = 2**53 - 1
MAX_IDENTITY_TEXT = 200
MAX_ATTESTATION_BYTES = 4096
MAX_REPORTED_RECEIPTS = 50
MAX_REASON = 300
MAX_AMOUNT = 10**36  # far above the token's cap in its smallest unit (3,333,333,333 x 10^18)
RECEIPT_STATES = ("accepted", "refused", "pending")
_HEX32 = re.compile(r"[0-9a-f]{32}\Z")
_HEX64 = re.compile(r"[0-9a-f]{64}\Z")
_MATERIAL = re.compile(r"([A-Z0-9][A-Z0-9+\-_.]{0,31})?\Z")  # the license's material names, or "" (not stated)
_BOX_ID = re.compile(r"[a-z2-7]{16}\Z")
_AMOUNT = re.compile(r"(0|[1-9][0-9]{0,36})\Z")
_TX = re.compile(r"0x[0-9a-f]{64}\Z")
_BODY_FIELDS = frozenset(
    {"job_id", "license_id", "sealed_sha256", "print_number", "started", "ended", "outcome", "lines",
     "filament_mm", "printer", "material", "telemetry", "prev", "attestation"}
)  # fmt: skip
_REQUIRED = _BODY_FIELDS - {"attestation"}
_PRINTER_FIELDS = frozenset({"FIRMWARE_NAME", "MACHINE_TYPE"})
# The `attestation` member: an edge bridge's two reply lines as received, or why the bridge gave none.
ATTESTED_FIELDS = frozenset({"bridge_id", "start", "end", "challenge_from", "commands"})
CHALLENGE_ORIGINS = ("verifier", "box")
MAX_ATTESTATION_LINE = 400
_HEX16 = re.compile(r"[0-9a-f]{16}\Z")
_ATTESTATION_LINE = re.compile(r"MIPAI_ATTEST:1 [ -~]{1,385}\Z")
_TELEMETRY_FIELDS = frozenset({"first", "last", "last_hash"})


class ReceiptError(ValueError):
    """A receipt or rewards report that breaks the format; the message names the member and what is wrong."""


@dataclass(frozen=True)
class Receipt:
    """The body of a print receipt, checked. `telemetry_first`..`telemetry_last` are the box's telemetry record
    numbers covering the print; `telemetry_last_hash` is the record hash of the last one."""

    job_id: str
    license_id: str
    sealed_sha256: str
    print_number: int
    started: int
    ended: int
    outcome: str
    lines: int
    filament_mm: int
    firmware_name: str
    machine_type: str
    material: str
    telemetry_first: int
    telemetry_last: int
    telemetry_last_hash: str
    attestation: dict | None = None

    def body(self) -> dict:
        """The envelope body without `prev` (the chain writer adds it)."""
        body = {
            "job_id": self.job_id,
            "license_id": self.license_id,
            "sealed_sha256": self.sealed_sha256,
            "print_number": self.print_number,
            "started": self.started,
            "ended": self.ended,
            "outcome": self.outcome,
            "lines": self.lines,
            "filament_mm": self.filament_mm,
            "printer": {"FIRMWARE_NAME": self.firmware_name, "MACHINE_TYPE": self.machine_type},
            "material": self.material,
            "telemetry": {
                "first": self.telemetry_first,
                "last": self.telemetry_last,
                "last_hash": self.telemetry_last_hash,
            },
        }
        if self.attestation is not None:
            body["attestation"] = self.attestation
        return body

    @property
    def duration(self) -> int:
        """Seconds from start to end of the print."""
        return self.ended - self.started


def valid_material(name) -> bool:
    """Whether `name` is a material a receipt may state (upper case, as in licenses, or "")."""
    return isinstance(name, str) and _MATERIAL.match(name) is not None


def _count(value, name: str, low: int = 0) -> int:
    if type(value) is not int or not low <= value <= MAX_COUNT:
        raise ReceiptError("%s must be a whole number from %d to 2^53 - 1" % (name, low))
    return value


def _pattern(value, name: str, pattern: re.Pattern, what: str) -> str:
    if not isinstance(value, str) or not pattern.match(value):
        raise ReceiptError("%s must be %s" % (name, what))
    return value


def _text(value, name: str) -> str:
    if not isinstance(value, str) or len(value) > MAX_IDENTITY_TEXT:
        raise ReceiptError("%s must be text of at most %d characters" % (name, MAX_IDENTITY_TEXT))
    return value


def _members(value, name: str, allowed: frozenset, required: frozenset) -> dict:
    if not isinstance(value, dict):
        raise ReceiptError("%s must be an object" % name)
    unknown = sorted(set(value) - allowed)
    if unknown:
        raise ReceiptError("%s has unknown members: %s" % (name, ", ".join(m[:40] for m in unknown[:5])))
    missing = sorted(required - set(value))
    if missing:
        raise ReceiptError("%s lacks %s" % (name, ", ".join(missing)))
    return value


def parse_body(body) -> Receipt:
    """The checked receipt in an envelope body (`prev` is the chain's and is checked, not returned)."""
    body = _members(body, "the receipt", _BODY_FIELDS | {"prev"}, _REQUIRED)
    printer = _members(body["printer"], "printer", _PRINTER_FIELDS, _PRINTER_FIELDS)
    span = _members(body["telemetry"], "telemetry", _TELEMETRY_FIELDS, _TELEMETRY_FIELDS)
    _pattern(body["prev"], "prev", _HEX64, "the SHA-256 of the previous receipt (64 hex digits)")
    outcome = body["outcome"]
    if outcome not in OUTCOMES:
        raise ReceiptError("outcome must be one of %s" % ", ".join(OUTCOMES))
    attestation = body.get("attestation")
    if attestation is not None:
        parse_attestation(attestation)
    receipt = Receipt(
        job_id=_pattern(body["job_id"], "job_id", _HEX32, "32 hex digits"),
        license_id=_pattern(body["license_id"], "license_id", _HEX32, "32 hex digits"),
        sealed_sha256=_pattern(body["sealed_sha256"], "sealed_sha256", _HEX64, "64 hex digits"),
        print_number=_count(body["print_number"], "print_number", 1),
        started=_count(body["started"], "started"),
        ended=_count(body["ended"], "ended"),
        outcome=outcome,
        lines=_count(body["lines"], "lines"),
        filament_mm=_count(body["filament_mm"], "filament_mm"),
        firmware_name=_text(printer["FIRMWARE_NAME"], "printer.FIRMWARE_NAME"),
        machine_type=_text(printer["MACHINE_TYPE"], "printer.MACHINE_TYPE"),
        material=_pattern(body["material"], "material", _MATERIAL, "a material name in upper case, or empty"),
        telemetry_first=_count(span["first"], "telemetry.first", 1),
        telemetry_last=_count(span["last"], "telemetry.last", 1),
        telemetry_last_hash=_pattern(span["last_hash"], "telemetry.last_hash", _HEX64, "64 hex digits"),
        attestation=attestation,
    )
    if receipt.ended < receipt.started:
        raise ReceiptError("the print ended (%d) before it started (%d)" % (receipt.ended, receipt.started))
    if receipt.telemetry_last < receipt.telemetry_first:
        raise ReceiptError("telemetry.last is below telemetry.first")
    return receipt


def parse_attestation(value) -> dict:
    """The checked `attestation` member: {"bridge_id", "start", "end", "challenge_from", "commands"} when the
    bridge attested, {"error"} when a bridge was there but gave no attestation. Only the shape is checked here:
    the verifier parses and verifies the lines themselves (firmware_bridge.attestation)."""
    if not isinstance(value, dict):
        raise ReceiptError("attestation must be an object")
    if len(canonical.encode(value)) > MAX_ATTESTATION_BYTES:
        raise ReceiptError("attestation is over %d bytes" % MAX_ATTESTATION_BYTES)
    if "error" in value:
        _members(value, "attestation", frozenset({"error"}), frozenset({"error"}))
        if not isinstance(value["error"], str) or not 0 < len(value["error"]) <= MAX_REASON:
            raise ReceiptError("attestation.error must be text of 1 to %d characters" % MAX_REASON)
        return value
    _members(value, "attestation", ATTESTED_FIELDS, ATTESTED_FIELDS)
    _pattern(value["bridge_id"], "attestation.bridge_id", _HEX16, "16 hex digits")
    for name in ("start", "end"):
        _pattern(value[name], "attestation." + name, _ATTESTATION_LINE, "one MIPAI_ATTEST:1 reply line")
    if value["challenge_from"] not in CHALLENGE_ORIGINS:
        raise ReceiptError("attestation.challenge_from must be one of %s" % ", ".join(CHALLENGE_ORIGINS))
    _count(value["commands"], "attestation.commands")
    return value


def receipt_writer(box_key, box_id: str, last_sequence: int = 0, last_hash: str = GENESIS) -> ChainWriter:
    """The box's receipt chain, continued from its persisted head (number and hash of its last receipt)."""
    return ChainWriter(RECEIPT_KIND, box_key, box_id, last_sequence, last_hash)


def sign_receipt(writer: ChainWriter, receipt: Receipt, now: int) -> tuple:
    """The box's signed receipt for one print: (envelope, canonical bytes). Checks every member first (a bad
    value raises ReceiptError and leaves the writer's head as it was); the bytes are what is stored and
    published, and their SHA-256 (`receipt_hash`) is the receipt hash the network anchors."""
    if writer.kind != RECEIPT_KIND:
        raise ReceiptError("receipts are signed by a %s chain, not %s" % (RECEIPT_KIND, writer.kind))
    parse_body(dict(receipt.body(), prev=writer.head))
    return writer.next_encoded(receipt.body(), now)


def receipt_hash(encoded: bytes) -> str:
    """SHA-256 (hex) of a whole signed receipt's canonical bytes: the same rule as a telemetry `prev` link."""
    return hashlib.sha256(encoded).hexdigest()


def box_key_hash(ed25519_public: bytes) -> bytes:
    """`boxKey` on chain: SHA-256 of the box's Ed25519 public key (the box id is derived from the same hash)."""
    return hashlib.sha256(ed25519_public).digest()


def read_receipt(data: bytes, box_public: bytes, box_id: str) -> tuple:
    """(envelope, Receipt) of a receipt as it arrived, signed by `box_public`; EnvelopeError for a signature that
    does not verify, ReceiptError for anything else."""
    signed = envelope.verify_encoded(data, box_public)
    if signed["kind"] != RECEIPT_KIND:
        raise ReceiptError("a %s envelope is not a receipt" % signed["kind"][:64])
    if signed["key_id"] != box_id:
        raise ReceiptError("the receipt is signed under %s, not the box %s" % (signed["key_id"][:64], box_id))
    if signed["seq"] < 1:
        raise ReceiptError("receipt numbers start at 1")
    return signed, parse_body(signed["body"])


# -- the rewards report --------------------------------------------------------------------------------------


def verifier_key_id(public_key: bytes) -> str:
    """The key id a verifier signs rewards reports under, derived from its Ed25519 key."""
    return "vf-" + keytext.box_id(public_key)


TOKEN_DECIMALS = 18  # the 3DP token's smallest unit is 10^-18 3DP


def format_amount(amount: int) -> str:
    """An amount in the token's smallest unit, for people: "1.5 3DP" (trailing zeros trimmed)."""
    whole, fraction = divmod(int(amount), 10**TOKEN_DECIMALS)
    digits = ("%0*d" % (TOKEN_DECIMALS, fraction)).rstrip("0")
    return "%d%s 3DP" % (whole, "." + digits if digits else "")


def _amount(value, name: str) -> int:
    if not isinstance(value, str) or not _AMOUNT.match(value):
        raise ReceiptError("%s must be a whole amount in decimal digits (smallest token unit)" % name)
    return int(value)


MAX_ISSUED_CHALLENGES = 8


def rewards_body(box_id: str, earned: int, paid: int, pending: int, receipts: list, transactions: list,
                 challenges=()) -> dict:  # fmt: skip
    """The rewards report of one box. `receipts`: its latest receipts, each {"hash", "seq", "state", "reason",
    "reward"} (reward an int); `transactions`: {"tx", "amount"} of claims paid. Amounts become decimal text.
    `challenges`: fresh attestation challenges (32 hex digits each) the verifier issued to the box, if any."""
    body = {
        "box_id": box_id,
        "earned": str(earned),
        "paid": str(paid),
        "pending": pending,
        "receipts": [dict(entry, reward=str(entry["reward"])) for entry in receipts[-MAX_REPORTED_RECEIPTS:]],
        "transactions": [dict(entry, amount=str(entry["amount"])) for entry in transactions[-MAX_REPORTED_RECEIPTS:]],
    }
    if challenges:
        body["challenges"] = list(challenges)
    parse_rewards(body)
    return body


def parse_rewards(body) -> dict:
    """A checked rewards report, amounts as ints."""
    fields = frozenset({"box_id", "earned", "paid", "pending", "receipts", "transactions"})
    body = _members(body, "the rewards report", fields | {"challenges"}, fields)
    challenges = body.get("challenges", [])
    if not isinstance(challenges, list) or len(challenges) > MAX_ISSUED_CHALLENGES:
        raise ReceiptError("challenges must be a list of at most %d" % MAX_ISSUED_CHALLENGES)
    for challenge in challenges:
        _pattern(challenge, "a challenge", _HEX32, "32 hex digits")
    _pattern(body["box_id"], "box_id", _BOX_ID, "a box id")
    earned, paid = _amount(body["earned"], "earned"), _amount(body["paid"], "paid")
    if earned > MAX_AMOUNT or paid > earned:
        raise ReceiptError("paid must not exceed earned")
    for name in ("receipts", "transactions"):
        if not isinstance(body[name], list) or len(body[name]) > MAX_REPORTED_RECEIPTS:
            raise ReceiptError("%s must be a list of at most %d" % (name, MAX_REPORTED_RECEIPTS))
    receipts = []
    for entry in body["receipts"]:
        keys = frozenset({"hash", "seq", "state", "reason", "reward"})
        entry = _members(entry, "a reported receipt", keys, keys)
        _pattern(entry["hash"], "receipt hash", _HEX64, "64 hex digits")
        _count(entry["seq"], "receipt seq")  # 0: a receipt refused before its number could be trusted
        if entry["state"] not in RECEIPT_STATES:
            raise ReceiptError("a receipt's state is one of %s" % ", ".join(RECEIPT_STATES))
        if not isinstance(entry["reason"], str) or len(entry["reason"]) > MAX_REASON:
            raise ReceiptError("a receipt's reason is text of at most %d characters" % MAX_REASON)
        receipts.append(dict(entry, reward=_amount(entry["reward"], "reward")))
    transactions = []
    for entry in body["transactions"]:
        entry = _members(entry, "a transaction", frozenset({"tx", "amount"}), frozenset({"tx", "amount"}))
        _pattern(entry["tx"], "tx", _TX, "0x and 64 hex digits")
        transactions.append(dict(entry, amount=_amount(entry["amount"], "amount")))
    return {"box_id": body["box_id"], "earned": earned, "paid": paid, "pending": _count(body["pending"], "pending"),
            "receipts": receipts, "transactions": transactions, "challenges": list(challenges)}  # fmt: skip


def sign_rewards(body: dict, verifier_key, now: int, sequence: int) -> tuple:
    """A verifier's signed rewards report: (envelope, canonical bytes), published retained."""
    public = verifier_key.public_key().public_bytes_raw()
    return envelope.sign_encoded(REWARDS_KIND, body, verifier_key, verifier_key_id(public), now, sequence)


def read_rewards(data: bytes, verifier_public: bytes, box_id: str) -> dict:
    """The checked rewards report for `box_id` in a payload signed by a verifier the box trusts."""
    signed = envelope.verify_encoded(data, verifier_public)
    if signed["kind"] != REWARDS_KIND or signed["key_id"] != verifier_key_id(verifier_public):
        raise ReceiptError("not a rewards report of that verifier")
    report = parse_rewards(signed["body"])
    if report["box_id"] != box_id:
        raise ReceiptError("the rewards report is for box %s, not %s" % (report["box_id"], box_id))
    return report
