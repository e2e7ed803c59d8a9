"""Findings: one problem in one file, with where it is (path, line, column, JSON pointer).

A finding is an error (the run fails) or a warning (it fails only under `validate --strict`).

Parsing and checks give pointers; `locate_findings` maps them to lines and columns lazily,
reading and composing again only the files that have something to report.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, replace
from typing import Literal

from reconciler.errors import DocumentError
from reconciler.repo.sources import FileSource
from reconciler.repo.yamlio import locate

ERROR: Literal["error"] = "error"
WARNING: Literal["warning"] = "warning"
Severity = Literal["error", "warning"]


@dataclass(frozen=True, slots=True)
class Finding:
    """One problem in one file: where (path relative to the repository root, line, column,
    JSON pointer) and what (a message saying what to do, a short rule name and a severity).

    `related` names the other files the problem is about (the first of two documents with one
    name): `validate FILE` reports it when it names one of them.
    """

    path: str
    message: str
    pointer: str = ""
    line: int | None = None
    column: int | None = None
    rule: str = "schema"
    severity: Severity = ERROR
    related: tuple[str, ...] = ()

    def sort_key(self) -> tuple[str, int, int, str]:
        return (self.path, self.line or 0, self.column or 0, self.message)


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


def errors(findings: Iterable[Finding]) -> list[Finding]:
    """The findings that are errors: what refuses a repository, warnings aside."""
    return [f for f in findings if f.severity == ERROR]


def _read_quietly(source: FileSource, path: str) -> bytes | None:
    try:
        return source.read(path)
    except DocumentError:
        return None
