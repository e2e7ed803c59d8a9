"""Alembic environment for the store: runs on the connection `connect.migrate` hands over.

Never used with alembic.ini or a URL: the store opens the database itself and migrates it on
open, so an old database upgrades in place.
"""

from __future__ import annotations

from alembic import context

from reconciler.store.schema import metadata

connection = context.config.attributes["connection"]
context.configure(connection=connection, target_metadata=metadata, render_as_batch=True)
with context.begin_transaction():
    context.run_migrations()
