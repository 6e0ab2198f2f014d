"""Write the attestation-weighing vectors (docs/rewards.md, "Attested prints"): a receipt's `attestation` member,
its `lines` and `filament_mm`, what the verifier knows (the bridge's key, the last (BOOT, SEQ) it accepted, the
challenges it issued to the box and their state) and the share of the reward the receipt earns. The lines are
signed here with CPython's own hmac, from the spec in docs/edge-firmware.md alone.

python tests/vectors/make_attestation_weighing_vectors.py
"""

import hashlib
import hmac
import json
import os
import struct

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "attestation-weighing")
KEY = hashlib.sha256(b"mipai weighing vector bridge key").digest()
OTHER_KEY = hashlib.sha256(b"mipai weighing vector other bridge").digest()
FIELDS = ("BOOT", "SEQ", "LINES", "E_UM", "LAYERS", "UP_MS", "RESETS")
C1, C2, C3 = (hashlib.sha256(b"mipai weighing challenge %d" % n).digest()[:16] for n in (1, 2, 3))


def bridge_id(key: bytes) -> str:
    return hashlib.sha256(b"MIPAI_EDGE_ID:1\x00" + key).digest()[:8].hex()


def sign(key: bytes, challenge: bytes, counters: tuple) -> str:
    ident = bytes.fromhex(bridge_id(key))
    message = b"MIPAI_ATTEST:1\x00" + ident + challenge + struct.pack(">IIQqIQI", *counters)
    mac = hmac.new(key, message, "sha256").hexdigest()
    words = ["ID:" + ident.hex()] + ["%s:%d" % pair for pair in zip(FIELDS, counters, strict=True)]
    return "MIPAI_ATTEST:1 " + " ".join([*words, "CHALLENGE:" + challenge.hex(), "MAC:" + mac])


START = (2, 5, 300, 10_000, 3, 40_000, 1)  # boot 2, seq 5: 300 commands and 10 mm before this job
END = (2, 6, 6330, 1_010_000, 120, 3_640_000, 1)  # 6030 commands, 1000 mm, 117 layers, 1 h later


def member(start=START, end=END, c_start=C1, c_end=C2, origin="verifier", commands=6030, key=KEY) -> dict:
    return {"bridge_id": bridge_id(KEY), "start": sign(key, c_start, start), "end": sign(key, c_end, end),
            "challenge_from": origin, "commands": commands}  # fmt: skip


def main() -> None:
    issued = {C1.hex(): "open", C2.hex(): "open"}
    good = member()
    vectors = {
        "attested_by_the_verifiers_challenges": (good, issued, None, 1000, "attested by edge bridge"),
        "attested_after_an_earlier_job": (good, issued, [2, 4], 1000, "attested by edge bridge"),
        "attested_against_the_boxs_own_challenges": (member(origin="box"), {}, None, 750, "box's own challenge"),
        "extrusion_within_tolerance": (good, issued, None, 1000, "attested", {"filament_mm": 1009}),
        "unattested": (None, {}, None, 500, "no attestation"),
        "bridge_gave_none": ({"error": "BridgeNotPaired: the bridge is not paired"}, {}, None, 500,
                             "gave no attestation"),
        "unknown_bridge": (good, issued, None, 500, "not paired with the network", {"paired": False}),
        "replayed_sequence": (good, issued, [2, 6], 500, "a replay"),
        "replayed_challenge": (good, {C1.hex(): "used", C2.hex(): "open"}, None, 500, "used before"),
        "altered_line_count": (dict(good, end=good["end"].replace("LINES:6330", "LINES:7330")), issued, None, 500,
                               "MAC does not verify"),
        "signed_by_another_key": (member(key=OTHER_KEY), issued, None, 500, "another bridge"),
        "challenge_never_issued": (member(c_end=C3), issued, None, 500, "never issued"),
        "same_challenge_twice": (member(c_end=C1), issued, None, 500, "same challenge"),
        "bridge_restarted_during_the_job": (member(end=(3, 1, 6030, 1_000_000, 117, 3_600_000, 0)), issued, None,
                                            500, "restarted"),
        "printer_restarted_during_the_job": (member(end=(2, 6, 6330, 1_010_000, 120, 3_640_000, 2)), issued, None,
                                             500, "printer restarted"),
        "box_claims_more_commands": (member(commands=6100), issued, None, 500, "commands acknowledged"),
        "more_commands_than_lines": (good, issued, None, 500, "cannot fit", {"lines": 6000}),
        "extrusion_off": (good, issued, None, 500, "mm of filament", {"filament_mm": 1200}),
    }  # fmt: skip
    os.makedirs(HERE, exist_ok=True)
    for name in os.listdir(HERE):
        if name.endswith(".json"):
            os.unlink(os.path.join(HERE, name))
    for name, (attestation, challenges, last, permille, reason, *extra) in sorted(vectors.items()):
        overrides = extra[0] if extra else {}
        vector = {
            "attestation": attestation,
            "lines": overrides.get("lines", 6100),
            "filament_mm": overrides.get("filament_mm", 1000),
            "bridge_key": KEY.hex() if overrides.get("paired", True) else None,
            "last_accepted": last,
            "issued": challenges,
            "permille": permille,
            "reason": reason,
        }
        with open(os.path.join(HERE, name + ".json"), "w") as handle:
            json.dump(vector, handle, indent=1, sort_keys=True)
            handle.write("\n")


if __name__ == "__main__":
    main()
