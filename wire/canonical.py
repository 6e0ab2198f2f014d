"""Canonical JSON: the one byte encoding of structured data that is signed, hashed or sealed.

Keys sorted, no white space, UTF-8, integers only (no floating point: two encoders never disagree on a float).
A reader parses and re-encodes: input that is not already canonical is refused, so one value has one encoding.
"""

import json

MAX_NESTING = 16


class CanonicalError(ValueError):
    """Bytes that are not the canonical JSON of a value, or a value that has none."""


def _check(value, depth: int) -> None:
    # Leaves are checked inline (by exact type, the common case) so a record of a few dozen values costs a few
    # calls, not one per value: the fleet checks every record it receives.
    if depth > MAX_NESTING:
        raise CanonicalError("nested deeper than %d levels" % MAX_NESTING)
    kind = type(value)
    if kind is dict:
        items = value.items()
        if depth >= MAX_NESTING:  # this object is level depth + 1 (docs/envelope.md), empty or not
            raise CanonicalError("nested deeper than %d levels" % MAX_NESTING)
        for key, item in items:
            if type(key) is not str and not isinstance(key, str):
                raise CanonicalError("object keys must be strings")
            leaf = type(item)
            if leaf is not str and leaf is not int and leaf is not bool and item is not None:
                _check(item, depth + 1)
        return
    if kind is list:
        if depth >= MAX_NESTING:
            raise CanonicalError("nested deeper than %d levels" % MAX_NESTING)
        for item in value:
            leaf = type(item)
            if leaf is not str and leaf is not int and leaf is not bool and item is not None:
                _check(item, depth + 1)
        return
    if value is None or isinstance(value, bool | int | str):
        return
    if isinstance(value, float):
        raise CanonicalError("floating-point numbers have no canonical form; use integers")
    if isinstance(value, list):
        for item in value:
            _check(item, depth + 1)
        return
    if isinstance(value, dict):
        for key, item in value.items():
            if not isinstance(key, str):
                raise CanonicalError("object keys must be strings")
            _check(item, depth + 1)
        return
    raise CanonicalError("%s values have no canonical JSON form" % type(value).__name__)


def encode(value) -> bytes:
    """The canonical bytes of `value` (None, bool, int, str, list, dict with str keys)."""
    _check(value, 0)
    return json.dumps(value, sort_keys=True, separators=(",", ":"), ensure_ascii=False).encode()


def decode(data: bytes):
    """Parse canonical JSON; anything else (other spacing, key order, floats, duplicates) raises CanonicalError."""
    try:
        text = data.decode("utf-8")
        value = json.loads(text, parse_float=_refuse_float, parse_constant=_refuse_float, object_pairs_hook=_no_dupes)
    except UnicodeDecodeError as exc:
        raise CanonicalError("not UTF-8") from exc
    except RecursionError as exc:
        raise CanonicalError("nested too deeply") from exc
    except ValueError as exc:
        raise CanonicalError("not JSON: %s" % exc) from exc
    if encode(value) != data:
        raise CanonicalError("JSON is not in canonical form")
    return value


def _refuse_float(text: str):
    raise CanonicalError("floating-point number %s" % text)


def _no_dupes(pairs):
    result = dict(pairs)
    if len(result) != len(pairs):
        raise CanonicalError("duplicate object key")
    return result
