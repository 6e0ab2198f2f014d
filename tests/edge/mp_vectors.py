"""The board's signer and HMAC helper against the vectors written with CPython's hmac. Plain tests for both runtimes."""

import json
import os

from firmware_bridge.edge import attest
from firmware_bridge.edge.hmac_sha256 import equal, hmac_sha256

# Found from this file, so the tests also run from another folder (make edge-check runs the compiled firmware).
HERE = __file__.rsplit("/", 2)[0] + "/vectors/edge-attestation"


def _vectors():
    for name in sorted(os.listdir(HERE)):
        if name.endswith(".json"):
            with open(HERE + "/" + name) as handle:
                yield name, json.load(handle)


def test_the_signer_writes_every_good_vector_byte_for_byte():
    signed = 0
    for name, vector in _vectors():
        if "counters" not in vector:
            continue
        key = attest.from_hex(vector["key"], 32)
        challenge = attest.from_hex(vector["signed_challenge"], 16)
        assert attest.sign(key, challenge, tuple(vector["counters"])) == vector["line"], name
        signed += 1
    assert signed >= 6


def test_the_mac_input_is_the_documented_79_bytes():
    with open(HERE + "/good_start.json") as handle:
        vector = json.load(handle)
    with open(HERE + "/good_start.mac-input", "rb") as handle:
        expected = handle.read()
    key = attest.from_hex(vector["key"], 32)
    challenge = attest.from_hex(vector["challenge"], 16)
    assert len(expected) == 79
    assert attest.mac_input(attest.bridge_id(key), challenge, tuple(vector["counters"])) == expected


def test_hmac_helper_matches_rfc_4231():
    # RFC 4231 test cases 1 and 6 (a key longer than the block).
    mac = hmac_sha256(b"\x0b" * 20, b"Hi There")
    assert attest.to_hex(mac) == "b0344c61d8db38535ca8afceaf0bf12b881dc200c9833da726e9376c2e32cff7"
    mac = hmac_sha256(b"\xaa" * 131, b"Test Using Larger Than Block-Size Key - Hash Key First")
    assert attest.to_hex(mac) == "60e431591ee0b67f0d8a26aacbf5b77f8e0bc6213728c5140546040f0ee37f54"


def test_mac_comparison():
    assert equal(b"abc", b"abc")
    assert not equal(b"abc", b"abd")
    assert not equal(b"abc", b"ab")


def test_hex_decoding_is_strict():
    assert attest.from_hex("00ff", 2) == b"\x00\xff"
    for text in ("00FF", "00f", "00fff0", "0g00"):
        assert attest.from_hex(text, 2) is None


def test_the_challenge_request_is_parsed_strictly():
    assert attest.parse_challenge("M7770 C" + "ab" * 16) == b"\xab" * 16
    for command in ("M7770", "M7770 C", "M7770 X" + "ab" * 16, "M7771 C" + "ab" * 16, "M7770 C" + "ab" * 16 + " S1"):
        assert attest.parse_challenge(command) is None
