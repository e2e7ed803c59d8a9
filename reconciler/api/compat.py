"""What the LaunchDarkly and /v1 views share: a change request's instructions, review outcome
and latest review, read the same way for both."""

from __future__ import annotations

from datetime import datetime
from typing import Any

from reconciler.store import ChangeRequestRecord, VoteRecord

_IMPLIED = {
    "feature_flag.enable": "turnFlagOn",
    "feature_flag.disable": "turnFlagOff",
    "feature_flag.delete": "deleteFlag",
}


def millis(at: datetime | None) -> int | None:
    """Unix milliseconds, as LaunchDarkly writes times."""
    return None if at is None else int(at.timestamp() * 1000)


def instructions(cr: ChangeRequestRecord) -> list[dict[str, Any]]:
    """The change as semantic-patch instructions; actions without instructions get one implied."""
    given = cr.spec.get("instructions")
    if isinstance(given, list) and given:
        return [i if isinstance(i, dict) else {"kind": str(i)} for i in given]
    if cr.action_key in _IMPLIED:
        return [{"kind": _IMPLIED[cr.action_key]}]
    if cr.action_key == "feature_flag.create":
        return [{"kind": "createFlag", "flag": cr.spec.get("flag")}]
    if cr.action_key == "feature_flag.copy":
        keys = ("source_environment", "included_actions", "excluded_actions")
        return [
            {"kind": "copyFlagSettings", **{k: cr.spec.get(k) for k in keys if cr.spec.get(k) is not None}}
        ]
    return []


def decisive_votes(cr: ChangeRequestRecord) -> list[VoteRecord]:
    """The votes that decided something (counted approvals or rejections), oldest first."""
    return [v for v in cr.votes if v.counted and v.decision in ("approved", "rejected")]


def last_review(cr: ChangeRequestRecord) -> VoteRecord | None:
    votes = decisive_votes(cr) or [v for v in cr.votes if v.decision != "dismissed"]
    dated = [v for v in votes if v.at is not None]
    if dated:
        return max(dated, key=lambda v: v.at or datetime.min)
    return votes[-1] if votes else None


def enabled_after(cr: ChangeRequestRecord) -> bool | None:
    """Whether the change leaves the flag on or off, when it says so."""
    if cr.action_key == "feature_flag.enable":
        return True
    if cr.action_key in ("feature_flag.disable", "feature_flag.delete"):
        return False
    if cr.action_key == "feature_flag.create":
        flag = cr.spec.get("flag") or {}
        return bool(flag.get("active", False))
    switches = [i.get("kind") for i in instructions(cr) if i.get("kind") in ("turnFlagOn", "turnFlagOff")]
    return switches[-1] == "turnFlagOn" if switches else None


def rollout_after(cr: ChangeRequestRecord) -> float | None:
    """The rollout percentage the change sets on its first group, when it sets one."""
    if cr.action_key == "feature_flag.create":
        groups = ((cr.spec.get("flag") or {}).get("filters") or {}).get("groups") or []
        value = groups[0].get("rollout_percentage", 100) if groups else None
        return None if value is None and not groups else (100.0 if value is None else float(value))
    for instruction in reversed(instructions(cr)):
        if instruction.get("kind") == "updateRollout" and instruction.get("percentage") is not None:
            return float(instruction["percentage"])
    return None
