"""The one signing envelope (docs/envelope.md): canonical JSON, Ed25519, key id, timestamp, sequence number and
expiry. Usage records of prints use it now; telemetry, fleet commands, their results and receipts will too.
Sans-I/O: the caller passes the time in."""

import base64
import binascii

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from chain_client import canonical

CONTEXT = b"mipai/1 envelope\x00"
FIELDS = ("body", "exp", "key_id", "kind", "seq", "sig", "ts")
MAX_TEXT = 200
MAX_SEQUENCE = 2**53 - 1  # what every JSON reader can hold exactly


class EnvelopeError(ValueError):
    """An envelope that is malformed, whose signature does not verify, or that has expired."""


def sign(
    kind: str,
    body: dict,
    key: Ed25519PrivateKey,
    key_id: str,
    timestamp: int,
    sequence: int,
    expires=None,
) -> dict:
    """An envelope of `body`; `expires` (Unix seconds) or None for records that never expire."""
    unsigned = {"body": body, "exp": expires, "key_id": key_id, "kind": kind, "seq": sequence, "ts": timestamp}
    _check_fields(unsigned)
    signature = key.sign(CONTEXT + canonical.encode(unsigned))
    return dict(unsigned, sig=base64.b64encode(signature).decode())


def _check_fields(envelope: dict) -> None:
    for name in ("kind", "key_id"):
        value = envelope[name]
        if not isinstance(value, str) or not 0 < len(value) <= MAX_TEXT:
            raise EnvelopeError("%s must be text of 1 to %d characters" % (name, MAX_TEXT))
    for name in ("ts", "seq"):
        value = envelope[name]
        if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value <= MAX_SEQUENCE:
            raise EnvelopeError("%s must be a whole number from 0 to 2^53 - 1" % name)
    expires = envelope["exp"]
    if expires is not None and (not isinstance(expires, int) or isinstance(expires, bool) or expires < 0):
        raise EnvelopeError("exp must be null or Unix seconds")
    if not isinstance(envelope["body"], dict):
        raise EnvelopeError("body must be an object")


def verify(envelope, public_key: bytes, now=None) -> dict:
    """Return the body of a well-formed envelope signed by `public_key`, not expired at `now` (when given);
    raise EnvelopeError otherwise."""
    if not isinstance(envelope, dict) or sorted(envelope) != list(FIELDS):
        raise EnvelopeError("an envelope holds exactly %s" % ", ".join(FIELDS))
    _check_fields(envelope)
    unsigned = {name: envelope[name] for name in FIELDS if name != "sig"}
    try:
        encoded = canonical.encode(unsigned)
        signature = base64.b64decode(envelope["sig"], validate=True)
        if base64.b64encode(signature).decode() != envelope["sig"]:
            raise ValueError("non-canonical base64")
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, CONTEXT + encoded)
    except (ValueError, TypeError, binascii.Error, InvalidSignature, canonical.CanonicalError) as exc:
        raise EnvelopeError("the envelope's signature does not verify") from exc
    if now is not None and envelope["exp"] is not None and now >= envelope["exp"]:
        raise EnvelopeError("the envelope expired")
    return envelope["body"]
