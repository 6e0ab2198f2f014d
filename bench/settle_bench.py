"""Settlement figures on this machine, on a real anvil (npm @foundry-rs/anvil, Prague rules) on loopback: 1,000
simulated boxes print 10 times each; their 10,000 signed receipts and telemetry go through the verifier's ledger,
one anchor transaction carries all 10,000, and every box is claimed (k = 2 of 3) and paid. Then 100 boxes that
were offline for a day deliver one more print each: their batch is anchored and their 100 claims relayed. A last
round pays nothing. Checked: every box's on-chain `paid` and its owner's balance equal what its accepted
receipts earned (nothing lost, nothing paid twice), and the token's supply is the sum.

`--boxes N` and `--prints N` size the run (defaults 1,000 and 10)."""

import argparse
import os
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from eth_account import Account

from bench.stream_bench import print_figures
from chain_client import deployment_file, evm, settle
from chain_client import verifier as core
from chain_client.ledger import Ledger
from chain_client.relayer import Relayer
from tests.chain_client.boxsim import T0, SimBox
from tests.chain_client.onchain.conftest import Anvil, make_network
from wire import receipt

DAY = 86400
JOB = core.JobEntry("0f" * 16, "2d" * 32, "1e" * 16, 1000, 600)


def feed(ledger: Ledger, messages, now: int) -> list:
    boxes = ledger.boxes()
    facts = [core.read(topic, payload, boxes) for topic, payload in messages]
    return ledger.settle(ledger.ingest([f for f in facts if f is not None], now), now)


def prints(box: SimBox, count: int, start: int) -> list:
    messages = []
    for i in range(count):
        telemetry, message, _digest = box.print_job(JOB, start + i * 700, 600, every=300)
        messages += [*telemetry, message]
    return messages


def claim_round(work: settle.Settlement, network, now: int) -> tuple:
    """Claim every due box with two verifiers' signatures: (outcomes, seconds relaying)."""
    due = work.due_claims(3600)
    domain = work.described.domain
    signatures = {v.address: {c: v.sign(c, domain) for _b, c in due} for v in network.verifiers[:2]}
    ready, short = settle.gather(due, domain, signatures, work.described.verifiers, work.described.k)
    assert not short, short[:3]
    start = time.perf_counter()
    outcomes = work.relay(ready, now, timeout=600)
    return outcomes, time.perf_counter() - start


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--boxes", type=int, default=1000)
    parser.add_argument("--prints", type=int, default=10)
    parser.add_argument("--offline", type=int, default=100, help="boxes that deliver one more print a day late")
    args = parser.parse_args()
    rows = []
    node = Anvil().start()
    directory = tempfile.TemporaryDirectory()
    try:
        w3 = evm.connect(node.url)
        network = make_network(w3, epoch_length=DAY)
        ledger_path = str(Path(directory.name) / "ledger.sqlite")
        ledger = Ledger(ledger_path)
        ledger.add_job(JOB, T0)
        boxes, owners = [], {}
        start = time.perf_counter()
        for i in range(args.boxes):
            box = SimBox(b"settle bench %d" % i)
            owner = Account.create().address
            ledger.add_box(core.BoxEntry(box.box_id, box.public, Account.create().address, owner), T0)
            network.register_box(receipt.box_key_hash(box.public), owner)
            boxes.append(box)
            owners[box.box_id] = owner
        rows.append((f"register {args.boxes:,} boxes on chain (one transaction each)", "", "%.1f s" % (
            time.perf_counter() - start)))  # fmt: skip

        start = time.perf_counter()
        verdicts = []
        for box in boxes:
            verdicts += feed(ledger, prints(box, args.prints, T0), T0 + 10 * 3600)
        accepted = sum(1 for _b, _h, v in verdicts if v.state == "accepted")
        verified = time.perf_counter() - start
        receipts = args.boxes * args.prints
        rows.append((f"{receipts:,} receipts (with their telemetry) signed, verified, decided", "all accepted",
                     "%d accepted in %.1f s" % (accepted, verified)))  # fmt: skip
        relayer = Relayer(w3, network.admin, network.deployment, Path(ledger_path))
        described = deployment_file.describe(w3, network.deployment)
        work = settle.Settlement(w3, described, network.deployment, ledger, relayer, directory.name + "/batches")
        [anchored] = work.anchor(T0 + DAY, timeout=120)
        assert anchored.state == "done" and anchored.gas, anchored
        rows.append((f"gas of the one anchor transaction for {receipts:,} receipts", "1 tx", f"{anchored.gas:,}"))
        outcomes, relayed = claim_round(work, network, T0 + DAY)
        assert [o.state for o in outcomes] == ["done"] * args.boxes, {o.state for o in outcomes}
        gas = sorted(o.gas for o in outcomes)
        rows.append((f"relay {args.boxes:,} claims (k = 2 of 3)", "", "%.1f s" % relayed))
        rows.append(("gas of a claim: median / max", "< 130,000", f"{gas[len(gas) // 2]:,} / {gas[-1]:,}"))

        late = boxes[: args.offline]  # offline for a day: one more print each, delivered on day 2
        for box in late:
            feed(ledger, prints(box, 1, T0 + DAY), T0 + DAY + 3600)
        [anchored_late] = work.anchor(T0 + 2 * DAY, timeout=120)
        outcomes, relayed = claim_round(work, network, T0 + 2 * DAY)
        assert anchored_late.state == "done" and [o.state for o in outcomes] == ["done"] * args.offline
        rows.append((f"relay {args.offline} claims to anvil (offline boxes catching up)", "< 5 s",
                     "%.2f s" % relayed))  # fmt: skip
        again, _seconds = claim_round(work, network, T0 + 3 * DAY)
        assert work.anchor(T0 + 3 * DAY) == [] and again == []

        rewards = network.deployment.rewards.functions
        wrong = 0
        total = 0
        for box in boxes:
            earned = ledger.earned(box.box_id)
            total += earned
            on_chain = rewards.paid(receipt.box_key_hash(box.public)).call()
            if not (on_chain == earned == network.balance(owners[box.box_id]) == ledger.paid(box.box_id)):
                wrong += 1
        supply = network.token.functions.totalSupply().call()
        rows.append((f"{args.boxes:,} boxes, print to paid: boxes whose paid != earned", "0", "%d" % wrong))
        rows.append(("3DP minted = sum of what accepted receipts earned", "equal",
                     "equal" if supply == total else "%d != %d" % (supply, total)))  # fmt: skip
        relayer.close()
        ledger.close()
    finally:
        node.stop()
        directory.cleanup()
    print_figures(rows)


if __name__ == "__main__":
    main()
