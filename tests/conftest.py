"""Fixtures shared by the whole suite: real git repositories and real databases.

PostgreSQL tests read the server URL from RECONCILER_TEST_POSTGRES_URL (a SQLAlchemy URL such
as `postgresql+psycopg://postgres@127.0.0.1:5432/postgres`). Without it they skip locally;
under CI=true a missing or unreachable server is a failure, never a skip.
"""

from __future__ import annotations

import os
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitutil import GitRepo
from tests.pgutil import postgres_admin_url, temporary_database

# The real GitHub payloads and published API examples, copied from ../shared/fixtures with
# their licences so the suite runs from any checkout.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "shared"


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
