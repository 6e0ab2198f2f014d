"""`mipai-fleet edge pair PORT`: write a fresh key to an edge bridge over USB, once, and keep the network's copy."""

import argparse
import sys

from firmware_bridge.edge_pairing import PairingError, SerialRepl, pair, record_key


def add_parser(sub) -> None:
    """Register `edge` and its actions on mipai-fleet's subcommands."""
    edge = sub.add_parser("edge", help="edge bridges: pair one with the network")
    actions = edge.add_subparsers(dest="edge_action", required=True)
    pairing = actions.add_parser("pair", help="write a new key to the bridge on PORT (its USB serial REPL), once")
    pairing.add_argument("port", help="the bridge's USB serial port, e.g. /dev/ttyACM0")
    pairing.add_argument("--keys", required=True, help="the network's file of bridge keys (created 0600)")
    pairing.set_defaults(run=run_pair)


def run_pair(args: argparse.Namespace, session_factory=SerialRepl) -> int:
    try:
        session = session_factory(args.port)
        try:
            bridge_id, key = pair(session)
        finally:
            session.close()
        record_key(args.keys, bridge_id, key)
    except PairingError as exc:
        print("mipai-fleet edge pair: %s" % exc, file=sys.stderr)
        return 2
    print("bridge %s paired; its key is in %s (the verifier's copy; the board never shows it)" % (bridge_id, args.keys))
    return 0
