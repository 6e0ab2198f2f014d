"""Write the sealed-job test vectors (docs/sealed-job.md). Deterministic: run it again and nothing changes.

python tests/vectors/make_sealed_job_vectors.py
"""

import hashlib
import io
import json
import os
import random
import struct

import zstandard
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from secure_print import job_format, seal
from secure_print.license import GcodePolicy, License
from secure_print.signer_key import SignerKey
from wire import keytext

HERE = os.path.join(os.path.dirname(os.path.abspath(__file__)), "sealed-job")
NOW = 1_800_000_000  # the box's clock for every vector
DAY = 86400


def fixed(label: str) -> bytes:
    return hashlib.sha256(b"mipjob test vector " + label.encode()).digest()


BOX_SIGNING = Ed25519PrivateKey.from_private_bytes(fixed("box ed25519"))
BOX_SEALING = X25519PrivateKey.from_private_bytes(fixed("box x25519"))
OTHER_SEALING = X25519PrivateKey.from_private_bytes(fixed("other box x25519"))
OTHER_SIGNING = Ed25519PrivateKey.from_private_bytes(fixed("other box ed25519"))
DESIGNER = SignerKey(
    keytext.DESIGNER,
    Ed25519PrivateKey.from_private_bytes(fixed("designer ed25519")),
    X25519PrivateKey.from_private_bytes(fixed("designer x25519")),
)
BOX_ID = keytext.box_id(BOX_SIGNING.public_key().public_bytes_raw())
OTHER_BOX_ID = keytext.box_id(OTHER_SIGNING.public_key().public_bytes_raw())


def sample_gcode(moves: int, rng: random.Random, extra: str = "") -> bytes:
    lines = ["; vector print", "M140 S60", "M104 S210", "G28", extra]
    for index in range(moves):
        lines.append("G1 X%.3f Y%.3f E%.5f" % (rng.uniform(0, 220), rng.uniform(0, 220), index * 0.01))
    lines += ["M104 S0", "M140 S0", "M84", ""]
    return "\n".join(line for line in lines if line is not None).encode()


def make_license(rng, boxes=(BOX_ID,), not_before=NOW - DAY, not_after=NOW + DAY, policy=None) -> License:
    return License(
        license_id=rng.randbytes(16).hex(),
        job_id=rng.randbytes(16).hex(),
        designer=DESIGNER.public_text,
        boxes=list(boxes),
        max_prints=3,
        not_before=not_before,
        not_after=not_after,
        watermark_seed=rng.randbytes(32).hex(),
        policy=policy or GcodePolicy(),
        title="vector",
    )


def sealed(gcode: bytes, rng, license=None, recipients=None, level=3) -> bytes:
    out = io.BytesIO()
    seal.seal(
        io.BytesIO(gcode),
        out,
        DESIGNER,
        recipients or [BOX_SEALING.public_key().public_bytes_raw()],
        license or make_license(rng),
        level=level,
        random=rng.randbytes,
    )
    return out.getvalue()


def resign(data: bytes, mutate) -> bytes:
    """Change header fields with the designer's own key, so that only the intended check can fail."""
    header, _, offset = job_format.parse_header(data)
    mutate(header)
    signature = DESIGNER.signing.sign(job_format.SIGNATURE_CONTEXT + header.to_bytes())
    return header.to_bytes() + signature + data[offset:]


def main() -> None:
    rng = random.Random(20261124)
    gcode = sample_gcode(15000, rng)  # about 200 KB compressed: three chunks
    good = sealed(gcode, rng)
    header, _, offset = job_format.parse_header(good)
    chunk = job_format.CHUNK_BYTES + job_format.TAG_BYTES
    payload = good[offset:]
    chunks = [payload[i : i + chunk] for i in range(0, len(payload), chunk)]
    assert len(chunks) == 3, (len(chunks), len(gcode), header.compressed_length)
    vectors = {
        "good": (good, "ok", gcode),
        "good_two_boxes": (
            sealed(
                gcode[:5000],
                rng,
                make_license(rng, boxes=(OTHER_BOX_ID, BOX_ID)),
                [OTHER_SEALING.public_key().public_bytes_raw(), BOX_SEALING.public_key().public_bytes_raw()],
            ),
            "ok",
            gcode[:5000],
        ),
        "not_a_job": (b"G28\nG1 X10 Y10\n" * 20, "HeaderError", None),
        "empty_file": (b"", "HeaderError", None),
        "unknown_suite": (good[:8] + struct.pack(">H", 2) + good[10:], "HeaderError", None),
        "unknown_version": (good[:6] + struct.pack(">H", 2) + good[8:], "HeaderError", None),
        "flipped_header_byte": (_flip(good, 40), "SignatureError", None),
        "flipped_signature_byte": (_flip(good, offset - 3), "SignatureError", None),
        "flipped_payload_byte": (_flip(good, offset + chunk + 100), "PayloadError", None),
        "flipped_last_byte": (_flip(good, len(good) - 1), "PayloadError", None),
        "truncated_mid_chunk": (good[: offset + chunk + 500], "PayloadError", None),
        "truncated_at_chunk_boundary": (good[: offset + chunk], "PayloadError", None),
        "appended_byte": (good + b"\n", "PayloadError", None),
        "reordered_chunks": (good[:offset] + chunks[1] + chunks[0] + chunks[2], "PayloadError", None),
        "duplicated_chunk": (good[:offset] + chunks[0] + chunks[0] + chunks[2], "PayloadError", None),
        "wrong_box": (
            sealed(
                gcode[:5000],
                rng,
                make_license(rng, boxes=(OTHER_BOX_ID,)),
                [OTHER_SEALING.public_key().public_bytes_raw()],
            ),
            "NotForThisBoxError",
            None,
        ),
        "license_names_other_box": (
            sealed(gcode[:5000], rng, make_license(rng, boxes=(OTHER_BOX_ID,))),
            "NotForThisBoxError",
            None,
        ),
        "expired": (
            sealed(gcode[:5000], rng, make_license(rng, not_before=NOW - 9 * DAY, not_after=NOW - DAY)),
            "LicenseError",
            None,
        ),
        "not_yet_valid": (
            sealed(gcode[:5000], rng, make_license(rng, not_before=NOW + DAY, not_after=NOW + 9 * DAY)),
            "LicenseError",
            None,
        ),
        "forbidden_command": (sealed(sample_gcode(50, rng, "M997"), rng), "PolicyError", None),
        "hotend_above_policy": (sealed(sample_gcode(50, rng, "M109 S320"), rng), "PolicyError", None),
        "bed_above_policy_lower_case": (sealed(sample_gcode(50, rng, "m190 s130"), rng), "PolicyError", None),
        "hotend_autotemp_maximum_above_policy": (
            sealed(sample_gcode(50, rng, "M104 S200 B400 F1"), rng),
            "PolicyError",
            None,
        ),
        "chamber_above_policy": (sealed(sample_gcode(50, rng, "M191 S80"), rng), "PolicyError", None),
        "command_too_long": (sealed(sample_gcode(50, rng, "G1 X1" + " Y1" * 30), rng), "PolicyError", None),
        "binary_payload": (sealed(sample_gcode(50, rng, "G1 \x00\x01\x02"), rng), "PolicyError", None),
        "decompression_bomb": (sealed(b"G1 X0\n" * 400_000, rng), "DecompressionError", None),
        "stated_length_short": (
            resign(good, lambda h: setattr(h, "gcode_length", h.gcode_length - 1)),
            "HeaderError",
            None,
        ),
    }
    # The stated-length vector changes the header after the MAC: the MAC is recomputed by nobody, so the box
    # refuses it at the MAC check. A designer who lies about lengths under a valid MAC is caught by decompression:
    vectors["window_too_large"] = (_sealed_with_window(sample_gcode(50, rng), rng, 27), "DecompressionError", None)
    vectors["stated_length_short_with_mac"] = (_relengthed(good, gcode), "DecompressionError", None)
    for name in os.listdir(HERE):
        if name.endswith((".mipjob", ".json")):
            os.unlink(os.path.join(HERE, name))
    for name, (data, expect, plaintext) in sorted(vectors.items()):
        with open(os.path.join(HERE, name + ".mipjob"), "wb") as handle:
            handle.write(data)
        description = {"file": name + ".mipjob", "expect": expect}
        if plaintext is not None:
            description["gcode_sha256"] = hashlib.sha256(plaintext).hexdigest()
        with open(os.path.join(HERE, name + ".json"), "w") as handle:
            json.dump(description, handle, indent=1, sort_keys=True)
            handle.write("\n")
    keys = {
        "now": NOW,
        "box_ed25519_secret": fixed("box ed25519").hex(),
        "box_x25519_secret": fixed("box x25519").hex(),
        "box_id": BOX_ID,
        "designer": DESIGNER.public_text,
    }
    with open(os.path.join(HERE, "keys.json"), "w") as handle:
        json.dump(keys, handle, indent=1, sort_keys=True)
        handle.write("\n")


def _sealed_with_window(gcode: bytes, rng, window_log: int) -> bytes:
    """A job whose Zstandard frame asks for a 2**window_log byte window, more than a box allocates."""
    original = seal.compressor
    seal.compressor = lambda level: zstandard.ZstdCompressor(
        compression_params=zstandard.ZstdCompressionParameters.from_level(level, window_log=window_log)
    )
    try:
        return sealed(gcode, rng)
    finally:
        seal.compressor = original


def _flip(data: bytes, position: int) -> bytes:
    return data[:position] + bytes([data[position] ^ 0x01]) + data[position + 1 :]


def _relengthed(good: bytes, gcode: bytes) -> bytes:
    """The good job with a header stating one byte less of G-code, MAC and signature made with the file key."""
    file_key = job_format.unwrap_file_key(job_format.parse_header(good)[0].stanzas, BOX_SEALING)

    def mutate(header) -> None:
        header.gcode_length -= 1
        header.mac = job_format.header_mac(file_key, header)

    return resign(good, mutate)


if __name__ == "__main__":
    main()
