"""`reconciler reconcile`: one reconcile pass, a one-line summary, and exit (0 ok, 2 on error)."""

from __future__ import annotations

import os

import click

from reconciler.reconcile import PassResult, ReconcileConfig, reconcile_once
from reconciler.store import Store, resolve_store_url


def summary(result: PassResult) -> str:
    head = result.head[:12] if result.head else "(no commit)"
    return (
        f"{result.status} at {head}: {result.commits} new commit(s), {result.applied} change(s) applied, "
        f"{result.failed} failed, {result.scheduled} scheduled"
    )


@click.command("reconcile")
@click.option("--repo", required=True, help="The policy repository: a URL to clone and fetch, or a local path.")
@click.option("--store", "store_option", help="Flag store URL or SQLite path (default: $RECONCILER_STORE, else reconciler.db).")
@click.option("--branch", help="The branch to follow (default: the repository's default branch).")
@click.option("--path", default="", help="Subdirectory of the repository that holds reconciler.yaml.")
@click.option("--accept-rewrite", is_flag=True, help="Resume after a force-push rewrote already applied history.")
@click.option("--approvals", type=click.Choice(["github", "trailers"]), help="Override spec.approvals.source.")
def reconcile(
    repo: str, store_option: str | None, branch: str | None, path: str, accept_rewrite: bool, approvals: str | None
) -> None:
    """Fetch the policy repository once, apply what landed, and exit."""
    config = ReconcileConfig(repo, branch, path, accept_rewrite, approvals)  # type: ignore[arg-type]
    with Store.open(resolve_store_url(store_option, os.environ)) as store:
        click.echo(summary(reconcile_once(config, store)))
