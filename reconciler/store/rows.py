"""Converting between database rows and the store's records, in one place.

Nothing outside the store sees a row.
"""

from __future__ import annotations

import json
from dataclasses import asdict, fields
from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa

from reconciler.model.flags import Flag
from reconciler.store.records import (
    AuditRecord,
    ChangeRequestRecord,
    EnvironmentRecord,
    FlagRecord,
    FlagVersionRecord,
    MemberRecord,
    PolicyRecord,
    Position,
    TokenRecord,
    VoteRecord,
)


def flag_record(row: sa.Row[Any]) -> FlagRecord:
    return FlagRecord(
        environment_id=row.environment_id,
        flag=Flag.model_validate(row.data),
        created_at=row.created_at,
        updated_at=row.updated_at,
        commit=row.commit,
        change_request_id=row.change_request_id,
    )


def flag_version_record(row: sa.Row[Any]) -> FlagVersionRecord:
    return FlagVersionRecord(
        environment_id=row.environment_id,
        flag=Flag.model_validate(row.data),
        change_request_id=row.change_request_id,
        commit=row.commit,
        created_at=row.created_at,
    )


def environment_record(row: sa.Row[Any]) -> EnvironmentRecord:
    return EnvironmentRecord(
        id=row.id, key=row.key, name=row.name, api_token=row.api_token, group_types=row.group_types or {}
    )


def policy_record(row: sa.Row[Any]) -> PolicyRecord:
    return PolicyRecord(**{f.name: getattr(row, f.name) for f in fields(PolicyRecord)})


def policy_row(policy: PolicyRecord) -> dict[str, Any]:
    return asdict(policy)


def member_record(row: sa.Row[Any]) -> MemberRecord:
    values = {f.name: getattr(row, f.name) for f in fields(MemberRecord)}
    values["roles"] = tuple(values["roles"])
    return MemberRecord(**values)


_VOTE_FIELDS = fields(VoteRecord)


def _time_json(value: datetime | None) -> str | None:
    return None if value is None else value.astimezone(UTC).isoformat()


def _time_from_json(value: str | None) -> datetime | None:
    return None if value is None else datetime.fromisoformat(value)


def vote_json(vote: VoteRecord) -> dict[str, Any]:
    plain = {f.name: getattr(vote, f.name) for f in _VOTE_FIELDS}  # flat: no asdict deep copy
    plain["at"] = _time_json(vote.at)
    return plain


def vote_record(plain: dict[str, Any]) -> VoteRecord:
    return VoteRecord(**{**plain, "at": _time_from_json(plain.get("at"))})


def change_request_row(record: ChangeRequestRecord) -> dict[str, Any]:
    row = {name: getattr(record, name) for name in CHANGE_REQUEST_FIELDS}
    row["votes"] = [vote_json(v) for v in record.votes]
    return row


CHANGE_REQUEST_FIELDS = tuple(f.name for f in fields(ChangeRequestRecord))
_VOTES = CHANGE_REQUEST_FIELDS.index("votes")


def change_request_record(row: sa.Row[Any]) -> ChangeRequestRecord:
    """A record from a row whose columns are in `CHANGE_REQUEST_FIELDS` order (the API lists
    many of these, so it is built positionally)."""
    values = list(row)
    values[_VOTES] = tuple(vote_record(v) for v in values[_VOTES])
    return ChangeRequestRecord(*values)


def audit_record(row: sa.Row[Any]) -> AuditRecord:
    values = {f.name: getattr(row, f.name) for f in fields(AuditRecord)}
    values["data"] = json.loads(row.data)
    return AuditRecord(**values)


def token_record(row: sa.Row[Any]) -> TokenRecord:
    return TokenRecord(
        id=row.id,
        prefix=row.prefix,
        member_login=row.member_login,
        scopes=tuple(row.scopes),
        environment_ids=None if row.environment_ids is None else tuple(row.environment_ids),
        created_at=row.created_at,
        revoked_at=row.revoked_at,
        label=row.label,
    )


def position_record(row: sa.Row[Any] | None) -> Position:
    if row is None:
        return Position()
    return Position(**{f.name: getattr(row, f.name) for f in fields(Position)})


def position_row(position: Position) -> dict[str, Any]:
    return {f.name: getattr(position, f.name) for f in fields(Position)}
