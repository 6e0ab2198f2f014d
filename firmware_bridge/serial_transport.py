"""The serial port under the printer link: pyserial opens and configures it, reads and writes go to its fd.

Reads go straight to the file descriptor in blocking mode with the terminal's own read timer (VMIN 0,
VTIME 1: return as soon as bytes arrive, or after 0.1 s of silence). That is one system call per read
instead of pyserial's poll-then-read loop, which matters at 15,000 lines a second. pyserial still owns
opening, exclusivity, the baud rate and the rest of termios.
"""

import errno
import os
import select
import termios

import serial

from firmware_bridge.errors import PrinterDisconnected, PrinterPortError

# The terminal's read timer: a read returns after this much silence (tenths of a second).
READ_TICK_DECISECONDS = 1
READ_TICK_SECONDS = READ_TICK_DECISECONDS / 10

# Marlin boards ship at 250000 or 115200; older and smaller boards use the rest.
COMMON_BAUD_RATES = (250000, 115200, 57600, 230400, 500000, 1000000)


class SerialTransport:
    """An open serial port: write(bytes), read(timeout) -> bytes, close()."""

    def __init__(self, port: str, baud: int) -> None:
        self.port = port
        self.baud = baud
        try:
            self._serial = serial.Serial(port=port, baudrate=baud, timeout=0, write_timeout=5, exclusive=True)
        except (serial.SerialException, OSError, ValueError) as exc:
            raise PrinterPortError("cannot open %s: %s" % (port, _reason(exc))) from exc
        # Whatever the printer said before we opened the port (a boot banner) answers nothing of ours.
        self._serial.reset_input_buffer()
        self._fd = self._serial.fileno()
        attributes = termios.tcgetattr(self._fd)
        attributes[6][termios.VMIN] = 0
        attributes[6][termios.VTIME] = READ_TICK_DECISECONDS
        termios.tcsetattr(self._fd, termios.TCSANOW, attributes)
        os.set_blocking(self._fd, True)
        self._poller = select.poll()
        self._poller.register(self._fd, select.POLLIN)

    def read(self) -> bytes:
        """Bytes the printer sent, as soon as any arrive; b"" after READ_TICK_SECONDS of silence."""
        try:
            data = os.read(self._fd, 65536)
        except OSError as exc:
            raise PrinterDisconnected("%s: %s" % (self.port, _reason(exc))) from exc
        if data:
            return data
        # Silence or a hang-up? Only a hang-up shows as an event on an empty port.
        for _fd, flags in self._poller.poll(0):
            if flags & (select.POLLHUP | select.POLLERR | select.POLLNVAL):
                raise PrinterDisconnected("%s: the device hung up" % self.port)
        return b""

    def write(self, data: bytes) -> None:
        view = memoryview(data)
        while view:
            try:
                written = os.write(self._fd, view)
            except OSError as exc:
                raise PrinterDisconnected("%s: %s" % (self.port, _reason(exc))) from exc
            view = view[written:]

    def close(self) -> None:
        try:
            self._serial.close()
        except (serial.SerialException, OSError):
            pass


def _reason(exc: BaseException) -> str:
    if isinstance(exc, OSError) and exc.errno == errno.EIO:
        return "input/output error (device unplugged?)"
    if isinstance(exc, OSError) and exc.strerror:
        return exc.strerror
    return str(exc)
