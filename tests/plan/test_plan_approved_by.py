"""`reconciler plan --approved-by LOGIN`: a verdict previewed with approvals not given yet.

Real git repositories; the hypothetical approvals are judged like reviews (eligibility,
self-approval), labelled as hypothetical in every format, and never reach a store.
"""

from __future__ import annotations

import json
import time
from pathlib import Path

import pytest
from click.testing import CliRunner

from reconciler.cli import main
from reconciler.decision.changes import change_request_id
from reconciler.plan import build_plan
from reconciler.reconcile import ReconcileConfig, reconcile_once
from reconciler.store import ChangeRequestFilter, Store
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.people import ALICE

RAMP = "changes/002-ramp.yaml"


@pytest.fixture
def repo(git_repo: GitRepo) -> GitRepo:
    """main: the rules (production rollouts: 1 flag approver), `checkout` at 10 %; on branch
    `feature`, alice ramps it to 50 %."""
    git_repo.clock = int(time.time()) - 24 * 3600  # recent, so no request has expired
    pr.bootstrap(git_repo)
    pr.land(git_repo, {"changes/001-create.yaml": pr.create_flag("create-checkout", "checkout", rollout=10)})
    git_repo.git("checkout", "-q", "-b", "feature")
    git_repo.write(RAMP, pr.ramp("ramp-checkout", "checkout", 50))
    git_repo.commit("Ramp checkout", author=ALICE.identity)
    return git_repo


def plan(repo: GitRepo, *args: str) -> tuple[int, str]:
    result = CliRunner().invoke(main, ["plan", str(repo.path), *args])
    return result.exit_code, result.output


def test_an_eligible_approval_turns_pending_into_ready(repo: GitRepo) -> None:
    [before] = build_plan(repo.path, base=None, store=None).changes
    [after] = build_plan(repo.path, base=None, store=None, approved_by=["Bob"]).changes
    assert (before.status, after.status) == ("pending", "ready")
    [need] = after.policies
    assert (need.approvals, need.needed, need.approved_by, need.eligible) == (1, 0, ("bob",), ("carol",))
    assert [(v.login, v.counted, v.reason) for v in after.votes] == [("Bob", True, None)]


def test_approvals_that_would_not_count_say_why(repo: GitRepo) -> None:
    result = build_plan(repo.path, base=None, store=None, approved_by=["alice", "dave", "nobody-here"])
    [change] = result.changes
    assert change.status == "pending"
    assert [(v.login, v.counted, v.reason) for v in change.votes] == [
        ("alice", False, "self-approval not allowed"),
        ("dave", False, "not an eligible approver"),
        ("nobody-here", False, "unknown login"),
    ]
    assert result.hypothetical_approvals == ("alice", "dave", "nobody-here")


def test_every_format_labels_the_approvals_hypothetical(repo: GitRepo) -> None:
    code, text = plan(repo, "--approved-by", "bob", "--approved-by", "alice")
    assert code == 1
    assert "hypothetical approvals (not given; never stored or sent): bob, alice" in text
    assert "ready to apply: approved with the hypothetical approvals" in text
    assert "hypothetical approval by alice: does not count: self-approval not allowed" in text

    _code, raw = plan(repo, "--approved-by", "bob", "--format", "json")
    data = json.loads(raw)
    assert data["hypothetical_approvals"] == ["bob"]
    assert data["changes"][0]["votes"] == [{"login": "bob", "counted": True, "reason": None}]
    assert data["changes"][0]["policies"][0]["approved_by"] == ["bob"]

    _code, markdown = plan(repo, "--approved-by", "bob", "--format", "markdown")
    assert "**Hypothetical approvals (not given; never stored or sent)**: bob" in markdown
    assert "- hypothetical approval by bob: counts" in markdown


def test_the_same_login_twice_is_one_approval(repo: GitRepo) -> None:
    result = build_plan(repo.path, base=None, store=None, approved_by=["bob", "BOB", "bob"])
    assert result.hypothetical_approvals == ("bob",)
    assert len(result.changes[0].votes) == 1


def test_nothing_is_written_to_the_store(repo: GitRepo, tmp_path: Path) -> None:
    target = tmp_path / "store.db"
    with Store.open(target) as store:
        reconcile_once(ReconcileConfig(repo=str(repo.path), branch="main"), store)
        before = (store.list_change_requests(ChangeRequestFilter(limit=None)), store.verify_audit())
    data = target.read_bytes()
    code, output = plan(repo, "--store", str(target), "--approved-by", "bob")
    assert code == 1 and "ready to apply: approved with the hypothetical approvals" in output
    assert target.read_bytes() == data
    with Store.open(target) as store:
        assert (store.list_change_requests(ChangeRequestFilter(limit=None)), store.verify_audit()) == before
        assert store.get_change_request(change_request_id(RAMP)) is None


@pytest.mark.parametrize(
    ("login", "says"),
    [
        ("bob;rm -rf /", "is not a GitHub login"),
        ("-bob", "is not a GitHub login"),
        ("x" * 40, "is not a GitHub login"),
        ("<b>bob</b>", "is not a GitHub login"),
        ("", "is not a GitHub login"),
    ],
)
def test_a_login_that_cannot_be_one_is_refused(repo: GitRepo, login: str, says: str) -> None:
    code, output = plan(repo, "--approved-by", login)
    assert code == 2 and says in output and "--approved-by" in output


def test_a_flood_of_logins_is_refused(repo: GitRepo) -> None:
    args = [arg for i in range(101) for arg in ("--approved-by", f"user-{i}")]
    code, output = plan(repo, *args)
    assert code == 2 and "at most 100 logins" in output
