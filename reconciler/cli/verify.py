"""`reconciler verify --repo PATH|URL [--store URL] [--branch B] [--path P] [--format text|json]`.

Replays the applied change requests and compares every flag with the store
(`reconciler.reconcile.verify.verify_store`). Exit 0 clean, 1 drift found, 2 error.
"""

from __future__ import annotations

import json
import os

import click

from reconciler.cli.options import branch_option, path_option, repo_option, store_option
from reconciler.errors import EXIT_FINDINGS, EXIT_OK


@click.command()
@repo_option
@store_option
@branch_option
@path_option
@click.option("--format", "fmt", type=click.Choice(["text", "json"]), default="text", show_default=True)
@click.pass_context
def verify(
    ctx: click.Context, repo: str, store_url: str | None, branch: str | None, path: str, fmt: str
) -> None:
    """Report every flag whose state in the store differs from what its applied change requests make it."""
    from reconciler.reconcile.run import ReconcileConfig
    from reconciler.reconcile.verify import verify_store
    from reconciler.store import Store, resolve_store_url

    with Store.open(resolve_store_url(store_url, os.environ), migrate=False) as opened:
        report = verify_store(opened, ReconcileConfig(repo=repo, branch=branch, path=path))
    click.echo(
        json.dumps(report.as_json(), indent=2) if fmt == "json" else report.render_text(), nl=fmt == "json"
    )
    ctx.exit(EXIT_OK if report.clean else EXIT_FINDINGS)
