"""The demo's network side on a real Mosquitto and an in-process py-evm chain: a box's print (telemetry and
receipt, published as the box publishes them) is verified, anchored and claimed without anyone running a command,
the owner's balance on chain rises by the reward, and the box's retained rewards topic carries a report signed by
the network's key with the amount paid and the claim's transaction hash."""

import time

import paho.mqtt.client as mqtt
from eth_account import Account

from chain_client import demo_network, rewards
from chain_client.verifier import BoxEntry
from tests.chain_client.boxsim import SimBox, unattested
from tests.mosquitto import Listener, Mosquitto
from wire import keytext, receipt, topics


def test_the_demo_network_pays_a_print_and_reports_it_to_the_box(tmp_path):
    broker = Mosquitto(tmp_path).start()
    box = SimBox()
    owner = Account.create().address
    job = demo_network.job("ab" * 16, "cd" * 32, lines=1000)
    entry = BoxEntry(box.box_id, box.public, Account.create().address.lower(), owner.lower())
    logged = []
    network = demo_network.DemoNetwork(str(tmp_path / "net"), broker.port, entry, [job], log=logged.append)
    listener = None
    try:
        network.start()
        listener = Listener(broker, [topics.topic(box.box_id, topics.REWARDS)])
        start = int(time.time()) - 4000
        telemetry, message, digest = box.print_job(job, start, 3600)
        publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, protocol=mqtt.MQTTv5)
        publisher.connect("127.0.0.1", broker.port)
        publisher.loop_start()
        for topic, payload in [*telemetry, message]:
            publisher.publish(topic, payload, qos=1).wait_for_publish(10)
        publisher.loop_stop()
        publisher.disconnect()

        expected = unattested(rewards.reward("done", "PLA", 3600))
        public = keytext.decode(network.verifier_public_text, keytext.NETWORK)[1]
        deadline = time.monotonic() + 60
        report = None
        while time.monotonic() < deadline and not (report and report["paid"]):
            for _topic, payload, _historical in listener.take():
                report = receipt.read_rewards(payload, public, box.box_id)
            time.sleep(0.1)
        assert report is not None and report["paid"] == report["earned"] == expected, logged
        [(box_id, amount, tx)] = network.paid
        assert (box_id, amount) == (box.box_id, expected)
        assert report["transactions"] == [{"tx": tx, "amount": expected}]
        assert [r["hash"] for r in report["receipts"]] == [digest]
        assert any("the owner holds %s" % rewards.text(expected) in line for line in logged), logged
    finally:
        if listener:
            listener.close()
        network.stop()
        broker.stop()
