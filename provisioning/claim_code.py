"""The claim code: short, single use, expiring. Shown on the setup page and logged to the console, it proves
that whoever enrols the box with a fleet has seen the box (used by fleet enrolment)."""

import hmac
import json
import os
import secrets

ALPHABET = "ABCDEFGHJKLMNPQRSTUVWXYZ23456789"  # no 0/O, 1/I: read off a screen and typed
DEFAULT_LIFETIME = 24 * 3600


def _new_code() -> str:
    raw = "".join(secrets.choice(ALPHABET) for _ in range(8))
    return raw[:4] + "-" + raw[4:]


def normalise(code: str) -> str:
    compact = "".join(c for c in code.upper() if c.isalnum())
    return compact[:4] + "-" + compact[4:] if len(compact) == 8 else code


class ClaimCodes:
    """The box's current claim code, in a JSON file (0600) in its data directory."""

    def __init__(self, path: str) -> None:
        self.path = path

    def _load(self):
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
            return str(data["code"]), float(data["expires"])
        except (OSError, ValueError, KeyError, TypeError):
            return None

    def _save(self, code: str, expires: float) -> None:
        temporary = self.path + ".new"
        descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(descriptor, "w", encoding="utf-8") as handle:
            json.dump({"code": code, "expires": expires}, handle)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def current(self, now: float, lifetime: float = DEFAULT_LIFETIME) -> tuple:
        """(code, expires): the valid code, or a new one when there is none or it expired."""
        loaded = self._load()
        if loaded is not None and loaded[1] > now:
            return loaded
        code, expires = _new_code(), now + lifetime
        self._save(code, expires)
        return code, expires

    def consume(self, code: str, now: float) -> bool:
        """True once for the valid code; it is then gone (the next `current` makes a new one)."""
        loaded = self._load()
        if loaded is None or loaded[1] <= now or not hmac.compare_digest(normalise(code), loaded[0]):
            return False
        os.unlink(self.path)
        return True
