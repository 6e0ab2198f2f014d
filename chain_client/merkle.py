"""Merkle batches of print receipts, laid out exactly as OpenZeppelin's StandardMerkleTree (docs/chain.md)."""

from collections.abc import Iterable, Sequence
from typing import NamedTuple

from Crypto.Hash import keccak as _keccak

LEAF_ENCODING = ["bytes32", "bytes32", "uint256"]
MAX_LEAVES = 1 << 20  # one batch; an anchor transaction costs the same for any size


class MerkleError(ValueError):
    """A batch or proof given to us is malformed (the caller's or the batch file's fault)."""


def keccak(data: bytes) -> bytes:
    """Keccak-256 (Ethereum's, not SHA3-256)."""
    return _keccak.new(digest_bits=256, data=data).digest()


class Leaf(NamedTuple):
    """One accepted receipt in a batch: its hash, the box's key hash and the reward in token units."""

    receipt_hash: bytes
    box_key: bytes
    reward: int

    def check(self) -> None:
        """Refuse a leaf whose fields do not fit their Solidity types."""
        if not isinstance(self.receipt_hash, bytes) or len(self.receipt_hash) != 32:
            raise MerkleError("receipt_hash must be 32 bytes")
        if not isinstance(self.box_key, bytes) or len(self.box_key) != 32:
            raise MerkleError("box_key must be 32 bytes")
        if not isinstance(self.reward, int) or isinstance(self.reward, bool) or not 0 <= self.reward < 1 << 256:
            raise MerkleError("reward must be an integer from 0 to 2**256 - 1")


def leaf_hash(leaf: Leaf) -> bytes:
    """keccak256(keccak256(abi.encode(receiptHash, boxKey, reward))): StandardMerkleTree's leaf."""
    leaf.check()
    return keccak(keccak(leaf.receipt_hash + leaf.box_key + leaf.reward.to_bytes(32, "big")))


def hash_pair(a: bytes, b: bytes) -> bytes:
    """Sorted-pair node hash, as OpenZeppelin's MerkleProof."""
    return keccak(a + b if a < b else b + a)


def process_proof(leaf: bytes, proof: Iterable[bytes]) -> bytes:
    """The root that `proof` leads to from the leaf hash `leaf`."""
    node = leaf
    for sibling in proof:
        if len(sibling) != 32:
            raise MerkleError("a proof element must be 32 bytes")
        node = hash_pair(node, sibling)
    return node


def verify(leaf: bytes, proof: Iterable[bytes], root: bytes) -> bool:
    """True when `proof` proves the leaf hash `leaf` under `root`."""
    return process_proof(leaf, proof) == root


class MerkleTree:
    """A StandardMerkleTree of receipt leaves: the same root, proofs and dump as @openzeppelin/merkle-tree."""

    def __init__(self, leaves: Sequence[Leaf]) -> None:
        if not leaves:
            raise MerkleError("a batch needs at least one receipt")
        if len(leaves) > MAX_LEAVES:
            raise MerkleError("a batch holds at most %d receipts, got %d" % (MAX_LEAVES, len(leaves)))
        self.leaves = [Leaf(*leaf) for leaf in leaves]
        hashes = [leaf_hash(leaf) for leaf in self.leaves]
        order = sorted(range(len(hashes)), key=hashes.__getitem__)  # stable, as the JS sort
        size = 2 * len(hashes) - 1
        tree: list[bytes] = [b""] * size
        self._tree_index = [0] * len(hashes)
        for position, value_index in enumerate(order):
            tree[size - 1 - position] = hashes[value_index]
            self._tree_index[value_index] = size - 1 - position
        for i in range(size - 1 - len(hashes), -1, -1):
            tree[i] = hash_pair(tree[2 * i + 1], tree[2 * i + 2])
        self.tree = tree

    @property
    def root(self) -> bytes:
        """The root to anchor."""
        return self.tree[0]

    def __len__(self) -> int:
        return len(self.leaves)

    def leaf_hash(self, index: int) -> bytes:
        """The leaf hash of the `index`-th receipt (in the order given)."""
        return self.tree[self._tree_index[index]]

    def proof(self, index: int) -> list[bytes]:
        """Inclusion proof of the `index`-th receipt (in the order given), as StandardMerkleTree.getProof(index)."""
        if not 0 <= index < len(self.leaves):
            raise MerkleError("no receipt %d in a batch of %d" % (index, len(self.leaves)))
        node = self._tree_index[index]
        proof = []
        while node > 0:
            proof.append(self.tree[node + 1 if node % 2 else node - 1])
            node = (node - 1) // 2
        return proof

    def dump(self) -> dict:
        """The tree as StandardMerkleTree.dump() writes it ("standard-v1"), loadable by the JS library."""
        return {
            "format": "standard-v1",
            "leafEncoding": list(LEAF_ENCODING),
            "tree": ["0x" + node.hex() for node in self.tree],
            "values": [
                {
                    "value": ["0x" + leaf.receipt_hash.hex(), "0x" + leaf.box_key.hex(), str(leaf.reward)],
                    "treeIndex": self._tree_index[i],
                }
                for i, leaf in enumerate(self.leaves)
            ],
        }

    @classmethod
    def load(cls, data: dict) -> "MerkleTree":
        """Rebuild a dumped tree from its values and refuse it unless every node is what they give."""
        if not isinstance(data, dict) or data.get("format") != "standard-v1":
            raise MerkleError("not a StandardMerkleTree dump (format standard-v1)")
        if data.get("leafEncoding") != LEAF_ENCODING:
            raise MerkleError("leaf encoding must be %s" % LEAF_ENCODING)
        try:
            leaves = [
                Leaf(bytes.fromhex(_hex(v["value"][0])), bytes.fromhex(_hex(v["value"][1])), int(v["value"][2]))
                for v in data["values"]
            ]
        except (KeyError, IndexError, TypeError, ValueError) as exc:
            raise MerkleError("a value of the dump is malformed: %s" % exc) from exc
        tree = cls(leaves)
        if (
            data.get("tree") != [("0x" + n.hex()) for n in tree.tree]
            or [v.get("treeIndex") for v in data["values"]] != tree._tree_index
        ):
            raise MerkleError("the dump's tree does not match its values")
        return tree


def _hex(text: str) -> str:
    if not isinstance(text, str) or not text.startswith("0x"):
        raise ValueError("expected 0x-prefixed hex, got %r" % (text,))
    return text[2:]
