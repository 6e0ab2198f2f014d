"""The edge bridge's firmware, run by CPython behind a pseudo-terminal: `python -m firmware_bridge.edge_pty`.

The same Bridge and asyncio shell (firmware_bridge.edge.run) that the board runs, with streams on a new
pseudo-terminal toward the box and on the printer's serial port instead of two machine.UARTs. It prints the
box-side port on the first line of standard output and serves until the printer's port goes away or it is
stopped (SIGTERM, SIGINT). `--state-dir` holds the key and boot number as the board's flash does.
"""

import argparse
import asyncio
import os
import signal
import sys
import time
import tty

from firmware_bridge.edge import keystore, run
from firmware_bridge.edge.bridge import Bridge


async def _streams(loop: asyncio.AbstractEventLoop, fd: int) -> tuple:
    """An asyncio reader and writer on one terminal file descriptor."""
    reader = asyncio.StreamReader()
    protocol = asyncio.StreamReaderProtocol(reader)
    await loop.connect_read_pipe(lambda: protocol, os.fdopen(fd, "rb", buffering=0))
    transport, writer_protocol = await loop.connect_write_pipe(
        asyncio.streams.FlowControlMixin, os.fdopen(os.dup(fd), "wb", buffering=0)
    )
    return reader, asyncio.StreamWriter(transport, writer_protocol, None, loop)


async def serve(printer_port: str, state_dir: str, announce=print) -> None:
    """Open both sides, announce the box-side port, and run the bridge until the printer's port closes."""
    master, slave = os.openpty()
    tty.setraw(slave)
    try:
        printer_fd = os.open(printer_port, os.O_RDWR | os.O_NOCTTY)
    except OSError as exc:
        raise SystemExit("cannot open the printer port %s: %s" % (printer_port, exc.strerror)) from exc
    tty.setraw(printer_fd)
    loop = asyncio.get_running_loop()
    box_reader, box_writer = await _streams(loop, master)
    printer_reader, printer_writer = await _streams(loop, printer_fd)
    bridge = Bridge(key=keystore.load_key(state_dir), boot=keystore.next_boot(state_dir))
    announce(os.ttyname(slave))
    try:
        await run.serve(bridge, box_reader, box_writer, printer_reader, printer_writer, time.monotonic)
    except (EOFError, OSError):
        pass  # the printer's port went away: as a board whose UART went quiet, nothing more to do
    finally:
        os.close(slave)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(prog="python -m firmware_bridge.edge_pty", description=__doc__.split("\n")[0])
    parser.add_argument("--printer", required=True, help="the printer's serial port")
    parser.add_argument("--state-dir", required=True, help="where the key and boot number live")
    args = parser.parse_args(argv)
    os.makedirs(args.state_dir, exist_ok=True)
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(0))
    try:
        asyncio.run(serve(args.printer, args.state_dir, lambda path: print(path, flush=True)))
    except KeyboardInterrupt:
        pass
    return 0


if __name__ == "__main__":
    sys.exit(main())
