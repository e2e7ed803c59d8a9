"""Acceptance: the real PostHog Python SDK evaluates our flags locally from a live server."""

from __future__ import annotations

import time
from collections.abc import Iterator

import pytest
from posthog import Posthog

from reconciler.api import ApiSettings, create_app
from reconciler.store import Store
from tests.support.apiseed import PROD, Tokens, at, flag
from tests.support.live import serve

POLL_SECONDS = 0.5
USERS = [f"user-{i}" for i in range(2000)]


@pytest.fixture
def sdk(fresh_store: tuple[Store, Tokens]) -> Iterator[tuple[Posthog, Store]]:
    store, tokens = fresh_store
    with serve(create_app(store, settings=ApiSettings())) as url:
        # The SDK still honours `personal_api_key` (our bearer token) and says it is deprecated.
        with pytest.warns(DeprecationWarning, match="personal_api_key"):
            client = Posthog(
                "phc_production_key",
                host=url,
                personal_api_key=tokens.flags,
                poll_interval=POLL_SECONDS,
                send=False,
                feature_flags_request_timeout_seconds=5,
            )
        try:
            client.load_feature_flags()  # type: ignore[no-untyped-call]
            yield client, store
        finally:
            client.shutdown()


def share_enabled(client: Posthog, key: str) -> float:
    on = sum(
        client.evaluate_flags(user, only_evaluate_locally=True, flag_keys=[key]).is_enabled(key)
        for user in USERS
    )
    return 100 * on / len(USERS)


def stored_rollout(client: Posthog, key: str) -> float:
    flags = {f["key"]: f for f in client.feature_flags or []}
    return float(flags[key]["filters"]["groups"][0]["rollout_percentage"])


@pytest.mark.slow
def test_sdk_splits_users_as_the_stored_rollout_says_and_follows_a_ramp(sdk: tuple[Posthog, Store]) -> None:
    client, store = sdk
    assert share_enabled(client, "checkout") == pytest.approx(50, abs=3)
    assert share_enabled(client, "search") == 0  # stored inactive

    with store.transaction() as tx:  # what applying a ramp writes
        tx.put_flag_version(PROD, flag(1, "checkout", 80, version=3), at=at(120))
    written = time.monotonic()
    while stored_rollout(client, "checkout") != 80:
        assert time.monotonic() - written < POLL_SECONDS + 2, (
            "the SDK did not pick up the ramp within one poll"
        )
        time.sleep(0.05)
    assert share_enabled(client, "checkout") == pytest.approx(80, abs=3)
