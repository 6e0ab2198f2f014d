"""The G-code's own time estimate: move length over feed rate, modal positioning, dwells."""

import io

from firmware_bridge import gcode, gcode_time

SAMPLE = b"""; a square at 3000 mm/min, a dwell, relative moves
G90
G1 X0 Y0 F3000
G1 X100 Y0
G1 X100 Y100 E5
G4 P500
G4 S2
G91
G1 Z10 F600
M83
G1 E30 F1800
; trailing comment
"""


def test_the_estimate_adds_moves_and_dwells():
    result = gcode_time.estimate(gcode.iter_commands(io.BytesIO(SAMPLE)))
    # 100 mm + 100 mm at 50 mm/s = 4 s; dwells 2.5 s; 10 mm at 10 mm/s = 1 s; 30 mm of E at 30 mm/s = 1 s
    assert round(result.seconds, 6) == 8.5
    assert result.last_line == 11  # the last command's source line, not the trailing comment


def test_garbage_words_are_ignored_not_fatal():
    result = gcode_time.estimate([(1, "G1 Xabc F0"), (2, "G1 X60 F-5"), (3, "G92 E0"), (4, "M104 S200")])
    assert result.seconds == 60 * 60  # F clamps to 1 mm/min: 60 mm take an hour
