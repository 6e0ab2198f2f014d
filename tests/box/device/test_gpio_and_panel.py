"""The setup button's gestures, the status LED's patterns (gpiozero's MockFactory pins), and what the panel
does with them: identify, setup mode, factory reset with confirmation."""

import asyncio
import threading
import time

import pytest
from gpiozero import LED, Button, Device
from gpiozero.pins.mock import MockFactory

from box.device import button_gestures as gestures
from box.device.gpio import SetupButton, StatusLed
from box.device.panel import Panel
from box.device.setup_mode import SetupMode
from box.jobs.store_owner import StoreOwner
from box.printing.printer_owner import PrinterOwner
from box.settings import Settings
from box.web.accounts import Accounts


def test_gestures_by_how_long_the_button_is_held():
    machine = gestures.ButtonGestures()
    machine.press(0.0)
    assert machine.release(0.3) == [gestures.IDENTIFY]
    machine.press(10.0)
    assert machine.release(16.0) == [gestures.SETUP_MODE]
    machine.press(20.0)
    assert machine.release(36.0) == [gestures.CONFIRM_RESET]
    machine.press(40.0)
    assert machine.release(40.2) == [gestures.FACTORY_RESET]
    assert machine.release(41.0) == []  # a release without a press does nothing


def test_a_factory_reset_needs_its_confirmation_in_time():
    machine = gestures.ButtonGestures()
    machine.press(0.0)
    assert machine.release(15.5) == [gestures.CONFIRM_RESET]
    assert machine.tick(20.0) == []
    assert machine.tick(26.0) == [gestures.RESET_CANCELLED]
    machine.press(27.0)
    assert machine.release(27.1) == [gestures.IDENTIFY]  # no longer a confirmation
    machine.press(30.0)
    assert machine.release(46.0) == [gestures.CONFIRM_RESET]
    machine.press(47.0)
    assert machine.release(53.0) == [gestures.RESET_CANCELLED]  # a long press is not a confirmation


@pytest.fixture
def pins():
    Device.pin_factory = MockFactory()
    yield Device.pin_factory
    Device.pin_factory.reset()
    Device.pin_factory = None


def _wait(condition, timeout=5.0):
    deadline = time.monotonic() + timeout
    while not condition():
        assert time.monotonic() < deadline, "timed out"
        time.sleep(0.01)


def test_button_presses_on_real_gpiozero_devices_become_gestures(pins):
    now = [100.0]
    actions = []
    seen = threading.Event()

    def record(action):
        actions.append(action)
        seen.set()

    button = SetupButton(Button(27, pull_up=True), record, clock=lambda: now[0])
    pin = pins.pin(27)
    for held, expected in ((0.2, gestures.IDENTIFY), (6.0, gestures.SETUP_MODE)):
        seen.clear()
        pin.drive_low()  # pressed (pull-up: the button pulls the pin to ground)
        time.sleep(0.05)
        now[0] += held
        pin.drive_high()
        _wait(seen.is_set)
        assert actions[-1] == expected
    assert actions == [gestures.IDENTIFY, gestures.SETUP_MODE]
    button.tick()


def test_led_patterns(pins):
    led = StatusLed(LED(17))
    pin = pins.pin(17)
    led.show("ready")
    assert pin.state
    led.show("error")  # 0.1 s on, 0.1 s off
    start = len(pin.states)
    _wait(lambda: len(pin.states) >= start + 4)
    led.show("ready")
    time.sleep(0.05)
    assert pin.state


def test_the_panel_opens_setup_mode_and_resets_after_confirmation(tmp_path):
    async def scenario():
        owner = StoreOwner(str(tmp_path))
        accounts = await owner.run(Accounts)
        await owner.run(lambda _store: accounts.create_admin("first password", "box"))
        await owner.run(lambda _store: accounts.new_api_key("slicer"))
        setup_mode = SetupMode(30)
        setup_mode.finish()
        worker = PrinterOwner(str(tmp_path), Settings.defaults().printer, threading.Event(), owner)
        panel = Panel(owner, accounts, worker, setup_mode, asyncio.get_running_loop())
        now = asyncio.get_running_loop().time()
        assert panel.pattern(now, has_admin=True) == "error"  # no printer
        worker.publish_state(printer={"port": "/dev/ttyUSB0", "baud": 115200})
        assert panel.pattern(now, has_admin=True) == "ready"

        await panel.act(gestures.IDENTIFY)
        assert panel.pattern(asyncio.get_running_loop().time(), True) == "identify"

        await panel.act(gestures.SETUP_MODE)
        assert setup_mode.is_open() and setup_mode.replacing_admin
        await owner.run(lambda _store: accounts.create_admin("second password", "box", replace=True))
        assert await owner.run(lambda _store: accounts.verify("second password"))

        await panel.act(gestures.CONFIRM_RESET)
        assert panel.pattern(asyncio.get_running_loop().time(), True) == "confirm_reset"
        await panel.act(gestures.FACTORY_RESET)
        assert not await owner.run(lambda _store: accounts.has_admin())
        assert await owner.run(lambda _store: accounts.db["api_keys"].count) == 0
        assert setup_mode.is_open()
        events = [event["message"] for event in await owner.call("recent_events", 5)]
        assert "factory reset: admin account, sessions and API keys removed" in events
        owner.close()

    asyncio.run(scenario())
