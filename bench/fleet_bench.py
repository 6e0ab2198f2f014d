"""Fleet figures on this machine, through a real Mosquitto on loopback: signing + storing telemetry records in
the outbox, draining an hour of 1 Hz records to the broker (rows deleted on PUBACK), and the operator's check
verifying records. Prints a table."""

import os
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from box.outbox import Outbox
from chain_client import fleet_wire
from fleet.telemetry_check import TelemetryCheck
from provisioning import identity
from tests.mosquitto import Mosquitto

HOUR = 3600
BODY = {"type": "sample", "printer": "printing", "hotend": [2050, 2050], "bed": [600, 600], "job": None}


def main() -> int:
    with tempfile.TemporaryDirectory() as scratch:
        root = Path(scratch)
        (root / "broker").mkdir()
        broker = Mosquitto(root / "broker").start()
        try:
            box = identity.load_or_create(str(root / "box"))
            outbox = Outbox(str(root / "outbox.sqlite"), box.signing, box.box_id)
            started = time.perf_counter()
            for n in range(HOUR):
                outbox.append(BODY, 1_700_000_000 + n)
            store_rate = HOUR / (time.perf_counter() - started)
            seen = []
            client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-box", protocol=mqtt.MQTTv5)
            in_flight = {}

            def on_publish(_client, _userdata, mid, _reason, _properties) -> None:
                sequence = in_flight.pop(mid, None)
                if sequence is not None:
                    outbox.acknowledged(sequence)

            client.on_publish = on_publish
            client.max_inflight_messages_set(100)
            client.connect("127.0.0.1", broker.port)
            watcher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-watch", protocol=mqtt.MQTTv5)
            watcher.on_message = lambda _c, _u, m: seen.append((m.topic, m.payload))
            watcher.connect("127.0.0.1", broker.port)
            watcher.subscribe("mipai/v1/+/#", qos=1)
            watcher.loop_start()
            client.loop(0.2)
            status = fleet_wire.status(box, 1, True, int(time.time()))
            client.publish(fleet_wire.topic(box.box_id, "status"), fleet_wire.encode(status), qos=1)
            started = time.perf_counter()
            published = set()
            while outbox.count():
                for sequence, _created, signed in outbox.pending(200):
                    if len(in_flight) >= 100:
                        break
                    if sequence in published:
                        continue
                    info = client.publish(fleet_wire.topic(box.box_id, "telemetry"), fleet_wire.encode(signed), qos=1)
                    in_flight[info.mid] = sequence
                    published.add(sequence)
                client.loop(0.01)
            drain = time.perf_counter() - started
            time.sleep(1.0)
            watcher.loop_stop()
            check = TelemetryCheck()
            started = time.perf_counter()
            for topic, payload in seen:
                check.feed(topic, payload)
            verify_rate = len(seen) / (time.perf_counter() - started)
            view = check.boxes[box.box_id]
            print("| figure | target | measured |")
            print("|---|---|---|")
            print("| sign + chain + store (outbox, fsync each) | - | %.0f records/s |" % store_rate)
            print("| drain one hour at 1 Hz (%d records) to Mosquitto, PUBACK deletes | < 10 s | %.2f s (%.0f/s) |"
                  % (HOUR, drain, HOUR / drain))  # fmt: skip
            print("| operator check (signature + chain) | >= 10,000/s | %.0f records/s |" % verify_rate)
            print("| records verified / missing | %d / 0 | %d / %d |" % (HOUR, view.records, len(view.gaps())))
        finally:
            broker.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
