"""The relayer: sends anchors and claims as transactions, once each, whatever the node or the relayer goes through.

`RelayCore` decides (sans-I/O: fed chain answers and `now`, it returns actions); `Relayer` is the thin shell that
signs, talks to the node through web3 and keeps every job in SQLite, written before each broadcast, so a restart
neither loses a job nor sends one twice. docs/chain.md describes the states.
"""

import enum
import hashlib
import json
import sqlite3
import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path

from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain_client.claims import SignedClaim
from chain_client.deploy import Deployment
from chain_client.evm import (
    ChainError,
    RpcBadAnswer,
    RpcUnavailable,
    SendRejected,
    failure_reason,
    fees,
    get_receipt,
    rpc,
)

CLAIM_GAS = 200_000  # fixed limits: no estimate round trip, and a revert is mined (status 0) rather than hidden
ANCHOR_GAS = 120_000
MAX_JOBS_IN_FLIGHT = 64  # sent and not yet mined
MAX_ATTEMPTS = 12
REBROADCAST_AFTER = 2.0  # seconds without a receipt before the same signed transaction is sent again
BUMP_AFTER = 30.0  # seconds without a receipt before it is signed again with higher fees (same nonce)


class State(enum.StrEnum):
    """Where a job is. QUEUED -> SENT -> DONE | REVERTED; QUEUED/SENT -> FAILED after MAX_ATTEMPTS."""

    QUEUED = "queued"  # waits for a nonce (or a retry time)
    SENT = "sent"  # signed with `nonce`, written down, broadcast (or being re-broadcast)
    CHECKING = "checking"  # its nonce is used or it reverted: asking the contract whether its effect is there
    DONE = "done"  # its effect is on chain (by this transaction, or `note` says otherwise)
    REVERTED = "reverted"  # mined with status 0 and the effect is not there: the contract refused (`note`)
    FAILED = "failed"  # given up (`note`); submit again to retry


FINAL = (State.DONE, State.REVERTED, State.FAILED)


@dataclass
class Job:
    """One anchor or claim to put on chain."""

    id: str
    kind: str  # "claim" or "anchor"
    to: str
    data: bytes
    gas: int
    effect: dict  # what to ask the contract to know the job's effect is there
    state: State = State.QUEUED
    nonce: int | None = None
    tx_hash: bytes | None = None
    raw: bytes | None = None
    fee_level: int = 0  # fee bumps so far
    attempts: int = 0
    next_try: float = 0.0
    sent_at: float = 0.0
    last_broadcast: float = field(default=0.0, compare=False)  # not stored: a restart broadcasts once at once
    block: int | None = None
    gas_used: int | None = None
    note: str = ""


@dataclass(frozen=True)
class SyncNonce:
    """Ask the chain for the sender's pending transaction count, then call `nonce_synced`."""


@dataclass(frozen=True)
class Sign:
    """Sign `job` with `nonce` at fee level `job.fee_level`, then call `signed` and broadcast it."""

    job: Job
    nonce: int


@dataclass(frozen=True)
class Check:
    """Look up the receipt of `job.tx_hash`, then call `receipt` or `not_mined`."""

    job: Job


@dataclass(frozen=True)
class CheckEffect:
    """Ask the contract whether `job`'s effect is on chain, then call `effect`."""

    job: Job


Action = SyncNonce | Sign | Check | CheckEffect


def backoff(job_id: str, attempts: int, base: float = 0.5, cap: float = 60.0) -> float:
    """Exponential backoff with a jitter fixed by the job id (so it is reproducible)."""
    jitter = 0.5 + hashlib.sha256(job_id.encode()).digest()[0] / 510
    return min(cap, base * 2 ** min(attempts, 16)) * jitter


@dataclass
class RelayCore:
    """The relayer's decisions. Feed it chain answers and `now`; `due(now)` says what to do next."""

    jobs: dict[str, Job] = field(default_factory=dict)
    next_nonce: int | None = None  # None: ask the chain
    paused_until: float = 0.0
    outages: int = 0
    changed: set[str] = field(default_factory=set)  # job ids to write down

    def add(self, job: Job) -> Job:
        """Queue `job` unless one with its id is queued, in flight or done; a reverted or failed one is retried."""
        known = self.jobs.get(job.id)
        if known is not None and known.state not in (State.REVERTED, State.FAILED):
            return known
        self.jobs[job.id] = job
        self.changed.add(job.id)
        return job

    def _set(self, job: Job, state: State, note: str | None = None) -> None:
        job.state = state
        if note is not None:
            job.note = note
        self.changed.add(job.id)

    def due(self, now: float) -> list[Action]:
        """What to do now, in order."""
        if now < self.paused_until:
            return []
        if self.next_nonce is None:
            return [SyncNonce()]
        actions: list[Action] = []
        in_flight = 0
        for job in sorted(self.jobs.values(), key=lambda j: (j.nonce is None, j.nonce or 0, j.id)):
            if job.state in (State.SENT, State.CHECKING):
                in_flight += 1
                if job.next_try <= now:
                    actions.append(CheckEffect(job) if job.state is State.CHECKING else Check(job))
        for job in sorted(self.jobs.values(), key=lambda j: j.id):
            if job.state is State.QUEUED and job.next_try <= now and in_flight < MAX_JOBS_IN_FLIGHT:
                nonce = job.nonce if job.nonce is not None else self.next_nonce
                if job.nonce is None:
                    self.next_nonce += 1
                actions.append(Sign(job, nonce))
                in_flight += 1
        return actions

    def idle(self) -> bool:
        """True when every job is final."""
        return all(job.state in FINAL for job in self.jobs.values())

    def nonce_synced(self, pending: int) -> None:
        """The chain's pending transaction count of the sender."""
        if not isinstance(pending, int) or pending < 0:
            raise RpcBadAnswer("the node gave %r as a transaction count" % (pending,))
        held = [j.nonce for j in self.jobs.values() if j.state in (State.SENT, State.CHECKING) and j.nonce is not None]
        self.next_nonce = max([pending, *[n + 1 for n in held]])

    def unavailable(self, now: float) -> None:
        """The node did not answer: pause everything, and ask for the nonce again when it is back."""
        self.outages += 1
        self.paused_until = now + backoff("node", self.outages, base=0.2, cap=10.0)
        self.next_nonce = None

    def available(self) -> None:
        """The node answered."""
        self.outages = 0

    def signed(self, job: Job, nonce: int, tx_hash: bytes, raw: bytes, now: float) -> None:
        """`job` was signed with `nonce` as `tx_hash`: written down before it is broadcast."""
        job.nonce, job.tx_hash, job.raw, job.sent_at = nonce, tx_hash, raw, now
        job.next_try = now + 0.05
        self._set(job, State.SENT)

    def broadcast_ok(self, job: Job, now: float) -> None:
        """The node took the transaction."""
        job.next_try = now
        job.last_broadcast = now

    def broadcast_failed(self, job: Job, reason: str, message: str, now: float) -> None:
        """The node refused the transaction: `reason` as SendRejected.reason."""
        job.attempts += 1
        if reason == "nonce too low":  # this nonce is used: by this very transaction, or another
            job.next_try = now
            self._set(job, State.CHECKING, message)
            return
        if reason == "underpriced":
            job.fee_level += 1
        if job.attempts >= MAX_ATTEMPTS:
            self._give_up(job, "the node refused it %d times; last: %s" % (job.attempts, message))
            return
        job.next_try = now + backoff(job.id, job.attempts)
        self._set(job, State.QUEUED, message)  # keeps its nonce: signed again at the same nonce

    def _give_up(self, job: Job, note: str) -> None:
        """FAILED; its nonce was never used, so every later unmined job moves to a fresh nonce."""
        nonce = job.nonce
        self._set(job, State.FAILED, note)
        job.nonce = None
        if nonce is not None:
            for other in self.jobs.values():
                if other.state in (State.SENT, State.QUEUED) and other.nonce is not None and other.nonce > nonce:
                    other.nonce = None
                    self._set(other, State.QUEUED)
            self.next_nonce = None

    def receipt(self, job: Job, status: int, block: int, gas_used: int, reason: str = "") -> None:
        """The transaction was mined with `status`."""
        job.block, job.gas_used = block, gas_used
        if status == 1:
            self._set(job, State.DONE, "")
        else:  # a claim already paid (or an anchor already made) reverts too: ask whether the effect is there
            job.next_try = 0.0
            self._set(job, State.CHECKING, "reverted: %s" % (reason or "no reason given"))

    def not_mined(self, job: Job, mined_nonce: int, now: float) -> None:
        """No receipt yet; `mined_nonce` is the sender's count of mined transactions."""
        if job.nonce is not None and mined_nonce > job.nonce:  # its nonce went to another transaction
            job.next_try = now
            self._set(job, State.CHECKING, "its nonce was used by another transaction")
        elif now - job.sent_at > BUMP_AFTER:
            job.fee_level += 1
            job.attempts += 1
            job.next_try = now
            self._set(job, State.QUEUED, "not mined after %.0f s: fees raised" % (now - job.sent_at))
        else:
            job.next_try = now + 0.1

    def should_rebroadcast(self, job: Job, now: float) -> bool:
        """Whether a transaction without a receipt was last broadcast long enough ago (or not since a restart)."""
        return now - job.last_broadcast > REBROADCAST_AFTER

    def effect(self, job: Job, done: bool, now: float) -> None:
        """Whether `job`'s effect is on chain."""
        if done:
            self._set(job, State.DONE, job.note and "on chain already (%s)" % job.note)
        elif job.note.startswith("reverted"):
            job.nonce = None
            self._set(job, State.REVERTED)
        else:  # its nonce was taken and its effect is missing: send it again with a new nonce
            job.attempts += 1
            job.nonce, job.tx_hash, job.raw = None, None, None
            job.next_try = now
            self._set(job, State.QUEUED)


_SCHEMA = """
CREATE TABLE IF NOT EXISTS relay_jobs (
    id TEXT PRIMARY KEY, kind TEXT NOT NULL, target TEXT NOT NULL, data BLOB NOT NULL, gas INTEGER NOT NULL,
    effect TEXT NOT NULL, state TEXT NOT NULL, nonce INTEGER, tx_hash BLOB, raw BLOB, fee_level INTEGER NOT NULL,
    attempts INTEGER NOT NULL, next_try REAL NOT NULL, sent_at REAL NOT NULL, block INTEGER, gas_used INTEGER,
    note TEXT NOT NULL
)
"""
_FIELDS = "id kind to data gas effect state nonce tx_hash raw fee_level attempts next_try sent_at block gas_used note"
_COLUMNS = _FIELDS.replace(" to ", " target ").split()


class Relayer:
    """Sends the jobs of a RelayCore through one web3 connection, from one account, with state in SQLite."""

    def __init__(
        self,
        w3: Web3,
        account: LocalAccount,
        deployment: Deployment,
        db_path: Path,
        clock: Callable[[], float] = time.time,
        tip: int = 10**9,
    ) -> None:
        self.w3, self.account, self.deployment, self.clock, self.tip = w3, account, deployment, clock, tip
        self.chain_id: int | None = None  # asked when first needed: the relayer starts while the node is away
        self.db = sqlite3.connect(db_path, isolation_level=None)
        self.db.execute("PRAGMA journal_mode=WAL")
        self.db.execute("PRAGMA synchronous=FULL")
        self.db.execute(_SCHEMA)
        self.core = RelayCore()
        for row in self.db.execute("SELECT %s FROM relay_jobs" % ", ".join(_COLUMNS)):
            values = dict(zip(_FIELDS.split(), row, strict=True))
            values["effect"] = json.loads(values["effect"])
            values["state"] = State(values["state"])
            job = self.core.jobs[values["id"]] = Job(**values)
            if job.state is State.SENT:
                job.next_try = 0.0  # check (and broadcast again) before anything new is signed
        self._fees: tuple[int, int] | None = None

    def close(self) -> None:
        """Close the database."""
        self.db.close()

    def submit_claim(self, signed: SignedClaim) -> Job:
        """Queue a claim (idempotent per box and total)."""
        claim = signed.claim
        args = [claim.box_key, claim.total, claim.deadline, list(signed.signatures)]
        data = bytes.fromhex(self.deployment.rewards.encode_abi("claim", args=args)[2:])
        effect = {"box_key": claim.box_key.hex(), "total": str(claim.total)}
        return self._submit(Job(claim.claim_id, "claim", self.deployment.rewards.address, data, CLAIM_GAS, effect))

    def submit_anchor(self, root: bytes, epoch: int, count: int) -> Job:
        """Queue an anchor of one batch root (idempotent per root)."""
        if not isinstance(root, bytes) or len(root) != 32 or root == bytes(32):
            raise ValueError("an anchor's root is 32 bytes, not all zero")
        if not isinstance(epoch, int) or not 0 <= epoch < 1 << 64:
            raise ValueError("an anchor's epoch is an integer from 0 to 2**64 - 1")
        if not isinstance(count, int) or not 0 < count < 1 << 32:
            raise ValueError("an anchor's receipt count is an integer from 1 to 2**32 - 1")
        data = bytes.fromhex(self.deployment.rewards.encode_abi("anchor", args=[root, epoch, count])[2:])
        job = Job("anchor:%s" % root.hex(), "anchor", self.deployment.rewards.address, data, ANCHOR_GAS, {})
        job.effect = {"root": root.hex()}
        return self._submit(job)

    def _submit(self, job: Job) -> Job:
        job = self.core.add(job)
        self._write()
        return job

    def job(self, job_id: str) -> Job | None:
        """The job of that id."""
        return self.core.jobs.get(job_id)

    def _write(self) -> None:
        if not self.core.changed:
            return
        rows = []
        for job_id in self.core.changed:
            job = self.core.jobs[job_id]
            row = [getattr(job, name) for name in _FIELDS.split()]
            row[5], row[6] = json.dumps(job.effect), job.state.value
            rows.append(row)
        self.db.execute("BEGIN")
        self.db.executemany(
            "INSERT OR REPLACE INTO relay_jobs (%s) VALUES (%s)" % (", ".join(_COLUMNS), ", ".join("?" * 17)), rows
        )
        self.db.execute("COMMIT")
        self.core.changed.clear()

    def step(self) -> int:
        """Do what is due now; return how many actions that was. Never raises for the node being away."""
        now = self.clock()
        actions = self.core.due(now)
        self._fees = None
        try:
            for action in actions:
                self._do(action, now)
            if actions:
                self.core.available()
        except RpcUnavailable:
            self.core.unavailable(now)
        finally:
            self._write()
        return len(actions)

    def run(self, timeout: float = 60.0, idle_sleep: float = 0.02) -> bool:
        """Step until every job is final or `timeout` seconds pass; True when all are final."""
        end = time.monotonic() + timeout
        while not self.core.idle():
            if time.monotonic() > end:
                return False
            if self.step() == 0:
                time.sleep(idle_sleep)
        return True

    def _do(self, action: Action, now: float) -> None:
        w3, me = self.w3, self.account.address
        if isinstance(action, SyncNonce):
            self.core.nonce_synced(rpc(lambda: w3.eth.get_transaction_count(me, "pending"), "reading the nonce"))
        elif isinstance(action, Sign):
            self._sign_and_send(action.job, action.nonce, now)
        elif isinstance(action, Check):
            job = action.job
            receipt = get_receipt(w3, job.tx_hash)
            if receipt is None:
                mined = rpc(lambda: w3.eth.get_transaction_count(me, "latest"), "reading the nonce")
                if job.nonce is not None and mined > job.nonce:  # mined in between the two questions, perhaps
                    receipt = get_receipt(w3, job.tx_hash)
            if receipt is None:
                self.core.not_mined(job, mined, now)
                if job.state is State.SENT and self.core.should_rebroadcast(job, now):
                    self._broadcast(job, now)
                return
            status = receipt.get("status")
            if status not in (0, 1):
                raise RpcBadAnswer("receipt of %s has status %r" % (job.tx_hash.hex(), status))
            reason = ""
            if status == 0:
                tx = {"from": me, "to": job.to, "data": job.data, "gas": job.gas}
                reason = failure_reason(w3, tx, receipt["blockNumber"])
            self.core.receipt(job, status, receipt["blockNumber"], receipt["gasUsed"], reason)
        elif isinstance(action, CheckEffect):
            self.core.effect(action.job, self._effect_done(action.job), now)

    def _effect_done(self, job: Job) -> bool:
        rewards = self.deployment.rewards.functions
        if job.kind == "claim":
            paid = rpc(lambda: rewards.paid(bytes.fromhex(job.effect["box_key"])).call(), "reading paid")
            return paid >= int(job.effect["total"])
        anchored = rpc(lambda: rewards.anchors(bytes.fromhex(job.effect["root"])).call(), "reading an anchor")
        return anchored[2] != 0

    def _sign_and_send(self, job: Job, nonce: int, now: float) -> None:
        if self.chain_id is None:
            self.chain_id = rpc(lambda: self.w3.eth.chain_id, "reading the chain id")
        if self._fees is None:
            self._fees = fees(self.w3, self.tip)
        max_fee, tip = self._fees
        bump = 5**job.fee_level, 4**job.fee_level  # +25 % per level, above the 10 % a replacement needs
        tx = {
            "type": 2,
            "chainId": self.chain_id,
            "nonce": nonce,
            "to": job.to,
            "gas": job.gas,
            "maxFeePerGas": max_fee * bump[0] // bump[1],
            "maxPriorityFeePerGas": tip * bump[0] // bump[1],
            "value": 0,
            "data": job.data,
        }
        signed = self.account.sign_transaction(tx)
        self.core.signed(job, nonce, bytes(signed.hash), bytes(signed.raw_transaction), now)
        self._write()  # written down before it leaves: a restart checks this hash instead of sending again
        self._broadcast(job, now)

    def _broadcast(self, job: Job, now: float) -> None:
        try:
            rpc(lambda: self.w3.eth.send_raw_transaction(job.raw), "sending %s" % job.id)
        except SendRejected as exc:
            if exc.reason == "nonce too low" and "already known" in str(exc).lower():
                self.core.broadcast_ok(job, now)  # the node has it already
            else:
                self.core.broadcast_failed(job, exc.reason, str(exc), now)
        except RpcBadAnswer as exc:
            self.core.broadcast_failed(job, "other", str(exc), now)
        except ChainError as exc:
            if isinstance(exc, RpcUnavailable):
                raise
            self.core.broadcast_failed(job, "other", str(exc), now)
        else:
            self.core.broadcast_ok(job, now)
