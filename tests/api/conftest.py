"""Fixtures for the API tests: a seeded store (SQLite and PostgreSQL) and a client that talks
to the real app through `httpx.ASGITransport`."""

from __future__ import annotations

import asyncio
from collections.abc import Iterator
from contextlib import AbstractContextManager
from typing import Any

import httpx
import pytest
from fastapi import FastAPI

from reconciler.api import ApiSettings, create_app
from reconciler.store import Store
from tests.api.seed import Tokens, seed
from tests.pgutil import postgres_admin_url, temporary_database


class Client:
    """A synchronous face on an `httpx.AsyncClient` over the ASGI app, one event loop per test."""

    def __init__(self, app: FastAPI, token: str | None, *, raise_app_exceptions: bool = True):
        self.app = app
        self.token = token
        self._runner = asyncio.Runner()
        transport = httpx.ASGITransport(app=app, raise_app_exceptions=raise_app_exceptions)
        self._client = httpx.AsyncClient(transport=transport, base_url="http://testserver")

    def request(self, method: str, url: str, *, token: str | None = "", **kw: Any) -> httpx.Response:
        token = self.token if token == "" else token
        headers = dict(kw.pop("headers", {}) or {})
        if token is not None:
            headers.setdefault("Authorization", f"Bearer {token}")
        return self._runner.run(self._client.request(method, url, headers=headers, **kw))

    def get(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("GET", url, **kw)

    def post(self, url: str, **kw: Any) -> httpx.Response:
        return self.request("POST", url, **kw)

    def close(self) -> None:
        self._runner.run(self._client.aclose())
        self._runner.close()


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded(request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory) -> Iterator[tuple[Store, Tokens]]:
    """One seeded store per backend for every test that only reads (opening and migrating a
    database per test would dominate the suite's time)."""
    if request.param == "sqlite":
        url = f"sqlite:///{tmp_path_factory.mktemp('api') / 'store.db'}"
        s = Store.open(url)
        yield s, seed(s)
        s.close()
        return
    with postgres_database() as url:
        s = Store.open(url)
        yield s, seed(s)
        s.close()


def postgres_database() -> AbstractContextManager[str]:
    return temporary_database(postgres_admin_url(), "reconciler_api")


@pytest.fixture
def store(seeded: tuple[Store, Tokens]) -> Store:
    return seeded[0]


@pytest.fixture
def tokens(seeded: tuple[Store, Tokens]) -> Tokens:
    return seeded[1]


@pytest.fixture
def fresh_store(store_url: str) -> Iterator[tuple[Store, Tokens]]:
    """A store of its own, for tests that write to it."""
    s = Store.open(store_url)
    yield s, seed(s)
    s.close()


SETTINGS = ApiSettings(repository="acme/flags", webhook_secret="It's a Secret to Everybody")


@pytest.fixture(scope="session")
def app(seeded: tuple[Store, Tokens]) -> FastAPI:
    """The app over the shared seeded store (building a FastAPI app takes half a second)."""
    return create_app(seeded[0], settings=SETTINGS)


@pytest.fixture
def client(app: FastAPI, tokens: Tokens) -> Iterator[Client]:
    c = Client(app, tokens.full)
    yield c
    c.close()
