"""Chain figures on this machine, on a real anvil (npm @foundry-rs/anvil, Prague rules) on loopback. Prints a
table of: gas of a claim (k = 2 of n = 3 verifier signatures), first and later; gas of one anchor transaction for
a batch of 10,000 receipts; building the 10,000-leaf Merkle tree and all its proofs; signing claims; and 100
claims relayed to anvil, from submission until every receipt is read.

`--claims N` and `--leaves N` size the last rows (defaults 100 and 10,000)."""

import argparse
import hashlib
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.stream_bench import print_figures
from chain_client import evm
from chain_client.merkle import Leaf, MerkleTree, leaf_hash, verify
from chain_client.relayer import Relayer, State
from tests.chain_client.onchain.conftest import Anvil, make_network

TOKEN = 10**18


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--claims", type=int, default=100)
    parser.add_argument("--leaves", type=int, default=10_000)
    args = parser.parse_args()
    rows = []
    node = Anvil().start()
    try:
        w3 = evm.connect(node.url)
        network = make_network(w3)
        box, _ = network.register("bench-box")
        first = network.claim(network.sign(box, 5 * TOKEN))["gasUsed"]
        later = network.claim(network.sign(box, 9 * TOKEN))["gasUsed"]
        rows.append(("gas of `claim`, k = 2 of 3, a new owner's first", "< 130,000", f"{first:,}"))
        rows.append(("gas of `claim`, k = 2 of 3, later claims", "< 130,000", f"{later:,}"))

        leaves = [Leaf(hashlib.sha256(b"r%d" % i).digest(), box, i * TOKEN) for i in range(args.leaves)]
        start = time.perf_counter()
        tree = MerkleTree(leaves)
        proofs = [tree.proof(i) for i in range(len(leaves))]
        built = time.perf_counter() - start
        start = time.perf_counter()
        assert all(verify(leaf_hash(leaf), proof, tree.root) for leaf, proof in zip(leaves, proofs, strict=True))
        checked = time.perf_counter() - start
        data = bytes.fromhex(network.rewards.encode_abi("anchor", args=[tree.root, 1, len(leaves)])[2:])
        anchor_gas = evm.transact(w3, network.admin, network.rewards.address, data, 200_000)["gasUsed"]
        rows.append((f"gas of one anchor transaction, {args.leaves:,} receipts", "1 tx", f"{anchor_gas:,}"))
        rows.append((f"build the {args.leaves:,}-leaf tree and every proof", "fast", "%.2f s" % built))
        rows.append(("verify every proof (Python)", "", "%.2f s" % checked))

        boxes = [network.register("relay-%d" % i)[0] for i in range(args.claims)]
        start = time.perf_counter()
        signed = [network.sign(b, (i + 1) * TOKEN, deadline=network.now() + 3600) for i, b in enumerate(boxes)]
        signing = time.perf_counter() - start
        rows.append((f"sign {args.claims} claims, 2 verifiers each", "", "%.2f s" % signing))
        with tempfile.TemporaryDirectory() as directory:
            relayer = Relayer(w3, network.admin, network.deployment, Path(directory) / "relay.sqlite")
            start = time.perf_counter()
            for claim in signed:
                relayer.submit_claim(claim)
            assert relayer.run(timeout=120)
            relayed = time.perf_counter() - start
            jobs = list(relayer.core.jobs.values())
            assert all(job.state is State.DONE for job in jobs)
            gas = sorted(job.gas_used for job in jobs)
            relayer.close()
        rows.append(
            (f"relay {args.claims} claims to anvil (submit to every receipt read)", "< 5 s", "%.2f s" % relayed)
        )
        rows.append(("gas of those claims, median", "< 130,000", f"{gas[len(gas) // 2]:,}"))
    finally:
        node.stop()
    print_figures(rows)


if __name__ == "__main__":
    main()
