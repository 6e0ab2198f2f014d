"""Pairing an edge bridge: the network's tool writes a fresh key to the board once, over its USB serial REPL.

The board's own `edge.keystore.pair` stores the key only if none is stored yet and answers the bridge id,
never the key. The network keeps its copy in a key file (one `ID KEY` line per bridge, mode 0600) that the
verifier reads with `load_keys`. See docs/edge-firmware.md, "Pairing".
"""

import os

from firmware_bridge.edge import attest, keystore

PAIRED = "PAIRED"
ALREADY = "ALREADY"


class PairingError(Exception):
    """The bridge could not be paired; the message says what to do."""


def pairing_code(key: bytes, directory: str = keystore.DIRECTORY) -> str:
    """The MicroPython code the board runs to store `key` (the only place the key ever appears in clear)."""
    if len(key) != attest.KEY_BYTES:
        raise ValueError("an edge key is %d bytes" % attest.KEY_BYTES)
    return (
        "from firmware_bridge.edge import keystore\n"
        "try:\n"
        "    print(%r, keystore.pair(%r, %r))\n"
        "except keystore.AlreadyPaired as error:\n"
        "    print(%r, error)\n"
    ) % (PAIRED, key.hex(), directory, ALREADY)


def check_answer(output: str, key: bytes) -> str:
    """The bridge id the board answered, checked against the key; raises PairingError otherwise."""
    words = output.strip().split(" ", 1)
    if words[0] == ALREADY:
        raise PairingError(
            "the bridge is paired already (%s); a bridge is paired once: erase its flash to pair it anew"
            % (words[1] if len(words) > 1 else "")
        )
    if words[0] != PAIRED or len(words) != 2:
        raise PairingError("the board did not answer like an edge bridge: %r (is the firmware on it?)" % output[:200])
    expected = attest.to_hex(attest.bridge_id(key))
    if words[1].strip() != expected:
        raise PairingError("the board stored a key with id %s, not %s" % (words[1].strip(), expected))
    return expected


def pair(execute, key=None, directory: str = keystore.DIRECTORY) -> tuple:
    """Pair through `execute(code) -> output` (the board's raw REPL); returns (bridge id, key)."""
    key = os.urandom(attest.KEY_BYTES) if key is None else key
    return check_answer(execute(pairing_code(key, directory)), key), key


def record_key(path: str, bridge_id: str, key: bytes) -> None:
    """Add the bridge's key to the network's key file (created 0600); an id already there is refused."""
    if bridge_id in load_keys(path):
        raise PairingError("%s already lists bridge %s" % (path, bridge_id))
    fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_APPEND, 0o600)
    with os.fdopen(fd, "a") as handle:
        handle.write("%s %s\n" % (bridge_id, key.hex()))


def load_keys(path: str) -> dict:
    """Bridge id -> key from the network's key file; a missing file holds none."""
    keys = {}
    try:
        with open(path) as handle:
            lines = handle.read().splitlines()
    except FileNotFoundError:
        return keys
    for number, line in enumerate(lines, 1):
        parts = line.split()
        if not parts:
            continue
        key = attest.from_hex(parts[1], attest.KEY_BYTES) if len(parts) == 2 else None
        if key is None or attest.to_hex(attest.bridge_id(key)) != parts[0]:
            raise PairingError("%s line %d is not 'ID KEY' of a bridge" % (path, number))
        keys[parts[0]] = key
    return keys


class SerialRepl:
    """The board's USB serial REPL through mpremote: interrupt the firmware, run code raw, soft-reset after."""

    def __init__(self, port: str) -> None:
        try:
            from mpremote.transport import TransportError
            from mpremote.transport_serial import SerialTransport
        except ImportError as exc:
            raise PairingError("mpremote is not installed: pip install -c constraints.txt '.[edge]'") from exc
        self._error = TransportError
        try:
            self._transport = SerialTransport(port, baudrate=115200)
        except TransportError as exc:
            raise PairingError("cannot open %s: %s (is the board plugged in by USB?)" % (port, exc)) from exc

    def __call__(self, code: str) -> str:
        try:
            self._transport.enter_raw_repl(soft_reset=False)
            output = self._transport.exec(code)
        except self._error as exc:
            raise PairingError("the board's REPL failed: %s" % exc) from exc
        return output.decode("utf-8", "replace")

    def close(self) -> None:
        try:
            self._transport.exit_raw_repl()
            self._transport.write_ctrl_d(None)  # soft reset: main.py starts the bridge again, now paired
        except (self._error, OSError):
            pass
        self._transport.close()
