"""The box's admin account, login sessions and the login throttle. No default password exists: the account is
created in the setup wizard. Passwords are hashed with scrypt."""

import hashlib
import hmac
import secrets
import time

SCRYPT = {"n": 2**14, "r": 8, "p": 1, "maxmem": 64 * 1024 * 1024, "dklen": 32}
MIN_PASSWORD = 10
SESSION_SECONDS = 12 * 3600
API_KEY_NAME_CHARS = 40
LAST_USED_RESOLUTION_SECONDS = 60.0  # "last used" is rewritten at most once a minute per key
FREE_ATTEMPTS = 5
FIRST_LOCKOUT_SECONDS = 30
MAX_LOCKOUT_SECONDS = 3600


def hash_password(password: str, salt: bytes | None = None) -> str:
    salt = salt or secrets.token_bytes(16)
    digest = hashlib.scrypt(password.encode(), salt=salt, **SCRYPT)
    return "scrypt$%s$%s" % (salt.hex(), digest.hex())


def check_password(password: str, stored: str) -> bool:
    try:
        scheme, salt, digest = stored.split("$")
    except ValueError:
        return False
    if scheme != "scrypt":
        return False
    candidate = hashlib.scrypt(password.encode(), salt=bytes.fromhex(salt), **SCRYPT)
    return hmac.compare_digest(candidate.hex(), digest)


def password_problem(password: str, confirmation: str):
    if len(password) < MIN_PASSWORD:
        return "the password needs at least %d characters" % MIN_PASSWORD
    if password != confirmation:
        return "the two passwords differ"
    return None


KEY_ID_CHARS = 12


def _digest(key: str) -> str:
    return hashlib.sha256(key.encode()).hexdigest()


def api_key_name(name: str) -> str:
    """The name an owner gives a key, tidied: one line, at most API_KEY_NAME_CHARS; raises ValueError if empty."""
    name = " ".join(str(name).split())[:API_KEY_NAME_CHARS]
    if not name:
        raise ValueError("name the key after the slicer or app that uses it (for example PrusaSlicer)")
    return name


class Accounts:
    """Kept in the store's database: tables `admin` (one row) and `sessions`."""

    def __init__(self, store) -> None:
        self.db = store.db
        if "admin" not in self.db.table_names():
            self.db["admin"].create({"id": int, "password": str, "box_name": str, "created_at": float}, pk="id")
        if "api_keys" not in self.db.table_names():
            self.db["api_keys"].create({"digest": str, "created_at": float}, pk="digest")
        for column, kind in (("name", str), ("last_used", float)):  # added with named keys; older boxes lack them
            if column not in self.db["api_keys"].columns_dict:
                self.db["api_keys"].add_column(column, kind)
        if "sessions" not in self.db.table_names():
            self.db["sessions"].create({"token": str, "csrf": str, "expires": float}, pk="token")

    def has_admin(self) -> bool:
        return self.db["admin"].count > 0

    def create_admin(self, password: str, box_name: str, replace: bool = False) -> None:
        """Make the admin account; `replace` (setup mode from the button) replaces it and ends every session."""
        with self.db.conn:
            if self.db["admin"].count and not replace:
                raise PermissionError("the admin account exists; setup is finished")
            self.db.execute("DELETE FROM sessions")
            self.db["admin"].upsert({"id": 1, "password": hash_password(password), "box_name": box_name,
                                     "created_at": time.time()}, pk="id")  # fmt: skip

    def factory_reset(self) -> None:
        """Forget the admin account, every session and every API key (the box keeps its identity and jobs)."""
        with self.db.conn:
            for table in ("admin", "sessions", "api_keys"):
                self.db.execute("DELETE FROM %s" % table)

    def box_name(self) -> str:
        return self.db["admin"].get(1)["box_name"] if self.has_admin() else ""

    def verify(self, password: str) -> bool:
        return self.has_admin() and check_password(password, self.db["admin"].get(1)["password"])

    def new_api_key(self, name: str) -> str:
        """A new named key (one per slicer or app) for the OctoPrint API; only its hash is kept, the key is
        shown once."""
        name = api_key_name(name)
        key = secrets.token_urlsafe(24)
        record = {"digest": _digest(key), "created_at": time.time(), "name": name, "last_used": None}
        with self.db.conn:
            self.db["api_keys"].insert(record)
        return key

    def api_keys(self) -> list:
        """Every key as {id, name, created_at, last_used}, newest first; `id` names it for revoking and is no
        use to anyone who wants the key."""
        rows = self.db["api_keys"].rows_where(order_by="created_at desc")
        return [{"id": row["digest"][:KEY_ID_CHARS], "name": row["name"] or "unnamed", "created_at": row["created_at"],
                 "last_used": row["last_used"]} for row in rows]  # fmt: skip

    def revoke_api_key(self, key_id: str) -> str:
        """Forget the key with that id; returns its name. Raises KeyError when no key has it."""
        if len(key_id) != KEY_ID_CHARS or any(c not in "0123456789abcdef" for c in key_id):
            raise KeyError(key_id)
        rows = list(self.db["api_keys"].rows_where("substr(digest, 1, ?) = ?", [KEY_ID_CHARS, key_id]))
        if not rows:
            raise KeyError(key_id)
        with self.db.conn:
            self.db.execute("DELETE FROM api_keys WHERE digest = ?", [rows[0]["digest"]])
        return rows[0]["name"] or "unnamed"

    def api_key_user(self, key: str, now=None):
        """The name of the key `key`, noting when it was used, or None when no such key exists."""
        if not key or len(key) > 200:
            return None
        digest = _digest(key)
        rows = list(self.db["api_keys"].rows_where("digest = ?", [digest]))
        if not rows:
            return None
        now = time.time() if now is None else now
        if (rows[0]["last_used"] or 0) < now - LAST_USED_RESOLUTION_SECONDS:
            with self.db.conn:
                self.db["api_keys"].update(digest, {"last_used": now})
        return rows[0]["name"] or "unnamed"

    def new_session(self) -> tuple:
        token, csrf = secrets.token_urlsafe(32), secrets.token_urlsafe(32)
        with self.db.conn:
            self.db.execute("DELETE FROM sessions WHERE expires < ?", [time.time()])
            self.db["sessions"].insert({"token": token, "csrf": csrf, "expires": time.time() + SESSION_SECONDS})
        return token, csrf

    def session_csrf(self, token: str):
        """The CSRF token of a live session, or None."""
        rows = list(self.db["sessions"].rows_where("token = ? AND expires > ?", [token, time.time()]))
        return rows[0]["csrf"] if rows else None

    def end_session(self, token: str) -> None:
        with self.db.conn:
            self.db.execute("DELETE FROM sessions WHERE token = ?", [token])


class LoginThrottle:
    """After FREE_ATTEMPTS wrong passwords from one address, refuse logins from it for a lockout that doubles."""

    def __init__(self, clock=time.monotonic) -> None:
        self._clock = clock
        self._failures = {}  # address -> (count, locked until)

    def wait_seconds(self, address: str) -> int:
        _, until = self._failures.get(address, (0, 0.0))
        return max(0, int(until - self._clock() + 0.999))

    def failed(self, address: str) -> None:
        count, _ = self._failures.get(address, (0, 0.0))
        count += 1
        until = 0.0
        if count >= FREE_ATTEMPTS:
            lockout = min(FIRST_LOCKOUT_SECONDS * 2 ** (count - FREE_ATTEMPTS), MAX_LOCKOUT_SECONDS)
            until = self._clock() + lockout
        self._failures[address] = (count, until)
        if len(self._failures) > 10_000:  # bounded: forget the oldest addresses
            self._failures.pop(next(iter(self._failures)))

    def succeeded(self, address: str) -> None:
        self._failures.pop(address, None)
