"""Where the files of a policy repository come from: the `FileSource` interface and a directory.

A source lists regular files by relative POSIX path, reads one (bounded), and names every
other entry (links, gitlinks, directories, pipes, devices) by its type, so nothing but a
regular file is ever read as a document. `gitrepo.GitTreeSource` is the same interface over
a commit's tree.
"""

from __future__ import annotations

import os
import stat
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Protocol, runtime_checkable

from reconciler.errors import DocumentError
from reconciler.repo.yamlio import MAX_FILE_BYTES


@runtime_checkable
class FileSource(Protocol):
    """A tree of files addressed by relative POSIX paths (`changes/2024/ramp.yaml`)."""

    @property
    def label(self) -> str:
        """Where the files come from, for messages (a directory, or `sha:subdir`)."""
        ...

    def paths(self) -> Iterable[str]:
        """Every regular file below the root, as sorted relative POSIX paths."""
        ...

    def read(self, path: str) -> bytes:
        """The bytes of one file: whole, or cut one byte past `MAX_FILE_BYTES` when larger.

        Raises `DocumentError` when the file cannot be read or is not a regular file.
        """
        ...

    def other_entries(self) -> Mapping[str, int]:
        """Every entry below the root that is not a regular file, with its mode's type bits.

        Directories, symbolic links, gitlinks (git mode 160000), named pipes, devices, sockets:
        none is ever read as a document; `load_repository` reports those at a document's place.
        """
        ...


class DirectorySource:
    """The regular files below a directory on disk (hidden directories such as `.git` skipped).

    Nothing inside the root is followed or opened unless it is a regular file: a symbolic link
    could point out of the repository (its target's lines would be printed in findings), and a
    named pipe or device would block the reader. The root itself may be a link: the user named it.
    """

    # Forked parse workers may read the files themselves: nothing but a path is shared.
    readable_in_workers = True

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        self._others: dict[str, int] | None = None
        if not self.root.is_dir():
            raise DocumentError(str(root), "not a directory: give the root of a policy repository")

    @property
    def label(self) -> str:
        return str(self.root)

    def paths(self) -> Iterable[str]:
        found: list[str] = []
        self._others = {}
        self._scan(str(self.root), "", found, self._others)
        return sorted(found)

    def _scan(self, directory: str, prefix: str, found: list[str], others: dict[str, int]) -> None:
        """List `directory` by the entries' own types (lstat): a link is an entry, never followed."""
        with os.scandir(directory) as entries:
            for entry in entries:
                if entry.name.startswith("."):
                    continue
                path = prefix + entry.name
                if entry.is_file(follow_symlinks=False):
                    found.append(path)
                    continue
                others[path] = stat.S_IFMT(entry.stat(follow_symlinks=False).st_mode)
                if entry.is_dir(follow_symlinks=False):
                    self._scan(entry.path, path + "/", found, others)

    def other_entries(self) -> Mapping[str, int]:
        if self._others is None:
            self.paths()
        return dict(self._others or {})

    def read(self, path: str) -> bytes:
        try:
            fd = self._open_regular(path)
        except OSError as err:
            raise DocumentError(path, f"cannot read the file: {err.strerror or err}") from err
        try:
            # Plain descriptors: no Path or buffered file objects on the hot path.
            data = os.read(fd, MAX_FILE_BYTES + 1)
            while len(data) <= MAX_FILE_BYTES and (more := os.read(fd, MAX_FILE_BYTES + 1 - len(data))):
                data += more  # a short read (some network file systems)
            return data
        except OSError as err:
            raise DocumentError(path, f"cannot read the file: {err.strerror or err}") from err
        finally:
            os.close(fd)

    def _open_regular(self, path: str) -> int:
        """A descriptor on the regular file at `path`, reached without following any link below the root.

        Each directory is opened relative to the previous one with O_NOFOLLOW; the file's own
        type is checked before opening it (a FIFO would block, a device may act on open) and
        again on the open descriptor, so a swap in between is caught too.
        """
        *folders, name = path.split("/")
        fd = os.open(self.root, os.O_RDONLY | os.O_DIRECTORY)
        try:
            for folder in folders:
                inner = os.open(folder, os.O_RDONLY | os.O_DIRECTORY | os.O_NOFOLLOW, dir_fd=fd)
                os.close(fd)
                fd = inner
            _require_regular(path, os.stat(name, dir_fd=fd, follow_symlinks=False).st_mode)
            file_fd = os.open(name, os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK, dir_fd=fd)
        finally:
            os.close(fd)
        try:
            _require_regular(path, os.fstat(file_fd).st_mode)
        except DocumentError:
            os.close(file_fd)
            raise
        return file_fd


def _require_regular(path: str, mode: int) -> None:
    what = not_a_file(mode)
    if what is not None:
        raise DocumentError(path, not_a_file_message(what))


# What an entry of each type is, in words (git tree modes share the type bits with lstat's,
# and a gitlink, 160000, has its own).
_ENTRY_TYPES = {
    stat.S_IFLNK: "a symbolic link",
    stat.S_IFDIR: "a directory",
    0o160000: "a gitlink (a submodule commit)",
    stat.S_IFIFO: "a named pipe (FIFO)",
    stat.S_IFCHR: "a character device",
    stat.S_IFBLK: "a block device",
    stat.S_IFSOCK: "a socket",
}
_NOT_A_FILE_FIX = (
    "only a regular file's own content is a document (a link's or submodule's target was never "
    "reviewed here); it is not read. Commit the file's content as a regular file"
)


def not_a_file(mode: int) -> str | None:
    """What an entry of `mode` (a git tree mode or an lstat mode) is, or None for a regular file."""
    kind = mode & 0o170000
    if kind == stat.S_IFREG:
        return None
    return _ENTRY_TYPES.get(kind, f"an entry of mode {mode:o}")


def not_a_file_message(what: str) -> str:
    """Why an entry that is `what` (as `not_a_file` says) is not read as a document."""
    return f"{what}, not a regular file: {_NOT_A_FILE_FIX}"
