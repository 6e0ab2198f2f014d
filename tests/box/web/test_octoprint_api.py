"""The OctoPrint API as slicers and apps use it, driven by real OctoPrint client code from PyPI: `pyoctoprintapi`
(what Home Assistant's OctoPrint integration uses) and `octorest`, against the daemon and the virtual printer.
One daemon serves the whole module; each test leaves no job printing."""

import asyncio
import json
import urllib.error
import urllib.request

import aiohttp
import pytest
from octorest import OctoRest
from playwright.sync_api import expect
from pyoctoprintapi import OctoprintClient
from pyoctoprintapi.exceptions import ApiError, UnauthorizedException

from box.jobs.store import Store
from box.web.accounts import Accounts
from firmware_bridge.virtual_printer import VirtualPrinterProcess
from tests.browser import PASSWORD, needs_chromium
from tests.daemon_process import Daemon, job_row, wait_for
from tests.users import SAMPLE, World

GCODE_MARKERS = (b"G1 X", b"G1 Y", b"G28", b"M104")


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    world = World(tmp_path_factory.mktemp("octoprint-api"))
    store = Store(str(world.data_dir / "box.sqlite"))
    try:  # the owner's first steps, done before the daemon starts: the admin account and one key
        accounts = Accounts(store)
        accounts.create_admin(PASSWORD, "Workshop box")
        key = accounts.new_api_key("PrusaSlicer")
    finally:
        store.close()
    with VirtualPrinterProcess("--move-time-scale", "0.05") as printer:
        daemon = Daemon(world, printer.path).start()
        daemon.url = "http://127.0.0.1:%d" % daemon.http_port
        daemon.world = world
        daemon.key = key
        wait_for(lambda: _get(daemon, "/api/printer")[0] == 200, "the box to find the printer")
        yield daemon
        daemon.stop()


def _get(box, path: str, headers=None, key=True) -> tuple:
    """(status, body bytes) of a GET, with the module's key as X-Api-Key unless told otherwise."""
    headers = dict(headers or {})
    if key:
        headers.setdefault("X-Api-Key", box.key)
    request = urllib.request.Request(box.url + path, headers=headers)
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def _home_assistant(box, key: str, calls):
    """Runs `calls(client)` with pyoctoprintapi's client on the box, as Home Assistant sets it up."""

    async def session():
        async with aiohttp.ClientSession() as http:
            client = OctoprintClient("127.0.0.1", http, box.http_port, False, "/")
            client.set_api_key(key)
            return await calls(client)

    return asyncio.run(session())


def _state(box, number: int, wanted: str) -> dict:
    return wait_for(lambda: (row := job_row(box.world, number))["state"] == wanted and row, "job %s" % wanted)


def _no_gcode(body: bytes) -> None:
    assert not any(marker in body for marker in GCODE_MARKERS)


def test_the_key_is_taken_in_each_form_clients_send_it(box):
    assert _get(box, "/api/version")[0] == 200
    assert _get(box, "/api/version", {"Authorization": "Bearer %s" % box.key}, key=False)[0] == 200
    assert _get(box, "/api/version?apikey=%s" % box.key, key=False)[0] == 200
    for headers in ({}, {"X-Api-Key": "guess"}, {"Authorization": "Bearer guess"}, {"Authorization": box.key}):
        status, body = _get(box, "/api/job", headers, key=False)
        assert status == 403 and b"API key" in body
    assert _get(box, "/api/files?apikey=guess", key=False)[0] == 403
    assert _get(box, "/downloads/files/local/anything", key=False)[0] == 403


def _post(box, path: str, body: bytes, content_type: str) -> tuple:
    request = urllib.request.Request(box.url + path, data=body, method="POST",
                                     headers={"X-Api-Key": box.key, "Content-Type": content_type})  # fmt: skip
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.read()
    except urllib.error.HTTPError as exc:
        return exc.code, exc.read()


def test_bad_requests_are_refused_with_the_reason_and_change_nothing(box):
    jobs_before = len(json.loads(_get(box, "/api/files")[1])["files"])
    for body, kind, reason in (
        (b"{not json", "application/json", b"expected a JSON object"),
        (b"[1, 2]", "application/json", b"expected a JSON object"),
        (b'{"command": "jump"}', "application/json", b"command must be start, pause or cancel"),
        (b'{"command": "pause", "action": "dance"}', "application/json", b"the printer is not printing"),
        (b'{"command": "start"}', "application/json", b"no job is waiting"),
    ):
        status, answer = _post(box, "/api/job", body, kind)
        assert status in (400, 409) and reason in answer, (body, answer)
    status, answer = _post(box, "/api/files/local", b"file=x", "application/x-www-form-urlencoded")
    assert status == 400 and b"multipart" in answer
    boundary = "----box-test"
    empty = '--%s\r\nContent-Disposition: form-data; name="print"\r\n\r\ntrue\r\n--%s--\r\n' % (boundary, boundary)
    status, answer = _post(box, "/api/files/local", empty.encode(), "multipart/form-data; boundary=%s" % boundary)
    assert status == 400 and b"no 'file' field" in answer
    assert len(json.loads(_get(box, "/api/files")[1])["files"]) == jobs_before
    # The keys page is the owner's: without a session it leads to the login page, and a key is never made.
    status, page = _get(box, "/api-keys", key=False)
    assert status == 200 and b"Log in" in page and b"PrusaSlicer" not in page
    _post(box, "/api-keys", b"name=intruder", "application/x-www-form-urlencoded")
    store = Store(str(box.world.data_dir / "box.sqlite"))
    try:
        assert [key["name"] for key in Accounts(store).api_keys()] == ["PrusaSlicer"]
    finally:
        store.close()


def test_home_assistant_reads_the_printer_job_and_server(box):
    async def read(client):
        return (await client.get_server_info(), await client.get_printer_info(), await client.get_job_info(),
                await client.get_webcam_info(), await client.get_tracking_info())  # fmt: skip

    server, printer, job, webcam, tracking = _home_assistant(box, box.key, read)
    assert server.version == "1.10.0" and server.safe_mode is None
    assert printer.state.text == "Operational"
    assert printer.state.flags.operational and printer.state.flags.ready and not printer.state.flags.printing
    assert {tool.name for tool in printer.temperatures} >= {"tool0"}
    assert all(isinstance(tool.actual_temp, float) for tool in printer.temperatures)
    assert job.state == "Operational" and job.job.file.name is None and job.progress.completion is None
    assert webcam is not None and not webcam.enabled
    assert tracking is None

    async def with_wrong_key(client):
        await client.get_job_info()

    with pytest.raises(UnauthorizedException):
        _home_assistant(box, "not-a-key", with_wrong_key)

    async def pause_nothing(client):
        await client.pause_job()

    with pytest.raises(ApiError):  # nothing prints: OctoPrint's 409
        _home_assistant(box, box.key, pause_nothing)
    connection = json.loads(_get(box, "/api/connection")[1])
    assert connection["current"]["state"] == "Operational"
    assert connection["current"]["port"] == connection["options"]["ports"][0]
    settings = json.loads(_get(box, "/api/settings")[1])
    assert settings["appearance"]["name"] == "Workshop box"
    profile = json.loads(_get(box, "/api/printerprofiles")[1])["profiles"]["_default"]
    assert profile["extruder"]["count"] == 1 and profile["volume"]["width"] > 0


def test_a_plain_upload_is_held_sealed_until_started_and_never_downloaded(box):
    client = OctoRest(url=box.url, apikey=box.key)  # it checks the key with /api/version
    answer = client.upload(SAMPLE)  # octorest sends no "print": the slicer's plain "Upload"
    local = answer["files"]["local"]
    assert local["name"] == "vase.gcode" and not answer["effectivePrint"]
    resource = local["refs"]["resource"]
    assert resource == box.url + "/api/files/local/vase.gcode"
    status, body = _get(box, resource[len(box.url) :])
    assert status == 200 and json.loads(body)["mipai"]["state"] == "held"
    number = json.loads(body)["mipai"]["job"]
    assert job_row(box.world, number)["state"] == "held"

    listed = client.files()
    assert [entry["name"] for entry in listed["files"]] == ["vase.gcode"] and listed["free"] > 0
    assert client.files_info("local", "vase.gcode")["mipai"]["sealed"]
    assert client.job_info()["job"]["file"]["name"] == "vase.gcode"
    assert client.job_info()["state"] == "Operational"  # selected, not printing
    status, body = _get(box, "/downloads/files/local/vase.gcode")
    assert status == 403 and b"sealed" in body
    for path in ("/api/files", "/api/files/local/vase.gcode", "/api/job"):
        _no_gcode(_get(box, path)[1])
    stored = (box.world.data_dir / "spool").iterdir()
    assert all(path.read_bytes().startswith(b"MIPJOB") for path in stored)
    assert _get(box, "/api/files/local/other.gcode")[0] == 404

    client.select("vase.gcode", print=True)  # octorest's select; OctoPrint's "select and print"
    _state(box, number, "printing")
    with pytest.raises(RuntimeError, match="409"):
        client.start()  # one job at a time
    client.cancel()
    row = _state(box, number, "cancelled")
    assert "cancel" in row["reason"]


def test_slicers_print_at_once_and_apps_pause_resume_and_cancel(box):
    client = OctoRest(url=box.url, apikey=box.key)
    with open(SAMPLE, "rb") as handle:
        answer = client._post("/api/files/local", files={"file": ("../benchy.gcode", handle)}, data={"print": "true"})
    assert answer["effectivePrint"] and answer["files"]["local"]["refs"]["resource"].startswith("http://")
    number = json.loads(_get(box, "/api/files/local/benchy.gcode")[1])["mipai"]["job"]
    _state(box, number, "printing")

    async def pause(client):
        await client.pause_job()
        return await client.get_printer_info()

    _home_assistant(box, box.key, pause)
    _state(box, number, "paused")
    printer = _home_assistant(box, box.key, lambda client: client.get_printer_info())
    assert printer.state.text == "Paused" and printer.state.flags.paused
    job = _home_assistant(box, box.key, lambda client: client.get_job_info())
    assert job.state == "Paused" and job.job.file.name == "benchy.gcode"
    assert 0.0 <= job.progress.completion < 100.0 and job.progress.print_time >= 0
    _home_assistant(box, box.key, lambda client: client.resume_job())
    _state(box, number, "printing")
    _home_assistant(box, box.key, lambda client: client.cancel_job())
    row = _state(box, number, "cancelled")
    assert row["source_lines"] and row["last_source_line"] < row["source_lines"]


@needs_chromium
def test_the_owner_names_keys_sees_their_use_and_revokes_them(box, browser):
    page = browser.new_page()
    page.goto(box.url + "/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("#log-in")
    # A held upload waits on the dashboard with a Start button.
    client = OctoRest(url=box.url, apikey=box.key)
    with open(SAMPLE, "rb") as handle:
        client._post("/api/files/local", files={"file": ("from the slicer.gcode", handle)})
    number = json.loads(_get(box, "/api/files/local/from%20the%20slicer.gcode")[1])["mipai"]["job"]
    page.goto(box.url)
    expect(page.locator("#job-%d .state" % number)).to_have_text("held")
    page.click("#start-%d" % number)
    expect(page.locator("#job-%d .state" % number)).to_have_text("printing", timeout=30_000)
    client.cancel()
    _state(box, number, "cancelled")

    page.click("#api-keys")  # the dashboard's link
    expect(page.locator("#keys .name")).to_have_text(["PrusaSlicer"])
    expect(page.locator("#keys .used").first).not_to_have_text("never")  # the tests above used it
    page.click("#new-api-key")
    expect(page.locator("#error")).to_contain_text("name the key")
    page.fill("#key-name", "Home Assistant")
    page.click("#new-api-key")
    new_key = page.locator("#api-key").inner_text()
    expect(page.locator("#api-host")).to_have_text(box.url)
    expect(page.locator("#keys .name")).to_have_text(["Home Assistant", "PrusaSlicer"])
    expect(page.locator("#keys .used").first).to_have_text("never")
    assert _get(box, "/api/version", {"X-Api-Key": new_key}, key=False)[0] == 200
    page.goto(box.url + "/api-keys")
    expect(page.locator("#keys .used").first).not_to_have_text("never")

    page.goto(box.url.replace("127.0.0.1", "localhost") + "/login")  # a loopback name: the box's address
    page.fill("input[name=password]", PASSWORD)
    page.click("#log-in")
    page.goto(box.url.replace("127.0.0.1", "localhost") + "/api-keys")
    expect(page.locator("#box-address")).to_have_text(box.url)
    page.locator("#keys tr", has_text="PrusaSlicer").locator("button").click()
    expect(page.locator("#keys .name")).to_have_text(["Home Assistant"])
    assert _get(box, "/api/version")[0] == 403  # the revoked key
    assert _get(box, "/api/version", {"X-Api-Key": new_key}, key=False)[0] == 200
