"""What each signed fleet command does on the box, once the gate (chain_client.commands) has let it through.

A handler gets the command's `args` and returns (outcome, reason, data): succeeded or failed, a reason a person
can read, and a small JSON object. Bad arguments fail with a message naming the argument; nothing changes then.
`logs.fetch` sends the daemon's recent log lines and the event log, redacted. `job.submit` with a URL is slow:
it returns `accepted`, and its final result comes from the download thread."""

import base64
import binascii
import hashlib
import http.client
import io
import os
import re
import urllib.error
import urllib.parse
import urllib.request

from box import settings
from box.errors import BadInputError
from box.jobs import job_states
from box.jobs.spool import SpoolError, title_from
from wire.command_gate import ACCEPTED, FAILED, SUCCEEDED

MAX_INLINE_JOB = 192 * 1024  # base64 of it still fits in one MQTT payload (topics.MAX_PAYLOAD)
MAX_LOG_LINES = 500
DOWNLOAD_TIMEOUT = 30.0
# Settings the fleet may change at run time, each checked by the settings schema's own validator.
CONFIGURABLE = {
    "printer.material": settings.SCHEMA["printer"]["material"][1],
    "box.name": settings.SCHEMA["box"]["name"][1],
}
_SECRET = re.compile(r"(?i)\b(password|passwd|psk|token|secret|api[_-]?key|claim code)([\w-]*\s*[:=]\s*|\s+)(\S+)")


class CommandArgumentError(BadInputError):
    """An argument of a command is missing or wrong."""


def redact(line: str) -> str:
    """A log line with anything that looks like a secret replaced."""
    return _SECRET.sub(lambda m: m.group(1) + m.group(2) + "[redacted]", line)


def _job_number(args: dict) -> int:
    number = args.get("job")
    if not isinstance(number, int) or isinstance(number, bool) or number < 1:
        raise CommandArgumentError("job must be the box's job number (a whole number from 1)")
    return number


def _sha256(args: dict) -> str:
    digest = args.get("sha256")
    if not isinstance(digest, str) or not re.fullmatch(r"[0-9a-f]{64}", digest):
        raise CommandArgumentError("sha256 must be the job file's SHA-256 in 64 lower-case hex digits")
    return digest


class CommandContext:
    """What handlers may touch: the agent's store connection, the spool, the printer owner, and the hooks for
    what the fleet agent itself does (identify, reboot)."""

    def __init__(self, store, spool, worker, identify, reboot, log_lines=None) -> None:
        self.store = store
        self.log_lines = log_lines or (lambda count: [])
        self.spool = spool
        self.worker = worker
        self.identify = identify
        self.reboot = reboot


def job_control(action: str):
    def handle(context: CommandContext, args: dict):
        number = _job_number(args)
        try:
            outcome = context.store.request(number, action)
        except (ValueError, job_states.IllegalTransition) as exc:
            return FAILED, str(exc), {}
        return SUCCEEDED, outcome, {"job": number}

    return handle


def queue_list(context: CommandContext, args: dict):
    rows = context.store.jobs()[-50:]
    jobs = [
        {"job": row["id"], "job_id": row["job_id"], "title": row["title"], "state": row["state"],
         "line": row["last_source_line"] or 0, "lines": row["source_lines"] or 0}
        for row in rows
    ]  # fmt: skip
    return SUCCEEDED, "%d jobs" % len(jobs), {"jobs": jobs}


def config_set(context: CommandContext, args: dict):
    values = args.get("values")
    if not isinstance(values, dict) or not values:
        raise CommandArgumentError('values must be an object of settings, such as {"printer.material": "PETG"}')
    checked, problems = apply_config(context.store, values)
    if problems:
        return FAILED, "; ".join(problems) + "; nothing was changed", {}
    return SUCCEEDED, "set %s" % ", ".join(sorted(checked)), {"values": checked}


def apply_config(store, values: dict) -> tuple:
    """Validate every value first; store them only when all are good. Returns (stored values, problems)."""
    checked, problems = {}, []
    for key, value in values.items():
        check = CONFIGURABLE.get(key)
        if check is None:
            problems.append("%s cannot be set remotely (settable: %s)" % (str(key)[:64], ", ".join(CONFIGURABLE)))
            continue
        try:
            checked[key] = check(value)
        except ValueError as exc:
            problems.append("%s %s" % (key, exc))
    if problems:
        return {}, problems
    for key, value in checked.items():
        store.set_setting(key, value)
    return checked, []


def reported_config(store) -> dict:
    return {key: store.get_setting(key, "") for key in CONFIGURABLE}


def logs_fetch(context: CommandContext, args: dict):
    lines = args.get("lines", 100)
    if not isinstance(lines, int) or isinstance(lines, bool) or not 1 <= lines <= MAX_LOG_LINES:
        raise CommandArgumentError("lines must be a whole number from 1 to %d" % MAX_LOG_LINES)
    text = [redact(line) for line in context.log_lines(lines)]
    events = context.store.recent_events(lines)
    history = [redact("%d %s %s" % (int(row["at"]), row["kind"], row["message"])) for row in reversed(events)]
    return SUCCEEDED, "%d log lines, %d events" % (len(text), len(history)), {"lines": text, "events": history}


def identify(context: CommandContext, args: dict):
    context.identify()
    return SUCCEEDED, "the status LED blinks", {}


def reboot(context: CommandContext, args: dict):
    force = args.get("force", False)
    if not isinstance(force, bool):
        raise CommandArgumentError("force must be true or false")
    if context.worker.printing and not force:
        return FAILED, "a job is printing; send force=true to reboot anyway (the print is lost)", {}
    context.reboot()
    return SUCCEEDED, "rebooting", {}


def job_submit(context: CommandContext, args: dict):
    """Inline (`data`, base64) jobs are stored at once; `url` jobs are downloaded by `download_job` later."""
    digest = _sha256(args)
    if "data" in args:
        if not isinstance(args["data"], str):
            raise CommandArgumentError("data must be the sealed job in base64")
        try:
            raw = base64.b64decode(args["data"], validate=True)
        except (binascii.Error, ValueError):
            raise CommandArgumentError("data is not valid base64") from None
        if len(raw) > MAX_INLINE_JOB:
            raise CommandArgumentError("an inline job is at most %d bytes; send a url instead" % MAX_INLINE_JOB)
        if hashlib.sha256(raw).hexdigest() != digest:
            return FAILED, "the job's SHA-256 does not match sha256; nothing was stored", {}
        return queue_sealed(context, io.BytesIO(raw), args.get("title"))
    url = args.get("url")
    if not isinstance(url, str) or urllib.parse.urlsplit(url).scheme not in ("https", "http"):
        raise CommandArgumentError("job.submit needs data (base64) or url (https://, or http:// to a gateway)")
    return ACCEPTED, "downloading", {}


def queue_sealed(context: CommandContext, source, title) -> tuple:
    try:
        job_id, path = context.spool.add_sealed(source)
    except SpoolError as exc:
        return FAILED, "%s; nothing was stored" % exc, {}
    name = title if isinstance(title, str) and title else job_id
    number = context.store.add_job(job_id, title_from(name), path)
    return SUCCEEDED, "queued as job %d" % number, {"job": number, "job_id": job_id}


def download_job(context: CommandContext, args: dict) -> tuple:
    """Fetch `url` into the spool, resuming a partial download (HTTP Range), check its SHA-256, queue it. Runs
    in a thread of its own. The partial file is ciphertext, like everything in the spool."""
    digest = _sha256(args)
    partial = os.path.join(context.spool.directory, ".download-%s" % digest)
    try:
        _fetch(args["url"], partial, context.spool.max_bytes)
        with open(partial, "rb") as handle:
            actual = hashlib.file_digest(handle, "sha256").hexdigest()
        if actual != digest:
            os.unlink(partial)
            return FAILED, "the downloaded job's SHA-256 does not match sha256; nothing was stored", {}
        with open(partial, "rb") as handle:
            outcome = queue_sealed(context, handle, args.get("title"))
        os.unlink(partial)
        return outcome
    except (OSError, urllib.error.URLError, http.client.HTTPException, ValueError) as exc:
        return FAILED, "download failed: %s (the part fetched is kept; send the command again to resume)" % exc, {}


def _fetch(url: str, partial: str, max_bytes: int) -> None:
    have = os.path.getsize(partial) if os.path.exists(partial) else 0
    request = urllib.request.Request(url, headers={"Range": "bytes=%d-" % have} if have else {})
    with urllib.request.urlopen(request, timeout=DOWNLOAD_TIMEOUT) as response:
        mode = "ab" if have and response.status == 206 else "wb"
        size = have if mode == "ab" else 0
        length = response.headers.get("Content-Length")
        expected = size + int(length) if length and length.isdigit() else None
        with open(partial, mode) as out:
            os.chmod(partial, 0o600)
            while chunk := response.read(1 << 16):
                size += len(chunk)
                if size > max_bytes:
                    raise ValueError("the job is larger than the spool's limit of %d MB" % (max_bytes // 2**20))
                out.write(chunk)
        if expected is not None and size != expected:
            raise ValueError("the download was cut short (%d of %d bytes)" % (size, expected))


HANDLERS = {
    "job.submit": job_submit,
    "job.pause": job_control("pause"),
    "job.resume": job_control("resume"),
    "job.cancel": job_control("cancel"),
    "queue.list": queue_list,
    "config.set": config_set,
    "logs.fetch": logs_fetch,
    "identify": identify,
    "reboot": reboot,
}
