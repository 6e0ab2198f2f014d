"""`mipai-box keys show`: the box's chain identity, an EVM address and the signed binding the network's registry
takes (`mipai-chain boxes add --binding`)."""

import json
import subprocess
import sys

from tests.users import World
from wire import chain_address, keytext


def test_keys_show_prints_the_evm_address_and_a_binding_the_registry_accepts(tmp_path):
    world = World(tmp_path)
    binding = tmp_path / "binding.json"
    shown = world.box("keys", "show", "--binding", str(binding))
    assert shown.returncode == 0, shown.stderr
    fields = {key.strip(): value.strip() for key, value in (line.split(":", 1) for line in shown.stdout.splitlines())}
    address = fields["evm address"]
    assert address.startswith("0x") and len(address) == 42
    public = keytext.decode(world.recipient, keytext.BOX)[1][:32]
    printed = json.loads(fields["address binding"])
    assert chain_address.verify(printed, public) == address
    assert chain_address.verify(json.loads(binding.read_text()), public) == address
    again = world.box("keys", "show")
    assert address in again.stdout  # the same key on every start
    owner = "0x" + "11" * 20
    added = subprocess.run([sys.executable, "-m", "chain_client.cli", "--ledger", str(tmp_path / "ledger.sqlite"),
                            "boxes", "add", "--box-key", world.recipient, "--binding", str(binding), "--owner", owner],
                           capture_output=True, text=True, timeout=60)  # fmt: skip
    assert added.returncode == 0, added.stderr
    assert "box %s registered: address %s" % (world.box_id, address) in added.stdout
