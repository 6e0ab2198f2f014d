"""A verifier's certificate (`mipai-fleet ca verifier`) lets it read every box's status, telemetry, events and
receipts through a shared subscription and write only each box's rewards topic; a box writes its own receipt
and reads its own rewards. Checked on a real Mosquitto with mutual TLS, and shown to catch a permissive ACL."""

import time

import pytest

from fleet.ca import CAError, FleetCA
from provisioning import identity
from tests.daemon_process import wait_for
from tests.fleet.mutual_tls import NOW, TlsClient, box_files
from tests.mosquitto import RUN_AS, Mosquitto, free_port
from wire import topics


def _broker(ca: FleetCA, tmp_path, name: str, permissive: bool = False) -> Mosquitto:
    port = free_port()
    config = ca.broker_config(str(tmp_path / name), port, ["127.0.0.1"], NOW, RUN_AS)
    if permissive:  # what a careless ACL would give the verifier: everything
        acl = tmp_path / name / "acl"
        acl.write_text(acl.read_text().split("user verifier-")[0] + "user verifier-1\ntopic readwrite mipai/v1/#\n")
    return Mosquitto(tmp_path / name, config=config, port=port).start()


def _violations(ca: FleetCA, tmp_path, broker: Mosquitto, files: dict) -> list:
    """What the verifier managed beyond its role, and whether its role works at all."""
    ca_file = ca._path("ca.crt")
    box = TlsClient(broker.port, ca_file, *files["box"], name="box-a")
    verifier = TlsClient(broker.port, ca_file, *files["verifier"], name="verifier-1")
    operator = TlsClient(broker.port, ca_file, *files["operator"], name="fleet-ops")
    box_id = files["box_id"]
    own = {name: topics.topic(box_id, name) for name in topics.BOX_TOPICS}
    found = []
    try:
        for name in (topics.STATUS, topics.TELEMETRY, topics.EVENT, topics.RECEIPT):
            verifier.client.subscribe("$share/verifiers/%s/+/%s" % (topics.PREFIX, name), qos=1)
        verifier.client.subscribe(own[topics.COMMAND], qos=1)
        verifier.client.subscribe(own[topics.CONFIG_DESIRED], qos=1)
        box.client.subscribe(own[topics.REWARDS], qos=1)
        operator.client.subscribe("%s/#" % topics.PREFIX, qos=1)
        time.sleep(0.5)
        box.client.publish(own[topics.RECEIPT], b"receipt", qos=1)
        box.client.publish(own[topics.TELEMETRY], b"telemetry", qos=1)
        operator.client.publish(own[topics.COMMAND], b"command", qos=1)
        for name in (topics.COMMAND, topics.STATUS, topics.TELEMETRY, topics.EVENT, topics.RECEIPT,
                     topics.CONFIG_DESIRED):  # fmt: skip
            verifier.client.publish(own[name], b"verifier as " + name.encode(), qos=1)
        verifier.client.publish(own[topics.REWARDS], b"rewards", qos=1, retain=True)
        box.client.publish(own[topics.REWARDS], b"box writes its own rewards", qos=1)
        wait_for(lambda: (own[topics.REWARDS], b"rewards") in box.got(), "the rewards to reach the box", timeout=10)
        wait_for(lambda: (own[topics.RECEIPT], b"receipt") in verifier.got(), "the receipt to reach the verifier",
                 timeout=10)  # fmt: skip
        time.sleep(0.7)
        seen_by_operator = [payload for _topic, payload in operator.got()]
        found += [p.decode() for p in seen_by_operator if p.startswith(b"verifier as ")]
        if b"box writes its own rewards" in seen_by_operator:
            found.append("the box wrote its rewards")
        forbidden = (own[topics.COMMAND], own[topics.CONFIG_DESIRED])
        found += ["the verifier read %s" % t for t, _p in verifier.got() if t in forbidden]
        assert (own[topics.TELEMETRY], b"telemetry") in verifier.got()
    finally:
        for client in (box, verifier, operator):
            client.close()
    return found


@pytest.fixture
def setup(tmp_path):
    ca = FleetCA.init(str(tmp_path / "ca"), "test fleet", NOW)
    box = identity.load_or_create(str(tmp_path / "box"))
    files = {
        "box": box_files(ca, box, tmp_path / "box-tls"),
        "verifier": ca.issue_key_pair("verifier-1", str(tmp_path / "verifier"), NOW),
        "operator": ca.issue_key_pair("fleet-ops", str(tmp_path / "ops"), NOW),
        "box_id": box.box_id,
    }
    return ca, files


def test_the_verifier_can_do_no_more_than_its_role(setup, tmp_path):
    ca, files = setup
    broker = _broker(ca, tmp_path, "broker")
    try:
        assert _violations(ca, tmp_path, broker, files) == []
    finally:
        broker.stop()


def test_the_check_catches_a_permissive_acl(setup, tmp_path):
    ca, files = setup
    broker = _broker(ca, tmp_path, "loose", permissive=True)
    try:
        found = _violations(ca, tmp_path, broker, files)
    finally:
        broker.stop()
    assert "verifier as cmd" in found and "verifier as telemetry" in found and "verifier as status" in found
    assert "the verifier read %s" % topics.topic(files["box_id"], topics.COMMAND) in found


def test_verifier_names_are_checked(tmp_path):
    ca = FleetCA.init(str(tmp_path / "ca"), "test fleet", NOW)
    with pytest.raises(CAError, match="client names start with"):
        ca.issue_key_pair("someone", str(tmp_path / "x"), NOW)
    ca.issue_key_pair("verifier-2", str(tmp_path / "v"), NOW)
    assert list(ca._load("verifiers.json")) == ["verifier-2"] and "verifier-2" not in ca._load_or_empty(
        "operators.json"
    )
    ca.broker_config(str(tmp_path / "b"), free_port(), ["127.0.0.1"], NOW)
    acl = (tmp_path / "b" / "acl").read_text()
    assert "user verifier-2\ntopic read mipai/v1/+/status\n" in acl and "topic write mipai/v1/+/rewards\n" in acl
