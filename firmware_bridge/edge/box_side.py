"""The bridge's side toward the box: Marlin's serial command intake (numbered, checksummed lines in; errors and
Resend: out), sans-I/O. See docs/edge-firmware.md, "Toward the box"."""

from firmware_bridge.gcode import checksum

# Marlin's MAX_CMD_SIZE is 96 with framing; RX_BUFFER_SIZE is what a board's UART keeps unparsed.
MAX_LINE_BYTES = 96
RX_BYTES = 256

_LINE_NUMBER = "Line Number is not Last Line Number+1, Last Line: "
_NO_CHECKSUM = "No Checksum with line number, Last Line: "
_CHECKSUM = "checksum mismatch, Last Line: "
_TOO_LONG = "Line too long, Last Line: "


class BoxSide:
    """Parses what the box sends into commands; writes Marlin's error replies to `out` itself."""

    def __init__(self, rx_bytes: int = RX_BYTES, max_line_bytes: int = MAX_LINE_BYTES) -> None:
        self.last_line = 0
        self.out = bytearray()
        self.rx_overflows = 0
        self.emergency = False  # an M112 arrived; the bridge acts on it before anything queued
        self._rx = b""
        self._rx_bytes = rx_bytes
        self._max_line = max_line_bytes

    def receive(self, data: bytes) -> None:
        """Take bytes from the box; what does not fit the receive buffer is lost, as on a real UART."""
        if b"M112" in data or (self._rx and b"M112" in self._rx[-3:] + data):
            self.emergency = True
        room = self._rx_bytes - len(self._rx)
        if len(data) > room:
            self.rx_overflows += 1
            data = data[: max(room, 0)]
        self._rx = self._rx + data if self._rx else data

    def reset(self) -> None:
        """The printer behind us restarted: forget line numbers and unparsed input, as a rebooted board would."""
        self.last_line = 0
        self._rx = b""

    def reply(self, text: str) -> None:
        self.out += text.encode()
        self.out += b"\n"

    def next_command(self):
        """The next accepted command, or None when no complete good line is buffered."""
        while True:
            newline = self._rx.find(b"\n")
            if newline < 0:
                if len(self._rx) > self._max_line:
                    self._rx = b""
                    self._line_error(_TOO_LONG)
                return None
            raw = self._rx[:newline]
            self._rx = self._rx[newline + 1 :]
            if len(raw) > self._max_line:
                self._line_error(_TOO_LONG)
                continue
            command = self._accept(raw.strip())
            if command is not None:
                return command

    def _accept(self, raw: bytes):
        if not raw:
            return None
        if raw[:1] != b"N":
            try:
                text = raw.decode()
            except UnicodeError:
                return None  # line noise without a number: Marlin drops it too
            return text.strip() or None
        star = raw.rfind(b"*")
        end = star if star >= 0 else len(raw)
        cut = 1
        while cut < end and 48 <= raw[cut] <= 57:
            cut += 1
        try:
            body = raw[cut:end].decode().strip()
        except UnicodeError:
            body = ""
        number = int(raw[1:cut]) if cut > 1 else -1
        is_m110 = body[:4] == "M110"
        if is_m110:
            argument = _m110_number(body)
            if argument is not None:
                number = argument
        elif number != self.last_line + 1:
            self._line_error(_LINE_NUMBER)
            return None
        if star < 0:
            self._line_error(_NO_CHECKSUM)
            return None
        digits = raw[star + 1 :]
        if not digits or not digits.isdigit() or int(digits) != checksum(raw[:star]):
            self._line_error(_CHECKSUM)
            return None
        if number < 0:
            self._line_error(_LINE_NUMBER)
            return None
        self.last_line = number
        return body or None

    def _line_error(self, message: str) -> None:
        self.reply("Error:%s%d" % (message, self.last_line))
        self.reply("Resend: %d" % (self.last_line + 1))
        self.reply("ok")


def _m110_number(body: str):
    for word in body.split()[1:]:
        if word[:1] == "N" and word[1:].isdigit():
            return int(word[1:])
    return None
