"""The rules in force: the project, the members and the policies a landing commit is judged by.

A commit is judged by the rules of its first parent (its base), and a rule change takes effect
only once approved, file by file: a rejected edit of one policy must not ride in later with an
approved edit of another. So the regime is kept as documents by path, and an approved commit
replaces exactly the files it changed. It lives in the store (policies, members, environments
and the project document in the position's details) so the next pass resumes from it.
"""

from __future__ import annotations

import uuid
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime
from typing import Any

from reconciler.approvals.source import ApprovalContext
from reconciler.errors import EXIT_FINDINGS, ConfigError, DocumentError
from reconciler.model.documents import (
    ApprovalPolicy,
    Member,
    Members,
    MembersSpec,
    Metadata,
    Project,
    Role,
)
from reconciler.policy import Evaluation, Subject, evaluate
from reconciler.repo.findings import Finding, errors, locate_findings
from reconciler.repo.layout import (
    MEMBERS_FILE,
    PROJECT_FILE,
    is_rule_file,
    kind_of_path,
    not_regular_findings,
)
from reconciler.repo.loader import PolicyRepository
from reconciler.repo.parse import parse_document
from reconciler.repo.sources import FileSource
from reconciler.store import Store
from reconciler.store.records import EnvironmentRecord, PolicyRecord, Position
from reconciler.validate.checks import check_repository

PROJECT_KEY = "project"  # Position.details key holding the project document in force
RULES_INVALID_KEY = "rules_invalid"  # Position.details key: why no rules are in force yet
SHOWN_FINDINGS = 5


@dataclass(frozen=True)
class Regime:
    """Project, members and policies (by path) in force; `commit` is where each came from."""

    project: Project
    members: Members
    policies: dict[str, ApprovalPolicy] = field(default_factory=dict)

    @property
    def policy_list(self) -> list[ApprovalPolicy]:
        return [self.policies[path] for path in sorted(self.policies)]

    def environment(self, key: str) -> int | None:
        """The id of the environment with `key`, or None when the project has no such one."""
        return next((e.id for e in self.project.spec.environments if e.key == key), None)

    def with_files(self, documents: dict[str, Any]) -> Regime:
        """This regime with `documents` (path → document, or None for a deleted policy) in force."""
        regime = self
        for path, doc in documents.items():
            if path == PROJECT_FILE and isinstance(doc, Project):
                regime = replace(regime, project=doc)
            elif path == MEMBERS_FILE and isinstance(doc, Members):
                regime = replace(regime, members=doc)
            elif isinstance(doc, ApprovalPolicy) or doc is None:
                policies = dict(regime.policies)
                if doc is None:
                    policies.pop(path, None)
                else:
                    policies[path] = doc
                regime = replace(regime, policies=policies)
        return regime

    def judge(self, subject: Subject, context: ApprovalContext, *, now: datetime) -> Evaluation:
        """The policies in force on `subject`, with the votes, requesters and merger of `context`."""
        return evaluate(
            subject,
            self.policy_list,
            self.members,
            context.votes,
            requesters=context.requesters,
            merger=context.merger,
            created_at=context.created_at,
            now=now,
            unmatched_changes=self.project.spec.unmatched_changes,
        )

    def environment_records(self) -> list[EnvironmentRecord]:
        # Group types are the project's, as in PostHog: every environment serves the same mapping.
        group_types = self.project.spec.group_type_mapping
        return [
            EnvironmentRecord(e.id, e.key, e.name, e.api_token, dict(group_types))
            for e in self.project.spec.environments
        ]


def stored_project(position: Position) -> Project | None:
    """The project in force at `position`, or None before the repository was bootstrapped."""
    data = position.details.get(PROJECT_KEY)
    return Project.model_validate(data) if data is not None else None


def load_regime(store: Store, position: Position) -> Regime | None:
    """The regime the store holds, or None before the repository was bootstrapped."""
    project = stored_project(position)
    if project is None:
        return None
    roles = [Role(name=r.name, id=r.id) for r in store.list_roles()]
    people = [
        Member(
            login=m.login,
            email=m.email,
            first_name=m.first_name,
            last_name=m.last_name,
            level=m.level,
            roles=list(m.roles),
            role_at_organization=m.role_at_organization,
            id=uuid.UUID(m.uuid),
        )
        for m in store.list_members()
    ]
    members = Members(
        apiVersion="reconciler/v1",
        kind="Members",
        metadata=Metadata(name="members"),
        spec=MembersSpec(roles=roles, members=people),
    )
    policies = {record.file: _policy(record) for record in store.list_policies()}
    return Regime(project, members, policies)


def _policy(record: PolicyRecord) -> ApprovalPolicy:
    return ApprovalPolicy.model_validate(
        {
            "apiVersion": "reconciler/v1",
            "kind": "ApprovalPolicy",
            "metadata": {"name": record.name, "description": record.description},
            "spec": record.spec,
        }
    )


# --- reading rules: all of them, or none --------------------------------------------------------


class RulesInvalid(ConfigError):
    """The rules of a tree cannot be read in full, so none of them is in force.

    A policy that does not load must never count as "no policy": a tree with any invalid rule
    file (YAML, schema or meaning across files) yields no rules at all, and nothing is judged
    or applied by it. Exit code 1, like a validation that found errors.
    """

    exit_code = EXIT_FINDINGS

    def __init__(self, where: str, findings: list[Finding]):
        self.where = where
        self.findings = findings
        super().__init__(
            f"the rules at {where} cannot be read in full, so none is in force and nothing applies: "
            f"{describe_findings(findings)}. Fix the file(s) (`reconciler validate` lists every finding)"
        )

    def as_details(self) -> dict[str, Any]:
        """What the position's details keep of it, for the status and the passes that follow."""
        return {
            "where": self.where,
            "error": str(self),
            "findings": [
                {"file": f.path, "pointer": f.pointer, "line": f.line, "message": f.message}
                for f in self.findings
            ],
        }

    @classmethod
    def from_details(cls, details: dict[str, Any]) -> RulesInvalid:
        findings = [
            Finding(
                str(f.get("file", "")), str(f.get("message", "")), str(f.get("pointer") or ""), f.get("line")
            )
            for f in details.get("findings", [])
            if isinstance(f, dict)
        ]
        return cls(str(details.get("where", "")), findings)


def describe_findings(findings: list[Finding]) -> str:
    """`file[:line] [pointer]: message` of the first findings, and how many more there are."""
    shown = []
    for f in findings[:SHOWN_FINDINGS]:
        where = f"{f.path}:{f.line}" if f.line else f.path
        shown.append(f"{where}{' ' + f.pointer if f.pointer else ''}: {f.message}")
    more = len(findings) - SHOWN_FINDINGS
    return "; ".join(shown) + (f" (and {more} more)" if more > 0 else "")


def invalid_change_request(findings: list[Finding]) -> str:
    """Why a change-request file is no change request: `pointer: message` of the first findings."""
    summary = "; ".join(f"{f.pointer or '/'}: {f.message}" for f in findings[:SHOWN_FINDINGS])
    return f"invalid change request: {summary}"


def parse_rules(files: Iterable[tuple[str, bytes | None]]) -> tuple[dict[str, Any], list[Finding]]:
    """Each rule file's document (None for one that is absent) and the findings of those that do not parse."""
    documents: dict[str, Any] = {}
    findings: list[Finding] = []
    for path, data in files:
        if data is None:
            documents[path] = None
            continue
        model, _plain, found = parse_document(path, kind_of_path(path) or "", data)
        if model is None:
            findings.extend(found)
        else:
            documents[path] = model
    return documents, findings


def read_files(
    source: FileSource, paths: Iterable[str]
) -> tuple[list[tuple[str, bytes | None]], list[Finding]]:
    """(path, bytes) of the readable `paths` of `source`, and a finding for each one that cannot be read."""
    files: list[tuple[str, bytes | None]] = []
    findings: list[Finding] = []
    for path in paths:
        try:
            files.append((path, source.read(path)))
        except DocumentError as err:
            findings.append(Finding(path, err.message, rule="io"))
    return files, findings


def regime_findings(regime: Regime) -> list[Finding]:
    """The errors `reconciler validate` finds across the rule files of `regime` (duplicate names,
    unknown references); warnings never keep rules out of force."""
    repo = PolicyRepository(_NO_FILES, regime.project, regime.members, dict(regime.policies))
    return errors(check_repository(repo))


def read_regime(source: FileSource, where: str) -> Regime | None:
    """The rules `source` holds, all of them; None when it has no reconciler.yaml (not a policy repository).

    Raises `RulesInvalid` naming every finding when any rule file is missing or invalid.
    """
    paths = [p for p in source.paths() if is_rule_file(p)]
    # A link, gitlink or pipe where a rule file belongs is invalid, never absent.
    odd = [f for f in not_regular_findings(source) if is_rule_file(f.path)]
    if PROJECT_FILE not in paths and not odd:
        return None
    files, unreadable = read_files(source, paths)
    documents, findings = parse_rules(files)
    findings += unreadable + odd
    if odd:
        raise RulesInvalid(where, locate_findings(findings, source))
    if MEMBERS_FILE not in paths:
        findings.append(
            Finding(
                MEMBERS_FILE,
                f"{MEMBERS_FILE} is missing: policies refer to its people and roles",
                rule="missing-file",
            )
        )
    if not findings:
        policies = {p: d for p, d in documents.items() if isinstance(d, ApprovalPolicy)}
        regime = Regime(documents[PROJECT_FILE], documents[MEMBERS_FILE], policies)
        findings = regime_findings(regime)
        if not findings:
            return regime
    raise RulesInvalid(where, locate_findings(findings, source))


class _NoFiles:
    """A source without files: semantic checks of documents already parsed read nothing."""

    @property
    def label(self) -> str:
        return "the rules in force"

    def paths(self) -> Iterable[str]:
        return ()

    def other_entries(self) -> Mapping[str, int]:
        return {}

    def read(self, path: str) -> bytes:
        raise DocumentError(path, "not read: the rules are checked as parsed documents")


_NO_FILES = _NoFiles()
