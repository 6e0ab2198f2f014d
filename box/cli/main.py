"""`mipai-box`, the box's command line: one subcommand a module in this package."""

import argparse
import sys

from box import data_dir
from box.cli import enrol, import_gcode, keys, print_job, queue, run, stream, trust
from provisioning.identity import IdentityError

_COMMANDS = (
    ("run", run, "run the box daemon: web app, and queued jobs printed one by one"),
    ("demo", run, "run the box on a virtual printer with a sealed sample job (what `make run` does)"),
    ("queue", queue, "the daemon's job queue: add, list, pause, resume, cancel"),
    ("keys", keys, "the box's identity: box id and public keys"),
    ("trust", trust, "designer and network keys this box accepts jobs from"),
    ("enrol", enrol, "fleet enrolment: the request for the fleet CA, and the certificate it issued"),
    ("print", print_job, "verify a sealed job, then print it"),
    ("import", import_gcode, "seal your own G-code to this box"),
    ("stream", stream, "stream your own plaintext G-code to a printer (diagnostics)"),
)
# Commands with actions (`keys show`) take the options after the action, so the action carries them.
_NESTED = (keys, trust, queue, enrol)


def build_parser() -> argparse.ArgumentParser:
    # --data-dir is taken before the subcommand and after it (the later one wins). A subcommand's parser writes
    # its defaults over what the main parser read, so neither has a default here: main() fills it in.
    data_dir_help = "where the box keeps its keys, trust list, print counters and spool (default: %s)" % (
        data_dir.default()
    )
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--data-dir", default=None, help=data_dir_help)
    parser = argparse.ArgumentParser(prog="mipai-box", description="MIP.AI Box")
    parser.add_argument("--data-dir", dest="data_dir_first", default=None, metavar="DATA_DIR", help=data_dir_help)
    commands = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    for name, module, summary in _COMMANDS:
        nested = module in _NESTED
        command = commands.add_parser(name, help=summary, parents=[] if nested else [common])
        if name == "demo":
            run.add_demo_arguments(command, common)
            command.set_defaults(run=run.run_demo)
        else:
            module.add_arguments(command, common)
            command.set_defaults(run=module.run)
    return parser


def main(argv=None) -> int:
    args = build_parser().parse_args(argv)
    args.data_dir = args.data_dir or args.data_dir_first or data_dir.default()
    try:
        return args.run(args)
    except IdentityError as exc:
        print("mipai-box: %s" % exc, file=sys.stderr)
        return 2
    except PermissionError as exc:
        print("mipai-box: no permission for %s (is --data-dir yours?)" % exc.filename, file=sys.stderr)
        return 2


if __name__ == "__main__":
    sys.exit(main())
