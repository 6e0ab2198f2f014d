"""The board's entry point: make the two UARTs and hand them to the bridge. Nothing else here touches hardware.

Pins are a Pico's (UART0 on GP0/GP1 to the box, UART1 on GP4/GP5 to the printer); change BOX and PRINTER for
another board (an ESP32 has UART1 and UART2 on any pins).
"""

import asyncio
import sys

import machine
from machine import UART, Pin

from firmware_bridge.edge import keystore, run
from firmware_bridge.edge.bridge import Bridge

BOX = (0, 0, 1)  # UART id, TX pin, RX pin
PRINTER = (1, 4, 5)
BOX_BAUD = 250000
PRINTER_BAUD = 250000
RX_BUFFER = 1024


def _uart(spec, baud: int) -> UART:
    number, tx, rx = spec
    return UART(number, baudrate=baud, tx=Pin(tx), rx=Pin(rx), rxbuf=RX_BUFFER, txbuf=RX_BUFFER, timeout=0)


def main() -> None:
    try:
        bridge = Bridge(key=keystore.load_key(), boot=keystore.next_boot())
        asyncio.run(run.serve_uarts(bridge, _uart(BOX, BOX_BAUD), _uart(PRINTER, PRINTER_BAUD)))
    except KeyboardInterrupt:
        raise  # Ctrl-C on the USB REPL (pairing, deploying) stops the firmware on purpose
    except Exception as error:  # anything else (a MemoryError in a fragmented heap): start afresh
        sys.print_exception(error)  # on the USB console, for whoever debugs the board
        machine.reset()  # BOOT goes up: the verifier sees the restart in the next attestation


main()
