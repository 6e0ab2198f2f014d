"""Settlement (docs/chain.md, "Settlement"): what `mipai-chain anchor`, `claim`, `cosign`, `prove` and `audit` do,
over the ledger, the relayer and one deployment. The ledger says which receipts were accepted; this module batches
those of closed epochs into anchored Merkle roots, turns each box's anchored total into a cumulative claim that k
verifiers sign (file based: a claims file out, signature files back), relays the claims, and records what chain
receipts say was paid. Every step can be run again: a batch already anchored, a claim already paid, is not sent
twice, and a box that was offline is paid its whole backlog by its next claim, once."""

import json
import os
from collections.abc import Callable
from dataclasses import dataclass

from web3 import Web3

from chain_client import batches, claims, evm, merkle, rewards
from chain_client.deploy import Deployment
from chain_client.deployment_file import DeploymentFile
from chain_client.ledger import Ledger
from chain_client.relayer import Relayer, State
from wire import receipt

CLAIMS_FORMAT = "mipai-claims-v1"
SIGNATURES_FORMAT = "mipai-claim-signatures-v1"
DEFAULT_VALIDITY = 24 * 3600  # seconds a co-signed claim stays valid on chain
REUSE_MARGIN = 600  # a claims file's deadline closer than this is not reused (signing and relaying take time)


class SettleError(ValueError):
    """A settlement step cannot be done; the message says why and what to do."""


@dataclass(frozen=True)
class Outcome:
    """What became of one anchor or claim: `state` is done, reverted, failed or in flight."""

    what: str  # "batch <root> (epoch E, N receipts)" or "box <id> up to <total>"
    state: str
    tx: str = ""
    note: str = ""
    gas: int | None = None


def epoch_of(timestamp: int, epoch_length: int) -> int:
    return timestamp // epoch_length


def group_closed(rows, epoch_length: int, max_leaves: int = merkle.MAX_LEAVES) -> list:
    """Split accepted, unanchored receipts (Ledger.accepted_unanchored rows) into batches: one per epoch (more
    when an epoch holds over `max_leaves`), each a (epoch, [batches.Entry])."""
    by_epoch: dict = {}
    for digest, box_id, key_hex, reward, decided, payload in rows:
        entry = batches.Entry(digest, box_id, bytes.fromhex(key_hex), reward, payload)
        by_epoch.setdefault(epoch_of(decided, epoch_length), []).append(entry)
    result = []
    for epoch in sorted(by_epoch):
        entries = by_epoch[epoch]
        for start in range(0, len(entries), max_leaves):
            result.append((epoch, entries[start : start + max_leaves]))
    return result


def due_totals(anchored: dict, ledger_paid: Callable[[str], int]) -> dict:
    """Boxes whose anchored total is above what the ledger recorded as paid: box id -> the total to claim."""
    return {box_id: total for box_id, total in sorted(anchored.items()) if total > ledger_paid(box_id)}


class Settlement:
    """One verifier's settlement on one deployment: the ledger, a relayer (state in the ledger's file), batch files."""

    def __init__(self, w3: Web3, described: DeploymentFile, deployment: Deployment, ledger: Ledger, relayer: Relayer,
                 batch_dir: str, log: Callable[[str], None] = print) -> None:  # fmt: skip
        self.w3, self.described, self.deployment = w3, described, deployment
        self.ledger, self.relayer, self.batch_dir, self.log = ledger, relayer, batch_dir, log

    # -- anchors -----------------------------------------------------------------------------------------------

    def anchor(self, now: int, include_open: bool = False, timeout: float = 60.0) -> list:
        """Batch and anchor every closed epoch's accepted receipts not anchored yet (with `include_open`, the
        current epoch's so far too). Returns an Outcome per batch."""
        length = self.described.epoch_length
        before = now + 1 if include_open else epoch_of(now, length) * length
        groups = group_closed(self.ledger.accepted_unanchored(before), length)
        made = []
        for epoch, entries in groups:
            batch = batches.build(epoch, entries)
            path = batches.write(self.batch_dir, batch)
            self.ledger.record_batch(batch.root, epoch, len(entries), os.path.abspath(path), now)
            job = self.relayer.submit_anchor(batch.tree.root, epoch, len(entries))
            made.append((batch, path, job.id))
        if made:
            self.relayer.run(timeout)
        outcomes = []
        for batch, path, job_id in made:
            job = self.relayer.job(job_id)
            what = "batch %s (epoch %d, %d receipts, %s)" % (batch.root, batch.epoch, len(batch.entries), path)
            tx = "0x" + job.tx_hash.hex() if job.tx_hash else ""
            if job.state is State.DONE:
                self.ledger.batch_anchored(batch.root, [e.receipt_hash for e in batch.entries], tx, now)
            outcomes.append(Outcome(what, _state(job.state), tx, job.note, job.gas_used))
        return outcomes

    # -- claims ------------------------------------------------------------------------------------------------

    def chain_now(self) -> int:
        return evm.rpc(lambda: self.w3.eth.get_block("latest")["timestamp"], "reading the latest block")

    def due_claims(self, validity: int = DEFAULT_VALIDITY, reuse: list | None = None) -> list:
        """(box id, Claim) for every registered box whose anchored total is above what it was paid on chain.
        A claim of `reuse` (a claims file read back) with the same total and time left keeps its deadline, so
        the signatures other verifiers made for it still count."""
        boxes = self.ledger.boxes()
        anchored = self.ledger.anchored_earned()
        kept = {(c.box_key, c.total): c for _box, c in reuse or []}
        now = self.chain_now()
        result = []
        for box_id, total in due_totals(anchored, self.ledger.paid).items():
            entry = boxes.get(box_id)
            if entry is None:
                continue
            key = receipt.box_key_hash(entry.ed25519)
            paid = evm.rpc(lambda key=key: self.deployment.rewards.functions.paid(key).call(), "reading paid")
            if paid >= total:
                self._catch_up(box_id, key, paid)
                continue
            old = kept.get((key, total))
            deadline = old.deadline if old and old.deadline > now + REUSE_MARGIN else now + validity
            result.append((box_id, claims.Claim(key, total, deadline)))
        return result

    def _catch_up(self, box_id: str, key: bytes, paid: int) -> None:
        """The chain paid the box more than the ledger recorded (a claim sent before a crash): record it."""
        job = self.relayer.job("claim:%s:%d" % (key.hex(), paid))
        if job is not None and job.state is State.DONE and paid <= self.ledger.earned(box_id):
            self.ledger.record_payment(box_id, "0x" + job.tx_hash.hex(), paid, int(self.chain_now()))

    def relay(self, signed: list, now: int, timeout: float = 60.0) -> list:
        """Send each (box id, SignedClaim) through the relayer (once per box and total) and record what was paid.
        Returns an Outcome per claim."""
        jobs = [(box_id, item, self.relayer.submit_claim(item)) for box_id, item in signed]
        if jobs:
            self.relayer.run(timeout)
        outcomes = []
        for box_id, item, job in jobs:
            job = self.relayer.job(job.id)
            tx = "0x" + job.tx_hash.hex() if job.tx_hash else ""
            what = "box %s up to %s" % (box_id, rewards.text(item.claim.total))
            if job.state is State.DONE:
                self.ledger.record_payment(box_id, tx, item.claim.total, now)
            outcomes.append(Outcome(what, _state(job.state), tx, job.note, job.gas_used))
        return outcomes

    # -- proofs and audits -------------------------------------------------------------------------------------

    def on_chain_anchor(self, root: str) -> tuple:
        """(epoch, count, anchoredAt) of `root` on chain; anchoredAt 0: never anchored."""
        raw = bytes.fromhex(root[2:])
        return tuple(evm.rpc(lambda: self.deployment.rewards.functions.anchors(raw).call(), "reading an anchor"))

    def included_on_chain(self, batch: batches.Batch, index: int) -> bool:
        """The contract's own verifyInclusion of receipt `index` of the batch."""
        leaf, proof = batch.tree.leaf_hash(index), batch.tree.proof(index)
        call = self.deployment.rewards.functions.verifyInclusion(leaf, proof, batch.tree.root)
        return evm.rpc(call.call, "checking a proof on chain")

    def audit(self, batch: batches.Batch) -> str:
        """Check an (already self-consistent) batch against the chain: anchored, with its epoch and count, and its
        first and last proofs accepted by the contract. Returns a summary; SettleError for any mismatch."""
        epoch, count, anchored_at = self.on_chain_anchor(batch.root)
        if not anchored_at:
            raise SettleError("the root %s of this batch is not anchored on chain %d" % (batch.root,
                              self.described.chain_id))  # fmt: skip
        if (epoch, count) != (batch.epoch, len(batch.entries)):
            raise SettleError("the chain anchored root %s for epoch %d with %d receipts; the file says epoch %d with "
                              "%d" % (batch.root, epoch, count, batch.epoch, len(batch.entries)))  # fmt: skip
        for index in sorted({0, len(batch.entries) - 1}):
            if not self.included_on_chain(batch, index):
                raise SettleError("the contract refuses the proof of receipt %d" % index)
        return "anchored at block time %d, epoch %d, %d receipts" % (anchored_at, epoch, count)


def _state(state: State) -> str:
    return {State.DONE: "done", State.REVERTED: "reverted", State.FAILED: "failed"}.get(state, "in flight")


# -- claims and signature files (the k-of-n exchange between verifiers) -------------------------------------------


def _domain_json(domain: claims.Domain) -> dict:
    return {"chain_id": domain.chain_id, "contract": domain.contract}


def _check_domain(data: dict, domain: claims.Domain, path: str) -> None:
    if data.get("chain_id") != domain.chain_id or str(data.get("contract", "")).lower() != domain.contract.lower():
        raise SettleError("%s is for chain %s, contract %s; this deployment is chain %d, contract %s" % (
            path, data.get("chain_id"), data.get("contract"), domain.chain_id, domain.contract))  # fmt: skip


def _load_json(path: str, expected: str, what: str) -> dict:
    try:
        with open(path) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise SettleError("no %s at %s" % (what, path)) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise SettleError("%s is not a %s: %s" % (path, what, exc)) from exc
    if not isinstance(data, dict) or data.get("format") != expected:
        raise SettleError("%s is not a %s (format %s)" % (path, what, expected))
    return data


def _write_json(path: str, data: dict) -> None:
    temporary = path + ".part"
    with open(temporary, "w") as handle:
        json.dump(data, handle, indent=1)
        handle.write("\n")
    os.replace(temporary, path)


def _claim_json(box_id: str, claim: claims.Claim) -> dict:
    return {"box_id": box_id, "box_key": "0x" + claim.box_key.hex(), "total": str(claim.total),
            "deadline": claim.deadline}  # fmt: skip


def _claim_from(item, where: str) -> tuple:
    try:
        box_id, total, deadline = item["box_id"], item["total"], item["deadline"]
        key = bytes.fromhex(item["box_key"][2:]) if item["box_key"].startswith("0x") else b""
        if not isinstance(total, str) or not total.isdigit() or not isinstance(box_id, str):
            raise ValueError("total must be decimal digits")
        return box_id, claims.Claim(key, int(total), deadline)
    except (KeyError, TypeError, ValueError, AttributeError, claims.ClaimError) as exc:
        raise SettleError("%s: a malformed claim: %s" % (where, exc)) from exc


def write_claims(path: str, domain: claims.Domain, due: list) -> None:
    """The claims file other verifiers co-sign (`mipai-chain cosign`)."""
    _write_json(path, {"format": CLAIMS_FORMAT, **_domain_json(domain),
                       "claims": [_claim_json(box_id, claim) for box_id, claim in due]})  # fmt: skip


def read_claims(path: str, domain: claims.Domain) -> list:
    """(box id, Claim) of a claims file made for `domain`."""
    data = _load_json(path, CLAIMS_FORMAT, "claims file")
    _check_domain(data, domain, path)
    if not isinstance(data.get("claims"), list):
        raise SettleError("%s: claims must be a list" % path)
    return [_claim_from(item, path) for item in data["claims"]]


def cosign(key: claims.VerifierKey, ledger: Ledger, due: list, domain: claims.Domain, now: int) -> tuple:
    """Sign each claim this verifier's own ledger backs: the box's lifetime total of the receipts it accepted is at
    least the claimed total, and the deadline is ahead. Returns ({claim: signature}, [refusal reasons])."""
    boxes = ledger.boxes()
    signed, refused = {}, []
    for box_id, claim in due:
        entry = boxes.get(box_id)
        if entry is None or receipt.box_key_hash(entry.ed25519) != claim.box_key:
            refused.append("box %s: not registered in this verifier's ledger with that box key" % box_id)
        elif ledger.earned(box_id) < claim.total:
            refused.append("box %s: this verifier's ledger backs %s of the %s claimed" % (box_id,
                           rewards.text(ledger.earned(box_id)), rewards.text(claim.total)))  # fmt: skip
        elif claim.deadline <= now:
            refused.append("box %s: the claim expired at %d" % (box_id, claim.deadline))
        else:
            signed[claim] = key.sign(claim, domain)
    return signed, refused


def write_signatures(path: str, domain: claims.Domain, signer: str, signed: dict) -> None:
    items = [dict(_claim_json("", claim), signature="0x" + sig.hex()) for claim, sig in signed.items()]
    for item in items:
        del item["box_id"]
    _write_json(path, {"format": SIGNATURES_FORMAT, **_domain_json(domain), "signer": signer, "signatures": items})


def read_signatures(path: str, domain: claims.Domain) -> tuple:
    """(signer address, {Claim: signature}) of a signature file made for `domain`; each signature is checked to
    be the signer's."""
    data = _load_json(path, SIGNATURES_FORMAT, "signature file")
    _check_domain(data, domain, path)
    signer = data.get("signer")
    if not isinstance(signer, str) or not Web3.is_address(signer) or not isinstance(data.get("signatures"), list):
        raise SettleError("%s: signer must be an address and signatures a list" % path)
    found = {}
    for item in data["signatures"]:
        _box, claim = _claim_from(dict(item, box_id=""), path)
        try:
            signature = bytes.fromhex(item["signature"][2:])
            made_by = claims.recover(claim, domain, signature)
        except (KeyError, TypeError, ValueError, AttributeError, claims.ClaimError) as exc:
            raise SettleError("%s: a signature that does not check: %s" % (path, exc)) from exc
        if made_by.lower() != signer.lower():
            raise SettleError("%s: a signature said to be %s's was made by %s" % (path, signer, made_by))
        found[claim] = signature
    return Web3.to_checksum_address(signer), found


def gather(due: list, domain: claims.Domain, signatures: dict, verifiers, k: int) -> tuple:
    """Pair each claim with k signatures in the contract's order. `signatures`: signer -> {Claim: signature}.
    Returns ([(box id, SignedClaim)], [(box id, reason)]) for those with k and those without."""
    ready, short = [], []
    for box_id, claim in due:
        have = {signer: sigs[claim] for signer, sigs in signatures.items() if claim in sigs}
        try:
            ready.append((box_id, claims.collect(claim, domain, have, list(verifiers), k)))
        except claims.ClaimError as exc:
            short.append((box_id, "%s (others sign the claims file: mipai-chain cosign)" % exc))
    return ready, short
