"""The OctoPrint-compatible subset that slicers use for "send to printer": `GET /api/version` and
`POST /api/files/local` (multipart `file`, `print=true`), authenticated by `X-Api-Key`.

The box prints what it receives: an upload without `print=true` is refused rather than stored where no one
would find it.
"""

from aiohttp import web

from box.jobs.spool import SpoolError
from box.web.appkeys import ACCOUNTS, STORE
from box.web.uploads import store_upload

VERSION = {"api": "0.1", "server": "1.10.0", "text": "OctoPrint 1.10.0 (MIP.AI Box)"}


def _json_error(status: int, message: str) -> web.Response:
    return web.json_response({"error": message}, status=status)


async def _authorised(request: web.Request) -> bool:
    key = request.headers.get("X-Api-Key", "")
    return await request.app[STORE].run(lambda _store: request.app[ACCOUNTS].api_key_valid(key))


async def version(request: web.Request):
    if not await _authorised(request):
        return _json_error(403, "Invalid or missing API key: make one on the box's dashboard")
    return web.json_response(VERSION)


async def upload(request: web.Request):
    if not await _authorised(request):
        return _json_error(403, "Invalid or missing API key: make one on the box's dashboard")
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
                fields[part.name] = (await part.text())[:20]
            else:
                await part.release()
    except SpoolError as exc:
        return _json_error(400, "upload refused: %s" % exc)
    if stored is None:
        return _json_error(400, "no 'file' field in the upload")
    if fields.get("print", "").lower() != "true":
        await request.app[STORE].call("forget_unqueued", stored[1])
        return _json_error(409, "this box prints what it receives: upload with print=true (nothing was kept)")
    job_id, path, title = stored
    number = await request.app[STORE].call("add_job", job_id, title, path)
    return web.json_response(
        {
            "done": True,
            "files": {"local": {"name": title, "origin": "local", "refs": {"resource": "/jobs/%d" % number}}},
        },
        status=201,
    )


def add_routes(app: web.Application) -> None:
    app.add_routes([web.get("/api/version", version), web.post("/api/files/local", upload)])
