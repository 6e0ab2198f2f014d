"""Property tests: whatever the line noise, busy spells and window, every line arrives once and in order."""

import os

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from firmware_bridge import marlin
from firmware_bridge.virtual_marlin import PrinterOptions
from tests.firmware_bridge.loopback import Loopback

COMMANDS = ["G1 X%d.%03d Y%d E%d.5" % (index % 200, index % 997, index % 50, index) for index in range(300)]


@settings(
    max_examples=int(os.environ.get("LINK_PROPERTY_EXAMPLES", "80")),
    deadline=None,
    suppress_health_check=[HealthCheck.too_slow],
)
@given(
    window=st.sampled_from([None, 1, 2, 3, 4, 8]),
    rx_buffer=st.sampled_from([128, 256, 1024]),
    bufsize=st.sampled_from([1, 4, 16]),
    checksum_error_rate=st.sampled_from([0.0, 0.01, 0.05, 0.2]),
    drop_byte_rate=st.sampled_from([0.0, 0.02, 0.1]),
    busy_every=st.sampled_from([0, 7, 50]),
    move_time_scale=st.sampled_from([0.0, 0.0005]),
    advanced_ok=st.booleans(),
    seed=st.integers(0, 2**32 - 1),
    count=st.integers(1, len(COMMANDS)),
)
def test_every_line_exactly_once_in_order(
    window,
    rx_buffer,
    bufsize,
    checksum_error_rate,
    drop_byte_rate,
    busy_every,
    move_time_scale,
    advanced_ok,
    seed,
    count,
):
    options = PrinterOptions(
        rx_buffer=rx_buffer,
        bufsize=bufsize,
        checksum_error_rate=checksum_error_rate,
        drop_byte_rate=drop_byte_rate,
        busy_every=busy_every,
        busy_seconds=0.01,
        busy_interval=0.002,
        move_time_scale=move_time_scale,
        advanced_ok=advanced_ok,
        heat_rate=1e6,
    )
    link = marlin.HostLink(window=window, rx_buffer_bytes=rx_buffer, response_timeout=0.5, max_timeouts=10)
    loop = Loopback(link, options, seed=seed)
    loop.connect()
    ended = loop.print_job(COMMANDS[:count])
    assert (ended.outcome, ended.reason) == (marlin.DONE, "all lines confirmed by the printer")
    assert loop.recorded == COMMANDS[:count]
    assert ended.lines_acknowledged == count
    assert loop.printer.rx_overflows == 0


@settings(max_examples=40, deadline=None)
@given(script=st.lists(st.sampled_from(["ok", "busy", "resend", "checksum-error", "temperature", "echo"]), max_size=60))
def test_random_printer_chatter_never_duplicates_or_skips_a_line(script):
    """Scripted replies in random order: the link never sends a number twice with different content,
    never sends a line number out of order after a resend, and never acknowledges more than it sent."""
    link = marlin.HostLink(window=4, rx_buffer_bytes=1024)
    loop = Loopback(link, PrinterOptions(heat_rate=1e6))
    loop.connect()
    while link._in_flight or link._control:  # let the M155 that follows the handshake complete
        loop.exchange()
    link.start_job()
    sent = {}
    base = link._next_line
    for reply in script:
        while link.ready_for_job_line():
            link.send_job_line("G1 X%d" % len(sent))
            sent[len(sent)] = True
        for line in link.data_to_send().decode().splitlines():
            number, _, rest = line[1:].partition(" ")
            command = rest.rpartition("*")[0]
            assert command == "G1 X%d" % (int(number) - base)
        if reply in ("resend", "checksum-error") and not link._in_flight:
            continue  # a firmware asks again only for a line it has been sent
        oldest = link._in_flight[0] if link._in_flight else base
        text = {
            "ok": "ok\n",
            "busy": "echo:busy: processing\n",
            "resend": "Error:checksum mismatch, Last Line: %d\nResend: %d\nok\n" % (oldest - 1, oldest),
            "checksum-error": "Error:No Checksum with line number, Last Line: %d\nResend: %d\nok\n"
            % (oldest - 1, oldest),
            "temperature": " T:20.00 /0.00 B:20.00 /0.00 @:0 B@:0\n",
            "echo": 'echo:Unknown command: "X"\n',
        }[reply]
        link.receive_data(text.encode(), 0.0)
        assert link.state == marlin.PRINTING
        assert link.progress().lines_acknowledged <= len(sent)
