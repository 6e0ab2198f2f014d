"""`mipai-box run`: start the box daemon."""

import asyncio
import contextlib
import logging
import sys

from box import data_dir
from box.daemon import Daemon
from box.settings import Settings, SettingsError
from firmware_bridge.virtual_printer import VirtualPrinterProcess

PROGRAM = "mipai-box run"


def add_arguments(parser, _common) -> None:
    parser.add_argument("--config", help="settings file (TOML); defaults are used for anything it does not set")
    parser.add_argument("--http-port", type=int, help="port of the web app (default: the settings', 8080)")
    parser.add_argument(
        "--virtual-printer", action="store_true", help="start a virtual printer and use it as the box's printer"
    )


def run(args) -> int:
    try:
        settings = Settings.load(args.config)
    except SettingsError as exc:
        print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
        return 2
    logging.basicConfig(level=logging.INFO, format="%(asctime)s %(name)s: %(message)s", stream=sys.stderr)
    root = data_dir.prepare(args.data_dir)
    with contextlib.ExitStack() as stack:
        values = settings.as_dict()
        values["printer"]["scan"] = list(values["printer"]["scan"])
        if args.http_port is not None:
            values["box"]["http_port"] = args.http_port
        if args.virtual_printer:
            printer = stack.enter_context(VirtualPrinterProcess("--move-time-scale", "0.02"))
            values["printer"]["port"] = printer.path
        try:
            settings = Settings.from_mapping(values, "the command line")
        except SettingsError as exc:
            print("%s: %s" % (PROGRAM, exc), file=sys.stderr)
            return 2
        return asyncio.run(Daemon(root, settings).run())
