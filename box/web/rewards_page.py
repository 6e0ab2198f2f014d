"""The dashboard's proof-of-print section: the receipts this box signed for its prints, and what the network's
trusted verifiers report back (earned, pending, paid, with the claim transactions). The box reads this from its
retained `rewards` topic only; it never talks to a chain."""

import json
from html import escape

from wire.receipt import format_amount as tokens

SHOWN = 20


def _receipt_rows(jobs: list) -> str:
    rows = []
    for job in jobs:
        try:
            noted = json.loads(job.get("receipt") or "{}")
        except ValueError:
            continue
        if noted:
            rows.append("<tr><td>%d</td><td>%s</td><td>%d</td><td><code>%s</code></td></tr>" % (
                job["id"], escape(job.get("state") or ""), int(noted.get("seq", 0)),
                escape(str(noted.get("hash", ""))[:16]) + "…"))  # fmt: skip
    return "".join(rows[-SHOWN:][::-1]) or "<tr><td colspan=4>No receipts yet.</td></tr>"


def section(jobs: list, reports: list) -> str:
    """HTML of the receipts and rewards section; `reports`: Store.rewards() (each verifier's latest report)."""
    parts = ["<section><h2>Proof of print</h2><table><thead><tr><th>job</th><th>state</th><th>receipt</th>"
             "<th>hash</th></tr></thead><tbody id=receipts>%s</tbody></table>" % _receipt_rows(jobs)]  # fmt: skip
    if not reports:
        parts.append("<p id=rewards class=note>No rewards report from the network yet.</p>")
    for entry in reports:
        report = entry["report"]
        states = {"accepted": 0, "refused": 0, "pending": 0}
        for reported in report["receipts"]:
            states[reported["state"]] = states.get(reported["state"], 0) + 1
        parts.append(
            "<div id=rewards><p>Earned <strong id=earned>%s</strong>, paid <strong id=paid>%s</strong>, "
            "pending <strong id=pending>%s</strong> (%d receipts waiting for their telemetry), as verifier %s "
            "reported (report %d).</p>" % (tokens(report["earned"]), tokens(report["paid"]),
                                           tokens(report["earned"] - report["paid"]), report["pending"],
                                           escape(entry["key_id"]), entry["seq"]))  # fmt: skip
        refused = [r for r in report["receipts"] if r["state"] == "refused"][-5:]
        if refused:
            parts.append("<ul id=refused>%s</ul>" % "".join(
                "<li>receipt %d refused: %s</li>" % (r["seq"], escape(r["reason"])) for r in refused))  # fmt: skip
        if report["transactions"]:
            parts.append("<table><thead><tr><th>claim transaction</th><th>paid</th></tr></thead><tbody "
                         "id=transactions>%s</tbody></table>" % "".join(
                             "<tr><td><code>%s</code></td><td>%s</td></tr>" % (escape(t["tx"]), tokens(t["amount"]))
                             for t in report["transactions"][-SHOWN:][::-1]))  # fmt: skip
        parts.append("</div>")
    parts.append("</section>")
    return "".join(parts)
