"""The verifier decides each receipt from the job registry and the box's signed telemetry: accepted with its
reward, refused with a reason a box owner can read, or pending until its telemetry arrives. Each check alone,
then a restart mid-stream that loses and double-counts nothing."""

import dataclasses
import random

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain_client import attestation_weighing, rewards, verifier
from chain_client.ledger import Ledger, LedgerError
from tests.chain_client.boxsim import T0, SimBox, new_job, unattested
from wire import receipt


class Net:
    """The verifier's core and its ledger, fed messages as the MQTT shell would."""

    def __init__(self, path) -> None:
        self.path = str(path)
        self.ledger = Ledger(self.path)

    def feed(self, messages, now: int = T0 + 10**6, patience=verifier.DEFAULT_PATIENCE_SECONDS) -> list:
        boxes = self.ledger.boxes()
        facts = [verifier.read(topic, payload, boxes) for topic, payload in messages]
        touched = self.ledger.ingest([f for f in facts if f is not None], now)
        return self.ledger.settle(touched, now, patience)

    def state(self, digest: str) -> tuple:
        row = self.ledger._db.execute("SELECT state, reason, reward FROM receipts WHERE hash = ?", (digest,))
        state, reason, reward = row.fetchone()
        return state, reason, int(reward)

    def restart(self) -> None:
        self.ledger.close()
        self.ledger = Ledger(self.path)


@pytest.fixture
def net(tmp_path):
    network = Net(tmp_path / "ledger.sqlite")
    yield network
    network.ledger.close()


def _registered(net: Net, **job_fields):
    box = SimBox()
    job = new_job(**job_fields)
    net.ledger.add_box(box.entry(), T0)
    net.ledger.add_job(job, T0)
    return box, job


def test_a_plausible_print_is_accepted_with_the_reward_of_the_rule(net):
    box, job = _registered(net)
    telemetry, message, digest = box.print_job(job, T0, 3600)
    decided = net.feed([*telemetry, message])
    assert [(d[1], d[2].state) for d in decided] == [(digest, "accepted")]
    expected = unattested(rewards.reward("done", "PLA", 3600, job.estimate_s))
    assert net.state(digest) == ("accepted", attestation_weighing.NO_ATTESTATION, expected)
    assert net.ledger.earned(box.box_id) == expected


def test_a_forged_receipt_is_refused(net):
    box, job = _registered(net)
    telemetry, (topic, _payload), _ = box.print_job(job, T0, 3600)
    impostor = SimBox()
    impostor.box_id = box.box_id  # signs as box, with its own key
    impostor.receipts = receipt.receipt_writer(impostor.key, box.box_id)
    _t, (_topic, forged), digest = impostor.print_job(job, T0, 3600)
    net.feed([*telemetry, (topic, forged)])
    assert net.state(digest)[0] == "refused" and "forged receipt" in net.state(digest)[1]
    assert net.ledger.earned(box.box_id) == 0


def test_a_receipt_from_an_unregistered_box_is_refused(net):
    box, job = SimBox(), new_job()
    net.ledger.add_job(job, T0)
    telemetry, message, digest = box.print_job(job, T0, 3600)
    net.feed([*telemetry, message])
    assert net.state(digest) == ("refused", "box %s is not registered with the network" % box.box_id, 0)


def test_a_job_the_platform_never_issued_is_refused(net):
    box, _job = _registered(net)
    telemetry, message, digest = box.print_job(new_job(), T0, 3600)
    net.feed([*telemetry, message])
    state, reason, _ = net.state(digest)
    assert state == "refused" and "never issued by the platform" in reason


def test_a_duplicate_is_counted_once_and_a_second_receipt_for_one_print_is_refused(net):
    box, job = _registered(net)
    telemetry, message, _digest = box.print_job(job, T0, 3600)
    net.feed([*telemetry, message])
    earned = net.ledger.earned(box.box_id)
    assert net.feed([message, message, *telemetry]) == [] and net.ledger.earned(box.box_id) == earned
    # the box signs another receipt for the same print (same license and print number): not paid twice
    _more, again, digest2 = box.print_job(job, T0 + 4000, 3600, print_number=1)
    net.feed([*_more, again])
    state, reason, _ = net.state(digest2)
    assert state == "refused" and "already counted in receipt 1" in reason
    assert net.ledger.earned(box.box_id) == earned


def test_a_print_waits_for_its_telemetry_then_is_accepted_when_it_arrives(net):
    box, job = _registered(net)
    telemetry, message, digest = box.print_job(job, T0, 3600)
    assert net.feed([message, *telemetry[:10]]) == []
    state, reason, _ = net.state(digest)
    assert state == "pending" and reason.startswith("waiting for telemetry records 11 to 61")
    decided = net.feed(telemetry[10:])
    assert [d[2].state for d in decided] == ["accepted"] and net.ledger.earned(box.box_id) > 0


def test_a_gap_the_box_declares_is_refused(net):
    box, job = _registered(net)
    telemetry, message, digest = box.print_job(job, T0, 3600)
    thinned = box.event(T0 + 3700, {"type": "outbox.thinned", "removed": [5, 6, 7]})
    net.feed([*telemetry[:4], *telemetry[7:], thinned, message])
    state, reason, _ = net.state(digest)
    assert state == "refused" and reason == "gap: the box dropped telemetry records 5 to 7 covering the print"


def test_missing_telemetry_is_waited_for_and_refused_as_a_gap_once_later_records_came_and_patience_ran_out(net):
    box, job = _registered(net)
    telemetry, message, digest = box.print_job(job, T0, 3600)
    later = [box.sample(T0 + 4000 + n) for n in range(3)]
    net.feed([*telemetry[:30], *telemetry[31:], message, *later], now=T0 + 4000, patience=3600)
    assert net.state(digest)[0] == "pending"
    net.feed([], now=T0 + 7000, patience=3600)  # nothing touched this box: nothing decided
    assert net.state(digest)[0] == "pending"
    net.ledger.settle(None, T0 + 7601, 3600)
    state, reason, _ = net.state(digest)
    assert state == "refused" and reason.startswith("gap: telemetry records 31 covering the print never arrived")


def test_a_fork_in_the_telemetry_is_refused(net):
    box, job = _registered(net)
    telemetry, message, digest = box.print_job(job, T0, 3600)
    other = SimBox()
    other.key, other.box_id = box.key, box.box_id  # the box signs a second record number 20
    other.telemetry.key_id, other.telemetry._key, other.telemetry.sequence = box.box_id, box.key, 19
    forked = other.sample(T0 + 1140, job.job_id, (2000, 2050))
    net.feed([*telemetry, forked, message])
    state, reason, _ = net.state(digest)
    assert state == "refused" and reason == "fork: two different telemetry records claim number 20"


@pytest.mark.parametrize(
    ("how", "expected"),
    [
        ({"seconds": 600}, "implausible print: printed in 10 min 00 s, under half the G-code's own estimate of "
                           "50 min 00 s"),
        ({"heat": False}, "implausible print: the hotend never reached its target (at most 21.0 °C of 205.0 °C)"),
        ({"lines": 999}, "implausible print: the printer confirmed 999 of the job's 1000 lines"),
        ({"every": 3600, "seconds": 3600 * 2}, None),
    ],
)  # fmt: skip
def test_an_implausible_print_is_refused_with_its_reason(net, how, expected):
    box, job = _registered(net)
    seconds = how.pop("seconds", 3600)
    telemetry, message, digest = box.print_job(job, T0, seconds, **how)
    net.feed([*telemetry, message])
    state, reason, reward = net.state(digest)
    if expected is None:  # samples an hour apart cover the print: accepted
        assert state == "accepted" and reward > 0
    else:
        assert (state, reason, reward) == ("refused", expected, 0)


def test_a_print_with_telemetry_for_a_few_minutes_of_a_long_print_is_refused(net):
    box, job = _registered(net, estimate_s=600)
    messages = [box.sample(T0 + n, job.job_id) for n in range(0, 300, 30)]
    made = receipt.Receipt(job_id=job.job_id, license_id=job.license_id, sealed_sha256=job.sealed_sha256,
                           print_number=1, started=T0, ended=T0 + 7200, outcome="done", lines=job.lines,
                           filament_mm=1, firmware_name="M", machine_type="S", material="PLA", telemetry_first=1,
                           telemetry_last=10, telemetry_last_hash=box.telemetry.head)  # fmt: skip
    encoded = receipt.sign_receipt(box.receipts, made, T0 + 7200)[1]
    net.feed([*messages, (box.topic("receipt"), encoded)])
    state, reason, _ = net.state(receipt.receipt_hash(encoded))
    assert state == "refused" and "the telemetry covers 4 min 30 s of a print said to last 120 min 00 s" in reason


def test_a_cancelled_print_is_accepted_without_reward(net):
    box, job = _registered(net)
    telemetry, message, digest = box.print_job(job, T0, 3600, outcome="cancelled", lines=10)
    net.feed([*telemetry, message])
    assert net.state(digest) == ("accepted", "no reward for a cancelled print", 0)


def test_the_receipt_hash_of_the_last_record_must_match(net):
    box, job = _registered(net)
    telemetry, message, _digest = box.print_job(job, T0, 3600)
    net.feed([*telemetry])
    _signed, body = receipt.read_receipt(message[1], box.public, box.box_id)
    wrong = receipt.Receipt(**dict(body.__dict__, telemetry_last_hash="ab" * 32, print_number=2))
    encoded = receipt.sign_receipt(box.receipts, wrong, T0 + 9999)[1]
    net.feed([(message[0], encoded)])
    assert net.state(receipt.receipt_hash(encoded))[1] == "the receipt's hash of telemetry record 61 is not the " \
        "record's hash"  # fmt: skip


def test_two_receipts_with_one_number_are_a_fork_of_the_receipt_chain(net):
    box, job = _registered(net)
    t1, m1, d1 = box.print_job(job, T0, 3600)
    box.receipts.sequence, box.receipts.head = 0, receipt.GENESIS
    t2, m2, d2 = box.print_job(job, T0 + 4000, 3600)
    net.feed([*t1, *t2, m1, m2])
    assert net.state(d1)[0] == "accepted"
    assert net.state(d2) == ("refused", "two different receipts claim number 1 (fork of the receipt chain)", 0)


def test_a_restart_mid_stream_loses_and_double_counts_nothing(net, tmp_path):
    boxes = [_registered(net) for _ in range(3)]
    messages = []
    for box, job in boxes:
        for n in range(3):
            telemetry, message, _ = box.print_job(job, T0 + n * 5000, 3600, print_number=n + 1)
            messages += [*telemetry, message]
    random.Random(7).shuffle(messages)
    reference = Net(tmp_path / "reference.sqlite")
    for box, job in boxes:
        reference.ledger.add_box(box.entry(), T0)
        reference.ledger.add_job(job, T0)
    reference.feed(messages)
    half = len(messages) // 2
    net.feed(messages[:half])
    net.restart()
    net.feed(messages[half - 50 :])  # the broker delivers again what was not acknowledged before the restart
    for box, _job in boxes:
        assert net.ledger.earned(box.box_id) == reference.ledger.earned(box.box_id) > 0
    assert [row["accepted"] for row in net.ledger.summary()] == [3, 3, 3]
    assert net.ledger.dump() == reference.ledger.dump()
    reference.ledger.close()


def test_bad_input_is_refused_and_leaves_state_intact(net):
    box, job = _registered(net)
    assert verifier.read("not/a/topic", b"{}", {}).reason.startswith("not a box topic")
    junk = verifier.read(box.topic("telemetry"), b"\xff junk", net.ledger.boxes())
    assert isinstance(junk, verifier.Refusal) and "forged or damaged telemetry record" in junk.reason
    net.ledger.ingest([junk], T0)
    assert net.ledger.summary()[0]["notices"] == [("telemetry", junk.reason, 1)]
    with pytest.raises(LedgerError, match="another Ed25519 key"):
        net.ledger.add_box(verifier.BoxEntry(box.box_id, bytes(32)), T0)
    with pytest.raises(LedgerError, match="another sealed file"):
        net.ledger.add_job(verifier.JobEntry(job.job_id, "00" * 32), T0)
    assert net.ledger.boxes()[box.box_id].ed25519 == box.public and net.ledger.job(job.job_id) == job


def test_payments_are_cumulative_and_never_above_what_was_earned(net):
    box, job = _registered(net)
    telemetry, message, _ = box.print_job(job, T0, 3600)
    net.feed([*telemetry, message])
    earned = net.ledger.earned(box.box_id)
    with pytest.raises(LedgerError, match="above what box"):
        net.ledger.record_payment(box.box_id, "0x" + "aa" * 32, earned + 1, T0)
    net.ledger.record_payment(box.box_id, "0x" + "aa" * 32, earned, T0)
    net.ledger.record_payment(box.box_id, "0x" + "aa" * 32, earned, T0)  # the same transaction seen again
    body, seq = net.ledger.report(box.box_id)
    report = receipt.parse_rewards(body)
    assert report["paid"] == report["earned"] == earned and report["transactions"] == [
        {"tx": "0x" + "aa" * 32, "amount": earned}
    ]
    assert net.ledger.report(box.box_id)[1] == seq + 1


def test_telemetry_no_receipt_needs_is_forgotten_and_a_late_copy_changes_nothing(net):
    box, job = _registered(net)
    first = box.print_job(job, T0, 3600)
    second = box.print_job(job, T0 + 4000, 3600)
    net.feed([*second[0], second[1]])  # receipt 2 first: receipt 1 is unknown, nothing may be forgotten
    rows = net.ledger._db.execute("SELECT count(*) FROM telemetry").fetchone()[0]
    assert rows == len(second[0])
    net.feed([*first[0], first[1]])
    assert net.ledger._db.execute("SELECT count(*) FROM telemetry").fetchone()[0] == 0  # both decided
    earned = net.ledger.earned(box.box_id)
    assert net.feed([*first[0], first[1], *second[0], second[1]]) == [] and net.ledger.earned(box.box_id) == earned


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.function_scoped_fixture])
@given(order=st.randoms(use_true_random=False), cuts=st.lists(st.integers(0, 400), max_size=6))
def test_any_order_and_any_batching_with_copies_gives_the_same_totals(tmp_path_factory, order, cuts):
    path = tmp_path_factory.mktemp("order")
    network = Net(path / "ledger.sqlite")
    boxes = [SimBox(b"order %d" % n) for n in range(2)]
    job = new_job(estimate_s=1800)
    network.ledger.add_job(job, T0)
    messages = []
    for box in boxes:
        network.ledger.add_box(box.entry(), T0)
        for n in range(3):
            telemetry, message, _ = box.print_job(job, T0 + n * 4000, 3600, every=120, print_number=n + 1)
            messages += [*telemetry, message]
    messages += order.sample(messages, 20)  # copies, delivered again anywhere
    order.shuffle(messages)
    start = 0
    for cut in [*sorted(cuts), len(messages)]:
        network.feed(messages[start:cut])
        start = max(start, cut)
    expected = 3 * unattested(rewards.reward("done", "PLA", 3600, job.estimate_s))
    assert [network.ledger.earned(box.box_id) for box in boxes] == [expected, expected]
    network.ledger.close()


def test_accepted_receipts_become_merkle_leaves_once(net):
    box, job = _registered(net)
    made = [box.print_job(job, T0 + n * 4000, 3600) for n in range(2)]
    cancelled = box.print_job(job, T0 + 9000, 3600, outcome="cancelled", lines=1)
    net.feed([m for telemetry, message, _d in [*made, cancelled] for m in (*telemetry, message)])
    leaves = net.ledger.unanchored()
    key = receipt.box_key_hash(box.public).hex()
    reward = unattested(rewards.reward("done", "PLA", 3600, job.estimate_s))
    assert sorted(leaves) == sorted([(made[0][2], key, reward), (made[1][2], key, reward), (cancelled[2], key, 0)])
    net.ledger.mark_anchored([made[0][2]], "epoch-1", T0)
    net.ledger.mark_anchored([made[0][2]], "epoch-2", T0)  # already anchored: stays in epoch 1
    assert {leaf[0] for leaf in net.ledger.unanchored()} == {made[1][2], cancelled[2]}


def test_one_span_of_telemetry_pays_one_print_and_must_show_the_job(net):
    box, job = _registered(net)
    telemetry, message, _digest = box.print_job(job, T0, 3600)
    net.feed([*telemetry, message])
    _s, body = receipt.read_receipt(message[1], box.public, box.box_id)
    again = receipt.sign_receipt(box.receipts, dataclasses.replace(body, print_number=2), T0 + 9000)[1]
    net.feed([(message[0], again)])  # a second receipt, another print number, the same telemetry
    assert net.state(receipt.receipt_hash(again)) == (
        "refused", "duplicate: telemetry records 1 to 61 already cover receipt 1", 0)  # fmt: skip
    other_job = new_job()
    net.ledger.add_job(other_job, T0)
    samples = [box.sample(T0 + 5000 + n * 60, job.job_id) for n in range(61)]  # samples of the first job
    first = box.telemetry.sequence - 60
    claimed = dataclasses.replace(body, job_id=other_job.job_id, sealed_sha256=other_job.sealed_sha256,
                                  print_number=3, telemetry_first=first, telemetry_last=box.telemetry.sequence,
                                  telemetry_last_hash=box.telemetry.head)  # fmt: skip
    wrong = receipt.sign_receipt(box.receipts, claimed, T0 + 9100)[1]
    net.feed([*samples, (message[0], wrong)])
    assert net.state(receipt.receipt_hash(wrong))[1] == (
        "implausible print: the telemetry of the print never shows job %s" % other_job.job_id
    )
