"""PostHog group types of each environment (index → name), as `reconciler.yaml` names them.

Revision ID: 0004
Revises: 0003
"""

from __future__ import annotations

import sqlalchemy as sa
from alembic import op

revision = "0004"
down_revision: str | None = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    # Nullable: environments written before this revision name no group types, read as `{}`.
    with op.batch_alter_table("environments") as batch:
        batch.add_column(sa.Column("group_types", sa.JSON(none_as_null=True), nullable=True))


def downgrade() -> None:
    with op.batch_alter_table("environments") as batch:
        batch.drop_column("group_types")
