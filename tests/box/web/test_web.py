"""The local web app in real headless Chromium (Debian's, driven by Playwright) against the daemon and the
virtual printer: setup, login, upload, live progress, cancel, and the security rules a LAN user relies on."""

import datetime
import json
import os
import re
import urllib.error
import urllib.request

import pytest
from playwright.sync_api import expect

from firmware_bridge.virtual_printer import VirtualPrinterProcess
from fleet.ca import FleetCA
from provisioning import device_names
from tests.browser import PASSWORD, needs_chromium, set_up_and_log_in
from tests.daemon_process import Daemon, job_row, serving_box, wait_for
from tests.nmcli_stand_in import install_nmcli
from tests.users import SAMPLE, World

pytestmark = needs_chromium


@pytest.fixture
def box(tmp_path):
    with serving_box(World(tmp_path), "0.05") as daemon:
        yield daemon


def _post(url: str, data: bytes, headers=None) -> tuple:
    """(status, final URL) of a POST; redirects are followed as a browser would."""
    request = urllib.request.Request(url, data=data, headers=headers or {}, method="POST")
    try:
        with urllib.request.urlopen(request) as response:
            return response.status, response.url
    except urllib.error.HTTPError as exc:
        return exc.code, url


def test_setup_login_upload_progress_and_cancel(box, browser):
    world = box.world
    page = browser.new_page()
    page.goto(box.url)
    assert page.url.endswith("/setup")
    expect(page.locator("#box-id")).to_have_text(world.box_id)
    claim_code = page.locator("#claim-code").inner_text()
    assert re.fullmatch(r"[A-Z2-9]{4}-[A-Z2-9]{4}", claim_code)
    assert "claim code %s" % claim_code in box.log.read_text()  # also on the console
    page.fill("input[name=password]", "short")
    page.fill("input[name=confirmation]", "short")
    page.evaluate("document.querySelectorAll('input').forEach(i => i.removeAttribute('minlength'))")
    page.click("#finish-setup")
    expect(page.locator("#error")).to_contain_text("at least 10 characters")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirmation]", PASSWORD)
    page.fill("input[name=box_name]", "Workshop box")
    page.click("#finish-setup")

    # The wizard goes on, logged in: confirm the printer, then the network, then the summary.
    assert page.url.endswith("/setup/printer")
    expect(page.locator("#detected")).to_contain_text("MIP.AI Virtual Printer")
    page.fill("input[name=material]", "pla!")
    page.click("#confirm-printer")
    expect(page.locator("#error")).to_contain_text("name the loaded material")
    page.fill("input[name=material]", "petg")
    page.fill("input[name=nozzle_mm]", "0.6")
    page.click("#confirm-printer")
    assert page.url.endswith("/setup/network")
    expect(page.locator("#network-managed")).to_contain_text("managed by the system")
    page.click("#keep-network")
    assert page.url.endswith("/setup/done")
    expect(page.locator("#done-claim-code")).to_have_text(claim_code)
    expect(page.locator("#box-name")).to_have_text("Workshop box")

    response = page.goto(box.url + "/setup")
    assert response.status == 403
    expect(page.locator("#message")).to_contain_text("This box is set up")
    page.goto(box.url + "/setup/printer")
    assert page.url == box.url + "/"  # the wizard is locked: its steps lead to the dashboard

    page.goto(box.url + "/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("#log-in")
    assert page.url == box.url + "/"
    cookie = next(c for c in page.context.cookies() if c["name"] == "mipai_session")
    assert cookie["httpOnly"] and cookie["sameSite"] == "Strict"
    expect(page.locator("#printer")).to_contain_text("MIP.AI Virtual Printer")

    job = world.seal("--max-prints", "3")
    page.set_input_files("#upload", job)
    page.click("#send")
    expect(page.locator("#job-1 .state")).to_have_text("printing", timeout=30_000)
    expect(page.locator("#job-1 .percent")).to_have_text("100.0%", timeout=120_000)
    expect(page.locator("#job-1 .state")).to_have_text("done")
    expect(page.locator("#temperatures")).to_contain_text("Hotend")
    assert page.locator("#chart polyline.hotend, #chart polyline.bed").count() == 2
    expect(page.locator("#counters td").nth(1)).to_have_text("1")  # one print of this license

    page.set_input_files("#upload", job)
    page.click("#send")
    expect(page.locator("#job-2 .state")).to_have_text("printing", timeout=30_000)
    expect(page.locator("#job-live")).to_contain_text(
        re.compile(r"Job 2: layer \d+, Z [\d.]+ mm, about \d+:\d\d:\d\d left")
    )
    page.once("dialog", lambda dialog: dialog.accept())  # cancel asks first
    page.click("#cancel-2")
    expect(page.locator("#job-2 .state")).to_have_text("cancelled", timeout=30_000)
    assert job_row(world, 1)["state"] == "done" and job_row(world, 2)["state"] == "cancelled"

    # The owner's own G-code is sealed to the box on arrival and queued like any job.
    page.set_input_files("#upload", SAMPLE)
    page.click("#send")
    expect(page.locator("#job-3 .state")).not_to_have_text("queued", timeout=30_000)
    assert job_row(world, 3)["spool_path"].endswith(".mipjob")
    with open(job_row(world, 3)["spool_path"], "rb") as handle:
        assert b"G1 X" not in handle.read()

    # A state-changing request without the session's CSRF token is refused, even with the session cookie.
    status = page.evaluate("fetch('/jobs/3/cancel', {method: 'POST'}).then(r => r.status)")
    assert status == 403
    assert job_row(world, 3)["state"] != "cancelled" and job_row(world, 3)["request"] == ""


def test_wrong_passwords_lock_the_address_out(box, browser):
    page = browser.new_page()
    page.goto(box.url + "/setup")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirmation]", PASSWORD)
    page.click("#finish-setup")
    page.goto(box.url + "/login")
    for attempt in range(5):
        page.fill("input[name=password]", "wrong password %d" % attempt)
        page.click("#log-in")
        expect(page.locator("#error")).to_have_text("Wrong password.")
    page.fill("input[name=password]", PASSWORD)
    page.click("#log-in")
    expect(page.locator("#error")).to_contain_text("Too many wrong passwords: try again in")
    assert page.url.endswith("/login")


def test_pages_and_forms_refuse_what_they_must(box):
    with urllib.request.urlopen(box.url + "/setup") as response:
        assert response.headers["Cache-Control"] == "no-store"
        assert response.headers["X-Frame-Options"] == "DENY"
        assert len(response.read()) < 200_000
    # A form post without the double-submit token (a cross-site request) is refused.
    assert _post(box.url + "/setup", b"password=aaaaaaaaaaaa&confirmation=aaaaaaaaaaaa",
                 {"Content-Type": "application/x-www-form-urlencoded"})[0] == 403  # fmt: skip
    assert _post(box.url + "/jobs", b"")[1] == box.url + "/login"  # not logged in: to the login page
    with pytest.raises(urllib.error.HTTPError) as refused:
        urllib.request.urlopen(box.url + "/events")
    assert refused.value.code == 401


def test_bad_uploads_are_refused_and_leave_nothing(tmp_path, browser):
    world = World(tmp_path)
    with VirtualPrinterProcess() as printer:
        daemon = Daemon(world, printer.path)
        daemon.config.write_text(daemon.config.read_text().replace("[box]\n", "[box]\nmax_upload_mb = 1\n"))
        daemon.start()
        try:
            url = "http://127.0.0.1:%d" % daemon.http_port
            page = browser.new_page()
            set_up_and_log_in(page, url)
            for name, content, problem in (
                ("huge.mipjob", b"MIPJOB" + bytes(2 * 1024 * 1024), "larger than the spool's limit"),
                ("photo.jpg", b"\xff\xd8\xff\xe0" + bytes(range(256)) * 8, "not G-code a printer accepts"),
                ("../../../etc/cron.d/job.mipjob", b"MIPJOB" + bytes(100), "not a sealed job"),
            ):
                page.set_input_files("#upload", files=[{"name": name, "mimeType": "application/octet-stream",
                                                        "buffer": content}])  # fmt: skip
                page.click("#send")
                expect(page.locator("#error")).to_contain_text(problem)
            assert list((world.data_dir / "spool").iterdir()) == []
            assert not list(world.data_dir.parent.glob("**/cron.d"))
        finally:
            daemon.stop()


def test_the_wizard_joins_wifi_and_its_material_governs_licenses(tmp_path, browser):
    world = World(tmp_path)
    assert world.box("trust", "add", world.designer_public).returncode == 0
    folder = install_nmcli(tmp_path / "bin")
    log = tmp_path / "nmcli.log"
    with VirtualPrinterProcess() as printer:
        daemon = Daemon(world, printer.path)
        daemon.env = dict(os.environ, PATH="%s:%s" % (folder, os.environ["PATH"]), NMCLI_LOG=str(log))
        daemon.config.write_text(daemon.config.read_text() + "[network]\nmanage_wifi = true\n")
        daemon.start()
        try:
            url = "http://127.0.0.1:%d" % daemon.http_port
            page = browser.new_page()
            page.goto(url + "/setup")
            page.fill("input[name=password]", PASSWORD)
            page.fill("input[name=confirmation]", PASSWORD)
            page.click("#finish-setup")
            page.fill("input[name=material]", "PLA")
            page.click("#confirm-printer")
            page.check("input[value=Workshop]")
            page.fill("input[name=password]", "s3cret-passphrase")
            page.click("#join-wifi")
            assert page.url.endswith("/setup/done")
            calls = [json.loads(line) for line in log.read_text().splitlines()]
            assert ["general", "hostname", device_names.device_name(world.box_id)] in [c["args"] for c in calls]
            assert calls[-1]["args"] == ["--passwd-file", "/dev/stdin", "connection", "up", "id", "mipai-wifi"]
            assert calls[-1]["stdin"] == "802-11-wireless-security.psk:s3cret-passphrase\n"
            assert "s3cret" not in daemon.log.read_text()

            job = world.seal("--max-prints", "1", "--material", "PETG")
            assert world.box("queue", "add", job).returncode == 0
            wait_for(lambda: job_row(world)["state"] == "failed", "the license check")
            assert "allows PETG, not the loaded PLA" in job_row(world)["reason"]
        finally:
            daemon.stop()


def test_the_dashboard_enrols_the_box_with_a_fleet_ca(box, browser, tmp_path):
    now = datetime.datetime.now(datetime.UTC)
    ca = FleetCA.init(str(tmp_path / "ca"), "test fleet", now)
    other = FleetCA.init(str(tmp_path / "other-ca"), "other fleet", now)
    page = browser.new_page()
    set_up_and_log_in(page, box.url)
    expect(page.locator("#fleet-state")).to_have_text("Not enrolled in a fleet.")
    page.fill("#enrolment-token", "x" * 200)
    page.click("#enrolment-request")
    expect(page.locator("#error")).to_contain_text("at most 128 characters")

    page.fill("#enrolment-token", ca.new_token(now))
    with page.expect_download() as download:
        page.click("#enrolment-request")
    assert download.value.suggested_filename == "mipai-%s.csr" % box.world.box_id
    with open(download.value.path(), "rb") as handle:
        certificate = ca.enrol(handle.read(), now)  # the CA checks the request as always
    (tmp_path / "box.crt").write_bytes(certificate)
    for name, authority in (("ca.crt", ca), ("other.crt", other)):
        with open(authority._path("ca.crt"), "rb") as source:
            (tmp_path / name).write_bytes(source.read())

    page.goto(box.url)
    page.set_input_files("#fleet-certificate", str(tmp_path / "box.crt"))
    page.set_input_files("#fleet-ca", str(tmp_path / "other.crt"))
    page.click("#install-certificate")
    expect(page.locator("#error")).to_contain_text("not issued by that fleet CA; nothing was installed")
    assert not (box.world.data_dir / "fleet" / "box.crt").exists()
    page.set_input_files("#fleet-certificate", str(tmp_path / "box.crt"))
    page.set_input_files("#fleet-ca", str(tmp_path / "ca.crt"))
    page.click("#install-certificate")
    expect(page.locator("#notice")).to_contain_text("the fleet certificate is installed")
    expect(page.locator("#fleet-state")).to_have_text("Enrolled: this box has its fleet certificate.")
    assert (box.world.data_dir / "fleet" / "box.crt").read_bytes() == certificate
    assert oct((box.world.data_dir / "fleet" / "box.key").stat().st_mode & 0o777) == "0o600"
    assert ca.boxes()[box.world.box_id]["claim_code"] in box.log.read_text()  # the claim code the box shows
