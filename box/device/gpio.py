"""The status LED and the setup button, through gpiozero (lgpio on the device; MockFactory in tests).

The LED shows one pattern per box state; the button's gestures come from box.device.button_gestures. On a machine
without GPIO the box runs without them and says so once.
"""

import logging
import threading
import time
import warnings

from box.device.button_gestures import ButtonGestures

log = logging.getLogger("mipai.gpio")

# pattern -> (on seconds, off seconds, blinks or None for ever); None: steadily on
PATTERNS = {
    "booting": (1.0, 1.0, None),
    "setup": (0.2, 0.8, None),
    "ready": None,
    "printing": (0.5, 0.5, None),
    "error": (0.1, 0.1, None),
    "identify": (0.05, 0.05, 30),
    "confirm_reset": (0.1, 0.3, None),
}


class StatusLed:
    def __init__(self, led) -> None:
        self._led = led
        self.pattern = None

    def show(self, pattern: str) -> None:
        if pattern == self.pattern:
            return
        self.pattern = pattern
        shape = PATTERNS[pattern]
        if shape is None:
            self._led.on()
        else:
            on, off, count = shape
            self._led.blink(on_time=on, off_time=off, n=count, background=True)


class SetupButton:
    """Feeds gpiozero's press and release events, with the time, to the gesture machine; `on_action(name)`."""

    def __init__(self, button, on_action, clock=time.monotonic) -> None:
        self._gestures = ButtonGestures()
        self._clock = clock
        self._on_action = on_action
        self._lock = threading.Lock()
        button.when_pressed = self._pressed
        button.when_released = self._released
        self._button = button

    def _emit(self, actions: list) -> None:
        for action in actions:
            self._on_action(action)

    def _pressed(self) -> None:
        with self._lock:
            actions = self._gestures.press(self._clock())
        self._emit(actions)

    def _released(self) -> None:
        with self._lock:
            actions = self._gestures.release(self._clock())
        self._emit(actions)

    def tick(self) -> None:
        with self._lock:
            actions = self._gestures.tick(self._clock())
        self._emit(actions)


def open_devices(led_pin: int, button_pin: int, on_action):
    """(StatusLed, SetupButton), or (None, None) when this machine has no GPIO."""
    from gpiozero import LED, Button
    from gpiozero.exc import BadPinFactory, GPIOZeroError, PinFactoryFallback

    with warnings.catch_warnings():
        # gpiozero warns once per pin library it cannot use; one line below says what matters.
        warnings.simplefilter("ignore", PinFactoryFallback)
        try:
            return StatusLed(LED(led_pin)), SetupButton(Button(button_pin, pull_up=True, bounce_time=0.05), on_action)
        except (BadPinFactory, GPIOZeroError) as exc:
            log.info("no GPIO on this machine (%s): running without status LED and setup button", exc)
    return None, None
