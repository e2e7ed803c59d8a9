"""Rules fail closed: a rule file that does not read cleanly never leaves fewer rules in force.

At bootstrap, any invalid `reconciler.yaml`, `members.yaml` or policy means no rules at all:
nothing applies, the pass fails naming the file and the finding, the status says why, and
the first later commit whose rules read cleanly bootstraps. After a bootstrap, an invalid
rule change is rejected (the old rules stay) and the pass summary names it. `plan` and
`check-approvals` refuse to judge by a base whose rules do not read.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any

import pytest
from click.testing import CliRunner

from reconciler.api import create_app
from reconciler.cli import main
from reconciler.decision.regime import RulesInvalid
from reconciler.errors import EXIT_FINDINGS
from reconciler.gitrepo.repository import GitRepository
from reconciler.model.states import SCOPES
from reconciler.plan import build_plan
from reconciler.plan.pullrequest import evaluate_pull_request
from reconciler.reconcile import PassResult, ReconcileConfig, reconcile_once
from reconciler.store import Store
from tests.support import policyrepo as pr
from tests.support.apiclient import Client
from tests.support.ghscenario import REPOSITORY, PullRequestScenario, serve
from tests.support.gitutil import GitRepo
from tests.support.people import BOB
from tests.support.storedata import record

PRODUCTION = 1
ROLLOUTS = "policies/production-rollouts.yaml"


def run(repo: GitRepo, store: Store) -> PassResult:
    return reconcile_once(ReconcileConfig(repo=str(repo.path)), store)


def rollouts_policy(**extra: Any) -> dict[str, Any]:
    doc = pr.policy("production-rollouts", "feature_flag.update", 1, match={"environments": ["production"]})
    doc["spec"].update(extra)
    return doc


def bootstrap_with(repo: GitRepo, files: dict[str, Any]) -> str:
    """`pr.bootstrap`, then `files` overwritten in the same commit."""
    pr.bootstrap(repo)
    for path, content in files.items():
        repo.write(path, content)
    repo.git("add", "-A")
    repo.git("commit", "-q", "--amend", "--no-edit", env={"GIT_COMMITTER_DATE": f"{repo.clock} +0000"})
    return repo.head()


def test_an_invalid_policy_at_bootstrap_applies_nothing_until_a_commit_fixes_it(
    git_repo: GitRepo, store: Store
) -> None:
    bootstrap_with(git_repo, {ROLLOUTS: rollouts_policy(approvers_typo=["mallory"])})
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    head = pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp-all", "checkout", 100)}, approvers=())

    with pytest.raises(RulesInvalid) as raised:
        run(git_repo, store)

    assert raised.value.exit_code == EXIT_FINDINGS
    message = str(raised.value)
    assert f"the rules at commit {head[:12]} cannot be read in full" in message
    assert ROLLOUTS in message and "approvers_typo" in message
    assert store.get_flag(PRODUCTION, "checkout") is None  # nothing applied, not even the approved create
    for path in ("changes/create.yaml", "changes/ramp.yaml"):
        failed = record(store, path)
        assert failed.state == "failed"
        assert failed.apply_error is not None and failed.apply_error.startswith("no valid rules in force at ")
        assert ROLLOUTS in failed.apply_error
    position = store.position()
    assert position.sync_status == "OutOfSync"
    assert position.last_error == message
    assert store.list_policies() == []

    with pytest.raises(RulesInvalid):  # a pass without new commits still says why
        run(git_repo, store)
    assert store.position().last_error == message

    fix = pr.land(git_repo, {ROLLOUTS: rollouts_policy()}, approvers=(), message="Fix the policy")
    fixed = run(git_repo, store)
    assert (fixed.status, fixed.head) == ("Synced", fix)
    assert store.position().last_error is None
    assert "production-rollouts" in {p.name for p in store.list_policies()}

    pr.land(git_repo, {"changes/create-2.yaml": pr.create_flag("create-checkout-2", "checkout")})
    pr.land(git_repo, {"changes/ramp-2.yaml": pr.ramp("ramp-unapproved", "checkout", 100)}, approvers=())
    pr.land(git_repo, {"changes/ramp-3.yaml": pr.ramp("ramp-approved", "checkout", 30)})
    run(git_repo, store)
    assert record(store, "changes/create-2.yaml").state == "applied"
    assert record(store, "changes/ramp-2.yaml").state == "failed"  # the repaired policy is in force
    assert record(store, "changes/ramp-3.yaml").state == "applied"
    flag = store.get_flag(PRODUCTION, "checkout")
    assert flag is not None and flag.flag.filters.groups[0].rollout_percentage == 30


def test_a_change_landing_with_the_fix_of_invalid_rules_never_applies(
    git_repo: GitRepo, store: Store
) -> None:
    bootstrap_with(git_repo, {ROLLOUTS: rollouts_policy(approvers_typo=["mallory"])})
    with pytest.raises(RulesInvalid):
        run(git_repo, store)

    # Repairing the rules must not open a window in which a change is judged by none of them.
    fix = pr.land(
        git_repo,
        {ROLLOUTS: rollouts_policy(), "changes/create.yaml": pr.create_flag("c", "checkout")},
        approvers=(),
    )
    run(git_repo, store)

    failed = record(store, "changes/create.yaml")
    assert failed.state == "failed"
    assert failed.apply_error is not None and failed.apply_error.startswith(f"landed with {fix[:12]}")
    assert store.get_flag(PRODUCTION, "checkout") is None


BROKEN = {
    "reconciler.yaml unknown key": ("reconciler.yaml", {**pr.project(), "extra": True}, "extra"),
    "reconciler.yaml duplicate environment": (
        "reconciler.yaml",
        {
            **pr.project(),
            "spec": {**pr.project()["spec"], "environments": [pr.ENVIRONMENTS[0], pr.ENVIRONMENTS[0]]},
        },
        "environment key 'production' is used twice",
    ),
    "members.yaml YAML error": ("members.yaml", "spec: [unclosed\n", "members.yaml"),
    "members.yaml unknown role": (
        "members.yaml",
        {**pr.members(), "spec": {**pr.members()["spec"], "roles": [{"name": "release-managers"}]}},
        "flag-approvers",
    ),
    "policy naming an unknown role": (ROLLOUTS, rollouts_policy(bypass_roles=["nobody"]), "nobody"),
    "two policies with one name": (
        "policies/copy.yaml",
        pr.policy("production-rollouts", "feature_flag.enable"),
        "already named",
    ),
}


@pytest.mark.parametrize("case", sorted(BROKEN))
def test_any_invalid_rule_file_at_bootstrap_fails_the_pass(
    git_repo: GitRepo, store: Store, case: str
) -> None:
    path, content, finding = BROKEN[case]
    bootstrap_with(
        git_repo, {path: content, "changes/create.yaml": pr.create_flag("create-checkout", "checkout")}
    )

    with pytest.raises(RulesInvalid) as raised:
        run(git_repo, store)

    assert path in str(raised.value) and finding in str(raised.value)
    assert store.get_flag(PRODUCTION, "checkout") is None
    assert record(store, "changes/create.yaml").state == "failed"
    assert store.position().last_error == str(raised.value)


def test_the_command_exits_1_and_the_status_endpoint_says_why(git_repo: GitRepo, store_url: str) -> None:
    bootstrap_with(git_repo, {ROLLOUTS: rollouts_policy(approvers_typo=["mallory"])})

    result = CliRunner().invoke(main, ["reconcile", "--repo", str(git_repo.path), "--store", store_url])

    assert result.exit_code == 1, result.output
    assert ROLLOUTS in result.output and "approvers_typo" in result.output
    with Store.open(store_url) as store:
        client = Client(create_app(store), store.create_token("ada", SCOPES)[0])
        try:
            status = client.get("/api/reconciler/status").json()
        finally:
            client.close()
    assert status["sync_status"] == "OutOfSync"
    assert ROLLOUTS in status["last_error"] and "approvers_typo" in status["last_error"]


@pytest.mark.parametrize(
    "broken",
    [rollouts_policy(quorum_typo=1), rollouts_policy(bypass_roles=["nobody"])],
    ids=["unknown key", "unknown role"],
)
def test_an_invalid_rule_change_later_is_rejected_and_the_summary_names_it(
    git_repo: GitRepo, store: Store, broken: dict[str, Any]
) -> None:
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/create.yaml": pr.create_flag("create-checkout", "checkout")})
    change = pr.land(git_repo, {ROLLOUTS: broken}, approvers=("dave", "erin"), author=BOB.identity)
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp-unapproved", "checkout", 100)}, approvers=())

    result = run(git_repo, store)

    assert result.status == "Synced"
    assert len(result.rules_rejected) == 1
    assert result.rules_rejected[0].startswith(f"{ROLLOUTS} at {change[:12]}: invalid: ")
    assert record(store, "changes/ramp.yaml").state == "failed"  # the old policy still governs
    held = next(p for p in store.list_policies() if p.file == ROLLOUTS)
    assert "quorum_typo" not in held.spec and held.spec.get("bypass_roles", []) == []


def test_the_printed_summary_names_a_rejected_rule_change(git_repo: GitRepo, tmp_path: Path) -> None:
    pr.bootstrap(git_repo)
    pr.land(
        git_repo, {ROLLOUTS: rollouts_policy(quorum_typo=1)}, approvers=("dave", "erin"), author=BOB.identity
    )

    result = CliRunner().invoke(
        main, ["reconcile", "--repo", str(git_repo.path), "--store", str(tmp_path / "s.db")]
    )

    assert result.exit_code == 0, result.output
    lines = result.output.splitlines()
    assert len(lines) == 2
    assert lines[1].startswith(f"rule change not in force (the previous rules stay): {ROLLOUTS} at ")
    assert "quorum_typo" in lines[1]


def test_plan_refuses_a_base_whose_rules_do_not_read(git_repo: GitRepo, tmp_path: Path) -> None:
    bootstrap_with(git_repo, {ROLLOUTS: rollouts_policy(approvers_typo=["mallory"])})
    git_repo.git("checkout", "-q", "-b", "feature")
    pr.land(git_repo, {"changes/ramp.yaml": pr.ramp("ramp-all", "checkout", 100)}, approvers=())

    with Store.open(tmp_path / "empty.db") as store, pytest.raises(RulesInvalid) as raised:
        build_plan(git_repo.path, base="main", store=store)
    assert ROLLOUTS in str(raised.value)

    code = CliRunner().invoke(main, ["plan", str(git_repo.path), "--base", "main"])
    assert code.exit_code != 0
    assert ROLLOUTS in code.output and "approvers_typo" in code.output


def test_check_approvals_fails_against_a_base_whose_rules_do_not_read(git_repo: GitRepo) -> None:
    sc = PullRequestScenario.create(git_repo)
    sc.push_main({ROLLOUTS: rollouts_policy(approvers_typo=["mallory"])})
    sc.open(2, {"changes/ramp.yaml": pr.ramp("ramp-all", "checkout", 100)})

    with (
        GitRepository.open(sc.repo.path) as repo,
        sc.gh.client() as client,
        pytest.raises(RulesInvalid) as raised,
    ):
        evaluate_pull_request(repo, client, 2, now=sc.now())
    assert ROLLOUTS in str(raised.value) and "approvers_typo" in str(raised.value)

    with serve(sc.gh) as url:
        env = {"GITHUB_TOKEN": "fake-token", "GITHUB_API_URL": url, "GITHUB_REPOSITORY": REPOSITORY}
        result = CliRunner().invoke(
            main, ["check-approvals", "--pr", "2", "--repo", str(sc.repo.path)], env=env
        )
    assert result.exit_code == EXIT_FINDINGS
    assert ROLLOUTS in result.output
    assert [(s["sha"], s["state"]) for s in sc.gh.statuses] == [(sc.pulls[2].head, "failure")]
    assert sc.gh.statuses[0]["description"].startswith(f"the base's rules do not read: {ROLLOUTS}")
