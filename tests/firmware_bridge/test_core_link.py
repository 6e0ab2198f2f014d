"""The sans-I/O host link against scripted printer transcripts.

Plain test functions without pytest features: tests/micropython_runner.py runs this file under MicroPython too.
"""

from firmware_bridge import marlin
from firmware_bridge.gcode import frame
from tests.firmware_bridge.expect import expect_raises, of_type

M115_REPORT = (
    "FIRMWARE_NAME:Marlin 2.1.2.1 (Feb 20 2024 12:00:00) SOURCE_CODE_URL:github.com/MarlinFirmware/Marlin "
    "PROTOCOL_VERSION:1.0 MACHINE_TYPE:Ender-3 V2 EXTRUDER_COUNT:1 UUID:cede2a2f-41a2-4748-9b12-c55c62f367ff\n"
)


def feed(link, text, now=0.0):
    return link.receive_data(text.encode(), now)


def connected_link(capabilities=("AUTOREPORT_TEMP:1", "EMERGENCY_PARSER:1"), ok_after_m115="ok\n", **options):
    """A link that went through the handshake: M110 and M115 answered, M155 (if any) confirmed."""
    link = marlin.HostLink(**options)
    link.tick(0.0)
    handshake = link.data_to_send()
    assert handshake.startswith(b"N0 M110 N0*125\n")
    feed(link, "ok\n")
    handshake += link.data_to_send()
    assert handshake == b"N0 M110 N0*125\nN1 M115*39\n"
    report = M115_REPORT + "".join("Cap:%s\n" % capability for capability in capabilities) + ok_after_m115
    events = feed(link, report)
    assert len(of_type(events, marlin.Connected)) == 1
    assert link.state == marlin.READY
    out = link.data_to_send()
    if out:
        feed(link, "ok\n")
    return link


def test_handshake_reports_firmware_and_capabilities():
    link = marlin.HostLink()
    link.tick(0.0)
    link.data_to_send()
    feed(link, "ok\n")
    link.data_to_send()
    events = feed(link, M115_REPORT + "Cap:AUTOREPORT_TEMP:1\nCap:EEPROM:0\nok\n")
    connected = of_type(events, marlin.Connected)[0]
    assert connected.firmware["MACHINE_TYPE"] == "Ender-3 V2"
    assert connected.firmware["UUID"] == "cede2a2f-41a2-4748-9b12-c55c62f367ff"
    assert connected.capabilities == {"AUTOREPORT_TEMP": True, "EEPROM": False}
    # With AUTOREPORT_TEMP the link asks for reports instead of polling.
    assert link.data_to_send() == frame(2, "M155 S2")


def test_no_answer_to_m115_is_not_a_printer():
    link = marlin.HostLink(connect_timeout=5.0)
    link.tick(0.0)
    link.data_to_send()
    assert link.tick(4.0) == []
    events = link.tick(5.5)
    failed = of_type(events, marlin.LinkFailed)[0]
    assert "no answer to M115" in failed.reason
    assert link.state == marlin.FAILED


def test_ping_pong_keeps_one_line_in_flight():
    link = connected_link()
    link.start_job()
    assert link.ready_for_job_line()
    link.send_job_line("G1 X1")
    assert not link.ready_for_job_line()
    assert link.data_to_send() == frame(3, "G1 X1")
    feed(link, "ok\n")
    assert link.ready_for_job_line()
    assert link.progress().lines_acknowledged == 1


def test_sending_when_not_ready_is_our_bug():
    link = connected_link()
    expect_raises(marlin.LocalProtocolError, link.send_job_line, "G1 X1")
    link.start_job()
    link.send_job_line("G1 X1")
    expect_raises(marlin.LocalProtocolError, link.send_job_line, "G1 X2")


def test_resend_sends_the_same_bytes_and_swallows_its_ok():
    link = connected_link()
    link.start_job()
    link.send_job_line("G1 X1")
    first = link.data_to_send()
    events = feed(link, "Error:checksum mismatch, Last Line: 2\nResend: 3\nok\n")
    assert of_type(events, marlin.ResendRequested)[0].line_number == 3
    assert link.data_to_send() == first
    assert link.progress().lines_acknowledged == 0
    assert not link.ready_for_job_line()
    feed(link, "ok\n")
    assert link.progress().lines_acknowledged == 1
    assert link.progress().resends == 1


def test_resend_of_a_line_no_longer_in_history_fails_the_job():
    link = connected_link(history_lines=8)
    link.start_job()
    for number in range(20):
        link.send_job_line("G1 X%d" % number)
        link.data_to_send()
        feed(link, "ok\n")
    events = feed(link, "Error:checksum mismatch, Last Line: 4\nResend: 5\nok\n")
    ended = of_type(events, marlin.JobEnded)[0]
    assert ended.outcome == marlin.FAILED_OUTCOME
    assert "no longer in the 8-line resend history" in ended.reason
    assert ended.lines_acknowledged == 20
    assert link.state == marlin.FAILED


def test_resend_of_a_line_never_sent_fails():
    link = connected_link()
    link.start_job()
    link.send_job_line("G1 X1")
    link.data_to_send()
    events = feed(link, "Resend: 99\nok\n")
    assert "only lines up to 3 were sent" in of_type(events, marlin.LinkFailed)[0].reason


def test_busy_keeps_the_link_alive_and_silence_times_out():
    link = connected_link(response_timeout=2.0, max_timeouts=2)
    link.start_job()
    link.send_job_line("M109 S200")
    sent = link.data_to_send()
    for second in range(1, 10):
        events = feed(link, "echo:busy: processing\n", float(second)) + link.tick(second + 0.5)
        assert not of_type(events, marlin.LinkFailed)
        assert link.data_to_send() == b""
    # Silence: first the oldest line goes out again, then the link gives up.
    events = link.tick(12.0)
    assert link.data_to_send() == sent
    assert of_type(events, marlin.PrinterMessage)
    link.tick(14.5)
    assert link.data_to_send() == sent
    events = link.tick(17.0)
    ended = of_type(events, marlin.JobEnded)[0]
    assert ended.outcome == marlin.FAILED_OUTCOME
    assert "no answer from the printer" in ended.reason


def test_timeout_resend_resynchronises_when_only_the_ok_was_lost():
    link = connected_link(response_timeout=1.0)
    link.start_job()
    link.send_job_line("G1 X1")
    link.data_to_send()
    link.tick(2.0)  # the ok never came: line 3 goes out again
    assert link.data_to_send() == frame(3, "G1 X1")
    # The firmware had run it; it asks for line 4, which means line 3 is done.
    feed(link, "Error:Line Number is not Last Line Number+1, Last Line: 3\nResend: 4\nok\n", 2.1)
    assert link.progress().lines_acknowledged == 1
    assert link.ready_for_job_line()


def test_fatal_error_halts_and_ends_the_job():
    link = connected_link()
    link.start_job()
    link.send_job_line("G1 X1")
    link.data_to_send()
    events = feed(link, "Error:Thermal Runaway, system stopped! Heater_ID: 0\nError:Printer halted. kill() called!\n")
    assert "Thermal Runaway" in of_type(events, marlin.PrinterHalted)[0].reason
    ended = of_type(events, marlin.JobEnded)[0]
    assert ended.outcome == marlin.FAILED_OUTCOME
    assert "Thermal Runaway" in ended.reason
    assert len(of_type(events, marlin.JobEnded)) == 1
    assert link.state == marlin.HALTED


def test_non_fatal_error_is_reported_and_the_job_goes_on():
    link = connected_link()
    link.start_job()
    link.send_job_line("G29")
    link.data_to_send()
    events = feed(link, "Error:Probe not deployed\nok\n")
    assert of_type(events, marlin.PrinterMessage)[0].level == "error"
    assert link.state == marlin.PRINTING
    assert link.progress().lines_acknowledged == 1


def test_printer_reset_mid_job():
    link = connected_link()
    link.start_job()
    link.send_job_line("G1 X1")
    link.data_to_send()
    events = feed(link, "start\necho:Marlin 2.1.2.1\n")
    ended = of_type(events, marlin.JobEnded)[0]
    assert (ended.outcome, ended.reason) == (marlin.FAILED_OUTCOME, "printer reset")
    assert of_type(events, marlin.PrinterReset)
    assert link.state == marlin.CONNECTING
    assert link.data_to_send() == b"N0 M110 N0*125\n"


def test_temperatures_from_autoreport_and_from_polling():
    link = connected_link()
    events = feed(link, " T:200.10 /205.00 B:59.90 /60.00 @:80 B@:20\n")
    assert of_type(events, marlin.Temperatures)[0].readings == {"T": (200.1, 205.0), "B": (59.9, 60.0)}
    polled = connected_link(capabilities=(), temperature_interval=2.0)
    polled.tick(0.1)
    assert polled.data_to_send() == frame(2, "M105")
    events = feed(polled, "ok T:25.0 /0.0 B:24.0 /0.0 @:0 B@:0\n", 0.2)
    assert of_type(events, marlin.Temperatures)[0].readings["B"] == (24.0, 0.0)
    polled.tick(1.0)
    assert polled.data_to_send() == b""
    polled.tick(2.2)
    assert polled.data_to_send() == frame(3, "M105")


def test_windowed_sending_follows_advanced_ok_and_the_receive_buffer():
    link = connected_link(capabilities=("ADVANCED_OK:1",), ok_after_m115="ok N1 P15 B4\n", rx_buffer_bytes=128)
    link.start_job()
    sent = 0
    while link.ready_for_job_line():
        link.send_job_line("G1 X100.000 Y100.000 E1.0000")
        sent += 1
    data = link.data_to_send()
    assert 2 <= data.count(b"\n") <= 4
    assert len(data) <= 128
    feed(link, "ok N3 P14 B3\n")
    assert link.data_to_send().count(b"\n") <= 1


def test_configured_window_without_advanced_ok():
    link = connected_link(window=3, rx_buffer_bytes=1024)
    link.start_job()
    count = 0
    while link.ready_for_job_line():
        link.send_job_line("G1 X%d" % count)
        count += 1
    assert count == 3
    assert link.data_to_send().count(b"\n") == 3


def test_stale_resend_repeats_are_ignored_in_windowed_mode():
    link = connected_link(window=4, rx_buffer_bytes=1024)
    link.start_job()
    for number in range(4):
        link.send_job_line("G1 X%d" % number)
    link.data_to_send()  # lines 3, 4, 5, 6
    events = feed(link, "ok\nError:checksum mismatch, Last Line: 3\nResend: 4\nok\n")
    assert link.data_to_send() == frame(4, "G1 X1") + frame(5, "G1 X2") + frame(6, "G1 X3")
    # Lines 5 and 6 of the first round were in flight: the firmware rejects them one by one.
    stray = "Error:Line Number is not Last Line Number+1, Last Line: 3\nResend: 4\nok\n"
    events = feed(link, stray + stray)
    assert [event.ignored for event in of_type(events, marlin.ResendRequested)] == [True, True]
    assert link.data_to_send() == b""
    feed(link, "ok\nok\nok\n")
    assert link.progress().lines_acknowledged == 4


def test_cancel_sends_the_end_sequence_after_lines_in_flight():
    link = connected_link(end_sequence=("M104 S0", "M84"))
    link.start_job()
    link.send_job_line("G1 X1")
    link.data_to_send()
    link.cancel()
    assert link.data_to_send() == b""
    feed(link, "ok\n")
    assert link.data_to_send() == frame(4, "M104 S0")
    feed(link, "ok\n")
    assert link.data_to_send() == frame(5, "M84")
    events = feed(link, "ok\n")
    ended = of_type(events, marlin.JobEnded)[0]
    assert (ended.outcome, ended.lines_acknowledged) == (marlin.CANCELLED, 1)
    assert link.state == marlin.READY


def test_emergency_stop_jumps_the_queue():
    link = connected_link()
    link.start_job()
    link.send_job_line("G1 X1")
    link.data_to_send()
    events = link.emergency_stop()
    assert link.data_to_send() == b"M112\n"
    assert link.state == marlin.HALTED
    assert of_type(events, marlin.JobEnded)[0].outcome == marlin.CANCELLED
    events = feed(link, "Error:Printer halted. kill() called!\n")
    assert not of_type(events, marlin.JobEnded)


def test_pause_holds_job_lines_and_resume_releases_them():
    link = connected_link()
    link.start_job()
    link.pause()
    assert not link.ready_for_job_line()
    link.resume()
    assert link.ready_for_job_line()


def test_progress_counts_layers_from_z_moves():
    link = connected_link()
    link.start_job()
    for command in ("G1 Z0.2", "G1 X1 E1", "G1 Z0.4", "G1 X2 E2", "G1 Z0.6 F300", "G91", "G1 Z10", "G90"):
        link.send_job_line(command)
        link.data_to_send()
        feed(link, "ok\n")
    progress = link.progress()
    assert (progress.layer, progress.z, progress.lines_acknowledged) == (3, 0.6, 8)


def test_disconnect_interrupts_the_job_at_its_last_confirmed_line():
    link = connected_link()
    link.start_job()
    for command in ("G1 X1", "G1 X2"):
        link.send_job_line(command)
        link.data_to_send()
        feed(link, "ok\n")
    link.send_job_line("G1 X3")
    events = link.connection_lost("input/output error")
    ended = of_type(events, marlin.JobEnded)[0]
    assert (ended.outcome, ended.lines_acknowledged) == (marlin.INTERRUPTED, 2)


def test_finishing_waits_for_the_last_ok():
    link = connected_link()
    link.start_job()
    link.send_job_line("G1 X1")
    link.data_to_send()
    link.finish_job()
    assert link.state == marlin.FINISHING
    events = feed(link, "ok\n")
    assert of_type(events, marlin.JobEnded)[0].outcome == marlin.DONE


def test_transcript_fed_whole_or_byte_by_byte_gives_the_same_events():
    transcript = (
        "echo:busy: processing\n T:200.00 /200.00 B:60.00 /60.00 @:0 B@:0\n"
        'Error:checksum mismatch, Last Line: 2\nResend: 3\nok\nok\necho:Unknown command: "X"\n'
    )

    def run(chunks):
        link = connected_link()
        link.start_job()
        link.send_job_line("G1 X1")
        link.data_to_send()
        events = []
        for chunk in chunks:
            events.extend(feed(link, chunk))
            link.data_to_send()
        return [repr(event) for event in events], link.progress().lines_acknowledged

    whole = run([transcript])
    bytewise = run([transcript[index] for index in range(len(transcript))])
    assert whole == bytewise
    assert whole[1] == 1
    assert "ResendRequested(line_number=3, ignored=False)" in whole[0]


def test_junk_from_the_printer_is_reported_not_fatal():
    link = connected_link(max_reply_bytes=64)
    events = link.receive_data(b"\xff\xfe\x80garbage\n", 0.0)
    assert of_type(events, marlin.PrinterMessage)[0].level == "warning"
    events = link.receive_data(b"x" * 200, 0.0)
    assert "overlong" in of_type(events, marlin.PrinterMessage)[0].text
    assert link.state == marlin.READY


def test_temperature_reports_do_not_hide_a_lost_line():
    link = connected_link(response_timeout=2.0)
    link.start_job()
    link.send_job_line("G1 X1")
    sent = link.data_to_send()
    for second in range(1, 5):
        feed(link, " T:20.00 /0.00 B:20.00 /0.00 @:0 B@:0\n", float(second))
        link.tick(float(second))
    assert link.data_to_send() == sent  # the line went out again although reports kept coming


def test_heating_reports_keep_the_link_alive():
    link = connected_link(response_timeout=2.0)
    link.start_job()
    link.send_job_line("M109 S200")
    link.data_to_send()
    for second in range(1, 8):
        feed(link, " T:%d.00 /200.00 B:20.00 /0.00 @:127 B@:0 W:?\n" % (25 * second), float(second))
        link.tick(float(second) + 0.5)
    assert link.data_to_send() == b""


def test_an_ignored_repeat_is_taken_as_real_when_nothing_follows():
    link = connected_link(window=4, rx_buffer_bytes=1024, stray_grace=1.0)
    link.start_job()
    for number in range(4):
        link.send_job_line("G1 X%d" % number)
    link.data_to_send()  # lines 3, 4, 5, 6
    feed(link, "ok\nError:checksum mismatch, Last Line: 3\nResend: 4\nok\n", 0.1)
    resent = link.data_to_send()
    events = feed(link, "Error:Line Number is not Last Line Number+1, Last Line: 3\nResend: 4\nok\n", 0.2)
    assert of_type(events, marlin.ResendRequested)[0].ignored
    link.tick(0.5)
    assert link.data_to_send() == b""
    link.tick(1.3)
    assert link.data_to_send() == resent


def test_a_job_after_a_long_idle_spell_does_not_count_the_idle_time_as_silence():
    link = connected_link(response_timeout=2.0)
    for second in range(1, 60):
        feed(link, " T:20.00 /0.00 B:20.00 /0.00 @:0 B@:0\n", float(second))
        link.tick(float(second))
    link.start_job()
    link.send_job_line("G1 X1")
    link.data_to_send()
    link.tick(60.5)
    assert link.data_to_send() == b""
    feed(link, "ok\n", 60.6)
    assert link.progress().lines_acknowledged == 1


def test_an_uncleaned_overlong_command_is_our_bug():
    link = connected_link()
    link.start_job()
    expect_raises(marlin.LocalProtocolError, link.send_job_line, "M117 " + "x" * 100)


def test_finishing_after_the_last_ok_ends_the_job_at_once():
    link = connected_link()
    link.start_job()
    link.send_job_line("G1 X1")
    link.data_to_send()
    feed(link, "ok\n")
    events = link.finish_job()
    assert of_type(events, marlin.JobEnded)[0].outcome == marlin.DONE


def test_limits_are_errors_not_silent_losses():
    expect_raises(marlin.LocalProtocolError, marlin.HostLink, 0)
    expect_raises(marlin.LocalProtocolError, marlin.HostLink, 200, 128, 256)
    link = connected_link()
    sent = 0
    try:
        for _ in range(100):
            link.send_command("M105")
            sent += 1
    except marlin.LocalProtocolError:
        pass
    assert 0 < sent < 100
