"""One factory picks the approval source: the option, else the project's `approvals.source`."""

from __future__ import annotations

from collections.abc import Iterator

import pytest

from reconciler.approvals.factory import approval_kind, approval_source, project_repository
from reconciler.approvals.github import GitHubSource
from reconciler.approvals.trailers import TrailerSource
from reconciler.errors import ConfigError
from reconciler.gitrepo.repository import GitRepository
from reconciler.model.documents import Project
from tests.support import policyrepo as pr
from tests.support.fakegithub import FakeGitHub
from tests.support.gitutil import GitRepo


def project(source: str = "github", repository: str | None = "acme/feature-flag-policies") -> Project:
    data = pr.project(source)
    if repository is None:
        del data["spec"]["github"]
    else:
        data["spec"]["github"] = {"repository": repository}
    return Project.model_validate(data)


@pytest.fixture
def repo(git_repo: GitRepo) -> Iterator[GitRepository]:
    with GitRepository.open(str(git_repo.path)) as opened:
        yield opened


def test_the_option_wins_over_the_project_and_nothing_is_chosen_before_a_project() -> None:
    assert approval_kind(project("github"), "trailers") == "trailers"
    assert approval_kind(project("trailers"), "github") == "github"
    assert approval_kind(project("github")) == "github"
    assert approval_kind(None) is None
    assert approval_kind(None, "github") == "github"


def test_the_repository_is_the_projects_when_it_names_one() -> None:
    assert project_repository(project(repository="acme/flags")) == "acme/flags"
    assert project_repository(project(repository=None)) is None
    assert project_repository(None) is None


def test_trailers_judge_until_a_project_says_otherwise(repo: GitRepository) -> None:
    assert isinstance(approval_source(None, repo), TrailerSource)
    assert isinstance(approval_source(project("trailers"), repo), TrailerSource)
    assert isinstance(approval_source(project("github"), repo, override="trailers"), TrailerSource)


def test_github_approvals_use_the_client_given(repo: GitRepository) -> None:
    with FakeGitHub("acme/feature-flag-policies").client() as client:
        source = approval_source(project("github"), repo, client)
        assert isinstance(source, GitHubSource)
        assert source.client is client


def test_github_approvals_without_a_client_read_the_projects_repository_with_the_token(
    repo: GitRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv("GITHUB_TOKEN", "fake-token")
    monkeypatch.delenv("GITHUB_REPOSITORY", raising=False)
    source = approval_source(project("github", repository="acme/flags"), repo)
    assert isinstance(source, GitHubSource)
    with source.client as client:
        assert client.repository == "acme/flags"


def test_github_approvals_without_a_token_are_refused_before_github_is_asked(
    repo: GitRepository, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.delenv("GITHUB_TOKEN", raising=False)
    with pytest.raises(ConfigError, match=r"GITHUB_TOKEN is not set.*--approvals trailers"):
        approval_source(project("github"), repo)
    with pytest.raises(ConfigError, match="GITHUB_TOKEN is not set"):
        approval_source(None, repo, override="github")
