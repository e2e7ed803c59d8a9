"""`reconciler reconcile`: one reconcile pass, a summary, and exit.

Exit codes: 0 ok, 1 while no valid rules are in force (and, with `--strict`, when a change
that landed failed, was rejected or expired, or a rule change was not put in force), 2 on error.

The summary lists each change and rule change that landed and did not apply, with its reason
(from the audit events the pass wrote, worded as the notifications word them). When a
notification webhook is configured, the pass's events are sent to it, and the command waits a
few seconds at most for the delivery after the pass.

The pass runs under the store's leader lock. When another pass holds it (another `reconcile`,
or the leader of `reconciler run`), or overtakes this one, the line starts with `Skipped:` and
the exit code is 0: the other pass applies what landed.

`config_from` turns the repository options (shared with `reconciler run`) into a `ReconcileConfig`.
"""

from __future__ import annotations

import os
import sys
from typing import Literal, cast

import click

from reconciler.cli.options import repository_options
from reconciler.errors import EXIT_FINDINGS
from reconciler.notify import Notice, Notifier, WebhookSender
from reconciler.notify.feed import Batch, refused_since
from reconciler.reconcile import AnotherPassError, PassResult, ReconcileConfig, reconcile_exclusively
from reconciler.store import Store, resolve_store_url

# Seconds `reconcile` waits after its pass for the webhook to take the message.
NOTIFY_GRACE = 10.0

ApprovalSource = Literal["github", "trailers"]


def config_from(
    repo: str, branch: str | None, path: str, accept_rewrite: bool, approvals: str | None
) -> ReconcileConfig:
    return ReconcileConfig(repo, branch, path, accept_rewrite, cast(ApprovalSource | None, approvals))


def summary(result: PassResult, refused: Batch) -> str:
    """The counts, then each change or rule change that landed and did not apply, with why."""
    head = result.head[:12] if result.head else "(no commit)"
    line = (
        f"{result.status} at {head}: {result.commits} new commit(s), {result.applied} change(s) applied, "
        f"{result.failed} failed, {result.scheduled} scheduled"
    )
    lines = [line, *(_line(n) for n in refused.notices)]
    if refused.more:
        lines.append(f"  … and {refused.more} more: `reconciler changes list --state failed` lists them")
    return "\n".join(lines)


def _line(notice: Notice) -> str:
    return notice.line() if notice.kind == "rules_rejected" else f"  {notice.line()}"


@click.command("reconcile")
@repository_options
@click.option(
    "--wait",
    default=0.0,
    show_default=True,
    type=click.FloatRange(min=0),
    help="Seconds to wait for another pass on the same store to finish before skipping.",
)
@click.option(
    "--strict",
    is_flag=True,
    help="Exit 1 when a change failed, was rejected or expired, or a rule change was not put in force"
    " (for jobs that must go red then).",
)
def reconcile(
    repo: str,
    store_url: str | None,
    branch: str | None,
    path: str,
    accept_rewrite: bool,
    approvals: str | None,
    wait: float,
    strict: bool,
) -> None:
    """Fetch the policy repository once, apply what landed, and exit.

    One pass at a time per store: when another pass (or the leader of `reconciler run`) holds
    the store's lock, print `Skipped: …` and exit 0 without touching the store.
    """
    config = config_from(repo, branch, path, accept_rewrite, approvals)
    with Store.open(resolve_store_url(store_url, os.environ)) as store:
        notifier = Notifier(store, WebhookSender())
        try:
            notifier.prepare()
            mark = store.audit_head_id()
            try:
                result = reconcile_exclusively(config, store, wait=wait)
            except AnotherPassError as err:
                click.echo(f"Skipped: {err}")
                return
            finally:
                notifier.publish()  # also what a pass that failed half-way had committed
            with store.reading() as reader:
                refused = refused_since(reader, mark)
            click.echo(summary(result, refused))
        finally:
            notifier.close(NOTIFY_GRACE)
    if strict and (refused.notices or refused.more):
        sys.exit(EXIT_FINDINGS)
