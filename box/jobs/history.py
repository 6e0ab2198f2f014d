"""The history of finished jobs as the owner reads it (duration, lines, material, reason), and whether a
finished job may be printed again. Pure functions over stored rows and license terms; no I/O but reading a
spooled job's header."""

from box.jobs import job_states
from box.jobs.store import print_facts
from secure_print import opener
from secure_print.errors import SealedJobError


def entry(row: dict) -> dict:
    """What the history shows of one finished job row."""
    facts = print_facts(row)
    started, ended = facts.get("started"), facts.get("ended")
    printed = bool(started) and bool(ended)
    lines = facts.get("lines", row.get("last_source_line") or 0) if facts else row.get("last_source_line") or 0
    return {
        "number": row["id"],
        "title": row.get("title") or "untitled",
        "state": row["state"],
        "queued_at": row.get("created_at"),
        "ended_at": ended if printed else row.get("updated_at"),
        "started_at": started if printed else None,
        "duration_seconds": ended - started if printed else None,
        "lines": lines,
        "source_lines": row.get("source_lines"),
        "material": facts.get("material") or "",
        "filament_mm": facts.get("filament_mm"),
        "reason": row.get("reason") or "",
        "license_id": facts.get("license_id") or "",
    }


def finished(rows: list) -> list:
    """The finished jobs of `rows`, newest first, as history entries."""
    newest_first = sorted(rows, key=lambda row: row["id"], reverse=True)
    return [entry(row) for row in newest_first if row["state"] in job_states.FINISHED]


def license_terms(spool_path: str, sealing_key):
    """The license sealed in a spooled job, opened with the box's X25519 key; None when the file is gone or
    cannot be opened (the print run would say why)."""
    try:
        with open(spool_path, "rb") as handle:
            header, _signature, _offset, _size = opener.read_header(handle)
        _file_key, terms = opener.unseal(header, sealing_key, "not sealed for this box")
    except (OSError, SealedJobError):
        return None
    return terms


def reprint_refusal(terms, prints_done: int, now: float) -> str:
    """Why a job with license `terms` cannot be printed again ("" when it can): gone, expired or used up."""
    if terms is None:
        return "the sealed job is no longer on the box"
    try:
        terms.check_time(now)
        terms.check_prints_left(prints_done)
    except SealedJobError as exc:
        return str(exc)
    return ""
