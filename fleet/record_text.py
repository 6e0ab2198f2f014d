"""Telemetry records as an operator reads them: units spelled out, and a record cut only where `…` says so."""

from wire import topics

SHORT_WIDTH = 160


def _degrees(pair) -> str:
    if not pair or pair[0] is None:
        return "-"
    current, target = pair
    return "%.1f/%s °C" % (current / 10, "-" if target is None else "%.1f" % (target / 10))


def _clock(seconds) -> str:
    seconds = int(seconds)
    return "%d:%02d:%02d" % (seconds // 3600, seconds // 60 % 60, seconds % 60)


def describe(body: dict) -> str:
    """One line for a telemetry or event body; temperatures in °C (the record holds tenths)."""
    kind = body.get("type")
    if kind == "sample":
        text = "%s, hotend %s, bed %s" % (body.get("printer"), _degrees(body.get("hotend")), _degrees(body.get("bed")))
        job = body.get("job")
        if job:
            text += ", job %s line %s of %s" % (job.get("number"), job.get("line"), job.get("lines"))
            if job.get("layer") is not None:
                text += ", layer %s" % job["layer"]
            if job.get("eta_s") is not None:
                text += ", %s left" % _clock(job["eta_s"])
        return text
    if kind == "job":
        text = "job %s (%s) %s at line %s" % (body.get("job"), body.get("job_id"), body.get("state"), body.get("line"))
        return text + (": " + body["reason"] if body.get("reason") else "")
    rest = {key: value for key, value in body.items() if key not in ("type", "prev")}
    return topics.encode(rest).decode()


def shorten(text: str, width: int = SHORT_WIDTH) -> str:
    """`text` whole when it fits, else cut at the last space before `width` with `…` (no word cut in half)."""
    if len(text) <= width:
        return text
    cut = text.rfind(" ", 0, width - 1)
    return text[: cut if cut > width // 2 else width - 1] + "…"
