"""When the setup wizard may run: on first start until the admin password exists, for a limited time; again
after the setup button is held 5 s (then it may replace the admin password). It ends when finished or timed out."""

import time


class SetupMode:
    def __init__(self, minutes: int, clock=time.monotonic) -> None:
        self._clock = clock
        self.minutes = minutes
        self._until = clock() + minutes * 60
        self.replacing_admin = False
        self.steps_open = False  # after the password: the printer and network steps, then done

    def is_open(self) -> bool:
        return self._clock() <= self._until

    def open_by_button(self) -> None:
        self._until = self._clock() + self.minutes * 60
        self.replacing_admin = True

    def password_set(self) -> None:
        self.replacing_admin = False
        self.steps_open = True

    def steps_allowed(self) -> bool:
        return self.steps_open and self.is_open()

    def finish(self) -> None:
        self._until = float("-inf")
        self.replacing_admin = False
        self.steps_open = False
