"""The EVM key file and the deployment file are refused, with a reason, when they are missing, damaged, readable
by others or inconsistent; a good one reads back as written."""

import json
import os

import pytest

from chain_client import deployment_file
from chain_client.deployment_file import DeploymentFile, DeploymentFileError

GOOD = DeploymentFile(31337, {"BoxRegistry": "0x" + "11" * 20, "PrintRewards": "0x" + "22" * 20,
                              "ThreeDPToken": "0x" + "33" * 20}, ("0x" + "44" * 20,), 1, 604800, 10**25, 7)  # fmt: skip


def test_an_evm_key_file_is_private_and_read_back(tmp_path):
    path = str(tmp_path / "relayer.key")
    account = deployment_file.new_evm_key(path)
    assert os.stat(path).st_mode & 0o777 == 0o600 and deployment_file.load_evm_key(path).address == account.address
    with pytest.raises(DeploymentFileError, match="never overwritten"):
        deployment_file.new_evm_key(path)
    os.chmod(path, 0o644)
    with pytest.raises(DeploymentFileError, match="readable by others"):
        deployment_file.load_evm_key(path)
    (tmp_path / "zero.key").write_text("mipai-evm-key:0x" + "00" * 32)
    os.chmod(tmp_path / "zero.key", 0o600)
    with pytest.raises(DeploymentFileError, match="does not hold a 32-byte secp256k1 key"):
        deployment_file.load_evm_key(str(tmp_path / "zero.key"))
    (tmp_path / "other.key").write_text("0x" + "01" * 32)
    with pytest.raises(DeploymentFileError, match="is not an EVM key file"):
        deployment_file.load_evm_key(str(tmp_path / "other.key"))
    with pytest.raises(DeploymentFileError, match="make one: mipai-chain keygen --evm"):
        deployment_file.load_evm_key(str(tmp_path / "missing.key"))


def test_a_deployment_file_reads_back_and_a_bad_one_is_refused_with_its_fault(tmp_path):
    path = str(tmp_path / "deployment.json")
    deployment_file.write(path, GOOD)
    assert deployment_file.read(path) == DeploymentFile(**{**GOOD.__dict__, "contracts": {
        name: deployment_file.Web3.to_checksum_address(a) for name, a in GOOD.contracts.items()},
        "verifiers": tuple(deployment_file.Web3.to_checksum_address(v) for v in GOOD.verifiers)})  # fmt: skip
    with pytest.raises(DeploymentFileError, match="never overwritten"):
        deployment_file.write(path, GOOD)
    cases = {
        "k is 2 but only 1 verifiers": lambda d: d.update(k=2),
        "contracts must name exactly": lambda d: d["contracts"].pop("ThreeDPToken"),
        "PrintRewards is not an address": lambda d: d["contracts"].update(PrintRewards="0x1234"),
        "chain_id must be an integer of at least 1": lambda d: d.update(chain_id=0),
        "is not a deployment file": lambda d: d.update(format="mipai-deployment-v0"),
    }
    for fault, change in cases.items():
        data = GOOD.to_json()
        change(data)
        (tmp_path / "bad.json").write_text(json.dumps(data))
        with pytest.raises(DeploymentFileError, match=fault):
            deployment_file.read(str(tmp_path / "bad.json"))
    (tmp_path / "cut.json").write_text(json.dumps(GOOD.to_json())[:40])
    with pytest.raises(DeploymentFileError, match="is not a deployment file"):
        deployment_file.read(str(tmp_path / "cut.json"))
