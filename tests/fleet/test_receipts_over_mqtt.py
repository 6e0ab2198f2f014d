"""Print receipts and rewards against a real Mosquitto on loopback, the daemon as a process and the virtual
printer on a pty: a print's receipt arrives signed and chained, its telemetry span matches the records that
covered the print, the network's verifier core accepts it, a killed box still sends exactly one, and a rewards
report counts only when a trusted verifier signed it."""

import hashlib
import json
import signal
import time

import paho.mqtt.client as mqtt
import pytest
from playwright.sync_api import expect, sync_playwright

from box.jobs.store import Store
from chain_client import verifier  # the network's side, in the test only: box code never imports it
from firmware_bridge.virtual_printer import VirtualPrinterProcess
from secure_print.signer_key import SignerKey
from tests.browser import launch, needs_chromium, set_up_and_log_in
from tests.daemon_process import Daemon, job_row, wait_for
from tests.mosquitto import Listener, Mosquitto
from tests.users import World, run
from wire import keytext, receipt, topics
from wire.record_chain import GENESIS

BOX_TOPICS = "%s/+/#" % topics.PREFIX


@pytest.fixture
def verifier_key():
    return SignerKey.generate(keytext.NETWORK)


def receipt_daemon(world: World, broker: Mosquitto, printer_path: str, verifier_key: SignerKey) -> Daemon:
    return Daemon(world, printer_path).on_broker(broker.port, verifiers=[verifier_key])


def messages(listener: Listener, name: str) -> list:
    """Payloads seen on one topic name of the box, in arrival order."""
    return [payload for topic, payload, _historical in listener.take() if topic.endswith("/" + name)]


def unique(payloads: list) -> list:
    """Receipts as published (a repeat after a lost PUBACK is the same bytes: counted once)."""
    return list(dict.fromkeys(payloads))


def telemetry_records(listener: Listener, box_id: str) -> dict:
    """seq -> verifier Telemetry fact of every record the box published."""
    boxes = {}
    facts = {}
    for topic, payload, _historical in listener.take():
        if topic.endswith("/status") and payload and not boxes:
            key = bytes.fromhex(json.loads(payload)["body"]["box_key"])
            boxes[box_id] = verifier.BoxEntry(box_id, key)
    for topic, payload, _historical in listener.take():
        fact = verifier.read(topic, payload, boxes)
        if isinstance(fact, verifier.Telemetry):
            facts.setdefault(fact.seq, fact)
    return facts


def box_key(world: World) -> bytes:
    return keytext.decode(world.recipient, keytext.BOX)[1][:32]


@pytest.mark.timeout(300)
def test_each_print_sends_one_signed_chained_receipt_the_verifier_accepts(world, broker, verifier_key):
    listener = Listener(broker, [BOX_TOPICS])
    job = world.seal("--max-prints", "5")
    with VirtualPrinterProcess("--planner-moves", "8", "--move-time-scale", "0.1") as printer:
        daemon = receipt_daemon(world, broker, printer.path, verifier_key).start()
        try:
            assert world.box("queue", "add", job).returncode == 0
            assert world.box("queue", "add", job).returncode == 0
            wait_for(lambda: job_row(world, 2)["state"] == "done", "both jobs to finish", timeout=200)
            wait_for(lambda: len(unique(messages(listener, "receipt"))) == 2, "two receipts")
            time.sleep(1.0)
        finally:
            assert daemon.stop() == 0
    listener.close()
    key = box_key(world)
    read = [receipt.read_receipt(payload, key, world.box_id) for payload in unique(messages(listener, "receipt"))]
    assert [signed["seq"] for signed, _found in read] == [1, 2]
    assert read[0][0]["body"]["prev"] == GENESIS
    assert read[1][0]["body"]["prev"] == receipt.receipt_hash(unique(messages(listener, "receipt"))[0])
    with open(job, "rb") as handle:
        sealed = hashlib.sha256(handle.read()).hexdigest()
    rows = [job_row(world, 1), job_row(world, 2)]
    records = telemetry_records(listener, world.box_id)
    boxes = {world.box_id: verifier.BoxEntry(world.box_id, key)}
    for (signed, found), row, payload in zip(read, rows, unique(messages(listener, "receipt")), strict=True):
        assert (found.job_id, found.sealed_sha256, found.outcome) == (row["job_id"], sealed, "done")
        assert found.print_number == row["print_number"] and found.lines == row["source_lines"]
        assert found.filament_mm > 0 and found.machine_type == "MIP.AI Virtual Printer"
        assert found.started <= found.ended
        assert "attestation" not in signed["body"]  # a printer without an edge bridge: no attestation member
        assert json.loads(row["receipt"]) == {"seq": signed["seq"], "hash": receipt.receipt_hash(payload)}
        # The span: from the job's `printing` event to its `done` event, both in the box's telemetry.
        first, last = records[found.telemetry_first], records[found.telemetry_last]
        assert (first.type, last.type) == ("job", "job")
        assert last.hash == found.telemetry_last_hash
        span = [records[n] for n in range(found.telemetry_first, found.telemetry_last + 1)]
        assert any(record.type == "sample" and record.job_id == found.job_id for record in span)
        fact = verifier.read("%s/%s/receipt" % (topics.PREFIX, world.box_id), payload, boxes)
        entry = verifier.JobEntry(found.job_id, sealed, found.license_id, row["source_lines"])
        verdict = verifier.judge(fact, entry, verifier.Window(span, highest=max(records)), int(time.time()),
                                 int(time.time()))  # fmt: skip
        assert verdict.state == verifier.ACCEPTED, verdict.reason
    spans = [(found.telemetry_first, found.telemetry_last) for _signed, found in read]
    assert spans[0][1] < spans[1][0]  # one print, one span


@pytest.mark.timeout(300)
def test_a_box_killed_mid_print_sends_exactly_one_receipt_after_restart(world, broker, verifier_key):
    listener = Listener(broker, [BOX_TOPICS])
    job = world.seal("--max-prints", "5")
    with VirtualPrinterProcess("--move-time-scale", "1.0") as printer:
        daemon = receipt_daemon(world, broker, printer.path, verifier_key).start()
        assert world.box("queue", "add", job).returncode == 0
        wait_for(lambda: (job_row(world)["last_source_line"] or 0) > 100, "the print to get going")
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        assert messages(listener, "receipt") == []
        daemon = receipt_daemon(world, broker, printer.path, verifier_key).start()
        try:
            wait_for(lambda: job_row(world)["state"] == "interrupted", "the print to be found interrupted")
            wait_for(lambda: messages(listener, "receipt"), "the receipt")
            time.sleep(2.0)
        finally:
            assert daemon.stop() == 0
        daemon = receipt_daemon(world, broker, printer.path, verifier_key).start()  # a third start adds nothing
        time.sleep(2.0)
        assert daemon.stop() == 0
    listener.close()
    sent = unique(messages(listener, "receipt"))
    assert len(sent) == 1
    signed, found = receipt.read_receipt(sent[0], box_key(world), world.box_id)
    assert (signed["seq"], found.outcome) == (1, "interrupted")
    assert 0 < found.lines <= job_row(world)["last_source_line"]
    assert telemetry_records(listener, world.box_id)[found.telemetry_last].hash == found.telemetry_last_hash


def publish_rewards(broker: Mosquitto, box_id: str, key: SignerKey, seq: int, earned: int) -> None:
    receipts = [{"hash": "ab" * 32, "seq": 1, "state": "accepted", "reason": "", "reward": earned}]
    paid = [{"tx": "0x" + "cd" * 32, "amount": earned // 2}]
    body = receipt.rewards_body(box_id, earned, earned // 2, 1, receipts, paid)
    payload = receipt.sign_rewards(body, key.signing, int(time.time()), seq)[1]
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="verifier-test", protocol=mqtt.MQTTv5)
    client.connect("127.0.0.1", broker.port)
    client.loop_start()
    client.publish(topics.topic(box_id, topics.REWARDS), payload, qos=1, retain=True).wait_for_publish(10)
    client.loop_stop()
    client.disconnect()


def stored_rewards(world: World) -> list:
    store = Store(str(world.data_dir / "box.sqlite"))
    try:
        return store.rewards()
    finally:
        store.close()


@needs_chromium
@pytest.mark.timeout(120)
def test_the_dashboard_and_fleet_table_show_only_a_trusted_verifiers_rewards_report(world, broker, verifier_key):
    stranger = SignerKey.generate(keytext.NETWORK)
    daemon = receipt_daemon(world, broker, "/nonexistent/printer", verifier_key).start()
    try:
        wait_for(lambda: "connected to broker" in daemon.log.read_text(), "the box to connect")
        publish_rewards(broker, world.box_id, stranger, 5, 10**18)
        wait_for(lambda: "rewards report ignored" in daemon.log.read_text(), "the untrusted report to be ignored")
        assert stored_rewards(world) == []
        publish_rewards(broker, world.box_id, verifier_key, 3, 7 * 10**18)
        wait_for(lambda: stored_rewards(world), "the trusted report to be kept")
        (kept,) = stored_rewards(world)
        assert (kept["seq"], kept["report"]["earned"], kept["report"]["paid"]) == (3, 7 * 10**18, 35 * 10**17)
        assert kept["key_id"] == receipt.verifier_key_id(verifier_key.public_bytes)
        with sync_playwright() as playwright:
            browser = launch(playwright)
            page = browser.new_page()
            set_up_and_log_in(page, "http://127.0.0.1:%d" % daemon.http_port)
            expect(page.locator("#earned")).to_have_text("7 3DP")
            expect(page.locator("#paid")).to_have_text("3.5 3DP")
            expect(page.locator("#pending")).to_have_text("3.5 3DP")
            expect(page.locator("#transactions")).to_contain_text("0x" + "cd" * 32)
            expect(page.locator("#rewards")).to_contain_text(kept["key_id"])
            browser.close()
        port = ("--broker-port", str(broker.port))
        for key, shown in ((verifier_key, "7 3DP"), (stranger, "-")):  # the operator's table: trusted reports only
            table = run("mipai-fleet", "boxes", "--verifier", key.public_text, *port).stdout
            (line,) = [line for line in table.splitlines() if line.startswith(world.box_id)]
            assert line.split()[-1 if shown == "-" else -2 :] == shown.split(), table
    finally:
        assert daemon.stop() == 0
