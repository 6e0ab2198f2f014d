"""Fixtures shared by the whole suite."""

import pytest

from tests.mosquitto import Mosquitto
from tests.users import World


@pytest.fixture
def world(tmp_path) -> World:
    """A fresh designer folder and box data directory."""
    return World(tmp_path)


@pytest.fixture
def trusted_world(world: World) -> World:
    """The same, with the box trusting the designer's key."""
    assert world.box("trust", "add", world.designer_public).returncode == 0
    return world


@pytest.fixture
def broker(tmp_path):
    """A real Mosquitto on a free loopback port, stopped after the test."""
    directory = tmp_path / "broker"
    directory.mkdir()
    mosquitto = Mosquitto(directory).start()
    yield mosquitto
    mosquitto.stop()
