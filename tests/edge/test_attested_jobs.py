"""Attested job runs under CPython: the box prints a sealed job through the edge bridge (the firmware's own code,
run by CPython behind a pseudo-terminal) to the virtual printer, fetches an attestation at the start and the end
with the verifier's challenges (sent in its rewards report over a real Mosquitto), and its receipt and final job
event carry both, which verify with the network's copy of the bridge's key. `mipai-box print` does the same with
the box's own challenges, and says so."""

import json
import subprocess
import sys
import time
from contextlib import contextmanager

import pytest

from box.printing import challenges
from chain_client import attestation_weighing
from firmware_bridge import attestation
from firmware_bridge.edge import keystore
from firmware_bridge.virtual_printer import VirtualPrinterProcess
from secure_print.signer_key import SignerKey
from tests.daemon_process import Daemon, job_row, wait_for
from tests.edge.harness import KEY
from tests.mosquitto import Listener, Mosquitto
from tests.users import World
from wire import keytext, receipt, topics

COMMANDS = 400  # a small job: a test of the evidence, not of speed


@pytest.fixture
def broker(tmp_path):
    directory = tmp_path / "broker"
    directory.mkdir()
    mosquitto = Mosquitto(directory).start()
    yield mosquitto
    mosquitto.stop()


def small_job(world: World, tmp_path) -> str:
    """A sealed job of COMMANDS commands that extrude 0.1 mm each over 20 layers."""
    lines = ["G28", "M83"]
    for n in range(COMMANDS - 2):
        if n % 20 == 0:
            lines.append("G1 Z%.1f" % (0.2 * (n // 20 + 1)))
        else:
            lines.append("G1 X%d Y%d E0.1" % (n % 50, n % 40))
    source = tmp_path / "small.gcode"
    source.write_text("\n".join(lines) + "\n")
    return world.seal("--max-prints", "3", source=str(source), name="small.mipjob")


@contextmanager
def bridged_printer(tmp_path, paired: bool = True):
    """A virtual printer and the bridge in front of it; yields (bridge port, file of the commands executed)."""
    state = tmp_path / "bridge-state"
    state.mkdir()
    if paired:
        keystore.pair(KEY.hex(), str(state))
    record = tmp_path / "executed.gcode"
    with VirtualPrinterProcess("--record", str(record), "--heat-rate", "1e6", "--move-time-scale", "0.01") as printer:
        bridge = subprocess.Popen(
            [sys.executable, "-m", "firmware_bridge.edge_pty", "--printer", printer.path, "--state-dir", str(state)],
            stdout=subprocess.PIPE,
            text=True,
        )
        try:
            port = bridge.stdout.readline().strip()
            assert port, "the bridge did not start"
            yield port, record
        finally:
            bridge.terminate()
            bridge.wait(10)
            bridge.stdout.close()


def publish_challenges(broker: Mosquitto, box_id: str, key: SignerKey, issued: list) -> None:
    """The verifier's rewards report for the box, retained, with attestation challenges for its next jobs."""
    import paho.mqtt.client as mqtt

    body = receipt.rewards_body(box_id, 0, 0, 0, [], [], issued)
    payload = receipt.sign_rewards(body, key.signing, int(time.time()), 1)[1]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="verifier-test", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.publish(topics.topic(box_id, topics.REWARDS), payload, qos=1, retain=True).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def payloads(listener: Listener, name: str) -> list:
    return list(dict.fromkeys(p for topic, p, _historical in listener.take() if topic.endswith("/" + name)))


@pytest.mark.timeout(180)
def test_the_daemon_prints_through_the_bridge_and_its_receipt_carries_a_verified_attestation(
    trusted_world, broker, tmp_path
):
    world = trusted_world
    verifier_key = SignerKey.generate(keytext.NETWORK)
    issued = [attestation.new_challenge().hex() for _ in range(4)]
    publish_challenges(broker, world.box_id, verifier_key, issued)
    job = small_job(world, tmp_path)
    listener = Listener(broker, ["%s/+/#" % topics.PREFIX])
    with bridged_printer(tmp_path) as (port, record):
        daemon = Daemon(world, port).on_broker(broker.port, verifiers=[verifier_key]).start()
        try:
            wait_for(lambda: "4 attestation challenges from the verifier kept" in daemon.log.read_text(),
                     "the verifier's challenges to reach the box")  # fmt: skip
            assert world.box("queue", "add", job).returncode == 0
            wait_for(lambda: job_row(world)["state"] == "done", "the job to finish", timeout=120)
            wait_for(lambda: payloads(listener, "receipt"), "the receipt")
        finally:
            assert daemon.stop() == 0
    executed = record.read_text().splitlines()
    listener.close()
    box_public = keytext.decode(world.recipient, keytext.BOX)[1][:32]
    (sent,) = payloads(listener, "receipt")
    _signed, found = receipt.read_receipt(sent, box_public, world.box_id)
    member = found.attestation
    assert member["challenge_from"] == "verifier" and member["bridge_id"] == attestation.attest.to_hex(
        attestation.attest.bridge_id(KEY)
    )
    start, end = attestation.parse(member["start"]), attestation.parse(member["end"])
    assert [start.challenge.hex(), end.challenge.hex()] == sorted(issued)[:2]  # the oldest two, each used once
    # Every line of the job reached the printer exactly once, the bridge's own command never did, and the
    # bridge counted what the printer acknowledged: the job's commands.
    assert len(executed) == COMMANDS and not [line for line in executed if line.startswith("M7770")]
    evidence = attestation.job_evidence(start, end)
    assert evidence["lines"] == member["commands"] == COMMANDS
    assert evidence["layers"] == 20 and evidence["e_um"] == 37_800  # 378 moves of 0.1 mm
    state = {challenge: "open" for challenge in issued}
    weight = attestation_weighing.weigh(found, KEY, None, state.get)
    assert (weight.permille, weight.reason) == (1000, "attested by edge bridge %s" % member["bridge_id"])
    # The job's final event carries the same evidence.
    events = [json.loads(p)["body"] for p in payloads(listener, "event")]
    (done,) = [event for event in events if event.get("type") == "job" and event["state"] == "done"]
    assert done["attestation"] == member
    kept = challenges.ChallengeStore(challenges.challenges_file(str(world.data_dir)))
    try:
        assert kept.unused() == 2
    finally:
        kept.close()


def test_mipai_box_print_attests_against_the_boxs_own_challenges_and_says_so(trusted_world, tmp_path):
    world = trusted_world
    job = small_job(world, tmp_path)
    with bridged_printer(tmp_path) as (port, record):
        result = world.box("print", job, "--port", port)
    executed = record.read_text().splitlines()  # once the printer stopped: its planner has run every move
    assert result.returncode == 0, result.stderr
    bridge = attestation.attest.to_hex(attestation.attest.bridge_id(KEY))
    line = "edge bridge: bridge %s attested %d commands at start and end (challenges: the box's own)"
    assert line % (bridge, COMMANDS) in result.stderr
    assert len(executed) == COMMANDS


def test_an_unpaired_bridge_prints_the_job_and_the_box_says_why_there_is_no_attestation(trusted_world, tmp_path):
    world = trusted_world
    job = small_job(world, tmp_path)
    with bridged_printer(tmp_path, paired=False) as (port, record):
        result = world.box("print", job, "--port", port)
    executed = record.read_text().splitlines()  # once the printer stopped: its planner has run every move
    assert result.returncode == 0, result.stderr
    assert "edge bridge: no attestation: BridgeNotPaired: the bridge is not paired" in result.stderr
    assert len(executed) == COMMANDS
