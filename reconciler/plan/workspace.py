"""The trees a plan compares: the working tree of PATH, its base and the fork point.

The working tree is the directory as it is on disk (committed or not): what a pull request's
checkout holds. The base is a commit of the git repository PATH lives in (PATH may be a
subdirectory of it, as `--path` allows for the reconciler): `--base REF` when given, else the
merge-base of HEAD with the branch it tracks (its upstream, else `origin/HEAD`, `origin/main`,
`origin/master`, `main`, `master`, the first that exists). A plain directory has an empty base:
everything in it is new, except, when planned against a store, what that store already holds
(change requests it decided, rules in force).

The branch's changes are the differences from the fork point: the base itself when HEAD
descends from it (a pull request's merge checkout, a branch rebased on it), else the
merge-base of the two, so that files the base gained after the branch left it are not taken
for files the branch removed. The flags the branch's changes apply to are the base's.
`for_commits` makes the same trees from two commits (a pull request's head and base).
"""

from __future__ import annotations

import hashlib
import os
from dataclasses import dataclass, field
from datetime import datetime
from pathlib import Path

from reconciler.errors import ConfigError, GitError
from reconciler.gitrepo.repository import CommitInfo, GitRepository, GitTreeSource
from reconciler.repo.sources import DirectorySource, FileSource

TRACKED_CANDIDATES = ("@{upstream}", "origin/HEAD", "origin/main", "origin/master", "main", "master")


@dataclass
class Workspace:
    """PATH's files now, its base (a commit and the files at it, or nothing), and the fork point."""

    root: Path
    files: FileSource
    git: GitRepository | None = None
    subdir: str = ""
    base: str | None = None
    base_label: str = "empty base (not a git repository: everything is new)"
    base_files: FileSource | None = None
    head: str | None = None
    fork: str | None = None  # where the branch left the base (the base itself when HEAD descends from it)
    fork_files: FileSource | None = None
    _fork_paths: set[str] = field(default_factory=set)
    _adders: dict[str, CommitInfo] | None = None

    @property
    def git_root(self) -> str:
        return self.git.path if self.git else str(self.root)

    def base_read(self, path: str) -> bytes | None:
        """`path` as the branch found it (at the fork point), or None when it was not there."""
        if self.fork_files is None or path not in self._fork_paths:
            return None
        return self.fork_files.read(path)

    def base_paths(self) -> set[str]:
        """The regular files at the fork point: what the branch's changes are measured against."""
        return set(self._fork_paths)

    def base_id(self, path: str) -> str | None:
        """The blob id of `path` at the fork point, or None when it was not there as a regular file."""
        if not isinstance(self.fork_files, GitTreeSource) or path not in self._fork_paths:
            return None
        return self.fork_files.blob_id(path)

    def file_id(self, path: str) -> tuple[str, bytes | None]:
        """The blob id of `path` in the working tree, and its bytes when they had to be read for it.

        A commit's tree knows its ids; a file on disk is hashed as git hashes a blob, so a file
        equals its version at the fork exactly when the ids are equal, without reading that one.
        """
        if isinstance(self.files, GitTreeSource):
            known = self.files.blob_id(path)
            if known is not None:
                return known, None
        data = self.files.read(path)
        return blob_id(data, sha256=len(self.base or "") == 64), data  # a SHA-256 repository's ids

    @classmethod
    def for_commits(cls, git: GitRepository, head: str, base: str, label: str) -> Workspace:
        """The files of commit `head` (a pull request's) as the working tree, against commit `base`."""
        workspace = cls(Path(git.path) / git.subdir, git.source(head), git, git.subdir, head=head)
        workspace.base, workspace.base_label = base, label
        _load_base(workspace)
        return workspace

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
        since = self.fork
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


def blob_id(data: bytes, *, sha256: bool = False) -> str:
    """The id git gives a blob holding `data`."""
    digest = hashlib.sha256() if sha256 else hashlib.sha1()  # noqa: S324 - git's object id, not a secret
    digest.update(b"blob %d\0" % len(data))
    digest.update(data)
    return digest.hexdigest()


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
    git, base, head = workspace.git, workspace.base, workspace.head
    assert git is not None and base is not None
    fork: str | None = base
    if head is not None and head != base and not git.is_ancestor(base, head):
        fork = git.merge_base(base, head)  # None: no common history, so everything is new
    workspace.fork = fork
    workspace.base_files = _files_at(git, base)
    workspace.fork_files = workspace.base_files if fork == base else _files_at(git, fork)
    if workspace.fork_files is not None:
        workspace._fork_paths = set(workspace.fork_files.paths())


def _files_at(git: GitRepository, commit: str | None) -> FileSource | None:
    if commit is None:
        return None
    try:
        return git.source(commit)
    except GitError:
        return None  # the directory did not exist there: everything in it is new
