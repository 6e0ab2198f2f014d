"""The network's side of the demo (`make run`), in one thread of the demo's process: an in-process py-evm chain
with the contracts deployed, a verifier on the demo's broker (as `mipai-chain verify`), and settlement after
every accepted receipt (as `mipai-chain anchor` and `claim`, on the current epoch at once: a demo does not wait
a week), so the sample print ends with 3DP on the owner's address and the box's dashboard shows the paid amount
and the claim's transaction hash, read from its rewards topic as always. Keys and ledger are fresh per run, as
the chain is."""

import os
import threading
import time
from collections.abc import Callable

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain_client import claims, deploy, deployment_file, evm, rewards, service, settle
from chain_client.ledger import Ledger
from chain_client.relayer import Relayer
from chain_client.verifier import BoxEntry, JobEntry
from secure_print.signer_key import SignerKey
from wire import keytext, receipt

READY_TIMEOUT = 120.0  # seconds for py-evm to deploy and the verifier to subscribe


class DemoNetworkError(RuntimeError):
    """The demo's network could not start; the message says why (the box runs on without it)."""


class DemoNetwork:
    """Start with `start()`, stop with `stop()`. `box` and `jobs` are registered before the verifier subscribes."""

    def __init__(self, directory: str, broker_port: int, box: BoxEntry, jobs: list,
                 log: Callable[[str], None] = print) -> None:  # fmt: skip
        self.directory, self.broker_port, self.box, self.jobs, self.log = directory, broker_port, box, jobs, log
        os.makedirs(directory, mode=0o700, exist_ok=True)
        for name in ("ledger.sqlite", "ledger.sqlite-wal", "ledger.sqlite-shm"):
            if os.path.exists(os.path.join(directory, name)):
                os.remove(os.path.join(directory, name))  # the chain is new each run: so is what it settled
        self.reports_key = SignerKey.generate(keytext.NETWORK)  # signs the rewards reports the box reads
        self.relayer_account: LocalAccount = Account.create()  # relays, anchors, and is the one verifier (k = 1)
        self.paid: list = []  # (box id, amount, tx) of each claim paid
        self.failure = ""
        self._ready = threading.Event()
        self._stop = threading.Event()
        self._thread = threading.Thread(target=self._main, name="demo-network", daemon=True)

    @property
    def verifier_public_text(self) -> str:
        """What the box puts in [fleet] verifiers to trust this network's rewards reports."""
        return self.reports_key.public_text

    def start(self) -> "DemoNetwork":
        self._thread.start()
        if not self._ready.wait(READY_TIMEOUT) or self.failure:
            self.stop()
            raise DemoNetworkError(self.failure or "the demo network did not start within %.0f s" % READY_TIMEOUT)
        return self

    def stop(self) -> None:
        self._stop.set()
        if self._thread.is_alive():
            self._thread.join(30)

    def _main(self) -> None:
        ledger = relayer = client = None
        try:
            w3 = evm.in_process()
            evm.fund(w3, self.relayer_account.address, 10**21)
            made = deploy.deploy(w3, self.relayer_account, verifiers=[self.relayer_account.address], k=1)
            described = deployment_file.describe(w3, made)
            ledger = Ledger(os.path.join(self.directory, "ledger.sqlite"))
            ledger.add_box(self.box, int(time.time()))
            for job in self.jobs:
                ledger.add_job(job, int(time.time()))
            key = receipt.box_key_hash(self.box.ed25519)
            deploy.call_admin(w3, self.relayer_account, made.registry, "registerBox", key,
                              Web3.to_checksum_address(self.box.evm_address),
                              Web3.to_checksum_address(self.box.owner))  # fmt: skip
            relayer = Relayer(w3, self.relayer_account, made, os.path.join(self.directory, "ledger.sqlite"))
            work = settle.Settlement(w3, described, made, ledger, relayer, os.path.join(self.directory, "batches"),
                                     log=self.log)  # fmt: skip
            client = service.make_client("mipai-demo-verifier")
            verify = service.VerifyService(client, ledger, self.reports_key.signing, "demo-verifiers", 600,
                                           log=self.log)  # fmt: skip
            service.connect(client, "127.0.0.1", self.broker_port)
            end = time.monotonic() + 30
            while not verify.subscribed:
                if time.monotonic() > end:
                    raise DemoNetworkError("the verifier was not subscribed on the demo broker within 30 s")
                verify.poll(0.05)
            self.log("network: contracts on an in-process chain (rewards %s); box %s registered, paying %s" % (
                made.rewards.address, self.box.box_id, self.box.owner))  # fmt: skip
            self._ready.set()
            settled = 0
            while not self._stop.is_set():
                verify.poll(0.05)
                if verify.counts["accepted"] > settled:
                    settled = verify.counts["accepted"]
                    verify.step(int(time.time()), force=True)
                    self._settle(work, described, verify, made)
        except Exception as exc:
            self.failure = "the demo network stopped: %s: %s" % (type(exc).__name__, exc)
            self.log(self.failure)
            self._ready.set()
        finally:
            for closing in (client and client.disconnect, relayer and relayer.close, ledger and ledger.close):
                if closing:
                    closing()

    def _settle(self, work: settle.Settlement, described, verify: service.VerifyService, made) -> None:
        now = int(time.time())
        for outcome in work.anchor(now, include_open=True, timeout=30):
            self.log("network: anchored %s: %s %s" % (outcome.what, outcome.state, outcome.note))
        due = work.due_claims()
        signer = claims.VerifierKey(bytes(self.relayer_account.key))
        signatures = {signer.address: {claim: signer.sign(claim, described.domain) for _box, claim in due}}
        ready, short = settle.gather(due, described.domain, signatures, described.verifiers, described.k)
        for box_id, reason in short:
            self.log("network: box %s not claimed: %s" % (box_id, reason))
        before = {box_id: work.ledger.paid(box_id) for box_id, _c in ready}
        for (box_id, _signed), outcome in zip(ready, work.relay(ready, now, timeout=30), strict=True):
            amount = work.ledger.paid(box_id) - before[box_id]
            if outcome.state == "done":
                self.paid.append((box_id, amount, outcome.tx))
                balance = made.token.functions.balanceOf(Web3.to_checksum_address(self.box.owner)).call()
                self.log("network: paid %s to the owner of box %s (tx %s); the owner holds %s" % (
                    rewards.text(amount), box_id, outcome.tx, rewards.text(balance)))  # fmt: skip
            else:
                self.log("network: claim of box %s %s: %s" % (box_id, outcome.state, outcome.note))
        verify.publish_reports({box_id for box_id, _c in ready})


def job(job_id: str, sealed_sha256: str, lines=None) -> JobEntry:
    """A demo job as the registry keeps it. No time estimate: the demo's printer runs faster than real time."""
    return JobEntry(job_id, sealed_sha256, None, lines, None)
