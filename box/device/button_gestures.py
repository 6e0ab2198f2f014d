"""The setup button's gestures, sans-I/O: fed presses, releases and ticks with the time, returns actions.

Short press: identify. Held 5 s: setup mode. Held 15 s: factory reset, but only after a second short press
within 10 s (the LED blinks the confirmation pattern meanwhile); anything else cancels it.
"""

IDENTIFY = "identify"
SETUP_MODE = "setup_mode"
CONFIRM_RESET = "confirm_factory_reset"  # ask for the second press
RESET_CANCELLED = "factory_reset_cancelled"
FACTORY_RESET = "factory_reset"

SETUP_HOLD_SECONDS = 5.0
RESET_HOLD_SECONDS = 15.0
CONFIRM_SECONDS = 10.0


class ButtonGestures:
    def __init__(self) -> None:
        self._pressed_at = None
        self._confirm_until = None

    def press(self, now: float) -> list:
        self._pressed_at = now
        return []

    def release(self, now: float) -> list:
        if self._pressed_at is None:
            return []
        pressed_at, held = self._pressed_at, now - self._pressed_at
        self._pressed_at = None
        if self._confirm_until is not None:
            deadline, self._confirm_until = self._confirm_until, None
            if pressed_at <= deadline and held < SETUP_HOLD_SECONDS:
                return [FACTORY_RESET]
            return [RESET_CANCELLED]
        if held >= RESET_HOLD_SECONDS:
            self._confirm_until = now + CONFIRM_SECONDS
            return [CONFIRM_RESET]
        if held >= SETUP_HOLD_SECONDS:
            return [SETUP_MODE]
        return [IDENTIFY]

    def tick(self, now: float) -> list:
        """Call about once a second: an unanswered confirmation expires."""
        if self._confirm_until is not None and now > self._confirm_until and self._pressed_at is None:
            self._confirm_until = None
            return [RESET_CANCELLED]
        return []
