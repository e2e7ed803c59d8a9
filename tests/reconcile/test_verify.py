"""`reconciler verify` on real stores (SQLite and PostgreSQL): a store the reconciler wrote is
clean; a flag row edited or deleted behind its back is drift, named by environment and key."""

from __future__ import annotations

import json
import time
from collections.abc import Iterator
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import sqlalchemy as sa
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.reconcile.verify import verify_store
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    """Rules, `checkout` created and ramped in production, `beta` created in staging."""
    git_repo.clock = int(time.time()) - 24 * 3600
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/001-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    pr.land(git_repo, {"changes/002-ramp.yaml": pr.ramp("ramp-checkout", "checkout", 50)})
    pr.land(git_repo, {"changes/003-beta.yaml": pr.create_flag("create-beta", "beta", environment="staging")})
    return git_repo


def reconciled(repo: GitRepo, url: str) -> Iterator[Store]:
    with Store.open(url) as opened:
        result = reconcile_once(ReconcileConfig(str(repo.path)), opened)
        assert result.applied == 3
        yield opened


@pytest.fixture
def reconciled_store(repo: GitRepo, store_url: str) -> Iterator[Store]:
    """The reconciled store, on SQLite and on PostgreSQL."""
    yield from reconciled(repo, store_url)


@pytest.fixture
def sqlite_url(tmp_path: Path) -> str:
    return f"sqlite:///{tmp_path / 'live.db'}"


@pytest.fixture
def sqlite_store(repo: GitRepo, sqlite_url: str) -> Iterator[Store]:
    """The reconciled store on SQLite only, for what does not depend on the database."""
    yield from reconciled(repo, sqlite_url)


def edit_flags(store_url: str, statement: str, **params: object) -> None:
    """Change the flags table directly, as someone with database access would."""
    engine = sa.create_engine(store_url)
    try:
        with engine.begin() as conn:
            conn.execute(sa.text(statement), params)
    finally:
        engine.dispose()


def flag_data(store_url: str, key: str) -> dict[str, Any]:
    engine = sa.create_engine(store_url)
    try:
        with engine.connect() as conn:
            data = conn.execute(sa.text("SELECT data FROM flags WHERE key = :k"), {"k": key}).scalar_one()
    finally:
        engine.dispose()
    return json.loads(data) if isinstance(data, str) else dict(data)


def verify_cli(repo: GitRepo, store_url: str, *extra: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["verify", "--repo", str(repo.path), "--store", store_url, *extra])
    return result.exit_code, result.output


def test_a_store_the_reconciler_wrote_is_clean(
    repo: GitRepo, reconciled_store: Store, store_url: str
) -> None:
    report = verify_store(reconciled_store, ReconcileConfig(str(repo.path)))

    assert report.clean
    assert report.flags_checked == 2
    assert report.replayed_to == repo.head()
    code, output = verify_cli(repo, store_url)
    assert code == 0
    assert "clean" in output


def test_a_flag_row_edited_in_the_database_is_drift(
    repo: GitRepo, reconciled_store: Store, store_url: str
) -> None:
    data = flag_data(store_url, "checkout")
    data["filters"]["groups"][0]["rollout_percentage"] = 100
    data["active"] = False
    edit_flags(store_url, "UPDATE flags SET data = :d WHERE key = 'checkout'", d=json.dumps(data))

    report = verify_store(reconciled_store, ReconcileConfig(str(repo.path)))

    [drift] = report.drift
    assert (drift.environment, drift.flag, drift.kind) == ("production", "checkout", "changed")
    assert {(c.field, c.before, c.after) for c in drift.fields} == {
        ("active", True, False),
        ("filters.groups[0].rollout_percentage", 50, 100),
    }
    code, output = verify_cli(repo, store_url)
    assert code == 1
    assert "production/checkout: " in output
    assert "filters.groups[0].rollout_percentage: expected 50.0, store has 100" in output


def test_a_deleted_flag_row_is_drift(repo: GitRepo, reconciled_store: Store, store_url: str) -> None:
    edit_flags(store_url, "DELETE FROM flag_versions WHERE key = 'beta'")
    edit_flags(store_url, "DELETE FROM flags WHERE key = 'beta'")

    code, output = verify_cli(repo, store_url, "--format", "json")

    assert code == 1
    report = json.loads(output)
    assert report["clean"] is False
    assert [(d["environment"], d["flag"], d["kind"]) for d in report["drift"]] == [
        ("staging", "beta", "missing")
    ]


def test_a_row_soft_deleted_behind_the_reconcilers_back_is_drift(
    repo: GitRepo, sqlite_store: Store, sqlite_url: str
) -> None:
    edit_flags(sqlite_url, "UPDATE flags SET deleted = :t WHERE key = 'checkout'", t=True)

    [drift] = verify_store(sqlite_store, ReconcileConfig(str(repo.path))).drift

    assert (drift.flag, [(c.field, c.before, c.after) for c in drift.fields]) == (
        "checkout",
        [("deleted", False, True)],
    )


def test_a_flag_no_change_request_created_is_drift(
    repo: GitRepo, sqlite_store: Store, sqlite_url: str
) -> None:
    data = flag_data(sqlite_url, "beta") | {"key": "intruder", "id": 999}
    edit_flags(
        sqlite_url,
        "INSERT INTO flags (id, environment_id, key, version, deleted, data, created_at, updated_at) "
        "VALUES (999, 2, 'intruder', 1, :f, :d, :at, :at)",
        f=False,
        d=json.dumps(data),
        at=datetime.now(UTC).replace(tzinfo=None),
    )

    [drift] = verify_store(sqlite_store, ReconcileConfig(str(repo.path))).drift

    assert (drift.environment, drift.flag, drift.kind) == ("staging", "intruder", "unexpected")


def test_scheduled_changes_the_store_applied_are_replayed_too(git_repo: GitRepo, tmp_path: Path) -> None:
    git_repo.clock = int(time.time()) - 24 * 3600
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/001-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    due = datetime.now(UTC) + timedelta(hours=1)
    pr.land(
        git_repo, {"changes/002-ramp.yaml": pr.ramp("ramp-later", "checkout", 60, execute_at=due.isoformat())}
    )
    with Store.open(tmp_path / "live.db") as store:
        reconcile_once(ReconcileConfig(str(git_repo.path)), store)  # lands it, not yet due
        later = reconcile_once(ReconcileConfig(str(git_repo.path)), store, now=due + timedelta(minutes=1))
        assert later.applied == 1

        report = verify_store(store, ReconcileConfig(str(git_repo.path)))

    assert report.clean, [d.describe() for d in report.drift]


def test_an_empty_store_is_clean(git_repo: GitRepo, tmp_path: Path) -> None:
    pr.bootstrap(git_repo)
    with Store.open(tmp_path / "empty.db") as store:
        report = verify_store(store, ReconcileConfig(str(git_repo.path)))

    assert report.clean and report.replayed_to is None and report.flags_checked == 0


def test_verify_needs_the_repository_the_store_follows(
    repo: GitRepo, sqlite_store: Store, sqlite_url: str, tmp_path: Path
) -> None:
    other = GitRepo.init(tmp_path / "other")
    other.commit("unrelated")

    missing_code, missing = verify_cli(GitRepo(tmp_path / "nowhere"), sqlite_url)
    other_code, unrelated = verify_cli(other, sqlite_url)

    assert missing_code == 2 and "nowhere is not" in missing
    assert other_code == 2 and "names no commit" in unrelated
