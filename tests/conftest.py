"""Fixtures shared by the whole suite: real git repositories, real databases, the fake GitHub.

PostgreSQL tests read the server URL from RECONCILER_TEST_POSTGRES_URL (a SQLAlchemy URL such
as `postgresql+psycopg://postgres@127.0.0.1:5432/postgres`). Without it they skip locally;
under CI=true a missing or unreachable server is a failure, never a skip.

`store_url` is a database nobody has touched (migrations start from it); `store` is an empty,
migrated store. Creating a PostgreSQL database costs far more than most tests themselves, so
the PostgreSQL side of `store` shares one migrated database per session and empties every
table before each test.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import AbstractContextManager
from pathlib import Path

import pytest
import sqlalchemy as sa
from fastapi import FastAPI

from reconciler.api import create_app
from reconciler.store import Store
from reconciler.store.schema import metadata
from tests.support.apiclient import SETTINGS, Client
from tests.support.apiseed import Tokens, seed
from tests.support.fakegithub import FakeGitHub
from tests.support.ghscenario import PullRequestScenario
from tests.support.gitutil import GitRepo
from tests.support.pgutil import postgres_admin_url, temporary_database


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
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


@pytest.fixture(scope="session")
def shared_postgres_url() -> Iterator[str]:
    """One migrated PostgreSQL database for the session, dropped at the end."""
    with temporary_database(postgres_admin_url(), "reconciler_store") as url:
        Store.open(url).close()
        yield url


@pytest.fixture(params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def clean_store_url(request: pytest.FixtureRequest, tmp_path: Path) -> str:
    """An empty, migrated store: a fresh SQLite file, or the shared PostgreSQL database emptied."""
    if request.param == "sqlite":
        return f"sqlite:///{tmp_path / 'store.db'}"
    url: str = request.getfixturevalue("shared_postgres_url")
    engine = sa.create_engine(url)
    with engine.begin() as conn:  # DELETE, not TRUNCATE: on tiny tables it is twenty times faster
        for table in reversed(metadata.sorted_tables):
            conn.execute(table.delete())
    engine.dispose()
    return url


@pytest.fixture
def store(clean_store_url: str) -> Iterator[Store]:
    """An empty, migrated store of its own, on SQLite and on PostgreSQL."""
    s = Store.open(clean_store_url)
    yield s
    s.close()


@pytest.fixture
def sqlite_store(tmp_path: Path) -> Iterator[Store]:
    """An empty, migrated store on an SQLite file only."""
    with Store.open(f"sqlite:///{tmp_path / 'store.db'}") as opened:
        yield opened


@pytest.fixture
def git_repo(tmp_path: Path) -> GitRepo:
    """An empty git repository with pinned identities and dates, on branch `main`."""
    return GitRepo.init(tmp_path / "policy-repo")


@pytest.fixture
def quorum() -> int:
    """How many approvals the scenario's production rollouts need; a module overrides it."""
    return 1


@pytest.fixture
def scenario(git_repo: GitRepo, quorum: int) -> PullRequestScenario:
    """A bootstrapped policy repository whose approvals come from its fake GitHub."""
    return PullRequestScenario.create(git_repo, quorum=quorum)


@pytest.fixture
def github() -> FakeGitHub:
    """The fake GitHub serving one repository, in process."""
    return FakeGitHub("acme/flags")


# --- the API over a seeded store ------------------------------------------------------------


@pytest.fixture(scope="session", params=["sqlite", pytest.param("postgres", marks=pytest.mark.postgres)])
def seeded(
    request: pytest.FixtureRequest, tmp_path_factory: pytest.TempPathFactory
) -> Iterator[tuple[Store, Tokens]]:
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
def seeded_store(seeded: tuple[Store, Tokens]) -> Store:
    """The seeded store the API tests share."""
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
