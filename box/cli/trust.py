"""`mipai-box trust add|list|remove|revoke`: the designer and network keys this box accepts jobs from."""

import sys

from box import data_dir
from secure_print.trust import TrustStore, TrustStoreError
from wire.keytext import KeyTextError

PROGRAM = "mipai-box trust"


def add_arguments(parser, common) -> None:
    actions = parser.add_subparsers(dest="action", required=True, metavar="ACTION")
    add = actions.add_parser(
        "add", parents=[common], help="trust a designer key, or a network key that certifies designers"
    )
    add.add_argument("key", help="mipai-designer:... or mipai-network:...")
    add.add_argument("--name", default="", help="a note to recognise the key by")
    actions.add_parser("list", parents=[common], help="list trusted and revoked keys")
    remove = actions.add_parser("remove", parents=[common], help="stop trusting a key")
    remove.add_argument("key")
    revoke = actions.add_parser(
        "revoke", parents=[common], help="refuse a key from now on, even when a network certifies it"
    )
    revoke.add_argument("key")


def run(args) -> int:
    try:
        store = TrustStore(data_dir.trust_file(data_dir.prepare(args.data_dir)))
        if args.action == "add":
            print("trusted %s" % store.add(args.key, args.name))
        elif args.action == "remove":
            store.remove(args.key)
            print("no longer trusted")
        elif args.action == "revoke":
            store.revoke(args.key)
            print("revoked")
        else:
            for entry in store.entries:
                print("trusted  %s  %s" % (entry["key"], entry["name"]))
            for key in store.revoked:
                print("revoked  %s" % key)
            if not store.entries and not store.revoked:
                print("no keys are trusted yet: `mipai-box trust add KEY`")
    except (KeyTextError, TrustStoreError) as exc:
        print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
        return 2
    return 0
