"""Parse workers started ahead of the work give exactly what parsing in the caller gives."""

from __future__ import annotations

import multiprocessing
import os
from multiprocessing.connection import Connection
from pathlib import Path

import pytest

from reconciler.repo.parse import ParseWorkers, iter_parse_documents, usable_cpus

RAMP = (
    Path(__file__).resolve().parents[1] / "fixtures" / "repos" / "base" / "changes" / "2026" / "ramp.yaml"
).read_bytes()


def items(count: int) -> list[tuple[str, str, bytes]]:
    """Ramps, every seventh one invalid (over 100 %), one not YAML at all."""
    out = []
    for i in range(count):
        percentage = 150 if i % 7 == 0 else i % 101
        text = RAMP.replace(b"name: ramp", f"name: ramp-{i}".encode()).replace(
            b"percentage: 25", f"percentage: {percentage}".encode()
        )
        out.append((f"changes/ramp-{i}.yaml", "ChangeRequest", text))
    out.append(("changes/broken.yaml", "ChangeRequest", b"spec: ["))
    return out


def test_started_workers_parse_in_order_exactly_as_the_caller_would() -> None:
    work = items(300)  # fewer than a pool of its own would be started for
    inline = list(iter_parse_documents(work, jobs=1))
    workers = ParseWorkers.start(jobs=2)
    assert workers is not None and workers.count == 2
    try:
        ahead = list(iter_parse_documents(work, workers=workers))
        again = list(iter_parse_documents(work[:50], workers=workers))  # the same workers serve twice
    finally:
        workers.close()
        workers.close()  # closing twice is harmless
    assert ahead == inline and again == inline[:50]
    assert sum(model is None for model, _findings in ahead) == len(range(0, 300, 7)) + 1
    assert ahead[-1][1][0].path == "changes/broken.yaml"


def test_a_single_core_starts_no_workers() -> None:
    assert ParseWorkers.start(jobs=1) is None


def _parse_in_forked_child(work: list[tuple[str, str, bytes]], out: Connection) -> None:
    workers = ParseWorkers.start(jobs=2)
    try:
        results = list(iter_parse_documents(work, workers=workers))
        results += list(iter_parse_documents(work * 4, jobs=2))  # enough for a pool of its own
    finally:
        if workers is not None:
            workers.close()
    out.send([model is None for model, _findings in results])


def test_a_process_forked_after_workers_ran_parses_alone_rather_than_failing() -> None:
    # A fork server belongs to the process that started it; a plain fork of that process
    # cannot use it (ChildProcessError). Parsing must still happen, in the child itself.
    work = items(300)
    expected = [model is None for model, _findings in iter_parse_documents(work, jobs=1)]
    warm = ParseWorkers.start(jobs=2)
    assert warm is not None
    assert warm.pool() is not None
    warm.close()
    receive, send = multiprocessing.get_context("fork").Pipe(duplex=False)
    child = multiprocessing.get_context("fork").Process(target=_parse_in_forked_child, args=(work, send))
    child.start()
    got = receive.recv() if receive.poll(60) else None
    child.join(10)
    assert child.exitcode == 0
    assert got == expected + expected * 4


@pytest.mark.parametrize(
    ("cpu_max", "expected"),
    [
        ("max 100000\n", None),
        ("200000 100000\n", 2),
        ("150000 100000\n", 1),
        ("50000 100000\n", 1),
        ("garbled", None),
    ],
)
def test_workers_follow_a_container_s_cpu_quota(tmp_path: Path, cpu_max: str, expected: int | None) -> None:
    # A container limited to two CPUs on a big host must not start one worker per host core.
    (tmp_path / "cpu.max").write_text(cpu_max)
    affinity = len(os.sched_getaffinity(0))
    assert usable_cpus(tmp_path) == (affinity if expected is None else min(affinity, expected))
    assert usable_cpus(tmp_path / "no-cgroup-here") == affinity
