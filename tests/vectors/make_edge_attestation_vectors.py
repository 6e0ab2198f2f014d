"""Write the edge attestation vectors (docs/edge-firmware.md) with CPython's own hmac, not the board's helper.

python tests/vectors/make_edge_attestation_vectors.py
"""

import hashlib
import hmac
import json
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "edge-attestation")
KEY = hashlib.sha256(b"mipai edge attestation test vector key").digest()
OTHER_KEY = hashlib.sha256(b"mipai edge attestation other key").digest()
CHALLENGE = hashlib.sha256(b"mipai edge challenge 1").digest()[:16]
OTHER_CHALLENGE = hashlib.sha256(b"mipai edge challenge 2").digest()[:16]
FIELDS = ("BOOT", "SEQ", "LINES", "E_UM", "LAYERS", "UP_MS", "RESETS")


def sign(key: bytes, challenge: bytes, counters: tuple) -> tuple:
    """(line, MAC input) written out from the spec alone."""
    ident = hashlib.sha256(b"MIPAI_EDGE_ID:1\x00" + key).digest()[:8]
    message = b"MIPAI_ATTEST:1\x00" + ident + challenge + struct.pack(">IIQqIQI", *counters)
    mac = hmac.new(key, message, "sha256").digest()
    words = ["ID:" + ident.hex()] + ["%s:%d" % pair for pair in zip(FIELDS, counters, strict=True)]
    words += ["CHALLENGE:" + challenge.hex(), "MAC:" + mac.hex()]
    return "MIPAI_ATTEST:1 " + " ".join(words), message


def main() -> None:
    start = (3, 1, 120, 0, 0, 5000, 0)
    end = (3, 2, 100120, 4994450, 250, 65000, 0)
    retract = (3, 3, 100200, -1500, 250, 66000, 1)
    big = (0xFFFFFFFF, 0xFFFFFFFF, 2**64 - 1, 2**63 - 1, 0xFFFFFFFF, 2**64 - 1, 0xFFFFFFFF)
    good_start, message = sign(KEY, CHALLENGE, start)
    good_end, _ = sign(KEY, CHALLENGE, end)
    vectors = {
        "good_start": (good_start, CHALLENGE, None, "ok", start),
        "good_end": (good_end, CHALLENGE, [3, 1], "ok", end),
        "good_negative_extrusion": (sign(KEY, CHALLENGE, retract)[0], CHALLENGE, None, "ok", retract),
        "good_largest_counters": (sign(KEY, CHALLENGE, big)[0], CHALLENGE, None, "ok", big),
        "replayed_same_sequence": (good_end, CHALLENGE, [3, 2], "invalid", end),
        "replayed_older_boot": (good_end, CHALLENGE, [4, 1], "invalid", end),
        "other_challenge": (good_end, OTHER_CHALLENGE, None, "invalid", end),
        "altered_lines": (good_end.replace("LINES:100120", "LINES:100121"), CHALLENGE, None, "invalid", None),
        "altered_mac": (good_end[:-1] + ("0" if good_end[-1] != "0" else "1"), CHALLENGE, None, "invalid", None),
        "signed_by_another_key": (sign(OTHER_KEY, CHALLENGE, end)[0], CHALLENGE, None, "invalid", None),
        "upper_case_hex": (good_end.replace(good_end[-64:], good_end[-64:].upper()), CHALLENGE, None, "format", None),
        "leading_zero": (good_end.replace("SEQ:2", "SEQ:02"), CHALLENGE, None, "format", None),
        "fields_swapped": (good_end.replace("BOOT:3 SEQ:2", "SEQ:2 BOOT:3"), CHALLENGE, None, "format", None),
        "field_missing": (good_end.replace(" RESETS:0", ""), CHALLENGE, None, "format", None),
        "double_space": (good_end.replace(" SEQ:", "  SEQ:"), CHALLENGE, None, "format", None),
        "counter_too_large": (good_end.replace("BOOT:3", "BOOT:4294967296"), CHALLENGE, None, "format", None),
        "trailing_junk": (good_end + " X:1", CHALLENGE, None, "format", None),
        "short_mac": (good_end[:-2], CHALLENGE, None, "format", None),
    }
    os.makedirs(HERE, exist_ok=True)
    for name in os.listdir(HERE):
        if name.endswith(".json"):
            os.unlink(os.path.join(HERE, name))
    for name, (line, challenge, last, expect, counters) in sorted(vectors.items()):
        record = {"key": KEY.hex(), "challenge": challenge.hex(), "last_accepted": last, "line": line, "expect": expect}
        if counters is not None:
            record["counters"] = list(counters)
            record["signed_challenge"] = CHALLENGE.hex()
        with open(os.path.join(HERE, name + ".json"), "w") as handle:
            json.dump(record, handle, indent=1, sort_keys=True)
            handle.write("\n")
    # The exact MAC input of good_start, for other implementations' encoders.
    with open(os.path.join(HERE, "good_start.mac-input"), "wb") as handle:
        handle.write(message)


if __name__ == "__main__":
    main()
