"""The designer and network keys a box trusts, and the keys it has revoked (a JSON file, replaced atomically)."""

import json
import os

from secure_print import certificate as certificates
from secure_print.errors import HeaderError, UntrustedKeyError
from wire import keytext
from wire.keytext import KeyTextError


class TrustStoreError(ValueError):
    """The trust file is damaged, or a change to it makes no sense."""


class TrustStore:
    """Pinned designer keys, pinned network keys (which certify designers) and revoked keys."""

    def __init__(self, path: str) -> None:
        self.path = path
        self.entries = []  # {"key": key text, "name": str}
        self.revoked = []  # key texts
        self._load()

    def _load(self) -> None:
        try:
            with open(self.path, encoding="utf-8") as handle:
                data = json.load(handle)
        except FileNotFoundError:
            return
        except (OSError, ValueError) as exc:
            raise TrustStoreError("the trust file %s is unreadable: %s" % (self.path, exc)) from exc
        try:
            for entry in data["trusted"]:
                keytext.decode(entry["key"], keytext.DESIGNER, keytext.NETWORK)
                self.entries.append({"key": entry["key"], "name": str(entry.get("name", ""))})
            for key in data["revoked"]:
                keytext.decode(key, keytext.DESIGNER, keytext.NETWORK)
                self.revoked.append(key)
        except (KeyError, TypeError, KeyTextError) as exc:
            raise TrustStoreError("the trust file %s is damaged: %s" % (self.path, exc)) from exc

    def _save(self) -> None:
        temporary = self.path + ".new"
        with open(temporary, "w", encoding="utf-8") as handle:
            json.dump({"trusted": self.entries, "revoked": self.revoked}, handle, indent=1)
            handle.flush()
            os.fsync(handle.fileno())
        os.replace(temporary, self.path)

    def add(self, key: str, name: str = "") -> str:
        kind, raw = keytext.decode(key, keytext.DESIGNER, keytext.NETWORK)
        text = keytext.encode(kind, raw)
        if text in self.revoked:
            raise TrustStoreError("that key is revoked on this box; it cannot be trusted again")
        if any(entry["key"] == text for entry in self.entries):
            raise TrustStoreError("that key is already trusted")
        self.entries.append({"key": text, "name": name})
        self._save()
        return text

    def remove(self, key: str) -> None:
        kind, raw = keytext.decode(key, keytext.DESIGNER, keytext.NETWORK)
        text = keytext.encode(kind, raw)
        kept = [entry for entry in self.entries if entry["key"] != text]
        if len(kept) == len(self.entries):
            raise TrustStoreError("that key is not trusted on this box")
        self.entries = kept
        self._save()

    def revoke(self, key: str) -> None:
        """Refuse this key from now on, pinned or certified; also unpins it."""
        kind, raw = keytext.decode(key, keytext.DESIGNER, keytext.NETWORK)
        text = keytext.encode(kind, raw)
        self.entries = [entry for entry in self.entries if entry["key"] != text]
        if text not in self.revoked:
            self.revoked.append(text)
        self._save()

    def _has(self, kind: str, raw: bytes, collection) -> bool:
        text = keytext.encode(kind, raw)
        return any((entry["key"] if isinstance(entry, dict) else entry) == text for entry in collection)

    def check_designer(self, designer_key: bytes, certificate_bytes: bytes, now: float, also_trusted=()) -> str:
        """Return who vouches for `designer_key` ("pinned", or the certified name); raise UntrustedKeyError."""
        described = keytext.encode(keytext.DESIGNER, designer_key)
        if self._has(keytext.DESIGNER, designer_key, self.revoked):
            raise UntrustedKeyError("the designer key %s is revoked on this box" % described)
        if designer_key in also_trusted or self._has(keytext.DESIGNER, designer_key, self.entries):
            return "pinned"
        if not certificate_bytes:
            raise UntrustedKeyError(
                "the designer key %s is not trusted on this box (add it with `mipai-box trust add`)" % described
            )
        try:
            certificate = certificates.parse(certificate_bytes)
        except HeaderError as exc:
            raise UntrustedKeyError("the designer key %s is not trusted: %s" % (described, exc)) from exc
        if certificate.designer_key != designer_key:
            raise UntrustedKeyError("the job's certificate is for another designer key")
        if self._has(keytext.NETWORK, certificate.network_key, self.revoked):
            raise UntrustedKeyError("the network key that certified this designer is revoked on this box")
        if not self._has(keytext.NETWORK, certificate.network_key, self.entries):
            raise UntrustedKeyError(
                "the designer key %s is certified by network key %s, which this box does not trust"
                % (described, keytext.encode(keytext.NETWORK, certificate.network_key))
            )
        certificate.verify()
        if not certificate.valid_at(now):
            raise UntrustedKeyError("the certificate of designer %r is expired or not yet valid" % certificate.name)
        return "certified as %r" % certificate.name
