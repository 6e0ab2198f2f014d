"""The relayer against real chains: each job once, reverts noticed, restarts of the relayer and of anvil survived."""

import hashlib
import time

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from chain_client import evm
from chain_client.merkle import Leaf, MerkleTree, leaf_hash
from chain_client.relayer import (
    MAX_ATTEMPTS,
    Check,
    CheckEffect,
    Job,
    RelayCore,
    Relayer,
    Sign,
    State,
    SyncNonce,
)
from tests.chain_client.onchain.conftest import Anvil, make_network

TOKEN = 10**18


def test_claims_and_anchors_are_relayed_once_and_a_revert_is_noticed(network, tmp_path):
    relayer = Relayer(network.w3, network.admin, network.deployment, tmp_path / "relay.sqlite")
    boxes = [network.register("box-%d" % i) for i in range(6)]
    already = network.sign(boxes[4][0], 4 * TOKEN)
    network.claim(already)  # paid before the relayer sees it
    jobs = [relayer.submit_claim(network.sign(box, (i + 1) * TOKEN)) for i, (box, _) in enumerate(boxes[:4])]
    replay = relayer.submit_claim(already)
    expired = relayer.submit_claim(network.sign(boxes[5][0], TOKEN, deadline=network.now() - 10))
    anchor = relayer.submit_anchor(b"\x42" * 32, 3, 9)
    assert relayer.submit_claim(network.sign(boxes[0][0], TOKEN)) is jobs[0]  # same box and total: same job
    assert relayer.run(timeout=60)
    assert [job.state for job in jobs] == [State.DONE] * 4
    assert all(job.gas_used < 130_000 for job in jobs)
    assert [network.balance(owner) for _, owner in boxes] == [TOKEN, 2 * TOKEN, 3 * TOKEN, 4 * TOKEN, 4 * TOKEN, 0]
    assert replay.state is State.DONE and "NothingToClaim" in replay.note  # mined with status 0, effect there
    assert expired.state is State.REVERTED and "ClaimExpired" in expired.note
    assert anchor.state is State.DONE
    assert network.rewards.functions.anchors(b"\x42" * 32).call()[:2] == [3, 9]
    for bad, message in ((b"\x00" * 32, "not all zero"), (b"\x01" * 31, "32 bytes")):
        with pytest.raises(ValueError, match=message):
            relayer.submit_anchor(bad, 1, 1)
    with pytest.raises(ValueError, match="count"):
        relayer.submit_anchor(b"\x43" * 32, 1, 0)
    assert len(relayer.core.jobs) == 7  # nothing was queued by the refused anchors
    retry = relayer.submit_claim(network.sign(boxes[5][0], TOKEN))  # a refused claim may be sent again
    assert retry.state is State.QUEUED
    assert relayer.run(timeout=60)
    assert network.balance(boxes[5][1]) == TOKEN
    relayer.close()


class CrashingRelayer(Relayer):
    """Dies right after writing a signed transaction down, before it leaves (a power cut at the worst time)."""

    def _broadcast(self, job, now):
        raise SystemExit("power cut")


def test_a_restarted_relayer_sends_nothing_twice(chain, tmp_path):
    network = make_network(chain)
    boxes = [network.register("box-%d" % i) for i in range(8)]
    nonce_before = chain.eth.get_transaction_count(network.admin.address)
    relayer = Relayer(network.w3, network.admin, network.deployment, tmp_path / "relay.sqlite")
    for i, (box, _) in enumerate(boxes[:4]):
        relayer.submit_claim(network.sign(box, (i + 1) * TOKEN))
    relayer.step()  # the nonce
    relayer.step()  # signed and sent, receipts not read yet
    assert {job.state for job in relayer.core.jobs.values()} == {State.SENT}
    relayer.close()
    crashing = CrashingRelayer(network.w3, network.admin, network.deployment, tmp_path / "relay.sqlite")
    for i, (box, _) in enumerate(boxes[4:]):
        crashing.submit_claim(network.sign(box, (i + 5) * TOKEN))
    crashing.step()  # a fresh relayer first asks the chain for its nonce
    with pytest.raises(SystemExit):
        crashing.step()
    crashing.close()
    again = Relayer(network.w3, network.admin, network.deployment, tmp_path / "relay.sqlite")
    for i, (box, _) in enumerate(boxes):  # the caller resubmits everything after its own restart
        again.submit_claim(network.sign(box, (i + 1) * TOKEN))
    assert again.run(timeout=60)
    assert all(job.state is State.DONE for job in again.core.jobs.values())
    assert [network.balance(owner) for _, owner in boxes] == [(i + 1) * TOKEN for i in range(8)]
    assert chain.eth.get_transaction_count(network.admin.address) == nonce_before + 8  # one transaction each
    assert all(job.attempts == 0 for job in again.core.jobs.values())  # none refused, none sent twice
    again.close()


def test_an_anvil_restart_mid_relay_is_survived(tmp_path):
    node = Anvil(state=tmp_path / "anvil-state.json").start()
    try:
        w3 = evm.connect(node.url)
        network = make_network(w3)
        boxes = [network.register("box-%d" % i) for i in range(30)]
        w3.provider.make_request("evm_setAutomine", [False])  # a block a second, so transactions wait in the pool
        w3.provider.make_request("evm_setIntervalMining", [1])
        relayer = Relayer(w3, network.admin, network.deployment, tmp_path / "relay.sqlite")
        for i, (box, _) in enumerate(boxes[:15]):
            relayer.submit_claim(network.sign(box, (i + 1) * TOKEN, deadline=network.now() + 3600))
        assert relayer.run(timeout=60)
        for i, (box, _) in enumerate(boxes[15:]):
            relayer.submit_claim(network.sign(box, (i + 16) * TOKEN, deadline=network.now() + 3600))
        relayer.step()  # sent, waiting in the node's pool for the next block
        node.stop()  # the pool is lost; the chain so far is kept
        for _ in range(3):
            assert relayer.step() >= 0  # the node is away: no exception, the relayer waits
            time.sleep(0.1)
        relayer.close()  # and the relayer restarts too, while the node is still away
        relayer = Relayer(w3, network.admin, network.deployment, tmp_path / "relay.sqlite")
        relayer.step()
        node.start()
        w3.provider.make_request("evm_mine", [])
        assert [network.balance(owner) for _, owner in boxes[15:]] == [0] * 15  # the restart lost them
        assert relayer.run(timeout=90)
        assert all(job.state is State.DONE for job in relayer.core.jobs.values())
        assert [network.balance(owner) for _, owner in boxes] == [(i + 1) * TOKEN for i in range(30)]
        relayer.close()
    finally:
        node.stop()


def job(name: str) -> Job:
    return Job(name, "claim", "0x" + "00" * 20, b"", 100_000, {})


def test_the_core_numbers_nonces_in_order_and_reuses_a_refused_ones():
    core = RelayCore()
    for name in ("a", "b", "c"):
        core.add(job(name))
    assert core.due(0.0) == [SyncNonce()]
    core.nonce_synced(7)
    signs = core.due(0.0)
    assert [(a.job.id, a.nonce) for a in signs] == [("a", 7), ("b", 8), ("c", 9)]
    for a in signs:
        core.signed(a.job, a.nonce, a.job.id.encode() * 32, b"raw", 0.0)
    a, b, c = (core.jobs[n] for n in "abc")
    core.broadcast_failed(b, "underpriced", "replacement underpriced", 0.0)
    assert b.state is State.QUEUED and b.nonce == 8 and b.fee_level == 1
    core.broadcast_failed(c, "nonce too low", "nonce too low", 0.0)
    assert c.state is State.CHECKING
    due = core.due(100.0)
    assert [type(x) for x in due] == [Check, CheckEffect, Sign] and due[2].nonce == 8
    core.effect(c, False, 100.0)  # its nonce went elsewhere and its effect is missing: a new nonce
    assert c.state is State.QUEUED and c.nonce is None
    core.receipt(a, 1, 5, 90_000)
    assert a.state is State.DONE
    assert [(x.job.id, x.nonce) for x in core.due(100.0) if isinstance(x, Sign)] == [("b", 8), ("c", 10)]


def test_the_core_gives_up_and_renumbers_what_came_after():
    core = RelayCore()
    for name in ("a", "b"):
        core.add(job(name))
    core.nonce_synced(0)
    for a in core.due(0.0):
        core.signed(a.job, a.nonce, a.job.id.encode() * 32, b"raw", 0.0)
    a, b = core.jobs["a"], core.jobs["b"]
    for attempt in range(MAX_ATTEMPTS):
        core.broadcast_failed(a, "funds", "insufficient funds", float(attempt))
    assert a.state is State.FAILED and "insufficient funds" in a.note
    assert b.state is State.QUEUED and b.nonce is None and core.next_nonce is None
    core.unavailable(10.0)
    assert core.due(10.0) == []  # paused while the node is away


@st.composite
def claim_sequences(draw):
    increments = draw(st.lists(st.integers(1, 50), min_size=1, max_size=5))
    order = draw(st.lists(st.integers(0, len(increments) - 1), min_size=1, max_size=8))
    return increments, order


_NETWORK = {}


@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(claim_sequences())
def test_property_no_sequence_of_claims_replays_and_reorders_pays_more_than_the_highest_total(case):
    increments, order = case
    if "n" not in _NETWORK:
        _NETWORK["n"] = make_network(evm.in_process())
    network = _NETWORK["n"]
    box, owner = network.register("box-%d" % len(network.boxes))
    totals, total = [], 0
    for step in increments:
        total += step * TOKEN
        totals.append(total)
    signed = [network.sign(box, t) for t in totals]
    sent_max = 0
    for index in order:
        before = network.balance(owner)
        try:
            network.claim(signed[index])
        except evm.TransactionFailed as exc:
            assert exc.reason.startswith("NothingToClaim")
        sent_max = max(sent_max, totals[index])
        assert network.balance(owner) == sent_max  # what was paid is the highest total sent, never more
        assert network.balance(owner) >= before
    assert network.balance(owner) <= totals[-1]


def test_a_batch_is_anchored_and_each_box_claims_what_its_receipts_earned(network, tmp_path):
    """The whole on-chain path: receipts batched, the root anchored, totals claimed, proofs checked on chain."""
    boxes = [network.register("box-%d" % i) for i in range(3)]
    leaves = [
        Leaf(hashlib.sha256(b"receipt %d" % i).digest(), boxes[i % 3][0], (i % 4) * TOKEN // 4) for i in range(20)
    ]
    tree = MerkleTree(leaves)
    earned = {box: sum(leaf.reward for leaf in leaves if leaf.box_key == box) for box, _ in boxes}
    relayer = Relayer(network.w3, network.admin, network.deployment, tmp_path / "relay.sqlite")
    relayer.submit_anchor(tree.root, 7, len(tree))
    claims = [relayer.submit_claim(network.sign(box, total)) for box, total in earned.items()]
    assert relayer.run(timeout=60)
    assert all(job.state is State.DONE for job in claims)
    assert [network.balance(owner) for _, owner in boxes] == [earned[box] for box, _ in boxes]
    verify = network.rewards.functions.verifyInclusion
    assert all(verify(leaf_hash(leaf), tree.proof(i), tree.root).call() for i, leaf in enumerate(leaves))
    relayer.close()
