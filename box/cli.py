"""`mipai-box`, the box's command line."""

import argparse
import sys

from box import stream_command


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="mipai-box", description="MIP.AI Box")
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    stream = commands.add_parser("stream", help="stream your own plaintext G-code to a printer (diagnostics)")
    stream_command.add_arguments(stream)
    stream.set_defaults(run=stream_command.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    return args.run(args)


if __name__ == "__main__":
    sys.exit(main())
