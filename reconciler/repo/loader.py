"""Reading a policy repository: files from a directory or a git commit through one interface.

`load_repository(source)` turns the files of a `FileSource` into a `PolicyRepository`: the
project, the members, the policies and the change requests keyed by path, plus every finding
met on the way (collect, don't stop). Every reading of a policy repository goes through
here; `GitRepository.source_at` (`gitrepo/repository.py`) supplies commit trees.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import multiprocessing.pool
import os
import stat
import sys
import threading
from collections.abc import Iterable, Iterator, Mapping
from contextlib import contextmanager
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Protocol, runtime_checkable

from pydantic import BaseModel

from reconciler.errors import DocumentError
from reconciler.model.documents import DOCUMENT_MODELS, ApprovalPolicy, ChangeRequest, Members, Project
from reconciler.model.schema import validate_document
from reconciler.repo.yamlio import MAX_FILE_BYTES, load_yaml, locate

log = logging.getLogger(__name__)


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
    if not_a_file(mode) is not None:
        raise DocumentError(path, not_a_file_finding(path, mode).message)


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
NOT_A_FILE_FIX = (
    "only a regular file's own content is a document (a link's or submodule's target was never "
    "reviewed here); it is not read. Commit the file's content as a regular file"
)


def not_a_file(mode: int) -> str | None:
    """What an entry of `mode` (a git tree mode or an lstat mode) is, or None for a regular file."""
    kind = mode & 0o170000
    if kind == stat.S_IFREG:
        return None
    return _ENTRY_TYPES.get(kind, f"an entry of mode {mode:o}")


def not_a_file_finding(path: str, mode: int) -> Finding:
    """The finding for a non-regular entry where the layout expects a document."""
    return Finding(path, f"{not_a_file(mode)}, not a regular file: {NOT_A_FILE_FIX}", rule="not-a-file")


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in one file: where (path relative to the repository root, line, column,
    JSON pointer) and what (a message saying what to do, and a short rule name)."""

    path: str
    message: str
    pointer: str = ""
    line: int | None = None
    column: int | None = None
    rule: str = "schema"

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line or 0, self.column or 0, self.message)


@dataclass
class PolicyRepository:
    """The documents of a policy repository that loaded cleanly, and what went wrong with the rest."""

    source: FileSource
    project: Project | None = None
    members: Members | None = None
    policies: dict[str, ApprovalPolicy] = field(default_factory=dict)
    changes: dict[str, ChangeRequest] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)


PROJECT_FILE = "reconciler.yaml"
MEMBERS_FILE = "members.yaml"
_YAML_SUFFIXES = (".yaml", ".yml")
# Below this many files a pool of processes costs more than it saves.
PARALLEL_THRESHOLD = 64


def kind_of_path(path: str) -> str | None:
    """The document kind a file holds by where it is, or None when it is not a document."""
    if path == PROJECT_FILE:
        return "Project"
    if path == MEMBERS_FILE:
        return "Members"
    if not path.endswith(_YAML_SUFFIXES):
        return None
    if path.startswith("policies/") and path.count("/") == 1:
        return "ApprovalPolicy"
    if path.startswith("changes/"):
        return "ChangeRequest"
    return None


def parse_document(path: str, kind: str, data: bytes) -> tuple[BaseModel | None, Any, list[Finding]]:
    """One file's bytes as a document of `kind`: (model or None, plain data, findings)."""
    try:
        plain = load_yaml(data, path)
    except DocumentError as err:
        return None, None, [Finding(path, err.message, "", err.line, err.column, "yaml")]
    model, issues = validate_document(plain, kind)
    return model, plain, [Finding(path, issue.message, issue.pointer) for issue in issues]


def load_repository(source: FileSource, jobs: int = 1) -> PolicyRepository:
    """Every document of `source`, collecting findings instead of stopping at the first.

    `jobs` > 1 parses in that many forked processes when there are enough files to pay for
    them; keep the default of 1 in a process that runs threads (forking one can deadlock). Findings carry pointers; `locate_findings` adds lines and columns.
    """
    repo = PolicyRepository(source)
    paths = list(source.paths())
    documents = [(path, kind) for path in paths if (kind := kind_of_path(path))]
    repo.findings.extend(_misplaced(paths))
    not_regular = not_regular_findings(source)
    repo.findings.extend(not_regular)
    for required in (PROJECT_FILE, MEMBERS_FILE):
        if not any(path == required for path, _ in documents) and not any(f.path == required for f in not_regular):
            repo.findings.append(
                Finding(required, f"{required} is missing: {_REQUIRED[required]}", rule="missing-file")
            )
    workers = _worker_count(jobs, len(documents))
    with _no_cyclic_gc():
        results = (
            _parse_parallel(source, documents, workers) if workers > 1 else _parse_serial(source, documents)
        )
        for path, kind, model, findings in results:
            repo.findings.extend(findings)
            if model is not None:
                _place(repo, path, kind, model)
    return repo


@contextmanager
def _no_cyclic_gc() -> Iterator[None]:
    """Pause the cycle collector while loading.

    Loading builds many small acyclic objects and keeps them; the collector would scan the
    growing heap again and again (about 15% of the time) and find nothing to free.
    """
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()


def _misplaced(paths: Iterable[str]) -> Iterator[Finding]:
    """YAML files under policies/ that are not read: only files directly in it are policies."""
    for path in paths:
        if path.startswith("policies/") and path.count("/") > 1 and path.endswith(_YAML_SUFFIXES):
            message = (
                "policies are read only from files directly in policies/: this file is ignored, move it up"
            )
            yield Finding(path, message, rule="ignored-file")


def in_layout(path: str) -> bool:
    """Whether the layout gives `path` a meaning: a rule file, or anything under policies/ or changes/."""
    layout = (PROJECT_FILE, MEMBERS_FILE, "policies", "changes")
    return path in layout or path.startswith(("policies/", "changes/"))


def not_regular_findings(source: FileSource) -> list[Finding]:
    """A finding for each entry at a document's place that is not a regular file.

    A plain directory is only reported when it is named like a document (`changes/x.yaml/`);
    links, gitlinks, pipes and devices anywhere under policies/ or changes/ or at a rule-file path.
    """
    findings = []
    for path, mode in sorted(source.other_entries().items()):
        if (kind_of_path(path) is None) if stat.S_ISDIR(mode) else not in_layout(path):
            continue
        findings.append(not_a_file_finding(path, mode))
    return findings


_REQUIRED = {
    PROJECT_FILE: "it declares the environments (see `reconciler schema Project`)",
    MEMBERS_FILE: "it lists the people and roles policies refer to (see `reconciler schema Members`)",
}


def _place(repo: PolicyRepository, path: str, kind: str, model: BaseModel) -> None:
    if isinstance(model, Project):
        repo.project = model
    elif isinstance(model, Members):
        repo.members = model
    elif isinstance(model, ApprovalPolicy):
        repo.policies[path] = model
    elif isinstance(model, ChangeRequest):
        repo.changes[path] = model


_Result = tuple[str, str, BaseModel | None, list[Finding]]


def _parse_serial(source: FileSource, documents: list[tuple[str, str]]) -> Iterator[_Result]:
    for path, kind in documents:
        try:
            data = source.read(path)
        except DocumentError as err:
            yield path, kind, None, [Finding(path, err.message, rule="io")]
            continue
        model, _, findings = parse_document(path, kind, data)
        yield path, kind, model, findings


def _worker_count(jobs: int | None, files: int) -> int:
    """Processes to parse `files` documents with: `jobs`, or one per usable CPU when None."""
    if files < PARALLEL_THRESHOLD:
        return 1
    return max(1, jobs if jobs is not None else usable_cpus())


def usable_cpus(cgroup: Path = Path("/sys/fs/cgroup")) -> int:
    """The CPUs this process may use: its affinity mask, capped by a cgroup v2 CPU quota.

    In a container limited to two CPUs on a 64-core host, `os.cpu_count()` says 64; starting
    that many parse workers would only make them wait for each other.
    """
    count = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else (os.cpu_count() or 1)
    try:
        quota, period = (cgroup / "cpu.max").read_text().split()[:2]
        if quota != "max":
            count = min(count, max(1, int(quota) // int(period)))
    except (OSError, ValueError):
        pass  # no cgroup v2 quota here: the affinity mask is the limit
    return max(1, count)


def _parse_parallel(source: FileSource, documents: list[tuple[str, str]], workers: int) -> Iterator[_Result]:
    """Parse in worker processes, in batches, collecting results in order.

    Forked workers read a directory themselves; for other sources (a git object database
    is not safe to share across a fork) the parent reads and sends the bytes. Workers send
    back plain data rather than models, because unpickling a model costs more than building
    it again from data already known to be valid.
    """
    chunk = max(16, len(documents) // (workers * 8))
    batches = [documents[i : i + chunk] for i in range(0, len(documents), chunk)]
    forking = sys.platform == "linux"
    context = multiprocessing.get_context("fork" if forking else "spawn")
    worker_reads = forking and getattr(source, "readable_in_workers", False)
    jobs: Iterable[list[tuple[str, str, bytes | str | None]]] = (
        [(path, kind, None) for path, kind in batch] if worker_reads else _read_batch(source, batch)
        for batch in batches
    )
    initargs = (source if worker_reads else None,)
    with context.Pool(workers, initializer=_start_worker, initargs=initargs) as pool:
        for results in pool.imap(_parse_batch, jobs):
            for path, kind, plain, findings in results:
                model = DOCUMENT_MODELS[kind].model_validate(plain) if plain is not None else None
                yield path, kind, model, findings


# Below this many files starting worker processes (which import the package) costs more than it saves.
POOL_WORTH_STARTING = 1000


def parse_documents(
    items: list[tuple[str, str, bytes]], jobs: int | None = None
) -> list[tuple[BaseModel | None, list[Finding]]]:
    """Parse many `(path, kind, bytes)` at once, in order: on every core when there are enough.

    For callers that already hold the bytes (the reconcile pass reads a whole walk's files in
    one git exchange); the same path may appear more than once (a file at several commits).
    """
    return list(iter_parse_documents(items, jobs))


def iter_parse_documents(
    items: list[tuple[str, str, bytes]], jobs: int | None = None, workers: ParseWorkers | None = None
) -> Iterator[tuple[BaseModel | None, list[Finding]]]:
    """`parse_documents`, yielding each result as soon as it is ready, in order.

    The caller works on the first results while workers parse the rest; closing the
    generator early stops the workers. `workers`, started earlier by the caller (who also
    closes them), are used whatever the number of items.
    """
    if workers is not None:
        started = workers.pool() if items else None
        if started is not None:
            yield from _imap(started, workers.count, items)
            return
        jobs = 1  # they could not start: parse here
    count = _worker_count(jobs, len(items)) if len(items) >= POOL_WORTH_STARTING else 1
    pool = _start_pool(count) if count > 1 else None
    if pool is not None:
        with pool:
            yield from _imap(pool, count, items)
        return
    for item in items:
        model, _plain, findings = parse_document(*item)
        yield model, findings


def _imap(
    pool: multiprocessing.pool.Pool, count: int, items: list[tuple[str, str, bytes]]
) -> Iterator[tuple[BaseModel | None, list[Finding]]]:
    chunk = max(16, min(250, len(items) // (count * 8)))
    batches: list[list[tuple[str, str, bytes | str | None]]] = [
        list(items[i : i + chunk]) for i in range(0, len(items), chunk)
    ]
    for results in pool.imap(_parse_batch, batches):
        for _path, kind, plain, findings in results:
            yield (DOCUMENT_MODELS[kind].model_validate(plain) if plain is not None else None), findings


def _start_pool(count: int) -> multiprocessing.pool.Pool | None:
    """`count` parse workers, or None when they cannot start (say, in a process forked from one
    whose fork server runs): they only make parsing faster, so the caller parses alone."""
    # Never a plain fork: the service calls this from a thread beside the API's, and forking a
    # threaded process can deadlock the child. A fork server forks from a clean process.
    context = multiprocessing.get_context("forkserver" if sys.platform == "linux" else "spawn")
    if sys.platform == "linux":
        context.set_forkserver_preload(["reconciler.repo.loader"])  # workers start with it imported
    try:
        return context.Pool(count, initializer=_start_worker, initargs=(None,))
    except (OSError, ValueError) as err:
        log.warning("parse workers could not start, parsing in this process instead: %s", err)
        return None


class ParseWorkers:
    """Parse worker processes booting in the background while the caller does something else.

    Starting them (a fork server importing the package, then one fork per core) takes a good
    part of a second; the reconcile pass starts them before it asks git for a long walk, so
    they are ready when the files are. `start` gives None on a single core, where workers
    would only compete with the caller. Close them when done.
    """

    def __init__(self, count: int) -> None:
        self.count = count
        self._pool: multiprocessing.pool.Pool | None = None
        self._thread = threading.Thread(target=self._boot, name="parse-workers", daemon=True)
        self._thread.start()

    @classmethod
    def start(cls, jobs: int | None = None) -> ParseWorkers | None:
        count = _worker_count(jobs, POOL_WORTH_STARTING)
        return cls(count) if count > 1 else None

    def _boot(self) -> None:
        self._pool = _start_pool(self.count)

    def pool(self) -> multiprocessing.pool.Pool | None:
        """The started pool, once it is up; None when it could not start."""
        self._thread.join()
        return self._pool

    def close(self) -> None:
        self._thread.join()
        if self._pool is not None:
            self._pool.terminate()
            self._pool.join()
            self._pool = None


# In a forked worker: the source it reads from itself, if any (handed over at fork time).
_WORKER: dict[str, FileSource | None] = {"source": None}


def _start_worker(source: FileSource | None) -> None:
    gc.disable()  # a worker's batches are acyclic and freed by reference counting
    _WORKER["source"] = source


def _read_batch(
    source: FileSource, batch: list[tuple[str, str]]
) -> list[tuple[str, str, bytes | str | None]]:
    read: list[tuple[str, str, bytes | str | None]] = []
    for path, kind in batch:
        try:
            read.append((path, kind, source.read(path)))
        except DocumentError as err:
            read.append((path, kind, err.message))  # a str: the read failed, here is why
    return read


def _parse_batch(
    batch: list[tuple[str, str, bytes | str | None]],
) -> list[tuple[str, str, Any, list[Finding]]]:
    source = _WORKER["source"]
    if source is not None and batch and batch[0][2] is None:
        batch = _read_batch(source, [(path, kind) for path, kind, _ in batch])
    out: list[tuple[str, str, Any, list[Finding]]] = []
    for path, kind, data in batch:
        if not isinstance(data, bytes):
            out.append((path, kind, None, [Finding(path, str(data), rule="io")]))
            continue
        model, plain, findings = parse_document(path, kind, data)
        out.append((path, kind, plain if model is not None else None, findings))
    return out


def locate_findings(findings: Iterable[Finding], source: FileSource) -> list[Finding]:
    """The findings with line and column filled in from their pointers, sorted by place.

    Each file with findings is read and composed once more: positions are only ever computed
    for files that have something to report.
    """
    by_path: dict[str, list[Finding]] = {}
    for finding in findings:
        by_path.setdefault(finding.path, []).append(finding)
    located: list[Finding] = []
    for path, group in by_path.items():
        data = _read_quietly(source, path) if any(f.line is None for f in group) else None
        for finding in group:
            position = locate(data, finding.pointer) if data is not None and finding.line is None else None
            located.append(replace(finding, line=position[0], column=position[1]) if position else finding)
    return sorted(located, key=Finding.sort_key)


def _read_quietly(source: FileSource, path: str) -> bytes | None:
    try:
        return source.read(path)
    except DocumentError:
        return None
