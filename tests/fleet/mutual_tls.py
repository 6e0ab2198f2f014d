"""Clients of a broker over mutual TLS, with certificates from a fleet CA, for the enrolment and ACL tests."""

import datetime
import threading

import paho.mqtt.client as mqtt

from fleet.ca import FleetCA
from provisioning import enrolment

NOW = datetime.datetime(2026, 12, 1, tzinfo=datetime.UTC)


class TlsClient:
    def __init__(self, port: int, ca_file: str, cert: str, key: str, name: str) -> None:
        self.messages = []
        self.lock = threading.Lock()
        self.client = mqtt.Client(mqtt.CallbackAPIVersion.VERSION2, client_id=name, protocol=mqtt.MQTTv5)
        self.client.tls_set(ca_certs=ca_file, certfile=cert, keyfile=key)
        self.client.on_message = self._on_message
        self.client.connect("127.0.0.1", port)
        self.client.loop_start()

    def _on_message(self, client, userdata, message) -> None:
        with self.lock:
            self.messages.append((message.topic, message.payload))

    def got(self) -> list:
        with self.lock:
            return list(self.messages)

    def close(self) -> None:
        self.client.loop_stop()
        self.client.disconnect()


def box_files(ca: FleetCA, box, directory) -> tuple:
    directory.mkdir()
    cert, key = directory / "box.crt", directory / "box.key"
    cert.write_bytes(ca.enrol(enrolment.make_request(box, ca.new_token(NOW), "CODE"), NOW))
    key.write_bytes(enrolment.private_key_pem_of(box.signing))
    return str(cert), str(key)
