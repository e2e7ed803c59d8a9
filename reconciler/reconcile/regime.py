"""The rules in force: the project, the members and the policies a landing commit is judged by.

A commit is judged by the rules of its first parent (DESIGN §2), and a rule change takes effect
only once approved, file by file: a rejected edit of one policy must not ride in later with an
approved edit of another. So the regime is kept as documents by path, and an approved commit
replaces exactly the files it changed. It lives in the store (policies, members, environments
and the project document in the position's details) so the next pass resumes from it.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass, field, replace
from typing import Any

from reconciler.documents import (
    ApprovalPolicy,
    Member,
    Members,
    MembersSpec,
    Metadata,
    Project,
    Role,
)
from reconciler.loader import MEMBERS_FILE, PROJECT_FILE
from reconciler.store import Store
from reconciler.store.records import EnvironmentRecord, PolicyRecord, Position

PROJECT_KEY = "project"  # Position.details key holding the project document in force


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

    def environment_records(self) -> list[EnvironmentRecord]:
        return [EnvironmentRecord(e.id, e.key, e.name, e.api_token) for e in self.project.spec.environments]


def load_regime(store: Store, position: Position) -> Regime | None:
    """The regime the store holds, or None before the repository was bootstrapped."""
    project_data = position.details.get(PROJECT_KEY)
    if project_data is None:
        return None
    project = Project.model_validate(project_data)
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
