"""PostHog's objects: approval policies, change requests, flags, members, events.

Pure functions from store records to the JSON PostHog's API returns (its field names and
shapes), plus what ties each object to Git (`name`, `description`, `file`, `commit`,
`pull_request`). `routes.py` serves them; the LaunchDarkly and /v1 views have their own
modules.
"""

from __future__ import annotations

import json
from collections.abc import Mapping
from datetime import datetime, timedelta
from typing import Any

from reconciler.api.directory import Directory, iso, user_object
from reconciler.model.durations import parse_duration
from reconciler.model.flags import FlagFilters
from reconciler.store import (
    AuditRecord,
    ChangeRequestRecord,
    FlagRecord,
    FlagVersionRecord,
    MemberRecord,
    PolicyRecord,
    VoteRecord,
    stable_uuid,
)

# PostHog versions the shape of an action's intent; ours has had one shape.
ACTION_VERSION = 1
# PostHog's `expires_after` default, for a change no policy governs.
DEFAULT_EXPIRY = timedelta(days=14)
# PostHog's explicit team membership levels.
PROJECT_MEMBER, PROJECT_ADMIN = 1, 8


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


def policy_objects(policy: PolicyRecord, directory: Directory) -> list[dict[str, Any]]:
    """PostHog's policy objects for one policy document: one per action it governs."""
    return [policy_object(policy, directory, ident, action) for ident, action in policy.per_action()]


def policy_object(policy: PolicyRecord, directory: Directory, ident: str, action: str) -> dict[str, Any]:
    spec = policy.spec
    config = spec.get("approver_config") or {}
    return {
        "id": ident,
        "action_key": action,
        # PostHog keeps `{}` for "no condition" (its engine reads an empty rule as "always").
        "conditions": spec.get("conditions") or {},
        "approver_config": {
            "quorum": config.get("quorum", 1),
            "users": member_ids(directory, config.get("users", [])),
            "roles": [directory.role_id(r) for r in config.get("roles", [])],
            "user_logins": list(config.get("users", [])),
            "role_names": list(config.get("roles", [])),
        },
        "allow_self_approve": bool(spec.get("allow_self_approve", False)),
        "bypass_org_membership_levels": [
            int(level) for level in spec.get("bypass_org_membership_levels", [])
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


def member_ids(directory: Directory, logins: list[str]) -> list[int]:
    """PostHog names approvers by user id; logins that are nobody's are left out."""
    found = (directory.member(login) for login in logins)
    return [m.id for m in found if m is not None]


def policy_snapshot(stored: Any, directory: Directory) -> dict[str, Any]:
    """PostHog's flat `policy_snapshot` (users and roles by id) of the first governing policy;
    `{}` for a change no policy governs. Every governing policy is in `governing_policies`."""
    policies = governing_policies(stored)
    if not policies:
        return {}
    first = policies[0]
    return {
        "quorum": first.get("quorum", 1),
        "users": member_ids(directory, list(first.get("users", []))),
        "roles": [directory.role_id(r) for r in first.get("roles", [])],
        "allow_self_approve": bool(first.get("allow_self_approve", False)),
        "conditions": first.get("conditions") or {},
        "bypass_org_membership_levels": [int(v) for v in first.get("bypass_org_membership_levels", [])],
        "bypass_roles": [directory.role_id(r) for r in first.get("bypass_roles", [])],
    }


def governing_policies(stored: Any) -> list[dict[str, Any]]:
    """Every governing policy as recorded (names, logins, role names), oldest records included:
    those hold one policy's fields at the top level and no `policies` list."""
    if not isinstance(stored, dict) or not stored:
        return []
    listed = stored.get("policies")
    if isinstance(listed, list):
        return [p for p in listed if isinstance(p, dict)]
    return [stored]


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


def change_request_object(
    cr: ChangeRequestRecord, directory: Directory, login: str | None, flag_ids: Mapping[str, int]
) -> dict[str, Any]:
    """PostHog's change request. `resource_id` is the flag's id (as text, as PostHog keeps it),
    null while a flag to be created does not exist; `resource_key` is the flag key."""
    requester = directory.member(cr.created_by_uuid) or directory.member(cr.created_by_login)
    applier = directory.member(cr.applied_by_uuid) or directory.member(cr.applied_by_login)
    flag_id = resource_flag_id(cr, flag_ids)
    return {
        "id": cr.id,
        "action_key": cr.action_key,
        "action_version": ACTION_VERSION,
        "resource_type": cr.resource_type,
        "resource_id": None if flag_id is None else str(flag_id),
        "intent": cr.intent,
        "intent_display": cr.intent_display,
        "policy_snapshot": policy_snapshot(cr.policy_snapshot, directory),
        "validation_status": cr.validation_status,
        "validation_errors": cr.validation_errors,
        "validated_at": iso(cr.validated_at),
        "state": cr.state,
        "created_by": None if requester is None else user_object(requester),
        "applied_by": None if applier is None else user_object(applier),
        "created_at": iso(cr.created_at),
        "updated_at": iso(cr.updated_at),
        "expires_at": iso(expires_at(cr)),
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
        "resource_key": cr.resource_id,
        "governing_policies": governing_policies(cr.policy_snapshot),
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


def resource_flag_id(cr: ChangeRequestRecord, flag_ids: Mapping[str, int]) -> int | None:
    """The id of the flag the change request is about: the one it produced, else the flag of
    that key in its environment now; None when no such flag exists (yet)."""
    produced = cr.result_data.get("resource_id") if isinstance(cr.result_data, dict) else None
    if isinstance(produced, int) and not isinstance(produced, bool):
        return produced
    return flag_ids.get(cr.resource_id)


def expires_at(cr: ChangeRequestRecord) -> datetime:
    """When the request expires: as its governing policies set it, else PostHog's default of
    14 days after its creation (a change no policy governs)."""
    return cr.expires_at or cr.created_at + DEFAULT_EXPIRY


# --- flags, members, events ---------------------------------------------------------------


def flag_object(
    record: FlagRecord, directory: Directory, people: tuple[str | None, str | None]
) -> dict[str, Any]:
    """PostHog's feature flag; `people` are the members (uuid or login) who requested the change
    that created it and the one that made its current version."""
    flag = record.flag
    groups = flag.filters.groups
    simple = len(groups) == 1 and not groups[0].properties and flag.filters.multivariate is None
    return {
        "id": flag.id,
        "name": flag.name,
        "key": flag.key,
        "filters": filters_object(flag.filters),
        "deleted": flag.deleted,
        "active": flag.active,
        "created_by": directory.user(people[0]),
        "created_at": iso(record.created_at),
        "updated_at": iso(record.updated_at),
        "last_modified_by": directory.user(people[1]),
        "is_simple_flag": simple,
        "rollout_percentage": number(groups[0].rollout_percentage) if simple else None,
        "ensure_experience_continuity": flag.ensure_experience_continuity,
        "tags": list(flag.tags),
        "version": flag.version,
        "can_edit": False,
        "team_id": record.environment_id,
        "commit": record.commit,
        "change_request_id": record.change_request_id,
    }


def flag_version_object(
    version: FlagVersionRecord, cr: ChangeRequestRecord | None, directory: Directory
) -> dict[str, Any]:
    """One version of a flag with what made it: the change request (its people, approvals and
    pull request) and the commit; `change_request` is null for a version no request made."""
    flag = version.flag
    return {
        "version": flag.version,
        "created_at": iso(version.created_at),
        "commit": version.commit,
        "flag": {
            "id": flag.id,
            "key": flag.key,
            "name": flag.name,
            "active": flag.active,
            "deleted": flag.deleted,
            "filters": filters_object(flag.filters),
            "ensure_experience_continuity": flag.ensure_experience_continuity,
            "tags": list(flag.tags),
        },
        "change_request": None if cr is None else _made_by(cr, directory),
    }


def _made_by(cr: ChangeRequestRecord, directory: Directory) -> dict[str, Any]:
    requester = directory.member(cr.created_by_uuid) or directory.member(cr.created_by_login)
    applier = directory.member(cr.applied_by_uuid) or directory.member(cr.applied_by_login)
    return {
        "id": cr.id,
        "name": cr.name,
        "file": cr.file,
        "action_key": cr.action_key,
        "state": cr.state,
        "intent_display": cr.intent_display,
        "created_by": None if requester is None else user_object(requester),
        "applied_by": None if applier is None else user_object(applier),
        "applied_at": iso(cr.applied_at),
        "commit": cr.commit,
        "pull_request": pull_request_object(cr),
        "approvals": [approval_object(cr.id, v, directory) for v in cr.votes],
        "bypass": cr.bypass,
    }


def filters_object(filters: FlagFilters) -> dict[str, Any]:
    """A flag's `filters` with whole rollout percentages as integers, as PostHog writes them."""
    body: dict[str, Any] = filters.model_dump(mode="json")
    for group in body.get("groups") or []:
        group["rollout_percentage"] = number(group.get("rollout_percentage"))
    for variant in (body.get("multivariate") or {}).get("variants") or []:
        variant["rollout_percentage"] = number(variant.get("rollout_percentage"))
    return body


def number(value: float | None) -> int | float | None:
    """A whole number as an integer (`100`, not `100.0`), as PostHog's JSON writes it."""
    if value is None or isinstance(value, int):
        return value
    return int(value) if value.is_integer() else value


def member_object(member: MemberRecord) -> dict[str, Any]:
    """PostHog's explicit project member. Its `level` is a project level (1 member, 8 admin),
    `parent_level` the organization level (1, 8, 15) and `effective_level` the higher of the two,
    as PostHog computes them: organization admins and owners are project admins."""
    level = PROJECT_ADMIN if member.level >= PROJECT_ADMIN else PROJECT_MEMBER
    return {
        "id": stable_uuid("membership", member.uuid),
        "level": level,
        "parent_level": member.level,
        "parent_membership_id": stable_uuid("organization_membership", member.uuid),
        "joined_at": iso(member.joined_at),
        "updated_at": iso(member.updated_at),
        "user": user_object(member),
        "user_uuid": member.uuid,
        "effective_level": max(level, member.level),
        "roles": list(member.roles),
        "file": member.file,
        "commit": member.commit,
    }


def distinct_id(event: AuditRecord) -> str:
    """Who the event is from: the member's login, or `reconciler` for what the pass did itself."""
    return event.actor or "reconciler"


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
        "distinct_id": distinct_id(event),
        "properties": json.dumps(properties, sort_keys=True, default=str),
        "event": event.verb,
        "timestamp": iso(event.created_at),
        "person": event.actor or "",
        "elements": "[]",
        "elements_chain": "",
    }
