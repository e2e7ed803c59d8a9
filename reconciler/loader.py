"""Reading a policy repository: files from a directory or a git commit through one interface.

`load_repository(source)` turns the files of a `FileSource` into a `PolicyRepository`: the
project, the members, the policies and the change requests keyed by path, plus every finding
met on the way (collect, don't stop). The CLI's `validate`, the planner and the reconciler
all read through here; `gitrepo.GitRepository.source_at` supplies commit trees.
"""

from __future__ import annotations

import os
from collections.abc import Iterable
from pathlib import Path
from typing import Protocol, runtime_checkable

from reconciler.errors import DocumentError

# Anything larger is rejected before parsing; sources need not read more than one byte past it.
MAX_FILE_BYTES = 1024 * 1024


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

        Raises `DocumentError` when the file cannot be read.
        """
        ...


class DirectorySource:
    """The files below a directory on disk (hidden directories such as `.git` skipped)."""

    def __init__(self, root: str | os.PathLike[str]):
        self.root = Path(root)
        if not self.root.is_dir():
            raise DocumentError(str(root), "not a directory: give the root of a policy repository")

    @property
    def label(self) -> str:
        return str(self.root)

    def paths(self) -> Iterable[str]:
        root = str(self.root)
        found: list[str] = []
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames[:] = [d for d in dirnames if not d.startswith(".")]
            rel = os.path.relpath(dirpath, root)
            prefix = "" if rel == "." else rel.replace(os.sep, "/") + "/"
            found.extend(prefix + name for name in filenames if not name.startswith("."))
        return sorted(found)

    def read(self, path: str) -> bytes:
        try:
            with (self.root / path).open("rb") as handle:
                return handle.read(MAX_FILE_BYTES + 1)
        except OSError as err:
            raise DocumentError(path, f"cannot read the file: {err.strerror or err}") from err
