"""`reconciler plan [PATH] [--base REF] [--store URL] [--format text|json|markdown]`.

Prints what merging would do (`reconciler.plan.build_plan`). Exit 0 when there is nothing to
change, 1 when the plan has changes (including refusals and problems it reports), 2 when no
plan could be made (bad ref, unreadable store, missing rules).
"""

from __future__ import annotations

import json

import click

from reconciler.cli.options import check_logins, compare_store_option
from reconciler.errors import EXIT_FINDINGS, EXIT_OK


@click.command()
@click.argument("path", default=".", type=click.Path(exists=True, file_okay=False))
@click.option(
    "--base", help="The commit to plan against (default: the merge-base of HEAD with the tracked branch)."
)
@compare_store_option
@click.option(
    "--approved-by",
    "approved_by",
    multiple=True,
    callback=check_logins,
    metavar="LOGIN",
    help="Preview the verdict as if LOGIN approved (repeatable). Hypothetical: never stored or sent.",
)
@click.option(
    "--format",
    "fmt",
    type=click.Choice(["text", "json", "markdown"]),
    default="text",
    show_default=True,
    help="markdown is what a pull-request comment shows.",
)
@click.pass_context
def plan(
    ctx: click.Context,
    path: str,
    base: str | None,
    store_url: str | None,
    approved_by: tuple[str, ...],
    fmt: str,
) -> None:
    """Show what merging PATH (default .) onto its base would do to the flags.

    For each change request new since the base: the flag before and after, the policies that
    govern it (the base's, never the working tree's), the approvals it still needs and who can
    still give them. --approved-by LOGIN previews the verdict with approvals not given yet. A
    plain directory (no git) has an empty base: everything in it is new, except what --store
    already holds. Exit 0: nothing to change; 1: changes (refusals and problems included); 2: error.
    """
    from reconciler.plan import build_plan
    from reconciler.plan.render import render_markdown, render_text
    from reconciler.store import Store

    opened = Store.open(store_url, migrate=False) if store_url else None
    try:
        result = build_plan(path, base=base, store=opened, approved_by=approved_by)
    finally:
        if opened is not None:
            opened.close()
    if fmt == "json":
        click.echo(json.dumps(result.as_json(), indent=2))
    else:
        click.echo(render_markdown(result) if fmt == "markdown" else render_text(result), nl=False)
    ctx.exit(EXIT_FINDINGS if result.has_changes else EXIT_OK)
