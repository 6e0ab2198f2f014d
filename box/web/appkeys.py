"""Typed keys of what the web application holds (aiohttp AppKey)."""

import asyncio

from aiohttp import web

from box.device.setup_mode import SetupMode
from box.jobs.spool import Spool
from box.printing.live_status import LiveStatus
from box.web.accounts import Accounts, LoginThrottle
from provisioning.claim_code import ClaimCodes
from secure_print.ledger import PrintLedger

STORE = web.AppKey("store", object)
ACCOUNTS = web.AppKey("accounts", Accounts)
BOX = web.AppKey("box", object)
SPOOL = web.AppKey("spool", Spool)
THROTTLE = web.AppKey("throttle", LoginThrottle)
PRINTER_STATE = web.AppKey("printer_state", object)  # callable returning a description of the printer
SETUP_MODE = web.AppKey("setup_mode", SetupMode)
CLAIM_CODES = web.AppKey("claim_codes", ClaimCodes)
LIVE = web.AppKey("live", LiveStatus)
LEDGER = web.AppKey("ledger", PrintLedger)
SHUTTING_DOWN = web.AppKey("shutting_down", asyncio.Event)
NETWORK = web.AppKey("network", object)  # box.network_watch.NetworkWatch
DATA_ROOT = web.AppKey("data_root", str)  # the box's data directory
DASHBOARD = web.AppKey("dashboard", object)  # async (request, csrf, problem, notice) -> the dashboard's HTML
