"""The board's key and boot number on its flash. The key is written once at pairing and never printed."""

import os

from firmware_bridge.edge import attest

DIRECTORY = "/mipai"
KEY_FILE = "edge.key"
BOOT_FILE = "boot"


class AlreadyPaired(Exception):
    """A key is stored already; a bridge is paired once (erase the board's flash to pair it anew)."""


def _path(directory: str, name: str) -> str:
    return directory + "/" + name


def _exists(path: str) -> bool:
    try:
        os.stat(path)
    except OSError:
        return False
    return True


def _ensure(directory: str) -> None:
    if not _exists(directory):
        os.mkdir(directory)


def pair(key_hex: str, directory: str = DIRECTORY) -> str:
    """Store the key given as 64 hex digits, once; returns the bridge id (hex), never the key."""
    key = attest.from_hex(key_hex, attest.KEY_BYTES)
    if key is None:
        raise ValueError("a pairing key is %d lower-case hex digits" % (2 * attest.KEY_BYTES))
    path = _path(directory, KEY_FILE)
    if _exists(path):
        stored = load_key(directory)
        named = attest.to_hex(attest.bridge_id(stored)) if stored is not None else "unreadable"
        raise AlreadyPaired("this bridge is paired already (id %s)" % named)
    _ensure(directory)
    with open(path + ".new", "wb") as handle:
        handle.write(key)
    os.rename(path + ".new", path)
    return attest.to_hex(attest.bridge_id(key))


def load_key(directory: str = DIRECTORY):
    """The stored key, or None when the bridge is not paired (or the file is damaged)."""
    try:
        with open(_path(directory, KEY_FILE), "rb") as handle:
            key = handle.read()
    except OSError:
        return None
    return key if len(key) == attest.KEY_BYTES else None


def next_boot(directory: str = DIRECTORY) -> int:
    """Count one more start of the firmware and return its number (1 for the first)."""
    path = _path(directory, BOOT_FILE)
    boot = 0
    try:
        with open(path) as handle:
            boot = int(handle.read().strip() or "0")
    except (OSError, ValueError):
        boot = 0
    boot += 1
    _ensure(directory)
    with open(path + ".new", "w") as handle:
        handle.write("%d\n" % boot)
    os.rename(path + ".new", path)
    return boot
