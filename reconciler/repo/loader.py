"""Reading a policy repository: every document of a `FileSource`, and every finding on the way.

`load_repository(source)` turns the files of a `FileSource` (a directory or a git commit) into
a `PolicyRepository`: the project, the members, the policies and the change requests keyed by
path, plus every finding met on the way (collect, don't stop). With `salvage`, a document that
fails its schema is also placed as what of it still reads (`model/salvage.py`), for the
validator's semantic checks, and listed in `salvaged`.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field

from pydantic import BaseModel

from reconciler.model.documents import ApprovalPolicy, ChangeRequest, Members, Project
from reconciler.model.salvage import Salvaged, salvage
from reconciler.repo.findings import Finding
from reconciler.repo.layout import MEMBERS_FILE, PROJECT_FILE, kind_of_path, misplaced, not_regular_findings
from reconciler.repo.parse import parse_source
from reconciler.repo.sources import FileSource


@dataclass
class PolicyRepository:
    """The documents of a policy repository that loaded cleanly, and what went wrong with the rest.

    `salvaged` names the documents placed although they failed their schema (loaded with
    `salvage`): what of them reads, only for checking, with the way back to their pointers.
    """

    source: FileSource
    project: Project | None = None
    members: Members | None = None
    policies: dict[str, ApprovalPolicy] = field(default_factory=dict)
    changes: dict[str, ChangeRequest] = field(default_factory=dict)
    findings: list[Finding] = field(default_factory=list)
    salvaged: dict[str, Salvaged] = field(default_factory=dict)


def load_repository(source: FileSource, jobs: int = 1, *, salvage_invalid: bool = False) -> PolicyRepository:
    """Every document of `source`, collecting findings instead of stopping at the first.

    `jobs` > 1 parses in that many forked processes when there are enough files to pay for
    them; keep the default of 1 in a process that runs threads (forking one can deadlock).
    Findings carry pointers; `findings.locate_findings` adds lines and columns.
    `salvage_invalid` also places what reads of documents that fail their schema (see
    `PolicyRepository.salvaged`): for the validator only, never for applying.
    """
    repo = PolicyRepository(source)
    paths = list(source.paths())
    documents = [(path, kind) for path in paths if (kind := kind_of_path(path))]
    repo.findings.extend(misplaced(paths))
    not_regular = not_regular_findings(source)
    repo.findings.extend(not_regular)
    for required in (PROJECT_FILE, MEMBERS_FILE):
        if not any(path == required for path, _ in documents) and not any(
            f.path == required for f in not_regular
        ):
            repo.findings.append(
                Finding(required, f"{required} is missing: {_REQUIRED[required]}", rule="missing-file")
            )
    with _no_cyclic_gc():
        for path, kind, model, plain, findings in parse_source(source, documents, jobs):
            repo.findings.extend(findings)
            if model is not None:
                _place(repo, path, kind, model)
            elif salvage_invalid and plain is not None and (rest := salvage(plain, kind)) is not None:
                _place(repo, path, kind, rest.model)
                repo.salvaged[path] = rest
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
