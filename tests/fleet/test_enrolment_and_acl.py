"""Enrolment with the fleet CA and the broker's mutual TLS and ACL: a box gets a certificate for its own identity
only, and a real Mosquitto (configured by `mipai-fleet ca broker`) keeps each box to its own topics."""

import datetime
import os
import ssl
import subprocess
import sys
import time

import paho.mqtt.client as mqtt
import pytest
from cryptography import x509
from cryptography.hazmat.primitives import serialization
from cryptography.x509.oid import AttributeOID, NameOID

from fleet.ca import CAError, FleetCA
from provisioning import enrolment, identity
from tests.daemon_process import Daemon, wait_for
from tests.fleet.mutual_tls import NOW, TlsClient, box_files
from tests.mosquitto import RUN_AS, Mosquitto, free_port
from tests.users import World
from wire import topics


@pytest.fixture
def ca(tmp_path):
    return FleetCA.init(str(tmp_path / "ca"), "test fleet", NOW)


def box_at(path) -> identity.BoxIdentity:
    return identity.load_or_create(str(path))


def test_no_enrolment_token_reads_as_a_command_line_option(ca):
    """The owner types the token after `mipai-box enrol request --token`; one starting with "-" was an option."""
    tokens = [ca.new_token(NOW) for _ in range(400)]  # with the old tokens, 1 in 64 began with "-"
    assert not [token for token in tokens if token.startswith("-")]
    assert len(set(tokens)) == 400


def test_a_box_is_enrolled_under_its_own_identity_only(ca, tmp_path):
    box_a, box_b = box_at(tmp_path / "a"), box_at(tmp_path / "b")
    token = ca.new_token(NOW)
    certificate = ca.enrol(enrolment.make_request(box_a, token, "ABCD-EFGH"), NOW)
    assert enrolment.check_certificate(box_a, certificate, ca.certificate.public_bytes(serialization.Encoding.PEM))
    assert ca.boxes()[box_a.box_id]["claim_code"] == "ABCD-EFGH"

    with pytest.raises(CAError, match="already used"):  # one token, one box
        ca.enrol(enrolment.make_request(box_b, token, "X"), NOW)
    with pytest.raises(CAError, match="not one this CA issued"):
        ca.enrol(enrolment.make_request(box_b, "guessed-token", "X"), NOW)
    late = ca.new_token(NOW, hours=1)
    with pytest.raises(CAError, match="expired"):
        ca.enrol(enrolment.make_request(box_b, late, "X"), NOW + datetime.timedelta(hours=2))

    # Box B asks, with its own key and a good token, for a certificate naming box A: refused.
    forged = (
        x509.CertificateSigningRequestBuilder()
        .subject_name(x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, box_a.box_id)]))
        .add_attribute(AttributeOID.CHALLENGE_PASSWORD, ca.new_token(NOW).encode())
        .add_attribute(AttributeOID.UNSTRUCTURED_NAME, b"X")
        .sign(box_b.signing, None)
        .public_bytes(serialization.Encoding.PEM)
    )
    with pytest.raises(enrolment.EnrolmentError, match="not the id of its own key"):
        ca.enrol(forged, NOW)
    with pytest.raises(enrolment.EnrolmentError, match="not a certificate signing request"):
        ca.enrol(b"-----BEGIN CERTIFICATE REQUEST-----\njunk\n-----END CERTIFICATE REQUEST-----\n", NOW)

    # Box B cannot install box A's certificate, nor one from another CA.
    with pytest.raises(enrolment.EnrolmentError, match="not for this box's key"):
        enrolment.check_certificate(box_b, certificate, ca.certificate.public_bytes(serialization.Encoding.PEM))
    other = FleetCA.init(str(tmp_path / "other-ca"), "other", NOW)
    with pytest.raises(enrolment.EnrolmentError, match="not issued by that fleet CA"):
        enrolment.check_certificate(box_a, certificate, other.certificate.public_bytes(serialization.Encoding.PEM))


@pytest.fixture
def tls_broker(ca, tmp_path):
    port = free_port()
    operator_cert, operator_key = ca.issue_key_pair("fleet-ops", str(tmp_path / "ops"), NOW)
    config = ca.broker_config(str(tmp_path / "broker"), port, ["127.0.0.1"], NOW, RUN_AS)
    broker = Mosquitto(tmp_path / "broker", config=config, port=port).start()
    yield broker, (ca._path("ca.crt"), operator_cert, operator_key)
    broker.stop()


def test_the_broker_keeps_each_box_to_its_own_topics(ca, tls_broker, tmp_path):
    broker, (ca_file, operator_cert, operator_key) = tls_broker
    box_a, box_b = box_at(tmp_path / "a"), box_at(tmp_path / "b")
    a = TlsClient(broker.port, ca_file, *box_files(ca, box_a, tmp_path / "a-tls"), name="box-a")
    b = TlsClient(broker.port, ca_file, *box_files(ca, box_b, tmp_path / "b-tls"), name="box-b")
    operator = TlsClient(broker.port, ca_file, operator_cert, operator_key, name="fleet-ops")
    try:
        b.client.subscribe(topics.topic(box_b.box_id, topics.COMMAND), qos=1)
        a.client.subscribe(topics.topic(box_b.box_id, topics.TELEMETRY), qos=1)
        a.client.subscribe("%s/#" % topics.PREFIX, qos=1)
        operator.client.subscribe("%s/#" % topics.PREFIX, qos=1)
        time.sleep(0.5)
        a.client.publish(topics.topic(box_b.box_id, topics.COMMAND), b"from a", qos=1)
        a.client.publish(topics.topic(box_b.box_id, topics.TELEMETRY), b"a as b", qos=1)
        a.client.publish(topics.topic(box_b.box_id, topics.STATUS), b"a as b", qos=1, retain=True)
        a.client.publish(topics.topic(box_a.box_id, topics.COMMAND), b"a to itself", qos=1)
        b.client.publish(topics.topic(box_b.box_id, topics.TELEMETRY), b"b's own", qos=1)
        operator.client.publish(topics.topic(box_b.box_id, topics.COMMAND), b"from the operator", qos=1)
        wait_for(lambda: (topics.topic(box_b.box_id, topics.COMMAND), b"from the operator") in b.got(),
                 "the operator's command to reach box b", timeout=10)  # fmt: skip
        wait_for(lambda: (topics.topic(box_b.box_id, topics.TELEMETRY), b"b's own") in operator.got(),
                 "box b's telemetry to reach the operator", timeout=10)  # fmt: skip
        time.sleep(0.5)
        assert b.got() == [(topics.topic(box_b.box_id, topics.COMMAND), b"from the operator")]
        assert a.got() == []  # box a reads nothing of box b's, nor the wildcard
        payloads = [payload for _topic, payload in operator.got()]
        assert b"a as b" not in payloads and b"from a" not in payloads and b"a to itself" not in payloads
    finally:
        for client in (a, b, operator):
            client.close()

    anonymous = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
    anonymous.tls_set(ca_certs=ca_file)
    with pytest.raises((ssl.SSLError, OSError)):
        anonymous.connect("127.0.0.1", broker.port)
        for _ in range(20):
            anonymous.loop(0.1)
            if not anonymous.is_connected() and _ > 5:
                raise OSError("not admitted")


def run_cli(*args: str, cwd=None) -> subprocess.CompletedProcess:
    env = dict(os.environ)
    return subprocess.run([sys.executable, "-m", *args], capture_output=True, text=True, cwd=cwd, env=env, timeout=60)


def test_a_box_enrolled_through_the_command_lines_reports_over_mutual_tls(tmp_path):
    world = World(tmp_path)
    ca_dir, ops_dir, broker_dir = tmp_path / "ca", tmp_path / "ops", tmp_path / "broker"
    assert run_cli("fleet.cli", "ca", "init", "--dir", str(ca_dir)).returncode == 0
    token = run_cli("fleet.cli", "ca", "token", "--dir", str(ca_dir)).stdout.splitlines()[-1]
    request = tmp_path / "box.csr"
    made = world.box("enrol", "request", "--token=" + token, "-o", str(request))  # a token may begin with "-"
    assert made.returncode == 0, made.stderr
    issued = run_cli("fleet.cli", "enroll", str(request), "--dir", str(ca_dir), "-o", str(tmp_path / "box.crt"))
    assert issued.returncode == 0, issued.stderr
    again = run_cli("fleet.cli", "enroll", str(request), "--dir", str(ca_dir), "-o", str(tmp_path / "again.crt"))
    assert again.returncode == 2 and "already used" in again.stderr and not (tmp_path / "again.crt").exists()
    installed = world.box("enrol", "install", str(tmp_path / "box.crt"), "--ca", str(ca_dir / "ca.crt"))
    assert installed.returncode == 0, installed.stderr
    assert oct(os.stat(world.data_dir / "fleet" / "box.key").st_mode & 0o777) == "0o600"
    assert run_cli("fleet.cli", "ca", "operator", "fleet-ops", "--dir", str(ca_dir), "-o", str(ops_dir)).returncode == 0
    port = free_port()
    made_broker = run_cli("fleet.cli", "ca", "broker", "--dir", str(ca_dir), "-o", str(broker_dir), "--port",
                          str(port), *(["--user", RUN_AS] if RUN_AS else []))  # fmt: skip
    assert made_broker.returncode == 0, made_broker.stderr
    broker = Mosquitto(broker_dir, config=broker_dir / "mosquitto.conf", port=port).start()
    daemon = Daemon(world, "/dev/null-no-printer")
    with open(daemon.config, "a") as config:
        config.write('[fleet]\nbroker_host = "127.0.0.1"\nbroker_port = %d\ntls = true\n' % port)
    daemon.start()
    try:
        tls = ["--broker-port", str(port), "--ca-file", str(ca_dir / "ca.crt"), "--cert-file",
               str(ops_dir / "fleet-ops.crt"), "--key-file", str(ops_dir / "fleet-ops.key")]  # fmt: skip

        def listed() -> bool:
            table = run_cli("fleet.cli", "boxes", *tls, "--seconds", "1").stdout
            return any(line.startswith(world.box_id) and " yes " in line for line in table.splitlines())

        wait_for(listed, "the enrolled box to be listed online", timeout=30)
    finally:
        daemon.stop()
        broker.stop()
