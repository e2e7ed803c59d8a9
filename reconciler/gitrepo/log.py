"""Reading git's own output: commits of a walk, their changed files and trailers, and blobs.

Pure parsing, no I/O: `repository.GitRepository` runs `git log` and `git cat-file --batch` and
hands the bytes here. Kept apart so the repository class reads as what it does with git.
"""

from __future__ import annotations

from dataclasses import dataclass
from datetime import UTC, datetime
from typing import Literal

ChangeStatus = Literal["added", "modified", "deleted", "renamed"]
_STATUS: dict[str, ChangeStatus] = {"A": "added", "M": "modified", "D": "deleted", "T": "modified"}

_COMMIT_MARK = "\x1ecommit "
# sha, parents, author name/email, committer name/email, author/committer time, trailers, message
LOG_FORMAT = "%x1ecommit %H%x00%P%x00%an%x00%ae%x00%cn%x00%ce%x00%at%x00%ct%x00%(trailers:only,unfold)%x00%B"
_HEADER_FIELDS = 10


@dataclass(frozen=True)
class FileChange:
    """A file a commit changed against its first parent, relative to the repository's subdirectory.

    `old_path` is set for renames (both ends inside the subdirectory); a file moved into or out
    of the subdirectory is `added` or `deleted`.
    """

    status: ChangeStatus
    path: str
    old_path: str | None = None
    # The file's blob id after the commit, when git printed it (`--raw`); None for a deletion.
    blob: str | None = None
    # Its git mode after the commit (`--raw`): 0o100644 or 0o100755 for a regular file; a
    # symbolic link (0o120000) or gitlink (0o160000) is no document, whatever its id names.
    mode: int | None = None


@dataclass(frozen=True)
class CommitInfo:
    """One commit of the tracked branch, with the files it changed against its first parent."""

    sha: str
    parent: str | None  # first parent; None for a root commit
    author_name: str
    author_email: str
    committer_name: str
    committer_email: str
    authored_at: datetime
    committed_at: datetime
    message: str
    trailers: list[tuple[str, str]]  # (key, value) from the message's last paragraph, in order
    changes: list[FileChange]
    merge: bool = False  # more than one parent: the files came from the merged branch


def parse_log(out: str, subdir: str = "") -> list[CommitInfo]:
    """Commits from the output of `git log` with `LOG_FORMAT`, `-z` and `--name-status` or `--raw --no-abbrev`."""
    tokens = out.split("\0")
    commits: list[CommitInfo] = []
    i = 0
    while i < len(tokens):
        if not tokens[i].startswith(_COMMIT_MARK):
            i += 1  # the empty token after the last entry
            continue
        header = tokens[i : i + _HEADER_FIELDS]
        i += _HEADER_FIELDS
        changes: list[FileChange] = []
        while i < len(tokens) and not tokens[i].startswith(_COMMIT_MARK):
            i = _parse_change(tokens, i, subdir, changes)
        commits.append(_commit(header, changes))
    return commits


def _parse_change(tokens: list[str], i: int, subdir: str, changes: list[FileChange]) -> int:
    """Read one `STATUS\\0path[\\0path]` entry at `tokens[i]`; return the index after it.

    `--raw` entries start `:oldmode newmode oldblob newblob STATUS`; the new mode and blob id
    are kept, so the file can be read by id once its mode says it is a regular file. Only paths inside `subdir` count: a rename across its
    boundary is an addition or a deletion.
    """
    status = tokens[i].lstrip("\n")
    if not status:
        return i + 1
    blob: str | None = None
    mode: int | None = None
    if status[0] == ":":
        fields = status.split(" ")
        status = fields[4]
        blob = None if fields[3].strip("0") == "" else fields[3]
        mode = int(fields[1], 8) or None
    code = status[0]
    if code not in "RC":
        path = relative_to_subdir(tokens[i + 1], subdir)
        if path is not None and code == "D":
            changes.append(FileChange("deleted", path))
        elif path is not None:
            changes.append(FileChange(_STATUS.get(code, "modified"), path, blob=blob, mode=mode))
        return i + 2
    old, new = relative_to_subdir(tokens[i + 1], subdir), relative_to_subdir(tokens[i + 2], subdir)
    if code == "R" and old is not None and new is not None:
        changes.append(FileChange("renamed", new, old, blob=blob, mode=mode))
    elif code == "R" and old is not None:
        changes.append(FileChange("deleted", old))
    elif new is not None:
        changes.append(FileChange("added", new, blob=blob, mode=mode))
    return i + 3


def relative_to_subdir(path: str, subdir: str) -> str | None:
    """`path` relative to `subdir`, or None when it lies outside."""
    if not subdir:
        return path
    return path[len(subdir) + 1 :] if path.startswith(f"{subdir}/") else None


def _commit(header: list[str], changes: list[FileChange]) -> CommitInfo:
    sha, parents, a_name, a_email, c_name, c_email, a_time, c_time, trailers, message = header
    return CommitInfo(
        sha=sha.removeprefix(_COMMIT_MARK),
        parent=parents.split()[0] if parents else None,
        author_name=a_name,
        author_email=a_email,
        committer_name=c_name,
        committer_email=c_email,
        authored_at=datetime.fromtimestamp(int(a_time), tz=UTC),
        committed_at=datetime.fromtimestamp(int(c_time), tz=UTC),
        message=message,
        trailers=parse_trailer_lines(trailers),
        changes=changes,
        merge=len(parents.split()) > 1,
    )


def parse_trailer_lines(text: str) -> list[tuple[str, str]]:
    """`Key: value` lines, as git prints a message's trailers (`%(trailers:only,unfold)`), as pairs."""
    pairs: list[tuple[str, str]] = []
    for line in text.splitlines():
        key, sep, value = line.partition(":")
        if sep and key.strip():
            pairs.append((key.strip(), value.strip()))
    return pairs


def parse_cat_file_batch(out: bytes, count: int) -> list[bytes | None]:
    """The contents in `git cat-file --batch` output, in request order (None for a missing object)."""
    contents: list[bytes | None] = []
    pos = 0
    for _ in range(count):
        end = out.index(b"\n", pos)
        header = out[pos:end].split()
        pos = end + 1
        if len(header) != 3:  # "<name> missing" or "<name> ambiguous"
            contents.append(None)
            continue
        size = int(header[2])
        contents.append(out[pos : pos + size] if header[1] == b"blob" else None)
        pos += size + 1
    return contents
