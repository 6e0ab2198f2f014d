"""The fleet's sans-I/O parts on their own: topics and payload limits, the signed status, the telemetry schedule
and job events, reconnect backoff, log redaction, the command log across a restart, and the operator's check."""

import random

import pytest

from box.fleet_link import agent, command_handlers, telemetry
from box.fleet_link.command_log import CommandLog
from box.fleet_link.outbox import Outbox
from box.settings import Settings, SettingsError
from fleet import record_text
from fleet.telemetry_check import TelemetryCheck
from provisioning import identity
from secure_print.signer_key import SignerKey
from wire import command_gate, envelope, keytext, topics


@pytest.fixture
def box(tmp_path):
    return identity.load_or_create(str(tmp_path / "box"))


def test_topics_are_named_and_split_strictly():
    assert topics.topic("abc", topics.RESULT) == "mipai/v1/abc/cmd/result"
    assert topics.split_topic("mipai/v1/abc/cmd/result") == ("abc", "cmd/result")
    for bad in ("mipai/v1/abc/other", "mipai/v2/abc/status", "mipai/v1//status", "status", "mipai/v1/abc"):
        with pytest.raises(topics.WireError):
            topics.split_topic(bad)
    with pytest.raises(ValueError):
        topics.topic("abc", "secrets")


def test_payloads_must_be_small_shallow_canonical_json():
    assert topics.decode(b'{"a":1}') == {"a": 1}
    for bad, why in (
        (b'{"a": 1}', "canonical"),
        (b'{"a":1.5}', "floating"),
        (b"[" * 40 + b"]" * 40, "nested"),
        (b"\xff", "UTF-8"),
        (b'"' + b"x" * topics.MAX_PAYLOAD + b'"', "limit"),
    ):
        with pytest.raises(topics.WireError, match=why):
            topics.decode(bad)


def test_a_status_speaks_only_for_the_box_whose_key_it_carries(box, tmp_path):
    signed = topics.status(box, 3, True, 1000, {"printing": False})
    assert topics.verify_status(box.box_id, signed)["session"] == 3
    other = identity.load_or_create(str(tmp_path / "other"))
    with pytest.raises(topics.WireError, match="does not carry the key"):
        topics.verify_status(other.box_id, signed)
    impostor = topics.status(other, 9, True, 1000)
    impostor["body"]["box_key"] = box.signing_public.hex()  # claims box's key, signed by another key
    impostor["key_id"] = box.box_id
    with pytest.raises(topics.WireError, match="does not verify"):
        topics.verify_status(box.box_id, impostor)


def test_samples_come_at_1_hz_while_printing_and_slower_when_idle():
    schedule = telemetry.Schedule(idle_seconds=30)
    due = [t for t in range(0, 100) if schedule.due(float(t), printing=40 <= t < 60)]
    assert due == [0, 30, *range(40, 60), 89]  # idle again: 30 s after the last printing sample


def test_job_events_are_the_changes_since_the_last_report_also_across_a_restart(tmp_path, box):
    outbox = Outbox(str(tmp_path / "outbox.sqlite"), box.signing, box.box_id)
    watch = telemetry.JobWatch(outbox.job_states_seen())
    row = {"id": 1, "job_id": "j", "state": "queued", "reason": "", "last_source_line": 0}
    outbox.append_job_events(watch.changes([row]), 1000)  # a job not reported before is reported as it is
    assert watch.changes([row]) == []
    printing = dict(row, state="printing")
    changes = watch.changes([printing, dict(row, id=2)])
    assert [e["state"] for e in changes] == ["printing", "queued"]
    outbox.append_job_events(changes, 1001)
    outbox.close()
    reopened = Outbox(str(tmp_path / "outbox.sqlite"), box.signing, box.box_id)
    after_restart = telemetry.JobWatch(reopened.job_states_seen())
    done = dict(printing, state="done")
    assert [(e["job"], e["state"]) for e in after_restart.changes([done, dict(row, id=2)])] == [(1, "done")]
    assert [r[2]["body"]["state"] for r in reopened.pending(10)] == ["queued", "printing", "queued"]
    reopened.close()


def test_a_sample_holds_integers_only():
    live = {"samples": [(0.0, 205.04, 205.0, 59.96, 60.0)], "job": {"layer": 3, "eta_seconds": 12.7}}
    row = {"id": 4, "job_id": "j", "last_source_line": 10, "source_lines": 100}
    body = telemetry.sample(True, True, live, row)
    assert body["hotend"] == [2050, 2050] and body["bed"] == [600, 600] and body["job"]["eta_s"] == 12
    assert topics.encode(body)  # canonical: no floats anywhere


def test_reconnect_waits_grow_to_a_cap_with_full_jitter():
    assert agent.backoff_delay(0, rng=lambda: 1.0) == 1.0
    assert agent.backoff_delay(3, rng=lambda: 1.0) == 8.0
    assert agent.backoff_delay(30, rng=lambda: 1.0) == agent.BACKOFF_MAX
    waits = {agent.backoff_delay(5, rng=random.Random(seed).random) for seed in range(20)}
    assert len(waits) == 20 and max(waits) <= 32


def test_logs_fetched_remotely_have_secrets_redacted():
    assert command_handlers.redact("joined wifi password=hunter2 ok") == "joined wifi password=[redacted] ok"
    assert "s3cret" not in command_handlers.redact("enrolment token: s3cret")
    assert command_handlers.redact("job 3: done") == "job 3: done"
    assert command_handlers.redact("claim code ABCD-EFGH (valid until 12:00)").startswith("claim code [redacted]")


def test_the_command_log_keeps_results_and_numbers_across_a_restart(tmp_path, box):
    operator = SignerKey.generate(keytext.OPERATOR)
    key_id = topics.operator_key_id(operator.public_bytes)
    operators = {key_id: operator.public_bytes}
    command = envelope.sign("cmd", {"box_id": box.box_id, "name": "identify", "args": {}}, operator.signing, key_id,
                            100, 7, 10_000)  # fmt: skip
    log = CommandLog(str(tmp_path / "commands.sqlite"))
    gate = log.gate(box.box_id, operators)
    assert gate.check(command, 200).action == "run"
    result = command_gate.result(box.signing, box.box_id, command, "succeeded", "ok", 200, log.next_number("result"))
    log.remember(gate, command, result)
    assert log.next_number("session") == 1 and log.next_number("session") == 2
    log.close()
    reopened = CommandLog(str(tmp_path / "commands.sqlite"))
    gate = reopened.gate(box.box_id, operators)
    repeat = gate.check(command, 300)
    assert repeat.action == "repeat" and repeat.stored == result
    older = envelope.sign("cmd", {"box_id": box.box_id, "name": "identify", "args": {}}, operator.signing, key_id,
                          100, 6, 10_000)  # fmt: skip
    assert "replayed" in gate.check(older, 300).reason
    assert reopened.next_number("session") == 3
    reopened.close()


def test_fleet_settings_are_checked(tmp_path):
    operator = SignerKey.generate(keytext.OPERATOR)
    good = Settings.from_mapping({"fleet": {"broker_host": "broker.example", "operators": [operator.public_text]}},
                                 "test")  # fmt: skip
    assert good.fleet.broker_port == 1883
    designer = SignerKey.generate(keytext.DESIGNER)
    for fleet, why in (
        ({"operators": [designer.public_text]}, "not an operator key"),
        ({"broker_host": "two words"}, "host name"),
        ({"idle_telemetry_seconds": 0}, "from 1 to 3600"),
        ({"ca_file": "relative.crt"}, "absolute file path"),
        ({"tsl": True}, "unknown setting fleet.tsl"),
    ):
        with pytest.raises(SettingsError, match=why):
            Settings.from_mapping({"fleet": fleet}, "test")


def test_the_operator_check_counts_each_record_once_and_flags_gaps(tmp_path, box):
    outbox = Outbox(str(tmp_path / "outbox.sqlite"), box.signing, box.box_id)
    signed = [outbox.append({"type": "sample", "n": n}, 1000 + n) for n in range(6)]
    check = TelemetryCheck()
    topic = topics.topic(box.box_id, topics.TELEMETRY)
    assert check.feed(topic, topics.encode(signed[0]))[0].kind == "waiting"  # before the box's status
    status = topics.status(box, 1, True, 1000)
    findings = check.feed(topics.topic(box.box_id, topics.STATUS), topics.encode(status))
    assert [f.kind for f in findings] == ["status", "record"]
    assert check.feed(topic, topics.encode(signed[0]))[0].kind == "duplicate"
    assert list(check.feed(topic, topics.encode(signed[3]))[0].new_gaps) == [2, 3]
    edited = dict(signed[4], body=dict(signed[4]["body"], n=99))
    assert check.feed(topic, topics.encode(edited))[0].kind == "refused"
    stale = topics.status(box, 0, False, 900)
    assert "stale" in check.feed(topics.topic(box.box_id, topics.STATUS), topics.encode(stale))[0].reason
    view = check.boxes[box.box_id]
    assert view.records == 2 and view.duplicates == 1 and view.gaps() == [2, 3]
    outbox.close()


def test_refused_command_events_are_rate_limited_and_count_what_they_left_out():
    log = telemetry.RejectionLog(burst=3, interval=10.0)
    admitted = [log.admit(100.0) for _ in range(50)]
    assert admitted[:3] == [0, 0, 0] and admitted[3:] == [None] * 47
    assert log.admit(111.0) == 47  # one token back after 10 s; it reports the 47 left out
    event = telemetry.rejection_event({"key_id": "op-x", "seq": 7, "body": {"secret": 1}}, "expired", 47)
    assert event == {"type": "command.rejected", "from": "op-x", "seq": 7, "reason": "expired", "suppressed": 47}
    assert telemetry.rejection_event([], "not a signed command envelope", 0)["seq"] == -1


def test_an_operator_reads_records_with_units_and_cuts_only_where_marked():
    sample = {"type": "sample", "printer": "printing", "hotend": [2053, 2100], "bed": [601, 600], "prev": "0" * 64,
              "job": {"number": 3, "job_id": "j", "line": 120, "lines": 6000, "layer": 4, "eta_s": 750}}  # fmt: skip
    text = record_text.describe(sample)
    assert text == "printing, hotend 205.3/210.0 °C, bed 60.1/60.0 °C, job 3 line 120 of 6000, layer 4, 0:12:30 left"
    assert record_text.describe({"type": "sample", "printer": "ready", "hotend": None, "bed": [215, None]}) == (
        "ready, hotend -, bed 21.5/- °C"
    )
    long = "word " * 60
    short = record_text.shorten(long.strip())
    assert short.endswith("…") and len(short) <= record_text.SHORT_WIDTH and not short[:-1].endswith(" wor")
    assert record_text.shorten("fits") == "fits"
