"""The batch-file vectors (tests/vectors/batch/, docs/chain.md "Batch file"): the good file loads, its root is the
one OpenZeppelin's own StandardMerkleTree computes from its receipts, writing the same batch again gives the
same bytes; each damaged file is refused with the reason the vector names."""

import json
import subprocess
from pathlib import Path

import pytest

from chain_client import batches

ROOT = Path(__file__).resolve().parents[2]
VECTORS = ROOT / "tests" / "vectors" / "batch"
GOOD = VECTORS / "good_three_receipts.json"


def test_the_good_batch_loads_and_its_root_is_openzeppelins(tmp_path):
    batch = batches.read(str(GOOD))
    data = json.loads(GOOD.read_text())
    assert batch.root == data["root"] and len(batch.entries) == 3
    assert [e.reward for e in batch.entries] == [1100000000000000000, 1540000000000000000, 0]
    values = [[r["receipt_hash"], r["box_key"], r["reward"]] for r in data["receipts"]]
    script = ROOT / "tests" / "chain_client" / "onchain" / "oz_merkle.js"
    result = subprocess.run(["node", str(script)], input=json.dumps({"values": values, "dump": None}),
                            capture_output=True, text=True, timeout=60, cwd=ROOT)  # fmt: skip
    assert result.returncode == 0, result.stderr
    reference = json.loads(result.stdout)
    assert reference["root"] == data["root"]
    assert reference["proofs"] == [r["proof"] for r in data["receipts"]]
    assert Path(batches.write(str(tmp_path), batch)).read_bytes() == GOOD.read_bytes()


@pytest.mark.parametrize("path", sorted(VECTORS.glob("bad_*.json")), ids=lambda p: p.stem)
def test_a_damaged_batch_is_refused_with_its_reason(path):
    vector = json.loads(path.read_text())
    with pytest.raises(batches.BatchError) as refused:
        batches.load(vector["batch"])
    assert vector["error"] in str(refused.value)
