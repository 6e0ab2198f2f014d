"""The box's and the verifier's side of edge attestations (docs/edge-firmware.md, "The attestation").

Detecting a bridge from the link's `Connected` capabilities, the request line, a strict parser of the reply,
the verifier's check with the network's key, the job's evidence from a start and an end attestation, and
`fetch`, which asks an open PrinterConnection for one.
"""

import hmac
import os
import time

from firmware_bridge import marlin, streamer
from firmware_bridge.edge import attest

FETCH_TIMEOUT = 10.0  # seconds the bridge has to answer a request
_PREFIX = "%s:%d " % (attest.CAPABILITY, attest.VERSION)


class AttestationError(Exception):
    """An attestation could not be had or does not hold."""


class AttestationFormatError(AttestationError):
    """The reply is not a well-formed attestation line (the bridge, or the line between, is at fault)."""


class AttestationInvalid(AttestationError):
    """A well-formed attestation that does not hold: wrong key, other challenge, replayed or altered."""


class BridgeNotPaired(AttestationError):
    """The bridge has no key yet: run `mipai-fleet edge pair PORT` on it."""


class BridgeUnavailable(AttestationError):
    """No attestation came back: the printer is not behind a bridge, or the bridge did not answer in time."""


class Attestation:
    """One parsed attestation. `line` is the reply exactly as received, for the receipt."""

    __slots__ = ("line", "ident", "boot", "seq", "lines", "e_um", "layers", "up_ms", "resets", "challenge", "mac")

    def __init__(self, line: str, ident: bytes, counters: tuple, challenge: bytes, mac: bytes) -> None:
        self.line = line
        self.ident = ident
        self.boot, self.seq, self.lines, self.e_um, self.layers, self.up_ms, self.resets = counters
        self.challenge = challenge
        self.mac = mac

    def counters(self) -> tuple:
        return (self.boot, self.seq, self.lines, self.e_um, self.layers, self.up_ms, self.resets)

    @property
    def bridge_id(self) -> str:
        return self.ident.hex()

    def __repr__(self) -> str:
        return "Attestation(%s, boot=%d, seq=%d, lines=%d, e_um=%d, layers=%d)" % (
            self.bridge_id,
            self.boot,
            self.seq,
            self.lines,
            self.e_um,
            self.layers,
        )


def is_bridge(capabilities: dict) -> bool:
    """True when the printer's M115 capabilities (Connected.capabilities) announce an attesting bridge."""
    return capabilities.get(attest.CAPABILITY) is True


def new_challenge() -> bytes:
    """A fresh random challenge, as the verifier issues it."""
    return os.urandom(attest.CHALLENGE_BYTES)


def request_line(challenge: bytes) -> str:
    """The G-code command that asks the bridge for an attestation with `challenge`."""
    if not isinstance(challenge, bytes) or len(challenge) != attest.CHALLENGE_BYTES:
        raise ValueError("a challenge is %d bytes" % attest.CHALLENGE_BYTES)
    return "%s C%s" % (attest.COMMAND, challenge.hex())


def as_record(start: Attestation, end: Attestation) -> dict:
    """What a receipt or a job's done event carries: the bridge's two reply lines exactly as received."""
    return {"bridge_id": end.bridge_id, "start": start.line, "end": end.line}


def _number(name: str, text: str, signed: bool = False) -> int:
    digits = text[1:] if signed and text[:1] == "-" else text
    if not digits.isascii() or not digits.isdigit() or (digits[0] == "0" and len(digits) > 1) or text == "-0":
        raise AttestationFormatError("%s is not a plain decimal number: %r" % (name, text))
    value = int(text)
    limit = attest.E_UM_LIMIT if signed else attest._LIMITS[name]
    if not -limit - 1 <= value <= limit or (not signed and value < 0):
        raise AttestationFormatError("%s is out of range: %s" % (name, text))
    return value


def parse(line: str) -> Attestation:
    """Parse one reply line strictly (field order, spacing, case, ranges); raises AttestationFormatError."""
    if not isinstance(line, str) or len(line) > 400:
        raise AttestationFormatError("an attestation is one line of at most 400 characters")
    if not line.startswith(_PREFIX):
        raise AttestationFormatError("not a %s line: %r" % (_PREFIX.strip(), line[:40]))
    words = line[len(_PREFIX) :].split(" ")
    if len(words) != len(attest.FIELDS):
        raise AttestationFormatError("an attestation has %d fields, not %d" % (len(attest.FIELDS), len(words)))
    values = {}
    for name, word in zip(attest.FIELDS, words, strict=True):
        key, colon, value = word.partition(":")
        if key != name or not colon:
            raise AttestationFormatError("field %s expected, found %r" % (name, word[:24]))
        values[name] = value
    ident = attest.from_hex(values["ID"], attest.ID_BYTES)
    challenge = attest.from_hex(values["CHALLENGE"], attest.CHALLENGE_BYTES)
    mac = attest.from_hex(values["MAC"], attest.MAC_BYTES)
    for name, decoded in (("ID", ident), ("CHALLENGE", challenge), ("MAC", mac)):
        if decoded is None:
            raise AttestationFormatError("%s is not lower-case hex of the right length" % name)
    counters = tuple(_number(name, values[name], signed=name == "E_UM") for name in attest.FIELDS[1:8])
    return Attestation(line, ident, counters, challenge, mac)


def verify(attestation: Attestation, key: bytes, challenge: bytes, last=None) -> None:
    """The verifier's check: MAC under the network's copy of the key, the challenge it sent, and (BOOT, SEQ)
    beyond `last`, the (boot, seq) it accepted last from this bridge. Raises AttestationInvalid."""
    if len(key) != attest.KEY_BYTES:
        raise ValueError("an edge key is %d bytes" % attest.KEY_BYTES)
    if attestation.ident != attest.bridge_id(key):
        raise AttestationInvalid("attestation from bridge %s, not the one this key belongs to" % attestation.bridge_id)
    expected = hmac.new(
        key, attest.mac_input(attestation.ident, attestation.challenge, attestation.counters()), "sha256"
    )
    if not hmac.compare_digest(expected.digest(), attestation.mac):
        raise AttestationInvalid("the attestation's MAC does not verify: altered, or not made by this bridge")
    if not hmac.compare_digest(attestation.challenge, challenge):
        raise AttestationInvalid("the attestation answers another challenge (replayed or fetched for another job)")
    if last is not None and (attestation.boot, attestation.seq) <= tuple(last):
        raise AttestationInvalid(
            "sequence %d.%d is not after %d.%d, the last accepted: a replay"
            % (attestation.boot, attestation.seq, *last)
        )


def job_evidence(start: Attestation, end: Attestation) -> dict:
    """What the printer acknowledged between two verified attestations of one job."""
    if start.ident != end.ident:
        raise AttestationInvalid("start and end attestations come from different bridges")
    if start.boot != end.boot:
        raise AttestationInvalid("the bridge restarted during the job (boot %d, then %d)" % (start.boot, end.boot))
    if end.seq <= start.seq:
        raise AttestationInvalid("the end attestation (seq %d) is not after the start (seq %d)" % (end.seq, start.seq))
    if start.resets != end.resets:
        raise AttestationInvalid("the printer restarted during the job (%d resets)" % (end.resets - start.resets))
    return {
        "bridge_id": end.bridge_id,
        "lines": end.lines - start.lines,
        "e_um": end.e_um - start.e_um,
        "layers": end.layers - start.layers,
        "ms": end.up_ms - start.up_ms,
    }


class ReplyWatcher:
    """Sans-I/O: fed the link's events after a request, it finds the attestation or the bridge's refusal."""

    def __init__(self) -> None:
        self.result = None  # the Attestation, once it came
        self.error = None  # an AttestationError, once the bridge refused

    def feed(self, events: list) -> bool:
        """True once the answer is in (self.result or self.error)."""
        for event in events:
            if not isinstance(event, marlin.PrinterMessage):
                if isinstance(event, (marlin.LinkFailed, marlin.PrinterHalted, marlin.PrinterReset)):
                    self.error = BridgeUnavailable("the link ended while waiting for the attestation")
                    return True
                continue
            text = event.text
            if event.level == "info" and text.startswith(_PREFIX):
                self.result = parse(text)
                return True
            if event.level == "error" and text.startswith(attest.CAPABILITY):
                if "not paired" in text:
                    self.error = BridgeNotPaired("the bridge is not paired: run `mipai-fleet edge pair PORT` on it")
                else:
                    self.error = AttestationFormatError("the bridge refused the request: %s" % text)
                return True
        return False


def fetch_if_bridged(connection: streamer.PrinterConnection, challenge: bytes, **options):
    """fetch() when the printer is behind an attesting bridge; None for a plain printer, which prints as before."""
    if not is_bridge(connection.capabilities):
        return None
    return fetch(connection, challenge, **options)


def fetch(
    connection: streamer.PrinterConnection,
    challenge: bytes,
    clock=time.monotonic,
    timeout: float = FETCH_TIMEOUT,
    on_event=None,
) -> Attestation:
    """Ask the bridge behind an open, idle connection for an attestation with `challenge`, and return it parsed
    (not verified: the verifier does that with the network's key). Call between jobs: before stream() and
    after it returns. Raises BridgeUnavailable when the printer has no bridge or it does not answer."""
    if not is_bridge(connection.capabilities):
        raise BridgeUnavailable("the printer on this port is not behind an attesting bridge (no Cap:MIPAI_ATTEST)")
    link = connection.link
    try:
        link.send_command(request_line(challenge))
    except marlin.LocalProtocolError as exc:
        raise BridgeUnavailable("cannot ask the bridge now: %s" % exc) from exc
    watcher = ReplyWatcher()
    # The streamer's one exchange round (write, read, feed, tick); the request's own ok is left to the next
    # round of whoever uses the connection next: a job's first line waits for it.
    exchange = streamer._Exchanger(connection.transport, link, clock, on_event)
    deadline = clock() + timeout
    while clock() < deadline:
        if watcher.feed(exchange()):
            if watcher.error is not None:
                raise watcher.error
            return watcher.result
    raise BridgeUnavailable("the bridge did not answer the attestation request within %.0f s" % timeout)
