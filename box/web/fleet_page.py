"""The dashboard's fleet enrolment: the owner pastes the one-time enrolment token the fleet operator gave,
downloads the box's certificate request for the fleet CA, and later uploads the certificate the CA issued (with
the CA's own certificate), which the box checks before it keeps it."""

import asyncio
from html import escape

from aiohttp import web

from box.fleet_link import enrolment_steps
from box.fleet_link.fleet_slot import FLEET_BROKER_SETTING
from box.settings import SettingsError
from box.web.appkeys import BOX, DASHBOARD, DATA_ROOT, FLEET, STORE
from box.web.common import html_response, logged_in_form
from provisioning import enrolment


def broker_html(csrf: str, broker) -> str:
    """The broker's address and the connection's state, and the form that changes them."""
    if broker is None:
        return ""
    if broker["host"]:
        where = "Broker <code>%s:%d</code> (TLS %s): " % (escape(broker["host"]), broker["port"],
                                                         "on" if broker["tls"] else "off")  # fmt: skip
    else:
        where = "No fleet broker: the box runs on its own. "
    return (
        "<p id=broker-state>%s<b id=broker-connection>%s</b></p>"
        "<form method=post action=/fleet/broker><input type=hidden name=csrf value=%s>"
        '<p><label>Broker host <input name=broker_host id=broker-host maxlength=253 value="%s" '
        "placeholder=\"empty: no fleet\"></label> <label>port <input name=broker_port id=broker-port "
        'inputmode=numeric size=5 value="%d"></label> <label><input type=checkbox name=tls id=broker-tls value=on%s>'
        " TLS with the fleet certificate</label> <button id=save-broker>Save and reconnect</button></p></form>"
        % (where, escape(broker["state"]), escape(csrf), escape(broker["host"]), broker["port"],
           " checked" if broker["tls"] else "")
    )  # fmt: skip


def section(csrf: str, enrolled: bool, has_token: bool, broker=None) -> str:
    state = (
        "<p id=fleet-state>Enrolled: this box has its fleet certificate.</p>"
        if enrolled
        else "<p id=fleet-state>Not enrolled in a fleet.</p>"
    )
    token_field = (
        "<input type=hidden name=token value=''><p class=note>The token from the first-boot file is used.</p>"
        if has_token
        else "<label>Enrolment token <input name=token id=enrolment-token autocomplete=off required></label> "
    )
    return (
        "<section><h2>Fleet</h2>%s%s"
        "<form method=post action=/fleet/request><input type=hidden name=csrf value=%s>%s"
        "<button id=enrolment-request>Download the enrolment request</button></form>"
        "<p class=note id=request-words>The download is a certificate request (<code>.csr</code>): send it to "
        "your fleet operator, by e-mail or chat; it holds no secret. They sign it with the fleet's CA and send "
        "back two files, this box's certificate and the CA's own. Install both here, each in its field.</p>"
        "<form method=post action=/fleet/certificate enctype=multipart/form-data>"
        "<input type=hidden name=csrf value=%s><p><label>Certificate from the fleet CA "
        "<input type=file name=certificate id=fleet-certificate required></label> <label>The CA's certificate "
        "<input type=file name=ca id=fleet-ca required></label> <button id=install-certificate>Install</button>"
        "</p></form></section>" % (broker_html(csrf, broker), state, escape(csrf), token_field, escape(csrf))
    )


async def request_download(request: web.Request):
    csrf, form = await logged_in_form(request)
    root, box = request.app[DATA_ROOT], request.app[BOX]
    loop = asyncio.get_running_loop()
    token = str(form.get("token", "")).strip() or await loop.run_in_executor(None, enrolment_steps.stored_token, root)
    try:
        pem = await loop.run_in_executor(None, enrolment_steps.request, root, box, token or "")
    except enrolment.EnrolmentError as exc:
        return await _dashboard_with(request, csrf, str(exc), 400)
    await request.app[STORE].call("log", "fleet", "enrolment request made for the fleet CA")
    return web.Response(body=pem, content_type="application/pkcs10", headers={
        "Content-Disposition": 'attachment; filename="mipai-%s.csr"' % box.box_id})  # fmt: skip


async def certificate_upload(request: web.Request):
    csrf, form = await logged_in_form(request)
    files = {}
    for name in ("certificate", "ca"):
        field = form.get(name)
        if not isinstance(field, web.FileField):
            return await _dashboard_with(request, csrf, "choose both certificate files", 400)
        files[name] = field.file.read(enrolment_steps.MAX_PEM_BYTES + 1)
    root, box = request.app[DATA_ROOT], request.app[BOX]
    try:
        await asyncio.get_running_loop().run_in_executor(
            None, enrolment_steps.install, root, box, files["certificate"], files["ca"])  # fmt: skip
    except enrolment.EnrolmentError as exc:
        return await _dashboard_with(request, csrf, "%s; nothing was installed" % exc, 400)
    await request.app[STORE].call("log", "fleet", "fleet certificate installed")
    return await _dashboard_with(request, csrf, "", 200, "Enrolled: the fleet certificate is installed. With TLS "
                                 "ticked for the broker (or [fleet] tls = true) the box connects with it.")  # fmt: skip


async def broker_change(request: web.Request):
    csrf, form = await logged_in_form(request)
    slot = request.app.get(FLEET)
    if slot is None:
        return await _dashboard_with(request, csrf, "this box runs no fleet link to change", 409)
    port = str(form.get("broker_port", "")).strip()
    chosen = {"broker_host": str(form.get("broker_host", "")).strip(), "broker_port": int(port) if port.isdigit()
              else port, "tls": form.get("tls") == "on"}  # fmt: skip
    try:
        settings = slot.settings.with_changes("fleet", chosen, "the fleet broker")
    except SettingsError as exc:
        return await _dashboard_with(request, csrf, "%s; nothing was changed" % exc, 400)
    await request.app[STORE].call("set_setting", FLEET_BROKER_SETTING, chosen)
    await asyncio.get_running_loop().run_in_executor(None, slot.replace, settings)
    if chosen["broker_host"]:
        said = "the fleet broker is now %s:%d (TLS %s); the fleet link restarted" % (
            chosen["broker_host"], chosen["broker_port"], "on" if chosen["tls"] else "off")  # fmt: skip
    else:
        said = "no fleet broker: the fleet link is stopped and the box runs on its own"
    await request.app[STORE].call("log", "fleet", said)
    return await _dashboard_with(request, csrf, "", 200, said[0].upper() + said[1:] + ".")


async def _dashboard_with(request: web.Request, csrf: str, problem: str, status: int, notice: str = ""):
    return html_response(await request.app[DASHBOARD](request, csrf, problem, notice), status)


def add_routes(app: web.Application) -> None:
    app.add_routes([web.post("/fleet/request", request_download), web.post("/fleet/certificate", certificate_upload),
                    web.post("/fleet/broker", broker_change)])  # fmt: skip
