"""The box's identity: an X25519 key (jobs are sealed to it), an Ed25519 key (it signs with it) and a secp256k1
key (its chain identity: an EVM address, bound to the Ed25519 key by a signed statement; the box never holds gas)."""

import functools
import os
import secrets

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from secure_print.signer_key import write_secret_file
from wire import chain_address, keytext

SIGNING_FILE = "box_ed25519.key"
SEALING_FILE = "box_x25519.key"
CHAIN_FILE = "box_secp256k1.key"
SECP256K1_ORDER = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


class IdentityError(Exception):
    """The key directory is damaged or unreadable."""


class BoxIdentity:
    def __init__(self, signing: Ed25519PrivateKey, sealing: X25519PrivateKey, chain_secret: bytes | None = None):
        self.signing = signing
        self.sealing = sealing
        self.signing_public = signing.public_key().public_bytes_raw()
        self.sealing_public = sealing.public_key().public_bytes_raw()
        self.box_id = keytext.box_id(self.signing_public)
        self._chain_secret = chain_secret

    @functools.cached_property
    def evm_address(self):
        """The box's EVM address (lower case), or None for an identity loaded without its chain key."""
        return evm_address(self._chain_secret) if self._chain_secret is not None else None

    @property
    def chain_secret(self) -> bytes:
        """The secp256k1 secret (32 bytes) behind `evm_address`; never logged or shown."""
        if self._chain_secret is None:
            raise IdentityError("this identity was loaded without its chain key")
        return self._chain_secret

    def address_binding(self, now: int) -> dict:
        """The box's signed statement binding `evm_address` to its Ed25519 key (kind chain.address)."""
        if self.evm_address is None:
            raise IdentityError("this identity was loaded without its chain key")
        return chain_address.sign(self.signing, self.evm_address, now)

    @property
    def recipient(self) -> str:
        """What a designer pastes after `mipai-seal seal --to`."""
        return keytext.encode(keytext.BOX, self.signing_public + self.sealing_public)


def load_or_create(data_dir: str) -> BoxIdentity:
    """Load the keys under `data_dir/keys`, creating both (mode 0600, directory 0700) on first start."""
    directory = os.path.join(data_dir, "keys")
    os.makedirs(directory, mode=0o700, exist_ok=True)
    signing_path = os.path.join(directory, SIGNING_FILE)
    sealing_path = os.path.join(directory, SEALING_FILE)
    if not os.path.exists(signing_path):
        # The signing key is written last: its presence means both keys are complete.
        if os.path.exists(sealing_path):
            os.unlink(sealing_path)
        for path, key in ((sealing_path, X25519PrivateKey.generate()), (signing_path, Ed25519PrivateKey.generate())):
            if os.path.exists(path + ".new"):
                os.unlink(path + ".new")
            write_secret_file(path + ".new", key.private_bytes_raw())
            os.replace(path + ".new", path)
    chain_path = os.path.join(directory, CHAIN_FILE)
    if not os.path.exists(chain_path):  # on first start, or on a box whose identity predates its chain key
        if os.path.exists(chain_path + ".new"):
            os.unlink(chain_path + ".new")
        write_secret_file(chain_path + ".new", new_chain_secret())
        os.replace(chain_path + ".new", chain_path)
    try:
        signing = _read_key(signing_path)
        sealing = _read_key(sealing_path)
        chain = _read_key(chain_path)
    except FileNotFoundError as exc:
        raise IdentityError(
            "the box key %s is missing; the identity in %s is damaged" % (exc.filename, directory)
        ) from exc
    if not 0 < int.from_bytes(chain, "big") < SECP256K1_ORDER:
        raise IdentityError("the box key %s is not a secp256k1 secret" % chain_path)
    return BoxIdentity(Ed25519PrivateKey.from_private_bytes(signing), X25519PrivateKey.from_private_bytes(sealing),
                       chain)  # fmt: skip


def new_chain_secret() -> bytes:
    """A secp256k1 secret: 32 random bytes below the curve's order (and not zero)."""
    while True:
        secret = secrets.token_bytes(32)
        if 0 < int.from_bytes(secret, "big") < SECP256K1_ORDER:
            return secret


def evm_address(secret: bytes) -> str:
    """The EVM address (lower case) of a secp256k1 secret: the last 20 bytes of Keccak-256 of its public key.
    The curve and hash libraries load only here: a box that does not show its address does not carry them."""
    import coincurve
    from Crypto.Hash import keccak

    public = coincurve.PrivateKey(secret).public_key.format(compressed=False)[1:]
    return "0x" + keccak.new(digest_bits=256, data=public).digest()[-20:].hex()


def _read_key(path: str) -> bytes:
    with open(path, "rb") as handle:
        raw = handle.read(33)
    if len(raw) != 32:
        raise IdentityError("the box key %s is damaged (%d bytes, 32 expected)" % (path, len(raw)))
    return raw
