"""The API keeps serving while PostgreSQL hangs, and says so when it is gone.

A real uvicorn server talks to PostgreSQL through a TCP proxy that can stop forwarding
(the database hangs) or drop every connection (the database is gone).
"""

from __future__ import annotations

import threading
from collections.abc import Iterator

import httpx
import pytest

from reconciler.api import create_app
from reconciler.store import Store
from tests.api.test_bounds import PARAMS, get_routes
from tests.support.apiclient import SETTINGS
from tests.support.apiseed import Tokens, seed
from tests.support.live import serve
from tests.support.tcpproxy import Proxy, proxied

pytestmark = pytest.mark.postgres
ANSWER_WITHIN = 10.0  # a liveness check, not a latency target: generous on a loaded machine
NO_STORE = {"/healthz", "/metrics", "/openapi.json", "/docs", "/docs/oauth2-redirect", "/redoc"}


@pytest.fixture
def through_proxy(postgres_url: str) -> Iterator[tuple[Proxy, Store, Tokens]]:
    with Store.open(postgres_url) as direct:
        tokens = seed(direct)
    with proxied(postgres_url) as (proxy, url), Store.open(url) as store:
        yield proxy, store, tokens


def store_routes(app_routes: Iterator[str]) -> list[str]:
    """Every GET path that reads the store, with its parameters filled in."""
    paths = sorted({template.format(**PARAMS) for template in app_routes} - NO_STORE)
    return [
        p + ("?token=phc_production_key" if "definitions" in p or "local_evaluation" in p else "")
        for p in paths
    ]


def test_healthz_and_metrics_answer_while_every_store_route_hangs(
    through_proxy: tuple[Proxy, Store, Tokens],
) -> None:
    proxy, store, tokens = through_proxy
    app = create_app(store, settings=SETTINGS)
    paths = store_routes(get_routes(app))
    assert len(paths) > 20
    answers: dict[str, int | str] = {}
    with serve(app) as base:
        headers = {"Authorization": f"Bearer {tokens.full}"}
        assert (
            httpx.get(f"{base}/api/environments/1/change_requests/", headers=headers, timeout=30).status_code
            == 200
        )

        def ask(path: str) -> None:
            try:
                answers[path] = httpx.get(base + path, headers=headers, timeout=120).status_code
            except httpx.HTTPError as err:
                answers[path] = repr(err)

        proxy.pause()
        stuck = [threading.Thread(target=ask, args=(path,)) for path in paths]
        for thread in stuck:
            thread.start()
        try:
            assert proxy.held.wait(30), "no request reached the database"
            health = httpx.get(f"{base}/healthz", timeout=ANSWER_WITHIN)
            assert health.status_code == 200
            assert httpx.head(f"{base}/healthz", timeout=ANSWER_WITHIN).status_code == 200
            assert httpx.get(f"{base}/metrics", timeout=ANSWER_WITHIN).status_code == 200
            assert len(answers) < len(paths)  # the store routes were still waiting meanwhile
        finally:
            proxy.resume()
            for thread in stuck:
                thread.join(120)
    assert set(answers) == set(paths)
    # Answered once the database is back; a request that waited too long for a connection
    # may be a 503 (the store was unavailable), never an internal error.
    assert all(isinstance(code, int) and code != 500 for code in answers.values()), answers


def test_with_the_database_gone_readyz_and_status_agree(through_proxy: tuple[Proxy, Store, Tokens]) -> None:
    proxy, store, tokens = through_proxy
    app = create_app(store, settings=SETTINGS, status_provider=lambda: {"failing": False, "last_error": None})
    headers = {"Authorization": f"Bearer {tokens.full}"}
    with serve(app) as base:
        assert httpx.get(f"{base}/readyz", timeout=30).status_code == 200
        assert httpx.get(f"{base}/api/reconciler/status", headers=headers, timeout=30).status_code == 200
        proxy.cut()
        assert httpx.get(f"{base}/healthz", timeout=ANSWER_WITHIN).status_code == 200
        ready = httpx.get(f"{base}/readyz", timeout=60)
        status = httpx.get(f"{base}/api/reconciler/status", headers=headers, timeout=60)
        assert (ready.status_code, status.status_code) == (503, 503), (ready.text, status.text)
        assert "store" in ready.json()["detail"] and "store" in status.json()["detail"]
