"""Settlement from the command line, each step a real `mipai-chain` process against anvil: EVM keys made, the
contracts deployed (k = 2 of 2), the ledger's box registered on chain, its accepted receipt anchored, the claim
co-signed through files and relayed; `prove` and `audit` check the batch on chain. An anvil restart while a claim
is in flight is survived (paid once), and bad or foreign files are refused with a readable message."""

import json
import os
import shutil
import subprocess
import time
from pathlib import Path

import pytest
from eth_account import Account

from chain_client import evm, rewards
from chain_client import verifier as core
from chain_client.ledger import Ledger
from chain_client.verifier import BoxEntry
from tests.chain_client.boxsim import SimBox, new_job
from tests.chain_client.onchain.conftest import Anvil

SCRIPT = str(Path(__file__).resolve().parents[3] / ".venv" / "bin" / "mipai-chain")


def chain_cli(*args, cwd, ledger="ledger.sqlite") -> subprocess.CompletedProcess:
    if not os.path.exists(SCRIPT):
        pytest.fail("the console script %s is not installed (make .venv/.installed)" % SCRIPT)
    return subprocess.run([SCRIPT, "--ledger", ledger, *args], capture_output=True, text=True, cwd=cwd, timeout=120)


def ok(done: subprocess.CompletedProcess) -> str:
    assert done.returncode == 0, "exit %d\n%s\n%s" % (done.returncode, done.stdout, done.stderr)
    return done.stdout


def _accepted_print(directory: Path, owner: str) -> tuple:
    """A ledger holding one registered box and its accepted print (as `verify` leaves it); (box, reward, hash)."""
    box, job = SimBox(), new_job(estimate_s=3600)
    ledger = Ledger(str(directory / "ledger.sqlite"))
    ledger.add_box(BoxEntry(box.box_id, box.public, Account.create().address.lower(), owner.lower()), 0)
    ledger.add_job(job, 0)
    telemetry, message, digest = box.print_job(job, 1_800_000_000, 3600)
    now = int(time.time()) - 5
    facts = [core.read(t, p, ledger.boxes()) for t, p in [*telemetry, message]]
    [(_box, _hash, verdict)] = ledger.settle(ledger.ingest(facts, now), now)
    ledger.close()
    assert verdict.state == "accepted"
    return box, verdict.reward, digest


@pytest.fixture
def anvil_with_state(tmp_path):
    node = Anvil(state=tmp_path / "anvil-state.json").start()
    yield node
    node.stop()


def test_settlement_from_the_command_line_survives_an_anvil_restart(anvil_with_state, tmp_path):
    node = anvil_with_state
    relayer_key = ok(chain_cli("keygen", "--evm", "-o", "relayer.key", cwd=tmp_path))
    assert oct(os.stat(tmp_path / "relayer.key").st_mode & 0o777) == "0o600"
    ok(chain_cli("keygen", "--evm", "-o", "second.key", cwd=tmp_path))
    refused = chain_cli("keygen", "--evm", "-o", "second.key", cwd=tmp_path)
    assert refused.returncode == 2 and "never overwritten" in refused.stderr
    relayer = relayer_key.split("address ")[1].split(":")[0]
    second = Account.from_key((tmp_path / "second.key").read_text().strip().split(":", 1)[1]).address
    w3 = evm.connect(node.url)
    evm.fund(w3, relayer, 10**21)

    rpc = ("--rpc", node.url)
    ok(chain_cli("deploy", *rpc, "--key", "relayer.key", "--verifier", relayer, "--verifier", second, "--k", "2",
                 cwd=tmp_path))  # fmt: skip
    deployment = json.loads((tmp_path / "deployment.json").read_text())
    assert deployment["chain_id"] == 31337 and deployment["k"] == 2 and len(deployment["verifiers"]) == 2

    owner = Account.create().address
    box, reward, digest = _accepted_print(tmp_path, owner)
    assert f"box {box.box_id}: registered" in ok(chain_cli("boxes", "register", *rpc, "--key", "relayer.key",
                                                           cwd=tmp_path))  # fmt: skip
    assert "registered already" in ok(chain_cli("boxes", "register", *rpc, "--key", "relayer.key", cwd=tmp_path))

    nothing = ok(chain_cli("anchor", *rpc, "--key", "relayer.key", cwd=tmp_path))
    assert "nothing to anchor" in nothing  # the receipt's epoch (a week) is still open
    anchored = ok(chain_cli("anchor", *rpc, "--key", "relayer.key", "--include-open-epoch", cwd=tmp_path))
    assert ", 1 receipts," in anchored and ": done 0x" in anchored
    assert "nothing to anchor" in ok(chain_cli("anchor", *rpc, "--key", "relayer.key", "--include-open-epoch",
                                               cwd=tmp_path))  # fmt: skip

    short = chain_cli("claim", *rpc, "--key", "relayer.key", cwd=tmp_path)
    assert short.returncode == 1 and "1 distinct verifier signatures, 2 needed" in short.stdout
    shutil.copy(tmp_path / "ledger.sqlite", tmp_path / "second.sqlite")  # the second verifier's own verdicts
    cosigned = ok(chain_cli("cosign", "claims.json", "--key", "second.key", "-o", "second-sigs.json",
                            cwd=tmp_path, ledger="second.sqlite"))  # fmt: skip
    assert "1 of 1 claims signed" in cosigned

    w3.provider.make_request("evm_setAutomine", [False])  # the claim is sent but not mined ...
    pending = chain_cli("claim", *rpc, "--key", "relayer.key", "--signatures", "second-sigs.json", "--timeout", "3",
                        cwd=tmp_path)  # fmt: skip
    assert pending.returncode == 1 and "in flight" in pending.stdout, pending.stdout + pending.stderr
    node.stop()  # ... and the node goes away, its pool lost
    node.start()
    w3 = evm.connect(node.url)
    token = w3.eth.contract(address=deployment["contracts"]["ThreeDPToken"], abi=[{
        "name": "balanceOf", "type": "function", "stateMutability": "view",
        "inputs": [{"name": "a", "type": "address"}], "outputs": [{"name": "", "type": "uint256"}]}])  # fmt: skip
    assert token.functions.balanceOf(owner).call() == 0
    paid = ok(chain_cli("claim", *rpc, "--key", "relayer.key", "--signatures", "second-sigs.json", cwd=tmp_path))
    assert ": done 0x" in paid and rewards.text(reward) in paid
    assert token.functions.balanceOf(owner).call() == reward
    again = ok(chain_cli("claim", *rpc, "--key", "relayer.key", "--signatures", "second-sigs.json", cwd=tmp_path))
    assert "nothing to claim" in again and token.functions.balanceOf(owner).call() == reward

    proof = json.loads(ok(chain_cli("prove", digest, *rpc, cwd=tmp_path)))
    assert proof["included_on_chain"] is True and proof["reward"] == str(reward)
    audited = ok(chain_cli("audit", proof["batch_file"], *rpc, cwd=tmp_path))
    assert "1 receipts, every signature, hash and proof checks" in audited

    foreign = json.loads((tmp_path / "deployment.json").read_text())
    foreign["chain_id"] = 1
    (tmp_path / "foreign.json").write_text(json.dumps(foreign))
    refused = chain_cli("anchor", *rpc, "--key", "relayer.key", "--deployment", "foreign.json", cwd=tmp_path)
    assert refused.returncode == 2 and "is for chain 1, but the node is chain 31337" in refused.stderr
    (tmp_path / "bad.json").write_text('{"format": "something else"}')
    refused = chain_cli("claim", *rpc, "--key", "relayer.key", "--deployment", "bad.json", cwd=tmp_path)
    assert refused.returncode == 2 and "is not a deployment file" in refused.stderr
    refused = chain_cli("audit", "deployment.json", *rpc, cwd=tmp_path)
    assert refused.returncode == 2 and "not a batch file" in refused.stderr
