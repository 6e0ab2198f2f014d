"""Server-rendered pages. Every value from outside is escaped; pages are small (no front-end build)."""

import time
from html import escape

from box.jobs.store import failure_report

STYLE = """
*{box-sizing:border-box}
body{font-family:system-ui,sans-serif;margin:0;background:#f4f5f7;color:#222;overflow-wrap:break-word}
header{background:#1d3557;color:#fff;padding:.8em 1.2em}header b{font-size:1.2em}
header nav{display:inline}header a{color:#fff;margin-left:1em}
main{max-width:60em;margin:1em auto;padding:0 1em}
section{background:#fff;border-radius:6px;padding:1em;margin-bottom:1em}
table{border-collapse:collapse;width:100%}td,th{text-align:left;padding:.3em .5em;border-bottom:1px solid #eee}
.bar{background:#e9ecef;border-radius:3px;height:.9em;width:8em;max-width:100%;display:inline-block;
vertical-align:middle}
.bar i{display:block;height:100%;background:#2a9d8f;border-radius:3px}
.error{color:#b00020}.note{color:#555}code{word-break:break-all}time{white-space:nowrap;color:#555}
input,button{font-size:1em;padding:.3em;max-width:100%}form.inline{display:inline}
button{min-height:2.2em;margin:.1em 0}
svg{display:block;width:100%;height:auto}
.legend span{margin-right:1em;white-space:nowrap}.legend i{display:inline-block;width:1.4em;margin-right:.3em;
vertical-align:middle}
@media (max-width:40em){
main{padding:0 .5em}section{padding:.7em}
table.cards thead{display:none}table.cards tr{display:block;border-bottom:1px solid #ddd;padding:.4em 0}
table.cards td{display:block;border:0;padding:.15em .3em}
table.cards td[data-label]:before{content:attr(data-label) ": ";color:#555}
#chart text{font-size:20px}
}
"""

# What the owner may do with a job in each state (held: kept for later, as a slicer's plain upload), and whether
# the button asks first. One row per state.
ACTIONS = {
    "held": ("start", "cancel"),
    "queued": ("cancel",),
    "verifying": ("cancel",),
    "printing": ("pause", "cancel"),
    "paused": ("resume", "cancel"),
}
CONFIRMED_ACTIONS = frozenset({"cancel"})
NAV = (("/", "Dashboard"), ("/history", "History"), ("/controls", "Controls"))


def page(title: str, body: str, box_name: str = "", nav: bool = False) -> str:
    return (
        "<!doctype html><html lang=en><head><meta charset=utf-8>"
        '<meta name=viewport content="width=device-width,initial-scale=1">'
        "<title>%s</title><link rel=icon href=/favicon.svg type=image/svg+xml><style>%s</style></head><body>"
        "<header><b>MIP.AI Box</b> %s%s</header><main>%s</main></body></html>"
        % (escape(title), STYLE, escape(box_name), _nav() if nav else "", body)
    )


def _nav() -> str:
    return "<nav>%s</nav>" % "".join("<a href=%s>%s</a>" % (href, escape(text)) for href, text in NAV)


def when(at, now: float) -> str:
    """A moment as the owner reads it on the box's clock: the time today, the date and time before today."""
    if not at:
        return ""
    moment, today = time.localtime(at), time.localtime(now)
    shown = time.strftime("%H:%M" if moment[:3] == today[:3] else "%Y-%m-%d %H:%M", moment)
    stamp = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(at))
    return "<time datetime=%s>%s</time>" % (stamp, shown)


def duration(seconds) -> str:
    """`1 h 02 min`, `4 min 05 s` or `12 s`."""
    seconds = max(0, int(seconds))
    if seconds >= 3600:
        return "%d h %02d min" % (seconds // 3600, seconds // 60 % 60)
    if seconds >= 60:
        return "%d min %02d s" % (seconds // 60, seconds % 60)
    return "%d s" % seconds


def job_label(job) -> str:
    """How a job is named to the owner: number, title and state, so identical titles are told apart."""
    return "job %d, \u201c%s\u201d (%s)" % (job["id"], job["title"] or "untitled", job["state"])


def error_line(message) -> str:
    return "<p class=error id=error role=alert>%s</p>" % escape(message) if message else ""


def notice_line(message) -> str:
    return "<p class=note id=notice role=status>%s</p>" % escape(message) if message else ""


WIZARD_STEPS = 4


def step_line(number: int) -> str:
    return "<p class=note id=step>Step %d of %d</p>" % (number, WIZARD_STEPS)


def setup_form(csrf: str, box, claim_code: str, message: str = "", box_name: str = "") -> str:
    """The wizard's first step; `box_name`: what the owner typed, kept when a field was refused (the passwords
    are never sent back)."""
    return page(
        "Set up your box",
        "<section><h1>Set up your box</h1>%s%s"
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
        % (step_line(1), error_line(message), escape(box.box_id), escape(claim_code), escape(box.recipient),
           escape(csrf), escape(box_name or "mipai-" + box.box_id[:4])),
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


def action_button(job, action: str, csrf: str) -> str:
    """One action's form; an action that cannot be undone asks first, naming the job."""
    question = "%s %s?" % (action.capitalize(), job_label(job))
    ask = ' data-confirm="%s"' % escape(question) if action in CONFIRMED_ACTIONS else ""
    return (
        "<form class=inline method=post action=/jobs/%d/%s%s><input type=hidden name=csrf value=%s>"
        "<button id=%s-%d>%s</button></form>" % (job["id"], action, ask, escape(csrf), action, job["id"], action)
    )


def job_rows(jobs: list, csrf: str, now: float | None = None) -> str:
    now = time.time() if now is None else now
    rows = []
    for job in jobs:
        percent = 100.0 * job["last_source_line"] / job["source_lines"] if job["source_lines"] else 0.0
        if job["state"] == "done":
            percent = 100.0
        buttons = "".join(action_button(job, action, csrf) for action in ACTIONS.get(job["state"], ()))
        changed = job.get("updated_at") != job.get("created_at")
        updated = " · updated %s" % when(job.get("updated_at"), now) if changed else ""
        rows.append(
            "<tr id=job-%d><td data-label=job>%d</td><td class=title>%s</td><td class=state data-label=state>%s</td>"
            "<td class=times data-label=queued>%s%s</td>"
            "<td><span class=bar><i style=\"width:%.1f%%\"></i></span> <span class=percent>%.1f%%</span></td>"
            "<td class=reason>%s%s</td><td class=actions>%s</td></tr>"
            % (job["id"], job["id"], escape(job["title"] or "untitled"), escape(job["state"]),
               when(job.get("created_at"), now),
               updated,
               percent, percent, escape(job["reason"] or ""), _failure_details(job), buttons)
        )  # fmt: skip
    return "".join(rows) or "<tr><td colspan=7>No jobs yet.</td></tr>"


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


# The chart's drawing area inside its 640 x 220 view box: left, top, right, bottom.
CHART_BOX = (44, 32, 620, 180)
CHART_SERIES = ((1, "hotend", "#e63946", ""), (2, "hotend target", "#e63946", "4 3"),
                (3, "bed", "#457b9d", ""), (4, "bed target", "#457b9d", "4 3"))  # fmt: skip
MIN_CHART_SECONDS = 60.0


def temperature_chart(samples: list, now: float) -> str:
    """An inline SVG of the temperatures it has (up to the last 15 minutes): °C on the left axis, minutes before
    now along the bottom, and a legend for hotend and bed (measured solid, targets dashed) below it."""
    left, top, right, bottom = CHART_BOX
    span = max(MIN_CHART_SECONDS, now - samples[0][0])
    hottest = max([v for s in samples for v in s[1:] if v is not None] + [50.0])
    ceiling = min(300.0, 50.0 * -(-hottest // 50))

    def x(at: float) -> float:
        return right - (right - left) * min(max(now - at, 0.0), span) / span

    def y(value: float) -> float:
        return bottom - (bottom - top) * min(max(value, 0.0), ceiling) / ceiling

    parts = ["<rect x=%d y=%d width=%d height=%d fill=#fafafa stroke=#ccc />" % (left, top, right - left, bottom - top)]
    step = 50 if ceiling > 100 else 25
    for value in range(0, int(ceiling) + 1, step):
        level = y(value)
        parts.append('<line x1=%d x2=%d y1=%.1f y2=%.1f stroke=#e5e5e5 /><text x=%d y=%.1f font-size=12 '
                     'text-anchor=end>%d</text>' % (left, right, level, level, left - 4, level + 4, value))  # fmt: skip
    parts.append("<text x=%d y=16 font-size=12 text-anchor=end>°C</text>" % (left - 4))
    for fraction, anchor in ((1.0, "start"), (0.75, "middle"), (0.5, "middle"), (0.25, "middle"), (0.0, "end")):
        label = "now" if fraction == 0.0 else "-%s" % _ago(span * fraction)
        parts.append("<text x=%.1f y=%d font-size=12 text-anchor=%s>%s</text>"
                     % (x(now - span * fraction), bottom + 15, anchor, label))  # fmt: skip
    for column, name, colour, dashes in CHART_SERIES:
        points = " ".join("%.1f,%.1f" % (x(s[0]), y(s[column])) for s in samples if s[column] is not None)
        dashed = ' stroke-dasharray="%s"' % dashes if dashes else ""
        if points:
            parts.append('<polyline class="%s" fill=none stroke="%s" stroke-width=1.5%s points="%s"><title>%s'
                         "</title></polyline>" % (name.replace(" ", "-"), colour, dashed, points, name))  # fmt: skip
    # The legend is text of the page, not of the drawing, so it stays readable when a phone shrinks the chart.
    legend = "".join(
        '<span><i style="border-top:2px %s %s"></i>%s</span>' % ("dashed" if dashes else "solid", colour, name)
        for _column, name, colour, dashes in CHART_SERIES
    )
    return (
        '<svg id=chart viewBox="0 0 640 200" role=img aria-label="temperatures in °C over the last %s">%s</svg>'
        "<p id=chart-legend class=legend>%s</p>" % (_ago(span), "".join(parts), legend)
    )


def _ago(seconds: float) -> str:
    seconds = round(seconds)
    if seconds < 120:
        return "%d s" % seconds
    return "%d min" % (seconds // 60) if seconds % 60 == 0 else "%d:%02d min" % (seconds // 60, seconds % 60)


def live_html(snapshot: dict, now: float, window: float = 900.0) -> str:
    """Temperatures now, a chart of what the box has of the last 15 minutes, and the printing job's layer, Z
    and ETA."""
    samples = [s for s in snapshot["samples"] if now - s[0] <= window]
    parts = []
    if samples:
        _, hotend, hotend_target, bed, bed_target = samples[-1]
        parts.append(
            "<p id=temperatures>Hotend %s / %s °C, bed %s / %s °C</p>"
            % tuple("%.0f" % v if v is not None else "?" for v in (hotend, hotend_target, bed, bed_target))
        )
        parts.append(temperature_chart(samples, now))
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


def counters_html(counts: list, licenses: dict | None = None) -> str:
    """The prints made per license; `licenses`: license id -> {"title", "max_prints"} where the box knows them."""
    licenses = licenses or {}
    rows = []
    for lid, n in counts:
        known = licenses.get(lid) or {}
        limit = known.get("max_prints")
        if not known.get("known"):
            left = "?"
        elif limit is None:
            left = "unlimited"
        else:
            left = "%d of %d" % (max(limit - n, 0), limit)
        rows.append(
            "<tr><td class=title>%s<details><summary>license id</summary><code>%s</code></details></td>"
            "<td data-label=prints class=prints>%d</td><td data-label=left class=left>%s</td></tr>"
            % (escape(known.get("title") or "unknown job"), escape(lid), n, left)
        )
    return "".join(rows) or "<tr><td colspan=3>No licensed prints yet.</td></tr>"


def event_items(events: list, now: float | None = None) -> str:
    now = time.time() if now is None else now
    return "".join("<li>%s %s</li>" % (when(event.get("at"), now), escape(event["message"])) for event in events)


DASHBOARD_SCRIPT = """
const show = (id, field, value) => {
  const element = document.getElementById(id);
  if (element && value !== undefined) element[field] = value;
};
if (document.getElementById('jobs') || document.getElementById('console')) {
  const source = new EventSource(document.getElementById('console') ? '/events?console=1' : '/events');
  source.onmessage = (message) => {
    const data = JSON.parse(message.data);
    show('printer', 'textContent', data.printer);
    show('live', 'innerHTML', data.live_html);
    show('network', 'textContent', data.network);
    show('counters', 'innerHTML', data.counters_html);
    show('jobs', 'innerHTML', data.jobs_html);
    show('events', 'innerHTML', data.events_html);
    show('broker-connection', 'textContent', data.broker);
    show('console', 'innerHTML', data.console_html);
  };
}
document.addEventListener('submit', (event) => {
  const question = event.target.dataset.confirm;
  if (question && !window.confirm(question)) event.preventDefault();
});
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
    licenses: dict | None = None,
) -> str:
    return page(
        "Dashboard",
        "%s<section><h2>Printer</h2><p id=printer>%s</p><div id=live>%s</div>"
        "<h2>Network</h2><p id=network>%s</p></section>"
        "<section><h2>Jobs</h2><table class=cards><thead><tr><th>#</th><th>job</th><th>state</th><th>when</th>"
        "<th>progress</th><th>note</th><th></th></tr></thead><tbody id=jobs>%s</tbody></table>"
        "<p><a href=/history id=to-history>History of finished jobs</a></p>"
        "<form method=post action=/jobs enctype=multipart/form-data><input type=hidden name=csrf value=%s>"
        "<p><label>Sealed job (.mipjob) or your own G-code <input type=file name=file id=upload required></label>"
        " <button id=send>Upload and queue</button></p></form></section>"
        "<section><h2>Prints per license</h2><table class=cards><thead><tr><th>job</th><th>prints</th>"
        "<th>left</th></tr></thead><tbody id=counters>%s</tbody></table></section>"
        "<section><h2>Slicers</h2><p class=note>PrusaSlicer, OrcaSlicer and Cura can send jobs here as to "
        "OctoPrint, with an API key: one per slicer.</p><form method=post action=/api-keys><input type=hidden "
        "name=csrf value=%s><input name=name maxlength=40 placeholder=PrusaSlicer aria-label=\"key name\"> "
        "<button id=new-api-key>Make a new API key</button> <a id=api-keys href=/api-keys>All API keys</a></form>"
        "</section>"
        "%s<section><h2>Recent events</h2><ul id=events>%s</ul></section>"
        "<form method=post action=/logout><input type=hidden name=csrf value=%s><button>Log out</button></form>"
        "<script>%s</script>"
        % (error_line(message) + notice_line(notice), escape(printer), live, escape(network), job_rows(jobs, csrf),
           escape(csrf), counters_html(counts, licenses), escape(csrf), fleet, event_items(events), escape(csrf),
           DASHBOARD_SCRIPT),
        box_name,
        nav=True,
    )  # fmt: skip


def printer_step(csrf: str, printer: str, profile: dict, message: str = "") -> str:
    volume = profile.get("build_volume_mm", [220, 220, 250])
    return page(
        "Set up your box: printer",
        "<section><h1>Your printer</h1>%s%s<p id=detected>%s</p>"
        "<form method=post action=/setup/printer><input type=hidden name=csrf value=%s>"
        "<p><label>Loaded material <input name=material required maxlength=32 value=\"%s\" placeholder=PLA></label></p>"
        "<p><label>Nozzle diameter (mm) <input name=nozzle_mm required value=\"%s\"></label></p>"
        "<p>Build volume (mm) <input name=x aria-label=X size=4 value=\"%s\"> x <input name=y aria-label=Y size=4 "
        "value=\"%s\"> x <input name=z aria-label=Z size=4 value=\"%s\"></p>"
        "<p><button id=confirm-printer>This is my printer</button></p></form></section>"
        % (step_line(2), error_line(message), escape(printer), escape(csrf), escape(profile.get("material", "")),
           escape(str(profile.get("nozzle_mm", "0.4"))), *(escape(str(side)) for side in volume)),
    )  # fmt: skip


def network_step(csrf: str, managed: bool, networks: list, message: str = "", typed: dict | None = None) -> str:
    """The wizard's network step; `typed`: the network chosen or typed, kept when joining it was refused (the
    Wi-Fi password is never sent back)."""
    typed = typed or {}
    if not managed:
        body = (
            "<p id=network-managed>This box's network is managed by the system (Ethernet, or Wi-Fi set up "
            "before): nothing to choose here.</p>"
            "<form method=post action=/setup/network><input type=hidden name=csrf value=%s>"
            "<input type=hidden name=choice value=keep><button id=keep-network>Continue</button></form>" % escape(csrf)
        )
    else:
        options = "".join(
            '<p><label><input type=radio name=ssid value="%s"%s> %s (%d%%, %s)</label></p>'
            % (escape(n["ssid"]), " checked" if n["ssid"] == typed.get("ssid") else "", escape(n["ssid"]),
               n["signal"], escape(n["security"] or "open"))
            for n in networks
        )  # fmt: skip
        body = (
            "<form method=post action=/setup/network><input type=hidden name=csrf value=%s>"
            "<input type=hidden name=choice value=wifi>%s"
            '<p><label>Or another network (hidden SSID) <input name=manual_ssid maxlength=32 value="%s"></label></p>'
            "<p><label>Wi-Fi password <input type=password name=password autocomplete=off></label></p>"
            "<p><button id=join-wifi>Join this network</button></p></form>"
            "<form method=post action=/setup/network><input type=hidden name=csrf value=%s>"
            "<input type=hidden name=choice value=keep><button id=keep-network>Keep Ethernet</button></form>"
            % (escape(csrf), options or "<p class=note>No networks seen.</p>", escape(typed.get("manual_ssid", "")),
               escape(csrf))
        )  # fmt: skip
    body = "<section><h1>Network</h1>%s%s%s</section>" % (step_line(3), error_line(message), body)
    return page("Set up your box: network", body)


def done_page(box, claim_code: str, name: str) -> str:
    return page(
        "Your box is set up",
        "<section><h1>Your box is set up</h1>%s<p>Name <b id=box-name>%s</b>, box id <code>%s</code></p>"
        "<p>Claim code <code id=done-claim-code>%s</code> (to enrol the box in a fleet; single use)</p>"
        "<p>Designers seal jobs for this box to its key <code id=box-key>%s</code> (send them this line)</p>"
        "<details id=key-details><summary>details</summary><p>The key above holds two public keys:</p>"
        "<p>Signing key (Ed25519) <code>%s</code></p><p>Sealing key (X25519) <code>%s</code></p></details>"
        "<p><a id=to-dashboard href=/>Go to the dashboard</a></p></section>"
        % (step_line(4), escape(name), escape(box.box_id), escape(claim_code), escape(box.recipient),
           box.signing_public.hex(), box.sealing_public.hex()),
    )  # fmt: skip
