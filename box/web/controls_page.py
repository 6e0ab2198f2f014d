"""The manual controls page (/controls): preheat (PLA, PETG, custom), cool down, home, jog, extrude and
retract, motors off, and a console for the owner's own commands. Each goes through the printer's owner,
which sends it only while no job runs; each, sent or refused, is written to the event log."""

import time
from html import escape

from aiohttp import web

from box.printing import manual_controls
from box.printing.printer_owner import ManualControlRefused
from box.web import pages
from box.web.appkeys import LIVE, MANUAL_CONTROLS, PRINTER_STATE, STORE
from box.web.common import html_response, logged_in_form, logged_in_page


def _form(action: str, csrf: str, inner: str, button_id: str, label: str) -> str:
    return (
        "<form class=inline method=post action=/controls/%s><input type=hidden name=csrf value=%s>%s"
        "<button id=%s>%s</button></form> " % (action, escape(csrf), inner, button_id, escape(label))
    )


def _button(action: str, csrf: str, name: str, value: str, button_id: str, label: str) -> str:
    return _form(action, csrf, '<input type=hidden name=%s value="%s">' % (name, escape(value)), button_id, label)


def console_html(lines: list, now: float) -> str:
    """The console's last lines, oldest first: `> ` sent by hand, `< ` what the printer answered."""
    items = "".join("<li>%s <code>%s</code></li>" % (pages.when(at, now), escape(line)) for at, line in lines)
    return items or "<li class=note>Nothing sent by hand yet.</li>"


def controls_html(csrf: str, printer: str, live: dict, message: str = "", notice: str = "") -> str:
    now = time.time()
    job = live.get("job")
    running = "<p id=controls-state class=error>Job %d is printing: the controls wait until it has ended.</p>" % (
        job["number"]) if job else "<p id=controls-state class=note>No job is printing: the controls are sent " \
        "to the printer at once.</p>"  # fmt: skip
    presets = "".join(
        _button("preheat", csrf, "preset", name, "preheat-%s" % name.lower(), "%s (%d / %d °C)" % (name, *temps))
        for name, temps in manual_controls.PRESETS.items()
    )
    custom = _form("preheat", csrf, "<input type=hidden name=preset value=custom><label>hotend °C <input "
                   "name=hotend id=hotend inputmode=numeric size=4 value=200></label> <label>bed °C <input name=bed "
                   "id=bed inputmode=numeric size=4 value=60></label> ", "preheat-custom", "Preheat")  # fmt: skip
    home = "".join(_button("home", csrf, "axes", axes, "home-%s" % axes.lower(), "Home %s" % (axes if axes != "XYZ"
                   else "all")) for axes in ("XYZ", "X", "Y", "Z"))  # fmt: skip
    jog = _form("jog", csrf, "<label>axis <select name=axis id=jog-axis><option>X<option>Y<option>Z</select></label>"
                " <label>mm <input name=distance id=jog-distance inputmode=decimal size=5 value=10></label> ",
                "jog", "Jog")  # fmt: skip
    extrude = "".join(
        _form("extrude", csrf, '<input type=hidden name=direction value=%s><input type=hidden name=length value=5>'
              % direction, direction, "%s 5 mm" % direction.capitalize())
        for direction in ("extrude", "retract")
    )  # fmt: skip
    console_lines = console_html(live.get("console", []), now)
    console = _form("console", csrf, "<label>command <input name=command id=console-command maxlength=%d "
                    "autocomplete=off placeholder=M503></label> " % manual_controls.MAX_CONSOLE_BYTES,
                    "console-send", "Send")  # fmt: skip
    return pages.page(
        "Controls",
        "%s<section><h1>Manual controls</h1><p id=printer>%s</p>%s<div id=live>%s</div>"
        "<h2>Temperature</h2><p>%s</p><p>%s</p><p>%s</p>"
        "<h2>Move</h2><p>%s</p><p>%s</p><p>%s</p><p>%s</p></section>"
        "<section><h2>Console</h2><p class=note>One G-code command of your own; the box adds line numbers and "
        "checksums. The printer's answers of the next seconds are shown.</p><p>%s</p><ul id=console>%s</ul>"
        "</section><script>%s</script>"
        % (pages.error_line(message) + pages.notice_line(notice), escape(printer), running,
           pages.live_html(live, time.monotonic()), presets, custom,
           _button("cooldown", csrf, "all", "1", "cooldown", "Cool down"), home, jog, extrude,
           _button("motors-off", csrf, "all", "1", "motors-off", "Motors off"), console,
           console_lines, pages.DASHBOARD_SCRIPT),
        nav=True,
    )  # fmt: skip


async def _page(request: web.Request, csrf: str, message: str = "", notice: str = "") -> str:
    live = request.app[LIVE].snapshot(time.monotonic())
    return controls_html(csrf, request.app[PRINTER_STATE](), live, message, notice)


async def controls_view(request: web.Request):
    return await logged_in_page(request, _page)


async def control(request: web.Request):
    csrf, form = await logged_in_form(request)
    action = request.match_info["action"]
    store = request.app[STORE]
    try:
        description, commands = manual_controls.commands_for(action, form)
    except manual_controls.ControlRefused as exc:
        return html_response(await _page(request, csrf, "Not sent: %s." % exc), 400)
    try:
        request.app[MANUAL_CONTROLS](description, commands)
    except ManualControlRefused as exc:
        await store.call("log", "control", "refused, %s: %s" % (exc, description))
        return html_response(await _page(request, csrf, "Not sent: %s." % exc), 409)
    await store.call("log", "control", "%s (%s)" % (description, "; ".join(commands)))
    return html_response(await _page(request, csrf, "", "On its way to the printer: %s." % description))


def add_routes(app: web.Application) -> None:
    actions = "|".join(manual_controls.ACTIONS)
    app.add_routes([web.get("/controls", controls_view), web.post(r"/controls/{action:%s}" % actions, control)])
