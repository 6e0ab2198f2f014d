"""The network's files outside the ledger: the relayer's (and verifier's) EVM key file, and the deployment file
that names one deployment of the contracts on one chain (docs/chain.md, "Deployment file"). Both are read with
checks that say what is wrong with a bad, foreign or damaged file."""

import json
import os
from dataclasses import dataclass

from eth_account import Account
from eth_account.signers.local import LocalAccount
from web3 import Web3

from chain_client import claims, deploy, evm
from secure_print.signer_key import write_secret_file

FORMAT = "mipai-deployment-v1"
EVM_KEY_PREFIX = "mipai-evm-key:"
CONTRACT_NAMES = ("BoxRegistry", "PrintRewards", "ThreeDPToken")


class DeploymentFileError(ValueError):
    """A deployment or key file that cannot be used; the message names the file and the fault."""


def new_evm_key(path: str) -> LocalAccount:
    """Write a fresh secp256k1 key to `path` (mode 0600, never overwriting); return its account."""
    account = Account.create()
    try:
        write_secret_file(path, ("%s0x%s\n" % (EVM_KEY_PREFIX, bytes(account.key).hex())).encode())
    except FileExistsError:
        raise DeploymentFileError("%s exists; a key file is never overwritten" % path) from None
    return account


def load_evm_key(path: str) -> LocalAccount:
    """The account of the EVM key file `path` (as `mipai-chain keygen --evm` writes it)."""
    try:
        with open(path) as handle:
            text = handle.read(200).strip()
    except FileNotFoundError:
        hint = "make one: mipai-chain keygen --evm -o %s" % path
        raise DeploymentFileError("no EVM key at %s (%s)" % (path, hint)) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise DeploymentFileError("cannot read the EVM key %s: %s" % (path, exc)) from exc
    if not text.startswith(EVM_KEY_PREFIX + "0x"):
        raise DeploymentFileError("%s is not an EVM key file (it starts with %s0x)" % (path, EVM_KEY_PREFIX))
    try:
        secret = bytes.fromhex(text[len(EVM_KEY_PREFIX) + 2 :])
    except ValueError:
        secret = b""
    try:
        claims.VerifierKey(secret)  # the one check of a secp256k1 secret
    except claims.ClaimError:
        raise DeploymentFileError("%s does not hold a 32-byte secp256k1 key" % path) from None
    if os.stat(path).st_mode & 0o077:
        raise DeploymentFileError("%s is readable by others (chmod 600 it): a key file is the owner's only" % path)
    return Account.from_key(secret)


def verifier_key(path: str) -> claims.VerifierKey:
    """The same key file as a verifier's claim-signing key."""
    return claims.VerifierKey(bytes(load_evm_key(path).key))


@dataclass(frozen=True)
class DeploymentFile:
    """One deployment: the chain's id, the three contract addresses, the verifier set and the epoch settings."""

    chain_id: int
    contracts: dict  # name -> checksum address
    verifiers: tuple  # checksum addresses
    k: int
    epoch_length: int
    epoch_limit: int
    block: int  # the block the reward contract was created in

    @property
    def rewards(self) -> str:
        return self.contracts["PrintRewards"]

    @property
    def domain(self) -> claims.Domain:
        """The EIP-712 domain claims of this deployment are signed in."""
        return claims.Domain(self.chain_id, self.rewards)

    def to_json(self) -> dict:
        return {"format": FORMAT, "chain_id": self.chain_id, "contracts": dict(self.contracts),
                "verifiers": list(self.verifiers), "k": self.k, "epoch_length": self.epoch_length,
                "epoch_limit": str(self.epoch_limit), "block": self.block}  # fmt: skip


def describe(w3: Web3, deployment: deploy.Deployment, block: int = 0) -> DeploymentFile:
    """The deployment file of `deployment`, read back from the chain."""
    rewards = deployment.rewards.functions
    keys, k = evm.rpc(lambda: rewards.verifiers().call(), "reading the verifier set")
    return DeploymentFile(
        chain_id=evm.rpc(lambda: w3.eth.chain_id, "reading the chain id"),
        contracts=deployment.addresses,
        verifiers=tuple(Web3.to_checksum_address(key) for key in keys),
        k=k,
        epoch_length=evm.rpc(lambda: rewards.epochLength().call(), "reading the epoch length"),
        epoch_limit=evm.rpc(lambda: rewards.epochLimit().call(), "reading the epoch limit"),
        block=block,
    )


def write(path: str, described: DeploymentFile) -> None:
    """Write the deployment file (refusing to overwrite one: it names contracts that hold money)."""
    try:
        with open(path, "x") as handle:
            json.dump(described.to_json(), handle, indent=1)
            handle.write("\n")
    except FileExistsError:
        raise DeploymentFileError("%s exists; a deployment file is never overwritten" % path) from None


def _int(data: dict, name: str, path: str, low: int = 0) -> int:
    value = data.get(name)
    if isinstance(value, str) and value.isdigit():
        value = int(value)
    if not isinstance(value, int) or isinstance(value, bool) or value < low:
        raise DeploymentFileError("%s: %s must be an integer of at least %d" % (path, name, low))
    return value


def _address(value, what: str, path: str) -> str:
    if not isinstance(value, str) or not Web3.is_address(value):
        raise DeploymentFileError("%s: %s is not an address: %r" % (path, what, value))
    return Web3.to_checksum_address(value)


def read(path: str) -> DeploymentFile:
    """The deployment file at `path`, checked for form (not yet against a chain: see `attach`)."""
    try:
        with open(path) as handle:
            data = json.load(handle)
    except FileNotFoundError:
        raise DeploymentFileError("no deployment file at %s (make one: mipai-chain deploy)" % path) from None
    except (OSError, UnicodeDecodeError, ValueError) as exc:
        raise DeploymentFileError("%s is not a deployment file: %s" % (path, exc)) from exc
    if not isinstance(data, dict) or data.get("format") != FORMAT:
        raise DeploymentFileError("%s is not a deployment file (format %s)" % (path, FORMAT))
    found = data.get("contracts")
    if not isinstance(found, dict) or set(found) != set(CONTRACT_NAMES):
        raise DeploymentFileError("%s: contracts must name exactly %s" % (path, ", ".join(CONTRACT_NAMES)))
    contracts = {name: _address(found[name], name, path) for name in CONTRACT_NAMES}
    verifiers = data.get("verifiers")
    if not isinstance(verifiers, list) or not verifiers:
        raise DeploymentFileError("%s: verifiers must be a list of addresses" % path)
    keys = tuple(_address(v, "a verifier", path) for v in verifiers)
    k = _int(data, "k", path, 1)
    if k > len(keys):
        raise DeploymentFileError("%s: k is %d but only %d verifiers are named" % (path, k, len(keys)))
    return DeploymentFile(_int(data, "chain_id", path, 1), contracts, keys, k, _int(data, "epoch_length", path, 1),
                          _int(data, "epoch_limit", path, 1), _int(data, "block", path))  # fmt: skip


def attach(w3: Web3, described: DeploymentFile, path: str = "the deployment file") -> deploy.Deployment:
    """The contracts of `described` on `w3`, refused when the node is another chain or the code is not ours."""
    chain_id = evm.rpc(lambda: w3.eth.chain_id, "reading the chain id")
    if chain_id != described.chain_id:
        raise DeploymentFileError("%s is for chain %d, but the node is chain %d" % (path, described.chain_id,
                                  chain_id))  # fmt: skip
    try:
        deployment = deploy.attach(w3, described.rewards)
    except evm.ChainError as exc:
        raise DeploymentFileError("%s does not match this chain: %s" % (path, exc)) from exc
    if deployment.addresses != described.contracts:
        raise DeploymentFileError("%s names contracts the reward contract on chain does not use" % path)
    return deployment
