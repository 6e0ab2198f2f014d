"""One way to reach an EVM: a JSON-RPC URL, or an in-process py-evm chain; errors that say who is to blame."""

import ast
import re
import time
from collections.abc import Callable
from typing import Any, TypeVar

import eth_abi
import requests
from eth_account.signers.local import LocalAccount
from eth_utils import ValidationError as EthValidationError
from web3 import Web3
from web3.exceptions import (
    ContractLogicError,
    TransactionNotFound,
    Web3Exception,
    Web3RPCError,
)

from chain_client import contracts

T = TypeVar("T")
RPC_TIMEOUT = 10.0  # seconds for one JSON-RPC request
DEFAULT_TIP = 10**9  # 1 gwei priority fee


class ChainError(Exception):
    """Root of what can go wrong talking to a chain."""


class RpcUnavailable(ChainError):
    """The node does not answer (down, restarting, unreachable): nothing is wrong with the request; retry later."""


class RpcBadAnswer(ChainError):
    """The node answered, but not as a JSON-RPC node of this chain would: the node's (or its URL's) fault."""


class SendRejected(ChainError):
    """The node refused a transaction before mining it (nonce, fee, balance): `reason` says which."""

    def __init__(self, message: str, reason: str) -> None:
        super().__init__(message)
        self.reason = reason  # "nonce too low", "underpriced", "funds", "other"


class TransactionFailed(ChainError):
    """The contract refused: mined with status 0 or refused in a call; `reason` is its decoded custom error."""

    def __init__(self, message: str, reason: str = "", receipt: Any = None) -> None:
        super().__init__(message)
        self.reason = reason
        self.receipt = receipt


def decode_revert(data: Any) -> str:
    """A contract's revert data as text, e.g. `NothingToClaim(boxKey=0x.., total=5, paid=5)`."""
    if isinstance(data, str):
        try:
            data = bytes.fromhex(data[2:] if data.startswith("0x") else data)
        except ValueError:
            return "revert data %r" % data
    if not isinstance(data, bytes | bytearray) or len(data) < 4:
        return "reverted without a reason"
    data = bytes(data)
    known = contracts.errors().get(data[:4])
    if data[:4] == bytes.fromhex("08c379a0"):  # Error(string)
        try:
            return "Error(%r)" % eth_abi.decode(["string"], data[4:])[0]
        except (eth_abi.exceptions.DecodingError, ValueError):
            return "Error(<undecodable>)"
    if known is None:
        return "unknown error 0x%s" % data.hex()
    name, names, types = known
    try:
        values = eth_abi.decode(types, data[4:])
    except (eth_abi.exceptions.DecodingError, ValueError):
        return "%s(<undecodable arguments>)" % name
    shown = ["%s=%s" % (n, "0x" + v.hex() if isinstance(v, bytes) else v) for n, v in zip(names, values, strict=True)]
    return "%s(%s)" % (name, ", ".join(shown))


def _revert_data(exc: BaseException | None) -> Any:
    """Revert data out of web3's ContractLogicError or eth-tester's TransactionFailed (raw bytes in its chain)."""
    while exc is not None:
        data = getattr(exc, "data", None)
        if data is not None:
            return data
        if exc.args and isinstance(exc.args[0], bytes):
            return exc.args[0]
        if exc.args and isinstance(exc.args[0], str):  # eth-tester: "execution reverted: b'...'"
            text = exc.args[0].removeprefix("execution reverted: ")
            if text.startswith(("b'", 'b"')):
                try:
                    return ast.literal_eval(text)
                except (ValueError, SyntaxError):
                    return None
        exc = exc.__cause__ or exc.__context__
    return None


def rpc(call: Callable[[], T], what: str) -> T:
    """Run one RPC call; map transport failures and odd answers to RpcUnavailable / RpcBadAnswer."""
    try:
        return call()
    except TransactionNotFound:
        raise
    except ContractLogicError as exc:
        reason = decode_revert(exc.data)
        raise TransactionFailed("%s: the contract refused: %s" % (what, reason), reason) from exc
    except (requests.ConnectionError, requests.Timeout, ConnectionError, TimeoutError) as exc:
        raise RpcUnavailable("%s: the chain node does not answer (%s)" % (what, type(exc).__name__)) from exc
    except Web3RPCError as exc:
        message = str(exc).lower()
        if "nonce too low" in message or "nonce is too low" in message or "already known" in message:
            raise SendRejected("%s: %s" % (what, exc), "nonce too low") from exc
        if "underpriced" in message or "fee cap" in message or "max fee per gas less" in message:
            raise SendRejected("%s: %s" % (what, exc), "underpriced") from exc
        if "insufficient funds" in message:
            raise SendRejected("%s: the sender cannot pay for gas: %s" % (what, exc), "funds") from exc
        raise RpcBadAnswer("%s: the node answered with an error: %s" % (what, exc)) from exc
    except EthValidationError as exc:  # the in-process chain refusing a transaction (it has no pool)
        found = re.search(r"nonce: Expected (\d+), but got (\d+)", str(exc))
        reason = "nonce too low" if found and int(found[2]) < int(found[1]) else "other"
        raise SendRejected("%s: %s" % (what, exc), reason) from exc
    except Exception as exc:
        if _is_tester_revert(exc):  # the in-process chain's form of a revert
            reason = decode_revert(_revert_data(exc))
            raise TransactionFailed("%s: the contract refused: %s" % (what, reason), reason) from exc
        if isinstance(exc, requests.HTTPError | ValueError | Web3Exception):
            raise RpcBadAnswer("%s: the node gave an answer that is not a JSON-RPC result: %s" % (what, exc)) from exc
        raise


def _is_tester_revert(exc: BaseException) -> bool:
    """eth-tester's TransactionFailed, told by its class so that eth-tester (0.5 s to import) is loaded only by
    the in-process chain that raises it."""
    return any(cls.__name__ == "TransactionFailed" and cls.__module__.startswith("eth_tester")
               for cls in type(exc).__mro__)  # fmt: skip


def connect(url: str, timeout: float = RPC_TIMEOUT) -> Web3:
    """A connection to the JSON-RPC node at `url` (http:// or https://), checked by asking its chain id."""
    if not url.startswith(("http://", "https://")):
        raise ChainError("the chain's RPC URL must start with http:// or https://, got %r" % url)
    provider = Web3.HTTPProvider(url, request_kwargs={"timeout": timeout}, exception_retry_configuration=None)
    w3 = Web3(provider)
    chain = rpc(lambda: w3.eth.chain_id, "asking %s for its chain id" % url)
    if not isinstance(chain, int) or chain <= 0:
        raise RpcBadAnswer("%s answered chain id %r, not a positive integer" % (url, chain))
    return w3


def in_process() -> Web3:
    """A fresh in-process chain (py-evm through eth-tester, Prague rules) with funded test accounts."""
    from eth_tester import EthereumTester, PyEVMBackend
    from web3 import EthereumTesterProvider

    return Web3(EthereumTesterProvider(EthereumTester(PyEVMBackend())))


def _tester(w3: Web3) -> Any:
    return getattr(w3.provider, "ethereum_tester", None)


def fund(w3: Web3, address: str, wei: int) -> None:
    """Give `address` `wei` on a development chain (in-process py-evm, or anvil)."""
    tester = _tester(w3)
    if tester is not None:
        receipt_hash = w3.eth.send_transaction({"from": w3.eth.accounts[0], "to": address, "value": wei})
        w3.eth.wait_for_transaction_receipt(receipt_hash)
    else:
        rpc(lambda: w3.provider.make_request("anvil_setBalance", [address, hex(wei)]), "funding %s" % address)


def advance_time(w3: Web3, seconds: int) -> None:
    """Move a development chain's clock forward and mine a block there."""
    tester = _tester(w3)
    if tester is not None:
        tester.time_travel(w3.eth.get_block("latest")["timestamp"] + seconds)
        tester.mine_blocks(1)
    else:
        rpc(lambda: w3.provider.make_request("evm_increaseTime", [seconds]), "moving the clock")
        rpc(lambda: w3.provider.make_request("evm_mine", []), "mining a block")


def fees(w3: Web3, tip: int = DEFAULT_TIP) -> tuple[int, int]:
    """EIP-1559 (maxFeePerGas, maxPriorityFeePerGas): room for the base fee to double, plus `tip`."""
    block = rpc(lambda: w3.eth.get_block("latest"), "reading the latest block")
    base = block.get("baseFeePerGas")
    if not isinstance(base, int) or base < 0:
        raise RpcBadAnswer("the latest block has no EIP-1559 base fee (%r): the chain must run London or later" % base)
    return 2 * base + tip, tip


def failure_reason(w3: Web3, tx: dict, block: int) -> str:
    """Why a mined transaction reverted: replay it as a call on the state before its block."""
    call = {k: tx[k] for k in ("from", "to", "data", "value", "gas") if k in tx}
    try:
        rpc(lambda: w3.eth.call(call, block - 1 if block > 0 else "latest"), "replaying a transaction")
    except TransactionFailed as exc:
        return exc.reason
    except ChainError as exc:
        return "unknown (the replay failed: %s)" % exc
    return "unknown (the replay succeeds on the state before the block)"


def transact(w3: Web3, account: LocalAccount, to: str | None, data: bytes, gas: int, wait: float = 60.0) -> Any:
    """Sign, send and wait for one transaction (deploys, admin calls); raise TransactionFailed on status 0."""
    max_fee, tip = fees(w3)
    tx = {
        "type": 2,
        "chainId": rpc(lambda: w3.eth.chain_id, "reading the chain id"),
        "nonce": rpc(lambda: w3.eth.get_transaction_count(account.address, "pending"), "reading the nonce"),
        "gas": gas,
        "maxFeePerGas": max_fee,
        "maxPriorityFeePerGas": tip,
        "value": 0,
        "data": data,
    }
    if to is not None:
        tx["to"] = to
    raw = account.sign_transaction(tx).raw_transaction
    tx_hash = rpc(lambda: w3.eth.send_raw_transaction(raw), "sending a transaction")
    receipt = wait_receipt(w3, tx_hash, wait)
    if receipt["status"] != 1:
        reason = failure_reason(w3, {**tx, "from": account.address}, receipt["blockNumber"])
        raise TransactionFailed("transaction %s reverted: %s" % (tx_hash.hex(), reason), reason, receipt)
    return receipt


def get_receipt(w3: Web3, tx_hash: bytes) -> Any:
    """The receipt of `tx_hash`, or None while the node knows no mined transaction of that hash."""
    try:
        return rpc(lambda: w3.eth.get_transaction_receipt(tx_hash), "reading a receipt")
    except TransactionNotFound:
        return None


def wait_receipt(w3: Web3, tx_hash: bytes, wait: float) -> Any:
    """The receipt of `tx_hash`, waiting up to `wait` seconds."""
    end = time.monotonic() + wait
    while True:
        receipt = get_receipt(w3, tx_hash)
        if receipt is not None:
            return receipt
        if time.monotonic() > end:
            raise ChainError("transaction %s was not mined within %.0f s" % (tx_hash.hex(), wait))
        time.sleep(0.05)
