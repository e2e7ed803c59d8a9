"""`reconciler run`: the reconcile loop in a background thread and the read API, one process."""

from __future__ import annotations

import os
from typing import cast

import click

from reconciler.api import create_app
from reconciler.cli.options import repository_options, server_options
from reconciler.cli.reconcile_cmd import config_from
from reconciler.cli.serve import api_settings
from reconciler.service import LogFormat, configure_logging, reconcile_loop, serve
from reconciler.service.wiring import notifier_for
from reconciler.store import Store, resolve_store_url


@click.command("run")
@repository_options
@server_options
@click.option(
    "--interval",
    default=60.0,
    show_default=True,
    type=click.FloatRange(min=0.05),
    help="Seconds between polls (±10 %).",
)
def run(
    repo: str,
    store_url: str | None,
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
    configure_logging(cast(LogFormat, log_format))  # click.Choice checked it
    config = config_from(repo, branch, path, accept_rewrite, approvals)
    with Store.open(resolve_store_url(store_url, os.environ)) as store:
        notifier = notifier_for(store)
        try:
            loop = reconcile_loop(config, store, interval=interval, notifier=notifier)
            app = create_app(
                store,
                settings=api_settings(allow_anonymous),
                on_webhook=loop.on_webhook,
                status_provider=loop.status,
            )
            serve(app, host=host, port=port, loop=loop)
        finally:
            notifier.close()
