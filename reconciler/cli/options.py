"""Options shared by several commands, kept free of heavy imports (the CLI loads lazily)."""

from __future__ import annotations

import click

store_option = click.option(
    "--store", "store_option", help="Flag store URL or SQLite path (default: $RECONCILER_STORE, else reconciler.db)."
)
