"""The one signing envelope (docs/envelope.md): canonical JSON, Ed25519, key id, timestamp, sequence number and
expiry. Usage records of prints use it now; telemetry, fleet commands, their results and receipts will too.
Sans-I/O: the caller passes the time in."""

import base64
import binascii
import json

import nacl.exceptions
import nacl.signing
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire import canonical

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
    return sign_encoded(kind, body, key, key_id, timestamp, sequence, expires)[0]


def sign_encoded(kind, body, key, key_id, timestamp, sequence, expires=None) -> tuple:
    """`sign`, also returning the envelope's canonical bytes (what is stored, hashed and sent), built from the
    signed bytes without encoding the record a second time."""
    unsigned = {"body": body, "exp": expires, "key_id": key_id, "kind": kind, "seq": sequence, "ts": timestamp}
    _check_fields(unsigned)
    encoded = canonical.encode(unsigned)
    sig = base64.b64encode(key.sign(CONTEXT + encoded)).decode()
    cut = encoded.rindex(b',"ts":')  # "sig" sorts between "seq" and "ts", the last member
    return dict(unsigned, sig=sig), encoded[:cut] + b',"sig":"' + sig.encode() + b'"' + encoded[cut:]


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
    return _verify(envelope, public_key, now, None)


def verify_encoded(data: bytes, public_key: bytes, now=None) -> dict:
    """`verify` for an envelope as it arrived (canonical JSON bytes); returns the whole envelope. Faster for
    receivers of many records: the signed bytes are the received bytes without the `sig` member, so nothing is
    encoded again."""
    try:
        envelope = canonical.decode(data)
    except canonical.CanonicalError as exc:
        raise EnvelopeError("not an envelope: %s" % exc) from exc
    _verify(envelope, public_key, now, data)
    return envelope


def _verify(envelope, public_key: bytes, now, data) -> dict:
    if not isinstance(envelope, dict) or sorted(envelope) != list(FIELDS):
        raise EnvelopeError("an envelope holds exactly %s" % ", ".join(FIELDS))
    _check_fields(envelope)
    try:
        if data is None:
            encoded = canonical.encode({name: envelope[name] for name in FIELDS if name != "sig"})
        else:
            # Canonical members are sorted and "ts" (an integer) follows "sig": the last occurrence is the member.
            member = b',"sig":' + json.dumps(envelope["sig"]).encode()
            cut = data.rindex(member)
            encoded = data[:cut] + data[cut + len(member) :]
        signature = base64.b64decode(envelope["sig"], validate=True)
        if base64.b64encode(signature).decode() != envelope["sig"]:
            raise ValueError("non-canonical base64")
        # libsodium verifies about 1.6 times faster than OpenSSL here: the fleet checks every record it receives
        nacl.signing.VerifyKey(public_key).verify(CONTEXT + encoded, signature)
    except (ValueError, TypeError, binascii.Error, nacl.exceptions.CryptoError, canonical.CanonicalError) as exc:
        raise EnvelopeError("the envelope's signature does not verify") from exc
    if now is not None and envelope["exp"] is not None and now >= envelope["exp"]:
        raise EnvelopeError("the envelope expired")
    return envelope["body"]
