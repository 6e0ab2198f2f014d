"""Pairing: the network's tool against the firmware's real keystore, run by the MicroPython unix port as the board."""

import argparse
import os
import stat
import subprocess

import pytest

from firmware_bridge import edge_pairing
from firmware_bridge.edge import attest, keystore
from fleet import cli, edge_command
from tests.test_micropython_core import ROOT, micropython


class UnixPortBoard:
    """Runs REPL code with the MicroPython unix port; `directory` plays the board's /mipai on its flash."""

    def __init__(self, directory) -> None:
        self.directory = str(directory)
        self.seen = []
        self.closed = False

    def __call__(self, code: str) -> str:
        self.seen.append(code)
        code = code.replace(repr(keystore.DIRECTORY), repr(self.directory))
        result = subprocess.run(
            [micropython(), "-c", code],
            cwd=ROOT,
            capture_output=True,
            text=True,
            timeout=60,
            env={**os.environ, "MICROPYPATH": "."},
        )
        if result.returncode:
            raise edge_pairing.PairingError("the board's REPL failed: %s" % result.stderr.strip())
        return result.stdout

    def close(self) -> None:
        self.closed = True


def test_a_bridge_is_paired_once_and_the_network_keeps_the_key(tmp_path):
    board = UnixPortBoard(tmp_path / "flash")
    bridge_id, key = edge_pairing.pair(board)
    assert bridge_id == attest.to_hex(attest.bridge_id(key))
    assert keystore.load_key(board.directory) == key
    with pytest.raises(edge_pairing.PairingError, match="paired already"):
        edge_pairing.pair(board)
    assert keystore.load_key(board.directory) == key  # the second attempt changed nothing
    keys = tmp_path / "edge-keys"
    edge_pairing.record_key(str(keys), bridge_id, key)
    assert stat.S_IMODE(keys.stat().st_mode) == 0o600
    assert edge_pairing.load_keys(str(keys)) == {bridge_id: key}
    with pytest.raises(edge_pairing.PairingError, match="already lists"):
        edge_pairing.record_key(str(keys), bridge_id, key)


def test_a_board_without_the_firmware_is_reported(tmp_path):
    with pytest.raises(edge_pairing.PairingError, match="did not answer like an edge bridge"):
        edge_pairing.check_answer("Traceback: ImportError: no module named 'firmware_bridge'", bytes(32))
    with pytest.raises(edge_pairing.PairingError, match="not "):
        edge_pairing.check_answer("PAIRED 0000000000000000", bytes(32))


def test_a_damaged_key_file_is_refused(tmp_path):
    keys = tmp_path / "edge-keys"
    keys.write_text("0011223344556677 " + "00" * 32 + "\n")
    with pytest.raises(edge_pairing.PairingError, match="line 1"):
        edge_pairing.load_keys(str(keys))


def test_the_fleet_command_pairs_and_prints_only_the_id(tmp_path, capsys):
    board = UnixPortBoard(tmp_path / "flash")
    args = argparse.Namespace(port="/dev/ttyACM0", keys=str(tmp_path / "edge-keys"))
    assert edge_command.run_pair(args, session_factory=lambda _port: board) == 0
    assert edge_command.run_pair(args, session_factory=lambda _port: board) == 2
    out, err = capsys.readouterr()
    (bridge_id,) = edge_pairing.load_keys(args.keys)
    key = edge_pairing.load_keys(args.keys)[bridge_id]
    assert "bridge %s paired" % bridge_id in out
    assert key.hex() not in out + err
    assert "paired already" in err
    assert board.closed


def test_the_fleet_command_line_names_a_missing_port(tmp_path, capsys):
    code = cli.main(["edge", "pair", str(tmp_path / "no-such-port"), "--keys", str(tmp_path / "keys")])
    assert code == 2
    assert "cannot open" in capsys.readouterr().err
    assert not (tmp_path / "keys").exists()
