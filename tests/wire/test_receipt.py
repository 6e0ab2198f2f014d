"""Receipts and rewards reports: every vector verifies or is refused for its stated reason, the builder refuses
bad values without moving the chain, and receipts chain to each other."""

import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire import envelope, keytext, receipt
from wire.record_chain import ChainVerifier, record_hash

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors", "receipt")
FILES = sorted(name for name in os.listdir(VECTORS) if name.endswith(".json") and name != "rewards_report.json")


def _load(name: str) -> dict:
    with open(os.path.join(VECTORS, name)) as handle:
        return json.load(handle)


def test_vectors_cover_every_outcome():
    assert {_load(name)["expect"] for name in FILES} == {"ok", "bad signature", "malformed"}


@pytest.mark.parametrize("name", FILES)
def test_receipt_vector(name):
    vector = _load(name)
    payload, public = vector["payload"].encode(), bytes.fromhex(vector["box_public_key"])
    if vector["expect"] == "ok":
        signed, parsed = receipt.read_receipt(payload, public, vector["box_id"])
        assert receipt.receipt_hash(payload) == vector["receipt_hash"] == record_hash(signed)
        assert receipt.box_key_hash(public).hex() == vector["box_key"]
        assert keytext.box_id(public) == vector["box_id"]
        assert parsed.body() == {k: v for k, v in signed["body"].items() if k != "prev"}
    elif vector["expect"] == "bad signature":
        with pytest.raises(envelope.EnvelopeError, match="does not verify"):
            receipt.read_receipt(payload, public, vector["box_id"])
    else:
        with pytest.raises(receipt.ReceiptError):
            receipt.read_receipt(payload, public, vector["box_id"])


def test_the_two_good_vectors_form_a_receipt_chain():
    first, second = _load("good_first.json"), _load("good_second_chained_with_attestation.json")
    public = bytes.fromhex(first["box_public_key"])
    chain = ChainVerifier(public, first["box_id"], receipt.RECEIPT_KIND)
    assert chain.accept_encoded(second["payload"].encode())[0] == "ok"
    assert chain.accept_encoded(first["payload"].encode())[0] == "ok"
    assert chain.accept_encoded(first["payload"].encode())[0] == "duplicate"
    assert json.loads(second["payload"])["body"]["prev"] == first["receipt_hash"]


def test_rewards_vector():
    vector = _load("rewards_report.json")
    report = receipt.read_rewards(vector["payload"].encode(), bytes.fromhex(vector["verifier_public_key"]),
                                  vector["box_id"])  # fmt: skip
    assert report["earned"] == 2_150_000_000_000_000_000 and report["paid"] == 10**18
    assert [r["state"] for r in report["receipts"]] == ["accepted", "pending"]
    assert report["challenges"] == ["5a" * 16, "a5" * 16]  # the verifier's attestation challenges for the box
    with pytest.raises(receipt.ReceiptError, match="not"):
        receipt.read_rewards(vector["payload"].encode(), bytes.fromhex(vector["verifier_public_key"]), "a" * 16)
    with pytest.raises(envelope.EnvelopeError):
        receipt.read_rewards(vector["payload"].encode(), bytes(32), vector["box_id"])


def _print(**changes) -> receipt.Receipt:
    base = dict(job_id="ab" * 16, license_id="cd" * 16, sealed_sha256="ef" * 32, print_number=1, started=100,
                ended=200, outcome="done", lines=10, filament_mm=5, firmware_name="Marlin", machine_type="X",
                material="PETG", telemetry_first=1, telemetry_last=3, telemetry_last_hash="00" * 32)  # fmt: skip
    return receipt.Receipt(**dict(base, **changes))


@pytest.mark.parametrize(
    ("changes", "message"),
    [
        ({"outcome": "ok"}, "outcome must be"),
        ({"lines": -1}, "lines must be"),
        ({"lines": True}, "lines must be"),
        ({"ended": 50}, "ended .* before it started"),
        ({"job_id": "AB" * 16}, "job_id must be"),
        ({"material": "pla"}, "material"),
        ({"machine_type": "x" * 201}, "MACHINE_TYPE"),
        ({"attestation": {"a": "b" * 5000}}, "attestation is over"),
        ({"attestation": ["list"]}, "attestation must be an object"),
        ({"telemetry_first": 0}, "telemetry.first"),
    ],
)
def test_the_builder_refuses_bad_values_and_leaves_the_chain_as_it_was(changes, message):
    key = Ed25519PrivateKey.generate()
    writer = receipt.receipt_writer(key, "boxid", 4, "77" * 32)
    with pytest.raises(receipt.ReceiptError, match=message):
        receipt.sign_receipt(writer, _print(**changes), 300)
    assert (writer.sequence, writer.head) == (4, "77" * 32)
    signed, encoded = receipt.sign_receipt(writer, _print(), 300)
    assert signed["seq"] == 5 and signed["body"]["prev"] == "77" * 32 and writer.head == receipt.receipt_hash(encoded)


def test_a_telemetry_writer_cannot_sign_receipts():
    from wire.record_chain import ChainWriter

    with pytest.raises(receipt.ReceiptError, match="receipts are signed by"):
        receipt.sign_receipt(ChainWriter("telemetry", Ed25519PrivateKey.generate(), "b"), _print(), 1)


def test_rewards_report_refuses_paid_above_earned_and_bad_amounts():
    with pytest.raises(receipt.ReceiptError, match="paid must not exceed"):
        receipt.rewards_body("a" * 16, earned=1, paid=2, pending=0, receipts=[], transactions=[])
    with pytest.raises(receipt.ReceiptError, match="decimal digits"):
        receipt.parse_rewards({"box_id": "a" * 16, "earned": "01", "paid": "0", "pending": 0, "receipts": [],
                               "transactions": []})  # fmt: skip


def test_rewards_report_refuses_malformed_or_too_many_challenges():
    report = {"box_id": "a" * 16, "earned": "0", "paid": "0", "pending": 0, "receipts": [], "transactions": []}
    assert receipt.parse_rewards(report)["challenges"] == []  # a report without challenges, as before
    with pytest.raises(receipt.ReceiptError, match="at most 8"):
        receipt.parse_rewards(dict(report, challenges=["ab" * 16] * 9))
    with pytest.raises(receipt.ReceiptError, match="32 hex digits"):
        receipt.parse_rewards(dict(report, challenges=["AB" * 16]))
