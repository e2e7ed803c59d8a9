"""`reconciler verify --repo PATH|URL [--store URL] [--branch B] [--path P] [--format text|json]`.

Replays the applied change requests and compares every flag with the store
(`reconciler.reconcile.verify.verify_store`). Exit 0 clean, 1 drift found, 2 error.
"""

from __future__ import annotations

import json
import os

import click

from reconciler.errors import EXIT_FINDINGS, EXIT_OK


@click.command()
@click.option("--repo", required=True, help="The policy repository the store follows (path or URL).")
@click.option(
    "--store", help="The store to verify (URL or SQLite file; default $RECONCILER_STORE, else reconciler.db)."
)
@click.option("--branch", help="The tracked branch (default: the remote's default branch).")
@click.option("--path", "subdir", default="", help="The subdirectory that holds the policy repository.")
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def verify(
    ctx: click.Context, repo: str, store: str | None, branch: str | None, subdir: str, fmt: str
) -> None:
    """Report every flag whose state in the store differs from what its applied change requests make it."""
    from reconciler.reconcile.run import ReconcileConfig
    from reconciler.reconcile.verify import verify_store
    from reconciler.store import Store, resolve_store_url

    with Store.open(resolve_store_url(store, os.environ), migrate=False) as opened:
        report = verify_store(opened, ReconcileConfig(repo=repo, branch=branch, path=subdir))
    click.echo(
        json.dumps(report.as_json(), indent=2) if fmt == "json" else report.render_text(), nl=fmt == "json"
    )
    ctx.exit(EXIT_OK if report.clean else EXIT_FINDINGS)
