"""The verifier weighs a receipt by its edge attestation: 100 % when the bridge attested against the verifier's
own challenges, 75 % against the box's own, 50 % with the reason otherwise. Every vector in
tests/vectors/attestation-weighing/, then the whole path through the ledger: challenges issued in the rewards
report, `mipai-chain bridges add`, a valid receipt paid in full, its attestation replayed in another paid half."""

import dataclasses
import json
import os

import pytest

from chain_client import attestation_weighing, cli, rewards, verifier
from chain_client.ledger import Ledger
from firmware_bridge import edge_pairing
from firmware_bridge.edge import attest
from tests.chain_client.boxsim import T0, SimBox, new_job
from wire import receipt

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors", "attestation-weighing")
FILES = sorted(name for name in os.listdir(VECTORS) if name.endswith(".json"))
KEY = bytes(range(32))
BASE = receipt.Receipt(
    job_id="0f" * 16, license_id="1e" * 16, sealed_sha256="2d" * 32, print_number=1, started=T0, ended=T0 + 3600,
    outcome="done", lines=0, filament_mm=0, firmware_name="Marlin", machine_type="Sim", material="PLA",
    telemetry_first=1, telemetry_last=2, telemetry_last_hash="3c" * 32,
)  # fmt: skip


def _load(name: str) -> dict:
    with open(os.path.join(VECTORS, name)) as handle:
        return json.load(handle)


def test_the_vectors_cover_every_weight():
    assert {_load(name)["permille"] for name in FILES} == {1000, 750, 500}


@pytest.mark.parametrize("name", FILES)
def test_weighing_vector(name):
    vector = _load(name)
    found = dataclasses.replace(BASE, lines=vector["lines"], filament_mm=vector["filament_mm"],
                                attestation=vector["attestation"])  # fmt: skip
    receipt.parse_body(dict(found.body(), prev=receipt.GENESIS))  # a receipt the format accepts
    key = bytes.fromhex(vector["bridge_key"]) if vector["bridge_key"] else None
    last = tuple(vector["last_accepted"]) if vector["last_accepted"] else None
    weight = attestation_weighing.weigh(found, key, last, vector["issued"].get)
    assert (weight.permille, vector["reason"] in weight.reason) == (vector["permille"], True), weight.reason
    assert (weight.sequence is not None) == (vector["permille"] > 500)  # only a valid attestation uses anything up


def _line(challenge: str, counters: tuple) -> str:
    return attest.sign(KEY, bytes.fromhex(challenge), counters)  # what the bridge with KEY answers


def _member(first: str, second: str, seq: int = 1, origin: str = "verifier") -> dict:
    start, end = (1, seq, 50, 0, 0, 1000, 0), (1, seq + 1, 1050, 1_000_000, 80, 3_601_000, 0)
    return {"bridge_id": attest.to_hex(attest.bridge_id(KEY)), "start": _line(first, start),
            "end": _line(second, end), "challenge_from": origin, "commands": 1000}  # fmt: skip


@pytest.fixture
def ledger(tmp_path):
    ledger = Ledger(str(tmp_path / "ledger.sqlite"))
    yield ledger
    ledger.close()


def _feed(ledger: Ledger, messages) -> dict:
    boxes = ledger.boxes()
    facts = [verifier.read(topic, payload, boxes) for topic, payload in messages]
    touched = ledger.ingest([fact for fact in facts if fact is not None], T0 + 10**6)
    return {digest: verdict for _box, digest, verdict in ledger.settle(touched, T0 + 10**6)}


def _paired(tmp_path, ledger: Ledger) -> None:
    keys = tmp_path / "edge-keys"
    edge_pairing.record_key(str(keys), attest.to_hex(attest.bridge_id(KEY)), KEY)
    ledger.close()
    assert cli.main(["--ledger", ledger.path, "bridges", "add", str(keys)]) == 0
    ledger.__init__(ledger.path)


def test_an_attested_receipt_earns_in_full_and_its_replay_earns_half(tmp_path, ledger, capsys):
    box, job = SimBox(), new_job(lines=1000)
    ledger.add_box(box.entry(), T0)
    ledger.add_job(job, T0)
    _paired(tmp_path, ledger)
    assert "recorded" in capsys.readouterr().out
    issued = ledger.report(box.box_id)[0]["challenges"]  # what the box reads on its rewards topic
    assert len(issued) == attestation_weighing.ISSUED_PER_BOX and len(set(issued)) == len(issued)
    assert ledger.report(box.box_id)[0]["challenges"] == issued  # re-sent until used, not replaced
    full = rewards.reward("done", "PLA", 3600, job.estimate_s)

    good = _member(issued[0], issued[1])
    telemetry, message, digest = box.print_job(job, T0, 3600, attestation=good)
    verdict = _feed(ledger, [*telemetry, message])[digest]
    assert (verdict.state, verdict.reward) == ("accepted", full)
    assert verdict.reason == "attested by edge bridge %s" % good["bridge_id"]
    now_issued = ledger.report(box.box_id)[0]["challenges"]
    assert not set(issued[:2]) & set(now_issued) and len(now_issued) == attestation_weighing.ISSUED_PER_BOX

    telemetry, message, digest = box.print_job(job, T0 + 4000, 3600, attestation=good)  # the same lines again
    verdict = _feed(ledger, [*telemetry, message])[digest]
    assert verdict.reward == full // 2 and "attestation refused" in verdict.reason and "used before" in verdict.reason

    own = _member("77" * 16, "88" * 16, seq=3, origin="box")
    telemetry, message, digest = box.print_job(job, T0 + 8000, 3600, attestation=own)
    verdict = _feed(ledger, [*telemetry, message])[digest]
    assert verdict.reward == full * 3 // 4 and "box's own challenge" in verdict.reason

    stranger = SimBox()  # a bridge the network never paired: its receipt earns half, with the reason
    ledger.add_box(stranger.entry(), T0)
    other = dict(_member(issued[2], issued[3], seq=5), bridge_id="00" * 8)
    telemetry, message, digest = stranger.print_job(job, T0, 3600, attestation=other)
    verdict = _feed(ledger, [*telemetry, message])[digest]
    assert verdict.reward == full // 2 and "not paired with the network" in verdict.reason
    assert ledger.earned(box.box_id) == full + full // 2 + full * 3 // 4


def test_bridges_add_refuses_a_bad_key_file_and_records_nothing(tmp_path, ledger, capsys):
    keys = tmp_path / "keys"
    keys.write_text("0011223344556677 %s\n" % KEY.hex())  # an id that is not this key's
    assert cli.main(["--ledger", ledger.path, "bridges", "add", str(keys)]) == 2
    assert "is not 'ID KEY' of a bridge" in capsys.readouterr().err
    assert cli.main(["--ledger", ledger.path, "bridges", "add", str(tmp_path / "missing")]) == 2
    assert "lists no bridge" in capsys.readouterr().err
    assert ledger.bridges.bridge(attest.to_hex(attest.bridge_id(KEY))) is None
