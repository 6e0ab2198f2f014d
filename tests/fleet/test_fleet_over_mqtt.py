"""The box's fleet agent against a real Mosquitto on loopback: telemetry arrives complete, signed and chained,
survives a broker outage and a killed box, and signed commands are obeyed or refused with the reason."""

import base64
import hashlib
import http.server
import itertools
import json
import signal
import sqlite3
import threading
import time

import paho.mqtt.client as mqtt
import pytest

from firmware_bridge.virtual_printer import VirtualPrinterProcess
from fleet.telemetry_check import TelemetryCheck
from secure_print.signer_key import SignerKey
from tests.daemon_process import Daemon, job_row, wait_for
from tests.mosquitto import Listener, Mosquitto
from tests.users import World, run
from wire import canonical, command_gate, envelope, keytext, topics

BOX_TOPICS = "%s/+/#" % topics.PREFIX


@pytest.fixture
def operator():
    return SignerKey.generate(keytext.OPERATOR)


def fleet_daemon(world: World, broker: Mosquitto, printer_path: str, operator: SignerKey) -> Daemon:
    return Daemon(world, printer_path).on_broker(broker.port, operators=[operator])


def outbox_count(world: World) -> int:
    with sqlite3.connect(str(world.data_dir / "outbox.sqlite")) as db:
        return db.execute("SELECT COUNT(*) FROM outbox").fetchone()[0]


def checked(listener: Listener) -> TelemetryCheck:
    check = TelemetryCheck()
    refused = []
    for topic, payload, historical in listener.take():
        for finding in check.feed(topic, payload, historical):
            if finding.kind == "refused":
                refused.append(finding.reason)
    assert refused == []
    return check


def records(listener: Listener, box_id: str) -> dict:
    """sequence -> (envelope, historical) of every telemetry and event record seen (duplicates collapse)."""
    seen = {}
    for topic, payload, historical in listener.take():
        if topic.endswith("/telemetry") or topic.endswith("/event"):
            signed = json.loads(payload)
            seen.setdefault(signed["seq"], (signed, historical))
    return seen


@pytest.mark.timeout(300)
def test_a_prints_telemetry_arrives_complete_signed_and_chained(world, broker, operator):
    listener = Listener(broker, [BOX_TOPICS])
    job = world.seal("--max-prints", "5")
    with VirtualPrinterProcess("--planner-moves", "8", "--move-time-scale", "0.1") as printer:
        daemon = fleet_daemon(world, broker, printer.path, operator).start()
        try:
            assert world.box("queue", "add", job).returncode == 0
            wait_for(lambda: job_row(world)["state"] == "done", "the job to finish", timeout=120)
            time.sleep(1.5)
            wait_for(lambda: outbox_count(world) == 0, "the outbox to drain")
        finally:
            assert daemon.stop() == 0
    listener.close()
    check = checked(listener)
    view = check.boxes[world.box_id]
    assert view.chain.gaps() == [] and view.highest == view.records > 0
    body_types = [record.get("type") for record in (r[0]["body"] for r in records(listener, world.box_id).values())]
    assert "sample" in body_types and "broker" in body_types
    job_states = [r[0]["body"]["state"] for r in records(listener, world.box_id).values()
                  if r[0]["body"].get("type") == "job"]  # fmt: skip
    assert job_states[-2:] == ["printing", "done"]
    printing = [r[0] for r in records(listener, world.box_id).values()
                if r[0]["body"].get("type") == "sample" and r[0]["body"]["printer"] == "printing"]  # fmt: skip
    assert len(printing) >= 3 and printing[-1]["body"]["job"]["lines"] == job_row(world)["source_lines"]
    stamps = [r["ts"] for r in printing]
    assert max(b - a for a, b in itertools.pairwise(stamps)) <= 2  # about 1 Hz while printing
    final = [topics.decode(p) for t, p, _h in listener.take() if t.endswith("/status")][-1]
    assert topics.verify_status(world.box_id, final)["online"] is False  # said on the way out


@pytest.mark.timeout(400)  # a 60 s outage inside a print of about 100 s
def test_a_broker_outage_mid_print_loses_nothing_and_keeps_order(world, broker, operator):
    listener = Listener(broker, [BOX_TOPICS])
    job = world.seal("--max-prints", "5")
    with VirtualPrinterProcess("--move-time-scale", "0.6") as printer:  # about 40 s
        daemon = fleet_daemon(world, broker, printer.path, operator).start()
        try:
            assert world.box("queue", "add", job).returncode == 0
            wait_for(lambda: (job_row(world)["last_source_line"] or 0) > 300, "the print to get going")
            broker.stop()
            time.sleep(20)
            assert job_row(world)["state"] == "printing"
            waiting = outbox_count(world)
            assert waiting >= 15  # 20 s of 1 Hz samples waited in the outbox
            broker.start()
            wait_for(lambda: job_row(world)["state"] == "done", "the job to finish", timeout=120)
            time.sleep(1.5)
            wait_for(lambda: outbox_count(world) == 0, "the outbox to drain")
        finally:
            assert daemon.stop() == 0
    time.sleep(0.5)
    listener.close()
    check = checked(listener)
    view = check.boxes[world.box_id]
    assert view.chain.gaps() == [], "records lost in the outage"
    assert view.records == view.highest
    seen = records(listener, world.box_id)
    historical = [seq for seq, (_signed, flag) in seen.items() if flag]
    assert len(historical) >= 15  # what waited out the outage came marked historical
    arrival = [json.loads(p)["seq"] for t, p, _h in listener.take() if t.endswith("/telemetry") or t.endswith("/event")]
    first_arrival = list(dict.fromkeys(arrival))
    assert first_arrival == sorted(first_arrival), "records arrived out of order"


@pytest.mark.timeout(300)
def test_a_killed_box_publishes_what_its_outbox_held_after_restart(world, broker, operator):
    listener = Listener(broker, [BOX_TOPICS])
    with VirtualPrinterProcess() as printer:
        daemon = fleet_daemon(world, broker, printer.path, operator).start()
        wait_for(lambda: world.box_id in checked(listener).boxes, "the box to come online")
        broker.stop()
        assert world.box("queue", "add", world.seal("--max-prints", "5")).returncode == 0
        wait_for(lambda: job_row(world)["state"] == "done", "the job to finish", timeout=120)
        wait_for(lambda: outbox_count(world) >= 4, "records to wait in the outbox")
        waiting = outbox_count(world)
        assert daemon.stop(signal.SIGKILL) == -signal.SIGKILL
        broker.start()
        daemon = fleet_daemon(world, broker, printer.path, operator).start()
        try:
            time.sleep(1.5)
            wait_for(lambda: outbox_count(world) == 0, "the outbox to drain")
        finally:
            assert daemon.stop() == 0
    listener.close()
    view = checked(listener).boxes[world.box_id]
    assert view.chain.gaps() == [] and view.records == view.highest >= waiting
    states = [r[0]["body"].get("state") for r in records(listener, world.box_id).values()]
    assert "done" in states  # the job's end, recorded while the broker was down, arrived


class Operator:
    """Sends commands signed by `key` (or raw payloads) to one box and collects the box's results."""

    def __init__(self, broker: Mosquitto, box_id: str, key: SignerKey) -> None:
        self.box_id = box_id
        self.key = key
        self.key_id = topics.operator_key_id(key.public_bytes)
        self.results = []
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="op-test", protocol=mqtt.MQTTv5)
        self.client.on_message = lambda _c, _u, message: self.results.append(topics.decode(message.payload))
        self.client.connect("127.0.0.1", broker.port)
        self.client.subscribe(topics.topic(box_id, topics.RESULT), qos=1)
        self.client.loop_start()
        time.sleep(0.3)
        self.sequence = 0

    def sign(self, name: str, args=None, box_id=None, expires_in=300, sequence=None, key=None) -> dict:
        if sequence is None:
            self.sequence += 1
            sequence = self.sequence
        now = int(time.time())
        signing = (key or self.key).signing
        key_id = topics.operator_key_id((key or self.key).public_bytes)
        return command_gate.command(box_id or self.box_id, name, args or {}, signing, key_id, now, sequence,
                                    now + expires_in)  # fmt: skip

    def send(self, payload) -> dict:
        """Publish and wait for the next result; returns its verified body."""
        count = len(self.results)
        raw = payload if isinstance(payload, bytes) else canonical.encode(payload)
        self.client.publish(topics.topic(self.box_id, topics.COMMAND), raw, qos=1)
        wait_for(lambda: len(self.results) > count, "the box's result", timeout=20)
        return self.results[count]

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


@pytest.mark.timeout(300)
def test_commands_are_run_only_when_signed_for_this_box_new_and_unexpired(world, broker, operator):
    with VirtualPrinterProcess() as printer:
        daemon = fleet_daemon(world, broker, printer.path, operator).start()
        listener = Listener(broker, [topics.topic(world.box_id, topics.STATUS)], client_id="status")
        wait_for(lambda: world.box_id in checked(listener).boxes, "the box to come online")
        box_key = checked(listener).boxes[world.box_id].key
        listener.close()
        ops = Operator(broker, world.box_id, operator)
        try:

            def verified(result: dict) -> dict:
                return envelope.verify(result, box_key)  # every result is signed by the box

            ok = verified(ops.send(ops.sign("queue.list")))
            assert ok["outcome"] == "succeeded" and ok["data"] == {"jobs": []}

            stranger = SignerKey.generate(keytext.OPERATOR)
            forged = verified(ops.send(ops.sign("reboot", key=stranger)))
            assert forged["outcome"] == "rejected" and "not trusted" in forged["reason"]

            tampered = ops.sign("config.set", {"values": {"printer.material": "PLA"}})
            tampered["body"]["args"]["values"]["printer.material"] = "ABS"
            assert "signature does not verify" in verified(ops.send(tampered))["reason"]

            unsigned = {"box_id": world.box_id, "name": "reboot", "args": {}}
            assert verified(ops.send(unsigned))["outcome"] == "rejected"

            other_box = verified(ops.send(ops.sign("reboot", box_id="aaaaaaaaaaaaaaaa")))
            assert other_box["outcome"] == "rejected" and "not this one" in other_box["reason"]

            expired = verified(ops.send(ops.sign("reboot", expires_in=-5)))
            assert expired["outcome"] == "rejected" and "expired" in expired["reason"]

            with open(world.seal("--max-prints", "5"), "rb") as handle:
                job = handle.read()
            submit = ops.sign("job.submit", {"data": base64.b64encode(job).decode(),
                                             "sha256": hashlib.sha256(job).hexdigest(), "title": "vase"})  # fmt: skip
            queued = verified(ops.send(submit))
            assert queued["outcome"] == "succeeded" and queued["data"]["job"] == 1
            again = verified(ops.send(submit))
            assert again == queued  # a duplicate gets the stored result; nothing is queued twice
            wait_for(lambda: job_row(world)["state"] == "done", "the submitted job to print", timeout=120)

            reused = verified(ops.send(ops.sign("queue.list", sequence=1)))
            assert reused["outcome"] == "rejected" and "already used number 1" in reused["reason"]
            replayed = verified(ops.send(ops.sign("queue.list", sequence=3)))  # 3 was the refused tampered one
            assert replayed["outcome"] == "rejected" and "replayed" in replayed["reason"]

            bad_value = verified(ops.send(ops.sign("config.set", {"values": {"printer.material": "no such!"}})))
            assert bad_value["outcome"] == "failed" and "nothing was changed" in bad_value["reason"]
            unknown = verified(ops.send(ops.sign("format.disk")))
            assert unknown["outcome"] == "rejected" and "unknown command" in unknown["reason"]
            refused_reboot = verified(ops.send(ops.sign("reboot", {"force": "yes"})))
            assert refused_reboot["outcome"] == "rejected" and "force" in refused_reboot["reason"]
            listing = verified(ops.send(ops.sign("queue.list")))
            assert [job["state"] for job in listing["data"]["jobs"]] == ["done"]
        finally:
            ops.close()
            assert daemon.stop() == 0


def test_malformed_payloads_are_refused_and_the_agent_keeps_going(world, broker, operator):
    with VirtualPrinterProcess() as printer:
        daemon = fleet_daemon(world, broker, printer.path, operator).start()
        ops = Operator(broker, world.box_id, operator)
        try:
            wait_for(lambda: "connected to broker" in daemon.log.read_text(), "the agent to connect")
            events = Listener(broker, [topics.topic(world.box_id, topics.EVENT)], "events")
            time.sleep(0.5)
            for payload, why in (
                (b"\x00\xff junk \x80", "not canonical JSON"),
                (b"[" * 5000 + b"]" * 5000, "nested"),
                (b"x" * (topics.MAX_PAYLOAD + 1), "over the"),
                (b'{"kind": "cmd"}', "not canonical"),
                (b"[]", "not a signed command"),
            ):
                result = ops.send(payload)["body"]
                assert result["outcome"] == "rejected" and why in result["reason"], (payload[:20], result)
            assert ops.send(ops.sign("identify"))["body"]["outcome"] == "succeeded"
            fetched = ops.send(ops.sign("logs.fetch", {"lines": 200}))["body"]
            assert fetched["outcome"] == "succeeded"
            text = "\n".join(fetched["data"]["lines"] + fetched["data"]["events"])
            assert "connected to broker" in text and "claim code [redacted]" in text
            code = json.loads((world.data_dir / "claim_code.json").read_text())["code"]
            assert code not in text  # the console shows the claim code; a remote reader does not get it

            # A flood of junk: every piece answered, a bounded number of events, and the agent goes on.
            answered = len(ops.results)
            for n in range(1000):
                ops.client.publish(topics.topic(world.box_id, topics.COMMAND), b"junk %d \x80" % n, qos=1)
            wait_for(lambda: len(ops.results) >= answered + 1000, "answers to the flood", timeout=90)
            assert ops.send(ops.sign("identify"))["body"]["outcome"] == "succeeded"
            time.sleep(7)  # room for one more event, which counts what was left out
            ops.send(b"junk after the flood \x80")

            def refusals() -> list:
                bodies = [json.loads(p)["body"] for _t, p, _h in events.take()]
                return [body for body in bodies if body.get("type") == "command.rejected"]

            wait_for(lambda: any(body["suppressed"] > 0 for body in refusals()), "the flood's summary")
            refused = refusals()
            assert 5 <= len(refused) <= 40, len(refused)
            assert sum(body["suppressed"] for body in refused) + len(refused) >= 1000
            assert {"from", "seq", "reason", "suppressed"} <= set(refused[0])
            assert any("not canonical JSON" in body["reason"] for body in refused)
            assert not any(b"junk" in p for _t, p, _h in events.take())  # never the payload
            outbox_rows = sqlite3.connect(str(world.data_dir / "outbox.sqlite")).execute(
                "SELECT COUNT(*) FROM outbox").fetchone()[0]  # fmt: skip
            assert outbox_rows < 200
        finally:
            events.close()
            ops.close()
            assert daemon.stop() == 0


@pytest.mark.timeout(300)
def test_the_operator_command_line_configures_dispatches_and_watches(world, broker, operator, tmp_path):
    key_file = tmp_path / "op.key"
    key_file.write_text(operator.to_text())
    port = ["--broker-port", str(broker.port)]
    with VirtualPrinterProcess() as printer:
        daemon = fleet_daemon(world, broker, printer.path, operator).start()
        try:
            wait_for(lambda: "connected to broker" in daemon.log.read_text(), "the agent to connect")
            events = Listener(broker, [topics.topic(world.box_id, topics.EVENT)], "config-events")
            signed = ["--key", str(key_file), *port]
            material = run("mipai-fleet", "cmd", world.box_id, "config.set", "printer.material=petg", *signed)
            assert material.returncode == 0 and "succeeded: set printer.material" in material.stdout, material
            fresh = Listener(broker, [topics.topic(world.box_id, topics.CONFIG_REPORTED)], "fresh-reader")

            def reported_petg() -> bool:
                return any(json.loads(p)["body"].get("printer.material") == "PETG" for _t, p, _h in fresh.take())

            wait_for(reported_petg, "the retained config/reported to hold the new value", timeout=2)
            fresh.close()

            def config_event() -> bool:
                bodies = [json.loads(p)["body"] for _t, p, _h in events.take()]
                return any(
                    b.get("type") == "config" and b.get("values") == {"printer.material": "PETG"} for b in bodies
                )

            wait_for(config_event, "the config event", timeout=10)
            events.close()
            bad = run("mipai-fleet", "cmd", world.box_id, "config.set", "printer.port=/dev/x", *signed)
            assert bad.returncode == 1 and "cannot be set remotely" in bad.stdout
            job = world.seal("--max-prints", "5")
            none_fits = run("mipai-fleet", "dispatch", job, "--any", "--material", "PLA", "--key", str(key_file), *port)
            assert none_fits.returncode == 3 and "no online, idle box fits" in none_fits.stdout
            sent = run("mipai-fleet", "dispatch", job, "--any", "--material", "PETG", "--key", str(key_file), *port)
            assert sent.returncode == 0 and world.box_id in sent.stdout and "queued as job 1" in sent.stdout, sent
            wait_for(lambda: job_row(world)["state"] == "done", "the dispatched job to print", timeout=120)
            watched = run("mipai-fleet", "watch", world.box_id, "--seconds", "7", *port)
            assert watched.returncode == 0, watched.stdout
            assert "status: online" in watched.stdout and "sample" in watched.stdout and " °C" in watched.stdout
            assert "records verified, 0 duplicates not counted, 0 missing" in watched.stdout
            table = run("mipai-fleet", "boxes", *port).stdout
            assert any(line.startswith(world.box_id) and " yes " in line for line in table.splitlines()), table
            assert table.splitlines()[0].split()[:2] == ["box", "name"]
        finally:
            assert daemon.stop() == 0


class FlakyJobServer:
    """Serves one file over HTTP; the first full request is cut off halfway, Range requests are answered."""

    def __init__(self, data: bytes) -> None:
        server = self
        self.data = data
        self.requests = []

        class Handler(http.server.BaseHTTPRequestHandler):
            def do_GET(self) -> None:
                ranged = self.headers.get("Range")
                server.requests.append(ranged)
                if ranged:
                    start = int(ranged.split("=")[1].rstrip("-"))
                    self.send_response(206)
                    self.send_header("Content-Range", "bytes %d-%d/%d" % (start, len(data) - 1, len(data)))
                    self.send_header("Content-Length", str(len(data) - start))
                    self.end_headers()
                    self.wfile.write(data[start:])
                    return
                self.send_response(200)
                self.send_header("Content-Length", str(len(data)))
                self.end_headers()
                self.wfile.write(data[: len(data) // 2])  # and the connection drops
                self.wfile.flush()
                self.close_connection = True

            def log_message(self, *args) -> None:
                pass

        self.httpd = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = "http://127.0.0.1:%d/vase.mipjob" % self.httpd.server_address[1]
        threading.Thread(target=self.httpd.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.httpd.shutdown()


@pytest.mark.timeout(300)
def test_a_job_by_url_is_downloaded_resumed_checked_and_queued_and_desired_config_applies(world, broker, operator):
    with open(world.seal("--max-prints", "5"), "rb") as handle:
        job = handle.read()
    server = FlakyJobServer(job)
    with VirtualPrinterProcess() as printer:
        daemon = fleet_daemon(world, broker, printer.path, operator).start()
        ops = Operator(broker, world.box_id, operator)
        try:
            wait_for(lambda: "connected to broker" in daemon.log.read_text(), "the agent to connect")
            time.sleep(0.5)
            digest = hashlib.sha256(job).hexdigest()

            def submit(sha256: str) -> dict:
                """Send job.submit by URL; return the final result after the `accepted` one."""
                count = len(ops.results)
                command = ops.sign("job.submit", {"url": server.url, "sha256": sha256, "title": "by url"})
                assert ops.send(command)["body"]["outcome"] == "accepted"
                wait_for(lambda: len(ops.results) >= count + 2, "the download's result")
                return ops.results[count + 1]["body"]

            cut = submit(digest)
            assert cut["outcome"] == "failed" and "cut short" in cut["reason"] and "resume" in cut["reason"]
            final = submit(digest)  # a new command for the same job resumes the download
            assert final["outcome"] == "succeeded" and final["data"]["job"] == 1, final
            assert server.requests[-1] == "bytes=%d-" % (len(job) // 2)
            other = hashlib.sha256(b"another job").hexdigest()
            assert "cut short" in submit(other)["reason"]
            mismatch = submit(other)
            assert mismatch["outcome"] == "failed" and "does not match" in mismatch["reason"]
            wait_for(lambda: job_row(world)["state"] == "done", "the downloaded job to print", timeout=120)
            spooled = [p.name for p in (world.data_dir / "spool").iterdir()]
            assert spooled == [job_row(world)["job_id"] + ".mipjob"]  # the mismatch left nothing behind

            reported = Listener(broker, [topics.topic(world.box_id, topics.CONFIG_REPORTED)], "cfg")
            now = int(time.time())
            desired = envelope.sign(topics.CONFIG_KIND, {"box_id": world.box_id, "values": {"box.name": "farm 7"}},
                                    operator.signing, ops.key_id, now, 1, now + 600)  # fmt: skip
            ops.client.publish(topics.topic(world.box_id, topics.CONFIG_DESIRED), canonical.encode(desired),
                               qos=1, retain=True)  # fmt: skip

            def named() -> bool:
                return any(json.loads(p)["body"].get("box.name") == "farm 7" for _t, p, _h in reported.take())

            wait_for(named, "the desired name to be reported", timeout=20)
            reported.close()
        finally:
            ops.close()
            server.close()
            assert daemon.stop() == 0
