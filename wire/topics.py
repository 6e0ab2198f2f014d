"""What the box and the fleet say to each other over MQTT (docs/topics.md): topic names, payload limits, the
retained status and its last will, and the strict decoding of every payload that arrives. Both sides import this
module; nothing here does I/O."""

from wire import canonical, envelope, keytext

PREFIX = "mipai/v1"
MAX_PAYLOAD = 256 * 1024  # an inline job.submit is the largest message; anything bigger is refused unread
STATUS_KIND = "status"
TELEMETRY_KIND = "telemetry"
CONFIG_KIND = "config"

STATUS = "status"
TELEMETRY = "telemetry"
EVENT = "event"
COMMAND = "cmd"
RESULT = "cmd/result"
CONFIG_DESIRED = "config/desired"
CONFIG_REPORTED = "config/reported"
RECEIPT = "receipt"  # box -> network: signed print receipts (wire/receipt.py)
REWARDS = "rewards"  # network -> box, retained: what the box earned, pending and paid
BOX_TOPICS = (STATUS, TELEMETRY, EVENT, COMMAND, RESULT, CONFIG_DESIRED, CONFIG_REPORTED, RECEIPT, REWARDS)


class WireError(ValueError):
    """A payload or topic that is not what the protocol allows; the message says what was wrong."""


def topic(box_id: str, name: str) -> str:
    if name not in BOX_TOPICS:
        raise ValueError("unknown topic %r" % name)
    return "%s/%s/%s" % (PREFIX, box_id, name)


def split_topic(text: str) -> tuple[str, str]:
    """(box id, topic name) of a box topic; WireError for anything else."""
    parts = text.split("/", 3)
    if len(parts) != 4 or "/".join(parts[:2]) != PREFIX or parts[3] not in BOX_TOPICS or not parts[2]:
        raise WireError("not a box topic: %r" % text[:200])
    return parts[2], parts[3]


def decode(payload: bytes):
    """The value of a payload: canonical JSON, at most MAX_PAYLOAD bytes and 16 levels deep."""
    if len(payload) > MAX_PAYLOAD:
        raise WireError("payload of %d bytes is over the %d-byte limit" % (len(payload), MAX_PAYLOAD))
    try:
        return canonical.decode(payload)
    except canonical.CanonicalError as exc:
        raise WireError("payload is not canonical JSON: %s" % exc) from exc


def encode(value) -> bytes:
    return canonical.encode(value)


def operator_key_id(public_key: bytes) -> str:
    """The key id an operator signs commands under: derived from the key, so box and fleet agree on it."""
    return "op-" + keytext.box_id(public_key)


def status(box, session: int, online: bool, now: int, state=None) -> dict:
    """The retained status of a box, signed by it. `session` rises with every connection, so a last will left
    over from an older connection (lower session) is recognised as stale and ignored."""
    body = {"online": online, "session": session, "box_key": box.signing_public.hex(), "state": state or {}}
    return envelope.sign(STATUS_KIND, body, box.signing, box.box_id, now, session)


def verify_status(box_id: str, signed) -> dict:
    """The body of a status envelope from `box_id`. Its key travels in the body; it is accepted only because
    the box id is the hash of that key (a box cannot speak for another)."""
    if not isinstance(signed, dict) or not isinstance(signed.get("body"), dict):
        raise WireError("a status is a signed envelope")
    key_hex = signed["body"].get("box_key")
    try:
        key = bytes.fromhex(key_hex) if isinstance(key_hex, str) else b""
    except ValueError:
        key = b""
    if len(key) != 32 or keytext.box_id(key) != box_id or signed.get("key_id") != box_id:
        raise WireError("the status does not carry the key of box %s" % box_id)
    try:
        body = envelope.verify(signed, key)
    except envelope.EnvelopeError as exc:
        raise WireError("status of %s: %s" % (box_id, exc)) from exc
    if signed["kind"] != STATUS_KIND:
        raise WireError("a %s envelope on a status topic" % signed["kind"])
    return body


def box_key_from_status(box_id: str, signed) -> bytes:
    verify_status(box_id, signed)
    return bytes.fromhex(signed["body"]["box_key"])
