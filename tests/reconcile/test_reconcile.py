"""The reconcile pass on real git repositories and real stores (SQLite and PostgreSQL).

Each test builds a policy repository with trailer approvals, lands commits the way people
would, runs passes, and checks what users see: flag state, change-request states and errors,
the audit trail, and the reconciler's position.
"""

from __future__ import annotations

import gc
from datetime import UTC, datetime, timedelta

import pytest

from reconciler.errors import GitError
from reconciler.reconcile import DivergedError, ReconcileConfig, reconcile_once
from reconciler.store import Store
from reconciler.store.records import AuditRecord
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.people import ALICE, BOB, CAROL, DAVE, ERIN
from tests.support.storedata import record

PRODUCTION = 1
STAGING = 2


def run(repo: GitRepo, store: Store, **options: object) -> None:
    reconcile_once(ReconcileConfig(repo=str(repo.path), **options), store)  # type: ignore[arg-type]


def audit(store: Store) -> list[AuditRecord]:
    """The whole audit trail, oldest first."""
    _count, events = store.list_audit(limit=10_000)
    return sorted(events, key=lambda e: e.id)


def rollout(store: Store, key: str, environment: int = PRODUCTION) -> float | None:
    flag = store.get_flag(environment, key)
    assert flag is not None, f"flag {key} missing"
    return flag.flag.filters.groups[0].rollout_percentage


def test_approved_changes_apply_in_order_and_record_who(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    landed = pr.land(
        git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)}
    )
    pr.land(
        git_repo, {"changes/ramp.yaml": pr.ramp("ramp-checkout", "checkout", 50)}, approvers=("bob", "carol")
    )

    run(git_repo, store)

    flag = store.get_flag(PRODUCTION, "checkout")
    assert flag is not None
    assert (flag.flag.version, rollout(store, "checkout")) == (2, 50)
    created = record(store, "changes/create.yaml")
    assert created.state == "applied"
    assert created.commit == landed
    assert created.created_by_login == "alice"
    assert created.applied_by_login == "carol"  # the committer merged it
    assert created.result_data == {"resource_id": flag.flag.id, "resource_version": 1}
    ramp = record(store, "changes/ramp.yaml")
    assert [(v.login, v.counted) for v in ramp.votes] == [("bob", True), ("carol", True)]
    assert ramp.intent_display["before"] is not None
    assert ramp.policy_snapshot is not None
    position = store.position()
    assert (position.last_applied_commit, position.sync_status) == (git_repo.head(), "Synced")
    verbs = [e.verb for e in audit(store)]
    assert verbs.count("change_request.applied") == 2
    assert store.verify_audit().intact


def test_a_second_pass_applies_nothing_again(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    run(git_repo, store)
    audit_before = len(audit(store))

    run(git_repo, store)

    flag = store.get_flag(PRODUCTION, "checkout")
    assert flag is not None and flag.flag.version == 1
    assert len(audit(store)) == audit_before


def test_self_approval_does_not_count_and_the_change_fails_with_the_reason(
    git_repo: GitRepo, store: Store
) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp-checkout", "checkout", 90)}, approvers=("alice",))

    run(git_repo, store)

    ramp = record(store, "changes/ramp.yaml")
    assert ramp.state == "failed"
    assert ramp.apply_error == "approval quorum not met at merge: 0 of 1 (production-rollouts)"
    assert [(v.login, v.ignored_reason) for v in ramp.votes] == [("alice", "self-approval not allowed")]
    assert rollout(store, "checkout") == 10  # the flag was not touched
    # One bad change request never blocks the ones after it.
    pr.land(git_repo, {"changes/ramp-2.yaml": pr.ramp("ramp-checkout-2", "checkout", 30)})
    run(git_repo, store)
    assert rollout(store, "checkout") == 30


def test_unknown_logins_and_outsiders_never_count(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp", "checkout", 40)}, approvers=("mallory", "erin"))

    run(git_repo, store)

    ramp = record(store, "changes/ramp.yaml")
    assert ramp.state == "failed"
    assert {v.login: v.ignored_reason for v in ramp.votes} == {
        "mallory": "unknown login",
        "erin": "not an eligible approver",
    }


def test_a_bypass_level_merger_applies_without_quorum_and_it_is_recorded(
    git_repo: GitRepo, store: Store
) -> None:
    pr.bootstrap(git_repo, quorum=2)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    pr.land(
        git_repo,
        {"changes/ramp.yaml": pr.ramp("ramp", "checkout", 70)},
        approvers=("bob",),
        committer=ERIN.identity,
    )

    run(git_repo, store)

    ramp = record(store, "changes/ramp.yaml")
    assert ramp.state == "applied"
    assert ramp.applied_by_login == "erin"
    assert ramp.bypass and ramp.bypass[0]["member"] == "erin"
    assert rollout(store, "checkout") == 70
    applied = [e for e in audit(store) if e.object_id == ramp.id]
    assert applied[-1].data["bypass"][0]["policy"] == "production-rollouts"


def test_quorum_two_with_one_vote_fails_without_bypass(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo, quorum=2)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp", "checkout", 70)}, approvers=("bob",))

    run(git_repo, store)

    assert record(store, "changes/ramp.yaml").apply_error == (
        "approval quorum not met at merge: 1 of 2 (production-rollouts)"
    )


def test_stale_base_version_fails_and_never_overwrites(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    pr.land(git_repo, {"changes/a.yaml": pr.ramp("ramp-a", "checkout", 20, base_version=1)})
    pr.land(git_repo, {"changes/b.yaml": pr.ramp("ramp-b", "checkout", 90, base_version=1)})

    run(git_repo, store)

    stale = record(store, "changes/b.yaml")
    assert (stale.state, stale.validation_status) == ("failed", "stale")
    assert stale.apply_error == "Flag version mismatch: expected 1, got 2"
    assert rollout(store, "checkout") == 20


def test_missing_flag_and_invalid_files_fail_without_stopping_the_pass(
    git_repo: GitRepo, store: Store
) -> None:
    pr.bootstrap(git_repo)
    pr.land(
        git_repo,
        {
            "changes/a-missing.yaml": pr.ramp("ramp-ghost", "ghost", 20),
            "changes/b-broken.yaml": (
                "apiVersion: reconciler/v1\nkind: ChangeRequest\nmetadata: {name: x}\nspec: ["
            ),
            "changes/c-create.yaml": pr.create_flag("create-checkout", "checkout"),
        },
    )

    run(git_repo, store)

    assert "does not exist" in (record(store, "changes/a-missing.yaml").apply_error or "")
    broken = record(store, "changes/b-broken.yaml")
    assert (broken.state, broken.validation_status) == ("failed", "invalid")
    assert broken.validation_errors and broken.validation_errors[0]["line"] is not None
    assert record(store, "changes/c-create.yaml").state == "applied"


def test_an_unknown_environment_fails_with_the_known_ones(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/x.yaml": pr.create_flag("create-x", "x", environment="prod")})

    run(git_repo, store)

    error = record(store, "changes/x.yaml").apply_error or ""
    assert "unknown environment 'prod'" in error and "production, staging" in error


def test_expired_when_merged_after_expires_after(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    # Authored 20 days before it was merged; the default expires_after is 14 days.
    git_repo.write("changes/late.yaml", pr.ramp("late-ramp", "checkout", 60))
    authored = git_repo.clock - 20 * 86400
    git_repo.git("add", "-A")
    git_repo.git(
        "commit",
        "-q",
        "-m",
        "Late ramp\n\nApproved-by: bob",
        env={
            "GIT_AUTHOR_NAME": ALICE.name,
            "GIT_AUTHOR_EMAIL": ALICE.email,
            "GIT_AUTHOR_DATE": f"{authored} +0000",
            "GIT_COMMITTER_NAME": CAROL.name,
            "GIT_COMMITTER_EMAIL": CAROL.email,
            "GIT_COMMITTER_DATE": f"{git_repo.clock + 60} +0000",
        },
    )

    run(git_repo, store)

    late = record(store, "changes/late.yaml")
    assert late.state == "expired"
    assert late.expires_at is not None and late.expires_at < datetime.fromtimestamp(git_repo.clock + 60, UTC)


def test_scheduled_change_applies_on_the_pass_after_it_comes_due(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=5)})
    when = datetime(2031, 1, 1, 9, 0, tzinfo=UTC)
    pr.land(git_repo, {"changes/later.yaml": pr.ramp("later", "checkout", 80, execute_at=when.isoformat())})

    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store, now=when - timedelta(hours=1))
    assert record(store, "changes/later.yaml").state == "approved"
    assert rollout(store, "checkout") == 5

    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store, now=when + timedelta(minutes=1))
    later = record(store, "changes/later.yaml")
    assert later.state == "applied"
    assert rollout(store, "checkout") == 80

    reconcile_once(ReconcileConfig(repo=str(git_repo.path)), store, now=when + timedelta(hours=1))
    flag = store.get_flag(PRODUCTION, "checkout")
    assert flag is not None and flag.flag.version == 2  # applied once


def test_a_policy_weakened_in_the_same_commit_does_not_judge_that_change(
    git_repo: GitRepo, store: Store
) -> None:
    pr.bootstrap(git_repo, quorum=2)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    weakened = pr.policy(
        "production-rollouts", "feature_flag.update", 1, match={"environments": ["production"]}
    )
    pr.land(
        git_repo,
        {
            "policies/production-rollouts.yaml": weakened,
            "changes/ramp.yaml": pr.ramp("ramp", "checkout", 100),
        },
        approvers=("bob",),
    )

    run(git_repo, store)

    assert record(store, "changes/ramp.yaml").apply_error == (
        "approval quorum not met at merge: 1 of 2 (production-rollouts)"
    )
    # And the weakening itself needed two approvals from the policy-change approvers.
    policy = next(p for p in store.list_policies() if p.name == "production-rollouts")
    assert policy.spec["approver_config"]["quorum"] == 2
    rejected = store.position().details["rules_not_in_force"]
    assert rejected[0]["files"] == ["policies/production-rollouts.yaml"]


def test_an_approved_policy_change_takes_effect_for_later_commits(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo, quorum=2)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    relaxed = pr.policy(
        "production-rollouts", "feature_flag.update", 1, match={"environments": ["production"]}
    )
    pr.land(
        git_repo,
        {"policies/production-rollouts.yaml": relaxed},
        approvers=("dave", "erin"),
        author=BOB.identity,
    )
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp", "checkout", 45)}, approvers=("bob",))

    run(git_repo, store)

    assert record(store, "changes/ramp.yaml").state == "applied"
    policy = next(p for p in store.list_policies() if p.name == "production-rollouts")
    assert policy.spec["approver_config"]["quorum"] == 1


def test_editing_an_applied_change_request_does_nothing(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=99)})

    run(git_repo, store)

    assert rollout(store, "checkout") == 10
    assert any(e.verb == "change_request.edit_ignored" for e in audit(store))


def test_merge_commit_requester_is_the_branch_author(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    git_repo.git("checkout", "-q", "-b", "ramp")
    git_repo.write("changes/ramp.yaml", pr.ramp("ramp", "checkout", 35))
    git_repo.commit("Ramp checkout", author=BOB.identity)
    git_repo.git("checkout", "-q", "main")
    git_repo.git(
        "merge",
        "-q",
        "--no-ff",
        "ramp",
        "-m",
        "Merge ramp\n\nApproved-by: bob",
        env={
            "GIT_COMMITTER_NAME": CAROL.name,
            "GIT_COMMITTER_EMAIL": CAROL.email,
            "GIT_AUTHOR_NAME": CAROL.name,
            "GIT_AUTHOR_EMAIL": CAROL.email,
            "GIT_AUTHOR_DATE": f"{git_repo.clock + 60} +0000",
            "GIT_COMMITTER_DATE": f"{git_repo.clock + 60} +0000",
        },
    )

    run(git_repo, store)

    ramp = record(store, "changes/ramp.yaml")
    assert ramp.created_by_login == "bob"
    assert ramp.state == "failed"  # bob approved his own change
    assert [v.ignored_reason for v in ramp.votes] == ["self-approval not allowed"]


def test_rewritten_history_stops_until_accepted_and_never_reapplies(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp", "checkout", 40)})
    run(git_repo, store)
    applied = git_repo.head()
    # Force-push: rewrite the last commit with another message, then add a new change.
    git_repo.git("commit", "-q", "--amend", "-m", "Ramp checkout (reworded)\n\nApproved-by: bob")
    pr.land(git_repo, {"changes/ramp-2.yaml": pr.ramp("ramp-2", "checkout", 60)})
    new_head = git_repo.head()

    with pytest.raises(DivergedError) as err:
        run(git_repo, store)
    assert applied[:12] in str(err.value) and new_head[:12] in str(err.value)
    position = store.position()
    assert position.sync_status == "Diverged"
    assert position.diverged_commit == new_head
    assert rollout(store, "checkout") == 40

    run(git_repo, store, accept_rewrite=True)

    flag = store.get_flag(PRODUCTION, "checkout")
    assert flag is not None
    assert (flag.flag.version, rollout(store, "checkout")) == (3, 60)  # ramp.yaml not applied twice
    assert store.position().sync_status == "Synced"


def test_monorepo_subdirectory(tmp_path: object, store: Store, git_repo: GitRepo) -> None:
    git_repo.write("README.md", "the product\n")
    git_repo.commit("Unrelated first commit")
    for path, content in {
        "reconciler.yaml": pr.project(),
        "members.yaml": pr.members(),
        "policies/production-creates.yaml": pr.policy("production-creates", "feature_flag.create", 1),
    }.items():
        git_repo.write(f"flags/{path}", content)
    git_repo.commit("Add the flag policies", author=DAVE.identity)
    git_repo.write("flags/changes/create.yaml", pr.create_flag("create-checkout", "checkout"))
    git_repo.write("changes/create.yaml", pr.create_flag("outside", "outside"))  # outside --path
    git_repo.commit(
        "Create checkout", author=ALICE.identity, committer=CAROL.identity, trailers=[("Approved-by", "bob")]
    )

    run(git_repo, store, path="flags")

    assert store.get_flag(PRODUCTION, "checkout") is not None
    assert store.get_flag(PRODUCTION, "outside") is None
    assert record(store, "changes/create.yaml").state == "applied"


def test_copy_between_environments(git_repo: GitRepo, store: Store) -> None:
    pr.bootstrap(git_repo)
    pr.land(
        git_repo,
        {"changes/1.yaml": pr.create_flag("create-staging", "checkout", environment="staging", rollout=30)},
    )
    pr.land(
        git_repo,
        {
            "changes/2.yaml": pr.change(
                "promote", "feature_flag.copy", "checkout", source_environment="staging"
            )
        },
    )

    run(git_repo, store)

    assert record(store, "changes/2.yaml").state == "applied"
    assert rollout(store, "checkout", PRODUCTION) == 30
    assert rollout(store, "checkout", STAGING) == 30


def test_unreachable_repository_is_recorded_and_raised(tmp_path: object, store: Store) -> None:
    from reconciler.errors import GitError

    with pytest.raises(GitError) as err:
        reconcile_once(ReconcileConfig(repo="file:///nonexistent/repo.git"), store)
    assert err.value.temporary
    assert store.position().last_error is not None


def test_changes_landing_with_the_bootstrap_are_judged_by_no_policy(git_repo: GitRepo, store: Store) -> None:
    git_repo.write("reconciler.yaml", pr.project(source="github"))
    git_repo.write("members.yaml", pr.members())
    git_repo.write("policies/creates.yaml", pr.policy("creates", "feature_flag.create", 2))
    git_repo.write("changes/create.yaml", pr.create_flag("create-checkout", "checkout"))
    git_repo.commit("Set up the flag policies", author=DAVE.identity)
    git_repo.write("changes/create-2.yaml", pr.create_flag("create-search", "search"))
    git_repo.commit("Create search", author=ALICE.identity, trailers=[("Approved-by", "bob")])

    run(git_repo, store, approvals="trailers")  # the project says github; the operator overrides

    assert record(store, "changes/create.yaml").state == "applied"  # no base: nothing governs it
    later = record(store, "changes/create-2.yaml")
    assert later.apply_error == "approval quorum not met at merge: 1 of 2 (creates)"


def test_a_folder_inside_a_work_tree_is_the_policy_repository(git_repo: GitRepo, store: Store) -> None:
    for path, content in {"reconciler.yaml": pr.project(), "members.yaml": pr.members()}.items():
        git_repo.write(f"examples/policies/{path}", content)
    git_repo.write("examples/policies/changes/create.yaml", pr.create_flag("create-checkout", "checkout"))
    git_repo.commit("Example policies", author=DAVE.identity)

    run_in = git_repo.path / "examples" / "policies"
    reconcile_once(ReconcileConfig(repo=str(run_in)), store)

    assert record(store, "changes/create.yaml").state == "applied"


def test_moving_an_applied_file_does_nothing_but_refiling_a_failed_one_retries(
    git_repo: GitRepo, store: Store
) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    pr.land(
        git_repo, {"changes/ramp.yaml": pr.ramp("ramp", "checkout", 40)}, approvers=("alice",)
    )  # self-approved: fails
    (git_repo.path / "changes" / "2026").mkdir()
    git_repo.git("mv", "changes/create.yaml", "changes/2026/create.yaml")
    git_repo.git("mv", "changes/ramp.yaml", "changes/2026/ramp.yaml")
    git_repo.commit(
        "File the changes by year, retry the ramp",
        committer=CAROL.identity,
        trailers=[("Approved-by", "bob")],
    )

    run(git_repo, store)

    assert record(store, "changes/ramp.yaml").state == "failed"
    assert record(store, "changes/2026/ramp.yaml").state == "applied"
    flag = store.get_flag(PRODUCTION, "checkout")
    assert flag is not None and (flag.flag.version, rollout(store, "checkout")) == (
        2,
        40,
    )  # create not re-applied


def test_a_pass_leaves_the_garbage_collector_as_it_found_it(git_repo: GitRepo, store: Store) -> None:
    # The pass collects less often while it runs; the service's other threads must get the
    # process's own settings back, whether the pass succeeds or fails.
    before = gc.get_threshold()
    gc.set_threshold(900, 11, 12)
    try:
        pr.bootstrap(git_repo)
        pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
        run(git_repo, store)
        assert gc.get_threshold() == (900, 11, 12)
        with pytest.raises(GitError, match="is not a git repository"):
            reconcile_once(ReconcileConfig(repo=str(git_repo.path / "missing")), store)
        assert gc.get_threshold() == (900, 11, 12)
    finally:
        gc.set_threshold(*before)
