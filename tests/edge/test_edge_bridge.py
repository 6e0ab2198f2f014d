"""The bridge between the box's real HostLink and a Marlin-like printer, in memory on simulated time.

Plain test functions: pytest runs them under CPython, tests/micropython_runner.py under MicroPython with the
Pico's heap (tests/edge/test_edge_micropython.py).
"""

import gc

from firmware_bridge import marlin
from firmware_bridge.edge import attest
from firmware_bridge.edge.bridge import Bridge, Extrusion
from tests.edge.harness import KEY, ScriptedPrinter, Wire, job, job_digest
from tests.firmware_bridge.expect import of_type


def expected_counts(count: int) -> tuple:
    """(E micrometres, layers) of harness.job(count)."""
    layers = (count - 1) // 10
    return (count - 2 - layers) * 50, layers


def fields(line: str) -> dict:
    return dict(word.split(":", 1) for word in line.split(" ")[1:])


def test_box_sees_the_printer_and_the_attest_capability():
    wire = Wire()
    connected = wire.connect()
    assert connected.firmware["FIRMWARE_NAME"] == "Marlin 2.1.2.1 (Feb 20 2024)"
    assert connected.firmware["MACHINE_TYPE"] == "Ender-3 V2"
    assert connected.capabilities["MIPAI_ATTEST"] is True
    assert connected.capabilities["EEPROM"] is True
    assert "ADVANCED_OK" not in connected.capabilities


def test_a_job_arrives_once_in_order_and_the_counters_are_exact():
    wire = Wire()
    wire.connect()
    start = fields(wire.attest(b"\x01" * 16))
    ended = wire.print_job(job(1500))
    assert ended.outcome == marlin.DONE and ended.lines_acknowledged == 1500
    assert wire.printer.executed == 1500
    assert wire.printer.digest.digest() == job_digest(1500)
    end = fields(wire.attest(b"\x02" * 16))
    e_um, layers = expected_counts(1500)
    assert int(end["LINES"]) - int(start["LINES"]) == 1500
    assert int(end["E_UM"]) - int(start["E_UM"]) == e_um
    assert int(end["LAYERS"]) - int(start["LAYERS"]) == layers
    assert (end["BOOT"], end["SEQ"], start["SEQ"]) == ("7", "2", "1")
    assert int(end["UP_MS"]) > int(start["UP_MS"])


def test_printer_resends_stay_between_bridge_and_printer():
    printer = ScriptedPrinter()
    printer.corrupt = [5, 17, 18, 40]  # the printer-side line numbers hit by noise
    wire = Wire(printer=printer)
    wire.connect()
    ended = wire.print_job(job(300))
    assert ended.outcome == marlin.DONE
    assert printer.digest.digest() == job_digest(300)
    assert wire.bridge.link.progress().resends == 4
    assert wire.box.progress().resends == 0
    assert wire.bridge.counters.lines == 300


def test_box_resends_are_answered_like_marlin():
    wire = Wire()
    wire.connect()
    wire.box_noise = [10, 11, 90]
    ended = wire.print_job(job(300))
    assert ended.outcome == marlin.DONE
    assert wire.box.progress().resends == 3
    assert wire.printer.digest.digest() == job_digest(300)
    assert wire.bridge.counters.lines == 300
    assert wire.bridge.counters.e_um == expected_counts(300)[0]


def test_faults_on_both_sides_in_any_mix_leave_every_line_once_and_the_counters_exact():
    """Seeded mixes of line noise from the box and from the printer, busy spells and byte-by-byte delivery."""
    for seed in range(12):
        gc.collect()  # the last round's links are garbage now: a Pico-sized heap has room for the next
        _mixed_round(seed)


def _mixed_round(seed: int) -> None:
    pick = _seeded(seed)
    count = 150 + pick(150)
    printer = ScriptedPrinter()
    printer.corrupt = sorted(set([3 + pick(count) for _ in range(pick(6))]))
    printer.busy = dict([(pick(count), 0.05 * (1 + pick(4))) for _ in range(pick(3))])
    wire = Wire(printer=printer)
    wire.chunk = pick(3)  # 0: whole writes, 1: byte by byte, 2: two bytes at a time
    wire.connect()
    wire.box_noise = sorted(set([2 + pick(count) for _ in range(pick(6))]))
    ended = wire.print_job(job(count))
    assert ended.outcome == marlin.DONE, (seed, ended)
    assert printer.digest.digest() == job_digest(count), seed
    assert wire.bridge.counters.lines == count, seed
    assert (wire.bridge.counters.e_um, wire.bridge.counters.layers) == expected_counts(count), seed


def _seeded(seed: int):
    """randrange from a small LCG of our own: the same mixes on both runtimes (MicroPython's random differs)."""
    state = [seed * 2654435761 + 1]

    def randrange(stop: int) -> int:
        state[0] = (state[0] * 1103515245 + 12345) & 0x7FFFFFFF
        return state[0] % stop if stop > 0 else 0

    return randrange


def test_a_long_busy_printer_keeps_the_box_waiting_not_failing():
    printer = ScriptedPrinter()
    printer.busy = {3: 25.0}  # longer than the box link's 10 s silence limit
    wire = Wire(printer=printer, step=0.01)
    wire.connect()
    ended = wire.print_job(job(20))
    assert ended.outcome == marlin.DONE
    assert printer.digest.digest() == job_digest(20)
    assert of_type(wire.events, marlin.PrinterBusy)
    assert not [event for event in of_type(wire.events, marlin.PrinterMessage) if "no answer" in event.text]


def test_a_printer_error_reaches_the_box_and_the_job_goes_on():
    printer = ScriptedPrinter()
    printer.errors = [4]
    wire = Wire(printer=printer)
    wire.connect()
    ended = wire.print_job(job(30))
    assert ended.outcome == marlin.DONE
    errors = [event.text for event in of_type(wire.events, marlin.PrinterMessage) if event.level == "error"]
    assert errors and "Unknown command" in errors[0]
    assert wire.bridge.counters.lines == 30


def test_a_printer_reset_ends_the_job_and_is_counted():
    printer = ScriptedPrinter()
    printer.reset_at = 49
    wire = Wire(printer=printer)
    wire.connect()
    ended = wire.print_job(job(200))
    assert ended.outcome == marlin.FAILED_OUTCOME and ended.reason == "printer reset"
    assert wire.bridge.counters.resets == 1
    assert wire.bridge.counters.lines == 50
    wire.connect()  # the box's link handshakes again through the bridge
    before = wire.bridge.counters.lines
    again = wire.print_job(job(40))
    assert again.outcome == marlin.DONE
    assert wire.bridge.counters.lines - before == 40
    assert fields(wire.attest(b"\x03" * 16))["RESETS"] == "1"


def test_a_halted_printer_fails_the_job_with_its_words():
    printer = ScriptedPrinter()
    printer.halt_at = 9
    wire = Wire(printer=printer)
    wire.connect()
    ended = wire.print_job(job(100))
    assert ended.outcome == marlin.FAILED_OUTCOME
    assert "Thermal Runaway" in ended.reason
    assert wire.box.state == marlin.HALTED


def test_a_silent_printer_fails_the_job_and_the_bridge_links_again_when_it_is_back():
    printer = ScriptedPrinter()
    printer.silent_at = 19  # its ok for command 19 is the last thing it says
    wire = Wire(printer=printer, step=0.01)
    wire.connect()
    ended = wire.print_job(job(100))
    assert ended.outcome == marlin.FAILED_OUTCOME
    assert "edge bridge: no answer from the printer" in ended.reason
    assert wire.bridge.counters.lines == 20 and wire.bridge.counters.resets == 1
    printer.silent = False  # powered up again
    printer.side.reset()
    wire.connect()  # the bridge rebuilt its link and said "start": the box handshakes again
    assert wire.print_job(job(10)).outcome == marlin.DONE
    assert wire.bridge.counters.lines == 30


def test_an_emergency_stop_reaches_the_printer_at_once():
    wire = Wire()
    wire.connect()
    wire.box.start_job()
    wire.box.send_job_line("G28")
    wire.exchange()
    events = wire.box.emergency_stop()
    assert of_type(events, marlin.JobEnded)[0].outcome == marlin.CANCELLED
    out = wire.box.data_to_send()
    assert out.startswith(b"M112\n")
    wire.bridge.box_data(out, wire.now)
    assert b"M112\n" in wire.bridge.to_printer()
    assert wire.bridge.link.state == marlin.HALTED


def test_each_attestation_has_the_next_sequence_and_its_challenge():
    wire = Wire()
    wire.connect()
    first = fields(wire.attest(b"\xaa" * 16))
    second = fields(wire.attest(b"\xaa" * 16))
    assert (first["SEQ"], second["SEQ"]) == ("1", "2")
    assert first["CHALLENGE"] == second["CHALLENGE"] == "aa" * 16
    assert first["MAC"] != second["MAC"]
    assert first["ID"] == attest.to_hex(attest.bridge_id(KEY))


def test_an_unpaired_bridge_refuses_and_changes_nothing():
    wire = Wire(bridge=Bridge(key=None, boot=1))
    wire.connect()
    lines = wire.command("M7770 C" + "00" * 16, lambda line: line.startswith("Error:"))
    assert "Error:MIPAI_ATTEST not paired" in lines
    assert wire.bridge.counters.seq == 0
    assert wire.print_job(job(10)).outcome == marlin.DONE  # forwarding works without a key


def test_a_malformed_request_is_refused_and_changes_nothing():
    wire = Wire()
    wire.connect()
    for request in ("M7770", "M7770 C" + "0" * 31, "M7770 C" + "G" * 32, "M7770 C" + "AA" * 16):
        lines = wire.command(request, lambda line: line.startswith("Error:"))
        assert [line for line in lines if line.startswith("Error:MIPAI_ATTEST wants M7770")], lines
    assert wire.bridge.counters.seq == 0


def test_temperatures_are_answered_by_the_bridge():
    wire = Wire()
    wire.connect()
    wire.settle(3000)  # the printer's reports arrive through the link's M155
    lines = wire.command("M105", lambda line: line.startswith("ok T:"))
    assert [line for line in lines if line.startswith("ok T:210.00 /210.00 B:60.00 /60.00")], lines


def test_no_temperatures_are_made_up_before_the_printer_reports():
    bridge = Bridge(key=KEY)
    bridge.box_data(b"M105\n", 0.0)
    assert bridge.to_box() == b"ok\n"


def test_overlong_lines_from_the_box_are_refused_with_a_resend():
    bridge = Bridge(key=KEY)
    bridge.box_data(b"N1 G1 " + b"X1 " * 40 + b"*12\n", 0.0)
    out = bridge.to_box().decode()
    assert out.startswith("Error:Line too long, Last Line: 0\nResend: 1\nok\n"), out
    bridge.box_data(b"X" * 600, 0.0)
    assert bridge.box.rx_overflows == 1


def test_extrusion_follows_the_printers_e_mode():
    extrusion = Extrusion()
    moves = [
        ("G1 X1 E2.5", 2500),  # absolute after boot: to 2.5 mm
        ("G1 X2 E3", 500),
        ("G1 E2.2", -800),  # a retraction counts negative
        ("G92 E0", 0),
        ("G1 X3 E0.4", 400),
        ("M83", 0),
        ("G1 X4 E0.4", 400),  # relative now
        ("G1X5E0.1", 100),
        ("M829 S1", 0),  # not M82
        ("G1 X6 E0.1", 100),
        ("G90", 0),  # absolute again, from the position G92 and the absolute moves left
        ("G1 X7 E1.4", 1000),
        ("G10", 0),
        ("G28 X", 0),
        ("G1 X8 F1200", 0),
    ]
    for command, expected in moves:
        assert extrusion.delta_um(command) == expected, command


def test_bad_keys_are_refused():
    for key in (b"", b"\x00" * 31, b"\x00" * 33):
        try:
            Bridge(key=key)
        except ValueError as error:
            assert "32 bytes" in str(error)
        else:
            raise AssertionError("a %d-byte key was accepted" % len(key))
