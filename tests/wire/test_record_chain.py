"""Hash-chained records: a dropped, edited, forged or reordered record shows; duplicates are not counted twice;
a writer that restarts from its persisted head continues the chain."""

import hashlib

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire import canonical, envelope
from wire.record_chain import GENESIS, ChainError, ChainVerifier, ChainWriter

KEY = Ed25519PrivateKey.generate()
PUBLIC = KEY.public_key().public_bytes_raw()


def _records(count: int, writer=None) -> list:
    writer = writer or ChainWriter("telemetry", KEY, "box-1")
    return [writer.next({"hotend": 200 + n}, 1_800_000_000 + n) for n in range(count)]


def _verifier() -> ChainVerifier:
    return ChainVerifier(PUBLIC, "box-1", "telemetry")


def test_a_whole_chain_verifies_in_any_order_and_duplicates_are_recognised():
    records = _records(6)
    verifier = _verifier()
    for signed in reversed(records):
        assert verifier.accept(signed) == "ok"
    assert verifier.accept(records[2]) == "duplicate"
    assert verifier.gaps() == []


def test_a_dropped_record_is_a_gap():
    records = _records(5)
    verifier = _verifier()
    for signed in records[:2] + records[3:]:
        verifier.accept(signed)
    assert verifier.gaps() == [3]


def test_an_edited_or_replaced_record_is_refused():
    records = _records(4)
    verifier = _verifier()
    edited = dict(records[1], body=dict(records[1]["body"], hotend=999))
    with pytest.raises(envelope.EnvelopeError):
        verifier.accept(edited)
    verifier.accept(records[0])
    verifier.accept(records[2])
    # A record re-signed by the box's key but not the one that was chained (say, rewritten history):
    impostor = ChainWriter("telemetry", KEY, "box-1", last_sequence=1, last_hash=GENESIS).next({"hotend": 1}, 5)
    with pytest.raises(ChainError, match="edited or forged"):
        verifier.accept(impostor)
    with pytest.raises(ChainError, match="edited or forged"):
        verifier.accept(impostor)  # refused again: a refused record is not remembered
    assert verifier.accept(records[1]) == "ok"  # the genuine record 2 still fits
    with pytest.raises(ChainError, match="two different records claim number 2"):
        verifier.accept(impostor)


def test_the_chain_continues_across_a_restart():
    first = ChainWriter("telemetry", KEY, "box-1")
    records = _records(3, first)
    restarted = ChainWriter("telemetry", KEY, "box-1", last_sequence=first.sequence, last_hash=first.head)
    records += _records(2, restarted)
    verifier = _verifier()
    assert [verifier.accept(signed) for signed in records] == ["ok"] * 5
    assert [signed["seq"] for signed in records] == [1, 2, 3, 4, 5]


def test_records_of_another_signer_or_kind_do_not_join_the_chain():
    stranger = ChainWriter("telemetry", KEY, "box-2").next({}, 1)
    with pytest.raises(ChainError, match="in the chain of box-1"):
        _verifier().accept(stranger)


def test_prev_is_lower_case_hex_sha256_of_the_whole_envelope_and_starts_at_zeros():
    key = Ed25519PrivateKey.generate()
    writer = ChainWriter("telemetry", key, "box-1")
    first, second = writer.next({"n": 1}, 100), writer.next({"n": 2}, 101)
    assert GENESIS == "0" * 64 and first["body"]["prev"] == GENESIS
    assert second["body"]["prev"] == hashlib.sha256(canonical.encode(first)).hexdigest()
    assert "sig" in first and second["body"]["prev"] == second["body"]["prev"].lower()
