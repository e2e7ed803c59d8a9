"""Fixtures shared by the whole suite: real git repositories and real databases.

PostgreSQL tests read the server URL from RECONCILER_TEST_POSTGRES_URL (a SQLAlchemy URL such
as `postgresql+psycopg://postgres@127.0.0.1:5432/postgres`). Without it they skip locally;
under CI=true a missing or unreachable server is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from pathlib import Path

import pytest

from tests.gitutil import GitRepo

# The real GitHub payloads and published API examples, copied from ../shared/fixtures with
# their licences so the suite runs from any checkout.
FIXTURES = Path(__file__).resolve().parent / "fixtures" / "shared"
POSTGRES_ENV = "RECONCILER_TEST_POSTGRES_URL"


def _postgres_admin_url() -> str:
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{POSTGRES_ENV} is not set: under CI=true the PostgreSQL tests must run")
        pytest.skip(f"{POSTGRES_ENV} not set")
    return url


@pytest.fixture
def postgres_url() -> Iterator[str]:
    """A fresh, empty PostgreSQL database for one test, dropped afterwards."""
    import sqlalchemy as sa

    admin_url = _postgres_admin_url()
    name = f"reconciler_test_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
    except sa.exc.OperationalError as err:
        admin.dispose()
        if os.environ.get("CI") == "true":
            pytest.fail(f"PostgreSQL at {admin_url} is unreachable: {err}")
        pytest.skip(f"PostgreSQL unreachable: {err}")
    url = sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
    try:
        yield url
    finally:
        with admin.connect() as conn:
            conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
        admin.dispose()


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
