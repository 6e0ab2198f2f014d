"""Opening a sealed job on the box: the verify pass (nothing reaches the printer), then the stream pass.

The verify pass authenticates every byte and checks every line before the first line is sent, because a
streaming decrypt alone could print half of a tampered job. The stream pass decrypts the same chunks again, in
memory only, and yields watermarked commands for the printer link.
"""

import hashlib
import hmac
import io
import os

import zstandard
from cryptography.exceptions import InvalidSignature, InvalidTag
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PublicKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from firmware_bridge import gcode
from secure_print import job_format
from secure_print import license as licenses
from secure_print.errors import (
    DecompressionError,
    HeaderError,
    NotForThisBoxError,
    PayloadError,
    SignatureError,
)
from secure_print.gcode_policy import LineChecker
from secure_print.watermark import Watermarker
from wire import keytext

MAX_GCODE_BYTES = 2 * 1024**3
MAX_RATIO = 250
_BLOCK_BYTES = 256 * 1024


class OpenedJob:
    """A job whose header, signature and license have been checked; `verified` once its payload has been too."""

    def __init__(self, header, license, file_key: bytes, payload_offset: int, vouched_by: str) -> None:
        self.header = header
        self.license = license
        self.payload_offset = payload_offset
        self.vouched_by = vouched_by
        self.source_lines = None  # known once the payload is verified
        self._payload_key = job_format.payload_key(file_key, header.salt)

    @property
    def job_id(self) -> str:
        return self.header.job_id.hex()

    def chunks(self, handle, digest=None):
        """Yield the decrypted chunks of the payload read from `handle`, raising PayloadError on any change."""
        aead = ChaCha20Poly1305(self._payload_key)
        handle.seek(self.payload_offset)
        remaining = self.header.compressed_length
        count = self.header.chunk_count
        for index in range(count):
            size = min(job_format.CHUNK_BYTES, remaining)
            sealed = handle.read(size + job_format.TAG_BYTES)
            if len(sealed) != size + job_format.TAG_BYTES:
                raise PayloadError("the job file ends early: it was cut short")
            if digest is not None:
                digest.update(sealed)
            try:
                chunk = aead.decrypt(job_format.chunk_nonce(index, index == count - 1), sealed, None)
            except InvalidTag:
                raise PayloadError("the encrypted G-code failed authentication: the job file was altered") from None
            remaining -= size
            yield chunk


def read_header(handle) -> tuple:
    """(header, signature, payload offset, file size) of the job in binary file `handle`; structure only."""
    handle.seek(0, os.SEEK_END)
    size = handle.tell()
    handle.seek(0)
    prefix = handle.read(job_format.MAX_HEADER_BYTES + job_format.SIGNATURE_BYTES)
    header, signature, offset = job_format.parse_header(prefix)
    return header, signature, offset, size


def open_job(handle, sealing_key, box_id: str, trust, now: float, also_trusted=()) -> OpenedJob:
    """Steps 1 to 5 of docs/sealed-job.md "Opening": everything but the payload, the counter and the printer."""
    header, signature, offset, size = read_header(handle)
    vouched_by = trust.check_designer(header.designer_key, header.certificate, now, also_trusted)
    try:
        Ed25519PublicKey.from_public_bytes(header.designer_key).verify(
            signature, job_format.SIGNATURE_CONTEXT + header.to_bytes()
        )
    except InvalidSignature:
        raise SignatureError("the designer's signature does not verify: the job header was altered") from None
    file_key, license = unseal(header, sealing_key, "this job was not sealed for this box (box id %s)" % box_id)
    if box_id not in license.boxes:
        raise NotForThisBoxError("the license does not name this box (box id %s)" % box_id)
    license.check_time(now)
    expected = offset + header.payload_length
    if size != expected:
        raise PayloadError(
            "the job file is %d bytes but its header states %d: it was %s"
            % (size, expected, "cut short" if size < expected else "extended")
        )
    return OpenedJob(header, license, file_key, offset, vouched_by)


def unseal(header, key, not_for_key: str) -> tuple:
    """(file key, license) of a header, opened with X25519 `key` (a box's, or the designer's own)."""
    file_key = job_format.unwrap_file_key(header.stanzas, key)
    if file_key is None:
        raise NotForThisBoxError(not_for_key)
    if not hmac.compare_digest(job_format.header_mac(file_key, header), header.mac):
        raise HeaderError("the job header does not authenticate with its file key")
    license_bytes = job_format.open_license(file_key, header.salt, header.sealed_license)
    if license_bytes is None:
        raise HeaderError("the sealed license does not authenticate")
    license = licenses.parse(license_bytes)
    if license.job_id != header.job_id.hex():
        raise HeaderError("the license belongs to another job")
    if license.designer != keytext.encode(keytext.DESIGNER, header.designer_key):
        raise HeaderError("the license was issued by another designer than the one who signed the job")
    return file_key, license


class _IteratorFile(io.RawIOBase):
    """A read-only raw file over an iterator of byte strings (decrypted chunks, decompressed blocks)."""

    def __init__(self, pieces) -> None:
        self._pieces = pieces
        self._pending = memoryview(b"")

    def readable(self) -> bool:
        return True

    def readinto(self, buffer) -> int:
        while not self._pending:
            piece = next(self._pieces, None)
            if piece is None:
                return 0
            self._pending = memoryview(piece)
        size = min(len(buffer), len(self._pending))
        buffer[:size] = self._pending[:size]
        self._pending = self._pending[size:]
        return size


def _check_lengths(header, max_gcode_bytes: int, max_ratio: int) -> None:
    if header.gcode_length > max_gcode_bytes:
        raise DecompressionError(
            "the G-code would be %d bytes, above this box's limit of %d" % (header.gcode_length, max_gcode_bytes)
        )
    if header.gcode_length > max_ratio * header.compressed_length:
        raise DecompressionError(
            "the G-code would expand %d times, above the limit of %d (a decompression bomb?)"
            % (header.gcode_length // header.compressed_length, max_ratio)
        )


def _decompressed_blocks(job: OpenedJob, handle, digest=None):
    raw = _IteratorFile(job.chunks(handle, digest))
    decompressor = zstandard.ZstdDecompressor(max_window_size=job_format.MAX_WINDOW_BYTES)
    reader = decompressor.stream_reader(raw, read_size=job_format.CHUNK_BYTES, read_across_frames=True)
    produced = 0
    while True:
        try:
            block = reader.read(_BLOCK_BYTES)
        except zstandard.ZstdError as exc:
            raise DecompressionError("the G-code does not decompress: %s" % exc) from None
        if not block:
            break
        produced += len(block)
        if produced > job.header.gcode_length:
            raise DecompressionError("the G-code decompresses to more than the %d bytes stated" % produced)
        yield block
    if produced != job.header.gcode_length:
        raise DecompressionError(
            "the G-code decompresses to %d bytes, not the %d stated" % (produced, job.header.gcode_length)
        )


def verify_payload(
    job: OpenedJob, handle, on_progress=None, max_gcode_bytes=MAX_GCODE_BYTES, max_ratio=MAX_RATIO
) -> int:
    """Steps 6 to 8: authenticate every chunk, decompress to the end, check every line. Returns the line count.

    `on_progress(gcode_bytes_checked)` is called after each block.
    """
    _check_lengths(job.header, max_gcode_bytes, max_ratio)
    digest = hashlib.sha256()
    checker = LineChecker(job.license.policy)
    checked = 0
    for block in _decompressed_blocks(job, handle, digest):
        checker.feed(block)
        checked += len(block)
        if on_progress is not None:
            on_progress(checked)
    checker.finish()
    if digest.digest() != job.header.ciphertext_hash:
        raise PayloadError("the encrypted G-code does not match the hash the designer signed")
    job.source_lines = checker.lines
    return checker.lines


def stream_commands(job: OpenedJob, handle, box_id: str, print_number: int):
    """Yield (source line, watermarked command) of a verified job; the plaintext exists only in this generator."""
    if job.source_lines is None:
        raise RuntimeError("verify_payload must pass before the stream pass")
    marker = Watermarker(bytes.fromhex(job.license.watermark_seed), box_id, print_number)
    plaintext = io.BufferedReader(_IteratorFile(_decompressed_blocks(job, handle)), buffer_size=_BLOCK_BYTES)
    mark = marker.mark
    for line_number, command in gcode.iter_commands(plaintext):
        yield line_number, mark(command)
