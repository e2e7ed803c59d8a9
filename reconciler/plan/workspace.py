"""The two trees a plan compares: the working tree of PATH and its base.

The working tree is the directory as it is on disk (committed or not): what a pull request's
checkout holds. The base is a commit of the git repository PATH lives in (PATH may be a
subdirectory of it, as `--path` allows for the reconciler): `--base REF` when given, else the
merge-base of HEAD with the branch it tracks (its upstream, else `origin/HEAD`, `origin/main`,
`origin/master`, `main`, `master`, the first that exists). A plain directory has an empty base:
everything in it is new, except, when planned against a store, what that store already holds
(change requests it decided, rules in force).
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from reconciler.errors import ConfigError, GitError
from reconciler.gitrepo.repository import CommitInfo, GitRepository
from reconciler.repo.sources import DirectorySource, FileSource

TRACKED_CANDIDATES = ("@{upstream}", "origin/HEAD", "origin/main", "origin/master", "main", "master")


@dataclass
class Workspace:
    """PATH's files now, and its base (a commit and the files at it, or nothing)."""

    root: Path
    files: DirectorySource
    git: GitRepository | None = None
    subdir: str = ""
    base: str | None = None
    base_label: str = "empty base (not a git repository: everything is new)"
    base_files: FileSource | None = None
    head: str | None = None
    _base_paths: set[str] = field(default_factory=set)
    _adders: dict[str, CommitInfo] | None = None

    @property
    def git_root(self) -> str:
        return self.git.path if self.git else str(self.root)

    def base_read(self, path: str) -> bytes | None:
        if self.base_files is None or path not in self._base_paths:
            return None
        return self.base_files.read(path)

    def base_paths(self) -> set[str]:
        return set(self._base_paths)

    def requester(self, path: str) -> tuple[str | None, str | None, datetime | None]:
        """Author name, email and time of the commit since the base that added `path`, if committed."""
        if self._adders is None:
            self._adders = self._adding_commits()
        added = self._adders.get(path)
        if added is None:
            return None, None, None
        return added.author_name, added.author_email, added.authored_at

    def _adding_commits(self) -> dict[str, CommitInfo]:
        """For each file added since the base, the first commit that added it (one `git log`)."""
        if self.git is None or self.head is None or self.head == self.base:
            return {}
        since = self.base
        if since is not None and not self.git.is_ancestor(since, self.head):
            since = self.git.merge_base(since, self.head)
        adders: dict[str, CommitInfo] = {}
        for commit in self.git.first_parent_walk(since, self.head):
            for change in commit.changes:
                if change.status in ("added", "renamed"):
                    adders.setdefault(change.path, commit)
        return adders

    def close(self) -> None:
        if self.git is not None:
            self.git.close()


def open_workspace(path: str | os.PathLike[str], base: str | None) -> Workspace:
    """The working tree at `path` and its base (see the module docstring for the default)."""
    root = Path(path).resolve()
    workspace = Workspace(root, DirectorySource(root))
    try:
        workspace.git = GitRepository.open(root)  # a folder inside a work tree: that repository and subdir
    except GitError:
        if base is not None:
            raise ConfigError(f"--base {base} needs a git repository, and {root} is not inside one") from None
        return workspace
    workspace.subdir = workspace.git.subdir
    workspace.head = _head(workspace.git)
    workspace.base, workspace.base_label = _base(workspace.git, base, workspace.head)
    if workspace.base is not None:
        _load_base(workspace)
    return workspace


def _head(repo: GitRepository) -> str | None:
    try:
        return repo.resolve("HEAD")
    except GitError:
        return None  # a repository without commits yet


def _base(repo: GitRepository, ref: str | None, head: str | None) -> tuple[str | None, str]:
    if ref is not None:
        sha = repo.resolve(ref)
        return sha, f"{ref} ({sha[:12]})"
    if head is None:
        return None, "empty base (no commits yet: everything is new)"
    for candidate in TRACKED_CANDIDATES:
        try:
            tracked = repo.resolve(candidate)
        except GitError:
            continue
        fork = repo.merge_base(tracked, head)
        if fork is not None:
            return fork, f"merge-base of HEAD with {candidate} ({fork[:12]})"
    raise ConfigError(
        f"cannot tell which branch {repo.path} tracks (no upstream, origin/HEAD, main or master): "
        "pass --base REF, e.g. --base origin/main"
    )


def _load_base(workspace: Workspace) -> None:
    assert workspace.git is not None and workspace.base is not None
    try:
        source = workspace.git.source(workspace.base)
    except GitError:
        return  # the directory did not exist at the base: everything in it is new
    workspace.base_files = source
    workspace._base_paths = set(source.paths())
