"""The reward contracts on a real EVM (py-evm in process and anvil): claims, refusals, limits, inclusion proofs."""

import hashlib

import pytest
from eth_account import Account
from web3.logs import DISCARD

from chain_client import claims, deploy, evm
from chain_client.merkle import Leaf, MerkleTree, leaf_hash
from tests.chain_client.onchain.conftest import make_network

TOKEN = 10**18


def refused(network, signed, reason_start, signatures=None) -> str:
    """Send a claim that must revert; return its decoded reason."""
    with pytest.raises(evm.TransactionFailed) as info:
        network.claim(signed, signatures)
    assert info.value.reason.startswith(reason_start), info.value.reason
    assert info.value.receipt["status"] == 0
    return info.value.reason


def test_a_claim_pays_the_owner_what_the_verifiers_signed(network):
    box, owner = network.register("box-1")
    receipt = network.claim(network.sign(box, 12 * TOKEN))
    assert network.balance(owner) == 12 * TOKEN
    assert receipt["gasUsed"] < 130_000
    assert network.rewards.functions.paid(box).call() == 12 * TOKEN
    events = network.rewards.events.Claimed().process_receipt(receipt, errors=DISCARD)
    assert [(e.args.boxKey, e.args.owner, e.args.total, e.args.amount) for e in events] == [
        (box, owner, 12 * TOKEN, 12 * TOKEN)
    ]
    network.claim(network.sign(box, 20 * TOKEN))  # the next total pays the difference
    assert network.balance(owner) == 20 * TOKEN


def test_a_replayed_or_lower_total_pays_nothing(network):
    box, owner = network.register("box-1")
    signed = network.sign(box, 5 * TOKEN)
    network.claim(signed)
    assert refused(network, signed, "NothingToClaim") == "NothingToClaim(boxKey=0x%s, total=%d, paid=%d)" % (
        box.hex(),
        5 * TOKEN,
        5 * TOKEN,
    )
    refused(network, network.sign(box, 4 * TOKEN), "NothingToClaim")
    assert network.balance(owner) == 5 * TOKEN


def test_an_expired_claim_pays_nothing(network):
    box, owner = network.register("box-1")
    refused(network, network.sign(box, TOKEN, deadline=network.now() - 1), "ClaimExpired")
    assert network.balance(owner) == 0


def test_signatures_must_be_k_distinct_known_verifiers_in_order(network):
    box, owner = network.register("box-1")
    signed = network.sign(box, TOKEN)
    one = network.sign(box, TOKEN, signers=network.verifiers[:1])
    refused(network, one, "NotEnoughSignatures(given=1, threshold=2)")
    refused(network, signed, "DuplicateSigner", [signed.signatures[0], signed.signatures[0]])
    refused(network, signed, "SignersNotAscending", list(reversed(signed.signatures)))
    stranger = claims.VerifierKey(b"\x09" * 32)
    mixed = {stranger.address: stranger.sign(signed.claim, network.domain)}
    refused(network, signed, "UnknownSigner", [signed.signatures[0], mixed[stranger.address]])
    other_total = network.sign(box, 2 * TOKEN)  # signatures over another total do not recover verifiers
    refused(network, signed, "UnknownSigner", list(other_total.signatures))
    refused(network, signed, "InvalidSignature(index=0)", [b"\x01" * 64, signed.signatures[1]])
    assert network.balance(owner) == 0
    network.claim(signed)
    assert network.balance(owner) == TOKEN


def test_an_unregistered_or_removed_box_is_not_paid(network):
    refused(network, network.sign(hashlib.sha256(b"never registered").digest(), TOKEN), "BoxNotRegistered")
    box, owner = network.register("box-1")
    deploy.call_admin(network.w3, network.admin, network.deployment.registry, "removeBox", box)
    assert network.deployment.registry.functions.boxes(box).call()[2] is False
    refused(network, network.sign(box, TOKEN), "BoxNotRegistered")
    assert network.balance(owner) == 0


def test_the_epoch_limit_holds_and_the_next_epoch_pays_the_rest(chain):
    network = make_network(chain, epoch_length=86_400, epoch_limit=100 * TOKEN)
    box, owner = network.register("box-1")
    network.claim(network.sign(box, 60 * TOKEN))
    late = network.sign(box, 130 * TOKEN, deadline=network.now() + 3 * 86_400)
    refused(network, late, "EpochLimitExceeded")
    assert network.balance(owner) == 60 * TOKEN
    evm.advance_time(chain, 86_400)
    network.claim(late)  # the same cumulative claim, one epoch later
    assert network.balance(owner) == 130 * TOKEN
    assert network.rewards.functions.emission().call()[1] == 70 * TOKEN


def test_the_cap_holds(chain):
    cap = 3_333_333_333 * TOKEN
    network = make_network(chain, epoch_limit=2**127)
    assert network.token.functions.cap().call() == cap
    assert network.token.functions.symbol().call() == "3DP"
    assert network.token.functions.decimals().call() == 18
    box, _ = network.register("box-1")
    other, other_owner = network.register("box-2")
    refused(network, network.sign(box, cap + 1), "ERC20ExceededCap")
    network.claim(network.sign(box, cap - TOKEN))
    refused(network, network.sign(other, 2 * TOKEN), "ERC20ExceededCap")
    network.claim(network.sign(other, TOKEN))
    assert network.token.functions.totalSupply().call() == cap
    assert network.balance(other_owner) == TOKEN


def test_a_box_offline_for_a_day_is_paid_its_cumulative_total_once(network):
    box, owner = network.register("box-1")
    daily = [network.sign(box, total * TOKEN, deadline=network.now() + 3 * 86_400) for total in (3, 7, 12)]
    network.claim(daily[0])
    evm.advance_time(network.w3, 86_400)  # offline: the claim of 7 never went out
    network.claim(daily[2])
    refused(network, daily[1], "NothingToClaim")
    assert network.balance(owner) == 12 * TOKEN


def test_only_the_reward_contract_mints_and_only_roles_anchor_register_and_set_verifiers(network):
    stranger = Account.create()
    evm.fund(network.w3, stranger.address, 10**20)
    cases = [
        (network.token, "mint", [stranger.address, TOKEN], "NotMinter"),
        (network.rewards, "anchor", [b"\x01" * 32, 1, 1], "AccessControlUnauthorizedAccount"),
        (network.rewards, "setVerifiers", [[stranger.address], 1], "AccessControlUnauthorizedAccount"),
        (network.deployment.registry, "registerBox", [b"\x01" * 32, stranger.address, stranger.address], "Access"),
    ]
    for contract, fn, args, reason in cases:
        with pytest.raises(evm.TransactionFailed) as info:
            deploy.call_admin(network.w3, stranger, contract, fn, *args)
        assert info.value.reason.startswith(reason), info.value.reason
    with pytest.raises(evm.TransactionFailed, match="InvalidVerifierSet"):
        deploy.call_admin(network.w3, network.admin, network.rewards, "setVerifiers", [stranger.address] * 2, 1)
    assert network.rewards.functions.verifiers().call() == [[v.address for v in network.verifiers], 2]


def test_anchored_receipts_prove_inclusion_on_chain_and_tampering_fails(network):
    box, _ = network.register("box-1")
    leaves = [Leaf(hashlib.sha256(b"receipt %d" % i).digest(), box, (i + 1) * TOKEN) for i in range(37)]
    tree = MerkleTree(leaves)
    verify = network.rewards.functions.verifyInclusion
    assert verify(tree.leaf_hash(0), tree.proof(0), tree.root).call() is False  # not anchored yet
    receipt = evm.transact(network.w3, network.admin, network.rewards.address, anchor_data(network, tree), 200_000)
    assert network.rewards.events.Anchored().process_receipt(receipt, errors=DISCARD)[0].args.count == 37
    assert network.rewards.functions.anchors(tree.root).call()[:2] == [5, 37]
    for i in (0, 1, 17, 36):
        leaf = leaf_hash(leaves[i])
        assert network.rewards.functions.leafOf(*leaves[i]).call() == leaf
        assert verify(leaf, tree.proof(i), tree.root).call() is True
    proof = tree.proof(3)
    proof[1] = bytes(b ^ 1 if j == 0 else b for j, b in enumerate(proof[1]))
    assert verify(leaf_hash(leaves[3]), proof, tree.root).call() is False
    more = Leaf(leaves[3].receipt_hash, box, leaves[3].reward + 1)  # the reward changed
    assert verify(leaf_hash(more), tree.proof(3), tree.root).call() is False
    with pytest.raises(evm.TransactionFailed, match="AlreadyAnchored"):
        evm.transact(network.w3, network.admin, network.rewards.address, anchor_data(network, tree), 200_000)


def anchor_data(network, tree: MerkleTree) -> bytes:
    return bytes.fromhex(network.rewards.encode_abi("anchor", args=[tree.root, 5, len(tree)])[2:])
