"""Attested job runs under CPython: the box (the daemon, as a process) prints a sealed job through the edge bridge
(the firmware's own code, run by CPython behind a pseudo-terminal) to the virtual printer, fetches an attestation
at the start and the end with the challenges `mipai-chain verify` sent in its rewards report over a real
Mosquitto, and its receipt and final job event carry both; the verifier checks them with its copy of the
bridge's key and pays the whole reward. `mipai-box print` does the same with the box's own challenges, and says
so; an unpaired bridge prints the job and the box says why there is no attestation."""

import json
import sqlite3
import subprocess
import sys
from contextlib import contextmanager

import pytest

from box.printing import challenges
from chain_client import rewards
from firmware_bridge import attestation, edge_pairing
from firmware_bridge.edge import attest
from secure_print.signer_key import SignerKey
from tests.daemon_process import Daemon, job_row, wait_for
from tests.edge.bridged import bridged_printer
from tests.edge.harness import KEY
from tests.mosquitto import Listener, Mosquitto
from tests.users import World
from wire import keytext, receipt, topics

COMMANDS = 400  # a small job: a test of the evidence, not of speed
BRIDGE_ID = attest.to_hex(attest.bridge_id(KEY))
QUICK = ("--move-time-scale", "0.01")  # the virtual printer's moves at a hundredth of real time


def small_job(world: World, tmp_path) -> str:
    """A sealed job of COMMANDS commands: heat, then 377 short moves that extrude 0.1 mm each, over 20 layers."""
    lines = ["G28", "M83", "M109 S200"]
    for n in range(COMMANDS - 3):
        if n % 20 == 0:
            lines.append("G1 Z%.1f" % (0.2 * (n // 20 + 1)))
        else:
            lines.append("G1 X%d Y%d E0.1" % (n % 50, n % 40))
    source = tmp_path / "small.gcode"
    source.write_text("\n".join(lines) + "\n")
    return world.seal("--max-prints", "3", source=str(source), name="small.mipjob")


def payloads(listener: Listener, name: str) -> list:
    return list(dict.fromkeys(p for topic, p, _historical in listener.take() if topic.endswith("/" + name)))


def chain(tmp_path, *args: str) -> subprocess.CompletedProcess:
    """`mipai-chain` on the network's ledger in tmp_path."""
    return subprocess.run([sys.executable, "-m", "chain_client.cli", "--ledger", str(tmp_path / "ledger.sqlite"),
                           *args], capture_output=True, text=True, timeout=60)  # fmt: skip


@contextmanager
def verifier_process(tmp_path, broker: Mosquitto):
    """`mipai-chain verify` on the broker; yields a function that returns its output so far."""
    log = tmp_path / "verify.log"
    with open(log, "w") as output:
        process = subprocess.Popen(
            [sys.executable, "-m", "chain_client.cli", "--ledger", str(tmp_path / "ledger.sqlite"), "verify",
             "--key", str(tmp_path / "verifier.key"), "--broker-port", str(broker.port)],
            stdout=output, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        try:
            wait_for(lambda: "subscribed to 4 topics" in log.read_text(), "the verifier to subscribe")
            yield log.read_text
        finally:
            process.terminate()
            process.wait(30)


def verdict(tmp_path) -> tuple:
    """(state, reason, reward) of the network's one receipt, or None before it arrived."""
    db = sqlite3.connect(str(tmp_path / "ledger.sqlite"))
    try:
        row = db.execute("SELECT state, reason, reward FROM receipts").fetchone()
    finally:
        db.close()
    return row and (row[0], row[1], int(row[2]))


@pytest.mark.timeout(180)
def test_a_print_through_the_bridge_is_attested_against_the_verifiers_challenges_and_earns_in_full(
    trusted_world, broker, tmp_path
):
    world = trusted_world
    job = small_job(world, tmp_path)
    # The network: its verifier key, the box and the job registered, the bridge's key from pairing recorded.
    assert chain(tmp_path, "keygen", "-o", str(tmp_path / "verifier.key")).returncode == 0
    verifier_key = SignerKey.load(str(tmp_path / "verifier.key"))
    owner = "0x" + "11" * 20
    registered = chain(tmp_path, "boxes", "add", "--box-key", world.recipient, "--evm-address", "0x" + "22" * 20,
                       "--owner", owner)  # fmt: skip
    assert registered.returncode == 0, registered.stderr
    assert chain(tmp_path, "jobs", "add", job).returncode == 0
    edge_pairing.record_key(str(tmp_path / "edge-keys"), BRIDGE_ID, KEY)
    paired = chain(tmp_path, "bridges", "add", str(tmp_path / "edge-keys"))
    assert "bridge %s recorded" % BRIDGE_ID in paired.stdout, paired.stderr
    listener = Listener(broker, ["%s/+/#" % topics.PREFIX])
    # Moves at a third of real time: the print lasts a few seconds, so the box's telemetry samples (once a
    # second) show the hotend at its target, as the verifier's plausibility check wants.
    bridged = bridged_printer(tmp_path, "--move-time-scale", "0.3")
    with verifier_process(tmp_path, broker) as verify_log, bridged as (port, record):
        daemon = Daemon(world, port).on_broker(broker.port, verifiers=[verifier_key]).start()
        try:
            # The box comes online; the verifier answers with a rewards report carrying its challenges.
            wait_for(lambda: "4 attestation challenges from the verifier kept" in daemon.log.read_text(),
                     "the verifier's challenges to reach the box")  # fmt: skip
            assert world.box("queue", "add", job).returncode == 0
            wait_for(lambda: job_row(world)["state"] == "done", "the job to finish", timeout=120)
            wait_for(lambda: (verdict(tmp_path) or ("pending",))[0] != "pending", "the verifier's verdict")
        finally:
            assert daemon.stop() == 0
        said = verify_log()
    executed = record.read_text().splitlines()  # once the printer stopped: its planner has run every move
    listener.close()
    box_public = keytext.decode(world.recipient, keytext.BOX)[1][:32]
    (sent,) = payloads(listener, "receipt")
    _signed, found = receipt.read_receipt(sent, box_public, world.box_id)
    member = found.attestation
    assert (member["challenge_from"], member["bridge_id"]) == ("verifier", BRIDGE_ID)
    # Every line of the job reached the printer exactly once, the bridge's own command never did, and the
    # bridge counted what the printer acknowledged: the job's commands, layers and extrusion.
    assert len(executed) == COMMANDS and not [line for line in executed if line.startswith("M7770")]
    start, end = attestation.parse(member["start"]), attestation.parse(member["end"])
    evidence = attestation.job_evidence(start, end)
    assert evidence["lines"] == member["commands"] == COMMANDS
    assert evidence["layers"] == 20 and evidence["e_um"] == 37_700  # 377 moves of 0.1 mm
    # The network verified both with its copy of the key and paid the whole reward.
    full = rewards.reward("done", found.material, found.duration)
    assert verdict(tmp_path) == ("accepted", "attested by edge bridge %s" % BRIDGE_ID, full), said
    # The job's final event carries the same evidence; the box used two of the four challenges.
    events = [json.loads(p)["body"] for p in payloads(listener, "event")]
    (done,) = [event for event in events if event.get("type") == "job" and event["state"] == "done"]
    assert done["attestation"] == member
    kept = challenges.ChallengeStore(challenges.challenges_file(str(world.data_dir)))
    try:
        assert kept.unused() >= 2  # the two left, and any fresh ones the verifier sent after the receipt
    finally:
        kept.close()


def test_mipai_box_print_attests_against_the_boxs_own_challenges_and_says_so(trusted_world, tmp_path):
    world = trusted_world
    job = small_job(world, tmp_path)
    with bridged_printer(tmp_path, *QUICK) as (port, record):
        result = world.box("print", job, "--port", port)
    executed = record.read_text().splitlines()  # once the printer stopped: its planner has run every move
    assert result.returncode == 0, result.stderr
    line = "edge bridge: bridge %s attested %d commands at start and end (challenges: the box's own)"
    assert line % (BRIDGE_ID, COMMANDS) in result.stderr
    assert len(executed) == COMMANDS


def test_an_unpaired_bridge_prints_the_job_and_the_box_says_why_there_is_no_attestation(trusted_world, tmp_path):
    world = trusted_world
    job = small_job(world, tmp_path)
    with bridged_printer(tmp_path, *QUICK, paired=False) as (port, record):
        result = world.box("print", job, "--port", port)
    executed = record.read_text().splitlines()  # once the printer stopped: its planner has run every move
    assert result.returncode == 0, result.stderr
    assert "edge bridge: no attestation: BridgeNotPaired: the bridge is not paired" in result.stderr
    assert len(executed) == COMMANDS
