"""Temporary PostgreSQL databases for tests and benchmarks.

The server comes from RECONCILER_TEST_POSTGRES_URL. Without it PostgreSQL tests skip locally;
under CI=true a missing or unreachable server is a failure, never a skip.
"""

from __future__ import annotations

import os
import uuid
from collections.abc import Iterator
from contextlib import contextmanager

import pytest
import sqlalchemy as sa

POSTGRES_ENV = "RECONCILER_TEST_POSTGRES_URL"


def postgres_admin_url() -> str:
    """The server to create test databases on; skips (or fails under CI) without one."""
    url = os.environ.get(POSTGRES_ENV)
    if not url:
        if os.environ.get("CI") == "true":
            pytest.fail(f"{POSTGRES_ENV} is not set: under CI=true the PostgreSQL tests must run")
        pytest.skip(f"{POSTGRES_ENV} not set")
    return url


@contextmanager
def temporary_database(admin_url: str, prefix: str = "reconciler_test") -> Iterator[str]:
    """A new, empty database on the server of `admin_url`, dropped afterwards; yields its URL."""
    name = f"{prefix}_{uuid.uuid4().hex[:12]}"
    admin = sa.create_engine(admin_url, isolation_level="AUTOCOMMIT")
    try:
        with admin.connect() as conn:
            conn.execute(sa.text(f'CREATE DATABASE "{name}"'))
        try:
            yield sa.engine.make_url(admin_url).set(database=name).render_as_string(hide_password=False)
        finally:
            with admin.connect() as conn:
                conn.execute(sa.text(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)'))
    finally:
        admin.dispose()
