"""Every envelope vector verifies, or is refused for its stated reason; signing reproduces the signed bytes."""

import json
import os

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from wire import canonical, envelope

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors", "envelope")
FILES = sorted(name for name in os.listdir(VECTORS) if name.endswith(".json"))
REASONS = {"malformed": "an envelope holds exactly|must be", "bad signature": "does not verify", "expired": "expired"}


def test_vectors_cover_every_outcome():
    outcomes = set()
    for name in FILES:
        with open(os.path.join(VECTORS, name)) as handle:
            outcomes.add(json.load(handle)["expect"])
    assert outcomes == {"ok", "malformed", "bad signature", "expired"}


@pytest.mark.parametrize("name", FILES)
def test_vector(name):
    with open(os.path.join(VECTORS, name)) as handle:
        vector = json.load(handle)
    public = bytes.fromhex(vector["public_key"])
    if vector["expect"] == "ok":
        assert envelope.verify(vector["envelope"], public, vector["now"]) == vector["envelope"]["body"]
    else:
        with pytest.raises(envelope.EnvelopeError, match=REASONS[vector["expect"]]):
            envelope.verify(vector["envelope"], public, vector["now"])


def test_the_signed_bytes_are_the_canonical_encoding():
    with open(os.path.join(VECTORS, "good.json")) as handle:
        good = json.load(handle)["envelope"]
    with open(os.path.join(VECTORS, "good.signed-bytes"), "rb") as handle:
        signed = handle.read()
    unsigned = {k: v for k, v in good.items() if k != "sig"}
    assert signed == envelope.CONTEXT + canonical.encode(unsigned)
    assert list(json.loads(signed[len(envelope.CONTEXT) :])) == ["body", "exp", "key_id", "kind", "seq", "ts"]
    assert b", " not in signed and b": " not in signed  # no white space between tokens


def test_signing_refuses_what_it_could_not_verify():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    for bad in (
        {"kind": ""},
        {"sequence": -1},
        {"expires": 1.5},
    ):
        arguments = {"kind": "telemetry", "body": {}, "key": key, "key_id": "box", "timestamp": 1, "sequence": 1}
        arguments.update(bad)
        with pytest.raises(envelope.EnvelopeError):
            envelope.sign(**arguments)
    with pytest.raises(canonical.CanonicalError):
        envelope.sign("telemetry", {"t": 21.5}, key, "box", 1, 1)


@pytest.mark.parametrize("name", FILES)
def test_verifying_the_received_bytes_agrees_with_verifying_the_value(name):
    with open(os.path.join(VECTORS, name)) as handle:
        vector = json.load(handle)
    public = bytes.fromhex(vector["public_key"])
    try:
        data = canonical.encode(vector["envelope"])
    except canonical.CanonicalError:
        return
    if vector["expect"] == "ok":
        assert envelope.verify_encoded(data, public, vector["now"]) == vector["envelope"]
    else:
        with pytest.raises(envelope.EnvelopeError, match=REASONS[vector["expect"]]):
            envelope.verify_encoded(data, public, vector["now"])


def test_a_sig_member_hidden_in_the_body_does_not_fool_the_received_bytes_check():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    public = key.public_key().public_bytes_raw()
    good = envelope.sign("telemetry", {"n": 1}, key, "box", 10, 1)
    trap = ',"sig":"%s"' % good["sig"]
    forged = dict(good, body={"n": 1, "x": trap})  # the same signature over a different body
    with pytest.raises(envelope.EnvelopeError, match="does not verify"):
        envelope.verify_encoded(canonical.encode(forged), public)
    with pytest.raises(envelope.EnvelopeError, match="not an envelope"):
        envelope.verify_encoded(b'{"body": {}}', public)
    assert envelope.verify_encoded(canonical.encode(good), public) == good


def test_the_bytes_returned_with_a_signature_are_the_envelopes_canonical_encoding():
    from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

    key = Ed25519PrivateKey.generate()
    for expires in (None, 99):
        signed, encoded = envelope.sign_encoded("cmd", {"ts": 1, "z": [',"ts":']}, key, "op", 10, 2, expires)
        assert encoded == canonical.encode(signed)


def test_canonical_json_as_the_spec_states_it():
    """docs/envelope.md: code-point key order, raw UTF-8, JSON's escapes only, nesting counted by containers."""
    value = {"é": 1, "z": 2, "\U0001f600": 3, "\uff61": 4, "a/b": 'tab\there "q" \\ \x01 é'}
    encoded = canonical.encode(value)
    assert encoded == '{"a/b":"tab\\there \\"q\\" \\\\ \\u0001 é","z":2,"é":1,"｡":4,"😀":3}'.encode()
    assert canonical.decode(encoded) == value
    with pytest.raises(canonical.CanonicalError):
        canonical.decode(b'{"x":"\\u00e9"}')

    def nested(levels: int):
        value = {}
        for _ in range(levels - 1):
            value = {"a": value}
        return value

    canonical.encode(nested(16))
    for too_deep in (
        nested(17),
        {"a": nested(16)},
        [[[[[[[[[[[[[[[[[]]]]]]]]]]]]]]]]],
        [[[[[[[[[[[[[[[[[1]]]]]]]]]]]]]]]]],
    ):
        with pytest.raises(canonical.CanonicalError, match="nested deeper than 16 levels"):
            canonical.encode(too_deep)
    key = Ed25519PrivateKey.generate()
    deepest_body = envelope.sign("telemetry", nested(15), key, "box", 1, 1)  # envelope 1, body 2 ... 16
    assert canonical.decode(canonical.encode(deepest_body)) == deepest_body
    with pytest.raises(canonical.CanonicalError):
        canonical.encode(envelope.sign("telemetry", nested(16), key, "box", 1, 1))
