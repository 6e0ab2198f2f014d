"""Fixtures of the fleet tests: a box that trusts the designer (the broker fixture is in tests/conftest.py)."""

import pytest

from tests.users import World


@pytest.fixture
def world(trusted_world: World) -> World:
    return trusted_world
