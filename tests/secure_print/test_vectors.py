"""Every vector in tests/vectors/sealed-job opens, or is refused with its stated failure class."""

import hashlib
import json
import os

import pytest

from secure_print import opener
from tests.secure_print import boxkeys

DESCRIPTIONS = sorted(name for name in os.listdir(boxkeys.VECTORS) if name.endswith(".json") and name != "keys.json")


def test_there_are_vectors_for_every_failure_class():
    expected = set()
    for name in DESCRIPTIONS:
        with open(os.path.join(boxkeys.VECTORS, name)) as handle:
            expected.add(json.load(handle)["expect"])
    assert expected >= {
        "ok",
        "HeaderError",
        "SignatureError",
        "NotForThisBoxError",
        "PayloadError",
        "DecompressionError",
        "LicenseError",
        "PolicyError",
    }


@pytest.mark.parametrize("description", DESCRIPTIONS)
def test_vector(description, tmp_path):
    with open(os.path.join(boxkeys.VECTORS, description)) as handle:
        vector = json.load(handle)
    path = os.path.join(boxkeys.VECTORS, vector["file"])
    with open(path, "rb") as handle:
        before = handle.read()
    trust = boxkeys.trust_store(tmp_path)
    with open(path, "rb") as handle:
        assert boxkeys.outcome(handle, trust) == vector["expect"]
    if vector["expect"] == "ok":
        with open(path, "rb") as handle:
            job = boxkeys.verify(handle, trust)
            plaintext = b"".join(opener._decompressed_blocks(job, handle))
        assert hashlib.sha256(plaintext).hexdigest() == vector["gcode_sha256"]
    with open(path, "rb") as handle:
        assert handle.read() == before, "opening a job must never change its file"
