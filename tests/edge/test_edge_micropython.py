"""The firmware's tests under the real MicroPython unix port with a Pico's heap (-X heapsize=160K)."""

import os
import subprocess

import pytest

from firmware_bridge import attestation
from tests.edge.harness import KEY
from tests.test_micropython_core import ROOT, micropython

# From .py sources the interpreter also compiles every module in this heap, which a board running the .mpy files
# (`make edge-check`, at the Pico's 160K) does not; 192K leaves that compiler its room.
HEAP = "192K"
MODULES = ["tests.edge.test_edge_bridge", "tests.edge.mp_vectors"]


def run_micropython(*args: str, timeout: float = 300) -> subprocess.CompletedProcess:
    return subprocess.run(
        [micropython(), "-X", "heapsize=" + HEAP, *args],
        cwd=ROOT,
        capture_output=True,
        text=True,
        timeout=timeout,
        env={**os.environ, "MICROPYPATH": ".frozen:."},  # .frozen: the port's own asyncio
    )


@pytest.mark.parametrize("modules", [MODULES, ["tests.edge.mp_asyncio"]], ids=["bridge", "asyncio-shell"])
def test_bridge_tests_pass_under_micropython_with_a_pico_heap(modules):
    # The asyncio shell runs in a heap of its own, as on the board, where nothing else ran before it.
    result = run_micropython("tests/micropython_runner.py", *modules)
    summary = result.stdout.strip().splitlines()[-1] if result.stdout.strip() else ""
    assert result.returncode == 0, result.stdout + result.stderr
    assert summary.endswith(" 0 failed") and int(summary.split()[0]) >= (20 if modules == MODULES else 1), summary


@pytest.fixture(scope="module")
def signed_on_micropython():
    """Attestations the bridge signed under MicroPython around a 2,000-line job."""
    result = run_micropython("tests/edge/mp_attest_dump.py", "2000")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    return attestation.parse(lines["START"]), attestation.parse(lines["END"]), lines["OUTCOME"]


def test_attestations_from_micropython_verify_with_the_network_key(signed_on_micropython):
    start, end, outcome = signed_on_micropython
    assert outcome == "done 2000 2000"
    attestation.verify(start, KEY, b"\x11" * 16)
    attestation.verify(end, KEY, b"\x22" * 16, last=(start.boot, start.seq))
    evidence = attestation.job_evidence(start, end)
    assert (evidence["lines"], evidence["e_um"], evidence["layers"]) == (2000, (2000 - 2 - 199) * 50, 199)


def test_replayed_altered_or_other_challenge_attestations_fail(signed_on_micropython):
    _start, end, _outcome = signed_on_micropython
    with pytest.raises(attestation.AttestationInvalid, match="replay"):
        attestation.verify(end, KEY, b"\x22" * 16, last=(end.boot, end.seq))
    with pytest.raises(attestation.AttestationInvalid, match="another challenge"):
        attestation.verify(end, KEY, b"\x11" * 16)
    altered = attestation.parse(end.line.replace("LINES:2000", "LINES:2001"))
    with pytest.raises(attestation.AttestationInvalid, match="MAC"):
        attestation.verify(altered, KEY, b"\x22" * 16)
    with pytest.raises(attestation.AttestationInvalid, match="not the one this key"):
        attestation.verify(end, bytes(32), b"\x22" * 16)


def test_the_asyncio_shell_on_micropython_streams_attests_what_it_forwarded():
    result = run_micropython("tests/edge/mp_asyncio.py", "1500")
    assert result.returncode == 0, result.stdout + result.stderr
    lines = dict(line.split(" ", 1) for line in result.stdout.splitlines())
    assert lines["ASYNC"] == "outcome=done lines=1500 executed=1500 digest=ok"
    end = attestation.parse(lines["END"])
    attestation.verify(end, KEY, bytes([0x5A]) * 16)
    assert (end.boot, end.seq, end.lines) == (2, 1, 1500)


def test_the_heap_stays_bounded_over_100000_forwarded_lines():
    result = run_micropython("tests/edge/mp_heap.py", "100000", timeout=600)
    assert result.returncode == 0, result.stdout + result.stderr
    report = dict(word.split("=") for word in result.stdout.split()[1:])
    print("gc.mem_free() start %s end %s over %s lines" % (report["start"], report["end"], report["lines"]))
    assert int(report["lines"]) == int(report["executed"]) == 101000
    assert int(report["end"]) >= int(report["start"]) - 4096, report
