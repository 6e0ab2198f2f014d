"""HMAC-SHA256 (RFC 2104) on hashlib.sha256: MicroPython's unix and board ports have no hmac module."""

import hashlib

_BLOCK = 64


def _pad(key: bytes, byte: int) -> bytes:
    return bytes([k ^ byte for k in key])


def hmac_sha256(key: bytes, message: bytes) -> bytes:
    """The 32-byte HMAC-SHA256 of `message` under `key`."""
    if len(key) > _BLOCK:
        key = hashlib.sha256(key).digest()
    key = key + b"\x00" * (_BLOCK - len(key))
    inner = hashlib.sha256(_pad(key, 0x36))
    inner.update(message)
    outer = hashlib.sha256(_pad(key, 0x5C))
    outer.update(inner.digest())
    return outer.digest()


def equal(a: bytes, b: bytes) -> bool:
    """Compare two MACs in time that does not depend on where they differ."""
    if len(a) != len(b):
        return False
    difference = 0
    for index in range(len(a)):
        difference |= a[index] ^ b[index]
    return difference == 0
