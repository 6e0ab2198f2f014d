"""The local web app (aiohttp): setup wizard, login, dashboard with live progress, uploads, job controls.

Security: no default credentials (the admin password is made in the setup wizard, which locks once finished or
after its time window); scrypt password hashes; session cookie HttpOnly and SameSite=Strict; a CSRF token on
every state-changing request; wrong passwords lock an address out for a doubling time; no page is cached.
"""

import asyncio
import base64
import hashlib
import json
import secrets
import time

from aiohttp import web

from box import change_feed
from box.device.network_watch import NetworkWatch
from box.device.setup_mode import SetupMode
from box.fleet_link import enrolment_steps
from box.fleet_link.fleet_slot import FleetSlot
from box.jobs import demo_sample
from box.jobs.job_states import IllegalTransition
from box.jobs.spool import Spool, SpoolError
from box.jobs.store import UnknownJob
from box.jobs.store_owner import StoreOwner
from box.printing.printer_owner import PrinterOwner
from box.web import api_keys_page, controls_page, fleet_page, history_page, octoprint_api, pages, rewards_page, wizard
from box.web.accounts import Accounts, LoginThrottle, password_problem
from box.web.appkeys import (
    ACCOUNTS,
    BOX,
    CHANGES,
    CLAIM_CODES,
    DASHBOARD,
    DATA_ROOT,
    FLEET,
    LEDGER,
    LIVE,
    MANUAL_CONTROLS,
    NETWORK,
    PRINTER_INFO,
    PRINTER_STATE,
    SETUP_MODE,
    SHUTTING_DOWN,
    SPOOL,
    STORE,
    THROTTLE,
    ChangeSignal,
)
from box.web.common import (
    SESSION_COOKIE,
    current_session,
    html_response,
    in_store,
    refuse_csrf,
    same_token,
)
from box.web.uploads import store_upload
from provisioning.claim_code import ClaimCodes
from provisioning.identity import BoxIdentity
from secure_print.ledger import PrintLedger

FORM_COOKIE = "mipai_form"  # double-submit CSRF token for forms shown before login
EVENT_SECONDS = 1.0
DASHBOARD_JOBS = 20
DASHBOARD_EVENTS = 10


@web.middleware
async def security_headers(request: web.Request, handler):
    try:
        response = await handler(request)
    except web.HTTPException as exc:
        response = exc
    response.headers["Cache-Control"] = "no-store"
    response.headers["X-Frame-Options"] = "DENY"
    response.headers["X-Content-Type-Options"] = "nosniff"
    response.headers["Referrer-Policy"] = "same-origin"
    response.headers["Content-Security-Policy"] = (
        "default-src 'self'; style-src 'unsafe-inline'; script-src 'sha256-%s'; form-action 'self'" % SCRIPT_HASH
    )
    if isinstance(response, web.HTTPException):
        raise response
    return response


SCRIPT_HASH = base64.b64encode(hashlib.sha256(pages.DASHBOARD_SCRIPT.encode()).digest()).decode()


def _form_token(request: web.Request, response_cookies: dict) -> str:
    token = request.cookies.get(FORM_COOKIE) or secrets.token_urlsafe(24)
    response_cookies[FORM_COOKIE] = token
    return token


def _with_cookies(response: web.StreamResponse, cookies: dict, max_age=None) -> web.StreamResponse:
    for name, value in cookies.items():
        response.set_cookie(name, value, httponly=True, samesite="Strict", path="/", max_age=max_age)
    return response


async def _setup_refusal(request: web.Request):
    """None while the wizard may run, else the page that says why not."""
    mode = request.app[SETUP_MODE]
    if await in_store(request, request.app[ACCOUNTS].has_admin) and not (mode.replacing_admin and mode.is_open()):
        return html_response(pages.message_page("Setup is finished", "This box is set up. Log in to use it."), 403)
    if not mode.is_open():
        text = "Setup mode has ended. Hold the box's button for 5 seconds, or restart it, to set it up."
        return html_response(pages.message_page("Setup mode has ended", text), 403)
    return None


async def index(request: web.Request):
    if not await in_store(request, request.app[ACCOUNTS].has_admin):
        raise web.HTTPFound("/setup")
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/login")
    await demo_sample_first_visit(request)
    return html_response(await _dashboard(request, session[1]))


async def demo_sample_first_visit(request: web.Request) -> None:
    """The demo's sample starts when its owner first reaches the dashboard (box.jobs.demo_sample)."""
    number = await request.app[STORE].run(demo_sample.take_waiting)
    if number is not None:
        await request.app[STORE].call("request", number, "start")


async def _dashboard(request: web.Request, csrf: str, message: str = "", notice: str = "") -> str:
    app = request.app
    loop = asyncio.get_running_loop()
    enrolled = await loop.run_in_executor(None, enrolment_steps.enrolled, app[DATA_ROOT])
    has_token = await loop.run_in_executor(None, enrolment_steps.stored_token, app[DATA_ROOT]) is not None
    jobs = await app[STORE].call("jobs")
    broker = app[FLEET].describe() if FLEET in app else None
    rewards = rewards_page.section(jobs, await app[STORE].call("rewards"))
    fleet = fleet_page.section(csrf, enrolled, has_token, broker) + rewards
    events = await app[STORE].call("recent_events", DASHBOARD_EVENTS)
    name = await in_store(request, app[ACCOUNTS].box_name)
    counts = await in_store(request, app[LEDGER].counts)
    live = pages.live_html(app[LIVE].snapshot(time.monotonic()), time.monotonic())
    network = app[NETWORK].describe()
    printer = app[PRINTER_STATE]()
    licenses = await history_page.licenses(app, jobs)
    return pages.dashboard(name, printer, jobs[-DASHBOARD_JOBS:][::-1], csrf, events, live, counts, network, message,
                           fleet, notice, licenses=licenses)  # fmt: skip


async def _claim_code(request: web.Request) -> str:
    loop = asyncio.get_running_loop()
    code, _expires = await loop.run_in_executor(None, request.app[CLAIM_CODES].current, time.time())
    return code


async def setup_page(request: web.Request):
    refusal = await _setup_refusal(request)
    if refusal is not None:
        return refusal
    cookies = {}
    token = _form_token(request, cookies)
    return _with_cookies(html_response(pages.setup_form(token, request.app[BOX], await _claim_code(request))), cookies)


async def setup_submit(request: web.Request):
    refusal = await _setup_refusal(request)
    if refusal is not None:
        return refusal
    form = await request.post()
    if not same_token(form.get("csrf"), request.cookies.get(FORM_COOKIE)):
        return refuse_csrf()
    password, confirmation = str(form.get("password", "")), str(form.get("confirmation", ""))
    name = " ".join(str(form.get("box_name", "")).split())[:40] or "mipai-" + request.app[BOX].box_id[:4]
    problem = password_problem(password, confirmation)
    if problem:
        page = pages.setup_form(form["csrf"], request.app[BOX], await _claim_code(request), problem, name)
        return html_response(page, 400)
    replacing = request.app[SETUP_MODE].replacing_admin
    try:
        await in_store(request, request.app[ACCOUNTS].create_admin, password, name, replacing)
    except PermissionError:
        return html_response(pages.message_page("Setup is finished", "This box is set up. Log in to use it."), 403)
    request.app[SETUP_MODE].password_set()
    await request.app[STORE].call("log", "setup", "admin password set; the box is named %r" % name)
    token, _csrf = await in_store(request, request.app[ACCOUNTS].new_session)
    return _with_cookies(web.HTTPFound("/setup/printer"), {SESSION_COOKIE: token})


async def login_page(request: web.Request):
    cookies = {}
    token = _form_token(request, cookies)
    return _with_cookies(html_response(pages.login_form(token)), cookies)


async def login_submit(request: web.Request):
    throttle, address = request.app[THROTTLE], request.remote or "unknown"
    form = await request.post()
    if not same_token(form.get("csrf"), request.cookies.get(FORM_COOKIE)):
        return refuse_csrf()
    wait = throttle.wait_seconds(address)
    if wait:
        message = "Too many wrong passwords: try again in %d s." % wait
        return html_response(pages.login_form(form["csrf"], message), 429)
    if not await in_store(request, request.app[ACCOUNTS].verify, str(form.get("password", ""))):
        throttle.failed(address)
        await request.app[STORE].call("log", "security", "wrong password from %s" % address)
        return html_response(pages.login_form(form["csrf"], "Wrong password."), 401)
    throttle.succeeded(address)
    token, _csrf = await in_store(request, request.app[ACCOUNTS].new_session)
    return _with_cookies(web.HTTPFound("/"), {SESSION_COOKIE: token})


async def logout(request: web.Request):
    session = await current_session(request)
    form = await request.post()
    if session is None or not same_token(form.get("csrf"), session[1]):
        return refuse_csrf()
    await in_store(request, request.app[ACCOUNTS].end_session, session[0])
    response = web.HTTPFound("/login")
    response.del_cookie(SESSION_COOKIE, path="/")
    return response


async def events(request: web.Request):
    session = await current_session(request)
    if session is None:
        raise web.HTTPUnauthorized()
    response = web.StreamResponse(headers={"Content-Type": "text/event-stream", "Cache-Control": "no-store"})
    await response.prepare(request)
    while True:
        every_job = await request.app[STORE].call("jobs")
        jobs = every_job[-DASHBOARD_JOBS:][::-1]
        now = time.monotonic()
        counts = await in_store(request, request.app[LEDGER].counts)
        data = {
            "printer": request.app[PRINTER_STATE](),
            "jobs_html": pages.job_rows(jobs, session[1]),
            "live_html": pages.live_html(request.app[LIVE].snapshot(now), now),
            "counters_html": pages.counters_html(counts, await history_page.licenses(request.app, every_job)),
            "events_html": pages.event_items(await request.app[STORE].call("recent_events", DASHBOARD_EVENTS)),
            "network": request.app[NETWORK].describe(),
        }
        if FLEET in request.app:
            data["broker"] = request.app[FLEET].describe()["state"]
        if request.query.get("console"):
            data["console_html"] = controls_page.console_html(request.app[LIVE].snapshot(now)["console"], time.time())
        try:
            await response.write(("data: %s\n\n" % json.dumps(data)).encode())
        except (ConnectionResetError, RuntimeError):
            break
        # Sent again after a second, or at once when a job or the printer changes; the box stopping ends it.
        if await request.app[CHANGES].wait(EVENT_SECONDS) and request.app[SHUTTING_DOWN].is_set():
            break
    return response


async def job_action(request: web.Request):
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/login")
    form = await request.post()
    if not same_token(form.get("csrf") or request.headers.get("X-CSRF-Token"), session[1]):
        return refuse_csrf()
    try:
        await request.app[STORE].call("request", int(request.match_info["number"]), request.match_info["action"])
    except (UnknownJob, IllegalTransition) as exc:
        return html_response(await _dashboard(request, session[1], str(exc)), 409)
    raise web.HTTPFound("/")


async def upload(request: web.Request):
    session = await current_session(request)
    if session is None:
        raise web.HTTPFound("/login")
    try:
        reader = await request.multipart()
        part = await reader.next()
        if part is None or part.name != "csrf" or not same_token(await part.text(), session[1]):
            return refuse_csrf()
        part = await reader.next()
        if part is None or part.name != "file":
            return html_response(await _dashboard(request, session[1], "Choose a file to upload."), 400)
    except ValueError:
        return html_response(
            await _dashboard(request, session[1], "The upload is not a form the box understands."), 400
        )
    try:
        job_id, path, title = await store_upload(request.app, part)
    except SpoolError as exc:
        return html_response(await _dashboard(request, session[1], "Upload refused: %s" % exc), 400)
    await request.app[STORE].call("add_job", job_id, title, path)
    raise web.HTTPFound("/")


def make_app(
    store: StoreOwner,
    accounts: Accounts,
    box: BoxIdentity,
    spool: Spool,
    printer: PrinterOwner,
    setup_mode: SetupMode,
    claim_codes: ClaimCodes,
    ledger: PrintLedger,
    network: NetworkWatch,
    root: str,
    fleet: FleetSlot | None = None,
) -> web.Application:
    app = web.Application(middlewares=[security_headers], client_max_size=64 * 1024)
    app[STORE] = store
    app[ACCOUNTS] = accounts
    app[BOX] = box
    app[SPOOL] = spool
    app[THROTTLE] = LoginThrottle()
    app[PRINTER_STATE] = printer.describe_printer
    app[PRINTER_INFO] = lambda: printer.printer
    app[LIVE] = printer.live
    app[MANUAL_CONTROLS] = printer.submit_manual
    app[LEDGER] = ledger
    app[NETWORK] = network
    app[SHUTTING_DOWN] = asyncio.Event()
    app[DATA_ROOT] = root
    app[DASHBOARD] = _dashboard
    if fleet is not None:
        app[FLEET] = fleet

    app[CHANGES] = ChangeSignal()

    async def follow_changes(app: web.Application) -> None:
        store.feed.on_loop(asyncio.get_running_loop(), app[CHANGES].notify, change_feed.JOB, change_feed.PRINTER)

    async def end_streams(app: web.Application) -> None:
        app[SHUTTING_DOWN].set()
        app[CHANGES].notify()

    app.on_startup.append(follow_changes)

    app.on_shutdown.append(end_streams)
    app[SETUP_MODE] = setup_mode
    app[CLAIM_CODES] = claim_codes
    app.add_routes(
        [
            web.get("/", index),
            web.get("/setup", setup_page),
            web.post("/setup", setup_submit),
            web.get("/login", login_page),
            web.post("/login", login_submit),
            web.post("/logout", logout),
            web.get("/events", events),
            web.post("/jobs", upload),
            web.post(r"/jobs/{number:\d+}/{action:start|pause|resume|cancel}", job_action),
        ]
    )
    octoprint_api.add_routes(app)
    api_keys_page.add_routes(app)
    fleet_page.add_routes(app)
    history_page.add_routes(app)
    controls_page.add_routes(app)
    wizard.add_routes(app)
    return app
