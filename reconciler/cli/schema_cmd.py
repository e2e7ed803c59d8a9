"""`reconciler schema KIND`: print the JSON Schema of one document kind."""

from __future__ import annotations

import click

from reconciler.model.schema import KINDS, schema_text


@click.command()
@click.argument("kind", type=click.Choice(KINDS))
def schema(kind: str) -> None:
    """Print the JSON Schema (draft 2020-12) of KIND, e.g. for an editor's YAML plugin."""
    click.echo(schema_text(kind), nl=False)
