"""The license parser, canonical JSON and key text accept exactly their formats and refuse the rest clearly."""

import json

import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from secure_print import license
from secure_print.errors import HeaderError
from secure_print.signer_key import SignerKey
from wire import canonical, keytext
from wire.keytext import KeyTextError

DESIGNER = SignerKey.generate(keytext.DESIGNER).public_text


def good_terms() -> dict:
    return license.License(
        "0" * 32, "1" * 32, DESIGNER, ["abcdefghijklmnop"], 5, 10, 20, "2" * 64, [{"UUID": "x*"}], ["PLA"]
    ).to_json()


def test_a_license_round_trips():
    data = canonical.encode(good_terms())
    assert license.parse(data).encode() == data


@pytest.mark.parametrize(
    ("change", "problem"),
    [
        (lambda t: t.pop("title"), "missing ['title']"),
        (lambda t: t.update(extra=1), "unknown ['extra']"),
        (lambda t: t.update(max_prints=0), "max_prints must be a whole number from 1"),
        (lambda t: t.update(max_prints=True), "max_prints must be a whole number"),
        (lambda t: t.update(not_before=30), "not_before must come before not_after"),
        (lambda t: t.update(boxes=[]), "boxes is empty"),
        (lambda t: t.update(boxes=["ABC"]), "boxes holds 'ABC'"),
        (lambda t: t.update(license_id="XYZ"), "license_id must be lower-case hex"),
        (lambda t: t.update(printers=[{"COLOR": "red"}]), "each printers entry maps"),
        (lambda t: t.update(materials=["pla"]), "materials holds 'pla'"),
        (lambda t: t["policy"].update(max_hotend_c=900), "policy.max_hotend_c must be a whole number from 0 to 500"),
        (lambda t: t["policy"].update(forbidden=["G28"]), "policy.forbidden holds 'G28'"),
        (lambda t: t.update(designer="mipai-network:AAAA"), "designer:"),
        (lambda t: t.update(version=2), "license version 2 is not supported"),
    ],
)
def test_malformed_licenses_are_refused_with_the_reason(change, problem):
    terms = good_terms()
    change(terms)
    with pytest.raises(HeaderError, match="malformed") as refused:
        license.parse(canonical.encode(terms))
    assert problem in str(refused.value)


def test_non_canonical_json_is_refused():
    terms = good_terms()
    for data in (
        json.dumps(terms).encode(),  # spaces
        json.dumps(dict(reversed(terms.items())), separators=(",", ":")).encode(),  # key order
        canonical.encode(terms).replace(b'"max_prints":5', b'"max_prints":5.0'),
        b'{"a":1,"a":2}',
    ):
        with pytest.raises(HeaderError):
            license.parse(data)


@settings(max_examples=300, deadline=None)
@given(st.binary(max_size=600) | st.text(max_size=300).map(str.encode))
def test_junk_licenses_end_only_in_header_errors(junk):
    with pytest.raises(HeaderError):
        license.parse(junk)


@settings(max_examples=200, deadline=None)
@given(
    st.recursive(
        st.none() | st.booleans() | st.integers() | st.text(max_size=8),
        lambda inner: st.lists(inner, max_size=4) | st.dictionaries(st.text(max_size=5), inner, max_size=4),
        max_leaves=20,
    )
)
def test_canonical_json_round_trips(value):
    assert canonical.decode(canonical.encode(value)) == value


def test_canonical_json_refuses_deep_nesting_and_floats():
    with pytest.raises(canonical.CanonicalError):
        canonical.decode(b"[" * 5000 + b"]" * 5000)
    with pytest.raises(canonical.CanonicalError):
        canonical.encode({"t": 1.5})


def test_key_text_catches_typos_and_wrong_kinds():
    kind, raw = keytext.decode(DESIGNER, keytext.DESIGNER)
    assert keytext.encode(kind, raw) == DESIGNER
    for bad in (DESIGNER[:-1], DESIGNER.replace("mipai-designer", "mipai-network"), "hello", DESIGNER + "A"):
        with pytest.raises(KeyTextError):
            keytext.decode(bad, keytext.DESIGNER)
    assert len(keytext.box_id(bytes(32))) == 16
