"""The box daemon that `mipai-box run` starts: the composition root. Which thread owns what is written down in
docs/architecture.md."""

import asyncio
import contextlib
import ctypes
import ctypes.util
import logging
import os
import signal
import socket
import subprocess
import threading
import time

from aiohttp import web

from box import data_dir
from box.device import button_gestures
from box.device.network_watch import NetworkWatch
from box.device.panel import Panel
from box.device.setup_mode import SetupMode
from box.fleet_link.agent import FleetAgent
from box.fleet_link.fleet_slot import FLEET_BROKER_SETTING, FleetSlot
from box.jobs.spool import Spool
from box.jobs.store_owner import StoreOwner
from box.log_ring import LogRing
from box.printing.printer_owner import PrinterOwner
from box.settings import Settings, SettingsError
from box.web.accounts import Accounts
from box.web.app import make_app
from provisioning import device_names, identity
from provisioning.claim_code import ClaimCodes

log = logging.getLogger("mipai.box")
STOP_GRACE_SECONDS = 60.0


@contextlib.asynccontextmanager
async def _background(coroutine):
    """Run `coroutine` as a task for the duration of the block, then cancel it and wait for it to end."""
    task = asyncio.get_running_loop().create_task(coroutine)
    try:
        yield task
    finally:
        task.cancel()
        with contextlib.suppress(asyncio.CancelledError):
            await task


M_MMAP_THRESHOLD = -3
MMAP_THRESHOLD_BYTES = 1 << 20


def _return_large_blocks_to_the_system() -> None:
    """Keep glibc from growing its mmap threshold: otherwise the 16 MB that scrypt needs per login stays in the
    process after the first login (measured: idle RSS 70 MB instead of 54 MB)."""
    try:
        ctypes.CDLL(ctypes.util.find_library("c") or "libc.so.6").mallopt(M_MMAP_THRESHOLD, MMAP_THRESHOLD_BYTES)
    except (OSError, AttributeError):  # not glibc: nothing to tune
        pass


class Daemon:
    """The composition root: builds every component, starts them in order as the web app's `cleanup_ctx`
    entries, and stops them in reverse (an entry's teardown runs only when its setup did)."""

    def __init__(self, root: str, settings: Settings) -> None:
        self.root = root
        self.settings = settings
        self.log_ring = LogRing()
        self.stopped = None  # set by SIGTERM, Ctrl-C or a fleet `reboot`

    async def run(self) -> int:
        _return_large_blocks_to_the_system()
        logging.getLogger("mipai").addHandler(self.log_ring)
        loop = asyncio.get_running_loop()
        self.stopped = asyncio.Event()
        box = identity.load_or_create(self.root)
        data_dir.spool_dir(self.root)
        owner = StoreOwner(self.root)
        try:
            for job in await owner.call("recover"):
                log.warning("job %d (%s) was left unfinished: %s", job["id"], job["title"], job["reason"])
            queued = len(await owner.call("jobs", ["queued"]))
            return await self._serve(loop, box, owner, queued)
        finally:
            owner.close()

    async def _serve(self, loop, box, owner: StoreOwner, queued: int) -> int:
        settings = self.settings
        printer_stop = threading.Event()
        printer = PrinterOwner(self.root, settings.printer, printer_stop, owner)
        accounts = await owner.run(Accounts)
        setup_mode = SetupMode(settings.setup.timeout_minutes)
        codes = ClaimCodes(os.path.join(self.root, "claim_code.json"))
        network = NetworkWatch(settings.network, settings.setup.first_boot_file, self.root, box)
        spool = Spool(data_dir.spool_dir(self.root), settings.box.max_upload_mb * 1024 * 1024)
        panel = Panel(owner, accounts, printer, setup_mode, loop, network)

        def make_agent(fleet_settings, fleet_stop: threading.Event) -> FleetAgent:
            return FleetAgent(self.root, fleet_settings, owner, box, printer, spool, fleet_stop,
                              identify=lambda: loop.call_soon_threadsafe(
                                  lambda: loop.create_task(panel.act(button_gestures.IDENTIFY))),
                              reboot=lambda: loop.call_soon_threadsafe(self._reboot),
                              log_lines=self.log_ring.last)  # fmt: skip

        fleet = FleetSlot(await self._with_broker_chosen_on_the_page(owner), make_agent, owner.feed)
        app = make_app(owner, accounts, box, spool, printer, setup_mode, codes, owner.ledger, network, self.root,
                       fleet=fleet)  # fmt: skip

        async def printer_owner(_app):
            printer.start()
            yield
            printer_stop.set()  # a job being printed is cancelled with the safe end sequence
            await loop.run_in_executor(None, printer.join, STOP_GRACE_SECONDS)

        async def fleet_agent(_app):
            # Started before the printer's owner and stopped after it, so a job's last state is still reported.
            fleet.start()
            yield
            await loop.run_in_executor(None, fleet.close)

        async def front_panel(_app):
            panel.open(settings.gpio.led_pin, settings.gpio.button_pin)
            async with _background(panel.run()), _background(network.run()):
                yield

        app.cleanup_ctx.extend([fleet_agent, printer_owner, front_panel])
        host, port = settings.box.http_host, settings.box.http_port
        try:  # the port first: a box that cannot serve its page must not start printing
            listening = socket.create_server((host, port), reuse_port=False)
        except OSError as exc:
            log.error("cannot serve the web app on %s:%d: %s; choose another port with --http-port (or [box] "
                      "http_port in the settings)", host, port, exc.strerror or exc)  # fmt: skip
            return 2
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
        try:
            await runner.setup()
            await web.SockSite(runner, listening).start()
            if not await owner.run(lambda _store: accounts.has_admin()):
                log.warning("setup: open http://%s:%d/setup to create the admin password", host, port)
            code, expires = codes.current(time.time())
            valid_until = time.strftime("%Y-%m-%d %H:%M", time.localtime(expires))
            name = device_names.device_name(box.box_id)
            log.warning("claim code %s (valid until %s); device name %s", code, valid_until, name)
            for signal_number in (signal.SIGTERM, signal.SIGINT):
                loop.add_signal_handler(signal_number, self.stopped.set)
            log.info("box %s running; web app on port %d; %d jobs queued; data in %s", box.box_id, port, queued,
                     self.root)  # fmt: skip
            await self.stopped.wait()
            log.info("stopping")
            return 0
        finally:
            await runner.cleanup()

    async def _with_broker_chosen_on_the_page(self, owner: StoreOwner) -> Settings:
        """The settings, with the fleet broker the owner set on the dashboard (it wins over the file's)."""
        chosen = await owner.call("get_setting", FLEET_BROKER_SETTING)
        if not chosen:
            return self.settings
        try:
            return self.settings.with_changes("fleet", chosen, "the broker set on the dashboard")
        except SettingsError as exc:
            log.warning("%s; using [fleet] from the settings file", exc)
            return self.settings

    def _reboot(self) -> None:
        """A fleet `reboot`: the device restarts; elsewhere the daemon stops, for its supervisor to restart it."""
        if self.settings.network.manage_wifi:
            log.warning("rebooting on the fleet's command")
            subprocess.run(["systemctl", "reboot"], check=False)
        else:
            log.warning("reboot on the fleet's command: this is not the device, so the daemon stops instead")
        self.stopped.set()
