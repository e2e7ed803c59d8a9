"""A small, realistic policy repository for tests that need one in git.

Two environments, a handful of members with roles and levels, and policies for production
rollouts; helpers write change requests and land them with `Approved-by:` trailers the way
the offline `trailers` approval source expects. Tests change what they need on top.
"""

from __future__ import annotations

from collections.abc import Mapping
from typing import Any

from tests.support.gitutil import GitRepo
from tests.support.people import ALICE, CAROL, DAVE, members_document

ENVIRONMENTS = [
    {"key": "production", "id": 1, "name": "Production", "api_token": "phc_production_key"},
    {"key": "staging", "id": 2, "name": "Staging", "api_token": "phc_staging_key"},
]


def project(source: str = "trailers", unmatched: str = "allow") -> dict[str, Any]:
    return {
        "apiVersion": "reconciler/v1",
        "kind": "Project",
        "metadata": {"name": "acme"},
        "spec": {
            "environments": ENVIRONMENTS,
            "github": {"repository": "acme/feature-flag-policies"},
            "approvals": {"source": source},
            "unmatched_changes": unmatched,
        },
    }


def members() -> dict[str, Any]:
    return members_document()


def policy(name: str, action: str | list[str], quorum: int = 1, **spec: Any) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action_key": action,
        "approver_config": {"quorum": quorum, "roles": ["flag-approvers"]},
    }
    body.update(spec)
    return {
        "apiVersion": "reconciler/v1",
        "kind": "ApprovalPolicy",
        "metadata": {"name": name, "description": f"{action} needs {quorum} approval(s)"},
        "spec": body,
    }


def change(
    name: str, action: str, flag_key: str, environment: str = "production", **spec: Any
) -> dict[str, Any]:
    body: dict[str, Any] = {
        "action_key": action,
        "resource_type": "feature_flag",
        "resource_id": flag_key,
        "environment": environment,
    }
    body.update(spec)
    return {
        "apiVersion": "reconciler/v1",
        "kind": "ChangeRequest",
        "metadata": {"name": name, "description": f"{action} {flag_key}"},
        "spec": body,
    }


def create_flag(
    name: str, flag: str, environment: str = "production", rollout: float = 0, **flag_spec: Any
) -> dict[str, Any]:
    definition: dict[str, Any] = {
        "key": flag,
        "name": f"The {flag} flag",
        "active": True,
        "filters": {"groups": [{"properties": [], "rollout_percentage": rollout}]},
    }
    definition.update(flag_spec)
    return change(name, "feature_flag.create", flag, environment, flag=definition)


def ramp(
    name: str, flag: str, percentage: float, environment: str = "production", **spec: Any
) -> dict[str, Any]:
    instructions = [{"kind": "updateRollout", "group": 0, "percentage": percentage}]
    return change(name, "feature_flag.update", flag, environment, instructions=instructions, **spec)


def bootstrap(repo: GitRepo, *, source: str = "trailers", unmatched: str = "allow", quorum: int = 1) -> str:
    """Commit the project, members and the standard policies; return the commit sha."""
    repo.write("reconciler.yaml", project(source, unmatched))
    repo.write("members.yaml", members())
    repo.write(
        "policies/production-rollouts.yaml",
        policy(
            "production-rollouts",
            "feature_flag.update",
            quorum,
            match={"environments": ["production"]},
            bypass_org_membership_levels=[15],
        ),
    )
    repo.write(
        "policies/production-creates.yaml",
        policy("production-creates", "feature_flag.create", 1, match={"environments": ["production"]}),
    )
    repo.write(
        "policies/policy-changes.yaml",
        policy(
            "policy-changes",
            "approval_policy.change",
            2,
            approver_config={"quorum": 2, "users": ["dave", "erin", "bob"]},
        ),
    )
    repo.write(
        "policies/member-changes.yaml",
        policy(
            "member-changes", "members.change", 1, approver_config={"quorum": 1, "users": ["dave", "erin"]}
        ),
    )
    return repo.commit("Bootstrap policies and members", author=DAVE.identity)


def land(
    repo: GitRepo,
    files: Mapping[str, dict[str, Any] | str],
    *,
    author: tuple[str, str] = ALICE.identity,
    committer: tuple[str, str] | None = None,
    approvers: tuple[str, ...] = ("bob",),
    message: str = "Land change",
) -> str:
    """Write `files` and commit them with one `Approved-by:` trailer per approver."""
    for path, content in files.items():
        repo.write(path, content)
    trailers = [("Approved-by", login) for login in approvers]
    return repo.commit(message, author=author, committer=committer or CAROL.identity, trailers=trailers)
