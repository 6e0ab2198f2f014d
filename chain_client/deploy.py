"""Deploy the box registry and the reward contract (which creates the 3DP token), and wire their roles."""

from dataclasses import dataclass

from eth_account.signers.local import LocalAccount
from web3 import Web3
from web3.contract import Contract

from chain_client import contracts
from chain_client.evm import ChainError, rpc, transact

DEFAULT_EPOCH_LENGTH = 7 * 24 * 3600  # a week, as DIMO's weekly emission
DEFAULT_EPOCH_LIMIT = 10_000_000 * 10**18  # 3DP (in token units) claims may mint per epoch


@dataclass(frozen=True)
class Deployment:
    """The three deployed contracts of one network."""

    registry: Contract
    rewards: Contract
    token: Contract

    @property
    def addresses(self) -> dict[str, str]:
        """Addresses by contract name, for a config file."""
        return {
            "BoxRegistry": self.registry.address,
            "PrintRewards": self.rewards.address,
            "ThreeDPToken": self.token.address,
        }


def bind(w3: Web3, name: str, address: str) -> Contract:
    """The contract `name` at `address`, checked to have the committed runtime code there."""
    artifact = contracts.load(name)
    code = bytes(rpc(lambda: w3.eth.get_code(Web3.to_checksum_address(address)), "reading code at %s" % address))
    if not code:
        raise ChainError("no contract at %s on this chain" % address)
    if not artifact.is_runtime_code(code):
        raise ChainError("%s at %s is not the contract this software was built with" % (name, address))
    return w3.eth.contract(address=Web3.to_checksum_address(address), abi=artifact.abi)


def attach(w3: Web3, rewards_address: str) -> Deployment:
    """The deployment whose reward contract is at `rewards_address`."""
    rewards = bind(w3, "PrintRewards", rewards_address)
    registry = bind(w3, "BoxRegistry", rewards.functions.registry().call())
    token = bind(w3, "ThreeDPToken", rewards.functions.token().call())
    return Deployment(registry, rewards, token)


def _create(w3: Web3, account: LocalAccount, name: str, *args: object) -> Contract:
    artifact = contracts.load(name)
    factory = w3.eth.contract(abi=artifact.abi, bytecode=artifact.bytecode)
    data = bytes.fromhex(factory.constructor(*args).data_in_transaction[2:])
    receipt = transact(w3, account, None, data, gas=6_000_000)
    return w3.eth.contract(address=receipt["contractAddress"], abi=artifact.abi)


def call_admin(w3: Web3, account: LocalAccount, contract: Contract, fn: str, *args: object) -> None:
    """Send one administrative call (roles, verifier set, box registration) and wait for it to succeed."""
    data = bytes.fromhex(contract.encode_abi(fn, args=list(args))[2:])
    transact(w3, account, contract.address, data, gas=500_000)


def deploy(
    w3: Web3,
    admin: LocalAccount,
    *,
    verifiers: list[str],
    k: int,
    registrar: str | None = None,
    anchorer: str | None = None,
    epoch_length: int = DEFAULT_EPOCH_LENGTH,
    epoch_limit: int = DEFAULT_EPOCH_LIMIT,
) -> Deployment:
    """Deploy all three contracts; give `registrar` REGISTRAR_ROLE and `anchorer` ANCHOR_ROLE (default: admin)."""
    registry = _create(w3, admin, "BoxRegistry", admin.address)
    rewards = _create(w3, admin, "PrintRewards", admin.address, registry.address, epoch_length, epoch_limit)
    token = w3.eth.contract(address=rewards.functions.token().call(), abi=contracts.load("ThreeDPToken").abi)
    role = registry.functions.REGISTRAR_ROLE().call()
    call_admin(w3, admin, registry, "grantRole", role, registrar or admin.address)
    call_admin(w3, admin, rewards, "grantRole", rewards.functions.ANCHOR_ROLE().call(), anchorer or admin.address)
    call_admin(w3, admin, rewards, "setVerifiers", verifiers, k)
    return Deployment(registry, rewards, token)
