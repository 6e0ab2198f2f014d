"""The network verifier's throughput through a real Mosquitto on loopback. Prints a table: signed telemetry
records verified (signature, canonical form, chain facts committed to the shared ledger, PUBACK after commit)
per second by one `mipai-chain verify` process, then by two in one shared-subscription group.

The records are queued in the broker first (each verifier's persistent session subscribes, stops, and the boxes
publish while it is away), so the figure is the verifiers' own rate, not the publisher's: the clock runs from
the verifiers' start (Python start-up included) to the last record committed; "steady" counts from the first
commit. The machine's cores are shared with the broker. `--records N --boxes B` size it (default 60,000 over
50 boxes)."""

import argparse
import os
import sqlite3
import subprocess
import sys
import tempfile
import time
from pathlib import Path

import paho.mqtt.client as mqtt

sys.path.insert(0, os.path.dirname(os.path.dirname(os.path.abspath(__file__))))

from chain_client.ledger import Ledger
from secure_print.signer_key import SignerKey, write_secret_file
from tests.chain_client.boxsim import T0, SimBox
from tests.mosquitto import Mosquitto
from wire import keytext


def verifier(directory: Path, port: int, name: str, seconds: float = 0) -> subprocess.Popen:
    command = [sys.executable, "-m", "chain_client.cli", "--ledger", str(directory / "ledger.sqlite"), "verify",
               "--key", str(directory / "verifier.key"), "--group", "bench", "--client-id", name,
               "--broker-port", str(port)]  # fmt: skip
    if seconds:
        command += ["--seconds", str(seconds)]
    return subprocess.Popen(command, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def committed(directory: Path) -> int:
    with sqlite3.connect(directory / "ledger.sqlite", timeout=30) as db:
        return db.execute("SELECT count(*) FROM telemetry").fetchone()[0]


def run(processes: int, records: int, boxes: int) -> tuple:
    """(seconds from the verifiers' start, records/s after the first commit, per-process message counts) for
    `processes` verifiers draining `records` queued records."""
    with tempfile.TemporaryDirectory(prefix="verify-bench-") as name:
        directory = Path(name)
        broker = Mosquitto(directory)
        broker.start()
        try:
            key = SignerKey.generate(keytext.NETWORK)
            write_secret_file(str(directory / "verifier.key"), key.to_text().encode())
            sims = [SimBox(b"bench %d" % n) for n in range(boxes)]
            ledger = Ledger(str(directory / "ledger.sqlite"))
            for sim in sims:
                ledger.add_box(sim.entry(), T0)
            ledger.close()
            messages = [sims[n % boxes].sample(T0 + n // boxes, "ab" * 16) for n in range(records)]
            names = ["bench-%d" % n for n in range(processes)]
            for name_ in names:  # each session subscribes once, then is away while the records are queued
                process = verifier(directory, broker.port, name_, seconds=1.5)
                process.communicate(timeout=60)
            publisher = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="bench-boxes", protocol=mqtt.MQTTv5)
            publisher.max_inflight_messages_set(1000)
            publisher.connect("127.0.0.1", broker.port)
            publisher.loop_start()
            infos = [publisher.publish(topic, payload, qos=1) for topic, payload in messages]
            for info in infos:
                info.wait_for_publish(120)
            publisher.loop_stop()
            publisher.disconnect()
            started = time.perf_counter()
            running = [verifier(directory, broker.port, name_) for name_ in names]
            deadline, first = time.monotonic() + 600, None
            while (done := committed(directory)) < records and time.monotonic() < deadline:
                if first is None and done:
                    first = (time.perf_counter(), done)
                time.sleep(0.02)
            elapsed = time.perf_counter() - started
            steady = (records - first[1]) / (time.perf_counter() - first[0]) if first else records / elapsed
            counts = []
            for process in running:
                process.terminate()
                output = process.communicate(timeout=60)[0]
                counts.append(int(output.rsplit("verify: ", 1)[1].split()[0]))
            if committed(directory) < records:
                raise SystemExit("only %d of %d records were committed" % (committed(directory), records))
            return elapsed, steady, counts
        finally:
            broker.stop()


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--records", type=int, default=60_000)
    parser.add_argument("--boxes", type=int, default=50)
    args = parser.parse_args()
    print("%-40s  %8s  %18s  %18s  %s" % ("mipai-chain verify, records queued", "seconds", "records/s (start)",
                                          "records/s (steady)", "per process (start)"))  # fmt: skip
    for processes in (1, 2):
        elapsed, steady, counts = run(processes, args.records, args.boxes)
        per = ", ".join("%d" % (count / elapsed) for count in counts)
        label = "%d process%s, %d records, %d boxes" % (processes, "es" * (processes > 1), args.records, args.boxes)
        print("%-40s  %8.2f  %18d  %18d  %s" % (label, elapsed, args.records / elapsed, steady, per))


if __name__ == "__main__":
    main()
