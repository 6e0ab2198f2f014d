"""A real Mosquitto on loopback for the fleet tests, which can be stopped and started again on the same port.
Persistence is on, so the test's own subscriber (a persistent MQTT 5 session) keeps what was queued for it
across a restart, as a fleet's verifier would."""

import os
import shutil
import socket
import subprocess
import threading
import time

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


RUN_AS = "root" if os.geteuid() == 0 else ""  # as root, Mosquitto would drop to a user who cannot read tmp_path


class Mosquitto:
    """Anonymous on a loopback port; or, given `config` (a mosquitto.conf of its own), that broker on `port`."""

    def __init__(self, directory, config=None, port=None) -> None:
        self.directory = directory
        self.port = port or free_port()
        self.config = config or directory / "mosquitto.conf"
        if config is None:
            self.config.write_text(
                "listener %d 127.0.0.1\nallow_anonymous true\npersistence true\npersistence_location %s/\n"
                "max_queued_messages 0\nlog_dest file %s\n%s"
                % (self.port, directory, directory / "mosquitto.log", "user %s\n" % RUN_AS if RUN_AS else "")
            )
        self.process = None

    def start(self) -> "Mosquitto":
        binary = shutil.which("mosquitto") or "/usr/sbin/mosquitto"
        self.process = subprocess.Popen([binary, "-c", str(self.config)], stdout=subprocess.DEVNULL,
                                        stderr=subprocess.DEVNULL)  # fmt: skip
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            try:
                socket.create_connection(("127.0.0.1", self.port), timeout=0.2).close()
                return self
            except OSError:
                time.sleep(0.05)
        raise AssertionError("mosquitto did not start on port %d" % self.port)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            self.process.wait(10)
        self.process = None


class Listener:
    """A persistent subscriber that keeps every message it gets, with its MQTT 5 user properties."""

    def __init__(self, broker: Mosquitto, topics, client_id: str = "test-listener") -> None:
        self.messages = []
        self._lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=client_id, protocol=mqtt.MQTTv5)
        self.client.on_message = self._on_message
        self.client.on_connect = lambda c, *_: [c.subscribe(topic, qos=1) for topic in topics]
        properties = Properties(PacketTypes.CONNECT)
        properties.SessionExpiryInterval = 3600
        self.client.reconnect_delay_set(0.2, 1)
        self.client.connect("127.0.0.1", broker.port, clean_start=False, properties=properties)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        pairs = getattr(message.properties, "UserProperty", None) or []
        with self._lock:
            self.messages.append((message.topic, message.payload, ("historical", "1") in pairs))

    def take(self) -> list:
        with self._lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()
