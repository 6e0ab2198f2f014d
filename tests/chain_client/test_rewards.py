"""The reward rule does what docs/rewards.md says, row by row."""

import os
import re

import pytest

from chain_client import rewards

DOC = os.path.join(os.path.dirname(__file__), "..", "..", "docs", "rewards.md")


def _examples() -> list:
    with open(DOC) as handle:
        text = handle.read().split("## Examples", 1)[1]
    rows = []
    for line in text.splitlines():
        cells = [cell.strip() for cell in line.strip().strip("|").split("|")]
        if len(cells) == 5 and re.fullmatch(r"[0-9]+", cells[2]):
            rows.append((cells[0], cells[1], int(cells[2]), None if cells[3] == "-" else int(cells[3]), int(cells[4])))
    return rows


def test_the_documented_examples_cover_every_outcome():
    assert {row[0] for row in _examples()} == {"done", "cancelled", "failed", "interrupted"}


@pytest.mark.parametrize(("outcome", "material", "seconds", "estimate", "expected"), _examples())
def test_documented_example(outcome, material, seconds, estimate, expected):
    assert rewards.reward(outcome, material, seconds, estimate) == expected


def test_amounts_read_as_tokens():
    assert rewards.text(1_100_000_000_000_000_000) == "1.1 3DP" and rewards.text(0) == "0 3DP"
