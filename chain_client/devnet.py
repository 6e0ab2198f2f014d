"""A development network on one chain: the contracts deployed, a funded admin holding every role, k-of-n verifier
keys, and helpers to register boxes and sign claims. For the demo (in process) and the tests (py-evm and anvil)."""

import hashlib
import secrets
from dataclasses import dataclass, field
from typing import Any

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from chain_client import claims, deploy, evm


@dataclass
class Network:
    """The three contracts deployed on one chain, with the keys of the network's roles."""

    w3: Web3
    admin: LocalAccount
    verifiers: list[claims.VerifierKey]
    deployment: deploy.Deployment
    k: int = 2
    boxes: dict[bytes, str] = field(default_factory=dict)

    @property
    def rewards(self) -> Contract:
        """The PrintRewards contract."""
        return self.deployment.rewards

    @property
    def token(self) -> Contract:
        """The 3DP token."""
        return self.deployment.token

    @property
    def domain(self) -> claims.Domain:
        """The EIP-712 domain claims are signed in."""
        return claims.Domain(self.w3.eth.chain_id, self.rewards.address)

    def now(self) -> int:
        """The chain's time: its latest block's timestamp."""
        return self.w3.eth.get_block("latest")["timestamp"]

    def register(self, name: str) -> tuple[bytes, str]:
        """Register a made-up box (boxKey = sha256 of `name`) with a fresh owner; return both."""
        return self.register_box(hashlib.sha256(name.encode()).digest(), Account.create().address)

    def register_box(self, box_key: bytes, owner: str, device: str | None = None) -> tuple[bytes, str]:
        """Register the box `box_key` (see claims.box_key) paying `owner`; return both."""
        device = device or Account.create().address
        deploy.call_admin(self.w3, self.admin, self.deployment.registry, "registerBox", box_key, device, owner)
        self.boxes[box_key] = owner
        return box_key, owner

    def sign(self, box_key: bytes, total: int, deadline: int | None = None, signers=None) -> claims.SignedClaim:
        """A claim signed by `signers` (default: the first k verifiers), in the contract's order."""
        claim = claims.Claim(box_key, total, deadline if deadline is not None else self.now() + 3600)
        chosen = signers if signers is not None else self.verifiers[: self.k]
        signatures = {v.address: v.sign(claim, self.domain) for v in chosen}
        return claims.collect(claim, self.domain, signatures, [v.address for v in chosen], len(chosen))

    def claim_data(self, signed: claims.SignedClaim, signatures: list[bytes] | None = None) -> bytes:
        """Calldata of `claim` (with `signatures` instead of the claim's own, to test refusals)."""
        c = signed.claim
        args = [c.box_key, c.total, c.deadline, list(signatures if signatures is not None else signed.signatures)]
        return bytes.fromhex(self.rewards.encode_abi("claim", args=args)[2:])

    def claim(self, signed: claims.SignedClaim, signatures: list[bytes] | None = None) -> Any:
        """Send the claim from the admin account (any sender may); the receipt, or TransactionFailed."""
        return evm.transact(self.w3, self.admin, self.rewards.address, self.claim_data(signed, signatures), 300_000)

    def balance(self, owner: str) -> int:
        """3DP (token units) held by `owner`."""
        return self.token.functions.balanceOf(owner).call()


def make_network(w3: Web3, verifier_keys: list[bytes] | None = None, **settings) -> Network:
    """Deploy on a development chain `w3` with a fresh funded admin and three verifier keys (k = 2)."""
    admin = Account.create()
    evm.fund(w3, admin.address, 10**22)
    keys = verifier_keys or [secrets.token_bytes(32) for _ in range(3)]
    verifiers = [claims.VerifierKey(key) for key in keys]
    deployment = deploy.deploy(w3, admin, verifiers=[v.address for v in verifiers], k=2, **settings)
    return Network(w3, admin, verifiers, deployment)
