"""Which approval source judges a repository: the `--approvals` option, else `approvals.source`.

One place decides, for the reconcile pass and for the service's live pull requests alike; an
offline replay (`ReconcileConfig.offline`) presumes GitHub approvals instead of reading them.
`approvals.source: github` also needs the GitHub repository the reviews are read from:
`spec.github.repository` of the project, or `GITHUB_REPOSITORY` (see `GitHubClient.from_env`).
"""

from __future__ import annotations

import os
from typing import Literal

from reconciler.approvals.github import GitHubSource
from reconciler.approvals.presumed import PresumedSource
from reconciler.approvals.source import ApprovalSource
from reconciler.approvals.trailers import TrailerSource
from reconciler.errors import ConfigError
from reconciler.github import GitHubClient
from reconciler.gitrepo.repository import GitRepository
from reconciler.model.documents import Project

SourceKind = Literal["github", "trailers"]


def approval_kind(project: Project | None, override: SourceKind | None = None) -> SourceKind | None:
    """Where approvals come from: `override` (the option), else the project's; None before there
    is a project."""
    if override is not None:
        return override
    return project.spec.approvals.source if project is not None else None


def project_repository(project: Project | None) -> str | None:
    """`spec.github.repository` of the project (`owner/name`), or None when it names none."""
    github = project.spec.github if project is not None else None
    return github.repository if github else None


def approval_source(
    project: Project | None,
    repo: GitRepository,
    github: GitHubClient | None = None,
    override: SourceKind | None = None,
    *,
    offline: bool = False,
) -> ApprovalSource:
    """The source that judges `repo`: trailers until a project says otherwise.

    With GitHub approvals, `github` is the client to read reviews with; without one a client is
    made from the environment, which needs `GITHUB_TOKEN`. `offline` (a replay of merged
    history without a store) never asks GitHub: its approvals are presumed (`PresumedSource`).
    """
    if (approval_kind(project, override) or "trailers") == "trailers":
        return TrailerSource(repo)
    if offline:
        return PresumedSource(repo)
    if github is None and not os.environ.get("GITHUB_TOKEN"):
        # Unauthenticated calls would see no private repository and hit GitHub's rate limit at once.
        raise ConfigError(
            "reconciler.yaml sets approvals.source: github, but GITHUB_TOKEN is not set: export a token "
            "that can read pull requests (see docs/github-setup.md), or pass --approvals trailers"
        )
    return GitHubSource(repo, github or GitHubClient.from_env(project_repository(project)))
