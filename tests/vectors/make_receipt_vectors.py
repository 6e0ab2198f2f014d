"""Write the receipt and rewards-report test vectors (docs/topics.md, "Receipts and rewards"). Deterministic:
Ed25519 signatures are.

python tests/vectors/make_receipt_vectors.py
"""

import dataclasses
import hashlib
import json
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire import canonical, envelope, keytext, receipt

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "receipt")
BOX = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"mipai receipt vector box").digest())
OTHER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"mipai receipt vector other").digest())
VERIFIER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"mipai receipt vector verifier").digest())
BOX_PUBLIC = BOX.public_key().public_bytes_raw()
BOX_ID = keytext.box_id(BOX_PUBLIC)
NOW = 1_800_000_000
# An attested print's member (the lines are tests/vectors/edge-attestation/good_start.json and good_end.json;
# the receipt's format checks only their shape, the verifier verifies them).
_EDGE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "edge-attestation")


def _edge_line(name: str) -> str:
    with open(os.path.join(_EDGE, name)) as handle:
        return json.load(handle)["line"]


ATTESTED = {
    "bridge_id": "02d404f31ea7edeb",
    "start": _edge_line("good_start.json"),
    "end": _edge_line("good_end.json"),
    "challenge_from": "verifier",
    "commands": 100000,
}

PRINT = receipt.Receipt(
    job_id="0f" * 16,
    license_id="1e" * 16,
    sealed_sha256="2d" * 32,
    print_number=3,
    started=NOW - 3600,
    ended=NOW - 60,
    outcome="done",
    lines=12345,
    filament_mm=4321,
    firmware_name="Marlin 2.1.2.4",
    machine_type="Prusa MK4",
    material="PLA",
    telemetry_first=101,
    telemetry_last=3642,
    telemetry_last_hash="3c" * 32,
)


def _raw(kind: str, body: dict, key=BOX, key_id: str = BOX_ID, seq: int = 1) -> bytes:
    return envelope.sign_encoded(kind, body, key, key_id, NOW, seq)[1]


def main() -> None:
    writer = receipt.receipt_writer(BOX, BOX_ID)
    first = receipt.sign_receipt(writer, PRINT, NOW)[1]
    second_print = dataclasses.replace(PRINT, print_number=4, outcome="cancelled", attestation=ATTESTED)
    second = receipt.sign_receipt(writer, second_print, NOW + 10)[1]
    body = dict(PRINT.body(), prev=receipt.GENESIS)
    vectors = {
        "good_first": (first, "ok"),
        "good_second_chained_with_attestation": (second, "ok"),
        "signed_by_another_key": (_raw(receipt.RECEIPT_KIND, body, OTHER), "bad signature"),
        "tampered_lines": (first.replace(b'"lines":12345', b'"lines":12346'), "bad signature"),
        "not_a_receipt_kind": (_raw("telemetry", body), "malformed"),
        "unknown_member": (_raw(receipt.RECEIPT_KIND, dict(body, tip=1)), "malformed"),
        "missing_outcome": (_raw(receipt.RECEIPT_KIND, {k: v for k, v in body.items() if k != "outcome"}), "malformed"),
        "unknown_outcome": (_raw(receipt.RECEIPT_KIND, dict(body, outcome="great")), "malformed"),
        "lines_is_text": (_raw(receipt.RECEIPT_KIND, dict(body, lines="12345")), "malformed"),
        "negative_filament": (_raw(receipt.RECEIPT_KIND, dict(body, filament_mm=-1)), "malformed"),
        "print_number_above_2_53": (_raw(receipt.RECEIPT_KIND, dict(body, print_number=2**53)), "malformed"),
        "ended_before_started": (_raw(receipt.RECEIPT_KIND, dict(body, ended=NOW - 7200)), "malformed"),
        "telemetry_span_reversed": (
            _raw(receipt.RECEIPT_KIND, dict(body, telemetry={"first": 9, "last": 8, "last_hash": "3c" * 32})),
            "malformed",
        ),
        "attestation_too_big": (_raw(receipt.RECEIPT_KIND, dict(body, attestation={"blob": "x" * 5000})), "malformed"),
        "good_attestation_error": (
            _raw(receipt.RECEIPT_KIND, dict(body, attestation={"error": "BridgeNotPaired: the bridge is not paired"})),
            "ok",
        ),
        "attestation_unknown_member": (
            _raw(receipt.RECEIPT_KIND, dict(body, attestation=dict(ATTESTED, fw="edge-1"))),
            "malformed",
        ),
        "attestation_not_a_reply_line": (
            _raw(receipt.RECEIPT_KIND, dict(body, attestation=dict(ATTESTED, end="ok"))),
            "malformed",
        ),
        "attestation_challenge_from_other": (
            _raw(receipt.RECEIPT_KIND, dict(body, attestation=dict(ATTESTED, challenge_from="owner"))),
            "malformed",
        ),
        "attestation_error_empty": (_raw(receipt.RECEIPT_KIND, dict(body, attestation={"error": ""})), "malformed"),
        "material_lower_case": (_raw(receipt.RECEIPT_KIND, dict(body, material="pla")), "malformed"),
        "receipt_number_zero": (_raw(receipt.RECEIPT_KIND, body, seq=0), "malformed"),
    }
    for name in os.listdir(HERE):
        if name.endswith(".json"):
            os.unlink(os.path.join(HERE, name))
    for name, (payload, expect) in sorted(vectors.items()):
        vector = {"box_public_key": BOX_PUBLIC.hex(), "box_id": BOX_ID, "payload": payload.decode(), "expect": expect}
        if expect == "ok":
            vector["receipt_hash"] = hashlib.sha256(payload).hexdigest()
            vector["box_key"] = hashlib.sha256(BOX_PUBLIC).hexdigest()
        _write(name, vector)
    report = receipt.rewards_body(
        BOX_ID, earned=2_150_000_000_000_000_000, paid=10**18, pending=1,
        receipts=[{"hash": hashlib.sha256(first).hexdigest(), "seq": 1, "state": "accepted", "reason": "",
                   "reward": 2_150_000_000_000_000_000},
                  {"hash": hashlib.sha256(second).hexdigest(), "seq": 2, "state": "pending",
                   "reason": "waiting for telemetry records 101 to 3642", "reward": 0}],
        transactions=[{"tx": "0x" + "ab" * 32, "amount": 10**18}],
        challenges=["5a" * 16, "a5" * 16],
    )  # fmt: skip
    signed = receipt.sign_rewards(report, VERIFIER, NOW, 7)[1]
    _write("rewards_report", {"verifier_public_key": VERIFIER.public_key().public_bytes_raw().hex(),
                              "box_id": BOX_ID, "payload": signed.decode(), "expect": "ok",
                              "report": canonical.decode(canonical.encode(report))})  # fmt: skip


def _write(name: str, vector: dict) -> None:
    with open(os.path.join(HERE, name + ".json"), "w") as handle:
        json.dump(vector, handle, indent=1, sort_keys=True)
        handle.write("\n")


if __name__ == "__main__":
    main()
