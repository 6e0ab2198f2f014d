"""Fleet commands on the box's side: forged, unsigned, wrong-box, replayed and expired commands are refused with
the reason; a duplicate gets the stored result again and does not run twice."""

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire import command_gate, envelope

OPERATOR = Ed25519PrivateKey.generate()
STRANGER = Ed25519PrivateKey.generate()
BOX = Ed25519PrivateKey.generate()
NOW = 1_800_000_000


def command(seq: int, name: str = "job.pause", box_id: str = "box-1", key=OPERATOR, key_id="op-1", expires=NOW + 60):
    return command_gate.command(box_id, name, {}, key, key_id, NOW, seq, expires)


@pytest.fixture
def gate():
    return command_gate.CommandGate("box-1", {"op-1": OPERATOR.public_key().public_bytes_raw()})


def _run(gate, signed) -> command_gate.Verdict:
    verdict = gate.check(signed, NOW)
    if verdict.action == "run":
        gate.record(signed, command_gate.result(BOX, "box-1", signed, command_gate.SUCCEEDED, "", NOW, signed["seq"]))
    return verdict


def test_a_good_command_runs_once_and_a_duplicate_repeats_its_result(gate):
    first = command(1)
    assert _run(gate, first).action == "run"
    again = gate.check(first, NOW + 5)
    assert again.action == "repeat"
    assert again.stored["body"]["outcome"] == command_gate.SUCCEEDED and again.stored["body"]["command_seq"] == 1
    assert _run(gate, command(2, "job.resume")).action == "run"


@pytest.mark.parametrize(
    ("make", "reason"),
    [
        (lambda: command(5, key=STRANGER), "does not verify"),
        (lambda: command(5, key_id="op-9"), "operator key 'op-9' is not trusted"),
        (lambda: command(5, box_id="box-2"), "for box 'box-2', not this one"),
        (lambda: command(5, expires=NOW - 1), "expired"),
        (lambda: command(5, expires=None), "must carry an expiry"),
        (lambda: dict(command(5), sig="AAAA"), "does not verify"),
        (lambda: {"name": "reboot"}, "not a signed command envelope"),
        (lambda: b"junk", "not a signed command envelope"),
    ],
)
def test_bad_commands_are_refused_with_the_reason(gate, make, reason):
    verdict = gate.check(make(), NOW)
    assert verdict.action == "reject" and reason in verdict.reason


def test_replayed_and_out_of_order_commands_are_refused(gate):
    assert _run(gate, command(7)).action == "run"
    verdict = gate.check(command(6), NOW)
    assert verdict.action == "reject" and "not above 7" in verdict.reason
    forged_duplicate = command(7, name="reboot")  # same number, other command
    verdict = gate.check(forged_duplicate, NOW)
    assert verdict.action == "reject" and "already used number 7" in verdict.reason


def test_results_are_signed_by_the_box_and_echo_the_command(gate):
    signed = command_gate.result(BOX, "box-1", command(3), command_gate.REJECTED, "printing", NOW, 11)
    body = envelope.verify(signed, BOX.public_key().public_bytes_raw())
    assert (body["command_key_id"], body["command_seq"], body["outcome"]) == ("op-1", 3, "rejected")
    junk = command_gate.result(BOX, "box-1", b"junk", command_gate.REJECTED, "not a command", NOW, 12)
    assert envelope.verify(junk, BOX.public_key().public_bytes_raw())["command_seq"] == -1


def test_a_duplicate_after_its_expiry_is_refused_as_expired_not_repeated():
    gate = command_gate.CommandGate("box-1", {"op-1": OPERATOR.public_key().public_bytes_raw()})
    signed = command(5, expires=NOW + 60)
    assert gate.check(signed, NOW).action == "run"
    gate.record(signed, {"stored": "result"})
    assert gate.check(signed, NOW + 59).action == "repeat"
    late = gate.check(signed, NOW + 61)
    assert late.action == "reject" and "expired" in late.reason


def test_a_payload_that_is_no_command_gets_a_result_tied_to_nothing():
    result = command_gate.result(BOX, "box-1", [], "rejected", "not a signed command envelope", NOW, 1)
    assert result["body"]["command_key_id"] == "" and result["body"]["command_seq"] == -1
