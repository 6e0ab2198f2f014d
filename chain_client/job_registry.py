"""The registry of jobs the platform issued (`mipai-chain jobs add`): from a sealed job's public header, its job id
and the SHA-256 of the whole file; the license id, the line count and the time estimate are not in the public
header (the license is sealed), so the platform that sealed the job gives them (`--license-id`, or the G-code it
sealed with `--gcode`, from which the lines and the estimate are computed). Nothing is decrypted here."""

import hashlib
import re

from chain_client.verifier import JobEntry
from firmware_bridge import gcode, gcode_time
from secure_print import opener
from secure_print.errors import HeaderError

_HEX32 = re.compile(r"[0-9a-f]{32}\Z")
_READ_BYTES = 1024 * 1024


class JobFileError(ValueError):
    """A file that is not a whole sealed job, or facts about it that do not fit; the message says which."""


def read_sealed(path: str) -> tuple:
    """(job id, SHA-256 of the whole file) of a sealed job, after checking its header and length."""
    try:
        with open(path, "rb") as handle:
            header, _signature, offset, size = opener.read_header(handle)
            expected = offset + header.payload_length
            if size != expected:
                raise JobFileError("%s is %d bytes but its header states %d: it was %s" % (
                    path, size, expected, "cut short" if size < expected else "extended"))  # fmt: skip
            handle.seek(0)
            digest = hashlib.sha256()
            while block := handle.read(_READ_BYTES):
                digest.update(block)
    except HeaderError as exc:
        raise JobFileError("%s: %s" % (path, exc)) from exc
    except OSError as exc:
        raise JobFileError("cannot read %s: %s" % (path, exc.strerror or exc)) from exc
    return header.job_id.hex(), digest.hexdigest()


def gcode_facts(path: str) -> tuple:
    """(source line of the last command, estimated seconds) of the plaintext G-code the platform sealed."""
    try:
        with open(path, "rb") as handle:
            result = gcode_time.estimate(gcode.iter_commands(handle))
    except gcode.GcodeError as exc:
        raise JobFileError("%s: %s" % (path, exc)) from exc
    except OSError as exc:
        raise JobFileError("cannot read %s: %s" % (path, exc.strerror or exc)) from exc
    if result.last_line == 0:
        raise JobFileError("%s holds no G-code command" % path)
    return result.last_line, int(result.seconds)


def job_entry(sealed_path: str, license_id=None, gcode_path=None, lines=None, estimate_s=None) -> JobEntry:
    """The registry entry for a sealed job; `lines` and `estimate_s` given directly win over the G-code's."""
    job_id, digest = read_sealed(sealed_path)
    if license_id is not None and not _HEX32.match(license_id):
        raise JobFileError("a license id is 32 lower-case hex digits")
    if gcode_path is not None:
        counted, estimated = gcode_facts(gcode_path)
        lines = counted if lines is None else lines
        estimate_s = estimated if estimate_s is None else estimate_s
    for name, value in (("lines", lines), ("estimate", estimate_s)):
        if value is not None and not 0 < value <= 2**53 - 1:
            raise JobFileError("the %s must be a whole number above 0" % name)
    return JobEntry(job_id, digest, license_id, lines, estimate_s)


__all__ = ["JobEntry", "JobFileError", "gcode_facts", "job_entry", "read_sealed"]
