"""`mipai-box enrol request | install`: the box's side of fleet enrolment. `request` writes a certificate signing
request made from the box's own key, with the one-time enrolment token and the claim code; `install` checks the
certificate the fleet CA issued (for this key and box id, from that CA) and keeps it for the fleet agent's mutual
TLS (`[fleet] tls = true`)."""

import sys

from box import data_dir
from box.fleet_link import enrolment_steps
from provisioning import enrolment, identity


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
        token = args.token if args.token is not None else enrolment_steps.stored_token(root)
        if token is None:
            return _fail("no enrolment token: pass --token, or put it in the first-boot file ([fleet])")
        try:
            pem = enrolment_steps.request(root, box, token)
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
            certificate = handle.read(enrolment_steps.MAX_PEM_BYTES + 1)
        with open(args.ca, "rb") as handle:
            ca = handle.read(enrolment_steps.MAX_PEM_BYTES + 1)
    except OSError as exc:
        return _fail("%s: %s" % (exc.filename, exc.strerror))
    try:
        enrolment_steps.install(root, box, certificate, ca)
    except enrolment.EnrolmentError as exc:
        return _fail("%s; nothing was installed" % exc)
    print("enrolled: box %s has its fleet certificate; set [fleet] tls = true and broker_host" % box.box_id)
    return 0
