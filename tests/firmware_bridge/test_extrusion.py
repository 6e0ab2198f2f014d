"""The filament a receipt reports: E movement of G-code, absolute and relative, resets and retractions."""

import pytest

from firmware_bridge.extrusion import ExtrusionTracker


def moved(commands) -> float:
    tracker = ExtrusionTracker()
    return sum(tracker.feed(command) for command in commands)


def test_absolute_extrusion_counts_the_distance_between_positions():
    assert moved(["G1 X10 E1.5", "G1 X20 E4", "G1 X30"]) == pytest.approx(4.0)


def test_relative_extrusion_adds_each_move():
    assert moved(["M83", "G1 X1 E0.5", "G1 X2 E0.5", "G0 X3 E1"]) == pytest.approx(2.0)


def test_g92_reset_does_not_count_as_movement():
    assert moved(["G1 E10", "G92 E0", "G1 E3", "G92 E100", "G1 E101"]) == pytest.approx(14.0)


def test_retraction_and_prime_cancel_out():
    assert moved(["G1 E5", "G1 E3", "G1 E5", "G1 E7"]) == pytest.approx(7.0)
    assert moved(["M83", "G1 E-0.8", "G1 E0.8", "G1 E2"]) == pytest.approx(2.0)


def test_g91_makes_e_relative_and_m82_makes_it_absolute_again():
    assert moved(["G91", "G1 E1", "G1 E1", "G90", "M82", "G1 E5"]) == pytest.approx(5.0)


def test_other_commands_and_bad_words_move_nothing():
    tracker = ExtrusionTracker()
    for command in ["G10", "G11", "M104 S200", "G28", "G1 Ex", "M117 E", "G1 X5 Y5"]:
        assert tracker.feed(command) == 0.0
    assert tracker.position == 0.0
