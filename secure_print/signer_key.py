"""A designer's or a network's secret key file, and writing secret files safely."""

import base64
import hashlib
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from wire import keytext

_HEADERS = {
    keytext.DESIGNER: "MIPAI-DESIGNER-SECRET-KEY",
    keytext.NETWORK: "MIPAI-NETWORK-SECRET-KEY",
    keytext.OPERATOR: "MIPAI-OPERATOR-SECRET-KEY",
}


class SignerKeyError(ValueError):
    """A secret key file that cannot be used."""


class SignerKey:
    """Ed25519 signing key, plus (for designers) an X25519 key so the designer can reopen their own jobs."""

    def __init__(self, kind: str, signing: Ed25519PrivateKey, decrypting: X25519PrivateKey) -> None:
        self.kind = kind
        self.signing = signing
        self.decrypting = decrypting

    @classmethod
    def generate(cls, kind: str) -> "SignerKey":
        return cls(kind, Ed25519PrivateKey.generate(), X25519PrivateKey.generate())

    @property
    def public_bytes(self) -> bytes:
        return self.signing.public_key().public_bytes_raw()

    @property
    def public_text(self) -> str:
        return keytext.encode(self.kind, self.public_bytes)

    def to_text(self) -> str:
        secret = self.signing.private_bytes_raw() + self.decrypting.private_bytes_raw()
        check = hashlib.sha256(_HEADERS[self.kind].encode() + secret).digest()[:4]
        body = base64.urlsafe_b64encode(secret + check).decode().rstrip("=")
        return "# public key: %s\n%s:%s\n" % (self.public_text, _HEADERS[self.kind], body)

    @classmethod
    def from_text(cls, text: str) -> "SignerKey":
        for line in text.splitlines():
            name, colon, body = line.strip().partition(":")
            kind = next((k for k, header in _HEADERS.items() if header == name), None)
            if not colon or kind is None:
                continue
            try:
                raw = base64.urlsafe_b64decode(body + "=" * (-len(body) % 4))
            except ValueError:
                raw = b""
            secret, check = raw[:64], raw[64:]
            if len(raw) != 68 or hashlib.sha256(name.encode() + secret).digest()[:4] != check:
                raise SignerKeyError("the secret key is damaged (its checksum does not match)")
            return cls(
                kind,
                Ed25519PrivateKey.from_private_bytes(secret[:32]),
                X25519PrivateKey.from_private_bytes(secret[32:]),
            )
        raise SignerKeyError("not a secret key file (no MIPAI-...-SECRET-KEY line)")

    @classmethod
    def load(cls, path: str) -> "SignerKey":
        try:
            with open(path, encoding="utf-8") as handle:
                return cls.from_text(handle.read(4096))
        except (OSError, UnicodeDecodeError) as exc:
            raise SignerKeyError("cannot read the secret key %s: %s" % (path, getattr(exc, "strerror", exc))) from exc


def write_secret_file(path: str, data: bytes) -> None:
    """Create `path` readable by its owner only; never overwrite an existing key."""
    descriptor = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    try:
        os.write(descriptor, data)
        os.fsync(descriptor)
    finally:
        os.close(descriptor)
