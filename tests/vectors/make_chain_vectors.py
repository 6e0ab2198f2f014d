"""Write the chain test vectors (docs/chain.md) from implementations other than ours: Merkle trees from
@openzeppelin/merkle-tree (node), EIP-712 claim digests and signatures from eth-account. Deterministic.

python tests/vectors/make_chain_vectors.py   (needs `npm ci` first)
"""

import hashlib
import json
import os
import subprocess

from eth_account import Account
from eth_account.messages import encode_typed_data

ROOT = os.path.dirname(os.path.dirname(os.path.dirname(os.path.abspath(__file__))))
HERE = os.path.join(ROOT, "tests", "vectors", "chain")
OZ = os.path.join(ROOT, "tests", "chain_client", "onchain", "oz_merkle.js")


def h(text: str) -> str:
    return "0x" + hashlib.sha256(text.encode()).hexdigest()


def merkle_case(name: str, values: list[list[str]]) -> dict:
    out = json.loads(
        subprocess.run(
            ["node", OZ], input=json.dumps({"values": values, "dump": None}), capture_output=True, text=True, check=True
        ).stdout
    )
    tree = out["dump"]["tree"]
    leaf_hashes = [tree[v["treeIndex"]] for v in out["dump"]["values"]]
    return {"name": name, "values": values, "leaf_hashes": leaf_hashes, "root": out["root"], "proofs": out["proofs"]}


def claim_case(chain_id: int, contract: str, box_key: str, total: int, deadline: int, key: bytes) -> dict:
    data = {
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
        "domain": {"name": "MIPAI Rewards", "version": "1", "chainId": chain_id, "verifyingContract": contract},
        "message": {"boxKey": box_key, "total": total, "deadline": deadline},
    }
    message = encode_typed_data(full_message=data)
    signed = Account.sign_message(message, key)
    return {
        "chain_id": chain_id,
        "contract": contract,
        "box_key": box_key,
        "total": str(total),
        "deadline": deadline,
        "domain_separator": "0x" + message.header.hex(),
        "digest": "0x" + bytes(signed.message_hash).hex(),
        "verifier_key": "0x" + key.hex(),
        "verifier_address": Account.from_key(key).address,
        "signature": "0x" + bytes(signed.signature).hex(),
    }


def main() -> None:
    # The box key of the Ed25519 public key 32 x 0x01: sha256 of those bytes.
    box_a = "0x" + hashlib.sha256(bytes([1]) * 32).hexdigest()
    box_b = "0x" + hashlib.sha256(bytes([2]) * 32).hexdigest()
    token = 10**18
    merkle = {
        "leaf_encoding": ["bytes32", "bytes32", "uint256"],
        "cases": [
            merkle_case("one receipt", [[h("receipt 1"), box_a, str(3 * token)]]),
            merkle_case("two receipts", [[h("receipt 1"), box_a, str(3 * token)], [h("receipt 2"), box_b, "0"]]),
            merkle_case(
                "five receipts, one failed print (reward 0)",
                [[h("receipt %d" % i), box_a if i % 2 else box_b, str(i * token // 2)] for i in range(5)],
            ),
        ],
    }
    contract = "0x5FbDB2315678afecb367f032d93F642f64180aa3"
    keys = [bytes([i + 1]) * 32 for i in range(2)]
    claims = {
        "cases": [
            claim_case(31337, contract, box_a, 12 * token, 1_800_000_000, keys[0]),
            claim_case(31337, contract, box_a, 12 * token, 1_800_000_000, keys[1]),
            claim_case(8453, contract, box_b, 1, 1_900_000_000, keys[0]),
        ]
    }
    box_keys = {
        "cases": [
            {"ed25519_public": "0x" + (bytes([1]) * 32).hex(), "box_key": box_a},
            {"ed25519_public": "0x" + (bytes([2]) * 32).hex(), "box_key": box_b},
        ]
    }
    for name, value in (("merkle", merkle), ("claims", claims), ("box_keys", box_keys)):
        with open(os.path.join(HERE, name + ".json"), "w") as handle:
            json.dump(value, handle, indent=1, sort_keys=True)
            handle.write("\n")


if __name__ == "__main__":
    main()
