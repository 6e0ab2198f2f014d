"""Why talking to a printer failed, by who is to blame. It runs under CPython and MicroPython alike.

A printer that misbehaves in the middle of a job (bad checksums, resends it cannot be given, silence, a halt)
is not an exception: the link reports it as events (`LinkFailed`, `PrinterHalted`) and ends the job safely.
"""


class FirmwareBridgeError(Exception):
    """Every error of this package."""


class PrinterUnavailable(FirmwareBridgeError):
    """There is no usable printer at the port: look at the cable, the port name and the printer's power."""


class PrinterPortError(PrinterUnavailable):
    """The serial port cannot be opened (missing, busy, no permission)."""


class NotAPrinterError(PrinterUnavailable):
    """Nothing on the port answered M115 like a Marlin-family printer at any baud rate tried."""


class PrinterDisconnected(FirmwareBridgeError):
    """The serial port went away while in use (USB unplugged, printer powered off)."""


class LocalProtocolError(FirmwareBridgeError):
    """Our own code used the link wrongly (a bug on this side, not the printer's)."""


class GcodeError(FirmwareBridgeError):
    """A G-code source line cannot be sent to a printer (the file's fault); `line_number` is 1-based.

    (Not also a ValueError: MicroPython allows one built-in base only.)"""

    def __init__(self, line_number: int, problem: str) -> None:
        super().__init__("line %d: %s" % (line_number, problem))
        self.line_number = line_number
        self.problem = problem
