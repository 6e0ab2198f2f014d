"""The compiled reward contracts (ABI and bytecode in build/, written by compile.js) and their custom errors."""

import json
from dataclasses import dataclass
from functools import cache
from importlib import resources

from chain_client.merkle import keccak

NAMES = ("ThreeDPToken", "BoxRegistry", "PrintRewards")


@dataclass(frozen=True)
class Artifact:
    """One compiled contract."""

    name: str
    abi: list
    bytecode: bytes
    deployed_bytecode: bytes
    immutable_ranges: tuple[tuple[int, int], ...]
    compiler: dict

    def is_runtime_code(self, code: bytes) -> bool:
        """Whether `code` (read from a chain) is this contract's runtime code, whatever its immutables hold."""
        if len(code) != len(self.deployed_bytecode):
            return False
        mine, theirs = bytearray(self.deployed_bytecode), bytearray(code)
        for start, length in self.immutable_ranges:
            mine[start : start + length] = theirs[start : start + length] = bytes(length)
        return mine == theirs


@cache
def load(name: str) -> Artifact:
    """The committed artifact of contract `name`."""
    if name not in NAMES:
        raise KeyError("no contract %r; there are %s" % (name, ", ".join(NAMES)))
    data = json.loads(resources.files(__package__).joinpath("build", name + ".json").read_text())
    return Artifact(
        name,
        data["abi"],
        bytes.fromhex(data["bytecode"][2:]),
        bytes.fromhex(data["deployedBytecode"][2:]),
        tuple((start, length) for start, length in data["immutableRanges"]),
        data["compiler"],
    )


@cache
def errors() -> dict[bytes, tuple[str, list[str], list[str]]]:
    """Custom errors of all three contracts by 4-byte selector: (name, argument names, argument types)."""
    table = {}
    for name in NAMES:
        for item in load(name).abi:
            if item["type"] == "error":
                types = [arg["type"] for arg in item["inputs"]]
                selector = keccak(("%s(%s)" % (item["name"], ",".join(types))).encode())[:4]
                table[selector] = (item["name"], [arg["name"] for arg in item["inputs"]], types)
    return table
