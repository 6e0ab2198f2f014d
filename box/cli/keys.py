"""`mipai-box keys show`: the box id and the public keys a designer needs to seal jobs for this box, and its
chain identity: the EVM address and the signed statement binding it to the box's key (for the network's
`mipai-chain boxes add --binding FILE`)."""

import time

from box import data_dir
from provisioning import device_names, identity
from wire import canonical


def add_arguments(parser, common) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    show = actions.add_parser("show", parents=[common],
                              help="print the box id and public keys (creating them on first start)")  # fmt: skip
    show.add_argument("--binding", metavar="FILE",
                      help="also write the signed address binding to FILE (for boxes add --binding)")  # fmt: skip


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
    binding = canonical.encode(box.address_binding(int(time.time()))).decode()
    print("evm address:     %s" % box.evm_address)
    print("address binding: %s" % binding)
    if args.binding:
        with open(args.binding, "w") as handle:
            handle.write(binding + "\n")
        print("binding file:    %s" % args.binding)
    return 0
