"""What `reconciler validate PATH...` checks: repositories, or files in the context of theirs.

A directory holding `reconciler.yaml` is a whole repository. A file (or a directory inside a
repository) is checked in the context of its repository: the directory holding
`reconciler.yaml` nearest above it, never above the git work tree's top (the directory holding
`.git`). The whole repository is loaded, and the findings shown are:

- every finding in a named file (or under a named directory);
- a finding elsewhere that is about a named file (the other document of a duplicate name);
- when a named file is a rule file (reconciler.yaml, members.yaml, a policy), what it breaks
  elsewhere: references to environments, logins and roles, and quorums;
- a missing reconciler.yaml or members.yaml, without which nothing is judged.

Paths are taken as written, links included (`os.path.abspath`, never `realpath`): a named
link inside a repository is judged as the link it is (a finding), never followed out of it.
A directory with no `reconciler.yaml` in or above it is checked as a repository (which says
what is missing); a file with none is a usage error. Files the layout gives no meaning (a
workflow, a README) are skipped, so the pre-commit hook can pass every YAML file it sees.
"""

from __future__ import annotations

import os
from collections.abc import Iterable, Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path

from reconciler.errors import ConfigError
from reconciler.repo.findings import Finding
from reconciler.repo.layout import PROJECT_FILE, in_layout, is_rule_file

# What a rule file breaks in other files: their references to it, and quorums counted on it.
_BROKEN_ELSEWHERE = frozenset({"unknown-environment", "unknown-login", "unknown-role", "unreachable-quorum"})


@dataclass
class Target:
    """One repository to load, and which of its findings to show (`None`: all of them)."""

    root: str  # absolute, links kept
    relative: bool = True  # findings shown relative to the working directory, as the paths were given
    files: set[str] | None = None  # repository-relative paths named
    folders: set[str] = field(default_factory=set)  # repository-relative prefixes ending in "/"

    def wanted(self) -> bool:
        """Whether anything named has a meaning in the layout (else there is nothing to check)."""
        if self.files is None or self.folders:
            return True
        return any(in_layout(path) for path in self.files)

    def shown(self, findings: Iterable[Finding]) -> list[Finding]:
        """The findings to show, their paths as the user sees them."""
        return [replace(f, path=self._display(f.path), related=()) for f in findings if self._shows(f)]

    def _display(self, path: str) -> str:
        full = Path(self.root) / path
        return os.path.relpath(full).replace(os.sep, "/") if self.relative else full.as_posix()

    def _shows(self, finding: Finding) -> bool:
        if self.files is None:
            return True
        if self._named(finding.path) or any(self._named(path) for path in finding.related):
            return True
        if finding.rule == "missing-file":
            return True
        return finding.rule in _BROKEN_ELSEWHERE and any(is_rule_file(path) for path in self.files)

    def _named(self, path: str) -> bool:
        return path in (self.files or ()) or path.startswith(tuple(self.folders))


def resolve_targets(paths: Sequence[str]) -> list[Target]:
    """The repositories to check for `paths`, in the order first named, one per repository.

    Raises ConfigError for a path that does not exist, or a file that is in no repository.
    """
    targets: dict[str, Target] = {}
    for given in paths or (".",):
        try:
            _add(targets, given)
        except (OSError, ValueError) as err:  # a NUL byte, a name too long, a loop of links
            raise ConfigError(f"{_shown(given)}: cannot be read as a path ({err})") from err
    return [t for t in targets.values() if t.wanted()]


def _add(targets: dict[str, Target], given: str) -> None:
    """Add the repository of `given` to `targets`, with `given` among what it shows."""
    absolute = Path(os.path.normpath(Path(given).absolute()))  # links kept, `..` taken lexically
    if not _lexists(absolute):
        raise ConfigError(f"{_shown(given)}: no such file or directory")
    # A link to a directory is a repository when it holds reconciler.yaml, and otherwise an
    # entry of the repository around it, judged as a link and never followed.
    is_dir = absolute.is_dir() and (not absolute.is_symlink() or _lexists(absolute / PROJECT_FILE))
    root = _repository_root(absolute if is_dir else absolute.parent)
    if root is None:
        if not is_dir:
            raise ConfigError(
                f"{_shown(given)} is in no policy repository: no {PROJECT_FILE} in its directory or any"
                " above it (up to the top of its git work tree); give a file of a policy repository"
            )
        root = absolute  # checked as a repository, which says what is missing
    target = targets.setdefault(str(root), Target(str(root), not Path(given).is_absolute(), set()))
    relative = absolute.relative_to(root).as_posix()
    if relative == ".":
        target.files = None  # the whole repository
    elif target.files is not None:
        if is_dir:
            target.folders.add(relative + "/")
        else:
            target.files.add(relative)


def _shown(given: str) -> str:
    """A path as typed, quoted when it holds what a terminal would act on (a newline, an escape)."""
    text = given if given.isprintable() else repr(given)
    return text if len(text) <= 300 else text[:297] + "..."


def _repository_root(start: Path) -> Path | None:
    """The nearest directory from `start` up holding reconciler.yaml, not above the git top."""
    for current in (start, *start.parents):
        if _lexists(current / PROJECT_FILE):
            return current
        if _lexists(current / ".git"):
            return None
    return None


def _lexists(path: Path) -> bool:
    return path.is_symlink() or path.exists()
