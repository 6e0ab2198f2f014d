"""The setup wizard's steps after the admin password: confirm the printer, choose the network, done.
They need the session the password step opened and are open only until the wizard finishes (or times out)."""

import asyncio
import re
import time

from aiohttp import web

from box.web import pages
from box.web.appkeys import ACCOUNTS, BOX, CLAIM_CODES, NETWORK, PRINTER_STATE, SETUP_MODE, STORE
from box.web.common import current_session, refuse_csrf, same_token
from provisioning.network_manager import NetworkError

_MATERIAL = re.compile(r"[A-Z0-9][A-Z0-9+\-_.]{0,31}\Z")


async def _wizard_session(request: web.Request):
    """The session's CSRF token while the wizard's steps are open; otherwise raises the right response."""
    if not request.app[SETUP_MODE].steps_allowed():
        raise web.HTTPFound("/")
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/login")
    return session[1]


async def _form(request: web.Request, csrf: str):
    form = await request.post()
    if not same_token(form.get("csrf"), csrf):
        raise web.HTTPForbidden(text=refuse_csrf().text, content_type="text/html")
    return form


def _printer_profile(form) -> tuple:
    """(profile, problem) from the printer step's form."""
    material = str(form.get("material", "")).strip().upper()
    if not _MATERIAL.match(material):
        return None, "name the loaded material, e.g. PLA or PETG"
    try:
        nozzle = float(str(form.get("nozzle_mm", "")).replace(",", "."))
        volume = [int(str(form.get(axis, ""))) for axis in ("x", "y", "z")]
    except ValueError:
        return None, "the nozzle diameter and the build volume are numbers, e.g. 0.4 and 220 x 220 x 250"
    if not 0.1 <= nozzle <= 2.0:
        return None, "a nozzle diameter is between 0.1 and 2.0 mm"
    if not all(10 <= v <= 2000 for v in volume):
        return None, "each side of the build volume is between 10 and 2000 mm"
    return {"material": material, "nozzle_mm": nozzle, "build_volume_mm": volume}, None


async def printer_step(request: web.Request):
    csrf = await _wizard_session(request)
    profile = await request.app[STORE].call("get_setting", "printer.profile", {})
    return web.Response(text=pages.printer_step(csrf, request.app[PRINTER_STATE](), profile), content_type="text/html")


async def printer_submit(request: web.Request):
    csrf = await _wizard_session(request)
    form = await _form(request, csrf)
    profile, problem = _printer_profile(form)
    if problem:
        typed = {"material": str(form.get("material", ""))[:32], "nozzle_mm": str(form.get("nozzle_mm", ""))[:8],
                 "build_volume_mm": [str(form.get(axis, ""))[:6] for axis in ("x", "y", "z")]}  # fmt: skip
        page = pages.printer_step(csrf, request.app[PRINTER_STATE](), typed, problem)
        return web.Response(text=page, content_type="text/html", status=400)
    await request.app[STORE].call("set_setting", "printer.profile", profile)
    await request.app[STORE].call("set_setting", "printer.material", profile["material"])
    await request.app[STORE].call("log", "setup", "printer confirmed: %s, nozzle %.2f mm, %s mm, %s loaded" % (
        request.app[PRINTER_STATE](), profile["nozzle_mm"], "x".join(map(str, profile["build_volume_mm"])),
        profile["material"]))  # fmt: skip
    raise web.HTTPFound("/setup/network")


def _managed(request: web.Request) -> bool:
    return request.app[NETWORK].settings.manage_wifi


async def network_step(request: web.Request):
    csrf = await _wizard_session(request)
    network = request.app[NETWORK]
    if _managed(request) and not network.networks:
        try:
            network.networks = await asyncio.get_running_loop().run_in_executor(None, network.manager.scan)
        except NetworkError as exc:
            page = pages.network_step(csrf, True, [], str(exc))
            return web.Response(text=page, content_type="text/html")
    page = pages.network_step(csrf, _managed(request), network.networks)
    return web.Response(text=page, content_type="text/html")


async def network_submit(request: web.Request):
    csrf = await _wizard_session(request)
    form = await _form(request, csrf)
    if form.get("choice") == "wifi" and _managed(request):
        ssid = str(form.get("manual_ssid") or form.get("ssid") or "").strip()
        if not ssid:
            page = pages.network_step(csrf, True, request.app[NETWORK].networks, "choose a network or type its name")
            return web.Response(text=page, content_type="text/html", status=400)
        manager = request.app[NETWORK].manager
        try:
            await asyncio.get_running_loop().run_in_executor(None, manager.connect, ssid, str(form.get("password", "")))
        except NetworkError as exc:
            typed = {"ssid": str(form.get("ssid") or ""), "manual_ssid": str(form.get("manual_ssid") or "")[:32]}
            problem = "could not join %s: %s" % (ssid, exc)
            page = pages.network_step(csrf, True, request.app[NETWORK].networks, problem, typed)
            return web.Response(text=page, content_type="text/html", status=400)
        await request.app[STORE].call("log", "setup", "joined Wi-Fi %r" % ssid)
    raise web.HTTPFound("/setup/done")


async def done(request: web.Request):
    await _wizard_session(request)
    request.app[SETUP_MODE].finish()
    app = request.app
    loop = asyncio.get_running_loop()
    code, _expires = await loop.run_in_executor(None, app[CLAIM_CODES].current, time.time())
    name = await app[STORE].run(lambda _store: app[ACCOUNTS].box_name())
    await app[STORE].call("log", "setup", "setup finished")
    return web.Response(text=pages.done_page(app[BOX], code, name), content_type="text/html")


def add_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get("/setup/printer", printer_step),
            web.post("/setup/printer", printer_submit),
            web.get("/setup/network", network_step),
            web.post("/setup/network", network_submit),
            web.get("/setup/done", done),
        ]
    )
