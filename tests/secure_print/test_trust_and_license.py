"""Who a box accepts jobs from, and the license terms it enforces before anything is printed."""

import io
import time

import pytest

from secure_print import certificate, opener
from secure_print.errors import LicenseError, SignatureError, UntrustedKeyError
from secure_print.ledger import PrintLedger
from secure_print.signer_key import SignerKey
from secure_print.trust import TrustStore, TrustStoreError
from tests.secure_print.sealing import Box, make_job
from wire import keytext


@pytest.fixture
def box():
    return Box()


@pytest.fixture
def designer():
    return SignerKey.generate(keytext.DESIGNER)


@pytest.fixture
def network():
    return SignerKey.generate(keytext.NETWORK)


def _open(data: bytes, box: Box, trust: TrustStore, now=None):
    job = opener.open_job(io.BytesIO(data), box.sealing, box.box_id, trust, now or time.time())
    opener.verify_payload(job, io.BytesIO(data))
    return job


def _certificate(network, designer, not_before=None, not_after=None, name="Ada") -> bytes:
    now = int(time.time())
    issued = certificate.issue(
        network.signing, designer.public_bytes, name, not_before or now - 60, not_after or now + 3600
    )
    return issued.to_bytes()


def test_an_unknown_designer_is_refused_then_accepted_once_pinned(tmp_path, box, designer):
    trust = TrustStore(str(tmp_path / "trust.json"))
    data = make_job(designer, box)
    with pytest.raises(UntrustedKeyError, match="not trusted on this box"):
        _open(data, box, trust)
    trust.add(designer.public_text, "Ada")
    assert _open(data, box, TrustStore(str(tmp_path / "trust.json"))).vouched_by == "pinned"


def test_a_designer_certified_by_a_pinned_network_is_accepted(tmp_path, box, designer, network):
    trust = TrustStore(str(tmp_path / "trust.json"))
    trust.add(network.public_text)
    data = make_job(designer, box, certificate=_certificate(network, designer))
    assert _open(data, box, trust).vouched_by == "certified as 'Ada'"


def test_certificates_that_must_not_count(tmp_path, box, designer, network):
    trust = TrustStore(str(tmp_path / "trust.json"))
    trust.add(network.public_text)
    now = int(time.time())
    expired = _certificate(network, designer, now - 7200, now - 3600)
    with pytest.raises(UntrustedKeyError, match="expired or not yet valid"):
        _open(make_job(designer, box, certificate=expired), box, trust)
    stranger = SignerKey.generate(keytext.NETWORK)
    with pytest.raises(UntrustedKeyError, match="which this box does not trust"):
        _open(make_job(designer, box, certificate=_certificate(stranger, designer)), box, trust)
    other_designer = SignerKey.generate(keytext.DESIGNER)
    with pytest.raises(UntrustedKeyError, match="another designer key"):
        _open(make_job(designer, box, certificate=_certificate(network, other_designer)), box, trust)
    forged = bytearray(_certificate(network, designer))
    forged[-1] ^= 1
    with pytest.raises(SignatureError, match="certificate"):
        _open(make_job(designer, box, certificate=bytes(forged)), box, trust)


def test_revoked_keys_are_refused_even_when_pinned_or_certified(tmp_path, box, designer, network):
    trust = TrustStore(str(tmp_path / "trust.json"))
    trust.add(network.public_text)
    trust.add(designer.public_text)
    data = make_job(designer, box, certificate=_certificate(network, designer))
    assert _open(data, box, trust)
    trust.revoke(designer.public_text)
    with pytest.raises(UntrustedKeyError, match="revoked"):
        _open(data, box, TrustStore(str(tmp_path / "trust.json")))
    with pytest.raises(TrustStoreError, match="revoked"):
        trust.add(designer.public_text)
    second = SignerKey.generate(keytext.DESIGNER)
    certified = make_job(second, box, certificate=_certificate(network, second, name="Bo"))
    assert _open(certified, box, trust)
    trust.revoke(network.public_text)
    with pytest.raises(UntrustedKeyError, match="revoked"):
        _open(certified, box, trust)


def test_a_mistyped_key_is_refused_by_its_checksum(tmp_path, designer):
    trust = TrustStore(str(tmp_path / "trust.json"))
    text = designer.public_text
    typo = text[:-3] + ("A" if text[-3] != "A" else "B") + text[-2:]
    with pytest.raises(ValueError, match="checksum"):
        trust.add(typo)
    with pytest.raises(ValueError, match="mipai-box key was given"):
        trust.add(keytext.encode(keytext.BOX, bytes(64)))
    assert trust.entries == []


def test_printer_and_material_limits(tmp_path, box, designer):
    trust = TrustStore(str(tmp_path / "trust.json"))
    trust.add(designer.public_text)
    data = make_job(
        designer,
        box,
        printers=[{"MACHINE_TYPE": "Prusa MK4*"}, {"FIRMWARE_NAME": "Marlin 2.1*", "UUID": "cede2a2f-*"}],
        materials=["PLA", "PETG"],
    )
    terms = _open(data, box, trust).license
    terms.check_printer({"MACHINE_TYPE": "Prusa MK4S", "FIRMWARE_NAME": "Prusa-Firmware 6"})
    terms.check_printer({"FIRMWARE_NAME": "Marlin 2.1.2.1 (virtual)", "UUID": "cede2a2f-41a2"})
    with pytest.raises(LicenseError, match="not one the license allows"):
        terms.check_printer({"FIRMWARE_NAME": "Marlin 2.1.2.1", "UUID": "0000", "MACHINE_TYPE": "Ender-3"})
    terms.check_material("petg")
    with pytest.raises(LicenseError, match="not the loaded ABS"):
        terms.check_material("ABS")
    with pytest.raises(LicenseError, match="say which material"):
        terms.check_material(None)


def test_the_counter_stops_at_the_licensed_prints_and_survives_reopening(tmp_path, box, designer):
    path = str(tmp_path / "prints.sqlite")
    ledger = PrintLedger(path)
    numbers = [ledger.record_print("L1", "J1", 2, lambda n, seq: "record %d/%d" % (n, seq)) for _ in range(2)]
    assert numbers == [1, 2]
    with pytest.raises(LicenseError, match="made 2 of the 2 prints"):
        ledger.record_print("L1", "J1", 2, lambda n, seq: "never stored")
    ledger.close()
    reopened = PrintLedger(path)
    assert reopened.prints_done("L1") == 2
    assert reopened.usage_records("L1") == ["record 1/1", "record 2/2"]
    assert reopened.record_print("L2", "J2", None, lambda n, seq: "other license") == 1


def test_a_failing_usage_record_leaves_the_counter_unchanged(tmp_path):
    ledger = PrintLedger(str(tmp_path / "prints.sqlite"))

    def broken(_number, _sequence):
        raise OSError("disk full")

    with pytest.raises(OSError):
        ledger.record_print("L1", "J1", 5, broken)
    assert ledger.prints_done("L1") == 0
