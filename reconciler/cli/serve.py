"""`reconciler serve`: the read API alone, for extra replicas next to one `reconciler run`."""

from __future__ import annotations

import logging
import os
from typing import cast

import click

from reconciler.api import create_app
from reconciler.api.settings import ApiSettings
from reconciler.cli.options import store_option
from reconciler.service import LOG_FORMATS, LogFormat, configure_logging, serve
from reconciler.store import Store, resolve_store_url

log = logging.getLogger("reconciler.service")

host_option = click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
port_option = click.option("--port", default=8000, show_default=True, type=click.IntRange(0, 65535))
anonymous_option = click.option(
    "--allow-anonymous",
    is_flag=True,
    help="UNSAFE: serve every read without a token. Only on a closed network.",
)
log_format_option = click.option(
    "--log-format", type=click.Choice(LOG_FORMATS), default="text", show_default=True, help="json: one object per line."
)


def api_settings(allow_anonymous: bool) -> ApiSettings:
    if allow_anonymous:
        log.warning("--allow-anonymous: every read is served without a token; do not expose this server")
    return ApiSettings.from_env(allow_anonymous=allow_anonymous)


@click.command("serve")
@store_option
@host_option
@port_option
@anonymous_option
@log_format_option
def serve_cmd(store_option: str | None, host: str, port: int, allow_anonymous: bool, log_format: str) -> None:
    """Serve the read API over the flag store until SIGTERM."""
    configure_logging(cast(LogFormat, log_format))  # click.Choice checked it
    with Store.open(resolve_store_url(store_option, os.environ)) as store:
        serve(create_app(store, settings=api_settings(allow_anonymous)), host=host, port=port)
