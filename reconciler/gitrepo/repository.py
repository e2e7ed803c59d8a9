"""Git access with GitPython: resolving refs and reading the files of a commit.

Only `gitrepo/` talks to git. `GitRepository.source_at` exposes a commit's tree through
the same `FileSource` interface as a directory, so `load_repository` (`repo/loader.py`) reads a
commit the way it reads a checkout (the validator's `--base REF`, the reconciler's commits).

`GitRepository.open` opens the policy repository the reconciler follows: a local path, or a
URL cloned into a cache directory and fetched on every open. `head()` is the tracked branch's
head; `first_parent_walk` lists the first-parent commits since the last applied one, each with
its metadata, trailers and the files it changed against its first parent; `read_file` reads a
file at any commit. An optional subdirectory (`--path`, as Argo CD's and Flux's `path`) holds
the policy repository inside a larger one: files outside it are ignored and paths are
relative to it. The changed files of a whole walk, with their blob ids, come from one `git log
--first-parent --raw -z` run, so a walk over thousands of commits costs about what that command
costs, and `read_blobs` reads them by id without resolving a path in any tree.
"""

from __future__ import annotations

import base64
import hashlib
import os
import re
import shutil
import stat
import subprocess
from collections.abc import Iterable, Mapping
from pathlib import Path
from urllib.parse import unquote, urlsplit, urlunsplit

import git
from filelock import FileLock
from git.exc import BadName, BadObject

from reconciler.errors import DocumentError, GitError
from reconciler.gitrepo.blobs import GIT_ENV, read_blobs
from reconciler.gitrepo.log import (
    LOG_FORMAT,
    CommitInfo,
    FileChange,
    parse_log,
    relative_to_subdir,
)
from reconciler.repo.layout import kind_of_path
from reconciler.repo.sources import not_a_file, not_a_file_message
from reconciler.repo.yamlio import MAX_FILE_BYTES

__all__ = [
    "CommitInfo",
    "FileChange",
    "GitRepository",
    "GitTreeSource",
    "clone_path",
    "default_cache_dir",
    "git_setting",
    "is_url",
    "redact",
    "split_credentials",
]

_SCP_LIKE = re.compile(r"^[A-Za-z0-9_.-]+@[A-Za-z0-9_.-]+:")  # git@github.com:owner/name.git
# Files of a cached clone are the owner's alone: the remote's contents may be private.
_CLONE_MODE = "0600"


class GitRepository:
    """A git repository on disk (a work tree or a bare repository)."""

    # How `open` configured it: the tracked branch (None: the remote's default, or HEAD of a
    # local repository), the subdirectory holding the policy repository ("" for the root), the
    # URL a cached clone mirrors, and whether a local clone is read through origin's refs.
    branch: str | None = None
    subdir: str = ""
    url: str | None = None
    remote_tracking: bool = False

    def __init__(self, path: str | os.PathLike[str]):
        self.path = os.fspath(path)
        try:
            self.repo = git.Repo(self.path, search_parent_directories=False)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as err:
            raise GitError(f"{self.path} is not a git repository") from err

    @classmethod
    def containing(cls, path: str | os.PathLike[str]) -> tuple[GitRepository, str]:
        """The work tree that `path` lies in, and `path` relative to its root (POSIX, "" at the root)."""
        try:
            repo = git.Repo(path, search_parent_directories=True)
        except (git.InvalidGitRepositoryError, git.NoSuchPathError) as err:
            raise GitError(
                f"{os.fspath(path)} is not a git repository, nor inside one: "
                "give the path of a clone, or its URL"
            ) from err
        root = repo.working_tree_dir
        if root is None:
            raise GitError(f"{os.fspath(path)} is in a bare repository: give a work tree")
        relative = os.path.relpath(os.path.realpath(path), os.path.realpath(root))
        return cls(root), "" if relative == "." else relative.replace(os.sep, "/")

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

    def source(self, commit: str) -> GitTreeSource:
        """The policy repository's files at `commit`: `source_at` below the configured subdirectory."""
        return self.source_at(commit, self.subdir)

    # --- opening ------------------------------------------------------------------------------

    @classmethod
    def open(
        cls,
        location: str | os.PathLike[str],
        *,
        branch: str | None = None,
        subdir: str = "",
        cache_dir: str | os.PathLike[str] | None = None,
        fetch: bool = False,
    ) -> GitRepository:
        """Open a local repository, or clone/fetch a URL into the cache directory.

        A URL (`https://…`, `ssh://…`, `file://…`, `git@host:owner/name`) is cloned bare into
        `cache_dir` (default `$XDG_CACHE_HOME/reconciler`, else `~/.cache/reconciler`), keyed
        by a hash of the URL, and fetched on every open (with `branch=None` it follows the
        remote's default branch, even when that changes). A local path is read as it is (a
        folder inside a work tree means that repository, with the folder as `subdir`); with
        `fetch=True` its `origin` is fetched first and the branch is read from origin's refs.
        """
        text = os.fspath(location)
        if is_url(text):
            return cls._open_url(text, branch=branch, subdir=subdir, cache_dir=cache_dir)
        try:
            repo = cls(text)
        except GitError:
            # A folder inside a work tree (`--repo examples/policies`): the enclosing repository,
            # with that folder as the policy repository's subdirectory.
            repo, inner = cls.containing(text)
            subdir = "/".join(part for part in (inner, subdir.strip("/")) if part)
        repo = repo._configured(branch, subdir, url=None, remote_tracking=fetch)
        if fetch:
            repo._fetch_or_close()
        return repo

    @classmethod
    def _open_url(
        cls, url: str, *, branch: str | None, subdir: str, cache_dir: str | os.PathLike[str] | None
    ) -> GitRepository:
        clean, auth = split_credentials(url)
        target = clone_path(clean, cache_dir)
        _private_dirs(Path(cache_dir or default_cache_dir()), target.parent)
        # One process at a time per clone: two reconcilers sharing a cache must not race a fetch.
        with FileLock(f"{target}.lock"):
            _adopt_legacy_clone(url, clean, target)
            if not target.exists():
                _clone(clean, auth, target)
                return cls(target)._configured(branch, subdir, url=clean, remote_tracking=False, auth=auth)
            _scrub_clone(target, clean)
            repo = cls(target)._configured(branch, subdir, url=clean, remote_tracking=False, auth=auth)
            repo._fetch_or_close()
            return repo

    def _configured(
        self,
        branch: str | None,
        subdir: str,
        *,
        url: str | None,
        remote_tracking: bool,
        auth: dict[str, str] | None = None,
    ) -> GitRepository:
        self.branch, self.subdir, self.url = branch, subdir.strip("/"), url
        self.remote_tracking = remote_tracking
        # Never wait for a password on a terminal: the reconciler runs unattended. Credentials
        # reach git through this process's environment only, never its config or command line.
        self.repo.git.update_environment(**GIT_ENV, **(auth or {}))
        return self

    def _fetch_or_close(self) -> None:
        try:
            self.fetch()
        except GitError:
            self.close()
            raise

    def fetch(self) -> None:
        """Fetch the remote's branches (and drop the ones it deleted). Raises GitError when unreachable."""
        where = redact(self.url) if self.url else f"the remote 'origin' of {self.path}"
        if "origin" not in [r.name for r in self.repo.remotes]:
            raise GitError(
                f"{self.path} has no remote 'origin' to fetch from: add one or do not ask to fetch"
            )
        try:
            _private_git(self.repo.git, "fetch", "--prune", "--quiet", "origin")
            if self.url and self.branch is None:
                self._follow_default_branch()
        except git.GitCommandError as err:
            raise GitError(
                f"cannot fetch {where}: {_stderr(err)}. Check the URL, the network and the credentials; "
                "nothing was changed"
            ) from err

    def _follow_default_branch(self) -> None:
        """Point the cached clone's HEAD where the remote's points now (its default branch may change)."""
        answer = str(self.repo.git.ls_remote("--symref", "origin", "HEAD"))
        match = re.match(r"ref: (refs/heads/\S+)\tHEAD", answer)
        if match:
            self.repo.git.symbolic_ref("HEAD", match.group(1))

    # --- refs ---------------------------------------------------------------------------------

    @property
    def tracked_ref(self) -> str:
        """The ref the tracked branch is read from (`refs/heads/main`, `refs/remotes/origin/main`, `HEAD`)."""
        if self.remote_tracking:
            return f"refs/remotes/origin/{self.branch}" if self.branch else "refs/remotes/origin/HEAD"
        return f"refs/heads/{self.branch}" if self.branch else "HEAD"

    def head(self) -> str:
        """The sha of the tracked branch's head. Raises GitError when the branch does not exist."""
        try:
            return str(self.repo.commit(self.tracked_ref).hexsha)
        except (BadName, BadObject, ValueError, git.GitCommandError) as err:
            branches = ", ".join(sorted(h.name for h in self.repo.heads)) or "none"
            name = self.branch or "the default branch"
            raise GitError(
                f"{name} does not exist in {self.describe()} (local branches: {branches}): check --branch"
            ) from err

    def is_ancestor(self, ancestor: str, descendant: str) -> bool:
        """Whether `ancestor` is reachable from `descendant` (a commit is its own ancestor).

        False after a force-push that dropped `ancestor` from the branch.
        """
        a, d = self.resolve(ancestor), self.resolve(descendant)
        try:
            self.repo.git.merge_base("--is-ancestor", a, d)
        except git.GitCommandError as err:
            if err.status == 1:
                return False
            raise GitError(f"cannot compare {a[:12]} and {d[:12]}: {_stderr(err)}") from err
        return True

    def count_first_parent(self, since: str | None, head: str) -> int:
        """How many commits `first_parent_walk(since, head)` would list, without diffing any."""
        revs = [self.resolve(head)] if since is None else [f"{self.resolve(since)}..{self.resolve(head)}"]
        try:
            return int(self.repo.git.rev_list("--count", "--first-parent", *revs, "--"))
        except git.GitCommandError as err:
            raise GitError(
                f"cannot count the commits to {head[:12]} in {self.describe()}: {_stderr(err)}"
            ) from err

    def describe(self) -> str:
        """Where this repository comes from, for messages (credentials masked)."""
        return redact(self.url) if self.url else self.path

    # --- history ------------------------------------------------------------------------------

    def first_parent_walk(self, since: str | None, head: str) -> list[CommitInfo]:
        """The first-parent commits after `since` up to `head`, oldest first (all of them when
        `since` is None).

        Each commit carries the files it changed against its first parent, inside the
        subdirectory; commits that changed nothing there are still listed, with no changes.
        Raises GitError when `since` is not an ancestor of `head` (the branch was rewritten).
        """
        tip = self.resolve(head)
        revs = [tip]
        if since is not None:
            base = self.resolve(since)
            if not self.is_ancestor(base, tip):
                raise GitError(
                    f"{base[:12]} is not an ancestor of {tip[:12]} in {self.describe()}: the branch history "
                    "was rewritten (force-push); resume from the new head explicitly"
                )
            revs = [f"{base}..{tip}"]
        # No pathspec even with a subdirectory: path limiting makes git diff every commit twice
        # (once to simplify history, once for the file list); filtering here is cheaper.
        # Newest first, reversed here: `--reverse` makes git hold the whole walk before diffing.
        # --raw rather than --name-status: the same diff, plus each file's blob id to read it by.
        args = ["--first-parent", "-M", "-m", "--raw", "--no-abbrev", "-z", f"--format={LOG_FORMAT}"]
        args += [*revs, "--"]
        try:
            out: bytes = self.repo.git.log(*args, stdout_as_string=False, strip_newline_in_stdout=False)
        except git.GitCommandError as err:
            raise GitError(f"cannot read the history of {self.describe()}: {_stderr(err)}") from err
        commits = parse_log(out.decode("utf-8", errors="surrogateescape"), self.subdir)
        commits.reverse()
        return commits

    def merge_base(self, a: str, b: str) -> str | None:
        """The best common ancestor of `a` and `b`, or None when they share no history."""
        try:
            return str(self.repo.git.merge_base(self.resolve(a), self.resolve(b))) or None
        except git.GitCommandError as err:
            if err.status == 1:
                return None
            raise GitError(f"cannot find where {a[:12]} and {b[:12]} forked: {_stderr(err)}") from err

    def adding_commit(self, landing: CommitInfo, path: str) -> CommitInfo:
        """The commit that added `path` among those `landing` brought to the branch.

        `landing` itself, unless it is a merge commit: then the oldest commit of the merged
        branch that added the file (its author is the requester of a change request).
        """
        if not landing.merge or landing.parent is None:
            return landing
        full = f"{self.subdir}/{path}" if self.subdir else path
        args = ["--reverse", "--diff-filter=A", "-z", f"--format={LOG_FORMAT}"]
        try:
            out: bytes = self.repo.git.log(
                *args,
                f"{landing.parent}..{landing.sha}",
                "--",
                full,
                stdout_as_string=False,
                strip_newline_in_stdout=False,
            )
        except git.GitCommandError as err:
            raise GitError(f"cannot find the commit that added {full}: {_stderr(err)}") from err
        found = parse_log(out.decode("utf-8", errors="surrogateescape"), self.subdir)
        return found[0] if found else landing

    def file_history(self, tip: str, exclude: str | None) -> list[CommitInfo]:
        """The commits reachable from `tip` but not from `exclude`, oldest first, with the files each changed.

        Every parent counts, not only the first: a pull request's own commits, whatever branch
        they were made on; one run answers for every file of a pull request.
        """
        revs = [self.resolve(tip)] + ([f"^{self.resolve(exclude)}"] if exclude else [])
        args = [
            "--reverse",
            "--no-merges",
            "-z",
            f"--format={LOG_FORMAT}",
            "--name-status",
            "-M",
            *revs,
            "--",
            self.subdir or ".",
        ]
        try:
            out: bytes = self.repo.git.log(*args, stdout_as_string=False, strip_newline_in_stdout=False)
        except git.GitCommandError as err:
            raise GitError(
                f"cannot read the history of {tip[:12]} in {self.describe()}: {_stderr(err)}"
            ) from err
        return parse_log(out.decode("utf-8", errors="surrogateescape"), self.subdir)

    def blob_ids(self, commit: str) -> dict[str, str]:
        """Every file of `commit` (relative to the subdirectory) and its blob id, from one `git ls-tree`.

        Two versions of a file are the same exactly when their blob ids are: comparing ids
        answers "did this file change?" for many files without reading any of them.
        """
        args = ["-r", "-z", self.resolve(commit), *([f"{self.subdir}/"] if self.subdir else [])]
        try:
            out: str = self.repo.git.ls_tree(*args)
        except git.GitCommandError as err:
            raise GitError(
                f"cannot list the files of {commit[:12]} in {self.describe()}: {_stderr(err)}"
            ) from err
        blobs: dict[str, str] = {}
        for entry in out.split("\0"):
            meta, _tab, path = entry.partition("\t")
            parts = meta.split()
            inside = relative_to_subdir(path, self.subdir)
            if len(parts) == 3 and parts[1] == "blob" and inside is not None:
                blobs[inside] = parts[2]
        return blobs

    def is_shallow(self) -> bool:
        """Whether this clone lacks history (`git clone --depth`): a walk of it would start mid-way."""
        try:
            return str(self.repo.git.rev_parse("--is-shallow-repository")).strip() == "true"
        except git.GitCommandError as err:
            raise GitError(f"cannot inspect {self.describe()}: {_stderr(err)}") from err

    def has_commit(self, sha: str) -> bool:
        """Whether the commit `sha` is in this clone."""
        try:
            # The long-lived `git cat-file --batch-check` answers without a process per question.
            _sha, kind, _size = self.repo.git.get_object_header(sha)
        except ValueError:
            return False
        return kind in ("commit", b"commit")

    def fetch_pull_head(self, number: int) -> bool:
        """Fetch GitHub's `refs/pull/N/head` from origin, so a pull request's commits can be read.

        A squash or rebase merge leaves the reviewed commits off every branch. False when there
        is no origin or the fetch fails; the caller decides what an unreadable commit means.
        """
        if "origin" not in [r.name for r in self.repo.remotes]:
            return False
        ref = f"refs/pull/{number}/head"
        try:
            _private_git(self.repo.git, "fetch", "--quiet", "origin", f"+{ref}:{ref}")
        except git.GitCommandError:
            return False
        return True

    def close(self) -> None:
        """Stop git's helper processes (the long-lived `cat-file`) and release file handles."""
        self.repo.close()

    def __enter__(self) -> GitRepository:
        return self

    def __exit__(self, *exc_info: object) -> None:
        self.close()

    # --- files --------------------------------------------------------------------------------

    def read_blobs(self, blobs: Iterable[str]) -> dict[str, bytes | None]:
        """The bytes of many blobs by id (as `first_parent_walk` gives them), in one exchange.

        git looks each object up directly instead of walking a commit's trees to a path, so
        thousands of files cost about one round trip. An id that is not a blob maps to None.
        """
        return read_blobs(self.repo, blobs, where=self.describe())

    def read_file(self, commit: str, path: str) -> bytes | None:
        """The bytes of `path` (relative to the subdirectory) at `commit`, or None when it has no such entry.

        Only a regular file is read: for a symbolic link, a gitlink, or a directory where a
        document belongs, it raises DocumentError saying what is there. A gitlink names any object by its id,
        a change request's blob on another branch too; reading it would apply unreviewed bytes.
        """
        full = f"{self.subdir}/{path}" if self.subdir else path
        try:
            listed = str(self.repo.git.ls_tree("-z", "--full-tree", commit, "--", full))
        except git.GitCommandError as err:
            if "not a tree object" in _stderr(err) or "Not a valid object name" in _stderr(err):
                return None  # no such commit here: nothing to read, as for a missing path
            raise GitError(f"cannot read {full} at {commit} in {self.describe()}: {_stderr(err)}") from err
        entry = next((e for e in listed.split("\0") if e.partition("\t")[2] == full), None)
        if entry is None:
            return None
        mode, kind, sha = entry.partition("\t")[0].split()
        if kind == "tree" and kind_of_path(path) is None:
            return None  # a folder, where no document is expected: no file there
        what = not_a_file(int(mode, 8))
        if what is not None:
            raise DocumentError(path, not_a_file_message(f"{what} at {commit[:12]}"))
        return read_blobs(self.repo, [sha], where=self.describe())[sha]


class GitTreeSource:
    """The regular files of one git tree, read through the object database."""

    def __init__(self, repo: git.Repo, tree: git.Tree, label: str):
        self._repo = repo
        self._label = label
        self._blobs: dict[str, git.Blob] = {}
        self._others: dict[str, int] = {}
        root = str(tree.path) + "/" if tree.path else ""
        for item in tree.traverse():
            # Regular files only: symlinks (mode 120000) and gitlinks (160000) are not documents.
            if isinstance(item, git.Blob) and not_a_file(item.mode) is None:
                self._blobs[str(item.path)[len(root) :]] = item
            elif isinstance(item, (git.Blob, git.Tree, git.Submodule)):
                self._others[str(item.path)[len(root) :]] = item.mode & 0o170000

    @property
    def label(self) -> str:
        return self._label

    def paths(self) -> Iterable[str]:
        return sorted(self._blobs)

    def other_entries(self) -> Mapping[str, int]:
        return dict(self._others)

    def blob_id(self, path: str) -> str | None:
        """The blob id of the regular file at `path` (None when there is none): equal ids, equal bytes."""
        blob = self._blobs.get(path)
        return str(blob.hexsha) if blob is not None else None

    def read(self, path: str) -> bytes:
        blob = self._blobs.get(path)
        if blob is None and path in self._others:
            what = not_a_file(self._others[path])
            raise DocumentError(path, not_a_file_message(f"{what} at {self._label}"))
        if blob is None:
            raise DocumentError(path, f"no such file at {self._label}")
        data = read_blobs(self._repo, [blob.hexsha], MAX_FILE_BYTES + 1)[blob.hexsha]
        if data is None:
            raise DocumentError(path, f"cannot read the file at {self._label}")
        return data


# --- helpers ------------------------------------------------------------------------------------


def is_url(location: str) -> bool:
    """Whether `location` names a remote (scheme URL or scp-like `user@host:path`) rather than a
    local path."""
    return "://" in location or bool(_SCP_LIKE.match(location))


def default_cache_dir() -> Path:
    """`$XDG_CACHE_HOME/reconciler`, else `~/.cache/reconciler`."""
    base = os.environ.get("XDG_CACHE_HOME") or str(Path.home() / ".cache")
    return Path(base) / "reconciler"


def clone_path(url: str, cache_dir: str | os.PathLike[str] | None = None) -> Path:
    """Where the cached clone of `url` lives: one directory per URL (credentials left out), named
    by its hash."""
    return _hashed_path(split_credentials(url)[0], cache_dir)


def _hashed_path(url: str, cache_dir: str | os.PathLike[str] | None) -> Path:
    digest = hashlib.sha256(url.encode("utf-8")).hexdigest()[:24]
    return Path(cache_dir or default_cache_dir()) / "repos" / f"{digest}.git"


def split_credentials(url: str) -> tuple[str, dict[str, str]]:
    """`url` without the user and password of an HTTP(S) URL, and the environment that hands
    them to git as an `Authorization` header for that host.

    The header travels in `GIT_CONFIG_*` variables of the git processes alone: it is never
    written to the clone's config, nor put on a command line other users can list.
    """
    parts = urlsplit(url)
    if parts.scheme.lower() not in ("http", "https") or "@" not in parts.netloc:
        return url, {}
    userinfo, _, host = parts.netloc.rpartition("@")
    clean = urlunsplit(parts._replace(netloc=host))
    user, _, password = userinfo.partition(":")
    basic = base64.b64encode(f"{unquote(user)}:{unquote(password)}".encode()).decode("ascii")
    index = int(os.environ.get("GIT_CONFIG_COUNT", "0") or "0")  # keep any the caller set
    scope = urlunsplit((parts.scheme, host, "/", "", ""))
    return clean, {
        "GIT_CONFIG_COUNT": str(index + 1),
        f"GIT_CONFIG_KEY_{index}": f"http.{scope}.extraHeader",
        f"GIT_CONFIG_VALUE_{index}": f"Authorization: Basic {basic}",
    }


def redact(url: str) -> str:
    """`url` with any password or token in it masked, for messages and logs."""
    return re.sub(r"://[^/@]*@", "://***@", url)


def _private_dirs(*paths: Path) -> None:
    """Create the clone cache's directories readable by their owner only (0700)."""
    for path in paths:
        try:
            path.mkdir(mode=0o700, parents=True, exist_ok=True)
            if stat.S_IMODE(path.stat().st_mode) != 0o700:
                path.chmod(0o700)
        except OSError as err:
            raise GitError(
                f"cannot make the clone cache {path} private to this user: {err.strerror}; "
                "give a cache directory this user owns (XDG_CACHE_HOME)"
            ) from err


def _adopt_legacy_clone(url: str, clean: str, target: Path) -> None:
    """Earlier versions keyed a clone by the URL with its credentials (and kept them in its
    config): move such a clone to its clean place, or drop it when that place is taken."""
    legacy = _hashed_path(url, target.parent.parent)
    if legacy == target or not legacy.exists():
        return
    if target.exists():
        shutil.rmtree(legacy, ignore_errors=True)
    else:
        _scrub_clone(legacy, clean)
        legacy.rename(target)


def _scrub_clone(target: Path, clean: str) -> None:
    """Keep a cached clone's stored remote free of credentials and its files private."""
    config = target / "config"
    try:
        text = config.read_text(encoding="utf-8", errors="surrogateescape")
    except OSError:
        return
    if f"= {clean}\n" not in text or f"sharedRepository = {_CLONE_MODE}" not in text:
        _git_config(target, "remote.origin.url", clean)
        _git_config(target, "core.sharedRepository", _CLONE_MODE)
    if stat.S_IMODE(target.stat().st_mode) & 0o077:
        _private_tree(target)


def _private_tree(root: Path) -> None:
    """Take every permission of group and others off `root` and everything in it."""
    for path in [root, *root.rglob("*")]:
        if not path.is_symlink():
            path.chmod(stat.S_IMODE(path.stat().st_mode) & 0o700)


def _private_git(runner: git.Git, *args: str, env: dict[str, str] | None = None) -> None:
    """Run a git command that writes into a cached clone with umask 077, so every file it
    creates (FETCH_HEAD, loose objects, packs) is the owner's alone."""
    binary = str(runner.GIT_PYTHON_GIT_EXECUTABLE or "git")
    runner.execute([binary, *args], env=env, umask=0o077)


def _git_config(target: Path, key: str, value: str) -> None:
    subprocess.run(
        ["git", "--git-dir", str(target), "config", key, value],
        check=True,
        capture_output=True,
        env={**os.environ, **GIT_ENV},
    )


def _clone(url: str, auth: dict[str, str], target: Path) -> None:
    """Clone `url` bare into `target`, atomically: a failed clone leaves no half-made directory.

    `url` carries no credentials (they come in `auth`, for the git process alone), so the clone's
    stored remote has none either.
    """
    partial = target.with_name(f"{target.name}.partial-{os.getpid()}")
    shutil.rmtree(partial, ignore_errors=True)
    try:
        _private_git(
            git.Git(), "clone", "--bare", "--quiet", "--", url, str(partial), env={**GIT_ENV, **auth}
        )
        repo = git.Repo(partial)
        # A bare clone has no fetch refspec; track every branch so later fetches follow force-pushes.
        repo.git.config("remote.origin.fetch", "+refs/heads/*:refs/heads/*")
        # Later fetches create their files private; the clone's own ones are made so here.
        repo.git.config("core.sharedRepository", _CLONE_MODE)
        repo.close()
    except git.GitCommandError as err:
        shutil.rmtree(partial, ignore_errors=True)
        raise GitError(
            f"cannot clone {redact(url)}: {_stderr(err)}. Check the URL, the network and the credentials"
        ) from err
    partial.rename(target)


def _stderr(err: git.GitCommandError) -> str:
    text = err.stderr.decode() if isinstance(err.stderr, bytes) else str(err.stderr or "")
    lines = [line.strip() for line in text.strip().splitlines() if line.strip()]
    message = " ".join(lines).removeprefix("stderr: ").strip("'\" ")
    return message or f"git exited with status {err.status}"


def git_setting(directory: str | os.PathLike[str], key: str) -> str | None:
    """The value `git config --get KEY` prints in `directory` (the repository's own
    configuration when it lies in one, else the user's), or None when unset or git is missing."""
    try:
        result = subprocess.run(
            ["git", "config", "--get", key],
            cwd=os.fspath(directory),
            env={**os.environ, **GIT_ENV},
            capture_output=True,
            text=True,
            timeout=30,
            check=False,
        )
    except (OSError, subprocess.TimeoutExpired):
        return None
    value = result.stdout.strip()
    return value if result.returncode == 0 and value else None
