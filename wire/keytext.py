"""Keys as text that survives copy and paste: `KIND:` + base64url(key bytes + 4-byte checksum), and box ids."""

import base64
import hashlib

BOX = "mipai-box"  # Ed25519 public key || X25519 public key
DESIGNER = "mipai-designer"
NETWORK = "mipai-network"
OPERATOR = "mipai-operator"  # Ed25519 public key of a fleet operator who signs commands
_SIZES = {BOX: 64, DESIGNER: 32, NETWORK: 32, OPERATOR: 32}


class KeyTextError(ValueError):
    """A pasted key that is malformed, of the wrong kind, or mistyped (its checksum fails)."""


def _checksum(kind: str, key: bytes) -> bytes:
    return hashlib.sha256(kind.encode() + b":" + key).digest()[:4]


def encode(kind: str, key: bytes) -> str:
    if len(key) != _SIZES[kind]:
        raise ValueError("a %s key is %d bytes" % (kind, _SIZES[kind]))
    return "%s:%s" % (kind, base64.urlsafe_b64encode(key + _checksum(kind, key)).decode().rstrip("="))


def decode(text: str, *kinds: str) -> tuple[str, bytes]:
    """Return (kind, key bytes) of a key text whose kind is one of `kinds` (any kind when none is given)."""
    text = text.strip()
    kind, colon, body = text.partition(":")
    if not colon or kind not in _SIZES:
        raise KeyTextError("not a key: expected text starting %s" % " or ".join(k + ":" for k in kinds or _SIZES))
    if kinds and kind not in kinds:
        raise KeyTextError("a %s key was given where a %s key is needed" % (kind, " or ".join(kinds)))
    try:
        raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
    except ValueError:
        raise KeyTextError("the %s key has characters that do not belong in it" % kind) from None
    key, check = raw[:-4], raw[-4:]
    if len(key) != _SIZES[kind] or check != _checksum(kind, key):
        raise KeyTextError("the %s key is mistyped or cut short (its checksum does not match)" % kind)
    return kind, key


def box_id(ed25519_public: bytes) -> str:
    """Short public name of a box: 10 bytes of SHA-256 of its Ed25519 key, base32, lower case (16 characters)."""
    return base64.b32encode(hashlib.sha256(ed25519_public).digest()[:10]).decode().lower()
