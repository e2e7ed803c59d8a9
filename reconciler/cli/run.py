"""`reconciler run`: the reconcile loop in a background thread and the read API, one process."""

from __future__ import annotations

import os

import click

from reconciler.api import create_app
from reconciler.cli.serve import (
    anonymous_option,
    api_settings,
    host_option,
    log_format_option,
    port_option,
    store_option,
)
from reconciler.reconcile import ReconcileConfig
from reconciler.service import configure_logging, reconcile_loop, serve
from reconciler.store import Store, resolve_store_url


@click.command("run")
@click.option("--repo", required=True, help="The policy repository: a URL to clone and fetch, or a local path.")
@store_option
@click.option("--branch", help="The branch to follow (default: the repository's default branch).")
@click.option("--path", default="", help="Subdirectory of the repository that holds reconciler.yaml.")
@click.option("--accept-rewrite", is_flag=True, help="Resume after a force-push rewrote already applied history.")
@click.option("--approvals", type=click.Choice(["github", "trailers"]), help="Override spec.approvals.source.")
@host_option
@port_option
@click.option(
    "--interval", default=60.0, show_default=True, type=click.FloatRange(min=0.05), help="Seconds between polls (±10 %)."
)
@anonymous_option
@log_format_option
def run(
    repo: str,
    store_option: str | None,
    branch: str | None,
    path: str,
    accept_rewrite: bool,
    approvals: str | None,
    host: str,
    port: int,
    interval: float,
    allow_anonymous: bool,
    log_format: str,
) -> None:
    """Reconcile continuously (polls plus GitHub webhooks) and serve the read API, until SIGTERM."""
    configure_logging(log_format)  # type: ignore[arg-type]
    config = ReconcileConfig(repo, branch, path, accept_rewrite, approvals)  # type: ignore[arg-type]
    with Store.open(resolve_store_url(store_option, os.environ)) as store:
        loop = reconcile_loop(config, store, interval=interval)
        app = create_app(store, settings=api_settings(allow_anonymous), on_webhook=loop.on_webhook, status_provider=loop.status)
        serve(app, host=host, port=port, loop=loop)
