"""The store's tables as SQLAlchemy Core metadata: the schema the latest migration produces.

Only the store package imports this. Migrations under `migrations/versions/` are frozen copies
of the schema at each revision; a test checks that applying them all yields exactly these
tables, so a change here without a migration fails the suite.
"""

from __future__ import annotations

from datetime import UTC, datetime
from typing import Any

import sqlalchemy as sa
from sqlalchemy.engine import Dialect


class UTCDateTime(sa.types.TypeDecorator[datetime]):
    """Timezone-aware UTC datetimes on every backend (SQLite keeps no zone of its own)."""

    impl = sa.DateTime(timezone=True)
    cache_ok = True

    def process_bind_param(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        if value.tzinfo is None:
            raise ValueError(f"naive datetime {value!r}: the store keeps timezone-aware UTC times")
        value = value.astimezone(UTC)
        return value.replace(tzinfo=None) if dialect.name == "sqlite" else value

    def process_result_value(self, value: datetime | None, dialect: Dialect) -> datetime | None:
        if value is None:
            return None
        return value.replace(tzinfo=UTC) if value.tzinfo is None else value.astimezone(UTC)


metadata = sa.MetaData()


def _col(name: str, type_: Any, **kw: Any) -> sa.Column[Any]:
    kw.setdefault("nullable", True)
    return sa.Column(name, type_, **kw)


# Nullable JSON columns keep Python None as SQL NULL, not the JSON text `null`.
JSON_OR_NULL = sa.JSON(none_as_null=True)


def _req(name: str, type_: Any, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=False, **kw)


counters = sa.Table(
    "counters",
    metadata,
    sa.Column("name", sa.String(100), primary_key=True),
    _req("value", sa.BigInteger),
)

environments = sa.Table(
    "environments",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    _req("key", sa.String(100), unique=True),
    _req("name", sa.Text),
    _req("api_token", sa.String(200), index=True),
    _col("group_types", JSON_OR_NULL),
)

flags = sa.Table(
    "flags",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    _req("environment_id", sa.Integer),
    _req("key", sa.String(400)),
    _req("version", sa.Integer),
    _req("deleted", sa.Boolean),
    _req("data", sa.JSON),
    _req("created_at", UTCDateTime),
    _req("updated_at", UTCDateTime),
    _col("commit", sa.String(64)),
    _col("change_request_id", sa.String(36)),
    sa.UniqueConstraint("environment_id", "key", name="uq_flags_environment_key"),
)

flag_versions = sa.Table(
    "flag_versions",
    metadata,
    sa.Column("flag_id", sa.Integer, sa.ForeignKey("flags.id"), primary_key=True, autoincrement=False),
    sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
    _req("environment_id", sa.Integer),
    _req("key", sa.String(400)),
    _req("data", sa.JSON),
    _col("change_request_id", sa.String(36)),
    _col("commit", sa.String(64)),
    _req("created_at", UTCDateTime),
)

policies = sa.Table(
    "policies",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    _req("name", sa.String(100), unique=True),
    _req("description", sa.Text),
    _req("file", sa.Text),
    _req("action_key", sa.String(100)),
    _req("spec", sa.JSON),
    _req("enabled", sa.Boolean),
    _col("commit", sa.String(64)),
    _col("created_by", sa.String(100)),
    _req("created_at", UTCDateTime),
    _req("updated_at", UTCDateTime),
)

roles = sa.Table(
    "roles",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    _req("name", sa.String(100), unique=True),
)

members = sa.Table(
    "members",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    _req("uuid", sa.String(36), unique=True),
    _req("login", sa.String(100), index=True),
    _req("email", sa.String(320)),
    _req("first_name", sa.Text),
    _req("last_name", sa.Text),
    _req("level", sa.Integer),
    _req("roles", sa.JSON),
    _col("role_at_organization", sa.Text),
    _req("file", sa.Text),
    _col("commit", sa.String(64)),
    _req("joined_at", UTCDateTime),
    _req("updated_at", UTCDateTime),
    _col("removed_at", UTCDateTime),
)

change_requests = sa.Table(
    "change_requests",
    metadata,
    sa.Column("id", sa.String(36), primary_key=True),
    _req("name", sa.String(100)),
    _req("description", sa.Text),
    _req("file", sa.Text, index=True),
    _req("environment_key", sa.String(100)),
    _col("environment_id", sa.Integer),
    _req("action_key", sa.String(100)),
    _req("resource_type", sa.String(100)),
    _req("resource_id", sa.String(400)),
    _req("spec", sa.JSON),
    _req("state", sa.String(20)),
    _req("validation_status", sa.String(20)),
    _col("validation_errors", JSON_OR_NULL),
    _col("validated_at", UTCDateTime),
    _col("intent", JSON_OR_NULL),
    _col("intent_display", JSON_OR_NULL),
    _col("policy_snapshot", JSON_OR_NULL),
    _req("votes", sa.JSON),
    _col("created_by_uuid", sa.String(36)),
    _col("created_by_login", sa.String(100)),
    _col("applied_by_uuid", sa.String(36)),
    _col("applied_by_login", sa.String(100)),
    _req("created_at", UTCDateTime),
    _req("updated_at", UTCDateTime),
    _col("expires_at", UTCDateTime),
    _col("applied_at", UTCDateTime),
    _col("execute_at", UTCDateTime),
    _col("apply_error", sa.Text),
    _col("result_data", JSON_OR_NULL),
    _col("bypass", JSON_OR_NULL),
    _col("commit", sa.String(64)),
    _col("pull_request_number", sa.Integer, index=True),
    _col("pull_request_url", sa.Text),
    _col("base_version", sa.Integer),
    _col("still_to_approve", JSON_OR_NULL),
    sa.Index("ix_change_requests_state_created", "state", "created_at"),
    sa.Index("ix_change_requests_env_created", "environment_id", "created_at"),
    sa.Index("ix_change_requests_resource", "resource_id", "created_at"),
    sa.Index("ix_change_requests_created", "created_at"),
    sa.Index("ix_change_requests_requester", "created_by_login"),
)

audit_events = sa.Table(
    "audit_events",
    metadata,
    sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
    _req("verb", sa.String(100)),
    _col("actor", sa.String(100)),
    _req("object_type", sa.String(100)),
    _req("object_id", sa.String(400)),
    _req("data", sa.Text),  # canonical JSON text, kept byte for byte because the hash covers it
    _col("commit", sa.String(64)),
    _req("created_at", UTCDateTime),
    _req("prev_hash", sa.String(64)),
    _req("hash", sa.String(64)),
    sa.Index("ix_audit_events_object", "object_type", "object_id"),
)

AUDIT_HEAD_ROW = 1  # `audit_head` has this one row
audit_head = sa.Table(
    "audit_head",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    _req("last_id", sa.BigInteger),
    _req("last_hash", sa.String(64)),
)

api_tokens = sa.Table(
    "api_tokens",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
    _req("prefix", sa.String(32), index=True),
    _req("token_hash", sa.String(64), unique=True),
    _req("member_login", sa.String(100)),
    _req("scopes", sa.JSON),
    _col("environment_ids", JSON_OR_NULL),
    _req("label", sa.Text),
    _req("created_at", UTCDateTime),
    _col("revoked_at", UTCDateTime),
)

reconciler_status = sa.Table(
    "reconciler_status",
    metadata,
    sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
    _col("last_fetched_commit", sa.String(64)),
    _col("last_fetched_at", UTCDateTime),
    _col("last_applied_commit", sa.String(64)),
    _col("last_applied_at", UTCDateTime),
    _req("sync_status", sa.String(20)),
    _col("last_error", sa.Text),
    _col("last_error_at", UTCDateTime),
    _col("diverged_commit", sa.String(64)),
    _col("updated_at", UTCDateTime),
    _req("details", sa.JSON),
)

webhook_deliveries = sa.Table(
    "webhook_deliveries",
    metadata,
    sa.Column("id", sa.String(100), primary_key=True),
    _col("event", sa.String(100)),
    _req("received_at", UTCDateTime, index=True),
)
