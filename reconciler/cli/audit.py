"""`reconciler audit verify`: check the audit trail's hash chain.

Exit 0 when intact (and print the head hash, worth recording elsewhere), 1 when a row was
edited, deleted or inserted, naming each row where the chain breaks.
"""

from __future__ import annotations

import sys

import click

from reconciler.cli.options import store_option
from reconciler.errors import EXIT_FINDINGS
from reconciler.store import open_store


@click.group()
def audit() -> None:
    """Inspect the audit trail."""


@audit.command("verify")
@store_option
def verify(store_url: str | None) -> None:
    """Check that no audit event was edited, deleted or inserted."""
    with open_store(store_url) as store:
        result = store.verify_audit()
    if result.intact:
        click.echo(f"audit trail intact: {result.checked} events, head {result.head_hash}")
        return
    click.echo(f"audit trail tampered: {len(result.problems)} break(s) in {result.checked} events")
    for problem in result.problems:
        click.echo(f"event {problem.id}: {problem.kind}: {problem.message}")
    sys.exit(EXIT_FINDINGS)
