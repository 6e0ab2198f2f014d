"""The job spool: a directory of sealed jobs, ciphertext only, named by job id.

Uploads are streamed into a temporary file inside the spool, bounded in size, checked to be a sealed job, and
only then renamed to `<job id>.mipjob`: the uploader's file name never becomes a path, and a failed upload
leaves nothing behind. The owner's own G-code is sealed to the box as it arrives.
"""

import hashlib
import os
import secrets
import time

from box.errors import BadInputError
from provisioning.identity import BoxIdentity
from secure_print import opener, seal
from secure_print.errors import PolicyError, SealedJobError
from secure_print.gcode_policy import LineChecker
from secure_print.license import GcodePolicy, License
from secure_print.signer_key import SignerKey
from wire import keytext

DEFAULT_MAX_BYTES = 512 * 1024 * 1024
_COPY_BYTES = 1 << 20
HUNDRED_YEARS = 100 * 365 * 86400


class SpoolError(BadInputError):
    """An upload the spool refuses; the message says why. Nothing was stored."""


def title_from(name: str) -> str:
    """A display title from an uploaded file name: its last path part, printable, at most 200 characters."""
    base = name.replace("\\", "/").rsplit("/", 1)[-1]
    cleaned = "".join(c for c in base if c.isprintable()).strip()
    return cleaned[:200] or "untitled"


class Spool:
    def __init__(self, directory: str, max_bytes: int = DEFAULT_MAX_BYTES) -> None:
        self.directory = directory
        self.max_bytes = max_bytes
        os.makedirs(directory, mode=0o700, exist_ok=True)

    def _temporary(self) -> str:
        return os.path.join(self.directory, ".upload-%s" % secrets.token_hex(8))

    def _finish(self, temporary: str, job_id: str) -> str:
        """Move a checked upload to its name; the same job uploaded again is kept once and may be queued again."""
        target = os.path.join(self.directory, job_id + ".mipjob")
        if os.path.exists(target):
            same = _digest(temporary) == _digest(target)
            os.unlink(temporary)
            if not same:
                raise SpoolError("another job with the id %s is already in the spool" % job_id)
            return target
        os.replace(temporary, target)
        return target

    def add_sealed(self, source) -> tuple:
        """Store a sealed job read from binary file `source`; return (job id, path). Raises SpoolError."""
        temporary = self._temporary()
        try:
            size = 0
            with open(temporary, "xb") as out:
                os.chmod(temporary, 0o600)
                while True:
                    data = source.read(_COPY_BYTES)
                    if not data:
                        break
                    size += len(data)
                    if size > self.max_bytes:
                        raise SpoolError(
                            "the upload is larger than the spool's limit of %d MB" % (self.max_bytes // 2**20)
                        )
                    out.write(data)
                out.flush()
                os.fsync(out.fileno())
            try:
                with open(temporary, "rb") as handle:
                    header, _signature, offset, size = opener.read_header(handle)
            except SealedJobError as exc:
                raise SpoolError("not a sealed job: %s" % exc) from None
            if size != offset + header.payload_length:
                raise SpoolError("the sealed job is incomplete or has extra bytes (upload cut short?)")
            return header.job_id.hex(), self._finish(temporary, header.job_id.hex())
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise

    def add_own_gcode(self, source, title: str, box: BoxIdentity, on_progress=None) -> tuple:
        """Seal the owner's G-code (binary file `source`) to this box; return (job id, path)."""
        owner = SignerKey(keytext.DESIGNER, box.signing, box.sealing)
        job_id, license_id, seed = seal.new_ids()
        now = int(time.time())
        terms = License(
            license_id=license_id,
            job_id=job_id,
            designer=owner.public_text,
            boxes=[box.box_id],
            max_prints=None,
            not_before=now - 86400,
            not_after=now + HUNDRED_YEARS,
            watermark_seed=seed,
            title=title_from(title),
        )
        temporary = self._temporary()
        try:
            with open(temporary, "xb") as out:
                os.chmod(temporary, 0o600)
                checked = _CheckedGcode(_Bounded(source, self.max_bytes))
                seal.seal(checked, out, owner, [box.sealing_public], terms, on_progress=on_progress)
                checked.finish()
                out.flush()
                os.fsync(out.fileno())
            return job_id, self._finish(temporary, job_id)
        except ValueError as exc:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise SpoolError(str(exc)) from None
        except BaseException:
            if os.path.exists(temporary):
                os.unlink(temporary)
            raise


def sealed_sha256(path: str) -> str:
    """SHA-256 (hex) of a whole spooled `.mipjob` file, as a print receipt names it."""
    return _digest(path).hex()


def _digest(path: str) -> bytes:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for block in iter(lambda: handle.read(_COPY_BYTES), b""):
            digest.update(block)
    return digest.digest()


class _CheckedGcode:
    """A reader that checks, as it reads, that every line could be sent to a printer (the one G-code parser,
    through the verify pass's screening); the owner's own G-code has no policy limits beyond that."""

    def __init__(self, source) -> None:
        self._source = source
        self._checker = LineChecker(GcodePolicy(max_hotend_c=500, max_bed_c=500, forbidden=(), max_chamber_c=500))

    def read(self, size: int) -> bytes:
        data = self._source.read(size)
        try:
            self._checker.feed(data)
        except PolicyError as exc:
            raise SpoolError("not a sealed job, and not G-code a printer accepts: %s" % exc) from None
        return data

    def finish(self) -> None:
        try:
            self._checker.finish()
        except PolicyError as exc:
            raise SpoolError("not a sealed job, and not G-code a printer accepts: %s" % exc) from None


class _Bounded:
    """A reader that refuses to read past `limit` bytes."""

    def __init__(self, source, limit: int) -> None:
        self._source = source
        self._left = limit

    def read(self, size: int) -> bytes:
        data = self._source.read(size)
        self._left -= len(data)
        if self._left < 0:
            raise SpoolError("the upload is larger than the spool's limit")
        return data
