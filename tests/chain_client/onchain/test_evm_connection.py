"""Connections: bad URLs, absent nodes and nodes that answer nonsense give errors that say whose fault it is."""

import http.server
import json
import threading

import pytest

from chain_client import deploy, evm
from tests.chain_client.onchain.conftest import free_port


class Nonsense(http.server.BaseHTTPRequestHandler):
    """An HTTP server that is not a JSON-RPC node (or is one of a chain with id 0)."""

    answer = b"<html>hello</html>"

    def do_POST(self) -> None:
        self.rfile.read(int(self.headers["Content-Length"]))
        self.send_response(200)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(self.answer)))
        self.end_headers()
        self.wfile.write(self.answer)

    def log_message(self, *args) -> None:
        pass


@pytest.fixture
def nonsense_server():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Nonsense)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        yield server
    finally:
        server.shutdown()
        server.server_close()


def test_a_url_that_is_not_http_is_refused():
    with pytest.raises(evm.ChainError, match="must start with http:// or https://"):
        evm.connect("localhost:8545")


def test_a_node_that_is_not_there_is_unavailable_not_broken():
    with pytest.raises(evm.RpcUnavailable, match="does not answer"):
        evm.connect("http://127.0.0.1:%d" % free_port(), timeout=2)


def test_a_server_that_is_not_a_json_rpc_node_is_a_bad_answer(nonsense_server, monkeypatch):
    url = "http://127.0.0.1:%d" % nonsense_server.server_address[1]
    with pytest.raises(evm.RpcBadAnswer):
        evm.connect(url, timeout=2)
    monkeypatch.setattr(Nonsense, "answer", json.dumps({"jsonrpc": "2.0", "id": 0, "result": "0x0"}).encode())
    with pytest.raises(evm.RpcBadAnswer, match="chain id 0"):
        evm.connect(url, timeout=2)


def test_revert_data_is_decoded_by_name_or_said_to_be_unknown():
    assert evm.decode_revert("0x") == "reverted without a reason"
    assert evm.decode_revert("0xdeadbeef") == "unknown error 0xdeadbeef"
    error_string = "08c379a0" + (32).to_bytes(32, "big").hex() + (2).to_bytes(32, "big").hex() + b"no".hex() + "00" * 30
    assert evm.decode_revert(bytes.fromhex(error_string)) == "Error('no')"


def test_a_contract_address_with_other_code_is_refused():
    w3 = evm.in_process()
    with pytest.raises(evm.ChainError, match="no contract at"):
        deploy.attach(w3, w3.eth.accounts[1])


def test_a_deployment_is_found_again_from_its_reward_contract_address(network):
    assert deploy.attach(network.w3, network.rewards.address).addresses == network.deployment.addresses
    with pytest.raises(evm.ChainError, match=r"PrintRewards at .* is not the contract"):
        deploy.bind(network.w3, "PrintRewards", network.deployment.registry.address)
