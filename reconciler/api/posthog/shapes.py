"""PostHog's objects: approval policies, change requests, flags, members, events.

Pure functions from store records to the JSON PostHog's API returns (its field names and
shapes), plus what ties each object to Git (`name`, `description`, `file`, `commit`,
`pull_request`). `routes.py` serves them; the LaunchDarkly and /v1 views have their own
modules.
"""

from __future__ import annotations

import json
from datetime import timedelta
from typing import Any

from reconciler.api.directory import Directory, iso, user_object
from reconciler.model.durations import parse_duration
from reconciler.store import (
    AuditRecord,
    ChangeRequestRecord,
    FlagRecord,
    MemberRecord,
    PolicyRecord,
    VoteRecord,
    stable_uuid,
)

# PostHog versions the shape of an action's intent; ours has had one shape.
ACTION_VERSION = 1


def drf_duration(text: str) -> str:
    """`14d` as Django REST framework writes a duration (`14 00:00:00`), as PostHog returns it."""
    try:
        span = parse_duration(text)
    except ValueError:
        return text
    return _drf(span)


def _drf(span: timedelta) -> str:
    days, rest = divmod(int(span.total_seconds()), 86400)
    hours, rest = divmod(rest, 3600)
    minutes, seconds = divmod(rest, 60)
    clock = f"{hours:02}:{minutes:02}:{seconds:02}"
    return f"{days} {clock}" if days else clock


# --- approval policies --------------------------------------------------------------------


def policy_object(policy: PolicyRecord, directory: Directory) -> dict[str, Any]:
    spec = policy.spec
    config = spec.get("approver_config") or {}
    users = [directory.member(login) for login in config.get("users", [])]
    return {
        "id": policy.id,
        "action_key": policy.action_key,
        "conditions": spec.get("conditions"),
        "approver_config": {
            "quorum": config.get("quorum", 1),
            "users": [m.id for m in users if m is not None],
            "roles": [directory.role_id(r) for r in config.get("roles", [])],
            "user_logins": list(config.get("users", [])),
            "role_names": list(config.get("roles", [])),
        },
        "allow_self_approve": bool(spec.get("allow_self_approve", False)),
        "bypass_org_membership_levels": [
            str(level) for level in spec.get("bypass_org_membership_levels", [])
        ],
        "bypass_roles": [directory.role_id(r) for r in spec.get("bypass_roles", [])],
        "expires_after": drf_duration(str(spec.get("expires_after", "14d"))),
        "enabled": policy.enabled,
        "created_by": directory.user(policy.created_by),
        "created_at": iso(policy.created_at),
        "updated_at": iso(policy.updated_at),
        "name": policy.name,
        "description": policy.description,
        "file": policy.file,
        "match": spec.get("match") or {},
        "commit": policy.commit,
    }


def policy_applies_to(policy: PolicyRecord, environment_key: str) -> bool:
    """Whether the policy can govern changes in this environment (no list means all)."""
    environments = (policy.spec.get("match") or {}).get("environments")
    return environments is None or environment_key in environments


# --- change requests ----------------------------------------------------------------------


def _same_person(directory: Directory, login: str | None, uuid: str | None, other: str | None) -> bool:
    if other is None:
        return False
    if login is not None and login.lower() == other.lower():
        return True
    me = directory.member(other)
    return me is not None and uuid is not None and me.uuid == uuid


def approval_object(change_request_id: str, vote: VoteRecord, directory: Directory) -> dict[str, Any]:
    """One vote: PostHog's approval (`created_by`, `decision`, `reason`) and why it counted or not."""
    return {
        "id": stable_uuid("vote", f"{change_request_id}:{vote.login.lower()}"),
        "created_by": directory.user(vote.member_uuid) or directory.user(vote.login),
        "login": vote.login,
        "decision": vote.decision,
        "reason": vote.reason,
        "created_at": iso(vote.at),
        "counted": vote.counted,
        "ignored_reason": vote.ignored_reason,
        "commit_id": vote.commit_id,
        "source": vote.source,
    }


def user_decision(cr: ChangeRequestRecord, directory: Directory, login: str | None) -> str | None:
    """The caller's standing vote (`approved` or `rejected`), None without one."""
    for vote in reversed(cr.votes):
        if _same_person(directory, vote.login, vote.member_uuid, login):
            return None if vote.decision == "dismissed" else vote.decision
    return None


def pull_request_object(cr: ChangeRequestRecord) -> dict[str, Any] | None:
    if cr.pull_request_number is None:
        return None
    return {"number": cr.pull_request_number, "url": cr.pull_request_url}


def change_request_object(cr: ChangeRequestRecord, directory: Directory, login: str | None) -> dict[str, Any]:
    requester = directory.member(cr.created_by_uuid) or directory.member(cr.created_by_login)
    applier = directory.member(cr.applied_by_uuid) or directory.member(cr.applied_by_login)
    return {
        "id": cr.id,
        "action_key": cr.action_key,
        "action_version": ACTION_VERSION,
        "resource_type": cr.resource_type,
        "resource_id": cr.resource_id,
        "intent": cr.intent,
        "intent_display": cr.intent_display,
        "policy_snapshot": cr.policy_snapshot,
        "validation_status": cr.validation_status,
        "validation_errors": cr.validation_errors,
        "validated_at": iso(cr.validated_at),
        "state": cr.state,
        "created_by": None if requester is None else user_object(requester),
        "applied_by": None if applier is None else user_object(applier),
        "created_at": iso(cr.created_at),
        "updated_at": iso(cr.updated_at),
        "expires_at": iso(cr.expires_at),
        "applied_at": iso(cr.applied_at),
        # PostHog's apply_error is a text field: empty when nothing failed.
        "apply_error": cr.apply_error or "",
        "result_data": cr.result_data,
        "approvals": [approval_object(cr.id, v, directory) for v in cr.votes],
        # Approving, rejecting and cancelling happen on the pull request, never through this API.
        "can_approve": False,
        "can_cancel": False,
        "is_requester": _same_person(directory, cr.created_by_login, cr.created_by_uuid, login),
        "user_decision": user_decision(cr, directory, login),
        "name": cr.name,
        "description": cr.description,
        "file": cr.file,
        "environment": cr.environment_key,
        "commit": cr.commit,
        "pull_request": pull_request_object(cr),
        "requester_login": cr.created_by_login,
        "spec": cr.spec,
        "execute_at": iso(cr.execute_at),
        "base_version": cr.base_version,
        "bypass": cr.bypass,
    }


# --- flags, members, events ---------------------------------------------------------------


def flag_object(record: FlagRecord) -> dict[str, Any]:
    flag = record.flag
    groups = flag.filters.groups
    simple = len(groups) == 1 and not groups[0].properties and flag.filters.multivariate is None
    return {
        "id": flag.id,
        "name": flag.name,
        "key": flag.key,
        "filters": flag.filters.model_dump(mode="json"),
        "deleted": flag.deleted,
        "active": flag.active,
        "created_by": None,
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "is_simple_flag": simple,
        "rollout_percentage": groups[0].rollout_percentage if simple else None,
        "ensure_experience_continuity": flag.ensure_experience_continuity,
        "tags": list(flag.tags),
        "version": flag.version,
        "can_edit": False,
        "team_id": record.environment_id,
        "commit": record.commit,
        "change_request_id": record.change_request_id,
    }


def member_object(member: MemberRecord) -> dict[str, Any]:
    """PostHog's explicit member: a membership with its level and the user."""
    return {
        "id": stable_uuid("membership", member.uuid),
        "level": member.level,
        "parent_level": member.level,
        "parent_membership_id": stable_uuid("organization_membership", member.uuid),
        "joined_at": iso(member.joined_at),
        "updated_at": iso(member.updated_at),
        "user": user_object(member),
        "user_uuid": member.uuid,
        "effective_level": member.level,
        "roles": list(member.roles),
        "file": member.file,
        "commit": member.commit,
    }


def event_object(event: AuditRecord) -> dict[str, Any]:
    """An audit event as a PostHog event. PostHog's published schema types `properties`,
    `person`, `elements` and `elements_chain` as strings, so they are JSON text here."""
    properties = {
        "object_type": event.object_type,
        "object_id": event.object_id,
        "data": event.data,
        "commit": event.commit,
        "hash": event.hash,
        "prev_hash": event.prev_hash,
    }
    return {
        "id": str(event.id),
        "distinct_id": event.actor or "reconciler",
        "properties": json.dumps(properties, sort_keys=True, default=str),
        "event": event.verb,
        "timestamp": iso(event.created_at),
        "person": event.actor or "",
        "elements": "[]",
        "elements_chain": "",
    }
