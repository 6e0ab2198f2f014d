"""Server-rendered pages. Every value from outside is escaped; pages are small (no front-end build)."""

from html import escape

from box.jobs.store import failure_report

STYLE = """
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222}
header{background:#1d3557;color:#fff;padding:.8em 1.2em}header b{font-size:1.2em}
main{max-width:60em;margin:1em auto;padding:0 1em}
section{background:#fff;border-radius:6px;padding:1em;margin-bottom:1em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em .5em;border-bottom:1px solid #eee}
.bar{background:#e9ecef;border-radius:3px;height:.9em;width:10em;display:inline-block;vertical-align:middle}
.bar i{display:block;height:100%;background:#2a9d8f;border-radius:3px}
.error{color:#b00020}.note{color:#555}code{word-break:break-all}
input,button{font-size:1em;padding:.3em}form.inline{display:inline}
"""

ACTIONS = {"held": ("start", "cancel"), "queued": ("cancel",), "verifying": ("cancel",),
           "printing": ("pause", "cancel"), "paused": ("resume", "cancel")}  # fmt: skip


def page(title: str, body: str, box_name: str = "") -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        "<title>%s</title><style>%s</style></head><body><header><b>MIP.AI Box</b> %s</header><main>%s</main>"
        "</body></html>" % (escape(title), STYLE, escape(box_name), body)
    )


def error_line(message) -> str:
    return "<p class=error id=error role=alert>%s</p>" % escape(message) if message else ""


def notice_line(message) -> str:
    return "<p class=note id=notice role=status>%s</p>" % escape(message) if message else ""


def setup_form(csrf: str, box, claim_code: str, message: str = "") -> str:
    return page(
        "Set up your box",
        "<section><h1>Set up your box</h1>%s"
        "<p>Box id <code id=box-id>%s</code>, claim code <code id=claim-code>%s</code> (to enrol the box in a "
        "fleet; single use)</p><p class=note>Designers seal jobs for this box to "
        "<code id=recipient>%s</code></p>"
        "<form method=post action=/setup><input type=hidden name=csrf value=%s>"
        "<p><label>Box name <input name=box_name required maxlength=40 value=\"%s\"></label></p>"
        "<p><label>Admin password <input type=password name=password required minlength=10 "
        "autocomplete=new-password></label></p>"
        "<p><label>Password again <input type=password name=confirmation required minlength=10 "
        "autocomplete=new-password></label></p>"
        "<p><button id=finish-setup>Finish setup</button></p></form></section>"
        % (error_line(message), escape(box.box_id), escape(claim_code), escape(box.recipient), escape(csrf),
           escape("mipai-" + box.box_id[:4])),
    )  # fmt: skip


def message_page(title: str, text: str) -> str:
    return page(title, "<section><h1>%s</h1><p id=message>%s</p></section>" % (escape(title), escape(text)))


def login_form(csrf: str, message: str = "", box_name: str = "") -> str:
    return page(
        "Log in",
        "<section><h1>Log in</h1>%s<form method=post action=/login><input type=hidden name=csrf value=%s>"
        "<p><label>Password <input type=password name=password required autocomplete=current-password></label></p>"
        "<p><button id=log-in>Log in</button></p></form></section>" % (error_line(message), escape(csrf)),
        box_name,
    )


def job_rows(jobs: list, csrf: str) -> str:
    rows = []
    for job in jobs:
        percent = 100.0 * job["last_source_line"] / job["source_lines"] if job["source_lines"] else 0.0
        if job["state"] == "done":
            percent = 100.0
        buttons = "".join(
            "<form class=inline method=post action=/jobs/%d/%s><input type=hidden name=csrf value=%s>"
            "<button id=%s-%d>%s</button></form>" % (job["id"], action, escape(csrf), action, job["id"], action)
            for action in ACTIONS.get(job["state"], ())
        )
        rows.append(
            "<tr id=job-%d><td>%d</td><td>%s</td><td class=state>%s</td>"
            "<td><span class=bar><i style=\"width:%.1f%%\"></i></span> <span class=percent>%.1f%%</span></td>"
            "<td class=reason>%s%s</td><td>%s</td></tr>"
            % (job["id"], job["id"], escape(job["title"]), escape(job["state"]), percent, percent,
               escape(job["reason"] or ""), _failure_details(job), buttons)
        )  # fmt: skip
    return "".join(rows) or "<tr><td colspan=6>No jobs yet.</td></tr>"


def _failure_details(job) -> str:
    lines = failure_report(job)
    if not lines:
        return ""
    return "<details class=report><summary>what the printer said</summary><pre>%s</pre></details>" % escape(
        "\n".join(lines)
    )


def _clock(seconds) -> str:
    seconds = int(seconds)
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def live_html(snapshot: dict, now: float, window: float = 900.0) -> str:
    """Temperatures now, a chart of the last 15 minutes (inline SVG), and the printing job's layer, Z and ETA."""
    samples = snapshot["samples"]
    parts = []
    if samples:
        _, hotend, hotend_target, bed, bed_target = samples[-1]
        parts.append(
            "<p id=temperatures>Hotend %s / %s °C, bed %s / %s °C</p>"
            % tuple("%.0f" % v if v is not None else "?" for v in (hotend, hotend_target, bed, bed_target))
        )
        lines = []
        for column, colour in ((1, "#e63946"), (3, "#457b9d")):
            points = " ".join(
                "%.1f,%.1f" % (600 * (1 - (now - s[0]) / window), 120 - min(max(s[column], 0), 300) * 0.4)
                for s in samples
                if s[column] is not None
            )
            lines.append('<polyline fill=none stroke="%s" stroke-width=1.5 points="%s"/>' % (colour, points))
        parts.append(
            '<svg id=chart viewBox="0 0 600 120" width=600 height=120 role=img aria-label="temperatures, last 15 '
            'minutes" style="background:#fafafa;max-width:100%%">%s</svg>' % "".join(lines)
        )
    else:
        parts.append("<p id=temperatures class=note>No temperatures yet (they are read while printing).</p>")
    job = snapshot["job"]
    if job:
        parts.append(
            "<p id=job-live>Job %d: layer %d%s%s</p>"
            % (
                job["number"],
                job["layer"],
                ", Z %.2f mm" % job["z"] if job["z"] is not None else "",
                ", about %s left" % _clock(job["eta_seconds"]) if job["eta_seconds"] is not None else "",
            )
        )
    return "".join(parts)


def counters_html(counts: list) -> str:
    rows = "".join("<tr><td><code>%s</code></td><td>%d</td></tr>" % (escape(lid), n) for lid, n in counts)
    return rows or "<tr><td colspan=2>No licensed prints yet.</td></tr>"


DASHBOARD_SCRIPT = """
const source = new EventSource('/events');
source.onmessage = (message) => {
  const data = JSON.parse(message.data);
  document.getElementById('printer').textContent = data.printer;
  document.getElementById('live').innerHTML = data.live_html;
  document.getElementById('network').textContent = data.network;
  document.getElementById('counters').innerHTML = data.counters_html;
  document.getElementById('jobs').innerHTML = data.jobs_html;
};
"""


def dashboard(
    box_name: str,
    printer: str,
    jobs: list,
    csrf: str,
    events: list,
    live: str,
    counts: list,
    network: str,
    message: str = "",
    fleet: str = "",
    notice: str = "",
) -> str:
    events_html = "".join("<li>%s</li>" % escape(event["message"]) for event in events)
    return page(
        "Dashboard",
        "%s<section><h2>Printer</h2><p id=printer>%s</p><div id=live>%s</div>"
        "<h2>Network</h2><p id=network>%s</p></section>"
        "<section><h2>Jobs</h2><table><thead><tr><th>#</th><th>job</th><th>state</th><th>progress</th>"
        "<th>note</th><th></th></tr></thead><tbody id=jobs>%s</tbody></table>"
        "<form method=post action=/jobs enctype=multipart/form-data><input type=hidden name=csrf value=%s>"
        "<p><label>Sealed job (.mipjob) or your own G-code <input type=file name=file id=upload required></label>"
        " <button id=send>Upload and queue</button></p></form></section>"
        "<section><h2>Prints per license</h2><table><thead><tr><th>license</th><th>prints</th></tr></thead>"
        "<tbody id=counters>%s</tbody></table></section>"
        "<section><h2>Slicers</h2><p class=note>PrusaSlicer, OrcaSlicer and Cura can send jobs here as to "
        "OctoPrint, with an API key: one per slicer.</p><form method=post action=/api-keys><input type=hidden "
        "name=csrf value=%s><input name=name maxlength=40 placeholder=PrusaSlicer aria-label=\"key name\"> "
        "<button id=new-api-key>Make a new API key</button> <a id=api-keys href=/api-keys>All API keys</a></form>"
        "</section>"
        "%s<section><h2>Recent events</h2><ul id=events>%s</ul></section>"
        "<form method=post action=/logout><input type=hidden name=csrf value=%s><button>Log out</button></form>"
        "<script>%s</script>"
        % (error_line(message) + notice_line(notice), escape(printer), live, escape(network), job_rows(jobs, csrf),
           escape(csrf), counters_html(counts), escape(csrf), fleet, events_html, escape(csrf), DASHBOARD_SCRIPT),
        box_name,
    )  # fmt: skip


def printer_step(csrf: str, printer: str, profile: dict, message: str = "") -> str:
    volume = profile.get("build_volume_mm", [220, 220, 250])
    return page(
        "Set up your box: printer",
        "<section><h1>Your printer</h1>%s<p id=detected>%s</p>"
        "<form method=post action=/setup/printer><input type=hidden name=csrf value=%s>"
        "<p><label>Loaded material <input name=material required maxlength=32 value=\"%s\" placeholder=PLA></label></p>"
        "<p><label>Nozzle diameter (mm) <input name=nozzle_mm required value=\"%s\"></label></p>"
        "<p>Build volume (mm) <input name=x aria-label=X size=4 value=%d> x <input name=y aria-label=Y size=4 "
        "value=%d> x <input name=z aria-label=Z size=4 value=%d></p>"
        "<p><button id=confirm-printer>This is my printer</button></p></form></section>"
        % (error_line(message), escape(printer), escape(csrf), escape(profile.get("material", "")),
           escape(str(profile.get("nozzle_mm", "0.4"))), volume[0], volume[1], volume[2]),
    )  # fmt: skip


def network_step(csrf: str, managed: bool, networks: list, message: str = "") -> str:
    if not managed:
        body = (
            "<p id=network-managed>This box's network is managed by the system (Ethernet, or Wi-Fi set up "
            "before): nothing to choose here.</p>"
            "<form method=post action=/setup/network><input type=hidden name=csrf value=%s>"
            "<input type=hidden name=choice value=keep><button id=keep-network>Continue</button></form>" % escape(csrf)
        )
    else:
        options = "".join(
            '<p><label><input type=radio name=ssid value="%s"> %s (%d%%, %s)</label></p>'
            % (escape(n["ssid"]), escape(n["ssid"]), n["signal"], escape(n["security"] or "open"))
            for n in networks
        )
        body = (
            "<form method=post action=/setup/network><input type=hidden name=csrf value=%s>"
            "<input type=hidden name=choice value=wifi>%s"
            "<p><label>Or another network (hidden SSID) <input name=manual_ssid maxlength=32></label></p>"
            "<p><label>Wi-Fi password <input type=password name=password autocomplete=off></label></p>"
            "<p><button id=join-wifi>Join this network</button></p></form>"
            "<form method=post action=/setup/network><input type=hidden name=csrf value=%s>"
            "<input type=hidden name=choice value=keep><button id=keep-network>Keep Ethernet</button></form>"
            % (escape(csrf), options or "<p class=note>No networks seen.</p>", escape(csrf))
        )
    return page("Set up your box: network", "<section><h1>Network</h1>%s%s</section>" % (error_line(message), body))


def done_page(box, claim_code: str, name: str) -> str:
    return page(
        "Your box is set up",
        "<section><h1>Your box is set up</h1><p>Name <b id=box-name>%s</b>, box id <code>%s</code></p>"
        "<p>Claim code <code id=done-claim-code>%s</code> (to enrol the box in a fleet; single use)</p>"
        "<p>Designers seal jobs for this box to <code>%s</code></p>"
        "<p>Signing key (Ed25519) <code>%s</code></p><p>Sealing key (X25519) <code>%s</code></p>"
        "<p><a id=to-dashboard href=/>Go to the dashboard</a></p></section>"
        % (escape(name), escape(box.box_id), escape(claim_code), escape(box.recipient), box.signing_public.hex(),
           box.sealing_public.hex()),
    )  # fmt: skip
