"""Reading blobs by id: the one way the bytes of a file in git are read.

A file at a commit, a file of a tree source and the changed files of a whole walk are all read
by their blob id through `read_blobs`. A few ids are asked of the long-lived `git cat-file
--batch` that GitPython keeps open (no process to start); many are sent to a fresh `git
cat-file --batch` in one pipelined exchange, so thousands of files cost about one round trip.
"""

from __future__ import annotations

import os
import subprocess
from collections.abc import Iterable

import git

from reconciler.errors import GitError
from reconciler.gitrepo.log import parse_cat_file_batch

# Every git process runs unattended: never wait for a password on a terminal.
GIT_ENV = {"GIT_TERMINAL_PROMPT": "0", "GIT_ASKPASS": "", "SSH_ASKPASS": ""}
# From this many ids on, one pipelined process beats asking the long-lived one id by id.
BATCH_FROM = 32


def read_blobs(
    repo: git.Repo, ids: Iterable[str], limit: int | None = None, *, where: str = ""
) -> dict[str, bytes | None]:
    """The bytes of each blob in `ids` (the first `limit` bytes when given); None for an id that
    names no blob (a tree, a missing object). `where` names the repository in messages."""
    keys = list(dict.fromkeys(ids))
    if len(keys) < BATCH_FROM:
        return {key: _read_one(repo, key, limit) for key in keys}
    return {
        key: data[:limit] if data is not None and limit is not None else data
        for key, data in _read_batch(repo, keys, where or str(repo.git_dir)).items()
    }


def _read_one(repo: git.Repo, blob: str, limit: int | None) -> bytes | None:
    try:
        _sha, kind, size, stream = repo.git.stream_object_data(blob)
    except ValueError:  # "<id> missing" or "<id> ambiguous"
        return None
    # Whatever is left unread is drained when the stream goes, keeping the process in step.
    data: bytes = stream.read(size if limit is None else min(size, limit))
    return data if kind in (b"blob", "blob") else None


def _read_batch(repo: git.Repo, keys: list[str], where: str) -> dict[str, bytes | None]:
    request = "".join(f"{key}\n" for key in keys).encode()
    git_binary = str(repo.git.GIT_PYTHON_GIT_EXECUTABLE or "git")
    done = subprocess.run(
        [git_binary, "cat-file", "--batch"],
        cwd=repo.git_dir,
        input=request,
        capture_output=True,
        check=False,
        env={**os.environ, **GIT_ENV},
    )
    if done.returncode != 0:
        raise GitError(f"cannot read files from {where}: {done.stderr.decode(errors='replace').strip()}")
    return dict(zip(keys, parse_cat_file_batch(done.stdout, len(keys)), strict=True))
