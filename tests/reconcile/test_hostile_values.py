"""Values at the edges: what validates applies on both stores, what cannot apply does not validate.

Each hostile file below once validated and then made every later pass fail, wedging the branch
(even when the file was never approved). Now `validate` reports it with file and line, and the
pass records it `failed` and goes on: a good change landed after it still applies.
"""

from __future__ import annotations

import json
import shutil
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.errors import StoreError
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.store import Store
from reconciler.store.records import ChangeRequestFilter
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.storedata import record

PRODUCTION = 1
HUGE = 2**70  # beyond 64 bits
BASE = Path(__file__).resolve().parents[1] / "fixtures" / "repos" / "base"


def run(repo: GitRepo, store: Store) -> None:
    reconcile_once(ReconcileConfig(repo=str(repo.path)), store)


def rollout(store: Store, key: str = "checkout") -> float | None:
    flag = store.get_flag(PRODUCTION, key)
    assert flag is not None
    return flag.flag.filters.groups[0].rollout_percentage


def update(*instructions: dict[str, Any], **spec: Any) -> dict[str, Any]:
    return pr.change("hostile", "feature_flag.update", "checkout", instructions=list(instructions), **spec)


UPDATE_HEAD = """apiVersion: reconciler/v1
kind: ChangeRequest
metadata: {name: hostile}
spec:
  action_key: feature_flag.update
  resource_id: checkout
  environment: production
"""

HOSTILE_CHANGES: dict[str, tuple[dict[str, Any] | str, str]] = {
    "base_version beyond 64 bits": (
        pr.ramp("hostile", "checkout", 10, base_version=HUGE),
        "/spec/base_version",
    ),
    "base_version beyond the store's integer": (
        pr.ramp("hostile", "checkout", 10, base_version=2**40),
        "/spec/base_version",
    ),
    "group index beyond 64 bits": (
        update({"kind": "updateRollout", "group": HUGE, "percentage": 5}),
        "/spec/instructions/0/group",
    ),
    "payload beyond 64 bits": (
        update({"kind": "updatePayload", "variant": "true", "payload": {"n": [HUGE]}}),
        "/spec/instructions/0/payload/n/0",
    ),
    "payload beyond 2^53": (
        update({"kind": "updatePayload", "variant": "true", "payload": 2**53}),
        "/spec/instructions/0/payload",
    ),
    "property value beyond 64 bits": (
        update({"kind": "addGroup", "properties": [{"key": "plan", "value": -HUGE}]}),
        "/spec/instructions/0/properties/0/value",
    ),
    "NUL in a description (PostgreSQL text cannot hold it)": (
        {**pr.ramp("hostile", "checkout", 10), "metadata": {"name": "hostile", "description": "a\0b"}},
        "/metadata/description",
    ),
    "NUL in a payload's property name": (
        update({"kind": "updatePayload", "variant": "true", "payload": {"k\0": {"x": "v\0"}}}),
        "/spec/instructions/0/payload",
    ),
    "execute_at without a time zone": (
        UPDATE_HEAD + "  instructions: [{kind: turnFlagOn}]\n  execute_at: 2020-01-01T00:00:00\n",
        "/spec/execute_at",
    ),
    "NaN payload": (
        UPDATE_HEAD + "  instructions: [{kind: updatePayload, variant: 'true', payload: .nan}]\n",
        "/spec/instructions/0/payload",
    ),
    "infinite payload": (
        UPDATE_HEAD + "  instructions: [{kind: updatePayload, variant: 'true', payload: {x: [-.inf]}}]\n",
        "/spec/instructions/0/payload/x/0",
    ),
}


@pytest.mark.parametrize("case", list(HOSTILE_CHANGES))
def test_a_hostile_change_fails_alone_and_later_changes_apply(
    git_repo: GitRepo, store: Store, case: str
) -> None:
    content, pointer = HOSTILE_CHANGES[case]
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/a-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    pr.land(git_repo, {"changes/b-hostile.yaml": content})
    pr.land(git_repo, {"changes/c-good.yaml": pr.ramp("good", "checkout", 42)})

    run(git_repo, store)

    hostile = record(store, "changes/b-hostile.yaml")
    assert (hostile.state, hostile.validation_status) == ("failed", "invalid")
    errors = hostile.validation_errors or []
    assert [e["pointer"] for e in errors] == [pointer]
    assert record(store, "changes/c-good.yaml").state == "applied"
    flag = store.get_flag(PRODUCTION, "checkout")
    assert flag is not None and flag.flag.filters.payloads == {}  # nothing was stored as null
    assert rollout(store) == 42
    assert store.position().last_applied_commit == git_repo.head()


def environments(*entries: tuple[str, int, str]) -> list[dict[str, Any]]:
    return [{"key": key, "id": id_, "name": key.title(), "api_token": token} for key, id_, token in entries]


HOSTILE_PROJECTS = {
    "environment id beyond 64 bits": environments(("production", 1, "a"), ("staging", 2**63, "b")),
    "environment id beyond the store's integer": environments(
        ("production", 1, "a"), ("staging", 2**31, "b")
    ),
    "duplicate environment key": environments(("production", 1, "a"), ("production", 2, "b")),
    "duplicate environment id": environments(("production", 1, "a"), ("staging", 1, "b")),
    "duplicate api_token": environments(("production", 1, "a"), ("staging", 2, "a")),
}


@pytest.mark.parametrize("case", list(HOSTILE_PROJECTS))
def test_an_approved_hostile_project_is_rejected_and_later_changes_apply(
    git_repo: GitRepo, store: Store, case: str
) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/a-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    project = pr.project()
    project["spec"]["environments"] = HOSTILE_PROJECTS[case]
    pr.land(git_repo, {"reconciler.yaml": project}, approvers=("bob", "erin"))  # meets policy-changes
    pr.land(git_repo, {"changes/c-good.yaml": pr.ramp("good", "checkout", 42)})

    run(git_repo, store)

    assert rollout(store) == 42
    assert [(e.key, e.id) for e in store.list_environments()] == [("production", 1), ("staging", 2)]
    _count, events = store.list_audit(limit=100)
    rejected = [e for e in events if e.verb == "rules.change_rejected"]
    assert len(rejected) == 1 and "reconciler.yaml" in rejected[0].data["reason"]


def test_an_approved_policy_with_an_expiry_beyond_ten_years_is_rejected(
    git_repo: GitRepo, store: Store
) -> None:
    pr.bootstrap(git_repo)
    staging_only = pr.policy("staging-forever", "feature_flag.create", 1, match={"environments": ["staging"]})
    staging_only["spec"]["expires_after"] = "3000000d"
    pr.land(git_repo, {"policies/staging-forever.yaml": staging_only}, approvers=("bob", "erin"))
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", "staging")})

    run(git_repo, store)

    assert record(store, "changes/create.yaml").state == "applied"
    assert "staging-forever" not in {p.name for p in store.list_policies()}
    _count, events = store.list_audit(limit=100)
    reasons = [e.data["reason"] for e in events if e.verb == "rules.change_rejected"]
    assert len(reasons) == 1 and "longer than the maximum of 3650d (10 years)" in reasons[0]


# --- validate -------------------------------------------------------------------------------


def validate(repo: Path) -> tuple[int, list[dict[str, Any]]]:
    result = CliRunner().invoke(main, ["validate", str(repo), "--format", "json"])
    assert result.exception is None or isinstance(result.exception, SystemExit), result.exception
    return result.exit_code, json.loads(result.output)["findings"]


@pytest.fixture
def fixture_repo(tmp_path: Path) -> Path:
    repo = tmp_path / "repo"
    shutil.copytree(BASE, repo)
    return repo


@pytest.mark.parametrize("expiry", ["99999999999999999999w", "3000000d", "9" * 5000 + "s"])
def test_validate_reports_an_expiry_beyond_ten_years(fixture_repo: Path, expiry: str) -> None:
    path = fixture_repo / "policies" / "production-update.yaml"
    path.write_text(path.read_text(encoding="utf-8") + f"  expires_after: {expiry}\n", encoding="utf-8")

    code, findings = validate(fixture_repo)

    assert code == 1
    assert [(f["pointer"], f["rule"]) for f in findings] == [("/spec/expires_after", "schema")]
    assert "longer than the maximum of 3650d (10 years)" in findings[0]["message"]
    assert findings[0]["line"] == len(path.read_text(encoding="utf-8").splitlines())


@pytest.mark.parametrize(
    ("value", "pointer", "message"),
    [
        (".nan", "/spec/instructions/1/payload", "nan is not a finite number"),
        ("[1, -.inf]", "/spec/instructions/1/payload/1", "-inf is not a finite number"),
        (str(HUGE), "/spec/instructions/1/payload", f"integer {HUGE} is out of range"),
    ],
)
def test_validate_reports_numbers_no_sdk_holds_with_file_and_line(
    fixture_repo: Path, value: str, pointer: str, message: str
) -> None:
    path = fixture_repo / "changes" / "2026" / "ramp.yaml"
    text = (
        path.read_text(encoding="utf-8")
        + f"    - {{kind: updatePayload, variant: 'true', payload: {value}}}\n"
    )
    path.write_text(text, encoding="utf-8")

    code, findings = validate(fixture_repo)

    assert code == 1
    assert [(f["file"], f["pointer"], f["line"]) for f in findings] == [(str(path), pointer, 13)]
    assert message in findings[0]["message"]


def test_validate_names_a_duplicate_environment(fixture_repo: Path) -> None:
    path = fixture_repo / "reconciler.yaml"
    text = path.read_text(encoding="utf-8").replace("key: production, id: 3", "key: staging, id: 3")
    path.write_text(text, encoding="utf-8")

    code, findings = validate(fixture_repo)

    assert code == 1
    assert (findings[0]["file"], findings[0]["pointer"], findings[0]["line"]) == (
        str(path),
        "/spec/environments",
        6,
    )
    assert "environment key 'staging' is used twice (entries 0 and 1)" in findings[0]["message"]


def test_validate_asks_for_a_time_zone_on_execute_at(fixture_repo: Path) -> None:
    path = fixture_repo / "changes" / "2026" / "ramp.yaml"
    path.write_text(
        path.read_text(encoding="utf-8") + "  execute_at: 2026-06-01T09:00:00\n", encoding="utf-8"
    )

    code, findings = validate(fixture_repo)

    assert code == 1
    assert [(f["pointer"], f["line"]) for f in findings] == [("/spec/execute_at", 13)]
    assert "needs a time zone" in findings[0]["message"]


# --- a change the engine cannot handle fails alone --------------------------------------------


def test_an_unexpected_error_while_deciding_fails_that_change_alone(
    git_repo: GitRepo, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.engine import apply_change as real

    def breaks_on_one_name(spec: Any, current: Any, **kw: Any) -> Any:
        if spec.instructions and getattr(spec.instructions[0], "name", None) == "explode":
            raise RuntimeError("engine bug")
        return real(spec, current, **kw)

    monkeypatch.setattr("reconciler.decision.changes.apply_change", breaks_on_one_name)
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/a-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    pr.land(git_repo, {"changes/b-bug.yaml": update({"kind": "updateName", "name": "explode"})})
    pr.land(git_repo, {"changes/c-good.yaml": pr.ramp("good", "checkout", 42)})

    run(git_repo, store)

    broken = record(store, "changes/b-bug.yaml")
    assert broken.state == "failed"
    assert broken.apply_error == (
        "the reconciler could not apply this change (RuntimeError: engine bug); it was not applied"
    )
    assert rollout(store) == 42
    assert store.verify_audit().intact


def test_an_unexpected_error_while_judging_a_rule_change_rejects_it_alone(
    git_repo: GitRepo, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.policy import evaluate as real

    def breaks_on_meta_changes(subject: Any, *args: Any, **kw: Any) -> Any:
        if subject.action_key == "approval_policy.change":
            raise OverflowError("date value out of range")
        return real(subject, *args, **kw)

    monkeypatch.setattr("reconciler.decision.regime.evaluate", breaks_on_meta_changes)
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/a-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    lax = pr.policy("staging-lax", "feature_flag.update", 1, match={"environments": ["staging"]})
    pr.land(git_repo, {"policies/staging-lax.yaml": lax}, approvers=("bob", "erin"))
    pr.land(git_repo, {"changes/c-good.yaml": pr.ramp("good", "checkout", 42)})

    run(git_repo, store)

    assert rollout(store) == 42
    assert "staging-lax" not in {p.name for p in store.list_policies()}
    _count, events = store.list_audit(limit=100)
    reasons = [e.data["reason"] for e in events if e.verb == "rules.change_rejected"]
    assert reasons == [
        "the reconciler could not apply this change (OverflowError: date value out of range);"
        " it was not applied"
    ]
    assert store.verify_audit().intact


def test_a_store_error_while_deciding_stops_the_pass_and_records_nothing(
    git_repo: GitRepo, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    def store_fails(*_args: Any, **_kw: Any) -> Any:
        raise StoreError("the store went away")

    pr.bootstrap(git_repo)
    run(git_repo, store)
    pr.land(git_repo, {"changes/a-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    monkeypatch.setattr("reconciler.decision.changes.apply_change", store_fails)

    with pytest.raises(StoreError, match="the store went away"):
        run(git_repo, store)

    assert store.list_change_requests(ChangeRequestFilter())[0] == 0
    monkeypatch.undo()
    run(git_repo, store)
    assert record(store, "changes/a-create.yaml").state == "applied"


def test_an_unexpected_error_finding_a_changes_approvals_fails_that_change_alone(
    git_repo: GitRepo, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.approvals.trailers import TrailerSource

    real = TrailerSource.context

    def breaks_on_one_file(self: TrailerSource, landing: Any, path: str, members: Any) -> Any:
        if path == "changes/b-bug.yaml":
            raise UnicodeDecodeError("utf-8", b"\xff", 0, 1, "invalid start byte")
        return real(self, landing, path, members)

    monkeypatch.setattr(TrailerSource, "context", breaks_on_one_file)
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/a-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    pr.land(git_repo, {"changes/b-bug.yaml": pr.ramp("bug", "checkout", 100)})
    pr.land(git_repo, {"changes/c-good.yaml": pr.ramp("good", "checkout", 42)})

    run(git_repo, store)

    broken = record(store, "changes/b-bug.yaml")
    assert broken.state == "failed"
    assert broken.apply_error is not None and broken.apply_error.startswith(
        "the reconciler could not apply this change (UnicodeDecodeError: "
    )
    assert rollout(store) == 42
    assert store.verify_audit().intact


def test_a_github_error_finding_a_changes_approvals_stops_the_pass_and_records_nothing(
    git_repo: GitRepo, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    from reconciler.approvals.trailers import TrailerSource
    from reconciler.github import GitHubError

    def github_refuses(*_args: Any, **_kw: Any) -> Any:
        raise GitHubError("GitHub answered 404 for the pull requests of a commit", status=404)

    pr.bootstrap(git_repo)
    run(git_repo, store)
    pr.land(git_repo, {"changes/a-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    monkeypatch.setattr(TrailerSource, "context", github_refuses)

    with pytest.raises(GitHubError, match="404"):
        run(git_repo, store)

    assert store.list_change_requests(ChangeRequestFilter())[0] == 0
    monkeypatch.undo()
    run(git_repo, store)
    assert record(store, "changes/a-create.yaml").state == "applied"


def test_a_create_scheduled_for_later_is_approved_then_applies_when_due(
    git_repo: GitRepo, store: Store
) -> None:
    # Found by the pass property: judging a scheduled create needed a flag id it was not given.
    pr.bootstrap(git_repo)
    when = datetime(2031, 1, 1, 9, 0, tzinfo=UTC)
    later = pr.create_flag("later", "checkout", rollout=5)
    later["spec"]["execute_at"] = when.isoformat()
    pr.land(git_repo, {"changes/later.yaml": later})
    pr.land(git_repo, {"changes/other.yaml": pr.create_flag("other", "other")})

    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store, now=when - timedelta(hours=1))
    assert record(store, "changes/later.yaml").state == "approved"
    assert store.get_flag(PRODUCTION, "checkout") is None

    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store, now=when + timedelta(minutes=1))
    assert record(store, "changes/later.yaml").state == "applied"
    assert rollout(store) == 5


def schedule_a_ramp(git_repo: GitRepo, store: Store) -> datetime:
    """`checkout` created at 10 %, a ramp to 80 % scheduled for the returned time and stored an
    hour before it."""
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/a-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    when = datetime(2031, 1, 1, 9, 0, tzinfo=UTC)
    pr.land(git_repo, {"changes/b-later.yaml": pr.ramp("later", "checkout", 80, execute_at=when.isoformat())})
    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store, now=when - timedelta(hours=1))
    return when


def test_an_unexpected_error_applying_a_scheduled_change_fails_it_alone(
    git_repo: GitRepo, store: Store, monkeypatch: pytest.MonkeyPatch
) -> None:
    when = schedule_a_ramp(git_repo, store)

    def engine_bug(*_args: Any, **_kw: Any) -> Any:
        raise RuntimeError("engine bug")

    monkeypatch.setattr("reconciler.reconcile.scheduled.apply_change", engine_bug)
    pr.land(git_repo, {"changes/c-good.yaml": pr.ramp("good", "checkout", 42)})
    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store, now=when + timedelta(minutes=1))

    later = record(store, "changes/b-later.yaml")
    assert (later.state, later.apply_error) == (
        "failed",
        "the reconciler could not apply this change (RuntimeError: engine bug); it was not applied",
    )
    assert rollout(store) == 42
    assert store.position().sync_status == "Synced"


def test_a_scheduled_change_stored_by_an_older_release_that_no_longer_validates_fails_alone(
    git_repo: GitRepo, store: Store
) -> None:
    when = schedule_a_ramp(git_repo, store)
    stored = record(store, "changes/b-later.yaml")
    with store.transaction() as tx:  # what an older release accepted: a time without a zone
        tx.upsert_change_request(replace(stored, spec={**stored.spec, "execute_at": "2031-01-01T09:00:00"}))

    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store, now=when + timedelta(minutes=1))

    later = record(store, "changes/b-later.yaml")
    assert later.state == "failed"
    assert (later.apply_error or "").startswith("the stored change no longer validates:")
    assert rollout(store) == 10
