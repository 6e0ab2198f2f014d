"""The binding of a box's EVM address to its Ed25519 identity: an envelope of kind `chain.address` whose body is
`{"box_id", "address"}`, signed by the box's Ed25519 key, that the network checks before it registers the address
(docs/verifier.md, "Registering a box"). Sans-I/O; addresses are lower-case `0x` + 40 hex digits."""

import re

from wire import envelope, keytext

KIND = "chain.address"
_ADDRESS = re.compile(r"0x[0-9a-f]{40}\Z")


class BindingError(ValueError):
    """A binding that is malformed, not signed by the box, or for another box."""


def normalise(address: str) -> str:
    """An EVM address in the binding's form (lower case); BindingError for anything that is not one."""
    text = address.strip().lower() if isinstance(address, str) else ""
    if not _ADDRESS.match(text):
        raise BindingError("not an EVM address (0x and 40 hex digits): %r" % str(address)[:60])
    return text


def sign(box_key, address: str, now: int) -> dict:
    """The box's signed statement that `address` is its chain identity."""
    public = box_key.public_key().public_bytes_raw()
    box_id = keytext.box_id(public)
    return envelope.sign(KIND, {"address": normalise(address), "box_id": box_id}, box_key, box_id, now, 1)


def verify(signed, box_public: bytes) -> str:
    """The address that the box with Ed25519 key `box_public` bound to itself."""
    box_id = keytext.box_id(box_public)
    try:
        body = envelope.verify(signed, box_public)
    except envelope.EnvelopeError as exc:
        raise BindingError("the address binding is not signed by box %s: %s" % (box_id, exc)) from exc
    if signed["kind"] != KIND or signed["key_id"] != box_id or body.get("box_id") != box_id:
        raise BindingError("the address binding is not a %s statement of box %s" % (KIND, box_id))
    if sorted(body) != ["address", "box_id"]:
        raise BindingError("an address binding holds exactly box_id and address")
    address = normalise(body["address"])
    if address != body["address"]:
        raise BindingError("the bound address is not in lower case")
    return address
