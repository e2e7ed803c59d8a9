"""`reconciler serve`: the read API alone, for extra replicas next to one `reconciler run`."""

from __future__ import annotations

import logging
import os
from collections.abc import Iterator
from contextlib import AbstractContextManager, contextmanager
from dataclasses import dataclass
from typing import Any, cast

import click

from reconciler.api import create_app
from reconciler.api.settings import ApiSettings
from reconciler.cli.options import server_options, store_option
from reconciler.service import LogFormat, ReconcileLoop, configure_logging, serve
from reconciler.service.workers import WorkerLink, serve_workers
from reconciler.store import Store, resolve_store_url

log = logging.getLogger("reconciler.service")


def api_settings(allow_anonymous: bool) -> ApiSettings:
    if allow_anonymous:
        log.warning("--allow-anonymous: every read is served without a token; do not expose this server")
    return ApiSettings.from_env(allow_anonymous=allow_anonymous)


@dataclass(frozen=True)
class ServeTarget:
    """What each API worker of `serve --workers N` builds: the app over its own store connection."""

    store_url: str
    allow_anonymous: bool

    @property
    def reconciles(self) -> bool:
        return False

    @contextmanager
    def app(self, link: WorkerLink) -> Iterator[Any]:
        with Store.open(self.store_url) as store:
            yield create_app(store, settings=ApiSettings.from_env(allow_anonymous=self.allow_anonymous))

    def loop(self) -> AbstractContextManager[ReconcileLoop]:
        raise NotImplementedError("`serve` runs no reconcile loop")


@click.command("serve")
@store_option
@server_options
def serve_cmd(
    store_url: str | None, host: str, port: int, workers: int, allow_anonymous: bool, log_format: str
) -> None:
    """Serve the read API over the flag store until SIGTERM."""
    configure_logging(cast(LogFormat, log_format))  # click.Choice checked it
    url = resolve_store_url(store_url, os.environ)
    with Store.open(url) as store:  # migrates the schema once, and a bad store fails here
        if workers == 1:
            serve(create_app(store, settings=api_settings(allow_anonymous)), host=host, port=port)
            return
    api_settings(allow_anonymous)  # the warning, once
    serve_workers(
        ServeTarget(url, allow_anonymous),
        host=host,
        port=port,
        workers=workers,
        log_format=cast(LogFormat, log_format),
    )
