"""Sealing (the designer's side): compress, encrypt in 64 KiB chunks, wrap the file key, sign the header."""

import hashlib
import os

import zstandard
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey
from cryptography.hazmat.primitives.ciphers.aead import ChaCha20Poly1305

from secure_print import job_format
from secure_print.license import License
from secure_print.signer_key import SignerKey
from wire import keytext

DEFAULT_LEVEL = 3
_READ_BYTES = 1 << 20


def compressor(level: int) -> zstandard.ZstdCompressor:
    """A Zstandard compressor whose window fits the box's limit at every level."""
    parameters = zstandard.ZstdCompressionParameters.from_level(level)
    if 1 << parameters.window_log > job_format.MAX_WINDOW_BYTES:
        window_log = job_format.MAX_WINDOW_BYTES.bit_length() - 1
        parameters = zstandard.ZstdCompressionParameters.from_level(level, window_log=window_log)
    return zstandard.ZstdCompressor(compression_params=parameters)


def new_ids(random=os.urandom) -> tuple:
    """(job id, license id, watermark seed) as the license writes them."""
    return random(16).hex(), random(16).hex(), random(32).hex()


def seal(
    source,
    out,
    designer: SignerKey,
    recipients: list,
    license: License,
    certificate: bytes = b"",
    level: int = DEFAULT_LEVEL,
    on_progress=None,
    random=os.urandom,
) -> job_format.Header:
    """Seal the G-code read from binary file `source` into seekable binary file `out`.

    `recipients` are the boxes' X25519 public keys; the designer's own key is added so that the designer can
    inspect and trace the job. `on_progress(bytes_read)` is called as the source is read.
    """
    if license.designer != keytext.encode(keytext.DESIGNER, designer.public_bytes):
        raise ValueError("the license names another designer key than the one sealing")
    stanza_keys = [*recipients, designer.decrypting.public_key().public_bytes_raw()]
    if len(stanza_keys) > job_format.MAX_RECIPIENTS:
        raise ValueError("a job can name at most %d boxes" % (job_format.MAX_RECIPIENTS - 1))
    file_key = random(job_format.FILE_KEY_BYTES)
    salt = random(job_format.SALT_BYTES)
    stanzas = [
        job_format.wrap_file_key(file_key, key, X25519PrivateKey.from_private_bytes(random(32))) for key in stanza_keys
    ]
    sealed_license = job_format.seal_license(file_key, salt, license.encode())
    header = job_format.Header(
        job_id=bytes.fromhex(license.job_id),
        salt=salt,
        designer_key=designer.public_bytes,
        compressed_length=0,
        gcode_length=0,
        ciphertext_hash=bytes(32),
        stanzas=stanzas,
        certificate=certificate,
        sealed_license=sealed_license,
    )
    start = out.tell()
    out.write(bytes(len(header.unauthenticated_bytes()) + job_format.MAC_BYTES + job_format.SIGNATURE_BYTES))
    aead = ChaCha20Poly1305(job_format.payload_key(file_key, salt))
    digest = hashlib.sha256()
    index = 0
    pending = None
    gcode_length = compressed_length = 0

    def emit(chunk: bytes, last: bool) -> None:
        nonlocal index
        sealed = aead.encrypt(job_format.chunk_nonce(index, last), chunk, None)
        digest.update(sealed)
        out.write(sealed)
        index += 1

    chunker = compressor(level).chunker(chunk_size=job_format.CHUNK_BYTES)
    while True:
        data = source.read(_READ_BYTES)
        if not data:
            break
        gcode_length += len(data)
        for chunk in chunker.compress(data):
            if pending is not None:
                emit(pending, last=False)
            pending = chunk
            compressed_length += len(chunk)
        if on_progress is not None:
            on_progress(gcode_length)
    if gcode_length == 0:
        raise ValueError("the G-code file is empty")
    for chunk in chunker.finish():
        if pending is not None:
            emit(pending, last=False)
        pending = chunk
        compressed_length += len(chunk)
    emit(pending, last=True)
    header.compressed_length = compressed_length
    header.gcode_length = gcode_length
    header.ciphertext_hash = digest.digest()
    header.mac = job_format.header_mac(file_key, header)
    signature = designer.signing.sign(job_format.SIGNATURE_CONTEXT + header.to_bytes())
    end = out.tell()
    out.seek(start)
    out.write(header.to_bytes() + signature)
    out.seek(end)
    return header
