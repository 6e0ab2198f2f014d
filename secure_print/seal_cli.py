"""`mipai-seal`, the designer's command line: keys, certificates, sealing, inspecting and tracing jobs."""

import argparse
import datetime
import os
import sys

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from console.progress_bar import ProgressBar
from firmware_bridge import gcode
from secure_print import certificate, job_format, opener, seal, watermark
from secure_print.errors import PolicyError, SealedJobError
from secure_print.gcode_policy import LineChecker
from secure_print.license import DEFAULT_FORBIDDEN, PRINTER_FIELDS, GcodePolicy, License, normalise_mcode
from secure_print.signer_key import SignerKey, SignerKeyError, write_secret_file
from wire import keytext
from wire.keytext import KeyTextError

PROGRAM = "mipai-seal"


class UsageError(Exception):
    """A bad option or file; the message says what to change."""


def default_key_path(kind: str = "designer") -> str:
    base = os.environ.get("XDG_CONFIG_HOME") or os.path.join(os.path.expanduser("~"), ".config")
    return os.path.join(base, "mipai-seal", "%s.key" % kind)


def parse_date(text: str, end_of_day: bool) -> int:
    """YYYY-MM-DD (UTC; the end of that day when `end_of_day`) or an ISO 8601 time with its zone -> Unix seconds."""
    try:
        if len(text) == 10:
            day = datetime.datetime.strptime(text, "%Y-%m-%d").replace(tzinfo=datetime.UTC)
            return int((day + datetime.timedelta(days=1 if end_of_day else 0)).timestamp())
        moment = datetime.datetime.fromisoformat(text)
    except ValueError:
        raise UsageError("%r is not a date: use YYYY-MM-DD or 2027-01-31T18:00:00+00:00" % text) from None
    if moment.tzinfo is None:
        raise UsageError("%r has no time zone: add Z or +HH:MM" % text)
    return int(moment.timestamp())


def parse_printer(text: str) -> dict:
    """'Prusa MK4*' (a MACHINE_TYPE pattern) or 'MACHINE_TYPE=Prusa*&FIRMWARE_NAME=Marlin*'."""
    entry = {}
    for part in text.split("&"):
        field, equals, pattern = part.partition("=")
        if not equals:
            field, pattern = "MACHINE_TYPE", part
        field = field.strip().upper()
        if field not in PRINTER_FIELDS or not pattern:
            raise UsageError("--printer %r: use PATTERN or FIELD=PATTERN with FIELD one of %s" % (text, PRINTER_FIELDS))
        entry[field] = pattern
    return entry


def _load_key(path: str, kind: str) -> SignerKey:
    try:
        key = SignerKey.load(path)
    except SignerKeyError as exc:
        raise UsageError("%s (make one with `mipai-seal keygen`)" % exc) from exc
    if key.kind != kind:
        raise UsageError("%s is a %s key; a %s key is needed here" % (path, key.kind, kind))
    return key


def cmd_keygen(args) -> int:
    kind = keytext.NETWORK if args.network else keytext.DESIGNER
    path = args.output or default_key_path("network" if args.network else "designer")
    if os.path.exists(path):
        raise UsageError("%s exists; a key is never overwritten (choose another path with -o)" % path)
    os.makedirs(os.path.dirname(os.path.abspath(path)), mode=0o700, exist_ok=True)
    key = SignerKey.generate(kind)
    write_secret_file(path, key.to_text().encode())
    print("secret key written to %s (keep it safe, readable only by you)" % path, file=sys.stderr)
    print(key.public_text)
    return 0


def cmd_certify(args) -> int:
    network = _load_key(args.key or default_key_path("network"), keytext.NETWORK)
    try:
        _, designer = keytext.decode(args.designer, keytext.DESIGNER)
    except KeyTextError as exc:
        raise UsageError(str(exc)) from exc
    not_before = parse_date(args.not_before, False) if args.not_before else int(datetime.datetime.now().timestamp())
    try:
        issued = certificate.issue(network.signing, designer, args.name, not_before, parse_date(args.expires, True))
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    with open(args.output, "xb") as out:
        out.write(issued.to_bytes())
    print("certificate for %r written to %s" % (args.name, args.output), file=sys.stderr)
    return 0


def _policy(args) -> GcodePolicy:
    try:
        forbidden = {normalise_mcode(code) for code in DEFAULT_FORBIDDEN}
        forbidden |= {normalise_mcode(code) for code in args.forbid}
        forbidden -= {normalise_mcode(code) for code in args.allow}
    except ValueError as exc:
        raise UsageError(str(exc)) from exc
    limits = (("--max-hotend", args.max_hotend), ("--max-bed", args.max_bed), ("--max-chamber", args.max_chamber))
    for name, value in limits:
        if not 0 <= value <= 500:
            raise UsageError("%s must be between 0 and 500 °C" % name)
    return GcodePolicy(args.max_hotend, args.max_bed, sorted(forbidden), args.max_chamber)


def _check_policy(path: str, policy: GcodePolicy, force: bool) -> None:
    """Refuse G-code that the boxes would refuse, naming the line, before anything is sealed (`--force`: warn)."""
    checker = LineChecker(policy)
    try:
        with open(path, "rb") as source:
            while block := source.read(1 << 20):
                checker.feed(block)
            checker.finish()
    except PolicyError as exc:
        if not force:
            raise UsageError("%s: %s. Boxes refuse such a job; change the G-code or the policy options, or seal "
                             "it anyway with --force" % (path, exc)) from None  # fmt: skip
        print("mipai-seal: warning: %s: %s; sealed anyway (--force): boxes will refuse it" % (path, exc),
              file=sys.stderr)  # fmt: skip


def cmd_seal(args) -> int:
    designer = _load_key(args.key or default_key_path("designer"), keytext.DESIGNER)
    boxes = []
    for text in args.to:
        try:
            _, raw = keytext.decode(text, keytext.BOX)
        except KeyTextError as exc:
            raise UsageError("--to: %s (the box prints it with `mipai-box keys show`)" % exc) from exc
        boxes.append((keytext.box_id(raw[:32]), raw[32:]))
    if len(boxes) > job_format.MAX_RECIPIENTS - 1:
        raise UsageError("one job can name at most %d boxes" % (job_format.MAX_RECIPIENTS - 1))
    if args.max_prints == "unlimited":
        max_prints = None
    elif args.max_prints.isdigit() and 1 <= int(args.max_prints) <= 1_000_000:
        max_prints = int(args.max_prints)
    else:
        raise UsageError("--max-prints must be a number from 1 to 1000000, or unlimited")
    materials = [m.strip().upper() for group in args.material for m in group.split(",") if m.strip()]
    not_before = parse_date(args.not_before, False) if args.not_before else int(datetime.datetime.now().timestamp())
    cert = b""
    if args.cert:
        with open(args.cert, "rb") as handle:
            cert = handle.read(job_format.MAX_CERTIFICATE_BYTES + 1)
    job_id, license_id, seed = seal.new_ids()
    terms = License(
        license_id=license_id,
        job_id=job_id,
        designer=designer.public_text,
        boxes=[box_id for box_id, _ in boxes],
        max_prints=max_prints,
        not_before=not_before,
        not_after=parse_date(args.expires, True),
        watermark_seed=seed,
        printers=[parse_printer(text) for text in args.printer],
        materials=materials,
        policy=_policy(args),
        title=args.title or os.path.basename(args.gcode),
    )
    try:
        terms.encode()
    except SealedJobError as exc:
        raise UsageError(str(exc).replace("the license inside the job is malformed: ", "")) from exc
    output = args.output or os.path.splitext(args.gcode)[0] + ".mipjob"
    if os.path.exists(output):
        raise UsageError("%s exists; choose another name with -o" % output)
    _check_policy(args.gcode, terms.policy, args.force)
    size = os.stat(args.gcode).st_size
    bar = ProgressBar(size, "sealing", unit="bytes")
    try:
        with open(args.gcode, "rb") as source, open(output + ".partial", "wb") as out:
            seal.seal(
                source, out, designer, [key for _, key in boxes], terms, certificate=cert, level=args.level,
                on_progress=bar.update,
            )  # fmt: skip
    except BaseException:
        if os.path.exists(output + ".partial"):
            os.unlink(output + ".partial")
        raise
    finally:
        bar.close()
    os.replace(output + ".partial", output)
    print(
        "sealed %s for %s: job %s, license %s" % (args.gcode, ", ".join(b for b, _ in boxes), job_id, license_id),
        file=sys.stderr,
    )
    print(output)
    return 0


def _opening_key(args):
    if args.box_key:
        with open(args.box_key, "rb") as handle:
            raw = handle.read(33)
        if len(raw) != 32:
            raise UsageError("%s is not a box's X25519 key file" % args.box_key)
        return X25519PrivateKey.from_private_bytes(raw)
    path = args.key or default_key_path("designer")
    if args.key or os.path.exists(path):
        return _load_key(path, keytext.DESIGNER).decrypting
    return None


def cmd_inspect(args) -> int:
    with open(args.job, "rb") as handle:
        header, _signature, offset, size = opener.read_header(handle)
    print("job id:            %s" % header.job_id.hex())
    print("designer:          %s" % keytext.encode(keytext.DESIGNER, header.designer_key))
    if header.certificate:
        cert = certificate.parse(header.certificate)
        print("certified by:      %s as %r" % (keytext.encode(keytext.NETWORK, cert.network_key), cert.name))
    print("suite:             %d" % header.suite)
    print("recipients:        %d" % len(header.stanzas))
    print("G-code:            %d bytes, %d compressed, %d chunks" % (
        header.gcode_length, header.compressed_length, header.chunk_count))  # fmt: skip
    print("file:              %d bytes (%s)" % (
        size, "complete" if size == offset + header.payload_length else "WRONG LENGTH"))  # fmt: skip
    key = _opening_key(args)
    if key is None:
        print("(license terms are encrypted: give --key DESIGNER.key or --box-key FILE to read them)")
        return 0
    _, terms = opener.unseal(header, key, "this key cannot open the job")
    for name, value in sorted(terms.to_json().items()):
        if name != "watermark_seed":
            print("%-18s %s" % (name + ":", value))
    return 0


def cmd_trace(args) -> int:
    designer = _load_key(args.key or default_key_path("designer"), keytext.DESIGNER)
    with open(args.job, "rb") as handle:
        header = opener.read_header(handle)[0]
    _, terms = opener.unseal(header, designer.decrypting, "this designer key did not seal the job")
    try:
        with open(args.captured, "rb") as handle:
            values = watermark.observed_moves(command for _, command in gcode.iter_commands(handle))
    except gcode.GcodeError as exc:
        raise UsageError("%s: %s" % (args.captured, exc)) from exc
    prints = min(terms.max_prints or watermark.MAX_TRACE_CANDIDATES, watermark.MAX_TRACE_CANDIDATES)
    candidates = len(terms.boxes) * prints
    print("%d eligible moves read; trying %d boxes x %d prints" % (len(values), len(terms.boxes), prints),
          file=sys.stderr)  # fmt: skip
    seed = bytes.fromhex(terms.watermark_seed)
    best = None
    for box_id in terms.boxes:
        for number in range(1, prints + 1):
            # A quick look at the first moves rules out nearly every wrong candidate.
            selected, matching = watermark.score(values[: watermark.QUICK_LOOK_MOVES], seed, box_id, number)
            if watermark.matches(selected, matching) and len(values) > watermark.QUICK_LOOK_MOVES:
                selected, matching = watermark.score(values, seed, box_id, number)
            share = matching / selected if selected else 0.0
            if best is None or share > best[0]:
                best = (share, box_id, number, selected, matching)
            if watermark.matches(selected, matching):
                chance = min(1.0, watermark.false_match_chance(selected) * candidates)
                print("box %s, print %d: %d of %d marked moves carry its marks" % (box_id, number, matching, selected))
                print("chance that an unrelated copy matches this well: %.1e" % chance)
                return 0
    if best is None or best[3] < watermark.MIN_SELECTED:
        print("too few marked moves in the capture to decide (%d; %d needed)"
              % (best[3] if best else 0, watermark.MIN_SELECTED))  # fmt: skip
    else:
        print("no print of this job matches (best: box %s, print %d, %d of %d)" % best[1:])
    return 1


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog=PROGRAM, description="Seal G-code for MIP.AI boxes, and trace leaks.")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    keygen = commands.add_parser("keygen", help="make a designer key (or a network key with --network)")
    keygen.add_argument("-o", "--output", help="secret key file (default: %s)" % default_key_path())
    keygen.add_argument("--network", action="store_true", help="a network key, which certifies designers")
    keygen.set_defaults(run=cmd_keygen)

    certify = commands.add_parser("certify", help="(network) certify a designer key")
    certify.add_argument("designer", help="the designer's mipai-designer:... key")
    certify.add_argument("--name", required=True, help="the designer's name")
    certify.add_argument("--expires", required=True, help="last day of validity, YYYY-MM-DD")
    certify.add_argument("--not-before", help="first day of validity (default: now)")
    certify.add_argument("--key", help="network secret key (default: %s)" % default_key_path("network"))
    certify.add_argument("-o", "--output", required=True, help="certificate file to write")
    certify.set_defaults(run=cmd_certify)

    sealer = commands.add_parser("seal", help="seal a G-code file for one or more boxes")
    sealer.add_argument("gcode")
    sealer.add_argument("--to", action="append", required=True, help="a box's mipai-box:... key (repeatable)")
    sealer.add_argument("--key", help="designer secret key (default: %s)" % default_key_path())
    sealer.add_argument("--max-prints", required=True, help="prints allowed on each box, or 'unlimited'")
    sealer.add_argument("--expires", required=True, help="last day the job may start, YYYY-MM-DD")
    sealer.add_argument("--not-before", help="first day the job may start (default: now)")
    sealer.add_argument("--printer", action="append", default=[], help="allowed printer: PATTERN or FIELD=PATTERN")
    sealer.add_argument("--material", action="append", default=[], help="allowed materials, e.g. PLA,PETG")
    sealer.add_argument("--max-hotend", type=int, default=GcodePolicy().max_hotend_c, help="°C (default %(default)s)")
    sealer.add_argument("--max-bed", type=int, default=GcodePolicy().max_bed_c, help="°C (default %(default)s)")
    sealer.add_argument("--max-chamber", type=int, default=GcodePolicy().max_chamber_c, help="°C (default %(default)s)")
    sealer.add_argument(
        "--force", action="store_true", help="seal even G-code that breaks the policy (boxes will refuse it)"
    )
    sealer.add_argument("--forbid", action="append", default=[], help="also forbid this M-code")
    sealer.add_argument("--allow", action="append", default=[], help="allow an M-code forbidden by default")
    sealer.add_argument("--cert", help="the designer certificate from a network")
    sealer.add_argument("--title", help="name shown on the box (default: the file name)")
    sealer.add_argument("--level", type=int, default=seal.DEFAULT_LEVEL, choices=range(1, 20), metavar="1..19",
                        help="Zstandard level (default %(default)s)")  # fmt: skip
    sealer.add_argument("-o", "--output", help="job file (default: GCODE with .mipjob)")
    sealer.set_defaults(run=cmd_seal)

    inspect = commands.add_parser("inspect", help="show a job's public header, and its terms with a key")
    inspect.add_argument("job")
    inspect.add_argument("--key", help="designer secret key that sealed it")
    inspect.add_argument("--box-key", help="a box's box_x25519.key file")
    inspect.set_defaults(run=cmd_inspect)

    trace = commands.add_parser("trace", help="find which box and print a leaked copy of a job came from")
    trace.add_argument("captured", help="the leaked G-code, e.g. captured from a printer's USB line")
    trace.add_argument("--job", required=True, help="the sealed job it came from")
    trace.add_argument("--key", help="designer secret key that sealed the job")
    trace.set_defaults(run=cmd_trace)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    try:
        return args.run(args)
    except UsageError as exc:
        print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
    except (SealedJobError, SignerKeyError) as exc:
        print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
    except OSError as exc:
        print("%s: %s: %s" % (PROGRAM, exc.filename, exc.strerror or exc), file=sys.stderr)
    return 2


if __name__ == "__main__":
    sys.exit(main())
