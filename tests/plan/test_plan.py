"""`reconciler plan` on real git repositories: what merging would do, in every format.

Each test builds a policy repository with trailer approvals, lands some history on `main`,
then works on a branch the way a pull request does, and reads the plan as data and as the
text, JSON and Markdown a user sees.
"""

from __future__ import annotations

import json
import time
from datetime import UTC, datetime, timedelta
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.model.text import MAX_COMMENT_CHARS
from reconciler.plan import Plan, build_plan
from reconciler.plan.render import render_markdown, render_text
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.people import ALICE


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    """main: the rules, then `checkout` created at 10% in production; HEAD on branch `feature`."""
    git_repo.clock = int(time.time()) - 24 * 3600  # recent, so no request has expired
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/001-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    git_repo.git("checkout", "-q", "-b", "feature")
    return git_repo


def now_of(repo: GitRepo) -> datetime:
    return datetime.fromtimestamp(repo.clock + 3600, UTC)


def plan_of(repo: GitRepo, **kw: object) -> Plan:
    return build_plan(repo.path, now=now_of(repo), **kw)  # type: ignore[arg-type]


def run(*args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["plan", *args])
    return result.exit_code, result.output


def test_a_ramp_shows_before_after_policy_and_approvals_needed(repo: GitRepo) -> None:
    repo.write("changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 50))
    repo.commit("Ramp checkout to 50%", author=ALICE.identity)

    plan = plan_of(repo, base=None, store=None)

    assert plan.base == repo.head("main")
    [change] = plan.changes
    assert (change.file, change.flag, change.environment, change.status) == (
        "changes/002-ramp.yaml",
        "checkout",
        "production",
        "pending",
    )
    assert change.before is not None and change.before["filters"]["groups"][0]["rollout_percentage"] == 10
    assert change.after is not None and change.after["filters"]["groups"][0]["rollout_percentage"] == 50
    assert change.after["version"] == 2
    assert [(c.field, c.before, c.after) for c in change.changes] == [
        ("filters.groups[0].rollout_percentage", 10, 50)
    ]
    [need] = change.policies
    assert (need.name, need.file, need.quorum, need.needed) == (
        "production-rollouts",
        "policies/production-rollouts.yaml",
        1,
        1,
    )
    # alice authored the change, so she may not approve it herself
    assert change.requester == "alice"
    assert need.eligible == ("bob", "carol")
    assert need.bypass_levels == (15,)
    assert plan.rules == () and plan.problems == ()


def test_text_json_and_markdown_say_the_same(repo: GitRepo) -> None:
    repo.write("changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 50))
    repo.commit("Ramp checkout", author=ALICE.identity)

    code_text, text = run(str(repo.path))
    code_json, raw = run(str(repo.path), "--format", "json")
    code_md, markdown = run(str(repo.path), "--format", "markdown")

    assert code_text == code_json == code_md == 1
    assert "changes/002-ramp.yaml: update 'checkout' in production" in text
    assert "filters.groups[0].rollout_percentage: 10.0 -> 50.0" in text
    assert "production-rollouts: 0/1 approvals, 1 more from bob, carol; bypass: owner" in text
    data = json.loads(raw)
    assert data["has_changes"] is True
    assert data["changes"][0]["changes"] == [
        {"field": "filters.groups[0].rollout_percentage", "before": 10.0, "after": 50.0}
    ]
    assert data["changes"][0]["policies"][0]["eligible"] == ["bob", "carol"]
    assert "### 1. `changes/002-ramp.yaml`: update 'checkout' in production" in markdown
    assert "| `filters.groups[0].rollout_percentage` | `10.0` | `50.0` |" in markdown
    assert "| production-rollouts | 0/1 | 1 | bob, carol | owner |" in markdown
    assert "@" not in markdown  # nobody is pinged when the comment is re-posted


def test_nothing_new_exits_zero(repo: GitRepo) -> None:
    code, output = run(str(repo.path))

    assert code == 0
    assert "No changes." in output


def test_a_bad_base_is_an_error(repo: GitRepo) -> None:
    code, output = run(str(repo.path), "--base", "no-such-branch")

    assert code == 2
    assert "'no-such-branch' names no commit" in output


def test_before_state_from_a_store_matches_the_replay(repo: GitRepo, tmp_path: Path) -> None:
    main_head = repo.head("main")
    pr.land(repo, {"changes/002-ramp.yaml": pr.ramp("ramp-checkout", "checkout", 30)})
    with Store.open(tmp_path / "live.db") as store:
        reconcile_once(ReconcileConfig(str(repo.path), branch="main"), store, now=now_of(repo))
        assert store.position().last_applied_commit == main_head

        replayed = plan_of(repo, base="main", store=None)
        stored = plan_of(repo, base="main", store=store)

    assert replayed.state_from.startswith("a replay") and stored.state_from.startswith("the store")
    assert [c.before for c in stored.changes] == [c.before for c in replayed.changes]
    assert replayed.changes[0].before is not None
    assert replayed.changes[0].before["version"] == 1


def test_changes_to_one_flag_chain_and_a_stale_base_version_is_refused(repo: GitRepo) -> None:
    repo.write("changes/002-ramp.yaml", pr.ramp("ramp-to-50", "checkout", 50, base_version=1))
    repo.write("changes/003-ramp.yaml", pr.ramp("ramp-to-80", "checkout", 80, base_version=1))
    repo.commit("Two ramps", author=ALICE.identity)

    plan = plan_of(repo, base=None, store=None)

    first, second = plan.changes
    assert first.status == "pending" and first.after is not None
    # the second sees the flag as the first leaves it, as the reconciler would
    assert second.before == first.after
    assert second.status == "refused" and second.stale
    assert second.reason is not None and "version" in second.reason.lower()
    assert second.after is None
    assert "cannot apply: " + second.reason in render_text(plan)


def test_missing_flag_and_unknown_environment_are_refused_with_the_reason(repo: GitRepo) -> None:
    repo.write("changes/002-ghost.yaml", pr.ramp("ramp-ghost", "ghost", 20))
    repo.write("changes/003-moon.yaml", pr.ramp("ramp-moon", "checkout", 20, environment="moon"))

    plan = plan_of(repo, base=None, store=None)

    ghost, moon = plan.changes
    assert ghost.status == "refused" and ghost.reason is not None and "ghost" in ghost.reason
    assert (
        moon.status == "refused" and moon.reason is not None and "unknown environment 'moon'" in moon.reason
    )


def test_a_policy_change_is_judged_by_the_base(repo: GitRepo) -> None:
    # the pull request lowers the bar for production rollouts and ramps in the same breath
    weaker = pr.policy("production-rollouts", "feature_flag.update", 1, match={"environments": ["staging"]})
    repo.write("policies/production-rollouts.yaml", weaker)
    repo.write("changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 100))
    repo.commit("Loosen the rules and ramp", author=ALICE.identity)

    plan = plan_of(repo, base=None, store=None)

    [change] = plan.changes
    assert [p.name for p in change.policies] == ["production-rollouts"]
    assert change.policies[0].needed == 1  # still governed: the base's policy judges it
    [rule] = plan.rules
    assert (rule.files, rule.statuses, rule.action) == (
        ("policies/production-rollouts.yaml",),
        ("modified",),
        "approval_policy.change",
    )
    [meta] = rule.policies
    assert (meta.name, meta.quorum, meta.eligible) == ("policy-changes", 2, ("bob", "dave", "erin"))
    markdown = render_markdown(plan)
    assert "**approval_policy.change**: `policies/production-rollouts.yaml` (modified)" in markdown
    assert "| policy-changes | 0/2 | 2 | bob, dave, erin | — |" in markdown


def test_a_rule_change_that_was_never_approved_is_not_in_force(repo: GitRepo) -> None:
    repo.git("checkout", "-q", "main")
    loose = pr.policy(
        "production-rollouts",
        "feature_flag.update",
        1,
        allow_self_approve=True,
        match={"environments": ["production"]},
    )
    pr.land(repo, {"policies/production-rollouts.yaml": loose}, approvers=())  # no approval: rejected
    repo.git("checkout", "-q", "-b", "next")
    repo.write("changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 40))
    repo.commit("Ramp", author=ALICE.identity)

    plan = plan_of(repo, base=None, store=None)

    [change] = plan.changes
    assert change.policies[0].allow_self_approve is False  # the version in force, not the base file
    assert "alice" not in change.policies[0].eligible
    [note] = plan.not_in_force
    assert note.file == "policies/production-rollouts.yaml"
    assert "not approved" in note.reason
    assert "Not in force: `policies/production-rollouts.yaml`" in render_markdown(plan)


def test_editing_renaming_or_removing_a_landed_change_request_is_reported(repo: GitRepo) -> None:
    edited = pr.create_flag("create-checkout", "checkout", rollout=99)
    repo.write("changes/001-create.yaml", edited)

    plan = plan_of(repo, base=None, store=None)

    [problem] = plan.problems
    assert problem.file == "changes/001-create.yaml"
    assert "immutable" in problem.message
    assert plan.changes == ()
    code, output = run(str(repo.path))
    assert code == 1 and "immutable" in output

    repo.git("checkout", "--", "changes/001-create.yaml")
    repo.git("mv", "changes/001-create.yaml", "changes/001-renamed.yaml")
    renamed = plan_of(repo, base=None, store=None)
    assert [(p.file, "renames changes/001-create.yaml" in p.message) for p in renamed.problems] == [
        ("changes/001-renamed.yaml", True)
    ]

    repo.remove("changes/001-renamed.yaml")
    removed = plan_of(repo, base=None, store=None)
    assert [(p.file, "never undoes" in p.message) for p in removed.problems] == [
        ("changes/001-create.yaml", True)
    ]


def test_an_invalid_change_request_is_planned_as_invalid(repo: GitRepo) -> None:
    repo.write("changes/002-bad.yaml", {"apiVersion": "reconciler/v1", "kind": "ChangeRequest", "spec": {}})

    [change] = plan_of(repo, base=None, store=None).changes

    assert change.status == "invalid"
    assert change.reason is not None and change.reason.startswith("invalid change request")


def test_a_plain_directory_has_an_empty_base_and_bootstraps_its_rules(tmp_path: Path) -> None:
    source = GitRepo.init(tmp_path / "scratch")
    pr.bootstrap(source)
    plain = tmp_path / "plain"
    for path in [
        "reconciler.yaml",
        "members.yaml",
        *[f"policies/{p.name}" for p in (source.path / "policies").iterdir()],
    ]:
        (plain / path).parent.mkdir(parents=True, exist_ok=True)
        (plain / path).write_bytes((source.path / path).read_bytes())
    GitRepo(plain).write("changes/001-create.yaml", pr.create_flag("create-checkout", "checkout", rollout=5))

    plan = build_plan(plain, base=None, store=None, now=datetime.now(UTC))

    assert plan.base is None and "empty base" in plan.base_label
    [change] = plan.changes
    assert change.before is None and change.after is not None and change.after["key"] == "checkout"
    # the rules land with the change: no base, so no policy governs it, as when reconciled
    assert (change.status, change.governed, change.policies) == ("ready", False, ())
    [rule] = plan.rules
    assert rule.action == "bootstrap" and "reconciler.yaml" in rule.files
    code, _output = run(str(plain), "--base", "main")
    assert code == 2


def test_the_markdown_comment_stays_under_githubs_limit(repo: GitRepo) -> None:
    for i in range(150):
        repo.write(
            f"changes/{i:04d}-create.yaml", pr.create_flag(f"create-{i}", f"flag-number-{i}", rollout=i % 100)
        )
    repo.commit("Many flags", author=ALICE.identity)

    plan = plan_of(repo, base=None, store=None)
    markdown = render_markdown(plan)

    assert len(plan.changes) == 150
    assert len(markdown) < MAX_COMMENT_CHARS
    assert "### 1. `changes/0000-create.yaml`" in markdown
    assert "more change requests" in markdown
    assert "changes/0149-create.yaml" in markdown or "run `reconciler plan` locally" in markdown


def test_plan_reads_a_subdirectory_of_a_monorepo(tmp_path: Path) -> None:
    mono = GitRepo.init(tmp_path / "mono")
    mono.clock = int(time.time()) - 3600
    mono.write("README.md", "a monorepo\n")
    sub = GitRepo(mono.path / "flags", clock=mono.clock)
    pr.bootstrap(sub)
    mono.git("checkout", "-q", "-b", "feature")
    sub.write("changes/001-create.yaml", pr.create_flag("create-checkout", "checkout"))

    plan = build_plan(mono.path / "flags", base="main", store=None, now=datetime.now(UTC))

    assert [c.file for c in plan.changes] == ["changes/001-create.yaml"]
    assert plan.changes[0].policies[0].name == "production-creates"
    assert plan.rules == ()


def test_ungoverned_and_scheduled_changes(repo: GitRepo) -> None:
    later = (now_of(repo) + timedelta(days=2)).isoformat()
    repo.write("changes/002-beta.yaml", pr.create_flag("create-beta", "beta", environment="staging"))
    repo.write(
        "changes/003-ramp.yaml",
        pr.ramp("ramp-beta-later", "beta", 30, environment="staging", execute_at=later),
    )

    first, second = plan_of(repo, base=None, store=None).changes

    assert (first.status, first.governed, first.policies) == ("ready", False, ())
    assert first.after is not None and first.after["id"] == 2  # provisional: the next id the store would give
    assert second.status == "scheduled" and second.execute_at is not None
    assert second.before == first.after
    assert "scheduled for " in render_text(plan_of(repo, base=None, store=None))


def test_a_plain_directory_planned_against_a_store_skips_what_the_store_decided(
    repo: GitRepo, tmp_path: Path
) -> None:
    plain = tmp_path / "export"
    for path in repo.git("ls-files").splitlines():
        (plain / path).parent.mkdir(parents=True, exist_ok=True)
        (plain / path).write_bytes((repo.path / path).read_bytes())
    GitRepo(plain).write("changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 25))
    GitRepo(plain).write("changes/001-create.yaml", pr.create_flag("create-checkout", "checkout", rollout=90))
    store_path = tmp_path / "live.db"
    with Store.open(store_path) as store:
        reconcile_once(ReconcileConfig(str(repo.path)), store, now=now_of(repo))

    code, output = run(str(plain), "--store", str(store_path), "--format", "json")

    assert code == 1
    data = json.loads(output)
    assert [c["file"] for c in data["changes"]] == ["changes/002-ramp.yaml"]
    assert data["changes"][0]["before"]["filters"]["groups"][0]["rollout_percentage"] == 10
    assert data["state_from"].startswith("the store sqlite:")
    assert data["rules"] == []  # the same rules as the store holds in force: nothing to change
    [problem] = data["problems"]
    assert problem["file"] == "changes/001-create.yaml"
    assert problem["message"].startswith(
        "was already applied as the store records it: a change-request file is immutable"
    )


def test_a_replay_that_cannot_judge_history_offline_points_to_store(tmp_path: Path) -> None:
    github = GitRepo.init(tmp_path / "github-approvals")
    pr.bootstrap(github, source="github")
    pr.land(github, {"changes/001-create.yaml": pr.create_flag("create-checkout", "checkout")})
    github.git("checkout", "-q", "-b", "feature")
    github.write("changes/002-ramp.yaml", pr.ramp("ramp-checkout", "checkout", 20))

    code, output = run(str(github.path))

    assert code == 2
    assert "pass --store URL" in output
