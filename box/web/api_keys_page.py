"""The API keys page: named keys for the OctoPrint API (one per slicer or app), when each was made and last used,
and revoke. A new key is shown once, with the address a slicer should use to reach this box."""

import ipaddress
import time
from html import escape

from aiohttp import web

from box.web import pages
from box.web.accounts import api_key_name
from box.web.appkeys import ACCOUNTS, STORE
from box.web.common import current_session, html_response, in_store, logged_in_form


def _when(seconds) -> str:
    return time.strftime("%Y-%m-%d %H:%M", time.localtime(seconds)) if seconds else "never"


def box_address(request: web.Request) -> str:
    """The address a slicer should be given: the name the browser used when it is not a loopback address, else
    the address of the interface that took this connection (the box's own, on the owner's network)."""
    sockname = request.transport.get_extra_info("sockname") if request.transport else None
    own_ip, own_port = (sockname[0], sockname[1]) if sockname else ("127.0.0.1", 80)
    host, name = request.host or "", (request.url.host or "").strip("[]")
    try:
        loopback = ipaddress.ip_address(name).is_loopback
    except ValueError:
        loopback = name == "localhost"
    if host and not loopback:
        return "http://%s" % host
    shown_ip = "[%s]" % own_ip if ":" in own_ip else own_ip
    return "http://%s:%d" % (shown_ip, own_port)


def keys_page(csrf: str, keys: list, address: str, message: str = "", new_key=None, new_name: str = "") -> str:
    shown = ""
    if new_key:
        shown = (
            "<section id=new-key><h2>New key for %s</h2><p>Copy it now: the box keeps only its hash and cannot show it "
            "again.</p><p><code id=api-key>%s</code></p><p>In the slicer's physical printer settings choose "
            "OctoPrint, host <code id=api-host>%s</code>, and paste the key.</p></section>"
            % (escape(new_name), escape(new_key), escape(address))
        )
    rows = "".join(
        "<tr id=key-%s><td class=name>%s</td><td class=made>%s</td><td class=used>%s</td><td>"
        "<form class=inline method=post action=/api-keys/%s/revoke><input type=hidden name=csrf value=%s>"
        "<button id=revoke-%s>revoke</button></form></td></tr>"
        % (key["id"], escape(key["name"]), _when(key["created_at"]), _when(key["last_used"]), key["id"],
           escape(csrf), key["id"])
        for key in keys
    ) or "<tr><td colspan=4>No keys yet.</td></tr>"  # fmt: skip
    body = (
        "%s<section><h1>API keys</h1><p class=note>Slicers (PrusaSlicer, OrcaSlicer, Cura) and apps (Home "
        "Assistant, phone apps) reach this box as an OctoPrint server at <code id=box-address>%s</code>. Make one "
        "key for each, so that one can be revoked without the others.</p>"
        "<form method=post action=/api-keys><input type=hidden name=csrf value=%s>"
        "<p><label>Name <input name=name id=key-name maxlength=40 placeholder=PrusaSlicer></label> "
        "<button id=new-api-key>Make a new API key</button></p></form></section>%s"
        "<section><h2>Keys</h2><table><thead><tr><th>name</th><th>made</th><th>last used</th><th></th></tr>"
        "</thead><tbody id=keys>%s</tbody></table><p><a href=/>Back to the dashboard</a></p></section>"
        % (pages.error_line(message), escape(address), escape(csrf), shown, rows)
    )
    return pages.page("API keys", body)


async def _keys(request: web.Request) -> list:
    return await in_store(request, request.app[ACCOUNTS].api_keys)


async def show(request: web.Request):
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/login")
    return html_response(keys_page(session[1], await _keys(request), box_address(request)))


async def make(request: web.Request):
    csrf, form = await logged_in_form(request)
    accounts = request.app[ACCOUNTS]
    try:
        name = api_key_name(str(form.get("name", "")))
    except ValueError as exc:
        return html_response(keys_page(csrf, await _keys(request), box_address(request), str(exc)), 400)
    key = await in_store(request, accounts.new_api_key, name)
    await request.app[STORE].call("log", "security", "API key %r made" % name)
    return html_response(keys_page(csrf, await _keys(request), box_address(request), new_key=key, new_name=name))


async def revoke(request: web.Request):
    csrf, _form = await logged_in_form(request)
    try:
        name = await in_store(request, request.app[ACCOUNTS].revoke_api_key, request.match_info["key_id"])
    except KeyError:
        message = "No such key (was it revoked already?)."
        return html_response(keys_page(csrf, await _keys(request), box_address(request), message), 404)
    await request.app[STORE].call("log", "security", "API key %r revoked" % name)
    raise web.HTTPFound("/api-keys")


def add_routes(app: web.Application) -> None:
    app.add_routes(
        [
            web.get("/api-keys", show),
            web.post("/api-keys", make),
            web.post(r"/api-keys/{key_id:[0-9a-f]{12}}/revoke", revoke),
        ]
    )
