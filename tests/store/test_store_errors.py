"""A store that cannot be used is the user's to fix: exit 2, a message that says what and what
to do, and never the password of the store URL."""

from __future__ import annotations

import sqlite3
from pathlib import Path

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.errors import EXIT_USAGE, mask_password
from reconciler.store import Store

PASSWORD = "s3cret-Pa55"


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, list(args))
    return result.exit_code, result.output


@pytest.mark.parametrize(
    ("url", "says"),
    [
        (f"postgresql+nodriver://app:{PASSWORD}@db.internal/flags", "names the driver 'postgresql+nodriver'"),
        (f"postgresql+psycopg2://app:{PASSWORD}@db.internal/flags", "which is not available"),
        (f"postgresql://app:{PASSWORD}@db.internal:notaport/flags", "is not a database URL"),
        (f"postgresql://app:{PASSWORD}@[::1/flags", "is not a database URL"),
        (f"post gres://app:{PASSWORD}@db.internal/flags", "is not a database URL"),
        (f"post gres://app:{PASSWORD}/with@signs@db.internal/flags", "is not a database URL"),
    ],
)
def test_an_unusable_store_url_exits_2_without_its_password(
    url: str, says: str, caplog: pytest.LogCaptureFixture
) -> None:
    code, output = run("token", "list", "--store", url)
    assert code == EXIT_USAGE, output
    assert says in output
    assert PASSWORD not in output
    assert "internal error" not in output
    assert all(PASSWORD not in r.getMessage() for r in caplog.records)


def test_an_unreachable_postgres_store_exits_2_without_its_password(postgres_url: str) -> None:
    url = sa.make_url(postgres_url).set(password=PASSWORD, database="no_such_database_here")
    code, output = run("token", "list", "--store", url.render_as_string(hide_password=False))
    assert code == EXIT_USAGE, output
    assert "cannot open the store" in output
    assert PASSWORD not in output


def _corrupt_table(path: Path, table: str) -> None:
    """Overwrite the first page of `table` with junk, leaving the schema (and the migration
    marker) readable: the store opens, and the first read of that table fails."""
    with sqlite3.connect(path) as conn:
        conn.execute("PRAGMA wal_checkpoint(TRUNCATE)")
        page_size = conn.execute("PRAGMA page_size").fetchone()[0]
        root = conn.execute("SELECT rootpage FROM sqlite_master WHERE name = ?", (table,)).fetchone()[0]
    conn.close()
    with path.open("r+b") as f:
        f.seek((root - 1) * page_size)
        f.write(b"\x07" * page_size)


def test_a_corrupt_sqlite_store_exits_2_and_says_to_restore_it(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    Store.open(db).close()
    code, _output = run(
        "token", "create", "--store", str(db), "--member", "ada", "--scope", "feature_flag:read"
    )
    assert code == 0, _output
    _corrupt_table(db, "api_tokens")

    code, output = run("token", "list", "--store", str(db))
    assert code == EXIT_USAGE, output
    assert "malformed" in output
    assert "restore it from a backup" in output


def test_a_file_that_is_no_database_exits_2(tmp_path: Path) -> None:
    db = tmp_path / "store.db"
    db.write_bytes(b"these are not the bytes of a database\n" * 200)
    code, output = run("token", "list", "--store", str(db))
    assert code == EXIT_USAGE, output
    assert "file is not a database" in output


def test_passwords_are_masked_even_where_the_url_does_not_parse() -> None:
    assert mask_password(f"'post gres://u:{PASSWORD}@h/db' is bad") == "'post gres://u:***@h/db' is bad"
    assert mask_password(f"host=h password={PASSWORD} user=u") == "host=h password=*** user=u"
    assert mask_password("postgresql://u@h/db") == "postgresql://u@h/db"
