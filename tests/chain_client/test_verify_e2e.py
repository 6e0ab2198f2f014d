"""`mipai-chain verify` as two processes in one shared-subscription group on a real Mosquitto: a test box's
receipts and telemetry (signed with wire/ directly) are accepted or refused with their reasons, each box reads
its signed rewards report, a verifier killed mid-stream and started again loses and double-counts nothing, and a
box offline for a day (records published late, historical) catches up exactly."""

import json
import os
import signal
import subprocess
import sys
import threading
import time

import paho.mqtt.client as mqtt
import pytest
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from chain_client import attestation_weighing, rewards
from chain_client.ledger import Ledger
from secure_print.signer_key import SignerKey, write_secret_file
from tests.chain_client.boxsim import T0, SimBox, new_job, unattested
from tests.mosquitto import Mosquitto
from wire import keytext, receipt, topics
from wire.record_chain import ChainWriter

NOW = int(time.time())


class Verifier:
    """One `mipai-chain verify` process."""

    def __init__(self, tmp_path, broker: Mosquitto, name: str, patience: int = 86400) -> None:
        self.name = name
        self.log = open(tmp_path / ("%s.log" % name), "w+")  # noqa: SIM115 (closed in stop)
        self.process = subprocess.Popen(
            [sys.executable, "-m", "chain_client.cli", "--ledger", str(tmp_path / "ledger.sqlite"), "verify",
             "--key", str(tmp_path / "verifier.key"), "--group", "verifiers", "--client-id", name,
             "--broker-port", str(broker.port), "--patience", str(patience)],
            stdout=self.log, stderr=subprocess.STDOUT, text=True,
        )  # fmt: skip
        self.wait_for("subscribed to 4 topics")

    def text(self) -> str:
        self.log.flush()
        with open(self.log.name) as handle:
            return handle.read()

    def wait_for(self, text: str, timeout: float = 30) -> None:
        deadline = time.monotonic() + timeout
        while text not in self.text():
            if self.process.poll() is not None or time.monotonic() > deadline:
                raise AssertionError("%s: no %r in:\n%s" % (self.name, text, self.text()))
            time.sleep(0.05)

    def stop(self, how=signal.SIGTERM) -> str:
        if self.process.poll() is None:
            self.process.send_signal(how)
            self.process.wait(30)
        self.log.close()
        with open(self.log.name) as handle:
            return handle.read()


class Publisher:
    """A box's outbox as the broker sees it: QoS 1, each publish waited for; `historical` marks late records."""

    def __init__(self, broker: Mosquitto) -> None:
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="sim-boxes", protocol=mqtt.MQTTv5)
        self.client.max_inflight_messages_set(200)
        self.client.connect("127.0.0.1", broker.port)
        self.client.loop_start()

    def send(self, messages, historical: bool = False) -> None:
        properties = None
        if historical:
            properties = Properties(PacketTypes.PUBLISH)
            properties.UserProperty = [("historical", "1")]
        infos = [self.client.publish(topic, payload, qos=1, properties=properties) for topic, payload in messages]
        for info in infos:
            info.wait_for_publish(30)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


class RewardsReader:
    def __init__(self, broker: Mosquitto) -> None:
        self.reports = {}
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="reader", protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe("%s/+/%s" % (topics.PREFIX, topics.REWARDS), qos=1)
        self.client.loop_start()

    def _on_message(self, _client, _userdata, message) -> None:
        with self.lock:
            self.reports[topics.split_topic(message.topic)[0]] = message.payload

    def report(self, box_id: str, public: bytes):
        with self.lock:
            payload = self.reports.get(box_id)
        return receipt.read_rewards(payload, public, box_id) if payload else None

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.fixture
def world(tmp_path):
    broker = Mosquitto(tmp_path).start()
    key = SignerKey.generate(keytext.NETWORK)
    write_secret_file(str(tmp_path / "verifier.key"), key.to_text().encode())
    ledger = Ledger(str(tmp_path / "ledger.sqlite"))
    publisher = Publisher(broker)
    reader = RewardsReader(broker)
    yield tmp_path, broker, ledger, publisher, reader, key.public_bytes
    reader.close()
    publisher.close()
    ledger.close()
    broker.stop()


def _wait(condition, what: str, timeout: float = 60) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError("timed out waiting for " + what)
        time.sleep(0.1)


def _seq(payload: bytes) -> int:
    return json.loads(payload)["seq"]


def _state(ledger: Ledger, digest: str):
    row = ledger._db.execute("SELECT state, reason FROM receipts WHERE hash = ?", (digest,)).fetchone()
    return tuple(row) if row else None


def test_two_verifiers_share_the_load_and_decide_every_receipt_once(world):
    tmp_path, broker, ledger, publisher, reader, verifier_public = world
    boxes = [SimBox() for _ in range(4)]
    job, quick_job = new_job(lines=1000, estimate_s=1800), new_job(lines=1000, estimate_s=3000)
    for box in boxes:
        ledger.add_box(box.entry(), NOW)
    ledger.add_job(job, NOW)
    ledger.add_job(quick_job, NOW)
    good = [box.print_job(job, T0 + n * 4000, 3600, every=30) for n, box in enumerate(boxes)]
    stranger = SimBox()
    forger = SimBox()
    forger.box_id, forger.receipts = boxes[0].box_id, receipt.receipt_writer(forger.key, boxes[0].box_id)
    bad = {
        "unregistered": (stranger.print_job(job, T0, 3600), "box %s is not registered" % stranger.box_id),
        "forged": (forger.print_job(job, T0, 3600), "forged receipt"),
        "never issued": (boxes[1].print_job(new_job(), T0 + 9000, 3600), "never issued by the platform"),
        "duplicate": (boxes[2].print_job(job, T0 + 9000, 3600, print_number=1), "duplicate: print 1"),
        "too fast": (boxes[3].print_job(quick_job, T0 + 9000, 600), "under half the G-code's own estimate"),
        "never heated": (boxes[0].print_job(job, T0 + 20000, 3600, heat=False), "hotend never reached"),
        "fewer lines": (boxes[1].print_job(job, T0 + 20000, 3600, lines=10), "confirmed 10 of the job's 1000"),
    }
    thinned_print = boxes[2].print_job(job, T0 + 20000, 3600, print_number=5)
    dropped = _seq(thinned_print[0][20][1])
    thin = boxes[2].event(T0 + 24000, {"type": "outbox.thinned", "removed": [dropped]})
    bad["gap"] = ((thinned_print[0][:20] + thinned_print[0][21:], *thinned_print[1:]), "gap: the box dropped")
    forked_print = boxes[3].print_job(job, T0 + 30000, 3600, print_number=7)
    twin = SimBox()  # the same box signing a second record with the number of the print's sixth
    twin.box_id = boxes[3].box_id
    twin.telemetry = ChainWriter(topics.TELEMETRY_KIND, boxes[3].key, boxes[3].box_id,
                                 _seq(forked_print[0][5][1]) - 1)  # fmt: skip
    fork = twin.sample(T0 + 30300, job.job_id, (1900, 2050))
    bad["fork"] = ((forked_print[0] + [fork], *forked_print[1:]), "fork: two different telemetry records claim")

    one, two = Verifier(tmp_path, broker, "v1"), Verifier(tmp_path, broker, "v2")
    try:
        for telemetry, message, _digest in good:
            publisher.send([*telemetry, message])
        for (telemetry, message, _digest), _reason in bad.values():
            publisher.send([*telemetry, message])
        publisher.send([thin])
        # everything once more: a box's outbox re-sends what lost its PUBACK
        publisher.send([m for telemetry, message, _d in good for m in (*telemetry, message)])
        digests = [g[2] for g in good] + [entry[0][2] for entry in bad.values()]
        _wait(lambda: all((_state(ledger, d) or ("pending",))[0] != "pending" for d in digests), "every verdict")
        for name, ((_t, _m, digest), reason) in bad.items():
            state, said = _state(ledger, digest)
            assert state == "refused" and reason in said, (name, said)
        expected = unattested(rewards.reward("done", "PLA", 3600, job.estimate_s))
        for box, (_t, _m, digest) in zip(boxes, good, strict=True):
            assert _state(ledger, digest) == ("accepted", attestation_weighing.NO_ATTESTATION)
            assert ledger.earned(box.box_id) == expected
            _wait(lambda box=box: (reader.report(box.box_id, verifier_public) or {}).get("earned") == expected,
                  "the rewards report of %s" % box.box_id)  # fmt: skip

        def states() -> list:
            return [r["state"] for r in (reader.report(boxes[1].box_id, verifier_public) or {}).get("receipts", [])]

        _wait(lambda: states() == ["accepted", "refused", "refused"], "box 1's report of its three receipts")

        def copies() -> int:  # every copy of a receipt is seen, and counted once
            return ledger._db.execute("SELECT sum(copies) FROM receipts").fetchone()[0]

        _wait(lambda: copies() == len(good) * 2 + len(bad), "the second copies of the receipts")
        assert [ledger.earned(box.box_id) for box in boxes] == [expected] * len(boxes)
    finally:
        logs = [one.stop(), two.stop()]
    handled = [int(log.rsplit("verify: ", 1)[1].split()[0]) for log in logs]
    assert all(count > 0 for count in handled), logs  # the broker shared the load between both processes


def test_a_verifier_killed_mid_stream_and_a_box_offline_for_a_day_lose_and_double_count_nothing(world):
    tmp_path, broker, ledger, publisher, _reader, _public = world
    boxes = [SimBox() for _ in range(3)]
    job = new_job(lines=1000, estimate_s=1800)
    ledger.add_job(job, NOW)
    for box in boxes:
        ledger.add_box(box.entry(), NOW)
    prints = {box.box_id: [box.print_job(job, T0 + n * 4000, 3600, every=5) for n in range(4)] for box in boxes}
    one, two = Verifier(tmp_path, broker, "v1"), Verifier(tmp_path, broker, "v2")
    try:
        # the first two prints of every box arrive live; v1 is killed (no clean stop) while they stream in
        live = [m for box in boxes for t, r, _d in prints[box.box_id][:2] for m in (*t, r)]
        sender = threading.Thread(target=publisher.send, args=(live,))
        sender.start()
        time.sleep(0.3)
        one.stop(signal.SIGKILL)
        sender.join()
        one = Verifier(tmp_path, broker, "v1")  # same client id: its session's unacknowledged messages come back
        # the box was offline for a day: its receipts come first, its telemetry a day late, marked historical
        late = [p for box in boxes for p in prints[box.box_id][2:]]
        publisher.send([r for _t, r, _d in late])
        waiting = ("pending", "waiting for telemetry records")
        _wait(lambda: all((_state(ledger, d) or ("", ""))[1].startswith(waiting[1]) for _t, _r, d in late),
              "the late receipts to wait for their telemetry")  # fmt: skip
        assert all(_state(ledger, d)[0] == waiting[0] for _t, _r, d in late)
        publisher.send([m for t, _r, _d in late for m in t], historical=True)
        every = [d for box in boxes for _t, _r, d in prints[box.box_id]]
        _wait(lambda: all((_state(ledger, d) or ("",))[0] == "accepted" for d in every), "every print accepted")
    finally:
        one.stop()
        two.stop()
    expected = 4 * unattested(rewards.reward("done", "PLA", 3600, job.estimate_s))
    for box in boxes:
        assert ledger.earned(box.box_id) == expected
        highest = ledger._db.execute("SELECT highest FROM box_state WHERE box_id = ?", (box.box_id,)).fetchone()[0]
        assert highest == box.telemetry.sequence  # every record arrived
    # every receipt decided: the telemetry no receipt needs any more is forgotten
    assert ledger._db.execute("SELECT count(*) FROM telemetry").fetchone()[0] == 0
    assert sorted(row["accepted"] for row in ledger.summary()) == [4, 4, 4]
    assert os.path.exists(tmp_path / "ledger.sqlite")


def test_a_payment_recorded_by_claim_reaches_the_box_in_its_next_report(world):
    """`mipai-chain claim` (another process) records what a claim paid; the running verifier sends the box its
    report again, with the amount and the transaction, without a new receipt from the box."""
    tmp_path, broker, ledger, publisher, reader, verifier_public = world
    box, job = SimBox(), new_job(lines=1000, estimate_s=1800)
    ledger.add_box(box.entry(), NOW)
    ledger.add_job(job, NOW)
    telemetry, message, _digest = box.print_job(job, T0, 3600, every=60)
    running = Verifier(tmp_path, broker, "v1")
    try:
        publisher.send([*telemetry, message])
        expected = unattested(rewards.reward("done", "PLA", 3600, job.estimate_s))
        _wait(lambda: (reader.report(box.box_id, verifier_public) or {}).get("earned") == expected, "the report")
        tx = "0x" + "ab" * 32
        ledger.record_payment(box.box_id, tx, expected, NOW)
        _wait(lambda: (reader.report(box.box_id, verifier_public) or {}).get("paid") == expected, "the paid report")
        assert reader.report(box.box_id, verifier_public)["transactions"] == [{"tx": tx, "amount": expected}]
    finally:
        running.stop()
