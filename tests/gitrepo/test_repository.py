"""Reading files at a commit through the same FileSource interface as a directory."""

from __future__ import annotations

import shutil
from pathlib import Path

import pytest

from reconciler.errors import DocumentError, GitError
from reconciler.gitrepo.repository import GitRepository
from reconciler.repo.loader import load_repository
from reconciler.repo.sources import DirectorySource, FileSource
from reconciler.repo.yamlio import MAX_FILE_BYTES
from reconciler.validate.pipeline import validate_source
from tests.support.gitutil import GitRepo


def test_source_at_reads_the_tree_of_that_commit_not_the_work_tree(git_repo: GitRepo) -> None:
    git_repo.write("policies/a.yaml", "one: 1\n")
    first = git_repo.commit("first")
    git_repo.write("policies/a.yaml", "one: 2\n")
    git_repo.write("changes/2024/b.yaml", "two: 2\n")
    git_repo.commit("second")
    git_repo.write("policies/a.yaml", "uncommitted\n")

    repo = GitRepository(git_repo.path)
    old = repo.source_at(first)
    assert isinstance(old, FileSource)
    assert list(old.paths()) == ["policies/a.yaml"]
    assert old.read("policies/a.yaml") == b"one: 1\n"
    head = repo.source_at("main")
    assert list(head.paths()) == ["changes/2024/b.yaml", "policies/a.yaml"]
    assert head.read("policies/a.yaml") == b"one: 2\n"


def test_subdir_and_directory_source_list_the_same_relative_paths(git_repo: GitRepo) -> None:
    git_repo.write("policy/reconciler.yaml", "a: 1\n")
    git_repo.write("policy/changes/x.yaml", "b: 1\n")
    git_repo.write("other/ignored.yaml", "c: 1\n")
    sha = git_repo.commit("layout")
    from_git = GitRepository(git_repo.path).source_at(sha, subdir="policy")
    from_dir = DirectorySource(git_repo.path / "policy")
    assert list(from_git.paths()) == list(from_dir.paths()) == ["changes/x.yaml", "reconciler.yaml"]
    assert from_git.read("changes/x.yaml") == from_dir.read("changes/x.yaml")


def test_resolve_gives_full_sha_and_unknown_refs_are_git_errors(git_repo: GitRepo) -> None:
    git_repo.write("a.yaml", "a: 1\n")
    sha = git_repo.commit("one")
    repo = GitRepository(git_repo.path)
    assert repo.resolve("HEAD") == repo.resolve(sha[:8]) == sha
    with pytest.raises(GitError, match="names no commit"):
        repo.resolve("no-such-branch")
    with pytest.raises(GitError, match="does not exist"):
        repo.source_at(sha, subdir="missing")
    with pytest.raises(DocumentError, match="no such file"):
        repo.source_at(sha).read("missing.yaml")


def test_not_a_repository_is_a_git_error(tmp_path: Path) -> None:
    with pytest.raises(GitError, match="not a git repository"):
        GitRepository(tmp_path)


def test_oversized_blob_is_read_only_one_byte_past_the_limit(git_repo: GitRepo) -> None:
    git_repo.write("big.yaml", "x" * (MAX_FILE_BYTES + 5000))
    sha = git_repo.commit("big")
    assert len(GitRepository(git_repo.path).source_at(sha).read("big.yaml")) == MAX_FILE_BYTES + 1
    assert len(DirectorySource(git_repo.path).read("big.yaml")) == MAX_FILE_BYTES + 1


def test_a_commit_loads_exactly_like_its_checkout(git_repo: GitRepo) -> None:
    examples = Path(__file__).resolve().parents[2] / "examples" / "policies"
    shutil.copytree(examples, git_repo.path / "flags")
    (git_repo.path / "flags" / "policies" / "broken.yaml").write_text("kind: [\n", encoding="utf-8")
    sha = git_repo.commit("policies")
    from_git = load_repository(GitRepository(git_repo.path).source_at(sha, subdir="flags"))
    from_dir = load_repository(DirectorySource(git_repo.path / "flags"))
    assert from_git.project == from_dir.project and from_git.members == from_dir.members
    assert from_git.policies == from_dir.policies and len(from_git.policies) == 11
    assert from_git.changes == from_dir.changes and len(from_git.changes) == len(
        list((examples / "changes").rglob("*.yaml"))
    )
    assert from_git.findings == from_dir.findings
    located = validate_source(GitRepository(git_repo.path).source_at(sha, subdir="flags"))
    assert [(f.path, f.line, f.rule) for f in located] == [("policies/broken.yaml", 2, "yaml")]
