"""`reconciler check-approvals --pr N`: judge a pull request's reviews and report on GitHub.

Sets the `reconciler/approvals` commit status on the pull request's head and posts (or updates
in place) one plan comment. The reusable workflow runs it on `pull_request` and
`pull_request_review` events; branch protection makes the status required. The work is
`reconciler.plan.pullrequest`; this module only turns options into that call.
"""

from __future__ import annotations

import contextlib
from datetime import UTC, datetime

import click

from reconciler.approvals.factory import project_repository
from reconciler.cli.options import checkout_option, compare_store_option, dashboard_url_option, path_option
from reconciler.decision.regime import RulesInvalid
from reconciler.errors import EXIT_FINDINGS
from reconciler.github import STATUS_CONTEXT, GitHubClient
from reconciler.gitrepo.repository import GitRepository
from reconciler.plan.pullrequest import evaluate_pull_request, project_at, publish, publish_unreadable_rules


@click.command("check-approvals")
@click.option("--pr", "number", type=click.IntRange(min=1), required=True, help="The pull request number.")
@checkout_option
@path_option
@compare_store_option
@dashboard_url_option
@click.option(
    "--no-replay",
    is_flag=True,
    help="Without --store, do not replay the base's history for the flags before (it reads the reviews "
    "of every merged pull request from GitHub, about four requests each): conditions then select every "
    "change, and a change that cannot apply shows only at merge.",
)
@click.option("--dry-run", is_flag=True, help="Print the status and the plan; write nothing to GitHub.")
def check_approvals(
    number: int,
    repo_path: str,
    path: str,
    store_url: str | None,
    dashboard_url: str | None,
    no_replay: bool,
    dry_run: bool,
) -> None:
    """Judge pull request N's reviews by the base policies and set the `reconciler/approvals` status.

    GITHUB_TOKEN is the token, GITHUB_API_URL the API root, GITHUB_REPOSITORY overrides the
    repository named in reconciler.yaml. Without --store the flags before come from replaying
    the base's history (the reviews of its merged pull requests are read from GitHub; about
    four requests per merged pull request, which --no-replay saves). The
    status links to the dashboard's page of the pull request when --dashboard-url or the base's
    reconciler.yaml names the dashboard, else to the pull request. Exits 1 when the status is
    failure, including when the base's rules do not read in full (a pull request is never
    judged by fewer policies).
    """
    subdir = "" if path.strip("/") in ("", ".") else path
    with contextlib.ExitStack() as stack:
        repo = stack.enter_context(GitRepository.open(repo_path, subdir=subdir))
        client = stack.enter_context(GitHubClient.from_env(project_repository(project_at(repo))))
        store = None
        if store_url:
            from reconciler.store import Store

            store = stack.enter_context(Store.open(store_url))
        try:
            result = evaluate_pull_request(
                repo, client, number, now=datetime.now(UTC), store=store, replay=not no_replay
            )
        except RulesInvalid as err:
            if not dry_run:
                publish_unreadable_rules(client, number, err)
            raise
        if dry_run:
            state, description = result.commit_status()
            click.echo(result.markdown())
            click.echo(f"status link: {result.target_url(dashboard_url)}", err=True)
        else:
            state, description = publish(client, result, dashboard_url=dashboard_url)
        click.echo(f"{STATUS_CONTEXT}: {state}: {description}", err=dry_run)
    if state == "failure":
        raise SystemExit(EXIT_FINDINGS)
