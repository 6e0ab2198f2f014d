"""The verifier (firmware_bridge.attestation) walks every edge attestation vector."""

import json
from pathlib import Path

import pytest

from firmware_bridge import attestation

VECTORS = sorted((Path(__file__).resolve().parent.parent / "vectors" / "edge-attestation").glob("*.json"))
OUTCOMES = {"ok": None, "invalid": attestation.AttestationInvalid, "format": attestation.AttestationFormatError}


@pytest.mark.parametrize("path", VECTORS, ids=[path.stem for path in VECTORS])
def test_vector(path):
    vector = json.loads(path.read_text())
    key = bytes.fromhex(vector["key"])
    challenge = bytes.fromhex(vector["challenge"])

    def check():
        attestation.verify(attestation.parse(vector["line"]), key, challenge, vector["last_accepted"])

    expected = OUTCOMES[vector["expect"]]
    if expected is None:
        check()
        assert list(attestation.parse(vector["line"]).counters()) == vector["counters"]
    else:
        with pytest.raises(expected):
            check()


def test_every_outcome_has_vectors():
    outcomes = [json.loads(path.read_text())["expect"] for path in VECTORS]
    assert outcomes.count("ok") >= 3 and outcomes.count("invalid") >= 5 and outcomes.count("format") >= 6


def test_job_evidence_is_the_difference_of_two_attestations():
    good = {path.stem: json.loads(path.read_text()) for path in VECTORS}
    start = attestation.parse(good["good_start"]["line"])
    end = attestation.parse(good["good_end"]["line"])
    evidence = attestation.job_evidence(start, end)
    assert evidence == {"bridge_id": start.bridge_id, "lines": 100000, "e_um": 4994450, "layers": 250, "ms": 60000}
    with pytest.raises(attestation.AttestationInvalid, match="not after"):
        attestation.job_evidence(end, start)
    with pytest.raises(attestation.AttestationInvalid, match="restarted"):
        attestation.job_evidence(start, attestation.parse(good["good_negative_extrusion"]["line"]))


def test_the_request_line_and_bridge_detection():
    assert attestation.request_line(b"\x00" * 16) == "M7770 C" + "00" * 16
    with pytest.raises(ValueError):
        attestation.request_line(b"\x00" * 15)
    assert attestation.is_bridge({"MIPAI_ATTEST": True, "EEPROM": True})
    assert not attestation.is_bridge({"MIPAI_ATTEST": False})
    assert not attestation.is_bridge({"AUTOREPORT_TEMP": True})
