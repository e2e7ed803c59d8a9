"""`reconciler reconcile`: one reconcile pass, a summary, and exit.

Exit codes: 0 ok, 1 while no valid rules are in force, 2 on error.

The pass runs under the store's leader lock. When another pass holds it (another `reconcile`,
or the leader of `reconciler run`), or overtakes this one, the line starts with `Skipped:` and
the exit code is 0: the other pass applies what landed.

`config_from` turns the repository options (shared with `reconciler run`) into a `ReconcileConfig`.
"""

from __future__ import annotations

import os
from typing import Literal, cast

import click

from reconciler.cli.options import repository_options
from reconciler.reconcile import AnotherPassError, PassResult, ReconcileConfig, reconcile_exclusively
from reconciler.store import Store, resolve_store_url

ApprovalSource = Literal["github", "trailers"]


def config_from(
    repo: str, branch: str | None, path: str, accept_rewrite: bool, approvals: str | None
) -> ReconcileConfig:
    return ReconcileConfig(repo, branch, path, accept_rewrite, cast(ApprovalSource | None, approvals))


def summary(result: PassResult) -> str:
    head = result.head[:12] if result.head else "(no commit)"
    line = (
        f"{result.status} at {head}: {result.commits} new commit(s), {result.applied} change(s) applied, "
        f"{result.failed} failed, {result.scheduled} scheduled"
    )
    return "\n".join(
        [line, *(f"rule change not in force (the previous rules stay): {r}" for r in result.rules_rejected)]
    )


@click.command("reconcile")
@repository_options
@click.option(
    "--wait",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for another pass on the same store to finish before skipping.",
)
def reconcile(
    repo: str,
    store_url: str | None,
    branch: str | None,
    path: str,
    accept_rewrite: bool,
    approvals: str | None,
    wait: float,
) -> None:
    """Fetch the policy repository once, apply what landed, and exit.

    One pass at a time per store: when another pass (or the leader of `reconciler run`) holds
    the store's lock, print `Skipped: …` and exit 0 without touching the store.
    """
    config = config_from(repo, branch, path, accept_rewrite, approvals)
    with Store.open(resolve_store_url(store_url, os.environ)) as store:
        try:
            click.echo(summary(reconcile_exclusively(config, store, wait=wait)))
        except AnotherPassError as err:
            click.echo(f"Skipped: {err}")
