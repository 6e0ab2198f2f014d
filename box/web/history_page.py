"""The history page (/history): finished, failed, cancelled and interrupted jobs with their duration, lines,
material and reason; print again where the license still allows it, and delete. Also what the dashboard's
"Prints per license" knows of each license (the job's title and the prints left)."""

import asyncio
import time
from html import escape

from aiohttp import web

from box.jobs import history
from box.jobs.job_states import IllegalTransition
from box.jobs.store import UnknownJob, print_facts
from box.web import pages
from box.web.appkeys import BOX, LEDGER, STORE
from box.web.common import html_response, in_store, logged_in_form, logged_in_page

SHOWN = 200  # the page lists this many finished jobs, newest first
_TERMS_CACHE_SIZE = 512
_terms_cache: dict = {}  # spool path -> License or None; a spooled job file never changes under its path


def _terms(spool_path: str, sealing_key):
    if spool_path not in _terms_cache:
        if len(_terms_cache) >= _TERMS_CACHE_SIZE:
            _terms_cache.clear()
        _terms_cache[spool_path] = history.license_terms(spool_path, sealing_key)
    return _terms_cache[spool_path]


async def licenses(app: web.Application, jobs: list) -> dict:
    """license id -> {"title", "max_prints"} for the licenses of jobs that reached the printer."""
    newest = {}
    for row in jobs:
        license_id = print_facts(row).get("license_id")
        if license_id:
            newest[license_id] = row
    sealing_key = app[BOX].sealing
    loop = asyncio.get_running_loop()
    known = {}
    for license_id, row in newest.items():
        terms = await loop.run_in_executor(None, _terms, row["spool_path"], sealing_key)
        known[license_id] = {"title": row["title"], "max_prints": terms.max_prints if terms else None,
                             "known": terms is not None}  # fmt: skip
    return known


def _lines(entry: dict) -> str:
    if entry["source_lines"]:
        return "%d of %d" % (entry["lines"], entry["source_lines"])
    return str(entry["lines"]) if entry["lines"] else "none sent"


def history_rows(entries: list, refusals: dict, csrf: str, now: float) -> str:
    rows = []
    for entry in entries:
        number, refusal = entry["number"], refusals.get(entry["number"], "")
        label = pages.job_label({"id": number, "title": entry["title"], "state": entry["state"]})
        again = (
            "<form class=inline method=post action=/history/%d/again><input type=hidden name=csrf value=%s>"
            "<button id=again-%d>print again</button></form>" % (number, escape(csrf), number)
            if not refusal
            else "<span class=note id=no-again-%d>no reprint: %s</span> " % (number, escape(refusal))
        )
        delete = (
            '<form class=inline method=post action=/history/%d/delete data-confirm="%s"><input type=hidden '
            "name=csrf value=%s><button id=delete-%d>delete</button></form>"
            % (number, escape("Delete %s from the history?" % label), escape(csrf), number)
        )
        duration = pages.duration(entry["duration_seconds"]) if entry["duration_seconds"] is not None else "not printed"
        rows.append(
            "<tr id=history-%d><td data-label=job>%d</td><td class=title>%s</td><td class=state data-label=state>%s"
            "</td><td data-label=ended class=ended>%s</td><td data-label=duration class=duration>%s</td>"
            "<td data-label=lines class=lines>%s</td><td data-label=material class=material>%s</td>"
            "<td class=reason>%s</td><td class=actions>%s%s</td></tr>"
            % (number, number, escape(entry["title"]), escape(entry["state"]), pages.when(entry["ended_at"], now),
               duration, _lines(entry), escape(entry["material"] or "not recorded"), escape(entry["reason"]), again,
               delete)
        )  # fmt: skip
    return "".join(rows) or "<tr><td colspan=9>No finished jobs yet.</td></tr>"


def history_html(entries: list, refusals: dict, csrf: str, now: float, message: str = "", notice: str = "") -> str:
    return pages.page(
        "History",
        "%s<section><h1>History</h1><table class=cards><thead><tr><th>#</th><th>job</th><th>state</th>"
        "<th>ended</th><th>duration</th><th>lines</th><th>material</th><th>reason</th><th></th></tr></thead>"
        "<tbody id=history>%s</tbody></table></section><script>%s</script>"
        % (pages.error_line(message) + pages.notice_line(notice), history_rows(entries, refusals, csrf, now),
           pages.DASHBOARD_SCRIPT),
        nav=True,
    )  # fmt: skip


async def _page(request: web.Request, csrf: str, message: str = "", notice: str = "") -> str:
    app = request.app
    rows = await app[STORE].call("jobs", sorted(history.job_states.FINISHED))
    entries = history.finished(rows)[:SHOWN]
    now = time.time()
    sealing_key = app[BOX].sealing
    loop = asyncio.get_running_loop()
    refusals = {}
    by_number = {row["id"]: row for row in rows}
    for entry in entries:
        terms = await loop.run_in_executor(None, _terms, by_number[entry["number"]]["spool_path"], sealing_key)
        done = await in_store(request, app[LEDGER].prints_done, terms.license_id) if terms else 0
        refusals[entry["number"]] = history.reprint_refusal(terms, done, now)
    return history_html(entries, refusals, csrf, now, message, notice)


async def history_view(request: web.Request):
    return await logged_in_page(request, _page)


async def history_action(request: web.Request):
    csrf, _form = await logged_in_form(request)
    number, action = int(request.match_info["number"]), request.match_info["action"]
    store = request.app[STORE]
    try:
        row = await store.call("finished_job", number)
        if action == "again":
            terms = await asyncio.get_running_loop().run_in_executor(
                None, _terms, row["spool_path"], request.app[BOX].sealing)  # fmt: skip
            done = await in_store(request, request.app[LEDGER].prints_done, terms.license_id) if terms else 0
            refusal = history.reprint_refusal(terms, done, time.time())
            if refusal:
                problem = "Job %d cannot be printed again: %s" % (number, refusal)
                return html_response(await _page(request, csrf, problem), 409)
            again = await store.call("print_again", number)
            notice = "Job %d is queued again as job %d." % (number, again)
        else:
            await store.call("delete_job", number)
            _terms_cache.pop(row["spool_path"], None)
            notice = "Job %d (%s) is deleted from the history." % (number, row["title"])
    except (UnknownJob, IllegalTransition) as exc:
        return html_response(await _page(request, csrf, str(exc)), 409)
    return html_response(await _page(request, csrf, "", notice))


FAVICON = (
    '<svg xmlns="http://www.w3.org/2000/svg" viewBox="0 0 32 32"><rect width="32" height="32" rx="6" '
    'fill="#1d3557"/><path d="M7 24V9l9 9 9-9v15" fill="none" stroke="#fff" stroke-width="3.5" '
    'stroke-linejoin="round"/></svg>'
)


async def favicon(_request: web.Request):
    return web.Response(text=FAVICON, content_type="image/svg+xml")


def add_routes(app: web.Application) -> None:
    app.add_routes([
        web.get("/history", history_view),
        web.post(r"/history/{number:\d+}/{action:again|delete}", history_action),
        web.get("/favicon.svg", favicon),
        web.get("/favicon.ico", favicon),
    ])  # fmt: skip
