"""The job store survives a killed process, moves jobs only along the state table, and the spool keeps only
sealed jobs under names of its own choosing."""

import io
import os
import signal
import subprocess
import sys
import textwrap
import time

import pytest

from box.jobs import job_states
from box.jobs.spool import Spool, SpoolError, title_from
from box.jobs.store import Store
from provisioning import identity
from secure_print import opener
from secure_print.trust import TrustStore
from tests.secure_print import boxkeys


def test_jobs_move_only_along_the_state_table(tmp_path):
    store = Store(str(tmp_path / "box.sqlite"))
    number = store.add_job("ab" * 16, "vase", "/spool/x.mipjob")
    assert store.next_queued()["id"] == number
    store.move(number, job_states.VERIFYING)
    store.move(number, job_states.PRINTING, print_number=1)
    store.move(number, job_states.PAUSED)
    store.move(number, job_states.PRINTING)
    with pytest.raises(job_states.IllegalTransition, match="a printing job cannot become queued"):
        store.move(number, job_states.QUEUED)
    store.move(number, job_states.DONE, "all lines confirmed")
    with pytest.raises(job_states.IllegalTransition, match="it has finished"):
        store.move(number, job_states.PRINTING)
    assert store.job(number)["state"] == job_states.DONE
    assert store.next_queued() is None
    assert [e["message"] for e in store.recent_events(2)] == [
        "job 1: printing -> done: all lines confirmed",
        "job 1: paused -> printing",
    ]


def test_a_held_job_waits_until_the_owner_starts_or_cancels_it(tmp_path):
    store = Store(str(tmp_path / "box.sqlite"))
    held = store.add_job("ab" * 16, "plain upload", "/spool/a.mipjob", held=True)
    assert store.job(held)["state"] == job_states.HELD
    assert store.next_queued() is None  # the printer's owner leaves it be
    for action in ("pause", "resume"):
        with pytest.raises(job_states.IllegalTransition, match="job 1 is held: nothing to %s" % action):
            store.request(held, action)
    assert store.request(held, "start") == "queued to print"
    assert store.next_queued()["id"] == held
    with pytest.raises(job_states.IllegalTransition, match="job 1 is queued: nothing to start"):
        store.request(held, "start")
    other = store.add_job("cd" * 16, "another", "/spool/b.mipjob", held=True)
    assert store.request(other, "cancel") == "cancelled"
    assert store.job(other)["state"] == job_states.CANCELLED
    store.move(held, job_states.VERIFYING)
    with pytest.raises(job_states.IllegalTransition, match="job 1 is verifying: nothing to start"):
        store.request(held, "start")
    assert store.take_request(held) == ""  # no stray request left for the printer's owner


def test_every_state_reaches_a_finished_state():
    for state in job_states.TRANSITIONS:
        seen, frontier = set(), {state}
        while frontier:
            current = frontier.pop()
            seen.add(current)
            frontier |= set(job_states.TRANSITIONS[current]) - seen
        assert seen & job_states.FINISHED, state


def test_a_killed_process_leaves_its_print_interrupted_at_the_last_recorded_line(tmp_path):
    path = str(tmp_path / "box.sqlite")
    script = textwrap.dedent(
        """
        import os, signal, sys
        from box.jobs.store import Store
        store = Store(sys.argv[1])
        number = store.add_job("cd" * 16, "vase", "/spool/y.mipjob")
        store.move(number, "verifying")
        store.move(number, "printing", print_number=1)
        for line in range(1, 100000):
            store.record_progress(number, line, line + 10)
            if line == 250:
                os.kill(os.getpid(), signal.SIGKILL)
        """
    )
    killed = subprocess.run([sys.executable, "-c", script, path], capture_output=True, text=True, timeout=60)
    assert killed.returncode == -signal.SIGKILL
    store = Store(path)
    recovered = store.recover()
    assert [(job["state"], job["lines_acknowledged"]) for job in recovered] == [("interrupted", 250)]
    assert "after source line 260" in recovered[0]["reason"]
    assert store.recover() == []  # an interrupted job stays interrupted: never restarted silently
    assert store.next_queued() is None


def test_the_event_log_is_bounded(tmp_path, monkeypatch):
    monkeypatch.setattr("box.jobs.store.MAX_EVENTS", 20)
    store = Store(str(tmp_path / "box.sqlite"))
    for index in range(50):
        store.log("test", "event %d" % index)
    assert store.db["events"].count == 20
    assert store.recent_events(1)[0]["message"] == "event 49"


@pytest.fixture
def spool(tmp_path):
    return Spool(str(tmp_path / "spool"), max_bytes=1024 * 1024)


def _listing(root) -> set:
    return {os.path.relpath(os.path.join(folder, name), root) for folder, _, names in os.walk(root) for name in names}


def test_a_sealed_upload_is_stored_under_its_job_id(tmp_path, spool):
    with open(os.path.join(boxkeys.VECTORS, "good_two_boxes.mipjob"), "rb") as handle:
        data = handle.read()
    job_id, path = spool.add_sealed(io.BytesIO(data))
    assert path == os.path.join(spool.directory, job_id + ".mipjob")
    with open(path, "rb") as handle:
        assert handle.read() == data
    assert oct(os.stat(path).st_mode & 0o777) == "0o600"
    assert spool.add_sealed(io.BytesIO(data)) == (job_id, path)  # the same job again: kept once
    header_end = len(data) - 40
    altered = data[:header_end] + bytes(40)
    with pytest.raises(SpoolError, match="another job with the id"):
        spool.add_sealed(io.BytesIO(altered))
    assert _listing(tmp_path) == {os.path.join("spool", job_id + ".mipjob")}


@pytest.mark.parametrize(
    ("data", "problem"),
    [
        (b"G28\nG1 X10\n", "not a sealed job"),
        (b"", "not a sealed job"),
        (None, "incomplete or has extra bytes"),
        (b"MIPJOB" + b"\x00" * (2 * 1024 * 1024), "larger than the spool's limit"),
    ],
)
def test_bad_uploads_leave_nothing_behind(tmp_path, spool, data, problem):
    if data is None:
        with open(os.path.join(boxkeys.VECTORS, "good.mipjob"), "rb") as handle:
            data = handle.read()[:-100]
    with pytest.raises(SpoolError, match=problem):
        spool.add_sealed(io.BytesIO(data))
    assert _listing(tmp_path) == set()


@pytest.mark.parametrize(
    ("name", "title"),
    [
        ("../../etc/passwd", "passwd"),
        ("C:\\Users\\me\\part.gcode", "part.gcode"),
        ("/abs/path/vase.gcode", "vase.gcode"),
        ("bad\x00name\n.gcode", "badname.gcode"),
        ("..", ".."),
        ("", "untitled"),
    ],
)
def test_uploaded_file_names_become_titles_never_paths(name, title):
    assert title_from(name) == title


def test_the_owners_gcode_is_sealed_on_arrival(tmp_path, spool):
    box = identity.load_or_create(str(tmp_path / "data"))
    gcode = b"G28\n" + b"".join(b"G1 X%d.5 Y7 E%d\n" % (i % 200, i) for i in range(5000))
    job_id, path = spool.add_own_gcode(io.BytesIO(gcode), "../../tricky name.gcode", box)
    with open(path, "rb") as handle:
        stored = handle.read()
    assert b"G1 X" not in stored and stored.startswith(b"MIPJOB")
    trust = TrustStore(str(tmp_path / "trust.json"))
    with open(path, "rb") as handle:
        job = opener.open_job(handle, box.sealing, box.box_id, trust, time.time(), {box.signing_public})
        assert job.license.title == "tricky name.gcode" and job.job_id == job_id
        opener.verify_payload(job, handle)
    too_big = Spool(str(tmp_path / "small"), max_bytes=1000)
    with pytest.raises(SpoolError, match="larger than the spool's limit"):
        too_big.add_own_gcode(io.BytesIO(gcode), "big.gcode", box)
    assert os.listdir(str(tmp_path / "small")) == []


def test_binary_junk_is_not_taken_for_the_owners_gcode(tmp_path, spool):
    box = identity.load_or_create(str(tmp_path / "data"))
    for junk, problem in (
        (b"\x7fELF\x02\x01\x01" + bytes(range(256)) * 64, "control characters"),
        (b"G28\nG1 X1 Y1" + b" Y1" * 40 + b"\n", "line 2: command is"),
    ):
        with pytest.raises(SpoolError, match="not G-code a printer accepts") as refused:
            spool.add_own_gcode(io.BytesIO(junk), "junk.gcode", box)
        assert problem in str(refused.value)
    assert os.listdir(spool.directory) == []
