"""The bridge's I/O shell on asyncio streams: two readers feed the sans-I/O Bridge, one task writes its output.

MicroPython's asyncio and CPython's both run it; main.py hands in streams made from machine.UARTs, and
firmware_bridge.edge_pty hands in streams on pseudo-terminals.
"""

import asyncio
import time

READ_SIZE = 256  # bytes taken from a UART at a time
TICK_SECONDS = 0.02  # how often the bridge is ticked when nothing arrives


class TicksClock:
    """Seconds since start from time.ticks_ms, unwrapped (ticks wrap after about 12 days on a Pico)."""

    def __init__(self) -> None:
        self._last = time.ticks_ms()
        self._ms = 0

    def __call__(self) -> float:
        now = time.ticks_ms()
        self._ms += time.ticks_diff(now, self._last)
        self._last = now
        return self._ms / 1000


async def _intake(reader, feed, clock, wake) -> None:
    while True:
        data = await reader.read(READ_SIZE)
        if not data:
            raise EOFError("the stream closed")
        feed(data, clock())
        wake.set()


async def _ticker(wake) -> None:
    while True:
        await asyncio.sleep(TICK_SECONDS)
        wake.set()


async def _output(bridge, box_writer, printer_writer, clock, wake) -> None:
    while True:
        await wake.wait()
        wake.clear()
        bridge.tick(clock())
        data = bridge.to_printer()
        if data:
            printer_writer.write(data)
            await printer_writer.drain()
        data = bridge.to_box()
        if data:
            box_writer.write(data)
            await box_writer.drain()


async def serve(bridge, box_reader, box_writer, printer_reader, printer_writer, clock) -> None:
    """Run the bridge until a stream closes (EOFError) or the task is cancelled."""
    wake = asyncio.Event()
    wake.set()  # the link's handshake goes out at once
    await asyncio.gather(
        _intake(box_reader, bridge.box_data, clock, wake),
        _intake(printer_reader, bridge.printer_data, clock, wake),
        _ticker(wake),
        _output(bridge, box_writer, printer_writer, clock, wake),
    )


async def serve_uarts(bridge, box_uart, printer_uart) -> None:
    """The board's entry: streams on two machine.UARTs (made with timeout=0)."""
    box_reader = asyncio.StreamReader(box_uart)
    box_writer = asyncio.StreamWriter(box_uart, {})
    printer_reader = asyncio.StreamReader(printer_uart)
    printer_writer = asyncio.StreamWriter(printer_uart, {})
    await serve(bridge, box_reader, box_writer, printer_reader, printer_writer, TicksClock())
