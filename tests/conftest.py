"""Fixtures shared by the whole suite: real git repositories and real databases.

PostgreSQL tests read the server URL from RECONCILER_TEST_POSTGRES_URL (a SQLAlchemy URL such
as `postgresql+psycopg://postgres@127.0.0.1:5432/postgres`). Without it they skip locally;
under CI=true a missing or unreachable server is a failure, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
from fastapi import FastAPI

from reconciler.api import create_app
from reconciler.store import Store
from tests.support.apiclient import SETTINGS, Client
from tests.support.apiseed import Tokens, seed
from tests.support.gitutil import GitRepo
from tests.support.paths import FIXTURES
from tests.support.pgutil import postgres_admin_url, temporary_database


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    admin_url = postgres_admin_url()
    try:
        with temporary_database(admin_url) as url:
            yield url
    except sa.exc.OperationalError as err:
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {admin_url} is unreachable: {err}")
        pytest.skip(f"PostgreSQL unreachable: {err}")


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """The same test on an SQLite file and on a fresh PostgreSQL database."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("postgres_url")
    return url


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """An empty git repository with pinned identities and dates, on branch `main`."""
    return GitRepo.init(tmp_path / "policy-repo")


@pytest.fixture
def shared_fixtures() -> Path:
    """`../shared/fixtures`: real GitHub payloads and published API example objects."""
    return FIXTURES


# --- the API over a seeded store ------------------------------------------------------------


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




@pytest.fixture(scope="session")
def app(seeded: tuple[Store, Tokens]) -> FastAPI:
    """The app over the shared seeded store (building a FastAPI app takes half a second)."""
    return create_app(seeded[0], settings=SETTINGS)


@pytest.fixture
def client(app: FastAPI, tokens: Tokens) -> Iterator[Client]:
    c = Client(app, tokens.full)
    yield c
    c.close()
