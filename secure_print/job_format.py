"""Byte layout and key schedule of sealed jobs, version 1 (docs/sealed-job.md). Sans-I/O: bytes in, values out."""

import hashlib
import hmac
import struct

from cryptography.exceptions import InvalidTag
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey, X25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305
from cryptography.hazmat.primitives.kdf.hkdf import HKDF

from secure_print.errors import HeaderError

MAGIC = b"MIPJOB"
VERSION = 1
SUITE_X25519_CHACHA_ZSTD = 1
SUPPORTED_SUITES = frozenset({SUITE_X25519_CHACHA_ZSTD})
CHUNK_BYTES = 65536
MAX_WINDOW_BYTES = 8 * 1024 * 1024  # Zstandard window: what level 19 uses at most, and all a box allocates
TAG_BYTES = 16
FILE_KEY_BYTES = 16
SALT_BYTES = 16
ID_BYTES = 16
MAX_RECIPIENTS = 32
STANZA_BYTES = 64
MAX_CERTIFICATE_BYTES = 1024
MIN_LICENSE_BYTES = TAG_BYTES + 1
MAX_LICENSE_BYTES = 16384
MAX_LENGTH = 2**40
SIGNATURE_BYTES = 64
MAC_BYTES = 32
_FIXED = struct.Struct(">6sHHH16s16s32sQQ32sB")  # magic .. recipient count
MAX_HEADER_BYTES = (
    _FIXED.size + MAX_RECIPIENTS * STANZA_BYTES + 2 + MAX_CERTIFICATE_BYTES + 4 + MAX_LICENSE_BYTES + MAC_BYTES
)
SIGNATURE_CONTEXT = b"mipjob/1 signature\x00"
_ZERO_NONCE = bytes(12)


class Header:
    """The public, signed part of a sealed job."""

    def __init__(
        self,
        job_id: bytes,
        salt: bytes,
        designer_key: bytes,
        compressed_length: int,
        gcode_length: int,
        ciphertext_hash: bytes,
        stanzas: list,
        certificate: bytes,
        sealed_license: bytes,
        mac: bytes = b"",
        suite: int = SUITE_X25519_CHACHA_ZSTD,
    ) -> None:
        self.job_id = job_id
        self.salt = salt
        self.designer_key = designer_key
        self.compressed_length = compressed_length
        self.gcode_length = gcode_length
        self.ciphertext_hash = ciphertext_hash
        self.stanzas = stanzas  # [(ephemeral public key, wrapped file key)]
        self.certificate = certificate
        self.sealed_license = sealed_license
        self.mac = mac
        self.suite = suite

    @property
    def chunk_count(self) -> int:
        return chunk_count(self.compressed_length)

    @property
    def payload_length(self) -> int:
        return self.compressed_length + TAG_BYTES * self.chunk_count

    def unauthenticated_bytes(self) -> bytes:
        """Every header byte before the MAC."""
        parts = [
            _FIXED.pack(
                MAGIC,
                VERSION,
                self.suite,
                0,
                self.job_id,
                self.salt,
                self.designer_key,
                self.compressed_length,
                self.gcode_length,
                self.ciphertext_hash,
                len(self.stanzas),
            )
        ]
        parts.extend(ephemeral + wrapped for ephemeral, wrapped in self.stanzas)
        parts.append(struct.pack(">H", len(self.certificate)) + self.certificate)
        parts.append(struct.pack(">I", len(self.sealed_license)) + self.sealed_license)
        return b"".join(parts)

    def to_bytes(self) -> bytes:
        return self.unauthenticated_bytes() + self.mac


def chunk_count(compressed_length: int) -> int:
    return -(-compressed_length // CHUNK_BYTES)


def parse_header(data: bytes) -> tuple:
    """Parse the header and signature at the start of `data` (at least MAX_HEADER_BYTES + 64, or the whole file).

    Returns (header, signature, offset of the payload). Checks structure only: no key is needed.
    """
    if len(data) < len(MAGIC) or data[: len(MAGIC)] != MAGIC:
        raise HeaderError("not a sealed job (a .mipjob file starts with MIPJOB)")
    if len(data) < _FIXED.size:
        raise HeaderError("the file ends inside the job header")
    (_, version, suite, flags, job_id, salt, designer, compressed, gcode_length, digest, count) = _FIXED.unpack_from(
        data
    )
    if version != VERSION:
        raise HeaderError("sealed-job format version %d is not supported (this box reads version %d)" % (version, 1))
    if suite not in SUPPORTED_SUITES:
        raise HeaderError("cipher suite %d is not on this box's allow-list %s" % (suite, sorted(SUPPORTED_SUITES)))
    if flags:
        raise HeaderError("unknown header flags 0x%04x" % flags)
    if not 1 <= compressed <= MAX_LENGTH or not 1 <= gcode_length <= MAX_LENGTH:
        raise HeaderError("the header states impossible payload lengths")
    if not 1 <= count <= MAX_RECIPIENTS:
        raise HeaderError("the header names %d recipients (1 to %d allowed)" % (count, MAX_RECIPIENTS))
    offset = _FIXED.size
    stanzas = []
    for _ in range(count):
        stanza = _take(data, offset, STANZA_BYTES)
        stanzas.append((stanza[:32], stanza[32:]))
        offset += STANZA_BYTES
    (cert_length,) = struct.unpack(">H", _take(data, offset, 2))
    offset += 2
    if cert_length > MAX_CERTIFICATE_BYTES:
        raise HeaderError("the designer certificate is %d bytes (at most %d)" % (cert_length, MAX_CERTIFICATE_BYTES))
    certificate = _take(data, offset, cert_length)
    offset += cert_length
    (license_length,) = struct.unpack(">I", _take(data, offset, 4))
    offset += 4
    if not MIN_LICENSE_BYTES <= license_length <= MAX_LICENSE_BYTES:
        raise HeaderError("the sealed license is %d bytes (%d to %d)" % (license_length, 17, MAX_LICENSE_BYTES))
    sealed_license = _take(data, offset, license_length)
    offset += license_length
    mac = _take(data, offset, MAC_BYTES)
    offset += MAC_BYTES
    signature = _take(data, offset, SIGNATURE_BYTES)
    offset += SIGNATURE_BYTES
    header = Header(job_id, salt, designer, compressed, gcode_length, digest, stanzas, certificate, sealed_license)
    header.mac = mac
    header.suite = suite
    return header, signature, offset


def _take(data: bytes, offset: int, size: int) -> bytes:
    if offset + size > len(data):
        raise HeaderError("the file ends inside the job header")
    return data[offset : offset + size]


# -- key schedule ----------------------------------------------------------------------------------------------


def hkdf(ikm: bytes, salt: bytes, info: bytes) -> bytes:
    return HKDF(algorithm=hashes.SHA256(), length=32, salt=salt, info=info).derive(ikm)


def header_key(file_key: bytes, salt: bytes) -> bytes:
    return hkdf(file_key, salt, b"mipjob/1 header")


def license_key(file_key: bytes, salt: bytes) -> bytes:
    return hkdf(file_key, salt, b"mipjob/1 license")


def payload_key(file_key: bytes, salt: bytes) -> bytes:
    return hkdf(file_key, salt, b"mipjob/1 payload")


def header_mac(file_key: bytes, header: Header) -> bytes:
    return hmac.new(header_key(file_key, header.salt), header.unauthenticated_bytes(), hashlib.sha256).digest()


def wrap_file_key(file_key: bytes, recipient: bytes, ephemeral: X25519PrivateKey) -> tuple:
    """One recipient stanza: (ephemeral public key, wrapped file key)."""
    ephemeral_public = ephemeral.public_key().public_bytes_raw()
    shared = ephemeral.exchange(X25519PublicKey.from_public_bytes(recipient))
    key = hkdf(shared, ephemeral_public + recipient, b"mipjob/1 X25519")
    return ephemeral_public, ChaCha20Poly1305(key).encrypt(_ZERO_NONCE, file_key, None)


def unwrap_file_key(stanzas: list, identity: X25519PrivateKey):
    """The file key from the first stanza that opens with `identity`, or None."""
    own_public = identity.public_key().public_bytes_raw()
    for ephemeral_public, wrapped in stanzas:
        try:
            shared = identity.exchange(X25519PublicKey.from_public_bytes(ephemeral_public))
        except ValueError:  # a low-order point: all-zero shared secret
            continue
        key = hkdf(shared, ephemeral_public + own_public, b"mipjob/1 X25519")
        try:
            return ChaCha20Poly1305(key).decrypt(_ZERO_NONCE, wrapped, None)
        except InvalidTag:
            continue
    return None


def seal_license(file_key: bytes, salt: bytes, license_bytes: bytes) -> bytes:
    return ChaCha20Poly1305(license_key(file_key, salt)).encrypt(_ZERO_NONCE, license_bytes, None)


def open_license(file_key: bytes, salt: bytes, sealed: bytes):
    """The license bytes, or None when they do not authenticate."""
    try:
        return ChaCha20Poly1305(license_key(file_key, salt)).decrypt(_ZERO_NONCE, sealed, None)
    except InvalidTag:
        return None


def chunk_nonce(index: int, last: bool) -> bytes:
    return index.to_bytes(11, "big") + (b"\x01" if last else b"\x00")
