"""`mipai-box run`: the box daemon. One composition root: it builds the components, starts them in order and
stops them in reverse on SIGTERM or Ctrl-C. The printer's owner is a thread (blocking serial I/O); the event
loop waits for signals, and will serve the local web app."""

import asyncio
import ctypes
import ctypes.util
import logging
import os
import signal
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
from box.jobs.spool import Spool
from box.jobs.store import Store
from box.jobs.store_owner import StoreOwner
from box.log_ring import LogRing
from box.printing.printer_owner import PrintWorker
from box.web.accounts import Accounts
from box.web.app import make_app
from provisioning import device_names, identity
from provisioning.claim_code import ClaimCodes
from secure_print.ledger import PrintLedger

log = logging.getLogger("mipai.box")
STOP_GRACE_SECONDS = 60.0


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
    def __init__(self, root: str, settings) -> None:
        self.root = root
        self.settings = settings
        self.stop_requested = threading.Event()
        self.log_ring = LogRing()

    async def run(self) -> int:
        _return_large_blocks_to_the_system()
        logging.getLogger("mipai").addHandler(self.log_ring)
        box = identity.load_or_create(self.root)
        store = Store(os.path.join(self.root, "box.sqlite"))
        try:
            for job in store.recover():
                log.warning("job %d (%s) was left unfinished: %s", job["id"], job["title"], job["reason"])
            queued = len(store.jobs(["queued"]))
        finally:
            store.close()
        data_dir.spool_dir(self.root)
        worker = PrintWorker(self.root, self.settings, self.stop_requested)
        owner = StoreOwner(self.root)
        accounts = await owner.run(Accounts)
        setup_mode = SetupMode(self.settings.get("setup", "timeout_minutes"))
        codes = ClaimCodes(os.path.join(self.root, "claim_code.json"))
        ledger = await owner.run(lambda _store: PrintLedger(data_dir.ledger_file(self.root)))
        max_bytes = self.settings.get("box", "max_upload_mb") * 1024 * 1024
        network = NetworkWatch(self.settings, self.root, box)
        spool = Spool(data_dir.spool_dir(self.root), max_bytes)
        app = make_app(owner, accounts, box, spool, worker, setup_mode, codes, ledger, network, self.root)
        runner = web.AppRunner(app, handle_signals=False, access_log=None, shutdown_timeout=5.0)
        await runner.setup()
        host, port = self.settings.get("box", "http_host"), self.settings.get("box", "http_port")
        site = web.TCPSite(runner, host, port)
        try:
            await site.start()
        except OSError as exc:
            await runner.cleanup()
            owner.close()
            log.error("cannot serve the web app on %s:%d: %s", host, port, exc.strerror or exc)
            return 2
        if not await owner.run(lambda _store: accounts.has_admin()):
            log.warning("setup: open http://%s:%d/setup to create the admin password", host, port)
        loop = asyncio.get_running_loop()
        panel = Panel(owner, accounts, worker, setup_mode, loop, network)
        panel.open(self.settings.get("gpio", "led_pin"), self.settings.get("gpio", "button_pin"))
        panel_task = loop.create_task(panel.run())
        network_task = loop.create_task(network.run())
        code, expires = codes.current(time.time())
        valid_until = time.strftime("%Y-%m-%d %H:%M", time.localtime(expires))
        name = device_names.device_name(box.box_id)
        log.warning("claim code %s (valid until %s); device name %s", code, valid_until, name)
        stopped = asyncio.Event()
        for signal_number in (signal.SIGTERM, signal.SIGINT):
            loop.add_signal_handler(signal_number, stopped.set)
        fleet = FleetAgent(self.root, self.settings, box, worker, spool, self.stop_requested,
                           identify=lambda: loop.call_soon_threadsafe(
                               lambda: loop.create_task(panel.act(button_gestures.IDENTIFY))),
                           reboot=lambda: loop.call_soon_threadsafe(self._reboot, stopped),
                           log_lines=self.log_ring.last)  # fmt: skip
        worker.start()
        if fleet.enabled:
            fleet.start()
        else:
            log.info("no fleet broker configured ([fleet] broker_host): running on its own")
        log.info("box %s running; web app on port %d; %d jobs queued; data in %s", box.box_id, port, queued, self.root)
        try:
            await stopped.wait()
        finally:
            log.info("stopping")
            panel_task.cancel()
            network_task.cancel()
            self.stop_requested.set()
            await runner.cleanup()
            await loop.run_in_executor(None, worker.join, STOP_GRACE_SECONDS)
            if fleet.enabled:
                await loop.run_in_executor(None, fleet.join, 10.0)
            await owner.run(lambda _store: ledger.close())
            owner.close()
        return 0

    def _reboot(self, stopped: asyncio.Event) -> None:
        """A fleet `reboot`: the device restarts; elsewhere the daemon stops, for its supervisor to restart it."""
        if self.settings.get("network", "manage_wifi"):
            log.warning("rebooting on the fleet's command")
            subprocess.run(["systemctl", "reboot"], check=False)
        else:
            log.warning("reboot on the fleet's command: this is not the device, so the daemon stops instead")
        stopped.set()
