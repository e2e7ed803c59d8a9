"""Bytes to documents: parsing one file, and many at once on worker processes.

`parse_document` is YAML then schema for one file. `parse_source` parses the documents of a
`FileSource` (in forked processes when there are enough); `iter_parse_documents` parses bytes
the caller already holds, on `ParseWorkers` booted ahead of the work when given.
"""

from __future__ import annotations

import gc
import logging
import multiprocessing
import multiprocessing.pool
import os
import sys
import threading
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any

from pydantic import BaseModel

from reconciler.errors import DocumentError
from reconciler.model.documents import DOCUMENT_MODELS
from reconciler.model.schema import validate_document
from reconciler.repo.findings import Finding
from reconciler.repo.sources import FileSource
from reconciler.repo.yamlio import load_yaml

log = logging.getLogger(__name__)

# Below this many files a pool of processes costs more than it saves.
PARALLEL_THRESHOLD = 64

# (path, kind, model or None, plain data of a document that failed its schema or None, findings)
_Result = tuple[str, str, BaseModel | None, Any, list[Finding]]


def parse_document(path: str, kind: str, data: bytes) -> tuple[BaseModel | None, Any, list[Finding]]:
    """One file's bytes as a document of `kind`: (model or None, plain data, findings)."""
    try:
        plain = load_yaml(data, path)
    except DocumentError as err:
        return None, None, [Finding(path, err.message, "", err.line, err.column, "yaml")]
    model, issues = validate_document(plain, kind)
    return model, plain, [Finding(path, issue.message, issue.pointer) for issue in issues]


def parse_source(source: FileSource, documents: list[tuple[str, str]], jobs: int) -> Iterator[_Result]:
    """Each `(path, kind)` of `source` read and parsed, in order: `(path, kind, model or None,
    plain data when the document failed its schema or None, findings)`.

    `jobs` > 1 parses in that many forked processes when there are enough files to pay for them.
    """
    workers = _worker_count(jobs, len(documents))
    return _parse_parallel(source, documents, workers) if workers > 1 else _parse_serial(source, documents)


def _parse_serial(source: FileSource, documents: list[tuple[str, str]]) -> Iterator[_Result]:
    for path, kind in documents:
        try:
            data = source.read(path)
        except DocumentError as err:
            yield path, kind, None, None, [Finding(path, err.message, rule="io")]
            continue
        model, plain, findings = parse_document(path, kind, data)
        yield path, kind, model, (plain if model is None else None), findings


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
        yield from _parsed(pool, jobs)


# Below this many files starting worker processes (which import the package) costs more than it saves.
POOL_WORTH_STARTING = 1000


def iter_parse_documents(
    items: list[tuple[str, str, bytes]], jobs: int | None = None, workers: ParseWorkers | None = None
) -> Iterator[tuple[BaseModel | None, list[Finding]]]:
    """Parse many `(path, kind, bytes)` in order, yielding each result as soon as it is ready.

    For callers that already hold the bytes (the reconcile pass reads a whole walk's files in
    one git exchange); the same path may appear more than once (a file at several commits).

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
    for _path, _kind, model, _plain, findings in _parsed(pool, batches):
        yield model, findings


def _parsed(
    pool: multiprocessing.pool.Pool, batches: Iterable[list[tuple[str, str, bytes | str | None]]]
) -> Iterator[_Result]:
    """The workers' results in order, each valid document's model built again from its plain
    data (a document with findings comes with its plain data only)."""
    for results in pool.imap(_parse_batch, batches):
        for path, kind, plain, findings in results:
            valid = plain is not None and not findings
            model = DOCUMENT_MODELS[kind].model_validate(plain) if valid else None
            yield path, kind, model, (None if valid else plain), findings


def _start_pool(count: int) -> multiprocessing.pool.Pool | None:
    """`count` parse workers, or None when they cannot start (say, in a process forked from one
    whose fork server runs): they only make parsing faster, so the caller parses alone."""
    # Never a plain fork: the service calls this from a thread beside the API's, and forking a
    # threaded process can deadlock the child. A fork server forks from a clean process.
    context = multiprocessing.get_context("forkserver" if sys.platform == "linux" else "spawn")
    if sys.platform == "linux":
        context.set_forkserver_preload(["reconciler.repo.parse"])  # workers start with it imported
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
        _model, plain, findings = parse_document(path, kind, data)
        out.append((path, kind, plain, findings))  # plain data with findings: it failed its schema
    return out
