"""Git access on real repositories: clones by URL, the first-parent walk, subdirectories, rewrites."""

from __future__ import annotations

from collections.abc import Callable, Iterator
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import pytest

from reconciler.errors import GitError
from reconciler.gitrepo.log import ChangeStatus, parse_trailer_lines
from reconciler.gitrepo.repository import (
    FileChange,
    GitRepository,
    clone_path,
    default_cache_dir,
    is_url,
    redact,
)
from tests.support.gitutil import GitRepo
from tests.support.people import BOB, CAROL, EPOCH

OpenRepo = Callable[..., GitRepository]


def changed(
    repo: GitRepo, commit: str, status: ChangeStatus, path: str, old_path: str | None = None, subdir: str = ""
) -> FileChange:
    """What the walk should report for `path` at `commit`: its blob id as git itself resolves it."""
    blob = None if status == "deleted" else repo.git("rev-parse", f"{commit}:{subdir}{path}")
    return FileChange(status, path, old_path, blob, None if status == "deleted" else 0o100644)


def bare_remote(tmp_path: Path, work: GitRepo, branch: str = "main") -> Path:
    """A bare repository that `work` pushes to, as a hosted remote would be."""
    remote = tmp_path / "remote.git"
    work.git("init", "-q", "--bare", "-b", branch, str(remote))
    work.git("remote", "add", "origin", str(remote))
    work.git("push", "-q", "origin", branch)
    return remote


def merge(repo: GitRepo, branch: str, message: str) -> str:
    """A merge commit on the current branch, as GitHub's merge button makes."""
    repo.clock += 60
    date = f"{repo.clock} +0000"
    repo.git(
        "merge",
        "-q",
        "--no-ff",
        "-m",
        message,
        branch,
        env={"GIT_AUTHOR_DATE": date, "GIT_COMMITTER_DATE": date},
    )
    return repo.head()


@pytest.fixture
def open_repo() -> Iterator[OpenRepo]:
    """`GitRepository.open`, closing every repository it opened when the test ends."""
    opened: list[GitRepository] = []

    def open_(*args: Any, **kwargs: Any) -> GitRepository:
        repo = GitRepository.open(*args, **kwargs)
        opened.append(repo)
        return repo

    yield open_
    for repo in opened:
        repo.close()


# --- opening ------------------------------------------------------------------------------------


def test_a_url_is_cloned_into_the_cache_and_fetched_on_every_open(
    open_repo: OpenRepo, git_repo: GitRepo, tmp_path: Path
) -> None:
    git_repo.write("changes/a.yaml", "a: 1\n")
    first = git_repo.commit("First change")
    remote = bare_remote(tmp_path, git_repo)
    url = remote.as_uri()
    cache = tmp_path / "cache"

    repo = open_repo(url, cache_dir=cache)
    assert repo.head() == first
    assert Path(repo.path) == clone_path(url, cache)
    assert repo.url == url

    git_repo.write("changes/b.yaml", "b: 2\n")
    second = git_repo.commit("Second change")
    git_repo.git("push", "-q", "origin", "main")
    again = open_repo(url, cache_dir=cache)
    assert again.path == repo.path  # the same cached clone, fetched
    assert again.head() == second
    assert again.read_file(second, "changes/b.yaml") == b"b: 2\n"


def test_the_default_branch_is_the_remotes_default(open_repo: OpenRepo, tmp_path: Path) -> None:
    work = GitRepo.init(tmp_path / "work", branch="trunk")
    work.write("x.yaml", "x: 1\n")
    trunk = work.commit("On trunk")
    work.git("checkout", "-q", "-b", "other")
    work.write("x.yaml", "x: 2\n")
    other = work.commit("On other")
    remote = bare_remote(tmp_path, work, branch="trunk")
    work.git("push", "-q", "origin", "other")

    assert open_repo(remote.as_uri(), cache_dir=tmp_path / "c").head() == trunk
    assert open_repo(remote.as_uri(), branch="other", cache_dir=tmp_path / "c").head() == other
    # The remote's default branch changes: the cached clone follows on the next fetch.
    work.git("--git-dir", str(remote), "symbolic-ref", "HEAD", "refs/heads/other")
    assert open_repo(remote.as_uri(), cache_dir=tmp_path / "c").head() == other


def test_a_local_repository_is_read_directly_and_fetched_only_when_asked(
    open_repo: OpenRepo, tmp_path: Path, git_repo: GitRepo
) -> None:
    git_repo.write("a.yaml", "a: 1\n")
    pushed = git_repo.commit("Pushed")
    remote = bare_remote(tmp_path, git_repo)
    clone = GitRepo(tmp_path / "clone")
    git_repo.git("clone", "-q", str(remote), str(clone.path))
    git_repo.write("a.yaml", "a: 2\n")
    newer = git_repo.commit("Pushed later")
    git_repo.git("push", "-q", "origin", "main")

    assert open_repo(clone.path).head() == pushed  # no network unless asked
    fetched = open_repo(clone.path, fetch=True)
    assert fetched.tracked_ref == "refs/remotes/origin/HEAD"
    assert fetched.head() == newer
    assert open_repo(clone.path, branch="main", fetch=True).head() == newer
    assert open_repo(git_repo.path).head() == newer


def test_a_path_that_is_not_a_repository_says_so(open_repo: OpenRepo, tmp_path: Path) -> None:
    with pytest.raises(GitError, match="is not a git repository"):
        open_repo(tmp_path)
    with pytest.raises(GitError, match="is not a git repository"):
        open_repo(tmp_path / "missing")


def test_an_unreachable_remote_fails_clearly_and_leaves_no_partial_clone(
    open_repo: OpenRepo, tmp_path: Path
) -> None:
    url = (tmp_path / "nowhere.git").as_uri()
    with pytest.raises(GitError, match=r"cannot clone .*nowhere\.git.*Check the URL"):
        open_repo(url, cache_dir=tmp_path / "cache")
    assert list((tmp_path / "cache" / "repos").iterdir()) == [
        clone_path(url, tmp_path / "cache").with_suffix(".git.lock")
    ]


def test_a_remote_that_disappears_after_cloning_fails_the_fetch(
    open_repo: OpenRepo, git_repo: GitRepo, tmp_path: Path
) -> None:
    git_repo.commit("Root")
    remote = bare_remote(tmp_path, git_repo)
    open_repo(remote.as_uri(), cache_dir=tmp_path / "c")
    remote.rename(tmp_path / "moved.git")
    with pytest.raises(GitError, match=r"cannot fetch .*nothing was changed"):
        open_repo(remote.as_uri(), cache_dir=tmp_path / "c")


def test_an_unknown_branch_or_ref_is_named(open_repo: OpenRepo, git_repo: GitRepo) -> None:
    git_repo.commit("Root")
    with pytest.raises(GitError, match=r"release does not exist .*local branches: main.*--branch"):
        open_repo(git_repo.path, branch="release").head()
    with pytest.raises(GitError, match="'v9' names no commit"):
        open_repo(git_repo.path).resolve("v9")


def test_fetching_a_repository_without_origin_is_refused(open_repo: OpenRepo, git_repo: GitRepo) -> None:
    git_repo.commit("Root")
    with pytest.raises(GitError, match="no remote 'origin'"):
        open_repo(git_repo.path, fetch=True)


# --- the walk -----------------------------------------------------------------------------------


def test_the_walk_lists_commits_oldest_first_with_metadata_and_changes(
    open_repo: OpenRepo, git_repo: GitRepo
) -> None:
    git_repo.write("policies/p.yaml", "p: 1\n")
    git_repo.write("changes/old.yaml", "o: 1\n")
    root = git_repo.commit("Bootstrap", when=EPOCH)
    git_repo.write("changes/new.yaml", "n: 1\n")
    git_repo.write("policies/p.yaml", "p: 2\n")
    git_repo.git("mv", "changes/old.yaml", "changes/renamed.yaml")
    second = git_repo.commit(
        "Ramp checkout",
        author=BOB.identity,
        committer=CAROL.identity,
        trailers=[("Approved-by", "dave")],
        when=EPOCH + 600,
    )
    git_repo.remove("changes/new.yaml")
    third = git_repo.commit("Drop a change")

    repo = open_repo(git_repo.path)
    commits = repo.first_parent_walk(None, repo.head())
    assert [c.sha for c in commits] == [root, second, third]
    assert commits[0].parent is None
    assert commits[0].changes == [
        changed(git_repo, root, "added", "changes/old.yaml"),
        changed(git_repo, root, "added", "policies/p.yaml"),
    ]
    info = commits[1]
    assert info.parent == root
    assert (info.author_name, info.author_email) == BOB.identity
    assert (info.committer_name, info.committer_email) == CAROL.identity
    assert info.authored_at == datetime.fromtimestamp(EPOCH + 600, tz=UTC)
    assert info.message == "Ramp checkout\n\nApproved-by: dave\n"
    assert info.trailers == [("Approved-by", "dave")]
    assert sorted(info.changes, key=lambda c: c.path) == [
        changed(git_repo, second, "added", "changes/new.yaml"),
        changed(git_repo, second, "renamed", "changes/renamed.yaml", "changes/old.yaml"),
        changed(git_repo, second, "modified", "policies/p.yaml"),
    ]
    assert commits[2].changes == [FileChange("deleted", "changes/new.yaml")]


def test_the_walk_starts_after_since_and_is_empty_at_the_head(open_repo: OpenRepo, git_repo: GitRepo) -> None:
    shas = [git_repo.commit(f"Commit {n}") for n in range(4)]
    repo = open_repo(git_repo.path)
    assert [c.sha for c in repo.first_parent_walk(shas[1], shas[3])] == shas[2:]
    assert repo.first_parent_walk(shas[3], shas[3]) == []
    assert [c.sha for c in repo.first_parent_walk(None, shas[2])] == shas[:3]
    # Counting agrees with walking, without the diffs.
    assert [repo.count_first_parent(shas[1], shas[3]), repo.count_first_parent(None, shas[2])] == [2, 3]
    assert repo.count_first_parent(shas[3], shas[3]) == 0


def test_merges_are_walked_by_first_parent_with_changes_against_it(
    open_repo: OpenRepo, git_repo: GitRepo
) -> None:
    git_repo.write("changes/base.yaml", "b: 1\n")
    base = git_repo.commit("Base")
    git_repo.git("checkout", "-q", "-b", "feature")
    git_repo.write("changes/one.yaml", "1\n")
    side1 = git_repo.commit("Side 1")
    git_repo.write("changes/two.yaml", "2\n")
    side2 = git_repo.commit("Side 2")
    git_repo.git("checkout", "-q", "main")
    git_repo.write("changes/main.yaml", "m\n")
    on_main = git_repo.commit("On main meanwhile")
    merged = merge(git_repo, "feature", "Merge pull request #7 from feature\n\nApproved-by: erin")

    repo = open_repo(git_repo.path)
    commits = repo.first_parent_walk(None, merged)
    assert [c.sha for c in commits] == [base, on_main, merged]
    assert side1 not in {c.sha for c in commits} and side2 not in {c.sha for c in commits}
    assert commits[-1].parent == on_main
    assert commits[-1].changes == [
        changed(git_repo, merged, "added", "changes/one.yaml"),
        changed(git_repo, merged, "added", "changes/two.yaml"),
    ]
    assert commits[-1].trailers == [("Approved-by", "erin")]


def test_a_force_push_breaks_ancestry_and_the_walk_refuses_to_guess(
    open_repo: OpenRepo, git_repo: GitRepo, tmp_path: Path
) -> None:
    git_repo.commit("Root")
    applied = git_repo.commit("Applied once")
    remote = bare_remote(tmp_path, git_repo)
    repo = open_repo(remote.as_uri(), cache_dir=tmp_path / "c")
    assert repo.is_ancestor(applied, repo.head())

    git_repo.git("reset", "-q", "--hard", "HEAD~1")
    rewritten = git_repo.commit("Rewritten")
    git_repo.git("push", "-q", "--force", "origin", "main")
    repo = open_repo(remote.as_uri(), cache_dir=tmp_path / "c")
    assert repo.head() == rewritten
    assert not repo.is_ancestor(applied, rewritten)
    assert repo.is_ancestor(rewritten, rewritten)
    with pytest.raises(GitError, match=r"is not an ancestor .*rewritten \(force-push\)"):
        repo.first_parent_walk(applied, rewritten)


# --- a policy repository inside a monorepo --------------------------------------------------------


def test_a_subdirectory_is_the_repository_root_and_everything_else_is_ignored(
    open_repo: OpenRepo, git_repo: GitRepo
) -> None:
    git_repo.write("services/api/main.py", "print()\n")
    git_repo.write("flags/reconciler.yaml", "project: 1\n")
    root = git_repo.commit("Monorepo")
    git_repo.write("services/api/main.py", "print(1)\n")
    outside = git_repo.commit("Code only")
    (git_repo.path / "flags" / "changes").mkdir()
    git_repo.git("mv", "services/api/main.py", "flags/changes/moved-in.yaml")
    git_repo.git("mv", "flags/reconciler.yaml", "flags/project.yaml")
    moved = git_repo.commit("Move things")
    (git_repo.path / "docs").mkdir()
    git_repo.git("mv", "flags/changes/moved-in.yaml", "docs/moved-out.yaml")
    out = git_repo.commit("Move out")

    repo = open_repo(git_repo.path, subdir="/flags/")
    commits = repo.first_parent_walk(None, repo.head())
    assert [c.sha for c in commits] == [root, outside, moved, out]
    assert commits[0].changes == [changed(git_repo, root, "added", "reconciler.yaml", subdir="flags/")]
    assert commits[1].changes == []
    assert sorted(commits[2].changes, key=lambda c: c.path) == [
        changed(git_repo, moved, "added", "changes/moved-in.yaml", subdir="flags/"),
        changed(git_repo, moved, "renamed", "project.yaml", "reconciler.yaml", subdir="flags/"),
    ]
    assert commits[3].changes == [FileChange("deleted", "changes/moved-in.yaml")]
    assert repo.read_file(root, "reconciler.yaml") == b"project: 1\n"
    assert repo.read_file(moved, "reconciler.yaml") is None
    assert repo.read_file(root, "services/api/main.py") is None
    source = repo.source(moved)
    assert list(source.paths()) == ["changes/moved-in.yaml", "project.yaml"]
    assert source.read("project.yaml") == b"project: 1\n"


# --- files --------------------------------------------------------------------------------------


def test_files_are_read_as_they_were_at_each_commit(open_repo: OpenRepo, git_repo: GitRepo) -> None:
    git_repo.write("changes/a.yaml", "version: 1\n")
    first = git_repo.commit("One")
    git_repo.write("changes/a.yaml", "version: 2\n")
    second = git_repo.commit("Two")
    repo = open_repo(git_repo.path)
    assert repo.read_file(first, "changes/a.yaml") == b"version: 1\n"
    assert repo.read_file(second, "changes/a.yaml") == b"version: 2\n"
    assert repo.read_file(first, "changes/missing.yaml") is None
    assert repo.read_file(first, "changes") is None  # a directory is not a file


def test_the_walk_s_files_are_read_by_blob_id_in_one_exchange(open_repo: OpenRepo, git_repo: GitRepo) -> None:
    git_repo.write("changes/a.yaml", "version: 1\n")
    git_repo.write("changes/b.yaml", "version: 1\n")  # same bytes, same blob
    git_repo.commit("One")
    git_repo.write("changes/a.yaml", "version: 2\n")
    git_repo.commit("Two")
    repo = open_repo(git_repo.path)
    blobs = [
        change.blob or "" for commit in repo.first_parent_walk(None, repo.head()) for change in commit.changes
    ]
    assert len(blobs) == 3 and "" not in blobs and len(set(blobs)) == 2
    tree = git_repo.git("rev-parse", "HEAD^{tree}")  # an object that is not a blob
    read = repo.read_blobs([*blobs, tree, "0" * 40])
    assert [read[b] for b in blobs] == [b"version: 1\n", b"version: 1\n", b"version: 2\n"]
    assert read[tree] is None and read["0" * 40] is None


# --- trailers and helpers -----------------------------------------------------------------------


def test_trailers_come_from_the_last_paragraph_only_and_are_unfolded(
    open_repo: OpenRepo, git_repo: GitRepo
) -> None:
    message = (
        "Ramp checkout\n\nApproved-by: mallory\nis prose here, not a trailer block.\n\n"
        "Approved-by: bob\nReviewed-by: Carol\n  Merger\nApproved-by: dave"
    )
    sha = git_repo.commit(message)
    (info,) = open_repo(git_repo.path).first_parent_walk(None, sha)
    assert info.trailers == [("Approved-by", "bob"), ("Reviewed-by", "Carol Merger"), ("Approved-by", "dave")]


def test_a_message_without_a_trailer_block_has_no_trailers(open_repo: OpenRepo, git_repo: GitRepo) -> None:
    sha = git_repo.commit("Fix: the title looks like a trailer\n\nBut this is prose.")
    (info,) = open_repo(git_repo.path).first_parent_walk(None, sha)
    assert info.trailers == []


def test_trailer_lines_parse_into_pairs() -> None:
    assert parse_trailer_lines("Approved-by: bob\nSigned-off-by: A <a@x>\n") == [
        ("Approved-by", "bob"),
        ("Signed-off-by", "A <a@x>"),
    ]


def test_urls_and_paths_are_told_apart_and_credentials_masked() -> None:
    assert is_url("https://github.com/acme/flags.git")
    assert is_url("git@github.com:acme/flags.git")
    assert is_url("file:///srv/flags.git")
    assert not is_url("/srv/flags")
    assert not is_url("flags")
    assert (
        redact("https://x-access-token:s3cret@github.com/acme/flags") == "https://***@github.com/acme/flags"
    )


def test_the_cache_follows_xdg_and_is_keyed_by_url(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    monkeypatch.setenv("XDG_CACHE_HOME", str(tmp_path / "xdg"))
    assert default_cache_dir() == tmp_path / "xdg" / "reconciler"
    a, b = clone_path("https://h/a.git"), clone_path("https://h/b.git")
    assert a.parent == b.parent == tmp_path / "xdg" / "reconciler" / "repos"
    assert a != b
    monkeypatch.delenv("XDG_CACHE_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))
    assert default_cache_dir() == tmp_path / "home" / ".cache" / "reconciler"
