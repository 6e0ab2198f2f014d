"""The store's owner: the one holder of box.sqlite in the daemon, which tells listeners what changed."""

import json
import threading
import time

from box import change_feed
from box.fleet_link import telemetry
from box.jobs import job_states
from box.jobs.store import Store
from box.jobs.store_owner import StoreOwner
from box.web import pages


def _wait_for(listener, kind: str, timeout: float = 5.0) -> list:
    deadline = time.monotonic() + timeout
    seen = []
    while time.monotonic() < deadline:
        listener.wake.wait(0.1)
        seen += listener.drain()
        if any(change.kind == kind for change in seen):
            return seen
    raise AssertionError("no %s change arrived; saw %r" % (kind, seen))


def test_job_changes_made_through_the_owner_reach_listeners_in_order(tmp_path):
    owner = StoreOwner(str(tmp_path))
    listener = owner.feed.listen(change_feed.JOB)
    try:
        number = owner.blocking_store.add_job("job-1", "vase", str(tmp_path / "vase.mipjob"))
        owner.blocking_store.move(number, job_states.VERIFYING)
        owner.blocking_store.record_progress(number, 10, 5)  # progress is not a change of state
        states = [change.data["state"] for change in listener.drain()]
        assert states == [job_states.QUEUED, job_states.VERIFYING]
    finally:
        owner.close()


def test_calls_from_many_threads_go_through_the_one_owner_thread(tmp_path):
    owner = StoreOwner(str(tmp_path))
    seen_threads = set()

    def add(n: int) -> None:
        owner.blocking_store.add_job("job-%d" % n, "t%d" % n, str(tmp_path / ("%d.mipjob" % n)))

    try:
        workers = [threading.Thread(target=add, args=(n,)) for n in range(8)]
        for worker in workers:
            worker.start()
        for worker in workers:
            worker.join()
        owner.call_blocking("log", "test", "from a thread")
        owner._submit(lambda: seen_threads.add(threading.current_thread().name)).result()
        assert len(owner.blocking_store.jobs()) == 8 and seen_threads == {"store"}
    finally:
        owner.close()


def test_a_write_by_another_process_is_noticed(tmp_path):
    owner = StoreOwner(str(tmp_path))
    listener = owner.feed.listen(change_feed.JOBS_CHANGED_ELSEWHERE)
    try:
        other = Store(str(tmp_path / "box.sqlite"))  # as `mipai-box queue add` does, from its own process
        other.add_job("job-x", "from the command line", str(tmp_path / "x.mipjob"))
        other.close()
        _wait_for(listener, change_feed.JOBS_CHANGED_ELSEWHERE)
    finally:
        owner.close()


def test_a_failed_jobs_report_reaches_the_job_event_and_the_page_escaped():
    row = {"id": 3, "job_id": "j", "title": "vase", "state": "failed", "reason": "printer halted",
           "last_source_line": 120, "source_lines": 6000,
           "report": json.dumps(["last lines on the serial port (received):", "  < Error:<b>Thermal</b>"])}  # fmt: skip
    event = telemetry.JobWatch({3: "printing"}).changes([row])[0]
    assert event["report"] == ["last lines on the serial port (received):", "  < Error:<b>Thermal</b>"]
    html = pages.job_rows([row], "csrf")
    assert "what the printer said" in html and "&lt;b&gt;Thermal&lt;/b&gt;" in html and "<b>" not in html
    done = dict(row, state="done", report=None)
    assert "report" not in telemetry.JobWatch({3: "printing"}).changes([done])[0]
