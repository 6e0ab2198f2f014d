"""Merkle batches against @openzeppelin/merkle-tree, claims against eth-account's EIP-712, artifacts rebuilt."""

import hashlib
import json
import random
import subprocess

import pytest
from eth_account import Account
from eth_account.messages import encode_typed_data

from chain_client import claims, contracts
from chain_client.merkle import Leaf, MerkleError, MerkleTree, leaf_hash, verify
from tests.chain_client.onchain.conftest import ROOT

VECTORS = ROOT / "tests" / "vectors" / "chain"


def oz_merkle(leaves: list[Leaf], dump: dict | None = None) -> dict:
    """Ask the JS library for the root and proofs of the same leaves (and to load and validate `dump`)."""
    values = [["0x" + x.receipt_hash.hex(), "0x" + x.box_key.hex(), str(x.reward)] for x in leaves]
    script = ROOT / "tests" / "chain_client" / "onchain" / "oz_merkle.js"
    result = subprocess.run(
        ["node", str(script)], input=json.dumps({"values": values, "dump": dump}), capture_output=True, text=True
    )
    assert result.returncode == 0, result.stderr
    return json.loads(result.stdout)


def random_leaves(count: int, seed: int) -> list[Leaf]:
    rng = random.Random(seed)
    boxes = [rng.randbytes(32) for _ in range(max(1, count // 7))]
    return [
        Leaf(rng.randbytes(32), rng.choice(boxes), rng.choice([0, 1, 10**18, rng.getrandbits(256)]))
        for _ in range(count)
    ]


@pytest.mark.parametrize("count", [1, 2, 3, 4, 5, 7, 8, 9, 16, 33, 100])
def test_the_tree_root_proofs_and_dump_are_the_javascript_librarys(count):
    leaves = random_leaves(count, count)
    if count > 4:
        leaves[3] = leaves[1]  # a duplicated receipt keeps its place, as in the JS library
    tree = MerkleTree(leaves)
    reference = oz_merkle(leaves, tree.dump())
    assert "0x" + tree.root.hex() == reference["root"] == reference["loadedRoot"]
    assert [["0x" + p.hex() for p in tree.proof(i)] for i in range(count)] == reference["proofs"]
    assert tree.dump() == reference["dump"]
    for i, leaf in enumerate(leaves):
        assert verify(leaf_hash(leaf), tree.proof(i), tree.root)


def test_the_merkle_vectors_hold():
    for case in json.loads((VECTORS / "merkle.json").read_text())["cases"]:
        leaves = [Leaf(bytes.fromhex(r[2:]), bytes.fromhex(b[2:]), int(v)) for r, b, v in case["values"]]
        tree = MerkleTree(leaves)
        assert ["0x" + leaf_hash(x).hex() for x in leaves] == case["leaf_hashes"]
        assert "0x" + tree.root.hex() == case["root"]
        assert [["0x" + p.hex() for p in tree.proof(i)] for i in range(len(leaves))] == case["proofs"]


def test_bad_batches_and_dumps_are_refused_with_the_reason():
    with pytest.raises(MerkleError, match="at least one"):
        MerkleTree([])
    with pytest.raises(MerkleError, match="receipt_hash must be 32 bytes"):
        MerkleTree([Leaf(b"short", bytes(32), 1)])
    with pytest.raises(MerkleError, match="reward must be an integer"):
        MerkleTree([Leaf(bytes(32), bytes(32), -1)])
    tree = MerkleTree(random_leaves(9, 1))
    dump = tree.dump()
    assert MerkleTree.load(dump).root == tree.root
    dump["values"][2]["value"][2] = str(int(dump["values"][2]["value"][2]) + 1)  # a reward raised afterwards
    with pytest.raises(MerkleError, match="does not match"):
        MerkleTree.load(dump)
    with pytest.raises(MerkleError, match="standard-v1"):
        MerkleTree.load({"format": "other"})
    with pytest.raises(MerkleError, match="no receipt 9"):
        tree.proof(9)


def test_claim_digest_and_signatures_match_eth_account_and_the_vectors():
    vectors = json.loads((VECTORS / "claims.json").read_text())
    for case in vectors["cases"]:
        domain = claims.Domain(case["chain_id"], case["contract"])
        claim = claims.Claim(bytes.fromhex(case["box_key"][2:]), int(case["total"]), case["deadline"])
        assert "0x" + domain.separator().hex() == case["domain_separator"]
        assert "0x" + claim.digest(domain).hex() == case["digest"]
        independent = encode_typed_data(full_message=claim.typed_data(domain))
        key = bytes.fromhex(case["verifier_key"][2:])
        theirs = Account.sign_message(independent, key)
        assert bytes(theirs.message_hash) == claim.digest(domain)
        verifier = claims.VerifierKey(key)
        assert verifier.address == case["verifier_address"] == Account.from_key(key).address
        ours = verifier.sign(claim, domain)
        assert ours == bytes(theirs.signature) and "0x" + ours.hex() == case["signature"]  # RFC 6979: deterministic
        assert claims.recover(claim, domain, ours) == verifier.address


def test_the_box_key_is_sha256_of_the_ed25519_key_and_names_the_same_box_as_its_id():
    import base64

    from wire.keytext import box_id

    for case in json.loads((VECTORS / "box_keys.json").read_text())["cases"]:
        public = bytes.fromhex(case["ed25519_public"][2:])
        assert "0x" + claims.box_key(public).hex() == case["box_key"]
        assert base64.b32encode(claims.box_key(public)[:10]).decode().lower() == box_id(public)
    with pytest.raises(claims.ClaimError, match="32 bytes"):
        claims.box_key(b"\x01" * 64)


def test_collect_keeps_k_known_signers_in_the_contracts_order_and_says_what_is_wrong():
    domain = claims.Domain(31337, "0x" + "ab" * 20)
    claim = claims.Claim(hashlib.sha256(b"box").digest(), 10**18, 2_000_000_000)
    keys = [claims.VerifierKey(bytes([i + 1]) * 32) for i in range(3)]
    addresses = [k.address for k in keys]
    signed = claims.collect(claim, domain, {k.address: k.sign(claim, domain) for k in keys}, addresses, 2)
    signers = [claims.recover(claim, domain, s) for s in signed.signatures]
    assert len(signers) == 2 and [int(a, 16) for a in signers] == sorted(int(a, 16) for a in signers)
    with pytest.raises(claims.ClaimError, match="1 distinct verifier signatures, 2 needed"):
        claims.collect(claim, domain, {addresses[0]: keys[0].sign(claim, domain)}, addresses, 2)
    with pytest.raises(claims.ClaimError, match="was made by"):
        claims.collect(claim, domain, {addresses[1]: keys[0].sign(claim, domain)}, addresses, 1)
    stranger = claims.VerifierKey(b"\x07" * 32)
    with pytest.raises(claims.ClaimError, match="not one of the verifier keys"):
        claims.collect(claim, domain, {stranger.address: stranger.sign(claim, domain)}, addresses, 1)
    with pytest.raises(claims.ClaimError, match="32-byte sha256"):
        claims.Claim(b"short", 1, 1)
    assert "\\x01" not in repr(keys[0]) and keys[0].address in repr(keys[0])  # the secret is never shown


def test_recompiling_reproduces_the_committed_artifacts_byte_for_byte(tmp_path):
    script = ROOT / "chain_client" / "contracts" / "compile.js"
    result = subprocess.run(["node", str(script), str(tmp_path)], capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stderr
    for name in contracts.NAMES:
        committed = ROOT / "chain_client" / "contracts" / "build" / (name + ".json")
        assert (tmp_path / (name + ".json")).read_bytes() == committed.read_bytes(), name
        artifact = contracts.load(name)
        assert artifact.compiler["version"].startswith("0.8.37+")
        assert artifact.compiler["settings"]["evmVersion"] == "cancun"
        assert artifact.bytecode and artifact.deployed_bytecode
