"""The box side of the test vectors: the vector box's keys and a trust store that pins the vector designer."""

import json
import os

from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from secure_print import errors, opener
from secure_print.trust import TrustStore

VECTORS = os.path.join(os.path.dirname(os.path.dirname(os.path.abspath(__file__))), "vectors", "sealed-job")

with open(os.path.join(VECTORS, "keys.json")) as _handle:
    KEYS = json.load(_handle)

BOX_SEALING = X25519PrivateKey.from_private_bytes(bytes.fromhex(KEYS["box_x25519_secret"]))
BOX_ID = KEYS["box_id"]
NOW = KEYS["now"]


def trust_store(directory) -> TrustStore:
    store = TrustStore(os.path.join(str(directory), "trust.json"))
    store.add(KEYS["designer"], "vector designer")
    return store


def verify(handle, trust, now=NOW) -> opener.OpenedJob:
    """Both checks a box runs before printing; raises a SealedJobError subclass."""
    job = opener.open_job(handle, BOX_SEALING, BOX_ID, trust, now)
    opener.verify_payload(job, handle)
    return job


def outcome(handle, trust, now=NOW) -> str:
    """'ok' or the name of the SealedJobError class that refused the job."""
    try:
        verify(handle, trust, now)
    except errors.SealedJobError as exc:
        return type(exc).__name__
    return "ok"


_CACHED = {}


def trust_store_cached(directory) -> TrustStore:
    """One store per directory: hypothesis calls a test many times with the same temporary directory."""
    key = str(directory)
    if key not in _CACHED:
        _CACHED[key] = trust_store(directory)
    return _CACHED[key]
