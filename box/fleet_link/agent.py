"""The fleet agent: the box's MQTT client (paho-mqtt 2, MQTT 5). One thread owns the connection, the telemetry
outbox and the command log, so none of them is shared between threads. It reaches the job store through the
store's owner, learns of job and printer changes from the change feed, and downloads jobs in a bounded pool.

- `status` (retained) says online with a session number that rises with every connection; the last will says
  offline with the same number. A stale will (from an older session) that lands after the new status is seen on
  our own status topic and answered by publishing the current status again.
- Telemetry and events are signed, chained records from the outbox, published at QoS 1; a row is deleted only
  on the broker's PUBACK. Records made before the current connection are published with the user property
  `historical=1`.
- Commands on `cmd` go through the command gate; every result is signed and published on `cmd/result`.
- `config/desired` (retained) is applied when valid, and `config/reported` says what is in force.
- Reconnects back off exponentially with full jitter; the broker keeps the session (subscriptions and QoS 1
  commands) for `SESSION_EXPIRY` seconds, and retained topics are read again after every reconnect.
"""

import concurrent.futures
import logging
import os
import random
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from box import change_feed, data_dir
from box.fleet_link import command_handlers, telemetry
from box.fleet_link.command_log import CommandLog
from box.fleet_link.outbox import EVENT, SAMPLE, Outbox
from box.jobs.store import UnknownJob, print_facts
from box.printing import challenges
from box.settings import FleetSettings
from wire import command_gate, envelope, keytext, receipt, topics
from wire.command_gate import ACCEPTED, REJECTED

log = logging.getLogger("mipai.fleet")
SESSION_EXPIRY = 3600
MAX_IN_FLIGHT = 100
BACKOFF_FIRST, BACKOFF_MAX = 1.0, 60.0
CAPS_EVERY_SECONDS = 60.0
LOOP_SECONDS = 0.05
STATUS_CHECK_SECONDS = 1.0
MAX_DOWNLOADS = 2  # job downloads at once; more wait their turn
RECENT_JOBS = 200  # the jobs re-read when the feed cannot say which changed


def backoff_delay(attempt: int, rng=random.random) -> float:
    """Full jitter: a random wait up to an exponentially growing ceiling, so a fleet does not reconnect at once."""
    return rng() * min(BACKOFF_MAX, BACKOFF_FIRST * 2**attempt)


def verifier_keys(texts) -> dict:
    """key id -> public key of the network's verifiers in the settings (`mipai-network:` texts)."""
    keys = {}
    for text in texts:
        _kind, key = keytext.decode(text, keytext.NETWORK)
        keys[receipt.verifier_key_id(key)] = key
    return keys


def operator_keys(texts) -> dict:
    """key id -> public key of the operator keys in the settings (`mipai-operator:` texts)."""
    keys = {}
    for text in texts:
        _kind, key = keytext.decode(text, keytext.OPERATOR)
        keys[topics.operator_key_id(key)] = key
    return keys


class FleetAgent:
    def __init__(self, root: str, settings: FleetSettings, store_owner, box, worker, spool, stop: threading.Event,
                 identify=None, reboot=None, log_lines=None):  # fmt: skip
        self.root = root
        self.settings = settings
        self.store = store_owner.blocking_store
        self._rejections = telemetry.RejectionLog()
        self.changes = store_owner.feed.listen(
            change_feed.JOB, change_feed.JOBS_CHANGED_ELSEWHERE, change_feed.SETTING, change_feed.PRINTER
        )
        self.box = box
        self.worker = worker
        self.spool = spool
        self.stop = stop
        self._identify = identify or (lambda: None)
        self._log_lines = log_lines
        self._reboot = reboot or (lambda: log.warning("reboot requested, but this box cannot reboot itself"))
        self.host = settings.broker_host
        self.port = settings.broker_port
        self.operators = operator_keys(settings.operators)
        self.verifiers = verifier_keys(settings.verifiers)
        self.connected = False
        self.thread = threading.Thread(target=self._run, name="fleet", daemon=True)
        self._client = None
        self._connecting = False
        self._session_up = False
        self._status_published = None
        self._session = 0
        self._first_live_seq = 0  # records numbered below the current connection's broker event are historical
        self._in_flight = {}  # message id -> outbox sequence number
        self._published_up_to = 0  # the highest sequence number published on this connection
        self._acknowledged = []  # PUBACKed sequence numbers whose rows are still to be deleted
        self._receipts_in_flight = {}  # message id -> receipt number
        self._receipts_up_to = 0  # the highest receipt number published on this connection
        self._receipts_acknowledged = []
        self._downloads = concurrent.futures.ThreadPoolExecutor(MAX_DOWNLOADS, thread_name_prefix="download")
        self._finished = []  # results of downloads, handed from their threads to ours
        self._finished_lock = threading.Lock()

    @property
    def enabled(self) -> bool:
        return bool(self.host)

    def start(self) -> None:
        self.thread.start()

    def join(self, timeout: float) -> None:
        self.thread.join(timeout)

    def topic(self, name: str) -> str:
        return topics.topic(self.box.box_id, name)

    # -- the thread ------------------------------------------------------------------------------------------

    def _run(self) -> None:
        self.outbox = Outbox(os.path.join(self.root, "outbox.sqlite"), self.box.signing, self.box.box_id,
                             self.settings.max_outbox_records)  # fmt: skip
        self.commands = CommandLog(os.path.join(self.root, "commands.sqlite"))
        self.gate = self.commands.gate(self.box.box_id, self.operators)
        self.context = command_handlers.CommandContext(self.store, self.spool, self.worker, self._identify,
                                                     self._reboot, self._log_lines)  # fmt: skip
        schedule = telemetry.Schedule(self.settings.idle_telemetry_seconds)
        jobs = telemetry.JobWatch(self.outbox.job_states_seen())
        printer_seen = self.worker.printer is not None
        self._job_changes(jobs, None, time.time())  # what changed while the agent was not running
        self._note_receipts(self.outbox.receipts())  # a receipt whose note on the job a stop cut short
        attempt, next_try, caps_at, status_at = 0, 0.0, 0.0, 0.0
        log.info("fleet agent for broker %s:%d; %d records wait in the outbox", self.host, self.port,
                 self.outbox.count())  # fmt: skip
        try:
            while not self.stop.is_set():
                now = time.time()
                if self._client is None and time.monotonic() >= next_try:
                    if self._connect():
                        attempt = 0
                    else:
                        next_try = time.monotonic() + backoff_delay(attempt)
                        attempt += 1
                if self._client is not None:
                    self._client.loop(LOOP_SECONDS)
                    if self._client is not None and not self._client.is_connected() and not self._connecting:
                        self._lost("connection closed")
                        next_try = time.monotonic() + backoff_delay(attempt)
                        attempt += 1
                else:
                    self.stop.wait(LOOP_SECONDS)
                changed_rows, changed_settings = [], {}
                for change in self.changes.drain():
                    if change.kind == change_feed.SETTING:
                        if change.data["key"] in command_handlers.CONFIGURABLE:
                            changed_settings[change.data["key"]] = change.data["value"]
                    elif change.kind == change_feed.PRINTER:
                        printer_now = change.data["printer"] is not None
                        if printer_now != printer_seen:
                            self._event({"type": "printer", "connected": printer_now,
                                         "printer": _printer_name(change.data["printer"])}, now)  # fmt: skip
                            printer_seen = printer_now
                    elif change.kind == change_feed.JOB and changed_rows is not None:
                        changed_rows.append(change.data)
                    else:  # another process changed the jobs: the feed cannot say which
                        changed_rows = None
                if changed_rows != []:
                    self._job_changes(jobs, changed_rows, now)
                if changed_settings:  # from a command, config/desired, the dashboard or the wizard
                    self._event({"type": "config", "values": changed_settings}, now)
                    if self.connected:
                        self._publish_config()
                if schedule.due(now, self.worker.printing):
                    self._sample(now)
                if self.connected and now >= status_at:
                    status_at = now + STATUS_CHECK_SECONDS
                    if self._status_state() != self._status_published:
                        self._publish_status()  # the retained status follows printer, job and material
                self._finish_downloads(now)
                if now >= caps_at:
                    caps_at = now + CAPS_EVERY_SECONDS
                    self.outbox.enforce_caps(now)
                self._publish_pending()
        finally:
            if self._client is not None and self.connected:
                self._client.publish(
                    self.topic(topics.STATUS),
                    topics.encode(topics.status(self.box, self._session, False, int(time.time()))),
                    qos=1,
                    retain=True,
                )
                self._client.loop(0.2)
                self._client.disconnect()
            self.outbox.acknowledged_many(self._acknowledged)
            self.outbox.close()
            self.commands.close()
            self._downloads.shutdown(wait=False, cancel_futures=True)

    # -- connection ------------------------------------------------------------------------------------------

    def _connect(self) -> bool:
        self._session = self.commands.next_number("session")
        client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id="box-" + self.box.box_id,
                             protocol=mqtt.MQTTv5)  # fmt: skip
        client.max_inflight_messages_set(MAX_IN_FLIGHT)
        will = topics.status(self.box, self._session, False, int(time.time()))
        client.will_set(self.topic(topics.STATUS), topics.encode(will), qos=1, retain=True)
        tls = self.settings.tls
        if tls:
            enrolled = data_dir.fleet_tls_files(self.root)
            try:
                client.tls_set(ca_certs=self.settings.ca_file or enrolled["ca.crt"],
                               certfile=self.settings.cert_file or enrolled["box.crt"],
                               keyfile=self.settings.key_file or enrolled["box.key"])  # fmt: skip
            except (OSError, ValueError) as exc:
                log.warning("cannot use the fleet certificate (run mipai-box enrol): %s", exc)
                return False
        client.on_connect = self._on_connect
        client.on_disconnect = self._on_disconnect
        client.on_publish = self._on_publish
        client.on_message = self._on_message
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = SESSION_EXPIRY
        try:
            client.connect(self.host, self.port, keepalive=self.settings.keepalive_seconds,
                           clean_start=False, properties=properties)  # fmt: skip
        except (OSError, ValueError) as exc:
            log.info("broker %s:%d unreachable: %s", self.host, self.port, exc)
            return False
        self._client = client
        self._connecting = True
        return True

    def _on_connect(self, client, userdata, flags, reason_code, properties) -> None:
        self._connecting = False
        if reason_code.is_failure:
            log.warning("broker %s:%d refused the connection: %s", self.host, self.port, reason_code)
            return
        self.connected = True
        self._session_up = True
        self._forget_in_flight()
        for name in (topics.COMMAND, topics.CONFIG_DESIRED, topics.STATUS, topics.REWARDS):
            # retain_handling 0: retained messages (desired config, our own status) are sent on every subscribe
            client.subscribe(self.topic(name), options=mqtt.SubscribeOptions(qos=1))
        self._publish_status()
        self._publish_config()
        log.info("connected to broker %s:%d (session %d)", self.host, self.port, self._session)
        connected = self._event({"type": "broker", "connected": True, "session": self._session}, time.time())
        self._first_live_seq = connected["seq"]

    def _on_disconnect(self, client, userdata, flags, reason_code, properties) -> None:
        if self.connected:
            log.warning("broker connection lost: %s", reason_code)
        self.connected = False

    def _lost(self, why: str) -> None:
        if self._session_up:  # the record of the outage is published once the broker is back
            self._event({"type": "broker", "connected": False, "session": self._session, "why": why}, time.time())
        self._session_up = False
        self.connected = False
        self._client = None
        self._forget_in_flight()

    def _forget_in_flight(self) -> None:
        """A new or lost connection: whatever was not acknowledged is published again."""
        self._in_flight.clear()
        self._published_up_to = 0
        self._receipts_in_flight.clear()
        self._receipts_up_to = 0

    def _status_state(self) -> dict:
        return {
            "printer": _printer_name(self.worker.printer),
            "printing": self.worker.printing,
            "name": self.store.get_setting("box.name", "") or "",
            "material": self.store.get_setting("printer.material", "") or "",
        }

    def _publish_status(self) -> None:
        state = self._status_state()
        self._status_published = state
        signed = topics.status(self.box, self._session, True, int(time.time()), state)
        self._client.publish(self.topic(topics.STATUS), topics.encode(signed), qos=1, retain=True)

    def _publish_config(self) -> None:
        body = command_handlers.reported_config(self.store)
        sequence = self.commands.next_number("config")
        signed = envelope.sign(topics.CONFIG_KIND, body, self.box.signing, self.box.box_id, int(time.time()),
                               sequence)  # fmt: skip
        self._client.publish(self.topic(topics.CONFIG_REPORTED), topics.encode(signed), qos=1, retain=True)

    # -- telemetry -------------------------------------------------------------------------------------------

    def _sample(self, now: float) -> None:
        printing_rows = self.store.jobs(["printing", "paused"]) if self.worker.printing else []
        body = telemetry.sample(self.worker.printer is not None, self.worker.printing,
                                self.worker.live.snapshot(time.monotonic()),
                                printing_rows[-1] if printing_rows else None)  # fmt: skip
        self.outbox.append(body, now, SAMPLE)

    def _event(self, body: dict, now: float) -> dict:
        return self.outbox.append(body, now, EVENT)

    def _publish_pending(self) -> None:
        self.outbox.acknowledged_many(self._acknowledged)
        self._acknowledged.clear()
        room = MAX_IN_FLIGHT - len(self._in_flight)
        if not self.connected or room <= 0:
            return
        for sequence, _created, priority, record in self.outbox.pending_encoded(room, after=self._published_up_to):
            properties = Properties(PacketTypes.PUBLISH)
            if sequence < self._first_live_seq:
                properties.UserProperty = ("historical", "1")
            name = topics.EVENT if priority == EVENT else topics.TELEMETRY
            info = self._client.publish(self.topic(name), record, qos=1, properties=properties)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            self._in_flight[info.mid] = sequence
            self._published_up_to = sequence
        self._publish_receipts()

    def _publish_receipts(self) -> None:
        """Receipts wait in the outbox until the broker's PUBACK, like telemetry (docs/topics.md)."""
        self.outbox.receipts_acknowledged(self._receipts_acknowledged)
        self._receipts_acknowledged.clear()
        room = MAX_IN_FLIGHT - len(self._in_flight) - len(self._receipts_in_flight)
        if room <= 0:
            return
        for sequence, record in self.outbox.pending_receipts(room, after=self._receipts_up_to):
            info = self._client.publish(self.topic(topics.RECEIPT), record, qos=1)
            if info.rc != mqtt.MQTT_ERR_SUCCESS:
                break
            self._receipts_in_flight[info.mid] = sequence
            self._receipts_up_to = sequence

    def _on_publish(self, client, userdata, mid, reason_code, properties) -> None:
        number = self._receipts_in_flight.pop(mid, None)
        if number is not None:
            if reason_code.is_failure:
                log.warning("the broker refused receipt %d: %s", number, reason_code)
            else:
                self._receipts_acknowledged.append(number)
            return
        sequence = self._in_flight.pop(mid, None)
        if sequence is None:
            return
        if reason_code.is_failure:  # kept in the outbox; sent again on the next connection
            log.warning("the broker refused telemetry record %d: %s", sequence, reason_code)
        else:
            self._acknowledged.append(sequence)  # deleted together after this round of the loop

    # -- incoming --------------------------------------------------------------------------------------------

    def _on_message(self, client, userdata, message) -> None:
        try:
            _box_id, name = topics.split_topic(message.topic)
            if name == topics.COMMAND:
                self._command(message.payload)
            elif name == topics.CONFIG_DESIRED:
                self._desired_config(message.payload)
            elif name == topics.STATUS:
                self._own_status(message.payload)
            elif name == topics.REWARDS:
                self._rewards(message.payload)
        except Exception:  # one bad message must never stop the agent
            log.exception("a message on %s could not be handled", message.topic[:200])

    def _command(self, payload: bytes) -> None:
        now = time.time()
        try:
            command = topics.decode(payload)
        except topics.WireError as exc:
            self._send_result({}, REJECTED, str(exc), now)
            self._rejected({}, str(exc), now)
            return
        verdict = self.gate.check(command, now)
        if verdict.action == "repeat":
            self._client.publish(self.topic(topics.RESULT), topics.encode(verdict.stored), qos=1)
            return
        if verdict.action == "reject":
            log.warning("fleet command refused: %s", verdict.reason)
            self._send_result(command, REJECTED, verdict.reason, now)
            self._rejected(command, verdict.reason, now)
            return
        name, args = verdict.command["name"], verdict.command.get("args", {})
        handler = command_handlers.HANDLERS.get(name)
        if handler is None:
            outcome, reason, data = REJECTED, "unknown command %r (known: %s)" % (name, ", ".join(
                command_handlers.HANDLERS)), {}  # fmt: skip
        else:
            try:
                outcome, reason, data = handler(self.context, args)
            except command_handlers.CommandArgumentError as exc:
                outcome, reason, data = REJECTED, str(exc), {}
        log.info("fleet command %s from %s: %s, %s", name, command["key_id"], outcome, reason)
        result = self._send_result(command, outcome, reason, now, data)
        self.commands.remember(self.gate, command, result)
        if name == "job.submit" and outcome == ACCEPTED:
            self._start_download(command, args)
        if outcome == REJECTED:
            self._rejected(command, reason, now)
        else:
            self._event({"type": "command", "name": name, "from": command["key_id"], "outcome": outcome}, now)

    def _rejected(self, command, reason: str, now: float) -> None:
        """An event for a refused command (its reason, key id and number; never its payload), rate-limited."""
        suppressed = self._rejections.admit(now)
        if suppressed is not None:
            self._event(telemetry.rejection_event(command, reason, suppressed), now)

    def _send_result(self, command, outcome: str, reason: str, now: float, data=None) -> dict:
        """Sign and publish a result. A result that cannot be published now is still stored by the caller, and
        a duplicate of the command gets it again."""
        result = command_gate.result(self.box.signing, self.box.box_id, command, outcome, reason, int(now),
                                 self.commands.next_number("result"), data)  # fmt: skip
        if self._client is not None:
            self._client.publish(self.topic(topics.RESULT), topics.encode(result), qos=1)
        return result

    def _job_changes(self, jobs: telemetry.JobWatch, rows, now: float) -> None:
        """Job events for `rows` (the changed jobs), or for the recent jobs when `rows` is None or the feed
        overflowed."""
        if rows is None or self.changes.overflowed:
            self.changes.overflowed = False
            rows = self.store.jobs()[-RECENT_JOBS:]
        changes = jobs.changes(rows)
        if changes:
            facts = {row["id"]: print_facts(row) for row in rows}
            self.outbox.append_job_events(changes, now, facts)
            self._note_receipts(self.outbox.made_receipts)

    def _note_receipts(self, made: list) -> None:
        """Note each new receipt (seq, job, hash, ...) on its job, for the dashboard (idempotent)."""
        for sequence, number, digest, *_sent in made:
            try:
                if not self.store.job(number).get("receipt"):
                    self.store.set_receipt(number, sequence, digest)
            except UnknownJob as exc:  # a job deleted meanwhile
                log.warning("receipt %d: job %d could not be noted: %s", sequence, number, exc)

    def _start_download(self, command: dict, args: dict) -> None:
        def download() -> None:
            outcome = command_handlers.download_job(self.context, args)
            with self._finished_lock:
                self._finished.append((command, outcome))

        self._downloads.submit(download)

    def _finish_downloads(self, now: float) -> None:
        with self._finished_lock:
            finished, self._finished = self._finished, []
        for command, (outcome, reason, data) in finished:
            result = self._send_result(command, outcome, reason, now, data)
            self.commands.remember(self.gate, command, result)
            self._event({"type": "command", "name": "job.submit", "from": command["key_id"], "outcome": outcome},
                        now)  # fmt: skip

    def _desired_config(self, payload: bytes) -> None:
        try:
            signed = topics.decode(payload)
        except topics.WireError as exc:
            log.warning("desired configuration refused: %s", exc)
            return
        if not signed:
            return  # the retained message was cleared
        key = self.operators.get(signed.get("key_id")) if isinstance(signed, dict) else None
        if key is None:
            log.warning("desired configuration refused: not signed by a trusted operator")
            return
        try:
            body = envelope.verify(signed, key, time.time())
        except envelope.EnvelopeError as exc:
            log.warning("desired configuration refused: %s", exc)
            return
        if signed["kind"] != topics.CONFIG_KIND or body.get("box_id") != self.box.box_id:
            log.warning("desired configuration refused: not a configuration for this box")
            return
        values = body.get("values")
        if not isinstance(values, dict):
            log.warning("desired configuration refused: values must be an object")
            return
        _checked, problems = command_handlers.apply_config(self.store, values)
        if problems:
            log.warning("desired configuration refused: %s", "; ".join(problems))
        self._publish_config()  # the values that took effect come back as setting changes: event and report

    def _rewards(self, payload: bytes) -> None:
        """A rewards report on our retained `rewards` topic: kept when a trusted verifier signed it."""
        if not payload:
            return  # the retained message was cleared
        try:
            signed = topics.decode(payload)
            key = self.verifiers.get(signed.get("key_id")) if isinstance(signed, dict) else None
            if key is None:
                log.warning("rewards report ignored: not signed by a verifier in [fleet] verifiers")
                return
            report = receipt.read_rewards(payload, key, self.box.box_id)
        except (topics.WireError, envelope.EnvelopeError, receipt.ReceiptError) as exc:
            log.warning("rewards report ignored: %s", exc)
            return
        if self.store.save_rewards(signed["key_id"], signed["seq"], report):
            log.info("rewards report %d from %s: earned %d, paid %d", signed["seq"], signed["key_id"],
                     report["earned"], report["paid"])  # fmt: skip
            if report["challenges"]:
                self._keep_challenges(report["challenges"])

    def _keep_challenges(self, issued: list) -> None:
        """The verifier's attestation challenges, for the printer owner's next job runs (challenges.sqlite)."""
        store = challenges.ChallengeStore(challenges.challenges_file(self.root))
        try:
            added = store.add(issued, time.time())
        finally:
            store.close()
        if added:
            log.info("%d attestation challenges from the verifier kept for the edge bridge", added)

    def _own_status(self, payload: bytes) -> None:
        try:
            body = topics.verify_status(self.box.box_id, topics.decode(payload))
        except topics.WireError:
            return
        if not body["online"] and body["session"] < self._session and self.connected:
            log.info("a stale last will of session %d replaced our status; publishing it again", body["session"])
            self._publish_status()


def _printer_name(printer) -> str:
    if printer is None:
        return ""
    return str(printer.get("MACHINE_TYPE") or printer.get("FIRMWARE_NAME") or "printer")[:80]
