"""`reconciler run`: the reconcile loop and the read API: one process, or with `--workers N`
N API processes and one that reconciles."""

from __future__ import annotations

import os
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any, cast

import click

from reconciler.api import create_app
from reconciler.api.settings import ApiSettings
from reconciler.cli.options import dashboard_url_option, repository_options, server_options
from reconciler.cli.reconcile_cmd import config_from
from reconciler.cli.serve import api_settings
from reconciler.reconcile import ReconcileConfig
from reconciler.service import LogFormat, ReconcileLoop, configure_logging, reconcile_loop, serve
from reconciler.service.wiring import notifier_for
from reconciler.service.workers import WorkerLink, serve_workers
from reconciler.store import Store, resolve_store_url


@dataclass(frozen=True)
class RunTarget:
    """What the processes of `run --workers N` build: API workers whose webhooks and status go
    to the loop's process, and that loop."""

    config: ReconcileConfig
    store_url: str
    allow_anonymous: bool
    interval: float
    dashboard_url: str | None

    @property
    def reconciles(self) -> bool:
        return True

    @contextmanager
    def app(self, link: WorkerLink) -> Iterator[Any]:
        with Store.open(self.store_url) as store:
            yield create_app(
                store,
                settings=ApiSettings.from_env(allow_anonymous=self.allow_anonymous),
                on_webhook=link.on_webhook,
                status_provider=link.status,
            )

    @contextmanager
    def loop(self) -> Iterator[ReconcileLoop]:
        with Store.open(self.store_url) as store:
            notifier = notifier_for(store)  # notifications go with the passes, in this process
            try:
                yield reconcile_loop(
                    self.config,
                    store,
                    interval=self.interval,
                    notifier=notifier,
                    dashboard_url=self.dashboard_url,
                )
            finally:
                notifier.close()


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
@dashboard_url_option
def run(
    repo: str,
    store_url: str | None,
    branch: str | None,
    path: str,
    accept_rewrite: bool,
    approvals: str | None,
    host: str,
    port: int,
    workers: int,
    interval: float,
    allow_anonymous: bool,
    log_format: str,
    dashboard_url: str | None,
) -> None:
    """Reconcile continuously (polls plus GitHub webhooks) and serve the read API, until SIGTERM."""
    configure_logging(cast(LogFormat, log_format))  # click.Choice checked it
    config = config_from(repo, branch, path, accept_rewrite, approvals)
    url = resolve_store_url(store_url, os.environ)
    with Store.open(url) as store:  # migrates the schema once, and a bad store fails here
        if workers == 1:
            notifier = notifier_for(store)
            try:
                loop = reconcile_loop(
                    config, store, interval=interval, notifier=notifier, dashboard_url=dashboard_url
                )
                app = create_app(
                    store,
                    settings=api_settings(allow_anonymous),
                    on_webhook=loop.on_webhook,
                    status_provider=loop.status,
                )
                serve(app, host=host, port=port, loop=loop)
            finally:
                notifier.close()
            return
    api_settings(allow_anonymous)  # the warning, once
    serve_workers(
        RunTarget(config, url, allow_anonymous, interval, dashboard_url),
        host=host,
        port=port,
        workers=workers,
        log_format=cast(LogFormat, log_format),
    )
