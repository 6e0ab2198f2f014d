"""Cumulative reward claims: the EIP-712 message k verifiers sign, one verifier's signature, collecting k of them."""

import hashlib
from collections.abc import Mapping
from dataclasses import dataclass

import coincurve
from eth_keys import keys as _eth_keys

from chain_client.merkle import keccak

DOMAIN_NAME = "MIPAI Rewards"
DOMAIN_VERSION = "1"
DOMAIN_TYPEHASH = keccak(b"EIP712Domain(string name,string version,uint256 chainId,address verifyingContract)")
CLAIM_TYPEHASH = keccak(b"Claim(bytes32 boxKey,uint256 total,uint256 deadline)")
_SECP256K1_N = 0xFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFFEBAAEDCE6AF48A03BBFD25E8CD0364141


def box_key(ed25519_public: bytes) -> bytes:
    """The box's key on chain: sha256 of its 32-byte Ed25519 public key (its box id is base32 of 10 bytes of it)."""
    if not isinstance(ed25519_public, bytes) or len(ed25519_public) != 32:
        raise ClaimError("an Ed25519 public key is 32 bytes")
    return hashlib.sha256(ed25519_public).digest()


class ClaimError(ValueError):
    """A claim or signature handed to us is malformed, or too few verifiers signed it."""


def _uint(value: int, what: str) -> bytes:
    if not isinstance(value, int) or isinstance(value, bool) or not 0 <= value < 1 << 256:
        raise ClaimError("%s must be an integer from 0 to 2**256 - 1" % what)
    return value.to_bytes(32, "big")


def _address(text: str) -> bytes:
    try:
        raw = bytes.fromhex(text[2:]) if isinstance(text, str) and text[:2] in ("0x", "0X") else b""
    except ValueError:
        raw = b""
    if len(raw) != 20:
        raise ClaimError("not an address: %r" % (text,))
    return raw


@dataclass(frozen=True)
class Domain:
    """The EIP-712 domain of one deployed reward contract."""

    chain_id: int
    contract: str  # the PrintRewards address, 0x-hex

    def separator(self) -> bytes:
        """The domain separator, as EIP712._domainSeparatorV4()."""
        return keccak(
            DOMAIN_TYPEHASH
            + keccak(DOMAIN_NAME.encode())
            + keccak(DOMAIN_VERSION.encode())
            + _uint(self.chain_id, "chain id")
            + bytes(12)
            + _address(self.contract)
        )


@dataclass(frozen=True)
class Claim:
    """A box's lifetime earned `total` (token units), claimable until `deadline` (Unix seconds)."""

    box_key: bytes
    total: int
    deadline: int

    def __post_init__(self) -> None:
        if not isinstance(self.box_key, bytes) or len(self.box_key) != 32:
            raise ClaimError("box_key must be the 32-byte sha256 of the box's Ed25519 public key")
        _uint(self.total, "total")
        _uint(self.deadline, "deadline")

    @property
    def claim_id(self) -> str:
        """One id per (box, total): the relayer sends each at most once, whatever its deadline."""
        return "claim:%s:%d" % (self.box_key.hex(), self.total)

    def struct_hash(self) -> bytes:
        """hashStruct(Claim)."""
        return keccak(CLAIM_TYPEHASH + self.box_key + _uint(self.total, "total") + _uint(self.deadline, "deadline"))

    def digest(self, domain: Domain) -> bytes:
        """The EIP-712 digest the verifiers sign: keccak256(0x1901 || domain separator || hashStruct)."""
        return keccak(b"\x19\x01" + domain.separator() + self.struct_hash())

    def typed_data(self, domain: Domain) -> dict:
        """The claim as EIP-712 typed data (for wallets and eth_signTypedData_v4)."""
        return {
            "types": {
                "EIP712Domain": [
                    {"name": "name", "type": "string"},
                    {"name": "version", "type": "string"},
                    {"name": "chainId", "type": "uint256"},
                    {"name": "verifyingContract", "type": "address"},
                ],
                "Claim": [
                    {"name": "boxKey", "type": "bytes32"},
                    {"name": "total", "type": "uint256"},
                    {"name": "deadline", "type": "uint256"},
                ],
            },
            "primaryType": "Claim",
            "domain": {
                "name": DOMAIN_NAME,
                "version": DOMAIN_VERSION,
                "chainId": domain.chain_id,
                "verifyingContract": domain.contract,
            },
            "message": {"boxKey": "0x" + self.box_key.hex(), "total": self.total, "deadline": self.deadline},
        }


class VerifierKey:
    """One verifier's (oracle's) secp256k1 key, which co-signs claims."""

    def __init__(self, private_key: bytes) -> None:
        if len(private_key) != 32 or not 0 < int.from_bytes(private_key, "big") < _SECP256K1_N:
            raise ClaimError("a verifier key is 32 bytes, a secp256k1 scalar")
        self._key = coincurve.PrivateKey(private_key)
        self.address = _eth_keys.PrivateKey(private_key).public_key.to_checksum_address()

    def __repr__(self) -> str:
        return "VerifierKey(%s)" % self.address  # never the secret

    def sign(self, claim: Claim, domain: Domain) -> bytes:
        """65 bytes r || s || v (v = 27 or 28), low s, as ECDSA.recover expects."""
        signature = self._key.sign_recoverable(claim.digest(domain), hasher=None)
        return signature[:64] + bytes([27 + signature[64]])


def recover(claim: Claim, domain: Domain, signature: bytes) -> str:
    """The checksum address that made `signature` over the claim."""
    if len(signature) != 65 or signature[64] not in (27, 28):
        raise ClaimError("a signature is 65 bytes r || s || v with v 27 or 28")
    if int.from_bytes(signature[32:64], "big") > _SECP256K1_N // 2:
        raise ClaimError("signature has a high s (malleable): the contract refuses it")
    try:
        public = coincurve.PublicKey.from_signature_and_message(
            signature[:64] + bytes([signature[64] - 27]), claim.digest(domain), hasher=None
        )
    except ValueError as exc:
        raise ClaimError("signature does not recover a key: %s" % exc) from exc
    return _eth_keys.PublicKey(public.format(compressed=False)[1:]).to_checksum_address()


@dataclass(frozen=True)
class SignedClaim:
    """A claim with the signatures the contract needs, ordered by signer address ascending."""

    claim: Claim
    signatures: tuple[bytes, ...]


def collect(claim: Claim, domain: Domain, signatures: Mapping[str, bytes], verifiers: list[str], k: int) -> SignedClaim:
    """Check each signature against its claimed signer and the verifier set; keep k, in the contract's order."""
    known = {address.lower() for address in verifiers}
    good: dict[str, bytes] = {}
    for address, signature in signatures.items():
        signer = recover(claim, domain, signature)
        if signer.lower() != address.lower():
            raise ClaimError("the signature said to be from %s was made by %s" % (address, signer))
        if signer.lower() not in known:
            raise ClaimError("%s is not one of the verifier keys" % signer)
        good[signer.lower()] = signature
    if len(good) < k:
        raise ClaimError("%d distinct verifier signatures, %d needed" % (len(good), k))
    chosen = sorted(good)[:k]
    return SignedClaim(claim, tuple(good[address] for address in chosen))
