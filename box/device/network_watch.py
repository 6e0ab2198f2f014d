"""The box's network duty: apply the first-boot file once, and (when `network.manage_wifi` is on, as on the
device) open the setup hotspot when there has been no uplink for a while and close it when one is back."""

import asyncio
import contextlib
import logging
import subprocess
import time

from box.settings import NetworkSettings
from provisioning import device_names, first_boot
from provisioning.hotspot_policy import SCAN_THEN_START, STOP, HotspotPolicy
from provisioning.network_manager import NetworkError, NetworkManager

log = logging.getLogger("mipai.network")
CHECK_SECONDS = 10.0


def set_timezone(zone: str) -> None:
    subprocess.run(["timedatectl", "set-timezone", zone], check=True, capture_output=True, timeout=30)


class NetworkWatch:
    def __init__(self, settings: NetworkSettings, first_boot_file: str, root: str, box) -> None:
        self.settings = settings
        self.first_boot_file = first_boot_file
        self.root = root
        self.box = box
        self.manager = NetworkManager(settings.interface)
        self.policy = HotspotPolicy(settings.hotspot_after_seconds)
        self.networks = []  # the last scan, for the setup page
        self.uplink = None  # last known, when the box manages Wi-Fi

    def apply_first_boot(self) -> None:
        path = self.first_boot_file
        try:
            for step in first_boot.apply(path, self.root, self.manager, set_timezone):
                log.info("first boot: %s", step)
        except (first_boot.FirstBootError, NetworkError, OSError, subprocess.SubprocessError) as exc:
            log.error("first boot file %s not applied: %s", path, exc)

    def _act(self, actions: list) -> None:
        for action in actions:
            if action == SCAN_THEN_START:
                # One radio cannot scan while it is an access point: scan first, offer the list in setup.
                self.networks = self.manager.scan()
                ssid = device_names.hotspot_ssid(self.box.box_id)
                self.manager.start_hotspot(ssid, device_names.hotspot_password(self.box.signing.private_bytes_raw()))
                log.warning("no uplink: setup hotspot %s is on (%d networks seen)", ssid, len(self.networks))
            elif action == STOP:
                self.manager.stop_hotspot()
                log.info("uplink is back: setup hotspot off")

    def check(self) -> None:
        self.uplink = self.manager.has_uplink()
        self._act(self.policy.update(self.uplink, time.monotonic()))

    def describe(self) -> str:
        if not self.settings.manage_wifi:
            return "Managed by the system (Ethernet, or Wi-Fi set up outside the box)."
        uplink = {None: "not checked yet", True: "connected", False: "no uplink"}[self.uplink]
        if self.policy.active:
            return "%s; setup hotspot %s is on." % (uplink.capitalize(), device_names.hotspot_ssid(self.box.box_id))
        return "%s." % uplink.capitalize()

    def request_hotspot(self) -> None:
        """Setup mode from the button: open the hotspot now (when the box manages Wi-Fi)."""
        if self.settings.manage_wifi:
            try:
                self._act(self.policy.request())
            except NetworkError as exc:
                log.error("network: %s", exc)

    def set_hostname(self) -> None:
        name = device_names.device_name(self.box.box_id)
        self.manager.set_hostname(name)
        log.info("host name %s", name)

    async def run(self) -> None:
        loop = asyncio.get_running_loop()
        await loop.run_in_executor(None, self.apply_first_boot)
        if not self.settings.manage_wifi:
            return
        try:
            await loop.run_in_executor(None, self.set_hostname)
        except NetworkError as exc:
            log.error("network: %s", exc)
        with contextlib.suppress(asyncio.CancelledError):
            while True:
                try:
                    await loop.run_in_executor(None, self.check)
                except NetworkError as exc:
                    log.error("network: %s", exc)
                await asyncio.sleep(CHECK_SECONDS)
