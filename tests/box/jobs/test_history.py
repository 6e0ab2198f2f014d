"""The history of finished jobs: what it shows of each (duration, lines, material, reason), printing a finished
job again only while its license allows, and deleting a finished job with its sealed file."""

import json
import os
import shutil

import pytest
from cryptography.hazmat.primitives.asymmetric.x25519 import X25519PrivateKey

from box.jobs import history, job_states
from box.jobs.store import Store, UnknownJob
from secure_print.license import License
from tests.secure_print import boxkeys

NOW = boxkeys.NOW


def _finished(store: Store, title: str, state: str, path: str, facts=None, reason: str = "") -> int:
    number = store.add_job("ab" * 16, title, path)
    if state == job_states.CANCELLED:
        store.request(number, "cancel")
        return number
    store.move(number, job_states.VERIFYING)
    if facts is None:
        store.move(number, state, reason)
        return number
    store.move(number, job_states.PRINTING, print_number=1, source_lines=6048)
    store.move(number, state, reason, facts=json.dumps(facts))
    return number


def test_the_history_shows_duration_lines_material_and_reason_newest_first(tmp_path):
    store = Store(str(tmp_path / "box.sqlite"), clock=lambda: NOW)
    facts = {"license_id": "cd" * 16, "started": NOW - 754, "ended": NOW, "lines": 6048, "material": "PLA"}
    printed = _finished(store, "vase", job_states.DONE, "/spool/a.mipjob", facts, "all lines confirmed")
    refused = _finished(store, "vase", job_states.FAILED, "/spool/b.mipjob", reason="refused: no prints left")
    halted = _finished(store, "vase", job_states.FAILED, "/spool/a.mipjob", dict(facts, lines=120), "halted")
    store.add_job("ef" * 16, "still queued", "/spool/c.mipjob")

    entries = history.finished(store.jobs())
    assert [e["number"] for e in entries] == [halted, refused, printed]  # newest first, only finished jobs
    newest, never_printed, done = entries
    assert done["duration_seconds"] == 754 and done["lines"] == 6048 and done["source_lines"] == 6048
    assert done["material"] == "PLA" and done["reason"] == "all lines confirmed" and done["license_id"] == "cd" * 16
    assert newest["lines"] == 120 and newest["state"] == "failed" and newest["reason"] == "halted"
    assert never_printed["duration_seconds"] is None and never_printed["ended_at"] == NOW
    assert never_printed["reason"] == "refused: no prints left" and never_printed["material"] == ""


def _terms(max_prints, not_after=NOW + 3600) -> License:
    return License("cd" * 16, "ab" * 16, "designer", [boxkeys.BOX_ID], max_prints, NOW - 3600, not_after, "00" * 32)


@pytest.mark.parametrize(
    ("terms", "prints_done", "refusal"),
    [
        (_terms(3), 2, ""),
        (_terms(None), 1000, ""),
        (_terms(3), 3, "no prints left: this box has made 3 of the 3 prints the license allows"),
        (_terms(3, not_after=NOW), 0, "the license expired on"),
        (None, 0, "the sealed job is no longer on the box"),
    ],
)
def test_a_finished_job_prints_again_only_while_its_license_allows(terms, prints_done, refusal):
    said = history.reprint_refusal(terms, prints_done, NOW)
    assert said.startswith(refusal) and bool(said) == bool(refusal)


def test_the_license_is_read_from_the_spooled_job_with_the_box_key_only(tmp_path):
    path = str(tmp_path / "good.mipjob")
    shutil.copy(os.path.join(boxkeys.VECTORS, "good.mipjob"), path)
    terms = history.license_terms(path, boxkeys.BOX_SEALING)
    assert terms is not None and boxkeys.BOX_ID in terms.boxes
    assert history.license_terms(path, X25519PrivateKey.generate()) is None  # another box's key opens nothing
    assert history.license_terms(str(tmp_path / "gone.mipjob"), boxkeys.BOX_SEALING) is None
    with open(path, "r+b") as handle:
        handle.write(b"XXXXXX")  # not a sealed job any more
    assert history.license_terms(path, boxkeys.BOX_SEALING) is None


def test_print_again_and_delete_take_only_finished_jobs(tmp_path):
    store = Store(str(tmp_path / "box.sqlite"))
    shared, own = tmp_path / "shared.mipjob", tmp_path / "own.mipjob"
    shared.write_bytes(b"sealed")
    own.write_bytes(b"sealed")
    first = _finished(store, "vase", job_states.CANCELLED, str(shared))
    second = _finished(store, "vase", job_states.FAILED, str(own), reason="halted")
    again = store.print_again(first)
    assert store.job(again)["state"] == job_states.QUEUED and store.job(again)["spool_path"] == str(shared)
    assert store.job(again)["job_id"] == store.job(first)["job_id"]
    for action in (store.print_again, store.delete_job):
        with pytest.raises(job_states.IllegalTransition, match="job %d is queued: only a finished job" % again):
            action(again)
        with pytest.raises(UnknownJob, match="there is no job 99"):
            action(99)
    assert [row["id"] for row in store.jobs()] == [first, second, again]  # refusals changed nothing

    store.delete_job(first)
    assert shared.exists()  # the queued copy still needs it
    store.delete_job(second)
    assert not own.exists()
    assert [row["id"] for row in store.jobs()] == [again]
    assert store.recent_events(1)[0]["message"] == "job %d ('vase') deleted from the history" % second


def test_a_deleted_jobs_number_is_never_given_again(tmp_path):
    store = Store(str(tmp_path / "box.sqlite"))
    first = _finished(store, "vase", job_states.CANCELLED, str(tmp_path / "a.mipjob"))
    newest = _finished(store, "vase", job_states.CANCELLED, str(tmp_path / "b.mipjob"))
    store.delete_job(newest)
    store.delete_job(first)
    store.close()
    reopened = Store(str(tmp_path / "box.sqlite"))  # also after a restart, and for `mipai-box queue add`
    assert reopened.add_job("cd" * 16, "bowl", str(tmp_path / "c.mipjob")) == newest + 1
