"""The box's chain identity: a secp256k1 key made with the other keys (mode 0600), its EVM address as eth-account
computes it, and a binding signed by the box's Ed25519 key that the network checks."""

import os

import pytest
from eth_account import Account

from provisioning import identity
from wire import chain_address, envelope


def test_the_chain_key_is_made_with_the_other_keys_and_kept(tmp_path):
    box = identity.load_or_create(str(tmp_path))
    path = tmp_path / "keys" / identity.CHAIN_FILE
    assert oct(os.stat(path).st_mode & 0o777) == "0o600" and len(path.read_bytes()) == 32
    assert box.evm_address == Account.from_key(box.chain_secret).address.lower()
    again = identity.load_or_create(str(tmp_path))
    assert again.evm_address == box.evm_address and again.box_id == box.box_id


def test_an_identity_from_before_the_chain_key_gains_one_and_keeps_its_box_id(tmp_path):
    box = identity.load_or_create(str(tmp_path))
    os.unlink(tmp_path / "keys" / identity.CHAIN_FILE)
    upgraded = identity.load_or_create(str(tmp_path))
    assert upgraded.box_id == box.box_id and upgraded.evm_address != box.evm_address


def test_a_damaged_chain_key_is_reported(tmp_path):
    identity.load_or_create(str(tmp_path))
    path = tmp_path / "keys" / identity.CHAIN_FILE
    os.chmod(path, 0o600)
    path.write_bytes(b"\xff" * 32)  # above the curve order: no secp256k1 secret
    with pytest.raises(identity.IdentityError, match="not a secp256k1 secret"):
        identity.load_or_create(str(tmp_path))
    path.write_bytes(b"short")
    with pytest.raises(identity.IdentityError, match="damaged"):
        identity.load_or_create(str(tmp_path))


def test_the_address_binding_verifies_only_for_its_own_box(tmp_path):
    box = identity.load_or_create(str(tmp_path / "a"))
    other = identity.load_or_create(str(tmp_path / "b"))
    binding = box.address_binding(1_800_000_000)
    assert chain_address.verify(binding, box.signing_public) == box.evm_address
    with pytest.raises(chain_address.BindingError, match="not signed by box"):
        chain_address.verify(binding, other.signing_public)
    forged = envelope.sign(chain_address.KIND, {"address": other.evm_address, "box_id": box.box_id},
                           other.signing, box.box_id, 1, 1)  # fmt: skip
    with pytest.raises(chain_address.BindingError):
        chain_address.verify(forged, box.signing_public)
    with pytest.raises(chain_address.BindingError, match="not an EVM address"):
        chain_address.normalise("0x1234")
