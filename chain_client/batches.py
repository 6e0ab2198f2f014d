"""Batch files (docs/chain.md, "Batch file"): the accepted receipts of one epoch, each with its signed envelope,
its box's Ed25519 key and its inclusion proof, under the Merkle root that is anchored on chain. Anyone holding the
file can recompute the root and check every receipt's signature without the verifier's ledger: `build` makes
one, `check` refuses a file whose receipts, proofs or root do not agree, `prove` finds one receipt's proof."""

import hashlib
import json
import os
from dataclasses import dataclass

from cryptography.exceptions import InvalidSignature

from chain_client import merkle
from wire import envelope, keytext, receipt

FORMAT = "mipai-batch-v1"


class BatchError(ValueError):
    """A batch file that does not hold together; the message says which receipt and why."""


@dataclass(frozen=True)
class Entry:
    """One receipt of a batch."""

    receipt_hash: str  # hex, 64 digits
    box_id: str
    box_ed25519: bytes
    reward: int
    envelope: bytes  # the receipt's canonical signed bytes

    @property
    def leaf(self) -> merkle.Leaf:
        return merkle.Leaf(bytes.fromhex(self.receipt_hash), receipt.box_key_hash(self.box_ed25519), self.reward)


@dataclass(frozen=True)
class Batch:
    epoch: int
    entries: tuple
    tree: merkle.MerkleTree

    @property
    def root(self) -> str:
        return "0x" + self.tree.root.hex()

    def to_json(self) -> dict:
        receipts = []
        for i, entry in enumerate(self.entries):
            leaf = entry.leaf
            receipts.append({
                "receipt_hash": "0x" + entry.receipt_hash, "box_id": entry.box_id,
                "box_ed25519": entry.box_ed25519.hex(), "box_key": "0x" + leaf.box_key.hex(),
                "reward": str(entry.reward), "envelope": entry.envelope.decode(),
                "leaf": "0x" + self.tree.leaf_hash(i).hex(),
                "proof": ["0x" + node.hex() for node in self.tree.proof(i)],
            })  # fmt: skip
        return {"format": FORMAT, "epoch": self.epoch, "root": self.root, "count": len(self.entries),
                "leaf_encoding": list(merkle.LEAF_ENCODING), "receipts": receipts}  # fmt: skip


def build(epoch: int, entries) -> Batch:
    """The batch of `entries` (in the order given) for `epoch`."""
    entries = tuple(entries)
    return Batch(epoch, entries, merkle.MerkleTree([entry.leaf for entry in entries]))


def file_name(batch: Batch) -> str:
    return "batch-%d-%s.json" % (batch.epoch, batch.root[2:18])


def write(directory: str, batch: Batch) -> str:
    """Write the batch file into `directory` (atomically); the same batch written again leaves the same file."""
    os.makedirs(directory, exist_ok=True)
    path = os.path.join(directory, file_name(batch))
    text = json.dumps(batch.to_json(), indent=1, ensure_ascii=False) + "\n"
    temporary = path + ".part"
    with open(temporary, "w", encoding="utf-8") as handle:
        handle.write(text)
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(temporary, path)
    return path


def _hex(value, size: int, what: str, where: str) -> bytes:
    if isinstance(value, str) and value.startswith("0x"):
        value = value[2:]
    try:
        raw = bytes.fromhex(value) if isinstance(value, str) else b""
    except ValueError:
        raw = b""
    if len(raw) != size:
        raise BatchError("%s: %s must be %d bytes of hex" % (where, what, size))
    return raw


def load(data) -> Batch:
    """Read a batch file's JSON and check all of it: every receipt's hash, box key, signature and proof, and that
    the root recomputed from the receipts is the root it names. Raises BatchError with the first fault."""
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise BatchError("not a batch file (format %s)" % FORMAT)
    epoch, count, items = data.get("epoch"), data.get("count"), data.get("receipts")
    if not isinstance(epoch, int) or isinstance(epoch, bool) or not 0 <= epoch < 1 << 64:
        raise BatchError("epoch must be an integer from 0 to 2**64 - 1")
    if data.get("leaf_encoding") != merkle.LEAF_ENCODING:
        raise BatchError("leaf_encoding must be %s" % merkle.LEAF_ENCODING)
    if not isinstance(items, list) or not items or count != len(items):
        raise BatchError("count must be the number of receipts listed (at least one)")
    root = _hex(data.get("root"), 32, "root", "the batch")
    entries = []
    for i, item in enumerate(items):
        where = "receipt %d" % i
        if not isinstance(item, dict):
            raise BatchError("%s is not an object" % where)
        digest = _hex(item.get("receipt_hash"), 32, "receipt_hash", where).hex()
        public = _hex(item.get("box_ed25519"), 32, "box_ed25519", where)
        text = item.get("envelope")
        reward = item.get("reward")
        if not isinstance(text, str):
            raise BatchError("%s: envelope must be the receipt's signed JSON text" % where)
        if not isinstance(reward, str) or not reward.isdigit() or int(reward) >= 1 << 256:
            raise BatchError("%s: reward must be decimal digits (token units)" % where)
        encoded = text.encode()
        if hashlib.sha256(encoded).hexdigest() != digest:
            raise BatchError("%s: receipt_hash is not the SHA-256 of its envelope" % where)
        box_id = keytext.box_id(public)
        if item.get("box_id") != box_id:
            raise BatchError("%s: box_id is not the id of its Ed25519 key" % where)
        if _hex(item.get("box_key"), 32, "box_key", where) != receipt.box_key_hash(public):
            raise BatchError("%s: box_key is not the SHA-256 of its Ed25519 key" % where)
        try:
            receipt.read_receipt(encoded, public, box_id)
        except (envelope.EnvelopeError, receipt.ReceiptError, InvalidSignature) as exc:
            raise BatchError("%s: not a receipt signed by box %s: %s" % (where, box_id, exc)) from exc
        entries.append(Entry(digest, box_id, public, int(reward), encoded))
    batch = build(epoch, entries)
    if batch.tree.root != root:
        raise BatchError("the receipts give root %s, not the %s the file names" % (batch.root, data["root"]))
    for i, item in enumerate(items):
        proof = [_hex(node, 32, "a proof node", "receipt %d" % i) for node in item.get("proof") or []]
        if not merkle.verify(batch.tree.leaf_hash(i), proof, root):
            raise BatchError("receipt %d: its proof does not lead to the root" % i)
    return batch


def read(path: str) -> Batch:
    """The checked batch file at `path`."""
    try:
        with open(path, encoding="utf-8") as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise BatchError("no batch file at %s" % path) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise BatchError("%s is not a batch file: %s" % (path, exc)) from exc
    try:
        return load(data)
    except BatchError as exc:
        raise BatchError("%s: %s" % (path, exc)) from None


def index_of(batch: Batch, receipt_hash: str) -> int:
    """Where the receipt is in the batch; BatchError when it is not there."""
    for i, entry in enumerate(batch.entries):
        if entry.receipt_hash == receipt_hash:
            return i
    raise BatchError("receipt %s is not in the batch of root %s" % (receipt_hash, batch.root))
