"""Fleet figures on this machine, through a real Mosquitto on loopback. Prints a table of:

- signing + chaining + storing telemetry in the box's outbox (one flush per record, and per batch of 100), then
  publishing it at QoS 1 with rows deleted on PUBACK;
- draining an hour of 1 Hz records after an outage;
- the operator's check of received records (signature, chain), in one process;
- many simulated boxes (one process, one MQTT connection each, one signed chained record per second each)
  through one Mosquitto, with a verifier counting what arrived.

`--boxes N --seconds S` size the last row (default 1000 boxes for 30 s)."""

import argparse
import os
import resource
import selectors
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from bench.stream_bench import print_figures
from box.fleet_link.outbox import Outbox
from fleet.telemetry_check import TelemetryCheck
from provisioning import identity
from tests.mosquitto import Mosquitto
from wire import topics
from wire.record_chain import ChainWriter

HOUR = 3600
BODY = {"type": "sample", "printer": "printing", "hotend": [2050, 2050], "bed": [600, 600], "job": None}


def client(port: int, name: str) -> mqtt.Client:
    made = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
    made.max_inflight_messages_set(100)
    made.connect("127.0.0.1", port)
    return made


def publish_outbox(outbox: Outbox, box, port: int, name: str) -> float:
    """Publish everything in the outbox at QoS 1, deleting rows on PUBACK; returns the seconds it took."""
    publisher = client(port, name)
    in_flight, acknowledged, published_up_to = {}, [], 0

    def on_publish(_client, _userdata, mid, _reason, _properties) -> None:
        sequence = in_flight.pop(mid, None)
        if sequence is not None:
            acknowledged.append(sequence)

    publisher.on_publish = on_publish
    publisher.loop(0.2)
    started = time.perf_counter()
    while outbox.count():
        outbox.acknowledged_many(acknowledged)  # as the fleet agent does: the PUBACKs of one loop round together
        acknowledged.clear()
        for sequence, _created, _priority, record in outbox.pending_encoded(100 - len(in_flight), published_up_to):
            info = publisher.publish(topics.topic(box.box_id, "telemetry"), record, qos=1)
            in_flight[info.mid] = sequence
            published_up_to = sequence
        publisher.loop(0.01)
    took = time.perf_counter() - started
    publisher.disconnect()
    return took


def outbox_rows(root: Path, broker: Mosquitto) -> list:
    box = identity.load_or_create(str(root / "box"))
    rows = []
    for batch in (1, 100):
        outbox = Outbox(str(root / ("outbox-%d.sqlite" % batch)), box.signing, box.box_id)
        started = time.perf_counter()
        for n in range(0, HOUR, batch):
            if batch == 1:
                outbox.append(BODY, 1_700_000_000 + n)
            else:
                outbox.append_many([BODY] * batch, 1_700_000_000 + n)
        store = time.perf_counter() - started
        publish = publish_outbox(outbox, box, broker.port, "bench-box-%d" % batch)
        label = "one flush per record" if batch == 1 else "one flush per 100 records"
        rows.append(("sign + store (%s) + publish, PUBACK deletes" % label, ">= 3,000/s",
                     "%.0f/s (store %.0f/s, publish %.0f/s)" % (HOUR / (store + publish), HOUR / store,
                                                                HOUR / publish)))  # fmt: skip
        if batch == 1:
            rows.append(("drain one hour at 1 Hz (3,600 records) after an outage", "< 10 s", "%.2f s" % publish))
        outbox.close()
    return rows


def check_row(root: Path) -> tuple:
    box = identity.load_or_create(str(root / "box"))
    writer = ChainWriter(topics.TELEMETRY_KIND, box.signing, box.box_id)
    topic = topics.topic(box.box_id, "telemetry")
    payloads = [topics.encode(writer.next(BODY, 1_700_000_000 + n)) for n in range(20_000)]
    check = TelemetryCheck()
    check.feed(topics.topic(box.box_id, "status"), topics.encode(topics.status(box, 1, True, 1)))
    started = time.perf_counter()
    for payload in payloads:
        check.feed(topic, payload)
    rate = len(payloads) / (time.perf_counter() - started)
    assert check.boxes[box.box_id].records == len(payloads)
    return ("operator check, signature + chain, one process", ">= 10,000/s", "%.0f records/s" % rate)


def many_boxes_row(root: Path, broker: Mosquitto, count: int, seconds: int) -> tuple:
    """`count` boxes, each its own connection, one signed chained record a second for `seconds`."""
    keys = identity.load_or_create(str(root / "fleet-key"))  # one key signs for all: signing is not measured here
    writers, clients = [], []
    selector = selectors.DefaultSelector()
    verifier = client(broker.port, "bench-verifier")
    received = []
    verifier.on_message = lambda _c, _u, message: received.append((message.topic, message.payload))
    verifier.subscribe("%s/+/telemetry" % topics.PREFIX, qos=1)
    verifier.loop_start()
    acked = [0]
    for n in range(count):
        made = client(broker.port, "bench-%04d" % n)
        made.on_publish = lambda *_args: acked.__setitem__(0, acked[0] + 1)
        writers.append(ChainWriter(topics.TELEMETRY_KIND, keys.signing, "sim%04d" % n))
        clients.append(made)
        selector.register(made.socket(), selectors.EVENT_READ, made)
    sent, started = 0, time.monotonic()
    for second in range(seconds):
        for n, made in enumerate(clients):
            signed = writers[n].next(BODY, 1_700_000_000 + second)
            made.publish("%s/sim%04d/telemetry" % (topics.PREFIX, n), topics.encode(signed), qos=1)
            sent += 1
        deadline = started + second + 1
        while True:
            for made in clients:
                if made.want_write():
                    made.loop_write()
            left = deadline - time.monotonic()
            if left <= 0:
                break
            for ready, _events in selector.select(min(left, 0.05)):
                ready.data.loop_read()
            for made in clients:
                made.loop_misc()
    settle = time.monotonic() + 10
    while (acked[0] < sent or len(received) < sent) and time.monotonic() < settle:
        for made in clients:
            if made.want_write():
                made.loop_write()
        for ready, _events in selector.select(0.05):
            ready.data.loop_read()
    verifier.loop_stop()
    distinct = {(topic, payload) for topic, payload in received}
    for made in clients:
        made.disconnect()
    lost = sent - len(distinct)
    return ("%d boxes, 1 record/s each for %d s, one Mosquitto" % (count, seconds), "nothing lost",
            "%d sent, %d acknowledged, %d arrived, %d lost" % (sent, acked[0], len(distinct), lost))  # fmt: skip


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--boxes", type=int, default=1000)
    parser.add_argument("--seconds", type=int, default=30)
    args = parser.parse_args()
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    resource.setrlimit(resource.RLIMIT_NOFILE, (min(hard, max(soft, 4 * args.boxes + 256)), hard))
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "broker").mkdir()
        broker = Mosquitto(root / "broker").start()
        try:
            rows = outbox_rows(root, broker)
            rows.append(check_row(root))
            rows.append(many_boxes_row(root, broker, args.boxes, args.seconds))
        finally:
            broker.stop()
    print_figures(rows)
    return 0


if __name__ == "__main__":
    sys.exit(main())
