"""The one signing envelope: canonical JSON, Ed25519, key id, timestamp and sequence number.

Usage records of prints use it now; telemetry, commands and receipts will use the same envelope.
"""

import base64

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from chain_client import canonical

CONTEXT = b"mipai/1 envelope\x00"
FIELDS = ("body", "key_id", "kind", "seq", "sig", "ts")


class EnvelopeError(ValueError):
    """An envelope that is malformed or whose signature does not verify."""


def sign(kind: str, body: dict, key: Ed25519PrivateKey, key_id: str, timestamp: int, sequence: int) -> dict:
    unsigned = {"body": body, "key_id": key_id, "kind": kind, "seq": sequence, "ts": timestamp}
    signature = key.sign(CONTEXT + canonical.encode(unsigned))
    return dict(unsigned, sig=base64.b64encode(signature).decode())


def verify(envelope: dict, public_key: bytes) -> dict:
    """Return the body of a well-formed envelope signed by `public_key`; raise EnvelopeError otherwise."""
    if not isinstance(envelope, dict) or sorted(envelope) != list(FIELDS):
        raise EnvelopeError("an envelope holds exactly %s" % ", ".join(FIELDS))
    unsigned = {name: envelope[name] for name in FIELDS if name != "sig"}
    try:
        signature = base64.b64decode(envelope["sig"], validate=True)
        Ed25519PublicKey.from_public_bytes(public_key).verify(signature, CONTEXT + canonical.encode(unsigned))
    except (ValueError, TypeError, InvalidSignature) as exc:
        raise EnvelopeError("the envelope's signature does not verify") from exc
    return envelope["body"]
