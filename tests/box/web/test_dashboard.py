"""The dashboard and the history page in real headless Chromium, at a phone's width (390 px) and a desktop's
(1280 px), against one daemon and the virtual printer: the page fits, the chart is labelled, jobs and events
carry times, cancel asks first and names the job, the history prints again where the license allows and
deletes. Screenshots are kept under build/screenshots/."""

import datetime
import pathlib
import re

import pytest
from playwright.sync_api import expect

from box.jobs.store import Store
from fleet.ca import FleetCA
from tests.browser import PASSWORD, needs_chromium, set_up_and_log_in
from tests.daemon_process import job_row, serving_box, wait_for
from tests.mosquitto import Mosquitto
from tests.users import SAMPLE, World

pytestmark = needs_chromium

SCREENSHOTS = pathlib.Path(__file__).resolve().parents[3] / "build" / "screenshots"
PHONE, DESKTOP = {"width": 390, "height": 844}, {"width": 1280, "height": 900}


@pytest.fixture(scope="module")
def box(tmp_path_factory):
    with serving_box(World(tmp_path_factory.mktemp("dashboard")), "0.02") as daemon:
        yield daemon


@pytest.fixture(scope="module")
def desktop(browser):
    return browser.new_page(viewport=DESKTOP)


@pytest.fixture(scope="module")
def owner(box, browser, desktop):
    """The owner's logged-in desktop page (through the wizard when its test ran first), and a phone page of the
    same session."""
    if not any(cookie["name"] == "mipai_session" for cookie in desktop.context.cookies()):
        set_up_and_log_in(desktop, box.url)
    phone = browser.new_page(viewport=PHONE, storage_state=desktop.context.storage_state())
    phone.goto(box.url)
    return desktop, phone


def test_the_wizard_counts_its_steps_keeps_what_was_typed_and_shows_one_key(box, desktop):
    page = desktop
    page.goto(box.url + "/setup")
    expect(page.locator("#step")).to_have_text("Step 1 of 4")
    page.fill("input[name=box_name]", "Garage printer")
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirmation]", PASSWORD + " typo")
    page.click("#finish-setup")
    expect(page.locator("#error")).not_to_be_empty()
    expect(page.locator("input[name=box_name]")).to_have_value("Garage printer")  # kept
    expect(page.locator("input[name=password]")).to_have_value("")  # a password is never sent back
    page.fill("input[name=password]", PASSWORD)
    page.fill("input[name=confirmation]", PASSWORD)
    page.click("#finish-setup")

    expect(page.locator("#step")).to_have_text("Step 2 of 4")
    page.fill("input[name=material]", "pla")
    page.fill("input[name=nozzle_mm]", "0.6")
    page.fill("input[name=x]", "5")  # too small: refused
    page.click("#confirm-printer")
    expect(page.locator("#error")).to_contain_text("between 10 and 2000 mm")
    expect(page.locator("input[name=material]")).to_have_value("pla")
    expect(page.locator("input[name=nozzle_mm]")).to_have_value("0.6")
    expect(page.locator("input[name=x]")).to_have_value("5")
    page.fill("input[name=x]", "220")
    page.click("#confirm-printer")

    expect(page.locator("#step")).to_have_text("Step 3 of 4")
    page.click("#keep-network")
    expect(page.locator("#step")).to_have_text("Step 4 of 4")
    expect(page.locator("#box-name")).to_have_text("Garage printer")
    expect(page.locator("#box-key")).to_have_text(box.world.recipient)  # the one key a designer needs
    assert box.world.recipient.startswith("mipai-box:")
    expect(page.locator("#key-details code").first).not_to_be_visible()  # the hex waits behind "details"
    page.click("#key-details summary")
    expect(page.locator("#key-details code").first).to_be_visible()
    _fits(page, "wizard-done")
    page.goto(box.url + "/login")
    page.fill("input[name=password]", PASSWORD)
    page.click("#log-in")
    assert page.url == box.url + "/"


def _fits(page, name: str) -> None:
    """No horizontal scroll at the page's width; the screenshot is kept."""
    SCREENSHOTS.mkdir(parents=True, exist_ok=True)
    page.screenshot(path=str(SCREENSHOTS / ("%s-%d.png" % (name, page.viewport_size["width"]))), full_page=True)
    width = page.evaluate("document.documentElement.scrollWidth")
    viewport = page.viewport_size["width"]
    assert width <= viewport, "%s is %d px wide at %d px" % (name, width, viewport)


def _within_view(page, selector: str) -> None:
    """The element is inside the page's width (not cut off at the right edge) and can be clicked."""
    box = page.locator(selector).bounding_box()
    assert box is not None and box["x"] >= 0 and box["x"] + box["width"] <= page.viewport_size["width"]


def test_a_print_shows_times_a_labelled_chart_and_the_license_left(box, owner):
    desktop, phone = owner
    job = box.world.seal("--max-prints", "1", "--title", "vase")
    desktop.set_input_files("#upload", job)
    desktop.click("#send")
    expect(desktop.locator("#job-1 .state")).to_have_text("done", timeout=60_000)
    expect(desktop.locator("#job-1 .times time").first).to_have_text(re.compile(r"\d\d:\d\d"))
    expect(desktop.locator("#events time").first).to_have_text(re.compile(r"\d\d:\d\d"))  # events carry times
    expect(desktop.locator("#events")).to_contain_text("job 1: printing -> done")  # and arrive live
    chart = desktop.locator("#chart")
    expect(chart).to_contain_text("°C")
    expect(chart).to_contain_text("now")
    for series in ("hotend", "bed", "hotend target", "bed target"):
        expect(desktop.locator("#chart-legend span", has_text=re.compile("^%s$" % series))).to_have_count(1)
    assert chart.locator("polyline.hotend").count() == 1 and chart.locator("polyline.bed").count() == 1
    counters = desktop.locator("#counters tr").first
    expect(counters.locator(".title")).to_contain_text("vase")
    expect(counters.locator(".prints")).to_have_text("1")
    expect(counters.locator(".left")).to_have_text("0 of 1")
    for page in (desktop, phone):
        page.goto(box.url)
        _fits(page, "dashboard-done")
    icon = desktop.request.get(box.url + desktop.locator("link[rel=icon]").get_attribute("href"))
    assert icon.ok and icon.headers["content-type"].startswith("image/svg+xml") and icon.text().startswith("<svg")


def test_the_page_fits_a_phone_and_cancel_asks_naming_the_job(box, owner):
    desktop, phone = owner
    for _copy in range(2):  # identical titles: the confirmation tells them apart by number and state
        phone.set_input_files("#upload", SAMPLE)
        phone.click("#send")
    expect(phone.locator("#job-2 .state")).to_have_text("printing", timeout=30_000)
    expect(phone.locator("#job-3 .state")).to_have_text("queued")
    for page in (phone, desktop):
        page.goto(box.url)
        expect(page.locator("#job-2 .state")).to_have_text("printing")
        _fits(page, "dashboard-printing")
        _within_view(page, "#pause-2")
        _within_view(page, "#cancel-2")

    questions = []
    phone.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.dismiss()))
    phone.click("#cancel-2")
    assert questions == ["Cancel job 2, \u201cvase.gcode\u201d (printing)?"]
    assert job_row(box.world, 2)["request"] == "" and job_row(box.world, 2)["state"] == "printing"
    phone.once("dialog", lambda dialog: (questions.append(dialog.message), dialog.accept()))
    phone.click("#cancel-3")
    assert questions[-1] == "Cancel job 3, \u201cvase.gcode\u201d (queued)?"
    expect(phone.locator("#job-3 .state")).to_have_text("cancelled", timeout=30_000)
    phone.once("dialog", lambda dialog: dialog.accept())
    phone.click("#cancel-2")
    expect(phone.locator("#job-2 .state")).to_have_text("cancelled", timeout=30_000)


def test_history_prints_again_where_the_license_allows_and_deletes(box, owner):
    desktop, phone = owner
    desktop.click("#to-history")
    assert desktop.url == box.url + "/history"
    done = desktop.locator("#history-1")
    expect(done.locator(".state")).to_have_text("done")
    expect(done.locator(".duration")).to_have_text(re.compile(r"^\d+ (s|min \d\d s)$"))
    expect(done.locator(".lines")).to_have_text(re.compile(r"^(\d+) of \1$"))
    expect(done.locator(".material")).to_have_text("PLA")  # as confirmed in the wizard
    expect(done.locator("#no-again-1")).to_contain_text("no prints left")  # one print licensed, one made
    cancelled = desktop.locator("#history-2")
    expect(cancelled.locator(".state")).to_have_text("cancelled")
    expect(cancelled.locator(".reason")).not_to_be_empty()
    expect(desktop.locator("#history-3 .duration")).to_have_text("not printed")
    for page in (desktop, phone):
        page.goto(box.url + "/history")
        _fits(page, "history")
        _within_view(page, "#delete-3")

    desktop.click("#again-2")  # the owner's own G-code: no print limit
    expect(desktop.locator("#notice")).to_have_text("Job 2 is queued again as job 4.")
    wait_for(lambda: job_row(box.world, 4)["state"] != "queued", "job 4 to start")
    assert job_row(box.world, 4)["spool_path"] == job_row(box.world, 2)["spool_path"]
    assert job_row(box.world, 4)["title"] == "vase.gcode"

    kept, removed = job_row(box.world, 2)["spool_path"], job_row(box.world, 3)["spool_path"]
    desktop.once("dialog", lambda dialog: dialog.accept())
    desktop.click("#delete-3")
    expect(desktop.locator("#notice")).to_have_text("Job 3 (vase.gcode) is deleted from the history.")
    expect(desktop.locator("#history-3")).to_have_count(0)
    assert 3 not in [row["id"] for row in Store(str(box.world.data_dir / "box.sqlite")).jobs()]
    assert pathlib.Path(kept).exists() and not pathlib.Path(removed).exists()  # its sealed file went with it


def _console_shows(page, line: str) -> None:
    """The console lists `line` (sent within a second of the click), live, without a reload."""
    expect(page.locator("#console")).to_contain_text(line, timeout=20_000)


def test_manual_controls_reach_the_idle_printer_logged_and_are_refused_while_printing(box, owner):
    desktop, phone = owner
    wait_for(lambda: job_row(box.world, 4)["state"] in ("done", "cancelled", "failed"), "job 4 to end", 60)
    page = phone
    page.goto(box.url + "/controls")
    expect(page.locator("#controls-state")).to_contain_text("No job is printing")
    _fits(page, "controls")
    page.click("#preheat-pla")
    expect(page.locator("#notice")).to_have_text(
        "On its way to the printer: preheat for PLA (hotend 200 °C, bed 60 °C)."
    )
    _console_shows(page, "> M104 S200")
    desktop.goto(box.url)
    expect(desktop.locator("#temperatures")).to_contain_text("/ 200 °C, bed", timeout=10_000)  # the target took
    expect(desktop.locator("#events")).to_contain_text(
        "preheat for PLA (hotend 200 °C, bed 60 °C) (M104 S200; M140 S60)"
    )

    page.fill("#hotend", "999")
    page.click("#preheat-custom")
    expect(page.locator("#error")).to_have_text("Not sent: the hotend temperature (°C) is a number from 0 to 300.")
    page.select_option("#jog-axis", "Z")
    page.fill("#jog-distance", "-2.5")
    page.click("#jog")
    _console_shows(page, "> G1 Z-2.50 F600")
    page.click("#retract")
    _console_shows(page, "> G1 E-5.00 F300")
    page.fill("#console-command", "M112")
    page.click("#console-send")
    expect(page.locator("#error")).to_contain_text("M112 is not sent by hand")
    page.fill("#console-command", "g28 x ; home X only")
    page.click("#console-send")
    _console_shows(page, "> G28 x")
    page.click("#motors-off")
    _console_shows(page, "> M84")
    page.click("#cooldown")
    _console_shows(page, "> M140 S0")

    page.goto(box.url)
    page.set_input_files("#upload", SAMPLE)
    page.click("#send")
    expect(page.locator("#job-5 .state")).to_have_text("printing", timeout=30_000)
    page.goto(box.url + "/controls")
    expect(page.locator("#controls-state")).to_contain_text("Job 5 is printing")
    for button in ("#preheat-petg", "#home-xyz", "#jog", "#extrude", "#motors-off", "#console-send"):
        if button == "#console-send":
            page.fill("#console-command", "G28")
        with page.expect_response(lambda response: "/controls/" in response.url) as answer:
            page.click(button)
        assert answer.value.status == 409
        expect(page.locator("#error")).to_have_text("Not sent: job 5 is running: manual controls wait until it has "
                                                    "ended.")  # fmt: skip
    assert "> G28\n" not in page.locator("#console").inner_text() + "\n"
    desktop.goto(box.url)
    expect(desktop.locator("#events")).to_contain_text("refused, job 5 is running")
    desktop.once("dialog", lambda dialog: dialog.accept())
    desktop.click("#cancel-5")
    expect(desktop.locator("#job-5 .state")).to_have_text("cancelled", timeout=30_000)


def test_the_fleet_broker_is_set_from_the_page_and_its_state_shown(box, owner, tmp_path):
    desktop, _phone = owner
    page = desktop
    page.goto(box.url)
    expect(page.locator("#broker-state")).to_contain_text("No fleet broker")
    expect(page.locator("#broker-connection")).to_have_text("not configured")
    expect(page.locator("#request-words")).to_contain_text("send it to your fleet operator")
    broker = Mosquitto(tmp_path).start()
    try:
        page.fill("#broker-host", "127.0.0.1")
        page.fill("#broker-port", "99999")
        page.click("#save-broker")
        expect(page.locator("#error")).to_contain_text("fleet.broker_port must be a TCP port number")
        expect(page.locator("#broker-connection")).to_have_text("not configured")  # nothing changed

        page.fill("#broker-host", "127.0.0.1")
        page.fill("#broker-port", str(broker.port))
        page.click("#save-broker")
        expect(page.locator("#notice")).to_have_text(
            "The fleet broker is now 127.0.0.1:%d (TLS off); the fleet link restarted." % broker.port
        )
        expect(page.locator("#broker-connection")).to_have_text("connected", timeout=20_000)  # live, no reload
        expect(page.locator("#broker-state code")).to_have_text("127.0.0.1:%d" % broker.port)

        box.stop()  # the choice outlives a restart: the agent connects again without [fleet] in the file
        box.start()
        page.goto(box.url)
        expect(page.locator("#broker-connection")).to_have_text("connected", timeout=20_000)
        broker.stop()
        expect(page.locator("#broker-connection")).to_have_text("not connected (trying)", timeout=20_000)
    finally:
        broker.stop()
    page.fill("#broker-host", "")
    page.click("#save-broker")
    expect(page.locator("#notice")).to_contain_text("No fleet broker: the fleet link is stopped")
    expect(page.locator("#broker-connection")).to_have_text("not configured")


def test_a_swapped_certificate_pair_is_named_as_such(box, owner, tmp_path):
    desktop, _phone = owner
    page = desktop
    now = datetime.datetime.now(datetime.UTC)
    ca = FleetCA.init(str(tmp_path / "ca"), "test fleet", now)
    page.goto(box.url)
    page.fill("#enrolment-token", ca.new_token(now))
    with page.expect_download() as download:
        page.click("#enrolment-request")
    with open(download.value.path(), "rb") as handle:
        (tmp_path / "box.crt").write_bytes(ca.enrol(handle.read(), now))
    with open(ca._path("ca.crt"), "rb") as source:
        (tmp_path / "ca.crt").write_bytes(source.read())
    page.goto(box.url)
    page.set_input_files("#fleet-certificate", str(tmp_path / "ca.crt"))
    page.set_input_files("#fleet-ca", str(tmp_path / "box.crt"))
    page.click("#install-certificate")
    expect(page.locator("#error")).to_contain_text("the two certificates are swapped")
    expect(page.locator("#error")).to_contain_text("nothing was installed")
    assert not (box.world.data_dir / "fleet" / "box.crt").exists()
