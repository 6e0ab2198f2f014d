"""Under MicroPython: the board's asyncio shell (edge.run.serve, with its ticks clock) on real streams.

Loopback TCP connections stand in for the two UARTs (the unix port has no machine.UART): the bridge's printer
side connects to a scripted printer, and the box, a real HostLink, connects to the bridge and prints a job, then
asks for an attestation. micropython tests/edge/mp_asyncio.py LINES
Run as a script it prints "ASYNC outcome=<o> lines=<n> executed=<n> digest=<ok|bad>" and "END <attestation>";
tests/micropython_runner.py runs its test function (make edge-check, on the compiled firmware).
"""

import asyncio
import sys
import time

from firmware_bridge import marlin
from firmware_bridge.edge import run
from firmware_bridge.edge.bridge import Bridge
from tests.edge.harness import KEY, ScriptedPrinter, hand_over_lines, job, job_digest

HOST = "127.0.0.1"


def no_delay(writer) -> None:
    """Loopback TCP stands in for a UART, which has no Nagle delay: send each write at once."""
    writer.s.setsockopt(6, 1, 1)  # IPPROTO_TCP, TCP_NODELAY (Linux's numbers; the unix port names neither)


async def _ticker(wake) -> None:
    while True:
        await asyncio.sleep(0.02)
        wake.set()


async def _intake(reader, feed, wake) -> None:
    while True:
        data = await reader.read(256)
        if not data:
            return
        feed(data)
        wake.set()


async def printer_peer(reader, writer, clock, faults: bool) -> None:
    no_delay(writer)
    printer = ScriptedPrinter()
    if faults:
        printer.corrupt = [7, 30]
        printer.busy = {12: 0.3}
    PEERS["printer"] = printer
    wake = asyncio.Event()
    tasks = [asyncio.create_task(_intake(reader, lambda data: printer.receive(data, clock()), wake)),
             asyncio.create_task(_ticker(wake))]  # fmt: skip
    PEERS["tasks"] = tasks
    while True:
        printer.tick(clock())
        out = printer.output()
        if out:
            writer.write(out)
            await writer.drain()
        await wake.wait()
        wake.clear()


async def box_peer(port: int, count: int, clock) -> tuple:
    """The box's HostLink on a stream to the bridge: print job(count), then ask for an attestation."""
    reader, writer = await asyncio.open_connection(HOST, port)
    no_delay(writer)
    link = marlin.HostLink(history_lines=64)
    commands = iter(enumerate(job(count), 1))
    found = {"ended": None, "attestation": None}

    def handle(events) -> None:
        for event in events:
            if isinstance(event, marlin.JobEnded):
                found["ended"] = event
                link.send_command("M7770 C" + "5a" * 16)
            elif isinstance(event, marlin.PrinterMessage) and event.text.startswith("MIPAI_ATTEST:"):
                found["attestation"] = event.text

    wake = asyncio.Event()
    tasks = [asyncio.create_task(_intake(reader, lambda data: handle(link.receive_data(data, clock())), wake)),
             asyncio.create_task(_ticker(wake))]  # fmt: skip
    started = False
    while found["attestation"] is None:
        handle(link.tick(clock()))
        if link.state == marlin.READY and not started:
            started = True
            link.start_job()
        if link.state == marlin.PRINTING:
            handle(hand_over_lines(link, commands))
        out = link.data_to_send()
        if out:
            writer.write(out)
            await writer.drain()
            continue
        await wake.wait()
        wake.clear()
    for task in tasks + PEERS["tasks"]:
        task.cancel()
    writer.close()
    return found["ended"], found["attestation"]


PEERS = {}


async def main(count: int, printer_port: int, box_port: int, faults: bool) -> tuple:
    clock = run.TicksClock()
    printer_server = await asyncio.start_server(lambda r, w: printer_peer(r, w, clock, faults), HOST, printer_port)
    printer_reader, printer_writer = await asyncio.open_connection(HOST, printer_port)
    no_delay(printer_writer)
    bridge = Bridge(key=KEY, boot=2)

    async def serve_box(box_reader, box_writer) -> None:
        no_delay(box_writer)
        try:
            await run.serve(bridge, box_reader, box_writer, printer_reader, printer_writer, clock)
        except EOFError:
            pass

    box_server = await asyncio.start_server(serve_box, HOST, box_port)
    ended, attestation = await box_peer(box_port, count, clock)
    box_server.close()
    printer_server.close()
    return ended, attestation, bridge


def run_job(count: int, faults: bool = True) -> tuple:
    """Print job(count) through the shell; with `faults`, the printer garbles two lines and is busy on one."""
    base = 20000 + time.ticks_ms() % 20000 * 2  # two loopback ports, apart from other runs
    return asyncio.run(main(count, base, base + 1, faults))


def test_the_asyncio_shell_forwards_a_job_and_attests_it():
    ended, attestation, bridge = run_job(300)
    printer = PEERS["printer"]
    assert ended.outcome == marlin.DONE and ended.lines_acknowledged == 300
    assert printer.executed == 300 and printer.digest.digest() == job_digest(300)
    assert bridge.link.progress().resends == 2  # the printer's two noisy lines, repaired behind the bridge
    assert attestation.startswith("MIPAI_ATTEST:1 ") and " LINES:300 " in attestation


if __name__ == "__main__":
    count = int(sys.argv[1]) if len(sys.argv) > 1 else 500
    ended, attestation, bridge = run_job(count)
    printer = PEERS["printer"]
    digest = "ok" if printer.digest.digest() == job_digest(count) else "bad"
    print("ASYNC outcome=%s lines=%d executed=%d digest=%s" % (ended.outcome, ended.lines_acknowledged,
          printer.executed, digest))  # fmt: skip
    print("END " + attestation)
