"""The options several commands share, each declared once: the same name, parameter, help
text and environment variable in every command that takes it.

Light on imports (no web framework, no service): a command's module is loaded only when that
command runs, and most commands here need the store anyway.
"""

from __future__ import annotations

import re
from collections.abc import Callable
from typing import TypeVar

import click

from reconciler.model.links import DASHBOARD_URL_ENV, check_dashboard_url
from reconciler.model.storeurl import STORE_HELP

F = TypeVar("F", bound=Callable[..., object])

# The store a command works on: the option, else $RECONCILER_STORE, else the default file.
store_option = click.option("--store", "store_url", default=None, help=STORE_HELP)
# A store a command may compare against: without the option it reads none.
compare_store_option = click.option(
    "--store",
    "store_url",
    default=None,
    help="Read what is in force (flags, rules) from this store (URL or SQLite file)"
    " instead of working it out "
    "from the repository's history.",
)
repo_option = click.option(
    "--repo", required=True, help="The policy repository: a URL to clone and fetch, or a local path."
)
branch_option = click.option(
    "--branch", help="The branch to follow (default: the repository's default branch)."
)
checkout_option = click.option(
    "--repo",
    "repo_path",
    default=".",
    show_default=True,
    type=click.Path(file_okay=False),
    help="A checkout of the policy repository with the pull request's base and head.",
)
path_option = click.option(
    "--path", default="", help="Subdirectory of the repository that holds reconciler.yaml."
)
host_option = click.option("--host", default="127.0.0.1", show_default=True, help="Address to listen on.")
port_option = click.option(
    "--port", default=8000, show_default=True, type=click.IntRange(0, 65535), help="Port to listen on."
)
anonymous_option = click.option(
    "--allow-anonymous",
    is_flag=True,
    help="UNSAFE: serve every read without a token. Only on a closed network.",
)
# The choices are reconciler.service.LOG_FORMATS (a test keeps them equal), written out so
# that commands which never serve do not import the service.
log_format_option = click.option(
    "--log-format",
    type=click.Choice(("text", "json")),
    default="text",
    show_default=True,
    help="json: one object per line.",
)
workers_option = click.option(
    "--workers",
    default=1,
    show_default=True,
    type=click.IntRange(1, 64),
    help="API processes sharing the port (about one per CPU). With more than one, `run` reconciles "
    "in one more process of its own.",
)


def _dashboard_url(_ctx: click.Context, _param: click.Parameter, value: str | None) -> str | None:
    if not value:
        return None
    try:
        return check_dashboard_url(value)
    except ValueError as err:  # the message never repeats the address: it may carry a password
        raise click.BadParameter(str(err)) from err


MAX_LOGINS = 100


def check_logins(_ctx: click.Context, param: click.Parameter, values: tuple[str, ...]) -> tuple[str, ...]:
    """GitHub logins given on the command line (a repeatable option), each checked."""
    from reconciler.model.documents import LOGIN_PATTERN  # pydantic: loaded only when a command runs

    if len(values) > MAX_LOGINS:
        raise click.BadParameter(f"at most {MAX_LOGINS} logins, not {len(values)}", param=param)
    for login in values:
        if not re.fullmatch(LOGIN_PATTERN, login):
            shown = login if len(login) <= 60 else login[:60] + "…"
            raise click.BadParameter(
                f"{shown!r} is not a GitHub login (letters, digits and single hyphens, at most 39)",
                param=param,
            )
    return values


# The dashboard's address, for links from GitHub; overrides `dashboard_url` in reconciler.yaml.
dashboard_url_option = click.option(
    "--dashboard-url",
    "dashboard_url",
    envvar=DASHBOARD_URL_ENV,
    default=None,
    callback=_dashboard_url,
    help="Where the dashboard is served (https://…): the approvals status links to the pull request's "
    f"page there. Overrides dashboard_url in reconciler.yaml. Env: {DASHBOARD_URL_ENV}.",
)


def repository_options(command: F) -> F:
    """--repo, --store, --branch, --path, --accept-rewrite and --approvals, as `config_from` reads them."""
    for option in reversed(
        [
            repo_option,
            store_option,
            branch_option,
            path_option,
            click.option(
                "--accept-rewrite",
                is_flag=True,
                help="Resume after a force-push rewrote already applied history.",
            ),
            click.option(
                "--approvals",
                type=click.Choice(["github", "trailers"]),
                help="Override spec.approvals.source.",
            ),
        ]
    ):
        command = option(command)
    return command


def server_options(command: F) -> F:
    """--host, --port, --workers, --allow-anonymous and --log-format: how a command serves the API."""
    for option in reversed([host_option, port_option, workers_option, anonymous_option, log_format_option]):
        command = option(command)
    return command
