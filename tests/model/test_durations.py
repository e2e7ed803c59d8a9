"""Durations in words: what is wrong with one, and the compact form of one written otherwise."""

from __future__ import annotations

import pytest

from reconciler.model.durations import duration_problem, in_words, parse_duration


@pytest.mark.parametrize(
    ("written", "meant"),
    [
        ("2 weeks", "2w"),
        ("14days", "14d"),
        ("1 day and 12 hours", "1d12h"),
        ("72 hrs", "72h"),
        ("P14D", "14d"),
        ("P1DT12H", "1d12h"),
        ("30 mins", "30m"),
    ],
)
def test_a_duration_written_another_way_names_its_compact_form(written: str, meant: str) -> None:
    message = duration_problem(written)
    assert message.startswith(f"{written!r} is not a duration: write whole numbers each followed by a unit")
    assert f"did you mean {meant!r} ({in_words(meant)})?" in message
    with pytest.raises(ValueError, match="did you mean"):
        parse_duration(written)


@pytest.mark.parametrize("written", ["3 fortnights", "soon", "14", 14, True, None, "2 months", "P99999W"])
def test_no_compact_form_is_made_up(written: object) -> None:
    message = duration_problem(written)
    assert "is not a duration" in message and "did you mean" not in message
    assert "[0-9]" not in message  # never the regular expression


def test_durations_read_in_words() -> None:
    assert in_words("1d12h") == "1 day 12 hours"
    assert in_words("2w") == "2 weeks"
    assert in_words("1s") == "1 second"


def test_beyond_the_cap_and_zero_say_why_in_words() -> None:
    assert duration_problem("99999w").startswith("'99999w' (99999 weeks) is longer than the maximum of 3650d")
    assert duration_problem("0d") == "'0d' is a zero duration: it must be longer than nothing"
    huge = "9" * 5000 + "d"
    message = duration_problem(huge)
    assert "longer than the maximum" in message and len(message) < 200


def test_a_huge_input_is_shown_cut() -> None:
    assert len(duration_problem("x" * 100_000)) < 400
