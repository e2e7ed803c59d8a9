"""Lookups the API and the webhook handler need: change requests by requester, audit events
by object, and the event name of each webhook delivery.

Revision ID: 0002
Revises: 0001
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0002"
down_revision: str | None = "0001"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_index("ix_change_requests_requester", "change_requests", ["created_by_login"])
    op.create_index("ix_audit_events_object", "audit_events", ["object_type", "object_id"])
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.add_column(sa.Column("event", sa.String(100), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("webhook_deliveries") as batch:
        batch.drop_column("event")
    op.drop_index("ix_audit_events_object", "audit_events")
    op.drop_index("ix_change_requests_requester", "change_requests")
