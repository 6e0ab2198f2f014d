"""`mipai-chain`, the network's light chain client: the registry of boxes and jobs, `verify` (receipts checked
against signed telemetry over MQTT, rewards reported back to each box), `status`, and settlement on an EVM chain:
`deploy`, `boxes register`, `anchor`, `claim`, `cosign`, `prove` and `audit`."""

import argparse
import json
import os
import signal
import socket
import sys
import time

from web3 import Web3

from chain_client import batches, claims, deploy, deployment_file, evm, rewards, service, settle
from chain_client.deployment_file import DeploymentFileError
from chain_client.job_registry import JobFileError, job_entry
from chain_client.ledger import Ledger, LedgerError
from chain_client.verifier import DEFAULT_PATIENCE_SECONDS, BoxEntry
from firmware_bridge import edge_pairing
from secure_print.signer_key import SignerKey, SignerKeyError, write_secret_file
from wire import chain_address, keytext, receipt

PROGRAM = "mipai-chain"
DEFAULT_LEDGER = "mipai-chain.sqlite"


class UsageError(Exception):
    """What the user asked cannot be done; the message says why."""


def _ledger(args) -> Ledger:
    return Ledger(args.ledger)


def run_keygen(args) -> int:
    if args.evm:
        account = deployment_file.new_evm_key(args.output)
        print("EVM key written to %s (mode 0600)" % args.output)
        print("address %s: fund it with gas to relay; name it as a verifier to co-sign claims" % account.address)
        return 0
    key = SignerKey.generate(keytext.NETWORK)
    try:
        write_secret_file(args.output, key.to_text().encode())
    except FileExistsError:
        raise UsageError("%s exists; a verifier key is never overwritten" % args.output) from None
    print("verifier key written to %s (mode 0600)" % args.output)
    print("boxes read rewards reports signed under key id %s by:" % receipt.verifier_key_id(key.public_bytes))
    print(key.public_text)
    return 0


def _box_key(text: str) -> bytes:
    text = text.strip()
    if text.startswith(keytext.BOX + ":"):
        return keytext.decode(text, keytext.BOX)[1][:32]
    try:
        key = bytes.fromhex(text)
    except ValueError:
        key = b""
    if len(key) != 32:
        raise UsageError("--box-key takes the box's key text (mipai-box:...) or its Ed25519 key in hex")
    return key


def run_boxes_add(args) -> int:
    key = _box_key(args.box_key)
    address = chain_address.normalise(args.evm_address) if args.evm_address else ""
    if args.binding:
        with open(args.binding) as handle:
            try:
                signed = json.load(handle)
            except ValueError as exc:
                raise UsageError("%s is not JSON: %s" % (args.binding, exc)) from exc
        bound = chain_address.verify(signed, key)
        if address and address != bound:
            raise UsageError("the box bound %s to itself, not %s" % (bound, address))
        address = bound
    if not address:
        raise UsageError("give the box's signed address binding (--binding FILE) or --evm-address")
    entry = BoxEntry(keytext.box_id(key), key, address, chain_address.normalise(args.owner))
    ledger = _ledger(args)
    try:
        ledger.add_box(entry, int(time.time()))
    finally:
        ledger.close()
    print("box %s registered: address %s, owner %s" % (entry.box_id, entry.evm_address, entry.owner))
    return 0


def run_jobs_add(args) -> int:
    entry = job_entry(args.job, args.license_id, args.gcode, args.lines, args.estimate_seconds)
    ledger = _ledger(args)
    try:
        new = ledger.add_job(entry, int(time.time()))
    finally:
        ledger.close()
    print("job %s %s: sealed file %s" % (entry.job_id, "registered" if new else "updated", entry.sealed_sha256))
    missing = [name for name, value in (("license id", entry.license_id), ("line count", entry.lines),
                                        ("time estimate", entry.estimate_s)) if value is None]  # fmt: skip
    if missing:
        print("not known, so not checked: %s (give --license-id, --gcode)" % ", ".join(missing))
    return 0


def run_bridges_add(args) -> int:
    try:
        keys = edge_pairing.load_keys(args.keys)
    except edge_pairing.PairingError as exc:
        raise UsageError(str(exc)) from exc
    if not os.path.exists(args.keys) or not keys:
        raise UsageError("%s lists no bridge (mipai-fleet edge pair PORT writes it)" % args.keys)
    ledger = _ledger(args)
    try:
        added = [bridge_id for bridge_id, key in sorted(keys.items())
                 if ledger.bridges.add_bridge(bridge_id, key, int(time.time()))]  # fmt: skip
    finally:
        ledger.close()
    for bridge_id in added:
        print("bridge %s recorded: its attestations now weigh receipts" % bridge_id)
    print("%d new, %d known already" % (len(added), len(keys) - len(added)))
    return 0


def run_status(args) -> int:
    ledger = _ledger(args)
    try:
        rows = ledger.summary()
    finally:
        ledger.close()
    print("%-16s  %8s  %7s  %7s  %10s  %16s  %16s" % ("box", "accepted", "refused", "pending", "records", "earned",
                                                      "paid"))  # fmt: skip
    for row in rows:
        print("%-16s  %8d  %7d  %7d  %10d  %16s  %16s" % (row["box_id"], row["accepted"], row["refused"],
              row["pending"], row["records"], rewards.text(row["earned"]), rewards.text(row["paid"])))  # fmt: skip
        for seq, reason in row["reasons"]:
            print("    receipt %d: %s" % (seq, reason))
        for topic, reason, count in row["notices"]:
            print("    %s (%d times): %s" % (topic, count, reason))
    return 0


def run_verify(args) -> int:
    if not os.path.exists(args.key):
        raise UsageError("no verifier key at %s (make one: %s keygen -o %s)" % (args.key, PROGRAM, args.key))
    key = SignerKey.load(args.key)
    client_id = args.client_id or "mipai-chain-%s-%s" % (args.group, socket.gethostname())
    client = service.make_client(client_id, args.ca_file, args.cert_file, args.key_file)
    ledger = _ledger(args)
    verify = service.VerifyService(client, ledger, key.signing, args.group, args.patience,
                                   log=lambda text: print(text, flush=True))  # fmt: skip
    try:
        service.connect(client, args.broker_host, args.broker_port)
    except (OSError, ValueError) as exc:
        ledger.close()
        raise UsageError("cannot reach the broker %s:%d: %s" % (args.broker_host, args.broker_port, exc)) from exc
    print("verify: %s in group %s, ledger %s" % (client_id, args.group, os.path.abspath(args.ledger)), flush=True)
    signal.signal(signal.SIGTERM, lambda _signal, _frame: verify.stop())  # systemd's stop: end cleanly
    try:
        verify.run(args.seconds)
    finally:
        client.disconnect()
        ledger.close()
    print("verify: %(messages)d messages, %(accepted)d receipts accepted, %(refused)d refused" % verify.counts)
    return 0


def _chain(args):
    """(web3, deployment file, deployment) of --rpc and --deployment."""
    described = deployment_file.read(args.deployment)
    w3 = evm.connect(args.rpc)
    return w3, described, deployment_file.attach(w3, described, args.deployment)


def run_deploy(args) -> int:
    if os.path.exists(args.output):
        raise UsageError("%s exists; a deployment file is never overwritten" % args.output)
    admin = deployment_file.load_evm_key(args.key)
    verifiers = [chain_address.normalise(v) for v in args.verifier] or [admin.address]
    k = args.k or len(verifiers)
    if not 1 <= k <= len(verifiers):
        raise UsageError("--k must be from 1 to the number of verifiers (%d)" % len(verifiers))
    w3 = evm.connect(args.rpc)
    start = evm.rpc(lambda: w3.eth.block_number, "reading the block number")
    made = deploy.deploy(w3, admin, verifiers=[evm_checksum(v) for v in verifiers], k=k,
                         epoch_length=args.epoch_length, epoch_limit=args.epoch_limit)  # fmt: skip
    described = deployment_file.describe(w3, made, start)
    deployment_file.write(args.output, described)
    print("deployed on chain %d: registry %s, rewards %s, token %s" % (described.chain_id,
          made.registry.address, made.rewards.address, made.token.address))  # fmt: skip
    print("verifiers %s, k = %d; deployment file %s" % (", ".join(described.verifiers), k, args.output))
    return 0


def evm_checksum(address: str) -> str:
    return Web3.to_checksum_address(address)


def run_boxes_register(args) -> int:
    w3, _described, made = _chain(args)
    admin = deployment_file.load_evm_key(args.key)
    ledger = _ledger(args)
    try:
        boxes = ledger.boxes()
    finally:
        ledger.close()
    if not boxes:
        raise UsageError("no boxes in the ledger %s (add them: %s boxes add)" % (args.ledger, PROGRAM))
    registry = made.registry.functions
    for box_id, entry in sorted(boxes.items()):
        key = receipt.box_key_hash(entry.ed25519)
        device, owner = evm_checksum(entry.evm_address), evm_checksum(entry.owner)
        known = evm.rpc(lambda key=key: registry.boxes(key).call(), "reading the registry")
        if known[2] and (evm_checksum(known[0]), evm_checksum(known[1])) == (device, owner):
            print("box %s: registered already" % box_id)
            continue
        action = "updateBox" if known[2] else "registerBox"
        deploy.call_admin(w3, admin, made.registry, action, key, device, owner)
        print("box %s: %s, device %s, owner %s" % (box_id, "updated" if known[2] else "registered", device, owner))
    return 0


def _settlement(args, ledger):
    from chain_client.relayer import Relayer

    w3, described, made = _chain(args)
    account = deployment_file.load_evm_key(args.key)
    relayer = Relayer(w3, account, made, args.ledger)
    return settle.Settlement(w3, described, made, ledger, relayer, getattr(args, "batch_dir", ""))


def _print_outcomes(outcomes, nothing: str) -> int:
    if not outcomes:
        print(nothing)
    for outcome in outcomes:
        gas = " gas %d" % outcome.gas if outcome.gas else ""
        note = ": " + outcome.note if outcome.note else ""
        print("%s: %s %s%s%s" % (outcome.what, outcome.state, outcome.tx, gas, note))
    return 0 if all(outcome.state == "done" for outcome in outcomes) else 1


def run_anchor(args) -> int:
    ledger = _ledger(args)
    try:
        work = _settlement(args, ledger)
        outcomes = work.anchor(int(time.time()), args.include_open_epoch, args.timeout)
        work.relayer.close()
    finally:
        ledger.close()
    return _print_outcomes(outcomes, "nothing to anchor: no accepted receipts of a closed epoch left unanchored")


def run_claim(args) -> int:
    ledger = _ledger(args)
    try:
        work = _settlement(args, ledger)
        domain = work.described.domain
        old = settle.read_claims(args.claims_file, domain) if os.path.exists(args.claims_file) else []
        due = work.due_claims(args.validity, old)
        settle.write_claims(args.claims_file, domain, due)
        signatures = {}
        for path in [args.key, *(args.verifier_key or [])]:
            signer = deployment_file.verifier_key(path)
            if signer.address in work.described.verifiers:
                signatures[signer.address] = dict.fromkeys(c for _b, c in due)
                for _box_id, claim in due:
                    signatures[signer.address][claim] = signer.sign(claim, domain)
        for path in args.signatures or []:
            signer, found = settle.read_signatures(path, domain)
            signatures.setdefault(signer, {}).update(found)
        ready, short = settle.gather(due, domain, signatures, work.described.verifiers, work.described.k)
        for box_id, reason in short:
            print("box %s: not relayed: %s" % (box_id, reason))
        outcomes = work.relay(ready, int(time.time()), args.timeout)
        work.relayer.close()
    finally:
        ledger.close()
    if short:
        print("claims file %s: %d claims wait for co-signatures" % (args.claims_file, len(short)))
    code = _print_outcomes(outcomes, "nothing to relay" if short else "nothing to claim: every box is paid its "
                           "anchored total")  # fmt: skip
    return code if not short else 1


def run_cosign(args) -> int:
    described = deployment_file.read(args.deployment)
    key = deployment_file.verifier_key(args.key)
    if key.address not in described.verifiers:
        raise UsageError("%s is not one of this deployment's verifiers" % key.address)
    due = settle.read_claims(args.claims, described.domain)
    ledger = _ledger(args)
    try:
        signed, refused = settle.cosign(key, ledger, due, described.domain, int(time.time()))
    finally:
        ledger.close()
    settle.write_signatures(args.output, described.domain, key.address, signed)
    for reason in refused:
        print("not signed: %s" % reason)
    print("%d of %d claims signed by %s into %s" % (len(signed), len(due), key.address, args.output))
    return 0 if not refused else 1


def _receipt_hash(text: str) -> str:
    if os.path.isfile(text):
        with open(text, "rb") as handle:
            return receipt.receipt_hash(handle.read().strip())
    digest = text.lower().removeprefix("0x")
    if len(digest) != 64 or any(c not in "0123456789abcdef" for c in digest):
        raise UsageError("RECEIPT is a receipt hash (64 hex digits) or a file holding the signed receipt")
    return digest


def run_prove(args) -> int:
    digest = _receipt_hash(args.receipt)
    ledger = _ledger(args)
    try:
        found = ledger.batch_of(digest)
    finally:
        ledger.close()
    if found is None:
        raise UsageError("receipt %s is in no anchored batch of this ledger (not accepted, or not anchored yet)"
                         % digest)  # fmt: skip
    root, epoch, _count, path, tx = found
    batch = batches.read(path)
    index = batches.index_of(batch, digest)
    entry = batch.to_json()["receipts"][index]
    proof = {"receipt_hash": entry["receipt_hash"], "box_key": entry["box_key"], "reward": entry["reward"],
             "leaf": entry["leaf"], "proof": entry["proof"], "root": root, "epoch": epoch, "anchor_tx": tx,
             "batch_file": path}  # fmt: skip
    if args.rpc:
        w3, described, made = _chain(args)
        work = settle.Settlement(w3, described, made, None, None, "")
        proof["included_on_chain"] = work.included_on_chain(batch, index)
    print(json.dumps(proof, indent=1))
    return 0 if proof.get("included_on_chain", True) else 1


def run_audit(args) -> int:
    batch = batches.read(args.batch)
    w3, described, made = _chain(args)
    summary = settle.Settlement(w3, described, made, None, None, "").audit(batch)
    paid = sum(entry.reward for entry in batch.entries)
    print("batch %s: %d receipts, every signature, hash and proof checks; root %s %s; rewards %s" % (
        args.batch, len(batch.entries), batch.root, summary, rewards.text(paid)))  # fmt: skip
    return 0


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__)
    parser.add_argument("--ledger", default=DEFAULT_LEDGER, help="the verifier's SQLite state (shared by a group)")
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="make the verifier's key that signs rewards reports")
    keygen.add_argument("-o", "--output", required=True)
    keygen.add_argument("--evm", action="store_true",
                        help="an EVM (secp256k1) key: a relayer's account or a verifier's claim signer")  # fmt: skip
    keygen.set_defaults(run=run_keygen)
    boxes = sub.add_parser("boxes", help="the registry of boxes").add_subparsers(dest="action", required=True)
    add_box = boxes.add_parser("add", help="register a box with its keys and owner")
    add_box.add_argument("--box-key", required=True, help="the box's key text (mipai-box keys show)")
    add_box.add_argument("--binding", help="the box's signed chain.address statement (JSON)")
    add_box.add_argument("--evm-address", help="the box's EVM address (checked against --binding when both)")
    add_box.add_argument("--owner", required=True, help="the owner's EVM address, paid by claims")
    add_box.set_defaults(run=run_boxes_add)
    register = boxes.add_parser("register", help="write the ledger's boxes into the registry on chain")
    _chain_arguments(register, key_help="the registrar's EVM key file (the deployer's)")
    register.set_defaults(run=run_boxes_register)
    jobs = sub.add_parser("jobs", help="the registry of jobs the platform issued")
    jobs = jobs.add_subparsers(dest="action", required=True)
    add_job = jobs.add_parser("add", help="record a sealed job from its public header")
    add_job.add_argument("job", help="the .mipjob file")
    add_job.add_argument("--license-id", help="the license id it was sealed with (not in the public header)")
    add_job.add_argument("--gcode", help="the G-code it was sealed from: gives the line count and time estimate")
    add_job.add_argument("--lines", type=int, help="source line of the job's last command")
    add_job.add_argument("--estimate-seconds", type=int, help="the G-code's own time estimate")
    add_job.set_defaults(run=run_jobs_add)
    bridges = sub.add_parser("bridges", help="the edge bridges paired with the network")
    bridges = bridges.add_subparsers(dest="action", required=True)
    add_bridges = bridges.add_parser("add", help="record the network's copy of paired bridges' keys")
    add_bridges.add_argument("keys", help="the key file `mipai-fleet edge pair` writes (one 'ID KEY' a line)")
    add_bridges.set_defaults(run=run_bridges_add)
    status = sub.add_parser("status", help="per box: accepted, refused with reasons, pending, earned")
    status.set_defaults(run=run_status)
    verify = sub.add_parser("verify", help="verify receipts against telemetry over MQTT and report rewards")
    verify.add_argument("--key", required=True, help="the verifier's secret key file")
    verify.add_argument("--group", default="verifiers", help="the shared-subscription group")
    verify.add_argument("--client-id", default="", help="stable per process (its session survives restarts)")
    verify.add_argument("--patience", type=int, default=DEFAULT_PATIENCE_SECONDS,
                        help="seconds missing telemetry is waited for once later records arrived")  # fmt: skip
    verify.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    verify.add_argument("--broker-host", default="127.0.0.1")
    verify.add_argument("--broker-port", type=int, default=1883)
    verify.add_argument("--ca-file", default="", help="the fleet CA, for mutual TLS")
    verify.add_argument("--cert-file", default="", help="the verifier's certificate (mipai-fleet ca verifier)")
    verify.add_argument("--key-file", default="")
    verify.set_defaults(run=run_verify)
    deploy_cmd = sub.add_parser("deploy", help="deploy the registry, the reward contract and the 3DP token")
    deploy_cmd.add_argument("--rpc", required=True, help="the chain's JSON-RPC URL")
    deploy_cmd.add_argument("--key", required=True, help="the deployer's EVM key file (admin, registrar, anchorer)")
    deploy_cmd.add_argument("-o", "--output", default="deployment.json", help="the deployment file to write")
    deploy_cmd.add_argument("--verifier", action="append", default=[],
                            help="a verifier address co-signing claims (repeat; default: the deployer)")  # fmt: skip
    deploy_cmd.add_argument("--k", type=int, default=0, help="signatures a claim needs (default: all verifiers)")
    deploy_cmd.add_argument("--epoch-length", type=int, default=deploy.DEFAULT_EPOCH_LENGTH, help="seconds")
    deploy_cmd.add_argument("--epoch-limit", type=int, default=deploy.DEFAULT_EPOCH_LIMIT,
                            help="token units claims may mint per epoch")  # fmt: skip
    deploy_cmd.set_defaults(run=run_deploy)
    anchor = sub.add_parser("anchor", help="batch closed epochs' accepted receipts and anchor each batch's root")
    _chain_arguments(anchor, key_help="the relayer's EVM key file (holds ANCHOR_ROLE)")
    anchor.add_argument("--batch-dir", default="batches", help="where batch files are written")
    anchor.add_argument("--include-open-epoch", action="store_true",
                        help="batch the current epoch's receipts so far too (later ones: another batch)")  # fmt: skip
    anchor.set_defaults(run=run_anchor)
    claim = sub.add_parser("claim", help="claim each box's anchored total, co-signed by k verifiers")
    _chain_arguments(claim, key_help="the relayer's EVM key file (it signs too when it is a verifier)")
    claim.add_argument("--claims-file", default="claims.json", help="written for other verifiers to co-sign")
    claim.add_argument("--signatures", action="append", help="a signature file from mipai-chain cosign (repeat)")
    claim.add_argument("--verifier-key", action="append", help="another verifier's EVM key file held here")
    claim.add_argument("--validity", type=int, default=settle.DEFAULT_VALIDITY, help="seconds a claim stays valid")
    claim.set_defaults(run=run_claim)
    cosign = sub.add_parser("cosign", help="co-sign a claims file with this verifier's key, against its ledger")
    cosign.add_argument("claims", help="the claims file (mipai-chain claim writes it)")
    cosign.add_argument("--key", required=True, help="this verifier's EVM key file")
    cosign.add_argument("--deployment", default="deployment.json")
    cosign.add_argument("-o", "--output", required=True, help="the signature file to write")
    cosign.set_defaults(run=run_cosign)
    prove = sub.add_parser("prove", help="the inclusion proof of one receipt (checked on chain with --rpc)")
    prove.add_argument("receipt", help="the receipt hash, or a file holding the signed receipt")
    prove.add_argument("--rpc", default="")
    prove.add_argument("--deployment", default="deployment.json")
    prove.set_defaults(run=run_prove)
    audit = sub.add_parser("audit", help="recompute a batch file and check it against its root on chain")
    audit.add_argument("batch", help="the batch file")
    audit.add_argument("--rpc", required=True)
    audit.add_argument("--deployment", default="deployment.json")
    audit.set_defaults(run=run_audit)
    return parser


def _chain_arguments(parser, key_help: str) -> None:
    parser.add_argument("--rpc", required=True, help="the chain's JSON-RPC URL")
    parser.add_argument("--key", required=True, help=key_help)
    parser.add_argument("--deployment", default="deployment.json", help="the file mipai-chain deploy wrote")
    parser.add_argument("--timeout", type=float, default=60.0, help="seconds to wait for transactions")


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, LedgerError, JobFileError, SignerKeyError, keytext.KeyTextError, DeploymentFileError,
            chain_address.BindingError, settle.SettleError, batches.BatchError, evm.ChainError,
            claims.ClaimError) as exc:  # fmt: skip
        print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
    except OSError as exc:
        print("%s: %s: %s" % (PROGRAM, exc.filename or "", exc.strerror or exc), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
