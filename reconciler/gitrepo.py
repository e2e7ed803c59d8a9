"""Git access with GitPython: resolving refs and reading the files of a commit.

The only module that talks to git. `GitRepository.source_at` exposes a commit's tree through
the same `FileSource` interface as a directory, so `loader.load_repository` reads a commit the
way it reads a checkout (the validator's `--base REF`, the reconciler's commits).
"""

from __future__ import annotations

import os
from collections.abc import Iterable

import git
from git.exc import BadName, BadObject

from reconciler.errors import DocumentError, GitError
from reconciler.yamlio import MAX_FILE_BYTES


class GitRepository:
    """A git repository on disk (a work tree or a bare repository)."""

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        try:
            self.repo = git.Repo(self.path, search_parent_directories=False)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as err:
            raise GitError(f"{self.path} is not a git repository") from err

    def resolve(self, ref: str) -> str:
        """The full sha of the commit `ref` names (a branch, tag, sha or `HEAD~2`)."""
        try:
            commit = self.repo.commit(ref)
        except (BadName, BadObject, ValueError, git.GitCommandError) as err:
            raise GitError(f"{ref!r} names no commit in {self.path}: fetch it or check the spelling") from err
        return str(commit.hexsha)

    def source_at(self, commit: str, subdir: str = "") -> GitTreeSource:
        """The files of `commit`'s tree (below `subdir` when given), as a `FileSource`."""
        sha = self.resolve(commit)
        tree = self.repo.commit(sha).tree
        subdir = subdir.strip("/")
        if subdir:
            try:
                tree = tree / subdir
            except KeyError as err:
                raise GitError(f"{subdir!r} does not exist at commit {sha[:12]}") from err
            if tree.type != "tree":
                raise GitError(f"{subdir!r} is not a directory at commit {sha[:12]}")
        return GitTreeSource(self.repo, tree, f"{sha[:12]}:{subdir}" if subdir else sha[:12])


class GitTreeSource:
    """The regular files of one git tree, read through the object database."""

    def __init__(self, repo: git.Repo, tree: git.Tree, label: str):
        self._repo = repo
        self._label = label
        self._blobs: dict[str, git.Blob] = {}
        root = str(tree.path) + "/" if tree.path else ""
        for item in tree.traverse():
            # Regular files only: symlinks (mode 120000) and submodules are not documents.
            if isinstance(item, git.Blob) and item.mode & 0o170000 == 0o100000:
                self._blobs[str(item.path)[len(root) :]] = item

    @property
    def label(self) -> str:
        return self._label

    def paths(self) -> Iterable[str]:
        return sorted(self._blobs)

    def read(self, path: str) -> bytes:
        blob = self._blobs.get(path)
        if blob is None:
            raise DocumentError(path, f"no such file at {self._label}")
        stream = self._repo.odb.stream(blob.binsha)
        data: bytes = stream.read(MAX_FILE_BYTES + 1)
        return data
