"""`mipai-chain verify`, the I/O shell around the verifier's core: an MQTT 5 client in a shared-subscription group
(`$share/GROUP/...`) that batches what arrives, hands it to `verifier.read` and the shared ledger, acknowledges
each message only after its batch is committed (a crash loses nothing: the broker delivers it again), and
publishes each box's signed rewards report, retained. One thread owns the client and the ledger."""

import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from chain_client import verifier
from chain_client.ledger import Ledger
from wire import receipt, topics

SUBSCRIBED = (topics.STATUS, topics.TELEMETRY, topics.EVENT, topics.RECEIPT)
SESSION_EXPIRY_SECONDS = 7 * 24 * 3600  # what the broker keeps for a verifier that is down
MAX_BATCH = 2000
FLUSH_SECONDS = 0.1
REPORT_QUIET_SECONDS = 2.0  # a box's reports quiet this long: one process publishes the newest once more
SWEEP_SECONDS = 5.0  # how often receipts waiting on patience are looked at again
REGISTRY_REFRESH_SECONDS = 1.0


def subscriptions(group: str) -> list:
    """The shared subscriptions of a verify group: every box's status, telemetry, event and receipt topics."""
    return ["$share/%s/%s/+/%s" % (group, topics.PREFIX, name) for name in SUBSCRIBED]


class VerifyService:
    """Fed by its MQTT client's callbacks; `step(now)` commits, decides, acknowledges and publishes."""

    def __init__(self, client: mqtt.Client, ledger: Ledger, key, group: str, patience: int, log=print) -> None:
        self.client = client
        self.ledger = ledger
        self.key = key
        self.group = group
        self.patience = patience
        self.log = log
        self.batch = []  # (topic, payload, mid, qos)
        self.boxes = ledger.boxes()
        self._boxes_read = time.monotonic()
        self._last_flush = time.monotonic()
        self._last_sweep = 0.0
        self._payments_seen = 0  # the last payment (ledger row) whose box was sent its report
        self.counts = {"messages": 0, "accepted": 0, "refused": 0}
        self._granted = 0
        self._stopping = False
        client.on_message = self._on_message
        client.on_connect = self._on_connect
        client.on_subscribe = self._on_subscribe

    def _on_connect(self, client, _userdata, _flags, reason_code, _properties) -> None:
        if reason_code.is_failure:
            self.log("verify: the broker refused the connection: %s" % reason_code)
            return
        self._granted = 0
        for topic in subscriptions(self.group):
            client.subscribe(topic, qos=1)

    def _on_subscribe(self, _client, _userdata, _mid, reason_codes, _properties) -> None:
        refused = [code for code in reason_codes if code.is_failure]
        if refused:
            self.log("verify: the broker refused a subscription: %s" % refused[0])
            return
        self._granted += 1
        if self._granted == len(SUBSCRIBED):
            self.log("verify: subscribed to %d topics in group %s" % (self._granted, self.group))

    @property
    def subscribed(self) -> bool:
        """True once the broker granted every subscription of the group."""
        return self._granted == len(SUBSCRIBED)

    def _on_message(self, _client, _userdata, message) -> None:
        self.batch.append((message.topic, message.payload, message.mid, message.qos))

    def _registry(self, messages) -> dict:
        """The registered boxes, read again (at most once a second) when a message names one not known yet."""
        monotonic = time.monotonic()
        if monotonic - self._boxes_read >= REGISTRY_REFRESH_SECONDS:
            for topic, *_rest in messages:
                parts = topic.split("/")
                if len(parts) > 2 and parts[2] not in self.boxes:
                    self.boxes = self.ledger.boxes()
                    self._boxes_read = monotonic
                    break
        return self.boxes

    def step(self, now: int, force: bool = False) -> None:
        """Commit the batch when it is full or old enough, decide what it made decidable, then acknowledge."""
        monotonic = time.monotonic()
        if self.batch and (force or len(self.batch) >= MAX_BATCH or monotonic - self._last_flush >= FLUSH_SECONDS):
            batch, self.batch = self.batch, []
            boxes = self._registry(batch)
            facts = [verifier.read(topic, payload, boxes) for topic, payload, _mid, _qos in batch]
            facts = [fact for fact in facts if fact is not None]
            touched = self.ledger.ingest(facts, now)
            decided = self.ledger.settle(touched, now, self.patience)
            for _topic, _payload, mid, qos in batch:
                if qos:
                    self.client.ack(mid, qos)
            self.counts["messages"] += len(batch)
            receipts = {fact.box_id for fact in facts if isinstance(fact, (verifier.ReceiptFact, verifier.Status))}
            # a box coming online gets a report too: it carries the attestation challenges for its next jobs
            self._publish(receipts | {box_id for box_id, _hash, _verdict in decided}, decided)
        if force or monotonic - self._last_sweep >= SWEEP_SECONDS:
            self._last_sweep = monotonic
            decided = self.ledger.settle(None, now, self.patience)
            self._payments_seen, paid = self.ledger.paid_boxes_after(self._payments_seen)
            self._publish({box_id for box_id, _hash, _verdict in decided} | paid, decided)
            self._publish(self.ledger.unsettled_reports(time.time(), REPORT_QUIET_SECONDS), [], settling=True)
        self._last_flush = monotonic if not self.batch else self._last_flush

    def _publish(self, box_ids, decided, settling: bool = False) -> None:
        for box_id, digest, verdict in decided:
            self.counts[verdict.state] = self.counts.get(verdict.state, 0) + 1
            self.log("verify: %s receipt %s… %s%s" % (box_id, digest[:12], verdict.state,
                     ": " + verdict.reason if verdict.reason else " (%d)" % verdict.reward))  # fmt: skip
        for box_id in sorted(box_ids):
            if len(box_id) != 16:
                continue  # not a box id: nothing to publish to
            body, seq = self.ledger.report(box_id, settling)
            payload = receipt.sign_rewards(body, self.key, int(time.time()), seq)[1]
            self.client.publish(topics.topic(box_id, topics.REWARDS), payload, qos=1, retain=True)

    def _read_waiting(self) -> None:
        """Read the messages already waiting on the socket (paho's loop reads one packet per call)."""
        for _ in range(MAX_BATCH - len(self.batch)):
            before = len(self.batch)
            self.client.loop_read()
            if len(self.batch) == before:
                return

    def poll(self, timeout: float = 0.02) -> None:
        """Read what arrived (waiting up to `timeout` for it) and do what is due."""
        self.client.loop(timeout=timeout)
        self._read_waiting()
        self.step(int(time.time()))

    def publish_reports(self, box_ids) -> None:
        """Publish these boxes' rewards reports again (after a claim paid them)."""
        self._publish(set(box_ids), [])

    def stop(self) -> None:
        """Ask `run` to end after the batch in hand is committed and acknowledged (safe from a signal handler:
        it only sets a flag, so no transaction or acknowledgement is cut in half)."""
        self._stopping = True

    def run(self, seconds: float = 0) -> None:
        """Serve until `seconds` have passed (0: until stopped or interrupted)."""
        deadline = time.monotonic() + seconds if seconds else None
        try:
            while not self._stopping and (deadline is None or time.monotonic() < deadline):
                self.poll()
        except KeyboardInterrupt:
            pass
        self.step(int(time.time()), force=True)
        self.client.loop(timeout=0.1)


def make_client(client_id: str, ca_file: str = "", cert_file: str = "", key_file: str = "") -> mqtt.Client:
    """An MQTT 5 client with a persistent session and manual acknowledgement."""
    client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5,
                         manual_ack=True)  # fmt: skip
    if ca_file:
        client.tls_set(ca_certs=ca_file, certfile=cert_file or None, keyfile=key_file or None)
    client.max_inflight_messages_set(1000)
    return client


def connect(client: mqtt.Client, host: str, port: int) -> None:
    properties = Properties(PacketTypes.CONNECT)
    properties.SessionExpiryInterval = SESSION_EXPIRY_SECONDS
    properties.ReceiveMaximum = 65535
    client.connect(host, port, keepalive=30, clean_start=False, properties=properties)
