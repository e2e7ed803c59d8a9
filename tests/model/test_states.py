"""The named sets of states are made of real states, and each word list agrees with its type."""

from __future__ import annotations

from typing import get_args

from reconciler.model import states


def test_the_sets_of_states_hold_change_request_states_only() -> None:
    every = set(states.CHANGE_REQUEST_STATES)
    for named in (
        "LIVE_STATES",
        "REFUSED_STATES",
        "APPROVED_STATES",
        "LANDED_STATES",
        "TERMINAL_STATES",
        "DECIDED_STATES",
    ):
        assert set(getattr(states, named)) <= every, named


def test_live_and_landed_states_split_every_state() -> None:
    assert set(states.LIVE_STATES) | set(states.LANDED_STATES) == set(states.CHANGE_REQUEST_STATES)
    assert not set(states.LIVE_STATES) & set(states.LANDED_STATES)


def test_every_membership_level_has_a_name() -> None:
    assert set(states.LEVEL_NAMES) == set(get_args(states.MembershipLevel))


def test_policy_actions_are_the_flag_actions_and_the_meta_actions() -> None:
    assert get_args(states.PolicyAction) == states.FLAG_ACTIONS + states.META_ACTIONS
    assert len(states.FLAG_ACTIONS) == 6
