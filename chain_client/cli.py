"""`mipai-chain`, the network's light chain client: the registry of boxes and jobs, `verify` (receipts checked
against signed telemetry over MQTT, rewards reported back to each box) and `status`."""

import argparse
import json
import os
import signal
import socket
import sys
import time

from chain_client import rewards, service
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
    signal.signal(signal.SIGTERM, _interrupt)
    try:
        verify.run(args.seconds)
    finally:
        client.disconnect()
        ledger.close()
    print("verify: %(messages)d messages, %(accepted)d receipts accepted, %(refused)d refused" % verify.counts)
    return 0


def _interrupt(_signal, _frame) -> None:
    raise KeyboardInterrupt


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__)
    parser.add_argument("--ledger", default=DEFAULT_LEDGER, help="the verifier's SQLite state (shared by a group)")
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="make the verifier's key that signs rewards reports")
    keygen.add_argument("-o", "--output", required=True)
    keygen.set_defaults(run=run_keygen)
    boxes = sub.add_parser("boxes", help="the registry of boxes").add_subparsers(dest="action", required=True)
    add_box = boxes.add_parser("add", help="register a box with its keys and owner")
    add_box.add_argument("--box-key", required=True, help="the box's key text (mipai-box keys show)")
    add_box.add_argument("--binding", help="the box's signed chain.address statement (JSON)")
    add_box.add_argument("--evm-address", help="the box's EVM address (checked against --binding when both)")
    add_box.add_argument("--owner", required=True, help="the owner's EVM address, paid by claims")
    add_box.set_defaults(run=run_boxes_add)
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
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, LedgerError, JobFileError, SignerKeyError, keytext.KeyTextError,
            chain_address.BindingError) as exc:  # fmt: skip
        print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
    except OSError as exc:
        print("%s: %s: %s" % (PROGRAM, exc.filename or "", exc.strerror or exc), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
