"""Fixtures of the fleet tests: a real Mosquitto on loopback and a box that trusts the designer."""

import pytest

from tests.mosquitto import Mosquitto
from tests.users import World


@pytest.fixture
def broker(tmp_path):
    directory = tmp_path / "broker"
    directory.mkdir()
    mosquitto = Mosquitto(directory).start()
    yield mosquitto
    mosquitto.stop()


@pytest.fixture
def world(trusted_world: World) -> World:
    return trusted_world
