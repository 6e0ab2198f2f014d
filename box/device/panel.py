"""The box's front panel: the status LED shows the box's state, the setup button's gestures act on it."""

import asyncio
import contextlib
import logging

from box.device import button_gestures, gpio

log = logging.getLogger("mipai.panel")
IDENTIFY_SECONDS = 3.0


class Panel:
    def __init__(self, owner, accounts, worker, setup_mode, loop, network=None) -> None:
        self._owner = owner
        self._accounts = accounts
        self._worker = worker
        self._setup_mode = setup_mode
        self._loop = loop
        self._network = network
        self.led = None
        self.button = None
        self._override = None  # a pattern shown for a while (identify, reset confirmation)
        self._override_until = 0.0

    def open(self, led_pin: int, button_pin: int) -> None:
        self.led, self.button = gpio.open_devices(led_pin, button_pin, self._from_button_thread)

    def _from_button_thread(self, action: str) -> None:
        self._loop.call_soon_threadsafe(lambda: self._loop.create_task(self.act(action)))

    async def act(self, action: str) -> None:
        """Carry out one gesture of the setup button."""
        now = self._loop.time()
        if action == button_gestures.IDENTIFY:
            self._override, self._override_until = "identify", now + IDENTIFY_SECONDS
            log.info("identify: blinking the status LED")
        elif action == button_gestures.SETUP_MODE:
            self._setup_mode.open_by_button()
            if self._network is not None:
                await self._loop.run_in_executor(None, self._network.request_hotspot)
            await self._owner.call("log", "setup", "setup mode opened with the button")
            log.warning("setup mode: the setup page accepts a new admin password for %d minutes",
                        self._setup_mode.minutes)  # fmt: skip
        elif action == button_gestures.CONFIRM_RESET:
            self._override, self._override_until = "confirm_reset", now + button_gestures.CONFIRM_SECONDS
            log.warning("factory reset: press the button once more within 10 s to confirm")
        elif action == button_gestures.RESET_CANCELLED:
            self._override = None
            log.info("factory reset cancelled")
        elif action == button_gestures.FACTORY_RESET:
            self._override = None
            await self._owner.run(lambda _store: self._accounts.factory_reset())
            self._setup_mode.open_by_button()
            await self._owner.call("log", "setup", "factory reset: admin account, sessions and API keys removed")
            log.warning("factory reset done: open the setup page to set the box up again")
        self._show(now)

    def pattern(self, now: float, has_admin: bool) -> str:
        if self._override is not None and now < self._override_until:
            return self._override
        if not has_admin or (self._setup_mode.replacing_admin and self._setup_mode.is_open()):
            return "setup"
        if self._worker.printer is None:
            return "error"
        return "printing" if self._worker.printing else "ready"

    def _show(self, now: float, has_admin: bool = True) -> None:
        if self.led is not None:
            self.led.show(self.pattern(now, has_admin))

    async def run(self) -> None:
        """Once a second: refresh the LED and let the button's pending confirmation expire."""
        if self.led is not None:
            self.led.show("booting")
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                has_admin = await self._owner.run(lambda _store: self._accounts.has_admin())
                self._show(self._loop.time(), has_admin)
                if self.button is not None:
                    self.button.tick()
                await asyncio.sleep(1.0)
