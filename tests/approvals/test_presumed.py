"""The offline replay's approval source: every member's approval presumed, the rest from git."""

from __future__ import annotations

from datetime import timedelta

import pytest

from reconciler.approvals.factory import approval_source
from reconciler.approvals.presumed import PresumedSource
from reconciler.approvals.trailers import TrailerSource
from reconciler.gitrepo.repository import GitRepository
from reconciler.model.documents import Members, Project
from reconciler.policy import Subject, evaluate
from tests.support import policyrepo as pr
from tests.support.gitutil import GitRepo
from tests.support.people import BOB, CAROL, TEAM
from tests.support.policyutil import policy


@pytest.fixture
def landed(git_repo: GitRepo) -> GitRepository:
    """bob adds a change request; carol pushes it to main."""
    git_repo.write("changes/ramp.yaml", pr.ramp("ramp", "checkout", 50))
    git_repo.commit("Ramp checkout", author=BOB.identity, committer=CAROL.identity)
    return GitRepository.open(str(git_repo.path))


def test_offline_github_approvals_are_presumed_and_trailers_stay_trailers(landed: GitRepository) -> None:
    github = Project.model_validate(pr.project("github"))
    trailers = Project.model_validate(pr.project("trailers"))
    with landed:
        assert isinstance(approval_source(github, landed, offline=True), PresumedSource)
        assert isinstance(approval_source(trailers, landed, offline=True), TrailerSource)


def test_every_member_approves_and_the_requester_is_the_author(landed: GitRepository) -> None:
    members = Members.model_validate(pr.members())
    with landed:
        [commit] = landed.first_parent_walk(None, landed.head())
        context = PresumedSource(landed).context(commit, "changes/ramp.yaml", members)
    assert sorted(v.login for v in context.votes) == sorted(p.login for p in TEAM)
    assert {(v.decision, v.source, v.commit_id) for v in context.votes} == {
        ("approved", "presumed", commit.sha)
    }
    assert (context.requesters, context.merger) == (frozenset({"bob"}), "carol")
    assert context.created_at == commit.authored_at


@pytest.mark.parametrize(("users", "approved"), [(["bob"], False), (["bob", "carol"], True)])
def test_a_presumed_approval_never_lets_the_requester_approve_their_own_change(
    landed: GitRepository, users: list[str], approved: bool
) -> None:
    members = Members.model_validate(pr.members())
    with landed:
        [commit] = landed.first_parent_walk(None, landed.head())
        context = PresumedSource(landed).context(commit, "changes/ramp.yaml", members)
    evaluation = evaluate(
        Subject.flag_change("feature_flag.update", environment="production", flag_key="checkout"),
        [policy(approver_config={"quorum": 1, "users": users})],
        members,
        context.votes,
        requesters=context.requesters,
        created_at=context.created_at,
        now=context.created_at + timedelta(minutes=1),
    )
    assert evaluation.approved is approved
