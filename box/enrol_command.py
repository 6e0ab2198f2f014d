"""`mipai-box enrol request | install`: the box's side of fleet enrolment. `request` writes a certificate signing
request made from the box's own key, with the one-time enrolment token and the claim code; `install` checks the
certificate the fleet CA issued (for this key and box id, from that CA) and keeps it for the fleet agent's mutual
TLS (`[fleet] tls = true`)."""

import os
import sys
import time

from box import data_dir
from provisioning import enrolment, identity
from provisioning.claim_code import ClaimCodes
from secure_print.signer_key import write_secret_file

TOKEN_FILE = "enrolment_token"  # where the first-boot file leaves the token


def add_arguments(parser, common) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    request = actions.add_parser("request", parents=[common], help="write the enrolment request for the fleet CA")
    request.add_argument("--token", help="the one-time enrolment token (default: the one from the first-boot file)")
    request.add_argument("-o", "--output", help="file to write (default: standard output)")
    install = actions.add_parser("install", parents=[common], help="install the certificate the fleet CA issued")
    install.add_argument("certificate")
    install.add_argument("--ca", required=True, help="the fleet CA's certificate")


def _fail(message: str) -> int:
    print("mipai-box enrol: %s" % message, file=sys.stderr)
    return 2


def run(args) -> int:
    root = data_dir.prepare(args.data_dir)
    box = identity.load_or_create(root)
    if args.action == "request":
        token = args.token
        if token is None:
            try:
                with open(os.path.join(root, TOKEN_FILE)) as handle:
                    token = handle.read().strip()
            except FileNotFoundError:
                return _fail("no enrolment token: pass --token, or put it in the first-boot file ([fleet])")
        code, _expires = ClaimCodes(os.path.join(root, "claim_code.json")).current(time.time())
        try:
            pem = enrolment.make_request(box, token, code)
        except enrolment.EnrolmentError as exc:
            return _fail(str(exc))
        if args.output:
            with open(args.output, "wb") as handle:
                handle.write(pem)
            print("enrolment request for box %s written to %s" % (box.box_id, args.output))
        else:
            sys.stdout.write(pem.decode())
        return 0
    try:
        with open(args.certificate, "rb") as handle:
            certificate = handle.read(64 * 1024)
        with open(args.ca, "rb") as handle:
            ca = handle.read(64 * 1024)
    except OSError as exc:
        return _fail("%s: %s" % (exc.filename, exc.strerror))
    try:
        enrolment.check_certificate(box, certificate, ca)
    except enrolment.EnrolmentError as exc:
        return _fail("%s; nothing was installed" % exc)
    files = data_dir.fleet_tls_files(root)
    os.makedirs(os.path.dirname(files["box.crt"]), mode=0o700, exist_ok=True)
    for name, data in (("ca.crt", ca), ("box.crt", certificate)):
        with open(files[name] + ".new", "wb") as handle:
            handle.write(data)
        os.replace(files[name] + ".new", files[name])
    if os.path.exists(files["box.key"]):
        os.unlink(files["box.key"])
    write_secret_file(files["box.key"], enrolment.private_key_pem_of(box.signing))
    token = os.path.join(root, TOKEN_FILE)
    if os.path.exists(token):
        os.unlink(token)  # spent
    print("enrolled: box %s has its fleet certificate; set [fleet] tls = true and broker_host" % box.box_id)
    return 0
