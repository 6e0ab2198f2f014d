"""Any change to a sealed job is refused with the format's own error before a line could reach a printer."""

import io
import os

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from secure_print import errors, job_format, opener
from tests.secure_print import boxkeys

with open(os.path.join(boxkeys.VECTORS, "good_two_boxes.mipjob"), "rb") as _handle:
    SMALL_JOB = _handle.read()
with open(os.path.join(boxkeys.VECTORS, "good.mipjob"), "rb") as _handle:
    LARGE_JOB = _handle.read()


def _outcome(data: bytes, trust) -> str:
    return boxkeys.outcome(io.BytesIO(data), trust)


def test_the_untouched_jobs_open(tmp_path):
    trust = boxkeys.trust_store(tmp_path)
    assert _outcome(SMALL_JOB, trust) == "ok"
    assert _outcome(LARGE_JOB, trust) == "ok"


def test_every_single_flipped_byte_is_refused(tmp_path):
    trust = boxkeys.trust_store(tmp_path)
    outcomes = {}
    for position in range(len(SMALL_JOB)):
        for bit in (0x01, 0x80):
            changed = bytearray(SMALL_JOB)
            changed[position] ^= bit
            outcome = _outcome(bytes(changed), trust)
            assert outcome != "ok", "flipping bit %#x of byte %d went unnoticed" % (bit, position)
            outcomes[outcome] = outcomes.get(outcome, 0) + 1
    # Header bytes fail the structure checks, the trust check or the signature; payload bytes fail authentication.
    assert set(outcomes) <= {"HeaderError", "SignatureError", "UntrustedKeyError", "PayloadError"}
    assert outcomes["PayloadError"] > len(SMALL_JOB)


def test_flips_in_every_chunk_of_a_large_job_are_refused(tmp_path):
    trust = boxkeys.trust_store(tmp_path)
    _header, _, offset = job_format.parse_header(LARGE_JOB)
    step = (len(LARGE_JOB) - offset) // 40
    for position in range(offset, len(LARGE_JOB), step):
        changed = bytearray(LARGE_JOB)
        changed[position] ^= 0x40
        assert _outcome(bytes(changed), trust) == "PayloadError"


def test_every_truncation_is_refused(tmp_path):
    trust = boxkeys.trust_store(tmp_path)
    for length in range(len(SMALL_JOB)):
        assert _outcome(SMALL_JOB[:length], trust) in {"HeaderError", "PayloadError"}, length


def test_appended_bytes_are_refused(tmp_path):
    trust = boxkeys.trust_store(tmp_path)
    for tail in (b"\x00", b"\n", SMALL_JOB[-16:], SMALL_JOB):
        assert _outcome(SMALL_JOB + tail, trust) == "PayloadError"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(st.binary(max_size=4096))
def test_junk_ends_only_in_the_formats_error(tmp_path, junk):
    assert _outcome(junk, boxkeys.trust_store_cached(tmp_path)) == "HeaderError"


@settings(max_examples=300, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(
    st.lists(
        st.tuples(
            st.sampled_from(["flip", "insert", "delete"]),
            st.integers(0, len(SMALL_JOB) - 1),
            st.binary(min_size=1, max_size=8),
        ),
        min_size=1,
        max_size=4,
    )
)
def test_mutated_jobs_end_only_in_the_formats_errors(tmp_path, edits):
    data = bytearray(SMALL_JOB)
    for kind, position, payload in edits:
        position %= max(len(data), 1)
        if kind == "flip":
            data[position] ^= payload[0] or 1
        elif kind == "insert":
            data[position:position] = payload
        else:
            del data[position : position + len(payload)]
    if bytes(data) == SMALL_JOB:
        return
    try:
        outcome = _outcome(bytes(data), boxkeys.trust_store_cached(tmp_path))
    except Exception as exc:  # anything but the format's errors is a bug in the reader
        raise AssertionError("%s escaped the reader: %r" % (type(exc).__name__, exc)) from exc
    assert outcome in {"HeaderError", "SignatureError", "UntrustedKeyError", "PayloadError"}


def test_junk_with_the_magic_is_still_a_header_error(tmp_path):
    trust = boxkeys.trust_store(tmp_path)
    assert _outcome(b"MIPJOB" + os.urandom(2000), trust) == "HeaderError"
    assert isinstance(errors.HeaderError("x"), errors.SealedJobError)


def test_a_job_changed_on_disk_after_verification_stops_the_stream_pass(tmp_path):
    path = tmp_path / "job.mipjob"
    path.write_bytes(LARGE_JOB)
    trust = boxkeys.trust_store(tmp_path)
    with open(path, "rb") as handle:
        job = boxkeys.verify(handle, trust)
        _header, _, offset = job_format.parse_header(LARGE_JOB)
        with open(path, "r+b") as writer:  # someone rewrites the second chunk while the job prints
            writer.seek(offset + job_format.CHUNK_BYTES + 100)
            writer.write(b"\x00" * 8)
        commands = opener.stream_commands(job, handle, boxkeys.BOX_ID, 1)
        with pytest.raises(errors.PayloadError, match="altered"):
            for _ in commands:
                pass
