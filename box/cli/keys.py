"""`mipai-box keys show`: the box id and the public keys a designer needs to seal jobs for this box."""

from box import data_dir
from provisioning import device_names, identity


def add_arguments(parser, common) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    actions.add_parser("show", parents=[common], help="print the box id and public keys (creating them on first start)")


def run(args) -> int:
    box = identity.load_or_create(data_dir.prepare(args.data_dir))
    print("box id:          %s" % box.box_id)
    print("seal jobs to:    %s" % box.recipient)
    print("ed25519 public:  %s" % box.signing_public.hex())
    print("x25519 public:   %s" % box.sealing_public.hex())
    print("device name:     %s" % device_names.device_name(box.box_id))
    # For the label on the box: what the owner types to join the setup hotspot when the box has no network.
    password = device_names.hotspot_password(box.signing.private_bytes_raw())
    print("setup hotspot:   %s, password %s" % (device_names.hotspot_ssid(box.box_id), password))
    return 0
