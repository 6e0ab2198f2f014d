"""The OctoPrint-compatible API that slicers (PrusaSlicer, OrcaSlicer, Cura's OctoPrint plugin) and apps (Home
Assistant's OctoPrint integration, phone apps) call, in OctoPrint's own shapes: docs/octoprint-api.md.

Every request needs an API key from the API keys page, as `X-Api-Key`, `?apikey=` or `Authorization: Bearer`.
A box's jobs are sealed: the API lists them as files and starts, pauses and cancels them, but never hands out
their content (a download is refused) and never shows their G-code.
"""

import os
import shutil
import time
from urllib.parse import quote

from aiohttp import web

from box.jobs import job_states
from box.jobs.spool import SpoolError
from box.jobs.store import UnknownJob, print_facts
from box.web.appkeys import ACCOUNTS, LIVE, PRINTER_INFO, SPOOL, STORE
from box.web.uploads import store_upload

OCTOPRINT_VERSION = "1.10.0"
VERSION = {"api": "0.1", "server": OCTOPRINT_VERSION, "text": "OctoPrint %s (MIP.AI Box)" % OCTOPRINT_VERSION}
ACTIVE = (job_states.VERIFYING, job_states.PRINTING, job_states.PAUSED)
NO_KEY = "Invalid or missing API key: make one on the box's API keys page (/api-keys)"
SEALED_DOWNLOAD = "this box's jobs are sealed: their content is never handed out"
COMMAND_FIELD_CHARS = 20


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


def presented_key(request: web.Request) -> str:
    """The API key as a client sent it: `X-Api-Key`, `Authorization: Bearer KEY` or `?apikey=KEY`."""
    key = request.headers.get("X-Api-Key", "")
    if not key:
        scheme, _, value = request.headers.get("Authorization", "").partition(" ")
        if scheme.lower() == "bearer":
            key = value.strip()
    return key or request.query.get("apikey", "")


@web.middleware
async def require_key(request: web.Request, handler):
    """Every /api/ and /downloads/ route answers only a valid key; the key's last use is noted."""
    if request.path.startswith(("/api/", "/downloads/")):
        key = presented_key(request)
        if await request.app[STORE].run(lambda _store: request.app[ACCOUNTS].api_key_user(key)) is None:
            return _json_error(403, NO_KEY)
    return await handler(request)


# -- what the store and the printer say, in OctoPrint's words ------------------------------------------------------


def _active_job(jobs: list):
    return next((job for job in reversed(jobs) if job["state"] in ACTIVE), None)


def _selected_job(jobs: list):
    """The job OctoPrint would call "selected": the one printing, else the newest held one."""
    return _active_job(jobs) or next((job for job in reversed(jobs) if job["state"] == job_states.HELD), None)


def _state_text(printer, job) -> str:
    if printer is None:
        return "Offline"
    if job is None:
        return "Operational"
    if job["request"] == "cancel":
        return "Cancelling"
    return {job_states.VERIFYING: "Starting", job_states.PRINTING: "Printing", job_states.PAUSED: "Paused"}.get(
        job["state"], "Operational"
    )


def _flags(printer, job) -> dict:
    text = _state_text(printer, job)
    busy = text in ("Starting", "Printing", "Paused", "Cancelling")
    return {
        "operational": printer is not None,
        "printing": text in ("Starting", "Printing"),
        "paused": text == "Paused",
        "pausing": False,
        "resuming": False,
        "cancelling": text == "Cancelling",
        "finishing": False,
        "sdReady": False,
        "error": False,
        "ready": printer is not None and not busy,
        "closedOrError": printer is None,
    }


def _file_name(job) -> str:
    return job["title"]


def _file_info(request: web.Request, job) -> dict:
    name = _file_name(job)
    try:
        size = os.path.getsize(job["spool_path"])  # the sealed file's size: the G-code's is not told
    except OSError:
        size = None
    origin = str(request.url.origin())
    facts = print_facts(job)
    info = {
        "name": name,
        "display": name,
        "path": name,
        "origin": "local",
        "type": "machinecode",
        "typePath": ["machinecode", "gcode"],
        "size": size,
        "date": int(job["created_at"] or 0),
        "refs": {
            "resource": "%s/api/files/local/%s" % (origin, quote(name)),
            "download": "%s/downloads/files/local/%s" % (origin, quote(name)),
        },
        "mipai": {"job": job["id"], "state": job["state"], "sealed": True},
    }
    if job["state"] in job_states.FINISHED and facts:
        success = job["state"] == job_states.DONE
        info["prints"] = {
            "success": int(success),
            "failure": int(not success),
            "last": {"date": facts.get("ended", 0), "success": success},
        }
    return info


def _by_name(jobs: list, name: str):
    """The newest job whose file name is `name`, or None."""
    return next((job for job in reversed(jobs) if _file_name(job) == name), None)


async def _jobs(request: web.Request) -> list:
    return await request.app[STORE].call("jobs")


# -- handlers ----------------------------------------------------------------------------------------------------


async def version(_request: web.Request):
    return web.json_response(VERSION)


async def server(_request: web.Request):
    return web.json_response({"version": OCTOPRINT_VERSION, "safemode": None})


async def job_info(request: web.Request):
    jobs = await _jobs(request)
    job = _selected_job(jobs)
    printer = request.app[PRINTER_INFO]()
    state = _state_text(printer, job if job is not None and job["state"] in ACTIVE else None)
    if job is None:
        return web.json_response(
            {
                "job": {
                    "file": {"name": None, "display": None, "path": None, "origin": None, "size": None, "date": None},
                    "estimatedPrintTime": None,
                    "lastPrintTime": None,
                    "filament": None,
                    "user": None,
                },
                "progress": {
                    "completion": None,
                    "filepos": None,
                    "printTime": None,
                    "printTimeLeft": None,
                    "printTimeLeftOrigin": None,
                },
                "state": state,
            }
        )
    info = _file_info(request, job)
    completion = None
    if job["state"] in ACTIVE and job["source_lines"]:
        completion = 100.0 * (job["last_source_line"] or 0) / job["source_lines"]
    started = print_facts(job).get("started")
    print_time = max(0, int(time.time() - started)) if started and job["state"] in ACTIVE else None
    live = request.app[LIVE].snapshot(time.monotonic())["job"]
    left = None
    if live and live["number"] == job["id"] and live["eta_seconds"] is not None:
        left = int(live["eta_seconds"])
    return web.json_response(
        {
            "job": {
                "file": {key: info[key] for key in ("name", "display", "path", "origin", "size", "date")},
                "estimatedPrintTime": None,
                "lastPrintTime": None,
                "filament": None,
                "user": "owner",
            },
            "progress": {
                "completion": completion,
                "filepos": None,  # a position in the G-code would tell its size
                "printTime": print_time,
                "printTimeLeft": left,
                "printTimeLeftOrigin": "linear" if left is not None else None,
            },
            "state": state,
        }
    )


async def job_command(request: web.Request):
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    command, action = str(body.get("command", ""))[:COMMAND_FIELD_CHARS], body.get("action")
    if request.app[PRINTER_INFO]() is None:
        return _json_error(409, "Printer is not operational")
    jobs = await _jobs(request)
    active = _active_job(jobs)
    if command == "start":
        held = _selected_job(jobs)
        if active is not None:
            return _json_error(409, "a job is printing already: job %d" % active["id"])
        if held is None or held["state"] != job_states.HELD:
            return _json_error(409, "no job is waiting to be started: upload one first")
        wanted = "start"
        number = held["id"]
    elif command in ("pause", "cancel"):
        if active is None:
            return _json_error(409, "the printer is not printing")
        number = active["id"]
        if command == "cancel":
            wanted = "cancel"
        else:
            action = str(action or "toggle")[:COMMAND_FIELD_CHARS]
            if action not in ("pause", "resume", "toggle"):
                return _json_error(400, "action must be pause, resume or toggle")
            if action == "toggle":
                action = "resume" if active["state"] == job_states.PAUSED else "pause"
            if (action == "pause") == (active["state"] == job_states.PAUSED):
                return web.Response(status=204)  # already so: OctoPrint does nothing either
            wanted = action
    elif command == "restart":
        return _json_error(409, "a sealed job is printed from its start only as a new print: start it again")
    else:
        return _json_error(400, "command must be start, pause or cancel")
    try:
        await request.app[STORE].call("request", number, wanted)
    except (job_states.IllegalTransition, UnknownJob) as exc:
        return _json_error(409, str(exc))
    return web.Response(status=204)


async def _json_body(request: web.Request):
    """The request's JSON object, or the error response that says why there is none."""
    try:
        body = await request.json()
    except ValueError:
        return _json_error(400, "expected a JSON object with a 'command'")
    if not isinstance(body, dict):
        return _json_error(400, "expected a JSON object with a 'command'")
    return body


def _temperatures(request: web.Request) -> dict:
    samples = request.app[LIVE].snapshot(time.monotonic())["samples"]
    if not samples:
        return {}
    _, hotend, hotend_target, bed, bed_target = samples[-1]
    readings = {"tool0": {"actual": hotend, "target": hotend_target, "offset": 0}}
    if bed is not None:
        readings["bed"] = {"actual": bed, "target": bed_target, "offset": 0}
    return readings


async def printer_state(request: web.Request):
    printer = request.app[PRINTER_INFO]()
    if printer is None:
        return _json_error(409, "Printer is not operational")
    job = _active_job(await _jobs(request))
    exclude = set(request.query.get("exclude", "").split(","))
    answer = {}
    if "temperature" not in exclude:
        answer["temperature"] = _temperatures(request)
    if "state" not in exclude:
        answer["state"] = {"text": _state_text(printer, job), "flags": _flags(printer, job)}
    return web.json_response(answer)


async def connection(request: web.Request):
    printer = request.app[PRINTER_INFO]()
    job = _active_job(await _jobs(request))
    port = printer["port"] if printer else None
    baud = printer["baud"] if printer else None
    profile = {"id": "_default", "name": (printer or {}).get("MACHINE_TYPE", "the box's printer")}
    return web.json_response(
        {
            "current": {
                "state": _state_text(printer, job) if printer else "Closed",
                "port": port,
                "baudrate": baud,
                "printerProfile": "_default",
            },
            "options": {
                "ports": [port] if port else [],
                "baudrates": [baud] if baud else [],
                "printerProfiles": [profile],
                "portPreference": port,
                "baudratePreference": baud,
                "printerProfilePreference": "_default",
                "autoconnect": True,
            },
        }
    )


async def printer_profiles(request: web.Request):
    """The one printer profile, from what the owner confirmed in the setup wizard (Cura's OctoPrint plugin reads
    the extruder count, nozzle and build volume from it)."""
    printer = request.app[PRINTER_INFO]() or {}
    profile = await request.app[STORE].call("get_setting", "printer.profile", {}) or {}
    width, depth, height = (profile.get("build_volume_mm") or [220, 220, 250])[:3]
    described = {
        "id": "_default",
        "name": printer.get("MACHINE_TYPE", "the box's printer"),
        "model": printer.get("MACHINE_TYPE", ""),
        "current": True,
        "default": True,
        "resource": "%s/api/printerprofiles/_default" % request.url.origin(),
        "heatedBed": True,
        "heatedChamber": False,
        "extruder": {"count": 1, "nozzleDiameter": float(profile.get("nozzle_mm") or 0.4), "sharedNozzle": False},
        "volume": {
            "width": width,
            "depth": depth,
            "height": height,
            "formFactor": "rectangular",
            "origin": "lowerleft",
        },
    }
    return web.json_response({"profiles": {"_default": described}})


async def connection_command(_request: web.Request):
    return _json_error(409, "the box finds and connects to its printer itself")


async def files(request: web.Request):
    jobs = await _jobs(request)
    listed, seen = [], set()
    for job in reversed(jobs):  # newest first; a name shows its newest job
        if _file_name(job) not in seen:
            seen.add(_file_name(job))
            listed.append(_file_info(request, job))
    usage = shutil.disk_usage(request.app[SPOOL].directory)
    return web.json_response({"files": listed, "free": usage.free, "total": usage.total})


async def file_info(request: web.Request):
    job = _by_name(await _jobs(request), request.match_info["name"])
    if job is None:
        return _json_error(404, "no file of that name")
    return web.json_response(_file_info(request, job))


async def file_command(request: web.Request):
    job = _by_name(await _jobs(request), request.match_info["name"])
    if job is None:
        return _json_error(404, "no file of that name")
    body = await _json_body(request)
    if isinstance(body, web.Response):
        return body
    if body.get("command") != "select":
        return _json_error(400, "this box supports only the 'select' command for its sealed files")
    if str(body.get("print", "false")).lower() != "true":
        return web.Response(status=204)
    if job["state"] != job_states.HELD:
        return _json_error(409, "job %d is %s: only a held job can be started" % (job["id"], job["state"]))
    await request.app[STORE].call("request", job["id"], "start")
    return web.Response(status=204)


async def refuse_download(_request: web.Request):
    return _json_error(403, SEALED_DOWNLOAD)


async def upload(request: web.Request):
    try:
        reader = await request.multipart()
    except (ValueError, AssertionError):
        return _json_error(400, "expected a multipart/form-data upload with a 'file' field")
    fields, stored = {}, None
    try:
        while True:
            part = await reader.next()
            if part is None:
                break
            if part.name == "file" and stored is None:
                stored = await store_upload(request.app, part)
            elif part.name in ("print", "select", "path"):
                fields[part.name] = (await part.text())[:COMMAND_FIELD_CHARS]
            else:
                await part.release()
    except SpoolError as exc:
        return _json_error(400, "upload refused: %s" % exc)
    if stored is None:
        return _json_error(400, "no 'file' field in the upload")
    job_id, path, title = stored
    to_print = fields.get("print", "").lower() == "true"
    number = await request.app[STORE].call("add_job", job_id, title, path, not to_print)
    info = _file_info(request, await request.app[STORE].call("job", number))
    answer = {
        "done": True,
        "files": {"local": {key: info[key] for key in ("name", "display", "path", "origin", "refs")}},
        "effectiveSelect": to_print or fields.get("select", "").lower() == "true",
        "effectivePrint": to_print,
    }
    return web.json_response(answer, status=201, headers={"Location": info["refs"]["resource"]})


def add_routes(app: web.Application) -> None:
    app.middlewares.append(require_key)
    app.add_routes(
        [
            web.get("/api/version", version),
            web.get("/api/server", server),
            web.get("/api/job", job_info),
            web.post("/api/job", job_command),
            web.get("/api/printer", printer_state),
            web.get("/api/connection", connection),
            web.post("/api/connection", connection_command),
            web.get("/api/printerprofiles", printer_profiles),
            web.get("/api/files", files),
            web.get("/api/files/local", files),
            web.post("/api/files/local", upload),
            web.get("/api/files/local/{name:.+}", file_info),
            web.post("/api/files/local/{name:.+}", file_command),
            web.get("/api/settings", settings),
            web.get("/downloads/files/local/{name:.+}", refuse_download),
        ]
    )


async def settings(request: web.Request):
    """What clients read of OctoPrint's settings: the name, the serial port, no webcam, no plugins."""
    printer = request.app[PRINTER_INFO]() or {}
    name = await request.app[STORE].run(lambda _store: request.app[ACCOUNTS].box_name())
    return web.json_response(
        {
            "api": {"allowCrossOrigin": False},
            "appearance": {"name": name, "color": "default"},
            "feature": {"sdSupport": False, "temperatureGraph": True},
            "folder": {},
            "plugins": {},
            "printer": {"defaultExtrusionLength": 5},
            "serial": {"port": printer.get("port"), "baudrate": printer.get("baud"), "autoconnect": True},
            "temperature": {
                "profiles": [{"name": "PLA", "extruder": 210, "bed": 60}, {"name": "PETG", "extruder": 240, "bed": 80}]
            },
            "webcam": {
                "webcamEnabled": False,
                "streamUrl": "",
                "snapshotUrl": "",
                "flipH": False,
                "flipV": False,
                "rotate90": False,
                "bitrate": "",
                "snapshotSslValidation": True,
            },
        }
    )
