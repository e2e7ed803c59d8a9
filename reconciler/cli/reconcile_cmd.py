"""`reconciler reconcile`: one reconcile pass, a summary, and exit (0 ok, 1 while no valid rules are in force, 2 on error).

Its repository options are shared with `reconciler run` (`repository_options`, `config_from`).
"""

from __future__ import annotations

import os
from collections.abc import Callable
from typing import Literal, TypeVar, cast

import click

from reconciler.cli.options import store_option
from reconciler.reconcile import PassResult, ReconcileConfig, reconcile_once
from reconciler.store import Store, resolve_store_url

F = TypeVar("F", bound=Callable[..., object])
ApprovalSource = Literal["github", "trailers"]



def repository_options(command: F) -> F:
    """--repo, --store, --branch, --path, --accept-rewrite and --approvals, as `config_from` reads them."""
    for option in reversed([
        click.option("--repo", required=True, help="The policy repository: a URL to clone and fetch, or a local path."),
        store_option,
        click.option("--branch", help="The branch to follow (default: the repository's default branch)."),
        click.option("--path", default="", help="Subdirectory of the repository that holds reconciler.yaml."),
        click.option("--accept-rewrite", is_flag=True, help="Resume after a force-push rewrote already applied history."),
        click.option("--approvals", type=click.Choice(["github", "trailers"]), help="Override spec.approvals.source."),
    ]):
        command = option(command)
    return command


def config_from(repo: str, branch: str | None, path: str, accept_rewrite: bool, approvals: str | None) -> ReconcileConfig:
    return ReconcileConfig(repo, branch, path, accept_rewrite, cast(ApprovalSource | None, approvals))


def summary(result: PassResult) -> str:
    head = result.head[:12] if result.head else "(no commit)"
    line = (
        f"{result.status} at {head}: {result.commits} new commit(s), {result.applied} change(s) applied, "
        f"{result.failed} failed, {result.scheduled} scheduled"
    )
    return "\n".join([line, *(f"rule change not in force (the previous rules stay): {r}" for r in result.rules_rejected)])


@click.command("reconcile")
@repository_options
def reconcile(
    repo: str, store_option: str | None, branch: str | None, path: str, accept_rewrite: bool, approvals: str | None
) -> None:
    """Fetch the policy repository once, apply what landed, and exit."""
    config = config_from(repo, branch, path, accept_rewrite, approvals)
    with Store.open(resolve_store_url(store_option, os.environ)) as store:
        click.echo(summary(reconcile_once(config, store)))
