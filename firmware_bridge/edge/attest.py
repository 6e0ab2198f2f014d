"""The attestation format shared by the bridge (which signs) and the verifier (which checks): docs/edge-firmware.md.

One implementation of the MAC input and the reply line, run by MicroPython on the board and by CPython in the
box and the network's verifier.
"""

import hashlib
import struct

from firmware_bridge.edge.hmac_sha256 import hmac_sha256

# The G-code the box sends to ask for an attestation: "M7770 C<32 hex digits>".
COMMAND = "M7770"
CAPABILITY = "MIPAI_ATTEST"
VERSION = 1
DOMAIN = b"MIPAI_ATTEST:1\x00"
ID_DOMAIN = b"MIPAI_EDGE_ID:1\x00"
KEY_BYTES = 32
ID_BYTES = 8
CHALLENGE_BYTES = 16
MAC_BYTES = 32
# boot, seq, lines, e_um, layers, up_ms, resets
COUNTERS_FORMAT = ">IIQqIQI"
# The reply's fields, in their one legal order.
FIELDS = ("ID", "BOOT", "SEQ", "LINES", "E_UM", "LAYERS", "UP_MS", "RESETS", "CHALLENGE", "MAC")
_LIMITS = {
    "BOOT": 0xFFFFFFFF,
    "SEQ": 0xFFFFFFFF,
    "LINES": 0xFFFFFFFFFFFFFFFF,
    "LAYERS": 0xFFFFFFFF,
    "UP_MS": 0xFFFFFFFFFFFFFFFF,
    "RESETS": 0xFFFFFFFF,
}
E_UM_LIMIT = 0x7FFFFFFFFFFFFFFF


def to_hex(data: bytes) -> str:
    """Lower-case hex without hexdigest() or binascii (both differ between ports)."""
    return "".join(["%02x" % byte for byte in data])


def from_hex(text: str, size: int):
    """Exactly `size` bytes from `2 * size` lower-case hex digits, or None."""
    if len(text) != 2 * size:
        return None
    for char in text:
        if not ("0" <= char <= "9" or "a" <= char <= "f"):
            return None
    return bytes([int(text[i : i + 2], 16) for i in range(0, len(text), 2)])


def bridge_id(key: bytes) -> bytes:
    """The bridge's public 8-byte id: it names the key without revealing it."""
    return hashlib.sha256(ID_DOMAIN + key).digest()[:ID_BYTES]


def mac_input(ident: bytes, challenge: bytes, counters) -> bytes:
    """DOMAIN || id || challenge || counters packed big-endian (COUNTERS_FORMAT): 79 bytes."""
    boot, seq, lines, e_um, layers, up_ms, resets = counters
    return DOMAIN + ident + challenge + struct.pack(COUNTERS_FORMAT, boot, seq, lines, e_um, layers, up_ms, resets)


def sign(key: bytes, challenge: bytes, counters) -> str:
    """The reply line (without newline) for these counters and challenge."""
    ident = bridge_id(key)
    mac = hmac_sha256(key, mac_input(ident, challenge, counters))
    values = [to_hex(ident)] + ["%d" % value for value in counters] + [to_hex(challenge), to_hex(mac)]
    return "%s:%d " % (CAPABILITY, VERSION) + " ".join(["%s:%s" % (FIELDS[i], values[i]) for i in range(len(FIELDS))])


def parse_challenge(command: str):
    """The challenge bytes of "M7770 C<32 hex>", or None when the command is not exactly that."""
    words = command.split()
    if len(words) != 2 or words[0] != COMMAND or words[1][:1] != "C":
        return None
    return from_hex(words[1][1:], CHALLENGE_BYTES)
