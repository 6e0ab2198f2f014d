"""`mipai-fleet`, the operator's command line: an operator key, the table of boxes, live verified telemetry, and
signed commands that wait for their result."""

import argparse
import base64
import datetime
import fnmatch
import hashlib
import os
import sys
import time

import paho.mqtt.client as mqtt

from fleet import edge_command, record_text
from fleet.ca import OPERATOR_PREFIX, VERIFIER_PREFIX, CAError, FleetCA
from fleet.telemetry_check import TelemetryCheck
from provisioning import enrolment
from secure_print.signer_key import SignerKey, SignerKeyError, write_secret_file
from wire import command_gate, envelope, keytext, receipt, topics

PROGRAM = "mipai-fleet"
COMMAND_LIFETIME = 300  # seconds a signed command stays valid
INLINE_JOB_LIMIT = 192 * 1024  # the box's limit for a job sent inside the command


class UsageError(Exception):
    pass


def connect(args, client_id: str) -> mqtt.Client:
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
    if args.ca_file:
        client.tls_set(ca_certs=args.ca_file, certfile=args.cert_file or None, keyfile=args.key_file or None)
    try:
        client.connect(args.broker_host, args.broker_port, keepalive=30)
    except (OSError, ValueError) as exc:
        raise UsageError("cannot reach the broker %s:%d: %s" % (args.broker_host, args.broker_port, exc)) from exc
    return client


def run_keygen(args) -> int:
    key = SignerKey.generate(keytext.OPERATOR)
    try:
        write_secret_file(args.output, key.to_text().encode())
    except FileExistsError:
        raise UsageError("%s exists; an operator key is never overwritten" % args.output) from None
    print("operator key written to %s (mode 0600)" % args.output)
    print("key id: %s" % topics.operator_key_id(key.public_bytes))
    print("put this line in each box's settings, [fleet] operators = [...]:")
    print(key.public_text)
    return 0


def _collect(args, subscriptions: list, seconds: float, on_message) -> None:
    client = connect(args, "fleet-%s" % os.urandom(4).hex())
    client.on_message = lambda _c, _u, message: on_message(message)
    for topic in subscriptions:
        client.subscribe(topic, qos=1)
    deadline = time.monotonic() + seconds if seconds else None
    try:
        while deadline is None or time.monotonic() < deadline:
            client.loop(0.1)
    except KeyboardInterrupt:
        pass
    client.disconnect()


def _historical(message) -> bool:
    properties = getattr(message, "properties", None)
    pairs = getattr(properties, "UserProperty", None) or []
    return ("historical", "1") in pairs


def _verifiers(texts) -> dict:
    """key id -> public key of the network's verifiers given with --verifier (mipai-network: texts)."""
    keys = {}
    for text in texts:
        try:
            key = keytext.decode(text, keytext.NETWORK)[1]
        except keytext.KeyTextError as exc:
            raise UsageError("--verifier: %s" % exc) from None
        keys[receipt.verifier_key_id(key)] = key
    return keys


def earned_of(topic: str, payload: bytes, verifiers: dict):
    """(box id, earned) of a retained rewards report signed by one of `verifiers`, or None."""
    try:
        box_id, _name = topics.split_topic(topic)
        signed = topics.decode(payload)
        key = verifiers.get(signed.get("key_id")) if isinstance(signed, dict) else None
        if key is None:
            return None
        return box_id, receipt.read_rewards(payload, key, box_id)["earned"]
    except (topics.WireError, envelope.EnvelopeError, receipt.ReceiptError):
        return None


def run_boxes(args) -> int:
    check = TelemetryCheck()
    verifiers = _verifiers(args.verifier)
    earned = {}

    def on_message(message) -> None:
        if message.topic.endswith("/" + topics.REWARDS):
            found = earned_of(message.topic, message.payload, verifiers) if message.payload else None
            if found is not None:
                earned[found[0]] = found[1]
        else:
            check.feed(message.topic, message.payload)

    _collect(args, ["%s/+/%s" % (topics.PREFIX, name) for name in (topics.STATUS, topics.REWARDS)], args.seconds,
             on_message)  # fmt: skip
    print(
        "%-16s  %-20s  %-7s  %-8s  %-24s  %-19s  %s"
        % ("box", "name", "online", "printing", "printer", "last seen", "earned")
    )
    for box_id, view in sorted(check.boxes.items()):
        status = view.status or {}
        state = status.get("state", {})
        seen = time.strftime("%Y-%m-%d %H:%M:%S", time.localtime(status.get("ts", 0)))
        shown = receipt.format_amount(earned[box_id]) if box_id in earned else "-"
        print("%-16s  %-20s  %-7s  %-8s  %-24s  %-19s  %s" % (box_id, (state.get("name") or "-")[:20],
              "yes" if status.get("online") else "no", "yes" if state.get("printing") else "no",
              state.get("printer", "")[:24] or "-", seen, shown))  # fmt: skip
    return 0


def run_watch(args) -> int:
    check = TelemetryCheck()
    box = args.box or "+"
    subscriptions = ["%s/%s/%s" % (topics.PREFIX, box, name) for name in
              (topics.STATUS, topics.TELEMETRY, topics.EVENT)]  # fmt: skip
    problems = []

    def show(message) -> None:
        for finding in check.feed(message.topic, message.payload, _historical(message)):
            if finding.kind == "record":
                record = finding.record
                for missing in finding.new_gaps:
                    print("%s GAP  record %d missing" % (finding.box_id, missing))
                text = record_text.describe(record["body"])
                print("%s #%d %s%s %s" % (finding.box_id, record["seq"], "historical " if finding.historical else "",
                      record["body"].get("type"), text if args.wide else record_text.shorten(text)))  # fmt: skip
            elif finding.kind == "refused":
                problems.append(finding.reason)
                print("%s REFUSED %s" % (finding.box_id, finding.reason))
            elif finding.kind == "status" and finding.record is not None:
                body = finding.record["body"]
                print("%s status: %s (session %d)" % (finding.box_id, "online" if body["online"] else "offline",
                      body["session"]))  # fmt: skip
        sys.stdout.flush()

    _collect(args, subscriptions, args.seconds, show)
    for box_id, view in sorted(check.boxes.items()):
        gaps = view.gaps()
        print("%s: %d records verified, %d duplicates not counted, %d missing%s" % (box_id, view.records,
              view.duplicates, len(gaps), (": " + ", ".join(map(str, gaps[:20]))) if gaps else ""))  # fmt: skip
    return 1 if problems else 0


def _parse_value(text: str):
    if text in ("true", "false"):
        return text == "true"
    if text.lstrip("-").isdigit():
        return int(text)
    return text


def run_cmd(args) -> int:
    parsed = {}
    for pair in args.args:
        name, equals, value = pair.partition("=")
        if not equals or not name:
            raise UsageError("command arguments are NAME=VALUE, got %r" % pair)
        parsed[name] = _parse_value(value)
    if args.name == "config.set":
        parsed = {"values": parsed}
    return send_command(args, args.box, args.name, parsed)


def send_command(args, box_id: str, name: str, arguments: dict) -> int:
    """Sign a command, publish it, print the box's results until the final one; the exit status says how it
    ended (0 succeeded, 1 rejected or failed, 3 no answer)."""
    key = SignerKey.load(args.key)
    key_id = topics.operator_key_id(key.public_bytes)
    now = int(time.time())
    sequence = next_sequence(args.key + ".seq", now)
    command = command_gate.command(box_id, name, arguments, key.signing, key_id, now, sequence, now + COMMAND_LIFETIME)
    results = []
    client = connect(args, "fleet-%s" % os.urandom(4).hex())
    client.on_message = lambda _c, _u, message: results.append(message.payload)
    client.subscribe(topics.topic(box_id, topics.RESULT), qos=1)
    client.loop(0.5)
    client.publish(topics.topic(box_id, topics.COMMAND), topics.encode(command), qos=1)
    deadline = time.monotonic() + args.timeout
    final = None
    while time.monotonic() < deadline and final is None:
        client.loop(0.1)
        while results:
            try:
                result = topics.decode(results.pop(0))
            except topics.WireError:
                continue
            body = result.get("body", {}) if isinstance(result, dict) else {}
            if body.get("command_key_id") != key_id or body.get("command_seq") != sequence:
                continue
            print("%s: %s%s" % (body["outcome"], body["reason"], ("\n" + topics.encode(body["data"]).decode())
                                if body.get("data") else ""))  # fmt: skip
            if body["outcome"] != command_gate.ACCEPTED:
                final = body["outcome"]
    client.disconnect()
    if final is None:
        print("no final result from box %s within %d s (is it online?)" % (box_id, args.timeout))
        return 3
    return 0 if final == command_gate.SUCCEEDED else 1


def pick_box(boxes: dict, material: str, printer: str, among) -> str:
    """An online, idle box whose loaded material and printer fit (from retained status); the oldest-seen first
    is not preferred: the one idle longest is unknown here, so the choice is by box id, stable and simple."""
    for box_id, view in sorted(boxes.items()):
        status = view.status or {}
        state = status.get("state", {})
        if among and box_id not in among:
            continue
        if not status.get("online") or state.get("printing") or not state.get("printer"):
            continue
        if material and state.get("material", "").upper() != material.upper():
            continue
        if printer and not fnmatch.fnmatchcase(state.get("printer", ""), printer):
            continue
        return box_id
    return ""


def run_dispatch(args) -> int:
    try:
        with open(args.job, "rb") as handle:
            job = handle.read(INLINE_JOB_LIMIT + 1)
    except OSError as exc:
        raise UsageError("cannot read %s: %s" % (args.job, exc.strerror)) from exc
    digest = hashlib.sha256(job).hexdigest() if not args.url else args.sha256
    if args.url and not args.sha256:
        raise UsageError("--url needs --sha256 (the job file's SHA-256, which the box checks)")
    if not args.url and len(job) > INLINE_JOB_LIMIT:
        raise UsageError("the job is over %d bytes: put it on https or an IPFS gateway and pass --url and --sha256"
                         % INLINE_JOB_LIMIT)  # fmt: skip
    box = args.to
    if not box:
        check = TelemetryCheck()
        _collect(args, ["%s/+/%s" % (topics.PREFIX, topics.STATUS)], 2.0,
                 lambda m: check.feed(m.topic, m.payload))  # fmt: skip
        among = set(args.among.split(",")) if args.among else set()
        box = pick_box(check.boxes, args.material, args.printer, among)
        if not box:
            print("no online, idle box fits (material %s, printer %s)" % (args.material or "any",
                  args.printer or "any"))  # fmt: skip
            return 3
        print("dispatching to box %s" % box)
    arguments = {"sha256": digest, "title": os.path.basename(args.job)}
    if args.url:
        arguments["url"] = args.url
    else:
        arguments["data"] = base64.b64encode(job).decode()
    return send_command(args, box, "job.submit", arguments)


def next_sequence(path: str, now: int) -> int:
    """Command numbers rise: above the last one sent with this key, and at least the time in milliseconds (so a
    lost state file cannot make a box refuse every command as a replay)."""
    last = 0
    try:
        with open(path) as handle:
            last = int(handle.read().strip() or 0)
    except (OSError, ValueError):
        last = 0
    sequence = max(last + 1, now * 1000)
    with open(path + ".new", "w") as handle:
        handle.write(str(sequence))
        handle.flush()
        os.fsync(handle.fileno())
    os.replace(path + ".new", path)
    return sequence


def _now() -> datetime.datetime:
    return datetime.datetime.now(datetime.UTC)


def run_ca(args) -> int:
    if args.ca_action == "init":
        ca = FleetCA.init(args.dir, args.name, _now())
        print("fleet CA %r created in %s (keep ca.key offline; mode 0600)" % (args.name, args.dir))
        print("boxes and brokers trust %s" % os.path.join(ca.directory, "ca.crt"))
        return 0
    ca = FleetCA(args.dir)
    if args.ca_action == "token":
        token = ca.new_token(_now(), args.hours)
        print("one-time enrolment token, valid %d hours (for one box's setup page or first-boot file):" % args.hours)
        print(token)
    elif args.ca_action in ("operator", "verifier"):
        prefix = OPERATOR_PREFIX if args.ca_action == "operator" else VERIFIER_PREFIX
        if not args.name.startswith(prefix):
            raise UsageError("%s client names start with %r, such as %s1" % (args.ca_action, prefix, prefix))
    if args.ca_action == "operator":
        certificate, key = ca.issue_key_pair(args.name, args.output, _now())
        print("operator client certificate %s and key %s; run `ca broker` again to let it in" % (certificate, key))
    elif args.ca_action == "verifier":
        certificate, key = ca.issue_key_pair(args.name, args.output, _now())
        print("verifier client certificate %s and key %s; run `ca broker` again to let it in" % (certificate, key))
    elif args.ca_action == "broker":
        config = ca.broker_config(args.output, args.port, args.host or ["127.0.0.1"], _now(), args.user)
        print("broker configuration written: mosquitto -c %s" % config)
    elif args.ca_action == "boxes":
        for box_id, entry in sorted(ca.boxes().items()):
            print("%s  enrolled %s  claim code %s" % (box_id, entry["enrolled"], entry["claim_code"]))
    return 0


def run_enroll(args) -> int:
    ca = FleetCA(args.dir)
    try:
        with open(args.request, "rb") as handle:
            request = handle.read(enrolment.MAX_REQUEST_BYTES + 1)
        certificate = ca.enrol(request, _now())
    except (CAError, enrolment.EnrolmentError) as exc:
        raise UsageError("enrolment refused: %s; no certificate was issued" % exc) from exc
    with open(args.output, "wb") as handle:
        handle.write(certificate)
    print("certificate for the box written to %s; on the box: mipai-box enrol install %s --ca %s" % (
        args.output, args.output, os.path.join(args.dir, "ca.crt")))  # fmt: skip
    return 0


def _broker(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("--broker-host", default="127.0.0.1")
    parser.add_argument("--broker-port", type=int, default=1883)
    parser.add_argument("--ca-file", default="", help="the broker's CA, for TLS")
    parser.add_argument("--cert-file", default="")
    parser.add_argument("--key-file", default="")


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description=__doc__)
    sub = parser.add_subparsers(dest="command", required=True)
    keygen = sub.add_parser("keygen", help="make an operator key that signs commands")
    keygen.add_argument("-o", "--output", required=True)
    keygen.set_defaults(run=run_keygen)
    ca = sub.add_parser("ca", help="the fleet CA: init, token, operator, broker, boxes")
    ca_actions = ca.add_subparsers(dest="ca_action", required=True)
    for name, summary in (("init", "create the fleet CA"), ("token", "a one-time enrolment token for one box"),
                          ("operator", "a client certificate for an operator's fleet tools"),
                          ("broker", "server certificate, ACL and mosquitto.conf for mutual TLS"),
                          ("verifier", "a client certificate for a network verifier (mipai-chain verify)"),
                          ("boxes", "the boxes this CA enrolled")):  # fmt: skip
        action = ca_actions.add_parser(name, help=summary)
        action.add_argument("--dir", required=True, help="the CA's directory")
        if name == "init":
            action.add_argument("--name", default="MIP.AI fleet CA")
        if name == "token":
            action.add_argument("--hours", type=int, default=24)
        if name == "operator":
            action.add_argument("name", help="fleet-NAME")
        if name == "verifier":
            action.add_argument("name", help="verifier-NAME")
        if name in ("operator", "broker", "verifier"):
            action.add_argument("-o", "--output", required=True, help="directory to write to")
        if name == "broker":
            action.add_argument("--port", type=int, default=8883)
            action.add_argument("--host", action="append", default=None, help="address or name (repeatable)")
            action.add_argument("--user", default="", help="the user Mosquitto runs as; it must read the folder")
        action.set_defaults(run=run_ca)
    dispatch = sub.add_parser("dispatch", help="send a sealed job to one box, or to any idle box that fits")
    dispatch.add_argument("job", help="the .mipjob file")
    target = dispatch.add_mutually_exclusive_group(required=True)
    target.add_argument("--to", help="the box id")
    target.add_argument("--any", action="store_true", help="an online, idle box whose printer and material fit")
    dispatch.add_argument("--material", default="", help="with --any: the material the job needs")
    dispatch.add_argument("--printer", default="", help="with --any: a pattern on the printer's name")
    dispatch.add_argument("--among", default="", help="with --any: the box ids the job is sealed to, comma-separated")
    dispatch.add_argument("--url", default="", help="where the box downloads the job (large jobs)")
    dispatch.add_argument("--sha256", default="", help="with --url: the job file's SHA-256")
    dispatch.add_argument("--key", required=True, help="the operator's secret key file")
    dispatch.add_argument("--timeout", type=int, default=60)
    _broker(dispatch)
    dispatch.set_defaults(run=run_dispatch)
    enroll = sub.add_parser("enroll", help="check a box's enrolment request and issue its certificate")
    enroll.add_argument("request")
    enroll.add_argument("--dir", required=True, help="the CA's directory")
    enroll.add_argument("-o", "--output", required=True)
    enroll.set_defaults(run=run_enroll)
    boxes = sub.add_parser("boxes", help="a table of every box from its retained status")
    _broker(boxes)
    boxes.add_argument("--seconds", type=float, default=2.0, help="how long to gather retained status")
    boxes.add_argument("--verifier", action="append", default=[], metavar="KEY",
                       help="a verifier key (mipai-network:...) whose retained rewards reports fill the earned "
                            "column; repeat for several")  # fmt: skip
    boxes.set_defaults(run=run_boxes)
    watch = sub.add_parser("watch", help="live telemetry, signatures and chain verified, gaps flagged")
    watch.add_argument("box", nargs="?", help="one box id (default: all)")
    _broker(watch)
    watch.add_argument("--seconds", type=float, default=0, help="stop after this long (default: until Ctrl-C)")
    watch.add_argument(
        "--wide",
        action="store_true",
        help="print whole records (default: cut at %d characters, marked …)" % record_text.SHORT_WIDTH,
    )
    watch.set_defaults(run=run_watch)
    cmd = sub.add_parser("cmd", help="sign a command, send it, wait for its result")
    cmd.add_argument("box")
    cmd.add_argument("name", help="job.pause, job.resume, job.cancel, queue.list, config.set, logs.fetch, ...")
    cmd.add_argument("args", nargs="*", help="NAME=VALUE arguments")
    cmd.add_argument("--key", required=True, help="the operator's secret key file")
    cmd.add_argument("--timeout", type=int, default=30)
    _broker(cmd)
    cmd.set_defaults(run=run_cmd)
    edge_command.add_parser(sub)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except (UsageError, CAError) as exc:
        print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
    except SignerKeyError as exc:
        print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
    except OSError as exc:
        print("%s: %s: %s" % (PROGRAM, exc.filename, exc.strerror or exc), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
