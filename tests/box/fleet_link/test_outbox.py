"""The telemetry outbox keeps every record until acknowledged, across a killed process, continues its chain,
and caps itself by its stated policy: samples thinned first, events never, every removal recorded."""

import signal
import subprocess
import sys
import textwrap

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from box.fleet_link.outbox import EVENT, SAMPLE, Outbox
from wire.canonical import CanonicalError
from wire.record_chain import ChainVerifier

KEY_BYTES = bytes(range(32))
KEY = Ed25519PrivateKey.from_private_bytes(KEY_BYTES)
PUBLIC = KEY.public_key().public_bytes_raw()


def test_records_wait_until_acknowledged_and_the_chain_verifies(tmp_path):
    outbox = Outbox(str(tmp_path / "outbox.sqlite"), KEY, "box-1")
    for n in range(5):
        outbox.append({"type": "temperature", "hotend": 200 + n}, 1000.0 + n)
    verifier = ChainVerifier(PUBLIC, "box-1", "telemetry")
    pending = outbox.pending()
    assert [seq for seq, _, _ in pending] == [1, 2, 3, 4, 5]
    for seq, _created, signed in pending[:3]:
        assert verifier.accept(signed) == "ok"
        outbox.acknowledged(seq)
    assert [seq for seq, _, _ in outbox.pending()] == [4, 5]
    assert [verifier.accept(signed) for _, _, signed in outbox.pending()] == ["ok", "ok"]
    assert verifier.gaps() == []


def test_a_killed_process_loses_nothing_and_the_chain_goes_on(tmp_path):
    path = str(tmp_path / "outbox.sqlite")
    script = textwrap.dedent(
        """
        import os, signal, sys
        from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey
        from box.fleet_link.outbox import Outbox
        outbox = Outbox(sys.argv[1], Ed25519PrivateKey.from_private_bytes(bytes(range(32))), "box-1")
        for n in range(1, 1000):
            outbox.append({"type": "temperature", "n": n}, 1000.0 + n)
            if n == 40:
                os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    killed = subprocess.run([sys.executable, "-c", script, path], capture_output=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    outbox = Outbox(path, KEY, "box-1")
    outbox.append({"type": "job", "event": "started"}, 2000.0, EVENT)
    records = [signed for _, _, signed in outbox.pending(1000)]
    assert [signed["seq"] for signed in records] == list(range(1, 42))
    verifier = ChainVerifier(PUBLIC, "box-1", "telemetry")
    assert all(verifier.accept(signed) == "ok" for signed in records)


def test_the_cap_thins_samples_first_keeps_events_and_says_what_it_removed(tmp_path):
    outbox = Outbox(str(tmp_path / "outbox.sqlite"), KEY, "box-1", max_records=10, max_age=3600)
    for n in range(1, 13):
        priority = EVENT if n in (3, 8) else SAMPLE
        outbox.append({"type": "job" if priority == EVENT else "temperature", "n": n}, 1000.0 + n, priority)
    removed = outbox.enforce_caps(1100.0)
    assert removed == [1, 4, 6]  # every other sample, oldest first, until the outbox fits with the note
    left = [signed for _, _, signed in outbox.pending(100)]
    assert {3, 8} <= {signed["seq"] for signed in left}
    note = left[-1]["body"]
    assert note["type"] == "outbox.thinned" and note["removed"] == removed
    assert outbox.count() == 10
    verifier = ChainVerifier(PUBLIC, "box-1", "telemetry")
    for signed in left:
        verifier.accept(signed)
    assert verifier.gaps() == removed  # the gaps are exactly what the box said it removed

    aged = outbox.enforce_caps(1000.0 + 3600 + 100)  # now every sample is too old; events stay
    assert aged and all(seq not in (3, 8) for seq in aged)
    kinds = [signed["body"]["type"] for _, _, signed in outbox.pending(100)]
    assert set(kinds) == {"job", "outbox.thinned"}


def test_records_stored_together_are_all_kept_or_none(tmp_path):
    outbox = Outbox(str(tmp_path / "outbox.sqlite"), KEY, "box-1")
    outbox.append_many([{"type": "job", "n": n} for n in range(3)], 1000.0, EVENT)
    with pytest.raises(CanonicalError):
        outbox.append_many([{"type": "job", "n": 3}, {"type": "job", "bad": 1.5}], 1001.0, EVENT)
    assert outbox.count() == 3  # the good record before the bad one was not kept either
    outbox.append({"type": "job", "n": 3}, 1002.0, EVENT)
    verifier = ChainVerifier(PUBLIC, "box-1", "telemetry")
    assert [verifier.accept(signed) for _, _, signed in outbox.pending()] == ["ok"] * 4
    assert verifier.gaps() == []
