"""A real Mosquitto on loopback for the fleet tests, which can be stopped and started again on the same port.
Persistence is on, so the test's own subscriber (a persistent MQTT 5 session) keeps what was queued for it
across a restart, as a fleet's verifier would."""

import os
import threading

import paho.mqtt.client as mqtt
from paho.mqtt.packettypes import PacketTypes
from paho.mqtt.properties import Properties

from box.cli.demo_broker import LocalMosquitto, anonymous_config, free_port

RUN_AS = "root" if os.geteuid() == 0 else ""  # as root, Mosquitto would drop to a user who cannot read tmp_path
__all__ = ["RUN_AS", "Listener", "Mosquitto", "free_port"]


class Mosquitto(LocalMosquitto):
    """Anonymous on a loopback port; or, given `config` (a mosquitto.conf of its own), that broker on `port`."""

    def __init__(self, directory, config=None, port=None) -> None:
        port = port or free_port()
        if config is None:
            config = directory / "mosquitto.conf"
            persistence = "persistence true\npersistence_location %s/\nmax_queued_messages 0\n" % directory
            config.write_text(anonymous_config(port, str(directory / "mosquitto.log"), persistence))
        super().__init__(config, port)
        self.directory = directory


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
