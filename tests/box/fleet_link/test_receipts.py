"""The box's print receipts as the fleet agent makes them from the job table (real SQLite outbox): one per
print that reached the printer, in the same transaction as the job's end event, so a restart neither loses nor
repeats one; chained; spanning the telemetry records from the print's start to its end."""

import hashlib

from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

from box.fleet_link.outbox import Outbox
from box.fleet_link.telemetry import JobWatch
from box.jobs.store import print_facts
from wire import canonical, receipt
from wire.record_chain import GENESIS

KEY = Ed25519PrivateKey.from_private_bytes(bytes(range(32)))
PUBLIC = KEY.public_key().public_bytes_raw()
BOX_ID = "box-1"
FACTS = (
    '{"filament_mm": 1234, "license_id": "' + "1" * 32 + '", "lines": 900, "material": "PLA", "print_number": 1,'
    ' "printer": {"FIRMWARE_NAME": "Marlin 2.1", "MACHINE_TYPE": "Virtual"}, "sealed_sha256": "' + "2" * 64 + '",'
    ' "started": 1000, "ended": 1600}'
)


def row(number: int, state: str, facts: str = FACTS) -> dict:
    return {"id": number, "job_id": "%032x" % number, "state": state, "reason": "", "last_source_line": 900,
            "report": "", "facts": facts}  # fmt: skip


class Agent:
    """What the fleet agent does with job changes: JobWatch's events, with the rows' facts, into the outbox."""

    def __init__(self, path) -> None:
        self.outbox = Outbox(str(path), KEY, BOX_ID)
        self.watch = JobWatch(self.outbox.job_states_seen())

    def see(self, *rows) -> list:
        changes = self.watch.changes(list(rows))
        if changes:
            self.outbox.append_job_events(changes, 2000.0, {r["id"]: print_facts(r) for r in rows})
            return self.outbox.made_receipts
        return []

    def receipts(self) -> list:
        return [(*receipt.read_receipt(data, PUBLIC, BOX_ID), data) for _seq, data in self.outbox.pending_receipts()]


def test_a_finished_print_gets_one_receipt_spanning_its_telemetry(tmp_path):
    agent = Agent(tmp_path / "outbox.sqlite")
    agent.see(row(1, "verifying", ""))
    agent.see(row(1, "printing"))
    agent.outbox.append({"type": "sample", "printer": "printing"}, 1500.0)
    made = agent.see(row(1, "done"))
    ((signed, found, data),) = agent.receipts()
    assert made == [(1, 1, receipt.receipt_hash(data))]
    records = {seq: record for seq, _created, record in agent.outbox.pending(100)}
    assert records[found.telemetry_first]["body"]["state"] == "printing"
    assert records[found.telemetry_last]["body"]["state"] == "done"
    assert found.telemetry_last - found.telemetry_first == 2  # the sample in between is covered
    last = canonical.encode(records[found.telemetry_last])
    assert found.telemetry_last_hash == hashlib.sha256(last).hexdigest()
    assert (signed["seq"], signed["body"]["prev"], found.outcome) == (1, GENESIS, "done")
    assert (found.lines, found.filament_mm, found.material, found.duration) == (900, 1234, "PLA", 600)


def test_a_restart_repeats_no_receipt_and_a_print_ended_during_the_stop_gets_one(tmp_path):
    path = tmp_path / "outbox.sqlite"
    agent = Agent(path)
    agent.see(row(1, "printing"))
    agent.see(row(1, "done"))
    agent.see(row(2, "printing"))
    agent.outbox.close()  # the box stops (or is killed) here; job 2 ends while it is down
    agent = Agent(path)
    assert agent.see(row(1, "done")) == []  # reported before the stop: no second receipt
    (made,) = agent.see(row(1, "done"), row(2, "interrupted"))
    receipts = agent.receipts()
    assert [(signed["seq"], found.outcome) for signed, found, _data in receipts] == [(1, "done"), (2, "interrupted")]
    assert made[0] == 2
    assert receipts[1][0]["body"]["prev"] == receipt.receipt_hash(receipts[0][2])  # the chain goes on
    agent.outbox.close()
    assert Agent(path).see(row(1, "done"), row(2, "interrupted")) == []


def test_no_receipt_without_a_print_or_without_telemetry_of_its_start(tmp_path):
    agent = Agent(tmp_path / "outbox.sqlite")
    agent.see(row(1, "verifying", ""))
    assert agent.see(row(1, "cancelled", "")) == []  # never reached the printer
    assert agent.see(row(2, "done")) == []  # printed while the box had no fleet broker: no telemetry covered it
    assert agent.receipts() == []


def test_bad_facts_make_no_receipt_and_leave_the_chain_as_it_was(tmp_path):
    agent = Agent(tmp_path / "outbox.sqlite")
    agent.see(row(1, "printing", FACTS.replace("1" * 32, "not a license")))
    assert agent.see(row(1, "done", FACTS.replace("1" * 32, "not a license"))) == []
    assert agent.outbox.job_states_seen() == {1: "done"}  # the job's telemetry is kept all the same
    agent.see(row(2, "printing"))
    agent.see(row(2, "done"))
    ((signed, _found, _data),) = agent.receipts()
    assert (signed["seq"], signed["body"]["prev"]) == (1, GENESIS)


def test_receipts_wait_for_the_pubacks_and_are_kept_after_them(tmp_path):
    agent = Agent(tmp_path / "outbox.sqlite")
    for number in (1, 2):
        agent.see(row(number, "printing"))
        agent.see(row(number, "done"))
    assert [seq for seq, _data in agent.outbox.pending_receipts()] == [1, 2]
    assert [seq for seq, _data in agent.outbox.pending_receipts(after=1)] == [2]
    agent.outbox.receipts_acknowledged([1])
    assert [seq for seq, _data in agent.outbox.pending_receipts()] == [2]
    assert [(seq, job, sent) for seq, job, _hash, sent in agent.outbox.receipts()] == [(2, 2, False), (1, 1, True)]
