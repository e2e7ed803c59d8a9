""" "Did you mean …": only ever a candidate name, close enough, never for pasted text."""

from __future__ import annotations

from hypothesis import given
from hypothesis import strategies as st

from reconciler.model.suggest import MAX_TYPED, Names, closest, did_you_mean

NAMES = ["production", "staging", "release-managers", "sre", "alice", "bob"]


def test_a_typo_names_the_closest_known_name() -> None:
    assert closest("prodution", NAMES) == "production"
    assert closest("release-manager", NAMES) == "release-managers"
    assert did_you_mean("alise", NAMES) == ": did you mean 'alice'?"


def test_a_name_that_differs_only_in_case_is_suggested_as_declared() -> None:
    assert closest("Production", NAMES) == "production"


def test_nothing_close_and_pasted_text_get_no_suggestion() -> None:
    assert closest("kubernetes", NAMES) is None
    assert did_you_mean("kubernetes", NAMES) == ""
    assert closest("production" * 20, NAMES) is None  # longer than any name: pasted, not a typo
    assert closest("p" * (MAX_TYPED + 1), ["p" * (MAX_TYPED + 1)]) is None
    assert closest("", NAMES) is None


def test_a_known_name_gets_no_suggestion() -> None:
    assert closest("staging", ["staging", "stagin"]) is None


def test_typos_of_a_character_or_two_are_found_and_further_names_are_not() -> None:
    keys = ["checkout-v2", "search-ranking", "new-onboarding"]
    assert closest("checkout-v3", keys) == "checkout-v2"  # changed
    assert closest("serach-ranking", keys) == "search-ranking"  # swapped
    assert closest("new-onboardin", keys) == "new-onboarding"  # left out
    assert closest("checkout", keys) is None  # a different flag, not a typo


def test_many_names_and_many_questions_stay_cheap() -> None:
    names = Names(f"flag-{i:05d}" for i in range(20_000))
    match = names.closest("flag-0001x")
    assert match is not None and match.startswith("flag-") and len(match) == 10
    for i in range(20_000):  # each question looks at a handful of names, not twenty thousand
        names.closest(f"galf-{i:05d}")


@given(st.text(max_size=30), st.lists(st.text(max_size=20), max_size=20))
def test_a_suggestion_is_always_one_of_the_candidates(typed: str, candidates: list[str]) -> None:
    match = closest(typed, candidates)
    assert match is None or match in candidates
