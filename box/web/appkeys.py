"""Typed keys of what the web application holds (aiohttp AppKey)."""

import asyncio
from collections.abc import Awaitable, Callable

from aiohttp import web

from box.device.network_watch import NetworkWatch
from box.device.setup_mode import SetupMode
from box.fleet_link.fleet_slot import FleetSlot
from box.jobs.spool import Spool
from box.jobs.store_owner import StoreOwner
from box.printing.live_status import LiveStatus
from box.web.accounts import Accounts, LoginThrottle
from provisioning.claim_code import ClaimCodes
from provisioning.identity import BoxIdentity
from secure_print.ledger import PrintLedger


class ChangeSignal:
    """Wakes every page stream at once when a job or the printer changes (on the event loop)."""

    def __init__(self) -> None:
        self._event = asyncio.Event()

    def notify(self, _change=None) -> None:
        self._event.set()
        self._event = asyncio.Event()

    async def wait(self, timeout: float) -> bool:
        """True when something changed within `timeout` seconds."""
        try:
            await asyncio.wait_for(self._event.wait(), timeout)
        except TimeoutError:
            return False
        return True


STORE = web.AppKey("store", StoreOwner)
CHANGES = web.AppKey("changes", ChangeSignal)
ACCOUNTS = web.AppKey("accounts", Accounts)
BOX = web.AppKey("box", BoxIdentity)
SPOOL = web.AppKey("spool", Spool)
THROTTLE = web.AppKey("throttle", LoginThrottle)
PRINTER_STATE = web.AppKey("printer_state", Callable[[], str])  # a description of the printer
PRINTER_INFO = web.AppKey("printer_info", Callable[[], dict | None])  # what M115 said, port and baud; None: none
SETUP_MODE = web.AppKey("setup_mode", SetupMode)
CLAIM_CODES = web.AppKey("claim_codes", ClaimCodes)
LIVE = web.AppKey("live", LiveStatus)
LEDGER = web.AppKey("ledger", PrintLedger)  # the store owner's: touch it only through STORE's `run`
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)
NETWORK = web.AppKey("network", NetworkWatch)
DATA_ROOT = web.AppKey("data_root", str)  # the box's data directory
# (description, commands) -> None: queues a manual control for the idle printer, or raises ManualControlRefused
MANUAL_CONTROLS = web.AppKey("manual_controls", Callable[[str, list], None])
FLEET = web.AppKey("fleet", FleetSlot)  # the running fleet agent; absent when the app runs without a daemon
# (request, csrf token, problem, notice) -> the dashboard's HTML
DASHBOARD = web.AppKey("dashboard", Callable[..., Awaitable[str]])
