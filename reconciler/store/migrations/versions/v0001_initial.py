"""The initial store schema: flags and their history, policies, members, change requests,
the audit chain, API tokens, the reconciler's position and webhook deliveries.

Revision ID: 0001
Revises:
"""

from __future__ import annotations

from typing import Any

import sqlalchemy as sa
from alembic import op

revision = "0001"
down_revision: str | None = None
branch_labels = None
depends_on = None

TIME = sa.DateTime(timezone=True)


def _c(name: str, type_: Any, nullable: bool = True, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=nullable, **kw)


def _r(name: str, type_: Any, **kw: Any) -> sa.Column[Any]:
    return sa.Column(name, type_, nullable=False, **kw)


def upgrade() -> None:
    op.create_table(
        "counters", sa.Column("name", sa.String(100), primary_key=True), _r("value", sa.BigInteger)
    )
    op.create_table(
        "environments",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        _r("key", sa.String(100), unique=True),
        _r("name", sa.Text),
        _r("api_token", sa.String(200)),
    )
    op.create_index("ix_environments_api_token", "environments", ["api_token"])
    op.create_table(
        "flags",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        _r("environment_id", sa.Integer),
        _r("key", sa.String(400)),
        _r("version", sa.Integer),
        _r("deleted", sa.Boolean),
        _r("data", sa.JSON),
        _r("created_at", TIME),
        _r("updated_at", TIME),
        _c("commit", sa.String(64)),
        _c("change_request_id", sa.String(36)),
        sa.UniqueConstraint("environment_id", "key", name="uq_flags_environment_key"),
    )
    op.create_table(
        "flag_versions",
        sa.Column("flag_id", sa.Integer, sa.ForeignKey("flags.id"), primary_key=True, autoincrement=False),
        sa.Column("version", sa.Integer, primary_key=True, autoincrement=False),
        _r("environment_id", sa.Integer),
        _r("key", sa.String(400)),
        _r("data", sa.JSON),
        _c("change_request_id", sa.String(36)),
        _c("commit", sa.String(64)),
        _r("created_at", TIME),
    )
    op.create_table(
        "policies",
        sa.Column("id", sa.String(36), primary_key=True),
        _r("name", sa.String(100), unique=True),
        _r("description", sa.Text),
        _r("file", sa.Text),
        _r("action_key", sa.String(100)),
        _r("spec", sa.JSON),
        _r("enabled", sa.Boolean),
        _c("commit", sa.String(64)),
        _c("created_by", sa.String(100)),
        _r("created_at", TIME),
        _r("updated_at", TIME),
    )
    op.create_table(
        "roles", sa.Column("id", sa.String(36), primary_key=True), _r("name", sa.String(100), unique=True)
    )
    op.create_table(
        "members",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        _r("uuid", sa.String(36), unique=True),
        _r("login", sa.String(100)),
        _r("email", sa.String(320)),
        _r("first_name", sa.Text),
        _r("last_name", sa.Text),
        _r("level", sa.Integer),
        _r("roles", sa.JSON),
        _c("role_at_organization", sa.Text),
        _r("file", sa.Text),
        _c("commit", sa.String(64)),
        _r("joined_at", TIME),
        _r("updated_at", TIME),
        _c("removed_at", TIME),
    )
    op.create_index("ix_members_login", "members", ["login"])
    _create_change_requests()
    _create_audit()
    op.create_table(
        "api_tokens",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=True),
        _r("prefix", sa.String(32)),
        _r("token_hash", sa.String(64), unique=True),
        _r("member_login", sa.String(100)),
        _r("scopes", sa.JSON),
        _c("environment_ids", sa.JSON),
        _r("label", sa.Text),
        _r("created_at", TIME),
        _c("revoked_at", TIME),
    )
    op.create_index("ix_api_tokens_prefix", "api_tokens", ["prefix"])
    op.create_table(
        "reconciler_status",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        _c("last_fetched_commit", sa.String(64)),
        _c("last_fetched_at", TIME),
        _c("last_applied_commit", sa.String(64)),
        _c("last_applied_at", TIME),
        _r("sync_status", sa.String(20)),
        _c("last_error", sa.Text),
        _c("last_error_at", TIME),
        _c("diverged_commit", sa.String(64)),
        _c("updated_at", TIME),
        _r("details", sa.JSON),
    )
    op.create_table(
        "webhook_deliveries", sa.Column("id", sa.String(100), primary_key=True), _r("received_at", TIME)
    )
    op.create_index("ix_webhook_deliveries_received_at", "webhook_deliveries", ["received_at"])


def _create_change_requests() -> None:
    op.create_table(
        "change_requests",
        sa.Column("id", sa.String(36), primary_key=True),
        _r("name", sa.String(100)),
        _r("description", sa.Text),
        _r("file", sa.Text),
        _r("environment_key", sa.String(100)),
        _c("environment_id", sa.Integer),
        _r("action_key", sa.String(100)),
        _r("resource_type", sa.String(100)),
        _r("resource_id", sa.String(400)),
        _r("spec", sa.JSON),
        _r("state", sa.String(20)),
        _r("validation_status", sa.String(20)),
        _c("validation_errors", sa.JSON),
        _c("validated_at", TIME),
        _c("intent", sa.JSON),
        _c("intent_display", sa.JSON),
        _c("policy_snapshot", sa.JSON),
        _r("votes", sa.JSON),
        _c("created_by_uuid", sa.String(36)),
        _c("created_by_login", sa.String(100)),
        _c("applied_by_uuid", sa.String(36)),
        _c("applied_by_login", sa.String(100)),
        _r("created_at", TIME),
        _r("updated_at", TIME),
        _c("expires_at", TIME),
        _c("applied_at", TIME),
        _c("execute_at", TIME),
        _c("apply_error", sa.Text),
        _c("result_data", sa.JSON),
        _c("bypass", sa.JSON),
        _c("commit", sa.String(64)),
        _c("pull_request_number", sa.Integer),
        _c("pull_request_url", sa.Text),
        _c("base_version", sa.Integer),
    )
    for name, columns in (
        ("ix_change_requests_file", ["file"]),
        ("ix_change_requests_pull_request_number", ["pull_request_number"]),
        ("ix_change_requests_state_created", ["state", "created_at"]),
        ("ix_change_requests_env_created", ["environment_id", "created_at"]),
        ("ix_change_requests_resource", ["resource_id", "created_at"]),
        ("ix_change_requests_created", ["created_at"]),
    ):
        op.create_index(name, "change_requests", columns)


def _create_audit() -> None:
    op.create_table(
        "audit_events",
        sa.Column("id", sa.BigInteger, primary_key=True, autoincrement=False),
        _r("verb", sa.String(100)),
        _c("actor", sa.String(100)),
        _r("object_type", sa.String(100)),
        _r("object_id", sa.String(400)),
        _r("data", sa.Text),
        _c("commit", sa.String(64)),
        _r("created_at", TIME),
        _r("prev_hash", sa.String(64)),
        _r("hash", sa.String(64)),
    )
    op.create_table(
        "audit_head",
        sa.Column("id", sa.Integer, primary_key=True, autoincrement=False),
        _r("last_id", sa.BigInteger),
        _r("last_hash", sa.String(64)),
    )


def downgrade() -> None:
    for table in (
        "webhook_deliveries",
        "reconciler_status",
        "api_tokens",
        "audit_head",
        "audit_events",
        "change_requests",
        "members",
        "roles",
        "policies",
        "flag_versions",
        "flags",
        "environments",
        "counters",
    ):
        op.drop_table(table)
