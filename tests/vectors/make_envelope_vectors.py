"""Write the envelope test vectors (docs/envelope.md). Deterministic: Ed25519 signatures are.

python tests/vectors/make_envelope_vectors.py
"""

import copy
import hashlib
import json
import os

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire import envelope

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "envelope")
KEY = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"mipai envelope test vector key").digest())
OTHER = Ed25519PrivateKey.from_private_bytes(hashlib.sha256(b"mipai envelope other key").digest())
PUBLIC = KEY.public_key().public_bytes_raw().hex()
NOW = 1_800_000_000


def main() -> None:
    body = {"box_id": "abcdefghijklmnop", "print_number": 3, "printer": {"MACHINE_TYPE": "Prusa MK4"}, "ok": True}
    good = envelope.sign("print.usage", body, KEY, "abcdefghijklmnop", NOW - 60, 7)
    command = envelope.sign("cmd", {"name": "job.pause", "args": {}}, KEY, "operator-1", NOW - 10, 42, NOW + 300)
    tampered = copy.deepcopy(good)
    tampered["body"]["print_number"] = 4
    extra = dict(good, note="hi")
    missing = {k: v for k, v in good.items() if k != "exp"}
    wrong_key = envelope.sign("print.usage", body, OTHER, "abcdefghijklmnop", NOW - 60, 7)
    padded = dict(good, sig=good["sig"] + "\n")
    boolean_seq = dict(good, seq=True)
    vectors = {
        "good": (good, "ok", None),
        "good_command_before_expiry": (command, "ok", NOW),
        "expired_command": (command, "expired", NOW + 300),
        "tampered_body": (tampered, "bad signature", None),
        "signed_by_another_key": (wrong_key, "bad signature", None),
        "extra_member": (extra, "malformed", None),
        "missing_member": (missing, "malformed", None),
        "signature_not_canonical_base64": (padded, "bad signature", None),
        "sequence_is_a_boolean": (boolean_seq, "malformed", None),
    }
    for name in os.listdir(HERE):
        if name.endswith(".json"):
            os.unlink(os.path.join(HERE, name))
    for name, (value, expect, now) in sorted(vectors.items()):
        with open(os.path.join(HERE, name + ".json"), "w") as handle:
            json.dump({"public_key": PUBLIC, "envelope": value, "now": now, "expect": expect}, handle, indent=1,
                      sort_keys=True)  # fmt: skip
            handle.write("\n")
    # The exact bytes signed for the good vector, so other implementations can check their canonical encoding.
    unsigned = {k: v for k, v in good.items() if k != "sig"}
    with open(os.path.join(HERE, "good.signed-bytes"), "wb") as handle:
        handle.write(envelope.CONTEXT + envelope.canonical.encode(unsigned))


if __name__ == "__main__":
    main()
