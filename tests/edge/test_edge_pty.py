"""The box's streamer through the bridge (run by CPython behind a pseudo-terminal) to the virtual printer."""

import pytest

from firmware_bridge import attestation, marlin, streamer
from firmware_bridge.gcode import iter_commands
from firmware_bridge.virtual_printer import VirtualPrinterProcess
from tests.edge.bridged import bridged_printer
from tests.edge.harness import KEY

SAMPLE = "firmware_bridge/samples/vase.gcode"


def commands() -> list:
    with open(SAMPLE, "rb") as handle:
        return list(iter_commands(handle))


@pytest.mark.parametrize("printer_args", [(), ("--checksum-error-rate", "0.02", "--seed", "3")], ids=["clean", "noisy"])
def test_a_whole_job_through_the_bridge_once_each_with_verified_attestations(tmp_path, printer_args):
    job = commands()
    with bridged_printer(tmp_path, *printer_args) as (port, record):
        connection = streamer.connect(port, bauds=(250000,))
        try:
            assert connection.firmware["FIRMWARE_NAME"] == "Marlin 2.1.2.1 (virtual)"
            assert attestation.is_bridge(connection.capabilities)
            first, second = attestation.new_challenge(), attestation.new_challenge()
            start = attestation.fetch_if_bridged(connection, first)
            report = streamer.stream(connection, iter(job))
            end = attestation.fetch_if_bridged(connection, second)
        finally:
            connection.close()
    assert report.outcome == marlin.DONE, report
    assert report.resends == 0  # repairs on the printer's wire stay between the bridge and the printer
    executed = record.read_text().splitlines()
    assert executed == [command for _source, command in job]
    attestation.verify(start, KEY, first)
    attestation.verify(end, KEY, second, last=(start.boot, start.seq))
    evidence = attestation.job_evidence(start, end)
    assert evidence["lines"] == report.lines_acknowledged == len(job)
    assert evidence["layers"] > 10 and evidence["e_um"] > 0
    with pytest.raises(attestation.AttestationInvalid):
        attestation.verify(end, KEY, second, last=(end.boot, end.seq))  # the same attestation, replayed
    record = attestation.as_record(start, end)
    assert attestation.parse(record["start"]).counters() == start.counters()
    assert record["bridge_id"] == start.bridge_id


def test_an_unpaired_bridge_still_forwards_and_says_why_it_cannot_attest(tmp_path):
    with bridged_printer(tmp_path, paired=False) as (port, record):
        connection = streamer.connect(port, bauds=(250000,))
        try:
            with pytest.raises(attestation.BridgeNotPaired, match="mipai-fleet edge pair"):
                attestation.fetch(connection, attestation.new_challenge())
            report = streamer.stream(connection, iter([(1, "G28"), (2, "G1 X10 E1")]))
        finally:
            connection.close()
    assert report.outcome == marlin.DONE
    assert record.read_text().splitlines() == ["G28", "G1 X10 E1"]


def test_a_printer_without_a_bridge_is_left_alone(tmp_path):
    with VirtualPrinterProcess() as printer:
        connection = streamer.connect(printer.path, bauds=(250000,))
        try:
            assert not attestation.is_bridge(connection.capabilities)
            assert attestation.fetch_if_bridged(connection, attestation.new_challenge()) is None
            with pytest.raises(attestation.BridgeUnavailable, match="not behind an attesting bridge"):
                attestation.fetch(connection, attestation.new_challenge())
            report = streamer.stream(connection, iter([(1, "G28")]))
        finally:
            connection.close()
    assert report.outcome == marlin.DONE


def test_a_sealed_print_by_mipai_box_goes_through_the_bridge_unchanged(tmp_path):
    """The box as users run it (`mipai-box print JOB --port BRIDGE`): nothing in the box knows of the bridge."""
    from tests.users import World

    (tmp_path / "world").mkdir()
    world = World(tmp_path / "world")
    job = world.seal("--max-prints", "1", "--printer", "MIP.AI Virtual*")
    assert world.box("trust", "add", world.designer_public, "--name", "Ada").returncode == 0
    with bridged_printer(tmp_path) as (port, record):
        result = world.box("print", job, "--port", port)
        connection = streamer.connect(port, bauds=(250000,))
        try:
            after = attestation.fetch(connection, b"\x33" * 16)
        finally:
            connection.close()
    assert result.returncode == 0, result.stderr
    assert "done: all lines confirmed by the printer. 6030 lines confirmed" in result.stderr
    executed = record.read_text().splitlines()
    assert len(executed) == 6030
    attestation.verify(after, KEY, b"\x33" * 16)
    assert after.lines == len(executed)  # what the bridge attests is what the printer ran, line for line
