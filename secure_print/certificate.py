"""Designer certificates: a network key vouches for a designer key, a name and a validity window."""

import struct

from cryptography.exceptions import InvalidSignature
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey, Ed25519PublicKey

from secure_print.errors import HeaderError, SignatureError

MAGIC = b"MIPCERT1"
CONTEXT = b"mipjob/1 certificate\x00"
_FIXED = struct.Struct(">8s32s32sQQB")
MAX_NAME_BYTES = 64


class Certificate:
    def __init__(self, network_key: bytes, designer_key: bytes, not_before: int, not_after: int, name: str):
        self.network_key = network_key
        self.designer_key = designer_key
        self.not_before = not_before
        self.not_after = not_after
        self.name = name
        self.signature = b""

    def signed_part(self) -> bytes:
        name = self.name.encode()
        return (
            _FIXED.pack(MAGIC, self.network_key, self.designer_key, self.not_before, self.not_after, len(name)) + name
        )

    def to_bytes(self) -> bytes:
        return self.signed_part() + self.signature

    def verify(self) -> None:
        try:
            Ed25519PublicKey.from_public_bytes(self.network_key).verify(self.signature, CONTEXT + self.signed_part())
        except InvalidSignature:
            raise SignatureError("the designer certificate's signature does not verify") from None

    def valid_at(self, now: float) -> bool:
        return self.not_before <= now < self.not_after


def issue(network: Ed25519PrivateKey, designer_key: bytes, name: str, not_before: int, not_after: int) -> Certificate:
    encoded = name.encode()
    if not 1 <= len(encoded) <= MAX_NAME_BYTES:
        raise ValueError("a designer name is 1 to %d bytes of UTF-8" % MAX_NAME_BYTES)
    if not_before >= not_after:
        raise ValueError("the certificate must start before it expires")
    certificate = Certificate(network.public_key().public_bytes_raw(), designer_key, not_before, not_after, name)
    certificate.signature = network.sign(CONTEXT + certificate.signed_part())
    return certificate


def parse(data: bytes) -> Certificate:
    """Parse a certificate's bytes (its signature is checked by `verify`)."""
    if len(data) < _FIXED.size or data[:8] != MAGIC:
        raise HeaderError("the designer certificate is malformed")
    _, network, designer, not_before, not_after, name_length = _FIXED.unpack_from(data)
    if not 1 <= name_length <= MAX_NAME_BYTES or len(data) != _FIXED.size + name_length + 64:
        raise HeaderError("the designer certificate is malformed")
    try:
        name = data[_FIXED.size : _FIXED.size + name_length].decode()
    except UnicodeDecodeError:
        raise HeaderError("the designer certificate's name is not UTF-8") from None
    certificate = Certificate(network, designer, not_before, not_after, name)
    certificate.signature = data[-64:]
    return certificate
