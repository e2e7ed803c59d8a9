"""`reconciler serve`: the read API alone, for extra replicas next to one `reconciler run`."""

from __future__ import annotations

import logging
import os
from typing import cast

import click

from reconciler.api import create_app
from reconciler.api.settings import ApiSettings
from reconciler.cli.options import server_options, store_option
from reconciler.service import LogFormat, configure_logging, serve
from reconciler.store import Store, resolve_store_url

log = logging.getLogger("reconciler.service")


def api_settings(allow_anonymous: bool) -> ApiSettings:
    if allow_anonymous:
        log.warning("--allow-anonymous: every read is served without a token; do not expose this server")
    return ApiSettings.from_env(allow_anonymous=allow_anonymous)


@click.command("serve")
@store_option
@server_options
def serve_cmd(store_url: str | None, host: str, port: int, allow_anonymous: bool, log_format: str) -> None:
    """Serve the read API over the flag store until SIGTERM."""
    configure_logging(cast(LogFormat, log_format))  # click.Choice checked it
    with Store.open(resolve_store_url(store_url, os.environ)) as store:
        serve(create_app(store, settings=api_settings(allow_anonymous)), host=host, port=port)
