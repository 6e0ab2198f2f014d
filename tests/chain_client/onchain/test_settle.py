"""Settlement on an in-process py-evm chain: a box's receipts, verified by the ledger, are batched into an
anchored Merkle root and claimed, and the owner's 3DP balance rises by exactly what the reward rule computed.
A replayed or expired claim and one with fewer than k signatures pay nothing, a reverted claim is noticed (and
the ledger unchanged), a box offline for a day is paid its backlog once, and batch files prove and audit."""

import json

import pytest
from eth_account import Account

from chain_client import batches, deploy, deployment_file, evm, rewards, settle
from chain_client import verifier as core
from chain_client.ledger import Ledger
from chain_client.relayer import Relayer
from chain_client.verifier import BoxEntry
from tests.chain_client.boxsim import T0, SimBox, new_job, unattested
from tests.chain_client.onchain.conftest import make_network
from wire import receipt

DAY = 86400


@pytest.fixture(scope="module")
def network():
    """One chain and deployment for the module (epochs of a day); each test registers its own boxes."""
    return make_network(evm.in_process(), epoch_length=DAY)


class Verifier:
    """One verifier: its ledger fed a box's messages as `verify` would, and its settlement on the chain."""

    def __init__(self, network, directory, name="ledger") -> None:
        self.network = network
        self.ledger = Ledger(str(directory / ("%s.sqlite" % name)))
        self.described = deployment_file.describe(network.w3, network.deployment)
        self.relayer = Relayer(network.w3, network.admin, network.deployment, directory / ("%s.sqlite" % name))
        self.work = settle.Settlement(network.w3, self.described, network.deployment, self.ledger, self.relayer,
                                      str(directory / "batches"), log=lambda _text: None)  # fmt: skip

    def add_box(self, box: SimBox, owner: str) -> None:
        self.ledger.add_box(BoxEntry(box.box_id, box.public, Account.create().address, owner), T0)

    def feed(self, messages, now: int) -> list:
        boxes = self.ledger.boxes()
        facts = [core.read(topic, payload, boxes) for topic, payload in messages]
        touched = self.ledger.ingest([f for f in facts if f is not None], now)
        return self.ledger.settle(touched, now)

    def signed_claims(self, signers=None, validity=3600) -> list:
        due = self.work.due_claims(validity)
        chosen = signers if signers is not None else self.network.verifiers[:2]
        signatures = {v.address: {c: v.sign(c, self.described.domain) for _b, c in due} for v in chosen}
        ready, short = settle.gather(due, self.described.domain, signatures, self.described.verifiers,
                                     self.described.k)  # fmt: skip
        assert not short, short
        return ready

    def settle(self, now: int) -> tuple:
        """One round: anchor closed epochs, claim what is due with two signatures. (anchor outcomes, claims)."""
        anchored = self.work.anchor(now)
        return anchored, self.work.relay(self.signed_claims(), now)

    def close(self) -> None:
        self.relayer.close()
        self.ledger.close()


@pytest.fixture
def verifier(network, tmp_path):
    made = Verifier(network, tmp_path)
    yield made
    made.close()


def _box(verifier: Verifier, network, job) -> tuple:
    """A box registered in the ledger and on chain, paying a fresh owner."""
    box = SimBox()
    owner = Account.create().address
    verifier.add_box(box, owner)
    verifier.ledger.add_job(job, T0)
    network.register_box(receipt.box_key_hash(box.public), owner)
    return box, owner


def _print(verifier: Verifier, box: SimBox, job, start: int, seconds: int, decided: int) -> int:
    """One print's telemetry and receipt fed to the ledger at `decided`; returns the reward it was accepted with."""
    telemetry, message, digest = box.print_job(job, start, seconds)
    [(_box, found, verdict)] = verifier.feed([*telemetry, message], decided)
    assert found == digest and verdict.state == "accepted", verdict
    return verdict.reward


def test_a_verified_receipt_is_anchored_claimed_and_the_owner_paid_its_reward(network, verifier):
    job = new_job(estimate_s=3600)
    box, owner = _box(verifier, network, job)
    reward = _print(verifier, box, job, T0, 3600, T0 + 3700)
    assert reward == unattested(rewards.reward("done", "PLA", 3600, 3600)) > 0

    assert verifier.work.anchor(T0 + 3700) == []  # its epoch is still open
    [anchored], [claimed] = verifier.settle(T0 + DAY)
    assert anchored.state == "done" and anchored.tx and claimed.state == "done" and claimed.gas < 130_000
    assert network.balance(owner) == reward and verifier.ledger.paid(box.box_id) == reward
    body, _seq = verifier.ledger.report(box.box_id)
    assert body["paid"] == str(reward) and body["transactions"] == [{"tx": claimed.tx, "amount": str(reward)}]

    assert verifier.settle(T0 + 2 * DAY) == ([], [])  # run again: nothing anchored twice, nothing claimed twice
    assert network.balance(owner) == reward


def test_a_replayed_claim_pays_nothing(network, verifier):
    job = new_job()
    box, owner = _box(verifier, network, job)
    reward = _print(verifier, box, job, T0, 1800, T0 + 2000)
    verifier.work.anchor(T0 + DAY)
    ready = verifier.signed_claims()
    assert [o.state for o in verifier.work.relay(ready, T0 + DAY)] == ["done"]
    again = verifier.work.relay(ready, T0 + DAY)  # the same claim id: the relayer sends nothing
    assert [o.state for o in again] == ["done"] and network.balance(owner) == reward
    with pytest.raises(evm.TransactionFailed, match="NothingToClaim"):
        network.claim(ready[0][1])  # the same signed claim, sent by anyone: the contract pays nothing
    assert network.balance(owner) == reward and verifier.ledger.paid(box.box_id) == reward


def test_an_expired_claim_pays_nothing_and_is_reported(network, verifier):
    job = new_job()
    box, owner = _box(verifier, network, job)
    _print(verifier, box, job, T0, 1800, T0 + 2000)
    verifier.work.anchor(T0 + DAY)
    [(box_id, signed)] = verifier.signed_claims(validity=-1)
    [outcome] = verifier.work.relay([(box_id, signed)], T0 + DAY)
    assert outcome.state == "reverted" and "ClaimExpired" in outcome.note
    assert network.balance(owner) == 0 and verifier.ledger.paid(box.box_id) == 0


def test_fewer_than_k_signatures_pay_nothing(network, verifier):
    job = new_job()
    box, owner = _box(verifier, network, job)
    _print(verifier, box, job, T0, 1800, T0 + 2000)
    verifier.work.anchor(T0 + DAY)
    due = verifier.work.due_claims()
    one = network.verifiers[0]
    signatures = {one.address: {c: one.sign(c, verifier.described.domain) for _b, c in due}}
    ready, short = settle.gather(due, verifier.described.domain, signatures, verifier.described.verifiers, 2)
    assert ready == [] and short == [(box.box_id, short[0][1])] and "1 distinct verifier signatures, 2 needed" in (
        short[0][1])  # fmt: skip
    with pytest.raises(evm.TransactionFailed, match="NotEnoughSignatures"):
        network.claim(network.sign(due[0][1].box_key, due[0][1].total, signers=[one]))
    assert network.balance(owner) == 0


def test_a_reverted_claim_is_noticed_and_retried_once_the_cause_is_gone(network, verifier):
    job = new_job()
    box, owner = _box(verifier, network, job)
    reward = _print(verifier, box, job, T0, 1800, T0 + 2000)
    verifier.work.anchor(T0 + DAY)
    key = receipt.box_key_hash(box.public)
    deploy.call_admin(network.w3, network.admin, network.deployment.registry, "removeBox", key)
    [outcome] = verifier.work.relay(verifier.signed_claims(), T0 + DAY)
    assert outcome.state == "reverted" and "BoxNotRegistered" in outcome.note  # mined with status 0, noticed
    assert verifier.ledger.paid(box.box_id) == 0 and network.balance(owner) == 0
    network.register_box(key, owner)
    [outcome] = verifier.work.relay(verifier.signed_claims(), T0 + DAY)
    assert outcome.state == "done" and network.balance(owner) == reward == verifier.ledger.paid(box.box_id)


def test_a_box_offline_for_a_day_is_paid_its_backlog_exactly_once(network, verifier):
    job = new_job(estimate_s=3600)
    online, online_owner = _box(verifier, network, job)
    offline, offline_owner = _box(verifier, network, job)
    paid_online = _print(verifier, online, job, T0, 3600, T0 + 3700)
    # The offline box prints three times on day 1; its messages reach the network only on day 2.
    backlog = [offline.print_job(job, T0 + i * 4000, 3000 + i * 300) for i in range(3)]
    verifier.settle(T0 + DAY)
    assert network.balance(online_owner) == paid_online and network.balance(offline_owner) == 0

    decided = verifier.feed([m for telemetry, message, _d in backlog for m in (*telemetry, message)], T0 + DAY + 60)
    expected = sum(verdict.reward for _b, _h, verdict in decided)
    assert [v.state for _b, _h, v in decided] == ["accepted"] * 3 and expected == sum(

        unattested(rewards.reward("done", "PLA", 3000 + i * 300, 3600)) for i in range(3))  # fmt: skip
    paid_online += _print(verifier, online, job, T0 + DAY, 3600, T0 + DAY + 3700)
    for day in (2, 3, 4):  # rounds repeated: nothing more is paid
        verifier.settle(T0 + day * DAY)
        assert network.balance(offline_owner) == expected and network.balance(online_owner) == paid_online
    assert verifier.ledger.paid(offline.box_id) == expected == verifier.ledger.earned(offline.box_id)


def test_claims_are_cosigned_through_files_by_a_second_verifier_with_its_own_ledger(network, verifier, tmp_path):
    job = new_job()
    box, owner = _box(verifier, network, job)
    telemetry, message, _digest = box.print_job(job, T0, 2400)
    verifier.feed([*telemetry, message], T0 + 2500)
    other = Ledger(str(tmp_path / "other.sqlite"))
    other.add_box(verifier.ledger.boxes()[box.box_id], T0)
    other.add_job(job, T0)
    facts = [core.read(t, p, other.boxes()) for t, p in [*telemetry, message]]
    other.settle(other.ingest(facts, T0 + 2500), T0 + 2500)
    verifier.work.anchor(T0 + DAY)

    domain = verifier.described.domain
    due = verifier.work.due_claims()
    settle.write_claims(str(tmp_path / "claims.json"), domain, due)
    first, second = network.verifiers[0], network.verifiers[1]
    read_back = settle.read_claims(str(tmp_path / "claims.json"), domain)
    signed, refused = settle.cosign(second, other, read_back, domain, network.now())
    assert refused == [] and len(signed) == 1
    settle.write_signatures(str(tmp_path / "second.json"), domain, second.address, signed)
    signer, found = settle.read_signatures(str(tmp_path / "second.json"), domain)
    own = {c: first.sign(c, domain) for _b, c in due}
    ready, short = settle.gather(due, domain, {first.address: own, signer: found}, verifier.described.verifiers, 2)
    assert short == [] and [o.state for o in verifier.work.relay(ready, T0 + DAY)] == ["done"]
    assert network.balance(owner) == other.earned(box.box_id) > 0

    inflated = [(box.box_id, type(due[0][1])(due[0][1].box_key, due[0][1].total + 1, due[0][1].deadline))]
    signed, refused = settle.cosign(second, other, inflated, domain, network.now())
    assert signed == {} and "backs" in refused[0]  # a co-signer signs only what its own verdicts add up to
    other.close()


def test_a_batch_file_proves_each_receipt_and_audits_against_the_chain(network, verifier, tmp_path):
    job = new_job()
    box, _owner = _box(verifier, network, job)
    hashes = []
    for i in range(5):
        telemetry, message, digest = box.print_job(job, T0 + i * 3000, 2000)
        verifier.feed([*telemetry, message], T0 + 2500 + i * 3000)
        hashes.append(digest)
    [anchored] = verifier.work.anchor(T0 + DAY)
    root, epoch, count, path, tx = verifier.ledger.batch_of(hashes[2])
    assert (epoch, count, tx) == ((T0 + 2500) // DAY, 5, anchored.tx)
    batch = batches.read(path)
    assert batch.root == root and verifier.work.included_on_chain(batch, batches.index_of(batch, hashes[2]))
    assert "5 receipts" in verifier.work.audit(batch)

    with open(path) as handle:
        original = handle.read()
    data = json.loads(original)
    data["receipts"][1]["reward"] = str(int(data["receipts"][1]["reward"]) + 1)
    with pytest.raises(batches.BatchError, match="root"):
        batches.load(data)  # a reward changed after the fact: the root no longer matches
    data = json.loads(original)
    data["receipts"][0]["envelope"] = data["receipts"][0]["envelope"].replace('"PLA"', '"ABS"')
    with pytest.raises(batches.BatchError, match="receipt 0: receipt_hash"):
        batches.load(data)


def test_a_claim_paid_before_a_crash_is_recorded_by_the_next_round_and_not_sent_again(network, verifier):
    job = new_job()
    box, owner = _box(verifier, network, job)
    reward = _print(verifier, box, job, T0, 1800, T0 + 2000)
    verifier.work.anchor(T0 + DAY)
    [(_box_id, signed)] = verifier.signed_claims()
    verifier.relayer.submit_claim(signed)  # relayed, then the process stops before the ledger heard of it
    assert verifier.relayer.run(timeout=30) and network.balance(owner) == reward
    assert verifier.ledger.paid(box.box_id) == 0
    assert verifier.work.due_claims() == []  # the chain says paid: nothing to claim, and the ledger catches up
    assert verifier.ledger.paid(box.box_id) == reward and network.balance(owner) == reward
