"""Write the batch-file test vectors (docs/chain.md, "Batch file"). Deterministic: the boxes' keys come from fixed
seeds and Ed25519 signatures are deterministic.

python tests/vectors/make_batch_vectors.py
"""

import copy
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__)))))

from chain_client import batches, rewards
from chain_client.verifier import JobEntry
from tests.chain_client.boxsim import T0, SimBox

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "batch")
EPOCH = T0 // 604800
JOB = JobEntry("0f" * 16, "2d" * 32, "1e" * 16, 1000, 3600)


def good_batch() -> batches.Batch:
    """Three receipts of two boxes: a PLA print, a PETG print, a cancelled print (accepted, reward 0)."""
    first, second = SimBox(b"batch vector one"), SimBox(b"batch vector two")
    entries = []
    for box, start, seconds, outcome, material in ((first, T0, 3600, "done", "PLA"),
                                                   (second, T0 + 100, 5400, "done", "PETG"),
                                                   (first, T0 + 4000, 600, "cancelled", "PLA")):  # fmt: skip
        _telemetry, (_topic, payload), digest = box.print_job(JOB, start, seconds, outcome=outcome, material=material)
        reward = rewards.reward(outcome, material, seconds, JOB.estimate_s)
        entries.append(batches.Entry(digest, box.box_id, box.public, reward, payload))
    return batches.build(EPOCH, entries)


def bad_cases(good: dict) -> dict:
    """name -> (batch file JSON, text its refusal contains)."""
    cases = {}

    def case(name, error, change):
        data = copy.deepcopy(good)
        change(data)
        cases[name] = (data, error)

    case("reward_raised", "the receipts give root", lambda d: d["receipts"][2].update(reward="1"))

    def edit(d):
        d["receipts"][0]["envelope"] = d["receipts"][0]["envelope"].replace('"PLA"', '"ABS"')

    case("receipt_edited", "receipt 0: receipt_hash is not the SHA-256 of its envelope", edit)
    case("wrong_box_key", "receipt 1: box_key is not the SHA-256 of its Ed25519 key",
         lambda d: d["receipts"][1].update(box_key=d["receipts"][0]["box_key"]))  # fmt: skip
    case("receipt_of_another_box", "receipt 1: box_id is not the id of its Ed25519 key",
         lambda d: d["receipts"][1].update(box_ed25519=d["receipts"][0]["box_ed25519"]))  # fmt: skip
    case("proof_swapped", "receipt 0: its proof does not lead to the root",
         lambda d: d["receipts"][0].update(proof=d["receipts"][1]["proof"]))  # fmt: skip
    case("count_wrong", "count must be the number of receipts", lambda d: d.update(count=2))
    case("receipt_dropped", "count must be the number of receipts", lambda d: d["receipts"].pop())
    case("other_format", "not a batch file", lambda d: d.update(format="mipai-batch-v0"))
    return cases


def main() -> None:
    os.makedirs(HERE, exist_ok=True)
    batch = good_batch()
    path = batches.write(HERE, batch)
    os.replace(path, os.path.join(HERE, "good_three_receipts.json"))
    good = batch.to_json()
    for name, (data, error) in bad_cases(good).items():
        with open(os.path.join(HERE, "bad_%s.json" % name), "w") as handle:
            json.dump({"error": error, "batch": data}, handle, indent=1, ensure_ascii=False)
            handle.write("\n")


if __name__ == "__main__":
    main()
