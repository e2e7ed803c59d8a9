"""The closed sets of words the reconciler speaks, each defined once.

Flag and meta actions; the states a change request moves through and the sets of them that
mean something together (live, refused, approved, landed, terminal, decided); validation and
sync statuses; vote decisions; organization membership levels; API token scopes.
"""

from __future__ import annotations

from typing import Literal, get_args

# --- actions ---------------------------------------------------------------------------------

FlagAction = Literal[
    "feature_flag.create",
    "feature_flag.update",
    "feature_flag.enable",
    "feature_flag.disable",
    "feature_flag.delete",
    "feature_flag.copy",
]
MetaAction = Literal["approval_policy.change", "members.change"]
PolicyAction = Literal[FlagAction, MetaAction]

FLAG_ACTIONS: tuple[FlagAction, ...] = get_args(FlagAction)
META_ACTIONS: tuple[MetaAction, ...] = get_args(MetaAction)

# --- change-request states -------------------------------------------------------------------

ChangeRequestState = Literal["pending", "approved", "applied", "rejected", "expired", "failed"]
CHANGE_REQUEST_STATES: tuple[ChangeRequestState, ...] = get_args(ChangeRequestState)

# What an approval evaluation says; an open pull request's record shows it while reviews come
# and go (live), and the merge decides afresh.
EvaluationState = Literal["pending", "approved", "rejected", "expired"]
LIVE_STATES: tuple[EvaluationState, ...] = get_args(EvaluationState)
# Evaluation states that refuse the change: a standing rejection, or no quorum in time.
REFUSED_STATES: tuple[EvaluationState, ...] = ("rejected", "expired")
# Quorum met (or bypassed): waiting for its `execute_at`, or applied.
APPROVED_STATES: tuple[ChangeRequestState, ...] = ("approved", "applied")
# Written only once the change landed (its merge, or its `execute_at` coming due): a pull
# request no longer changes them.
LANDED_STATES: tuple[ChangeRequestState, ...] = ("applied", "failed")
# Once its merge is recorded, nothing more happens to a change request in these states.
TERMINAL_STATES: tuple[ChangeRequestState, ...] = (*LANDED_STATES, *REFUSED_STATES)
# Decided: terminal, or approved and waiting for its time.
DECIDED_STATES: tuple[ChangeRequestState, ...] = (*TERMINAL_STATES, "approved")

# Why a live record of a pull request stopped being live: its pull request closed unmerged, or
# no longer adds its file (followed by ` #<number>`).
CLOSED_UNMERGED = "pull request closed without merging"
NOT_IN_PULL_REQUEST = "no longer in pull request"

ValidationStatus = Literal["valid", "invalid", "stale"]
VALIDATION_STATUSES: tuple[ValidationStatus, ...] = get_args(ValidationStatus)

# --- the reconciler's position ---------------------------------------------------------------

SyncStatus = Literal["Synced", "OutOfSync", "Diverged", "Unknown"]
SYNC_STATUSES: tuple[SyncStatus, ...] = get_args(SyncStatus)

# --- votes -----------------------------------------------------------------------------------

VoteDecision = Literal["approved", "rejected", "dismissed"]

# --- organization membership -----------------------------------------------------------------

MembershipLevel = Literal[1, 8, 15]
LEVEL_NAMES: dict[int, str] = {1: "member", 8: "admin", 15: "owner"}  # keys: MembershipLevel

# --- API token scopes ------------------------------------------------------------------------

APPROVALS_READ = "approvals:read"
FEATURE_FLAG_READ = "feature_flag:read"
ACTIVITY_LOG_READ = "activity_log:read"
ORGANIZATION_MEMBER_READ = "organization_member:read"
SCOPES = (APPROVALS_READ, FEATURE_FLAG_READ, ACTIVITY_LOG_READ, ORGANIZATION_MEMBER_READ)
