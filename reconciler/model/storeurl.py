"""Where the store is when nobody says, and the variable that says: names only.

The command line shows them in its help without loading the database library.
"""

from __future__ import annotations

STORE_ENV = "RECONCILER_STORE"
DEFAULT_STORE = "sqlite:///reconciler.db"
STORE_HELP = f"Store: a SQLAlchemy URL or SQLite file path [env {STORE_ENV}; default {DEFAULT_STORE}]."
